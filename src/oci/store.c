/* SPDX-License-Identifier: MIT */
/*
 * The store as an OCI image layout (image-spec image-layout.md): oci-layout, index.json and
 * blobs/sha256/<hex>, under <state>/store, so skopeo (oci:DIR:REF) and umoci read it as is.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "oci/manifest.h"
#include "oci/ref.h"
#include "oci/store.h"

#define OCI_LAYOUT_JSON "{\"imageLayoutVersion\":\"1.0.0\"}"
#define EMPTY_INDEX_JSON "{\"schemaVersion\":2,\"manifests\":[]}"

/* ---- opening -------------------------------------------------------------------------- */

static int ensure_file(const char *path, const char *content, struct hc_error *err)
{
	if (hc_path_exists(path))
		return 0;
	return hc_path_write_file_atomic(path, content, strlen(content), 0644, err);
}

int hc_oci_store_init(struct hc_store *s, const char *state_dir, struct hc_error *err)
{
	char p[HC_PATH_MAX];
	int r;

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->writers_mutex, NULL);
	s->writers_fd = -1;
	if (state_dir) {
		r = hc_path_fmt(s->state_dir, sizeof(s->state_dir), err, "%s", state_dir);
		if (r >= 0)
			r = hc_path_mkdir_p(s->state_dir, 0755, err);
	} else {
		r = hc_path_state_dir(s->state_dir, sizeof(s->state_dir), err);
	}
	if (r < 0)
		return r;
	if ((r = hc_path_fmt(s->store_dir, sizeof(s->store_dir), err, "%s/store", s->state_dir)) <
		    0 ||
	    (r = hc_path_fmt(s->rootfs_dir, sizeof(s->rootfs_dir), err, "%s/rootfs",
			     s->state_dir)) < 0 ||
	    (r = hc_path_fmt(s->disks_dir, sizeof(s->disks_dir), err, "%s/disks", s->state_dir)) <
		    0 ||
	    (r = hc_path_fmt(p, sizeof(p), err, "%s/blobs/sha256", s->store_dir)) < 0)
		return r;
	if ((r = hc_path_mkdir_p(p, 0755, err)) < 0 ||
	    (r = hc_path_mkdir_p(s->rootfs_dir, 0755, err)) < 0 ||
	    (r = hc_path_mkdir_p(s->disks_dir, 0755, err)) < 0)
		return r;

	/* Two processes may create these at once: both write the same content atomically. */
	if ((r = hc_path_fmt(p, sizeof(p), err, "%s/oci-layout", s->store_dir)) < 0 ||
	    (r = ensure_file(p, OCI_LAYOUT_JSON, err)) < 0)
		return r;
	/* index.json under the index lock: an unlocked "create if missing" could replace an
	 * index another process has just written its first name into. */
	if ((r = hc_path_fmt(p, sizeof(p), err, "%s/index.json", s->store_dir)) < 0)
		return r;
	if (!hc_path_exists(p)) {
		_cleanup_close_ int lock = -1;
		r = hc_oci_store_lock_index(s, &lock, err);
		if (r >= 0)
			r = ensure_file(p, EMPTY_INDEX_JSON, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int hc_store_open(const char *state_dir, struct hc_store **ret, struct hc_error *err)
{
	struct hc_store *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return hc_error_set(err, -ENOMEM, "out of memory");
	r = hc_oci_store_init(s, state_dir, err);
	if (r < 0) {
		free(s);
		hc_error_kind(err, HC_EK_IO);
		return hc_error_prefix(err, "open store");
	}
	*ret = s;
	return 0;
}

void hc_store_close(struct hc_store *store)
{
	if (!store)
		return;
	if (store->writers_fd >= 0)
		close(store->writers_fd);
	pthread_mutex_destroy(&store->writers_mutex);
	free(store);
}

static int writers_ref(struct hc_store *s, struct hc_error *err)
{
	int r = 0;

	pthread_mutex_lock(&s->writers_mutex);
	if (s->writers_users == 0)
		r = hc_oci_store_lock_writers(s, true, false, &s->writers_fd, err);
	if (r >= 0)
		s->writers_users++;
	pthread_mutex_unlock(&s->writers_mutex);
	return r;
}

static void writers_unref(struct hc_store *s)
{
	pthread_mutex_lock(&s->writers_mutex);
	if (s->writers_users > 0 && --s->writers_users == 0 && s->writers_fd >= 0) {
		close(s->writers_fd);
		s->writers_fd = -1;
	}
	pthread_mutex_unlock(&s->writers_mutex);
}

/* ---- blobs ---------------------------------------------------------------------------- */

int hc_oci_store_blob_path(const struct hc_store *s, const char *digest, char *buf, size_t n,
			   struct hc_error *err)
{
	const char *hex = hc_oci_digest_hex(digest);

	if (!hex)
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE, "invalid digest '%.80s'",
				     digest ? digest : "(null)");
	return hc_path_fmt(buf, n, err, "%s/blobs/sha256/%s", s->store_dir, hex);
}

bool hc_oci_store_has_blob(const struct hc_store *s, const char *digest)
{
	char p[HC_PATH_MAX];
	struct stat st;

	if (hc_oci_store_blob_path(s, digest, p, sizeof(p), NULL) < 0)
		return false;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int hc_oci_store_check_blob(const struct hc_store *s, const char *digest, uint64_t size, bool full,
			    struct hc_error *err)
{
	char p[HC_PATH_MAX], got[HC_DIGEST_SIZE];
	_cleanup_close_ int fd = -1;
	struct hc_error e = {0};
	struct stat st;
	int r;

	r = hc_oci_store_blob_path(s, digest, p, sizeof(p), err);
	if (r < 0)
		return r;
	fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return hc_error_setk(err, -ENOENT, HC_EK_IMAGE, "blob %s is missing", digest);
	if (fd < 0 || fstat(fd, &st) < 0)
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "blob %s cannot be read: %s",
				     digest, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "blob %s is not a regular file",
				     digest);
	if ((uint64_t)st.st_size != size)
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
				     "blob %s has %lld bytes, its descriptor says %llu", digest,
				     (long long)st.st_size, (unsigned long long)size);
	if (!full)
		return 0;
	r = hc_oci_digest_fd(fd, got, NULL, &e);
	if (r < 0)
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "blob %s cannot be read: %s",
				     digest, e.message);
	if (strcmp(got, digest) != 0)
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
				     "blob %s does not match its digest (content is %s)", digest,
				     got);
	return 0;
}

struct hc_oci_blob_writer {
	struct hc_store *s;
	int fd;
	bool wlock;		    /* holds a reference on s's shared writer lock */
	char tmp_path[HC_PATH_MAX]; /* empty with O_TMPFILE */
	char expected[HC_DIGEST_SIZE];
	char digest[HC_DIGEST_SIZE]; /* set by finish */
	uint64_t expected_size;
	uint64_t n;
	struct hc_oci_hasher h;
};

static int fsync_dir(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

int hc_oci_store_blob_begin(struct hc_store *s, const char *expected_digest, uint64_t expected_size,
			    struct hc_oci_blob_writer **ret, struct hc_error *err)
{
	struct hc_oci_blob_writer *w;
	char dir[HC_PATH_MAX];
	int r;

	if (expected_digest && !hc_oci_digest_valid(expected_digest))
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE, "invalid digest '%.80s'",
				     expected_digest);
	r = hc_path_fmt(dir, sizeof(dir), err, "%s/blobs/sha256", s->store_dir);
	if (r < 0)
		return r;
	w = calloc(1, sizeof(*w));
	if (!w)
		return hc_error_set(err, -ENOMEM, "out of memory");
	w->s = s;
	w->fd = -1;
	w->expected_size = expected_size;
	if (expected_digest)
		snprintf(w->expected, sizeof(w->expected), "%s", expected_digest);

	r = writers_ref(s, err);
	if (r < 0)
		goto fail;
	w->wlock = true;
	r = hc_oci_hasher_init(&w->h, err);
	if (r < 0)
		goto fail;

	/* An unnamed file leaves nothing behind whatever happens to this process. */
	w->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
			r = hc_error_errno(err, -errno, "create a temp file in %s", dir);
			goto fail;
		}
		char id[17];
		hc_path_random_id(id, 16);
		r = hc_path_fmt(w->tmp_path, sizeof(w->tmp_path), err, "%s/.tmp-%s", dir, id);
		if (r < 0)
			goto fail;
		/* Locked until commit/abort: prune removes only temp files nobody holds. */
		r = hc_oci_store_create_temp(w->tmp_path, false, &w->fd, err);
		if (r < 0) {
			w->tmp_path[0] = 0;
			goto fail;
		}
		(void)fchmod(w->fd, 0644);
	}
	*ret = w;
	return 0;
fail:
	hc_oci_blob_writer_abort(w);
	return r;
}

static const char *writer_name(const struct hc_oci_blob_writer *w)
{
	return w->expected[0] ? w->expected : "(new blob)";
}

int hc_oci_blob_writer_write(struct hc_oci_blob_writer *w, const void *data, size_t n,
			     struct hc_error *err)
{
	const char *p = data;
	int r;

	if (w->digest[0])
		return hc_error_set(err, -EINVAL, "blob %s: write after finish", w->digest);
	if (w->expected_size && (w->h.n + n < w->h.n || w->h.n + n > w->expected_size))
		return hc_error_setk(err, -EFBIG, HC_EK_IMAGE,
				     "blob %s is larger than its declared size %" PRIu64,
				     writer_name(w), w->expected_size);
	r = hc_oci_hasher_update(&w->h, data, n, err);
	if (r < 0)
		return r;
	while (n > 0) {
		ssize_t k = write(w->fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return hc_error_errno(err, -errno, "write blob %s", writer_name(w));
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

uint64_t hc_oci_blob_writer_size(const struct hc_oci_blob_writer *w)
{
	return w->h.n;
}

void hc_oci_blob_writer_start_sync(struct hc_oci_blob_writer *w)
{
	/* Advisory: a failure shows at commit's fsync, which stays the durability point. */
	if (w && w->fd >= 0)
		(void)sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* A blob under the same name exists already. Another writer's commit is as good as ours; a
 * damaged file (truncated, altered: the store's only way to heal) is replaced atomically, through
 * a locked temp name (prune cannot run meanwhile: we hold the writer lock). */
static int replace_existing(struct hc_oci_blob_writer *w, const char *final, const char *proc,
			    struct hc_error *err)
{
	char tmp[HC_PATH_MAX], id[17], dir[HC_PATH_MAX];
	struct hc_error e = {0};

	if (hc_oci_store_check_blob(w->s, w->digest, w->n, true, &e) == 0)
		return 0;
	hc_info("replacing a damaged blob: %s", e.message);
	hc_path_random_id(id, 16);
	if (hc_path_fmt(dir, sizeof(dir), err, "%s/blobs/sha256", w->s->store_dir) < 0 ||
	    hc_path_fmt(tmp, sizeof(tmp), err, "%s/.tmp-%s", dir, id) < 0)
		return -ENAMETOOLONG;
	(void)flock(w->fd, LOCK_EX);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) < 0 &&
	    linkat(w->fd, "", AT_FDCWD, tmp, AT_EMPTY_PATH) < 0)
		return hc_error_errno(err, -errno, "link blob into %s", tmp);
	if (rename(tmp, final) < 0) {
		int k = -errno;
		unlink(tmp);
		return hc_error_errno(err, k, "rename into %s", final);
	}
	return 0;
}

static int link_into_place(struct hc_oci_blob_writer *w, const char *final, struct hc_error *err)
{
	if (w->tmp_path[0]) {
		if (rename(w->tmp_path, final) < 0)
			return hc_error_errno(err, -errno, "rename into %s", final);
		w->tmp_path[0] = 0;
		return 0;
	}
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", w->fd);
	int k = linkat(AT_FDCWD, proc, AT_FDCWD, final, AT_SYMLINK_FOLLOW);
	/* Without /proc: AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH, which root has). */
	if (k < 0 && errno == ENOENT)
		k = linkat(w->fd, "", AT_FDCWD, final, AT_EMPTY_PATH);
	if (k < 0) {
		if (errno == EEXIST)
			return replace_existing(w, final, proc, err);
		return hc_error_errno(err, -errno, "link blob into %s", final);
	}
	return 0;
}

int hc_oci_blob_writer_finish(struct hc_oci_blob_writer *w, char *ret_digest, struct hc_error *err)
{
	char got[HC_DIGEST_SIZE];
	int r;

	if (!w->digest[0]) {
		w->n = w->h.n;
		r = hc_oci_hasher_final(&w->h, got, err);
		if (r < 0)
			return r;
		if (w->expected[0] && !hc_streq(got, w->expected))
			return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
					     "blob %s: digest mismatch (content is %s)",
					     w->expected, got);
		if (w->expected_size && w->n != w->expected_size)
			return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
					     "blob %s: size %" PRIu64
					     " does not match its declared size %" PRIu64,
					     got, w->n, w->expected_size);
		memcpy(w->digest, got, sizeof(got));
	}
	if (ret_digest)
		memcpy(ret_digest, w->digest, HC_DIGEST_SIZE);
	return 0;
}

int hc_oci_blob_writer_read(struct hc_oci_blob_writer *w, size_t max, char **ret, size_t *ret_len,
			    struct hc_error *err)
{
	uint64_t n = w->digest[0] ? w->n : w->h.n;
	_cleanup_free_ char *data = NULL;
	size_t off = 0;

	if (n > max)
		return hc_error_setk(err, -E2BIG, HC_EK_IMAGE, "blob %s is larger than %zu bytes",
				     w->digest[0] ? w->digest : writer_name(w), max);
	data = malloc((size_t)n + 1);
	if (!data)
		return hc_error_set(err, -ENOMEM, "out of memory");
	while (off < n) {
		ssize_t k = pread(w->fd, data + off, (size_t)n - off, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return hc_error_errno(err, k < 0 ? -errno : -EIO, "read back blob %s",
					      writer_name(w));
		off += (size_t)k;
	}
	data[n] = 0;
	*ret = steal_ptr(&data);
	if (ret_len)
		*ret_len = (size_t)n;
	return 0;
}

int hc_oci_blob_writer_commit(struct hc_oci_blob_writer *w, char *ret_digest, struct hc_error *err)
{
	char got[HC_DIGEST_SIZE], final[HC_PATH_MAX];
	int r;

	r = hc_oci_blob_writer_finish(w, got, err);
	if (r < 0)
		goto out;
	r = hc_oci_store_blob_path(w->s, got, final, sizeof(final), err);
	if (r < 0)
		goto out;
	if (fsync(w->fd) < 0) {
		r = hc_error_errno(err, -errno, "fsync blob %s", got);
		goto out;
	}
	r = link_into_place(w, final, err);
	if (r < 0)
		goto out;
	char dir[HC_PATH_MAX];
	if (hc_path_fmt(dir, sizeof(dir), NULL, "%s/blobs/sha256", w->s->store_dir) >= 0)
		(void)fsync_dir(dir);
	if (ret_digest)
		memcpy(ret_digest, got, HC_DIGEST_SIZE);
out:
	hc_oci_blob_writer_abort(w);
	return r;
}

void hc_oci_blob_writer_abort(struct hc_oci_blob_writer *w)
{
	if (!w)
		return;
	if (w->tmp_path[0])
		unlink(w->tmp_path);
	if (w->fd >= 0)
		close(w->fd);
	if (w->wlock)
		writers_unref(w->s);
	hc_oci_hasher_free(&w->h);
	free(w);
}

int hc_oci_store_blob_put(struct hc_store *s, const char *expected_digest, const void *data,
			  size_t n, char *ret_digest, struct hc_error *err)
{
	struct hc_oci_blob_writer *w = NULL;
	int r;

	r = hc_oci_store_blob_begin(s, expected_digest, n, &w, err);
	if (r < 0)
		return r;
	r = hc_oci_blob_writer_write(w, data, n, err);
	if (r < 0) {
		hc_oci_blob_writer_abort(w);
		return r;
	}
	return hc_oci_blob_writer_commit(w, ret_digest, err);
}

int hc_oci_store_blob_read(struct hc_store *s, const char *digest, size_t max, char **ret,
			   size_t *ret_len, struct hc_error *err)
{
	_cleanup_free_ char *data = NULL;
	char p[HC_PATH_MAX], got[HC_DIGEST_SIZE];
	size_t len = 0;
	int r;

	r = hc_oci_store_blob_path(s, digest, p, sizeof(p), err);
	if (r < 0)
		return r;
	r = hc_path_read_file(p, max, &data, &len, err);
	if (r < 0) {
		hc_error_kind(err, HC_EK_IMAGE);
		if (r == -ENOENT)
			return hc_error_setk(err, r, HC_EK_IMAGE,
					     "blob %s is missing from the store", digest);
		return r;
	}
	r = hc_oci_digest_buf(data, len, got, err);
	if (r < 0)
		return r;
	if (!hc_streq(got, digest))
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
				     "blob %s is corrupt in the store (content is %s)", digest,
				     got);
	*ret = steal_ptr(&data);
	if (ret_len)
		*ret_len = len;
	return 0;
}

/* ---- locks ---------------------------------------------------------------------------- */

int hc_oci_store_lock_image(struct hc_store *s, const char *digest, bool shared, bool nonblock,
			    int *ret_fd, struct hc_error *err)
{
	const char *hex = hc_oci_digest_hex(digest);
	char p[HC_PATH_MAX];
	int r;

	if (!hex)
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE, "invalid digest '%.80s'",
				     digest ? digest : "(null)");
	r = hc_path_fmt(p, sizeof(p), err, "%s/%s.lock", s->rootfs_dir, hex);
	if (r < 0)
		return r;
	r = hc_path_lock(p, shared, nonblock, ret_fd, err);
	if (r == -EBUSY)
		return hc_error_setk(err, -EBUSY, HC_EK_IMAGE, "image %s is in use", digest);
	return r;
}

int hc_oci_store_lock_writers(struct hc_store *s, bool shared, bool nonblock, int *ret_fd,
			      struct hc_error *err)
{
	char p[HC_PATH_MAX];
	int r;

	r = hc_path_fmt(p, sizeof(p), err, "%s/.writers.lock", s->store_dir);
	if (r < 0)
		return r;
	r = hc_path_lock(p, shared, nonblock, ret_fd, err);
	if (r == -EBUSY)
		return hc_error_setk(err, -EBUSY, HC_EK_IMAGE,
				     "the store is busy: a pull or load is in progress");
	return r;
}

int hc_oci_store_lock_index(struct hc_store *s, int *ret_fd, struct hc_error *err)
{
	char p[HC_PATH_MAX];
	int r;

	r = hc_path_fmt(p, sizeof(p), err, "%s/.lock", s->store_dir);
	if (r < 0)
		return r;
	return hc_path_lock(p, false, false, ret_fd, err);
}

/* ---- index.json ----------------------------------------------------------------------- */

/* Reads index.json; ret_manifests is a borrowed reference into *ret. */
static int index_read(struct hc_store *s, json_t **ret, json_t **ret_manifests,
		      struct hc_error *err)
{
	_cleanup_free_ char *data = NULL;
	char p[HC_PATH_MAX];
	json_error_t jerr;
	json_t *root, *m;
	int r;

	r = hc_path_fmt(p, sizeof(p), err, "%s/index.json", s->store_dir);
	if (r < 0)
		return r;
	r = hc_path_read_file(p, HC_OCI_INDEX_MAX, &data, NULL, err);
	if (r < 0)
		return r;
	root = json_loads(data, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "%s: invalid JSON: %s (line %d)",
				     p, jerr.text, jerr.line);
	if (!json_is_object(root)) {
		json_decref(root);
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "%s: not a JSON object", p);
	}
	m = json_object_get(root, "manifests");
	if (!m) {
		m = json_array();
		if (!m || json_object_set_new(root, "manifests", m) < 0) {
			json_decref(root);
			return hc_error_set(err, -ENOMEM, "out of memory");
		}
	}
	if (!json_is_array(m)) {
		json_decref(root);
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "%s: manifests is not an array",
				     p);
	}
	*ret = root;
	*ret_manifests = m;
	return 0;
}

static int index_write(struct hc_store *s, json_t *root, struct hc_error *err)
{
	_cleanup_free_ char *data = NULL;
	char p[HC_PATH_MAX];
	int r;

	r = hc_path_fmt(p, sizeof(p), err, "%s/index.json", s->store_dir);
	if (r < 0)
		return r;
	data = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!data)
		return hc_error_set(err, -ENOMEM, "out of memory");
	return hc_path_write_file_atomic(p, data, strlen(data), 0644, err);
}

static const char *entry_name(json_t *e)
{
	json_t *a = json_object_get(e, "annotations");

	return json_string_value(json_object_get(a, HC_OCI_REF_NAME));
}

/* Removes the index entries named name; returns how many there were. */
static size_t drop_name(json_t *manifests, const char *name)
{
	size_t n = 0;

	for (size_t i = json_array_size(manifests); i-- > 0;)
		if (hc_streq(entry_name(json_array_get(manifests, i)), name)) {
			json_array_remove(manifests, i);
			n++;
		}
	return n;
}

int hc_oci_store_add_name(struct hc_store *s, const char *name, const char *manifest_digest,
			  const char *media_type, uint64_t size, struct hc_error *err)
{
	_cleanup_close_ int lock = -1;
	json_auto_t *root = NULL;
	json_t *m = NULL, *e;
	int r;

	if (!name || !*name)
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE, "an image name is required");
	if (!hc_oci_digest_valid(manifest_digest))
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE, "invalid digest '%.80s'",
				     manifest_digest ? manifest_digest : "(null)");
	r = hc_oci_store_lock_index(s, &lock, err);
	if (r < 0)
		return r;
	r = index_read(s, &root, &m, err);
	if (r < 0)
		return r;
	(void)drop_name(m, name);
	e = json_pack("{s:s, s:s, s:I, s:{s:s}}", "mediaType",
		      media_type ? media_type : HC_OCI_MT_MANIFEST, "digest", manifest_digest,
		      "size", (json_int_t)size, "annotations", HC_OCI_REF_NAME, name);
	if (!e || json_array_append_new(m, e) < 0)
		return hc_error_set(err, -ENOMEM, "out of memory");
	r = index_write(s, root, err);
	if (r < 0)
		return hc_error_prefix(err, "add '%s' to the store", name);
	return 0;
}

int hc_oci_store_remove_name(struct hc_store *s, const char *name, struct hc_error *err)
{
	_cleanup_close_ int lock = -1;
	json_auto_t *root = NULL;
	json_t *m = NULL;
	int r;

	r = hc_oci_store_lock_index(s, &lock, err);
	if (r < 0)
		return r;
	r = index_read(s, &root, &m, err);
	if (r < 0)
		return r;
	if (!drop_name(m, name))
		return hc_error_setk(err, -ENOENT, HC_EK_IMAGE, "no such image: %s", name);
	return index_write(s, root, err);
}

int hc_oci_store_create_temp(const char *path, bool dir, int *ret_fd, struct hc_error *err)
{
	for (int tries = 0; tries < 8; tries++) {
		struct stat st;
		int fd;

		if (dir) {
			if (mkdir(path, 0700) < 0)
				return hc_error_errno(err, -errno, "mkdir %s", path);
			fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		} else {
			fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		}
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* a cleaner took the directory before we opened it */
			return hc_error_errno(err, -errno, "create %s", path);
		}
		if (flock(fd, LOCK_EX) < 0) {
			int e = -errno;
			close(fd);
			return hc_error_errno(err, e, "lock %s", path);
		}
		/* Between the create and the lock a cleaner may have taken it for stale and removed
		 * it: then it is unlinked (st_nlink 0), and we make a new one. */
		if (fstat(fd, &st) == 0 && st.st_nlink > 0) {
			*ret_fd = fd;
			return 0;
		}
		close(fd);
	}
	return hc_error_set(err, -EAGAIN, "create %s: removed by a cleaner again and again", path);
}

int hc_oci_store_clean_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int removed = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char p[HC_PATH_MAX];
		int fd;

		if (!hc_startswith(de->d_name, ".tmp-"))
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* Every writer holds the lock from creation on (hc_oci_store_create_temp): an
		 * unlocked temp has no writer, whatever its age. */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    hc_path_fmt(p, sizeof(p), NULL, "%s/%s", dir, de->d_name) == 0) {
			hc_debug("removing stale %s", p);
			if (hc_path_rm_rf(p, NULL) == 0)
				removed++;
		}
		close(fd);
	}
	closedir(d);
	return removed;
}

/* ---- names ---------------------------------------------------------------------------- */

/* One normalisation for pulled, loaded and looked-up names: the reference parser's. */
int hc_oci_store_local_name(const char *ref, char *buf, size_t n)
{
	char tmp[600];
	struct hc_error ignore = {0};

	if (hc_oci_ref_has_domain(ref) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "localhost/%s", ref) >= sizeof(tmp))
		return -EINVAL;
	return hc_oci_store_normalise_name(tmp, buf, n, &ignore);
}

int hc_oci_store_normalise_name(const char *ref, char *buf, size_t n, struct hc_error *err)
{
	struct hc_oci_ref r;
	int k;

	k = hc_oci_ref_parse(ref, &r, err);
	if (k < 0) {
		hc_error_kind(err, HC_EK_USAGE);
		return k;
	}
	k = hc_oci_ref_format(&r, buf, n);
	if (k < 0)
		return hc_error_setk(err, k, HC_EK_USAGE, "image reference too long: '%.80s'", ref);
	return 0;
}

/* ---- resolve -------------------------------------------------------------------------- */

/* The manifest parser (manifest.c) does the reading; a run needs a manifest, not an index. */
static int parse_manifest(const char *data, size_t len, const char *media_type,
			  struct hc_oci_image *img, struct hc_error *err)
{
	struct hc_oci_manifest m;
	size_t sz;
	int r;

	r = hc_oci_manifest_parse(data, len, media_type, &m, err);
	if (r >= 0 && m.kind != HC_OCI_KIND_MANIFEST)
		r = hc_error_setk(err, -EMEDIUMTYPE, HC_EK_IMAGE,
				  "%s is an image index, not a manifest", img->digest);
	if (r >= 0 && hc_mul_overflows(m.n_layers + 1, sizeof(*img->layers), &sz))
		r = hc_error_set(err, -ENOMEM, "out of memory");
	if (r >= 0 && !(img->layers = calloc(1, sz)))
		r = hc_error_set(err, -ENOMEM, "out of memory");
	if (r < 0) {
		hc_oci_manifest_free(&m);
		return r;
	}
	snprintf(img->config_digest, sizeof(img->config_digest), "%s", m.config.digest);
	img->config_size = m.config.size;
	for (size_t i = 0; i < m.n_layers; i++) {
		struct hc_oci_layer *l = &img->layers[i];
		snprintf(l->digest, sizeof(l->digest), "%s", m.layers[i].digest);
		snprintf(l->media_type, sizeof(l->media_type), "%s", m.layers[i].media_type);
		l->size = m.layers[i].size;
	}
	img->n_layers = m.n_layers;
	hc_oci_manifest_free(&m);
	return 0;
}

int hc_oci_store_expand_digest(struct hc_store *s, const char *ref, char *ret, struct hc_error *err)
{
	struct hc_oci_index_entry *list = NULL;
	const char *hex, *match = NULL;
	size_t n = 0, len;
	int r;

	if (!ref || !hc_startswith(ref, HC_DIGEST_PREFIX))
		return -EINVAL;
	hex = ref + strlen(HC_DIGEST_PREFIX);
	len = strlen(hex);
	if (len < 12 || len > HC_DIGEST_HEX_LEN || strspn(hex, "0123456789abcdef") != len)
		return -EINVAL;
	r = hc_oci_store_index_list(s, &list, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (strncmp(list[i].digest + strlen(HC_DIGEST_PREFIX), hex, len) != 0)
			continue;
		if (match && !hc_streq(match, list[i].digest))
			r = hc_error_setk(err, -ENOTUNIQ, HC_EK_USAGE,
					  "'%s' matches more than one image", ref);
		match = list[i].digest;
	}
	if (r >= 0 && !match)
		r = hc_error_setk(err, -ENOENT, HC_EK_IMAGE, "image '%s' is not in the store", ref);
	if (r >= 0)
		memcpy(ret, match, HC_DIGEST_SIZE);
	hc_oci_index_list_free(list, n);
	return r;
}

int hc_oci_store_resolve(struct hc_store *s, const char *ref, struct hc_oci_image *ret,
			 struct hc_error *err)
{
	json_auto_t *root = NULL;
	char norm[512], full[HC_DIGEST_SIZE];
	const char *want_digest = NULL, *name = NULL;
	json_t *m = NULL, *e, *found = NULL;
	size_t i;
	int r;

	if (!ref || !*ref)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "an image reference is required");
	r = hc_oci_store_expand_digest(s, ref, full, err);
	if (r >= 0) {
		want_digest = full;
	} else if (r != -EINVAL) {
		return r;
	} else {
		r = hc_oci_store_normalise_name(ref, norm, sizeof(norm), err);
		if (r < 0)
			return r;
		name = norm;
		const char *at = strchr(norm, '@');
		if (at)
			want_digest = at + 1;
	}
	r = index_read(s, &root, &m, err);
	if (r < 0)
		return r;
	json_array_foreach(m, i, e)
	{
		if (name && hc_streq(entry_name(e), name))
			found = e;
	}
	/* A short name ("test/bb:1") is docker.io's, or a local one's (localhost/test/bb:1, as
	 * load --name stores it): podman looks for both in its storage. */
	char local[512];
	if (!found && name && !hc_oci_ref_has_domain(ref) &&
	    hc_oci_store_local_name(ref, local, sizeof(local)) == 0) {
		json_array_foreach(m, i, e)
		{
			if (hc_streq(entry_name(e), local))
				found = e;
		}
		if (found)
			name = NULL; /* the entry's own name is the image's */
	}
	json_array_foreach(m, i, e)
	{
		if (!found && want_digest &&
		    hc_streq(json_string_value(json_object_get(e, "digest")), want_digest))
			found = e;
	}
	if (!found)
		return hc_error_setk(err, -ENOENT, HC_EK_IMAGE, "image '%s' is not in the store",
				     ref);

	const char *digest = json_string_value(json_object_get(found, "digest"));
	if (!hc_oci_digest_valid(digest))
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
				     "index.json: invalid digest for '%s'", ref);
	r = hc_oci_store_read_image(
		s, digest, entry_name(found) ? entry_name(found) : (name ? name : ref), ret, err);
	if (r < 0)
		return hc_error_prefix(err, "image '%s'", ref);
	return 0;
}

int hc_oci_store_read_image(struct hc_store *s, const char *digest, const char *name,
			    struct hc_oci_image *ret, struct hc_error *err)
{
	_cleanup_free_ char *data = NULL;
	struct hc_oci_image img = {0};
	size_t len = 0;
	int r;

	snprintf(img.digest, sizeof(img.digest), "%s", digest);
	snprintf(img.name, sizeof(img.name), "%s", name ? name : digest);
	r = hc_oci_store_blob_read(s, digest, HC_OCI_MANIFEST_MAX, &data, &len, err);
	if (r >= 0)
		r = parse_manifest(data, len, NULL, &img, err);
	if (r < 0) {
		hc_oci_image_free(&img);
		return r;
	}
	*ret = img;
	return 0;
}

int hc_oci_store_index_list(struct hc_store *s, struct hc_oci_index_entry **ret, size_t *ret_n,
			    struct hc_error *err)
{
	json_auto_t *root = NULL;
	struct hc_oci_index_entry *list;
	json_t *m = NULL, *e;
	size_t i, n = 0;
	int r;

	r = index_read(s, &root, &m, err);
	if (r < 0)
		return r;
	list = calloc(json_array_size(m) + 1, sizeof(*list));
	if (!list)
		return hc_error_set(err, -ENOMEM, "out of memory");
	json_array_foreach(m, i, e)
	{
		const char *d = json_string_value(json_object_get(e, "digest"));
		const char *mt = json_string_value(json_object_get(e, "mediaType"));
		json_int_t sz = json_integer_value(json_object_get(e, "size"));
		if (!hc_oci_digest_valid(d))
			continue; /* not ours to interpret; never a reason to fail a listing */
		struct hc_oci_index_entry *x = &list[n];
		snprintf(x->digest, sizeof(x->digest), "%s", d);
		snprintf(x->media_type, sizeof(x->media_type), "%s", mt ? mt : "");
		x->size = sz > 0 ? (uint64_t)sz : 0;
		if (entry_name(e)) {
			x->name = strdup(entry_name(e));
			if (!x->name) {
				hc_oci_index_list_free(list, n);
				return hc_error_set(err, -ENOMEM, "out of memory");
			}
		}
		n++;
	}
	*ret = list;
	*ret_n = n;
	return 0;
}

void hc_oci_index_list_free(struct hc_oci_index_entry *list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i].name);
	free(list);
}

void hc_oci_image_free(struct hc_oci_image *img)
{
	if (!img)
		return;
	free(img->layers);
	img->layers = NULL;
	img->n_layers = 0;
}
