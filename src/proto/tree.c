/* SPDX-License-Identifier: MIT */
/*
 * File transfers, both ends (docs/protocol.md, "Files"; tree.h). Plain POSIX and Linux calls
 * only, so the same file links into the static hotcell-init and into libhotcell.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "proto/tree.h"

uint32_t hc_tree_reason(int errnum)
{
	switch (errnum) {
	case ENOENT:
		return HC_ERR_NOENT;
	case ENOSPC:
	case EDQUOT:
		return HC_ERR_NOSPC;
	case EROFS:
		return HC_ERR_ROFS;
	case EACCES:
	case EPERM:
		return HC_ERR_ACCES;
	default:
		return HC_ERR_IO;
	}
}

static int failf(struct hc_proto_error *err, uint32_t reason, int code, const char *fmt, ...)
	_printf_(4, 5);
static int failf(struct hc_proto_error *err, uint32_t reason, int code, const char *fmt, ...)
{
	va_list ap;

	err->reason = reason;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}

int hc_tree_fail(struct hc_proto_error *err, int errnum, const char *path)
{
	char what[128];

	snprintf(what, sizeof(what), "%s", strerror(errnum));
	/* "No space left on device" -> "no space left on device", as the rest of our messages. */
	what[0] = (char)tolower((unsigned char)what[0]);
	return failf(err, hc_tree_reason(errnum), -errnum, "%s: %s", path, what);
}

/* dest + "/" + rel, for messages. */
static const char *full_path(char *buf, size_t n, const char *dest, const char *rel)
{
	if (!rel[0])
		snprintf(buf, n, "%s", dest);
	else
		snprintf(buf, n, "%s%s%s", dest, hc_startswith(dest, "/") && !dest[1] ? "" : "/",
			 rel);
	return buf;
}

/* Opens the directory rel below dirfd, refusing symlinks and anything that leaves dirfd. */
static int open_beneath(int dirfd, const char *rel)
{
	struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
			       .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					  RESOLVE_NO_MAGICLINKS};
	long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

/* ---- the writer ---- */

struct made {
	char *rel;
	bool dir;
};

struct dirmode {
	char *rel;
	uint32_t mode;
};

struct hc_tree_writer {
	char dest[HC_PROTO_MAX_PATH + 1];
	char base[NAME_MAX + 1]; /* the top's name in parent_fd; "" when dest is "/" */
	int parent_fd;
	int top_fd; /* the top directory, once there */
	int state;  /* 0 want the top, 1 the top is a directory, 2 the top is complete */
	bool ended;
	/* the file being written */
	int fd;
	int file_dir; /* its directory (owned unless it is top_fd or parent_fd) */
	char tmp[NAME_MAX + 1];
	char name[NAME_MAX + 1];
	char rel[HC_PROTO_MAX_PATH + 1];
	uint64_t left;
	uint32_t mode;
	/* what this transfer created (removed on failure), directory modes (applied at END) */
	struct made *made;
	size_t n_made, cap_made;
	struct dirmode *modes;
	size_t n_modes, cap_modes;
	unsigned counter;
};

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	size_t nc;
	void *q;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : 16;
	if (hc_mul_overflows(nc, size, &(size_t){0}))
		return -ENOMEM;
	q = realloc(*p, nc * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = nc;
	return 0;
}

static int remember(struct hc_tree_writer *w, const char *rel, bool dir)
{
	char *c = strdup(rel);

	if (!c || grow((void **)&w->made, &w->cap_made, w->n_made, sizeof(*w->made)) < 0) {
		free(c);
		return -ENOMEM;
	}
	w->made[w->n_made++] = (struct made){c, dir};
	return 0; // cppcheck-suppress memleak ; owned by w->made
}

static int remember_mode(struct hc_tree_writer *w, const char *rel, uint32_t mode)
{
	char *c = strdup(rel);

	if (!c || grow((void **)&w->modes, &w->cap_modes, w->n_modes, sizeof(*w->modes)) < 0) {
		free(c);
		return -ENOMEM;
	}
	w->modes[w->n_modes++] = (struct dirmode){c, mode};
	return 0; // cppcheck-suppress memleak ; owned by w->modes
}

int hc_tree_writer_new(const char *dest, struct hc_tree_writer **ret, struct hc_proto_error *err)
{
	struct hc_tree_writer *w;
	char parent[HC_PROTO_MAX_PATH + 1];
	size_t n = strlen(dest);
	const char *slash;

	while (n > 1 && dest[n - 1] == '/')
		n--;
	if (n == 0 || n > HC_PROTO_MAX_PATH)
		return failf(err, HC_EXEC_ERR_INVALID, -EINVAL, "invalid destination path");
	w = calloc(1, sizeof(*w));
	if (!w)
		return failf(err, HC_EXEC_ERR_INTERNAL, -ENOMEM, "out of memory");
	memcpy(w->dest, dest, n);
	w->dest[n] = 0;
	w->fd = w->file_dir = w->top_fd = w->parent_fd = -1;
	slash = strrchr(w->dest, '/');
	if (hc_streq(w->dest, "/")) {
		snprintf(parent, sizeof(parent), "/");
	} else if (!slash) {
		snprintf(parent, sizeof(parent), ".");
		snprintf(w->base, sizeof(w->base), "%s", w->dest);
	} else {
		if (strlen(slash + 1) > NAME_MAX) {
			free(w);
			return failf(err, HC_ERR_IO, -ENAMETOOLONG, "%s: file name too long", dest);
		}
		snprintf(w->base, sizeof(w->base), "%s", slash + 1);
		if (slash == w->dest)
			snprintf(parent, sizeof(parent), "/");
		else
			snprintf(parent, sizeof(parent), "%.*s", (int)(slash - w->dest), w->dest);
	}
	w->parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->parent_fd < 0) {
		int e = errno;

		free(w);
		return hc_tree_fail(err, e, parent);
	}
	*ret = w;
	return 0;
}

uint64_t hc_tree_writer_pending(const struct hc_tree_writer *w)
{
	return w->fd >= 0 ? w->left : 0;
}

static void close_file_dir(struct hc_tree_writer *w)
{
	if (w->file_dir >= 0 && w->file_dir != w->top_fd && w->file_dir != w->parent_fd)
		close(w->file_dir);
	w->file_dir = -1;
}

/* The directory holding rel and rel's last component; rel "" is the top in parent_fd. */
static int locate(struct hc_tree_writer *w, const char *rel, char *name, int *ret_dir,
		  struct hc_proto_error *err)
{
	char path[HC_PROTO_MAX_PATH + 64];
	const char *slash = strrchr(rel, '/');
	int fd;

	if (!rel[0]) {
		snprintf(name, NAME_MAX + 1, "%s", w->base);
		*ret_dir = w->parent_fd;
		return 0;
	}
	if (strlen(slash ? slash + 1 : rel) > NAME_MAX)
		return failf(err, HC_ERR_IO, -ENAMETOOLONG, "%s: file name too long",
			     full_path(path, sizeof(path), w->dest, rel));
	snprintf(name, NAME_MAX + 1, "%s", slash ? slash + 1 : rel);
	if (!slash) {
		*ret_dir = w->top_fd;
		return 0;
	}
	char dir[HC_PROTO_MAX_PATH + 1];
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - rel), rel);
	fd = open_beneath(w->top_fd, dir);
	if (fd < 0) {
		if (fd == -ELOOP || fd == -EXDEV)
			return failf(err, HC_EXEC_ERR_INVALID, fd,
				     "%s: a symlink in the path (entries never go through one)",
				     full_path(path, sizeof(path), w->dest, dir));
		return hc_tree_fail(err, -fd, full_path(path, sizeof(path), w->dest, dir));
	}
	*ret_dir = fd;
	return 0;
}

/* Renames the complete temp into place; an existing non-directory is replaced. */
static int place(struct hc_tree_writer *w, int dir, const char *tmp, const char *name,
		 const char *rel, struct hc_proto_error *err)
{
	char path[HC_PROTO_MAX_PATH + 64];
	struct stat st;

	if (renameat2(dir, tmp, dir, name, RENAME_NOREPLACE) == 0)
		return remember(w, rel, false) < 0
			       ? failf(err, HC_EXEC_ERR_INTERNAL, -ENOMEM, "out of memory")
			       : 0;
	if (errno == EEXIST) {
		if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			return failf(err, HC_ERR_IO, -EISDIR, "%s: is a directory",
				     full_path(path, sizeof(path), w->dest, rel));
		if (renameat(dir, tmp, dir, name) == 0)
			return 0;
	}
	return hc_tree_fail(err, errno, full_path(path, sizeof(path), w->dest, rel));
}

static int make_temp(struct hc_tree_writer *w, int dir, const char *name, char *tmp,
		     const char *target)
{
	for (int i = 0; i < 64; i++) {
		struct timespec ts;
		int fd;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		snprintf(tmp, NAME_MAX + 1, ".%.200s.hc%x%lx", name, w->counter++,
			 (unsigned long)(ts.tv_nsec ^ getpid()));
		if (target) {
			if (symlinkat(target, dir, tmp) == 0)
				return 0;
			if (errno != EEXIST)
				return -errno;
			continue;
		}
		fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static int finish_file(struct hc_tree_writer *w, struct hc_proto_error *err)
{
	char path[HC_PROTO_MAX_PATH + 64];
	int fd = w->fd, r;

	w->fd = -1;
	/* Permission bits exactly (no umask), set before the name appears. */
	if (fchmod(fd, w->mode) < 0 || close(fd) < 0) {
		r = hc_tree_fail(err, errno, full_path(path, sizeof(path), w->dest, w->rel));
		unlinkat(w->file_dir, w->tmp, 0);
		close_file_dir(w);
		return r;
	}
	r = place(w, w->file_dir, w->tmp, w->name, w->rel, err);
	if (r < 0)
		unlinkat(w->file_dir, w->tmp, 0);
	close_file_dir(w);
	return r;
}

static int writer_dir(struct hc_tree_writer *w, const struct hc_proto_entry *e, int dir,
		      const char *name, struct hc_proto_error *err)
{
	char path[HC_PROTO_MAX_PATH + 64];
	struct stat st;
	bool top = !e->relpath[0];

	full_path(path, sizeof(path), w->dest, e->relpath);
	if (top && !w->base[0]) {
		/* "/" itself: merged into. */
	} else if (mkdirat(dir, name, 0700) == 0) {
		if (remember(w, e->relpath, true) < 0)
			return failf(err, HC_EXEC_ERR_INTERNAL, -ENOMEM, "out of memory");
	} else if (errno != EEXIST) {
		return hc_tree_fail(err, errno, path);
	} else if (fstatat(dir, name, &st, top ? 0 : AT_SYMLINK_NOFOLLOW) < 0) {
		return hc_tree_fail(err, errno, path);
	} else if (!S_ISDIR(st.st_mode)) {
		return failf(err, HC_ERR_IO, -ENOTDIR, "%s: exists and is not a directory", path);
	}
	if (top) {
		w->top_fd = w->base[0] ? openat(dir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
				       : open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (w->top_fd < 0)
			return hc_tree_fail(err, errno, path);
	}
	if (remember_mode(w, e->relpath, e->mode) < 0)
		return failf(err, HC_EXEC_ERR_INTERNAL, -ENOMEM, "out of memory");
	return 0;
}

int hc_tree_writer_entry(struct hc_tree_writer *w, const struct hc_proto_entry *e,
			 struct hc_proto_error *err)
{
	char path[HC_PROTO_MAX_PATH + 64], name[NAME_MAX + 1];
	bool top = !e->relpath[0];
	int dir = -1, r;

	if (w->ended || w->fd >= 0)
		return failf(err, HC_EXEC_ERR_INVALID, -EPROTO,
			     "entry before the previous file's content is complete");
	if (top != (w->state == 0) || w->state == 2)
		return failf(err, HC_EXEC_ERR_INVALID, -EPROTO,
			     top ? "a second top entry"
				 : "an entry below a top that is no directory");
	if (!hc_proto_relpath_valid(e->relpath))
		return failf(err, HC_EXEC_ERR_INVALID, -EPROTO, "invalid relative path");
	if (top && !w->base[0] && e->kind != HC_ENTRY_DIR)
		return failf(err, HC_ERR_IO, -EISDIR, "/: is a directory");
	r = locate(w, e->relpath, name, &dir, err);
	if (r < 0)
		return r;
	full_path(path, sizeof(path), w->dest, e->relpath);
	switch (e->kind) {
	case HC_ENTRY_DIR:
		r = writer_dir(w, e, dir, name, err);
		if (dir != w->top_fd && dir != w->parent_fd)
			close(dir);
		if (r >= 0)
			w->state = top ? 1 : w->state;
		return r;
	case HC_ENTRY_SYMLINK: {
		char tmp[NAME_MAX + 1];

		r = make_temp(w, dir, name, tmp, e->target);
		if (r < 0)
			r = hc_tree_fail(err, -r, path);
		else if ((r = place(w, dir, tmp, name, e->relpath, err)) < 0)
			unlinkat(dir, tmp, 0);
		if (dir != w->top_fd && dir != w->parent_fd)
			close(dir);
		if (r >= 0 && top)
			w->state = 2;
		return r;
	}
	case HC_ENTRY_FILE:
		r = make_temp(w, dir, name, w->tmp, NULL);
		if (r < 0) {
			if (dir != w->top_fd && dir != w->parent_fd)
				close(dir);
			return hc_tree_fail(err, -r, path);
		}
		w->fd = r;
		w->file_dir = dir;
		w->left = e->size;
		w->mode = e->mode & 07777;
		snprintf(w->name, sizeof(w->name), "%s", name);
		snprintf(w->rel, sizeof(w->rel), "%s", e->relpath);
		if (top)
			w->state = 2;
		return w->left == 0 ? finish_file(w, err) : 0;
	default:
		return failf(err, HC_EXEC_ERR_INVALID, -EPROTO, "unknown entry kind %u", e->kind);
	}
}

int hc_tree_writer_data(struct hc_tree_writer *w, const uint8_t *p, size_t n,
			struct hc_proto_error *err)
{
	char path[HC_PROTO_MAX_PATH + 64];

	if (w->fd < 0 || n > w->left)
		return failf(err, HC_EXEC_ERR_INVALID, -EPROTO,
			     "file content beyond the size of its entry");
	while (n > 0) {
		ssize_t k = write(w->fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return hc_tree_fail(err, k < 0 ? errno : EIO,
					    full_path(path, sizeof(path), w->dest, w->rel));
		p += k;
		n -= (size_t)k;
		w->left -= (uint64_t)k;
	}
	return w->left == 0 ? finish_file(w, err) : 0;
}

int hc_tree_writer_end(struct hc_tree_writer *w, struct hc_proto_error *err)
{
	char path[HC_PROTO_MAX_PATH + 64];

	if (w->ended || w->fd >= 0 || w->state == 0)
		return failf(err, HC_EXEC_ERR_INVALID, -EPROTO,
			     w->state == 0 ? "end before any entry" : "end inside a file");
	/* Deepest first, so a read-only directory is made so after its content is in. */
	for (size_t i = w->n_modes; i-- > 0;) {
		const char *rel = w->modes[i].rel;
		int fd = rel[0] ? open_beneath(w->top_fd, rel) : dup(w->top_fd);

		if (fd < 0 || fchmod(fd, w->modes[i].mode & 07777) < 0) {
			int e = fd < 0 ? -fd : errno;

			if (fd >= 0)
				close(fd);
			return hc_tree_fail(err, e, full_path(path, sizeof(path), w->dest, rel));
		}
		close(fd);
	}
	w->ended = true;
	return 0;
}

void hc_tree_writer_free(struct hc_tree_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0) {
		close(w->fd);
		unlinkat(w->file_dir, w->tmp, 0);
	}
	close_file_dir(w);
	/* Newest first: a directory's content goes before the directory. */
	for (size_t i = w->n_made; i-- > 0;) {
		if (!w->ended) {
			const char *rel = w->made[i].rel;
			int flags = w->made[i].dir ? AT_REMOVEDIR : 0;

			if (!rel[0])
				unlinkat(w->parent_fd, w->base, flags);
			else if (w->top_fd >= 0)
				unlinkat(w->top_fd, rel, flags);
		}
		free(w->made[i].rel);
	}
	for (size_t i = 0; i < w->n_modes; i++)
		free(w->modes[i].rel);
	free(w->made);
	free(w->modes);
	if (w->top_fd >= 0)
		close(w->top_fd);
	if (w->parent_fd >= 0)
		close(w->parent_fd);
	free(w);
}

/* ---- the reader ---- */

struct level {
	DIR *d;
	size_t rel_len;
};

struct hc_tree_reader {
	char src[HC_PROTO_MAX_PATH + 1];
	char rel[HC_PROTO_MAX_PATH + 1];
	struct level stack[HC_TREE_MAX_DEPTH + 1];
	size_t depth;
	int state; /* 0 the top is next, 1 walking, 2 done */
	int fd;	   /* the current file */
	uint64_t left;
	char cur[HC_PROTO_MAX_PATH + 1]; /* the current file's relpath, for messages */
};

int hc_tree_reader_new(const char *src, struct hc_tree_reader **ret, struct hc_proto_error *err)
{
	struct hc_tree_reader *r;
	struct stat st;

	if (strlen(src) > HC_PROTO_MAX_PATH)
		return failf(err, HC_ERR_IO, -ENAMETOOLONG, "path too long");
	/* The common mistake, reported before anything is sent. */
	if (stat(src, &st) < 0)
		return hc_tree_fail(err, errno, src);
	r = calloc(1, sizeof(*r));
	if (!r)
		return failf(err, HC_EXEC_ERR_INTERNAL, -ENOMEM, "out of memory");
	snprintf(r->src, sizeof(r->src), "%s", src);
	r->fd = -1;
	*ret = r;
	return 0;
}

uint64_t hc_tree_reader_pending(const struct hc_tree_reader *r)
{
	return r->fd >= 0 ? r->left : 0;
}

static int open_file(struct hc_tree_reader *r, int fd, const struct stat *st,
		     struct hc_proto_entry *e)
{
	*e = (struct hc_proto_entry){.kind = HC_ENTRY_FILE,
				     .mode = (uint32_t)st->st_mode & 07777,
				     .size = (uint64_t)st->st_size};
	snprintf(e->relpath, sizeof(e->relpath), "%s", r->rel);
	snprintf(r->cur, sizeof(r->cur), "%s", r->rel);
	r->left = (uint64_t)st->st_size;
	if (r->left == 0)
		close(fd);
	else
		r->fd = fd;
	return 1;
}

static int reader_top(struct hc_tree_reader *r, struct hc_proto_entry *e,
		      struct hc_proto_error *err)
{
	struct stat st;
	int fd = open(r->src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return hc_tree_fail(err, errno, r->src);
	if (fstat(fd, &st) < 0) {
		int k = errno;

		close(fd);
		return hc_tree_fail(err, k, r->src);
	}
	r->rel[0] = 0;
	if (S_ISREG(st.st_mode)) {
		r->state = 2;
		return open_file(r, fd, &st, e);
	}
	if (!S_ISDIR(st.st_mode)) {
		close(fd);
		return failf(err, HC_ERR_IO, -EINVAL, "%s: not a regular file or directory",
			     r->src);
	}
	r->stack[0] = (struct level){fdopendir(fd), 0};
	if (!r->stack[0].d) {
		int k = errno;

		close(fd);
		return hc_tree_fail(err, k, r->src);
	}
	r->depth = 1;
	r->state = 1;
	*e = (struct hc_proto_entry){.kind = HC_ENTRY_DIR, .mode = (uint32_t)st.st_mode & 07777};
	return 1;
}

int hc_tree_reader_next(struct hc_tree_reader *r, struct hc_proto_entry *e,
			struct hc_proto_error *err)
{
	char path[HC_PROTO_MAX_PATH + 64];

	if (r->fd >= 0)
		return failf(err, HC_EXEC_ERR_INTERNAL, -EPROTO, "next entry inside a file");
	if (r->state == 0)
		return reader_top(r, e, err);
	while (r->state == 1) {
		struct level *l = &r->stack[r->depth - 1];
		struct dirent *de;
		struct stat st;
		size_t n;
		int dfd = dirfd(l->d), fd;

		errno = 0;
		de = readdir(l->d);
		if (!de) {
			if (errno)
				return hc_tree_fail(err, errno,
						    full_path(path, sizeof(path), r->src, r->rel));
			closedir(l->d);
			l->d = NULL;
			if (--r->depth == 0)
				r->state = 2;
			else
				r->rel[r->stack[r->depth - 1].rel_len] = 0;
			continue;
		}
		if (hc_streq(de->d_name, ".") || hc_streq(de->d_name, ".."))
			continue;
		r->rel[l->rel_len] = 0;
		n = (size_t)snprintf(r->rel + l->rel_len, sizeof(r->rel) - l->rel_len, "%s%s",
				     l->rel_len ? "/" : "", de->d_name);
		if (l->rel_len + n > HC_PROTO_MAX_PATH)
			return failf(err, HC_ERR_IO, -ENAMETOOLONG, "%s/%s: path too long", r->src,
				     r->rel);
		full_path(path, sizeof(path), r->src, r->rel);
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* gone since readdir */
			return hc_tree_fail(err, errno, path);
		}
		if (S_ISLNK(st.st_mode)) {
			*e = (struct hc_proto_entry){.kind = HC_ENTRY_SYMLINK};
			ssize_t k = readlinkat(dfd, de->d_name, e->target, HC_PROTO_MAX_PATH + 1);

			if (k < 0)
				return hc_tree_fail(err, errno, path);
			if (k == 0 || k > (ssize_t)HC_PROTO_MAX_PATH)
				return failf(err, HC_ERR_IO, -ENAMETOOLONG,
					     "%s: symlink target too long", path);
			e->target[k] = 0;
			snprintf(e->relpath, sizeof(e->relpath), "%s", r->rel);
			return 1;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			continue; /* sockets, FIFOs, devices: not copied */
		fd = openat(dfd, de->d_name,
			    O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW |
				    (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return hc_tree_fail(err, errno, path);
		}
		if (fstat(fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))) {
			close(fd);
			continue; /* replaced since the fstatat */
		}
		if (S_ISREG(st.st_mode))
			return open_file(r, fd, &st, e);
		if (r->depth > HC_TREE_MAX_DEPTH) {
			close(fd);
			return failf(err, HC_ERR_IO, -ELOOP,
				     "%s: directories nested deeper than %d levels", path,
				     HC_TREE_MAX_DEPTH);
		}
		DIR *d = fdopendir(fd);
		if (!d) {
			int k = errno;

			close(fd);
			return hc_tree_fail(err, k, path);
		}
		r->stack[r->depth++] = (struct level){d, l->rel_len + n};
		*e = (struct hc_proto_entry){.kind = HC_ENTRY_DIR,
					     .mode = (uint32_t)st.st_mode & 07777};
		snprintf(e->relpath, sizeof(e->relpath), "%s", r->rel);
		return 1;
	}
	return 0;
}

ssize_t hc_tree_reader_read(struct hc_tree_reader *r, uint8_t *buf, size_t n,
			    struct hc_proto_error *err)
{
	char path[HC_PROTO_MAX_PATH + 64];
	ssize_t k;

	if (r->fd < 0)
		return 0;
	if (n > r->left)
		n = (size_t)r->left;
	do
		k = read(r->fd, buf, n);
	while (k < 0 && errno == EINTR);
	full_path(path, sizeof(path), r->src, r->cur);
	if (k < 0)
		return hc_tree_fail(err, errno, path);
	if (k == 0)
		return failf(err, HC_ERR_IO, -EIO, "%s: file shrank while being read", path);
	r->left -= (uint64_t)k;
	if (r->left == 0) {
		close(r->fd);
		r->fd = -1;
	}
	return k;
}

void hc_tree_reader_free(struct hc_tree_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	for (size_t i = 0; i < r->depth; i++)
		if (r->stack[i].d)
			closedir(r->stack[i].d);
	free(r);
}
