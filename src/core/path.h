/* SPDX-License-Identifier: MIT */
/* Paths, directories and whole-file I/O (DESIGN.md §5). */
#pragma once

#include <sys/types.h>

#include "core/error.h"

#define HC_PATH_MAX 4096
/* sun_path is 108 bytes including the NUL: every socket path is checked against this. */
#define HC_SOCK_PATH_MAX 107

/* snprintf into a fixed buffer; -ENAMETOOLONG (with err set) when it does not fit. */
int hc_path_fmt(char *buf, size_t n, struct hc_error *err, const char *fmt, ...)
	_printf_(4, 5) _must_check_;
/* $HOTCELL_HOME, else /var/lib/hotcell for root, else $XDG_DATA_HOME/hotcell
 * (~/.local/share/hotcell). Created when missing. */
int hc_path_state_dir(char *buf, size_t n, struct hc_error *err) _must_check_;
/* $XDG_RUNTIME_DIR/hotcell, or /run/hotcell for root, else /tmp/hotcell-<uid>. Created. */
int hc_path_runtime_dir(char *buf, size_t n, struct hc_error *err) _must_check_;
/* Creates a fresh, private (0700) runtime directory for one VM: <runtime>/<short-id>/, owned
 * by the calling process (core/owner.h: its "owner" file). The directories of owners that are
 * gone are removed first (hc_owner_sweep). */
int hc_path_make_run_dir(char *buf, size_t n, struct hc_error *err) _must_check_;
int hc_path_mkdir_p(const char *path, mode_t mode, struct hc_error *err) _must_check_;
/* Removes a tree without following symlinks and without crossing mount points. Missing is
 * fine. */
int hc_path_rm_rf(const char *path, struct hc_error *err);
/* Reads a whole file, at most max bytes (-E2BIG beyond). NUL-terminated. */
int hc_path_read_file(const char *path, size_t max, char **ret, size_t *ret_len,
		      struct hc_error *err) _must_check_;
/* Writes through a temp file in the same directory, fsync, rename(): never half a file. */
int hc_path_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
			      struct hc_error *err) _must_check_;
/* Copies the whole file behind src (from offset 0, whatever its position) to path, through a
 * temp name in the same directory and rename(): a reflink (FICLONE) where the file systems
 * allow, else only the extents that hold data (SEEK_DATA/SEEK_HOLE), so the copy is as sparse
 * as the source. Not fsync'd. An existing path is replaced, never written in place (whoever
 * has it open or mapped keeps the old content). */
int hc_path_copy_fd_atomic(int src, const char *path, mode_t mode,
			   struct hc_error *err) _must_check_;
/* Copies the extents of src that hold data into dst (an empty file: a memfd) at the same offsets
 * and sizes dst as src, so dst is as sparse as src. */
int hc_path_copy_fd_into(int src, int dst, struct hc_error *err) _must_check_;
/* Opens (creating, 0644) and flocks path, shared or exclusive, waiting or not (-EBUSY when
 * nonblock and it is held). A lock file may be unlinked while locked (prune removes lock
 * files it holds): after locking, the fd is checked to still be the file at path, else the
 * lock is retried on the new file, since a lock on an unlinked inode protects nothing. */
int hc_path_lock(const char *path, bool shared, bool nonblock, int *ret_fd,
		 struct hc_error *err) _must_check_;
bool hc_path_exists(const char *path);
/* Generates a random lowercase hex id of n chars (n < size of buf). */
void hc_path_random_id(char *buf, size_t n);
