/* SPDX-License-Identifier: MIT */
/*
 * `hotcell run [OPTIONS] IMAGE [--] [CMD [ARG...]]` (docs/cli.md): like `podman run --rm`.
 * Options end at IMAGE: everything after it is the command, even words that look like options.
 *
 * Signals: before the command runs (pull, unpack, boot), SIGINT/SIGTERM/SIGHUP write a byte to
 * the cancel pipe (cli/signals.c): the run is cancelled, nothing is left behind, hotcell exits
 * 128+signal. Once it runs, they and SIGQUIT, SIGUSR1/2, SIGALRM, SIGVTALRM, SIGPROF are
 * forwarded to the command (signal_fd, podman's --sig-proxy) and hotcell exits with the
 * command's own status; after a forwarded SIGINT/SIGTERM/SIGHUP the command has
 * --stop-timeout (10 s) to end, and a second one within 2 s ends the VM (exit 137).
 *
 * -d/--detach: sugar over `vm create` + `vm exec --detach` (podman's run -d): the VM stays,
 * its id is printed.
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <fcntl.h>

#include "cli/cli.h"
#include "core/error.h"
#include "hotcell.h"
#include "lib/runopts.h"

static const char run_usage_head[] =
	"usage: hotcell run [OPTIONS] IMAGE [--] [CMD [ARG...]]\n"
	"       hotcell run [OPTIONS] --rootfs DIR [--] CMD [ARG...]\n"
	"\n"
	"Runs CMD from IMAGE in a fresh micro-VM, like `podman run --rm`, and exits with its "
	"status\n"
	"(128+N for a signal, 124 for a timeout, 125 for hotcell's own errors, 126/127 when the\n"
	"command cannot be started).\n"
	"\n";
static const char run_usage_tail[] =
	"  --json                   print one JSON result object; capture stdout/stderr "
	"into it\n"
	"  --help                   this text (-h is --hostname, as in podman)\n";

static void run_usage(FILE *f)
{
	char *opts = hc_runopts_help(HC_RUNOPT_RUN);

	fputs(run_usage_head, f);
	fputs(opts ? opts : "", f);
	fputs(run_usage_tail, f);
	free(opts);
}

enum { OPT_JSON = 1, OPT_HELP };

static const struct hc_runopt_extra run_extra[] = {
	{"json", no_argument, 0, OPT_JSON},
	{"help", no_argument, 0, OPT_HELP},
};

struct run_cli {
	bool json, help;
};

static int run_on_extra(int id, const char *arg, void *userdata, struct hc_error *err)
{
	struct run_cli *rc = userdata;

	if (id == OPT_JSON)
		rc->json = true;
	else
		rc->help = true;
	return 0;
}

/* ---- signals: a self-pipe (async-signal-safe), read by hc_run through cancel_fd ---- */

/* podman's --sig-proxy for the signals that are not a cancel: each is one byte (its number)
 * for hc_run, which forwards it to the command once it runs (and cancels before). */
static int fwd_pipe[2] = {-1, -1};
static const int forwarded[] = {SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF};

static void on_forward(int sig)
{
	int saved = errno;
	char b = (char)sig;

	if (write(fwd_pipe[1], &b, 1) < 0) {
		/* full: 64 K signals pending; this one is dropped */
	}
	errno = saved;
}

static int signals_install(void)
{
	/* SIGINT, SIGTERM, SIGHUP: the cancel pipe every command shares (cli/signals.c). */
	if (hc_cli_cancel_pipe() < 0 || pipe2(fwd_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	struct sigaction fa = {.sa_handler = on_forward, .sa_flags = SA_RESTART};
	sigemptyset(&fa.sa_mask);
	for (size_t i = 0; i < HC_ARRAY_SIZE(forwarded); i++)
		if (sigaction(forwarded[i], &fa, NULL) < 0)
			return -errno;
	/* A reader that goes away must not kill hotcell before it has torn the VM down: writes
	 * then fail with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* The command runs: SIGINT/SIGTERM/SIGHUP are the command's from now on (forwarded, as
 * podman's --sig-proxy), the terminal goes raw. */
static void run_started(void *userdata, unsigned pid)
{
	static const int stops[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction fa = {.sa_handler = on_forward, .sa_flags = SA_RESTART};
	struct hc_cli_tty *t = userdata;
	int r = hc_cli_tty_raw(t);

	if (r < 0)
		fprintf(stderr, "hotcell: warning: cannot put the terminal in raw mode: %s\n",
			strerror(-r));
	sigemptyset(&fa.sa_mask);
	for (size_t i = 0; i < HC_ARRAY_SIZE(stops); i++)
		if (sigaction(stops[i], &fa, NULL) < 0)
			fprintf(stderr, "hotcell: warning: signal %d not forwarded: %s\n", stops[i],
				strerror(errno));
}

/* run -d: the VM stays (vm create), the command runs detached in it (vm exec --detach, the
 * image's entrypoint and command when none is given); prints the VM's id as podman prints
 * the container's. */
static int run_detached(struct hc_runopts *ro, struct hc_store *store, bool json)
{
	struct hc_run_opts *o = &ro->o;
	struct hc_pvm_create_opts co = {.run = o, .name = ro->name};
	struct hc_pvm_exec_opts eo;
	struct hc_pvm_exec_result er;
	struct hc_error err = {0};
	char id[HC_PVM_ID_LEN + 1];

	if (o->interactive || o->tty || json || o->timeout_s > 0 || o->entrypoint)
		return hc_cli_failf("run: -d takes none of -i, -t, --json, --timeout, "
				    "--entrypoint (a detached command's output goes to the VM's "
				    "log: hotcell vm logs)");
	if (hc_pvm_create(store, &co, id, &err) < 0)
		return hc_cli_fail(&err);
	hc_pvm_exec_opts_init(&eo);
	eo.cmd = o->cmd;
	eo.n_cmd = o->n_cmd;
	eo.image_command = o->n_cmd == 0;
	eo.detach = true;
	if (hc_pvm_exec(id, &eo, &er, &err) < 0) {
		struct hc_error ignore = {0};

		hc_cli_fail(&err);
		if (hc_pvm_remove(id, true, &ignore) < 0)
			hc_cli_fail(&ignore);
		return hc_streq(err.kind, "exec") && er.exit_code > 0 ? er.exit_code
								      : HC_EXIT_INTERNAL;
	}
	printf("%s\n", id);
	return 0;
}

static void print_json(char *s)
{
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	} else {
		fputs("{\"error\":{\"kind\":\"internal\",\"message\":\"out of memory\"}}\n",
		      stdout);
	}
	fflush(stdout);
}

static int fail_run(bool json, const struct hc_error *err)
{
	if (json)
		print_json(hc_error_to_json(err));
	return hc_cli_fail(err);
}

int hc_cli_run(int argc, char **argv)
{
	struct hc_runopts ro;
	struct hc_run_opts *o = &ro.o;
	struct hc_run_result res = {0};
	struct hc_error err = {0};
	struct hc_store *store = NULL;
	struct run_cli cli = {0};
	struct hc_cli_tty tty = {.fd = -1, .winch_fd = -1};
	bool json = false;
	int r, status = HC_EXIT_INTERNAL;

	hc_runopts_init(&ro);
	/* First of all: a signal from here on cancels the run, whatever phase it is in. */
	if (signals_install() < 0) {
		hc_cli_failf("cannot install signal handlers: %s", strerror(errno));
		goto out;
	}
	r = hc_runopts_getopt(&ro, HC_RUNOPT_RUN, argc, argv, run_extra, HC_ARRAY_SIZE(run_extra),
			      run_on_extra, &cli, &err);
	if (r < 0) {
		hc_cli_fail_options(&err, "run");
		goto out;
	}
	if (cli.help) {
		run_usage(stdout);
		status = 0;
		goto out;
	}
	json = cli.json;
	optind = r;

	if (!o->rootfs_dir) {
		if (optind >= argc) {
			hc_cli_failf("run: no IMAGE given (see hotcell run --help)");
			goto out;
		}
		o->image = argv[optind++];
	}
	if (optind < argc && hc_streq(argv[optind], "--"))
		optind++;
	o->cmd = (const char *const *)(argv + optind);
	o->n_cmd = (size_t)(argc - optind);
	if (o->interactive)
		o->stdin_fd = STDIN_FILENO;
	if (!json) {
		/* Like podman run: the command's output goes straight to ours, as it comes. */
		o->stdout_fd = STDOUT_FILENO;
		o->stderr_fd = STDERR_FILENO;
	}

	o->cancel_fd = hc_cli_cancel_pipe();
	o->signal_fd = fwd_pipe[0];
	/* podman has no command timeout: neither has `hotcell run` unless --timeout says. */
	if (o->timeout_s == 0)
		o->timeout_s = HC_TIMEOUT_NONE;
	if (o->tty) {
		if (json) {
			hc_cli_failf(
				"run: --tty and --json do not go together (a terminal's output "
				"is not JSON)");
			goto out;
		}
		r = hc_cli_tty_begin(o->interactive, &tty);
		if (r < 0) {
			hc_cli_failf("run: cannot set up the terminal: %s", strerror(-r));
			goto out;
		}
		o->tty_fd = tty.fd;
		o->winch_fd = tty.winch_fd;
	}
	/* Once the command runs: the stop signals are its own, and -t's terminal goes raw. */
	o->on_started = run_started;
	o->userdata = &tty;

	if (o->image) {
		r = hc_store_open(NULL, &store, &err);
		if (r < 0) {
			status = fail_run(json, &err);
			goto out;
		}
	}
	if (ro.detach) {
		status = run_detached(&ro, store, json);
		goto out;
	}

	/* The library never prints: the user hears here that the second wall is down. */
	if (o->no_jail)
		fprintf(stderr,
			"hotcell: warning: --no-jail: the VMM-side processes (QEMU, Cloud "
			"Hypervisor, the libkrun worker, virtiofsd, vhost-device-vsock) run "
			"unjailed, as root with the host's whole view\n");
	else if (geteuid() != 0)
		fprintf(stderr,
			"hotcell: warning: not jailed: hotcell is not running as root, so it "
			"cannot give its VMM processes namespaces, a uid or a root of their own\n");
	r = hc_run(store, o, &res, &err);
	/* Before any message: the terminal is the user's again. */
	hc_cli_tty_end(&tty);
	if (r == -ECANCELED) {
		int sig = hc_cli_cancel_status() - 128;

		hc_error_setk(&err, r, "cancelled", "interrupted by %s",
			      sig == SIGTERM  ? "SIGTERM"
			      : sig == SIGHUP ? "SIGHUP"
					      : "SIGINT");
		fail_run(json, &err);
		status = 128 + sig;
	} else if (r < 0 && hc_streq(err.kind, "exec") && res.exit_code > 0) {
		/* The guest could not start the command: a shell's 126/127, with the reason. */
		if (json)
			print_json(hc_run_result_to_json_error(&res, &err));
		hc_cli_fail(&err);
		status = res.exit_code;
	} else if (r < 0) {
		status = fail_run(json, &err);
	} else {
		if (json)
			print_json(hc_run_result_to_json(&res));
		else if (res.timed_out)
			fprintf(stderr, "hotcell: timed out after %g s\n", o->timeout_s);
		status = hc_run_result_status(&res);
	}

out:
	hc_cli_tty_end(&tty);
	hc_run_result_free(&res);
	hc_store_close(store);
	hc_runopts_free(&ro);
	return status;
}
