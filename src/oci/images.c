/* SPDX-License-Identifier: MIT */
/*
 * Listing, removing and pruning images (DESIGN.md §5). rmi removes a name; prune removes what
 * no name reaches: blobs, rootfs trees (<state>/rootfs/<hex>/) and disks (<state>/disks/
 * <hex>.ext4). Both respect the image locks: a run holds <state>/rootfs/<hex>.lock shared, so
 * the exclusive non-blocking try of rmi/prune fails and the image is left alone.
 */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "core/log.h"
#include "oci/store.h"

/* ---- list ----------------------------------------------------------------------------- */

static char *config_created(struct hc_store *s, const char *digest)
{
	_cleanup_free_ char *data = NULL;
	struct hc_error err = {0};
	size_t len = 0;
	char *ret = NULL;

	if (hc_oci_store_blob_read(s, digest, HC_OCI_CONFIG_MAX, &data, &len, &err) < 0) {
		hc_debug("config %s: %s", digest, err.message);
		return NULL;
	}
	json_t *root = json_loadb(data, len, 0, NULL);
	const char *c = json_string_value(json_object_get(root, "created"));
	if (c && strlen(c) < 64)
		ret = strdup(c);
	json_decref(root);
	return ret;
}

void hc_image_list_free(struct hc_image_info *list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++) {
		free(list[i].name);
		free(list[i].created);
	}
	free(list);
}

int hc_oci_image_list(struct hc_store *store, struct hc_image_info **ret, size_t *ret_n,
		      struct hc_error *err)
{
	struct hc_oci_index_entry *entries = NULL;
	struct hc_image_info *list;
	size_t n = 0;
	int r;

	r = hc_oci_store_index_list(store, &entries, &n, err);
	if (r < 0)
		return hc_error_prefix(err, "list images");
	list = calloc(n + 1, sizeof(*list));
	if (!list) {
		hc_oci_index_list_free(entries, n);
		return hc_error_set(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		struct hc_oci_index_entry *e = &entries[i];
		struct hc_image_info *info = &list[i];
		struct hc_oci_image img = {0};
		struct hc_error ierr = {0};

		info->name = steal_ptr(&e->name);
		snprintf(info->digest, sizeof(info->digest), "%s", e->digest);
		/* A damaged image still gets listed (so it can be removed), without sizes. */
		if (hc_oci_store_read_image(store, e->digest, info->name, &img, &ierr) < 0) {
			hc_warn("image %s: %s", info->name ? info->name : e->digest, ierr.message);
			continue;
		}
		info->size = img.config_size;
		for (size_t j = 0; j < img.n_layers; j++)
			info->size += img.layers[j].size;
		info->created = config_created(store, img.config_digest);
		hc_oci_image_free(&img);
	}
	hc_oci_index_list_free(entries, n);
	*ret = list;
	*ret_n = n;
	return 0;
}

/* ---- rmi ------------------------------------------------------------------------------ */

int hc_image_remove(struct hc_store *store, const char *ref, struct hc_error *err)
{
	return hc_image_untag(store, ref, true, NULL, NULL, err);
}

int hc_image_untag(struct hc_store *store, const char *ref, bool force,
		   void (*untagged)(const char *name, void *userdata), void *userdata,
		   struct hc_error *err)
{
	struct hc_oci_index_entry *entries = NULL;
	char norm[512], full[HC_DIGEST_SIZE];
	const char *digest = NULL;
	size_t n = 0;
	int r, lock = -1;
	bool by_digest = false;

	r = hc_oci_store_expand_digest(store, ref, full, err);
	if (r >= 0) {
		by_digest = true;
		ref = full;
	} else if (r != -EINVAL) {
		return hc_error_prefix(err, "rmi");
	} else {
		r = hc_oci_store_normalise_name(ref, norm, sizeof(norm), err);
		if (r < 0)
			return r;
	}
	r = hc_oci_store_index_list(store, &entries, &n, err);
	if (r < 0)
		return hc_error_prefix(err, "rmi '%s'", ref);
	for (size_t i = 0; i < n && !digest; i++)
		if (by_digest ? hc_streq(entries[i].digest, ref) : hc_streq(entries[i].name, norm))
			digest = entries[i].digest;
	/* A short name may be a local one (load --name): as resolve finds it. */
	if (!digest && !by_digest && hc_oci_store_local_name(ref, norm, sizeof(norm)) == 0)
		for (size_t i = 0; i < n && !digest; i++)
			if (hc_streq(entries[i].name, norm))
				digest = entries[i].digest;
	if (!digest) {
		hc_oci_index_list_free(entries, n);
		return hc_error_setk(err, -ENOENT, HC_EK_IMAGE, "no such image: %s", ref);
	}
	r = hc_oci_store_lock_image(store, digest, false, true, &lock, err);
	if (r < 0) {
		hc_oci_index_list_free(entries, n);
		return hc_error_prefix(err, "rmi '%s'", ref);
	}
	if (by_digest) {
		size_t names = 0;

		for (size_t i = 0; i < n; i++)
			names += hc_streq(entries[i].digest, ref) && entries[i].name;
		/* As podman: an image of several names goes by its id only when forced. */
		if (names > 1 && !force)
			r = hc_error_setk(err, -ENOTUNIQ, HC_EK_USAGE,
					  "image %.19s has %zu names: remove them by name, or "
					  "force (-f) to remove them all",
					  ref, names);
		/* By digest: every name that points at it goes. */
		for (size_t i = 0; i < n && r >= 0; i++)
			if (hc_streq(entries[i].digest, ref) && entries[i].name) {
				r = hc_oci_store_remove_name(store, entries[i].name, err);
				if (r >= 0 && untagged)
					untagged(entries[i].name, userdata);
			}
	} else {
		r = hc_oci_store_remove_name(store, norm, err);
		if (r >= 0 && untagged)
			untagged(norm, userdata);
	}
	close(lock);
	hc_oci_index_list_free(entries, n);
	if (r < 0)
		return hc_error_prefix(err, "rmi '%s'", ref);
	return 0;
}

/* ---- prune ---------------------------------------------------------------------------- */

/* The set of blob hexes still reachable, sorted for bsearch. */
struct hexset {
	char (*v)[HC_DIGEST_HEX_LEN + 1];
	size_t n, cap;
};

static int hexset_add(struct hexset *h, const char *digest)
{
	const char *hex = hc_oci_digest_hex(digest);

	if (!hex)
		return 0;
	if (h->n == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 64, sz;
		if (hc_mul_overflows(ncap, sizeof(*h->v), &sz))
			return -ENOMEM;
		void *p = realloc(h->v, sz);
		if (!p)
			return -ENOMEM;
		h->v = p;
		h->cap = ncap;
	}
	memcpy(h->v[h->n++], hex, HC_DIGEST_HEX_LEN + 1);
	return 0;
}

static int hexcmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool hexset_has(const struct hexset *h, const char *hex)
{
	return h->n && bsearch(hex, h->v, h->n, sizeof(*h->v), hexcmp) != NULL;
}

static bool is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < HC_DIGEST_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Marks a manifest or index blob and everything it points at (config, layers, child
 * manifests: image-spec manifest.md, image-index.md). Unreadable blobs mark nothing more. */
static int mark(struct hc_store *s, struct hexset *h, const char *digest, int depth)
{
	_cleanup_free_ char *data = NULL;
	struct hc_error err = {0};
	size_t len = 0, i;
	json_t *e;
	int r;

	r = hexset_add(h, digest);
	if (r < 0 || depth > 4)
		return r;
	if (hc_oci_store_blob_read(s, digest, HC_OCI_MANIFEST_MAX, &data, &len, &err) < 0) {
		hc_warn("prune: %s", err.message);
		return 0;
	}
	json_auto_t *root = json_loadb(data, len, 0, NULL);
	if (!root)
		return 0;
	r = hexset_add(
		h, json_string_value(json_object_get(json_object_get(root, "config"), "digest")));
	json_array_foreach(json_object_get(root, "layers"), i, e)
	{
		if (r >= 0)
			r = hexset_add(h, json_string_value(json_object_get(e, "digest")));
	}
	json_array_foreach(json_object_get(root, "manifests"), i, e)
	{
		if (r >= 0)
			r = mark(s, h, json_string_value(json_object_get(e, "digest")), depth + 1);
	}
	return r;
}

static int prune_blobs(struct hc_store *s, const struct hexset *live, struct hc_error *err)
{
	char dir[HC_PATH_MAX];
	struct dirent *de;
	int removed = 0, r;

	r = hc_path_fmt(dir, sizeof(dir), err, "%s/blobs/sha256", s->store_dir);
	if (r < 0)
		return r;
	DIR *d = opendir(dir);
	if (!d)
		return hc_error_errno(err, -errno, "open %s", dir);
	while ((de = readdir(d))) {
		const char *nm = de->d_name;
		if (strlen(nm) == HC_DIGEST_HEX_LEN && is_hex64(nm)) {
			if (hexset_has(live, nm))
				continue;
			if (unlinkat(dirfd(d), nm, 0) == 0)
				removed++;
			continue;
		}
	}
	closedir(d);
	/* Temp blobs of writers that died (a live writer holds its flock). */
	return removed + hc_oci_store_clean_stale(dir);
}

/* Collects the <hex> of every rootfs tree, rootfs lock and disk. */
static int cached_hexes(const char *dir, const char *suffix, bool dirs, struct hexset *out)
{
	struct dirent *de;
	int r = 0;

	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) && r >= 0) {
		const char *nm = de->d_name;
		if (strlen(nm) < HC_DIGEST_HEX_LEN || !is_hex64(nm))
			continue;
		if (dirs && nm[HC_DIGEST_HEX_LEN] == 0) {
			char digest[HC_DIGEST_SIZE];
			snprintf(digest, sizeof(digest), "sha256:%s", nm);
			r = hexset_add(out, digest);
		} else if (hc_streq(nm + HC_DIGEST_HEX_LEN, suffix)) {
			char digest[HC_DIGEST_SIZE];
			snprintf(digest, sizeof(digest), "sha256:%.64s", nm);
			r = hexset_add(out, digest);
		}
	}
	closedir(d);
	return r;
}

static int prune_caches(struct hc_store *s, const struct hexset *live, struct hc_error *err)
{
	struct hexset seen = {0};
	int removed = 0, r;

	r = cached_hexes(s->rootfs_dir, ".lock", true, &seen);
	if (r >= 0)
		r = cached_hexes(s->disks_dir, ".ext4", false, &seen);
	if (r < 0) {
		free(seen.v);
		return hc_error_errno(err, r, "list the rootfs and disk caches");
	}
	qsort(seen.v, seen.n, sizeof(*seen.v), hexcmp);
	for (size_t i = 0; i < seen.n; i++) {
		const char *hex = seen.v[i];
		char digest[HC_DIGEST_SIZE], p[HC_PATH_MAX];
		struct hc_error lerr = {0};
		int lock = -1;

		if (hexset_has(live, hex) || (i > 0 && hc_streq(hex, seen.v[i - 1])))
			continue;
		snprintf(digest, sizeof(digest), "sha256:%s", hex);
		if (hc_oci_store_lock_image(s, digest, false, true, &lock, &lerr) < 0) {
			hc_info("prune: skipping %s: %s", digest, lerr.message);
			continue;
		}
		snprintf(p, sizeof(p), "%s/%s", s->rootfs_dir, hex);
		if (hc_path_exists(p)) {
			if (hc_path_rm_rf(p, &lerr) == 0)
				removed++;
			else
				hc_warn("prune: %s", lerr.message);
		}
		snprintf(p, sizeof(p), "%s/%s.ext4", s->disks_dir, hex);
		if (unlink(p) == 0)
			removed++;
		/* Unlinked while held: lockers re-check the inode after locking (store.c). */
		snprintf(p, sizeof(p), "%s/%s.lock", s->rootfs_dir, hex);
		unlink(p);
		close(lock);
	}
	free(seen.v);
	return removed;
}

int hc_oci_store_prune(struct hc_store *store, struct hc_error *err)
{
	struct hc_oci_index_entry *entries = NULL;
	struct hexset live = {0}, images = {0};
	int wlock = -1, ilock = -1, r, removed = 0;
	size_t n = 0;

	/* No pull or load in flight (their blobs are not named yet), and index.json holds
	 * still while we decide. */
	r = hc_oci_store_lock_writers(store, false, true, &wlock, err);
	if (r < 0)
		return hc_error_prefix(err, "prune");
	r = hc_oci_store_lock_index(store, &ilock, err);
	if (r < 0)
		goto out;
	r = hc_oci_store_index_list(store, &entries, &n, err);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n && r >= 0; i++) {
		r = mark(store, &live, entries[i].digest, 0);
		if (r >= 0)
			r = hexset_add(&images, entries[i].digest);
	}
	if (r < 0) {
		r = hc_error_set(err, r, "out of memory");
		goto out;
	}
	qsort(live.v, live.n, sizeof(*live.v), hexcmp);
	qsort(images.v, images.n, sizeof(*images.v), hexcmp);

	r = prune_blobs(store, &live, err);
	if (r < 0)
		goto out;
	removed += r;
	r = prune_caches(store, &images, err);
	if (r < 0)
		goto out;
	removed += r;
	/* Temp trees and disks of unpacks and builds whose process is gone (SIGKILL). */
	removed += hc_oci_store_clean_stale(store->rootfs_dir);
	removed += hc_oci_store_clean_stale(store->disks_dir);
	r = removed;
out:
	if (r < 0)
		hc_error_prefix(err, "prune");
	hc_oci_index_list_free(entries, n);
	free(live.v);
	free(images.v);
	if (ilock >= 0)
		close(ilock);
	if (wlock >= 0)
		close(wlock);
	return r;
}

/* ---- check ---------------------------------------------------------------------------- */

struct checker {
	struct hc_store *s;
	struct hc_store_problem *v;
	size_t n, cap;
	struct hexset good; /* blobs verified in full already */
	int oom;
};

static void problem(struct checker *c, const char *object, const char *fmt, ...) _printf_(3, 4);
static void problem(struct checker *c, const char *object, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16, sz;
		void *p;
		if (hc_mul_overflows(ncap, sizeof(*c->v), &sz) || !(p = realloc(c->v, sz))) {
			c->oom = -ENOMEM;
			return;
		}
		c->v = p;
		c->cap = ncap;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	c->v[c->n].object = strdup(object);
	c->v[c->n].problem = msg;
	if (!c->v[c->n].object || !msg) {
		free(c->v[c->n].object);
		free(msg);
		c->oom = -ENOMEM;
		return;
	}
	c->n++;
}

/* One descriptor of image `name`: the blob is there, of its size and digest. */
static bool check_desc(struct checker *c, const char *name, const char *what, const char *digest,
		       uint64_t size)
{
	struct hc_error e = {0};

	if (!hc_oci_digest_valid(digest)) {
		problem(c, name, "%s: invalid digest '%.80s'", what, digest ? digest : "(none)");
		return false;
	}
	if (hc_oci_store_check_blob(c->s, digest, size,
				    !hexset_has(&c->good, hc_oci_digest_hex(digest)), &e) < 0) {
		problem(c, name, "%s: %s", what, e.message);
		return false;
	}
	if (hexset_add(&c->good, digest) < 0)
		c->oom = -ENOMEM;
	qsort(c->good.v, c->good.n, sizeof(*c->good.v), hexcmp);
	return true;
}

/* A manifest or index of image `name`, and what it points at. */
static void check_tree(struct checker *c, const char *name, const char *digest, uint64_t size,
		       int depth)
{
	_cleanup_free_ char *data = NULL;
	struct hc_error e = {0};
	size_t len = 0, i;
	json_t *d;

	if (!check_desc(c, name, "manifest", digest, size))
		return;
	if (depth > 4) {
		problem(c, name, "indexes nested too deeply");
		return;
	}
	if (hc_oci_store_blob_read(c->s, digest, HC_OCI_MANIFEST_MAX, &data, &len, &e) < 0) {
		problem(c, name, "manifest %s: %s", digest, e.message);
		return;
	}
	json_auto_t *root = json_loadb(data, len, 0, NULL);
	if (!json_is_object(root)) {
		problem(c, name, "manifest %s is not JSON", digest);
		return;
	}
	json_t *cfg = json_object_get(root, "config"), *layers = json_object_get(root, "layers");
	json_t *children = json_object_get(root, "manifests");
	if (json_is_array(children)) {
		json_array_foreach(children, i, d)
		{
			check_tree(c, name, json_string_value(json_object_get(d, "digest")),
				   (uint64_t)json_integer_value(json_object_get(d, "size")),
				   depth + 1);
		}
		return;
	}
	if (!json_is_object(cfg) || !json_is_array(layers)) {
		problem(c, name, "manifest %s has no config or layers", digest);
		return;
	}
	check_desc(c, name, "config", json_string_value(json_object_get(cfg, "digest")),
		   (uint64_t)json_integer_value(json_object_get(cfg, "size")));
	json_array_foreach(layers, i, d)
	{
		char what[32];
		snprintf(what, sizeof(what), "layer %zu", i + 1);
		check_desc(c, name, what, json_string_value(json_object_get(d, "digest")),
			   (uint64_t)json_integer_value(json_object_get(d, "size")));
	}
}

int hc_store_check(struct hc_store *store, struct hc_store_problem **ret, size_t *ret_n,
		   struct hc_error *err)
{
	struct checker c = {.s = store};
	struct hc_oci_index_entry *entries = NULL;
	char dir[HC_PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	int r;

	if (!store || !ret || !ret_n)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "check: no store");
	r = hc_oci_store_index_list(store, &entries, &n, err);
	if (r < 0)
		return hc_error_prefix(err, "check");
	for (size_t i = 0; i < n && !c.oom; i++)
		check_tree(&c, entries[i].name ? entries[i].name : entries[i].digest,
			   entries[i].digest, entries[i].size, 0);
	hc_oci_index_list_free(entries, n);
	/* Every other blob: its content must be what its name says. */
	r = hc_path_fmt(dir, sizeof(dir), err, "%s/blobs/sha256", store->store_dir);
	DIR *d = r < 0 ? NULL : opendir(dir);
	if (!d && r >= 0)
		r = hc_error_errno(err, -errno, "check: open %s", dir);
	while (d && !c.oom && (de = readdir(d))) {
		char digest[HC_DIGEST_SIZE], got[HC_DIGEST_SIZE];
		struct hc_error e = {0};
		if (strlen(de->d_name) != HC_DIGEST_HEX_LEN || !is_hex64(de->d_name) ||
		    hexset_has(&c.good, de->d_name))
			continue;
		snprintf(digest, sizeof(digest), "sha256:%s", de->d_name);
		_cleanup_close_ int fd =
			openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			problem(&c, digest, "cannot be read: %s", strerror(errno));
		else if (hc_oci_digest_fd(fd, got, NULL, &e) < 0)
			problem(&c, digest, "cannot be read: %s", e.message);
		else if (strcmp(got, digest) != 0)
			problem(&c, digest, "blob %s does not match its digest (content is %s)",
				digest, got);
	}
	if (d)
		closedir(d);
	free(c.good.v);
	if (r >= 0 && c.oom)
		r = hc_error_set(err, -ENOMEM, "out of memory");
	if (r < 0) {
		hc_store_problems_free(c.v, c.n);
		return r;
	}
	*ret = c.v;
	*ret_n = c.n;
	return (int)(c.n > INT32_MAX ? INT32_MAX : c.n);
}

void hc_store_problems_free(struct hc_store_problem *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++) {
		free(list[i].object);
		free(list[i].problem);
	}
	free(list);
}
