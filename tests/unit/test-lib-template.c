/* SPDX-License-Identifier: MIT */
/*
 * src/lib/template.c without a VM: which runs may be warm at all; the key (every part counts,
 * the hostname does not); one builder per key (the lock); a save that works (temp + rename,
 * then the next lookup is warm), one that fails (a full disk: nothing left, the next run
 * builds); the fallbacks of a template that cannot be used (its kernel changed, a corrupt or
 * truncated file, a restore that fails: removed and rebuilt); template_size and prune.
 */
#include <dirent.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <utime.h>

#include "test.h"
#include "core/path.h"
#include "lib/template.h"
#include "oci/store.h"

static char tmp[HC_PATH_MAX], kernel[HC_PATH_MAX], initrd[HC_PATH_MAX], disk[HC_PATH_MAX];
static char identity[64] = "qemu-test 1";
static int snapshot_errno;

static int fake_identity(char *buf, size_t n, struct hc_error *err)
{
	(void)err;
	snprintf(buf, n, "%s", identity);
	return 0;
}

static int fake_pause(struct hc_vm *vm, struct hc_error *err)
{
	(void)vm;
	(void)err;
	return 0;
}

/* Writes the files of a QEMU snapshot (qemu-state, memory) as the real backend names them, so
 * that a restore through the real table's "qemu" gets as far as its own checks. */
static int fake_snapshot(struct hc_vm *vm, const char *dir, struct hc_error *err)
{
	char p[HC_PATH_MAX + 16];
	int r;

	if (snapshot_errno)
		return hc_error_errno(err, -snapshot_errno, "write %s/memory", dir);
	snprintf(p, sizeof(p), "%s/qemu-state", dir);
	r = hc_path_write_file_atomic(p, "QEVM", 4, 0600, err);
	snprintf(p, sizeof(p), "%s/memory", dir);
	if (r >= 0)
		r = hc_path_write_file_atomic(p, "", 0, 0600, err);
	if (r >= 0 && truncate(p, (off_t)vm->spec.memory_mib << 20) < 0)
		r = hc_error_errno(err, -errno, "truncate");
	return r;
}

static const struct hc_vmm_ops fake_ops = {
	.name = "qemu", /* found by name on open: the real table's entry */
	.caps = HC_CAP_ROOTFS_BLOCK | HC_CAP_CHANNEL_SERIAL | HC_CAP_PAUSE | HC_CAP_SNAPSHOT |
		HC_CAP_RESTORE | HC_CAP_SNAPSHOT_NEEDS_BLOCK | HC_CAP_SNAPSHOT_NEEDS_SERIAL,
	.pause = fake_pause,
	.resume = fake_pause,
	.snapshot = fake_snapshot,
	.identity = fake_identity,
};

static struct hc_store store;

static void boot_init(struct hc_lib_boot *b)
{
	memset(b, 0, sizeof(*b));
	b->ops = &fake_ops;
	snprintf(b->image.name, sizeof(b->image.name), "localhost/bb:latest");
	snprintf(b->image.digest, sizeof(b->image.digest), "sha256:%064d", 7);
	b->spec = (struct hc_vm_spec){
		.cpus = 1,
		.memory_mib = 16,
		.kernel = kernel,
		.initrd = initrd,
		.cmdline = "hotcell.debug=1",
		.accel = HC_ACCEL_TCG,
		.rootfs_mode = HC_ROOTFS_BLOCK,
		.rootfs_disk = disk,
		.channel = HC_CHANNEL_SERIAL,
		.boot_timeout_ms = 60000,
	};
}

static void lookup(const struct hc_lib_boot *b, struct hc_lib_template *t)
{
	*t = (struct hc_lib_template)HC_LIB_TEMPLATE_INIT;
	hc_lib_template_lookup(&store, b, t);
}

static void key_of(const struct hc_lib_boot *b, char *key)
{
	struct hc_lib_template t;

	lookup(b, &t);
	snprintf(key, 65, "%s", t.key);
	hc_lib_template_release(&t);
}

static size_t count_entries(const char *prefix)
{
	char root[HC_PATH_MAX + 16];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(root, sizeof(root), "%s/templates", tmp);
	d = opendir(root);
	while (d && (de = readdir(d)))
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	if (d)
		closedir(d);
	return n;
}

TEST(refusals)
{
	struct hc_run_opts o;
	const struct hc_volume v = {"/srv", "/data", false};
	const struct hc_port p = {.host = 80, .guest = 80};

	hc_run_opts_init(&o);
	o.image = "bb";
	o.no_jail = true;
	ASSERT_TRUE(hc_lib_template_refusal(&o) == NULL);
	o.cold = true;
	ASSERT_EQ_STR(hc_lib_template_refusal(&o), "--cold");
	o.cold = false;
	o.volumes = &v;
	o.n_volumes = 1;
	ASSERT_TRUE(strstr(hc_lib_template_refusal(&o), "volumes") != NULL);
	o.n_volumes = 0;
	o.rootfs_mode = HC_ROOTFS_DIR;
	ASSERT_TRUE(strstr(hc_lib_template_refusal(&o), "directory rootfs") != NULL);
	o.rootfs_mode = HC_ROOTFS_BLOCK;
	ASSERT_TRUE(hc_lib_template_refusal(&o) == NULL);
	o.network = HC_NET_INET;
	ASSERT_TRUE(hc_lib_template_refusal(&o) == NULL); /* restored onto a network of its own */
	o.network = HC_NET_NONE;
	o.ports = &p;
	o.n_ports = 1;
	ASSERT_TRUE(hc_lib_template_refusal(&o) != NULL);
	o.n_ports = 0;
	o.image = NULL;
	o.rootfs_dir = "/srv";
	ASSERT_TRUE(hc_lib_template_refusal(&o) != NULL);
	o.rootfs_dir = NULL;
	o.image = "bb";
	setenv("HOTCELL_TEMPLATES", "0", 1);
	ASSERT_TRUE(hc_lib_template_refusal(&o) != NULL);
	unsetenv("HOTCELL_TEMPLATES");
	o.jailer = true;
	ASSERT_TRUE(hc_lib_template_refusal(&o) != NULL);
}

TEST(key_parts)
{
	struct hc_lib_boot b;
	char k0[65], k[65];
	struct utimbuf ut = {.actime = 1000000, .modtime = 1000000};

	boot_init(&b);
	key_of(&b, k0);
	ASSERT_EQ_INT(strlen(k0), 64);
	key_of(&b, k);
	ASSERT_EQ_STR(k, k0);
	/* Its own hostname is a restored copy's (HOSTNAME frame): not part of the key. */
	b.spec.cmdline = "hotcell.debug=1 hotcell.hostname=box";
	key_of(&b, k);
	ASSERT_EQ_STR(k, k0);
	b.spec.cmdline = "hotcell.debug=1 hotcell.root_ro=1";
	key_of(&b, k);
	ASSERT_TRUE(strcmp(k, k0) != 0);
	boot_init(&b);
#define DIFFERS(change)                                                                            \
	do {                                                                                       \
		boot_init(&b);                                                                     \
		change;                                                                            \
		key_of(&b, k);                                                                     \
		if (strcmp(k, k0) == 0)                                                            \
			FAILF("same key after %s", #change);                                       \
	} while (0)
	DIFFERS(b.spec.cpus = 2);
	DIFFERS(b.spec.memory_mib = 32);
	DIFFERS(b.spec.accel = HC_ACCEL_KVM);
	DIFFERS(b.image.digest[10] = '1');
	DIFFERS(snprintf(identity, sizeof(identity), "qemu-test 2"));
	snprintf(identity, sizeof(identity), "qemu-test 1");
	/* A rebuilt kernel or initramfs is another file (size, mtime, inode). */
	DIFFERS(utime(kernel, &ut));
	ASSERT_TRUE(utime(kernel, NULL) == 0);
	key_of(&b, k0);
	DIFFERS(utime(initrd, &ut));
	DIFFERS(utime(disk, &ut));
#undef DIFFERS
}

TEST(one_builder_save_then_warm)
{
	struct hc_lib_boot b;
	struct hc_lib_template t1, t2;
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	double ms = -1;

	boot_init(&b);
	b.spec.cpus = 3; /* a key of this test's own */
	lookup(&b, &t1);
	ASSERT_EQ_INT(t1.state, HC_TPL_BUILD);
	/* A concurrent first run does not build a second one: it boots cold. */
	lookup(&b, &t2);
	ASSERT_EQ_INT(t2.state, HC_TPL_COLD);
	ASSERT_TRUE(strstr(t2.why_cold, "another run is building") != NULL);
	hc_lib_template_release(&t2);

	ASSERT_OK(hc_vm_new(&vm, &fake_ops, &b.spec, &e), &e);
	hc_lib_template_save(&t1, vm, &b, -1, &ms);
	ASSERT_TRUE(ms > 0);
	ASSERT_TRUE(hc_path_exists(t1.dir));
	ASSERT_EQ_INT(count_entries(".tmp-"), 0);
	hc_vm_free(vm);
	/* Still locked by t1 until released: a lookup now finds it whole, and warm. */
	lookup(&b, &t2);
	ASSERT_EQ_INT(t2.state, HC_TPL_WARM);
	ASSERT_TRUE(t2.snap != NULL && t2.snap->spec.cpus == 3);
	hc_lib_template_release(&t2);
	hc_lib_template_release(&t1);
	lookup(&b, &t2);
	ASSERT_EQ_INT(t2.state, HC_TPL_WARM);
	hc_lib_template_release(&t2);
	ASSERT_TRUE(hc_lib_template_size(tmp, b.image.digest) >= 4);
	ASSERT_EQ_INT(hc_lib_template_size(tmp, "sha256:none"), 0);
}

/* The guest side of the warm-up: one EXEC of `true` on its own stream, answered EXIT (or, with
 * hang_up, the channel closed). Exits 0 when the request was the expected one. */
static void fake_guest(int fd, bool hang_up)
{
	struct hc_buf in = HC_BUF_INIT(HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD);
	struct hc_buf out = HC_BUF_INIT(0);
	struct hc_proto_frame f;
	struct hc_proto_exec x;
	struct hc_proto_exit e = {0};
	size_t used;
	int ok;

	if (hc_proto_frame_read(fd, &in, &f, &used) != 1 || f.type != HC_FRAME_EXEC ||
	    f.stream == 1 || hc_proto_exec_decode(&f, &x) < 0)
		_exit(2);
	ok = strcmp(x.argv[0], "true") == 0 && x.argc == 1;
	if (hang_up)
		_exit(ok ? 0 : 3);
	if (hc_proto_started_encode(&out, f.stream, 7) < 0 ||
	    hc_proto_exit_encode(&out, f.stream, &e) < 0 ||
	    write(fd, out.data, out.len) != (ssize_t)out.len)
		_exit(4);
	_exit(ok ? 0 : 3);
}

TEST(warm_up_command_before_the_save)
{
	struct hc_lib_boot b;
	struct hc_lib_template t;
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	double ms = -1;
	int sp[2], st = -1;
	pid_t pid;

	for (int hang_up = 0; hang_up <= 1; hang_up++) {
		boot_init(&b);
		b.spec.cpus = 8 + hang_up;
		lookup(&b, &t);
		ASSERT_EQ_INT(t.state, HC_TPL_BUILD);
		ASSERT_OK(hc_vm_new(&vm, &fake_ops, &b.spec, &e), &e);
		ASSERT_TRUE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
		pid = fork();
		if (pid == 0) {
			close(sp[0]);
			fake_guest(sp[1], hang_up);
		}
		close(sp[1]);
		hc_lib_template_save(&t, vm, &b, sp[0], &ms);
		close(sp[0]);
		ASSERT_TRUE(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
		/* Answered: saved. The channel gone: its state unknown, nothing saved. */
		ASSERT_TRUE(hc_path_exists(t.dir) == !hang_up);
		ASSERT_EQ_INT(count_entries(".tmp-"), 0);
		hc_vm_free(vm);
		hc_lib_template_release(&t);
	}
}

TEST(full_disk_while_saving)
{
	struct hc_lib_boot b;
	struct hc_lib_template t;
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	double ms = -1;

	boot_init(&b);
	b.spec.cpus = 4;
	lookup(&b, &t);
	ASSERT_EQ_INT(t.state, HC_TPL_BUILD);
	ASSERT_OK(hc_vm_new(&vm, &fake_ops, &b.spec, &e), &e);
	snapshot_errno = ENOSPC;
	hc_lib_template_save(&t, vm, &b, -1, &ms);
	snapshot_errno = 0;
	ASSERT_TRUE(ms == 0);
	ASSERT_TRUE(!hc_path_exists(t.dir));
	ASSERT_EQ_INT(count_entries(".tmp-"), 0);
	hc_vm_free(vm);
	hc_lib_template_release(&t);
	/* The next run tries again. */
	lookup(&b, &t);
	ASSERT_EQ_INT(t.state, HC_TPL_BUILD);
	hc_lib_template_release(&t);
}

/* Builds a template for b; returns its dir in dir. */
static void build(const struct hc_lib_boot *b, char *dir)
{
	struct hc_lib_template t;
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	double ms;

	lookup(b, &t);
	if (t.state == HC_TPL_BUILD && hc_vm_new(&vm, &fake_ops, &b->spec, &e) == 0) {
		hc_lib_template_save(&t, vm, b, -1, &ms);
		hc_vm_free(vm);
	}
	snprintf(dir, HC_PATH_MAX, "%s", t.dir);
	hc_lib_template_release(&t);
}

TEST(unusable_templates_are_rebuilt)
{
	struct hc_lib_boot b;
	struct hc_lib_template t;
	char dir[HC_PATH_MAX], p[HC_PATH_MAX + 32];
	struct hc_error e = {0};
	struct hc_run_opts o;
	struct hc_vm *vm = NULL;
	int fd = -1;
	double ms;

	boot_init(&b);
	b.spec.cpus = 5;
	hc_run_opts_init(&o);

	/* A truncated snapshot.json: unusable, removed, this run builds. */
	build(&b, dir);
	snprintf(p, sizeof(p), "%s/snapshot.json", dir);
	ASSERT_TRUE(truncate(p, 10) == 0);
	lookup(&b, &t);
	ASSERT_EQ_INT(t.state, HC_TPL_BUILD);
	ASSERT_TRUE(!hc_path_exists(dir));
	hc_lib_template_release(&t);

	/* A template.json of another key (a corrupt one). */
	build(&b, dir);
	snprintf(p, sizeof(p), "%s/template.json", dir);
	ASSERT_OK(hc_path_write_file_atomic(p, "{\"key\": 1}", 10, 0600, &e), &e);
	lookup(&b, &t);
	ASSERT_EQ_INT(t.state, HC_TPL_BUILD);
	hc_lib_template_release(&t);

	/* Built again, it is warm. */
	build(&b, dir);
	lookup(&b, &t);
	ASSERT_EQ_INT(t.state, HC_TPL_WARM);
	hc_lib_template_release(&t);

	/* A truncated state file: the restore fails before any VMM runs (QEMU refuses a memory
	 * file of the wrong size), the template goes, this run boots cold and rebuilds it. */
	snprintf(p, sizeof(p), "%s/memory", dir);
	ASSERT_TRUE(truncate(p, 4096) == 0);
	lookup(&b, &t);
	ASSERT_EQ_INT(t.state, HC_TPL_WARM);
	ASSERT_TRUE(hc_lib_template_restore(&t, &o, NULL, &vm, &fd, &ms, &e) < 0);
	ASSERT_TRUE(strstr(e.message, "bytes of RAM") != NULL);
	ASSERT_EQ_INT(t.state, HC_TPL_BUILD);
	ASSERT_TRUE(!hc_path_exists(dir));
	hc_lib_template_release(&t);
}

TEST(prune)
{
	struct hc_lib_boot b;
	struct hc_lib_template t;
	struct hc_error e = {0};
	char dir[HC_PATH_MAX];
	int n;

	boot_init(&b);
	b.spec.cpus = 6;
	build(&b, dir);
	ASSERT_TRUE(hc_path_exists(dir));
	/* One being built is left alone. */
	boot_init(&b);
	b.spec.cpus = 7;
	lookup(&b, &t);
	ASSERT_EQ_INT(t.state, HC_TPL_BUILD);
	n = hc_lib_template_prune(tmp, &e);
	ASSERT_TRUE(n >= 1);
	ASSERT_TRUE(!hc_path_exists(dir));
	ASSERT_EQ_INT(count_entries(".old-"), 0);
	/* Only the lock of the one being built is left. */
	ASSERT_EQ_INT(count_entries(""), 3); /* ".", "..", its lock */
	/* Released without a template: its lock file and the empty templates dir go too. */
	hc_lib_template_release(&t);
	ASSERT_EQ_INT(count_entries(""), 0); /* no directory to read */
	ASSERT_EQ_INT(hc_lib_template_prune(tmp, &e), 0);
}

int main(void)
{
	struct hc_error e = {0};

	snprintf(tmp, sizeof(tmp), "/tmp/hc-test-template-XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	snprintf(kernel, sizeof(kernel), "%s/vmlinux", tmp);
	snprintf(initrd, sizeof(initrd), "%s/initramfs.cpio", tmp);
	snprintf(disk, sizeof(disk), "%s/disk.ext4", tmp);
	if (hc_path_write_file_atomic(kernel, "k", 1, 0644, &e) < 0 ||
	    hc_path_write_file_atomic(initrd, "i", 1, 0644, &e) < 0 ||
	    hc_path_write_file_atomic(disk, "d", 1, 0644, &e) < 0)
		return 1;
	snprintf(store.state_dir, sizeof(store.state_dir), "%s", tmp);
	RUN(refusals);
	RUN(key_parts);
	RUN(one_builder_save_then_warm);
	RUN(warm_up_command_before_the_save);
	RUN(full_disk_while_saving);
	RUN(unusable_templates_are_rebuilt);
	RUN(prune);
	hc_path_rm_rf(tmp, NULL);
	return test_summary();
}
