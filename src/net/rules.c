/* SPDX-License-Identifier: MIT */
/*
 * The VM's rules in hotcell's one nftables table, "inet hotcell": per VM three base chains
 * and, with an allow-list, one set, all named by the lease id (docs/network.md):
 *
 *   fwd_<id>   filter/forward  the egress filter (inet: DESIGN.md §11's list, cloud metadata
 *                              first; full: none of it),
 *                              anti-spoofing, no IPv6, nothing unsolicited towards the guest
 *   in_<id>    filter/input    the guest reaches the host only for DNS on its gateway
 *   nat_<id>   nat/postrouting masquerade of the guest's address to whatever uplink it leaves by
 *   allow_<id> ipv4_addr set   --allow-host: filled by dnsmasq (--nftset) as names resolve
 *
 * Each VM's chains are base chains of their own: a drop in any is final, an accept lets the
 * packet on to the next, so VMs never see each other's rules. The whole VM is added in one
 * transaction and deleted in one; the table goes with the last VM's chains, under a lock so
 * concurrent starts and teardowns never race on it. libnftables, never the nft program.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <sys/file.h>

#include "core/log.h"
#include "core/path.h"
#include "net/net.h"

#define TABLE "inet hotcell"

/* DESIGN.md §11, in the order the filter applies it; 169.254.169.254 has a rule of its own,
 * first, so that the cloud metadata service is dropped whatever else changes. */
static const char *const private_v4 =
	"0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, "
	"192.168.0.0/16, 224.0.0.0/4, 240.0.0.0/4";

int hc_net_rules_add_cmds(const struct hc_net *net, struct hc_buf *b)
{
	const struct hc_net_lease *l = &net->lease;
	const char *id = l->id, *tap = l->tap;
	char gw[INET_ADDRSTRLEN], guest[INET_ADDRSTRLEN];
	int r = 0;

	inet_ntop(AF_INET, &l->gw, gw, sizeof(gw));
	inet_ntop(AF_INET, &l->guest, guest, sizeof(guest));
#define P(...)                                                                                     \
	do {                                                                                       \
		if (r == 0)                                                                        \
			r = hc_buf_printf(b, __VA_ARGS__);                                         \
	} while (0)
	P("add table " TABLE "\n");
	if (net->opts.n_allow_hosts)
		P("add set " TABLE " allow_%s { type ipv4_addr; }\n", id);

	P("add chain " TABLE
	  " fwd_%s { type filter hook forward priority filter; policy accept; }\n",
	  id);
	if (!net->opts.full)
		P("add rule " TABLE " fwd_%s iifname \"%s\" ip daddr 169.254.169.254 drop\n", id,
		  tap);
	P("add rule " TABLE " fwd_%s iifname \"%s\" meta nfproto != ipv4 drop\n", id, tap);
	P("add rule " TABLE " fwd_%s iifname \"%s\" ip saddr != %s drop\n", id, tap, guest);
	P("add rule " TABLE " fwd_%s iifname \"%s\" ct state established,related accept\n", id,
	  tap);
	if (!net->opts.full)
		P("add rule " TABLE " fwd_%s iifname \"%s\" ip daddr { %s } drop\n", id, tap,
		  private_v4);
	if (net->opts.n_allow_hosts)
		P("add rule " TABLE " fwd_%s iifname \"%s\" ip daddr != @allow_%s drop\n", id, tap,
		  id);
	P("add rule " TABLE " fwd_%s oifname \"%s\" ct state established,related accept\n", id,
	  tap);
	P("add rule " TABLE " fwd_%s oifname \"%s\" drop\n", id, tap);

	P("add chain " TABLE " in_%s { type filter hook input priority filter; policy accept; }\n",
	  id);
	P("add rule " TABLE " in_%s iifname \"%s\" ct state established,related accept\n", id, tap);
	P("add rule " TABLE
	  " in_%s iifname \"%s\" ip saddr %s ip daddr %s meta l4proto { tcp, udp } "
	  "th dport 53 accept\n",
	  id, tap, guest, gw);
	P("add rule " TABLE " in_%s iifname \"%s\" drop\n", id, tap);

	P("add chain " TABLE
	  " nat_%s { type nat hook postrouting priority srcnat; policy accept; }\n",
	  id);
	P("add rule " TABLE " nat_%s ip saddr %s oifname != \"%s\" masquerade\n", id, guest, tap);
#undef P
	return r;
}

int hc_net_rules_del_cmds(const struct hc_net_lease *l, bool allow_set, struct hc_buf *b)
{
	int r = hc_buf_printf(b,
			      "delete chain " TABLE " fwd_%s\n"
			      "delete chain " TABLE " in_%s\n"
			      "delete chain " TABLE " nat_%s\n",
			      l->id, l->id, l->id);

	if (r == 0 && allow_set)
		r = hc_buf_printf(b, "delete set " TABLE " allow_%s\n", l->id);
	return r;
}

/* ---- applying them ---- */

struct nft {
	struct nft_ctx *ctx;
	int lock;
};

static void nft_close(struct nft *n)
{
	if (n->ctx)
		nft_ctx_free(n->ctx);
	n->ctx = NULL;
	hc_closep(&n->lock);
}

/* The table lock lives beside the leases: one per network namespace. */
static int nft_open(struct nft *n, const char *dir, struct hc_error *err)
{
	char path[4096];
	int r;

	n->ctx = NULL;
	n->lock = -1;
	r = hc_path_fmt(path, sizeof(path), err, "%s/nftables.lock", dir);
	if (r < 0)
		return r;
	n->lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (n->lock < 0)
		return hc_error_errno(err, -errno, "open %s", path);
	if (flock(n->lock, LOCK_EX) < 0) {
		r = hc_error_errno(err, -errno, "lock %s", path);
		nft_close(n);
		return r;
	}
	n->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!n->ctx || nft_ctx_buffer_output(n->ctx) < 0 || nft_ctx_buffer_error(n->ctx) < 0) {
		nft_close(n);
		return hc_error_set(err, -ENOMEM, "libnftables: cannot make a context");
	}
	return 0;
}

/* Runs one batch (one transaction). The error buffer's first line goes into err. */
static int nft_run(struct nft *n, const char *cmds, struct hc_error *err)
{
	if (nft_run_cmd_from_buffer(n->ctx, cmds) == 0)
		return 0;
	if (err) {
		const char *e = nft_ctx_get_error_buffer(n->ctx);

		hc_error_setk(err, -EIO, HC_EK_BACKEND, "nftables: %.*s",
			      e ? (int)strcspn(e, "\n") : 0, e ? e : "");
	}
	return -EIO;
}

/* Deletes the table when no chain is left in it (the last VM's teardown). */
static void nft_drop_table_if_empty(struct nft *n)
{
	const char *out;

	if (nft_run(n, "list table " TABLE, NULL) < 0)
		return; /* no table */
	out = nft_ctx_get_output_buffer(n->ctx);
	if (out && strstr(out, "\tchain "))
		return;
	if (nft_run(n, "delete table " TABLE, NULL) < 0)
		hc_debug("network: could not delete the empty table " TABLE);
}

int hc_net_rules_probe(struct hc_error *err)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int r = 0;

	if (!ctx || nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0)
		r = hc_error_set(err, -ENOMEM, "libnftables: cannot make a context");
	else if (nft_run_cmd_from_buffer(ctx, "list tables") != 0)
		r = hc_error_setk(err, -EOPNOTSUPP, HC_EK_BACKEND,
				  "nftables is not usable here: %.*s",
				  (int)strcspn(nft_ctx_get_error_buffer(ctx), "\n"),
				  nft_ctx_get_error_buffer(ctx));
	if (ctx)
		nft_ctx_free(ctx);
	return r;
}

int hc_net_rules_apply(const char *dir, const struct hc_net *net, struct hc_error *err)
{
	struct hc_buf cmds = HC_BUF_INIT(0);
	struct nft n;
	int r;

	r = hc_net_rules_add_cmds(net, &cmds);
	if (r < 0) {
		hc_buf_free(&cmds);
		return hc_error_set(err, r, "nftables: out of memory");
	}
	r = nft_open(&n, dir, err);
	if (r == 0) {
		r = nft_run(&n, cmds.data, err);
		if (r < 0)
			nft_drop_table_if_empty(
				&n); /* the failed batch left nothing: maybe no table */
		nft_close(&n);
	}
	hc_buf_free(&cmds);
	return r;
}

/* Deletes a VM's chains and set; with "stale", each object on its own (a dead process may
 * have left only some of them). */
void hc_net_rules_remove(const char *dir, const struct hc_net_lease *l, bool allow_set, bool stale)
{
	struct hc_buf cmds = HC_BUF_INIT(0);
	struct hc_error err = {0};
	struct nft n;

	if (hc_net_rules_del_cmds(l, allow_set || stale, &cmds) < 0 ||
	    nft_open(&n, dir, &err) < 0) {
		hc_warn("network: cannot remove the rules of %s: %s", l->id,
			err.message[0] ? err.message : "out of memory");
		hc_buf_free(&cmds);
		return;
	}
	if (stale) {
		char *save = NULL;

		for (char *line = strtok_r(cmds.data, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			(void)nft_run(&n, line, NULL);
	} else if (nft_run(&n, cmds.data, &err) < 0) {
		hc_warn("network: removing the rules of %s: %s", l->id, err.message);
	}
	nft_drop_table_if_empty(&n);
	nft_close(&n);
	hc_buf_free(&cmds);
}
