/* SPDX-License-Identifier: MIT */
/*
 * The container's workload (vmd/vmd.h, docs/runtime.md): a supervisor created with one is the
 * OCI container's process. It runs the workload on "start" with the engine's stdio (fds
 * VMD_WORK_FD..+2), passes on the signals it gets as themselves (SIGNAL frames), a host pty's
 * size changes as RESIZE, and exits with the workload's status once the VM has ended.
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/pty.h"
#include "vmd/vmd.h"

/* Output is acknowledged to the guest once the engine's queue is below this. */
#define WORK_ACK_LOW (64u * 1024)
/* How long the end waits for the engine to take what is still queued. */
#define WORK_DRAIN_MS 5000
/* How long the guest gets to end by itself once the workload has ended (its rootfs synced). */
#define WORK_END_GRACE_S 2.0
/* The status when the VM ended under a running workload (as a SIGKILL'ed container). */
#define WORK_LOST_STATUS (128 + SIGKILL)

struct vmd_work {
	json_t *req; /* the exec request: cmd, stdin, tty */
	int in_fd, out_fd, err_fd;
	bool tty;
	bool started, ended;
	uint32_t stream;
	bool stdin_open;
	struct hc_buf out_q, err_q;
	bool out_broken, err_broken;
	size_t unacked;
	int status;
	char argv0[128];
};

static bool fd_valid(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

int vmd_work_load(struct vmd *v, struct hc_error *err)
{
	json_t *req = json_object_get(v->create, "workload");
	struct vmd_work *w;
	struct termios saved;

	if (!req)
		return 0;
	if (!json_is_object(req) || !json_is_array(json_object_get(req, "cmd")))
		return hc_error_setk(err, -EINVAL, HC_EK_INTERNAL,
				     "create.json: workload must be an object with a cmd");
	for (int fd = VMD_WORK_FD; fd < VMD_WORK_FD + 3; fd++)
		if (!fd_valid(fd))
			return hc_error_setk(err, -EBADF, HC_EK_INTERNAL,
					     "the workload's stdio (fd %d) was not handed over",
					     fd);
	w = calloc(1, sizeof(*w));
	if (!w)
		return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	w->req = json_incref(req);
	w->in_fd = VMD_WORK_FD;
	w->out_fd = VMD_WORK_FD + 1;
	w->err_fd = VMD_WORK_FD + 2;
	w->tty = json_is_true(json_object_get(req, "tty"));
	w->out_q = (struct hc_buf)HC_BUF_INIT(0);
	w->err_q = (struct hc_buf)HC_BUF_INIT(0);
	w->status = WORK_LOST_STATUS;
	v->work = w;
	for (int fd = VMD_WORK_FD; fd < VMD_WORK_FD + 3; fd++) {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
	if (w->tty) {
		/* The host pty's slave is this process's controlling terminal (so the engine's
		 * resizes come as SIGWINCH), raw: the guest's pty does the line discipline. */
		if (setsid() < 0 || ioctl(w->in_fd, TIOCSCTTY, 0) < 0)
			return hc_error_errno(err, -errno, "take the container's terminal");
		if (hc_tty_raw(w->in_fd, &saved) < 0)
			return hc_error_errno(err, -errno, "raw mode on the container's terminal");
	}
	return 0;
}

void vmd_work_free(struct vmd *v)
{
	struct vmd_work *w = v->work;

	if (!w)
		return;
	json_decref(w->req);
	hc_buf_free(&w->out_q);
	hc_buf_free(&w->err_q);
	for (int fd = VMD_WORK_FD; fd < VMD_WORK_FD + 3; fd++)
		close(fd);
	free(w);
	v->work = NULL;
}

/* Signals that do not end a process by default: before the start they are dropped. */
static bool harmless(int sig)
{
	return sig == SIGWINCH || sig == SIGURG || sig == SIGCONT || sig == SIGCHLD;
}

void vmd_work_sigset(const struct vmd *v, bool booting, sigset_t *set)
{
	sigemptyset(set);
	if (!v->work) {
		sigaddset(set, SIGTERM);
		sigaddset(set, SIGINT);
		sigaddset(set, SIGHUP);
		return;
	}
	/* Every signal but those the kernel keeps (KILL, STOP), the supervisor's own (CHLD: its
	 * helpers; PIPE: a write to a gone reader) and glibc's (32, 33). A synchronous fault
	 * still kills the supervisor: the kernel unblocks those it raises itself. */
	for (int s = 1; s <= 64; s++) {
		if (s == SIGKILL || s == SIGSTOP || s == SIGCHLD || s == SIGPIPE ||
		    (s >= 32 && s < SIGRTMIN) || (booting && harmless(s)))
			continue;
		sigaddset(set, s);
	}
}

static void work_quit(struct vmd *v, int status)
{
	v->work->status = status;
	v->stop_grace = WORK_END_GRACE_S;
	v->quit = true;
}

bool vmd_work_signal(struct vmd *v, int sig)
{
	struct vmd_work *w = v->work;
	uint16_t rows, cols;

	if (!w)
		return false;
	if (w->ended)
		return true;
	/* KILL (only ever from the signal request: the kernel keeps the real one): the
	 * container ends at once, its VM without grace, but torn down (its network too). */
	if (sig == SIGKILL) {
		work_quit(v, 128 + SIGKILL);
		v->stop_grace = 0;
		return true;
	}
	if (!w->started) {
		/* The container's process has not run yet: a signal that would end a process
		 * ends the container (as runc's init waiting for start). */
		if (!harmless(sig)) {
			hc_info("VM %.12s: signal %d before start: ending", v->id, sig);
			work_quit(v, 128 + sig);
		}
		return true;
	}
	if (sig == SIGWINCH && w->tty) {
		if (hc_pty_get_size(w->in_fd, &rows, &cols) == 0 &&
		    hc_agent_resize(v->agent_h, w->stream, rows, cols) < 0)
			hc_debug("resize of the workload failed");
		return true;
	}
	if (hc_agent_signal(v->agent_h, w->stream, sig) < 0)
		hc_debug("signal %d to the workload failed", sig);
	return true;
}

int vmd_work_start(struct vmd *v, struct hc_error *err)
{
	struct vmd_work *w = v->work;
	struct hc_proto_exec ex = {0};
	json_t *req;
	uint16_t rows = 0, cols = 0;
	int r;

	if (w->started || w->ended)
		return hc_error_setk(err, -EALREADY, HC_EK_USAGE,
				     "start: the workload of VM %.12s has already run", v->id);
	req = json_deep_copy(w->req);
	if (!req)
		return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	json_object_set_new(req, "stdin", json_true());
	if (w->tty && hc_pty_get_size(w->in_fd, &rows, &cols) == 0) {
		json_object_set_new(req, "rows", json_integer(rows));
		json_object_set_new(req, "cols", json_integer(cols));
	}
	r = vmd_exec_build(v, req, &ex, err);
	json_decref(req);
	if (r < 0)
		return r;
	snprintf(w->argv0, sizeof(w->argv0), "%s", ex.argv[0]);
	r = hc_agent_exec(v->agent_h, &ex, HC_AGENT_EXEC_MANUAL_ACK, w, &w->stream, err);
	hc_lib_exec_clear(&ex);
	if (r < 0)
		return r;
	w->started = true;
	w->stdin_open = true;
	v->n_execs++;
	return 0;
}

void vmd_work_pollfds(struct vmd *v, struct pollfd *p)
{
	struct vmd_work *w = v->work;

	for (int i = 0; i < 3; i++)
		p[i] = (struct pollfd){.fd = -1};
	if (!w || !w->started)
		return;
	if (w->stdin_open && !w->ended && hc_agent_stdin_room(v->agent_h, w->stream) > 0)
		p[0] = (struct pollfd){.fd = w->in_fd, .events = POLLIN};
	if (w->out_q.len)
		p[1] = (struct pollfd){.fd = w->out_fd, .events = POLLOUT};
	if (w->err_q.len)
		p[2] = (struct pollfd){.fd = w->err_fd, .events = POLLOUT};
}

/* Writes what fd takes now; a reader that went away drops the rest (the workload runs on). */
static void drain(int fd, struct hc_buf *q, bool *broken)
{
	while (q->len > 0 && !*broken) {
		ssize_t n = write(fd, q->data, q->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			*broken = true;
			break;
		}
		hc_buf_consume(q, (size_t)n);
	}
	if (*broken)
		hc_buf_reset(q);
}

static void ack(struct vmd *v)
{
	struct vmd_work *w = v->work;

	if (!w->unacked || w->ended || w->out_q.len + w->err_q.len >= WORK_ACK_LOW)
		return;
	if (hc_agent_ack(v->agent_h, w->stream, w->unacked) < 0)
		hc_debug("ack of the workload's output failed");
	w->unacked = 0;
}

static void stdin_close(struct vmd *v)
{
	struct vmd_work *w = v->work;

	w->stdin_open = false;
	if (!w->ended && hc_agent_stdin_close(v->agent_h, w->stream) < 0)
		hc_debug("the workload's stdin is closed already");
}

void vmd_work_io(struct vmd *v, const struct pollfd *p)
{
	struct vmd_work *w = v->work;

	if (!w || !w->started)
		return;
	if (p[0].revents && w->stdin_open && !w->ended) {
		uint8_t buf[65536];
		size_t room = hc_agent_stdin_room(v->agent_h, w->stream);
		ssize_t n = read(w->in_fd, buf, room < sizeof(buf) ? room : sizeof(buf));

		if (n > 0) {
			if (hc_agent_stdin(v->agent_h, w->stream, buf, (size_t)n) != n)
				w->stdin_open = false; /* the guest closed it */
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			stdin_close(v); /* EOF; a pty whose master is gone reads EIO */
		}
	}
	if (p[1].revents)
		drain(w->out_fd, &w->out_q, &w->out_broken);
	if (p[2].revents)
		drain(w->err_fd, &w->err_q, &w->err_broken);
	ack(v);
}

void vmd_work_output(struct vmd *v, int fd, const uint8_t *p, size_t n)
{
	struct vmd_work *w = v->work;
	bool is_err = fd == 2 && !w->tty;
	struct hc_buf *q = is_err ? &w->err_q : &w->out_q;
	bool *broken = is_err ? &w->err_broken : &w->out_broken;

	w->unacked += n;
	if (!*broken && hc_buf_append(q, p, n) < 0)
		*broken = true;
	drain(is_err ? w->err_fd : w->out_fd, q, broken);
	ack(v);
}

void vmd_work_end(struct vmd *v, const struct hc_agent_end *end)
{
	struct vmd_work *w = v->work;
	int status = WORK_LOST_STATUS;

	w->ended = true;
	if (v->n_execs > 0)
		v->n_execs--;
	if (end->kind == HC_AGENT_END_EXIT) {
		status = end->exit.signal > 0 ? 128 + end->exit.signal : end->exit.code & 0xff;
	} else if (end->kind == HC_AGENT_END_ERROR) {
		/* It never ran: the reason on its stderr, as runc's create would say it. */
		json_t *j = vmd_stream_error(w->argv0, &end->error);
		const json_t *e = json_object_get(j, "error");
		const char *m = json_string_value(json_object_get(e, "message"));
		json_int_t code = json_integer_value(json_object_get(e, "exit_code"));
		char line[700];
		int len = snprintf(line, sizeof(line), "hotcell-runtime: %s\n",
				   m ? m : "exec failed");

		if (len > 0 &&
		    hc_buf_append(w->tty ? &w->out_q : &w->err_q, line,
				  (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1) < 0)
			hc_debug("cannot queue the workload's error");
		status = code > 0 ? (int)code : 125;
		json_decref(j);
	}
	hc_info("VM %.12s: the workload ended (status %d)", v->id, status);
	work_quit(v, status);
}

int vmd_work_finish(struct vmd *v)
{
	struct vmd_work *w = v->work;
	double deadline = hc_clock_ms() + WORK_DRAIN_MS;

	while (w->out_q.len + w->err_q.len > 0 && hc_clock_left_ms(deadline) > 0) {
		struct pollfd p[2] = {
			{.fd = w->out_q.len ? w->out_fd : -1, .events = POLLOUT},
			{.fd = w->err_q.len ? w->err_fd : -1, .events = POLLOUT},
		};

		if (poll(p, 2, hc_clock_left_ms(deadline)) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			drain(w->out_fd, &w->out_q, &w->out_broken);
		if (p[1].revents)
			drain(w->err_fd, &w->err_q, &w->err_broken);
	}
	return w->status;
}
