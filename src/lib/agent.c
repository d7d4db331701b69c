/* SPDX-License-Identifier: MIT */
/*
 * The host end of an agent channel (agent.h, docs/protocol.md). One output queue written when
 * the channel takes it, one input buffer holding at most one frame and a read ahead, a fixed
 * table of streams. The guest is untrusted: every frame is decoded and checked against the
 * stream it names (its kind, its window, the order of its frames); a violation ends the
 * channel (-EPROTO) and every stream with it.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include "core/log.h"
#include "lib/agent.h"
#include "proto/tree.h"

/* Puts read local files only while less than this is queued for the guest. */
#define OUT_SOFT (256u * 1024)
#define IN_MAX (HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD + 65536)
#define ACK_EVERY (64u * 1024)

enum astream_kind { A_FREE, A_EXEC, A_PUT, A_GET };

struct astream {
	enum astream_kind kind;
	uint32_t id;
	void *sctx;
	unsigned flags;
	bool cancelled;
	bool stdin_open;
	bool detach;
	bool started;
	bool want_writable;
	uint32_t sent; /* data we sent, not yet acknowledged by the guest */
	uint32_t recv; /* data received, not yet acknowledged by us */
	uint32_t ack;  /* of recv: consumed, to acknowledge */
	/* put / get */
	struct hc_tree_reader *r;
	struct hc_tree_writer *w;
	bool end_sent;
	bool local_failed; /* a local file failed: CANCEL sent, local_err is the outcome */
	struct hc_proto_error local_err;
};

struct hc_agent {
	int fd;
	const struct hc_agent_events *ev;
	void *ctx;
	struct hc_buf in, out;
	size_t out_off, out_boundary;
	bool hello;
	bool dead;
	uint32_t next_id;
	struct astream s[HC_PROTO_MAX_STREAMS];
};

static const struct hc_agent_events no_events;

int hc_agent_new(int fd, const struct hc_agent_events *ev, void *ctx, struct hc_agent **ret,
		 struct hc_error *err)
{
	struct hc_agent *a = calloc(1, sizeof(*a));

	if (!a) {
		close(fd);
		return hc_error_set(err, -ENOMEM, "out of memory");
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		int r = -errno;

		close(fd);
		free(a);
		return hc_error_errno(err, r, "agent channel");
	}
	a->fd = fd;
	a->ev = ev ? ev : &no_events;
	a->ctx = ctx;
	a->in = (struct hc_buf)HC_BUF_INIT(IN_MAX);
	a->out = (struct hc_buf)HC_BUF_INIT(0);
	a->next_id = 1;
	*ret = a;
	return 0;
}

static void stream_clear(struct astream *s)
{
	hc_tree_reader_free(s->r);
	hc_tree_writer_free(s->w); /* a get not ended: removes what it wrote */
	memset(s, 0, sizeof(*s));
}

void hc_agent_free(struct hc_agent *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < HC_ARRAY_SIZE(a->s); i++)
		stream_clear(&a->s[i]);
	if (a->fd >= 0)
		close(a->fd);
	hc_buf_free(&a->in);
	hc_buf_free(&a->out);
	free(a);
}

int hc_agent_fd(const struct hc_agent *a)
{
	return a->fd;
}

size_t hc_agent_pending(const struct hc_agent *a)
{
	return a->out.len - a->out_off;
}

short hc_agent_poll_events(const struct hc_agent *a)
{
	if (a->dead)
		return 0;
	return (short)(POLLIN | (a->hello && hc_agent_pending(a) ? POLLOUT : 0));
}

bool hc_agent_ready(const struct hc_agent *a)
{
	return a->hello && !a->dead;
}

void hc_agent_set_ready(struct hc_agent *a)
{
	a->hello = true;
}

size_t hc_agent_streams(const struct hc_agent *a)
{
	size_t n = 0;

	for (size_t i = 0; i < HC_ARRAY_SIZE(a->s); i++)
		n += a->s[i].kind != A_FREE;
	return n;
}

static struct astream *find(struct hc_agent *a, uint32_t id)
{
	if (id == 0)
		return NULL;
	for (size_t i = 0; i < HC_ARRAY_SIZE(a->s); i++)
		if (a->s[i].kind != A_FREE && a->s[i].id == id)
			return &a->s[i];
	return NULL;
}

/* The exec stream id names, or NULL (the request functions then answer -ENOENT). */
static struct astream *find_exec(struct hc_agent *a, uint32_t id)
{
	struct astream *s = find(a, id);

	return s && s->kind == A_EXEC ? s : NULL;
}

static struct astream *stream_new(struct hc_agent *a, enum astream_kind kind, void *sctx,
				  struct hc_error *err)
{
	struct astream *s = NULL;

	if (a->dead) {
		hc_error_set(err, -EPIPE, "the agent channel is closed");
		return NULL;
	}
	for (size_t i = 0; i < HC_ARRAY_SIZE(a->s) && !s; i++)
		if (a->s[i].kind == A_FREE)
			s = &a->s[i];
	if (!s) {
		hc_error_set(err, -EBUSY, "%d requests already running in the VM",
			     HC_PROTO_MAX_STREAMS);
		return NULL;
	}
	/* The next id not in use (ids are reusable once their stream ended). */
	while (find(a, a->next_id) || a->next_id == 0)
		a->next_id = a->next_id >= HC_PROTO_STREAM_MAX ? 1 : a->next_id + 1;
	*s = (struct astream){.kind = kind, .id = a->next_id, .sctx = sctx};
	a->next_id = a->next_id >= HC_PROTO_STREAM_MAX ? 1 : a->next_id + 1;
	return s;
}

/* The stream's last event: the slot is free before the callback runs. */
static void stream_end(struct hc_agent *a, struct astream *s, struct hc_agent_end *end)
{
	void *sctx = s->sctx;
	uint32_t id = s->id;

	end->cancelled = s->cancelled;
	stream_clear(s);
	if (a->ev->end)
		a->ev->end(a->ctx, sctx, id, end);
}

/* ---- the channel ---- */

static int flush_out(struct hc_agent *a)
{
	while (a->hello && hc_agent_pending(a) > 0) {
		ssize_t n = send(a->fd, a->out.data + a->out_off, hc_agent_pending(a),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == ENOTSOCK)
			n = write(a->fd, a->out.data + a->out_off, hc_agent_pending(a));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -errno;
		}
		a->out_off += (size_t)n;
	}
	hc_proto_outq_settle(&a->out, &a->out_off, &a->out_boundary, OUT_SOFT);
	return 0;
}

int hc_agent_replace_fd(struct hc_agent *a, int fd, struct hc_error *err)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		int r = -errno;

		close(fd);
		return hc_error_errno(err, r, "agent channel");
	}
	if (a->fd >= 0)
		close(a->fd);
	a->fd = fd;
	a->hello = false;
	a->dead = false;
	hc_buf_reset(&a->in);
	/* A frame torn by the old connection is dropped whole; the rest goes out on this one. */
	hc_buf_consume(&a->out, a->out_boundary);
	a->out_off = a->out_boundary = 0;
	return 0;
}

static int queue_ack(struct hc_agent *a, struct astream *s, bool idle)
{
	int r;

	if (s->ack == 0 || (!idle && s->ack < ACK_EVERY))
		return 0;
	r = hc_proto_window_encode(&a->out, s->id, s->ack);
	if (r < 0)
		return r;
	s->recv -= s->ack;
	s->ack = 0;
	return 0;
}

/* A local file of a transfer failed: the guest is told to abandon the stream; its final
 * frame ends it, with this error. */
static void local_fail(struct hc_agent *a, struct astream *s, const struct hc_proto_error *e)
{
	if (s->local_failed)
		return;
	s->local_failed = true;
	s->local_err = *e;
	hc_tree_reader_free(s->r);
	hc_tree_writer_free(s->w);
	s->r = NULL;
	s->w = NULL;
	if (hc_proto_frame_append(&a->out, HC_FRAME_CANCEL, s->id, NULL, 0) < 0)
		hc_debug("agent: cannot queue cancel for stream %u", s->id);
}

/* Sends what a put may send now: entries and content within its window and the queue. */
static void pump_put(struct hc_agent *a, struct astream *s)
{
	static struct hc_proto_entry e;
	static uint8_t chunk[HC_PROTO_MAX_DATA];
	struct hc_proto_error pe = {0};

	while (s->kind == A_PUT && s->r && !s->end_sent && hc_agent_pending(a) < OUT_SOFT) {
		if (hc_tree_reader_pending(s->r) > 0) {
			uint32_t room = HC_PROTO_WINDOW - s->sent;
			ssize_t k;

			if (room > HC_PROTO_MAX_DATA)
				room = HC_PROTO_MAX_DATA;
			if (room == 0)
				return;
			k = hc_tree_reader_read(s->r, chunk, room, &pe);
			if (k < 0 || hc_proto_frame_append(&a->out, HC_FRAME_FILE_DATA, s->id,
							   chunk, (size_t)k) < 0) {
				if (k >= 0)
					pe = (struct hc_proto_error){.reason = HC_ERR_IO,
								     .message = "out of memory"};
				local_fail(a, s, &pe);
				return;
			}
			s->sent += (uint32_t)k;
			continue;
		}
		int r = hc_tree_reader_next(s->r, &e, &pe);
		if (r < 0) {
			local_fail(a, s, &pe);
			return;
		}
		if (r == 0) {
			if (hc_proto_frame_append(&a->out, HC_FRAME_END, s->id, NULL, 0) < 0) {
				pe = (struct hc_proto_error){.reason = HC_ERR_IO,
							     .message = "out of memory"};
				local_fail(a, s, &pe);
				return;
			}
			s->end_sent = true;
			hc_tree_reader_free(s->r);
			s->r = NULL;
			return;
		}
		if (hc_proto_entry_encode(&a->out, s->id, &e) < 0) {
			pe.reason = HC_ERR_IO;
			snprintf(pe.message, sizeof(pe.message), "%s: cannot encode the entry",
				 e.relpath);
			local_fail(a, s, &pe);
			return;
		}
		if (a->ev->entry)
			a->ev->entry(a->ctx, s->sctx, s->id, &e);
	}
}

/* ---- frames from the guest ---- */

static int violation(struct hc_error *err, const struct hc_proto_frame *f, const char *what)
{
	return hc_error_setk(err, -EPROTO, HC_EK_VM, "protocol error: %s (%s frame on stream %u)",
			     what, hc_proto_type_name(f->type), f->stream);
}

static int vm_frame(struct hc_agent *a, const struct hc_proto_frame *f, struct hc_error *err)
{
	struct hc_proto_hello h;
	struct hc_proto_error e;

	switch (f->type) {
	case HC_FRAME_HELLO:
		if (a->hello)
			return hc_error_setk(err, -ECONNRESET, HC_EK_VM, "the guest rebooted");
		if (hc_proto_hello_decode(f, &h) < 0)
			return violation(err, f, "bad hello");
		if (h.version != HC_PROTO_VERSION)
			return hc_error_setk(err, -EPROTO, HC_EK_VM,
					     "the guest speaks protocol version %u, hotcell %u: "
					     "rebuild the initramfs",
					     h.version, HC_PROTO_VERSION);
		a->hello = true;
		if (a->ev->hello)
			a->ev->hello(a->ctx, &h);
		return 0;
	case HC_FRAME_DONE:
		if (a->ev->reseeded)
			a->ev->reseeded(a->ctx);
		return 0;
	case HC_FRAME_ERROR:
		if (hc_proto_error_decode(f, &e) < 0)
			return violation(err, f, "bad error frame");
		if (a->ev->vm_error)
			a->ev->vm_error(a->ctx, &e);
		return 0;
	default:
		return violation(err, f, "unexpected");
	}
}

/* Data from the guest: within the window, and acknowledged once consumed. */
static int take_data(struct astream *s, const struct hc_proto_frame *f, struct hc_error *err)
{
	if (s->recv + (uint64_t)f->len > HC_PROTO_WINDOW)
		return violation(err, f, "more data than the window allows");
	s->recv += f->len;
	return 0;
}

static int exec_frame(struct hc_agent *a, struct astream *s, const struct hc_proto_frame *f,
		      struct hc_error *err)
{
	struct hc_agent_end end = {0};
	struct hc_proto_result res;
	uint32_t n;

	switch (f->type) {
	case HC_FRAME_STARTED:
		if (s->started || hc_proto_started_decode(f, &n) < 0)
			return violation(err, f, "bad or second started frame");
		s->started = true;
		if (a->ev->started)
			a->ev->started(a->ctx, s->sctx, s->id, n);
		if (s->detach) {
			end.kind = HC_AGENT_END_DETACHED;
			stream_end(a, s, &end);
		}
		return 0;
	case HC_FRAME_STDOUT:
	case HC_FRAME_STDERR:
		if (!s->started)
			return violation(err, f, "output before started");
		if (take_data(s, f, err) < 0)
			return err->code;
		if (!(s->flags & HC_AGENT_EXEC_MANUAL_ACK) || s->cancelled)
			s->ack += f->len;
		if (!s->cancelled && a->ev->output)
			a->ev->output(a->ctx, s->sctx, s->id, f->type == HC_FRAME_STDOUT ? 1 : 2,
				      f->payload, f->len);
		return queue_ack(a, s, false);
	case HC_FRAME_RESULT:
		if (!s->started)
			return violation(err, f, "result before started");
		if (hc_proto_result_decode(f, &res) < 0)
			return violation(err, f, "bad result frame");
		if (!s->cancelled && a->ev->result)
			a->ev->result(a->ctx, s->sctx, s->id, &res);
		return 0;
	case HC_FRAME_EXIT:
		/* Not the command's: it never started. */
		if (!s->started)
			return violation(err, f, "exit before started");
		if (hc_proto_exit_decode(f, &end.exit) < 0)
			return violation(err, f, "bad exit frame");
		end.kind = HC_AGENT_END_EXIT;
		stream_end(a, s, &end);
		return 0;
	default:
		return violation(err, f, "unexpected for a command");
	}
}

static int put_frame(struct hc_agent *a, struct astream *s, const struct hc_proto_frame *f,
		     struct hc_error *err)
{
	struct hc_agent_end end = {.kind = HC_AGENT_END_DONE};

	if (f->type != HC_FRAME_DONE)
		return violation(err, f, "unexpected for a file put");
	if (!s->end_sent)
		return violation(err, f, "done before the end was sent");
	stream_end(a, s, &end);
	return 0;
}

static int get_frame(struct hc_agent *a, struct astream *s, const struct hc_proto_frame *f,
		     struct hc_error *err)
{
	static struct hc_proto_entry e;
	struct hc_agent_end end = {.kind = HC_AGENT_END_DONE};
	struct hc_proto_error pe = {0};

	switch (f->type) {
	case HC_FRAME_ENTRY:
		if (hc_proto_entry_decode(f, &e) < 0)
			return violation(err, f, "bad entry");
		if (s->local_failed)
			return 0;
		if (hc_tree_writer_entry(s->w, &e, &pe) < 0)
			local_fail(a, s, &pe);
		else if (a->ev->entry)
			a->ev->entry(a->ctx, s->sctx, s->id, &e);
		return 0;
	case HC_FRAME_FILE_DATA:
		if (take_data(s, f, err) < 0)
			return err->code;
		s->ack += f->len;
		if (!s->local_failed && hc_tree_writer_data(s->w, f->payload, f->len, &pe) < 0)
			local_fail(a, s, &pe);
		return queue_ack(a, s, false);
	case HC_FRAME_END:
		if (s->local_failed) {
			end.kind = HC_AGENT_END_ERROR;
			end.error = s->local_err;
		} else if (hc_tree_writer_end(s->w, &pe) < 0) {
			end.kind = HC_AGENT_END_ERROR;
			end.error = pe;
		}
		stream_end(a, s, &end); /* a writer not ended removes what it wrote */
		return 0;
	default:
		return violation(err, f, "unexpected for a file get");
	}
}

static int stream_frame(struct hc_agent *a, const struct hc_proto_frame *f, struct hc_error *err)
{
	struct astream *s = find(a, f->stream);
	struct hc_agent_end end = {0};
	uint32_t n;

	if (!s)
		return violation(err, f, "no such stream");
	if (f->type == HC_FRAME_ERROR) {
		if (hc_proto_error_decode(f, &end.error) < 0)
			return violation(err, f, "bad error frame");
		end.kind = HC_AGENT_END_ERROR;
		/* A cancel we sent for a local failure: that failure is the story. */
		if (s->local_failed)
			end.error = s->local_err;
		stream_end(a, s, &end);
		return 0;
	}
	if (f->type == HC_FRAME_WINDOW) {
		if (hc_proto_window_decode(f, &n) < 0 || n > s->sent)
			return violation(err, f, "window beyond what was sent");
		s->sent -= n;
		if (s->kind == A_EXEC && s->want_writable && a->ev->writable) {
			s->want_writable = false;
			a->ev->writable(a->ctx, s->sctx, s->id);
		}
		return 0;
	}
	switch (s->kind) {
	case A_EXEC:
		return exec_frame(a, s, f, err);
	case A_PUT:
		return put_frame(a, s, f, err);
	case A_GET:
		return get_frame(a, s, f, err);
	case A_FREE:
		break;
	}
	return violation(err, f, "no such stream");
}

static int handle(struct hc_agent *a, const struct hc_proto_frame *f, struct hc_error *err)
{
	if (!a->hello && f->type != HC_FRAME_HELLO)
		return violation(err, f, "expected hello");
	if (f->stream == HC_PROTO_STREAM_VM)
		return vm_frame(a, f, err);
	return stream_frame(a, f, err);
}

static int read_in(struct hc_agent *a, struct hc_error *err)
{
	for (;;) {
		struct hc_proto_frame f;
		size_t used;
		ssize_t n;
		int r = hc_proto_frame_parse((const uint8_t *)a->in.data, a->in.len, &f, &used);

		if (r < 0)
			return hc_error_setk(err, -EPROTO, HC_EK_VM,
					     "protocol error: malformed frame from the guest");
		if (r == 1) {
			r = handle(a, &f, err);
			hc_buf_consume(&a->in, used);
			if (r < 0)
				return r;
			continue;
		}
		r = hc_buf_reserve(&a->in, 65536);
		if (r < 0)
			return hc_error_setk(err, -EPROTO, HC_EK_VM,
					     "protocol error: frame too large");
		n = read(a->fd, a->in.data + a->in.len, a->in.cap - a->in.len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == ECONNRESET)
				return hc_error_setk(err, -EPIPE, HC_EK_VM,
						     "the agent channel was reset");
			return hc_error_errno(err, -errno, "agent channel");
		}
		if (n == 0)
			return hc_error_setk(err, -EPIPE, HC_EK_VM, "the agent channel closed");
		a->in.len += (size_t)n;
		a->in.data[a->in.len] = 0;
	}
}

/* The channel is finished: every stream ends, LOST. */
static int fail_all(struct hc_agent *a, int code, struct hc_error *err)
{
	a->dead = true;
	for (size_t i = 0; i < HC_ARRAY_SIZE(a->s); i++) {
		struct astream *s = &a->s[i];
		struct hc_agent_end end = {.kind = HC_AGENT_END_LOST,
					   .error = {.reason = HC_ERR_IO}};

		if (s->kind == A_FREE)
			continue;
		snprintf(end.error.message, sizeof(end.error.message), "%s", err->message);
		stream_end(a, s, &end);
	}
	return code;
}

int hc_agent_dispatch(struct hc_agent *a, short revents, struct hc_error *err)
{
	int r;

	if (a->dead)
		return hc_error_set(err, -EPIPE, "the agent channel is closed");
	r = read_in(a, err);
	if (r < 0)
		return fail_all(a, r, err);
	for (size_t i = 0; i < HC_ARRAY_SIZE(a->s); i++) {
		struct astream *s = &a->s[i];

		if (s->kind == A_PUT)
			pump_put(a, s);
		/* Idle now: whatever was consumed is acknowledged. */
		if (s->kind != A_FREE && (r = queue_ack(a, s, true)) < 0)
			return fail_all(a, hc_error_errno(err, r, "queue window frame"), err);
	}
	r = flush_out(a);
	if (r < 0)
		return fail_all(
			a, hc_error_setk(err, -EPIPE, HC_EK_VM, "agent channel: %s", strerror(-r)),
			err);
	(void)revents; /* reads and writes are attempted whatever poll said: both are cheap */
	return 0;
}

/* ---- requests ---- */

static int queued(struct hc_agent *a, int r, struct hc_error *err)
{
	if (r < 0)
		return hc_error_errno(err, r, "queue a frame for the guest");
	if (flush_out(a) < 0)
		hc_debug("agent: channel write failed; dispatch reports it");
	return 0;
}

int hc_agent_exec(struct hc_agent *a, const struct hc_proto_exec *e, unsigned flags, void *sctx,
		  uint32_t *ret_id, struct hc_error *err)
{
	struct astream *s = stream_new(a, A_EXEC, sctx, err);
	int r;

	if (!s)
		return err->code;
	r = hc_proto_exec_encode(&a->out, s->id, e);
	if (r < 0) {
		stream_clear(s);
		return hc_error_errno(err, r, "encode the exec request");
	}
	s->flags = flags;
	s->stdin_open = e->flags & HC_EXEC_F_STDIN;
	s->detach = e->flags & HC_EXEC_F_DETACH;
	*ret_id = s->id;
	return queued(a, 0, err);
}

size_t hc_agent_stdin_room(const struct hc_agent *a, uint32_t id)
{
	const struct astream *s = find_exec((struct hc_agent *)a, id);

	if (!s || !s->stdin_open || s->cancelled)
		return 0;
	return HC_PROTO_WINDOW - s->sent;
}

ssize_t hc_agent_stdin(struct hc_agent *a, uint32_t id, const void *p, size_t n)
{
	struct astream *s = find_exec(a, id);
	size_t room, taken = 0;

	if (!s)
		return -ENOENT;
	if (!s->stdin_open || s->cancelled)
		return -EPIPE;
	room = HC_PROTO_WINDOW - s->sent;
	while (taken < n && taken < room) {
		size_t k = n - taken;

		if (k > room - taken)
			k = room - taken;
		if (k > HC_PROTO_MAX_DATA)
			k = HC_PROTO_MAX_DATA;
		int r = hc_proto_frame_append(&a->out, HC_FRAME_STDIN, id,
					      (const uint8_t *)p + taken, k);
		if (r < 0)
			return taken ? (ssize_t)taken : r;
		taken += k;
		s->sent += (uint32_t)k;
	}
	if (taken < n)
		s->want_writable = true;
	(void)flush_out(a);
	return (ssize_t)taken;
}

int hc_agent_stdin_close(struct hc_agent *a, uint32_t id)
{
	struct astream *s = find_exec(a, id);

	if (!s)
		return -ENOENT;
	if (!s->stdin_open)
		return 0;
	s->stdin_open = false;
	int r = hc_proto_frame_append(&a->out, HC_FRAME_STDIN_CLOSE, id, NULL, 0);
	(void)flush_out(a);
	return r;
}

int hc_agent_signal(struct hc_agent *a, uint32_t id, int sig)
{
	struct astream *s = find_exec(a, id);
	int r;

	if (!s)
		return -ENOENT;
	r = hc_proto_signal_encode(&a->out, id, sig);
	(void)flush_out(a);
	return r;
}

int hc_agent_resize(struct hc_agent *a, uint32_t id, uint16_t rows, uint16_t cols)
{
	struct astream *s = find_exec(a, id);
	int r;

	if (!s)
		return -ENOENT;
	r = hc_proto_resize_encode(&a->out, id, rows, cols);
	(void)flush_out(a);
	return r;
}

int hc_agent_ack(struct hc_agent *a, uint32_t id, size_t n)
{
	struct astream *s = find_exec(a, id);
	int r;

	if (!s)
		return -ENOENT;
	if (n > (size_t)s->recv - s->ack)
		return -EINVAL;
	s->ack += (uint32_t)n;
	r = queue_ack(a, s, true);
	(void)flush_out(a);
	return r;
}

int hc_agent_cancel(struct hc_agent *a, uint32_t id)
{
	struct astream *s = find(a, id);
	int r;

	if (!s)
		return -ENOENT;
	if (s->cancelled || s->local_failed)
		return 0;
	s->cancelled = true;
	s->stdin_open = false;
	if (s->kind == A_GET || s->kind == A_PUT) {
		struct hc_proto_error e = {.reason = HC_ERR_CANCELLED};

		snprintf(e.message, sizeof(e.message), "cancelled");
		local_fail(a, s, &e); /* a get's partial output is removed now */
		(void)flush_out(a);
		return 0;
	}
	r = hc_proto_frame_append(&a->out, HC_FRAME_CANCEL, id, NULL, 0);
	(void)flush_out(a);
	return r;
}

int hc_agent_put(struct hc_agent *a, const char *host_path, const char *guest_path, void *sctx,
		 uint32_t *ret_id, struct hc_error *err)
{
	struct hc_proto_file_req q = {0};
	struct hc_proto_error pe = {0};
	struct astream *s;
	int r;

	if (!hc_proto_path_valid(guest_path))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "guest path '%s': must be absolute, without '..'", guest_path);
	snprintf(q.path, sizeof(q.path), "%s", guest_path);
	s = stream_new(a, A_PUT, sctx, err);
	if (!s)
		return err->code;
	if (hc_tree_reader_new(host_path, &s->r, &pe) < 0) {
		stream_clear(s);
		return hc_error_setk(err, -EINVAL, HC_EK_IO, "%s", pe.message);
	}
	r = hc_proto_put_encode(&a->out, s->id, &q);
	if (r < 0) {
		stream_clear(s);
		return hc_error_errno(err, r, "encode the put request");
	}
	*ret_id = s->id;
	pump_put(a, s);
	return queued(a, 0, err);
}

int hc_agent_get(struct hc_agent *a, const char *guest_path, const char *host_path, void *sctx,
		 uint32_t *ret_id, struct hc_error *err)
{
	struct hc_proto_error pe = {0};
	struct astream *s;
	int r;

	if (!hc_proto_path_valid(guest_path))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "guest path '%s': must be absolute, without '..'", guest_path);
	s = stream_new(a, A_GET, sctx, err);
	if (!s)
		return err->code;
	if (hc_tree_writer_new(host_path, &s->w, &pe) < 0) {
		stream_clear(s);
		return hc_error_setk(err, -ENOENT, HC_EK_IO, "%s", pe.message);
	}
	r = hc_proto_get_encode(&a->out, s->id, guest_path);
	if (r < 0) {
		stream_clear(s);
		return hc_error_errno(err, r, "encode the get request");
	}
	*ret_id = s->id;
	return queued(a, 0, err);
}

int hc_agent_reseed(struct hc_agent *a, uint64_t realtime_ns, const void *seed, size_t n,
		    struct hc_error *err)
{
	struct hc_proto_reseed q = {.realtime_ns = realtime_ns, .seed = seed, .seed_len = n};

	if (a->dead)
		return hc_error_set(err, -EPIPE, "the agent channel is closed");
	if (n && (n < HC_PROTO_SEED_MIN || n > HC_PROTO_SEED_MAX))
		return hc_error_set(err, -EINVAL, "seed of %zu bytes (0 or %u..%u)", n,
				    HC_PROTO_SEED_MIN, HC_PROTO_SEED_MAX);
	return queued(a, hc_proto_reseed_encode(&a->out, &q), err);
}

int hc_agent_shutdown(struct hc_agent *a, struct hc_error *err)
{
	if (a->dead)
		return hc_error_set(err, -EPIPE, "the agent channel is closed");
	return queued(a, hc_proto_frame_append(&a->out, HC_FRAME_SHUTDOWN, 0, NULL, 0), err);
}

int hc_agent_exec_error(const struct hc_proto_error *pe, const char *argv0, int *ret_exit_code,
			struct hc_error *err)
{
	const char *m = pe->message[0] ? pe->message : "no detail";

	*ret_exit_code = 0;
	switch (pe->reason) {
	case HC_EXEC_ERR_NOT_FOUND:
		*ret_exit_code = 127;
		return hc_error_setk(err, -ENOENT, "exec",
				     "executable file `%s` not found in $PATH", argv0);
	case HC_EXEC_ERR_NOT_EXECUTABLE:
		*ret_exit_code = 126;
		return hc_error_setk(err, -EACCES, "exec", "%s", m);
	case HC_EXEC_ERR_BAD_WORKDIR:
		*ret_exit_code = 126;
		return hc_error_setk(err, -ENOTDIR, "exec", "%s", m);
	case HC_EXEC_ERR_BAD_USER:
		return hc_error_setk(err, -EINVAL, "exec", "%s", m);
	default:
		return 0;
	}
}
