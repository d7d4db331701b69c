/* SPDX-License-Identifier: MIT */
/*
 * `hotcell pull|load|images|rmi|prune` (DESIGN.md §6). The progress display of pull is drawn
 * only when stderr is a terminal; otherwise pull is quiet and prints just the digest.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <time.h>

#include "cli/cli.h"
#include "core/error.h"
#include "hotcell.h"

#define PULL_USAGE "usage: hotcell pull [--platform OS/ARCH] [--insecure] [--verify] REF"
#define LOAD_USAGE                                                                                 \
	"usage: hotcell load [--name REF] [-i] PATH | hotcell load [--name REF] < ARCHIVE"
#define IMAGES_USAGE "usage: hotcell images [--json]"
#define RMI_USAGE "usage: hotcell rmi [-f] REF..."
#define PRUNE_USAGE "usage: hotcell prune"
#define CHECK_USAGE "usage: hotcell check [--json]"

/* ---- pull ----------------------------------------------------------------------------- */

#define PROGRESS_ROWS 64

struct progress {
	pthread_mutex_t lock;
	struct {
		char digest[72];
		uint64_t done, total;
	} rows[PROGRESS_ROWS];
	size_t n;
	size_t drawn; /* lines currently on screen */
	struct timespec last;
};

static void human(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)n;
	size_t u = 0;

	while (v >= 1000 && u < HC_ARRAY_SIZE(units) - 1) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

static void progress_draw(struct progress *p)
{
	/* Back to the first line we drew, then every row again (ANSI: cursor up, erase line). */
	if (p->drawn)
		fprintf(stderr, "\033[%zuA", p->drawn);
	for (size_t i = 0; i < p->n; i++) {
		char done[32], total[32];
		human(p->rows[i].done, done, sizeof(done));
		if (p->rows[i].total)
			human(p->rows[i].total, total, sizeof(total));
		fprintf(stderr, "\r\033[2K%.19s  %s%s%s%s\n", p->rows[i].digest, done,
			p->rows[i].total ? " / " : "", p->rows[i].total ? total : "",
			p->rows[i].total && p->rows[i].done >= p->rows[i].total ? "  done" : "");
	}
	p->drawn = p->n;
	fflush(stderr);
}

static void progress_cb(const char *digest, uint64_t done, uint64_t total, void *userdata)
{
	struct progress *p = userdata;
	struct timespec now;
	bool added = false;
	size_t i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->n; i++)
		if (strcmp(p->rows[i].digest, digest) == 0)
			break;
	if (i == p->n && p->n < PROGRESS_ROWS) {
		snprintf(p->rows[i].digest, sizeof(p->rows[i].digest), "%s", digest);
		p->n++;
		added = true;
	}
	if (i < p->n) {
		p->rows[i].done = done;
		p->rows[i].total = total;
	}
	/* Redraw at most ten times a second, and always when a blob completes. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - p->last.tv_sec) * 1000 + (now.tv_nsec - p->last.tv_nsec) / 1000000;
	if (ms >= 100 || (total && done >= total) || added) {
		progress_draw(p);
		p->last = now;
	}
	pthread_mutex_unlock(&p->lock);
}

int hc_cli_pull(int argc, char **argv)
{
	static const struct option opts[] = {
		{"platform", required_argument, NULL, 'P'},
		{"insecure", no_argument, NULL, 'k'},
		{"verify", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct hc_pull_opts po = {0};
	struct progress prog = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct hc_error err = {0};
	char digest[72] = "";
	struct hc_store *s;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'P':
			po.platform = optarg;
			break;
		case 'k':
			po.insecure = true;
			break;
		case 'V':
			po.verify = true;
			break;
		case 'h':
			printf("%s\n", PULL_USAGE);
			return 0;
		default:
			return hc_cli_failf("%s", PULL_USAGE);
		}
	}
	if (optind != argc - 1)
		return hc_cli_failf("%s", PULL_USAGE);
	if (isatty(STDERR_FILENO)) {
		po.progress = progress_cb;
		po.userdata = &prog;
	}
	po.cancel_fd = hc_cli_cancel_pipe();
	if (po.cancel_fd < 0)
		return hc_cli_failf("cannot install signal handlers: %s", strerror(-po.cancel_fd));
	po.cancel_fd_set = true;
	s = hc_cli_store_open();
	if (!s)
		return HC_EXIT_INTERNAL;
	r = hc_image_pull(s, argv[optind], &po, digest, &err);
	hc_store_close(s);
	if (r == -ECANCELED) {
		if (prog.drawn)
			fputc('\n', stderr);
		hc_cli_fail(&err);
		return hc_cli_cancel_status();
	}
	if (r < 0)
		return hc_cli_fail(&err);
	printf("%s\n", digest);
	return 0;
}

/* ---- load ----------------------------------------------------------------------------- */

static int stdin_to_tmpfile(int *ret)
{
	const char *dir = getenv("TMPDIR");
	char buf[65536];
	ssize_t n;
	int fd = open(dir && *dir ? dir : "/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(fd, buf, (size_t)n) != n) {
			int e = errno ? errno : EIO;

			close(fd);
			return -e;
		}
	}
	*ret = fd;
	return 0;
}

int hc_cli_load(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},
		{"input", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	_cleanup_close_ int tmp = -1;
	char tmp_path[64];
	const char *path = NULL;
	struct hc_error err = {0};
	struct hc_image_info *list = NULL, *before = NULL;
	const char *name = NULL;
	char digest[72] = "";
	struct hc_store *s;
	size_t n = 0, n_before = 0;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+hi:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'i': /* podman's -i/--input FILE */
			path = optarg;
			break;
		case 'h':
			printf("%s\n", LOAD_USAGE);
			return 0;
		default:
			return hc_cli_failf("%s", LOAD_USAGE);
		}
	}
	if (!path && optind == argc - 1)
		path = argv[optind++];
	if (optind != argc)
		return hc_cli_failf("%s", LOAD_USAGE);
	if (!path) {
		/* podman load reads the archive from stdin: into an unnamed temporary file (gone
		 * with us, however we end), loaded through its /proc path. */
		if (isatty(STDIN_FILENO))
			return hc_cli_failf("load: no PATH, and stdin is a terminal (%s)",
					    LOAD_USAGE);
		r = stdin_to_tmpfile(&tmp);
		if (r < 0)
			return hc_cli_failf("load: cannot read the archive from stdin: %s",
					    strerror(-r));
		snprintf(tmp_path, sizeof(tmp_path), "/proc/self/fd/%d", tmp);
		path = tmp_path;
	}
	s = hc_cli_store_open();
	if (!s)
		return HC_EXIT_INTERNAL;
	/* To name what was loaded, as podman load does: the names that point somewhere new. */
	if (hc_image_list(s, &before, &n_before, &err) < 0)
		n_before = 0;
	r = hc_image_load(s, path, name, digest, &err);
	if (r < 0) {
		hc_image_list_free(before, n_before);
		hc_store_close(s);
		return hc_cli_fail(&err);
	}
	bool printed = false;
	if (hc_image_list(s, &list, &n, &err) >= 0)
		for (size_t i = 0; i < n; i++) {
			bool known = false;
			if (!list[i].name)
				continue;
			for (size_t j = 0; j < n_before && !known; j++)
				known = before[j].name &&
					strcmp(before[j].name, list[i].name) == 0 &&
					strcmp(before[j].digest, list[i].digest) == 0;
			if (!known) {
				printf("Loaded image: %s\n", list[i].name);
				printed = true;
			}
		}
	if (!printed)
		printf("Loaded image: %s\n", digest);
	hc_image_list_free(list, n);
	hc_image_list_free(before, n_before);
	hc_store_close(s);
	return 0;
}

/* ---- images --------------------------------------------------------------------------- */

static int print_json(const struct hc_image_info *list, size_t n)
{
	json_t *arr = json_array();
	char *out;

	if (!arr)
		return hc_cli_failf("out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *o =
			json_pack("{s:o, s:s, s:I, s:o, s:I}", "name",
				  list[i].name ? json_string(list[i].name) : json_null(), "digest",
				  list[i].digest, "size", (json_int_t)list[i].size, "created",
				  list[i].created ? json_string(list[i].created) : json_null(),
				  "template_size", (json_int_t)list[i].template_size);
		if (!o || json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			return hc_cli_failf("out of memory");
		}
	}
	out = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(arr);
	if (!out)
		return hc_cli_failf("out of memory");
	printf("%s\n", out);
	free(out);
	return 0;
}

/* Options of a command that takes only --json and --help: -1 to go on, else the exit status. */
static int json_flag(int argc, char **argv, const char *usage, bool *json)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			*json = true;
			break;
		case 'h':
			printf("%s\n", usage);
			return 0;
		default:
			return hc_cli_failf("%s", usage);
		}
	}
	if (optind != argc)
		return hc_cli_failf("%s", usage);
	return -1;
}

int hc_cli_images(int argc, char **argv)
{
	struct hc_error err = {0};
	struct hc_image_info *list = NULL;
	bool json = false;
	struct hc_store *s;
	size_t n = 0;
	int c, r;

	c = json_flag(argc, argv, IMAGES_USAGE, &json);
	if (c >= 0)
		return c;
	s = hc_cli_store_open();
	if (!s)
		return HC_EXIT_INTERNAL;
	r = hc_image_list(s, &list, &n, &err);
	hc_store_close(s);
	if (r < 0)
		return hc_cli_fail(&err);
	if (json) {
		r = print_json(list, n);
	} else {
		printf("%-50s  %-19s  %-10s  %s\n", "NAME", "DIGEST", "SIZE", "CREATED");
		for (size_t i = 0; i < n; i++) {
			char size[32];
			human(list[i].size, size, sizeof(size));
			printf("%-50s  %.19s  %-10s  %s\n", list[i].name ? list[i].name : "<none>",
			       list[i].digest, size, list[i].created ? list[i].created : "-");
		}
		r = 0;
	}
	hc_image_list_free(list, n);
	return r;
}

/* ---- rmi / prune ---------------------------------------------------------------------- */

static void print_untagged(const char *name, void *userdata)
{
	printf("Untagged: %s\n", name);
}

int hc_cli_rmi(int argc, char **argv)
{
	struct hc_error err = {0};
	struct hc_store *s;
	bool force = false;
	int ret = 0, i = 1;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("%s\n", RMI_USAGE);
		return 0;
	}
	if (i < argc && (hc_streq(argv[i], "-f") || hc_streq(argv[i], "--force"))) {
		force = true;
		i++;
	}
	if (i >= argc)
		return hc_cli_failf("%s", RMI_USAGE);
	s = hc_cli_store_open();
	if (!s)
		return HC_EXIT_INTERNAL;
	for (; i < argc; i++) {
		hc_error_clear(&err);
		/* As podman: each name that goes is printed, an image of several names goes by
		 * its id only with -f. */
		if (hc_image_untag(s, argv[i], force, print_untagged, NULL, &err) < 0)
			ret = hc_cli_fail(&err);
	}
	hc_store_close(s);
	return ret;
}

int hc_cli_prune(int argc, char **argv)
{
	struct hc_error err = {0};
	struct hc_store *s;
	int r;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("%s\n", PRUNE_USAGE);
		return 0;
	}
	if (argc > 1)
		return hc_cli_failf("%s", PRUNE_USAGE);
	s = hc_cli_store_open();
	if (!s)
		return HC_EXIT_INTERNAL;
	r = hc_store_prune(s, &err);
	hc_store_close(s);
	if (r < 0)
		return hc_cli_fail(&err);
	printf("Removed %d item%s\n", r, r == 1 ? "" : "s");
	return 0;
}

/* ---- check ---------------------------------------------------------------------------- */

int hc_cli_check(int argc, char **argv)
{
	struct hc_store_problem *list = NULL;
	struct hc_error err = {0};
	bool json = false;
	struct hc_store *s;
	size_t n = 0;
	int c, r;

	c = json_flag(argc, argv, CHECK_USAGE, &json);
	if (c >= 0)
		return c;
	s = hc_cli_store_open();
	if (!s)
		return HC_EXIT_INTERNAL;
	r = hc_store_check(s, &list, &n, &err);
	hc_store_close(s);
	if (r < 0)
		return hc_cli_fail(&err);
	if (json) {
		json_t *arr = json_array();
		char *out = NULL;
		for (size_t i = 0; arr && i < n; i++)
			if (json_array_append_new(arr,
						  json_pack("{s:s, s:s}", "object", list[i].object,
							    "problem", list[i].problem)) < 0)
				break;
		if (arr)
			out = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(arr);
		if (!out) {
			hc_store_problems_free(list, n);
			return hc_cli_failf("out of memory");
		}
		printf("%s\n", out);
		free(out);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s: %s\n", list[i].object, list[i].problem);
		if (n == 0)
			printf("The store is healthy\n");
	}
	hc_store_problems_free(list, n);
	if (n && !json)
		fprintf(stderr,
			"hotcell: the store has %zu problem%s; `hotcell pull` (or `load`) of "
			"an image repairs its blobs, `hotcell rmi` + `prune` drops it\n",
			n, n == 1 ? "" : "s");
	return n ? 1 : 0;
}
