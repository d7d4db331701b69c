/* SPDX-License-Identifier: MIT */
/*
 * SIGINT/SIGTERM/SIGHUP for every command that hands the library a cancel fd (pull, run,
 * vm exec): each signal writes one byte to a self-pipe (async-signal-safe); the library polls
 * its read end and returns -ECANCELED; the command then exits 128 + the signal, as a shell
 * would report it.
 */
#include <fcntl.h>
#include <signal.h>

#include "cli/cli.h"

static int cancel_pipe[2] = {-1, -1};
static volatile sig_atomic_t first_signal;

static void on_cancel_signal(int sig)
{
	int saved = errno;
	char b = 1;

	if (!first_signal)
		first_signal = sig;
	if (write(cancel_pipe[1], &b, 1) < 0) {
		/* full: the cancel is under way already */
	}
	errno = saved;
}

int hc_cli_cancel_pipe(void)
{
	struct sigaction sa = {.sa_handler = on_cancel_signal};

	if (cancel_pipe[0] >= 0)
		return cancel_pipe[0];
	if (pipe2(cancel_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0)
		return -errno;
	return cancel_pipe[0];
}

int hc_cli_cancel_status(void)
{
	return 128 + (first_signal ? first_signal : SIGINT);
}
