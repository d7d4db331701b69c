/* SPDX-License-Identifier: MIT */
/*
 * hotcell-init as PID 1 in a real micro-VM, without the host library: QEMU (microvm, TCG or
 * KVM) boots the project kernel with build/initramfs.cpio; the image is a busybox tree over
 * virtio-fs (virtiofsd) or an ext4 disk; the agent channel is the virtio-serial port, whose
 * socket this test listens on. It checks the boot contract of docs/protocol.md end to end:
 * overlay root (image untouched), volumes, /hotcell, hostname, users, sequential execs,
 * SHUTDOWN ending QEMU, and a setup failure printing its fatal line and ending the VM.
 *
 * Skips when the kernel (build/kernel/bzImage or HOTCELL_KERNEL), QEMU, virtiofsd or busybox
 * is missing, or when not root (virtiofsd needs it).
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "core/child.h"
#include "core/path.h"
#include "proto/boot.h"
#include "vmm/hvsock.h"
#include "test.h"
#include "agent-client.h"

#define BOOT_WAIT_MS 120000

static char top[4096], kernel[4200], initrd[4200], busybox[256];
static const char *virtiofsd = "/usr/lib/qemu/virtiofsd";
static char work[] = "/tmp/hc-boot-test.XXXXXX";
static char image[4300];

struct vm {
	const char *initrd; /* NULL: build/initramfs.cpio */
	bool keys_in_env;   /* no hotcell.* keys on the command line (the initrd sets them) */
	struct hc_child qemu, fsd_root, fsd_vol, vsockd;
	char hybrid[4400]; /* vsock: the hybrid socket <uds> */
	int agent_listen;
	struct agent_conn c;
	char console[4400];
};

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* virtiofsd on a listening socket we made: no waiting for it to create a path. */
static int start_virtiofsd(struct hc_child *c, const char *sock, const char *dir,
			   struct hc_error *err)
{
	char src[4400];
	int fd = listen_unix(sock), r;

	if (fd < 0)
		return hc_error_errno(err, fd, "listen %s", sock);
	snprintf(src, sizeof(src), "source=%s", dir);
	const char *argv[] = {virtiofsd, "--fd=3", "-o", src, "-o", "cache=none", NULL};
	struct hc_fd_map m = {fd, 3};
	struct hc_child_opts o = {.argv = argv,
				  .stdin_fd = -1,
				  .stdout_fd = -1,
				  .stderr_fd = -1,
				  .fds = &m,
				  .n_fds = 1};
	r = hc_child_spawn(c, &o, err);
	close(fd);
	return r;
}

static char vsockd_bin[4200];

/* vhost-device-vsock creates its socket itself: wait for it with inotify, boundedly. */
static int start_vsockd(struct vm *vm, const char *sock, struct hc_error *err)
{
	_cleanup_close_ int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	char cid[16];
	int r;

	if (ino < 0 || inotify_add_watch(ino, work, IN_CREATE | IN_MOVED_TO) < 0)
		return hc_error_errno(err, -errno, "inotify");
	unlink(sock);
	snprintf(cid, sizeof(cid), "%d", HC_BOOT_VSOCK_GUEST_CID);
	const char *argv[] = {vsockd_bin, "--guest-cid", cid,	     "--socket",
			      sock,	  "--uds-path",	 vm->hybrid, NULL};
	struct hc_child_opts o = {.argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
	r = hc_child_spawn(&vm->vsockd, &o, err);
	if (r < 0)
		return r;
	while (!hc_path_exists(sock)) {
		struct pollfd p = {.fd = ino, .events = POLLIN};
		char ev[4096];

		if (poll(&p, 1, 10000) != 1)
			return hc_error_set(err, -ETIMEDOUT, "%s did not appear", sock);
		while (read(ino, ev, sizeof(ev)) > 0)
			;
	}
	return 0;
}

/* Boots a VM. root: "virtiofs", "block" or NULL (a broken command line); channel: "serial"
 * or "vsock"; volume: a host dir or NULL; extra: more kernel command line. */
static int vm_start(struct vm *vm, const char *root, const char *channel, const char *volume,
		    const char *extra, struct hc_error *err)
{
	char sock_vsock[4400], chr_vsock[4500];
	char sock_root[4400], sock_vol[4400], sock_agent[4400], append[2048], chr_con[4500],
		chr_root[4500], chr_vol[4500], chr_agent[4500], drive[4500];
	struct hc_buf cmd = HC_BUF_INIT(0);
	const char *argv[64];
	size_t n = 0;
	int r;

	const char *vm_initrd = vm->initrd ? vm->initrd : initrd;
	bool keys_in_env = vm->keys_in_env;

	memset(vm, 0, sizeof(*vm));
	vm->qemu = vm->fsd_root = vm->fsd_vol = vm->vsockd = (struct hc_child)HC_CHILD_INIT;
	vm->agent_listen = -1;
	vm->c.fd = -1;
	snprintf(vm->console, sizeof(vm->console), "%s/console.log", work);
	snprintf(sock_root, sizeof(sock_root), "%s/root.sock", work);
	snprintf(sock_vol, sizeof(sock_vol), "%s/vol.sock", work);
	snprintf(sock_agent, sizeof(sock_agent), "%s/agent.sock", work);
	unlink(vm->console);

	if (hc_streq(root, "virtiofs") &&
	    (r = start_virtiofsd(&vm->fsd_root, sock_root, image, err)) < 0)
		return r;
	if (volume && (r = start_virtiofsd(&vm->fsd_vol, sock_vol, volume, err)) < 0)
		return r;
	if (hc_streq(channel, "vsock")) {
		snprintf(vm->hybrid, sizeof(vm->hybrid), "%s/hv.sock", work);
		snprintf(sock_vsock, sizeof(sock_vsock), "%s/vsock.sock", work);
		snprintf(chr_vsock, sizeof(chr_vsock), "socket,id=vs,path=%s", sock_vsock);
		/* The guest's connection to port 1024 arrives here: listen before it boots. */
		vm->agent_listen = hc_hvsock_listen(vm->hybrid, HC_BOOT_VSOCK_PORT_CONNECT, err);
		if (vm->agent_listen < 0)
			return vm->agent_listen;
		if ((r = start_vsockd(vm, sock_vsock, err)) < 0)
			return r;
	} else {
		vm->agent_listen = listen_unix(sock_agent);
		if (vm->agent_listen < 0)
			return hc_error_errno(err, vm->agent_listen, "listen %s", sock_agent);
	}

	r = hc_buf_printf(&cmd, "console=ttyS0 reboot=t panic=-1 %s", extra ? extra : "");
	if (r >= 0 && root && !keys_in_env)
		r = hc_buf_printf(&cmd, " %s=%s", HC_BOOT_KEY_ROOT, root);
	if (r >= 0 && !keys_in_env)
		r = hc_buf_printf(&cmd, " %s=%s", HC_BOOT_KEY_CHANNEL, channel);
	if (r >= 0 && volume)
		r = hc_boot_volume_append(&cmd, 0, "/mnt/my vol", false);
	if (r < 0)
		return hc_error_set(err, r, "command line");
	snprintf(append, sizeof(append), "%s", cmd.data);
	hc_buf_free(&cmd);

	snprintf(chr_con, sizeof(chr_con), "file,id=con,path=%s", vm->console);
	snprintf(chr_root, sizeof(chr_root), "socket,id=fsroot,path=%s", sock_root);
	snprintf(chr_vol, sizeof(chr_vol), "socket,id=fsvol,path=%s", sock_vol);
	snprintf(chr_agent, sizeof(chr_agent), "socket,id=agent,path=%s", sock_agent);
	snprintf(drive, sizeof(drive), "file=%s.ext4,if=none,id=disk,format=raw,readonly=on",
		 image);

	const char *accel = getenv("HOTCELL_TEST_ACCEL") ? getenv("HOTCELL_TEST_ACCEL") : "tcg";
	const char *base[] = {"qemu-system-x86_64",
			      "-M",
			      "microvm,acpi=off,memory-backend=mem",
			      "-accel",
			      accel,
			      "-m",
			      "256M",
			      "-object",
			      "memory-backend-memfd,id=mem,size=256M,share=on",
			      "-global",
			      "virtio-mmio.force-legacy=false",
			      "-nodefaults",
			      "-no-user-config",
			      "-display",
			      "none",
			      "-no-reboot",
			      "-kernel",
			      kernel,
			      "-initrd",
			      vm_initrd,
			      "-append",
			      append,
			      "-chardev",
			      chr_con,
			      "-serial",
			      "chardev:con"};
	for (size_t i = 0; i < HC_ARRAY_SIZE(base); i++)
		argv[n++] = base[i];
	if (hc_streq(channel, "vsock")) {
		argv[n++] = "-chardev";
		argv[n++] = chr_vsock;
		argv[n++] = "-device";
		argv[n++] = "vhost-user-vsock-device,chardev=vs";
	} else {
		argv[n++] = "-device";
		argv[n++] = "virtio-serial-device";
		argv[n++] = "-chardev";
		argv[n++] = chr_agent;
		argv[n++] = "-device";
		argv[n++] = "virtserialport,chardev=agent,name=" HC_BOOT_SERIAL_PORT;
	}
	if (hc_streq(root, "virtiofs")) {
		argv[n++] = "-chardev";
		argv[n++] = chr_root;
		argv[n++] = "-device";
		argv[n++] = "vhost-user-fs-device,chardev=fsroot,tag=" HC_BOOT_TAG_ROOTFS;
	} else if (hc_streq(root, "block")) {
		argv[n++] = "-drive";
		argv[n++] = drive;
		argv[n++] = "-device";
		argv[n++] = "virtio-blk-device,drive=disk";
	}
	if (volume) {
		argv[n++] = "-chardev";
		argv[n++] = chr_vol;
		argv[n++] = "-device";
		argv[n++] = "vhost-user-fs-device,chardev=fsvol,tag=" HC_BOOT_TAG_VOLUME_PREFIX "0";
	}
	argv[n] = NULL;
	struct hc_child_opts o = {
		.argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = STDERR_FILENO};
	return hc_child_spawn(&vm->qemu, &o, err);
}

/* Accepts the agent connection (QEMU connects at start) and reads the HELLO. */
static int vm_connect(struct vm *vm, struct hc_proto_hello *hello)
{
	struct pollfd p = {.fd = vm->agent_listen, .events = POLLIN};
	int fd;

	if (poll(&p, 1, BOOT_WAIT_MS) != 1)
		return -ETIMEDOUT;
	fd = accept4(vm->agent_listen, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	ac_init(&vm->c, fd, BOOT_WAIT_MS);
	return ac_hello(&vm->c, hello);
}

/* Returns QEMU's wait status once it has exited on its own (the guest rebooted). */
static int vm_wait(struct vm *vm)
{
	int r = hc_child_wait(&vm->qemu, BOOT_WAIT_MS);

	return r < 0 ? r : vm->qemu.status;
}

static void vm_stop(struct vm *vm)
{
	hc_child_stop(&vm->qemu, 2000);
	hc_child_stop(&vm->fsd_root, 2000);
	hc_child_stop(&vm->fsd_vol, 2000);
	hc_child_stop(&vm->vsockd, 2000);
	if (vm->agent_listen >= 0)
		close(vm->agent_listen);
	vm->agent_listen = -1;
	ac_free(&vm->c);
}

static bool console_has(const struct vm *vm, const char *s)
{
	struct hc_error err;
	char *data = NULL;
	bool found;

	if (hc_path_read_file(vm->console, 4 << 20, &data, NULL, &err) < 0)
		return false;
	found = strstr(data, s) != NULL;
	free(data);
	return found;
}

static void dump_console(const struct vm *vm)
{
	struct hc_error err;
	char *data = NULL;
	size_t len = 0;

	if (hc_path_read_file(vm->console, 4 << 20, &data, &len, &err) < 0)
		return;
	fprintf(stderr, "---- console (last 3000 bytes) ----\n%s\n----\n",
		len > 3000 ? data + len - 3000 : data);
	free(data);
}

/* Runs a shell command in the VM; returns its outcome. */
static int vm_sh(struct vm *vm, const char *script, const char *user, struct outcome *o)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	int r = ac_send_exec(&vm->c, argv, "", user, HC_EXEC_F_RESULT, 60000);

	return r < 0 ? r : ac_collect(&vm->c, o);
}

static const char *skip_reason(void)
{
	static char why[256];
	struct hc_error err;
	char *out = NULL;
	const char *qv[] = {"qemu-system-x86_64", "-version", NULL};

	if (geteuid() != 0)
		return "needs root (virtiofsd)";
	if (access(kernel, R_OK) < 0) {
		snprintf(why, sizeof(why), "no guest kernel at %s (make kernel)", kernel);
		return why;
	}
	if (access(initrd, R_OK) < 0)
		return "no initramfs (make build/initramfs.cpio)";
	if (access(virtiofsd, X_OK) < 0)
		return "no virtiofsd";
	if (access(busybox, X_OK) < 0)
		return "no static busybox (busybox-static)";
	if (hc_child_run(qv, 10000, 4096, &out, &err) != 0) {
		free(out);
		return "no qemu-system-x86_64";
	}
	free(out);
	return NULL;
}

#define CHECK_VM(cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			dump_console(&vm);                                                         \
			vm_stop(&vm);                                                              \
			FAILF("%s is false", #cond);                                               \
		}                                                                                  \
	} while (0)

TEST(boot_virtiofs_serial)
{
	struct hc_error err = {0};
	struct hc_proto_hello hello;
	struct outcome o;
	struct vm vm = {0};
	char voldir[4400], probe[4500];
	const char *why = skip_reason();

	if (why)
		SKIP(why);
	snprintf(voldir, sizeof(voldir), "%s/vol", work);
	ASSERT_OK(hc_path_mkdir_p(voldir, 0755, &err), &err);
	ASSERT_OK(vm_start(&vm, "virtiofs", "serial", voldir, NULL, &err), &err);
	CHECK_VM(vm_connect(&vm, &hello) == 0);
	CHECK_VM(hello.version == HC_PROTO_VERSION && hello.boot_ns > 0);

	/* PID 1 is hotcell-init; the root is the overlay; hostname; /hotcell is there. */
	CHECK_VM(vm_sh(&vm,
		       "echo $$ $(cat /proc/1/comm) $(hostname); grep ' / ' /proc/mounts | "
		       "cut -d' ' -f3; test -d /hotcell -a -d /tmp && echo dirs",
		       "", &o) == 0);
	CHECK_VM(o.got_exit && o.exit.code == 0);
	CHECK_VM(strstr(o.out.data, " init hotcell\noverlay\ndirs\n") != NULL);
	outcome_free(&o);

	/* Writes land in the tmpfs, not in the image. The volume is the host's directory. */
	CHECK_VM(vm_sh(&vm,
		       "echo new > /etc/newfile && cat /etc/newfile && "
		       "echo fromguest > '/mnt/my vol/probe' && echo vol",
		       "", &o) == 0);
	CHECK_VM(o.got_exit && o.exit.code == 0);
	CHECK_VM(hc_streq(o.out.data, "new\nvol\n"));
	outcome_free(&o);
	snprintf(probe, sizeof(probe), "%s/etc/newfile", image);
	CHECK_VM(!hc_path_exists(probe));
	snprintf(probe, sizeof(probe), "%s/probe", voldir);
	CHECK_VM(hc_path_exists(probe));

	/* Users from the image's passwd; result.json; an exec error; exit codes; stderr. */
	CHECK_VM(vm_sh(&vm, "id -u; id -g; echo $HOME", "nobody", &o) == 0);
	CHECK_VM(hc_streq(o.out.data, "65534\n65534\n/nonexistent\n"));
	outcome_free(&o);
	CHECK_VM(vm_sh(&vm, "echo '{\"ok\":1}' > /hotcell/result.json; echo e >&2; exit 7", "",
		       &o) == 0);
	CHECK_VM(o.got_exit && o.exit.code == 7 && o.got_result && o.result_status == 0);
	CHECK_VM(hc_streq(o.result.data, "{\"ok\":1}\n") && hc_streq(o.err.data, "e\n"));
	outcome_free(&o);
	const char *nf[] = {"doesnotexist", NULL};
	CHECK_VM(ac_send_exec(&vm.c, nf, "", "", 0, 0) == 0 && ac_collect(&vm.c, &o) == 0);
	CHECK_VM(o.got_error && o.error.reason == HC_EXEC_ERR_NOT_FOUND);
	outcome_free(&o);

	/* A guest that fills its tmpfs fails its own writes, nothing else: the agent goes on. */
	CHECK_VM(vm_sh(&vm,
		       "dd if=/dev/zero of=/fill bs=1M count=400 2>/dev/null; echo $?; rm /fill; "
		       "echo alive",
		       "", &o) == 0);
	CHECK_VM(o.got_exit && o.exit.code == 0 && hc_streq(o.out.data, "1\nalive\n"));
	outcome_free(&o);

	/* RESEED (as after a restore): the guest's clock jumps to what the host says, two days
	 * ahead here so the jump cannot be mistaken, and its RNG takes the seed. */
	uint8_t seed[32] = {1, 2, 3};
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t ahead = (uint64_t)now.tv_sec + 2 * 86400;
	struct hc_proto_reseed rs = {
		.realtime_ns = ahead * 1000000000ull, .seed = seed, .seed_len = sizeof(seed)};
	struct hc_buf rb = HC_BUF_INIT(0);
	CHECK_VM(hc_proto_reseed_encode(&rb, &rs) == 0);
	CHECK_VM(write(vm.c.fd, rb.data, rb.len) == (ssize_t)rb.len);
	hc_buf_free(&rb);
	struct hc_proto_frame rf;
	size_t rused;
	CHECK_VM(ac_next_frame(&vm.c, &rf, &rused) == 1);
	CHECK_VM(rf.type == HC_FRAME_DONE && rf.stream == 0);
	hc_buf_consume(&vm.c.in, rused);
	CHECK_VM(vm_sh(&vm, "date +%s", "", &o) == 0 && o.got_exit && o.exit.code == 0);
	long long guest_now = atoll(o.out.data);
	CHECK_VM(guest_now >= (long long)ahead && guest_now < (long long)ahead + 600);
	outcome_free(&o);

	/* SHUTDOWN ends the VM: QEMU exits by itself (-no-reboot). */
	CHECK_VM(hc_proto_frame_write(vm.c.fd, HC_FRAME_SHUTDOWN, 0, NULL, 0) == 0);
	int st = vm_wait(&vm);
	CHECK_VM(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_VM(!console_has(&vm, HC_BOOT_CONSOLE_FATAL));
	vm_stop(&vm);
}

TEST(boot_block_and_channel_close)
{
	struct hc_error err = {0};
	struct hc_proto_hello hello;
	struct outcome o;
	struct vm vm = {0};
	char disk[4400], out[256];
	const char *why = skip_reason();

	if (why)
		SKIP(why);
	snprintf(disk, sizeof(disk), "%s.ext4", image);
	const char *mk[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-d", image, disk, "32M", NULL};
	char *mkout = NULL;
	if (hc_child_run(mk, 60000, 4096, &mkout, &err) != 0) {
		free(mkout);
		SKIP("mke2fs -d failed");
	}
	free(mkout);
	ASSERT_OK(vm_start(&vm, "block", "serial", NULL, NULL, &err), &err);
	CHECK_VM(vm_connect(&vm, &hello) == 0);
	CHECK_VM(vm_sh(&vm,
		       "grep ' /run/hc/lower ' /proc/mounts | cut -d' ' -f1,3; "
		       "touch /x && echo writable",
		       "", &o) == 0);
	snprintf(out, sizeof(out), "%s", o.out.data ? o.out.data : "");
	outcome_free(&o);
	/* The lower mount is not visible from the new root: only the overlay's effect is. */
	CHECK_VM(strstr(out, "writable") != NULL);
	/* Closing the channel (the host went away) ends the VM as well. */
	ac_free(&vm.c);
	int st = vm_wait(&vm);
	CHECK_VM(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	vm_stop(&vm);
}

TEST(boot_failure_is_reported)
{
	struct hc_error err = {0};
	struct vm vm = {0};
	const char *why = skip_reason();

	if (why)
		SKIP(why);
	/* No hotcell.root: hotcell-init says why on the console and ends the VM at once. */
	ASSERT_OK(vm_start(&vm, NULL, "serial", NULL, NULL, &err), &err);
	int st = vm_wait(&vm);
	CHECK_VM(st >= 0 && WIFEXITED(st));
	CHECK_VM(console_has(&vm, HC_BOOT_CONSOLE_FATAL "hotcell.root= missing"));
	vm_stop(&vm);
}

TEST(boot_vsock_and_reconnect)
{
	struct hc_error err = {0};
	struct hc_proto_hello hello;
	struct outcome o;
	struct vm vm = {0};
	const char *why = skip_reason();

	if (why)
		SKIP(why);
	if (!vsockd_bin[0])
		SKIP("no vhost-device-vsock (scripts/install-deps.sh)");
	ASSERT_OK(vm_start(&vm, "virtiofs", "vsock", NULL, NULL, &err), &err);
	CHECK_VM(vm_connect(&vm, &hello) == 0);
	CHECK_VM(vm_sh(&vm, "echo one", "", &o) == 0 && hc_streq(o.out.data, "one\n"));
	outcome_free(&o);

	/* The host connects in on port 1025 (as after a restore): the new connection replaces
	 * the old one, which the guest closes, and starts with a fresh HELLO. */
	int fd = hc_hvsock_connect(vm.hybrid, HC_BOOT_VSOCK_PORT_LISTEN, BOOT_WAIT_MS, NULL, &err);
	CHECK_VM(fd >= 0);
	struct agent_conn old = vm.c;
	ac_init(&vm.c, fd, BOOT_WAIT_MS);
	CHECK_VM(ac_hello(&vm.c, &hello) == 0);
	struct hc_proto_frame f;
	size_t used;
	CHECK_VM(ac_next_frame(&old, &f, &used) == 0); /* EOF */
	ac_free(&old);
	CHECK_VM(vm_sh(&vm, "echo two", "", &o) == 0 && hc_streq(o.out.data, "two\n"));
	outcome_free(&o);
	/* The host closing its end (an orderly close, not a reset) ends the VM. */
	ac_free(&vm.c);
	int st = vm_wait(&vm);
	CHECK_VM(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	vm_stop(&vm);
}

/* Under libkrun, hotcell-init is not PID 1: libkrun's init has mounted /proc, /sys and /dev,
 * passes the keys as environment variables and reports hotcell-init's exit code. An initramfs
 * whose /init is a busybox script playing that part checks the same path. */
TEST(boot_as_child_of_another_init)
{
	struct hc_error err = {0};
	struct hc_proto_hello hello;
	struct outcome o;
	struct vm vm = {0};
	char dir[4400], cpio[4400], cmd[9000], p[4500];
	char *out = NULL;
	const char *why = skip_reason();

	if (why)
		SKIP(why);
	snprintf(dir, sizeof(dir), "%s/krun-initrd", work);
	snprintf(cpio, sizeof(cpio), "%s/krun-initrd.cpio.gz", work);
	snprintf(p, sizeof(p), "%s/bin", dir);
	ASSERT_OK(hc_path_mkdir_p(p, 0755, &err), &err);
	snprintf(p, sizeof(p), "%s/init", dir);
	const char *script = "#!/bin/busybox sh\n"
			     "/bin/busybox mkdir -p /proc /sys /dev\n"
			     "/bin/busybox mount -t proc proc /proc\n"
			     "/bin/busybox mount -t sysfs sysfs /sys\n"
			     "/bin/busybox mount -t devtmpfs devtmpfs /dev\n"
			     "export HOTCELL_ROOT=virtiofs HOTCELL_CHANNEL=serial\n"
			     "/hotcell-init\n"
			     "echo \"hotcell-test: hotcell-init exited $?\"\n"
			     "/bin/busybox reboot -f\n";
	ASSERT_OK(hc_path_write_file_atomic(p, script, strlen(script), 0755, &err), &err);
	snprintf(cmd, sizeof(cmd),
		 "set -e; cp %s '%s/bin/busybox'; cp '%s/%s/bin/hotcell-init' '%s/hotcell-init'; "
		 "cd '%s'; find . | cpio -o -H newc --quiet | gzip -1 > '%s'",
		 busybox, dir, top, getenv("BUILD") ? getenv("BUILD") : "build", dir, dir, cpio);
	const char *sh[] = {"sh", "-c", cmd, NULL};
	if (hc_child_run(sh, 60000, 4096, &out, &err) != 0) {
		free(out);
		SKIP("cannot build the test initramfs (cpio, gzip)");
	}
	free(out);

	vm.initrd = cpio;
	vm.keys_in_env = true;
	ASSERT_OK(vm_start(&vm, "virtiofs", "serial", NULL, NULL, &err), &err);
	CHECK_VM(vm_connect(&vm, &hello) == 0);
	/* Not PID 1, but the commands still run in the image, and orphans are reaped by it. */
	CHECK_VM(vm_sh(&vm,
		       "test $$ -ne 1 && grep -c busybox /proc/1/cmdline; "
		       "test -d /hotcell && echo ok; (cat /dev/null &); echo done",
		       "", &o) == 0);
	CHECK_VM(o.got_exit && o.exit.code == 0 && hc_streq(o.out.data, "1\nok\ndone\n"));
	outcome_free(&o);
	CHECK_VM(hc_proto_frame_write(vm.c.fd, HC_FRAME_SHUTDOWN, 0, NULL, 0) == 0);
	int st = vm_wait(&vm);
	CHECK_VM(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* It exits with HC_BOOT_EXIT_OK instead of rebooting. */
	CHECK_VM(console_has(&vm, "hotcell-test: hotcell-init exited 0"));
	vm_stop(&vm);
}

static int make_image(void)
{
	struct hc_error err = {0};
	char p[4500], l[4500];
	static const char *const cmds[] = {"sh",  "echo",  "cat",  "id",   "hostname", "grep",
					   "cut", "touch", "test", "true", "dd",       "rm"};

	snprintf(image, sizeof(image), "%s/image", work);
	snprintf(p, sizeof(p), "%s/bin", image);
	if (hc_path_mkdir_p(p, 0755, &err) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/etc", image);
	if (hc_path_mkdir_p(p, 0755, &err) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/bin/busybox", image);
	const char *cp[] = {"cp", busybox, p, NULL};
	char *out = NULL;
	if (hc_child_run(cp, 10000, 4096, &out, &err) != 0) {
		free(out);
		return -1;
	}
	free(out);
	for (size_t i = 0; i < HC_ARRAY_SIZE(cmds); i++) {
		snprintf(l, sizeof(l), "%s/bin/%s", image, cmds[i]);
		if (symlink("busybox", l) < 0)
			return -1;
	}
	snprintf(p, sizeof(p), "%s/etc/passwd", image);
	const char *pw = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:"
			 "/bin/false\n";
	if (hc_path_write_file_atomic(p, pw, strlen(pw), 0644, &err) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/etc/group", image);
	const char *gr = "root:x:0:\nnogroup:x:65534:\n";
	if (hc_path_write_file_atomic(p, gr, strlen(gr), 0644, &err) < 0)
		return -1;
	return 0;
}

int main(void)
{
	const char *b = getenv("BUILD") ? getenv("BUILD") : "build";
	struct hc_error err = {0};

	snprintf(top, sizeof(top), "%s", getenv("HOTCELL_TOP") ? getenv("HOTCELL_TOP") : ".");
	if (getenv("HOTCELL_KERNEL"))
		snprintf(kernel, sizeof(kernel), "%s", getenv("HOTCELL_KERNEL"));
	else
		snprintf(kernel, sizeof(kernel), "%s/build/kernel/bzImage", top);
	snprintf(initrd, sizeof(initrd), "%s/%s/initramfs.cpio", top, b);
	snprintf(busybox, sizeof(busybox), "/bin/busybox");
	const char *tools = getenv("HOTCELL_TOOLS_DIR") ? getenv("HOTCELL_TOOLS_DIR")
							: "/var/cache/hotcell-tools";
	snprintf(vsockd_bin, sizeof(vsockd_bin), "%s/usr/bin/vhost-device-vsock", tools);
	if (access(vsockd_bin, X_OK) < 0) {
		const char *w[] = {"sh", "-c", "command -v vhost-device-vsock", NULL};
		char *out = NULL;
		vsockd_bin[0] = 0;
		if (hc_child_run(w, 5000, 4096, &out, &err) == 0 && out && out[0] == '/')
			snprintf(vsockd_bin, sizeof(vsockd_bin), "%.*s", (int)strcspn(out, "\n"),
				 out);
		free(out);
	}
	if (!mkdtemp(work) || make_image() < 0) {
		printf("FAIL: setup: cannot make the test image in %s\n", work);
		return 1;
	}
	RUN(boot_virtiofs_serial);
	RUN(boot_block_and_channel_close);
	RUN(boot_failure_is_reported);
	RUN(boot_vsock_and_reconnect);
	RUN(boot_as_child_of_another_init);
	if (hc_path_rm_rf(work, &err) < 0)
		fprintf(stderr, "cannot remove %s: %s\n", work, err.message);
	return test_summary();
}
