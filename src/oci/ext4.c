/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "core/cancel.h"
#include "core/child.h"
#include "core/clock.h"
#include "core/log.h"
#include "oci/digest.h"
#include "oci/ext4.h"
#include "oci/store.h"

#define EXT4_INODE_SIZE 256
#define MKE2FS_TIMEOUT_MS (30 * 60 * 1000)
#define MAX_DEPTH 4096

struct linked {
	ino_t ino;
	uint64_t bytes;
};

struct measure {
	uint64_t bytes, inodes;
	struct linked *linked; /* files with st_nlink > 1: counted once per inode at the end */
	size_t n_linked, cap_linked;
	unsigned depth;
	int cancel_fd;
};

static int note_linked(struct measure *m, ino_t ino, uint64_t bytes)
{
	if (m->n_linked == m->cap_linked) {
		size_t ncap = m->cap_linked ? m->cap_linked * 2 : 256, sz;
		struct linked *a;

		if (hc_mul_overflows(ncap, sizeof(*a), &sz))
			return -ENOMEM;
		a = realloc(m->linked, sz);
		if (!a)
			return -ENOMEM;
		m->linked = a;
		m->cap_linked = ncap;
	}
	m->linked[m->n_linked++] = (struct linked){ino, bytes};
	return 0;
}

/* What the entry takes in 4 KiB ext4 blocks. st_blocks alone undercounts on filesystems that
 * compress (btrfs) or inline small files; the apparent size alone undercounts nothing but
 * sparse files, which only cost headroom. */
static uint64_t alloc_bytes(const struct stat *st)
{
	uint64_t blocks = (uint64_t)st->st_blocks * 512, apparent;

	if (S_ISLNK(st->st_mode))
		return st->st_size < 60 ? 0 : 4096; /* short targets live in the inode */
	apparent = ((uint64_t)st->st_size + 4095) & ~(uint64_t)4095;
	return blocks > apparent ? blocks : apparent;
}

static int walk(struct measure *m, int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int r = 0;

	if (!d) {
		close(dfd);
		return -errno;
	}
	if (++m->depth > MAX_DEPTH) {
		closedir(d);
		return -ELOOP;
	}
	if (hc_fd_readable(m->cancel_fd)) {
		closedir(d);
		return -ECANCELED;
	}
	while (r == 0 && (de = readdir(d))) {
		struct stat st;
		uint64_t bytes;

		if (hc_streq(de->d_name, ".") || hc_streq(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			break;
		}
		bytes = alloc_bytes(&st);
		if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
			r = note_linked(m, st.st_ino, bytes);
			continue;
		}
		m->inodes++;
		m->bytes += bytes;
		if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd(d), de->d_name,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				r = -errno;
				break;
			}
			r = walk(m, fd);
		}
	}
	m->depth--;
	closedir(d);
	return r;
}

static int cmp_linked(const void *a, const void *b)
{
	ino_t x = ((const struct linked *)a)->ino, y = ((const struct linked *)b)->ino;

	return x < y ? -1 : x > y;
}

static int measure(const char *tree, int cancel_fd, uint64_t *ret_bytes, uint64_t *ret_inodes,
		   struct hc_error *err)
{
	struct measure m = {.inodes = 1, .cancel_fd = cancel_fd}; /* the root */
	int fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return hc_error_errno(err, -errno, "open %s", tree);
	r = walk(&m, fd);
	if (r == 0 && m.n_linked) {
		qsort(m.linked, m.n_linked, sizeof(*m.linked), cmp_linked);
		for (size_t i = 0; i < m.n_linked; i++) {
			if (i > 0 && m.linked[i].ino == m.linked[i - 1].ino)
				continue;
			m.inodes++;
			m.bytes += m.linked[i].bytes;
		}
	}
	free(m.linked);
	if (r == -ECANCELED)
		return hc_cancel_check(cancel_fd, err) ?: r;
	if (r < 0)
		return hc_error_errno(err, r, "measure %s", tree);
	*ret_bytes = m.bytes;
	*ret_inodes = m.inodes;
	return 0;
}

int hc_oci_ext4_measure(const char *tree, uint64_t *ret_bytes, uint64_t *ret_inodes,
			struct hc_error *err)
{
	return measure(tree, -1, ret_bytes, ret_inodes, err);
}

int hc_oci_ext4_build(const char *tree, const char *path, int cancel_fd, struct hc_error *err)
{
	char tmp[HC_PATH_MAX], id[13], inodes_s[32];
	_cleanup_close_ int fd = -1;
	uint64_t bytes = 0, inodes = 0, size;
	int r;

	r = measure(tree, cancel_fd, &bytes, &inodes, err);
	if (r < 0)
		return r;
	/* Headroom: ext4 spends a little more than the host filesystem on directories and
	 * extent trees, plus its own metadata; the guest never writes to it. */
	inodes += inodes / 5 + 64;
	size = bytes + bytes / 5 + inodes * EXT4_INODE_SIZE + (16u << 20);
	size = (size + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
	snprintf(inodes_s, sizeof(inodes_s), "%llu", (unsigned long long)inodes);

	hc_path_random_id(id, 12);
	{
		const char *slash = strrchr(path, '/');
		r = hc_path_fmt(tmp, sizeof(tmp), err, "%.*s.tmp-%s-%s",
				slash ? (int)(slash - path + 1) : 0, path, slash ? slash + 1 : path,
				id);
		if (r < 0)
			return r;
	}
	/* Locked while it is being built: a cleaner that gets the lock removes it (store.h). */
	r = hc_oci_store_create_temp(tmp, false, &fd, err);
	if (r < 0)
		return r;
	if (ftruncate(fd, (off_t)size) < 0) {
		r = hc_error_errno(err, -errno, "size %s", tmp);
		goto fail;
	}
	{
		/* -d copies the tree with owners, modes, times, hard links, symlinks and xattrs;
		 * the guest mounts it read-only, so no journal and no reserved blocks. */
		const char *argv[] = {
			"mke2fs",	  "-q", "-F",	  "-t", "ext4", "-O", "^has_journal", "-b",
			"4096",		  "-N", inodes_s, "-m", "0",	"-L", "hotcell",      "-E",
			"root_owner=0:0", "-d", tree,	  tmp,	NULL};
		r = hc_child_run_cancel(argv, MKE2FS_TIMEOUT_MS, cancel_fd, 16384, NULL, err);
		if (r == -ECANCELED)
			goto fail;
		if (r == -ENOENT) {
			hc_error_setk(err, r, HC_EK_ROOTFS,
				      "mke2fs not found: install e2fsprogs for block rootfs");
			goto fail;
		}
		if (r != 0) {
			if (r > 0)
				r = -EIO;
			hc_error_kind(err, HC_EK_ROOTFS);
			hc_error_prefix(err, "build ext4 image of %s (%llu MiB)", tree,
					(unsigned long long)(size >> 20));
			goto fail;
		}
	}
	if (fchmod(fd, 0444) < 0) {
		r = hc_error_errno(err, -errno, "chmod %s", tmp);
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		r = hc_error_errno(err, -errno, "rename %s", path);
		goto fail;
	}
	return 0;
fail:
	unlink(tmp);
	return r;
}

int hc_oci_ext4_get(struct hc_store *s, const char *manifest_digest, const char *tree,
		    int cancel_fd, char *ret_path, size_t n, bool *ret_hit, double *ret_ms,
		    struct hc_error *err)
{
	const char *hex = hc_oci_digest_hex(manifest_digest);
	char path[HC_PATH_MAX];
	struct stat st;
	double t0 = 0;
	bool hit;
	int r;

	if (!hex)
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE, "invalid digest '%.80s'",
				     manifest_digest ? manifest_digest : "(null)");
	r = hc_path_fmt(path, sizeof(path), err, "%s/%s.ext4", s->disks_dir, hex);
	if (r < 0)
		return r;
	hit = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	if (!hit) {
		r = hc_path_mkdir_p(s->disks_dir, 0755, err);
		if (r < 0)
			return r;
		hc_oci_store_clean_stale(s->disks_dir);
		t0 = hc_clock_ms();
		r = hc_oci_ext4_build(tree, path, cancel_fd, err);
		if (r < 0)
			return r;
	}
	r = hc_path_fmt(ret_path, n, err, "%s", path);
	if (r < 0)
		return r;
	if (ret_hit)
		*ret_hit = hit;
	if (ret_ms)
		*ret_ms = hit ? 0 : hc_clock_ms() - t0;
	return 0;
}
