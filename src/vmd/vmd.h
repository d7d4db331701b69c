/* SPDX-License-Identifier: MIT */
/*
 * The per-VM supervisor (DESIGN.md §9), build/bin/hotcell-vmd. Started detached by
 * hc_pvm_create; one process per persistent VM. It owns the VMM and every helper (through
 * the boot parts of src/lib and the backend interface), the agent channel and the console log,
 * and serves the control socket (lib/pvm.h) in the VM's runtime dir.
 *
 * Life of a supervisor:
 *   1. read $HOTCELL_HOME/vms/<id>/create.json; write vm.json (status "creating")
 *   2. bring the VM up: boot (vmd_boot_image) or, when create.json has "restore", restore a
 *      snapshot directory (vmd_boot_restore: the hook for vm restore / vm fork)
 *   3. listen on <runtime dir>/ctl.sock (0600; peers: same uid or root), write vm.json
 *      ("running"), tell the creator "ok" on the ready pipe
 *   4. serve requests until stopped (vm stop, idle timeout, lifetime, SIGTERM) or until the
 *      VM dies; then end the VM, save the console into the state dir, write the final status
 *      ("stopped" / "dead" with "error" and "console_tail") and exit.
 * Requests are dispatched through vmd_ops[] (vmd.c): adding a request (snapshot, ...) is one
 * entry with its handler.
 *
 * A supervisor created with a workload (hc_pvm_create_opts.workload; create.json "workload",
 * the workload's stdin, stdout and stderr on fds VMD_WORK_FD .. +2) is an OCI container's
 * process (docs/runtime.md, work.c): it waits for the "start" request, runs the workload with
 * those fds as its stdio (a host pty slave with a TTY exec in the guest: raw, its window size
 * passed on as RESIZE), passes every signal it gets on to the workload as that signal, and
 * when the workload ends it ends the VM and exits with the workload's status.
 */
#pragma once

#include <jansson.h>
#include <poll.h>
#include <signal.h>

#include "core/buf.h"
#include "lib/agent.h"
#include "lib/boot.h"
#include "lib/pvm.h"
#include "lib/runopts.h"
#include "lib/snapshot.h"

struct vmd_client;
struct vmd_work;

#define VMD_WORK_FD 4

struct vmd {
	char id[HC_PVM_ID_LEN + 1];
	char state_dir[HC_PATH_MAX];
	json_t *create; /* create.json */
	json_t *rec;	/* vm.json as last written */
	struct hc_runopts ro;
	struct hc_store *store;
	struct hc_lib_boot boot;
	struct hc_lib_snapshot *snap; /* restored: the snapshot boot.spec points into */
	int agent;		      /* the agent channel until agent takes it; -1 then */
	struct hc_agent *agent_h;     /* the channel, once the VM is up */
	bool hello;		      /* the guest's HELLO came */
	unsigned n_execs;	      /* commands running for clients (the idle timeout waits) */
	int listen_fd;
	char ctl_path[HC_PATH_MAX];
	int sig_fd;
	enum hc_pvm_status status;
	struct vmd_client **clients;
	size_t n_clients;
	double idle_s, lifetime_s;
	double t_created, t_idle_since, t_boot0;
	/* A migration's destination (docs/migration.md): restored paused, resumed only by
	 * "migrate_commit" once the source has stopped for good, ended (and its files removed)
	 * when no commit came by incoming_until. */
	bool incoming;
	double incoming_until;
	bool quit;	       /* end the loop: the VM is being stopped */
	bool dead;	       /* the VM died under us */
	struct hc_error death; /* why, when dead */
	struct vmd_work *work; /* a container's workload (work.c), NULL for a plain VM */
	double stop_grace;     /* how long the VM's end waits for the guest, seconds */
};

/* Runs the supervisor for VM id; ready_fd (-1: none) gets one line, "ok\n" or "error <kind>
 * <message>\n", once the VM is up or could not be brought up. Returns the process's exit
 * status. */
int vmd_main(const char *id, int ready_fd);

/* Brings the VM up from a snapshot directory (create.json "restore"), instead of booting:
 * fills v->boot (spec, vm) and v->agent (the connected channel, its HELLO consumed and the
 * guest reseeded: lib/snapshot.h). The options the snapshotted VM was created with come
 * along. */
int vmd_boot_restore(struct vmd *v, const char *dir, struct hc_error *err);

/* Writes v->rec (with status) to vm.json; logs a failure. */
void vmd_record_save(struct vmd *v);

/* An exec request (the control socket's "exec" object: cmd, env, workdir, user, timeout,
 * stdin, detach, tty + rows/cols, image_command, term) into the guest's EXEC, with the VM's
 * defaults under it. */
int vmd_exec_build(struct vmd *v, const json_t *req, struct hc_proto_exec *ex,
		   struct hc_error *err);
/* The guest's ERROR for an exec of argv0 as the client's error object (exit_code 126/127 for
 * the exec reasons, as hc_run). */
json_t *vmd_stream_error(const char *argv0, const struct hc_proto_error *pe);

/* ---- the container's workload (work.c) ---- */

/* From create.json's "workload" (none: 0, v->work stays NULL). */
int vmd_work_load(struct vmd *v, struct hc_error *err);
void vmd_work_free(struct vmd *v);
/* The signals the supervisor takes through its signalfd: with a workload every one it can
 * pass on (booting: those that end it), else TERM, INT and HUP (which stop the VM). */
void vmd_work_sigset(const struct vmd *v, bool booting, sigset_t *set);
/* A signal the supervisor got; false when it is not the workload's (the VM is stopped). */
bool vmd_work_signal(struct vmd *v, int sig);
/* "start": runs the workload (once). */
int vmd_work_start(struct vmd *v, struct hc_error *err);
/* Poll entries for the workload's stdio: always 3 (fd -1 when idle), then its events. */
void vmd_work_pollfds(struct vmd *v, struct pollfd *p);
void vmd_work_io(struct vmd *v, const struct pollfd *p);
/* The agent's events for the workload's stream (vmd.c dispatches on sctx == v->work). */
void vmd_work_output(struct vmd *v, int fd, const uint8_t *p, size_t n);
void vmd_work_end(struct vmd *v, const struct hc_agent_end *end);
/* After the loop: what is still queued for the engine's stdio (bounded), and the exit status
 * of the container's process. */
int vmd_work_finish(struct vmd *v);
