/* SPDX-License-Identifier: MIT */
/*
 * Which shared objects a binary loads, so its jail root holds exactly those (bound read-only
 * at the same paths: the loader then finds them by its default search path, or the binary's
 * RUNPATH). Asked of the dynamic loader through ldd, once per binary and modification time:
 * kept in memory for this process and on disk in HC_JAIL_LIBS_DIR (a tmpfs, root's), since ldd
 * of QEMU (~30 ms, three loader runs) was a fifth of every jailed warm start of the CLI.
 */
#include <pthread.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/child.h"
#include "core/log.h"
#include "core/path.h"
#include "jail/jail-internal.h"

#define CACHE_SLOTS 8
#define MAX_LIBS 256
#define DISK_MAX (64u * 1024)

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

/* One allocation: the pointer array, then the strings (bytes: their lengths with NULs). */
static const char **pack(const char *const *paths, size_t n, size_t bytes)
{
	char **list = malloc((n + 1) * sizeof(char *) + bytes);
	if (!list)
		return NULL;
	char *s = (char *)(list + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(paths[i]) + 1;
		memcpy(s, paths[i], l);
		list[i] = s;
		s += l;
	}
	list[n] = NULL;
	return (const char **)list;
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
	*ret = pack(paths, n, bytes);
	return *ret ? 0 : hc_error_set(err, -ENOMEM, "jail: libraries of %s", binary);
}

/* ---- the disk cache: one file per binary, "KEY\nLIB\nLIB...\n" ---- */

/* The binary's identity: a replaced or rebuilt binary is asked again. */
static void disk_key(const char *binary, const struct stat *st, char *key, size_t n)
{
	snprintf(key, n, "1 %llu %llu %lld %lld.%09ld %lld.%09ld %s",
		 (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
		 (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
		 (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec, binary);
}

static const char *libs_dir(void)
{
	const char *dir = getenv("HOTCELL_JAIL_LIBS_DIR");
	return dir && *dir ? dir : HC_JAIL_LIBS_DIR;
}

static int disk_path(const char *binary, char *path, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a: a file name, the key inside decides */

	for (const char *p = binary; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return hc_path_fmt(path, n, NULL, "%s/%016llx", libs_dir(), (unsigned long long)h);
}

/* The cached list, when its key is this binary's and every library is still there (a library
 * removed by an upgrade sends us back to ldd rather than fail the jail's bind). */
static const char **disk_load(const char *binary, const struct stat *st)
{
	char path[HC_PATH_MAX], key[HC_PATH_MAX + 128];
	_cleanup_free_ char *data = NULL;
	const char *paths[MAX_LIBS];
	size_t len, n = 0, bytes = 0;
	struct stat ds;

	if (disk_path(binary, path, sizeof(path)) < 0 || lstat(path, &ds) < 0 ||
	    !S_ISREG(ds.st_mode) || ds.st_uid != geteuid() || (ds.st_mode & 022) ||
	    hc_path_read_file(path, DISK_MAX, &data, &len, NULL) < 0)
		return NULL;
	disk_key(binary, st, key, sizeof(key));
	char *save = NULL, *line = strtok_r(data, "\n", &save);
	if (!line || !hc_streq(line, key))
		return NULL;
	while ((line = strtok_r(NULL, "\n", &save))) {
		if (line[0] != '/' || n == MAX_LIBS || access(line, F_OK) < 0)
			return NULL;
		paths[n++] = line;
		bytes += strlen(line) + 1;
	}
	return pack(paths, n, bytes);
}

/* Best effort: a cache that cannot be written costs the next process an ldd. */
static void disk_save(const char *binary, const struct stat *st, const char **libs)
{
	char path[HC_PATH_MAX], key[HC_PATH_MAX + 128];
	struct hc_buf b = HC_BUF_INIT(0);

	if (disk_path(binary, path, sizeof(path)) < 0)
		return;
	if (mkdir(libs_dir(), 0700) < 0 && errno != EEXIST)
		return;
	disk_key(binary, st, key, sizeof(key));
	int r = hc_buf_printf(&b, "%s\n", key);
	for (size_t i = 0; r >= 0 && libs[i]; i++)
		r = hc_buf_printf(&b, "%s\n", libs[i]);
	if (r >= 0)
		r = hc_path_write_file_atomic(path, b.data, b.len, 0600, NULL);
	if (r < 0)
		hc_debug("jail: libraries of %s not cached: %s", binary, strerror(-r));
	hc_buf_free(&b);
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
	libs = disk_load(binary, &st);
	if (!libs) {
		r = resolve(binary, &libs, err);
		if (r < 0)
			goto out;
		disk_save(binary, &st, libs);
	}
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
