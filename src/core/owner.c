/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "core/owner.h"
#include "core/path.h"

/* A directory without an owner file younger than this is being set up: leave it alone. */
#define UNOWNED_GRACE_S 60

unsigned long long hc_owner_start_time(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* comm may hold blanks and parentheses: the fields start after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	p += 2;
	if (*p == 'Z' || *p == 'X')
		return 0;
	/* p is field 3 (state): field 22 is 19 fields on. */
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p || sscanf(p, "%llu", &start) != 1)
		return 0;
	return start;
}

int hc_owner_write(const char *dir, struct hc_error *err)
{
	char path[HC_PATH_MAX], text[64];
	pid_t pid = getpid();
	int r;

	r = hc_path_fmt(path, sizeof(path), err, "%s/" HC_OWNER_FILE, dir);
	if (r < 0)
		return r;
	r = snprintf(text, sizeof(text), "%d %llu\n", (int)pid, hc_owner_start_time(pid));
	/* One small write: a reader sees all of it or no valid file (then the directory is
	 * "unowned", which the sweep leaves alone while it is young). No fsync: the owner only
	 * matters while this boot lasts. */
	_cleanup_close_ int fd =
		open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return hc_error_errno(err, -errno, "create %s", path);
	if (write(fd, text, (size_t)r) != r)
		return hc_error_errno(err, -EIO, "write %s", path);
	return 0;
}

int hc_owner_alive(const char *dir)
{
	char path[HC_PATH_MAX], text[64];
	unsigned long long start = 0;
	int pid = 0, fd;
	ssize_t n;

	if (snprintf(path, sizeof(path), "%s/" HC_OWNER_FILE, dir) >= (int)sizeof(path))
		return -ENOENT;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -ENOENT;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -ENOENT;
	text[n] = 0;
	if (sscanf(text, "%d %llu", &pid, &start) != 2 || pid <= 0)
		return -ENOENT;
	return hc_owner_start_time(pid) == start && start != 0 ? 1 : 0;
}

static bool legacy_id(const char *name)
{
	size_t n = strlen(name);

	if (n != 8)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return true;
}

int hc_owner_sweep(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *de;
	int removed = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[HC_PATH_MAX], tomb[HC_PATH_MAX], id[9];
		struct hc_error e = {0};
		struct stat st;
		int alive;

		if (de->d_name[0] == '.' && (!de->d_name[1] || hc_streq(de->d_name, "..")))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", base, de->d_name) >= (int)sizeof(path))
			continue;
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		alive = hc_owner_alive(path);
		if (alive == 1)
			continue;
		if (alive < 0 &&
		    (!legacy_id(de->d_name) || time(NULL) - st.st_mtime < UNOWNED_GRACE_S))
			continue;
		hc_path_random_id(id, 8);
		if (snprintf(tomb, sizeof(tomb), "%s/.reap-%s", base, id) >= (int)sizeof(tomb))
			continue;
		/* A tombstone is removed in place: renaming it again would gain nothing. */
		if (strncmp(de->d_name, ".reap-", 6) == 0)
			snprintf(tomb, sizeof(tomb), "%s", path);
		else if (rename(path, tomb) < 0)
			continue; /* another sweeper took it */
		if (hc_path_rm_rf(tomb, &e) < 0)
			hc_debug("stale %s not removed: %s", path, e.message);
		else
			removed++;
	}
	closedir(d);
	if (removed)
		hc_debug("removed %d stale director%s under %s", removed,
			 removed == 1 ? "y" : "ies", base);
	return removed;
}
