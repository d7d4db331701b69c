/* SPDX-License-Identifier: MIT */
/* The REST client against a one-shot HTTP server on a unix socket. */
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/path.h"
#include "test.h"
#include "vmm/rest.h"

static char dir[64], sock[128];

/* Serves one request with a canned response; records what it received. */
struct server {
	int listen_fd;
	const char *response; /* full HTTP response; NULL: build a huge one */
	char request[4096];
};

static void *server_main(void *arg)
{
	struct server *s = arg;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	size_t n = 0, want = 0;
	char *hdr_end;

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t k = read(fd, s->request + n, sizeof(s->request) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		s->request[n] = '\0';
		hdr_end = strstr(s->request, "\r\n\r\n");
		if (hdr_end) {
			char *cl = strcasestr(s->request, "Content-Length:");
			want = (size_t)(hdr_end + 4 - s->request) +
			       (cl ? strtoul(cl + 15, NULL, 10) : 0);
			if (n >= want)
				break;
		}
	}
	if (s->response) {
		ssize_t _unused_ w = write(fd, s->response, strlen(s->response));
	} else {
		static char big[HC_REST_BODY_MAX + 4096];
		int h = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
				 HC_REST_BODY_MAX + 100);
		memset(big + h, 'x', HC_REST_BODY_MAX + 100);
		ssize_t _unused_ w = write(fd, big, (size_t)h + HC_REST_BODY_MAX + 100);
	}
	close(fd);
	return NULL;
}

static int serve_one(const char *response, const char *method, const char *endpoint,
		     const char *body, long *status, char **resp, struct hc_error *err,
		     char *request, size_t request_len, bool checked)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct server s = {.response = response};
	struct hc_rest *r = NULL;
	pthread_t t;
	int rc;

	unlink(sock);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	s.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (bind(s.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s.listen_fd, 1) < 0)
		return -EIO;
	pthread_create(&t, NULL, server_main, &s);
	rc = hc_rest_new(&r, sock, err);
	if (rc == 0) {
		if (checked)
			rc = hc_rest_request(r, method, endpoint, body, 5000, resp, err);
		else
			rc = hc_rest_call(r, method, endpoint, body, 5000, status, resp, err);
	}
	hc_rest_free(r);
	if (rc < 0) {
		/* Unblock the server if the client never connected. */
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			shutdown(fd, SHUT_WR);
		pthread_join(t, NULL);
		close(fd);
	} else {
		pthread_join(t, NULL);
	}
	close(s.listen_fd);
	if (request)
		snprintf(request, request_len, "%s", s.request);
	return rc;
}

TEST(put_204)
{
	struct hc_error err = {0};
	char req[4096];
	char *resp = NULL;
	long st = 0;

	ASSERT_OK(serve_one("HTTP/1.1 204 No Content\r\n\r\n", "PUT", "/machine-config",
			    "{\"vcpu_count\":1,\"mem_size_mib\":256}", &st, &resp, &err, req,
			    sizeof(req), false),
		  &err);
	ASSERT_EQ_INT(st, 204);
	ASSERT_EQ_STR(resp, "");
	free(resp);
	ASSERT_TRUE(hc_startswith(req, "PUT /machine-config HTTP/1.1\r\n"));
	ASSERT_TRUE(strstr(req, "Content-Type: application/json") != NULL);
	ASSERT_TRUE(strstr(req, "\r\n\r\n{\"vcpu_count\":1,\"mem_size_mib\":256}") != NULL);
}

TEST(get_200_body)
{
	struct hc_error err = {0};
	char req[4096];
	char *resp = NULL;

	ASSERT_OK(serve_one("HTTP/1.1 200 OK\r\nContent-Length: 32\r\n\r\n"
			    "{\"firecracker_version\":\"1.10.1\"}",
			    "GET", "/version", NULL, NULL, &resp, &err, req, sizeof(req), true),
		  &err);
	ASSERT_EQ_STR(resp, "{\"firecracker_version\":\"1.10.1\"}");
	free(resp);
	ASSERT_TRUE(hc_startswith(req, "GET /version HTTP/1.1\r\n"));
}

TEST(fault_message_reaches_error)
{
	struct hc_error err = {0};
	const char *r =
		"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
		"Content-Length: 47\r\n\r\n{\"fault_message\":\"Invalid block device path\"}  ";
	int rc;

	rc = serve_one(r, "PUT", "/drives/rootfs", "{}", NULL, NULL, &err, NULL, 0, true);
	ASSERT_EQ_STR(err.message, "PUT /drives/rootfs: HTTP 400: Invalid block device path");
	ASSERT_EQ_INT(rc, -EINVAL);
}

TEST(plain_text_error)
{
	struct hc_error err = {0};
	const char *r = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 30\r\n\r\n"
			"Error booting VM: bad kernel\nx";
	int rc;

	rc = serve_one(r, "PUT", "/api/v1/vm.boot", NULL, NULL, NULL, &err, NULL, 0, true);
	ASSERT_EQ_INT(rc, -EIO);
	ASSERT_EQ_STR(err.message, "PUT /api/v1/vm.boot: HTTP 500: Error booting VM: bad kernel");
}

TEST(body_bounded)
{
	struct hc_error err = {0};
	char *resp = NULL;
	long st;
	int rc;

	rc = serve_one(NULL, "GET", "/", NULL, &st, &resp, &err, NULL, 0, false);
	ASSERT_EQ_INT(rc, -E2BIG);
	ASSERT_TRUE(resp == NULL);
	ASSERT_TRUE(strstr(err.message, "GET /: response body larger") != NULL);
}

TEST(no_socket)
{
	struct hc_error err = {0};
	struct hc_rest *r = NULL;
	char missing[160];
	long st;

	snprintf(missing, sizeof(missing), "%s/none.sock", dir);
	ASSERT_OK(hc_rest_new(&r, missing, &err), &err);
	ASSERT_ERR(hc_rest_call(r, "PUT", "/actions", "{}", 1000, &st, NULL, &err));
	hc_rest_free(r);
	ASSERT_TRUE(hc_startswith(err.message, "PUT /actions: "));
	ASSERT_TRUE(strstr(err.message, "none.sock") != NULL);
}

TEST(error_text)
{
	char b[64];

	hc_rest_error_text("{\"fault_message\":\"a\\nb\"}", b, sizeof(b));
	ASSERT_EQ_STR(b, "a b");
	hc_rest_error_text("{\"error\":\"x\"}", b, sizeof(b));
	ASSERT_EQ_STR(b, "x");
	hc_rest_error_text("\n  plain\nmore", b, sizeof(b));
	ASSERT_EQ_STR(b, "plain");
	hc_rest_error_text(NULL, b, sizeof(b));
	ASSERT_EQ_STR(b, "");
	hc_rest_error_text("{\"fault_message\":\"0123456789\"}", b, 5);
	ASSERT_EQ_STR(b, "0123");
}

TEST(long_socket_path)
{
	struct hc_error err = {0};
	struct hc_rest *r = NULL;
	char p[200];

	memset(p, 'a', sizeof(p) - 1);
	p[sizeof(p) - 1] = '\0';
	ASSERT_EQ_INT(hc_rest_new(&r, p, &err), -ENAMETOOLONG);
}

int main(void)
{
	struct hc_error err = {0};

	snprintf(dir, sizeof(dir), "/tmp/hcrest.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(sock, sizeof(sock), "%s/api.sock", dir);
	RUN(put_204);
	RUN(get_200_body);
	RUN(fault_message_reaches_error);
	RUN(plain_text_error);
	RUN(body_bounded);
	RUN(no_socket);
	RUN(error_text);
	RUN(long_socket_path);
	(void)hc_path_rm_rf(dir, &err);
	return test_summary();
}
