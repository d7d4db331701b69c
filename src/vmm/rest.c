/* SPDX-License-Identifier: MIT */
/* REST over a unix socket (see rest.h). */
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/curl.h"
#include "core/log.h"
#include "core/path.h"
#include "vmm/rest.h"

struct hc_rest {
	CURL *curl; /* kept between calls: one connection, reused (both VMMs keep it alive) */
	struct curl_slist *headers;
	char sock[HC_PATH_MAX];
	int cancel_fd; /* -1: none */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int hc_rest_new(struct hc_rest **ret, const char *sock_path, struct hc_error *err)
{
	struct hc_rest *r;

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return hc_error_set(err, -EIO, "libcurl initialisation failed: %s",
				    curl_easy_strerror(curl_init_rc));
	if (strlen(sock_path) > HC_SOCK_PATH_MAX)
		return hc_error_set(err, -ENAMETOOLONG,
				    "API socket path '%s' is longer than %d bytes", sock_path,
				    HC_SOCK_PATH_MAX);
	r = calloc(1, sizeof(*r));
	if (!r)
		return hc_error_set(err, -ENOMEM, "out of memory");
	snprintf(r->sock, sizeof(r->sock), "%s", sock_path);
	r->cancel_fd = -1;
	r->curl = curl_easy_init();
	if (!r->curl) {
		hc_rest_free(r);
		return hc_error_set(err, -ENOMEM, "curl_easy_init failed");
	}
	/* "Expect:" off: neither VMM's HTTP server does 100-continue. */
	static const char *const hdrs[] = {"Content-Type: application/json",
					   "Accept: application/json", "Expect:"};
	for (size_t i = 0; i < HC_ARRAY_SIZE(hdrs); i++) {
		struct curl_slist *h = curl_slist_append(r->headers, hdrs[i]);
		if (!h) {
			hc_rest_free(r);
			return hc_error_set(err, -ENOMEM, "out of memory");
		}
		r->headers = h;
	}
	*ret = r;
	return 0;
}

void hc_rest_free(struct hc_rest *r)
{
	if (!r)
		return;
	if (r->curl)
		curl_easy_cleanup(r->curl);
	curl_slist_free_all(r->headers);
	free(r);
}

void hc_rest_set_cancel_fd(struct hc_rest *r, int fd)
{
	if (r)
		r->cancel_fd = fd;
}

/* libcurl calls this often during a transfer and about once a second when nothing moves:
 * a readable cancel fd aborts the call. */
static int on_progress(void *userdata, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
		       curl_off_t uln)
{
	struct pollfd p = {.fd = *(const int *)userdata, .events = POLLIN};

	(void)dlt, (void)dln, (void)ult, (void)uln;
	return p.fd >= 0 && poll(&p, 1, 0) > 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct hc_buf *b = userdata;
	size_t n = size * nmemb;

	if (hc_buf_append(b, p, n) < 0)
		return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
	return n;
}

int hc_rest_call(struct hc_rest *r, const char *method, const char *endpoint, const char *body,
		 int timeout_ms, long *ret_status, char **ret_body, struct hc_error *err)
{
	struct hc_buf resp = HC_BUF_INIT(HC_REST_BODY_MAX);
	char url[512];
	long status = 0;
	CURLcode rc;
	CURL *c = r->curl;

	if (timeout_ms <= 0)
		timeout_ms = HC_REST_TIMEOUT_MS;
	if ((size_t)snprintf(url, sizeof(url), "http://localhost%s", endpoint) >= sizeof(url))
		return hc_error_set(err, -ENAMETOOLONG, "%s %s: endpoint too long", method,
				    endpoint);
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, r->sock);
	curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, hc_curl_sockopt_cloexec);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	if (r->cancel_fd >= 0) {
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, &r->cancel_fd);
	}
	if (hc_streq(method, "GET")) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	}
	hc_debug("rest %s: %s %s %s", r->sock, method, endpoint, body ? body : "");
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		int code = -EIO;

		hc_buf_free(&resp);
		if (rc == CURLE_WRITE_ERROR)
			return hc_error_set(err, -E2BIG,
					    "%s %s: response body larger than %d bytes", method,
					    endpoint, HC_REST_BODY_MAX);
		if (rc == CURLE_ABORTED_BY_CALLBACK)
			return hc_error_setk(err, -ECANCELED, "cancelled", "interrupted");
		if (rc == CURLE_OPERATION_TIMEDOUT)
			code = -ETIMEDOUT;
		else if (rc == CURLE_COULDNT_CONNECT)
			code = -ECONNREFUSED;
		return hc_error_set(err, code, "%s %s: %s (API socket %s)", method, endpoint,
				    curl_easy_strerror(rc), r->sock);
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	hc_debug("rest %s: %s %s -> %ld %s", r->sock, method, endpoint, status,
		 resp.data ? resp.data : "");
	*ret_status = status;
	if (ret_body) {
		if (hc_buf_append(&resp, "", 0) < 0)
			return hc_error_set(err, -ENOMEM, "out of memory");
		*ret_body = hc_buf_steal(&resp, NULL);
	}
	hc_buf_free(&resp);
	return 0;
}

/* Keeps one line of printable text: the message goes into a one-line hc_error. */
static void copy_line(char *buf, size_t n, const char *s, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 1 < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		buf[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	buf[o] = '\0';
	while (o > 0 && buf[o - 1] == ' ')
		buf[--o] = '\0';
}

void hc_rest_error_text(const char *body, char *buf, size_t n)
{
	json_t *j;

	if (!n)
		return;
	buf[0] = '\0';
	if (!body)
		return;
	j = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
	if (json_is_object(j)) {
		/* Firecracker: {"fault_message": "..."}; others: "error" or "message". */
		static const char *const keys[] = {"fault_message", "error", "message"};
		size_t i;

		for (i = 0; i < HC_ARRAY_SIZE(keys); i++) {
			json_t *v = json_object_get(j, keys[i]);
			if (json_is_string(v)) {
				copy_line(buf, n, json_string_value(v), json_string_length(v));
				json_decref(j);
				return;
			}
		}
	}
	if (json_is_array(j) && json_array_size(j)) {
		/* Cloud Hypervisor (v40 and later): the error chain as an array of strings, from
		 * the top to the root cause; joined with ": ", as it logs them. */
		char chain[2048];
		size_t o = 0, i;
		json_t *v;

		chain[0] = '\0';
		json_array_foreach(j, i, v)
		{
			if (json_is_string(v) && o < sizeof(chain))
				o += (size_t)snprintf(chain + o, sizeof(chain) - o, "%s%s",
						      o ? ": " : "", json_string_value(v));
		}
		copy_line(buf, n, chain, strnlen(chain, sizeof(chain)));
		json_decref(j);
		return;
	}
	json_decref(j);
	/* Cloud Hypervisor answers errors with plain text: keep the first non-empty line. */
	while (*body == '\n' || *body == '\r' || *body == ' ')
		body++;
	copy_line(buf, n, body, strcspn(body, "\r\n"));
}

/* ---- one exchange with file descriptors (SCM_RIGHTS) ---- */

/* Waits for fd to be ready for events (and the cancel fd) until deadline. */
static int wait_fd(const struct hc_rest *r, int fd, short events, double deadline,
		   const char *method, const char *endpoint, struct hc_error *err)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = events},
				      {.fd = r->cancel_fd, .events = POLLIN}};
		int left = hc_clock_left_ms(deadline), n;

		if (left == 0)
			return hc_error_set(err, -ETIMEDOUT, "%s %s: timed out (API socket %s)",
					    method, endpoint, r->sock);
		n = poll(p, r->cancel_fd >= 0 ? 2 : 1, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return hc_error_errno(err, -errno, "%s %s: poll", method, endpoint);
		if (n > 0 && p[1].revents)
			return hc_error_setk(err, -ECANCELED, "cancelled", "interrupted");
		if (n > 0 && p[0].revents)
			return 0;
	}
}

int hc_rest_call_fds(struct hc_rest *r, const char *method, const char *endpoint, const char *body,
		     const int *fds, size_t n_fds, int timeout_ms, long *ret_status,
		     char **ret_body, struct hc_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct hc_buf req = HC_BUF_INIT(0), resp = HC_BUF_INIT(HC_REST_BODY_MAX + 8192);
	double deadline = hc_clock_ms() + (timeout_ms > 0 ? timeout_ms : HC_REST_TIMEOUT_MS);
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * HC_REST_MAX_FDS)];
	} ctl;
	_cleanup_close_ int fd = -1;
	size_t off = 0, blen = body ? strlen(body) : 0, hlen = 0, clen = 0;
	long status = 0;
	int rc = 0;

	if (n_fds == 0 || n_fds > HC_REST_MAX_FDS)
		return hc_error_set(err, -EINVAL, "%s %s: %zu fds to pass", method, endpoint,
				    n_fds);
	if (hc_buf_printf(&req,
			  "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
			  "Accept: application/json\r\nContent-Length: %zu\r\nConnection: "
			  "close\r\n\r\n",
			  method, endpoint, blen) < 0 ||
	    hc_buf_append(&req, body ? body : "", blen) < 0) {
		hc_buf_free(&req);
		return hc_error_set(err, -ENOMEM, "%s %s: out of memory", method, endpoint);
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r->sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = hc_error_set(err, -errno, "%s %s: cannot connect to the API socket %s: %s",
				  method, endpoint, r->sock, strerror(errno));
		goto out;
	}
	hc_debug("rest %s: %s %s %s (+%zu fds)", r->sock, method, endpoint, body ? body : "",
		 n_fds);
	/* The fds ride on the request's first bytes; the rest follows as plain writes. */
	while (off < req.len) {
		struct iovec iov = {.iov_base = req.data + off, .iov_len = req.len - off};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t k;

		if (off == 0) {
			memset(&ctl, 0, sizeof(ctl));
			m.msg_control = ctl.buf;
			m.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
			struct cmsghdr *c = CMSG_FIRSTHDR(&m);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
		}
		k = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			rc = wait_fd(r, fd, POLLOUT, deadline, method, endpoint, err);
			if (rc < 0)
				goto out;
			continue;
		}
		if (k < 0) {
			rc = hc_error_errno(err, -errno, "%s %s: send", method, endpoint);
			goto out;
		}
		off += (size_t)k;
	}
	/* The response: a status line, headers with Content-Length (both VMMs send it), the
	 * body; bounded like libcurl's. */
	for (;;) {
		char buf[8192];
		ssize_t k;

		if (hlen && resp.len >= hlen + clen)
			break;
		rc = wait_fd(r, fd, POLLIN, deadline, method, endpoint, err);
		if (rc < 0)
			goto out;
		k = read(fd, buf, sizeof(buf));
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0) {
			rc = hc_error_set(err, k < 0 ? -errno : -EPIPE,
					  "%s %s: the API closed the connection before its answer",
					  method, endpoint);
			goto out;
		}
		if (hc_buf_append(&resp, buf, (size_t)k) < 0) {
			rc = hc_error_set(err, -E2BIG, "%s %s: response body larger than %d bytes",
					  method, endpoint, HC_REST_BODY_MAX);
			goto out;
		}
		if (!hlen) {
			char *end = memmem(resp.data, resp.len, "\r\n\r\n", 4), *cl;

			if (!end)
				continue;
			*end = '\0';
			if (sscanf(resp.data, "HTTP/1.%*d %ld", &status) != 1 || status < 100 ||
			    status > 599) {
				rc = hc_error_set(err, -EPROTO, "%s %s: not an HTTP response",
						  method, endpoint);
				goto out;
			}
			cl = strcasestr(resp.data, "\r\nContent-Length:");
			clen = cl ? strtoul(cl + 17, NULL, 10) : 0;
			*end = '\r';
			hlen = (size_t)(end - resp.data) + 4;
			if (clen > HC_REST_BODY_MAX) {
				rc = hc_error_set(err, -E2BIG,
						  "%s %s: response body larger than %d bytes",
						  method, endpoint, HC_REST_BODY_MAX);
				goto out;
			}
		}
	}
	hc_debug("rest %s: %s %s -> %ld %.*s", r->sock, method, endpoint, status, (int)clen,
		 resp.data + hlen);
	*ret_status = status;
	if (ret_body) {
		*ret_body = strndup(resp.data + hlen, clen);
		if (!*ret_body)
			rc = hc_error_set(err, -ENOMEM, "out of memory");
	}
out:
	hc_buf_free(&req);
	hc_buf_free(&resp);
	return rc;
}

static int check_status(const char *method, const char *endpoint, long status, const char *resp,
			struct hc_error *err)
{
	char text[512];

	if (status >= 200 && status <= 299)
		return 0;
	hc_rest_error_text(resp, text, sizeof(text));
	return hc_error_set(err, status >= 400 && status < 500 ? -EINVAL : -EIO,
			    "%s %s: HTTP %ld%s%s", method, endpoint, status, text[0] ? ": " : "",
			    text);
}

int hc_rest_request_json_fds(struct hc_rest *r, const char *method, const char *endpoint,
			     json_t *body, const int *fds, size_t n_fds, int timeout_ms,
			     struct hc_error *err)
{
	_cleanup_free_ char *s = NULL, *resp = NULL;
	long status = 0;
	int rc;

	if (!body)
		return hc_error_set(err, -ENOMEM, "%s %s: out of memory", method, endpoint);
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!s)
		return hc_error_set(err, -ENOMEM, "%s %s: out of memory", method, endpoint);
	rc = hc_rest_call_fds(r, method, endpoint, s, fds, n_fds, timeout_ms, &status, &resp, err);
	return rc < 0 ? rc : check_status(method, endpoint, status, resp, err);
}

int hc_rest_request(struct hc_rest *r, const char *method, const char *endpoint, const char *body,
		    int timeout_ms, char **ret_body, struct hc_error *err)
{
	_cleanup_free_ char *resp = NULL;
	long status = 0;
	int rc;

	rc = hc_rest_call(r, method, endpoint, body, timeout_ms, &status, &resp, err);
	if (rc < 0)
		return rc;
	rc = check_status(method, endpoint, status, resp, err);
	if (rc < 0)
		return rc;
	if (ret_body)
		*ret_body = steal_ptr(&resp);
	return 0;
}

int hc_rest_request_json(struct hc_rest *r, const char *method, const char *endpoint, json_t *body,
			 int timeout_ms, char **ret_body, struct hc_error *err)
{
	_cleanup_free_ char *s = NULL;

	if (!body)
		return hc_error_set(err, -ENOMEM, "%s %s: out of memory", method, endpoint);
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!s)
		return hc_error_set(err, -ENOMEM, "%s %s: out of memory", method, endpoint);
	return hc_rest_request(r, method, endpoint, s, timeout_ms, ret_body, err);
}
