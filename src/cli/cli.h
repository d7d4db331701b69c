/* SPDX-License-Identifier: MIT */
/* The `hotcell` command: one function per subcommand, dispatched from main.c. Only src/cli and
 * src/server talk to the user. */
#pragma once

#include "core/error.h"

/* Exit status for hotcell's own errors (podman's convention). */
#define HC_EXIT_INTERNAL 125

int hc_cli_pull(int argc, char **argv);
int hc_cli_load(int argc, char **argv);
int hc_cli_images(int argc, char **argv);
int hc_cli_rmi(int argc, char **argv);
int hc_cli_prune(int argc, char **argv);
int hc_cli_check(int argc, char **argv);
int hc_cli_run(int argc, char **argv);
int hc_cli_doctor(int argc, char **argv);
int hc_cli_vm(int argc, char **argv);
int hc_cli_serve(int argc, char **argv);
int hc_cli_invoke(int argc, char **argv);

/* Prints "hotcell: <message>" on stderr (one line) and returns HC_EXIT_INTERNAL. */
int hc_cli_fail(const struct hc_error *err);
/* A token file (serve's --auth-token-file, vm migrate's --token-file): one line, surrounding
 * whitespace not part of the token; a bad file fails with flag and path named. */
int hc_cli_read_token(const char *flag, const char *path, char **ret);
/* A hc_runopts_getopt failure of command cmd ("run", "vm exec"): one line, naming the flag
 * (podman's flags hotcell lacks land here too), with a pointer to cmd's --help. */
int hc_cli_fail_options(const struct hc_error *err, const char *cmd);
/* The same, formatted. */
int hc_cli_failf(const char *fmt, ...) _printf_(1, 2);
/* Installs the SIGINT/SIGTERM/SIGHUP handlers (signals.c) and returns the read end of their
 * self-pipe, a cancel fd for the library (readable once a signal came), or -errno. */
int hc_cli_cancel_pipe(void);
/* The exit status after a cancel: 128 + the first signal (130 for SIGINT, 143 for SIGTERM). */
int hc_cli_cancel_status(void);
/* Opens the default store, printing the error on failure. NULL on failure. */
struct hc_store *hc_cli_store_open(void);

/* The user's terminal for -t (tty.c). */
struct hc_cli_tty {
	int fd;	      /* the terminal (stdin) whose size the guest's pty follows, or -1 */
	int winch_fd; /* readable after a SIGWINCH, or -1 */
	bool raw;     /* in raw mode until hc_cli_tty_end */
};
/* When stdin is a terminal: SIGWINCH to a pipe and restoring handlers for the signals that
 * would end hotcell. Not a terminal: nothing (with interactive, podman's warning). */
int hc_cli_tty_begin(bool interactive, struct hc_cli_tty *t);
/* Raw mode (once the command runs); a no-op without a terminal. */
int hc_cli_tty_raw(struct hc_cli_tty *t);
/* Puts the terminal back; idempotent. */
void hc_cli_tty_end(struct hc_cli_tty *t);
/* The same from a signal handler (async-signal-safe). */
void hc_cli_tty_restore_signal_safe(void);
