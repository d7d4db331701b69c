/* SPDX-License-Identifier: MIT */
/*
 * Boots real VMs through the QEMU backend (hc_vm_new / hc_vm_start / hc_vm_check / hc_vm_free),
 * with a tiny test init (tests/e2e/vm-testinit.c, compiled static here) in a generated
 * initramfs, so the backend is tested without hotcell-init and the protocol:
 *   - dir rootfs + serial channel; the image is read-only from the host's side even after the
 *     guest remounts the share read-write;
 *   - block rootfs + vsock channel (vhost-device-vsock, hybrid convention);
 *   - -v volumes, read-write and read-only;
 *   - a guest reboot and a guest kernel panic, seen through death_fd + check();
 *   - pause/resume over QMP;
 *   - nothing left behind: no process, no runtime dir.
 * SKIPs (with the reason) when there is no kernel, QEMU, virtiofsd or static C compiler.
 * Prints "# ..." lines with the boot time (start to the guest's first byte) and host RSS.
 */
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "test.h"
#include "core/child.h"
#include "core/clock.h"
#include "core/path.h"
#include "vmm/accel.h"
#include "vmm/hvsock.h"
#include "vmm/qemu.h"
#include "vmm/vmm.h"

#define IO_TIMEOUT_MS 120000

static char kernel[HC_PATH_MAX], initrd[HC_PATH_MAX], tmp[HC_PATH_MAX];
static const char *skip_all;
static enum hc_accel accel;

/* ---- setup: kernel, init, initramfs ------------------------------------------------------ */

static bool find_kernel(void)
{
	const char *env = getenv("HOTCELL_KERNEL"), *top = getenv("HOTCELL_TOP"),
		   *build = getenv("BUILD");
	glob_t g;

	if (env && access(env, R_OK) == 0) {
		snprintf(kernel, sizeof(kernel), "%s", env);
		return true;
	}
	snprintf(kernel, sizeof(kernel), "%s/%s/kernel/bzImage", top ? top : ".",
		 build ? build : "build");
	if (access(kernel, R_OK) == 0)
		return true;
	if (glob("/var/cache/hotcell/kernel/*/bzImage", 0, NULL, &g) == 0 && g.gl_pathc) {
		snprintf(kernel, sizeof(kernel), "%s", g.gl_pathv[g.gl_pathc - 1]);
		globfree(&g);
		return true;
	}
	return false;
}

/* newc cpio (the kernel's initramfs format, Documentation/driver-api/early-userspace/
 * buffer-format.rst): one header per entry, name and data each padded to 4 bytes. */
static void cpio_entry(FILE *f, const char *name, unsigned mode, unsigned rmaj, unsigned rmin,
		       const void *data, size_t len)
{
	static unsigned ino = 1;
	size_t namesize = strlen(name) + 1;

	fprintf(f, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ino++, mode, 0,
		0, 1, 0, len, 0, 0, rmaj, rmin, namesize, 0);
	fwrite(name, 1, namesize, f);
	for (size_t pad = (110 + namesize) % 4; pad && pad < 4; pad++)
		fputc(0, f);
	if (len) {
		fwrite(data, 1, len, f);
		for (size_t pad = len % 4; pad && pad < 4; pad++)
			fputc(0, f);
	}
}

static const char *setup(void)
{
	struct hc_error e = { 0 };
	char src[HC_PATH_MAX], init[HC_PATH_MAX], version[64];
	const char *top = getenv("HOTCELL_TOP");
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r;

	if (!find_kernel())
		return "no guest kernel (build/kernel/bzImage, the kernel cache or HOTCELL_KERNEL)";
	if (hc_vmm_qemu_ops.probe(NULL, version, sizeof(version), &e) < 0)
		return "qemu not usable here";
	snprintf(tmp, sizeof(tmp), "/tmp/hc-qemu-boot.XXXXXX");
	if (!mkdtemp(tmp))
		return "mkdtemp failed";
	snprintf(src, sizeof(src), "%s/tests/e2e/vm-testinit.c", top ? top : ".");
	snprintf(init, sizeof(init), "%s/init", tmp);
	const char *cc[] = { "cc", "-static", "-O2", "-o", init, src, NULL };
	r = hc_child_run(cc, 120000, 65536, NULL, &e);
	if (r != 0)
		return "cannot build the static test init (cc -static)";
	if (hc_path_read_file(init, 16 << 20, &data, &len, &e) < 0)
		return "cannot read the test init";
	snprintf(initrd, sizeof(initrd), "%s/initramfs.cpio", tmp);
	FILE *f = fopen(initrd, "we");
	if (!f)
		return "cannot write the initramfs";
	cpio_entry(f, "dev", 040755, 0, 0, NULL, 0);
	cpio_entry(f, "dev/console", 020600, 5, 1, NULL, 0);
	cpio_entry(f, "init", 0100755, 0, 0, data, len);
	cpio_entry(f, "TRAILER!!!", 0, 0, 0, NULL, 0);
	if (fclose(f) != 0)
		return "cannot write the initramfs";
	if (hc_accel_resolve(HC_ACCEL_AUTO, false, true, &accel, NULL, 0, &e) < 0)
		return "no accelerator";
	printf("# kernel %s, %s, accel %s\n", kernel, version, hc_accel_name(accel));
	return NULL;
}

/* ---- talking to the test init ------------------------------------------------------------- */

struct vmt {
	struct hc_vm *vm;
	int fd; /* the agent channel */
	double t_start, t_started, t_first_byte;
};

static int read_line(struct vmt *t, char *buf, size_t n)
{
	size_t i = 0;

	while (i + 1 < n) {
		struct pollfd p = { .fd = t->fd, .events = POLLIN };
		char c;

		if (poll(&p, 1, IO_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		if (read(t->fd, &c, 1) != 1)
			return -EPIPE;
		if (!t->t_first_byte)
			t->t_first_byte = hc_clock_ms();
		if (c == '\n')
			break;
		buf[i++] = c;
	}
	buf[i] = '\0';
	return 0;
}

/* Sends a command and returns the reply line in a static buffer ("" on failure). */
static const char *cmd(struct vmt *t, const char *line)
{
	static char reply[512];

	reply[0] = '\0';
	if (write(t->fd, line, strlen(line)) < 0 || write(t->fd, "\n", 1) < 0)
		return "";
	if (read_line(t, reply, sizeof(reply)) < 0)
		return "";
	return reply;
}

static int boot(struct vmt *t, const struct hc_vm_spec *spec, struct hc_error *e)
{
	char hello[64];
	int r;

	*t = (struct vmt){ .fd = -1 };
	r = hc_vm_new(&t->vm, &hc_vmm_qemu_ops, spec, e);
	if (r < 0)
		return r;
	t->t_start = hc_clock_ms();
	r = hc_vm_start(t->vm, e);
	if (r < 0)
		return r;
	t->t_started = hc_clock_ms();
	if (t->vm->agent_fd >= 0) {
		t->fd = dup(t->vm->agent_fd);
	} else {
		t->fd = hc_hvsock_accept(t->vm->agent_listen_fd, -1, IO_TIMEOUT_MS, e);
		if (t->fd < 0)
			return t->fd;
	}
	r = read_line(t, hello, sizeof(hello));
	if (r < 0) {
		hc_vm_check(t->vm, e);
		return hc_error_set(e, r, "no hello from the guest (%s)", e->message);
	}
	if (strcmp(hello, "hello") != 0)
		return hc_error_set(e, -EPROTO, "unexpected greeting '%s'", hello);
	return 0;
}

static long rss_kib(pid_t pid)
{
	char p[64], line[256];
	long kib = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static long pss_kib(pid_t pid)
{
	char p[64], line[256];
	long kib = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Pss: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* A process and all its descendants (virtiofsd forks into its own namespaces). */
static long tree_rss_kib(pid_t pid, pid_t *pids, size_t *n, size_t max)
{
	char p[96], buf[1024];
	long sum = rss_kib(pid);
	FILE *f;

	if (*n < max)
		pids[(*n)++] = pid;
	snprintf(p, sizeof(p), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = fopen(p, "re");
	if (!f)
		return sum;
	if (fgets(buf, sizeof(buf), f)) {
		char *s = buf, *end;

		for (long c = strtol(s, &end, 10); end != s; c = strtol(s, &end, 10)) {
			sum += tree_rss_kib((pid_t)c, pids, n, max);
			s = end;
		}
	}
	fclose(f);
	return sum;
}

/* Every pid of the VM (QEMU, helpers and their children) for the leftover check. */
static size_t vm_pids(struct hc_vm *vm, pid_t *pids, size_t max, long *rss)
{
	size_t n = 0;
	pid_t self = getpid();

	*rss = tree_rss_kib(self, pids, &n, max) - rss_kib(self);
	/* drop ourselves */
	memmove(pids, pids + 1, (n - 1) * sizeof(*pids));
	return n - 1;
}

static bool all_gone(const pid_t *pids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (kill(pids[i], 0) == 0)
			return false;
	return true;
}

static struct hc_vm_spec spec_for(enum hc_rootfs_mode mode, enum hc_channel ch)
{
	struct hc_vm_spec s = {
		.cpus = 1,
		.memory_mib = 256,
		.kernel = kernel,
		.initrd = initrd,
		.accel = accel,
		.rootfs_mode = mode,
		.channel = ch,
		.boot_timeout_ms = IO_TIMEOUT_MS,
	};
	return s;
}

static void make_tree(const char *dir)
{
	char p[HC_PATH_MAX];
	FILE *f;

	mkdir(dir, 0755);
	snprintf(p, sizeof(p), "%s/hello.txt", dir);
	f = fopen(p, "we");
	if (f) {
		fputs("hi from the image\n", f);
		fclose(f);
	}
}

#define SKIP_IF_NEEDED()                                                                     \
	do {                                                                                 \
		if (skip_all)                                                                \
			SKIP(skip_all);                                                      \
	} while (0)

/* ---- the tests ------------------------------------------------------------------------------ */

TEST(boot_dir_serial_readonly_image)
{
	struct hc_error e = { 0 };
	char root[HC_PATH_MAX], p[HC_PATH_MAX], run_dir[HC_PATH_MAX];
	pid_t pids[32];
	size_t n;
	long rss;
	struct vmt t;

	SKIP_IF_NEEDED();
	snprintf(root, sizeof(root), "%s/image", tmp);
	make_tree(root);
	struct hc_vm_spec s = spec_for(HC_ROOTFS_DIR, HC_CHANNEL_SERIAL);
	s.rootfs_dir = root;
	int r = boot(&t, &s, &e);
	if (r < 0) {
		hc_vm_free(t.vm);
		FAILF("boot: %s", e.message);
	}
	snprintf(run_dir, sizeof(run_dir), "%s", t.vm->run_dir);
	n = vm_pids(t.vm, pids, 32, &rss);
	printf("# dir+serial: start to first byte %.0f ms; host RSS of QEMU+virtiofsd (%zu "
	       "processes) %ld MiB for a %u MiB guest\n",
	       t.t_first_byte - t.t_start, n, rss / 1024, s.memory_mib);
	ASSERT_EQ_STR(cmd(&t, "mount hcroot /r"), "ok");
	ASSERT_EQ_STR(cmd(&t, "read /r/hello.txt"), "data hi from the image");
	/* Writes fail with EROFS (30), also after the guest remounted the share read-write:
	 * virtiofsd serves a read-only bind mount. */
	ASSERT_EQ_STR(cmd(&t, "write /r/new"), "err 30");
	cmd(&t, "remount-rw /r");
	ASSERT_EQ_STR(cmd(&t, "write /r/new"), "err 30");
	ASSERT_EQ_STR(cmd(&t, "write /r/hello.txt"), "err 30");
	ASSERT_EQ_INT(hc_vm_check(t.vm, &e), 0);
	close(t.fd);
	hc_vm_free(t.vm);
	snprintf(p, sizeof(p), "%s/new", root);
	ASSERT_TRUE(access(p, F_OK) < 0);
	ASSERT_TRUE(all_gone(pids, n));
	ASSERT_TRUE(access(run_dir, F_OK) < 0);
}

TEST(boot_block_vsock)
{
	struct hc_error e = { 0 };
	char root[HC_PATH_MAX], disk[HC_PATH_MAX], run_dir[HC_PATH_MAX];
	pid_t pids[32];
	size_t n;
	long rss;
	struct vmt t;
	int r;

	SKIP_IF_NEEDED();
	char vsockd[HC_PATH_MAX];
	const char *env = getenv("HOTCELL_VHOST_DEVICE_VSOCK");
	snprintf(vsockd, sizeof(vsockd), "%s",
		 env ? env : "/var/cache/hotcell-tools/usr/bin/vhost-device-vsock");
	if (access(vsockd, X_OK) < 0 && system("command -v vhost-device-vsock >/dev/null") != 0)
		SKIP("vhost-device-vsock not installed");
	snprintf(root, sizeof(root), "%s/blk", tmp);
	make_tree(root);
	snprintf(disk, sizeof(disk), "%s/root.ext4", tmp);
	const char *mk[] = { "mke2fs", "-q", "-t", "ext4", "-d", root, disk, "16M", NULL };
	if (hc_child_run(mk, 60000, 65536, NULL, &e) != 0)
		SKIP("mke2fs -d not available");
	struct stat st0, st1;
	stat(disk, &st0);

	struct hc_vm_spec s = spec_for(HC_ROOTFS_BLOCK, HC_CHANNEL_VSOCK);
	s.rootfs_disk = disk;
	r = boot(&t, &s, &e);
	if (r < 0) {
		hc_vm_free(t.vm);
		FAILF("boot: %s", e.message);
	}
	snprintf(run_dir, sizeof(run_dir), "%s", t.vm->run_dir);
	n = vm_pids(t.vm, pids, 32, &rss);
	printf("# block+vsock: start to first byte %.0f ms; host RSS of QEMU+vhost-device-vsock "
	       "%ld MiB\n", t.t_first_byte - t.t_start, rss / 1024);
	/* The disk is attached read-only: the guest gets a read-only mount at best. */
	ASSERT_EQ_STR(cmd(&t, "mountblk /b"), "ok");
	ASSERT_EQ_STR(cmd(&t, "read /b/hello.txt"), "data hi from the image");
	ASSERT_EQ_STR(cmd(&t, "write /b/new"), "err 30");
	close(t.fd);
	hc_vm_free(t.vm);
	stat(disk, &st1);
	ASSERT_TRUE(st0.st_mtim.tv_sec == st1.st_mtim.tv_sec &&
		    st0.st_mtim.tv_nsec == st1.st_mtim.tv_nsec);
	ASSERT_TRUE(all_gone(pids, n));
	ASSERT_TRUE(access(run_dir, F_OK) < 0);
}

TEST(boot_volumes)
{
	struct hc_error e = { 0 };
	char root[HC_PATH_MAX], rw[HC_PATH_MAX], ro[HC_PATH_MAX], p[HC_PATH_MAX];
	struct vmt t;
	int r;

	SKIP_IF_NEEDED();
	snprintf(root, sizeof(root), "%s/image", tmp);
	make_tree(root);
	snprintf(rw, sizeof(rw), "%s/vol-rw", tmp);
	snprintf(ro, sizeof(ro), "%s/vol-ro", tmp);
	make_tree(rw);
	make_tree(ro);
	struct hc_volume vols[] = { { rw, "/data", false }, { ro, "/conf", true } };
	struct hc_vm_spec s = spec_for(HC_ROOTFS_DIR, HC_CHANNEL_SERIAL);
	s.rootfs_dir = root;
	s.volumes = vols;
	s.n_volumes = 2;
	r = boot(&t, &s, &e);
	if (r < 0) {
		hc_vm_free(t.vm);
		FAILF("boot: %s", e.message);
	}
	ASSERT_EQ_STR(cmd(&t, "mount hcvol0 /data"), "ok");
	ASSERT_EQ_STR(cmd(&t, "write /data/out.txt"), "ok");
	ASSERT_EQ_STR(cmd(&t, "mount hcvol1 /conf"), "ok");
	ASSERT_EQ_STR(cmd(&t, "read /conf/hello.txt"), "data hi from the image");
	ASSERT_EQ_STR(cmd(&t, "write /conf/out.txt"), "err 30");
	close(t.fd);
	hc_vm_free(t.vm);
	snprintf(p, sizeof(p), "%s/out.txt", rw);
	ASSERT_TRUE(access(p, F_OK) == 0);
	snprintf(p, sizeof(p), "%s/out.txt", ro);
	ASSERT_TRUE(access(p, F_OK) < 0);
}

/* Waits for death_fd, then asks check() why. */
static int wait_death(struct vmt *t, struct hc_error *e)
{
	struct pollfd p = { .fd = t->vm->death_fd, .events = POLLIN };
	double deadline = hc_clock_ms() + IO_TIMEOUT_MS;

	for (;;) {
		int left = hc_clock_left_ms(deadline);

		if (left == 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, left) <= 0)
			continue;
		int r = hc_vm_check(t->vm, e);
		if (r < 0)
			return r;
	}
}

TEST(guest_reboot_and_panic)
{
	struct hc_error e = { 0 };
	char root[HC_PATH_MAX];
	struct vmt t;
	int r;

	SKIP_IF_NEEDED();
	snprintf(root, sizeof(root), "%s/image", tmp);
	make_tree(root);
	struct hc_vm_spec s = spec_for(HC_ROOTFS_DIR, HC_CHANNEL_SERIAL);
	s.rootfs_dir = root;

	r = boot(&t, &s, &e);
	if (r < 0) {
		hc_vm_free(t.vm);
		FAILF("boot: %s", e.message);
	}
	/* pause/resume over QMP: our own STOP is not a failure. */
	ASSERT_OK(hc_vm_pause(t.vm, &e), &e);
	ASSERT_EQ_INT(hc_vm_check(t.vm, &e), 0);
	ASSERT_OK(hc_vm_resume(t.vm, &e), &e);
	ASSERT_EQ_STR(cmd(&t, "read /proc/version"), cmd(&t, "read /proc/version"));
	if (write(t.fd, "reboot\n", 7) < 0)
		FAILF("%s", "write");
	r = wait_death(&t, &e);
	ASSERT_EQ_INT(r, -ESHUTDOWN);
	close(t.fd);
	hc_vm_free(t.vm);

	r = boot(&t, &s, &e);
	if (r < 0) {
		hc_vm_free(t.vm);
		FAILF("boot: %s", e.message);
	}
	if (write(t.fd, "die\n", 4) < 0)
		FAILF("%s", "write");
	r = wait_death(&t, &e);
	ASSERT_EQ_INT(r, -EIO);
	ASSERT_TRUE(strstr(e.message, "guest kernel panic") != NULL);
	hc_vm_error_add_console(t.vm, &e);
	printf("# panic: %s\n", e.message);
	ASSERT_TRUE(strstr(e.message, "console: ") != NULL);
	close(t.fd);
	hc_vm_free(t.vm);
}

/* A STOP hotcell did not ask for (as after an internal error, where QEMU pauses for good) wakes
 * death_fd and check() reports the run state. The stop comes from a second QMP monitor added
 * with HOTCELL_QEMU_ARGS. */
TEST(unexpected_stop)
{
	struct hc_error e = { 0 };
	char root[HC_PATH_MAX], args[HC_PATH_MAX + 64], qmp[HC_PATH_MAX];
	struct vmt t;
	int r;

	SKIP_IF_NEEDED();
	snprintf(root, sizeof(root), "%s/image", tmp);
	make_tree(root);
	snprintf(qmp, sizeof(qmp), "%s/second-qmp.sock", tmp);
	snprintf(args, sizeof(args), "-qmp unix:%s,server=on,wait=off", qmp);
	struct hc_vm_spec s = spec_for(HC_ROOTFS_DIR, HC_CHANNEL_SERIAL);
	s.rootfs_dir = root;
	/* The second monitor's socket is the test's, outside the VM's runtime dir: a debugging
	 * aid (HOTCELL_QEMU_ARGS) that a jailed QEMU cannot reach. */
	s.no_jail = true;
	setenv("HOTCELL_QEMU_ARGS", args, 1);
	r = boot(&t, &s, &e);
	unsetenv("HOTCELL_QEMU_ARGS");
	if (r < 0) {
		hc_vm_free(t.vm);
		FAILF("boot: %s", e.message);
	}
	char sh[HC_PATH_MAX + 200];
	snprintf(sh, sizeof(sh),
		 "printf '%%s\\n' '{\"execute\":\"qmp_capabilities\"}' "
		 "'{\"execute\":\"stop\"}' | timeout 10 busybox nc local:%s >/dev/null 2>&1 || "
		 "printf '%%s\\n' '{\"execute\":\"qmp_capabilities\"}' "
		 "'{\"execute\":\"stop\"}' | timeout 10 python3 -c 'import socket,sys; "
		 "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
		 "s.sendall(sys.stdin.buffer.read()); import time; time.sleep(1)' %s",
		 qmp, qmp);
	if (system(sh) != 0) {
		close(t.fd);
		hc_vm_free(t.vm);
		SKIP("cannot talk to the second QMP monitor (no busybox nc or python3)");
	}
	r = wait_death(&t, &e);
	ASSERT_EQ_INT(r, -EIO);
	ASSERT_EQ_STR(e.message, "the VM stopped: paused");
	close(t.fd);
	hc_vm_free(t.vm);
}

/* sha256 of a file, for "never modified" checks. */
static void file_sum(const char *path, char *out, size_t n)
{
	char sh[HC_PATH_MAX + 64];
	FILE *p;

	out[0] = '\0';
	snprintf(sh, sizeof(sh), "sha256sum '%s'", path);
	p = popen(sh, "re");
	if (!p)
		return;
	if (!fgets(out, (int)n, p))
		out[0] = '\0';
	pclose(p);
}

static int restore_one(struct vmt *t, const struct hc_vm_spec *s, const char *snap,
		       struct hc_error *e)
{
	double t0;
	int r;

	*t = (struct vmt){.fd = -1};
	r = hc_vm_new(&t->vm, &hc_vmm_qemu_ops, s, e);
	if (r < 0)
		return r;
	t0 = hc_clock_ms();
	r = hc_vm_restore(t->vm, snap, e);
	if (r < 0)
		return r;
	printf("# restore incl. QEMU start: %.0f ms\n", hc_clock_ms() - t0);
	t->fd = dup(t->vm->agent_fd);
	return 0;
}

/* Snapshot (paused VM, block rootfs, serial channel) and restore into fresh VMs: the guest
 * carries on where it was and answers on the new serial connection; the snapshot holds the
 * state at the snapshot, not what the resumed VM did after; two restores share the memory
 * file copy-on-write and never write it; a restored VM's own snapshot (RAM in the stream)
 * restores too. */
TEST(snapshot_restore)
{
	struct hc_error e = {0};
	char root[HC_PATH_MAX], disk[HC_PATH_MAX], snap[HC_PATH_MAX], snap2[HC_PATH_MAX],
		mem[HC_PATH_MAX], sum0[128], sum1[128];
	struct vmt t, a, b;
	int r;

	SKIP_IF_NEEDED();
	snprintf(root, sizeof(root), "%s/blk", tmp);
	make_tree(root);
	snprintf(disk, sizeof(disk), "%s/snap.ext4", tmp);
	const char *mk[] = {"mke2fs", "-q", "-t", "ext4", "-d", root, disk, "16M", NULL};
	if (hc_child_run(mk, 60000, 65536, NULL, &e) != 0)
		SKIP("mke2fs -d not available");
	snprintf(snap, sizeof(snap), "%s/snap", tmp);
	snprintf(snap2, sizeof(snap2), "%s/snap2", tmp);
	snprintf(mem, sizeof(mem), "%s/memory", snap);

	struct hc_vm_spec s = spec_for(HC_ROOTFS_BLOCK, HC_CHANNEL_SERIAL);
	s.rootfs_disk = disk;
	r = boot(&t, &s, &e);
	if (r < 0) {
		hc_vm_free(t.vm);
		FAILF("boot: %s", e.message);
	}
	ASSERT_EQ_STR(cmd(&t, "mountblk /b"), "ok");
	ASSERT_EQ_STR(cmd(&t, "write /before"), "ok");
	pid_t pids[32];
	long rss_cold = 0, rss_a = 0, rss_b = 0;
	vm_pids(t.vm, pids, 32, &rss_cold);
	/* Only a paused VM is snapshotted. */
	ASSERT_EQ_INT(hc_vm_snapshot(t.vm, snap, &e), -EBUSY);
	ASSERT_OK(hc_vm_pause(t.vm, &e), &e);
	double t0 = hc_clock_ms();
	ASSERT_OK(hc_vm_snapshot(t.vm, snap, &e), &e);
	printf("# snapshot of a %u MiB guest: %.0f ms\n", s.memory_mib, hc_clock_ms() - t0);
	/* The RAM was copied out, and the source VM goes on. */
	struct stat st;
	ASSERT_TRUE(stat(mem, &st) == 0 && st.st_size == (off_t)s.memory_mib << 20);
	printf("# memory file: %lld KiB allocated of %u MiB\n", (long long)st.st_blocks / 2,
	       s.memory_mib);
	file_sum(mem, sum0, sizeof(sum0));
	ASSERT_OK(hc_vm_resume(t.vm, &e), &e);
	ASSERT_EQ_STR(cmd(&t, "write /after"), "ok");
	ASSERT_EQ_STR(cmd(&t, "read /after"), "data written");
	close(t.fd);
	hc_vm_free(t.vm);
	file_sum(mem, sum1, sizeof(sum1));
	ASSERT_EQ_STR(sum1, sum0);

	/* Two restores of one snapshot at once, each its own copy-on-write of the memory. */
	r = restore_one(&a, &s, snap, &e);
	if (r < 0) {
		hc_vm_free(a.vm);
		FAILF("restore: %s", e.message);
	}
	r = restore_one(&b, &s, snap, &e);
	if (r < 0) {
		close(a.fd);
		hc_vm_free(a.vm);
		hc_vm_free(b.vm);
		FAILF("second restore: %s", e.message);
	}
	ASSERT_EQ_STR(cmd(&a, "read /b/hello.txt"), "data hi from the image");
	ASSERT_EQ_STR(cmd(&a, "read /before"), "data written");
	ASSERT_TRUE(strncmp(cmd(&a, "read /after"), "err ", 4) == 0);
	ASSERT_EQ_STR(cmd(&a, "write /only-a"), "ok");
	ASSERT_TRUE(strncmp(cmd(&b, "read /only-a"), "err ", 4) == 0);
	ASSERT_EQ_STR(cmd(&b, "read /before"), "data written");
	ASSERT_EQ_INT(hc_vm_check(a.vm, &e), 0);
	/* Both restored QEMUs together (vm_pids counts every child of ours): RSS counts the
	 * snapshot pages they share once per process, PSS splits them. */
	size_t np = vm_pids(a.vm, pids, 32, &rss_a);
	for (size_t k = 0; k < np; k++)
		rss_b += pss_kib(pids[k]);
	printf("# host memory: a booted QEMU RSS %ld MiB; two restored QEMUs RSS %ld MiB, "
	       "PSS %ld MiB together\n",
	       rss_cold / 1024, rss_a / 1024, rss_b / 1024);

	/* A restored VM's own snapshot carries its RAM in the stream, unjailed (its RAM is a
	 * private mapping QEMU cannot skip); jailed, its RAM is a memfd copy, saved beside. */
	bool jailed = a.vm->jailed;
	ASSERT_OK(hc_vm_pause(a.vm, &e), &e);
	t0 = hc_clock_ms();
	ASSERT_OK(hc_vm_snapshot(a.vm, snap2, &e), &e);
	printf("# snapshot of a restored VM (%s): %.0f ms\n",
	       jailed ? "jailed: RAM file copied" : "RAM in the stream", hc_clock_ms() - t0);
	snprintf(root, sizeof(root), "%s/memory", snap2);
	ASSERT_TRUE(jailed ? access(root, F_OK) == 0 : access(root, F_OK) < 0);
	close(a.fd);
	hc_vm_free(a.vm);
	close(b.fd);
	hc_vm_free(b.vm);
	file_sum(mem, sum1, sizeof(sum1));
	ASSERT_EQ_STR(sum1, sum0);
	r = restore_one(&a, &s, snap2, &e);
	if (r < 0) {
		hc_vm_free(a.vm);
		FAILF("restore of the second snapshot: %s", e.message);
	}
	ASSERT_EQ_STR(cmd(&a, "read /only-a"), "data written");
	close(a.fd);
	hc_vm_free(a.vm);

	/* A snapshot whose memory does not fit the VM: a clear error, nothing started. */
	struct hc_vm *vm = NULL;
	struct hc_vm_spec big = s;
	big.memory_mib = s.memory_mib * 2;
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_qemu_ops, &big, &e), &e);
	ASSERT_EQ_INT(hc_vm_restore(vm, snap, &e), -EINVAL);
	ASSERT_TRUE(strstr(e.message, "bytes of RAM") != NULL);
	hc_vm_free(vm);

	/* A directory rootfs cannot be snapshotted (vhost-user-fs does not migrate). */
	snprintf(root, sizeof(root), "%s/image", tmp);
	make_tree(root);
	s = spec_for(HC_ROOTFS_DIR, HC_CHANNEL_SERIAL);
	s.rootfs_dir = root;
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_qemu_ops, &s, &e), &e);
	ASSERT_EQ_INT(hc_vm_restore(vm, snap, &e), -EOPNOTSUPP);
	hc_vm_free(vm);
}

/* q35 with virtio-pci, for kernels without virtio-mmio (HOTCELL_QEMU_MACHINE=q35). */
TEST(boot_q35)
{
	struct hc_error e = { 0 };
	char root[HC_PATH_MAX];
	struct vmt t;
	int r;

	SKIP_IF_NEEDED();
	snprintf(root, sizeof(root), "%s/image", tmp);
	make_tree(root);
	struct hc_vm_spec s = spec_for(HC_ROOTFS_DIR, HC_CHANNEL_SERIAL);
	s.rootfs_dir = root;
	setenv("HOTCELL_QEMU_MACHINE", "q35", 1);
	r = boot(&t, &s, &e);
	unsetenv("HOTCELL_QEMU_MACHINE");
	if (r < 0) {
		hc_vm_free(t.vm);
		FAILF("boot: %s", e.message);
	}
	printf("# q35 dir+serial: start to first byte %.0f ms\n", t.t_first_byte - t.t_start);
	ASSERT_EQ_STR(cmd(&t, "mount hcroot /r"), "ok");
	ASSERT_EQ_STR(cmd(&t, "read /r/hello.txt"), "data hi from the image");
	if (write(t.fd, "reboot\n", 7) < 0)
		FAILF("%s", "write");
	ASSERT_EQ_INT(wait_death(&t, &e), -ESHUTDOWN);
	close(t.fd);
	hc_vm_free(t.vm);
}

TEST(start_failure_cleans_up)
{
	struct hc_error e = { 0 };
	struct hc_vm *vm = NULL;
	char run_dir[HC_PATH_MAX];

	SKIP_IF_NEEDED();
	struct hc_vm_spec s = spec_for(HC_ROOTFS_DIR, HC_CHANNEL_SERIAL);
	s.rootfs_dir = "/nonexistent/hotcell-test";
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_qemu_ops, &s, &e), &e);
	snprintf(run_dir, sizeof(run_dir), "%s", vm->run_dir);
	ASSERT_ERR(hc_vm_start(vm, &e));
	ASSERT_TRUE(strstr(e.message, "/nonexistent/hotcell-test") != NULL);
	hc_vm_free(vm);
	ASSERT_TRUE(access(run_dir, F_OK) < 0);

	/* Jailed (root), a missing file is refused while the jail's root is planned, by name. */
	s = spec_for(HC_ROOTFS_BLOCK, HC_CHANNEL_SERIAL);
	s.rootfs_disk = "/nonexistent/disk.ext4";
	if (geteuid() == 0) {
		ASSERT_OK(hc_vm_new(&vm, &hc_vmm_qemu_ops, &s, &e), &e);
		ASSERT_ERR(hc_vm_start(vm, &e));
		ASSERT_TRUE(strstr(e.message, "jail") != NULL);
		ASSERT_TRUE(strstr(e.message, "disk.ext4") != NULL);
		hc_vm_free(vm);
	}

	/* A QEMU that rejects its command line: its own message comes back (unjailed, so that
	 * QEMU is the one to see the bad path). */
	s.no_jail = true;
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_qemu_ops, &s, &e), &e);
	ASSERT_ERR(hc_vm_start(vm, &e));
	ASSERT_TRUE(strstr(e.message, "qemu did not start") != NULL);
	ASSERT_TRUE(strstr(e.message, "disk.ext4") != NULL);
	hc_vm_free(vm);
}

/* Benchmark mode (bench/qemu-backend.sh): HOTCELL_BENCH_BOOTS=N boots N dir+serial VMs and
 * prints one "bench:" line per boot. */
static void bench(int n)
{
	char root[HC_PATH_MAX], comm[64], p[64];
	struct hc_error e = { 0 };

	snprintf(root, sizeof(root), "%s/image", tmp);
	make_tree(root);
	for (int i = 0; i < n; i++) {
		struct hc_vm_spec s = spec_for(HC_ROOTFS_DIR, HC_CHANNEL_SERIAL);
		struct vmt t;
		pid_t pids[32];
		long total, qemu_kib = 0, fsd_kib = 0;

		s.rootfs_dir = root;
		if (boot(&t, &s, &e) < 0) {
			printf("FAIL: bench: boot: %s\n", e.message);
			hc_vm_free(t.vm);
			return;
		}
		size_t np = vm_pids(t.vm, pids, 32, &total);
		for (size_t k = 0; k < np; k++) {
			snprintf(p, sizeof(p), "/proc/%d/comm", (int)pids[k]);
			FILE *f = fopen(p, "re");
			if (!f || !fgets(comm, sizeof(comm), f))
				comm[0] = '\0';
			if (f)
				fclose(f);
			if (strncmp(comm, "qemu", 4) == 0)
				qemu_kib += rss_kib(pids[k]);
			else
				fsd_kib += rss_kib(pids[k]);
		}
		double t_quit = hc_clock_ms();
		close(t.fd);
		hc_vm_free(t.vm);
		printf("bench: start_ms %.1f first_byte_ms %.1f qemu_rss_kib %ld "
		       "virtiofsd_rss_kib %ld teardown_ms %.1f\n",
		       t.t_started - t.t_start, t.t_first_byte - t.t_start, qemu_kib, fsd_kib,
		       hc_clock_ms() - t_quit);
	}
	printf("PASS: bench\n");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	skip_all = setup();
	if (getenv("HOTCELL_BENCH_BOOTS")) {
		if (skip_all)
			printf("SKIP: bench: %s\n", skip_all);
		else
			bench(atoi(getenv("HOTCELL_BENCH_BOOTS")));
		hc_path_rm_rf(tmp, NULL);
		return test_summary();
	}
	RUN(boot_dir_serial_readonly_image);
	RUN(boot_block_vsock);
	RUN(boot_volumes);
	RUN(guest_reboot_and_panic);
	RUN(unexpected_stop);
	RUN(snapshot_restore);
	RUN(boot_q35);
	RUN(start_failure_cleans_up);
	if (tmp[0])
		hc_path_rm_rf(tmp, NULL);
	return test_summary();
}
