/* SPDX-License-Identifier: MIT */
/*
 * A fault injector in front of a `hotcell serve` for the migration tests (docs/migration.md):
 * it relays every connection to the upstream server unchanged, except the body of a
 * "PUT /api/v1/migrate", which it
 *
 *   --cut-at P      relays up to P percent of (the Content-Length it announced) and then
 *                   closes both connections, as a network that fails mid-transfer;
 *   --corrupt-at P  relays whole, with one bit flipped at P percent of the body.
 *
 *   cut-proxy --upstream HOST:PORT [--listen ADDR] (--cut-at P | --corrupt-at P)
 *
 * Listens on ADDR (default 127.0.0.1) at a free port, prints the port on stdout, serves until
 * SIGTERM, a process per connection. A migrate request without a Content-Length, or with
 * headers over 16 KiB, gets 400 (the real client always sends one). Logs what it did on
 * stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define HDR_MAX 16384

static struct sockaddr_in upstream;
static int cut_pct = -1, corrupt_pct = -1;

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Both ways until either side closes. */
static void relay(int a, int b)
{
	char buf[65536];

	for (;;) {
		struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));

			if (n <= 0 || write_all(i ? a : b, buf, (size_t)n) < 0)
				return;
		}
	}
}

static void serve(int c)
{
	char hdr[HDR_MAX + 1];
	size_t len = 0;
	char *end = NULL;
	int u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (u < 0 || connect(u, (struct sockaddr *)&upstream, sizeof(upstream)) < 0) {
		perror("cut-proxy: upstream");
		return;
	}
	/* The request's headers. */
	while (!end && len < HDR_MAX) {
		ssize_t n = read(c, hdr + len, HDR_MAX - len);

		if (n <= 0)
			return;
		len += (size_t)n;
		hdr[len] = 0;
		end = strstr(hdr, "\r\n\r\n");
	}
	if (!end) {
		fprintf(stderr, "cut-proxy: headers over %d bytes\n", HDR_MAX);
		dprintf(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
		return;
	}
	end += 4;
	if (strncmp(hdr, "PUT /api/v1/migrate ", 20) != 0) {
		if (write_all(u, hdr, len) == 0)
			relay(c, u);
		return;
	}
	const char *cl = NULL;
	for (char *l = strstr(hdr, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n"))
		if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
			cl = l + 17;
	if (!cl) {
		fprintf(stderr, "cut-proxy: a migration without a Content-Length\n");
		dprintf(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
		return;
	}
	unsigned long long total = strtoull(cl, NULL, 10), at, sent = 0;
	int pct = cut_pct >= 0 ? cut_pct : corrupt_pct;

	at = total * (unsigned long long)pct / 100;
	if (at >= total && total)
		at = total - 1;
	/* Headers, then the body byte-counted from end. */
	if (write_all(u, hdr, (size_t)(end - hdr)) < 0)
		return;
	char buf[65536];
	size_t n0 = len - (size_t)(end - hdr);
	memmove(buf, end, n0);
	for (;;) {
		size_t n = n0;

		n0 = 0;
		if (n == 0) {
			ssize_t k = read(c, buf, sizeof(buf));

			if (k <= 0)
				break;
			n = (size_t)k;
		}
		if (cut_pct >= 0 && sent + n >= at) {
			if (write_all(u, buf, (size_t)(at - sent)) == 0)
				sent = at;
			fprintf(stderr,
				"cut-proxy: cut the migration at %llu of %llu bytes (%d %%)\n",
				sent, total, cut_pct);
			return; /* both connections close with this process */
		}
		if (corrupt_pct >= 0 && sent <= at && at < sent + n) {
			buf[at - sent] ^= 0x10;
			fprintf(stderr, "cut-proxy: flipped a bit at byte %llu of %llu (%d %%)\n",
				at, total, corrupt_pct);
		}
		if (write_all(u, buf, n) < 0)
			return;
		sent += n;
		if (sent >= total)
			break;
	}
	/* The answer, and whatever follows on the connection. */
	relay(c, u);
}

int main(int argc, char **argv)
{
	const char *listen_addr = "127.0.0.1", *up = NULL;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int l;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--upstream"))
			up = argv[i + 1];
		else if (!strcmp(argv[i], "--listen"))
			listen_addr = argv[i + 1];
		else if (!strcmp(argv[i], "--cut-at"))
			cut_pct = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--corrupt-at"))
			corrupt_pct = atoi(argv[i + 1]);
		else
			break;
	}
	char host[64];
	const char *colon = up ? strrchr(up, ':') : NULL;
	if (!colon || (size_t)(colon - up) >= sizeof(host) || (cut_pct < 0) == (corrupt_pct < 0) ||
	    cut_pct > 100 || corrupt_pct > 100) {
		fprintf(stderr,
			"usage: cut-proxy --upstream HOST:PORT [--listen ADDR] (--cut-at P | "
			"--corrupt-at P)\n");
		return 2;
	}
	memcpy(host, up, (size_t)(colon - up));
	host[colon - up] = 0;
	upstream.sin_family = AF_INET;
	upstream.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &upstream.sin_addr) != 1 ||
	    inet_pton(AF_INET, listen_addr, &a.sin_addr) != 1) {
		fprintf(stderr, "cut-proxy: IPv4 addresses only\n");
		return 2;
	}
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &alen) < 0) {
		perror("cut-proxy: listen");
		return 1;
	}
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	signal(SIGCHLD, SIG_IGN); /* no zombies */
	for (;;) {
		int c = accept(l, NULL, NULL);

		if (c < 0) {
			if (errno == EINTR)
				continue;
			perror("cut-proxy: accept");
			return 1;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(l);
			serve(c);
			_exit(0);
		}
		close(c);
	}
}
