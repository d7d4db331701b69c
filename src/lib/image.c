/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <sys/stat.h>

#include "core/error.h"
#include "lib/image.h"

static int rootfs_dir_prepare(const char *dir, bool want_disk, struct hc_lib_image *ret,
			      struct hc_error *err)
{
	char real[PATH_MAX];
	struct stat st;

	if (!realpath(dir, real))
		return hc_error_setk(err, -errno, HC_EK_ROOTFS, "--rootfs '%s': %s", dir,
				     strerror(errno));
	if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
		return hc_error_setk(err, -ENOTDIR, HC_EK_ROOTFS, "--rootfs '%s' is not a directory",
				     dir);
	if (want_disk)
		return hc_error_setk(err, -EOPNOTSUPP, HC_EK_ROOTFS,
				     "--rootfs DIR with a block rootfs is not supported yet");
	return hc_path_fmt(ret->tree, sizeof(ret->tree), err, "%s", real);
}

int hc_lib_image_prepare(struct hc_store *store, const struct hc_run_opts *o, bool want_disk,
			 struct hc_lib_image *ret, struct hc_error *err)
{
	memset(ret, 0, sizeof(*ret));
	if (o->rootfs_dir)
		return rootfs_dir_prepare(o->rootfs_dir, want_disk, ret, err);
	return hc_error_setk(err, -ENOSYS, HC_EK_IMAGE, "running images is not wired up yet");
}

void hc_lib_image_release(struct hc_lib_image *img)
{
	if (!img)
		return;
	memset(img, 0, sizeof(*img));
}
