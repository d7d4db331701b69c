/* SPDX-License-Identifier: MIT */
/*
 * OCI layer application (image-spec layer.md). See unpack.h for the rules; the safety
 * argument is simple: every name is normalised and ".."-free, and every directory we create
 * in, link from or remove in is opened beneath the root fd with symlinks refused, so nothing
 * an earlier entry planted can redirect a later one outside the root.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "core/cancel.h"
#include "core/log.h"
#include "core/path.h"
#include "oci/unpack.h"

#define READ_BLOCK (1024 * 1024)
#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_META_PREFIX ".wh..wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"

/* ---- a small set of paths (open addressing), with one int value per key ---- */

struct pslot {
	char *key;
	uint64_t hash;
	int64_t val;
};

struct pathset {
	struct pslot *slots;
	size_t cap; /* power of two, or 0 */
	size_t n;
};

static uint64_t hash_str(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void pathset_clear(struct pathset *ps)
{
	for (size_t i = 0; i < ps->cap; i++)
		free(ps->slots[i].key);
	free(ps->slots);
	ps->slots = NULL;
	ps->cap = ps->n = 0;
}

static struct pslot *pathset_find_len(const struct pathset *ps, const char *key, size_t len)
{
	uint64_t h;

	if (!ps->cap)
		return NULL;
	h = hash_str(key, len);
	for (size_t i = h & (ps->cap - 1);; i = (i + 1) & (ps->cap - 1)) {
		struct pslot *s = &ps->slots[i];
		if (!s->key)
			return NULL;
		if (s->hash == h && strncmp(s->key, key, len) == 0 && s->key[len] == 0)
			return s;
	}
}

static struct pslot *pathset_find(const struct pathset *ps, const char *key)
{
	return pathset_find_len(ps, key, strlen(key));
}

static int pathset_grow(struct pathset *ps)
{
	size_t ncap = ps->cap ? ps->cap * 2 : 1024;
	struct pslot *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < ps->cap; i++) {
		struct pslot *s = &ps->slots[i];
		if (!s->key)
			continue;
		size_t j = s->hash & (ncap - 1);
		while (ns[j].key)
			j = (j + 1) & (ncap - 1);
		ns[j] = *s;
	}
	free(ps->slots);
	ps->slots = ns;
	ps->cap = ncap;
	return 0;
}

/* Returns the slot of key (the first len bytes), inserting it (val 0) when missing. */
static int pathset_add_len(struct pathset *ps, const char *key, size_t len, struct pslot **ret,
			   bool *ret_new)
{
	struct pslot *s = pathset_find_len(ps, key, len);
	uint64_t h;
	size_t i;

	if (s) {
		*ret = s;
		if (ret_new)
			*ret_new = false;
		return 0;
	}
	if ((ps->n + 1) * 10 >= ps->cap * 7 && pathset_grow(ps) < 0)
		return -ENOMEM;
	h = hash_str(key, len);
	for (i = h & (ps->cap - 1); ps->slots[i].key; i = (i + 1) & (ps->cap - 1))
		;
	s = &ps->slots[i];
	s->key = strndup(key, len);
	if (!s->key)
		return -ENOMEM;
	s->hash = h;
	s->val = 0;
	ps->n++;
	*ret = s;
	if (ret_new)
		*ret_new = true;
	return 0;
}

/* ---- the unpacker ---- */

struct dirmeta {
	mode_t mode;
	struct timespec mtime;
	bool valid;
};

struct hc_oci_unpack {
	int rootfd;
	bool as_root;
	/* Paths this layer created or touched (with all their ancestors): the content that the
	 * layer's own whiteouts must not hide. */
	struct pathset layer;
	/* Directory path -> index into dirs: mode and mtime applied by finish. */
	struct pathset dirindex;
	struct dirmeta *dirs;
	size_t n_dirs, cap_dirs;
	/* One cached parent directory fd: tar entries come grouped by directory. Any removal
	 * of a directory invalidates it. */
	char cache_path[HC_PATH_MAX];
	int cache_fd;
	bool cache_stale; /* set by removals; the fd stays valid until the next lookup */
	struct hc_oci_unpack_stats stats;
	/* The current layer and entry, for messages. */
	const char *what;
	const char *entry;
	const char *ctx; /* "hard link target 'x'" while resolving one */
	int cancel_fd;	 /* checked at every block of layer data (core/cancel.h) */
};

static int entry_error(struct hc_oci_unpack *u, struct hc_error *err, int code, const char *fmt,
		       ...) _printf_(4, 5);

static int entry_error(struct hc_oci_unpack *u, struct hc_error *err, int code, const char *fmt,
		       ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return hc_error_setk(err, code, HC_EK_ROOTFS, "layer %s: entry '%.300s': %s%s%s",
			     u->what ? u->what : "?", u->entry ? u->entry : "",
			     u->ctx ? u->ctx : "", u->ctx ? ": " : "", msg);
}

int hc_oci_unpack_sanitize_path(const char *name, char *buf, size_t n)
{
	size_t len = 0, depth = 0;
	const char *p = name;

	if (n == 0)
		return -ENAMETOOLONG;
	buf[0] = 0;
	while (*p) {
		const char *c;
		size_t clen;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		c = p;
		while (*p && *p != '/')
			p++;
		clen = (size_t)(p - c);
		if (clen == 1 && c[0] == '.')
			continue;
		if (clen == 2 && c[0] == '.' && c[1] == '.')
			return -EINVAL;
		if (clen > 255)
			return -ENAMETOOLONG;
		if (++depth > HC_OCI_UNPACK_MAX_DEPTH)
			return -ENAMETOOLONG;
		if (len + (len ? 1 : 0) + clen > HC_OCI_UNPACK_MAX_NAME ||
		    len + (len ? 1 : 0) + clen + 1 > n)
			return -ENAMETOOLONG;
		if (len)
			buf[len++] = '/';
		memcpy(buf + len, c, clen);
		len += clen;
	}
	buf[len] = 0;
	return 0;
}

/* Splits a normalised path into its directory ("" for the root) and its last component. */
static const char *split_base(const char *path, size_t *ret_dirlen)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		*ret_dirlen = 0;
		return path;
	}
	*ret_dirlen = (size_t)(slash - path);
	return slash + 1;
}

static void cache_drop(struct hc_oci_unpack *u)
{
	if (u->cache_fd >= 0)
		close(u->cache_fd);
	u->cache_fd = -1;
	u->cache_path[0] = 0;
	u->cache_stale = false;
}

/*
 * Opens directory dir (normalised, dlen bytes; "" is the root) beneath the root with every
 * symlink refused. create: missing components are made (0755), as tar does for implicit
 * parents. Returns an O_PATH fd the caller owns, or -errno with err set (-ENOENT without a
 * message when !create and a component is missing).
 */
static int open_dir_beneath(struct hc_oci_unpack *u, const char *dir, size_t dlen, bool create,
			    struct hc_error *err)
{
	char path[HC_PATH_MAX];
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
			   RESOLVE_NO_XDEV,
	};
	int fd, cur;
	char *p, *c;

	if (dlen >= sizeof(path))
		return entry_error(u, err, -ENAMETOOLONG, "name too long");
	if (dlen == 0) {
		fd = fcntl(u->rootfd, F_DUPFD_CLOEXEC, 3);
		return fd < 0 ? hc_error_errno(err, -errno, "dup") : fd;
	}
	memcpy(path, dir, dlen);
	path[dlen] = 0;
	fd = (int)syscall(SYS_openat2, u->rootfd, path, &how, sizeof(how));
	if (fd >= 0)
		return fd;
	if (errno != ENOENT && errno != ENOSYS && errno != EPERM && errno != EAGAIN &&
	    errno != ELOOP && errno != ENOTDIR && errno != EXDEV)
		return entry_error(u, err, -errno, "open parent '%s': %s", path, strerror(errno));
	if (errno == ENOENT && !create)
		return -ENOENT;

	/* The component walk: creates what is missing and says exactly which component is a
	 * symlink or not a directory. */
	cur = fcntl(u->rootfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return hc_error_errno(err, -errno, "dup");
	for (c = path;; c = p + 1) {
		bool last;
		struct stat st;

		p = strchr(c, '/');
		last = !p;
		if (p)
			*p = 0;
		fd = openat(cur, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && create) {
			if (mkdirat(cur, c, 0755) < 0 && errno != EEXIST) {
				int e = -errno;
				close(cur);
				return entry_error(u, err, e, "create parent '%s': %s", path,
						   strerror(-e));
			}
			/* Independent of the caller's umask. */
			(void)fchmodat(cur, c, 0755, 0);
			fd = openat(cur, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0) {
			int e = -errno;
			bool is_link = fstatat(cur, c, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				       S_ISLNK(st.st_mode);
			close(cur);
			if (e == -ENOENT && !create)
				return -ENOENT;
			if (is_link)
				return entry_error(u, err, -ELOOP,
						   "parent '%s' is a symlink: refusing to follow "
						   "it (path escape)",
						   path);
			if (e == -ENOTDIR || e == -ELOOP)
				return entry_error(u, err, -ENOTDIR,
						   "parent '%s' is not a directory", path);
			return entry_error(u, err, e, "open parent '%s': %s", path, strerror(-e));
		}
		close(cur);
		cur = fd;
		if (last)
			break;
		*p = '/';
	}
	return cur;
}

/* The parent directory of path, from the cache when it is the last one used. Borrowed fd. */
static int parent_fd(struct hc_oci_unpack *u, const char *path, bool create, const char **ret_base,
		     struct hc_error *err)
{
	size_t dlen;
	const char *base = split_base(path, &dlen);
	int fd;

	*ret_base = base;
	if (dlen == 0)
		return u->rootfd;
	if (u->cache_stale)
		cache_drop(u);
	if (u->cache_fd >= 0 && strlen(u->cache_path) == dlen &&
	    memcmp(u->cache_path, path, dlen) == 0)
		return u->cache_fd;
	fd = open_dir_beneath(u, path, dlen, create, err);
	if (fd < 0)
		return fd;
	cache_drop(u);
	memcpy(u->cache_path, path, dlen);
	u->cache_path[dlen] = 0;
	u->cache_fd = fd;
	return fd;
}

/* Marks path and all its ancestors as content of the current layer. */
static int layer_mark(struct hc_oci_unpack *u, const char *path)
{
	size_t len = strlen(path);

	while (len > 0) {
		struct pslot *s;
		bool is_new;

		if (pathset_add_len(&u->layer, path, len, &s, &is_new) < 0)
			return -ENOMEM;
		if (!is_new)
			break; /* its ancestors are in already */
		while (len > 0 && path[len - 1] != '/')
			len--;
		if (len > 0)
			len--; /* the slash */
	}
	return 0;
}

static void dirmeta_invalidate(struct hc_oci_unpack *u, const char *path)
{
	struct pslot *s = pathset_find(&u->dirindex, path);

	if (s)
		u->dirs[s->val].valid = false;
}

static int dirmeta_set(struct hc_oci_unpack *u, const char *path, mode_t mode,
		       struct timespec mtime)
{
	struct pslot *s;
	bool is_new;

	if (pathset_add_len(&u->dirindex, path, strlen(path), &s, &is_new) < 0)
		return -ENOMEM;
	if (is_new) {
		if (u->n_dirs == u->cap_dirs) {
			size_t ncap = u->cap_dirs ? u->cap_dirs * 2 : 256, bytes;
			struct dirmeta *nd;
			if (hc_mul_overflows(ncap, sizeof(*nd), &bytes))
				return -ENOMEM;
			nd = realloc(u->dirs, bytes);
			if (!nd)
				return -ENOMEM;
			u->dirs = nd;
			u->cap_dirs = ncap;
		}
		s->val = (int64_t)u->n_dirs++;
	}
	u->dirs[s->val] = (struct dirmeta){.mode = mode, .mtime = mtime, .valid = true};
	return 0;
}

/* Removes name (in dirfd) and everything below it, never following a symlink. */
static int rm_tree(struct hc_oci_unpack *u, int at, const char *name, struct hc_error *err)
{
	struct stat st;

	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0
				       : entry_error(u, err, -errno, "stat '%s': %s", name,
						     strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *d;
		struct dirent *de;
		int r = 0;

		if (fd < 0)
			return entry_error(u, err, -errno, "open '%s': %s", name, strerror(errno));
		d = fdopendir(fd);
		if (!d) {
			close(fd);
			return hc_error_errno(err, -errno, "opendir");
		}
		while (r == 0 && (de = readdir(d))) {
			if (hc_streq(de->d_name, ".") || hc_streq(de->d_name, ".."))
				continue;
			r = rm_tree(u, dirfd(d), de->d_name, err);
		}
		closedir(d);
		if (r < 0)
			return r;
		u->cache_stale = true;
		if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			return entry_error(u, err, -errno, "rmdir '%s': %s", name, strerror(errno));
		return 0;
	}
	if (unlinkat(at, name, 0) < 0 && errno != ENOENT)
		return entry_error(u, err, -errno, "unlink '%s': %s", name, strerror(errno));
	return 0;
}

/*
 * Removes what lower layers put at path (name in dirfd), keeping what the current layer
 * created: image-spec "Whiteout files MUST only apply to resources in lower/parent layers".
 * path is a buffer of HC_PATH_MAX bytes, extended in place while descending.
 */
static int remove_lower(struct hc_oci_unpack *u, int at, const char *name, char *path,
			struct hc_error *err);

/* remove_lower() on every entry of the directory fd (consumed), which is at path. */
static int remove_lower_entries(struct hc_oci_unpack *u, int fd, char *path, struct hc_error *err)
{
	size_t plen = strlen(path);
	struct dirent *de;
	DIR *d = fdopendir(fd);
	int r = 0;

	if (!d) {
		close(fd);
		return hc_error_errno(err, -errno, "opendir");
	}
	while (r == 0 && (de = readdir(d))) {
		size_t nlen = strlen(de->d_name);
		if (hc_streq(de->d_name, ".") || hc_streq(de->d_name, ".."))
			continue;
		if (plen + 1 + nlen >= HC_PATH_MAX) {
			r = entry_error(u, err, -ENAMETOOLONG, "path too long below '%s'", path);
			break;
		}
		if (plen)
			path[plen] = '/';
		memcpy(path + plen + (plen ? 1 : 0), de->d_name, nlen + 1);
		r = remove_lower(u, dirfd(d), de->d_name, path, err);
		path[plen] = 0;
	}
	closedir(d);
	return r;
}

static int remove_lower(struct hc_oci_unpack *u, int at, const char *name, char *path,
			struct hc_error *err)
{
	struct stat st;
	int fd;

	if (!pathset_find(&u->layer, path)) {
		dirmeta_invalidate(u, path);
		return rm_tree(u, at, name, err);
	}
	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return entry_error(u, err, -errno, "open '%s': %s", path, strerror(errno));
	return remove_lower_entries(u, fd, path, err);
}

/* Makes room for a new non-directory entry at base in pfd: whatever is there goes. */
static int clear_slot(struct hc_oci_unpack *u, int pfd, const char *base, const char *path,
		      struct hc_error *err)
{
	struct stat st;

	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return entry_error(u, err, -errno, "stat: %s", strerror(errno));
	}
	if (S_ISDIR(st.st_mode)) {
		dirmeta_invalidate(u, path);
		return rm_tree(u, pfd, base, err);
	}
	if (unlinkat(pfd, base, 0) < 0 && errno != ENOENT)
		return entry_error(u, err, -errno, "unlink: %s", strerror(errno));
	return 0;
}

static bool xattr_allowed(const char *name)
{
	/* What an image may carry onto the host filesystem: its own user attributes, file
	 * capabilities (as the image says; the guest honours them), POSIX ACLs. trusted.* and
	 * the rest of security.* (SELinux labels, IMA, ...) are the host's business. */
	return hc_startswith(name, "user.") || hc_streq(name, "security.capability") ||
	       hc_streq(name, "system.posix_acl_access") ||
	       hc_streq(name, "system.posix_acl_default");
}

static void apply_xattrs(struct hc_oci_unpack *u, struct archive_entry *e, int fd)
{
	const char *name;
	const void *value;
	size_t size;

	if (archive_entry_xattr_reset(e) == 0)
		return;
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (!name || !xattr_allowed(name)) {
			hc_debug("layer %s: %s: dropping xattr %s", u->what, u->entry,
				 name ? name : "?");
			u->stats.xattrs_dropped++;
			continue;
		}
		if (fsetxattr(fd, name, value, size, 0) < 0) {
			/* EOPNOTSUPP (filesystem), EPERM (not root), EINVAL (bad value): the
			 * attribute is an optimisation of the image, not its content. */
			hc_debug("layer %s: %s: xattr %s: %s", u->what, u->entry, name,
				 strerror(errno));
			u->stats.xattrs_dropped++;
		}
	}
}

static int check_ids(struct hc_oci_unpack *u, struct archive_entry *e, struct hc_error *err)
{
	int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);

	/* (uid_t)-1 means "leave unchanged" to chown: not an id an image may use. */
	if (uid < 0 || uid >= 0xffffffffLL || gid < 0 || gid >= 0xffffffffLL)
		return entry_error(u, err, -EINVAL, "invalid uid/gid %lld/%lld", (long long)uid,
				   (long long)gid);
	return 0;
}

static struct timespec entry_mtime(struct archive_entry *e)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = UTIME_OMIT};

	if (archive_entry_mtime_is_set(e)) {
		ts.tv_sec = archive_entry_mtime(e);
		ts.tv_nsec = archive_entry_mtime_nsec(e);
		if (ts.tv_nsec < 0 || ts.tv_nsec > 999999999)
			ts.tv_nsec = 0;
	}
	return ts;
}

static int write_data(struct hc_oci_unpack *u, struct archive *a, struct archive_entry *e, int fd,
		      struct hc_error *err)
{
	const void *buf;
	size_t size;
	int64_t offset, end = 0;
	int r;

	for (;;) {
		r = archive_read_data_block(a, &buf, &size, &offset);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return entry_error(u, err, -EIO, "read: %s", archive_error_string(a));
		const char *p = buf;
		while (size > 0) {
			ssize_t w = pwrite(fd, p, size, offset);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return entry_error(u, err, -errno, "write: %s", strerror(errno));
			}
			p += w;
			size -= (size_t)w;
			offset += w;
			u->stats.bytes += (uint64_t)w;
		}
		if (offset > end)
			end = offset;
	}
	/* Sparse files end in a hole that no data block covers. */
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > end &&
	    ftruncate(fd, archive_entry_size(e)) < 0)
		return entry_error(u, err, -errno, "truncate: %s", strerror(errno));
	return 0;
}

static int do_file(struct hc_oci_unpack *u, struct archive *a, struct archive_entry *e, int pfd,
		   const char *base, const char *path, struct hc_error *err)
{
	_cleanup_close_ int fd = -1;
	struct timespec ts[2];
	int r;

	for (int tries = 0; tries < 2 && fd < 0; tries++) {
		fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (errno != EEXIST || tries > 0)
			return entry_error(u, err, -errno, "create: %s", strerror(errno));
		r = clear_slot(u, pfd, base, path, err);
		if (r < 0)
			return r;
	}
	r = write_data(u, a, e, fd, err);
	if (r < 0)
		return r;
	/* chown before chmod: chown clears setuid/setgid. Capabilities after both. */
	if (u->as_root && fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0)
		return entry_error(u, err, -errno, "chown: %s", strerror(errno));
	if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
		return entry_error(u, err, -errno, "chmod: %s", strerror(errno));
	apply_xattrs(u, e, fd);
	ts[1] = entry_mtime(e);
	ts[0] = ts[1];
	if (futimens(fd, ts) < 0)
		return entry_error(u, err, -errno, "set times: %s", strerror(errno));
	u->stats.files++;
	return 0;
}

static int do_symlink(struct hc_oci_unpack *u, struct archive_entry *e, int pfd, const char *base,
		      const char *path, struct hc_error *err)
{
	const char *target = archive_entry_symlink(e);
	struct timespec ts[2];
	int r;

	if (!target || !*target)
		return entry_error(u, err, -EINVAL, "symlink without a target");
	if (strlen(target) > HC_OCI_UNPACK_MAX_LINK)
		return entry_error(u, err, -ENAMETOOLONG, "symlink target too long");
	r = clear_slot(u, pfd, base, path, err);
	if (r < 0)
		return r;
	/* Stored as it is: never followed by us (every later lookup refuses symlinks). */
	if (symlinkat(target, pfd, base) < 0)
		return entry_error(u, err, -errno, "symlink: %s", strerror(errno));
	if (u->as_root && fchownat(pfd, base, (uid_t)archive_entry_uid(e),
				   (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
		return entry_error(u, err, -errno, "lchown: %s", strerror(errno));
	ts[1] = entry_mtime(e);
	ts[0] = ts[1];
	(void)utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
	u->stats.symlinks++;
	return 0;
}

static int do_hardlink(struct hc_oci_unpack *u, struct archive_entry *e, const char *path,
		       struct hc_error *err)
{
	char target[HC_PATH_MAX], ctx[256];
	_cleanup_close_ int tfd = -1;
	const char *tbase, *base, *raw = archive_entry_hardlink(e);
	size_t tdlen;
	struct stat st;
	int pfd, r;

	r = hc_oci_unpack_sanitize_path(raw, target, sizeof(target));
	if (r == -EINVAL)
		return entry_error(u, err, -EPERM,
				   "hard link target '%.200s' has a '..' component (path escape)",
				   raw);
	if (r < 0 || !*target)
		return entry_error(u, err, r < 0 ? r : -EINVAL, "invalid hard link target '%.200s'",
				   raw);
	if (strcmp(target, path) == 0)
		return 0; /* a link to itself: the file is there */
	tbase = split_base(target, &tdlen);
	snprintf(ctx, sizeof(ctx), "hard link target '%.200s'", target);
	u->ctx = ctx;
	tfd = open_dir_beneath(u, target, tdlen, false, err);
	u->ctx = NULL;
	if (tfd == -ENOENT)
		return entry_error(u, err, -ENOENT, "hard link target '%s' does not exist", target);
	if (tfd < 0)
		return tfd;
	if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_error(u, err, -errno, "hard link target '%s': %s", target,
				   strerror(errno));
	if (S_ISDIR(st.st_mode))
		return entry_error(u, err, -EPERM, "hard link target '%s' is a directory", target);
	pfd = parent_fd(u, path, true, &base, err);
	if (pfd < 0)
		return pfd;
	r = clear_slot(u, pfd, base, path, err);
	if (r < 0)
		return r;
	/* Without AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself. */
	if (linkat(tfd, tbase, pfd, base, 0) < 0)
		return entry_error(u, err, -errno, "hard link to '%s': %s", target,
				   strerror(errno));
	u->stats.hardlinks++;
	return 0;
}

static int do_dir(struct hc_oci_unpack *u, struct archive_entry *e, int pfd, const char *base,
		  const char *path, struct hc_error *err)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	if (*path) {
		if (mkdirat(pfd, base, 0700) < 0) {
			if (errno != EEXIST)
				return entry_error(u, err, -errno, "mkdir: %s", strerror(errno));
			if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
				return entry_error(u, err, -errno, "stat: %s", strerror(errno));
			if (!S_ISDIR(st.st_mode)) {
				/* A directory replaces a lower file or symlink. */
				r = clear_slot(u, pfd, base, path, err);
				if (r < 0)
					return r;
				if (mkdirat(pfd, base, 0700) < 0)
					return entry_error(u, err, -errno, "mkdir: %s",
							   strerror(errno));
			}
		}
		fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	} else {
		fd = openat(u->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0)
		return entry_error(u, err, -errno, "open directory: %s", strerror(errno));
	if (u->as_root && fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0)
		return entry_error(u, err, -errno, "chown: %s", strerror(errno));
	apply_xattrs(u, e, fd);
	/* Mode and mtime at the end: a 0555 directory must still take its content (as
	 * non-root), and its content would change its mtime. */
	if (dirmeta_set(u, path, archive_entry_perm(e) & 07777, entry_mtime(e)) < 0)
		return hc_error_set(err, -ENOMEM, "out of memory");
	u->stats.dirs++;
	return 0;
}

static int do_whiteout(struct hc_oci_unpack *u, const char *path, const char *base,
		       struct hc_error *err)
{
	char victim[HC_PATH_MAX];
	size_t dlen;
	const char *name;
	_cleanup_close_ int dfd = -1;

	u->stats.whiteouts++;
	split_base(path, &dlen);
	if (hc_startswith(base, WHITEOUT_META_PREFIX) && strcmp(base, WHITEOUT_OPAQUE) != 0)
		return 0; /* aufs bookkeeping (.wh..wh.plnk, ...): not content */
	name = base + strlen(WHITEOUT_PREFIX);
	if (!*name || hc_streq(name, ".") || hc_streq(name, ".."))
		return entry_error(u, err, -EPERM, "invalid whiteout name (path escape)");
	dfd = open_dir_beneath(u, path, dlen, false, err);
	if (dfd == -ENOENT)
		return 0; /* nothing below to hide */
	if (dfd < 0)
		return dfd;
	memcpy(victim, path, dlen);
	victim[dlen] = 0;

	if (strcmp(base, WHITEOUT_OPAQUE) == 0) {
		/* Opaque: the directory keeps only what this layer puts in it. */
		int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			return entry_error(u, err, -errno, "open: %s", strerror(errno));
		return remove_lower_entries(u, fd, victim, err);
	}
	if (dlen + 1 + strlen(name) >= sizeof(victim))
		return entry_error(u, err, -ENAMETOOLONG, "name too long");
	snprintf(victim + dlen, sizeof(victim) - dlen, "%s%s", dlen ? "/" : "", name);
	return remove_lower(u, dfd, name, victim, err);
}

static int apply_entry(struct hc_oci_unpack *u, struct archive *a, struct archive_entry *e,
		       struct hc_error *err)
{
	char path[HC_PATH_MAX];
	const char *raw = archive_entry_pathname(e), *base;
	mode_t type;
	int pfd, r;

	u->entry = raw;
	if (!raw)
		return hc_error_setk(err, -EINVAL, HC_EK_ROOTFS,
				     "layer %s: an entry has no usable name", u->what);
	r = hc_oci_unpack_sanitize_path(raw, path, sizeof(path));
	if (r == -EINVAL)
		return entry_error(u, err, -EPERM, "name has a '..' component (path escape)");
	if (r < 0)
		return entry_error(u, err, r, "name too long or too deep");
	r = check_ids(u, e, err);
	if (r < 0)
		return r;
	base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

	if (hc_startswith(base, WHITEOUT_PREFIX))
		return do_whiteout(u, path, base, err);

	type = archive_entry_filetype(e);
	if (!*path && (archive_entry_hardlink(e) || type != AE_IFDIR))
		return entry_error(u, err, -EINVAL, "the root can only be a directory");
	if (layer_mark(u, path) < 0)
		return hc_error_set(err, -ENOMEM, "out of memory");

	if (archive_entry_hardlink(e))
		return do_hardlink(u, e, path, err);

	pfd = parent_fd(u, path, true, &base, err);
	if (pfd < 0)
		return pfd;
	switch (type) {
	case AE_IFREG:
		return do_file(u, a, e, pfd, base, path, err);
	case AE_IFDIR:
		return do_dir(u, e, pfd, base, path, err);
	case AE_IFLNK:
		return do_symlink(u, e, pfd, base, path, err);
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
	case AE_IFSOCK:
		/* Not created on the host: the guest mounts devtmpfs. What the lower layer had
		 * there is still replaced, as the layer says. */
		r = clear_slot(u, pfd, base, path, err);
		if (r < 0)
			return r;
		if (!u->stats.skipped_special)
			snprintf(u->stats.first_skipped, sizeof(u->stats.first_skipped), "%s",
				 path);
		u->stats.skipped_special++;
		hc_debug("layer %s: skipping special file %s", u->what, path);
		return 0;
	default:
		hc_debug("layer %s: skipping %s of unknown type %o", u->what, path, (unsigned)type);
		u->stats.skipped_special++;
		return 0;
	}
}

/*
 * The layer stream: compressed bytes in (from an fd or memory, hashed as they pass), plain tar
 * out to libarchive. Decompression is done here rather than by libarchive's filters because
 * those never check the gzip trailer (CRC and length): a corrupt layer must fail, not unpack
 * garbage. The format is detected by its magic, never from the media type alone: gzip
 * (1f 8b), zstd (28 b5 2f fd), else plain tar.
 */
enum comp { COMP_NONE, COMP_GZIP, COMP_ZSTD };

struct layer_src {
	int fd; /* -1: memory */
	const uint8_t *mem;
	size_t mem_len;
	uint8_t *inbuf;	   /* READ_BLOCK bytes, for fd sources */
	const uint8_t *in; /* current input window */
	size_t in_len, in_off;
	bool in_eof;
	enum comp comp;
	z_stream z;
	bool z_ready;
	ZSTD_DStream *zs;
	size_t zs_last;	 /* last ZSTD_decompressStream result: 0 at a frame boundary */
	bool stream_end; /* gzip: the last member ended */
	uint8_t *out;	 /* READ_BLOCK bytes of decompressed output */
	EVP_MD_CTX *md;	 /* of the stream as stored: the layer digest */
	EVP_MD_CTX *umd; /* of the tar inside: the diff_id */
	uint64_t in_total;
	int cancel_fd;
	bool cancelled;
	char msg[160];
};

/* Makes input available; false at the end of the source (or on a read error, in msg). */
static bool src_fill(struct layer_src *s)
{
	ssize_t n;

	if (s->in_off < s->in_len)
		return true;
	if (s->in_eof)
		return false;
	if (s->fd < 0) {
		s->in = s->mem;
		s->in_len = s->mem_len;
		s->in_off = 0;
		s->in_eof = true;
		n = (ssize_t)s->mem_len;
	} else {
		/* Fill the whole buffer (pipes return less): the format is sniffed from it. */
		size_t got = 0;
		while (got < READ_BLOCK) {
			ssize_t k = read(s->fd, s->inbuf + got, READ_BLOCK - got);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				snprintf(s->msg, sizeof(s->msg), "read: %s", strerror(errno));
				s->in_eof = true;
				return false;
			}
			if (k == 0) {
				s->in_eof = true;
				break;
			}
			got += (size_t)k;
		}
		n = (ssize_t)got;
		s->in = s->inbuf;
		s->in_len = got;
		s->in_off = 0;
	}
	if (n > 0 && s->md && EVP_DigestUpdate(s->md, s->in, (size_t)n) != 1) {
		snprintf(s->msg, sizeof(s->msg), "sha256 failed");
		return false;
	}
	s->in_total += (uint64_t)n;
	return n > 0;
}

/* Produces decompressed bytes: > 0 count (in *ret), 0 at the clean end, -1 on error (msg). */
static ssize_t src_produce(struct layer_src *s, const void **ret)
{
	if (s->comp == COMP_NONE) {
		size_t n;
		if (!src_fill(s))
			return s->msg[0] ? -1 : 0;
		n = s->in_len - s->in_off;
		*ret = s->in + s->in_off;
		s->in_off = s->in_len;
		return (ssize_t)n;
	}
	for (;;) {
		size_t produced;
		bool more = src_fill(s);

		if (s->msg[0])
			return -1;
		if (s->comp == COMP_GZIP) {
			int zr;
			if (s->stream_end) {
				if (!more)
					return 0;
				/* RFC 1952 allows concatenated members; anything else after the
				 * stream is not part of a layer. */
				if (s->in_len - s->in_off >= 2 && s->in[s->in_off] == 0x1f &&
				    s->in[s->in_off + 1] == 0x8b) {
					inflateReset(&s->z);
					s->stream_end = false;
				} else {
					snprintf(s->msg, sizeof(s->msg),
						 "gzip: trailing data after the stream");
					return -1;
				}
			}
			if (!more) {
				snprintf(s->msg, sizeof(s->msg), "gzip: truncated stream");
				return -1;
			}
			s->z.next_in = (Bytef *)(uintptr_t)(s->in + s->in_off);
			s->z.avail_in = (uInt)(s->in_len - s->in_off);
			s->z.next_out = s->out;
			s->z.avail_out = READ_BLOCK;
			zr = inflate(&s->z, Z_NO_FLUSH);
			s->in_off = s->in_len - s->z.avail_in;
			produced = READ_BLOCK - s->z.avail_out;
			if (zr == Z_STREAM_END)
				s->stream_end = true;
			else if (zr != Z_OK && !(zr == Z_BUF_ERROR && produced == 0)) {
				snprintf(s->msg, sizeof(s->msg), "gzip: %s",
					 s->z.msg ? s->z.msg : "corrupt stream");
				return -1;
			}
		} else {
			ZSTD_inBuffer ib;
			ZSTD_outBuffer ob = {s->out, READ_BLOCK, 0};
			if (!more) {
				if (s->zs_last != 0) {
					snprintf(s->msg, sizeof(s->msg), "zstd: truncated stream");
					return -1;
				}
				return 0;
			}
			ib = (ZSTD_inBuffer){s->in + s->in_off, s->in_len - s->in_off, 0};
			s->zs_last = ZSTD_decompressStream(s->zs, &ob, &ib);
			if (ZSTD_isError(s->zs_last)) {
				snprintf(s->msg, sizeof(s->msg), "zstd: %s",
					 ZSTD_getErrorName(s->zs_last));
				return -1;
			}
			s->in_off += ib.pos;
			produced = ob.pos;
		}
		if (produced > 0) {
			*ret = s->out;
			return (ssize_t)produced;
		}
	}
}

/* src_produce, plus the diff_id hash and the cancel check: every byte of tar passes here. */
static ssize_t src_next(struct layer_src *s, const void **ret)
{
	ssize_t n;

	if (hc_fd_readable(s->cancel_fd)) {
		s->cancelled = true;
		snprintf(s->msg, sizeof(s->msg), "interrupted");
		return -1;
	}
	n = src_produce(s, ret);
	if (n > 0 && s->umd && EVP_DigestUpdate(s->umd, *ret, (size_t)n) != 1) {
		snprintf(s->msg, sizeof(s->msg), "sha256 failed");
		return -1;
	}
	return n;
}

static la_ssize_t src_read(struct archive *a, void *data, const void **ret_buf)
{
	struct layer_src *s = data;
	ssize_t n = src_next(s, ret_buf);

	if (n < 0) {
		archive_set_error(a, EIO, "%s", s->msg);
		return -1;
	}
	return n;
}

static int src_open(struct layer_src *s, struct hc_oci_unpack *u, const char *expect_digest,
		    const char *expect_diff_id, struct hc_error *err)
{
	s->out = malloc(READ_BLOCK);
	if (s->fd >= 0)
		s->inbuf = malloc(READ_BLOCK);
	if (!s->out || (s->fd >= 0 && !s->inbuf))
		return hc_error_set(err, -ENOMEM, "out of memory");
	if (expect_digest) {
		s->md = EVP_MD_CTX_new();
		if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
			return hc_error_set(err, -ENOMEM, "sha256 init failed");
	}
	if (expect_diff_id) {
		s->umd = EVP_MD_CTX_new();
		if (!s->umd || EVP_DigestInit_ex(s->umd, EVP_sha256(), NULL) != 1)
			return hc_error_set(err, -ENOMEM, "sha256 init failed");
	}
	s->cancel_fd = u->cancel_fd;
	src_fill(s);
	if (s->msg[0])
		return hc_error_setk(err, -EIO, HC_EK_ROOTFS, "layer %s: %s", u->what, s->msg);
	if (s->in_len - s->in_off >= 2 && s->in[s->in_off] == 0x1f && s->in[s->in_off + 1] == 0x8b)
		s->comp = COMP_GZIP;
	else if (s->in_len - s->in_off >= 4 &&
		 memcmp(s->in + s->in_off, "\x28\xb5\x2f\xfd", 4) == 0)
		s->comp = COMP_ZSTD;
	if (s->comp == COMP_GZIP) {
		/* 16 + MAX_WBITS: gzip wrapper, trailer (CRC-32, ISIZE) checked by zlib. */
		if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
			return hc_error_set(err, -ENOMEM, "zlib init failed");
		s->z_ready = true;
	} else if (s->comp == COMP_ZSTD) {
		s->zs = ZSTD_createDStream();
		if (!s->zs || ZSTD_isError(ZSTD_initDStream(s->zs)))
			return hc_error_set(err, -ENOMEM, "zstd init failed");
		/* Bound the window a hostile frame may ask for (the zstd CLI's default limit). */
		ZSTD_DCtx_setParameter(s->zs, ZSTD_d_windowLogMax, 27);
	}
	return 0;
}

static void src_close(struct layer_src *s)
{
	if (s->z_ready)
		inflateEnd(&s->z);
	ZSTD_freeDStream(s->zs);
	EVP_MD_CTX_free(s->md);
	EVP_MD_CTX_free(s->umd);
	free(s->inbuf);
	free(s->out);
}

static int apply_archive(struct hc_oci_unpack *u, struct archive *a, struct hc_error *err)
{
	struct archive_entry *e;
	uint64_t n = 0;
	int r;

	pathset_clear(&u->layer);
	for (;;) {
		u->entry = NULL;
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN || r == ARCHIVE_RETRY)
			return hc_error_setk(
				err, -EIO, HC_EK_ROOTFS,
				"layer %s: corrupt or truncated after %llu entries: %s", u->what,
				(unsigned long long)n,
				archive_error_string(a) ? archive_error_string(a) : "read error");
		if (++n > HC_OCI_UNPACK_MAX_ENTRIES)
			return hc_error_setk(err, -E2BIG, HC_EK_ROOTFS,
					     "layer %s: more than %d entries", u->what,
					     HC_OCI_UNPACK_MAX_ENTRIES);
		u->stats.entries++;
		r = apply_entry(u, a, e, err);
		if (r < 0)
			return r;
	}
	u->entry = NULL;
	pathset_clear(&u->layer);
	return 0;
}

static bool sha256_form(const char *d)
{
	return hc_startswith(d, "sha256:") && strlen(d) == 7 + 64;
}

static void md_hex(EVP_MD_CTX *md, char hex[65])
{
	unsigned char v[32];
	unsigned int len = 0;

	EVP_DigestFinal_ex(md, v, &len);
	for (unsigned int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", v[i]);
}

static int unpack_src(struct hc_oci_unpack *u, struct layer_src *s, const char *expect_digest,
		      const char *expect_diff_id, struct hc_error *err)
{
	struct archive *a;
	char hex[65];
	int r;

	if (expect_digest && !sha256_form(expect_digest))
		return hc_error_setk(err, -EINVAL, HC_EK_ROOTFS, "layer %s: unsupported digest %s",
				     u->what, expect_digest);
	if (expect_diff_id && !sha256_form(expect_diff_id))
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
				     "layer %s: unsupported diff_id '%.80s' in the image config",
				     u->what, expect_diff_id);
	r = src_open(s, u, expect_digest, expect_diff_id, err);
	if (r < 0)
		return r;
	a = archive_read_new();
	if (!a)
		return hc_error_set(err, -ENOMEM, "out of memory");
	/* Only what an OCI layer may be: a tar (decompressed above). */
	archive_read_support_format_tar(a);
	if (archive_read_open(a, s, NULL, src_read, NULL) != ARCHIVE_OK) {
		if (s->cancelled)
			r = hc_cancel_check(s->cancel_fd, err) ?: -ECANCELED;
		else
			r = hc_error_setk(err, -EIO, HC_EK_ROOTFS, "layer %s: not a tar layer: %s",
					  u->what,
					  archive_error_string(a) ? archive_error_string(a) : "?");
		archive_read_free(a);
		return r;
	}
	r = apply_archive(u, a, err);
	archive_read_free(a);
	u->entry = NULL; /* it pointed into the archive's memory */
	if (r < 0 && s->cancelled)
		return hc_cancel_check(s->cancel_fd, err) ?: -ECANCELED;
	if (r < 0)
		return r;
	/* libarchive stops at the end-of-archive blocks. Read on to the end of the stream, so
	 * that the compressor's trailer is checked and the whole blob (and tar) is hashed. */
	if (s->comp != COMP_NONE || s->md || s->umd) {
		const void *p;
		ssize_t n;
		while ((n = src_next(s, &p)) > 0)
			;
		if (n < 0 && s->cancelled)
			return hc_cancel_check(s->cancel_fd, err) ?: -ECANCELED;
		if (n < 0)
			return hc_error_setk(err, -EIO, HC_EK_ROOTFS, "layer %s: %s", u->what,
					     s->msg);
	}
	if (s->md) {
		md_hex(s->md, hex);
		if (strcmp(hex, expect_digest + 7) != 0)
			return hc_error_setk(err, -EBADMSG, HC_EK_ROOTFS,
					     "layer %s: content does not match its digest "
					     "(sha256:%s)",
					     u->what, hex);
	}
	if (s->umd) {
		md_hex(s->umd, hex);
		if (strcmp(hex, expect_diff_id + 7) != 0)
			return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
					     "layer %s: uncompressed content (sha256:%s) does not "
					     "match the image config's diff_id %s",
					     u->what, hex, expect_diff_id);
	}
	return 0;
}

int hc_oci_unpack_layer_fd(struct hc_oci_unpack *u, int fd, const char *what,
			   const char *expect_digest, const char *expect_diff_id,
			   struct hc_error *err)
{
	struct layer_src s = {.fd = fd};
	int r;

	u->what = what ? what : "?";
	r = unpack_src(u, &s, expect_digest, expect_diff_id, err);
	src_close(&s);
	return r;
}

int hc_oci_unpack_layer_path(struct hc_oci_unpack *u, const char *path, const char *what,
			     const char *expect_digest, const char *expect_diff_id,
			     struct hc_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return hc_error_errno(err, -errno, "open layer %s", path);
	return hc_oci_unpack_layer_fd(u, fd, what ? what : path, expect_digest, expect_diff_id,
				      err);
}

int hc_oci_unpack_layer_mem(struct hc_oci_unpack *u, const void *data, size_t len, const char *what,
			    struct hc_error *err)
{
	struct layer_src s = {.fd = -1, .mem = data, .mem_len = len};
	int r;

	u->what = what ? what : "?";
	r = unpack_src(u, &s, NULL, NULL, err);
	src_close(&s);
	return r;
}

void hc_oci_unpack_set_cancel(struct hc_oci_unpack *u, int cancel_fd)
{
	u->cancel_fd = cancel_fd;
}

int hc_oci_unpack_new(const char *root, struct hc_oci_unpack **ret, struct hc_error *err)
{
	struct hc_oci_unpack *u = calloc(1, sizeof(*u));

	if (!u)
		return hc_error_set(err, -ENOMEM, "out of memory");
	u->cache_fd = -1;
	u->cancel_fd = -1;
	u->as_root = geteuid() == 0;
	u->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (u->rootfd < 0) {
		int r = hc_error_errno(err, -errno, "open %s", root);
		free(u);
		return r;
	}
	*ret = u;
	return 0;
}

int hc_oci_unpack_finish(struct hc_oci_unpack *u, struct hc_error *err)
{
	u->what = "(finish)";
	u->entry = NULL;
	cache_drop(u);
	for (size_t i = 0; i < u->dirindex.cap; i++) {
		struct pslot *s = &u->dirindex.slots[i];
		struct dirmeta *m;
		struct timespec ts[2];
		const char *base;
		size_t dlen;
		int fd, pfd;

		if (!s->key)
			continue;
		m = &u->dirs[s->val];
		if (!m->valid)
			continue;
		if (!*s->key) {
			fd = openat(u->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		} else {
			/* A later layer may have replaced an ancestor: refuse symlinks again. */
			base = split_base(s->key, &dlen);
			pfd = open_dir_beneath(u, s->key, dlen, false, NULL);
			if (pfd < 0)
				continue;
			fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			close(pfd);
		}
		if (fd < 0)
			continue; /* removed or replaced by a later layer */
		ts[1] = m->mtime;
		ts[0] = m->mtime;
		if (fchmod(fd, m->mode) < 0 || futimens(fd, ts) < 0) {
			int e = -errno;
			close(fd);
			return hc_error_errno(err, e, "set mode/mtime of directory '%s'", s->key);
		}
		close(fd);
	}
	return 0;
}

const struct hc_oci_unpack_stats *hc_oci_unpack_get_stats(const struct hc_oci_unpack *u)
{
	return &u->stats;
}

void hc_oci_unpack_free(struct hc_oci_unpack *u)
{
	if (!u)
		return;
	cache_drop(u);
	if (u->rootfd >= 0)
		close(u->rootfd);
	pathset_clear(&u->layer);
	pathset_clear(&u->dirindex);
	free(u->dirs);
	free(u);
}
