/* SPDX-License-Identifier: MIT */
/*
 * The address pool: one /30 per VM, leased through a file per /30 in a directory of the
 * runtime dir. The lease's flock is held by its owner for as long as the VM's network lives,
 * so a lease whose file is unlocked belongs to a process that died without its teardown
 * (SIGKILL): the next acquirer reclaims what it left, then takes or skips it. The file also
 * records the owner's pid and start time, for people and for `doctor`.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/path.h"
#include "net/net.h"
#include "core/owner.h"

int hc_net_pool_parse(const char *s, uint32_t *ret_base, unsigned *ret_prefix, struct hc_error *err)
{
	char addr[32];
	const char *slash = s ? strchr(s, '/') : NULL;
	struct in_addr a;
	unsigned long prefix;
	char *end;
	uint32_t host;

	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		goto bad;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = 0;
	if (inet_pton(AF_INET, addr, &a) != 1)
		goto bad;
	errno = 0;
	prefix = strtoul(slash + 1, &end, 10);
	if (errno || end == slash + 1 || *end || prefix < 8 || prefix > 30)
		goto bad;
	host = ntohl(a.s_addr);
	if (host & ~(0xffffffffu << (32 - prefix)))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "network pool '%s': the address has bits beyond /%lu", s,
				     prefix);
	*ret_base = host;
	*ret_prefix = (unsigned)prefix;
	return 0;
bad:
	return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
			     "network pool '%s': expected A.B.C.D/N with N from 8 to 30",
			     s ? s : "");
}

bool hc_net_routes_overlap(const char *text, uint32_t a, uint32_t size)
{
	const char *line = text ? strchr(text, '\n') : NULL; /* skip the header */

	while (line && *++line) {
		char ifname[32];
		unsigned dst, gw, flags, refcnt, use, metric, mask;

		if (sscanf(line, "%31s %x %x %x %u %u %u %x", ifname, &dst, &gw, &flags, &refcnt,
			   &use, &metric, &mask) == 8) {
			/* /proc/net/route prints the addresses in network order, as hex words. */
			uint32_t d = ntohl(dst), m = ntohl(mask);
			uint32_t dend = d | ~m, aend = a + size - 1;

			/* The default route (mask 0) is not a reason to skip anything; our own
			 * TAPs' routes belong to leases, live (locked) or stale (reclaimed). */
			if (m && !hc_startswith(ifname, "hc-") && a <= dend && d <= aend)
				return true;
		}
		line = strchr(line, '\n');
	}
	return false;
}

void hc_net_lease_name(struct hc_net_lease *l, uint32_t net)
{
	l->net.s_addr = htonl(net);
	l->gw.s_addr = htonl(net + 1);
	l->guest.s_addr = htonl(net + 2);
	snprintf(l->id, sizeof(l->id), "%08x", net);
	snprintf(l->tap, sizeof(l->tap), "hc-%s", l->id);
	/* 02: locally administered, unicast; then "hc" and the /30's low three bytes. */
	snprintf(l->mac, sizeof(l->mac), "02:68:63:%02x:%02x:%02x", (net >> 16) & 0xff,
		 (net >> 8) & 0xff, net & 0xff);
}

/* Locks path exclusively without waiting: 1 locked (fd in *ret), 0 held by someone else. The
 * file may be unlinked by its last holder between our open and our lock: then it is not the
 * file at path any more, and we retry. */
static int lock_file(const char *path, bool create, int *ret)
{
	for (int tries = 0; tries < 8; tries++) {
		_cleanup_close_ int fd =
			open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
		struct stat a, b;

		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0)
			return errno == EWOULDBLOCK ? 0 : -errno;
		if (fstat(fd, &a) < 0)
			return -errno;
		if (stat(path, &b) < 0) {
			if (errno == ENOENT && create)
				continue;
			return -errno;
		}
		if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
			continue;
		*ret = hc_steal_fd(&fd);
		return 1;
	}
	return -EAGAIN;
}

static int write_owner(int fd)
{
	char rec[96];
	int n = snprintf(rec, sizeof(rec), "%d %llu\n", (int)getpid(),
			 hc_owner_start_time(getpid()));

	if (ftruncate(fd, 0) < 0 || pwrite(fd, rec, (size_t)n, 0) != n)
		return -errno;
	return 0;
}

/* Reclaims every stale lease in dir (whatever its pool): a dead run's TAP and rules go at the
 * next start, not only when its /30 happens to be picked again. */
static void sweep(const char *dir, void (*reclaim)(const struct hc_net_lease *stale, void *arg),
		  void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct hc_net_lease l = {.fd = -1};
		unsigned net;
		char tail[16];
		struct hc_error err = {0};

		if (sscanf(e->d_name, "%8x%15s", &net, tail) != 2 || !hc_streq(tail, ".lease") ||
		    strlen(e->d_name) != 14)
			continue;
		hc_net_lease_name(&l, net);
		if (hc_path_fmt(l.path, sizeof(l.path), &err, "%s/%s", dir, e->d_name) < 0 ||
		    lock_file(l.path, false, &l.fd) != 1)
			continue;
		hc_info("network: reclaiming %s/30 left by a dead process", inet_ntoa(l.net));
		if (reclaim)
			reclaim(&l, arg);
		hc_net_lease_release(&l);
	}
	closedir(d);
}

int hc_net_lease_acquire(const char *dir, uint32_t base, unsigned prefix, const char *routes,
			 void (*reclaim)(const struct hc_net_lease *stale, void *arg), void *arg,
			 struct hc_net_lease *ret, struct hc_error *err)
{
	uint64_t count = 1ull << (30 - prefix);
	/* Start at a point of our own so concurrent starts rarely try the same file first. */
	uint64_t start = (uint64_t)getpid() % count;

	sweep(dir, reclaim, arg);

	for (uint64_t k = 0; k < count; k++) {
		uint32_t net = base + (uint32_t)(((start + k) % count) * 4);
		struct hc_net_lease l = {.fd = -1};
		struct stat st;
		int r;

		hc_net_lease_name(&l, net);
		if (hc_path_fmt(l.path, sizeof(l.path), err, "%s/%s.lease", dir, l.id) < 0)
			return -ENAMETOOLONG;
		if (hc_net_routes_overlap(routes, net, 4))
			continue;
		r = lock_file(l.path, true, &l.fd);
		if (r < 0)
			return hc_error_errno(err, r, "network lease %s", l.path);
		if (r == 0)
			continue; /* a live VM holds it */
		/* Ours. A file with an owner record is what a dead process left. */
		if (fstat(l.fd, &st) == 0 && st.st_size > 0) {
			char rec[96] = "";
			ssize_t n = pread(l.fd, rec, sizeof(rec) - 1, 0);

			if (n > 0)
				rec[n] = 0;
			hc_info("network: reclaiming %s/30 left by a dead process (%.*s)",
				inet_ntoa(l.net), (int)strcspn(rec, "\n"), rec);
			if (reclaim)
				reclaim(&l, arg);
		}
		r = write_owner(l.fd);
		if (r < 0) {
			hc_net_lease_release(&l);
			return hc_error_errno(err, r, "network lease %s", l.path);
		}
		*ret = l;
		return 0;
	}
	return hc_error_setk(err, -EADDRNOTAVAIL, HC_EK_BACKEND,
			     "network pool exhausted: every /30 is in use or overlaps a host route "
			     "(set HOTCELL_NET_POOL to another range)");
}

int hc_net_lease_note_helper(const struct hc_net_lease *l, const char *what, pid_t pid)
{
	char rec[96];
	off_t end = lseek(l->fd, 0, SEEK_END);
	int n = snprintf(rec, sizeof(rec), "%s %d %llu\n", what, (int)pid,
			 hc_owner_start_time(pid));

	if (end < 0 || pwrite(l->fd, rec, (size_t)n, end) != n)
		return -errno;
	return 0;
}

void hc_net_lease_kill_helpers(const struct hc_net_lease *l)
{
	char rec[1024];
	ssize_t n = pread(l->fd, rec, sizeof(rec) - 1, 0);

	if (n <= 0)
		return;
	rec[n] = 0;
	for (char *line = strchr(rec, '\n'); line && *++line; line = strchr(line, '\n')) {
		char what[32];
		int pid;
		unsigned long long t;

		/* Only the very process recorded: a pid reused since is someone else's. */
		if (sscanf(line, "%31s %d %llu", what, &pid, &t) == 3 && pid > 1 &&
		    hc_owner_start_time(pid) == t && t != 0) {
			hc_info("network: ending the stale %s (pid %d)", what, pid);
			kill(pid, SIGKILL);
		}
	}
}

void hc_net_lease_release(struct hc_net_lease *l)
{
	if (!l || l->fd < 0)
		return;
	/* Unlink while still holding the lock: a waiter that opened the old file sees it is
	 * gone (lock_file compares inodes). */
	unlink(l->path);
	close(l->fd);
	l->fd = -1;
}
