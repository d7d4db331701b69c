/* SPDX-License-Identifier: MIT */
/*
 * The host<->guest wire protocol (docs/protocol.md), shared by hotcell and hotcell-init.
 *
 * A frame is an 8-byte header followed by the payload:
 *   u32 payload length (big endian, <= HC_PROTO_MAX_PAYLOAD)
 *   u8  type (enum hc_proto_type)
 *   u8  flags (0; reserved)
 *   u16 reserved (0)
 * Payloads are built from big-endian integers and length-prefixed byte strings (u32 length +
 * bytes). Both ends treat the other as untrusted: every length is bounded, every frame is
 * validated, and decoding never reads past the payload. The protocol version travels in the
 * hello frame; a host refuses a guest whose major version differs.
 */
#pragma once

#include <stdint.h>

#include "core/buf.h"
#include "core/util.h"

#define HC_PROTO_VERSION 1
#define HC_PROTO_HEADER_SIZE 8
/* Large enough for a 1 MiB result.json plus framing. */
#define HC_PROTO_MAX_PAYLOAD ((1u << 20) + 4096)
/* stdin/stdout/stderr chunks are at most this big. */
#define HC_PROTO_MAX_DATA (64u * 1024)
#define HC_PROTO_MAX_ARGS 4096
#define HC_PROTO_MAX_STRING (256u * 1024)
#define HC_PROTO_MAX_RESULT (1u << 20)

enum hc_proto_type {
	HC_FRAME_HELLO = 1,       /* g->h: version, boot time, agent version */
	HC_FRAME_EXEC = 2,        /* h->g: run a command */
	HC_FRAME_STDIN = 3,       /* h->g: data for the command's stdin */
	HC_FRAME_STDIN_CLOSE = 4, /* h->g: end of stdin */
	HC_FRAME_STDOUT = 5,      /* g->h: data */
	HC_FRAME_STDERR = 6,      /* g->h: data */
	HC_FRAME_EXIT = 7,        /* g->h: the command ended */
	HC_FRAME_ERROR = 8,       /* g->h: the command could not be started (or a protocol error) */
	HC_FRAME_RESULT = 9,      /* g->h: /hotcell/result.json, sent before EXIT when present */
	HC_FRAME_SIGNAL = 10,     /* h->g: deliver a signal to the command */
	HC_FRAME_SHUTDOWN = 11,   /* h->g: end the VM */
	HC_FRAME_TYPE_MAX = 11,
};

enum hc_proto_errno {
	HC_EXEC_ERR_NOT_FOUND = 1,      /* executable not found in $PATH -> 127 */
	HC_EXEC_ERR_NOT_EXECUTABLE = 2, /* found but cannot be executed -> 126 */
	HC_EXEC_ERR_BAD_WORKDIR = 3,    /* -> 126 */
	HC_EXEC_ERR_BAD_USER = 4,       /* unknown user or group -> 125 */
	HC_EXEC_ERR_INVALID = 5,        /* malformed request -> 125 */
	HC_EXEC_ERR_INTERNAL = 6,       /* fork/pipe/... failed in the guest -> 125 */
	HC_EXEC_ERR_BUSY = 7,           /* a command is already running -> 125 */
};

struct hc_proto_frame {
	uint8_t type;
	uint32_t len;
	const uint8_t *payload; /* points into the caller's buffer */
};

/* Parses one frame from buf. Returns 1 and fills *ret and *consumed when a whole frame is
 * there, 0 when more bytes are needed, -EBADMSG for a malformed header (unknown type, bad
 * reserved bits, length over the limit). */
int hc_proto_frame_parse(const uint8_t *buf, size_t len, struct hc_proto_frame *ret,
			 size_t *consumed) _must_check_;
/* Appends a whole frame to out. */
int hc_proto_frame_append(struct hc_buf *out, uint8_t type, const void *payload, size_t len)
	_must_check_;
/* Writes a whole frame to a blocking fd (retrying on EINTR and short writes). */
int hc_proto_frame_write(int fd, uint8_t type, const void *payload, size_t len) _must_check_;

/* ---- typed payloads: encode appends a whole frame to out; decode validates a frame ---- */

struct hc_proto_hello {
	uint32_t version;
	uint64_t boot_ns;    /* guest CLOCK_BOOTTIME when hotcell-init sent the hello */
	char agent[64];      /* agent version string */
};
int hc_proto_hello_encode(struct hc_buf *out, const struct hc_proto_hello *h) _must_check_;
int hc_proto_hello_decode(const struct hc_proto_frame *f, struct hc_proto_hello *ret) _must_check_;

#define HC_EXEC_F_STDIN (1u << 0)          /* stdin frames follow; else stdin is /dev/null */
#define HC_EXEC_F_CREATE_WORKDIR (1u << 1) /* create cwd when missing (image's WorkingDir) */

struct hc_proto_exec {
	uint32_t flags;
	uint32_t timeout_ms; /* 0: none; the guest kills the command at the deadline */
	char *user;          /* "", "name", "uid", "name:group", "uid:gid"; resolved in the guest */
	char *cwd;           /* "" -> "/" */
	char **argv;         /* NULL-terminated, argc >= 1 */
	size_t argc;
	char **env;          /* NULL-terminated "KEY=VALUE" */
	size_t envc;
};
int hc_proto_exec_encode(struct hc_buf *out, const struct hc_proto_exec *e) _must_check_;
/* Allocates; free with hc_proto_exec_free. Strings must be NUL-free, argv non-empty. */
int hc_proto_exec_decode(const struct hc_proto_frame *f, struct hc_proto_exec *ret) _must_check_;
void hc_proto_exec_free(struct hc_proto_exec *e);

struct hc_proto_exit {
	int32_t code;     /* exit code, or -1 when killed by a signal */
	int32_t signal;   /* 0 when none */
	uint8_t timed_out;/* the guest killed it at the timeout */
};
int hc_proto_exit_encode(struct hc_buf *out, const struct hc_proto_exit *x) _must_check_;
int hc_proto_exit_decode(const struct hc_proto_frame *f, struct hc_proto_exit *ret) _must_check_;

struct hc_proto_error {
	uint32_t reason; /* enum hc_proto_errno */
	char message[512];
};
int hc_proto_error_encode(struct hc_buf *out, const struct hc_proto_error *e) _must_check_;
int hc_proto_error_decode(const struct hc_proto_frame *f, struct hc_proto_error *ret) _must_check_;

/* SIGNAL payload: i32 signal number (1..64); delivered to the command's process group. */
int hc_proto_signal_encode(struct hc_buf *out, int32_t sig) _must_check_;
int hc_proto_signal_decode(const struct hc_proto_frame *f, int32_t *ret) _must_check_;

/* RESULT payload: u8 status (0 ok: bytes follow; 1 too large; 2 unreadable) + bytes. With
 * status 0 the bytes are the file (<= HC_PROTO_MAX_RESULT); otherwise they are a short
 * human-readable reason (<= 512 bytes, may be empty). */
#define HC_RESULT_OK 0
#define HC_RESULT_TOO_LARGE 1
#define HC_RESULT_UNREADABLE 2
struct hc_proto_result {
	uint8_t status;
	const uint8_t *data; /* points into the frame's payload */
	size_t len;
};
int hc_proto_result_encode(struct hc_buf *out, const struct hc_proto_result *r) _must_check_;
int hc_proto_result_decode(const struct hc_proto_frame *f, struct hc_proto_result *ret)
	_must_check_;

/* ---- helpers ---- */

/* "hello", "exec", ...; "unknown" for anything else. */
const char *hc_proto_type_name(uint8_t type);
/* Reads from a blocking fd into in (whose max should be at least HC_PROTO_HEADER_SIZE +
 * HC_PROTO_MAX_PAYLOAD) until one whole frame is buffered. Returns 1 and fills *ret (pointing
 * into in) and *consumed (call hc_buf_consume(in, *consumed) when done with the frame), 0 on
 * EOF at a frame boundary, -EPIPE on EOF inside a frame, -EBADMSG on a malformed header, or a
 * read error. */
int hc_proto_frame_read(int fd, struct hc_buf *in, struct hc_proto_frame *ret, size_t *consumed)
	_must_check_;
/* The maximum payload length allowed for a frame type (0 for types without payload); -1 for
 * an unknown type. */
long hc_proto_type_max_payload(uint8_t type);
