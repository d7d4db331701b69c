/* SPDX-License-Identifier: MIT */
/*
 * A strict test double of the `firecracker` binary (Firecracker cannot be installed here).
 *
 * It takes Firecracker's command line, serves the documented REST API on --api-sock
 * (src/firecracker/swagger/firecracker.yaml, v1.10 subset: status codes 204/200/400,
 * {"fault_message": ...} bodies, unknown fields rejected, pre-boot-only calls refused after
 * InstanceStart, PATCH /vm only after it, /snapshot/create only when Paused, /snapshot/load
 * only on a fresh process) and, instead of KVM, really runs the guest: InstanceStart starts
 * QEMU (TCG, -M microvm) with the equivalent configuration: the kernel and initramfs, the
 * drive as read-only virtio-blk, and the vsock through vhost-device-vsock with the same
 * uds_path hybrid convention. The guest's serial console goes to stdout, as Firecracker's
 * does; when QEMU ends (the guest reset), the double exits 0, as Firecracker does.
 *
 * Scenario data, from the environment:
 *   HOTCELL_FC_DOUBLE_LOG=FILE      every request appended as "METHOD PATH STATUS BODY"
 *                                   (HOTCELL_FC_DOUBLE_LOG_FD=N: the same, on an inherited fd)
 *   HOTCELL_FC_DOUBLE_EXPECT=A;B;.. the exact request sequence ("PUT /machine-config;..."):
 *                                   anything else is answered 400 and logged UNEXPECTED
 *   HOTCELL_FC_DOUBLE_FAULT=REQ=STATUS:MSG[;...]  canned reply for a request (not applied),
 *                                   e.g. "PUT /drives/rootfs=400:Invalid block device"
 *   HOTCELL_FC_DOUBLE_EXIT=startup|REQ  exit 1 at startup, or on receiving REQ (no reply)
 *   HOTCELL_FC_DOUBLE_NO_SOCKET=1   never create the API socket
 *   HOTCELL_FC_DOUBLE_GUEST=qemu|none  run the guest in QEMU (default), or fake it: after
 *                                   InstanceStart connect to <uds>_1024 and write a line;
 *                                   serve "CONNECT <port>" on the uds_path
 *   HOTCELL_FC_DOUBLE_VERSION=1.10.1
 *   HOTCELL_FC_DOUBLE_QEMU, HOTCELL_VHOST_DEVICE_VSOCK: the programs to run the guest with
 */
#include <net/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/buf.h"
#include "core/child.h"
#include "core/clock.h"
#include "core/util.h"
#include "vmm-double.h"

#define MAX_PAYLOAD 51200 /* Firecracker's default --http-api-max-payload-size */
#define MAX_HEADERS 8192
#define EXIT_ARG_PARSING 153 /* Firecracker's FcExitCode::ArgParsing */

enum state { NOT_STARTED, RUNNING, PAUSED };

static const char *state_name[] = {"Not started", "Running", "Paused"};

static struct {
	const char *api_sock;
	const char *id;
	const char *version;
	enum state state;
	bool guest_qemu;
	/* configuration */
	json_t *machine; /* MachineConfiguration */
	json_t *boot;	 /* BootSource */
	json_t *drives;	 /* object: id -> Drive */
	json_t *vsock;	 /* Vsock */
	json_t *net;	 /* NetworkInterface (one: eth0 is all hotcell asks for) */
	bool logger;
	bool boot_specific; /* any resource other than logger/metrics configured */
	bool loaded;	    /* restored from a snapshot */
	/* scenario */
	FILE *log;
	char **expect;
	size_t n_expect, i_expect;
	const char *exit_on;
	/* guest */
	struct hc_child qemu, vsockd;
	char vhu_sock[256], qmp_sock[256];
	int fake_vsock_fd; /* the uds_path, when the double plays the guest */
} D = {.fake_vsock_fd = -1};

/* ---- HTTP ----------------------------------------------------------------------------------- */

struct reply {
	int status;
	char *body; /* JSON or NULL */
};

static struct reply fault(int status, const char *fmt, ...) _printf_(2, 3);
static struct reply fault(int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	json_t *j;
	struct reply r = {.status = status};

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_pack("{s:s}", "fault_message", msg);
	r.body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return r;
}

static struct reply ok204(void)
{
	return (struct reply){.status = 204};
}

static struct reply ok200(json_t *j)
{
	struct reply r = {.status = 200, .body = json_dumps(j, JSON_COMPACT)};

	json_decref(j);
	return r;
}

static void send_reply(int fd, struct reply *r)
{
	dbl_http_reply(fd, "Firecracker API", r->status, r->body);
}

/* ---- schema checks (serde deny_unknown_fields, as Firecracker's API structs) ------------- */

enum ftype { F_STR, F_INT, F_BOOL, F_OBJ, F_ARR };

struct field {
	const char *name;
	enum ftype type;
	bool required;
};

static const char *type_name(enum ftype t)
{
	switch (t) {
	case F_STR:
		return "a string";
	case F_INT:
		return "an integer";
	case F_BOOL:
		return "a boolean";
	case F_OBJ:
		return "an object";
	case F_ARR:
		return "a sequence";
	}
	return "?";
}

static bool type_ok(json_t *v, enum ftype t)
{
	switch (t) {
	case F_STR:
		return json_is_string(v);
	case F_INT:
		return json_is_integer(v) && json_integer_value(v) >= 0;
	case F_BOOL:
		return json_is_boolean(v);
	case F_OBJ:
		return json_is_object(v);
	case F_ARR:
		return json_is_array(v);
	}
	return false;
}

#define DESER "An error occurred when deserializing the json body of a request: "

/* 0, or a 400 in *r. */
static int check_fields(json_t *j, const struct field *f, size_t n, struct reply *r)
{
	const char *key;
	json_t *v;

	if (!json_is_object(j)) {
		*r = fault(400, DESER "invalid type: expected struct at line 1 column 1.");
		return -1;
	}
	json_object_foreach(j, key, v)
	{
		size_t i;
		char expected[512] = "";

		for (i = 0; i < n; i++)
			if (!strcmp(f[i].name, key))
				break;
		if (i == n) {
			for (size_t k = 0; k < n; k++) {
				size_t l = strlen(expected);
				snprintf(expected + l, sizeof(expected) - l, "%s`%s`",
					 k ? ", " : "", f[k].name);
			}
			*r = fault(400, DESER "unknown field `%s`, expected one of %s.", key,
				   expected);
			return -1;
		}
		if (!type_ok(v, f[i].type)) {
			*r = fault(400, DESER "invalid type for `%s`: expected %s.", key,
				   type_name(f[i].type));
			return -1;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (f[i].required && !json_object_get(j, f[i].name)) {
			*r = fault(400, DESER "missing field `%s`.", f[i].name);
			return -1;
		}
	return 0;
}

#define CHECK(j, fields, r) check_fields(j, fields, HC_ARRAY_SIZE(fields), r)

static const char *str(json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static bool flag(json_t *j, const char *k)
{
	return json_is_true(json_object_get(j, k));
}

static bool is_elf(const char *path)
{
	unsigned char m[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && read(fd, m, 4) == 4 && !memcmp(m, "\177ELF", 4);

	if (fd >= 0)
		close(fd);
	return ok;
}

/* ---- the guest ------------------------------------------------------------------------------- */

static int start_qemu(struct reply *rep)
{
	struct hc_error err = {0};
	json_t *drive = json_object_get(D.drives, "rootfs");
	const char *kernel = str(D.boot, "kernel_image_path");
	const char *initrd = str(D.boot, "initrd_path");
	const char *args = str(D.boot, "boot_args");
	long long mem = json_integer_value(json_object_get(D.machine, "mem_size_mib"));
	long long cpus = json_integer_value(json_object_get(D.machine, "vcpu_count"));
	char drv[4200], vs[300], qmp[300], tap[128], nic[96];
	struct dbl_qemu_args qa;
	const char *argv[64];
	size_t n = 0;
	int r;

	if (!mem)
		mem = 128;
	if (!cpus)
		cpus = 1;
	snprintf(D.vhu_sock, sizeof(D.vhu_sock), "%s.vhu", D.api_sock);
	snprintf(D.qmp_sock, sizeof(D.qmp_sock), "%s.qmp", D.api_sock);
	unlink(D.vhu_sock);
	if (D.vsock &&
	    dbl_vsockd_start(&D.vsockd, json_integer_value(json_object_get(D.vsock, "guest_cid")),
			     D.vhu_sock, str(D.vsock, "uds_path"), &err) < 0) {
		*rep = fault(400, "double: %s", err.message);
		return -1;
	}
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", D.qmp_sock);
	n = dbl_qemu_microvm_argv(
		argv, n, dbl_envor("HOTCELL_FC_DOUBLE_QEMU", "qemu-system-x86_64"), cpus, mem, &qa);
	/* The serial console to our stdout (the console log), appended, as Firecracker does. */
	argv[n++] = "-chardev";
	/* In the jailer's chroot there is no /proc: the stdio backend writes to the same fd. */
	argv[n++] = access("/proc/self/fd/1", F_OK) == 0
			    ? "file,id=con,path=/proc/self/fd/1,append=on"
			    : "stdio,id=con,signal=off";
	argv[n++] = "-serial";
	argv[n++] = "chardev:con";
	argv[n++] = "-no-reboot";
	argv[n++] = "-qmp";
	argv[n++] = qmp;
	argv[n++] = "-kernel";
	argv[n++] = kernel;
	if (initrd) {
		argv[n++] = "-initrd";
		argv[n++] = initrd;
	}
	if (args) {
		argv[n++] = "-append";
		argv[n++] = args;
	}
	if (drive) {
		snprintf(drv, sizeof(drv), "id=rootfs,file=%s,format=raw,if=none,readonly=%s",
			 str(drive, "path_on_host"), flag(drive, "is_read_only") ? "on" : "off");
		argv[n++] = "-drive";
		argv[n++] = drv;
		argv[n++] = "-device";
		argv[n++] = "virtio-blk-device,drive=rootfs";
	}
	if (D.net) {
		/* The same TAP, opened by name, as Firecracker's virtio-net does. */
		snprintf(tap, sizeof(tap), "tap,id=net0,ifname=%s,script=no,downscript=no",
			 str(D.net, "host_dev_name"));
		snprintf(nic, sizeof(nic), "virtio-net-device,netdev=net0%s%s",
			 str(D.net, "guest_mac") ? ",mac=" : "",
			 str(D.net, "guest_mac") ? str(D.net, "guest_mac") : "");
		argv[n++] = "-netdev";
		argv[n++] = tap;
		argv[n++] = "-device";
		argv[n++] = nic;
	}
	if (D.vsock) {
		snprintf(vs, sizeof(vs), "socket,id=vs,path=%s", D.vhu_sock);
		argv[n++] = "-chardev";
		argv[n++] = vs;
		argv[n++] = "-device";
		argv[n++] = "vhost-user-vsock-device,chardev=vs";
	}
	argv[n] = NULL;
	/* stdin: ours, as for vhost-device-vsock (the jailer's chroot has no /dev/null). */
	struct hc_child_opts o = {.argv = argv,
				  .stdin_fd = fcntl(0, F_GETFD) >= 0 ? 0 : -1,
				  .stdout_fd = 1,
				  .stderr_fd = 2};
	r = hc_child_spawn(&D.qemu, &o, &err);
	if (r < 0) {
		*rep = fault(400, "double: %s", err.message);
		return -1;
	}
	return 0;
}

static int qmp_command(const char *cmd)
{
	if (!D.qemu.pid)
		return 0;
	return dbl_qmp_command(D.qmp_sock, cmd);
}

/* When the double plays the guest: bind the uds_path and serve host-initiated connections. */
static void fake_vsock_bind(void)
{
	D.fake_vsock_fd = dbl_fake_vsock_bind(str(D.vsock, "uds_path"));
	if (D.fake_vsock_fd < 0)
		dbl_die("double: bind %s: %s", str(D.vsock, "uds_path"),
			strerror(-D.fake_vsock_fd));
}

static void fake_guest_connect(const char *what)
{
	dbl_fake_guest_connect(str(D.vsock, "uds_path"), what);
}

/* ---- endpoints --------------------------------------------------------------------------- */

static const struct field machine_fields[] = {
	{"vcpu_count", F_INT, true},	{"mem_size_mib", F_INT, true},
	{"smt", F_BOOL, false},		{"track_dirty_pages", F_BOOL, false},
	{"cpu_template", F_STR, false}, {"huge_pages", F_STR, false},
};
static const struct field boot_fields[] = {
	{"kernel_image_path", F_STR, true},
	{"initrd_path", F_STR, false},
	{"boot_args", F_STR, false},
};
static const struct field drive_fields[] = {
	{"drive_id", F_STR, true},	  {"partuuid", F_STR, false},
	{"is_root_device", F_BOOL, true}, {"cache_type", F_STR, false},
	{"is_read_only", F_BOOL, false},  {"path_on_host", F_STR, false},
	{"rate_limiter", F_OBJ, false},	  {"io_engine", F_STR, false},
	{"socket", F_STR, false},
};
/* Firecracker's OpenAPI NetworkInterface. */
static const struct field net_fields[] = {
	{"iface_id", F_STR, true},	   {"host_dev_name", F_STR, true},
	{"guest_mac", F_STR, false},	   {"rx_rate_limiter", F_OBJ, false},
	{"tx_rate_limiter", F_OBJ, false},
};
static const struct field vsock_fields[] = {
	{"guest_cid", F_INT, true},
	{"uds_path", F_STR, true},
	{"vsock_id", F_STR, false},
};
static const struct field logger_fields[] = {
	{"log_path", F_STR, false},	    {"level", F_STR, false},  {"show_level", F_BOOL, false},
	{"show_log_origin", F_BOOL, false}, {"module", F_STR, false},
};
static const struct field action_fields[] = {{"action_type", F_STR, true}};
static const struct field vm_fields[] = {{"state", F_STR, true}};
static const struct field snap_create_fields[] = {
	{"snapshot_type", F_STR, false},
	{"snapshot_path", F_STR, true},
	{"mem_file_path", F_STR, true},
	{"version", F_STR, false},
};
static const struct field snap_load_fields[] = {
	{"snapshot_path", F_STR, true},	      {"mem_file_path", F_STR, false},
	{"mem_backend", F_OBJ, false},	      {"enable_diff_snapshots", F_BOOL, false},
	{"track_dirty_pages", F_BOOL, false}, {"resume_vm", F_BOOL, false},
	{"network_overrides", F_ARR, false},
};
/* NetworkOverride: the new TAP of an interface the snapshot has. */
static const struct field net_override_fields[] = {
	{"iface_id", F_STR, true},
	{"host_dev_name", F_STR, true},
};
static const struct field mem_backend_fields[] = {
	{"backend_type", F_STR, true},
	{"backend_path", F_STR, true},
};

#define NOT_AFTER_START "The requested operation is not supported after starting the microVM."

/* 0 when the TAP called name can be attached as Firecracker does (IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR), else the errno. A TAP that does not exist is ENODEV, not made (Firecracker
 * would make one as root; hotcell's TAPs always exist first). */
static int tap_check(const char *name)
{
	struct ifreq ifr = {0};
	int fd, e = 0;

	if (!if_nametoindex(name))
		return ENODEV;
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		e = errno;
	close(fd);
	return e;
}
#define NOT_BEFORE_START "The requested operation is not supported before starting the microVM."

static struct reply put_machine(json_t *j)
{
	struct reply r;
	json_int_t v;

	if (CHECK(j, machine_fields, &r) < 0)
		return r;
	v = json_integer_value(json_object_get(j, "vcpu_count"));
	if (v < 1 || v > 32)
		return fault(400, "The vCPU number is invalid! The vCPU number can only be 1 or an "
				  "even number when SMT is enabled.");
	if (json_integer_value(json_object_get(j, "mem_size_mib")) == 0)
		return fault(400, "The memory size (MiB) is invalid.");
	json_decref(D.machine);
	D.machine = json_incref(j);
	return ok204();
}

static struct reply put_boot(json_t *j)
{
	struct reply r;
	const char *k, *i;

	if (CHECK(j, boot_fields, &r) < 0)
		return r;
	k = str(j, "kernel_image_path");
	if (access(k, R_OK) < 0)
		return fault(400, "The kernel file cannot be opened: %s (os error %d)",
			     strerror(errno), errno);
	i = str(j, "initrd_path");
	if (i && access(i, R_OK) < 0)
		return fault(400,
			     "The initrd file cannot be opened due to invalid path or invalid "
			     "permissions. %s (os error %d)",
			     strerror(errno), errno);
	json_decref(D.boot);
	D.boot = json_incref(j);
	return ok204();
}

static struct reply put_drive(const char *id, json_t *j)
{
	struct reply r;
	const char *p;
	int fd;

	if (CHECK(j, drive_fields, &r) < 0)
		return r;
	if (strcmp(str(j, "drive_id"), id))
		return fault(400,
			     "The id from the path [%s] does not match the id from the body [%s]!",
			     id, str(j, "drive_id"));
	p = str(j, "path_on_host");
	if (!p || !json_object_get(j, "is_read_only"))
		return fault(400, "Unable to create the virtio block device: path_on_host and "
				  "is_read_only are required for virtio-block");
	fd = open(p, (flag(j, "is_read_only") ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return fault(400,
			     "Unable to create the virtio block device: BackingFile(Os { code: "
			     "%d, kind: NotFound, message: \"%s\" }, \"%s\")",
			     errno, strerror(errno), p);
	close(fd);
	if (flag(j, "is_root_device")) {
		const char *key;
		json_t *v;

		json_object_foreach(
			D.drives, key,
			v) if (strcmp(key, id) &&
			       flag(v, "is_root_device")) return fault(400, "A root block device "
									    "already exists!");
	}
	json_object_set(D.drives, id, j);
	return ok204();
}

static struct reply put_net(const char *id, json_t *j)
{
	struct reply r;
	const char *mac;
	unsigned b[6];
	char end;

	if (CHECK(j, net_fields, &r) < 0)
		return r;
	if (strcmp(str(j, "iface_id"), id))
		return fault(400,
			     "The id from the path [%s] does not match the id from the body [%s]!",
			     id, str(j, "iface_id"));
	mac = str(j, "guest_mac");
	if (mac && sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
			  &b[5], &end) != 6)
		return fault(400, "Invalid MAC address: %s", mac);
	/* Firecracker opens the TAP by name when the device is made, through /dev/net/tun (the
	 * jail's under the jailer) as the user it runs as: a TAP that is missing, or not that
	 * user's (TUNSETOWNER) when it has no CAP_NET_ADMIN, is refused by the kernel. The
	 * double only checks: QEMU opens it again when the guest starts. */
	int e = tap_check(str(j, "host_dev_name"));
	if (e)
		return fault(400,
			     "Could not create the network device: Open tap device failed: Error "
			     "while creating ifreq structure: %s (os error %d). Invalid TUN/TAP "
			     "Backend provided by %s. Check our documentation on setting up the "
			     "network devices.",
			     strerror(e), e, str(j, "host_dev_name"));
	if (D.net && strcmp(str(D.net, "iface_id"), id))
		return fault(400, "double: one network interface only");
	json_decref(D.net);
	D.net = json_incref(j);
	return ok204();
}

static struct reply put_vsock(json_t *j)
{
	struct reply r;
	struct stat st;

	if (CHECK(j, vsock_fields, &r) < 0)
		return r;
	if (json_integer_value(json_object_get(j, "guest_cid")) < 3)
		return fault(400, "Cannot create backend for vsock device: invalid guest CID");
	/* Firecracker binds uds_path here and fails on an existing file. */
	if (lstat(str(j, "uds_path"), &st) == 0)
		return fault(400, "Cannot create backend for vsock device: UnixBind(Os { code: 98, "
				  "kind: AddrInUse, message: \"Address in use\" })");
	json_decref(D.vsock);
	D.vsock = json_incref(j);
	return ok204();
}

static struct reply put_logger(json_t *j)
{
	struct reply r;
	const char *p;

	if (CHECK(j, logger_fields, &r) < 0)
		return r;
	p = str(j, "log_path");
	/* Firecracker opens an existing file or FIFO; it does not create one. */
	if (p && access(p, W_OK) < 0)
		return fault(400, "Failed to open target file: %s (os error %d)", strerror(errno),
			     errno);
	D.logger = true;
	return ok204();
}

static struct reply put_actions(json_t *j)
{
	struct reply r;
	const char *a;

	if (CHECK(j, action_fields, &r) < 0)
		return r;
	a = str(j, "action_type");
	if (!strcmp(a, "FlushMetrics"))
		return ok204();
	if (!strcmp(a, "SendCtrlAltDel")) {
		if (D.state == NOT_STARTED)
			return fault(400, NOT_BEFORE_START);
		return ok204();
	}
	if (strcmp(a, "InstanceStart"))
		return fault(400,
			     DESER "unknown variant `%s`, expected one of `FlushMetrics`, "
				   "`InstanceStart`, `SendCtrlAltDel`.",
			     a);
	if (D.state != NOT_STARTED)
		return fault(400, NOT_AFTER_START);
	if (!D.boot)
		return fault(400,
			     "Cannot start microvm that was not configured: MissingKernelConfig");
	if (!is_elf(str(D.boot, "kernel_image_path")))
		return fault(400,
			     "Cannot load kernel due to invalid memory configuration or invalid "
			     "kernel image: Kernel Loader: failed to load ELF kernel image");
	if (D.guest_qemu) {
		if (start_qemu(&r) < 0)
			return r;
	} else if (D.vsock) {
		fake_vsock_bind();
		fake_guest_connect("HOTCELL-DOUBLE-GUEST hello");
	}
	D.state = RUNNING;
	return ok204();
}

static struct reply patch_vm(json_t *j)
{
	struct reply r;
	const char *s;

	if (CHECK(j, vm_fields, &r) < 0)
		return r;
	s = str(j, "state");
	if (strcmp(s, "Paused") && strcmp(s, "Resumed"))
		return fault(400, DESER "unknown variant `%s`, expected `Paused` or `Resumed`.", s);
	if (D.state == NOT_STARTED)
		return fault(400, NOT_BEFORE_START);
	if (qmp_command(!strcmp(s, "Paused") ? "stop" : "cont") < 0)
		return fault(400, "double: QMP %s failed", s);
	D.state = !strcmp(s, "Paused") ? PAUSED : RUNNING;
	return ok204();
}

static int write_file(const char *path, const char *data, off_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if ((data && write(fd, data, strlen(data)) < 0) || (size && ftruncate(fd, size) < 0)) {
		close(fd);
		return -errno;
	}
	close(fd);
	return 0;
}

static struct reply put_snapshot_create(json_t *j)
{
	struct reply r;
	const char *type;
	json_t *st;
	char *dump;
	int e;

	if (CHECK(j, snap_create_fields, &r) < 0)
		return r;
	if (D.state == NOT_STARTED)
		return fault(400, NOT_BEFORE_START);
	if (D.state != PAUSED)
		return fault(400, "Cannot create snapshot: the microVM must be paused. "
				  "Operation not allowed: InvalidVmState(NotPaused)");
	type = str(j, "snapshot_type") ? str(j, "snapshot_type") : "Full";
	if (strcmp(type, "Full") && strcmp(type, "Diff"))
		return fault(400, DESER "unknown variant `%s`, expected `Full` or `Diff`.", type);
	if (!strcmp(type, "Diff") && !flag(D.machine, "track_dirty_pages"))
		return fault(400, "Diff snapshots are not allowed on uVMs with dirty page tracking "
				  "disabled.");
	/* The double's own state format: the configuration to restore. */
	st = json_pack("{s:s, s:O, s:O, s:O, s:O*, s:O*}", "double", "firecracker-double",
		       "machine-config", D.machine ? D.machine : json_null(), "boot-source", D.boot,
		       "drives", D.drives, "vsock", D.vsock, "network-interface", D.net);
	dump = json_dumps(st, JSON_COMPACT);
	json_decref(st);
	e = write_file(str(j, "snapshot_path"), dump, 0);
	free(dump);
	if (e < 0)
		return fault(400, "Cannot create snapshot: SnapshotBackingFile(\"open\", %s)",
			     strerror(-e));
	e = write_file(str(j, "mem_file_path"), NULL,
		       (off_t)json_integer_value(json_object_get(D.machine, "mem_size_mib")) << 20);
	if (e < 0)
		return fault(400, "Cannot create snapshot: Memory(\"open\", %s)", strerror(-e));
	return ok204();
}

static struct reply put_snapshot_load(json_t *j)
{
	struct reply r;
	json_t *mb, *st;
	const char *mem;
	struct stat sb;

	if (CHECK(j, snap_load_fields, &r) < 0)
		return r;
	if (D.state != NOT_STARTED || D.boot_specific || D.loaded)
		return fault(400, "Loading a microVM snapshot not allowed after configuring "
				  "boot-specific resources.");
	mb = json_object_get(j, "mem_backend");
	if (!!mb == !!json_object_get(j, "mem_file_path"))
		return fault(400,
			     "Either `mem_backend` or `mem_file_path` must be present, but not "
			     "both.");
	if (mb) {
		if (CHECK(mb, mem_backend_fields, &r) < 0)
			return r;
		if (strcmp(str(mb, "backend_type"), "File") &&
		    strcmp(str(mb, "backend_type"), "Uffd"))
			return fault(400, DESER "unknown variant `%s`.", str(mb, "backend_type"));
		mem = str(mb, "backend_path");
	} else {
		mem = str(j, "mem_file_path");
	}
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(j, "network_overrides"), i, o)
	{
		if (CHECK(o, net_override_fields, &r) < 0)
			return r;
	}
	if (stat(mem, &sb) < 0)
		return fault(400,
			     "Load snapshot error: Failed to restore from snapshot: Failed to "
			     "load guest memory: %s",
			     strerror(errno));
	st = json_load_file(str(j, "snapshot_path"), 0, NULL);
	if (!json_is_object(st) || !json_is_string(json_object_get(st, "double"))) {
		json_decref(st);
		return fault(400, "Load snapshot error: Failed to restore from snapshot: Cannot "
				  "deserialize the microVM state.");
	}
	/* The snapshot's NIC, on the TAP a network override names (Firecracker's persist.rs:
	 * an override of an interface the snapshot lacks is an error; the TAP is opened when
	 * the device is restored). */
	json_t *net = json_object_get(st, "network-interface");
	net = json_is_object(net) ? json_deep_copy(net) : NULL;
	json_array_foreach(json_object_get(j, "network_overrides"), i, o)
	{
		if (!net || strcmp(str(net, "iface_id"), str(o, "iface_id"))) {
			json_decref(net);
			json_decref(st);
			return fault(400, "Load snapshot error: Failed to restore from snapshot: "
					  "Unknown Network Device.");
		}
		json_object_set_new(net, "host_dev_name", json_string(str(o, "host_dev_name")));
	}
	if (net && !if_nametoindex(str(net, "host_dev_name"))) {
		r = fault(
			400,
			"Load snapshot error: Failed to restore from snapshot: Failed to build "
			"microVM from snapshot: Open tap device failed: Error while creating ifreq "
			"structure: No such device. Invalid TUN/TAP Backend provided by %s.",
			str(net, "host_dev_name"));
		json_decref(net);
		json_decref(st);
		return r;
	}
	D.machine = json_incref(json_object_get(st, "machine-config"));
	D.boot = json_incref(json_object_get(st, "boot-source"));
	json_decref(D.drives);
	D.drives = json_incref(json_object_get(st, "drives"));
	D.vsock = json_incref(json_object_get(st, "vsock"));
	json_decref(D.net);
	D.net = net;
	json_decref(st);
	D.loaded = true;
	/* A restored VM cannot be run in QEMU from the double's state: the double plays the
	 * guest, with its vsock connections reset as Firecracker's are. */
	if (json_is_object(D.vsock))
		fake_vsock_bind();
	D.state = flag(j, "resume_vm") ? RUNNING : PAUSED;
	return ok204();
}

static struct reply get_root(void)
{
	return ok200(json_pack("{s:s, s:s, s:s, s:s}", "id", D.id, "state", state_name[D.state],
			       "vmm_version", D.version, "app_name", "Firecracker"));
}

static bool pre_boot_only(const char *method, const char *path)
{
	return !strcmp(method, "PUT") &&
	       (!strcmp(path, "/machine-config") || !strcmp(path, "/boot-source") ||
		hc_startswith(path, "/drives/") || !strcmp(path, "/vsock") ||
		!strcmp(path, "/logger") || hc_startswith(path, "/network-interfaces/"));
}

static struct reply route(const char *method, const char *path, const char *body)
{
	_cleanup_(json_decrefp) json_t *j = NULL;
	json_error_t jerr;

	if (!strcmp(method, "GET")) {
		if (!strcmp(path, "/"))
			return get_root();
		if (!strcmp(path, "/version"))
			return ok200(json_pack("{s:s}", "firecracker_version", D.version));
		if (!strcmp(path, "/machine-config"))
			return ok200(D.machine ? json_incref(D.machine)
					       : json_pack("{s:i, s:i, s:b}", "vcpu_count", 1,
							   "mem_size_mib", 128, "smt", 0));
		return fault(400, "Invalid request method and/or path: %s %s.", method, path);
	}
	if (strcmp(method, "PUT") && strcmp(method, "PATCH"))
		return fault(400, "Invalid request method and/or path: %s %s.", method, path);
	if (!*body)
		return fault(400, "The body of the request is missing.");
	j = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return fault(400, DESER "%s at line %d column %d.", jerr.text, jerr.line,
			     jerr.column);
	if (pre_boot_only(method, path) && (D.state != NOT_STARTED || D.loaded))
		return fault(400, NOT_AFTER_START);
	if (!strcmp(method, "PATCH")) {
		if (!strcmp(path, "/vm"))
			return patch_vm(j);
		return fault(400, "Invalid request method and/or path: %s %s.", method, path);
	}
	if (!strcmp(path, "/machine-config"))
		return put_machine(j);
	if (!strcmp(path, "/boot-source"))
		return put_boot(j);
	if (hc_startswith(path, "/drives/") && path[8] && !strchr(path + 8, '/'))
		return put_drive(path + 8, j);
	if (hc_startswith(path, "/network-interfaces/") && path[20] && !strchr(path + 20, '/'))
		return put_net(path + 20, j);
	if (!strcmp(path, "/vsock"))
		return put_vsock(j);
	if (!strcmp(path, "/logger"))
		return put_logger(j);
	if (!strcmp(path, "/actions"))
		return put_actions(j);
	if (!strcmp(path, "/snapshot/create"))
		return put_snapshot_create(j);
	if (!strcmp(path, "/snapshot/load"))
		return put_snapshot_load(j);
	return fault(400, "Invalid request method and/or path: %s %s.", method, path);
}

/* ---- scenario ---------------------------------------------------------------------------- */

/* HOTCELL_FC_DOUBLE_FAULT entries "METHOD PATH=STATUS:MESSAGE", ';'-separated. */
static bool canned_fault(const char *req, struct reply *r)
{
	char msg[512];
	int status;

	if (!dbl_canned_fault("HOTCELL_FC_DOUBLE_FAULT", req, &status, msg, sizeof(msg)))
		return false;
	*r = fault(status ? status : 400, "%s", msg);
	return true;
}

static void load_expect(void)
{
	const char *e = getenv("HOTCELL_FC_DOUBLE_EXPECT");
	char *copy, *save = NULL;

	if (!e || !*e)
		return;
	copy = strdup(e);
	for (char *t = strtok_r(copy, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
		D.expect = realloc(D.expect, (D.n_expect + 1) * sizeof(*D.expect));
		D.expect[D.n_expect++] = strdup(t);
	}
	free(copy);
}

static void handle(struct dbl_client *c, const char *method, const char *path, const char *body)
{
	char req[300];
	struct reply r;
	bool unexpected = false;

	snprintf(req, sizeof(req), "%s %s", method, path);
	if (D.exit_on && !strcmp(D.exit_on, req)) {
		if (D.log)
			fprintf(D.log, "%s EXIT %s\n", req, body);
		fprintf(stderr, "double: exiting on %s, as the scenario says\n", req);
		exit(1);
	}
	if (D.expect && (D.i_expect >= D.n_expect || strcmp(D.expect[D.i_expect], req))) {
		r = fault(400, "double: unexpected request '%s', expected '%s'", req,
			  D.i_expect < D.n_expect ? D.expect[D.i_expect] : "nothing");
		unexpected = true;
	} else {
		if (D.expect)
			D.i_expect++;
		if (!canned_fault(req, &r)) {
			r = route(method, path, body);
			if (r.status / 100 == 2 && strcmp(path, "/logger") &&
			    strcmp(method, "GET") && (pre_boot_only(method, path)))
				D.boot_specific = true;
		}
	}
	if (D.log) {
		fprintf(D.log, "%s%s %d %s\n", unexpected ? "UNEXPECTED " : "", req, r.status,
			*body ? body : "-");
		fflush(D.log);
	}
	send_reply(c->fd, &r);
	free(r.body);
}

/* A request that cannot be framed: Firecracker's answers, then the connection is closed. */
static void bad_request(struct dbl_client *c, int status, size_t body_len)
{
	struct reply r = status == 400 ? fault(400, "Invalid HTTP request line.")
				       : fault(400,
					       "Request payload with size %zu is larger than the "
					       "limit of %d allowed by server.",
					       body_len, MAX_PAYLOAD);

	send_reply(c->fd, &r);
	free(r.body);
}

/* ---- main -------------------------------------------------------------------------------- */

static void usage_error(const char *arg)
{
	fprintf(stderr,
		"Arguments parsing error: Found argument '%s' which wasn't expected, or isn't "
		"valid "
		"in this context.\n\nFor more information try --help\n",
		arg);
	exit(EXIT_ARG_PARSING);
}

static void cleanup(void)
{
	hc_child_stop(&D.qemu, 0);
	hc_child_stop(&D.vsockd, 0);
	if (D.vhu_sock[0])
		unlink(D.vhu_sock);
	if (D.qmp_sock[0])
		unlink(D.qmp_sock);
	if (D.api_sock)
		unlink(D.api_sock);
	if (D.vsock && json_is_string(json_object_get(D.vsock, "uds_path")))
		unlink(str(D.vsock, "uds_path"));
}

static void on_term(int sig)
{
	(void)sig;
	exit(0); /* runs cleanup() */
}

int main(int argc, char **argv)
{
	/* Flags Firecracker takes with a value / without; the jailer passes the start times. */
	static const char *const with_value[] = {"--api-sock",
						 "--id",
						 "--start-time-us",
						 "--start-time-cpu-us",
						 "--parent-cpu-time-us",
						 "--level",
						 "--log-path",
						 "--seccomp-filter",
						 "--http-api-max-payload-size",
						 "--mmds-size-limit",
						 "--metrics-path",
						 "--module"};
	static const char *const no_value[] = {"--version",    "--no-seccomp",	    "--boot-timer",
					       "--show-level", "--show-log-origin", "--help"};
	struct dbl_loop loop;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd;

	D.api_sock = "/run/firecracker.socket";
	D.id = "anonymous-instance";
	D.version = dbl_envor("HOTCELL_FC_DOUBLE_VERSION", "1.10.1");
	D.qemu = (struct hc_child)HC_CHILD_INIT;
	D.vsockd = (struct hc_child)HC_CHILD_INIT;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t k;
		bool known = false;

		for (k = 0; k < HC_ARRAY_SIZE(no_value); k++)
			if (!strcmp(a, no_value[k]))
				known = true;
		if (known) {
			if (!strcmp(a, "--version")) {
				printf("Firecracker v%s\n\n", D.version);
				return 0;
			}
			if (!strcmp(a, "--help")) {
				printf("firecracker-double: see "
				       "tests/doubles/firecracker-double.c\n");
				return 0;
			}
			continue;
		}
		for (k = 0; k < HC_ARRAY_SIZE(with_value); k++)
			if (!strcmp(a, with_value[k]))
				known = true;
		if (!known || i + 1 >= argc)
			usage_error(a);
		if (!strcmp(a, "--api-sock"))
			D.api_sock = argv[i + 1];
		else if (!strcmp(a, "--id"))
			D.id = argv[i + 1];
		i++;
	}

	if (hc_streq(getenv("HOTCELL_FC_DOUBLE_EXIT"), "startup")) {
		fprintf(stderr, "double: exiting at startup, as the scenario says\n");
		return 1;
	}
	D.exit_on = getenv("HOTCELL_FC_DOUBLE_EXIT");
	D.guest_qemu = !hc_streq(getenv("HOTCELL_FC_DOUBLE_GUEST"), "none");
	D.drives = json_object();
	if (getenv("HOTCELL_FC_DOUBLE_LOG_FD")) {
		/* Under the jailer double: the log is outside the chroot, handed over as an fd. */
		int fd = atoi(getenv("HOTCELL_FC_DOUBLE_LOG_FD"));

		fcntl(fd, F_SETFD, FD_CLOEXEC);
		D.log = fdopen(fd, "a");
		if (!D.log)
			dbl_die("double: log fd: %s", strerror(errno));
		fprintf(D.log, "START %s uid %u\n", D.id, (unsigned)getuid());
		fflush(D.log);
	} else if (getenv("HOTCELL_FC_DOUBLE_LOG")) {
		D.log = fopen(getenv("HOTCELL_FC_DOUBLE_LOG"), "ae");
		if (!D.log)
			dbl_die("double: open log: %s", strerror(errno));
		fprintf(D.log, "START %s\n", D.id);
		fflush(D.log);
	}
	load_expect();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	atexit(cleanup);

	if (hc_streq(getenv("HOTCELL_FC_DOUBLE_NO_SOCKET"), "1"))
		for (;;)
			pause();

	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (strlen(D.api_sock) >= sizeof(sa.sun_path))
		dbl_die("Failed to open the API socket: path too long");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", D.api_sock);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		const char *s = D.api_sock;

		D.api_sock = NULL; /* not ours: do not remove it */
		dbl_die("Failed to open the API socket at: %s. Check that it is not already used. "
			"%s",
			s, strerror(errno));
	}
	if (listen(lfd, 8) < 0)
		dbl_die("listen: %s", strerror(errno));
	dbl_loop_init(&loop, lfd, MAX_HEADERS, MAX_PAYLOAD);

	for (;;) {
		unsigned ev = dbl_loop_wait(&loop, &D.qemu, &D.vsockd, D.fake_vsock_fd);

		if (ev & DBL_QEMU_EXITED) {
			/* The guest reset (reboot=k): Firecracker exits 0. */
			if (D.log) {
				fprintf(D.log, "EXIT guest reset\n");
				fflush(D.log);
			}
			return 0;
		}
		if (ev & DBL_VSOCKD_EXITED)
			dbl_die("double: vhost-device-vsock exited");
		if (ev & DBL_FAKE_VSOCK)
			dbl_fake_vsock_serve(D.fake_vsock_fd, D.loaded ? "restored" : "running");
		dbl_loop_serve(&loop, handle, bad_request);
	}
}
