/* SPDX-License-Identifier: MIT */
/*
 * A small QMP client (QEMU Machine Protocol, docs/interop/qmp-spec.txt in QEMU's source):
 * newline-separated JSON over a stream socket. The server greets ({"QMP": ...}), the client
 * negotiates with qmp_capabilities, then sends {"execute": ...} and reads either
 * {"return": ...} or {"error": {"class", "desc"}}; asynchronous {"event": ...} messages can
 * arrive at any time, also between a command and its reply. The events that matter to
 * hotcell are latched in struct hc_qmp: STOP (QEMU pauses, and never exits, after an
 * internal error), SHUTDOWN, RESET, GUEST_PANICKED.
 *
 * Every read is bounded (HC_QMP_MAX_MESSAGE) and every wait has a deadline.
 */
#pragma once

#include "core/buf.h"
#include "core/error.h"

#define HC_QMP_MAX_MESSAGE (1024 * 1024)

struct hc_qmp {
	int fd;
	struct hc_buf in;	  /* bytes read but not yet parsed into messages */
	bool eof;		  /* the peer closed the connection */
	unsigned n_stop;	  /* STOP events seen */
	unsigned n_resume;	  /* RESUME events seen */
	bool shutdown;		  /* SHUTDOWN seen */
	bool reset;		  /* RESET seen */
	bool panicked;		  /* GUEST_PANICKED seen */
	char shutdown_reason[48]; /* SHUTDOWN data.reason ("guest-reset", "host-qmp-quit" ...) */
	char version[64];	  /* from the greeting: "7.2.22" */
	char migration[32];	  /* the last MIGRATION event's status ("completed", "failed") */
	int cancel_fd;		  /* -1, or an fd whose readability ends every wait: -ECANCELED */
};

#define HC_QMP_INIT                                                                                \
	{                                                                                          \
		.fd = -1, .in = HC_BUF_INIT(HC_QMP_MAX_MESSAGE), .cancel_fd = -1                   \
	}

/* Takes ownership of fd (a connected stream socket), reads the greeting and negotiates
 * capabilities, within timeout_ms. */
int hc_qmp_open(struct hc_qmp *q, int fd, int timeout_ms, struct hc_error *err) _must_check_;
/* Runs one command. args_json is a JSON object text or NULL. On success *ret_return (may be
 * NULL) gets the "return" value as JSON text (malloc'd). A QMP error reply is -EIO with its
 * class and desc in err. Events read on the way are latched. */
int hc_qmp_execute(struct hc_qmp *q, const char *command, const char *args_json, int timeout_ms,
		   char **ret_return, struct hc_error *err) _must_check_;
/* Sends a command without waiting for its reply (for "quit", whose reply may never come). */
int hc_qmp_send(struct hc_qmp *q, const char *command, struct hc_error *err) _must_check_;
/* Reads whatever is pending without blocking and latches events. Returns the number of
 * messages handled; -EPIPE once the peer has closed (q->eof). */
int hc_qmp_drain(struct hc_qmp *q, struct hc_error *err);
/* query-status: *status gets the run state ("running", "paused", "internal-error",
 * "guest-panicked", "shutdown", ...). */
int hc_qmp_query_status(struct hc_qmp *q, int timeout_ms, char *status, size_t n,
			struct hc_error *err) _must_check_;
/* Reads messages (latching events) until done(q, arg) is true, at most timeout_ms. */
int hc_qmp_wait(struct hc_qmp *q, int timeout_ms, bool (*done)(const struct hc_qmp *q, void *arg),
		void *arg, struct hc_error *err) _must_check_;
void hc_qmp_close(struct hc_qmp *q);

/* Handles one complete message (one line, without its newline): latches events. Returns 1
 * for a reply (return or error), 0 for an event or the greeting, -EBADMSG when it is not a
 * JSON object. Exposed for tests and fuzzing. */
int hc_qmp_handle_line(struct hc_qmp *q, const char *line, size_t len);
