/* SPDX-License-Identifier: MIT */
/*
 * Runs a program through exactly the jail a VMM process of a kind gets (src/jail), for the
 * security suite: the walls are tested from inside, by an attacker that is not a real QEMU
 * escape but has the same namespaces, root, uid, capabilities, seccomp filter, rlimits and
 * cgroups.
 *
 *   jail-run [--kind qemu|virtiofsd|vhost-device-vsock|cloud-hypervisor|libkrun]
 *            [--accel tcg|kvm] [--memory MIB] [--network] [--bind PATH] [--bind-rw PATH]
 *            [--run-dir DIR] [--start-caps] -- PROGRAM [ARG...]
 *
 * Prints "uid N" (the VM's uid) and then "status: exited with status N" or
 * "status: killed by signal SIGSYS"; its own exit status is the program's, or 128+signal.
 * --run-dir uses (and keeps) the given runtime dir; otherwise a fresh one is made and removed.
 * --start-caps: the program starts with CAP_SYS_ADMIN and CAP_SETPCAP besides, as QEMU 7.2's C
 * virtiofsd does (HC_JAIL_CAP_SYS_ADMIN_AT_START), and must drop them itself.
 * "pid N" is printed once the program runs, so a caller may look at /proc/N meanwhile.
 * `jail-run -- --figures` prints, per kind, the seccomp filter's length and the memory limit of a
 * 256 MiB VM (bench/jail.sh).
 */
#include <getopt.h>
#include <signal.h>
#include <sys/wait.h>

#include "core/child.h"
#include "core/path.h"
#include "jail/jail-internal.h"

static enum hc_jail_kind kind_of(const char *s)
{
	for (int k = 0; k < HC_JAIL_N_KINDS; k++)
		if (hc_streq(s, hc_jail_kind_name((enum hc_jail_kind)k)))
			return (enum hc_jail_kind)k;
	fprintf(stderr, "jail-run: unknown kind %s\n", s);
	exit(2);
}

int main(int argc, char **argv)
{
	enum hc_jail_kind kind = HC_JAIL_QEMU;
	enum hc_accel accel = HC_ACCEL_TCG;
	unsigned memory = 128;
	bool network = false, own_dir = true, start_caps = false;
	const char *binds[16];
	bool rw[16];
	size_t nb = 0;
	char run_dir[HC_PATH_MAX] = "";
	struct hc_error err = {0};
	static const struct option opts[] = {{"kind", required_argument, NULL, 'k'},
					     {"accel", required_argument, NULL, 'a'},
					     {"memory", required_argument, NULL, 'm'},
					     {"network", no_argument, NULL, 'n'},
					     {"bind", required_argument, NULL, 'b'},
					     {"bind-rw", required_argument, NULL, 'w'},
					     {"run-dir", required_argument, NULL, 'r'},
					     {"start-caps", no_argument, NULL, 's'},
					     {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			kind = kind_of(optarg);
			break;
		case 'a':
			accel = hc_streq(optarg, "kvm") ? HC_ACCEL_KVM : HC_ACCEL_TCG;
			break;
		case 'm':
			memory = (unsigned)atoi(optarg);
			break;
		case 'n':
			network = true;
			break;
		case 'b':
		case 'w':
			if (nb == 16)
				return 2;
			rw[nb] = c == 'w';
			binds[nb++] = optarg;
			break;
		case 's':
			start_caps = true;
			break;
		case 'r':
			snprintf(run_dir, sizeof(run_dir), "%s", optarg);
			own_dir = false;
			break;
		default:
			return 2;
		}
	}
	if (optind < argc && hc_streq(argv[optind], "--figures")) {
		for (int k = 0; k < HC_JAIL_N_KINDS; k++) {
			enum hc_jail_kind kk = (enum hc_jail_kind)k;
			int tcg = hc_jail_seccomp_size(kk, HC_ACCEL_TCG, &err);
			int kvm = hc_jail_seccomp_size(kk, HC_ACCEL_KVM, &err);
			printf("%-20s seccomp %4d BPF instructions (tcg), %4d (kvm); memory limit "
			       "%llu MiB\n",
			       hc_jail_kind_name(kk), tcg, kvm,
			       hc_jail_memory_limit(kk, 256) >> 20);
		}
		return 0;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: jail-run [options] -- PROGRAM [ARG...]\n");
		return 2;
	}
	char prog[HC_PATH_MAX];
	if (!realpath(argv[optind], prog)) {
		perror(argv[optind]);
		return 2;
	}
	argv[optind] = prog;
	if (own_dir && hc_path_make_run_dir(run_dir, sizeof(run_dir), &err) < 0) {
		fprintf(stderr, "jail-run: %s\n", err.message);
		return 2;
	}

	struct hc_jail_vm jv;
	int r = hc_jail_vm_open(&jv, true, run_dir, memory, 1, &err);
	if (r < 0) {
		fprintf(stderr, "jail-run: %s\n", err.message);
		if (own_dir)
			hc_path_rm_rf(run_dir, NULL);
		return 2;
	}
	printf("uid %u\n", (unsigned)jv.uid);
	printf("run-dir %s\n", run_dir);
	fflush(stdout);

	struct hc_jail_proc jp;
	hc_jail_proc_init(&jp, &jv, kind, accel, prog);
	jp.network = network;
	if (start_caps)
		jp.start_caps = HC_JAIL_CAP_SYS_ADMIN_AT_START;
	for (size_t i = 0; i < nb; i++)
		hc_jail_proc_bind(&jp, binds[i], rw[i]);
	struct hc_child_opts o = {
		.argv = (const char *const *)argv + optind,
		.stdin_fd = 0,
		.stdout_fd = 1,
		.stderr_fd = 2,
		.cwd = kind == HC_JAIL_VIRTIOFSD ? NULL : run_dir,
	};
	struct hc_child child = HC_CHILD_INIT;
	r = hc_jail_proc_prepare(&jp, &o, &err);
	if (r >= 0)
		r = hc_child_spawn(&child, &o, &err);
	hc_jail_proc_free(&jp);
	int rc;
	if (r < 0) {
		printf("status: not started: %s\n", err.message);
		rc = 2;
	} else {
		char desc[64];
		printf("pid %d\n", (int)child.pid);
		fflush(stdout);
		hc_child_wait(&child, -1);
		hc_child_status_str(child.status, desc, sizeof(desc));
		printf("status: %s\n", desc);
		rc = WIFEXITED(child.status) ? WEXITSTATUS(child.status)
					     : 128 + WTERMSIG(child.status);
		hc_child_stop(&child, 0);
	}
	hc_jail_vm_close(&jv);
	if (own_dir)
		hc_path_rm_rf(run_dir, NULL);
	return rc;
}
