/* SPDX-License-Identifier: MIT */
/* The wire protocol (docs/protocol.md): round trips, bounds, and rejection of malformed frames. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/path.h"
#include "proto/boot.h"
#include "proto/proto.h"
#include "proto/tree.h"
#include "test.h"

/* The encoders take char * (the decoder allocates); literals are only read. */
#define S(x) ((char *)(x))

static int parse_one(const struct hc_buf *b, struct hc_proto_frame *f)
{
	size_t used = 0;
	int r = hc_proto_frame_parse((const uint8_t *)b->data, b->len, f, &used);

	if (r == 1 && used != b->len)
		return -1000;
	return r;
}

TEST(header_layout)
{
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_proto_frame f;
	size_t used;

	ASSERT_EQ_INT(hc_proto_frame_append(&b, HC_FRAME_STDOUT, 0x01020304, "abc", 3), 0);
	ASSERT_EQ_INT(b.len, 15);
	const uint8_t want[] = {0, 0, 0, 3, HC_FRAME_STDOUT, 0, 0, 0, 1, 2, 3, 4, 'a', 'b', 'c'};
	ASSERT_TRUE(memcmp(b.data, want, sizeof(want)) == 0);
	/* Every prefix is "need more", the whole is one frame. */
	for (size_t i = 0; i < b.len; i++)
		ASSERT_EQ_INT(hc_proto_frame_parse((uint8_t *)b.data, i, &f, &used), 0);
	ASSERT_EQ_INT(hc_proto_frame_parse((uint8_t *)b.data, b.len, &f, &used), 1);
	ASSERT_EQ_INT(used, 15);
	ASSERT_EQ_INT(f.type, HC_FRAME_STDOUT);
	ASSERT_EQ_INT(f.stream, 0x01020304);
	ASSERT_EQ_INT(f.len, 3);
	ASSERT_TRUE(memcmp(f.payload, "abc", 3) == 0);
	hc_buf_free(&b);
}

TEST(header_rejects)
{
	struct hc_proto_frame f;
	size_t used;
	uint8_t h[HC_PROTO_HEADER_SIZE] = {0, 0, 0, 0, HC_FRAME_SHUTDOWN, 0, 0, 0, 0, 0, 0, 0};

	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), 1);
	h[4] = 0; /* unknown type */
	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), -EBADMSG);
	h[4] = HC_FRAME_TYPE_MAX + 1;
	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), -EBADMSG);
	h[4] = HC_FRAME_SHUTDOWN;
	h[5] = 1; /* flags */
	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), -EBADMSG);
	h[5] = 0;
	h[7] = 1; /* reserved */
	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), -EBADMSG);
	h[7] = 0;
	h[8] = 0x80; /* stream ids stop at 2^31 - 1 */
	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), -EBADMSG);
	h[8] = 0x7f, h[9] = h[10] = h[11] = 0xff;
	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), 1);
	ASSERT_EQ_INT(f.stream, HC_PROTO_STREAM_MAX);
	h[8] = h[9] = h[10] = h[11] = 0;
	h[3] = 1; /* shutdown carries nothing */
	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), -EBADMSG);
	/* A data frame over HC_PROTO_MAX_DATA is refused from its header alone. */
	h[4] = HC_FRAME_STDOUT;
	h[0] = 0, h[1] = 1, h[2] = 0, h[3] = 1;
	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), -EBADMSG);
	h[4] = HC_FRAME_EXEC;
	h[0] = 0xff;
	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), -EBADMSG);

	struct hc_buf b = HC_BUF_INIT(0);
	static uint8_t big[HC_PROTO_MAX_DATA + 1];
	ASSERT_EQ_INT(hc_proto_frame_append(&b, HC_FRAME_STDOUT, 1, big, sizeof(big)), -E2BIG);
	ASSERT_EQ_INT(b.len, 0);
	ASSERT_EQ_INT(hc_proto_frame_append(&b, HC_FRAME_STDOUT, 1, big, HC_PROTO_MAX_DATA), 0);
	ASSERT_EQ_INT(hc_proto_frame_append(&b, 99, 1, "", 0), -EINVAL);
	ASSERT_EQ_INT(hc_proto_frame_append(&b, HC_FRAME_END, 1u << 31, "", 0), -EINVAL);
	hc_buf_free(&b);
}

TEST(hello_roundtrip)
{
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_proto_hello h = {.version = HC_PROTO_VERSION, .boot_ns = 0x123456789abcdefULL}, d;
	struct hc_proto_frame f;

	snprintf(h.agent, sizeof(h.agent), "hotcell-init 0.1");
	ASSERT_EQ_INT(hc_proto_hello_encode(&b, &h), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(hc_proto_hello_decode(&f, &d), 0);
	ASSERT_EQ_INT(d.version, HC_PROTO_VERSION);
	ASSERT_TRUE(d.boot_ns == 0x123456789abcdefULL);
	ASSERT_EQ_STR(d.agent, "hotcell-init 0.1");
	/* Trailing garbage and a wrong type are refused. */
	struct hc_proto_frame g = f;
	g.len = f.len - 1;
	ASSERT_EQ_INT(hc_proto_hello_decode(&g, &d), -EBADMSG);
	g.type = HC_FRAME_EXIT;
	ASSERT_EQ_INT(hc_proto_hello_decode(&g, &d), -EBADMSG);
	hc_buf_free(&b);
}

TEST(exec_roundtrip)
{
	struct hc_buf b = HC_BUF_INIT(0);
	char *argv[] = {S("sh"), S("-c"), S("printf '%s' \"$X\""), S(""), NULL};
	char *env[] = {S("PATH=/bin"), S("X=a=b"), S("EMPTY="), NULL};
	struct hc_proto_exec e = {.flags = HC_EXEC_F_STDIN | HC_EXEC_F_CREATE_WORKDIR,
				  .timeout_ms = 1234,
				  .user = S("nobody:nogroup"),
				  .cwd = S("/work dir"),
				  .argv = argv,
				  .argc = 4,
				  .env = env,
				  .envc = 3},
			     d = {0};
	struct hc_proto_frame f;

	ASSERT_EQ_INT(hc_proto_exec_encode(&b, 7, &e), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(f.type, HC_FRAME_EXEC);
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), 0);
	ASSERT_EQ_INT(d.flags, e.flags);
	ASSERT_EQ_INT(d.timeout_ms, 1234);
	ASSERT_EQ_STR(d.user, "nobody:nogroup");
	ASSERT_EQ_STR(d.cwd, "/work dir");
	ASSERT_EQ_INT(d.argc, 4);
	ASSERT_EQ_STR(d.argv[2], "printf '%s' \"$X\"");
	ASSERT_EQ_STR(d.argv[3], "");
	ASSERT_TRUE(d.argv[4] == NULL);
	ASSERT_EQ_INT(d.envc, 3);
	ASSERT_EQ_STR(d.env[1], "X=a=b");
	ASSERT_TRUE(d.env[3] == NULL);
	hc_proto_exec_free(&d);
	hc_proto_exec_free(&d); /* idempotent */

	/* Every truncation of the payload is refused without leaking (ASan checks). */
	for (uint32_t n = 0; n < f.len; n++) {
		struct hc_proto_frame g = f;
		g.len = n;
		ASSERT_EQ_INT(hc_proto_exec_decode(&g, &d), -EBADMSG);
	}
	hc_buf_free(&b);
}

TEST(exec_rejects)
{
	struct hc_buf b = HC_BUF_INIT(0);
	char *argv[] = {S("true"), NULL};
	char *badenv[] = {S("NOEQUALS"), NULL};
	struct hc_proto_exec e = {.argv = argv, .argc = 0}, d;
	struct hc_proto_frame f;

	ASSERT_EQ_INT(hc_proto_exec_encode(&b, 7, &e), -EINVAL); /* argc 0 */
	e.argc = 1;
	e.flags = 1u << 7;
	ASSERT_EQ_INT(hc_proto_exec_encode(&b, 7, &e), -EINVAL); /* unknown flag */
	e.flags = 0;
	e.env = badenv;
	e.envc = 1;
	ASSERT_EQ_INT(hc_proto_exec_encode(&b, 7, &e), -EINVAL);
	ASSERT_EQ_INT(b.len, 0);
	e.env = NULL;
	e.envc = 0;
	ASSERT_EQ_INT(hc_proto_exec_encode(&b, 7, &e), 0); /* NULL user and cwd mean "" */
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), 0);
	ASSERT_EQ_STR(d.user, "");
	ASSERT_EQ_STR(d.cwd, "");
	hc_proto_exec_free(&d);

	/* Hand-made payloads: a NUL inside a string, an unknown flag, a huge count. */
	uint8_t p[64];
	size_t n = 0;
#define U32(v)                                                                                     \
	(p[n++] = (uint8_t)((v) >> 24), p[n++] = (uint8_t)((v) >> 16),                             \
	 p[n++] = (uint8_t)((v) >> 8), p[n++] = (uint8_t)(v))
	U32(0), U32(0), U32(0), U32(0), U32(1), U32(3);
	p[n++] = 'a', p[n++] = 0, p[n++] = 'b';
	U32(0);
	f = (struct hc_proto_frame){
		.type = HC_FRAME_EXEC, .stream = 1, .len = (uint32_t)n, .payload = p};
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), -EBADMSG);
	p[n - 6] = 'x';
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), 0);
	ASSERT_EQ_STR(d.argv[0], "axb");
	hc_proto_exec_free(&d);
	p[3] = 0x80; /* unknown flag */
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), -EBADMSG);
	p[3] = 0;
	p[16] = 0xff; /* argc far beyond the payload */
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), -EBADMSG);
	hc_buf_free(&b);
#undef U32
}

TEST(exit_error_signal_result)
{
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_proto_frame f;
	size_t used;

	struct hc_proto_exit x = {.code = 7}, dx;
	ASSERT_EQ_INT(hc_proto_exit_encode(&b, 7, &x), 0);
	struct hc_proto_exit sx = {.code = -1, .signal = 9, .timed_out = 1};
	ASSERT_EQ_INT(hc_proto_exit_encode(&b, 7, &sx), 0);
	struct hc_proto_exit bad = {.code = 3, .signal = 9};
	ASSERT_EQ_INT(hc_proto_exit_encode(&b, 7, &bad), -EINVAL);
	bad = (struct hc_proto_exit){.code = 256};
	ASSERT_EQ_INT(hc_proto_exit_encode(&b, 7, &bad), -EINVAL);

	struct hc_proto_error e = {.reason = HC_EXEC_ERR_NOT_FOUND}, de;
	snprintf(e.message, sizeof(e.message), "executable file `nope` not found in $PATH");
	ASSERT_EQ_INT(hc_proto_error_encode(&b, 7, &e), 0);
	e.reason = 99;
	ASSERT_EQ_INT(hc_proto_error_encode(&b, 7, &e), -EINVAL);
	ASSERT_EQ_INT(hc_proto_signal_encode(&b, 7, 15), 0);
	ASSERT_EQ_INT(hc_proto_signal_encode(&b, 7, 0), -EINVAL);
	ASSERT_EQ_INT(hc_proto_signal_encode(&b, 7, 65), -EINVAL);
	struct hc_proto_result res = {.status = HC_RESULT_OK,
				      .data = (const uint8_t *)"{}",
				      .len = 2},
			       dr;
	ASSERT_EQ_INT(hc_proto_result_encode(&b, 7, &res), 0);
	res.status = 7;
	ASSERT_EQ_INT(hc_proto_result_encode(&b, 7, &res), -EINVAL);

	/* Now read them back in order from one stream. */
	const uint8_t *p = (const uint8_t *)b.data;
	size_t left = b.len;
	ASSERT_EQ_INT(hc_proto_frame_parse(p, left, &f, &used), 1);
	ASSERT_EQ_INT(hc_proto_exit_decode(&f, &dx), 0);
	ASSERT_TRUE(dx.code == 7 && dx.signal == 0 && dx.timed_out == 0);
	p += used, left -= used;
	ASSERT_EQ_INT(hc_proto_frame_parse(p, left, &f, &used), 1);
	ASSERT_EQ_INT(hc_proto_exit_decode(&f, &dx), 0);
	ASSERT_TRUE(dx.code == -1 && dx.signal == 9 && dx.timed_out == 1);
	p += used, left -= used;
	ASSERT_EQ_INT(hc_proto_frame_parse(p, left, &f, &used), 1);
	ASSERT_EQ_INT(hc_proto_error_decode(&f, &de), 0);
	ASSERT_EQ_INT(de.reason, HC_EXEC_ERR_NOT_FOUND);
	ASSERT_EQ_STR(de.message, "executable file `nope` not found in $PATH");
	p += used, left -= used;
	ASSERT_EQ_INT(hc_proto_frame_parse(p, left, &f, &used), 1);
	int32_t sig;
	ASSERT_EQ_INT(hc_proto_signal_decode(&f, &sig), 0);
	ASSERT_EQ_INT(sig, 15);
	p += used, left -= used;
	ASSERT_EQ_INT(hc_proto_frame_parse(p, left, &f, &used), 1);
	ASSERT_EQ_INT(hc_proto_result_decode(&f, &dr), 0);
	ASSERT_EQ_INT(dr.status, 0);
	ASSERT_EQ_INT(dr.len, 2);
	ASSERT_TRUE(memcmp(dr.data, "{}", 2) == 0);
	p += used, left -= used;
	ASSERT_EQ_INT(left, 0);
	hc_buf_free(&b);
}

TEST(result_limits)
{
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_proto_frame f;
	uint8_t *big = calloc(1, HC_PROTO_MAX_RESULT + 1);
	struct hc_proto_result r = {.status = HC_RESULT_OK,
				    .data = big,
				    .len = HC_PROTO_MAX_RESULT},
			       d;

	ASSERT_TRUE(big != NULL);
	ASSERT_EQ_INT(hc_proto_result_encode(&b, 7, &r), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(hc_proto_result_decode(&f, &d), 0);
	ASSERT_EQ_INT(d.len, HC_PROTO_MAX_RESULT);
	r.len++;
	ASSERT_EQ_INT(hc_proto_result_encode(&b, 7, &r), -EINVAL);
	r.status = HC_RESULT_TOO_LARGE;
	r.data = (const uint8_t *)"2000000 bytes";
	r.len = 13;
	hc_buf_reset(&b);
	ASSERT_EQ_INT(hc_proto_result_encode(&b, 7, &r), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(hc_proto_result_decode(&f, &d), 0);
	ASSERT_EQ_INT(d.status, HC_RESULT_TOO_LARGE);
	free(big);
	hc_buf_free(&b);
}

TEST(frame_write_and_read_over_socket)
{
	int sv[2];
	struct hc_buf in = HC_BUF_INIT(HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD);
	struct hc_proto_frame f;
	size_t used;

	ASSERT_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ASSERT_EQ_INT(hc_proto_frame_write(sv[0], HC_FRAME_STDERR, 3, "err\0bin", 7), 0);
	ASSERT_EQ_INT(hc_proto_frame_write(sv[0], HC_FRAME_SHUTDOWN, 0, NULL, 0), 0);
	ASSERT_EQ_INT(hc_proto_frame_write(sv[0], HC_FRAME_STDERR, 3, "x", 1 + HC_PROTO_MAX_DATA),
		      -E2BIG);
	close(sv[0]);
	ASSERT_EQ_INT(hc_proto_frame_read(sv[1], &in, &f, &used), 1);
	ASSERT_EQ_INT(f.type, HC_FRAME_STDERR);
	ASSERT_EQ_INT(f.len, 7);
	ASSERT_EQ_INT(f.stream, 3);
	ASSERT_TRUE(memcmp(f.payload, "err\0bin", 7) == 0);
	hc_buf_consume(&in, used);
	ASSERT_EQ_INT(hc_proto_frame_read(sv[1], &in, &f, &used), 1);
	ASSERT_EQ_INT(f.type, HC_FRAME_SHUTDOWN);
	hc_buf_consume(&in, used);
	ASSERT_EQ_INT(hc_proto_frame_read(sv[1], &in, &f, &used), 0); /* clean EOF */
	close(sv[1]);

	/* EOF inside a frame. */
	ASSERT_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	const uint8_t partial[] = {0, 0, 0, 5, HC_FRAME_STDIN, 0, 0, 0, 0, 0, 0, 1, 'a'};
	ASSERT_EQ_INT(write(sv[0], partial, sizeof(partial)), sizeof(partial));
	close(sv[0]);
	hc_buf_reset(&in);
	ASSERT_EQ_INT(hc_proto_frame_read(sv[1], &in, &f, &used), -EPIPE);
	close(sv[1]);
	hc_buf_free(&in);
}

TEST(outq_settle_tracks_frame_starts)
{
	struct hc_buf q = HC_BUF_INIT(0);
	size_t off = 0, boundary = 0, one;

	/* Two frames of 3 and 5 payload bytes. */
	ASSERT_EQ_INT(hc_proto_frame_append(&q, HC_FRAME_STDIN, 1, "abc", 3), 0);
	one = q.len;
	ASSERT_EQ_INT(hc_proto_frame_append(&q, HC_FRAME_STDIN, 1, "defgh", 5), 0);

	/* Half of the first frame written: the first frame is begun, the second is not. */
	off = one / 2;
	hc_proto_outq_settle(&q, &off, &boundary, 1 << 20);
	ASSERT_EQ_INT(boundary, one);
	ASSERT_EQ_INT(off, one / 2);
	/* Exactly the first frame written: the boundary stays at the second's start. */
	off = one;
	hc_proto_outq_settle(&q, &off, &boundary, 1 << 20);
	ASSERT_EQ_INT(boundary, one);
	/* One byte into the second frame with a small soft limit: compacted, offsets shifted. */
	off = one + 1;
	hc_proto_outq_settle(&q, &off, &boundary, 4);
	ASSERT_EQ_INT(off, 0);
	ASSERT_EQ_INT(boundary, q.len);
	ASSERT_EQ_INT(q.len, HC_PROTO_HEADER_SIZE + 5 - 1);
	/* All written: emptied. */
	off = q.len;
	hc_proto_outq_settle(&q, &off, &boundary, 4);
	ASSERT_EQ_INT(q.len, 0);
	ASSERT_EQ_INT(off, 0);
	ASSERT_EQ_INT(boundary, 0);
	hc_buf_free(&q);
}

TEST(type_names)
{
	ASSERT_EQ_STR(hc_proto_type_name(HC_FRAME_HELLO), "hello");
	ASSERT_EQ_STR(hc_proto_type_name(HC_FRAME_SHUTDOWN), "shutdown");
	ASSERT_EQ_STR(hc_proto_type_name(0), "unknown");
	ASSERT_EQ_STR(hc_proto_type_name(200), "unknown");
}

TEST(volume_key_roundtrip)
{
	struct hc_buf b = HC_BUF_INIT(0);
	char tag[64], path[4096];
	bool ro;

	ASSERT_EQ_INT(hc_boot_volume_append(&b, 0, "/data", false), 0);
	ASSERT_EQ_INT(hc_boot_volume_append(&b, 1, "/a b:c\"d%e/\xc3\xa9", true), 0);
	ASSERT_EQ_STR(b.data,
		      " hotcell.vol=hcvol0:/data hotcell.vol=hcvol1:/a%20b%3Ac%22d%25e/%C3%A9:ro");
	ASSERT_EQ_INT(hc_boot_volume_append(&b, 2, "relative", false), -EINVAL);
	ASSERT_EQ_INT(hc_boot_volume_append(&b, 2, "/x/../etc", false), -EINVAL);
	ASSERT_EQ_INT(hc_boot_volume_parse("hcvol1:/a%20b%3Ac%22d%25e/%C3%A9:ro", tag, sizeof(tag),
					   path, sizeof(path), &ro),
		      0);
	ASSERT_EQ_STR(tag, "hcvol1");
	ASSERT_EQ_STR(path, "/a b:c\"d%e/\xc3\xa9");
	ASSERT_TRUE(ro);
	ASSERT_EQ_INT(
		hc_boot_volume_parse("hcvol0:/data:rw", tag, sizeof(tag), path, sizeof(path), &ro),
		0);
	ASSERT_EQ_STR(path, "/data");
	ASSERT_TRUE(!ro);
	ASSERT_EQ_INT(hc_boot_volume_parse("hcvol0:/ro", tag, sizeof(tag), path, sizeof(path), &ro),
		      0);
	ASSERT_EQ_STR(path, "/ro");
	const char *bad[] = {
		"nocolon",	  ":/x",	   "hcvol0:rel",
		"hcvol0:/a/../b", "hcvol0:/a%00b", "hcvol0:/a%2",
		"hcvol0:/a%zz",	  "bad tag:/x",	   "a234567890123456789012345678901234567:/x",
		"hcvol0:"};
	for (size_t i = 0; i < HC_ARRAY_SIZE(bad); i++)
		if (hc_boot_volume_parse(bad[i], tag, sizeof(tag), path, sizeof(path), &ro) !=
		    -EINVAL)
			FAILF("accepted %s", bad[i]);
	hc_buf_free(&b);
}

/* Every truncation and every extension of a valid payload is refused. */
static int decode_any(const struct hc_proto_frame *f)
{
	static struct hc_proto_file_req q;
	static struct hc_proto_entry e;
	struct hc_proto_reseed rs;
	struct hc_proto_netconf nc;
	uint32_t v;
	uint16_t r16, c16;

	switch (f->type) {
	case HC_FRAME_STARTED:
		return hc_proto_started_decode(f, &v);
	case HC_FRAME_WINDOW:
		return hc_proto_window_decode(f, &v);
	case HC_FRAME_FILE_PUT:
		return hc_proto_put_decode(f, &q);
	case HC_FRAME_FILE_GET:
		return hc_proto_get_decode(f, &q);
	case HC_FRAME_ENTRY:
		return hc_proto_entry_decode(f, &e);
	case HC_FRAME_RESEED:
		return hc_proto_reseed_decode(f, &rs);
	case HC_FRAME_NETCONF:
		return hc_proto_netconf_decode(f, &nc);
	case HC_FRAME_RESIZE:
		return hc_proto_resize_decode(f, &r16, &c16);
	case HC_FRAME_HOSTNAME: {
		char name[HC_PROTO_HOSTNAME_MAX + 1];

		return hc_proto_hostname_decode(f, name);
	}
	case HC_FRAME_EXEC: {
		struct hc_proto_exec x;
		int r = hc_proto_exec_decode(f, &x);

		if (r == 0)
			hc_proto_exec_free(&x);
		return r;
	}
	default:
		return -1000;
	}
}

static bool all_cuts_refused(const struct hc_proto_frame *f, size_t min_ok)
{
	uint8_t longer[HC_PROTO_HEADER_SIZE + 9000];

	for (uint32_t n = 0; n < f->len; n++) {
		struct hc_proto_frame g = *f;
		g.len = n;
		if (n < min_ok && decode_any(&g) != -EBADMSG)
			return false;
	}
	if (f->len + 1 > sizeof(longer))
		return true;
	memcpy(longer, f->payload, f->len);
	longer[f->len] = 0;
	struct hc_proto_frame g = *f;
	g.payload = longer;
	g.len = f->len + 1;
	/* RESEED's seed fills the rest: one byte more is a longer seed, not trailing junk. */
	return f->type == HC_FRAME_RESEED || decode_any(&g) == -EBADMSG;
}

TEST(started_window_roundtrip)
{
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_proto_frame f;
	uint32_t v;

	ASSERT_EQ_INT(hc_proto_started_encode(&b, 5, 4242), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(f.stream, 5);
	ASSERT_EQ_INT(hc_proto_started_decode(&f, &v), 0);
	ASSERT_EQ_INT(v, 4242);
	ASSERT_TRUE(all_cuts_refused(&f, f.len));
	f.stream = 0; /* STARTED belongs to a request's stream */
	ASSERT_EQ_INT(hc_proto_started_decode(&f, &v), -EBADMSG);
	ASSERT_EQ_INT(hc_proto_started_encode(&b, 5, 0), -EINVAL);
	ASSERT_EQ_INT(hc_proto_started_encode(&b, 5, 1u << 31), -EINVAL);
	ASSERT_EQ_INT(hc_proto_started_encode(&b, 0, 1), -EINVAL);
	const uint8_t zero[4] = {0};
	f = (struct hc_proto_frame){
		.type = HC_FRAME_STARTED, .stream = 1, .len = 4, .payload = zero};
	ASSERT_EQ_INT(hc_proto_started_decode(&f, &v), -EBADMSG);

	hc_buf_reset(&b);
	ASSERT_EQ_INT(hc_proto_window_encode(&b, 9, HC_PROTO_WINDOW), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(hc_proto_window_decode(&f, &v), 0);
	ASSERT_EQ_INT(v, HC_PROTO_WINDOW);
	ASSERT_TRUE(all_cuts_refused(&f, f.len));
	ASSERT_EQ_INT(hc_proto_window_encode(&b, 9, 0), -EINVAL);
	ASSERT_EQ_INT(hc_proto_window_encode(&b, 9, HC_PROTO_WINDOW + 1), -EINVAL);
	ASSERT_EQ_INT(hc_proto_window_encode(&b, 0, 1), -EINVAL);
	const uint8_t over[4] = {0, 0x10, 0, 1};
	f = (struct hc_proto_frame){
		.type = HC_FRAME_WINDOW, .stream = 1, .len = 4, .payload = over};
	ASSERT_EQ_INT(hc_proto_window_decode(&f, &v), -EBADMSG);
	f.payload = zero;
	ASSERT_EQ_INT(hc_proto_window_decode(&f, &v), -EBADMSG);
	f.type = HC_FRAME_STARTED; /* the wrong type */
	ASSERT_EQ_INT(hc_proto_window_decode(&f, &v), -EBADMSG);
	hc_buf_free(&b);
}

TEST(exec_v2_flags)
{
	struct hc_buf b = HC_BUF_INIT(0);
	char *argv[] = {S("sleep"), S("9"), NULL};
	struct hc_proto_exec e = {.flags = HC_EXEC_F_DETACH, .argv = argv, .argc = 2}, d;
	struct hc_proto_frame f;

	ASSERT_EQ_INT(hc_proto_exec_encode(&b, 3, &e), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), 0);
	ASSERT_EQ_INT(d.flags, HC_EXEC_F_DETACH);
	hc_proto_exec_free(&d);
	/* A detached command has no stdin, no result, no timeout. */
	uint8_t *flags = (uint8_t *)b.data + HC_PROTO_HEADER_SIZE + 3;
	*flags = HC_EXEC_F_DETACH | HC_EXEC_F_STDIN;
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), -EBADMSG);
	*flags = HC_EXEC_F_DETACH | HC_EXEC_F_RESULT;
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), -EBADMSG);
	*flags = HC_EXEC_F_DETACH;
	((uint8_t *)b.data)[HC_PROTO_HEADER_SIZE + 7] = 1; /* timeout_ms 1 */
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), -EBADMSG);
	*flags = HC_EXEC_F_RESULT | HC_EXEC_F_STDIN; /* with a timeout: fine without DETACH */
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), 0);
	hc_proto_exec_free(&d);
	*flags = 1u << 5;
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), -EBADMSG);
	*flags = 0;
	f.stream = 0; /* an exec needs its own stream */
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), -EBADMSG);
	e.flags = HC_EXEC_F_DETACH | HC_EXEC_F_STDIN;
	ASSERT_EQ_INT(hc_proto_exec_encode(&b, 3, &e), -EINVAL);
	e.flags = HC_EXEC_F_DETACH;
	e.timeout_ms = 5;
	ASSERT_EQ_INT(hc_proto_exec_encode(&b, 3, &e), -EINVAL);
	e.timeout_ms = 0;
	ASSERT_EQ_INT(hc_proto_exec_encode(&b, 0, &e), -EINVAL);
	hc_buf_free(&b);
}

TEST(paths)
{
	const char *good[] = {"/", "/a", "/a/b.c", "/tmp/x y/z", "/..a/b..", "/a/.b"};
	const char *bad[] = {"",      "a",     "a/b", "/a/../b", "/..",
			     "/a/..", "/a//b", "/a/", "/./a",	 "/a/."};
	const char *rgood[] = {"", "a", "a/b", ".x", "x..", "a b/c"};
	const char *rbad[] = {"/a", "a/", "a//b", "..", "a/..", ".", "./a", "a/./b"};

	for (size_t i = 0; i < HC_ARRAY_SIZE(good); i++)
		if (!hc_proto_path_valid(good[i]))
			FAILF("refused %s", good[i]);
	for (size_t i = 0; i < HC_ARRAY_SIZE(bad); i++)
		if (hc_proto_path_valid(bad[i]))
			FAILF("accepted %s", bad[i]);
	for (size_t i = 0; i < HC_ARRAY_SIZE(rgood); i++)
		if (!hc_proto_relpath_valid(rgood[i]))
			FAILF("refused relative %s", rgood[i]);
	for (size_t i = 0; i < HC_ARRAY_SIZE(rbad); i++)
		if (hc_proto_relpath_valid(rbad[i]))
			FAILF("accepted relative %s", rbad[i]);
	static char longp[HC_PROTO_MAX_PATH + 2];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	ASSERT_TRUE(!hc_proto_path_valid(longp));
	longp[HC_PROTO_MAX_PATH] = 0;
	ASSERT_TRUE(hc_proto_path_valid(longp));
}

TEST(put_get_roundtrip)
{
	struct hc_buf b = HC_BUF_INIT(0);
	static struct hc_proto_file_req q = {.path = "/tmp/dest dir"}, d;
	struct hc_proto_frame f;

	ASSERT_EQ_INT(hc_proto_put_encode(&b, 11, &q), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(f.type, HC_FRAME_FILE_PUT);
	ASSERT_EQ_INT(hc_proto_put_decode(&f, &d), 0);
	ASSERT_EQ_STR(d.path, "/tmp/dest dir");
	ASSERT_TRUE(all_cuts_refused(&f, f.len));
	((uint8_t *)b.data)[HC_PROTO_HEADER_SIZE + 3] = 1; /* no flag is defined */
	ASSERT_EQ_INT(hc_proto_put_decode(&f, &d), -EBADMSG);
	q.flags = 1;
	ASSERT_EQ_INT(hc_proto_put_encode(&b, 11, &q), -EINVAL);
	q.flags = 0;
	ASSERT_EQ_INT(hc_proto_put_encode(&b, 0, &q), -EINVAL);
	snprintf(q.path, sizeof(q.path), "/a/../etc");
	ASSERT_EQ_INT(hc_proto_put_encode(&b, 11, &q), -EINVAL);

	hc_buf_reset(&b);
	ASSERT_EQ_INT(hc_proto_get_encode(&b, 12, "/etc/hostname"), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(hc_proto_get_decode(&f, &d), 0);
	ASSERT_EQ_STR(d.path, "/etc/hostname");
	ASSERT_TRUE(all_cuts_refused(&f, f.len));
	ASSERT_EQ_INT(hc_proto_get_encode(&b, 12, "relative"), -EINVAL);
	ASSERT_EQ_INT(hc_proto_get_encode(&b, 0, "/x"), -EINVAL);
	/* Hand-made: a path with a NUL, a relative one, one over the limit. */
	uint8_t p[16] = {0, 0, 0, 3, '/', 0, 'b'};
	f = (struct hc_proto_frame){.type = HC_FRAME_FILE_GET, .stream = 1, .len = 7, .payload = p};
	ASSERT_EQ_INT(hc_proto_get_decode(&f, &d), -EBADMSG);
	p[4] = 'a', p[5] = '/';
	ASSERT_EQ_INT(hc_proto_get_decode(&f, &d), -EBADMSG);
	p[0] = 0xff;
	ASSERT_EQ_INT(hc_proto_get_decode(&f, &d), -EBADMSG);
	hc_buf_free(&b);
}

TEST(entry_roundtrip_and_rules)
{
	struct hc_buf b = HC_BUF_INIT(0);
	static struct hc_proto_entry e, d;
	struct hc_proto_frame f;

	e = (struct hc_proto_entry){.kind = HC_ENTRY_FILE, .mode = 04755, .size = 1ull << 40};
	snprintf(e.relpath, sizeof(e.relpath), "dir/file.bin");
	ASSERT_EQ_INT(hc_proto_entry_encode(&b, 4, &e), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(hc_proto_entry_decode(&f, &d), 0);
	ASSERT_TRUE(d.kind == HC_ENTRY_FILE && d.mode == 04755 && d.size == 1ull << 40);
	ASSERT_EQ_STR(d.relpath, "dir/file.bin");
	ASSERT_EQ_STR(d.target, "");
	ASSERT_TRUE(all_cuts_refused(&f, f.len));

	hc_buf_reset(&b);
	e = (struct hc_proto_entry){.kind = HC_ENTRY_SYMLINK};
	snprintf(e.relpath, sizeof(e.relpath), "l");
	snprintf(e.target, sizeof(e.target), "../../etc/passwd"); /* a target is just data */
	ASSERT_EQ_INT(hc_proto_entry_encode(&b, 4, &e), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(hc_proto_entry_decode(&f, &d), 0);
	ASSERT_EQ_STR(d.target, "../../etc/passwd");

	hc_buf_reset(&b);
	e = (struct hc_proto_entry){.kind = HC_ENTRY_DIR, .mode = 0555};
	ASSERT_EQ_INT(hc_proto_entry_encode(&b, 4, &e), 0); /* "" is the top */
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(hc_proto_entry_decode(&f, &d), 0);
	ASSERT_EQ_STR(d.relpath, "");

	/* Fields that do not belong to the kind, bad kinds, modes and paths. */
	struct hc_proto_entry bad[] = {
		{.kind = 0},
		{.kind = 4},
		{.kind = HC_ENTRY_FILE, .mode = 010644},
		{.kind = HC_ENTRY_FILE, .target = "x"},
		{.kind = HC_ENTRY_DIR, .size = 1},
		{.kind = HC_ENTRY_DIR, .target = "x"},
		{.kind = HC_ENTRY_SYMLINK},
		{.kind = HC_ENTRY_SYMLINK, .target = "x", .mode = 0777},
		{.kind = HC_ENTRY_SYMLINK, .target = "x", .size = 3},
		{.kind = HC_ENTRY_FILE, .relpath = "../x"},
		{.kind = HC_ENTRY_FILE, .relpath = "/x"},
		{.kind = HC_ENTRY_FILE, .relpath = "a//x"},
		{.kind = HC_ENTRY_FILE, .relpath = "a/"},
	};
	for (size_t i = 0; i < HC_ARRAY_SIZE(bad); i++)
		if (hc_proto_entry_encode(&b, 4, &bad[i]) != -EINVAL)
			FAILF("encoded bad entry %zu", i);
	ASSERT_EQ_INT(hc_proto_entry_encode(&b, 0, &e), -EINVAL);
	/* The decoder checks the same: patch a valid frame. */
	hc_buf_reset(&b);
	e = (struct hc_proto_entry){.kind = HC_ENTRY_FILE, .mode = 0644, .size = 3};
	snprintf(e.relpath, sizeof(e.relpath), "ab");
	ASSERT_EQ_INT(hc_proto_entry_encode(&b, 4, &e), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	uint8_t *pl = (uint8_t *)b.data + HC_PROTO_HEADER_SIZE;
	pl[0] = 9;
	ASSERT_EQ_INT(hc_proto_entry_decode(&f, &d), -EBADMSG);
	pl[0] = HC_ENTRY_DIR; /* a directory with a size */
	ASSERT_EQ_INT(hc_proto_entry_decode(&f, &d), -EBADMSG);
	pl[0] = HC_ENTRY_FILE;
	pl[2] = 0x10; /* mode beyond 07777 */
	ASSERT_EQ_INT(hc_proto_entry_decode(&f, &d), -EBADMSG);
	pl[2] = 0;
	pl[9] = '.', pl[10] = '.'; /* relpath ".." */
	ASSERT_EQ_INT(hc_proto_entry_decode(&f, &d), -EBADMSG);
	pl[9] = '/';
	ASSERT_EQ_INT(hc_proto_entry_decode(&f, &d), -EBADMSG);
	pl[9] = 'a', pl[10] = 0;
	ASSERT_EQ_INT(hc_proto_entry_decode(&f, &d), -EBADMSG);
	pl[10] = 'b';
	ASSERT_EQ_INT(hc_proto_entry_decode(&f, &d), 0);
	f.stream = 0;
	ASSERT_EQ_INT(hc_proto_entry_decode(&f, &d), -EBADMSG);
	hc_buf_free(&b);
}

TEST(reseed_roundtrip)
{
	struct hc_buf b = HC_BUF_INIT(0);
	uint8_t seed[HC_PROTO_SEED_MAX + 1];
	struct hc_proto_reseed q = {.realtime_ns = 1700000000123456789ull, .seed = seed}, d;
	struct hc_proto_frame f;

	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)i;
	q.seed_len = HC_PROTO_SEED_MIN;
	ASSERT_EQ_INT(hc_proto_reseed_encode(&b, &q), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(f.stream, 0);
	ASSERT_EQ_INT(hc_proto_reseed_decode(&f, &d), 0);
	ASSERT_TRUE(d.realtime_ns == q.realtime_ns && d.seed_len == 32 &&
		    memcmp(d.seed, seed, 32) == 0);
	/* Cut anywhere but right after the clock (a clock-only RESEED), it is refused. */
	for (uint32_t n = 0; n < f.len; n++) {
		struct hc_proto_frame g = f;

		g.len = n;
		ASSERT_EQ_INT(hc_proto_reseed_decode(&g, &d), n == 8 ? 0 : -EBADMSG);
	}
	f.stream = 1;
	ASSERT_EQ_INT(hc_proto_reseed_decode(&f, &d), -EBADMSG);
	/* No seed: the clock only (a migrated VM keeps its randomness). */
	q.seed_len = 0;
	hc_buf_reset(&b);
	ASSERT_EQ_INT(hc_proto_reseed_encode(&b, &q), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(hc_proto_reseed_decode(&f, &d), 0);
	ASSERT_TRUE(d.realtime_ns == q.realtime_ns && d.seed_len == 0);
	q.seed_len = HC_PROTO_SEED_MAX;
	ASSERT_EQ_INT(hc_proto_reseed_encode(&b, &q), 0);
	q.seed_len = HC_PROTO_SEED_MIN - 1;
	ASSERT_EQ_INT(hc_proto_reseed_encode(&b, &q), -EINVAL);
	q.seed_len = HC_PROTO_SEED_MAX + 1;
	ASSERT_EQ_INT(hc_proto_reseed_encode(&b, &q), -EINVAL);
	/* The header bounds it too: a longer RESEED is refused before its payload is read. */
	uint8_t h[HC_PROTO_HEADER_SIZE] = {0, 0, 1, 9, HC_FRAME_RESEED};
	size_t used;
	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), -EBADMSG);
	hc_buf_free(&b);
}

TEST(hostname_roundtrip)
{
	struct hc_buf b = HC_BUF_INIT(0);
	char name[HC_PROTO_HOSTNAME_MAX + 1], long_name[HC_PROTO_HOSTNAME_MAX + 2];
	struct hc_proto_frame f;

	ASSERT_EQ_INT(hc_proto_hostname_encode(&b, "warm-1.example"), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(f.stream, 0);
	ASSERT_EQ_INT(hc_proto_hostname_decode(&f, name), 0);
	ASSERT_EQ_STR(name, "warm-1.example");
	ASSERT_TRUE(all_cuts_refused(&f, 1));
	f.stream = 2;
	ASSERT_EQ_INT(hc_proto_hostname_decode(&f, name), -EBADMSG);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	ASSERT_EQ_INT(hc_proto_hostname_encode(&b, long_name), -EINVAL);
	long_name[HC_PROTO_HOSTNAME_MAX] = 0;
	ASSERT_EQ_INT(hc_proto_hostname_encode(&b, long_name), 0);
	ASSERT_EQ_INT(hc_proto_hostname_encode(&b, ""), -EINVAL);
	ASSERT_EQ_INT(hc_proto_hostname_encode(&b, "a b"), -EINVAL);
	ASSERT_EQ_INT(hc_proto_hostname_encode(&b, "a/b"), -EINVAL);
	hc_buf_free(&b);
}

/* v3's NETCONF: the restored copy's network; a payload that would misconfigure eth0 is refused
 * on both ends. */
TEST(netconf_roundtrip_and_rules)
{
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_proto_netconf n = {.prefix = 30, .mtu = 1500, .mac = {2, 0x68, 0x63, 0, 0, 4}}, d,
				bad;
	struct hc_proto_frame f;
	uint8_t *pl;

	n.addr = htonl(0x0af10006);
	n.gateway = n.dns = htonl(0x0af10005);
	ASSERT_EQ_INT(hc_proto_netconf_encode(&b, &n), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(f.stream, 0);
	ASSERT_EQ_INT(f.len, 21);
	ASSERT_EQ_INT(hc_proto_netconf_decode(&f, &d), 0);
	ASSERT_TRUE(memcmp(&d, &n, sizeof(d)) == 0);
	/* Network order on the wire: 10.241.0.6 is 0a f1 00 06. */
	pl = (uint8_t *)b.data + HC_PROTO_HEADER_SIZE;
	ASSERT_TRUE(pl[0] == 10 && pl[1] == 0xf1 && pl[3] == 6 && pl[4] == 30);
	ASSERT_TRUE(all_cuts_refused(&f, f.len));
	f.stream = 3;
	ASSERT_EQ_INT(hc_proto_netconf_decode(&f, &d), -EBADMSG);
	f.stream = 0;
	/* Each rule, on the encoder and (through a patched payload) on the decoder. */
	bad = n;
	bad.mac[0] = 1; /* multicast */
	ASSERT_EQ_INT(hc_proto_netconf_encode(&b, &bad), -EINVAL);
	pl[15] = 1;
	ASSERT_EQ_INT(hc_proto_netconf_decode(&f, &d), -EBADMSG);
	pl[15] = 2;
	bad = n;
	memset(bad.mac, 0, sizeof(bad.mac));
	ASSERT_EQ_INT(hc_proto_netconf_encode(&b, &bad), -EINVAL);
	bad = n;
	bad.gateway = htonl(0x0af10009); /* another /30 */
	ASSERT_EQ_INT(hc_proto_netconf_encode(&b, &bad), -EINVAL);
	pl[8] = 9;
	ASSERT_EQ_INT(hc_proto_netconf_decode(&f, &d), -EBADMSG);
	pl[8] = 5;
	bad = n;
	bad.gateway = bad.addr;
	ASSERT_EQ_INT(hc_proto_netconf_encode(&b, &bad), -EINVAL);
	bad = n;
	bad.addr = htonl(0x0af10007); /* the /30's broadcast */
	ASSERT_EQ_INT(hc_proto_netconf_encode(&b, &bad), -EINVAL);
	bad = n;
	bad.prefix = 31;
	ASSERT_EQ_INT(hc_proto_netconf_encode(&b, &bad), -EINVAL);
	pl[4] = 0;
	ASSERT_EQ_INT(hc_proto_netconf_decode(&f, &d), -EBADMSG);
	pl[4] = 30;
	bad = n;
	bad.mtu = 67;
	ASSERT_EQ_INT(hc_proto_netconf_encode(&b, &bad), -EINVAL);
	ASSERT_EQ_INT(hc_proto_netconf_decode(&f, &d), 0);
	ASSERT_EQ_STR(hc_proto_type_name(HC_FRAME_NETCONF), "netconf");
	/* The header bounds it: 22 bytes are refused before the payload is read. */
	uint8_t h[HC_PROTO_HEADER_SIZE] = {0, 0, 0, 22, HC_FRAME_NETCONF};
	size_t used;
	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), -EBADMSG);
	hc_buf_free(&b);
}

TEST(new_types_header_limits)
{
	/* Types without payload refuse one; data frames stop at 64 KiB. */
	const uint8_t empty[] = {HC_FRAME_CANCEL, HC_FRAME_END, HC_FRAME_DONE};
	struct hc_proto_frame f;
	size_t used;

	for (size_t i = 0; i < sizeof(empty); i++) {
		uint8_t h[HC_PROTO_HEADER_SIZE] = {0, 0, 0, 1, empty[i], 0, 0, 0, 0, 0, 0, 1};
		ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), -EBADMSG);
		h[3] = 0;
		ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), 1);
	}
	uint8_t h[HC_PROTO_HEADER_SIZE] = {0, 1, 0, 1, HC_FRAME_FILE_DATA, 0, 0, 0, 0, 0, 0, 1};
	ASSERT_EQ_INT(hc_proto_frame_parse(h, sizeof(h), &f, &used), -EBADMSG);
	ASSERT_TRUE(hc_proto_type_is_data(HC_FRAME_FILE_DATA) &&
		    hc_proto_type_is_data(HC_FRAME_STDIN));
	ASSERT_TRUE(!hc_proto_type_is_data(HC_FRAME_ENTRY) &&
		    !hc_proto_type_is_data(HC_FRAME_WINDOW));
	ASSERT_EQ_STR(hc_proto_type_name(HC_FRAME_RESEED), "reseed");
	ASSERT_EQ_STR(hc_proto_type_name(HC_FRAME_FILE_DATA), "file-data");
	/* Error reasons of v2 are known; beyond them not. */
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_proto_error e = {.reason = HC_ERR_CANCELLED, .message = "cancelled"};
	ASSERT_EQ_INT(hc_proto_error_encode(&b, 1, &e), 0);
	e.reason = HC_ERR_MAX + 1;
	ASSERT_EQ_INT(hc_proto_error_encode(&b, 1, &e), -EINVAL);
	hc_buf_free(&b);
}

/* ---- the tree writer and reader (src/proto/tree.c) on local files ---- */

static char tree_tmp[] = "/tmp/hc-proto-tree.XXXXXX";

static struct hc_proto_entry ent(uint8_t kind, const char *rel, uint32_t mode, uint64_t size,
				 const char *target)
{
	struct hc_proto_entry e = {.kind = kind, .mode = mode, .size = size};

	snprintf(e.relpath, sizeof(e.relpath), "%s", rel);
	snprintf(e.target, sizeof(e.target), "%s", target ? target : "");
	return e;
}

TEST(tree_writer_never_follows_its_symlinks)
{
	struct hc_tree_writer *w;
	struct hc_proto_error err = {0};
	char dest[4200], outside[4200];
	struct hc_proto_entry e;

	snprintf(dest, sizeof(dest), "%s/w1", tree_tmp);
	snprintf(outside, sizeof(outside), "%s/outside", tree_tmp);
	ASSERT_EQ_INT(mkdir(outside, 0755), 0);
	ASSERT_EQ_INT(hc_tree_writer_new(dest, &w, &err), 0);
	e = ent(HC_ENTRY_DIR, "", 0755, 0, NULL);
	ASSERT_EQ_INT(hc_tree_writer_entry(w, &e, &err), 0);
	e = ent(HC_ENTRY_SYMLINK, "l", 0, 0, outside);
	ASSERT_EQ_INT(hc_tree_writer_entry(w, &e, &err), 0);
	/* A file "through" the symlink it just made: refused, nothing lands outside. */
	e = ent(HC_ENTRY_FILE, "l/evil", 0644, 1, NULL);
	ASSERT_ERR(hc_tree_writer_entry(w, &e, &err));
	ASSERT_EQ_INT(err.reason, HC_EXEC_ERR_INVALID);
	hc_tree_writer_free(w);
	char p[4300];
	snprintf(p, sizeof(p), "%s/evil", outside);
	ASSERT_TRUE(access(p, F_OK) < 0);
	/* Freed before END: the whole new tree is gone. */
	ASSERT_TRUE(access(dest, F_OK) < 0);
}

TEST(tree_writer_sequence_rules)
{
	struct hc_tree_writer *w;
	struct hc_proto_error err = {0};
	char dest[4200];
	struct hc_proto_entry e;

	snprintf(dest, sizeof(dest), "%s/w2", tree_tmp);
	ASSERT_EQ_INT(hc_tree_writer_new(dest, &w, &err), 0);
	ASSERT_ERR(hc_tree_writer_end(w, &err)); /* END before the top */
	e = ent(HC_ENTRY_FILE, "x", 0644, 1, NULL);
	ASSERT_ERR(hc_tree_writer_entry(w, &e, &err)); /* not the top first */
	e = ent(HC_ENTRY_FILE, "", 0640, 4, NULL);
	ASSERT_EQ_INT(hc_tree_writer_entry(w, &e, &err), 0);
	ASSERT_EQ_INT(hc_tree_writer_pending(w), 4);
	ASSERT_ERR(hc_tree_writer_end(w, &err));			       /* inside the file */
	ASSERT_ERR(hc_tree_writer_data(w, (const uint8_t *)"12345", 5, &err)); /* beyond */
	ASSERT_EQ_INT(hc_tree_writer_data(w, (const uint8_t *)"ab", 2, &err), 0);
	ASSERT_TRUE(access(dest, F_OK) < 0); /* not in place before it is complete */
	ASSERT_EQ_INT(hc_tree_writer_data(w, (const uint8_t *)"cd", 2, &err), 0);
	ASSERT_EQ_INT(access(dest, F_OK), 0);
	e = ent(HC_ENTRY_FILE, "y", 0644, 1, NULL);
	ASSERT_ERR(hc_tree_writer_entry(w, &e, &err)); /* below a file top */
	ASSERT_EQ_INT(hc_tree_writer_end(w, &err), 0);
	hc_tree_writer_free(w);
	struct stat st;
	ASSERT_EQ_INT(stat(dest, &st), 0);
	ASSERT_TRUE(st.st_size == 4 && (st.st_mode & 07777) == 0640);
	unlink(dest);
	/* A missing parent is named. */
	snprintf(dest, sizeof(dest), "%s/nope/x", tree_tmp);
	ASSERT_ERR(hc_tree_writer_new(dest, &w, &err));
	ASSERT_EQ_INT(err.reason, HC_ERR_NOENT);
	ASSERT_TRUE(strstr(err.message, "/nope: no such file or directory") != NULL);
}

TEST(tree_reader_walks)
{
	struct hc_tree_reader *r;
	struct hc_proto_error err = {0};
	static struct hc_proto_entry e;
	char src[4200], p[4300];
	uint8_t buf[16];
	int files = 0, dirs = 0, links = 0, n;

	snprintf(src, sizeof(src), "%s/r", tree_tmp);
	ASSERT_EQ_INT(mkdir(src, 0750), 0);
	snprintf(p, sizeof(p), "%s/f", src);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0 && write(fd, "hello", 5) == 5);
	close(fd);
	snprintf(p, sizeof(p), "%s/l", src);
	ASSERT_EQ_INT(symlink("f", p), 0);
	snprintf(p, sizeof(p), "%s/d", src);
	ASSERT_EQ_INT(mkdir(p, 0700), 0);
	ASSERT_EQ_INT(hc_tree_reader_new(src, &r, &err), 0);
	while ((n = hc_tree_reader_next(r, &e, &err)) == 1) {
		if (e.kind == HC_ENTRY_FILE) {
			files++;
			ASSERT_ERR(hc_tree_reader_next(r, &e, &err)); /* its content first */
			ASSERT_EQ_INT(hc_tree_reader_read(r, buf, 3, &err), 3);
			ASSERT_EQ_INT(hc_tree_reader_read(r, buf + 3, sizeof(buf), &err), 2);
			ASSERT_EQ_INT(hc_tree_reader_read(r, buf, sizeof(buf), &err), 0);
			ASSERT_TRUE(memcmp(buf, "hello", 5) == 0);
		} else if (e.kind == HC_ENTRY_DIR) {
			dirs++;
		} else {
			links++;
			ASSERT_EQ_STR(e.target, "f");
		}
	}
	ASSERT_EQ_INT(n, 0);
	ASSERT_TRUE(files == 1 && dirs == 2 && links == 1);
	hc_tree_reader_free(r);
	snprintf(p, sizeof(p), "%s/none", tree_tmp);
	ASSERT_ERR(hc_tree_reader_new(p, &r, &err));
	ASSERT_EQ_INT(err.reason, HC_ERR_NOENT);
	/* Only files and directories at the top. */
	ASSERT_EQ_INT(hc_tree_reader_new("/dev/null", &r, &err), 0);
	ASSERT_ERR(hc_tree_reader_next(r, &e, &err));
	ASSERT_TRUE(strstr(err.message, "not a regular file or directory") != NULL);
	hc_tree_reader_free(r);
}

TEST(exec_tty_and_resize)
{
	struct hc_buf b = HC_BUF_INIT(0);
	char *argv[] = {S("sh"), NULL};
	struct hc_proto_exec e = {.flags = HC_EXEC_F_TTY | HC_EXEC_F_STDIN,
				  .argv = argv,
				  .argc = 1,
				  .rows = 50,
				  .cols = 132},
			     d;
	struct hc_proto_frame f;
	uint16_t rows = 0, cols = 0;

	ASSERT_EQ_INT(hc_proto_exec_encode(&b, 4, &e), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), 0);
	ASSERT_EQ_INT(d.flags, HC_EXEC_F_TTY | HC_EXEC_F_STDIN);
	ASSERT_EQ_INT(d.rows, 50);
	ASSERT_EQ_INT(d.cols, 132);
	hc_proto_exec_free(&d);
	/* The size is the last 4 bytes: without them (or with more) the frame is malformed. */
	ASSERT_TRUE(all_cuts_refused(&f, f.len));
	/* Without TTY the same size bytes are trailing junk. */
	uint8_t *flags = (uint8_t *)b.data + HC_PROTO_HEADER_SIZE + 3;
	*flags = HC_EXEC_F_STDIN;
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), -EBADMSG);
	/* A detached command has nobody at its terminal. */
	*flags = HC_EXEC_F_TTY | HC_EXEC_F_DETACH;
	ASSERT_EQ_INT(hc_proto_exec_decode(&f, &d), -EBADMSG);
	e.flags = HC_EXEC_F_TTY | HC_EXEC_F_DETACH;
	ASSERT_EQ_INT(hc_proto_exec_encode(&b, 4, &e), -EINVAL);

	hc_buf_reset(&b);
	ASSERT_EQ_INT(hc_proto_resize_encode(&b, 4, 0xffff, 1), 0);
	ASSERT_EQ_INT(parse_one(&b, &f), 1);
	ASSERT_EQ_INT(f.type, HC_FRAME_RESIZE);
	ASSERT_EQ_INT(f.len, 4);
	ASSERT_EQ_INT(hc_proto_resize_decode(&f, &rows, &cols), 0);
	ASSERT_EQ_INT(rows, 0xffff);
	ASSERT_EQ_INT(cols, 1);
	ASSERT_TRUE(all_cuts_refused(&f, 4));
	f.stream = 0;
	ASSERT_EQ_INT(hc_proto_resize_decode(&f, &rows, &cols), -EBADMSG);
	ASSERT_EQ_INT(hc_proto_resize_encode(&b, 0, 1, 1), -EINVAL);
	ASSERT_EQ_STR(hc_proto_type_name(HC_FRAME_RESIZE), "resize");
	ASSERT_EQ_INT(hc_proto_type_max_payload(HC_FRAME_RESIZE), 4);
	hc_buf_free(&b);
}

int main(void)
{
	RUN(header_layout);
	RUN(header_rejects);
	RUN(hello_roundtrip);
	RUN(exec_roundtrip);
	RUN(exec_rejects);
	RUN(exit_error_signal_result);
	RUN(result_limits);
	RUN(frame_write_and_read_over_socket);
	RUN(outq_settle_tracks_frame_starts);
	RUN(type_names);
	RUN(volume_key_roundtrip);
	RUN(started_window_roundtrip);
	RUN(exec_v2_flags);
	RUN(exec_tty_and_resize);
	RUN(paths);
	RUN(put_get_roundtrip);
	RUN(entry_roundtrip_and_rules);
	RUN(reseed_roundtrip);
	RUN(hostname_roundtrip);
	RUN(netconf_roundtrip_and_rules);
	RUN(new_types_header_limits);
	if (!mkdtemp(tree_tmp)) {
		printf("FAIL: setup: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	RUN(tree_writer_never_follows_its_symlinks);
	RUN(tree_writer_sequence_rules);
	RUN(tree_reader_walks);
	struct hc_error herr = {0};
	if (hc_path_rm_rf(tree_tmp, &herr) < 0)
		fprintf(stderr, "cannot remove %s: %s\n", tree_tmp, herr.message);
	return test_summary();
}
