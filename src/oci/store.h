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

#include <pthread.h>

#include "core/error.h"
#include "core/path.h"
#include "oci/digest.h"

struct hc_store {
	char state_dir[HC_PATH_MAX];
	char store_dir[HC_PATH_MAX];  /* <state>/store: oci-layout, index.json, blobs/sha256 */
	char rootfs_dir[HC_PATH_MAX]; /* <state>/rootfs */
	char disks_dir[HC_PATH_MAX];  /* <state>/disks */
	/* One shared writer lock for all the blob writers of this handle (pull runs several
	 * at once): one fd, not one per blob. */
	pthread_mutex_t writers_mutex;
	int writers_fd;
	unsigned writers_users;
};

/* hc_image_list and hc_store_prune (hotcell.h) for the store itself; the library's wrap them
 * (lib/image.c: templates too). */
int hc_oci_image_list(struct hc_store *store, struct hc_image_info **ret, size_t *ret_n,
		      struct hc_error *err) _must_check_;
int hc_oci_store_prune(struct hc_store *store, struct hc_error *err) _must_check_;

/* OCI media types (image-spec media-types.md) and Docker's, as they appear in manifests. */
#define HC_OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define HC_OCI_MT_INDEX "application/vnd.oci.image.index.v1+json"
#define HC_OCI_MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define HC_OCI_MT_LAYER "application/vnd.oci.image.layer.v1.tar"
#define HC_OCI_MT_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define HC_OCI_MT_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define HC_DOCKER_MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define HC_DOCKER_MT_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define HC_DOCKER_MT_CONFIG "application/vnd.docker.container.image.v1+json"
#define HC_DOCKER_MT_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* The annotation that names an image in index.json (image-spec annotations.md). */
#define HC_OCI_REF_NAME "org.opencontainers.image.ref.name"

/* Hard caps on what we read into memory from the store or from an archive. */
#define HC_OCI_MANIFEST_MAX (4u << 20)
#define HC_OCI_CONFIG_MAX (16u << 20)
#define HC_OCI_INDEX_MAX (64u << 20)

/* Opens (creating when missing) <state_dir>/store as an OCI layout, plus rootfs/ and disks/.
 * state_dir NULL: hc_path_state_dir(). (hc_store_open of hotcell.h allocates one of these.) */
int hc_oci_store_init(struct hc_store *s, const char *state_dir, struct hc_error *err) _must_check_;

/* "sha256:<64 hex>" -> <store>/blobs/sha256/<hex>. -EINVAL for anything else. */
int hc_oci_store_blob_path(const struct hc_store *s, const char *digest, char *buf, size_t n,
			   struct hc_error *err) _must_check_;
bool hc_oci_store_has_blob(const struct hc_store *s, const char *digest);
/* Is the blob there as its descriptor says? Its size always; its content (sha256) too when full.
 * 0: yes; -ENOENT: missing; -EBADMSG: damaged (truncated, altered), err says how. A commit of
 * the same digest replaces a damaged blob (pull and load re-fetch what this refuses). */
int hc_oci_store_check_blob(const struct hc_store *s, const char *digest, uint64_t size, bool full,
			    struct hc_error *err) _must_check_;

/*
 * Writing a blob. A writer is an unnamed temp file (O_TMPFILE, else "blobs/sha256/.tmp-<id>")
 * in blobs/sha256; the data is hashed as it is written. Commit verifies the digest (and the
 * size when one was declared), fsyncs and links the file into place under its digest name:
 * nothing unverified ever appears under a blob name. A blob that is already there (another
 * process wrote it meanwhile) is not an error. A mismatch is -EBADMSG with a message naming the
 * blob; the temp file is gone afterwards.
 *
 * While a writer exists the process holds the store's writer lock shared (see
 * hc_oci_store_lock_writers), so prune never removes a blob between commit and add_name as long
 * as the caller holds that lock around the whole pull/load.
 */
struct hc_oci_blob_writer;
/* expected_digest: NULL when unknown (commit then reports the computed digest).
 * expected_size: 0 when unknown; otherwise writing past it is -EFBIG and a shorter blob fails
 * at commit. */
int hc_oci_store_blob_begin(struct hc_store *s, const char *expected_digest, uint64_t expected_size,
			    struct hc_oci_blob_writer **ret, struct hc_error *err) _must_check_;
int hc_oci_blob_writer_write(struct hc_oci_blob_writer *w, const void *data, size_t n,
			     struct hc_error *err) _must_check_;
/* Bytes written so far. */
uint64_t hc_oci_blob_writer_size(const struct hc_oci_blob_writer *w);
/* Starts writeback of what was written so far (sync_file_range), so the fsync at commit has
 * little left to wait for: a pull calls it while it still downloads other blobs. */
void hc_oci_blob_writer_start_sync(struct hc_oci_blob_writer *w);
/* Verifies the digest (and declared size) without linking: the blob stays private to the
 * writer, so a caller can check a whole set (an archive) before any of it enters the store.
 * Idempotent; no more writes afterwards. */
int hc_oci_blob_writer_finish(struct hc_oci_blob_writer *w, char *ret_digest,
			      struct hc_error *err) _must_check_;
/* Reads back what was written (at most max bytes, -E2BIG beyond), NUL-terminated. */
int hc_oci_blob_writer_read(struct hc_oci_blob_writer *w, size_t max, char **ret, size_t *ret_len,
			    struct hc_error *err) _must_check_;
/* Verifies (finish) and links the blob into place, then frees the writer (also on failure).
 * ret_digest (HC_DIGEST_SIZE bytes) may be NULL. */
int hc_oci_blob_writer_commit(struct hc_oci_blob_writer *w, char *ret_digest,
			      struct hc_error *err) _must_check_;
/* Drops the temp file and frees the writer. NULL is fine. */
void hc_oci_blob_writer_abort(struct hc_oci_blob_writer *w);
/* A whole in-memory blob (manifests, configs) in one call. */
int hc_oci_store_blob_put(struct hc_store *s, const char *expected_digest, const void *data,
			  size_t n, char *ret_digest, struct hc_error *err) _must_check_;
/* Reads a blob of at most max bytes and verifies its digest before handing it out.
 * NUL-terminated. */
int hc_oci_store_blob_read(struct hc_store *s, const char *digest, size_t max, char **ret,
			   size_t *ret_len, struct hc_error *err) _must_check_;

/*
 * index.json. Each image is one entry of "manifests" whose HC_OCI_REF_NAME annotation is its
 * full normalised reference ("docker.io/library/alpine:3.20"), pointing at the platform
 * manifest. One entry per name: adding a name that exists replaces its entry. Rewrites are
 * atomic (temp + rename) under an exclusive flock on <store>/.lock, so concurrent processes
 * never lose each other's updates and readers never see half a file.
 */
int hc_oci_store_add_name(struct hc_store *s, const char *name, const char *manifest_digest,
			  const char *media_type, uint64_t size, struct hc_error *err) _must_check_;
/* Removes the entry for name; -ENOENT when there is none. */
int hc_oci_store_remove_name(struct hc_store *s, const char *name,
			     struct hc_error *err) _must_check_;

/*
 * Locks (DESIGN.md §5).
 *
 * Image lock: <state>/rootfs/<hex>.lock. A run holds it shared (blocking) for as long as it
 * uses the image; rmi and prune take it exclusive non-blocking and get -EBUSY ("image is in
 * use"). On success *ret_fd is the locked fd: closing it releases the lock.
 */
int hc_oci_store_lock_image(struct hc_store *s, const char *digest, bool shared, bool nonblock,
			    int *ret_fd, struct hc_error *err) _must_check_;
/*
 * Writer lock: <store>/.writers.lock, held shared by every pull/load (and by each blob writer)
 * from its first blob to its add_name, and exclusive non-blocking by prune, which otherwise could
 * delete a blob that was just written but is not named yet.
 */
int hc_oci_store_lock_writers(struct hc_store *s, bool shared, bool nonblock, int *ret_fd,
			      struct hc_error *err) _must_check_;

/*
 * Temp entries (".tmp-*": a rootfs tree being unpacked, an ext4 image being built, a blob without
 * O_TMPFILE). Their writer holds an exclusive flock on the entry for as long as it writes, so an
 * entry nobody holds has no writer (it died, even by SIGKILL: the kernel drops its locks).
 *
 * create_temp makes path (a 0700 directory when dir, else a 0600 file) and returns it locked in
 * *ret_fd; a cleaner that removed it between the create and the lock is detected (the entry is
 * unlinked then) and a new one made, so no live writer ever loses its temp.
 */
int hc_oci_store_create_temp(const char *path, bool dir, int *ret_fd,
			     struct hc_error *err) _must_check_;
/* Removes the ".tmp-*" entries of dir that no writer holds; returns how many. Errors are
 * ignored: a cheap readdir of one directory. */
int hc_oci_store_clean_stale(const char *dir);

/* Normalises a reference the way the reference parser does ("alpine" ->
 * "docker.io/library/alpine:latest"). */
/* For a short name (no registry: "test/bb:1"), its local form "localhost/test/bb:1"
 * normalised; -EINVAL otherwise. */
int hc_oci_store_local_name(const char *ref, char *buf, size_t n);
int hc_oci_store_normalise_name(const char *ref, char *buf, size_t n,
				struct hc_error *err) _must_check_;

/* One layer of an image, as the manifest lists it. */
struct hc_oci_layer {
	char digest[72];
	char media_type[128];
	uint64_t size;
};

/* What a run needs of an image that is in the store. */
struct hc_oci_image {
	char name[512];	 /* normalised reference */
	char digest[72]; /* platform manifest digest */
	char config_digest[72];
	uint64_t config_size;
	struct hc_oci_layer *layers;
	size_t n_layers;
};
/* Finds ref (a name, or a digest) in the store's index.json and reads its manifest, verified
 * by digest. -ENOENT with a clear message when the image is not there. */
int hc_oci_store_resolve(struct hc_store *s, const char *ref, struct hc_oci_image *ret,
			 struct hc_error *err) _must_check_;
void hc_oci_image_free(struct hc_oci_image *img);
/* "sha256:" plus 12 to 64 hex characters (what `images` shows) -> the one full digest in
 * index.json that starts so. -EINVAL (err untouched) when ref has not that form; -ENOENT, or
 * -ENOTUNIQ when two images match. ret: HC_DIGEST_SIZE bytes. */
int hc_oci_store_expand_digest(struct hc_store *s, const char *ref, char *ret,
			       struct hc_error *err) _must_check_;
/* Reads the manifest blob digest (verified) into ret, as resolve does; name may be NULL. */
int hc_oci_store_read_image(struct hc_store *s, const char *digest, const char *name,
			    struct hc_oci_image *ret, struct hc_error *err) _must_check_;

/* One entry of index.json. */
struct hc_oci_index_entry {
	char *name; /* HC_OCI_REF_NAME, or NULL when the entry carries none */
	char digest[HC_DIGEST_SIZE];
	char media_type[128];
	uint64_t size;
};
/* A snapshot of index.json (renames are atomic, so no lock is needed to read it). */
int hc_oci_store_index_list(struct hc_store *s, struct hc_oci_index_entry **ret, size_t *ret_n,
			    struct hc_error *err) _must_check_;
void hc_oci_index_list_free(struct hc_oci_index_entry *list, size_t n);
/* Takes the index.json lock (<store>/.lock) exclusively; close the fd to release it. Only for
 * callers that must see index.json stay still (prune); add_name/remove_name take it themselves. */
int hc_oci_store_lock_index(struct hc_store *s, int *ret_fd, struct hc_error *err) _must_check_;
