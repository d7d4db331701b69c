/* SPDX-License-Identifier: MIT */
/*
 * The host agent API (src/lib/agent.h) against the real hotcell-init in test mode
 * (--serve-fd over a socketpair): concurrent execs, stdin, window back-pressure, detach,
 * cancel, file put/get (a large file, a tree with modes and symlinks, the error cases), and
 * reseed. Both sides of every transfer are the project's code (src/proto/tree.c).
 */
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "core/child.h"
#include "core/path.h"
#include "lib/agent.h"
#include "test.h"

#define WAIT_MS 60000
#define MAXS 8

static char init_path[4096];
static char tmpdir[] = "/tmp/hc-lib-agent.XXXXXX";
static char logdir[4200];
static bool in_own_mount_ns;

struct srec {
	uint32_t id;
	bool started, ended;
	uint32_t pid;
	struct hc_buf out, err;
	struct hc_agent_end end;
	int order; /* when it ended, counting from 1 */
	int entries;
};

struct session {
	struct hc_child child;
	struct hc_agent *a;
	bool hello, reseeded, vm_error;
	struct srec rec[MAXS];
	int ended;
	uint32_t writable_id;
};

static void ev_hello(void *ctx, const struct hc_proto_hello *h)
{
	((struct session *)ctx)->hello = h->version == HC_PROTO_VERSION;
}

static void ev_reseeded(void *ctx)
{
	((struct session *)ctx)->reseeded = true;
}

static void ev_vm_error(void *ctx, const struct hc_proto_error *e)
{
	fprintf(stderr, "vm error %u: %s\n", e->reason, e->message);
	((struct session *)ctx)->vm_error = true;
}

static void ev_started(void *ctx, void *sctx, uint32_t id, uint32_t pid)
{
	struct srec *r = sctx;

	r->started = true;
	r->pid = pid;
}

static void ev_output(void *ctx, void *sctx, uint32_t id, int fd, const uint8_t *p, size_t n)
{
	struct srec *r = sctx;

	if (hc_buf_append(fd == 1 ? &r->out : &r->err, p, n) < 0)
		abort();
}

static void ev_writable(void *ctx, void *sctx, uint32_t id)
{
	((struct session *)ctx)->writable_id = id;
}

static void ev_entry(void *ctx, void *sctx, uint32_t id, const struct hc_proto_entry *e)
{
	((struct srec *)sctx)->entries++;
}

static void ev_end(void *ctx, void *sctx, uint32_t id, const struct hc_agent_end *end)
{
	struct session *s = ctx;
	struct srec *r = sctx;

	r->ended = true;
	r->end = *end;
	r->order = ++s->ended;
}

static const struct hc_agent_events events = {
	.hello = ev_hello,
	.reseeded = ev_reseeded,
	.vm_error = ev_vm_error,
	.started = ev_started,
	.output = ev_output,
	.writable = ev_writable,
	.entry = ev_entry,
	.end = ev_end,
};

static int session_start(struct session *s, struct hc_error *err)
{
	int sv[2], r;

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < MAXS; i++) {
		s->rec[i].out = (struct hc_buf)HC_BUF_INIT(0);
		s->rec[i].err = (struct hc_buf)HC_BUF_INIT(0);
	}
	s->child = (struct hc_child)HC_CHILD_INIT;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return hc_error_errno(err, -errno, "socketpair");
	const char *argv[] = {init_path, "--serve-fd", "3", "--log-dir", logdir, NULL};
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
	return hc_agent_new(sv[0], &events, s, &s->a, err);
}

/* Dispatches until cond(s, arg) holds; false on a channel failure or after WAIT_MS. */
static bool pump(struct session *s, bool (*cond)(struct session *, void *), void *arg)
{
	struct hc_error err = {0};
	int waited = 0;

	while (!cond(s, arg)) {
		struct pollfd p = {.fd = hc_agent_fd(s->a), .events = hc_agent_poll_events(s->a)};
		int n = poll(&p, 1, 100);

		if (n == 0 && (waited += 100) >= WAIT_MS)
			return false;
		if (hc_agent_dispatch(s->a, p.revents, &err) < 0) {
			fprintf(stderr, "dispatch: %s\n", err.message);
			return cond(s, arg);
		}
	}
	return true;
}

static bool is_hello(struct session *s, void *arg)
{
	return s->hello;
}

static bool is_ended(struct session *s, void *arg)
{
	return ((struct srec *)arg)->ended;
}

static bool all_ended(struct session *s, void *arg)
{
	for (int i = 0; i < *(int *)arg; i++)
		if (!s->rec[i].ended)
			return false;
	return true;
}

static bool is_started(struct session *s, void *arg)
{
	return ((struct srec *)arg)->started || ((struct srec *)arg)->ended;
}

static bool has_window(struct session *s, void *arg)
{
	return ((struct srec *)arg)->out.len >= HC_PROTO_WINDOW || ((struct srec *)arg)->ended;
}

static bool is_reseeded(struct session *s, void *arg)
{
	return s->reseeded || s->vm_error;
}

static bool is_drained(struct session *s, void *arg)
{
	return hc_agent_pending(s->a) == 0;
}

static int session_end(struct session *s)
{
	struct hc_error err = {0};
	int st;

	if (hc_agent_shutdown(s->a, &err) < 0 || !pump(s, is_drained, NULL))
		return -1;
	int r = hc_child_wait(&s->child, WAIT_MS);
	st = s->child.status;
	hc_child_stop(&s->child, 0);
	hc_agent_free(s->a);
	for (int i = 0; i < MAXS; i++) {
		hc_buf_free(&s->rec[i].out);
		hc_buf_free(&s->rec[i].err);
	}
	if (r < 0)
		return -2;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

static int exec_sh(struct session *s, int i, const char *script, uint32_t flags, unsigned aflags)
{
	static char *const env[] = {(char *)"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
	char *argv[] = {(char *)"sh", (char *)"-c", (char *)script, NULL};
	struct hc_proto_exec e = {.flags = flags,
				  .user = (char *)"",
				  .cwd = (char *)"",
				  .argv = argv,
				  .argc = 3,
				  .env = (char **)env,
				  .envc = 1};
	struct hc_error err = {0};
	int r = hc_agent_exec(s->a, &e, aflags, &s->rec[i], &s->rec[i].id, &err);

	if (r < 0)
		fprintf(stderr, "exec: %s\n", err.message);
	return r;
}

#define NEED_INIT()                                                                                \
	do {                                                                                       \
		if (access(init_path, X_OK) < 0)                                                   \
			SKIP("build/bin/hotcell-init not built (make build/bin/hotcell-init)");    \
	} while (0)

#define START(s)                                                                                   \
	do {                                                                                       \
		struct hc_error start_err = {0};                                                   \
		NEED_INIT();                                                                       \
		ASSERT_OK(session_start(&(s), &start_err), &start_err);                            \
		ASSERT_TRUE(pump(&(s), is_hello, NULL));                                           \
	} while (0)

TEST(exec_concurrent_with_stdin)
{
	struct session s;
	int three = 3;

	START(s);
	/* 0 waits for its stdin; 1 and 2 run and end while 0 still runs: their ends come
	 * first, whatever the scheduling. */
	ASSERT_EQ_INT(exec_sh(&s, 0, "echo zero-start; cat; echo zero-end", HC_EXEC_F_STDIN, 0), 0);
	ASSERT_EQ_INT(exec_sh(&s, 1, "echo one; echo one-err >&2; exit 1", 0, 0), 0);
	ASSERT_EQ_INT(exec_sh(&s, 2, "echo two; exit 2", 0, 0), 0);
	ASSERT_TRUE(s.rec[0].id != s.rec[1].id && s.rec[1].id != s.rec[2].id);
	ASSERT_TRUE(pump(&s, is_ended, &s.rec[1]));
	ASSERT_TRUE(pump(&s, is_ended, &s.rec[2]));
	ASSERT_TRUE(!s.rec[0].ended && s.rec[0].started && s.rec[0].pid > 0);
	ASSERT_EQ_INT(hc_agent_stdin(s.a, s.rec[0].id, "piped\n", 6), 6);
	ASSERT_EQ_INT(hc_agent_stdin_close(s.a, s.rec[0].id), 0);
	ASSERT_TRUE(pump(&s, all_ended, &three));
	ASSERT_EQ_INT(s.rec[0].order, 3);
	ASSERT_EQ_STR(s.rec[0].out.data, "zero-start\npiped\nzero-end\n");
	ASSERT_EQ_STR(s.rec[1].out.data, "one\n");
	ASSERT_EQ_STR(s.rec[1].err.data, "one-err\n");
	ASSERT_EQ_STR(s.rec[2].out.data, "two\n");
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ_INT(s.rec[i].end.kind, HC_AGENT_END_EXIT);
		ASSERT_EQ_INT(s.rec[i].end.exit.code, i);
	}
	ASSERT_EQ_INT(hc_agent_streams(s.a), 0);
	ASSERT_EQ_INT(session_end(&s), 0);
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

TEST(window_backpressure)
{
	struct session s;
	struct hc_error err = {0};

	START(s);
	/* 0 writes 8 MiB and is never acknowledged; 1 must still run to its end. */
	ASSERT_EQ_INT(exec_sh(&s, 0, "head -c 8388608 /dev/zero", 0, HC_AGENT_EXEC_MANUAL_ACK), 0);
	/* It gets exactly one window's worth: the guest then stops reading its pipe. */
	ASSERT_TRUE(pump(&s, has_window, &s.rec[0]));
	ASSERT_EQ_INT(exec_sh(&s, 1, "echo unblocked", 0, 0), 0);
	ASSERT_TRUE(pump(&s, is_ended, &s.rec[1]));
	ASSERT_EQ_STR(s.rec[1].out.data, "unblocked\n");
	ASSERT_TRUE(!s.rec[0].ended);
	/* Another round trip: whatever was in flight has arrived by now. */
	ASSERT_EQ_INT(exec_sh(&s, 2, "true", 0, 0), 0);
	ASSERT_TRUE(pump(&s, is_ended, &s.rec[2]));
	ASSERT_EQ_INT(s.rec[0].out.len, HC_PROTO_WINDOW);
	/* The agent did not buffer what it could not send: its peak RSS stays small. */
	long kib = rss_kib(s.child.pid);
	ASSERT_TRUE(kib > 0 && kib < 8 * 1024);
	/* Acknowledge as it comes: the rest flows. */
	while (!s.rec[0].ended) {
		size_t before = s.rec[0].out.len;
		static size_t acked;

		if (before > acked) {
			ASSERT_OK(hc_agent_ack(s.a, s.rec[0].id, before - acked), NULL);
			acked = before;
		}
		struct pollfd p = {.fd = hc_agent_fd(s.a), .events = hc_agent_poll_events(s.a)};
		ASSERT_TRUE(poll(&p, 1, WAIT_MS) == 1);
		ASSERT_OK(hc_agent_dispatch(s.a, p.revents, &err), &err);
	}
	ASSERT_EQ_INT(s.rec[0].out.len, 8388608);
	ASSERT_EQ_INT(s.rec[0].end.exit.code, 0);
	ASSERT_EQ_INT(session_end(&s), 0);
}

TEST(stdin_window)
{
	struct session s;
	static uint8_t data[3 << 20];
	size_t off = 0;
	struct hc_error err = {0};

	START(s);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + i / 4096);
	ASSERT_EQ_INT(exec_sh(&s, 0, "cat", HC_EXEC_F_STDIN, 0), 0);
	/* More than a window: stdin takes what the window allows, `writable` says when more. */
	while (off < sizeof(data)) {
		ssize_t n = hc_agent_stdin(s.a, s.rec[0].id, data + off, sizeof(data) - off);

		ASSERT_TRUE(n >= 0);
		ASSERT_TRUE(hc_agent_stdin_room(s.a, s.rec[0].id) <= HC_PROTO_WINDOW);
		off += (size_t)n;
		if (off < sizeof(data)) {
			struct pollfd p = {.fd = hc_agent_fd(s.a),
					   .events = hc_agent_poll_events(s.a)};
			ASSERT_TRUE(poll(&p, 1, WAIT_MS) == 1);
			ASSERT_OK(hc_agent_dispatch(s.a, p.revents, &err), &err);
		}
	}
	ASSERT_TRUE(s.writable_id == s.rec[0].id);
	ASSERT_EQ_INT(hc_agent_stdin_close(s.a, s.rec[0].id), 0);
	ASSERT_TRUE(pump(&s, is_ended, &s.rec[0]));
	ASSERT_EQ_INT(s.rec[0].out.len, sizeof(data));
	ASSERT_TRUE(memcmp(s.rec[0].out.data, data, sizeof(data)) == 0);
	ASSERT_EQ_INT(session_end(&s), 0);
}

static bool pid_alive(uint32_t pid)
{
	return kill((pid_t)pid, 0) == 0;
}

/* The process has exited (a zombie counts) or does within WAIT_MS: its pidfd says so. */
static bool pid_gone(uint32_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	bool ok;

	if (fd < 0)
		return errno == ESRCH;
	ok = poll(&p, 1, WAIT_MS) == 1;
	close(fd);
	return ok;
}

TEST(detach_and_cancel)
{
	struct session s;
	char cmd[4400], log[4400];
	char *data = NULL;
	size_t len = 0;
	struct hc_error err = {0};

	START(s);
	snprintf(cmd, sizeof(cmd),
		 "echo detached-out; echo detached-err >&2; touch %s/marker; "
		 "exec sleep 300",
		 tmpdir);
	ASSERT_EQ_INT(exec_sh(&s, 0, cmd, HC_EXEC_F_DETACH, 0), 0);
	ASSERT_TRUE(pump(&s, is_ended, &s.rec[0]));
	ASSERT_TRUE(s.rec[0].started);
	ASSERT_EQ_INT(s.rec[0].end.kind, HC_AGENT_END_DETACHED);
	/* Its output is in its log, the stream is over, and it runs on. */
	snprintf(cmd, sizeof(cmd),
		 "while [ ! -f %s/marker ]; do sleep 0.02; done; cat %s/exec-%u.log", tmpdir,
		 logdir, s.rec[0].pid);
	ASSERT_EQ_INT(exec_sh(&s, 1, cmd, 0, 0), 0);
	ASSERT_TRUE(pump(&s, is_ended, &s.rec[1]));
	ASSERT_EQ_STR(s.rec[1].out.data, "detached-out\ndetached-err\n");
	ASSERT_TRUE(pid_alive(s.rec[0].pid));
	snprintf(log, sizeof(log), "%s/exec-%u.log", logdir, s.rec[0].pid);
	ASSERT_OK(hc_path_read_file(log, 4096, &data, &len, &err), &err);
	free(data);

	/* Cancel: the command and its group are killed, EXIT comes back marked cancelled. */
	ASSERT_EQ_INT(exec_sh(&s, 2, "sleep 300 & echo $!; wait", 0, 0), 0);
	ASSERT_TRUE(pump(&s, is_started, &s.rec[2]));
	while (!strchr(s.rec[2].out.data ? s.rec[2].out.data : "", '\n')) {
		struct pollfd p = {.fd = hc_agent_fd(s.a), .events = hc_agent_poll_events(s.a)};
		ASSERT_TRUE(poll(&p, 1, WAIT_MS) == 1);
		ASSERT_OK(hc_agent_dispatch(s.a, p.revents, &err), &err);
	}
	uint32_t bg = (uint32_t)atoi(s.rec[2].out.data);
	ASSERT_OK(hc_agent_cancel(s.a, s.rec[2].id), NULL);
	ASSERT_TRUE(pump(&s, is_ended, &s.rec[2]));
	ASSERT_TRUE(s.rec[2].end.cancelled);
	ASSERT_EQ_INT(s.rec[2].end.kind, HC_AGENT_END_EXIT);
	ASSERT_EQ_INT(s.rec[2].end.exit.signal, SIGKILL);
	pid_t detached = (pid_t)s.rec[0].pid;
	ASSERT_EQ_INT(session_end(&s), 0);
	/* The agent's end takes the detached command and the background one with it. */
	ASSERT_TRUE(pid_gone((uint32_t)detached));
	ASSERT_TRUE(bg > 0 && pid_gone(bg));
}

/* ---- files ---- */

static int make_file(const char *path, size_t size, mode_t mode, unsigned seed)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	uint8_t buf[65536];
	uint32_t x = seed * 2654435761u + 1;

	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < size;) {
		size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);

		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			buf[i] = (uint8_t)x;
		}
		if (write(fd, buf, n) != (ssize_t)n) {
			close(fd);
			return -EIO;
		}
		off += n;
	}
	if (fchmod(fd, mode) < 0) {
		close(fd);
		return -errno;
	}
	return close(fd);
}

static int sha256_file(const char *path, char hex[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	uint8_t buf[65536];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 || !c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL))
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(c, buf, (size_t)n);
	EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	close(fd);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static bool put(struct session *s, int i, const char *host, const char *guest)
{
	struct hc_error err = {0};

	if (hc_agent_put(s->a, host, guest, &s->rec[i], &s->rec[i].id, &err) < 0) {
		fprintf(stderr, "put: %s\n", err.message);
		return false;
	}
	return pump(s, is_ended, &s->rec[i]);
}

static bool get(struct session *s, int i, const char *guest, const char *host)
{
	struct hc_error err = {0};

	if (hc_agent_get(s->a, guest, host, &s->rec[i], &s->rec[i].id, &err) < 0) {
		fprintf(stderr, "get: %s\n", err.message);
		return false;
	}
	return pump(s, is_ended, &s->rec[i]);
}

/* No ".name.hc..." temp file left in dir. */
static bool no_temp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool ok = true;

	if (!d)
		return true;
	while ((de = readdir(d)))
		if (de->d_name[0] == '.' && strstr(de->d_name, ".hc"))
			ok = false;
	closedir(d);
	return ok;
}

TEST(put_get_large_file)
{
	struct session s;
	char src[4300], mid[4300], back[4300], h1[65], h2[65], h3[65];
	struct stat st;

	START(s);
	snprintf(src, sizeof(src), "%s/big.bin", tmpdir);
	snprintf(mid, sizeof(mid), "%s/guest-big.bin", tmpdir);
	snprintf(back, sizeof(back), "%s/back-big.bin", tmpdir);
	/* 24 MiB + a bit: many windows, an odd tail. */
	ASSERT_OK(make_file(src, (24u << 20) + 12345, 0751, 7), NULL);
	ASSERT_TRUE(put(&s, 0, src, mid));
	ASSERT_EQ_INT(s.rec[0].end.kind, HC_AGENT_END_DONE);
	ASSERT_EQ_INT(s.rec[0].entries, 1);
	ASSERT_TRUE(get(&s, 1, mid, back));
	ASSERT_EQ_INT(s.rec[1].end.kind, HC_AGENT_END_DONE);
	ASSERT_OK(sha256_file(src, h1), NULL);
	ASSERT_OK(sha256_file(mid, h2), NULL);
	ASSERT_OK(sha256_file(back, h3), NULL);
	ASSERT_EQ_STR(h1, h2);
	ASSERT_EQ_STR(h1, h3);
	ASSERT_OK(stat(back, &st), NULL);
	ASSERT_EQ_INT(st.st_mode & 07777, 0751);
	ASSERT_EQ_INT(st.st_size, (24 << 20) + 12345);
	ASSERT_TRUE(no_temp(tmpdir));
	/* A put onto an existing file replaces it whole. */
	ASSERT_OK(make_file(src, 100, 0600, 8), NULL);
	ASSERT_TRUE(put(&s, 2, src, mid));
	ASSERT_OK(stat(mid, &st), NULL);
	ASSERT_TRUE(st.st_size == 100 && (st.st_mode & 07777) == 0600);
	unlink(src), unlink(mid), unlink(back);
	ASSERT_EQ_INT(session_end(&s), 0);
}

/* Compares two trees: kinds, modes, contents, link targets. */
static bool same_tree(const char *a, const char *b)
{
	struct stat sa, sb;
	char ha[65], hb[65];

	if (lstat(a, &sa) < 0 || lstat(b, &sb) < 0)
		return false;
	if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT))
		return false;
	if (S_ISLNK(sa.st_mode)) {
		char ta[4096] = {0}, tb[4096] = {0};

		return readlink(a, ta, sizeof(ta) - 1) > 0 && readlink(b, tb, sizeof(tb) - 1) > 0 &&
		       hc_streq(ta, tb);
	}
	if ((sa.st_mode & 07777) != (sb.st_mode & 07777))
		return false;
	if (S_ISREG(sa.st_mode))
		return sa.st_size == sb.st_size && sha256_file(a, ha) == 0 &&
		       sha256_file(b, hb) == 0 && hc_streq(ha, hb);
	DIR *d = opendir(a);
	struct dirent *de;
	size_t na = 0, nb = 0;
	bool ok = d != NULL;

	while (ok && (de = readdir(d))) {
		char pa[4300], pb[4300];

		if (hc_streq(de->d_name, ".") || hc_streq(de->d_name, ".."))
			continue;
		na++;
		snprintf(pa, sizeof(pa), "%s/%s", a, de->d_name);
		snprintf(pb, sizeof(pb), "%s/%s", b, de->d_name);
		ok = same_tree(pa, pb);
	}
	if (d)
		closedir(d);
	d = opendir(b);
	while (ok && d && (de = readdir(d)))
		nb += !hc_streq(de->d_name, ".") && !hc_streq(de->d_name, "..");
	if (d)
		closedir(d);
	return ok && na == nb;
}

TEST(put_get_tree)
{
	struct session s;
	char src[4300], mid[4300], back[4300], p[4400];
	struct hc_error err = {0};

	START(s);
	snprintf(src, sizeof(src), "%s/tree", tmpdir);
	snprintf(mid, sizeof(mid), "%s/guest-tree", tmpdir);
	snprintf(back, sizeof(back), "%s/back-tree", tmpdir);
	const char *dirs[] = {"", "/a", "/a/b", "/a/b/c", "/empty", "/ro"};
	for (size_t i = 0; i < HC_ARRAY_SIZE(dirs); i++) {
		snprintf(p, sizeof(p), "%s%s", src, dirs[i]);
		ASSERT_OK(mkdir(p, 0755), NULL);
	}
	snprintf(p, sizeof(p), "%s/top.txt", src);
	ASSERT_OK(make_file(p, 1000, 0644, 1), NULL);
	snprintf(p, sizeof(p), "%s/a/b/c/deep.bin", src);
	ASSERT_OK(make_file(p, 200000, 0600, 2), NULL);
	snprintf(p, sizeof(p), "%s/a/run.sh", src);
	ASSERT_OK(make_file(p, 10, 04755, 3), NULL);
	snprintf(p, sizeof(p), "%s/a/empty-file", src);
	ASSERT_OK(make_file(p, 0, 0640, 4), NULL);
	snprintf(p, sizeof(p), "%s/ro/inside", src);
	ASSERT_OK(make_file(p, 5, 0444, 5), NULL);
	snprintf(p, sizeof(p), "%s/a/rel-link", src);
	ASSERT_OK(symlink("b/c/deep.bin", p), NULL);
	snprintf(p, sizeof(p), "%s/abs-link", src);
	ASSERT_OK(symlink("/etc/passwd", p), NULL);
	snprintf(p, sizeof(p), "%s/dangling", src);
	ASSERT_OK(symlink("../nowhere/x", p), NULL);
	snprintf(p, sizeof(p), "%s/fifo", src);
	ASSERT_OK(mkfifo(p, 0644), NULL); /* skipped */
	snprintf(p, sizeof(p), "%s/ro", src);
	ASSERT_OK(chmod(p, 0555), NULL);
	snprintf(p, sizeof(p), "%s/a/b", src);
	ASSERT_OK(chmod(p, 0700), NULL);

	ASSERT_TRUE(put(&s, 0, src, mid));
	ASSERT_EQ_INT(s.rec[0].end.kind, HC_AGENT_END_DONE);
	ASSERT_TRUE(get(&s, 1, mid, back));
	ASSERT_EQ_INT(s.rec[1].end.kind, HC_AGENT_END_DONE);
	snprintf(p, sizeof(p), "%s/fifo", src);
	unlink(p);
	ASSERT_TRUE(same_tree(src, mid));
	ASSERT_TRUE(same_tree(src, back));
	ASSERT_EQ_INT(s.rec[1].entries, 14); /* 6 directories, 5 files, 3 symlinks */
	/* A put into an existing directory merges into it. */
	ASSERT_TRUE(put(&s, 2, src, mid));
	ASSERT_EQ_INT(s.rec[2].end.kind, HC_AGENT_END_DONE);
	ASSERT_TRUE(same_tree(src, mid));
	ASSERT_EQ_INT(session_end(&s), 0);
	const char *trees[] = {src, mid, back};
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "chmod -R u+w %s", trees[i]);
		ASSERT_TRUE(system(p) == 0);
		ASSERT_OK(hc_path_rm_rf(trees[i], &err), &err);
	}
}

TEST(file_errors)
{
	struct session s;
	char src[4300], dst[4300], p[4400];

	START(s);
	snprintf(src, sizeof(src), "%s/small", tmpdir);
	ASSERT_OK(make_file(src, 10, 0644, 9), NULL);
	/* The destination's parent is missing. */
	snprintf(dst, sizeof(dst), "%s/no/such/dir/file", tmpdir);
	ASSERT_TRUE(put(&s, 0, src, dst));
	ASSERT_EQ_INT(s.rec[0].end.kind, HC_AGENT_END_ERROR);
	ASSERT_EQ_INT(s.rec[0].end.error.reason, HC_ERR_NOENT);
	ASSERT_TRUE(strstr(s.rec[0].end.error.message, "no such file or directory") != NULL);
	/* A missing source in the guest. */
	snprintf(p, sizeof(p), "%s/fetched", tmpdir);
	ASSERT_TRUE(get(&s, 1, "/nonexistent/hotcell-test", p));
	ASSERT_EQ_INT(s.rec[1].end.kind, HC_AGENT_END_ERROR);
	ASSERT_EQ_INT(s.rec[1].end.error.reason, HC_ERR_NOENT);
	ASSERT_EQ_STR(s.rec[1].end.error.message,
		      "/nonexistent/hotcell-test: no such file or directory");
	ASSERT_TRUE(access(p, F_OK) < 0);
	/* Local errors come back before any frame. */
	struct hc_error err = {0};
	uint32_t id;
	ASSERT_ERR(hc_agent_put(s.a, "/nonexistent/hotcell-src", "/tmp/x", NULL, &id, &err));
	ASSERT_TRUE(strstr(err.message, "no such file or directory") != NULL);
	ASSERT_ERR(hc_agent_get(s.a, "relative/path", p, NULL, &id, &err));
	ASSERT_ERR(hc_agent_get(s.a, "/a/../b", p, NULL, &id, &err));
	/* A directory where the file would go. */
	snprintf(dst, sizeof(dst), "%s", tmpdir);
	ASSERT_TRUE(put(&s, 2, src, dst));
	ASSERT_EQ_INT(s.rec[2].end.kind, HC_AGENT_END_ERROR);
	ASSERT_TRUE(strstr(s.rec[2].end.error.message, "is a directory") != NULL);
	ASSERT_TRUE(no_temp(tmpdir));

	if (!in_own_mount_ns) {
		unlink(src);
		ASSERT_EQ_INT(session_end(&s), 0);
		SKIP("ENOSPC and EROFS need root (a tmpfs and a read-only bind mount)");
	}
	/* A full guest disk: a 1 MiB tmpfs, a 4 MiB file; nothing is left behind. */
	char full[4300], ro[4300], big[4300];
	snprintf(full, sizeof(full), "%s/full", tmpdir);
	snprintf(ro, sizeof(ro), "%s/ro", tmpdir);
	snprintf(big, sizeof(big), "%s/big4", tmpdir);
	ASSERT_OK(mkdir(full, 0755), NULL);
	ASSERT_OK(mkdir(ro, 0755), NULL);
	ASSERT_OK(mount("hc-test", full, "tmpfs", 0, "size=1m"), NULL);
	ASSERT_OK(mount(tmpdir, ro, NULL, MS_BIND, NULL), NULL);
	ASSERT_OK(mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL), NULL);
	ASSERT_OK(make_file(big, 4u << 20, 0644, 10), NULL);
	snprintf(dst, sizeof(dst), "%s/big4", full);
	ASSERT_TRUE(put(&s, 3, big, dst));
	ASSERT_EQ_INT(s.rec[3].end.kind, HC_AGENT_END_ERROR);
	ASSERT_EQ_INT(s.rec[3].end.error.reason, HC_ERR_NOSPC);
	ASSERT_TRUE(strstr(s.rec[3].end.error.message, "no space left on device") != NULL);
	ASSERT_TRUE(access(dst, F_OK) < 0);
	DIR *d = opendir(full);
	int n = 0;
	for (struct dirent *de; d && (de = readdir(d));)
		n += de->d_name[0] != '.' || strlen(de->d_name) > 2;
	if (d)
		closedir(d);
	ASSERT_EQ_INT(n, 0);
	/* A tree that does not fit: the directories made for it go too. */
	snprintf(p, sizeof(p), "%s/t", tmpdir);
	ASSERT_OK(mkdir(p, 0755), NULL);
	snprintf(p, sizeof(p), "%s/t/small", tmpdir);
	ASSERT_OK(make_file(p, 10, 0644, 11), NULL);
	snprintf(p, sizeof(p), "%s/t/zbig", tmpdir);
	ASSERT_OK(rename(big, p), NULL);
	snprintf(p, sizeof(p), "%s/t", tmpdir);
	snprintf(dst, sizeof(dst), "%s/tree", full);
	ASSERT_TRUE(put(&s, 4, p, dst));
	ASSERT_EQ_INT(s.rec[4].end.error.reason, HC_ERR_NOSPC);
	ASSERT_TRUE(access(dst, F_OK) < 0);
	/* A read-only volume. */
	snprintf(dst, sizeof(dst), "%s/newfile", ro);
	ASSERT_TRUE(put(&s, 5, src, dst));
	ASSERT_EQ_INT(s.rec[5].end.kind, HC_AGENT_END_ERROR);
	ASSERT_EQ_INT(s.rec[5].end.error.reason, HC_ERR_ROFS);
	ASSERT_TRUE(strstr(s.rec[5].end.error.message, "read-only file system") != NULL);
	ASSERT_EQ_INT(session_end(&s), 0);
	ASSERT_OK(umount(ro), NULL);
	ASSERT_OK(umount(full), NULL);
}

static bool has_out(struct session *s, void *arg)
{
	struct srec *r = &s->rec[0];

	return r->ended || (r->out.data && strstr(r->out.data, (const char *)arg));
}

/* SIGNAL delivers the signal asked, not a TERM: the command's trap sees USR1. */
TEST(signal_exact)
{
	struct session s;

	START(s);
	ASSERT_EQ_INT(exec_sh(&s, 0,
			      "trap 'echo got-usr1; exit 3' USR1; echo ready; "
			      "while :; do sleep 0.05; done",
			      0, 0),
		      0);
	ASSERT_TRUE(pump(&s, has_out, (void *)"ready"));
	ASSERT_OK(hc_agent_signal(s.a, s.rec[0].id, SIGUSR1), NULL);
	ASSERT_TRUE(pump(&s, is_ended, &s.rec[0]));
	ASSERT_EQ_INT(s.rec[0].end.kind, HC_AGENT_END_EXIT);
	ASSERT_EQ_INT(s.rec[0].end.exit.code, 3);
	ASSERT_TRUE(strstr(s.rec[0].out.data, "got-usr1") != NULL);
	ASSERT_EQ_INT(session_end(&s), 0);
}

/* A TTY exec starts with the size given, and RESIZE changes it (the command reads it again
 * after a line of stdin). */
TEST(tty_resize)
{
	static char *const env[] = {(char *)"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
	char *argv[] = {(char *)"sh", (char *)"-c",
			(char *)"echo size=$(stty size); read x; echo size=$(stty size)", NULL};
	struct hc_proto_exec e = {.flags = HC_EXEC_F_TTY | HC_EXEC_F_STDIN,
				  .user = (char *)"",
				  .cwd = (char *)"",
				  .argv = argv,
				  .argc = 3,
				  .env = (char **)env,
				  .envc = 1,
				  .rows = 10,
				  .cols = 20};
	struct hc_error err = {0};
	struct session s;

	START(s);
	ASSERT_OK(hc_agent_exec(s.a, &e, 0, &s.rec[0], &s.rec[0].id, &err), &err);
	ASSERT_TRUE(pump(&s, has_out, (void *)"size=10 20"));
	ASSERT_OK(hc_agent_resize(s.a, s.rec[0].id, 30, 100), NULL);
	ASSERT_EQ_INT((int)hc_agent_stdin(s.a, s.rec[0].id, "\n", 1), 1);
	ASSERT_TRUE(pump(&s, is_ended, &s.rec[0]));
	ASSERT_EQ_INT(s.rec[0].end.exit.code, 0);
	ASSERT_TRUE(strstr(s.rec[0].out.data, "size=30 100") != NULL);
	/* RESIZE of a stream that is no exec's: refused here already. */
	ASSERT_EQ_INT(hc_agent_resize(s.a, 12345, 1, 1), -ENOENT);
	ASSERT_EQ_INT(session_end(&s), 0);
}

TEST(reseed)
{
	struct session s;
	struct hc_error err = {0};
	uint8_t seed[64];

	START(s);
	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)(i * 31 + 7);
	ASSERT_OK(hc_agent_reseed(s.a, 1700000000ull * 1000000000ull, seed, sizeof(seed), &err),
		  &err);
	ASSERT_TRUE(pump(&s, is_reseeded, NULL));
	ASSERT_TRUE(s.reseeded && !s.vm_error);
	ASSERT_ERR(hc_agent_reseed(s.a, 1, seed, 31, &err));
	ASSERT_ERR(hc_agent_reseed(s.a, 1, seed, 257, &err));
	ASSERT_EQ_INT(session_end(&s), 0);
}

/* As the supervisor does: the boot code reads the HELLO, then hands the fd over. */
TEST(hello_read_by_the_caller)
{
	struct session s;
	struct hc_error err = {0};
	struct hc_buf in = HC_BUF_INIT(HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD);
	struct hc_proto_frame f;
	size_t used;
	int sv[2];

	NEED_INIT();
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < MAXS; i++) {
		s.rec[i].out = (struct hc_buf)HC_BUF_INIT(0);
		s.rec[i].err = (struct hc_buf)HC_BUF_INIT(0);
	}
	s.child = (struct hc_child)HC_CHILD_INIT;
	ASSERT_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	const char *argv[] = {init_path, "--serve-fd", "3", "--log-dir", logdir, NULL};
	struct hc_fd_map m = {sv[1], 3};
	struct hc_child_opts o = {.argv = argv,
				  .stdin_fd = -1,
				  .stdout_fd = -1,
				  .stderr_fd = STDERR_FILENO,
				  .fds = &m,
				  .n_fds = 1};
	ASSERT_OK(hc_child_spawn(&s.child, &o, &err), &err);
	close(sv[1]);
	ASSERT_EQ_INT(hc_proto_frame_read(sv[0], &in, &f, &used), 1);
	ASSERT_EQ_INT(f.type, HC_FRAME_HELLO);
	hc_buf_free(&in);
	ASSERT_OK(hc_agent_new(sv[0], &events, &s, &s.a, &err), &err);
	hc_agent_set_ready(s.a);
	ASSERT_TRUE(hc_agent_ready(s.a));
	ASSERT_EQ_INT(exec_sh(&s, 0, "echo ready", 0, 0), 0);
	ASSERT_TRUE(pump(&s, is_ended, &s.rec[0]));
	ASSERT_EQ_STR(s.rec[0].out.data, "ready\n");
	ASSERT_TRUE(!s.hello);
	ASSERT_EQ_INT(session_end(&s), 0);
}

TEST(channel_loss_ends_streams)
{
	struct session s;
	struct hc_error err = {0};

	START(s);
	ASSERT_EQ_INT(exec_sh(&s, 0, "sleep 300", 0, 0), 0);
	ASSERT_TRUE(pump(&s, is_started, &s.rec[0]));
	hc_child_kill(&s.child, SIGKILL);
	ASSERT_TRUE(pump(&s, is_ended, &s.rec[0]));
	ASSERT_EQ_INT(s.rec[0].end.kind, HC_AGENT_END_LOST);
	ASSERT_TRUE(!hc_agent_ready(s.a));
	ASSERT_ERR(hc_agent_dispatch(s.a, 0, &err));
	hc_child_stop(&s.child, 0);
	hc_agent_free(s.a);
	for (int i = 0; i < MAXS; i++) {
		hc_buf_free(&s.rec[i].out);
		hc_buf_free(&s.rec[i].err);
	}
}

int main(void)
{
	const char *b = getenv("BUILD");
	const char *top = getenv("HOTCELL_TOP");
	struct hc_error err = {0};

	if (getenv("HOTCELL_INIT"))
		snprintf(init_path, sizeof(init_path), "%s", getenv("HOTCELL_INIT"));
	else
		snprintf(init_path, sizeof(init_path), "%s%s%s/bin/hotcell-init", top ? top : "",
			 top ? "/" : "", b ? b : "build");
	if (!mkdtemp(tmpdir)) {
		printf("FAIL: setup: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(logdir, sizeof(logdir), "%s/log", tmpdir);
	/* Root: a private mount namespace, so the test's mounts vanish with it. */
	if (geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
		in_own_mount_ns = true;
	signal(SIGPIPE, SIG_IGN);

	RUN(exec_concurrent_with_stdin);
	RUN(window_backpressure);
	RUN(stdin_window);
	RUN(detach_and_cancel);
	RUN(put_get_large_file);
	RUN(put_get_tree);
	RUN(file_errors);
	RUN(signal_exact);
	RUN(tty_resize);
	RUN(reseed);
	RUN(hello_read_by_the_caller);
	RUN(channel_loss_ends_streams);

	if (hc_path_rm_rf(tmpdir, &err) < 0)
		fprintf(stderr, "cannot remove %s: %s\n", tmpdir, err.message);
	return test_summary();
}
