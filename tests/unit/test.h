/* SPDX-License-Identifier: MIT */
/*
 * Tiny unit-test harness. Each test binary prints one line per case, which
 * tests/run-tests.sh counts:  "PASS: name", "FAIL: name: why", "SKIP: name: reason".
 *
 *   TEST(parse_basic) { ASSERT_EQ_INT(f(1), 2); }
 *   int main(void) { RUN(parse_basic); return test_summary(); }
 */
#pragma once

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotcell.h"

static int test_failed_count;
static int test_cur_failed;
static const char *test_skip_reason;

#define TEST(name) static void name(void)

#define RUN(name)                                                                            \
	do {                                                                                 \
		test_cur_failed = 0;                                                         \
		test_skip_reason = NULL;                                                     \
		name();                                                                      \
		if (test_skip_reason)                                                        \
			printf("SKIP: %s: %s\n", #name, test_skip_reason);                   \
		else if (test_cur_failed)                                                    \
			test_failed_count++;                                                 \
		else                                                                         \
			printf("PASS: %s\n", #name);                                         \
		fflush(stdout);                                                              \
	} while (0)

#define SKIP(reason)                                                                         \
	do {                                                                                 \
		test_skip_reason = (reason);                                                 \
		return;                                                                      \
	} while (0)

#define FAILF(fmt, ...)                                                                      \
	do {                                                                                 \
		printf("FAIL: %s: %s:%d: " fmt "\n", __func__, __FILE__, __LINE__,           \
		       __VA_ARGS__);                                                         \
		test_cur_failed = 1;                                                         \
		return;                                                                      \
	} while (0)

#define ASSERT_TRUE(c)                                                                       \
	do {                                                                                 \
		if (!(c))                                                                    \
			FAILF("%s is false", #c);                                            \
	} while (0)

#define ASSERT_EQ_INT(a, b)                                                                  \
	do {                                                                                 \
		long long _a = (long long)(a), _b = (long long)(b);                          \
		if (_a != _b)                                                                \
			FAILF("%s == %s: %lld != %lld", #a, #b, _a, _b);                     \
	} while (0)

#define ASSERT_EQ_STR(a, b)                                                                  \
	do {                                                                                 \
		const char *_a = (a), *_b = (b);                                             \
		if (!_a || !_b || strcmp(_a, _b) != 0)                                       \
			FAILF("%s == %s: \"%s\" != \"%s\"", #a, #b, _a ? _a : "(null)",      \
			      _b ? _b : "(null)");                                           \
	} while (0)

/* a < 0 (a -errno) */
#define ASSERT_ERR(a)                                                                        \
	do {                                                                                 \
		long long _a = (long long)(a);                                               \
		if (_a >= 0)                                                                 \
			FAILF("%s should fail, returned %lld", #a, _a);                      \
	} while (0)

#define ASSERT_OK(a, errp)                                                                   \
	do {                                                                                 \
		long long _a = (long long)(a);                                               \
		const struct hc_error *_e = (errp);                                          \
		if (_a < 0)                                                                  \
			FAILF("%s failed: %lld (%s)", #a, _a, _e ? _e->message : "");        \
	} while (0)

static inline int test_summary(void)
{
	return test_failed_count ? 1 : 0;
}
