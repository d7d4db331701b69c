/* SPDX-License-Identifier: MIT */
/* The Firecracker backend (firecracker.c). */
#pragma once

#include "vmm/vmm.h"

extern const struct hc_vmm_ops hc_vmm_firecracker_ops;
