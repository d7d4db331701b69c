/* SPDX-License-Identifier: MIT */
/*
 * The image side of a run: resolve by the pull policy, the cached rootfs (tree, and the ext4
 * disk for block backends) with the image's shared lock held for the run, and the image config.
 * With --rootfs DIR: the directory, and for a block rootfs a temporary ext4 built from it in the
 * runtime directory and removed at release.
 */
#include <limits.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/log.h"
#include "lib/image.h"
#include "lib/template.h"
#include "oci/config.h"
#include "oci/ext4.h"
#include "oci/rootfs.h"
#include "oci/store.h"

struct image_priv {
	struct hc_oci_image img;
	struct hc_oci_rootfs rootfs;
	struct hc_oci_config config;
	char tmp_disk[HC_PATH_MAX]; /* --rootfs DIR in block mode: ours to remove */
};

static int rootfs_dir_prepare(const char *dir, bool want_disk, int cancel_fd,
			      struct hc_lib_image *ret, struct image_priv *p, struct hc_error *err)
{
	char real[PATH_MAX], run[HC_PATH_MAX], id[16];
	struct stat st;
	int r;

	if (!realpath(dir, real))
		return hc_error_setk(err, -errno, HC_EK_ROOTFS, "--rootfs '%s': %s", dir,
				     strerror(errno));
	if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
		return hc_error_setk(err, -ENOTDIR, HC_EK_ROOTFS,
				     "--rootfs '%s' is not a directory", dir);
	r = hc_path_fmt(ret->tree, sizeof(ret->tree), err, "%s", real);
	if (r < 0 || !want_disk)
		return r;
	/* No cache key for a plain directory: a disk just for this run, in the runtime dir. */
	r = hc_path_runtime_dir(run, sizeof(run), err);
	if (r < 0)
		return r;
	hc_path_random_id(id, 12);
	r = hc_path_fmt(p->tmp_disk, sizeof(p->tmp_disk), err, "%s/rootfs-%s.ext4", run, id);
	if (r < 0)
		return r;
	r = hc_oci_ext4_build(real, p->tmp_disk, cancel_fd, err);
	if (r < 0) {
		unlink(p->tmp_disk);
		p->tmp_disk[0] = 0;
		if (r == -ECANCELED)
			return r;
		hc_error_kind(err, HC_EK_ROOTFS);
		return hc_error_prefix(err, "--rootfs '%s' as a block device", dir);
	}
	return hc_path_fmt(ret->disk, sizeof(ret->disk), err, "%s", p->tmp_disk);
}

/* The image by the pull policy (DESIGN.md §6 --pull missing|always|never|newer). */
static int resolve(struct hc_store *store, const struct hc_run_opts *o, struct hc_oci_image *img,
		   struct hc_error *err)
{
	char digest[80];
	bool have_local = false;
	int r;

	if (o->pull != HC_PULL_ALWAYS) {
		r = hc_oci_store_resolve(store, o->image, img, err);
		have_local = r >= 0;
		if (o->pull == HC_PULL_NEWER && have_local)
			hc_oci_image_free(img);
		else if (r != -ENOENT || o->pull == HC_PULL_NEVER) {
			if (r == -ENOENT)
				hc_error_prefix(err, "--pull never");
			if (r < 0)
				hc_error_kind(err, HC_EK_IMAGE);
			return r;
		}
		hc_error_clear(err);
	}
	/* hc_run's cancel fd: a signal during the pull ends it within a second. A pull of the
	 * same digest fetches only the manifest: "newer" is "always" that may fall back. */
	struct hc_pull_opts po = {.cancel_fd_set = o->cancel_fd >= 0,
				  .cancel_fd = o->cancel_fd,
				  .platform = o->platform};
	r = hc_image_pull(store, o->image, &po, digest, err);
	if (r < 0 && r != -ECANCELED && o->pull == HC_PULL_NEWER && have_local) {
		hc_debug("--pull newer: %s; using the local image", err->message);
		hc_error_clear(err);
	} else if (r < 0) {
		hc_error_kind(err, HC_EK_REGISTRY);
		return r;
	}
	r = hc_oci_store_resolve(store, o->image, img, err);
	if (r < 0)
		hc_error_kind(err, HC_EK_IMAGE);
	return r;
}

int hc_lib_image_resolve(struct hc_store *store, const struct hc_run_opts *o,
			 struct hc_lib_image *ret, struct hc_error *err)
{
	struct image_priv *p;
	int r;

	memset(ret, 0, sizeof(*ret));
	p = calloc(1, sizeof(*p));
	if (!p)
		return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	p->rootfs = (struct hc_oci_rootfs)HC_OCI_ROOTFS_INIT;
	ret->priv = p;
	if (o->rootfs_dir)
		return 0;
	r = resolve(store, o, &p->img, err);
	if (r < 0) {
		hc_lib_image_release(ret);
		return r;
	}
	snprintf(ret->name, sizeof(ret->name), "%s", p->img.name);
	snprintf(ret->digest, sizeof(ret->digest), "%s", p->img.digest);
	return 0;
}

int hc_lib_image_prepare(struct hc_store *store, const struct hc_run_opts *o, bool want_disk,
			 struct hc_lib_image *ret, struct hc_error *err)
{
	struct image_priv *p = ret->priv;
	int r;

	if (!p)
		return hc_error_setk(err, -EINVAL, HC_EK_INTERNAL, "image not resolved");
	if (o->rootfs_dir)
		return rootfs_dir_prepare(o->rootfs_dir, want_disk, o->cancel_fd, ret, p, err);

	r = hc_oci_rootfs_get(store, &p->img, want_disk, o->cancel_fd, &p->rootfs, err);
	if (r < 0) {
		hc_error_kind(err, HC_EK_ROOTFS);
		return r;
	}
	hc_debug("rootfs %s (%s)%s%s", p->rootfs.root, p->rootfs.hit ? "cached" : "unpacked",
		 want_disk ? ", disk " : "", want_disk ? p->rootfs.disk : "");
	r = hc_oci_config_load(p->rootfs.config, &p->config, err);
	if (r < 0) {
		hc_error_kind(err, HC_EK_IMAGE);
		return hc_error_prefix(err, "image config");
	}
	if ((r = hc_path_fmt(ret->tree, sizeof(ret->tree), err, "%s", p->rootfs.root)) < 0 ||
	    (want_disk &&
	     (r = hc_path_fmt(ret->disk, sizeof(ret->disk), err, "%s", p->rootfs.disk)) < 0))
		return r;
	ret->defaults = (struct hc_lib_image_defaults){
		.entrypoint = (const char *const *)p->config.entrypoint,
		.n_entrypoint = p->config.n_entrypoint,
		.cmd = (const char *const *)p->config.cmd,
		.n_cmd = p->config.n_cmd,
		.env = (const char *const *)p->config.env,
		.n_env = p->config.n_env,
		.workdir = p->config.workdir,
		.user = p->config.user,
	};
	return 0;
}

void hc_lib_image_release(struct hc_lib_image *img)
{
	struct image_priv *p;

	if (!img)
		return;
	p = img->priv;
	if (p) {
		hc_oci_rootfs_release(&p->rootfs);
		hc_oci_image_free(&p->img);
		hc_oci_config_free(&p->config);
		if (p->tmp_disk[0])
			unlink(p->tmp_disk);
		free(p);
	}
	memset(img, 0, sizeof(*img));
}

/* ---- the store's list and prune, with the templates (lib/template.h) ---------------------- */

HC_EXPORT int hc_image_list(struct hc_store *store, struct hc_image_info **ret, size_t *ret_n,
			    struct hc_error *err)
{
	int r = hc_oci_image_list(store, ret, ret_n, err);

	for (size_t i = 0; r >= 0 && i < *ret_n; i++)
		(*ret)[i].template_size = hc_lib_template_size(store->state_dir, (*ret)[i].digest);
	return r;
}

/* Templates first: they hold no lock on the image, and a template of an image about to go
 * is no use. */
HC_EXPORT int hc_store_prune(struct hc_store *store, struct hc_error *err)
{
	int t = hc_lib_template_prune(store->state_dir, err), r;

	if (t < 0)
		return t;
	r = hc_oci_store_prune(store, err);
	return r < 0 ? r : r + t;
}
