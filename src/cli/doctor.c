/* SPDX-License-Identifier: MIT */
/*
 * `hotcell doctor`: per backend, found or not, version, accelerator, kernel, what networking it
 * can do here (docs/network.md), and why (DESIGN.md §3); then the --backend auto order and what
 * it picks on this host.
 */
#include "cli/cli.h"
#include "jail/jail.h"
#include "lib/backend.h"
#include "lib/net.h"
#include "vmm/accel.h"
#include "vmm/binary.h"
#include "vmm/virtiofsd.h"

/* The jail (docs/security.md): what applies on this host, per process, and what would make a
 * jailed start fail. */
static void print_jail(void)
{
	struct hc_jail_host h;
	char fsd[HC_PATH_MAX], jailer[HC_PATH_MAX];
	struct hc_error e = {0};
	const char *steps = "namespaces, minimal root (its /proc read-only), own uid, no "
			    "capabilities, no_new_privs, seccomp, rlimits";

	hc_jail_host_report(&h);
	printf("\njail (docs/security.md)\n");
	if (!h.root) {
		printf("  on:          no: %s; VMs run unjailed and say so (\"jailed\": false)\n",
		       h.why_not);
		return;
	}
	printf("  on:          yes, by default as root (--no-jail turns it off)\n");
	if (h.uid_error[0])
		printf("  uids:        refused: %s (every jailed start fails)\n", h.uid_error);
	else
		printf("  uids:        %u-%u, one per VM; %u leased in %s\n", (unsigned)h.uid_first,
		       (unsigned)h.uid_last, h.leased, h.lease_dir);
	printf("  seccomp:     %s\n",
	       h.seccomp ? (h.seccomp_log ? "allow-lists, kill-process (HOTCELL_SECCOMP=log "
					    "records instead)"
					  : "allow-lists, kill-process")
			 : "kill-process not available: every jailed start is refused");
	if (h.landlock_why_not)
		printf("  landlock:    %s: the jail goes on without it (its /proc stays "
		       "read-only)\n",
		       h.landlock_why_not);
	else
		printf("  landlock:    ABI %d: writes only beneath each process's read-write "
		       "paths\n",
		       h.landlock_abi);
	if (h.cgroup_version)
		printf("  cgroups:     v%d: %s%s\n", h.cgroup_version, h.cgroup_controllers,
		       strlen(h.cgroup_controllers) < strlen("memory pids cpu")
			       ? " (the others' limits are skipped)"
			       : "");
	else
		printf("  cgroups:     none mounted: memory, pids and cpu limits are skipped\n");
	if (h.kvm && (h.kvm_gid || (h.kvm_mode & 0006) == 0006))
		printf("  /dev/kvm:    %s under KVM\n",
		       h.kvm_gid ? "by its group" : "open to every uid");
	else if (h.kvm)
		printf("  /dev/kvm:    refused under KVM: root's group, closed to others (give it "
		       "a "
		       "kvm group)\n");
	printf("  qemu, vhost-device-vsock, cloud-hypervisor:\n               %s%s%s\n", steps,
	       h.cgroup_version ? ", cgroups" : "", h.landlock_why_not ? "" : ", landlock");
	bool rust = hc_virtiofsd_find(fsd, sizeof(fsd), &e) == 0 && hc_virtiofsd_is_rust(fsd);
	printf("  virtiofsd:   the same, but uid 0 with file capabilities only%s\n",
	       rust ? " (--sandbox=chroot)"
		    : "; QEMU 7.2's C virtiofsd builds its own namespace sandbox, for which it "
		      "holds CAP_SYS_ADMIN until it drops it itself, and so runs without "
		      "landlock (which refuses it mount and pivot_root); the proc it mounts "
		      "is not made, it keeps the jail's read-only one");
	if (hc_binary_find("HOTCELL_FIRECRACKER_JAILER", "jailer", jailer, sizeof(jailer), &e) == 0)
		printf("  firecracker: its own jailer (%s), the VM's own uid; with --network the "
		       "TAP is that uid's\n",
		       jailer);
	else
		printf("  firecracker: not jailed: its jailer is not installed\n");
	printf("  libkrun:     the worker (forked, no exec) gets the same walls, uid 0 with file "
	       "capabilities only,\n               as it serves virtio-fs itself\n");
}

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
	const struct hc_vmm_ops *ops = hc_vmm_find(name);
	if (ops) {
		char net[512];

		hc_lib_net_report(ops, net, sizeof(net));
		printf("  network:     %s\n", net);
	}
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
			       "not, version, accelerator, kernel, networking, and why; then what "
			       "the "
			       "jail does here.\n");
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
	print_jail();
	return chosen ? 0 : 1;
}
