/* SPDX-License-Identifier: MIT */
/*
 * Pseudo-terminals, both ends of hotcell: the guest agent's `-t` exec and the OCI runtime's
 * --console-socket allocate the command's pty here; the CLI puts the user's terminal in raw
 * mode and restores it here. Plain libc, so it links into the static hotcell-init too.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <termios.h>

#include "core/util.h"

/* Opens a new pty pair: *ret_master (close-on-exec, non-blocking when nonblock) and
 * *ret_slave (close-on-exec, O_NOCTTY). rows/cols 0 leave the kernel's default size. */
int hc_pty_open(uint16_t rows, uint16_t cols, bool nonblock, int *ret_master,
		int *ret_slave) _must_check_;
/* In a freshly forked child: a new session whose controlling terminal is slave, with slave
 * on fds 0, 1 and 2 (closed at slave's own number when above 2). Async-signal-safe. */
int hc_pty_child_setup(int slave) _must_check_;
/* Sets the size of the pty behind fd (either end). */
int hc_pty_set_size(int fd, uint16_t rows, uint16_t cols) _must_check_;
/* The size of the terminal on fd; -ENOTTY when it is none. */
int hc_pty_get_size(int fd, uint16_t *ret_rows, uint16_t *ret_cols) _must_check_;

/* The user's terminal in raw mode (as `podman run -it`, cfmakeraw): saved keeps what to
 * restore. -ENOTTY when fd is not a terminal. */
int hc_tty_raw(int fd, struct termios *saved) _must_check_;
/* Puts saved back (TCSANOW, so it works from a signal handler: async-signal-safe). */
int hc_tty_restore(int fd, const struct termios *saved);
