/* SPDX-License-Identifier: MIT */
/*
 * The Firecracker backend (DESIGN.md §3). Firecracker is a separate binary driven over its
 * REST API on a unix socket; the reference is its OpenAPI description
 * (src/firecracker/swagger/firecracker.yaml), restricted to what v1.10 and later document.
 *
 *   rootfs:   the cached ext4 image as a read-only virtio-blk drive (is_root_device false:
 *             the initramfs is root and hotcell-init mounts /dev/vda);
 *   channel:  hybrid vsock (docs/vsock.md): we listen on <uds>_1024 before the boot;
 *   console:  Firecracker writes the guest's serial port to its stdout: the console log;
 *   the end:  a guest reset ends Firecracker only with i8042 and reboot=k; the host kills it
 *             after the exit frame anyway (DESIGN.md §3).
 *
 * Paths Firecracker resolves itself (the vsock uds_path, the logger file) are relative to its
 * working directory, which is the VM's runtime directory (or the jailer's chroot, where the
 * jailer changes to "/"): a snapshot then restores into any fresh runtime directory, since
 * v1.10 cannot override the vsock path on load.
 */
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "jail/jail.h"
#include "net/net.h"
#include "proto/boot.h"
#include "vmm/binary.h"
#include "vmm/firecracker.h"
#include "vmm/hvsock.h"
#include "vmm/rest.h"
#include "vmm/vmm.h"

#define FC_API_SOCK "fc.sock"
#define FC_VSOCK "v.sock"
#define FC_LOG "fc.log"
#define FC_SOCKET_TIMEOUT_MS 10000
#define FC_MIN_MAJOR 1
#define FC_MIN_MINOR 10
#define FC_MAX_MOUNTS 6

/* Where a file the VM needs lives inside the jailer's chroot. */
#define FC_JAIL_KERNEL "vmlinux"
#define FC_JAIL_INITRD "initrd"
#define FC_JAIL_ROOTFS "rootfs.ext4"
#define FC_JAIL_SNAPDIR "snapshot"

struct fc {
	struct hc_child child;
	struct hc_rest *api;
	char bin[HC_PATH_MAX];
	char jailer[HC_PATH_MAX];
	char id[40];
	char root[HC_PATH_MAX];	     /* Firecracker's working directory, as the host sees it */
	char jail_base[HC_PATH_MAX]; /* --chroot-base-dir */
	char jail_dir[HC_PATH_MAX];  /* <base>/<exec-name>/<id>: removed on teardown */
	char api_sock[HC_PATH_MAX];  /* host paths */
	char vsock[HC_PATH_MAX];
	char restore_dir[HC_PATH_MAX]; /* restoring: the snapshot, bound into the chroot */
	char mounts[FC_MAX_MOUNTS][HC_PATH_MAX];
	size_t n_mounts;
	uid_t uid;
	gid_t gid;
	bool jailed;
	struct hc_jail_vm lease; /* jailed as root: the VM's own uid (the jailer does the rest) */
	bool started;
	bool paused;
	bool track_dirty;
	bool have_full_snapshot;
	bool reconnect_on_resume; /* restored paused: the vsock reconnect waits for the resume */
};

/* ---- small helpers ----------------------------------------------------------------------- */

static int find_jailer(char *buf, size_t n, struct hc_error *err)
{
	return hc_binary_find("HOTCELL_FIRECRACKER_JAILER", "jailer", buf, n, err);
}

/* Whether Firecracker runs under its jailer (docs/security.md): asked for (--jailer, or
 * HOTCELL_FIRECRACKER_JAILER=1|PATH), or by default as root, as every other VMM is jailed,
 * unless --no-jail or HOTCELL_FIRECRACKER_JAILER=0. With --network too: the TAP stays in
 * hotcell's network namespace (no --netns) and is handed to the jail's uid (tap_for_jail), so
 * the jailed Firecracker attaches it through the jail's /dev/net/tun without CAP_NET_ADMIN.
 * The default gives way, with *why_not saying so, only where no jailer is installed. */
static bool jailer_wanted(const struct hc_vm_spec *spec, const char **why_not)
{
	const char *v = getenv("HOTCELL_FIRECRACKER_JAILER");
	char buf[HC_PATH_MAX];

	if (why_not)
		*why_not = NULL;
	if ((spec && spec->jailer) || (v && *v && !hc_streq(v, "0")))
		return true;
	if ((v && hc_streq(v, "0")) || !spec || spec->no_jail || !hc_jail_default_on(NULL))
		return false;
	if (hc_binary_which("jailer", buf, sizeof(buf)) < 0) {
		if (why_not)
			*why_not = "firecracker: not jailed: Firecracker's jailer is not installed "
				   "(put it on PATH or set HOTCELL_FIRECRACKER_JAILER)";
		return false;
	}
	return true;
}

/* "Firecracker v1.10.1" -> 1, 10. */
static int parse_version(const char *line, unsigned *major, unsigned *minor)
{
	const char *v = strstr(line, " v");

	if (!v || sscanf(v + 2, "%u.%u", major, minor) != 2)
		return -EINVAL;
	return 0;
}

/* ---- probe ------------------------------------------------------------------------------- */

static int fc_probe_bin(char *bin, size_t bin_len, char *version, size_t version_len,
			struct hc_error *err)
{
	_cleanup_free_ char *out = NULL;
	unsigned major = 0, minor = 0;
	int r;

	r = hc_binary_find("HOTCELL_FIRECRACKER", "firecracker", bin, bin_len, err);
	if (r >= 0)
		r = hc_binary_version(bin, &out, err);
	if (r < 0)
		return r;
	if (parse_version(out, &major, &minor) < 0)
		return hc_error_setk(err, -EPROTO, HC_EK_BACKEND,
				     "%s --version: unexpected output '%.80s'", bin, out);
	if (major < FC_MIN_MAJOR || (major == FC_MIN_MAJOR && minor < FC_MIN_MINOR))
		return hc_error_setk(
			err, -EOPNOTSUPP, HC_EK_BACKEND,
			"%s is %s, older than v%d.%d, the oldest release hotcell drives", bin, out,
			FC_MIN_MAJOR, FC_MIN_MINOR);
	if (version && version_len)
		snprintf(version, version_len, "%s", strstr(out, " v") + 2);
	return 0;
}

/* What the host and the spec must offer, the binary aside. */
static int probe_host(const struct hc_vm_spec *spec, struct hc_error *err)
{
	char jailer[HC_PATH_MAX];
	int r;

	r = hc_binary_check_host(spec, "firecracker", "Firecracker", err);
	if (r < 0)
		return r;
	if (jailer_wanted(spec, NULL)) {
		r = find_jailer(jailer, sizeof(jailer), err);
		if (r < 0)
			return r;
		if (geteuid() != 0)
			return hc_error_setk(err, -EPERM, HC_EK_BACKEND,
					     "firecracker's jailer must be started as root");
	}
	return 0;
}

static int fc_probe(const struct hc_vm_spec *spec, char *version, size_t version_len,
		    struct hc_error *err)
{
	char bin[HC_PATH_MAX], ver[64] = "";
	int r;

	r = fc_probe_bin(bin, sizeof(bin), ver, sizeof(ver), err);
	if (r < 0)
		return r;
	if (version && version_len)
		snprintf(version, version_len, "%s", ver);
	/* Without a spec (hotcell doctor's "found"), only the binary is looked at. */
	if (!spec)
		return 0;
	return probe_host(spec, err);
}

/* ---- process start ----------------------------------------------------------------------- */

static int open_console(struct hc_vm *vm, struct hc_error *err)
{
	int fd = open(vm->console_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);

	if (fd < 0)
		return hc_error_errno(err, -errno, "open console log '%s'", vm->console_log);
	return fd;
}

/* Waits until path is a socket, on inotify events of its directory: no polling. Fails when
 * the process dies first or after timeout_ms. */
static int wait_for_socket(struct hc_vm *vm, struct fc *fc, const char *dir, const char *path,
			   int timeout_ms, struct hc_error *err)
{
	double deadline = hc_clock_ms() + timeout_ms;
	_cleanup_close_ int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	struct stat st;

	if (ino < 0)
		return hc_error_errno(err, -errno, "inotify_init1");
	if (inotify_add_watch(ino, dir, IN_CREATE | IN_MOVED_TO) < 0)
		return hc_error_errno(err, -errno, "inotify_add_watch %s", dir);
	for (;;) {
		struct pollfd p[3] = {{.fd = ino, .events = POLLIN},
				      {.fd = fc->child.pidfd, .events = POLLIN},
				      {.fd = hc_vm_cancel_fd(&vm->spec), .events = POLLIN}};
		char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		int r;

		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		if (hc_child_poll(&fc->child)) {
			char how[64];

			hc_child_status_str(fc->child.status, how, sizeof(how));
			hc_error_setk(err, -ECHILD, HC_EK_VM,
				      "firecracker %s before its API socket appeared", how);
			hc_vm_error_add_console(vm, err);
			return err->code;
		}
		r = poll(p, 3, hc_clock_left_ms(deadline));
		if (r < 0 && errno != EINTR)
			return hc_error_errno(err, -errno, "poll");
		if (r > 0 && p[2].revents)
			return hc_vm_cancel_error(err);
		if (r == 0) {
			hc_error_setk(err, -ETIMEDOUT, HC_EK_VM,
				      "firecracker's API socket %s did not appear within %d ms",
				      path, timeout_ms);
			hc_vm_error_add_console(vm, err);
			return err->code;
		}
		while (read(ino, ev, sizeof(ev)) > 0)
			;
	}
}

/* The socket file appears at bind() and accepts at listen(), a few instructions later; no
 * event marks the second, so a refused connect is retried a bounded number of times. */
static int wait_listening(struct fc *fc, struct hc_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fc->api_sock);
	for (int i = 0; i < 200; i++) {
		_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return hc_error_errno(err, -errno, "socket");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return 0;
		if (errno != ECONNREFUSED)
			return hc_error_errno(err, -errno, "connect %s", fc->api_sock);
		if (hc_child_poll(&fc->child))
			break;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	return hc_error_setk(err, -ECONNREFUSED, HC_EK_VM,
			     "firecracker's API socket %s refuses "
			     "connections",
			     fc->api_sock);
}

/* Makes src visible read-only at <root>/name: an empty file as the mount point, a bind mount,
 * then a read-only remount (the bind alone keeps the source's flags). The cache file itself is
 * never chown'ed or made writable. */
static int bind_ro(struct fc *fc, const char *src, const char *name, struct hc_error *err)
{
	char dst[HC_PATH_MAX];
	int r, fd;

	if (fc->n_mounts >= FC_MAX_MOUNTS)
		return hc_error_set(err, -E2BIG, "too many bind mounts");
	r = hc_path_fmt(dst, sizeof(dst), err, "%s/%s", fc->root, name);
	if (r < 0)
		return r;
	fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0400);
	if (fd < 0)
		return hc_error_errno(err, -errno, "create mount point %s", dst);
	close(fd);
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
		return hc_error_errno(err, -errno, "bind mount %s on %s", src, dst);
	snprintf(fc->mounts[fc->n_mounts++], HC_PATH_MAX, "%s", dst);
	if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
	    0)
		return hc_error_errno(err, -errno, "remount %s read-only", dst);
	return 0;
}

static int cgroup_version(void)
{
	return access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0 ? 2 : 1;
}

static unsigned env_uint(const char *name, unsigned def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long x;

	if (!v || !*v)
		return def;
	errno = 0;
	x = strtoul(v, &end, 10);
	return errno || *end || x > 0xfffffffful ? def : (unsigned)x;
}

/* <root>/snapshot in the chroot, owned by the uid Firecracker runs as: it writes snapshots
 * there and reads the restored one's files through it. */
static int jail_snapdir(const struct fc *fc, struct hc_error *err)
{
	char sd[HC_PATH_MAX];
	int r;

	r = hc_path_fmt(sd, sizeof(sd), err, "%s/%s", fc->root, FC_JAIL_SNAPDIR);
	if (r < 0)
		return r;
	if (mkdir(sd, 0700) < 0 && errno != EEXIST)
		return hc_error_errno(err, -errno, "mkdir %s", sd);
	if (chown(sd, fc->uid, fc->gid) < 0)
		return hc_error_errno(err, -errno, "chown %s", sd);
	return 0;
}

/* The snapshot's files as Firecracker names them (HC_PATH_MAX bytes each): inside the chroot
 * when jailed, else in dir (absolute). */
static int snapshot_paths(const struct fc *fc, const char *dir, char *state, char *mem,
			  struct hc_error *err)
{
	int r;

	if (fc->jailed)
		dir = "/" FC_JAIL_SNAPDIR;
	r = hc_path_fmt(state, HC_PATH_MAX, err, "%s/vmstate", dir);
	if (r < 0)
		return r;
	return hc_path_fmt(mem, HC_PATH_MAX, err, "%s/memory", dir);
}

/* The jailer's chroot: <state>/jailer/<exec-name>/<id>/root (the jailer's own layout), with
 * the kernel, initramfs and rootfs bound in read-only, owned by the uid Firecracker drops to
 * so it can create its sockets there. */
static int jail_prepare(struct hc_vm *vm, struct fc *fc, struct hc_error *err)
{
	char state[HC_PATH_MAX];
	const char *exec_name = strrchr(fc->bin, '/') ? strrchr(fc->bin, '/') + 1 : fc->bin;
	int r;

	r = hc_path_state_dir(state, sizeof(state), err);
	if (r < 0)
		return r;
	r = hc_path_fmt(fc->jail_base, sizeof(fc->jail_base), err, "%s/jailer", state);
	if (r < 0)
		return r;
	r = hc_path_fmt(fc->jail_dir, sizeof(fc->jail_dir), err, "%s/%s/%s", fc->jail_base,
			exec_name, fc->id);
	if (r < 0)
		return r;
	r = hc_path_fmt(fc->root, sizeof(fc->root), err, "%s/root", fc->jail_dir);
	if (r < 0)
		return r;
	r = hc_path_mkdir_p(fc->root, 0700, err);
	if (r < 0)
		return r;
	/* The VM's own uid from hotcell's lease (two VMs never share one), as for the VMMs
	 * hotcell jails itself. */
	fc->uid = env_uint("HOTCELL_FIRECRACKER_UID", fc->lease.on ? fc->lease.uid : geteuid());
	fc->gid = env_uint("HOTCELL_FIRECRACKER_GID", fc->lease.on ? fc->lease.gid : getegid());
	if (chown(fc->root, fc->uid, fc->gid) < 0)
		return hc_error_errno(err, -errno, "chown %s", fc->root);
	/* All before the jailer starts: its mount namespace is a copy taken then. */
	r = bind_ro(fc, vm->spec.kernel, FC_JAIL_KERNEL, err);
	if (r >= 0 && vm->spec.initrd)
		r = bind_ro(fc, vm->spec.initrd, FC_JAIL_INITRD, err);
	if (r >= 0 && vm->spec.rootfs_disk)
		r = bind_ro(fc, vm->spec.rootfs_disk, FC_JAIL_ROOTFS, err);
	if (r >= 0 && fc->restore_dir[0]) {
		char src[HC_PATH_MAX];

		r = jail_snapdir(fc, err);
		if (r < 0)
			return r;
		r = hc_path_fmt(src, sizeof(src), err, "%s/vmstate", fc->restore_dir);
		if (r >= 0)
			r = bind_ro(fc, src, FC_JAIL_SNAPDIR "/vmstate", err);
		if (r >= 0)
			r = hc_path_fmt(src, sizeof(src), err, "%s/memory", fc->restore_dir);
		if (r >= 0)
			r = bind_ro(fc, src, FC_JAIL_SNAPDIR "/memory", err);
	}
	return r;
}

/* Starts a fresh Firecracker (directly or under the jailer) and connects to its API. */
static int spawn_vmm(struct hc_vm *vm, struct fc *fc, struct hc_error *err)
{
	_cleanup_close_ int console = -1;
	char uid[16], gid[16], cgv[4], api_arg[HC_PATH_MAX];
	const char *argv[32];
	size_t n = 0;
	int r, timeout = vm->spec.boot_timeout_ms > 0 &&
					 vm->spec.boot_timeout_ms < FC_SOCKET_TIMEOUT_MS
				 ? vm->spec.boot_timeout_ms
				 : FC_SOCKET_TIMEOUT_MS;

	snprintf(fc->id, sizeof(fc->id), "hc-");
	hc_path_random_id(fc->id + 3, 16);
	if (fc->jailed) {
		r = jail_prepare(vm, fc, err);
		if (r < 0)
			return r;
	} else {
		r = hc_path_fmt(fc->root, sizeof(fc->root), err, "%s", vm->run_dir);
		if (r < 0)
			return r;
	}
	r = hc_path_fmt(fc->api_sock, sizeof(fc->api_sock), err, "%s/%s", fc->root, FC_API_SOCK);
	if (r < 0)
		return r;
	r = hc_path_fmt(fc->vsock, sizeof(fc->vsock), err, "%s/%s", fc->root, FC_VSOCK);
	if (r < 0)
		return r;
	if (strlen(fc->api_sock) > HC_SOCK_PATH_MAX || strlen(fc->vsock) + 6 > HC_SOCK_PATH_MAX)
		return hc_error_set(err, -ENAMETOOLONG, "socket paths under %s are too long",
				    fc->root);
	/* Firecracker refuses to bind over an existing file. */
	unlink(fc->api_sock);
	unlink(fc->vsock);

	console = open_console(vm, err);
	if (console < 0)
		return console;
	if (fc->jailed) {
		snprintf(uid, sizeof(uid), "%u", (unsigned)fc->uid);
		snprintf(gid, sizeof(gid), "%u", (unsigned)fc->gid);
		snprintf(cgv, sizeof(cgv), "%d", cgroup_version());
		snprintf(api_arg, sizeof(api_arg), "/%s", FC_API_SOCK);
		argv[n++] = fc->jailer;
		argv[n++] = "--id";
		argv[n++] = fc->id;
		argv[n++] = "--exec-file";
		argv[n++] = fc->bin;
		argv[n++] = "--uid";
		argv[n++] = uid;
		argv[n++] = "--gid";
		argv[n++] = gid;
		argv[n++] = "--chroot-base-dir";
		argv[n++] = fc->jail_base;
		argv[n++] = "--cgroup-version";
		argv[n++] = cgv;
		/* No --daemonize: hotcell keeps the child and its pidfd. No --netns: the TAP is
		 * in hotcell's namespace, owned by the jail's uid (put_network). */
		argv[n++] = "--";
		argv[n++] = "--api-sock";
		argv[n++] = api_arg;
	} else {
		argv[n++] = fc->bin;
		argv[n++] = "--api-sock";
		argv[n++] = fc->api_sock;
		argv[n++] = "--id";
		argv[n++] = fc->id;
	}
	argv[n] = NULL;

	struct hc_child_opts o = {
		.argv = argv,
		.stdin_fd = -1,
		.stdout_fd = console, /* the guest's serial console */
		.stderr_fd = console,
		.cwd = fc->root,
		.new_session = true,
	};
	r = hc_child_spawn(&fc->child, &o, err);
	if (r < 0)
		return hc_error_prefix(err, "start firecracker");
	hc_debug("firecracker: started %s (pid %d) in %s", argv[0], (int)fc->child.pid, fc->root);

	r = wait_for_socket(vm, fc, fc->root, fc->api_sock, timeout, err);
	if (r < 0)
		return r;
	r = wait_listening(fc, err);
	if (r < 0)
		return r;
	r = hc_rest_new(&fc->api, fc->api_sock, err);
	if (r < 0)
		return r;
	hc_rest_set_cancel_fd(fc->api, hc_vm_cancel_fd(&vm->spec));
	if (hc_log_enabled(HC_LOG_DEBUG)) {
		/* The logger writes to an existing file (or FIFO): create it first. */
		char logp[HC_PATH_MAX];
		_cleanup_close_ int lfd = -1;

		r = hc_path_fmt(logp, sizeof(logp), err, "%s/%s", fc->root, FC_LOG);
		if (r < 0)
			return r;
		lfd = open(logp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (lfd < 0)
			return hc_error_errno(err, -errno, "create %s", logp);
		if (fc->jailed && fchown(lfd, fc->uid, fc->gid) < 0)
			return hc_error_errno(err, -errno, "chown %s", logp);
		r = hc_rest_request(fc->api, "PUT", "/logger",
				    "{\"log_path\":\"" FC_LOG "\",\"level\":\"Debug\","
				    "\"show_level\":true,\"show_log_origin\":true}",
				    0, NULL, err);
		if (r < 0)
			return hc_error_prefix(err, "firecracker");
	}
	return 0;
}

/* METHOD endpoint with a jansson-built body (consumed). A VMM that died mid-request
 * explains itself on its console. */
static int put_json(struct hc_vm *vm, struct fc *fc, const char *method, const char *endpoint,
		    json_t *body, struct hc_error *err)
{
	int r = hc_rest_request_json(fc->api, method, endpoint, body, 0, NULL, err);

	if (r < 0) {
		hc_error_prefix(err, "firecracker");
		hc_error_kind(err, HC_EK_VM);
		if (hc_binary_note_exit(&fc->child, "firecracker", err))
			hc_vm_error_add_console(vm, err);
	}
	return r;
}

/* The path Firecracker sees for a host file: inside the chroot, or the absolute host path
 * (Firecracker runs in the runtime directory, so relative paths would break). */
static int vmm_path(const struct fc *fc, const char *host, const char *jail_name, char *buf,
		    size_t n, struct hc_error *err)
{
	char abs[PATH_MAX];

	if (fc->jailed)
		return hc_path_fmt(buf, n, err, "/%s", jail_name);
	if (!realpath(host, abs))
		return hc_error_errno(err, -errno, "'%s'", host);
	return hc_path_fmt(buf, n, err, "%s", abs);
}

static bool cmdline_has(const char *cmdline, const char *key)
{
	size_t k = strlen(key);
	const char *p = cmdline;

	while (p && (p = strstr(p, key))) {
		if ((p == cmdline || p[-1] == ' ') && p[k] == '=')
			return true;
		p += k;
	}
	return false;
}

/* --network inet|full: the TAP src/net made, by name (Firecracker opens it itself; the VM's
 * holder keeps no fd on it). Firecracker's OpenAPI: PUT /network-interfaces/{iface_id} with a
 * NetworkInterface {iface_id, host_dev_name, guest_mac}. Under --jailer the TAP stays in
 * hotcell's network namespace, where its filter, NAT, resolver and forwarder are (no
 * --netns, which would need a veth pair and a second NAT per VM): the jailer makes the jail's
 * /dev/net/tun for the jail's uid (docs/jailer.md), and the TAP is handed to that uid
 * (TUNSETOWNER), so the jailed Firecracker can attach it without CAP_NET_ADMIN. */
static int tap_for_jail(struct fc *fc, const char *tap, struct hc_error *err)
{
	int r;

	if (!fc->jailed)
		return 0;
	r = hc_net_tap_set_owner(tap, fc->uid, fc->gid, err);
	return r < 0 ? hc_error_prefix(err, "firecracker: the jail's TAP") : 0;
}

static int put_network(struct hc_vm *vm, struct fc *fc, struct hc_error *err)
{
	const struct hc_vm_spec *s = &vm->spec;
	int r;

	if (!s->net_tap)
		return 0;
	r = tap_for_jail(fc, s->net_tap, err);
	if (r < 0)
		return r;
	return put_json(vm, fc, "PUT", "/network-interfaces/eth0",
			json_pack("{s:s, s:s, s:s}", "iface_id", "eth0", "host_dev_name",
				  s->net_tap, "guest_mac", s->net_mac ? s->net_mac : ""),
			err);
}

static int configure(struct hc_vm *vm, struct fc *fc, struct hc_error *err)
{
	const struct hc_vm_spec *s = &vm->spec;
	char kernel[HC_PATH_MAX], initrd[HC_PATH_MAX], rootfs[HC_PATH_MAX], args[2048];
	const char *extra = s->cmdline ? s->cmdline : "";
	const char *snap = getenv("HOTCELL_FIRECRACKER_SNAPSHOT");
	json_t *j;
	int r;

	fc->track_dirty = hc_streq(snap, "diff");
	/* Firecracker's documented limits: 1..32 vCPUs, 1 or an even count with SMT (off). */
	j = json_pack("{s:I, s:I, s:b, s:b}", "vcpu_count", (json_int_t)(s->cpus ? s->cpus : 1),
		      "mem_size_mib", (json_int_t)(s->memory_mib ? s->memory_mib : 256), "smt", 0,
		      "track_dirty_pages", fc->track_dirty);
	r = put_json(vm, fc, "PUT", "/machine-config", j, err);
	if (r < 0)
		return r;

	r = vmm_path(fc, s->kernel, FC_JAIL_KERNEL, kernel, sizeof(kernel), err);
	if (r < 0)
		return r;
	r = vmm_path(fc, s->initrd, FC_JAIL_INITRD, initrd, sizeof(initrd), err);
	if (r < 0)
		return r;
	/* The serial console is the console log; reboot=k makes a guest reset end Firecracker
	 * (i8042); panic=-1 turns a panic into that reset; no PCI (virtio-mmio); quiet: a serial
	 * console costs boot time, and panics print anyway. */
	if ((size_t)snprintf(
		    args, sizeof(args), "console=ttyS0 reboot=k panic=-1 pci=off%s%s%s%s%s%s",
		    hc_log_enabled(HC_LOG_DEBUG) ? "" : " quiet",
		    cmdline_has(extra, HC_BOOT_KEY_ROOT) ? "" : " " HC_BOOT_KEY_ROOT "=block",
		    cmdline_has(extra, HC_BOOT_KEY_CHANNEL) ? "" : " " HC_BOOT_KEY_CHANNEL "=vsock",
		    hc_log_enabled(HC_LOG_DEBUG) && !cmdline_has(extra, HC_BOOT_KEY_DEBUG)
			    ? " " HC_BOOT_KEY_DEBUG "=1"
			    : "",
		    *extra ? " " : "", extra) >= sizeof(args))
		return hc_error_set(err, -E2BIG, "kernel command line too long");
	j = json_pack("{s:s, s:s, s:s}", "kernel_image_path", kernel, "initrd_path", initrd,
		      "boot_args", args);
	r = put_json(vm, fc, "PUT", "/boot-source", j, err);
	if (r < 0)
		return r;

	r = vmm_path(fc, s->rootfs_disk, FC_JAIL_ROOTFS, rootfs, sizeof(rootfs), err);
	if (r < 0)
		return r;
	j = json_pack("{s:s, s:s, s:b, s:b}", "drive_id", "rootfs", "path_on_host", rootfs,
		      "is_root_device", 0, "is_read_only", 1);
	r = put_json(vm, fc, "PUT", "/drives/rootfs", j, err);
	if (r < 0)
		return r;

	r = put_network(vm, fc, err);
	if (r < 0)
		return r;
	j = json_pack("{s:I, s:s}", "guest_cid", (json_int_t)HC_BOOT_VSOCK_GUEST_CID, "uds_path",
		      FC_VSOCK);
	return put_json(vm, fc, "PUT", "/vsock", j, err);
}

/* The guest connects out to CID 2 port 1024: Firecracker forwards it to <uds>_1024, which
 * must be listening before the boot. */
static int listen_agent(struct hc_vm *vm, struct fc *fc, struct hc_error *err)
{
	int fd = hc_hvsock_listen(fc->vsock, HC_BOOT_VSOCK_PORT_CONNECT, err);

	if (fd < 0)
		return fd;
	if (fc->jailed) {
		char p[HC_PATH_MAX];
		int r = hc_hvsock_port_path(p, sizeof(p), fc->vsock, HC_BOOT_VSOCK_PORT_CONNECT,
					    err);

		/* Firecracker runs as fc->uid and must be able to connect. */
		if (r >= 0 && chown(p, fc->uid, fc->gid) < 0)
			r = hc_error_errno(err, -errno, "chown %s", p);
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	vm->agent_listen_fd = fd;
	return 0;
}

static void fc_destroy(struct hc_vm *vm);

static int fc_new_priv(struct hc_vm *vm, struct fc **ret, struct hc_error *err)
{
	struct fc *fc;
	int r;

	if (vm->priv)
		return hc_error_set(err, -EALREADY, "firecracker: VM already started");
	fc = calloc(1, sizeof(*fc));
	if (!fc)
		return hc_error_set(err, -ENOMEM, "out of memory");
	fc->child = (struct hc_child)HC_CHILD_INIT;
	fc->lease = (struct hc_jail_vm)HC_JAIL_VM_INIT;
	vm->priv = fc;
	r = fc_probe_bin(fc->bin, sizeof(fc->bin), NULL, 0, err);
	if (r < 0)
		return r;
	r = probe_host(&vm->spec, err);
	if (r < 0)
		return r;
	const char *why_not;
	fc->jailed = jailer_wanted(&vm->spec, &why_not);
	if (why_not)
		hc_warn("%s", why_not);
	if (fc->jailed) {
		r = find_jailer(fc->jailer, sizeof(fc->jailer), err);
		if (r < 0)
			return r;
		/* Its seccomp stays Firecracker's own; hotcell only leases the uid. */
		if (geteuid() == 0)
			r = hc_jail_vm_open(&fc->lease, true, vm->run_dir, vm->spec.memory_mib,
					    vm->spec.cpus, err);
		if (r < 0)
			return r;
	}
	vm->jailed = fc->jailed;
	*ret = fc;
	return 0;
}

static int check_spec(const struct hc_vm_spec *s, struct hc_error *err)
{
	/* Volumes, devices, a directory rootfs, the serial channel: refused by caps (vmm.c). */
	if (!s->kernel || !s->initrd || !s->rootfs_disk)
		return hc_error_setk(err, -EINVAL, HC_EK_INTERNAL,
				     "firecracker needs a kernel, an initramfs and an ext4 image");
	return 0;
}

static int fc_start(struct hc_vm *vm, struct hc_error *err)
{
	struct fc *fc = NULL;
	int r;

	r = check_spec(&vm->spec, err);
	if (r < 0)
		return r;
	r = fc_new_priv(vm, &fc, err);
	if (r >= 0)
		r = spawn_vmm(vm, fc, err);
	if (r >= 0)
		r = configure(vm, fc, err);
	if (r >= 0)
		r = listen_agent(vm, fc, err);
	if (r >= 0)
		r = put_json(vm, fc, "PUT", "/actions",
			     json_pack("{s:s}", "action_type", "InstanceStart"), err);
	if (r < 0) {
		hc_error_kind(err, HC_EK_VM);
		fc_destroy(vm);
		return r;
	}
	fc->started = true;
	vm->death_fd = fcntl(fc->child.pidfd, F_DUPFD_CLOEXEC, 3);
	return 0;
}

static int fc_check(struct hc_vm *vm, struct hc_error *err)
{
	struct fc *fc = vm->priv;
	char how[64];

	if (!fc)
		return hc_error_setk(err, -ECHILD, HC_EK_VM, "firecracker is not running");
	if (!hc_child_poll(&fc->child))
		return 0;
	hc_child_status_str(fc->child.status, how, sizeof(how));
	hc_error_setk(err, -ECHILD, HC_EK_VM, "firecracker %s", how);
	hc_vm_error_add_console(vm, err);
	return err->code;
}

static int set_state(struct hc_vm *vm, const char *state, struct hc_error *err)
{
	struct fc *fc = vm->priv;
	int r;

	if (!fc || !fc->started)
		return hc_error_setk(err, -ESRCH, HC_EK_VM, "firecracker: the VM is not running");
	r = put_json(vm, fc, "PATCH", "/vm", json_pack("{s:s}", "state", state), err);
	if (r < 0)
		return r;
	fc->paused = hc_streq(state, "Paused");
	return 0;
}

static int fc_pause(struct hc_vm *vm, struct hc_error *err)
{
	return set_state(vm, "Paused", err);
}

static void fc_reconnect(struct hc_vm *vm, struct fc *fc);

static int fc_resume(struct hc_vm *vm, struct hc_error *err)
{
	struct fc *fc = vm->priv;
	int r = set_state(vm, "Resumed", err);

	if (r >= 0 && fc && fc->reconnect_on_resume) {
		fc->reconnect_on_resume = false;
		fc_reconnect(vm, fc);
	}
	return r;
}

/* rename(), or a copy when dir is on another file system than the chroot. */
static int move_file(const char *from, const char *to, struct hc_error *err)
{
	_cleanup_close_ int in = -1, out = -1;
	struct stat st;

	if (rename(from, to) == 0)
		return 0;
	if (errno != EXDEV)
		return hc_error_errno(err, -errno, "rename %s to %s", from, to);
	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0)
		return hc_error_errno(err, -errno, "open %s", from);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return hc_error_errno(err, -errno, "create %s", to);
	for (off_t left = st.st_size; left > 0;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
		if (n <= 0)
			return hc_error_errno(err, n < 0 ? -errno : -EIO, "copy %s", from);
		left -= n;
	}
	unlink(from);
	return 0;
}

static int fc_snapshot(struct hc_vm *vm, const char *dir, struct hc_error *err)
{
	struct fc *fc = vm->priv;
	char state[HC_PATH_MAX], mem[HC_PATH_MAX], adir[PATH_MAX];
	const char *type = "Full";
	int r;

	if (!fc || !fc->started)
		return hc_error_setk(err, -ESRCH, HC_EK_VM, "firecracker: the VM is not running");
	if (!fc->paused)
		return hc_error_setk(err, -EBUSY, HC_EK_VM,
				     "firecracker: a snapshot needs a paused VM (pause it first)");
	r = hc_path_mkdir_p(dir, 0700, err);
	if (r < 0)
		return r;
	if (!realpath(dir, adir))
		return hc_error_errno(err, -errno, "'%s'", dir);
	/* A diff only holds the pages dirtied since the previous snapshot: the first is Full. */
	if (fc->track_dirty && fc->have_full_snapshot)
		type = "Diff";
	r = fc->jailed ? jail_snapdir(fc, err) : 0;
	if (r >= 0)
		r = snapshot_paths(fc, adir, state, mem, err);
	if (r < 0)
		return r;
	r = put_json(vm, fc, "PUT", "/snapshot/create",
		     json_pack("{s:s, s:s, s:s}", "snapshot_type", type, "snapshot_path", state,
			       "mem_file_path", mem),
		     err);
	if (r < 0)
		return r;
	if (fc->jailed) {
		static const char *const names[] = {"vmstate", "memory"};

		for (size_t i = 0; i < HC_ARRAY_SIZE(names); i++) {
			char from[HC_PATH_MAX], to[HC_PATH_MAX];

			r = hc_path_fmt(from, sizeof(from), err, "%s/%s/%s", fc->root,
					FC_JAIL_SNAPDIR, names[i]);
			if (r >= 0)
				r = hc_path_fmt(to, sizeof(to), err, "%s/%s", adir, names[i]);
			if (r >= 0)
				r = move_file(from, to, err);
			if (r < 0)
				return r;
		}
	}
	fc->have_full_snapshot = true;
	return 0;
}

/* Firecracker resets vsock connections on restore: reconnect from the host to the port
 * hotcell-init listens on, once the guest runs. When nothing listens yet, the guest connects
 * out instead (agent_listen_fd). */
static void fc_reconnect(struct hc_vm *vm, struct fc *fc)
{
	int fd = hc_hvsock_reconnect(
		fc->vsock, HC_BOOT_VSOCK_PORT_LISTEN,
		vm->spec.boot_timeout_ms > 0 ? vm->spec.boot_timeout_ms : 10000, "firecracker");

	if (fd >= 0)
		vm->agent_fd = fd;
}

static int fc_restore(struct hc_vm *vm, const char *dir, struct hc_error *err)
{
	struct fc *fc = NULL;
	char state[HC_PATH_MAX], mem[HC_PATH_MAX], adir[PATH_MAX];
	int r;

	r = check_spec(&vm->spec, err);
	if (r < 0)
		return r;
	if (!realpath(dir, adir))
		return hc_error_errno(err, -errno, "snapshot '%s'", dir);
	r = fc_new_priv(vm, &fc, err);
	if (r >= 0)
		r = hc_path_fmt(fc->restore_dir, sizeof(fc->restore_dir), err, "%s", adir);
	if (r >= 0)
		r = spawn_vmm(vm, fc, err);
	if (r < 0)
		goto fail;
	r = snapshot_paths(fc, adir, state, mem, err);
	if (r < 0)
		goto fail;
	/* The guest may also reconnect out (port 1024) after the vsock reset. */
	r = listen_agent(vm, fc, err);
	if (r < 0)
		goto fail;
	/* Only on a fresh process; the vsock uds_path in the snapshot is relative to the
	 * working directory, so it lands in this VM's directory. */
	/* A networked snapshot's NIC moves to this VM's own TAP: SnapshotLoadParams'
	 * network_overrides [{iface_id, host_dev_name}] (the MAC is the guest's to change,
	 * NETCONF). */
	json_t *body = json_pack("{s:s, s:{s:s, s:s}, s:b}", "snapshot_path", state, "mem_backend",
				 "backend_type", "File", "backend_path", mem, "resume_vm",
				 !vm->restore_paused);
	if (body && vm->spec.net_tap) {
		r = tap_for_jail(fc, vm->spec.net_tap, err);
		if (r < 0) {
			json_decref(body);
			goto fail;
		}
		json_object_set_new(body, "network_overrides",
				    json_pack("[{s:s, s:s}]", "iface_id", "eth0", "host_dev_name",
					      vm->spec.net_tap));
	}
	r = put_json(vm, fc, "PUT", "/snapshot/load", body, err);
	if (r < 0)
		goto fail;
	fc->started = true;
	vm->death_fd = fcntl(fc->child.pidfd, F_DUPFD_CLOEXEC, 3);
	if (vm->restore_paused) {
		fc->paused = true;
		fc->reconnect_on_resume = true;
		return 0;
	}
	fc_reconnect(vm, fc);
	return 0;

fail:
	hc_error_kind(err, HC_EK_VM);
	fc_destroy(vm);
	return r;
}

static void fc_destroy(struct hc_vm *vm)
{
	struct fc *fc = vm->priv;
	struct hc_error e = {0};
	char p[HC_PATH_MAX];

	if (!fc)
		return;
	/* The VM always ends from the host (DESIGN.md §3). */
	hc_child_stop(&fc->child, 0);
	hc_rest_free(fc->api);
	if (vm->agent_listen_fd >= 0)
		close(vm->agent_listen_fd);
	if (vm->agent_fd >= 0)
		close(vm->agent_fd);
	if (vm->death_fd >= 0)
		close(vm->death_fd);
	vm->agent_listen_fd = vm->agent_fd = vm->death_fd = -1;
	if (fc->api_sock[0])
		unlink(fc->api_sock);
	if (fc->vsock[0])
		hc_hvsock_unlink(fc->vsock, HC_BOOT_VSOCK_PORT_CONNECT);
	if (!fc->jailed && fc->root[0]) {
		snprintf(p, sizeof(p), "%s/%s", fc->root, FC_LOG);
		unlink(p);
	}
	while (fc->n_mounts > 0) {
		const char *m = fc->mounts[--fc->n_mounts];
		if (umount2(m, MNT_DETACH) < 0)
			hc_warn("firecracker: umount %s: %s", m, strerror(errno));
	}
	if (fc->jailed && fc->jail_dir[0]) {
		if (hc_path_rm_rf(fc->jail_dir, &e) < 0)
			hc_warn("firecracker: remove %s: %s", fc->jail_dir, e.message);
	}
	hc_jail_vm_close(&fc->lease);
	free(fc);
	vm->priv = NULL;
}

static int fc_identity(char *buf, size_t n, struct hc_error *err)
{
	char bin[HC_PATH_MAX];
	int r = hc_binary_find("HOTCELL_FIRECRACKER", "firecracker", bin, sizeof(bin), err);

	return r < 0 ? r : hc_binary_identity(bin, buf, n, err);
}

const struct hc_vmm_ops hc_vmm_firecracker_ops = {
	.name = "firecracker",
	.caps = HC_CAP_NETWORK | HC_CAP_NET_TAP | HC_CAP_ROOTFS_BLOCK | HC_CAP_CHANNEL_VSOCK |
		HC_CAP_SNAPSHOT | HC_CAP_RESTORE | HC_CAP_PAUSE | HC_CAP_RESTORE_PAUSED,
	.probe = fc_probe,
	.start = fc_start,
	.check = fc_check,
	.pause = fc_pause,
	.resume = fc_resume,
	.snapshot = fc_snapshot,
	.restore = fc_restore,
	.identity = fc_identity,
	.destroy = fc_destroy,
};
