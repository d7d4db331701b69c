/* SPDX-License-Identifier: MIT */
/*
 * Host sandboxing of every VMM-side process (docs/security.md). A jailed process gets, as one
 * straight line of small steps between fork and exec (hc_child_jail, applied by
 * hc_child_spawn; for the libkrun worker, which never execs, before its run hook):
 *
 *   cgroup join -> new mount, ipc, uts (and net without networking) namespaces, PID 1 of a new
 *   PID namespace -> a tmpfs root in the VM's runtime dir holding only its binary, libraries,
 *   data, device nodes and the VM's files (bind mounts, read-only where they can be) ->
 *   pivot_root (a read-only /proc) -> rlimits -> the VM's own uid/gid -> every capability
 *   dropped (bounding and ambient sets cleared) -> no_new_privs -> Landlock: writes only beneath
 *   its read-write paths (where the kernel has it; not for a process that mounts itself) -> a
 *   seccomp allow-list for its kind -> exec.
 *
 * The virtio-fs servers (virtiofsd, the libkrun worker) keep uid 0 and a file server's
 * capabilities instead of the VM's uid.
 *
 * Any step that fails stops the start with a message naming the step (fail closed). The
 * mounts live only in the process's own mount namespace: they go with it. The uid lease and
 * the cgroups go with hc_jail_vm_close().
 *
 * A driver holds one struct hc_jail_vm per VM and, per spawn, fills one struct hc_jail_proc:
 *
 *   struct hc_jail_proc jp;
 *   hc_jail_proc_init(&jp, &q->jail, HC_JAIL_QEMU, spec->accel, bin);
 *   hc_jail_proc_bind(&jp, spec->kernel, false);
 *   r = hc_jail_proc_prepare(&jp, &child_opts, err);   // sets child_opts.jail and .envp
 *   r = hc_child_spawn(&child, &child_opts, err);
 *   hc_jail_proc_free(&jp);
 *
 * With the jail off (hc_jail_vm_open with on == false) every call is a no-op.
 */
#pragma once

#include <sys/types.h>

#include "core/child.h"
#include "core/error.h"
#include "core/path.h"

enum hc_jail_kind {
	HC_JAIL_QEMU,
	HC_JAIL_VIRTIOFSD,
	HC_JAIL_VSOCKD, /* vhost-device-vsock */
	HC_JAIL_CLOUD_HYPERVISOR,
	HC_JAIL_LIBKRUN,
	HC_JAIL_N_KINDS
};

const char *hc_jail_kind_name(enum hc_jail_kind kind);

/* The uid range VMs are given uids from: HOTCELL_JAIL_UIDS="FIRST-LAST", default below. */
#define HC_JAIL_UID_FIRST 3000000u
#define HC_JAIL_UID_LAST 3065535u
/* Where the leases are kept, host-wide (whatever HOTCELL_RUNTIME_DIR says, so two hotcells
 * with different runtime dirs never share a uid): HOTCELL_JAIL_LEASE_DIR, default below. */
#define HC_JAIL_LEASE_DIR "/run/hotcell-uids"
/* Which libraries each VMM binary loads (src/jail/libs.c), host-wide: HOTCELL_JAIL_LIBS_DIR,
 * default below (a tmpfs: emptied at boot, with the libraries it lists). */
#define HC_JAIL_LIBS_DIR "/run/hotcell-libs"

#define HC_JAIL_MAX_CGROUPS 48 /* 3 controllers for each process of a VM */

/* One per VM. */
struct hc_jail_vm {
	bool on;
	uid_t uid; /* the VM's own uid and gid (the same number) */
	gid_t gid;
	int lease_fd; /* flock()ed lease file: the kernel releases it if hotcell dies */
	char lease_path[HC_PATH_MAX];
	char run_dir[HC_PATH_MAX];
	unsigned memory_mib, cpus;
	unsigned n_procs;				/* roots made so far, for their names */
	char cgroups[HC_JAIL_MAX_CGROUPS][HC_PATH_MAX]; /* made by us, removed on close */
	size_t n_cgroups;
};

#define HC_JAIL_VM_INIT                                                                            \
	{                                                                                          \
		.on = false, .lease_fd = -1                                                        \
	}

/* Starts the VM's jail: with on, takes a uid lease and hands the runtime dir to that uid (the
 * VMM creates its sockets and logs there). With !on, a no-op jail. */
int hc_jail_vm_open(struct hc_jail_vm *jv, bool on, const char *run_dir, unsigned memory_mib,
		    unsigned cpus, struct hc_error *err) _must_check_;
/* Once every jailed process of the VM is reaped: removes its cgroups, releases the uid. Safe
 * on a never-opened or closed jail. */
void hc_jail_vm_close(struct hc_jail_vm *jv);

/* What a process that died without closing its jails left (the server's reaper, after a
 * SIGKILLed `hotcell serve`): each uid lease that process pid (started at start, its
 * hc_owner_start_time) held, once no process holds it any more (its jailed children die with it:
 * PR_SET_PDEATHSIG), is released and its uid's cgroups removed, trying for up to timeout_ms.
 * Returns how many leases. */
int hc_jail_reap_dead(pid_t pid, unsigned long long start, int timeout_ms);

/* Whether the jail is on by default here (root), and when not, why (for messages). */
bool hc_jail_default_on(const char **why_not);

/* What the jail can do on this host (hotcell doctor). */
struct hc_jail_host {
	bool root;	     /* on by default */
	const char *why_not; /* when not */
	uid_t uid_first, uid_last;
	char uid_error[160]; /* a bad HOTCELL_JAIL_UIDS: every jailed start fails with it */
	char lease_dir[HC_PATH_MAX];
	unsigned leased; /* uids held now (by running VMs, or stale and free to take) */
	bool seccomp;	 /* SECCOMP_RET_KILL_PROCESS available */
	bool seccomp_log;
	int landlock_abi;	      /* the kernel's Landlock ABI, or -errno */
	const char *landlock_why_not; /* NULL when the jail uses it */
	int cgroup_version;	      /* 0: none mounted */
	char cgroup_controllers[64];  /* of memory, pids, cpu: those there */
	bool kvm;
	gid_t kvm_gid;
	mode_t kvm_mode;
};
void hc_jail_host_report(struct hc_jail_host *h);

/* HOTCELL_JAIL_EXTRA="PATH:+PATH...": more host paths every jailed process gets at the same
 * path, read-only (a program with the libraries it loads), or read-write with a "+". For a VMM that
 * runs helpers of its own: a wrapper script's tools, or the test doubles, which run their guest
 * under QEMU. */
#define HC_JAIL_MAX_EXTRA 16

#define HC_JAIL_MAX_BINDS 48

/* A program that builds its own sandbox first (QEMU 7.2's C virtiofsd) is given CAP_SYS_ADMIN
 * and CAP_SETPCAP to exec with, and must drop them itself. */
#define HC_JAIL_CAP_SYS_ADMIN_AT_START 1u

struct hc_jail_bind {
	const char *path; /* bound at the same path inside the root; must outlive prepare */
	bool rw;
};

struct hc_jail_plan; /* what the child does (jail.c) */

struct hc_jail_proc {
	struct hc_jail_vm *vm;
	enum hc_jail_kind kind;
	enum hc_accel accel;
	bool network; /* keeps the host's network namespace and gets /dev/net/tun */
	bool tap;     /* is handed a TAP fd: may make the TAP ioctls on it */
	const char *binary;
	struct hc_jail_bind binds[HC_JAIL_MAX_BINDS];
	size_t n_binds;
	bool overflow;
	unsigned start_caps; /* HC_JAIL_CAP_*: extra capabilities the program drops itself */
	struct hc_jail_plan *plan;
	struct hc_child_jail child;
};

/* binary: the absolute path that argv[0] will be. */
void hc_jail_proc_init(struct hc_jail_proc *p, struct hc_jail_vm *vm, enum hc_jail_kind kind,
		       enum hc_accel accel, const char *binary);
/* A file or directory of the host the process needs, bound at the same path. NULL is
 * ignored, so optional paths need no test at the call site. */
void hc_jail_proc_bind(struct hc_jail_proc *p, const char *path, bool rw);
/* Builds the plan (libraries, seccomp filter, root dir, environment) and points o->jail at
 * it; o->envp becomes the jail's environment (o->envp or ours, cleared down to PATH and
 * HOTCELL_*). o->argv[0] must be the binary. A no-op with the jail off. */
int hc_jail_proc_prepare(struct hc_jail_proc *p, struct hc_child_opts *o,
			 struct hc_error *err) _must_check_;
void hc_jail_proc_free(struct hc_jail_proc *p);

/* The seccomp filter of a kind (for bench/jail.sh and tests): its length in BPF instructions,
 * or -errno. */
int hc_jail_seccomp_size(enum hc_jail_kind kind, enum hc_accel accel, struct hc_error *err);
