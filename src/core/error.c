/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "core/error.h"

/* Formats into a scratch buffer first: an argument may be err->message itself (a layer that
 * rewords the message it got), and formatting a buffer into itself is undefined (C11
 * 7.21.6.6) — in practice the output overwrites the input it is still reading. */
static void vset(struct hc_error *err, int code, const char *fmt, va_list ap)
{
	char tmp[sizeof(err->message)];

	err->code = code < 0 ? code : -EIO;
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	memcpy(err->message, tmp, sizeof(tmp));
}

int hc_error_set(struct hc_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vset(err, code, fmt, ap);
	va_end(ap);
	return err->code;
}

int hc_error_setk(struct hc_error *err, int code, const char *kind, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vset(err, code, fmt, ap);
	va_end(ap);
	snprintf(err->kind, sizeof(err->kind), "%s", kind);
	return err->code;
}

int hc_error_errno(struct hc_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (!err)
		return code;
	va_start(ap, fmt);
	vset(err, code, fmt, ap);
	va_end(ap);
	n = strlen(err->message);
	if (n < sizeof(err->message))
		snprintf(err->message + n, sizeof(err->message) - n, ": %s", strerror(-err->code));
	return err->code;
}

int hc_error_prefix(struct hc_error *err, const char *fmt, ...)
{
	char prefix[256], old[sizeof(err->message)];
	va_list ap;

	if (!err)
		return -EIO;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->message, sizeof(old));
	snprintf(err->message, sizeof(err->message), "%s: %s", prefix, old);
	if (err->code >= 0)
		err->code = -EIO;
	return err->code;
}

void hc_error_kind(struct hc_error *err, const char *kind)
{
	if (err && !err->kind[0])
		snprintf(err->kind, sizeof(err->kind), "%s", kind);
}

void hc_error_clear(struct hc_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}
