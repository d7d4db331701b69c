/* SPDX-License-Identifier: MIT */
/*
 * `hotcell doctor`: per backend, found or not, version, accelerator, kernel, and why (DESIGN.md
 * §3); then the --backend auto order and what it picks on this host.
 */
#include "cli/cli.h"
#include "lib/backend.h"
#include "vmm/accel.h"

static void print_backend(const char *name, const struct hc_lib_backend_report *b)
{
	printf("%s\n", name);
	if (!b->built_in) {
		printf("  found:       no (%s)\n", b->why);
		return;
	}
	if (!b->found) {
		printf("  found:       no\n  why:         %s\n", b->why);
		return;
	}
	printf("  found:       yes, %s\n", b->version[0] ? b->version : "version unknown");
	if (b->accel_ok && hc_startswith(b->accel_why, hc_accel_name(b->accel)))
		printf("  accelerator: %s\n", b->accel_why);
	else if (b->accel_ok)
		printf("  accelerator: %s (%s)\n", hc_accel_name(b->accel), b->accel_why);
	else if (b->kernel[0])
		printf("  accelerator: none usable\n");
	if (!b->kernel[0] && hc_streq(name, "libkrun"))
		printf("  kernel:      libkrunfw's (loaded by libkrun)\n");
	else
		printf("  kernel:      %s%s\n", b->kernel[0] ? b->kernel : "none found",
		       b->kernel[0] ? (b->kernel_is_user ? " (yours: --kernel/HOTCELL_KERNEL)"
							 : " (the project's)")
				    : "");
	if (b->usable)
		printf("  usable:      yes\n");
	else
		printf("  usable:      no\n  why:         %s\n", b->why);
}

int hc_cli_doctor(int argc, char **argv)
{
	struct hc_lib_backend_report rep;
	struct hc_run_opts o;
	const char *chosen = NULL;

	if (argc > 1) {
		if (hc_streq(argv[1], "--help") || hc_streq(argv[1], "-h")) {
			printf("usage: hotcell doctor\n\nChecks each backend on this host: found "
			       "or "
			       "not, version, accelerator, kernel, and why.\n");
			return 0;
		}
		return hc_cli_failf("doctor takes no arguments");
	}
	hc_run_opts_init(&o);
	for (size_t i = 0; i < hc_lib_backend_auto_n; i++) {
		const char *name = hc_lib_backend_auto_order[i];

		hc_lib_backend_report(name, &o, &rep);
		print_backend(name, &rep);
		if (rep.usable && !chosen)
			chosen = name;
	}
	printf("\n--backend auto tries, in order:");
	for (size_t i = 0; i < hc_lib_backend_auto_n; i++)
		printf("%s %s", i ? "," : "", hc_lib_backend_auto_order[i]);
	printf("\n  and picks: %s\n", chosen ? chosen : "nothing (no usable backend)");
	printf("  (a run that asks for a feature a backend lacks, such as -v on Firecracker, "
	       "skips it)\n");
	return chosen ? 0 : 1;
}
