/* SPDX-License-Identifier: MIT */
/*
 * Where the guest's files are: the kernel and the initramfs holding hotcell-init.
 * The environment overrides come first; then each root in turn:
 *   1. <lib>/..: the directory above libhotcell.so as loaded (dladdr), so any program that
 *      embeds an installed library finds $(PREFIX)/lib/hotcell/, and one linked against the
 *      build tree's build/lib/libhotcell.so finds build/kernel/ and build/initramfs.cpio.
 *      Skipped when the library is linked statically into the program (hotcell does that).
 *   2. <exe>/..: the directory above the running executable (build/ for build/bin/hotcell,
 *      $(PREFIX) for an installed hotcell, hotcell-vmd or hotcell-runtime).
 * Under each root, first hit wins:
 *   kernel:    --kernel PATH, $HOTCELL_KERNEL (both "user" kernels, trusted everywhere), then
 *              <root>/kernel/ (a build tree), then <root>/lib/hotcell/ (an installed prefix),
 *              then <root>/../kernel/ (a nested build dir sharing the one kernel build). For
 *              QEMU on x86-64 the project's vmlinux comes first when it has a PVH entry (no
 *              decompression in the guest: ~0.3 s less under TCG), else its bzImage.
 *   initramfs: $HOTCELL_INITRAMFS, <root>/initramfs.cpio, <root>/lib/hotcell/initramfs.cpio.
 *   supervisor (hotcell-vmd): $HOTCELL_VMD, <root>/bin/, <root>/lib/hotcell/.
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
