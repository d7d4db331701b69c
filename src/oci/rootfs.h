/* SPDX-License-Identifier: MIT */
/*
 * The cached root filesystem of an image (DESIGN.md §2, §5):
 *   <state>/rootfs/<manifest-hex>/root/        the flattened layers (what the guest sees)
 *   <state>/rootfs/<manifest-hex>/config.json  the image config blob (verified), beside it
 *   <state>/disks/<manifest-hex>.ext4          for block backends, when asked for
 *
 * A miss unpacks into <state>/rootfs/.tmp-<hex>-<id>/ (flock'ed by its builder) and renames it
 * into place, so a partial tree never enters the cache; when two processes build the same image
 * at once, one rename wins and the other discards its copy. Temp trees of builders that died are
 * removed by the next miss. A hit costs a lock and a stat. <hex>/ is mode 0700: the tree's
 * setuid binaries and capabilities are the image's, not for host users.
 *
 * The caller holds the image's shared lock (<state>/rootfs/<hex>.lock, via
 * hc_oci_store_lock_image) from get to release, so rmi/prune leave the image alone meanwhile.
 */
#pragma once

#include "core/path.h"
#include "oci/store.h"
#include "oci/unpack.h"

struct hc_oci_rootfs {
	char dir[HC_PATH_MAX];		  /* <state>/rootfs/<hex> */
	char root[HC_PATH_MAX];		  /* <dir>/root */
	char config[HC_PATH_MAX];	  /* <dir>/config.json */
	char disk[HC_PATH_MAX];		  /* <state>/disks/<hex>.ext4; "" unless asked for */
	int lock_fd;			  /* the shared image lock, held until release */
	bool hit;			  /* the tree was in the cache */
	bool disk_hit;			  /* the disk was in the cache */
	double unpack_ms;		  /* 0 on a hit */
	double disk_ms;			  /* 0 on a hit or when not asked for */
	struct hc_oci_unpack_stats stats; /* of the unpack, on a miss */
};

#define HC_OCI_ROOTFS_INIT                                                                         \
	{                                                                                          \
		.lock_fd = -1                                                                      \
	}

/* Gets (building on a miss) the rootfs of img, and its ext4 disk when want_disk. On success
 * the image lock is held in ret->lock_fd; on failure nothing is held and nothing new is left in
 * the cache. cancel_fd (>= 0, core/cancel.h): readable -> the unpack or the ext4 build stops
 * within a second, -ECANCELED, no temp left. A hit also removes the temps of dead builders. */
int hc_oci_rootfs_get(struct hc_store *s, const struct hc_oci_image *img, bool want_disk,
		      int cancel_fd, struct hc_oci_rootfs *ret, struct hc_error *err) _must_check_;
/* Releases the lock. Safe on HC_OCI_ROOTFS_INIT and twice. */
void hc_oci_rootfs_release(struct hc_oci_rootfs *r);
