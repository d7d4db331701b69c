/* SPDX-License-Identifier: MIT */
/* Fuzz target: the server's WebSocket message handling after wslay has framed the messages
 * (src/server/ws.c): JSON-RPC requests, batches and client responses, and the `stdin` /
 * `signal` notifications (or requests) aimed at a streaming call in flight. The input is a
 * conversation: one text message per line. The method table has a streaming method that
 * echoes its stdin as `output` until EOF, a signal or the socket closing, so stdin and signal
 * reach a real call. Every message the server sends must be a well-formed JSON-RPC response
 * (jsonrpc "2.0", an id, exactly one of result / error with an integer code) or an `output`
 * notification naming its call and stream. */
#include <poll.h>
#include <stdint.h>

#include "core/util.h"
#include "lib/result.h"
#include "server/exec.h"
#include "server/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *m_echo(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"s", "i", "stream", NULL};
	const char *s = NULL;
	long long i = 0;
	bool stream = false;

	if (hc_rpc_params_only(c, names, err) < 0 || hc_rpc_param_str(c, "s", &s, err) < 0 ||
	    hc_rpc_param_int(c, "i", -1000, 1000, &i, err) < 0 ||
	    hc_rpc_param_bool(c, "stream", &stream, err) < 0)
		return NULL;
	return json_pack("{s:s?, s:I}", "s", s, "i", (json_int_t)i);
}

/* With a stream: stdin back as stdout output, until EOF, a signal byte or the client gone. */
static json_t *m_stream(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	struct hc_rpc_stream *st = c->stream;
	size_t total = 0;
	bool cancelled = false;

	if (!st)
		return m_echo(c, err);
	if (st->write(st, c, "stdout", "started\n", 8) < 0)
		return hc_rpc_fail(err, HC_RPC_HOTCELL_ERROR, "client too slow");
	for (;;) {
		struct pollfd p[3] = {{.fd = st->stdin_fd, .events = POLLIN},
				      {.fd = st->cancel_fd, .events = POLLIN},
				      {.fd = c->cancel_fd, .events = POLLIN}};
		char buf[4096];
		ssize_t n;

		if (poll(p, 3, -1) < 0)
			continue;
		if (p[1].revents || p[2].revents) {
			cancelled = true;
			break;
		}
		n = read(st->stdin_fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		total += (size_t)n;
		if (st->write(st, c, "stdout", buf, (size_t)n) < 0)
			return hc_rpc_fail(err, HC_RPC_HOTCELL_ERROR, "client too slow");
	}
	return json_pack("{s:I, s:b}", "stdin_bytes", (json_int_t)total, "cancelled", cancelled);
}

static json_t *m_fail(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	struct hc_error e = {0};

	hc_error_setk(&e, -EIO, "vm", "the VM is gone");
	return hc_rpc_fail_hc(err, &e);
}

static const struct hc_rpc_method methods[] = {
	{"echo", m_echo, 0},
	{"fail", m_fail, 0},
	{"sandbox.run", m_stream, HC_RPC_STREAMING},
	{"vm.exec", m_stream, HC_RPC_STREAMING},
};

static void check_response(const json_t *r)
{
	const json_t *e = json_object_get(r, "error");

	if (!json_is_object(r) || !json_is_string(json_object_get(r, "jsonrpc")) ||
	    strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") != 0 ||
	    !json_object_get(r, "id") || !!json_object_get(r, "result") == !!e)
		abort();
	if (e && (!json_is_integer(json_object_get(e, "code")) ||
		  !json_is_string(json_object_get(e, "message"))))
		abort();
}

static void check_message(const char *text, size_t n)
{
	json_error_t jerr;
	json_t *m = json_loadb(text, n, 0, &jerr), *method, *params;

	if (!m)
		abort();
	method = json_is_object(m) ? json_object_get(m, "method") : NULL;
	if (method) {
		/* The only notification the server sends. */
		params = json_object_get(m, "params");
		if (!json_is_string(method) || strcmp(json_string_value(method), "output") != 0 ||
		    json_object_get(m, "id") || !json_object_get(params, "call") ||
		    !json_is_string(json_object_get(params, "stream")) ||
		    !json_is_string(json_object_get(params, "data")))
			abort();
	} else if (json_is_array(m)) {
		size_t i;
		json_t *v;

		if (json_array_size(m) == 0)
			abort();
		json_array_foreach(m, i, v) check_response(v);
	} else {
		check_response(m);
	}
	json_decref(m);
}

static void drain(struct hc_server_ws *ws)
{
	char *text;
	size_t n = 0;

	while ((text = hc_server_ws_next(ws, &n))) {
		check_message(text, n);
		free(text);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct hc_server_config cfg = {.idle_timeout_s = 30};
	static struct hc_server s = {
		.cfg = &cfg,
		.rpc = {methods, sizeof(methods) / sizeof(methods[0])},
		.shutdown_fd = -1,
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.idle = PTHREAD_COND_INITIALIZER,
	};
	struct hc_server_ws *ws;
	const char *p = (const char *)data, *end = p + size;

	if (hc_server_ws_new(&s, &ws) < 0)
		abort();
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		/* wslay's on_msg closes the socket on a text message that is not UTF-8. */
		if (!hc_lib_utf8_valid(p, n))
			break;
		if (n)
			hc_server_ws_text(ws, p, n);
		drain(ws);
		p += n + 1;
	}
	/* The socket closes: every call is cancelled and answers. */
	hc_server_ws_cancel_wait(ws);
	drain(ws);
	hc_server_ws_free(ws);
	return 0;
}
