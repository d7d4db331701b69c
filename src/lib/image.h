/* SPDX-License-Identifier: MIT */
/*
 * The image side of a run: resolve (and pull, by policy) the image, get its cached rootfs
 * (tree, and the ext4 disk when the backend needs a block device), hold the rootfs's shared
 * lock for the run, and read what the image config says about the command. Or, with
 * --rootfs DIR, just the directory.
 */
#pragma once

#include "core/path.h"
#include "lib/spec.h"

struct hc_lib_image {
	char name[512];	 /* normalised reference; "" with --rootfs */
	char digest[72]; /* platform manifest digest; "" with --rootfs */
	char tree[HC_PATH_MAX];
	char disk[HC_PATH_MAX]; /* "" unless a disk was asked for */
	struct hc_lib_image_defaults defaults;
	void *priv; /* the rootfs handle and the storage behind defaults */
};

#define HC_LIB_IMAGE_INIT                                                                          \
	{                                                                                          \
		.name = "", .priv = NULL                                                           \
	}

/* Finds the image (pulling it by the policy), or checks nothing yet for --rootfs: cheap, so a
 * wrong name is reported before anything boots. */
int hc_lib_image_resolve(struct hc_store *store, const struct hc_run_opts *o,
			 struct hc_lib_image *ret, struct hc_error *err) _must_check_;
/* After resolve: the rootfs tree (and disk when want_disk), held under the image's shared
 * lock, and the image config's defaults. */
int hc_lib_image_prepare(struct hc_store *store, const struct hc_run_opts *o, bool want_disk,
			 struct hc_lib_image *ret, struct hc_error *err) _must_check_;
/* Releases the lock and everything prepare allocated (and any temporary disk). */
void hc_lib_image_release(struct hc_lib_image *img);
