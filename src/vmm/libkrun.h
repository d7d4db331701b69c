/* SPDX-License-Identifier: MIT */
/* The libkrun backend (libkrun.c): the embedded VMM, dlopen'ed, run in a forked worker. */
#pragma once

#include "vmm/vmm.h"

extern const struct hc_vmm_ops hc_vmm_libkrun_ops;

/* "libkrun.so.1.18.2" (or a path ending so) -> "1.18.2"; -EINVAL when the name carries no
 * three-part version. Exposed for tests. */
int hc_libkrun_version_from_name(const char *name, char *buf, size_t n) _must_check_;

/* The worker's exit status under libkrun's exit-code path, described for an error message
 * ("hotcell-init could not set up the guest (exit 70)"). Exposed for tests. */
void hc_libkrun_status_str(int wait_status, char *buf, size_t n);
