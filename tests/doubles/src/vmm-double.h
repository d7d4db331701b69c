/* SPDX-License-Identifier: MIT */
/*
 * What the VMM doubles (firecracker-double.c, cloud-hypervisor-double.c) share: HTTP/1.1
 * request framing on the API socket, the guest's helpers (vhost-device-vsock, QMP), and the
 * fake guest's side of hybrid vsock (Firecracker docs/vsock.md; Cloud Hypervisor docs/vsock.md:
 * the same convention).
 */
#pragma once

#include "core/buf.h"
#include "core/child.h"

/* ---- HTTP ---- */

struct dbl_client {
	int fd; /* -1: a free slot */
	struct hc_buf in;
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
/* Accepts one connection on lfd into a free slot of clients[n] (closed when none is free). */
void dbl_http_accept(int lfd, struct dbl_client *clients, size_t n);
/* Writes a response: 204 without a body, else Content-Type: application/json with body. */
void dbl_http_reply(int fd, const char *server, int status, const char *body);
const char *dbl_http_reason(int status);

/* ---- the guest's helpers ---- */

/* $name, else def. */
const char *dbl_envor(const char *name, const char *def);
/* Waits (inotify, the child's pidfd) until path is a socket: 0, -ECHILD, -ETIMEDOUT. */
int dbl_wait_sock(const char *path, struct hc_child *c, int timeout_ms);
/* Starts vhost-device-vsock (HOTCELL_VHOST_DEVICE_VSOCK, else the FACTS.md location) for guest
 * CID cid with its vhost-user socket at vhu and the hybrid socket at uds, and waits for it. */
int dbl_vsockd_start(struct hc_child *c, long long cid, const char *vhu, const char *uds,
		     struct hc_error *err);
/* One QMP command on a fresh connection to sock (greeting, qmp_capabilities, command). */
int dbl_qmp_command(const char *sock, const char *cmd);

/* ---- the fake guest (no QEMU) ---- */

/* Binds and listens on the hybrid socket uds (as the VMM does). Returns the fd or -errno. */
int dbl_fake_vsock_bind(const char *uds);
/* The guest connects out to CID 2 port 1024: "<uds>_1024", and writes line. Left open. */
void dbl_fake_guest_connect(const char *uds, const char *line);
/* Serves one host connection on the bound socket: "CONNECT 1025\n" gets
 * "OK 1073741824\nHOTCELL-DOUBLE-GUEST <state>\n" (kept open), anything else is closed, as the
 * VMMs do when nothing listens on the port. */
void dbl_fake_vsock_serve(int lfd, const char *state);
