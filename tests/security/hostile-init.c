/* SPDX-License-Identifier: MIT */
/*
 * A hostile hotcell-init for tests/security/hostile-agent.sh (group 3 of docs/security.md):
 * PID 1 of a test initramfs (build/tests/security/hostile-initramfs.cpio, HOTCELL_INITRAMFS)
 * that opens the agent channel as the boot contract says and then speaks the protocol
 * (src/proto/proto.h) wrongly on purpose. What it does at boot comes from the guest's
 * hostname (hotcell.hostname=, `--hostname`):
 *   nohello       never says anything
 *   badversion    HELLO with protocol version HC_PROTO_VERSION + 1
 *   garbage-boot  garbage bytes instead of a HELLO
 *   anything else a proper HELLO, then each EXEC is answered by its argv[0]:
 * honest (STARTED, "honest\n", EXIT 0), window (argv[1] MiB of STDOUT within the window, then
 * EXIT 0), flood (STDOUT without end, never reading a WINDOW), oversize (a STDOUT header past
 * the maximum), badtype (type 99), short (5 header bytes, then power off), badpayload (an EXIT
 * of 3 bytes), garbage (random bytes), exit-early (EXIT 42 before STARTED), out-early (STDOUT
 * before STARTED), started2 (a second STARTED), forged-exit (EXIT 42, then more output and a
 * second EXIT), bigresult (a RESULT one byte past the limit), silence (STARTED, then nothing),
 * hangup (STARTED, then the channel is closed), poweroff (STARTED, then power off), console
 * (STARTED, argv[1] seconds of writing the console as fast as it takes, then EXIT 0).
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/boot.h"
#include "proto/proto.h"

int main(void);

static int chan = -1;
static uint8_t chunk[HC_PROTO_MAX_DATA];

static void nap(void)
{
	struct timespec ts = {0, 20 * 1000 * 1000};

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
			if (n > 0 &&
			    strncmp(name, HC_BOOT_SERIAL_PORT, strlen(HC_BOOT_SERIAL_PORT)) == 0) {
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
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = 2, .svm_port = 1024};

	for (int tries = 0; tries < 500; tries++, nap()) {
		int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
	}
	return -1;
}

static void say(const char *m)
{
	if (write(2, m, strlen(m)) < 0)
		return;
}

static void off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

static void raw(const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = write(chan, b, n);

		if (w <= 0)
			off(); /* the host has gone: nothing more to attack */
		b += w;
		n -= (size_t)w;
	}
}

static void frame(uint8_t type, uint32_t stream, const void *p, size_t n)
{
	struct hc_buf b = HC_BUF_INIT(0);

	if (hc_proto_frame_append(&b, type, stream, p, n) < 0)
		off();
	raw(b.data, b.len);
	hc_buf_free(&b);
}

static void header(uint32_t len, uint8_t type, uint32_t stream)
{
	uint8_t h[HC_PROTO_HEADER_SIZE] = {
		len >> 24, len >> 16, len >> 8,	    len,	  type,	       0,
		0,	   0,	      stream >> 24, stream >> 16, stream >> 8, stream};

	raw(h, sizeof(h));
}

static void started(uint32_t s)
{
	uint8_t p[4] = {0, 0, 0, 42};

	frame(HC_FRAME_STARTED, s, p, sizeof(p));
}

static void exited(uint32_t s, int code)
{
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_proto_exit x = {.code = code};

	if (hc_proto_exit_encode(&b, s, &x) < 0)
		off();
	raw(b.data, b.len);
	hc_buf_free(&b);
}

static void out(uint32_t s, const char *m)
{
	frame(HC_FRAME_STDOUT, s, m, strlen(m));
}

/* Reads one frame (blocking); 0 at the channel's end. */
static struct hc_buf in = HC_BUF_INIT(HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD + 65536);
static size_t used;

static int next(struct hc_proto_frame *f)
{
	hc_buf_consume(&in, used);
	used = 0;
	return hc_proto_frame_read(chan, &in, f, &used) == 1;
}

static void forever(void)
{
	for (;;)
		pause();
}

/* Answers stream-0 requests a host sends after HELLO (RESEED, HOSTNAME, NETCONF). */
static void vm_request(const struct hc_proto_frame *f)
{
	if (f->type == HC_FRAME_SHUTDOWN)
		off();
	if (f->type == HC_FRAME_RESEED || f->type == HC_FRAME_HOSTNAME ||
	    f->type == HC_FRAME_NETCONF)
		frame(HC_FRAME_DONE, HC_PROTO_STREAM_VM, NULL, 0);
}

/* `window MiB`: as much output as asked, within the window the host grants. */
static void window(uint32_t s, long mib)
{
	uint64_t left = (uint64_t)mib << 20;
	uint32_t inflight = 0;

	started(s);
	memset(chunk, 'w', sizeof(chunk));
	while (left > 0) {
		struct hc_proto_frame f;
		uint32_t n;

		if (inflight + sizeof(chunk) <= HC_PROTO_WINDOW) {
			frame(HC_FRAME_STDOUT, s, chunk, sizeof(chunk));
			inflight += sizeof(chunk);
			left -= left < sizeof(chunk) ? left : sizeof(chunk);
			continue;
		}
		if (!next(&f))
			off();
		if (f.type == HC_FRAME_WINDOW && hc_proto_window_decode(&f, &n) == 0)
			inflight -= n < inflight ? n : inflight;
		else
			vm_request(&f);
	}
	exited(s, 0);
}

static void console(uint32_t s, long secs)
{
	time_t end = time(NULL) + secs;
	char line[4096];

	started(s);
	memset(line, 'c', sizeof(line));
	line[sizeof(line) - 1] = '\n';
	while (time(NULL) < end)
		if (write(1, line, sizeof(line)) < 0)
			break;
	exited(s, 0);
}

static void on_exec(const struct hc_proto_frame *f)
{
	struct hc_proto_exec e;
	uint32_t s = f->stream;
	const char *m;
	long arg;

	if (hc_proto_exec_decode(f, &e) < 0)
		return;
	m = e.argv[0];
	arg = e.argc > 1 ? strtol(e.argv[1], NULL, 10) : 0;
	if (strcmp(m, "honest") == 0) {
		started(s);
		out(s, "honest\n");
		exited(s, 0);
	} else if (strcmp(m, "window") == 0) {
		window(s, arg > 0 ? arg : 1);
	} else if (strcmp(m, "flood") == 0) {
		started(s);
		memset(chunk, 'f', sizeof(chunk));
		for (;;)
			frame(HC_FRAME_STDOUT, s, chunk, sizeof(chunk));
	} else if (strcmp(m, "oversize") == 0) {
		started(s);
		header(HC_PROTO_MAX_PAYLOAD + 1, HC_FRAME_STDOUT, s);
		for (;;)
			raw(chunk, sizeof(chunk));
	} else if (strcmp(m, "badtype") == 0) {
		started(s);
		header(4, 99, s);
		raw("abcd", 4);
	} else if (strcmp(m, "short") == 0) {
		started(s);
		raw("\0\0\0\4\5", 5);
		off();
	} else if (strcmp(m, "badpayload") == 0) {
		started(s);
		frame(HC_FRAME_EXIT, s, "\0\0\0", 3);
	} else if (strcmp(m, "garbage") == 0) {
		started(s);
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (uint8_t)(i * 2654435761u >> 13);
		raw(chunk, sizeof(chunk));
	} else if (strcmp(m, "exit-early") == 0) {
		exited(s, 42);
	} else if (strcmp(m, "out-early") == 0) {
		out(s, "early\n");
		started(s);
		exited(s, 0);
	} else if (strcmp(m, "started2") == 0) {
		started(s);
		started(s);
		exited(s, 0);
	} else if (strcmp(m, "forged-exit") == 0) {
		started(s);
		out(s, "before\n");
		exited(s, 42);
		out(s, "after\n");
		exited(s, 0);
	} else if (strcmp(m, "bigresult") == 0) {
		started(s);
		header(1 + HC_PROTO_MAX_RESULT + 1, HC_FRAME_RESULT, s);
		for (;;)
			raw(chunk, sizeof(chunk));
	} else if (strcmp(m, "silence") == 0) {
		started(s);
	} else if (strcmp(m, "hangup") == 0) {
		started(s);
		out(s, "bye\n");
		close(chan);
		chan = -1;
		forever();
	} else if (strcmp(m, "poweroff") == 0) {
		started(s);
		out(s, "bye\n");
		off();
	} else if (strcmp(m, "console") == 0) {
		console(s, arg > 0 ? arg : 3);
	} else {
		started(s);
		exited(s, 127);
	}
	hc_proto_exec_free(&e);
}

int main(void)
{
	char cmdline[4096] = "", mode[80] = "";
	struct hc_proto_hello h = {.version = HC_PROTO_VERSION};
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_proto_frame f;
	const char *k;
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
	k = strstr(cmdline, HC_BOOT_KEY_HOSTNAME "=");
	if (k)
		sscanf(k + strlen(HC_BOOT_KEY_HOSTNAME "="), "%79s", mode);
	chan = strstr(cmdline, HC_BOOT_KEY_CHANNEL "=vsock") ? open_vsock() : open_serial();
	if (chan < 0) {
		say("hostile-init: no agent channel\n");
		off();
	}
	say("hostile-init: mode ");
	say(mode[0] ? mode : "(exec)");
	say("\n");
	if (strcmp(mode, "nohello") == 0)
		forever();
	if (strcmp(mode, "garbage-boot") == 0) {
		raw("\xff\xfe garbage, not a frame \x01\x02\x03\x04", 28);
		forever();
	}
	if (strcmp(mode, "badversion") == 0)
		h.version = HC_PROTO_VERSION + 1;
	snprintf(h.agent, sizeof(h.agent), "hostile-init");
	if (hc_proto_hello_encode(&b, &h) < 0)
		off();
	raw(b.data, b.len);
	hc_buf_free(&b);
	while (next(&f)) {
		if (f.type == HC_FRAME_EXEC)
			on_exec(&f);
		else if (f.stream == HC_PROTO_STREAM_VM)
			vm_request(&f);
	}
	forever();
}
