/* SPDX-License-Identifier: MIT */
/*
 * The image config kept beside a cached rootfs (<state>/rootfs/<hex>/config.json). The parser
 * itself (struct hc_oci_config, hc_oci_config_parse/free: bounded, type-checked, image-spec
 * config.md) lives in manifest.h, shared with pull and load; this adds reading it from the
 * cache for the run pipeline (DESIGN.md §6).
 */
#pragma once

#include "core/error.h"
#include "oci/manifest.h"

/* Reads and parses a config file (at most HC_OCI_CONFIG_MAX bytes). Free with
 * hc_oci_config_free. */
int hc_oci_config_load(const char *path, struct hc_oci_config *ret,
		       struct hc_error *err) _must_check_;
