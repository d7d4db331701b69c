/* SPDX-License-Identifier: MIT */
/* The image store: blob writer, index.json names, resolve, locks, concurrency. */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/path.h"
#include "oci/digest.h"
#include "oci/store.h"
#include "test.h"

static char home[256];

static struct hc_store *fresh_store(void)
{
	struct hc_error err = {0};
	struct hc_store *s = NULL;

	if (home[0])
		(void)hc_path_rm_rf(home, NULL);
	snprintf(home, sizeof(home), "/tmp/hc-test-store.XXXXXX");
	if (!mkdtemp(home))
		return NULL;
	if (hc_store_open(home, &s, &err) < 0) {
		printf("# store open: %s\n", err.message);
		return NULL;
	}
	return s;
}

/* Number of directory entries in blobs/sha256 (temp files included). */
static int count_blob_files(struct hc_store *s)
{
	char p[HC_PATH_MAX];
	struct dirent *de;
	int n = 0;

	snprintf(p, sizeof(p), "%s/blobs/sha256", s->store_dir);
	DIR *d = opendir(p);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")))
			n++;
	closedir(d);
	return n;
}

TEST(digest_basics)
{
	struct hc_error err = {0};
	char d[HC_DIGEST_SIZE];

	ASSERT_OK(hc_oci_digest_buf("abc", 3, d, &err), &err);
	ASSERT_EQ_STR(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ASSERT_TRUE(hc_oci_digest_valid(d));
	ASSERT_TRUE(!hc_oci_digest_valid(
		"sha256:BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	ASSERT_TRUE(!hc_oci_digest_valid("sha256:ba78"));
	ASSERT_TRUE(!hc_oci_digest_valid(
		"sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	ASSERT_TRUE(!hc_oci_digest_valid(
		"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0"));
	ASSERT_TRUE(!hc_oci_digest_valid(NULL));
}

TEST(blob_writer_verifies)
{
	struct hc_store *s = fresh_store();
	struct hc_error err = {0};
	struct hc_oci_blob_writer *w = NULL;
	char d[HC_DIGEST_SIZE], got[HC_DIGEST_SIZE];
	char *data = NULL;
	size_t len = 0;

	ASSERT_TRUE(s);
	ASSERT_OK(hc_oci_digest_buf("hello world", 11, d, &err), &err);
	ASSERT_TRUE(!hc_oci_store_has_blob(s, d));
	ASSERT_OK(hc_oci_store_blob_begin(s, d, 11, &w, &err), &err);
	ASSERT_OK(hc_oci_blob_writer_write(w, "hello ", 6, &err), &err);
	ASSERT_OK(hc_oci_blob_writer_write(w, "world", 5, &err), &err);
	ASSERT_EQ_INT(hc_oci_blob_writer_size(w), 11);
	ASSERT_OK(hc_oci_blob_writer_commit(w, got, &err), &err);
	ASSERT_EQ_STR(got, d);
	ASSERT_TRUE(hc_oci_store_has_blob(s, d));
	ASSERT_OK(hc_oci_store_blob_read(s, d, 100, &data, &len, &err), &err);
	ASSERT_EQ_INT(len, 11);
	ASSERT_EQ_STR(data, "hello world");
	free(data);
	/* The same blob again (a second pull): fine, still one file. */
	ASSERT_OK(hc_oci_store_blob_put(s, d, "hello world", 11, NULL, &err), &err);
	ASSERT_EQ_INT(count_blob_files(s), 1);
	/* Unknown digest: computed. */
	ASSERT_OK(hc_oci_store_blob_put(s, NULL, "xyz", 3, got, &err), &err);
	ASSERT_TRUE(hc_oci_digest_valid(got));
	ASSERT_TRUE(hc_oci_store_has_blob(s, got));
	hc_store_close(s);
}

TEST(blob_writer_mismatch)
{
	struct hc_store *s = fresh_store();
	struct hc_error err = {0};
	struct hc_oci_blob_writer *w = NULL;
	char d[HC_DIGEST_SIZE];
	int r;

	ASSERT_TRUE(s);
	ASSERT_OK(hc_oci_digest_buf("expected", 8, d, &err), &err);
	ASSERT_OK(hc_oci_store_blob_begin(s, d, 0, &w, &err), &err);
	ASSERT_OK(hc_oci_blob_writer_write(w, "tampered", 8, &err), &err);
	r = hc_oci_blob_writer_commit(w, NULL, &err);
	ASSERT_EQ_INT(r, -EBADMSG);
	ASSERT_TRUE(strstr(err.message, d) != NULL);
	ASSERT_TRUE(strstr(err.message, "mismatch") != NULL);
	ASSERT_TRUE(!hc_oci_store_has_blob(s, d));
	ASSERT_EQ_INT(count_blob_files(s), 0);

	/* Declared size: more is refused at once, less at commit. */
	ASSERT_OK(hc_oci_store_blob_begin(s, d, 4, &w, &err), &err);
	ASSERT_EQ_INT(hc_oci_blob_writer_write(w, "expected", 8, &err), -EFBIG);
	hc_oci_blob_writer_abort(w);
	ASSERT_OK(hc_oci_store_blob_begin(s, d, 9, &w, &err), &err);
	ASSERT_OK(hc_oci_blob_writer_write(w, "expected", 8, &err), &err);
	ASSERT_EQ_INT(hc_oci_blob_writer_commit(w, NULL, &err), -EBADMSG);
	ASSERT_EQ_INT(count_blob_files(s), 0);
	ASSERT_EQ_INT(hc_oci_store_blob_begin(s, "sha256:nothex", 0, &w, &err), -EINVAL);

	/* A blob corrupted on disk is caught when read. */
	char p[HC_PATH_MAX], *data = NULL;
	ASSERT_OK(hc_oci_store_blob_put(s, d, "expected", 8, NULL, &err), &err);
	ASSERT_OK(hc_oci_store_blob_path(s, d, p, sizeof(p), &err), &err);
	ASSERT_OK(hc_path_write_file_atomic(p, "corrupt!", 8, 0644, &err), &err);
	ASSERT_EQ_INT(hc_oci_store_blob_read(s, d, 100, &data, NULL, &err), -EBADMSG);
	hc_store_close(s);
}

static int index_count(struct hc_store *s, const char *name, char *digest_out)
{
	char p[HC_PATH_MAX];
	json_error_t jerr;
	size_t i;
	json_t *e;
	int n = 0;

	snprintf(p, sizeof(p), "%s/index.json", s->store_dir);
	json_t *root = json_load_file(p, 0, &jerr);
	if (!root)
		return -1;
	json_array_foreach(json_object_get(root, "manifests"), i, e)
	{
		const char *nm = json_string_value(
			json_object_get(json_object_get(e, "annotations"), HC_OCI_REF_NAME));
		if (!name || (nm && strcmp(nm, name) == 0)) {
			n++;
			if (digest_out)
				snprintf(digest_out, HC_DIGEST_SIZE, "%s",
					 json_string_value(json_object_get(e, "digest")));
		}
	}
	json_decref(root);
	return n;
}

TEST(add_name_replaces)
{
	struct hc_store *s = fresh_store();
	struct hc_error err = {0};
	char d1[HC_DIGEST_SIZE], d2[HC_DIGEST_SIZE], got[HC_DIGEST_SIZE];

	ASSERT_TRUE(s);
	ASSERT_OK(hc_oci_digest_buf("1", 1, d1, &err), &err);
	ASSERT_OK(hc_oci_digest_buf("2", 1, d2, &err), &err);
	ASSERT_OK(hc_oci_store_add_name(s, "docker.io/library/a:1", d1, NULL, 10, &err), &err);
	ASSERT_OK(hc_oci_store_add_name(s, "docker.io/library/b:1", d1, NULL, 10, &err), &err);
	ASSERT_OK(hc_oci_store_add_name(s, "docker.io/library/a:1", d2, NULL, 10, &err), &err);
	ASSERT_EQ_INT(index_count(s, NULL, NULL), 2);
	ASSERT_EQ_INT(index_count(s, "docker.io/library/a:1", got), 1);
	ASSERT_EQ_STR(got, d2);
	ASSERT_OK(hc_oci_store_remove_name(s, "docker.io/library/a:1", &err), &err);
	ASSERT_EQ_INT(index_count(s, NULL, NULL), 1);
	ASSERT_EQ_INT(hc_oci_store_remove_name(s, "docker.io/library/a:1", &err), -ENOENT);
	ASSERT_EQ_INT(hc_oci_store_add_name(s, "x", "sha256:bad", NULL, 1, &err), -EINVAL);
	hc_store_close(s);
}

/* Stores a minimal image (config, one layer, manifest) and names it. */
static int put_image(struct hc_store *s, const char *name, const char *salt, char *ret_digest,
		     struct hc_error *err)
{
	char cfg[HC_DIGEST_SIZE], layer[HC_DIGEST_SIZE], cfgjson[256], man[1024];
	int r;

	snprintf(
		cfgjson, sizeof(cfgjson),
		"{\"created\":\"2024-01-02T03:04:05Z\",\"architecture\":\"amd64\",\"os\":\"linux\","
		"\"config\":{\"Env\":[\"SALT=%s\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]"
		"}}",
		salt);
	if ((r = hc_oci_store_blob_put(s, NULL, cfgjson, strlen(cfgjson), cfg, err)) < 0 ||
	    (r = hc_oci_store_blob_put(s, NULL, salt, strlen(salt), layer, err)) < 0)
		return r;
	snprintf(man, sizeof(man),
		 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
		 "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%"
		 "s\","
		 "\"size\":%zu}]}",
		 HC_OCI_MT_MANIFEST, HC_OCI_MT_CONFIG, cfg, strlen(cfgjson), HC_OCI_MT_LAYER, layer,
		 strlen(salt));
	if ((r = hc_oci_store_blob_put(s, NULL, man, strlen(man), ret_digest, err)) < 0)
		return r;
	return hc_oci_store_add_name(s, name, ret_digest, HC_OCI_MT_MANIFEST, strlen(man), err);
}

TEST(resolve_names_and_digests)
{
	struct hc_store *s = fresh_store();
	struct hc_error err = {0};
	struct hc_oci_image img = {0};
	char d[HC_DIGEST_SIZE], ref[256];

	ASSERT_TRUE(s);
	ASSERT_OK(put_image(s, "docker.io/library/busybox:latest", "one", d, &err), &err);
	ASSERT_OK(hc_oci_store_resolve(s, "busybox", &img, &err), &err);
	ASSERT_EQ_STR(img.name, "docker.io/library/busybox:latest");
	ASSERT_EQ_STR(img.digest, d);
	ASSERT_EQ_INT(img.n_layers, 1);
	ASSERT_EQ_INT(img.layers[0].size, 3);
	ASSERT_EQ_STR(img.layers[0].media_type, HC_OCI_MT_LAYER);
	ASSERT_TRUE(hc_oci_store_has_blob(s, img.config_digest));
	hc_oci_image_free(&img);

	ASSERT_OK(hc_oci_store_resolve(s, d, &img, &err), &err);
	ASSERT_EQ_STR(img.digest, d);
	hc_oci_image_free(&img);
	snprintf(ref, sizeof(ref), "busybox@%s", d);
	ASSERT_OK(hc_oci_store_resolve(s, ref, &img, &err), &err);
	ASSERT_EQ_STR(img.digest, d);
	hc_oci_image_free(&img);

	/* The short form `images` prints. */
	snprintf(ref, sizeof(ref), "%.19s", d);
	ASSERT_OK(hc_oci_store_resolve(s, ref, &img, &err), &err);
	ASSERT_EQ_STR(img.digest, d);
	hc_oci_image_free(&img);
	snprintf(ref, sizeof(ref), "%.18s", d); /* 11 hex: too short to be an id, so a name */
	ASSERT_EQ_INT(hc_oci_store_resolve(s, ref, &img, &err), -ENOENT);
	ASSERT_EQ_INT(hc_oci_store_resolve(s, "sha256:0123456789abcdef", &img, &err), -ENOENT);

	ASSERT_EQ_INT(hc_oci_store_resolve(s, "busybox:1.36", &img, &err), -ENOENT);
	ASSERT_TRUE(strstr(err.message, "busybox:1.36") != NULL);
	ASSERT_EQ_INT(hc_oci_store_resolve(s, "docker.io/library/alpine", &img, &err), -ENOENT);
	ASSERT_ERR(hc_oci_store_resolve(s, "UPPER CASE", &img, &err));

	/* A corrupt manifest blob is not used. */
	char p[HC_PATH_MAX];
	ASSERT_OK(hc_oci_store_blob_path(s, d, p, sizeof(p), &err), &err);
	ASSERT_OK(hc_path_write_file_atomic(p, "{}", 2, 0644, &err), &err);
	ASSERT_EQ_INT(hc_oci_store_resolve(s, "busybox", &img, &err), -EBADMSG);
	hc_store_close(s);
}

TEST(concurrent_add_name)
{
	enum { PROCS = 6, NAMES = 25 };
	struct hc_store *s = fresh_store();
	struct hc_error err = {0};
	pid_t pids[PROCS];
	char d[HC_DIGEST_SIZE];

	ASSERT_TRUE(s);
	ASSERT_OK(hc_oci_digest_buf("m", 1, d, &err), &err);
	for (int i = 0; i < PROCS; i++) {
		pids[i] = fork();
		ASSERT_TRUE(pids[i] >= 0);
		if (pids[i] == 0) {
			struct hc_store *cs = NULL;
			struct hc_error cerr = {0};
			char name[64];
			if (hc_store_open(home, &cs, &cerr) < 0)
				_exit(2);
			for (int j = 0; j < NAMES; j++) {
				snprintf(name, sizeof(name), "example.com/p%d/img:%d", i, j);
				if (hc_oci_store_add_name(cs, name, d, NULL, 1, &cerr) < 0)
					_exit(3);
				/* Everyone also re-adds one shared name: one entry must remain. */
				if (hc_oci_store_add_name(cs, "example.com/shared:1", d, NULL, 1,
							  &cerr) < 0)
					_exit(4);
			}
			_exit(0);
		}
	}
	for (int i = 0; i < PROCS; i++) {
		int st = 0;
		ASSERT_EQ_INT(waitpid(pids[i], &st, 0), pids[i]);
		ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	ASSERT_EQ_INT(index_count(s, NULL, NULL), PROCS * NAMES + 1);
	ASSERT_EQ_INT(index_count(s, "example.com/shared:1", NULL), 1);
	hc_store_close(s);
}

/* Several processes use a brand-new store at once: creating index.json must not drop a name
 * another process has just added. */
TEST(concurrent_first_use)
{
	enum { PROCS = 6 };
	struct hc_store *s = fresh_store();
	struct hc_error err = {0};
	char fresh[300], d[HC_DIGEST_SIZE];
	pid_t pids[PROCS];

	ASSERT_TRUE(s);
	ASSERT_OK(hc_oci_digest_buf("m", 1, d, &err), &err);
	snprintf(fresh, sizeof(fresh), "%s/new", home);
	for (int i = 0; i < PROCS; i++) {
		pids[i] = fork();
		ASSERT_TRUE(pids[i] >= 0);
		if (pids[i] == 0) {
			struct hc_store *cs = NULL;
			struct hc_error cerr = {0};
			char name[64];
			if (hc_store_open(fresh, &cs, &cerr) < 0)
				_exit(2);
			snprintf(name, sizeof(name), "example.com/first:%d", i);
			_exit(hc_oci_store_add_name(cs, name, d, NULL, 1, &cerr) < 0 ? 3 : 0);
		}
	}
	for (int i = 0; i < PROCS; i++) {
		int st = 0;
		ASSERT_EQ_INT(waitpid(pids[i], &st, 0), pids[i]);
		ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	hc_store_close(s);
	ASSERT_OK(hc_store_open(fresh, &s, &err), &err);
	ASSERT_EQ_INT(index_count(s, NULL, NULL), PROCS);
	hc_store_close(s);
}

TEST(lock_semantics)
{
	struct hc_store *s = fresh_store();
	struct hc_error err = {0};
	char d[HC_DIGEST_SIZE];
	int run1 = -1, run2 = -1, ex = -1;

	ASSERT_TRUE(s);
	ASSERT_OK(hc_oci_digest_buf("img", 3, d, &err), &err);
	/* Two runs share the image. */
	ASSERT_OK(hc_oci_store_lock_image(s, d, true, false, &run1, &err), &err);
	ASSERT_OK(hc_oci_store_lock_image(s, d, true, true, &run2, &err), &err);
	/* rmi/prune: refused while in use. */
	ASSERT_EQ_INT(hc_oci_store_lock_image(s, d, false, true, &ex, &err), -EBUSY);
	ASSERT_TRUE(strstr(err.message, "in use") != NULL);
	close(run1);
	ASSERT_EQ_INT(hc_oci_store_lock_image(s, d, false, true, &ex, &err), -EBUSY);
	close(run2);
	ASSERT_OK(hc_oci_store_lock_image(s, d, false, true, &ex, &err), &err);
	/* ... and then a run that starts waits (non-blocking here: it would wait). */
	ASSERT_EQ_INT(hc_oci_store_lock_image(s, d, true, true, &run1, &err), -EBUSY);
	close(ex);

	/* The writer lock: a blob writer holds it shared; prune's exclusive try fails. */
	struct hc_oci_blob_writer *w = NULL;
	int pl = -1;
	ASSERT_OK(hc_oci_store_blob_begin(s, NULL, 0, &w, &err), &err);
	ASSERT_EQ_INT(hc_oci_store_lock_writers(s, false, true, &pl, &err), -EBUSY);
	hc_oci_blob_writer_abort(w);
	ASSERT_OK(hc_oci_store_lock_writers(s, false, true, &pl, &err), &err);
	close(pl);
	ASSERT_EQ_INT(hc_oci_store_lock_image(s, "nope", true, false, &pl, &err), -EINVAL);
	hc_store_close(s);
}

TEST(layout_files)
{
	struct hc_store *s = fresh_store();
	char p[HC_PATH_MAX], *data = NULL;
	struct hc_error err = {0};

	ASSERT_TRUE(s);
	snprintf(p, sizeof(p), "%s/oci-layout", s->store_dir);
	ASSERT_OK(hc_path_read_file(p, 1024, &data, NULL, &err), &err);
	ASSERT_EQ_STR(data, "{\"imageLayoutVersion\":\"1.0.0\"}");
	free(data);
	snprintf(p, sizeof(p), "%s/rootfs", home);
	ASSERT_TRUE(hc_path_exists(p));
	snprintf(p, sizeof(p), "%s/disks", home);
	ASSERT_TRUE(hc_path_exists(p));
	hc_store_close(s);
}

TEST(list_remove_prune)
{
	struct hc_store *s = fresh_store();
	struct hc_error err = {0};
	struct hc_image_info *list = NULL;
	char d1[HC_DIGEST_SIZE], d2[HC_DIGEST_SIZE], p[HC_PATH_MAX];
	size_t n = 0;
	int lock = -1;

	ASSERT_TRUE(s);
	ASSERT_OK(put_image(s, "docker.io/library/one:1", "one", d1, &err), &err);
	ASSERT_OK(put_image(s, "docker.io/library/two:1", "two", d2, &err), &err);
	ASSERT_OK(hc_image_list(s, &list, &n, &err), &err);
	ASSERT_EQ_INT(n, 2);
	ASSERT_EQ_STR(list[0].name, "docker.io/library/one:1");
	ASSERT_EQ_STR(list[0].digest, d1);
	ASSERT_EQ_STR(list[0].created, "2024-01-02T03:04:05Z");
	ASSERT_TRUE(list[0].size > 3);
	hc_image_list_free(list, n);

	/* A run of "two" holds its lock: rmi refuses, prune keeps its rootfs. */
	ASSERT_OK(hc_oci_store_lock_image(s, d2, true, false, &lock, &err), &err);
	ASSERT_EQ_INT(hc_image_remove(s, "two:1", &err), -EBUSY);
	ASSERT_TRUE(strstr(err.message, "in use") != NULL);
	ASSERT_EQ_INT(hc_image_remove(s, "three", &err), -ENOENT);
	char shortid[32];
	snprintf(shortid, sizeof(shortid), "%.19s", d1);
	ASSERT_OK(hc_image_remove(s, shortid, &err), &err);
	ASSERT_TRUE(hc_oci_store_has_blob(s, d1));

	/* Cached trees and disks: "one" is unreferenced now, "two" still named. */
	snprintf(p, sizeof(p), "%s/%s/root", s->rootfs_dir, hc_oci_digest_hex(d1));
	ASSERT_OK(hc_path_mkdir_p(p, 0755, &err), &err);
	snprintf(p, sizeof(p), "%s/%s.ext4", s->disks_dir, hc_oci_digest_hex(d1));
	ASSERT_OK(hc_path_write_file_atomic(p, "x", 1, 0644, &err), &err);
	snprintf(p, sizeof(p), "%s/%s/root", s->rootfs_dir, hc_oci_digest_hex(d2));
	ASSERT_OK(hc_path_mkdir_p(p, 0755, &err), &err);

	int removed = hc_store_prune(s, &err);
	ASSERT_OK(removed, &err);
	/* manifest, config, layer of "one"; its rootfs and its disk */
	ASSERT_EQ_INT(removed, 5);
	ASSERT_TRUE(!hc_oci_store_has_blob(s, d1));
	ASSERT_TRUE(hc_oci_store_has_blob(s, d2));
	snprintf(p, sizeof(p), "%s/%s", s->rootfs_dir, hc_oci_digest_hex(d1));
	ASSERT_TRUE(!hc_path_exists(p));
	snprintf(p, sizeof(p), "%s/%s", s->rootfs_dir, hc_oci_digest_hex(d2));
	ASSERT_TRUE(hc_path_exists(p));

	/* While a pull/load is writing, prune refuses rather than race it. */
	int wl = -1;
	ASSERT_OK(hc_oci_store_lock_writers(s, true, false, &wl, &err), &err);
	ASSERT_EQ_INT(hc_store_prune(s, &err), -EBUSY);
	close(wl);
	close(lock);

	struct hc_oci_image img = {0};
	ASSERT_OK(hc_oci_store_resolve(s, "two:1", &img, &err), &err);
	hc_oci_image_free(&img);
	hc_store_close(s);
}

/* Issue 16 item 3: check_blob tells missing, truncated and altered apart, and a commit of the
 * same digest replaces a damaged blob (the store heals by pull/load). */
TEST(defect_3_damaged_blob_replaced)
{
	struct hc_store *s = fresh_store();
	struct hc_error err = {0};
	char d[HC_DIGEST_SIZE], p[HC_PATH_MAX], *back = NULL;
	static const char data[] = "the content of a layer, more or less";
	size_t n = sizeof(data) - 1;

	ASSERT_TRUE(s != NULL);
	ASSERT_OK(hc_oci_digest_buf(data, n, d, &err), &err);
	ASSERT_EQ_INT(hc_oci_store_check_blob(s, d, n, true, &err), -ENOENT);
	ASSERT_OK(hc_oci_store_blob_put(s, d, data, n, NULL, &err), &err);
	ASSERT_OK(hc_oci_store_check_blob(s, d, n, true, &err), &err);
	ASSERT_OK(hc_oci_store_blob_path(s, d, p, sizeof(p), &err), &err);
	ASSERT_EQ_INT(truncate(p, 10), 0);
	ASSERT_EQ_INT(hc_oci_store_check_blob(s, d, n, false, &err), -EBADMSG);
	ASSERT_TRUE(strstr(err.message, "has 10 bytes") != NULL);
	ASSERT_OK(hc_oci_store_blob_put(s, d, data, n, NULL, &err), &err);
	ASSERT_OK(hc_oci_store_check_blob(s, d, n, true, &err), &err);
	/* same size, other bytes: only the full check sees it; a commit still repairs it */
	{
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		ASSERT_TRUE(fd >= 0 && pwrite(fd, "XX", 2, 3) == 2);
		close(fd);
	}
	ASSERT_OK(hc_oci_store_check_blob(s, d, n, false, &err), &err);
	ASSERT_EQ_INT(hc_oci_store_check_blob(s, d, n, true, &err), -EBADMSG);
	ASSERT_TRUE(strstr(err.message, "does not match its digest") != NULL);
	ASSERT_OK(hc_oci_store_blob_put(s, d, data, n, NULL, &err), &err);
	ASSERT_OK(hc_oci_store_blob_read(s, d, 1024, &back, NULL, &err), &err);
	ASSERT_EQ_STR(back, data);
	free(back);
	ASSERT_EQ_INT(count_blob_files(s), 1); /* no temp left */
	hc_store_close(s);
}

int main(void)
{
	RUN(digest_basics);
	RUN(blob_writer_verifies);
	RUN(blob_writer_mismatch);
	RUN(add_name_replaces);
	RUN(resolve_names_and_digests);
	RUN(concurrent_add_name);
	RUN(concurrent_first_use);
	RUN(lock_semantics);
	RUN(layout_files);
	RUN(list_remove_prune);
	RUN(defect_3_damaged_blob_replaced);
	if (home[0])
		(void)hc_path_rm_rf(home, NULL);
	return test_summary();
}
