/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "core/buf.h"

int hc_buf_reserve(struct hc_buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	if (__builtin_add_overflow(b->len, extra, &need) || __builtin_add_overflow(need, 1, &need))
		return -E2BIG;
	if (b->max && need - 1 > b->max)
		return -E2BIG;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need) {
		if (__builtin_mul_overflow(ncap, 2, &ncap))
			return -E2BIG;
	}
	if (b->max && ncap > b->max + 1)
		ncap = b->max + 1;
	p = realloc(b->data, ncap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int hc_buf_append(struct hc_buf *b, const void *p, size_t n)
{
	int r = hc_buf_reserve(b, n);

	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

int hc_buf_puts(struct hc_buf *b, const char *s)
{
	return hc_buf_append(b, s, strlen(s));
}

int hc_buf_printf(struct hc_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	r = hc_buf_reserve(b, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void hc_buf_consume(struct hc_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = 0;
}

void hc_buf_reset(struct hc_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = 0;
}

void hc_buf_free(struct hc_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *hc_buf_steal(struct hc_buf *b, size_t *ret_len)
{
	char *p;

	if (!b->data && hc_buf_reserve(b, 0) < 0)
		return NULL;
	p = b->data;
	if (ret_len)
		*ret_len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
