/* SPDX-License-Identifier: MIT */
/*
 * The jail: the parent builds a plan (hc_jail_proc_prepare), the child runs it as one straight
 * line of steps (apply), bubblewrap's shape. Each step names itself in its error, so a start
 * that fails says which wall could not be built (fail closed).
 */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "core/log.h"
#include "jail/jail-internal.h"

extern char **environ;

#define MAX_MOUNTS 320
#define MAX_ENV 64
#define JAIL_HOSTNAME "hotcell"

struct mnt {
	const char *path;
	bool rw, dir, dev;
};

struct hc_jail_plan {
	char root[HC_PATH_MAX];
	int unshare_flags;
	struct mnt mounts[MAX_MOUNTS];
	size_t n_mounts;
	char cg_procs[HC_JAIL_CG_PROCS][HC_PATH_MAX];
	int n_cg;
	bool drop_uid;	 /* false for the virtio-fs servers: uid 0 with keep_caps only */
	bool set_groups; /* with !drop_uid: the supplementary groups are groups[] (the kvm one) */
	pid_t parent;	 /* the spawning process, for the parent-death check after the uid drop */
	uid_t uid;
	gid_t gid;
	gid_t groups[1];
	size_t n_groups;
	cap_value_t keep_caps[16];
	size_t n_keep;
	struct {
		int res;
		rlim_t want;
	} rlimits[5];
	int landlock_abi; /* > 0: the Landlock step runs, with this ABI's rights */
	struct sock_fprog filter;
	char *env[MAX_ENV + 1];
	size_t n_env;
	char *extra[HC_JAIL_MAX_EXTRA]; /* HOTCELL_JAIL_EXTRA's paths, owned */
	size_t n_extra;
};

const char *hc_jail_kind_name(enum hc_jail_kind kind)
{
	static const char *const names[] = {
		[HC_JAIL_QEMU] = "qemu",
		[HC_JAIL_VIRTIOFSD] = "virtiofsd",
		[HC_JAIL_VSOCKD] = "vhost-device-vsock",
		[HC_JAIL_CLOUD_HYPERVISOR] = "cloud-hypervisor",
		[HC_JAIL_LIBKRUN] = "libkrun",
	};
	return (unsigned)kind < HC_JAIL_N_KINDS ? names[kind] : "?";
}

bool hc_jail_default_on(const char **why_not)
{
	if (geteuid() != 0) {
		if (why_not)
			*why_not = "hotcell is not running as root: it cannot make namespaces, "
				   "mounts or another uid for its VMM processes";
		return false;
	}
	if (why_not)
		*why_not = NULL;
	return true;
}

/* ---- in the child: the steps, in order ------------------------------------------------- */

#define STEP(cond, name)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return hc_error_errno(err, -errno, "jail step '%s'", name);                \
	} while (0)

/* mkdir -p of path's parents inside the root, then the target itself (a dir or an empty file). */
static int make_target(const char *root, const char *path, bool dir, struct hc_error *err)
{
	char buf[HC_PATH_MAX * 2];
	int n = snprintf(buf, sizeof(buf), "%s%s", root, path);
	size_t rl = strlen(root);

	if (n < 0 || (size_t)n >= sizeof(buf))
		return hc_error_set(err, -ENAMETOOLONG, "jail step 'root': %s", path);
	for (char *p = buf + rl + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return hc_error_errno(err, -errno, "jail step 'root': mkdir %s", buf + rl);
		*p = '/';
	}
	if (dir) {
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return hc_error_errno(err, -errno, "jail step 'root': mkdir %s", path);
	} else {
		int fd = open(buf, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			return hc_error_errno(err, -errno, "jail step 'root': create %s", path);
		close(fd);
	}
	return 0;
}

static int bind_one(const char *root, const struct mnt *m, struct hc_error *err)
{
	char tgt[HC_PATH_MAX * 2];
	int r = make_target(root, m->path, m->dir, err);
	if (r < 0)
		return r;
	snprintf(tgt, sizeof(tgt), "%s%s", root, m->path);
	if (mount(m->path, tgt, NULL, MS_BIND | MS_REC, NULL) < 0)
		return hc_error_errno(err, -errno, "jail step 'bind %s'", m->path);
	unsigned long fl = MS_BIND | MS_REMOUNT | MS_NOSUID;
	if (!m->rw)
		fl |= MS_RDONLY;
	if (!m->dev)
		fl |= MS_NODEV;
	if (mount(NULL, tgt, NULL, fl, NULL) < 0)
		return hc_error_errno(err, -errno, "jail step 'remount %s%s'", m->path,
				      m->rw ? "" : " read-only");
	return 0;
}

static int drop_caps(const struct hc_jail_plan *p, struct hc_error *err)
{
	/* The bounding set first: it needs CAP_SETPCAP, which the uid change takes away. */
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
		bool keep = false;
		for (size_t i = 0; i < p->n_keep; i++)
			keep |= p->keep_caps[i] == c;
		if (!keep && cap_drop_bound(c) < 0 && errno != EINVAL)
			return hc_error_errno(err, -errno,
					      "jail step 'drop bounding capability %d'", (int)c);
	}
	STEP(cap_reset_ambient() == 0, "clear ambient capabilities");
	/* Root that keeps capabilities keeps exactly these across exec (root's exec gives it
	 * its bounding set); nobody else gets any back (no_new_privs, no inheritable set). */
	/* Root that keeps capabilities can never raise an ambient one or keep them across a
	 * uid change (the fs-uid fixup stays: virtiofsd relies on it to lose its file
	 * capabilities while it acts as a guest user). */
	if (!p->drop_uid)
		STEP(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS_LOCKED |
						      SECBIT_NO_CAP_AMBIENT_RAISE |
						      SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) == 0,
		     "securebits");
	return 0;
}

static int set_caps(const struct hc_jail_plan *p, struct hc_error *err)
{
	cap_t c = cap_init(); /* all clear */
	if (!c)
		return hc_error_errno(err, -errno, "jail step 'capabilities'");
	if (p->n_keep &&
	    (cap_set_flag(c, CAP_PERMITTED, (int)p->n_keep, p->keep_caps, CAP_SET) < 0 ||
	     cap_set_flag(c, CAP_EFFECTIVE, (int)p->n_keep, p->keep_caps, CAP_SET) < 0)) {
		cap_free(c);
		return hc_error_errno(err, -errno, "jail step 'capabilities'");
	}
	int r = cap_set_proc(c);
	cap_free(c);
	STEP(r == 0, "drop capabilities");
	return 0;
}

/* Writes allowed beneath every read-write path of the root and /tmp, nowhere else: not in any
 * proc, whichever mount the process reaches it through. */
static int landlock_rules(const struct hc_jail_plan *p, struct hc_error *err)
{
	int ruleset = hc_jail_landlock_open(p->landlock_abi, err);
	int r = ruleset < 0 ? ruleset
			    : hc_jail_landlock_allow(ruleset, p->landlock_abi, "/tmp", err);

	for (size_t i = 0; r >= 0 && i < p->n_mounts; i++)
		if (p->mounts[i].rw)
			r = hc_jail_landlock_allow(ruleset, p->landlock_abi, p->mounts[i].path,
						   err);
	if (r < 0) {
		if (ruleset >= 0)
			close(ruleset);
		return r;
	}
	return ruleset;
}

static int apply(void *arg, struct hc_error *err)
{
	const struct hc_jail_plan *p = arg;
	const char *root = p->root;
	int r;

	/* cgroups first, while /sys is still there. */
	for (int i = 0; i < p->n_cg; i++) {
		int fd = open(p->cg_procs[i], O_WRONLY | O_CLOEXEC);
		STEP(fd >= 0, "join cgroup");
		ssize_t n = write(fd, "0", 1);
		close(fd);
		STEP(n == 1, "join cgroup");
	}
	STEP(unshare(p->unshare_flags) == 0, "namespaces");
	STEP(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "private mounts");
	STEP(mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") == 0,
	     "root tmpfs");
	/* /proc and /tmp first: binds below /tmp (a runtime dir there) go on top. /proc is
	 * read-only: uid 0 (virtiofsd) writes a sysctl or /proc/sysrq-trigger by their mode
	 * alone, no capability asked (proc_sys_permission); reopening a file through
	 * /proc/self/fd/N still works, that follows the link to the file's own mount. */
	char buf[HC_PATH_MAX + 16];
	snprintf(buf, sizeof(buf), "%s/proc", root);
	STEP(mkdir(buf, 0555) == 0 || errno == EEXIST, "mkdir /proc");
	STEP(mount("proc", buf, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL) == 0,
	     "mount /proc read-only");
	snprintf(buf, sizeof(buf), "%s/tmp", root);
	STEP(mkdir(buf, 01777) == 0 || errno == EEXIST, "mkdir /tmp");
	STEP(mount("tmpfs", buf, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=16m") ==
		     0,
	     "mount /tmp");
	for (size_t i = 0; i < p->n_mounts; i++)
		if ((r = bind_one(root, &p->mounts[i], err)) < 0)
			return r;
	STEP(sethostname(JAIL_HOSTNAME, strlen(JAIL_HOSTNAME)) == 0, "hostname");
	/* pivot_root(".", "."): the old root ends up on top of the new one, then detached. */
	STEP(chdir(root) == 0, "chdir root");
	STEP(syscall(SYS_pivot_root, ".", ".") == 0, "pivot_root");
	STEP(umount2(".", MNT_DETACH) == 0, "detach the host's root");
	STEP(chdir("/") == 0, "chdir /");
	STEP(mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
		   NULL) == 0,
	     "read-only root");
	/* The Landlock rules are made here, while every path can still be opened (as root),
	 * and take effect once no_new_privs is set. A step that fails before then ends this
	 * child, and the ruleset is close-on-exec. */
	int ruleset = -1;
	if (p->landlock_abi > 0 && (ruleset = landlock_rules(p, err)) < 0)
		return ruleset;

	/* rlimits: only ever lowered (no CAP_SYS_RESOURCE needed, none available here). */
	for (size_t i = 0; i < HC_ARRAY_SIZE(p->rlimits); i++) {
		struct rlimit rl;
		STEP(getrlimit(p->rlimits[i].res, &rl) == 0, "rlimits");
		rlim_t v = p->rlimits[i].want;
		if (rl.rlim_max != RLIM_INFINITY && v > rl.rlim_max)
			v = rl.rlim_max;
		rl.rlim_cur = rl.rlim_max = v;
		STEP(setrlimit(p->rlimits[i].res, &rl) == 0, "rlimits");
	}

	if ((r = drop_caps(p, err)) < 0)
		return r;
	if (!p->drop_uid && p->set_groups)
		STEP(setgroups(p->n_groups, p->groups) == 0, "setgroups");
	if (p->drop_uid) {
		STEP(setgroups(p->n_groups, p->groups) == 0, "setgroups");
		STEP(setresgid(p->gid, p->gid, p->gid) == 0, "setresgid");
		STEP(setresuid(p->uid, p->uid, p->uid) == 0, "setresuid");
		/* Paranoia, as bubblewrap: the way back must be closed. */
		if (setuid(0) == 0)
			return hc_error_set(err, -EPERM,
					    "jail step 'setresuid': uid 0 still reachable");
		/* A change of credentials clears the parent-death signal (commit_creds): arm it
		 * again, or a SIGKILLed hotcell would leave this process running for good. A
		 * parent that died in the few instructions since is caught when not PID 1 of a
		 * namespace of its own (there getppid() is 0 whatever happens). */
		STEP(prctl(PR_SET_PDEATHSIG, SIGKILL) == 0, "parent-death signal");
		STEP(getppid() == p->parent || getppid() == 0, "parent-death signal");
	}
	if ((r = set_caps(p, err)) < 0)
		return r;
	STEP(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs");
	if (ruleset >= 0 && (r = hc_jail_landlock_apply(ruleset, err)) < 0)
		return r;
	/* Last: from here on only the allow-list (and execve is on it). */
	STEP(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p->filter) == 0, "seccomp");
	return 0;
}

/* ---- in the parent ------------------------------------------------------------------------ */

int hc_jail_vm_open(struct hc_jail_vm *jv, bool on, const char *run_dir, unsigned memory_mib,
		    unsigned cpus, struct hc_error *err)
{
	int r;

	*jv = (struct hc_jail_vm)HC_JAIL_VM_INIT;
	if (!on)
		return 0;
	if (geteuid() != 0)
		return hc_error_setk(err, -EPERM, HC_EK_USAGE,
				     "jail: needs root (or run with --no-jail)");
	r = hc_path_fmt(jv->run_dir, sizeof(jv->run_dir), err, "%s", run_dir);
	if (r < 0)
		return r;
	jv->memory_mib = memory_mib;
	jv->cpus = cpus;
	r = hc_jail_lease_take(jv, err);
	if (r < 0)
		return r;
	/* The VMM makes its sockets and logs in the runtime dir: it is the VM's own. */
	if (chown(run_dir, jv->uid, jv->gid) < 0) {
		r = hc_error_errno(err, -errno, "jail: chown %s", run_dir);
		hc_jail_lease_release(jv);
		return r;
	}
	jv->on = true;
	hc_debug("jail: VM in %s runs as uid %u", run_dir, (unsigned)jv->uid);
	return 0;
}

void hc_jail_vm_close(struct hc_jail_vm *jv)
{
	if (!jv)
		return;
	/* The roots' mount points (jail-<kind>-<n>): empty once their processes are gone. */
	DIR *d = jv->on ? opendir(jv->run_dir) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, "jail-", 5))
			unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	if (d)
		closedir(d);
	hc_jail_cgroup_remove(jv);
	hc_jail_lease_release(jv);
	jv->on = false;
}

void hc_jail_proc_init(struct hc_jail_proc *p, struct hc_jail_vm *vm, enum hc_jail_kind kind,
		       enum hc_accel accel, const char *binary)
{
	*p = (struct hc_jail_proc){.vm = vm, .kind = kind, .accel = accel, .binary = binary};
}

void hc_jail_proc_bind(struct hc_jail_proc *p, const char *path, bool rw)
{
	if (!path || !p->vm || !p->vm->on)
		return;
	if (p->n_binds == HC_JAIL_MAX_BINDS) {
		p->overflow = true;
		return;
	}
	p->binds[p->n_binds++] = (struct hc_jail_bind){.path = path, .rw = rw};
}

static int add_mount(struct hc_jail_plan *pl, const char *path, bool rw, bool must,
		     struct hc_error *err)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		if (!must && errno == ENOENT)
			return 0;
		return hc_error_errno(err, -errno, "jail: %s", path);
	}
	if (path[0] != '/')
		return hc_error_set(err, -EINVAL, "jail: %s is not an absolute path", path);
	for (size_t i = 0; i < pl->n_mounts; i++)
		if (hc_streq(pl->mounts[i].path, path))
			return 0;
	if (pl->n_mounts == MAX_MOUNTS)
		return hc_error_set(err, -E2BIG, "jail: more than %d mounts", MAX_MOUNTS);
	pl->mounts[pl->n_mounts++] = (struct mnt){
		.path = path,
		.rw = rw,
		.dir = S_ISDIR(st.st_mode),
		.dev = S_ISCHR(st.st_mode),
	};
	return 0;
}

/* A program and the shared objects it loads, read-only. */
static int add_program(struct hc_jail_plan *pl, const char *path, struct hc_error *err)
{
	const char *const *libs;
	int r = add_mount(pl, path, false, true, err);

	if (r >= 0)
		r = hc_jail_libs(path, &libs, err);
	for (size_t i = 0; r >= 0 && libs[i]; i++)
		r = add_mount(pl, libs[i], false, true, err);
	return r;
}

/* Data a kind reads besides its libraries. */
static const char *const qemu_data[] = {
	"/usr/share/qemu",		  /* firmware and option ROMs (qboot, linuxboot_dma) */
	"/usr/share/seabios",		  /* where /usr/share/qemu's ROM links point */
	"/usr/lib/x86_64-linux-gnu/qemu", /* modules: accel-tcg-x86_64.so on Debian */
	"/usr/lib/aarch64-linux-gnu/qemu",
};

/* Programs a kind runs itself: QEMU 7.2 snapshots through `exec:cat > FILE` (no file:
 * migration URI), which glib runs with /bin/sh. */
static const char *const qemu_helpers[] = {"/bin/sh", "/bin/cat"};

static const char *const dev_nodes[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/urandom",
					"/dev/random"};

/* Sockets and files hotcell made in the runtime dir as root are handed to the VM's uid (the
 * VMM connects to virtiofsd's and the agent's sockets by path). */
static int hand_over_run_dir(const struct hc_jail_vm *jv, struct hc_error *err)
{
	DIR *d = opendir(jv->run_dir);
	struct dirent *de;

	if (!d)
		return hc_error_errno(err, -errno, "jail: %s", jv->run_dir);
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.' || !strncmp(de->d_name, "jail-", 5))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_uid != 0)
			continue;
		if (!S_ISSOCK(st.st_mode) && !S_ISREG(st.st_mode))
			continue;
		if (fchownat(dirfd(d), de->d_name, jv->uid, jv->gid, AT_SYMLINK_NOFOLLOW) < 0) {
			int e = errno;
			closedir(d);
			return hc_error_errno(err, -e, "jail: chown %s/%s", jv->run_dir,
					      de->d_name);
		}
	}
	closedir(d);
	return 0;
}

/* HOTCELL_JAIL_EXTRA (jail.h): each path read-only ("+PATH": read-write), a program with its
 * libraries. */
static int add_extra(struct hc_jail_plan *pl, struct hc_error *err)
{
	const char *v = getenv("HOTCELL_JAIL_EXTRA");
	int r = 0;

	for (const char *p = v; p && *p && r >= 0;) {
		size_t len = strcspn(p, ":");
		struct stat st;

		bool rw = *p == '+';
		if (rw) {
			p++;
			len--;
		}
		if (len) {
			if (pl->n_extra == HC_JAIL_MAX_EXTRA)
				return hc_error_set(err, -E2BIG,
						    "HOTCELL_JAIL_EXTRA: more than %d paths",
						    HC_JAIL_MAX_EXTRA);
			char *path = strndup(p, len);
			if (!path)
				return hc_error_set(err, -ENOMEM, "jail: out of memory");
			pl->extra[pl->n_extra++] = path;
			if (stat(path, &st) < 0)
				return hc_error_errno(err, -errno, "HOTCELL_JAIL_EXTRA: %s", path);
			r = !rw && S_ISREG(st.st_mode) && (st.st_mode & 0111)
				    ? add_program(pl, path, err)
				    : add_mount(pl, path, rw, true, err);
		}
		p += len + (p[len] == ':');
	}
	return r;
}

static bool keep_env(const char *e)
{
	static const char *const keep[] = {
		"PATH=", "HOTCELL_", "RUST_LOG=", "RUST_BACKTRACE=", "LANG=", "TZ="};
	for (size_t i = 0; i < HC_ARRAY_SIZE(keep); i++)
		if (!strncmp(e, keep[i], strlen(keep[i])))
			return true;
	return false;
}

static int build_env(struct hc_jail_plan *pl, const struct hc_child_opts *o, struct hc_error *err)
{
	char *const *src = o->envp ? (char *const *)o->envp : environ;
	bool home = false;

	for (size_t i = 0; src && src[i]; i++) {
		if (!o->envp && !keep_env(src[i]))
			continue;
		if (pl->n_env == MAX_ENV)
			return hc_error_set(err, -E2BIG, "jail: more than %d environment variables",
					    MAX_ENV);
		home |= !strncmp(src[i], "HOTCELL_HOME=", 13);
		pl->env[pl->n_env] = strdup(src[i]);
		if (!pl->env[pl->n_env++])
			return hc_error_set(err, -ENOMEM, "jail: environment");
	}
	/* Tools find a VM's processes by HOTCELL_HOME: every one carries it. */
	if (!home) {
		char dir[HC_PATH_MAX];
		struct hc_error e = {0};
		if (hc_path_state_dir(dir, sizeof(dir), &e) == 0 && pl->n_env < MAX_ENV &&
		    asprintf(&pl->env[pl->n_env], "HOTCELL_HOME=%s", dir) > 0)
			pl->n_env++;
	}
	pl->env[pl->n_env] = NULL;
	return 0;
}

static void plan_free(struct hc_jail_plan *pl)
{
	if (!pl)
		return;
	for (size_t i = 0; i < pl->n_env; i++)
		free(pl->env[i]);
	for (size_t i = 0; i < pl->n_extra; i++)
		free(pl->extra[i]);
	free(pl->filter.filter);
	free(pl);
}

int hc_jail_proc_prepare(struct hc_jail_proc *p, struct hc_child_opts *o, struct hc_error *err)
{
	struct hc_jail_vm *jv = p->vm;
	struct hc_jail_plan *pl;
	const char *why = NULL;
	int r;

	if (!jv || !jv->on)
		return 0;
	const char *what = hc_jail_kind_name(p->kind);
	if (p->overflow)
		return hc_error_set(err, -E2BIG, "jail %s: more than %d paths", what,
				    HC_JAIL_MAX_BINDS);
	if (!p->binary || p->binary[0] != '/' || !hc_streq(o->argv[0], p->binary))
		return hc_error_set(err, -EINVAL, "jail %s: the program must be an absolute path",
				    what);
	pl = calloc(1, sizeof(*pl));
	if (!pl)
		return hc_error_set(err, -ENOMEM, "jail %s", what);
	p->plan = pl;

	unsigned n = jv->n_procs++;
	r = hc_path_fmt(pl->root, sizeof(pl->root), err, "%s/jail-%s-%u", jv->run_dir, what, n);
	if (r < 0)
		return r;
	if (mkdir(pl->root, 0700) < 0)
		return hc_error_errno(err, -errno, "jail %s: mkdir %s", what, pl->root);

	/* What the process sees: its binary, its libraries, its data, the VM's files. */
	if ((r = add_program(pl, p->binary, err)) < 0)
		return r;
	if (p->kind == HC_JAIL_QEMU) {
		for (size_t i = 0; i < HC_ARRAY_SIZE(qemu_data); i++)
			if ((r = add_mount(pl, qemu_data[i], false, false, err)) < 0)
				return r;
		for (size_t i = 0; i < HC_ARRAY_SIZE(qemu_helpers); i++)
			if ((r = add_program(pl, qemu_helpers[i], err)) < 0)
				return r;
	}
	for (size_t i = 0; i < HC_ARRAY_SIZE(dev_nodes); i++)
		if ((r = add_mount(pl, dev_nodes[i], true, true, err)) < 0)
			return r;
	bool kvm = p->accel == HC_ACCEL_KVM || p->kind == HC_JAIL_CLOUD_HYPERVISOR ||
		   p->kind == HC_JAIL_LIBKRUN;
	if (kvm && p->kind != HC_JAIL_VIRTIOFSD && p->kind != HC_JAIL_VSOCKD) {
		struct stat st;
		if ((r = add_mount(pl, "/dev/kvm", true, true, err)) < 0)
			return r;
		/* /dev/kvm by its group, not by its owner. */
		if (stat("/dev/kvm", &st) == 0 && st.st_gid != 0)
			pl->groups[pl->n_groups++] = st.st_gid;
	}
	if (p->network && (r = add_mount(pl, "/dev/net/tun", true, false, err)) < 0)
		return r;
	/* virtiofsd serves its share itself; the rest work in the runtime dir. */
	if (p->kind != HC_JAIL_VIRTIOFSD && (r = add_mount(pl, jv->run_dir, true, true, err)) < 0)
		return r;
	for (size_t i = 0; i < p->n_binds; i++)
		if ((r = add_mount(pl, p->binds[i].path, p->binds[i].rw, true, err)) < 0)
			return r;
	if ((r = add_extra(pl, err)) < 0)
		return r;

	pl->unshare_flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
	if (!p->network)
		pl->unshare_flags |= CLONE_NEWNET;

	pl->uid = jv->uid;
	pl->gid = jv->gid;
	/* The virtio-fs servers: virtiofsd, and the libkrun worker, which serves its shares
	 * in-process (devices/virtio/fs/linux/passthrough.rs). */
	const bool fs_server = p->kind == HC_JAIL_VIRTIOFSD || p->kind == HC_JAIL_LIBKRUN;
	pl->drop_uid = !fs_server;
	/* The worker stays uid 0 (its file server needs it) but opens /dev/kvm by its group,
	 * and keeps no other supplementary group of hotcell's. */
	pl->set_groups = p->kind == HC_JAIL_LIBKRUN;
	pl->parent = getpid();
	if (!pl->drop_uid) {
		/* A virtio-fs server serves the image's ownership as uid 0: only the capabilities
		 * for that (and virtiofsd's chroot), never SYS_ADMIN, SYS_MODULE, SYS_PTRACE,
		 * NET_ADMIN, SYS_RAWIO or SYS_BOOT. Nor MKNOD: a guest's mknod of a block or
		 * character device on a read-write volume would make a real host device node
		 * there (the image share is read-only and needs none); fifos and sockets need no
		 * capability. */
		static const cap_value_t keep[] = {
			CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
			CAP_FOWNER, CAP_FSETID,	      CAP_SETGID,
			CAP_SETUID, CAP_SETFCAP,      CAP_SYS_CHROOT};
		memcpy(pl->keep_caps, keep, sizeof(keep));
		pl->n_keep = HC_ARRAY_SIZE(keep);
		if ((p->start_caps & HC_JAIL_CAP_SYS_ADMIN_AT_START) &&
		    p->kind == HC_JAIL_VIRTIOFSD) {
			pl->keep_caps[pl->n_keep++] = CAP_SYS_ADMIN;
			pl->keep_caps[pl->n_keep++] = CAP_SETPCAP;
		}
	}

	/* NOFILE: vhost-user and virtiofsd hold many fds; the hard limit caps it (20000 here).
	 * NPROC counts per real uid: the VM's uid is its own, so this bounds the VM's threads;
	 * the virtio-fs servers stay uid 0, where it would count every root process on the
	 * host, so there the cgroup's pids limit does it. FSIZE bounds what a VMM can write (its
	 * logs; with snapshots its RAM file), but not a file server, which writes the guest's
	 * files into its volumes. CORE 0 keeps guest memory out of core dumps, MEMLOCK what it
	 * may pin. */
	unsigned long long guest = (unsigned long long)jv->memory_mib << 20;
	pl->rlimits[0].res = RLIMIT_NOFILE;
	pl->rlimits[0].want = fs_server ? 65536 : 4096;
	pl->rlimits[1].res = RLIMIT_NPROC;
	pl->rlimits[1].want = fs_server ? RLIM_INFINITY : 512;
	pl->rlimits[2].res = RLIMIT_FSIZE;
	pl->rlimits[2].want = fs_server ? RLIM_INFINITY : guest + (1ull << 30);
	pl->rlimits[3].res = RLIMIT_CORE;
	pl->rlimits[3].want = 0;
	pl->rlimits[4].res = RLIMIT_MEMLOCK;
	pl->rlimits[4].want = 64ull << 20;

	/* Landlock for every process but one that mounts and pivots itself (QEMU 7.2's C
	 * virtiofsd: Landlock refuses mount and pivot_root to a process it restricts, so that
	 * virtiofsd could not start; its proc is the jail's read-only one, the seccomp filter
	 * sees to that). A kernel without Landlock runs without this step (hotcell doctor says
	 * so); one with it refuses the start if any call of the step fails. */
	if (!(p->start_caps & HC_JAIL_CAP_SYS_ADMIN_AT_START)) {
		int abi = hc_jail_landlock_abi();
		const char *no = hc_jail_landlock_why_not(abi);
		pl->landlock_abi = no ? 0 : abi;
		if (no)
			hc_debug("jail %s: landlock %s", what, no);
	}

	r = hc_jail_cgroup_make(jv, p->kind, n, pl->cg_procs, &why, err);
	if (r < 0)
		return r;
	pl->n_cg = r;
	if (why)
		hc_debug("jail %s: cgroups: %s", what, why);

	if ((r = hc_jail_seccomp_build(p->kind, p->accel, p->network, p->tap, &pl->filter, err)) <
	    0)
		return r;
	if ((r = build_env(pl, o, err)) < 0)
		return r;
	if ((r = hand_over_run_dir(jv, err)) < 0)
		return r;

	p->child = (struct hc_child_jail){.new_pid_ns = true, .apply = apply, .arg = pl};
	o->jail = &p->child;
	o->envp = (const char *const *)pl->env;
	return 0;
}

void hc_jail_proc_free(struct hc_jail_proc *p)
{
	if (!p)
		return;
	plan_free(p->plan);
	p->plan = NULL;
}
