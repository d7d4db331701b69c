/* SPDX-License-Identifier: MIT */
/*
 * Hybrid vsock: the host side of a guest AF_VSOCK, as Firecracker (docs/vsock.md), Cloud
 * Hypervisor (docs/vsock.md) and vhost-device-vsock all expose it through one unix socket
 * <uds> owned by the VMM:
 *
 *   guest -> host: the guest connect()s to CID 2 port P; the VMM connects to the unix socket
 *                  "<uds>_P", which the host must be listening on (before the boot, so the
 *                  connection arrives without polling).
 *   host -> guest: the host connects to "<uds>" and writes "CONNECT P\n"; the VMM answers
 *                  "OK <host-port>\n" once the guest accepted, or closes the connection when
 *                  nothing listens on P. Bytes after the "\n" belong to the stream.
 */
#pragma once

#include "core/error.h"

/* The longest acknowledgement line we accept ("OK 4294967295\n" is 14 bytes). */
#define HC_HVSOCK_ACK_MAX 32

/* Formats "<uds>_<port>" into buf, checking the unix socket path limit. */
int hc_hvsock_port_path(char *buf, size_t n, const char *uds, unsigned port,
			struct hc_error *err) _must_check_;

/* Creates and binds a listening unix socket at "<uds>_<port>" (a stale file there is
 * replaced). Returns the listening fd (SOCK_CLOEXEC), to become vm->agent_listen_fd. */
int hc_hvsock_listen(const char *uds, unsigned port, struct hc_error *err) _must_check_;

/* Waits up to timeout_ms (-1: forever) for one connection on a listening socket; if
 * cancel_fd >= 0 and becomes readable first (e.g. the VMM's pidfd), fails with -ECHILD.
 * Returns the connected fd (SOCK_CLOEXEC). */
int hc_hvsock_accept(int listen_fd, int cancel_fd, int timeout_ms,
		     struct hc_error *err) _must_check_;

/* Host-initiated connection: connects to "<uds>", writes "CONNECT <port>\n" and reads the
 * "OK <n>\n" line, all within timeout_ms. Never reads past the newline. Returns the connected
 * fd (SOCK_CLOEXEC, blocking); *ret_host_port (may be NULL) gets <n>. -ECONNREFUSED when the
 * VMM closed the connection (nothing listens on the guest port). */
int hc_hvsock_connect(const char *uds, unsigned port, int timeout_ms, unsigned *ret_host_port,
		      struct hc_error *err) _must_check_;

/* After a restore (connections do not survive a snapshot): hc_hvsock_connect to the guest
 * port hotcell-init listens on. Returns the fd, or -1 when that failed (nothing listens yet:
 * the guest then connects out instead); who names the backend in the debug line saying so. */
int hc_hvsock_reconnect(const char *uds, unsigned port, int timeout_ms, const char *who);

/* Teardown: removes "<uds>" and "<uds>_<port>"; what is not there is no error. */
void hc_hvsock_unlink(const char *uds, unsigned port);

/* Parses one acknowledgement line (without or with its "\n"): "OK <n>". Exposed for tests
 * and fuzzing. */
int hc_hvsock_parse_ack(const char *line, size_t len, unsigned *ret_host_port) _must_check_;
