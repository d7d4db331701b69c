/* SPDX-License-Identifier: MIT */
/*
 * A uid (and gid, the same number) of its own per VM, from HOTCELL_JAIL_UIDS (default
 * HC_JAIL_UID_FIRST-HC_JAIL_UID_LAST). A lease is a file <lease dir>/<uid> held under flock():
 * the kernel drops the lock when its holder dies, so a stale lease is reclaimed by the next
 * taker without any guessing. The file says who holds it ("pid starttime", for tools); it is
 * removed on release while still locked, and a taker checks that the file it locked is still
 * the one at that path (the usual lock-file race).
 *
 * A stale lease may leave processes running as its uid: a VMM that drops to the uid itself
 * (Firecracker under its jailer) loses PR_SET_PDEATHSIG with it (the kernel clears it when the
 * credentials change), so it outlives a SIGKILLed hotcell. They are killed before the uid is
 * handed to another VM, which they could otherwise ptrace or signal, and whose TAP they could
 * attach.
 */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/clock.h"
#include "jail/jail-internal.h"

int hc_jail_uid_range_parse(const char *s, uid_t *first, uid_t *last)
{
	char *end;
	unsigned long a, b;

	errno = 0;
	a = strtoul(s, &end, 10);
	if (errno || end == s || *end != '-')
		return -EINVAL;
	s = end + 1;
	b = strtoul(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	/* Never root's, nor the 0-65535 of system and login accounts, nor -1. */
	if (a < 65536 || b < a || b >= 0xfffffffful)
		return -ERANGE;
	*first = (uid_t)a;
	*last = (uid_t)b;
	return 0;
}

static unsigned long long self_starttime(void)
{
	char buf[1024];
	unsigned long long st = 0;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* Field 22, counted after the ")" that ends the command name. */
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p)
		st = strtoull(p + 1, NULL, 10);
	return st;
}

/* Kills every process running as uid: kill(-1) from a child that has become uid reaches
 * exactly those (and never its caller), in one pass the kernel makes under its task list lock,
 * so none escapes by forking. Only syscalls between fork and _exit. */
static int kill_uid(uid_t uid, struct hc_error *err)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return hc_error_errno(err, -errno, "jail: fork");
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			_exit(1);
		_exit(kill(-1, SIGKILL) < 0 && errno != ESRCH ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return hc_error_errno(err, -errno, "jail: waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return hc_error_set(err, -EPERM, "jail: cannot end the processes of uid %u",
				    (unsigned)uid);
	return 0;
}

int hc_jail_lease_take(struct hc_jail_vm *jv, struct hc_error *err)
{
	const char *dir = getenv("HOTCELL_JAIL_LEASE_DIR");
	const char *range = getenv("HOTCELL_JAIL_UIDS");
	uid_t first = HC_JAIL_UID_FIRST, last = HC_JAIL_UID_LAST;
	int r;

	if (!dir || !*dir)
		dir = HC_JAIL_LEASE_DIR;
	if (range && *range && hc_jail_uid_range_parse(range, &first, &last) < 0)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "HOTCELL_JAIL_UIDS=%s: want FIRST-LAST, from 65536 up", range);
	r = hc_path_mkdir_p(dir, 0700, err);
	if (r < 0)
		return hc_error_prefix(err, "jail: uid lease");
	for (uid_t uid = first; uid <= last && uid >= first; uid++) {
		char path[HC_PATH_MAX];
		struct stat a, b;

		r = hc_path_fmt(path, sizeof(path), err, "%s/%u", dir, (unsigned)uid);
		if (r < 0)
			return r;
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return hc_error_errno(err, -errno, "jail: uid lease %s", path);
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd);
			if (errno == EWOULDBLOCK)
				continue;
			return hc_error_errno(err, -errno, "jail: lock %s", path);
		}
		/* Released (and removed) by its last holder between our open and our lock? */
		if (fstat(fd, &a) < 0 || stat(path, &b) < 0 || a.st_ino != b.st_ino ||
		    a.st_dev != b.st_dev) {
			close(fd);
			uid--;
			continue;
		}
		/* Written and never released: its holder died, maybe leaving processes (only
		 * root's VMs ever run as another uid). */
		if (a.st_size > 0 && geteuid() == 0) {
			r = kill_uid(uid, err);
			if (r < 0) {
				close(fd);
				return r;
			}
		}
		char who[64];
		int len = snprintf(who, sizeof(who), "%d %llu\n", (int)getpid(), self_starttime());
		if (ftruncate(fd, 0) < 0 || pwrite(fd, who, (size_t)len, 0) != len) {
			r = hc_error_errno(err, -errno, "jail: write %s", path);
			unlink(path);
			close(fd);
			return r;
		}
		jv->uid = uid;
		jv->gid = (gid_t)uid;
		jv->lease_fd = fd;
		snprintf(jv->lease_path, sizeof(jv->lease_path), "%s", path);
		return 0;
	}
	return hc_error_set(err, -EUSERS, "jail: every uid of %u-%u is leased to a running VM",
			    (unsigned)first, (unsigned)last);
}

void hc_jail_lease_release(struct hc_jail_vm *jv)
{
	if (jv->lease_fd < 0)
		return;
	unlink(jv->lease_path); /* still locked: nobody else holds this inode */
	close(jv->lease_fd);
	jv->lease_fd = -1;
	jv->lease_path[0] = '\0';
}

int hc_jail_reap_dead(pid_t pid, unsigned long long start, int timeout_ms)
{
	const char *dir = getenv("HOTCELL_JAIL_LEASE_DIR");
	double deadline = hc_clock_ms() + timeout_ms;
	char want[64], path[HC_PATH_MAX], who[64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (!dir || !*dir)
		dir = HC_JAIL_LEASE_DIR;
	snprintf(want, sizeof(want), "%d %llu\n", (int)pid, start);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *end;
		unsigned long uid = strtoul(de->d_name, &end, 10);
		ssize_t len;
		int fd;

		if (*end || end == de->d_name ||
		    hc_path_fmt(path, sizeof(path), NULL, "%s/%s", dir, de->d_name) < 0)
			continue;
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		len = pread(fd, who, sizeof(who) - 1, 0);
		who[len > 0 ? len : 0] = 0;
		if (!hc_streq(who, want)) {
			close(fd);
			continue;
		}
		/* The dead holder's lock goes with its last fd: at once, or when its last
		 * child that shared it dies (none should: the fd is close-on-exec). */
		while (flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK &&
		       hc_clock_ms() < deadline)
			usleep(10000);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			hc_jail_cgroup_remove_uid((uid_t)uid, deadline);
			unlink(path); /* still locked: as hc_jail_lease_release */
			n++;
		}
		close(fd);
	}
	closedir(d);
	return n;
}
