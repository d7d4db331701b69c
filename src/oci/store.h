/* SPDX-License-Identifier: MIT */
/*
 * The image store (DESIGN.md §5): an OCI image layout under <state>/store plus the rootfs and
 * disk caches under <state>/rootfs and <state>/disks. struct hc_store is the public opaque
 * handle of hotcell.h.
 *
 * Locking: <state>/store/.lock is held exclusively while index.json is rewritten; a run holds
 * a shared flock on <state>/rootfs/<hex>.lock for as long as it uses that image; rmi/prune
 * take an exclusive non-blocking lock on it and skip what is in use.
 */
#pragma once

#include "core/error.h"
#include "core/path.h"

struct hc_store {
	char state_dir[HC_PATH_MAX];
	char store_dir[HC_PATH_MAX];  /* <state>/store: oci-layout, index.json, blobs/sha256 */
	char rootfs_dir[HC_PATH_MAX]; /* <state>/rootfs */
	char disks_dir[HC_PATH_MAX];  /* <state>/disks */
};

/* "sha256:<64 hex>" -> <store>/blobs/sha256/<hex>. -EINVAL for anything else. */
int hc_oci_store_blob_path(const struct hc_store *s, const char *digest, char *buf, size_t n,
			   struct hc_error *err) _must_check_;
bool hc_oci_store_has_blob(const struct hc_store *s, const char *digest);

/* One layer of an image, as the manifest lists it. */
struct hc_oci_layer {
	char digest[72];
	char media_type[128];
	uint64_t size;
};

/* What a run needs of an image that is in the store. */
struct hc_oci_image {
	char name[512];          /* normalised reference */
	char digest[72];         /* platform manifest digest */
	char config_digest[72];
	struct hc_oci_layer *layers;
	size_t n_layers;
};
/* Finds ref (a name, or a digest) in the store's index.json and reads its manifest.
 * -ENOENT with a clear message when the image is not there. */
int hc_oci_store_resolve(struct hc_store *s, const char *ref, struct hc_oci_image *ret,
			 struct hc_error *err) _must_check_;
void hc_oci_image_free(struct hc_oci_image *img);
