/* SPDX-License-Identifier: MIT */
/*
 * -p: published ports, relayed in userspace (docker-proxy's way). A DNAT to the guest would
 * not serve 127.0.0.1 without the host-wide route_localnet switch, so the VM's holder (hotcell
 * run, or the persistent VM's supervisor) listens itself: the sockets are bound before the
 * boot, so a port already taken is an error then; one thread accepts, and each connection
 * gets a thread relaying bytes both ways until both sides are done. Stopping wakes every
 * thread through one eventfd and waits for all of them.
 *
 * /udp: the same thread serves the UDP sockets. Each client address gets a flow, a socket
 * connected to guest:port, so the guest's replies go back to that client; a flow idle for
 * UDP_IDLE_S is closed, and at most UDP_MAX_FLOWS are open (a new client then takes the
 * place of the longest idle). Datagrams are relayed one at a time through one buffer.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>

#include "core/log.h"
#include "net/net.h"

#define CONNECT_TIMEOUT_MS 5000
#define RELAY_BUF 65536
#define UDP_MAX_FLOWS 64
#define UDP_IDLE_S 60

struct flow {
	int fd;	     /* connected to guest:port; -1 when the slot is free */
	size_t port; /* index into lfd */
	struct sockaddr_in client;
	time_t last;
};

struct fwd {
	int stop_fd;
	int lfd[HC_NET_MAX_PORTS];
	uint16_t guest_port[HC_NET_MAX_PORTS];
	bool udp[HC_NET_MAX_PORTS];
	size_t n;
	struct flow flows[UDP_MAX_FLOWS];
	struct in_addr guest;
	pthread_t acceptor;
	bool acceptor_started;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned conns;
};

struct conn {
	struct fwd *f;
	int client;
	uint16_t port;
};

/* Waits for fd to be ready for ev; false when stopping or on error. */
static bool wait_fd(struct fwd *f, int fd, short ev, int timeout_ms)
{
	struct pollfd p[2] = {{fd, ev, 0}, {f->stop_fd, POLLIN, 0}};
	int r;

	do
		r = poll(p, 2, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0 && !p[1].revents && p[0].revents;
}

static int guest_connect(struct fwd *f, uint16_t port)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = f->guest};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), e = 0;
	socklen_t len = sizeof(e);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno == EINPROGRESS && wait_fd(f, fd, POLLOUT, CONNECT_TIMEOUT_MS) &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == 0)
		return fd;
	close(fd);
	return -1;
}

/* Moves what is readable from a to b; false when a is done (EOF or error). */
static bool pump(struct fwd *f, int a, int b, char *buf)
{
	ssize_t n = read(a, buf, RELAY_BUF);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0)
		return false;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(b, buf + off, (size_t)(n - off));

		if (w < 0 && errno == EAGAIN) {
			if (!wait_fd(f, b, POLLOUT, -1))
				return false;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		off += w;
	}
	return true;
}

static void *relay(void *arg)
{
	struct conn *c = arg;
	struct fwd *f = c->f;
	int g = guest_connect(f, c->port);
	char *buf = malloc(RELAY_BUF);
	bool open_in = true, open_out = true; /* client->guest, guest->client */

	if (g >= 0 && buf) {
		fcntl(c->client, F_SETFL, fcntl(c->client, F_GETFL) | O_NONBLOCK);
		while (open_in || open_out) {
			struct pollfd p[3] = {{c->client, open_in ? POLLIN : 0, 0},
					      {g, open_out ? POLLIN : 0, 0},
					      {f->stop_fd, POLLIN, 0}};

			if (poll(p, 3, -1) < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			if (p[2].revents)
				break;
			if (p[0].revents && !pump(f, c->client, g, buf)) {
				open_in = false;
				shutdown(g, SHUT_WR);
			}
			if (p[1].revents && !pump(f, g, c->client, buf)) {
				open_out = false;
				shutdown(c->client, SHUT_WR);
			}
		}
	} else {
		hc_debug("network: -p %u: cannot reach the guest", c->port);
	}
	free(buf);
	if (g >= 0)
		close(g);
	close(c->client);
	pthread_mutex_lock(&f->lock);
	if (--f->conns == 0)
		pthread_cond_broadcast(&f->idle);
	pthread_mutex_unlock(&f->lock);
	free(c);
	return NULL;
}

static void accept_tcp(struct fwd *f, size_t i)
{
	struct conn *c;
	pthread_t t;
	pthread_attr_t attr;
	int fd = accept4(f->lfd[i], NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	c = malloc(sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	*c = (struct conn){f, fd, f->guest_port[i]};
	pthread_mutex_lock(&f->lock);
	f->conns++;
	pthread_mutex_unlock(&f->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, relay, c) != 0) {
		pthread_mutex_lock(&f->lock);
		f->conns--;
		pthread_mutex_unlock(&f->lock);
		close(fd);
		free(c);
	}
	pthread_attr_destroy(&attr);
}

static time_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void flow_close(struct flow *fl)
{
	if (fl->fd >= 0)
		close(fl->fd);
	fl->fd = -1;
}

/* The flow of client on published port i: found, or made (taking a free slot or the longest
 * idle one). NULL when the guest socket cannot be made. */
static struct flow *flow_of(struct fwd *f, size_t i, const struct sockaddr_in *client)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons(f->guest_port[i]), .sin_addr = f->guest};
	struct flow *slot = NULL;

	for (size_t k = 0; k < UDP_MAX_FLOWS; k++) {
		struct flow *fl = &f->flows[k];

		if (fl->fd >= 0 && fl->port == i && fl->client.sin_port == client->sin_port &&
		    fl->client.sin_addr.s_addr == client->sin_addr.s_addr)
			return fl;
		if (!slot || (slot->fd >= 0 && (fl->fd < 0 || fl->last < slot->last)))
			slot = fl;
	}
	flow_close(slot);
	slot->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (slot->fd < 0)
		return NULL;
	if (connect(slot->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		flow_close(slot);
		return NULL;
	}
	slot->port = i;
	slot->client = *client;
	return slot;
}

/* A datagram from a client to the guest. */
static void udp_in(struct fwd *f, size_t i, char *buf)
{
	struct sockaddr_in client;
	socklen_t len = sizeof(client);
	ssize_t n =
		recvfrom(f->lfd[i], buf, RELAY_BUF, MSG_DONTWAIT, (struct sockaddr *)&client, &len);
	struct flow *fl;

	if (n < 0 || len != sizeof(client) || !(fl = flow_of(f, i, &client)))
		return;
	fl->last = now_s();
	if (send(fl->fd, buf, (size_t)n, MSG_DONTWAIT) < 0)
		hc_debug("network: -p %u/udp: %s", f->guest_port[i], strerror(errno));
}

/* A datagram from the guest back to its flow's client. */
static void udp_out(struct fwd *f, struct flow *fl, char *buf)
{
	ssize_t n = recv(fl->fd, buf, RELAY_BUF, MSG_DONTWAIT);

	if (n < 0) {
		/* ECONNREFUSED: nothing listens in the guest (yet); the flow stays. */
		return;
	}
	fl->last = now_s();
	sendto(f->lfd[fl->port], buf, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&fl->client,
	       sizeof(fl->client));
}

static void *acceptor(void *arg)
{
	struct fwd *f = arg;
	struct pollfd p[HC_NET_MAX_PORTS + 1 + UDP_MAX_FLOWS];
	struct flow *polled[UDP_MAX_FLOWS];
	char *buf = NULL;

	for (size_t i = 0; i < f->n; i++) {
		p[i] = (struct pollfd){f->lfd[i], POLLIN, 0};
		if (f->udp[i] && !buf && !(buf = malloc(RELAY_BUF))) {
			hc_warn("network: -p/udp: out of memory");
			return NULL;
		}
	}
	p[f->n] = (struct pollfd){f->stop_fd, POLLIN, 0};
	for (;;) {
		size_t np = f->n + 1, nf = 0;
		time_t now = now_s();

		for (size_t k = 0; k < UDP_MAX_FLOWS; k++) {
			struct flow *fl = &f->flows[k];

			if (fl->fd >= 0 && now - fl->last >= UDP_IDLE_S)
				flow_close(fl);
			if (fl->fd >= 0) {
				polled[nf++] = fl;
				p[np++] = (struct pollfd){fl->fd, POLLIN, 0};
			}
		}
		if (poll(p, np, nf ? 1000 : -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[f->n].revents)
			break;
		for (size_t i = 0; i < f->n; i++) {
			if (!p[i].revents)
				continue;
			if (f->udp[i])
				udp_in(f, i, buf);
			else
				accept_tcp(f, i);
		}
		for (size_t k = 0; k < nf; k++)
			if (p[f->n + 1 + k].revents && polled[k]->fd == p[f->n + 1 + k].fd)
				udp_out(f, polled[k], buf);
	}
	free(buf);
	return NULL;
}

void hc_net_forward_stop(void *arg)
{
	struct fwd *f = arg;
	uint64_t one = 1;

	if (!f)
		return;
	if (f->stop_fd >= 0 && write(f->stop_fd, &one, sizeof(one)) < 0)
		hc_warn("network: cannot stop the port forwarder: %s", strerror(errno));
	if (f->acceptor_started)
		pthread_join(f->acceptor, NULL);
	pthread_mutex_lock(&f->lock);
	while (f->conns)
		pthread_cond_wait(&f->idle, &f->lock);
	pthread_mutex_unlock(&f->lock);
	for (size_t i = 0; i < f->n; i++)
		close(f->lfd[i]);
	for (size_t k = 0; k < UDP_MAX_FLOWS; k++)
		flow_close(&f->flows[k]);
	if (f->stop_fd >= 0)
		close(f->stop_fd);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->idle);
	free(f);
}

int hc_net_forward_start(const struct hc_net_port *ports, size_t n, struct in_addr guest,
			 void **ret, struct hc_error *err)
{
	struct fwd *f;
	int r;

	if (n > HC_NET_MAX_PORTS)
		return hc_error_setk(err, -E2BIG, HC_EK_USAGE, "more than %d -p", HC_NET_MAX_PORTS);
	f = calloc(1, sizeof(*f));
	if (!f)
		return hc_error_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->idle, NULL);
	f->guest = guest;
	for (size_t k = 0; k < UDP_MAX_FLOWS; k++)
		f->flows[k].fd = -1;
	f->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (f->stop_fd < 0) {
		r = hc_error_errno(err, -errno, "eventfd");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		const struct hc_net_port *p = &ports[i];
		struct sockaddr_in sa = {
			.sin_family = AF_INET, .sin_port = htons(p->host), .sin_addr = p->host_ip};
		int one = 1, fd;

		bool udp = p->proto == HC_NET_UDP;

		fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			r = hc_error_errno(err, -errno, "socket");
			goto fail;
		}
		f->lfd[f->n] = fd;
		f->udp[f->n] = udp;
		f->guest_port[f->n++] = p->guest;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    (!udp && listen(fd, 64) < 0)) {
			char ip[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &p->host_ip, ip, sizeof(ip));
			r = hc_error_setk(err, -errno, HC_EK_USAGE, "-p %s:%u:%u%s: %s", ip,
					  p->host, p->guest, udp ? "/udp" : "",
					  errno == EADDRINUSE ? "the host port is already in use"
							      : strerror(errno));
			goto fail;
		}
	}
	if (pthread_create(&f->acceptor, NULL, acceptor, f) != 0) {
		r = hc_error_set(err, -EAGAIN, "cannot start the port forwarder thread");
		goto fail;
	}
	f->acceptor_started = true;
	*ret = f;
	return 0;
fail:
	hc_net_forward_stop(f);
	return r;
}
