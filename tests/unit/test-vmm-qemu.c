/* SPDX-License-Identifier: MIT */
/* The QEMU command line, the accelerator rule, the QMP client against a scripted peer, and
 * the backend wrappers. */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test.h"
#include "core/path.h"
#include "vmm/accel.h"
#include "vmm/qemu.h"
#include "vmm/qmp.h"

static bool has(char **argv, const char *s)
{
	for (; *argv; argv++)
		if (strcmp(*argv, s) == 0)
			return true;
	return false;
}

/* opt followed by val somewhere in argv */
static bool has_pair(char **argv, const char *opt, const char *val)
{
	for (; argv[0] && argv[1]; argv++)
		if (strcmp(argv[0], opt) == 0 && strcmp(argv[1], val) == 0)
			return true;
	return false;
}

static const char *value_of(char **argv, const char *opt)
{
	for (; argv[0] && argv[1]; argv++)
		if (strcmp(argv[0], opt) == 0)
			return argv[1];
	return NULL;
}

static struct hc_vm_spec base_spec(void)
{
	struct hc_vm_spec s = {
		.cpus = 1,
		.memory_mib = 256,
		.kernel = "/k/bzImage",
		.initrd = "/k/initramfs.cpio",
		.accel = HC_ACCEL_TCG,
		.rootfs_mode = HC_ROOTFS_DIR,
		.rootfs_dir = "/cache/root",
		.channel = HC_CHANNEL_SERIAL,
	};
	return s;
}

static struct hc_qemu_argv_in base_in(void)
{
	struct hc_qemu_argv_in in = {
		.qemu = "qemu-system-x86_64",
		.console_log = "/run/hc/x/console.log",
		.qmp_fd = 3,
		.agent_fd = 4,
		.rootfs_sock = "/run/hc/x/fs-root.sock",
		.vsock_sock = "/run/hc/x/vsock.sock",
	};
	return in;
}

TEST(argv_dir_serial_tcg)
{
	struct hc_vm_spec s = base_spec();
	struct hc_qemu_argv_in in = base_in();
	struct hc_error e = { 0 };
	char **argv = NULL;

	ASSERT_OK(hc_qemu_argv_build(&s, &in, &argv, &e), &e);
	ASSERT_EQ_STR(argv[0], "qemu-system-x86_64");
	ASSERT_TRUE(has(argv, "-nodefaults") && has(argv, "-no-user-config") &&
		    has(argv, "-no-reboot"));
	ASSERT_TRUE(has_pair(argv, "-M", "microvm,acpi=off,memory-backend=mem"));
	ASSERT_TRUE(has_pair(argv, "-accel", "tcg"));
	ASSERT_TRUE(!has(argv, "-cpu"));
	ASSERT_TRUE(has_pair(argv, "-m", "256M"));
	ASSERT_TRUE(has_pair(argv, "-object", "memory-backend-memfd,id=mem,size=256M,share=on"));
	ASSERT_TRUE(has_pair(argv, "-global", "virtio-mmio.force-legacy=false"));
	ASSERT_TRUE(has_pair(argv, "-kernel", "/k/bzImage"));
	ASSERT_TRUE(has_pair(argv, "-initrd", "/k/initramfs.cpio"));
	ASSERT_TRUE(has_pair(argv, "-chardev", "file,id=con,path=/run/hc/x/console.log"));
	ASSERT_TRUE(has_pair(argv, "-serial", "chardev:con"));
	ASSERT_TRUE(has_pair(argv, "-chardev", "socket,id=qmp,fd=3"));
	ASSERT_TRUE(has_pair(argv, "-mon", "chardev=qmp,mode=control"));
	ASSERT_TRUE(has_pair(argv, "-chardev", "socket,id=fs-root,path=/run/hc/x/fs-root.sock"));
	ASSERT_TRUE(has_pair(argv, "-device", "vhost-user-fs-device,chardev=fs-root,tag=hcroot"));
	ASSERT_TRUE(has_pair(argv, "-device", "virtio-serial-device,max_ports=2"));
	ASSERT_TRUE(has_pair(argv, "-chardev", "socket,id=agent,fd=4"));
	ASSERT_TRUE(has_pair(argv, "-device",
			     "virtserialport,chardev=agent,name=org.hotcell.agent"));
	ASSERT_TRUE(!has(argv, "-drive"));
	ASSERT_EQ_STR(value_of(argv, "-append"), "console=ttyS0 reboot=t panic=-1 quiet noreplace-smp "
						 "lpj=1548288 noapictimer no_timer_check hotcell.root=virtiofs "
						 "hotcell.channel=serial");
	hc_qemu_argv_free(argv);
}

TEST(argv_block_serial)
{
	struct hc_vm_spec s = base_spec();
	struct hc_qemu_argv_in in = base_in();
	struct hc_error e = { 0 };
	char **argv = NULL;

	s.rootfs_mode = HC_ROOTFS_BLOCK;
	s.rootfs_dir = NULL;
	s.rootfs_disk = "/cache/disks/a,b.ext4";
	s.memory_mib = 512;
	s.cpus = 2;
	s.cmdline = "hotcell.debug=1";
	in.rootfs_sock = NULL;
	ASSERT_OK(hc_qemu_argv_build(&s, &in, &argv, &e), &e);
	/* No vhost-user device: plain RAM, legacy virtio-mmio is fine. */
	ASSERT_TRUE(has_pair(argv, "-M", "microvm,acpi=off"));
	ASSERT_TRUE(!has(argv, "-object") && !has(argv, "-global"));
	ASSERT_TRUE(has_pair(argv, "-m", "512M") && has_pair(argv, "-smp", "2"));
	/* The comma in the path is doubled (QEMU option syntax). */
	ASSERT_TRUE(has_pair(argv, "-drive",
			     "file=/cache/disks/a,,b.ext4,if=none,id=root,format=raw,readonly=on"));
	ASSERT_TRUE(has_pair(argv, "-device", "virtio-blk-device,drive=root"));
	ASSERT_TRUE(!has_pair(argv, "-device", "vhost-user-fs-device,chardev=fs-root,tag=hcroot"));
	ASSERT_EQ_STR(value_of(argv, "-append"),
		      "console=ttyS0 reboot=t panic=-1 quiet noreplace-smp lpj=1548288 noapictimer no_timer_check "
		      "hotcell.root=block "
		      "hotcell.channel=serial hotcell.debug=1");
	hc_qemu_argv_free(argv);

	/* RAM in a file shared with the host (the snapshottable configuration)... */
	in.mem_path = "/proc/self/fd/5";
	ASSERT_OK(hc_qemu_argv_build(&s, &in, &argv, &e), &e);
	ASSERT_TRUE(has_pair(argv, "-M", "microvm,acpi=off,memory-backend=mem"));
	ASSERT_TRUE(has_pair(argv, "-object",
			     "memory-backend-file,id=mem,size=512M,mem-path=/proc/self/fd/5,share=on"));
	ASSERT_TRUE(!has(argv, "-global"));
	hc_qemu_argv_free(argv);
	/* ...or a snapshot's memory file mapped copy-on-write (restore). */
	in.mem_path = "/snaps/a,b/memory";
	in.mem_private = true;
	in.incoming = true;
	ASSERT_OK(hc_qemu_argv_build(&s, &in, &argv, &e), &e);
	ASSERT_TRUE(has_pair(argv, "-object", "memory-backend-file,id=mem,size=512M,"
					      "mem-path=/snaps/a,,b/memory,share=off"));
	ASSERT_TRUE(has_pair(argv, "-incoming", "defer"));
	hc_qemu_argv_free(argv);
	/* A vhost-user device needs QEMU's shared memfd: no RAM file with it. */
	s.channel = HC_CHANNEL_VSOCK;
	in.vsock_sock = "/run/x/vsock.sock";
	ASSERT_EQ_INT(hc_qemu_argv_build(&s, &in, &argv, &e), -EINVAL);
}

TEST(argv_vsock)
{
	struct hc_vm_spec s = base_spec();
	struct hc_qemu_argv_in in = base_in();
	struct hc_error e = { 0 };
	char **argv = NULL;

	s.channel = HC_CHANNEL_VSOCK;
	s.rootfs_mode = HC_ROOTFS_BLOCK;
	s.rootfs_disk = "/d.ext4";
	in.agent_fd = -1;
	ASSERT_OK(hc_qemu_argv_build(&s, &in, &argv, &e), &e);
	/* vhost-user-vsock needs the shared memory backend even with a block rootfs. */
	ASSERT_TRUE(has_pair(argv, "-M", "microvm,acpi=off,memory-backend=mem"));
	ASSERT_TRUE(has_pair(argv, "-chardev", "socket,id=vsock,path=/run/hc/x/vsock.sock"));
	ASSERT_TRUE(has_pair(argv, "-device", "vhost-user-vsock-device,chardev=vsock"));
	ASSERT_TRUE(!has(argv, "virtio-serial-device,max_ports=2"));
	ASSERT_TRUE(strstr(value_of(argv, "-append"), "hotcell.channel=vsock") != NULL);
	hc_qemu_argv_free(argv);
}

TEST(argv_volumes)
{
	struct hc_vm_spec s = base_spec();
	struct hc_qemu_argv_in in = base_in();
	struct hc_volume vols[] = { { "/srv/data", "/data", true }, { "/tmp/out", "/out", false } };
	const char *socks[] = { "/run/hc/x/fs-vol0.sock", "/run/hc/x/fs-vol1.sock" };
	struct hc_error e = { 0 };
	char **argv = NULL;

	s.volumes = vols;
	s.n_volumes = 2;
	in.volume_socks = socks;
	ASSERT_OK(hc_qemu_argv_build(&s, &in, &argv, &e), &e);
	ASSERT_TRUE(has_pair(argv, "-chardev", "socket,id=fs-vol0,path=/run/hc/x/fs-vol0.sock"));
	ASSERT_TRUE(has_pair(argv, "-device", "vhost-user-fs-device,chardev=fs-vol0,tag=hcvol0"));
	ASSERT_TRUE(has_pair(argv, "-chardev", "socket,id=fs-vol1,path=/run/hc/x/fs-vol1.sock"));
	ASSERT_TRUE(has_pair(argv, "-device", "vhost-user-fs-device,chardev=fs-vol1,tag=hcvol1"));
	ASSERT_EQ_STR(value_of(argv, "-append"),
		      "console=ttyS0 reboot=t panic=-1 quiet noreplace-smp lpj=1548288 noapictimer no_timer_check "
		      "hotcell.root=virtiofs "
		      "hotcell.channel=serial hotcell.vol=hcvol0:/data:ro hotcell.vol=hcvol1:/out");
	hc_qemu_argv_free(argv);

	/* A guest path that would break the command line is refused. */
	struct hc_volume bad[] = { { "/srv", "/a b", false } };
	s.volumes = bad;
	s.n_volumes = 1;
	argv = NULL;
	ASSERT_ERR(hc_qemu_argv_build(&s, &in, &argv, &e));
	ASSERT_TRUE(argv == NULL);
	struct hc_volume bad2[] = { { "/srv", "/a:ro", false } };
	s.volumes = bad2;
	ASSERT_ERR(hc_qemu_argv_build(&s, &in, &argv, &e));
	struct hc_volume bad3[] = { { "/srv", "relative", false } };
	s.volumes = bad3;
	ASSERT_ERR(hc_qemu_argv_build(&s, &in, &argv, &e));
}

TEST(argv_q35)
{
	struct hc_vm_spec s = base_spec();
	struct hc_qemu_argv_in in = base_in();
	struct hc_volume vols[] = { { "/srv/data", "/data", false } };
	const char *socks[] = { "/run/hc/x/fs-vol0.sock" };
	struct hc_error e = { 0 };
	char **argv = NULL;

	in.machine = HC_QEMU_Q35;
	in.bios = "/usr/share/qemu/qboot.rom";
	s.volumes = vols;
	s.n_volumes = 1;
	in.volume_socks = socks;
	ASSERT_OK(hc_qemu_argv_build(&s, &in, &argv, &e), &e);
	ASSERT_TRUE(has_pair(argv, "-M", "q35,memory-backend=mem"));
	ASSERT_TRUE(has_pair(argv, "-bios", "/usr/share/qemu/qboot.rom"));
	ASSERT_TRUE(!has(argv, "-global"));
	ASSERT_TRUE(has_pair(argv, "-device", "vhost-user-fs-pci,chardev=fs-root,tag=hcroot"));
	ASSERT_TRUE(has_pair(argv, "-device", "vhost-user-fs-pci,chardev=fs-vol0,tag=hcvol0"));
	ASSERT_TRUE(has_pair(argv, "-device", "virtio-serial-pci,max_ports=2"));
	hc_qemu_argv_free(argv);

	s.rootfs_mode = HC_ROOTFS_BLOCK;
	s.rootfs_disk = "/d.ext4";
	s.n_volumes = 0;
	s.channel = HC_CHANNEL_VSOCK;
	ASSERT_OK(hc_qemu_argv_build(&s, &in, &argv, &e), &e);
	ASSERT_TRUE(has_pair(argv, "-device", "virtio-blk-pci,drive=root"));
	ASSERT_TRUE(has_pair(argv, "-device", "vhost-user-vsock-pci,chardev=vsock"));
	hc_qemu_argv_free(argv);
}

TEST(argv_kvm)
{
	struct hc_vm_spec s = base_spec();
	struct hc_qemu_argv_in in = base_in();
	struct hc_error e = { 0 };
	char **argv = NULL;

	s.accel = HC_ACCEL_KVM;
	ASSERT_OK(hc_qemu_argv_build(&s, &in, &argv, &e), &e);
	ASSERT_TRUE(has_pair(argv, "-accel", "kvm"));
	ASSERT_TRUE(has_pair(argv, "-cpu", "host"));
	/* The TCG-only boot arguments (no self-calibration skipped under KVM). */
	ASSERT_TRUE(strstr(value_of(argv, "-append"), "noapictimer") == NULL);
	hc_qemu_argv_free(argv);

	/* AUTO must have been resolved by the caller (accel.h). */
	s.accel = HC_ACCEL_AUTO;
	ASSERT_ERR(hc_qemu_argv_build(&s, &in, &argv, &e));
}

TEST(accel_rule)
{
	struct hc_accel_host plain = { .kvm_usable = true }, pvm = { .kvm_usable = true, .pvm = true },
			     none = { .kvm_usable = false, .kvm_why = "/dev/kvm: No such file" };
	struct hc_error e = { 0 };
	enum hc_accel a;
	char why[200];

	ASSERT_OK(hc_accel_decide(HC_ACCEL_AUTO, &plain, false, true, &a, why, sizeof(why), &e), &e);
	ASSERT_EQ_INT(a, HC_ACCEL_KVM);
	/* PVM + the project's kernel: TCG, and why says PVM. */
	ASSERT_OK(hc_accel_decide(HC_ACCEL_AUTO, &pvm, false, true, &a, why, sizeof(why), &e), &e);
	ASSERT_EQ_INT(a, HC_ACCEL_TCG);
	ASSERT_TRUE(strstr(why, "PVM") != NULL);
	/* PVM + the user's kernel: trusted. */
	ASSERT_OK(hc_accel_decide(HC_ACCEL_AUTO, &pvm, true, true, &a, why, sizeof(why), &e), &e);
	ASSERT_EQ_INT(a, HC_ACCEL_KVM);
	/* KVM-only backends on PVM with the project's kernel: refused with the reason. */
	ASSERT_ERR(hc_accel_decide(HC_ACCEL_KVM, &pvm, false, false, &a, NULL, 0, &e));
	ASSERT_TRUE(strstr(e.message, "PVM") != NULL);
	ASSERT_ERR(hc_accel_decide(HC_ACCEL_AUTO, &pvm, false, false, &a, NULL, 0, &e));
	ASSERT_ERR(hc_accel_decide(HC_ACCEL_AUTO, &none, false, false, &a, NULL, 0, &e));
	ASSERT_TRUE(strstr(e.message, "No such file") != NULL);
	ASSERT_OK(hc_accel_decide(HC_ACCEL_AUTO, &none, false, true, &a, NULL, 0, &e), &e);
	ASSERT_EQ_INT(a, HC_ACCEL_TCG);
	ASSERT_OK(hc_accel_decide(HC_ACCEL_TCG, &plain, false, true, &a, NULL, 0, &e), &e);
	ASSERT_EQ_INT(a, HC_ACCEL_TCG);
	ASSERT_ERR(hc_accel_decide(HC_ACCEL_TCG, &plain, false, false, &a, NULL, 0, &e));
	ASSERT_EQ_STR(hc_accel_name(HC_ACCEL_TCG), "tcg");
}

/* A scripted QMP peer in a child process: greeting, then answers by the command name, with
 * events interleaved the way QEMU sends them. */
static void fake_qmp(int fd)
{
	FILE *f = fdopen(fd, "r+");
	char line[4096];

	fputs("{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
	      "\"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n", f);
	fflush(f);
	while (fgets(line, sizeof(line), f)) {
		char id[32] = "0";
		const char *p = strstr(line, "\"id\":");

		if (p)
			snprintf(id, sizeof(id), "%.*s", (int)strcspn(p + 5, ",}"), p + 5);
		if (strstr(line, "qmp_capabilities")) {
			fprintf(f, "{\"return\": {}, \"id\": %s}\r\n", id);
		} else if (strstr(line, "query-status")) {
			fprintf(f, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
				   "\"event\": \"STOP\"}\r\n");
			fprintf(f, "{\"return\": {\"status\": \"internal-error\", \"singlestep\": "
				   "false, \"running\": false}, \"id\": %s}\r\n", id);
		} else if (strstr(line, "\"quit\"")) {
			fprintf(f, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, "
				   "\"reason\": \"host-qmp-quit\"}}\r\n");
			fprintf(f, "{\"return\": {}, \"id\": %s}\r\n", id);
			fflush(f);
			break;
		} else {
			fprintf(f, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
				   "\"The command nope has not been found\"}, \"id\": %s}\r\n", id);
		}
		fflush(f);
	}
	fclose(f);
	_exit(0);
}

TEST(qmp_client)
{
	struct hc_qmp q = HC_QMP_INIT;
	struct hc_error e = { 0 };
	char status[32];
	int sp[2], st;

	ASSERT_TRUE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(sp[0]);
		fake_qmp(sp[1]);
	}
	close(sp[1]);
	ASSERT_OK(hc_qmp_open(&q, sp[0], 5000, &e), &e);
	ASSERT_EQ_STR(q.version, "7.2.22");
	ASSERT_OK(hc_qmp_query_status(&q, 5000, status, sizeof(status), &e), &e);
	ASSERT_EQ_STR(status, "internal-error");
	ASSERT_EQ_INT(q.n_stop, 1);
	ASSERT_ERR(hc_qmp_execute(&q, "nope", NULL, 5000, NULL, &e));
	ASSERT_TRUE(strstr(e.message, "CommandNotFound") != NULL);
	ASSERT_OK(hc_qmp_execute(&q, "quit", NULL, 5000, NULL, &e), &e);
	ASSERT_TRUE(q.shutdown);
	ASSERT_EQ_STR(q.shutdown_reason, "host-qmp-quit");
	waitpid(pid, &st, 0);
	ASSERT_EQ_INT(hc_qmp_drain(&q, &e), -EPIPE);
	ASSERT_TRUE(q.eof);
	hc_qmp_close(&q);
}

TEST(qmp_lines)
{
	struct hc_qmp q = HC_QMP_INIT;
	const char *panic = "{\"event\": \"GUEST_PANICKED\", \"data\": {\"action\": \"pause\"}}";

	ASSERT_EQ_INT(hc_qmp_handle_line(&q, panic, strlen(panic)), 0);
	ASSERT_TRUE(q.panicked);
	ASSERT_EQ_INT(hc_qmp_handle_line(&q, "{\"return\": {}}", 14), 1);
	ASSERT_EQ_INT(hc_qmp_handle_line(&q, "[1]", 3), -EBADMSG);
	ASSERT_EQ_INT(hc_qmp_handle_line(&q, "{\"a\":1,\"a\":2}", 13), -EBADMSG);
	ASSERT_EQ_INT(hc_qmp_handle_line(&q, "{", 1), -EBADMSG);
}

static const struct hc_vmm_ops fake_ops = {
	.name = "fake",
	.caps = HC_CAP_ROOTFS_BLOCK | HC_CAP_CHANNEL_VSOCK,
};

TEST(wrappers)
{
	struct hc_vm_spec s = base_spec();
	struct hc_error e = { 0 };
	struct hc_vm *vm = NULL;
	char dir[HC_PATH_MAX];
	struct stat st;

	ASSERT_TRUE(hc_vmm_find("qemu") == &hc_vmm_qemu_ops);
	ASSERT_TRUE(hc_vmm_find("nope") == NULL);
	ASSERT_OK(hc_vm_new(&vm, &fake_ops, &s, &e), &e);
	snprintf(dir, sizeof(dir), "%s", vm->run_dir);
	ASSERT_TRUE(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 077) == 0);
	ASSERT_EQ_INT(hc_vm_snapshot(vm, "/tmp", &e), -EOPNOTSUPP);
	ASSERT_EQ_STR(e.message, "backend 'fake' does not support snapshots");
	ASSERT_EQ_INT(hc_vm_pause(vm, &e), -EOPNOTSUPP);
	/* The spec asks for a directory rootfs: refused before anything starts. */
	ASSERT_EQ_INT(hc_vm_start(vm, &e), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(e.message, "backend 'fake' does not support a directory") != NULL);

	/* The console tail goes into the message, on one line. */
	FILE *f = fopen(vm->console_log, "we");
	ASSERT_TRUE(f != NULL);
	for (int i = 0; i < 30; i++)
		fprintf(f, "line %d\r\n", i);
	fprintf(f, "last words\n");
	fclose(f);
	hc_error_set(&e, -EIO, "the VM failed");
	hc_vm_error_add_console(vm, &e);
	ASSERT_TRUE(strstr(e.message, "the VM failed; console: ") == e.message);
	ASSERT_TRUE(strstr(e.message, "line 29 | last words") != NULL);
	ASSERT_TRUE(strstr(e.message, "line 20") == NULL);
	ASSERT_TRUE(strchr(e.message, '\n') == NULL && strchr(e.message, '\r') == NULL);

	/* After a panic, the panic line leads even when the trace below it is long. */
	f = fopen(vm->console_log, "ae");
	ASSERT_TRUE(f != NULL);
	fprintf(f, "[    2.0] Kernel panic - not syncing: Attempted to kill init!\n");
	for (int i = 0; i < 30; i++)
		fprintf(f, "[    2.0]  ? trace_%d+0x1/0x2\n", i);
	fclose(f);
	hc_error_set(&e, -EIO, "guest kernel panic");
	hc_vm_error_add_console(vm, &e);
	ASSERT_TRUE(strstr(e.message, "console: [    2.0] Kernel panic - not syncing") != NULL);
	hc_vm_free(vm);
	ASSERT_TRUE(stat(dir, &st) < 0 && errno == ENOENT);
	hc_vm_free(NULL);

	/* QEMU snapshots: refused up front, with the reason, for what 7.2 cannot migrate. */
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_qemu_ops, &s, &e), &e);
	ASSERT_EQ_INT(hc_vm_snapshot_check(vm, &e), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(e.message, "only with --rootfs-mode block") != NULL);
	vm->spec.rootfs_mode = HC_ROOTFS_BLOCK;
	vm->spec.channel = HC_CHANNEL_VSOCK;
	ASSERT_EQ_INT(hc_vm_snapshot_check(vm, &e), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(e.message, "only with --channel serial") != NULL);
	ASSERT_EQ_INT(hc_vm_restore(vm, "/nonexistent", &e), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(e.message, "restores snapshots only with --channel serial") != NULL);
	vm->spec.channel = HC_CHANNEL_SERIAL;
	struct hc_volume vol = {.host = "/tmp", .guest = "/data"};
	vm->spec.volumes = &vol;
	vm->spec.n_volumes = 1;
	ASSERT_EQ_INT(hc_vm_snapshot_check(vm, &e), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(e.message, "only without -v") != NULL);
	vm->spec.n_volumes = 0;
	ASSERT_OK(hc_vm_snapshot_check(vm, &e), &e);
	hc_vm_free(vm);
}

int main(void)
{
	RUN(argv_dir_serial_tcg);
	RUN(argv_block_serial);
	RUN(argv_vsock);
	RUN(argv_volumes);
	RUN(argv_q35);
	RUN(argv_kvm);
	RUN(accel_rule);
	RUN(qmp_client);
	RUN(qmp_lines);
	RUN(wrappers);
	return test_summary();
}
