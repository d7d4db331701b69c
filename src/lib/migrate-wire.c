/* SPDX-License-Identifier: MIT */
/*
 * The migration stream's parser (migrate.h, docs/migration.md): untrusted input from the
 * network, checked record by record; extents are handed on as they arrive, never buffered.
 */
#include <ctype.h>
#include <string.h>

#include "lib/migrate.h"

enum { S_MAGIC, S_HEADER, S_PAYLOAD, S_DONE, S_DEAD };

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

void hc_mig_header(uint8_t *buf, uint8_t type, uint64_t len)
{
	buf[0] = type;
	buf[1] = buf[2] = buf[3] = 0;
	put_u64(buf + 4, len);
}

bool hc_mig_part_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 100 || name[0] == '.' || strcmp(name, "snapshot.json") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._:-", name[i]))
			return false;
	return true;
}

void hc_mig_parser_init(struct hc_mig_parser *p, const struct hc_mig_sink *sink, void *ctx)
{
	*p = (struct hc_mig_parser){.sink = sink, .ctx = ctx, .state = S_MAGIC};
	p->rec = (struct hc_buf)HC_BUF_INIT(HC_MIG_META_MAX);
}

void hc_mig_parser_free(struct hc_mig_parser *p)
{
	hc_buf_free(&p->rec);
	json_decref(p->meta);
	p->meta = NULL;
	EVP_MD_CTX_free(p->sha);
	p->sha = NULL;
}

static int bad(struct hc_mig_parser *p, struct hc_error *err, const char *what)
{
	p->state = S_DEAD;
	return hc_error_setk(err, -EBADMSG, HC_EK_USAGE, "migration stream: %s (at byte %llu)",
			     what, (unsigned long long)p->bytes);
}

static int check_meta(struct hc_mig_parser *p, struct hc_error *err)
{
	json_error_t jerr;
	json_t *m = json_loadb(p->rec.data, p->rec.len, JSON_REJECT_DUPLICATES, &jerr), *parts, *v;
	size_t i;

	if (!json_is_object(m)) {
		json_decref(m);
		return bad(p, err, "the meta record is not a JSON object");
	}
	p->meta = m;
	if (!json_is_integer(json_object_get(m, "format")) ||
	    json_integer_value(json_object_get(m, "format")) != 1)
		return bad(p, err, "the meta record's format is not 1");
	if (!json_is_object(json_object_get(m, "snapshot")))
		return bad(p, err, "the meta record has no snapshot object");
	parts = json_object_get(m, "parts");
	if (!json_is_array(parts) || json_array_size(parts) < 1 ||
	    json_array_size(parts) > HC_MIG_MAX_PARTS)
		return bad(p, err, "the meta record's parts are not an array of 1..64");
	json_array_foreach(parts, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		json_t *size = json_object_get(v, "size");

		if (!hc_mig_part_name_ok(name) || !json_is_integer(size) ||
		    json_integer_value(size) < 0 ||
		    (uint64_t)json_integer_value(size) > HC_MIG_PART_MAX)
			return bad(p, err, "a part in the meta record is invalid");
		for (size_t k = 0; k < i; k++)
			if (strcmp(name, json_string_value(json_object_get(json_array_get(parts, k),
									   "name"))) == 0)
				return bad(p, err, "a part is listed twice");
	}
	return 0;
}

static int begin_part(struct hc_mig_parser *p, struct hc_error *err)
{
	json_t *parts = json_object_get(p->meta, "parts"), *want, *got;
	json_error_t jerr;
	int r;

	if (p->next_part >= json_array_size(parts))
		return bad(p, err, "more parts than the meta record lists");
	want = json_array_get(parts, p->next_part);
	got = json_loadb(p->rec.data, p->rec.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(got) ||
	    !json_equal(json_object_get(got, "name"), json_object_get(want, "name")) ||
	    !json_equal(json_object_get(got, "size"), json_object_get(want, "size"))) {
		json_decref(got);
		return bad(p, err, "a part is not the next one the meta record lists");
	}
	json_decref(got);
	snprintf(p->part, sizeof(p->part), "%s", json_string_value(json_object_get(want, "name")));
	p->part_size = (uint64_t)json_integer_value(json_object_get(want, "size"));
	p->pos = 0;
	p->next_part++;
	p->in_part = true;
	if (!p->sha)
		p->sha = EVP_MD_CTX_new();
	if (!p->sha || EVP_DigestInit_ex(p->sha, EVP_sha256(), NULL) != 1) {
		p->state = S_DEAD;
		return hc_error_set(err, -ENOMEM, "sha256: out of memory");
	}
	r = p->sink->part_begin ? p->sink->part_begin(p->ctx, p->part, p->part_size, err) : 0;
	if (r < 0)
		p->state = S_DEAD;
	return r;
}

static int end_part(struct hc_mig_parser *p, struct hc_error *err)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	int r;

	if (EVP_DigestFinal_ex(p->sha, md, &mdlen) != 1 || mdlen != 32) {
		p->state = S_DEAD;
		return hc_error_set(err, -EIO, "sha256 failed");
	}
	if (memcmp(md, p->rec.data, 32) != 0) {
		p->state = S_DEAD;
		return hc_error_setk(err, -EILSEQ, HC_EK_IO,
				     "migration stream: part '%s' is corrupt (its SHA-256 does not "
				     "match)",
				     p->part);
	}
	p->in_part = false;
	r = p->sink->part_end ? p->sink->part_end(p->ctx, err) : 0;
	if (r < 0)
		p->state = S_DEAD;
	return r;
}

/* A record header is complete: is it allowed here, and how long may it be? */
static int start_record(struct hc_mig_parser *p, struct hc_error *err)
{
	uint64_t len = get_u64(p->hdr + 4);

	if (p->hdr[1] || p->hdr[2] || p->hdr[3])
		return bad(p, err, "a record header's reserved bytes are not zero");
	p->type = p->hdr[0];
	p->left = len;
	hc_buf_reset(&p->rec);
	switch (p->type) {
	case HC_MIG_META:
		if (p->meta)
			return bad(p, err, "a second meta record");
		if (len == 0 || len > HC_MIG_META_MAX)
			return bad(p, err, "the meta record is empty or too long");
		break;
	case HC_MIG_PART:
		if (!p->meta || p->in_part)
			return bad(p, err, "a part record out of place");
		if (len == 0 || len > HC_MIG_PART_HEADER_MAX)
			return bad(p, err, "a part record is empty or too long");
		break;
	case HC_MIG_EXTENT:
		if (!p->in_part)
			return bad(p, err, "an extent outside a part");
		if (len < 8 || len - 8 > p->part_size)
			return bad(p, err, "an extent of an impossible length");
		break;
	case HC_MIG_PART_END:
		if (!p->in_part)
			return bad(p, err, "a part end outside a part");
		if (len != 32)
			return bad(p, err, "a part end that is not 32 bytes");
		break;
	case HC_MIG_END:
		if (!p->meta || p->in_part ||
		    p->next_part != json_array_size(json_object_get(p->meta, "parts")))
			return bad(p, err, "the end before every part was sent");
		if (len != 0)
			return bad(p, err, "an end record with a payload");
		break;
	default:
		return bad(p, err, "an unknown record type");
	}
	if (!p->meta && p->type != HC_MIG_META)
		return bad(p, err, "the first record is not the meta record");
	p->state = S_PAYLOAD;
	return 0;
}

/* All of a record's payload is in (for the buffered ones) or passed (extents). */
static int finish_record(struct hc_mig_parser *p, struct hc_error *err)
{
	int r = 0;

	p->state = S_HEADER;
	p->hdr_len = 0;
	switch (p->type) {
	case HC_MIG_META:
		r = check_meta(p, err);
		if (r >= 0 && p->sink->meta)
			r = p->sink->meta(p->ctx, p->meta, err);
		break;
	case HC_MIG_PART:
		r = begin_part(p, err);
		break;
	case HC_MIG_EXTENT:
		if (p->rec.len < 8) /* an empty extent: its offset alone */
			return bad(p, err, "a truncated extent");
		break;
	case HC_MIG_PART_END:
		r = end_part(p, err);
		break;
	case HC_MIG_END:
		p->state = S_DONE;
		r = p->sink->end ? p->sink->end(p->ctx, err) : 0;
		break;
	}
	if (r < 0)
		p->state = S_DEAD;
	return r;
}

/* Bytes of an extent's payload: the offset first, then data straight to the sink. */
static int extent_bytes(struct hc_mig_parser *p, const uint8_t *d, size_t n, struct hc_error *err)
{
	if (p->rec.len < 8) {
		size_t k = 8 - p->rec.len < n ? 8 - p->rec.len : n;

		if (hc_buf_append(&p->rec, d, k) < 0)
			return bad(p, err, "out of memory");
		d += k;
		n -= k;
		if (p->rec.len == 8) {
			uint64_t off = get_u64((const uint8_t *)p->rec.data), dlen = p->left + n;
			uint8_t pre[16];

			/* p->left no longer counts this chunk: its n bytes are data too. */
			if (off < p->pos || off > p->part_size || dlen > p->part_size - off)
				return bad(p, err, "an extent out of order or beyond its part");
			put_u64(pre, off);
			put_u64(pre + 8, dlen);
			if (EVP_DigestUpdate(p->sha, pre, sizeof(pre)) != 1)
				return bad(p, err, "sha256 failed");
			p->ext_off = off;
			p->pos = off + dlen;
		}
	}
	if (n > 0) {
		int r;

		if (EVP_DigestUpdate(p->sha, d, n) != 1)
			return bad(p, err, "sha256 failed");
		r = p->sink->data ? p->sink->data(p->ctx, p->ext_off, d, n, err) : 0;
		if (r < 0) {
			p->state = S_DEAD;
			return r;
		}
		p->ext_off += n;
	}
	return 0;
}

int hc_mig_parser_feed(struct hc_mig_parser *p, const void *data, size_t n, struct hc_error *err)
{
	const uint8_t *d = data;
	int r;

	while (n > 0) {
		switch (p->state) {
		case S_MAGIC: {
			size_t k = HC_MIG_MAGIC_LEN - p->hdr_len < n ? HC_MIG_MAGIC_LEN - p->hdr_len
								     : n;

			if (memcmp(d, &HC_MIG_MAGIC[p->hdr_len], k) != 0)
				return bad(p, err, "not a hotcell migration stream (bad magic)");
			p->hdr_len += k;
			d += k;
			n -= k;
			p->bytes += k;
			if (p->hdr_len == HC_MIG_MAGIC_LEN) {
				p->hdr_len = 0;
				p->state = S_HEADER;
			}
			break;
		}
		case S_HEADER: {
			size_t k = HC_MIG_HEADER - p->hdr_len < n ? HC_MIG_HEADER - p->hdr_len : n;

			memcpy(p->hdr + p->hdr_len, d, k);
			p->hdr_len += k;
			d += k;
			n -= k;
			p->bytes += k;
			if (p->hdr_len == HC_MIG_HEADER) {
				r = start_record(p, err);
				if (r < 0)
					return r;
				if (p->left == 0 && (r = finish_record(p, err)) < 0)
					return r;
			}
			break;
		}
		case S_PAYLOAD: {
			size_t k = p->left < n ? (size_t)p->left : n;

			p->left -= k;
			if (p->type == HC_MIG_EXTENT) {
				r = extent_bytes(p, d, k, err);
				if (r < 0)
					return r;
			} else if (hc_buf_append(&p->rec, d, k) < 0) {
				return bad(p, err, "a record too long");
			}
			d += k;
			n -= k;
			p->bytes += k;
			if (p->left == 0 && (r = finish_record(p, err)) < 0)
				return r;
			break;
		}
		case S_DONE:
			return bad(p, err, "bytes after the end record");
		default:
			return hc_error_setk(err, -EBADMSG, HC_EK_USAGE,
					     "migration stream: already failed");
		}
	}
	return 0;
}

int hc_mig_parser_finish(struct hc_mig_parser *p, struct hc_error *err)
{
	if (p->state != S_DONE)
		return hc_error_setk(err, -EPIPE, HC_EK_USAGE,
				     "migration stream: cut off after %llu bytes",
				     (unsigned long long)p->bytes);
	return 0;
}
