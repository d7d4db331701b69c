/* SPDX-License-Identifier: MIT */
/*
 * A guest UDP echo for tests/e2e/net-inet.sh (Debian's busybox nc has no UDP): udp-echo PORT
 * answers each datagram with "guest:" and the datagram, until one says "quit" (answered
 * "bye"). Built static by the test and put into its image.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char buf[512];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (argc != 2)
		return 2;
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("udp-echo");
		return 1;
	}
	for (;;) {
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		ssize_t n =
			recvfrom(fd, buf + 6, sizeof(buf) - 6, 0, (struct sockaddr *)&from, &len);

		if (n < 0)
			return 1;
		if (n == 4 && !memcmp(buf + 6, "quit", 4)) {
			sendto(fd, "bye", 3, 0, (struct sockaddr *)&from, len);
			return 0;
		}
		memcpy(buf, "guest:", 6);
		sendto(fd, buf, (size_t)n + 6, 0, (struct sockaddr *)&from, len);
	}
}
