/* SPDX-License-Identifier: MIT */
/*
 * What runs, as podman does (DESIGN.md §6): the exec request built from the run options and
 * the image config. Kept apart from the OCI config parser so the rules are testable alone.
 */
#pragma once

#include "hotcell.h"
#include "proto/proto.h"

/* The parts of an OCI image config ("config" object, image-spec config.md) a run uses. */
struct hc_lib_image_defaults {
	const char *const *entrypoint;
	size_t n_entrypoint;
	const char *const *cmd;
	size_t n_cmd;
	const char *const *env; /* "KEY=VALUE" */
	size_t n_env;
	const char *workdir; /* NULL or "": none */
	const char *user;    /* NULL or "": none */
};

#define HC_LIB_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define HC_LIB_DEFAULT_TIMEOUT_S 30.0

/* Builds the exec request: argv = entrypoint (--entrypoint, else the image's) + CMD (the
 * user's, else the image's unless --entrypoint was given); empty -> -EINVAL "usage". Env = the
 * image's, then each -e (KEY alone takes the host's value, skipped when unset), PATH defaulted.
 * Workdir = -w, else the image's (created when missing), else "/". User = -u, else the image's.
 * img is NULL with --rootfs (no image config: CMD required). Free with hc_lib_exec_clear. */
int hc_lib_exec_build(const struct hc_run_opts *opts, const struct hc_lib_image_defaults *img,
		      struct hc_proto_exec *ret, struct hc_error *err) _must_check_;
void hc_lib_exec_clear(struct hc_proto_exec *e);
