/* SPDX-License-Identifier: MIT */
/*
 * The executors' registry (docs/executors.md): a JSON file naming functions,
 *
 *   { "NAME": { "image": REF, "runtime": "python"|"node"|"command", "handler": ...,
 *               "timeout_secs": S, "memory_mib": M, "env": {"K": "V"}, "network": MODE,
 *               "max_concurrency": N }, ... }
 *
 * parsed with jansson and validated as a whole: every field of every entry (the run options
 * through the one run-options table, as a call's params), so a registry either loads or is
 * refused with one line naming the entry and the field. A loaded registry is immutable and
 * reference-counted: `hotcell serve` swaps in a new one on SIGHUP while each call keeps the
 * version it started with.
 */
#pragma once

#include <jansson.h>
#include <stdatomic.h>

#include "core/error.h"

/* Bounds on an untrusted-ish file. */
#define HC_REGISTRY_MAX_BYTES (1u << 20)
#define HC_REGISTRY_MAX_FUNCTIONS 1024
#define HC_REGISTRY_MAX_NAME 64
#define HC_REGISTRY_MAX_HANDLER 1024

enum hc_executor_runtime { HC_EXECUTOR_PYTHON, HC_EXECUTOR_NODE, HC_EXECUTOR_COMMAND };

struct hc_executor_fn {
	char *name;
	enum hc_executor_runtime runtime;
	/* python: "module:function"; node: "file.js#function"; command: the argv (>= 1). */
	const char *handler;
	const char *const *argv;
	size_t argc;
	/* The run params of the function's calls, in the server's names (image, timeout_secs,
	 * memory_mib, env, network): what server/methods.c maps through the run-options table. */
	json_t *run;
	unsigned max_concurrency; /* 0: only --max-runs bounds it */
	json_t *entry;		  /* the entry as given (owns handler and argv's strings) */
};

struct hc_registry {
	atomic_uint refs;
	struct hc_executor_fn *fns; /* sorted by name */
	size_t n;
};

/* Parses and validates a registry document. origin names it in errors ("registry FILE").
 * Returns 0 with *ret (one reference), or -EINVAL (kind usage) / -ENOMEM with err set. */
int hc_registry_parse(const char *text, size_t len, const char *origin, struct hc_registry **ret,
		      struct hc_error *err);
/* Reads path (at most HC_REGISTRY_MAX_BYTES) and parses it. */
int hc_registry_load(const char *path, struct hc_registry **ret, struct hc_error *err);
struct hc_registry *hc_registry_ref(struct hc_registry *r);
/* Drops a reference; the last one frees. NULL is fine. */
void hc_registry_unref(struct hc_registry *r);
/* The function named name, or NULL. */
const struct hc_executor_fn *hc_registry_find(const struct hc_registry *r, const char *name);
/* "python", "node", "command". */
const char *hc_executor_runtime_name(enum hc_executor_runtime rt);
