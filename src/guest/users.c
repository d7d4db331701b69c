/* SPDX-License-Identifier: MIT */
/*
 * User and group resolution from the image's own /etc/passwd and /etc/group, as runc's
 * GetExecUser does (names or numbers, "user:group", supplementary groups from /etc/group,
 * HOME from passwd). Static glibc cannot use NSS, and the image's files are what count anyway.
 * The files are untrusted: each is read with a size cap and parsed field by field.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "guest/guest.h"

#define ETC_FILE_MAX (8u << 20)

/* Reads a whole file (at most ETC_FILE_MAX); -ENOENT when missing. */
static int read_small(const char *path, char **ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	size_t len = 0;
	char *buf;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > ETC_FILE_MAX)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	*ret = buf;
	return 0;
}

/* A decimal id: digits only, below (uid_t)-1 (which means "no change" to setuid). */
static bool parse_id(const char *s, uint32_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v >= UINT32_MAX)
			return false;
	}
	*ret = (uint32_t)v;
	return true;
}

/* Splits line into at most n ':'-separated fields in place; returns how many. */
static size_t split_fields(char *line, char **f, size_t n)
{
	size_t i = 0;

	while (i < n) {
		f[i++] = line;
		line = strchr(line, ':');
		if (!line)
			break;
		*line++ = 0;
	}
	return i;
}

struct pw {
	char name[256];
	uint32_t uid, gid;
	char home[PATH_MAX];
};

/* Finds a passwd entry by name (when name) or by uid. 1 found, 0 not, <0 error. */
static int find_passwd(const char *etc, const char *name, uint32_t uid, struct pw *ret)
{
	char path[PATH_MAX];
	_cleanup_free_ char *data = NULL;
	char *line, *save = NULL;
	int r;

	snprintf(path, sizeof(path), "%s/passwd", etc);
	r = read_small(path, &data);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[7];
		uint32_t u, g;

		if (line[0] == '#' || split_fields(line, f, 7) < 7)
			continue;
		if (!parse_id(f[2], &u) || !parse_id(f[3], &g))
			continue;
		if (name ? strcmp(f[0], name) != 0 : u != uid)
			continue;
		snprintf(ret->name, sizeof(ret->name), "%s", f[0]);
		ret->uid = u;
		ret->gid = g;
		snprintf(ret->home, sizeof(ret->home), "%s", f[5][0] ? f[5] : "/");
		return 1;
	}
	return 0;
}

static bool in_list(const char *members, const char *name)
{
	size_t n = strlen(name);

	while (*members) {
		const char *end = strchr(members, ',');
		size_t len = end ? (size_t)(end - members) : strlen(members);

		if (len == n && strncmp(members, name, n) == 0)
			return true;
		if (!end)
			break;
		members = end + 1;
	}
	return false;
}

static void add_group(struct guest_user *u, gid_t g)
{
	for (size_t i = 0; i < u->ngroups; i++)
		if (u->groups[i] == g)
			return;
	if (u->ngroups < GUEST_MAX_GROUPS)
		u->groups[u->ngroups++] = g;
}

/* Looks up group (a name, or NULL to skip) and collects the groups user is a member of. */
static int scan_groups(const char *etc, const char *group, uint32_t *ret_gid, bool *found,
		       const char *user, struct guest_user *u)
{
	char path[PATH_MAX];
	_cleanup_free_ char *data = NULL;
	char *line, *save = NULL;
	int r;

	*found = false;
	snprintf(path, sizeof(path), "%s/group", etc);
	r = read_small(path, &data);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4];
		uint32_t g;

		if (line[0] == '#' || split_fields(line, f, 4) < 4 || !parse_id(f[2], &g))
			continue;
		if (group && !*found && strcmp(f[0], group) == 0) {
			*ret_gid = g;
			*found = true;
		}
		if (user && in_list(f[3], user))
			add_group(u, g);
	}
	return 0;
}

static int fail(char *msg, size_t msglen, int code, const char *fmt, ...) _printf_(4, 5);
static int fail(char *msg, size_t msglen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	return code;
}

int guest_user_resolve(const char *etc, const char *spec, struct guest_user *ret, char *msg,
		       size_t msglen)
{
	char user[256] = "", group[256] = "";
	const char *colon = strchr(spec, ':');
	struct pw pw = {.name = ""};
	bool have_pw = false, have_group = colon != NULL, gfound;
	uint32_t id;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (strlen(spec) >= sizeof(user))
		return fail(msg, msglen, -EINVAL, "user `%s`: too long", spec);
	if (colon) {
		snprintf(user, sizeof(user), "%.*s", (int)(colon - spec), spec);
		snprintf(group, sizeof(group), "%s", colon + 1);
		if (!group[0])
			return fail(msg, msglen, -EINVAL, "user `%s`: empty group", spec);
	} else {
		snprintf(user, sizeof(user), "%s", spec);
	}
	if (!user[0])
		snprintf(user, sizeof(user), "0");

	if (parse_id(user, &id)) {
		r = find_passwd(etc, NULL, id, &pw);
		if (r < 0)
			return fail(msg, msglen, r, "read %s/passwd: %s", etc, strerror(-r));
		have_pw = r > 0;
		ret->uid = id;
		/* A uid the image does not know runs with gid 0 and HOME=/ (as runc does). */
		ret->gid = have_pw ? pw.gid : 0;
	} else {
		r = find_passwd(etc, user, 0, &pw);
		if (r < 0)
			return fail(msg, msglen, r, "read %s/passwd: %s", etc, strerror(-r));
		if (r == 0)
			return fail(msg, msglen, -ENOENT,
				    "unable to find user %s: no matching entries in passwd file",
				    user);
		have_pw = true;
		ret->uid = pw.uid;
		ret->gid = pw.gid;
	}
	snprintf(ret->home, sizeof(ret->home), "%s", have_pw ? pw.home : "/");

	if (have_group && parse_id(group, &id)) {
		ret->gid = id;
		have_group = false;
	}
	r = scan_groups(etc, have_group ? group : NULL, &id, &gfound, have_pw ? pw.name : NULL,
			ret);
	if (r < 0)
		return fail(msg, msglen, r, "read %s/group: %s", etc, strerror(-r));
	if (have_group) {
		if (!gfound)
			return fail(msg, msglen, -ENOENT,
				    "unable to find group %s: no matching entries in group file",
				    group);
		ret->gid = id;
	}
	/* initgroups(): the primary group is among the supplementary ones. */
	add_group(ret, ret->gid);
	return 0;
}
