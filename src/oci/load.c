/* SPDX-License-Identifier: MIT */
/*
 * hotcell load: an OCI image layout directory (image-spec image-layout.md), an oci-archive (the
 * same layout in a tar) or a docker-archive (what `docker save` writes: manifest.json with
 * Config/RepoTags/Layers, moby image/spec/v1.2.md "Combined Image JSON + Filesystem Changeset
 * Format").
 *
 * Every blob is verified by digest, and nothing enters the store until the whole image has
 * been checked: blobs are held in unnamed temp files (blob writers, finished but not committed)
 * and committed together at the end, then named. A corrupt or truncated archive leaves the store
 * as it was. Archive member names are only used as keys, never as host paths; still, absolute
 * names and ".." are refused as a sign of a hostile archive.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>

#include "core/log.h"
#include "oci/manifest.h"
#include "oci/ref.h"
#include "oci/store.h"

#define ARCHIVE_ENTRIES_MAX 100000
#define PENDING_MAX 2048
#define NAME_MAX_LEN 1024
#define META_MAX HC_OCI_MANIFEST_MAX
/* No single blob of an image is larger than this; a header claiming more is hostile. */
#define BLOB_MAX (256ull << 30)
#define IMAGES_MAX 64
#define GENERATED "<generated manifest>"

struct pending {
	char *path; /* archive member name, or GENERATED */
	char digest[HC_DIGEST_SIZE];
	uint64_t size;
	unsigned char magic[4]; /* first bytes, to tell compressed layers apart */
	struct hc_oci_blob_writer *w;
	bool needed;
};

struct alias {
	char *path;
	char *target;
};

struct image {
	char **names;
	size_t n_names;
	char digest[HC_DIGEST_SIZE];
	char media_type[128];
	uint64_t size;
};

struct loader {
	struct hc_store *s;
	const char *src;
	int dirfd; /* layout directory, else -1 */
	struct pending *p;
	size_t n, cap;
	struct alias *a;
	size_t na, cap_a;
	char *oci_layout, *index_json, *manifest_json;
	size_t index_len, manifest_len;
	struct image imgs[IMAGES_MAX];
	size_t n_imgs;
};

static void loader_free(struct loader *L)
{
	for (size_t i = 0; i < L->n; i++) {
		hc_oci_blob_writer_abort(L->p[i].w);
		free(L->p[i].path);
	}
	free(L->p);
	for (size_t i = 0; i < L->na; i++) {
		free(L->a[i].path);
		free(L->a[i].target);
	}
	free(L->a);
	free(L->oci_layout);
	free(L->index_json);
	free(L->manifest_json);
	for (size_t i = 0; i < L->n_imgs; i++) {
		for (size_t j = 0; j < L->imgs[i].n_names; j++)
			free(L->imgs[i].names[j]);
		free(L->imgs[i].names);
	}
	if (L->dirfd >= 0)
		close(L->dirfd);
}

/* ---- member names --------------------------------------------------------------------- */

/* "./a//b/./c" -> "a/b/c"; absolute names and ".." are refused. */
static int clean_name(const char *in, char *out, size_t n, struct hc_error *err)
{
	size_t o = 0;
	const char *p = in;

	if (!in || !*in || strlen(in) >= n || strlen(in) > NAME_MAX_LEN)
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
				     "archive member with an invalid name");
	/* Control characters would also break the one-line error that quotes the name. */
	for (const char *c = in; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
					     "archive member with a control character in its name");
	if (*in == '/')
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
				     "archive member '%.200s' has an absolute name", in);
	while (*p) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
					     "archive member '%.200s' contains '..'", in);
		if (len > 0 && !(len == 1 && p[0] == '.')) {
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p += len;
		while (*p == '/')
			p++;
	}
	out[o] = 0;
	return 0;
}

/* A symlink target relative to the member's directory, kept inside the archive. */
static int resolve_link(const char *member, const char *target, char *out, size_t n,
			struct hc_error *err)
{
	char tmp[2 * NAME_MAX_LEN + 2], parts[2 * NAME_MAX_LEN + 2];
	const char *slash = strrchr(member, '/');
	size_t o = 0;

	if (!target || *target == '/' || strlen(target) > NAME_MAX_LEN)
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
				     "archive member '%.200s' links outside the archive", member);
	snprintf(tmp, sizeof(tmp), "%.*s%s%s", slash ? (int)(slash - member) : 0, member,
		 slash ? "/" : "", target);
	/* Resolve "." and ".." lexically; ".." above the top leaves the archive. */
	parts[0] = 0;
	for (char *save = NULL, *c = strtok_r(tmp, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (hc_streq(c, "."))
			continue;
		if (hc_streq(c, "..")) {
			char *last = strrchr(parts, '/');
			if (!o)
				return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
						     "archive member '%.200s' links outside the "
						     "archive",
						     member);
			o = last ? (size_t)(last - parts) : 0;
			parts[o] = 0;
			continue;
		}
		o += (size_t)snprintf(parts + o, sizeof(parts) - o, "%s%s", o ? "/" : "", c);
	}
	if (!o || o >= n)
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE, "archive member '%.200s': bad link",
				     member);
	memcpy(out, parts, o + 1);
	return 0;
}

static int add_alias(struct loader *L, const char *path, const char *target, struct hc_error *err)
{
	if (L->na == L->cap_a) {
		size_t ncap = L->cap_a ? L->cap_a * 2 : 16;
		void *p = reallocarray(L->a, ncap, sizeof(*L->a));
		if (!p)
			return hc_error_set(err, -ENOMEM, "out of memory");
		L->a = p;
		L->cap_a = ncap;
	}
	L->a[L->na].path = strdup(path);
	L->a[L->na].target = strdup(target);
	if (!L->a[L->na].path || !L->a[L->na].target) {
		free(L->a[L->na].path);
		free(L->a[L->na].target);
		return hc_error_set(err, -ENOMEM, "out of memory");
	}
	L->na++;
	return 0;
}

/* ---- pending blobs -------------------------------------------------------------------- */

static struct pending *find_path(struct loader *L, const char *path)
{
	char clean[NAME_MAX_LEN + 1];

	if (clean_name(path, clean, sizeof(clean), NULL) < 0)
		return NULL;
	/* Follow links (bounded: a loop of links resolves to nothing). */
	for (int depth = 0; depth < 8; depth++) {
		for (size_t i = L->n; i-- > 0;)
			if (hc_streq(L->p[i].path, clean))
				return &L->p[i];
		bool followed = false;
		for (size_t i = L->na; i-- > 0 && !followed;)
			if (hc_streq(L->a[i].path, clean)) {
				snprintf(clean, sizeof(clean), "%s", L->a[i].target);
				followed = true;
			}
		if (!followed)
			return NULL;
	}
	return NULL;
}

static struct pending *find_digest(struct loader *L, const char *digest)
{
	for (size_t i = 0; i < L->n; i++)
		if (hc_streq(L->p[i].digest, digest))
			return &L->p[i];
	return NULL;
}

static int add_pending(struct loader *L, const char *path, struct hc_oci_blob_writer **w,
		       const unsigned char magic[4], struct pending **ret, struct hc_error *err)
{
	struct pending *p;
	int r;

	if (L->n >= PENDING_MAX)
		return hc_error_setk(err, -E2BIG, HC_EK_IMAGE, "more than %d files in the image",
				     PENDING_MAX);
	if (L->n == L->cap) {
		size_t ncap = L->cap ? L->cap * 2 : 16;
		void *np = reallocarray(L->p, ncap, sizeof(*L->p));
		if (!np)
			return hc_error_set(err, -ENOMEM, "out of memory");
		L->p = np;
		L->cap = ncap;
	}
	p = &L->p[L->n];
	memset(p, 0, sizeof(*p));
	r = hc_oci_blob_writer_finish(*w, p->digest, err);
	if (r < 0)
		return hc_error_prefix(err, "%s", path);
	p->path = strdup(path);
	if (!p->path)
		return hc_error_set(err, -ENOMEM, "out of memory");
	p->size = hc_oci_blob_writer_size(*w);
	memcpy(p->magic, magic, 4);
	p->w = steal_ptr(w);
	L->n++;
	if (ret)
		*ret = p;
	return 0;
}

/* Where a pending blob's bytes come from: the count read, 0 at the end, -errno with err set
 * (name says what is read). */
typedef ssize_t (*blob_read_fn)(void *src, char *buf, size_t n, const char *name,
				struct hc_error *err);

/* Streams a blob from rd into a pending writer, verified against digest when it is known, and
 * notes its first bytes (the compression magic). */
static int pend_stream(struct loader *L, const char *digest, uint64_t size, const char *name,
		       blob_read_fn rd, void *src, struct hc_error *err)
{
	struct hc_oci_blob_writer *w = NULL;
	unsigned char magic[4] = {0};
	char buf[1 << 16];
	bool first = true;
	int r;

	r = hc_oci_store_blob_begin(L->s, digest, size, &w, err);
	if (r < 0)
		return r;
	for (;;) {
		ssize_t k = rd(src, buf, sizeof(buf), name, err);

		if (k < 0) {
			r = (int)k;
			break;
		}
		if (k == 0) {
			r = add_pending(L, name, &w, magic, NULL, err);
			break;
		}
		if (first) {
			memcpy(magic, buf, k < 4 ? (size_t)k : 4);
			first = false;
		}
		r = hc_oci_blob_writer_write(w, buf, (size_t)k, err);
		if (r < 0)
			break;
	}
	hc_oci_blob_writer_abort(w);
	return r;
}

static ssize_t read_fd(void *src, char *buf, size_t n, const char *name, struct hc_error *err)
{
	for (;;) {
		ssize_t k = read(*(int *)src, buf, n);

		if (k >= 0)
			return k;
		if (errno != EINTR)
			return hc_error_errno(err, -errno, "read blob %s", name);
	}
}

/* Streams fd (a layout's blob) into a pending writer, verified against digest. */
static int pend_from_fd(struct loader *L, int fd, const char *digest, uint64_t size,
			struct hc_error *err)
{
	return pend_stream(L, digest, size, digest, read_fd, &fd, err);
}

/* Makes sure digest will be in the store after commit: from the archive, the layout, or the
 * store itself. */
static int need_blob(struct loader *L, const char *digest, uint64_t size, struct hc_error *err)
{
	struct pending *p = find_digest(L, digest);
	char path[128];
	int r;

	if (p) {
		p->needed = true;
		return 0;
	}
	/* Reused after a size check; a damaged blob is imported again (its commit replaces it). */
	struct hc_error ce = {0};
	int c = hc_oci_store_check_blob(L->s, digest, size, false, &ce);
	if (c == 0)
		return 0;
	if (c != -ENOENT)
		hc_info("%s: importing it again", ce.message);
	if (L->dirfd < 0)
		return hc_error_setk(err, -ENOENT, HC_EK_IMAGE,
				     "blob %s is missing from the archive", digest);
	snprintf(path, sizeof(path), "blobs/sha256/%s", hc_oci_digest_hex(digest));
	_cleanup_close_ int fd = openat(L->dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return hc_error_errno(err, -errno, "blob %s", digest);
	r = pend_from_fd(L, fd, digest, size, err);
	if (r < 0)
		return r;
	L->p[L->n - 1].needed = true;
	return 0;
}

static int read_blob(struct loader *L, const char *digest, size_t max, char **ret, size_t *ret_len,
		     struct hc_error *err)
{
	struct pending *p = find_digest(L, digest);

	if (p)
		return hc_oci_blob_writer_read(p->w, max, ret, ret_len, err);
	return hc_oci_store_blob_read(L->s, digest, max, ret, ret_len, err);
}

/* ---- reading the source --------------------------------------------------------------- */

static int read_member(struct archive *a, const char *name, int64_t size, char **ret,
		       size_t *ret_len, struct hc_error *err)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;

	if (size < 0 || size > (int64_t)META_MAX)
		return hc_error_setk(err, -E2BIG, HC_EK_IMAGE, "%s is larger than %u bytes", name,
				     META_MAX);
	data = malloc((size_t)size + 1);
	if (!data)
		return hc_error_set(err, -ENOMEM, "out of memory");
	while (len < (size_t)size) {
		la_ssize_t k = archive_read_data(a, data + len, (size_t)size - len);
		if (k < 0)
			return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "read %s: %s", name,
					     archive_error_string(a));
		if (k == 0)
			return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "read %s: truncated",
					     name);
		len += (size_t)k;
	}
	data[len] = 0;
	*ret = steal_ptr(&data);
	*ret_len = len;
	return 0;
}

static ssize_t read_archive_data(void *src, char *buf, size_t n, const char *name,
				 struct hc_error *err)
{
	la_ssize_t k = archive_read_data(src, buf, n);

	if (k < 0)
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "read %s: %s", name,
				     archive_error_string(src));
	return k;
}

static int pend_member(struct loader *L, struct archive *a, const char *name, int64_t size,
		       struct hc_error *err)
{
	char expected[HC_DIGEST_SIZE] = "";
	const char *hex = NULL;

	if (size < 0 || (uint64_t)size > BLOB_MAX)
		return hc_error_setk(err, -E2BIG, HC_EK_IMAGE, "archive member %s is too large",
				     name);
	if (hc_startswith(name, "blobs/sha256/"))
		hex = name + strlen("blobs/sha256/");
	if (hex) {
		snprintf(expected, sizeof(expected), "sha256:%s", hex);
		if (!hc_oci_digest_valid(expected))
			return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
					     "archive member %s is not named by a digest", name);
	}
	return pend_stream(L, hex ? expected : NULL, (uint64_t)size, name, read_archive_data, a,
			   err);
}

static bool skipped_member(const char *name)
{
	const char *base = strrchr(name, '/');

	/* docker save's legacy per-layer metadata: not needed to build the image. */
	if (hc_streq(name, "repositories"))
		return true;
	return base && (hc_streq(base, "/json") || hc_streq(base, "/VERSION"));
}

static int read_archive(struct loader *L, struct hc_error *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	size_t count = 0;
	int r = 0, k;

	if (!a)
		return hc_error_set(err, -ENOMEM, "out of memory");
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, L->src, 1 << 16) != ARCHIVE_OK) {
		r = hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "not a readable archive: %s",
				  archive_error_string(a));
		goto out;
	}
	while ((k = archive_read_next_header(a, &e)) == ARCHIVE_OK || k == ARCHIVE_WARN) {
		char name[NAME_MAX_LEN + 1], target[NAME_MAX_LEN + 1];
		const char *hl = archive_entry_hardlink(e);
		int64_t size = archive_entry_size(e);

		if (++count > ARCHIVE_ENTRIES_MAX) {
			r = hc_error_setk(err, -E2BIG, HC_EK_IMAGE, "more than %d archive members",
					  ARCHIVE_ENTRIES_MAX);
			goto out;
		}
		r = clean_name(archive_entry_pathname(e), name, sizeof(name), err);
		if (r < 0)
			goto out;
		if (!*name)
			continue;
		if (hl) {
			r = clean_name(hl, target, sizeof(target), err);
			if (r >= 0)
				r = add_alias(L, name, target, err);
			if (r < 0)
				goto out;
			continue;
		}
		switch (archive_entry_filetype(e)) {
		case AE_IFLNK:
			r = resolve_link(name, archive_entry_symlink(e), target, sizeof(target),
					 err);
			if (r >= 0)
				r = add_alias(L, name, target, err);
			if (r < 0)
				goto out;
			continue;
		case AE_IFREG:
			break;
		default:
			continue;
		}
		if (hc_streq(name, "oci-layout")) {
			size_t len;
			free(L->oci_layout);
			L->oci_layout = NULL;
			r = read_member(a, name, size, &L->oci_layout, &len, err);
		} else if (hc_streq(name, "index.json")) {
			free(L->index_json);
			L->index_json = NULL;
			r = read_member(a, name, size, &L->index_json, &L->index_len, err);
		} else if (hc_streq(name, "manifest.json")) {
			free(L->manifest_json);
			L->manifest_json = NULL;
			r = read_member(a, name, size, &L->manifest_json, &L->manifest_len, err);
		} else if (!skipped_member(name)) {
			r = pend_member(L, a, name, size, err);
		}
		if (r < 0)
			goto out;
	}
	if (k != ARCHIVE_EOF) {
		r = hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "corrupt archive: %s",
				  archive_error_string(a));
		goto out;
	}
	if (count == 0)
		r = hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "not an archive (no members)");
out:
	archive_read_free(a);
	return r;
}

static int read_layout_dir(struct loader *L, struct hc_error *err)
{
	char p[HC_PATH_MAX];
	int r;

	L->dirfd = open(L->src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (L->dirfd < 0)
		return hc_error_errno(err, -errno, "open");
	if ((r = hc_path_fmt(p, sizeof(p), err, "%s/oci-layout", L->src)) < 0)
		return r;
	if (hc_path_read_file(p, META_MAX, &L->oci_layout, NULL, err) < 0)
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
				     "not an OCI image layout (no oci-layout file)");
	if ((r = hc_path_fmt(p, sizeof(p), err, "%s/index.json", L->src)) < 0)
		return r;
	return hc_path_read_file(p, HC_OCI_INDEX_MAX, &L->index_json, &L->index_len, err);
}

/* ---- building the image list ---------------------------------------------------------- */

static int add_image(struct loader *L, const char *digest, const char *media_type, uint64_t size,
		     const char *const *names, size_t n_names, struct hc_error *err)
{
	struct image *img;

	if (L->n_imgs >= IMAGES_MAX)
		return hc_error_setk(err, -E2BIG, HC_EK_IMAGE, "more than %d images", IMAGES_MAX);
	img = &L->imgs[L->n_imgs++];
	memset(img, 0, sizeof(*img));
	snprintf(img->digest, sizeof(img->digest), "%s", digest);
	snprintf(img->media_type, sizeof(img->media_type), "%s", media_type);
	img->size = size;
	img->names = calloc(n_names + 1, sizeof(char *));
	if (!img->names)
		return hc_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n_names; i++) {
		char norm[512];
		int r = hc_oci_store_normalise_name(names[i], norm, sizeof(norm), err);
		if (r < 0)
			return r;
		img->names[img->n_names] = strdup(norm);
		if (!img->names[img->n_names])
			return hc_error_set(err, -ENOMEM, "out of memory");
		img->n_names++;
	}
	return 0;
}

/* An image manifest: its config and layers must be there and valid. */
static int need_manifest_content(struct loader *L, const struct hc_oci_manifest *m,
				 struct hc_error *err)
{
	int r;

	r = need_blob(L, m->config.digest, m->config.size, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < m->n_layers; i++) {
		if (!hc_oci_media_type_is_layer(m->layers[i].media_type))
			return hc_error_setk(err, -EPROTONOSUPPORT, HC_EK_IMAGE,
					     "layer %s has an unsupported media type '%.100s'",
					     m->layers[i].digest, m->layers[i].media_type);
		r = need_blob(L, m->layers[i].digest, m->layers[i].size, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Follows a descriptor of the layout's index.json down to the host's image manifest. */
static int import_desc(struct loader *L, const struct hc_oci_desc *d, const char *const *names,
		       size_t n_names, struct hc_error *err)
{
	struct hc_oci_desc cur = *d;
	int r;

	cur.ref_name = NULL;
	for (int depth = 0; depth < 4; depth++) {
		_cleanup_free_ char *data = NULL;
		struct hc_oci_manifest m;
		size_t len = 0;

		r = need_blob(L, cur.digest, cur.size, err);
		if (r < 0)
			return r;
		r = read_blob(L, cur.digest, HC_OCI_MANIFEST_MAX, &data, &len, err);
		if (r < 0)
			return r;
		r = hc_oci_manifest_parse(data, len, cur.media_type[0] ? cur.media_type : NULL, &m,
					  err);
		if (r < 0) {
			hc_oci_manifest_free(&m);
			return hc_error_prefix(err, "manifest %s", cur.digest);
		}
		if (m.kind == HC_OCI_KIND_MANIFEST) {
			r = need_manifest_content(L, &m, err);
			if (r >= 0)
				r = add_image(L, cur.digest, m.media_type, len, names, n_names,
					      err);
			hc_oci_manifest_free(&m);
			return r;
		}
		/* The store names the platform manifest (DESIGN.md §5): the index itself is not
		 * kept. */
		struct pending *ip = find_digest(L, cur.digest);
		if (ip)
			ip->needed = false;
		struct hc_oci_platform host;
		const struct hc_oci_desc *sel = NULL;
		hc_oci_platform_host(&host);
		r = hc_oci_index_select(&m, &host, &sel, err);
		if (r >= 0) {
			cur = *sel;
			cur.ref_name = NULL;
		}
		hc_oci_manifest_free(&m);
		if (r < 0)
			return r;
	}
	return hc_error_setk(err, -ELOOP, HC_EK_IMAGE, "indexes nested too deeply");
}

/* image-spec annotations.md: ref.name is usually just a tag ("latest"); a value that carries a
 * repository ("x:tag", "host/x") names an image by itself. */
static bool is_full_name(const char *s)
{
	return s && (strchr(s, '/') || strchr(s, ':') || strchr(s, '@'));
}

static int load_oci(struct loader *L, const char *name, struct hc_error *err)
{
	struct hc_oci_manifest idx;
	size_t usable = 0;
	int r;

	r = hc_oci_manifest_parse(L->index_json, L->index_len, NULL, &idx, err);
	if (r >= 0 && idx.kind != HC_OCI_KIND_INDEX)
		r = hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "index.json is not an image index");
	if (r < 0) {
		hc_oci_manifest_free(&idx);
		return hc_error_prefix(err, "index.json");
	}
	if (idx.n_manifests == 0) {
		hc_oci_manifest_free(&idx);
		return hc_error_setk(err, -ENOENT, HC_EK_IMAGE, "the layout holds no image");
	}
	if (name) {
		if (idx.n_manifests > 1) {
			r = hc_error_setk(err, -EINVAL, HC_EK_USAGE,
					  "the layout holds %zu images; --name needs exactly one",
					  idx.n_manifests);
		} else {
			r = import_desc(L, &idx.manifests[0], &name, 1, err);
		}
		hc_oci_manifest_free(&idx);
		return r;
	}
	for (size_t i = 0; i < idx.n_manifests && r >= 0; i++) {
		const char *rn = idx.manifests[i].ref_name;
		char local[HC_OCI_TAG_MAX + 16];
		if (!rn || !*rn)
			continue;
		if (!is_full_name(rn)) {
			/* Only a tag ("latest": umoci, buildah write those). Docker loads such an
			 * image untagged; we name it localhost/<tag>, which `load` prints. */
			if (strlen(rn) > HC_OCI_TAG_MAX)
				continue;
			snprintf(local, sizeof(local), "localhost/%s", rn);
			hc_info("the layout names an image only by the tag '%s': loading it as %s",
				rn, local);
			rn = local;
		}
		usable++;
		r = import_desc(L, &idx.manifests[i], &rn, 1, err);
	}
	hc_oci_manifest_free(&idx);
	if (r >= 0 && usable == 0)
		r = hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				  "the image carries no name (no ref.name annotation): use --name");
	return r;
}

static const char *layer_media_type(const struct pending *p)
{
	if (p->magic[0] == 0x1f && p->magic[1] == 0x8b)
		return HC_OCI_MT_LAYER_GZIP;
	if (p->magic[0] == 0x28 && p->magic[1] == 0xb5 && p->magic[2] == 0x2f &&
	    p->magic[3] == 0xfd)
		return HC_OCI_MT_LAYER_ZSTD;
	return HC_OCI_MT_LAYER;
}

/* One entry of a docker-archive's manifest.json: a config and its layers become an OCI
 * manifest (stored as a real blob); the config is kept as it is (the Docker image JSON is the
 * OCI image config, image-spec config.md). */
static int import_docker(struct loader *L, json_t *item, const char *name, struct hc_error *err)
{
	json_auto_t *man = NULL, *cfg = NULL;
	_cleanup_free_ char *cfgdata = NULL, *mdata = NULL;
	json_t *diff_ids;
	struct hc_oci_blob_writer *w = NULL;
	const char *cfgpath = json_string_value(json_object_get(item, "Config"));
	json_t *layers = json_object_get(item, "Layers"), *tags = json_object_get(item, "RepoTags");
	const char *names[IMAGES_MAX];
	struct pending *cp, *mp = NULL;
	size_t n_names = 0, i, len = 0;
	json_t *l, *jl;
	int r;

	if (!cfgpath || !json_is_array(layers) || json_array_size(layers) > HC_OCI_LAYERS_MAX)
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
				     "manifest.json: an entry lacks Config or Layers");
	cp = find_path(L, cfgpath);
	if (!cp)
		return hc_error_setk(err, -ENOENT, HC_EK_IMAGE,
				     "manifest.json names %.200s, which is not in the archive",
				     cfgpath);
	cp->needed = true;
	r = hc_oci_blob_writer_read(cp->w, HC_OCI_CONFIG_MAX, &cfgdata, &len, err);
	if (r < 0)
		return hc_error_prefix(err, "image config %.200s", cfgpath);
	/* Only rootfs.diff_ids matters here (image-spec config.md); the run reads the rest. */
	cfg = json_loadb(cfgdata, len, JSON_REJECT_DUPLICATES, NULL);
	diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	if (!json_is_object(cfg) || !json_is_array(diff_ids))
		return hc_error_setk(
			err, -EBADMSG, HC_EK_IMAGE,
			"image config %.200s: not an image config (no rootfs.diff_ids)", cfgpath);
	if (json_array_size(diff_ids) != json_array_size(layers))
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
				     "image config %.200s lists %zu layers, manifest.json %zu",
				     cfgpath, json_array_size(diff_ids), json_array_size(layers));
	man = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
			HC_OCI_MT_MANIFEST, "config", "mediaType", HC_OCI_MT_CONFIG, "digest",
			cp->digest, "size", (json_int_t)cp->size, "layers");
	if (!man)
		return hc_error_set(err, -ENOMEM, "out of memory");
	jl = json_object_get(man, "layers");
	json_array_foreach(layers, i, l)
	{
		const char *lp = json_string_value(l);
		struct pending *p = lp ? find_path(L, lp) : NULL;
		if (!p) {
			r = hc_error_setk(err, -ENOENT, HC_EK_IMAGE,
					  "manifest.json names layer %.200s, which is not in the "
					  "archive",
					  lp ? lp : "(not a string)");
			break;
		}
		p->needed = true;
		const char *mt = layer_media_type(p);
		/* An uncompressed layer's digest is its diff_id: the config must agree. */
		const char *diff_id = json_string_value(json_array_get(diff_ids, i));
		if (hc_streq(mt, HC_OCI_MT_LAYER) && !hc_streq(diff_id, p->digest)) {
			r = hc_error_setk(
				err, -EBADMSG, HC_EK_IMAGE,
				"layer %.200s (%s) does not match the config's diff_id %.80s", lp,
				p->digest, diff_id ? diff_id : "(none)");
			break;
		}
		if (json_array_append_new(jl,
					  json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest",
						    p->digest, "size", (json_int_t)p->size)) < 0) {
			r = hc_error_set(err, -ENOMEM, "out of memory");
			break;
		}
	}
	if (r < 0)
		return r;

	mdata = json_dumps(man, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!mdata)
		return hc_error_set(err, -ENOMEM, "out of memory");
	r = hc_oci_store_blob_begin(L->s, NULL, strlen(mdata), &w, err);
	if (r < 0)
		return r;
	r = hc_oci_blob_writer_write(w, mdata, strlen(mdata), err);
	if (r >= 0)
		r = add_pending(L, GENERATED, &w, (const unsigned char *)"{\0\0\0", &mp, err);
	hc_oci_blob_writer_abort(w);
	if (r < 0)
		return r;
	mp->needed = true;

	if (name) {
		names[n_names++] = name;
	} else {
		json_array_foreach(tags, i, l)
		{
			if (json_string_value(l) && n_names < IMAGES_MAX)
				names[n_names++] = json_string_value(l);
		}
	}
	if (n_names == 0)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "the image carries no name (RepoTags is empty): use --name");
	return add_image(L, mp->digest, HC_OCI_MT_MANIFEST, strlen(mdata), names, n_names, err);
}

static int load_docker(struct loader *L, const char *name, struct hc_error *err)
{
	json_auto_t *root = NULL;
	json_error_t jerr;
	json_t *item;
	size_t i;
	int r = 0;

	root = json_loadb(L->manifest_json, L->manifest_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_array(root) || json_array_size(root) == 0)
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "manifest.json: %s",
				     root ? "not a non-empty array" : jerr.text);
	if (json_array_size(root) > IMAGES_MAX)
		return hc_error_setk(err, -E2BIG, HC_EK_IMAGE, "manifest.json: too many images");
	if (name && json_array_size(root) > 1)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "the archive holds %zu images; --name needs exactly one",
				     json_array_size(root));
	json_array_foreach(root, i, item)
	{
		r = import_docker(L, item, name, err);
		if (r < 0)
			break;
	}
	return r;
}

/* ---- the whole load ------------------------------------------------------------------- */

static int commit_and_name(struct loader *L, struct hc_error *err)
{
	int r;

	for (size_t i = 0; i < L->n; i++) {
		if (!L->p[i].needed)
			continue;
		r = hc_oci_blob_writer_commit(steal_ptr(&L->p[i].w), NULL, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < L->n_imgs; i++)
		for (size_t j = 0; j < L->imgs[i].n_names; j++) {
			r = hc_oci_store_add_name(L->s, L->imgs[i].names[j], L->imgs[i].digest,
						  L->imgs[i].media_type, L->imgs[i].size, err);
			if (r < 0)
				return r;
			hc_info("loaded %s (%s)", L->imgs[i].names[j], L->imgs[i].digest);
		}
	return 0;
}

int hc_image_load(struct hc_store *store, const char *path, const char *name, char *ret_digest,
		  struct hc_error *err)
{
	struct loader L = {.s = store, .src = path, .dirfd = -1};
	_cleanup_close_ int wlock = -1;
	struct stat st;
	int r;

	if (!path || !*path)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "load: a path is required");
	if (name && !*name)
		name = NULL;
	/* podman tags a name without a registry as localhost/NAME (it was never pulled from
	 * docker.io); names inside an archive keep docker's normalisation. */
	char local_name[512];
	if (name && !hc_oci_ref_has_domain(name)) {
		if ((size_t)snprintf(local_name, sizeof(local_name), "localhost/%s", name) >=
		    sizeof(local_name))
			return hc_error_setk(err, -ENAMETOOLONG, HC_EK_USAGE,
					     "load: --name '%.80s' is too long", name);
		name = local_name;
	}
	if (name) {
		char norm[512];
		r = hc_oci_store_normalise_name(name, norm, sizeof(norm), err);
		if (r < 0)
			return hc_error_prefix(err, "load '%s'", path);
	}
	if (stat(path, &st) < 0)
		return hc_error_setk(err, -errno, HC_EK_USAGE, "load '%s': %s", path,
				     strerror(errno));
	/* From the first blob to the names: prune must not remove what we add. */
	r = hc_oci_store_lock_writers(store, true, false, &wlock, err);
	if (r < 0)
		goto out;
	if (S_ISDIR(st.st_mode))
		r = read_layout_dir(&L, err);
	else if (S_ISREG(st.st_mode))
		r = read_archive(&L, err);
	else
		r = hc_error_setk(err, -EINVAL, HC_EK_USAGE, "not a file or directory");
	if (r < 0)
		goto out;
	if (L.index_json && L.oci_layout) {
		json_t *lay = json_loads(L.oci_layout, 0, NULL);
		bool ok = json_is_string(json_object_get(lay, "imageLayoutVersion"));
		json_decref(lay);
		if (!ok) {
			r = hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "invalid oci-layout file");
			goto out;
		}
		r = load_oci(&L, name, err);
	} else if (L.manifest_json) {
		r = load_docker(&L, name, err);
	} else {
		r = hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
				  "not an OCI layout, oci-archive or docker-archive (no "
				  "index.json+oci-layout or manifest.json)");
	}
	if (r < 0)
		goto out;
	r = commit_and_name(&L, err);
	if (r < 0)
		goto out;
	if (ret_digest && L.n_imgs)
		memcpy(ret_digest, L.imgs[0].digest, HC_DIGEST_SIZE);
out:
	if (r < 0) {
		hc_error_kind(err, HC_EK_IMAGE);
		hc_error_prefix(err, "load '%s'", path);
	}
	loader_free(&L);
	return r;
}
