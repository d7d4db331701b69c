/* SPDX-License-Identifier: MIT */
/*
 * The user's terminal for `-t` (`run -it`, `vm exec -it`), as podman handles it: when stdin is
 * a terminal it goes to raw mode for the command's lifetime (keys, Ctrl-C and Ctrl-Z included,
 * travel as bytes to the guest's pty, whose line discipline makes the signals there), its size
 * goes to the guest at the start and on every SIGWINCH. Without a terminal on stdin the guest
 * still gets its pty (no raw mode, no size); `-it` then warns as podman 4 does.
 *
 * Restored on every exit path without atexit: explicitly by hc_cli_tty_end (every return of
 * the command), and from a handler for each signal that would end hotcell otherwise (SIGQUIT,
 * SIGUSR1, SIGSEGV, ...), which restores (tcsetattr is async-signal-safe) and re-raises.
 * SIGINT/SIGTERM/SIGHUP are the caller's (they cancel or are forwarded) and return normally.
 */
#include <fcntl.h>
#include <signal.h>
#include <termios.h>

#include "cli/cli.h"
#include "core/pty.h"

static struct termios saved;
static volatile sig_atomic_t raw_on;
static int raw_fd = -1;
static int winch_pipe[2] = {-1, -1};

static void restore_now(void)
{
	if (raw_on) {
		(void)hc_tty_restore(raw_fd, &saved);
		raw_on = 0;
	}
}

static void on_fatal(int sig)
{
	restore_now();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_winch(int sig)
{
	int saved_errno = errno;
	char b = (char)sig;

	if (write(winch_pipe[1], &b, 1) < 0) {
		/* full: a resize is pending already */
	}
	errno = saved_errno;
}

static const int fatal_signals[] = {SIGQUIT, SIGUSR1, SIGUSR2,	 SIGALRM, SIGSEGV, SIGBUS,
				    SIGFPE,  SIGILL,  SIGABRT,	 SIGTRAP, SIGXCPU, SIGXFSZ,
				    SIGSYS,  SIGPWR,  SIGVTALRM, SIGPROF};

int hc_cli_tty_begin(bool interactive, struct hc_cli_tty *t)
{
	struct sigaction sa = {0};
	*t = (struct hc_cli_tty){.fd = -1, .winch_fd = -1};
	if (!isatty(STDIN_FILENO)) {
		if (interactive)
			fprintf(stderr,
				"hotcell: warning: The input device is not a TTY. The --tty "
				"and --interactive flags might not work properly\n");
		return 0;
	}
	if (pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_winch;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGWINCH, &sa, NULL) < 0)
		return -errno;
	/* Handlers before raw mode: no window in which a signal leaves the terminal raw. The
	 * caller may replace some of them (signal forwarding): its handlers restore too. */
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_RESETHAND;
	for (size_t i = 0; i < HC_ARRAY_SIZE(fatal_signals); i++) {
		struct sigaction old;

		if (sigaction(fatal_signals[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
			sigaction(fatal_signals[i], &sa, NULL);
	}
	raw_fd = STDIN_FILENO;
	t->fd = STDIN_FILENO;
	t->winch_fd = winch_pipe[0];
	return 0;
}

int hc_cli_tty_raw(struct hc_cli_tty *t)
{
	int r;

	if (t->fd < 0 || t->raw)
		return 0;
	r = hc_tty_raw(t->fd, &saved);
	if (r < 0)
		return r;
	raw_on = 1;
	t->raw = true;
	return 0;
}

void hc_cli_tty_restore_signal_safe(void)
{
	restore_now();
}

void hc_cli_tty_end(struct hc_cli_tty *t)
{
	restore_now();
	t->raw = false;
}
