/* SPDX-License-Identifier: MIT */
/* The wire protocol (docs/protocol.md): round trips, bounds, and rejection of malformed frames. */
#include <fcntl.h>
#include <sys/socket.h>

#include "proto/boot.h"
#include "proto/proto.h"
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
	RUN(type_names);
	RUN(volume_key_roundtrip);
	return test_summary();
}
