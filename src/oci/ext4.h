/* SPDX-License-Identifier: MIT */
/*
 * ext4 images of a rootfs tree, for block-device backends (DESIGN.md §2, §5):
 * <state>/disks/<manifest-hex>.ext4, built with `mke2fs -t ext4 -d TREE` into a temp name
 * (<disks>/.tmp-<hex>-<id>.ext4, flock'ed while it is being built) and renamed into place;
 * no journal (the guest mounts it read-only), mode 0444. Sized to the content: allocated
 * blocks (hard links counted once) plus 20% plus 16 MiB, and inodes for every entry plus 20%.
 */
#pragma once

#include <stdint.h>

#include "core/error.h"
#include "core/path.h"

struct hc_store;

/* What a tree occupies: allocated bytes (st_blocks, hard links once) and inodes. */
int hc_oci_ext4_measure(const char *tree, uint64_t *ret_bytes, uint64_t *ret_inodes,
			struct hc_error *err) _must_check_;
/* Builds an image of tree at path (temp + rename in path's directory). cancel_fd (>= 0):
 * readable -> mke2fs is killed and reaped, the temp removed, -ECANCELED (core/cancel.h). */
int hc_oci_ext4_build(const char *tree, const char *path, int cancel_fd,
		      struct hc_error *err) _must_check_;
/* <state>/disks/<hex>.ext4 for the image with that manifest digest, built from tree when
 * missing. ret_hit: it was there already; ret_ms: the build time (0 on a hit). */
int hc_oci_ext4_get(struct hc_store *s, const char *manifest_digest, const char *tree,
		    int cancel_fd, char *ret_path, size_t n, bool *ret_hit, double *ret_ms,
		    struct hc_error *err) _must_check_;
