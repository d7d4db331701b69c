/* SPDX-License-Identifier: MIT */
/*
 * hotcell-init's serve loop on the host, without a VM: build/bin/hotcell-init --serve-fd N
 * over a socketpair (docs/protocol.md, "Test mode"), spawned with hc_child_spawn. Each test
 * plays the host's side of the conversation with the real protocol code.
 */
#include <arpa/inet.h>
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

/* -t: a pty as controlling terminal, its initial size and a RESIZE, stdin through the pty's
 * line discipline, stderr merged into STDOUT frames. */
TEST(tty_exec_and_resize)
{
	struct hc_error err = {0};
	struct session s;
	struct outcome o;
	struct hc_buf b = HC_BUF_INIT(0);
	const char *argv[] = {"sh", "-c",
			      "tty; stty size; echo to-err >&2; read l; stty size; echo \"got=$l\"",
			      NULL};
	struct hc_proto_exec e = {.flags = HC_EXEC_F_TTY | HC_EXEC_F_STDIN,
				  .user = S(""),
				  .cwd = S(""),
				  .argv = (char **)argv,
				  .argc = 3,
				  .rows = 24,
				  .cols = 80};

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	ASSERT_EQ_INT(hc_proto_exec_encode(&b, AC_STREAM, &e), 0);
	ASSERT_EQ_INT(hc_proto_resize_encode(&b, AC_STREAM, 40, 120), 0);
	ASSERT_EQ_INT(hc_proto_frame_append(&b, HC_FRAME_STDIN, AC_STREAM, "hello\n", 6), 0);
	ASSERT_EQ_INT(write(s.c.fd, b.data, b.len), (ssize_t)b.len);
	hc_buf_free(&b);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_exit);
	ASSERT_EQ_INT(o.exit.code, 0);
	ASSERT_EQ_INT(o.err.len, 0); /* never a STDERR frame with a tty */
	_cleanup_free_ char *out = strndup(o.out.data, o.out.len);
	ASSERT_TRUE(out != NULL);
	ASSERT_TRUE(strstr(out, "/dev/pts/") != NULL);
	/* The RESIZE came with the EXEC: the size is the new one. ONLCR: the pty's "\r\n". */
	if (!strstr(out, "40 120\r\n") || !strstr(out, "to-err\r\n") || !strstr(out, "got=hello"))
		FAILF("output: %s", out);
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

/* The next frame (consumed into *ret, payload copied into buf), skipping WINDOW frames. */
static int next_frame(struct agent_conn *c, struct hc_proto_frame *ret, uint8_t *buf, size_t max)
{
	for (;;) {
		struct hc_proto_frame f;
		size_t used;
		int r = ac_next_frame(c, &f, &used);

		if (r <= 0)
			return r == 0 ? -EPIPE : r;
		*ret = f;
		if (f.len <= max)
			memcpy(buf, f.payload, f.len);
		ret->payload = buf;
		hc_buf_consume(&c->in, used);
		if (f.type != HC_FRAME_WINDOW)
			return 1;
	}
}

static int send_exec_flags(struct agent_conn *c, uint32_t stream, const char *script,
			   uint32_t flags)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	static char *const env[] = {S("PATH=/usr/local/bin:/usr/bin:/bin"), NULL};

	return ac_send_exec_on(c, stream, argv, env, 1, "", "", flags, 0);
}

TEST(many_streams_busy_cancel_reuse)
{
	struct hc_error err = {0};
	struct session s;
	struct hc_proto_frame f;
	static uint8_t buf[HC_PROTO_MAX_PAYLOAD];
	struct hc_proto_error pe;
	struct hc_proto_exit x;
	int started = 0, exits = 0;

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	/* 64 commands waiting on their stdin, ids 100..163. */
	for (uint32_t i = 0; i < HC_PROTO_MAX_STREAMS; i++)
		ASSERT_EQ_INT(send_exec_flags(&s.c, 100 + i, "cat", HC_EXEC_F_STDIN), 0);
	while (started < HC_PROTO_MAX_STREAMS) {
		ASSERT_EQ_INT(next_frame(&s.c, &f, buf, sizeof(buf)), 1);
		ASSERT_EQ_INT(f.type, HC_FRAME_STARTED);
		started++;
	}
	/* The 65th: BUSY on its id. */
	ASSERT_EQ_INT(send_exec_flags(&s.c, 7, "true", 0), 0);
	ASSERT_EQ_INT(next_frame(&s.c, &f, buf, sizeof(buf)), 1);
	ASSERT_TRUE(f.type == HC_FRAME_ERROR && f.stream == 7);
	ASSERT_EQ_INT(hc_proto_error_decode(&f, &pe), 0);
	ASSERT_EQ_INT(pe.reason, HC_EXEC_ERR_BUSY);
	/* CANCEL one: it is killed, EXIT says so, and its id is free again. */
	ASSERT_EQ_INT(hc_proto_frame_write(s.c.fd, HC_FRAME_CANCEL, 100, NULL, 0), 0);
	ASSERT_EQ_INT(next_frame(&s.c, &f, buf, sizeof(buf)), 1);
	ASSERT_TRUE(f.type == HC_FRAME_EXIT && f.stream == 100);
	ASSERT_EQ_INT(hc_proto_exit_decode(&f, &x), 0);
	ASSERT_EQ_INT(x.signal, SIGKILL);
	/* Late frames for it are dropped; CANCEL of an unknown id too. */
	ASSERT_EQ_INT(hc_proto_frame_write(s.c.fd, HC_FRAME_STDIN, 100, "late", 4), 0);
	ASSERT_EQ_INT(hc_proto_frame_write(s.c.fd, HC_FRAME_CANCEL, 9999, NULL, 0), 0);
	ASSERT_EQ_INT(send_exec_flags(&s.c, 100, "echo reused", 0), 0);
	bool got_out = false, got_exit = false;
	while (!got_exit) {
		ASSERT_EQ_INT(next_frame(&s.c, &f, buf, sizeof(buf)), 1);
		ASSERT_EQ_INT(f.stream, 100);
		if (f.type == HC_FRAME_STDOUT)
			got_out = f.len == 7 && memcmp(f.payload, "reused\n", 7) == 0;
		got_exit = f.type == HC_FRAME_EXIT;
	}
	ASSERT_TRUE(got_out);
	/* Each of the others echoes its own stdin. */
	for (uint32_t i = 1; i < HC_PROTO_MAX_STREAMS; i++) {
		char msg[16];
		int n = snprintf(msg, sizeof(msg), "s%u\n", 100 + i);
		ASSERT_EQ_INT(hc_proto_frame_write(s.c.fd, HC_FRAME_STDIN, 100 + i, msg, (size_t)n),
			      0);
		ASSERT_EQ_INT(hc_proto_frame_write(s.c.fd, HC_FRAME_STDIN_CLOSE, 100 + i, NULL, 0),
			      0);
	}
	while (exits < HC_PROTO_MAX_STREAMS - 1) {
		ASSERT_EQ_INT(next_frame(&s.c, &f, buf, sizeof(buf)), 1);
		ASSERT_TRUE(f.stream > 100 && f.stream < 100 + HC_PROTO_MAX_STREAMS);
		if (f.type == HC_FRAME_STDOUT) {
			char want[16];
			snprintf(want, sizeof(want), "s%u\n", f.stream);
			ASSERT_TRUE(f.len == strlen(want) && memcmp(f.payload, want, f.len) == 0);
			ASSERT_OK(ac_ack(&s.c, f.stream, f.len), NULL);
		} else {
			ASSERT_EQ_INT(f.type, HC_FRAME_EXIT);
			ASSERT_EQ_INT(hc_proto_exit_decode(&f, &x), 0);
			ASSERT_EQ_INT(x.code, 0);
			exits++;
		}
	}
	ASSERT_EQ_INT(session_end(&s), 0);
}

TEST(window_overrun_fails_the_stream)
{
	struct hc_error err = {0};
	struct session s;
	struct hc_proto_frame f;
	static uint8_t buf[HC_PROTO_MAX_PAYLOAD], chunk[HC_PROTO_MAX_DATA];
	struct hc_proto_error pe;

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	/* sleep never reads its stdin: beyond the pipe, stdin waits in the agent, which takes
	 * no more than a window of it. */
	ASSERT_EQ_INT(send_exec_flags(&s.c, 3, "exec sleep 30", HC_EXEC_F_STDIN), 0);
	ASSERT_EQ_INT(next_frame(&s.c, &f, buf, sizeof(buf)), 1);
	ASSERT_EQ_INT(f.type, HC_FRAME_STARTED);
	for (int i = 0; i < 40; i++)
		ASSERT_EQ_INT(hc_proto_frame_write(s.c.fd, HC_FRAME_STDIN, 3, chunk, sizeof(chunk)),
			      0);
	ASSERT_EQ_INT(next_frame(&s.c, &f, buf, sizeof(buf)), 1);
	ASSERT_TRUE(f.type == HC_FRAME_ERROR && f.stream == 3);
	ASSERT_EQ_INT(hc_proto_error_decode(&f, &pe), 0);
	ASSERT_EQ_INT(pe.reason, HC_EXEC_ERR_INVALID);
	ASSERT_TRUE(strstr(pe.message, "flow control") != NULL);
	/* A WINDOW beyond what was sent fails a stream too. */
	ASSERT_EQ_INT(send_exec_flags(&s.c, 4, "exec sleep 30", 0), 0);
	ASSERT_EQ_INT(next_frame(&s.c, &f, buf, sizeof(buf)), 1);
	ASSERT_EQ_INT(f.type, HC_FRAME_STARTED);
	ASSERT_OK(ac_ack(&s.c, 4, 1000), NULL);
	ASSERT_EQ_INT(next_frame(&s.c, &f, buf, sizeof(buf)), 1);
	ASSERT_TRUE(f.type == HC_FRAME_ERROR && f.stream == 4);
	ASSERT_EQ_INT(session_end(&s), 0);
}

/* A frame with a hand-made payload. */
static int send_raw(struct agent_conn *c, uint8_t type, uint32_t stream, const void *p, size_t n)
{
	return hc_proto_frame_write(c->fd, type, stream, p, n);
}

static int expect_error(struct agent_conn *c, uint32_t stream, uint32_t reason, const char *text)
{
	static uint8_t buf[HC_PROTO_MAX_PAYLOAD];
	struct hc_proto_frame f;
	struct hc_proto_error pe;

	for (;;) {
		if (next_frame(c, &f, buf, sizeof(buf)) != 1)
			return -1;
		if (f.type == HC_FRAME_STARTED)
			continue;
		if (f.type != HC_FRAME_ERROR || f.stream != stream ||
		    hc_proto_error_decode(&f, &pe) < 0)
			return -2;
		if (pe.reason != reason || (text && !strstr(pe.message, text))) {
			fprintf(stderr, "error %u: %s\n", pe.reason, pe.message);
			return -3;
		}
		return 0;
	}
}

TEST(frames_out_of_place)
{
	struct hc_error err = {0};
	struct session s;
	struct hc_buf b = HC_BUF_INIT(0);
	static struct hc_proto_entry e = {.kind = HC_ENTRY_DIR, .mode = 0755};
	char *argv[] = {S("true"), NULL};
	struct hc_proto_exec ex = {.flags = HC_EXEC_F_DETACH, .argv = argv, .argc = 1};

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	/* DETACH with STDIN: the encoder refuses it, so patch the flags of a valid frame. */
	ASSERT_EQ_INT(hc_proto_exec_encode(&b, 5, &ex), 0);
	b.data[HC_PROTO_HEADER_SIZE + 3] = HC_EXEC_F_DETACH | HC_EXEC_F_STDIN;
	ASSERT_EQ_INT(write(s.c.fd, b.data, b.len), (ssize_t)b.len);
	ASSERT_EQ_INT(expect_error(&s.c, 5, HC_EXEC_ERR_INVALID, "malformed exec"), 0);
	/* An exec on stream 0. */
	b.data[HC_PROTO_HEADER_SIZE + 3] = HC_EXEC_F_DETACH;
	memset(b.data + 8, 0, 4);
	ASSERT_EQ_INT(write(s.c.fd, b.data, b.len), (ssize_t)b.len);
	ASSERT_EQ_INT(expect_error(&s.c, 0, HC_EXEC_ERR_INVALID, "on stream 0"), 0);
	/* An ENTRY on a command's stream fails it (the command is killed). */
	ASSERT_EQ_INT(send_exec_flags(&s.c, 6, "exec sleep 30", 0), 0);
	hc_buf_reset(&b);
	ASSERT_EQ_INT(hc_proto_entry_encode(&b, 6, &e), 0);
	ASSERT_EQ_INT(write(s.c.fd, b.data, b.len), (ssize_t)b.len);
	ASSERT_EQ_INT(expect_error(&s.c, 6, HC_EXEC_ERR_INVALID, "entry"), 0);
	/* RESEED and SHUTDOWN belong on stream 0. */
	ASSERT_EQ_INT(send_raw(&s.c, HC_FRAME_SHUTDOWN, 8, NULL, 0), 0);
	ASSERT_EQ_INT(expect_error(&s.c, 8, HC_EXEC_ERR_INVALID, "shutdown"), 0);
	/* File data without its entry, then the rest of that put is dropped. */
	hc_buf_reset(&b);
	static struct hc_proto_file_req q;
	snprintf(q.path, sizeof(q.path), "%s/put-bad", tmpdir);
	ASSERT_EQ_INT(hc_proto_put_encode(&b, 9, &q), 0);
	ASSERT_EQ_INT(write(s.c.fd, b.data, b.len), (ssize_t)b.len);
	ASSERT_EQ_INT(send_raw(&s.c, HC_FRAME_FILE_DATA, 9, "x", 1), 0);
	ASSERT_EQ_INT(expect_error(&s.c, 9, HC_EXEC_ERR_INVALID, "beyond the size"), 0);
	ASSERT_EQ_INT(send_raw(&s.c, HC_FRAME_END, 9, NULL, 0), 0);
	/* A get of a missing path. */
	hc_buf_reset(&b);
	ASSERT_EQ_INT(hc_proto_get_encode(&b, 10, "/nonexistent/x"), 0);
	ASSERT_EQ_INT(write(s.c.fd, b.data, b.len), (ssize_t)b.len);
	ASSERT_EQ_INT(expect_error(&s.c, 10, HC_ERR_NOENT, "no such file or directory"), 0);
	/* Still serving. */
	struct outcome o;
	const char *ok[] = {"true", NULL};
	ASSERT_EQ_INT(ac_send_exec(&s.c, ok, "", "", 0, 0), 0);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_started && o.got_exit && o.exit.code == 0);
	outcome_free(&o);
	hc_buf_free(&b);
	ASSERT_EQ_INT(session_end(&s), 0);
}

TEST(reseed_frames)
{
	struct hc_error err = {0};
	struct session s;
	struct hc_buf b = HC_BUF_INIT(0);
	static uint8_t buf[HC_PROTO_MAX_PAYLOAD], seed[64];
	struct hc_proto_reseed q = {.realtime_ns = 1, .seed = seed, .seed_len = sizeof(seed)};
	struct hc_proto_frame f;

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	ASSERT_EQ_INT(hc_proto_reseed_encode(&b, &q), 0);
	ASSERT_EQ_INT(write(s.c.fd, b.data, b.len), (ssize_t)b.len);
	ASSERT_EQ_INT(next_frame(&s.c, &f, buf, sizeof(buf)), 1);
	ASSERT_TRUE(f.type == HC_FRAME_DONE && f.stream == 0);
	/* A seed too short (hand-made: the encoder refuses it). */
	uint8_t p[8 + 16] = {0};
	ASSERT_EQ_INT(send_raw(&s.c, HC_FRAME_RESEED, 0, p, sizeof(p)), 0);
	ASSERT_EQ_INT(expect_error(&s.c, 0, HC_EXEC_ERR_INVALID, "reseed"), 0);
	/* On another stream. */
	ASSERT_EQ_INT(send_raw(&s.c, HC_FRAME_RESEED, 2, b.data + HC_PROTO_HEADER_SIZE,
			       b.len - HC_PROTO_HEADER_SIZE),
		      0);
	ASSERT_EQ_INT(expect_error(&s.c, 2, HC_EXEC_ERR_INVALID, "reseed"), 0);
	hc_buf_free(&b);
	ASSERT_EQ_INT(session_end(&s), 0);
}

/* NETCONF (v3): in test mode the agent checks the frame and answers DONE without touching the
 * host's interfaces; malformed or off stream 0 it is refused and the agent serves on. */
TEST(netconf_frames)
{
	struct hc_error err = {0};
	struct session s;
	struct hc_buf b = HC_BUF_INIT(0);
	static uint8_t buf[HC_PROTO_MAX_PAYLOAD];
	struct hc_proto_netconf n = {.prefix = 30, .mtu = 1500, .mac = {2, 0x68, 0x63, 0, 0, 8}};
	struct hc_proto_frame f;

	NEED_INIT();
	n.addr = htonl(0x0a000006);
	n.gateway = n.dns = htonl(0x0a000005);
	ASSERT_OK(session_start(&s, &err), &err);
	ASSERT_EQ_INT(hc_proto_netconf_encode(&b, &n), 0);
	ASSERT_EQ_INT(write(s.c.fd, b.data, b.len), (ssize_t)b.len);
	ASSERT_EQ_INT(next_frame(&s.c, &f, buf, sizeof(buf)), 1);
	ASSERT_TRUE(f.type == HC_FRAME_DONE && f.stream == 0);
	/* A multicast MAC (hand-made: the encoder refuses it). */
	uint8_t p[21];
	memcpy(p, b.data + HC_PROTO_HEADER_SIZE, sizeof(p));
	p[15] = 1;
	ASSERT_EQ_INT(send_raw(&s.c, HC_FRAME_NETCONF, 0, p, sizeof(p)), 0);
	ASSERT_EQ_INT(expect_error(&s.c, 0, HC_EXEC_ERR_INVALID, "netconf"), 0);
	/* On another stream. */
	ASSERT_EQ_INT(send_raw(&s.c, HC_FRAME_NETCONF, 2, b.data + HC_PROTO_HEADER_SIZE,
			       b.len - HC_PROTO_HEADER_SIZE),
		      0);
	ASSERT_EQ_INT(expect_error(&s.c, 2, HC_EXEC_ERR_INVALID, "netconf"), 0);
	struct outcome o;
	const char *ok[] = {"true", NULL};
	ASSERT_EQ_INT(ac_send_exec(&s.c, ok, "", "", 0, 0), 0);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(o.got_started && o.got_exit && o.exit.code == 0);
	outcome_free(&o);
	hc_buf_free(&b);
	ASSERT_EQ_INT(session_end(&s), 0);
}

/* A restored copy's streams are the snapshotted VM's: RESEED ends them and frees their ids, so
 * the new host's first exec on stream 1 is not "in use". */
TEST(reseed_frees_old_streams)
{
	struct hc_error err = {0};
	struct session s;
	struct outcome o;
	struct hc_buf b = HC_BUF_INIT(0);
	static uint8_t buf[HC_PROTO_MAX_PAYLOAD], seed[32];
	struct hc_proto_reseed q = {.realtime_ns = 1, .seed = seed, .seed_len = sizeof(seed)};
	struct hc_proto_frame f;
	const char *sleeper[] = {"sleep", "30", NULL}, *quick[] = {"true", NULL};
	int r;

	NEED_INIT();
	ASSERT_OK(session_start(&s, &err), &err);
	ASSERT_EQ_INT(ac_send_exec(&s.c, sleeper, "", "", 0, 0), 0);
	ASSERT_EQ_INT(hc_proto_reseed_encode(&b, &q), 0);
	ASSERT_EQ_INT(write(s.c.fd, b.data, b.len), (ssize_t)b.len);
	/* Whatever the old stream had queued comes first; DONE on stream 0 ends the reseed. */
	while ((r = next_frame(&s.c, &f, buf, sizeof(buf))) == 1 &&
	       !(f.stream == 0 && f.type == HC_FRAME_DONE))
		ASSERT_TRUE(f.stream == AC_STREAM);
	ASSERT_EQ_INT(r, 1);
	ASSERT_EQ_INT(ac_send_exec(&s.c, quick, "", "", 0, 0), 0);
	ASSERT_EQ_INT(ac_collect(&s.c, &o), 0);
	ASSERT_TRUE(!o.got_error && o.got_exit && o.exit.code == 0);
	outcome_free(&o);
	hc_buf_free(&b);
	ASSERT_EQ_INT(session_end(&s), 0);
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
	RUN(tty_exec_and_resize);
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
	RUN(many_streams_busy_cancel_reuse);
	RUN(window_overrun_fails_the_stream);
	RUN(frames_out_of_place);
	RUN(reseed_frames);
	RUN(netconf_frames);
	RUN(reseed_frees_old_streams);

	struct hc_error err = {0};
	if (hc_path_rm_rf(tmpdir, &err) < 0)
		fprintf(stderr, "cannot remove %s: %s\n", tmpdir, err.message);
	return test_summary();
}
