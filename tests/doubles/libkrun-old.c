/* SPDX-License-Identifier: MIT */
/* The libkrun double as a library older than 1.18: no TSI off switch
 * (krun_disable_implicit_vsock, krun_add_vsock). hotcell must refuse it, naming the symbol. */
#define LKD_NO_TSI_SWITCH 1
#include "libkrun-double.c"
