/* SPDX-License-Identifier: MIT */
/*
 * The backend interface (DESIGN.md §3). One const struct hc_vmm_ops per backend, listed in
 * hc_vmm_backends[] (vmm.c) and looked up by name. Callers never call vm->ops->x directly:
 * the hc_vm_* wrappers check the capability and return -EOPNOTSUPP with
 * "backend 'X' does not support Y" — never a crash, never a silent no-op.
 */
#pragma once

#include <sys/types.h>

#include "core/child.h"
#include "core/error.h"
#include "core/path.h"

enum {
	HC_CAP_SHARED_DIRS = 1u << 0,
	HC_CAP_SNAPSHOT = 1u << 1,
	HC_CAP_RESTORE = 1u << 2,
	HC_CAP_GPU = 1u << 3,
	HC_CAP_ROOTFS_DIR = 1u << 4,   /* rootfs over virtio-fs */
	HC_CAP_ROOTFS_BLOCK = 1u << 5, /* rootfs as an ext4 block device */
	HC_CAP_CHANNEL_SERIAL = 1u << 6,
	HC_CAP_CHANNEL_VSOCK = 1u << 7,
	HC_CAP_NETWORK = 1u << 8,
	HC_CAP_PAUSE = 1u << 9,
	HC_CAP_TCG = 1u << 10, /* can run without KVM */
	/* Snapshots and restores only with a block rootfs and no shared directories (virtiofsd's
	 * state is not part of a snapshot). */
	HC_CAP_SNAPSHOT_NEEDS_BLOCK = 1u << 11,
	/* Snapshots and restores only with the serial agent channel (QEMU 7.2 cannot migrate
	 * vhost-user-vsock). */
	HC_CAP_SNAPSHOT_NEEDS_SERIAL = 1u << 12,
	/* Networking on a host TAP (src/net): the egress filter, --allow-host and -p are the
	 * host's. Without it (libkrun's TSI) networking is the VMM's own. */
	HC_CAP_NET_TAP = 1u << 13,
	/* restore() can leave the restored VM paused (hc_vm.restore_paused) with its agent
	 * channel already connected (agent_fd): a migration's destination resumes it only once
	 * the source has stopped for good (docs/migration.md). */
	HC_CAP_RESTORE_PAUSED = 1u << 14,
};

struct hc_vm_spec {
	unsigned cpus;
	unsigned memory_mib;
	const char *kernel;  /* bzImage/PVH vmlinux (qemu) or ELF vmlinux */
	bool kernel_is_user; /* --kernel / HOTCELL_KERNEL: trusted everywhere */
	const char *initrd;  /* the initramfs holding hotcell-init */
	/* Extra kernel command-line words (e.g. "hotcell.debug=1"). The backend itself adds the
	 * boot contract's hotcell.root / hotcell.channel / hotcell.vol keys from the fields
	 * below, plus its console and reboot/panic words. */
	const char *cmdline;
	enum hc_accel accel; /* resolved by the caller: KVM or TCG (QEMU), KVM otherwise */
	enum hc_rootfs_mode rootfs_mode; /* resolved: DIR or BLOCK */
	const char *rootfs_dir;		 /* DIR: the cached tree, served read-only */
	const char *rootfs_disk;	 /* BLOCK: the cached ext4 image, attached read-only */
	bool rootfs_rw;		 /* DIR: rootfs_dir shared read-write, mounted as the root (QEMU) */
	enum hc_channel channel; /* resolved: SERIAL or VSOCK */
	const struct hc_volume *volumes;
	size_t n_volumes;
	const char *const *devices; /* VFIO PCI addresses */
	size_t n_devices;
	bool jailer;
	bool no_jail; /* --no-jail: VMM-side processes run unjailed (src/jail) */
	int boot_timeout_ms;
	/* --network and -p (libkrun: TSI and krun_set_port_map); backends without networking
	 * refuse anything but HC_NET_NONE through their caps. */
	enum hc_network network;
	const struct hc_port *ports;
	size_t n_ports;
	/* The caller's cancel fd (hc_run_opts.cancel_fd; -1 or 0: none, so a zeroed spec
	 * watches nothing — stdin is never a cancel fd): every wait of a start (the VMM's
	 * sockets, QMP, REST calls, helpers) also watches it and gives up with -ECANCELED when
	 * it becomes readable. It is never read here: the caller reads it. Read it through
	 * hc_vm_cancel_fd(). */
	int cancel_fd;
	/* A NIC on a TAP the caller made (src/net, --network inet|full on QEMU, Firecracker and
	 * Cloud Hypervisor); the guest's keys for it are in cmdline. net_tap NULL: no NIC. */
	const char *net_tap; /* the TAP's name (Firecracker host_dev_name, Cloud Hypervisor tap) */
	int net_tap_fd;	     /* an fd on it, when net_tap is set: QEMU's -netdev tap,fd=N */
	const char *net_mac; /* the guest's MAC, "02:68:63:xx:xx:xx" */
	const char *net_host_ip; /* the TAP's own address (the guest's gateway), a /30 */
};

struct hc_vmm_ops;

struct hc_vm {
	const struct hc_vmm_ops *ops;
	struct hc_vm_spec spec;
	char run_dir[HC_PATH_MAX];     /* private runtime dir: sockets, console log; removed */
	char console_log[HC_PATH_MAX]; /* the guest console; last lines go into VM errors */
	/* Set by start(): the agent channel. Either already connected (agent_fd >= 0) or a
	 * listening socket the guest will connect to (agent_listen_fd >= 0). */
	int agent_fd;
	int agent_listen_fd;
	/* Set by start(): an fd that becomes readable when the VM died or stopped (e.g. the VMM's
	 * pidfd, or a QMP socket with a STOP event pending); -1 when none. */
	int death_fd;
	/* agent_fd, agent_listen_fd and death_fd belong to the VM: destroy() closes them (an fd
	 * accepted from agent_listen_fd belongs to the caller). The spec's strings are not
	 * copied: they must outlive the VM. */
	void *priv;
	/* Set before hc_vm_restore (backends with HC_CAP_RESTORE_PAUSED): the restored VM stays
	 * paused until hc_vm_resume. */
	bool restore_paused;
	/* The console log's cap (hc_vm_console_trim): bytes kept, and how far holes reach. */
	off_t console_max;
	off_t console_trimmed;
	bool jailed; /* set by start(): its VMM-side processes run jailed */
};

struct hc_vmm_ops {
	const char *name;
	unsigned caps;
	/* Usable on this host? Says why not in err. Fills version/accel descriptions when
	 * non-NULL (for `hotcell doctor`). */
	int (*probe)(const struct hc_vm_spec *spec, char *version, size_t version_len,
		     struct hc_error *err);
	int (*start)(struct hc_vm *vm, struct hc_error *err);
	/* Called when death_fd is readable or after the agent channel broke: returns 0 while
	 * the VM is still running, or -errno with the reason (crashed, paused on an internal
	 * error, guest panic ...): -ESHUTDOWN when the VM ended normally (the guest rebooted),
	 * -EIO otherwise. The message does not include the console: the caller adds it once
	 * with hc_vm_error_add_console(). A spurious wake-up (an unrelated QMP event) is 0. */
	int (*check)(struct hc_vm *vm, struct hc_error *err);
	int (*pause)(struct hc_vm *vm, struct hc_error *err);
	int (*resume)(struct hc_vm *vm, struct hc_error *err);
	int (*snapshot)(struct hc_vm *vm, const char *dir, struct hc_error *err);
	int (*restore)(struct hc_vm *vm, const char *dir, struct hc_error *err);
	/* What a restore depends on beyond the spec, as one line (the VMM binary's path, size,
	 * mtime and inode; settings from the environment that change its command line): a
	 * snapshot taken under another identity may not restore (a warm run's template key,
	 * docs/warm-start.md). NULL: the backend keeps no templates. */
	int (*identity)(char *buf, size_t n, struct hc_error *err);
	/* Ends the VM from the host and releases everything: always safe, always complete. */
	void (*destroy)(struct hc_vm *vm);
};

extern const struct hc_vmm_ops *const hc_vmm_backends[];
extern const size_t hc_vmm_n_backends;

const struct hc_vmm_ops *hc_vmm_find(const char *name);

/* Checks the guest sides of the volumes before anything starts: absolute, no "." or ".."
 * component (the guest would resolve it against the image, not the path written), not "/"
 * (it would hide the image), not /dev, /proc, /sys, /hotcell or below (hotcell-init's own, which
 * are carried over the volumes' and cannot take a directory), each path once. -EINVAL with
 * "volume GUEST: why" (kind usage). */
int hc_vm_volumes_check(const struct hc_volume *vols, size_t n, struct hc_error *err) _must_check_;
/* The same rule for one guest path of another mount (--tmpfs): "WHAT PATH: the guest path
 * why". */
int hc_vm_guest_path_check(const char *what, const char *guest, struct hc_error *err) _must_check_;

/* The spec's cancel fd, or -1 when none. */
static inline int hc_vm_cancel_fd(const struct hc_vm_spec *spec)
{
	return spec && spec->cancel_fd > 0 ? spec->cancel_fd : -1;
}
/* True when the spec's cancel fd is readable (poll, no read). */
bool hc_vm_cancelled(const struct hc_vm_spec *spec);
/* err = "cancelled" (-ECANCELED); returns -ECANCELED. */
int hc_vm_cancel_error(struct hc_error *err);

/* Wrappers (vmm.c): capability checks + uniform error messages. */
int hc_vm_new(struct hc_vm **ret, const struct hc_vmm_ops *ops, const struct hc_vm_spec *spec,
	      struct hc_error *err) _must_check_;
int hc_vm_start(struct hc_vm *vm, struct hc_error *err) _must_check_;
int hc_vm_check(struct hc_vm *vm, struct hc_error *err);
int hc_vm_pause(struct hc_vm *vm, struct hc_error *err) _must_check_;
int hc_vm_resume(struct hc_vm *vm, struct hc_error *err) _must_check_;
/* Whether vm (its backend and spec) can be snapshotted at all: -EOPNOTSUPP with the reason
 * otherwise. hc_vm_snapshot and hc_vm_restore check it too; callers that pause first ask
 * before pausing. */
int hc_vm_snapshot_check(const struct hc_vm *vm, struct hc_error *err) _must_check_;
int hc_vm_snapshot(struct hc_vm *vm, const char *dir, struct hc_error *err) _must_check_;
int hc_vm_restore(struct hc_vm *vm, const char *dir, struct hc_error *err) _must_check_;
/* ops->identity, or -EOPNOTSUPP when the backend has none. */
int hc_vm_identity(const struct hc_vmm_ops *ops, char *buf, size_t n,
		   struct hc_error *err) _must_check_;
/* Destroys the VM, removes its runtime dir, frees it. NULL is fine. */
void hc_vm_free(struct hc_vm *vm);
/* Bounds the console log's disk (or RAM: /run is tmpfs) use, for every backend: the VMM keeps
 * appending to one file, and everything before its last console_max bytes (HOTCELL_CONSOLE_MAX,
 * bytes with an optional K/M/G suffix; default 4 MiB, at least 64 KiB) is turned into a hole
 * (fallocate PUNCH_HOLE): the file's apparent size grows, the space it uses does not, and its
 * tail, which the error messages and the panic detection read, is intact. Cheap when there is
 * nothing to do (one fstat): call it whenever the console grew. */
void hc_vm_console_trim(struct hc_vm *vm);
/* HOTCELL_CONSOLE_MAX parsed (the default when unset; -EINVAL for a bad value). */
int hc_vm_console_max(off_t *ret, struct hc_error *err) _must_check_;
/* Appends the last lines of the console log to err's message ("...; console: ..."). */
void hc_vm_error_add_console(struct hc_vm *vm, struct hc_error *err);
