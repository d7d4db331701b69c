/* SPDX-License-Identifier: MIT */
/*
 * What the VMM doubles (firecracker-double.c, cloud-hypervisor-double.c) share: HTTP/1.1
 * request framing on the API socket, the guest's helpers (vhost-device-vsock, QMP), and the
 * fake guest's side of hybrid vsock (Firecracker docs/vsock.md; Cloud Hypervisor docs/vsock.md:
 * the same convention).
 */
#pragma once

#include <poll.h>

#include "core/buf.h"
#include "core/child.h"

/* Prints the message on stderr and exits 1 (the double's atexit cleanup runs). */
__attribute__((noreturn)) void dbl_die(const char *fmt, ...) _printf_(1, 2);

/* ---- HTTP ---- */

#define DBL_MAX_FDS 16
struct dbl_client {
	int fd; /* -1: a free slot */
	struct hc_buf in;
	/* fds that came with the request (SCM_RIGHTS), as Cloud Hypervisor's HTTP server takes
	 * them; a handler that keeps one sets its slot to -1, the rest are closed after it. */
	int fds[DBL_MAX_FDS];
	size_t n_fds;
};

/* Called once per complete request; body is "" when there is none. */
typedef void (*dbl_handler)(struct dbl_client *c, const char *method, const char *path,
			    const char *body);
/* Called for a request that cannot be framed (status 400: bad request line; 413: a body over
 * max_body): the double answers in its own format. The connection is then closed. */
typedef void (*dbl_bad_request)(struct dbl_client *c, int status, size_t body_len);

/* Serves every complete request in the client's buffer. -1: close the connection. */
int dbl_http_serve(struct dbl_client *c, size_t max_headers, size_t max_body, dbl_handler h,
		   dbl_bad_request bad);
/* Reads what arrived on a client and serves it; closes and frees the slot on EOF or error. */
void dbl_http_read(struct dbl_client *c, size_t max_headers, size_t max_body, dbl_handler h,
		   dbl_bad_request bad);
/* Closes the fds of the request being served that its handler did not keep. */
void dbl_client_close_fds(struct dbl_client *c);
/* Accepts one connection on lfd into a free slot of clients[n] (closed when none is free). */
void dbl_http_accept(int lfd, struct dbl_client *clients, size_t n);
/* Writes a response: 204 without a body, else Content-Type: application/json with body. */
void dbl_http_reply(int fd, const char *server, int status, const char *body);
const char *dbl_http_reason(int status);

/* A scenario's canned failure: the entry for req ("METHOD PATH") in $env, a ';'-separated list
 * of "METHOD PATH=STATUS:MESSAGE". true when there is one: *ret_status gets STATUS (0 when not
 * a number), msg the message. */
bool dbl_canned_fault(const char *env, const char *req, int *ret_status, char *msg, size_t n);

/* ---- the main loop ---- */

#define DBL_MAX_CLIENTS 8

/* What a double waits on: its API socket and clients, and, once a guest runs, its QEMU,
 * vhost-device-vsock and the fake guest's hybrid socket. */
struct dbl_loop {
	int lfd;
	size_t max_headers, max_body;
	struct dbl_client clients[DBL_MAX_CLIENTS];
	struct pollfd p[DBL_MAX_CLIENTS + 4];
};

/* What dbl_loop_wait saw on the guest's side. */
#define DBL_QEMU_EXITED 1u   /* QEMU's pidfd fired and it is reaped */
#define DBL_VSOCKD_EXITED 2u /* likewise vhost-device-vsock */
#define DBL_FAKE_VSOCK 4u    /* a connection waits on the fake guest's socket */

void dbl_loop_init(struct dbl_loop *l, int lfd, size_t max_headers, size_t max_body);
/* Waits for any of them (an unused child has pid 0; fake_vsock_fd -1 when none) and returns
 * the DBL_* bits; the API side is served after by dbl_loop_serve, so a guest event is handled
 * first. */
unsigned dbl_loop_wait(struct dbl_loop *l, struct hc_child *qemu, struct hc_child *vsockd,
		       int fake_vsock_fd);
/* Accepts a new API connection and serves every client that has data. */
void dbl_loop_serve(struct dbl_loop *l, dbl_handler h, dbl_bad_request bad);

/* ---- the guest's helpers ---- */

/* Writes "JAIL uid=U capeff=HEX capbnd=HEX nnp=N seccomp=N mntns=X pidns=X pid=P" for the
 * double's own process (from /proc/self/status and /proc/self/ns): the tests check from it
 * that the double ran inside hotcell's jail, as the real VMM would. */
void dbl_log_jail(FILE *log);

/* $name, else def. */
const char *dbl_envor(const char *name, const char *def);
/* Waits (inotify, the child's pidfd) until path is a socket: 0, -ECHILD, -ETIMEDOUT. */
int dbl_wait_sock(const char *path, struct hc_child *c, int timeout_ms);
/* Starts vhost-device-vsock (HOTCELL_VHOST_DEVICE_VSOCK, else the FACTS.md location) for guest
 * CID cid with its vhost-user socket at vhu and the hybrid socket at uds, and waits for it. */
int dbl_vsockd_start(struct hc_child *c, long long cid, const char *vhu, const char *uds,
		     struct hc_error *err);
/* The formatted arguments of dbl_qemu_microvm_argv: they must live as long as the argv. */
struct dbl_qemu_args {
	char smp[32], mem[32], memobj[96];
};
/* Appends to argv from n the QEMU command and the machine every double boots its guest on
 * (FACTS.md): microvm without ACPI under TCG, cpus vCPUs, mib MiB in a shared memfd backend
 * (vhost-user needs it), modern virtio-mmio, no defaults, no display. Returns the new n. */
size_t dbl_qemu_microvm_argv(const char **argv, size_t n, const char *qemu, long long cpus,
			     long long mib, struct dbl_qemu_args *b);
/* One QMP command on a fresh connection to sock (greeting, qmp_capabilities, command). */
int dbl_qmp_command(const char *sock, const char *cmd);

/* ---- the fake guest (no QEMU) ---- */

/* Binds and listens on the hybrid socket uds (as the VMM does). Returns the fd or -errno. */
int dbl_fake_vsock_bind(const char *uds);
/* The guest connects out to CID 2 port 1024: "<uds>_1024", and writes line. Left open. */
void dbl_fake_guest_connect(const char *uds, const char *line);
/* Serves one host connection on the bound socket: "CONNECT 1025\n" gets
 * "OK 1073741824\nHOTCELL-DOUBLE-GUEST <state>\n" (kept open), anything else is closed, as the
 * VMMs do when nothing listens on the port. With HOTCELL_DOUBLE_AGENT=1 and state "restored"
 * the line is left out and a child process plays the restored guest's agent on the connection
 * instead (docs/protocol.md, as hotcell-init after a restore): HOSTNAME and RESEED answered
 * DONE, each EXEC answered STARTED, STDOUT "HOTCELL-DOUBLE-GUEST restored <hostname>\n" and
 * EXIT 0, SHUTDOWN or EOF ends it; anything else is a protocol error (ERROR INVALID). */
void dbl_fake_vsock_serve(int lfd, const char *state);
