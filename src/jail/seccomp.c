/* SPDX-License-Identifier: MIT */
/*
 * The seccomp allow-lists, one per process kind and accelerator, built with libseccomp and
 * exported as BPF in the parent (the child only loads it: no allocation after fork).
 *
 * How the lists were made: every kind was run over the e2e suite with HOTCELL_SECCOMP=log
 * (default action SECCOMP_RET_LOG: nothing is refused, every call outside the list is logged
 * to the kernel log as an audit record type=1326) and scripts/seccomp-record.sh turned the
 * records into names; each group below says why its process needs it. The KVM ioctls come
 * from upstream (Firecracker's and crosvm's x86_64 filters, QEMU's accel/kvm): TCG never
 * makes them, so no recording here can show them.
 *
 * Everything outside the list kills the whole process (SECCOMP_RET_KILL_PROCESS). Three
 * things are refused with an errno instead, because the C library probes them and falls
 * back: clone3 (ENOSYS: glibc then uses clone, whose flags we can check), and the
 * namespace-creating clone flags are not allowed at all.
 */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>

#include "core/util.h"
#include "jail/jail-internal.h"

/* Every dynamically linked C or Rust program: the loader, the allocator, threads' plumbing,
 * stdio, time, signals to itself, exit. */
static const char *const base[] = {
	"execve",
	"brk",
	"mmap",
	"munmap",
	"mprotect",
	"mremap",
	"madvise",
	"arch_prctl",
	"set_tid_address",
	"set_robust_list",
	"rseq",
	"prlimit64",
	"getrlimit",
	"read",
	"write",
	"readv",
	"writev",
	"pread64",
	"pwrite64",
	"preadv",
	"pwritev",
	"preadv2",
	"pwritev2",
	"openat",
	"open",
	"close",
	"close_range",
	"fstat",
	"newfstatat",
	"stat",
	"lstat",
	"statx",
	"lseek",
	"access",
	"faccessat",
	"faccessat2",
	"getpid",
	"gettid",
	"getppid",
	"getuid",
	"geteuid",
	"getgid",
	"getegid",
	"getresuid",
	"getresgid",
	"getgroups",
	"uname",
	"futex",
	"clock_gettime",
	"clock_getres",
	"clock_nanosleep",
	"nanosleep",
	"gettimeofday",
	"time",
	"rt_sigaction",
	"rt_sigprocmask",
	"rt_sigreturn",
	"rt_sigsuspend",
	"rt_sigtimedwait",
	"sigaltstack",
	"exit",
	"exit_group",
	"getrandom",
	"sched_yield",
	"sched_getaffinity",
	"getcwd",
	"chdir",
	"fcntl",
	"dup",
	"dup2",
	"dup3",
	"pipe",
	"pipe2",
	"readlink",
	"readlinkat",
	"getdents64",
	"poll",
	"ppoll",
	"select",
	"pselect6",
	"epoll_create",
	"epoll_create1",
	"epoll_ctl",
	"epoll_wait",
	"epoll_pwait",
	"eventfd2",
	"sysinfo",
	"umask",
	"restart_syscall",
	"membarrier",
	"getpgrp",
	"getpgid",
	"getsid",
	"sched_getparam",
	"sched_getscheduler",
	"getpriority",
	"getcpu",
	"fsync",
	"fdatasync",
	"ftruncate",
	"fadvise64",
	"gettimeofday",
	"times",
	/* pthread_kill() of its own threads (QEMU kicks vCPU threads with a signal). Other
	 * processes are out of reach by the pid namespace and the uid, not by this filter. */
	"tgkill",
	"tkill",
	"kill",
	"rt_sigqueueinfo",
	"rt_tgsigqueueinfo",
	/* Unix sockets only: socket() is checked per family below. */
	"connect",
	"accept",
	"accept4",
	"bind",
	"listen",
	"sendmsg",
	"recvmsg",
	"sendto",
	"recvfrom",
	"shutdown",
	"getsockopt",
	"setsockopt",
	"getsockname",
	"getpeername",
	"socketpair",
	"sendmmsg",
	"recvmmsg",
	/* Files in its own runtime directory (sockets, logs). */
	"unlink",
	"unlinkat",
	"rename",
	"renameat",
	"renameat2",
	"mkdir",
	"mkdirat",
	"rmdir",
	"chmod",
	"fchmod",
	"fchmodat",
	"fchown",
	"utimensat",
	"statfs",
	"fstatfs",
	"flock",
	"truncate",
	"sync_file_range",
	"fallocate",
	"copy_file_range",
	"sendfile",
	"splice",
	"inotify_init1",
	"inotify_add_watch",
	"inotify_rm_watch",
};

/* QEMU (TCG and KVM): the main loop and its threads, guest RAM in a shared memfd or file,
 * timers, io_uring-less AIO, vhost-user (memfds and eventfds passed over the sockets). */
static const char *const qemu[] = {
	"seccomp",
	"memfd_create",
	"timerfd_create",
	"timerfd_settime",
	"timerfd_gettime",
	"signalfd4",
	"mlock",
	"munlock",
	"mlock2",
	"mbind",
	"get_mempolicy",
	"set_mempolicy",
	"msync",
	"mincore",
	"sched_setaffinity",
	"sched_setscheduler",
	"setpriority",
	"prctl",
	"io_setup",
	"io_submit",
	"io_getevents",
	"io_destroy",
	"io_cancel",
	"wait4",
	"waitid",
	"vfork",
	"fork",
	"getitimer",
	"setitimer",
	"alarm",
	"sched_get_priority_max",
	"sched_get_priority_min",
};

/* vhost-device-vsock (Rust, vm-memory, vhost-user backend): epoll threads, the guest's
 * memory mapped from the memfds QEMU sends, the hybrid vsock unix sockets. */
static const char *const vsockd[] = {
	"prctl",	   "sched_setaffinity", "wait4", "timerfd_create",
	"timerfd_settime", "memfd_create",	"statx", "poll",
};

/* A virtio-fs server (virtiofsd, or libkrun's in-process one) does what the guest asks of its
 * files: ownership, links, device nodes and fifos (the mode guard applies), xattrs. */
static const char *const fs_server[] = {
	"fchownat",	"lchown",     "chown",	      "linkat",	   "link",	  "symlinkat",
	"symlink",	"mknodat",    "mknod",	      "fgetxattr", "fsetxattr",	  "flistxattr",
	"fremovexattr", "getxattr",   "setxattr",     "listxattr", "removexattr", "lgetxattr",
	"lsetxattr",	"llistxattr", "lremovexattr",
};

/* virtiofsd (C, QEMU 7.2's) keeps uid 0 and serves the image's ownership: it switches its
 * fs credentials per request, opens by handle, sets xattrs, and chroots into the share
 * (-o sandbox=chroot); it installs its own seccomp filter under ours (seccomp, prctl). The
 * Rust virtiofsd needs the same groups. mount: add_virtiofsd_mount. */
static const char *const virtiofsd[] = {
	"umount2",
	"pivot_root",
	"chdir",
	"getpid",
	"get_mempolicy",
	"set_mempolicy",
	"mbind",
	"readlink",
	"prctl",
	"seccomp",
	"capget",
	"capset",
	"chroot",
	"setresuid",
	"setresgid",
	"setfsuid",
	"setfsgid",
	"setgroups",
	"setuid",
	"setgid",
	"fchown",
	"name_to_handle_at",
	"open_by_handle_at",
	"fchdir",
	"futimesat",
	"utimes",
	"utime",
	"lseek",
	"copy_file_range",
	"memfd_create",
	"fallocate",
	"timerfd_create",
	"unshare",
	"wait4",
	"fdatasync",
	"syncfs",
	"sync",
	"sched_setaffinity",
	"getdents",
	"mkdirat",
};

/* Cloud Hypervisor is a KVM-only VMM: its groups are the QEMU group's (threads, memfd guest
 * RAM, timers, vhost-user) plus the KVM ioctls; from Cloud Hypervisor's own
 * vmm_thread_filter (vmm/src/seccomp_filters.rs) besides:
 *   seccomp      it installs its own per-thread filters (seccompiler) under ours;
 *   mbind, get_mempolicy, set_mempolicy  guest memory zones bound to host NUMA nodes
 *                (host_numa_node), and glib's/libnuma's probing in the doubles' QEMU;
 *   pidfd_open   Rust's std::process and hotcell's child API (the doubles) wait on pidfds;
 *   io_uring_*   its block device's io_uring backend (where the kernel has it). */
static const char *const kvm_vmm[] = {
	"memfd_create",	  "timerfd_create", "timerfd_settime",	 "timerfd_gettime", "signalfd4",
	"mbind",	  "msync",	    "sched_setaffinity", "prctl",	    "wait4",
	"io_uring_setup", "io_uring_enter", "io_uring_register", "eventfd",	    "getdents",
	"seccomp",	  "get_mempolicy",  "set_mempolicy",	 "pidfd_open",
};

/* The libkrun worker (a fork of hotcell that never execs: src/vmm/libkrun.c) is libkrun's
 * whole VMM in one process, KVM-only, and serves every virtio-fs share itself as uid 0. It
 * cannot be run here (libkrun is not installed; its double runs no guest when jailed,
 * docs/security.md), so no recording made this list: each group is from libkrun's source
 * (github.com/containers/libkrun, src/), besides base (the loader, which dlopens libkrunfw
 * at krun_start_enter, Rust's std, the files and unix sockets of the runtime dir):
 *   virtio-fs (devices/src/virtio/fs/linux/passthrough.rs): ScopedUid/ScopedGid switch the
 *     serving thread's credentials with the raw setresuid/setresgid syscalls (per thread,
 *     not glibc's process-wide setxid broadcast); the caps crate reads and lowers its
 *     effective set around some requests (capget, capset); the FUSE operations: fchownat,
 *     linkat, symlinkat, mknodat (fifos and sockets: no MKNOD capability), the xattr calls
 *     (on /proc/self/fd/N paths of its O_PATH fds, so the path and l* forms), syncfs,
 *     fchdir; its DAX window is remapped with mmap(MAP_FIXED) (base). Calls that set a mode
 *     are guarded as virtiofsd's are (add_mode_guards): no setuid or setgid file on a host
 *     volume. Its "ioctls" (VIRTIO_IOC_*) are answered in-process: no host ioctl.
 *   VMM (vmm/, utils/): the event manager's epoll and EventFds (base), timerfds of its
 *     devices, the vCPU threads (clone, base) kicked with signals (tgkill, base), named with
 *     prctl(PR_SET_NAME), pinned with sched_setaffinity; guest memory regions that a device
 *     shares are memfds (memfd_create); the balloon's free-page reporting madvises (base).
 *   vsock and TSI (devices/src/virtio/vsock/): the guest's AF_INET/AF_INET6 sockets become
 *     the worker's own (socket() gets those families only with --network, add_sockets),
 *     unix sockets for krun_add_vsock_port (base).
 * Not there: mount, chroot, pivot_root, ptrace, setns, unshare; io_uring, userfaultfd and
 * namespace flags on clone are refused (add_clone). execve stays (base), into a root that
 * holds no program but what HOTCELL_JAIL_EXTRA adds. */
static const char *const libkrun[] = {
	"setresuid",
	"setresgid",
	"capget",
	"capset",
	"syncfs",
	"fchdir",
	"timerfd_create",
	"timerfd_settime",
	"timerfd_gettime",
	"prctl",
	"sched_setaffinity",
	"memfd_create",
	"getdents",
};

/* ioctls every kind makes on its terminals and sockets: isatty() probes, FIONBIO. */
static const unsigned long base_ioctls[] = {TCGETS,   TIOCGWINSZ, FIONBIO,
					    FIONREAD, FIOCLEX,	  FIONCLEX};

/* The KVM ioctls a VMM makes on /dev/kvm, the VM fd and the vCPU fds (x86_64), from
 * Firecracker's and crosvm's filters and QEMU's accel/kvm/kvm-all.c + target/i386/kvm.c. TCG
 * never makes them, so no recording here can list them: each group says what needs it. */
static const unsigned long kvm_ioctls[] = {
	/* /dev/kvm: the API handshake, the VM, what the host CPU and KVM offer (CPUID and MSR
	 * lists for the guest's CPU model, the vCPU's shared run area). */
	KVM_GET_API_VERSION,
	KVM_CREATE_VM,
	KVM_CHECK_EXTENSION,
	KVM_GET_VCPU_MMAP_SIZE,
	KVM_GET_SUPPORTED_CPUID,
	KVM_GET_EMULATED_CPUID,
	KVM_GET_SUPPORTED_HV_CPUID, /* Hyper-V enlightenments (QEMU's hv-* flags) */
	KVM_GET_MSR_INDEX_LIST,
	KVM_GET_MSR_FEATURE_INDEX_LIST,
	KVM_X86_GET_MCE_CAP_SUPPORTED,
	/* The VM: its vCPUs, guest RAM slots (and the x86 TSS/identity pages below 4 GiB). */
	KVM_CREATE_VCPU,
	KVM_SET_USER_MEMORY_REGION,
	KVM_SET_TSS_ADDR,
	KVM_SET_IDENTITY_MAP_ADDR,
	KVM_SET_BOOT_CPU_ID,
	KVM_ENABLE_CAP,
	/* The in-kernel interrupt controllers and PIT (state read and written on snapshot and
	 * restore), interrupt injection and routing (legacy lines, MSI, irqfd). */
	KVM_CREATE_IRQCHIP,
	KVM_GET_IRQCHIP,
	KVM_SET_IRQCHIP,
	KVM_IRQ_LINE,
	KVM_IRQ_LINE_STATUS,
	KVM_CREATE_PIT2,
	KVM_GET_PIT2,
	KVM_SET_PIT2,
	KVM_IRQFD,
	KVM_SET_GSI_ROUTING,
	KVM_SIGNAL_MSI,
	/* Device doorbells: ioeventfd (virtio queue kicks, vhost-user), coalesced MMIO. */
	KVM_IOEVENTFD,
	KVM_REGISTER_COALESCED_MMIO,
	KVM_UNREGISTER_COALESCED_MMIO,
	/* Dirty page tracking: live migration and snapshots of a running VM. */
	KVM_GET_DIRTY_LOG,
	KVM_CLEAR_DIRTY_LOG,
	/* The VM's clock (kvmclock across snapshot and restore); KVM's device API (QEMU's
	 * kvm-vfio device and its probes, vCPU attributes such as the TSC offset); the PMU
	 * event filter (Firecracker, crosvm). */
	KVM_GET_CLOCK,
	KVM_SET_CLOCK,
	KVM_CREATE_DEVICE,
	KVM_SET_DEVICE_ATTR,
	KVM_GET_DEVICE_ATTR,
	KVM_HAS_DEVICE_ATTR,
	KVM_SET_PMU_EVENT_FILTER,
	/* A vCPU: running it, and the state saved and loaded on snapshot, restore and
	 * migration — registers, FPU/XSAVE, MSRs, CPUID, local APIC, events, debug registers,
	 * nested state (a guest that runs its own VMs), TSC rate. */
	KVM_RUN,
	KVM_SET_SIGNAL_MASK, /* the vCPU thread's kick signal, blocked outside KVM_RUN */
	KVM_GET_REGS,
	KVM_SET_REGS,
	KVM_GET_SREGS,
	KVM_SET_SREGS,
	KVM_GET_FPU,
	KVM_SET_FPU,
	KVM_GET_XSAVE,
	KVM_SET_XSAVE,
	KVM_GET_XCRS,
	KVM_SET_XCRS,
	KVM_GET_MSRS,
	KVM_SET_MSRS,
	KVM_SET_CPUID2,
	KVM_GET_CPUID2,
	KVM_GET_LAPIC,
	KVM_SET_LAPIC,
	KVM_GET_MP_STATE,
	KVM_SET_MP_STATE,
	KVM_GET_VCPU_EVENTS,
	KVM_SET_VCPU_EVENTS,
	KVM_GET_DEBUGREGS,
	KVM_SET_DEBUGREGS,
	KVM_GET_NESTED_STATE,
	KVM_SET_NESTED_STATE,
	KVM_SET_TSC_KHZ,
	KVM_GET_TSC_KHZ,
	KVM_KVMCLOCK_CTRL, /* tells the guest it was paused (no soft-lockup report after resume) */
	/* Machine checks forwarded into the guest (QEMU's MCE handling of host memory errors),
	 * NMIs and interrupts injected by hand (QEMU's "nmi" command, userspace irqchip). */
	KVM_X86_SETUP_MCE,
	KVM_X86_SET_MCE,
	KVM_NMI,
	KVM_INTERRUPT,
	/* Debugging a guest: gdbstub breakpoints and address translation (QEMU's -s, "x"). */
	KVM_TRANSLATE,
	KVM_SET_GUEST_DEBUG,
};

/* ioctls QEMU makes itself under TCG (recorded): none beyond the base ones. With a TAP handed
 * over, the net driver's TUNGETIFF / TUNSETOFFLOAD / TUNSETVNETHDRSZ. */
static const unsigned long tap_ioctls[] = {TUNGETIFF,	 TUNSETOFFLOAD,	  TUNSETVNETHDRSZ,
					   TUNSETSNDBUF, TUNGETVNETHDRSZ, TUNGETFEATURES};

/* The calls that set a file's mode, with the index of their mode argument and of their open
 * flags (-1: the mode always applies). virtiofsd gets them only for a mode without the setuid
 * and setgid bits: it runs as uid 0 and writes a guest's chmod 4755 or creat(..., 06755)
 * straight onto the host, where a setuid-root (or setuid-anyone, after a chown) file in a
 * read-write volume would be a way into the host for whoever can reach that directory. */
static const struct mode_call {
	const char *name;
	int mode, flags;
} mode_calls[] = {
	{"chmod", 1, -1},     {"fchmod", 1, -1}, {"fchmodat", 2, -1},
	{"fchmodat2", 2, -1}, {"creat", 1, -1},	 {"mknod", 1, -1},
	{"mknodat", 2, -1},   {"open", 2, 1},	 {"openat", 3, 2},
};

static bool is_mode_call(const char *name)
{
	for (size_t i = 0; i < HC_ARRAY_SIZE(mode_calls); i++)
		if (hc_streq(mode_calls[i].name, name))
			return true;
	return false;
}

/* EPERM for a mode with S_ISUID or S_ISGID (with O_CREAT or O_TMPFILE where the call opens),
 * allowed otherwise. The allowing and refusing conditions are disjoint, so the order
 * libseccomp tests them in does not matter. */
static int add_mode_guards(scmp_filter_ctx ctx, struct hc_error *err)
{
	const scmp_datum_t bits[] = {S_ISUID, S_ISGID};
	/* O_TMPFILE without the O_DIRECTORY it includes: a plain directory open is no create. */
	const scmp_datum_t tmpfile = O_TMPFILE & ~O_DIRECTORY;
	const scmp_datum_t creating[] = {O_CREAT, tmpfile};
	const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);

	for (size_t i = 0; i < HC_ARRAY_SIZE(mode_calls); i++) {
		const struct mode_call *c = &mode_calls[i];
		int nr = seccomp_syscall_resolve_name(c->name);
		if (nr == __NR_SCMP_ERROR)
			continue;
		unsigned m = (unsigned)c->mode, f = (unsigned)c->flags;
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
					 SCMP_CMP(m, SCMP_CMP_MASKED_EQ, S_ISUID | S_ISGID, 0));
		if (r >= 0 && c->flags >= 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
					     SCMP_CMP(f, SCMP_CMP_MASKED_EQ, O_CREAT | tmpfile, 0));
		for (size_t b = 0; r >= 0 && b < HC_ARRAY_SIZE(bits); b++) {
			if (c->flags < 0) {
				r = seccomp_rule_add(
					ctx, eperm, nr, 1,
					SCMP_CMP(m, SCMP_CMP_MASKED_EQ, bits[b], bits[b]));
				continue;
			}
			for (size_t k = 0; r >= 0 && k < HC_ARRAY_SIZE(creating); k++)
				r = seccomp_rule_add(
					ctx, eperm, nr, 2,
					SCMP_CMP(m, SCMP_CMP_MASKED_EQ, bits[b], bits[b]),
					SCMP_CMP(f, SCMP_CMP_MASKED_EQ, creating[k], creating[k]));
		}
		if (r < 0)
			return hc_error_errno(err, r, "seccomp: guard the mode of %s", c->name);
	}
	return 0;
}

static int add_names(scmp_filter_ctx ctx, const char *const *names, size_t n, bool guard_modes,
		     struct hc_error *err)
{
	for (size_t i = 0; i < n; i++) {
		if (guard_modes && is_mode_call(names[i]))
			continue; /* add_mode_guards */
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (r < 0 && r != -EEXIST)
			return hc_error_errno(err, r, "seccomp: allow %s", names[i]);
	}
	return 0;
}

static int add_ioctls(scmp_filter_ctx ctx, const unsigned long *cmds, size_t n,
		      struct hc_error *err)
{
	for (size_t i = 0; i < n; i++) {
		/* The request is an int in many callers (QEMU's kvm_ioctl): compare the low 32
		 * bits, as the kernel does. */
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					 SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL,
						 (scmp_datum_t)(cmds[i] & 0xffffffffUL)));
		if (r < 0 && r != -EEXIST)
			return hc_error_errno(err, r, "seccomp: allow ioctl 0x%lx", cmds[i]);
	}
	return 0;
}

#define ADD(ctx, list) add_names(ctx, list, HC_ARRAY_SIZE(list), guard_modes, err)
#define ADD_IOCTLS(ctx, list) add_ioctls(ctx, list, HC_ARRAY_SIZE(list), err)

static int add_sockets(scmp_filter_ctx ctx, bool inet, struct hc_error *err)
{
	int fams[] = {AF_UNIX, AF_INET, AF_INET6};
	for (size_t i = 0; i < (inet ? 3u : 1u); i++) {
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
					 SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fams[i], 0));
		if (r < 0)
			return hc_error_errno(err, r, "seccomp: allow socket family %d", fams[i]);
	}
	return 0;
}

/* Threads (clone with CLONE_THREAD or a plain fork) but never a new namespace: an unprivileged
 * user namespace would give the process back capabilities over its own little world. */
static int add_clone(scmp_filter_ctx ctx, struct hc_error *err)
{
	const scmp_datum_t ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
				CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
	int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				 SCMP_A0(SCMP_CMP_MASKED_EQ, ns, 0));
	if (r >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* userfaultfd is only for postcopy migration, which hotcell does not use; libvhost-user
	 * (virtiofsd) probes it at connect time and goes on without. */
	if (r >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(userfaultfd), 0);
	/* io_uring is a kernel attack surface of its own; QEMU and glib probe it and fall back. */
	if (r >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_setup), 0);
	if (r < 0)
		return hc_error_errno(err, r, "seccomp: clone");
	return 0;
}

/* virtiofsd's mount(2): binds, moves, remounts and propagation changes are its own sandbox's
 * (QEMU 7.2's setup_namespaces and setup_mounts, while it still holds CAP_SYS_ADMIN); a new
 * file system is only ever its `mount("proc", "/proc", "proc", ...)`, and that one answers 0
 * without being made. A fresh proc would be read-write, and as uid 0 virtiofsd may write
 * any sysctl or /proc/sysrq-trigger through the fd it keeps of it (proc_self_task, opened
 * before it binds /proc/self/fd over /proc): this way it keeps the jail's read-only /proc,
 * of its PID namespace's parent, where /proc/self is itself all the same. */
static int add_virtiofsd_mount(scmp_filter_ctx ctx, struct hc_error *err)
{
	const scmp_datum_t not_new[] = {MS_BIND,    MS_MOVE,  MS_REMOUNT,   MS_SHARED,
					MS_PRIVATE, MS_SLAVE, MS_UNBINDABLE};
	scmp_datum_t any = 0;
	int r = 0;

	for (size_t i = 0; r >= 0 && i < HC_ARRAY_SIZE(not_new); i++) {
		any |= not_new[i];
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mount), 1,
				     SCMP_A3(SCMP_CMP_MASKED_EQ, not_new[i], not_new[i]));
	}
	if (r >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), SCMP_SYS(mount), 1,
				     SCMP_A3(SCMP_CMP_MASKED_EQ, any, 0));
	if (r < 0)
		return hc_error_errno(err, r, "seccomp: virtiofsd's mount");
	return 0;
}

static bool log_mode(void)
{
	const char *v = getenv("HOTCELL_SECCOMP");
	return v && hc_streq(v, "log");
}

int hc_jail_seccomp_build(enum hc_jail_kind kind, enum hc_accel accel, bool network, bool tap,
			  struct sock_fprog *ret, struct hc_error *err)
{
	scmp_filter_ctx ctx = seccomp_init(log_mode() ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	/* The uid-0 file servers write a guest's modes onto the host. */
	const bool guard_modes = kind == HC_JAIL_VIRTIOFSD || kind == HC_JAIL_LIBKRUN;
	int r;

	if (!ctx)
		return hc_error_set(err, -ENOMEM, "seccomp: init");
	/* The filter is loaded by the child with no_new_privs set; libseccomp must not set it
	 * itself (it does not load here anyway). */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r >= 0)
		r = ADD(ctx, base);
	if (r >= 0 && guard_modes)
		r = add_mode_guards(ctx, err);
	if (r >= 0)
		r = add_sockets(ctx, network, err);
	if (r >= 0)
		r = add_clone(ctx, err);
	if (r >= 0)
		r = ADD_IOCTLS(ctx, base_ioctls);
	if (r >= 0) {
		switch (kind) {
		case HC_JAIL_QEMU:
			r = ADD(ctx, qemu);
			break;
		case HC_JAIL_VSOCKD:
			r = ADD(ctx, vsockd);
			break;
		case HC_JAIL_VIRTIOFSD:
			r = ADD(ctx, virtiofsd);
			if (r >= 0)
				r = ADD(ctx, fs_server);
			if (r >= 0)
				r = add_virtiofsd_mount(ctx, err);
			break;
		case HC_JAIL_CLOUD_HYPERVISOR:
			r = ADD(ctx, kvm_vmm);
			break;
		case HC_JAIL_LIBKRUN:
			r = ADD(ctx, libkrun);
			if (r >= 0)
				r = ADD(ctx, fs_server);
			break;
		case HC_JAIL_N_KINDS:
			r = hc_error_set(err, -EINVAL, "seccomp: unknown process kind");
			break;
		}
	}
	if (r >= 0 && ((accel == HC_ACCEL_KVM && kind == HC_JAIL_QEMU) ||
		       kind == HC_JAIL_CLOUD_HYPERVISOR || kind == HC_JAIL_LIBKRUN))
		r = ADD_IOCTLS(ctx, kvm_ioctls);
	if (r >= 0 && (network || tap))
		r = ADD_IOCTLS(ctx, tap_ioctls);
	if (r < 0) {
		seccomp_release(ctx);
		return r;
	}

	/* Exported through a memfd: libseccomp 2.5 has no export to memory. */
	int fd = memfd_create("hotcell-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		seccomp_release(ctx);
		return hc_error_errno(err, -errno, "seccomp: memfd");
	}
	r = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	if (r < 0) {
		close(fd);
		return hc_error_errno(err, r, "seccomp: export");
	}
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
	    size / (off_t)sizeof(struct sock_filter) > 65535) {
		close(fd);
		return hc_error_set(err, -EIO, "seccomp: exported filter of %lld bytes",
				    (long long)size);
	}
	struct sock_filter *prog = malloc((size_t)size);
	if (!prog || pread(fd, prog, (size_t)size, 0) != size) {
		free(prog);
		close(fd);
		return hc_error_set(err, -EIO, "seccomp: read back the filter");
	}
	close(fd);
	ret->filter = prog;
	ret->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
	return 0;
}

int hc_jail_seccomp_size(enum hc_jail_kind kind, enum hc_accel accel, struct hc_error *err)
{
	struct sock_fprog p;
	int r = hc_jail_seccomp_build(kind, accel, false, false, &p, err);
	if (r < 0)
		return r;
	free(p.filter);
	return p.len;
}
