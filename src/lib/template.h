/* SPDX-License-Identifier: MIT */
/*
 * Templates: warm start of `hotcell run` (DESIGN.md §13, docs/warm-start.md).
 *
 * The first run of a cached image for a key (image digest, kernel, initramfs, rootfs disk,
 * backend and the VMM binary's identity, vCPUs, memory, rootfs mode, channel, network mode,
 * accelerator, the boot keys but the hostname) boots cold and, once the guest said HELLO and
 * before its command runs, saves a snapshot of the VM as that key's template:
 *
 *   <state>/templates/<key>/        a snapshot directory (lib/snapshot.h) + template.json
 *   <state>/templates/<key>.lock    flock'ed by the one run that builds it (and by prune)
 *   <state>/templates/.tmp-<key>-*  a template being written; renamed into place when whole
 *
 * Later runs of that key restore it (lib/snapshot.h: memory copy-on-write, HOSTNAME, RESEED)
 * instead of booting. Whatever makes a template unusable (a file it depends on changed, a
 * corrupt or truncated file, another VMM binary, a failed save) ends in a cold boot with a
 * debug line, never in a failed run. The key is a sha256 over a canonical JSON object of its
 * parts, so any change of a part is another template.
 */
#pragma once

#include "lib/boot.h"
#include "lib/snapshot.h"

#define HC_LIB_TEMPLATE_FORMAT 1

enum hc_lib_template_state {
	HC_TPL_COLD,  /* no template for this run: why in why_cold */
	HC_TPL_WARM,  /* a template is open (snap): restore it */
	HC_TPL_BUILD, /* none yet and this run holds the build lock: save one at HELLO */
};

struct hc_lib_template {
	enum hc_lib_template_state state;
	char why_cold[200];
	char root[HC_PATH_MAX]; /* <state>/templates */
	char key[65];
	char dir[HC_PATH_MAX];
	json_t *key_json;
	int lock_fd;
	struct hc_lib_snapshot *snap;
};

#define HC_LIB_TEMPLATE_INIT                                                                       \
	{                                                                                          \
		.state = HC_TPL_COLD, .lock_fd = -1                                                \
	}

/* Before hc_lib_boot_prepare: whether o's run may use a template at all (an image, no
 * --cold, no volumes, no --rootfs, no network, no device, no --jailer, unjailed: a restored
 * VMM cannot be jailed yet). NULL when it may, else why not. */
const char *hc_lib_template_refusal(const struct hc_run_opts *o);

/* After hc_lib_boot_prepare (b->snapshot_modes set): the key of b's VM, then the template if
 * there is a usable one (HC_TPL_WARM), else the build lock when nobody else holds it
 * (HC_TPL_BUILD), else HC_TPL_COLD. Never fails: a problem is a debug line and cold. */
void hc_lib_template_lookup(struct hc_store *store, const struct hc_lib_boot *b,
			    struct hc_lib_template *t);

/* HC_TPL_WARM: restores the template into a new VM, with the run's hostname (NULL: "hotcell")
 * and cancel fd, and with --network onto a network of its own made into *net (the boot's,
 * released by its teardown; hc_lib_restore_as in snapshot.h). On failure the template is removed
 * when this run can take its lock (so the next run rebuilds it), t turns HC_TPL_BUILD or
 * HC_TPL_COLD, and the caller boots cold. */
int hc_lib_template_restore(struct hc_lib_template *t, const struct hc_run_opts *o,
			    struct hc_lib_net *net, struct hc_vm **ret_vm, int *ret_agent_fd,
			    double *ret_ms, struct hc_error *err) _must_check_;

/* HC_TPL_BUILD, at the guest's HELLO: when agent >= 0 (the connected agent channel, nothing
 * pending on it) first runs one warm-up command (`true`) so that the template holds the
 * caches a command fills, then saves vm as the template (paused for the save only), written
 * under a temp name and renamed into place. A failure (full disk, ...) is a debug line: the
 * run goes on. *ret_ms: the warm-up's and the save's time (0 when none). */
void hc_lib_template_save(struct hc_lib_template *t, struct hc_vm *vm, const struct hc_lib_boot *b,
			  int agent, double *ret_ms);

/* Releases the lock and the open template. */
void hc_lib_template_release(struct hc_lib_template *t);

/* The disk space of every template of the image with this digest (blocks allocated). */
uint64_t hc_lib_template_size(const char *state_dir, const char *digest);

/* Removes every template (and temp) that no run is building; returns how many. */
int hc_lib_template_prune(const char *state_dir, struct hc_error *err);
