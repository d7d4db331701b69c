/* SPDX-License-Identifier: MIT */
/*
 * Applies OCI image layers (tar, tar+gzip, tar+zstd; detected by content) in order into a
 * directory, following the OCI image spec's layer rules (image-spec layer.md, "Applying
 * Changesets" and "Whiteouts"):
 *  - `.wh.NAME` removes NAME of lower layers; `.wh..wh..opq` empties its directory of lower-layer
 *    content; content of the same layer is never hidden by its own whiteouts; whiteout files
 *    never appear in the result;
 *  - an entry replaces what a lower layer had at its path, except that a directory over a
 *    directory merges;
 *  - hard links (to anything already in the tree), symlinks (stored, never followed), modes
 *    incl. setuid, uid/gid when running as root, mtimes (directories' after all content),
 *    xattrs where the filesystem allows (user.*, security.capability and POSIX ACLs; other
 *    trusted.* / security.* names are dropped).
 *
 * Layer content is hostile: names are normalised (leading "/" and "./" stripped) and a ".."
 * component is refused; every parent is opened beneath the root with symlinks refused
 * (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or a component walk with O_NOFOLLOW), so a
 * symlink planted earlier is never used as a parent; hard-link targets are resolved the same
 * way. Device nodes, fifos and sockets are not created (counted in the stats): the guest has
 * devtmpfs. A layer that tries to escape fails with an error naming the entry.
 */
#pragma once

#include <stdint.h>

#include "core/error.h"

/* Bounds on what one layer may contain (beyond them: -E2BIG / -ENAMETOOLONG). */
#define HC_OCI_UNPACK_MAX_NAME 4095	  /* bytes of a normalised entry name */
#define HC_OCI_UNPACK_MAX_DEPTH 256	  /* components of an entry name */
#define HC_OCI_UNPACK_MAX_ENTRIES 1000000 /* entries of one layer */
#define HC_OCI_UNPACK_MAX_LINK 4095	  /* bytes of a symlink target */

struct hc_oci_unpack_stats {
	uint64_t entries; /* tar entries seen, all layers */
	uint64_t files;
	uint64_t dirs;
	uint64_t symlinks;
	uint64_t hardlinks;
	uint64_t whiteouts;	  /* incl. opaque markers */
	uint64_t skipped_special; /* device nodes, fifos, sockets: not created on the host */
	uint64_t xattrs_dropped;  /* names we refuse, or the filesystem does not support */
	uint64_t bytes;		  /* file data written */
	char first_skipped[256];  /* name of the first skipped special file, for a note */
};

struct hc_oci_unpack;

/*
 * Normalises a tar entry name: strips leading "/" and "./", collapses "//" and "/./", drops a
 * trailing "/". Writes the result ("" for the root itself) to buf (n bytes).
 * Returns 0, -EINVAL for a ".." component, -ENAMETOOLONG for a name, component or depth over
 * the bounds above (or over n). Pure: no I/O, for fuzzing.
 */
int hc_oci_unpack_sanitize_path(const char *name, char *buf, size_t n) _must_check_;

/* Starts applying layers into root, an existing (normally empty) directory. */
int hc_oci_unpack_new(const char *root, struct hc_oci_unpack **ret,
		      struct hc_error *err) _must_check_;
/*
 * Applies one layer read from fd (a tar, gzip or zstd stream; the format is detected by
 * content). what names the layer in messages (e.g. its digest). When expect_digest
 * ("sha256:<hex>") is given, the stream as stored is hashed while it is read and a mismatch
 * is an error (-EBADMSG); when expect_diff_id is given, so is the uncompressed tar against it
 * (the image config's rootfs.diff_ids, image-spec config.md). On error the tree is left
 * half-applied: the caller discards it.
 */
int hc_oci_unpack_layer_fd(struct hc_oci_unpack *u, int fd, const char *what,
			   const char *expect_digest, const char *expect_diff_id,
			   struct hc_error *err) _must_check_;
int hc_oci_unpack_layer_path(struct hc_oci_unpack *u, const char *path, const char *what,
			     const char *expect_digest, const char *expect_diff_id,
			     struct hc_error *err) _must_check_;
/* From now on every block of layer data first checks cancel_fd (core/cancel.h): readable ->
 * the layer fails with -ECANCELED. -1 (the default): never. */
void hc_oci_unpack_set_cancel(struct hc_oci_unpack *u, int cancel_fd);
int hc_oci_unpack_layer_mem(struct hc_oci_unpack *u, const void *data, size_t len, const char *what,
			    struct hc_error *err) _must_check_;
/* After the last layer: sets directories' modes and mtimes (deferred so that their content
 * does not disturb them). */
int hc_oci_unpack_finish(struct hc_oci_unpack *u, struct hc_error *err) _must_check_;
const struct hc_oci_unpack_stats *hc_oci_unpack_get_stats(const struct hc_oci_unpack *u);
void hc_oci_unpack_free(struct hc_oci_unpack *u);
