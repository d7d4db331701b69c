/* SPDX-License-Identifier: MIT */
/*
 * The network half of tests/security/guest-isolation.sh, built static by the test and put into
 * its image (Debian's busybox has no UDP client and no vsock):
 *   net-probe udp IP PORT MSG    sends MSG, prints the first answer within 2 s, else "none"
 *   net-probe vsock CID PORT     connects (2 s at most): prints "connected" or the error
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int udp(const char *ip, const char *port, const char *msg)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((unsigned short)atoi(port))};
	struct timeval tv = {.tv_sec = 2};
	char buf[512];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	ssize_t n;

	if (fd < 0 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		printf("error\n");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < 2; i++) {
		if (sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			break;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n >= 0) {
			buf[n] = 0;
			printf("%s\n", buf);
			return 0;
		}
	}
	printf("none\n");
	return 1;
}

static int vsock(const char *cid, const char *port)
{
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
				 .svm_cid = (unsigned)strtoul(cid, NULL, 0),
				 .svm_port = (unsigned)strtoul(port, NULL, 0)};
	struct pollfd p;
	int err = 0, fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK, 0);
	socklen_t len = sizeof(err);

	if (fd < 0) {
		printf("socket: %s\n", strerror(errno));
		return 1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINPROGRESS) {
			printf("%s\n", strerror(errno));
			return 1;
		}
		p = (struct pollfd){.fd = fd, .events = POLLOUT};
		if (poll(&p, 1, 2000) != 1) {
			printf("timeout\n");
			return 1;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			printf("%s\n", strerror(err));
			return 1;
		}
	}
	printf("connected\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "udp"))
		return udp(argv[2], argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "vsock"))
		return vsock(argv[2], argv[3]);
	fprintf(stderr, "usage: net-probe udp IP PORT MSG | vsock CID PORT\n");
	return 2;
}
