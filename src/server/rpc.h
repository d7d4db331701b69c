/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 (https://www.jsonrpc.org/specification), transport-free: a request body in, a
 * response document out. The HTTP, SSE and WebSocket transports (http.c, ws.c) and the fuzz
 * target share it, so every transport validates and answers the same way.
 *
 *  - a body that is not JSON (or too deep) answers -32700 with id null;
 *  - a value that is not a Request object answers -32600 with id null (an empty batch is one
 *    -32600, not an array); a batch answers an array, without the notifications' entries, and
 *    nothing at all when every entry was a notification;
 *  - a notification (no "id" member) is run but never answered, even when it fails;
 *  - an unknown method is -32601, bad params -32602 with data.param naming the param;
 *  - hotcell's own errors are -32000 (data.kind: the kinds of `run --json`'s error object),
 *    -32001 when a limit (--max-runs, --max-vms) is reached.
 */
#pragma once

#include <jansson.h>

#include "core/error.h"

#define HC_RPC_PARSE_ERROR -32700
#define HC_RPC_INVALID_REQUEST -32600
#define HC_RPC_METHOD_NOT_FOUND -32601
#define HC_RPC_INVALID_PARAMS -32602
#define HC_RPC_INTERNAL_ERROR -32603
#define HC_RPC_HOTCELL_ERROR -32000
#define HC_RPC_LIMIT_ERROR -32001

/* Nesting deeper than this is refused before anything looks at the document. */
#define HC_RPC_MAX_DEPTH 32
/* Entries in one batch. */
#define HC_RPC_MAX_BATCH 100

/* A method's failure. */
struct hc_rpc_err {
	int code;	   /* HC_RPC_* */
	char param[64];	   /* -32602: the param at fault */
	struct hc_error e; /* message, and kind for -320xx */
	json_t *result;	   /* optional data.result (a run result that came with an error) */
};

struct hc_rpc_call;

/* Streaming output of a call (SSE events, WebSocket notifications). write() returns 0, or a
 * negative errno when the client cannot keep up or is gone: the caller then cancels. */
struct hc_rpc_stream {
	int (*write)(struct hc_rpc_stream *s, struct hc_rpc_call *call, const char *stream_name,
		     const void *data, size_t n);
	/* stdin fed by the client while the call runs (WebSocket), or -1: the read end of a
	 * pipe the transport writes to and closes at "eof". */
	int stdin_fd;
	/* Readable when the call must be cancelled (client gone, `signal` message). */
	int cancel_fd;
	/* A call with "tty": true on a WebSocket: a pty master that only carries the client's
	 * window size (its `resize` messages set it), and a pipe made readable at each resize
	 * (hc_run_opts.tty_fd / winch_fd); -1 elsewhere. */
	int tty_fd;
	int winch_fd;
};

struct hc_rpc_call {
	const char *method;
	json_t *params;		      /* an object (never NULL: {} when absent) */
	json_t *id;		      /* NULL for a notification */
	struct hc_rpc_stream *stream; /* NULL: answer in one piece */
	void *ctx;		      /* the transport's context (struct hc_server *) */
	int cancel_fd;		      /* -1, or readable when the client went away */
};

typedef json_t *(*hc_rpc_fn)(struct hc_rpc_call *call, struct hc_rpc_err *err);

#define HC_RPC_STREAMING 1u /* may stream its output (sandbox.run, vm.exec) */

struct hc_rpc_method {
	const char *name;
	hc_rpc_fn fn;
	unsigned flags;
};

struct hc_rpc {
	const struct hc_rpc_method *methods;
	size_t n_methods;
};

/* Parses a body. On failure returns -EINVAL and the -32700 response in *ret_error. */
int hc_rpc_parse(const char *body, size_t len, json_t **ret_doc, json_t **ret_error);
/* Answers a parsed document (a request or a batch), without streaming. NULL when there is
 * nothing to answer (notifications only). */
json_t *hc_rpc_dispatch(const struct hc_rpc *rpc, json_t *doc, void *ctx, int cancel_fd);
/* Answers one request (any JSON value); stream may be NULL. NULL for a notification. */
json_t *hc_rpc_call_one(const struct hc_rpc *rpc, json_t *req, void *ctx, int cancel_fd,
			struct hc_rpc_stream *stream);
/* The method of a request that may stream (a Request object naming a method flagged
 * HC_RPC_STREAMING, with an id), else NULL. */
const struct hc_rpc_method *hc_rpc_streaming_method(const struct hc_rpc *rpc, json_t *req);

/* An error response {"jsonrpc", "error": {code, message, data?}, "id"}; id may be NULL (null). */
json_t *hc_rpc_error_response(json_t *id, int code, const char *message, json_t *data);
/* Compact JSON text of a document (malloc'd), NULL when out of memory. */
char *hc_rpc_dumps(const json_t *doc);

/* Helpers for methods: set err and return NULL. */
json_t *hc_rpc_fail(struct hc_rpc_err *err, int code, const char *fmt, ...) _printf_(3, 4);
json_t *hc_rpc_fail_param(struct hc_rpc_err *err, const char *param, const char *fmt, ...)
	_printf_(3, 4);
/* A hotcell error (from the library) as -32000 with its kind; -32602 for usage errors. */
json_t *hc_rpc_fail_hc(struct hc_rpc_err *err, const struct hc_error *e);

/* Reads params: 0 when absent (ret untouched), 1 when set, -EINVAL with err set (-32602)
 * when of the wrong type. */
int hc_rpc_param_str(const struct hc_rpc_call *c, const char *name, const char **ret,
		     struct hc_rpc_err *err);
int hc_rpc_param_bool(const struct hc_rpc_call *c, const char *name, bool *ret,
		      struct hc_rpc_err *err);
/* A whole number in [min, max]. */
int hc_rpc_param_int(const struct hc_rpc_call *c, const char *name, long long min, long long max,
		     long long *ret, struct hc_rpc_err *err);
/* Refuses any key of params not in names (NULL-terminated): -32602 naming it. */
int hc_rpc_params_only(const struct hc_rpc_call *c, const char *const *names,
		       struct hc_rpc_err *err);
