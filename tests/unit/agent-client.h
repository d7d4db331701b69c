/* SPDX-License-Identifier: MIT */
/*
 * A minimal host side of docs/protocol.md for tests that talk to a real hotcell-init (over a
 * socketpair in test mode, or over the agent channel of a booted VM): read frames with a
 * bound on the wait, send EXEC, collect one command's outcome.
 */
#pragma once

#include <poll.h>

#include "proto/proto.h"

#define S(x) ((char *)(x))

struct agent_conn {
	int fd;
	struct hc_buf in;
	int wait_ms; /* per read; a hung agent fails the test instead of hanging it */
};

struct outcome {
	struct hc_buf out, err;
	bool got_exit, got_error, got_result, got_started;
	uint32_t pid;
	struct hc_proto_exit exit;
	struct hc_proto_error error;
	uint8_t result_status;
	struct hc_buf result;
};

static inline void ac_init(struct agent_conn *c, int fd, int wait_ms)
{
	c->fd = fd;
	c->in = (struct hc_buf)HC_BUF_INIT(HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD + 65536);
	c->wait_ms = wait_ms;
}

static inline void ac_free(struct agent_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	hc_buf_free(&c->in);
}

static inline void outcome_free(struct outcome *o)
{
	hc_buf_free(&o->out);
	hc_buf_free(&o->err);
	hc_buf_free(&o->result);
}

/* 1 frame (consume *used bytes of c->in after use), 0 EOF, <0 error or -ETIMEDOUT. */
static inline int ac_next_frame(struct agent_conn *c, struct hc_proto_frame *f, size_t *used)
{
	for (;;) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int r = hc_proto_frame_parse((uint8_t *)c->in.data, c->in.len, f, used);
		ssize_t n;

		if (r != 0)
			return r;
		if (poll(&p, 1, c->wait_ms) != 1)
			return -ETIMEDOUT;
		if (hc_buf_reserve(&c->in, 65536) < 0)
			return -ENOMEM;
		n = read(c->fd, c->in.data + c->in.len, 65536);
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		c->in.len += (size_t)n;
	}
}

/* Skips frames until one of type arrives (consumed). 1 found, 0 EOF, <0 error. */
static inline int ac_skip_to(struct agent_conn *c, uint8_t type)
{
	for (;;) {
		struct hc_proto_frame f;
		size_t used;
		int r = ac_next_frame(c, &f, &used);

		if (r <= 0)
			return r;
		hc_buf_consume(&c->in, used);
		if (f.type == type)
			return 1;
	}
}

static inline int ac_hello(struct agent_conn *c, struct hc_proto_hello *ret)
{
	struct hc_proto_frame f;
	size_t used;
	int r = ac_next_frame(c, &f, &used);

	if (r != 1)
		return r < 0 ? r : -EPIPE;
	r = hc_proto_hello_decode(&f, ret);
	hc_buf_consume(&c->in, used);
	return r;
}

/* The stream the single-command helpers use. */
#define AC_STREAM 1u

static inline int ac_send_exec_on(struct agent_conn *c, uint32_t stream, const char *const *argv,
				  char *const *env, size_t envc, const char *cwd, const char *user,
				  uint32_t flags, uint32_t timeout_ms)
{
	size_t argc = 0;
	struct hc_buf b = HC_BUF_INIT(0);
	int r;

	while (argv[argc])
		argc++;
	struct hc_proto_exec e = {.flags = flags,
				  .timeout_ms = timeout_ms,
				  .user = S(user),
				  .cwd = S(cwd),
				  .argv = (char **)argv,
				  .argc = argc,
				  .env = (char **)env,
				  .envc = envc};
	r = hc_proto_exec_encode(&b, stream, &e);
	if (r >= 0 && write(c->fd, b.data, b.len) != (ssize_t)b.len)
		r = -EIO;
	hc_buf_free(&b);
	return r;
}

static inline int ac_send_exec_env(struct agent_conn *c, const char *const *argv, char *const *env,
				   size_t envc, const char *cwd, const char *user, uint32_t flags,
				   uint32_t timeout_ms)
{
	return ac_send_exec_on(c, AC_STREAM, argv, env, envc, cwd, user, flags, timeout_ms);
}

/* Acknowledges n bytes of data frames on stream (WINDOW). */
static inline int ac_ack(struct agent_conn *c, uint32_t stream, uint32_t n)
{
	struct hc_buf b = HC_BUF_INIT(0);
	int r = hc_proto_window_encode(&b, stream, n);

	if (r >= 0 && write(c->fd, b.data, b.len) != (ssize_t)b.len)
		r = -EIO;
	hc_buf_free(&b);
	return r;
}

static inline int ac_send_exec(struct agent_conn *c, const char *const *argv, const char *cwd,
			       const char *user, uint32_t flags, uint32_t timeout_ms)
{
	static char *const env[] = {S("PATH=/usr/local/bin:/usr/bin:/bin"), NULL};

	return ac_send_exec_env(c, argv, env, 1, cwd, user, flags, timeout_ms);
}

/* Collects the frames of stream until EXIT or ERROR on it (another stream's frames are an
 * error), acknowledging output as it comes. */
static inline int ac_collect_on(struct agent_conn *c, uint32_t stream, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->out = (struct hc_buf)HC_BUF_INIT(0);
	o->err = (struct hc_buf)HC_BUF_INIT(0);
	o->result = (struct hc_buf)HC_BUF_INIT(0);
	for (;;) {
		struct hc_proto_frame f;
		struct hc_proto_result res;
		size_t used;
		int r = ac_next_frame(c, &f, &used);

		if (r <= 0)
			return r == 0 ? -EPIPE : r;
		if (f.stream != stream && !(f.type == HC_FRAME_ERROR && f.stream == 0)) {
			hc_buf_consume(&c->in, used);
			return -EPROTO;
		}
		switch (f.type) {
		case HC_FRAME_STDOUT:
			r = hc_buf_append(&o->out, f.payload, f.len);
			if (r >= 0)
				r = ac_ack(c, stream, f.len);
			break;
		case HC_FRAME_STDERR:
			r = hc_buf_append(&o->err, f.payload, f.len);
			if (r >= 0)
				r = ac_ack(c, stream, f.len);
			break;
		case HC_FRAME_STARTED:
			r = hc_proto_started_decode(&f, &o->pid);
			o->got_started = r >= 0;
			break;
		case HC_FRAME_WINDOW:
			break;
		case HC_FRAME_RESULT:
			r = hc_proto_result_decode(&f, &res);
			if (r >= 0) {
				o->got_result = true;
				o->result_status = res.status;
				r = hc_buf_append(&o->result, res.data, res.len);
			}
			break;
		case HC_FRAME_EXIT:
			r = hc_proto_exit_decode(&f, &o->exit);
			o->got_exit = r >= 0;
			break;
		case HC_FRAME_ERROR:
			r = hc_proto_error_decode(&f, &o->error);
			o->got_error = r >= 0;
			break;
		default:
			r = -EPROTO;
		}
		hc_buf_consume(&c->in, used);
		if (r < 0)
			return r;
		if (o->got_exit || o->got_error)
			return 0;
	}
}

static inline int ac_collect(struct agent_conn *c, struct outcome *o)
{
	return ac_collect_on(c, AC_STREAM, o);
}
