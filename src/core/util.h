/* SPDX-License-Identifier: MIT */
/* Small helpers used everywhere: cleanup attributes, ownership hand-off, annotations. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define _must_check_ __attribute__((warn_unused_result))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))
#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void hc_freep(void *p)
{
	free(*(void **)p);
}

static inline void hc_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
	*fd = -1;
}

static inline void hc_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
	*f = NULL;
}

#define _cleanup_free_ _cleanup_(hc_freep)
#define _cleanup_close_ _cleanup_(hc_closep)
#define _cleanup_fclose_ _cleanup_(hc_fclosep)

/* Hands ownership of *pp to the caller and leaves NULL behind, so the cleanup is a no-op. */
static inline void *hc_steal_ptr(void *pp)
{
	void **p = pp;
	void *v = *p;
	*p = NULL;
	return v;
}
#define steal_ptr(pp) hc_steal_ptr(pp)

static inline int hc_steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

/* Overflow-checked array size for allocations. */
static inline bool hc_mul_overflows(size_t a, size_t b, size_t *ret)
{
	return __builtin_mul_overflow(a, b, ret);
}

static inline bool hc_streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static inline bool hc_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}
