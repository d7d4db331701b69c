/* SPDX-License-Identifier: MIT */
/*
 * The -p forwarder (src/net/forward.c) on loopback, with 127.0.0.1 standing in for the guest:
 * a /udp port relays each client's datagrams to a UDP echo and the replies back to that
 * client (one flow per client address, at most 64), a /tcp port still relays a connection, and a
 * host port already taken is refused with a clear message.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#include "net/net.h"
#include "test.h"

static struct in_addr lo(void)
{
	struct in_addr a = {htonl(INADDR_LOOPBACK)};

	return a;
}

/* A socket bound to 127.0.0.1 on a free port; its port in *port. */
static int bound(int type, uint16_t *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = lo()};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	*port = ntohs(sa.sin_port);
	return fd;
}

/* A free port: bound, read, closed. */
static uint16_t free_port(int type)
{
	uint16_t port = 0;
	int fd = bound(type, &port);

	close(fd);
	return port;
}

/* The "guest": echoes "echo:" + each datagram until it gets "quit"; "port?" is answered with
 * the sender's port (the forwarder's flow). */
static void *udp_echo(void *arg)
{
	int fd = *(int *)arg;
	char buf[256];

	for (;;) {
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		ssize_t n =
			recvfrom(fd, buf + 5, sizeof(buf) - 5, 0, (struct sockaddr *)&from, &len);

		if (n < 0 || (n == 4 && !memcmp(buf + 5, "quit", 4)))
			break;
		if (n == 5 && !memcmp(buf + 5, "port?", 5)) {
			n = snprintf(buf, sizeof(buf), "%u", ntohs(from.sin_port));
			sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
			continue;
		}
		memcpy(buf, "echo:", 5);
		sendto(fd, buf, (size_t)n + 5, 0, (struct sockaddr *)&from, len);
	}
	return NULL;
}

/* Sends msg from fd to 127.0.0.1:port and returns the reply's length (into buf), -1 on none
 * within 5 s. */
static ssize_t ask(int fd, uint16_t port, const char *msg, char *buf, size_t size)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = lo()};
	struct pollfd p = {fd, POLLIN, 0};
	ssize_t n;

	if (sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    poll(&p, 1, 5000) != 1)
		return -1;
	n = recv(fd, buf, size - 1, 0);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

TEST(udp_per_client)
{
	struct hc_error e = {0};
	uint16_t gport = 0, c1port = 0, c2port = 0;
	int g = bound(SOCK_DGRAM, &gport), c1 = bound(SOCK_DGRAM, &c1port),
	    c2 = bound(SOCK_DGRAM, &c2port);
	struct hc_net_port port = {.proto = HC_NET_UDP, .host_ip = lo(), .guest = gport};
	pthread_t t;
	void *fwd = NULL;
	char buf[256];

	ASSERT_TRUE(g >= 0 && c1 >= 0 && c2 >= 0);
	port.host = free_port(SOCK_DGRAM);
	ASSERT_EQ_INT(pthread_create(&t, NULL, udp_echo, &g), 0);
	ASSERT_OK(hc_net_forward_start(&port, 1, lo(), &fwd, &e), &e);
	ASSERT_EQ_INT(ask(c1, port.host, "one", buf, sizeof(buf)), 8);
	ASSERT_EQ_STR(buf, "echo:one");
	ASSERT_EQ_INT(ask(c2, port.host, "two", buf, sizeof(buf)), 8);
	ASSERT_EQ_STR(buf, "echo:two");
	/* The first client's flow still answers it, not the second client. */
	ASSERT_EQ_INT(ask(c1, port.host, "three", buf, sizeof(buf)), 10);
	ASSERT_EQ_STR(buf, "echo:three");
	hc_net_forward_stop(fwd);
	/* Stopped: the host port is free again and nothing answers. */
	ASSERT_EQ_INT(ask(c1, port.host, "gone", buf, sizeof(buf)), -1);
	{
		struct sockaddr_in sa = {
			.sin_family = AF_INET, .sin_port = htons(gport), .sin_addr = lo()};

		sendto(c1, "quit", 4, 0, (struct sockaddr *)&sa, sizeof(sa));
	}
	pthread_join(t, NULL);
	close(g);
	close(c1);
	close(c2);
}

/* At most 64 flows: a 65th client takes the longest idle one's place, so that idle client
 * comes back on a new flow (a new source port at the guest), while a recent one keeps its own. */
TEST(udp_flows_bounded)
{
	struct hc_error e = {0};
	uint16_t gport = 0, cport = 0;
	int g = bound(SOCK_DGRAM, &gport), c[65];
	struct hc_net_port port = {.proto = HC_NET_UDP, .host_ip = lo(), .guest = gport};
	pthread_t t;
	void *fwd = NULL;
	char first[16], again[16], last[16], buf[256];

	ASSERT_TRUE(g >= 0);
	port.host = free_port(SOCK_DGRAM);
	ASSERT_EQ_INT(pthread_create(&t, NULL, udp_echo, &g), 0);
	ASSERT_OK(hc_net_forward_start(&port, 1, lo(), &fwd, &e), &e);
	for (int i = 0; i < 65; i++) {
		c[i] = bound(SOCK_DGRAM, &cport);
		ASSERT_TRUE(c[i] >= 0);
	}
	ASSERT_TRUE(ask(c[0], port.host, "port?", first, sizeof(first)) > 0);
	ASSERT_TRUE(ask(c[0], port.host, "port?", again, sizeof(again)) > 0);
	ASSERT_EQ_STR(first, again);
	/* c[64], then c[1..63]: the 65th flow (c[63]'s) evicts c[0]'s, the longest idle (kept
	 * apart by a second, the flows' clock). */
	sleep(1);
	ASSERT_TRUE(ask(c[64], port.host, "port?", last, sizeof(last)) > 0);
	for (int i = 1; i < 64; i++)
		ASSERT_EQ_INT(ask(c[i], port.host, "x", buf, sizeof(buf)), 6);
	ASSERT_TRUE(ask(c[64], port.host, "port?", again, sizeof(again)) > 0);
	ASSERT_EQ_STR(last, again);
	ASSERT_TRUE(ask(c[0], port.host, "port?", again, sizeof(again)) > 0);
	ASSERT_TRUE(strcmp(first, again) != 0);
	hc_net_forward_stop(fwd);
	{
		struct sockaddr_in sa = {
			.sin_family = AF_INET, .sin_port = htons(gport), .sin_addr = lo()};

		sendto(c[0], "quit", 4, 0, (struct sockaddr *)&sa, sizeof(sa));
	}
	pthread_join(t, NULL);
	for (int i = 0; i < 65; i++)
		close(c[i]);
	close(g);
}

TEST(udp_port_taken)
{
	struct hc_error e = {0};
	uint16_t taken = 0;
	int fd = bound(SOCK_DGRAM, &taken);
	struct hc_net_port port = {
		.proto = HC_NET_UDP, .host_ip = lo(), .host = taken, .guest = 53};
	void *fwd = NULL;

	ASSERT_TRUE(fd >= 0);
	ASSERT_ERR(hc_net_forward_start(&port, 1, lo(), &fwd, &e));
	ASSERT_TRUE(strstr(e.message, "/udp: the host port is already in use"));
	close(fd);
}

TEST(tcp_still_relays)
{
	struct hc_error e = {0};
	uint16_t gport = 0;
	int g = bound(SOCK_STREAM, &gport), c, s;
	struct hc_net_port port = {.proto = HC_NET_TCP, .host_ip = lo(), .guest = gport};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = lo()};
	void *fwd = NULL;
	char buf[16] = {0};

	ASSERT_TRUE(g >= 0 && listen(g, 4) == 0);
	port.host = free_port(SOCK_STREAM);
	ASSERT_OK(hc_net_forward_start(&port, 1, lo(), &fwd, &e), &e);
	sa.sin_port = htons(port.host);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ_INT(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	s = accept(g, NULL, NULL);
	ASSERT_TRUE(s >= 0);
	ASSERT_EQ_INT(write(c, "ping", 4), 4);
	ASSERT_EQ_INT(read(s, buf, sizeof(buf) - 1), 4);
	ASSERT_EQ_STR(buf, "ping");
	close(c);
	close(s);
	hc_net_forward_stop(fwd);
	close(g);
}

int main(void)
{
	RUN(udp_per_client);
	RUN(udp_flows_bounded);
	RUN(udp_port_taken);
	RUN(tcp_still_relays);
	return test_summary();
}
