/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/buf.h"
#include "core/child.h"
#include "core/error.h"
#include "core/owner.h"
#include "core/path.h"
#include "test.h"

TEST(error_prefix_chain)
{
	struct hc_error err = {0};

	ASSERT_EQ_INT(hc_error_set(&err, -EACCES, "401 Unauthorized"), -EACCES);
	hc_error_prefix(&err, "fetch manifest");
	hc_error_prefix(&err, "pull '%s'", "alpine");
	ASSERT_EQ_STR(err.message, "pull 'alpine': fetch manifest: 401 Unauthorized");
	ASSERT_EQ_INT(err.code, -EACCES);
}

TEST(buf_bounded)
{
	struct hc_buf b = HC_BUF_INIT(8);

	ASSERT_EQ_INT(hc_buf_append(&b, "12345678", 8), 0);
	ASSERT_EQ_INT(hc_buf_append(&b, "9", 1), -E2BIG);
	ASSERT_EQ_INT(b.len, 8);
	ASSERT_EQ_STR(b.data, "12345678");
	hc_buf_consume(&b, 3);
	ASSERT_EQ_STR(b.data, "45678");
	hc_buf_free(&b);
}

TEST(child_run_status_and_output)
{
	struct hc_error err = {0};
	char *out = NULL;
	const char *argv[] = {"sh", "-c", "echo hello; echo oops >&2; exit 3", NULL};
	int r = hc_child_run(argv, 5000, 4096, &out, &err);

	ASSERT_EQ_INT(r, 3);
	ASSERT_TRUE(strstr(out, "hello") && strstr(out, "oops"));
	ASSERT_TRUE(strstr(err.message, "exited with status 3") != NULL);
	free(out);
}

/* Issue 16 item 8: a cancel fd that becomes readable kills and reaps the child (mke2fs). */
TEST(defect_8_child_run_cancelled)
{
	struct hc_error err = {0};
	const char *argv[] = {"sh", "-c", "echo $$ >\"$0\"; exec sleep 30", NULL, NULL};
	char pidfile[] = "/tmp/hc-cancel-XXXXXX";
	char *pid_s = NULL;
	int p[2], fd, r;
	pid_t pid;

	fd = mkstemp(pidfile);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	argv[3] = pidfile;
	ASSERT_EQ_INT(pipe(p), 0);
	if (fork() == 0) {
		usleep(200000);
		(void)!write(p[1], "x", 1);
		_exit(0);
	}
	r = hc_child_run_cancel(argv, 20000, p[0], 4096, NULL, &err);
	ASSERT_EQ_INT(r, -ECANCELED);
	wait(NULL);
	ASSERT_OK(hc_path_read_file(pidfile, 64, &pid_s, NULL, &err), &err);
	pid = (pid_t)atoi(pid_s);
	/* reaped: the pid is gone, not a zombie */
	ASSERT_TRUE(pid > 0 && kill(pid, 0) < 0 && errno == ESRCH);
	free(pid_s);
	unlink(pidfile);
	close(p[0]);
	close(p[1]);
}

TEST(child_missing_program)
{
	struct hc_error err = {0};
	const char *argv[] = {"/nonexistent/prog", NULL};

	ASSERT_EQ_INT(hc_child_run(argv, 5000, 0, NULL, &err), -ENOENT);
	ASSERT_TRUE(strstr(err.message, "not found") != NULL);
}

TEST(child_fd_handover_and_stop)
{
	struct hc_error err = {0};
	struct hc_child c = HC_CHILD_INIT;
	int p[2];

	ASSERT_EQ_INT(pipe2(p, O_CLOEXEC), 0);
	/* fd 5 in the child is the pipe's write end; anything else is closed. */
	struct hc_fd_map m = {p[1], 5};
	const char *argv[] = {"sh", "-c", "echo via5 >&5; exec sleep 30", NULL};
	struct hc_child_opts o = {.argv = argv,
				  .stdin_fd = -1,
				  .stdout_fd = -1,
				  .stderr_fd = -1,
				  .fds = &m,
				  .n_fds = 1};
	ASSERT_OK(hc_child_spawn(&c, &o, &err), &err);
	close(p[1]);
	char buf[16] = {0};
	ASSERT_EQ_INT(read(p[0], buf, sizeof(buf) - 1), 5);
	ASSERT_EQ_STR(buf, "via5\n");
	ASSERT_EQ_INT(hc_child_wait(&c, 50), -ETIMEDOUT);
	hc_child_stop(&c, 1000);
	ASSERT_TRUE(c.reaped);
	ASSERT_TRUE(WIFSIGNALED(c.status));
	close(p[0]);
}

/* Only the mapped fds reach the child, even ones the parent left without FD_CLOEXEC. */
TEST(child_gets_only_mapped_fds)
{
	struct hc_error err = {0};
	char *out = NULL, cmd[128];
	int leak = open("/dev/null", O_RDONLY); /* deliberately inheritable */

	ASSERT_TRUE(leak >= 0);
	snprintf(cmd, sizeof(cmd),
		 "ls /proc/self/fd | sort -n | tr '\\n' ' '; [ ! -e /proc/self/fd/%d ]", leak);
	const char *argv[] = {"sh", "-c", cmd, NULL};
	int r = hc_child_run(argv, 5000, 4096, &out, &err);
	close(leak);
	ASSERT_EQ_INT(r, 0);
	/* stdin, stdout, stderr, and the fd ls itself opens for the directory. */
	ASSERT_EQ_STR(out, "0 1 2 3 ");
	free(out);
}

TEST(path_atomic_write_and_rm_rf)
{
	struct hc_error err = {0};
	char dir[] = "/tmp/hc-unit-XXXXXX", path[256], sub[256];
	char *data = NULL;
	size_t len;

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	ASSERT_OK(hc_path_mkdir_p(path, 0755, &err), &err);
	snprintf(path, sizeof(path), "%s/a/file", dir);
	ASSERT_OK(hc_path_write_file_atomic(path, "xyz", 3, 0644, &err), &err);
	ASSERT_OK(hc_path_read_file(path, 16, &data, &len, &err), &err);
	ASSERT_EQ_STR(data, "xyz");
	free(data);
	ASSERT_ERR(hc_path_read_file(path, 2, &data, &len, &err));
	snprintf(sub, sizeof(sub), "%s/a/link", dir);
	ASSERT_EQ_INT(symlink("/etc", sub), 0);
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	chmod(sub, 0555);
	ASSERT_OK(hc_path_rm_rf(dir, &err), &err);
	ASSERT_TRUE(!hc_path_exists(dir));
	ASSERT_TRUE(hc_path_exists("/etc/passwd"));
}

/* defect 10: a message reworded with itself as an argument keeps every letter, once. */
TEST(defect_10_error_set_with_own_message)
{
	struct hc_error err = {0};

	hc_error_set(&err, -ETIMEDOUT, "QMP greeting: QMP: no answer from QEMU");
	hc_error_setk(&err, err.code, "vm", "qemu did not start: %s", err.message);
	ASSERT_EQ_STR(err.message, "qemu did not start: QMP greeting: QMP: no answer from QEMU");
	ASSERT_EQ_INT(err.code, -ETIMEDOUT);
	hc_error_set(&err, -EIO, "%s; %s", err.message, "more");
	ASSERT_EQ_STR(err.message,
		      "qemu did not start: QMP greeting: QMP: no answer from QEMU; more");
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ASSERT_TRUE(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* defect 5: directories of owners that are gone are swept, live ones and young unowned ones
 * are kept. */
TEST(defect_5_owner_sweep)
{
	char base[] = "/tmp/hctest-owner.XXXXXX", d[300], f[320], text[64];
	struct hc_error err = {0};
	pid_t dead;

	ASSERT_TRUE(mkdtemp(base) != NULL);
	/* Mine: alive. */
	snprintf(d, sizeof(d), "%s/aaaaaaaa", base);
	ASSERT_EQ_INT(mkdir(d, 0700), 0);
	ASSERT_OK(hc_owner_write(d, &err), &err);
	ASSERT_EQ_INT(hc_owner_alive(d), 1);
	/* A process that has exited (and been reaped). */
	dead = fork();
	if (dead == 0)
		_exit(0);
	ASSERT_TRUE(dead > 0);
	waitpid(dead, NULL, 0);
	snprintf(d, sizeof(d), "%s/bbbbbbbb", base);
	ASSERT_EQ_INT(mkdir(d, 0700), 0);
	snprintf(f, sizeof(f), "%s/owner", d);
	snprintf(text, sizeof(text), "%d 12345\n", (int)dead);
	write_text(f, text);
	snprintf(f, sizeof(f), "%s/console.log", d);
	write_text(f, "x");
	ASSERT_EQ_INT(hc_owner_alive(d), 0);
	/* My pid with another start time: a recycled pid is not the owner. */
	snprintf(d, sizeof(d), "%s/cccccccc", base);
	ASSERT_EQ_INT(mkdir(d, 0700), 0);
	snprintf(f, sizeof(f), "%s/owner", d);
	snprintf(text, sizeof(text), "%d %llu\n", (int)getpid(), hc_owner_start_time(getpid()) + 1);
	write_text(f, text);
	ASSERT_EQ_INT(hc_owner_alive(d), 0);
	/* No owner file, young: being set up, kept. */
	snprintf(d, sizeof(d), "%s/dddddddd", base);
	ASSERT_EQ_INT(mkdir(d, 0700), 0);
	ASSERT_EQ_INT(hc_owner_alive(d), -ENOENT);

	ASSERT_EQ_INT(hc_owner_sweep(base), 2);
	snprintf(d, sizeof(d), "%s/aaaaaaaa", base);
	ASSERT_TRUE(hc_path_exists(d));
	snprintf(d, sizeof(d), "%s/bbbbbbbb", base);
	ASSERT_TRUE(!hc_path_exists(d));
	snprintf(d, sizeof(d), "%s/cccccccc", base);
	ASSERT_TRUE(!hc_path_exists(d));
	snprintf(d, sizeof(d), "%s/dddddddd", base);
	ASSERT_TRUE(hc_path_exists(d));
	ASSERT_EQ_INT(hc_owner_sweep(base), 0);
	ASSERT_OK(hc_path_rm_rf(base, &err), &err);
}

int main(void)
{
	RUN(error_prefix_chain);
	RUN(buf_bounded);
	RUN(child_run_status_and_output);
	RUN(child_missing_program);
	RUN(defect_8_child_run_cancelled);
	RUN(child_fd_handover_and_stop);
	RUN(child_gets_only_mapped_fds);
	RUN(path_atomic_write_and_rm_rf);
	RUN(defect_10_error_set_with_own_message);
	RUN(defect_5_owner_sweep);
	return test_summary();
}
