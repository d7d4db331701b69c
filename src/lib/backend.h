/* SPDX-License-Identifier: MIT */
/*
 * Which backend runs a VM (DESIGN.md §3 "--backend auto"): the named one, or the first usable
 * one in the order libkrun, cloud-hypervisor, firecracker, qemu that supports every feature the
 * run asks for. "Usable" covers the binary, the kernel (format per backend), the accelerator
 * rule (hc_accel_resolve) and the backend's own probe. `hotcell doctor` prints the same
 * reasoning through hc_lib_backend_report.
 */
#pragma once

#include "core/path.h"
#include "vmm/vmm.h"

extern const char *const hc_lib_backend_auto_order[];
extern const size_t hc_lib_backend_auto_n;

/* Fills the backend-dependent parts of spec (kernel, accel, rootfs mode, channel) from o and
 * probes. kernel is the caller's buffer that spec->kernel will point to. */
int hc_lib_backend_prepare(const struct hc_vmm_ops *ops, const struct hc_run_opts *o,
			   struct hc_vm_spec *spec, char *kernel, size_t kernel_n, char *accel_why,
			   size_t why_n, struct hc_error *err) _must_check_;
/* The named backend (o->backend), or the first usable one in the auto order. */
int hc_lib_backend_choose(const struct hc_run_opts *o, struct hc_vm_spec *spec, char *kernel,
			  size_t kernel_n, const struct hc_vmm_ops **ret,
			  struct hc_error *err) _must_check_;

struct hc_lib_backend_report {
	bool built_in; /* hotcell has a driver for it */
	bool found;    /* the VMM (binary or library) is on this host */
	char version[128];
	char kernel[HC_PATH_MAX]; /* the kernel it would boot, "" when none was found */
	bool kernel_is_user;
	bool accel_ok;
	enum hc_accel accel;
	char accel_why[160];
	bool usable;
	char why[768]; /* why not usable (or not found) */
};
/* What `hotcell doctor` prints for one backend, for a run with options o. */
void hc_lib_backend_report(const char *name, const struct hc_run_opts *o,
			   struct hc_lib_backend_report *ret);
