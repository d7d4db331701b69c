/* SPDX-License-Identifier: MIT */
/*
 * Finding a VMM's binary and checking a kernel's format: shared by the drivers of separate-binary
 * VMMs (Firecracker, Cloud Hypervisor); the kernel check by libkrun's too.
 */
#pragma once

#include "core/child.h"
#include "core/error.h"

struct hc_vm_spec;

/* $env when it holds a path (it must then be an executable file), else name looked up on PATH
 * (a value without '/' is a switch, e.g. HOTCELL_FIRECRACKER_JAILER=1). -ENOENT with a message
 * naming both when neither gives an executable. */
int hc_binary_find(const char *env, const char *name, char *buf, size_t n,
		   struct hc_error *err) _must_check_;

/* name looked up on PATH ("/usr/local/bin:/usr/bin:/bin" when unset): 0 with the first
 * executable regular file in buf, else -ENOENT, without a message (for callers with fallbacks of
 * their own). */
int hc_binary_which(const char *name, char *buf, size_t n) _must_check_;

/* 0 when kernel is an ELF file (an uncompressed vmlinux); -ENOEXEC with a message naming vmm
 * ("Cloud Hypervisor boots only ...") when it is not, -errno when it cannot be read. */
int hc_binary_check_elf_kernel(const char *kernel, const char *vmm,
			       struct hc_error *err) _must_check_;

/* "PATH size mtime_ns inode" of the executable at path (a VMM's identity, vmm.h): another
 * build or version of the binary is another file. */
int hc_binary_identity(const char *path, char *buf, size_t n, struct hc_error *err) _must_check_;

/* Runs "bin --version" (5 s, 4 KiB of output at most) and hands back its first line in *ret
 * (caller frees). A non-zero exit is an error. */
int hc_binary_version(const char *bin, char **ret, struct hc_error *err) _must_check_;

/* What a KVM-only VMM needs from the host and the spec, the binary aside (DESIGN.md §3, one
 * rule): a /dev/kvm that runs the kernel in hand, else "backend '<backend>' cannot run here:
 * ...; or use --backend qemu ..."; and spec->kernel, when set, an ELF vmlinux (vmm names the
 * VMM in that message). */
int hc_binary_check_host(const struct hc_vm_spec *spec, const char *backend, const char *vmm,
			 struct hc_error *err) _must_check_;

/* After a failed API request to the VMM process child: a dropped connection (no ": HTTP " in
 * err, see rest.h) usually means it is exiting right now, so its pidfd gets a moment. When it
 * has ended, appends " (<name> <how it ended>)" to err and returns true, so the caller adds
 * its logs. */
bool hc_binary_note_exit(struct hc_child *child, const char *name, struct hc_error *err);
