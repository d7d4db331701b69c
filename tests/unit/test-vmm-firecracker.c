/* SPDX-License-Identifier: MIT */
/*
 * The Firecracker driver through the backend interface, against the strict double
 * (tests/doubles/firecracker-double.c, found as HOTCELL_FIRECRACKER):
 *   - the request order and bodies, checked by the double (HOTCELL_FC_DOUBLE_EXPECT) and in
 *     its request log;
 *   - every failure path: fault_message with the endpoint, early exit of the binary, a socket
 *     that never appears, InstanceStart refused; each leaves no process and no file;
 *   - probe: version, the PVM refusal, an old version, a bzImage;
 *   - pause/resume/snapshot/restore, with the host-initiated hybrid-vsock reconnect;
 *   - end to end: the double boots the guest in QEMU (TCG) with a test init, the guest
 *     connects over vhost-device-vsock, reads the read-only ext4 drive, and its reset ends
 *     the VM (death_fd + check).
 * SKIPs with the reason when the double is not built, /dev/kvm is unusable, or (for the
 * end-to-end case) no ELF vmlinux, static cc, mke2fs or vhost-device-vsock is at hand.
 */
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#include "core/child.h"
#include "core/clock.h"
#include "core/path.h"
#include "test.h"
#include "vm-double.h"
#include "vmm/accel.h"
#include "vmm/firecracker.h"
#include "vmm/hvsock.h"
#include "vmm/vmm.h"

#define IO_TIMEOUT_MS 120000

static char tmp[HC_PATH_MAX], dbl[HC_PATH_MAX], fake_kernel[HC_PATH_MAX], fake_initrd[HC_PATH_MAX],
	fake_disk[HC_PATH_MAX], reqlog[HC_PATH_MAX];
static const char *skip_all;

#define SKIP_IF_NEEDED()                                                                           \
	do {                                                                                       \
		if (skip_all)                                                                      \
			SKIP(skip_all);                                                            \
	} while (0)

static const char *setup(void)
{
	struct hc_accel_host host;
	const char *why;

	if (!find_double("firecracker-double", dbl))
		return "the Firecracker double is not built (make tests)";
	hc_accel_host_probe(&host);
	if (!host.kvm_usable)
		return "no usable /dev/kvm: the driver refuses before starting anything";
	snprintf(tmp, sizeof(tmp), "/tmp/hc-fc.XXXXXX");
	if (!mkdtemp(tmp))
		return "mkdtemp failed";
	why = make_fake_boot_files(tmp, fake_kernel, fake_initrd, fake_disk);
	if (why)
		return why;
	snprintf(reqlog, sizeof(reqlog), "%s/requests.log", tmp);
	setenv("HOTCELL_FIRECRACKER", dbl, 1);
	setenv("HOTCELL_FC_DOUBLE_LOG", reqlog, 1);
	unsetenv("HOTCELL_FIRECRACKER_JAILER");
	return NULL;
}

static void reset_scenario(void)
{
	unsetenv("HOTCELL_FC_DOUBLE_EXPECT");
	unsetenv("HOTCELL_FC_DOUBLE_FAULT");
	unsetenv("HOTCELL_FC_DOUBLE_EXIT");
	unsetenv("HOTCELL_FC_DOUBLE_NO_SOCKET");
	unsetenv("HOTCELL_FC_DOUBLE_VERSION");
	setenv("HOTCELL_FC_DOUBLE_GUEST", "none", 1);
	unlink(reqlog);
}

static struct hc_vm_spec api_spec(void)
{
	struct hc_vm_spec s = {
		.cpus = 1,
		.memory_mib = 128,
		.kernel = fake_kernel,
		.kernel_is_user = true, /* trusted: the PVM rule lets it through */
		.initrd = fake_initrd,
		.accel = HC_ACCEL_KVM,
		.rootfs_mode = HC_ROOTFS_BLOCK,
		.rootfs_disk = fake_disk,
		.channel = HC_CHANNEL_VSOCK,
		.boot_timeout_ms = 10000,
	};
	return s;
}

/* The double's pid while it runs (0 after the destroy). */
static pid_t double_pid(void)
{
	pid_t pid = 0;

	(void)children_running_pid(dbl, &pid);
	return pid;
}

/* Starts a VM that must fail; checks the message holds want and that nothing is left. */
static int start_fails(const char *want, char *msg, size_t msg_len)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	int r;

	s.boot_timeout_ms = 2000;
	if (hc_vm_new(&vm, &hc_vmm_firecracker_ops, &s, &e) < 0)
		return -1;
	r = hc_vm_start(vm, &e);
	snprintf(msg, msg_len, "%s", e.message);
	if (r >= 0 || !strstr(e.message, want) || double_pid() != 0 ||
	    !dir_empty_but_console(vm->run_dir) || vm->agent_listen_fd >= 0 || vm->priv) {
		hc_vm_free(vm);
		return -1;
	}
	hc_vm_free(vm);
	return 0;
}

/* ---- probe ----------------------------------------------------------------------------------- */

TEST(probe_reports_version)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	char v[64] = "";

	SKIP_IF_NEEDED();
	reset_scenario();
	ASSERT_OK(hc_vmm_firecracker_ops.probe(&s, v, sizeof(v), &e), &e);
	ASSERT_EQ_STR(v, "1.10.1");
}

TEST(probe_refuses_old_version)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};

	SKIP_IF_NEEDED();
	reset_scenario();
	setenv("HOTCELL_FC_DOUBLE_VERSION", "1.4.0", 1);
	ASSERT_ERR(hc_vmm_firecracker_ops.probe(&s, NULL, 0, &e));
	ASSERT_TRUE(strstr(e.message, "older than v1.10") != NULL);
	unsetenv("HOTCELL_FC_DOUBLE_VERSION");
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
	ASSERT_ERR(hc_vmm_firecracker_ops.probe(&s, NULL, 0, &e));
	ASSERT_TRUE(strstr(e.message, "backend 'firecracker' cannot run here") != NULL);
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
	ASSERT_EQ_INT(hc_vmm_firecracker_ops.probe(&s, NULL, 0, &e), -ENOEXEC);
	ASSERT_TRUE(strstr(e.message, "is not an ELF vmlinux") != NULL);
}

TEST(probe_binary_missing)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};

	SKIP_IF_NEEDED();
	setenv("HOTCELL_FIRECRACKER", "/nonexistent/firecracker", 1);
	ASSERT_ERR(hc_vmm_firecracker_ops.probe(&s, NULL, 0, &e));
	setenv("HOTCELL_FIRECRACKER", dbl, 1);
	ASSERT_TRUE(strstr(e.message, "HOTCELL_FIRECRACKER=/nonexistent/firecracker") != NULL);
}

/* ---- start ----------------------------------------------------------------------------------- */

#define ORDER "PUT /machine-config;PUT /boot-source;PUT /drives/rootfs;PUT /vsock;PUT /actions"

TEST(start_request_order_and_guest_connect)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	char sum[1024], line[128] = "", snapdir[HC_PATH_MAX], run_dir[HC_PATH_MAX], p[HC_PATH_MAX];
	_cleanup_free_ char *log = NULL;
	pid_t pid;
	int fd;
	ssize_t k;

	SKIP_IF_NEEDED();
	reset_scenario();
	/* The double answers anything out of this order with a 400. */
	setenv("HOTCELL_FC_DOUBLE_EXPECT",
	       ORDER ";PATCH /vm;PATCH /vm;PATCH /vm;PUT /snapshot/create;PATCH /vm;PATCH /vm", 1);
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_firecracker_ops, &s, &e), &e);
	ASSERT_OK(hc_vm_start(vm, &e), &e);
	snprintf(run_dir, sizeof(run_dir), "%s", vm->run_dir);
	log_file_summary(reqlog, sum, sizeof(sum));
	ASSERT_EQ_STR(sum, "PUT /machine-config 204;PUT /boot-source 204;PUT /drives/rootfs 204;"
			   "PUT /vsock 204;PUT /actions 204");
	log = read_log_file(reqlog);
	ASSERT_TRUE(strstr(log, "\"is_root_device\":false") != NULL);
	ASSERT_TRUE(strstr(log, "\"is_read_only\":true") != NULL);
	ASSERT_TRUE(strstr(log, "\"uds_path\":\"v.sock\"") != NULL);
	ASSERT_TRUE(strstr(log, "\"guest_cid\":3") != NULL);
	ASSERT_TRUE(strstr(log, "console=ttyS0 reboot=k panic=-1 pci=off quiet hotcell.root=block "
				"hotcell.channel=vsock") != NULL);
	ASSERT_TRUE(vm->death_fd >= 0);
	ASSERT_TRUE(vm->agent_listen_fd >= 0);
	/* The (fake) guest connected out to port 1024 during the boot. */
	fd = hc_hvsock_accept(vm->agent_listen_fd, vm->death_fd, 10000, &e);
	ASSERT_OK(fd, &e);
	k = read(fd, line, sizeof(line) - 1);
	close(fd);
	ASSERT_TRUE(k > 0);
	line[k > 0 ? k : 0] = '\0';
	ASSERT_EQ_STR(line, "HOTCELL-DOUBLE-GUEST hello\n");
	ASSERT_OK(hc_vm_check(vm, &e), &e);

	/* A snapshot needs a paused VM; the driver says so without asking Firecracker. */
	snprintf(snapdir, sizeof(snapdir), "%s/snap", tmp);
	ASSERT_EQ_INT(hc_vm_snapshot(vm, snapdir, &e), -EBUSY);
	ASSERT_OK(hc_vm_pause(vm, &e), &e);
	ASSERT_OK(hc_vm_resume(vm, &e), &e);
	ASSERT_OK(hc_vm_pause(vm, &e), &e);
	ASSERT_OK(hc_vm_snapshot(vm, snapdir, &e), &e);
	snprintf(p, sizeof(p), "%s/vmstate", snapdir);
	ASSERT_TRUE(hc_path_exists(p));
	snprintf(p, sizeof(p), "%s/memory", snapdir);
	ASSERT_TRUE(hc_path_exists(p));
	ASSERT_OK(hc_vm_resume(vm, &e), &e);
	/* Not in the expected list: the double answers 400 and the driver reports it. */
	ASSERT_EQ_INT(hc_vm_pause(vm, &e), 0);
	ASSERT_ERR(hc_vm_pause(vm, &e));
	ASSERT_TRUE(strstr(e.message, "PATCH /vm: HTTP 400: double: unexpected request") != NULL);

	pid = double_pid();
	ASSERT_TRUE(pid > 0);
	hc_vm_free(vm);
	ASSERT_TRUE(kill(pid, 0) < 0 && errno == ESRCH);
	ASSERT_TRUE(!hc_path_exists(run_dir));
}

TEST(restore_into_fresh_process_reconnects)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	char sum[512], line[128] = "", snapdir[HC_PATH_MAX];
	_cleanup_free_ char *log = NULL;
	ssize_t k;

	SKIP_IF_NEEDED();
	reset_scenario();
	snprintf(snapdir, sizeof(snapdir), "%s/snap", tmp);
	if (!hc_path_exists(snapdir))
		SKIP("needs the snapshot of start_request_order_and_guest_connect");
	setenv("HOTCELL_FC_DOUBLE_EXPECT", "PUT /snapshot/load", 1);
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_firecracker_ops, &s, &e), &e);
	ASSERT_OK(hc_vm_restore(vm, snapdir, &e), &e);
	log_file_summary(reqlog, sum, sizeof(sum));
	ASSERT_EQ_STR(sum, "PUT /snapshot/load 204");
	log = read_log_file(reqlog);
	ASSERT_TRUE(strstr(log, "\"mem_backend\":{\"backend_type\":\"File\"") != NULL);
	ASSERT_TRUE(strstr(log, "\"resume_vm\":true") != NULL);
	/* Host-initiated: CONNECT 1025 -> OK, then the guest's first bytes. */
	ASSERT_TRUE(vm->agent_fd >= 0);
	k = read(vm->agent_fd, line, sizeof(line) - 1);
	line[k > 0 ? k : 0] = '\0';
	ASSERT_EQ_STR(line, "HOTCELL-DOUBLE-GUEST restored\n");
	ASSERT_OK(hc_vm_check(vm, &e), &e);
	hc_vm_free(vm);
	ASSERT_TRUE(double_pid() == 0);
}

/* A migration's destination (docs/migration.md): loaded with resume_vm false, no vsock
 * reconnect while paused; the resume (PATCH /vm Resumed) reconnects. */
TEST(restore_paused_reconnects_on_resume)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	char sum[512], line[128] = "", snapdir[HC_PATH_MAX];
	_cleanup_free_ char *log = NULL;
	ssize_t k;

	SKIP_IF_NEEDED();
	reset_scenario();
	snprintf(snapdir, sizeof(snapdir), "%s/snap", tmp);
	if (!hc_path_exists(snapdir))
		SKIP("needs the snapshot of start_request_order_and_guest_connect");
	setenv("HOTCELL_FC_DOUBLE_EXPECT", "PUT /snapshot/load;PATCH /vm", 1);
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_firecracker_ops, &s, &e), &e);
	vm->restore_paused = true;
	ASSERT_OK(hc_vm_restore(vm, snapdir, &e), &e);
	log = read_log_file(reqlog);
	ASSERT_TRUE(strstr(log, "\"resume_vm\":false") != NULL);
	ASSERT_TRUE(vm->agent_fd < 0);
	/* Paused: a snapshot of it would be allowed, the double says PAUSED. */
	ASSERT_OK(hc_vm_resume(vm, &e), &e);
	log_file_summary(reqlog, sum, sizeof(sum));
	ASSERT_EQ_STR(sum, "PUT /snapshot/load 204;PATCH /vm 204");
	free(log);
	log = read_log_file(reqlog);
	ASSERT_TRUE(strstr(log, "\"state\":\"Resumed\"") != NULL);
	ASSERT_TRUE(vm->agent_fd >= 0);
	k = read(vm->agent_fd, line, sizeof(line) - 1);
	line[k > 0 ? k : 0] = '\0';
	ASSERT_EQ_STR(line, "HOTCELL-DOUBLE-GUEST restored\n");
	ASSERT_OK(hc_vm_check(vm, &e), &e);
	hc_vm_free(vm);
	ASSERT_TRUE(double_pid() == 0);
}

/* A networked snapshot (the double's state names its NIC, on a TAP that is gone) restored onto
 * this VM's own TAP: PUT /snapshot/load carries network_overrides [{iface_id, host_dev_name}],
 * which the double applies as Firecracker does (an unknown interface is an error; the TAP is
 * opened on restore). "lo" stands in for the new TAP: any existing link does for the double. */
static int write_text(const char *path, const char *text)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	return fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1;
}

TEST(restore_with_network_overrides)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	char snapdir[HC_PATH_MAX], netdir[HC_PATH_MAX], p[HC_PATH_MAX], q[HC_PATH_MAX];
	_cleanup_free_ char *state = NULL, *log = NULL;
	size_t n;

	SKIP_IF_NEEDED();
	reset_scenario();
	snprintf(snapdir, sizeof(snapdir), "%s/snap", tmp);
	if (!hc_path_exists(snapdir))
		SKIP("needs the snapshot of start_request_order_and_guest_connect");
	snprintf(netdir, sizeof(netdir), "%s/netsnap", tmp);
	ASSERT_OK(hc_path_mkdir_p(netdir, 0700, &e), &e);
	snprintf(p, sizeof(p), "%s/vmstate", snapdir);
	ASSERT_OK(hc_path_read_file(p, 1 << 20, &state, &n, &e), &e);
	ASSERT_TRUE(n > 2 && state[n - 1] == '}');
	state[n - 1] = '\0';
	snprintf(p, sizeof(p), "%s/vmstate", netdir);
	{
		char buf[8192];

		snprintf(buf, sizeof(buf),
			 "%s,\"network-interface\":{\"iface_id\":\"eth0\",\"host_dev_name\":"
			 "\"hc-gone0\",\"guest_mac\":\"02:68:63:00:00:04\"}}",
			 state);
		ASSERT_EQ_INT(write_text(p, buf), 0);
	}
	snprintf(p, sizeof(p), "%s/memory", snapdir);
	snprintf(q, sizeof(q), "%s/memory", netdir);
	ASSERT_EQ_INT(link(p, q), 0);

	/* The new TAP: the override is sent and applied. */
	s.network = HC_NET_INET;
	s.net_tap = "lo";
	s.net_mac = "02:68:63:00:00:08";
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_firecracker_ops, &s, &e), &e);
	ASSERT_OK(hc_vm_restore(vm, netdir, &e), &e);
	log = read_log_file(reqlog);
	ASSERT_TRUE(strstr(log, "\"network_overrides\":[{\"iface_id\":\"eth0\","
				"\"host_dev_name\":\"lo\"}]") != NULL);
	hc_vm_free(vm);
	vm = NULL;
	/* Without an override the snapshot's own TAP is opened, and it is gone. */
	reset_scenario();
	s.net_tap = NULL;
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_firecracker_ops, &s, &e), &e);
	ASSERT_ERR(hc_vm_restore(vm, netdir, &e));
	ASSERT_TRUE(strstr(e.message, "Open tap device failed") != NULL &&
		    strstr(e.message, "hc-gone0") != NULL);
	hc_vm_free(vm);
	vm = NULL;
	ASSERT_TRUE(double_pid() == 0);
	/* An override of an interface the snapshot does not have. */
	reset_scenario();
	s.net_tap = "lo";
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_firecracker_ops, &s, &e), &e);
	ASSERT_ERR(hc_vm_restore(vm, snapdir, &e));
	ASSERT_TRUE(strstr(e.message, "Unknown Network Device") != NULL);
	hc_vm_free(vm);
	ASSERT_TRUE(double_pid() == 0);
}

TEST(fault_message_names_endpoint)
{
	char msg[1024];

	SKIP_IF_NEEDED();
	reset_scenario();
	setenv("HOTCELL_FC_DOUBLE_FAULT", "PUT /drives/rootfs=400:Invalid block device path", 1);
	if (start_fails("PUT /drives/rootfs: HTTP 400: Invalid block device path", msg,
			sizeof(msg)) < 0)
		FAILF("unexpected: %s", msg);
}

TEST(instance_start_refused)
{
	char msg[1024];

	SKIP_IF_NEEDED();
	reset_scenario();
	setenv("HOTCELL_FC_DOUBLE_FAULT",
	       "PUT /actions=400:Cannot start microvm that was not configured properly", 1);
	if (start_fails("PUT /actions: HTTP 400: Cannot start microvm", msg, sizeof(msg)) < 0)
		FAILF("unexpected: %s", msg);
}

TEST(early_exit_is_reported)
{
	char msg[1024];

	SKIP_IF_NEEDED();
	reset_scenario();
	setenv("HOTCELL_FC_DOUBLE_EXIT", "startup", 1);
	if (start_fails("firecracker exited with status 1 before its API socket appeared", msg,
			sizeof(msg)) < 0)
		FAILF("unexpected: %s", msg);
	/* The console log's last lines are in the message. */
	ASSERT_TRUE(strstr(msg, "double: exiting at startup") != NULL);
}

TEST(exit_during_configuration)
{
	char msg[1024];

	SKIP_IF_NEEDED();
	reset_scenario();
	setenv("HOTCELL_FC_DOUBLE_EXIT", "PUT /boot-source", 1);
	if (start_fails("PUT /boot-source: ", msg, sizeof(msg)) < 0)
		FAILF("unexpected: %s", msg);
	ASSERT_TRUE(strstr(msg, "firecracker exited with status 1") != NULL);
}

TEST(socket_never_appears)
{
	char msg[1024];

	SKIP_IF_NEEDED();
	reset_scenario();
	setenv("HOTCELL_FC_DOUBLE_NO_SOCKET", "1", 1);
	if (start_fails("did not appear within 2000 ms", msg, sizeof(msg)) < 0)
		FAILF("unexpected: %s", msg);
}

TEST(unknown_flag_rejected_by_double)
{
	const char *argv[] = {dbl, "--api-sock", "/tmp/x.sock", "--bogus", NULL};
	struct hc_error e = {0};
	_cleanup_free_ char *out = NULL;
	int r;

	SKIP_IF_NEEDED();
	/* The double is strict, like the real binary: keeps the driver's command line honest. */
	r = hc_child_run(argv, 5000, 4096, &out, &e);
	ASSERT_EQ_INT(r, 153);
}

TEST(shared_dirs_refused)
{
	struct hc_vm_spec s = api_spec();
	struct hc_volume v = {.host = "/tmp", .guest = "/mnt"};
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;

	SKIP_IF_NEEDED();
	s.volumes = &v;
	s.n_volumes = 1;
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_firecracker_ops, &s, &e), &e);
	ASSERT_EQ_INT(hc_vm_start(vm, &e), -EOPNOTSUPP);
	hc_vm_free(vm);
	ASSERT_TRUE(strstr(e.message, "backend 'firecracker' does not support shared dir") != NULL);
}

/* ---- the jailer ------------------------------------------------------------------------------ */

static bool mounted_under(const char *prefix)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	bool found = false;

	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, prefix))
			found = true;
	if (f)
		fclose(f);
	return found;
}

TEST(jailer_chroot_binds_and_teardown)
{
	struct hc_vm_spec s = api_spec();
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	char jailer[HC_PATH_MAX], home[HC_PATH_MAX], want[HC_PATH_MAX * 2], p[HC_PATH_MAX],
		jail_base[HC_PATH_MAX], snapdir[HC_PATH_MAX], line[128] = "";
	_cleanup_free_ char *log = NULL;
	struct stat before, after;
	pid_t pid;
	int fd;
	ssize_t k;

	SKIP_IF_NEEDED();
	if (geteuid() != 0)
		SKIP("the jailer needs root");
	snprintf(jailer, sizeof(jailer), "%s", dbl);
	*strrchr(jailer, '/') = '\0';
	strcat(jailer, "/jailer-double");
	if (access(jailer, X_OK) < 0)
		SKIP("the jailer double is not built");
	reset_scenario();
	snprintf(home, sizeof(home), "%s/home", tmp);
	snprintf(jail_base, sizeof(jail_base), "%s/jailer", home);
	setenv("HOTCELL_HOME", home, 1);
	setenv("HOTCELL_FIRECRACKER_JAILER", jailer, 1);
	setenv("HOTCELL_FC_DOUBLE_EXPECT", ORDER ";PATCH /vm;PUT /snapshot/create", 1);
	/* Firecracker drops to the VM's own uid, leased from hotcell's range: a one-uid range of
	 * the test's own makes it known. */
	snprintf(p, sizeof(p), "%s/leases", tmp);
	setenv("HOTCELL_JAIL_LEASE_DIR", p, 1);
	setenv("HOTCELL_JAIL_UIDS", "4400000-4400000", 1);
	ASSERT_EQ_INT(stat(fake_kernel, &before), 0);
	s.jailer = true;
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_firecracker_ops, &s, &e), &e);
	if (hc_vm_start(vm, &e) < 0) {
		hc_vm_free(vm);
		unsetenv("HOTCELL_FIRECRACKER_JAILER");
		FAILF("start: %s", e.message);
	}
	unsetenv("HOTCELL_FIRECRACKER_JAILER");
	log = read_log_file(reqlog);
	snprintf(want, sizeof(want),
		 "--exec-file %s --uid 4400000 --gid 4400000 --chroot-base-dir %s "
		 "--cgroup-version ",
		 dbl, jail_base);
	ASSERT_TRUE(strstr(log, want) != NULL);
	ASSERT_TRUE(strstr(log, " -- --api-sock /fc.sock\n") != NULL);
	ASSERT_TRUE(strstr(log, " uid 4400000\n") != NULL); /* Firecracker dropped privileges */
	ASSERT_TRUE(vm->jailed);
	ASSERT_TRUE(strstr(log, "\"kernel_image_path\":\"/vmlinux\"") != NULL);
	ASSERT_TRUE(strstr(log, "\"initrd_path\":\"/initrd\"") != NULL);
	ASSERT_TRUE(strstr(log, "\"path_on_host\":\"/rootfs.ext4\"") != NULL);
	ASSERT_TRUE(strstr(log, "PUT /actions 204") != NULL);
	/* The kernel is visible in the chroot, read-only; the cache file is untouched. */
	ASSERT_TRUE(mounted_under(jail_base));
	{
		glob_t g;
		char pat[HC_PATH_MAX];

		snprintf(pat, sizeof(pat), "%s/firecracker-double/hc-*/root/vmlinux", jail_base);
		ASSERT_EQ_INT(glob(pat, 0, NULL, &g), 0);
		snprintf(p, sizeof(p), "%s", g.gl_pathv[0]);
		globfree(&g);
	}
	fd = open(p, O_WRONLY | O_CLOEXEC);
	ASSERT_TRUE(fd < 0 && errno == EROFS);
	ASSERT_EQ_INT(stat(fake_kernel, &after), 0);
	ASSERT_TRUE(before.st_uid == after.st_uid && before.st_mode == after.st_mode);
	/* The guest's connection crossed the chroot. */
	fd = hc_hvsock_accept(vm->agent_listen_fd, vm->death_fd, 10000, &e);
	ASSERT_OK(fd, &e);
	k = read(fd, line, sizeof(line) - 1);
	close(fd);
	line[k > 0 ? k : 0] = '\0';
	ASSERT_EQ_STR(line, "HOTCELL-DOUBLE-GUEST hello\n");
	/* A snapshot is written inside the chroot and moved out. */
	snprintf(snapdir, sizeof(snapdir), "%s/jsnap", tmp);
	ASSERT_OK(hc_vm_pause(vm, &e), &e);
	ASSERT_OK(hc_vm_snapshot(vm, snapdir, &e), &e);
	snprintf(p, sizeof(p), "%s/vmstate", snapdir);
	ASSERT_TRUE(hc_path_exists(p));
	pid = double_pid();
	hc_vm_free(vm);
	ASSERT_TRUE(pid == 0 || (kill(pid, 0) < 0 && errno == ESRCH));
	ASSERT_TRUE(!mounted_under(jail_base));

	/* Restore under the jailer: the snapshot files are bound into a fresh chroot. */
	setenv("HOTCELL_FIRECRACKER_JAILER", jailer, 1);
	setenv("HOTCELL_FC_DOUBLE_EXPECT", "PUT /snapshot/load", 1);
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_firecracker_ops, &s, &e), &e);
	if (hc_vm_restore(vm, snapdir, &e) < 0) {
		hc_vm_free(vm);
		unsetenv("HOTCELL_FIRECRACKER_JAILER");
		FAILF("restore: %s", e.message);
	}
	unsetenv("HOTCELL_FIRECRACKER_JAILER");
	ASSERT_TRUE(vm->agent_fd >= 0);
	k = read(vm->agent_fd, line, sizeof(line) - 1);
	line[k > 0 ? k : 0] = '\0';
	ASSERT_EQ_STR(line, "HOTCELL-DOUBLE-GUEST restored\n");
	hc_vm_free(vm);
	ASSERT_TRUE(!mounted_under(jail_base));
	snprintf(p, sizeof(p), "%s/firecracker-double", jail_base);
	ASSERT_TRUE(dir_empty_but_console(p));
	unsetenv("HOTCELL_HOME");
	unsetenv("HOTCELL_JAIL_LEASE_DIR");
	unsetenv("HOTCELL_JAIL_UIDS");
}

/* ---- end to end: the double runs the guest in QEMU --------------------------------------------
 */

TEST(end_to_end_guest_in_qemu)
{
	char vmlinux[HC_PATH_MAX], initrd[HC_PATH_MAX], tree[HC_PATH_MAX], disk[HC_PATH_MAX],
		p[HC_PATH_MAX], hello[64], sum[1024];
	const char *vsockd = getenv("HOTCELL_VHOST_DEVICE_VSOCK");
	struct hc_error e = {0};
	struct hc_vm *vm = NULL;
	int fd, r;
	double t0;

	SKIP_IF_NEEDED();
	if (!find_vmlinux("HOTCELL_FC_TEST_VMLINUX", vmlinux, sizeof(vmlinux)))
		SKIP("no ELF guest kernel (build/kernel/vmlinux or /var/cache/hotcell/kernel)");
	if (access(vsockd ? vsockd : "/var/cache/hotcell-tools/usr/bin/vhost-device-vsock", X_OK))
		SKIP("vhost-device-vsock not installed (see FACTS.md)");
	reset_scenario();
	setenv("HOTCELL_FC_DOUBLE_GUEST", "qemu", 1);

	/* The test init from the QEMU backend's tests, in an initramfs. */
	r = make_test_initramfs(tmp, initrd, sizeof(initrd), &e);
	if (r > 0)
		SKIP("cannot build the static test init (cc -static)");
	ASSERT_OK(r, &e);

	/* A small ext4 image with one file: the read-only drive. */
	snprintf(tree, sizeof(tree), "%s/tree", tmp);
	mkdir(tree, 0755);
	snprintf(p, sizeof(p), "%s/hello.txt", tree);
	write_file(p, "hi from the image\n", 18);
	snprintf(disk, sizeof(disk), "%s/disk.ext4", tmp);
	const char *mk[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, disk, "8M", NULL};
	if (hc_child_run(mk, 60000, 65536, NULL, &e) != 0)
		SKIP("mke2fs -d not available");
	chmod(disk, 0444);

	struct hc_vm_spec s = api_spec();
	s.kernel = vmlinux;
	s.initrd = initrd;
	s.rootfs_disk = disk;
	s.memory_mib = 256;
	s.boot_timeout_ms = IO_TIMEOUT_MS;
	ASSERT_OK(hc_vm_new(&vm, &hc_vmm_firecracker_ops, &s, &e), &e);
	t0 = hc_clock_ms();
	if (hc_vm_start(vm, &e) < 0) {
		hc_vm_free(vm);
		FAILF("start: %s", e.message);
	}
	fd = hc_hvsock_accept(vm->agent_listen_fd, vm->death_fd, IO_TIMEOUT_MS, &e);
	if (fd < 0) {
		hc_vm_check(vm, &e);
		hc_vm_error_add_console(vm, &e);
		hc_vm_free(vm);
		FAILF("the guest did not connect: %s", e.message);
	}
	if (read_line(fd, hello, sizeof(hello), IO_TIMEOUT_MS) < 0 || strcmp(hello, "hello")) {
		close(fd);
		hc_vm_free(vm);
		FAILF("no hello from the guest: '%s'", hello);
	}
	printf("# guest connected over hybrid vsock %.0f ms after start (QEMU TCG)\n",
	       hc_clock_ms() - t0);
	ASSERT_EQ_STR(cmd(fd, "mountblk /mnt", IO_TIMEOUT_MS), "ok");
	ASSERT_EQ_STR(cmd(fd, "read /mnt/hello.txt", IO_TIMEOUT_MS), "data hi from the image");
	/* The drive is read-only from the host's side too. */
	ASSERT_TRUE(hc_startswith(cmd(fd, "remount-rw /mnt", IO_TIMEOUT_MS), "err"));
	/* A guest reset ends Firecracker (reboot=k): death_fd + check() say so. */
	if (write(fd, "reboot\n", 7) != 7)
		FAILF("%s", "write");
	struct pollfd pd = {.fd = vm->death_fd, .events = POLLIN};
	ASSERT_EQ_INT(poll(&pd, 1, IO_TIMEOUT_MS), 1);
	ASSERT_ERR(hc_vm_check(vm, &e));
	ASSERT_TRUE(strstr(e.message, "firecracker exited with status 0") != NULL);
	close(fd);
	log_file_summary(reqlog, sum, sizeof(sum));
	ASSERT_EQ_STR(sum, "PUT /machine-config 204;PUT /boot-source 204;PUT /drives/rootfs 204;"
			   "PUT /vsock 204;PUT /actions 204;EXIT guest reset");
	hc_vm_free(vm);
	ASSERT_TRUE(double_pid() == 0);
}

int main(void)
{
	struct hc_error e = {0};

	skip_all = setup();
	RUN(probe_reports_version);
	RUN(probe_refuses_old_version);
	RUN(probe_refuses_project_kernel_on_pvm);
	RUN(probe_refuses_bzimage);
	RUN(probe_binary_missing);
	RUN(start_request_order_and_guest_connect);
	RUN(restore_into_fresh_process_reconnects);
	RUN(restore_paused_reconnects_on_resume);
	RUN(restore_with_network_overrides);
	RUN(fault_message_names_endpoint);
	RUN(instance_start_refused);
	RUN(early_exit_is_reported);
	RUN(exit_during_configuration);
	RUN(socket_never_appears);
	RUN(unknown_flag_rejected_by_double);
	RUN(shared_dirs_refused);
	RUN(jailer_chroot_binds_and_teardown);
	RUN(end_to_end_guest_in_qemu);
	if (tmp[0])
		(void)hc_path_rm_rf(tmp, &e);
	return test_summary();
}
