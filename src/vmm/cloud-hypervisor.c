/* SPDX-License-Identifier: MIT */
/*
 * The Cloud Hypervisor backend (DESIGN.md §3). Cloud Hypervisor is a separate binary driven over
 * its REST API on a unix socket; the reference is its OpenAPI description
 * (vmm/src/api/openapi/cloud-hypervisor.yaml), restricted to what v35 and later accept.
 *
 *   API:      hotcell creates and binds the API socket and hands the listening fd over
 *             (`--api-socket fd=N`): requests can be sent at once, nothing waits for a path;
 *   events:   `--event-monitor fd=N` on a pipe whose read end is the VM's death_fd: it becomes
 *             readable on every VMM event (a guest reboot among them) and at EOF when the VMM
 *             exits, so check() sees both without polling;
 *   rootfs:   the cached tree through virtiofsd (tag hcroot, memory `shared: true`), started in
 *             parallel with cloud-hypervisor on sockets hotcell created; or the ext4 image as a
 *             read-only disk (--rootfs-mode block), the only mode snapshots support, since
 *             virtiofsd's state is not part of a snapshot;
 *   volumes:  one more virtiofsd each (tags hcvol0..), read-only where asked;
 *   channel:  hybrid vsock (docs/vsock.md): we listen on <socket>_1024 before the boot;
 *   console:  the serial port to the console log (mode File), the virtio console off;
 *   the end:  a guest reset makes Cloud Hypervisor reboot the VM, never exit: the host ends it
 *             with `vmm.shutdown` after the exit frame, then reaps it (DESIGN.md §3);
 *   VFIO:     `--device` adds `devices: [{path}]` after checking the device's IOMMU group.
 *
 * Paths Cloud Hypervisor resolves itself and that a snapshot records (the vsock socket, the
 * serial file) are relative to its working directory, the VM's runtime directory: a snapshot
 * then restores into any fresh runtime directory.
 */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "proto/boot.h"
#include "vmm/binary.h"
#include "vmm/cloud-hypervisor.h"
#include "jail/jail.h"
#include "vmm/hvsock.h"
#include "vmm/rest.h"
#include "vmm/unixsock.h"
#include "vmm/virtiofsd.h"
#include "vmm/vmm.h"

#define CH_NAME "cloud-hypervisor"
#define CH_ENV "HOTCELL_CLOUD_HYPERVISOR"
#define CH_API_SOCK "ch.sock"
#define CH_VSOCK "v.sock"
#define CH_SERIAL "console.log" /* relative to the runtime dir: vm->console_log */
#define CH_LOG "ch.log"
#define CH_FS_LOG "virtiofsd.log"
#define CH_MIN_MAJOR 35
#define CH_SHUTDOWN_MS 3000
#define CH_SNAPSHOT_TIMEOUT_MS 120000
#define CH_EVENTS_MAX (64 * 1024)
#define CH_API "/api/v1/"
/* virtio-fs queue geometry: one request queue of 1024 entries (FsConfig's defaults). */
#define CH_FS_QUEUES 1
#define CH_FS_QUEUE_SIZE 1024

struct ch {
	struct hc_child child;
	struct hc_rest *api;
	char bin[HC_PATH_MAX];
	char api_sock[HC_PATH_MAX];
	char vsock[HC_PATH_MAX];
	char log[HC_PATH_MAX];
	struct hc_virtiofsd *fsd; /* [0]: the rootfs (dir mode), then one per volume */
	size_t n_fsd;
	struct hc_buf events; /* the event monitor's unparsed bytes */
	bool started;	      /* booted, or restored */
	bool paused;
	bool reconnect_on_resume; /* restored paused: the vsock reconnect waits for the resume */
	bool rebooted;		  /* the event monitor said so */
	bool panicked;
	struct hc_jail_vm jail; /* cloud-hypervisor and its virtiofsd (docs/security.md) */
};

/* ---- small helpers ----------------------------------------------------------------------- */

/* "cloud-hypervisor v35.0", "cloud-hypervisor v41.0-12-gdeadbeef", "cloud-hypervisor 35.0". */
static int parse_version(const char *out, unsigned *major, char *ver, size_t n)
{
	const char *p = strchr(out, ' ');
	unsigned minor = 0;

	if (!p)
		return -EINVAL;
	p++;
	if (*p == 'v')
		p++;
	if (*p < '0' || *p > '9' || sscanf(p, "%u.%u", major, &minor) < 1)
		return -EINVAL;
	snprintf(ver, n, "%.*s", (int)strcspn(p, " \t\r\n"), p);
	return 0;
}

/* The last lines of cloud-hypervisor's own log (its stderr), joined: its error chain. */
static void add_ch_log(const struct ch *ch, struct hc_error *err)
{
	_cleanup_close_ int fd = -1;
	char tmp[1024], out[600] = "";
	size_t o = 0, used;
	off_t size, from;
	ssize_t n;

	if (!ch->log[0] || (fd = open(ch->log, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0)
		return;
	from = size > (off_t)sizeof(tmp) - 1 ? size - (off_t)sizeof(tmp) + 1 : 0;
	n = pread(fd, tmp, sizeof(tmp) - 1, from);
	if (n <= 0)
		return;
	tmp[n] = '\0';
	/* Up to three non-empty lines from the end. */
	char *start = tmp;
	int lines = 0;
	for (char *p = tmp + n; p > tmp; p--)
		if (p[-1] == '\n' && *p && *p != '\n' && ++lines == 3) {
			start = p;
			break;
		}
	for (char *p = start; *p && o + 4 < sizeof(out); p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\n') {
			if (o && p[1])
				o += (size_t)snprintf(out + o, sizeof(out) - o, " | ");
			continue;
		}
		out[o++] = c < ' ' || c == 0x7f ? ' ' : (char)c;
	}
	out[o < sizeof(out) ? o : sizeof(out) - 1] = '\0';
	if (!out[0])
		return;
	used = strlen(err->message);
	snprintf(err->message + used, sizeof(err->message) - used, " (%s: %s)", CH_LOG, out);
}

static void describe_exit(const struct ch *ch, struct hc_error *err, int code, const char *fmt)
{
	char how[64];

	hc_child_status_str(ch->child.status, how, sizeof(how));
	hc_error_setk(err, code, HC_EK_VM, fmt, how);
	add_ch_log(ch, err);
}

/* ---- VFIO -------------------------------------------------------------------------------- */

static const char *sysfs_root(void)
{
	const char *r = getenv("HOTCELL_SYSFS_ROOT");

	return r && *r ? r : "/sys";
}

/* DDDD:BB:DD.F (lspci -D), or BB:DD.F on domain 0; lowercased, as sysfs spells it. */
static int pci_addr_normalize(const char *a, char *out, size_t n)
{
	static const char shape[] = "xxxx:xx:xx.x";
	char full[16];

	if (strlen(a) == 7)
		snprintf(full, sizeof(full), "0000:%s", a);
	else if (strlen(a) == 12)
		snprintf(full, sizeof(full), "%s", a);
	else
		return -EINVAL;
	for (size_t i = 0; i < 12; i++) {
		char c = full[i];

		if (shape[i] == 'x') {
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			      (c >= 'A' && c <= 'F')))
				return -EINVAL;
			full[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
		} else if (c != shape[i]) {
			return -EINVAL;
		}
	}
	/* Device 0..1f, function 0..7 (PCI). */
	if (strtoul(full + 8, NULL, 16) > 0x1f || full[11] > '7')
		return -EINVAL;
	snprintf(out, n, "%s", full);
	return 0;
}

/* The name of the driver bound to a sysfs device dir ("" when none). */
static void driver_of(const char *devdir, char *buf, size_t n)
{
	char link[HC_PATH_MAX], target[HC_PATH_MAX];
	ssize_t k;

	buf[0] = '\0';
	if ((size_t)snprintf(link, sizeof(link), "%s/driver", devdir) >= sizeof(link))
		return;
	k = readlink(link, target, sizeof(target) - 1);
	if (k <= 0)
		return;
	target[k] = '\0';
	snprintf(buf, n, "%s", strrchr(target, '/') ? strrchr(target, '/') + 1 : target);
}

static bool group_member_viable(const char *driver, bool is_target)
{
	if (hc_streq(driver, "vfio-pci"))
		return true;
	/* Documentation/driver-api/vfio.rst: a group is viable when every device is bound to a
	 * VFIO driver, or is a bridge (pcieport), or is held by pci-stub or no driver at all. The
	 * device handed to the VM itself must be vfio-pci's. */
	return !is_target &&
	       (!driver[0] || hc_streq(driver, "pcieport") || hc_streq(driver, "pci-stub"));
}

int hc_cloud_hypervisor_vfio_check(const char *addr, char *path, size_t path_len,
				   struct hc_error *err)
{
	char bdf[16], dev[HC_PATH_MAX], grpdir[HC_PATH_MAX], link[HC_PATH_MAX], group[64] = "?",
										drv[256];
	struct dirent **names = NULL;
	struct stat st;
	ssize_t k;
	int n, r = 0;

	if (pci_addr_normalize(addr, bdf, sizeof(bdf)) < 0)
		return hc_error_setk(
			err, -EINVAL, HC_EK_USAGE,
			"--device '%s' is not a PCI address (DDDD:BB:DD.F, as lspci -D "
			"prints it)",
			addr);
	r = hc_path_fmt(dev, sizeof(dev), err, "%s/bus/pci/devices/%s", sysfs_root(), bdf);
	if (r < 0)
		return r;
	if (stat(dev, &st) < 0)
		return hc_error_setk(err, -ENODEV, HC_EK_USAGE,
				     "--device %s: no such PCI device on this host (%s: %s)", bdf,
				     dev, strerror(errno));
	snprintf(link, sizeof(link), "%s/iommu_group", dev);
	k = readlink(link, grpdir, sizeof(grpdir) - 1);
	if (k > 0) {
		grpdir[k] = '\0';
		snprintf(group, sizeof(group), "%s",
			 strrchr(grpdir, '/') ? strrchr(grpdir, '/') + 1 : grpdir);
	}
	r = hc_path_fmt(grpdir, sizeof(grpdir), err, "%s/iommu_group/devices", dev);
	if (r < 0)
		return r;
	driver_of(dev, drv, sizeof(drv));
	if (stat(grpdir, &st) < 0)
		return hc_error_setk(
			err, -ENODEV, HC_EK_USAGE,
			"--device %s: the device has no IOMMU group (%s/iommu_group is "
			"missing): VFIO needs the host's IOMMU on (intel_iommu=on or "
			"amd_iommu=on on the host kernel's command line)",
			bdf, dev);
	if (!group_member_viable(drv, true))
		return hc_error_setk(err, -EBUSY, HC_EK_USAGE,
				     "--device %s is %s%s%s, not to vfio-pci: bind it to vfio-pci "
				     "first (hotcell never rebinds drivers; see docs/backends.md)",
				     bdf, drv[0] ? "bound to '" : "not bound to any driver",
				     drv[0] ? drv : "", drv[0] ? "'" : "");
	n = scandir(grpdir, &names, NULL, alphasort);
	if (n < 0)
		return hc_error_errno(err, -errno, "--device %s: read %s", bdf, grpdir);
	for (int i = 0; i < n; i++) {
		const char *m = names[i]->d_name;
		char mdir[HC_PATH_MAX];

		if (r == 0 && m[0] != '.' && !hc_streq(m, bdf)) {
			snprintf(mdir, sizeof(mdir), "%s/%s", grpdir, m);
			driver_of(mdir, drv, sizeof(drv));
			if (!group_member_viable(drv, false))
				r = hc_error_setk(
					err, -EBUSY, HC_EK_USAGE,
					"--device %s: %s, in the same IOMMU group %s, is bound to "
					"'%s': the whole group must be bound to vfio-pci before "
					"its "
					"devices can be passed through (hotcell never rebinds "
					"drivers; see docs/backends.md)",
					bdf, m, group, drv);
		}
		free(names[i]);
	}
	free(names);
	if (r < 0)
		return r;
	return hc_path_fmt(path, path_len, err, "%s", dev);
}

/* ---- probe ------------------------------------------------------------------------------- */

static int ch_probe_bin(char *bin, size_t bin_len, char *version, size_t version_len,
			struct hc_error *err)
{
	_cleanup_free_ char *out = NULL;
	unsigned major = 0;
	char ver[64];
	int r;

	r = hc_binary_find(CH_ENV, CH_NAME, bin, bin_len, err);
	if (r >= 0)
		r = hc_binary_version(bin, &out, err);
	if (r < 0)
		return r;
	if (parse_version(out, &major, ver, sizeof(ver)) < 0)
		return hc_error_setk(err, -EPROTO, HC_EK_BACKEND,
				     "%s --version: unexpected output '%.80s'", bin, out);
	if (major < CH_MIN_MAJOR)
		return hc_error_setk(
			err, -EOPNOTSUPP, HC_EK_BACKEND,
			"%s is version %s, older than v%d, the oldest Cloud Hypervisor "
			"hotcell drives: install a newer release",
			bin, ver, CH_MIN_MAJOR);
	if (version && version_len)
		snprintf(version, version_len, "%s", ver);
	return 0;
}

/* What the host and the spec must offer, the binary aside. */
static int probe_host(const struct hc_vm_spec *spec, struct hc_error *err)
{
	int r;

	r = hc_binary_check_host(spec, CH_NAME, "Cloud Hypervisor", err);
	if (r < 0)
		return r;
	if (spec->n_devices && !spec->kernel_is_user)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "--device needs --kernel: a kernel of yours that carries the "
				     "device's driver (the project's kernel has no modules and no "
				     "GPU drivers)");
	for (size_t i = 0; i < spec->n_devices; i++) {
		char path[HC_PATH_MAX];

		r = hc_cloud_hypervisor_vfio_check(spec->devices[i], path, sizeof(path), err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int ch_probe(const struct hc_vm_spec *spec, char *version, size_t version_len,
		    struct hc_error *err)
{
	char bin[HC_PATH_MAX], ver[64] = "";
	int r;

	r = ch_probe_bin(bin, sizeof(bin), ver, sizeof(ver), err);
	if (r < 0)
		return r;
	if (version && version_len)
		snprintf(version, version_len, "%s", ver);
	/* Without a spec (hotcell doctor's "found"), only the binary is looked at. */
	if (!spec)
		return 0;
	return probe_host(spec, err);
}

/* ---- the API ----------------------------------------------------------------------------- */

/* Errors name the endpoint; a VMM that died on the way says how, with its log. */
static int api_failed(struct hc_vm *vm, struct ch *ch, int r, struct hc_error *err)
{
	hc_error_prefix(err, CH_NAME);
	hc_error_kind(err, HC_EK_VM);
	if (hc_binary_note_exit(&ch->child, CH_NAME, err)) {
		add_ch_log(ch, err);
		hc_vm_error_add_console(vm, err);
	}
	return r;
}

/* PUT endpoint without a body. */
static int api_put(struct hc_vm *vm, struct ch *ch, const char *endpoint, int timeout_ms,
		   struct hc_error *err)
{
	int r = hc_rest_request(ch->api, "PUT", endpoint, NULL, timeout_ms, NULL, err);

	return r < 0 ? api_failed(vm, ch, r, err) : 0;
}

/* PUT endpoint with a jansson body (consumed; NULL, a failed json_pack(), is -ENOMEM). */
static int api_put_json(struct hc_vm *vm, struct ch *ch, const char *endpoint, json_t *body,
			int timeout_ms, struct hc_error *err)
{
	int r = hc_rest_request_json(ch->api, "PUT", endpoint, body, timeout_ms, NULL, err);

	return r < 0 ? api_failed(vm, ch, r, err) : 0;
}

/* ---- start ------------------------------------------------------------------------------- */

/* One virtiofsd per shared tree, all spawned at once (none waits for another or for the VMM:
 * each listens on a socket hotcell created). */
static int start_virtiofsd(struct hc_vm *vm, struct ch *ch, struct hc_error *err)
{
	const struct hc_vm_spec *s = &vm->spec;
	bool root = s->rootfs_mode == HC_ROOTFS_DIR;
	size_t n = (root ? 1 : 0) + s->n_volumes;
	char log[HC_PATH_MAX];
	int r;

	if (!n)
		return 0;
	ch->fsd = calloc(n, sizeof(*ch->fsd));
	if (!ch->fsd)
		return hc_error_set(err, -ENOMEM, "out of memory");
	r = hc_path_fmt(log, sizeof(log), err, "%s/%s", vm->run_dir, CH_FS_LOG);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		bool is_root = root && i == 0;
		const struct hc_volume *v = is_root ? NULL : &s->volumes[i - (root ? 1 : 0)];
		char sock[HC_PATH_MAX];

		ch->fsd[i] = (struct hc_virtiofsd)HC_VIRTIOFSD_INIT;
		r = hc_path_fmt(sock, sizeof(sock), err, "%s/fs%zu.sock", vm->run_dir, i);
		if (r < 0)
			return r;
		r = hc_virtiofsd_start_jailed(
			&ch->fsd[i], &ch->jail, is_root ? s->rootfs_dir : v->host,
			is_root ? !s->rootfs_rw : v->readonly, sock, log, err);
		ch->n_fsd = i + 1;
		if (r < 0)
			return r;
	}
	return 0;
}

/* realpath of p into buf (PATH_MAX), or p itself when it cannot be resolved (NULL stays NULL). */
static const char *real_or_given(const char *p, char *buf)
{
	return p && realpath(p, buf) ? buf : p;
}

/* Starts a fresh cloud-hypervisor on a socket hotcell bound, its events on a pipe. */
static int spawn_vmm(struct hc_vm *vm, struct ch *ch, struct hc_error *err)
{
	_cleanup_close_ int api_fd = -1, logfd = -1;
	int ev[2] = {-1, -1}, r;

	r = hc_path_fmt(ch->api_sock, sizeof(ch->api_sock), err, "%s/%s", vm->run_dir, CH_API_SOCK);
	if (r >= 0)
		r = hc_path_fmt(ch->vsock, sizeof(ch->vsock), err, "%s/%s", vm->run_dir, CH_VSOCK);
	if (r >= 0)
		r = hc_path_fmt(ch->log, sizeof(ch->log), err, "%s/%s", vm->run_dir, CH_LOG);
	if (r < 0)
		return r;
	if (strlen(ch->vsock) + 6 > HC_SOCK_PATH_MAX)
		return hc_error_set(err, -ENAMETOOLONG, "socket paths under %s are too long",
				    vm->run_dir);
	/* Cloud Hypervisor binds the vsock socket itself and fails on an existing file. */
	unlink(ch->vsock);
	api_fd = hc_unixsock_listen(ch->api_sock, 8, err);
	if (api_fd < 0)
		return api_fd;
	logfd = open(ch->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
	if (logfd < 0)
		return hc_error_errno(err, -errno, "open %s", ch->log);
	if (pipe2(ev, O_CLOEXEC) < 0)
		return hc_error_errno(err, -errno, "pipe2");
	vm->death_fd = ev[0];

	const char *argv[] = {ch->bin, "--api-socket",
			      "fd=3",  "--event-monitor",
			      "fd=4",  hc_log_enabled(HC_LOG_DEBUG) ? "-vv" : NULL,
			      NULL};
	struct hc_fd_map fds[] = {{api_fd, 3}, {ev[1], 4}};
	struct hc_child_opts o = {
		.argv = argv,
		.stdin_fd = -1,
		.stdout_fd = logfd,
		.stderr_fd = logfd,
		.fds = fds,
		.n_fds = HC_ARRAY_SIZE(fds),
		.cwd = vm->run_dir,
		.new_session = true,
	};
	/* Jailed like QEMU: its uid, no capabilities, /dev/kvm by group, only the VM's files
	 * (the runtime dir is its working directory: sockets, serial log, snapshots). */
	/* Cloud Hypervisor creates (truncates) the serial file itself, but hotcell may open it
	 * first to follow it: made here, so the jail hands it to the VM's uid with the rest. */
	if (ch->jail.on) {
		int cfd = open(vm->console_log, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (cfd < 0)
			return hc_error_errno(err, -errno, "create %s", vm->console_log);
		close(cfd);
	}
	struct hc_jail_proc jp;
	char real[3][PATH_MAX];
	hc_jail_proc_init(&jp, &ch->jail, HC_JAIL_CLOUD_HYPERVISOR, vm->spec.accel, ch->bin);
	/* The API names these by their real paths (abs_path): the jail binds those, so a kernel
	 * reached through a symlinked directory is found inside it too. */
	hc_jail_proc_bind(&jp, real_or_given(vm->spec.kernel, real[0]), false);
	hc_jail_proc_bind(&jp, real_or_given(vm->spec.initrd, real[1]), false);
	hc_jail_proc_bind(&jp, real_or_given(vm->spec.rootfs_disk, real[2]), false);
	jp.tap = vm->spec.net_tap != NULL; /* a TAP fd, not the host's network */
	r = hc_jail_proc_prepare(&jp, &o, err);
	if (r >= 0)
		r = hc_child_spawn(&ch->child, &o, err);
	hc_jail_proc_free(&jp);
	close(ev[1]); /* the VMM's end only: EOF on death_fd when it exits */
	if (r < 0)
		return hc_error_prefix(err, "start cloud-hypervisor");
	hc_debug("cloud-hypervisor: started %s (pid %d) in %s", ch->bin, (int)ch->child.pid,
		 vm->run_dir);
	r = hc_rest_new(&ch->api, ch->api_sock, err);
	if (r == 0)
		hc_rest_set_cancel_fd(ch->api, hc_vm_cancel_fd(&vm->spec));
	return r;
}

static int abs_path(const char *p, char *buf, struct hc_error *err)
{
	if (!realpath(p, buf))
		return hc_error_errno(err, -errno, "'%s'", p);
	return 0;
}

/* The kernel command line: console, reboot/panic behaviour, the boot contract's keys
 * (docs/protocol.md) and the spec's extra words. */
static int build_cmdline(const struct hc_vm_spec *s, char **ret, struct hc_error *err)
{
	struct hc_buf b = HC_BUF_INIT(0);
	int r;

	/* quiet unless debugging: a serial console costs boot time, and panics print anyway. */
	r = hc_buf_printf(&b, "console=ttyS0 reboot=k panic=-1%s %s=%s %s=vsock",
			  hc_log_enabled(HC_LOG_DEBUG) ? "" : " quiet", HC_BOOT_KEY_ROOT,
			  s->rootfs_mode == HC_ROOTFS_BLOCK ? "block" : "virtiofs",
			  HC_BOOT_KEY_CHANNEL);
	for (size_t i = 0; r == 0 && i < s->n_volumes; i++) {
		r = hc_boot_volume_append(&b, (unsigned)i, s->volumes[i].guest,
					  s->volumes[i].readonly);
		if (r == -EINVAL) {
			hc_buf_free(&b);
			return hc_error_setk(
				err, -EINVAL, HC_EK_USAGE,
				"volume guest path '%s' must be absolute, without '..'",
				s->volumes[i].guest ? s->volumes[i].guest : "");
		}
	}
	if (r == 0 && s->cmdline && *s->cmdline)
		r = hc_buf_printf(&b, " %s", s->cmdline);
	if (r == 0)
		r = hc_buf_append(&b, "", 1);
	if (r < 0) {
		hc_buf_free(&b);
		return hc_error_set(err, r, "kernel command line: out of memory");
	}
	*ret = hc_buf_steal(&b, NULL);
	return 0;
}

/* --network inet|full: the TAP src/net made, as an fd (SCM_RIGHTS) through vm.add-net before
 * vm.boot, with an id of hotcell's: a VM whose NIC came as fds is restored onto new fds
 * (vm.restore's net_fds names that id), so every restored copy runs on a TAP of its own; a
 * NIC opened by name would be reopened by the snapshot's TAP name. Its OpenAPI NetConfig: id,
 * mac (no ip/mask: the TAP already has the gateway address, and Cloud Hypervisor does not
 * configure a TAP it is given). */
#define CH_NET_ID "net0"
static int add_net(struct hc_vm *vm, struct ch *ch, struct hc_error *err)
{
	const struct hc_vm_spec *s = &vm->spec;
	int r;

	if (!s->net_tap)
		return 0;
	if (s->net_tap_fd < 0)
		return hc_error_setk(err, -EINVAL, HC_EK_INTERNAL,
				     "cloud-hypervisor: no fd on the TAP %s", s->net_tap);
	r = hc_rest_request_json_fds(
		ch->api, "PUT", CH_API "vm.add-net",
		json_pack("{s:s, s:s}", "id", CH_NET_ID, "mac", s->net_mac ? s->net_mac : ""),
		&s->net_tap_fd, 1, 0, err);
	return r < 0 ? api_failed(vm, ch, r, err) : 0;
}

/* The VmConfig of vm.create (cloud-hypervisor.yaml, components/schemas/VmConfig). */
static int build_config(struct hc_vm *vm, struct ch *ch, json_t **ret, struct hc_error *err)
{
	const struct hc_vm_spec *s = &vm->spec;
	char kernel[PATH_MAX], initrd[PATH_MAX];
	_cleanup_free_ char *cmdline = NULL;
	json_t *cfg, *arr;
	int r;

	r = abs_path(s->kernel, kernel, err);
	if (r >= 0)
		r = abs_path(s->initrd, initrd, err);
	if (r >= 0)
		r = build_cmdline(s, &cmdline, err);
	if (r < 0)
		return r;
	cfg = json_pack("{s:{s:s, s:s, s:s}, s:{s:I, s:I}, s:{s:I, s:b}, s:{s:I, s:s},"
			" s:{s:s, s:s}, s:{s:s}}",
			"payload", "kernel", kernel, "initramfs", initrd, "cmdline", cmdline,
			"cpus", "boot_vcpus", (json_int_t)(s->cpus ? s->cpus : 1), "max_vcpus",
			(json_int_t)(s->cpus ? s->cpus : 1), "memory", "size",
			(json_int_t)(s->memory_mib ? s->memory_mib : 256) << 20, "shared", 1,
			"vsock", "cid", (json_int_t)HC_BOOT_VSOCK_GUEST_CID, "socket", CH_VSOCK,
			"serial", "mode", "File", "file", CH_SERIAL, "console", "mode", "Off");
	if (!cfg)
		return hc_error_set(err, -ENOMEM, "vm.create: out of memory");
	if (ch->n_fsd) {
		arr = json_array();
		json_object_set_new(cfg, "fs", arr);
		for (size_t i = 0; i < ch->n_fsd; i++) {
			bool root = s->rootfs_mode == HC_ROOTFS_DIR;
			char tag[32];

			if (root && i == 0)
				snprintf(tag, sizeof(tag), "%s", HC_BOOT_TAG_ROOTFS);
			else
				snprintf(tag, sizeof(tag), "%s%zu", HC_BOOT_TAG_VOLUME_PREFIX,
					 i - (root ? 1 : 0));
			json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:i}", "tag", tag,
							     "socket", ch->fsd[i].socket_path,
							     "num_queues", CH_FS_QUEUES,
							     "queue_size", CH_FS_QUEUE_SIZE));
		}
	}
	if (s->rootfs_mode == HC_ROOTFS_BLOCK) {
		char disk[PATH_MAX];

		r = abs_path(s->rootfs_disk, disk, err);
		if (r < 0) {
			json_decref(cfg);
			return r;
		}
		json_object_set_new(cfg, "disks",
				    json_pack("[{s:s, s:b}]", "path", disk, "readonly", 1));
	}
	if (s->n_devices) {
		arr = json_array();
		json_object_set_new(cfg, "devices", arr);
		for (size_t i = 0; i < s->n_devices; i++) {
			char path[HC_PATH_MAX];

			r = hc_cloud_hypervisor_vfio_check(s->devices[i], path, sizeof(path), err);
			if (r < 0) {
				json_decref(cfg);
				return r;
			}
			json_array_append_new(arr, json_pack("{s:s}", "path", path));
		}
	}
	*ret = cfg;
	return 0;
}

/* The guest connects out to CID 2 port 1024: Cloud Hypervisor forwards it to <socket>_1024,
 * which must be listening before the boot. */
static int listen_agent(struct hc_vm *vm, struct ch *ch, struct hc_error *err)
{
	int fd = hc_hvsock_listen(ch->vsock, HC_BOOT_VSOCK_PORT_CONNECT, err);

	if (fd < 0)
		return fd;
	vm->agent_listen_fd = fd;
	/* A jailed cloud-hypervisor connects to it as the VM's uid. */
	char p[HC_PATH_MAX];
	if (ch->jail.on &&
	    (hc_hvsock_port_path(p, sizeof(p), ch->vsock, HC_BOOT_VSOCK_PORT_CONNECT, err) < 0 ||
	     chown(p, ch->jail.uid, ch->jail.gid) < 0))
		return err->code ? err->code : hc_error_errno(err, -errno, "chown %s", p);
	return 0;
}

static int check_spec(const struct hc_vm_spec *s, bool restoring, struct hc_error *err)
{
	/* The serial channel is refused by caps (vmm.c). */
	if (s->rootfs_mode == HC_ROOTFS_DIR && !s->rootfs_dir)
		return hc_error_setk(err, -EINVAL, HC_EK_INTERNAL,
				     "cloud-hypervisor: a directory rootfs without a directory");
	if (s->rootfs_mode == HC_ROOTFS_BLOCK && !s->rootfs_disk)
		return hc_error_setk(err, -EINVAL, HC_EK_INTERNAL,
				     "cloud-hypervisor: a block rootfs without an ext4 image");
	if (restoring && (s->rootfs_mode != HC_ROOTFS_BLOCK || s->n_volumes))
		return hc_error_setk(err, -EOPNOTSUPP, HC_EK_USAGE,
				     "backend 'cloud-hypervisor' restores snapshots only with "
				     "--rootfs-mode block and no -v (virtiofsd's state is not part "
				     "of a snapshot)");
	if (!s->kernel || !s->initrd)
		return hc_error_setk(err, -EINVAL, HC_EK_INTERNAL,
				     "cloud-hypervisor needs a kernel and an initramfs");
	return 0;
}

static void ch_destroy(struct hc_vm *vm);

static int ch_new_priv(struct hc_vm *vm, struct ch **ret, struct hc_error *err)
{
	struct ch *ch;
	int r;

	if (vm->priv)
		return hc_error_set(err, -EALREADY, "cloud-hypervisor: VM already started");
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return hc_error_set(err, -ENOMEM, "out of memory");
	ch->child = (struct hc_child)HC_CHILD_INIT;
	ch->events = (struct hc_buf)HC_BUF_INIT(CH_EVENTS_MAX);
	ch->jail = (struct hc_jail_vm)HC_JAIL_VM_INIT;
	vm->priv = ch;
	r = ch_probe_bin(ch->bin, sizeof(ch->bin), NULL, 0, err);
	if (r < 0)
		return r;
	r = probe_host(&vm->spec, err);
	if (r < 0)
		return r;
	r = hc_jail_vm_open(&ch->jail, !vm->spec.no_jail && hc_jail_default_on(NULL), vm->run_dir,
			    vm->spec.memory_mib, vm->spec.cpus, err);
	if (r < 0)
		return r;
	vm->jailed = ch->jail.on;
	*ret = ch;
	return 0;
}

static int ch_start(struct hc_vm *vm, struct hc_error *err)
{
	struct ch *ch = NULL;
	json_t *cfg = NULL;
	int r;

	r = check_spec(&vm->spec, false, err);
	if (r < 0)
		return r;
	r = ch_new_priv(vm, &ch, err);
	/* virtiofsd and cloud-hypervisor start in parallel: each listens on a socket hotcell
	 * created, so neither waits for the other. */
	if (r >= 0)
		r = start_virtiofsd(vm, ch, err);
	if (r >= 0)
		r = spawn_vmm(vm, ch, err);
	if (r >= 0)
		r = build_config(vm, ch, &cfg, err);
	if (r >= 0)
		r = api_put_json(vm, ch, CH_API "vm.create", cfg, 0, err);
	if (r >= 0)
		r = add_net(vm, ch, err);
	if (r >= 0)
		r = listen_agent(vm, ch, err);
	if (r >= 0)
		r = api_put(vm, ch, CH_API "vm.boot", 0, err);
	if (r < 0) {
		hc_error_kind(err, HC_EK_VM);
		ch_destroy(vm);
		return r;
	}
	ch->started = true;
	return 0;
}

/* ---- events and death -------------------------------------------------------------------- */

/* Reads what the event monitor wrote (never blocks) and notes the events that end a run: the
 * guest rebooting (Cloud Hypervisor would boot it again) and a guest panic (pvpanic). The
 * monitor writes pretty-printed JSON objects separated by blank lines. Returns 1 at EOF. */
static int drain_events(struct hc_vm *vm, struct ch *ch)
{
	int eof = 0;

	for (;;) {
		struct pollfd p = {.fd = vm->death_fd, .events = POLLIN};
		char buf[4096];
		ssize_t n;

		if (vm->death_fd < 0 || poll(&p, 1, 0) <= 0)
			break;
		n = read(vm->death_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			eof = 1;
			break;
		}
		if (hc_buf_append(&ch->events, buf, (size_t)n) < 0)
			hc_buf_reset(&ch->events); /* a flood of events: drop, keep reading */
	}
	while (ch->events.len) {
		json_error_t jerr;
		json_t *e = json_loadb(ch->events.data, ch->events.len,
				       JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &jerr);
		size_t used;

		if (!e) {
			/* An object still being written: wait for the rest. */
			if (jerr.position >= (int)ch->events.len)
				break;
			char *sep = memmem(ch->events.data, ch->events.len, "\n\n", 2);
			used = sep ? (size_t)(sep - ch->events.data) + 2 : ch->events.len;
			hc_buf_consume(&ch->events, used);
			continue;
		}
		used = (size_t)jerr.position;
		const char *src = json_string_value(json_object_get(e, "source"));
		const char *ev = json_string_value(json_object_get(e, "event"));
		hc_debug("cloud-hypervisor event: %s %s", src ? src : "?", ev ? ev : "?");
		if (hc_streq(src, "vm") && (hc_streq(ev, "rebooting") || hc_streq(ev, "reboot")))
			ch->rebooted = true;
		if (hc_streq(src, "guest") && hc_streq(ev, "panic"))
			ch->panicked = true;
		json_decref(e);
		hc_buf_consume(&ch->events, used ? used : ch->events.len);
		/* Skip the blank lines between objects. */
		while (ch->events.len && (ch->events.data[0] == '\n' || ch->events.data[0] == ' '))
			hc_buf_consume(&ch->events, 1);
	}
	return eof;
}

static int ch_check(struct hc_vm *vm, struct hc_error *err)
{
	struct ch *ch = vm->priv;
	int eof;

	if (!ch)
		return hc_error_setk(err, -ECHILD, HC_EK_VM, "cloud-hypervisor is not running");
	eof = drain_events(vm, ch);
	if (eof && !hc_child_poll(&ch->child))
		(void)hc_child_wait(&ch->child, 1000); /* its monitor closed: it is exiting */
	if (hc_child_poll(&ch->child)) {
		/* It exits 0 only when the guest powered off (ACPI) or on vmm.shutdown. */
		bool clean = WIFEXITED(ch->child.status) && WEXITSTATUS(ch->child.status) == 0;

		describe_exit(ch, err, clean ? -ESHUTDOWN : -EIO, "cloud-hypervisor %s");
		return err->code;
	}
	if (ch->panicked)
		return hc_error_setk(err, -EIO, HC_EK_VM, "the guest panicked (pvpanic event)");
	if (ch->rebooted)
		return hc_error_setk(
			err, -ESHUTDOWN, HC_EK_VM,
			"the guest rebooted (cloud-hypervisor boots it again; the host "
			"ends it)");
	if (eof) {
		/* EOF but still running: do not spin on a readable pipe, watch the pidfd. */
		close(vm->death_fd);
		vm->death_fd = fcntl(ch->child.pidfd, F_DUPFD_CLOEXEC, 3);
	}
	return 0;
}

/* ---- pause, resume, snapshot, restore ---------------------------------------------------- */

static int running(struct ch *ch, struct hc_error *err)
{
	if (!ch || !ch->started)
		return hc_error_setk(err, -ESRCH, HC_EK_VM,
				     "cloud-hypervisor: the VM is not running");
	return 0;
}

static int ch_pause(struct hc_vm *vm, struct hc_error *err)
{
	struct ch *ch = vm->priv;
	int r = running(ch, err);

	if (r >= 0)
		r = api_put(vm, ch, CH_API "vm.pause", 0, err);
	if (r >= 0)
		ch->paused = true;
	return r;
}

/* vsock connections do not survive a snapshot: reconnect from the host to the port
 * hotcell-init listens on, once the guest runs. When nothing listens yet, the guest connects
 * out instead (agent_listen_fd). */
static void ch_reconnect(struct hc_vm *vm, struct ch *ch)
{
	int fd =
		hc_hvsock_reconnect(ch->vsock, HC_BOOT_VSOCK_PORT_LISTEN,
				    vm->spec.boot_timeout_ms > 0 ? vm->spec.boot_timeout_ms : 10000,
				    "cloud-hypervisor");

	if (fd >= 0)
		vm->agent_fd = fd;
}

static int ch_resume(struct hc_vm *vm, struct hc_error *err)
{
	struct ch *ch = vm->priv;
	int r = running(ch, err);

	if (r >= 0)
		r = api_put(vm, ch, CH_API "vm.resume", 0, err);
	if (r >= 0)
		ch->paused = false;
	if (r >= 0 && ch->reconnect_on_resume) {
		ch->reconnect_on_resume = false;
		ch_reconnect(vm, ch);
	}
	return r;
}

static int file_url(const char *dir, char *url, size_t n, struct hc_error *err)
{
	char adir[PATH_MAX];

	if (!realpath(dir, adir))
		return hc_error_errno(err, -errno, "snapshot directory '%s'", dir);
	return hc_path_fmt(url, n, err, "file://%s", adir);
}

/* A jailed cloud-hypervisor sees only its runtime dir: it snapshots into JAIL_SNAP there and
 * restores from a copy in JAIL_RESTORE (its uid's, 0600). copy_flat copies the regular files
 * of src into dst (each atomically), handing them to uid unless it is -1. */
#define JAIL_SNAP "snapshot.tmp"
#define JAIL_RESTORE "restore"

static int copy_flat(const char *src, const char *dst, uid_t uid, gid_t gid, struct hc_error *err)
{
	DIR *d = opendir(src);
	struct dirent *de;
	int r = 0;

	if (!d)
		return hc_error_errno(err, -errno, "snapshot directory '%s'", src);
	while (r >= 0 && (de = readdir(d))) {
		char to[HC_PATH_MAX];
		struct stat st;

		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			r = hc_error_errno(err, -errno, "open %s/%s", src, de->d_name);
			break;
		}
		r = hc_path_fmt(to, sizeof(to), err, "%s/%s", dst, de->d_name);
		if (r >= 0)
			r = hc_path_copy_fd_atomic(fd, to, 0600, err);
		close(fd);
		if (r >= 0 && uid != (uid_t)-1 && chown(to, uid, gid) < 0)
			r = hc_error_errno(err, -errno, "chown %s", to);
	}
	closedir(d);
	return r;
}

static int ch_snapshot(struct hc_vm *vm, const char *dir, struct hc_error *err)
{
	struct ch *ch = vm->priv;
	char url[HC_PATH_MAX];
	int r = running(ch, err);

	if (r < 0)
		return r;
	if (vm->spec.rootfs_mode != HC_ROOTFS_BLOCK || vm->spec.n_volumes)
		return hc_error_setk(err, -EOPNOTSUPP, HC_EK_USAGE,
				     "backend 'cloud-hypervisor' takes snapshots only with "
				     "--rootfs-mode block and no -v (virtiofsd's state is not part "
				     "of a snapshot)");
	if (!ch->paused)
		return hc_error_setk(err, -EBUSY, HC_EK_VM,
				     "cloud-hypervisor: a snapshot needs a paused VM (pause it "
				     "first)");
	r = hc_path_mkdir_p(dir, 0700, err);
	if (r < 0)
		return r;
	if (!ch->jail.on) {
		r = file_url(dir, url, sizeof(url), err);
		return r < 0 ? r
			     : api_put_json(vm, ch, CH_API "vm.snapshot",
					    json_pack("{s:s}", "destination_url", url),
					    CH_SNAPSHOT_TIMEOUT_MS, err);
	}
	char tmp[HC_PATH_MAX];
	struct hc_error e = {0};
	r = hc_path_fmt(tmp, sizeof(tmp), err, "%s/" JAIL_SNAP, vm->run_dir);
	if (r >= 0) {
		hc_path_rm_rf(tmp, &e);
		if (mkdir(tmp, 0700) < 0 || chown(tmp, ch->jail.uid, ch->jail.gid) < 0)
			r = hc_error_errno(err, -errno, "snapshot: %s", tmp);
	}
	if (r >= 0)
		r = file_url(tmp, url, sizeof(url), err);
	if (r >= 0)
		r = api_put_json(vm, ch, CH_API "vm.snapshot",
				 json_pack("{s:s}", "destination_url", url), CH_SNAPSHOT_TIMEOUT_MS,
				 err);
	if (r >= 0)
		r = copy_flat(tmp, dir, (uid_t)-1, (gid_t)-1, err);
	hc_path_rm_rf(tmp, &e);
	return r;
}

static int ch_restore(struct hc_vm *vm, const char *dir, struct hc_error *err)
{
	struct ch *ch = NULL;
	char url[HC_PATH_MAX];
	int r;

	r = check_spec(&vm->spec, true, err);
	if (r < 0)
		return r;
	r = file_url(dir, url, sizeof(url), err);
	if (r < 0)
		return r;
	r = ch_new_priv(vm, &ch, err);
	/* Jailed: restored from the VM's own copy in its runtime dir. */
	if (r >= 0 && ch->jail.on) {
		char copy[HC_PATH_MAX];

		r = hc_path_fmt(copy, sizeof(copy), err, "%s/" JAIL_RESTORE, vm->run_dir);
		if (r >= 0 &&
		    (mkdir(copy, 0700) < 0 || chown(copy, ch->jail.uid, ch->jail.gid) < 0))
			r = hc_error_errno(err, -errno, "restore: %s", copy);
		if (r >= 0)
			r = copy_flat(dir, copy, ch->jail.uid, ch->jail.gid, err);
		if (r >= 0)
			r = file_url(copy, url, sizeof(url), err);
	}
	if (r >= 0)
		r = spawn_vmm(vm, ch, err);
	/* The guest may also reconnect out (port 1024) once its vsock is back. */
	if (r >= 0)
		r = listen_agent(vm, ch, err);
	/* Only into a VMM without a VM; the snapshot's relative vsock and serial paths land in
	 * this VM's runtime directory. The restored VM is paused until vm.resume. */
	/* RestoreConfig; a networked snapshot's NIC moves to this VM's own TAP: net_fds
	 * [{id, num_fds}] with the fd passed along (Cloud Hypervisor v40+). */
	if (r >= 0 && !vm->spec.net_tap) {
		r = api_put_json(vm, ch, CH_API "vm.restore", json_pack("{s:s}", "source_url", url),
				 CH_SNAPSHOT_TIMEOUT_MS, err);
	} else if (r >= 0) {
		r = hc_rest_request_json_fds(ch->api, "PUT", CH_API "vm.restore",
					     json_pack("{s:s, s:[{s:s, s:i}]}", "source_url", url,
						       "net_fds", "id", CH_NET_ID, "num_fds", 1),
					     &vm->spec.net_tap_fd, 1, CH_SNAPSHOT_TIMEOUT_MS, err);
		if (r < 0)
			r = api_failed(vm, ch, r, err);
	}
	if (r >= 0 && !vm->restore_paused)
		r = api_put(vm, ch, CH_API "vm.resume", 0, err);
	if (r < 0) {
		hc_error_kind(err, HC_EK_VM);
		ch_destroy(vm);
		return r;
	}
	ch->started = true;
	if (vm->restore_paused) {
		ch->paused = true;
		ch->reconnect_on_resume = true;
		return 0;
	}
	ch_reconnect(vm, ch);
	return 0;
}

/* ---- the end ----------------------------------------------------------------------------- */

static void ch_destroy(struct hc_vm *vm)
{
	struct ch *ch = vm->priv;
	struct hc_error e = {0};
	char p[HC_PATH_MAX];

	if (!ch)
		return;
	/* The VM always ends from the host (DESIGN.md §3): a guest reset would only reboot it.
	 * vmm.shutdown ends the VMM cleanly; a kill if it does not answer or exit in time. */
	if (ch->api && ch->child.pid && !hc_child_poll(&ch->child)) {
		long status = 0;

		if (hc_rest_call(ch->api, "PUT", CH_API "vmm.shutdown", NULL, CH_SHUTDOWN_MS,
				 &status, NULL, &e) == 0 &&
		    status / 100 == 2)
			(void)hc_child_wait(&ch->child, CH_SHUTDOWN_MS);
		else
			hc_debug("cloud-hypervisor: vmm.shutdown: %s (status %ld); killing it",
				 e.message, status);
	}
	hc_child_stop(&ch->child, 0);
	hc_rest_free(ch->api);
	/* virtiofsd exits by itself once the VMM disconnects. */
	for (size_t i = 0; i < ch->n_fsd; i++)
		hc_virtiofsd_stop(&ch->fsd[i], 1000);
	free(ch->fsd);
	if (vm->agent_listen_fd >= 0)
		close(vm->agent_listen_fd);
	if (vm->agent_fd >= 0)
		close(vm->agent_fd);
	if (vm->death_fd >= 0)
		close(vm->death_fd);
	vm->agent_listen_fd = vm->agent_fd = vm->death_fd = -1;
	if (ch->api_sock[0])
		unlink(ch->api_sock);
	if (ch->vsock[0])
		hc_hvsock_unlink(ch->vsock, HC_BOOT_VSOCK_PORT_CONNECT);
	if (ch->log[0])
		unlink(ch->log);
	if (snprintf(p, sizeof(p), "%s/%s", vm->run_dir, CH_FS_LOG) < (int)sizeof(p))
		unlink(p);
	if (snprintf(p, sizeof(p), "%s/" JAIL_RESTORE, vm->run_dir) < (int)sizeof(p))
		hc_path_rm_rf(p, &e);
	/* Every jailed process is reaped: its cgroups go, its uid is free again. */
	hc_jail_vm_close(&ch->jail);
	hc_buf_free(&ch->events);
	free(ch);
	vm->priv = NULL;
}

static int ch_identity(char *buf, size_t n, struct hc_error *err)
{
	char bin[HC_PATH_MAX];
	int r = hc_binary_find(CH_ENV, CH_NAME, bin, sizeof(bin), err);

	return r < 0 ? r : hc_binary_identity(bin, buf, n, err);
}

const struct hc_vmm_ops hc_vmm_cloud_hypervisor_ops = {
	.name = "cloud-hypervisor",
	.caps = HC_CAP_NETWORK | HC_CAP_NET_TAP | HC_CAP_ROOTFS_DIR | HC_CAP_ROOTFS_BLOCK |
		HC_CAP_SHARED_DIRS | HC_CAP_CHANNEL_VSOCK | HC_CAP_SNAPSHOT | HC_CAP_RESTORE |
		HC_CAP_PAUSE | HC_CAP_GPU | HC_CAP_SNAPSHOT_NEEDS_BLOCK | HC_CAP_RESTORE_PAUSED,
	.probe = ch_probe,
	.start = ch_start,
	.check = ch_check,
	.pause = ch_pause,
	.resume = ch_resume,
	.snapshot = ch_snapshot,
	.restore = ch_restore,
	.identity = ch_identity,
	.destroy = ch_destroy,
};
