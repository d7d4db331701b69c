/* SPDX-License-Identifier: MIT */
/*
 * Where the guest's files are: the kernel and the initramfs holding hotcell-init.
 * Search order, first hit wins:
 *   kernel:    --kernel PATH, $HOTCELL_KERNEL (both "user" kernels, trusted everywhere), then
 *              the build tree beside the executable (<exe>/../kernel/), then the installed
 *              copy (<exe>/../lib/hotcell/, i.e. $(PREFIX)/lib/hotcell/). For QEMU on x86-64
 *              the project's vmlinux comes first when it has a PVH entry (no decompression
 *              in the guest: ~0.3 s less under TCG), else its bzImage.
 *   initramfs: $HOTCELL_INITRAMFS, <exe>/../initramfs.cpio, <exe>/../lib/hotcell/.
 *   supervisor (hotcell-vmd): $HOTCELL_VMD, <exe>/../bin/, <exe>/../lib/hotcell/.
 */
#pragma once

#include "core/error.h"

enum hc_kernel_format {
	HC_KERNEL_BZIMAGE, /* QEMU: bzImage (or a PVH vmlinux) */
	HC_KERNEL_ELF,	   /* Firecracker, Cloud Hypervisor: ELF vmlinux */
};

/* Finds the kernel. user is --kernel (NULL when not given). *ret_is_user tells whether the
 * kernel came from --kernel/HOTCELL_KERNEL. -ENOENT with the places searched. */
int hc_lib_kernel_find(const char *user, enum hc_kernel_format fmt, char *buf, size_t n,
		       bool *ret_is_user, struct hc_error *err) _must_check_;
int hc_lib_initramfs_find(char *buf, size_t n, struct hc_error *err) _must_check_;
/* True when path starts with the ELF magic. */
bool hc_lib_kernel_is_elf(const char *path);
/* The per-VM supervisor program, hotcell-vmd (src/vmd). */
int hc_lib_vmd_find(char *buf, size_t n, struct hc_error *err) _must_check_;
