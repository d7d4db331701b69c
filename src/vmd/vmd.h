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
 */
#pragma once

#include <jansson.h>

#include "core/buf.h"
#include "lib/agent.h"
#include "lib/boot.h"
#include "lib/pvm.h"
#include "lib/runopts.h"
#include "lib/snapshot.h"

struct vmd_client;

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
