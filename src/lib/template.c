/* SPDX-License-Identifier: MIT */
/* Templates: warm start of `hotcell run` (template.h, docs/warm-start.md). */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/log.h"
#include "jail/jail.h"
#include "lib/template.h"
#include "oci/digest.h"
#include "oci/store.h"
#include "proto/boot.h"
#include "vmm/accel.h"

#define TEMPLATES "templates"
#define TEMPLATE_META "template.json"
#define TMP_PREFIX ".tmp-"
#define OLD_PREFIX ".old-"
/* A restored guest answers RESEED in milliseconds; one that does not within this is broken
 * (a corrupt memory file) and the run boots cold instead of waiting the whole 10 s. */
#define WARM_RESEED_TIMEOUT_MS 5000
#define META_MAX (64u * 1024)
/* The warm-up command before the save: its stream (hc_run's command is 1) and deadline. */
#define WARM_UP_STREAM 2u
#define WARM_UP_TIMEOUT_MS 30000

const char *hc_lib_template_refusal(const struct hc_run_opts *o)
{
	const char *e = getenv("HOTCELL_TEMPLATES");

	if (e && hc_streq(e, "0"))
		return "HOTCELL_TEMPLATES=0";
	if (o->cold)
		return "--cold";
	if (!o->image)
		return "--rootfs (no image)";
	if (o->n_volumes)
		return "volumes (-v): virtio-fs is not part of a snapshot";
	if (o->rootfs_mode == HC_ROOTFS_DIR || o->rootfs_rw)
		return "a directory rootfs: virtio-fs is not part of a snapshot";
	/* Published ports would be remade by the restore (hc_lib_restore_as), but no test covers
	 * that warm yet: such runs stay cold. */
	if (o->n_ports)
		return "-p: published ports on a restored guest are not tested yet";
	if (o->n_devices)
		return "--device";
	if (o->jailer)
		return "--jailer";
	/* As root a networked Firecracker runs under its jailer now (its TAP the jail uid's);
	 * its template save once hung after the resume here (tests/e2e/net-firecracker-jailer.sh):
	 * cold until that is understood. */
	if (hc_streq(o->backend, "firecracker") && o->network != HC_NET_NONE && geteuid() == 0)
		return "--network with Firecracker under its jailer: warm starts are not tested "
		       "yet";
	return NULL;
}

/* ---- the key ------------------------------------------------------------------------------ */

static json_t *file_id(const char *path)
{
	struct stat st;

	if (!path)
		return json_null();
	if (stat(path, &st) < 0)
		return NULL;
	return json_pack("{s:s, s:I, s:I, s:I, s:I}", "path", path, "size", (json_int_t)st.st_size,
			 "mtime_ns",
			 (json_int_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, "ino",
			 (json_int_t)st.st_ino, "dev", (json_int_t)st.st_dev);
}

/* The boot keys but the hostname: a restored copy gets its own (HOSTNAME frame). */
static json_t *cmdline_words(const char *cmdline)
{
	json_t *a = json_array();
	const char *p = cmdline ? cmdline : "";

	while (a && *p) {
		size_t n;

		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (n &&
		    !(n > strlen(HC_BOOT_KEY_HOSTNAME) &&
		      strncmp(p, HC_BOOT_KEY_HOSTNAME "=", strlen(HC_BOOT_KEY_HOSTNAME) + 1) == 0))
			json_array_append_new(a, json_stringn(p, n));
		p += n;
	}
	return a;
}

static json_t *key_object(const struct hc_lib_boot *b, const char *identity)
{
	const struct hc_vm_spec *s = &b->spec;

	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:b, s:i, s:i, s:i, s:i, s:i, "
			 "s:i, s:o}",
			 "format", HC_LIB_TEMPLATE_FORMAT, "hotcell", hc_version(), "digest",
			 b->image.digest, "backend", b->ops->name, "vmm", identity, "kernel",
			 file_id(s->kernel), "initrd", file_id(s->initrd), "disk",
			 file_id(s->rootfs_disk), "kernel_is_user", s->kernel_is_user, "cpus",
			 (int)s->cpus, "memory_mib", (int)s->memory_mib, "rootfs_mode",
			 (int)s->rootfs_mode, "channel", (int)s->channel, "network",
			 (int)s->network, "accel", (int)s->accel, "cmdline",
			 cmdline_words(s->cmdline));
}

static int make_key(const struct hc_lib_boot *b, struct hc_lib_template *t, struct hc_error *err)
{
	char identity[HC_PATH_MAX + 256], digest[HC_DIGEST_SIZE];
	_cleanup_free_ char *text = NULL;
	int r;

	r = hc_vm_identity(b->ops, identity, sizeof(identity), err);
	if (r < 0)
		return r;
	t->key_json = key_object(b, identity);
	text = t->key_json ? json_dumps(t->key_json, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (!text)
		return hc_error_set(err, -ENOMEM,
				    "template key: a file is missing or out of memory");
	r = hc_oci_digest_buf(text, strlen(text), digest, err);
	if (r < 0)
		return r;
	snprintf(t->key, sizeof(t->key), "%s", hc_oci_digest_hex(digest));
	return 0;
}

/* ---- lookup ------------------------------------------------------------------------------- */

static int lock_path(const struct hc_lib_template *t, char *buf, size_t n, struct hc_error *err)
{
	return hc_path_fmt(buf, n, err, "%s/%s.lock", t->root, t->key);
}

/* The build lock, without waiting: 0 held, -EBUSY another run builds. */
static int try_lock(struct hc_lib_template *t, struct hc_error *err)
{
	char p[HC_PATH_MAX];
	int r = lock_path(t, p, sizeof(p), err);

	return r < 0 ? r : hc_path_lock(p, false, true, &t->lock_fd, err);
}

/* Opens t->dir as a snapshot and checks that its template.json names our key. */
static int open_template(struct hc_lib_template *t, struct hc_error *err)
{
	char meta[HC_PATH_MAX];
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r;

	r = hc_path_fmt(meta, sizeof(meta), err, "%s/" TEMPLATE_META, t->dir);
	if (r < 0)
		return r;
	r = hc_path_read_file(meta, META_MAX, &text, &len, err);
	if (r < 0)
		return r;
	json_auto_t *m = json_loadb(text, len, 0, NULL);
	if (!json_is_object(m) || !json_equal(json_object_get(m, "key"), t->key_json))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "%s is not this key's", meta);
	return hc_lib_snapshot_open(t->dir, &t->snap, err);
}

/* Removes the template (this run holds its lock): moved aside first, so a reader never sees
 * half of it. */
static void remove_template(const struct hc_lib_template *t)
{
	char old[HC_PATH_MAX], id[9];
	struct hc_error e = {0};

	hc_path_random_id(id, 8);
	if (hc_path_fmt(old, sizeof(old), &e, "%s/" OLD_PREFIX "%s-%s", t->root, t->key, id) < 0)
		return;
	if (rename(t->dir, old) < 0) {
		if (errno != ENOENT)
			hc_debug("template %s: cannot move it aside: %s", t->dir, strerror(errno));
		return;
	}
	if (hc_path_rm_rf(old, &e) < 0)
		hc_debug("template: cannot remove %s: %s", old, e.message);
}

/* Temps of builders that died (this run holds the key's lock, so none is live). */
static void remove_stale_temps(const struct hc_lib_template *t)
{
	char prefix[128], p[HC_PATH_MAX];
	DIR *d = opendir(t->root);
	struct dirent *de;

	if (!d)
		return;
	snprintf(prefix, sizeof(prefix), TMP_PREFIX "%s-", t->key);
	while ((de = readdir(d)))
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 &&
		    hc_path_fmt(p, sizeof(p), NULL, "%s/%s", t->root, de->d_name) >= 0) {
			hc_debug("template: removing %s, left by a run that died", p);
			hc_path_rm_rf(p, NULL);
		}
	closedir(d);
}

/* Gives the build lock up and removes its file (hc_path_lock's users re-check after locking),
 * and the templates directory too when nothing is in it: a run that built nothing leaves the
 * state dir as it found it. */
static void unlock(struct hc_lib_template *t)
{
	char p[HC_PATH_MAX];

	if (t->lock_fd < 0)
		return;
	if (lock_path(t, p, sizeof(p), NULL) == 0)
		(void)unlink(p);
	hc_closep(&t->lock_fd);
	(void)rmdir(t->root);
}

static void go_cold(struct hc_lib_template *t, const char *fmt, const char *what)
{
	t->state = HC_TPL_COLD;
	snprintf(t->why_cold, sizeof(t->why_cold), fmt, what);
	hc_debug("template: cold boot: %s", t->why_cold);
}

/* No usable template: build one when nobody else does. recheck: one that appeared between our
 * look and our lock is used (else, as after a failed restore, whatever is there goes). */
static void want_build(struct hc_lib_template *t, bool recheck)
{
	struct hc_error e = {0};

	if (try_lock(t, &e) < 0) {
		go_cold(t, "%s",
			e.code == -EBUSY ? "another run is building the template" : e.message);
		return;
	}
	/* Someone may have finished one between our look and our lock. */
	if (recheck && hc_path_exists(t->dir) && open_template(t, &e) == 0) {
		unlock(t);
		t->state = HC_TPL_WARM;
		return;
	}
	remove_template(t);
	remove_stale_temps(t);
	t->state = HC_TPL_BUILD;
	hc_debug("template: this run builds %s", t->dir);
}

void hc_lib_template_lookup(struct hc_store *store, const struct hc_lib_boot *b,
			    struct hc_lib_template *t)
{
	struct hc_error e = {0};
	double t0 = hc_clock_ms();

	if (!b->ops || !(b->ops->caps & HC_CAP_SNAPSHOT) || !(b->ops->caps & HC_CAP_RESTORE) ||
	    !b->image.digest[0]) {
		go_cold(t, "backend '%s' keeps no templates", b->ops ? b->ops->name : "?");
		return;
	}
	if (((b->ops->caps & HC_CAP_SNAPSHOT_NEEDS_BLOCK) &&
	     b->spec.rootfs_mode != HC_ROOTFS_BLOCK) ||
	    ((b->ops->caps & HC_CAP_SNAPSHOT_NEEDS_SERIAL) &&
	     b->spec.channel != HC_CHANNEL_SERIAL)) {
		go_cold(t, "backend '%s' snapshots only a block rootfs on the serial channel",
			b->ops->name);
		return;
	}
	if (hc_path_fmt(t->root, sizeof(t->root), &e, "%s/" TEMPLATES, store->state_dir) < 0 ||
	    hc_path_mkdir_p(t->root, 0700, &e) < 0 || make_key(b, t, &e) < 0 ||
	    hc_path_fmt(t->dir, sizeof(t->dir), &e, "%s/%s", t->root, t->key) < 0) {
		go_cold(t, "%s", e.message);
		return;
	}
	if (!hc_path_exists(t->dir)) {
		want_build(t, true);
	} else if (open_template(t, &e) < 0) {
		hc_debug("template %s unusable: %s", t->dir, e.message);
		want_build(t, false);
	} else {
		t->state = HC_TPL_WARM;
	}
	hc_debug("template lookup %.2f ms: %s", hc_clock_ms() - t0,
		 t->state == HC_TPL_WARM    ? "warm"
		 : t->state == HC_TPL_BUILD ? "build"
					    : "cold");
}

/* ---- restore and save --------------------------------------------------------------------- */

int hc_lib_template_restore(struct hc_lib_template *t, const struct hc_run_opts *o,
			    struct hc_lib_net *net, struct hc_vm **ret_vm, int *ret_agent_fd,
			    double *ret_ms, struct hc_error *err)
{
	struct hc_lib_restore_as as = {
		.hostname = o->hostname ? o->hostname : "hotcell",
		.cancel_fd = o->cancel_fd,
		.reseed_timeout_ms = WARM_RESEED_TIMEOUT_MS,
		.no_jail = o->no_jail,
		.run_opts = o,
		.net = net,
	};
	int r;

	r = hc_lib_snapshot_restore_as(t->snap, &as, ret_vm, ret_agent_fd, ret_ms, err);
	if (r >= 0 || r == -ECANCELED)
		return r;
	hc_debug("template %s did not restore (%s): booting cold", t->dir, err->message);
	hc_lib_snapshot_close(t->snap);
	t->snap = NULL;
	want_build(t, false);
	return r;
}

/* One command before the save (bench/warm.sh part 4: the first command after a restore is
 * much faster from a template taken after one command ran: the guest's page cache and dentry
 * cache hold the agent's exec path and the image's shell). `true` on its own stream, as root
 * in /, with the image's usual PATH; nothing of it stays but caches (an image without `true`
 * gets ERROR NOT_FOUND, which warms most of the same path). Reads exactly its frames. */
static int warm_up(int agent, struct hc_error *err)
{
	static const char *const argv[] = {"true", NULL};
	static const char *const env[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
	struct hc_proto_exec x = {
		.user = (char *)"0",
		.cwd = (char *)"/",
		.argv = (char **)argv,
		.argc = 1,
		.env = (char **)env,
		.envc = 1,
	};
	struct hc_buf out = HC_BUF_INIT(0);
	double deadline = hc_clock_ms() + WARM_UP_TIMEOUT_MS;
	_cleanup_free_ uint8_t *buf = malloc(HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD);
	int r;

	if (!buf)
		return hc_error_set(err, -ENOMEM, "out of memory");
	r = hc_proto_exec_encode(&out, WARM_UP_STREAM, &x);
	if (r < 0)
		r = hc_error_set(err, r, "encode the warm-up command");
	else
		r = hc_lib_snapshot_write_all(agent, out.data, out.len, deadline, err);
	hc_buf_free(&out);
	while (r >= 0) {
		struct hc_proto_frame f;

		r = hc_lib_snapshot_read_frame(agent, buf, deadline, &f, err);
		if (r >= 0 && f.stream == WARM_UP_STREAM &&
		    (f.type == HC_FRAME_EXIT || f.type == HC_FRAME_ERROR))
			return 0;
		if (r >= 0 && f.stream != WARM_UP_STREAM)
			r = hc_error_setk(err, -EPROTO, HC_EK_VM,
					  "unexpected %s frame on stream %u",
					  hc_proto_type_name(f.type), f.stream);
	}
	return r;
}

void hc_lib_template_save(struct hc_lib_template *t, struct hc_vm *vm, const struct hc_lib_boot *b,
			  int agent, double *ret_ms)
{
	struct hc_lib_snapshot_origin origin = {.image = b->image.name, .digest = b->image.digest};
	char tmp[HC_PATH_MAX], meta[HC_PATH_MAX];
	struct hc_error e = {0};
	double t0 = hc_clock_ms(), paused = 0;
	int r;

	*ret_ms = 0;
	if (t->state != HC_TPL_BUILD)
		return;
	if (agent >= 0 && warm_up(agent, &e) < 0) {
		/* The channel's state is unknown now: no template from this run. */
		hc_debug("template not saved: the warm-up command: %s", e.message);
		return;
	}
	r = hc_path_fmt(tmp, sizeof(tmp), &e, "%s/" TMP_PREFIX "%s-XXXXXX", t->root, t->key);
	if (r >= 0 && !mkdtemp(tmp))
		r = hc_error_errno(&e, -errno, "mkdtemp %s", tmp);
	if (r < 0) {
		hc_debug("template not saved: %s", e.message);
		return;
	}
	r = hc_lib_snapshot_save(vm, tmp, &origin, false, false, &paused, &e);
	json_auto_t *m = r >= 0 ? json_pack("{s:O, s:s, s:s}", "key", t->key_json, "image",
					    b->image.name, "digest", b->image.digest)
				: NULL;
	_cleanup_free_ char *text = m ? json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	if (r >= 0 && !text)
		r = hc_error_set(&e, -ENOMEM, "out of memory");
	if (r >= 0)
		r = hc_path_fmt(meta, sizeof(meta), &e, "%s/" TEMPLATE_META, tmp);
	if (r >= 0)
		r = hc_path_write_file_atomic(meta, text, strlen(text), 0600, &e);
	if (r >= 0) {
		remove_template(t);
		if (rename(tmp, t->dir) < 0)
			r = hc_error_errno(&e, -errno, "rename %s", t->dir);
	}
	if (r < 0) {
		/* A full disk, ...: the run goes on, a later one tries again. */
		hc_debug("template not saved: %s", e.message);
		hc_path_rm_rf(tmp, NULL);
		return;
	}
	*ret_ms = hc_clock_ms() - t0;
	hc_debug("template saved to %s in %.1f ms (VM paused %.1f ms)", t->dir, *ret_ms, paused);
}

void hc_lib_template_release(struct hc_lib_template *t)
{
	hc_lib_snapshot_close(t->snap);
	t->snap = NULL;
	json_decref(t->key_json);
	t->key_json = NULL;
	unlock(t);
}

/* ---- size and prune ----------------------------------------------------------------------- */

static uint64_t tree_blocks(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t sum = 0;
	struct stat st;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_blocks * 512;
	closedir(d);
	return sum;
}

static bool template_of(const char *dir, const char *digest)
{
	char meta[HC_PATH_MAX];
	_cleanup_free_ char *text = NULL;
	size_t len;

	if (hc_path_fmt(meta, sizeof(meta), NULL, "%s/" TEMPLATE_META, dir) < 0 ||
	    hc_path_read_file(meta, META_MAX, &text, &len, NULL) < 0)
		return false;
	json_auto_t *m = json_loadb(text, len, 0, NULL);
	return hc_streq(json_string_value(json_object_get(m, "digest")), digest);
}

uint64_t hc_lib_template_size(const char *state_dir, const char *digest)
{
	char root[HC_PATH_MAX], p[HC_PATH_MAX];
	uint64_t sum = 0;
	struct dirent *de;
	DIR *d;

	if (hc_path_fmt(root, sizeof(root), NULL, "%s/" TEMPLATES, state_dir) < 0 ||
	    !(d = opendir(root)))
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && !strstr(de->d_name, ".lock") &&
		    hc_path_fmt(p, sizeof(p), NULL, "%s/%s", root, de->d_name) >= 0 &&
		    template_of(p, digest))
			sum += tree_blocks(p);
	closedir(d);
	return sum;
}

int hc_lib_template_prune(const char *state_dir, struct hc_error *err)
{
	char root[HC_PATH_MAX], p[HC_PATH_MAX], lock[HC_PATH_MAX], key[65];
	struct dirent *de;
	int n = 0, r;
	DIR *d;

	r = hc_path_fmt(root, sizeof(root), err, "%s/" TEMPLATES, state_dir);
	if (r < 0)
		return r;
	d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : hc_error_errno(err, -errno, "open %s", root);
	while ((de = readdir(d))) {
		const char *name = de->d_name, *k = name;
		_cleanup_close_ int fd = -1;

		if (hc_streq(name, ".") || hc_streq(name, ".."))
			continue;
		/* Every entry belongs to a key: <key>, <key>.lock, .tmp-<key>-*, .old-<key>-*. */
		if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
			k = name + strlen(TMP_PREFIX);
		else if (strncmp(name, OLD_PREFIX, strlen(OLD_PREFIX)) == 0)
			k = name + strlen(OLD_PREFIX);
		if (strlen(k) < 64)
			continue;
		snprintf(key, sizeof(key), "%.64s", k);
		if (hc_path_fmt(p, sizeof(p), NULL, "%s/%s", root, name) < 0 ||
		    hc_path_fmt(lock, sizeof(lock), NULL, "%s/%s.lock", root, key) < 0)
			continue;
		/* A run building this key's template holds the lock: leave it be. */
		if (hc_path_lock(lock, false, true, &fd, NULL) < 0)
			continue;
		if (!hc_streq(name + 64, ".lock") && hc_path_rm_rf(p, NULL) == 0 && !name[64]) {
			hc_debug("prune: removed template %s", p);
			n++;
		}
		/* Unlinked while held: hc_path_lock's users retry on a new file. */
		unlink(lock);
	}
	closedir(d);
	return n;
}
