/* SPDX-License-Identifier: MIT */
/*
 * A tiny PID 1 for testing the VMM backends without hotcell-init (built static by
 * tests/unit/test-vmm-qemu-boot.c). It opens the agent channel the way the boot contract says
 * (docs/protocol.md: virtio-serial port org.hotcell.agent, or vsock CID 2 port 1024), writes
 * "hello", then answers one-line commands:
 *   mount TAG DIR [ro] | mountblk DIR | remount-rw DIR | write PATH | read PATH |
 *   reboot | die (PID 1 exits: a kernel panic)
 * with "ok", "data ..." or "err ERRNO".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <linux/vm_sockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void nap(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static int open_serial(void)
{
	for (int tries = 0; tries < 500; tries++, nap()) {
		DIR *d = opendir("/sys/class/virtio-ports");
		struct dirent *de;

		while (d && (de = readdir(d))) {
			char p[300], name[64] = "";
			int fd;

			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "/sys/class/virtio-ports/%s/name", de->d_name);
			fd = open(p, O_RDONLY);
			if (fd < 0)
				continue;
			ssize_t n = read(fd, name, sizeof(name) - 1);
			close(fd);
			if (n > 0 && strncmp(name, "org.hotcell.agent", 17) == 0) {
				snprintf(p, sizeof(p), "/dev/%s", de->d_name);
				fd = open(p, O_RDWR);
				if (fd >= 0) {
					closedir(d);
					return fd;
				}
			}
		}
		if (d)
			closedir(d);
	}
	return -1;
}

static int open_vsock(void)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = 2, .svm_port = 1024 };

	for (int tries = 0; tries < 500; tries++, nap()) {
		int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
	}
	return -1;
}

static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(fd, buf, (size_t)n) < 0)
		return;
}

static int readline(int fd, char *buf, size_t n)
{
	size_t i = 0;

	while (i + 1 < n) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r <= 0)
			return -1;
		if (c == '\n')
			break;
		buf[i++] = c;
	}
	buf[i] = '\0';
	return 0;
}

int main(void)
{
	char cmdline[4096] = "", line[1024];
	int fd;

	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	fd = open("/proc/cmdline", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
		cmdline[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	fd = strstr(cmdline, "hotcell.channel=vsock") ? open_vsock() : open_serial();
	if (fd < 0) {
		fprintf(stderr, "testinit: no agent channel\n");
		reboot(RB_AUTOBOOT);
	}
	say(fd, "hello");
	while (readline(fd, line, sizeof(line)) == 0) {
		char a[512] = "", b[512] = "", c[16] = "";
		int r = 0;

		sscanf(line, "%*s %511s %511s %15s", a, b, c);
		if (strncmp(line, "mount ", 6) == 0) {
			mkdir(b, 0755);
			r = mount(a, b, "virtiofs", strcmp(c, "ro") == 0 ? MS_RDONLY : 0, NULL);
		} else if (strncmp(line, "mountblk ", 9) == 0) {
			mkdir(a, 0755);
			r = mount("/dev/vda", a, "ext4", 0, NULL);
			if (r < 0 && errno == EACCES)
				r = mount("/dev/vda", a, "ext4", MS_RDONLY, NULL);
		} else if (strncmp(line, "remount-rw ", 11) == 0) {
			r = mount(NULL, a, NULL, MS_REMOUNT, NULL);
		} else if (strncmp(line, "write ", 6) == 0) {
			int f = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			r = f < 0 ? -1 : (write(f, "written\n", 8) == 8 ? 0 : -1);
			if (f >= 0 && close(f) < 0)
				r = -1;
		} else if (strncmp(line, "read ", 5) == 0) {
			char data[256] = "";
			int f = open(a, O_RDONLY);
			ssize_t n = f < 0 ? -1 : read(f, data, sizeof(data) - 1);
			if (f >= 0)
				close(f);
			if (n >= 0) {
				data[n] = '\0';
				data[strcspn(data, "\n")] = '\0';
				say(fd, "data %s", data);
				continue;
			}
			r = -1;
		} else if (strcmp(line, "reboot") == 0) {
			sync();
			reboot(RB_AUTOBOOT);
		} else if (strcmp(line, "die") == 0) {
			return 3; /* PID 1 exits: "Attempted to kill init!" */
		} else {
			errno = EINVAL;
			r = -1;
		}
		if (r < 0)
			say(fd, "err %d", errno);
		else
			say(fd, "ok");
	}
	/* The host closed the channel: wait to be ended from the host. */
	for (;;)
		pause();
}
