/* SPDX-License-Identifier: MIT */
/*
 * A bounded dynamic byte buffer. Everything fed from outside (registry, guest, VMM API, HTTP
 * client) goes through one of these with a hard cap: hitting it is -E2BIG, never a silent
 * truncation. The data is always NUL-terminated (not counted in len).
 */
#pragma once

#include "core/util.h"

struct hc_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* 0: unbounded (only for data we produce ourselves) */
};

#define HC_BUF_INIT(maxbytes)                                                                      \
	{                                                                                          \
		.data = NULL, .len = 0, .cap = 0, .max = (maxbytes)                                \
	}

int hc_buf_reserve(struct hc_buf *b, size_t extra) _must_check_;
int hc_buf_append(struct hc_buf *b, const void *p, size_t n) _must_check_;
int hc_buf_puts(struct hc_buf *b, const char *s) _must_check_;
int hc_buf_printf(struct hc_buf *b, const char *fmt, ...) _printf_(2, 3) _must_check_;
/* Drops the first n bytes. */
void hc_buf_consume(struct hc_buf *b, size_t n);
void hc_buf_reset(struct hc_buf *b);
void hc_buf_free(struct hc_buf *b);
/* Hands the data to the caller (NUL-terminated, never NULL on success). */
char *hc_buf_steal(struct hc_buf *b, size_t *ret_len);
