/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "core/log.h"

static hc_log_sink_fn sink;
static void *sink_data;
static int level = -1;

void hc_log_set_sink(hc_log_sink_fn fn, void *userdata)
{
	sink = fn;
	sink_data = userdata;
}

void hc_log_set_level(enum hc_log_level l)
{
	level = (int)l;
}

static int current_level(void)
{
	if (level < 0) {
		const char *e = getenv("HOTCELL_LOG");

		level = HC_LOG_WARN;
		if (e && (hc_streq(e, "debug") || hc_streq(e, "1")))
			level = HC_LOG_DEBUG;
		else if (hc_streq(e, "info"))
			level = HC_LOG_INFO;
		else if (hc_streq(e, "error"))
			level = HC_LOG_ERROR;
	}
	return level;
}

bool hc_log_enabled(enum hc_log_level l)
{
	return sink && (int)l >= current_level();
}

void hc_log(enum hc_log_level l, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int saved = errno;

	if (!hc_log_enabled(l))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sink(l, msg, sink_data);
	errno = saved;
}
