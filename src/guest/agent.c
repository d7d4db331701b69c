/* SPDX-License-Identifier: MIT */
/*
 * The serve loop (docs/protocol.md, "Conversation"). Single-threaded: one poll() over the
 * channel, the vsock listener, a signalfd for SIGCHLD and the pipes of every running command.
 * Any number of streams (execs, puts, gets; at most HC_PROTO_MAX_STREAMS) run at once, and
 * nothing here blocks on a peer:
 *  - frames to the host go through one queue written when the channel is writable; a stream's
 *    output (a command's pipes, a get's files) is read only while the queue is below OUT_SOFT
 *    and the stream has window (HC_PROTO_WINDOW unacknowledged bytes at most), so a command
 *    whose reader never acknowledges blocks on its own pipe while the others go on;
 *  - stdin is queued per stream, bounded by the window the host must respect (a host that
 *    does not gets its stream aborted), and acknowledged once written to the command;
 *  - file content of a put is written as it comes and acknowledged after.
 * Every child that exits is reaped, the commands' own and any orphan (PID 1 / subreaper).
 */
#include <fcntl.h>
#include <linux/random.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "core/pty.h"
#include "guest/guest.h"
#include "proto/tree.h"

/* Output is read from commands and files only while less than this is queued for the host. */
#define OUT_SOFT (256u * 1024)
/* The channel is not read while this much waits for the host (its answers would pile up). */
#define OUT_READ_STOP (2u * 1024 * 1024)
/* The hard cap: a full RESULT and an ERROR per stream fit above the limits. */
#define OUT_MAX (OUT_READ_STOP + 2 * HC_PROTO_MAX_PAYLOAD + 1024 * 1024)
#define IN_MAX (HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD)
/* Acknowledgements are coalesced up to this much, or sent when the stream goes idle. */
#define ACK_EVERY (64u * 1024)
/* Detached commands tracked at once (to end them with the agent). */
#define MAX_DETACHED 1024

enum stream_kind { S_FREE, S_EXEC, S_PUT, S_GET };

struct stream {
	enum stream_kind kind;
	uint32_t id;
	uint32_t sent; /* data sent to the host, not yet acknowledged */
	uint32_t recv; /* data received from the host, not yet acknowledged by us */
	uint32_t ack;  /* of recv: consumed, to acknowledge */
	bool cancelled;

	/* S_EXEC */
	struct guest_proc proc;
	struct hc_buf stdin_q;
	bool stdin_close; /* close stdin once the queue is written */
	bool exited;	  /* reaped; its pipes are being drained */
	bool tty_drained; /* the pty's last output was waited for once */
	int status;
	bool want_result;
	bool has_deadline, timed_out;
	struct timespec deadline;

	/* S_PUT, S_GET */
	struct hc_tree_writer *w;
	struct hc_tree_reader *r;
	bool end_sent;
};

struct agent {
	const struct guest_agent_opts *o;
	int chan;      /* -1 while disconnected (vsock after a reset) */
	int listen_fd; /* vsock listener or -1 */
	int sfd;       /* signalfd (SIGCHLD) */
	struct hc_buf in;
	struct hc_buf out;
	size_t out_off;	     /* bytes of out already written */
	size_t out_boundary; /* start of the first frame not yet begun (>= out_off) */
	bool closing;	     /* stop after flushing what can be flushed */
	struct stream streams[HC_PROTO_MAX_STREAMS];
	pid_t detached[MAX_DETACHED];
	size_t n_detached;
	bool result_busy; /* an exec with RESULT runs (result.json is one file) */
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void queue_error(struct agent *a, uint32_t stream, const struct hc_proto_error *e)
{
	guest_dbg("error %u on %u: %s", e->reason, stream, e->message);
	if (hc_proto_error_encode(&a->out, stream, e) < 0)
		guest_log("cannot queue an error frame: %s", e->message);
}

static void send_error(struct agent *a, uint32_t stream, uint32_t reason, const char *fmt, ...)
	_printf_(4, 5);
static void send_error(struct agent *a, uint32_t stream, uint32_t reason, const char *fmt, ...)
{
	struct hc_proto_error e = {.reason = reason};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	queue_error(a, stream, &e);
}

static int queue_hello(struct hc_buf *b)
{
	struct hc_proto_hello h = {.version = HC_PROTO_VERSION, .boot_ns = now_ns(CLOCK_BOOTTIME)};

	snprintf(h.agent, sizeof(h.agent), "%s", GUEST_AGENT_VERSION);
	return hc_proto_hello_encode(b, &h);
}

/* ---- the channel ---- */

static size_t out_pending(const struct agent *a)
{
	return a->out.len - a->out_off;
}

/* Writes what the channel takes now. -errno on a dead channel. */
static int flush_out(struct agent *a)
{
	while (a->chan >= 0 && out_pending(a) > 0) {
		ssize_t n = write(a->chan, a->out.data + a->out_off, out_pending(a));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		a->out_off += (size_t)n;
	}
	hc_proto_outq_settle(&a->out, &a->out_off, &a->out_boundary, OUT_SOFT);
	return 0;
}

/* A new host connection (vsock, after a restore): it starts with a fresh hello, then the
 * frames not yet begun; a frame half-written to the old connection is dropped. */
static void replace_channel(struct agent *a, int fd)
{
	struct hc_buf nb = HC_BUF_INIT(OUT_MAX);

	if (a->chan >= 0)
		close(a->chan);
	a->chan = fd;
	hc_buf_reset(&a->in);
	if (queue_hello(&nb) < 0 ||
	    hc_buf_append(&nb, a->out.data + a->out_boundary, a->out.len - a->out_boundary) < 0) {
		guest_log("reconnect: cannot rebuild the output queue; dropping it");
		hc_buf_reset(&nb);
		(void)queue_hello(&nb);
	}
	hc_buf_free(&a->out);
	a->out = nb;
	a->out_off = a->out_boundary = 0;
	guest_dbg("host reconnected");
}

/* ---- streams ---- */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static struct stream *stream_find(struct agent *a, uint32_t id)
{
	if (id == HC_PROTO_STREAM_VM)
		return NULL;
	for (size_t i = 0; i < HC_ARRAY_SIZE(a->streams); i++)
		if (a->streams[i].kind != S_FREE && a->streams[i].id == id)
			return &a->streams[i];
	return NULL;
}

static struct stream *stream_new(struct agent *a, uint32_t id, enum stream_kind kind)
{
	for (size_t i = 0; i < HC_ARRAY_SIZE(a->streams); i++) {
		struct stream *s = &a->streams[i];

		if (s->kind != S_FREE)
			continue;
		*s = (struct stream){.kind = kind,
				     .id = id,
				     .proc = {.in_fd = -1, .out_fd = -1, .err_fd = -1},
				     .stdin_q = HC_BUF_INIT(HC_PROTO_WINDOW + HC_PROTO_MAX_DATA)};
		return s;
	}
	return NULL;
}

static void kill_command(struct stream *s, int sig)
{
	if (!s->proc.pid)
		return;
	/* The group first (its own session), then the process in case it left the group. */
	kill(-s->proc.pid, sig);
	if (!s->exited)
		kill(s->proc.pid, sig);
}

/* Forgets the stream; its id is free. A command still running is killed (and reaped later
 * by the loop's waitpid(-1), as any orphan). */
static void stream_free(struct agent *a, struct stream *s)
{
	if (s->kind == S_EXEC) {
		kill_command(s, SIGKILL);
		close_fd(&s->proc.in_fd);
		close_fd(&s->proc.out_fd);
		close_fd(&s->proc.err_fd);
		if (s->want_result)
			a->result_busy = false;
	}
	hc_buf_free(&s->stdin_q);
	hc_tree_writer_free(s->w);
	hc_tree_reader_free(s->r);
	memset(s, 0, sizeof(*s));
	s->kind = S_FREE;
}

/* Ends a stream with ERROR as its final frame (a failed transfer, a protocol violation). */
static void stream_fail(struct agent *a, struct stream *s, const struct hc_proto_error *e)
{
	queue_error(a, s->id, e);
	stream_free(a, s);
}

static void stream_failf(struct agent *a, struct stream *s, uint32_t reason, const char *fmt, ...)
	_printf_(4, 5);
static void stream_failf(struct agent *a, struct stream *s, uint32_t reason, const char *fmt, ...)
{
	struct hc_proto_error e = {.reason = reason};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	stream_fail(a, s, &e);
}

/* Data from the host on s: n more bytes in flight; false (and the stream failed) when the
 * host overran the window. */
static bool take_window(struct agent *a, struct stream *s, uint32_t n)
{
	if (s->recv + (uint64_t)n > HC_PROTO_WINDOW) {
		stream_failf(a, s, HC_EXEC_ERR_INVALID,
			     "flow control: more than %u bytes unacknowledged on stream %u",
			     HC_PROTO_WINDOW, s->id);
		return false;
	}
	s->recv += n;
	return true;
}

/* Acknowledges what s consumed: per ACK_EVERY, or all of it when idle. */
static void send_acks(struct agent *a, struct stream *s, bool idle)
{
	if (s->ack == 0 || (!idle && s->ack < ACK_EVERY))
		return;
	if (hc_proto_window_encode(&a->out, s->id, s->ack) < 0) {
		guest_log("cannot queue a window frame");
		return;
	}
	s->recv -= s->ack;
	s->ack = 0;
}

/* Room in the host's window for data from s. */
static uint32_t room(const struct stream *s)
{
	uint32_t r = HC_PROTO_WINDOW - s->sent;

	return r > HC_PROTO_MAX_DATA ? HC_PROTO_MAX_DATA : r;
}

/* ---- exec ---- */

static void start_command(struct agent *a, const struct hc_proto_frame *f)
{
	struct hc_proto_exec e;
	struct hc_proto_error err;
	struct stream *s;
	int r;

	r = hc_proto_exec_decode(f, &e);
	if (r < 0) {
		send_error(a, f->stream, HC_EXEC_ERR_INVALID, "malformed exec request: %s",
			   strerror(-r));
		return;
	}
	if ((e.flags & HC_EXEC_F_RESULT) && a->result_busy) {
		send_error(a, f->stream, HC_EXEC_ERR_BUSY,
			   "a command reporting %s is already running", a->o->result_path);
		goto out;
	}
	if ((e.flags & HC_EXEC_F_DETACH) && a->n_detached >= MAX_DETACHED) {
		send_error(a, f->stream, HC_EXEC_ERR_BUSY, "%d detached commands already run",
			   MAX_DETACHED);
		goto out;
	}
	s = stream_new(a, f->stream, S_EXEC);
	if (!s) {
		send_error(a, f->stream, HC_EXEC_ERR_BUSY, "%d requests already running",
			   HC_PROTO_MAX_STREAMS);
		goto out;
	}
	/* Each command's result is its own: a file left by an earlier one is not reported. */
	if ((e.flags & HC_EXEC_F_RESULT) && unlink(a->o->result_path) < 0 && errno != ENOENT)
		guest_dbg("remove %s: %m", a->o->result_path);
	/* The image may lack /var/log: make the whole path. */
	if ((e.flags & HC_EXEC_F_DETACH) && (r = guest_mkdir_p(a->o->log_dir, 0755)) < 0)
		guest_dbg("mkdir %s: %s", a->o->log_dir, strerror(-r));
	struct guest_exec_opts eo = {.etc = a->o->etc, .log_dir = a->o->log_dir};
	r = guest_exec_start(&e, &eo, &s->proc, &err);
	if (r < 0) {
		guest_dbg("exec %s failed: %s", e.argv[0], err.message);
		stream_fail(a, s, &err);
		goto out;
	}
	guest_dbg("exec %s on %u: pid %d", e.argv[0], s->id, (int)s->proc.pid);
	if (hc_proto_started_encode(&a->out, s->id, (uint32_t)s->proc.pid) < 0)
		guest_log("cannot queue the started frame");
	if (e.flags & HC_EXEC_F_DETACH) {
		/* It lives on alone: the stream ends here, the agent only reaps (or ends) it. */
		a->detached[a->n_detached++] = s->proc.pid;
		close_fd(&s->proc.in_fd);
		close_fd(&s->proc.out_fd);
		close_fd(&s->proc.err_fd);
		s->proc.pid = 0;
		stream_free(a, s);
		goto out;
	}
	s->want_result = e.flags & HC_EXEC_F_RESULT;
	a->result_busy |= s->want_result;
	s->has_deadline = e.timeout_ms > 0;
	if (s->has_deadline) {
		clock_gettime(CLOCK_MONOTONIC, &s->deadline);
		s->deadline.tv_sec += e.timeout_ms / 1000;
		s->deadline.tv_nsec += (long)(e.timeout_ms % 1000) * 1000000L;
		if (s->deadline.tv_nsec >= 1000000000L) {
			s->deadline.tv_sec++;
			s->deadline.tv_nsec -= 1000000000L;
		}
	}
out:
	hc_proto_exec_free(&e);
}

/* Reads one chunk of a command's output into a frame. 1 data, 0 EOF, -EAGAIN. */
static int read_output(struct agent *a, struct stream *s, int *fd, uint8_t type)
{
	static uint8_t chunk[HC_PROTO_MAX_DATA];
	uint32_t n_max = room(s);
	ssize_t n;

	if (n_max == 0)
		return -EAGAIN;
	do
		n = read(*fd, chunk, n_max);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return -EAGAIN;
	if (n <= 0) {
		close_fd(fd);
		return 0;
	}
	if (hc_proto_frame_append(&a->out, type, s->id, chunk, (size_t)n) < 0) {
		/* Cannot happen: reads stop at OUT_SOFT, far below OUT_MAX. */
		guest_log("output queue overflow; dropping %zd bytes", n);
		return 1;
	}
	s->sent += (uint32_t)n;
	return 1;
}

static void write_stdin(struct agent *a, struct stream *s)
{
	while (s->proc.in_fd >= 0 && s->stdin_q.len > 0) {
		ssize_t n = write(s->proc.in_fd, s->stdin_q.data, s->stdin_q.len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			/* EPIPE: the command closed its stdin; the rest has nowhere to go. */
			s->ack += (uint32_t)s->stdin_q.len;
			hc_buf_reset(&s->stdin_q);
			close_fd(&s->proc.in_fd);
			break;
		}
		hc_buf_consume(&s->stdin_q, (size_t)n);
		s->ack += (uint32_t)n;
	}
	if (s->stdin_close && s->stdin_q.len == 0)
		close_fd(&s->proc.in_fd);
	send_acks(a, s, s->stdin_q.len == 0);
}

/* Reads result.json (bounded; never blocks on a FIFO) into a RESULT frame. */
static void queue_result(struct agent *a, uint32_t stream)
{
	struct hc_proto_result res = {.status = HC_RESULT_OK};
	_cleanup_free_ uint8_t *data = NULL;
	char reason[128];
	struct stat st;
	size_t len = 0;
	int fd = open(a->o->result_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0) {
		if (errno == ENOENT)
			return;
		snprintf(reason, sizeof(reason), "open: %s", strerror(errno));
		res.status = HC_RESULT_UNREADABLE;
		goto send;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(reason, sizeof(reason), "not a regular file");
		res.status = HC_RESULT_UNREADABLE;
		goto send;
	}
	if ((uint64_t)st.st_size > HC_PROTO_MAX_RESULT) {
		snprintf(reason, sizeof(reason), "too large: %lld bytes (limit %u)",
			 (long long)st.st_size, HC_PROTO_MAX_RESULT);
		res.status = HC_RESULT_TOO_LARGE;
		goto send;
	}
	/* One byte more than the limit tells a file that grew since fstat. */
	data = malloc(HC_PROTO_MAX_RESULT + 1);
	if (!data) {
		snprintf(reason, sizeof(reason), "out of memory");
		res.status = HC_RESULT_UNREADABLE;
		goto send;
	}
	for (;;) {
		ssize_t n = read(fd, data + len, HC_PROTO_MAX_RESULT + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(reason, sizeof(reason), "read: %s", strerror(errno));
			res.status = HC_RESULT_UNREADABLE;
			goto send;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > HC_PROTO_MAX_RESULT) {
			snprintf(reason, sizeof(reason), "too large: over %u bytes",
				 HC_PROTO_MAX_RESULT);
			res.status = HC_RESULT_TOO_LARGE;
			goto send;
		}
	}
	res.data = data;
	res.len = len;
send:
	if (fd >= 0)
		close(fd);
	if (res.status != HC_RESULT_OK) {
		res.data = (const uint8_t *)reason;
		res.len = strlen(reason);
	}
	if (hc_proto_result_encode(&a->out, stream, &res) < 0)
		guest_log("cannot queue the result frame");
}

/* After the command is reaped: drain what its pipes hold now (within the window), then
 * report. Output a leftover background process writes later is not waited for: the
 * command's process group is killed, as a container's processes end with its first one. */
static void finish_command(struct agent *a, struct stream *s)
{
	struct hc_proto_exit x = {0};

	if (s->cancelled) {
		close_fd(&s->proc.out_fd);
		close_fd(&s->proc.err_fd);
	}
	while (out_pending(a) < OUT_SOFT && (s->proc.out_fd >= 0 || s->proc.err_fd >= 0)) {
		int r1 = 0, r2 = 0;

		if (s->proc.out_fd >= 0)
			r1 = read_output(a, s, &s->proc.out_fd, HC_FRAME_STDOUT);
		if (s->proc.err_fd >= 0 && out_pending(a) < OUT_SOFT)
			r2 = read_output(a, s, &s->proc.err_fd, HC_FRAME_STDERR);
		if (room(s) == 0)
			return; /* the host has not acknowledged enough: go on after a WINDOW */
		/* A pty hands the last bytes the command wrote to the master's side through a
		 * work queue: give them a moment (EIO ends it as soon as the slave is closed). */
		if (s->proc.tty && r1 == -EAGAIN && !s->tty_drained) {
			struct pollfd pf = {.fd = s->proc.out_fd, .events = POLLIN};

			s->tty_drained = true;
			if (poll(&pf, 1, 50) > 0)
				continue;
		}
		/* Empty for now: what a leftover background process may still write later is
		 * not waited for. */
		if ((s->proc.out_fd < 0 || r1 == -EAGAIN) &&
		    (s->proc.err_fd < 0 || r2 == -EAGAIN)) {
			close_fd(&s->proc.out_fd);
			close_fd(&s->proc.err_fd);
		}
	}
	if (s->proc.out_fd >= 0 || s->proc.err_fd >= 0)
		return; /* the queue is full: go on once the host has read */
	kill(-s->proc.pid, SIGKILL);
	if (s->want_result && !s->cancelled)
		queue_result(a, s->id);
	if (WIFSIGNALED(s->status)) {
		x.code = -1;
		x.signal = WTERMSIG(s->status);
	} else {
		x.code = WEXITSTATUS(s->status);
	}
	x.timed_out = s->timed_out;
	guest_dbg("exit on %u: code %d signal %d timed_out %d", s->id, x.code, x.signal,
		  x.timed_out);
	if (hc_proto_exit_encode(&a->out, s->id, &x) < 0)
		guest_log("cannot queue the exit frame");
	s->proc.pid = 0;
	stream_free(a, s);
}

/* ---- files ---- */

static void start_put(struct agent *a, const struct hc_proto_frame *f)
{
	static struct hc_proto_file_req q;
	struct hc_proto_error err = {0};
	struct stream *s;

	if (hc_proto_put_decode(f, &q) < 0) {
		send_error(a, f->stream, HC_EXEC_ERR_INVALID, "malformed file-put request");
		return;
	}
	s = stream_new(a, f->stream, S_PUT);
	if (!s) {
		send_error(a, f->stream, HC_EXEC_ERR_BUSY, "%d requests already running",
			   HC_PROTO_MAX_STREAMS);
		return;
	}
	guest_dbg("put %s on %u", q.path, s->id);
	if (hc_tree_writer_new(q.path, &s->w, &err) < 0)
		stream_fail(a, s, &err);
}

static void start_get(struct agent *a, const struct hc_proto_frame *f)
{
	static struct hc_proto_file_req q;
	struct hc_proto_error err = {0};
	struct stream *s;

	if (hc_proto_get_decode(f, &q) < 0) {
		send_error(a, f->stream, HC_EXEC_ERR_INVALID, "malformed file-get request");
		return;
	}
	s = stream_new(a, f->stream, S_GET);
	if (!s) {
		send_error(a, f->stream, HC_EXEC_ERR_BUSY, "%d requests already running",
			   HC_PROTO_MAX_STREAMS);
		return;
	}
	guest_dbg("get %s on %u", q.path, s->id);
	if (hc_tree_reader_new(q.path, &s->r, &err) < 0)
		stream_fail(a, s, &err);
}

/* Frames of a put: ENTRY, FILE_DATA, END. */
static void put_frame(struct agent *a, struct stream *s, const struct hc_proto_frame *f)
{
	static struct hc_proto_entry e;
	struct hc_proto_error err = {0};
	int r;

	switch (f->type) {
	case HC_FRAME_ENTRY:
		if (hc_proto_entry_decode(f, &e) < 0) {
			stream_failf(a, s, HC_EXEC_ERR_INVALID, "malformed entry");
			return;
		}
		r = hc_tree_writer_entry(s->w, &e, &err);
		break;
	case HC_FRAME_FILE_DATA:
		if (!take_window(a, s, f->len))
			return;
		r = hc_tree_writer_data(s->w, f->payload, f->len, &err);
		s->ack += f->len;
		break;
	case HC_FRAME_END:
		r = hc_tree_writer_end(s->w, &err);
		if (r >= 0) {
			guest_dbg("put on %u: done", s->id);
			if (hc_proto_frame_append(&a->out, HC_FRAME_DONE, s->id, NULL, 0) < 0)
				guest_log("cannot queue the done frame");
			stream_free(a, s);
			return;
		}
		break;
	default:
		stream_failf(a, s, HC_EXEC_ERR_INVALID, "unexpected %s frame in a file put",
			     hc_proto_type_name(f->type));
		return;
	}
	if (r < 0)
		stream_fail(a, s, &err); /* frees the writer: what it created is removed */
}

/* Sends what a get may send now: entries and content within the window and the queue. */
static void pump_get(struct agent *a, struct stream *s)
{
	static struct hc_proto_entry e;
	static uint8_t chunk[HC_PROTO_MAX_DATA];
	struct hc_proto_error err = {0};

	while (out_pending(a) < OUT_SOFT && s->kind == S_GET) {
		if (hc_tree_reader_pending(s->r) > 0) {
			uint32_t n = room(s);
			ssize_t k;

			if (n == 0)
				return;
			k = hc_tree_reader_read(s->r, chunk, n, &err);
			if (k < 0) {
				stream_fail(a, s, &err);
				return;
			}
			if (hc_proto_frame_append(&a->out, HC_FRAME_FILE_DATA, s->id, chunk,
						  (size_t)k) < 0)
				guest_log("cannot queue file data");
			s->sent += (uint32_t)k;
			continue;
		}
		int r = hc_tree_reader_next(s->r, &e, &err);
		if (r < 0) {
			stream_fail(a, s, &err);
			return;
		}
		if (r == 0) {
			guest_dbg("get on %u: end", s->id);
			if (hc_proto_frame_append(&a->out, HC_FRAME_END, s->id, NULL, 0) < 0)
				guest_log("cannot queue the end frame");
			stream_free(a, s);
			return;
		}
		if (hc_proto_entry_encode(&a->out, s->id, &e) < 0) {
			stream_failf(a, s, HC_ERR_IO, "cannot encode the entry %s", e.relpath);
			return;
		}
	}
}

static bool get_can_pump(const struct agent *a, const struct stream *s)
{
	return s->kind == S_GET && out_pending(a) < OUT_SOFT &&
	       (hc_tree_reader_pending(s->r) == 0 || room(s) > 0);
}

/* ---- the VM ---- */

static void reseed(struct agent *a, const struct hc_proto_frame *f)
{
	struct hc_proto_reseed q;
	struct timespec ts;
	/* struct rand_pool_info ends in a flexible array: room for the largest seed. */
	uint32_t pool_buf[(sizeof(struct rand_pool_info) + HC_PROTO_SEED_MAX) / 4 + 1];
	struct rand_pool_info *pool = (struct rand_pool_info *)pool_buf;
	int fd;

	if (hc_proto_reseed_decode(f, &q) < 0) {
		send_error(a, HC_PROTO_STREAM_VM, HC_EXEC_ERR_INVALID, "malformed reseed request");
		return;
	}
	ts.tv_sec = (time_t)(q.realtime_ns / 1000000000ull);
	ts.tv_nsec = (long)(q.realtime_ns % 1000000000ull);
	/* Test mode runs on the host: its clock is not ours to set. */
	if (!a->o->test_mode && clock_settime(CLOCK_REALTIME, &ts) < 0) {
		send_error(a, HC_PROTO_STREAM_VM, HC_EXEC_ERR_INTERNAL, "set the clock: %s",
			   strerror(errno));
		return;
	}
	/* Entropy alone only feeds the input pool (Linux 6.1): the reseed makes the CRNG use it
	 * now, so two clones of one snapshot read different bytes from here on. No seed: a
	 * migrated VM, which keeps its own state. */
	fd = -1;
	if (q.seed_len == 0)
		goto reseeded;
	pool->entropy_count = a->o->test_mode ? 0 : (int)(q.seed_len * 8);
	pool->buf_size = (int)q.seed_len;
	memcpy(pool->buf, q.seed, q.seed_len);
	fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, RNDADDENTROPY, pool) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0) {
		send_error(a, HC_PROTO_STREAM_VM, HC_EXEC_ERR_INTERNAL, "reseed the RNG: %s",
			   strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	explicit_bzero(pool_buf, sizeof(pool_buf));
reseeded:
	guest_dbg("reseeded (%zu bytes), clock set", q.seed_len);
	/* RESEED starts a restored or forked copy under a new host: the streams of the
	 * snapshotted VM have no client here, and the new host numbers its own from 1. Their
	 * commands end (as any command whose client went away) and their ids are free; frames
	 * queued for them before this point reach the host before DONE, which skips them.
	 * Detached commands are not streams and keep running. */
	for (size_t i = 0; i < HC_ARRAY_SIZE(a->streams); i++)
		if (a->streams[i].kind != S_FREE)
			stream_free(a, &a->streams[i]);
	if (hc_proto_frame_append(&a->out, HC_FRAME_DONE, HC_PROTO_STREAM_VM, NULL, 0) < 0)
		guest_log("cannot queue the done frame");
}

/* A restored copy's own hostname (docs/warm-start.md), before its command runs. */
static void set_hostname(struct agent *a, const struct hc_proto_frame *f)
{
	char name[HC_PROTO_HOSTNAME_MAX + 1];

	if (hc_proto_hostname_decode(f, name) < 0) {
		send_error(a, HC_PROTO_STREAM_VM, HC_EXEC_ERR_INVALID,
			   "malformed hostname request");
		return;
	}
	/* Test mode runs on the host: its hostname is not ours to set. */
	if (!a->o->test_mode && sethostname(name, strlen(name)) < 0) {
		send_error(a, HC_PROTO_STREAM_VM, HC_EXEC_ERR_INTERNAL, "set the hostname: %s",
			   strerror(errno));
		return;
	}
	guest_dbg("hostname %s", name);
	if (hc_proto_frame_append(&a->out, HC_FRAME_DONE, HC_PROTO_STREAM_VM, NULL, 0) < 0)
		guest_log("cannot queue the done frame");
}

/* NETCONF (v3): a restored or forked copy runs on a network of its own; eth0 takes it over
 * before any command. Test mode runs on the host, whose interfaces are not ours: it checks the
 * frame and answers. */
static void netconf(struct agent *a, const struct hc_proto_frame *f)
{
	struct hc_proto_netconf n;
	char msg[256];

	if (hc_proto_netconf_decode(f, &n) < 0) {
		send_error(a, HC_PROTO_STREAM_VM, HC_EXEC_ERR_INVALID, "malformed netconf request");
		return;
	}
	if (!a->o->test_mode && guest_net_reconfigure(&n, msg, sizeof(msg)) < 0) {
		send_error(a, HC_PROTO_STREAM_VM, HC_EXEC_ERR_INTERNAL, "%s", msg);
		return;
	}
	if (hc_proto_frame_append(&a->out, HC_FRAME_DONE, HC_PROTO_STREAM_VM, NULL, 0) < 0)
		guest_log("cannot queue the done frame");
}

/* ---- frames from the host ---- */

static void exec_frame(struct agent *a, struct stream *s, const struct hc_proto_frame *f)
{
	int32_t sig;

	switch (f->type) {
	case HC_FRAME_STDIN:
		if (!take_window(a, s, f->len))
			return;
		/* Late stdin (after the command ended or closed it) is dropped, but counted. */
		if (s->proc.in_fd < 0 || s->stdin_close) {
			s->ack += f->len;
			send_acks(a, s, true);
		} else if (hc_buf_append(&s->stdin_q, f->payload, f->len) < 0) {
			stream_failf(a, s, HC_EXEC_ERR_INVALID, "stdin beyond the window");
		}
		return;
	case HC_FRAME_STDIN_CLOSE:
		s->stdin_close = true;
		return;
	case HC_FRAME_SIGNAL:
		if (hc_proto_signal_decode(f, &sig) < 0)
			stream_failf(a, s, HC_EXEC_ERR_INVALID, "malformed signal request");
		else if (!s->exited)
			kill_command(s, sig);
		return;
	case HC_FRAME_RESIZE: {
		uint16_t rows, cols;
		int fd = s->proc.out_fd >= 0 ? s->proc.out_fd : s->proc.in_fd;

		if (hc_proto_resize_decode(f, &rows, &cols) < 0)
			stream_failf(a, s, HC_EXEC_ERR_INVALID, "malformed resize request");
		else if (!s->proc.tty)
			stream_failf(a, s, HC_EXEC_ERR_INVALID,
				     "resize for a command without a tty");
		else if (fd >= 0 && hc_pty_set_size(fd, rows, cols) < 0)
			guest_dbg("resize on %u: %m", s->id); /* the pty is going away */
		/* The kernel sends SIGWINCH to the terminal's foreground process group. */
		return;
	}
	default:
		stream_failf(a, s, HC_EXEC_ERR_INVALID, "unexpected %s frame for a command",
			     hc_proto_type_name(f->type));
		return;
	}
}

static void cancel(struct agent *a, struct stream *s)
{
	guest_dbg("cancel %u", s->id);
	if (s->kind == S_EXEC) {
		/* The command is killed; EXIT follows once it is reaped, without more output. */
		s->cancelled = true;
		kill_command(s, SIGKILL);
		close_fd(&s->proc.in_fd);
		close_fd(&s->proc.out_fd);
		close_fd(&s->proc.err_fd);
		hc_buf_reset(&s->stdin_q);
		return;
	}
	stream_failf(a, s, HC_ERR_CANCELLED, "cancelled");
}

/* 0 go on, 1 shutdown requested. */
static int handle_frame(struct agent *a, const struct hc_proto_frame *f)
{
	struct stream *s = stream_find(a, f->stream);
	uint32_t n;

	guest_dbg("frame %s on %u (%u bytes)", hc_proto_type_name(f->type), f->stream, f->len);
	switch ((enum hc_proto_type)f->type) {
	case HC_FRAME_SHUTDOWN:
		if (f->stream == HC_PROTO_STREAM_VM)
			return 1;
		break;
	case HC_FRAME_RESEED:
		if (f->stream == HC_PROTO_STREAM_VM) {
			reseed(a, f);
			return 0;
		}
		break;
	case HC_FRAME_HOSTNAME:
		if (f->stream == HC_PROTO_STREAM_VM) {
			set_hostname(a, f);
			return 0;
		}
		break;
	case HC_FRAME_NETCONF:
		if (f->stream == HC_PROTO_STREAM_VM) {
			netconf(a, f);
			return 0;
		}
		break;
	case HC_FRAME_EXEC:
	case HC_FRAME_FILE_PUT:
	case HC_FRAME_FILE_GET:
		if (f->stream == HC_PROTO_STREAM_VM) {
			send_error(a, f->stream, HC_EXEC_ERR_INVALID, "%s on stream 0",
				   hc_proto_type_name(f->type));
		} else if (s) {
			/* The running stream is not disturbed. */
			send_error(a, f->stream, HC_EXEC_ERR_INVALID, "stream %u is in use",
				   f->stream);
		} else if (f->type == HC_FRAME_EXEC) {
			start_command(a, f);
		} else if (f->type == HC_FRAME_FILE_PUT) {
			start_put(a, f);
		} else {
			start_get(a, f);
		}
		return 0;
	case HC_FRAME_WINDOW:
	case HC_FRAME_CANCEL:
	case HC_FRAME_STDIN:
	case HC_FRAME_STDIN_CLOSE:
	case HC_FRAME_SIGNAL:
	case HC_FRAME_RESIZE:
	case HC_FRAME_ENTRY:
	case HC_FRAME_FILE_DATA:
	case HC_FRAME_END:
		if (f->stream == HC_PROTO_STREAM_VM)
			break;
		/* A stream that just ended, or a failed put whose rest is still coming. */
		if (!s)
			return 0;
		if (f->type == HC_FRAME_CANCEL) {
			cancel(a, s);
		} else if (f->type == HC_FRAME_WINDOW) {
			if (hc_proto_window_decode(f, &n) < 0 || n > s->sent)
				stream_failf(a, s, HC_EXEC_ERR_INVALID,
					     "window frame beyond what was sent");
			else
				s->sent -= n;
		} else if (s->kind == S_EXEC) {
			exec_frame(a, s, f);
		} else if (s->kind == S_PUT) {
			put_frame(a, s, f);
		} else {
			stream_failf(a, s, HC_EXEC_ERR_INVALID, "unexpected %s frame in a file get",
				     hc_proto_type_name(f->type));
		}
		return 0;
	case HC_FRAME_HELLO:
	case HC_FRAME_STDOUT:
	case HC_FRAME_STDERR:
	case HC_FRAME_EXIT:
	case HC_FRAME_ERROR:
	case HC_FRAME_RESULT:
	case HC_FRAME_STARTED:
	case HC_FRAME_DONE:
		break;
	}
	if (s) {
		stream_failf(a, s, HC_EXEC_ERR_INVALID, "unexpected %s frame from the host",
			     hc_proto_type_name(f->type));
		return 0;
	}
	send_error(a, f->stream, HC_EXEC_ERR_INVALID, "unexpected %s frame from the host",
		   hc_proto_type_name(f->type));
	return 0;
}

/* Reads what the channel has. 0 go on, 1 shutdown, -ECONNRESET the host went away and may
 * come back (vsock), other -errno the channel is closed. */
static int read_channel(struct agent *a)
{
	for (;;) {
		struct hc_proto_frame f;
		size_t used;
		ssize_t n;
		int r;

		r = hc_proto_frame_parse((const uint8_t *)a->in.data, a->in.len, &f, &used);
		if (r < 0) {
			send_error(a, HC_PROTO_STREAM_VM, HC_EXEC_ERR_INVALID,
				   "protocol error: malformed frame header");
			return -EBADMSG;
		}
		if (r == 1) {
			r = handle_frame(a, &f);
			hc_buf_consume(&a->in, used);
			if (r)
				return r;
			if (out_pending(a) >= OUT_READ_STOP)
				return 0; /* push back: read more once the host took our answers */
			continue;
		}
		/* Idle: what the streams consumed is acknowledged now. */
		for (size_t i = 0; i < HC_ARRAY_SIZE(a->streams); i++)
			if (a->streams[i].kind == S_PUT)
				send_acks(a, &a->streams[i], true);
		size_t space = IN_MAX - a->in.len;
		if (space > 65536)
			space = 65536;
		if (hc_buf_reserve(&a->in, space) < 0)
			return -ENOMEM;
		n = read(a->chan, a->in.data + a->in.len, space);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		a->in.len += (size_t)n;
		a->in.data[a->in.len] = 0;
	}
}

/* ---- the loop ---- */

static int64_t ms_until(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
}

static int poll_timeout(const struct agent *a)
{
	int64_t best = -1;

	for (size_t i = 0; i < HC_ARRAY_SIZE(a->streams); i++) {
		const struct stream *s = &a->streams[i];

		if (get_can_pump(a, s))
			return 0;
		if (s->kind != S_EXEC || s->exited || !s->has_deadline || s->timed_out)
			continue;
		int64_t ms = ms_until(&s->deadline);
		if (ms < 0)
			ms = 0;
		else
			ms++;
		if (best < 0 || ms < best)
			best = ms;
	}
	return best > 60000 ? 60000 : (int)best;
}

static void check_deadlines(struct agent *a)
{
	for (size_t i = 0; i < HC_ARRAY_SIZE(a->streams); i++) {
		struct stream *s = &a->streams[i];

		if (s->kind == S_EXEC && !s->exited && s->has_deadline && !s->timed_out &&
		    ms_until(&s->deadline) < 0) {
			guest_dbg("timeout: killing pid %d", (int)s->proc.pid);
			s->timed_out = true;
			kill_command(s, SIGKILL);
		}
	}
}

/* Reaps every exited child; the commands' own are marked exited. */
static void reap(struct agent *a)
{
	int st;
	pid_t p;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		for (size_t i = 0; i < HC_ARRAY_SIZE(a->streams); i++) {
			struct stream *s = &a->streams[i];

			if (s->kind == S_EXEC && s->proc.pid == p && !s->exited) {
				s->exited = true;
				s->status = st;
			}
		}
		for (size_t i = 0; i < a->n_detached; i++)
			if (a->detached[i] == p) {
				a->detached[i] = a->detached[--a->n_detached];
				break;
			}
	}
}

int guest_reap(pid_t pid, int *ret_status)
{
	int found = 0, st;
	pid_t p;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid > 0 && p == pid) {
			*ret_status = st;
			found = 1;
		}
	}
	return found;
}

/* The end: every command (detached ones too) is killed and reaped, every transfer aborted
 * (a put removes what it wrote). */
static void end_all(struct agent *a)
{
	for (size_t i = 0; i < HC_ARRAY_SIZE(a->streams); i++) {
		struct stream *s = &a->streams[i];
		pid_t pid = s->kind == S_EXEC && !s->exited ? s->proc.pid : 0;

		if (s->kind == S_FREE)
			continue;
		stream_free(a, s);
		if (pid > 0)
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
	}
	for (size_t i = 0; i < a->n_detached; i++)
		kill(-a->detached[i], SIGKILL);
	for (size_t i = 0; i < a->n_detached; i++)
		while (waitpid(a->detached[i], NULL, 0) < 0 && errno == EINTR)
			;
	a->n_detached = 0;
}

/* Acts on what read_channel said; true when the loop must end (with *r its result). */
static bool channel_result(struct agent *a, int *r)
{
	if (*r == 1) {
		guest_dbg("shutdown requested");
		*r = 0;
		return true;
	}
	if (*r == -EBADMSG) {
		/* The stream cannot be resynchronised: say why, then end. */
		a->closing = true;
		*r = 0;
		return false;
	}
	if (*r < 0) {
		if (a->o->kind == GUEST_CHAN_VSOCK && *r == -ECONNRESET && a->listen_fd >= 0) {
			guest_dbg("channel reset; waiting for the host to reconnect");
			close_fd(&a->chan);
			*r = 0;
			return false;
		}
		guest_dbg("channel closed: %s", strerror(-*r));
		*r = *r == -EPIPE ? 0 : *r;
		return true;
	}
	return false;
}

/* Fixed slots, then three per stream (stdout, stderr, stdin). */
enum { P_CHAN, P_LISTEN, P_SIG, P_FIXED };
#define P_MAX (P_FIXED + 3 * HC_PROTO_MAX_STREAMS)

int guest_agent_serve(const struct guest_agent_opts *o)
{
	static struct agent a;
	sigset_t mask;
	int r = 0;

	a = (struct agent){
		.o = o,
		.chan = o->chan_fd,
		.listen_fd = o->listen_fd,
		.in = HC_BUF_INIT(IN_MAX),
		.out = HC_BUF_INIT(OUT_MAX),
	};
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	a.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a.sfd < 0) {
		guest_log("signalfd: %m");
		return -errno;
	}
	if (a.chan >= 0 && fcntl(a.chan, F_SETFL, fcntl(a.chan, F_GETFL) | O_NONBLOCK) < 0)
		guest_dbg("channel: cannot make it non-blocking: %m");
	/* A serial port's hello was written (blocking) by the caller; others queue it here. */
	if (o->kind != GUEST_CHAN_SERIAL && a.chan >= 0 && queue_hello(&a.out) < 0) {
		r = -ENOMEM;
		goto out;
	}

	for (;;) {
		struct pollfd p[P_MAX];
		struct stream *ps[P_MAX] = {0};
		size_t np = P_FIXED;

		reap(&a);
		for (size_t i = 0; i < HC_ARRAY_SIZE(a.streams); i++) {
			struct stream *s = &a.streams[i];

			if (s->kind == S_EXEC && s->exited)
				finish_command(&a, s);
			if (s->kind == S_EXEC)
				write_stdin(&a, s);
			if (s->kind == S_GET)
				pump_get(&a, s);
		}
		r = flush_out(&a);
		if (r < 0 && a.closing)
			break;
		if (r < 0) {
			guest_dbg("channel write: %s", strerror(-r));
			if (o->kind == GUEST_CHAN_VSOCK && r == -ECONNRESET && a.listen_fd >= 0) {
				close_fd(&a.chan);
				r = 0;
			} else {
				/* The host went away while we wrote: an end like EOF. */
				if (r == -EPIPE || r == -ECONNRESET)
					r = 0;
				break;
			}
		}
		if (a.closing) {
			r = 0;
			break;
		}
		check_deadlines(&a);
		bool want_in = out_pending(&a) < OUT_READ_STOP;
		/* Frames already buffered while we pushed back: the channel may never become
		 * readable again for them. */
		if (a.chan >= 0 && want_in && a.in.len >= HC_PROTO_HEADER_SIZE) {
			size_t used;
			struct hc_proto_frame f;

			if (hc_proto_frame_parse((const uint8_t *)a.in.data, a.in.len, &f, &used) !=
			    0) {
				r = read_channel(&a);
				if (channel_result(&a, &r))
					break;
				continue;
			}
		}

		p[P_CHAN] = (struct pollfd){.fd = a.chan,
					    .events = (short)((want_in ? POLLIN : 0) |
							      (out_pending(&a) ? POLLOUT : 0))};
		p[P_LISTEN] = (struct pollfd){.fd = a.listen_fd, .events = POLLIN};
		p[P_SIG] = (struct pollfd){.fd = a.sfd, .events = POLLIN};
		for (size_t i = 0; i < HC_ARRAY_SIZE(a.streams); i++) {
			struct stream *s = &a.streams[i];
			bool out_ok = out_pending(&a) < OUT_SOFT && room(s) > 0 && !s->exited;

			if (s->kind != S_EXEC)
				continue;
			if (out_ok && s->proc.out_fd >= 0) {
				ps[np] = s;
				p[np++] = (struct pollfd){.fd = s->proc.out_fd, .events = POLLIN};
			}
			if (out_ok && s->proc.err_fd >= 0) {
				ps[np] = s;
				p[np++] = (struct pollfd){.fd = s->proc.err_fd, .events = POLLIN};
			}
			if (s->stdin_q.len && s->proc.in_fd >= 0) {
				ps[np] = s;
				p[np++] = (struct pollfd){.fd = s->proc.in_fd, .events = POLLOUT};
			}
		}

		if (poll(p, (nfds_t)np, poll_timeout(&a)) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			guest_log("poll: %m");
			break;
		}
		if (p[P_SIG].revents) {
			struct signalfd_siginfo si;
			while (read(a.sfd, &si, sizeof(si)) > 0)
				;
		}
		for (size_t i = P_FIXED; i < np; i++) {
			struct stream *s = ps[i];

			if (!p[i].revents || s->kind != S_EXEC)
				continue;
			if (p[i].fd == s->proc.out_fd && out_pending(&a) < OUT_SOFT)
				(void)read_output(&a, s, &s->proc.out_fd, HC_FRAME_STDOUT);
			else if (p[i].fd == s->proc.err_fd && out_pending(&a) < OUT_SOFT)
				(void)read_output(&a, s, &s->proc.err_fd, HC_FRAME_STDERR);
			else if (p[i].fd == s->proc.in_fd && (p[i].revents & (POLLERR | POLLHUP))) {
				s->ack += (uint32_t)s->stdin_q.len;
				hc_buf_reset(&s->stdin_q);
				close_fd(&s->proc.in_fd);
				send_acks(&a, s, true);
			}
		}
		if (p[P_LISTEN].revents & POLLIN) {
			int fd = accept4(a.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (fd >= 0)
				replace_channel(&a, fd);
			continue; /* the poll set names the old channel */
		}
		if (a.chan >= 0 && p[P_CHAN].revents) {
			short ev = p[P_CHAN].revents;

			if ((ev & POLLIN) || ((ev & (POLLHUP | POLLERR)) && want_in))
				r = read_channel(&a);
			else if (ev & (POLLHUP | POLLERR))
				r = -EPIPE; /* not reading (push-back): the host is gone */
			else
				r = 0;
			if (channel_result(&a, &r))
				break;
		}
	}
out:
	end_all(&a);
	(void)guest_reap(0, NULL);
	close_fd(&a.sfd);
	hc_buf_free(&a.in);
	hc_buf_free(&a.out);
	return r;
}
