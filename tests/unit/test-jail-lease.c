/* SPDX-License-Identifier: MIT */
/* The per-VM uid lease: exclusive, released, reclaimed from a dead holder, range parsing. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/path.h"
#include "jail/jail-internal.h"
#include "test.h"

static char dir[] = "/tmp/hc-test-lease.XXXXXX";

static void setup(const char *range)
{
	setenv("HOTCELL_JAIL_LEASE_DIR", dir, 1);
	setenv("HOTCELL_JAIL_UIDS", range, 1);
}

TEST(uid_range_parse)
{
	uid_t a, b;

	ASSERT_EQ_INT(hc_jail_uid_range_parse("3000000-3065535", &a, &b), 0);
	ASSERT_EQ_INT(a, 3000000);
	ASSERT_EQ_INT(b, 3065535);
	ASSERT_EQ_INT(hc_jail_uid_range_parse("100000-100000", &a, &b), 0);
	ASSERT_EQ_INT(hc_jail_uid_range_parse("0-100", &a, &b), -ERANGE);      /* root's */
	ASSERT_EQ_INT(hc_jail_uid_range_parse("1000-70000", &a, &b), -ERANGE); /* login uids */
	ASSERT_EQ_INT(hc_jail_uid_range_parse("200000-100000", &a, &b), -ERANGE);
	ASSERT_EQ_INT(hc_jail_uid_range_parse("100000", &a, &b), -EINVAL);
	ASSERT_EQ_INT(hc_jail_uid_range_parse("a-b", &a, &b), -EINVAL);
	ASSERT_EQ_INT(hc_jail_uid_range_parse("100000-200000x", &a, &b), -EINVAL);
	ASSERT_EQ_INT(hc_jail_uid_range_parse("100000-4294967295", &a, &b), -ERANGE);
}

TEST(two_vms_never_share_a_uid)
{
	struct hc_jail_vm a = HC_JAIL_VM_INIT, b = HC_JAIL_VM_INIT, c = HC_JAIL_VM_INIT;
	struct hc_error err = {0};

	setup("4000000-4000001");
	ASSERT_EQ_INT(hc_jail_lease_take(&a, &err), 0);
	ASSERT_EQ_INT(hc_jail_lease_take(&b, &err), 0);
	ASSERT_TRUE(a.uid != b.uid);
	ASSERT_EQ_INT(a.gid, a.uid);
	/* The range is used up: a clear error, not a shared uid. */
	ASSERT_EQ_INT(hc_jail_lease_take(&c, &err), -EUSERS);
	ASSERT_TRUE(strstr(err.message, "4000000-4000001") != NULL);
	/* A released uid is taken again, and its file is gone meanwhile. */
	uid_t freed = a.uid;
	char path[HC_PATH_MAX];
	snprintf(path, sizeof(path), "%s", a.lease_path);
	hc_jail_lease_release(&a);
	ASSERT_TRUE(!hc_path_exists(path));
	ASSERT_EQ_INT(hc_jail_lease_take(&c, &err), 0);
	ASSERT_EQ_INT(c.uid, freed);
	hc_jail_lease_release(&b);
	hc_jail_lease_release(&c);
	hc_jail_lease_release(&c); /* twice is fine */
}

TEST(lease_file_names_its_holder)
{
	struct hc_jail_vm a = HC_JAIL_VM_INIT;
	struct hc_error err = {0};
	char *data = NULL;
	size_t len;

	setup("4000010-4000010");
	ASSERT_EQ_INT(hc_jail_lease_take(&a, &err), 0);
	ASSERT_EQ_INT(hc_path_read_file(a.lease_path, 4096, &data, &len, &err), 0);
	int pid = 0;
	unsigned long long start = 0;
	int n = sscanf(data, "%d %llu", &pid, &start);
	free(data);
	hc_jail_lease_release(&a);
	ASSERT_EQ_INT(n, 2);
	ASSERT_EQ_INT(pid, getpid());
	ASSERT_TRUE(start > 0);
}

TEST(dead_holder_is_reclaimed)
{
	struct hc_jail_vm a = HC_JAIL_VM_INIT;
	struct hc_error err = {0};
	int p[2];
	char c;

	setup("4000020-4000020");
	ASSERT_EQ_INT(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct hc_jail_vm held = HC_JAIL_VM_INIT;
		struct hc_error e = {0};
		if (hc_jail_lease_take(&held, &e) < 0)
			_exit(1);
		ssize_t _unused_ w = write(p[1], "x", 1);
		pause();
		_exit(0);
	}
	close(p[1]);
	ASSERT_EQ_INT(read(p[0], &c, 1), 1);
	close(p[0]);
	/* Held by a live process: refused. */
	ASSERT_EQ_INT(hc_jail_lease_take(&a, &err), -EUSERS);
	/* The holder dies without releasing (SIGKILL): the lease comes back. */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ASSERT_EQ_INT(hc_jail_lease_take(&a, &err), 0);
	ASSERT_EQ_INT(a.uid, 4000020);
	hc_jail_lease_release(&a);
}

/* A VMM that dropped to the VM's uid itself (Firecracker under its jailer) outlives its killed
 * hotcell: the reclaim ends it before the uid is anyone else's. As root only. */
TEST(dead_holder_processes_are_ended)
{
	struct hc_jail_vm a = HC_JAIL_VM_INIT;
	struct hc_error err = {0};
	int p[2];
	char c;

	if (geteuid() != 0)
		SKIP("needs root (another uid)");
	setup("4000030-4000030");
	ASSERT_EQ_INT(pipe(p), 0);
	pid_t holder = fork();
	if (holder == 0) {
		struct hc_jail_vm held = HC_JAIL_VM_INIT;
		struct hc_error e = {0};
		int q[2];
		if (hc_jail_lease_take(&held, &e) < 0 || pipe(q) < 0)
			_exit(1);
		pid_t vmm = fork();
		if (vmm == 0) {
			/* The lease fd is close-on-exec: an exec'ed VMM does not hold it. */
			close(held.lease_fd);
			if (setresgid(held.gid, held.gid, held.gid) < 0 ||
			    setresuid(held.uid, held.uid, held.uid) < 0)
				_exit(1);
			ssize_t _unused_ w = write(q[1], "x", 1);
			for (;;)
				pause();
		}
		if (vmm < 0 || read(q[0], &c, 1) != 1)
			_exit(1);
		ssize_t _unused_ w = write(p[1], (char *)&vmm, sizeof(vmm));
		pause();
		_exit(0);
	}
	close(p[1]);
	pid_t vmm = 0;
	ASSERT_EQ_INT(read(p[0], (char *)&vmm, sizeof(vmm)), (ssize_t)sizeof(vmm));
	close(p[0]);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	/* The orphan runs as the uid (reparented, not reaped by us): still there. */
	ASSERT_EQ_INT(kill(vmm, 0), 0);
	ASSERT_EQ_INT(hc_jail_lease_take(&a, &err), 0);
	ASSERT_EQ_INT(a.uid, 4000030);
	/* SIGKILLed: gone, or a zombie of its new parent for a moment. */
	bool gone = false;
	for (int i = 0; i < 200 && !gone; i++) {
		char path[64], buf[512] = "";
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)vmm);
		FILE *f = fopen(path, "re");
		if (!f || !fgets(buf, sizeof(buf), f) || strstr(buf, ") Z ") || strstr(buf, ") X "))
			gone = true;
		if (f)
			fclose(f);
		if (!gone)
			usleep(10000);
	}
	hc_jail_lease_release(&a);
	if (!gone)
		kill(vmm, SIGKILL); /* leave nothing behind when failing */
	ASSERT_TRUE(gone);
}

TEST(bad_range_is_a_usage_error)
{
	struct hc_jail_vm a = HC_JAIL_VM_INIT;
	struct hc_error err = {0};

	setup("5-10");
	ASSERT_EQ_INT(hc_jail_lease_take(&a, &err), -EINVAL);
	ASSERT_TRUE(strstr(err.message, "HOTCELL_JAIL_UIDS=5-10") != NULL);
	ASSERT_EQ_INT(a.lease_fd, -1);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(uid_range_parse);
	RUN(two_vms_never_share_a_uid);
	RUN(lease_file_names_its_holder);
	RUN(dead_holder_is_reclaimed);
	RUN(dead_holder_processes_are_ended);
	RUN(bad_range_is_a_usage_error);
	hc_path_rm_rf(dir, NULL);
	return test_summary();
}
