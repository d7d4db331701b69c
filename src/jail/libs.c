/* SPDX-License-Identifier: MIT */
/*
 * Which shared objects a binary loads, so its jail root holds exactly those (bound read-only
 * at the same paths: the loader then finds them by its default search path, or the binary's
 * RUNPATH). Asked of the dynamic loader through ldd, once per binary and modification time.
 */
#include <pthread.h>
#include <sys/stat.h>

#include "core/child.h"
#include "jail/jail-internal.h"

#define CACHE_SLOTS 8
#define MAX_LIBS 256

struct slot {
	char binary[HC_PATH_MAX];
	struct timespec mtime;
	const char **libs;
};

static struct slot cache[CACHE_SLOTS];
static unsigned next_slot;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* One ldd line: "\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or
 * "\t/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO line has no path. */
static const char *line_path(char *line)
{
	char *p = strstr(line, "=> ");
	p = p ? p + 3 : line;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '/')
		return NULL;
	char *end = strpbrk(p, " \t(");
	if (end)
		*end = '\0';
	return p;
}

static int resolve(const char *binary, const char ***ret, struct hc_error *err)
{
	const char *argv[] = {"ldd", binary, NULL};
	_cleanup_free_ char *out = NULL;
	struct hc_error e = {0};
	const char *paths[MAX_LIBS];
	size_t n = 0, bytes = 0;

	int r = hc_child_run(argv, 10000, 1 << 20, &out, &e);
	if (r != 0) {
		/* A static binary: nothing to load. */
		if (out && strstr(out, "not a dynamic executable")) {
			const char **none = calloc(1, sizeof(*none));
			if (!none)
				return hc_error_set(err, -ENOMEM, "jail: libraries of %s", binary);
			*ret = none;
			return 0;
		}
		return hc_error_set(err, r < 0 ? r : -EIO, "jail: libraries of %s: %s", binary,
				    e.message);
	}
	for (char *save = NULL, *line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "not found"))
			return hc_error_set(err, -ENOENT, "jail: %s needs %s", binary, line);
		const char *p = line_path(line);
		if (!p)
			continue;
		if (n == MAX_LIBS)
			return hc_error_set(err, -E2BIG, "jail: %s loads more than %d libraries",
					    binary, MAX_LIBS);
		paths[n++] = p;
		bytes += strlen(p) + 1;
	}
	/* One allocation: the pointer array, then the strings. */
	char **list = malloc((n + 1) * sizeof(char *) + bytes);
	if (!list)
		return hc_error_set(err, -ENOMEM, "jail: libraries of %s", binary);
	char *s = (char *)(list + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(paths[i]) + 1;
		memcpy(s, paths[i], l);
		list[i] = s;
		s += l;
	}
	list[n] = NULL;
	*ret = (const char **)list;
	return 0;
}

int hc_jail_libs(const char *binary, const char *const **ret, struct hc_error *err)
{
	struct stat st;
	const char **libs = NULL;
	int r = 0;

	if (stat(binary, &st) < 0)
		return hc_error_errno(err, -errno, "jail: %s", binary);
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < CACHE_SLOTS; i++) {
		struct slot *s = &cache[i];
		if (s->libs && hc_streq(s->binary, binary) &&
		    s->mtime.tv_sec == st.st_mtim.tv_sec &&
		    s->mtime.tv_nsec == st.st_mtim.tv_nsec) {
			*ret = s->libs;
			goto out;
		}
	}
	r = resolve(binary, &libs, err);
	if (r < 0)
		goto out;
	struct slot *s = &cache[next_slot++ % CACHE_SLOTS];
	free(s->libs);
	snprintf(s->binary, sizeof(s->binary), "%s", binary);
	s->mtime = st.st_mtim;
	s->libs = libs;
	*ret = libs;
out:
	pthread_mutex_unlock(&lock);
	return r;
}
