/* SPDX-License-Identifier: MIT */
/*
 * The libkrun backend (DESIGN.md §3). libkrun is a library, not a program: its C API
 * (include/libkrun.h upstream, floor 1.18) configures a context, and krun_start_enter() turns
 * the calling process into the VM and never returns on success: the VMM calls exit() with the
 * workload's exit code when the guest ends. So hotcell forks a worker that configures the
 * context and enters the VM; the parent keeps the worker's pidfd and talks the normal protocol
 * over the agent socket.
 *
 *   library:  dlopen("libkrun.so.1") or $HOTCELL_LIBKRUN, once; every symbol resolved at probe
 *             time into a typed pointer declared from the header's prototypes. A missing
 *             mandatory symbol makes libkrun "not usable: missing symbol X"; an optional one
 *             missing refuses only the feature that needs it, naming it.
 *   root:     a small staging directory in the VM's runtime dir holding hotcell-init (libkrun's
 *             own init, /init.krun, is injected by libkrun and looks the workload up inside the
 *             shared root; the image has no hotcell-init), served read-only under libkrun's
 *             root tag "/dev/root" (krun_add_virtiofs3, the header's documented alternative to
 *             krun_set_root for a read-only root). Its mount points exist beforehand, since the
 *             guest cannot create them on a read-only root.
 *   image:    the cached tree as a second read-only virtio-fs tag (hcroot) that hotcell-init
 *             mounts under its tmpfs overlay and switches into; -v volumes as hcvolN.
 *   boot:     krun_set_exec("/hotcell-init") with the boot contract's keys in its environment
 *             (HOTCELL_ROOT, HOTCELL_CHANNEL, HOTCELL_VOLn, src/proto/boot.h): libkrun passes no
 *             kernel command line to its workload. hotcell-init runs as the child of libkrun's
 *             init, as a subreaper, with /proc, /sys and /dev already mounted.
 *   channel:  krun_add_vsock_port(1024 -> a host unix socket): the guest connects out on port
 *             1024 and libkrun connects to that socket, on which we listen before the start, so
 *             nothing polls.
 *   network:  none -> krun_disable_implicit_vsock + krun_add_vsock(0): no TSI at all;
 *             full -> krun_add_vsock(KRUN_TSI_HIJACK_INET) (the host's network through
 *             TSI); inet is refused, libkrun has no egress filter to keep its promise.
 *             krun_set_port_map is always called with an array, empty without -p: left
 *             unset, libkrun exposes every listening guest port on the host.
 *   the end:  the worker exits with hotcell-init's exit code (HC_BOOT_EXIT_OK after the host's
 *             shutdown frame, HC_BOOT_EXIT_FAILURE when the guest could not be set up; libkrun's
 *             init reports 125/126/127 when it cannot run hotcell-init at all). The host ends
 *             the VM anyway: destroy() reaps the worker, killing it after a short grace. A worker
 *             that dies without an exit frame is a VM failure, with libkrun's last words.
 *   kernel:   libkrunfw's, or --kernel through krun_set_kernel (ELF vmlinux). On a PVM host
 *             libkrunfw's kernel cannot boot (FACTS.md): refused at once unless --kernel.
 *
 * The worker must not exec (krun_start_enter runs in the process that configured the
 * context): hc_child_spawn() starts it with its run hook in place of the exec, so it gets the
 * same fds, signals, parent-death signal and jail as every other child, and is reaped the
 * same way. The library and libkrunfw are loaded in hotcell before the fork (dlopen of an
 * already loaded soname maps nothing), and bound into the jail's root besides.
 *
 * The jail (src/jail, kind "libkrun"; docs/security.md), on by default as root: new mount,
 * PID (the worker is PID 1 of it), ipc, uts and, without --network, net namespaces; a root
 * holding libkrun and its libraries, libkrunfw, the kernel, the shares it serves and the
 * runtime dir; uid 0, since libkrun serves virtio-fs in-process and must act as any guest
 * uid, with only a file server's capabilities; no_new_privs and libkrun's seccomp list.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "jail/jail.h"
#include "proto/boot.h"
#include "vmm/accel.h"
#include "vmm/binary.h"
#include "vmm/libkrun.h"
#include "vmm/unixsock.h"

/* From include/libkrun.h. */
#define KRUN_FS_ROOT_TAG "/dev/root"
#define KRUN_TSI_HIJACK_INET (1u << 0)
#define KRUN_KERNEL_FORMAT_ELF 1u
#define KRUN_LOG_LEVEL_ERROR 1u
#define KRUN_LOG_LEVEL_DEBUG 4u

#define LK_SONAME "libkrun.so.1"
#define LK_MIN_MAJOR 1
#define LK_MIN_MINOR 18
#define LK_STAGING "root"
#define LK_AGENT_SOCK "agent.sock"
#define LK_LOG "krun.log"
#define LK_INIT_PATH "/hotcell-init"
/* The worker's own status when its configuration failed before krun_start_enter (the reason
 * is on the status pipe; the parent never reports this as the command's code). */
#define LK_WORKER_CONFIG_FAILED 125
/* After the shutdown frame, how long the worker gets to end by itself (hotcell-init exits,
 * libkrun's init reports the code, the VMM exits) before it is killed. */
#define LK_STOP_GRACE_MS 5000
#define LK_MAX_ENV 80

/* ---- the API, as include/libkrun.h declares it ------------------------------------------ */

struct krun_api {
	int32_t (*set_log_level)(uint32_t level);
	int32_t (*create_ctx)(void);
	int32_t (*free_ctx)(uint32_t ctx_id);
	int32_t (*set_vm_config)(uint32_t ctx_id, uint8_t num_vcpus, uint32_t ram_mib);
	int32_t (*add_virtiofs)(uint32_t ctx_id, const char *c_tag, const char *c_path);
	int32_t (*add_virtiofs3)(uint32_t ctx_id, const char *c_tag, const char *c_path,
				 uint64_t shm_size, bool read_only);
	int32_t (*add_vsock_port)(uint32_t ctx_id, uint32_t port, const char *c_filepath);
	int32_t (*add_vsock_port2)(uint32_t ctx_id, uint32_t port, const char *c_filepath,
				   bool listen);
	int32_t (*disable_implicit_vsock)(uint32_t ctx_id);
	int32_t (*add_vsock)(uint32_t ctx_id, uint32_t tsi_features);
	int32_t (*set_port_map)(uint32_t ctx_id, const char *const port_map[]);
	int32_t (*set_console_output)(uint32_t ctx_id, const char *c_filepath);
	int32_t (*set_workdir)(uint32_t ctx_id, const char *workdir_path);
	int32_t (*set_exec)(uint32_t ctx_id, const char *exec_path, const char *const argv[],
			    const char *const envp[]);
	int32_t (*set_kernel)(uint32_t ctx_id, const char *kernel_path, uint32_t kernel_format,
			      const char *initramfs, const char *cmdline);
	int32_t (*start_enter)(uint32_t ctx_id);
};

struct sym {
	const char *name;
	size_t off;
	const char *feature; /* NULL: mandatory (the 1.18 floor) */
};

#define SYM(n, f)                                                                                  \
	{                                                                                          \
		"krun_" #n, offsetof(struct krun_api, n), f                                        \
	}
static const struct sym syms[] = {
	SYM(set_log_level, NULL),
	SYM(create_ctx, NULL),
	SYM(free_ctx, NULL),
	SYM(set_vm_config, NULL),
	SYM(add_virtiofs, NULL),
	/* 1.18: read-only virtio-fs (the root and the image are never writable by the guest). */
	SYM(add_virtiofs3, NULL),
	SYM(add_vsock_port, NULL),
	SYM(add_vsock_port2, "vsock ports with a listen flag (krun_add_vsock_port2)"),
	/* 1.18: the TSI off switch. */
	SYM(disable_implicit_vsock, NULL),
	SYM(add_vsock, NULL),
	SYM(set_port_map, NULL),
	SYM(set_console_output, NULL),
	SYM(set_workdir, NULL),
	SYM(set_exec, NULL),
	SYM(set_kernel, "--kernel (krun_set_kernel)"),
	SYM(start_enter, NULL),
};
#undef SYM

/* One loaded library per process (dlopen once; reloaded only when HOTCELL_LIBKRUN names
 * another file, which tests do). Not thread-safe, as hotcell's run path is single-threaded. */
static struct {
	void *handle;
	void *fw_handle;	   /* libkrunfw, kept loaded for the worker (find_libkrunfw) */
	char fw_path[HC_PATH_MAX]; /* its file, for the jail */
	char path[HC_PATH_MAX];	   /* what was dlopen'ed */
	char version[64];	   /* "" when unknown */
	struct krun_api api;
	bool ok;
	struct hc_error why; /* when !ok */
} lib;

int hc_libkrun_version_from_name(const char *name, char *buf, size_t n)
{
	const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
	const char *v;
	unsigned a, b, c;
	int end = 0;

	if (!hc_startswith(base, "libkrun.so."))
		return -EINVAL;
	v = base + strlen("libkrun.so.");
	if (sscanf(v, "%u.%u.%u%n", &a, &b, &c, &end) != 3 || v[end])
		return -EINVAL;
	snprintf(buf, n, "%u.%u.%u", a, b, c);
	return 0;
}

/* libkrun.so.1 is a symlink to libkrun.so.1.X.Y: follow the chain from the file the loader
 * picked and take the first name that carries a full version. */
static void find_version(void *handle, char *buf, size_t n)
{
	struct link_map *lm = NULL;
	char cur[HC_PATH_MAX], next[HC_PATH_MAX];

	buf[0] = 0;
	if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) < 0 || !lm || !lm->l_name)
		return;
	snprintf(cur, sizeof(cur), "%s", lm->l_name);
	for (int i = 0; i < 8; i++) {
		ssize_t len;

		if (hc_libkrun_version_from_name(cur, buf, n) == 0)
			return;
		len = readlink(cur, next, sizeof(next) - 1);
		if (len <= 0)
			break;
		next[len] = 0;
		if (next[0] == '/') {
			snprintf(cur, sizeof(cur), "%s", next);
		} else {
			char *slash = strrchr(cur, '/');
			char dir[HC_PATH_MAX];

			snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - cur) : 1,
				 slash ? cur : ".");
			if ((size_t)snprintf(cur, sizeof(cur), "%s/%s", dir, next) >= sizeof(cur))
				break;
		}
	}
	buf[0] = 0;
}

static int load(struct hc_error *err)
{
	const char *env = getenv("HOTCELL_LIBKRUN");
	const char *want = env && *env ? env : LK_SONAME;
	const char *dl;
	unsigned major = 0, minor = 0;

	if (lib.handle && hc_streq(lib.path, want)) {
		if (lib.ok)
			return 0;
		*err = lib.why;
		return err->code;
	}
	if (lib.handle)
		dlclose(lib.handle);
	if (lib.fw_handle)
		dlclose(lib.fw_handle);
	memset(&lib, 0, sizeof(lib));
	snprintf(lib.path, sizeof(lib.path), "%s", want);
	/* RTLD_NOW: an unresolvable library fails here, not in the middle of a run. */
	lib.handle = dlopen(want, RTLD_NOW | RTLD_LOCAL);
	if (!lib.handle) {
		dl = dlerror();
		hc_error_setk(
			err, -ENOENT, HC_EK_BACKEND, "libkrun not usable: cannot load %s: %s%s",
			want, dl ? dl : "unknown error",
			env && *env ? ""
				    : " (install libkrun 1.18 or later, or set HOTCELL_LIBKRUN)");
		/* Remember the failure for this path without keeping a handle. */
		lib.why = *err;
		lib.handle = NULL;
		lib.path[0] = 0;
		return err->code;
	}
	for (size_t i = 0; i < HC_ARRAY_SIZE(syms); i++) {
		void *p = dlsym(lib.handle, syms[i].name);

		if (!p && !syms[i].feature) {
			hc_error_setk(err, -ENOSYS, HC_EK_BACKEND,
				      "libkrun not usable: missing symbol %s in %s (hotcell needs "
				      "libkrun %d.%d or later)",
				      syms[i].name, want, LK_MIN_MAJOR, LK_MIN_MINOR);
			lib.why = *err;
			return err->code;
		}
		memcpy((char *)&lib.api + syms[i].off, &p, sizeof(p));
	}
	find_version(lib.handle, lib.version, sizeof(lib.version));
	if (lib.version[0] && sscanf(lib.version, "%u.%u", &major, &minor) == 2 &&
	    (major < LK_MIN_MAJOR || (major == LK_MIN_MAJOR && minor < LK_MIN_MINOR))) {
		hc_error_setk(err, -EOPNOTSUPP, HC_EK_BACKEND,
			      "libkrun not usable: %s is version %s, older than %d.%d", want,
			      lib.version, LK_MIN_MAJOR, LK_MIN_MINOR);
		lib.why = *err;
		return err->code;
	}
	lib.ok = true;
	return 0;
}

/* An optional symbol the loaded version lacks: the feature is refused, named. */
static int need(const void *fn, const char *name, struct hc_error *err)
{
	if (fn)
		return 0;
	for (size_t i = 0; i < HC_ARRAY_SIZE(syms); i++)
		if (hc_streq(syms[i].name, name))
			return hc_error_setk(err, -EOPNOTSUPP, HC_EK_BACKEND,
					     "the loaded libkrun (%s%s%s) does not support %s",
					     lib.path, lib.version[0] ? ", version " : "",
					     lib.version, syms[i].feature);
	return hc_error_setk(err, -EOPNOTSUPP, HC_EK_BACKEND, "libkrun lacks %s", name);
}

/* ---- probe ------------------------------------------------------------------------------- */

/* libkrunfw carries the kernel libkrun boots when no --kernel is given. */
static int find_libkrunfw(struct hc_error *err)
{
	static const char *const names[] = {"libkrunfw.so.5", "libkrunfw.so.4"};
	const char *env = getenv("HOTCELL_LIBKRUNFW");

	if (env && *env) {
		if (access(env, R_OK) < 0)
			return hc_error_errno(err, -errno, "HOTCELL_LIBKRUNFW '%s'", env);
		snprintf(lib.fw_path, sizeof(lib.fw_path), "%s", env);
		return 0;
	}
	if (lib.fw_handle)
		return 0;
	/* Kept loaded: libkrun's own dlopen of it in the jailed worker then finds it mapped. */
	for (size_t i = 0; i < HC_ARRAY_SIZE(names); i++) {
		void *h = dlopen(names[i], RTLD_LAZY | RTLD_LOCAL);
		struct link_map *lm = NULL;

		if (h) {
			lib.fw_handle = h;
			if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name &&
			    lm->l_name[0] == '/')
				snprintf(lib.fw_path, sizeof(lib.fw_path), "%s", lm->l_name);
			return 0;
		}
	}
	return hc_error_setk(err, -ENOENT, HC_EK_BACKEND,
			     "libkrunfw (the kernel libkrun boots) is not installed: install it, "
			     "or use --kernel");
}

/* hotcell-init for the staging root: $HOTCELL_INIT, else beside the initramfs (build tree:
 * build/initramfs.cpio + build/bin/hotcell-init; installed: lib/hotcell/ holds both). */
static int find_init(const struct hc_vm_spec *spec, char *buf, size_t n, struct hc_error *err)
{
	const char *env = getenv("HOTCELL_INIT");
	char dir[HC_PATH_MAX];
	const char *slash;

	if (env && *env) {
		if (access(env, X_OK) < 0)
			return hc_error_errno(err, -errno, "HOTCELL_INIT '%s'", env);
		return hc_path_fmt(buf, n, err, "%s", env);
	}
	if (!spec->initrd || !(slash = strrchr(spec->initrd, '/')))
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - spec->initrd), spec->initrd);
	if (hc_path_fmt(buf, n, err, "%s/bin/hotcell-init", dir) == 0 && access(buf, X_OK) == 0)
		return 0;
	if (hc_path_fmt(buf, n, err, "%s/hotcell-init", dir) == 0 && access(buf, X_OK) == 0)
		return 0;
	return hc_error_setk(err, -ENOENT, HC_EK_BACKEND,
			     "libkrun needs the hotcell-init binary (not found beside %s; build it "
			     "with `make`, or set HOTCELL_INIT)",
			     spec->initrd ? spec->initrd : "the initramfs");
}

static int check_spec(const struct hc_vm_spec *s, struct hc_error *err)
{
	if (s->rootfs_mode == HC_ROOTFS_BLOCK)
		return hc_error_setk(err, -EOPNOTSUPP, HC_EK_USAGE,
				     "backend 'libkrun' does not support a block rootfs (it shares "
				     "the image over virtio-fs: --rootfs-mode dir)");
	if (s->channel == HC_CHANNEL_SERIAL)
		return hc_error_setk(err, -EOPNOTSUPP, HC_EK_USAGE,
				     "backend 'libkrun' does not support the serial channel (it "
				     "uses vsock)");
	if (s->n_devices)
		return hc_error_setk(err, -EOPNOTSUPP, HC_EK_USAGE,
				     "backend 'libkrun' does not support device passthrough");
	/* TSI makes the guest's sockets the worker's own: the host cannot drop the metadata
	 * service or the private ranges, so `inet` cannot be kept. Refused here (a probe
	 * verdict), so --backend auto moves on to a backend with a filtered TAP. */
	if (s->network == HC_NET_INET)
		return hc_error_setk(err, -EOPNOTSUPP, HC_EK_USAGE,
				     "backend 'libkrun' cannot enforce --network inet (its TSI "
				     "networking is not filtered by the host: cloud metadata and "
				     "private ranges would be reachable); use --network full or "
				     "another backend");
	if (s->n_ports && s->network == HC_NET_NONE)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "-p needs a network: with libkrun, add --network full");
	if (s->cpus > 255)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "libkrun runs at most 255 vCPUs (--cpus %u)", s->cpus);
	return 0;
}

/* Everything a run needs beyond the library: spec, kernel (or libkrunfw and no PVM). */
static int probe_spec(const struct hc_vm_spec *spec, struct hc_error *err)
{
	struct hc_accel_host host;
	char init[HC_PATH_MAX];
	int r;

	r = check_spec(spec, err);
	if (r < 0)
		return r;
	if (spec->kernel_is_user) {
		r = need(lib.api.set_kernel, "krun_set_kernel", err);
		if (r < 0)
			return r;
		if (!spec->kernel)
			return hc_error_setk(err, -ENOEXEC, HC_EK_BACKEND,
					     "libkrun: kernel_is_user without a kernel");
		r = hc_binary_check_elf_kernel(spec->kernel, "libkrun's krun_set_kernel", err);
		if (r < 0)
			return r;
	} else {
		/* FACTS.md: under PVM a kernel not built for it dies in early boot. */
		hc_accel_host_probe(&host);
		if (host.pvm)
			return hc_error_setk(
				err, -ENODEV, HC_EK_BACKEND,
				"backend 'libkrun' cannot run here: /dev/kvm is PVM "
				"(/sys/module/kvm_pvm), where libkrunfw's kernel cannot "
				"boot; use --kernel with a PVM guest kernel, or --backend "
				"qemu");
		r = find_libkrunfw(err);
		if (r < 0)
			return r;
	}
	return find_init(spec, init, sizeof(init), err);
}

static int lk_probe(const struct hc_vm_spec *spec, char *version, size_t version_len,
		    struct hc_error *err)
{
	int r = load(err);

	if (r < 0)
		return r;
	if (version && version_len)
		snprintf(version, version_len, "%s",
			 lib.version[0] ? lib.version : "version unknown");
	if (!spec)
		return 0;
	return probe_spec(spec, err);
}

/* ---- the VM ------------------------------------------------------------------------------ */

struct lk {
	struct hc_child worker;
	struct hc_jail_vm jail;
	char lib_file[HC_PATH_MAX]; /* the loaded libkrun's file (absolute), the jail's "binary" */
	/* The host paths libkrun is given, resolved: the jail binds them at these paths, and the
	 * jailed worker's cwd is its root's "/". */
	char kernel[HC_PATH_MAX], rootfs[HC_PATH_MAX], vol[32][HC_PATH_MAX];
	int status_fd; /* read end of the worker's status pipe */
	char staging[HC_PATH_MAX];
	char agent_sock[HC_PATH_MAX];
	char log[HC_PATH_MAX];
	char init[HC_PATH_MAX];
	/* Built before the fork: the worker only calls libkrun. */
	char *env[LK_MAX_ENV];
	char *ports[64 + 1];
	char *tags[32];
	bool started;
	char said[512]; /* what the worker reported after "S" (check() may be called twice) */
};

static int copy_file(const char *from, const char *to, mode_t mode, struct hc_error *err)
{
	_cleanup_close_ int in = -1, out = -1;
	struct stat st;

	/* A hard link costs nothing when the run dir shares the file system. */
	if (link(from, to) == 0)
		return 0;
	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0)
		return hc_error_errno(err, -errno, "open %s", from);
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (out < 0)
		return hc_error_errno(err, -errno, "create %s", to);
	for (off_t left = st.st_size; left > 0;) {
		ssize_t n = sendfile(out, in, NULL, (size_t)left);

		if (n <= 0)
			return hc_error_errno(err, n < 0 ? -errno : -EIO, "copy %s", from);
		left -= n;
	}
	return 0;
}

/* The staging root: hotcell-init plus the mount points libkrun's init and hotcell-init use
 * (guest/boot.c: /run/hc/lower, /run/hc/rw, /mnt/root), since the root is read-only. */
static int make_staging(struct hc_vm *vm, struct lk *k, struct hc_error *err)
{
	static const char *const dirs[] = {"proc",     "sys",	       "dev",	    "tmp",
					   "mnt/root", "run/hc/lower", "run/hc/rw", "hotcell"};
	char p[HC_PATH_MAX];
	int r;

	r = hc_path_fmt(k->staging, sizeof(k->staging), err, "%s/%s", vm->run_dir, LK_STAGING);
	if (r < 0)
		return r;
	for (size_t i = 0; i < HC_ARRAY_SIZE(dirs); i++) {
		r = hc_path_fmt(p, sizeof(p), err, "%s/%s", k->staging, dirs[i]);
		if (r >= 0)
			r = hc_path_mkdir_p(p, 0755, err);
		if (r < 0)
			return r;
	}
	r = hc_path_fmt(p, sizeof(p), err, "%s%s", k->staging, LK_INIT_PATH);
	if (r >= 0)
		r = copy_file(k->init, p, 0755, err);
	return r;
}

static int listen_agent(struct hc_vm *vm, struct lk *k, struct hc_error *err)
{
	int fd, r;

	r = hc_path_fmt(k->agent_sock, sizeof(k->agent_sock), err, "%s/%s", vm->run_dir,
			LK_AGENT_SOCK);
	if (r < 0)
		return r;
	fd = hc_unixsock_listen(k->agent_sock, 4, err);
	if (fd < 0)
		return fd;
	vm->agent_listen_fd = fd;
	return 0;
}

static int push(char **v, size_t max, size_t *n, struct hc_error *err, const char *fmt, ...)
	_printf_(5, 6);
static int push(char **v, size_t max, size_t *n, struct hc_error *err, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*n + 1 >= max)
		return hc_error_setk(err, -E2BIG, HC_EK_USAGE, "too many libkrun settings");
	va_start(ap, fmt);
	r = vasprintf(&v[*n], fmt, ap);
	va_end(ap);
	if (r < 0) {
		v[*n] = NULL;
		return hc_error_set(err, -ENOMEM, "out of memory");
	}
	v[++*n] = NULL;
	return 0;
}

/* The boot keys as hotcell-init's environment (src/proto/boot.h), the port map, the tags. */
static int build_config(struct hc_vm *vm, struct lk *k, struct hc_error *err)
{
	const struct hc_vm_spec *s = &vm->spec;
	const char *dbg = s->cmdline && strstr(s->cmdline, HC_BOOT_KEY_DEBUG "=1") ? "1" : NULL;
	size_t ne = 0, np = 0, nt = 0;
	int r;

	if (s->n_volumes + 1 >= HC_ARRAY_SIZE(k->tags) || s->n_ports >= HC_ARRAY_SIZE(k->ports))
		return hc_error_setk(err, -E2BIG, HC_EK_USAGE, "too many volumes or ports");
	r = push(k->env, LK_MAX_ENV, &ne, err, "%s=virtiofs", HC_BOOT_ENV_ROOT);
	if (r >= 0)
		r = push(k->env, LK_MAX_ENV, &ne, err, "%s=vsock", HC_BOOT_ENV_CHANNEL);
	if (r >= 0 && (dbg || hc_log_enabled(HC_LOG_DEBUG)))
		r = push(k->env, LK_MAX_ENV, &ne, err, "%s=1", HC_BOOT_ENV_DEBUG);
	/* No kernel command line reaches the workload: the host's other keys (--hostname,
	 * --add-host, --read-only, --tmpfs, --dns, ...) travel as one variable. */
	if (r >= 0 && s->cmdline && *s->cmdline)
		r = push(k->env, LK_MAX_ENV, &ne, err, "%s=%s", HC_BOOT_ENV_CMDLINE, s->cmdline);
	/* libkrun's init puts the workload in this PATH-less environment: give it one. */
	if (r >= 0)
		r = push(k->env, LK_MAX_ENV, &ne, err, "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	for (size_t i = 0; r >= 0 && i < s->n_volumes; i++) {
		struct hc_buf b = HC_BUF_INIT(0);
		const char *key = " " HC_BOOT_KEY_VOLUME "=";

		/* One encoder for the keys: the value of " hotcell.vol=..." is the variable's. */
		r = hc_boot_volume_append(&b, (unsigned)i, s->volumes[i].guest,
					  s->volumes[i].readonly);
		if (r < 0 || b.len <= strlen(key)) {
			hc_buf_free(&b);
			return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
					     "-v %s: the guest path must be absolute, without ..",
					     s->volumes[i].guest);
		}
		r = push(k->env, LK_MAX_ENV, &ne, err, "%s%zu=%.*s", HC_BOOT_ENV_VOLUME_PREFIX, i,
			 (int)(b.len - strlen(key)), b.data + strlen(key));
		hc_buf_free(&b);
		if (r >= 0)
			r = push(k->tags, HC_ARRAY_SIZE(k->tags), &nt, err, "%s%zu",
				 HC_BOOT_TAG_VOLUME_PREFIX, i);
	}
	for (size_t i = 0; r >= 0 && i < s->n_ports; i++)
		r = push(k->ports, HC_ARRAY_SIZE(k->ports), &np, err, "%u:%u",
			 (unsigned)s->ports[i].host, (unsigned)s->ports[i].guest);
	return r;
}

static void free_config(struct lk *k)
{
	for (size_t i = 0; i < HC_ARRAY_SIZE(k->env) && k->env[i]; i++)
		free(k->env[i]);
	for (size_t i = 0; i < HC_ARRAY_SIZE(k->ports) && k->ports[i]; i++)
		free(k->ports[i]);
	for (size_t i = 0; i < HC_ARRAY_SIZE(k->tags) && k->tags[i]; i++)
		free(k->tags[i]);
	memset(k->env, 0, sizeof(k->env));
	memset(k->ports, 0, sizeof(k->ports));
	memset(k->tags, 0, sizeof(k->tags));
}

/* ---- the worker (a forked child: no allocation of ours, _exit only) ----------------------- */

static void report(int fd, const char *fmt, ...) _printf_(2, 3);
static void report(int fd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(msg) - 1)
		n = (int)sizeof(msg) - 1;
	ssize_t _unused_ w = write(fd, msg, (size_t)n);
}

#define CALL(fd, expr, what)                                                                       \
	do {                                                                                       \
		int32_t r_ = (expr);                                                               \
		if (r_ < 0) {                                                                      \
			report(fd, "E%s: %s", what, strerror((int)-r_));                           \
			_exit(LK_WORKER_CONFIG_FAILED);                                            \
		}                                                                                  \
	} while (0)

_Noreturn static void worker(struct hc_vm *vm, struct lk *k, int st)
{
	const struct krun_api *a = &lib.api;
	const struct hc_vm_spec *s = &vm->spec;
	const char *const no_args[] = {NULL};
	int32_t ctx;
	uint32_t c;
	char what[128];

	a->set_log_level(hc_log_enabled(HC_LOG_DEBUG) ? KRUN_LOG_LEVEL_DEBUG
						      : KRUN_LOG_LEVEL_ERROR);
	ctx = a->create_ctx();
	if (ctx < 0) {
		report(st, "Ekrun_create_ctx: %s", strerror(-ctx));
		_exit(LK_WORKER_CONFIG_FAILED);
	}
	c = (uint32_t)ctx;
	CALL(st,
	     a->set_vm_config(c, (uint8_t)(s->cpus ? s->cpus : 1),
			      s->memory_mib ? s->memory_mib : 256),
	     "krun_set_vm_config");
	CALL(st, a->add_virtiofs3(c, KRUN_FS_ROOT_TAG, k->staging, 0, true),
	     "krun_add_virtiofs3 " KRUN_FS_ROOT_TAG);
	CALL(st, a->add_virtiofs3(c, HC_BOOT_TAG_ROOTFS, k->rootfs, 0, !s->rootfs_rw),
	     "krun_add_virtiofs3 " HC_BOOT_TAG_ROOTFS);
	for (size_t i = 0; i < s->n_volumes; i++) {
		snprintf(what, sizeof(what), "krun_add_virtiofs %s (-v %s)", k->tags[i],
			 s->volumes[i].host);
		if (s->volumes[i].readonly)
			CALL(st, a->add_virtiofs3(c, k->tags[i], k->vol[i], 0, true), what);
		else
			CALL(st, a->add_virtiofs(c, k->tags[i], k->vol[i]), what);
	}
	/* The vsock device is explicit: TSI only when the run asks for a network. */
	CALL(st, a->disable_implicit_vsock(c), "krun_disable_implicit_vsock");
	CALL(st, a->add_vsock(c, s->network == HC_NET_NONE ? 0 : KRUN_TSI_HIJACK_INET),
	     "krun_add_vsock");
	if (a->add_vsock_port2)
		CALL(st, a->add_vsock_port2(c, HC_BOOT_VSOCK_PORT_CONNECT, k->agent_sock, false),
		     "krun_add_vsock_port2");
	else
		CALL(st, a->add_vsock_port(c, HC_BOOT_VSOCK_PORT_CONNECT, k->agent_sock),
		     "krun_add_vsock_port");
	CALL(st, a->set_port_map(c, (const char *const *)k->ports), "krun_set_port_map");
	CALL(st, a->set_console_output(c, vm->console_log), "krun_set_console_output");
	if (s->kernel_is_user)
		CALL(st, a->set_kernel(c, k->kernel, KRUN_KERNEL_FORMAT_ELF, NULL, NULL),
		     "krun_set_kernel");
	CALL(st, a->set_workdir(c, "/"), "krun_set_workdir");
	CALL(st, a->set_exec(c, LK_INIT_PATH, no_args, (const char *const *)k->env),
	     "krun_set_exec");
	/* Configured: the parent's start() returns; what follows is the VM's life. */
	report(st, "S");
	ctx = a->start_enter(c);
	report(st, "Ekrun_start_enter: %s", strerror(ctx < 0 ? -ctx : EIO));
	_exit(LK_WORKER_CONFIG_FAILED);
}
#undef CALL

struct worker_arg {
	struct hc_vm *vm;
	struct lk *k;
};

/* hc_child_spawn's run hook: in the child, jailed, with the status pipe as fd 3. */
static void worker_main(void *arg)
{
	const struct worker_arg *w = arg;

	worker(w->vm, w->k, 3);
}

/* Reads the worker's status pipe: 1 when it said "S" (configured), 0 at EOF (or, with
 * timeout_ms 0, when nothing more is there), -ETIMEDOUT. Its message ("E<what>: <why>") goes
 * into msg. */
static int read_status(int fd, int cancel_fd, int timeout_ms, char *msg, size_t n)
{
	double deadline = hc_clock_ms() + timeout_ms;
	char buf[600];
	size_t used = 0;

	msg[0] = 0;
	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
				      {.fd = cancel_fd, .events = POLLIN}};
		int r = poll(p, 2, hc_clock_left_ms(deadline));
		ssize_t got;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0 && !p[0].revents)
			return -ECANCELED; /* only the cancel fd is readable */
		if (r == 0) {
			if (timeout_ms > 0)
				return -ETIMEDOUT;
			break;
		}
		/* "S" alone first, so a later message is never read along with it. */
		got = read(fd, buf + used, used ? sizeof(buf) - 1 - used : 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		if (!used && buf[0] == 'S')
			return 1;
		used += (size_t)got;
		if (used >= sizeof(buf) - 1)
			break;
	}
	if (used > 1 && buf[0] == 'E')
		snprintf(msg, n, "%.*s", (int)(used - 1), buf + 1);
	return 0;
}

/* The last non-empty line of libkrun's own log (its stderr), for VM errors. */
static void last_log_line(const struct lk *k, char *buf, size_t n)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;

	buf[0] = 0;
	if (!k->log[0] || hc_path_read_file(k->log, 1u << 20, &data, &len, NULL) < 0 || !len)
		return;
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	data[len] = 0;
	const char *line = strrchr(data, '\n') ? strrchr(data, '\n') + 1 : data;
	snprintf(buf, n, "%.300s", line);
}

void hc_libkrun_status_str(int status, char *buf, size_t n)
{
	if (WIFEXITED(status)) {
		int code = WEXITSTATUS(status);

		switch (code) {
		case HC_BOOT_EXIT_OK:
			snprintf(buf, n, "hotcell-init ended the guest (exit %d)", code);
			return;
		case HC_BOOT_EXIT_FAILURE:
			snprintf(buf, n, "hotcell-init could not set up the guest (exit %d)", code);
			return;
		case 125:
			snprintf(buf, n, "libkrun's init could not set up the guest (exit 125)");
			return;
		case 126:
			snprintf(buf, n, "libkrun's init could not execute %s (exit 126)",
				 LK_INIT_PATH);
			return;
		case 127:
			snprintf(buf, n, "libkrun's init could not find %s (exit 127)",
				 LK_INIT_PATH);
			return;
		default:
			break;
		}
	}
	char how[64];

	hc_child_status_str(status, how, sizeof(how));
	snprintf(buf, n, "the libkrun worker %s", how);
}

/* The loaded libkrun's file: the loader's absolute name for it (HOTCELL_LIBKRUN may be a
 * soname). */
static int lib_file(char *buf, size_t n, struct hc_error *err)
{
	struct link_map *lm = NULL;

	if (dlinfo(lib.handle, RTLD_DI_LINKMAP, &lm) < 0 || !lm || !lm->l_name ||
	    lm->l_name[0] != '/')
		return hc_error_setk(err, -ENOENT, HC_EK_BACKEND,
				     "jail libkrun: cannot tell which file %s is", lib.path);
	return hc_path_fmt(buf, n, err, "%s", lm->l_name);
}

/* realpath of p into buf (HC_PATH_MAX), else p as given (NULL: ""). */
static void resolve(const char *p, char *buf)
{
	char tmp[PATH_MAX];

	snprintf(buf, HC_PATH_MAX, "%s", p && realpath(p, tmp) ? tmp : p ? p : "");
}

/* The worker: hc_child_spawn with the run hook (no exec), jailed unless --no-jail or not
 * root. st_fd becomes its fd 3; log_fd its stdout and stderr (libkrun's log). */
static int spawn_worker(struct hc_vm *vm, struct lk *k, int log_fd, int st_fd, struct hc_error *err)
{
	const struct hc_vm_spec *s = &vm->spec;
	struct worker_arg wa = {.vm = vm, .k = k};
	struct hc_fd_map fds[] = {{st_fd, 3}};
	struct hc_jail_proc jp;
	int r;

	r = lib_file(k->lib_file, sizeof(k->lib_file), err);
	if (r < 0)
		return r;
	resolve(s->rootfs_dir, k->rootfs);
	for (size_t i = 0; i < s->n_volumes && i < HC_ARRAY_SIZE(k->vol); i++)
		resolve(s->volumes[i].host, k->vol[i]);
	if (s->kernel_is_user)
		resolve(s->kernel, k->kernel);
	const char *argv[] = {k->lib_file, NULL};
	struct hc_child_opts o = {
		.argv = argv,
		.stdin_fd = -1,
		.stdout_fd = log_fd,
		.stderr_fd = log_fd,
		.fds = fds,
		.n_fds = HC_ARRAY_SIZE(fds),
		.new_session = true,
		.run = worker_main,
		.run_arg = &wa,
	};

	r = hc_jail_vm_open(&k->jail, !s->no_jail && hc_jail_default_on(NULL), vm->run_dir,
			    s->memory_mib ? s->memory_mib : 256, s->cpus ? s->cpus : 1, err);
	if (r < 0)
		return r;
	hc_jail_proc_init(&jp, &k->jail, HC_JAIL_LIBKRUN, HC_ACCEL_KVM, k->lib_file);
	/* TSI makes the guest's sockets the worker's: the host's network only with one. */
	jp.network = s->network != HC_NET_NONE;
	/* What it serves: the staging root and the image read-only (the image read-write only
	 * with a writable rootfs), each volume as -v says. */
	hc_jail_proc_bind(&jp, k->staging, false);
	hc_jail_proc_bind(&jp, k->rootfs, s->rootfs_rw);
	for (size_t i = 0; i < s->n_volumes; i++)
		hc_jail_proc_bind(&jp, k->vol[i], !s->volumes[i].readonly);
	if (s->kernel_is_user)
		hc_jail_proc_bind(&jp, k->kernel, false);
	hc_jail_proc_bind(&jp, lib.fw_path[0] ? lib.fw_path : NULL, false);
	r = hc_jail_proc_prepare(&jp, &o, err);
	if (r >= 0)
		r = hc_child_spawn(&k->worker, &o, err);
	hc_jail_proc_free(&jp);
	if (r < 0)
		return r;
	snprintf(k->worker.name, sizeof(k->worker.name), "libkrun worker");
	return 0;
}

static void lk_destroy(struct hc_vm *vm);

static int lk_start(struct hc_vm *vm, struct hc_error *err)
{
	_cleanup_close_ int log_fd = -1;
	int pipefd[2] = {-1, -1};
	struct lk *k;
	char msg[512];
	int r;

	if (vm->priv)
		return hc_error_set(err, -EALREADY, "libkrun: VM already started");
	r = lk_probe(&vm->spec, NULL, 0, err);
	if (r < 0)
		return r;
	if (!vm->spec.rootfs_dir)
		return hc_error_setk(err, -EINVAL, HC_EK_INTERNAL, "libkrun needs a rootfs tree");
	k = calloc(1, sizeof(*k));
	if (!k)
		return hc_error_set(err, -ENOMEM, "out of memory");
	k->worker = (struct hc_child)HC_CHILD_INIT;
	k->jail = (struct hc_jail_vm)HC_JAIL_VM_INIT;
	k->status_fd = -1;
	vm->priv = k;

	r = find_init(&vm->spec, k->init, sizeof(k->init), err);
	if (r >= 0)
		r = make_staging(vm, k, err);
	if (r >= 0)
		r = listen_agent(vm, k, err);
	if (r >= 0)
		r = build_config(vm, k, err);
	if (r >= 0)
		r = hc_path_fmt(k->log, sizeof(k->log), err, "%s/%s", vm->run_dir, LK_LOG);
	if (r < 0)
		goto fail;
	log_fd = open(k->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
	if (log_fd < 0) {
		r = hc_error_errno(err, -errno, "create %s", k->log);
		goto fail;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		r = hc_error_errno(err, -errno, "pipe");
		goto fail;
	}

	r = spawn_worker(vm, k, log_fd, pipefd[1], err);
	close(pipefd[1]);
	k->status_fd = pipefd[0];
	if (r < 0)
		goto fail;
	vm->jailed = k->jail.on;
	hc_debug("libkrun: worker %d configures %s (%s)", (int)k->worker.pid, lib.path,
		 lib.version[0] ? lib.version : "version unknown");

	/* Configuration is a handful of library calls: wait for its verdict. */
	r = read_status(k->status_fd, hc_vm_cancel_fd(&vm->spec), 10000, msg, sizeof(msg));
	if (r == -ECANCELED)
		return hc_vm_cancel_error(err);
	if (r == 1) {
		k->started = true;
		vm->death_fd =
			k->worker.pidfd >= 0 ? fcntl(k->worker.pidfd, F_DUPFD_CLOEXEC, 3) : -1;
		fcntl(k->status_fd, F_SETFL, O_NONBLOCK);
		return 0;
	}
	if (msg[0]) {
		r = hc_error_setk(err, -EINVAL, HC_EK_VM, "libkrun: %s", msg);
	} else {
		char how[160], last[320];

		(void)hc_child_wait(&k->worker, 1000);
		if (hc_child_poll(&k->worker))
			hc_libkrun_status_str(k->worker.status, how, sizeof(how));
		else
			snprintf(how, sizeof(how), "did not finish its configuration");
		last_log_line(k, last, sizeof(last));
		r = hc_error_setk(err, -ECHILD, HC_EK_VM, "libkrun: %s before the VM started%s%s",
				  how, last[0] ? "; libkrun: " : "", last);
	}
fail:
	hc_error_kind(err, HC_EK_VM);
	lk_destroy(vm);
	return r;
}

static int lk_check(struct hc_vm *vm, struct hc_error *err)
{
	struct lk *k = vm->priv;
	char how[160], msg[512] = "", last[320];

	if (!k)
		return hc_error_setk(err, -ECHILD, HC_EK_VM, "the libkrun worker is not running");
	if (!hc_child_poll(&k->worker))
		return 0;
	if (!k->said[0] && k->status_fd >= 0 &&
	    read_status(k->status_fd, -1, 0, msg, sizeof(msg)) >= 0)
		snprintf(k->said, sizeof(k->said), "%s", msg);
	if (k->said[0])
		return hc_error_setk(err, -EIO, HC_EK_VM, "libkrun: %s", k->said);
	hc_libkrun_status_str(k->worker.status, how, sizeof(how));
	last_log_line(k, last, sizeof(last));
	hc_error_setk(err,
		      WIFEXITED(k->worker.status) &&
				      WEXITSTATUS(k->worker.status) == HC_BOOT_EXIT_OK
			      ? -ESHUTDOWN
			      : -EIO,
		      HC_EK_VM, "%s%s%s", how, last[0] ? "; libkrun: " : "", last);
	return err->code;
}

static void lk_destroy(struct hc_vm *vm)
{
	struct lk *k = vm->priv;

	if (!k)
		return;
	if (vm->agent_listen_fd >= 0)
		close(vm->agent_listen_fd);
	if (vm->agent_fd >= 0)
		close(vm->agent_fd);
	if (vm->death_fd >= 0)
		close(vm->death_fd);
	vm->agent_listen_fd = vm->agent_fd = vm->death_fd = -1;
	if (k->worker.pid) {
		/* The VM always ends from the host: after the shutdown frame hotcell-init exits
		 * and the worker with it; one that does not is killed. */
		if (k->started && hc_child_wait(&k->worker, LK_STOP_GRACE_MS) < 0)
			hc_debug("libkrun: the worker did not end by itself: killing it");
		hc_child_stop(&k->worker, 0);
		if (k->started && WIFEXITED(k->worker.status) &&
		    WEXITSTATUS(k->worker.status) != HC_BOOT_EXIT_OK) {
			char how[160];

			hc_libkrun_status_str(k->worker.status, how, sizeof(how));
			hc_debug("libkrun: %s", how);
		}
	}
	if (k->status_fd >= 0)
		close(k->status_fd);
	if (k->agent_sock[0])
		unlink(k->agent_sock);
	/* The worker is reaped: its cgroups go, the VM's uid lease is free again. */
	hc_jail_vm_close(&k->jail);
	free_config(k);
	free(k);
	vm->priv = NULL;
}

const struct hc_vmm_ops hc_vmm_libkrun_ops = {
	.name = "libkrun",
	.caps = HC_CAP_SHARED_DIRS | HC_CAP_ROOTFS_DIR | HC_CAP_CHANNEL_VSOCK | HC_CAP_NETWORK,
	.probe = lk_probe,
	.start = lk_start,
	.check = lk_check,
	.destroy = lk_destroy,
};
