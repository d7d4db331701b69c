/* SPDX-License-Identifier: MIT */
/*
 * The host<->guest wire protocol (docs/protocol.md). Everything here is plain byte shuffling:
 * no allocation except in hc_proto_exec_decode, no I/O except the two fd helpers, so the same
 * file links into the static hotcell-init and into libhotcell.
 *
 * Both ends are untrusted by the other: the header parser bounds every length by frame type
 * before a payload is buffered, and each payload decoder checks every length against what is
 * left of the payload and rejects trailing bytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/uio.h>

#include "proto/proto.h"

static const char *const type_names[] = {
	[HC_FRAME_HELLO] = "hello",	  [HC_FRAME_EXEC] = "exec",
	[HC_FRAME_STDIN] = "stdin",	  [HC_FRAME_STDIN_CLOSE] = "stdin-close",
	[HC_FRAME_STDOUT] = "stdout",	  [HC_FRAME_STDERR] = "stderr",
	[HC_FRAME_EXIT] = "exit",	  [HC_FRAME_ERROR] = "error",
	[HC_FRAME_RESULT] = "result",	  [HC_FRAME_SIGNAL] = "signal",
	[HC_FRAME_SHUTDOWN] = "shutdown", [HC_FRAME_STARTED] = "started",
	[HC_FRAME_WINDOW] = "window",	  [HC_FRAME_CANCEL] = "cancel",
	[HC_FRAME_FILE_PUT] = "file-put", [HC_FRAME_FILE_GET] = "file-get",
	[HC_FRAME_ENTRY] = "entry",	  [HC_FRAME_FILE_DATA] = "file-data",
	[HC_FRAME_END] = "end",		  [HC_FRAME_DONE] = "done",
	[HC_FRAME_RESEED] = "reseed",	  [HC_FRAME_RESIZE] = "resize",
	[HC_FRAME_HOSTNAME] = "hostname", [HC_FRAME_NETCONF] = "netconf",
};

const char *hc_proto_type_name(uint8_t type)
{
	if (type == 0 || type > HC_FRAME_TYPE_MAX || !type_names[type])
		return "unknown";
	return type_names[type];
}

#define ERROR_MESSAGE_MAX (sizeof(((struct hc_proto_error *)0)->message) - 1)
#define HELLO_AGENT_MAX (sizeof(((struct hc_proto_hello *)0)->agent) - 1)
#define RESULT_REASON_MAX 512

long hc_proto_type_max_payload(uint8_t type)
{
	switch ((enum hc_proto_type)type) {
	case HC_FRAME_HELLO:
		return 4 + 8 + 4 + HELLO_AGENT_MAX;
	case HC_FRAME_EXEC:
		return HC_PROTO_MAX_PAYLOAD;
	case HC_FRAME_STDIN:
	case HC_FRAME_STDOUT:
	case HC_FRAME_STDERR:
	case HC_FRAME_FILE_DATA:
		return HC_PROTO_MAX_DATA;
	case HC_FRAME_STDIN_CLOSE:
	case HC_FRAME_SHUTDOWN:
	case HC_FRAME_CANCEL:
	case HC_FRAME_END:
	case HC_FRAME_DONE:
		return 0;
	case HC_FRAME_STARTED:
	case HC_FRAME_WINDOW:
	case HC_FRAME_RESIZE:
		return 4;
	case HC_FRAME_FILE_PUT:
		return 4 + 4 + HC_PROTO_MAX_PATH;
	case HC_FRAME_FILE_GET:
		return 4 + HC_PROTO_MAX_PATH;
	case HC_FRAME_ENTRY:
		return 1 + 4 + 4 + HC_PROTO_MAX_PATH + 4 + HC_PROTO_MAX_PATH + 8;
	case HC_FRAME_RESEED:
		return 8 + HC_PROTO_SEED_MAX;
	case HC_FRAME_HOSTNAME:
		return HC_PROTO_HOSTNAME_MAX;
	case HC_FRAME_NETCONF:
		return 4 + 1 + 4 + 4 + 2 + 6;
	case HC_FRAME_EXIT:
		return 4 + 4 + 1;
	case HC_FRAME_ERROR:
		return 4 + 4 + ERROR_MESSAGE_MAX;
	case HC_FRAME_RESULT:
		return 1 + HC_PROTO_MAX_RESULT;
	case HC_FRAME_SIGNAL:
		return 4;
	}
	return -1;
}

bool hc_proto_type_is_data(uint8_t type)
{
	return type == HC_FRAME_STDIN || type == HC_FRAME_STDOUT || type == HC_FRAME_STDERR ||
	       type == HC_FRAME_FILE_DATA;
}

/* ---- big-endian primitives ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int buf_u8(struct hc_buf *b, uint8_t v)
{
	return hc_buf_append(b, &v, 1);
}

static int buf_u32(struct hc_buf *b, uint32_t v)
{
	uint8_t p[4];

	put_u32(p, v);
	return hc_buf_append(b, p, 4);
}

static int buf_u64(struct hc_buf *b, uint64_t v)
{
	int r = buf_u32(b, (uint32_t)(v >> 32));

	return r < 0 ? r : buf_u32(b, (uint32_t)v);
}

static int buf_bytes(struct hc_buf *b, const void *p, size_t n)
{
	int r;

	if (n > UINT32_MAX)
		return -E2BIG;
	r = buf_u32(b, (uint32_t)n);
	return r < 0 ? r : hc_buf_append(b, p, n);
}

/* A decoding cursor over one payload: every read is checked against what is left. */
struct cur {
	const uint8_t *p;
	size_t left;
};

static int cur_u8(struct cur *c, uint8_t *ret)
{
	if (c->left < 1)
		return -EBADMSG;
	*ret = c->p[0];
	c->p++;
	c->left--;
	return 0;
}

static int cur_u32(struct cur *c, uint32_t *ret)
{
	if (c->left < 4)
		return -EBADMSG;
	*ret = get_u32(c->p);
	c->p += 4;
	c->left -= 4;
	return 0;
}

static int cur_u64(struct cur *c, uint64_t *ret)
{
	uint32_t hi, lo;

	if (cur_u32(c, &hi) < 0 || cur_u32(c, &lo) < 0)
		return -EBADMSG;
	*ret = (uint64_t)hi << 32 | lo;
	return 0;
}

/* A length-prefixed string of at most max bytes, without NUL bytes; points into the payload. */
static int cur_str(struct cur *c, size_t max, const uint8_t **ret, size_t *ret_len)
{
	uint32_t n;

	if (cur_u32(c, &n) < 0 || n > max || n > c->left)
		return -EBADMSG;
	if (memchr(c->p, 0, n))
		return -EBADMSG;
	*ret = c->p;
	*ret_len = n;
	c->p += n;
	c->left -= n;
	return 0;
}

static int cur_strdup(struct cur *c, size_t max, char **ret)
{
	const uint8_t *s;
	size_t n;
	char *d;

	if (cur_str(c, max, &s, &n) < 0)
		return -EBADMSG;
	d = malloc(n + 1);
	if (!d)
		return -ENOMEM;
	memcpy(d, s, n);
	d[n] = 0;
	*ret = d;
	return 0;
}

/* ---- frames ---- */

int hc_proto_frame_parse(const uint8_t *buf, size_t len, struct hc_proto_frame *ret,
			 size_t *consumed)
{
	uint32_t plen;
	long max;

	if (len < HC_PROTO_HEADER_SIZE)
		return 0;
	plen = get_u32(buf);
	max = hc_proto_type_max_payload(buf[4]);
	/* flags and the reserved u16 must be zero: room for later versions, never garbage. */
	if (max < 0 || buf[5] != 0 || buf[6] != 0 || buf[7] != 0 || plen > (unsigned long)max ||
	    get_u32(buf + 8) > HC_PROTO_STREAM_MAX)
		return -EBADMSG;
	if (len - HC_PROTO_HEADER_SIZE < plen)
		return 0;
	ret->type = buf[4];
	ret->stream = get_u32(buf + 8);
	ret->len = plen;
	ret->payload = buf + HC_PROTO_HEADER_SIZE;
	*consumed = HC_PROTO_HEADER_SIZE + (size_t)plen;
	return 1;
}

uint32_t hc_proto_header_len(const uint8_t *header)
{
	return get_u32(header);
}

void hc_proto_outq_settle(struct hc_buf *q, size_t *off, size_t *boundary, size_t soft)
{
	while (*boundary < *off)
		*boundary += HC_PROTO_HEADER_SIZE +
			     hc_proto_header_len((const uint8_t *)q->data + *boundary);
	if (*off == q->len) {
		hc_buf_reset(q);
		*off = *boundary = 0;
	} else if (*off > soft) {
		hc_buf_consume(q, *off);
		*boundary -= *off;
		*off = 0;
	}
}

static int check_out(uint8_t type, uint32_t stream, size_t len)
{
	long max = hc_proto_type_max_payload(type);

	if (max < 0 || stream > HC_PROTO_STREAM_MAX)
		return -EINVAL;
	if (len > (unsigned long)max)
		return -E2BIG;
	return 0;
}

static void header(uint8_t *h, uint8_t type, uint32_t stream, size_t len)
{
	put_u32(h, (uint32_t)len);
	h[4] = type;
	h[5] = h[6] = h[7] = 0;
	put_u32(h + 8, stream);
}

int hc_proto_frame_append(struct hc_buf *out, uint8_t type, uint32_t stream, const void *payload,
			  size_t len)
{
	uint8_t h[HC_PROTO_HEADER_SIZE];
	size_t old = out->len;
	int r;

	r = check_out(type, stream, len);
	if (r < 0)
		return r;
	r = hc_buf_reserve(out, HC_PROTO_HEADER_SIZE + len);
	if (r < 0)
		return r;
	header(h, type, stream, len);
	r = hc_buf_append(out, h, sizeof(h));
	if (r >= 0 && len)
		r = hc_buf_append(out, payload, len);
	if (r < 0) {
		out->len = old;
		if (out->data)
			out->data[old] = 0;
	}
	return r;
}

int hc_proto_frame_write(int fd, uint8_t type, uint32_t stream, const void *payload, size_t len)
{
	uint8_t h[HC_PROTO_HEADER_SIZE];
	struct iovec iov[2];
	int r, n = 0;

	r = check_out(type, stream, len);
	if (r < 0)
		return r;
	header(h, type, stream, len);
	iov[0] = (struct iovec){h, sizeof(h)};
	iov[1] = (struct iovec){(void *)payload, len};
	while (n < 2) {
		ssize_t w;

		if (iov[n].iov_len == 0) {
			n++;
			continue;
		}
		w = writev(fd, iov + n, 2 - n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n < 2 && (size_t)w >= iov[n].iov_len) {
			w -= (ssize_t)iov[n].iov_len;
			iov[n].iov_len = 0;
			n++;
		}
		if (n < 2) {
			iov[n].iov_base = (uint8_t *)iov[n].iov_base + w;
			iov[n].iov_len -= (size_t)w;
		}
	}
	return 0;
}

int hc_proto_frame_read(int fd, struct hc_buf *in, struct hc_proto_frame *ret, size_t *consumed)
{
	for (;;) {
		ssize_t n;
		size_t want;
		int r;

		r = hc_proto_frame_parse((const uint8_t *)in->data, in->len, ret, consumed);
		if (r != 0)
			return r;
		/* Read at most what completes the header or the frame: never more than a frame
		 * ahead, so the buffer's cap only has to hold one frame. */
		if (in->len < HC_PROTO_HEADER_SIZE)
			want = HC_PROTO_HEADER_SIZE - in->len;
		else
			want = HC_PROTO_HEADER_SIZE + get_u32((const uint8_t *)in->data) - in->len;
		if (want > 65536)
			want = 65536;
		r = hc_buf_reserve(in, want);
		if (r < 0)
			return r;
		n = read(fd, in->data + in->len, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return in->len == 0 ? 0 : -EPIPE;
		in->len += (size_t)n;
		in->data[in->len] = 0;
	}
}

/* ---- typed payloads ----
 * Each encoder writes the header with a zero length, appends the payload, then patches the
 * length; on failure out is rolled back to where it was. */

static int begin(struct hc_buf *out, uint8_t type, uint32_t stream, size_t *ret_off)
{
	uint8_t h[HC_PROTO_HEADER_SIZE];

	if (stream > HC_PROTO_STREAM_MAX)
		return -EINVAL;
	*ret_off = out->len;
	header(h, type, stream, 0);
	return hc_buf_append(out, h, sizeof(h));
}

static int end(struct hc_buf *out, size_t off, int r)
{
	if (r >= 0) {
		size_t plen = out->len - off - HC_PROTO_HEADER_SIZE;

		r = check_out((uint8_t)out->data[off + 4], 0, plen);
		if (r >= 0) {
			put_u32((uint8_t *)out->data + off, (uint32_t)plen);
			return 0;
		}
	}
	out->len = off;
	if (out->data)
		out->data[off] = 0;
	return r;
}

int hc_proto_hello_encode(struct hc_buf *out, const struct hc_proto_hello *h)
{
	size_t off, n = strnlen(h->agent, sizeof(h->agent));
	int r;

	if (n > HELLO_AGENT_MAX || memchr(h->agent, 0, n))
		return -EINVAL;
	r = begin(out, HC_FRAME_HELLO, HC_PROTO_STREAM_VM, &off);
	if (r < 0)
		return r;
	r = buf_u32(out, h->version);
	if (r >= 0)
		r = buf_u64(out, h->boot_ns);
	if (r >= 0)
		r = buf_bytes(out, h->agent, n);
	return end(out, off, r);
}

int hc_proto_hello_decode(const struct hc_proto_frame *f, struct hc_proto_hello *ret)
{
	struct cur c = {f->payload, f->len};
	struct hc_proto_hello h = {0};
	const uint8_t *s;
	size_t n;

	if (f->type != HC_FRAME_HELLO || f->stream != HC_PROTO_STREAM_VM)
		return -EBADMSG;
	if (cur_u32(&c, &h.version) < 0 || cur_u64(&c, &h.boot_ns) < 0 ||
	    cur_str(&c, HELLO_AGENT_MAX, &s, &n) < 0 || c.left != 0)
		return -EBADMSG;
	memcpy(h.agent, s, n);
	*ret = h;
	return 0;
}

/* Known bits only; a detached command has no stdin, no result and no timeout (nobody would
 * hear of them). */
static bool exec_flags_valid(uint32_t flags, uint32_t timeout_ms)
{
	if (flags & ~(uint32_t)HC_EXEC_F_ALL)
		return false;
	if (flags & HC_EXEC_F_DETACH)
		return !(flags & (HC_EXEC_F_STDIN | HC_EXEC_F_RESULT | HC_EXEC_F_TTY)) &&
		       timeout_ms == 0;
	return true;
}

static bool str_ok(const char *s, size_t max)
{
	return s && strlen(s) <= max;
}

int hc_proto_exec_encode(struct hc_buf *out, uint32_t stream, const struct hc_proto_exec *e)
{
	size_t off;
	int r;

	if (e->argc < 1 || e->argc > HC_PROTO_MAX_ARGS || e->envc > HC_PROTO_MAX_ARGS ||
	    !exec_flags_valid(e->flags, e->timeout_ms))
		return -EINVAL;
	if (!str_ok(e->user ? e->user : "", HC_PROTO_MAX_STRING) ||
	    !str_ok(e->cwd ? e->cwd : "", HC_PROTO_MAX_STRING))
		return -EINVAL;
	for (size_t i = 0; i < e->argc; i++)
		if (!str_ok(e->argv[i], HC_PROTO_MAX_STRING))
			return -EINVAL;
	for (size_t i = 0; i < e->envc; i++)
		if (!str_ok(e->env[i], HC_PROTO_MAX_STRING) || !strchr(e->env[i], '=') ||
		    e->env[i][0] == '=')
			return -EINVAL;
	if (stream == HC_PROTO_STREAM_VM)
		return -EINVAL;
	r = begin(out, HC_FRAME_EXEC, stream, &off);
	if (r < 0)
		return r;
	r = buf_u32(out, e->flags);
	if (r >= 0)
		r = buf_u32(out, e->timeout_ms);
	if (r >= 0)
		r = buf_bytes(out, e->user ? e->user : "", e->user ? strlen(e->user) : 0);
	if (r >= 0)
		r = buf_bytes(out, e->cwd ? e->cwd : "", e->cwd ? strlen(e->cwd) : 0);
	if (r >= 0)
		r = buf_u32(out, (uint32_t)e->argc);
	for (size_t i = 0; r >= 0 && i < e->argc; i++)
		r = buf_bytes(out, e->argv[i], strlen(e->argv[i]));
	if (r >= 0)
		r = buf_u32(out, (uint32_t)e->envc);
	for (size_t i = 0; r >= 0 && i < e->envc; i++)
		r = buf_bytes(out, e->env[i], strlen(e->env[i]));
	if (r >= 0 && (e->flags & HC_EXEC_F_TTY))
		r = buf_u32(out, (uint32_t)e->rows << 16 | e->cols);
	return end(out, off, r);
}

void hc_proto_exec_free(struct hc_proto_exec *e)
{
	if (!e)
		return;
	free(e->user);
	free(e->cwd);
	for (size_t i = 0; e->argv && i < e->argc; i++)
		free(e->argv[i]);
	free(e->argv);
	for (size_t i = 0; e->env && i < e->envc; i++)
		free(e->env[i]);
	free(e->env);
	memset(e, 0, sizeof(*e));
}

/* A u32 count then that many strings, into a NULL-terminated array. */
static int cur_strv(struct cur *c, size_t min, char ***ret, size_t *ret_n)
{
	uint32_t n;
	char **v;

	if (cur_u32(c, &n) < 0 || n < min || n > HC_PROTO_MAX_ARGS)
		return -EBADMSG;
	/* Each string needs at least its 4-byte length: a cheap bound before allocating. */
	if ((size_t)n * 4 > c->left)
		return -EBADMSG;
	v = calloc((size_t)n + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	*ret = v;
	*ret_n = 0;
	for (uint32_t i = 0; i < n; i++) {
		int r = cur_strdup(c, HC_PROTO_MAX_STRING, &v[i]);

		if (r < 0)
			return r;
		*ret_n = i + 1;
	}
	return 0;
}

int hc_proto_exec_decode(const struct hc_proto_frame *f, struct hc_proto_exec *ret)
{
	struct cur c = {f->payload, f->len};
	struct hc_proto_exec e = {0};
	int r;

	if (f->type != HC_FRAME_EXEC || f->stream == HC_PROTO_STREAM_VM)
		return -EBADMSG;
	r = cur_u32(&c, &e.flags);
	if (r >= 0)
		r = cur_u32(&c, &e.timeout_ms);
	if (r >= 0 && !exec_flags_valid(e.flags, e.timeout_ms))
		r = -EBADMSG;
	if (r >= 0)
		r = cur_strdup(&c, HC_PROTO_MAX_STRING, &e.user);
	if (r >= 0)
		r = cur_strdup(&c, HC_PROTO_MAX_STRING, &e.cwd);
	if (r >= 0)
		r = cur_strv(&c, 1, &e.argv, &e.argc);
	if (r >= 0)
		r = cur_strv(&c, 0, &e.env, &e.envc);
	if (r >= 0 && (e.flags & HC_EXEC_F_TTY)) {
		uint32_t size = 0;

		r = cur_u32(&c, &size);
		e.rows = (uint16_t)(size >> 16);
		e.cols = (uint16_t)size;
	}
	if (r >= 0 && c.left != 0)
		r = -EBADMSG;
	for (size_t i = 0; r >= 0 && i < e.envc; i++)
		if (!strchr(e.env[i], '=') || e.env[i][0] == '=')
			r = -EBADMSG;
	if (r < 0) {
		hc_proto_exec_free(&e);
		return r;
	}
	*ret = e;
	return 0;
}

static bool exit_valid(const struct hc_proto_exit *x)
{
	if (x->timed_out > 1)
		return false;
	if (x->signal == 0)
		return x->code >= 0 && x->code <= 255;
	return x->signal > 0 && x->signal <= 64 && x->code == -1;
}

int hc_proto_exit_encode(struct hc_buf *out, uint32_t stream, const struct hc_proto_exit *x)
{
	size_t off;
	int r;

	if (!exit_valid(x))
		return -EINVAL;
	r = begin(out, HC_FRAME_EXIT, stream, &off);
	if (r < 0)
		return r;
	r = buf_u32(out, (uint32_t)x->code);
	if (r >= 0)
		r = buf_u32(out, (uint32_t)x->signal);
	if (r >= 0)
		r = buf_u8(out, x->timed_out);
	return end(out, off, r);
}

int hc_proto_exit_decode(const struct hc_proto_frame *f, struct hc_proto_exit *ret)
{
	struct cur c = {f->payload, f->len};
	struct hc_proto_exit x = {0};
	uint32_t code, sig;

	if (f->type != HC_FRAME_EXIT)
		return -EBADMSG;
	if (cur_u32(&c, &code) < 0 || cur_u32(&c, &sig) < 0 || cur_u8(&c, &x.timed_out) < 0 ||
	    c.left != 0)
		return -EBADMSG;
	x.code = (int32_t)code;
	x.signal = (int32_t)sig;
	if (!exit_valid(&x))
		return -EBADMSG;
	*ret = x;
	return 0;
}

static bool reason_valid(uint32_t reason)
{
	return reason >= HC_EXEC_ERR_NOT_FOUND && reason <= HC_ERR_MAX;
}

int hc_proto_error_encode(struct hc_buf *out, uint32_t stream, const struct hc_proto_error *e)
{
	size_t off, n = strnlen(e->message, sizeof(e->message));
	int r;

	/* An over-long message is cut: it is prose for a human, the reason is the contract. */
	if (n > ERROR_MESSAGE_MAX)
		n = ERROR_MESSAGE_MAX;
	if (!reason_valid(e->reason))
		return -EINVAL;
	r = begin(out, HC_FRAME_ERROR, stream, &off);
	if (r < 0)
		return r;
	r = buf_u32(out, e->reason);
	if (r >= 0)
		r = buf_bytes(out, e->message, n);
	return end(out, off, r);
}

int hc_proto_error_decode(const struct hc_proto_frame *f, struct hc_proto_error *ret)
{
	struct cur c = {f->payload, f->len};
	struct hc_proto_error e = {0};
	const uint8_t *s;
	size_t n;

	if (f->type != HC_FRAME_ERROR)
		return -EBADMSG;
	if (cur_u32(&c, &e.reason) < 0 || !reason_valid(e.reason) ||
	    cur_str(&c, ERROR_MESSAGE_MAX, &s, &n) < 0 || c.left != 0)
		return -EBADMSG;
	memcpy(e.message, s, n);
	*ret = e;
	return 0;
}

static bool signal_valid(int32_t sig)
{
	return sig >= 1 && sig <= 64;
}

int hc_proto_signal_encode(struct hc_buf *out, uint32_t stream, int32_t sig)
{
	size_t off;

	if (!signal_valid(sig))
		return -EINVAL;
	int r = begin(out, HC_FRAME_SIGNAL, stream, &off);
	if (r < 0)
		return r;
	return end(out, off, buf_u32(out, (uint32_t)sig));
}

int hc_proto_signal_decode(const struct hc_proto_frame *f, int32_t *ret)
{
	struct cur c = {f->payload, f->len};
	uint32_t sig;

	if (f->type != HC_FRAME_SIGNAL || cur_u32(&c, &sig) < 0 || c.left != 0 ||
	    !signal_valid((int32_t)sig))
		return -EBADMSG;
	*ret = (int32_t)sig;
	return 0;
}

static bool result_valid(uint8_t status, size_t len)
{
	switch (status) {
	case HC_RESULT_OK:
		return len <= HC_PROTO_MAX_RESULT;
	case HC_RESULT_TOO_LARGE:
	case HC_RESULT_UNREADABLE:
		return len <= RESULT_REASON_MAX;
	default:
		return false;
	}
}

int hc_proto_result_encode(struct hc_buf *out, uint32_t stream, const struct hc_proto_result *res)
{
	size_t off;
	int r;

	if (!result_valid(res->status, res->len))
		return -EINVAL;
	r = begin(out, HC_FRAME_RESULT, stream, &off);
	if (r < 0)
		return r;
	r = buf_u8(out, res->status);
	if (r >= 0 && res->len)
		r = hc_buf_append(out, res->data, res->len);
	return end(out, off, r);
}

int hc_proto_result_decode(const struct hc_proto_frame *f, struct hc_proto_result *ret)
{
	struct cur c = {f->payload, f->len};
	uint8_t status;

	if (f->type != HC_FRAME_RESULT || cur_u8(&c, &status) < 0 || !result_valid(status, c.left))
		return -EBADMSG;
	ret->status = status;
	ret->data = c.p;
	ret->len = c.left;
	return 0;
}

/* ---- v2: streams, flow control, files, reseed ---- */

static int u32_frame(struct hc_buf *out, uint8_t type, uint32_t stream, uint32_t v)
{
	size_t off;
	int r = begin(out, type, stream, &off);

	if (r < 0)
		return r;
	return end(out, off, buf_u32(out, v));
}

static int u32_decode(const struct hc_proto_frame *f, uint8_t type, uint32_t *ret)
{
	struct cur c = {f->payload, f->len};
	uint32_t v;

	if (f->type != type || f->stream == HC_PROTO_STREAM_VM || cur_u32(&c, &v) < 0 ||
	    c.left != 0)
		return -EBADMSG;
	*ret = v;
	return 0;
}

int hc_proto_started_encode(struct hc_buf *out, uint32_t stream, uint32_t pid)
{
	if (pid == 0 || pid > INT32_MAX || stream == HC_PROTO_STREAM_VM)
		return -EINVAL;
	return u32_frame(out, HC_FRAME_STARTED, stream, pid);
}

int hc_proto_started_decode(const struct hc_proto_frame *f, uint32_t *ret)
{
	uint32_t pid;

	if (u32_decode(f, HC_FRAME_STARTED, &pid) < 0 || pid == 0 || pid > INT32_MAX)
		return -EBADMSG;
	*ret = pid;
	return 0;
}

int hc_proto_window_encode(struct hc_buf *out, uint32_t stream, uint32_t n)
{
	if (n == 0 || n > HC_PROTO_WINDOW || stream == HC_PROTO_STREAM_VM)
		return -EINVAL;
	return u32_frame(out, HC_FRAME_WINDOW, stream, n);
}

int hc_proto_window_decode(const struct hc_proto_frame *f, uint32_t *ret)
{
	uint32_t n;

	if (u32_decode(f, HC_FRAME_WINDOW, &n) < 0 || n == 0 || n > HC_PROTO_WINDOW)
		return -EBADMSG;
	*ret = n;
	return 0;
}

int hc_proto_resize_encode(struct hc_buf *out, uint32_t stream, uint16_t rows, uint16_t cols)
{
	if (stream == HC_PROTO_STREAM_VM)
		return -EINVAL;
	return u32_frame(out, HC_FRAME_RESIZE, stream, (uint32_t)rows << 16 | cols);
}

int hc_proto_resize_decode(const struct hc_proto_frame *f, uint16_t *rows, uint16_t *cols)
{
	uint32_t v;

	if (u32_decode(f, HC_FRAME_RESIZE, &v) < 0 || f->stream == HC_PROTO_STREAM_VM)
		return -EBADMSG;
	*rows = (uint16_t)(v >> 16);
	*cols = (uint16_t)v;
	return 0;
}

bool hc_proto_hostname_valid(const char *name, size_t len)
{
	if (!name || len == 0 || len > HC_PROTO_HOSTNAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'))
			return false;
	}
	return true;
}

int hc_proto_hostname_encode(struct hc_buf *out, const char *name)
{
	size_t off, len = name ? strlen(name) : 0;
	int r;

	if (!hc_proto_hostname_valid(name, len))
		return -EINVAL;
	r = begin(out, HC_FRAME_HOSTNAME, HC_PROTO_STREAM_VM, &off);
	if (r < 0)
		return r;
	return end(out, off, hc_buf_append(out, name, len));
}

int hc_proto_hostname_decode(const struct hc_proto_frame *f, char *ret)
{
	if (f->type != HC_FRAME_HOSTNAME || f->stream != HC_PROTO_STREAM_VM ||
	    !hc_proto_hostname_valid((const char *)f->payload, f->len))
		return -EBADMSG;
	memcpy(ret, f->payload, f->len);
	ret[f->len] = '\0';
	return 0;
}

/* Components between '/' are never "", "." or "..". */
static bool components_ok(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;

		while (j < n && p[j] != '/')
			j++;
		if (j == i || (j - i == 1 && p[i] == '.') ||
		    (j - i == 2 && p[i] == '.' && p[i + 1] == '.'))
			return false;
		i = j + 1;
		if (j < n && i == n)
			return false; /* a trailing '/' */
	}
	return true;
}

static bool path_ok(const char *p, size_t n)
{
	if (n == 0 || n > HC_PROTO_MAX_PATH || p[0] != '/' || memchr(p, 0, n))
		return false;
	return n == 1 || components_ok(p + 1, n - 1);
}

static bool relpath_ok(const char *p, size_t n)
{
	if (n > HC_PROTO_MAX_PATH || memchr(p, 0, n))
		return false;
	return n == 0 || (p[0] != '/' && components_ok(p, n));
}

bool hc_proto_path_valid(const char *path)
{
	return path && path_ok(path, strnlen(path, HC_PROTO_MAX_PATH + 1));
}

bool hc_proto_relpath_valid(const char *relpath)
{
	return relpath && relpath_ok(relpath, strnlen(relpath, HC_PROTO_MAX_PATH + 1));
}

/* A path string of the payload into a fixed buffer of HC_PROTO_MAX_PATH + 1 bytes. */
static int cur_path(struct cur *c, bool absolute, char *ret)
{
	const uint8_t *s;
	size_t n;

	if (cur_str(c, HC_PROTO_MAX_PATH, &s, &n) < 0)
		return -EBADMSG;
	if (absolute ? !path_ok((const char *)s, n) : !relpath_ok((const char *)s, n))
		return -EBADMSG;
	memcpy(ret, s, n);
	ret[n] = 0;
	return 0;
}

int hc_proto_put_encode(struct hc_buf *out, uint32_t stream, const struct hc_proto_file_req *q)
{
	size_t off;
	int r;

	if (q->flags != 0 || !hc_proto_path_valid(q->path) || stream == HC_PROTO_STREAM_VM)
		return -EINVAL;
	r = begin(out, HC_FRAME_FILE_PUT, stream, &off);
	if (r < 0)
		return r;
	r = buf_u32(out, q->flags);
	if (r >= 0)
		r = buf_bytes(out, q->path, strlen(q->path));
	return end(out, off, r);
}

int hc_proto_put_decode(const struct hc_proto_frame *f, struct hc_proto_file_req *ret)
{
	struct cur c = {f->payload, f->len};

	if (f->type != HC_FRAME_FILE_PUT || f->stream == HC_PROTO_STREAM_VM ||
	    cur_u32(&c, &ret->flags) < 0 || ret->flags != 0 || cur_path(&c, true, ret->path) < 0 ||
	    c.left != 0)
		return -EBADMSG;
	return 0;
}

int hc_proto_get_encode(struct hc_buf *out, uint32_t stream, const char *path)
{
	size_t off;
	int r;

	if (!hc_proto_path_valid(path) || stream == HC_PROTO_STREAM_VM)
		return -EINVAL;
	r = begin(out, HC_FRAME_FILE_GET, stream, &off);
	if (r < 0)
		return r;
	return end(out, off, buf_bytes(out, path, strlen(path)));
}

int hc_proto_get_decode(const struct hc_proto_frame *f, struct hc_proto_file_req *ret)
{
	struct cur c = {f->payload, f->len};

	ret->flags = 0;
	if (f->type != HC_FRAME_FILE_GET || f->stream == HC_PROTO_STREAM_VM ||
	    cur_path(&c, true, ret->path) < 0 || c.left != 0)
		return -EBADMSG;
	return 0;
}

/* Fields that do not belong to the kind are zero / empty, so the encoding stays canonical. */
static bool entry_valid(uint8_t kind, uint32_t mode, size_t target_len, uint64_t size)
{
	switch (kind) {
	case HC_ENTRY_FILE:
		return (mode & ~07777u) == 0 && target_len == 0;
	case HC_ENTRY_DIR:
		return (mode & ~07777u) == 0 && target_len == 0 && size == 0;
	case HC_ENTRY_SYMLINK:
		return mode == 0 && target_len > 0 && size == 0;
	default:
		return false;
	}
}

int hc_proto_entry_encode(struct hc_buf *out, uint32_t stream, const struct hc_proto_entry *e)
{
	size_t off, tl = strnlen(e->target, sizeof(e->target));
	int r;

	if (tl > HC_PROTO_MAX_PATH || !hc_proto_relpath_valid(e->relpath) ||
	    !entry_valid(e->kind, e->mode, tl, e->size) || stream == HC_PROTO_STREAM_VM)
		return -EINVAL;
	r = begin(out, HC_FRAME_ENTRY, stream, &off);
	if (r < 0)
		return r;
	r = buf_u8(out, e->kind);
	if (r >= 0)
		r = buf_u32(out, e->mode);
	if (r >= 0)
		r = buf_bytes(out, e->relpath, strlen(e->relpath));
	if (r >= 0)
		r = buf_bytes(out, e->target, tl);
	if (r >= 0)
		r = buf_u64(out, e->size);
	return end(out, off, r);
}

int hc_proto_entry_decode(const struct hc_proto_frame *f, struct hc_proto_entry *ret)
{
	struct cur c = {f->payload, f->len};
	const uint8_t *t;
	size_t tl;

	if (f->type != HC_FRAME_ENTRY || f->stream == HC_PROTO_STREAM_VM ||
	    cur_u8(&c, &ret->kind) < 0 || cur_u32(&c, &ret->mode) < 0 ||
	    cur_path(&c, false, ret->relpath) < 0 || cur_str(&c, HC_PROTO_MAX_PATH, &t, &tl) < 0 ||
	    cur_u64(&c, &ret->size) < 0 || c.left != 0 ||
	    !entry_valid(ret->kind, ret->mode, tl, ret->size))
		return -EBADMSG;
	memcpy(ret->target, t, tl);
	ret->target[tl] = 0;
	return 0;
}

int hc_proto_reseed_encode(struct hc_buf *out, const struct hc_proto_reseed *q)
{
	size_t off;
	int r;

	/* No seed at all: the clock only (a migrated VM keeps its randomness). */
	if (q->seed_len && (q->seed_len < HC_PROTO_SEED_MIN || q->seed_len > HC_PROTO_SEED_MAX))
		return -EINVAL;
	r = begin(out, HC_FRAME_RESEED, HC_PROTO_STREAM_VM, &off);
	if (r < 0)
		return r;
	r = buf_u64(out, q->realtime_ns);
	if (r >= 0)
		r = hc_buf_append(out, q->seed, q->seed_len);
	return end(out, off, r);
}

int hc_proto_reseed_decode(const struct hc_proto_frame *f, struct hc_proto_reseed *ret)
{
	struct cur c = {f->payload, f->len};
	uint64_t ns;

	if (f->type != HC_FRAME_RESEED || f->stream != HC_PROTO_STREAM_VM || cur_u64(&c, &ns) < 0 ||
	    (c.left && (c.left < HC_PROTO_SEED_MIN || c.left > HC_PROTO_SEED_MAX)))
		return -EBADMSG;
	ret->realtime_ns = ns;
	ret->seed = c.p;
	ret->seed_len = c.left;
	return 0;
}

/* ---- v3: the network of a restored copy ---- */

static bool netconf_valid(const struct hc_proto_netconf *n)
{
	uint32_t a = ntohl(n->addr), g = ntohl(n->gateway), mask;
	static const uint8_t zero[6];

	if (n->prefix < 1 || n->prefix > 30 || n->mtu < 68)
		return false;
	mask = 0xffffffffu << (32 - n->prefix);
	/* A host address of its subnet (not the network, not the broadcast), the gateway
	 * another one of the same subnet. */
	if ((a & mask) != (g & mask) || a == g || (a & ~mask) == 0 || (a & ~mask) == ~mask ||
	    (g & ~mask) == 0 || (g & ~mask) == ~mask)
		return false;
	return !(n->mac[0] & 1) && memcmp(n->mac, zero, sizeof(zero)) != 0;
}

int hc_proto_netconf_encode(struct hc_buf *out, const struct hc_proto_netconf *n)
{
	size_t off;
	int r;

	if (!netconf_valid(n))
		return -EINVAL;
	r = begin(out, HC_FRAME_NETCONF, HC_PROTO_STREAM_VM, &off);
	if (r < 0)
		return r;
	r = buf_u32(out, ntohl(n->addr));
	if (r >= 0)
		r = buf_u8(out, n->prefix);
	if (r >= 0)
		r = buf_u32(out, ntohl(n->gateway));
	if (r >= 0)
		r = buf_u32(out, ntohl(n->dns));
	if (r >= 0)
		r = buf_u8(out, (uint8_t)(n->mtu >> 8));
	if (r >= 0)
		r = buf_u8(out, (uint8_t)n->mtu);
	if (r >= 0)
		r = hc_buf_append(out, n->mac, sizeof(n->mac));
	return end(out, off, r);
}

int hc_proto_netconf_decode(const struct hc_proto_frame *f, struct hc_proto_netconf *ret)
{
	struct cur c = {f->payload, f->len};
	struct hc_proto_netconf n = {0};
	uint32_t a, g, d;
	uint8_t hi, lo;

	if (f->type != HC_FRAME_NETCONF || f->stream != HC_PROTO_STREAM_VM || cur_u32(&c, &a) < 0 ||
	    cur_u8(&c, &n.prefix) < 0 || cur_u32(&c, &g) < 0 || cur_u32(&c, &d) < 0 ||
	    cur_u8(&c, &hi) < 0 || cur_u8(&c, &lo) < 0 || c.left != sizeof(n.mac))
		return -EBADMSG;
	n.addr = htonl(a);
	n.gateway = htonl(g);
	n.dns = htonl(d);
	n.mtu = (uint16_t)(hi << 8 | lo);
	memcpy(n.mac, c.p, sizeof(n.mac));
	if (!netconf_valid(&n))
		return -EBADMSG;
	*ret = n;
	return 0;
}
