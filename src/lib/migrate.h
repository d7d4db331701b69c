/* SPDX-License-Identifier: MIT */
/*
 * Migration between two hotcell servers (DESIGN.md §10, docs/migration.md): the stream the
 * source sends to the destination's `PUT /api/v1/migrate`, and the parser that reads it.
 *
 * The body is "HCMIGR01" and then records, each a 12-byte header (u8 type, three zero bytes,
 * u64 big-endian payload length) and its payload:
 *
 *   'M'  meta, first and once (JSON, at most HC_MIG_META_MAX bytes):
 *        {"format": 1, "snapshot": <the snapshot.json object>, "parts": [{"name", "size"}...]}
 *   'P'  a part begins (JSON {"name", "size"}, at most 4 KiB): the next part the meta listed
 *   'X'  an extent of that part: u64 BE offset, then the bytes at that offset (sparse files
 *        are sent as their data extents; extents increase and stay within the part's size)
 *   'E'  the part ends: 32 bytes, the SHA-256 over every extent of the part as
 *        u64 BE offset | u64 BE length | bytes, checked by the parser
 *   'Z'  the end: every listed part was sent; nothing may follow
 *
 * The parser is a push parser over chunks of any size (as the HTTP server delivers the body):
 * it never buffers an extent, only the bounded JSON records. It is fed untrusted input.
 */
#pragma once

#include <jansson.h>
#include <openssl/evp.h>

#include "core/buf.h"
#include "core/error.h"

#define HC_MIG_MAGIC "HCMIGR01"
#define HC_MIG_MAGIC_LEN 8
#define HC_MIG_HEADER 12
#define HC_MIG_META_MAX (1u << 20)
#define HC_MIG_PART_HEADER_MAX 4096u
#define HC_MIG_MAX_PARTS 64u
/* A part's size: at most 1 TiB (memory, disk, blobs). */
#define HC_MIG_PART_MAX (1ull << 40)

enum hc_mig_rec {
	HC_MIG_META = 'M',
	HC_MIG_PART = 'P',
	HC_MIG_EXTENT = 'X',
	HC_MIG_PART_END = 'E',
	HC_MIG_END = 'Z',
};

/* What the parser hands on. Every callback returns 0 or a negative errno with err set, which
 * stops the parse. */
struct hc_mig_sink {
	/* The meta record, validated: "format" 1, "snapshot" an object, "parts" 1..64 of unique
	 * valid names (hc_mig_part_name_ok) with sizes. The object is the parser's. */
	int (*meta)(void *ctx, json_t *meta, struct hc_error *err);
	int (*part_begin)(void *ctx, const char *name, uint64_t size, struct hc_error *err);
	/* Bytes of the current part at offset (a piece of an extent: one extent may come in
	 * several calls, at increasing offsets). */
	int (*data)(void *ctx, uint64_t offset, const void *p, size_t n, struct hc_error *err);
	/* The part's digest matched. */
	int (*part_end)(void *ctx, struct hc_error *err);
	/* 'Z': every part arrived. */
	int (*end)(void *ctx, struct hc_error *err);
};

struct hc_mig_parser {
	const struct hc_mig_sink *sink;
	void *ctx;
	int state;
	uint8_t hdr[HC_MIG_HEADER];
	size_t hdr_len;
	uint8_t type;
	uint64_t left;	   /* payload bytes of the current record still to come */
	struct hc_buf rec; /* a JSON record's payload, or an extent's offset / the digest */
	json_t *meta;
	size_t next_part;
	char part[128];
	uint64_t part_size, pos, ext_off;
	EVP_MD_CTX *sha;
	bool in_part;
	uint64_t bytes; /* consumed so far */
};

/* A part name: 1..100 bytes of [A-Za-z0-9._:-], not starting with '.'; "snapshot.json" is not
 * one (the destination writes it). Blobs are "blob:sha256:<64 hex>". */
bool hc_mig_part_name_ok(const char *name);

void hc_mig_parser_init(struct hc_mig_parser *p, const struct hc_mig_sink *sink, void *ctx);
/* Feeds n bytes. 0, or a negative errno with err set (malformed: -EBADMSG; a digest that does
 * not match: -EILSEQ; a sink's own error): the parser is then dead. */
int hc_mig_parser_feed(struct hc_mig_parser *p, const void *data, size_t n,
		       struct hc_error *err) _must_check_;
/* The body ended: -EBADMSG unless 'Z' was read. */
int hc_mig_parser_finish(struct hc_mig_parser *p, struct hc_error *err) _must_check_;
void hc_mig_parser_free(struct hc_mig_parser *p);

/* The encoder's side: a record header into buf (12 bytes). */
void hc_mig_header(uint8_t *buf, uint8_t type, uint64_t len);

/* $HOTCELL_HOME/migrate (created, 0700): the source's outgoing snapshots and the
 * destination's incoming directories (each an "in-XXXXXX" the restored VM owns). */
int hc_lib_migrate_dir(char *buf, size_t n, struct hc_error *err) _must_check_;

/* The destination's second phase: resumes the incoming VM id (its supervisor's
 * "migrate_commit"), with a fresh RNG seed when reseed. -ESRCH when id is not waiting for a
 * commit (it was aborted, or its commit came already). */
int hc_lib_migrate_commit_local(const char *id, bool reseed, struct hc_error *err) _must_check_;
