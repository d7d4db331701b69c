/* SPDX-License-Identifier: MIT */
/*
 * The host<->guest wire protocol, version 3 (docs/protocol.md), shared by hotcell and
 * hotcell-init.
 *
 * A frame is a 12-byte header followed by the payload:
 *   u32 payload length (big endian, <= the type's maximum, hc_proto_type_max_payload)
 *   u8  type (enum hc_proto_type)
 *   u8  flags (0; reserved)
 *   u16 reserved (0)
 *   u32 stream id (big endian): 0 is the VM itself, 1..HC_PROTO_STREAM_MAX one request each
 * Payloads are built from big-endian integers and length-prefixed byte strings (u32 length +
 * bytes). Both ends treat the other as untrusted: every length is bounded, every frame is
 * validated, and decoding never reads past the payload. The protocol version travels in the
 * hello frame; a host refuses a guest whose version differs.
 */
#pragma once

#include <stdint.h>

#include "core/buf.h"
#include "core/util.h"

#define HC_PROTO_VERSION 3
#define HC_PROTO_HEADER_SIZE 12
/* Large enough for a 1 MiB result.json plus framing. */
#define HC_PROTO_MAX_PAYLOAD ((1u << 20) + 4096)
/* STDIN/STDOUT/STDERR/FILE_DATA chunks are at most this big. */
#define HC_PROTO_MAX_DATA (64u * 1024)
#define HC_PROTO_MAX_ARGS 4096
#define HC_PROTO_MAX_STRING (256u * 1024)
#define HC_PROTO_MAX_RESULT (1u << 20)
/* Stream ids the host may pick; 0 is the VM's own stream. */
#define HC_PROTO_STREAM_VM 0u
#define HC_PROTO_STREAM_MAX 0x7fffffffu
/* Per stream and direction, at most this many bytes of data frames (their payloads) are in
 * flight without a WINDOW acknowledging them. */
#define HC_PROTO_WINDOW (1u << 20)
/* Streams (execs and transfers) a guest runs at once; ERROR BUSY beyond. */
#define HC_PROTO_MAX_STREAMS 64
/* Paths in FILE_PUT/FILE_GET/ENTRY, and symlink targets. */
#define HC_PROTO_MAX_PATH 4095u
/* RESEED seed length bounds. */
#define HC_PROTO_SEED_MIN 32u
#define HC_PROTO_SEED_MAX 256u

enum hc_proto_type {
	HC_FRAME_HELLO = 1,	  /* g->h id 0: version, boot time, agent version */
	HC_FRAME_EXEC = 2,	  /* h->g new id: run a command */
	HC_FRAME_STDIN = 3,	  /* h->g: data for the command's stdin */
	HC_FRAME_STDIN_CLOSE = 4, /* h->g: end of stdin */
	HC_FRAME_STDOUT = 5,	  /* g->h: data */
	HC_FRAME_STDERR = 6,	  /* g->h: data */
	HC_FRAME_EXIT = 7,	  /* g->h: the command ended (final) */
	HC_FRAME_ERROR = 8,	  /* g->h: the request failed or was refused (final) */
	HC_FRAME_RESULT = 9,	  /* g->h: /hotcell/result.json, before EXIT (EXEC flag RESULT) */
	HC_FRAME_SIGNAL = 10,	  /* h->g: deliver a signal to the command */
	HC_FRAME_SHUTDOWN = 11,	  /* h->g id 0: end the VM */
	HC_FRAME_STARTED = 12,	  /* g->h: the command runs; u32 guest pid */
	HC_FRAME_WINDOW = 13,	  /* both: u32 bytes of data frames consumed on this stream */
	HC_FRAME_CANCEL = 14,	  /* h->g: abandon the stream */
	HC_FRAME_FILE_PUT = 15,	  /* h->g new id: u32 flags, str path; ENTRY... END follow */
	HC_FRAME_FILE_GET = 16,	  /* h->g new id: str path; the guest sends ENTRY... END */
	HC_FRAME_ENTRY = 17,	  /* both: one file, directory or symlink of a transfer */
	HC_FRAME_FILE_DATA = 18,  /* both: file content after a file ENTRY */
	HC_FRAME_END = 19,	  /* both: the transfer's last entry has been sent */
	HC_FRAME_DONE = 20,	  /* g->h: a put completed / RESEED applied (final) */
	HC_FRAME_RESEED = 21,	  /* h->g id 0: u64 realtime ns, bytes seed */
	HC_FRAME_RESIZE = 22,	  /* h->g: u16 rows, u16 cols of a TTY exec's terminal */
	HC_FRAME_NETCONF = 23,	  /* h->g id 0 (v3): eth0's new address, gateway, resolver, MAC */
	HC_FRAME_HOSTNAME = 24,	  /* h->g id 0: the guest's hostname (a restored copy's own) */
	HC_FRAME_TYPE_MAX = 24,
};

/* ERROR reasons. The numbers are the contract; the message is prose for a human. */
enum hc_proto_errno {
	HC_EXEC_ERR_NOT_FOUND = 1,	/* executable not found in $PATH -> 127 */
	HC_EXEC_ERR_NOT_EXECUTABLE = 2, /* found but cannot be executed -> 126 */
	HC_EXEC_ERR_BAD_WORKDIR = 3,	/* -> 126 */
	HC_EXEC_ERR_BAD_USER = 4,	/* unknown user or group -> 125 */
	HC_EXEC_ERR_INVALID = 5,	/* malformed request or protocol violation -> 125 */
	HC_EXEC_ERR_INTERNAL = 6,	/* fork/pipe/... failed in the guest -> 125 */
	HC_EXEC_ERR_BUSY = 7,		/* too many streams, or a RESULT exec already runs */
	HC_ERR_NOENT = 8,		/* file transfer: no such file or directory */
	HC_ERR_NOSPC = 9,		/* file transfer: no space left on device */
	HC_ERR_ROFS = 10,		/* file transfer: read-only file system */
	HC_ERR_ACCES = 11,		/* file transfer: permission denied */
	HC_ERR_IO = 12,			/* file transfer: any other failure (message says) */
	HC_ERR_CANCELLED = 13,		/* the stream was cancelled by the host */
	HC_ERR_MAX = 13,
};

struct hc_proto_frame {
	uint8_t type;
	uint32_t stream;
	uint32_t len;
	const uint8_t *payload; /* points into the caller's buffer */
};

/* Parses one frame from buf. Returns 1 and fills *ret and *consumed when a whole frame is
 * there, 0 when more bytes are needed, -EBADMSG for a malformed header (unknown type, bad
 * flags or reserved bits, length over the type's limit, stream id over HC_PROTO_STREAM_MAX).
 */
int hc_proto_frame_parse(const uint8_t *buf, size_t len, struct hc_proto_frame *ret,
			 size_t *consumed) _must_check_;
/* Appends a whole frame to out. */
int hc_proto_frame_append(struct hc_buf *out, uint8_t type, uint32_t stream, const void *payload,
			  size_t len) _must_check_;
/* Writes a whole frame to a blocking fd (retrying on EINTR and short writes). */
int hc_proto_frame_write(int fd, uint8_t type, uint32_t stream, const void *payload,
			 size_t len) _must_check_;
/* The payload length written in a complete header (for walking a queue of frames). */
uint32_t hc_proto_header_len(const uint8_t *header);

/* An output queue of whole encoded frames being written to a channel (both ends keep one):
 * `*off` bytes of q are written, `*boundary` is the start of the first frame not yet begun, so
 * a reconnect can drop the torn rest of a frame and resend from there. Call after each write:
 * moves the boundary past every frame begun, empties q once all is written, and compacts it
 * once more than `soft` bytes are written. */
void hc_proto_outq_settle(struct hc_buf *q, size_t *off, size_t *boundary, size_t soft);

/* ---- typed payloads: encode appends a whole frame to out; decode validates a frame ---- */

struct hc_proto_hello {
	uint32_t version;
	uint64_t boot_ns; /* guest CLOCK_BOOTTIME when hotcell-init sent the hello */
	char agent[64];	  /* agent version string */
};
/* On stream 0. */
int hc_proto_hello_encode(struct hc_buf *out, const struct hc_proto_hello *h) _must_check_;
int hc_proto_hello_decode(const struct hc_proto_frame *f, struct hc_proto_hello *ret) _must_check_;

#define HC_EXEC_F_STDIN (1u << 0)	   /* stdin frames follow; else stdin is /dev/null */
#define HC_EXEC_F_CREATE_WORKDIR (1u << 1) /* create cwd when missing (image's WorkingDir) */
#define HC_EXEC_F_DETACH (1u << 2)	   /* outlives its stream; output to a guest log */
#define HC_EXEC_F_RESULT (1u << 3)	   /* report /hotcell/result.json (RESULT frame) */
#define HC_EXEC_F_TTY (1u << 4)		   /* a pty: output as STDOUT only; rows/cols follow */
#define HC_EXEC_F_ALL                                                                              \
	(HC_EXEC_F_STDIN | HC_EXEC_F_CREATE_WORKDIR | HC_EXEC_F_DETACH | HC_EXEC_F_RESULT |        \
	 HC_EXEC_F_TTY)

struct hc_proto_exec {
	uint32_t flags;
	uint32_t timeout_ms; /* 0: none; the guest kills the command at the deadline */
	char *user;	     /* "", "name", "uid", "name:group", "uid:gid"; resolved in the guest */
	char *cwd;	     /* "" -> "/" */
	char **argv;	     /* NULL-terminated, argc >= 1 */
	size_t argc;
	char **env; /* NULL-terminated "KEY=VALUE" */
	size_t envc;
	/* With HC_EXEC_F_TTY (encoded after env as u16 rows, u16 cols; 0 unknown): the
	 * terminal's size at the start. */
	uint16_t rows, cols;
};
/* DETACH excludes STDIN, RESULT, TTY and a timeout (-EINVAL / -EBADMSG). */
int hc_proto_exec_encode(struct hc_buf *out, uint32_t stream,
			 const struct hc_proto_exec *e) _must_check_;
/* Allocates; free with hc_proto_exec_free. Strings must be NUL-free, argv non-empty. */
int hc_proto_exec_decode(const struct hc_proto_frame *f, struct hc_proto_exec *ret) _must_check_;
void hc_proto_exec_free(struct hc_proto_exec *e);

struct hc_proto_exit {
	int32_t code;	   /* exit code, or -1 when killed by a signal */
	int32_t signal;	   /* 0 when none */
	uint8_t timed_out; /* the guest killed it at the timeout */
};
int hc_proto_exit_encode(struct hc_buf *out, uint32_t stream,
			 const struct hc_proto_exit *x) _must_check_;
int hc_proto_exit_decode(const struct hc_proto_frame *f, struct hc_proto_exit *ret) _must_check_;

struct hc_proto_error {
	uint32_t reason; /* enum hc_proto_errno */
	char message[512];
};
int hc_proto_error_encode(struct hc_buf *out, uint32_t stream,
			  const struct hc_proto_error *e) _must_check_;
int hc_proto_error_decode(const struct hc_proto_frame *f, struct hc_proto_error *ret) _must_check_;

/* SIGNAL payload: i32 signal number (1..64); delivered to the command's process group. */
int hc_proto_signal_encode(struct hc_buf *out, uint32_t stream, int32_t sig) _must_check_;
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
int hc_proto_result_encode(struct hc_buf *out, uint32_t stream,
			   const struct hc_proto_result *r) _must_check_;
int hc_proto_result_decode(const struct hc_proto_frame *f,
			   struct hc_proto_result *ret) _must_check_;

/* STARTED payload: u32 guest pid (> 0). */
int hc_proto_started_encode(struct hc_buf *out, uint32_t stream, uint32_t pid) _must_check_;
int hc_proto_started_decode(const struct hc_proto_frame *f, uint32_t *ret) _must_check_;

/* WINDOW payload: u32 bytes consumed (1..HC_PROTO_WINDOW). */
int hc_proto_window_encode(struct hc_buf *out, uint32_t stream, uint32_t n) _must_check_;
int hc_proto_window_decode(const struct hc_proto_frame *f, uint32_t *ret) _must_check_;

/* FILE_PUT payload: u32 flags (none defined: 0), str path (absolute, no ".." component,
 * <= HC_PROTO_MAX_PATH). FILE_GET payload: str path (same rules). The path points into the
 * frame (not NUL-terminated: copied into ret, which has room for the NUL). */
struct hc_proto_file_req {
	uint32_t flags;
	char path[HC_PROTO_MAX_PATH + 1];
};
int hc_proto_put_encode(struct hc_buf *out, uint32_t stream,
			const struct hc_proto_file_req *q) _must_check_;
int hc_proto_put_decode(const struct hc_proto_frame *f, struct hc_proto_file_req *ret) _must_check_;
int hc_proto_get_encode(struct hc_buf *out, uint32_t stream, const char *path) _must_check_;
int hc_proto_get_decode(const struct hc_proto_frame *f, struct hc_proto_file_req *ret) _must_check_;
/* An absolute guest path as FILE_PUT/FILE_GET take it. */
bool hc_proto_path_valid(const char *path);

/* ENTRY payload: u8 kind, u32 mode, str relpath, str target, u64 size. */
#define HC_ENTRY_FILE 1
#define HC_ENTRY_DIR 2
#define HC_ENTRY_SYMLINK 3
struct hc_proto_entry {
	uint8_t kind;
	uint32_t mode;			     /* permission bits (07777); 0 for a symlink */
	char relpath[HC_PROTO_MAX_PATH + 1]; /* "" for the top; else "a/b": no "..", ".", "",
					      * leading or trailing "/" component */
	char target[HC_PROTO_MAX_PATH + 1];  /* symlink target (non-empty); "" otherwise */
	uint64_t size;			     /* file size; 0 otherwise */
};
int hc_proto_entry_encode(struct hc_buf *out, uint32_t stream,
			  const struct hc_proto_entry *e) _must_check_;
int hc_proto_entry_decode(const struct hc_proto_frame *f, struct hc_proto_entry *ret) _must_check_;
/* A relative path as ENTRY takes it ("" included). */
bool hc_proto_relpath_valid(const char *relpath);

/* RESEED payload: u64 CLOCK_REALTIME in ns, bytes seed (HC_PROTO_SEED_MIN..MAX, or none: the
 * clock only, for a migrated VM, whose randomness is its own). */
struct hc_proto_reseed {
	uint64_t realtime_ns;
	const uint8_t *seed; /* points into the frame's payload */
	size_t seed_len;
};
int hc_proto_reseed_encode(struct hc_buf *out, const struct hc_proto_reseed *r) _must_check_;
int hc_proto_reseed_decode(const struct hc_proto_frame *f,
			   struct hc_proto_reseed *ret) _must_check_;

/* HOSTNAME payload: the name's bytes, 1..HC_PROTO_HOSTNAME_MAX of [A-Za-z0-9.-] (the boot
 * contract's hotcell.hostname rule); the guest answers DONE (or ERROR) on stream 0. decode
 * writes the name NUL-terminated into ret (HC_PROTO_HOSTNAME_MAX + 1 bytes). */
#define HC_PROTO_HOSTNAME_MAX 64u
bool hc_proto_hostname_valid(const char *name, size_t len);
int hc_proto_hostname_encode(struct hc_buf *out, const char *name) _must_check_;
int hc_proto_hostname_decode(const struct hc_proto_frame *f, char *ret) _must_check_;
/* NETCONF payload (v3, h->g on stream 0): the guest's eth0 after a restore or fork, which
 * runs on a network of its own (docs/network.md): u32 address, u8 prefix (1..30), u32
 * gateway (inside address/prefix, not the address), u32 resolver (0: none), u16 MTU
 * (68..65535), 6 bytes MAC (unicast, not all zero). Addresses in network order here and on
 * the wire. The guest answers DONE on stream 0, or ERROR INTERNAL saying which step failed. */
struct hc_proto_netconf {
	uint32_t addr, gateway, dns;
	uint8_t prefix;
	uint16_t mtu;
	uint8_t mac[6];
};
int hc_proto_netconf_encode(struct hc_buf *out, const struct hc_proto_netconf *n) _must_check_;
int hc_proto_netconf_decode(const struct hc_proto_frame *f,
			    struct hc_proto_netconf *ret) _must_check_;

/* RESIZE payload: u16 rows, u16 cols (0 unknown), on a TTY exec's stream. */
int hc_proto_resize_encode(struct hc_buf *out, uint32_t stream, uint16_t rows,
			   uint16_t cols) _must_check_;
int hc_proto_resize_decode(const struct hc_proto_frame *f, uint16_t *rows,
			   uint16_t *cols) _must_check_;

/* ---- helpers ---- */

/* "hello", "exec", ...; "unknown" for anything else. */
const char *hc_proto_type_name(uint8_t type);
/* Reads from a blocking fd into in (whose max should be at least HC_PROTO_HEADER_SIZE +
 * HC_PROTO_MAX_PAYLOAD) until one whole frame is buffered. Returns 1 and fills *ret (pointing
 * into in) and *consumed (call hc_buf_consume(in, *consumed) when done with the frame), 0 on
 * EOF at a frame boundary, -EPIPE on EOF inside a frame, -EBADMSG on a malformed header, or a
 * read error. */
int hc_proto_frame_read(int fd, struct hc_buf *in, struct hc_proto_frame *ret,
			size_t *consumed) _must_check_;
/* The maximum payload length allowed for a frame type (0 for types without payload); -1 for
 * an unknown type. */
long hc_proto_type_max_payload(uint8_t type);
/* Data frames: the ones WINDOW counts (STDIN, STDOUT, STDERR, FILE_DATA). */
bool hc_proto_type_is_data(uint8_t type);
