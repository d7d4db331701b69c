/* SPDX-License-Identifier: MIT */
/*
 * The Cloud Hypervisor driver through the backend interface, against the strict double
 * (tests/doubles/cloud-hypervisor-double.c, found as HOTCELL_CLOUD_HYPERVISOR), with a real
 * virtiofsd:
 *   - the double itself keeps to the OpenAPI description (state machine, status codes, unknown
 *     fields), so the driver is checked against something that refuses what CH refuses;
 *   - start: the vm.create body (payload, cpus, shared memory, fs entries for the rootfs and the
 *     volumes on virtiofsd sockets, vsock, serial file, console off), vm.boot, the guest's
 *     hybrid-vsock connection, vmm.shutdown at the end; nothing left behind;
 *   - failures: API errors with the endpoint (JSON error chains and plain text), an early exit,
 *     an exit during vm.create; each leaves no process and no file;
 *   - probe: version, an old version, the PVM refusal, a bzImage, a missing binary;
 *   - pause/resume, snapshot (paused only, block rootfs only) and restore into a fresh process
 *     with the host-initiated reconnect;
 *   - VFIO pre-flight checks on a fake sysfs (HOTCELL_SYSFS_ROOT);
 *   - end to end: the double boots a test init in QEMU (TCG) on the driver's virtiofsd: the
 *     image is read-only from the host's side, a volume is writable, and a guest reboot shows
 *     on death_fd as the event monitor's "rebooting".
 * SKIPs with the reason when the double is not built, /dev/kvm is unusable, or (end to end) no
 * ELF vmlinux, static cc, virtiofsd or vhost-device-vsock is at hand.
 */
#include <fcntl.h>
#include <glob.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#include "core/child.h"
#include "core/clock.h"
#include "core/path.h"
#include "test.h"
#include "vm-double.h"
#include "vmm/accel.h"
#include "vmm/cloud-hypervisor.h"
#include "vmm/hvsock.h"
#include "vmm/rest.h"
#include "vmm/virtiofsd.h"
#include "vmm/vmm.h"

#define IO_TIMEOUT_MS 120000
#define OPS (&hc_vmm_cloud_hypervisor_ops)

static char tmp[HC_PATH_MAX], dbl[HC_PATH_MAX], fake_kernel[HC_PATH_MAX], fake_initrd[HC_PATH_MAX],
	fake_disk[HC_PATH_MAX], reqlog[HC_PATH_MAX], rootdir[HC_PATH_MAX], voldir[HC_PATH_MAX],
	sysfs[HC_PATH_MAX];
static const char *skip_all;
/* The VM of a test that failed half-way: freed by the next test, so nothing cascades. */
static struct hc_vm *leak;

/* Most cases run the driver, which needs KVM; the double's own checks and the VFIO checks
 * do not. */
static const char *skip_kvm;
#define SKIP_UNLESS_DOUBLE()                                                                       \
	do {                                                                                       \
		if (skip_all)                                                                      \
			SKIP(skip_all);                                                            \
	} while (0)
#define SKIP_IF_NEEDED()                                                                           \
	do {                                                                                       \
		SKIP_UNLESS_DOUBLE();                                                              \
		if (skip_kvm)                                                                      \
			SKIP(skip_kvm);                                                            \
	} while (0)

static const char *setup(void)
{
	struct hc_accel_host host;
	char p[HC_PATH_MAX];
	const char *why;

	if (!find_double("cloud-hypervisor-double", dbl))
		return "the Cloud Hypervisor double is not built (make tests)";
	snprintf(tmp, sizeof(tmp), "/tmp/hc-ch.XXXXXX");
	if (!mkdtemp(tmp))
		return "mkdtemp failed";
	why = make_fake_boot_files(tmp, fake_kernel, fake_initrd, fake_disk);
	if (why)
		return why;
	snprintf(rootdir, sizeof(rootdir), "%s/root", tmp);
	mkdir(rootdir, 0755);
	snprintf(p, sizeof(p), "%s/hello.txt", rootdir);
	write_file(p, "hi from the image\n", 18);
	snprintf(voldir, sizeof(voldir), "%s/vol", tmp);
	mkdir(voldir, 0755);
	/* Jailed (as root), the double writes its log in a directory its jail gets read-write
	 * (HOTCELL_JAIL_EXTRA), and the VMs' runtime dirs are the test's own. */
	snprintf(p, sizeof(p), "%s/dbl", tmp);
	mkdir(p, 01777);
	chmod(p, 01777);
	snprintf(reqlog, sizeof(reqlog), "%s/requests.log", p);
	/* ... and the fake sysfs, and what the double runs its guest with (tests/lib.sh's
	 * double_jail_extra). */
	static char extra[HC_PATH_MAX * 8];
	const char *vsockd = getenv("HOTCELL_VHOST_DEVICE_VSOCK");
	const char *more[] = {"/usr/bin/qemu-system-x86_64", "/usr/share/qemu", "/usr/share/seabios",
			      "/usr/lib/x86_64-linux-gnu/qemu",
			      vsockd ? vsockd : "/var/cache/hotcell-tools/usr/bin/vhost-device-vsock"};
	snprintf(sysfs, sizeof(sysfs), "%s/sys", tmp);
	mkdir(sysfs, 0755);
	size_t o = (size_t)snprintf(extra, sizeof(extra), "+%s:%s", p, sysfs);
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		if (access(more[i], F_OK) == 0)
			o += (size_t)snprintf(extra + o, sizeof(extra) - o, ":%s", more[i]);
	setenv("HOTCELL_JAIL_EXTRA", extra, 1);
	snprintf(p, sizeof(p), "%s/run", tmp);
	mkdir(p, 0700);
	setenv("HOTCELL_RUNTIME_DIR", p, 1);
	setenv("HOTCELL_CLOUD_HYPERVISOR", dbl, 1);
	setenv("HOTCELL_CH_DOUBLE_LOG", reqlog, 1);
	unsetenv("HOTCELL_SYSFS_ROOT");
	hc_accel_host_probe(&host);
	if (!host.kvm_usable)
		skip_kvm = "no usable /dev/kvm: the driver refuses before starting anything";
	return NULL;
}

static void vm_free(struct hc_vm *vm)
{
	hc_vm_free(vm);
	if (vm == leak)
		leak = NULL;
}

static void reset_scenario(void)
{
	if (leak)
		vm_free(leak);
	unsetenv("HOTCELL_CH_DOUBLE_FAULT");
	unsetenv("HOTCELL_CH_DOUBLE_EXIT");
	unsetenv("HOTCELL_CH_DOUBLE_VERSION");
	unsetenv("HOTCELL_CH_DOUBLE_ERRORS");
	unsetenv("HOTCELL_SYSFS_ROOT");
	setenv("HOTCELL_CH_DOUBLE_GUEST", "none", 1);
	unlink(reqlog);
}

static struct hc_vm_spec api_spec(void)
{
	struct hc_vm_spec s = {
		.cpus = 2,
		.memory_mib = 128,
		.kernel = fake_kernel,
		.kernel_is_user = true, /* trusted: the PVM rule lets it through */
		.initrd = fake_initrd,
		.accel = HC_ACCEL_KVM,
		.rootfs_mode = HC_ROOTFS_DIR,
		.rootfs_dir = rootdir,
		.channel = HC_CHANNEL_VSOCK,
		.boot_timeout_ms = 10000,
	};
	return s;
}

/* Starts a VM that must fail; checks the message holds want and that nothing is left. */
static int start_fails(struct hc_vm_spec *s, const char *want, char *msg, size_t msg_len)
{
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	int r;

	if (hc_vm_new(&vm, OPS, s, &e) < 0)
		return -1;
	r = hc_vm_start(vm, &e);
	snprintf(msg, msg_len, "%s", e.message);
	if (r >= 0 || !strstr(e.message, want) ||
	    children_running_pid("cloud-hypervisor-double", NULL) ||
	    children_running_pid("virtiofsd", NULL) || !dir_empty_but_console(vm->run_dir) ||
	    vm->agent_listen_fd >= 0 || vm->death_fd >= 0 || vm->priv) {
		if (r >= 0)
			snprintf(msg, msg_len, "started");
		else if (strstr(e.message, want))
			snprintf(msg, msg_len, "left something behind: %s", e.message);
		vm_free(vm);
		return -1;
	}
	vm_free(vm);
	return 0;
}

/* The guest's connection on the agent listener. death_fd (the event monitor) wakes up on VMM
 * events too: check() says whether one of them ended the VM. */
static int accept_guest(struct hc_vm *vm, int timeout_ms, struct hc_error *e)
{
	for (;;) {
		int fd = hc_hvsock_accept(vm->agent_listen_fd, vm->death_fd, timeout_ms, e);

		if (fd != -ECHILD)
			return fd;
		if (hc_vm_check(vm, e) < 0)
			return e->code;
	}
}

static void rest_freep(struct hc_rest **r)
{
	hc_rest_free(*r);
}

/* ---- the double keeps to the API ------------------------------------------------------------- */

TEST(double_is_strict)
{
	char sock[HC_PATH_MAX], arg[HC_PATH_MAX + 8];
	_cleanup_child_ struct hc_child c = HC_CHILD_INIT;
	_cleanup_(rest_freep) struct hc_rest *api = NULL;
	struct hc_error e = {0};
	_cleanup_free_ char *body = NULL;
	long st = 0;

	SKIP_UNLESS_DOUBLE();
	reset_scenario();
	snprintf(sock, sizeof(sock), "%s/api.sock", tmp);
	snprintf(arg, sizeof(arg), "path=%s", sock);
	const char *argv[] = {dbl, "--api-socket", arg, NULL};
	struct hc_child_opts o = {
		.argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .cwd = tmp};
	ASSERT_OK(hc_child_spawn(&c, &o, &e), &e);
	ASSERT_OK(hc_rest_new(&api, sock, &e), &e);
	/* The path form binds the socket itself: wait for the first answer. */
	for (int i = 0; i < 500; i++) {
		if (hc_rest_call(api, "GET", "/api/v1/vmm.ping", NULL, 1000, &st, &body, &e) == 0)
			break;
		free(body);
		body = NULL;
		(void)hc_child_wait(&c, 10);
	}
	ASSERT_EQ_INT(st, 200);
	ASSERT_TRUE(body && strstr(body, "\"version\":\"41.0\""));
#define CALL(m, ep, b, want)                                                                       \
	do {                                                                                       \
		free(body);                                                                        \
		body = NULL;                                                                       \
		ASSERT_OK(hc_rest_call(api, m, "/api/v1/" ep, b, 0, &st, &body, &e), &e);          \
		if (st != (want))                                                                  \
			FAILF("%s %s: %ld, expected %d (%s)", m, ep, st, want, body ? body : "");  \
	} while (0)
	CALL("GET", "vm.info", NULL, 404);
	CALL("PUT", "vm.boot", NULL, 404);
	CALL("PUT", "vm.pause", NULL, 404);
	CALL("PUT", "vm.create", "{\"payload\":{\"kernel\":\"/k\"},\"memroy\":{}}", 400);
	ASSERT_TRUE(strstr(body, "unknown field `memroy`") != NULL);
	CALL("PUT", "vm.create", "{\"payload\":{\"kernel\":\"/k\"},\"vsock\":{\"cid\":3}}", 400);
	ASSERT_TRUE(strstr(body, "missing field `socket`") != NULL);
	CALL("PUT", "vm.create",
	     "{\"payload\":{\"kernel\":\"/k\"},\"fs\":[{\"tag\":\"t\",\"socket\":\"/s\","
	     "\"num_queues\":1,\"queue_size\":1024}]}",
	     500);
	ASSERT_TRUE(strstr(body, "shared memory") != NULL);
	CALL("PUT", "vm.create", "{\"payload\":{\"kernel\":\"/bin/true\"}}", 204);
	CALL("PUT", "vm.create", "{\"payload\":{\"kernel\":\"/bin/true\"}}", 500);
	ASSERT_TRUE(strstr(body, "already created") != NULL);
	CALL("PUT", "vm.boot", "{}", 400);
	CALL("PUT", "vm.resume", NULL, 500);
	CALL("PUT", "vm.snapshot", "{\"destination_url\":\"file:///tmp\"}", 500);
	CALL("PUT", "vm.boot", NULL, 204);
	CALL("PUT", "vm.boot", NULL, 500);
	CALL("PUT", "vm.snapshot", "{\"destination_url\":\"file:///tmp\"}", 500);
	ASSERT_TRUE(strstr(body, "not paused") != NULL);
	CALL("PUT", "vm.pause", NULL, 204);
	CALL("PUT", "vm.restore", "{\"source_url\":\"file:///tmp\"}", 500);
	ASSERT_TRUE(strstr(body, "already created") != NULL);
	CALL("GET", "vm.info", NULL, 200);
	ASSERT_TRUE(strstr(body, "\"state\":\"Paused\"") != NULL);
	CALL("PUT", "vm.nonsense", NULL, 404);
	CALL("PUT", "vmm.shutdown", NULL, 204);
#undef CALL
	ASSERT_EQ_INT(hc_child_wait(&c, 5000), 0);
	ASSERT_TRUE(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
	unlink(sock);
}

TEST(error_chain_text)
{
	char buf[256];

	/* v40+: the chain as a JSON array, top to root cause. */
	hc_rest_error_text("[\"Error from API\",\"The VM could not boot\",\"Kernel not ELF\"]", buf,
			   sizeof(buf));
	ASSERT_EQ_STR(buf, "Error from API: The VM could not boot: Kernel not ELF");
	/* Before: plain text, first line. */
	hc_rest_error_text("Error from API: VmBoot(...)\nmore", buf, sizeof(buf));
	ASSERT_EQ_STR(buf, "Error from API: VmBoot(...)");
	hc_rest_error_text("[1, \"only strings\"]", buf, sizeof(buf));
	ASSERT_EQ_STR(buf, "only strings");
}

TEST(double_rejects_unknown_flag)
{
	const char *argv[] = {dbl, "--api-socket", "fd=3", "--bogus", NULL};
	struct hc_error e = {0};
	_cleanup_free_ char *out = NULL;

	SKIP_UNLESS_DOUBLE();
	ASSERT_EQ_INT(hc_child_run(argv, 5000, 4096, &out, &e), 1);
}

/* ---- probe ----------------------------------------------------------------------------------- */

TEST(probe_reports_version)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	char v[64] = "";

	SKIP_IF_NEEDED();
	reset_scenario();
	ASSERT_OK(OPS->probe(&s, v, sizeof(v), &e), &e);
	ASSERT_EQ_STR(v, "41.0");
	/* doctor's form: no spec, only the binary. */
	ASSERT_OK(OPS->probe(NULL, v, sizeof(v), &e), &e);
	setenv("HOTCELL_CH_DOUBLE_VERSION", "35.0-12-gdeadbeef", 1);
	ASSERT_OK(OPS->probe(&s, v, sizeof(v), &e), &e);
	ASSERT_EQ_STR(v, "35.0-12-gdeadbeef");
}

TEST(probe_refuses_old_version)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};

	SKIP_IF_NEEDED();
	reset_scenario();
	setenv("HOTCELL_CH_DOUBLE_VERSION", "34.0", 1);
	ASSERT_ERR(OPS->probe(&s, NULL, 0, &e));
	ASSERT_TRUE(strstr(e.message, "version 34.0, older than v35") != NULL);
}

TEST(probe_refuses_project_kernel_on_pvm)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};

	SKIP_IF_NEEDED();
	if (access("/sys/module/kvm_pvm", F_OK) < 0)
		SKIP("not a PVM host (/sys/module/kvm_pvm absent)");
	reset_scenario();
	s.kernel_is_user = false;
	ASSERT_ERR(OPS->probe(&s, NULL, 0, &e));
	ASSERT_TRUE(strstr(e.message, "backend 'cloud-hypervisor' cannot run here") != NULL);
	ASSERT_TRUE(strstr(e.message, "PVM") != NULL);
	ASSERT_TRUE(strstr(e.message, "--kernel") != NULL);
	ASSERT_TRUE(strstr(e.message, "--backend qemu") != NULL);
	ASSERT_EQ_STR(e.kind, "backend");
}

TEST(probe_refuses_bzimage)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};

	SKIP_IF_NEEDED();
	reset_scenario();
	s.kernel = fake_initrd; /* not ELF */
	ASSERT_EQ_INT(OPS->probe(&s, NULL, 0, &e), -ENOEXEC);
	ASSERT_TRUE(strstr(e.message, "Cloud Hypervisor boots only an uncompressed ELF") != NULL);
}

TEST(probe_binary_missing)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};

	SKIP_IF_NEEDED();
	setenv("HOTCELL_CLOUD_HYPERVISOR", "/nonexistent/cloud-hypervisor", 1);
	ASSERT_ERR(OPS->probe(&s, NULL, 0, &e));
	setenv("HOTCELL_CLOUD_HYPERVISOR", dbl, 1);
	ASSERT_TRUE(strstr(e.message, "HOTCELL_CLOUD_HYPERVISOR=/nonexistent/cloud-hypervisor") !=
		    NULL);
}

/* ---- start ----------------------------------------------------------------------------------- */

TEST(start_dir_rootfs_and_volume)
{
	struct hc_volume vols[] = {{.host = voldir, .guest = "/data dir", .readonly = true}};
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	char sum[1024], line[128] = "", run_dir[HC_PATH_MAX], snapdir[HC_PATH_MAX];
	_cleanup_free_ char *log = NULL;
	ssize_t k;
	int fd;

	SKIP_IF_NEEDED();
	{
		char fsd[HC_PATH_MAX];
		if (hc_virtiofsd_find(fsd, sizeof(fsd), &e) < 0)
			SKIP("no virtiofsd");
	}
	reset_scenario();
	s.volumes = vols;
	s.n_volumes = 1;
	ASSERT_OK(hc_vm_new(&vm, OPS, &s, &e), &e);
	leak = vm;
	ASSERT_OK(hc_vm_start(vm, &e), &e);
	snprintf(run_dir, sizeof(run_dir), "%s", vm->run_dir);
	log_file_summary(reqlog, sum, sizeof(sum));
	ASSERT_EQ_STR(sum, "PUT /api/v1/vm.create 204;PUT /api/v1/vm.boot 204");
	log = read_log_file(reqlog);
	ASSERT_TRUE(strstr(log, "START fd=3 events fd=4") != NULL);
	ASSERT_TRUE(strstr(log, "\"cpus\":{\"boot_vcpus\":2,\"max_vcpus\":2}") != NULL);
	ASSERT_TRUE(strstr(log, "\"memory\":{\"size\":134217728,\"shared\":true}") != NULL);
	ASSERT_TRUE(strstr(log, "\"vsock\":{\"cid\":3,\"socket\":\"v.sock\"}") != NULL);
	ASSERT_TRUE(strstr(log, "\"serial\":{\"mode\":\"File\",\"file\":\"console.log\"}") != NULL);
	ASSERT_TRUE(strstr(log, "\"console\":{\"mode\":\"Off\"}") != NULL);
	ASSERT_TRUE(strstr(log, "{\"tag\":\"hcroot\",\"socket\":\"") != NULL);
	ASSERT_TRUE(strstr(log, "{\"tag\":\"hcvol0\",\"socket\":\"") != NULL);
	ASSERT_TRUE(strstr(log, "\"num_queues\":1,\"queue_size\":1024") != NULL);
	ASSERT_TRUE(strstr(log, "console=ttyS0 reboot=k panic=-1 quiet hotcell.root=virtiofs "
				"hotcell.channel=vsock hotcell.vol=hcvol0:/data%20dir:ro") != NULL);
	ASSERT_TRUE(strstr(log, "\"disks\"") == NULL);
	/* virtiofsd for the rootfs and the volume, started by the driver. */
	ASSERT_EQ_INT(children_running_pid("virtiofsd", NULL), 2);
	ASSERT_EQ_INT(children_running_pid("cloud-hypervisor-double", NULL), 1);
	/* The (fake) guest connected out to port 1024 during the boot. */
	fd = accept_guest(vm, 10000, &e);
	if (fd < 0) {
		vm_free(vm);
		FAILF("the guest did not connect: %s", e.message);
	}
	k = read(fd, line, sizeof(line) - 1);
	close(fd);
	line[k > 0 ? k : 0] = '\0';
	ASSERT_EQ_STR(line, "HOTCELL-DOUBLE-GUEST hello\n");
	/* death_fd is the event monitor: check() drained the boot events, it is quiet now. */
	struct pollfd pd = {.fd = vm->death_fd, .events = POLLIN};
	ASSERT_OK(hc_vm_check(vm, &e), &e);
	ASSERT_EQ_INT(poll(&pd, 1, 0), 0);

	ASSERT_OK(hc_vm_pause(vm, &e), &e);
	ASSERT_OK(hc_vm_resume(vm, &e), &e);
	/* No snapshot with virtio-fs: the wrapper says why before the VMM is asked. */
	snprintf(snapdir, sizeof(snapdir), "%s/snap-dir", tmp);
	ASSERT_EQ_INT(hc_vm_snapshot(vm, snapdir, &e), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(e.message, "--rootfs-mode block") != NULL);
	ASSERT_TRUE(strstr(e.message, "virtiofsd") != NULL);
	ASSERT_OK(hc_vm_check(vm, &e), &e);

	vm_free(vm);
	log_file_summary(reqlog, sum, sizeof(sum));
	ASSERT_EQ_STR(sum, "PUT /api/v1/vm.create 204;PUT /api/v1/vm.boot 204;"
			   "PUT /api/v1/vm.pause 204;PUT /api/v1/vm.resume 204;"
			   "PUT /api/v1/vmm.shutdown 204");
	ASSERT_EQ_INT(children_running_pid("cloud-hypervisor-double", NULL), 0);
	ASSERT_EQ_INT(children_running_pid("virtiofsd", NULL), 0);
	ASSERT_TRUE(!hc_path_exists(run_dir));
}

TEST(block_snapshot_and_restore)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	char sum[1024], line[128] = "", snapdir[HC_PATH_MAX], p[HC_PATH_MAX];
	_cleanup_free_ char *log = NULL;
	ssize_t k;

	SKIP_IF_NEEDED();
	reset_scenario();
	s.rootfs_mode = HC_ROOTFS_BLOCK;
	s.rootfs_dir = NULL;
	s.rootfs_disk = fake_disk;
	ASSERT_OK(hc_vm_new(&vm, OPS, &s, &e), &e);
	leak = vm;
	ASSERT_OK(hc_vm_start(vm, &e), &e);
	log = read_log_file(reqlog);
	ASSERT_TRUE(strstr(log, "\"disks\":[{\"path\":\"") != NULL);
	ASSERT_TRUE(strstr(log, "rootfs.ext4\",\"readonly\":true}]") != NULL);
	ASSERT_TRUE(strstr(log, "hotcell.root=block") != NULL);
	ASSERT_TRUE(strstr(log, "\"fs\"") == NULL);
	ASSERT_EQ_INT(children_running_pid("virtiofsd", NULL), 0);
	/* A snapshot needs a paused VM; the driver says so without asking. */
	snprintf(snapdir, sizeof(snapdir), "%s/snap", tmp);
	ASSERT_EQ_INT(hc_vm_snapshot(vm, snapdir, &e), -EBUSY);
	ASSERT_TRUE(strstr(e.message, "paused") != NULL);
	ASSERT_OK(hc_vm_pause(vm, &e), &e);
	ASSERT_OK(hc_vm_snapshot(vm, snapdir, &e), &e);
	snprintf(p, sizeof(p), "%s/config.json", snapdir);
	ASSERT_TRUE(hc_path_exists(p));
	free(log);
	log = read_log_file(reqlog);
	ASSERT_TRUE(strstr(log, "vm.snapshot 204 {\"destination_url\":\"file:///") != NULL);
	vm_free(vm);

	/* Into a fresh process: vm.restore then vm.resume, and the host reconnects. */
	reset_scenario();
	ASSERT_OK(hc_vm_new(&vm, OPS, &s, &e), &e);
	leak = vm;
	ASSERT_OK(hc_vm_restore(vm, snapdir, &e), &e);
	log_file_summary(reqlog, sum, sizeof(sum));
	ASSERT_EQ_STR(sum, "PUT /api/v1/vm.restore 204;PUT /api/v1/vm.resume 204");
	ASSERT_TRUE(vm->agent_fd >= 0);
	k = read(vm->agent_fd, line, sizeof(line) - 1);
	line[k > 0 ? k : 0] = '\0';
	ASSERT_EQ_STR(line, "HOTCELL-DOUBLE-GUEST restored\n");
	ASSERT_OK(hc_vm_check(vm, &e), &e);
	vm_free(vm);
	ASSERT_EQ_INT(children_running_pid("cloud-hypervisor-double", NULL), 0);

	/* Left paused (a migration's destination): vm.restore alone, no reconnect until the
	 * resume, which reconnects. */
	reset_scenario();
	ASSERT_OK(hc_vm_new(&vm, OPS, &s, &e), &e);
	leak = vm;
	vm->restore_paused = true;
	ASSERT_OK(hc_vm_restore(vm, snapdir, &e), &e);
	log_file_summary(reqlog, sum, sizeof(sum));
	ASSERT_EQ_STR(sum, "PUT /api/v1/vm.restore 204");
	ASSERT_TRUE(vm->agent_fd < 0);
	ASSERT_OK(hc_vm_resume(vm, &e), &e);
	log_file_summary(reqlog, sum, sizeof(sum));
	ASSERT_EQ_STR(sum, "PUT /api/v1/vm.restore 204;PUT /api/v1/vm.resume 204");
	ASSERT_TRUE(vm->agent_fd >= 0);
	k = read(vm->agent_fd, line, sizeof(line) - 1);
	line[k > 0 ? k : 0] = '\0';
	ASSERT_EQ_STR(line, "HOTCELL-DOUBLE-GUEST restored\n");
	vm_free(vm);
	ASSERT_EQ_INT(children_running_pid("cloud-hypervisor-double", NULL), 0);

	/* A dir rootfs VM cannot restore one. */
	s = api_spec();
	ASSERT_OK(hc_vm_new(&vm, OPS, &s, &e), &e);
	leak = vm;
	ASSERT_EQ_INT(hc_vm_restore(vm, snapdir, &e), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(e.message, "--rootfs-mode block") != NULL);
	vm_free(vm);
}

/* A TAP of the test's own network namespace (made once, root only): its fd, or -1. */
static int test_tap(const char *name)
{
	static bool netns;
	struct ifreq ifr = {0};
	int fd;

	if (!netns) {
		if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
			return -1;
		netns = true;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* --network: the TAP goes to vm.add-net as a passed fd, under hotcell's id; the snapshot's
 * config keeps the NIC as fds (-1, as Cloud Hypervisor serializes them), so a restore must
 * give new ones (net_fds), which land on the restored copy's own TAP; a restore without them
 * is refused by the double as RestoreConfig::validate refuses it. */
TEST(network_fds_and_restore_net_fds)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	char snapdir[HC_PATH_MAX], sum[1024];
	_cleanup_free_ char *log = NULL;
	_cleanup_close_ int tap0 = -1, tap1 = -1;

	SKIP_IF_NEEDED();
	tap0 = test_tap("hct0");
	tap1 = test_tap("hct1");
	if (tap0 < 0 || tap1 < 0)
		SKIP("needs root, a network namespace of the test's own and /dev/net/tun");
	reset_scenario();
	s.rootfs_mode = HC_ROOTFS_BLOCK;
	s.rootfs_dir = NULL;
	s.rootfs_disk = fake_disk;
	s.network = HC_NET_INET;
	s.net_tap = "hct0";
	s.net_tap_fd = tap0;
	s.net_mac = "02:68:63:00:00:04";
	ASSERT_OK(hc_vm_new(&vm, OPS, &s, &e), &e);
	leak = vm;
	ASSERT_OK(hc_vm_start(vm, &e), &e);
	log_file_summary(reqlog, sum, sizeof(sum));
	ASSERT_EQ_STR(sum,
		      "PUT /api/v1/vm.create 204;EVENT add-net net0;PUT /api/v1/vm.add-net 204;"
		      "PUT /api/v1/vm.boot 204");
	log = read_log_file(reqlog);
	ASSERT_TRUE(strstr(log, "vm.add-net 204 {\"id\":\"net0\",\"mac\":\"02:68:63:00:00:04\"}") !=
		    NULL);
	ASSERT_TRUE(strstr(log, "EVENT add-net net0 on hct0") != NULL);
	ASSERT_TRUE(strstr(log, "\"net\"") == NULL); /* not in vm.create */
	snprintf(snapdir, sizeof(snapdir), "%s/netsnap", tmp);
	ASSERT_OK(hc_vm_pause(vm, &e), &e);
	ASSERT_OK(hc_vm_snapshot(vm, snapdir, &e), &e);
	vm_free(vm);

	/* Restored onto another TAP. */
	reset_scenario();
	s.net_tap = "hct1";
	s.net_tap_fd = tap1;
	ASSERT_OK(hc_vm_new(&vm, OPS, &s, &e), &e);
	leak = vm;
	ASSERT_OK(hc_vm_restore(vm, snapdir, &e), &e);
	free(log);
	log = read_log_file(reqlog);
	ASSERT_TRUE(strstr(log, "\"net_fds\":[{\"id\":\"net0\",\"num_fds\":1}]") != NULL);
	ASSERT_TRUE(strstr(log, "EVENT restore net net0 on hct1") != NULL);
	vm_free(vm);

	/* Without new fds: refused, nothing left. */
	reset_scenario();
	s.net_tap = NULL;
	s.net_tap_fd = -1;
	ASSERT_OK(hc_vm_new(&vm, OPS, &s, &e), &e);
	leak = vm;
	ASSERT_ERR(hc_vm_restore(vm, snapdir, &e));
	if (!strstr(e.message, "Net id net0 is associated with FDs and is required"))
		FAILF("restore without net_fds: %s", e.message);
	vm_free(vm);
	ASSERT_EQ_INT(children_running_pid("cloud-hypervisor-double", NULL), 0);
}

TEST(api_error_names_endpoint)
{
	struct hc_vm_spec s = api_spec();
	char msg[1024];

	SKIP_IF_NEEDED();
	reset_scenario();
	setenv("HOTCELL_CH_DOUBLE_FAULT", "PUT /api/v1/vm.boot=500:The VM could not boot", 1);
	if (start_fails(&s, "PUT /api/v1/vm.boot: HTTP 500: Error from API: The VM could not boot",
			msg, sizeof(msg)) < 0)
		FAILF("unexpected: %s", msg);
	/* Before v40 the error is plain text. */
	setenv("HOTCELL_CH_DOUBLE_ERRORS", "text", 1);
	setenv("HOTCELL_CH_DOUBLE_FAULT", "PUT /api/v1/vm.create=400:bad config", 1);
	if (start_fails(&s, "PUT /api/v1/vm.create: HTTP 400: Error from API: bad config", msg,
			sizeof(msg)) < 0)
		FAILF("unexpected: %s", msg);
}

TEST(missing_disk_reported)
{
	struct hc_vm_spec s = api_spec();
	char msg[1024];

	SKIP_IF_NEEDED();
	reset_scenario();
	/* The driver resolves every path it hands over before the VMM sees it. */
	s.rootfs_mode = HC_ROOTFS_BLOCK;
	s.rootfs_disk = "/nonexistent/rootfs.ext4";
	if (start_fails(&s, "/nonexistent/rootfs.ext4", msg, sizeof(msg)) < 0 ||
	    !strstr(msg, "No such file"))
		FAILF("unexpected: %s", msg);
}

TEST(early_exit_is_reported)
{
	struct hc_vm_spec s = api_spec();
	char msg[1024];

	SKIP_IF_NEEDED();
	reset_scenario();
	setenv("HOTCELL_CH_DOUBLE_EXIT", "startup", 1);
	if (start_fails(&s, "PUT /api/v1/vm.create: ", msg, sizeof(msg)) < 0)
		FAILF("unexpected: %s", msg);
	ASSERT_TRUE(strstr(msg, "cloud-hypervisor exited with status 1") != NULL);
	/* Its own last words are in the message. */
	ASSERT_TRUE(strstr(msg, "double: exiting at startup") != NULL);
}

TEST(exit_during_create)
{
	struct hc_vm_spec s = api_spec();
	char msg[1024];

	SKIP_IF_NEEDED();
	reset_scenario();
	setenv("HOTCELL_CH_DOUBLE_EXIT", "PUT /api/v1/vm.create", 1);
	if (start_fails(&s, "PUT /api/v1/vm.create: ", msg, sizeof(msg)) < 0)
		FAILF("unexpected: %s", msg);
	ASSERT_TRUE(strstr(msg, "cloud-hypervisor exited with status 1") != NULL);
}

TEST(serial_channel_refused)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;

	SKIP_IF_NEEDED();
	reset_scenario();
	s.channel = HC_CHANNEL_SERIAL;
	ASSERT_OK(hc_vm_new(&vm, OPS, &s, &e), &e);
	leak = vm;
	ASSERT_EQ_INT(hc_vm_start(vm, &e), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(e.message, "serial") != NULL);
	vm_free(vm);
}

/* ---- VFIO ------------------------------------------------------------------------------------ */

/* <sysfs>/bus/pci/devices/BDF with a driver link, in IOMMU group G. */
static void fake_pci(const char *bdf, const char *driver, int group)
{
	char p[HC_PATH_MAX], t[HC_PATH_MAX];
	struct hc_error e = {0};

	snprintf(p, sizeof(p), "%s/bus/pci/devices/%s", sysfs, bdf);
	(void)!hc_path_mkdir_p(p, 0755, &e);
	if (driver) {
		snprintf(t, sizeof(t), "%s/bus/pci/drivers/%s", sysfs, driver);
		(void)!hc_path_mkdir_p(t, 0755, &e);
		snprintf(p, sizeof(p), "%s/bus/pci/devices/%s/driver", sysfs, bdf);
		(void)!symlink(t, p);
	}
	if (group < 0)
		return;
	snprintf(t, sizeof(t), "%s/kernel/iommu_groups/%d/devices", sysfs, group);
	(void)!hc_path_mkdir_p(t, 0755, &e);
	snprintf(p, sizeof(p), "%s/bus/pci/devices/%s/iommu_group", sysfs, bdf);
	snprintf(t, sizeof(t), "%s/kernel/iommu_groups/%d", sysfs, group);
	(void)!symlink(t, p);
	snprintf(p, sizeof(p), "%s/kernel/iommu_groups/%d/devices/%s", sysfs, group, bdf);
	snprintf(t, sizeof(t), "%s/bus/pci/devices/%s", sysfs, bdf);
	(void)!symlink(t, p);
}

static int vfio(const char *addr, char *msg, size_t n)
{
	struct hc_error e = {0};
	char path[HC_PATH_MAX];
	int r = hc_cloud_hypervisor_vfio_check(addr, path, sizeof(path), &e);

	snprintf(msg, n, "%s", r < 0 ? e.message : path);
	return r;
}

TEST(vfio_checks)
{
	char msg[1024], want[HC_PATH_MAX];

	SKIP_UNLESS_DOUBLE();
	reset_scenario();
	setenv("HOTCELL_SYSFS_ROOT", sysfs, 1);
	fake_pci("0000:01:00.0", "vfio-pci", 1); /* a GPU ... */
	fake_pci("0000:01:00.1", "vfio-pci", 1); /* ... and its audio function */
	fake_pci("0000:00:01.0", "pcieport", 1); /* the bridge above them */
	fake_pci("0000:02:00.0", "nvidia", 2);
	fake_pci("0000:03:00.0", "vfio-pci", 3);
	fake_pci("0000:03:00.1", "snd_hda_intel", 3);
	fake_pci("0000:04:00.0", "vfio-pci", -1); /* no IOMMU */
	fake_pci("0000:05:00.0", NULL, 5);

	ASSERT_OK(vfio("0000:01:00.0", msg, sizeof(msg)), NULL);
	snprintf(want, sizeof(want), "%s/bus/pci/devices/0000:01:00.0", sysfs);
	ASSERT_EQ_STR(msg, want);
	ASSERT_OK(vfio("01:00.1", msg, sizeof(msg)), NULL); /* domain 0 implied */
	ASSERT_OK(vfio("0000:01:00.0", msg, sizeof(msg)), NULL);
	ASSERT_EQ_INT(vfio("0000:1:0.0", msg, sizeof(msg)), -EINVAL);
	ASSERT_TRUE(strstr(msg, "is not a PCI address") != NULL);
	ASSERT_EQ_INT(vfio("0000:09:00.0", msg, sizeof(msg)), -ENODEV);
	ASSERT_TRUE(strstr(msg, "0000:09:00.0: no such PCI device") != NULL);
	ASSERT_EQ_INT(vfio("0000:02:00.0", msg, sizeof(msg)), -EBUSY);
	ASSERT_TRUE(strstr(msg, "0000:02:00.0 is bound to 'nvidia', not to vfio-pci") != NULL);
	ASSERT_TRUE(strstr(msg, "never rebinds") != NULL);
	ASSERT_EQ_INT(vfio("0000:03:00.0", msg, sizeof(msg)), -EBUSY);
	ASSERT_TRUE(strstr(msg, "0000:03:00.1, in the same IOMMU group 3, is bound to "
				"'snd_hda_intel'") != NULL);
	ASSERT_EQ_INT(vfio("0000:04:00.0", msg, sizeof(msg)), -ENODEV);
	ASSERT_TRUE(strstr(msg, "no IOMMU group") != NULL);
	ASSERT_EQ_INT(vfio("0000:05:00.0", msg, sizeof(msg)), -EBUSY);
	ASSERT_TRUE(strstr(msg, "not bound to any driver") != NULL);
}

TEST(vfio_device_needs_user_kernel_and_reaches_vm_create)
{
	const char *devs[] = {"0000:01:00.0"}, *bad[] = {"0000:02:00.0"};
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	char msg[1024], want[HC_PATH_MAX];
	_cleanup_free_ char *log = NULL;

	SKIP_IF_NEEDED();
	reset_scenario();
	setenv("HOTCELL_SYSFS_ROOT", sysfs, 1);
	s.devices = devs;
	s.n_devices = 1;
	s.kernel_is_user = false;
	if (access("/sys/module/kvm_pvm", F_OK) < 0) {
		/* (On a PVM host the project's kernel is refused before this check.) */
		ASSERT_ERR(OPS->probe(&s, NULL, 0, &e));
		ASSERT_TRUE(strstr(e.message, "--device needs --kernel") != NULL);
		ASSERT_TRUE(strstr(e.message, "no modules and no GPU drivers") != NULL);
	}
	s.kernel_is_user = true;
	s.devices = bad;
	if (start_fails(&s, "0000:02:00.0 is bound to 'nvidia'", msg, sizeof(msg)) < 0)
		FAILF("unexpected: %s", msg);
	ASSERT_TRUE(!hc_path_exists(reqlog)); /* refused before the VMM started */
	s.devices = devs;
	ASSERT_OK(hc_vm_new(&vm, OPS, &s, &e), &e);
	leak = vm;
	ASSERT_OK(hc_vm_start(vm, &e), &e);
	log = read_log_file(reqlog);
	snprintf(want, sizeof(want), "\"devices\":[{\"path\":\"%s/bus/pci/devices/0000:01:00.0\"}]",
		 sysfs);
	ASSERT_TRUE(strstr(log, want) != NULL);
	vm_free(vm);
	unsetenv("HOTCELL_SYSFS_ROOT");
}

/* ---- end to end: the double runs the guest in QEMU --------------------------------------------
 */

TEST(end_to_end_guest_in_qemu)
{
	char vmlinux[HC_PATH_MAX], initrd[HC_PATH_MAX], p[HC_PATH_MAX], hello[64], fsd[HC_PATH_MAX];
	const char *vsockd = getenv("HOTCELL_VHOST_DEVICE_VSOCK");
	struct hc_volume vols[] = {{.host = voldir, .guest = "/vol", .readonly = false}};
	_cleanup_free_ char *written = NULL;
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	size_t len;
	int fd, r;
	double t0;

	SKIP_IF_NEEDED();
	if (!find_vmlinux("HOTCELL_TEST_VMLINUX", vmlinux, sizeof(vmlinux)))
		SKIP("no ELF guest kernel (build/kernel/vmlinux or /var/cache/hotcell/kernel)");
	if (access(vsockd ? vsockd : "/var/cache/hotcell-tools/usr/bin/vhost-device-vsock", X_OK))
		SKIP("vhost-device-vsock not installed (see FACTS.md)");
	if (hc_virtiofsd_find(fsd, sizeof(fsd), &e) < 0)
		SKIP("no virtiofsd");
	reset_scenario();
	setenv("HOTCELL_CH_DOUBLE_GUEST", "qemu", 1);

	/* The test init from the QEMU backend's tests, in an initramfs. */
	r = make_test_initramfs(tmp, initrd, sizeof(initrd), &e);
	if (r > 0)
		SKIP("cannot build the static test init (cc -static)");
	ASSERT_OK(r, &e);

	struct hc_vm_spec s = api_spec();
	s.kernel = vmlinux;
	s.initrd = initrd;
	s.cpus = 1;
	s.memory_mib = 256;
	s.volumes = vols;
	s.n_volumes = 1;
	s.boot_timeout_ms = IO_TIMEOUT_MS;
	ASSERT_OK(hc_vm_new(&vm, OPS, &s, &e), &e);
	leak = vm;
	t0 = hc_clock_ms();
	if (hc_vm_start(vm, &e) < 0) {
		vm_free(vm);
		FAILF("start: %s", e.message);
	}
	fd = accept_guest(vm, IO_TIMEOUT_MS, &e);
	if (fd < 0) {
		hc_vm_error_add_console(vm, &e);
		vm_free(vm);
		FAILF("the guest did not connect: %s", e.message);
	}
	if (read_line(fd, hello, sizeof(hello), IO_TIMEOUT_MS) < 0 || strcmp(hello, "hello")) {
		close(fd);
		vm_free(vm);
		FAILF("no hello from the guest: '%s'", hello);
	}
	printf("# guest connected over hybrid vsock %.0f ms after start (QEMU TCG)\n",
	       hc_clock_ms() - t0);
	ASSERT_EQ_STR(cmd(fd, "mount hcroot /mnt ro", IO_TIMEOUT_MS), "ok");
	ASSERT_EQ_STR(cmd(fd, "read /mnt/hello.txt", IO_TIMEOUT_MS), "data hi from the image");
	/* Read-only from the host's side too: remounting rw does not make it writable. */
	(void)cmd(fd, "remount-rw /mnt", IO_TIMEOUT_MS);
	ASSERT_TRUE(hc_startswith(cmd(fd, "write /mnt/evil", IO_TIMEOUT_MS), "err"));
	snprintf(p, sizeof(p), "%s/evil", rootdir);
	ASSERT_TRUE(!hc_path_exists(p));
	/* The volume is shared read-write. */
	ASSERT_EQ_STR(cmd(fd, "mount hcvol0 /vol", IO_TIMEOUT_MS), "ok");
	ASSERT_EQ_STR(cmd(fd, "write /vol/out.txt", IO_TIMEOUT_MS), "ok");
	snprintf(p, sizeof(p), "%s/out.txt", voldir);
	ASSERT_OK(hc_path_read_file(p, 4096, &written, &len, &e), &e);
	ASSERT_EQ_STR(written, "written\n");
	/* A guest reset: Cloud Hypervisor would reboot it; the event monitor says so. */
	if (write(fd, "reboot\n", 7) != 7)
		FAILF("%s", "write");
	r = 0;
	for (double end = hc_clock_ms() + IO_TIMEOUT_MS; r == 0 && hc_clock_ms() < end;) {
		struct pollfd pd = {.fd = vm->death_fd, .events = POLLIN};
		if (poll(&pd, 1, hc_clock_left_ms(end)) == 1)
			r = hc_vm_check(vm, &e);
	}
	ASSERT_EQ_INT(r, -ESHUTDOWN);
	ASSERT_TRUE(strstr(e.message, "the guest rebooted") != NULL);
	close(fd);
	vm_free(vm);
	ASSERT_EQ_INT(children_running_pid("cloud-hypervisor-double", NULL), 0);
	ASSERT_EQ_INT(children_running_pid("virtiofsd", NULL), 0);
	ASSERT_EQ_INT(children_running_pid("qemu-system", NULL), 0);
}

int main(void)
{
	struct hc_error e = {0};

	skip_all = setup();
	RUN(double_is_strict);
	RUN(error_chain_text);
	RUN(double_rejects_unknown_flag);
	RUN(probe_reports_version);
	RUN(probe_refuses_old_version);
	RUN(probe_refuses_project_kernel_on_pvm);
	RUN(probe_refuses_bzimage);
	RUN(probe_binary_missing);
	RUN(start_dir_rootfs_and_volume);
	RUN(block_snapshot_and_restore);
	RUN(network_fds_and_restore_net_fds);
	RUN(api_error_names_endpoint);
	RUN(missing_disk_reported);
	RUN(early_exit_is_reported);
	RUN(exit_during_create);
	RUN(serial_channel_refused);
	RUN(vfio_checks);
	RUN(vfio_device_needs_user_kernel_and_reaches_vm_create);
	RUN(end_to_end_guest_in_qemu);
	if (leak)
		vm_free(leak);
	if (tmp[0])
		(void)hc_path_rm_rf(tmp, &e);
	return test_summary();
}
