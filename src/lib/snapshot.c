/* SPDX-License-Identifier: MIT */
/*
 * Snapshot, restore, fork (snapshot.h, docs/snapshots.md).
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "lib/snapshot.h"
#include "proto/proto.h"
#include "vmm/accel.h"

#define RESEED_TIMEOUT_MS 10000
#define META_MAX (1u << 20)

/* ---- the spec as JSON ------------------------------------------------------------------- */

static const char *const rootfs_names[] = {"auto", "dir", "block"};
static const char *const channel_names[] = {"auto", "serial", "vsock"};
static const char *const accel_names[] = {"auto", "kvm", "tcg"};
static const char *const network_names[] = {"none", "inet", "full"};

static const char *name_of(const char *const *names, size_t n, unsigned v)
{
	return v < n ? names[v] : "?";
}

static int value_of(const char *const *names, size_t n, const char *s, unsigned *ret)
{
	for (size_t i = 0; s && i < n; i++) {
		if (hc_streq(names[i], s)) {
			*ret = (unsigned)i;
			return 0;
		}
	}
	return -EINVAL;
}

json_t *hc_lib_snapshot_spec_format(const struct hc_vm_spec *s)
{
	json_t *vols = json_array(), *ports = json_array(), *j;

	for (size_t i = 0; vols && i < s->n_volumes; i++)
		json_array_append_new(vols, json_pack("{s:s, s:s, s:b}", "host", s->volumes[i].host,
						      "guest", s->volumes[i].guest, "readonly",
						      s->volumes[i].readonly));
	for (size_t i = 0; ports && i < s->n_ports; i++)
		json_array_append_new(ports, json_pack("{s:i, s:i}", "host", s->ports[i].host,
						       "guest", s->ports[i].guest));
	if (!vols || !ports || json_array_size(vols) != s->n_volumes ||
	    json_array_size(ports) != s->n_ports) {
		json_decref(vols);
		json_decref(ports);
		return NULL;
	}
	j = json_pack("{s:i, s:i, s:s?, s:b, s:s?, s:s, s:s, s:s, s:s?, s:s?, s:s, s:o, s:s, s:o, "
		      "s:b, s:i}",
		      "cpus", (int)s->cpus, "memory_mib", (int)s->memory_mib, "kernel", s->kernel,
		      "kernel_is_user", s->kernel_is_user, "initrd", s->initrd, "cmdline",
		      s->cmdline ? s->cmdline : "", "accel",
		      name_of(accel_names, HC_ARRAY_SIZE(accel_names), s->accel), "rootfs_mode",
		      name_of(rootfs_names, HC_ARRAY_SIZE(rootfs_names), s->rootfs_mode),
		      "rootfs_dir", s->rootfs_dir, "rootfs_disk", s->rootfs_disk, "channel",
		      name_of(channel_names, HC_ARRAY_SIZE(channel_names), s->channel), "volumes",
		      vols, "network",
		      name_of(network_names, HC_ARRAY_SIZE(network_names), s->network), "ports",
		      ports, "jailer", s->jailer, "boot_timeout_ms", s->boot_timeout_ms);
	return j;
}

static int bad(struct hc_error *err, const char *what)
{
	return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "spec: %s is missing or invalid", what);
}

static const char *opt_str(json_t *j, const char *key, bool *ok)
{
	json_t *v = json_object_get(j, key);

	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v))
		*ok = false;
	return json_string_value(v);
}

int hc_lib_snapshot_spec_parse(json_t *j, struct hc_vm_spec *spec, struct hc_volume **ret_volumes,
			       struct hc_port **ret_ports, struct hc_error *err)
{
	struct hc_vm_spec s = {0};
	json_t *vols, *ports, *v;
	unsigned e;
	bool ok = true;
	size_t i;

	if (!json_is_object(j))
		return bad(err, "the spec object");
	v = json_object_get(j, "cpus");
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1024)
		return bad(err, "cpus");
	s.cpus = (unsigned)json_integer_value(v);
	v = json_object_get(j, "memory_mib");
	if (!json_is_integer(v) || json_integer_value(v) < 16 || json_integer_value(v) > (1 << 24))
		return bad(err, "memory_mib");
	s.memory_mib = (unsigned)json_integer_value(v);
	s.kernel = opt_str(j, "kernel", &ok);
	s.initrd = opt_str(j, "initrd", &ok);
	s.cmdline = opt_str(j, "cmdline", &ok);
	s.rootfs_dir = opt_str(j, "rootfs_dir", &ok);
	s.rootfs_disk = opt_str(j, "rootfs_disk", &ok);
	if (!ok || !s.kernel)
		return bad(err, "a path");
	s.kernel_is_user = json_is_true(json_object_get(j, "kernel_is_user"));
	s.jailer = json_is_true(json_object_get(j, "jailer"));
	if (value_of(accel_names, HC_ARRAY_SIZE(accel_names), opt_str(j, "accel", &ok), &e) < 0)
		return bad(err, "accel");
	s.accel = (enum hc_accel)e;
	if (value_of(rootfs_names, HC_ARRAY_SIZE(rootfs_names), opt_str(j, "rootfs_mode", &ok),
		     &e) < 0)
		return bad(err, "rootfs_mode");
	s.rootfs_mode = (enum hc_rootfs_mode)e;
	if (value_of(channel_names, HC_ARRAY_SIZE(channel_names), opt_str(j, "channel", &ok), &e) <
	    0)
		return bad(err, "channel");
	s.channel = (enum hc_channel)e;
	if (value_of(network_names, HC_ARRAY_SIZE(network_names), opt_str(j, "network", &ok), &e) <
	    0)
		return bad(err, "network");
	s.network = (enum hc_network)e;
	v = json_object_get(j, "boot_timeout_ms");
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
		return bad(err, "boot_timeout_ms");
	s.boot_timeout_ms = (int)json_integer_value(v);
	if ((s.rootfs_mode == HC_ROOTFS_BLOCK && !s.rootfs_disk) ||
	    (s.rootfs_mode == HC_ROOTFS_DIR && !s.rootfs_dir) || s.rootfs_mode == HC_ROOTFS_AUTO ||
	    s.channel == HC_CHANNEL_AUTO || s.accel == HC_ACCEL_AUTO)
		return bad(err, "the rootfs, channel or accelerator");

	vols = json_object_get(j, "volumes");
	ports = json_object_get(j, "ports");
	if (!json_is_array(vols) || json_array_size(vols) > 64)
		return bad(err, "volumes");
	if (!json_is_array(ports) || json_array_size(ports) > 1024)
		return bad(err, "ports");
	_cleanup_free_ struct hc_volume *vv = calloc(json_array_size(vols) + 1, sizeof(*vv));
	_cleanup_free_ struct hc_port *pp = calloc(json_array_size(ports) + 1, sizeof(*pp));
	if (!vv || !pp)
		return hc_error_set(err, -ENOMEM, "out of memory");
	json_array_foreach(vols, i, v)
	{
		vv[i].host = opt_str(v, "host", &ok);
		vv[i].guest = opt_str(v, "guest", &ok);
		vv[i].readonly = json_is_true(json_object_get(v, "readonly"));
		if (!ok || !vv[i].host || !vv[i].guest)
			return bad(err, "a volume");
	}
	json_array_foreach(ports, i, v)
	{
		json_t *h = json_object_get(v, "host"), *g = json_object_get(v, "guest");

		if (!json_is_integer(h) || !json_is_integer(g) || json_integer_value(h) < 1 ||
		    json_integer_value(h) > 65535 || json_integer_value(g) < 1 ||
		    json_integer_value(g) > 65535)
			return bad(err, "a port");
		pp[i].host = (uint16_t)json_integer_value(h);
		pp[i].guest = (uint16_t)json_integer_value(g);
	}
	s.n_volumes = json_array_size(vols);
	s.n_ports = json_array_size(ports);
	s.volumes = s.n_volumes ? vv : NULL;
	s.ports = s.n_ports ? pp : NULL;
	*spec = s;
	*ret_volumes = steal_ptr(&vv);
	*ret_ports = steal_ptr(&pp);
	return 0;
}

/* ---- the files a snapshot depends on ------------------------------------------------------
 * The kernel and initramfs were loaded at boot, but a restore starts the same command line
 * (QEMU checks the ROM sizes) and the guest's page cache holds blocks of the rootfs disk: each
 * must be the file that booted, which its size and mtime tell cheaply. */

static json_t *file_id(const char *path)
{
	struct stat st;

	if (!path || stat(path, &st) < 0)
		return NULL;
	return json_pack("{s:s, s:I, s:I}", "path", path, "size", (json_int_t)st.st_size,
			 "mtime_ns",
			 (json_int_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
}

static int file_check(json_t *files, const char *what, const char *path, struct hc_error *err)
{
	json_t *f = json_object_get(files, what);
	struct stat st;

	if (!path)
		return 0;
	if (!json_is_object(f) || !json_is_string(json_object_get(f, "path")) ||
	    !hc_streq(json_string_value(json_object_get(f, "path")), path))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "snapshot.json does not identify the %s", what);
	if (stat(path, &st) < 0)
		return hc_error_errno(err, -errno, "the snapshot's %s %s", what, path);
	if (json_integer_value(json_object_get(f, "size")) != (json_int_t)st.st_size ||
	    json_integer_value(json_object_get(f, "mtime_ns")) !=
		    (json_int_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec)
		return hc_error_setk(err, -ESTALE, HC_EK_USAGE,
				     "the snapshot's %s %s has changed since the snapshot was "
				     "taken",
				     what, path);
	return 0;
}

/* ---- save ------------------------------------------------------------------------------- */

static int write_meta(struct hc_vm *vm, const char *adir, const struct hc_lib_snapshot_origin *o,
		      struct hc_error *err)
{
	char path[HC_PATH_MAX], created[40];
	json_t *spec = hc_lib_snapshot_spec_format(&vm->spec), *files = json_object();
	struct timespec ts;
	struct tm tm;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (files) {
		json_object_set_new(files, "kernel", file_id(vm->spec.kernel));
		if (vm->spec.initrd)
			json_object_set_new(files, "initrd", file_id(vm->spec.initrd));
		if (vm->spec.rootfs_disk)
			json_object_set_new(files, "disk", file_id(vm->spec.rootfs_disk));
	}
	json_auto_t *m = spec && files
				 ? json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:O?}",
					     "format", HC_LIB_SNAPSHOT_FORMAT, "backend",
					     vm->ops->name, "created", created, "hotcell",
					     hc_version(), "image", o && o->image ? o->image : "",
					     "digest", o && o->digest ? o->digest : "", "spec",
					     spec, "files", files, "options", o ? o->options : NULL)
				 : NULL;
	if (!m) {
		if (!spec || !files) {
			json_decref(spec);
			json_decref(files);
		}
		return hc_error_set(err, -ENOMEM, "snapshot.json: out of memory");
	}
	_cleanup_free_ char *text = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return hc_error_set(err, -ENOMEM, "snapshot.json: out of memory");
	r = hc_path_fmt(path, sizeof(path), err, "%s/" HC_LIB_SNAPSHOT_META, adir);
	if (r >= 0)
		r = hc_path_write_file_atomic(path, text, strlen(text), 0600, err);
	return r;
}

/* dir: created (0700) when missing, else empty or a snapshot. *created tells which. */
static int prepare_dir(const char *dir, char *adir, bool *created, struct hc_error *err)
{
	char meta[HC_PATH_MAX];
	struct stat st;
	int r;

	*created = false;
	if (stat(dir, &st) < 0) {
		if (errno != ENOENT)
			return hc_error_errno(err, -errno, "snapshot directory '%s'", dir);
		r = hc_path_mkdir_p(dir, 0700, err);
		if (r < 0)
			return r;
		*created = true;
	} else if (!S_ISDIR(st.st_mode)) {
		return hc_error_setk(err, -ENOTDIR, HC_EK_USAGE, "'%s' is not a directory", dir);
	}
	if (!realpath(dir, adir))
		return hc_error_errno(err, -errno, "snapshot directory '%s'", dir);
	if (*created)
		return 0;
	r = hc_path_fmt(meta, sizeof(meta), err, "%s/" HC_LIB_SNAPSHOT_META, adir);
	if (r < 0)
		return r;
	if (access(meta, F_OK) == 0) {
		/* Replaced: until the new snapshot.json is in, the directory is no snapshot. */
		if (unlink(meta) < 0)
			return hc_error_errno(err, -errno, "remove %s", meta);
		return 0;
	}
	DIR *d = opendir(adir);
	struct dirent *de;
	bool empty = true;
	if (!d)
		return hc_error_errno(err, -errno, "open '%s'", adir);
	while (empty && (de = readdir(d)))
		empty = hc_streq(de->d_name, ".") || hc_streq(de->d_name, "..");
	closedir(d);
	if (!empty)
		return hc_error_setk(err, -EEXIST, HC_EK_USAGE,
				     "'%s' is neither empty nor a snapshot", dir);
	return 0;
}

int hc_lib_snapshot_save(struct hc_vm *vm, const char *dir,
			 const struct hc_lib_snapshot_origin *origin, bool was_paused,
			 bool leave_paused, double *ret_ms, struct hc_error *err)
{
	char adir[PATH_MAX];
	bool created = false, paused = false;
	double t0;
	int r;

	r = hc_vm_snapshot_check(vm, err);
	if (r < 0)
		return r;
	r = prepare_dir(dir, adir, &created, err);
	if (r < 0)
		return hc_error_prefix(err, "snapshot");
	t0 = hc_clock_ms();
	if (!was_paused) {
		r = hc_vm_pause(vm, err);
		if (r < 0)
			goto fail;
		paused = true;
	}
	r = hc_vm_snapshot(vm, adir, err);
	if (r >= 0)
		r = write_meta(vm, adir, origin, err);
	if (r < 0)
		goto fail;
	if (ret_ms)
		*ret_ms = hc_clock_ms() - t0;
	if (paused && !leave_paused) {
		r = hc_vm_resume(vm, err);
		if (r < 0)
			return hc_error_prefix(err, "snapshot saved to '%s', but resume", dir);
	}
	hc_debug("snapshot of the VM to %s: %.1f ms paused", adir, hc_clock_ms() - t0);
	return 0;

fail:
	if (paused) {
		struct hc_error e = {0};

		if (hc_vm_resume(vm, &e) < 0)
			hc_warn("snapshot failed, and resuming the VM too: %s", e.message);
	}
	if (created) {
		struct hc_error e = {0};

		if (hc_path_rm_rf(adir, &e) < 0)
			hc_warn("cannot remove %s: %s", adir, e.message);
	}
	return hc_error_prefix(err, "snapshot to '%s'", dir);
}

int hc_lib_snapshot_fork_save(struct hc_vm *vm, const struct hc_lib_snapshot_origin *origin,
			      bool was_paused, char *dir, double *ret_ms, struct hc_error *err)
{
	char base[HC_PATH_MAX];
	struct stat st;
	int r;

	/* Before the temp dir, so a VM that cannot be forked leaves nothing. */
	r = hc_vm_snapshot_check(vm, err);
	if (r < 0)
		return hc_error_prefix(err, "fork");
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		snprintf(base, sizeof(base), "/dev/shm");
	else if ((r = hc_path_runtime_dir(base, sizeof(base), err)) < 0)
		return r;
	r = hc_path_fmt(dir, HC_PATH_MAX, err, "%s/hotcell-fork-XXXXXX", base);
	if (r < 0)
		return r;
	if (!mkdtemp(dir))
		return hc_error_errno(err, -errno, "fork: mkdtemp %s", dir);
	r = hc_lib_snapshot_save(vm, dir, origin, was_paused, false, ret_ms, err);
	if (r < 0) {
		hc_path_rm_rf(dir, NULL);
		dir[0] = '\0';
		return hc_error_prefix(err, "fork");
	}
	return 0;
}

/* ---- open ------------------------------------------------------------------------------- */

void hc_lib_snapshot_close(struct hc_lib_snapshot *s)
{
	if (!s)
		return;
	json_decref(s->meta);
	free(s->volumes);
	free(s->ports);
	free(s);
}

static int corrupt(struct hc_error *err, const char *dir, const char *what)
{
	return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
			     "snapshot '%s': snapshot.json is corrupt (%s)", dir, what);
}

int hc_lib_snapshot_open(const char *dir, struct hc_lib_snapshot **ret, struct hc_error *err)
{
	char adir[PATH_MAX], meta[HC_PATH_MAX];
	_cleanup_free_ char *text = NULL;
	struct hc_lib_snapshot *s;
	json_error_t jerr;
	struct stat st;
	size_t len = 0;
	json_t *m, *v;
	int r;

	if (stat(dir, &st) < 0)
		return hc_error_errno(err, -errno, "snapshot '%s'", dir);
	if (!S_ISDIR(st.st_mode))
		return hc_error_setk(err, -ENOTDIR, HC_EK_USAGE, "snapshot '%s' is not a directory",
				     dir);
	if (!realpath(dir, adir))
		return hc_error_errno(err, -errno, "snapshot '%s'", dir);
	r = hc_path_fmt(meta, sizeof(meta), err, "%s/" HC_LIB_SNAPSHOT_META, adir);
	if (r < 0)
		return r;
	if (access(meta, F_OK) < 0)
		return hc_error_setk(err, -ENOENT, HC_EK_USAGE,
				     "'%s' is not a hotcell snapshot (no " HC_LIB_SNAPSHOT_META ")",
				     dir);
	r = hc_path_read_file(meta, META_MAX, &text, &len, err);
	if (r < 0)
		return hc_error_prefix(err, "snapshot '%s'", dir);
	m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(m)) {
		json_decref(m);
		return corrupt(err, dir, m ? "not an object" : jerr.text);
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		json_decref(m);
		return hc_error_set(err, -ENOMEM, "out of memory");
	}
	s->meta = m;
	snprintf(s->dir, sizeof(s->dir), "%s", adir);

	v = json_object_get(m, "format");
	if (!json_is_integer(v)) {
		r = corrupt(err, dir, "no format");
		goto fail;
	}
	if (json_integer_value(v) != HC_LIB_SNAPSHOT_FORMAT) {
		r = hc_error_setk(err, -EPROTO, HC_EK_USAGE,
				  "snapshot '%s' has format %lld; this hotcell reads format %d",
				  dir, (long long)json_integer_value(v), HC_LIB_SNAPSHOT_FORMAT);
		goto fail;
	}
	v = json_object_get(m, "backend");
	if (!json_is_string(v)) {
		r = corrupt(err, dir, "no backend");
		goto fail;
	}
	s->ops = hc_vmm_find(json_string_value(v));
	if (!s->ops) {
		r = hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				  "snapshot '%s' is of backend '%s', which this hotcell lacks", dir,
				  json_string_value(v));
		goto fail;
	}
	if (!(s->ops->caps & HC_CAP_RESTORE)) {
		r = hc_error_setk(err, -EOPNOTSUPP, HC_EK_BACKEND,
				  "backend '%s' does not support restore", s->ops->name);
		goto fail;
	}
	if (!json_is_string(json_object_get(m, "image")) ||
	    !json_is_string(json_object_get(m, "digest")) ||
	    !json_is_string(json_object_get(m, "created"))) {
		r = corrupt(err, dir, "image, digest or created");
		goto fail;
	}
	snprintf(s->image, sizeof(s->image), "%s", json_string_value(json_object_get(m, "image")));
	snprintf(s->digest, sizeof(s->digest), "%s",
		 json_string_value(json_object_get(m, "digest")));
	snprintf(s->created, sizeof(s->created), "%s",
		 json_string_value(json_object_get(m, "created")));
	v = json_object_get(m, "options");
	if (v && !json_is_object(v) && !json_is_null(v)) {
		r = corrupt(err, dir, "options");
		goto fail;
	}
	s->options = json_is_object(v) ? v : NULL;
	r = hc_lib_snapshot_spec_parse(json_object_get(m, "spec"), &s->spec, &s->volumes, &s->ports,
				       err);
	if (r < 0) {
		hc_error_prefix(err, "snapshot '%s': snapshot.json is corrupt", dir);
		goto fail;
	}
	v = json_object_get(m, "files");
	if ((r = file_check(v, "kernel", s->spec.kernel, err)) < 0 ||
	    (r = file_check(v, "initrd", s->spec.initrd, err)) < 0 ||
	    (r = file_check(v, "disk", s->spec.rootfs_disk, err)) < 0) {
		hc_error_prefix(err, "snapshot '%s'", dir);
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	hc_lib_snapshot_close(s);
	return r;
}

/* ---- restore ---------------------------------------------------------------------------- */

static int read_exact(int fd, void *buf, size_t n, double deadline, struct hc_error *err)
{
	uint8_t *p = buf;

	while (n > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int left = hc_clock_left_ms(deadline);

		if (left == 0)
			return hc_error_setk(err, -ETIMEDOUT, HC_EK_VM,
					     "the guest did not answer in time");
		if (poll(&pfd, 1, left) < 0) {
			if (errno == EINTR)
				continue;
			return hc_error_errno(err, -errno, "poll the agent channel");
		}
		ssize_t k = read(fd, p, n);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k < 0)
			return hc_error_errno(err, -errno, "read the agent channel");
		if (k == 0)
			return hc_error_setk(err, -EPIPE, HC_EK_VM,
					     "the agent channel closed before the guest answered");
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int hc_lib_snapshot_write_all(int fd, const void *data, size_t len, double deadline,
			      struct hc_error *err)
{
	const uint8_t *p = data;

	/* The channel may be non-blocking: write it all. */
	for (size_t off = 0; off < len;) {
		ssize_t k = write(fd, p + off, len - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			if (poll(&pfd, 1, hc_clock_left_ms(deadline)) <= 0)
				return hc_error_setk(err, -ETIMEDOUT, HC_EK_VM,
						     "the agent channel is stuck");
			continue;
		}
		if (k <= 0)
			return hc_error_errno(err, k < 0 ? -errno : -EPIPE, "write");
		off += (size_t)k;
	}
	return 0;
}

int hc_lib_snapshot_read_frame(int fd, uint8_t *buf, double deadline, struct hc_proto_frame *f,
			       struct hc_error *err)
{
	size_t used;
	uint32_t len;
	int r;

	r = read_exact(fd, buf, HC_PROTO_HEADER_SIZE, deadline, err);
	if (r < 0)
		return r;
	len = hc_proto_header_len(buf);
	if (len > HC_PROTO_MAX_PAYLOAD)
		return hc_error_setk(err, -EBADMSG, HC_EK_VM, "the guest sent a frame of %u bytes",
				     len);
	r = read_exact(fd, buf + HC_PROTO_HEADER_SIZE, len, deadline, err);
	if (r < 0)
		return r;
	if (hc_proto_frame_parse(buf, HC_PROTO_HEADER_SIZE + len, f, &used) <= 0)
		return hc_error_setk(err, -EBADMSG, HC_EK_VM, "malformed frame from the guest");
	return 0;
}

/* Waits for the guest's answers to `dones` requests on the VM stream (DONE each); an ERROR
 * there is its refusal of `what`. Frames of other streams (a command of the snapshotted VM's,
 * whose client is gone) and HELLO (a guest that connected out again after a vsock reset) are
 * skipped. */
static int await_done(int fd, unsigned dones, double deadline, const char *what,
		      struct hc_error *err)
{
	_cleanup_free_ uint8_t *payload = malloc(HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD);

	if (!payload)
		return hc_error_set(err, -ENOMEM, "out of memory");
	for (;;) {
		struct hc_proto_frame f;
		struct hc_proto_error e;

		if (hc_lib_snapshot_read_frame(fd, payload, deadline, &f, err) < 0)
			return hc_error_prefix(err, "%s", what);
		if (f.stream != HC_PROTO_STREAM_VM)
			continue;
		if (f.type == HC_FRAME_DONE && --dones == 0)
			return 0;
		if (f.type == HC_FRAME_ERROR) {
			if (hc_proto_error_decode(&f, &e) == 0)
				return hc_error_setk(err, -EIO, HC_EK_VM,
						     "the guest refused %s: %s", what, e.message);
			return hc_error_setk(err, -EIO, HC_EK_VM, "the guest refused %s", what);
		}
	}
}

int hc_lib_snapshot_reseed(int fd, int timeout_ms, struct hc_error *err)
{
	return hc_lib_snapshot_reseed_as(fd, timeout_ms, NULL, err);
}

int hc_lib_snapshot_reseed_as(int fd, int timeout_ms, const char *hostname, struct hc_error *err)
{
	uint8_t seed[64];
	unsigned dones = hostname ? 2 : 1;
	struct hc_buf out = HC_BUF_INIT(0);
	struct timespec ts;
	double deadline = hc_clock_ms() + (timeout_ms > 0 ? timeout_ms : RESEED_TIMEOUT_MS);
	int r;

	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		return hc_error_errno(err, -errno, "getrandom");
	clock_gettime(CLOCK_REALTIME, &ts);
	struct hc_proto_reseed rs = {
		.realtime_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
		.seed = seed,
		.seed_len = sizeof(seed),
	};
	/* The hostname first: both are answered before the caller's first command. */
	r = hostname ? hc_proto_hostname_encode(&out, hostname) : 0;
	if (r >= 0)
		r = hc_proto_reseed_encode(&out, &rs);
	explicit_bzero(seed, sizeof(seed));
	if (r < 0) {
		hc_buf_free(&out);
		return hc_error_set(err, r, "RESEED: out of memory");
	}
	r = hc_lib_snapshot_write_all(fd, out.data, out.len, deadline, err);
	explicit_bzero(out.data, out.len);
	hc_buf_free(&out);
	if (r < 0)
		return hc_error_prefix(err, "RESEED");

	return await_done(fd, dones, deadline, hostname ? "HOSTNAME or RESEED" : "RESEED", err);
}

int hc_lib_snapshot_renet(int fd, const struct hc_lib_net *ln, int timeout_ms, struct hc_error *err)
{
	struct hc_buf out = HC_BUF_INIT(0);
	double deadline = hc_clock_ms() + (timeout_ms > 0 ? timeout_ms : RESEED_TIMEOUT_MS);
	struct hc_proto_netconf n = {0};
	int r;

	if (!ln || !ln->attached || !ln->net)
		return 0;
	r = hc_lib_net_netconf(ln, &n);
	if (r >= 0)
		r = hc_proto_netconf_encode(&out, &n);
	if (r >= 0)
		r = hc_lib_snapshot_write_all(fd, out.data, out.len, deadline, err);
	else
		hc_error_set(err, r, "cannot encode the network");
	hc_buf_free(&out);
	if (r < 0)
		return hc_error_prefix(err, "NETCONF");
	return await_done(fd, 1, deadline, "NETCONF", err);
}

static int agent_connect(struct hc_vm *vm, double deadline, struct hc_error *err)
{
	int fd;

	if (vm->agent_fd >= 0) {
		fd = vm->agent_fd;
		vm->agent_fd = -1;
		return fd;
	}
	if (vm->agent_listen_fd < 0)
		return hc_error_setk(err, -EINVAL, HC_EK_INTERNAL,
				     "backend '%s' gave no agent channel", vm->ops->name);
	for (;;) {
		struct pollfd p[2] = {{.fd = vm->agent_listen_fd, .events = POLLIN},
				      {.fd = vm->death_fd, .events = POLLIN}};
		int left = hc_clock_left_ms(deadline);

		if (left == 0)
			return hc_error_setk(err, -ETIMEDOUT, HC_EK_VM,
					     "the restored guest did not connect");
		int n = poll(p, vm->death_fd >= 0 ? 2 : 1, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return hc_error_errno(err, -errno, "poll");
		if (n > 0 && (p[1].revents & POLLIN)) {
			int r = hc_vm_check(vm, err);

			if (r < 0)
				return r;
		}
		if (n > 0 && (p[0].revents & POLLIN)) {
			fd = accept4(vm->agent_listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				return fd;
			if (errno != EINTR && errno != EAGAIN)
				return hc_error_errno(err, -errno, "accept the agent channel");
		}
	}
}

int hc_lib_snapshot_restore_paused(const struct hc_lib_snapshot *s, struct hc_vm **ret_vm,
				   int *ret_agent_fd, struct hc_error *err)
{
	struct hc_vm *vm = NULL;
	int r;

	r = hc_vm_new(&vm, s->ops, &s->spec, err);
	if (r < 0)
		return r;
	vm->restore_paused = true;
	r = hc_vm_restore(vm, s->dir, err);
	if (r < 0) {
		hc_vm_error_add_console(vm, err);
		hc_vm_free(vm);
		return hc_error_prefix(err, "restore '%s'", s->dir);
	}
	/* Connected already (QEMU's serial socketpair carries on), or only once the guest runs
	 * (a vsock reconnect after the resume: hc_lib_snapshot_agent_connect then); nothing may
	 * wait for the guest here, which is not running. */
	*ret_agent_fd = vm->agent_fd;
	vm->agent_fd = -1;
	*ret_vm = vm;
	return 0;
}

int hc_lib_snapshot_agent_connect(struct hc_vm *vm, int timeout_ms, struct hc_error *err)
{
	return agent_connect(vm, hc_clock_ms() + (timeout_ms > 0 ? timeout_ms : 60000), err);
}

int hc_lib_snapshot_relocate(const char *dir, json_t *meta, const char *kernel, const char *initrd,
			     const char *disk, struct hc_error *err)
{
	char path[HC_PATH_MAX];
	json_t *spec = json_object_get(meta, "spec"), *files = json_object();
	int r;

	if (!json_is_object(spec) || !files) {
		json_decref(files);
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "snapshot.json has no spec");
	}
	/* The paths of this host, identified as a save would (file_id). */
	if (kernel) {
		json_object_set_new(spec, "kernel", json_string(kernel));
		json_object_set_new(files, "kernel", file_id(kernel));
	}
	if (initrd) {
		json_object_set_new(spec, "initrd", json_string(initrd));
		json_object_set_new(files, "initrd", file_id(initrd));
	}
	if (disk) {
		json_object_set_new(spec, "rootfs_disk", json_string(disk));
		json_object_set_new(files, "disk", file_id(disk));
	}
	json_object_set_new(meta, "files", files);
	_cleanup_free_ char *text = json_dumps(meta, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return hc_error_set(err, -ENOMEM, "snapshot.json: out of memory");
	r = hc_path_fmt(path, sizeof(path), err, "%s/" HC_LIB_SNAPSHOT_META, dir);
	if (r >= 0)
		r = hc_path_write_file_atomic(path, text, strlen(text), 0600, err);
	return r;
}

int hc_lib_snapshot_restore(const struct hc_lib_snapshot *s, struct hc_vm **ret_vm,
			    int *ret_agent_fd, double *ret_ms, struct hc_error *err)
{
	return hc_lib_snapshot_restore_as(s, NULL, ret_vm, ret_agent_fd, ret_ms, err);
}

int hc_lib_snapshot_restore_as(const struct hc_lib_snapshot *s, const struct hc_lib_restore_as *as,
			       struct hc_vm **ret_vm, int *ret_agent_fd, double *ret_ms,
			       struct hc_error *err)
{
	struct hc_vm_spec spec = s->spec;
	struct hc_vm *vm = NULL;
	double t0 = hc_clock_ms(), t1;
	int r, fd = -1;
	int timeout = s->spec.boot_timeout_ms > 0 ? s->spec.boot_timeout_ms : 60000;
	int reseed_timeout =
		as && as->reseed_timeout_ms > 0 ? as->reseed_timeout_ms : RESEED_TIMEOUT_MS;
	struct hc_lib_net *net = as ? as->net : NULL;

	if (as) {
		spec.cancel_fd = as->cancel_fd;
		spec.no_jail = as->no_jail;
	}
	/* A snapshot of a VM with a network: a network of this copy's own (TAP, /30, MAC,
	 * rules, resolver, -p), which the guest takes over after RESEED (NETCONF). */
	if (s->spec.network != HC_NET_NONE && (s->ops->caps & HC_CAP_NET_TAP)) {
		struct hc_run_opts no = {0};

		if (!net)
			return hc_error_setk(err, -EINVAL, HC_EK_INTERNAL,
					     "restore '%s': the snapshot has a network and the "
					     "caller gave none (hc_lib_restore_as.net)",
					     s->dir);
		if (as->run_opts)
			no = *as->run_opts;
		no.network = s->spec.network;
		r = hc_lib_net_attach_restored(&no, s->ops, &spec, net, err);
		if (r < 0)
			return hc_error_prefix(err, "restore '%s'", s->dir);
	}
	r = hc_vm_new(&vm, s->ops, &spec, err);
	if (r < 0)
		goto fail;
	r = hc_vm_restore(vm, s->dir, err);
	if (r < 0) {
		hc_vm_error_add_console(vm, err);
		goto fail;
	}
	t1 = hc_clock_ms();
	fd = agent_connect(vm, t0 + timeout, err);
	if (fd < 0) {
		r = fd;
		goto fail;
	}
	r = hc_lib_snapshot_reseed_as(fd, reseed_timeout, as ? as->hostname : NULL, err);
	if (r >= 0)
		r = hc_lib_snapshot_renet(fd, net, reseed_timeout, err);
	if (r < 0) {
		struct hc_error e = {0};

		/* A dead VM says more than a dead channel. */
		if (hc_vm_check(vm, &e) < 0)
			*err = e;
		hc_vm_error_add_console(vm, err);
		goto fail;
	}
	if (ret_ms)
		*ret_ms = hc_clock_ms() - t0;
	hc_debug("restored from %s: VMM %.1f ms, agent + RESEED%s %.1f ms", s->dir, t1 - t0,
		 net && net->attached ? " + NETCONF" : "", hc_clock_ms() - t1);
	*ret_vm = vm;
	*ret_agent_fd = fd;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	hc_vm_free(vm);
	if (net)
		hc_lib_net_detach(net);
	return hc_error_prefix(err, "restore '%s'", s->dir);
}
