/* SPDX-License-Identifier: MIT */
/*
 * One logging idiom. Library code never prints: it logs through hc_log(), and the front end
 * (src/cli, src/server) installs the sink (hc_log_set_sink). HOTCELL_LOG=debug|info|warn|error
 * sets the level; the default is warn.
 */
#pragma once

#include "core/util.h"

enum hc_log_level { HC_LOG_DEBUG, HC_LOG_INFO, HC_LOG_WARN, HC_LOG_ERROR };

typedef void (*hc_log_sink_fn)(enum hc_log_level level, const char *msg, void *userdata);

void hc_log_set_sink(hc_log_sink_fn fn, void *userdata);
void hc_log_set_level(enum hc_log_level level);
bool hc_log_enabled(enum hc_log_level level);
void hc_log(enum hc_log_level level, const char *fmt, ...) _printf_(2, 3);

#define hc_debug(...) hc_log(HC_LOG_DEBUG, __VA_ARGS__)
#define hc_info(...) hc_log(HC_LOG_INFO, __VA_ARGS__)
#define hc_warn(...) hc_log(HC_LOG_WARN, __VA_ARGS__)
