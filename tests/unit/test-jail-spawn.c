/* SPDX-License-Identifier: MIT */
/*
 * The jail step of the child API (core/child.c) and the jail built on it (src/jail): a failing
 * step comes back named, a PID namespace makes the child PID 1, a jailed program runs with
 * every wall up, and nothing is left behind. The attacks themselves are tests/security/.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/child.h"
#include "core/path.h"
#include "jail/jail-internal.h"
#include "test.h"

static int failing_step(void *arg, struct hc_error *err)
{
	return hc_error_set(err, -EPERM, "jail step '%s': refused", (const char *)arg);
}

TEST(failing_step_is_named)
{
	struct hc_child c = HC_CHILD_INIT;
	struct hc_error err = {0};
	const char *argv[] = {"/bin/true", NULL};
	struct hc_child_jail j = {.apply = failing_step, .arg = (void *)"pivot_root"};
	struct hc_child_opts o = {
		.argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .jail = &j};

	ASSERT_EQ_INT(hc_child_spawn(&c, &o, &err), -EPERM);
	ASSERT_TRUE(strstr(err.message, "jail step 'pivot_root': refused") != NULL);
	ASSERT_TRUE(strstr(err.message, "/bin/true") != NULL);
	ASSERT_EQ_INT(c.reaped, true);
}

static int nothing(void *arg, struct hc_error *err)
{
	return 0;
}

TEST(new_pid_ns_makes_pid_1)
{
	if (geteuid() != 0)
		SKIP("a PID namespace needs root");
	struct hc_child c = HC_CHILD_INIT;
	struct hc_error err = {0};
	char *out = NULL;
	int p[2];
	const char *argv[] = {"/bin/sh", "-c", "echo $$", NULL};
	struct hc_child_jail j = {.new_pid_ns = true, .apply = nothing};

	ASSERT_EQ_INT(pipe2(p, O_CLOEXEC), 0);
	struct hc_child_opts o = {
		.argv = argv, .stdin_fd = -1, .stdout_fd = p[1], .stderr_fd = -1, .jail = &j};
	int r = hc_child_spawn(&c, &o, &err);
	close(p[1]);
	ASSERT_EQ_INT(r, 0);
	char buf[32] = "";
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	hc_child_wait(&c, 5000);
	free(out);
	ASSERT_TRUE(n > 0);
	ASSERT_EQ_STR(buf, "1\n");
	ASSERT_TRUE(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
	/* This process's own children are in its namespace again. */
	pid_t pid = fork();
	if (pid == 0)
		_exit(getppid() == 0 ? 1 : 0);
	int st;
	waitpid(pid, &st, 0);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(jail_off_is_a_no_op)
{
	struct hc_jail_vm jv;
	struct hc_jail_proc jp;
	struct hc_error err = {0};
	const char *argv[] = {"true", NULL};
	struct hc_child_opts o = {.argv = argv};

	ASSERT_EQ_INT(hc_jail_vm_open(&jv, false, "/nonexistent", 128, 1, &err), 0);
	hc_jail_proc_init(&jp, &jv, HC_JAIL_QEMU, HC_ACCEL_TCG, "true");
	hc_jail_proc_bind(&jp, "/nonexistent", false);
	ASSERT_EQ_INT(hc_jail_proc_prepare(&jp, &o, &err), 0);
	ASSERT_TRUE(o.jail == NULL && o.envp == NULL);
	hc_jail_proc_free(&jp);
	hc_jail_vm_close(&jv);
}

static char lease_dir[] = "/tmp/hc-test-jail.XXXXXX";

/* A jailed /bin/cat of its own /proc/self/status: the walls, seen from inside. */
TEST(jailed_program_has_every_wall)
{
	if (geteuid() != 0)
		SKIP("the jail needs root");
	char run_dir[HC_PATH_MAX];
	struct hc_jail_vm jv;
	struct hc_jail_proc jp;
	struct hc_error err = {0};
	struct hc_child c = HC_CHILD_INIT;
	int p[2];

	snprintf(run_dir, sizeof(run_dir), "%s/run", lease_dir);
	ASSERT_EQ_INT(mkdir(run_dir, 0700), 0);
	ASSERT_EQ_INT(hc_jail_vm_open(&jv, true, run_dir, 128, 1, &err), 0);
	struct stat st;
	ASSERT_EQ_INT(stat(run_dir, &st), 0);
	ASSERT_EQ_INT(st.st_uid, jv.uid); /* the VM's own dir */

	const char *argv[] = {"/bin/cat", "/proc/self/status", NULL};
	ASSERT_EQ_INT(pipe2(p, O_CLOEXEC), 0);
	struct hc_child_opts o = {.argv = argv, .stdin_fd = -1, .stdout_fd = p[1], .stderr_fd = -1};
	hc_jail_proc_init(&jp, &jv, HC_JAIL_QEMU, HC_ACCEL_TCG, "/bin/cat");
	int r = hc_jail_proc_prepare(&jp, &o, &err);
	if (r >= 0)
		r = hc_child_spawn(&c, &o, &err);
	hc_jail_proc_free(&jp);
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		FAILF("jailed cat: %s", err.message);
	}
	char buf[8192];
	size_t len = 0;
	ssize_t n;
	while ((n = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(p[0]);
	hc_child_wait(&c, 5000);
	char want[64];
	snprintf(want, sizeof(want), "Uid:\t%u\t%u\t%u\t%u", (unsigned)jv.uid, (unsigned)jv.uid,
		 (unsigned)jv.uid, (unsigned)jv.uid);
	ASSERT_TRUE(strstr(buf, want) != NULL);
	ASSERT_TRUE(strstr(buf, "CapEff:\t0000000000000000") != NULL);
	ASSERT_TRUE(strstr(buf, "CapBnd:\t0000000000000000") != NULL);
	ASSERT_TRUE(strstr(buf, "CapAmb:\t0000000000000000") != NULL);
	ASSERT_TRUE(strstr(buf, "NoNewPrivs:\t1") != NULL);
	ASSERT_TRUE(strstr(buf, "Seccomp:\t2") != NULL);
	ASSERT_TRUE(strstr(buf, "\nPid:\t1\n") != NULL);
	ASSERT_TRUE(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
	char lease[HC_PATH_MAX];
	snprintf(lease, sizeof(lease), "%s", jv.lease_path);
	hc_jail_vm_close(&jv);
	/* Nothing left: the lease is gone, the root is an empty directory (its mounts lived
	 * in the child's namespace only), the cgroups are removed. */
	ASSERT_TRUE(!hc_path_exists(lease));
	ASSERT_EQ_INT(jv.n_cgroups, 0);
	ASSERT_EQ_INT(hc_path_rm_rf(run_dir, &err), 0);
}

TEST(missing_path_fails_before_fork)
{
	if (geteuid() != 0)
		SKIP("the jail needs root");
	char run_dir[HC_PATH_MAX];
	struct hc_jail_vm jv;
	struct hc_jail_proc jp;
	struct hc_error err = {0};
	const char *argv[] = {"/bin/true", NULL};
	struct hc_child_opts o = {.argv = argv};

	snprintf(run_dir, sizeof(run_dir), "%s/run2", lease_dir);
	ASSERT_EQ_INT(mkdir(run_dir, 0700), 0);
	ASSERT_EQ_INT(hc_jail_vm_open(&jv, true, run_dir, 128, 1, &err), 0);
	hc_jail_proc_init(&jp, &jv, HC_JAIL_QEMU, HC_ACCEL_TCG, "/bin/true");
	hc_jail_proc_bind(&jp, "/nonexistent/kernel", false);
	int r = hc_jail_proc_prepare(&jp, &o, &err);
	hc_jail_proc_free(&jp);
	hc_jail_vm_close(&jv);
	hc_path_rm_rf(run_dir, NULL);
	ASSERT_EQ_INT(r, -ENOENT);
	ASSERT_TRUE(strstr(err.message, "/nonexistent/kernel") != NULL);
}

TEST(seccomp_filters_build_per_kind)
{
	struct hc_error err = {0};
	int sizes[HC_JAIL_N_KINDS];

	for (int k = 0; k < HC_JAIL_N_KINDS; k++) {
		sizes[k] = hc_jail_seccomp_size((enum hc_jail_kind)k, HC_ACCEL_TCG, &err);
		if (sizes[k] <= 0)
			FAILF("%s: %s", hc_jail_kind_name((enum hc_jail_kind)k), err.message);
	}
	/* The KVM ioctls are on QEMU's list only with KVM. */
	int kvm = hc_jail_seccomp_size(HC_JAIL_QEMU, HC_ACCEL_KVM, &err);
	ASSERT_TRUE(kvm > sizes[HC_JAIL_QEMU]);
	ASSERT_TRUE(sizes[HC_JAIL_CLOUD_HYPERVISOR] >= kvm - 40);
}

TEST(memory_limit_follows_the_guest)
{
	ASSERT_EQ_INT(hc_jail_memory_limit(HC_JAIL_QEMU, 256), (256ull + 384) << 20);
	ASSERT_TRUE(hc_jail_memory_limit(HC_JAIL_QEMU, 1024) >
		    hc_jail_memory_limit(HC_JAIL_QEMU, 256));
	ASSERT_EQ_INT(hc_jail_memory_limit(HC_JAIL_VSOCKD, 4096), 128ull << 20);
}

int main(void)
{
	if (!mkdtemp(lease_dir)) {
		perror("mkdtemp");
		return 1;
	}
	setenv("HOTCELL_JAIL_LEASE_DIR", lease_dir, 1);
	setenv("HOTCELL_JAIL_UIDS", "4100000-4100099", 1);
	RUN(failing_step_is_named);
	RUN(new_pid_ns_makes_pid_1);
	RUN(jail_off_is_a_no_op);
	RUN(jailed_program_has_every_wall);
	RUN(missing_path_fails_before_fork);
	RUN(seccomp_filters_build_per_kind);
	RUN(memory_limit_follows_the_guest);
	hc_path_rm_rf(lease_dir, NULL);
	return test_summary();
}
