/* SPDX-License-Identifier: MIT */
/*
 * The libkrun driver (src/vmm/libkrun.c) through the backend interface, against the libkrun
 * double (tests/doubles/libkrun-double.c, loaded as HOTCELL_LIBKRUN): loading and symbol
 * resolution (missing library, missing mandatory symbol, missing optional symbol refused by
 * feature, version from the file name), the PVM/libkrunfw refusal, caps (no snapshots), and two
 * real VMs (the double runs the guest under QEMU TCG): a command over the vsock channel whose
 * worker then exits with hotcell-init's code 0 after the shutdown frame, and a guest whose setup
 * fails, whose worker exits with HC_BOOT_EXIT_FAILURE without ever saying hello.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent-client.h"
#include "core/path.h"
#include "proto/boot.h"
#include "test.h"
#include "vmm/accel.h"
#include "vmm/hvsock.h"
#include "vmm/libkrun.h"

static char top[HC_PATH_MAX], dbl[HC_PATH_MAX], tmp[HC_PATH_MAX];

static int so_path(char *buf, size_t n, const char *name)
{
	const char *b = getenv("BUILD");

	snprintf(buf, n, "%s/%s/tests/doubles/%s", top, b ? b : "build", name);
	return access(buf, R_OK);
}

TEST(version_from_name)
{
	char v[32];

	ASSERT_OK(hc_libkrun_version_from_name("libkrun.so.1.18.2", v, sizeof(v)), NULL);
	ASSERT_EQ_STR(v, "1.18.2");
	ASSERT_OK(hc_libkrun_version_from_name("/usr/lib64/libkrun.so.1.19.0", v, sizeof(v)), NULL);
	ASSERT_EQ_STR(v, "1.19.0");
	ASSERT_ERR(hc_libkrun_version_from_name("libkrun.so.1", v, sizeof(v)));
	ASSERT_ERR(hc_libkrun_version_from_name("libkrun-double.so", v, sizeof(v)));
	ASSERT_ERR(hc_libkrun_version_from_name("libkrun.so.1.18.2x", v, sizeof(v)));
}

TEST(status_strings)
{
	char s[160];

	hc_libkrun_status_str(HC_BOOT_EXIT_OK << 8, s, sizeof(s));
	ASSERT_TRUE(strstr(s, "hotcell-init ended the guest (exit 0)") != NULL);
	hc_libkrun_status_str(HC_BOOT_EXIT_FAILURE << 8, s, sizeof(s));
	ASSERT_TRUE(strstr(s, "could not set up the guest (exit 70)") != NULL);
	hc_libkrun_status_str(127 << 8, s, sizeof(s));
	ASSERT_TRUE(strstr(s, "libkrun's init could not find /hotcell-init") != NULL);
	hc_libkrun_status_str(SIGKILL, s, sizeof(s));
	ASSERT_TRUE(strstr(s, "the libkrun worker killed by signal KILL"));
}

TEST(missing_library)
{
	const struct hc_vmm_ops *ops = hc_vmm_find("libkrun");
	struct hc_error e = {0};

	ASSERT_TRUE(ops != NULL);
	setenv("HOTCELL_LIBKRUN", "/nonexistent/libkrun.so.1", 1);
	ASSERT_EQ_INT(ops->probe(NULL, NULL, 0, &e), -ENOENT);
	ASSERT_TRUE(strstr(e.message, "libkrun not usable: cannot load /nonexistent/libkrun.so.1"));
}

TEST(missing_mandatory_symbol)
{
	const struct hc_vmm_ops *ops = hc_vmm_find("libkrun");
	struct hc_error e = {0};
	char so[HC_PATH_MAX];

	if (so_path(so, sizeof(so), "libkrun-old.so") < 0)
		SKIP("the libkrun doubles are not built (make tests)");
	setenv("HOTCELL_LIBKRUN", so, 1);
	ASSERT_EQ_INT(ops->probe(NULL, NULL, 0, &e), -ENOSYS);
	ASSERT_TRUE(strstr(e.message, "libkrun not usable: missing symbol "
				      "krun_disable_implicit_vsock"));
}

TEST(version_and_optional_symbol)
{
	const struct hc_vmm_ops *ops = hc_vmm_find("libkrun");
	struct hc_error e = {0};
	char so[HC_PATH_MAX], link[HC_PATH_MAX], v[64] = "", init[HC_PATH_MAX];

	if (so_path(so, sizeof(so), "libkrun-nokernel.so") < 0)
		SKIP("the libkrun doubles are not built (make tests)");
	/* The version comes from the file name the soname chain leads to. */
	snprintf(link, sizeof(link), "%s/libkrun.so.1.18.4", tmp);
	unlink(link);
	ASSERT_TRUE(symlink(so, link) == 0);
	setenv("HOTCELL_LIBKRUN", link, 1);
	ASSERT_OK(ops->probe(NULL, v, sizeof(v), &e), &e);
	ASSERT_EQ_STR(v, "1.18.4");
	/* krun_set_kernel is optional: only --kernel is refused, naming it. */
	snprintf(init, sizeof(init), "%s/initramfs.cpio", tmp);
	struct hc_vm_spec spec = {.cpus = 1,
				  .memory_mib = 128,
				  .kernel = so,
				  .kernel_is_user = true,
				  .initrd = init,
				  .rootfs_mode = HC_ROOTFS_DIR,
				  .channel = HC_CHANNEL_VSOCK};
	ASSERT_EQ_INT(ops->probe(&spec, NULL, 0, &e), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(e.message, "does not support --kernel (krun_set_kernel)"));
	/* A version below the floor is refused even with every symbol. */
	snprintf(link, sizeof(link), "%s/libkrun.so.1.17.0", tmp);
	unlink(link);
	ASSERT_TRUE(symlink(dbl, link) == 0);
	setenv("HOTCELL_LIBKRUN", link, 1);
	ASSERT_EQ_INT(ops->probe(NULL, NULL, 0, &e), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(e.message, "older than 1.18"));
}

TEST(spec_refusals)
{
	const struct hc_vmm_ops *ops = hc_vmm_find("libkrun");
	struct hc_accel_host host;
	struct hc_error e = {0};
	struct hc_port p = {.host = 8080, .guest = 80};

	setenv("HOTCELL_LIBKRUN", dbl, 1);
	struct hc_vm_spec spec = {.cpus = 1,
				  .memory_mib = 128,
				  .rootfs_mode = HC_ROOTFS_DIR,
				  .channel = HC_CHANNEL_VSOCK,
				  .ports = &p,
				  .n_ports = 1};
	ASSERT_EQ_INT(ops->probe(&spec, NULL, 0, &e), -EINVAL);
	ASSERT_TRUE(strstr(e.message, "-p needs a network"));
	spec.n_ports = 0;
	spec.rootfs_mode = HC_ROOTFS_BLOCK;
	ASSERT_EQ_INT(ops->probe(&spec, NULL, 0, &e), -EOPNOTSUPP);
	spec.rootfs_mode = HC_ROOTFS_DIR;
	/* Without --kernel: libkrunfw's kernel, which cannot boot under PVM. */
	unsetenv("HOTCELL_LIBKRUNFW");
	hc_accel_host_probe(&host);
	ASSERT_ERR(ops->probe(&spec, NULL, 0, &e));
	if (host.pvm)
		ASSERT_TRUE(strstr(e.message, "PVM") && strstr(e.message, "libkrunfw") &&
			    strstr(e.message, "--kernel"));
	else
		ASSERT_TRUE(strstr(e.message, "libkrunfw") != NULL);
}

TEST(no_snapshots)
{
	const struct hc_vmm_ops *ops = hc_vmm_find("libkrun");
	struct hc_vm_spec spec = {.cpus = 1, .memory_mib = 128};
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;

	ASSERT_TRUE(!(ops->caps & (HC_CAP_SNAPSHOT | HC_CAP_RESTORE | HC_CAP_PAUSE)));
	ASSERT_OK(hc_vm_new(&vm, ops, &spec, &e), &e);
	ASSERT_EQ_INT(hc_vm_snapshot(vm, tmp, &e), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(e.message, "backend 'libkrun' does not support snapshots"));
	ASSERT_EQ_INT(hc_vm_pause(vm, &e), -EOPNOTSUPP);
	hc_vm_free(vm);
}

/* ---- real VMs (the double runs them under QEMU TCG) --------------------------------------- */

static char kernel[HC_PATH_MAX], initrd[HC_PATH_MAX], rootdir[HC_PATH_MAX];

static const char *vm_setup(void)
{
	const char *b = getenv("BUILD");
	char p[HC_PATH_MAX];

	snprintf(kernel, sizeof(kernel), "%s/%s/kernel/vmlinux", top, b ? b : "build");
	if (access(kernel, R_OK) < 0) {
		/* check-asan builds elsewhere; the kernel stays in the plain build. */
		snprintf(kernel, sizeof(kernel), "%s/build/kernel/vmlinux", top);
		if (access(kernel, R_OK) < 0)
			return "the project's kernel is not built (make kernel)";
	}
	snprintf(initrd, sizeof(initrd), "%s/build/initramfs.cpio", top);
	snprintf(p, sizeof(p), "%s/build/bin/hotcell-init", top);
	if (access(p, X_OK) < 0)
		return "hotcell-init is not built";
	if (access("/var/cache/hotcell-tools/usr/bin/vhost-device-vsock", X_OK) < 0 &&
	    !getenv("HOTCELL_VHOST_DEVICE_VSOCK"))
		return "vhost-device-vsock is not installed (FACTS.md)";
	if (access("/bin/busybox", X_OK) < 0)
		return "busybox-static is not installed";
	snprintf(rootdir, sizeof(rootdir), "%s/rootfs", tmp);
	snprintf(p, sizeof(p), "%s/rootfs/bin", tmp);
	if (hc_path_mkdir_p(p, 0755, NULL) < 0)
		return "mkdir failed";
	snprintf(p, sizeof(p),
		 "cp /bin/busybox %s/rootfs/bin/busybox && ln -sf busybox "
		 "%s/rootfs/bin/sh",
		 tmp, tmp);
	if (system(p) != 0)
		return "cannot build the test rootfs";
	return NULL;
}

/* A VM of the test kernel and initramfs on the test rootfs (after vm_setup). Unjailed: the
 * double's guest needs QEMU's C virtiofsd, which cannot start in the worker's jail (the jail
 * itself is tests/integration/libkrun.sh's). */
static struct hc_vm_spec vm_spec(void)
{
	struct hc_vm_spec s = {.cpus = 1,
			       .no_jail = true,
			       .memory_mib = 256,
			       .kernel = kernel,
			       .kernel_is_user = true,
			       .initrd = initrd,
			       .rootfs_mode = HC_ROOTFS_DIR,
			       .rootfs_dir = rootdir,
			       .channel = HC_CHANNEL_VSOCK,
			       .boot_timeout_ms = 60000};
	return s;
}

/* Boots spec through the double, accepts the agent channel and reads its HELLO; NULL with e
 * set (the console tail in it) on failure. */
static struct hc_vm *boot_hello(struct hc_vm_spec *spec, struct agent_conn *c, int *ret_fd,
				struct hc_error *e)
{
	const struct hc_vmm_ops *ops = hc_vmm_find("libkrun");
	struct hc_proto_hello h;
	struct hc_vm *vm = NULL;
	int fd;

	setenv("HOTCELL_LIBKRUN", dbl, 1);
	if (hc_vm_new(&vm, ops, spec, e) < 0)
		return NULL;
	if (hc_vm_start(vm, e) < 0 || vm->agent_listen_fd < 0 || vm->death_fd < 0) {
		hc_vm_free(vm);
		return NULL;
	}
	fd = hc_hvsock_accept(vm->agent_listen_fd, vm->death_fd, 60000, e);
	if (fd < 0) {
		hc_vm_error_add_console(vm, e);
		hc_vm_free(vm);
		return NULL;
	}
	ac_init(c, fd, 60000);
	if (ac_hello(c, &h) < 0 || h.version != HC_PROTO_VERSION) {
		hc_error_setk(e, -EPROTO, "test", "no HELLO of version %d", HC_PROTO_VERSION);
		ac_free(c);
		hc_vm_free(vm);
		return NULL;
	}
	*ret_fd = fd;
	return vm;
}

TEST(vm_command_then_exit_code)
{
	const char *why = vm_setup();
	const char *argv[] = {"/bin/sh", "-c", "echo hi; exit 5", NULL};
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	struct agent_conn c;
	struct outcome o;
	int fd;

	if (why)
		SKIP(why);
	struct hc_vm_spec spec = vm_spec();
	vm = boot_hello(&spec, &c, &fd, &e);
	if (!vm)
		FAILF("%s", e.message);
	ASSERT_OK(ac_send_exec(&c, argv, "/", NULL, 0, 30000), NULL);
	ASSERT_OK(ac_collect(&c, &o), NULL);
	ASSERT_TRUE(o.got_exit);
	ASSERT_EQ_INT(o.exit.code, 5);
	ASSERT_TRUE(o.out.len == 3 && memcmp(o.out.data, "hi\n", 3) == 0);
	outcome_free(&o);
	/* The exit frame is the command's; the worker's status is hotcell-init's: 0 after the
	 * host's shutdown frame (libkrun's exit-code path). */
	ASSERT_OK(hc_proto_frame_write(fd, HC_FRAME_SHUTDOWN, 0, NULL, 0), NULL);
	struct pollfd p = {.fd = vm->death_fd, .events = POLLIN};
	ASSERT_EQ_INT(poll(&p, 1, 60000), 1);
	ASSERT_EQ_INT(hc_vm_check(vm, &e), -ESHUTDOWN);
	ASSERT_TRUE(strstr(e.message, "hotcell-init ended the guest (exit 0)") != NULL);
	ac_free(&c);
	hc_vm_free(vm);
}

/* libkrun passes no kernel command line: the host's keys (--hostname, --read-only, --tmpfs,
 * --dns) reach hotcell-init as HOTCELL_CMDLINE, and are honoured, not silently dropped. */
TEST(vm_boot_keys_without_a_command_line)
{
	const char *why = vm_setup();
	const char *argv[] = {
		"/bin/sh", "-c",
		"hostname; touch /rootfile 2>/dev/null || echo ro; touch /scratch/x && "
		"echo tmpfs; cat /etc/resolv.conf",
		NULL};
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	struct agent_conn c;
	struct outcome o;
	int fd;

	if (why)
		SKIP(why);
	struct hc_vm_spec spec = vm_spec();

	spec.cmdline = "hotcell.hostname=krunbox hotcell.root_ro=1 hotcell.tmpfs=/scratch "
		       "hotcell.nameserver=9.9.9.9";
	vm = boot_hello(&spec, &c, &fd, &e);
	if (!vm)
		FAILF("%s", e.message);
	ASSERT_OK(ac_send_exec(&c, argv, "/", NULL, 0, 30000), NULL);
	ASSERT_OK(ac_collect(&c, &o), NULL);
	ASSERT_TRUE(o.got_exit);
	ASSERT_TRUE(hc_buf_append(&o.out, "", 1) == 0);
	if (!strstr(o.out.data, "krunbox\nro\ntmpfs\nnameserver 9.9.9.9\n"))
		FAILF("guest said '%s'", o.out.data);
	outcome_free(&o);
	ASSERT_OK(hc_proto_frame_write(fd, HC_FRAME_SHUTDOWN, 0, NULL, 0), NULL);
	ac_free(&c);
	hc_vm_free(vm);
}

TEST(vm_setup_failure_is_not_a_command_code)
{
	const char *why = vm_setup();
	const struct hc_vmm_ops *ops = hc_vmm_find("libkrun");
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	/* A volume mounted over a file: hotcell-init cannot set up the guest. */
	struct hc_volume vol = {.host = tmp, .guest = "/bin/busybox", .readonly = true};

	if (why)
		SKIP(why);
	setenv("HOTCELL_LIBKRUN", dbl, 1);
	struct hc_vm_spec spec = vm_spec();

	spec.volumes = &vol;
	spec.n_volumes = 1;
	ASSERT_OK(hc_vm_new(&vm, ops, &spec, &e), &e);
	ASSERT_OK(hc_vm_start(vm, &e), &e);
	/* The worker dies before any connection: accept is cancelled by its pidfd. */
	ASSERT_EQ_INT(hc_hvsock_accept(vm->agent_listen_fd, vm->death_fd, 60000, &e), -ECHILD);
	ASSERT_EQ_INT(hc_vm_check(vm, &e), -EIO);
	if (!strstr(e.message, "hotcell-init could not set up the guest (exit 70)")) {
		hc_vm_error_add_console(vm, &e);
		hc_vm_free(vm);
		FAILF("%s", e.message);
	}
	hc_vm_free(vm);
}

int main(void)
{
	const char *t = getenv("HOTCELL_TOP");
	char p[HC_PATH_MAX];

	if (!realpath(t ? t : ".", top))
		return 1;
	if (so_path(p, sizeof(p), "libkrun-double.so") < 0 || !realpath(p, dbl)) {
		printf("SKIP: libkrun: the libkrun double is not built (make tests)\n");
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "/tmp/hc-lk.XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	/* Runtime dirs of the VMs under the scratch dir, removed with it. */
	snprintf(p, sizeof(p), "%s/run", tmp);
	if (mkdir(p, 0700) < 0)
		return 1;
	setenv("HOTCELL_RUNTIME_DIR", p, 1);
	RUN(version_from_name);
	RUN(status_strings);
	RUN(missing_library);
	RUN(missing_mandatory_symbol);
	RUN(version_and_optional_symbol);
	RUN(spec_refusals);
	RUN(no_snapshots);
	RUN(vm_command_then_exit_code);
	RUN(vm_boot_keys_without_a_command_line);
	RUN(vm_setup_failure_is_not_a_command_code);
	hc_path_rm_rf(tmp, NULL);
	return test_summary();
}
