/* SPDX-License-Identifier: MIT */
/*
 * The QEMU backend (DESIGN.md §3): -M microvm with direct kernel boot, the rootfs over
 * virtio-fs (one virtiofsd per shared directory, started in parallel with QEMU on sockets
 * hotcell created) or as a read-only virtio-blk disk, the agent channel on a virtio-serial port
 * over a socketpair or on vsock through vhost-device-vsock (hybrid convention), and QMP over a
 * second socketpair for control. Options follow QEMU 7.2's qemu-options.hx and the QMP
 * reference (qapi/ in its source); the measured details are in FACTS.md.
 */
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "proto/boot.h"
#include "vmm/binary.h"
#include "vmm/hvsock.h"
#include "vmm/qemu.h"
#include "vmm/qmp.h"
#include "vmm/virtiofsd.h"

#define VSOCK_TOOL_DIR "/var/cache/hotcell-tools/usr/bin"
#define QMP_TIMEOUT_MS 10000
#define START_TIMEOUT_MS 30000

#if defined(__aarch64__)
#define QEMU_BIN "qemu-system-aarch64"
#define CONSOLE "ttyAMA0"
#define TCG_BOOT_ARGS ""
#else
#define QEMU_BIN "qemu-system-x86_64"
#define CONSOLE "ttyS0"
/* Under TCG, three boot-time self-calibrations of the x86 kernel cost ~0.5 s together (printk
 * times, project kernel, bench/run.sh): noreplace-smp keeps the kernel from rewriting every
 * lock prefix of a 1-CPU guest (each write to code makes TCG drop its translations: ~300 ms);
 * lpj= presets the delay loop instead of timing it for ~100 ms (the value is what the project
 * kernel measures under TCG here; emulated devices need no exact udelay); noapictimer skips
 * the local APIC timer's ~250 ms calibration (the PIT drives the clock events instead; a
 * second vCPU still boots); no_timer_check skips the IO-APIC timer check, which a guest
 * starved of host CPU (50 VMs at once on 2 cores) can fail with a panic ("IO-APIC + timer
 * doesn't work"). Not under KVM, where none of these is slow. */
#define TCG_BOOT_ARGS " noreplace-smp lpj=1548288 noapictimer no_timer_check"
#endif

/* ---- the command line ------------------------------------------------------------------ */

struct argv_b {
	char **v;
	size_t n, cap;
	int err;
};

static void add(struct argv_b *b, const char *fmt, ...) _printf_(2, 3);
static void add(struct argv_b *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (b->err)
		return;
	if (b->n + 2 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		char **v = realloc(b->v, cap * sizeof(*v));

		if (!v) {
			b->err = -ENOMEM;
			return;
		}
		b->v = v;
		b->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		va_end(ap);
		b->err = -ENOMEM;
		return;
	}
	va_end(ap);
	b->v[b->n++] = s;
	b->v[b->n] = NULL;
}

/* QEMU option values are comma-separated: a comma inside a value is written twice
 * (qemu-options.hx, "-drive" notes). Returns a malloc'd copy. */
static char *opt_escape(const char *s)
{
	size_t n = strlen(s), extra = 0;

	for (size_t i = 0; i < n; i++)
		extra += s[i] == ',';
	char *o = malloc(n + extra + 1), *p = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		*p++ = s[i];
		if (s[i] == ',')
			*p++ = ',';
	}
	*p = '\0';
	return o;
}

void hc_qemu_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

/* A guest path goes on the kernel command line as hotcell.vol=TAG:PATH[:ro]: no blanks, quotes
 * or ':' (the separator), absolute. */
static bool guest_path_ok(const char *p)
{
	if (!p || p[0] != '/' || strlen(p) > 1024)
		return false;
	for (; *p; p++)
		if (*p <= ' ' || *p == ':' || *p == '"' || *p == '\'' || *p == '\\' || *p == 0x7f)
			return false;
	return true;
}

int hc_qemu_cmdline_build(const struct hc_vm_spec *spec, char **ret, struct hc_error *err)
{
	struct hc_buf b = HC_BUF_INIT(0);
	int r;

	/* The guest ends the VM by rebooting (a kernel without ACPI cannot power off), which
	 * -no-reboot turns into QEMU's exit; panic=-1: a panic reboots at once, i.e. ends the
	 * VM too. reboot=t (triple fault), not k: microvm has no i8042, and the kernel's
	 * keyboard-controller reset then spins ~2 minutes under TCG polling port 0x64. */
	r = hc_buf_printf(&b, "console=" CONSOLE " reboot=t panic=-1 quiet%s %s=%s %s=%s",
			  spec->accel == HC_ACCEL_TCG ? TCG_BOOT_ARGS : "", HC_BOOT_KEY_ROOT,
			  spec->rootfs_mode == HC_ROOTFS_BLOCK ? "block" : "virtiofs",
			  HC_BOOT_KEY_CHANNEL,
			  spec->channel == HC_CHANNEL_VSOCK ? "vsock" : "serial");
	for (size_t i = 0; r == 0 && i < spec->n_volumes; i++) {
		if (!guest_path_ok(spec->volumes[i].guest)) {
			hc_buf_free(&b);
			return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
					     "volume guest path '%s' must be absolute, without "
					     "blanks, quotes or ':'",
					     spec->volumes[i].guest ? spec->volumes[i].guest : "");
		}
		r = hc_buf_printf(&b, " %s=%s%zu:%s%s", HC_BOOT_KEY_VOLUME,
				  HC_BOOT_TAG_VOLUME_PREFIX, i, spec->volumes[i].guest,
				  spec->volumes[i].readonly ? ":ro" : "");
	}
	if (r == 0 && spec->cmdline && *spec->cmdline)
		r = hc_buf_printf(&b, " %s", spec->cmdline);
	if (r < 0) {
		hc_buf_free(&b);
		return hc_error_set(err, r, "kernel command line: out of memory");
	}
	*ret = hc_buf_steal(&b, NULL);
	return 0;
}

/* The NIC (src/net made the TAP): virtio-net on the TAP's inherited fd, no helper scripts
 * (DESIGN.md §11; a jailed QEMU only ever gets the fd, §12). */
static void add_net_args(struct argv_b *b, const struct hc_vm_spec *spec,
			 const struct hc_qemu_argv_in *in, const char *bus)
{
	if (!spec->net_tap)
		return;
	if (in->tap_fd < 0 || !spec->net_mac) {
		b->err = b->err ? b->err : -EINVAL;
		return;
	}
	add(b, "-netdev");
	add(b, "tap,id=net0,fd=%d", in->tap_fd);
	add(b, "-device");
	add(b, "virtio-net-%s,netdev=net0,mac=%s", bus, spec->net_mac);
}

int hc_qemu_argv_build(const struct hc_vm_spec *spec, const struct hc_qemu_argv_in *in,
		       char ***ret_argv, struct hc_error *err)
{
	struct argv_b b = {0};
	_cleanup_free_ char *cmdline = NULL, *kernel = NULL, *initrd = NULL, *console = NULL,
			    *disk = NULL;
	bool vhost_user = spec->rootfs_mode == HC_ROOTFS_DIR || spec->n_volumes > 0 ||
			  spec->channel == HC_CHANNEL_VSOCK;
	/* A memory-backend object named "mem" for the machine: vhost-user's memfd, or the RAM
	 * file. */
	bool mem_obj = vhost_user || in->mem_path;
	unsigned mem = spec->memory_mib ? spec->memory_mib : 256;
	bool q35 = in->machine == HC_QEMU_Q35;
	/* Device models: virtio-mmio on microvm (and arm virt), virtio-pci on q35. */
	const char *bus = q35 ? "pci" : "device";
	int r;

	if (spec->accel != HC_ACCEL_KVM && spec->accel != HC_ACCEL_TCG)
		return hc_error_set(err, -EINVAL, "qemu: accelerator not resolved");
	if (spec->rootfs_mode != HC_ROOTFS_DIR && spec->rootfs_mode != HC_ROOTFS_BLOCK)
		return hc_error_set(err, -EINVAL, "qemu: rootfs mode not resolved");
	if (spec->channel != HC_CHANNEL_SERIAL && spec->channel != HC_CHANNEL_VSOCK)
		return hc_error_set(err, -EINVAL, "qemu: channel not resolved");
	if (!spec->kernel)
		return hc_error_set(err, -EINVAL, "qemu: no kernel");
	if (spec->rootfs_mode == HC_ROOTFS_DIR && !in->rootfs_sock)
		return hc_error_set(err, -EINVAL, "qemu: no virtiofsd socket for the rootfs");
	if (spec->rootfs_mode == HC_ROOTFS_BLOCK && !spec->rootfs_disk)
		return hc_error_set(err, -EINVAL, "qemu: block rootfs without a disk image");
	if (spec->channel == HC_CHANNEL_VSOCK && !in->vsock_sock)
		return hc_error_set(err, -EINVAL, "qemu: no vhost-user socket for vsock");
	if (spec->channel == HC_CHANNEL_SERIAL && in->agent_fd < 0)
		return hc_error_set(err, -EINVAL, "qemu: no agent fd");
	if (spec->n_volumes && !in->volume_socks)
		return hc_error_set(err, -EINVAL, "qemu: no virtiofsd sockets for volumes");
	if (in->mem_path && vhost_user)
		return hc_error_set(err, -EINVAL, "qemu: a RAM file with a vhost-user device");
	r = hc_qemu_cmdline_build(spec, &cmdline, err);
	if (r < 0)
		return r;
	kernel = opt_escape(spec->kernel);
	initrd = spec->initrd ? opt_escape(spec->initrd) : NULL;
	console = opt_escape(in->console_log);
	disk = spec->rootfs_disk ? opt_escape(spec->rootfs_disk) : NULL;
	if (!kernel || !console || (spec->initrd && !initrd) || (spec->rootfs_disk && !disk))
		return hc_error_set(err, -ENOMEM, "qemu: out of memory");

	add(&b, "%s", in->qemu);
	/* No defaults, no config files, no display, no firmware beyond what microvm needs,
	 * and a guest reboot ends QEMU (the guest's way of ending the VM). */
	add(&b, "-nodefaults");
	add(&b, "-no-user-config");
	add(&b, "-display");
	add(&b, "none");
	add(&b, "-no-reboot");
	add(&b, "-name");
	add(&b, "hotcell,debug-threads=on");
#if defined(__aarch64__)
	add(&b, "-M");
	add(&b, "virt,gic-version=max%s", mem_obj ? ",memory-backend=mem" : "");
#else
	if (q35) {
		add(&b, "-M");
		add(&b, "q35%s", mem_obj ? ",memory-backend=mem" : "");
		if (in->bios) {
			add(&b, "-bios");
			add(&b, "%s", in->bios);
		}
	} else {
		/* acpi=off: a kernel without ACPI finds the virtio-mmio devices on its command
		 * line, which QEMU appends only then (FACTS.md). */
		add(&b, "-M");
		add(&b, "microvm,acpi=off%s", mem_obj ? ",memory-backend=mem" : "");
	}
#endif
	add(&b, "-accel");
	add(&b, "%s", spec->accel == HC_ACCEL_KVM ? "kvm" : "tcg");
	if (spec->accel == HC_ACCEL_KVM) {
		add(&b, "-cpu");
		add(&b, "host");
	}
#if defined(__aarch64__)
	else {
		add(&b, "-cpu");
		add(&b, "max");
	}
#endif
	add(&b, "-smp");
	add(&b, "%u", spec->cpus ? spec->cpus : 1);
	add(&b, "-m");
	add(&b, "%uM", mem);
	if (vhost_user) {
		/* vhost-user backends map guest RAM: it must be a shareable fd. */
		add(&b, "-object");
		add(&b, "memory-backend-memfd,id=mem,size=%uM,share=on", mem);
		/* vhost-user on virtio-mmio needs the modern transport (FACTS.md). */
		if (!q35) {
			add(&b, "-global");
			add(&b, "virtio-mmio.force-legacy=false");
		}
	} else if (in->mem_path) {
		_cleanup_free_ char *mp = opt_escape(in->mem_path);

		if (!mp)
			b.err = -ENOMEM;
		add(&b, "-object");
		add(&b, "memory-backend-file,id=mem,size=%uM,mem-path=%s,share=%s", mem,
		    mp ? mp : "", in->mem_private ? "off" : "on");
	}
	add(&b, "-kernel");
	add(&b, "%s", kernel);
	if (initrd) {
		add(&b, "-initrd");
		add(&b, "%s", initrd);
	}
	add(&b, "-append");
	add(&b, "%s", cmdline);

	add(&b, "-chardev");
	add(&b, "file,id=con,path=%s", console);
	add(&b, "-serial");
	add(&b, "chardev:con");

	if (in->incoming) {
		/* The migration stream is named later, over QMP, once its events are on. */
		add(&b, "-incoming");
		add(&b, "defer");
	}
	add(&b, "-chardev");
	add(&b, "socket,id=qmp,fd=%d", in->qmp_fd);
	add(&b, "-mon");
	add(&b, "chardev=qmp,mode=control");

	if (spec->rootfs_mode == HC_ROOTFS_DIR) {
		_cleanup_free_ char *s = opt_escape(in->rootfs_sock);

		if (!s)
			b.err = -ENOMEM;
		add(&b, "-chardev");
		add(&b, "socket,id=fs-root,path=%s", s ? s : "");
		add(&b, "-device");
		add(&b, "vhost-user-fs-%s,chardev=fs-root,tag=%s", bus, HC_BOOT_TAG_ROOTFS);
	} else {
		/* The cached ext4 image, never written: read-only to QEMU as well. */
		add(&b, "-drive");
		add(&b, "file=%s,if=none,id=root,format=raw,readonly=on", disk);
		add(&b, "-device");
		add(&b, "virtio-blk-%s,drive=root", bus);
	}
	for (size_t i = 0; i < spec->n_volumes; i++) {
		_cleanup_free_ char *s = opt_escape(in->volume_socks[i]);

		if (!s)
			b.err = -ENOMEM;
		add(&b, "-chardev");
		add(&b, "socket,id=fs-vol%zu,path=%s", i, s ? s : "");
		add(&b, "-device");
		add(&b, "vhost-user-fs-%s,chardev=fs-vol%zu,tag=%s%zu", bus, i,
		    HC_BOOT_TAG_VOLUME_PREFIX, i);
	}
	if (spec->channel == HC_CHANNEL_SERIAL) {
		add(&b, "-device");
		/* Port 0 is reserved for a virtconsole: ours is port 1 (vport0p1). */
		add(&b, "virtio-serial-%s,max_ports=2", bus);
		add(&b, "-chardev");
		add(&b, "socket,id=agent,fd=%d", in->agent_fd);
		add(&b, "-device");
		add(&b, "virtserialport,chardev=agent,name=%s", HC_BOOT_SERIAL_PORT);
	} else {
		_cleanup_free_ char *s = opt_escape(in->vsock_sock);

		if (!s)
			b.err = -ENOMEM;
		add(&b, "-chardev");
		add(&b, "socket,id=vsock,path=%s", s ? s : "");
		add(&b, "-device");
		add(&b, "vhost-user-vsock-%s,chardev=vsock", bus);
	}
	add_net_args(&b, spec, in, bus);
	if (b.err) {
		hc_qemu_argv_free(b.v);
		return hc_error_set(err, b.err, "qemu: command line: out of memory");
	}
	*ret_argv = b.v;
	return 0;
}

/* ---- finding the programs ----------------------------------------------------------------- */

/* $ENV, else PROG on PATH, else fallback (may be NULL). */
static int find_prog(const char *env, const char *prog, const char *fallback, char *buf, size_t n,
		     struct hc_error *err)
{
	const char *e = getenv(env);

	if (e && *e) {
		if (access(e, X_OK) < 0)
			return hc_error_errno(err, -errno, "%s=%s", env, e);
		snprintf(buf, n, "%s", e);
		return 0;
	}
	if (hc_binary_which(prog, buf, n) == 0)
		return 0;
	if (fallback && access(fallback, X_OK) == 0) {
		snprintf(buf, n, "%s", fallback);
		return 0;
	}
	return hc_error_setk(err, -ENOENT, HC_EK_BACKEND, "%s not found (set %s)", prog, env);
}

static int find_qemu(char *buf, size_t n, struct hc_error *err)
{
	return find_prog("HOTCELL_QEMU", QEMU_BIN, NULL, buf, n, err);
}

static int find_vsockd(char *buf, size_t n, struct hc_error *err)
{
	return find_prog("HOTCELL_VHOST_DEVICE_VSOCK", "vhost-device-vsock",
			 VSOCK_TOOL_DIR "/vhost-device-vsock", buf, n, err);
}

/* "QEMU emulator version 7.2.22 (Debian ...)" -> "7.2.22"; cached per binary. */
static int qemu_version(const char *bin, char *buf, size_t n, struct hc_error *err)
{
	static char cached_bin[HC_PATH_MAX], cached[64];
	const char *argv[] = {bin, "-version", NULL};
	_cleanup_free_ char *out = NULL;
	int r;

	if (!hc_streq(bin, cached_bin)) {
		r = hc_child_run(argv, 10000, 4096, &out, err);
		if (r < 0)
			return r;
		if (r != 0)
			return hc_error_setk(err, -EIO, HC_EK_BACKEND, "%s -version failed", bin);
		const char *v = out ? strstr(out, "version ") : NULL;
		if (!v)
			return hc_error_setk(err, -EIO, HC_EK_BACKEND,
					     "%s -version: unexpected output", bin);
		v += strlen("version ");
		snprintf(cached, sizeof(cached), "%.*s", (int)strcspn(v, " \n"), v);
		snprintf(cached_bin, sizeof(cached_bin), "%s", bin);
	}
	if (buf && n)
		snprintf(buf, n, "%s", cached);
	return 0;
}

/* The binary, and the environment that changes its machine (ops->identity). */
static int qemu_identity(char *buf, size_t n, struct hc_error *err)
{
	char bin[HC_PATH_MAX];
	const char *m = getenv("HOTCELL_QEMU_MACHINE"), *a = getenv("HOTCELL_QEMU_ARGS");
	size_t len;
	int r;

	r = find_qemu(bin, sizeof(bin), err);
	if (r >= 0)
		r = hc_binary_identity(bin, buf, n, err);
	if (r < 0)
		return r;
	len = strlen(buf);
	if ((size_t)snprintf(buf + len, n - len, " machine=%s args=%s", m ? m : "", a ? a : "") >=
	    n - len)
		return hc_error_set(err, -ENAMETOOLONG, "qemu: identity too long");
	return 0;
}

#define QBOOT "/usr/share/qemu/qboot.rom"

/* HOTCELL_QEMU_MACHINE=microvm (default) | q35: q35 is for kernels without virtio-mmio
 * (distribution kernels); it boots through qboot when installed (SeaBIOS costs seconds under
 * TCG, FACTS.md). */
static int machine_from_env(int *machine, const char **bios, struct hc_error *err)
{
	const char *m = getenv("HOTCELL_QEMU_MACHINE");

	*machine = HC_QEMU_MICROVM;
	*bios = NULL;
	if (!m || !*m || hc_streq(m, "microvm"))
		return 0;
	if (!hc_streq(m, "q35"))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "HOTCELL_QEMU_MACHINE=%s: expected microvm or q35", m);
	*machine = HC_QEMU_Q35;
	if (access(QBOOT, R_OK) == 0)
		*bios = QBOOT;
	return 0;
}

static int qemu_probe(const struct hc_vm_spec *spec, char *version, size_t version_len,
		      struct hc_error *err)
{
	char bin[HC_PATH_MAX], v[64], tool[HC_PATH_MAX];
	int r;

	r = find_qemu(bin, sizeof(bin), err);
	if (r < 0)
		return r;
	/* `qemu -version` is a whole process (30-60 ms on a busy host), paid before the VM
	 * starts: only when the version is asked for (`hotcell doctor`). A run learns it from
	 * the QMP greeting, and a QEMU that cannot start says why there. */
	if (version && version_len) {
		r = qemu_version(bin, v, sizeof(v), err);
		if (r < 0)
			return r;
		snprintf(version, version_len, "QEMU %s", v);
	}
	if (!spec)
		return 0;
	if (spec->rootfs_mode == HC_ROOTFS_DIR || spec->n_volumes) {
		r = hc_virtiofsd_find(tool, sizeof(tool), err);
		if (r < 0)
			return r;
	}
	if (spec->channel == HC_CHANNEL_VSOCK) {
		r = find_vsockd(tool, sizeof(tool), err);
		if (r < 0)
			return r;
	}
	if (spec->kernel && access(spec->kernel, R_OK) < 0)
		return hc_error_errno(err, -errno, "kernel %s", spec->kernel);
	if (spec->initrd && access(spec->initrd, R_OK) < 0)
		return hc_error_errno(err, -errno, "initramfs %s", spec->initrd);
	return 0;
}

/* ---- one VM ------------------------------------------------------------------------------ */

struct qemu_vm {
	struct hc_child qemu;
	struct hc_qmp qmp;
	bool qmp_up;
	struct hc_virtiofsd *fsd; /* [0] the rootfs (DIR mode), then one per volume */
	size_t n_fsd;
	const char **fsd_what; /* "rootfs", "volume /data" for messages */
	struct hc_child vsockd;
	char hvsock_uds[HC_SOCK_PATH_MAX + 1];
	char hvsock_listen[HC_PATH_MAX];
	char qemu_log[HC_PATH_MAX];
	char vsockd_log[HC_PATH_MAX];
	int epfd;
	unsigned stops_expected; /* STOP events caused by our own pause */
	bool paused;		 /* by hc_vm_pause */
	/* The guest's RAM when it is a file we share with QEMU (a memfd of ours, fd 5 in QEMU):
	 * a snapshot copies it instead of streaming it. -1 otherwise (vhost-user's memfd, or a
	 * restored VM's private mapping of its snapshot's memory file). */
	int ram_fd;
	struct hc_jail_vm jail;
};

static void epoll_add(int epfd, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	if (fd >= 0)
		epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* The last bytes of a log file, one line, for error messages. */
static void log_tail(const char *path, char *buf, size_t n)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char tmp[512];
	ssize_t len;
	off_t size;

	buf[0] = '\0';
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size < 0)
		return;
	len = pread(fd, tmp, sizeof(tmp) - 1,
		    size > (off_t)sizeof(tmp) - 1 ? size - (off_t)sizeof(tmp) + 1 : 0);
	if (len <= 0)
		return;
	tmp[len] = '\0';
	while (len > 0 && (tmp[len - 1] == '\n' || tmp[len - 1] == '\r' || tmp[len - 1] == ' '))
		tmp[--len] = '\0';
	for (ssize_t i = 0; i < len; i++)
		if ((unsigned char)tmp[i] < ' ')
			tmp[i] = ' ';
	/* Keep the end: the last lines say what went wrong. */
	size_t want = n - 1 < (size_t)len ? n - 1 : (size_t)len;
	snprintf(buf, n, "%s", tmp + len - want);
}

/* Waits until name appears as a socket in dir (inotify watch set up before the check, so no
 * creation is missed), or the helper dies, or the deadline passes. */
static int wait_socket(int ino, const char *path, struct hc_child *helper, int cancel_fd,
		       int timeout_ms, struct hc_error *err)
{
	double deadline = hc_clock_ms() + timeout_ms;
	struct stat st;

	for (;;) {
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		if (hc_child_poll(helper)) {
			char desc[64];

			hc_child_status_str(helper->status, desc, sizeof(desc));
			return hc_error_setk(err, -EIO, HC_EK_BACKEND, "%s %s before listening",
					     helper->name, desc);
		}
		int left = hc_clock_left_ms(deadline);
		if (left == 0)
			return hc_error_setk(err, -ETIMEDOUT, HC_EK_BACKEND, "%s did not create %s",
					     helper->name, path);
		struct pollfd p[3] = {{.fd = ino, .events = POLLIN},
				      {.fd = helper->pidfd, .events = POLLIN},
				      {.fd = cancel_fd, .events = POLLIN}};
		int ready = poll(p, 3, left);
		if (ready > 0 && p[2].revents)
			return hc_error_setk(err, -ECANCELED, "cancelled", "interrupted");
		if (ready > 0 && (p[0].revents & POLLIN)) {
			char evbuf[4096]
				__attribute__((aligned(__alignof__(struct inotify_event))));
			ssize_t _unused_ n = read(ino, evbuf, sizeof(evbuf));
		}
	}
}

static int start_vsockd(struct hc_vm *vm, struct qemu_vm *q, const char *vsock_sock,
			struct hc_error *err)
{
	char bin[HC_PATH_MAX];
	_cleanup_close_ int ino = -1, logfd = -1;
	int r;

	r = find_vsockd(bin, sizeof(bin), err);
	if (r < 0)
		return r;
	r = hc_path_fmt(q->hvsock_uds, sizeof(q->hvsock_uds), err, "%s/hv.sock", vm->run_dir);
	if (r < 0)
		return r;
	/* The guest's connection to CID 2 port 1024 arrives on <uds>_1024: listen before the
	 * guest can boot (hybrid convention, hvsock.h). */
	r = hc_hvsock_port_path(q->hvsock_listen, sizeof(q->hvsock_listen), q->hvsock_uds,
				HC_BOOT_VSOCK_PORT_CONNECT, err);
	if (r < 0)
		return r;
	vm->agent_listen_fd = hc_hvsock_listen(q->hvsock_uds, HC_BOOT_VSOCK_PORT_CONNECT, err);
	if (vm->agent_listen_fd < 0)
		return vm->agent_listen_fd;

	/* vhost-device-vsock takes no pre-made socket: watch for its socket to appear. */
	ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ino < 0)
		return hc_error_errno(err, -errno, "inotify");
	if (inotify_add_watch(ino, vm->run_dir, IN_CREATE | IN_MOVED_TO) < 0)
		return hc_error_errno(err, -errno, "inotify %s", vm->run_dir);
	logfd = open(q->vsockd_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return hc_error_errno(err, -errno, "open %s", q->vsockd_log);
	char cid[16];
	snprintf(cid, sizeof(cid), "%d", HC_BOOT_VSOCK_GUEST_CID);
	const char *argv[] = {bin,	  "--guest-cid", cid,		"--socket",
			      vsock_sock, "--uds-path",	 q->hvsock_uds, NULL};
	struct hc_child_opts o = {.argv = argv,
				  .stdin_fd = -1,
				  .stdout_fd = logfd,
				  .stderr_fd = logfd,
				  .new_session = true};
	struct hc_jail_proc jp;
	hc_jail_proc_init(&jp, &q->jail, HC_JAIL_VSOCKD, vm->spec.accel, bin);
	r = hc_jail_proc_prepare(&jp, &o, err);
	if (r >= 0)
		r = hc_child_spawn(&q->vsockd, &o, err);
	hc_jail_proc_free(&jp);
	if (r < 0)
		return r;
	r = wait_socket(ino, vsock_sock, &q->vsockd, hc_vm_cancel_fd(&vm->spec), START_TIMEOUT_MS,
			err);
	if (r < 0) {
		char tail[200];

		log_tail(q->vsockd_log, tail, sizeof(tail));
		if (tail[0])
			hc_error_set(err, r, "%s: %s", err->message, tail);
	}
	return r;
}

static void qemu_destroy(struct hc_vm *vm)
{
	struct qemu_vm *q = vm->priv;

	if (q) {
		/* Everything at once, SIGKILL, then reap: QEMU holds nothing to save when the
		 * host ends the VM (the disk is read-only, the console file is written unbuffered,
		 * RAM in a shared file is in the page cache, a snapshot has completed before this),
		 * nor do the helpers once the guest is gone (a request virtiofsd is serving
		 * finishes its syscall first). An orderly QMP quit spent 36-100 ms under TCG on a
		 * loaded host, and helpers that waited for QEMU's hangup and then exited on their
		 * own another 40-90 ms, one after the other (docs/performance.md, teardown). The
		 * processes die in parallel; their kernel-side teardown is what is left. */
		if (q->qemu.pid && !q->qemu.reaped)
			hc_child_kill(&q->qemu, SIGKILL);
		for (size_t i = 0; i < q->n_fsd; i++)
			hc_child_kill(&q->fsd[i].child, SIGKILL);
		if (q->vsockd.pid)
			hc_child_kill(&q->vsockd, SIGKILL);
		hc_child_stop(&q->qemu, 0);
		hc_qmp_close(&q->qmp);
		for (size_t i = 0; i < q->n_fsd; i++)
			hc_virtiofsd_stop(&q->fsd[i], 0);
		if (q->vsockd.pid)
			hc_child_stop(&q->vsockd, 0);
		if (q->hvsock_listen[0])
			unlink(q->hvsock_listen);
		if (q->epfd >= 0)
			close(q->epfd);
		if (q->ram_fd >= 0)
			close(q->ram_fd);
		hc_jail_vm_close(&q->jail);
		free(q->fsd);
		free(q->fsd_what);
		free(q);
		vm->priv = NULL;
	}
	if (vm->agent_fd >= 0)
		close(vm->agent_fd);
	if (vm->agent_listen_fd >= 0)
		close(vm->agent_listen_fd);
	vm->agent_fd = vm->agent_listen_fd = vm->death_fd = -1;
}

/* HOTCELL_QEMU_ARGS: extra words (split on blanks) appended to QEMU's command line, for
 * debugging (`-d guest_errors`, a second QMP monitor, ...). */
static int append_extra_args(char ***argv, struct hc_error *err)
{
	const char *extra = getenv("HOTCELL_QEMU_ARGS");
	size_t n = 0, add = 0;
	char **v;

	if (!extra || !*extra)
		return 0;
	for (const char *p = extra; *p;) {
		p += strspn(p, " \t");
		if (*p)
			add++;
		p += strcspn(p, " \t");
	}
	while ((*argv)[n])
		n++;
	v = realloc(*argv, (n + add + 1) * sizeof(*v));
	if (!v)
		return hc_error_set(err, -ENOMEM, "out of memory");
	*argv = v;
	for (const char *p = extra; *p;) {
		p += strspn(p, " \t");
		size_t len = strcspn(p, " \t");

		if (len) {
			v[n] = strndup(p, len);
			if (!v[n])
				return hc_error_set(err, -ENOMEM, "out of memory");
			v[++n] = NULL;
		}
		p += len;
	}
	return 0;
}

/* QEMU's fd for the RAM memfd (after QMP's 3 and the agent's 4), and the path QEMU opens it by
 * (memory-backend-file takes a path, and reopening a memfd through /proc shares it). */
#define RAM_FD 5
/* The TAP of --network inet|full (src/net made it), as -netdev tap,fd=N. */
#define TAP_FD 6
#define RAM_PATH "/proc/self/fd/5"
/* A restore's device state (the snapshot's qemu-state, opened by us), as migrate-incoming's
 * "fd:7": a jailed QEMU cannot open root's 0600 file, and nothing needs binding into its root. */
#define STATE_FD 7
#define STATE_URI "fd:7"

static int helper_failure(struct qemu_vm *q, struct hc_error *err);
static int dead_child(struct hc_child *c, const char *what, const char *log, struct hc_error *err);

/* Starts virtiofsd(s), vhost-device-vsock and QEMU, and connects QMP. incoming: for a restore,
 * the device state file, handed to QEMU as STATE_FD, and QEMU waits for the migration stream
 * (-incoming defer); restore_mem: the snapshot's memory file, or NULL. Unjailed, QEMU maps the
 * memory file copy-on-write (share=off): every VM restored from it shares its pages. Jailed,
 * QEMU's uid cannot open root's 0600 file, and QEMU 7.2 opens it read-write even to map it
 * private, so the file is never handed over: its data is copied into a fresh memfd of ours,
 * as a cold VM's RAM (docs/security.md: the price is the template's resident pages per VM). */
static int launch(struct hc_vm *vm, const char *incoming, const char *restore_mem,
		  struct hc_error *err)
{
	const struct hc_vm_spec *spec = &vm->spec;
	char bin[HC_PATH_MAX], root_sock[HC_PATH_MAX], vsock_sock[HC_PATH_MAX];
	_cleanup_close_ int qmp_theirs = -1, agent_theirs = -1, logfd = -1, state_fd = -1;
	_cleanup_close_ int ram_src = -1;
	_cleanup_free_ char **vol_socks = NULL;
	char **argv = NULL;
	struct qemu_vm *q;
	int sp[2], r;

	if (vm->priv)
		return hc_error_set(err, -EALREADY, "qemu: VM already started");
	q = calloc(1, sizeof(*q));
	if (!q)
		return hc_error_set(err, -ENOMEM, "qemu: out of memory");
	q->qemu = (struct hc_child)HC_CHILD_INIT;
	q->vsockd = (struct hc_child)HC_CHILD_INIT;
	q->qmp = (struct hc_qmp)HC_QMP_INIT;
	q->qmp.cancel_fd = hc_vm_cancel_fd(spec);
	q->epfd = -1;
	q->ram_fd = -1;
	q->jail = (struct hc_jail_vm)HC_JAIL_VM_INIT;
	vm->priv = q;
	r = hc_jail_vm_open(&q->jail, !spec->no_jail && hc_jail_default_on(NULL), vm->run_dir,
			    spec->memory_mib, spec->cpus, err);
	if (r < 0)
		goto fail;
	vm->jailed = q->jail.on;

	r = find_qemu(bin, sizeof(bin), err);
	if (r < 0)
		goto fail;
	if ((r = hc_path_fmt(q->qemu_log, sizeof(q->qemu_log), err, "%s/qemu.log", vm->run_dir)) <
		    0 ||
	    (r = hc_path_fmt(q->vsockd_log, sizeof(q->vsockd_log), err, "%s/vsock.log",
			     vm->run_dir)) < 0 ||
	    (r = hc_path_fmt(root_sock, sizeof(root_sock), err, "%s/fs-root.sock", vm->run_dir)) <
		    0 ||
	    (r = hc_path_fmt(vsock_sock, sizeof(vsock_sock), err, "%s/vsock.sock", vm->run_dir)) <
		    0)
		goto fail;

	/* Control and agent channel: socketpairs, one end for QEMU, no path to race on. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		r = hc_error_errno(err, -errno, "socketpair");
		goto fail;
	}
	q->qmp.fd = sp[0];
	qmp_theirs = sp[1];
	if (spec->channel == HC_CHANNEL_SERIAL) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
			r = hc_error_errno(err, -errno, "socketpair");
			goto fail;
		}
		vm->agent_fd = sp[0];
		agent_theirs = sp[1];
	}

	/* virtiofsd for the rootfs and each volume: their sockets listen before QEMU runs. */
	q->n_fsd = (spec->rootfs_mode == HC_ROOTFS_DIR ? 1 : 0) + spec->n_volumes;
	q->fsd = calloc(q->n_fsd + 1, sizeof(*q->fsd));
	q->fsd_what = calloc(q->n_fsd + 1, sizeof(*q->fsd_what));
	vol_socks = calloc(spec->n_volumes + 1, sizeof(*vol_socks));
	if (!q->fsd || !q->fsd_what || !vol_socks) {
		r = hc_error_set(err, -ENOMEM, "qemu: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < q->n_fsd; i++)
		q->fsd[i] = (struct hc_virtiofsd)HC_VIRTIOFSD_INIT;
	size_t k = 0;
	if (spec->rootfs_mode == HC_ROOTFS_DIR) {
		char log[HC_PATH_MAX];

		if ((r = hc_path_fmt(log, sizeof(log), err, "%s/virtiofsd-root.log", vm->run_dir)) <
		    0)
			goto fail;
		q->fsd_what[k] = "the rootfs";
		r = hc_virtiofsd_start_jailed(&q->fsd[k++], &q->jail, spec->rootfs_dir,
					      !spec->rootfs_rw, root_sock, log, err);
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < spec->n_volumes; i++, k++) {
		char log[HC_PATH_MAX], sock[HC_PATH_MAX];

		if ((r = hc_path_fmt(log, sizeof(log), err, "%s/virtiofsd-vol%zu.log", vm->run_dir,
				     i)) < 0 ||
		    (r = hc_path_fmt(sock, sizeof(sock), err, "%s/fs-vol%zu.sock", vm->run_dir,
				     i)) < 0)
			goto fail;
		if (strlen(sock) > HC_SOCK_PATH_MAX) {
			r = hc_error_set(err, -ENAMETOOLONG, "socket path too long: %s", sock);
			goto fail;
		}
		q->fsd_what[k] = spec->volumes[i].guest;
		r = hc_virtiofsd_start_jailed(&q->fsd[k], &q->jail, spec->volumes[i].host,
					      spec->volumes[i].readonly, sock, log, err);
		if (r < 0)
			goto fail;
		vol_socks[i] = q->fsd[k].socket_path;
	}
	if (spec->channel == HC_CHANNEL_VSOCK) {
		r = start_vsockd(vm, q, vsock_sock, err);
		if (r < 0)
			goto fail;
	}

	struct hc_qemu_argv_in in = {
		.qemu = bin,
		.console_log = vm->console_log,
		.qmp_fd = 3,
		.agent_fd = agent_theirs >= 0 ? 4 : -1,
		.rootfs_sock = spec->rootfs_mode == HC_ROOTFS_DIR ? root_sock : NULL,
		.volume_socks = (const char *const *)vol_socks,
		.vsock_sock = spec->channel == HC_CHANNEL_VSOCK ? vsock_sock : NULL,
		.incoming = incoming != NULL,
		.tap_fd = spec->net_tap ? TAP_FD : -1,
	};
	/* The one configuration QEMU 7.2 can snapshot (block rootfs, serial channel): RAM in a
	 * memfd of ours, handed to QEMU, so a snapshot skips it (x-ignore-shared) and copies the
	 * file while the VM is paused. A memfd rather than a file in the runtime dir: nothing on
	 * disk to write back (the runtime dir need not be a tmpfs) and nothing left behind. */
	if (incoming) {
		state_fd = open(incoming, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (state_fd < 0) {
			r = hc_error_errno(err, -errno, "open %s", incoming);
			goto fail;
		}
	}
	if (restore_mem && !q->jail.on) {
		in.mem_path = restore_mem;
		in.mem_private = true;
	} else if (restore_mem || (spec->rootfs_mode == HC_ROOTFS_BLOCK && !spec->n_volumes &&
				   spec->channel == HC_CHANNEL_SERIAL)) {
		off_t size = (off_t)(spec->memory_mib ? spec->memory_mib : 256) << 20;

		q->ram_fd = memfd_create("hotcell-ram", MFD_CLOEXEC);
		if (q->ram_fd < 0 || ftruncate(q->ram_fd, size) < 0) {
			r = hc_error_errno(err, -errno, "qemu: guest RAM memfd");
			goto fail;
		}
		/* Copied once QEMU is on its way (below). */
		if (restore_mem) {
			ram_src = open(restore_mem, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (ram_src < 0) {
				r = hc_error_errno(err, -errno, "open %s", restore_mem);
				goto fail;
			}
		}
		in.mem_path = RAM_PATH;
	}
	r = machine_from_env(&in.machine, &in.bios, err);
	if (r < 0)
		goto fail;
	r = hc_qemu_argv_build(spec, &in, &argv, err);
	if (r >= 0)
		r = append_extra_args(&argv, err);
	if (r < 0)
		goto fail;
	if (hc_log_enabled(HC_LOG_DEBUG)) {
		struct hc_buf line = HC_BUF_INIT(0);

		for (char **p = argv; *p; p++)
			if (hc_buf_printf(&line, "%s%s", p == argv ? "" : " ", *p) < 0)
				break;
		hc_debug("qemu: %s", line.data ? line.data : "");
		hc_buf_free(&line);
	}
	logfd = open(q->qemu_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0) {
		r = hc_error_errno(err, -errno, "open %s", q->qemu_log);
		goto fail;
	}
	struct hc_fd_map fds[5] = {{qmp_theirs, 3}};
	size_t n_fds = 1;
	if (agent_theirs >= 0)
		fds[n_fds++] = (struct hc_fd_map){agent_theirs, 4};
	if (q->ram_fd >= 0)
		fds[n_fds++] = (struct hc_fd_map){q->ram_fd, RAM_FD};
	if (spec->net_tap)
		fds[n_fds++] = (struct hc_fd_map){spec->net_tap_fd, TAP_FD};
	if (state_fd >= 0)
		fds[n_fds++] = (struct hc_fd_map){state_fd, STATE_FD};
	struct hc_child_opts o = {
		.argv = (const char *const *)argv,
		.stdin_fd = -1,
		.stdout_fd = logfd,
		.stderr_fd = logfd,
		.fds = fds,
		.n_fds = n_fds,
		.new_session = true,
	};
	if (hc_vm_cancelled(spec)) {
		hc_qemu_argv_free(argv);
		r = hc_vm_cancel_error(err);
		goto fail;
	}
	struct hc_jail_proc jp;
	hc_jail_proc_init(&jp, &q->jail, HC_JAIL_QEMU, spec->accel, bin);
	hc_jail_proc_bind(&jp, spec->kernel, false);
	hc_jail_proc_bind(&jp, spec->initrd, false);
	hc_jail_proc_bind(&jp, spec->rootfs_disk, false);
	jp.tap = spec->net_tap != NULL; /* its TAP as an fd: no host network namespace needed */
	r = hc_jail_proc_prepare(&jp, &o, err);
	if (r >= 0)
		r = hc_child_spawn(&q->qemu, &o, err);
	hc_jail_proc_free(&jp);
	hc_qemu_argv_free(argv);
	if (r < 0)
		goto fail;
	hc_closep(&qmp_theirs);
	hc_closep(&agent_theirs);

	/* A jailed restore's RAM goes into the memfd while QEMU starts, off the critical path:
	 * QEMU only maps it until migrate-incoming (-incoming defer keeps it INMIGRATE, where
	 * not even the kernel and ROM images are written into guest RAM) and we send that only
	 * after the greeting below. */
	if (ram_src >= 0) {
		double t0 = hc_clock_ms();

		r = hc_path_copy_fd_into(ram_src, q->ram_fd, err);
		if (r < 0) {
			hc_error_prefix(err, "qemu: %s into the guest RAM memfd", restore_mem);
			goto fail;
		}
		hc_debug("qemu: restore: RAM copied into a memfd for the jail in %.1f ms (QEMU "
			 "starting meanwhile)",
			 hc_clock_ms() - t0);
		hc_closep(&ram_src);
	}

	/* The greeting comes once QEMU has built the machine: a QEMU that rejects its command
	 * line exits before, and its stderr says why. */
	r = hc_qmp_open(&q->qmp, q->qmp.fd,
			spec->boot_timeout_ms > 0 ? spec->boot_timeout_ms : START_TIMEOUT_MS, err);
	if (r == -ECANCELED)
		goto fail;
	if (r < 0) {
		char tail[300];

		hc_child_wait(&q->qemu, 2000);
		log_tail(q->qemu_log, tail, sizeof(tail));
		/* QEMU's "vhost_backend_init failed: Protocol error" only says that a helper
		 * hung up: the helper's own log says why. */
		if (helper_failure(q, err) < 0)
			goto fail;
		if (tail[0])
			hc_error_setk(err, r, HC_EK_VM, "qemu did not start: %s", tail);
		else if (r == -ETIMEDOUT)
			hc_error_setk(err, r, HC_EK_VM,
				      "qemu did not start within the boot timeout (%d ms): %s",
				      spec->boot_timeout_ms, err->message);
		else
			hc_error_prefix(err, "qemu did not start");
		hc_error_kind(err, HC_EK_VM);
		goto fail;
	}
	q->qmp_up = true;

	q->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (q->epfd < 0) {
		r = hc_error_errno(err, -errno, "epoll");
		goto fail;
	}
	epoll_add(q->epfd, q->qemu.pidfd);
	epoll_add(q->epfd, q->qmp.fd);
	for (size_t i = 0; i < q->n_fsd; i++)
		epoll_add(q->epfd, q->fsd[i].child.pidfd);
	epoll_add(q->epfd, q->vsockd.pidfd);
	vm->death_fd = q->epfd;
	hc_debug("qemu pid %d started (QEMU %s)", (int)q->qemu.pid, q->qmp.version);
	return 0;

fail:
	qemu_destroy(vm);
	return r;
}

/* A helper (virtiofsd, vhost-device-vsock) that has exited, with its own last log lines:
 * -EIO with err set, or 0 when every helper still runs. One that failed (a non-zero status, a
 * signal) is the cause; one that exited 0 only saw QEMU hang up, so it is named only when no
 * helper failed. */
static int helper_failure(struct qemu_vm *q, struct hc_error *err)
{
	struct hc_child *dead = NULL;
	const char *log = NULL;
	char what[300] = "";

	for (int pass = 0; pass < 2 && !dead; pass++) {
		for (size_t i = 0; i <= q->n_fsd && !dead; i++) {
			struct hc_child *c = i < q->n_fsd ? &q->fsd[i].child : &q->vsockd;

			if (!c->pid || !hc_child_poll(c))
				continue;
			if (pass == 0 && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0)
				continue;
			dead = c;
			if (i < q->n_fsd) {
				snprintf(what, sizeof(what), "virtiofsd for %s", q->fsd_what[i]);
				log = q->fsd[i].log_path;
			} else {
				snprintf(what, sizeof(what), "vhost-device-vsock");
				log = q->vsockd_log;
			}
		}
	}
	return dead ? dead_child(dead, what, log, err) : 0;
}

static int qemu_start(struct hc_vm *vm, struct hc_error *err)
{
	return launch(vm, NULL, NULL, err);
}

static int dead_child(struct hc_child *c, const char *what, const char *log, struct hc_error *err)
{
	char desc[64], tail[200] = "";

	hc_child_status_str(c->status, desc, sizeof(desc));
	if (log)
		log_tail(log, tail, sizeof(tail));
	return hc_error_setk(err, -EIO, HC_EK_VM, "%s %s%s%s", what, desc, tail[0] ? ": " : "",
			     tail);
}

static bool console_has(struct hc_vm *vm, const char *needle)
{
	_cleanup_close_ int fd = open(vm->console_log, O_RDONLY | O_CLOEXEC);
	char tmp[16384];
	off_t size;
	ssize_t n;

	if (fd < 0)
		return false;
	size = lseek(fd, 0, SEEK_END);
	if (size < 0)
		return false;
	n = pread(fd, tmp, sizeof(tmp) - 1,
		  size > (off_t)sizeof(tmp) - 1 ? size - (off_t)sizeof(tmp) + 1 : 0);
	if (n <= 0)
		return false;
	tmp[n] = '\0';
	return memmem(tmp, (size_t)n, needle, strlen(needle)) != NULL;
}

static int qemu_check(struct hc_vm *vm, struct hc_error *err)
{
	struct qemu_vm *q = vm->priv;
	struct hc_error e = {0};

	if (!q)
		return hc_error_setk(err, -ESRCH, HC_EK_VM, "qemu: VM not running");
	if (q->qmp_up && !q->qmp.eof) {
		hc_qmp_drain(&q->qmp, &e);
		if (q->qmp.eof) {
			/* A closed QMP socket never stops being readable: out of the set. */
			epoll_ctl(q->epfd, EPOLL_CTL_DEL, q->qmp.fd, NULL);
		}
	}
	/* QEMU closing QMP, or a SHUTDOWN event, means it is on its way out: let it finish so
	 * the report has its exit status. */
	if (q->qmp.eof || q->qmp.shutdown)
		hc_child_wait(&q->qemu, 2000);
	if (hc_child_poll(&q->qemu)) {
		if (q->qmp.panicked || console_has(vm, "Kernel panic")) {
			return hc_error_setk(err, -EIO, HC_EK_VM, "guest kernel panic");
		}
		if (WIFEXITED(q->qemu.status) && WEXITSTATUS(q->qemu.status) == 0) {
			return hc_error_setk(err, -ESHUTDOWN, HC_EK_VM, "the VM ended (%s)",
					     q->qmp.shutdown_reason[0] ? q->qmp.shutdown_reason
								       : "QEMU exited");
		}
		/* A helper that died first is the cause, QEMU's exit the consequence. */
		if (helper_failure(q, err) < 0)
			return err->code;
		return dead_child(&q->qemu, "QEMU", q->qemu_log, err);
	}
	if (q->qmp.panicked) {
		return hc_error_setk(err, -EIO, HC_EK_VM, "guest panicked");
	}
	if (q->qmp.n_stop > q->stops_expected) {
		char status[48] = "?";

		/* After an internal error (e.g. KVM_EXIT_INTERNAL_ERROR) QEMU pauses and never
		 * exits: query-status says why (qapi/run-state.json RunState). */
		if (hc_qmp_query_status(&q->qmp, QMP_TIMEOUT_MS, status, sizeof(status), &e) == 0 &&
		    hc_streq(status, "running")) {
			q->stops_expected = q->qmp.n_stop;
		} else {
			return hc_error_setk(err, -EIO, HC_EK_VM, "the VM stopped: %s", status);
		}
	}
	return helper_failure(q, err);
}

static int qemu_pause(struct hc_vm *vm, struct hc_error *err)
{
	struct qemu_vm *q = vm->priv;

	if (!q || !q->qmp_up)
		return hc_error_setk(err, -ESRCH, HC_EK_VM, "qemu: VM not running");
	if (q->paused)
		return 0; /* QEMU sends no second STOP */
	q->stops_expected++;
	int r = hc_qmp_execute(&q->qmp, "stop", NULL, QMP_TIMEOUT_MS, NULL, err);
	if (r < 0)
		q->stops_expected--;
	else
		q->paused = true;
	return r;
}

static int qemu_resume(struct hc_vm *vm, struct hc_error *err)
{
	struct qemu_vm *q = vm->priv;

	if (!q || !q->qmp_up)
		return hc_error_setk(err, -ESRCH, HC_EK_VM, "qemu: VM not running");
	int r = hc_qmp_execute(&q->qmp, "cont", NULL, QMP_TIMEOUT_MS, NULL, err);
	if (r >= 0)
		q->paused = false;
	return r;
}

/* ---- snapshot and restore -------------------------------------------------------------------
 * QEMU 7.2 has no file: migration URI: the device state goes through `exec:cat` (FACTS.md),
 * with the bandwidth cap lifted (128 MiB/s by default). vhost-user-fs and vhost-user-vsock
 * cannot migrate in 7.2, so only a block rootfs without volumes, on the serial channel, can be
 * snapshotted (hc_vm_snapshot_check, DESIGN.md §3).
 *
 * The directory holds (docs/snapshots.md):
 *   qemu-state  the migration stream: device state, and the RAM when there is no memory file
 *   memory      the guest RAM (exactly -m bytes, sparse), when the VM's RAM was our memfd:
 *               migrated with x-ignore-shared (the stream skips shared RAM), and copied while
 *               the VM is paused, so a resumed VM cannot change the saved snapshot. An
 *               unjailed restore maps it share=off: copy-on-write, never written, shared by
 *               every restored VM; a jailed one copies it into a memfd of ours (launch).
 * An unjailed restored VM's RAM is such a private mapping, which QEMU cannot skip: its own
 * snapshots carry the RAM in the stream, and restore into a fresh memfd; a jailed restored
 * VM's RAM is our memfd again, saved as a memory file. Both files are written under
 * temp names and renamed into place, so a VM mapping an older memory file keeps its pages. */

#define SNAPSHOT_FILE "qemu-state"
#define SNAPSHOT_MEM "memory"
#define SNAPSHOT_TIMEOUT_MS 120000

/* "exec:cat > 'DIR/NAME'", where a snapshot writes its stream (a restore reads it from an fd,
 * STATE_URI): the shell runs it, so the path may not hold a quote. adir is absolute. */
static int state_uri(const char *adir, const char *name, char *uri, size_t n, struct hc_error *err)
{
	if (strchr(adir, '\''))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "snapshot directory '%s' has a quote in its path", adir);
	return hc_path_fmt(uri, n, err, "exec:cat > '%s/%s'", adir, name);
}

static bool migration_over(const struct hc_qmp *q, void *arg)
{
	return hc_streq(q->migration, "completed") || hc_streq(q->migration, "failed") ||
	       hc_streq(q->migration, "cancelled") || q->eof;
}

/* Sets the capabilities (MIGRATION events; x-ignore-shared, which both ends must agree on: the
 * stream's layout depends on it), runs command (migrate or migrate-incoming) and waits for the
 * end. */
static int migrate(struct qemu_vm *q, const char *command, const char *uri, bool ignore_shared,
		   struct hc_error *err)
{
	_cleanup_free_ char *args = NULL, *caps = NULL;
	int r;

	if (asprintf(&caps,
		     "{\"capabilities\": [{\"capability\": \"events\", \"state\": true}, "
		     "{\"capability\": \"x-ignore-shared\", \"state\": %s}]}",
		     ignore_shared ? "true" : "false") < 0) {
		caps = NULL;
		return hc_error_set(err, -ENOMEM, "out of memory");
	}
	r = hc_qmp_execute(&q->qmp, "migrate-set-capabilities", caps, QMP_TIMEOUT_MS, NULL, err);
	if (r >= 0 && hc_streq(command, "migrate"))
		r = hc_qmp_execute(&q->qmp, "migrate-set-parameters",
				   "{\"max-bandwidth\": 107374182400}", QMP_TIMEOUT_MS, NULL, err);
	if (r < 0)
		return r;
	json_t *o = json_pack("{s:s}", "uri", uri);
	args = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!args)
		return hc_error_set(err, -ENOMEM, "out of memory");
	q->qmp.migration[0] = '\0';
	r = hc_qmp_execute(&q->qmp, command, args, QMP_TIMEOUT_MS, NULL, err);
	if (r >= 0)
		r = hc_qmp_wait(&q->qmp, SNAPSHOT_TIMEOUT_MS, migration_over, NULL, err);
	if (r < 0)
		return r;
	if (!hc_streq(q->qmp.migration, "completed")) {
		_cleanup_free_ char *info = NULL;
		struct hc_error e = {0};

		if (hc_qmp_execute(&q->qmp, "query-migrate", NULL, QMP_TIMEOUT_MS, &info, &e) < 0)
			info = NULL;
		return hc_error_setk(err, -EIO, HC_EK_VM, "qemu: %s %s%s%s", command,
				     q->qmp.migration[0] ? q->qmp.migration : "ended",
				     info ? ": " : "", info ? info : "");
	}
	return 0;
}

static int qemu_snapshot(struct hc_vm *vm, const char *dir, struct hc_error *err)
{
	struct qemu_vm *q = vm->priv;
	char uri[HC_PATH_MAX + 32], adir[PATH_MAX], tmp_name[64], tmp[HC_PATH_MAX],
		state[HC_PATH_MAX], mem[HC_PATH_MAX], id[9];
	int r;

	if (!q || !q->qmp_up)
		return hc_error_setk(err, -ESRCH, HC_EK_VM, "qemu: VM not running");
	if (!q->paused)
		return hc_error_setk(err, -EBUSY, HC_EK_VM,
				     "qemu: a snapshot needs a paused VM (pause it first)");
	r = hc_path_mkdir_p(dir, 0700, err);
	if (r < 0)
		goto out;
	if (!realpath(dir, adir)) {
		r = hc_error_errno(err, -errno, "snapshot directory '%s'", dir);
		goto out;
	}
	hc_path_random_id(id, 8);
	snprintf(tmp_name, sizeof(tmp_name), "." SNAPSHOT_FILE ".tmp-%s", id);
	/* A jailed QEMU (and the cat it runs) sees only its runtime dir: the state is written
	 * there, then copied into dir. */
	const char *wdir = q->jail.on ? vm->run_dir : adir;
	if ((r = state_uri(wdir, tmp_name, uri, sizeof(uri), err)) < 0 ||
	    (r = hc_path_fmt(tmp, sizeof(tmp), err, "%s/%s", wdir, tmp_name)) < 0 ||
	    (r = hc_path_fmt(state, sizeof(state), err, "%s/" SNAPSHOT_FILE, adir)) < 0 ||
	    (r = hc_path_fmt(mem, sizeof(mem), err, "%s/" SNAPSHOT_MEM, adir)) < 0)
		goto out;
	double t0 = hc_clock_ms();
	r = migrate(q, "migrate", uri, q->ram_fd >= 0, err);
	double t1 = hc_clock_ms();
	/* Still paused: the RAM file is what the device state goes with. */
	if (r >= 0 && q->ram_fd >= 0)
		r = hc_path_copy_fd_atomic(q->ram_fd, mem, 0600, err);
	else if (r >= 0 && unlink(mem) < 0 && errno != ENOENT)
		r = hc_error_errno(err, -errno, "remove the old %s", mem);
	if (r >= 0 && q->jail.on) {
		_cleanup_close_ int fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		r = fd < 0 ? hc_error_errno(err, -errno, "open %s", tmp)
			   : hc_path_copy_fd_atomic(fd, state, 0600, err);
	} else if (r >= 0 && rename(tmp, state) < 0) {
		r = hc_error_errno(err, -errno, "rename %s", state);
	}
	if (q->jail.on)
		unlink(tmp);
	if (r < 0)
		unlink(tmp);
	else
		hc_debug("qemu: snapshot: device state %.1f ms, RAM %s %.1f ms", t1 - t0,
			 q->ram_fd >= 0 ? "file copied in" : "in the stream", hc_clock_ms() - t1);
out:
	return r < 0 ? hc_error_prefix(err, "snapshot to '%s'", dir) : 0;
}

/* Into a VM that was never started: the same command line as the snapshotted VM (same spec,
 * the RAM mapped from the snapshot's memory file when there is one), waiting for the stream,
 * which QMP then names; the guest resumes where it was paused. The directory is only read. */
static int qemu_restore(struct hc_vm *vm, const char *dir, struct hc_error *err)
{
	char adir[PATH_MAX], state[HC_PATH_MAX], mem[HC_PATH_MAX];
	off_t want = (off_t)(vm->spec.memory_mib ? vm->spec.memory_mib : 256) << 20;
	bool have_mem;
	struct stat st;
	struct qemu_vm *q;
	int r;

	if (vm->priv)
		return hc_error_set(err, -EALREADY,
				    "qemu: restore needs a VM that was not started");
	if (!realpath(dir, adir))
		return hc_error_errno(err, -errno, "snapshot directory '%s'", dir);
	if ((r = hc_path_fmt(state, sizeof(state), err, "%s/" SNAPSHOT_FILE, adir)) < 0 ||
	    (r = hc_path_fmt(mem, sizeof(mem), err, "%s/" SNAPSHOT_MEM, adir)) < 0)
		return r;
	if (access(state, R_OK) < 0)
		return hc_error_errno(err, -errno, "snapshot '%s'", state);
	have_mem = stat(mem, &st) == 0;
	if (!have_mem && errno != ENOENT)
		return hc_error_errno(err, -errno, "snapshot '%s'", mem);
	/* QEMU would grow a short file (writing the snapshot) and refuse a long one. */
	if (have_mem && (!S_ISREG(st.st_mode) || st.st_size != want))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "snapshot '%s' holds %lld bytes of RAM, the VM has %lld", mem,
				     (long long)st.st_size, (long long)want);
	/* Jailed as a cold VM: the state comes as an fd, the RAM as a memfd copy (launch). */
	r = launch(vm, state, have_mem ? mem : NULL, err);
	if (r < 0)
		return r;
	q = vm->priv;
	r = migrate(q, "migrate-incoming", STATE_URI, have_mem, err);
	/* Left paused: the incoming migration ends with the vCPUs stopped until "cont". */
	if (r >= 0 && vm->restore_paused)
		q->paused = true;
	else if (r >= 0)
		r = hc_qmp_execute(&q->qmp, "cont", NULL, QMP_TIMEOUT_MS, NULL, err);
	if (r < 0) {
		qemu_destroy(vm);
		return hc_error_prefix(err, "restore from '%s'", dir);
	}
	/* The virtio-serial channel carries on over the new socketpair (FACTS.md): no hangup, no
	 * new HELLO. */
	return 0;
}

const struct hc_vmm_ops hc_vmm_qemu_ops = {
	.name = "qemu",
	.caps = HC_CAP_NETWORK | HC_CAP_NET_TAP | HC_CAP_SHARED_DIRS | HC_CAP_ROOTFS_DIR |
		HC_CAP_ROOTFS_BLOCK | HC_CAP_CHANNEL_SERIAL | HC_CAP_CHANNEL_VSOCK | HC_CAP_PAUSE |
		HC_CAP_TCG | HC_CAP_SNAPSHOT | HC_CAP_RESTORE | HC_CAP_SNAPSHOT_NEEDS_BLOCK |
		HC_CAP_SNAPSHOT_NEEDS_SERIAL | HC_CAP_RESTORE_PAUSED,
	.probe = qemu_probe,
	.start = qemu_start,
	.check = qemu_check,
	.pause = qemu_pause,
	.resume = qemu_resume,
	.snapshot = qemu_snapshot,
	.restore = qemu_restore,
	.identity = qemu_identity,
	.destroy = qemu_destroy,
};
