/* SPDX-License-Identifier: MIT */
/* hc_net_setup / hc_net_teardown: the order of the steps and their undoing (net.h). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/child.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/path.h"
#include "net/net.h"
#include "proto/boot.h"

#define DNSMASQ_READY_MS 5000

int hc_net_port_parse(const char *s, struct hc_net_port *ret, struct hc_error *err)
{
	char buf[96], *parts[3] = {0}, *slash, *save = NULL;
	struct hc_net_port p = {.proto = HC_NET_TCP};
	unsigned long v[2];
	size_t n = 0;

	if (!s || strlen(s) >= sizeof(buf))
		goto bad;
	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash++ = 0;
		if (hc_streq(slash, "udp"))
			p.proto = HC_NET_UDP;
		else if (!hc_streq(slash, "tcp"))
			goto bad;
	}
	for (char *t = strtok_r(buf, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
		if (n == 3)
			goto bad;
		parts[n++] = t;
	}
	if (n < 2 || buf[0] == ':' || buf[strlen(s) - 1 - (slash ? strlen(slash) + 1 : 0)] == ':')
		goto bad;
	p.host_ip.s_addr = htonl(INADDR_LOOPBACK);
	if (n == 3 && inet_pton(AF_INET, parts[0], &p.host_ip) != 1)
		goto bad;
	for (int i = 0; i < 2; i++) {
		const char *t = parts[n - 2 + (size_t)i];
		char *end;

		errno = 0;
		v[i] = strtoul(t, &end, 10);
		if (errno || end == t || *end || *t == '-' || *t == '+' || v[i] == 0 ||
		    v[i] > 65535)
			goto bad;
	}
	p.host = (uint16_t)v[0];
	p.guest = (uint16_t)v[1];
	*ret = p;
	return 0;
bad:
	return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
			     "-p '%s': expected [IP:]HOSTPORT:GUESTPORT[/tcp|/udp], ports 1..65535",
			     s ? s : "");
}

/* One lease directory per network namespace: TAPs and rules live in the namespace, so a
 * lease only means something there (and a stale one is reclaimed only there). */
static int lease_dir(char *buf, size_t n, struct hc_error *err)
{
	char base[HC_PATH_MAX];
	struct stat st;
	int r;

	if (stat("/proc/self/ns/net", &st) < 0)
		return hc_error_errno(err, -errno, "stat /proc/self/ns/net");
	if (geteuid() == 0)
		r = hc_path_fmt(base, sizeof(base), err, "/run/hotcell");
	else
		r = hc_path_runtime_dir(base, sizeof(base), err);
	if (r < 0)
		return r;
	r = hc_path_fmt(buf, n, err, "%s/net/%lu", base, (unsigned long)st.st_ino);
	if (r < 0)
		return r;
	return hc_path_mkdir_p(buf, 0700, err);
}

static void dns_log_path(const struct hc_net_lease *l, char *buf, size_t n)
{
	size_t len = strlen(l->path);

	/* <dir>/<id>.lease -> <dir>/<id>.dnsmasq.log */
	snprintf(buf, n, "%.*s.dnsmasq.log", (int)(len > 6 ? len - 6 : len), l->path);
}

/* What a dead owner of a lease left: its dnsmasq (which dropped PR_SET_PDEATHSIG with its
 * uid), its TAP, its rules, its dnsmasq's log. Its forwarder threads died with it. */
static void reclaim(const struct hc_net_lease *stale, void *arg)
{
	const char *dir = arg;
	char log[HC_PATH_MAX];

	hc_net_lease_kill_helpers(stale);
	if (hc_net_link_delete(stale->tap) < 0)
		hc_warn("network: cannot delete the stale TAP %s", stale->tap);
	hc_net_rules_remove(dir, stale, true, true);
	dns_log_path(stale, log, sizeof(log));
	unlink(log);
}

/* IPv4 forwarding is per namespace and off in a fresh one: the guest's path needs it. It is
 * left on (turning it off under other VMs, or other users of the host, would cut them). */
static int forwarding_on(struct hc_error *err)
{
	static const char path[] = "/proc/sys/net/ipv4/ip_forward";
	_cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
	char c = 0;

	if (fd < 0 || pread(fd, &c, 1, 0) != 1)
		return hc_error_errno(err, -errno, "read %s", path);
	if (c == '1')
		return 0;
	if (pwrite(fd, "1\n", 2, 0) != 2)
		return hc_error_errno(err, -errno, "enable IPv4 forwarding (%s)", path);
	hc_info("network: IPv4 forwarding turned on in this namespace (left on)");
	return 0;
}

static int resolvers(struct hc_net *net, struct hc_error *err)
{
	const char *env = getenv("HOTCELL_NET_DNS");
	_cleanup_free_ char *text = NULL;

	if (env && *env) {
		char buf[256], *save = NULL;

		snprintf(buf, sizeof(buf), "%s", env);
		for (char *t = strtok_r(buf, ", ", &save);
		     t && net->n_dns < HC_ARRAY_SIZE(net->dns); t = strtok_r(NULL, ", ", &save))
			if (inet_pton(AF_INET, t, &net->dns[net->n_dns]) == 1)
				net->n_dns++;
			else
				return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
						     "HOTCELL_NET_DNS: '%s' is not an IPv4 address",
						     t);
		return 0;
	}
	if (hc_path_read_file("/etc/resolv.conf", 65536, &text, NULL, err) < 0) {
		hc_error_clear(err);
		hc_warn("network: no /etc/resolv.conf: the guest's names will not resolve");
		return 0;
	}
	net->n_dns = hc_net_resolvers_parse(text, net->dns, HC_ARRAY_SIZE(net->dns));
	if (!net->n_dns)
		hc_warn("network: no IPv4 nameserver in /etc/resolv.conf: the guest's names will "
			"not resolve");
	return 0;
}

/* dnsmasq is up when its TCP socket on the gateway accepts. */
static int dnsmasq_wait(struct hc_net *net, struct hc_child *c, struct hc_error *err)
{
	double deadline = hc_clock_ms() + DNSMASQ_READY_MS;
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons(53), .sin_addr = net->lease.gw};

	while (hc_clock_ms() < deadline) {
		_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return 0;
		if (hc_child_poll(c) == 1) {
			char st[64];
			_cleanup_free_ char *log = NULL;

			hc_child_status_str(c->status, st, sizeof(st));
			if (hc_path_read_file(net->dns_log, 4096, &log, NULL, err) < 0)
				hc_error_clear(err);
			return hc_error_setk(err, -EIO, HC_EK_BACKEND, "dnsmasq %s: %.*s", st,
					     log ? (int)strcspn(log, "\n") : 0, log ? log : "");
		}
		poll(NULL, 0, 10);
	}
	return hc_error_setk(err, -ETIMEDOUT, HC_EK_BACKEND, "dnsmasq did not start listening");
}

static int dnsmasq_start(struct hc_net *net, struct hc_error *err)
{
	char **argv = NULL;
	struct hc_child *c;
	_cleanup_close_ int logfd = -1;
	int r;

	dns_log_path(&net->lease, net->dns_log, sizeof(net->dns_log));
	c = malloc(sizeof(*c));
	if (!c)
		return hc_error_set(err, -ENOMEM, "out of memory");
	*c = (struct hc_child)HC_CHILD_INIT;
	net->dnsmasq = c;
	logfd = open(net->dns_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (logfd < 0)
		return hc_error_errno(err, -errno, "open %s", net->dns_log);
	if (hc_net_dnsmasq_argv(net, &argv) < 0)
		return hc_error_set(err, -ENOMEM, "out of memory");
	struct hc_child_opts o = {
		.argv = (const char *const *)argv,
		.stdin_fd = -1,
		.stdout_fd = logfd,
		.stderr_fd = logfd,
		.new_session = true,
	};
	r = hc_child_spawn(c, &o, err);
	hc_net_argv_free(argv);
	if (r < 0) {
		if (r == -ENOENT)
			hc_error_setk(err, r, HC_EK_BACKEND,
				      "networking needs dnsmasq (Debian: dnsmasq-base) on PATH");
		return r;
	}
	if (hc_net_lease_note_helper(&net->lease, "dnsmasq", c->pid) < 0)
		hc_warn("network: cannot record dnsmasq in %s", net->lease.path);
	return dnsmasq_wait(net, c, err);
}

int hc_net_probe(struct hc_error *err)
{
	cap_t caps = cap_get_proc();
	cap_flag_value_t admin = CAP_CLEAR;

	if (caps)
		(void)cap_get_flag(caps, CAP_NET_ADMIN, CAP_EFFECTIVE, &admin);
	cap_free(caps);
	if (admin != CAP_SET)
		return hc_error_setk(err, -EPERM, HC_EK_BACKEND,
				     "networking needs CAP_NET_ADMIN (run hotcell as root)");
	if (access("/dev/net/tun", R_OK | W_OK) < 0)
		return hc_error_setk(err, -errno, HC_EK_BACKEND,
				     "networking needs /dev/net/tun: %s", strerror(errno));
	return hc_net_rules_probe(err);
}

int hc_net_setup(const struct hc_net_opts *opts, struct hc_net **ret, struct hc_error *err)
{
	char dir[HC_PATH_MAX];
	_cleanup_free_ char *routes = NULL;
	const char *pool = opts->pool;
	struct hc_net *net;
	uint32_t base;
	unsigned prefix;
	int r;

	if (!pool)
		pool = getenv("HOTCELL_NET_POOL");
	if (!pool || !*pool)
		pool = HC_NET_POOL_DEFAULT;
	r = hc_net_pool_parse(pool, &base, &prefix, err);
	if (r < 0)
		return hc_error_prefix(err, "HOTCELL_NET_POOL");
	if (opts->n_allow_hosts > HC_NET_MAX_ALLOW)
		return hc_error_setk(err, -E2BIG, HC_EK_USAGE, "more than %d --allow-host",
				     HC_NET_MAX_ALLOW);
	for (size_t i = 0; i < opts->n_allow_hosts; i++)
		if ((r = hc_net_host_check(opts->allow_hosts[i], err)) < 0)
			return r;
	if (opts->n_ports > HC_NET_MAX_PORTS)
		return hc_error_setk(err, -E2BIG, HC_EK_USAGE, "more than %d -p", HC_NET_MAX_PORTS);
	if (access("/dev/net/tun", R_OK | W_OK) < 0)
		return hc_error_setk(err, -errno, HC_EK_BACKEND,
				     "networking needs /dev/net/tun: %s", strerror(errno));

	r = lease_dir(dir, sizeof(dir), err);
	if (r < 0)
		return r;
	if (hc_path_read_file("/proc/net/route", 1 << 20, &routes, NULL, err) < 0)
		return hc_error_prefix(err, "network");
	net = calloc(1, sizeof(*net));
	if (!net)
		return hc_error_set(err, -ENOMEM, "out of memory");
	net->opts = *opts;
	net->lease.fd = -1;
	r = hc_net_lease_acquire(dir, base, prefix, routes, reclaim, dir, &net->lease, err);
	if (r < 0) {
		free(net);
		return r;
	}
	hc_debug("network: %s/30 on %s", inet_ntoa(net->lease.net), net->lease.tap);

	/* Gone from the host when the last lease goes: the reclaim of a dead run may have left
	 * a half-made TAP of this name too. */
	hc_net_link_delete(net->lease.tap);
	r = hc_net_link_create(&net->lease, err);
	if (r < 0)
		goto fail;
	net->tap_made = true;
	if ((r = forwarding_on(err)) < 0 || (r = resolvers(net, err)) < 0)
		goto fail;
	r = hc_net_rules_apply(dir, net, err);
	if (r < 0)
		goto fail;
	net->rules_made = true;
	r = dnsmasq_start(net, err);
	if (r < 0)
		goto fail;
	if (opts->n_ports) {
		r = hc_net_forward_start(opts->ports, opts->n_ports, net->lease.guest,
					 &net->forwarder, err);
		if (r < 0)
			goto fail;
	}
	*ret = net;
	return 0;
fail:
	hc_error_prefix(err, "network");
	hc_net_teardown(net);
	return r;
}

void hc_net_teardown(struct hc_net *net)
{
	char dir[HC_PATH_MAX];
	struct hc_error err = {0};

	if (!net)
		return;
	hc_net_forward_stop(net->forwarder);
	if (net->dnsmasq) {
		hc_child_stop(net->dnsmasq, 1000);
		free(net->dnsmasq);
	}
	if (net->dns_log[0])
		unlink(net->dns_log);
	if (net->rules_made) {
		size_t len = strlen(net->lease.path);
		/* The lease lives in the directory the rules' lock does. */
		snprintf(dir, sizeof(dir), "%.*s", (int)(len - strlen(net->lease.id) - 7),
			 net->lease.path);
		hc_net_rules_remove(dir, &net->lease, net->opts.n_allow_hosts > 0, false);
	}
	if (net->tap_made && hc_net_link_delete(net->lease.tap) < 0)
		hc_warn("network: cannot delete the TAP %s", net->lease.tap);
	hc_net_lease_release(&net->lease);
	(void)err;
	free(net);
}

int hc_net_guest_cmdline(const struct hc_net *net, struct hc_buf *b)
{
	char guest[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &net->lease.guest, guest, sizeof(guest));
	inet_ntop(AF_INET, &net->lease.gw, gw, sizeof(gw));
	return hc_buf_printf(b,
			     " " HC_BOOT_KEY_IP "=%s/30 " HC_BOOT_KEY_GATEWAY "=%s " HC_BOOT_KEY_DNS
			     "=%s " HC_BOOT_KEY_MTU "=%u",
			     guest, gw, gw, HC_NET_MTU);
}
