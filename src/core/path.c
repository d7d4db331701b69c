/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "core/owner.h"
#include "core/path.h"

int hc_path_fmt(char *buf, size_t n, struct hc_error *err, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= n)
		return hc_error_set(err, -ENAMETOOLONG, "path too long: %.80s...", buf);
	return 0;
}

int hc_path_mkdir_p(const char *path, mode_t mode, struct hc_error *err)
{
	char tmp[HC_PATH_MAX];
	int r;

	r = hc_path_fmt(tmp, sizeof(tmp), err, "%s", path);
	if (r < 0)
		return r;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return hc_error_errno(err, -errno, "mkdir %s", tmp);
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return hc_error_errno(err, -errno, "mkdir %s", tmp);
	return 0;
}

int hc_path_state_dir(char *buf, size_t n, struct hc_error *err)
{
	const char *e = getenv("HOTCELL_HOME");
	int r;

	if (e && *e)
		r = hc_path_fmt(buf, n, err, "%s", e);
	else if (geteuid() == 0)
		r = hc_path_fmt(buf, n, err, "/var/lib/hotcell");
	else if ((e = getenv("XDG_DATA_HOME")) && *e)
		r = hc_path_fmt(buf, n, err, "%s/hotcell", e);
	else if ((e = getenv("HOME")) && *e)
		r = hc_path_fmt(buf, n, err, "%s/.local/share/hotcell", e);
	else
		return hc_error_set(err, -ENOENT, "no state directory: set HOTCELL_HOME or HOME");
	if (r < 0)
		return r;
	return hc_path_mkdir_p(buf, 0755, err);
}

int hc_path_runtime_dir(char *buf, size_t n, struct hc_error *err)
{
	const char *e = getenv("HOTCELL_RUNTIME_DIR");
	int r;

	if (e && *e)
		r = hc_path_fmt(buf, n, err, "%s", e);
	else if (geteuid() == 0)
		r = hc_path_fmt(buf, n, err, "/run/hotcell");
	else if ((e = getenv("XDG_RUNTIME_DIR")) && *e)
		r = hc_path_fmt(buf, n, err, "%s/hotcell", e);
	else
		r = hc_path_fmt(buf, n, err, "/tmp/hotcell-%u", (unsigned)geteuid());
	if (r < 0)
		return r;
	r = hc_path_mkdir_p(buf, 0700, err);
	if (r < 0)
		return r;
	return 0;
}

void hc_path_random_id(char *buf, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[64];

	if (n > sizeof(rnd))
		n = sizeof(rnd);
	if (getrandom(rnd, n, 0) != (ssize_t)n) {
		for (size_t i = 0; i < n; i++)
			rnd[i] = (unsigned char)(rand() ^ getpid() ^ (int)i);
	}
	for (size_t i = 0; i < n; i++)
		buf[i] = hex[rnd[i] & 15];
	buf[n] = 0;
}

int hc_path_make_run_dir(char *buf, size_t n, struct hc_error *err)
{
	char base[HC_PATH_MAX], id[16];
	int r;

	r = hc_path_runtime_dir(base, sizeof(base), err);
	if (r < 0)
		return r;
	/* What runs that were SIGKILLed left behind goes first (core/owner.h). */
	hc_owner_sweep(base);
	for (int tries = 0; tries < 16; tries++) {
		hc_path_random_id(id, 8);
		r = hc_path_fmt(buf, n, err, "%s/%s", base, id);
		if (r < 0)
			return r;
		if (mkdir(buf, 0700) == 0) {
			r = hc_owner_write(buf, err);
			if (r < 0)
				hc_path_rm_rf(buf, NULL);
			return r;
		}
		if (errno != EEXIST)
			return hc_error_errno(err, -errno, "mkdir %s", buf);
	}
	return hc_error_set(err, -EEXIST, "cannot create a runtime directory under %s", base);
}

static int rm_at(int at, const char *name, dev_t dev, struct hc_error *err)
{
	struct stat st;

	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : hc_error_errno(err, -errno, "stat %s", name);
	if (S_ISDIR(st.st_mode)) {
		if (st.st_dev != dev)
			return hc_error_set(err, -EBUSY, "%s is a mount point", name);
		int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return hc_error_errno(err, -errno, "open %s", name);
		DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			return hc_error_errno(err, -errno, "opendir %s", name);
		}
		struct dirent *de;
		int r = 0;
		while ((de = readdir(d))) {
			if (hc_streq(de->d_name, ".") || hc_streq(de->d_name, ".."))
				continue;
			int q = rm_at(dirfd(d), de->d_name, dev, err);
			if (q < 0 && r == 0)
				r = q;
		}
		closedir(d);
		if (r < 0)
			return r;
		if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
			/* A read-only directory mode does not stop root, but EPERM/EACCES can
			 * come from an immutable parent. */
			return hc_error_errno(err, -errno, "rmdir %s", name);
		}
		return 0;
	}
	if (unlinkat(at, name, 0) < 0 && errno != ENOENT)
		return hc_error_errno(err, -errno, "unlink %s", name);
	return 0;
}

int hc_path_rm_rf(const char *path, struct hc_error *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : hc_error_errno(err, -errno, "stat %s", path);
	/* Directories made read-only by an image (chmod 0555) are made writable on the way
	 * down by the unlinkat of root; for non-root they would fail: fix modes first. */
	return rm_at(AT_FDCWD, path, st.st_dev, err);
}

bool hc_path_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

int hc_path_read_file(const char *path, size_t max, char **ret, size_t *ret_len,
		      struct hc_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *data = NULL;
	size_t len = 0, cap = 0;

	if (fd < 0)
		return hc_error_errno(err, -errno, "open %s", path);
	for (;;) {
		if (len + 1 >= cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			if (ncap > max + 1)
				ncap = max + 1;
			if (ncap <= len + 1 && len >= max) {
				char c;
				ssize_t extra = read(fd, &c, 1);
				if (extra > 0)
					return hc_error_set(err, -E2BIG,
							    "%s is larger than %zu bytes", path,
							    max);
				break;
			}
			char *p = realloc(data, ncap);
			if (!p)
				return hc_error_set(err, -ENOMEM, "out of memory reading %s", path);
			data = p;
			cap = ncap;
		}
		ssize_t n = read(fd, data + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return hc_error_errno(err, -errno, "read %s", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (!data) {
		data = malloc(1);
		if (!data)
			return hc_error_set(err, -ENOMEM, "out of memory");
	}
	data[len] = 0;
	*ret = steal_ptr(&data);
	if (ret_len)
		*ret_len = len;
	return 0;
}

/* Closes a finished temp file and renames it over path; the temp is removed on failure. */
static int tmp_commit(int fd, const char *tmp, const char *path, struct hc_error *err)
{
	int r = 0;

	if (close(fd) < 0)
		r = hc_error_errno(err, -errno, "close %s", tmp);
	else if (rename(tmp, path) < 0)
		r = hc_error_errno(err, -errno, "rename %s", path);
	if (r < 0)
		unlink(tmp);
	return r;
}

int hc_path_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
			      struct hc_error *err)
{
	char tmp[HC_PATH_MAX], id[9];
	const char *p = data;
	int r, fd;

	hc_path_random_id(id, 8);
	r = hc_path_fmt(tmp, sizeof(tmp), err, "%s.tmp-%s", path, id);
	if (r < 0)
		return r;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return hc_error_errno(err, -errno, "create %s", tmp);
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = hc_error_errno(err, -errno, "write %s", tmp);
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0) {
		r = hc_error_errno(err, -errno, "fsync %s", tmp);
		goto fail;
	}
	return tmp_commit(fd, tmp, path, err);
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

/* Copies [off, off + len) of in to out at the same offset: copy_file_range, or plain reads and
 * writes where the kernel refuses it (across file systems since 5.19, tmpfs to ext4 here). */
#define COPY_CHUNK (1u << 20)
static int copy_range(int in, int out, off_t off, off_t len, bool *no_cfr, char **buf)
{
	while (len > 0) {
		size_t want = len > (off_t)COPY_CHUNK ? COPY_CHUNK : (size_t)len;
		ssize_t n;

		if (!*no_cfr) {
			loff_t a = off, b = off;

			n = copy_file_range(in, &a, out, &b, want, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP ||
				      errno == ENOSYS)) {
				*no_cfr = true;
				continue;
			}
		} else {
			if (!*buf && !(*buf = malloc(COPY_CHUNK)))
				return -ENOMEM;
			n = pread(in, *buf, want, off);
			if (n > 0) {
				for (ssize_t w = 0; w < n;) {
					ssize_t k = pwrite(out, *buf + w, (size_t)(n - w), off + w);
					if (k < 0 && errno == EINTR)
						continue;
					if (k <= 0)
						return k < 0 ? -errno : -EIO;
					w += k;
				}
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the source shrank under us */
		off += n;
		len -= n;
	}
	return 0;
}

/* The extents of src that hold data into dst at the same offsets, dst truncated to src's size:
 * a guest's RAM is mostly holes. Returns 0 or -errno. */
static int copy_sparse(int src, int dst, off_t size)
{
	_cleanup_free_ char *buf = NULL;
	bool no_cfr = false;

	for (off_t off = 0; off < size;) {
		off_t data = lseek(src, off, SEEK_DATA), hole;
		int r;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0) {
			/* No SEEK_DATA: the whole rest is data. */
			data = off;
			hole = size;
		} else {
			hole = lseek(src, data, SEEK_HOLE);
			if (hole < 0 || hole > size)
				hole = size;
		}
		r = copy_range(src, dst, data, hole - data, &no_cfr, &buf);
		if (r < 0)
			return r;
		off = hole;
	}
	return ftruncate(dst, size) < 0 ? -errno : 0;
}

int hc_path_copy_fd_into(int src, int dst, struct hc_error *err)
{
	struct stat st;
	int r;

	if (fstat(src, &st) < 0)
		return hc_error_errno(err, -errno, "stat the source of a copy");
	r = copy_sparse(src, dst, st.st_size);
	return r < 0 ? hc_error_errno(err, r, "copy %lld bytes", (long long)st.st_size) : 0;
}

int hc_path_copy_fd_atomic(int src, const char *path, mode_t mode, struct hc_error *err)
{
	char tmp[HC_PATH_MAX], id[9];
	struct stat st;
	int r, fd;

	if (fstat(src, &st) < 0)
		return hc_error_errno(err, -errno, "stat the source of %s", path);
	hc_path_random_id(id, 8);
	r = hc_path_fmt(tmp, sizeof(tmp), err, "%s.tmp-%s", path, id);
	if (r < 0)
		return r;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return hc_error_errno(err, -errno, "create %s", tmp);
	/* A reflink shares the blocks (btrfs, XFS): instant, and later writes to either side
	 * copy. Otherwise only the extents that hold data. */
	if (ioctl(fd, FICLONE, src) == 0)
		goto done;
	r = copy_sparse(src, fd, st.st_size);
	if (r < 0) {
		r = hc_error_errno(err, r, "copy to %s", tmp);
		goto fail;
	}
done:
	return tmp_commit(fd, tmp, path, err);
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

/* Opens and flocks path. Files that may be unlinked while locked (image locks, removed by prune
 * while it holds them) are re-checked after locking: a lock on an unlinked inode protects
 * nothing, so retry on the file now at that path. */
int hc_path_lock(const char *path, bool shared, bool nonblock, int *ret_fd, struct hc_error *err)
{
	for (int tries = 0; tries < 64; tries++) {
		_cleanup_close_ int fd =
			open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		struct stat a, b;

		if (fd < 0)
			return hc_error_errno(err, -errno, "open %s", path);
		for (;;) {
			if (flock(fd, (shared ? LOCK_SH : LOCK_EX) | (nonblock ? LOCK_NB : 0)) == 0)
				break;
			if (errno == EINTR)
				continue;
			if (errno == EWOULDBLOCK)
				return hc_error_set(err, -EBUSY, "%s is locked", path);
			return hc_error_errno(err, -errno, "flock %s", path);
		}
		if (fstat(fd, &a) < 0)
			return hc_error_errno(err, -errno, "fstat %s", path);
		if (stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			*ret_fd = hc_steal_fd(&fd);
			return 0;
		}
	}
	return hc_error_set(err, -EAGAIN, "cannot lock %s: it keeps being replaced", path);
}
