/* SPDX-License-Identifier: MIT */
/* The per-VM supervisor's life and its request loop (vmd/vmd.h). */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "vmd/vmd.h"
#include "vmm/accel.h"
#include "vmm/unixsock.h"
#include "core/owner.h"

/* How long `vm stop` waits, by default, for the guest to end after SHUTDOWN. */
#define STOP_GRACE_S 10.0
#define MAX_CLIENTS 256
/* The console's last bytes kept in vm.json of a dead VM, and the copy kept in the state dir. */
#define CONSOLE_TAIL 2048
#define CONSOLE_KEEP (1u << 20)

struct vmd_client {
	struct vmd *v;
	int fd; /* -1 once the client has gone (a stream may still be ending) */
	struct hc_buf in, out;
	json_t *req; /* the request, once read */
	const char *op;
	bool replied; /* close once out is flushed */
	bool waiting; /* the reply comes later (stop: once the VM has ended; a stream: at its end)
		       */
	/* A stream (exec, put, get) of the agent for this client. */
	bool streaming;
	uint32_t stream;
	uint32_t pid;
	bool detach;
	struct hc_buf
		stdin_q;  /* stdin the window did not take yet; the client is not read meanwhile */
	bool stdin_close; /* close stdin once stdin_q is empty */
	size_t unacked;	  /* output queued to the client, not yet acknowledged to the guest */
	char argv0[128];
};

/* Output is acknowledged to the guest once the client's queue is below this. */
#define ACK_LOW (64u * 1024)

/* ---- vm.json ---- */

void vmd_record_save(struct vmd *v)
{
	struct hc_error err = {0};

	json_object_set_new(v->rec, "status", json_string(hc_pvm_status_name(v->status)));
	if (hc_pvm_record_write(v->id, v->rec, &err) < 0)
		hc_warn("write vm.json: %s", err.message);
}

static void rfc3339_now(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *spec_json(const struct vmd *v)
{
	const struct hc_vm_spec *s = &v->boot.spec;
	json_t *vols = json_array(), *spec;

	for (size_t i = 0; i < s->n_volumes; i++)
		json_array_append_new(vols, json_pack("{s:s,s:s,s:b}", "host", s->volumes[i].host,
						      "guest", s->volumes[i].guest, "readonly",
						      s->volumes[i].readonly));
	spec = json_pack("{s:i,s:i,s:s,s:s,s:s,s:s?,s:o,s:i}", "cpus", (int)s->cpus, "memory_mib",
			 (int)s->memory_mib, "accel", hc_accel_name(s->accel), "rootfs_mode",
			 s->rootfs_mode == HC_ROOTFS_BLOCK ? "block" : "dir", "channel",
			 s->channel == HC_CHANNEL_VSOCK ? "vsock" : "serial", "kernel", s->kernel,
			 "volumes", vols, "boot_timeout_ms", s->boot_timeout_ms);
	/* What the VM was created with: the run options as given (restore/fork reuse them). */
	if (spec)
		json_object_set(spec, "options", json_object_get(v->create, "options"));
	return spec;
}

/* ---- bringing the VM up ---- */

static int vmd_boot_image(struct vmd *v, struct hc_error *err)
{
	int r;

	if (v->ro.o.image) {
		r = hc_store_open(NULL, &v->store, err);
		if (r < 0)
			return r;
	}
	r = hc_lib_boot_prepare(v->store, &v->ro.o, &v->boot, err);
	if (r < 0)
		return r;
	v->t_boot0 = hc_clock_ms();
	r = hc_lib_boot_start(&v->boot, err);
	if (r < 0)
		return r;
	return hc_lib_boot_accept(&v->boot, v->t_boot0 + v->boot.spec.boot_timeout_ms, v->sig_fd,
				  &v->agent, err);
}

/* The snapshotted VM's image, under its shared lock (so rmi does not remove the disk the
 * restored guest reads) and with its config (exec defaults), when it is still in the store as
 * the same digest; otherwise the VM runs on without (the disk was checked on open). */
static void restore_image(struct vmd *v)
{
	struct hc_run_opts o = v->ro.o;
	struct hc_error e = {0};
	/* A migrated VM brought its own disk (docs/migration.md): the image gives its config
	 * only, and no ext4 is built for it here. */
	bool own_disk = json_is_string(json_object_get(v->create, "owned_dir"));

	if (!v->ro.o.image || !v->snap->digest[0])
		return;
	o.pull = HC_PULL_NEVER;
	if (hc_store_open(NULL, &v->store, &e) < 0 ||
	    hc_lib_image_resolve(v->store, &o, &v->boot.image, &e) < 0 ||
	    !hc_streq(v->boot.image.digest, v->snap->digest) ||
	    hc_lib_image_prepare(v->store, &o,
				 !own_disk && v->snap->spec.rootfs_mode == HC_ROOTFS_BLOCK,
				 &v->boot.image, &e) < 0 ||
	    (!own_disk && v->snap->spec.rootfs_disk &&
	     !hc_streq(v->boot.image.disk, v->snap->spec.rootfs_disk))) {
		hc_info("restore: image %s not held (%s)", v->snap->image,
			e.message[0] ? e.message : "it now names another digest");
		hc_lib_image_release(&v->boot.image);
		v->boot.image = (struct hc_lib_image)HC_LIB_IMAGE_INIT;
	}
}

int vmd_boot_restore(struct vmd *v, const char *dir, struct hc_error *err)
{
	double ms = 0;
	int r;

	r = hc_lib_snapshot_open(dir, &v->snap, err);
	if (r < 0)
		return r;
	/* The created VM's options (exec defaults), unless create.json brought its own. */
	if (!json_object_get(v->create, "options") && v->snap->options) {
		r = hc_runopts_from_json(&v->ro, HC_RUNOPT_VM, v->snap->options, NULL, err);
		if (r < 0)
			return hc_error_prefix(err, "snapshot '%s': options", dir);
		json_object_set(v->create, "options", v->snap->options);
	}
	restore_image(v);
	v->boot.spec = v->snap->spec;
	v->boot.ops = v->snap->ops;
	v->incoming = json_is_true(json_object_get(v->create, "restore_paused"));
	if (v->incoming) {
		double t0 = hc_clock_ms();
		double secs = json_number_value(json_object_get(v->create, "commit_timeout"));

		r = hc_lib_snapshot_restore_paused(v->snap, &v->boot.vm, &v->agent, err);
		ms = hc_clock_ms() - t0;
		v->incoming_until = hc_clock_ms() + (secs > 0 ? secs : 300) * 1000.0;
	} else {
		/* A networked snapshot: a network of this VM's own, from its options
		 * (--allow-host, -p), torn down with the VM (hc_lib_boot_teardown). */
		struct hc_lib_restore_as as = {
			.cancel_fd = -1, .run_opts = &v->ro.o, .net = &v->boot.net};

		r = hc_lib_snapshot_restore_as(v->snap, &as, &v->boot.vm, &v->agent, &ms, err);
		if (r >= 0)
			v->boot.spec = v->boot.vm->spec; /* with the new TAP and MAC */
	}
	if (r < 0)
		return r;
	if (v->agent >= 0)
		fcntl(v->agent, F_SETFL, fcntl(v->agent, F_GETFL) | O_NONBLOCK);
	/* What vm.json says of an image: the snapshot's, held or not. */
	snprintf(v->boot.image.name, sizeof(v->boot.image.name), "%s", v->snap->image);
	snprintf(v->boot.image.digest, sizeof(v->boot.image.digest), "%s", v->snap->digest);
	json_object_set_new(v->rec, "restored_from", json_string(v->snap->dir));
	json_object_set_new(v->rec, "restore_ms", json_real(ms));
	hc_info("VM %.12s restored from %s in %.1f ms", v->id, v->snap->dir, ms);
	return 0;
}

/* ---- ending it ---- */

static void console_save(struct vmd *v)
{
	char dst[HC_PATH_MAX + 16], tail[CONSOLE_TAIL + 1];
	_cleanup_close_ int in = -1, out = -1;
	struct hc_vm *vm = v->boot.vm;
	off_t size, off;
	ssize_t n;

	if (!vm || !vm->console_log[0])
		return;
	in = open(vm->console_log, O_RDONLY | O_CLOEXEC);
	if (in < 0 || (size = lseek(in, 0, SEEK_END)) < 0)
		return;
	snprintf(dst, sizeof(dst), "%s/console.log", v->state_dir);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return;
	off = size > (off_t)CONSOLE_KEEP ? size - (off_t)CONSOLE_KEEP : 0;
	for (;;) {
		char buf[65536];

		n = pread(in, buf, sizeof(buf), off);
		if (n <= 0 || write(out, buf, (size_t)n) != n)
			break;
		off += n;
	}
	off = size > CONSOLE_TAIL ? size - CONSOLE_TAIL : 0;
	n = pread(in, tail, CONSOLE_TAIL, off);
	if (n > 0) {
		char *p = tail;

		tail[n] = 0;
		for (ssize_t i = 0; i < n; i++)
			if (!tail[i] || ((unsigned char)tail[i] < 0x20 && tail[i] != '\n'))
				tail[i] = ' ';
		/* From a line start on. */
		if (off > 0 && (p = strchr(tail, '\n')))
			p++;
		else
			p = tail;
		json_object_set_new(v->rec, "console_tail", json_string(p));
	}
}

/* Ends the VM: SHUTDOWN and up to grace_s for it to end by itself, then from the host. */
static void vmd_end_vm(struct vmd *v, double grace_s)
{
	struct hc_vm *vm = v->boot.vm;
	double deadline = hc_clock_ms() + grace_s * 1000.0;

	if (vm && v->agent_h && grace_s > 0 && !v->dead) {
		struct hc_error e = {0};

		if (hc_agent_shutdown(v->agent_h, &e) == 0) {
			for (;;) {
				struct pollfd p[2] = {
					{.fd = vm->death_fd, .events = POLLIN},
					{.fd = hc_agent_fd(v->agent_h),
					 .events = hc_agent_poll_events(v->agent_h)},
				};
				int t = hc_clock_left_ms(deadline);

				if (t == 0 || poll(p, 2, t) < 0)
					break;
				if (p[0].revents && hc_vm_check(vm, &e) < 0)
					break;
				if (p[1].revents &&
				    hc_agent_dispatch(v->agent_h, p[1].revents, &e) < 0)
					p[1].fd = -1; /* the guest closed: the VMM ends next */
			}
		}
	}
	console_save(v);
	hc_agent_free(v->agent_h);
	v->agent_h = NULL;
	hc_lib_boot_teardown(&v->boot, -1, true);
	hc_closep(&v->agent);
}

/* ---- clients ---- */

static void client_free(struct vmd_client *c)
{
	if (!c)
		return;
	hc_closep(&c->fd);
	hc_buf_free(&c->in);
	hc_buf_free(&c->out);
	hc_buf_free(&c->stdin_q);
	json_decref(c->req);
	free(c);
}

static void client_reply(struct vmd_client *c, json_t *reply)
{
	if (!reply || hc_pvm_ctl_append_json(&c->out, HC_CTL_REPLY, reply) < 0)
		hc_warn("cannot encode a reply");
	json_decref(reply);
	c->replied = true;
	c->waiting = false;
}

static void client_reply_error(struct vmd_client *c, const struct hc_error *err)
{
	client_reply(c, hc_pvm_ctl_error_json(err));
}

static json_t *ok(void)
{
	return json_pack("{s:b}", "ok", 1);
}

static void accept_client(struct vmd *v)
{
	struct vmd_client *c, **nv;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	/* The socket is 0600 already; the peer's credentials are checked all the same. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid()) || v->n_clients >= MAX_CLIENTS) {
		hc_warn("refused a control connection (uid %d)", (int)cred.uid);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	nv = c ? realloc(v->clients, (v->n_clients + 1) * sizeof(*nv)) : NULL;
	if (!nv) {
		free(c);
		close(fd);
		return;
	}
	v->clients = nv;
	c->v = v;
	c->fd = fd;
	c->stdin_q = (struct hc_buf)HC_BUF_INIT(0);
	c->in = (struct hc_buf)HC_BUF_INIT(HC_CTL_HEADER + HC_CTL_MAX_JSON + 65536);
	c->out = (struct hc_buf)HC_BUF_INIT(0);
	v->clients[v->n_clients++] = c;
}

/* ---- requests ---- */

static int op_ping(struct vmd *v, struct vmd_client *c, json_t *req, struct hc_error *err)
{
	client_reply(c, json_pack("{s:b,s:s}", "ok", 1, "status", hc_pvm_status_name(v->status)));
	return 0;
}

static int op_pause(struct vmd *v, struct vmd_client *c, json_t *req, struct hc_error *err)
{
	int r;

	if (v->status == HC_PVM_PAUSED)
		return hc_error_setk(err, -EALREADY, HC_EK_VM, "VM %.12s is already paused", v->id);
	r = hc_vm_pause(v->boot.vm, err);
	if (r < 0)
		return r;
	v->status = HC_PVM_PAUSED;
	vmd_record_save(v);
	client_reply(c, ok());
	return 0;
}

static int op_resume(struct vmd *v, struct vmd_client *c, json_t *req, struct hc_error *err)
{
	int r;

	if (v->incoming)
		return hc_error_setk(
			err, -EBUSY, HC_EK_VM,
			"VM %.12s is arriving by migration: it resumes when its source "
			"has stopped (docs/migration.md)",
			v->id);
	if (v->status != HC_PVM_PAUSED)
		return hc_error_setk(err, -EALREADY, HC_EK_VM, "VM %.12s is not paused", v->id);
	r = hc_vm_resume(v->boot.vm, err);
	if (r < 0)
		return r;
	v->status = HC_PVM_RUNNING;
	vmd_record_save(v);
	client_reply(c, ok());
	return 0;
}

static const struct hc_agent_events agent_events;

/* {"reseed": bool} -> {"ok", "ms"}: the second phase of a migration's hand-over, sent by the
 * destination server once the source confirmed its copy stopped for good: resume, then a
 * RESEED with the host's clock (and a fresh seed only when asked: a migrated VM is the same
 * VM). Before any command, as after every restore. */
static int op_migrate_commit(struct vmd *v, struct vmd_client *c, json_t *req, struct hc_error *err)
{
	json_t *rs = json_object_get(req, "reseed");
	uint8_t seed[64];
	struct timespec ts;
	double t0 = hc_clock_ms();
	int r;

	if (!v->incoming)
		return hc_error_setk(err, -ESRCH, "migrate",
				     "VM %.12s is not waiting for a migration's commit", v->id);
	if (rs && !json_is_boolean(rs))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "migrate_commit: bad \"reseed\"");
	if (json_is_true(rs) && getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		return hc_error_errno(err, -errno, "getrandom");
	r = hc_vm_resume(v->boot.vm, err);
	if (r < 0)
		return r;
	if (!v->agent_h) {
		/* vsock: reconnected by the resume, or the guest connects out. */
		int fd = hc_lib_snapshot_agent_connect(v->boot.vm, v->boot.spec.boot_timeout_ms,
						       err);

		if (fd < 0)
			return fd;
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		r = hc_agent_new(fd, &agent_events, v, &v->agent_h, err);
		if (r < 0)
			return r;
		hc_agent_set_ready(v->agent_h);
		v->hello = true;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	r = hc_agent_reseed(v->agent_h, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
			    seed, json_is_true(rs) ? sizeof(seed) : 0, err);
	explicit_bzero(seed, sizeof(seed));
	if (r < 0)
		return r;
	v->incoming = false;
	v->status = HC_PVM_RUNNING;
	json_object_del(v->rec, "incoming");
	json_object_set_new(v->rec, "migration_committed", json_true());
	vmd_record_save(v);
	hc_info("VM %.12s: migration committed, resumed", v->id);
	client_reply(c, json_pack("{s:b,s:f}", "ok", 1, "ms", hc_clock_ms() - t0));
	return 0;
}

static int op_stop(struct vmd *v, struct vmd_client *c, json_t *req, struct hc_error *err)
{
	json_t *g = json_object_get(req, "grace");

	if (g && !json_is_number(g))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "stop: grace must be a number");
	v->stop_grace = g ? json_number_value(g) : STOP_GRACE_S;
	if (!(v->stop_grace >= 0 && v->stop_grace <= 3600))
		v->stop_grace = STOP_GRACE_S;
	/* A paused guest cannot act on SHUTDOWN: no grace then. */
	if (v->status == HC_PVM_PAUSED)
		v->stop_grace = 0;
	v->quit = true;
	c->waiting = true; /* answered once the VM has ended */
	return 0;
}

/* {"dir": ABSOLUTE, "leave_paused": bool} -> {"ok", "ms"}: lib/snapshot.h. */
static int op_snapshot(struct vmd *v, struct vmd_client *c, json_t *req, struct hc_error *err)
{
	json_t *d = json_object_get(req, "dir"), *lp = json_object_get(req, "leave_paused");
	bool was_paused = v->status == HC_PVM_PAUSED;
	struct hc_lib_snapshot_origin o = {
		.image = v->boot.image.name,
		.digest = v->boot.image.digest,
		.options = json_object_get(v->create, "options"),
	};
	double ms = 0;
	int r;

	if (!json_is_string(d) || json_string_value(d)[0] != '/' || (lp && !json_is_boolean(lp)))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "snapshot: needs an absolute \"dir\" and a boolean "
				     "\"leave_paused\"");
	r = hc_lib_snapshot_save(v->boot.vm, json_string_value(d), &o, was_paused, json_is_true(lp),
				 &ms, err);
	if (r < 0)
		return r;
	if (json_is_true(lp) && !was_paused) {
		v->status = HC_PVM_PAUSED;
		vmd_record_save(v);
	}
	client_reply(c, json_pack("{s:b,s:f}", "ok", 1, "ms", ms));
	return 0;
}

/* {} -> {"ok", "dir", "ms"}: a snapshot into a private temp dir, for the client to restore N
 * times and remove (hc_pvm_fork). */
static int op_fork(struct vmd *v, struct vmd_client *c, json_t *req, struct hc_error *err)
{
	struct hc_lib_snapshot_origin o = {
		.image = v->boot.image.name,
		.digest = v->boot.image.digest,
		.options = json_object_get(v->create, "options"),
	};
	char dir[HC_PATH_MAX];
	double ms = 0;
	int r;

	r = hc_lib_snapshot_fork_save(v->boot.vm, &o, v->status == HC_PVM_PAUSED, dir, &ms, err);
	if (r < 0)
		return r;
	client_reply(c, json_pack("{s:b,s:s,s:f}", "ok", 1, "dir", dir, "ms", ms));
	return 0;
}

/* ---- the agent's events: streams of clients ---- */

static bool client_flush(struct vmd_client *c);

/* Acknowledges to the guest the output the client has taken (its queue is short again). */
static void client_ack(struct vmd_client *c)
{
	struct vmd *v = c->v;

	if (!c->unacked || !c->streaming || !v->agent_h || (c->fd >= 0 && c->out.len >= ACK_LOW))
		return;
	if (hc_agent_ack(v->agent_h, c->stream, c->unacked) < 0)
		hc_debug("ack on stream %u failed", c->stream);
	c->unacked = 0;
}

static void ev_hello(void *ctx, const struct hc_proto_hello *h)
{
	struct vmd *v = ctx;

	v->hello = true;
	hc_info("guest hello: %s", h->agent);
}

static void ev_vm_error(void *ctx, const struct hc_proto_error *e)
{
	hc_warn("the guest reports: %s", e->message);
}

static void ev_started(void *ctx, void *sctx, uint32_t id, uint32_t pid)
{
	struct vmd_client *c = sctx;
	json_t *ev;

	if (sctx == ((struct vmd *)ctx)->work)
		return;
	ev = json_pack("{s:i}", "started", (int)pid);

	c->pid = pid;
	if (c->fd >= 0 && (!ev || hc_pvm_ctl_append_json(&c->out, HC_CTL_EVENT, ev) < 0))
		hc_warn("cannot queue an event");
	json_decref(ev);
}

static void ev_output(void *ctx, void *sctx, uint32_t id, int fd, const uint8_t *p, size_t n)
{
	struct vmd_client *c = sctx;

	if (sctx == ((struct vmd *)ctx)->work) {
		vmd_work_output(ctx, fd, p, n);
		return;
	}
	c->unacked += n;
	if (c->fd >= 0) {
		/* Frames of at most HC_CTL_MAX_DATA: the guest's are 64 KiB at most too. */
		for (size_t off = 0; off < n;) {
			size_t k = n - off > HC_CTL_MAX_DATA ? HC_CTL_MAX_DATA : n - off;

			if (hc_pvm_ctl_append(&c->out, fd == 2 ? HC_CTL_STDERR : HC_CTL_STDOUT,
					      p + off, k) < 0)
				break;
			off += k;
		}
		client_flush(c);
	}
	client_ack(c);
}

static void push_stdin(struct vmd_client *c)
{
	struct vmd *v = c->v;

	while (c->stdin_q.len > 0) {
		ssize_t n = hc_agent_stdin(v->agent_h, c->stream, c->stdin_q.data, c->stdin_q.len);

		if (n <= 0) {
			if (n < 0)
				hc_buf_reset(&c->stdin_q); /* stdin closed on the guest's side */
			break;
		}
		hc_buf_consume(&c->stdin_q, (size_t)n);
	}
	if (c->stdin_close && c->stdin_q.len == 0) {
		c->stdin_close = false;
		if (hc_agent_stdin_close(v->agent_h, c->stream) < 0)
			hc_debug("stdin close on stream %u: already closed", c->stream);
	}
}

static void ev_writable(void *ctx, void *sctx, uint32_t id)
{
	if (sctx == ((struct vmd *)ctx)->work)
		return; /* the loop polls the workload's stdin again when its window has room */
	push_stdin(sctx);
}

/* The guest's reasons as the client's error (the exec ones as hc_run reports them). */
json_t *vmd_stream_error(const char *argv0, const struct hc_proto_error *pe)
{
	struct hc_error err = {0};
	const char *m = pe->message[0] ? pe->message : "no detail";
	int exit_code = 0;
	json_t *j;

	switch (hc_agent_exec_error(pe, argv0, &exit_code, &err) < 0 ? -1 : (int)pe->reason) {
	case -1:
		break; /* an exec refusal, worded there */
	case HC_EXEC_ERR_BUSY:
		hc_error_setk(&err, -EBUSY, HC_EK_VM, "the VM is busy: %s", m);
		break;
	case HC_ERR_NOENT:
		hc_error_setk(&err, -ENOENT, HC_EK_IO, "%s", m);
		break;
	case HC_ERR_NOSPC:
		hc_error_setk(&err, -ENOSPC, HC_EK_IO, "%s", m);
		break;
	case HC_ERR_ROFS:
		hc_error_setk(&err, -EROFS, HC_EK_IO, "%s", m);
		break;
	case HC_ERR_ACCES:
		hc_error_setk(&err, -EACCES, HC_EK_IO, "%s", m);
		break;
	case HC_ERR_IO:
		hc_error_setk(&err, -EIO, HC_EK_IO, "%s", m);
		break;
	case HC_ERR_CANCELLED:
		hc_error_setk(&err, -ECANCELED, "cancelled", "cancelled");
		break;
	default:
		hc_error_setk(&err, -EPROTO, HC_EK_VM, "the guest refused: %s", m);
		break;
	}
	j = hc_pvm_ctl_error_json(&err);
	if (j && exit_code)
		json_object_set_new(json_object_get(j, "error"), "exit_code",
				    json_integer(exit_code));
	return j;
}

static void ev_end(void *ctx, void *sctx, uint32_t id, const struct hc_agent_end *end)
{
	struct vmd *v = ctx;
	struct vmd_client *c = sctx;
	json_t *reply;

	if (sctx == v->work) {
		vmd_work_end(v, end);
		return;
	}
	c->streaming = false;
	if (hc_streq(c->op, "exec") && !c->detach && v->n_execs > 0)
		v->n_execs--;
	switch (end->kind) {
	case HC_AGENT_END_EXIT:
		reply = json_pack("{s:b,s:i,s:i,s:b,s:i}", "ok", 1, "exit_code",
				  end->exit.signal > 0 || end->exit.timed_out ? -1 : end->exit.code,
				  "signal", end->exit.signal > 0 ? end->exit.signal : 0,
				  "timed_out", end->exit.timed_out != 0, "pid", (int)c->pid);
		break;
	case HC_AGENT_END_DETACHED:
		reply = json_pack("{s:b,s:i,s:b}", "ok", 1, "pid", (int)c->pid, "detached", 1);
		break;
	case HC_AGENT_END_DONE:
		reply = ok();
		break;
	case HC_AGENT_END_ERROR:
		reply = vmd_stream_error(c->argv0, &end->error);
		break;
	case HC_AGENT_END_LOST:
	default: {
		struct hc_error err = {0};

		hc_error_setk(&err, -EPIPE, HC_EK_VM, "the VM's agent channel was lost: %s",
			      end->error.message);
		reply = hc_pvm_ctl_error_json(&err);
		break;
	}
	}
	if (c->fd >= 0) {
		client_reply(c, reply);
		client_flush(c);
	} else {
		json_decref(reply);
		c->replied = true;
		c->waiting = false; /* the loop drops it */
	}
	if (v->n_clients == 0 && v->n_execs == 0)
		v->t_idle_since = hc_clock_ms();
}

static const struct hc_agent_events agent_events = {
	.hello = ev_hello,
	.vm_error = ev_vm_error,
	.started = ev_started,
	.output = ev_output,
	.writable = ev_writable,
	.end = ev_end,
};

/* Waits for the guest's HELLO on the new agent (the boot timeout, the VM's death, a signal). */
static int vmd_agent_up(struct vmd *v, struct hc_error *err)
{
	double deadline = v->t_boot0 + v->boot.spec.boot_timeout_ms;
	int r;

	/* A migration's paused copy on vsock: the channel comes with its commit. */
	if (v->incoming && v->agent < 0)
		return 0;
	r = hc_agent_new(hc_steal_fd(&v->agent), &agent_events, v, &v->agent_h, err);
	if (r < 0)
		return r;
	if (v->snap) {
		/* Restored: the guest said HELLO long ago, and RESEED is done. */
		hc_agent_set_ready(v->agent_h);
		v->hello = true;
	}
	while (!v->hello) {
		struct hc_error e = {0};
		short re;

		/* The supervisor's signalfd is its cancel: SIGTERM while booting ends the boot. */
		r = hc_lib_boot_wait(&v->boot, deadline, hc_agent_fd(v->agent_h),
				     hc_agent_poll_events(v->agent_h), v->sig_fd, &re, err);
		if (r < 0)
			return r;
		r = hc_agent_dispatch(v->agent_h, re, &e);
		if (r < 0) {
			if (r == -EPROTO)
				return hc_error_setk(err, r, HC_EK_VM, "%s", e.message);
			return hc_lib_boot_failure(&v->boot, r,
						   "the agent channel closed while booting", err);
		}
	}
	return 0;
}

/* ---- exec, put, get ---- */

/* A JSON array of strings into a NULL-terminated vector pointing into it. */
static int strv_of(const json_t *a, const char *what, const char ***ret, size_t *ret_n,
		   struct hc_error *err)
{
	size_t n = json_array_size(a);
	const char **v;

	*ret = NULL;
	*ret_n = 0;
	if (!a)
		return 0;
	if (!json_is_array(a) || n > HC_PROTO_MAX_ARGS)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "%s: expected an array of strings",
				     what);
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		v[i] = json_string_value(json_array_get(a, i));
		if (!v[i]) {
			free(v);
			return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
					     "%s: expected an array of strings", what);
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int vmd_exec_build(struct vmd *v, const json_t *req, struct hc_proto_exec *ex, struct hc_error *err)
{
	struct hc_run_opts o = v->ro.o;
	struct hc_lib_image_defaults img = v->boot.image.defaults;
	_cleanup_free_ const char **cmd = NULL, **xenv = NULL, **env = NULL;
	size_t n_cmd, n_xenv;
	const json_t *t = json_object_get(req, "timeout");
	const char *wd = json_string_value(json_object_get(req, "workdir"));
	const char *user = json_string_value(json_object_get(req, "user"));
	double timeout = t ? json_number_value(t) : 0;
	bool want_stdin = json_is_true(json_object_get(req, "stdin"));
	bool detach = json_is_true(json_object_get(req, "detach"));
	bool tty = json_is_true(json_object_get(req, "tty"));
	bool image_command = json_is_true(json_object_get(req, "image_command"));
	const char *term = json_string_value(json_object_get(req, "term"));
	json_int_t rows = json_integer_value(json_object_get(req, "rows"));
	json_int_t cols = json_integer_value(json_object_get(req, "cols"));
	int r;

	r = strv_of(json_object_get(req, "cmd"), "cmd", &cmd, &n_cmd, err);
	if (r < 0)
		return r;
	r = strv_of(json_object_get(req, "env"), "env", &xenv, &n_xenv, err);
	if (r < 0)
		return r;
	if (!n_cmd && !image_command)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "exec: no command given");
	if (detach && tty)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "exec: a detached command has no terminal");
	if (rows < 0 || rows > 0xffff || cols < 0 || cols > 0xffff)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "exec: invalid terminal size");
	if ((t && !json_is_number(t)) || !(timeout >= 0 && timeout <= 1e7))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "exec: invalid timeout");
	if (detach && (want_stdin || timeout > 0))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "exec: a detached command takes no stdin and no timeout");
	/* The VM's env (-e at create), then the exec's on top; the command as given: no
	 * entrypoint, as podman exec (image_command: the image's, as run -d starts it). With
	 * -t, TERM is the client's (hc_lib_exec_build reads it from the environment). */
	env = calloc(o.n_env + n_xenv + 1, sizeof(*env));
	if (!env)
		return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	for (size_t i = 0; i < o.n_env; i++)
		env[i] = o.env[i];
	for (size_t i = 0; i < n_xenv; i++)
		env[o.n_env + i] = xenv[i];
	o.env = env;
	o.n_env += n_xenv;
	o.cmd = cmd;
	o.n_cmd = n_cmd;
	o.entrypoint = NULL;
	o.interactive = false;
	o.tty = tty;
	o.tty_fd = -1;
	if (wd)
		o.workdir = wd;
	if (user)
		o.user = user;
	if (!image_command) {
		img.n_entrypoint = 0;
		img.n_cmd = 0;
	}
	o.term = term && *term ? term : "xterm"; /* the client's */
	r = hc_lib_exec_build(&o, v->ro.o.rootfs_dir ? NULL : &img, ex, err);
	if (r < 0)
		return r;
	ex->rows = (uint16_t)rows;
	ex->cols = (uint16_t)cols;
	ex->timeout_ms = (uint32_t)(timeout * 1000.0 + 0.5);
	if (want_stdin)
		ex->flags |= HC_EXEC_F_STDIN;
	if (detach)
		ex->flags |= HC_EXEC_F_DETACH;
	return 0;
}

static int op_exec(struct vmd *v, struct vmd_client *c, json_t *req, struct hc_error *err)
{
	struct hc_proto_exec ex = {0};
	int r;

	c->detach = json_is_true(json_object_get(req, "detach"));
	r = vmd_exec_build(v, req, &ex, err);
	if (r < 0)
		return r;
	snprintf(c->argv0, sizeof(c->argv0), "%s", ex.argv[0]);
	r = hc_agent_exec(v->agent_h, &ex, HC_AGENT_EXEC_MANUAL_ACK, c, &c->stream, err);
	hc_lib_exec_clear(&ex);
	if (r < 0)
		return r;
	c->streaming = true;
	c->waiting = true;
	if (!c->detach)
		v->n_execs++;
	return 0;
}

/* {"signal": 1..64, "all": bool} -> {"ok"}: the signal to the container's workload (as if the
 * supervisor got it), and with all to every command running for a client too. */
static int op_signal(struct vmd *v, struct vmd_client *c, json_t *req, struct hc_error *err)
{
	const json_t *j = json_object_get(req, "signal");
	json_int_t sig = json_integer_value(j);
	bool all = json_is_true(json_object_get(req, "all"));

	if (!json_is_integer(j) || sig < 1 || sig > 64)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "signal: a number 1..64 is needed");
	if (v->work)
		vmd_work_signal(v, (int)sig);
	for (size_t i = 0; all && i < v->n_clients; i++) {
		struct vmd_client *o = v->clients[i];

		if (o->streaming && hc_streq(o->op, "exec") && !o->detach &&
		    hc_agent_signal(v->agent_h, o->stream, (int)sig) < 0)
			hc_debug("signal on stream %u failed", o->stream);
	}
	client_reply(c, ok());
	return 0;
}

/* {} -> {"ok"}: runs a container's workload (the OCI runtime's `start`). */
static int op_start(struct vmd *v, struct vmd_client *c, json_t *req, struct hc_error *err)
{
	int r;

	if (!v->work)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "start: VM %.12s was not created with a workload", v->id);
	r = vmd_work_start(v, err);
	if (r < 0)
		return r;
	client_reply(c, ok());
	return 0;
}

static int op_transfer(struct vmd *v, struct vmd_client *c, json_t *req, struct hc_error *err)
{
	const char *host = json_string_value(json_object_get(req, "host"));
	const char *guest = json_string_value(json_object_get(req, "guest"));
	bool put = hc_streq(c->op, "put");
	int r;

	if (!host || host[0] != '/' || !guest || guest[0] != '/')
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "%s: \"host\" and \"guest\" must be absolute paths", c->op);
	/* Host paths are opened with the supervisor's rights: those of the VM's owner (the
	 * socket takes only that uid, or root). */
	r = put ? hc_agent_put(v->agent_h, host, guest, c, &c->stream, err)
		: hc_agent_get(v->agent_h, guest, host, c, &c->stream, err);
	if (r < 0)
		return r;
	c->streaming = true;
	c->waiting = true;
	return 0;
}

/* A frame of a client whose request streams (exec): stdin, signals, cancel. */
static bool client_stream_frame(struct vmd *v, struct vmd_client *c,
				const struct hc_pvm_ctl_frame *f)
{
	uint32_t sig;

	if (!c->streaming)
		return true; /* late frames of an ended stream */
	switch ((enum hc_pvm_ctl_type)f->type) {
	case HC_CTL_STDIN:
		if (hc_buf_append(&c->stdin_q, f->payload, f->len) < 0)
			return false;
		push_stdin(c);
		return true;
	case HC_CTL_STDIN_CLOSE:
		c->stdin_close = true;
		push_stdin(c);
		return true;
	case HC_CTL_SIGNAL:
		sig = (uint32_t)f->payload[0] << 24 | (uint32_t)f->payload[1] << 16 |
		      (uint32_t)f->payload[2] << 8 | f->payload[3];
		if (hc_agent_signal(v->agent_h, c->stream, (int)sig) < 0)
			hc_debug("signal on stream %u failed", c->stream);
		return true;
	case HC_CTL_CANCEL:
		if (hc_agent_cancel(v->agent_h, c->stream) < 0)
			hc_debug("cancel on stream %u failed", c->stream);
		return true;
	case HC_CTL_RESIZE:
		if (hc_agent_resize(v->agent_h, c->stream,
				    (uint16_t)(f->payload[0] << 8 | f->payload[1]),
				    (uint16_t)(f->payload[2] << 8 | f->payload[3])) < 0)
			hc_debug("resize on stream %u failed", c->stream);
		return true;
	case HC_CTL_REQUEST:
	case HC_CTL_REPLY:
	case HC_CTL_EVENT:
	case HC_CTL_STDOUT:
	case HC_CTL_STDERR:
		break;
	}
	return false;
}

static const struct vmd_op {
	const char *name;
	/* Answers with client_reply (now, or later with c->waiting); a negative errno with err
	 * set becomes an error reply. */
	int (*fn)(struct vmd *v, struct vmd_client *c, json_t *req, struct hc_error *err);
	bool needs_running; /* refused while paused */
} vmd_ops[] = {
	{"ping", op_ping, false},	  {"pause", op_pause, false},
	{"resume", op_resume, false},	  {"stop", op_stop, false},
	{"snapshot", op_snapshot, false}, {"fork", op_fork, false},
	{"exec", op_exec, true},	  {"put", op_transfer, true},
	{"get", op_transfer, true},	  {"migrate_commit", op_migrate_commit, false},
	{"signal", op_signal, false},	  {"start", op_start, true},
};

static const char *const *op_names(void)
{
	static const char *names[HC_ARRAY_SIZE(vmd_ops) + 1];

	for (size_t i = 0; i < HC_ARRAY_SIZE(vmd_ops); i++)
		names[i] = vmd_ops[i].name;
	return names;
}

static void handle_request(struct vmd *v, struct vmd_client *c, const struct hc_pvm_ctl_frame *f)
{
	struct hc_error err = {0};
	int r;

	r = hc_pvm_ctl_request(f, op_names(), &c->req, &c->op, &err);
	if (r < 0) {
		client_reply_error(c, &err);
		return;
	}
	for (size_t i = 0; i < HC_ARRAY_SIZE(vmd_ops); i++) {
		if (!hc_streq(vmd_ops[i].name, c->op))
			continue;
		if (vmd_ops[i].needs_running && v->status != HC_PVM_RUNNING) {
			hc_error_setk(&err, -EAGAIN, HC_EK_VM, "VM %.12s is %s", v->id,
				      hc_pvm_status_name(v->status));
			client_reply_error(c, &err);
			return;
		}
		r = vmd_ops[i].fn(v, c, c->req, &err);
		if (r < 0)
			client_reply_error(c, &err);
		return;
	}
}

/* Reads what a client sent; false when it is to be dropped. */
static bool client_read(struct vmd *v, struct vmd_client *c)
{
	for (;;) {
		struct hc_pvm_ctl_frame f;
		size_t used;
		ssize_t n;
		int r;

		r = hc_pvm_ctl_parse((const uint8_t *)c->in.data, c->in.len, &f, &used);
		if (r < 0)
			return false; /* an untrusted peer speaking garbage: drop it */
		if (r > 0) {
			bool keep = true;

			if (!c->req && !c->replied)
				handle_request(v, c, &f);
			else if (f.type == HC_CTL_REQUEST)
				return false; /* one request per connection */
			else
				keep = client_stream_frame(v, c, &f);
			hc_buf_consume(&c->in, used);
			if (!keep)
				return false;
			/* stdin waits for the guest's window: read no more until it has room. */
			if (c->stdin_q.len > 0)
				return true;
			continue;
		}
		if (hc_buf_reserve(&c->in, 65536) < 0)
			return false;
		n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		if (n == 0)
			return false;
		c->in.len += (size_t)n;
	}
}

/* Writes what the client takes; false when it is done (replied and flushed) or broken. */
static bool client_flush(struct vmd_client *c)
{
	while (c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		hc_buf_consume(&c->out, (size_t)n);
		client_ack(c);
	}
	client_ack(c);
	return !c->replied;
}

static void client_drop(struct vmd *v, size_t i)
{
	struct vmd_client *c = v->clients[i];

	if (c->streaming) {
		/* The client went away: a command ends with its stream (unless detached, whose
		 * stream is over at its start), a transfer is aborted; the stream's end frees
		 * the client. */
		hc_closep(&c->fd);
		hc_buf_free(&c->out);
		if (hc_agent_cancel(v->agent_h, c->stream) < 0)
			hc_debug("cancel on stream %u failed", c->stream);
		return;
	}
	client_free(c);
	v->clients[i] = v->clients[--v->n_clients];
	if (v->n_clients == 0)
		v->t_idle_since = hc_clock_ms();
}

/* ---- the loop ---- */

#define CONSOLE_TRIM_MS 1000

static int serve(struct vmd *v)
{
	enum { P_LISTEN, P_SIG, P_AGENT, P_DEATH, P_WORK, P_FIXED = P_WORK + 3 };
	struct pollfd *p = calloc(P_FIXED + MAX_CLIENTS, sizeof(*p));

	if (!p)
		return -ENOMEM;
	while (!v->quit) {
		double deadline = -1;
		int timeout, n = P_FIXED;

		p[P_LISTEN] = (struct pollfd){.fd = v->listen_fd, .events = POLLIN};
		p[P_SIG] = (struct pollfd){.fd = v->sig_fd, .events = POLLIN};
		p[P_AGENT] = (struct pollfd){.fd = v->agent_h ? hc_agent_fd(v->agent_h) : -1,
					     .events = v->agent_h ? hc_agent_poll_events(v->agent_h)
								  : 0};
		p[P_DEATH] = (struct pollfd){.fd = v->boot.vm->death_fd, .events = POLLIN};
		vmd_work_pollfds(v, &p[P_WORK]);
		for (size_t i = 0; i < v->n_clients; i++)
			p[n++] = (struct pollfd){
				.fd = v->clients[i]->fd,
				.events = (short)((v->clients[i]->stdin_q.len ? 0 : POLLIN) |
						  (v->clients[i]->out.len ? POLLOUT : 0))};
		if (v->incoming && hc_clock_left_ms(v->incoming_until) == 0) {
			/* The source never confirmed: it resumed its own copy (or could not
			 * tell us), so this one must never run. */
			hc_warn("VM %.12s: no migration commit in time: ending the paused copy",
				v->id);
			json_object_set_new(v->rec, "error",
					    json_string("the migration was not committed in time"));
			v->stop_grace = 0;
			v->quit = true;
			break;
		}
		if (v->incoming)
			deadline = v->incoming_until;
		if (v->lifetime_s > 0 &&
		    (deadline < 0 || v->t_created + v->lifetime_s * 1000.0 < deadline))
			deadline = v->t_created + v->lifetime_s * 1000.0;
		if (v->idle_s > 0 && v->n_clients == 0 && v->n_execs == 0) {
			double d = v->t_idle_since + v->idle_s * 1000.0;

			if (deadline < 0 || d < deadline)
				deadline = d;
		}
		timeout = deadline < 0 ? -1 : hc_clock_left_ms(deadline);
		if (timeout == 0) {
			hc_info("VM %.12s: %s reached: stopping", v->id,
				v->n_clients == 0 && v->n_execs == 0 && v->idle_s > 0 &&
						hc_clock_ms() >=
							v->t_idle_since + v->idle_s * 1000.0
					? "idle timeout"
					: "lifetime");
			v->stop_grace = STOP_GRACE_S;
			v->quit = true;
			break;
		}
		/* Wake at least once a second to keep the console log within its cap
		 * (HOTCELL_CONSOLE_MAX): a guest flooding its console must not fill /run. */
		if (timeout < 0 || timeout > CONSOLE_TRIM_MS)
			timeout = CONSOLE_TRIM_MS;
		if (poll(p, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			free(p);
			return -errno;
		}
		hc_vm_console_trim(v->boot.vm);
		if (p[P_SIG].revents) {
			struct signalfd_siginfo si;

			while (read(v->sig_fd, &si, sizeof(si)) == sizeof(si)) {
				if (vmd_work_signal(v, (int)si.ssi_signo))
					continue;
				hc_info("VM %.12s: signal %u: stopping", v->id, si.ssi_signo);
				v->stop_grace = STOP_GRACE_S;
				v->quit = true;
			}
		}
		if (p[P_DEATH].revents) {
			struct hc_error e = {0};

			if (hc_vm_check(v->boot.vm, &e) < 0) {
				v->dead = true;
				v->death = e;
				v->quit = true;
			}
		}
		vmd_work_io(v, &p[P_WORK]);
		if (p[P_AGENT].revents) {
			struct hc_error e = {0};
			int r = hc_agent_dispatch(v->agent_h, p[P_AGENT].revents, &e);

			/* The channel's end means the guest is gone (every stream has been ended,
			 * LOST); the VMM says why, if it can. */
			if (r < 0) {
				struct pollfd d = {.fd = v->boot.vm->death_fd, .events = POLLIN};

				poll(&d, 1, 1000);
				if (hc_vm_check(v->boot.vm, &v->death) >= 0)
					hc_error_setk(&v->death, r, HC_EK_VM,
						      "the agent channel failed: %s", e.message);
				v->dead = true;
				v->quit = true;
			}
		}
		/* Clients: newest last; a dropped one is replaced by the last, so walk down. */
		for (size_t i = v->n_clients; i-- > 0;) {
			struct vmd_client *c = v->clients[i];
			short re = p[P_FIXED + i].revents;
			bool keep = true;

			if (re & (POLLIN | POLLHUP | POLLERR))
				keep = client_read(v, c);
			if (keep && c->out.len)
				keep = client_flush(c);
			else if (keep && c->replied)
				keep = false;
			if (!keep && c->streaming && c->fd >= 0)
				client_drop(v, i); /* gone mid-stream: cancel, freed at its end */
			else if (!keep && !c->waiting)
				client_drop(v, i);
		}
		if (p[P_LISTEN].revents)
			accept_client(v);
	}
	free(p);
	return 0;
}

/* ---- setup ---- */

static int setup_signals(struct vmd *v, struct hc_error *err)
{
	sigset_t set, boot;

	vmd_work_sigset(v, false, &set);
	vmd_work_sigset(v, true, &boot);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return hc_error_errno(err, -errno, "sigprocmask");
	/* While booting, only the signals that end the VM (the boot's cancel); the rest wait. */
	v->sig_fd = signalfd(-1, &boot, SFD_CLOEXEC | SFD_NONBLOCK);
	if (v->sig_fd < 0)
		return hc_error_errno(err, -errno, "signalfd");
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int load_create(struct vmd *v, struct hc_error *err)
{
	char path[HC_PATH_MAX + 16];
	_cleanup_free_ char *data = NULL;
	json_t *opts;
	size_t len;
	int r;

	snprintf(path, sizeof(path), "%s/create.json", v->state_dir);
	r = hc_path_read_file(path, 1u << 20, &data, &len, err);
	if (r < 0)
		return r;
	v->create = json_loadb(data, len, 0, NULL);
	if (!json_is_object(v->create))
		return hc_error_setk(err, -EBADMSG, HC_EK_INTERNAL, "%s: not a JSON object", path);
	opts = json_object_get(v->create, "options");
	if (opts) {
		r = hc_runopts_from_json(&v->ro, HC_RUNOPT_VM, opts, NULL, err);
		if (r < 0)
			return hc_error_prefix(err, "%s", path);
	}
	v->idle_s = json_number_value(json_object_get(v->create, "idle_timeout"));
	v->lifetime_s = json_number_value(json_object_get(v->create, "lifetime"));
	return 0;
}

static void ready(int *fd, const struct hc_error *err)
{
	char line[1024];
	int n;

	if (*fd < 0)
		return;
	if (err)
		n = snprintf(line, sizeof(line), "error %s %s\n",
			     err->kind[0] ? err->kind : HC_EK_VM, err->message);
	else
		n = snprintf(line, sizeof(line), "ok\n");
	if (n > 0 && write(*fd, line, strlen(line)) < 0)
		hc_debug("the creator is gone");
	hc_closep(fd);
}

int vmd_main(const char *id, int ready_fd)
{
	struct vmd v = {.agent = -1, .listen_fd = -1, .sig_fd = -1, .stop_grace = STOP_GRACE_S};
	struct hc_error err = {0};
	char created[40];
	const char *restore;
	int r, status = 1;

	hc_runopts_init(&v.ro);
	snprintf(v.id, sizeof(v.id), "%s", id);
	v.t_created = v.t_idle_since = hc_clock_ms();
	r = hc_pvm_state_dir(id, v.state_dir, sizeof(v.state_dir), &err);
	if (r >= 0)
		r = load_create(&v, &err);
	if (r >= 0)
		r = vmd_work_load(&v, &err);
	if (r >= 0)
		r = setup_signals(&v, &err);
	if (r < 0)
		goto fail_early;

	rfc3339_now(created, sizeof(created));
	v.rec = json_pack("{s:s,s:O?,s:s,s:I,s:I,s:f,s:f}", "id", v.id, "name",
			  json_object_get(v.create, "name"), "created", created, "pid",
			  (json_int_t)getpid(), "pid_start",
			  (json_int_t)hc_owner_start_time(getpid()), "idle_timeout", v.idle_s,
			  "lifetime", v.lifetime_s);
	if (!v.rec) {
		r = hc_error_setk(&err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
		goto fail_early;
	}
	v.status = HC_PVM_CREATING;
	vmd_record_save(&v);

	restore = json_string_value(json_object_get(v.create, "restore"));
	v.t_boot0 = hc_clock_ms();
	r = restore ? vmd_boot_restore(&v, restore, &err) : vmd_boot_image(&v, &err);
	if (r >= 0)
		r = vmd_agent_up(&v, &err);
	if (r >= 0 && v.work) {
		sigset_t set;

		vmd_work_sigset(&v, false, &set);
		if (signalfd(v.sig_fd, &set, 0) < 0)
			r = hc_error_errno(&err, -errno, "signalfd");
	}
	if (r >= 0)
		r = hc_path_fmt(v.ctl_path, sizeof(v.ctl_path), &err, "%s/ctl.sock",
				v.boot.vm->run_dir);
	if (r >= 0) {
		mode_t old = umask(0177);

		v.listen_fd = hc_unixsock_listen(v.ctl_path, 64, &err);
		umask(old);
		r = v.listen_fd;
		if (r >= 0 && chmod(v.ctl_path, 0600) < 0)
			r = hc_error_errno(&err, -errno, "chmod %s", v.ctl_path);
	}
	if (r < 0) {
		json_object_set_new(v.rec, "error", json_string(err.message));
		v.status = HC_PVM_DEAD;
		vmd_end_vm(&v, 0);
		vmd_record_save(&v);
		ready(&ready_fd, &err);
		goto out;
	}

	json_object_set_new(v.rec, "image",
			    v.boot.image.name[0] ? json_string(v.boot.image.name) : json_null());
	json_object_set_new(v.rec, "digest",
			    v.boot.image.digest[0] ? json_string(v.boot.image.digest)
						   : json_null());
	json_object_set_new(v.rec, "backend", json_string(v.boot.ops->name));
	json_object_set_new(v.rec, "spec", spec_json(&v));
	json_object_set_new(v.rec, "runtime_dir", json_string(v.boot.vm->run_dir));
	json_object_set_new(v.rec, "console", json_string(v.boot.vm->console_log));
	json_object_set_new(v.rec, "control", json_string(v.ctl_path));
	if (json_is_string(json_object_get(v.create, "owned_dir")))
		json_object_set(v.rec, "owned_dir", json_object_get(v.create, "owned_dir"));
	v.status = v.incoming ? HC_PVM_PAUSED : HC_PVM_RUNNING;
	if (v.incoming)
		json_object_set_new(v.rec, "incoming", json_true());
	vmd_record_save(&v);
	ready(&ready_fd, NULL);
	hc_info("VM %.12s up (%s)", v.id, v.boot.ops->name);

	r = serve(&v);
	if (r < 0)
		hc_error_errno(&v.death, r, "the supervisor failed"), v.dead = true;
	hc_closep(&v.listen_fd);
	if (v.work)
		status = vmd_work_finish(&v);
	vmd_end_vm(&v, v.dead ? 0 : v.stop_grace);
	if (v.incoming) {
		/* Never committed: the files the migration brought go with this copy. */
		const char *od = json_string_value(json_object_get(v.rec, "owned_dir"));

		if (od)
			hc_path_rm_rf(od, NULL);
	}
	if (v.dead) {
		json_object_set_new(v.rec, "error", json_string(v.death.message));
		v.status = HC_PVM_DEAD;
		hc_warn("VM %.12s died: %s", v.id, v.death.message);
	} else {
		v.status = HC_PVM_STOPPED;
	}
	json_object_set_new(v.rec, "pid", json_integer(0));
	vmd_record_save(&v);
	/* The clients waiting for the end (stop) learn it now; one whose command or transfer
	 * was still running when the VM ended gets an error, never an "ok" without its exit
	 * code (docs/vm.md). */
	for (size_t i = 0; i < v.n_clients; i++) {
		struct vmd_client *c = v.clients[i];

		if (c->waiting && c->fd >= 0) {
			int fl = fcntl(c->fd, F_GETFL);

			if (c->streaming) {
				struct hc_error e = {0};

				hc_error_setk(
					&e, -EPIPE, HC_EK_VM, "the VM %s before the %s ended%s%s",
					v.dead ? "died" : "was stopped", c->op ? c->op : "stream",
					v.dead ? ": " : "", v.dead ? v.death.message : "");
				client_reply_error(c, &e);
			} else {
				client_reply(c, ok());
			}
			fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
			if (send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL) < 0)
				hc_debug("a stop client went away");
		} else if (c->fd >= 0 && c->out.len) {
			/* A stream's last reply still queued behind its output (a guest that
			 * flooded, then broke the protocol): delivered, within a second, so the
			 * client says why rather than "the supervisor went away". */
			struct timeval tv = {.tv_sec = 1};
			double until = hc_clock_ms() + 1000;

			fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
			if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
				continue;
			while (c->out.len && hc_clock_ms() < until) {
				ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);

				if (n <= 0)
					break;
				hc_buf_consume(&c->out, (size_t)n);
			}
		}
	}
	/* A migration's copy that was never committed never existed for anyone: nothing of it
	 * stays (its source runs the VM). */
	if (v.incoming)
		hc_path_rm_rf(v.state_dir, NULL);
	if (!v.work)
		status = 0;
	goto out;

fail_early:
	hc_warn("%s", err.message);
	ready(&ready_fd, &err);
out:
	for (size_t i = 0; i < v.n_clients; i++)
		client_free(v.clients[i]);
	free(v.clients);
	hc_closep(&v.sig_fd);
	hc_closep(&v.listen_fd);
	vmd_work_free(&v);
	hc_store_close(v.store);
	hc_runopts_free(&v.ro);
	hc_lib_snapshot_close(v.snap);
	json_decref(v.create);
	json_decref(v.rec);
	return status;
}
