/* SPDX-License-Identifier: MIT */
/*
 * A run's network (src/net) hooked into its VM spec: made before the VM starts, torn down
 * after it is gone. Backends with HC_CAP_NET_TAP get a TAP, filter, resolver and forwarder
 * from src/net; libkrun keeps its own (TSI) and refuses what TSI cannot enforce.
 */
#pragma once

#include "core/buf.h"
#include "net/net.h"
#include "proto/proto.h"
#include "vmm/vmm.h"

/* All zero is a valid "nothing attached" (so is HC_LIB_NET_INIT). */
struct hc_lib_net {
	struct hc_net *net;
	bool attached;
	int tap_fd;	       /* valid when attached: -1 or the fd QEMU inherits */
	struct hc_buf cmdline; /* spec->cmdline plus the guest's network keys */
	struct hc_net_port ports[HC_NET_MAX_PORTS];
	char gw[16];
};

#define HC_LIB_NET_INIT                                                                            \
	{                                                                                          \
		.net = NULL, .tap_fd = -1, .cmdline = HC_BUF_INIT(0)                               \
	}

/* Sets up o's network for the chosen backend and points spec at it (net_tap, net_tap_fd,
 * net_mac, cmdline). Nothing to do for --network none without -p. */
int hc_lib_net_attach(const struct hc_run_opts *o, const struct hc_vmm_ops *ops,
		      struct hc_vm_spec *spec, struct hc_lib_net *ln,
		      struct hc_error *err) _must_check_;
/* The same for a VM restored from a snapshot (hc_lib_snapshot_restore): a network of its own,
 * spec pointed at it (net_tap, net_tap_fd, net_mac, net_host_ip) but spec->cmdline left as
 * the snapshot's (the restored VMM must start with the command line that booted; the guest
 * learns its new address through NETCONF instead, hc_lib_net_netconf). */
int hc_lib_net_attach_restored(const struct hc_run_opts *o, const struct hc_vmm_ops *ops,
			       struct hc_vm_spec *spec, struct hc_lib_net *ln,
			       struct hc_error *err) _must_check_;
/* The guest side of ln's network as a NETCONF payload (address, gateway, resolver, MTU, MAC). */
int hc_lib_net_netconf(const struct hc_lib_net *ln, struct hc_proto_netconf *ret) _must_check_;
/* What networking ops can do on this host, one line for `hotcell doctor` ("inet, full, ..."
 * or "none only here (why)"). Changes nothing. */
void hc_lib_net_report(const struct hc_vmm_ops *ops, char *buf, size_t n);
/* Releases everything attach made; safe on a never-attached one. */
void hc_lib_net_detach(struct hc_lib_net *ln);
