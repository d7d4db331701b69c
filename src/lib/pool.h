/* SPDX-License-Identifier: MIT */
/*
 * The warm pool (hotcell serve --warm-pool N; docs/warm-start.md, "The server's warm pool"):
 * up to N VMs per template key restored from the template ahead of time and waiting, so a
 * server run takes one instead of restoring. A pooled VM is restored exactly as a warm run's
 * (hc_lib_snapshot_restore_as: jailed unless --no-jail, RESEED acknowledged) by the pool's
 * one refill thread, and re-identified when taken: HOSTNAME (the run's) and RESEED (a fresh
 * seed, the host's clock now), both acknowledged before the command is sent. A VM serves one
 * run: the run tears it down as any other.
 *
 *   key       the template key (lib/template.h) and --no-jail; networked templates are not
 *             pooled (their network is made per run from the run's own options)
 *   identity  the template directory's device and inode: a rebuilt template (renamed into
 *             place) or one `hotcell prune` removed turns the key's VMs stale, and they are
 *             discarded (checked at each take and by the refill thread every second)
 *   image     while a key has VMs the pool holds the image's shared lock (oci/store.h), as a
 *             run does, so `rmi` and `prune` leave the image alone
 *   death     a waiting VM whose VMM died, or whose channel closed or spoke, is discarded,
 *             never handed out; the VMMs die with the refill thread that started them
 *             (PR_SET_PDEATHSIG), so with the server
 *
 * Keys are added by the runs that use a template (hc_lib_pool_want); at most
 * HC_LIB_POOL_MAX_KEYS, the least recently used key giving way.
 */
#pragma once

#include "hotcell.h"
#include "lib/template.h"

#define HC_LIB_POOL_MAX_KEYS 8

/* After a run used or built t's template (state WARM, or BUILD with the template saved): the
 * pool keeps VMs of its key from now on. Cheap when it does already. */
void hc_lib_pool_want(struct hc_warm_pool *p, struct hc_store *store,
		      const struct hc_lib_template *t, const char *digest,
		      const struct hc_run_opts *o);

/* A waiting VM of t's key (t is HC_TPL_WARM), re-identified for o (hostname, RESEED):
 * 1 with *ret_vm, *ret_agent_fd (blocking) and *ret_snap (the snapshot the VM's spec points
 * into: close it after hc_vm_free) the caller's, *ret_ms the take's time; 0 when the pool has
 * none that is alive and of this template (the caller restores as usual). */
int hc_lib_pool_take(struct hc_warm_pool *p, const struct hc_lib_template *t,
		     const struct hc_run_opts *o, struct hc_vm **ret_vm, int *ret_agent_fd,
		     struct hc_lib_snapshot **ret_snap, double *ret_ms);
/* A run on a VM hc_lib_pool_take gave has ended (its VM torn down): refills may go on. */
void hc_lib_pool_done(struct hc_warm_pool *p);
