/* SPDX-License-Identifier: MIT */
/*
 * The image config (image-spec config.md): what a run takes from it (DESIGN.md §6) plus
 * `created`, `os` and `architecture`. The JSON is untrusted: bounded in size, every field
 * type-checked, strings with embedded NULs refused.
 */
#pragma once

#include "core/error.h"

#define HC_OCI_CONFIG_JSON_MAX (16u << 20) /* as the store's HC_OCI_CONFIG_MAX */
#define HC_OCI_CONFIG_MAX_ITEMS 65536 /* entries of Entrypoint, Cmd or Env */

struct hc_oci_config {
	/* NULL-terminated arrays with their counts. NULL (count 0) when the image does not set
	 * them (absent or JSON null); an allocated empty array when it sets []. */
	char **entrypoint;
	size_t n_entrypoint;
	char **cmd;
	size_t n_cmd;
	char **env; /* "KEY=VALUE" as the image has them */
	size_t n_env;
	char *workdir;     /* NULL when unset or "" */
	char *user;        /* NULL when unset or "" */
	char *stop_signal; /* NULL when unset */
	char *created;     /* RFC 3339, as written; NULL when absent */
	char *os;
	char *architecture;
};

/* Parses a config blob (len bytes, not necessarily NUL-terminated). On failure *ret is left
 * zeroed. */
int hc_oci_config_parse(const char *json, size_t len, struct hc_oci_config *ret,
			struct hc_error *err) _must_check_;
/* Reads and parses a config file (e.g. <state>/rootfs/<hex>/config.json). */
int hc_oci_config_load(const char *path, struct hc_oci_config *ret,
		       struct hc_error *err) _must_check_;
void hc_oci_config_free(struct hc_oci_config *c);
