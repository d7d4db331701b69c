/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <openssl/evp.h>

#include "core/buf.h"
#include "core/log.h"
#include "lib/result.h"
#include "server/exec.h"

#define DEFAULT_LIMIT (1u << 20)

int hc_server_base64_decode(const char *s, size_t n, void **ret, size_t *ret_len)
{
	unsigned char *out;
	size_t pad = 0;
	int len;

	if (n % 4 || n > INT32_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '=') {
			/* only at the end, at most two */
			if (i < n - 2 || (i == n - 2 && s[n - 1] != '='))
				return -EINVAL;
			pad++;
		} else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '+' || c == '/')) {
			return -EINVAL;
		}
	}
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	len = n ? EVP_DecodeBlock(out, (const unsigned char *)s, (int)n) : 0;
	if (len < 0 || (size_t)len < pad) {
		free(out);
		return -EINVAL;
	}
	*ret_len = (size_t)len - pad;
	out[*ret_len] = 0;
	*ret = out;
	return 0;
}

int hc_server_param_data(const struct hc_rpc_call *c, const char *name, const char *enc_name,
			 void **ret, size_t *ret_len, struct hc_rpc_err *err)
{
	const char *data = NULL, *enc = "utf-8";
	int r;

	r = hc_rpc_param_str(c, name, &data, err);
	if (r <= 0)
		return r;
	if (hc_rpc_param_str(c, enc_name, &enc, err) < 0)
		return -EINVAL;
	if (hc_streq(enc, "base64")) {
		r = hc_server_base64_decode(data, strlen(data), ret, ret_len);
		if (r == -ENOMEM) {
			hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
			return r;
		}
		if (r < 0) {
			hc_rpc_fail_param(err, name, "'%s' is not valid base64 (RFC 4648, padded)",
					  name);
			return r;
		}
		return 1;
	}
	if (!hc_streq(enc, "utf-8")) {
		hc_rpc_fail_param(err, enc_name, "'%s' must be \"utf-8\" or \"base64\"", enc_name);
		return -EINVAL;
	}
	*ret = strdup(data);
	if (!*ret) {
		hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
		return -ENOMEM;
	}
	*ret_len = strlen(data);
	return 1;
}

json_t *hc_server_output_params(const void *data, size_t n)
{
	json_t *o;

	if (hc_lib_utf8_valid(data, n))
		return json_pack("{s:s%, s:s}", "data", (const char *)data, n, "encoding", "utf-8");
	char *b64 = hc_lib_base64(data, n);

	if (!b64)
		return NULL;
	o = json_pack("{s:s, s:s}", "data", b64, "encoding", "base64");
	free(b64);
	return o;
}

/* The bytes at the end of p that start a UTF-8 sequence not yet complete (0..3). */
static size_t utf8_tail(const unsigned char *p, size_t n)
{
	for (size_t k = 1; k <= 3 && k <= n; k++) {
		unsigned char c = p[n - k];
		size_t need;

		if ((c & 0xc0) == 0x80)
			continue; /* a continuation byte: look further back */
		need = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
		return need > k ? k : 0;
	}
	return 0;
}

/* ---- the worker thread ---- */

struct exec {
	struct hc_server_job *job;
	int in_r, out_w, err_w, cancel_r;
	int done_w;
	struct hc_run_result res;
	struct hc_error err;
	int rc;
};

static void *worker(void *arg)
{
	struct exec *x = arg;
	char b = 1;

	x->rc = x->job->fn(x->job, x->in_r, x->out_w, x->err_w, x->cancel_r, &x->res, &x->err);
	/* EOF on the output pipes tells the pump the command's output is complete. */
	close(x->out_w);
	close(x->err_w);
	x->out_w = x->err_w = -1;
	if (write(x->done_w, &b, 1) < 0)
		hc_warn("server: cannot signal the end of a run");
	return NULL;
}

/* ---- the pump ---- */

struct capture {
	struct hc_buf out, err, console;
	bool out_trunc, err_trunc, console_trunc;
	size_t limit;
};

static void keep(struct hc_buf *b, size_t limit, bool *trunc, const char *p, size_t n)
{
	if (b->len + n > limit) {
		*trunc = true;
		n = limit > b->len ? limit - b->len : 0;
	}
	if (n && hc_buf_append(b, p, n) < 0)
		*trunc = true;
}

static void cancel(int fd, int bytes)
{
	char b[2] = {1, 1};

	if (write(fd, b, (size_t)bytes) < 0)
		hc_debug("server: cancel pipe: %s", strerror(errno));
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

static json_t *result_json(struct exec *x, struct capture *cap, bool with_error)
{
	struct hc_run_result *res = &x->res;
	json_error_t jerr;
	char *text;
	json_t *o, *con;
	bool utf8;

	free(res->stdout_data);
	free(res->stderr_data);
	res->stdout_data = hc_buf_steal(&cap->out, &res->stdout_len);
	res->stderr_data = hc_buf_steal(&cap->err, &res->stderr_len);
	res->stdout_truncated |= cap->out_trunc;
	res->stderr_truncated |= cap->err_trunc;
	text = with_error ? hc_run_result_to_json_error(res, &x->err) : hc_run_result_to_json(res);
	if (!text)
		return NULL;
	o = json_loads(text, 0, &jerr);
	free(text);
	if (!o)
		return NULL;
	/* hotcell's console_output: stdout and stderr interleaved as they came. */
	utf8 = hc_lib_utf8_valid(cap->console.data ? cap->console.data : "", cap->console.len);
	if (utf8) {
		con = json_stringn(cap->console.data ? cap->console.data : "", cap->console.len);
	} else {
		char *b64 = hc_lib_base64(cap->console.data, cap->console.len);

		con = b64 ? json_string(b64) : NULL;
		free(b64);
	}
	if (!con || json_object_set_new(o, "console_output", con) < 0 ||
	    json_object_set_new(o, "console_output_encoding",
				json_string(utf8 ? "utf-8" : "base64")) < 0 ||
	    json_object_set_new(o, "console_output_truncated", json_boolean(cap->console_trunc)) <
		    0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

struct tail {
	unsigned char b[4];
	size_t n;
};

/* Streams a chunk with the bytes held back from the previous one in front, holding back a
 * UTF-8 sequence the chunk ends inside. */
static int stream_out(struct hc_rpc_stream *st, struct hc_rpc_call *call, const char *name,
		      struct tail *t, const char *p, size_t n)
{
	unsigned char joined[65536 + 4];
	size_t len = t->n + n, keep_n;

	memcpy(joined, t->b, t->n);
	memcpy(joined + t->n, p, n);
	keep_n = utf8_tail(joined, len);
	t->n = keep_n;
	memcpy(t->b, joined + len - keep_n, keep_n);
	if (len == keep_n)
		return 0;
	return st->write(st, call, name, joined, len - keep_n);
}

enum { P_OUT, P_ERR, P_IN, P_DONE, P_CLIENT, P_STREAM_CANCEL, P_SHUTDOWN, P_N };

json_t *hc_server_exec(struct hc_server *s, struct hc_rpc_call *call, struct hc_server_job *job,
		       struct hc_rpc_err *err)
{
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, inp[2] = {-1, -1}, cp[2] = {-1, -1};
	int donep[2] = {-1, -1};
	struct capture cap = {
		.out = HC_BUF_INIT(0), .err = HC_BUF_INIT(0), .console = HC_BUF_INIT(0)};
	struct exec x = {.job = job, .in_r = -1, .out_w = -1, .err_w = -1, .cancel_r = -1};
	struct hc_rpc_stream *st = call->stream;
	const char *why_cancel = NULL;
	const unsigned char *in_data = job->stdin_data;
	size_t in_left = job->stdin_len;
	bool eof_out = false, eof_err = false, done = false, started = false;
	struct tail tails[2] = {{.n = 0}, {.n = 0}};
	unsigned n_runs;
	bool client_sock = false;
	struct stat sb;
	pthread_t th;
	json_t *ret = NULL;

	/* A connection's socket says the client hung up with POLLRDHUP (readable data is a
	 * pipelined request, not a hang-up); any other cancel fd by becoming readable. */
	if (call->cancel_fd >= 0 && fstat(call->cancel_fd, &sb) == 0)
		client_sock = S_ISSOCK(sb.st_mode);
	cap.limit = job->output_limit ? job->output_limit : DEFAULT_LIMIT;
	n_runs = atomic_fetch_add(&s->runs, 1) + 1;
	if (s->cfg->max_runs && n_runs > s->cfg->max_runs) {
		atomic_fetch_sub(&s->runs, 1);
		snprintf(err->e.kind, sizeof(err->e.kind), "limit");
		return hc_rpc_fail(err, HC_RPC_LIMIT_ERROR,
				   "too many runs in progress (--max-runs %u): try again later",
				   s->cfg->max_runs);
	}
	if (atomic_load(&s->stopping)) {
		atomic_fetch_sub(&s->runs, 1);
		snprintf(err->e.kind, sizeof(err->e.kind), "cancelled");
		return hc_rpc_fail(err, HC_RPC_HOTCELL_ERROR, "the server is shutting down");
	}
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
	    pipe2(cp, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(donep, O_CLOEXEC) < 0 ||
	    ((job->stdin_data || (st && st->stdin_fd >= 0)) && pipe2(inp, O_CLOEXEC) < 0) ||
	    set_nonblock(outp[0]) < 0 || set_nonblock(errp[0]) < 0 ||
	    (inp[1] >= 0 && set_nonblock(inp[1]) < 0)) {
		hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "pipe: %s", strerror(errno));
		goto out;
	}
	/* Over WebSocket the client's stdin pipe goes straight to the command. */
	if (st && st->stdin_fd >= 0 && !job->stdin_data) {
		close(inp[0]);
		close(inp[1]);
		inp[0] = -1;
		inp[1] = -1;
		x.in_r = st->stdin_fd;
	} else {
		x.in_r = inp[0];
	}
	x.out_w = outp[1];
	x.err_w = errp[1];
	x.cancel_r = cp[0];
	x.done_w = donep[1];
	outp[1] = errp[1] = -1;
	if (pthread_create(&th, NULL, worker, &x) != 0) {
		hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "cannot start a run thread");
		close(x.out_w);
		close(x.err_w);
		goto out;
	}
	started = true;
	if (in_left == 0 && inp[1] >= 0) {
		close(inp[1]);
		inp[1] = -1;
	}

	while (!done || !eof_out || !eof_err) {
		struct pollfd p[P_N];
		char buf[65536];

		for (int i = 0; i < P_N; i++)
			p[i] = (struct pollfd){.fd = -1};
		if (!eof_out)
			p[P_OUT] = (struct pollfd){.fd = outp[0], .events = POLLIN};
		if (!eof_err)
			p[P_ERR] = (struct pollfd){.fd = errp[0], .events = POLLIN};
		if (inp[1] >= 0)
			p[P_IN] = (struct pollfd){.fd = inp[1], .events = POLLOUT};
		if (!done)
			p[P_DONE] = (struct pollfd){.fd = donep[0], .events = POLLIN};
		if (!why_cancel) {
			if (call->cancel_fd >= 0)
				p[P_CLIENT] =
					(struct pollfd){.fd = call->cancel_fd,
							.events = client_sock ? POLLRDHUP : POLLIN};
			if (st && st->cancel_fd >= 0)
				p[P_STREAM_CANCEL] =
					(struct pollfd){.fd = st->cancel_fd, .events = POLLIN};
			p[P_SHUTDOWN] = (struct pollfd){.fd = s->shutdown_fd, .events = POLLIN};
		}
		if (poll(p, P_N, -1) < 0) {
			if (errno == EINTR)
				continue;
			hc_warn("server: poll: %s", strerror(errno));
			break;
		}
		for (int i = P_OUT; i <= P_ERR; i++) {
			ssize_t n;

			if (!p[i].revents)
				continue;
			n = read(p[i].fd, buf, sizeof(buf));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				*(i == P_OUT ? &eof_out : &eof_err) = true;
				/* What is left of a split sequence goes out as it is. */
				if (st && !why_cancel && tails[i - P_OUT].n &&
				    st->write(st, call, i == P_OUT ? "stdout" : "stderr",
					      tails[i - P_OUT].b, tails[i - P_OUT].n) < 0)
					why_cancel =
						"the client does not read its output fast enough";
				continue;
			}
			if (i == P_OUT)
				keep(&cap.out, cap.limit, &cap.out_trunc, buf, (size_t)n);
			else
				keep(&cap.err, cap.limit, &cap.err_trunc, buf, (size_t)n);
			keep(&cap.console, 2 * cap.limit, &cap.console_trunc, buf, (size_t)n);
			if (st && !why_cancel &&
			    stream_out(st, call, i == P_OUT ? "stdout" : "stderr",
				       &tails[i - P_OUT], buf, (size_t)n) < 0) {
				why_cancel = "the client does not read its output fast enough";
				cancel(cp[1], 2);
			}
		}
		if (p[P_IN].revents) {
			ssize_t n = write(inp[1], in_data, in_left);

			if (n > 0) {
				in_data += n;
				in_left -= (size_t)n;
			}
			if ((n < 0 && errno != EAGAIN && errno != EINTR) || in_left == 0) {
				close(inp[1]);
				inp[1] = -1;
			}
		}
		if (p[P_DONE].revents)
			done = true;
		if (p[P_CLIENT].revents) {
			why_cancel = "the client went away";
			cancel(cp[1], 1);
		}
		if (p[P_STREAM_CANCEL].revents) {
			/* The client asked: one byte per request, as hc_run_opts.cancel_fd. */
			ssize_t n = read(st->cancel_fd, buf, 2);

			if (n > 0)
				cancel(cp[1], (int)n);
			if (n == 0)
				st->cancel_fd = -1;
		}
		if (p[P_SHUTDOWN].revents) {
			why_cancel =
				s->stop_reason ? s->stop_reason : "the server is shutting down";
			cancel(cp[1], 1);
		}
	}
	pthread_join(th, NULL);

	if (x.rc == -ECANCELED) {
		snprintf(err->e.kind, sizeof(err->e.kind), "cancelled");
		hc_rpc_fail(err, HC_RPC_HOTCELL_ERROR, "run cancelled: %s",
			    why_cancel ? why_cancel : "on request");
	} else if (x.rc < 0 && hc_streq(x.err.kind, "exec") && x.res.exit_code > 0) {
		/* The guest could not start the command (126/127): the result and why, as
		 * `run --json` prints it. */
		ret = result_json(&x, &cap, true);
		if (!ret)
			hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
	} else if (x.rc < 0) {
		if (x.rc == -EINVAL && hc_streq(x.err.kind, HC_EK_USAGE))
			hc_rpc_fail(err, HC_RPC_INVALID_PARAMS, "%s", x.err.message);
		else
			hc_rpc_fail_hc(err, &x.err);
	} else {
		ret = result_json(&x, &cap, false);
		if (!ret)
			hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
	}
out:
	if (!started) {
		hc_closep(&outp[1]);
		hc_closep(&errp[1]);
	}
	hc_run_result_free(&x.res);
	hc_buf_free(&cap.out);
	hc_buf_free(&cap.err);
	hc_buf_free(&cap.console);
	hc_closep(&outp[0]);
	hc_closep(&errp[0]);
	hc_closep(&inp[0]);
	hc_closep(&inp[1]);
	hc_closep(&cp[0]);
	hc_closep(&cp[1]);
	hc_closep(&donep[0]);
	hc_closep(&donep[1]);
	atomic_fetch_sub(&s->runs, 1);
	return ret;
}
