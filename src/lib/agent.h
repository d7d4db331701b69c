/* SPDX-License-Identifier: MIT */
/*
 * The host end of one agent channel (docs/protocol.md, protocol v2): many execs and file
 * transfers at once over one connection to hotcell-init, for one process that serves many
 * clients (the per-VM supervisor, src/vmd).
 *
 * Non-blocking and poll-driven: the caller polls hc_agent_fd() for hc_agent_poll_events(),
 * calls hc_agent_dispatch() with what poll() said, and hears of everything through the
 * callbacks of struct hc_agent_events, called from inside hc_agent_dispatch() (and from
 * hc_agent_put, which may start sending at once). Nothing here blocks on the channel;
 * file transfers read and write local files directly.
 *
 * Streams: every exec, put and get is a stream with an id the agent picks (1..2^31-1, never
 * one in use). Each stream gets exactly one `end` callback, its last: the id may be reused
 * after it, and its sctx is not used again.
 *
 * Flow control (docs/protocol.md, "Flow control"): per stream at most HC_PROTO_WINDOW bytes of
 * data travel unacknowledged each way.
 *  - stdin: hc_agent_stdin() takes only what the window allows and returns how much; when it
 *    took less than offered, `writable` is called once the guest has acknowledged more.
 *  - output: by default, data counts as consumed when `output` returns. With
 *    HC_AGENT_EXEC_MANUAL_ACK, the caller acknowledges with hc_agent_ack() once it has really
 *    delivered the bytes (written them to its client); until then the guest sends at most a
 *    window's worth, so a slow client of one stream never grows memory nor stalls the others.
 *  - put/get: handled inside, against the local files.
 *
 * Callbacks may call any hc_agent_* function except hc_agent_free(). Errors follow
 * core/error.h: -errno, detail in a caller-owned struct hc_error.
 */
#pragma once

#include <sys/types.h>

#include "core/error.h"
#include "proto/proto.h"

struct hc_agent;

enum hc_agent_end_kind {
	HC_AGENT_END_EXIT,     /* the command ended: end->exit */
	HC_AGENT_END_ERROR,    /* the request failed: end->error (the guest's ERROR, or a local
				* failure of a transfer: reason HC_ERR_*, message names the path) */
	HC_AGENT_END_DONE,     /* a put or a get completed: everything is in place */
	HC_AGENT_END_DETACHED, /* a DETACH exec started (after `started`): it runs on alone */
	HC_AGENT_END_LOST,     /* the channel failed or closed before the stream ended */
};

struct hc_agent_end {
	enum hc_agent_end_kind kind;
	bool cancelled;		     /* hc_agent_cancel() was called on the stream */
	struct hc_proto_exit exit;   /* HC_AGENT_END_EXIT */
	struct hc_proto_error error; /* HC_AGENT_END_ERROR and _LOST: reason and message */
};

/* Every member may be NULL. ctx is hc_agent_new's, sctx the stream's (exec/put/get). */
struct hc_agent_events {
	/* The guest's HELLO (version already checked): the first one, or the one on a channel
	 * given to hc_agent_replace_fd(). Requests may be made before it; they wait. */
	void (*hello)(void *ctx, const struct hc_proto_hello *h);
	/* The guest applied hc_agent_reseed() (DONE on stream 0). */
	void (*reseeded)(void *ctx);
	/* The guest failed a stream-0 request (a RESEED) or reports a protocol error. */
	void (*vm_error)(void *ctx, const struct hc_proto_error *e);
	/* An exec's command runs, as guest pid. */
	void (*started)(void *ctx, void *sctx, uint32_t id, uint32_t pid);
	/* An exec's output: fd 1 stdout, 2 stderr; p is only valid during the call. */
	void (*output)(void *ctx, void *sctx, uint32_t id, int fd, const uint8_t *p, size_t n);
	/* An exec's RESULT (flag HC_EXEC_F_RESULT), before its end. */
	void (*result)(void *ctx, void *sctx, uint32_t id, const struct hc_proto_result *r);
	/* The stdin window has room again after hc_agent_stdin() took less than offered. */
	void (*writable)(void *ctx, void *sctx, uint32_t id);
	/* A transfer's entry: sent (put) or placed (get). Progress only. */
	void (*entry)(void *ctx, void *sctx, uint32_t id, const struct hc_proto_entry *e);
	/* The stream's last event. */
	void (*end)(void *ctx, void *sctx, uint32_t id, const struct hc_agent_end *end);
};

/* Takes fd (a connected channel; made non-blocking and owned from here on, also on failure).
 * The agent waits for the guest's HELLO before sending anything. */
int hc_agent_new(int fd, const struct hc_agent_events *ev, void *ctx, struct hc_agent **ret,
		 struct hc_error *err) _must_check_;
/* Closes the channel and forgets every stream without calling back; a get in progress
 * removes what it wrote. NULL is fine. */
void hc_agent_free(struct hc_agent *a);

/* The fd to poll, and the events to poll it for (POLLIN, plus POLLOUT while frames wait). */
int hc_agent_fd(const struct hc_agent *a);
short hc_agent_poll_events(const struct hc_agent *a);
/* Reads and writes what the channel allows now, calls back, and sends what transfers and
 * windows allow. revents is what poll() returned for the fd (0 is fine: just do work).
 * Returns 0, or -errno when the channel is finished (closed: -EPIPE; a protocol violation
 * by the guest: -EPROTO; a second HELLO, i.e. the guest rebooted: -ECONNRESET): every live
 * stream has then been ended with HC_AGENT_END_LOST, and only hc_agent_free() and
 * hc_agent_replace_fd() remain useful. */
int hc_agent_dispatch(struct hc_agent *a, short revents, struct hc_error *err) _must_check_;
/* A new connection to the same guest (vsock after a restore: docs/protocol.md, "Channel
 * end"): the old fd is closed, the new one waits for its HELLO; frames the old connection
 * had not begun to send go out on the new one. Streams live on. */
int hc_agent_replace_fd(struct hc_agent *a, int fd, struct hc_error *err) _must_check_;
/* HELLO received and the channel still up. */
bool hc_agent_ready(const struct hc_agent *a);
/* The caller has already read and checked the guest's HELLO on this fd (a restored guest:
 * hc_lib_snapshot_restore consumed it and applied RESEED before handing the fd over):
 * requests go out at once, and a HELLO from now on means the guest rebooted. */
void hc_agent_set_ready(struct hc_agent *a);
/* Bytes queued for the guest (0 once everything is written, e.g. after a SHUTDOWN). */
size_t hc_agent_pending(const struct hc_agent *a);
/* Live streams. */
size_t hc_agent_streams(const struct hc_agent *a);

/* ---- exec ---- */

#define HC_AGENT_EXEC_MANUAL_ACK (1u << 0) /* output is acknowledged by hc_agent_ack() */

/* Starts e (its flags say STDIN / DETACH / RESULT / CREATE_WORKDIR) on a new stream. Events:
 * started, output*, result?, end (EXIT or ERROR; DETACHED right after started for a DETACH
 * exec). -EBUSY when HC_PROTO_MAX_STREAMS streams are live. */
int hc_agent_exec(struct hc_agent *a, const struct hc_proto_exec *e, unsigned flags, void *sctx,
		  uint32_t *ret_id, struct hc_error *err) _must_check_;
/* Queues stdin; returns the bytes taken (0..n: at most what the window allows), or -errno
 * (-ENOENT no such stream, -EPIPE stdin closed or not requested). */
ssize_t hc_agent_stdin(struct hc_agent *a, uint32_t id, const void *p, size_t n) _must_check_;
/* Room in the stdin window now. */
size_t hc_agent_stdin_room(const struct hc_agent *a, uint32_t id);
int hc_agent_stdin_close(struct hc_agent *a, uint32_t id) _must_check_;
/* Delivers sig (1..64) to the command's process group. */
int hc_agent_signal(struct hc_agent *a, uint32_t id, int sig) _must_check_;
/* The terminal of a TTY exec (HC_EXEC_F_TTY) has a new size (RESIZE); the guest sets it and
 * its foreground process group gets SIGWINCH. */
int hc_agent_resize(struct hc_agent *a, uint32_t id, uint16_t rows, uint16_t cols) _must_check_;
/* Acknowledges n bytes of output of a MANUAL_ACK stream as delivered. */
int hc_agent_ack(struct hc_agent *a, uint32_t id, size_t n) _must_check_;

/* The guest's refusal to start an exec (HC_EXEC_ERR_*) as hotcell reports it, one wording for
 * hc_run and the supervisor: err gets kind "exec" and the guest's own message (it names the
 * path or the user already), *ret_exit_code the shell's 127 (not found) or 126 (not
 * executable, bad workdir), else 0. Other reasons are left to the caller: returns 0 without
 * touching err; otherwise err->code. */
int hc_agent_exec_error(const struct hc_proto_error *pe, const char *argv0, int *ret_exit_code,
			struct hc_error *err);

/* ---- any stream ---- */

/* Abandons the stream: the guest kills a command's process group (SIGKILL) or aborts a
 * transfer and removes what it wrote; no output is delivered any more; `end` follows (with
 * cancelled set) once the guest has answered. A get also removes what it wrote locally. */
int hc_agent_cancel(struct hc_agent *a, uint32_t id) _must_check_;

/* ---- files ---- */

/* Copies the local host_path (a regular file, or a directory recursively; a symlink at the top
 * is followed, symlinks below it are copied as symlinks; sockets, FIFOs and devices are
 * skipped) to guest_path, the exact destination (absolute; docs/protocol.md, "FILE_PUT").
 * Streams it in bounded chunks from inside hc_agent_dispatch(). Events: entry*, end (DONE or
 * ERROR). Local read failures end it with ERROR too (the guest removes what it wrote). */
int hc_agent_put(struct hc_agent *a, const char *host_path, const char *guest_path, void *sctx,
		 uint32_t *ret_id, struct hc_error *err) _must_check_;
/* Copies guest_path (same kinds) to the exact local destination host_path: each file is
 * written under a temporary name in its directory and renamed into place when complete;
 * on any failure what was created is removed. Nothing the guest sends is followed out of
 * host_path (symlinks it creates are never traversed). Events: entry*, end (DONE or ERROR).
 */
int hc_agent_get(struct hc_agent *a, const char *guest_path, const char *host_path, void *sctx,
		 uint32_t *ret_id, struct hc_error *err) _must_check_;

/* ---- the VM ---- */

/* Sets the guest's CLOCK_REALTIME to realtime_ns and reseeds its RNG with seed (32..256
 * bytes; n 0: the clock only, for a migrated VM): before any command after a restore, a fork
 * or a migration. `reseeded` (or `vm_error`) follows. */
int hc_agent_reseed(struct hc_agent *a, uint64_t realtime_ns, const void *seed, size_t n,
		    struct hc_error *err) _must_check_;
/* Queues SHUTDOWN: the guest kills everything and ends the VM. */
int hc_agent_shutdown(struct hc_agent *a, struct hc_error *err) _must_check_;
