/* SPDX-License-Identifier: MIT */
/*
 * `hotcell vm ...` (DESIGN.md §6, docs/vm.md): persistent VMs. Every subcommand is a client of
 * the VM's supervisor through the hc_pvm_* API.
 */
#include <getopt.h>
#include <signal.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/mman.h>

#include "cli/cli.h"
#include "core/error.h"
#include "hotcell.h"
#include "lib/runopts.h"

static const char vm_usage[] =
	"usage: hotcell vm COMMAND ...\n"
	"\n"
	"  vm create [RUN OPTIONS] [--name NAME] [--idle-timeout S] [--lifetime S] IMAGE\n"
	"  vm exec [-i] [-t] [-e K=V] [--env-file F] [-w DIR] [-u USER] [--timeout S] [--json] "
	"[-d] VM [--] CMD...\n"
	"  vm cp SRC DST                 VM:PATH on one side; a directory copies recursively\n"
	"  vm ls [--json]\n"
	"  vm inspect VM\n"
	"  vm logs VM\n"
	"  vm pause VM | vm resume VM | vm stop [--time S] VM\n"
	"  vm snapshot [--leave-paused] VM DIR\n"
	"  vm restore [--name NAME] DIR  prints the new VM's id\n"
	"  vm fork [--count N] VM        prints N new ids, one a line\n"
	"  vm migrate VM --to URL [--token-file F] [--reseed] [--json]\n"
	"                                move VM to another `hotcell serve` (its token from\n"
	"                                F or $HOTCELL_MIGRATE_TOKEN); prints the new id\n"
	"  vm rm [-f] VM...\n"
	"  vm prune\n"
	"\n"
	"A VM is named by its id, an unambiguous prefix of it, or its name.\n";

/* ---- create ---- */

enum { X_NAME = 1, X_IDLE, X_LIFETIME, X_HELP };

static const struct hc_runopt_extra create_extra[] = {
	{"name", required_argument, 0, X_NAME},
	{"idle-timeout", required_argument, 0, X_IDLE},
	{"lifetime", required_argument, 0, X_LIFETIME},
	{"help", no_argument, 0, X_HELP},
};

struct create_cli {
	const char *name;
	double idle, lifetime;
	bool help;
};

static int create_extra_opt(int id, const char *arg, void *userdata, struct hc_error *err)
{
	struct create_cli *c = userdata;

	switch (id) {
	case X_NAME:
		c->name = arg;
		return 0;
	case X_IDLE:
		return hc_runopts_parse_seconds("--idle-timeout", arg, &c->idle, err);
	case X_LIFETIME:
		return hc_runopts_parse_seconds("--lifetime", arg, &c->lifetime, err);
	default:
		c->help = true;
		return 0;
	}
}

static void create_usage(FILE *f)
{
	char *opts = hc_runopts_help(HC_RUNOPT_VM);

	fputs("usage: hotcell vm create [RUN OPTIONS] [--name NAME] [--idle-timeout S] "
	      "[--lifetime S] IMAGE\n"
	      "       hotcell vm create [RUN OPTIONS] --rootfs DIR\n\n"
	      "Creates a persistent VM and prints its id once the guest is up.\n\n",
	      f);
	fputs(opts ? opts : "", f);
	fputs("  --name NAME              a name to refer to the VM by\n"
	      "  --idle-timeout SECONDS   stop after this long with no command and no client\n"
	      "  --lifetime SECONDS       stop this long after creation\n",
	      f);
	free(opts);
}

static int vm_create(int argc, char **argv)
{
	struct hc_runopts ro;
	struct create_cli c = {0};
	struct hc_error err = {0};
	struct hc_store *store = NULL;
	char id[HC_PVM_ID_LEN + 1];
	int r, status = HC_EXIT_INTERNAL;

	hc_runopts_init(&ro);
	r = hc_runopts_getopt(&ro, HC_RUNOPT_VM, argc, argv, create_extra,
			      HC_ARRAY_SIZE(create_extra), create_extra_opt, &c, &err);
	if (r < 0) {
		hc_cli_fail(&err);
		goto out;
	}
	if (c.help) {
		create_usage(stdout);
		status = 0;
		goto out;
	}
	if (!ro.o.rootfs_dir) {
		if (r >= argc) {
			hc_cli_failf("vm create: no IMAGE given (see hotcell vm create --help)");
			goto out;
		}
		ro.o.image = argv[r++];
	}
	if (r < argc) {
		hc_cli_failf("vm create: unexpected '%s' after the image (commands go to vm exec)",
			     argv[r]);
		goto out;
	}
	if (ro.o.image && !(store = hc_cli_store_open()))
		goto out;
	{
		struct hc_pvm_create_opts co = {
			.run = &ro.o,
			.name = c.name,
			.idle_timeout_s = c.idle,
			.lifetime_s = c.lifetime,
		};

		r = hc_pvm_create(store, &co, id, &err);
	}
	if (r < 0) {
		status = hc_cli_fail(&err);
		goto out;
	}
	printf("%s\n", id);
	status = 0;
out:
	hc_store_close(store);
	hc_runopts_free(&ro);
	return status;
}

/* ---- ls, inspect, logs ---- */

static int vm_ls(int argc, char **argv)
{
	struct hc_error err = {0};
	struct hc_pvm_info *l = NULL;
	size_t n = 0;
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (hc_streq(argv[i], "--json"))
			json = true;
		else
			return hc_cli_failf(
				"vm ls: unexpected '%s' (usage: hotcell vm ls [--json])", argv[i]);
	}
	if (hc_pvm_list(&l, &n, &err) < 0)
		return hc_cli_fail(&err);
	if (json) {
		char *s = hc_pvm_list_to_json(l, n);

		puts(s ? s : "[]");
		free(s);
	} else {
		printf("%-12s  %-16s  %-30s  %-16s  %-8s  %s\n", "ID", "NAME", "IMAGE", "BACKEND",
		       "STATUS", "CREATED");
		for (size_t i = 0; i < n; i++)
			printf("%-12.12s  %-16s  %-30s  %-16s  %-8s  %s\n", l[i].id,
			       l[i].name ? l[i].name : "-", l[i].image ? l[i].image : "-",
			       l[i].backend[0] ? l[i].backend : "-",
			       hc_pvm_status_name(l[i].status), l[i].created);
	}
	hc_pvm_list_free(l, n);
	return 0;
}

static int one_vm(int argc, char **argv, const char *usage)
{
	if (argc != 2)
		hc_cli_failf("usage: hotcell vm %s", usage);
	return argc == 2 ? 0 : HC_EXIT_INTERNAL;
}

static int vm_inspect(int argc, char **argv)
{
	struct hc_error err = {0};
	char *s = NULL;
	int r = one_vm(argc, argv, "inspect VM");

	if (r)
		return r;
	if (hc_pvm_inspect(argv[1], &s, &err) < 0)
		return hc_cli_fail(&err);
	puts(s);
	free(s);
	return 0;
}

static int vm_logs(int argc, char **argv)
{
	struct hc_error err = {0};
	int r = one_vm(argc, argv, "logs VM");

	if (r)
		return r;
	fflush(stdout);
	if (hc_pvm_logs(argv[1], STDOUT_FILENO, &err) < 0)
		return hc_cli_fail(&err);
	return 0;
}

/* ---- exec ---- */

#define JSON_CAPTURE (1u << 20)

/* Reads back what a capture file holds (at most JSON_CAPTURE bytes). */
static char *capture_read(int fd, size_t *len, bool *truncated)
{
	off_t size = lseek(fd, 0, SEEK_END);
	size_t n = size > 0 ? (size_t)size : 0;
	char *buf;
	ssize_t r;

	*truncated = n > JSON_CAPTURE;
	if (n > JSON_CAPTURE)
		n = JSON_CAPTURE;
	buf = malloc(n + 1);
	if (!buf)
		return NULL;
	r = pread(fd, buf, n, 0);
	*len = r > 0 ? (size_t)r : 0;
	buf[*len] = 0;
	return buf;
}

static const char exec_usage_head[] =
	"usage: hotcell vm exec [OPTIONS] VM [--] CMD [ARG...]\n"
	"\n"
	"Runs CMD in a running VM, like `podman exec`, and exits with its status.\n"
	"\n";

enum { E_JSON = 1, E_HELP };

static const struct hc_runopt_extra exec_extra[] = {
	{"json", no_argument, 0, E_JSON},
	{"help", no_argument, 'h', E_HELP},
};

static int exec_on_extra(int id, const char *arg, void *userdata, struct hc_error *err)
{
	bool *flags = userdata;

	flags[id == E_JSON ? 0 : 1] = true;
	return 0;
}

static void exec_started(void *userdata, unsigned pid)
{
	int r = hc_cli_tty_raw(userdata);

	if (r < 0)
		fprintf(stderr, "hotcell: warning: cannot put the terminal in raw mode: %s\n",
			strerror(-r));
}

static int vm_exec(int argc, char **argv)
{
	struct hc_pvm_exec_opts o;
	struct hc_pvm_exec_result res;
	struct hc_error err = {0};
	struct hc_runopts ro;
	struct hc_cli_tty tty = {.fd = -1, .winch_fd = -1};
	bool flags[2] = {false, false}, json = false, interactive;
	int r, status = HC_EXIT_INTERNAL, cap_out = -1, cap_err = -1;
	const char *vm;

	hc_pvm_exec_opts_init(&o);
	hc_runopts_init(&ro);
	/* -e, -w, -u, -i, -t, --env-file, --timeout, -d: the run options table's (the same
	 * parsers as run); -h is the help, as in podman exec (which has no --hostname). */
	r = hc_runopts_getopt(&ro, HC_RUNOPT_EXEC, argc, argv, exec_extra,
			      HC_ARRAY_SIZE(exec_extra), exec_on_extra, flags, &err);
	if (r < 0) {
		hc_cli_fail_options(&err, "vm exec");
		goto out;
	}
	if (flags[1]) {
		char *opts = hc_runopts_help(HC_RUNOPT_EXEC);

		fputs(exec_usage_head, stdout);
		fputs(opts ? opts : "", stdout);
		fputs("  --json                   print one JSON result object (as run --json)\n"
		      "  -h, --help               this text\n",
		      stdout);
		free(opts);
		status = 0;
		goto out;
	}
	json = flags[0];
	optind = r;
	interactive = ro.o.interactive;
	o.env = ro.o.env;
	o.n_env = ro.o.n_env;
	o.workdir = ro.o.workdir;
	o.user = ro.o.user;
	o.timeout_s = ro.o.timeout_s > 0 ? ro.o.timeout_s : 0; /* 0 and --timeout 0: none */
	o.detach = ro.detach;
	o.tty = ro.o.tty;
	if (optind >= argc) {
		hc_cli_failf("vm exec: no VM given");
		goto out;
	}
	vm = argv[optind++];
	if (optind < argc && hc_streq(argv[optind], "--"))
		optind++;
	if (optind >= argc) {
		hc_cli_failf("vm exec: no command given");
		goto out;
	}
	if (o.detach && (interactive || o.timeout_s > 0 || o.tty)) {
		hc_cli_failf("vm exec: --detach takes none of -i, -t, --timeout");
		goto out;
	}
	if (o.tty && json) {
		hc_cli_failf("vm exec: --tty and --json do not go together (a terminal's output "
			     "is not JSON)");
		goto out;
	}
	o.cmd = (const char *const *)(argv + optind);
	o.n_cmd = (size_t)(argc - optind);
	if (interactive)
		o.stdin_fd = STDIN_FILENO;
	if (json) {
		cap_out = memfd_create("hotcell-stdout", MFD_CLOEXEC);
		cap_err = memfd_create("hotcell-stderr", MFD_CLOEXEC);
		if (cap_out < 0 || cap_err < 0) {
			hc_cli_failf("vm exec: memfd_create: %s", strerror(errno));
			goto out;
		}
		o.stdout_fd = cap_out;
		o.stderr_fd = cap_err;
	} else {
		o.stdout_fd = STDOUT_FILENO;
		o.stderr_fd = STDERR_FILENO;
	}
	if (hc_cli_cancel_pipe() < 0) {
		hc_cli_failf("cannot install signal handlers: %s", strerror(errno));
		goto out;
	}
	o.cancel_fd = hc_cli_cancel_pipe();
	if (o.tty) {
		r = hc_cli_tty_begin(interactive, &tty);
		if (r < 0) {
			hc_cli_failf("vm exec: cannot set up the terminal: %s", strerror(-r));
			goto out;
		}
		o.tty_fd = tty.fd;
		o.winch_fd = tty.winch_fd;
		o.on_started = exec_started;
		o.userdata = &tty;
	}

	r = hc_pvm_exec(vm, &o, &res, &err);
	/* Before any message: the terminal is the user's again. */
	hc_cli_tty_end(&tty);
	if (r == -ECANCELED) {
		status = hc_cli_cancel_status();
		hc_cli_fail(&err);
	} else if (r < 0 && hc_streq(err.kind, "exec") && res.exit_code > 0) {
		status = res.exit_code;
		hc_cli_fail(&err);
	} else if (r < 0) {
		status = hc_cli_fail(&err);
	} else {
		status = hc_pvm_exec_status(&res);
		if (o.detach && !json)
			printf("%d\n", res.pid);
	}
	if (json) {
		struct hc_run_result rr = {0};
		char *s;

		char *info = NULL;
		json_t *rec = NULL;
		struct hc_error ignore = {0};

		/* The same object as run --json, with the VM's backend and image. */
		if (hc_pvm_inspect(vm, &info, &ignore) == 0)
			rec = json_loads(info, 0, NULL);
		free(info);
		snprintf(rr.backend, sizeof(rr.backend), "%s",
			 json_string_value(json_object_get(rec, "backend"))
				 ? json_string_value(json_object_get(rec, "backend"))
				 : "");
		snprintf(rr.accel, sizeof(rr.accel), "%s",
			 json_string_value(json_object_get(json_object_get(rec, "spec"), "accel"))
				 ? json_string_value(
					   json_object_get(json_object_get(rec, "spec"), "accel"))
				 : "");
		if (json_string_value(json_object_get(rec, "image")))
			rr.image = strdup(json_string_value(json_object_get(rec, "image")));
		snprintf(rr.image_digest, sizeof(rr.image_digest), "%s",
			 json_string_value(json_object_get(rec, "digest"))
				 ? json_string_value(json_object_get(rec, "digest"))
				 : "");
		json_decref(rec);
		rr.exit_code = res.exit_code;
		rr.signal = res.signal;
		rr.timed_out = res.timed_out;
		rr.t_exec_ms = rr.t_total_ms = res.t_exec_ms;
		rr.stdout_data = capture_read(cap_out, &rr.stdout_len, &rr.stdout_truncated);
		rr.stderr_data = capture_read(cap_err, &rr.stderr_len, &rr.stderr_truncated);
		if (r < 0 && !(hc_streq(err.kind, "exec") && res.exit_code > 0))
			s = hc_error_to_json(&err);
		else if (r < 0)
			s = hc_run_result_to_json_error(&rr, &err);
		else
			s = hc_run_result_to_json(&rr);
		puts(s ? s : "{\"error\":{\"kind\":\"internal\",\"message\":\"out of memory\"}}");
		free(s);
		free(rr.stdout_data);
		free(rr.stderr_data);
		free(rr.image);
	}
out:
	hc_cli_tty_end(&tty);
	if (cap_out >= 0)
		close(cap_out);
	if (cap_err >= 0)
		close(cap_err);
	hc_runopts_free(&ro);
	return status;
}

/* ---- cp ---- */

/* "VM:PATH" -> VM and PATH (VM names and ids have no '/' and no ':'). */
static bool split_vm(char *s, char **vm, char **path)
{
	char *colon = strchr(s, ':');

	if (!colon || colon == s || memchr(s, '/', (size_t)(colon - s)))
		return false;
	*colon = 0;
	*vm = s;
	*path = colon + 1;
	return true;
}

static int vm_cp(int argc, char **argv)
{
	struct hc_error err = {0};
	char *vm, *path;
	int r;

	if (argc != 3)
		return hc_cli_failf("usage: hotcell vm cp SRC DST (VM:PATH on one side)");
	if (split_vm(argv[1], &vm, &path)) {
		char *v2, *p2;

		if (split_vm(argv[2], &v2, &p2))
			return hc_cli_failf(
				"vm cp: both sides are in a VM; one must be a host path");
		r = hc_pvm_copy_out(vm, path, argv[2], &err);
	} else if (split_vm(argv[2], &vm, &path)) {
		r = hc_pvm_copy_in(vm, argv[1], path, &err);
	} else {
		return hc_cli_failf("vm cp: neither side is VM:PATH");
	}
	return r < 0 ? hc_cli_fail(&err) : 0;
}

/* ---- pause, resume, stop, rm, prune ---- */

static int vm_pause(int argc, char **argv)
{
	struct hc_error err = {0};
	int r = one_vm(argc, argv, "pause VM");

	if (r)
		return r;
	return hc_pvm_pause(argv[1], &err) < 0 ? hc_cli_fail(&err) : 0;
}

static int vm_resume(int argc, char **argv)
{
	struct hc_error err = {0};
	int r = one_vm(argc, argv, "resume VM");

	if (r)
		return r;
	return hc_pvm_resume(argv[1], &err) < 0 ? hc_cli_fail(&err) : 0;
}

static int vm_stop(int argc, char **argv)
{
	struct hc_error err = {0};
	double grace = 0;
	int i = 1;

	if (argc > 2 && (hc_streq(argv[1], "--time") || hc_streq(argv[1], "-t"))) {
		if (hc_runopts_parse_seconds("--time", argv[2], &grace, &err) < 0)
			return hc_cli_fail(&err);
		i = 3;
	}
	if (i >= argc)
		return hc_cli_failf("usage: hotcell vm stop [--time S] VM...");
	for (; i < argc; i++) {
		if (hc_pvm_stop(argv[i], grace, &err) < 0)
			return hc_cli_fail(&err);
	}
	return 0;
}

static int vm_rm(int argc, char **argv)
{
	struct hc_error err = {0};
	bool force = false;
	int i = 1, status = 0;

	if (i < argc && (hc_streq(argv[i], "-f") || hc_streq(argv[i], "--force"))) {
		force = true;
		i++;
	}
	if (i >= argc)
		return hc_cli_failf("usage: hotcell vm rm [-f] VM...");
	for (; i < argc; i++) {
		hc_error_clear(&err);
		if (hc_pvm_remove(argv[i], force, &err) < 0)
			status = hc_cli_fail(&err);
	}
	return status;
}

/* ---- snapshot, restore, fork (docs/snapshots.md) ---- */

static int vm_snapshot(int argc, char **argv)
{
	struct hc_error err = {0};
	bool leave = false;
	int i = 1;

	if (i < argc && hc_streq(argv[i], "--leave-paused")) {
		leave = true;
		i++;
	}
	if (argc - i != 2)
		return hc_cli_failf("usage: hotcell vm snapshot [--leave-paused] VM DIR");
	return hc_pvm_snapshot(argv[i], argv[i + 1], leave, &err) < 0 ? hc_cli_fail(&err) : 0;
}

static int vm_restore(int argc, char **argv)
{
	struct hc_pvm_create_opts o = {0};
	struct hc_error err = {0};
	char id[HC_PVM_ID_LEN + 1];
	int i = 1;

	if (i + 1 < argc && hc_streq(argv[i], "--name")) {
		o.name = argv[i + 1];
		i += 2;
	} else if (i < argc && hc_startswith(argv[i], "--name=")) {
		o.name = argv[i] + strlen("--name=");
		i++;
	}
	if (argc - i != 1)
		return hc_cli_failf("usage: hotcell vm restore [--name NAME] DIR");
	o.restore_dir = argv[i];
	if (hc_pvm_create(NULL, &o, id, &err) < 0)
		return hc_cli_fail(&err);
	puts(id);
	return 0;
}

static int vm_fork(int argc, char **argv)
{
	struct hc_error err = {0};
	unsigned long n = 1;
	char *end;
	int i = 1;

	if (i + 1 < argc && (hc_streq(argv[i], "--count") || hc_streq(argv[i], "-n"))) {
		errno = 0;
		n = strtoul(argv[i + 1], &end, 10);
		if (errno || *end || !*argv[i + 1] || n < 1 || n > 64)
			return hc_cli_failf(
				"vm fork: --count must be a number from 1 to 64, not '%s'",
				argv[i + 1]);
		i += 2;
	}
	if (argc - i != 1)
		return hc_cli_failf("usage: hotcell vm fork [--count N] VM");
	char(*ids)[HC_PVM_ID_LEN + 1] = calloc(n, sizeof(*ids));
	if (!ids)
		return hc_cli_failf("vm fork: out of memory");
	if (hc_pvm_fork(argv[i], (unsigned)n, ids, &err) < 0) {
		free(ids);
		return hc_cli_fail(&err);
	}
	for (unsigned long k = 0; k < n; k++)
		puts(ids[k]);
	free(ids);
	return 0;
}

static int vm_migrate(int argc, char **argv)
{
	struct hc_pvm_migrate_opts o = {0};
	struct hc_pvm_migrate_result res = {0};
	struct hc_error err = {0};
	const char *vm = NULL, *token_file = NULL;
	_cleanup_free_ char *token = NULL;
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (hc_streq(argv[i], "--to") && i + 1 < argc)
			o.to = argv[++i];
		else if (hc_streq(argv[i], "--token-file") && i + 1 < argc)
			token_file = argv[++i];
		else if (hc_streq(argv[i], "--reseed"))
			o.reseed = true;
		else if (hc_streq(argv[i], "--json"))
			json = true;
		else if (argv[i][0] != '-' && !vm)
			vm = argv[i];
		else
			return hc_cli_failf(
				"usage: hotcell vm migrate VM --to URL [--token-file F] "
				"[--reseed] [--json]");
	}
	if (!vm || !o.to)
		return hc_cli_failf("usage: hotcell vm migrate VM --to URL [--token-file F] "
				    "[--reseed] [--json]");
	if (token_file) {
		if (hc_cli_read_token("--token-file", token_file, &token))
			return HC_EXIT_INTERNAL;
	} else if (getenv("HOTCELL_MIGRATE_TOKEN") && *getenv("HOTCELL_MIGRATE_TOKEN")) {
		token = strdup(getenv("HOTCELL_MIGRATE_TOKEN"));
	}
	if (!token)
		return hc_cli_failf("vm migrate: the destination's token: give --token-file F or "
				    "set HOTCELL_MIGRATE_TOKEN");
	o.token = token;
	if (hc_pvm_migrate(vm, &o, &res, &err) < 0)
		return hc_cli_fail(&err);
	if (json)
		printf("{\"id\": \"%s\", \"downtime_ms\": %.1f, \"total_ms\": %.1f, "
		       "\"bytes_sent\": %llu, \"blob_bytes_skipped\": %llu}\n",
		       res.id, res.downtime_ms, res.total_ms, (unsigned long long)res.bytes_sent,
		       (unsigned long long)res.blob_bytes_skipped);
	else
		puts(res.id);
	return 0;
}

static int vm_prune(int argc, char **argv)
{
	struct hc_error err = {0};
	int n;

	if (argc != 1)
		return hc_cli_failf("usage: hotcell vm prune");
	n = hc_pvm_prune(&err);
	if (n < 0)
		return hc_cli_fail(&err);
	printf("removed %d VM%s\n", n, n == 1 ? "" : "s");
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} vm_commands[] = {
	{"create", vm_create},
	{"exec", vm_exec},
	{"cp", vm_cp},
	{"ls", vm_ls},
	{"list", vm_ls},
	{"inspect", vm_inspect},
	{"logs", vm_logs},
	{"pause", vm_pause},
	{"resume", vm_resume},
	{"stop", vm_stop},
	{"rm", vm_rm},
	{"prune", vm_prune},
	{"snapshot", vm_snapshot},
	{"restore", vm_restore},
	{"fork", vm_fork},
	{"migrate", vm_migrate},
};

int hc_cli_vm(int argc, char **argv)
{
	if (argc < 2) {
		fputs(vm_usage, stderr);
		return HC_EXIT_INTERNAL;
	}
	if (hc_streq(argv[1], "--help") || hc_streq(argv[1], "-h") || hc_streq(argv[1], "help")) {
		fputs(vm_usage, stdout);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < HC_ARRAY_SIZE(vm_commands); i++)
		if (hc_streq(argv[1], vm_commands[i].name))
			return vm_commands[i].fn(argc - 1, argv + 1);
	return hc_cli_failf("vm: unknown command '%s' (see hotcell vm --help)", argv[1]);
}
