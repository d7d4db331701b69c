/* SPDX-License-Identifier: MIT */
/*
 * hotcell-init's entry point. Three ways to run (docs/protocol.md, "Boot contract"):
 *   PID 1 in the initramfs      set up the guest from /proc/cmdline, serve, reboot the VM
 *   under libkrun's init        the same from HOTCELL_* variables, as a subreaper; exit
 *   --serve-fd N (tests)        no mounts, serve the protocol on fd N, exit on EOF
 * Setup failures print "hotcell-init: fatal: ..." on the console and end the VM at once.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>

#include "guest/guest.h"
#include "proto/boot.h"

bool guest_debug;

static void vlog(bool stamp, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	int n;

	n = snprintf(line, sizeof(line), "%s", HC_BOOT_CONSOLE_PREFIX);
	if (stamp) {
		clock_gettime(CLOCK_BOOTTIME, &ts);
		n += snprintf(line + n, sizeof(line) - (size_t)n, "[%ld.%03ld] ", (long)ts.tv_sec,
			      ts.tv_nsec / 1000000);
	}
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	/* One write per line, so lines from the kernel and from us do not interleave. */
	ssize_t _unused_ w = write(STDERR_FILENO, line, (size_t)n);
}

void guest_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(false, fmt, ap);
	va_end(ap);
}

void guest_log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(true, fmt, ap);
	va_end(ap);
}

static bool pid1;

/* Ends the VM: a reboot, which QEMU (-no-reboot), Firecracker (reboot=k) and Cloud Hypervisor
 * turn into the VMM's exit; the host ends the VM itself anyway (DESIGN.md §3). Under another
 * init (libkrun), the exit code is the worker's. */
_Noreturn static void end_vm(int code)
{
	if (pid1) {
		/* Nothing else may outlive us: kill(-1) spares only PID 1. */
		kill(-1, SIGKILL);
		(void)guest_reap(0, NULL);
		sync();
		reboot(RB_AUTOBOOT);
		guest_log("fatal: reboot: %m");
		for (;;)
			pause();
	}
	_exit(code);
}

_Noreturn static void fatal(const char *what)
{
	guest_log("fatal: %s", what);
	end_vm(HC_BOOT_EXIT_FAILURE);
}

static int usage(void)
{
	fprintf(stderr, "usage: hotcell-init                  (PID 1 in a hotcell VM)\n"
			"       hotcell-init --serve-fd N [--result-path PATH] [--etc DIR] "
			"[--log-dir DIR] [--debug]\n"
			"       hotcell-init --check-cmdline CMDLINE\n"
			"       hotcell-init --version\n");
	return 2;
}

/* Blocks SIGCHLD for the agent's signalfd and ignores SIGPIPE (a dead channel is an EPIPE). */
static void setup_signals(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int serve_fd_mode(int argc, char **argv)
{
	struct guest_agent_opts o = {.kind = GUEST_CHAN_FD,
				     .chan_fd = -1,
				     .listen_fd = -1,
				     .result_path = HC_BOOT_RESULT_PATH,
				     .etc = "/etc",
				     .log_dir = GUEST_LOG_DIR,
				     .test_mode = true};
	char *end;

	for (int i = 1; i < argc; i++) {
		if (hc_streq(argv[i], "--serve-fd") && i + 1 < argc) {
			long v = strtol(argv[++i], &end, 10);
			if (*end || v < 0 || v > INT_MAX)
				return usage();
			o.chan_fd = (int)v;
		} else if (hc_streq(argv[i], "--result-path") && i + 1 < argc) {
			o.result_path = argv[++i];
		} else if (hc_streq(argv[i], "--etc") && i + 1 < argc) {
			o.etc = argv[++i];
		} else if (hc_streq(argv[i], "--log-dir") && i + 1 < argc) {
			o.log_dir = argv[++i];
		} else if (hc_streq(argv[i], "--debug")) {
			guest_debug = true;
		} else {
			return usage();
		}
	}
	if (o.chan_fd < 0 || fcntl(o.chan_fd, F_SETFD, FD_CLOEXEC) < 0)
		return usage();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	setup_signals();
	return guest_agent_serve(&o) < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct guest_boot_cfg cfg;
	struct guest_agent_opts o = {
		.result_path = HC_BOOT_RESULT_PATH, .etc = "/etc", .log_dir = GUEST_LOG_DIR};
	char msg[512];
	int r;

	if (argc > 1 && hc_streq(argv[1], "--version")) {
		printf("%s (protocol %d)\n", GUEST_AGENT_VERSION, HC_PROTO_VERSION);
		return 0;
	}
	/* Parses a command line as at boot and prints what was understood (tests). */
	if (argc == 3 && hc_streq(argv[1], "--check-cmdline")) {
		r = guest_boot_parse_cmdline(argv[2], &cfg, msg, sizeof(msg));
		if (r < 0) {
			fprintf(stderr, "%s%s\n", HC_BOOT_CONSOLE_FATAL, msg);
			return 1;
		}
		printf("root=%s\nchannel=%s\nhostname=%s\ndebug=%d\n", cfg.root, cfg.channel,
		       cfg.hostname, cfg.debug);
		for (size_t i = 0; i < cfg.nvols; i++)
			printf("vol=%s|%s|%s\n", cfg.vols[i].tag, cfg.vols[i].path,
			       cfg.vols[i].ro ? "ro" : "rw");
		return 0;
	}
	if (argc > 1 && getpid() != 1)
		return serve_fd_mode(argc, argv);

	pid1 = getpid() == 1;
	if (!pid1)
		prctl(PR_SET_CHILD_SUBREAPER, 1);
	setup_signals();
	umask(022);

	r = guest_boot_setup(pid1, &cfg, msg, sizeof(msg));
	if (r < 0)
		fatal(msg);
	/* Not into a --rootfs-rw root: that is the user's own directory. */
	if (!cfg.root_rw && (r = guest_executor_install()) < 0)
		guest_log("cannot write the handler wrappers to %s: %s", GUEST_RUNTIME_DIR,
			  strerror(-r));
	r = guest_boot_channel(&cfg, &o, msg, sizeof(msg));
	if (r < 0)
		fatal(msg);
	guest_dbg("serving");
	r = guest_agent_serve(&o);
	if (r < 0)
		guest_log("channel failed: %s", strerror(-r));
	guest_dbg("ending the VM");
	end_vm(HC_BOOT_EXIT_OK);
}
