/* SPDX-License-Identifier: MIT */
/*
 * The QEMU driver's command-line builder, separate from the process handling so that unit
 * tests check the exact command line (tests/unit/test-vmm-qemu.c).
 */
#pragma once

#include "vmm/vmm.h"

/* What the command line refers to besides the spec: the binary, the files and sockets in the
 * VM's runtime dir, and the fd numbers QEMU inherits. */
struct hc_qemu_argv_in {
	const char *qemu;		 /* the binary */
	const char *console_log;	 /* the guest serial console goes here */
	int qmp_fd;			 /* QMP: QEMU's end of a connected socketpair */
	int agent_fd;			 /* SERIAL channel: QEMU's end of a connected socketpair */
	const char *rootfs_sock;	 /* DIR rootfs: the virtiofsd socket */
	const char *const *volume_socks; /* one virtiofsd socket per spec->volumes[i] */
	const char *vsock_sock;		 /* VSOCK channel: vhost-device-vsock's vhost-user socket */
	/* HC_QEMU_MICROVM (the default) or HC_QEMU_Q35: PCI devices and firmware (qboot when
	 * installed), for kernels without virtio-mmio (HOTCELL_QEMU_MACHINE=q35). */
	int machine;
	const char *bios; /* Q35: -bios (qboot), or NULL for QEMU's default SeaBIOS */
	bool incoming;	  /* restore: -incoming defer, the state comes through QMP */
	/* Guest RAM as a memory-backend-file on this path (NULL: QEMU's own RAM, or a memfd
	 * when a vhost-user device needs one). Shared (share=on: the host sees what the guest
	 * writes, so a snapshot can skip RAM with x-ignore-shared), or with mem_private a
	 * copy-on-write mapping of a snapshot's memory file (share=off: the file is never
	 * written, and every VM restored from it shares its pages). */
	const char *mem_path;
	bool mem_private;
	int tap_fd; /* spec->net_tap set: the fd number QEMU inherits for the TAP */
};

enum { HC_QEMU_MICROVM = 0, HC_QEMU_Q35 = 1 };

/* Builds the argv (NULL-terminated, malloc'd strings) for spec. -EINVAL with a message when the
 * spec cannot be expressed (a volume guest path with blanks or ':', an accelerator not
 * resolved, ...). */
int hc_qemu_argv_build(const struct hc_vm_spec *spec, const struct hc_qemu_argv_in *in,
		       char ***ret_argv, struct hc_error *err) _must_check_;
void hc_qemu_argv_free(char **argv);

/* The kernel command line: console, reboot/panic behaviour, the boot contract's keys
 * (docs/protocol.md: hotcell.root, hotcell.channel, hotcell.vol) and spec->cmdline. */
int hc_qemu_cmdline_build(const struct hc_vm_spec *spec, char **ret,
			  struct hc_error *err) _must_check_;

extern const struct hc_vmm_ops hc_vmm_qemu_ops;
