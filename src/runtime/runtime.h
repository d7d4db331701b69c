/* SPDX-License-Identifier: MIT */
/*
 * hotcell-runtime (DESIGN.md §14, docs/runtime.md): the OCI runtime command line, so that
 * podman and containerd run containers as micro-VMs.
 *
 *  - config.c  config.json and process.json (untrusted input: bounded, validated; fuzzed by
 *              tests/fuzz/fuzz-runtime-config.c) into struct rt_config / struct rt_process,
 *              and from there into the run options of a persistent VM (lib/runopts.h)
 *  - state.c   the state JSON and the per-container lock under --root
 *  - main.c    the commands (create, start, state, kill, delete, exec, pause, resume, ps,
 *              features) and the container process
 *
 * The container's process (the pid in `state` and in --pid-file) is the VM's supervisor: a
 * persistent VM created with a workload (hc_pvm_workload), which runs process.args on
 * `start` with the stdio `create` was given and exits with the workload's status.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "core/error.h"
#include "lib/runopts.h"

#define RT_OCI_VERSION "1.1.0"
#define RT_ID_MAX 1024
#define RT_CONFIG_MAX (4u << 20)

struct rt_process {
	char **args;
	size_t n_args;
	char **env;
	size_t n_env;
	char *cwd;
	unsigned uid, gid;
	bool terminal;
};

struct rt_volume {
	char *host, *guest;
	bool readonly;
};

struct rt_config {
	char *oci_version;
	struct rt_process process; /* present: has_process */
	bool has_process;
	char *root_path; /* as written (relative to the bundle or absolute) */
	bool root_readonly;
	char *hostname;
	char *netns; /* linux.namespaces' network path (the engine's namespace), NULL: none */
	struct rt_volume *volumes; /* bind mounts of host paths */
	size_t n_volumes;
	unsigned memory_mib; /* from linux.resources.memory.limit, 0: unset */
	unsigned cpus;	     /* from linux.resources.cpu quota/period or cpus, 0: unset */
	json_t *annotations; /* an object (maybe empty) */
};

/* Parses config.json text. -EINVAL with err set ("config.json: process.args must be ...") on
 * anything malformed. */
int rt_config_parse(const char *data, size_t len, struct rt_config *c, struct hc_error *err);
void rt_config_free(struct rt_config *c);

/* Parses a process object (config.json's "process" or exec --process FILE). */
int rt_process_from_json(const json_t *p, const char *what, struct rt_process *ret,
			 struct hc_error *err);
int rt_process_parse(const char *data, size_t len, struct rt_process *ret, struct hc_error *err);
void rt_process_free(struct rt_process *p);

/* The VM's options from a parsed config: the rootfs (bundle-relative root.path), the
 * process's env/cwd/user as defaults, volumes, memory and cpus from the resources, then the
 * annotations org.hotcell.backend / .cpus / .memory_mib over them. */
int rt_config_runopts(const struct rt_config *c, const char *bundle, struct hc_runopts *ro,
		      struct hc_error *err);

/* Signal by name ("TERM", "SIGTERM", case-insensitive) or number; -EINVAL otherwise. */
int rt_signal_parse(const char *s);

/* ---- state (state.c) ---- */

enum rt_status { RT_CREATING, RT_CREATED, RT_RUNNING, RT_PAUSED, RT_STOPPED };
const char *rt_status_name(enum rt_status s);

struct rt_state {
	char id[RT_ID_MAX + 1];
	char dir[4096]; /* <root>/<id> */
	json_t *rec;	/* state.json */
	int lock_fd;	/* flock'ed <root>/<id>/lock, -1 */
};

/* A container id: [A-Za-z0-9][A-Za-z0-9_.+-]*, at most RT_ID_MAX bytes. */
bool rt_id_valid(const char *id);
/* Opens <root>/<id> (create: makes it, -EEXIST when there) and takes its lock. */
int rt_state_open(const char *root, const char *id, bool create, struct rt_state *st,
		  struct hc_error *err);
void rt_state_close(struct rt_state *st);
/* state.json, atomically. */
int rt_state_save(struct rt_state *st, struct hc_error *err);
/* The live status: the recorded one, except that a dead container process reads stopped. */
enum rt_status rt_state_status(const struct rt_state *st);
pid_t rt_state_pid(const struct rt_state *st);
/* The OCI state JSON (ociVersion, id, status, pid, bundle, annotations, created). */
json_t *rt_state_oci(const struct rt_state *st);
