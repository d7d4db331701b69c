/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>

#include "lib/net.h"
#include "vmm/binary.h"

HC_EXPORT int hc_port_parse(const char *s, struct hc_port *ret, struct hc_error *err)
{
	struct hc_net_port p;
	int r = hc_net_port_parse(s, &p, err);

	if (r < 0)
		return r;
	ret->host = p.host;
	ret->guest = p.guest;
	ret->host_ip = p.host_ip.s_addr == htonl(INADDR_LOOPBACK) ? 0 : p.host_ip.s_addr;
	ret->udp = p.proto == HC_NET_UDP;
	return 0;
}

static int attach(const struct hc_run_opts *o, const struct hc_vmm_ops *ops,
		  struct hc_vm_spec *spec, struct hc_lib_net *ln, bool restored,
		  struct hc_error *err)
{
	struct hc_net_opts no = {0};
	int r;

	if (!(ops->caps & HC_CAP_NET_TAP)) {
		/* libkrun: TSI carries the guest's sockets through the VMM's own; the host
		 * cannot filter them. */
		if (o->n_allow_hosts)
			return hc_error_setk(err, -EOPNOTSUPP, HC_EK_BACKEND,
					     "backend '%s' cannot enforce --allow-host (its TSI "
					     "networking is not filtered by the host)",
					     ops->name);
		return 0;
	}
	if (o->network == HC_NET_NONE) {
		if (o->n_ports || o->n_allow_hosts)
			return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
					     "%s needs a network (--network inet or full)",
					     o->n_ports ? "-p" : "--allow-host");
		return 0;
	}
	if (o->n_ports > HC_NET_MAX_PORTS)
		return hc_error_setk(err, -E2BIG, HC_EK_USAGE, "more than %d -p", HC_NET_MAX_PORTS);
	for (size_t i = 0; i < o->n_ports; i++) {
		ln->ports[i] = (struct hc_net_port){
			.host_ip.s_addr =
				o->ports[i].host_ip ? o->ports[i].host_ip : htonl(INADDR_LOOPBACK),
			.host = o->ports[i].host,
			.guest = o->ports[i].guest,
			.proto = o->ports[i].udp ? HC_NET_UDP : HC_NET_TCP,
		};
	}
	ln->attached = true;
	ln->tap_fd = -1;
	no.full = o->network == HC_NET_FULL;
	no.allow_hosts = o->allow_hosts;
	no.n_allow_hosts = o->n_allow_hosts;
	no.ports = ln->ports;
	no.n_ports = o->n_ports;
	r = hc_net_setup(&no, &ln->net, err);
	if (r < 0)
		return r;
	/* QEMU takes the TAP as an inherited fd, Cloud Hypervisor as a passed one (SCM_RIGHTS);
	 * Firecracker opens it by name, which a second open file on a single-queue TAP would
	 * refuse (EBUSY). */
	if (hc_streq(ops->name, "qemu") || hc_streq(ops->name, "cloud-hypervisor")) {
		ln->tap_fd = hc_net_tap_open(ln->net, err);
		if (ln->tap_fd < 0) {
			r = ln->tap_fd;
			goto fail;
		}
	}
	if (!restored) {
		if (hc_buf_puts(&ln->cmdline, spec->cmdline ? spec->cmdline : "") < 0 ||
		    hc_net_guest_cmdline(ln->net, &ln->cmdline) < 0) {
			r = hc_error_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
		spec->cmdline = ln->cmdline.data;
	}
	spec->net_tap = ln->net->lease.tap;
	spec->net_tap_fd = ln->tap_fd;
	spec->net_mac = ln->net->lease.mac;
	inet_ntop(AF_INET, &ln->net->lease.gw, ln->gw, sizeof(ln->gw));
	spec->net_host_ip = ln->gw;
	return 0;
fail:
	hc_lib_net_detach(ln);
	return r;
}

int hc_lib_net_attach(const struct hc_run_opts *o, const struct hc_vmm_ops *ops,
		      struct hc_vm_spec *spec, struct hc_lib_net *ln, struct hc_error *err)
{
	return attach(o, ops, spec, ln, false, err);
}

int hc_lib_net_attach_restored(const struct hc_run_opts *o, const struct hc_vmm_ops *ops,
			       struct hc_vm_spec *spec, struct hc_lib_net *ln, struct hc_error *err)
{
	return attach(o, ops, spec, ln, true, err);
}

int hc_lib_net_netconf(const struct hc_lib_net *ln, struct hc_proto_netconf *ret)
{
	const struct hc_net_lease *l;
	unsigned b[6];

	if (!ln || !ln->attached || !ln->net)
		return -EINVAL;
	l = &ln->net->lease;
	if (sscanf(l->mac, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) !=
	    6)
		return -EINVAL;
	*ret = (struct hc_proto_netconf){
		.addr = l->guest.s_addr,
		.gateway = l->gw.s_addr,
		.dns = l->gw.s_addr, /* dnsmasq on the gateway */
		.prefix = 30,
		.mtu = HC_NET_MTU,
	};
	for (size_t i = 0; i < 6; i++)
		ret->mac[i] = (uint8_t)b[i];
	return 0;
}

void hc_lib_net_report(const struct hc_vmm_ops *ops, char *buf, size_t n)
{
	struct hc_error err = {0};
	char dnsmasq[HC_PATH_MAX];

	if (!(ops->caps & HC_CAP_NETWORK)) {
		snprintf(buf, n, "none only (the backend has no network device)");
		return;
	}
	if (!(ops->caps & HC_CAP_NET_TAP)) {
		snprintf(buf, n,
			 "full and -p through %s's own TSI; inet and --allow-host refused "
			 "(TSI is not filtered by the host)",
			 ops->name);
		return;
	}
	if (hc_net_probe(&err) < 0) {
		snprintf(buf, n, "none only here (%s)", err.message);
		return;
	}
	if (hc_binary_which("dnsmasq", dnsmasq, sizeof(dnsmasq)) < 0) {
		snprintf(buf, n,
			 "none only here (networking needs dnsmasq, Debian: dnsmasq-base, "
			 "on PATH)");
		return;
	}
	snprintf(buf, n, "inet, full, --allow-host, -p (a TAP, nftables, %s)%s", dnsmasq,
		 hc_streq(ops->name, "firecracker") ? "; jailed, the TAP is the jail user's" : "");
}

void hc_lib_net_detach(struct hc_lib_net *ln)
{
	if (!ln->attached)
		return;
	ln->attached = false;
	hc_closep(&ln->tap_fd);
	hc_net_teardown(ln->net);
	ln->net = NULL;
	hc_buf_free(&ln->cmdline);
}
