/* SPDX-License-Identifier: MIT */
/* The rootfs cache: miss then hit, concurrent first use, no partial tree on failure, ext4. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/child.h"
#include "core/path.h"
#include "oci/digest.h"
#include "oci/ext4.h"
#include "oci/rootfs.h"
#include "oci/store.h"
#include "oci-layer-helpers.h"
#include "test.h"

struct fixture {
	char state[256];
	struct hc_store store;
	struct hc_oci_layer layers[4];
	char diff_ids[4][HC_DIGEST_SIZE];
	struct hc_oci_image img;
};

/* Writes the layer to a temp file, then puts it into the store. */
static int put_layer(struct fixture *f, size_t i, enum tfilter filter, const struct tent *ents,
		     size_t n)
{
	char p[400];
	char *data = NULL;
	size_t len = 0;
	struct hc_error err = {0};
	int r;

	snprintf(p, sizeof(p), "%s/layer.tmp", f->state);
	/* The diff_id: the digest of the same tar, uncompressed. */
	if (tl_write(p, TF_NONE, ents, n) < 0)
		return -1;
	r = hc_path_read_file(p, 256u << 20, &data, &len, &err);
	if (r < 0 || hc_oci_digest_buf(data, len, f->diff_ids[i], &err) < 0)
		return -1;
	free(data);
	data = NULL;
	if (tl_write(p, filter, ents, n) < 0)
		return -1;
	r = hc_path_read_file(p, 256u << 20, &data, &len, &err);
	unlink(p);
	if (r < 0)
		return r;
	r = hc_oci_store_blob_put(&f->store, NULL, data, len, f->layers[i].digest, &err);
	free(data);
	if (r < 0) {
		printf("# put layer: %s\n", err.message);
		return r;
	}
	snprintf(f->layers[i].media_type, sizeof(f->layers[i].media_type), "%s",
		 filter == TF_GZIP   ? HC_OCI_MT_LAYER_GZIP
		 : filter == TF_ZSTD ? HC_OCI_MT_LAYER_ZSTD
				     : HC_OCI_MT_LAYER);
	f->layers[i].size = len;
	return 0;
}

static const char CONFIG[] =
	"{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-01T00:00:00Z\","
	"\"config\":{\"Cmd\":[\"/bin/sh\"],\"Env\":[\"PATH=/bin\"]},"
	"\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}";

/* Puts the image config with these diff_ids (a JSON list body) into the store. */
static int put_config(struct fixture *f, const char *diff_ids)
{
	struct hc_error err = {0};
	char cfg[1024];

	snprintf(cfg, sizeof(cfg), CONFIG, diff_ids);
	return hc_oci_store_blob_put(&f->store, NULL, cfg, strlen(cfg), f->img.config_digest, &err);
}

static char big_data[3 << 20];

/* A two-layer image; tag makes the manifest digest unique per test. */
static int fixture_new(struct fixture *f, const char *tag)
{
	struct hc_error err = {0};
	static const struct tent l0[] = {
		{"etc/", 'd', NULL, 0755, 0, 0, 1400000000, NULL, NULL},
		{"etc/hostname", 'f', "cell\n", 0644, 0, 0, 0, NULL, NULL},
		{"etc/old", 'f', "old\n", 0644, 0, 0, 0, NULL, NULL},
		{"bin/busybox", 'f', "#!fake\n", 0755, 0, 0, 0, NULL, NULL},
		{"bin/sh", 'l', "busybox", 0, 0, 0, 0, NULL, NULL},
		{"usr/bin/su", 'f', "su", 04755, 0, 0, 0, NULL, NULL},
		{"dev/null", 'c', NULL, 0, 0, 0, 0, NULL, NULL},
	};
	struct tent l1[] = {
		{"etc/.wh.old", 'f', "", 0, 0, 0, 0, NULL, NULL},
		{"bin/ls", 'h', "bin/busybox", 0, 0, 0, 0, NULL, NULL},
		{"home/user/big", 'f', big_data, 0600, 1000, 1000, 0, NULL, NULL},
	};

	memset(f, 0, sizeof(*f));
	if (!big_data[0]) {
		for (size_t i = 0; i < sizeof(big_data) - 1; i++)
			big_data[i] = (char)('a' + (i * 7919) % 26);
	}
	if (tl_mkdtemp(f->state, sizeof(f->state), "rootfs") < 0)
		return -1;
	if (hc_oci_store_init(&f->store, f->state, &err) < 0) {
		printf("# store: %s\n", err.message);
		return -1;
	}
	if (put_layer(f, 0, TF_GZIP, l0, sizeof(l0) / sizeof(l0[0])) < 0 ||
	    put_layer(f, 1, TF_ZSTD, l1, sizeof(l1) / sizeof(l1[0])) < 0)
		return -1;
	char ids[200];
	snprintf(ids, sizeof(ids), "\"%s\",\"%s\"", f->diff_ids[0], f->diff_ids[1]);
	if (put_config(f, ids) < 0 || hc_oci_digest_buf(tag, strlen(tag), f->img.digest, &err) < 0)
		return -1;
	snprintf(f->img.name, sizeof(f->img.name), "test/%s:latest", tag);
	f->img.layers = f->layers;
	f->img.n_layers = 2;
	return 0;
}

static void fixture_free(struct fixture *f)
{
	hc_path_rm_rf(f->state, NULL);
}

/* No temp tree or temp disk is left in the caches. */
static bool no_temp_left(const struct fixture *f)
{
	const char *dirs[] = {f->store.rootfs_dir, f->store.disks_dir};

	for (size_t i = 0; i < 2; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *de;
		bool ok = true;

		if (!d)
			continue;
		while ((de = readdir(d)))
			if (hc_startswith(de->d_name, ".tmp-"))
				ok = false;
		closedir(d);
		if (!ok)
			return false;
	}
	return true;
}

TEST(miss_then_hit)
{
	struct fixture f;
	struct hc_oci_rootfs rf = HC_OCI_ROOTFS_INIT, rf2 = HC_OCI_ROOTFS_INIT;
	struct hc_error err = {0};
	char p[HC_PATH_MAX], *cfg = NULL;
	struct stat a, b;
	int lock = -1;

	if (fixture_new(&f, "miss-hit") < 0)
		FAILF("%s", "fixture");
	ASSERT_OK(hc_oci_rootfs_get(&f.store, &f.img, false, -1, &rf, &err), &err);
	ASSERT_TRUE(!rf.hit && rf.lock_fd >= 0 && rf.disk[0] == 0);
	printf("# miss: %.1f ms, %llu entries, %llu bytes\n", rf.unpack_ms,
	       (unsigned long long)rf.stats.entries, (unsigned long long)rf.stats.bytes);
	snprintf(p, sizeof(p), "%s/etc/hostname", rf.root);
	ASSERT_TRUE(hc_path_exists(p));
	snprintf(p, sizeof(p), "%s/etc/old", rf.root);
	ASSERT_TRUE(!hc_path_exists(p));
	snprintf(p, sizeof(p), "%s/dev/null", rf.root);
	ASSERT_TRUE(!hc_path_exists(p));
	snprintf(p, sizeof(p), "%s/bin/ls", rf.root);
	ASSERT_TRUE(stat(p, &a) == 0);
	snprintf(p, sizeof(p), "%s/bin/busybox", rf.root);
	ASSERT_TRUE(stat(p, &b) == 0 && a.st_ino == b.st_ino);
	ASSERT_EQ_INT(rf.stats.skipped_special, 1);
	/* The config sits beside the tree, byte for byte the blob, never inside the tree. */
	ASSERT_OK(hc_path_read_file(rf.config, 1 << 20, &cfg, NULL, &err), &err);
	{
		char want[HC_DIGEST_SIZE];
		ASSERT_OK(hc_oci_digest_buf(cfg, strlen(cfg), want, &err), &err);
		ASSERT_EQ_STR(want, f.img.config_digest);
	}
	free(cfg);
	snprintf(p, sizeof(p), "%s/config.json", rf.root);
	ASSERT_TRUE(!hc_path_exists(p));
	ASSERT_TRUE(no_temp_left(&f));
	ASSERT_TRUE(stat(rf.dir, &a) == 0 && (a.st_mode & 0777) == 0700);

	/* While held, rmi/prune's exclusive try fails. */
	ASSERT_EQ_INT(hc_oci_store_lock_image(&f.store, f.img.digest, false, true, &lock, &err),
		      -EBUSY);
	ASSERT_OK(hc_oci_rootfs_get(&f.store, &f.img, false, -1, &rf2, &err), &err);
	ASSERT_TRUE(rf2.hit && rf2.unpack_ms == 0);
	ASSERT_EQ_STR(rf2.root, rf.root);
	hc_oci_rootfs_release(&rf);
	hc_oci_rootfs_release(&rf2);
	hc_oci_rootfs_release(&rf2);
	ASSERT_OK(hc_oci_store_lock_image(&f.store, f.img.digest, false, true, &lock, &err), &err);
	close(lock);
	fixture_free(&f);
}

TEST(concurrent_first_use)
{
	struct fixture f;
	int go[2], status[2] = {-1, -1};
	pid_t pids[2];
	char p[HC_PATH_MAX];

	if (fixture_new(&f, "concurrent") < 0)
		FAILF("%s", "fixture");
	ASSERT_EQ_INT(pipe(go), 0);
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		ASSERT_TRUE(pids[i] >= 0);
		if (pids[i] == 0) {
			struct hc_oci_rootfs rf = HC_OCI_ROOTFS_INIT;
			struct hc_error err = {0};
			char c;

			close(go[1]);
			/* Both start together: the parent closes the pipe. */
			if (read(go[0], &c, 1) < 0)
				_exit(3);
			if (hc_oci_rootfs_get(&f.store, &f.img, false, -1, &rf, &err) < 0) {
				printf("# child %d: %s\n", i, err.message);
				fflush(stdout);
				_exit(1);
			}
			snprintf(p, sizeof(p), "%s/etc/hostname", rf.root);
			_exit(hc_path_exists(p) ? (rf.hit ? 10 : 0) : 2);
		}
	}
	close(go[0]);
	close(go[1]);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ_INT(waitpid(pids[i], &status[i], 0), pids[i]);
	for (int i = 0; i < 2; i++)
		ASSERT_TRUE(WIFEXITED(status[i]) &&
			    (WEXITSTATUS(status[i]) == 0 || WEXITSTATUS(status[i]) == 10));
	printf("# children: %s, %s\n", WEXITSTATUS(status[0]) ? "hit" : "built",
	       WEXITSTATUS(status[1]) ? "hit" : "built");
	snprintf(p, sizeof(p), "%s/%s/root/home/user/big", f.store.rootfs_dir,
		 hc_oci_digest_hex(f.img.digest));
	ASSERT_TRUE(hc_path_exists(p));
	ASSERT_TRUE(no_temp_left(&f));
	fixture_free(&f);
}

/* A layer that fails (corrupt, or an escape) leaves no tree and no temp behind. */
static void expect_no_partial(struct fixture *f, const char *want)
{
	struct hc_oci_rootfs rf = HC_OCI_ROOTFS_INIT;
	struct hc_error err = {0};
	char p[HC_PATH_MAX];
	int r, lock = -1;

	r = hc_oci_rootfs_get(&f->store, &f->img, false, -1, &rf, &err);
	printf("# %s\n", err.message);
	if (r >= 0)
		FAILF("%s", "a bad image was accepted");
	if (!strstr(err.message, want))
		FAILF("message does not say '%s': %s", want, err.message);
	ASSERT_TRUE(rf.lock_fd < 0);
	snprintf(p, sizeof(p), "%s/%s", f->store.rootfs_dir, hc_oci_digest_hex(f->img.digest));
	ASSERT_TRUE(!hc_path_exists(p));
	ASSERT_TRUE(no_temp_left(f));
	/* The lock was released. */
	ASSERT_OK(hc_oci_store_lock_image(&f->store, f->img.digest, false, true, &lock, &err),
		  &err);
	close(lock);
}

TEST(corrupt_layer_no_partial_cache)
{
	struct fixture f;
	char blob[HC_PATH_MAX];
	struct stat st;

	if (fixture_new(&f, "corrupt") < 0)
		FAILF("%s", "fixture");
	ASSERT_OK(hc_oci_store_blob_path(&f.store, f.layers[1].digest, blob, sizeof(blob), NULL),
		  NULL);
	ASSERT_EQ_INT(stat(blob, &st), 0);
	ASSERT_EQ_INT(truncate(blob, st.st_size / 2), 0);
	expect_no_partial(&f, f.layers[1].digest);
	fixture_free(&f);
}

TEST(escape_no_partial_cache)
{
	struct fixture f;
	static const struct tent bad[] = {
		{"ok", 'f', "fine", 0, 0, 0, 0, NULL, NULL},
		{"evil", 'l', "/tmp", 0, 0, 0, 0, NULL, NULL},
		{"evil/hc-escape", 'f', "bad", 0, 0, 0, 0, NULL, NULL},
	};

	if (fixture_new(&f, "escape") < 0)
		FAILF("%s", "fixture");
	ASSERT_EQ_INT(put_layer(&f, 2, TF_GZIP, bad, 3), 0);
	f.img.n_layers = 3;
	char ids[300];
	snprintf(ids, sizeof(ids), "\"%s\",\"%s\",\"%s\"", f.diff_ids[0], f.diff_ids[1],
		 f.diff_ids[2]);
	ASSERT_EQ_INT(put_config(&f, ids), 0);
	expect_no_partial(&f, "evil/hc-escape");
	ASSERT_TRUE(!hc_path_exists("/tmp/hc-escape"));
	fixture_free(&f);
}

TEST(missing_config_blob)
{
	struct fixture f;

	if (fixture_new(&f, "noconfig") < 0)
		FAILF("%s", "fixture");
	ASSERT_OK(hc_oci_digest_buf("nothing", 7, f.img.config_digest, NULL), NULL);
	expect_no_partial(&f, "config");
	fixture_free(&f);
}

/* Temp trees of dead builders go on the next miss; a live (locked) one stays. */
TEST(stale_temp_trees_removed)
{
	struct fixture f;
	struct hc_oci_rootfs rf = HC_OCI_ROOTFS_INIT;
	struct hc_error err = {0};
	char dead[HC_PATH_MAX], live[HC_PATH_MAX];
	struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
	int lfd;

	if (fixture_new(&f, "stale") < 0)
		FAILF("%s", "fixture");
	snprintf(dead, sizeof(dead), "%s/.tmp-dead-1/root/x", f.store.rootfs_dir);
	ASSERT_OK(hc_path_mkdir_p(dead, 0700, &err), &err);
	snprintf(dead, sizeof(dead), "%s/.tmp-dead-1", f.store.rootfs_dir);
	ASSERT_EQ_INT(utimensat(AT_FDCWD, dead, old, 0), 0);
	snprintf(live, sizeof(live), "%s/.tmp-live-1", f.store.rootfs_dir);
	ASSERT_EQ_INT(mkdir(live, 0700), 0);
	ASSERT_EQ_INT(utimensat(AT_FDCWD, live, old, 0), 0);
	lfd = open(live, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_TRUE(lfd >= 0 && flock(lfd, LOCK_EX) == 0);
	ASSERT_OK(hc_oci_rootfs_get(&f.store, &f.img, false, -1, &rf, &err), &err);
	hc_oci_rootfs_release(&rf);
	ASSERT_TRUE(!hc_path_exists(dead));
	ASSERT_TRUE(hc_path_exists(live));
	close(lfd);
	fixture_free(&f);
}

/* Issue 16 item 9: the last diff_id is wrong -> refused while unpacking, nothing cached. */
TEST(defect_9_wrong_diff_id_refused)
{
	struct fixture f;
	char ids[200];

	if (fixture_new(&f, "diffid") < 0)
		FAILF("%s", "fixture");
	snprintf(ids, sizeof(ids), "\"%s\",\"%s\"", f.diff_ids[0], f.diff_ids[0]);
	ASSERT_EQ_INT(put_config(&f, ids), 0);
	expect_no_partial(&f, "does not match the image config's diff_id");
	fixture_free(&f);
}

/* Issue 16 item 9: fewer diff_ids than layers -> refused before anything is unpacked. */
TEST(defect_9_diff_id_count_refused)
{
	struct fixture f;
	char ids[200];

	if (fixture_new(&f, "diffcount") < 0)
		FAILF("%s", "fixture");
	snprintf(ids, sizeof(ids), "\"%s\"", f.diff_ids[0]);
	ASSERT_EQ_INT(put_config(&f, ids), 0);
	expect_no_partial(&f, "lists 1 rootfs.diff_ids for 2 layers");
	fixture_free(&f);
}

/* Issue 16 item 3: a run that meets a truncated blob names the image and the blob, and says
 * that a pull repairs it. */
TEST(defect_3_corrupt_blob_named)
{
	struct fixture f;
	char blob[HC_PATH_MAX], want[200];
	struct stat st;

	if (fixture_new(&f, "damaged") < 0)
		FAILF("%s", "fixture");
	ASSERT_OK(hc_oci_store_blob_path(&f.store, f.layers[0].digest, blob, sizeof(blob), NULL),
		  NULL);
	ASSERT_EQ_INT(stat(blob, &st), 0);
	ASSERT_EQ_INT(truncate(blob, st.st_size - 9), 0);
	snprintf(want, sizeof(want), "image test/damaged:latest: the store is damaged: blob %s",
		 f.layers[0].digest);
	expect_no_partial(&f, want);
	expect_no_partial(&f, "`hotcell pull test/damaged:latest`");
	fixture_free(&f);
}

/* Issue 16 item 6: a temp tree whose writer is gone (no lock), however young, is removed by a
 * cache hit; one being written (locked) stays. */
TEST(defect_6_dead_temps_removed_on_hit)
{
	struct fixture f;
	struct hc_oci_rootfs rf = HC_OCI_ROOTFS_INIT;
	struct hc_error err = {0};
	char dead[HC_PATH_MAX], disk[HC_PATH_MAX], live[HC_PATH_MAX];
	int lfd = -1, dfd;

	if (fixture_new(&f, "hitclean") < 0)
		FAILF("%s", "fixture");
	ASSERT_OK(hc_oci_rootfs_get(&f.store, &f.img, false, -1, &rf, &err), &err);
	hc_oci_rootfs_release(&rf);
	snprintf(dead, sizeof(dead), "%s/.tmp-young-1/root/etc", f.store.rootfs_dir);
	ASSERT_OK(hc_path_mkdir_p(dead, 0700, &err), &err);
	snprintf(dead, sizeof(dead), "%s/.tmp-young-1", f.store.rootfs_dir);
	ASSERT_OK(hc_path_mkdir_p(f.store.disks_dir, 0755, &err), &err);
	snprintf(disk, sizeof(disk), "%s/.tmp-x.ext4-1", f.store.disks_dir);
	dfd = open(disk, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ASSERT_TRUE(dfd >= 0);
	close(dfd);
	snprintf(live, sizeof(live), "%s/.tmp-live-2", f.store.rootfs_dir);
	ASSERT_OK(hc_oci_store_create_temp(live, true, &lfd, &err), &err);
	ASSERT_OK(hc_oci_rootfs_get(&f.store, &f.img, false, -1, &rf, &err), &err);
	ASSERT_TRUE(rf.hit);
	hc_oci_rootfs_release(&rf);
	ASSERT_TRUE(!hc_path_exists(dead));
	ASSERT_TRUE(!hc_path_exists(disk));
	ASSERT_TRUE(hc_path_exists(live));
	close(lfd);
	ASSERT_EQ_INT(hc_oci_store_clean_stale(f.store.rootfs_dir), 1);
	ASSERT_TRUE(!hc_path_exists(live));
	fixture_free(&f);
}

/* Issue 16 item 8: a cancel fd that is readable stops the unpack and the ext4 build with
 * -ECANCELED, leaving no tree, temp or lock. */
TEST(defect_8_cancel_unpack_and_ext4)
{
	struct fixture f;
	struct hc_oci_rootfs rf = HC_OCI_ROOTFS_INIT;
	struct hc_error err = {0};
	char disk[HC_PATH_MAX];
	int p[2], lock = -1, r;

	if (fixture_new(&f, "cancel") < 0)
		FAILF("%s", "fixture");
	ASSERT_EQ_INT(pipe(p), 0);
	ASSERT_EQ_INT(write(p[1], "x", 1), 1);
	r = hc_oci_rootfs_get(&f.store, &f.img, false, p[0], &rf, &err);
	ASSERT_EQ_INT(r, -ECANCELED);
	ASSERT_TRUE(rf.lock_fd < 0);
	ASSERT_TRUE(no_temp_left(&f));
	ASSERT_OK(hc_oci_store_lock_image(&f.store, f.img.digest, false, true, &lock, &err), &err);
	close(lock);
	/* the tree, then the disk with the cancel already there */
	ASSERT_OK(hc_oci_rootfs_get(&f.store, &f.img, false, -1, &rf, &err), &err);
	hc_oci_rootfs_release(&rf);
	snprintf(disk, sizeof(disk), "%s/cancelled.ext4", f.store.disks_dir);
	ASSERT_OK(hc_path_mkdir_p(f.store.disks_dir, 0755, &err), &err);
	r = hc_oci_ext4_build(f.store.rootfs_dir, disk, p[0], &err);
	ASSERT_EQ_INT(r, -ECANCELED);
	ASSERT_TRUE(!hc_path_exists(disk));
	ASSERT_TRUE(no_temp_left(&f));
	close(p[0]);
	close(p[1]);
	fixture_free(&f);
}

/* A full disk: the rootfs cache on a 1 MiB tmpfs, a 3 MiB file to unpack. */
TEST(disk_full_no_partial_cache)
{
	struct fixture f;
	struct hc_oci_rootfs rf = HC_OCI_ROOTFS_INIT;
	struct hc_error err = {0};
	int r;

	if (fixture_new(&f, "full") < 0)
		FAILF("%s", "fixture");
	if (mount("tmpfs", f.store.rootfs_dir, "tmpfs", 0, "size=1m,mode=0755") < 0) {
		fixture_free(&f);
		SKIP("cannot mount a small tmpfs here (needs root)");
	}
	r = hc_oci_rootfs_get(&f.store, &f.img, false, -1, &rf, &err);
	printf("# %s\n", err.message);
	bool clean = no_temp_left(&f);
	hc_oci_rootfs_release(&rf);
	umount2(f.store.rootfs_dir, MNT_DETACH);
	fixture_free(&f);
	ASSERT_TRUE(r < 0);
	ASSERT_TRUE(strstr(err.message, "No space left") != NULL);
	ASSERT_TRUE(clean);
}

static bool have(const char *prog)
{
	const char *argv[] = {"sh", "-c", NULL, NULL};
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s", prog);
	argv[2] = cmd;
	return hc_child_run(argv, 10000, 0, NULL, NULL) == 0;
}

TEST(ext4_disk)
{
	struct fixture f;
	struct hc_oci_rootfs rf = HC_OCI_ROOTFS_INIT, rf2 = HC_OCI_ROOTFS_INIT;
	struct hc_error err = {0};
	struct stat st;
	char *out = NULL;
	int r;

	if (!have("mke2fs") || !have("e2fsck") || !have("debugfs"))
		SKIP("e2fsprogs (mke2fs, e2fsck, debugfs) not installed");
	if (fixture_new(&f, "ext4") < 0)
		FAILF("%s", "fixture");
	ASSERT_OK(hc_oci_rootfs_get(&f.store, &f.img, true, -1, &rf, &err), &err);
	ASSERT_TRUE(!rf.disk_hit && rf.disk[0]);
	printf("# ext4 built in %.1f ms\n", rf.disk_ms);
	ASSERT_TRUE(stat(rf.disk, &st) == 0 && (st.st_mode & 0777) == 0444);
	{
		const char *argv[] = {"e2fsck", "-fn", rf.disk, NULL};
		r = hc_child_run(argv, 60000, 65536, &out, &err);
		if (r != 0)
			FAILF("e2fsck -fn: %d: %s", r, out ? out : err.message);
		free(out);
		out = NULL;
	}
	{
		const char *argv[] = {"debugfs", "-R", "ls -l /", rf.disk, NULL};
		ASSERT_EQ_INT(hc_child_run(argv, 60000, 65536, &out, &err), 0);
		ASSERT_TRUE(strstr(out, "etc") && strstr(out, "bin") && strstr(out, "home"));
		free(out);
		out = NULL;
	}
	{
		const char *argv[] = {"debugfs", "-R", "stat /usr/bin/su", rf.disk, NULL};
		ASSERT_EQ_INT(hc_child_run(argv, 60000, 65536, &out, &err), 0);
		ASSERT_TRUE(strstr(out, "Mode:  04755") != NULL);
		free(out);
		out = NULL;
	}
	{
		const char *argv[] = {"debugfs", "-R", "cat /etc/hostname", rf.disk, NULL};
		ASSERT_EQ_INT(hc_child_run(argv, 60000, 65536, &out, &err), 0);
		ASSERT_TRUE(strstr(out, "cell") != NULL);
		free(out);
		out = NULL;
	}
	ASSERT_OK(hc_oci_rootfs_get(&f.store, &f.img, true, -1, &rf2, &err), &err);
	ASSERT_TRUE(rf2.hit && rf2.disk_hit && rf2.disk_ms == 0);
	ASSERT_EQ_STR(rf2.disk, rf.disk);
	ASSERT_TRUE(no_temp_left(&f));
	hc_oci_rootfs_release(&rf);
	hc_oci_rootfs_release(&rf2);
	fixture_free(&f);
}

int main(void)
{
	RUN(miss_then_hit);
	RUN(concurrent_first_use);
	RUN(corrupt_layer_no_partial_cache);
	RUN(escape_no_partial_cache);
	RUN(missing_config_blob);
	RUN(stale_temp_trees_removed);
	RUN(disk_full_no_partial_cache);
	RUN(ext4_disk);
	RUN(defect_9_wrong_diff_id_refused);
	RUN(defect_9_diff_id_count_refused);
	RUN(defect_3_corrupt_blob_named);
	RUN(defect_6_dead_temps_removed_on_hit);
	RUN(defect_8_cancel_unpack_and_ext4);
	return test_summary();
}
