/* SPDX-License-Identifier: MIT */
/*
 * Booting a VM up to the guest's HELLO, and ending it: the part shared by the one-command run
 * (src/lib/run.c) and the per-VM supervisor (src/vmd). prepare does everything that can fail
 * cheaply before anything starts (image, initramfs, backend choice, rootfs); start starts the
 * VMM; hello waits for the agent; teardown ends the VM from the host and releases everything.
 */
#pragma once

#include "lib/image.h"
#include "lib/net.h"
#include "proto/proto.h"
#include "vmm/vmm.h"

struct hc_lib_boot {
	struct hc_lib_image image;
	struct hc_vm_spec spec; /* points into image, kernel, initrd and the run options */
	const struct hc_vmm_ops *ops;
	char kernel[HC_PATH_MAX];
	char initrd[HC_PATH_MAX];
	struct hc_vm *vm;
	double t_rootfs_ms;
	const struct hc_run_opts *o; /* prepare's */
	struct hc_lib_net net;	     /* --network inet|full: made by start, freed by teardown */
	char cmdline[1536]; /* spec.cmdline: debug, --rootfs-rw, --hostname, --add-host, --tmpfs,
			       --dns */
	/* Set before prepare: where the run options leave the rootfs mode and the channel to
	 * hotcell (auto), pick ones the backend can snapshot (a warm run's template). */
	bool snapshot_modes;
};

#define HC_LIB_BOOT_INIT                                                                           \
	{                                                                                          \
		.image = HC_LIB_IMAGE_INIT, .vm = NULL, .net = HC_LIB_NET_INIT                     \
	}

/* The spec from the run options, the image resolved and its rootfs prepared (held under the
 * image's shared lock until teardown), the backend chosen and probed. o must outlive b. */
int hc_lib_boot_prepare(struct hc_store *store, const struct hc_run_opts *o, struct hc_lib_boot *b,
			struct hc_error *err) _must_check_;
/* Sets up the VM's network (src/net, docs/network.md), then starts the VMM (hc_vm_new +
 * hc_vm_start). */
int hc_lib_boot_start(struct hc_lib_boot *b, struct hc_error *err) _must_check_;
/* The agent channel's fd, connected: the backend's (agent_fd, handed over) or the first
 * connection on its listening socket (accepted by the spec's boot timeout, counted from
 * deadline_ms - boot timeout; cancel_fd >= 0 readable: -ECANCELED). Non-blocking. */
int hc_lib_boot_accept(struct hc_lib_boot *b, double deadline_ms, int cancel_fd, int *ret_agent,
		       struct hc_error *err) _must_check_;
/* Waits while booting until fd has one of events (returned in *ret_revents): the boot
 * deadline (-ETIMEDOUT, with the console's tail), the VM's death (hc_lib_boot_failure) and
 * cancel_fd (>= 0 readable: -ECANCELED) end the wait. The one boot-time wait of hc_run's
 * accept and the supervisor's wait for HELLO. */
int hc_lib_boot_wait(struct hc_lib_boot *b, double deadline_ms, int fd, short events, int cancel_fd,
		     short *ret_revents, struct hc_error *err) _must_check_;
/* The error of a VM that failed while booting (code, with what as the message when the VM
 * itself says nothing), with the console's tail: waits up to a second for a dying VMM to
 * finish so its state says why. Returns err->code. */
int hc_lib_boot_failure(struct hc_lib_boot *b, int code, const char *what, struct hc_error *err);
/* Ends the VM from the host (a SHUTDOWN frame first when agent >= 0, unless hard), removes its
 * runtime dir, tears its network down and releases the image. Safe on a never-prepared b; b can be
 * prepared again. */
void hc_lib_boot_teardown(struct hc_lib_boot *b, int agent, bool hard);
