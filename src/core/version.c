/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "core/log.h"
#include "hotcell.h"

HC_EXPORT const char *hc_version(void)
{
	return HC_VERSION;
}

HC_EXPORT const char *hc_strerror(int code)
{
	return strerror(code < 0 ? -code : code);
}

struct log_adapter {
	hc_log_fn fn;
	void *userdata;
};
static struct log_adapter adapter;

static void adapt(enum hc_log_level level, const char *msg, void *userdata)
{
	struct log_adapter *a = userdata;

	a->fn((int)level, msg, a->userdata);
}

HC_EXPORT void hc_set_log_handler(hc_log_fn fn, void *userdata)
{
	adapter.fn = fn;
	adapter.userdata = userdata;
	hc_log_set_sink(fn ? adapt : NULL, &adapter);
}
