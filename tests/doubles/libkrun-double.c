/* SPDX-License-Identifier: MIT */
/*
 * A strict test double of libkrun (libkrun cannot be installed here): a shared library that
 * exports libkrun's C API (include/libkrun.h, 1.18 and later) and is loaded by hotcell through
 * HOTCELL_LIBKRUN.
 *
 * It checks the calls as libkrun documents them: context ids from krun_create_ctx only,
 * krun_add_vsock only after krun_disable_implicit_vsock and only once, vsock ports and the port
 * map only with a vsock device, port map entries "HOST:GUEST" without duplicates, a listening
 * vsock port refused over an existing file, krun_set_vm_config, a root file system and
 * krun_set_exec before krun_start_enter, nothing after it. A wrong call gets libkrun's error
 * number and a "VIOLATION" line in the log.
 *
 * In place of libkrun's VMM, krun_start_enter brings the configured workload up for real, and
 * keeps libkrun's process contract: it never returns on success and exits the process with the
 * workload's exit code. The guest runs under QEMU (TCG, -M microvm): each virtio-fs device is
 * served by virtiofsd (read-only ones read-only), the vsock device by vhost-device-vsock, whose
 * "<uds>_PORT" convention is pointed at the unix socket of each krun_add_vsock_port; the console
 * goes to the krun_set_console_output file. libkrun's own init (/init.krun, injected into the
 * root) is played by a busybox script in an initramfs: it mounts the root device, /proc, /sys
 * and /dev under it and runs the krun_set_exec workload as its child, chrooted into the root,
 * with exactly the krun_set_exec environment, then prints the exit code on the console and
 * reboots. The double waits for QEMU and exits with that code: so the worker/parent plumbing,
 * the exit-status path and the vsock channel are all exercised end to end. (The other faithful
 * option, running the workload in private namespaces on the host, would not exercise vsock.)
 *
 * The kernel is the krun_set_kernel one, else $HOTCELL_LIBKRUN_DOUBLE_KERNEL (libkrunfw's
 * stand-in).
 *
 * krun_start_enter first logs the jail it finds itself in ("JAIL uid=... capeff=...", as the
 * VMM doubles do), where libkrun's VMM would run: hotcell's worker jail. It cannot run its
 * guest there: its virtiofsd (QEMU 7.2's C one) needs CAP_SYS_ADMIN, which the worker's jail
 * never has, so jailed it dies saying so (docs/security.md); the guest runs with --no-jail.
 *
 * Scenario data, from the environment:
 *   HOTCELL_LIBKRUN_DOUBLE_LOG=FILE     every call appended, one line each
 *   HOTCELL_LIBKRUN_DOUBLE_FAIL=NAME    that function fails with -EINVAL
 *   HOTCELL_LIBKRUN_DOUBLE_GUEST=qemu|crash  run the guest (default) or die at once as a VMM
 *                                       whose guest hit an internal error (exit 1, a last line)
 *   HOTCELL_LIBKRUN_DOUBLE_QEMU, HOTCELL_VHOST_DEVICE_VSOCK, HOTCELL_LIBKRUN_DOUBLE_BUSYBOX
 *
 * Built in variants by tests/doubles/libkrun-*.c including this file:
 *   LKD_NO_TSI_SWITCH   no krun_disable_implicit_vsock / krun_add_vsock (older than 1.18)
 *   LKD_NO_SET_KERNEL   no krun_set_kernel
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/child.h"
#include "core/clock.h"
#include "core/path.h"
#include "vmm-double.h"
#include "vmm/virtiofsd.h"

#define EXPORT __attribute__((visibility("default")))

/* The prototypes of include/libkrun.h that the double implements. */
int32_t krun_set_log_level(uint32_t level);
int32_t krun_create_ctx(void);
int32_t krun_free_ctx(uint32_t ctx_id);
int32_t krun_set_vm_config(uint32_t ctx_id, uint8_t num_vcpus, uint32_t ram_mib);
int32_t krun_set_root(uint32_t ctx_id, const char *root_path);
int32_t krun_add_virtiofs(uint32_t ctx_id, const char *c_tag, const char *c_path);
int32_t krun_add_virtiofs2(uint32_t ctx_id, const char *c_tag, const char *c_path,
			   uint64_t shm_size);
int32_t krun_add_virtiofs3(uint32_t ctx_id, const char *c_tag, const char *c_path,
			   uint64_t shm_size, bool read_only);
int32_t krun_disable_implicit_vsock(uint32_t ctx_id);
int32_t krun_add_vsock(uint32_t ctx_id, uint32_t tsi_features);
int32_t krun_add_vsock_port(uint32_t ctx_id, uint32_t port, const char *c_filepath);
int32_t krun_add_vsock_port2(uint32_t ctx_id, uint32_t port, const char *c_filepath, bool listen);
int32_t krun_set_port_map(uint32_t ctx_id, const char *const port_map[]);
int32_t krun_set_console_output(uint32_t ctx_id, const char *c_filepath);
int32_t krun_set_workdir(uint32_t ctx_id, const char *workdir_path);
int32_t krun_set_exec(uint32_t ctx_id, const char *exec_path, const char *const argv[],
		      const char *const envp[]);
int32_t krun_set_env(uint32_t ctx_id, const char *const envp[]);
int32_t krun_set_kernel(uint32_t ctx_id, const char *kernel_path, uint32_t kernel_format,
			const char *initramfs, const char *cmdline);
int32_t krun_start_enter(uint32_t ctx_id);
#define MAX_CTX 8
#define MAX_FS 16
#define MAX_PORTS 16
#define MAX_STR 64
#define ROOT_TAG "/dev/root"

struct fs {
	char tag[64];
	char path[HC_PATH_MAX];
	bool ro;
};

struct ctx {
	bool used;
	bool vm_config;
	unsigned vcpus, ram_mib;
	struct fs fs[MAX_FS];
	size_t n_fs;
	bool implicit_vsock_disabled, vsock_added;
	uint32_t tsi;
	struct {
		uint32_t port;
		char path[HC_PATH_MAX];
		bool listen;
	} ports[MAX_PORTS];
	size_t n_ports;
	bool port_map_set;
	char console[HC_PATH_MAX];
	char kernel[HC_PATH_MAX];
	char workdir[HC_PATH_MAX];
	char exec[HC_PATH_MAX];
	char *argv[MAX_STR], *envp[MAX_STR];
	bool exec_set;
};

static struct ctx ctxs[MAX_CTX];
static bool entered;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	const char *p = getenv("HOTCELL_LIBKRUN_DOUBLE_LOG");
	va_list ap;
	FILE *f;

	if (!p || !*p || !(f = fopen(p, "ae")))
		return;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

static int violation(int code, const char *fn, const char *why)
{
	logf_("VIOLATION %s: %s", fn, why);
	fprintf(stderr, "libkrun-double: %s: %s\n", fn, why);
	return code;
}

/* The context, or NULL with libkrun's -ENOENT; also the scenario's forced failures. */
static struct ctx *get(uint32_t id, const char *fn, int *r)
{
	const char *fail = getenv("HOTCELL_LIBKRUN_DOUBLE_FAIL");

	*r = 0;
	if (entered) {
		*r = violation(-EINVAL, fn, "called after krun_start_enter");
		return NULL;
	}
	if (id >= MAX_CTX || !ctxs[id].used) {
		*r = violation(-ENOENT, fn, "no such context");
		return NULL;
	}
	if (fail && !strcmp(fail, fn)) {
		logf_("FAIL %s (scenario)", fn);
		*r = -EINVAL;
		return NULL;
	}
	return &ctxs[id];
}

static char *dup_or_die(const char *s)
{
	char *d = strdup(s ? s : "");

	if (!d)
		abort();
	return d;
}

EXPORT int32_t krun_set_log_level(uint32_t level)
{
	logf_("krun_set_log_level %u", level);
	return level > 5 ? -EINVAL : 0;
}

EXPORT int32_t krun_create_ctx(void)
{
	for (int i = 0; i < MAX_CTX; i++) {
		if (!ctxs[i].used) {
			memset(&ctxs[i], 0, sizeof(ctxs[i]));
			ctxs[i].used = true;
			logf_("krun_create_ctx -> %d", i);
			return i;
		}
	}
	return -ENOMEM;
}

EXPORT int32_t krun_free_ctx(uint32_t id)
{
	int r;
	struct ctx *c = get(id, "krun_free_ctx", &r);

	if (!c)
		return r;
	logf_("krun_free_ctx %u", id);
	c->used = false;
	return 0;
}

EXPORT int32_t krun_set_vm_config(uint32_t id, uint8_t vcpus, uint32_t ram_mib)
{
	int r;
	struct ctx *c = get(id, "krun_set_vm_config", &r);

	if (!c)
		return r;
	logf_("krun_set_vm_config %u vcpus=%u ram_mib=%u", id, vcpus, ram_mib);
	if (!vcpus || !ram_mib)
		return violation(-EINVAL, "krun_set_vm_config", "zero vCPUs or memory");
	c->vm_config = true;
	c->vcpus = vcpus;
	c->ram_mib = ram_mib;
	return 0;
}

static int add_fs(uint32_t id, const char *fn, const char *tag, const char *path, bool ro)
{
	int r;
	struct ctx *c = get(id, fn, &r);
	struct stat st;

	if (!c)
		return r;
	logf_("%s %u tag=%s path=%s ro=%d", fn, id, tag ? tag : "(null)", path ? path : "(null)",
	      ro);
	if (!tag || !*tag || strlen(tag) >= sizeof(c->fs[0].tag))
		return violation(-EINVAL, fn, "bad tag");
	if (!path || stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return violation(-EINVAL, fn, "path is not a directory");
	for (size_t i = 0; i < c->n_fs; i++)
		if (!strcmp(c->fs[i].tag, tag))
			return violation(-EINVAL, fn, "tag used twice");
	if (c->n_fs >= MAX_FS)
		return -E2BIG;
	snprintf(c->fs[c->n_fs].tag, sizeof(c->fs[0].tag), "%s", tag);
	snprintf(c->fs[c->n_fs].path, HC_PATH_MAX, "%s", path);
	c->fs[c->n_fs++].ro = ro;
	return 0;
}

EXPORT int32_t krun_set_root(uint32_t id, const char *path)
{
	return add_fs(id, "krun_set_root", ROOT_TAG, path, false);
}

EXPORT int32_t krun_add_virtiofs(uint32_t id, const char *tag, const char *path)
{
	return add_fs(id, "krun_add_virtiofs", tag, path, false);
}

EXPORT int32_t krun_add_virtiofs2(uint32_t id, const char *tag, const char *path, uint64_t shm)
{
	return add_fs(id, "krun_add_virtiofs2", tag, path, false);
}

EXPORT int32_t krun_add_virtiofs3(uint32_t id, const char *tag, const char *path, uint64_t shm,
				  bool ro)
{
	return add_fs(id, "krun_add_virtiofs3", tag, path, ro);
}

#ifndef LKD_NO_TSI_SWITCH
EXPORT int32_t krun_disable_implicit_vsock(uint32_t id)
{
	int r;
	struct ctx *c = get(id, "krun_disable_implicit_vsock", &r);

	if (!c)
		return r;
	logf_("krun_disable_implicit_vsock %u", id);
	c->implicit_vsock_disabled = true;
	return 0;
}

EXPORT int32_t krun_add_vsock(uint32_t id, uint32_t tsi_features)
{
	int r;
	struct ctx *c = get(id, "krun_add_vsock", &r);

	if (!c)
		return r;
	logf_("krun_add_vsock %u tsi_features=%u", id, tsi_features);
	if (!c->implicit_vsock_disabled)
		return violation(-EINVAL, "krun_add_vsock",
				 "krun_disable_implicit_vsock was not called first");
	if (c->vsock_added)
		return violation(-EINVAL, "krun_add_vsock", "only one vsock device");
	if (tsi_features & ~3u)
		return violation(-EINVAL, "krun_add_vsock", "unknown TSI feature bits");
	c->vsock_added = true;
	c->tsi = tsi_features;
	return 0;
}
#endif

/* libkrun: ports and the port map need a vsock device (-ENODEV when it was disabled). */
static bool have_vsock(const struct ctx *c)
{
	return !c->implicit_vsock_disabled || c->vsock_added;
}

EXPORT int32_t krun_add_vsock_port2(uint32_t id, uint32_t port, const char *path, bool listen)
{
	int r;
	struct ctx *c = get(id, "krun_add_vsock_port2", &r);

	if (!c)
		return r;
	logf_("krun_add_vsock_port2 %u port=%u path=%s listen=%d", id, port, path ? path : "",
	      listen);
	if (!path || !*path)
		return violation(-EINVAL, "krun_add_vsock_port2", "no path");
	if (listen && access(path, F_OK) == 0)
		return violation(-EEXIST, "krun_add_vsock_port2", "listen path exists");
	if (!have_vsock(c))
		return violation(-ENODEV, "krun_add_vsock_port2", "no vsock device");
	if (c->n_ports >= MAX_PORTS)
		return -E2BIG;
	c->ports[c->n_ports].port = port;
	snprintf(c->ports[c->n_ports].path, HC_PATH_MAX, "%s", path);
	c->ports[c->n_ports++].listen = listen;
	return 0;
}

EXPORT int32_t krun_add_vsock_port(uint32_t id, uint32_t port, const char *path)
{
	return krun_add_vsock_port2(id, port, path, false);
}

EXPORT int32_t krun_set_port_map(uint32_t id, const char *const map[])
{
	int r;
	struct ctx *c = get(id, "krun_set_port_map", &r);
	char line[1024] = "";
	size_t n = 0;

	if (!c)
		return r;
	if (!map) {
		logf_("krun_set_port_map %u NULL", id);
		/* Allowed by libkrun, and it exposes every guest port: hotcell must never. */
		violation(0, "krun_set_port_map", "NULL: every listening guest port is exposed");
	} else {
		for (size_t i = 0; map[i]; i++) {
			unsigned h, g;
			int end = 0;

			if (sscanf(map[i], "%u:%u%n", &h, &g, &end) != 2 || map[i][end] ||
			    h > 65535 || g > 65535)
				return violation(-EINVAL, "krun_set_port_map",
						 "entry not HOST:GUEST");
			for (size_t j = 0; j < i; j++) {
				unsigned h2, g2;

				if (sscanf(map[j], "%u:%u", &h2, &g2) == 2 && (h2 == h || g2 == g))
					return violation(-EINVAL, "krun_set_port_map",
							 "duplicate port");
			}
			n += (size_t)snprintf(line + n, n < sizeof(line) ? sizeof(line) - n : 0,
					      "%s%s", i ? "," : "", map[i]);
			if (n >= sizeof(line))
				n = sizeof(line) - 1;
		}
		logf_("krun_set_port_map %u [%s]", id, line);
	}
	if (!have_vsock(c))
		return violation(-ENODEV, "krun_set_port_map", "no vsock device");
	c->port_map_set = true;
	return 0;
}

EXPORT int32_t krun_set_console_output(uint32_t id, const char *path)
{
	int r;
	struct ctx *c = get(id, "krun_set_console_output", &r);

	if (!c)
		return r;
	logf_("krun_set_console_output %u %s", id, path ? path : "(null)");
	if (!path || !*path)
		return violation(-EINVAL, "krun_set_console_output", "no path");
	snprintf(c->console, sizeof(c->console), "%s", path);
	return 0;
}

EXPORT int32_t krun_set_workdir(uint32_t id, const char *path)
{
	int r;
	struct ctx *c = get(id, "krun_set_workdir", &r);

	if (!c)
		return r;
	logf_("krun_set_workdir %u %s", id, path ? path : "(null)");
	if (!path || path[0] != '/')
		return violation(-EINVAL, "krun_set_workdir", "not an absolute path");
	snprintf(c->workdir, sizeof(c->workdir), "%s", path);
	return 0;
}

static int copy_strv(char **dst, const char *const *src, const char *fn)
{
	size_t i;

	for (i = 0; dst[i]; i++)
		free(dst[i]);
	memset(dst, 0, MAX_STR * sizeof(*dst));
	for (i = 0; src && src[i]; i++) {
		if (i + 1 >= MAX_STR)
			return violation(-E2BIG, fn, "too many strings");
		dst[i] = dup_or_die(src[i]);
	}
	return 0;
}

EXPORT int32_t krun_set_exec(uint32_t id, const char *path, const char *const argv[],
			     const char *const envp[])
{
	int r;
	struct ctx *c = get(id, "krun_set_exec", &r);
	char line[2048] = "";
	size_t n = 0;

	if (!c)
		return r;
	for (size_t i = 0; envp && envp[i]; i++)
		n += (size_t)snprintf(line + n, n < sizeof(line) ? sizeof(line) - n : 0, " %s",
				      envp[i]);
	size_t argc = 0;

	while (argv && argv[argc])
		argc++;
	logf_("krun_set_exec %u %s argc=%zu env:%s", id, path ? path : "(null)", argc,
	      envp ? line : " NULL");
	if (!path || !*path)
		return violation(-EINVAL, "krun_set_exec", "no path");
	/* libkrun then passes the caller's whole environment to the guest: never what we want. */
	if (!envp)
		violation(0, "krun_set_exec",
			  "envp NULL: the host environment leaks into the guest");
	snprintf(c->exec, sizeof(c->exec), "%s", path);
	if ((r = copy_strv(c->argv, argv, "krun_set_exec")) < 0 ||
	    (r = copy_strv(c->envp, envp, "krun_set_exec")) < 0)
		return r;
	c->exec_set = true;
	return 0;
}

EXPORT int32_t krun_set_env(uint32_t id, const char *const envp[])
{
	int r;
	struct ctx *c = get(id, "krun_set_env", &r);

	if (!c)
		return r;
	logf_("krun_set_env %u", id);
	return copy_strv(c->envp, envp, "krun_set_env");
}

#ifndef LKD_NO_SET_KERNEL
EXPORT int32_t krun_set_kernel(uint32_t id, const char *path, uint32_t format,
			       const char *initramfs, const char *cmdline)
{
	int r;
	struct ctx *c = get(id, "krun_set_kernel", &r);
	unsigned char m[4] = {0};
	int fd;

	if (!c)
		return r;
	logf_("krun_set_kernel %u %s format=%u initramfs=%s cmdline=%s", id, path ? path : "",
	      format, initramfs ? initramfs : "(null)", cmdline ? cmdline : "(null)");
	if (format > 5)
		return violation(-EINVAL, "krun_set_kernel", "unknown format");
	fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return violation(-EINVAL, "krun_set_kernel", "cannot open the kernel");
	r = (int)read(fd, m, 4);
	close(fd);
	if (format == 1 && (r != 4 || memcmp(m, "\177ELF", 4)))
		return violation(-EINVAL, "krun_set_kernel", "format ELF but not an ELF file");
	snprintf(c->kernel, sizeof(c->kernel), "%s", path);
	return 0;
}
#endif

/* ---- krun_start_enter: the VM, under QEMU ------------------------------------------------ */

static const char *envor(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

static FILE *cpio;
static unsigned cpio_ino = 1;

static void cpio_pad(size_t n)
{
	static const char zero[4];

	fwrite(zero, 1, (4 - (n & 3)) & 3, cpio);
}

/* One "newc" entry (Documentation/driver-api/early-userspace/buffer-format.rst). */
static void cpio_entry(const char *name, unsigned mode, unsigned rmaj, unsigned rmin,
		       const void *data, size_t size)
{
	size_t ns = strlen(name) + 1;

	fprintf(cpio, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", cpio_ino++,
		mode, 0u, 0u, 1u, 0u, (unsigned)size, 0u, 0u, rmaj, rmin, (unsigned)ns, 0u);
	fwrite(name, 1, ns, cpio);
	cpio_pad(110 + ns);
	if (size)
		fwrite(data, 1, size, cpio);
	cpio_pad(size);
}

/* Appends 'S' single-quoted for sh. */
static void shq(char *buf, size_t n, const char *s)
{
	size_t u = strlen(buf);

	u += (size_t)snprintf(buf + u, u < n ? n - u : 0, " '");
	for (; *s && u + 5 < n; s++) {
		if (*s == '\'')
			u += (size_t)snprintf(buf + u, n - u, "'\\''");
		else
			buf[u++] = *s, buf[u] = 0;
	}
	if (u + 2 < n)
		snprintf(buf + u, n - u, "'");
}

/* libkrun's init, played by busybox: the root device and the API file systems, the workload
 * as its child with exactly its environment, its exit code on the console. */
static int write_initramfs(const struct ctx *c, const char *path)
{
	char script[16384], wd[HC_PATH_MAX + 8] = "";
	_cleanup_free_ char *bb = NULL;
	size_t bb_len = 0;

	if (hc_path_read_file(envor("HOTCELL_LIBKRUN_DOUBLE_BUSYBOX", "/bin/busybox"), 8u << 20,
			      &bb, &bb_len, NULL) < 0)
		return -ENOENT;
	{
		char tmp[HC_PATH_MAX + 8];

		snprintf(tmp, sizeof(tmp), "/root%s", c->workdir[0] ? c->workdir : "/");
		shq(wd, sizeof(wd), tmp);
	}
	snprintf(script, sizeof(script),
		 "#!/bin/busybox sh\n"
		 "B=/bin/busybox\n"
		 "$B mount -t devtmpfs dev /dev\n"
		 "$B mount -t virtiofs krunroot /root || echo 'init.krun: cannot mount the root'\n"
		 "$B mount -t proc proc /root/proc\n"
		 "$B mount -t sysfs sys /root/sys\n"
		 "$B mount -t devtmpfs dev /root/dev\n"
		 "cd%s\n"
		 "$B env -i",
		 wd);
	for (size_t i = 0; c->envp[i]; i++)
		shq(script, sizeof(script), c->envp[i]);
	strncat(script, " $B chroot /root", sizeof(script) - strlen(script) - 1);
	shq(script, sizeof(script), c->exec);
	for (size_t i = 0; c->argv[i]; i++)
		shq(script, sizeof(script), c->argv[i]);
	strncat(script, "\nrc=$?\necho \"krun-double-init: exit $rc\"\n$B sync\n$B reboot -f\n",
		sizeof(script) - strlen(script) - 1);

	cpio = fopen(path, "we");
	if (!cpio)
		return -errno;
	cpio_entry("dev", S_IFDIR | 0755, 0, 0, NULL, 0);
	cpio_entry("dev/console", S_IFCHR | 0600, 5, 1, NULL, 0);
	cpio_entry("bin", S_IFDIR | 0755, 0, 0, NULL, 0);
	cpio_entry("bin/busybox", S_IFREG | 0755, 0, 0, bb, bb_len);
	cpio_entry("proc", S_IFDIR | 0755, 0, 0, NULL, 0);
	cpio_entry("sys", S_IFDIR | 0755, 0, 0, NULL, 0);
	cpio_entry("root", S_IFDIR | 0755, 0, 0, NULL, 0);
	cpio_entry("init", S_IFREG | 0755, 0, 0, script, strlen(script));
	cpio_entry("TRAILER!!!", 0, 0, 0, NULL, 0);
	return fclose(cpio) == 0 ? 0 : -EIO;
}

static int wait_sock(const char *path, struct hc_child *c, int timeout_ms)
{
	double deadline = hc_clock_ms() + timeout_ms;
	char dir[HC_PATH_MAX];
	struct stat st;
	int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), r = -ETIMEDOUT;

	snprintf(dir, sizeof(dir), "%s", path);
	inotify_add_watch(ino, dirname(dir), IN_CREATE);
	for (;;) {
		struct pollfd p[2] = {{.fd = ino, .events = POLLIN},
				      {.fd = c->pidfd, .events = POLLIN}};
		char ev[4096];

		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
			r = 0;
			break;
		}
		if (hc_child_poll(c)) {
			r = -ECHILD;
			break;
		}
		if (poll(p, 2, hc_clock_left_ms(deadline)) == 0)
			break;
		while (read(ino, ev, sizeof(ev)) > 0)
			;
	}
	close(ino);
	return r;
}

/* The last "krun-double-init: exit N" of the console. */
static int console_exit_code(const char *console)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	const char *p, *last = NULL, *key = "krun-double-init: exit ";
	int code;

	if (hc_path_read_file(console, 64u << 20, &data, &len, NULL) < 0)
		return -1;
	for (p = data; (p = strstr(p, key)); p++)
		last = p;
	if (!last || sscanf(last + strlen(key), "%d", &code) != 1)
		return -1;
	return code;
}

_Noreturn static void vmm_die(const char *console, const char *msg)
{
	int fd = open(console, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	fprintf(stderr, "libkrun-double: %s\n", msg);
	if (fd >= 0) {
		dprintf(fd, "%s\n", msg);
		close(fd);
	}
	logf_("EXIT 1 (%s)", msg);
	_exit(1);
}

_Noreturn static void run_guest(struct ctx *c)
{
	struct hc_virtiofsd fsd[MAX_FS];
	struct hc_child qemu = HC_CHILD_INIT, vsockd = HC_CHILD_INIT;
	struct hc_error err = {0};
	char dir[HC_PATH_MAX], p[HC_PATH_MAX], initrd[HC_PATH_MAX], vhu[HC_PATH_MAX];
	char hv[HC_PATH_MAX], con[HC_PATH_MAX + 64], smp[16], mem[32], memobj[96];
	char fsarg[MAX_FS][2][HC_PATH_MAX + 64], vsarg[HC_PATH_MAX + 32];
	const char *argv[64 + 4 * MAX_FS];
	const char *kernel = c->kernel[0] ? c->kernel : getenv("HOTCELL_LIBKRUN_DOUBLE_KERNEL");
	size_t n = 0;
	int code;

	if (!strcmp(envor("HOTCELL_LIBKRUN_DOUBLE_GUEST", "qemu"), "crash"))
		vmm_die(c->console, "libkrun-double: KVM_EXIT_INTERNAL_ERROR: emulation failure "
				    "(scenario)");
	if (!kernel)
		vmm_die(c->console, "no kernel (krun_set_kernel, or HOTCELL_LIBKRUN_DOUBLE_KERNEL "
				    "as libkrunfw)");
	/* libkrun serves virtio-fs in-process; the double cannot, and QEMU 7.2's C virtiofsd,
	 * which it runs instead, needs CAP_SYS_ADMIN to start (its namespace sandbox; its
	 * chroot one dies under its own seccomp filter). The worker's jail never has it. */
	if (prctl(PR_CAPBSET_READ, 21 /* CAP_SYS_ADMIN */, 0, 0, 0) != 1)
		vmm_die(c->console, "jailed (no CAP_SYS_ADMIN): the double cannot "
				    "run its guest's C virtiofsd here; run with --no-jail");
	/* Scratch beside the console log: the VM's runtime dir, which hotcell removes. */
	snprintf(p, sizeof(p), "%s", c->console);
	snprintf(dir, sizeof(dir), "%s/krun-double", dirname(p));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		vmm_die(c->console, "cannot create the scratch dir");
	snprintf(initrd, sizeof(initrd), "%s/init.cpio", dir);
	if (write_initramfs(c, initrd) < 0)
		vmm_die(c->console, "cannot write the initramfs (busybox?)");

	for (size_t i = 0; i < c->n_fs; i++) {
		char sock[HC_PATH_MAX], log[HC_PATH_MAX];

		fsd[i] = (struct hc_virtiofsd)HC_VIRTIOFSD_INIT;
		snprintf(sock, sizeof(sock), "%s/fs%zu.sock", dir, i);
		snprintf(log, sizeof(log), "%s/fs%zu.log", dir, i);
		if (hc_virtiofsd_start(&fsd[i], c->fs[i].path, c->fs[i].ro, sock, log, &err) < 0)
			vmm_die(c->console, err.message);
		snprintf(fsarg[i][0], sizeof(fsarg[i][0]), "socket,id=fs%zu,path=%s", i, sock);
		snprintf(fsarg[i][1], sizeof(fsarg[i][1]),
			 "vhost-user-fs-device,chardev=fs%zu,tag=%s", i,
			 strcmp(c->fs[i].tag, ROOT_TAG) ? c->fs[i].tag : "krunroot");
	}
	snprintf(vhu, sizeof(vhu), "%s/vhu.sock", dir);
	snprintf(hv, sizeof(hv), "%s/hv", dir);
	if (have_vsock(c)) {
		const char *vargv[] = {envor("HOTCELL_VHOST_DEVICE_VSOCK",
					     "/var/cache/hotcell-tools/usr/bin/vhost-device-vsock"),
				       "--guest-cid",
				       "3",
				       "--socket",
				       vhu,
				       "--uds-path",
				       hv,
				       NULL};
		struct hc_child_opts o = {
			.argv = vargv, .stdin_fd = -1, .stdout_fd = 2, .stderr_fd = 2};

		/* The guest's connect to port P reaches "<uds>_P": the krun_add_vsock_port path. */
		for (size_t i = 0; i < c->n_ports; i++) {
			snprintf(p, sizeof(p), "%s_%u", hv, c->ports[i].port);
			if (!c->ports[i].listen && symlink(c->ports[i].path, p) < 0)
				vmm_die(c->console, "cannot link a vsock port");
		}
		if (hc_child_spawn(&vsockd, &o, &err) < 0)
			vmm_die(c->console, err.message);
		if (wait_sock(vhu, &vsockd, 10000) < 0)
			vmm_die(c->console, "vhost-device-vsock did not start");
	}
	snprintf(smp, sizeof(smp), "%u", c->vcpus);
	snprintf(mem, sizeof(mem), "%uM", c->ram_mib);
	snprintf(memobj, sizeof(memobj), "memory-backend-memfd,id=mem,size=%uM,share=on",
		 c->ram_mib);
	snprintf(con, sizeof(con), "file,id=con,path=%s,append=on", c->console);
	argv[n++] = envor("HOTCELL_LIBKRUN_DOUBLE_QEMU", "qemu-system-x86_64");
	argv[n++] = "-M";
	argv[n++] = "microvm,acpi=off,memory-backend=mem";
	argv[n++] = "-accel";
	argv[n++] = "tcg";
	argv[n++] = "-smp";
	argv[n++] = smp;
	argv[n++] = "-m";
	argv[n++] = mem;
	argv[n++] = "-object";
	argv[n++] = memobj;
	argv[n++] = "-global";
	argv[n++] = "virtio-mmio.force-legacy=false";
	argv[n++] = "-nodefaults";
	argv[n++] = "-no-user-config";
	argv[n++] = "-display";
	argv[n++] = "none";
	argv[n++] = "-chardev";
	argv[n++] = con;
	argv[n++] = "-serial";
	argv[n++] = "chardev:con";
	argv[n++] = "-no-reboot";
	argv[n++] = "-kernel";
	argv[n++] = kernel;
	argv[n++] = "-initrd";
	argv[n++] = initrd;
	argv[n++] = "-append";
	argv[n++] = "console=ttyS0 reboot=t panic=-1 quiet";
	for (size_t i = 0; i < c->n_fs; i++) {
		argv[n++] = "-chardev";
		argv[n++] = fsarg[i][0];
		argv[n++] = "-device";
		argv[n++] = fsarg[i][1];
	}
	if (have_vsock(c)) {
		snprintf(vsarg, sizeof(vsarg), "socket,id=vs,path=%s", vhu);
		argv[n++] = "-chardev";
		argv[n++] = vsarg;
		argv[n++] = "-device";
		argv[n++] = "vhost-user-vsock-device,chardev=vs";
	}
	argv[n] = NULL;
	struct hc_child_opts o = {.argv = argv, .stdin_fd = -1, .stdout_fd = 2, .stderr_fd = 2};
	if (hc_child_spawn(&qemu, &o, &err) < 0)
		vmm_die(c->console, err.message);
	(void)hc_child_wait(&qemu, -1);
	hc_child_stop(&vsockd, 0);
	for (size_t i = 0; i < c->n_fs; i++)
		hc_virtiofsd_stop(&fsd[i], 1000);
	code = console_exit_code(c->console);
	hc_path_rm_rf(dir, NULL);
	if (code < 0)
		vmm_die(c->console,
			"libkrun-double: the guest ended without an exit code from init");
	logf_("EXIT %d", code);
	/* libkrun's VMM: exit() with the workload's exit code. */
	_exit(code);
}

EXPORT int32_t krun_start_enter(uint32_t id)
{
	const char *lp = getenv("HOTCELL_LIBKRUN_DOUBLE_LOG");
	FILE *jl = lp && *lp ? fopen(lp, "ae") : NULL;
	bool root = false;
	int r;

	/* Where libkrun's VMM would run: the tests check the worker's jail from this line. */
	if (jl) {
		dbl_log_jail(jl);
		fclose(jl);
	}
	struct ctx *c = get(id, "krun_start_enter", &r);
	if (!c)
		return r;
	logf_("krun_start_enter %u", id);
	for (size_t i = 0; i < c->n_fs; i++)
		root = root || !strcmp(c->fs[i].tag, ROOT_TAG);
	if (!c->vm_config)
		return violation(-EINVAL, "krun_start_enter", "krun_set_vm_config was not called");
	if (!root)
		return violation(-EINVAL, "krun_start_enter", "no root file system");
	if (!c->exec_set)
		return violation(-EINVAL, "krun_start_enter", "krun_set_exec was not called");
	if (!c->port_map_set)
		logf_("NOTE krun_start_enter: no port map: every listening guest port is exposed");
	if (!c->console[0])
		return violation(-EINVAL, "krun_start_enter",
				 "no console output (the double needs one)");
	entered = true;
	run_guest(c);
}
