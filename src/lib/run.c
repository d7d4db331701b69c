/* SPDX-License-Identifier: MIT */
/*
 * hc_run: one command in a fresh micro-VM (DESIGN.md §1), end to end:
 *   image -> rootfs -> backend + accelerator -> spec -> VM -> hello -> exec -> events -> result
 *   -> teardown.
 * Everything after the VM starts is one poll() loop over the agent channel, the VM's death fd,
 * the caller's cancel fd, stdin and the deadlines (boot, command timeout): no sleeps. Every
 * path ends in hc_vm_free, which ends the VM from the host and removes its runtime directory.
 */
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/pty.h"
#include "lib/agent.h"
#include "lib/backend.h"
#include "lib/boot.h"
#include "lib/image.h"
#include "lib/paths.h"
#include "lib/pool.h"
#include "lib/spec.h"
#include "lib/template.h"
#include "proto/boot.h"
#include "proto/proto.h"
#include "vmm/accel.h"
#include "vmm/vmm.h"

#ifndef HC_BOOT_CONSOLE_FATAL /* until boot.h has it everywhere */
#define HC_BOOT_CONSOLE_PREFIX "hotcell-init: "
#define HC_BOOT_CONSOLE_FATAL "hotcell-init: fatal: "
#endif

#define DEFAULT_OUTPUT_LIMIT (1u << 20)
/* The guest enforces the timeout itself; the host steps in this long after, in case the guest
 * cannot report (hung, overloaded). */
#define HOST_TIMEOUT_GRACE_MS 3000
/* After a first cancel byte the command gets SIGTERM and this long to exit. */
#define CANCEL_GRACE_MS 2000
/* A forwarded SIGINT/SIGTERM/SIGHUP: the command's time to end (--stop-timeout's default),
 * and the window in which a second one ends the VM at once (podman's double Ctrl-C). */
#define STOP_TIMEOUT_MS 10000
#define STOP_AGAIN_MS 2000
/* When the channel breaks, how long to let the VMM finish dying so its state tells why. */
#define DEATH_GRACE_MS 1000
/* Outbound bytes queued for the guest before stdin is no longer read (backpressure). */
#define OUT_QUEUE_HIGH (256u * 1024)
/* The one command's stream (docs/protocol.md: hotcell run uses stream 1). */
#define RUN_STREAM 1u
/* Output is acknowledged (WINDOW) once this much has been delivered, and after each read. */
#define ACK_EVERY (64u * 1024)

HC_EXPORT void hc_run_opts_init(struct hc_run_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->stdin_fd = -1;
	opts->stdout_fd = -1;
	opts->stderr_fd = -1;
	opts->cancel_fd = -1;
	opts->tty_fd = -1;
	opts->winch_fd = -1;
	opts->signal_fd = -1;
}

HC_EXPORT void hc_run_result_free(struct hc_run_result *r)
{
	if (!r)
		return;
	free(r->image);
	free(r->stdout_data);
	free(r->stderr_data);
	free(r->result_json);
	free(r->result_error);
	memset(r, 0, sizeof(*r));
	r->exit_code = -1;
}

HC_EXPORT int hc_run_result_status(const struct hc_run_result *r)
{
	if (r->timed_out)
		return 124;
	if (r->signal > 0)
		return 128 + r->signal;
	if (r->exit_code >= 0 && r->exit_code <= 255)
		return r->exit_code;
	return 125;
}

/* ---- the run itself ---- */

enum phase { PH_BOOT, PH_RUNNING, PH_STOPPING, PH_DONE };

struct run {
	const struct hc_run_opts *o;
	struct hc_run_result *res;
	struct hc_vm *vm;
	int agent;
	enum phase phase;
	struct hc_buf in;  /* bytes from the guest, at most one frame + one read ahead */
	struct hc_buf out; /* bytes queued for the guest */
	size_t limit;
	struct hc_buf cap_out, cap_err;
	bool stdout_broken, stderr_broken;
	bool stdin_open;
	size_t stdin_inflight; /* stdin bytes sent and not yet acknowledged by the guest */
	size_t ack;	       /* output delivered and not yet acknowledged to the guest */
	/* The guest's window (HC_PROTO_WINDOW): output received and not covered by a WINDOW
	 * frame the channel has taken (sent acks are all the guest may have seen), and the one
	 * queued WINDOW not yet written whole: its end in the out stream and its amount. A new
	 * one is queued only once it is gone, so a guest that never reads cannot grow out. */
	size_t unacked;
	uint64_t out_written, ack_end;
	size_t ack_queued;
	bool started;
	bool got_exit;
	int cancels;
	double t_spawn, t_exec0, deadline, stop_deadline;
	/* The last forwarded SIGINT/SIGTERM/SIGHUP (0: none) and the command's deadline from
	 * it (--stop-timeout). */
	double t_stop_sig, sig_deadline;
	const char *argv0;
	unsigned death_spurious;
	/* The console, watched for a guest kernel panic (DESIGN.md §3: detected from the console
	 * log, whatever the VMM then does: reboot, hang, or exit). */
	int con_ino, con_fd;
	off_t con_off;
	char con_tail[64]; /* the last bytes seen, so a needle split across reads is found */
	bool panicked;
	double panic_deadline;
	/* The guest halted or powered off (`poweroff -f`, `halt -f`): without ACPI the VMM does
	 * not exit, it idles; only the kernel's last console line says so. */
	char halted[96];
	/* Warm start (lib/template.h): a cold boot that builds the template saves it at HELLO. */
	struct hc_lib_template *tpl;
	const struct hc_lib_boot *boot;
};

static int queue_frame(struct run *run, uint8_t type, const void *p, size_t n, struct hc_error *err)
{
	int r = hc_proto_frame_append(&run->out, type, RUN_STREAM, p, n);

	if (r < 0)
		return hc_error_errno(err, r, "queue %s frame", hc_proto_type_name(type));
	return 0;
}

/* Writes what the socket takes now; the rest waits for POLLOUT. */
static int flush_out(struct run *run, struct hc_error *err)
{
	while (run->out.len > 0) {
		ssize_t n =
			send(run->agent, run->out.data, run->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		hc_buf_consume(&run->out, (size_t)n);
		run->out_written += (size_t)n;
		if (run->ack_queued && run->out_written >= run->ack_end) {
			run->unacked -= run->ack_queued;
			run->ack_queued = 0;
		}
	}
	return 0;
}

/* Writes p to our stdout or stderr. With a deadline (--timeout), a reader that stops reading
 * cannot hold the run past it: each write waits in poll() and is at most PIPE_BUF, which a
 * writable pipe takes without blocking; at the deadline the rest is dropped (the stream counts
 * as broken) and the event loop ends the run as a host-side timeout. Without one, as podman,
 * the run waits for its reader. */
static void write_all(int fd, const uint8_t *p, size_t n, double deadline, bool *broken)
{
	while (n > 0 && !*broken) {
		size_t chunk = n;
		ssize_t w;

		if (deadline >= 0) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			int pr = poll(&pf, 1, hc_clock_left_ms(deadline));

			if (pr < 0 && errno == EINTR)
				continue;
			if (pr == 0) {
				hc_debug("output not taken before the deadline: dropped");
				*broken = true;
				return;
			}
			if (chunk > PIPE_BUF)
				chunk = PIPE_BUF;
		}
		w = write(fd, p, chunk);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pf = {.fd = fd, .events = POLLOUT};

				poll(&pf, 1, deadline >= 0 ? hc_clock_left_ms(deadline) : -1);
				continue;
			}
			/* EPIPE and friends: the reader is gone; keep draining the guest. */
			*broken = true;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void output(struct run *run, bool is_err, const uint8_t *p, size_t n)
{
	int fd = is_err ? run->o->stderr_fd : run->o->stdout_fd;
	struct hc_buf *b = is_err ? &run->cap_err : &run->cap_out;
	bool *trunc = is_err ? &run->res->stderr_truncated : &run->res->stdout_truncated;

	if (fd >= 0) {
		bool *broken = is_err ? &run->stderr_broken : &run->stdout_broken;
		bool was = *broken;

		write_all(fd, p, n, run->deadline, broken);
		/* Our reader went away (`hotcell run ... | head -1`): the command gets the SIGPIPE
		 * it would get in a local pipeline, instead of writing into the void until its
		 * timeout. */
		if (*broken && !was && hc_proto_signal_encode(&run->out, RUN_STREAM, SIGPIPE) < 0)
			hc_debug("cannot queue SIGPIPE for the command");
		return;
	}
	if (b->len + n > run->limit) {
		*trunc = true;
		n = run->limit > b->len ? run->limit - b->len : 0;
	}
	if (n && hc_buf_append(b, p, n) < 0)
		*trunc = true;
}

static int on_result(struct run *run, const struct hc_proto_frame *f, struct hc_error *err)
{
	struct hc_proto_result rr;
	json_error_t jerr;
	json_t *doc;
	int r;

	r = hc_proto_result_decode(f, &rr);
	if (r < 0)
		return hc_error_setk(err, r, HC_EK_VM, "protocol error: bad result frame");
	free(run->res->result_json);
	free(run->res->result_error);
	run->res->result_json = run->res->result_error = NULL;
	if (rr.status == HC_RESULT_TOO_LARGE) {
		r = asprintf(&run->res->result_error, "%s is larger than %u bytes",
			     HC_BOOT_RESULT_PATH, HC_PROTO_MAX_RESULT);
	} else if (rr.status != HC_RESULT_OK) {
		r = asprintf(&run->res->result_error, "%s is unreadable: %.*s", HC_BOOT_RESULT_PATH,
			     (int)(rr.len > 256 ? 256 : rr.len), (const char *)rr.data);
	} else if (!(doc = json_loadb((const char *)rr.data, rr.len, JSON_DECODE_ANY, &jerr))) {
		r = asprintf(&run->res->result_error, "%s is not valid JSON: %s (line %d)",
			     HC_BOOT_RESULT_PATH, jerr.text, jerr.line);
	} else {
		json_decref(doc);
		run->res->result_json = strndup((const char *)rr.data, rr.len);
		r = run->res->result_json ? 0 : -1;
	}
	return r < 0 ? hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory") : 0;
}

static int on_exec_error(struct run *run, const struct hc_proto_frame *f, struct hc_error *err)
{
	struct hc_proto_error pe;
	const char *m;
	int r;

	r = hc_proto_error_decode(f, &pe);
	if (r < 0)
		return hc_error_setk(err, r, HC_EK_VM, "protocol error: bad error frame");
	m = pe.message[0] ? pe.message : "no detail";
	r = hc_agent_exec_error(&pe, run->argv0, &run->res->exit_code, err);
	if (r < 0)
		return r;
	return hc_error_setk(err, -EPROTO, HC_EK_VM, "the guest could not start `%s`: %s",
			     run->argv0, m);
}

static int queue_ack(struct run *run, struct hc_error *err)
{
	int r;

	if (!run->ack || run->ack_queued)
		return 0;
	r = hc_proto_window_encode(&run->out, RUN_STREAM, (uint32_t)run->ack);
	if (r < 0)
		return hc_error_errno(err, r, "queue window frame");
	run->ack_end = run->out_written + run->out.len;
	run->ack_queued = run->ack;
	run->ack = 0;
	return 0;
}

/* Handles one frame from the guest. Returns 1 when the run is over (exit), 0 to go on. */
static int on_frame(struct run *run, const struct hc_proto_frame *f, struct hc_error *err)
{
	int r;

	if (run->phase == PH_BOOT) {
		struct hc_proto_hello h;

		if (f->type != HC_FRAME_HELLO)
			return hc_error_setk(err, -EPROTO, HC_EK_VM,
					     "protocol error: expected hello, got %s",
					     hc_proto_type_name(f->type));
		r = hc_proto_hello_decode(f, &h);
		if (r < 0)
			return hc_error_setk(err, r, HC_EK_VM, "protocol error: bad hello frame");
		if (h.version != HC_PROTO_VERSION)
			return hc_error_setk(err, -EPROTO, HC_EK_VM,
					     "the guest speaks protocol version %u, hotcell %u: "
					     "rebuild the initramfs",
					     h.version, HC_PROTO_VERSION);
		run->res->t_boot_ms = hc_clock_ms() - run->t_spawn;
		run->res->t_guest_boot_ms = (double)h.boot_ns / 1e6;
		hc_debug("guest hello: agent %s, booted in %.1f ms (guest clock %.1f ms)", h.agent,
			 run->res->t_boot_ms, (double)h.boot_ns / 1e6);
		return 2; /* caller sends EXEC */
	}
	if (f->stream != RUN_STREAM && f->type != HC_FRAME_ERROR && f->type != HC_FRAME_HELLO)
		return hc_error_setk(err, -EPROTO, HC_EK_VM,
				     "protocol error: %s frame on stream %u",
				     hc_proto_type_name(f->type), f->stream);
	switch (f->type) {
	case HC_FRAME_STDOUT:
	case HC_FRAME_STDERR:
		if (!run->started)
			return hc_error_setk(err, -EPROTO, HC_EK_VM,
					     "protocol error: output before started");
		/* A guest that ignores the window would make the host read without bound. */
		if (run->unacked + f->len > HC_PROTO_WINDOW)
			return hc_error_setk(err, -EPROTO, HC_EK_VM,
					     "protocol error: more output than the window allows");
		run->unacked += f->len;
		output(run, f->type == HC_FRAME_STDERR, f->payload, f->len);
		/* Delivered (or dropped past the limit): the guest may send more. */
		run->ack += f->len;
		if (run->ack >= ACK_EVERY)
			return queue_ack(run, err);
		return 0;
	case HC_FRAME_STARTED: {
		uint32_t pid;

		if (run->started || hc_proto_started_decode(f, &pid) < 0)
			return hc_error_setk(err, -EPROTO, HC_EK_VM,
					     "protocol error: bad or second started frame");
		run->started = true;
		hc_debug("command started: guest pid %u", pid);
		if (run->o->on_started)
			run->o->on_started(run->o->userdata, pid);
		return 0;
	}
	case HC_FRAME_WINDOW: {
		uint32_t n;

		if (hc_proto_window_decode(f, &n) < 0 || n > run->stdin_inflight)
			return hc_error_setk(err, -EBADMSG, HC_EK_VM,
					     "protocol error: bad window frame");
		run->stdin_inflight -= n;
		return 0;
	}
	case HC_FRAME_RESULT:
		if (!run->started)
			return hc_error_setk(err, -EPROTO, HC_EK_VM,
					     "protocol error: result before started");
		return on_result(run, f, err);
	case HC_FRAME_EXIT: {
		struct hc_proto_exit x;

		/* An EXIT ahead of STARTED is not the command's: a forged code must not be
		 * reported as the command's own. */
		if (!run->started)
			return hc_error_setk(err, -EPROTO, HC_EK_VM,
					     "protocol error: exit before started");
		r = hc_proto_exit_decode(f, &x);
		if (r < 0)
			return hc_error_setk(err, r, HC_EK_VM, "protocol error: bad exit frame");
		run->res->t_exec_ms = hc_clock_ms() - run->t_exec0;
		run->res->exit_code = x.signal > 0 || x.timed_out ? -1 : x.code;
		run->res->signal = x.signal > 0 ? x.signal : 0;
		run->res->timed_out = x.timed_out;
		run->got_exit = true;
		return 1;
	}
	case HC_FRAME_ERROR:
		r = on_exec_error(run, f, err);
		run->res->t_exec_ms = hc_clock_ms() - run->t_exec0;
		return r < 0 ? r : -EPROTO;
	case HC_FRAME_HELLO:
		/* A second hello: the guest rebooted (a panic with a VMM that resets). */
		return -ECONNRESET;
	case HC_FRAME_EXEC:
	case HC_FRAME_STDIN:
	case HC_FRAME_STDIN_CLOSE:
	case HC_FRAME_SIGNAL:
	case HC_FRAME_SHUTDOWN:
	case HC_FRAME_CANCEL:
	case HC_FRAME_FILE_PUT:
	case HC_FRAME_FILE_GET:
	case HC_FRAME_ENTRY:
	case HC_FRAME_FILE_DATA:
	case HC_FRAME_END:
	case HC_FRAME_DONE:
	case HC_FRAME_RESEED:
	default:
		return hc_error_setk(err, -EPROTO, HC_EK_VM, "protocol error: unexpected %s frame",
				     hc_proto_type_name(f->type));
	}
}

static int send_exec(struct run *run, const struct hc_proto_exec *ex, struct hc_error *err)
{
	/* The legacy single command reports /hotcell/result.json. */
	struct hc_proto_exec e = *ex;
	int r;

	e.flags |= HC_EXEC_F_RESULT;
	r = hc_proto_exec_encode(&run->out, RUN_STREAM, &e);
	if (r < 0)
		return hc_error_errno(err, r, "encode the exec request");
	run->t_exec0 = hc_clock_ms();
	run->phase = PH_RUNNING;
	/* No timeout: no host deadline either (hc_clock_left_ms: negative is none). */
	run->deadline =
		ex->timeout_ms ? run->t_exec0 + (double)ex->timeout_ms + HOST_TIMEOUT_GRACE_MS : -1;
	run->stdin_open = (ex->flags & HC_EXEC_F_STDIN) != 0;
	return 0;
}

/* Reads what the channel has and handles every whole frame. 1: the command ended; 0: go on. */
static int read_agent(struct run *run, const struct hc_proto_exec *ex, struct hc_error *err)
{
	size_t off = 0;
	ssize_t n;
	int r = 0;

	r = hc_buf_reserve(&run->in, 65536);
	if (r < 0)
		return hc_error_setk(err, -EPROTO, HC_EK_VM, "protocol error: frame too large");
	n = recv(run->agent, run->in.data + run->in.len, run->in.cap - run->in.len - 1,
		 MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return 0;
		if (errno == ECONNRESET)
			return -EPIPE;
		return hc_error_errno(err, -errno, "agent channel");
	}
	if (n == 0)
		return -EPIPE;
	run->in.len += (size_t)n;
	run->in.data[run->in.len] = 0;
	for (;;) {
		struct hc_proto_frame f;
		size_t used;

		r = hc_proto_frame_parse((const uint8_t *)run->in.data + off, run->in.len - off, &f,
					 &used);
		if (r == 0)
			break;
		if (r < 0) {
			r = hc_error_setk(err, r, HC_EK_VM,
					  "protocol error: malformed frame from "
					  "the guest");
			break;
		}
		off += used;
		r = on_frame(run, &f, err);
		if (r == 2) {
			/* Booted, the command not yet sent: the moment a template is taken. */
			if (run->tpl && run->tpl->state == HC_TPL_BUILD)
				hc_lib_template_save(run->tpl, run->vm, run->boot, run->agent,
						     &run->res->t_template_ms);
			r = send_exec(run, ex, err);
			if (r < 0)
				break;
			continue;
		}
		if (r != 0)
			break;
	}
	hc_buf_consume(&run->in, off);
	/* Coalesced: one WINDOW for what this read delivered. */
	if (r == 0)
		r = queue_ack(run, err);
	return r;
}

static void read_stdin(struct run *run, struct hc_error *err)
{
	uint8_t buf[HC_PROTO_MAX_DATA];
	ssize_t n = read(run->o->stdin_fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0) {
		if (queue_frame(run, HC_FRAME_STDIN, buf, (size_t)n, err) < 0)
			run->stdin_open = false;
		run->stdin_inflight += (size_t)n;
		return;
	}
	/* EOF or an error: the command sees end of input either way. */
	run->stdin_open = false;
	if (queue_frame(run, HC_FRAME_STDIN_CLOSE, NULL, 0, err) < 0)
		hc_debug("stdin close: %s", err->message);
}

/* The user's terminal changed size: the guest's pty follows (its foreground job gets
 * SIGWINCH from the guest kernel). */
static void resize(struct run *run)
{
	char b[64];
	uint16_t rows, cols;

	while (read(run->o->winch_fd, b, sizeof(b)) > 0)
		;
	if (run->o->tty_fd < 0 || hc_pty_get_size(run->o->tty_fd, &rows, &cols) < 0)
		return;
	if (hc_proto_resize_encode(&run->out, RUN_STREAM, rows, cols) < 0)
		hc_debug("cannot queue the resize frame");
}

#define PANIC_NEEDLE "Kernel panic - not syncing"
/* kernel/reboot.c: kernel_halt() and kernel_power_off() print these (pr_emerg, also under
 * "quiet"), then the CPUs idle forever on a machine without ACPI power-off. */
static const char *const halt_needles[] = {"reboot: System halted", "reboot: Power down"};
#define PANIC_END "---[ end Kernel panic"
/* After the panic line, how long the kernel gets to write its trace before we report. */
#define PANIC_TRACE_MS 500

/* Finds a console line containing needle in the last 256 KiB of the console log (the first
 * such line when first, else the last); fills line. */
static bool console_find(struct hc_vm *vm, const char *needle, bool first, char *line, size_t n)
{
	_cleanup_free_ char *data = NULL;
	_cleanup_close_ int fd = -1;
	size_t tail = 256 * 1024;
	const char *p, *hit = NULL;
	off_t size;
	ssize_t len;

	if (!vm || !vm->console_log[0])
		return false;
	fd = open(vm->console_log, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (size = lseek(fd, 0, SEEK_END)) <= 0)
		return false;
	data = malloc(tail + 1);
	if (!data)
		return false;
	len = pread(fd, data, tail, size > (off_t)tail ? size - (off_t)tail : 0);
	if (len <= 0)
		return false;
	data[len] = 0;
	/* NULs from the guest would end the search early: make them blanks. */
	for (ssize_t i = 0; i < len; i++)
		if (!data[i])
			data[i] = ' ';
	for (p = data; (p = strstr(p, needle)); p++) {
		hit = p;
		if (first)
			break;
	}
	if (!hit)
		return false;
	if (line && n)
		snprintf(line, n, "%.*s", (int)strcspn(hit, "\r\n"), hit);
	return true;
}

static bool console_panic(struct hc_vm *vm, char *line, size_t n)
{
	return console_find(vm, PANIC_NEEDLE, true, line, n);
}

static void console_watch_start(struct run *run)
{
	run->con_ino = run->con_fd = -1;
	if (!run->vm->console_log[0])
		return;
	/* Created when the VMM has not yet (libkrun opens it as the guest starts): the watch,
	 * the panic and halt detection and the cap (hc_vm_console_trim) hold from the start. */
	run->con_fd = open(run->vm->console_log, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
	if (run->con_fd < 0)
		return;
	run->con_ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (run->con_ino >= 0 &&
	    inotify_add_watch(run->con_ino, run->vm->console_log, IN_MODIFY) < 0)
		hc_closep(&run->con_ino);
	if (run->con_ino < 0)
		hc_closep(&run->con_fd);
}

static void console_watch_stop(struct run *run)
{
	hc_closep(&run->con_ino);
	hc_closep(&run->con_fd);
}

/* Reads what the console gained since last time and looks for a panic. */
static void console_scan(struct run *run)
{
	char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	char buf[65536 + sizeof(run->con_tail)];

	while (read(run->con_ino, evbuf, sizeof(evbuf)) > 0)
		;
	hc_vm_console_trim(run->vm);
	for (;;) {
		size_t keep = strlen(run->con_tail);
		ssize_t n;

		memcpy(buf, run->con_tail, keep);
		n = pread(run->con_fd, buf + keep, sizeof(buf) - keep - 1, run->con_off);
		if (n <= 0)
			return;
		run->con_off += n;
		for (ssize_t i = 0; i < n; i++)
			if (!buf[keep + (size_t)i])
				buf[keep + (size_t)i] = ' ';
		buf[keep + (size_t)n] = 0;
		if (!run->panicked && strstr(buf, PANIC_NEEDLE)) {
			run->panicked = true;
			run->panic_deadline = hc_clock_ms() + PANIC_TRACE_MS;
		}
		if (run->panicked && strstr(buf, PANIC_END))
			run->panic_deadline = hc_clock_ms();
		for (size_t i = 0;
		     !run->halted[0] && !run->got_exit && i < HC_ARRAY_SIZE(halt_needles); i++)
			if (strstr(buf, halt_needles[i]))
				snprintf(run->halted, sizeof(run->halted), "%s", halt_needles[i]);
		size_t total = keep + (size_t)n, t = sizeof(run->con_tail) - 1;
		snprintf(run->con_tail, sizeof(run->con_tail), "%s",
			 buf + (total > t ? total - t : 0));
	}
}

static int panic_failure(struct run *run, struct hc_error *err)
{
	char line[300];

	if (!console_panic(run->vm, line, sizeof(line)))
		snprintf(line, sizeof(line), "%s", PANIC_NEEDLE);
	hc_error_setk(err, -EIO, HC_EK_VM, "guest kernel panic %s: %s",
		      run->phase == PH_BOOT ? "while booting" : "before the command ended", line);
	hc_vm_error_add_console(run->vm, err);
	return err->code;
}

/* The VM died (or the channel broke) before the command ended: say why, as precisely as the
 * console and the backend allow. A kernel panic and hotcell-init's fatal line (docs/protocol.md)
 * say more than "QEMU exited". */
static int vm_failure(struct run *run, int code, struct hc_error *err)
{
	const char *when = run->phase == PH_BOOT ? "while booting" : "before the command ended";
	struct hc_error e = {0};
	char line[300];
	int r;

	if (run->vm && run->vm->death_fd >= 0) {
		struct pollfd p = {.fd = run->vm->death_fd, .events = POLLIN};

		poll(&p, 1, DEATH_GRACE_MS);
	}
	r = run->vm ? hc_vm_check(run->vm, &e) : 0;
	if (console_panic(run->vm, line, sizeof(line)))
		hc_error_setk(err, -EIO, HC_EK_VM, "guest kernel panic %s: %s", when, line);
	else if (console_find(run->vm, HC_BOOT_CONSOLE_FATAL, false, line, sizeof(line)))
		hc_error_setk(err, -EIO, HC_EK_VM, "the guest failed %s: %s", when,
			      line + strlen(HC_BOOT_CONSOLE_PREFIX));
	else if (r < 0)
		hc_error_setk(err, r, HC_EK_VM, "the VM failed %s: %s", when, e.message);
	else if (code == -EPIPE)
		hc_error_setk(err, -EPIPE, HC_EK_VM, "the agent channel closed %s", when);
	else if (code == -ECONNRESET)
		hc_error_setk(err, -EIO, HC_EK_VM, "the guest rebooted %s", when);
	else
		hc_error_setk(err, code, HC_EK_VM, "the VM failed %s: %s", when, hc_strerror(code));
	hc_vm_error_add_console(run->vm, err);
	return err->code;
}

/* The guest halted (console_scan saw the kernel's last words): the VM ended, as a reboot does
 * (-ESHUTDOWN, exit 125), at once rather than after the whole timeout. */
static int halt_failure(struct run *run, struct hc_error *err)
{
	hc_error_setk(err, -ESHUTDOWN, HC_EK_VM, "the VM ended %s: the guest %s (%s)",
		      run->phase == PH_BOOT ? "while booting" : "before the command ended",
		      strstr(run->halted, "Power") ? "powered off" : "halted", run->halted);
	hc_vm_error_add_console(run->vm, err);
	return err->code;
}

/* A forwarded stop signal was not enough: the VM is ended, the command reported as killed
 * (exit 137), as podman does after --stop-timeout or a second Ctrl-C. */
static int stop_kill(struct run *run, const char *why)
{
	hc_debug("the command %s: ending the VM", why);
	run->res->signal = SIGKILL;
	run->res->exit_code = -1;
	run->res->t_exec_ms = hc_clock_ms() - run->t_exec0;
	return 1;
}

static int event_loop(struct run *run, const struct hc_proto_exec *ex, struct hc_error *err)
{
	enum { P_AGENT, P_LISTEN, P_DEATH, P_CANCEL, P_STDIN, P_CONSOLE, P_WINCH, P_SIG, P_N };
	const struct hc_run_opts *o = run->o;
	int r;

	for (;;) {
		struct pollfd p[P_N];
		double deadline = run->phase == PH_STOPPING ? run->stop_deadline : run->deadline;
		int timeout;

		if (run->panicked && run->panic_deadline < deadline)
			deadline = run->panic_deadline;
		if (run->sig_deadline > 0 && (deadline < 0 || run->sig_deadline < deadline))
			deadline = run->sig_deadline;
		for (int i = 0; i < P_N; i++)
			p[i] = (struct pollfd){.fd = -1};
		if (run->agent >= 0)
			p[P_AGENT] = (struct pollfd){
				.fd = run->agent, .events = POLLIN | (run->out.len ? POLLOUT : 0)};
		else
			p[P_LISTEN] =
				(struct pollfd){.fd = run->vm->agent_listen_fd, .events = POLLIN};
		if (run->vm->death_fd >= 0 && run->death_spurious < 1000)
			p[P_DEATH] = (struct pollfd){.fd = run->vm->death_fd, .events = POLLIN};
		if (o->cancel_fd >= 0)
			p[P_CANCEL] = (struct pollfd){.fd = o->cancel_fd, .events = POLLIN};
		/* Stdin waits while the guest has a window's worth unacknowledged. */
		if (run->phase == PH_RUNNING && run->stdin_open && run->out.len < OUT_QUEUE_HIGH &&
		    run->stdin_inflight + HC_PROTO_MAX_DATA <= HC_PROTO_WINDOW)
			p[P_STDIN] = (struct pollfd){.fd = o->stdin_fd, .events = POLLIN};
		if (run->con_ino >= 0)
			p[P_CONSOLE] = (struct pollfd){.fd = run->con_ino, .events = POLLIN};
		if (o->signal_fd >= 0)
			p[P_SIG] = (struct pollfd){.fd = o->signal_fd, .events = POLLIN};
		if (o->tty && o->winch_fd >= 0 && run->phase == PH_RUNNING)
			p[P_WINCH] = (struct pollfd){.fd = o->winch_fd, .events = POLLIN};

		timeout = hc_clock_left_ms(deadline);
		if (timeout == 0) {
			/* A panicking guest may hang, reboot or exit depending on the VMM: the
			 * console says it first. */
			if (run->panicked || console_panic(run->vm, NULL, 0))
				return panic_failure(run, err);
			if (run->phase == PH_BOOT) {
				hc_error_setk(
					err, -ETIMEDOUT, HC_EK_VM,
					"the guest did not answer within the boot timeout (%.0f s)",
					(run->deadline - run->t_spawn) / 1000.0);
				hc_vm_error_add_console(run->vm, err);
				return err->code;
			}
			if (run->phase == PH_STOPPING)
				return -ECANCELED;
			if (run->sig_deadline > 0 && hc_clock_left_ms(run->sig_deadline) == 0)
				return stop_kill(run, "did not end within --stop-timeout");
			/* The guest did not report its own timeout: it is stuck. End it from here.
			 */
			run->res->timed_out = true;
			run->res->signal = SIGKILL;
			run->res->exit_code = -1;
			run->res->t_exec_ms = hc_clock_ms() - run->t_exec0;
			hc_debug("host-side timeout: the guest did not report");
			return 1;
		}
		r = poll(p, P_N, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return hc_error_errno(err, -errno, "poll");
		}

		if (p[P_CONSOLE].revents)
			console_scan(run);
		if (p[P_CANCEL].revents) {
			char b[16];
			ssize_t n = read(o->cancel_fd, b, sizeof(b));

			if (n > 0)
				run->cancels += (int)n;
			else if (n == 0)
				run->cancels += 2; /* the writer is gone: nobody will wait for us */
			if (run->cancels >= 2 || run->phase != PH_RUNNING)
				return -ECANCELED;
			if (run->phase == PH_RUNNING) {
				/* Orderly: the command gets SIGTERM and a moment to end. */
				if (hc_proto_signal_encode(&run->out, RUN_STREAM, SIGTERM) < 0)
					hc_debug("cannot queue SIGTERM for the command");
				run->phase = PH_STOPPING;
				run->stop_deadline = hc_clock_ms() + CANCEL_GRACE_MS;
			}
		}
		if (p[P_LISTEN].revents) {
			int fd = accept4(run->vm->agent_listen_fd, NULL, NULL,
					 SOCK_CLOEXEC | SOCK_NONBLOCK);

			if (fd >= 0)
				run->agent = fd;
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				return hc_error_errno(err, -errno, "accept the agent channel");
		}
		if (p[P_AGENT].revents & (POLLIN | POLLHUP | POLLERR)) {
			r = read_agent(run, ex, err);
			if (r == 1 || (r == -ECANCELED))
				return r;
			if (r == -EPIPE && run->phase == PH_STOPPING)
				return -ECANCELED;
			if (r == -EPIPE || r == -ECONNRESET)
				return vm_failure(run, r, err);
			if (r < 0)
				return r;
		}
		if (run->agent >= 0 && run->out.len) {
			r = flush_out(run, err);
			/* The last WINDOW went out: what was delivered since follows at once (the
			 * guest may be waiting for it, with nothing more to send). */
			if (r == 0 && run->ack && !run->ack_queued && queue_ack(run, err) == 0)
				r = flush_out(run, err);
			if (r < 0 && run->phase != PH_STOPPING)
				return vm_failure(run, -EPIPE, err);
		}
		if (p[P_STDIN].revents)
			read_stdin(run, err);
		if (p[P_WINCH].revents)
			resize(run);
		if (p[P_SIG].revents) {
			uint8_t b[16];
			ssize_t n = read(o->signal_fd, b, sizeof(b));

			/* Before the command runs there is nobody to forward to: cancel. */
			if (n > 0 && run->phase != PH_RUNNING && run->phase != PH_STOPPING)
				return -ECANCELED;
			for (ssize_t i = 0; i < n; i++) {
				if (b[i] == SIGINT || b[i] == SIGTERM || b[i] == SIGHUP) {
					double now = hc_clock_ms();

					if (run->t_stop_sig > 0 &&
					    now - run->t_stop_sig < STOP_AGAIN_MS)
						return stop_kill(run, "got a second stop signal");
					run->t_stop_sig = now;
					run->sig_deadline =
						now + (o->stop_timeout_s > 0
							       ? o->stop_timeout_s * 1000.0
							       : STOP_TIMEOUT_MS);
				}
				if (hc_proto_signal_encode(&run->out, RUN_STREAM, b[i]) < 0)
					hc_debug("signal %u not forwarded", b[i]);
			}
		}
		if (p[P_DEATH].revents) {
			struct hc_error e = {0};

			r = hc_vm_check(run->vm, &e);
			if (r < 0) {
				if (run->phase == PH_STOPPING)
					return -ECANCELED;
				return vm_failure(run, r, err);
			}
			run->death_spurious++;
		}
		/* Checked last, so output that came with the halt in this round is kept. */
		if (run->halted[0] && !run->panicked && run->phase != PH_STOPPING)
			return halt_failure(run, err);
	}
}

/* Restores the image's template (lib/template.h) and sends the command: 0 when the run goes
 * on warm, 1 when it must boot cold instead (why is a debug line), -ECANCELED. */
static int warm_start(struct run *run, struct hc_lib_boot *boot, struct hc_lib_template *tpl,
		      const struct hc_proto_exec *ex, struct hc_error *err)
{
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	double ms = 0;
	int r, fd = -1;

	run->t_spawn = hc_clock_ms();
	r = hc_lib_template_restore(tpl, run->o, &boot->net, &vm, &fd, &ms, &e);
	if (r == -ECANCELED) {
		*err = e;
		return r;
	}
	if (r < 0)
		return 1;
	boot->vm = run->vm = vm;
	run->res->warm = true;
	run->res->t_restore_ms = ms;
	run->res->jailed = vm->jailed;
	console_watch_start(run);
	run->agent = fd;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	hc_debug("warm start: restored in %.1f ms", ms);
	return send_exec(run, ex, err);
}

/* A VM of the template's key from the server's warm pool (lib/pool.h), re-identified, and the
 * command sent: 0 when the run goes on pooled, 1 when there is none (the caller restores). */
static int pool_start(struct run *run, struct hc_lib_boot *boot, struct hc_lib_template *tpl,
		      const struct hc_proto_exec *ex, struct hc_error *err)
{
	struct hc_lib_snapshot *snap = NULL;
	struct hc_vm *vm = NULL;
	double ms = 0;
	int fd = -1;

	run->t_spawn = hc_clock_ms();
	if (!hc_lib_pool_take(run->o->warm_pool, tpl, run->o, &vm, &fd, &snap, &ms))
		return 1;
	/* The VM's spec points into its own open snapshot: released after the VM, as the
	 * template's (hc_lib_template_release). */
	hc_lib_snapshot_close(tpl->snap);
	tpl->snap = snap;
	boot->vm = run->vm = vm;
	run->res->warm = true;
	run->res->pooled = true;
	run->res->t_take_ms = ms;
	run->res->jailed = vm->jailed;
	console_watch_start(run);
	run->agent = fd;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	hc_debug("warm start: taken from the pool in %.1f ms", ms);
	return send_exec(run, ex, err);
}

HC_EXPORT int hc_run(struct hc_store *store, const struct hc_run_opts *o, struct hc_run_result *res,
		     struct hc_error *err)
{
	struct hc_lib_template tpl = HC_LIB_TEMPLATE_INIT;
	const char *refusal = NULL;
	struct hc_lib_boot boot = HC_LIB_BOOT_INIT;
	struct hc_proto_exec ex = {0};
	struct run run = {
		.o = o,
		.res = res,
		.agent = -1,
		.con_ino = -1,
		.con_fd = -1,
		.in = HC_BUF_INIT(HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD + 65536 + 1),
		.out = HC_BUF_INIT(0),
		.cap_out = HC_BUF_INIT(0),
		.cap_err = HC_BUF_INIT(0),
	};
	double t0 = hc_clock_ms(), t;
	int r;

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	if (!o)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "no run options");
	if (!!o->image == !!o->rootfs_dir)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "give either an image or a rootfs directory");
	if (o->image && !store)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "running an image needs a store");
	if (o->interactive && o->stdin_fd < 0)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "interactive without a stdin fd");
	run.limit = o->output_limit ? o->output_limit : DEFAULT_OUTPUT_LIMIT;

	refusal = hc_lib_template_refusal(o);
	boot.snapshot_modes = refusal == NULL;
	r = hc_lib_boot_prepare(store, o, &boot, err);
	if (boot.ops) {
		snprintf(res->backend, sizeof(res->backend), "%s", boot.ops->name);
		snprintf(res->accel, sizeof(res->accel), "%s", hc_accel_name(boot.spec.accel));
	}
	if (r < 0)
		goto out;
	res->t_rootfs_ms = boot.t_rootfs_ms;
	if (boot.image.name[0]) {
		res->image = strdup(boot.image.name);
		if (!res->image) {
			r = hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
			goto out;
		}
	}
	snprintf(res->image_digest, sizeof(res->image_digest), "%s", boot.image.digest);

	r = hc_lib_exec_build(o, o->rootfs_dir ? NULL : &boot.image.defaults, &ex, err);
	if (r < 0)
		goto out;
	run.argv0 = ex.argv[0];

	if (refusal)
		hc_debug("template: cold boot: %s", refusal);
	else
		hc_lib_template_lookup(store, &boot, &tpl);
	run.tpl = &tpl;
	run.boot = &boot;
	if (tpl.state == HC_TPL_WARM && o->warm_pool) {
		hc_lib_pool_want(o->warm_pool, store, &tpl, boot.image.digest, o);
		r = pool_start(&run, &boot, &tpl, &ex, err);
		if (r <= 0)
			goto warm;
	}
	if (tpl.state == HC_TPL_WARM) {
		r = warm_start(&run, &boot, &tpl, &ex, err);
		if (r <= 0)
			goto warm;
	}

	run.t_spawn = hc_clock_ms();
	run.deadline = run.t_spawn + boot.spec.boot_timeout_ms;
	hc_debug("ready to start the VM %.1f ms after the run began", run.t_spawn - t0);
	r = hc_lib_boot_start(&boot, err);
	res->t_vm_start_ms = hc_clock_ms() - run.t_spawn;
	run.vm = boot.vm;
	res->jailed = run.vm && run.vm->jailed;
	if (r < 0)
		goto out;
	console_watch_start(&run);
	if (run.vm->agent_fd >= 0) {
		run.agent = run.vm->agent_fd;
		run.vm->agent_fd = -1; /* ours now */
		fcntl(run.agent, F_SETFL, fcntl(run.agent, F_GETFL) | O_NONBLOCK);
	}
	r = 0;
warm:
	if (r == 0)
		r = event_loop(&run, &ex, err);
	if (r == 1)
		r = run.cancels ? -ECANCELED : 0;

out:
	/* Cancelled in whatever phase, however the phase worded it: one message (the caller,
	 * which knows the signal, may say more). */
	if (r == -ECANCELED)
		hc_error_setk(err, r, "cancelled", "interrupted");
	t = hc_clock_ms();
	if (run.vm) {
		/* The host ends the VM; a shutdown frame first lets a healthy guest know. */
		if (run.agent >= 0 && r != -ECANCELED) {
			struct hc_error ignore = {0};

			/* On stream 0: SHUTDOWN is about the VM, not the command's stream. */
			if (hc_proto_frame_append(&run.out, HC_FRAME_SHUTDOWN, HC_PROTO_STREAM_VM,
						  NULL, 0) == 0 &&
			    flush_out(&run, &ignore) < 0)
				hc_debug("shutdown frame not sent: the channel is gone");
		}
		run.vm = NULL;
	}
	/* The SHUTDOWN frame, if any, went out above, behind what was queued. */
	hc_lib_boot_teardown(&boot, -1, true);
	if (res->pooled)
		hc_lib_pool_done(o->warm_pool);
	/* A template this run built: the pool keeps VMs of it from now on. */
	if (o->warm_pool && tpl.state == HC_TPL_BUILD && res->t_template_ms > 0)
		hc_lib_pool_want(o->warm_pool, store, &tpl, boot.image.digest, o);
	/* After the VM: a restored VM's spec points into the open template. */
	hc_lib_template_release(&tpl);
	if (run.agent >= 0)
		close(run.agent);
	console_watch_stop(&run);
	res->t_teardown_ms = hc_clock_ms() - t;
	res->t_total_ms = hc_clock_ms() - t0;

	res->stdout_data = hc_buf_steal(&run.cap_out, &res->stdout_len);
	res->stderr_data = hc_buf_steal(&run.cap_err, &res->stderr_len);
	hc_buf_free(&run.in);
	hc_buf_free(&run.out);
	hc_lib_exec_clear(&ex);
	return r;
}
