/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 with JSON bodies over a unix socket: the control API of Firecracker
 * (src/firecracker/swagger/firecracker.yaml) and Cloud Hypervisor (vmm/src/api/openapi/
 * cloud-hypervisor.yaml). One client per VMM socket; libcurl with CURLOPT_UNIX_SOCKET_PATH
 * (but for the requests that pass fds, hc_rest_call_fds).
 * Response bodies are bounded (HC_REST_BODY_MAX): a larger one is an error, never truncated.
 */
#pragma once

#include "core/error.h"

#define HC_REST_BODY_MAX (64 * 1024)
#define HC_REST_TIMEOUT_MS 10000

struct hc_rest;
struct json_t; /* jansson's json_t */

/* A client for the API socket at sock_path (nothing is connected yet). */
int hc_rest_new(struct hc_rest **ret, const char *sock_path, struct hc_error *err) _must_check_;
void hc_rest_free(struct hc_rest *r);
/* Every later call also watches fd (-1: none): once it is readable the call ends with
 * -ECANCELED (checked at least about once a second, libcurl's progress callback). */
void hc_rest_set_cancel_fd(struct hc_rest *r, int fd);

/* One exchange: METHOD endpoint with an optional JSON body (NULL: no body). Returns 0 when an
 * HTTP response arrived, whatever its status: *ret_status gets it, *ret_body (may be NULL) the
 * body, NUL-terminated, caller frees. Transport failures (no socket, timeout, body too large)
 * are -errno with "METHOD endpoint: ..." in err. timeout_ms <= 0: HC_REST_TIMEOUT_MS. */
int hc_rest_call(struct hc_rest *r, const char *method, const char *endpoint, const char *body,
		 int timeout_ms, long *ret_status, char **ret_body,
		 struct hc_error *err) _must_check_;

/* Same, but a status outside 2xx is an error too: "METHOD endpoint: HTTP 400: <text>", where
 * <text> is Firecracker's "fault_message", else Cloud Hypervisor's error text (the body's
 * first line), bounded. -EINVAL for 4xx, -EIO otherwise. */
int hc_rest_request(struct hc_rest *r, const char *method, const char *endpoint, const char *body,
		    int timeout_ms, char **ret_body, struct hc_error *err) _must_check_;

/* hc_rest_request with a jansson body, which it consumes (decref). A NULL body is what a failed
 * json_pack() returns: -ENOMEM, nothing is sent. */
int hc_rest_request_json(struct hc_rest *r, const char *method, const char *endpoint,
			 struct json_t *body, int timeout_ms, char **ret_body,
			 struct hc_error *err) _must_check_;

/* One exchange that passes file descriptors along (SCM_RIGHTS on the request's first bytes), on
 * a connection of its own: Cloud Hypervisor takes TAP fds this way (vm.add-net, vm.restore's
 * net_fds). libcurl writes requests itself and cannot attach ancillary data, so this one is
 * written here (HTTP/1.1, Content-Length, "Connection: close"); the fds stay the caller's.
 * As hc_rest_call otherwise (the cancel fd too); 1 to HC_REST_MAX_FDS fds. */
#define HC_REST_MAX_FDS 16
int hc_rest_call_fds(struct hc_rest *r, const char *method, const char *endpoint, const char *body,
		     const int *fds, size_t n_fds, int timeout_ms, long *ret_status,
		     char **ret_body, struct hc_error *err) _must_check_;
/* hc_rest_call_fds with a jansson body (consumed) and hc_rest_request's status check. */
int hc_rest_request_json_fds(struct hc_rest *r, const char *method, const char *endpoint,
			     struct json_t *body, const int *fds, size_t n_fds, int timeout_ms,
			     struct hc_error *err) _must_check_;

/* Extracts the error text of a response body into buf (fault_message, or "error"/"message"
 * of a JSON object, else the first non-empty line of the text). Exposed for tests. */
void hc_rest_error_text(const char *body, char *buf, size_t n);
