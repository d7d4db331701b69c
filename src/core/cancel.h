/* SPDX-License-Identifier: MIT */
/*
 * Cancellation by fd: a caller hands down an fd that becomes readable when the work must stop
 * (hc_run_opts.cancel_fd: a signal handler writes to a pipe). Long loops (pull, unpack, the ext4
 * build) check it and return -ECANCELED, leaving nothing behind. It is only polled, never read:
 * the bytes stay for its owner (hc_run counts them). fd < 0 means "not cancellable".
 */
#pragma once

#include "core/error.h"

/* True when fd >= 0 and reading it would not block (data, EOF or an error). */
bool hc_fd_readable(int fd);
/* -ECANCELED with err set ("cancelled") when cancel_fd is readable, else 0. */
int hc_cancel_check(int cancel_fd, struct hc_error *err) _must_check_;
