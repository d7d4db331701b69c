/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "core/cancel.h"
#include "core/clock.h"
#include "core/log.h"
#include "oci/config.h"
#include "oci/digest.h"
#include "oci/ext4.h"
#include "oci/rootfs.h"

/* The config blob, read and verified by the store, parsed (into *cfg), written beside root. */
static int write_config(struct hc_store *s, const struct hc_oci_image *img, const char *path,
			struct hc_oci_config *cfg, struct hc_error *err)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r;

	r = hc_oci_store_blob_read(s, img->config_digest, HC_OCI_CONFIG_MAX, &data, &len, err);
	if (r < 0)
		return hc_error_prefix(err, "image config");
	r = hc_oci_config_parse(data, len, cfg, err);
	if (r < 0)
		return r;
	/* Every layer is checked against its diff_id while it is unpacked (as docker, podman
	 * and containerd do): one per layer, none missing, none extra. */
	if (cfg->n_diff_ids != img->n_layers)
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
				     "image config %s lists %zu rootfs.diff_ids for %zu layers",
				     img->config_digest, cfg->n_diff_ids, img->n_layers);
	return hc_path_write_file_atomic(path, data, len, 0644, err);
}

/* A layer that does not read back: is the blob in the store what its descriptor says? If not,
 * the store is damaged (a truncated or altered file), and a pull or load repairs it. */
static int blob_damaged(struct hc_store *s, const struct hc_oci_image *img,
			const struct hc_oci_layer *l, bool full, struct hc_error *err)
{
	struct hc_error e = {0};

	if (hc_oci_store_check_blob(s, l->digest, l->size, full, &e) == 0)
		return 0;
	return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
			     "image %s: the store is damaged: %s; `hotcell pull %s` (or `hotcell "
			     "load` of a loaded image) repairs it",
			     img->name[0] ? img->name : img->digest, e.message,
			     img->name[0] ? img->name : "IMAGE");
}

static bool layer_type_ok(const char *media_type)
{
	/* The content decides the compression (unpack.c); only what we cannot read at all is
	 * refused by its type. */
	return !strstr(media_type, "encrypted");
}

static int build(struct hc_store *s, const struct hc_oci_image *img, const char *hex, int cancel_fd,
		 struct hc_oci_rootfs *ret, struct hc_error *err)
{
	char tmp[HC_PATH_MAX], root[HC_PATH_MAX], cfg[HC_PATH_MAX], id[13];
	_cleanup_close_ int tmpfd = -1;
	struct hc_oci_unpack *u = NULL;
	struct hc_oci_config config = {0};
	double t0 = hc_clock_ms();
	int r;

	hc_oci_store_clean_stale(s->rootfs_dir);
	hc_path_random_id(id, 12);
	if ((r = hc_path_fmt(tmp, sizeof(tmp), err, "%s/.tmp-%s-%s", s->rootfs_dir, hex, id)) < 0 ||
	    (r = hc_path_fmt(root, sizeof(root), err, "%s/root", tmp)) < 0 ||
	    (r = hc_path_fmt(cfg, sizeof(cfg), err, "%s/config.json", tmp)) < 0)
		return r;
	/* <hex>/ stays 0700: the tree holds the image's setuid binaries and file capabilities,
	 * which host users must not reach (as docker keeps /var/lib/docker private).
	 * Locked while we build: prune and other runs remove only temp trees nobody holds. */
	r = hc_oci_store_create_temp(tmp, true, &tmpfd, err);
	if (r < 0)
		return r;
	if (mkdir(root, 0755) < 0 || chmod(root, 0755) < 0) {
		r = hc_error_errno(err, -errno, "mkdir %s", root);
		goto fail;
	}
	r = write_config(s, img, cfg, &config, err);
	if (r < 0)
		goto fail;
	r = hc_oci_unpack_new(root, &u, err);
	if (r < 0)
		goto fail;
	hc_oci_unpack_set_cancel(u, cancel_fd);
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct hc_oci_layer *l = &img->layers[i];
		char blob[HC_PATH_MAX];

		if (!layer_type_ok(l->media_type)) {
			r = hc_error_setk(err, -EOPNOTSUPP, HC_EK_IMAGE,
					  "layer %s: unsupported media type %s", l->digest,
					  l->media_type);
			goto fail;
		}
		r = hc_oci_store_blob_path(s, l->digest, blob, sizeof(blob), err);
		if (r < 0)
			goto fail;
		r = blob_damaged(s, img, l, false, err);
		if (r < 0)
			goto fail;
		/* Hashed while it is read: the blob is verified again at no extra I/O; the tar
		 * inside against its diff_id. */
		r = hc_oci_unpack_layer_path(u, blob, l->digest, l->digest, config.diff_ids[i],
					     err);
		if (r == -EIO || r == -EBADMSG) {
			struct hc_error e = {0};
			if (blob_damaged(s, img, l, true, &e) < 0) {
				*err = e;
				goto fail;
			}
		}
		if (r < 0)
			goto fail;
	}
	r = hc_oci_unpack_finish(u, err);
	if (r < 0)
		goto fail;
	ret->stats = *hc_oci_unpack_get_stats(u);
	hc_oci_unpack_free(u);
	u = NULL;
	if (ret->stats.skipped_special)
		hc_info("image %s: %llu device nodes/fifos/sockets not created (first: %s)",
			img->digest, (unsigned long long)ret->stats.skipped_special,
			ret->stats.first_skipped);
	if (rename(tmp, ret->dir) < 0) {
		if (errno != EEXIST && errno != ENOTEMPTY) {
			r = hc_error_errno(err, -errno, "rename %s to %s", tmp, ret->dir);
			goto fail;
		}
		/* Another process built the same image meanwhile: its tree is as good. */
		hc_debug("rootfs %s: built concurrently, discarding our copy", hex);
		hc_path_rm_rf(tmp, NULL);
	}
	ret->unpack_ms = hc_clock_ms() - t0;
	hc_oci_config_free(&config);
	return 0;
fail:
	hc_oci_unpack_free(u);
	hc_oci_config_free(&config);
	hc_path_rm_rf(tmp, NULL);
	hc_error_kind(err, HC_EK_ROOTFS);
	return r;
}

int hc_oci_rootfs_get(struct hc_store *s, const struct hc_oci_image *img, bool want_disk,
		      int cancel_fd, struct hc_oci_rootfs *ret, struct hc_error *err)
{
	const char *hex = hc_oci_digest_hex(img->digest);
	struct hc_oci_rootfs r = HC_OCI_ROOTFS_INIT;
	struct stat st;
	int q;

	if (!hex)
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE, "invalid image digest '%.80s'",
				     img->digest);
	if ((q = hc_path_fmt(r.dir, sizeof(r.dir), err, "%s/%s", s->rootfs_dir, hex)) < 0 ||
	    (q = hc_path_fmt(r.root, sizeof(r.root), err, "%s/root", r.dir)) < 0 ||
	    (q = hc_path_fmt(r.config, sizeof(r.config), err, "%s/config.json", r.dir)) < 0)
		return q;
	/* The lock first: held, rmi/prune cannot remove the tree between our stat and use. */
	q = hc_oci_store_lock_image(s, img->digest, true, false, &r.lock_fd, err);
	if (q < 0)
		return q;
	/* Trees enter only by rename of a complete directory: config.json there means done. */
	if (stat(r.config, &st) == 0) {
		r.hit = true;
		/* What a killed run left behind goes now: one readdir of each cache. */
		hc_oci_store_clean_stale(s->rootfs_dir);
		hc_oci_store_clean_stale(s->disks_dir);
	} else {
		q = build(s, img, hex, cancel_fd, &r, err);
		if (q < 0) {
			hc_error_prefix(err, "rootfs of %s",
					img->name[0] ? img->name : img->digest);
			hc_oci_rootfs_release(&r);
			return q;
		}
	}
	if (want_disk) {
		q = hc_oci_ext4_get(s, img->digest, r.root, cancel_fd, r.disk, sizeof(r.disk),
				    &r.disk_hit, &r.disk_ms, err);
		if (q < 0) {
			hc_error_prefix(err, "disk of %s", img->name[0] ? img->name : img->digest);
			hc_oci_rootfs_release(&r);
			return q;
		}
	}
	*ret = r;
	return 0;
}

void hc_oci_rootfs_release(struct hc_oci_rootfs *r)
{
	if (!r)
		return;
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	r->lock_fd = -1;
}
