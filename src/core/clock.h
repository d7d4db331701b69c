/* SPDX-License-Identifier: MIT */
#pragma once

#include <time.h>

/* Monotonic time in milliseconds, with sub-millisecond precision. */
static inline double hc_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Milliseconds left until deadline (a hc_clock_ms() value), clamped to [0, INT_MAX]; -1 when
 * deadline is negative (no deadline), for poll(). */
static inline int hc_clock_left_ms(double deadline)
{
	double left;

	if (deadline < 0)
		return -1;
	left = deadline - hc_clock_ms();
	if (left <= 0)
		return 0;
	if (left > 2147483647.0)
		return 2147483647;
	return (int)left + 1;
}
