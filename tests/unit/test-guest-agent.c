/* SPDX-License-Identifier: MIT */
/*
 * hotcell-init's serve loop on the host, without a VM: build/bin/hotcell-init --serve-fd N
 * over a socketpair (docs/protocol.md, "Test mode"), spawned with hc_child_spawn. Each test
 * plays the host's side of the conversation with the real protocol code.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "core/child.h"
#include "core/path.h"
#include "proto/proto.h"
#include "test.h"
#include "agent-client.h"

#define WAIT_MS 30000

static char init_path[4096];
static char tmpdir[] = "/tmp/hc-agent-test.XXXXXX";
static char result_path[4200];
static char etc_dir[4200];

struct session {
	struct hc_child child;
	struct agent_conn c;
	struct hc_proto_hello hello;
};

static int session_start(struct session *s, struct hc_error *err)
{
	int sv[2], r;

	memset(s, 0, sizeof(*s));
	s->child = (struct hc_child)HC_CHILD_INIT;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return hc_error_errno(err, -errno, "socketpair");
	const char *argv[] = {init_path,   "--serve-fd", "3",	  "--result-path",
			      result_path, "--etc",	 etc_dir, NULL};
	struct hc_fd_map m = {sv[1], 3};
	struct hc_child_opts o = {.argv = argv,
				  .stdin_fd = -1,
				  .stdout_fd = -1,
				  .stderr_fd = STDERR_FILENO,
				  .fds = &m,
				  .n_fds = 1};
	r = hc_child_spawn(&s->child, &o, err);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	ac_init(&s->c, sv[0], WAIT_MS);
	r = ac_hello(&s->c, &s->hello);
	if (r < 0)
		return hc_error_set(err, -EPROTO, "no hello (%d)", r);
	return 0;
}

static int session_end(struct session *s)
{
	int st;

	/* SHUTDOWN: the agent exits 0 (HC_BOOT_EXIT_OK) when it is not PID 1. */
	if (hc_proto_frame_write(s->c.fd, HC_FRAME_SHUTDOWN, 0, NULL, 0) < 0)
		return -1;
	int r = hc_child_wait(&s->child, WAIT_MS);
	st = s->child.status;
	hc_child_stop(&s->child, 0);
	ac_free(&s->c);
	if (r < 0)
		return -2;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

/* One command in a fresh agent. */
static int run1(const char *const *argv, const char *cwd, const char *user, uint32_t flags,
		uint32_t timeout_ms, struct outcome *o, struct hc_error *err)
{
	struct session s;
	int r = session_start(&s, err);

	if (r < 0)
		return r;
	r = ac_send_exec(&s.c, argv, cwd, user, flags, timeout_ms);
	if (r >= 0)
		r = ac_collect(&s.c, o);
	int st = session_end(&s);
	if (r >= 0 && st != 0)
		r = hc_error_set(err, -EIO, "agent ended with %d", st);
	return r;
}

#define NEED_INIT()                                                                                \
	do {                                                                                       \
		if (access(init_path, X_OK) < 0)                                                   \
			SKIP("build/bin/hotcell-init not built (make build/bin/hotcell-init)");    \
	} while (0)

/* The process whose pid is in file has ended (or ends within WAIT_MS): watched through a
 * pidfd, which becomes readable at exit, so there is no sleeping. */
static bool gone(const char *file)
{
	char buf[32] = {0};
	int fd = open(file, O_RDONLY | O_CLOEXEC), pfd;
	bool ok;

	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	pfd = (int)syscall(SYS_pidfd_open, atoi(buf), 0);
	if (pfd < 0)
		return errno == ESRCH;
	struct pollfd p = {.fd = pfd, .events = POLLIN};
	ok = poll(&p, 1, WAIT_MS) == 1;
	close(pfd);
	return ok;
}

TEST(hello_and_shutdown)
{
	struct hc_error err = {0};
	struct session s;

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	ASSERT_EQ_INT(s.hello.version, HC_PROTO_VERSION);
	ASSERT_TRUE(s.hello.boot_ns > 0);
	ASSERT_TRUE(strstr(s.hello.agent, "hotcell-init") != NULL);
	ASSERT_EQ_INT(session_end(&s), 0);
}

TEST(exit_codes)
{
	struct hc_error err = {0};
	struct outcome o;
	const int codes[] = {0, 1, 7};

	NEED_INIT();
	for (size_t i = 0; i < HC_ARRAY_SIZE(codes); i++) {
		char cmd[32];
		snprintf(cmd, sizeof(cmd), "exit %d", codes[i]);
		const char *argv[] = {"sh", "-c", cmd, NULL};
		ASSERT_OK(run1(argv, "", "", 0, 0, &o, &err), &err);
		ASSERT_TRUE(o.got_exit);
		ASSERT_EQ_INT(o.exit.code, codes[i]);
		ASSERT_EQ_INT(o.exit.signal, 0);
		ASSERT_EQ_INT(o.exit.timed_out, 0);
		outcome_free(&o);
	}
}

TEST(not_found_and_not_executable)
{
	struct hc_error err = {0};
	struct outcome o;
	char path[4300];

	NEED_INIT();
	const char *a1[] = {"doesnotexist", NULL};
	ASSERT_OK(run1(a1, "", "", 0, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_error && !o.got_exit);
	ASSERT_EQ_INT(o.error.reason, HC_EXEC_ERR_NOT_FOUND);
	ASSERT_EQ_STR(o.error.message, "executable file `doesnotexist` not found in $PATH");
	outcome_free(&o);

	snprintf(path, sizeof(path), "%s/noexec.sh", tmpdir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ_INT(write(fd, "#!/bin/sh\n", 10), 10);
	close(fd);
	const char *a2[] = {path, NULL};
	ASSERT_OK(run1(a2, "", "", 0, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_error);
	ASSERT_EQ_INT(o.error.reason, HC_EXEC_ERR_NOT_EXECUTABLE);
	outcome_free(&o);
}

TEST(bad_workdir_and_create)
{
	struct hc_error err = {0};
	struct outcome o;
	char dir[4300];

	NEED_INIT();
	snprintf(dir, sizeof(dir), "%s/made/by/agent", tmpdir);
	const char *argv[] = {"pwd", NULL};
	ASSERT_OK(run1(argv, dir, "", 0, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_error);
	ASSERT_EQ_INT(o.error.reason, HC_EXEC_ERR_BAD_WORKDIR);
	ASSERT_TRUE(strstr(o.error.message, dir) != NULL);
	outcome_free(&o);

	ASSERT_OK(run1(argv, dir, "", HC_EXEC_F_CREATE_WORKDIR, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_exit);
	ASSERT_EQ_INT(o.exit.code, 0);
	ASSERT_EQ_INT(o.out.len, strlen(dir) + 1);
	ASSERT_TRUE(memcmp(o.out.data, dir, strlen(dir)) == 0);
	outcome_free(&o);
}

TEST(signal_report)
{
	struct hc_error err = {0};
	struct outcome o;

	NEED_INIT();
	const char *argv[] = {"sh", "-c", "kill -TERM $$", NULL};
	ASSERT_OK(run1(argv, "", "", 0, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_exit);
	ASSERT_EQ_INT(o.exit.code, -1);
	ASSERT_EQ_INT(o.exit.signal, SIGTERM);
	ASSERT_EQ_INT(o.exit.timed_out, 0);
	outcome_free(&o);
}

TEST(signal_frame_forwarded)
{
	struct hc_error err = {0};
	struct session s;
	struct outcome o;
	struct hc_buf b = HC_BUF_INIT(0);

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	/* "ready" on stdout tells the trap is set; then SIGUSR1 from the host ends it with 42. */
	const char *argv[] = {
		"sh", "-c", "trap 'exit 42' USR1; echo ready; while :; do sleep 0.05; done", NULL};
	ASSERT_EQ_INT(ac_send_exec(&s.c, argv, "", "", 0, 0), 0);
	ASSERT_EQ_INT(ac_skip_to(&s.c, HC_FRAME_STDOUT), 1);
	ASSERT_EQ_INT(hc_proto_signal_encode(&b, AC_STREAM, SIGUSR1), 0);
	ASSERT_EQ_INT(write(s.c.fd, b.data, b.len), (ssize_t)b.len);
	hc_buf_free(&b);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_exit);
	ASSERT_EQ_INT(o.exit.code, 42);
	outcome_free(&o);
	ASSERT_EQ_INT(session_end(&s), 0);
}

TEST(stdout_stderr_apart_and_binary)
{
	struct hc_error err = {0};
	struct outcome o;

	NEED_INIT();
	/* Every byte value on stdout, a NUL-laden line on stderr, interleaved. */
	const char *argv[] = {"sh", "-c",
			      "i=0; while [ $i -lt 256 ]; do printf \"\\\\$(printf %o $i)\"; "
			      "i=$((i+1)); done; printf 'e\\000r\\n' >&2; printf tail",
			      NULL};
	ASSERT_OK(run1(argv, "", "", 0, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_exit);
	ASSERT_EQ_INT(o.exit.code, 0);
	ASSERT_EQ_INT(o.out.len, 256 + 4);
	for (int i = 0; i < 256; i++)
		if ((uint8_t)o.out.data[i] != i)
			FAILF("stdout byte %d is %d", i, (uint8_t)o.out.data[i]);
	ASSERT_TRUE(memcmp(o.out.data + 256, "tail", 4) == 0);
	ASSERT_EQ_INT(o.err.len, 4);
	ASSERT_TRUE(memcmp(o.err.data, "e\0r\n", 4) == 0);
	outcome_free(&o);
}

TEST(stdin_roundtrip)
{
	struct hc_error err = {0};
	struct session s;
	struct outcome o;
	static uint8_t data[300000];

	NEED_INIT();
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 256);
	ASSERT_OK(session_start(&s, &err), &err);
	const char *argv[] = {"cat", NULL};
	ASSERT_EQ_INT(ac_send_exec(&s.c, argv, "", "", HC_EXEC_F_STDIN, 0), 0);
	/* Send it all, then close: the agent must keep the command's output flowing while it
	 * takes our stdin, or this deadlocks (the collect below would time out). A second
	 * thread of control is not needed: the socket buffers plus the agent's queues hold
	 * 300 kB. */
	for (size_t off = 0; off < sizeof(data); off += HC_PROTO_MAX_DATA) {
		size_t n = sizeof(data) - off < HC_PROTO_MAX_DATA ? sizeof(data) - off
								  : HC_PROTO_MAX_DATA;
		ASSERT_EQ_INT(
			hc_proto_frame_write(s.c.fd, HC_FRAME_STDIN, AC_STREAM, data + off, n), 0);
	}
	ASSERT_EQ_INT(hc_proto_frame_write(s.c.fd, HC_FRAME_STDIN_CLOSE, AC_STREAM, NULL, 0), 0);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_exit);
	ASSERT_EQ_INT(o.exit.code, 0);
	ASSERT_EQ_INT(o.out.len, sizeof(data));
	ASSERT_TRUE(memcmp(o.out.data, data, sizeof(data)) == 0);
	outcome_free(&o);
	ASSERT_EQ_INT(session_end(&s), 0);
}

TEST(no_stdin_is_dev_null)
{
	struct hc_error err = {0};
	struct outcome o;

	NEED_INIT();
	const char *argv[] = {"sh", "-c", "cat; echo done", NULL};
	ASSERT_OK(run1(argv, "", "", 0, 0, &o, &err), &err);
	ASSERT_EQ_INT(o.exit.code, 0);
	ASSERT_EQ_STR(o.out.data, "done\n");
	outcome_free(&o);
}

TEST(five_megabytes)
{
	struct hc_error err = {0};
	struct session s;
	struct outcome o;

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	/* 5 MB on stdout and 1 MB on stderr at once, read slowly at first: back-pressure. */
	const char *argv[] = {"sh", "-c",
			      "head -c 1048576 /dev/zero >&2 & head -c 5242880 /dev/zero; wait",
			      NULL};
	ASSERT_EQ_INT(ac_send_exec(&s.c, argv, "", "", 0, 0), 0);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_exit);
	ASSERT_EQ_INT(o.exit.code, 0);
	ASSERT_EQ_INT(o.out.len, 5242880);
	ASSERT_EQ_INT(o.err.len, 1048576);
	outcome_free(&o);
	ASSERT_EQ_INT(session_end(&s), 0);
}

TEST(timeout_kills)
{
	struct hc_error err = {0};
	struct outcome o;
	char pidfile[4300];

	NEED_INIT();
	snprintf(pidfile, sizeof(pidfile), "%s/bg.pid", tmpdir);
	char cmd[4400];
	/* A background child in the same group must die too. */
	snprintf(cmd, sizeof(cmd), "sleep 300 & echo $! > %s; echo started; wait", pidfile);
	const char *argv[] = {"sh", "-c", cmd, NULL};
	ASSERT_OK(run1(argv, "", "", 0, 1500, &o, &err), &err);
	ASSERT_TRUE(o.got_exit);
	ASSERT_EQ_INT(o.exit.timed_out, 1);
	ASSERT_EQ_INT(o.exit.signal, SIGKILL);
	ASSERT_EQ_INT(o.exit.code, -1);
	/* Output written before the deadline still arrives. */
	ASSERT_EQ_STR(o.out.data, "started\n");
	outcome_free(&o);
	ASSERT_TRUE(gone(pidfile));
}

TEST(result_json)
{
	struct hc_error err = {0};
	struct outcome o;
	char cmd[4400];

	NEED_INIT();
	snprintf(cmd, sizeof(cmd), "printf '{\"answer\": 42}' > %s", result_path);
	const char *argv[] = {"sh", "-c", cmd, NULL};
	ASSERT_OK(run1(argv, "", "", HC_EXEC_F_RESULT, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_exit && o.got_result);
	ASSERT_EQ_INT(o.result_status, HC_RESULT_OK);
	ASSERT_EQ_STR(o.result.data, "{\"answer\": 42}");
	outcome_free(&o);

	/* Over 1 MiB: status "too large", no content. */
	snprintf(cmd, sizeof(cmd), "head -c 1048577 /dev/zero > %s", result_path);
	const char *argv2[] = {"sh", "-c", cmd, NULL};
	ASSERT_OK(run1(argv2, "", "", HC_EXEC_F_RESULT, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_exit && o.got_result);
	ASSERT_EQ_INT(o.result_status, HC_RESULT_TOO_LARGE);
	outcome_free(&o);

	/* A command that writes none reports none, even when an earlier one did. */
	const char *argv3[] = {"true", NULL};
	ASSERT_OK(run1(argv3, "", "", HC_EXEC_F_RESULT, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_exit && !o.got_result);
	outcome_free(&o);
	/* Without the flag, no RESULT even when the file is there. */
	ASSERT_OK(run1(argv, "", "", 0, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_exit && !o.got_result);
	outcome_free(&o);
}

TEST(sequential_execs)
{
	struct hc_error err = {0};
	struct session s;
	struct outcome o;

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	for (int i = 0; i < 5; i++) {
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "echo run%d; exit %d", i, i);
		const char *argv[] = {"sh", "-c", cmd, NULL};
		ASSERT_EQ_INT(ac_send_exec(&s.c, argv, "", "", 0, 0), 0);
		ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
		ASSERT_EQ_INT(o.exit.code, i);
		char want[16];
		snprintf(want, sizeof(want), "run%d\n", i);
		ASSERT_EQ_STR(o.out.data, want);
		outcome_free(&o);
	}
	/* An error in between leaves the agent serving. */
	const char *bad[] = {"doesnotexist", NULL};
	ASSERT_EQ_INT(ac_send_exec(&s.c, bad, "", "", 0, 0), 0);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_error);
	outcome_free(&o);
	const char *ok[] = {"true", NULL};
	ASSERT_EQ_INT(ac_send_exec(&s.c, ok, "", "", 0, 0), 0);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_exit && o.exit.code == 0);
	outcome_free(&o);
	ASSERT_EQ_INT(session_end(&s), 0);
}

TEST(id_in_use_and_invalid)
{
	struct hc_error err = {0};
	struct session s;
	struct outcome o;

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	const char *argv[] = {"sh", "-c", "sleep 1", NULL};
	ASSERT_EQ_INT(ac_send_exec(&s.c, argv, "", "", 0, 0), 0);
	/* The same id again: refused on that id, the running command is not disturbed. */
	ASSERT_EQ_INT(ac_send_exec(&s.c, argv, "", "", 0, 0), 0);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_started && o.got_error);
	ASSERT_EQ_INT(o.error.reason, HC_EXEC_ERR_INVALID);
	ASSERT_TRUE(strstr(o.error.message, "in use") != NULL);
	outcome_free(&o);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_exit && o.exit.code == 0);
	outcome_free(&o);
	/* A guest->host frame type from the host is refused, the agent goes on. */
	ASSERT_EQ_INT(hc_proto_frame_write(s.c.fd, HC_FRAME_STDOUT, AC_STREAM, "x", 1), 0);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_error && o.error.reason == HC_EXEC_ERR_INVALID);
	outcome_free(&o);
	ASSERT_EQ_INT(session_end(&s), 0);
}

TEST(malformed_stream_ends_agent)
{
	struct hc_error err = {0};
	struct session s;
	const uint8_t junk[HC_PROTO_HEADER_SIZE] = {0, 0, 0, 1, 200, 0, 0, 0, 0, 0, 0, 1};

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	ASSERT_EQ_INT(write(s.c.fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	struct outcome o;
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_error && o.error.reason == HC_EXEC_ERR_INVALID);
	outcome_free(&o);
	ASSERT_EQ_INT(hc_child_wait(&s.child, WAIT_MS), 0);
	ASSERT_TRUE(WIFEXITED(s.child.status) && WEXITSTATUS(s.child.status) == 0);
	close(s.c.fd);
	hc_buf_free(&s.c.in);
}

TEST(eof_kills_running_command)
{
	struct hc_error err = {0};
	struct session s;
	char pidfile[4300], cmd[4400];

	NEED_INIT();
	snprintf(pidfile, sizeof(pidfile), "%s/eof.pid", tmpdir);
	snprintf(cmd, sizeof(cmd), "echo $$ > %s; echo up; exec sleep 300", pidfile);
	ASSERT_OK(session_start(&s, &err), &err);
	const char *argv[] = {"sh", "-c", cmd, NULL};
	ASSERT_EQ_INT(ac_send_exec(&s.c, argv, "", "", 0, 0), 0);
	ASSERT_EQ_INT(ac_skip_to(&s.c, HC_FRAME_STDOUT), 1);
	close(s.c.fd); /* the host goes away */
	ASSERT_EQ_INT(hc_child_wait(&s.child, WAIT_MS), 0);
	ASSERT_TRUE(WIFEXITED(s.child.status) && WEXITSTATUS(s.child.status) == 0);
	hc_buf_free(&s.c.in);
	ASSERT_TRUE(gone(pidfile));
}

TEST(env_last_wins_and_home)
{
	struct hc_error err = {0};
	struct session s;
	struct outcome o;
	char *env[] = {S("A=1"), S("PATH=/nonexistent"), S("A=2"), S("PATH=/usr/bin:/bin")};

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	const char *argv[] = {"sh", "-c", "echo $A $HOME; env | grep -c '^A='", NULL};
	ASSERT_EQ_INT(ac_send_exec_env(&s.c, argv, env, 4, "", "", 0, 0), 0);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_exit);
	ASSERT_EQ_STR(o.out.data, "2 /root\n1\n");
	outcome_free(&o);
	ASSERT_EQ_INT(session_end(&s), 0);
}

static int write_file(const char *dir, const char *name, const char *content)
{
	char path[4400];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, content, strlen(content)) != (ssize_t)strlen(content)) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

TEST(users_from_image_files)
{
	struct hc_error err = {0};
	struct outcome o;

	NEED_INIT();
	if (geteuid() != 0)
		SKIP("needs root to switch users");
	const char *argv[] = {"sh", "-c", "echo $(id -u) $(id -g) $(id -G) $HOME", NULL};
	ASSERT_OK(run1(argv, "/", "alice", 0, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_exit);
	ASSERT_EQ_STR(o.out.data, "1234 2000 2000 3000 /home/alice\n");
	outcome_free(&o);
	ASSERT_OK(run1(argv, "/", "alice:wheel", 0, 0, &o, &err), &err);
	ASSERT_EQ_STR(o.out.data, "1234 10 10 3000 /home/alice\n");
	outcome_free(&o);
	/* A uid the image does not know: gid 0, HOME=/. */
	ASSERT_OK(run1(argv, "/", "4321", 0, 0, &o, &err), &err);
	ASSERT_EQ_STR(o.out.data, "4321 0 0 /\n");
	outcome_free(&o);
	ASSERT_OK(run1(argv, "/", "4321:77", 0, 0, &o, &err), &err);
	ASSERT_EQ_STR(o.out.data, "4321 77 77 /\n");
	outcome_free(&o);
	ASSERT_OK(run1(argv, "/", "nobodyhere", 0, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_error);
	ASSERT_EQ_INT(o.error.reason, HC_EXEC_ERR_BAD_USER);
	ASSERT_TRUE(strstr(o.error.message, "nobodyhere") != NULL);
	outcome_free(&o);
	ASSERT_OK(run1(argv, "/", "alice:nogroup", 0, 0, &o, &err), &err);
	ASSERT_TRUE(o.got_error && o.error.reason == HC_EXEC_ERR_BAD_USER);
	outcome_free(&o);
}

int main(void)
{
	const char *b = getenv("BUILD");
	const char *top = getenv("HOTCELL_TOP");

	if (getenv("HOTCELL_INIT"))
		snprintf(init_path, sizeof(init_path), "%s", getenv("HOTCELL_INIT"));
	else
		snprintf(init_path, sizeof(init_path), "%s%s%s/bin/hotcell-init", top ? top : "",
			 top ? "/" : "", b ? b : "build");
	if (!mkdtemp(tmpdir)) {
		printf("FAIL: setup: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(result_path, sizeof(result_path), "%s/result.json", tmpdir);
	snprintf(etc_dir, sizeof(etc_dir), "%s/etc", tmpdir);
	mkdir(etc_dir, 0755);
	if (write_file(etc_dir, "passwd",
		       "root:x:0:0:root:/root:/bin/sh\n# a comment\nbroken line\n"
		       "alice:x:1234:2000:Alice:/home/alice:/bin/sh\n") < 0 ||
	    write_file(etc_dir, "group",
		       "root:x:0:\nwheel:x:10:\nalice:x:2000:\nstaff:x:3000:bob,alice\n"
		       "other:x:4000:alicex\n") < 0) {
		printf("FAIL: setup: cannot write %s\n", etc_dir);
		return 1;
	}

	RUN(hello_and_shutdown);
	RUN(exit_codes);
	RUN(not_found_and_not_executable);
	RUN(bad_workdir_and_create);
	RUN(signal_report);
	RUN(signal_frame_forwarded);
	RUN(stdout_stderr_apart_and_binary);
	RUN(stdin_roundtrip);
	RUN(no_stdin_is_dev_null);
	RUN(five_megabytes);
	RUN(timeout_kills);
	RUN(result_json);
	RUN(sequential_execs);
	RUN(id_in_use_and_invalid);
	RUN(malformed_stream_ends_agent);
	RUN(eof_kills_running_command);
	RUN(users_from_image_files);
	RUN(env_last_wins_and_home);

	struct hc_error err = {0};
	if (hc_path_rm_rf(tmpdir, &err) < 0)
		fprintf(stderr, "cannot remove %s: %s\n", tmpdir, err.message);
	return test_summary();
}
