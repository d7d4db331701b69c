/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/log.h"
#include "vmm/binary.h"
#include "vmm/unixsock.h"
#include "vmm/virtiofsd.h"

#define BOOKWORM_VIRTIOFSD "/usr/lib/qemu/virtiofsd"

int hc_virtiofsd_find(char *path, size_t n, struct hc_error *err)
{
	const char *env = getenv("HOTCELL_VIRTIOFSD");

	if (env && *env) {
		if (access(env, X_OK) < 0)
			return hc_error_errno(err, -errno, "HOTCELL_VIRTIOFSD=%s", env);
		snprintf(path, n, "%s", env);
		return 0;
	}
	if (hc_binary_which("virtiofsd", path, n) == 0)
		return 0;
	if (access(BOOKWORM_VIRTIOFSD, X_OK) == 0) {
		snprintf(path, n, "%s", BOOKWORM_VIRTIOFSD);
		return 0;
	}
	return hc_error_setk(err, -ENOENT, HC_EK_BACKEND,
			     "virtiofsd not found (install Debian's qemu-system-common, or put "
			     "virtiofsd on PATH, or set HOTCELL_VIRTIOFSD)");
}

/* The Rust virtiofsd (gitlab.com/virtio-fs/virtiofsd) takes --shared-dir; the C one from
 * QEMU <= 7.2 takes -o source=. Tell them apart by name: the C one lives in QEMU's libexec
 * directory. A $HOTCELL_VIRTIOFSD is asked for its --help once. */
bool hc_virtiofsd_is_rust(const char *bin)
{
	static char cached_bin[HC_PATH_MAX];
	static bool cached_rust;

	if (hc_streq(bin, BOOKWORM_VIRTIOFSD))
		return false;
	if (hc_streq(bin, cached_bin))
		return cached_rust;

	const char *argv[] = {bin, "--help", NULL};
	_cleanup_free_ char *out = NULL;
	struct hc_error e = {0};
	int r = hc_child_run(argv, 5000, 65536, &out, &e);

	cached_rust = r >= 0 && out && strstr(out, "--shared-dir");
	snprintf(cached_bin, sizeof(cached_bin), "%s", bin);
	return cached_rust;
}

struct pre_exec_arg {
	const char *dir;
	bool readonly;
};

/* In the child, before exec: a private mount namespace in which dir is a read-only bind mount
 * of itself. Nothing of this propagates back to the host (the whole tree is made a slave). */
static int pre_exec(void *p)
{
	const struct pre_exec_arg *a = p;

	if (unshare(CLONE_NEWNS) < 0)
		return -errno;
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return -errno;
	if (!a->readonly)
		return 0;
	if (mount(a->dir, a->dir, NULL, MS_BIND, NULL) < 0)
		return -errno;
	if (mount(NULL, a->dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
		return -errno;
	return 0;
}

int hc_virtiofsd_start(struct hc_virtiofsd *v, const char *dir, bool readonly,
		       const char *socket_path, const char *log_path, struct hc_error *err)
{
	return hc_virtiofsd_start_jailed(v, NULL, dir, readonly, socket_path, log_path, err);
}

int hc_virtiofsd_start_jailed(struct hc_virtiofsd *v, struct hc_jail_vm *jail, const char *dir,
			      bool readonly, const char *socket_path, const char *log_path,
			      struct hc_error *err)
{
	bool jailed = jail && jail->on;
	char bin[HC_PATH_MAX], source[HC_PATH_MAX + 16];
	_cleanup_close_ int lfd = -1, logfd = -1;
	struct pre_exec_arg pa = {.dir = dir, .readonly = readonly};
	struct stat st;
	int r;

	*v = (struct hc_virtiofsd)HC_VIRTIOFSD_INIT;
	if (stat(dir, &st) < 0)
		return hc_error_errno(err, -errno, "shared directory %s", dir);
	if (!S_ISDIR(st.st_mode))
		return hc_error_set(err, -ENOTDIR, "shared directory %s: not a directory", dir);
	r = hc_virtiofsd_find(bin, sizeof(bin), err);
	if (r < 0)
		return r;
	snprintf(v->socket_path, sizeof(v->socket_path), "%s", socket_path);
	snprintf(v->log_path, sizeof(v->log_path), "%s", log_path);
	lfd = hc_unixsock_listen(socket_path, 1, err);
	if (lfd < 0)
		return lfd;
	logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return hc_error_errno(err, -errno, "open %s", log_path);

	/* An immutable tree may be cached by the guest without limit (cache=always); a
	 * read-write volume is shared with the host, so only briefly (auto). The file limit is
	 * left as it is: raising it needs CAP_SYS_RESOURCE, which root may lack (FACTS.md). */
	const char *argv[16];
	size_t i = 0;
	argv[i++] = bin;
	argv[i++] = "--fd=3";
	argv[i++] = "--rlimit-nofile=0";
	if (hc_virtiofsd_is_rust(bin)) {
		snprintf(source, sizeof(source), "--shared-dir=%s", dir);
		argv[i++] = source;
		argv[i++] = readonly ? "--cache=always" : "--cache=auto";
		/* Jailed, its own namespace sandbox would need CAP_SYS_ADMIN: chroot instead,
		 * inside hotcell's namespaces. */
		argv[i++] = jailed ? "--sandbox=chroot" : "--sandbox=namespace";
		if (readonly)
			argv[i++] = "--readonly";
		argv[i++] = "--modcaps=-mknod";
	} else {
		snprintf(source, sizeof(source), "source=%s", dir);
		argv[i++] = "-o";
		argv[i++] = source;
		argv[i++] = "-o";
		argv[i++] = readonly ? "cache=always" : "cache=auto";
		argv[i++] = "-o";
		argv[i++] = "log_level=warn";
		/* No device nodes on the host from a guest's mknod (jailed, the jail has no
		 * CAP_MKNOD to give; unjailed, virtiofsd must not ask for it). */
		argv[i++] = "-o";
		argv[i++] = "modcaps=-mknod";

		/* The C virtiofsd hands every request from the queue thread to a pool of 64 by
		 * default: a thread hop per FUSE request, which the boot path (a few hundred
		 * lookups and reads of the image tree) pays in series. Served in the queue
		 * thread instead: 30-130 ms less per `hotcell run IMAGE true` under TCG
		 * (three interleaved series of 10-12). A read-write volume keeps the pool, so a
		 * slow host write does not stall the guest's other requests. The Rust
		 * virtiofsd's default is already 0. */
		if (readonly)
			argv[i++] = "--thread-pool-size=0";
	}
	argv[i] = NULL;

	struct hc_fd_map fds[] = {{lfd, 3}};
	struct hc_child_opts o = {
		.argv = argv,
		.stdin_fd = -1,
		.stdout_fd = logfd,
		.stderr_fd = logfd,
		.fds = fds,
		.n_fds = 1,
		.new_session = true,
		/* Jailed, the jail's own read-only bind does what pre_exec does. */
		.pre_exec = jailed ? NULL : pre_exec,
		.pre_exec_arg = &pa,
	};
	struct hc_jail_proc jp;
	hc_jail_proc_init(&jp, jail, HC_JAIL_VIRTIOFSD, HC_ACCEL_AUTO, bin);
	hc_jail_proc_bind(&jp, dir, !readonly);
	/* The C virtiofsd's -o sandbox=chroot cannot start here: libcap-ng then reads
	 * /proc/<pid>/status, which a chroot into the share does not have. Its namespace sandbox
	 * needs CAP_SYS_ADMIN (and CAP_SETPCAP to drop it) while it sets itself up; it drops both
	 * itself before serving the first request (its setup_capabilities). */
	if (!hc_virtiofsd_is_rust(bin))
		jp.start_caps = HC_JAIL_CAP_SYS_ADMIN_AT_START;
	r = hc_jail_proc_prepare(&jp, &o, err);
	if (r >= 0)
		r = hc_child_spawn(&v->child, &o, err);
	hc_jail_proc_free(&jp);
	if (r < 0) {
		unlink(socket_path);
		return hc_error_prefix(err, "virtiofsd for %s", dir);
	}
	hc_debug("virtiofsd pid %d serves %s%s on %s", (int)v->child.pid, dir,
		 readonly ? " (read-only)" : "", socket_path);
	return 0;
}

void hc_virtiofsd_stop(struct hc_virtiofsd *v, int grace_ms)
{
	if (v->child.pid)
		hc_child_stop(&v->child, grace_ms);
	if (v->socket_path[0])
		unlink(v->socket_path);
	v->socket_path[0] = '\0';
}
