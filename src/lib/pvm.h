/* SPDX-License-Identifier: MIT */
/*
 * Persistent VMs, the parts shared by the client functions (src/lib/pvm.c, the hc_pvm_* API)
 * and the supervisor (src/vmd): the state directory and vm.json, name resolution, supervisor
 * liveness, and the control-socket protocol (docs/vm.md, "Control socket").
 *
 * State: $HOTCELL_HOME/vms/<id>/
 *   vm.json      the VM's record, rewritten atomically by the supervisor (and by vm rm/prune
 *                for a dead one): id, name, image, digest, backend, spec, created, status,
 *                pid + pid_start (the supervisor's start time in clock ticks since boot, field
 *                22 of /proc/PID/stat: a reused pid is never mistaken for it), runtime_dir,
 *                control (the socket), idle_timeout, lifetime, error, console_tail
 *   create.json  what the creator asked for (the run options as a JSON object, name, timeouts,
 *                restore dir): the supervisor's input
 *   vmd.log      the supervisor's own diagnostics
 *   console.log  the guest console, saved there when the VM ends
 */
#pragma once

#include <jansson.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/path.h"
#include "hotcell.h"

#define HC_PVM_DEFAULT_MAX 64
#define HC_PVM_NAME_MAX 128

/* $HOTCELL_HOME/vms (created), and $HOTCELL_HOME/vms/<id>. */
int hc_pvm_state_root(char *buf, size_t n, struct hc_error *err) _must_check_;
int hc_pvm_state_dir(const char *id, char *buf, size_t n, struct hc_error *err) _must_check_;

/* A VM name: [A-Za-z0-9][A-Za-z0-9_.-]*, at most HC_PVM_NAME_MAX bytes, and not 64 hex digits
 * (it would read as an id). */
bool hc_pvm_name_valid(const char *name);
bool hc_pvm_id_valid(const char *id);

/* True when pid is alive and started at start. */
bool hc_pvm_proc_alive(pid_t pid, unsigned long long start);

/* vm.json: reads (validated: an object with a valid id) / writes atomically. */
int hc_pvm_record_read(const char *id, json_t **ret, struct hc_error *err) _must_check_;
int hc_pvm_record_write(const char *id, json_t *rec, struct hc_error *err) _must_check_;
/* The live status of a record: its "status", except that a running, paused or creating VM
 * whose supervisor is gone reads as dead. */
enum hc_pvm_status hc_pvm_record_status(const json_t *rec);
int hc_pvm_status_parse(const char *s, enum hc_pvm_status *ret);

/* Resolves ref among ids (the directory names under vms/) and names: an exact id, else an
 * exact name, else a unique id prefix. ids/names are parallel arrays (names[i] may be NULL).
 * Pure, for the unit tests; hc_pvm_resolve reads the state dir and calls it. Returns the
 * index, or -ENOENT / -EINVAL (ambiguous) with err set. */
int hc_pvm_resolve_in(const char *ref, const char *const *ids, const char *const *names, size_t n,
		      struct hc_error *err);

/* ---- the control socket ----
 *
 * A stream of frames both ways: u32 payload length (big endian) | u8 type | payload.
 * The client's first frame is a REQUEST (a JSON object with "op"); the supervisor answers
 * with exactly one REPLY (a JSON object: {"ok": true, ...} or {"error": {"kind", "message",
 * "code"}}) after which it closes the connection. Between the two, per op:
 *   exec: supervisor -> client EVENT {"started": PID}, STDOUT, STDERR; client -> supervisor
 *         STDIN, STDIN_CLOSE, SIGNAL (u32 signal number), CANCEL (empty).
 * Everything the client sends is untrusted: hc_pvm_ctl_parse bounds and validates it. */
enum hc_pvm_ctl_type {
	HC_CTL_REQUEST = 1,	/* c->s: JSON object, first frame */
	HC_CTL_REPLY = 2,	/* s->c: JSON object, last frame */
	HC_CTL_EVENT = 3,	/* s->c: JSON object */
	HC_CTL_STDIN = 4,	/* c->s: bytes */
	HC_CTL_STDIN_CLOSE = 5, /* c->s: empty */
	HC_CTL_STDOUT = 6,	/* s->c: bytes */
	HC_CTL_STDERR = 7,	/* s->c: bytes */
	HC_CTL_SIGNAL = 8,	/* c->s: u32 signal number (1..64) */
	HC_CTL_CANCEL = 9,	/* c->s: empty: abandon the request */
	HC_CTL_RESIZE = 10,	/* c->s: u16 rows, u16 cols of a tty exec's terminal */
	HC_CTL_TYPE_MAX = 10,
};
#define HC_CTL_HEADER 5
#define HC_CTL_MAX_JSON (256u * 1024)
#define HC_CTL_MAX_DATA (64u * 1024)

struct hc_pvm_ctl_frame {
	uint8_t type;
	uint32_t len;
	const uint8_t *payload;
};
/* Parses one frame from buf: 1 and *used when whole, 0 when more bytes are needed, -EBADMSG
 * for a malformed one (unknown type, length over its type's bound, bad fixed-size payload). */
int hc_pvm_ctl_parse(const uint8_t *buf, size_t len, struct hc_pvm_ctl_frame *ret, size_t *used);
int hc_pvm_ctl_append(struct hc_buf *out, uint8_t type, const void *p, size_t n) _must_check_;
int hc_pvm_ctl_append_json(struct hc_buf *out, uint8_t type, json_t *obj) _must_check_;
/* Decodes a REQUEST: a JSON object with a string "op" in ops (NULL-terminated). -EBADMSG
 * with err set otherwise. */
int hc_pvm_ctl_request(const struct hc_pvm_ctl_frame *f, const char *const *ops, json_t **ret,
		       const char **ret_op, struct hc_error *err) _must_check_;

/* Client side: connects to the VM's control socket (the supervisor must be alive), sends
 * request (stolen), and returns the connected fd (blocking). */
int hc_pvm_ctl_connect(const char *id, struct hc_error *err) _must_check_;
/* Sends request and waits for the REPLY (no other frames expected); *ret_reply may be NULL.
 * An {"error"} reply becomes the return value and err. */
int hc_pvm_ctl_call(const char *id, json_t *request, json_t **ret_reply,
		    struct hc_error *err) _must_check_;
/* Reads frames from fd (blocking) until one is whole. */
int hc_pvm_ctl_read(int fd, struct hc_buf *in, struct hc_pvm_ctl_frame *ret, size_t *used,
		    struct hc_error *err) _must_check_;
/* An {"error": ...} reply's contents into err (returns its code), or 0 for {"ok": true}. */
int hc_pvm_ctl_reply_error(const json_t *reply, struct hc_error *err);
json_t *hc_pvm_ctl_error_json(const struct hc_error *err);
