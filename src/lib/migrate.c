/* SPDX-License-Identifier: MIT */
/*
 * The source side of a migration (hc_pvm_migrate, docs/migration.md):
 *
 *   1. migrate.query (JSON-RPC at the destination, its bearer token): can it take this VM
 *      (backend, room), which of the image's blobs does it lack? Nothing is paused yet, so
 *      an unreachable destination, a wrong token or a destination without room costs nothing.
 *   2. pause + snapshot into $HOTCELL_HOME/migrate/out-XXXXXX (the supervisor's "snapshot"
 *      with leave_paused).
 *   3. PUT /api/v1/migrate: the stream of migrate.h, libcurl reading the files as it sends
 *      (a read callback: nothing is held in memory but one buffer), every part digested.
 *      The destination checks every digest, restores the VM paused and answers its id.
 *   4. the hand-over: this copy is removed for good, then migrate.commit tells the
 *      destination to resume its copy. Until 4 every failure resumes this copy.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/curl.h"
#include "core/log.h"
#include "lib/migrate.h"
#include "lib/pvm.h"
#include "lib/snapshot.h"
#include "oci/manifest.h"
#include "oci/store.h"

#define RPC_TIMEOUT_S 120L
#define CONNECT_TIMEOUT_S 10L
#define REPLY_MAX (1u << 20)
#define COMMIT_TRIES 6
/* Holes shorter than this inside a sparse file are sent as zeros: fewer, longer extents. */
#define HOLE_MERGE (1u << 20)

int hc_lib_migrate_dir(char *buf, size_t n, struct hc_error *err)
{
	char home[HC_PATH_MAX];
	int r = hc_path_state_dir(home, sizeof(home), err);

	if (r >= 0)
		r = hc_path_fmt(buf, n, err, "%s/migrate", home);
	if (r >= 0)
		r = hc_path_mkdir_p(buf, 0700, err);
	return r;
}

int hc_lib_migrate_commit_local(const char *id, bool reseed, struct hc_error *err)
{
	return hc_pvm_ctl_call(id, json_pack("{s:s,s:b}", "op", "migrate_commit", "reseed", reseed),
			       NULL, err);
}

/* ---- HTTP to the destination (libcurl) ---- */

struct reply {
	struct hc_buf body;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct reply *rp = ud;

	if (hc_buf_append(&rp->body, p, size * n) < 0)
		return 0; /* too long: libcurl fails the transfer */
	return size * n;
}

static int curl_fail(CURLcode c, const char *errbuf, const char *url, struct hc_error *err)
{
	return hc_error_setk(err, -EHOSTUNREACH, "migrate", "the destination %s: %s", url,
			     errbuf[0] ? errbuf : curl_easy_strerror(c));
}

/* The destination's answer to a JSON-RPC call or to the PUT: a 401 is the token; a JSON-RPC
 * error carries the destination's message. */
static int reply_check(long status, struct reply *rp, const char *what, json_t **ret,
		       struct hc_error *err)
{
	json_t *j = json_loadb(rp->body.data ? rp->body.data : "", rp->body.len, 0, NULL);
	json_t *e = json_object_get(j, "error");
	int r = 0;

	if (status == 401)
		r = hc_error_setk(err, -EACCES, "auth",
				  "the destination refused the token (HTTP 401): give its own "
				  "token (--token-file or HOTCELL_MIGRATE_TOKEN)");
	else if (json_is_object(e)) {
		const char *kind =
			json_string_value(json_object_get(json_object_get(e, "data"), "kind"));

		r = hc_error_setk(err, -EREMOTEIO, kind ? kind : "migrate", "the destination: %s",
				  json_string_value(json_object_get(e, "message"))
					  ? json_string_value(json_object_get(e, "message"))
					  : "an error");
	} else if (status != 200 || !json_is_object(json_object_get(j, "result")))
		r = hc_error_setk(err, -EPROTO, "migrate",
				  "the destination answered %s with HTTP %ld and no result", what,
				  status);
	if (r >= 0 && ret)
		*ret = json_incref(json_object_get(j, "result"));
	json_decref(j);
	return r;
}

static CURL *easy(const char *url, struct curl_slist *hdrs, struct reply *rp, char *errbuf)
{
	CURL *h = curl_easy_init();

	errbuf[0] = 0;
	if (!h)
		return NULL;
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, rp) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, hc_curl_sockopt_cloexec) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
		curl_easy_cleanup(h);
		return NULL;
	}
	return h;
}

static struct curl_slist *auth_headers(const char *token, const char *type)
{
	_cleanup_free_ char *a = NULL, *t = NULL;
	struct curl_slist *l = NULL, *n;

	if (asprintf(&a, "Authorization: Bearer %s", token) < 0 ||
	    asprintf(&t, "Content-Type: %s", type) < 0)
		return NULL;
	n = curl_slist_append(l, a);
	if (n)
		l = curl_slist_append(n, t);
	if (l)
		l = curl_slist_append(l, "Expect:"); /* no 100-continue round trip */
	if (!l)
		curl_slist_free_all(n);
	explicit_bzero(a, strlen(a));
	return l;
}

/* POST /api/v1/rpc {method, params} -> *ret (the result object). */
static int rpc(const struct hc_pvm_migrate_opts *o, const char *method, json_t *params,
	       json_t **ret, struct hc_error *err)
{
	char url[1024], errbuf[CURL_ERROR_SIZE];
	struct reply rp = {HC_BUF_INIT(REPLY_MAX)};
	json_t *req = json_pack("{s:s,s:i,s:s,s:o}", "jsonrpc", "2.0", "id", 1, "method", method,
				"params", params);
	_cleanup_free_ char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	struct curl_slist *hdrs = auth_headers(o->token, "application/json");
	CURL *h = NULL;
	long status = 0;
	CURLcode c;
	int r;

	json_decref(req);
	if (!text || !hdrs) {
		r = hc_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	snprintf(url, sizeof(url), "%s/api/v1/rpc", o->to);
	h = easy(url, hdrs, &rp, errbuf);
	if (!h || curl_easy_setopt(h, CURLOPT_POSTFIELDS, text) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT, RPC_TIMEOUT_S) != CURLE_OK) {
		r = hc_error_set(err, -ENOMEM, "libcurl setup failed");
		goto out;
	}
	c = curl_easy_perform(h);
	if (c != CURLE_OK) {
		r = curl_fail(c, errbuf, o->to, err);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	r = reply_check(status, &rp, method, ret, err);
out:
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	hc_buf_free(&rp.body);
	return r;
}

/* ---- the stream (migrate.h) ---- */

enum seg_kind { SEG_BYTES, SEG_FILE, SEG_DIGEST };

struct seg {
	enum seg_kind kind;
	uint8_t *bytes; /* SEG_BYTES: owned */
	size_t n;
	int fd; /* SEG_FILE: the part's (owned by struct part) */
	uint64_t off, len;
	bool part_start; /* SEG_BYTES: a part's 'P' record: the digest starts over */
	bool extent;	 /* SEG_BYTES: an 'X' header: hash (offset, length) first */
	uint64_t ext_off, ext_len;
};

struct stream {
	struct seg *segs;
	size_t n, cap;
	size_t cur;
	uint64_t pos; /* within the current segment */
	uint64_t total, sent;
	EVP_MD_CTX *sha;
	uint8_t digest_rec[HC_MIG_HEADER + 32];
	int *fds;
	size_t n_fds;
	json_t *parts; /* the meta record's list */
	int fail;      /* a read error inside the callback */
};

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static int seg_add(struct stream *s, struct seg g)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct seg *nv = realloc(s->segs, cap * sizeof(*nv));

		if (!nv) {
			if (g.kind == SEG_BYTES)
				free(g.bytes);
			return -ENOMEM;
		}
		s->segs = nv;
		s->cap = cap;
	}
	s->segs[s->n++] = g;
	s->total += g.kind == SEG_BYTES ? g.n : g.kind == SEG_FILE ? g.len : sizeof(s->digest_rec);
	return 0;
}

static int seg_bytes(struct stream *s, uint8_t type, const void *payload, size_t n, bool part_start)
{
	uint8_t *b = malloc(HC_MIG_HEADER + n);

	if (!b)
		return -ENOMEM;
	hc_mig_header(b, type, n);
	if (n)
		memcpy(b + HC_MIG_HEADER, payload, n);
	return seg_add(s, (struct seg){.kind = SEG_BYTES,
				       .bytes = b,
				       .n = HC_MIG_HEADER + n,
				       .part_start = part_start});
}

static int seg_json(struct stream *s, uint8_t type, json_t *j, bool part_start)
{
	_cleanup_free_ char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!text)
		return -ENOMEM;
	return seg_bytes(s, type, text, strlen(text), part_start);
}

static int seg_extent(struct stream *s, int fd, uint64_t off, uint64_t len)
{
	uint8_t *b = malloc(HC_MIG_HEADER + 8);
	int r;

	if (!b)
		return -ENOMEM;
	hc_mig_header(b, HC_MIG_EXTENT, 8 + len);
	put_u64(b + HC_MIG_HEADER, off);
	r = seg_add(s, (struct seg){.kind = SEG_BYTES,
				    .bytes = b,
				    .n = HC_MIG_HEADER + 8,
				    .extent = true,
				    .ext_off = off,
				    .ext_len = len});
	if (r >= 0 && len)
		r = seg_add(s, (struct seg){.kind = SEG_FILE, .fd = fd, .off = off, .len = len});
	return r;
}

/* One part from a file: its data extents (SEEK_DATA/SEEK_HOLE; short holes merged). */
static int add_file_part(struct stream *s, const char *name, const char *path, struct hc_error *err)
{
	struct stat st;
	uint64_t off = 0, ext_start = 0, ext_end = 0;
	bool have = false;
	int fd, r, *nf;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hc_error_errno(err, -errno, "migrate: open %s", path);
	nf = realloc(s->fds, (s->n_fds + 1) * sizeof(*nf));
	if (!nf) {
		close(fd);
		return hc_error_set(err, -ENOMEM, "out of memory");
	}
	s->fds = nf;
	s->fds[s->n_fds++] = fd;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return hc_error_errno(err, -(errno ? errno : EINVAL), "migrate: %s", path);
	json_array_append_new(s->parts,
			      json_pack("{s:s,s:I}", "name", name, "size", (json_int_t)st.st_size));
	r = seg_json(s, HC_MIG_PART,
		     json_pack("{s:s,s:I}", "name", name, "size", (json_int_t)st.st_size), true);
	while (r >= 0 && off < (uint64_t)st.st_size) {
		off_t d = lseek(fd, (off_t)off, SEEK_DATA), h;

		if (d < 0)
			break; /* ENXIO: only a hole is left */
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			h = st.st_size;
		if (have && (uint64_t)d - ext_end < HOLE_MERGE) {
			ext_end = (uint64_t)h;
		} else {
			if (have)
				r = seg_extent(s, fd, ext_start, ext_end - ext_start);
			ext_start = (uint64_t)d;
			ext_end = (uint64_t)h;
			have = true;
		}
		off = (uint64_t)h;
	}
	if (r >= 0 && have)
		r = seg_extent(s, fd, ext_start, ext_end - ext_start);
	if (r >= 0)
		r = seg_add(s, (struct seg){.kind = SEG_DIGEST});
	if (r < 0)
		return hc_error_set(err, r, "migrate: out of memory");
	return 0;
}

static void stream_free(struct stream *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->segs[i].kind == SEG_BYTES)
			free(s->segs[i].bytes);
	free(s->segs);
	for (size_t i = 0; i < s->n_fds; i++)
		close(s->fds[i]);
	free(s->fds);
	EVP_MD_CTX_free(s->sha);
	json_decref(s->parts);
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
	struct stream *s = ud;
	size_t room = size * nitems, done = 0;

	while (done < room && s->cur < s->n) {
		struct seg *g = &s->segs[s->cur];
		size_t k = 0;

		if (s->pos == 0 && g->kind == SEG_BYTES && g->part_start)
			EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL);
		if (s->pos == 0 && g->kind == SEG_BYTES && g->extent) {
			uint8_t pre[16];

			put_u64(pre, g->ext_off);
			put_u64(pre + 8, g->ext_len);
			EVP_DigestUpdate(s->sha, pre, sizeof(pre));
		}
		if (s->pos == 0 && g->kind == SEG_DIGEST) {
			unsigned mdlen = 0;

			hc_mig_header(s->digest_rec, HC_MIG_PART_END, 32);
			EVP_DigestFinal_ex(s->sha, s->digest_rec + HC_MIG_HEADER, &mdlen);
		}
		switch (g->kind) {
		case SEG_BYTES:
			k = g->n - s->pos < room - done ? g->n - s->pos : room - done;
			memcpy(buf + done, g->bytes + s->pos, k);
			break;
		case SEG_DIGEST:
			k = sizeof(s->digest_rec) - s->pos < room - done
				    ? sizeof(s->digest_rec) - s->pos
				    : room - done;
			memcpy(buf + done, s->digest_rec + s->pos, k);
			break;
		case SEG_FILE: {
			uint64_t want =
				g->len - s->pos < room - done ? g->len - s->pos : room - done;
			ssize_t got =
				pread(g->fd, buf + done, (size_t)want, (off_t)(g->off + s->pos));

			if (got <= 0) {
				s->fail = got < 0 ? -errno : -EIO;
				return CURL_READFUNC_ABORT;
			}
			k = (size_t)got;
			EVP_DigestUpdate(s->sha, buf + done, k);
			break;
		}
		}
		done += k;
		s->pos += k;
		if (s->pos == (g->kind == SEG_BYTES    ? g->n
			       : g->kind == SEG_DIGEST ? sizeof(s->digest_rec)
						       : g->len)) {
			s->cur++;
			s->pos = 0;
		}
	}
	s->sent += done;
	return done;
}

/* ---- the image's blobs ---- */

/* The image's manifest, config and layers: [{digest, size, media_type}]. */
static json_t *image_blobs(struct hc_store *store, const char *digest, struct hc_error *err)
{
	struct hc_oci_manifest m = {0};
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	json_t *arr;

	if (hc_oci_store_blob_read(store, digest, 4u << 20, &data, &len, err) < 0)
		return NULL;
	if (hc_oci_manifest_parse(data, len, NULL, &m, err) < 0 || m.kind != HC_OCI_KIND_MANIFEST) {
		if (m.kind != HC_OCI_KIND_MANIFEST && !err->message[0])
			hc_error_set(err, -EINVAL, "the VM's image digest is not a manifest");
		hc_oci_manifest_free(&m);
		return NULL;
	}
	arr = json_pack("[{s:s,s:I,s:s}, {s:s,s:I,s:s}]", "digest", digest, "size", (json_int_t)len,
			"media_type", m.media_type, "digest", m.config.digest, "size",
			(json_int_t)m.config.size, "media_type", m.config.media_type);
	for (size_t i = 0; arr && i < m.n_layers; i++)
		json_array_append_new(arr, json_pack("{s:s,s:I,s:s}", "digest", m.layers[i].digest,
						     "size", (json_int_t)m.layers[i].size,
						     "media_type", m.layers[i].media_type));
	hc_oci_manifest_free(&m);
	if (!arr)
		hc_error_set(err, -ENOMEM, "out of memory");
	return arr;
}

/* ---- hc_pvm_migrate ---- */

static int build_stream(struct stream *s, const char *dir, json_t *snap, json_t *blobs,
			json_t *missing, struct hc_store *store, uint64_t *skipped,
			struct hc_error *err)
{
	json_t *spec = json_object_get(snap, "spec"), *b;
	const char *boot[][2] = {
		{"hc-kernel", json_string_value(json_object_get(spec, "kernel"))},
		{"hc-initrd", json_string_value(json_object_get(spec, "initrd"))},
		{"hc-disk", json_string_value(json_object_get(spec, "rootfs_disk"))}};
	char path[HC_PATH_MAX];
	size_t i, meta_at;
	struct dirent *de;
	DIR *d;
	int r;

	s->parts = json_array();
	s->sha = EVP_MD_CTX_new();
	if (!s->parts || !s->sha)
		return hc_error_set(err, -ENOMEM, "out of memory");
	/* The magic and the meta record come first; the meta lists the parts, which are known
	 * only once they are added: its segment is filled in last. */
	r = seg_add(s, (struct seg){.kind = SEG_BYTES,
				    .bytes = (uint8_t *)strdup(HC_MIG_MAGIC),
				    .n = HC_MIG_MAGIC_LEN});
	if (r < 0 || !s->segs[0].bytes)
		return hc_error_set(err, -ENOMEM, "out of memory");
	meta_at = s->n;
	r = seg_add(s, (struct seg){.kind = SEG_BYTES, .bytes = NULL, .n = 0});
	if (r < 0)
		return hc_error_set(err, -ENOMEM, "out of memory");
	for (i = 0; i < HC_ARRAY_SIZE(boot); i++)
		if (boot[i][1] && (r = add_file_part(s, boot[i][0], boot[i][1], err)) < 0)
			return r;
	d = opendir(dir);
	if (!d)
		return hc_error_errno(err, -errno, "migrate: open %s", dir);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || hc_streq(de->d_name, HC_LIB_SNAPSHOT_META))
			continue;
		if (!hc_mig_part_name_ok(de->d_name) || hc_startswith(de->d_name, "hc-") ||
		    hc_startswith(de->d_name, "blob:")) {
			closedir(d);
			return hc_error_setk(
				err, -EINVAL, "migrate",
				"migrate: the snapshot holds a file '%s' it cannot send",
				de->d_name);
		}
		r = hc_path_fmt(path, sizeof(path), err, "%s/%s", dir, de->d_name);
		if (r >= 0)
			r = add_file_part(s, de->d_name, path, err);
		if (r < 0) {
			closedir(d);
			return r;
		}
	}
	closedir(d);
	json_array_foreach(blobs, i, b)
	{
		const char *dg = json_string_value(json_object_get(b, "digest"));
		bool lacks = false;
		json_t *m;
		size_t k;
		char name[128];

		json_array_foreach(missing, k, m) lacks |= hc_streq(json_string_value(m), dg);
		if (!lacks) {
			*skipped += (uint64_t)json_integer_value(json_object_get(b, "size"));
			continue;
		}
		r = hc_oci_store_blob_path(store, dg, path, sizeof(path), err);
		if (r < 0)
			return r;
		snprintf(name, sizeof(name), "blob:%s", dg);
		r = add_file_part(s, name, path, err);
		if (r < 0)
			return r;
	}
	r = seg_bytes(s, HC_MIG_END, NULL, 0, false);
	if (r < 0)
		return hc_error_set(err, -ENOMEM, "out of memory");
	{
		json_t *meta = json_pack("{s:i,s:O,s:O,s:O}", "format", 1, "snapshot", snap,
					 "parts", s->parts, "blobs", blobs);
		_cleanup_free_ char *text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
		uint8_t *bytes;

		json_decref(meta);
		if (!text || strlen(text) > HC_MIG_META_MAX)
			return hc_error_set(err, -E2BIG, "migrate: the meta record is too large");
		bytes = malloc(HC_MIG_HEADER + strlen(text));
		if (!bytes)
			return hc_error_set(err, -ENOMEM, "out of memory");
		hc_mig_header(bytes, HC_MIG_META, strlen(text));
		memcpy(bytes + HC_MIG_HEADER, text, strlen(text));
		s->segs[meta_at].bytes = bytes;
		s->segs[meta_at].n = HC_MIG_HEADER + strlen(text);
		s->total += s->segs[meta_at].n;
	}
	return 0;
}

/* PUT /api/v1/migrate: *ret = the result ({"id"}). */
static int put_stream(const struct hc_pvm_migrate_opts *o, struct stream *s, json_t **ret,
		      struct hc_error *err)
{
	char url[1024], errbuf[CURL_ERROR_SIZE];
	struct reply rp = {HC_BUF_INIT(REPLY_MAX)};
	struct curl_slist *hdrs = auth_headers(o->token, "application/vnd.hotcell.migration");
	CURL *h = NULL;
	long status = 0;
	CURLcode c;
	int r;

	if (!hdrs)
		return hc_error_set(err, -ENOMEM, "out of memory");
	snprintf(url, sizeof(url), "%s/api/v1/migrate", o->to);
	h = easy(url, hdrs, &rp, errbuf);
	if (!h || curl_easy_setopt(h, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_READDATA, s) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->total) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20) != CURLE_OK ||
	    /* A stalled destination: less than 1 byte/s for 60 s ends the transfer. */
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L) != CURLE_OK) {
		r = hc_error_set(err, -ENOMEM, "libcurl setup failed");
		goto out;
	}
	c = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (s->fail)
		r = hc_error_errno(err, s->fail, "migrate: read the snapshot");
	else if (c != CURLE_OK && !(status >= 400 && rp.body.len))
		r = curl_fail(c, errbuf, o->to, err);
	else
		r = reply_check(status, &rp, "the migration", ret, err);
out:
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	hc_buf_free(&rp.body);
	return r;
}

static json_t *read_json_file(const char *path, struct hc_error *err)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	json_t *j;

	if (hc_path_read_file(path, HC_MIG_META_MAX, &data, &len, err) < 0)
		return NULL;
	j = json_loadb(data, len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		hc_error_setk(err, -EBADMSG, HC_EK_INTERNAL, "%s: not a JSON object", path);
		return NULL;
	}
	return j;
}

/* Hard links to the snapshot's kernel, initramfs and disk inside dir, and snapshot.json
 * pointing there, so that dir can still be restored here once this copy (and a directory it
 * owned) is gone. Best effort: a file on another file system keeps its path, and a VM that did
 * not arrive by migration boots from the cache and the build, which stay. */
static void keep_boot_files(const char *dir, json_t *snap)
{
	static const char *const keys[][2] = {
		{"kernel", "hc-kernel"}, {"initrd", "hc-initrd"}, {"rootfs_disk", "hc-disk"}};
	char paths[3][HC_PATH_MAX];
	const char *use[3] = {NULL, NULL, NULL};
	_cleanup_(json_decrefp) json_t *copy = json_deep_copy(snap);
	struct hc_error e = {0};

	for (size_t i = 0; copy && i < HC_ARRAY_SIZE(keys); i++) {
		const char *from = json_string_value(
			json_object_get(json_object_get(copy, "spec"), keys[i][0]));

		if (from &&
		    hc_path_fmt(paths[i], sizeof(paths[i]), NULL, "%s/%s", dir, keys[i][1]) >= 0 &&
		    link(from, paths[i]) == 0)
			use[i] = paths[i];
	}
	if (copy && hc_lib_snapshot_relocate(dir, copy, use[0], use[1], use[2], &e) < 0)
		hc_warn("migrate: %s", e.message);
}

/* Before the hand-over, every failure comes here: this copy runs again, as it was. */
static void resume_source(const char *id, bool was_paused)
{
	struct hc_error e = {0};

	if (!was_paused && hc_pvm_resume(id, &e) < 0)
		hc_warn("migrate: resuming VM %.12s failed: %s", id, e.message);
}

HC_EXPORT int hc_pvm_migrate(const char *ref, const struct hc_pvm_migrate_opts *o,
			     struct hc_pvm_migrate_result *res, struct hc_error *err)
{
	char id[HC_PVM_ID_LEN + 1], base[HC_PATH_MAX], dir[HC_PATH_MAX], meta[HC_PATH_MAX];
	struct hc_pvm_migrate_result out = {0};
	struct stream s = {0};
	struct hc_store *store = NULL;
	json_t *rec = NULL, *snap = NULL, *blobs = NULL, *q = NULL, *put = NULL;
	double t0 = hc_clock_ms(), t_pause = 0;
	bool was_paused, snapped = false, handed = false;
	const char *digest, *backend;
	int r;

	dir[0] = 0;
	if (!o || !o->to || !*o->to || !o->token || !*o->token)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "migrate: needs the destination's URL and its token");
	if (!hc_startswith(o->to, "http://") && !hc_startswith(o->to, "https://"))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "migrate: the destination '%.200s' is not an http(s):// URL",
				     o->to);
	r = hc_pvm_resolve(ref, id, err);
	if (r < 0)
		return r;
	r = hc_pvm_record_read(id, &rec, err);
	if (r < 0)
		return r;
	if (hc_pvm_record_status(rec) != HC_PVM_RUNNING &&
	    hc_pvm_record_status(rec) != HC_PVM_PAUSED) {
		r = hc_error_setk(err, -EINVAL, HC_EK_VM, "migrate: VM %.12s is %s", id,
				  hc_pvm_status_name(hc_pvm_record_status(rec)));
		goto out;
	}
	was_paused = hc_pvm_record_status(rec) == HC_PVM_PAUSED;
	backend = json_string_value(json_object_get(rec, "backend"));
	digest = json_string_value(json_object_get(rec, "digest"));
	if (digest && *digest) {
		r = hc_store_open(NULL, &store, err);
		if (r < 0)
			goto out;
		blobs = image_blobs(store, digest, err);
		if (!blobs) {
			r = err->code ? err->code : -EIO;
			hc_error_prefix(err, "migrate: the VM's image");
			goto out;
		}
	} else {
		blobs = json_array();
	}

	/* 1. Can the destination take it? Nothing is paused yet. */
	r = rpc(o, "migrate.query",
		json_pack("{s:s?,s:O,s:O}", "backend", backend, "blobs", blobs, "spec",
			  json_object_get(rec, "spec")),
		&q, err);
	if (r < 0)
		goto out;

	/* 2. Pause and snapshot. */
	r = hc_lib_migrate_dir(base, sizeof(base), err);
	if (r >= 0)
		r = hc_path_fmt(dir, sizeof(dir), err, "%s/out-XXXXXX", base);
	if (r < 0)
		goto out;
	if (!mkdtemp(dir)) {
		r = hc_error_errno(err, -errno, "migrate: mkdtemp %s", dir);
		dir[0] = 0;
		goto out;
	}
	t_pause = hc_clock_ms();
	r = hc_pvm_snapshot(id, dir, true, err);
	if (r < 0)
		goto fail; /* the supervisor resumed it itself */
	snapped = true;
	r = hc_path_fmt(meta, sizeof(meta), err, "%s/" HC_LIB_SNAPSHOT_META, dir);
	if (r < 0 || !(snap = read_json_file(meta, err))) {
		r = r < 0 ? r : -EIO;
		goto fail;
	}

	/* 3. The stream. */
	r = build_stream(&s, dir, snap, blobs, json_object_get(q, "missing"), store,
			 &out.blob_bytes_skipped, err);
	if (r < 0)
		goto fail;
	r = put_stream(o, &s, &put, err);
	out.bytes_sent = s.sent;
	if (r < 0)
		goto fail;
	if (!hc_pvm_id_valid(json_string_value(json_object_get(put, "id")))) {
		r = hc_error_setk(err, -EPROTO, "migrate", "the destination answered no VM id");
		goto fail;
	}
	snprintf(out.id, sizeof(out.id), "%s", json_string_value(json_object_get(put, "id")));

	/* The snapshot stays a VM of this host until the commit: its kernel, initramfs and disk
	 * may be in what this copy owns (a VM that arrived by migration), which goes with it. */
	keep_boot_files(dir, snap);

	/* 4. The hand-over: this copy ends for good first... */
	r = hc_pvm_remove(id, true, err);
	if (r < 0) {
		struct hc_error e = {0};
		json_t *ab = NULL;

		hc_error_prefix(err, "migrate: this copy could not be removed, so the migration "
				     "is undone");
		if (rpc(o, "migrate.abort", json_pack("{s:s}", "id", out.id), &ab, &e) < 0)
			hc_warn("migrate: aborting at the destination: %s (its copy ends by "
				"itself, uncommitted)",
				e.message);
		json_decref(ab);
		goto fail;
	}
	handed = true;
	/* ...then the destination resumes its own. */
	for (int i = 0; i < COMMIT_TRIES; i++) {
		struct hc_error e = {0};
		json_t *cm = NULL;

		r = rpc(o, "migrate.commit",
			json_pack("{s:s,s:b}", "id", out.id, "reseed", o->reseed), &cm, &e);
		json_decref(cm);
		if (r >= 0)
			break;
		*err = e;
		if (hc_streq(e.kind, "migrate-aborted"))
			break; /* the destination answered: it ended its copy */
		usleep(500000u << (i < 4 ? i : 4));
	}
	if (r < 0 && hc_streq(err->kind, "migrate-aborted")) {
		/* The destination answered that it will not resume its copy (it ended it: no
		 * commit in time): this snapshot is the VM, and runs here again. */
		struct hc_pvm_create_opts co = {.restore_dir = dir};
		char local[HC_PVM_ID_LEN + 1];
		struct hc_error e = {0};

		if (hc_pvm_create(NULL, &co, local, &e) == 0) {
			hc_error_prefix(err,
					"migrate: the destination refused the commit, so the VM "
					"runs here again as %.12s",
					local);
			goto out;
		}
		hc_warn("migrate: restoring the VM here failed too: %s", e.message);
	}
	if (r < 0) {
		/* The destination never resumes an uncommitted copy: this snapshot is the VM
		 * now. It stays in dir for `vm restore`. */
		hc_error_prefix(err,
				"migrate: the destination did not confirm the resume of VM %.12s; "
				"the VM is kept as the snapshot %s (restore it with `hotcell vm "
				"restore %s` once the destination's copy is known to be gone)",
				out.id, dir, dir);
		dir[0] = 0;
		goto out;
	}
	out.downtime_ms = hc_clock_ms() - t_pause;
	out.total_ms = hc_clock_ms() - t0;
	hc_path_rm_rf(dir, NULL);
	dir[0] = 0;
	if (res)
		*res = out;
	r = 0;
	goto out;

fail:
	if (snapped && !handed)
		resume_source(id, was_paused);
	if (res)
		*res = out;
out:
	if (dir[0])
		hc_path_rm_rf(dir, NULL);
	stream_free(&s);
	hc_store_close(store);
	json_decref(rec);
	json_decref(snap);
	json_decref(blobs);
	json_decref(q);
	json_decref(put);
	return r;
}
