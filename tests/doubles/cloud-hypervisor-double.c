/* SPDX-License-Identifier: MIT */
/*
 * A strict test double of the `cloud-hypervisor` binary (Cloud Hypervisor cannot be installed
 * here).
 *
 * It takes Cloud Hypervisor's command line (--api-socket path=P|fd=N|P, --event-monitor
 * path=P|fd=N, -v, --version), serves the documented REST API
 * (vmm/src/api/openapi/cloud-hypervisor.yaml): status codes 200/204, 400 for bodies that do not
 * deserialize (unknown fields rejected, as serde's deny_unknown_fields does) and for bodies sent
 * to body-less actions, 404 for a VM that is not created, 500 for refused API actions, error
 * bodies as Cloud Hypervisor's JSON array of the error chain (or plain text, as before v40:
 * HOTCELL_CH_DOUBLE_ERRORS=text); the VM state machine: vm.create once, vm.boot only after it,
 * vm.pause only when running, vm.resume only when paused, vm.snapshot only when paused,
 * vm.restore only into a VMM without a VM (its net_fds checked as RestoreConfig::validate does);
 * vm.add-net before vm.boot with the TAP as a passed fd (SCM_RIGHTS); vmm.ping, vm.info,
 * vmm.shutdown (exits 0). Events go
 * to the event monitor as Cloud Hypervisor writes them (pretty JSON objects, blank-line
 * separated).
 *
 * Instead of KVM, vm.boot really runs the configured guest in QEMU (TCG, -M microvm): the
 * payload's kernel, initramfs and cmdline; the fs entries through vhost-user-fs-device on the
 * configured sockets (the driver's virtiofsd); the disks read-only as configured; the vsock
 * through vhost-device-vsock with the same hybrid socket convention; the serial port to the
 * configured file. When the guest resets (QEMU -no-reboot exits), the double reports a
 * "rebooting" event, as Cloud Hypervisor does before it boots the guest again (the double does
 * not boot it again).
 *
 * Scenario data, from the environment:
 *   HOTCELL_CH_DOUBLE_LOG=FILE      every request appended as "METHOD PATH STATUS BODY"
 *   HOTCELL_CH_DOUBLE_FAULT=REQ=STATUS:MSG[;...]  canned error for a request (not applied),
 *                                   e.g. "PUT /api/v1/vm.boot=500:Failed to boot"
 *   HOTCELL_CH_DOUBLE_EXIT=startup|REQ  exit 1 at startup, or on receiving REQ (no reply)
 *   HOTCELL_CH_DOUBLE_GUEST=qemu|none  run the guest in QEMU (default), or fake it: at vm.boot
 *                                   connect to <socket>_1024 and write a line; serve
 *                                   "CONNECT 1025" on the vsock socket
 *   HOTCELL_CH_DOUBLE_DROP_FS=TAG   accept that fs entry but never give it to the guest
 *   HOTCELL_CH_DOUBLE_VERSION=41.0  HOTCELL_CH_DOUBLE_ERRORS=json|text
 *   HOTCELL_CH_DOUBLE_QEMU, HOTCELL_VHOST_DEVICE_VSOCK: the programs to run the guest with
 */
#include <fcntl.h>
#include <net/if.h>
#include <jansson.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/buf.h"
#include "core/child.h"
#include "core/clock.h"
#include "core/util.h"
#include "vmm-double.h"

#define MAX_BODY (64 * 1024)
#define MAX_HEADERS 8192
#define API "/api/v1/"
#define VHU_SOCK "chd-vsock.vhu" /* relative to the working directory, as the driver's files */
#define QMP_SOCK "chd-qmp.sock"

enum state { NO_VM, CREATED, RUNNING, PAUSED, SHUTDOWN };

static const char *state_name[] = {"None", "Created", "Running", "Paused", "Shutdown"};

static struct {
	const char *version;
	enum state state;
	bool guest_qemu;
	bool text_errors;
	json_t *cfg; /* the VmConfig */
	bool restored;
	int events_fd;
	double t0;
	/* scenario */
	FILE *log;
	const char *exit_on;
	/* guest */
	struct hc_child qemu, vsockd;
	int fake_vsock_fd;
	char fake_vsock_path[256];
	/* The NICs given as fds (vm.add-net, vm.restore's net_fds): the config says fds [-1],
	 * as Cloud Hypervisor serializes them; the real ones are kept here by id. */
	struct {
		char id[64];
		int fd;
	} nics[8];
	size_t n_nics;
} D = {.events_fd = -1, .fake_vsock_fd = -1};

/* ---- events (event_monitor/src/lib.rs: pretty JSON, then a blank line) ------------------- */

static void event(const char *source, const char *ev)
{
	double t = (hc_clock_ms() - D.t0) / 1000.0;
	json_t *j;
	char *s;

	if (D.events_fd < 0)
		return;
	j = json_pack("{s:{s:I, s:I}, s:s, s:s, s:n}", "timestamp", "secs", (json_int_t)t, "nanos",
		      (json_int_t)((t - (double)(json_int_t)t) * 1e9), "source", source, "event",
		      ev, "properties");
	s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s && (write(D.events_fd, s, strlen(s)) < 0 || write(D.events_fd, "\n\n", 2) < 0))
		fprintf(stderr, "double: event monitor: %s\n", strerror(errno));
	free(s);
	json_decref(j);
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

struct reply {
	int status;
	char *body;
};

/* An error: the chain of messages, top to root cause (vmm/src/api/http/mod.rs error_response):
 * a JSON array of strings, or (before v40) plain text. Arguments: status, then the chain's
 * strings, NULL-terminated. */
static struct reply error_chain(int status, ...)
{
	struct reply r = {.status = status};
	json_t *arr = json_array();
	struct hc_buf text = HC_BUF_INIT(0);
	const char *s;
	va_list ap;

	va_start(ap, status);
	while ((s = va_arg(ap, const char *))) {
		json_array_append_new(arr, json_string(s));
		if (hc_buf_printf(&text, "%s%s", text.len ? ": " : "", s) < 0)
			break;
	}
	va_end(ap);
	if (D.text_errors) {
		r.body = hc_buf_append(&text, "", 1) == 0 ? hc_buf_steal(&text, NULL) : NULL;
	} else {
		r.body = json_dumps(arr, JSON_COMPACT);
	}
	hc_buf_free(&text);
	json_decref(arr);
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

static void send_reply(int fd, const struct reply *r)
{
	dbl_http_reply(fd, "Cloud Hypervisor API", r->status, r->body);
}

/* ---- schema (serde with deny_unknown_fields, as Cloud Hypervisor's config structs) ------- */

enum ftype { F_STR, F_INT, F_BOOL, F_OBJ, F_ARR };

struct field {
	const char *name;
	enum ftype type;
	bool required;
	const struct schema *sub; /* F_OBJ: the object's schema; F_ARR: its items' (or NULL) */
};

struct schema {
	const char *name;
	const struct field *f;
	size_t n;
};

#define SCHEMA(nm, fields)                                                                         \
	{                                                                                          \
		nm, fields, HC_ARRAY_SIZE(fields)                                                  \
	}

static const struct field payload_f[] = {
	{"firmware", F_STR, false, NULL}, {"kernel", F_STR, false, NULL},
	{"cmdline", F_STR, false, NULL},  {"initramfs", F_STR, false, NULL},
	{"igvm", F_STR, false, NULL},	  {"host_data", F_STR, false, NULL},
};
static const struct schema payload_s = SCHEMA("PayloadConfig", payload_f);
static const struct field cpus_f[] = {
	{"boot_vcpus", F_INT, true, NULL},	 {"max_vcpus", F_INT, true, NULL},
	{"topology", F_OBJ, false, NULL},	 {"kvm_hyperv", F_BOOL, false, NULL},
	{"max_phys_bits", F_INT, false, NULL},	 {"nested", F_BOOL, false, NULL},
	{"affinity", F_ARR, false, NULL},	 {"features", F_OBJ, false, NULL},
	{"core_scheduling", F_STR, false, NULL},
};
static const struct schema cpus_s = SCHEMA("CpusConfig", cpus_f);
static const struct field memory_f[] = {
	{"size", F_INT, true, NULL},
	{"hotplug_size", F_INT, false, NULL},
	{"hotplugged_size", F_INT, false, NULL},
	{"mergeable", F_BOOL, false, NULL},
	{"hotplug_method", F_STR, false, NULL},
	{"shared", F_BOOL, false, NULL},
	{"hugepages", F_BOOL, false, NULL},
	{"hugepage_size", F_INT, false, NULL},
	{"prefault", F_BOOL, false, NULL},
	{"reserve", F_BOOL, false, NULL},
	{"thp", F_BOOL, false, NULL},
	{"zones", F_ARR, false, NULL},
};
static const struct schema memory_s = SCHEMA("MemoryConfig", memory_f);
static const struct field fs_f[] = {
	{"tag", F_STR, true, NULL},	     {"socket", F_STR, true, NULL},
	{"num_queues", F_INT, true, NULL},   {"queue_size", F_INT, true, NULL},
	{"pci_segment", F_INT, false, NULL}, {"pci_device_id", F_INT, false, NULL},
	{"id", F_STR, false, NULL},
};
static const struct schema fs_s = SCHEMA("FsConfig", fs_f);
static const struct field disk_f[] = {
	{"path", F_STR, false, NULL},
	{"readonly", F_BOOL, false, NULL},
	{"direct", F_BOOL, false, NULL},
	{"iommu", F_BOOL, false, NULL},
	{"num_queues", F_INT, false, NULL},
	{"queue_size", F_INT, false, NULL},
	{"vhost_user", F_BOOL, false, NULL},
	{"vhost_socket", F_STR, false, NULL},
	{"rate_limiter_config", F_OBJ, false, NULL},
	{"pci_segment", F_INT, false, NULL},
	{"pci_device_id", F_INT, false, NULL},
	{"id", F_STR, false, NULL},
	{"serial", F_STR, false, NULL},
	{"rate_limit_group", F_STR, false, NULL},
	{"queue_affinity", F_ARR, false, NULL},
	{"backing_files", F_BOOL, false, NULL},
	{"sparse", F_BOOL, false, NULL},
	{"image_type", F_STR, false, NULL},
	{"lock_granularity", F_STR, false, NULL},
};
static const struct schema disk_s = SCHEMA("DiskConfig", disk_f);
/* Cloud Hypervisor's OpenAPI NetConfig. */
static const struct field net_f[] = {
	{"tap", F_STR, false, NULL},
	{"ip", F_STR, false, NULL},
	{"mask", F_STR, false, NULL},
	{"mac", F_STR, false, NULL},
	{"host_mac", F_STR, false, NULL},
	{"mtu", F_INT, false, NULL},
	{"iommu", F_BOOL, false, NULL},
	{"num_queues", F_INT, false, NULL},
	{"queue_size", F_INT, false, NULL},
	{"vhost_user", F_BOOL, false, NULL},
	{"vhost_socket", F_STR, false, NULL},
	{"vhost_mode", F_STR, false, NULL},
	{"id", F_STR, false, NULL},
	{"fds", F_ARR, false, NULL},
	{"rate_limiter_config", F_OBJ, false, NULL},
	{"pci_segment", F_INT, false, NULL},
	{"offload_tso", F_BOOL, false, NULL},
	{"offload_ufo", F_BOOL, false, NULL},
	{"offload_csum", F_BOOL, false, NULL},
};
static const struct schema net_s = SCHEMA("NetConfig", net_f);
static const struct field device_f[] = {
	{"path", F_STR, false, NULL},
	{"iommu", F_BOOL, false, NULL},
	{"pci_segment", F_INT, false, NULL},
	{"pci_device_id", F_INT, false, NULL},
	{"id", F_STR, false, NULL},
	{"x_nv_gpudirect_clique", F_INT, false, NULL},
	{"x_exclude_mmap_bars", F_ARR, false, NULL},
};
static const struct schema device_s = SCHEMA("DeviceConfig", device_f);
static const struct field console_f[] = {
	{"file", F_STR, false, NULL},
	{"socket", F_STR, false, NULL},
	{"mode", F_STR, true, NULL},
	{"iommu", F_BOOL, false, NULL},
	{"id", F_STR, false, NULL},
	{"pci_segment", F_INT, false, NULL},
	{"pci_device_id", F_INT, false, NULL},
};
static const struct schema console_s = SCHEMA("ConsoleConfig", console_f);
static const struct field serial_f[] = {
	{"file", F_STR, false, NULL},
	{"socket", F_STR, false, NULL},
	{"mode", F_STR, true, NULL},
};
static const struct schema serial_s = SCHEMA("SerialConfig", serial_f);
static const struct field vsock_f[] = {
	{"cid", F_INT, true, NULL},
	{"socket", F_STR, true, NULL},
	{"iommu", F_BOOL, false, NULL},
	{"pci_segment", F_INT, false, NULL},
	{"pci_device_id", F_INT, false, NULL},
	{"id", F_STR, false, NULL},
};
static const struct schema vsock_s = SCHEMA("VsockConfig", vsock_f);
static const struct field vm_f[] = {
	{"cpus", F_OBJ, false, &cpus_s},
	{"memory", F_OBJ, false, &memory_s},
	{"payload", F_OBJ, true, &payload_s},
	{"rate_limit_groups", F_ARR, false, NULL},
	{"disks", F_ARR, false, &disk_s},
	{"net", F_ARR, false, &net_s},
	{"rng", F_OBJ, false, NULL},
	{"balloon", F_OBJ, false, NULL},
	{"fs", F_ARR, false, &fs_s},
	{"generic_vhost_user", F_ARR, false, NULL},
	{"pmem", F_ARR, false, NULL},
	{"serial", F_OBJ, false, &serial_s},
	{"console", F_OBJ, false, &console_s},
	{"debug_console", F_OBJ, false, NULL},
	{"devices", F_ARR, false, &device_s},
	{"user_devices", F_ARR, false, NULL},
	{"vdpa", F_ARR, false, NULL},
	{"vsock", F_OBJ, false, &vsock_s},
	{"numa", F_ARR, false, NULL},
	{"iommu", F_BOOL, false, NULL},
	{"watchdog", F_BOOL, false, NULL},
	{"rtc", F_OBJ, false, NULL},
	{"pvpanic", F_BOOL, false, NULL},
	{"pci_segments", F_ARR, false, NULL},
	{"platform", F_OBJ, false, NULL},
	{"tpm", F_OBJ, false, NULL},
	{"landlock_enable", F_BOOL, false, NULL},
	{"landlock_rules", F_ARR, false, NULL},
};
static const struct schema vm_s = SCHEMA("VmConfig", vm_f);
static const struct field snapshot_f[] = {{"destination_url", F_STR, false, NULL}};
static const struct schema snapshot_s = SCHEMA("VmSnapshotConfig", snapshot_f);
/* RestoredNetConfig: fds in the body are ignored (replaced by the passed ones). */
static const struct field restored_net_f[] = {
	{"id", F_STR, true, NULL},
	{"num_fds", F_INT, false, NULL},
	{"fds", F_ARR, false, NULL},
};
static const struct schema restored_net_s = SCHEMA("RestoredNetConfig", restored_net_f);
static const struct field restore_f[] = {
	{"source_url", F_STR, true, NULL},	     {"prefault", F_BOOL, false, NULL},
	{"memory_restore_mode", F_STR, false, NULL}, {"resume", F_BOOL, false, NULL},
	{"zone_updates", F_ARR, false, NULL},	     {"net_fds", F_ARR, false, &restored_net_s},
};
static const struct schema restore_s = SCHEMA("RestoreConfig", restore_f);

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

/* 0, or the serde message in msg. */
static int check_schema(json_t *j, const struct schema *s, char *msg, size_t n)
{
	const char *key;
	json_t *v;

	if (!json_is_object(j)) {
		snprintf(msg, n, "invalid type: expected struct %s", s->name);
		return -1;
	}
	json_object_foreach(j, key, v)
	{
		size_t i, o = 0;
		char expected[1024] = "";

		for (i = 0; i < s->n; i++)
			if (!strcmp(s->f[i].name, key))
				break;
		if (i == s->n) {
			for (size_t k = 0; k < s->n && o < sizeof(expected); k++)
				o += (size_t)snprintf(expected + o, sizeof(expected) - o, "%s`%s`",
						      k ? ", " : "", s->f[k].name);
			snprintf(msg, n, "unknown field `%s`, expected one of %s", key, expected);
			return -1;
		}
		if (!type_ok(v, s->f[i].type)) {
			snprintf(msg, n, "invalid type for `%s` in %s", key, s->name);
			return -1;
		}
		if (s->f[i].sub && s->f[i].type == F_OBJ &&
		    check_schema(v, s->f[i].sub, msg, n) < 0)
			return -1;
		if (s->f[i].sub && s->f[i].type == F_ARR) {
			size_t k;
			json_t *item;

			json_array_foreach(v, k, item) if (check_schema(item, s->f[i].sub, msg, n) <
							   0) return -1;
		}
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->f[i].required && !json_object_get(j, s->f[i].name)) {
			snprintf(msg, n, "missing field `%s`", s->f[i].name);
			return -1;
		}
	return 0;
}

static const char *str(json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static bool flag(json_t *j, const char *k)
{
	return json_is_true(json_object_get(j, k));
}

static json_int_t num(json_t *j, const char *k)
{
	return json_integer_value(json_object_get(j, k));
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

/* ---- the guest --------------------------------------------------------------------------------
 */

/* argv strings owned by a small arena, freed at exit. */
static char *fmt(const char *f, ...) _printf_(1, 2);
static char *fmt(const char *f, ...)
{
	char *s = NULL;
	va_list ap;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		dbl_die("out of memory");
	va_end(ap);
	return s;
}

static struct reply boot_error(const char *what)
{
	return error_chain(500, "Error from API", "The VM could not boot", what, NULL);
}

static int nic_fd(const char *id)
{
	for (size_t i = 0; id && i < D.n_nics; i++)
		if (!strcmp(D.nics[i].id, id))
			return D.nics[i].fd;
	return -1;
}

/* The TAP's name when fd is an fd attached to a TAP, else NULL (static buffer). */
static const char *tap_of_fd(int fd)
{
	static struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) < 0 || !(ifr.ifr_flags & IFF_TAP))
		return NULL;
	return ifr.ifr_name;
}

static void nic_keep(const char *id, int fd)
{
	if (D.n_nics < HC_ARRAY_SIZE(D.nics)) {
		snprintf(D.nics[D.n_nics].id, sizeof(D.nics[0].id), "%s", id);
		D.nics[D.n_nics++].fd = fd;
	} else {
		close(fd);
	}
}

static int start_qemu(struct reply *rep)
{
	struct hc_error err = {0};
	json_t *payload = json_object_get(D.cfg, "payload"),
	       *mem = json_object_get(D.cfg, "memory"), *cpus = json_object_get(D.cfg, "cpus"),
	       *vsock = json_object_get(D.cfg, "vsock"), *serial = json_object_get(D.cfg, "serial"),
	       *arr, *it;
	json_int_t mib = mem ? num(mem, "size") >> 20 : 512,
		   ncpu = cpus ? num(cpus, "boot_vcpus") : 1;
	const char *argv[96];
	struct dbl_qemu_args qa;
	size_t n = 0, i;

	if (json_array_size(json_object_get(D.cfg, "devices"))) {
		*rep = boot_error("double: VFIO passthrough cannot be emulated under QEMU TCG");
		return -1;
	}
	if (vsock && dbl_vsockd_start(&D.vsockd, (long long)num(vsock, "cid"), VHU_SOCK,
				      str(vsock, "socket"), &err) < 0) {
		*rep = boot_error(err.message);
		return -1;
	}
	/* shared: true is what vhost-user needs; the double always shares, it checked above. */
	n = dbl_qemu_microvm_argv(argv, n,
				  dbl_envor("HOTCELL_CH_DOUBLE_QEMU", "qemu-system-x86_64"),
				  (long long)(ncpu ? ncpu : 1), (long long)mib, &qa);
	argv[n++] = "-no-reboot";
	/* Cloud Hypervisor has an i8042 whose reset (reboot=k) reboots the VM; microvm has none
	 * unless asked, and reboot=k would spin for a long time before falling back. */
	argv[n++] = "-device";
	argv[n++] = "i8042";
	argv[n++] = "-qmp";
	argv[n++] = fmt("unix:%s,server=on,wait=off", QMP_SOCK);
	if (serial && hc_streq(str(serial, "mode"), "File")) {
		/* Cloud Hypervisor creates (truncates) the serial file. */
		argv[n++] = "-chardev";
		argv[n++] = fmt("file,id=con,path=%s", str(serial, "file"));
		argv[n++] = "-serial";
		argv[n++] = "chardev:con";
	}
	argv[n++] = "-kernel";
	argv[n++] = str(payload, "kernel");
	if (str(payload, "initramfs")) {
		argv[n++] = "-initrd";
		argv[n++] = str(payload, "initramfs");
	}
	if (str(payload, "cmdline")) {
		argv[n++] = "-append";
		argv[n++] = str(payload, "cmdline");
	}
	arr = json_object_get(D.cfg, "disks");
	json_array_foreach(arr, i, it)
	{
		if (n + 8 > HC_ARRAY_SIZE(argv))
			break;
		argv[n++] = "-drive";
		argv[n++] = fmt("id=disk%zu,file=%s,format=raw,if=none,readonly=%s", i,
				str(it, "path"), flag(it, "readonly") ? "on" : "off");
		argv[n++] = "-device";
		argv[n++] = fmt("virtio-blk-device,drive=disk%zu", i);
	}
	arr = json_object_get(D.cfg, "fs");
	json_array_foreach(arr, i, it)
	{
		if (n + 8 > HC_ARRAY_SIZE(argv))
			break;
		if (hc_streq(getenv("HOTCELL_CH_DOUBLE_DROP_FS"), str(it, "tag")))
			continue; /* the scenario: a device the guest never sees */
		argv[n++] = "-chardev";
		argv[n++] = fmt("socket,id=fs%zu,path=%s", i, str(it, "socket"));
		argv[n++] = "-device";
		argv[n++] = fmt("vhost-user-fs-device,chardev=fs%zu,tag=%s,queue-size=%lld", i,
				str(it, "tag"), (long long)num(it, "queue_size"));
	}
	struct hc_fd_map fds[8];
	size_t n_fds = 0;
	json_array_foreach(json_object_get(D.cfg, "net"), i, it)
	{
		int nic = nic_fd(str(it, "id"));

		argv[n++] = "-netdev";
		if (json_object_get(it, "fds") && nic >= 0 && n_fds < HC_ARRAY_SIZE(fds)) {
			/* The TAP it was given, as that fd. */
			fds[n_fds] = (struct hc_fd_map){nic, 100 + (int)n_fds};
			argv[n++] = fmt("tap,id=net%zu,fd=%d", i, 100 + (int)n_fds++);
		} else {
			/* The same TAP, opened by name, as Cloud Hypervisor's virtio-net does. */
			argv[n++] = fmt("tap,id=net%zu,ifname=%s,script=no,downscript=no", i,
					str(it, "tap"));
		}
		argv[n++] = "-device";
		argv[n++] =
			fmt("virtio-net-device,netdev=net%zu%s%s", i, str(it, "mac") ? ",mac=" : "",
			    str(it, "mac") ? str(it, "mac") : "");
	}
	if (vsock) {
		argv[n++] = "-chardev";
		argv[n++] = "socket,id=vs,path=" VHU_SOCK;
		argv[n++] = "-device";
		argv[n++] = "vhost-user-vsock-device,chardev=vs";
	}
	argv[n] = NULL;
	struct hc_child_opts o = {.argv = argv,
				  .stdin_fd = -1,
				  .stdout_fd = 2,
				  .stderr_fd = 2,
				  .fds = fds,
				  .n_fds = n_fds};
	if (hc_child_spawn(&D.qemu, &o, &err) < 0) {
		*rep = boot_error(err.message);
		return -1;
	}
	return 0;
}

static int qmp_command(const char *cmd)
{
	if (!D.qemu.pid || D.qemu.reaped)
		return 0;
	return dbl_qmp_command(QMP_SOCK, cmd);
}

/* When the double plays the guest: bind the vsock socket and serve host-initiated
 * connections; connect out to <socket>_1024 as hotcell-init does. */
static int fake_vsock_bind(void)
{
	json_t *vsock = json_object_get(D.cfg, "vsock");

	if (!vsock)
		return 0;
	D.fake_vsock_fd = dbl_fake_vsock_bind(str(vsock, "socket"));
	if (D.fake_vsock_fd < 0)
		return D.fake_vsock_fd;
	snprintf(D.fake_vsock_path, sizeof(D.fake_vsock_path), "%s", str(vsock, "socket"));
	return 0;
}

static void fake_guest_connect(const char *what)
{
	json_t *vsock = json_object_get(D.cfg, "vsock");

	if (vsock)
		dbl_fake_guest_connect(str(vsock, "socket"), what);
}

static void serial_write(const char *line)
{
	json_t *serial = json_object_get(D.cfg, "serial");
	FILE *f;

	if (!serial || !hc_streq(str(serial, "mode"), "File"))
		return;
	f = fopen(str(serial, "file"), "ae");
	if (f) {
		fprintf(f, "%s\n", line);
		fclose(f);
	}
}

static void stop_guest(void)
{
	hc_child_stop(&D.qemu, 0);
	hc_child_stop(&D.vsockd, 0);
	unlink(VHU_SOCK);
	unlink(QMP_SOCK);
}

/* ---- endpoints ------------------------------------------------------------------------------ */

static struct reply not_created(const char *what)
{
	return error_chain(404, "Error from API", what, "VM is not created", NULL);
}

static struct reply vm_create(json_t *j)
{
	char msg[1200];
	json_t *payload, *mem, *cpus, *vsock, *arr, *it;
	size_t i;

	if (check_schema(j, &vm_s, msg, sizeof(msg)) < 0)
		return error_chain(400, "Failed to deserialize JSON", msg, NULL);
	if (D.state != NO_VM)
		return error_chain(500, "Error from API", "The VM could not be created",
				   "VM is already created", NULL);
	/* VmConfig::validate() */
	payload = json_object_get(j, "payload");
	mem = json_object_get(j, "memory");
	cpus = json_object_get(j, "cpus");
	vsock = json_object_get(j, "vsock");
#define INVALID(m)                                                                                 \
	error_chain(500, "Error from API", "The VM could not be created",                          \
		    "Error validating configuration", m, NULL)
	if (!str(payload, "kernel") && !str(payload, "firmware") && !str(payload, "igvm"))
		return INVALID("No kernel or firmware specified");
	if (cpus &&
	    (num(cpus, "boot_vcpus") < 1 || num(cpus, "boot_vcpus") > num(cpus, "max_vcpus")))
		return INVALID("Max CPUs lower than boot CPUs");
	if (mem && num(mem, "size") < (1 << 20))
		return INVALID("Memory size is too small");
	if (vsock && num(vsock, "cid") < 3)
		return INVALID("Invalid vsock cid");
	if (json_array_size(json_object_get(j, "fs")) && !(mem && flag(mem, "shared")))
		return INVALID("Using vhost-user requires using shared memory or huge pages");
	json_array_foreach(
		json_object_get(j, "fs"), i,
		it) if (num(it, "num_queues") < 1 ||
			num(it, "queue_size") <
				1) return INVALID("Invalid virtio-fs queue configuration");
	arr = json_object_get(j, "devices");
	json_array_foreach(arr, i, it) if (!str(it, "path")) return INVALID("Device path missing");
	/* The double cannot make a TAP as Cloud Hypervisor would: it opens an existing one. */
	json_array_foreach(
		json_object_get(j, "net"), i,
		it) if (str(it, "tap") &&
			!if_nametoindex(str(it, "tap"))) return INVALID("double: no such TAP");
	json_decref(D.cfg);
	D.cfg = json_incref(j);
	D.state = CREATED;
#undef INVALID
	return ok204();
}

/* vm.add-net (NetConfig, fds via SCM_RIGHTS): before vm.boot it only adds the NIC to the
 * configuration, as Cloud Hypervisor's vm_add_net does without a running VM; the double does
 * not emulate a hotplug. */
static struct reply vm_add_net(json_t *j, struct dbl_client *c)
{
	char msg[1200];
	json_t *net, *it, *fds;
	const char *id = str(j, "id");
	json_int_t queues = json_object_get(j, "num_queues") ? num(j, "num_queues") : 2;
	size_t i;

	if (check_schema(j, &net_s, msg, sizeof(msg)) < 0)
		return error_chain(400, "Failed to deserialize JSON", msg, NULL);
	if (D.state == NO_VM)
		return not_created("The network device could not be added to the VM");
	if (D.state != CREATED)
		return error_chain(500, "Error from API",
				   "The network device could not be added to the VM",
				   "double: hotplug is not emulated", NULL);
	if (!c->n_fds && !str(j, "tap"))
		return error_chain(500, "Error from API",
				   "The network device could not be added to the VM",
				   "double: no TAP (give one by name or as fds)", NULL);
	if (c->n_fds && (size_t)queues != c->n_fds * 2)
		return error_chain(500, "Error from API",
				   "The network device could not be added to the VM",
				   "Error validating configuration",
				   "Number of queues to virtio_net does not match the number of "
				   "input FDs",
				   NULL);
	if (!id)
		return error_chain(500, "Error from API", "double: give the NIC an id", NULL);
	json_array_foreach(json_object_get(D.cfg, "net"), i, it) if (
		hc_streq(str(it, "id"),
			 id)) return error_chain(500, "Error from API",
						 "The network device could not be added to the VM",
						 "Error validating configuration",
						 fmt("Identifier %s is not unique", id), NULL);
	if (c->n_fds > 1)
		return error_chain(500, "Error from API", "double: one fd per NIC only", NULL);
	if (c->n_fds && !tap_of_fd(c->fds[0]))
		return error_chain(500, "Error from API",
				   "The network device could not be added to the VM",
				   "Cannot create virtio-net device: the fd is not a TAP", NULL);
	if (str(j, "tap") && !c->n_fds && !if_nametoindex(str(j, "tap")))
		return error_chain(500, "Error from API", "double: no such TAP", NULL);
	net = json_deep_copy(j);
	/* Cloud Hypervisor ignores fds in the body; it serializes the passed ones as -1. */
	fds = json_array();
	for (i = 0; i < c->n_fds; i++)
		json_array_append_new(fds, json_integer(-1));
	json_object_set_new(net, "fds", fds);
	if (!json_object_get(D.cfg, "net"))
		json_object_set_new(D.cfg, "net", json_array());
	json_array_append_new(json_object_get(D.cfg, "net"), net);
	if (c->n_fds) {
		if (D.log)
			fprintf(D.log, "EVENT add-net %s on %s\n", id, tap_of_fd(c->fds[0]));
		nic_keep(id, c->fds[0]);
		c->fds[0] = -1;
	} else {
		json_object_del(net, "fds");
	}
	return ok204();
}

static struct reply vm_boot(void)
{
	json_t *payload, *arr, *it;
	const char *k, *i;
	struct reply r;
	size_t x;

	if (D.state == NO_VM)
		return not_created("The VM could not boot");
	if (D.state != CREATED)
		return error_chain(500, "Error from API", "The VM could not boot",
				   "VM is already booted", NULL);
	payload = json_object_get(D.cfg, "payload");
	k = str(payload, "kernel");
	i = str(payload, "initramfs");
	if (k && (access(k, R_OK) < 0 || !is_elf(k)))
		return boot_error("Cannot load the kernel into memory (not an ELF vmlinux?)");
	if (i && access(i, R_OK) < 0)
		return boot_error("Cannot load the initramfs into memory");
	arr = json_object_get(D.cfg, "disks");
	json_array_foreach(arr, x, it)
	{
		int fd = open(str(it, "path") ? str(it, "path") : "",
			      (flag(it, "readonly") ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0)
			return boot_error("Error manipulating the disk image file");
		close(fd);
	}
	arr = json_object_get(D.cfg, "devices");
	json_array_foreach(arr, x, it)
	{
		struct stat st;
		if (stat(str(it, "path"), &st) < 0)
			return boot_error("Failed to create VFIO device: no such sysfs device");
	}
	arr = json_object_get(D.cfg, "fs");
	json_array_foreach(arr, x, it)
	{
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		/* Cloud Hypervisor connects to the vhost-user backend at boot. */
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", str(it, "socket"));
		bool ok = access(sa.sun_path, F_OK) == 0;
		close(fd);
		if (!ok)
			return boot_error("Cannot create virtio-fs device: Failed connecting the "
					  "backend");
	}
	event("vm", "booting");
	if (D.guest_qemu) {
		if (start_qemu(&r) < 0) {
			stop_guest();
			return r;
		}
	} else {
		if (fake_vsock_bind() < 0)
			return boot_error("Cannot create virtio-vsock device: Address in use");
		serial_write("double: fake guest booted");
		fake_guest_connect("HOTCELL-DOUBLE-GUEST hello");
	}
	D.state = RUNNING;
	event("vm", "booted");
	return ok204();
}

static struct reply vm_pause(void)
{
	if (D.state == NO_VM)
		return not_created("The VM could not be paused");
	if (D.state != RUNNING)
		return error_chain(500, "Error from API", "The VM could not be paused",
				   fmt("Invalid transition: %s to Paused", state_name[D.state]),
				   NULL);
	event("vm", "pausing");
	if (qmp_command("stop") < 0)
		return error_chain(500, "Error from API", "double: QMP stop failed", NULL);
	D.state = PAUSED;
	event("vm", "paused");
	return ok204();
}

static struct reply vm_resume(void)
{
	if (D.state == NO_VM)
		return not_created("The VM could not be resumed");
	if (D.state != PAUSED)
		return error_chain(500, "Error from API", "The VM could not be resumed",
				   fmt("Invalid transition: %s to Running", state_name[D.state]),
				   NULL);
	event("vm", "resuming");
	if (qmp_command("cont") < 0)
		return error_chain(500, "Error from API", "double: QMP cont failed", NULL);
	D.state = RUNNING;
	event("vm", "resumed");
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

/* "file:///dir" -> "/dir" (vmm/src/migration.rs url_to_path: only file:// URLs). */
static const char *url_path(const char *url)
{
	return url && hc_startswith(url, "file://") ? url + 7 : NULL;
}

static struct reply vm_snapshot(json_t *j)
{
	char msg[1200], p[4200];
	const char *dir;
	struct stat st;
	json_t *mem;

	if (check_schema(j, &snapshot_s, msg, sizeof(msg)) < 0)
		return error_chain(400, "Failed to deserialize JSON", msg, NULL);
	if (D.state == NO_VM)
		return not_created("The VM could not be snapshotted");
	if (D.state != PAUSED)
		return error_chain(500, "Error from API", "The VM could not be snapshotted",
				   "Snapshot error: the VM is not paused", NULL);
	dir = url_path(str(j, "destination_url"));
	if (!dir)
		return error_chain(500, "Error from API", "The VM could not be snapshotted",
				   "Invalid snapshot destination URL (only file:// is supported)",
				   NULL);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return error_chain(500, "Error from API", "The VM could not be snapshotted",
				   "Snapshot destination is not an existing directory", NULL);
	event("vm", "snapshotting");
	char *dump = json_dumps(D.cfg, JSON_COMPACT);
	snprintf(p, sizeof(p), "%s/config.json", dir);
	int e = write_file(p, dump, 0);
	free(dump);
	snprintf(p, sizeof(p), "%s/state.json", dir);
	if (e == 0)
		e = write_file(p, "{\"double\":\"cloud-hypervisor-double\"}", 0);
	mem = json_object_get(D.cfg, "memory");
	snprintf(p, sizeof(p), "%s/memory-ranges", dir);
	if (e == 0)
		e = write_file(p, NULL, mem ? (off_t)num(mem, "size") : (off_t)512 << 20);
	if (e < 0)
		return error_chain(500, "Error from API", "The VM could not be snapshotted",
				   strerror(-e), NULL);
	event("vm", "snapshotted");
	return ok204();
}

static struct reply vm_restore(json_t *j, struct dbl_client *c)
{
	char msg[1200], p[4200];
	const char *dir;
	json_t *cfg;

	if (check_schema(j, &restore_s, msg, sizeof(msg)) < 0)
		return error_chain(400, "Failed to deserialize JSON", msg, NULL);
	if (D.state != NO_VM)
		return error_chain(500, "Error from API", "The VM could not be restored",
				   "VM is already created", NULL);
	dir = url_path(str(j, "source_url"));
	if (!dir)
		return error_chain(500, "Error from API", "The VM could not be restored",
				   "Invalid snapshot source URL (only file:// is supported)", NULL);
	snprintf(p, sizeof(p), "%s/config.json", dir);
	cfg = json_load_file(p, 0, NULL);
	snprintf(p, sizeof(p), "%s/memory-ranges", dir);
	if (!json_is_object(cfg) || access(p, R_OK) < 0) {
		json_decref(cfg);
		return error_chain(500, "Error from API", "The VM could not be restored",
				   "Cannot read the snapshot's configuration or memory", NULL);
	}
	/* RestoreConfig::validate and the HTTP handler's attach_fds_to_cfgs: the passed fds are
	 * exactly what net_fds counts, ids once each; every NIC of the snapshot that came as fds
	 * needs new ones under its id, as many; a NIC opened by name is opened again by it. */
	json_t *rn = json_object_get(j, "net_fds"), *it, *jt;
	size_t i, k, want = 0;
	json_array_foreach(rn, i, it)
	{
		want += (size_t)num(it, "num_fds");
		json_array_foreach(rn, k, jt) if (k < i && hc_streq(str(jt, "id"), str(it, "id")))
		{
			json_decref(cfg);
			return error_chain(500, "Error from API", "The VM could not be restored",
					   fmt("Identifier %s is not unique", str(it, "id")), NULL);
		}
	}
	if (want != c->n_fds) {
		json_decref(cfg);
		return error_chain(
			400, "Error from API", "The VM could not be restored",
			fmt("Number of FDs expected: %zu, but received: %zu", want, c->n_fds),
			NULL);
	}
	size_t next = 0;
	json_array_foreach(json_object_get(cfg, "net"), i, it)
	{
		json_t *nfds = json_object_get(it, "fds"), *match = NULL;

		if (!nfds) {
			if (str(it, "tap") && !if_nametoindex(str(it, "tap"))) {
				struct reply rep = error_chain(
					500, "Error from API", "The VM could not be restored",
					fmt("Open tap device failed: %s: No such device",
					    str(it, "tap")),
					NULL);
				json_decref(cfg);
				return rep;
			}
			continue;
		}
		json_array_foreach(rn, k, jt) if (hc_streq(str(jt, "id"), str(it, "id"))) match =
			jt;
		if (!match) {
			struct reply rep =
				error_chain(500, "Error from API", "The VM could not be restored",
					    "Error validating configuration",
					    fmt("Net id %s is associated with FDs and is required",
						str(it, "id")),
					    NULL);
			json_decref(cfg);
			return rep;
		}
		if ((size_t)num(match, "num_fds") != json_array_size(nfds)) {
			struct reply rep =
				error_chain(500, "Error from API", "The VM could not be restored",
					    "Error validating configuration",
					    fmt("Number of Net FDs passed for '%s' during Restore: "
						"%lld. Expected: %zu",
						str(it, "id"), (long long)num(match, "num_fds"),
						json_array_size(nfds)),
					    NULL);
			json_decref(cfg);
			return rep;
		}
	}
	/* The fds in net_fds' order; each must be a TAP. */
	json_array_foreach(rn, i, it)
	{
		for (k = 0; k < (size_t)num(it, "num_fds"); k++, next++) {
			const char *tap = tap_of_fd(c->fds[next]);

			if (!tap) {
				json_decref(cfg);
				return error_chain(
					500, "Error from API", "The VM could not be restored",
					"Cannot create virtio-net device: the fd is not a TAP",
					NULL);
			}
			if (D.log)
				fprintf(D.log, "EVENT restore net %s on %s\n", str(it, "id"), tap);
			nic_keep(str(it, "id"), c->fds[next]);
			c->fds[next] = -1;
		}
	}
	event("vm", "restoring");
	D.cfg = cfg;
	D.restored = true;
	/* A restored VM cannot be run in QEMU from the double's state: the double plays the
	 * guest, its vsock connections reset, as Cloud Hypervisor's are. */
	if (fake_vsock_bind() < 0)
		return error_chain(500, "Error from API", "The VM could not be restored",
				   "Cannot create virtio-vsock device: Address in use", NULL);
	D.state = flag(j, "resume") ? RUNNING : PAUSED;
	event("vm", "restored");
	return ok204();
}

static struct reply vm_shutdown(void)
{
	if (D.state == NO_VM)
		return not_created("The VM could not shut down");
	stop_guest();
	D.state = SHUTDOWN;
	event("vm", "shutdown");
	return ok204();
}

static struct reply vm_info(void)
{
	if (D.state == NO_VM)
		return not_created("The VM information could not be retrieved");
	return ok200(json_pack("{s:O, s:s, s:I}", "config", D.cfg, "state", state_name[D.state],
			       "memory_actual_size",
			       num(json_object_get(D.cfg, "memory"), "size")));
}

static bool body_less(const char *path)
{
	static const char *const actions[] = {
		API "vm.boot",	 API "vm.pause",  API "vm.resume",	 API "vm.shutdown",
		API "vm.reboot", API "vm.delete", API "vm.power-button", API "vmm.shutdown"};

	for (size_t i = 0; i < HC_ARRAY_SIZE(actions); i++)
		if (!strcmp(path, actions[i]))
			return true;
	return false;
}

/* HTTP_ROUTES (vmm/src/api/http/mod.rs): anything else is a 404. */
static bool known_route(const char *path)
{
	static const char *const routes[] = {"vm.add-device",
					     "vm.add-user-device",
					     "vm.add-disk",
					     "vm.add-fs",
					     "vm.add-net",
					     "vm.add-pmem",
					     "vm.add-vdpa",
					     "vm.add-vsock",
					     "vm.boot",
					     "vm.counters",
					     "vm.create",
					     "vm.delete",
					     "vm.info",
					     "vm.pause",
					     "vm.power-button",
					     "vm.reboot",
					     "vm.receive-migration",
					     "vm.remove-device",
					     "vm.resize",
					     "vm.resize-zone",
					     "vm.restore",
					     "vm.resume",
					     "vm.send-migration",
					     "vm.shutdown",
					     "vm.snapshot",
					     "vm.nmi",
					     "vmm.ping",
					     "vmm.shutdown"};

	if (!hc_startswith(path, API))
		return false;
	for (size_t i = 0; i < HC_ARRAY_SIZE(routes); i++)
		if (!strcmp(path + strlen(API), routes[i]))
			return true;
	return false;
}

static struct reply route(struct dbl_client *c, const char *method, const char *path,
			  const char *body, bool *exit_after)
{
	_cleanup_(json_decrefp) json_t *j = NULL;
	json_error_t jerr;

	if (!strcmp(path, API "vmm.ping")) {
		if (strcmp(method, "GET"))
			return error_chain(400, "Bad Request", NULL);
		return ok200(json_pack("{s:s, s:s, s:I, s:[]}", "build_version",
				       fmt("v%s-double", D.version), "version", D.version, "pid",
				       (json_int_t)getpid(), "features"));
	}
	if (!strcmp(path, API "vm.info")) {
		if (strcmp(method, "GET"))
			return error_chain(400, "Bad Request", NULL);
		return vm_info();
	}
	if (!known_route(path))
		return error_chain(404, "Not Found", NULL);
	if (strcmp(method, "PUT"))
		return error_chain(400, "Bad Request", NULL);
	if (body_less(path)) {
		/* vm_action_put_handler!: a body here is a Bad Request. */
		if (*body)
			return error_chain(400, "Bad Request", NULL);
		if (!strcmp(path, API "vm.boot"))
			return vm_boot();
		if (!strcmp(path, API "vm.pause"))
			return vm_pause();
		if (!strcmp(path, API "vm.resume"))
			return vm_resume();
		if (!strcmp(path, API "vm.shutdown"))
			return vm_shutdown();
		if (!strcmp(path, API "vm.delete")) {
			stop_guest();
			json_decref(D.cfg);
			D.cfg = NULL;
			D.state = NO_VM;
			return ok204();
		}
		if (!strcmp(path, API "vmm.shutdown")) {
			*exit_after = true;
			return ok204();
		}
		return error_chain(500, "Error from API", "double: action not implemented", NULL);
	}
	if (!*body)
		return error_chain(400, "Bad Request", NULL);
	j = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return error_chain(
			400, "Failed to deserialize JSON",
			fmt("%s at line %d column %d", jerr.text, jerr.line, jerr.column), NULL);
	if (!strcmp(path, API "vm.create"))
		return vm_create(j);
	if (!strcmp(path, API "vm.snapshot"))
		return vm_snapshot(j);
	if (!strcmp(path, API "vm.restore"))
		return vm_restore(j, c);
	if (!strcmp(path, API "vm.add-net"))
		return vm_add_net(j, c);
	return error_chain(404, "Not Found", NULL);
}

/* ---- scenario ------------------------------------------------------------------------------- */

static bool canned_fault(const char *req, struct reply *r)
{
	char msg[512];
	int status;

	if (!dbl_canned_fault("HOTCELL_CH_DOUBLE_FAULT", req, &status, msg, sizeof(msg)))
		return false;
	*r = error_chain(status ? status : 500, "Error from API", msg, NULL);
	return true;
}

static void cleanup(void);

static void handle(struct dbl_client *c, const char *method, const char *path, const char *body)
{
	char req[300];
	struct reply r;
	bool exit_after = false;

	snprintf(req, sizeof(req), "%s %s", method, path);
	if (D.exit_on && !strcmp(D.exit_on, req)) {
		if (D.log)
			fprintf(D.log, "%s EXIT %s\n", req, *body ? body : "-");
		fprintf(stderr, "double: exiting on %s, as the scenario says\n", req);
		exit(1);
	}
	if (!canned_fault(req, &r))
		r = route(c, method, path, body, &exit_after);
	if (D.log) {
		fprintf(D.log, "%s %d %s\n", req, r.status, *body ? body : "-");
		fflush(D.log);
	}
	send_reply(c->fd, &r);
	free(r.body);
	if (exit_after) {
		event("vmm", "shutdown");
		exit(0);
	}
}

static void bad_request(struct dbl_client *c, int status, size_t body_len)
{
	struct reply r = error_chain(400, "Bad Request", NULL);

	(void)status;
	(void)body_len;
	send_reply(c->fd, &r);
	free(r.body);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void cleanup(void)
{
	stop_guest();
	if (D.fake_vsock_path[0])
		unlink(D.fake_vsock_path);
}

static void on_term(int sig)
{
	(void)sig;
	exit(0); /* runs cleanup() */
}

/* "path=P", "fd=N" or a bare path (--api-socket, --event-monitor). */
static int open_arg(const char *opt, const char *v, bool listen_sock)
{
	const char *path = v;

	if (hc_startswith(v, "fd=")) {
		char *e;
		long fd = strtol(v + 3, &e, 10);

		if (*e || fd < 0 || fcntl((int)fd, F_GETFD) < 0)
			dbl_die("Error parsing --%s: invalid fd '%s'", opt, v + 3);
		fcntl((int)fd, F_SETFD, FD_CLOEXEC);
		return (int)fd;
	}
	if (hc_startswith(v, "path="))
		path = v + 5;
	else if (strchr(v, '='))
		dbl_die("Error parsing --%s: unknown parameter in '%s'", opt, v);
	if (!listen_sock) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			dbl_die("Error parsing --%s: %s: %s", opt, path, strerror(errno));
		return fd;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
		dbl_die("Error creating the API socket %s: %s", path, strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	struct dbl_loop loop;
	const char *api = NULL, *events = NULL;
	int lfd;

	D.version = dbl_envor("HOTCELL_CH_DOUBLE_VERSION", "41.0");
	D.qemu = (struct hc_child)HC_CHILD_INIT;
	D.vsockd = (struct hc_child)HC_CHILD_INIT;
	D.t0 = hc_clock_ms();
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
			printf("cloud-hypervisor v%s\n", D.version);
			return 0;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			printf("cloud-hypervisor-double: see "
			       "tests/doubles/cloud-hypervisor-double.c\n");
			return 0;
		}
		if (!strcmp(a, "-v") || !strcmp(a, "-vv") || !strcmp(a, "-vvv"))
			continue;
		if ((!strcmp(a, "--api-socket") || !strcmp(a, "--event-monitor") ||
		     !strcmp(a, "--log-file") || !strcmp(a, "--seccomp")) &&
		    i + 1 < argc) {
			if (!strcmp(a, "--api-socket"))
				api = argv[i + 1];
			else if (!strcmp(a, "--event-monitor"))
				events = argv[i + 1];
			i++;
			continue;
		}
		fprintf(stderr,
			"error: unexpected argument '%s' found\n\nUsage: cloud-hypervisor "
			"[OPTIONS]\n\nFor more information, try '--help'.\n",
			a);
		return 1;
	}
	if (hc_streq(getenv("HOTCELL_CH_DOUBLE_EXIT"), "startup")) {
		fprintf(stderr, "Error: Cloud Hypervisor exited with the following error:\n"
				"  double: exiting at startup, as the scenario says\n");
		return 1;
	}
	if (!api)
		dbl_die("double: no --api-socket (the double is driven through its API only)");
	D.exit_on = getenv("HOTCELL_CH_DOUBLE_EXIT");
	D.guest_qemu = !hc_streq(getenv("HOTCELL_CH_DOUBLE_GUEST"), "none");
	D.text_errors = hc_streq(getenv("HOTCELL_CH_DOUBLE_ERRORS"), "text");
	if (getenv("HOTCELL_CH_DOUBLE_LOG")) {
		D.log = fopen(getenv("HOTCELL_CH_DOUBLE_LOG"), "ae");
		if (!D.log)
			dbl_die("double: open log: %s", strerror(errno));
		/* Jailed, each VM's double runs as another uid: the next one appends too. */
		(void)fchmod(fileno(D.log), 0666);
		fprintf(D.log, "START %s%s%s\n", api, events ? " events " : "",
			events ? events : "");
		dbl_log_jail(D.log);
	}
	lfd = open_arg("api-socket", api, true);
	if (events)
		D.events_fd = open_arg("event-monitor", events, false);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	atexit(cleanup);
	event("vmm", "starting");
	dbl_loop_init(&loop, lfd, MAX_HEADERS, MAX_BODY);

	for (;;) {
		unsigned ev = dbl_loop_wait(&loop, &D.qemu, &D.vsockd, D.fake_vsock_fd);

		if (ev & DBL_QEMU_EXITED) {
			/* The guest reset: Cloud Hypervisor reboots the VM (the double does not
			 * boot it again). */
			if (D.log) {
				fprintf(D.log, "EVENT guest reset\n");
				fflush(D.log);
			}
			hc_child_stop(&D.vsockd, 0);
			event("vm", "rebooting");
		}
		if ((ev & DBL_VSOCKD_EXITED) && D.state == RUNNING)
			fprintf(stderr, "double: vhost-device-vsock exited\n");
		if (ev & DBL_FAKE_VSOCK)
			dbl_fake_vsock_serve(D.fake_vsock_fd, D.restored ? "restored" : "running");
		dbl_loop_serve(&loop, handle, bad_request);
	}
}
