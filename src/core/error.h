/* SPDX-License-Identifier: MIT */
/*
 * One error idiom: functions return 0 (or a count / fd) on success and -errno on failure, and
 * put the detail in a caller-owned struct hc_error (declared in hotcell.h). The message is a
 * fixed-size buffer, so setting it never allocates: usable in PID 1 and in forked children.
 * Each layer may prefix context: "pull 'alpine': fetch manifest: 401 Unauthorized".
 */
#pragma once

#include "hotcell.h"
#include "core/util.h"

/* Error kinds, as printed in the JSON error object ({"error": {"kind": ...}}). */
#define HC_EK_USAGE "usage"
#define HC_EK_IMAGE "image"
#define HC_EK_REGISTRY "registry"
#define HC_EK_ROOTFS "rootfs"
#define HC_EK_BACKEND "backend"
#define HC_EK_VM "vm"
#define HC_EK_IO "io"
#define HC_EK_INTERNAL "internal"

/* Sets the error (code is a negative errno) and returns code, so "return hc_error_set(...)". */
int hc_error_set(struct hc_error *err, int code, const char *fmt, ...) _printf_(3, 4);
/* Same, with a kind (one of HC_EK_*). */
int hc_error_setk(struct hc_error *err, int code, const char *kind, const char *fmt, ...)
	_printf_(4, 5);
/* Same as hc_error_set, with ": strerror(-code)" appended. */
int hc_error_errno(struct hc_error *err, int code, const char *fmt, ...) _printf_(3, 4);
/* Prefixes "context: " to the message already there; returns err->code. */
int hc_error_prefix(struct hc_error *err, const char *fmt, ...) _printf_(2, 3);
/* Sets the kind if none was set yet. */
void hc_error_kind(struct hc_error *err, const char *kind);
void hc_error_clear(struct hc_error *err);
