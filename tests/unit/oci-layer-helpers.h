/* SPDX-License-Identifier: MIT */
/* Writes crafted tar layers with libarchive's writer, for the unpack and rootfs tests. */
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum tfilter { TF_NONE, TF_GZIP, TF_ZSTD };

struct tent {
	const char *name;
	char type;        /* 'f' file, 'd' dir, 'l' symlink, 'h' hard link, 'c' chr dev, 'p' fifo */
	const char *data; /* file content, or link target */
	unsigned mode;    /* 0: a default for the type */
	long long uid, gid;
	long long mtime;  /* 0: 1000000000 */
	const char *xattr_name, *xattr_value;
};

/* Writes the entries as a pax tar (with the filter) to path; returns 0 or -1. */
static inline int tl_write(const char *path, enum tfilter f, const struct tent *ents, size_t n)
{
	struct archive *a = archive_write_new();
	int ok = 0;

	if (!a)
		return -1;
	archive_write_set_format_pax_restricted(a);
	if (f == TF_GZIP)
		archive_write_add_filter_gzip(a);
	else if (f == TF_ZSTD)
		archive_write_add_filter_zstd(a);
	if (archive_write_open_filename(a, path) != ARCHIVE_OK) {
		archive_write_free(a);
		return -1;
	}
	for (size_t i = 0; i < n && ok == 0; i++) {
		const struct tent *t = &ents[i];
		struct archive_entry *e = archive_entry_new();
		size_t len = 0;

		archive_entry_set_pathname(e, t->name);
		archive_entry_set_uid(e, t->uid);
		archive_entry_set_gid(e, t->gid);
		archive_entry_set_mtime(e, t->mtime ? t->mtime : 1000000000, 0);
		switch (t->type) {
		case 'f':
			len = t->data ? strlen(t->data) : 0;
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, t->mode ? t->mode : 0644);
			archive_entry_set_size(e, (la_int64_t)len);
			break;
		case 'd':
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, t->mode ? t->mode : 0755);
			break;
		case 'l':
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_perm(e, 0777);
			archive_entry_set_symlink(e, t->data);
			break;
		case 'h':
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_hardlink(e, t->data);
			archive_entry_set_size(e, 0);
			break;
		case 'c':
			archive_entry_set_filetype(e, AE_IFCHR);
			archive_entry_set_perm(e, 0666);
			archive_entry_set_rdevmajor(e, 1);
			archive_entry_set_rdevminor(e, 3);
			break;
		case 'p':
			archive_entry_set_filetype(e, AE_IFIFO);
			archive_entry_set_perm(e, 0644);
			break;
		default:
			ok = -1;
		}
		if (t->xattr_name)
			archive_entry_xattr_add_entry(e, t->xattr_name, t->xattr_value,
						      strlen(t->xattr_value));
		if (ok == 0 && archive_write_header(a, e) != ARCHIVE_OK)
			ok = -1;
		if (ok == 0 && len && archive_write_data(a, t->data, len) != (la_ssize_t)len)
			ok = -1;
		archive_entry_free(e);
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		ok = -1;
	archive_write_free(a);
	return ok;
}

/* Makes a fresh temp directory under /tmp (mkdtemp); returns 0 or -1. */
static inline int tl_mkdtemp(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "/tmp/hc-test-%s-XXXXXX", tag);
	return mkdtemp(buf) ? 0 : -1;
}

/* Number of entries in a directory other than . and .. (-1 when it cannot be read). */
static inline int tl_count_dir(const char *path)
{
	char cmd[4200];
	int n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' 2>/dev/null | wc -l", path);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}
