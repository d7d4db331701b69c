/* SPDX-License-Identifier: MIT */
/*
 * src/lib/snapshot.c without a VM: the spec's JSON round trip and its validation, the snapshot
 * directory's checks on open (missing, not a snapshot, corrupt, another format, an unknown
 * backend, a kernel that changed), and save's sequence against a recording backend (pause,
 * snapshot, snapshot.json, resume; --leave-paused; a paused VM stays paused; a failed
 * snapshot resumes the VM and removes the directory it made; a non-empty directory that is no
 * snapshot is refused), fork's private temp dir.
 */
#include <sys/stat.h>
#include <utime.h>

#include "test.h"
#include "core/path.h"
#include "lib/snapshot.h"

static char tmp[HC_PATH_MAX], kernel[HC_PATH_MAX], disk[HC_PATH_MAX];
static char calls[256];
static bool fail_snapshot;

static int fake_pause(struct hc_vm *vm, struct hc_error *err)
{
	(void)vm;
	(void)err;
	strcat(calls, "pause;");
	return 0;
}

static int fake_resume(struct hc_vm *vm, struct hc_error *err)
{
	(void)vm;
	(void)err;
	strcat(calls, "resume;");
	return 0;
}

static int fake_snapshot(struct hc_vm *vm, const char *dir, struct hc_error *err)
{
	char p[HC_PATH_MAX + 16];

	(void)vm;
	strcat(calls, "snapshot;");
	if (fail_snapshot)
		return hc_error_set(err, -EIO, "the VMM failed");
	snprintf(p, sizeof(p), "%s/state", dir);
	return hc_path_write_file_atomic(p, "x", 1, 0600, err);
}

static const struct hc_vmm_ops fake_ops = {
	.name = "qemu", /* found by name on open: the real table's entry */
	.caps = HC_CAP_ROOTFS_BLOCK | HC_CAP_CHANNEL_SERIAL | HC_CAP_PAUSE | HC_CAP_SNAPSHOT |
		HC_CAP_RESTORE,
	.pause = fake_pause,
	.resume = fake_resume,
	.snapshot = fake_snapshot,
};

static const struct hc_vmm_ops nosnap_ops = {
	.name = "nosnap",
	.caps = HC_CAP_ROOTFS_BLOCK | HC_CAP_CHANNEL_SERIAL | HC_CAP_PAUSE,
	.pause = fake_pause,
	.resume = fake_resume,
};

static const struct hc_volume vols[] = {{"/srv/a", "/data", true}, {"/srv/b", "/b", false}};
static const struct hc_port ports[] = {{.host = 8080, .guest = 80}};

static struct hc_vm_spec base_spec(void)
{
	return (struct hc_vm_spec){
		.cpus = 2,
		.memory_mib = 128,
		.kernel = kernel,
		.cmdline = "hotcell.debug=1",
		.accel = HC_ACCEL_TCG,
		.rootfs_mode = HC_ROOTFS_BLOCK,
		.rootfs_disk = disk,
		.channel = HC_CHANNEL_SERIAL,
		.boot_timeout_ms = 60000,
	};
}

TEST(spec_round_trip)
{
	struct hc_vm_spec s = base_spec(), t;
	struct hc_volume *v = NULL;
	struct hc_port *p = NULL;
	struct hc_error e = {0};

	s.volumes = vols;
	s.n_volumes = 2;
	s.ports = ports;
	s.n_ports = 1;
	s.network = HC_NET_INET;
	json_t *j = hc_lib_snapshot_spec_format(&s);
	ASSERT_TRUE(j != NULL);
	char *text = json_dumps(j, 0);
	json_decref(j);
	j = json_loads(text, 0, NULL);
	free(text);
	ASSERT_OK(hc_lib_snapshot_spec_parse(j, &t, &v, &p, &e), &e);
	ASSERT_EQ_INT(t.cpus, 2);
	ASSERT_EQ_INT(t.memory_mib, 128);
	ASSERT_EQ_STR(t.kernel, kernel);
	ASSERT_TRUE(t.initrd == NULL && t.rootfs_dir == NULL);
	ASSERT_EQ_STR(t.rootfs_disk, disk);
	ASSERT_EQ_STR(t.cmdline, "hotcell.debug=1");
	ASSERT_EQ_INT(t.accel, HC_ACCEL_TCG);
	ASSERT_EQ_INT(t.rootfs_mode, HC_ROOTFS_BLOCK);
	ASSERT_EQ_INT(t.channel, HC_CHANNEL_SERIAL);
	ASSERT_EQ_INT(t.network, HC_NET_INET);
	ASSERT_EQ_INT(t.n_volumes, 2);
	ASSERT_EQ_STR(t.volumes[1].host, "/srv/b");
	ASSERT_EQ_STR(t.volumes[0].guest, "/data");
	ASSERT_TRUE(t.volumes[0].readonly && !t.volumes[1].readonly);
	ASSERT_EQ_INT(t.n_ports, 1);
	ASSERT_EQ_INT(t.ports[0].host, 8080);
	ASSERT_EQ_INT(t.boot_timeout_ms, 60000);
	free(v);
	free(p);

	/* Each bad field is named. */
	json_object_set_new(j, "channel", json_string("carrier-pigeon"));
	ASSERT_EQ_INT(hc_lib_snapshot_spec_parse(j, &t, &v, &p, &e), -EINVAL);
	ASSERT_EQ_STR(e.message, "spec: channel is missing or invalid");
	json_object_set_new(j, "channel", json_string("serial"));
	json_object_set_new(j, "cpus", json_integer(0));
	ASSERT_EQ_INT(hc_lib_snapshot_spec_parse(j, &t, &v, &p, &e), -EINVAL);
	ASSERT_EQ_STR(e.message, "spec: cpus is missing or invalid");
	json_object_set_new(j, "cpus", json_integer(1));
	json_object_del(j, "rootfs_disk");
	ASSERT_EQ_INT(hc_lib_snapshot_spec_parse(j, &t, &v, &p, &e), -EINVAL);
	json_decref(j);
}

static void reset(void)
{
	calls[0] = '\0';
	fail_snapshot = false;
}

TEST(save_sequence)
{
	struct hc_vm_spec s = base_spec();
	struct hc_lib_snapshot_origin o = {.image = "docker.io/library/alpine:3.20",
					   .digest = "sha256:abcd"};
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	char dir[HC_PATH_MAX], p[HC_PATH_MAX + 32];
	double ms = -1;

	ASSERT_OK(hc_vm_new(&vm, &fake_ops, &s, &e), &e);
	snprintf(dir, sizeof(dir), "%s/snaps/one", tmp);
	reset();
	ASSERT_OK(hc_lib_snapshot_save(vm, dir, &o, false, false, &ms, &e), &e);
	ASSERT_EQ_STR(calls, "pause;snapshot;resume;");
	ASSERT_TRUE(ms >= 0);
	snprintf(p, sizeof(p), "%s/snapshot.json", dir);
	ASSERT_TRUE(access(p, R_OK) == 0);

	/* It opens, and says what it is. */
	struct hc_lib_snapshot *snap = NULL;
	ASSERT_OK(hc_lib_snapshot_open(dir, &snap, &e), &e);
	ASSERT_EQ_STR(snap->ops->name, "qemu");
	ASSERT_EQ_STR(snap->image, "docker.io/library/alpine:3.20");
	ASSERT_EQ_STR(snap->digest, "sha256:abcd");
	ASSERT_EQ_INT(snap->spec.memory_mib, 128);
	ASSERT_EQ_STR(snap->spec.rootfs_disk, disk);
	hc_lib_snapshot_close(snap);

	/* --leave-paused; a paused VM stays paused; a snapshot is replaced in place. */
	reset();
	ASSERT_OK(hc_lib_snapshot_save(vm, dir, &o, false, true, NULL, &e), &e);
	ASSERT_EQ_STR(calls, "pause;snapshot;");
	reset();
	ASSERT_OK(hc_lib_snapshot_save(vm, dir, &o, true, false, NULL, &e), &e);
	ASSERT_EQ_STR(calls, "snapshot;");

	/* A failed snapshot resumes the VM, and removes the directory it made. */
	reset();
	fail_snapshot = true;
	snprintf(dir, sizeof(dir), "%s/snaps/two", tmp);
	ASSERT_EQ_INT(hc_lib_snapshot_save(vm, dir, &o, false, false, NULL, &e), -EIO);
	ASSERT_EQ_STR(calls, "pause;snapshot;resume;");
	ASSERT_TRUE(strstr(e.message, "the VMM failed") != NULL);
	ASSERT_TRUE(access(dir, F_OK) < 0);

	/* A directory with something else in it is not overwritten. */
	reset();
	snprintf(dir, sizeof(dir), "%s/snaps", tmp);
	ASSERT_EQ_INT(hc_lib_snapshot_save(vm, dir, &o, false, false, NULL, &e), -EEXIST);
	ASSERT_TRUE(strstr(e.message, "neither empty nor a snapshot") != NULL);
	ASSERT_EQ_STR(calls, "");

	/* fork's private temp dir, with a snapshot in it. */
	reset();
	ASSERT_OK(hc_lib_snapshot_fork_save(vm, &o, false, dir, NULL, &e), &e);
	ASSERT_EQ_STR(calls, "pause;snapshot;resume;");
	snprintf(p, sizeof(p), "%s/snapshot.json", dir);
	ASSERT_TRUE(access(p, R_OK) == 0);
	struct stat st;
	ASSERT_TRUE(stat(dir, &st) == 0 && (st.st_mode & 077) == 0);
	ASSERT_OK(hc_path_rm_rf(dir, &e), &e);
	hc_vm_free(vm);

	/* A backend without snapshots: refused before anything is paused or made. */
	ASSERT_OK(hc_vm_new(&vm, &nosnap_ops, &s, &e), &e);
	reset();
	snprintf(dir, sizeof(dir), "%s/snaps/three", tmp);
	ASSERT_EQ_INT(hc_lib_snapshot_save(vm, dir, &o, false, false, NULL, &e), -EOPNOTSUPP);
	ASSERT_EQ_STR(e.message, "backend 'nosnap' does not support snapshots");
	ASSERT_EQ_STR(calls, "");
	ASSERT_TRUE(access(dir, F_OK) < 0);
	ASSERT_EQ_INT(hc_lib_snapshot_fork_save(vm, &o, false, dir, NULL, &e), -EOPNOTSUPP);
	hc_vm_free(vm);
}

static int write_meta(const char *dir, const char *text)
{
	char p[HC_PATH_MAX + 32];
	struct hc_error e = {0};

	mkdir(dir, 0700);
	snprintf(p, sizeof(p), "%s/snapshot.json", dir);
	return hc_path_write_file_atomic(p, text, strlen(text), 0600, &e);
}

TEST(open_refuses)
{
	struct hc_vm_spec s = base_spec();
	struct hc_lib_snapshot *snap = NULL;
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	char dir[HC_PATH_MAX], p[HC_PATH_MAX + 32];

	snprintf(dir, sizeof(dir), "%s/nope", tmp);
	ASSERT_EQ_INT(hc_lib_snapshot_open(dir, &snap, &e), -ENOENT);
	ASSERT_TRUE(strstr(e.message, "No such file or directory") != NULL);
	ASSERT_EQ_INT(hc_lib_snapshot_open(kernel, &snap, &e), -ENOTDIR);

	snprintf(dir, sizeof(dir), "%s/empty", tmp);
	mkdir(dir, 0700);
	ASSERT_EQ_INT(hc_lib_snapshot_open(dir, &snap, &e), -ENOENT);
	ASSERT_TRUE(strstr(e.message, "is not a hotcell snapshot") != NULL);

	snprintf(dir, sizeof(dir), "%s/corrupt", tmp);
	ASSERT_OK(write_meta(dir, "{\"format\": 1, \"backend\": "), &e);
	ASSERT_EQ_INT(hc_lib_snapshot_open(dir, &snap, &e), -EINVAL);
	ASSERT_TRUE(strstr(e.message, "snapshot.json is corrupt") != NULL);

	snprintf(dir, sizeof(dir), "%s/future", tmp);
	ASSERT_OK(write_meta(dir, "{\"format\": 9, \"backend\": \"qemu\"}"), &e);
	ASSERT_EQ_INT(hc_lib_snapshot_open(dir, &snap, &e), -EPROTO);
	ASSERT_TRUE(strstr(e.message, "has format 9; this hotcell reads format 1") != NULL);

	snprintf(dir, sizeof(dir), "%s/alien", tmp);
	ASSERT_OK(write_meta(dir, "{\"format\": 1, \"backend\": \"bochs\"}"), &e);
	ASSERT_EQ_INT(hc_lib_snapshot_open(dir, &snap, &e), -EINVAL);
	ASSERT_TRUE(strstr(e.message, "backend 'bochs'") != NULL);

	snprintf(dir, sizeof(dir), "%s/krun", tmp);
	ASSERT_OK(write_meta(dir, "{\"format\": 1, \"backend\": \"libkrun\"}"), &e);
	ASSERT_EQ_INT(hc_lib_snapshot_open(dir, &snap, &e), -EOPNOTSUPP);
	ASSERT_EQ_STR(e.message, "backend 'libkrun' does not support restore");

	/* A good snapshot whose kernel was rebuilt since, or whose disk is gone. */
	snprintf(dir, sizeof(dir), "%s/stale", tmp);
	ASSERT_OK(hc_vm_new(&vm, &fake_ops, &s, &e), &e);
	reset();
	ASSERT_OK(hc_lib_snapshot_save(vm, dir, NULL, false, false, NULL, &e), &e);
	hc_vm_free(vm);
	ASSERT_OK(hc_lib_snapshot_open(dir, &snap, &e), &e);
	hc_lib_snapshot_close(snap);
	struct utimbuf t = {.actime = 1000000, .modtime = 1000000};
	ASSERT_TRUE(utime(kernel, &t) == 0);
	ASSERT_EQ_INT(hc_lib_snapshot_open(dir, &snap, &e), -ESTALE);
	ASSERT_TRUE(strstr(e.message, "has changed since the snapshot was taken") != NULL);
	ASSERT_TRUE(strstr(e.message, kernel) != NULL);
	snprintf(dir, sizeof(dir), "%s/stale2", tmp);
	ASSERT_OK(hc_vm_new(&vm, &fake_ops, &s, &e), &e);
	ASSERT_OK(hc_lib_snapshot_save(vm, dir, NULL, false, false, NULL, &e), &e);
	hc_vm_free(vm);
	snprintf(p, sizeof(p), "%s.gone", disk);
	ASSERT_TRUE(rename(disk, p) == 0);
	ASSERT_EQ_INT(hc_lib_snapshot_open(dir, &snap, &e), -ENOENT);
	ASSERT_TRUE(strstr(e.message, "the snapshot's disk") != NULL);
	ASSERT_TRUE(rename(p, disk) == 0);
	ASSERT_OK(hc_lib_snapshot_open(dir, &snap, &e), &e);
	hc_lib_snapshot_close(snap);
}

int main(void)
{
	struct hc_error e = {0};

	snprintf(tmp, sizeof(tmp), "/tmp/hc-test-snapshot.XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	snprintf(kernel, sizeof(kernel), "%s/vmlinux", tmp);
	snprintf(disk, sizeof(disk), "%s/rootfs.ext4", tmp);
	if (hc_path_write_file_atomic(kernel, "kernel", 6, 0644, &e) < 0 ||
	    hc_path_write_file_atomic(disk, "disk", 4, 0644, &e) < 0)
		return 1;
	RUN(spec_round_trip);
	RUN(save_sequence);
	RUN(open_refuses);
	hc_path_rm_rf(tmp, NULL);
	return test_summary();
}
