/* SPDX-License-Identifier: MIT */
/*
 * The serve loop (docs/protocol.md, "Conversation"). One poll() over the channel, the vsock
 * listener, a signalfd for SIGCHLD and the command's pipes. Nothing here blocks:
 *  - frames to the host go through a bounded queue written when the channel is writable; the
 *    command's pipes are read only while the queue has room, so a command writing faster than
 *    the host reads blocks on its own pipe, and the agent keeps serving SIGNAL and timeouts;
 *  - stdin from the host is queued (bounded) and written when the pipe takes it; while the
 *    queue is full the channel is not read, so the host's writes push back instead.
 * Every child that exits is reaped, the command's own and any orphan (PID 1 / subreaper).
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "guest/guest.h"

/* Output is read from the command only while less than this is queued for the host. */
#define OUT_SOFT (256u * 1024)
/* The hard cap: the soft limit, two pipe reads, a RESULT, an EXIT and an ERROR fit. */
#define OUT_MAX (OUT_SOFT + 4 * HC_PROTO_MAX_DATA + HC_PROTO_MAX_PAYLOAD + 64 * 1024)
/* The channel is not read while this much stdin waits for the command. */
#define STDIN_SOFT (1u << 20)
#define STDIN_MAX (STDIN_SOFT + 2 * HC_PROTO_MAX_PAYLOAD)
#define IN_MAX (HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD)

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

	/* the command, when one runs (proc.pid != 0), on its stream id */
	struct guest_proc proc;
	uint32_t stream;
	bool want_result;
	struct hc_buf stdin_q;
	size_t stdin_ack; /* stdin written to the command, not yet acknowledged (WINDOW) */
	bool stdin_close; /* close stdin once the queue is written */
	bool exited;	  /* reaped; its pipes are being drained */
	int status;
	bool has_deadline;
	struct timespec deadline;
	bool timed_out;
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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
	guest_dbg("error %u: %s", reason, e.message);
	if (hc_proto_error_encode(&a->out, stream, &e) < 0)
		guest_log("cannot queue an error frame: %s", e.message);
}

static int queue_hello(struct hc_buf *b)
{
	struct hc_proto_hello h = {.version = HC_PROTO_VERSION, .boot_ns = now_ns(CLOCK_BOOTTIME)};

	snprintf(h.agent, sizeof(h.agent), "%s", GUEST_AGENT_VERSION);
	return hc_proto_hello_encode(b, &h);
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
	/* Track frame starts, so a reconnect can drop the torn rest of a frame. */
	while (a->out_boundary < a->out_off) {
		const uint8_t *h = (const uint8_t *)a->out.data + a->out_boundary;
		a->out_boundary += HC_PROTO_HEADER_SIZE + hc_proto_header_len(h);
	}
	if (a->out_off == a->out.len) {
		hc_buf_reset(&a->out);
		a->out_off = a->out_boundary = 0;
	} else if (a->out_off > OUT_SOFT) {
		hc_buf_consume(&a->out, a->out_off);
		a->out_boundary -= a->out_off;
		a->out_off = 0;
	}
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

/* ---- the command ---- */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void kill_command(struct agent *a, int sig)
{
	if (!a->proc.pid)
		return;
	/* The group first (its own session), then the process in case it left the group. */
	kill(-a->proc.pid, sig);
	if (!a->exited)
		kill(a->proc.pid, sig);
}

static void start_command(struct agent *a, const struct hc_proto_frame *f)
{
	struct hc_proto_exec e;
	struct hc_proto_error err;
	int r;

	if (f->stream == HC_PROTO_STREAM_VM) {
		send_error(a, f->stream, HC_EXEC_ERR_INVALID, "exec on stream 0");
		return;
	}
	if (a->proc.pid) {
		send_error(a, f->stream, HC_EXEC_ERR_BUSY, "a command is already running");
		return;
	}
	r = hc_proto_exec_decode(f, &e);
	if (r < 0) {
		send_error(a, f->stream, HC_EXEC_ERR_INVALID, "malformed exec request: %s",
			   strerror(-r));
		return;
	}
	if (e.flags & HC_EXEC_F_DETACH) {
		send_error(a, f->stream, HC_EXEC_ERR_INVALID, "detach is not supported yet");
		hc_proto_exec_free(&e);
		return;
	}
	/* Each command's result is its own: a file left by an earlier one is not reported. */
	if ((e.flags & HC_EXEC_F_RESULT) && unlink(a->o->result_path) < 0 && errno != ENOENT)
		guest_dbg("remove %s: %m", a->o->result_path);
	struct guest_exec_opts eo = {.etc = a->o->etc};
	r = guest_exec_start(&e, &eo, &a->proc, &err);
	if (r < 0) {
		guest_dbg("exec %s failed: %s", e.argv[0], err.message);
		if (hc_proto_error_encode(&a->out, f->stream, &err) < 0)
			guest_log("cannot queue an error frame");
		hc_proto_exec_free(&e);
		return;
	}
	guest_dbg("exec %s: pid %d", e.argv[0], (int)a->proc.pid);
	a->stream = f->stream;
	a->want_result = e.flags & HC_EXEC_F_RESULT;
	if (hc_proto_started_encode(&a->out, a->stream, (uint32_t)a->proc.pid) < 0)
		guest_log("cannot queue the started frame");
	a->stdin_close = false;
	a->stdin_ack = 0;
	a->exited = false;
	a->timed_out = false;
	a->has_deadline = e.timeout_ms > 0;
	if (a->has_deadline) {
		clock_gettime(CLOCK_MONOTONIC, &a->deadline);
		a->deadline.tv_sec += e.timeout_ms / 1000;
		a->deadline.tv_nsec += (long)(e.timeout_ms % 1000) * 1000000L;
		if (a->deadline.tv_nsec >= 1000000000L) {
			a->deadline.tv_sec++;
			a->deadline.tv_nsec -= 1000000000L;
		}
	}
	hc_proto_exec_free(&e);
}

/* Reads one chunk of the command's output into a frame. 1 data, 0 EOF, -EAGAIN. */
static int read_output(struct agent *a, int *fd, uint8_t type)
{
	static uint8_t chunk[HC_PROTO_MAX_DATA];
	ssize_t n;

	do
		n = read(*fd, chunk, sizeof(chunk));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return -EAGAIN;
	if (n <= 0) {
		close_fd(fd);
		return 0;
	}
	if (hc_proto_frame_append(&a->out, type, a->stream, chunk, (size_t)n) < 0) {
		/* Cannot happen: reads stop at OUT_SOFT, far below OUT_MAX. */
		guest_log("output queue overflow; dropping %zd bytes", n);
	}
	return 1;
}

static void write_stdin(struct agent *a)
{
	while (a->proc.in_fd >= 0 && a->stdin_q.len > 0) {
		ssize_t n = write(a->proc.in_fd, a->stdin_q.data, a->stdin_q.len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			/* EPIPE: the command closed its stdin; the rest has nowhere to go. */
			hc_buf_reset(&a->stdin_q);
			close_fd(&a->proc.in_fd);
			return;
		}
		hc_buf_consume(&a->stdin_q, (size_t)n);
		a->stdin_ack += (size_t)n;
	}
	/* Coalesced: per 64 KiB, or once the queue is empty. */
	while (a->stdin_ack >= HC_PROTO_MAX_DATA || (a->stdin_ack && a->stdin_q.len == 0)) {
		uint32_t n =
			a->stdin_ack > HC_PROTO_WINDOW ? HC_PROTO_WINDOW : (uint32_t)a->stdin_ack;

		if (hc_proto_window_encode(&a->out, a->stream, n) < 0)
			break;
		a->stdin_ack -= n;
	}
	if (a->stdin_close && a->stdin_q.len == 0)
		close_fd(&a->proc.in_fd);
}

/* Reads /hotcell/result.json (bounded; never blocks on a FIFO) into a RESULT frame. */
static void queue_result(struct agent *a)
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
	if (hc_proto_result_encode(&a->out, a->stream, &res) < 0)
		guest_log("cannot queue the result frame");
}

/* After the command is reaped: drain what its pipes hold now, then report. Output a leftover
 * background process writes later is not waited for: the command's process group is killed,
 * as a container's processes end with its first one. */
static void finish_command(struct agent *a)
{
	struct hc_proto_exit x = {0};

	while (out_pending(a) < OUT_SOFT && (a->proc.out_fd >= 0 || a->proc.err_fd >= 0)) {
		if (a->proc.out_fd >= 0 && read_output(a, &a->proc.out_fd, HC_FRAME_STDOUT) < 0)
			close_fd(&a->proc.out_fd);
		if (out_pending(a) >= OUT_SOFT)
			break;
		if (a->proc.err_fd >= 0 && read_output(a, &a->proc.err_fd, HC_FRAME_STDERR) < 0)
			close_fd(&a->proc.err_fd);
	}
	if (a->proc.out_fd >= 0 || a->proc.err_fd >= 0)
		return; /* the queue is full: go on once the host has read */
	kill(-a->proc.pid, SIGKILL);
	close_fd(&a->proc.in_fd);
	hc_buf_reset(&a->stdin_q);
	if (a->want_result)
		queue_result(a);
	if (WIFSIGNALED(a->status)) {
		x.code = -1;
		x.signal = WTERMSIG(a->status);
	} else {
		x.code = WEXITSTATUS(a->status);
	}
	x.timed_out = a->timed_out;
	guest_dbg("exit: code %d signal %d timed_out %d", x.code, x.signal, x.timed_out);
	if (hc_proto_exit_encode(&a->out, a->stream, &x) < 0)
		guest_log("cannot queue the exit frame");
	memset(&a->proc, 0, sizeof(a->proc));
	a->proc.in_fd = a->proc.out_fd = a->proc.err_fd = -1;
	a->exited = false;
}

/* ---- frames from the host ---- */

/* 0 go on, 1 shutdown requested. */
static int handle_frame(struct agent *a, const struct hc_proto_frame *f)
{
	int32_t sig;

	bool mine = a->proc.pid && f->stream == a->stream;

	guest_dbg("frame %s on %u (%u bytes)", hc_proto_type_name(f->type), f->stream, f->len);
	switch ((enum hc_proto_type)f->type) {
	case HC_FRAME_EXEC:
		start_command(a, f);
		return 0;
	case HC_FRAME_WINDOW:
		return 0;
	case HC_FRAME_STDIN:
		/* Late stdin (after the command ended or closed it) is dropped. */
		if (mine && a->proc.in_fd >= 0 && !a->stdin_close &&
		    hc_buf_append(&a->stdin_q, f->payload, f->len) < 0)
			guest_log("stdin queue overflow; dropping %u bytes", f->len);
		return 0;
	case HC_FRAME_STDIN_CLOSE:
		if (mine)
			a->stdin_close = true;
		return 0;
	case HC_FRAME_SIGNAL:
		if (hc_proto_signal_decode(f, &sig) < 0) {
			send_error(a, f->stream, HC_EXEC_ERR_INVALID, "malformed signal request");
			return 0;
		}
		if (mine && !a->exited)
			kill_command(a, sig);
		return 0;
	case HC_FRAME_SHUTDOWN:
		return 1;
	case HC_FRAME_CANCEL:
	case HC_FRAME_FILE_PUT:
	case HC_FRAME_FILE_GET:
	case HC_FRAME_ENTRY:
	case HC_FRAME_FILE_DATA:
	case HC_FRAME_END:
	case HC_FRAME_RESEED:
	case HC_FRAME_STARTED:
	case HC_FRAME_DONE:
	case HC_FRAME_HELLO:
	case HC_FRAME_STDOUT:
	case HC_FRAME_STDERR:
	case HC_FRAME_EXIT:
	case HC_FRAME_ERROR:
	case HC_FRAME_RESULT:
		break;
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
			if (a->stdin_q.len >= STDIN_SOFT)
				return 0; /* push back: read more once the command took it */
			continue;
		}
		size_t room = IN_MAX - a->in.len;
		if (room > 65536)
			room = 65536;
		if (hc_buf_reserve(&a->in, room) < 0)
			return -ENOMEM;
		n = read(a->chan, a->in.data + a->in.len, room);
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

static int poll_timeout(const struct agent *a)
{
	struct timespec now;
	int64_t ms;

	if (!a->proc.pid || a->exited || !a->has_deadline || a->timed_out)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (int64_t)(a->deadline.tv_sec - now.tv_sec) * 1000 +
	     (a->deadline.tv_nsec - now.tv_nsec) / 1000000;
	if (ms < 0)
		return 0;
	return ms > 60000 ? 60000 : (int)ms + 1;
}

static void check_deadline(struct agent *a)
{
	if (poll_timeout(a) == 0) {
		guest_dbg("timeout: killing pid %d", (int)a->proc.pid);
		a->timed_out = true;
		kill_command(a, SIGKILL);
	}
}

static void end_command(struct agent *a)
{
	int st;

	if (!a->proc.pid)
		return;
	kill_command(a, SIGKILL);
	if (!a->exited)
		while (waitpid(a->proc.pid, &st, 0) < 0 && errno == EINTR)
			;
	close_fd(&a->proc.in_fd);
	close_fd(&a->proc.out_fd);
	close_fd(&a->proc.err_fd);
	a->proc.pid = 0;
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

enum { P_CHAN, P_LISTEN, P_SIG, P_OUT, P_ERR, P_IN, P_N };

int guest_agent_serve(const struct guest_agent_opts *o)
{
	struct agent a = {
		.o = o,
		.chan = o->chan_fd,
		.listen_fd = o->listen_fd,
		.in = HC_BUF_INIT(IN_MAX),
		.out = HC_BUF_INIT(OUT_MAX),
		.stdin_q = HC_BUF_INIT(STDIN_MAX),
		.proc = {.in_fd = -1, .out_fd = -1, .err_fd = -1},
	};
	sigset_t mask;
	int r = 0;

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
		struct pollfd p[P_N];
		bool want_in;

		/* Reap first: the command may have ended while its pipes were being drained. */
		if (a.proc.pid && !a.exited && guest_reap(a.proc.pid, &a.status) == 1)
			a.exited = true;
		else if (!a.proc.pid || a.exited)
			(void)guest_reap(0, NULL);
		if (a.proc.pid && a.exited)
			finish_command(&a);
		if (a.proc.pid)
			write_stdin(&a);
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
		check_deadline(&a);
		/* Frames already buffered while stdin pushed back: the channel may never become
		 * readable again for them (a STDIN_CLOSE behind the data, say). */
		if (a.chan >= 0 && a.stdin_q.len < STDIN_SOFT && a.in.len >= HC_PROTO_HEADER_SIZE) {
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

		want_in = a.stdin_q.len < STDIN_SOFT;
		p[P_CHAN] = (struct pollfd){.fd = a.chan,
					    .events = (short)((want_in ? POLLIN : 0) |
							      (out_pending(&a) ? POLLOUT : 0))};
		p[P_LISTEN] = (struct pollfd){.fd = a.listen_fd, .events = POLLIN};
		p[P_SIG] = (struct pollfd){.fd = a.sfd, .events = POLLIN};
		bool room = out_pending(&a) < OUT_SOFT && a.proc.pid && !a.exited;
		p[P_OUT] = (struct pollfd){.fd = room ? a.proc.out_fd : -1, .events = POLLIN};
		p[P_ERR] = (struct pollfd){.fd = room ? a.proc.err_fd : -1, .events = POLLIN};
		p[P_IN] =
			(struct pollfd){.fd = a.stdin_q.len ? a.proc.in_fd : -1, .events = POLLOUT};

		if (poll(p, P_N, poll_timeout(&a)) < 0) {
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
		if (p[P_OUT].revents && read_output(&a, &a.proc.out_fd, HC_FRAME_STDOUT) == 0)
			guest_dbg("stdout closed");
		if (p[P_ERR].revents && out_pending(&a) < OUT_SOFT &&
		    read_output(&a, &a.proc.err_fd, HC_FRAME_STDERR) == 0)
			guest_dbg("stderr closed");
		if (p[P_IN].revents & (POLLERR | POLLHUP)) {
			hc_buf_reset(&a.stdin_q);
			close_fd(&a.proc.in_fd);
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
				r = -EPIPE; /* not reading (stdin push-back): the host is gone */
			else
				r = 0;
			if (channel_result(&a, &r))
				break;
		}
	}
out:
	end_command(&a);
	(void)guest_reap(0, NULL);
	close_fd(&a.sfd);
	hc_buf_free(&a.in);
	hc_buf_free(&a.out);
	hc_buf_free(&a.stdin_q);
	return r;
}
