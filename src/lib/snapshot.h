/* SPDX-License-Identifier: MIT */
/*
 * Snapshot, restore and fork of a VM (DESIGN.md §9), on top of the backends' snapshot and
 * restore hooks (vmm.h). What the supervisor (src/vmd) and warm start build on.
 *
 * A snapshot directory (docs/snapshots.md) holds the backend's files (QEMU: qemu-state and
 * memory; Firecracker: vmstate and memory; Cloud Hypervisor: its snapshot files) and
 * snapshot.json: the format version, the backend, the image and its digest, and the resolved
 * VM spec with the identity (size, mtime) of the kernel, initramfs and rootfs disk it booted.
 * That is enough to restore it on this host; a restore checks it all first and never writes
 * to the directory.
 *
 * Every restored (or forked) guest is sent, before anything else, a RESEED: a fresh seed from
 * getrandom() and the host's CLOCK_REALTIME, so that two VMs restored from one snapshot never
 * share their random numbers and a restored guest's clock is not behind.
 */
#pragma once

#include <jansson.h>

#include "core/path.h"
#include "lib/net.h"
#include "proto/proto.h"
#include "vmm/vmm.h"

#define HC_LIB_SNAPSHOT_FORMAT 1
#define HC_LIB_SNAPSHOT_META "snapshot.json"

/* What snapshot.json says beyond the spec: where the VM came from. */
struct hc_lib_snapshot_origin {
	const char *image;  /* normalised image reference, or NULL/"" (--rootfs) */
	const char *digest; /* manifest digest, or NULL/"" */
	/* The options the VM was created with (a JSON object, e.g. the supervisor's run
	 * options: exec defaults), kept as "options" for the restored VM; NULL: none. */
	json_t *options;
};

/* Saves vm into dir (created when missing; an existing snapshot there is replaced, any other
 * non-empty directory is refused). Checks first that the VM can be snapshotted at all
 * (hc_vm_snapshot_check), then pauses it unless was_paused, saves, writes snapshot.json, and
 * resumes it unless leave_paused or was_paused. On failure the VM is resumed as it was, and a
 * directory this call created is removed. *ret_ms (may be NULL): how long the VM was paused
 * for the save. */
int hc_lib_snapshot_save(struct hc_vm *vm, const char *dir,
			 const struct hc_lib_snapshot_origin *origin, bool was_paused,
			 bool leave_paused, double *ret_ms, struct hc_error *err) _must_check_;

/* An opened, verified snapshot: the spec's strings point into it, so it must outlive every
 * VM restored from it. */
struct hc_lib_snapshot {
	char dir[HC_PATH_MAX]; /* absolute */
	const struct hc_vmm_ops *ops;
	struct hc_vm_spec spec;
	char image[512];
	char digest[80];
	char created[40];
	json_t *meta;		   /* snapshot.json, which the spec's strings point into */
	json_t *options;	   /* the origin\'s options (borrowed from meta), or NULL */
	struct hc_volume *volumes; /* spec.volumes */
	struct hc_port *ports;	   /* spec.ports */
};

/* Reads and verifies dir: a directory with a snapshot.json of this format, a known backend
 * that can restore, the kernel, initramfs and disk still there and unchanged. A clear error
 * (kind "usage") for a missing, corrupt or incompatible snapshot. Reads only. */
int hc_lib_snapshot_open(const char *dir, struct hc_lib_snapshot **ret,
			 struct hc_error *err) _must_check_;
void hc_lib_snapshot_close(struct hc_lib_snapshot *s);

/* A new VM (new runtime dir) restored from s and running, its agent channel connected (the
 * fd is the caller's: *ret_agent_fd) and RESEED applied by the guest before this returns.
 * *ret_ms (may be NULL): restore time, VMM start to RESEED acknowledged. */
int hc_lib_snapshot_restore(const struct hc_lib_snapshot *s, struct hc_vm **ret_vm,
			    int *ret_agent_fd, double *ret_ms, struct hc_error *err) _must_check_;

/* A migration's destination (docs/migration.md): restores s with the VM left paused
 * (backends with HC_CAP_RESTORE_PAUSED), no RESEED yet: the caller resumes the VM and sends a
 * RESEED (the clock only, unless a reseed was asked) once the source has stopped for good.
 * *ret_agent_fd (the caller's): the agent channel when it is connected already (QEMU's serial
 * channel), else -1: Firecracker and Cloud Hypervisor reconnect vsock on the resume, and
 * hc_lib_snapshot_agent_connect after hc_vm_resume gets the channel. */
int hc_lib_snapshot_restore_paused(const struct hc_lib_snapshot *s, struct hc_vm **ret_vm,
				   int *ret_agent_fd, struct hc_error *err) _must_check_;
/* The agent channel of a resumed VM: the one the backend reconnected, or the guest's own
 * connection to agent_listen_fd, within timeout_ms (<= 0: 60 s). The fd is the caller's. */
int hc_lib_snapshot_agent_connect(struct hc_vm *vm, int timeout_ms,
				  struct hc_error *err) _must_check_;

/* Writes dir/snapshot.json from meta (another host's snapshot.json, as a migration brings
 * it; changed in place): the spec's kernel, initrd and rootfs disk become the given paths of
 * this host (NULL: unchanged) and "files" identifies them as a save would, so that
 * hc_lib_snapshot_open checks them. */
int hc_lib_snapshot_relocate(const char *dir, json_t *meta, const char *kernel, const char *initrd,
			     const char *disk, struct hc_error *err) _must_check_;

/* What a restore may set beyond the snapshot's spec (a warm run's, docs/warm-start.md). */
struct hc_lib_restore_as {
	const char *hostname;  /* NULL: the snapshot's; else sent as HOSTNAME before RESEED */
	int cancel_fd;	       /* the spec's cancel_fd (vmm.h) for this restore; -1: none */
	int reseed_timeout_ms; /* 0: 10 s */
	bool no_jail;	       /* --no-jail: the spec's (not part of a snapshot) */
	/* A snapshot of a VM with a network (spec.network inet|full on a backend with a TAP) is
	 * restored onto a network of its own (docs/network.md, "Restored and forked VMs"): a new
	 * TAP, /30, MAC, nftables chains, dnsmasq and -p forwarder made into *net (the caller's,
	 * released with hc_lib_net_detach or hc_lib_boot_teardown; left detached on failure)
	 * from run_opts' network options (--allow-host, -p; NULL: none), the mode being the
	 * snapshot's. The VMM gets the new TAP (QEMU: the same netdev id with a new fd;
	 * Firecracker: network_overrides; Cloud Hypervisor: net_fds) and after RESEED the guest
	 * moves eth0 to it (hc_lib_snapshot_renet) before anything else runs. Such a snapshot
	 * without net is refused. */
	const struct hc_run_opts *run_opts;
	struct hc_lib_net *net;
};
/* Re-identifies a restored guest's network: sends NETCONF (docs/protocol.md) with ln's
 * address, gateway, resolver, MTU and MAC on a connected agent channel, after RESEED, and
 * waits up to timeout_ms for DONE, as hc_lib_snapshot_reseed does. 0 at once when ln has no
 * network attached. hc_lib_snapshot_restore_as calls it (as->net); a caller that restores by
 * other means calls it after its RESEED. */
int hc_lib_snapshot_renet(int agent_fd, const struct hc_lib_net *ln, int timeout_ms,
			  struct hc_error *err) _must_check_;

/* hc_lib_snapshot_restore with as (may be NULL). */
int hc_lib_snapshot_restore_as(const struct hc_lib_snapshot *s, const struct hc_lib_restore_as *as,
			       struct hc_vm **ret_vm, int *ret_agent_fd, double *ret_ms,
			       struct hc_error *err) _must_check_;

/* Writes all of data to the agent channel fd (blocking or not) by deadline (hc_clock_ms()). */
int hc_lib_snapshot_write_all(int fd, const void *data, size_t len, double deadline,
			      struct hc_error *err) _must_check_;
/* Reads exactly one whole frame from the agent channel fd (blocking or not) into buf
 * (HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD bytes), by deadline (hc_clock_ms()), nothing
 * after it: *f points into buf. */
int hc_lib_snapshot_read_frame(int fd, uint8_t *buf, double deadline, struct hc_proto_frame *f,
			       struct hc_error *err) _must_check_;

/* Sends RESEED (HC_PROTO_SEED_MIN.. bytes from getrandom, CLOCK_REALTIME) on a connected agent
 * channel and waits up to timeout_ms for the guest's DONE, reading exactly frame by frame so
 * nothing after DONE is consumed. Frames of streams the host no longer knows (output of
 * commands that ran at snapshot time) are skipped. */
int hc_lib_snapshot_reseed(int agent_fd, int timeout_ms, struct hc_error *err) _must_check_;
/* The same, with a HOSTNAME frame (when hostname is not NULL) before the RESEED, both
 * acknowledged before this returns. */
int hc_lib_snapshot_reseed_as(int agent_fd, int timeout_ms, const char *hostname,
			      struct hc_error *err) _must_check_;

/* A fork's snapshot: into a fresh private temp dir (on /dev/shm when there is one: the
 * restored VMs then map its memory from RAM), path in dir[HC_PATH_MAX]. Restore it N times
 * and remove it with hc_path_rm_rf once they run: QEMU maps the memory file copy-on-write,
 * and a mapping outlives the file's name, so nothing needs to stay on disk for the forks. */
int hc_lib_snapshot_fork_save(struct hc_vm *vm, const struct hc_lib_snapshot_origin *origin,
			      bool was_paused, char *dir, double *ret_ms,
			      struct hc_error *err) _must_check_;

/* The spec as JSON (snapshot.json's "spec"; the supervisor's vm.json may use it too), and
 * back: parse fills spec with strings pointing into j (which must outlive it) and allocates
 * *ret_volumes / *ret_ports (free them). */
json_t *hc_lib_snapshot_spec_format(const struct hc_vm_spec *spec);
int hc_lib_snapshot_spec_parse(json_t *j, struct hc_vm_spec *spec, struct hc_volume **ret_volumes,
			       struct hc_port **ret_ports, struct hc_error *err) _must_check_;
