/* SPDX-License-Identifier: MIT */
/* The libkrun double without krun_set_kernel (an optional symbol): only --kernel is refused. */
#define LKD_NO_SET_KERNEL 1
#include "libkrun-double.c"
