/* SPDX-License-Identifier: MIT */
/* The jail's pieces, shared between its files (jail.c runs them; nobody else includes this). */
#pragma once

#include <linux/filter.h>

#include "jail/jail.h"

/* Builds the allow-list of a kind as BPF (ret->filter is malloc'd). HOTCELL_SECCOMP=log makes
 * the default action SECCOMP_RET_LOG (record mode). */
int hc_jail_seccomp_build(enum hc_jail_kind kind, enum hc_accel accel, bool network, bool tap,
			  struct sock_fprog *ret, struct hc_error *err) _must_check_;

/* The uid lease (lease.c): the first free uid of the range, held by an flock()ed file. */
int hc_jail_lease_take(struct hc_jail_vm *jv, struct hc_error *err) _must_check_;
void hc_jail_lease_release(struct hc_jail_vm *jv);
/* Parses "FIRST-LAST" (HOTCELL_JAIL_UIDS); exported for the unit tests. */
int hc_jail_uid_range_parse(const char *s, uid_t *first, uid_t *last);

/* cgroups (cgroup.c): makes the process's cgroups (v1 controllers memory, pids, cpu, or v2)
 * with its limits, records them in jv for removal, and fills procs[] with the cgroup.procs
 * files the child writes itself into. Returns how many, 0 when the host has none (why says
 * so), or -errno. */
#define HC_JAIL_CG_PROCS 4
int hc_jail_cgroup_make(struct hc_jail_vm *jv, enum hc_jail_kind kind, unsigned n,
			char procs[HC_JAIL_CG_PROCS][HC_PATH_MAX], const char **why,
			struct hc_error *err) _must_check_;
void hc_jail_cgroup_remove(struct hc_jail_vm *jv);
/* Every cgroup of a uid (a dead holder's), removed once empty, trying until deadline
 * (hc_clock_ms()). */
void hc_jail_cgroup_remove_uid(uid_t uid, double deadline);
/* The memory limit the cgroup of a kind gets (bytes), for bench/jail.sh and docs. */
unsigned long long hc_jail_memory_limit(enum hc_jail_kind kind, unsigned guest_mib);

/* Library resolution (libs.c): the shared objects binary loads (ldd), as a NULL-terminated
 * array of absolute paths in one allocation, cached per binary. */
int hc_jail_libs(const char *binary, const char *const **ret, struct hc_error *err) _must_check_;

/* Landlock (landlock.c): the kernel's ABI version, or -errno (ENOSYS: not built in,
 * EOPNOTSUPP: off at boot); why a version cannot be used, or NULL. */
#define HC_JAIL_LANDLOCK_MIN_ABI 2
int hc_jail_landlock_abi(void);
const char *hc_jail_landlock_why_not(int abi);
/* In the child: a ruleset that handles every write-type right of that ABI (an fd), a rule
 * allowing them beneath path (a file: its file rights), then restrict_self (closes the
 * ruleset; needs no_new_privs). Errors name the jail step. */
int hc_jail_landlock_open(int abi, struct hc_error *err) _must_check_;
int hc_jail_landlock_allow(int ruleset, int abi, const char *path,
			   struct hc_error *err) _must_check_;
int hc_jail_landlock_apply(int ruleset, struct hc_error *err) _must_check_;
