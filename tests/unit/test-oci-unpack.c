/* SPDX-License-Identifier: MIT */
/* OCI layer application: the image-spec layer rules, and each path-escape attack. */
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/path.h"
#include "oci/unpack.h"
#include "oci-layer-helpers.h"
#include "test.h"

/* A test directory: <tmp>/root (the rootfs), <tmp>/outside (a sentinel that must stay as it
 * is: one file "keep"), <tmp>/layers. */
struct env {
	char tmp[256], root[300], outside[300], layers[300];
};

static int env_new(struct env *e, const char *tag)
{
	char p[400];
	FILE *f;

	if (tl_mkdtemp(e->tmp, sizeof(e->tmp), tag) < 0)
		return -1;
	snprintf(e->root, sizeof(e->root), "%s/root", e->tmp);
	snprintf(e->outside, sizeof(e->outside), "%s/outside", e->tmp);
	snprintf(e->layers, sizeof(e->layers), "%s/layers", e->tmp);
	if (mkdir(e->root, 0755) < 0 || mkdir(e->outside, 0755) < 0 || mkdir(e->layers, 0755) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/keep", e->outside);
	f = fopen(p, "we");
	if (!f)
		return -1;
	fputs("sentinel\n", f);
	fclose(f);
	return 0;
}

static void env_free(struct env *e)
{
	hc_path_rm_rf(e->tmp, NULL);
}

/* The sentinel is untouched and nothing new appeared beside root. */
static bool env_outside_clean(const struct env *e)
{
	char p[400];
	struct stat st;

	snprintf(p, sizeof(p), "%s/keep", e->outside);
	return tl_count_dir(e->outside) == 1 && stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
	       st.st_nlink == 1 && st.st_size == 9 && tl_count_dir(e->tmp) == 3;
}

/* Writes each layer (NULL-separated groups are not needed: one array per layer) and applies
 * them in order. Returns the unpack result; err filled on failure. */
static int apply_layers(const struct env *e, enum tfilter f, const struct tent *const *layers,
			const size_t *counts, size_t n, struct hc_oci_unpack_stats *ret_stats,
			struct hc_error *err)
{
	struct hc_oci_unpack *u = NULL;
	int r;

	r = hc_oci_unpack_new(e->root, &u, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		char p[400], what[32];
		snprintf(p, sizeof(p), "%s/l%zu", e->layers, i);
		snprintf(what, sizeof(what), "L%zu", i);
		if (tl_write(p, f, layers[i], counts[i]) < 0) {
			hc_oci_unpack_free(u);
			return hc_error_set(err, -EIO, "cannot write test layer");
		}
		r = hc_oci_unpack_layer_path(u, p, what, NULL, NULL, err);
		if (r < 0)
			break;
	}
	if (r == 0)
		r = hc_oci_unpack_finish(u, err);
	if (ret_stats)
		*ret_stats = *hc_oci_unpack_get_stats(u);
	hc_oci_unpack_free(u);
	return r;
}

#define LAYERS(...) ((const struct tent *const[]){__VA_ARGS__})
#define COUNTS(...) ((const size_t[]){__VA_ARGS__})
#define N(a) (sizeof(a) / sizeof((a)[0]))

static bool exists_at(const struct env *e, const char *rel, struct stat *st)
{
	char p[600];
	struct stat tmp;

	snprintf(p, sizeof(p), "%s/%s", e->root, rel);
	return lstat(p, st ? st : &tmp) == 0;
}

static int read_at(const struct env *e, const char *rel, char *buf, size_t n)
{
	char p[600];
	FILE *f;
	size_t got;

	snprintf(p, sizeof(p), "%s/%s", e->root, rel);
	f = fopen(p, "re");
	if (!f)
		return -1;
	got = fread(buf, 1, n - 1, f);
	buf[got] = 0;
	fclose(f);
	return (int)got;
}

TEST(sanitize_paths)
{
	static const struct {
		const char *in, *out;
		int r;
	} cases[] = {
		{"a/b/c", "a/b/c", 0},
		{"./a/b", "a/b", 0},
		{"/abs/x", "abs/x", 0},
		{"//a//./b/", "a/b", 0},
		{"./", "", 0},
		{"/", "", 0},
		{".", "", 0},
		{"a/./b/.", "a/b", 0},
		{"...", "...", 0},
		{"..a/b..", "..a/b..", 0},
		{".wh..wh..opq", ".wh..wh..opq", 0},
		{"../x", NULL, -EINVAL},
		{"/abs/../../x", NULL, -EINVAL},
		{"a/../../x", NULL, -EINVAL},
		{"a/..", NULL, -EINVAL},
		{"..", NULL, -EINVAL},
		{"a/../b", NULL, -EINVAL},
	};
	char buf[HC_PATH_MAX], big[600];

	for (size_t i = 0; i < N(cases); i++) {
		int r = hc_oci_unpack_sanitize_path(cases[i].in, buf, sizeof(buf));
		ASSERT_EQ_INT(r, cases[i].r);
		if (r == 0)
			ASSERT_EQ_STR(buf, cases[i].out);
	}
	memset(big, 'a', 300);
	big[300] = 0;
	ASSERT_EQ_INT(hc_oci_unpack_sanitize_path(big, buf, sizeof(buf)), -ENAMETOOLONG);
	ASSERT_EQ_INT(hc_oci_unpack_sanitize_path("abc/def", buf, 5), -ENAMETOOLONG);
	/* Too deep. */
	for (int i = 0; i < 300; i++)
		memcpy(big + 2 * i, "a/", 2);
	big[599] = 0;
	ASSERT_EQ_INT(hc_oci_unpack_sanitize_path(big, buf, sizeof(buf)), -ENAMETOOLONG);
}

static void basic_with(enum tfilter f)
{
	struct env e;
	struct hc_error err = {0};
	struct stat st;
	char buf[64], p[600];
	static const struct tent l0[] = {
		{"./", 'd', NULL, 0755, 0, 0, 1111, NULL, NULL},
		{"./etc/", 'd', NULL, 0755, 0, 0, 1500000000, NULL, NULL},
		{"./etc/hostname", 'f', "cell\n", 0644, 0, 0, 1200000000, NULL, NULL},
		{"./bin/", 'd', NULL, 0700, 0, 0, 1300000000, NULL, NULL},
		{"./bin/su", 'f', "#!su\n", 04755, 0, 0, 0, NULL, NULL},
		{"./bin/sh", 'l', "/bin/busybox", 0, 0, 0, 0, NULL, NULL},
		{"./home/user/file", 'f', "mine", 0600, 1234, 5678, 0, NULL, NULL},
		{"usr/lib/x", 'f', "x", 0, 0, 0, 0, "user.hotcell", "yes"},
		{"usr/lib/t", 'f', "t", 0, 0, 0, 0, "trusted.hotcell", "no"},
	};
	const struct tent *const *layers = LAYERS(l0);

	if (env_new(&e, "unpack") < 0)
		FAILF("%s", "env");
	int r = apply_layers(&e, f, layers, COUNTS(N(l0)), 1, NULL, &err);
	if (r < 0) {
		env_free(&e);
		FAILF("unpack: %s", err.message);
	}
	ASSERT_TRUE(read_at(&e, "etc/hostname", buf, sizeof(buf)) == 5 && !strcmp(buf, "cell\n"));
	ASSERT_TRUE(exists_at(&e, "etc/hostname", &st) && st.st_mtime == 1200000000);
	/* The directory's mtime survives its content being written. */
	ASSERT_TRUE(exists_at(&e, "etc", &st) && st.st_mtime == 1500000000);
	ASSERT_TRUE(exists_at(&e, "bin", &st) && (st.st_mode & 07777) == 0700);
	ASSERT_TRUE(exists_at(&e, "bin/su", &st) && (st.st_mode & 07777) == 04755);
	ASSERT_TRUE(exists_at(&e, "bin/sh", &st) && S_ISLNK(st.st_mode));
	snprintf(p, sizeof(p), "%s/bin/sh", e.root);
	ssize_t n = readlink(p, buf, sizeof(buf) - 1);
	ASSERT_TRUE(n == 12 && !memcmp(buf, "/bin/busybox", 12));
	ASSERT_TRUE(exists_at(&e, "home/user/file", &st));
	if (geteuid() == 0)
		ASSERT_TRUE(st.st_uid == 1234 && st.st_gid == 5678);
	ASSERT_EQ_INT(st.st_mode & 07777, 0600);
	ASSERT_TRUE(exists_at(&e, "", &st) && st.st_mtime == 1111);
	/* Implicit parents are created 0755. */
	ASSERT_TRUE(exists_at(&e, "home", &st) && S_ISDIR(st.st_mode) &&
		    (st.st_mode & 0777) == 0755);
	snprintf(p, sizeof(p), "%s/usr/lib/x", e.root);
	n = getxattr(p, "user.hotcell", buf, sizeof(buf));
	if (n >= 0)
		ASSERT_TRUE(n == 3 && !memcmp(buf, "yes", 3));
	snprintf(p, sizeof(p), "%s/usr/lib/t", e.root);
	ASSERT_TRUE(getxattr(p, "trusted.hotcell", buf, sizeof(buf)) < 0);
	env_free(&e);
}

TEST(basic_plain)
{
	basic_with(TF_NONE);
}

TEST(basic_gzip)
{
	basic_with(TF_GZIP);
}

TEST(basic_zstd)
{
	basic_with(TF_ZSTD);
}

TEST(whiteouts_and_opaque)
{
	struct env e;
	struct hc_error err = {0};
	struct stat st;
	static const struct tent l0[] = {
		{"a/x", 'f', "x", 0, 0, 0, 0, NULL, NULL},
		{"a/y", 'f', "y", 0, 0, 0, 0, NULL, NULL},
		{"b/z", 'f', "z", 0, 0, 0, 0, NULL, NULL},
		{"b/deep/er", 'f', "z", 0, 0, 0, 0, NULL, NULL},
		{"d/old1", 'f', "o", 0, 0, 0, 0, NULL, NULL},
		{"d/sub/old2", 'f', "o", 0, 0, 0, 0, NULL, NULL},
		{"c/lower", 'f', "l", 0, 0, 0, 0, NULL, NULL},
	};
	static const struct tent l1[] = {
		{"a/.wh.x", 'f', "", 0, 0, 0, 0, NULL, NULL},
		{".wh.b", 'f', "", 0, 0, 0, 0, NULL, NULL},
		{"d/", 'd', NULL, 0, 0, 0, 0, NULL, NULL},
		{"d/new", 'f', "n", 0, 0, 0, 0, NULL, NULL},
		{"d/.wh..wh..opq", 'f', "", 0, 0, 0, 0, NULL, NULL},
		/* Content of the same layer is never hidden by its own whiteout. */
		{"c/same", 'f', "s", 0, 0, 0, 0, NULL, NULL},
		{"c/.wh.same", 'f', "", 0, 0, 0, 0, NULL, NULL},
		{"c/.wh.lower", 'f', "", 0, 0, 0, 0, NULL, NULL},
		{"nothere/.wh.x", 'f', "", 0, 0, 0, 0, NULL, NULL},
		{".wh..wh.plnk", 'd', NULL, 0, 0, 0, 0, NULL, NULL},
	};
	struct hc_oci_unpack_stats stats;

	if (env_new(&e, "wh") < 0)
		FAILF("%s", "env");
	int r = apply_layers(&e, TF_GZIP, LAYERS(l0, l1), COUNTS(N(l0), N(l1)), 2, &stats, &err);
	if (r < 0) {
		env_free(&e);
		FAILF("unpack: %s", err.message);
	}
	ASSERT_TRUE(!exists_at(&e, "a/x", NULL));
	ASSERT_TRUE(exists_at(&e, "a/y", NULL));
	ASSERT_TRUE(!exists_at(&e, "b", NULL));
	ASSERT_TRUE(exists_at(&e, "d/new", NULL));
	ASSERT_TRUE(!exists_at(&e, "d/old1", NULL) && !exists_at(&e, "d/sub", NULL));
	ASSERT_TRUE(exists_at(&e, "c/same", NULL) && !exists_at(&e, "c/lower", NULL));
	ASSERT_TRUE(!exists_at(&e, "nothere", NULL));
	/* No whiteout file appears in the result. */
	ASSERT_TRUE(!exists_at(&e, "a/.wh.x", NULL) && !exists_at(&e, ".wh.b", NULL) &&
		    !exists_at(&e, "d/.wh..wh..opq", NULL) && !exists_at(&e, ".wh..wh.plnk", NULL));
	ASSERT_EQ_INT(tl_count_dir(e.root), 3); /* a c d */
	ASSERT_TRUE(exists_at(&e, "d", &st) && S_ISDIR(st.st_mode));
	ASSERT_EQ_INT(stats.whiteouts, 7);
	env_free(&e);
}

TEST(hardlinks_and_replacement)
{
	struct env e;
	struct hc_error err = {0};
	struct stat a, b, c;
	char buf[32];
	static const struct tent l0[] = {
		{"f1", 'f', "one", 0, 0, 0, 0, NULL, NULL},
		{"same1", 'f', "s", 0, 0, 0, 0, NULL, NULL},
		{"same2", 'h', "same1", 0, 0, 0, 0, NULL, NULL},
		{"wasdir/x", 'f', "x", 0, 0, 0, 0, NULL, NULL},
		{"wasfile", 'f', "f", 0, 0, 0, 0, NULL, NULL},
		{"linked", 'f', "shared", 0, 0, 0, 0, NULL, NULL},
		{"alias", 'h', "linked", 0, 0, 0, 0, NULL, NULL},
	};
	static const struct tent l1[] = {
		{"sub/h1", 'h', "/f1", 0, 0, 0, 0, NULL, NULL}, /* to a lower-layer file */
		{"wasdir", 'f', "now a file", 0, 0, 0, 0, NULL, NULL},
		{"wasfile/", 'd', NULL, 0, 0, 0, 0, NULL, NULL},
		{"wasfile/y", 'f', "y", 0, 0, 0, 0, NULL, NULL},
		/* Replacing one name of a hard-linked pair never writes through the link. */
		{"alias", 'f', "replaced", 0, 0, 0, 0, NULL, NULL},
	};

	if (env_new(&e, "hl") < 0)
		FAILF("%s", "env");
	int r = apply_layers(&e, TF_NONE, LAYERS(l0, l1), COUNTS(N(l0), N(l1)), 2, NULL, &err);
	if (r < 0) {
		env_free(&e);
		FAILF("unpack: %s", err.message);
	}
	ASSERT_TRUE(exists_at(&e, "f1", &a) && exists_at(&e, "sub/h1", &b));
	ASSERT_TRUE(a.st_ino == b.st_ino && a.st_nlink == 2);
	ASSERT_TRUE(exists_at(&e, "same1", &a) && exists_at(&e, "same2", &c));
	ASSERT_TRUE(a.st_ino == c.st_ino);
	ASSERT_TRUE(exists_at(&e, "wasdir", &a) && S_ISREG(a.st_mode));
	ASSERT_TRUE(exists_at(&e, "wasfile", &a) && S_ISDIR(a.st_mode));
	ASSERT_TRUE(read_at(&e, "linked", buf, sizeof(buf)) > 0 && !strcmp(buf, "shared"));
	ASSERT_TRUE(read_at(&e, "alias", buf, sizeof(buf)) > 0 && !strcmp(buf, "replaced"));
	env_free(&e);
}

/* Applies layers that must be refused; checks the message names the entry and nothing
 * escaped. */
/* Names a hostile layer aims at outside the root, and whether each existed before the tests
 * ran (main records it). */
static const char *const outside_names[] = {"/x", "/tmp/x", "/tmp/outside"};
static bool outside_before[3];

static void expect_reject(const struct tent *const *layers, const size_t *counts, size_t n,
			  const char *entry)
{
	struct env e;
	struct hc_error err = {0};
	int r;

	if (env_new(&e, "esc") < 0)
		FAILF("%s", "env");
	r = apply_layers(&e, TF_GZIP, layers, counts, n, NULL, &err);
	if (r >= 0) {
		env_free(&e);
		FAILF("layer with '%s' was accepted", entry);
	}
	printf("# rejected: %s\n", err.message);
	if (!strstr(err.message, entry)) {
		env_free(&e);
		FAILF("message does not name '%s': %s", entry, err.message);
	}
	if (!env_outside_clean(&e)) {
		env_free(&e);
		FAILF("something was written outside the root for '%s'", entry);
	}
	/* Only what this layer made counts: another program on the host may own these names. */
	for (size_t i = 0; i < HC_ARRAY_SIZE(outside_names); i++) {
		if (!outside_before[i] && access(outside_names[i], F_OK) == 0) {
			env_free(&e);
			FAILF("%s appeared outside the root", outside_names[i]);
		}
	}
	env_free(&e);
}

TEST(escape_dotdot)
{
	static const struct tent l0[] = {{"../x", 'f', "bad", 0, 0, 0, 0, NULL, NULL}};
	static const struct tent l1[] = {{"/abs/../../x", 'f', "bad", 0, 0, 0, 0, NULL, NULL}};
	static const struct tent l2[] = {{"a/../../x", 'f', "bad", 0, 0, 0, 0, NULL, NULL}};
	static const struct tent l3[] = {{"../outside/keep", 'f', "bad", 0, 0, 0, 0, NULL, NULL}};
	static const struct tent l4[] = {{"d/.wh...", 'f', "", 0, 0, 0, 0, NULL, NULL}};

	expect_reject(LAYERS(l0), COUNTS(1), 1, "../x");
	if (test_cur_failed)
		return;
	expect_reject(LAYERS(l1), COUNTS(1), 1, "/abs/../../x");
	if (test_cur_failed)
		return;
	expect_reject(LAYERS(l2), COUNTS(1), 1, "a/../../x");
	if (test_cur_failed)
		return;
	expect_reject(LAYERS(l3), COUNTS(1), 1, "../outside/keep");
	if (test_cur_failed)
		return;
	expect_reject(LAYERS(l4), COUNTS(1), 1, "d/.wh...");
}

TEST(escape_symlink_parent_same_layer)
{
	struct tent l0[] = {
		{"evil", 'l', "/tmp/outside", 0, 0, 0, 0, NULL, NULL},
		{"evil/file", 'f', "bad", 0, 0, 0, 0, NULL, NULL},
	};
	static const struct tent l1[] = {
		{"rel", 'l', "../outside", 0, 0, 0, 0, NULL, NULL},
		{"rel/keep", 'f', "bad", 0, 0, 0, 0, NULL, NULL},
	};
	static const struct tent l2[] = {
		{"rel", 'l', "../outside", 0, 0, 0, 0, NULL, NULL},
		{"rel/.wh.keep", 'f', "", 0, 0, 0, 0, NULL, NULL},
	};
	static const struct tent l3[] = {
		{"rel", 'l', "../outside", 0, 0, 0, 0, NULL, NULL},
		{"rel/.wh..wh..opq", 'f', "", 0, 0, 0, 0, NULL, NULL},
	};

	expect_reject(LAYERS(l0), COUNTS(2), 1, "evil/file");
	if (test_cur_failed)
		return;
	expect_reject(LAYERS(l1), COUNTS(2), 1, "rel/keep");
	if (test_cur_failed)
		return;
	expect_reject(LAYERS(l2), COUNTS(2), 1, "rel/.wh.keep");
	if (test_cur_failed)
		return;
	expect_reject(LAYERS(l3), COUNTS(2), 1, "rel/.wh..wh..opq");
}

TEST(escape_symlink_parent_lower_layer)
{
	static const struct tent l0[] = {
		{"usr/", 'd', NULL, 0, 0, 0, 0, NULL, NULL},
		{"usr/evil", 'l', "../../outside", 0, 0, 0, 0, NULL, NULL},
	};
	static const struct tent l1[] = {
		{"usr/evil/deeper/file", 'f', "bad", 0, 0, 0, 0, NULL, NULL},
	};
	static const struct tent l2[] = {
		{"usr/evil/", 'd', NULL, 0, 0, 0, 0, NULL, NULL},
		{"usr/evil/keep", 'f', "bad", 0, 0, 0, 0, NULL, NULL},
	};

	expect_reject(LAYERS(l0, l1), COUNTS(2, 1), 2, "usr/evil/deeper/file");
	if (test_cur_failed)
		return;
	/* A directory entry over the symlink replaces the symlink itself (never follows it),
	 * so this one is accepted and lands inside. */
	struct env e;
	struct hc_error err = {0};
	struct stat st;

	if (env_new(&e, "esc2") < 0)
		FAILF("%s", "env");
	int r = apply_layers(&e, TF_NONE, LAYERS(l0, l2), COUNTS(2, 2), 2, NULL, &err);
	bool ok = r == 0 && exists_at(&e, "usr/evil", &st) && S_ISDIR(st.st_mode) &&
		  exists_at(&e, "usr/evil/keep", NULL) && env_outside_clean(&e);
	env_free(&e);
	if (!ok)
		FAILF("directory over a symlink: r=%d %s", r, err.message);
}

TEST(escape_hardlinks)
{
	static const struct tent l0[] = {{"h", 'h', "../../etc/passwd", 0, 0, 0, 0, NULL, NULL}};
	static const struct tent l1[] = {
		{"ev", 'l', "/etc", 0, 0, 0, 0, NULL, NULL},
		{"h", 'h', "ev/passwd", 0, 0, 0, 0, NULL, NULL},
	};
	static const struct tent l2[] = {
		{"ev", 'l', "../outside", 0, 0, 0, 0, NULL, NULL},
		{"h", 'h', "ev/keep", 0, 0, 0, 0, NULL, NULL},
	};
	/* Absolute targets are inside the root: there is no etc/passwd there. */
	static const struct tent l3[] = {{"h", 'h', "/etc/passwd", 0, 0, 0, 0, NULL, NULL}};
	static const struct tent l4[] = {
		{"dir/", 'd', NULL, 0, 0, 0, 0, NULL, NULL},
		{"h", 'h', "dir", 0, 0, 0, 0, NULL, NULL},
	};

	expect_reject(LAYERS(l0), COUNTS(1), 1, "../../etc/passwd");
	if (test_cur_failed)
		return;
	expect_reject(LAYERS(l1), COUNTS(2), 1, "ev/passwd");
	if (test_cur_failed)
		return;
	expect_reject(LAYERS(l2), COUNTS(2), 1, "ev/keep");
	if (test_cur_failed)
		return;
	expect_reject(LAYERS(l3), COUNTS(1), 1, "etc/passwd");
	if (test_cur_failed)
		return;
	expect_reject(LAYERS(l4), COUNTS(2), 1, "dir");
}

TEST(special_files_skipped)
{
	struct env e;
	struct hc_error err = {0};
	struct hc_oci_unpack_stats stats;
	static const struct tent l0[] = {
		{"dev/null", 'c', NULL, 0, 0, 0, 0, NULL, NULL},
		{"run/fifo", 'p', NULL, 0, 0, 0, 0, NULL, NULL},
		{"ok", 'f', "ok", 0, 0, 0, 0, NULL, NULL},
	};

	if (env_new(&e, "dev") < 0)
		FAILF("%s", "env");
	int r = apply_layers(&e, TF_NONE, LAYERS(l0), COUNTS(N(l0)), 1, &stats, &err);
	bool ok = r == 0 && !exists_at(&e, "dev/null", NULL) && !exists_at(&e, "run/fifo", NULL) &&
		  exists_at(&e, "ok", NULL) && stats.skipped_special == 2 &&
		  !strcmp(stats.first_skipped, "dev/null") && env_outside_clean(&e);
	env_free(&e);
	if (!ok)
		FAILF("r=%d %s skipped=%llu", r, err.message,
		      (unsigned long long)stats.skipped_special);
}

/* Writes a gzip layer, then damages it: truncated, and corrupted in the middle. */
TEST(corrupt_gzip)
{
	struct env e;
	struct hc_error err = {0};
	char p[400], big[70000];
	struct stat st;
	struct tent l0[] = {
		{"a", 'f', big, 0, 0, 0, 0, NULL, NULL},
		{"b", 'f', big, 0, 0, 0, 0, NULL, NULL},
	};
	struct hc_oci_unpack *u = NULL;
	int r;

	/* Incompressible-ish content so the gzip stream is long. */
	srand(7);
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = (char)('a' + rand() % 26);
	big[sizeof(big) - 1] = 0;
	if (env_new(&e, "gz") < 0)
		FAILF("%s", "env");
	snprintf(p, sizeof(p), "%s/layer.tgz", e.layers);
	ASSERT_EQ_INT(tl_write(p, TF_GZIP, l0, 2), 0);
	ASSERT_EQ_INT(stat(p, &st), 0);
	ASSERT_EQ_INT(truncate(p, st.st_size / 2), 0);
	ASSERT_OK(hc_oci_unpack_new(e.root, &u, &err), &err);
	r = hc_oci_unpack_layer_path(u, p, "sha256:trunc", NULL, NULL, &err);
	hc_oci_unpack_free(u);
	if (r >= 0 || !strstr(err.message, "sha256:trunc")) {
		env_free(&e);
		FAILF("truncated gzip: r=%d %s", r, err.message);
	}

	/* Flip bytes in the middle of the deflate stream. */
	ASSERT_EQ_INT(tl_write(p, TF_GZIP, l0, 2), 0);
	FILE *f = fopen(p, "r+e");
	ASSERT_TRUE(f != NULL);
	fseek(f, st.st_size / 3, SEEK_SET);
	fwrite("\xff\x00\xff\x00\xff\x00\xff\x00", 1, 8, f);
	fclose(f);
	hc_error_clear(&err);
	ASSERT_OK(hc_oci_unpack_new(e.root, &u, &err), &err);
	r = hc_oci_unpack_layer_path(u, p, "sha256:corrupt", NULL, NULL, &err);
	hc_oci_unpack_free(u);
	if (r >= 0 || !strstr(err.message, "sha256:corrupt")) {
		env_free(&e);
		FAILF("corrupt gzip: r=%d %s", r, err.message);
	}

	/* Not a layer at all. */
	f = fopen(p, "we");
	fputs("this is not a tar archive, not even close; it is plain text.\n", f);
	fclose(f);
	hc_error_clear(&err);
	ASSERT_OK(hc_oci_unpack_new(e.root, &u, &err), &err);
	r = hc_oci_unpack_layer_path(u, p, "sha256:text", NULL, NULL, &err);
	hc_oci_unpack_free(u);
	env_free(&e);
	if (r >= 0 || !strstr(err.message, "sha256:text"))
		FAILF("text: r=%d %s", r, err.message);
}

TEST(digest_checked_while_reading)
{
	struct env e;
	struct hc_error err = {0};
	char p[400], cmd[600], hex[80] = "", want[80];
	struct hc_oci_unpack *u = NULL;
	static const struct tent l0[] = {{"a", 'f', "a", 0, 0, 0, 0, NULL, NULL}};
	FILE *f;
	int r;

	if (env_new(&e, "dg") < 0)
		FAILF("%s", "env");
	snprintf(p, sizeof(p), "%s/layer.tzst", e.layers);
	ASSERT_EQ_INT(tl_write(p, TF_ZSTD, l0, 1), 0);
	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", p);
	f = popen(cmd, "r");
	ASSERT_TRUE(f && fscanf(f, "%64s", hex) == 1);
	pclose(f);
	snprintf(want, sizeof(want), "sha256:%s", hex);
	ASSERT_OK(hc_oci_unpack_new(e.root, &u, &err), &err);
	r = hc_oci_unpack_layer_path(u, p, "good", want, NULL, &err);
	hc_oci_unpack_free(u);
	ASSERT_OK(r, &err);
	want[10] = want[10] == '0' ? '1' : '0';
	ASSERT_OK(hc_oci_unpack_new(e.root, &u, &err), &err);
	r = hc_oci_unpack_layer_path(u, p, "bad", want, NULL, &err);
	hc_oci_unpack_free(u);
	env_free(&e);
	ASSERT_EQ_INT(r, -EBADMSG);
	ASSERT_TRUE(strstr(err.message, "does not match") != NULL);
}

/* A layer from a pipe that delivers a few bytes at a time: detection and decoding still work. */
TEST(layer_from_slow_pipe)
{
	struct env e;
	struct hc_error err = {0};
	struct hc_oci_unpack *u = NULL;
	static const struct tent l0[] = {
		{"piped/file", 'f', "through a pipe", 0, 0, 0, 0, NULL, NULL}};
	char p[400], *data = NULL, buf[64];
	size_t len = 0;
	int fds[2], r, st;
	pid_t pid;

	if (env_new(&e, "pipe") < 0)
		FAILF("%s", "env");
	snprintf(p, sizeof(p), "%s/l.tgz", e.layers);
	ASSERT_EQ_INT(tl_write(p, TF_GZIP, l0, 1), 0);
	ASSERT_OK(hc_path_read_file(p, 1 << 20, &data, &len, &err), &err);
	ASSERT_EQ_INT(pipe(fds), 0);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		for (size_t off = 0; off < len; off += 3)
			if (write(fds[1], data + off, len - off < 3 ? len - off : 3) < 0)
				_exit(1);
		_exit(0);
	}
	close(fds[1]);
	ASSERT_OK(hc_oci_unpack_new(e.root, &u, &err), &err);
	r = hc_oci_unpack_layer_fd(u, fds[0], "pipe", NULL, NULL, &err);
	hc_oci_unpack_free(u);
	close(fds[0]);
	waitpid(pid, &st, 0);
	free(data);
	bool ok = r == 0 && read_at(&e, "piped/file", buf, sizeof(buf)) == 14;
	env_free(&e);
	if (!ok)
		FAILF("r=%d %s", r, err.message);
}

int main(void)
{
	for (size_t i = 0; i < HC_ARRAY_SIZE(outside_names); i++)
		outside_before[i] = access(outside_names[i], F_OK) == 0;
	RUN(sanitize_paths);
	RUN(basic_plain);
	RUN(basic_gzip);
	RUN(basic_zstd);
	RUN(whiteouts_and_opaque);
	RUN(hardlinks_and_replacement);
	RUN(escape_dotdot);
	RUN(escape_symlink_parent_same_layer);
	RUN(escape_symlink_parent_lower_layer);
	RUN(escape_hardlinks);
	RUN(special_files_skipped);
	RUN(corrupt_gzip);
	RUN(digest_checked_while_reading);
	RUN(layer_from_slow_pipe);
	return test_summary();
}
