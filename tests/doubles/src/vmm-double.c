/* SPDX-License-Identifier: MIT */
/* Shared code of the VMM doubles (see vmm-double.h). */
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <signal.h>
#include <sys/prctl.h>

#include "core/buf.h"
#include "core/clock.h"
#include "proto/proto.h"
#include "vmm-double.h"

void dbl_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

const char *dbl_http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Payload Too Large";
	case 500:
		return "Internal Server Error";
	default:
		return "";
	}
}

void dbl_http_reply(int fd, const char *server, int status, const char *body)
{
	char head[512];
	size_t blen = body ? strlen(body) : 0;
	int n;

	if (!blen)
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 %d %s\r\nServer: %s\r\nConnection: keep-alive\r\n\r\n",
			     status, dbl_http_reason(status), server);
	else
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 %d %s\r\nServer: %s\r\nConnection: keep-alive\r\n"
			     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
			     status, dbl_http_reason(status), server, blen);
	if (write(fd, head, (size_t)n) < 0 || (blen && write(fd, body, blen) < 0))
		return;
}

int dbl_http_serve(struct dbl_client *c, size_t max_headers, size_t max_body, dbl_handler h,
		   dbl_bad_request bad)
{
	for (;;) {
		char *end = c->in.data ? memmem(c->in.data, c->in.len, "\r\n\r\n", 4) : NULL;
		char method[16], path[256], *cl;
		size_t hlen, blen = 0;

		if (!end)
			return c->in.len > max_headers ? -1 : 0;
		*end = '\0'; /* the header block as a string, for sscanf and strcasestr */
		hlen = (size_t)(end - c->in.data) + 4;
		if (sscanf(c->in.data, "%15s %255s HTTP/1.1", method, path) != 2) {
			bad(c, 400, 0);
			return -1;
		}
		cl = strcasestr(c->in.data, "\r\nContent-Length:");
		if (cl)
			blen = strtoul(cl + 17, NULL, 10);
		*end = '\r';
		if (blen > max_body) {
			bad(c, 413, blen);
			return -1;
		}
		if (c->in.len < hlen + blen)
			return 0;
		char *body = strndup(c->in.data + hlen, blen);
		if (!body)
			return -1;
		h(c, method, path, body);
		free(body);
		dbl_client_close_fds(c);
		hc_buf_consume(&c->in, hlen + blen);
	}
}

void dbl_client_close_fds(struct dbl_client *c)
{
	for (size_t i = 0; i < c->n_fds; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	c->n_fds = 0;
}

void dbl_http_read(struct dbl_client *c, size_t max_headers, size_t max_body, dbl_handler h,
		   dbl_bad_request bad)
{
	char buf[8192];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * DBL_MAX_FDS)];
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = ctl.buf,
			   .msg_controllen = sizeof(ctl)};
	ssize_t k = recvmsg(c->fd, &m, MSG_CMSG_CLOEXEC);

	for (struct cmsghdr *cm = k > 0 ? CMSG_FIRSTHDR(&m) : NULL; cm; cm = CMSG_NXTHDR(&m, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (c->n_fds < DBL_MAX_FDS)
				c->fds[c->n_fds++] = fd;
			else
				close(fd);
		}
	}
	if (k <= 0 || hc_buf_append(&c->in, buf, (size_t)k) < 0 ||
	    dbl_http_serve(c, max_headers, max_body, h, bad) < 0) {
		dbl_client_close_fds(c);
		close(c->fd);
		c->fd = -1;
		hc_buf_reset(&c->in);
	}
}

void dbl_http_accept(int lfd, struct dbl_client *clients, size_t n)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	size_t i;

	if (fd < 0)
		return;
	for (i = 0; i < n; i++)
		if (clients[i].fd < 0) {
			clients[i].fd = fd;
			return;
		}
	close(fd);
}

bool dbl_canned_fault(const char *env, const char *req, int *ret_status, char *msg, size_t n)
{
	const char *spec = getenv(env);
	size_t rl = strlen(req);

	while (spec && *spec) {
		size_t len = strcspn(spec, ";");

		if (len > rl && !strncmp(spec, req, rl) && spec[rl] == '=') {
			const char *colon = memchr(spec + rl, ':', len - rl);

			*ret_status = atoi(spec + rl + 1);
			snprintf(msg, n, "%.*s", colon ? (int)(spec + len - colon - 1) : 0,
				 colon ? colon + 1 : "");
			return true;
		}
		spec += len;
		if (*spec == ';')
			spec++;
	}
	return false;
}

void dbl_loop_init(struct dbl_loop *l, int lfd, size_t max_headers, size_t max_body)
{
	l->lfd = lfd;
	l->max_headers = max_headers;
	l->max_body = max_body;
	for (size_t i = 0; i < DBL_MAX_CLIENTS; i++)
		l->clients[i] =
			(struct dbl_client){.fd = -1, .in = HC_BUF_INIT(max_headers + max_body)};
}

unsigned dbl_loop_wait(struct dbl_loop *l, struct hc_child *qemu, struct hc_child *vsockd,
		       int fake_vsock_fd)
{
	unsigned ev = 0;
	int n = 0, qi = -1, vi = -1, fi = -1;

	l->p[n++] = (struct pollfd){.fd = l->lfd, .events = POLLIN};
	for (size_t i = 0; i < DBL_MAX_CLIENTS; i++)
		l->p[n++] = (struct pollfd){.fd = l->clients[i].fd, .events = POLLIN};
	if (qemu->pid && !qemu->reaped) {
		qi = n;
		l->p[n++] = (struct pollfd){.fd = qemu->pidfd, .events = POLLIN};
	}
	if (vsockd->pid && !vsockd->reaped) {
		vi = n;
		l->p[n++] = (struct pollfd){.fd = vsockd->pidfd, .events = POLLIN};
	}
	if (fake_vsock_fd >= 0) {
		fi = n;
		l->p[n++] = (struct pollfd){.fd = fake_vsock_fd, .events = POLLIN};
	}
	while (poll(l->p, (nfds_t)n, -1) < 0) {
		if (errno != EINTR)
			dbl_die("poll: %s", strerror(errno));
	}
	if (qi >= 0 && l->p[qi].revents && hc_child_poll(qemu))
		ev |= DBL_QEMU_EXITED;
	if (vi >= 0 && l->p[vi].revents && hc_child_poll(vsockd))
		ev |= DBL_VSOCKD_EXITED;
	if (fi >= 0 && l->p[fi].revents)
		ev |= DBL_FAKE_VSOCK;
	return ev;
}

void dbl_loop_serve(struct dbl_loop *l, dbl_handler h, dbl_bad_request bad)
{
	if (l->p[0].revents & POLLIN)
		dbl_http_accept(l->lfd, l->clients, DBL_MAX_CLIENTS);
	for (size_t i = 0; i < DBL_MAX_CLIENTS; i++)
		if (l->clients[i].fd >= 0 && l->p[1 + i].revents)
			dbl_http_read(&l->clients[i], l->max_headers, l->max_body, h, bad);
}

size_t dbl_qemu_microvm_argv(const char **argv, size_t n, const char *qemu, long long cpus,
			     long long mib, struct dbl_qemu_args *b)
{
	snprintf(b->smp, sizeof(b->smp), "%lld", cpus);
	snprintf(b->mem, sizeof(b->mem), "%lldM", mib);
	snprintf(b->memobj, sizeof(b->memobj), "memory-backend-memfd,id=mem,size=%lldM,share=on",
		 mib);
	argv[n++] = qemu;
	argv[n++] = "-M";
	argv[n++] = "microvm,acpi=off,memory-backend=mem";
	argv[n++] = "-accel";
	argv[n++] = "tcg";
	argv[n++] = "-smp";
	argv[n++] = b->smp;
	argv[n++] = "-m";
	argv[n++] = b->mem;
	argv[n++] = "-object";
	argv[n++] = b->memobj;
	argv[n++] = "-global";
	argv[n++] = "virtio-mmio.force-legacy=false";
	argv[n++] = "-nodefaults";
	argv[n++] = "-no-user-config";
	argv[n++] = "-display";
	argv[n++] = "none";
	return n;
}

void dbl_log_jail(FILE *log)
{
	char line[256], uid[32] = "?", eff[32] = "?", bnd[32] = "?", nnp[8] = "?", sec[8] = "?";
	char mnt[64] = "?", pid[64] = "?";
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f)) {
		sscanf(line, "Uid: %31s", uid);
		sscanf(line, "CapEff: %31s", eff);
		sscanf(line, "CapBnd: %31s", bnd);
		sscanf(line, "NoNewPrivs: %7s", nnp);
		sscanf(line, "Seccomp: %7s", sec);
	}
	if (f)
		fclose(f);
	ssize_t n = readlink("/proc/self/ns/mnt", mnt, sizeof(mnt) - 1);
	mnt[n > 0 ? n : 1] = '\0';
	n = readlink("/proc/self/ns/pid", pid, sizeof(pid) - 1);
	pid[n > 0 ? n : 1] = '\0';
	/* shadow: whether the host's /etc/shadow is in sight (a jail's root has none). */
	fprintf(log,
		"JAIL uid=%s capeff=%s capbnd=%s nnp=%s seccomp=%s mntns=%s pidns=%s pid=%d "
		"shadow=%s\n",
		uid, eff, bnd, nnp, sec, mnt, pid, (int)getpid(),
		access("/etc/shadow", F_OK) == 0 ? "yes" : "no");
	fflush(log);
}

const char *dbl_envor(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

int dbl_wait_sock(const char *path, struct hc_child *c, int timeout_ms)
{
	double deadline = hc_clock_ms() + timeout_ms;
	char dir[256];
	struct stat st;
	int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), r = -ETIMEDOUT;

	snprintf(dir, sizeof(dir), "%s", path);
	inotify_add_watch(ino, dirname(dir), IN_CREATE);
	for (;;) {
		struct pollfd p[2] = {{.fd = ino, .events = POLLIN},
				      {.fd = c->pidfd, .events = POLLIN}};
		char ev[4096];

		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
			r = 0;
			break;
		}
		if (hc_child_poll(c)) {
			r = -ECHILD;
			break;
		}
		if (poll(p, 2, hc_clock_left_ms(deadline)) == 0)
			break;
		while (read(ino, ev, sizeof(ev)) > 0)
			;
	}
	close(ino);
	return r;
}

int dbl_vsockd_start(struct hc_child *c, long long cid, const char *vhu, const char *uds,
		     struct hc_error *err)
{
	char cids[32];
	const char *argv[] = {dbl_envor("HOTCELL_VHOST_DEVICE_VSOCK",
					"/var/cache/hotcell-tools/usr/bin/vhost-device-vsock"),
			      "--guest-cid",
			      cids,
			      "--socket",
			      vhu,
			      "--uds-path",
			      uds,
			      NULL};
	/* Its stdin is ours (hotcell's /dev/null): inside the Firecracker jailer's chroot there is
	 * no /dev/null to open, as the real jailer makes only kvm, net/tun and urandom. */
	struct hc_child_opts o = {.argv = argv,
				  .stdin_fd = fcntl(0, F_GETFD) >= 0 ? 0 : -1,
				  .stdout_fd = 2,
				  .stderr_fd = 2};
	int r;

	snprintf(cids, sizeof(cids), "%lld", cid);
	unlink(vhu);
	r = hc_child_spawn(c, &o, err);
	if (r < 0)
		return r;
	r = dbl_wait_sock(vhu, c, 10000);
	if (r < 0)
		return hc_error_set(err, r, "double: vhost-device-vsock did not start");
	return 0;
}

int dbl_qmp_command(const char *sock, const char *cmd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *caps = "{\"execute\":\"qmp_capabilities\"}\n";
	char buf[4096], line[128];
	size_t len = 0;
	int fd, got = 0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	snprintf(line, sizeof(line), "{\"execute\":\"%s\"}\n", cmd);
	if (write(fd, caps, strlen(caps)) < 0 || write(fd, line, strlen(line)) < 0) {
		close(fd);
		return -EIO;
	}
	/* Read until the second "return" (capabilities, then the command). */
	while (got < 2 && len + 1 < sizeof(buf)) {
		ssize_t k = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (k <= 0)
			break;
		len += (size_t)k;
		buf[len] = '\0';
		got = 0;
		for (char *p = buf; (p = strstr(p, "\"return\"")); p++)
			got++;
	}
	close(fd);
	return got >= 2 ? 0 : -EIO;
}

int dbl_fake_vsock_bind(const char *uds)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

void dbl_fake_guest_connect(const char *uds, const char *line)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_1024", uds);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		dprintf(fd, "%s\n", line);
		return; /* left open: the host side reads it; closed when the double exits */
	}
	fprintf(stderr, "double: guest connect to %s: %s\n", sa.sun_path, strerror(errno));
	close(fd);
}

/* The restored guest's agent (vmm-double.h), in a child of the double. */
static void fake_agent(int fd)
{
	struct hc_buf in = HC_BUF_INIT(HC_PROTO_HEADER_SIZE + HC_PROTO_MAX_PAYLOAD);
	char host[HC_PROTO_HOSTNAME_MAX + 1] = "hotcell";

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		struct hc_buf out = HC_BUF_INIT(0);
		struct hc_proto_frame f;
		struct hc_proto_reseed rs;
		struct hc_proto_exec x;
		size_t used;
		int r = hc_proto_frame_read(fd, &in, &f, &used);

		if (r <= 0)
			_exit(0);
		if (f.type == HC_FRAME_SHUTDOWN)
			_exit(0);
		if (f.type == HC_FRAME_HOSTNAME && hc_proto_hostname_decode(&f, host) == 0) {
			r = hc_proto_frame_append(&out, HC_FRAME_DONE, HC_PROTO_STREAM_VM, NULL, 0);
		} else if (f.type == HC_FRAME_RESEED && hc_proto_reseed_decode(&f, &rs) == 0) {
			r = hc_proto_frame_append(&out, HC_FRAME_DONE, HC_PROTO_STREAM_VM, NULL, 0);
		} else if (f.type == HC_FRAME_EXEC && hc_proto_exec_decode(&f, &x) == 0) {
			struct hc_proto_exit e = {0};
			char line[128];
			int n = snprintf(line, sizeof(line), "HOTCELL-DOUBLE-GUEST restored %s\n",
					 host);

			hc_proto_exec_free(&x);
			r = hc_proto_started_encode(&out, f.stream, 1);
			if (r >= 0)
				r = hc_proto_frame_append(&out, HC_FRAME_STDOUT, f.stream, line,
							  (size_t)n);
			if (r >= 0)
				r = hc_proto_exit_encode(&out, f.stream, &e);
		} else if (f.type == HC_FRAME_WINDOW || f.type == HC_FRAME_STDIN_CLOSE) {
			r = 0;
		} else {
			struct hc_proto_error pe = {.reason = HC_EXEC_ERR_INVALID};

			snprintf(pe.message, sizeof(pe.message), "the double's agent takes no %s",
				 hc_proto_type_name(f.type));
			r = hc_proto_error_encode(&out, f.stream, &pe);
		}
		hc_buf_consume(&in, used);
		if (r < 0 || (out.len && write(fd, out.data, out.len) != (ssize_t)out.len))
			_exit(1);
		hc_buf_free(&out);
	}
}

void dbl_fake_vsock_serve(int lfd, const char *state)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	char line[64];
	size_t n = 0;

	if (fd < 0)
		return;
	while (n + 1 < sizeof(line) && read(fd, line + n, 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	if (!strcmp(line, "CONNECT 1025")) {
		const char *agent = getenv("HOTCELL_DOUBLE_AGENT");

		if (agent && !strcmp(agent, "1") && !strcmp(state, "restored")) {
			dprintf(fd, "OK 1073741824\n");
			if (fork() == 0)
				fake_agent(fd);
			close(fd);
			return;
		}
		dprintf(fd, "OK 1073741824\nHOTCELL-DOUBLE-GUEST %s\n", state);
		return; /* kept open: closed at exit */
	}
	close(fd);
}

/* The doubles are test tools that exit with their state still allocated: under ASan
 * (make check-asan) a leak report would change their exit status, which the drivers read. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}
