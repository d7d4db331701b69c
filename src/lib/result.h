/* SPDX-License-Identifier: MIT */
/* Helpers of the run result (result.c), shared with the CLI and the tests. */
#pragma once

#include "core/util.h"

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
bool hc_lib_utf8_valid(const char *s, size_t n);
/* RFC 4648 §4 base64 with padding; malloc'd, NUL-terminated; NULL on allocation failure. */
char *hc_lib_base64(const void *data, size_t n);
/* "SIGKILL", "SIGRTMIN+3", "SIG99": always fills buf and returns it. */
const char *hc_lib_signal_name(int sig, char *buf, size_t n);
