/* SPDX-License-Identifier: MIT */
/*
 * A test double in front of a real registry: it adds Docker's token authentication
 * (distribution docs/spec/auth/token.md) and the faults a registry client must survive, and
 * forwards everything else to the real registry (Debian's docker-registry on loopback).
 *
 *   registry-proxy --upstream 127.0.0.1:PORT [--creds USER:PASS] [--429 N] [--drop-blobs]
 *                  [--redirect] [--token-uses N] [--trickle BYTES_PER_S]
 *
 * Listens on 127.0.0.1 (a free port), prints the port on stdout, serves until SIGTERM.
 * One request per connection (Connection: close).
 *   GET /token?scope=…&service=…  issues "tok-<n>"; with --creds only to Basic USER:PASS
 *                                  (else 401); the scope must be repository:<name>:pull.
 *   GET /v2/…                      needs "Authorization: Bearer tok-<n>" of a live token, else
 *                                  401 with WWW-Authenticate: Bearer realm=…,service=…,scope=…
 *                                  (a token expires after --token-uses requests:
 *                                  error="invalid_token").
 *   blob GETs (/v2/<name>/blobs/…)   --429 N: the first N get 429 with Retry-After: 1;
 *                                  --drop-blobs: headers and half the body, then the
 *                                  connection is closed; --redirect: 307 to
 *                                  http://localhost:PORT/direct/… (another host name), which
 *                                  answers 400 when the request still carries Authorization;
 *                                  --trickle N: the headers at once, then the body at N bytes
 *                                  a second (a registry that never quite stalls), until the
 *                                  client goes away.
 * Anything malformed gets 400 and is logged on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQ_MAX 16384
#define TOKENS_MAX 4096

int main(int argc, char **argv);

static char upstream_host[64];
static int upstream_port;
static const char *creds; /* USER:PASS */
static int n429, port;
static bool drop_blobs, redirect;
static int token_uses; /* 0: unlimited */
static int trickle;    /* bytes/s of blob bodies; 0: full speed */
static int tokens_issued;
static int token_used[TOKENS_MAX];

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t k = write(fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

static void reply(int fd, const char *status, const char *extra, const char *body)
{
	char head[2048];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n%s\r\n",
			 status, strlen(body), extra ? extra : "");
	if (write_all(fd, head, (size_t)n) == 0)
		(void)write_all(fd, body, strlen(body));
}

static void challenge(int fd, const char *scope, const char *error)
{
	char hdr[1024];

	snprintf(
		hdr, sizeof(hdr),
		"WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\",service=\"hc-double\""
		"%s%s%s%s%s\r\n",
		port, scope ? ",scope=\"" : "", scope ? scope : "", scope ? "\"" : "",
		error ? ",error=" : "", error ? error : "");
	reply(fd, "401 Unauthorized", hdr,
	      "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}");
}

static const char *header(const char *req, const char *name, char *buf, size_t n)
{
	size_t k = strlen(name);

	for (const char *p = strstr(req, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, k) == 0 && p[2 + k] == ':') {
			const char *v = p + 3 + k, *e;
			while (*v == ' ')
				v++;
			e = strstr(v, "\r\n");
			if (!e || (size_t)(e - v) >= n)
				return NULL;
			memcpy(buf, v, (size_t)(e - v));
			buf[e - v] = '\0';
			return buf;
		}
	}
	return NULL;
}

static int b64(const char *in, char *out, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strlen(in), o = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char)in[i + 2];
		if (o + 5 > n)
			return -1;
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < len ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? t[v & 63] : '=';
	}
	out[o] = '\0';
	return 0;
}

/* Forwards "GET path" to the real registry and returns its whole response (malloc'd). */
static char *fetch_upstream(const char *path, const char *accept, size_t *ret_len)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)upstream_port)};
	char req[4096], *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, n;

	inet_pton(AF_INET, upstream_host, &a.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%sConnection: close\r\n\r\n", path,
		     upstream_host, upstream_port, accept ? "Accept: " : "", accept ? accept : "",
		     accept ? "\r\n" : "");
	if (write_all(fd, req, (size_t)n) < 0) {
		close(fd);
		return NULL;
	}
	for (;;) {
		ssize_t k;
		if (len + 65536 > cap) {
			char *nb = realloc(buf, cap = cap * 2 + 65536);
			if (!nb) {
				free(buf);
				close(fd);
				return NULL;
			}
			buf = nb;
		}
		k = read(fd, buf + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
	}
	close(fd);
	*ret_len = len;
	return buf;
}

static void forward(int fd, const char *path, const char *accept, bool is_blob)
{
	size_t len = 0;
	char *resp = fetch_upstream(path, accept, &len);
	char *body;

	if (!resp) {
		reply(fd, "502 Bad Gateway", NULL, "{}");
		return;
	}
	body = strstr(resp, "\r\n\r\n");
	if (is_blob && drop_blobs && body && strncmp(resp, "HTTP/1.1 200", 12) == 0) {
		size_t head = (size_t)(body + 4 - resp);
		/* all the headers (with the full Content-Length), half the body, then gone */
		(void)write_all(fd, resp, head + (len - head) / 2);
		free(resp);
		return;
	}
	if (is_blob && trickle > 0 && body && strncmp(resp, "HTTP/1.1 200", 12) == 0) {
		size_t off = (size_t)(body + 4 - resp),
		       step = trickle >= 10 ? (size_t)trickle / 10 : 1;
		useconds_t pause = trickle >= 10 ? 100000 : (useconds_t)(1000000 / trickle);
		if (write_all(fd, resp, off) < 0) {
			free(resp);
			return;
		}
		fprintf(stderr, "registry-proxy: trickling %zu bytes at %d B/s\n", len - off,
			trickle);
		while (off < len) {
			size_t n = len - off < step ? len - off : step;
			if (write_all(fd, resp + off, n) < 0)
				break;
			off += n;
			usleep(pause);
		}
		fprintf(stderr, "registry-proxy: trickle ended at %zu of %zu bytes\n", off, len);
		free(resp);
		return;
	}
	(void)write_all(fd, resp, len);
	free(resp);
}

static bool token_ok(const char *auth, bool *expired)
{
	int n;

	*expired = false;
	if (!auth || sscanf(auth, "Bearer tok-%d", &n) != 1 || n < 1 || n > tokens_issued ||
	    n >= TOKENS_MAX)
		return false;
	if (token_uses && ++token_used[n] > token_uses) {
		*expired = true;
		return false;
	}
	return true;
}

static void serve(int fd)
{
	char req[REQ_MAX + 1], method[16], path[2048], auth[1024], accept[1024], want[600];
	char scope[600], name[512];
	size_t len = 0;
	const char *a, *acc;
	bool expired;

	while (len < REQ_MAX) {
		ssize_t k = read(fd, req + len, REQ_MAX - len);
		if (k <= 0)
			return;
		len += (size_t)k;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	if (sscanf(req, "%15s %2047s", method, path) != 2 || strcmp(method, "GET") != 0) {
		fprintf(stderr, "registry-proxy: bad request: %.80s\n", req);
		reply(fd, "400 Bad Request", NULL, "{}");
		return;
	}
	a = header(req, "Authorization", auth, sizeof(auth));
	acc = header(req, "Accept", accept, sizeof(accept));
	fprintf(stderr, "registry-proxy: GET %s%s\n", path, a ? " (with Authorization)" : "");

	if (strncmp(path, "/token", 6) == 0) {
		char body[128];
		if (!strstr(path, "scope=repository%3A") || !strstr(path, "%3Apull") ||
		    !strstr(path, "service=hc-double")) {
			reply(fd, "400 Bad Request", NULL, "{\"error\":\"bad scope or service\"}");
			return;
		}
		if (creds) {
			char enc[600];
			if (b64(creds, enc, sizeof(enc) - 8) < 0)
				return;
			snprintf(want, sizeof(want), "Basic %s", enc);
			if (!a || strcmp(a, want) != 0) {
				reply(fd, "401 Unauthorized", NULL,
				      "{\"details\":\"bad credentials\"}");
				return;
			}
		}
		snprintf(body, sizeof(body), "{\"token\":\"tok-%d\",\"expires_in\":300}",
			 ++tokens_issued);
		reply(fd, "200 OK", NULL, body);
		return;
	}
	if (strncmp(path, "/direct/", 8) == 0) {
		if (a) {
			reply(fd, "400 Bad Request", NULL,
			      "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"authorization "
			      "forwarded across a redirect\"}]}");
			return;
		}
		snprintf(want, sizeof(want), "/v2/%s", path + 8);
		forward(fd, want, acc, false);
		return;
	}
	if (strncmp(path, "/v2/", 4) != 0) {
		reply(fd, "404 Not Found", NULL, "{}");
		return;
	}
	/* the repository name, for the scope */
	name[0] = '\0';
	{
		const char *s = path + 4, *e = strstr(s, "/manifests/");
		if (!e)
			e = strstr(s, "/blobs/");
		if (!e)
			e = strstr(s, "/tags/");
		if (e && (size_t)(e - s) < sizeof(name)) {
			memcpy(name, s, (size_t)(e - s));
			name[e - s] = '\0';
		}
	}
	snprintf(scope, sizeof(scope), "repository:%s:pull", name);
	if (!token_ok(a, &expired)) {
		challenge(fd, name[0] ? scope : NULL, expired ? "\"invalid_token\"" : NULL);
		return;
	}
	if (strcmp(path, "/v2/") == 0) {
		reply(fd, "200 OK", NULL, "{}");
		return;
	}
	if (strstr(path, "/blobs/")) {
		if (n429 > 0) {
			n429--;
			reply(fd, "429 Too Many Requests", "Retry-After: 1\r\n",
			      "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"slow "
			      "down\"}]}");
			return;
		}
		if (redirect) {
			char hdr[2300];
			snprintf(hdr, sizeof(hdr), "Location: http://localhost:%d/direct/%s\r\n",
				 port, path + 4);
			reply(fd, "307 Temporary Redirect", hdr, "");
			return;
		}
		forward(fd, path, acc, true);
		return;
	}
	forward(fd, path, acc, false);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int lfd, one = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--upstream") == 0 && i + 1 < argc) {
			if (sscanf(argv[++i], "%63[^:]:%d", upstream_host, &upstream_port) != 2)
				return 2;
		} else if (strcmp(argv[i], "--creds") == 0 && i + 1 < argc) {
			creds = argv[++i];
		} else if (strcmp(argv[i], "--429") == 0 && i + 1 < argc) {
			n429 = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--token-uses") == 0 && i + 1 < argc) {
			token_uses = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--trickle") == 0 && i + 1 < argc) {
			trickle = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--drop-blobs") == 0) {
			drop_blobs = true;
		} else if (strcmp(argv[i], "--redirect") == 0) {
			redirect = true;
		} else {
			fprintf(stderr, "registry-proxy: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!upstream_port) {
		fprintf(stderr, "registry-proxy: --upstream HOST:PORT is required\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) < 0) {
		perror("registry-proxy: listen");
		return 1;
	}
	port = ntohs(a.sin_port);
	printf("%d\n", port);
	fflush(stdout);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("registry-proxy: accept");
			return 1;
		}
		serve(fd);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
}
