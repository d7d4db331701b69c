/* SPDX-License-Identifier: MIT */
/*
 * One WebSocket connection (GET /api/v1/ws, DESIGN.md §10): text messages are JSON-RPC
 * requests and responses. Framing, masking, fragmentation, ping/pong and the close handshake
 * are wslay's (RFC 6455); this file only moves messages.
 *
 * One thread owns the socket and the wslay context. Each request runs on a call thread of its
 * own, so several calls are in flight at once; a call thread hands its messages (`output`
 * notifications, its response) to the socket thread through a queue. Output of all calls
 * together is bounded (HC_SERVER_STREAM_BUFFER): a client that does not read loses its
 * streaming calls, never the server's memory. The client's `stdin` goes into the call's stdin
 * pipe, `signal` into its cancel pipe, `resize` (a call with "tty": true) into its terminal's
 * size; the socket closing cancels every call on it.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <wslay/wslay.h>
#include <openssl/sha.h>

#include "core/log.h"
#include "core/pty.h"
#include "lib/result.h"
#include "server/exec.h"

#define WS_MAX_MESSAGE (HC_SERVER_MAX_BODY)
#define WS_MAX_CALLS 64
/* wslay's own queue of frames to send is topped up to this much. */
#define WS_WSLAY_QUEUE (1u << 20)

int hc_server_ws_accept_key(const char *key, char ret[32])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char sha[SHA_DIGEST_LENGTH];
	char buf[128];
	char *b64;

	if (strlen(key) > 64)
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s%s", key, guid);
	SHA1((const unsigned char *)buf, strlen(buf), sha);
	b64 = hc_lib_base64(sha, sizeof(sha));
	if (!b64)
		return -ENOMEM;
	snprintf(ret, 32, "%s", b64);
	free(b64);
	return 0;
}

struct ws_msg {
	struct ws_msg *next;
	size_t len;
	bool output; /* counts against the output bound */
	char data[];
};

struct hc_server_ws;

struct ws_call {
	struct hc_rpc_stream stream; /* first: the stream callbacks get it */
	struct ws_call *next;
	struct hc_server_ws *ws;
	json_t *req;
	json_t *id; /* the request's id, matched by stdin/signal/resize "call" */
	int stdin_w, stdin_r;
	int sig_w, sig_r;
	int tty_m;	      /* "tty": true: a pty master holding the client's window size */
	int winch_w, winch_r; /* a byte per `resize` */
};

struct hc_server_ws {
	struct hc_server *s;
	int fd;
	void (*done)(void *);
	void *done_arg;
	wslay_event_context_ptr ctx;
	int wake[2]; /* call threads → socket thread: messages queued, a call ended */
	int gone[2]; /* closed when the socket ends: every call's cancel_fd */
	pthread_mutex_t lock;
	pthread_cond_t calls_done;
	struct ws_msg *head, *tail;
	size_t queued_output;
	struct ws_call *calls;
	unsigned n_calls;
	bool closing;
};

static void wake(struct hc_server_ws *ws)
{
	if (write(ws->wake[1], "x", 1) < 0 && errno != EAGAIN)
		hc_debug("server: ws wake: %s", strerror(errno));
}

/* Queues a text message for the socket thread. Output past the bound is refused. */
static int ws_queue(struct hc_server_ws *ws, const char *text, bool output)
{
	size_t n = strlen(text);
	struct ws_msg *m;

	pthread_mutex_lock(&ws->lock);
	if (output && ws->queued_output + n > HC_SERVER_STREAM_BUFFER) {
		pthread_mutex_unlock(&ws->lock);
		return -ENOBUFS;
	}
	m = malloc(sizeof(*m) + n + 1);
	if (!m) {
		pthread_mutex_unlock(&ws->lock);
		return -ENOMEM;
	}
	m->next = NULL;
	m->len = n;
	m->output = output;
	memcpy(m->data, text, n + 1);
	if (ws->tail)
		ws->tail->next = m;
	else
		ws->head = m;
	ws->tail = m;
	if (output)
		ws->queued_output += n;
	pthread_mutex_unlock(&ws->lock);
	wake(ws);
	return 0;
}

static int ws_queue_json(struct hc_server_ws *ws, json_t *doc, bool output)
{
	char *text = doc ? hc_rpc_dumps(doc) : NULL;
	int r;

	json_decref(doc);
	if (!text)
		return -ENOMEM;
	r = ws_queue(ws, text, output);
	free(text);
	return r;
}

/* ---- calls ---- */

static int ws_stream_write(struct hc_rpc_stream *st, struct hc_rpc_call *call, const char *name,
			   const void *data, size_t n)
{
	struct ws_call *c = (struct ws_call *)st;
	json_t *p = hc_server_output_params(data, n);

	if (!p)
		return -ENOMEM;
	if (json_object_set(p, "call", c->id) < 0 ||
	    json_object_set_new(p, "stream", json_string(name)) < 0) {
		json_decref(p);
		return -ENOMEM;
	}
	return ws_queue_json(
		c->ws,
		json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method", "output", "params", p),
		true);
}

static void call_free(struct ws_call *c)
{
	hc_closep(&c->stdin_r);
	hc_closep(&c->stdin_w);
	hc_closep(&c->sig_r);
	hc_closep(&c->sig_w);
	hc_closep(&c->tty_m);
	hc_closep(&c->winch_r);
	hc_closep(&c->winch_w);
	json_decref(c->req);
	json_decref(c->id);
	free(c);
}

static void *call_thread(void *arg)
{
	struct ws_call *c = arg;
	struct hc_server_ws *ws = c->ws;
	struct hc_server *s = ws->s;
	json_t *resp;

	if (json_is_array(c->req))
		resp = hc_rpc_dispatch(&ws->s->rpc, c->req, ws->s, ws->gone[0]);
	else
		resp = hc_rpc_call_one(&ws->s->rpc, c->req, ws->s, ws->gone[0],
				       c->stdin_r >= 0 ? &c->stream : NULL);
	if (resp && ws_queue_json(ws, resp, false) < 0)
		hc_warn("server: ws: cannot queue a response");
	pthread_mutex_lock(&ws->lock);
	for (struct ws_call **pp = &ws->calls; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	ws->n_calls--;
	pthread_cond_broadcast(&ws->calls_done);
	/* Once the lock is released the socket thread may free ws (its last call has ended):
	 * nothing below touches it. */
	wake(ws);
	pthread_mutex_unlock(&ws->lock);
	call_free(c);
	hc_server_call_leave(s);
	return NULL;
}

static void reply_error(struct hc_server_ws *ws, json_t *id, int code, const char *msg)
{
	if (id)
		ws_queue_json(ws, hc_rpc_error_response(id, code, msg, NULL), false);
}

static int tty_open(struct ws_call *c)
{
	int slave, w[2];

	if (hc_pty_open(0, 0, true, &c->tty_m, &slave) < 0)
		return -1;
	close(slave); /* only the size is used */
	if (pipe2(w, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	c->winch_r = w[0];
	c->winch_w = w[1];
	c->stream.tty_fd = c->tty_m;
	c->stream.winch_fd = c->winch_r;
	return 0;
}

static void start_call(struct hc_server_ws *ws, json_t *req)
{
	struct ws_call *c = calloc(1, sizeof(*c));
	json_t *id = json_is_object(req) ? json_object_get(req, "id") : NULL;
	pthread_attr_t attr;
	pthread_t th;

	if (!c) {
		reply_error(ws, id, HC_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	*c = (struct ws_call){.ws = ws,
			      .stdin_w = -1,
			      .stdin_r = -1,
			      .sig_w = -1,
			      .sig_r = -1,
			      .tty_m = -1,
			      .winch_w = -1,
			      .winch_r = -1};
	c->req = json_incref(req);
	c->id = id ? json_incref(id) : NULL;
	/* A streaming call gets its stdin pipe (open until "eof") and its signal pipe. */
	if (hc_rpc_streaming_method(&ws->s->rpc, req) &&
	    json_is_true(json_object_get(json_object_get(req, "params"), "stream"))) {
		int in[2], sg[2];

		if (pipe2(in, O_CLOEXEC) < 0 || pipe2(sg, O_CLOEXEC | O_NONBLOCK) < 0) {
			call_free(c);
			reply_error(ws, id, HC_RPC_INTERNAL_ERROR, "pipe");
			return;
		}
		fcntl(in[1], F_SETFL, O_NONBLOCK);
		fcntl(in[1], F_SETPIPE_SZ, 1 << 20);
		c->stdin_r = in[0];
		c->stdin_w = in[1];
		c->sig_r = sg[0];
		c->sig_w = sg[1];
		c->stream = (struct hc_rpc_stream){.write = ws_stream_write,
						   .stdin_fd = c->stdin_r,
						   .cancel_fd = c->sig_r,
						   .tty_fd = -1,
						   .winch_fd = -1};
		/* "tty": true: the window size the client's `resize` messages give lives in a
		 * pty of our own (the library reads a terminal's size from an fd, as the CLI's
		 * is), and each resize is a byte in a pipe (the CLI's SIGWINCH). */
		if (json_is_true(json_object_get(json_object_get(req, "params"), "tty")) &&
		    tty_open(c) < 0) {
			call_free(c);
			reply_error(ws, id, HC_RPC_INTERNAL_ERROR, "cannot open a pty");
			return;
		}
	}
	pthread_mutex_lock(&ws->lock);
	if (ws->n_calls >= WS_MAX_CALLS) {
		pthread_mutex_unlock(&ws->lock);
		call_free(c);
		if (id)
			ws_queue_json(
				ws,
				hc_rpc_error_response(id, HC_RPC_LIMIT_ERROR,
						      "too many calls in flight on this WebSocket",
						      json_pack("{s:s}", "kind", "limit")),
				false);
		return;
	}
	c->next = ws->calls;
	ws->calls = c;
	ws->n_calls++;
	pthread_mutex_unlock(&ws->lock);
	hc_server_call_enter(ws->s);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, call_thread, c) != 0) {
		pthread_mutex_lock(&ws->lock);
		ws->calls = c->next;
		ws->n_calls--;
		pthread_mutex_unlock(&ws->lock);
		call_free(c);
		hc_server_call_leave(ws->s);
		reply_error(ws, id, HC_RPC_INTERNAL_ERROR, "cannot start a thread");
	}
	pthread_attr_destroy(&attr);
}

/* The streaming call a stdin/signal message names (ws->lock held). */
static struct ws_call *find_call(struct hc_server_ws *ws, json_t *params)
{
	json_t *id = json_object_get(params, "call");

	for (struct ws_call *c = ws->calls; id && c; c = c->next)
		if (c->id && c->stdin_w >= -1 && c->sig_w >= 0 && json_equal(c->id, id))
			return c;
	return NULL;
}

static int signal_bytes(json_t *sig)
{
	const char *s = json_string_value(sig);

	if (json_is_integer(sig)) {
		json_int_t n = json_integer_value(sig);

		return n == 15 || n == 2 || n == 1 ? 1 : n == 9 ? 2 : 0;
	}
	if (!s)
		return 0;
	if (hc_startswith(s, "SIG"))
		s += 3;
	return hc_streq(s, "TERM") || hc_streq(s, "INT") || hc_streq(s, "HUP") ? 1
	       : hc_streq(s, "KILL")					       ? 2
									       : 0;
}

/* `stdin`, `signal` and `resize` from the client (notifications, or requests answered {}). */
static void control(struct hc_server_ws *ws, json_t *req, const char *method)
{
	json_t *id = json_object_get(req, "id"), *params = json_object_get(req, "params");
	const char *err = NULL;
	int code = HC_RPC_INVALID_PARAMS;
	struct ws_call *c;

	pthread_mutex_lock(&ws->lock);
	c = json_is_object(params) ? find_call(ws, params) : NULL;
	if (!c) {
		err = "no streaming call in flight with that \"call\" id";
	} else if (hc_streq(method, "stdin")) {
		const char *data = json_string_value(json_object_get(params, "data"));
		const char *enc = json_string_value(json_object_get(params, "encoding"));
		void *bytes = NULL;
		size_t n = 0;

		if (json_object_get(params, "data") && !data)
			err = "\"data\" must be a string";
		else if (enc && !hc_streq(enc, "utf-8") && !hc_streq(enc, "base64"))
			err = "\"encoding\" must be \"utf-8\" or \"base64\"";
		else if (data && enc && hc_streq(enc, "base64") &&
			 hc_server_base64_decode(data, strlen(data), &bytes, &n) < 0)
			err = "\"data\" is not valid base64";
		else if (c->stdin_w < 0 && data && *data)
			err = "stdin of that call is closed already";
		if (!err && data && c->stdin_w >= 0) {
			const void *p = bytes ? bytes : data;
			size_t len = bytes ? n : strlen(data);
			ssize_t w = len ? write(c->stdin_w, p, len) : 0;

			if (w < 0 || (size_t)w != len) {
				err = "the command is not reading its stdin: data refused";
				code = HC_RPC_HOTCELL_ERROR;
			}
		}
		free(bytes);
		if (!err && json_is_true(json_object_get(params, "eof")))
			hc_closep(&c->stdin_w);
	} else if (hc_streq(method, "resize")) {
		json_t *rows = json_object_get(params, "rows"),
		       *cols = json_object_get(params, "cols");

		if (c->tty_m < 0)
			err = "that call has no terminal (\"tty\": true)";
		else if (!json_is_integer(rows) || !json_is_integer(cols) ||
			 json_integer_value(rows) < 0 || json_integer_value(rows) > 0xffff ||
			 json_integer_value(cols) < 0 || json_integer_value(cols) > 0xffff)
			err = "\"rows\" and \"cols\": whole numbers 0..65535";
		else if (hc_pty_set_size(c->tty_m, (uint16_t)json_integer_value(rows),
					 (uint16_t)json_integer_value(cols)) < 0 ||
			 (write(c->winch_w, "w", 1) < 0 && errno != EAGAIN))
			hc_debug("server: ws resize: %s", strerror(errno));
	} else {
		int b = signal_bytes(json_object_get(params, "signal"));

		if (!b)
			err = "\"signal\": SIGTERM, SIGINT, SIGHUP (orderly) or SIGKILL";
		else if (write(c->sig_w, "xx", (size_t)b) < 0)
			hc_debug("server: ws signal pipe: %s", strerror(errno));
	}
	pthread_mutex_unlock(&ws->lock);
	if (!id)
		return;
	if (err)
		ws_queue_json(ws, hc_rpc_error_response(id, code, err, NULL), false);
	else
		ws_queue_json(ws,
			      json_pack("{s:s, s:{}, s:O}", "jsonrpc", "2.0", "result", "id", id),
			      false);
}

static void on_text(struct hc_server_ws *ws, const char *text, size_t n)
{
	json_t *doc = NULL, *perr = NULL, *m;

	if (hc_rpc_parse(text, n, &doc, &perr) < 0) {
		ws_queue_json(ws, perr, false);
		return;
	}
	/* Responses from the client (to nothing we asked) are dropped, as the spec allows. */
	m = json_is_object(doc) ? json_object_get(doc, "method") : NULL;
	if (json_is_object(doc) && !m &&
	    (json_object_get(doc, "result") || json_object_get(doc, "error"))) {
		json_decref(doc);
		return;
	}
	if (json_is_string(m) &&
	    (hc_streq(json_string_value(m), "stdin") || hc_streq(json_string_value(m), "signal") ||
	     hc_streq(json_string_value(m), "resize")))
		control(ws, doc, json_string_value(m));
	else
		start_call(ws, doc);
	json_decref(doc);
}

/* ---- wslay callbacks ---- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	struct hc_server_ws *ws = user;
	ssize_t n = recv(ws->fd, buf, len, MSG_DONTWAIT);

	if (n < 0) {
		wslay_event_set_error(ctx, errno == EAGAIN || errno == EINTR
						   ? WSLAY_ERR_WOULDBLOCK
						   : WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	if (n == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return n;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user)
{
	struct hc_server_ws *ws = user;
	ssize_t n = send(ws->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n < 0) {
		wslay_event_set_error(ctx, errno == EAGAIN || errno == EINTR
						   ? WSLAY_ERR_WOULDBLOCK
						   : WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return n;
}

static void ws_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
		      void *user)
{
	struct hc_server_ws *ws = user;

	if (a->opcode == WSLAY_TEXT_FRAME) {
		if (!hc_lib_utf8_valid((const char *)a->msg, a->msg_length)) {
			/* RFC 6455 §8.1 */
			wslay_event_queue_close(ctx, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
						(const uint8_t *)"text is not UTF-8", 17);
			return;
		}
		on_text(ws, (const char *)a->msg, a->msg_length);
	} else if (a->opcode == WSLAY_BINARY_FRAME) {
		wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA,
					(const uint8_t *)"text messages only", 18);
	}
}

/* Moves queued messages into wslay, as far as its queue bound allows. */
static void feed(struct hc_server_ws *ws)
{
	pthread_mutex_lock(&ws->lock);
	while (ws->head && wslay_event_get_queued_msg_length(ws->ctx) < WS_WSLAY_QUEUE) {
		struct ws_msg *m = ws->head;
		struct wslay_event_msg msg = {.opcode = WSLAY_TEXT_FRAME,
					      .msg = (const uint8_t *)m->data,
					      .msg_length = m->len};

		ws->head = m->next;
		if (!ws->head)
			ws->tail = NULL;
		if (m->output)
			ws->queued_output -= m->len;
		if (!ws->closing && wslay_event_queue_msg(ws->ctx, &msg) < 0)
			hc_debug("server: ws: message dropped (closing)");
		free(m);
	}
	pthread_mutex_unlock(&ws->lock);
}

static void *ws_thread(void *arg)
{
	struct hc_server_ws *ws = arg;
	struct hc_server *s = ws->s;
	void (*done)(void *) = ws->done;
	void *done_arg = ws->done_arg;
	int idle_ms = (int)s->cfg->idle_timeout_s * 10000, idle_left = idle_ms;
	bool shut = false;

	for (;;) {
		struct pollfd p[3] = {
			{.fd = ws->fd,
			 .events = (short)((wslay_event_want_read(ws->ctx) ? POLLIN : 0) |
					   (wslay_event_want_write(ws->ctx) ? POLLOUT : 0))},
			{.fd = ws->wake[0], .events = POLLIN},
			{.fd = shut ? -1 : s->shutdown_fd, .events = POLLIN},
		};
		unsigned n_calls;
		int r;

		pthread_mutex_lock(&ws->lock);
		n_calls = ws->n_calls;
		pthread_mutex_unlock(&ws->lock);
		if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx))
			break;
		r = poll(p, 3, n_calls ? -1 : (idle_left > 1000 ? 1000 : idle_left));
		if (r < 0 && errno != EINTR)
			break;
		if (r == 0 && !n_calls) {
			idle_left -= 1000;
			if (idle_left <= 0 && !ws->closing) {
				ws->closing = true;
				wslay_event_queue_close(ws->ctx, WSLAY_CODE_NORMAL_CLOSURE,
							(const uint8_t *)"idle", 4);
			}
		}
		if (p[1].revents) {
			char b[256];

			while (read(ws->wake[0], b, sizeof(b)) > 0)
				;
		}
		if (p[2].revents && !shut) {
			/* SIGTERM: the calls are being cancelled by the server; close once they
			 * have answered. */
			shut = true;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			idle_left = idle_ms;
			if (wslay_event_recv(ws->ctx) != 0)
				break;
		}
		feed(ws);
		if (shut && !ws->closing && !n_calls && !ws->head) {
			ws->closing = true;
			wslay_event_queue_close(ws->ctx, WSLAY_CODE_GOING_AWAY,
						(const uint8_t *)"server stopping", 15);
		}
		if (wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0)
			break;
	}

	hc_server_ws_cancel_wait(ws);
	wslay_event_context_free(ws->ctx);
	hc_server_ws_free(ws);
	done(done_arg);
	hc_server_call_leave(s);
	return NULL;
}

int hc_server_ws_new(struct hc_server *s, struct hc_server_ws **ret)
{
	struct hc_server_ws *ws = calloc(1, sizeof(*ws));

	if (!ws)
		return -ENOMEM;
	ws->s = s;
	ws->fd = -1;
	ws->wake[0] = ws->wake[1] = ws->gone[0] = ws->gone[1] = -1;
	if (pipe2(ws->wake, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(ws->gone, O_CLOEXEC) < 0) {
		int r = -errno;

		hc_closep(&ws->wake[0]);
		hc_closep(&ws->wake[1]);
		free(ws);
		return r;
	}
	pthread_mutex_init(&ws->lock, NULL);
	pthread_cond_init(&ws->calls_done, NULL);
	*ret = ws;
	return 0;
}

void hc_server_ws_text(struct hc_server_ws *ws, const char *text, size_t n)
{
	on_text(ws, text, n);
}

char *hc_server_ws_next(struct hc_server_ws *ws, size_t *ret_len)
{
	struct ws_msg *m;
	char *text = NULL;

	pthread_mutex_lock(&ws->lock);
	m = ws->head;
	if (m) {
		ws->head = m->next;
		if (!ws->head)
			ws->tail = NULL;
		if (m->output)
			ws->queued_output -= m->len;
	}
	pthread_mutex_unlock(&ws->lock);
	if (!m)
		return NULL;
	text = malloc(m->len + 1);
	if (text) {
		memcpy(text, m->data, m->len + 1);
		*ret_len = m->len;
	}
	free(m);
	return text;
}

void hc_server_ws_cancel_wait(struct hc_server_ws *ws)
{
	pthread_mutex_lock(&ws->lock);
	ws->closing = true;
	hc_closep(&ws->gone[1]);
	while (ws->n_calls)
		pthread_cond_wait(&ws->calls_done, &ws->lock);
	pthread_mutex_unlock(&ws->lock);
}

void hc_server_ws_free(struct hc_server_ws *ws)
{
	if (!ws)
		return;
	hc_server_ws_cancel_wait(ws);
	while (ws->head) {
		struct ws_msg *m = ws->head;

		ws->head = m->next;
		free(m);
	}
	hc_closep(&ws->gone[0]);
	hc_closep(&ws->wake[0]);
	hc_closep(&ws->wake[1]);
	pthread_mutex_destroy(&ws->lock);
	pthread_cond_destroy(&ws->calls_done);
	free(ws);
}

int hc_server_ws_start(struct hc_server *s, int fd, void (*done)(void *), void *done_arg)
{
	static const struct wslay_event_callbacks cb = {
		.recv_callback = ws_recv,
		.send_callback = ws_send,
		.on_msg_recv_callback = ws_on_msg,
	};
	struct hc_server_ws *ws;
	pthread_attr_t attr;
	pthread_t th;
	int r;

	r = hc_server_ws_new(s, &ws);
	if (r < 0)
		return r;
	ws->fd = fd;
	ws->done = done;
	ws->done_arg = done_arg;
	if (wslay_event_context_server_init(&ws->ctx, &cb, ws) != 0) {
		hc_server_ws_free(ws);
		return -ENOMEM;
	}
	wslay_event_config_set_max_recv_msg_length(ws->ctx, WS_MAX_MESSAGE);
	hc_server_call_enter(s);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&th, &attr, ws_thread, ws);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		hc_server_call_leave(s);
		wslay_event_context_free(ws->ctx);
		hc_server_ws_free(ws);
		return -r;
	}
	return 0;
}
