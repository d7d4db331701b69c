/* SPDX-License-Identifier: MIT */
/*
 * Owned directories: a directory that belongs to one live process records its owner in a file
 * named "owner" inside it: "PID STARTTIME\n", STARTTIME being field 22 of /proc/PID/stat (clock
 * ticks since boot), so a recycled pid is not mistaken for the owner. Whoever finds a directory
 * whose owner is gone (SIGKILL, OOM, power loss of a tmpfs-less /run) may remove it.
 *
 * Used for the per-VM runtime directories (<runtime>/<id>/, hc_path_make_run_dir records the
 * caller as owner and sweeps the stale ones first) and for anything else a process keeps while
 * it lives: persistent VMs' supervisors, temp trees.
 */
#pragma once

#include <sys/types.h>

#include "core/error.h"

#define HC_OWNER_FILE "owner"

/* Start time of pid (field 22 of /proc/PID/stat); 0 when the process does not exist or is a
 * zombie (a dead owner whose parent has not reaped it yet). */
unsigned long long hc_owner_start_time(pid_t pid);
/* Writes DIR/owner naming the calling process. */
int hc_owner_write(const char *dir, struct hc_error *err) _must_check_;
/* 1: DIR's owner is alive; 0: it is gone (its owner file names a dead process or another
 * process on the same pid); -ENOENT: DIR has no readable owner file. */
int hc_owner_alive(const char *dir);
/* Removes every subdirectory of base whose owner is gone, and those without an owner file whose
 * name is in hc_path_random_id's form (an 8-char hex id, written before owner files existed)
 * and that are older than a minute (so a directory whose owner file is being written is never
 * taken). Each is first renamed to ".reap-<random>" (one sweeper wins a race; a sweeper killed
 * half-way leaves a tree whose owner is still the dead process, found the next time). Cheap:
 * one readdir and one small read per entry. Returns the number removed; never fails (what it
 * cannot remove it leaves for the next sweep, with a debug log). */
int hc_owner_sweep(const char *base);
