/* SPDX-License-Identifier: MIT */
/*
 * The attacker the security suite runs inside a jail (tests/security/jail-run): one attack per
 * run, named by argv[1], since a refused syscall kills the whole process. Prints one line:
 * "ok ..." when the attack got through, "refused <errno name>" when the kernel said no.
 * A seccomp kill shows as jail-run's "killed by signal SYS".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int refused(int e)
{
	printf("refused %s\n", strerrorname_np(e) ? strerrorname_np(e) : "?");
	return 0;
}

static int ok(const char *what)
{
	printf("ok %s\n", what);
	return 0;
}

#define TRY(call, what) ((call) < 0 ? refused(errno) : ok(what))

/* Prints the lines of /proc/self/status a jail is judged by. */
static int status(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	if (!f)
		return refused(errno);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4) ||
		    !strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs:", 11) ||
		    !strncmp(line, "Seccomp:", 8) || !strncmp(line, "Groups:", 7))
			fputs(line, stdout);
	fclose(f);
	printf("nspid %d\n", (int)getpid());
	char host[64] = "";
	gethostname(host, sizeof(host));
	printf("hostname %s\n", host);
	return 0;
}

static int count_pids(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;
	if (!d)
		return refused(errno);
	while ((de = readdir(d)))
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
			n++;
	closedir(d);
	printf("pids %d\n", n);
	return 0;
}

static int read_file(const char *path)
{
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return refused(errno);
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	return n < 0 ? refused(errno) : ok("read");
}

static int write_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return refused(errno);
	ssize_t n = write(fd, "x", 1);
	close(fd);
	return n < 0 ? refused(errno) : ok("write");
}

/* Opens PATH (relative to dirfd) for writing and closes it again, never writing a byte: for a
 * sysctl or /proc/sysrq-trigger the open is the proof (nothing happens before a write). */
static int open_write(int dirfd, const char *path)
{
	int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return refused(errno);
	close(fd);
	return ok("opened for writing");
}

/* What QEMU 7.2's C virtiofsd does with -o sandbox=namespace (tools/virtiofsd/passthrough_ll.c:
 * setup_namespaces, setup_mounts, setup_capabilities), then an attack from what it keeps. It
 * still holds CAP_SYS_ADMIN (jail-run --start-caps) while it makes a PID, mount and network
 * namespace, mounts a proc of its own on /proc, keeps /proc/self/task/ (proc_self_task), binds
 * /proc/self/fd over /proc and keeps that (proc_self_fd: ".." stays inside it), pivots into the
 * share, detaches the old root, and drops to its file capabilities (modcaps=-mknod, as hotcell
 * starts it). Then, as a compromised virtiofsd: WHICH "task" opens PATH for writing relative
 * to proc_self_task ("../../sys/kernel/core_pattern" is the proc's root), "fd" relative to
 * proc_self_fd; "reopen" makes PATH in the share and reopens it read-write through
 * proc_self_fd, as virtiofsd serves every open (the control). */
static int own_proc(const char *share, const char *which, const char *path)
{
	if (unshare(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET) < 0)
		return refused(errno);
	pid_t pid = fork();
	if (pid < 0)
		return refused(errno);
	if (pid > 0) {
		int st;
		waitpid(pid, &st, 0);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	int task_fd = -1, proc_self_fd = -1, oldroot = -1, newroot = -1;
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_NODEV | MS_NOEXEC | MS_NOSUID | MS_RELATIME, NULL) <
		    0 ||
	    (task_fd = open("/proc/self/task/", O_PATH)) < 0 ||
	    mount("/proc/self/fd", "/proc", NULL, MS_BIND, NULL) < 0 ||
	    (proc_self_fd = open("/proc", O_PATH)) < 0 ||
	    mount(share, share, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    (oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC)) < 0 ||
	    (newroot = open(share, O_DIRECTORY | O_RDONLY | O_CLOEXEC)) < 0 ||
	    fchdir(newroot) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || fchdir(oldroot) < 0 ||
	    mount("", ".", "", MS_SLAVE | MS_REC, NULL) < 0 || umount2(".", MNT_DETACH) < 0 ||
	    fchdir(newroot) < 0) {
		printf("setup: ");
		_exit(refused(errno));
	}
	static const cap_value_t keep[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID,
					   CAP_SETGID, CAP_SETUID,	 CAP_SETFCAP};
	const int n = (int)(sizeof(keep) / sizeof(keep[0]));
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
		bool k = false;
		for (int i = 0; i < n; i++)
			k |= keep[i] == c;
		if (!k && cap_drop_bound(c) < 0 && errno != EINVAL) {
			printf("setup: ");
			_exit(refused(errno));
		}
	}
	cap_t caps = cap_init();
	if (!caps || cap_set_flag(caps, CAP_PERMITTED, n, keep, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_EFFECTIVE, n, keep, CAP_SET) < 0 || cap_set_proc(caps) < 0) {
		printf("setup: ");
		_exit(refused(errno));
	}
	cap_free(caps);
	if (!strcmp(which, "task"))
		_exit(open_write(task_fd, path));
	if (!strcmp(which, "fd"))
		_exit(open_write(proc_self_fd, path));
	int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
	char name[16];
	snprintf(name, sizeof(name), "%d", fd);
	int rw = fd < 0 ? -1 : openat(proc_self_fd, name, O_RDWR | O_CLOEXEC);
	if (rw < 0 || write(rw, "x", 1) != 1)
		_exit(refused(errno));
	_exit(ok("reopened for writing"));
}

static int fork_bomb(void)
{
	int n = 0;
	for (; n < 100000; n++) {
		pid_t p = fork();
		if (p < 0)
			break;
		if (p == 0) {
			pause();
			_exit(0);
		}
	}
	int e = errno;
	printf("forked %d\n", n);
	kill(0, SIGKILL); /* the whole group, this one included: the jail's PID 1 ends it */
	return refused(e);
}

static int alloc(long mib)
{
	/* Touch every page, so the memory is charged (cgroup) or refused (rlimit). */
	for (long i = 0; i < mib; i++) {
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (p == MAP_FAILED)
			return refused(errno);
		memset(p, 1, 1 << 20);
	}
	return ok("allocated");
}

static int big_file(const char *path, long mib)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	static char buf[1 << 20];
	if (fd < 0)
		return refused(errno);
	signal(SIGXFSZ, SIG_IGN);
	for (long i = 0; i < mib; i++)
		if (write(fd, buf, sizeof(buf)) < 0) {
			int e = errno;
			close(fd);
			unlink(path);
			return refused(e);
		}
	close(fd);
	unlink(path);
	return ok("wrote");
}

static int raise_limit(int res)
{
	struct rlimit rl;
	if (getrlimit(res, &rl) < 0)
		return refused(errno);
	rl.rlim_max = rl.rlim_max == RLIM_INFINITY ? RLIM_INFINITY : rl.rlim_max + 1;
	rl.rlim_cur = rl.rlim_max;
	return TRY(setrlimit(res, &rl), "raised");
}

static int open_fds(int n)
{
	for (int i = 0; i < n; i++)
		if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0) {
			printf("opened %d\n", i);
			return refused(errno);
		}
	return ok("opened");
}

int main(int argc, char **argv)
{
	const char *a = argc > 1 ? argv[1] : "status";
	const char *arg = argc > 2 ? argv[2] : "";

	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(a, "status"))
		return status();
	if (!strcmp(a, "pids"))
		return count_pids();
	if (!strcmp(a, "read"))
		return read_file(arg);
	if (!strcmp(a, "write"))
		return write_file(arg);
	if (!strcmp(a, "mount_opts")) {
		/* "mount_opts /proc": "mount /proc ro" (that mount's first option) */
		FILE *f = fopen("/proc/self/mountinfo", "re");
		char line[1024], at[512], opts[256];
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "%*s %*s %*s %*s %511s %255[^, ]", at, opts) == 2 &&
			    !strcmp(at, arg))
				printf("mount %s %s\n", at, opts);
		if (f)
			fclose(f);
		return 0;
	}
	if (!strcmp(a, "open_write"))
		return open_write(AT_FDCWD, arg);
	if (!strcmp(a, "own_proc"))
		return own_proc(arg, argc > 3 ? argv[3] : "", argc > 4 ? argv[4] : "");
	if (!strcmp(a, "exists")) {
		struct stat st;
		return TRY(lstat(arg, &st), "exists");
	}
	if (!strcmp(a, "signal"))
		return TRY(kill((pid_t)atoi(arg), 0), "signalled");
	if (!strcmp(a, "sigkill"))
		return TRY(kill((pid_t)atoi(arg), SIGKILL), "killed");
	if (!strcmp(a, "ptrace"))
		return TRY(ptrace(PTRACE_ATTACH, (pid_t)atoi(arg), NULL, NULL), "attached");
	if (!strcmp(a, "mount"))
		return TRY(mount("tmpfs", "/tmp", "tmpfs", 0, NULL), "mounted");
	if (!strcmp(a, "umount"))
		return TRY(umount2("/proc", MNT_DETACH), "unmounted");
	if (!strcmp(a, "chroot"))
		return TRY(chroot("/tmp"), "chrooted");
	if (!strcmp(a, "init_module"))
		return TRY(syscall(SYS_init_module, "", 0, ""), "loaded");
	if (!strcmp(a, "finit_module"))
		return TRY(syscall(SYS_finit_module, 0, "", 0), "loaded");
	if (!strcmp(a, "raw_socket"))
		return TRY(socket(AF_INET, SOCK_RAW, 1), "raw socket");
	if (!strcmp(a, "packet_socket"))
		return TRY(socket(AF_PACKET, SOCK_RAW, 0), "packet socket");
	if (!strcmp(a, "netlink_socket"))
		return TRY(socket(AF_NETLINK, SOCK_RAW, 0), "netlink socket");
	if (!strcmp(a, "inet_socket"))
		return TRY(socket(AF_INET, SOCK_STREAM, 0), "inet socket");
	if (!strcmp(a, "unix_socket"))
		return TRY(socket(AF_UNIX, SOCK_STREAM, 0), "unix socket");
	if (!strcmp(a, "unshare_user"))
		return TRY(unshare(CLONE_NEWUSER), "new user namespace");
	if (!strcmp(a, "clone_newuser"))
		return TRY(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0), "cloned");
	if (!strcmp(a, "setns"))
		return TRY(setns(open("/proc/1/ns/mnt", O_RDONLY), 0), "setns");
	if (!strcmp(a, "setuid0"))
		return TRY(setuid(0), "uid 0");
	if (!strcmp(a, "bpf"))
		return TRY(syscall(SYS_bpf, 0, NULL, 0), "bpf");
	if (!strcmp(a, "perf"))
		return TRY(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), "perf");
	if (!strcmp(a, "keyctl"))
		return TRY(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, -3, 0), "keyring");
	if (!strcmp(a, "reboot"))
		return TRY(syscall(SYS_reboot, 0, 0, 0, NULL), "rebooted");
	if (!strcmp(a, "kexec"))
		return TRY(syscall(SYS_kexec_load, 0, 0, NULL, 0), "kexec");
	if (!strcmp(a, "iopl"))
		return TRY(syscall(SYS_iopl, 3), "iopl");
	if (!strcmp(a, "mknod"))
		return TRY(mknod(arg, S_IFCHR | 0666, makedev(1, 1)), "mknod");
	if (!strcmp(a, "hostname"))
		return TRY(sethostname("pwned", 5), "hostname set");
	if (!strcmp(a, "exec"))
		return execv(arg, argv + 2) < 0 ? refused(errno) : 0;
	if (!strcmp(a, "fork_bomb"))
		return fork_bomb();
	if (!strcmp(a, "alloc"))
		return alloc(atol(arg));
	if (!strcmp(a, "fsize"))
		return big_file(arg, argc > 3 ? atol(argv[3]) : 1);
	if (!strcmp(a, "raise_nofile"))
		return raise_limit(RLIMIT_NOFILE);
	if (!strcmp(a, "raise_nproc"))
		return raise_limit(RLIMIT_NPROC);
	if (!strcmp(a, "open_fds"))
		return open_fds(atoi(arg));
	if (!strcmp(a, "core_limit")) {
		struct rlimit rl;
		getrlimit(RLIMIT_CORE, &rl);
		printf("core %llu\n", (unsigned long long)rl.rlim_max);
		return 0;
	}
	if (!strcmp(a, "sleep")) {
		sleep((unsigned)atoi(arg));
		return ok("slept");
	}
	if (!strcmp(a, "limit")) {
		/* "limit 'Max file size'": that line of /proc/self/limits */
		FILE *f = fopen("/proc/self/limits", "re");
		char line[256];
		while (f && fgets(line, sizeof(line), f))
			if (!strncmp(line, arg, strlen(arg)))
				fputs(line, stdout);
		if (f)
			fclose(f);
		return 0;
	}
	if (!strcmp(a, "env")) {
		const char *v = getenv(arg);
		printf("%s=%s\n", arg, v ? v : "(unset)");
		return 0;
	}
	fprintf(stderr, "jail-probe: unknown attack %s\n", a);
	return 2;
}
