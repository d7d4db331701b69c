/* SPDX-License-Identifier: MIT */
/*
 * Finding a VMM's binary and checking a kernel's format: shared by the drivers of separate-binary
 * VMMs (Firecracker, Cloud Hypervisor).
 */
#pragma once

#include "core/error.h"

/* $env when it holds a path (it must then be an executable file), else name looked up on PATH
 * (a value without '/' is a switch, e.g. HOTCELL_FIRECRACKER_JAILER=1). -ENOENT with a message
 * naming both when neither gives an executable. */
int hc_binary_find(const char *env, const char *name, char *buf, size_t n,
		   struct hc_error *err) _must_check_;

/* 0 when kernel is an ELF file (an uncompressed vmlinux); -ENOEXEC with a message naming vmm
 * ("Cloud Hypervisor boots only ...") when it is not, -errno when it cannot be read. */
int hc_binary_check_elf_kernel(const char *kernel, const char *vmm,
			       struct hc_error *err) _must_check_;
