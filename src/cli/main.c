/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdarg.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/path.h"
#include "hotcell.h"

static void log_to_stderr(int level, const char *msg, void *userdata)
{
	static const char *const names[] = {"debug", "info", "warning", "error"};

	fprintf(stderr, "hotcell: %s: %s\n", names[level & 3], msg);
}

int hc_cli_fail(const struct hc_error *err)
{
	fprintf(stderr, "hotcell: %s\n", err->message[0] ? err->message : hc_strerror(err->code));
	return HC_EXIT_INTERNAL;
}

int hc_cli_fail_options(const struct hc_error *err, const char *cmd)
{
	if (hc_streq(err->kind, HC_EK_USAGE) && strstr(err->message, "option '"))
		return hc_cli_failf("%s (see hotcell %s --help)", err->message, cmd);
	return hc_cli_fail(err);
}

int hc_cli_failf(const char *fmt, ...)
{
	va_list ap;

	fputs("hotcell: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return HC_EXIT_INTERNAL;
}

struct hc_store *hc_cli_store_open(void)
{
	struct hc_error err = {0};
	struct hc_store *s = NULL;

	if (hc_store_open(NULL, &s, &err) < 0) {
		hc_cli_fail(&err);
		return NULL;
	}
	return s;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
} commands[] = {
	{"pull", hc_cli_pull, "pull [--platform OS/ARCH] [--insecure] [--verify] REF"},
	{"load", hc_cli_load, "load [--name REF] [-i] PATH | load [--name REF] < ARCHIVE"},
	{"images", hc_cli_images, "images [--json]"},
	{"rmi", hc_cli_rmi, "rmi [-f] REF..."},
	{"prune", hc_cli_prune, "prune"},
	{"check", hc_cli_check, "check [--json]"},
	{"run", hc_cli_run, "run [OPTIONS] IMAGE [--] [CMD [ARG...]]"},
	{"doctor", hc_cli_doctor, "doctor"},
	{"vm", hc_cli_vm, "vm create|exec|cp|ls|inspect|logs|pause|resume|stop|rm|prune ..."},
	{"serve", hc_cli_serve, "serve [--listen HOST:PORT|unix:PATH] [--auth-token-file F] ..."},
	{"invoke", hc_cli_invoke, "invoke --registry FILE NAME [INPUT-JSON | -]"},
	{"version", NULL, "version"},
};

/* podman's names for the persistent VMs' commands: `hotcell ps` is `hotcell vm ls`, ... */
static const struct {
	const char *alias, *vm_command;
} vm_aliases[] = {
	{"ps", "ls"},	  {"exec", "exec"}, {"cp", "cp"},	{"logs", "logs"},
	{"stop", "stop"}, {"rm", "rm"},	    {"pause", "pause"}, {"unpause", "resume"},
};

static int usage(FILE *f)
{
	fprintf(f, "usage: hotcell COMMAND ...\n\ncommands:\n");
	for (size_t i = 0; i < HC_ARRAY_SIZE(commands); i++)
		fprintf(f, "  hotcell %s\n", commands[i].usage);
	fprintf(f, "\nas podman names them:");
	for (size_t i = 0; i < HC_ARRAY_SIZE(vm_aliases); i++)
		fprintf(f, "%s %s (vm %s)", i ? "," : "", vm_aliases[i].alias,
			vm_aliases[i].vm_command);
	fprintf(f, "\n\nhotcell run --help lists the run options.\n");
	return f == stderr ? HC_EXIT_INTERNAL : 0;
}

/* The commands that start VMs (directly, or through a supervisor): every process started for
 * a VM inherits our environment, and with HOTCELL_HOME in it each is findable as this state
 * dir's (tests/soak, whoever cleans up after a SIGKILL), also when the default was used. */
static void export_home(const char *cmd)
{
	struct hc_error err = {0};
	char home[HC_PATH_MAX];

	if (getenv("HOTCELL_HOME") || !(hc_streq(cmd, "run") || hc_streq(cmd, "vm") ||
					hc_streq(cmd, "serve") || hc_streq(cmd, "invoke")))
		return;
	if (hc_path_state_dir(home, sizeof(home), &err) == 0)
		setenv("HOTCELL_HOME", home, 0);
}

int main(int argc, char **argv)
{
	/* fds 0-2 open, whatever the caller closed: a pipe or socket made later never lands on
	 * them (a cancel pipe on fd 0 would be mistaken for "no cancel fd", a QEMU log on fd 2
	 * would get our messages). */
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
	hc_set_log_handler(log_to_stderr, NULL);
	if (argc < 2)
		return usage(stderr);
	if (hc_streq(argv[1], "--help") || hc_streq(argv[1], "-h") || hc_streq(argv[1], "help"))
		return usage(stdout);
	if (hc_streq(argv[1], "--version") || hc_streq(argv[1], "version")) {
		printf("hotcell %s\n", hc_version());
		return 0;
	}
	for (size_t i = 0; i < HC_ARRAY_SIZE(vm_aliases); i++)
		if (hc_streq(argv[1], vm_aliases[i].alias)) {
			/* argv[1] becomes the vm subcommand: `hotcell vm CMD ARGS...`. */
			argv[1] = (char *)vm_aliases[i].vm_command;
			export_home("vm");
			return hc_cli_vm(argc, argv);
		}
	for (size_t i = 0; i < HC_ARRAY_SIZE(commands); i++)
		if (commands[i].fn && hc_streq(argv[1], commands[i].name)) {
			export_home(argv[1]);
			return commands[i].fn(argc - 1, argv + 1);
		}
	hc_cli_failf("unknown command '%s' (see hotcell --help)", argv[1]);
	return HC_EXIT_INTERNAL;
}
