/* SPDX-License-Identifier: MIT */
/*
 * Hybrid vsock, host side (see hvsock.h). The convention is Firecracker's (docs/vsock.md,
 * "Host-initiated connections" / "Guest-initiated connections"); Cloud Hypervisor and
 * vhost-device-vsock implement the same one.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/path.h"
#include "vmm/hvsock.h"
#include "vmm/unixsock.h"

int hc_hvsock_port_path(char *buf, size_t n, const char *uds, unsigned port, struct hc_error *err)
{
	int r = hc_path_fmt(buf, n, err, "%s_%u", uds, port);

	if (r < 0)
		return r;
	if (strlen(buf) > HC_SOCK_PATH_MAX)
		return hc_error_set(err, -ENAMETOOLONG, "socket path '%s' is longer than %d bytes",
				    buf, HC_SOCK_PATH_MAX);
	return 0;
}

static int fill_addr(struct sockaddr_un *sa, const char *path, struct hc_error *err)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return hc_error_set(err, -ENAMETOOLONG, "socket path '%s' is longer than %d bytes",
				    path, HC_SOCK_PATH_MAX);
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

int hc_hvsock_listen(const char *uds, unsigned port, struct hc_error *err)
{
	char path[HC_PATH_MAX];
	int r;

	r = hc_hvsock_port_path(path, sizeof(path), uds, port, err);
	if (r < 0)
		return r;
	return hc_unixsock_listen(path, 4, err);
}

int hc_hvsock_accept(int listen_fd, int cancel_fd, int timeout_ms, struct hc_error *err)
{
	double deadline = timeout_ms < 0 ? -1 : hc_clock_ms() + timeout_ms;

	for (;;) {
		struct pollfd p[2] = {{.fd = listen_fd, .events = POLLIN},
				      {.fd = cancel_fd, .events = POLLIN}};
		int r = poll(p, cancel_fd >= 0 ? 2 : 1, hc_clock_left_ms(deadline));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return hc_error_errno(err, -errno, "poll");
		}
		if (r == 0)
			return hc_error_set(err, -ETIMEDOUT,
					    "the guest did not connect within %d ms", timeout_ms);
		if (cancel_fd >= 0 && p[1].revents)
			return hc_error_set(err, -ECHILD,
					    "the VMM ended before the guest connected");
		if (p[0].revents & (POLLERR | POLLNVAL))
			return hc_error_set(err, -EIO, "listening socket failed");
		r = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (r >= 0)
			return r;
		if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
			continue;
		return hc_error_errno(err, -errno, "accept");
	}
}

int hc_hvsock_parse_ack(const char *line, size_t len, unsigned *ret_host_port)
{
	unsigned long v = 0;
	size_t i;

	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len < 4 || len > HC_HVSOCK_ACK_MAX || memcmp(line, "OK ", 3) != 0)
		return -EPROTO;
	for (i = 3; i < len; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -EPROTO;
		v = v * 10 + (unsigned long)(line[i] - '0');
		if (v > UINT_MAX)
			return -EPROTO;
	}
	if (ret_host_port)
		*ret_host_port = (unsigned)v;
	return 0;
}

/* Reads the acknowledgement one byte at a time: whatever follows the newline is the guest's
 * data and must stay in the socket for the protocol reader. */
static int read_ack(int fd, double deadline, char *line, size_t max, size_t *ret_len,
		    struct hc_error *err)
{
	size_t len = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		int r;

		r = poll(&p, 1, hc_clock_left_ms(deadline));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return hc_error_errno(err, -errno, "poll");
		}
		if (r == 0)
			return hc_error_set(err, -ETIMEDOUT, "no acknowledgement in time");
		n = read(fd, line + len, 1);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNRESET)
				return hc_error_set(
					err, -ECONNREFUSED,
					"connection reset: nothing listens on the guest port");
			return hc_error_errno(err, -errno, "read acknowledgement");
		}
		if (n == 0)
			return hc_error_set(err, -ECONNREFUSED,
					    "connection closed by the VMM: nothing listens on the "
					    "guest port");
		if (line[len] == '\n') {
			line[len + 1] = '\0';
			*ret_len = len + 1;
			return 0;
		}
		len++;
		if (len + 2 > max)
			return hc_error_set(err, -EPROTO, "acknowledgement longer than %zu bytes",
					    max - 2);
	}
}

int hc_hvsock_connect(const char *uds, unsigned port, int timeout_ms, unsigned *ret_host_port,
		      struct hc_error *err)
{
	double deadline = timeout_ms < 0 ? -1 : hc_clock_ms() + timeout_ms;
	char req[32], line[HC_HVSOCK_ACK_MAX + 2];
	_cleanup_close_ int fd = -1;
	struct sockaddr_un sa;
	size_t off = 0, len, linelen = 0;
	unsigned host_port = 0;
	int r, fl;

	r = fill_addr(&sa, uds, err);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return hc_error_errno(err, -errno, "socket");
	/* An AF_UNIX connect() waits on a full backlog for up to SO_SNDTIMEO: bound it. */
	if (timeout_ms > 0) {
		struct timeval tv = {.tv_sec = timeout_ms / 1000,
				     .tv_usec = (timeout_ms % 1000) * 1000};
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return hc_error_errno(err, -errno, "connect to vsock socket '%s'", uds);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return hc_error_errno(err, -errno, "fcntl");

	len = (size_t)snprintf(req, sizeof(req), "CONNECT %u\n", port);
	while (off < len) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		ssize_t n;

		r = poll(&p, 1, hc_clock_left_ms(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return hc_error_errno(err, -errno, "poll");
		if (r == 0)
			return hc_error_set(err, -ETIMEDOUT, "vsock CONNECT %u via '%s': timed out",
					    port, uds);
		n = write(fd, req + off, len - off);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return hc_error_errno(err, -errno, "vsock CONNECT %u via '%s'", port, uds);
		}
		off += (size_t)n;
	}
	r = read_ack(fd, deadline, line, sizeof(line), &linelen, err);
	if (r < 0)
		return hc_error_prefix(err, "vsock CONNECT %u via '%s'", port, uds);
	if (hc_hvsock_parse_ack(line, linelen, &host_port) < 0) {
		line[strcspn(line, "\n")] = '\0';
		return hc_error_set(err, -EPROTO,
				    "vsock CONNECT %u via '%s': unexpected reply '%s'", port, uds,
				    line);
	}
	if (fcntl(fd, F_SETFL, fl) < 0)
		return hc_error_errno(err, -errno, "fcntl");
	if (ret_host_port)
		*ret_host_port = host_port;
	return hc_steal_fd(&fd);
}

int hc_hvsock_reconnect(const char *uds, unsigned port, int timeout_ms, const char *who)
{
	struct hc_error err = {0};
	unsigned host_port = 0;
	int fd = hc_hvsock_connect(uds, port, timeout_ms, &host_port, &err);

	if (fd < 0) {
		hc_debug("%s: host-initiated reconnect failed (%s); waiting for the guest", who,
			 err.message);
		return -1;
	}
	hc_debug("%s: reconnected to the guest (host port %u)", who, host_port);
	return fd;
}

void hc_hvsock_unlink(const char *uds, unsigned port)
{
	struct hc_error err = {0};
	char p[HC_PATH_MAX];

	unlink(uds);
	if (hc_hvsock_port_path(p, sizeof(p), uds, port, &err) == 0)
		unlink(p);
}
