/* SPDX-License-Identifier: MIT */
/*
 * A VM's network on the host (DESIGN.md §11, docs/network.md): one setup/teardown pair.
 *
 *   hc_net_setup()     leases a /30 from the pool, makes a TAP holding the gateway address,
 *                      installs the VM's chains (egress filter, NAT, input guard) and its
 *                      allow-list set in hotcell's nftables table, starts the VM's dnsmasq on
 *                      the gateway, binds the published ports (a userspace forwarder thread).
 *   hc_net_teardown()  undoes all of it, in reverse; always safe, always complete, NULL is fine.
 *
 * Whatever a process that died without its teardown (SIGKILL) left is reclaimed by the next
 * hc_net_setup() in the same network namespace: each lease is a file under the runtime dir
 * holding an flock for as long as its owner lives, and its owner's pid and start time.
 *
 * Used by `hotcell run` (src/lib/net.c) and by the persistent VMs' supervisor: one struct
 * hc_net per VM, held for the VM's life. The VMM drivers see only the TAP name, its fd and
 * the MAC (struct hc_vm_spec), and the guest only its boot keys (hc_net_guest_cmdline()).
 *
 * Needs CAP_NET_ADMIN and /dev/net/tun; says so in one line when either is missing.
 */
#pragma once

#include <netinet/in.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/error.h"

/* Longest --allow-host name (a DNS name is at most 253 bytes). */
#define HC_NET_NAME_MAX 253
#define HC_NET_MAX_ALLOW 64
#define HC_NET_MAX_PORTS 64
#define HC_NET_MTU 1500
/* The pool when HOTCELL_NET_POOL is not set: inside 10.0.0.0/8, clear of the ranges podman,
 * docker and libvirt use by default. */
#define HC_NET_POOL_DEFAULT "10.241.0.0/16"

enum hc_net_proto { HC_NET_TCP, HC_NET_UDP };

struct hc_net_port {
	struct in_addr host_ip; /* 127.0.0.1 unless given */
	uint16_t host;
	uint16_t guest;
	enum hc_net_proto proto;
};

struct hc_net_opts {
	bool full;			/* --network full: no private-range drops */
	const char *const *allow_hosts; /* --allow-host names (validated by hc_net_host_check) */
	size_t n_allow_hosts;
	const struct hc_net_port *ports;
	size_t n_ports;
	const char *pool; /* "A.B.C.D/N", NULL: $HOTCELL_NET_POOL, else HC_NET_POOL_DEFAULT */
};

/* A /30 out of the pool: network, gateway (.1, the TAP's address) and guest (.2). */
struct hc_net_lease {
	struct in_addr net, gw, guest;
	char id[9];	 /* the network address as 8 hex digits: names every object */
	char tap[16];	 /* "hc-<id>" */
	char mac[18];	 /* the guest's, locally administered, from the id */
	char path[4096]; /* the lease file */
	int fd;		 /* holds the flock while the lease lives */
};

struct hc_net {
	struct hc_net_opts opts;
	struct hc_net_lease lease;
	struct in_addr dns[3]; /* the host's resolvers dnsmasq forwards to */
	size_t n_dns;
	bool tap_made, rules_made;
	void *dnsmasq;	 /* struct hc_child * */
	void *forwarder; /* the published ports' thread */
	char dns_log[4096];
};

/* Sets up everything above for one VM. *ret is the caller's, released by hc_net_teardown().
 * Errors (kind "usage" for bad input, "backend" for what the host lacks) leave nothing. */
int hc_net_setup(const struct hc_net_opts *opts, struct hc_net **ret,
		 struct hc_error *err) _must_check_;
void hc_net_teardown(struct hc_net *net);

/* Whether this process can set up a VM's network here (CAP_NET_ADMIN, /dev/net/tun, nftables);
 * the reason in err when not. Changes nothing (`hotcell doctor`). dnsmasq is looked up by the
 * caller (src/lib). */
int hc_net_probe(struct hc_error *err) _must_check_;
/* libnftables can list the ruleset here (nftables in the kernel, the right to use it). */
int hc_net_rules_probe(struct hc_error *err) _must_check_;

/* Opens one more fd on the VM's TAP (for a VMM that takes it as an fd: QEMU's -netdev
 * tap,fd=N). Close-on-exec; the caller maps it into the child. */
int hc_net_tap_open(const struct hc_net *net, struct hc_error *err) _must_check_;

/* Makes the persistent TAP called tap attachable by uid/gid without CAP_NET_ADMIN (TUNSETOWNER,
 * TUNSETGROUP): a VMM that drops to another user and opens the TAP by name itself (Firecracker
 * under its jailer, through the jail's /dev/net/tun). */
int hc_net_tap_set_owner(const char *tap, uid_t uid, gid_t gid, struct hc_error *err) _must_check_;

/* Appends the guest's boot keys (docs/protocol.md): " hotcell.ip=G/30 hotcell.gw=GW
 * hotcell.dns=GW hotcell.mtu=1500". */
int hc_net_guest_cmdline(const struct hc_net *net, struct hc_buf *cmdline) _must_check_;

/* ---- the pieces, exposed for tests and for the supervisor (pool.c, rules.c, dns.c) ---- */

/* Checks an --allow-host NAME: a hostname (RFC 1123 labels, at least one dot), or "*." and a
 * hostname (its subdomains only). 0 or -EINVAL with the reason. */
int hc_net_host_check(const char *name, struct hc_error *err) _must_check_;
/* Parses "[IP:]HOSTPORT:GUESTPORT[/tcp|/udp]". 0 or -EINVAL with the reason. */
int hc_net_port_parse(const char *s, struct hc_net_port *ret, struct hc_error *err) _must_check_;

/* Parses a pool "A.B.C.D/N" (N between 8 and 30, the address on its prefix boundary). */
int hc_net_pool_parse(const char *s, uint32_t *ret_base, unsigned *ret_prefix,
		      struct hc_error *err) _must_check_;
/* Whether [a, a+size) overlaps a route (dst/mask, host order) of the table text of
 * /proc/net/route. */
bool hc_net_routes_overlap(const char *proc_net_route, uint32_t a, uint32_t size);
/* Leases a free /30 of the pool in dir (one file per /30, flock + owner pid and start time),
 * skipping /30s that overlap the host's routes. Stale leases met on the way (their owner
 * died) are reclaimed first: reclaim(lease, arg) removes what the dead owner left. */
int hc_net_lease_acquire(const char *dir, uint32_t base, unsigned prefix, const char *routes,
			 void (*reclaim)(const struct hc_net_lease *stale, void *arg), void *arg,
			 struct hc_net_lease *ret, struct hc_error *err) _must_check_;
/* Removes the lease file and drops the lock. Safe on a lease never acquired (fd -1). */
void hc_net_lease_release(struct hc_net_lease *lease);
/* Records a helper process of the lease's owner (pid and start time), and ends the ones a
 * stale lease recorded that still run: a helper that changes its uid (dnsmasq) loses its
 * PR_SET_PDEATHSIG, so it may outlive a killed owner. */
int hc_net_lease_note_helper(const struct hc_net_lease *lease, const char *what, pid_t pid);
void hc_net_lease_kill_helpers(const struct hc_net_lease *lease);
/* Fills the derived names (id, tap, mac, gw, guest) of the /30 at net (host order). */
void hc_net_lease_name(struct hc_net_lease *lease, uint32_t net);

/* The nftables commands (one transaction) that add the VM's chains and set to hotcell's
 * table "inet hotcell", and the ones that delete them. */
int hc_net_rules_add_cmds(const struct hc_net *net, struct hc_buf *out) _must_check_;
int hc_net_rules_del_cmds(const struct hc_net_lease *lease, bool allow_set,
			  struct hc_buf *out) _must_check_;
/* Adds the VM's rules in one transaction, under the table lock in dir. */
int hc_net_rules_apply(const char *dir, const struct hc_net *net,
		       struct hc_error *err) _must_check_;
/* Deletes them (stale: each object on its own, ignoring what is missing), and the table when
 * it is left empty. Never fails: what cannot be removed is logged. */
void hc_net_rules_remove(const char *dir, const struct hc_net_lease *lease, bool allow_set,
			 bool stale);

/* The persistent TAP of a lease with its gateway address, up (link.c); delete by name (0 when
 * there is none). */
int hc_net_link_create(const struct hc_net_lease *lease, struct hc_error *err) _must_check_;
int hc_net_link_delete(const char *name);

/* The published ports: listening sockets bound now (a port taken is an error before the
 * boot), served by one thread that relays each TCP connection, and each UDP client's
 * datagrams (a flow per client address, idle ones closed), to guest:port (forward.c). */
int hc_net_forward_start(const struct hc_net_port *ports, size_t n, struct in_addr guest,
			 void **ret, struct hc_error *err) _must_check_;
void hc_net_forward_stop(void *fwd);

/* dnsmasq's argv for net (NULL-terminated, malloc'd strings; free with hc_net_argv_free). */
int hc_net_dnsmasq_argv(const struct hc_net *net, char ***ret) _must_check_;
void hc_net_argv_free(char **argv);
/* Reads the nameserver lines of a resolv.conf text (IPv4 only, loopback ones kept: dnsmasq
 * runs on the host). Returns the count (at most max). */
size_t hc_net_resolvers_parse(const char *text, struct in_addr *ret, size_t max);
