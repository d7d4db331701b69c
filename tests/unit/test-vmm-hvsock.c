/* SPDX-License-Identifier: MIT */
/* Hybrid vsock, both directions, against a local stand-in for the VMM's unix sockets. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/path.h"
#include "test.h"
#include "vmm/hvsock.h"

static char dir[64];

static void mkdir_tmp(void)
{
	snprintf(dir, sizeof(dir), "/tmp/hchvs.XXXXXX");
	if (!mkdtemp(dir))
		abort();
}

static void rm_tmp(void)
{
	struct hc_error err = {0};

	(void)hc_path_rm_rf(dir, &err);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The VMM side of a host-initiated connection: reads "CONNECT P\n", answers with `reply`
 * (NULL: close without answering) followed by `payload`. */
struct vmm_stub {
	int listen_fd;
	const char *reply;
	const char *payload;
	char got[64];
};

static void *vmm_stub_main(void *arg)
{
	struct vmm_stub *s = arg;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	size_t n = 0;

	if (fd < 0)
		return NULL;
	while (n + 1 < sizeof(s->got)) {
		ssize_t k = read(fd, s->got + n, 1);
		if (k <= 0)
			break;
		if (s->got[n++] == '\n')
			break;
	}
	s->got[n] = '\0';
	if (s->reply) {
		/* Reply and payload in one write: the client must not swallow the payload. */
		char out[256];
		int len =
			snprintf(out, sizeof(out), "%s%s", s->reply, s->payload ? s->payload : "");
		ssize_t _unused_ w = write(fd, out, (size_t)len);
	}
	close(fd);
	return NULL;
}

static int run_connect(const char *reply, const char *payload, unsigned *host_port, char *data,
		       size_t data_len, struct hc_error *err, char *got, size_t got_len)
{
	char uds[128];
	struct vmm_stub s = {.reply = reply, .payload = payload};
	pthread_t t;
	int fd;

	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	unlink(uds);
	s.listen_fd = unix_listen(uds);
	if (s.listen_fd < 0)
		return -EIO;
	pthread_create(&t, NULL, vmm_stub_main, &s);
	fd = hc_hvsock_connect(uds, 1025, 5000, host_port, err);
	if (fd >= 0 && data) {
		size_t n = 0;
		ssize_t k;
		while (n + 1 < data_len && (k = read(fd, data + n, data_len - 1 - n)) > 0)
			n += (size_t)k;
		data[n] = '\0';
	}
	pthread_join(t, NULL);
	snprintf(got, got_len, "%s", s.got);
	close(s.listen_fd);
	return fd;
}

TEST(host_initiated_ok_keeps_payload)
{
	struct hc_error err = {0};
	unsigned hp = 0;
	char data[64], got[64];
	int fd;

	fd = run_connect("OK 1073741824\n", "hello", &hp, data, sizeof(data), &err, got,
			 sizeof(got));
	ASSERT_OK(fd, &err);
	close(fd);
	ASSERT_EQ_STR(got, "CONNECT 1025\n");
	ASSERT_EQ_INT(hp, 1073741824u);
	ASSERT_EQ_STR(data, "hello");
}

TEST(host_initiated_refused)
{
	struct hc_error err = {0};
	char got[64];
	int fd;

	fd = run_connect(NULL, NULL, NULL, NULL, 0, &err, got, sizeof(got));
	ASSERT_EQ_INT(fd, -ECONNREFUSED);
	ASSERT_TRUE(strstr(err.message, "CONNECT 1025") != NULL);
}

TEST(host_initiated_bad_reply)
{
	struct hc_error err = {0};
	char got[64];
	int fd;

	fd = run_connect("NO\n", NULL, NULL, NULL, 0, &err, got, sizeof(got));
	ASSERT_EQ_INT(fd, -EPROTO);
	ASSERT_TRUE(strstr(err.message, "unexpected reply 'NO'") != NULL);
}

TEST(host_initiated_overlong_reply)
{
	struct hc_error err = {0};
	char got[64];
	int fd;

	fd = run_connect("OK 1111111111111111111111111111111111111111111111111111111\n", NULL, NULL,
			 NULL, 0, &err, got, sizeof(got));
	ASSERT_EQ_INT(fd, -EPROTO);
}

TEST(host_initiated_no_vmm)
{
	struct hc_error err = {0};
	char uds[128];

	snprintf(uds, sizeof(uds), "%s/missing.sock", dir);
	ASSERT_ERR(hc_hvsock_connect(uds, 1025, 1000, NULL, &err));
	ASSERT_TRUE(strstr(err.message, "missing.sock") != NULL);
}

TEST(parse_ack)
{
	unsigned p = 0;

	ASSERT_EQ_INT(hc_hvsock_parse_ack("OK 5\n", 5, &p), 0);
	ASSERT_EQ_INT(p, 5);
	ASSERT_EQ_INT(hc_hvsock_parse_ack("OK 42", 5, &p), 0);
	ASSERT_EQ_INT(p, 42);
	ASSERT_EQ_INT(hc_hvsock_parse_ack("OK \n", 4, &p), -EPROTO);
	ASSERT_EQ_INT(hc_hvsock_parse_ack("OK x\n", 5, &p), -EPROTO);
	ASSERT_EQ_INT(hc_hvsock_parse_ack("OK 99999999999\n", 15, &p), -EPROTO);
	ASSERT_EQ_INT(hc_hvsock_parse_ack("ok 5\n", 5, &p), -EPROTO);
}

TEST(guest_initiated)
{
	struct hc_error err = {0};
	char uds[128], port_path[160], buf[8] = {0};
	int lfd, vmm, fd;

	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	lfd = hc_hvsock_listen(uds, 1024, &err);
	ASSERT_OK(lfd, &err);
	snprintf(port_path, sizeof(port_path), "%s_1024", uds);
	/* The VMM forwards the guest's connect() to <uds>_1024. */
	vmm = unix_connect(port_path);
	ASSERT_TRUE(vmm >= 0);
	ASSERT_EQ_INT(write(vmm, "hi", 2), 2);
	fd = hc_hvsock_accept(lfd, -1, 5000, &err);
	ASSERT_OK(fd, &err);
	ASSERT_EQ_INT(read(fd, buf, sizeof(buf) - 1), 2);
	ASSERT_EQ_STR(buf, "hi");
	close(fd);
	close(vmm);
	close(lfd);
	/* Listening again replaces the stale socket file. */
	lfd = hc_hvsock_listen(uds, 1024, &err);
	ASSERT_OK(lfd, &err);
	close(lfd);
}

TEST(guest_initiated_cancelled)
{
	struct hc_error err = {0};
	char uds[128];
	int lfd, p[2];

	snprintf(uds, sizeof(uds), "%s/c.sock", dir);
	lfd = hc_hvsock_listen(uds, 1024, &err);
	ASSERT_OK(lfd, &err);
	ASSERT_EQ_INT(pipe2(p, O_CLOEXEC), 0);
	close(p[1]); /* readable (EOF): the VMM "died" */
	ASSERT_EQ_INT(hc_hvsock_accept(lfd, p[0], -1, &err), -ECHILD);
	ASSERT_EQ_INT(hc_hvsock_accept(lfd, -1, 0, &err), -ETIMEDOUT);
	close(p[0]);
	close(lfd);
}

TEST(listen_refuses_non_socket)
{
	struct hc_error err = {0};
	char uds[128], path[160];
	FILE *f;

	snprintf(uds, sizeof(uds), "%s/f.sock", dir);
	snprintf(path, sizeof(path), "%s_1024", uds);
	f = fopen(path, "we");
	ASSERT_TRUE(f != NULL);
	fclose(f);
	ASSERT_EQ_INT(hc_hvsock_listen(uds, 1024, &err), -EEXIST);
}

TEST(path_too_long)
{
	struct hc_error err = {0};
	char uds[200];

	memset(uds, 'a', sizeof(uds) - 1);
	uds[sizeof(uds) - 1] = '\0';
	ASSERT_EQ_INT(hc_hvsock_listen(uds, 1024, &err), -ENAMETOOLONG);
}

int main(void)
{
	mkdir_tmp();
	RUN(host_initiated_ok_keeps_payload);
	RUN(host_initiated_refused);
	RUN(host_initiated_bad_reply);
	RUN(host_initiated_overlong_reply);
	RUN(host_initiated_no_vmm);
	RUN(parse_ack);
	RUN(guest_initiated);
	RUN(guest_initiated_cancelled);
	RUN(listen_refuses_non_socket);
	RUN(path_too_long);
	rm_tmp();
	return test_summary();
}
