/* SPDX-License-Identifier: MIT */
/*
 * The migration stream's parser (lib/migrate.h): a stream built here parses whole and byte by
 * byte with the same result; every malformation is refused (bad magic, records out of order,
 * an extent beyond its part or going backwards, a part the meta record does not list, a
 * corrupt digest, bytes after the end, a cut stream).
 */
#include <openssl/evp.h>

#include "lib/migrate.h"
#include "test.h"

struct got {
	char names[8][128];
	uint64_t sizes[8];
	uint8_t data[8][256];
	size_t n_parts;
	int ends;
	bool meta;
};

static int s_meta(void *ctx, json_t *m, struct hc_error *err)
{
	((struct got *)ctx)->meta = true;
	return 0;
}

static int s_begin(void *ctx, const char *name, uint64_t size, struct hc_error *err)
{
	struct got *g = ctx;

	snprintf(g->names[g->n_parts], sizeof(g->names[0]), "%s", name);
	g->sizes[g->n_parts++] = size;
	return 0;
}

static int s_data(void *ctx, uint64_t off, const void *p, size_t n, struct hc_error *err)
{
	struct got *g = ctx;

	if (off + n > g->sizes[g->n_parts - 1] || off + n > 256)
		return hc_error_set(err, -ERANGE, "data beyond the part");
	memcpy(g->data[g->n_parts - 1] + off, p, n);
	return 0;
}

static int s_end(void *ctx, struct hc_error *err)
{
	((struct got *)ctx)->ends++;
	return 0;
}

static const struct hc_mig_sink sink = {s_meta, s_begin, s_data, NULL, s_end};

/* The encoder, as the source writes it (lib/migrate.c), for a part of extents. */
struct ext {
	uint64_t off;
	const char *data;
};

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void rec(struct hc_buf *b, uint8_t type, const void *p, size_t n)
{
	uint8_t h[HC_MIG_HEADER];

	hc_mig_header(h, type, n);
	if (hc_buf_append(b, h, sizeof(h)) < 0 || (n && hc_buf_append(b, p, n) < 0))
		abort();
}

static void part(struct hc_buf *b, const char *name, uint64_t size, const struct ext *e, size_t n,
		 bool corrupt)
{
	char hdr[256];
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	uint8_t md[32], pre[16];
	unsigned mdlen;

	snprintf(hdr, sizeof(hdr), "{\"name\":\"%s\",\"size\":%llu}", name,
		 (unsigned long long)size);
	rec(b, HC_MIG_PART, hdr, strlen(hdr));
	EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
	for (size_t i = 0; i < n; i++) {
		uint8_t x[8 + 256];
		size_t len = strlen(e[i].data);

		put_u64(x, e[i].off);
		memcpy(x + 8, e[i].data, len);
		rec(b, HC_MIG_EXTENT, x, 8 + len);
		put_u64(pre, e[i].off);
		put_u64(pre + 8, len);
		EVP_DigestUpdate(sha, pre, 16);
		EVP_DigestUpdate(sha, e[i].data, len);
	}
	EVP_DigestFinal_ex(sha, md, &mdlen);
	EVP_MD_CTX_free(sha);
	if (corrupt)
		md[5] ^= 1;
	rec(b, HC_MIG_PART_END, md, 32);
}

static void meta(struct hc_buf *b, const char *parts)
{
	char m[512];

	snprintf(m, sizeof(m), "{\"format\":1,\"snapshot\":{},\"parts\":%s}", parts);
	if (hc_buf_append(b, HC_MIG_MAGIC, HC_MIG_MAGIC_LEN) < 0)
		abort();
	rec(b, HC_MIG_META, m, strlen(m));
}

static const struct ext mem_ext[] = {{0, "abc"}, {100, "xyz"}};
static const struct ext st_ext[] = {{0, "state"}};

static void good_stream(struct hc_buf *b)
{
	meta(b, "[{\"name\":\"memory\",\"size\":200},{\"name\":\"qemu-state\",\"size\":5}]");
	part(b, "memory", 200, mem_ext, 2, false);
	part(b, "qemu-state", 5, st_ext, 1, false);
	rec(b, HC_MIG_END, NULL, 0);
}

/* Parses b whole (step 0) or in steps of `step` bytes: the return of feed + finish. */
static int parse(const struct hc_buf *b, size_t step, struct got *g, struct hc_error *err)
{
	struct hc_mig_parser p;
	int r = 0;

	memset(g, 0, sizeof(*g));
	hc_mig_parser_init(&p, &sink, g);
	for (size_t off = 0; r >= 0 && off < b->len;) {
		size_t k = step && step < b->len - off ? step : b->len - off;

		r = hc_mig_parser_feed(&p, b->data + off, k, err);
		off += k;
	}
	if (r >= 0)
		r = hc_mig_parser_finish(&p, err);
	hc_mig_parser_free(&p);
	return r;
}

TEST(parses_whole_and_byte_by_byte)
{
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_error err = {0};
	struct got g;

	good_stream(&b);
	for (size_t step = 0; step < 3; step++) {
		ASSERT_OK(parse(&b, step, &g, &err), &err);
		ASSERT_TRUE(g.meta);
		ASSERT_EQ_INT(g.n_parts, 2);
		ASSERT_EQ_STR(g.names[0], "memory");
		ASSERT_EQ_INT(g.sizes[0], 200);
		ASSERT_TRUE(memcmp(g.data[0], "abc", 3) == 0 &&
			    memcmp(g.data[0] + 100, "xyz", 3) == 0);
		ASSERT_TRUE(memcmp(g.data[1], "state", 5) == 0);
		ASSERT_EQ_INT(g.ends, 1);
	}
	hc_buf_free(&b);
}

TEST(corrupt_digest_refused)
{
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_error err = {0};
	struct got g;

	meta(&b, "[{\"name\":\"memory\",\"size\":200}]");
	part(&b, "memory", 200, mem_ext, 2, true);
	rec(&b, HC_MIG_END, NULL, 0);
	ASSERT_EQ_INT(parse(&b, 0, &g, &err), -EILSEQ);
	ASSERT_TRUE(strstr(err.message, "memory") != NULL);
	ASSERT_EQ_INT(g.ends, 0);
	hc_buf_free(&b);
}

TEST(cut_anywhere_is_refused)
{
	struct hc_buf b = HC_BUF_INIT(0), cut = HC_BUF_INIT(0);
	struct hc_error err = {0};
	struct got g;

	good_stream(&b);
	for (size_t n = 0; n < b.len; n++) {
		hc_buf_reset(&cut);
		if (n && hc_buf_append(&cut, b.data, n) < 0)
			abort();
		memset(&err, 0, sizeof(err));
		if (parse(&cut, 7, &g, &err) >= 0)
			FAILF("a stream cut at %zu of %zu bytes parsed", n, b.len);
		ASSERT_EQ_INT(g.ends, 0);
	}
	hc_buf_free(&b);
	hc_buf_free(&cut);
}

TEST(malformations_refused)
{
	static const struct ext back[] = {{100, "xyz"}, {0, "abc"}};
	static const struct ext beyond[] = {{198, "xyz"}};
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_error err = {0};
	struct got g;

	/* bad magic */
	if (hc_buf_append(&b, "HCMIGR02", 8) < 0)
		abort();
	ASSERT_EQ_INT(parse(&b, 0, &g, &err), -EBADMSG);
	/* extents going backwards, or past the part */
	hc_buf_reset(&b);
	meta(&b, "[{\"name\":\"memory\",\"size\":200}]");
	part(&b, "memory", 200, back, 2, false);
	ASSERT_EQ_INT(parse(&b, 0, &g, &err), -EBADMSG);
	hc_buf_reset(&b);
	meta(&b, "[{\"name\":\"memory\",\"size\":200}]");
	part(&b, "memory", 200, beyond, 1, false);
	ASSERT_EQ_INT(parse(&b, 0, &g, &err), -EBADMSG);
	/* a part the meta record does not list, or another size */
	hc_buf_reset(&b);
	meta(&b, "[{\"name\":\"memory\",\"size\":200}]");
	part(&b, "vmstate", 200, mem_ext, 2, false);
	ASSERT_EQ_INT(parse(&b, 0, &g, &err), -EBADMSG);
	hc_buf_reset(&b);
	meta(&b, "[{\"name\":\"memory\",\"size\":200}]");
	part(&b, "memory", 300, mem_ext, 2, false);
	ASSERT_EQ_INT(parse(&b, 0, &g, &err), -EBADMSG);
	/* the end before every part; bytes after the end */
	hc_buf_reset(&b);
	meta(&b, "[{\"name\":\"memory\",\"size\":200},{\"name\":\"qemu-state\",\"size\":5}]");
	part(&b, "memory", 200, mem_ext, 2, false);
	rec(&b, HC_MIG_END, NULL, 0);
	ASSERT_EQ_INT(parse(&b, 0, &g, &err), -EBADMSG);
	hc_buf_reset(&b);
	good_stream(&b);
	rec(&b, HC_MIG_END, NULL, 0);
	ASSERT_EQ_INT(parse(&b, 0, &g, &err), -EBADMSG);
	/* names that could leave the directory, duplicates, a second meta record */
	static const char *const bad_parts[] = {
		"[{\"name\":\"../x\",\"size\":1}]",
		"[{\"name\":\".hidden\",\"size\":1}]",
		"[{\"name\":\"snapshot.json\",\"size\":1}]",
		"[{\"name\":\"a/b\",\"size\":1}]",
		"[{\"name\":\"m\",\"size\":1},{\"name\":\"m\",\"size\":1}]",
		"[{\"name\":\"m\",\"size\":-1}]",
		"[]",
	};
	for (size_t i = 0; i < HC_ARRAY_SIZE(bad_parts); i++) {
		hc_buf_reset(&b);
		meta(&b, bad_parts[i]);
		ASSERT_EQ_INT(parse(&b, 0, &g, &err), -EBADMSG);
		ASSERT_TRUE(!g.meta);
	}
	hc_buf_reset(&b);
	meta(&b, "[{\"name\":\"m\",\"size\":1}]");
	rec(&b, HC_MIG_META, "{}", 2);
	ASSERT_EQ_INT(parse(&b, 0, &g, &err), -EBADMSG);
	/* a reserved byte set; an unknown record */
	hc_buf_reset(&b);
	meta(&b, "[{\"name\":\"m\",\"size\":1}]");
	rec(&b, 'Q', NULL, 0);
	ASSERT_EQ_INT(parse(&b, 0, &g, &err), -EBADMSG);
	hc_buf_reset(&b);
	good_stream(&b);
	b.data[HC_MIG_MAGIC_LEN + 2] = 1;
	ASSERT_EQ_INT(parse(&b, 0, &g, &err), -EBADMSG);
	hc_buf_free(&b);
}

int main(void)
{
	RUN(parses_whole_and_byte_by_byte);
	RUN(corrupt_digest_refused);
	RUN(cut_anywhere_is_refused);
	RUN(malformations_refused);
	return test_summary();
}
