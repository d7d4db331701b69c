/* SPDX-License-Identifier: MIT */
/*
 * The one accelerator rule (DESIGN.md §3). `auto` is KVM when /dev/kvm is usable for the
 * kernel in hand, else TCG. On a PVM host (/sys/module/kvm_pvm: /dev/kvm runs only kernels
 * built with CONFIG_PVM_GUEST, a stock kernel hangs in early boot, FACTS.md) the project's
 * kernel only runs under TCG; a kernel the user names (--kernel / HOTCELL_KERNEL) is trusted.
 * QEMU is the only backend that can fall back to TCG; the KVM-only backends ask for
 * HC_ACCEL_KVM and get the refusal with the reason.
 */
#pragma once

#include "core/error.h"

struct hc_accel_host {
	bool kvm_usable;   /* /dev/kvm opens read-write and answers KVM_GET_API_VERSION */
	bool pvm;	   /* /sys/module/kvm_pvm exists */
	char kvm_why[160]; /* why /dev/kvm is not usable, when it is not */
};

/* Looks at this host (cheap: one open, one ioctl, one stat). */
void hc_accel_host_probe(struct hc_accel_host *host);

/* The rule itself, pure (unit-tested): resolves want (AUTO, KVM or TCG) for a kernel on a
 * host. On success *ret is KVM or TCG and why (may be NULL) says in one phrase why that
 * accelerator was chosen (for `hotcell doctor`). Fails with -ENODEV / -EOPNOTSUPP and a message
 * naming the reason when want cannot be honoured (KVM asked for but unusable or PVM with the
 * project kernel; TCG asked for and !tcg_ok). */
int hc_accel_decide(enum hc_accel want, const struct hc_accel_host *host, bool kernel_is_user,
		    bool tcg_ok, enum hc_accel *ret, char *why, size_t why_len,
		    struct hc_error *err) _must_check_;

/* hc_accel_host_probe + hc_accel_decide. */
int hc_accel_resolve(enum hc_accel want, bool kernel_is_user, bool tcg_ok, enum hc_accel *ret,
		     char *why, size_t why_len, struct hc_error *err) _must_check_;

/* "kvm", "tcg", "auto". */
const char *hc_accel_name(enum hc_accel accel);
