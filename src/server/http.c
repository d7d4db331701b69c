/* SPDX-License-Identifier: MIT */
/*
 * The HTTP side of `hotcell serve`, on libmicrohttpd (HTTP/1.1, its upgrade support for the
 * WebSocket). libmicrohttpd runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION):
 * hc_run blocks for the length of a run, and a blocked handler then holds only its own
 * connection; idle and slow connections (slow headers or bodies) are closed after
 * --idle-timeout by libmicrohttpd's connection timeout.
 *
 * Routes: POST /api/v1/rpc (JSON-RPC; SSE when the call streams), GET /api/v1/ws (WebSocket),
 * PUT /api/v1/migrate (an incoming migration, streamed: server/migrate.c).
 * Every request needs "Authorization: Bearer <token>" (the WebSocket may pass it as the
 * access_token query parameter instead, for browsers); anything else is 401 with a JSON body.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core/buf.h"
#include "core/log.h"
#include "lib/backend.h"
#include "server/exec.h"

/* ---- auth ---- */

int hc_server_auth_init(struct hc_server *s, const char *token)
{
	if (!token || !*token)
		return -EINVAL;
	SHA256((const unsigned char *)token, strlen(token), s->token_hash);
	return 0;
}

/* Both sides are hashed first, so the comparison takes the same time whatever the length or
 * content of the presented token (CRYPTO_memcmp compares in constant time). */
bool hc_server_token_ok(const struct hc_server *s, const char *token)
{
	unsigned char h[32];

	if (!token)
		return false;
	SHA256((const unsigned char *)token, strlen(token), h);
	return CRYPTO_memcmp(h, s->token_hash, sizeof(h)) == 0;
}

bool hc_server_auth_ok(const struct hc_server *s, const char *authorization)
{
	/* RFC 6750 §2.1: the scheme is case-insensitive, then one or more spaces. */
	if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
		return false;
	authorization += 7;
	while (*authorization == ' ')
		authorization++;
	return hc_server_token_ok(s, authorization);
}

void hc_server_call_enter(struct hc_server *s)
{
	atomic_fetch_add(&s->calls, 1);
}

void hc_server_call_leave(struct hc_server *s)
{
	if (atomic_fetch_sub(&s->calls, 1) == 1) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_broadcast(&s->idle);
		pthread_mutex_unlock(&s->lock);
	}
}

/* ---- responses ---- */

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *type,
				 char *text)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	if (!text)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"hotcell\"");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *doc)
{
	char *text = doc ? hc_rpc_dumps(doc) : NULL;

	json_decref(doc);
	return send_text(conn, status, "application/json", text);
}

/* HTTP-level failures (auth, route, size) carry a JSON-RPC error object too, so a JSON-RPC
 * client reads them like any other error. */
static enum MHD_Result send_http_error(struct MHD_Connection *conn, unsigned status, int code,
				       const char *kind, const char *message)
{
	return send_json(conn, status,
			 hc_rpc_error_response(NULL, code, message,
					       kind ? json_pack("{s:s}", "kind", kind) : NULL));
}

/* ---- per request state ---- */

struct sse;

struct req {
	struct hc_buf body;
	bool too_big;
	bool authed;
	struct hc_server_mig_in *mig; /* PUT /api/v1/migrate */
	/* The migration failed: the rest of the body is dropped and mig_err is the answer
	 * (libmicrohttpd sends no response queued before the body was read). */
	bool mig_failed;
	struct hc_error mig_err;
};

/* ---- SSE: the call runs on a thread of its own; libmicrohttpd's reader takes its events */

struct sse {
	struct hc_rpc_stream stream;
	struct hc_server *s;
	json_t *req;
	int client_fd; /* a dup of the connection's socket: the pump watches it for a hang-up */
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct hc_buf q; /* events not yet sent */
	size_t sent;	 /* bytes of q already handed to libmicrohttpd */
	bool finished;
};

static int sse_append_event(struct sse *x, const char *event, const char *data)
{
	int r;

	pthread_mutex_lock(&x->lock);
	r = hc_buf_printf(&x->q, "event: %s\ndata: %s\n\n", event, data);
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->lock);
	return r;
}

static int sse_write(struct hc_rpc_stream *st, struct hc_rpc_call *call, const char *name,
		     const void *data, size_t n)
{
	struct sse *x = (struct sse *)st;
	json_t *o = hc_server_output_params(data, n);
	char *text = o ? hc_rpc_dumps(o) : NULL;
	int r;

	json_decref(o);
	if (!text)
		return -ENOMEM;
	r = sse_append_event(x, name, text);
	free(text);
	return r;
}

static void *sse_thread(void *arg)
{
	struct sse *x = arg;
	json_t *resp = hc_rpc_call_one(&x->s->rpc, x->req, x->s, x->client_fd, &x->stream);
	char *text = resp ? hc_rpc_dumps(resp) : NULL;

	json_decref(resp);
	pthread_mutex_lock(&x->lock);
	/* The result event always fits: the cap is for output only. */
	x->q.max = 0;
	if (hc_buf_printf(&x->q, "event: result\ndata: %s\n\n",
			  text ? text
			       : "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32603,"
				 "\"message\":\"Internal error\"},\"id\":null}") < 0)
		hc_warn("server: cannot queue an SSE result");
	x->finished = true;
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->lock);
	free(text);
	hc_server_call_leave(x->s);
	return NULL;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *x = cls;
	ssize_t n;

	pthread_mutex_lock(&x->lock);
	while (x->q.len == x->sent && !x->finished)
		pthread_cond_wait(&x->cond, &x->lock);
	if (x->q.len == x->sent) {
		pthread_mutex_unlock(&x->lock);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	n = (ssize_t)(x->q.len - x->sent < max ? x->q.len - x->sent : max);
	memcpy(buf, x->q.data + x->sent, (size_t)n);
	x->sent += (size_t)n;
	if (x->sent == x->q.len) {
		hc_buf_reset(&x->q);
		x->sent = 0;
	}
	pthread_mutex_unlock(&x->lock);
	return n;
}

static void sse_free(void *cls)
{
	struct sse *x = cls;

	/* The pump sees the hang-up on client_fd and cancels the run; wait for it. */
	pthread_join(x->th, NULL);
	hc_closep(&x->client_fd);
	json_decref(x->req);
	hc_buf_free(&x->q);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
	free(x);
}

static int connection_fd(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	return ci ? ci->connect_fd : -1;
}

static enum MHD_Result start_sse(struct hc_server *s, struct MHD_Connection *conn, json_t *req)
{
	struct MHD_Response *resp;
	struct sse *x = calloc(1, sizeof(*x));
	int fd = connection_fd(conn);
	enum MHD_Result r;

	if (!x)
		return MHD_NO;
	x->s = s;
	x->req = json_incref(req);
	x->q = (struct hc_buf)HC_BUF_INIT(HC_SERVER_STREAM_BUFFER);
	x->stream = (struct hc_rpc_stream){
		.write = sse_write, .stdin_fd = -1, .cancel_fd = -1, .tty_fd = -1, .winch_fd = -1};
	x->client_fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->cond, NULL);
	hc_server_call_enter(s);
	if (pthread_create(&x->th, NULL, sse_thread, x) != 0) {
		hc_server_call_leave(s);
		hc_closep(&x->client_fd);
		json_decref(x->req);
		free(x);
		return send_http_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, HC_RPC_INTERNAL_ERROR,
				       NULL, "cannot start a thread");
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, x, sse_free);
	if (!resp) {
		sse_free(x);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

/* ---- POST /api/v1/rpc ---- */

static bool wants_sse(struct MHD_Connection *conn, json_t *req)
{
	const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
	json_t *params = json_object_get(req, "params");

	if (json_is_true(json_object_get(params, "stream")))
		return true;
	return accept && strstr(accept, "text/event-stream");
}

static enum MHD_Result rpc_request(struct hc_server *s, struct MHD_Connection *conn, struct req *rq)
{
	json_t *doc = NULL, *perr = NULL, *resp;
	enum MHD_Result r;

	if (hc_rpc_parse(rq->body.data ? rq->body.data : "", rq->body.len, &doc, &perr) < 0)
		return send_json(conn, MHD_HTTP_OK, perr);
	if (hc_rpc_streaming_method(&s->rpc, doc) && wants_sse(conn, doc)) {
		/* Asked for by "stream": true or by Accept: the params say so to the method. */
		json_t *params = json_object_get(doc, "params");

		if (json_is_object(params))
			json_object_set_new(params, "stream", json_true());
		else if (!params)
			json_object_set_new(doc, "params", json_pack("{s:b}", "stream", 1));
		r = start_sse(s, conn, doc);
		json_decref(doc);
		return r;
	}
	hc_server_call_enter(s);
	resp = hc_rpc_dispatch(&s->rpc, doc, s, connection_fd(conn));
	hc_server_call_leave(s);
	json_decref(doc);
	if (!resp) {
		struct MHD_Response *empty =
			MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);

		if (!empty)
			return MHD_NO;
		r = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, empty);
		MHD_destroy_response(empty);
		return r;
	}
	return send_json(conn, MHD_HTTP_OK, resp);
}

/* ---- GET /api/v1/ws ---- */

static void upgrade_done(void *arg)
{
	MHD_upgrade_action(arg, MHD_UPGRADE_ACTION_CLOSE);
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *req_cls, const char *extra_in,
		       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct hc_server *s = cls;

	/* A client does not send frames before it has read the 101: nothing is lost here. */
	if (extra_in_size)
		hc_debug("server: %zu bytes arrived with the WebSocket upgrade", extra_in_size);
	if (hc_server_ws_start(s, sock, upgrade_done, urh) < 0)
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static bool header_has_token(const char *v, const char *token)
{
	/* "keep-alive, Upgrade" */
	size_t n = strlen(token);

	for (const char *p = v; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncasecmp(p, token, n) == 0 && (p[n] == 0 || p[n] == ',' || p[n] == ' '))
			return true;
		p = strchr(p, ',');
	}
	return false;
}

static enum MHD_Result ws_request(struct hc_server *s, struct MHD_Connection *conn)
{
	const char *up = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
	const char *co = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Connection");
	const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
	const char *ver =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
	struct MHD_Response *resp;
	char accept[32];
	enum MHD_Result r;

	/* RFC 6455 §4.2.1 */
	if (!up || strcasecmp(up, "websocket") != 0 || !co || !header_has_token(co, "upgrade") ||
	    !key)
		return send_http_error(conn, MHD_HTTP_BAD_REQUEST, HC_RPC_INVALID_REQUEST, NULL,
				       "GET /api/v1/ws is a WebSocket: Upgrade: websocket "
				       "expected");
	if (!ver || strcmp(ver, "13") != 0) {
		struct MHD_Response *bad =
			MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);

		if (!bad)
			return MHD_NO;
		MHD_add_response_header(bad, "Sec-WebSocket-Version", "13");
		r = MHD_queue_response(conn, MHD_HTTP_UPGRADE_REQUIRED, bad);
		MHD_destroy_response(bad);
		return r;
	}
	if (hc_server_ws_accept_key(key, accept) < 0)
		return send_http_error(conn, MHD_HTTP_BAD_REQUEST, HC_RPC_INVALID_REQUEST, NULL,
				       "bad Sec-WebSocket-Key");
	resp = MHD_create_response_for_upgrade(on_upgrade, s);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
	MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
	r = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	MHD_destroy_response(resp);
	return r;
}

/* ---- PUT /api/v1/migrate: the body streams into the migration (server/migrate.c) ---- */

static unsigned mig_status(const struct hc_error *e)
{
	switch (e->code) {
	case -EUSERS:
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	case -ENOSPC:
		return MHD_HTTP_INSUFFICIENT_STORAGE;
	case -EBADMSG:
	case -EILSEQ:
	case -EPIPE:
		return MHD_HTTP_BAD_REQUEST;
	case -EOPNOTSUPP:
		return MHD_HTTP_NOT_IMPLEMENTED;
	default:
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

static enum MHD_Result mig_answer_error(struct MHD_Connection *conn, const struct hc_error *e)
{
	return send_http_error(conn, mig_status(e), HC_RPC_HOTCELL_ERROR,
			       e->kind[0] ? e->kind : "migrate", e->message);
}

/* Ends the migration at once (nothing of it stays); the answer waits for the body's end. */
static void mig_fail(struct req *rq, const struct hc_error *e)
{
	hc_warn("migrate: incoming migration refused: %s", e->message);
	hc_server_mig_in_free(rq->mig);
	rq->mig = NULL;
	rq->mig_failed = true;
	rq->mig_err = *e;
}

static enum MHD_Result mig_request(struct hc_server *s, struct MHD_Connection *conn, struct req *rq,
				   const char *upload_data, size_t *upload_data_size)
{
	struct hc_error e = {0};
	json_t *res = NULL;

	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (!rq->mig_failed && hc_server_mig_in_feed(rq->mig, upload_data, n, &e) < 0)
			mig_fail(rq, &e);
		return MHD_YES;
	}
	if (rq->mig_failed)
		return mig_answer_error(conn, &rq->mig_err);
	hc_server_call_enter(s);
	if (hc_server_mig_in_finish(rq->mig, &res, &e) < 0) {
		hc_server_call_leave(s);
		mig_fail(rq, &e);
		return mig_answer_error(conn, &e);
	}
	hc_server_call_leave(s);
	hc_server_mig_in_free(rq->mig);
	rq->mig = NULL;
	return send_json(conn, MHD_HTTP_OK,
			 json_pack("{s:s,s:n,s:o}", "jsonrpc", "2.0", "id", "result", res));
}

/* ---- the handler ---- */

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	struct hc_server *s = cls;
	struct req *rq = *con_cls;
	bool is_rpc = hc_streq(url, "/api/v1/rpc"), is_ws = hc_streq(url, "/api/v1/ws");
	bool is_mig = hc_streq(url, "/api/v1/migrate");

	if (!rq) {
		const char *auth =
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
		const char *len =
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		bool ok = hc_server_auth_ok(s, auth);

		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->body = (struct hc_buf)HC_BUF_INIT(s->cfg->max_body);
		*con_cls = rq;
		/* The path alone: libmicrohttpd keeps the query string (which may carry an
		 * access_token) out of url. */
		hc_debug("server: %s %s", method, url);
		/* The WebSocket may carry the token as a query parameter (browsers cannot set
		 * headers there); a JSON-RPC request may not. */
		if (!ok && is_ws && !auth)
			ok = hc_server_token_ok(
				s, MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
							       "access_token"));
		if (!ok)
			return send_http_error(conn, MHD_HTTP_UNAUTHORIZED, HC_RPC_HOTCELL_ERROR,
					       "auth",
					       "unauthorized: a valid 'Authorization: Bearer "
					       "<token>' header is required");
		rq->authed = true;
		if (!is_rpc && !is_ws && !is_mig)
			return send_http_error(conn, MHD_HTTP_NOT_FOUND, HC_RPC_INVALID_REQUEST,
					       NULL,
					       "not found: the API is POST /api/v1/rpc, GET "
					       "/api/v1/ws and PUT /api/v1/migrate");
		if (is_mig) {
			struct hc_error e = {0};

			if (!hc_streq(method, "PUT"))
				return send_http_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
						       HC_RPC_INVALID_REQUEST, NULL,
						       "method not allowed: PUT /api/v1/migrate");
			if (atomic_load(&s->stopping))
				return send_http_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
						       HC_RPC_HOTCELL_ERROR, "cancelled",
						       "the server is shutting down");
			/* Streamed, never buffered: no body limit but the parts' own. */
			/* Refused before the body: answered at once. */
			if (hc_server_mig_in_new(s, &rq->mig, &e) < 0) {
				hc_warn("migrate: incoming migration refused: %s", e.message);
				return mig_answer_error(conn, &e);
			}
			return MHD_YES;
		}
		if ((is_rpc && !hc_streq(method, "POST")) || (is_ws && !hc_streq(method, "GET")))
			return send_http_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					       HC_RPC_INVALID_REQUEST, NULL,
					       is_rpc ? "method not allowed: POST /api/v1/rpc"
						      : "method not allowed: GET /api/v1/ws");
		if (len && strtoull(len, NULL, 10) > s->cfg->max_body) {
			char msg[128];

			snprintf(msg, sizeof(msg), "request body larger than %zu bytes",
				 s->cfg->max_body);
			return send_http_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
					       HC_RPC_INVALID_REQUEST, NULL, msg);
		}
		if (is_ws)
			return ws_request(s, conn);
		return MHD_YES;
	}
	if (rq->mig || rq->mig_failed)
		return mig_request(s, conn, rq, upload_data, upload_data_size);
	if (*upload_data_size) {
		if (!rq->too_big && hc_buf_append(&rq->body, upload_data, *upload_data_size) < 0) {
			/* Chunked bodies have no Content-Length: they are cut off here. */
			char msg[128];

			rq->too_big = true;
			*upload_data_size = 0;
			snprintf(msg, sizeof(msg), "request body larger than %zu bytes",
				 s->cfg->max_body);
			return send_http_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
					       HC_RPC_INVALID_REQUEST, NULL, msg);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->too_big)
		return MHD_YES;
	if (atomic_load(&s->stopping))
		return send_http_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, HC_RPC_HOTCELL_ERROR,
				       "cancelled", "the server is shutting down");
	return rpc_request(s, conn, rq);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	if (!rq)
		return;
	/* A migration whose connection went before its end leaves nothing. */
	hc_server_mig_in_free(rq->mig);
	hc_buf_free(&rq->body);
	free(rq);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512], *p;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = 0;
	/* libmicrohttpd may quote a request line: never let a token through. */
	p = strstr(msg, "access_token=");
	if (p)
		snprintf(p, sizeof(msg) - (size_t)(p - msg), "access_token=<redacted>");
	hc_info("server: libmicrohttpd: %s", msg);
}

/* ---- listening ---- */

static int listen_unix(const char *path, char *addr, size_t addr_n, struct hc_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return hc_error_setk(err, -ENAMETOOLONG, HC_EK_USAGE,
				     "--listen unix:%s: path too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return hc_error_errno(err, -errno, "socket");
	/* A socket left by a server that died is replaced; a live one is not. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			return hc_error_setk(err, -EADDRINUSE, HC_EK_USAGE,
					     "--listen unix:%s: a server is listening there", path);
		}
		unlink(path);
		close(fd);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return hc_error_errno(err, -errno, "socket");
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 128) < 0) {
		int e = -errno;

		close(fd);
		return hc_error_errno(err, e, "--listen unix:%s", path);
	}
	snprintf(addr, addr_n, "unix:%s", path);
	return fd;
}

static int listen_tcp(const char *spec, char *addr, size_t addr_n, struct hc_error *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[16], hs[INET6_ADDRSTRLEN];
	const char *colon;
	int fd, one = 1, r;

	if (spec[0] == '[') {
		const char *close_b = strchr(spec, ']');

		if (!close_b || close_b[1] != ':')
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(close_b - spec - 1), spec + 1);
		colon = close_b + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || (size_t)(colon - spec) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
	}
	snprintf(port, sizeof(port), "%s", colon + 1);
	if (!port[0] || strspn(port, "0123456789") != strlen(port) || atoi(port) > 65535)
		goto bad;
	r = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (r != 0 || !ai) {
		if (ai)
			freeaddrinfo(ai);
		goto bad;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return hc_error_errno(err, -errno, "socket");
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		int e = -errno;

		freeaddrinfo(ai);
		close(fd);
		return hc_error_errno(err, e, "--listen %s", spec);
	}
	freeaddrinfo(ai);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, hs, sizeof(hs));
			snprintf(addr, addr_n, "[%s]:%u", hs, ntohs(s6->sin6_port));
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, hs, sizeof(hs));
			snprintf(addr, addr_n, "%s:%u", hs, ntohs(s4->sin_port));
		}
	}
	return fd;
bad:
	return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
			     "--listen '%s': expected HOST:PORT, [IPV6]:PORT or unix:PATH "
			     "(numeric address)",
			     spec);
}

static json_t *probe_backends(void)
{
	json_t *arr = json_array();
	struct hc_run_opts o;

	hc_run_opts_init(&o);
	for (size_t i = 0; arr && i < hc_lib_backend_auto_n; i++) {
		struct hc_lib_backend_report rep;

		hc_lib_backend_report(hc_lib_backend_auto_order[i], &o, &rep);
		if (rep.usable)
			json_array_append_new(arr, json_string(hc_lib_backend_auto_order[i]));
	}
	return arr;
}

int hc_server_run(const struct hc_server_config *cfg, int stop_fd, struct hc_error *err)
{
	struct hc_server_config c = *cfg;
	struct hc_server s = {.cfg = &c, .shutdown_fd = -1};
	const char *listen_on = cfg->listen ? cfg->listen : "127.0.0.1:8080";
	const char *unix_path = NULL;
	int shut[2] = {-1, -1}, lfd;
	struct MHD_Daemon *d;
	char addr[300] = "";
	struct timespec until;

	if (!c.max_body)
		c.max_body = HC_SERVER_MAX_BODY;
	if (!c.idle_timeout_s)
		c.idle_timeout_s = 30;
	if (hc_server_auth_init(&s, cfg->token) < 0)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "serve: no auth token (--auth-token-file F or "
				     "HOTCELL_AUTH_TOKEN); the server does not run without one");
	s.rpc = (struct hc_rpc){.methods = hc_server_methods, .n_methods = hc_server_n_methods};
	/* A registry that does not load is refused before anything listens. */
	if (hc_server_registry_open(&s, err) < 0) {
		hc_server_registry_close(&s);
		return err->code;
	}
	if (hc_startswith(listen_on, "unix:")) {
		unix_path = listen_on + 5;
		lfd = listen_unix(unix_path, addr, sizeof(addr), err);
	} else {
		lfd = listen_tcp(listen_on, addr, sizeof(addr), err);
	}
	if (lfd < 0) {
		hc_server_registry_close(&s);
		return lfd;
	}
	if (pipe2(shut, O_CLOEXEC) < 0) {
		close(lfd);
		hc_server_registry_close(&s);
		return hc_error_errno(err, -errno, "pipe");
	}
	s.shutdown_fd = shut[0];
	if (c.warm_pool && hc_warm_pool_new(c.warm_pool, &s.pool, err) < 0) {
		close(lfd);
		close(shut[0]);
		close(shut[1]);
		hc_server_registry_close(&s);
		return err->code;
	}
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.idle, NULL);
	s.backends = probe_backends();
	/* A client that goes away mid-write must not kill the server. */
	signal(SIGPIPE, SIG_IGN);
	d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			MHD_ALLOW_UPGRADE | MHD_USE_ITC | MHD_USE_ERROR_LOG,
		0, NULL, NULL, handler, &s, MHD_OPTION_LISTEN_SOCKET, lfd,
		MHD_OPTION_CONNECTION_TIMEOUT, c.idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)1024, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
		MHD_OPTION_NOTIFY_COMPLETED, completed, &s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &s,
		MHD_OPTION_END);
	if (!d) {
		close(lfd);
		close(shut[0]);
		close(shut[1]);
		json_decref(s.backends);
		hc_warm_pool_free(s.pool);
		hc_server_registry_close(&s);
		if (unix_path)
			unlink(unix_path);
		return hc_error_setk(err, -EIO, HC_EK_INTERNAL, "cannot start libmicrohttpd");
	}
	if (c.on_listen)
		c.on_listen(addr, c.userdata);

	/* Until SIGTERM; each SIGHUP reads the registry again. */
	for (;;) {
		struct pollfd p[2] = {{.fd = stop_fd, .events = POLLIN},
				      {.fd = c.reload_fd > 0 ? c.reload_fd : -1, .events = POLLIN}};
		char b[64];

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			hc_warn("server: poll: %s", strerror(errno));
			break;
		}
		if (p[0].revents)
			break;
		if (p[1].revents) {
			/* Several SIGHUPs at once are one reload. */
			if (read(c.reload_fd, b, sizeof(b)) <= 0)
				c.reload_fd = -1;
			hc_server_registry_reload(&s);
		}
	}

	/* SIGTERM: stop accepting, cancel the runs (persistent VMs stay: their supervisors
	 * hold them), wait for the calls to answer, then close every connection. */
	hc_info("server: stopping");
	atomic_store(&s.stopping, true);
	lfd = MHD_quiesce_daemon(d);
	if (lfd >= 0)
		close(lfd);
	if (unix_path)
		unlink(unix_path);
	if (write(shut[1], "x", 1) < 0)
		hc_warn("server: cannot signal the shutdown");
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&s.lock);
	while (atomic_load(&s.calls) > 0)
		if (pthread_cond_timedwait(&s.idle, &s.lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&s.lock);
	if (atomic_load(&s.calls) > 0)
		hc_warn("server: %u calls still running after 30 s; stopping anyway",
			atomic_load(&s.calls));
	MHD_stop_daemon(d);
	/* After the last run: the pool's VMMs die with its refill thread, taken ones too. */
	hc_warm_pool_free(s.pool);
	close(shut[0]);
	close(shut[1]);
	json_decref(s.backends);
	hc_server_registry_close(&s);
	pthread_mutex_destroy(&s.lock);
	pthread_cond_destroy(&s.idle);
	return 0;
}
