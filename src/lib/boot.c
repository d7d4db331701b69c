/* SPDX-License-Identifier: MIT */
/* Boot to HELLO and teardown, shared by hc_run and the supervisor (lib/boot.h). */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "lib/backend.h"
#include "lib/boot.h"
#include "lib/paths.h"
#include "lib/template.h"
#include "proto/boot.h"
#include "vmm/accel.h"

/* The run options that reach hotcell-init as boot keys (src/proto/boot.h): "hotcell.debug=1"
 * when the user asked hotcell for debug logs (the guest logs on the console too, and the
 * console tail lands in VM errors), --rootfs-rw, --read-only, --hostname, --add-host,
 * --tmpfs, --dns. runopts bounds each; the kernel's command line is short (2 KiB on x86,
 * shared with the backend's own keys), so the total is checked. */
static int extra_cmdline(struct hc_lib_boot *b, const struct hc_run_opts *o, struct hc_error *err)
{
	const char *l = getenv("HOTCELL_LOG");
	size_t n, cap = sizeof(b->cmdline);

	n = (size_t)snprintf(b->cmdline, cap, "%s%s%s%s%s",
			     l && hc_streq(l, "debug") ? " " HC_BOOT_KEY_DEBUG "=1" : "",
			     o->rootfs_rw ? " " HC_BOOT_KEY_ROOT_RW "=1" : "",
			     o->read_only ? " " HC_BOOT_KEY_ROOT_RO "=1" : "",
			     o->hostname ? " " HC_BOOT_KEY_HOSTNAME "=" : "",
			     o->hostname ? o->hostname : "");
	for (size_t i = 0; n < cap && i < o->n_add_hosts; i++)
		n += (size_t)snprintf(b->cmdline + n, cap - n, " %s=%s", HC_BOOT_KEY_HOST,
				      o->add_hosts[i]);
	for (size_t i = 0; n < cap && i < o->n_tmpfs; i++)
		n += (size_t)snprintf(b->cmdline + n, cap - n, " %s=%s", HC_BOOT_KEY_TMPFS,
				      o->tmpfs[i]);
	for (size_t i = 0; n < cap && i < o->n_dns; i++)
		n += (size_t)snprintf(b->cmdline + n, cap - n, " %s=%s", HC_BOOT_KEY_NAMESERVER,
				      o->dns[i]);
	if (n >= cap || o->n_add_hosts > HC_BOOT_MAX_HOSTS || o->n_tmpfs > HC_BOOT_MAX_TMPFS ||
	    o->n_dns > HC_BOOT_MAX_NAMESERVERS)
		return hc_error_setk(err, -E2BIG, HC_EK_USAGE,
				     "too many --add-host, --tmpfs and --dns settings: they do "
				     "not fit the guest kernel's command line");
	b->spec.cmdline = b->cmdline[0] ? b->cmdline + 1 : "";
	return 0;
}

/* Between the phases before the VM runs (resolve, pull, backend, rootfs): a signal that came
 * during a phase that could not watch the cancel fd ends the boot here. The byte is left in the
 * fd for the caller. */
static int check_cancel(const struct hc_run_opts *o, struct hc_error *err)
{
	struct pollfd p = {.fd = o->cancel_fd, .events = POLLIN};

	if (p.fd >= 0 && poll(&p, 1, 0) > 0)
		return hc_error_setk(err, -ECANCELED, "cancelled", "interrupted");
	return 0;
}

/* QEMU 7.2 snapshots only a block rootfs on the serial channel (vmm.h): a template-eligible
 * run takes them where the user left the choice to hotcell. */
static int snapshot_modes(struct hc_lib_boot *b, const struct hc_run_opts *o, struct hc_error *err)
{
	struct hc_vm_spec *spec = &b->spec;
	bool changed = false;

	if (o->rootfs_mode == HC_ROOTFS_AUTO && (b->ops->caps & HC_CAP_SNAPSHOT_NEEDS_BLOCK) &&
	    (b->ops->caps & HC_CAP_ROOTFS_BLOCK) && spec->rootfs_mode != HC_ROOTFS_BLOCK) {
		spec->rootfs_mode = HC_ROOTFS_BLOCK;
		changed = true;
	}
	if (o->channel == HC_CHANNEL_AUTO && (b->ops->caps & HC_CAP_SNAPSHOT_NEEDS_SERIAL) &&
	    (b->ops->caps & HC_CAP_CHANNEL_SERIAL) && spec->channel != HC_CHANNEL_SERIAL) {
		spec->channel = HC_CHANNEL_SERIAL;
		changed = true;
	}
	if (!changed)
		return 0;
	hc_debug("warm start: rootfs mode %s, channel %s",
		 spec->rootfs_mode == HC_ROOTFS_BLOCK ? "block" : "dir",
		 spec->channel == HC_CHANNEL_SERIAL ? "serial" : "vsock");
	return b->ops->probe(spec, NULL, 0, err);
}

int hc_lib_boot_prepare(struct hc_store *store, const struct hc_run_opts *o, struct hc_lib_boot *b,
			struct hc_error *err)
{
	struct hc_vm_spec *spec = &b->spec;
	double t0 = hc_clock_ms(), t;
	int r;

	memset(spec, 0, sizeof(*spec));
	b->o = o;
	/* Backend first: whether the rootfs is a tree or a disk depends on it. */
	spec->cpus = o->cpus ? o->cpus : 1;
	spec->memory_mib = o->memory_mib ? o->memory_mib : 256;
	spec->volumes = o->volumes;
	spec->n_volumes = o->n_volumes;
	spec->devices = o->devices;
	spec->n_devices = o->n_devices;
	spec->jailer = o->jailer;
	spec->rootfs_rw = o->rootfs_rw;
	spec->no_jail = o->no_jail;
	spec->network = o->network;
	spec->ports = o->ports;
	spec->n_ports = o->n_ports;
	spec->boot_timeout_ms = (int)((o->boot_timeout_s > 0 ? o->boot_timeout_s : 60.0) * 1000.0);
	spec->cancel_fd = o->cancel_fd;
	/* Bad guest paths cost nothing to refuse: before any image or VM work. */
	r = extra_cmdline(b, o, err);
	if (r >= 0)
		r = hc_vm_volumes_check(o->volumes, o->n_volumes, err);
	for (size_t i = 0; r >= 0 && i < o->n_tmpfs; i++) {
		char path[256];

		snprintf(path, sizeof(path), "%.*s", (int)strcspn(o->tmpfs[i], ":"), o->tmpfs[i]);
		r = hc_vm_guest_path_check("--tmpfs", path, err);
	}
	if (r >= 0)
		r = check_cancel(o, err);
	if (r < 0)
		return r;
	/* The image first: a wrong name is the likeliest mistake, and costs nothing to report. */
	r = hc_lib_image_resolve(store, o, &b->image, err);
	if (r >= 0)
		r = check_cancel(o, err);
	if (r < 0)
		return r;
	r = hc_lib_initramfs_find(b->initrd, sizeof(b->initrd), err);
	if (r < 0) {
		hc_error_kind(err, HC_EK_BACKEND);
		return r;
	}
	spec->initrd = b->initrd;
	t = hc_clock_ms();
	hc_debug("image resolved in %.1f ms", t - t0);
	r = hc_lib_backend_choose(o, spec, b->kernel, sizeof(b->kernel), &b->ops, err);
	hc_debug("backend chosen in %.1f ms", hc_clock_ms() - t);
	enum hc_rootfs_mode cold_mode = spec->rootfs_mode;
	enum hc_channel cold_channel = spec->channel;
	if (r >= 0 && b->snapshot_modes)
		r = snapshot_modes(b, o, err);
	if (r >= 0 && o->rootfs_rw && (!o->rootfs_dir || spec->rootfs_mode != HC_ROOTFS_DIR))
		r = hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				  "--rootfs-rw needs --rootfs DIR and --rootfs-mode dir");
	if (r >= 0)
		r = check_cancel(o, err);
	if (r < 0)
		return r;

	/* Image -> rootfs (a cache hit costs nothing). */
	t = hc_clock_ms();
	r = hc_lib_image_prepare(store, o, spec->rootfs_mode == HC_ROOTFS_BLOCK, &b->image, err);
	if (r < 0 && r != -ECANCELED && spec->rootfs_mode != cold_mode) {
		/* The disk only a template needs could not be made (a full disk, ...): the run
		 * boots cold as it would have, without a template. */
		hc_debug("warm start: no %s rootfs (%s): booting cold", "block", err->message);
		spec->rootfs_mode = cold_mode;
		spec->channel = cold_channel;
		b->snapshot_modes = false;
		memset(err, 0, sizeof(*err));
		r = b->ops->probe(spec, NULL, 0, err);
		if (r >= 0)
			r = hc_lib_image_prepare(store, o, spec->rootfs_mode == HC_ROOTFS_BLOCK,
						 &b->image, err);
	}
	if (r >= 0)
		r = check_cancel(o, err);
	if (r < 0)
		return r;
	b->t_rootfs_ms = hc_clock_ms() - t;
	spec->rootfs_dir = b->image.tree;
	spec->rootfs_disk = b->image.disk[0] ? b->image.disk : NULL;
	return 0;
}

int hc_lib_boot_start(struct hc_lib_boot *b, struct hc_error *err)
{
	double t = hc_clock_ms();
	int r;

	r = hc_lib_net_attach(b->o, b->ops, &b->spec, &b->net, err);
	if (r < 0)
		return r;
	r = hc_vm_new(&b->vm, b->ops, &b->spec, err);
	if (r < 0)
		return r;
	r = hc_vm_start(b->vm, err);
	hc_debug("VM started in %.1f ms", hc_clock_ms() - t);
	if (r < 0) {
		hc_error_kind(err, HC_EK_VM);
		return r;
	}
	if (b->vm->agent_fd < 0 && b->vm->agent_listen_fd < 0)
		return hc_error_setk(err, -EINVAL, HC_EK_INTERNAL,
				     "backend '%s' gave no agent channel", b->ops->name);
	return 0;
}

int hc_lib_boot_failure(struct hc_lib_boot *b, int code, const char *what, struct hc_error *err)
{
	struct hc_error e = {0};
	int r;

	if (b->vm->death_fd >= 0) {
		struct pollfd p = {.fd = b->vm->death_fd, .events = POLLIN};

		poll(&p, 1, 1000); /* let a dying VMM finish, so its state says why */
	}
	r = hc_vm_check(b->vm, &e);
	if (r < 0)
		hc_error_setk(err, r, HC_EK_VM, "the VM failed while booting: %s", e.message);
	else
		hc_error_setk(err, code, HC_EK_VM, "%s", what);
	hc_vm_error_add_console(b->vm, err);
	return err->code;
}

int hc_lib_boot_wait(struct hc_lib_boot *b, double deadline_ms, int fd, short events, int cancel_fd,
		     short *ret_revents, struct hc_error *err)
{
	for (;;) {
		struct pollfd p[3] = {
			{.fd = fd, .events = events},
			{.fd = b->vm->death_fd, .events = POLLIN},
			{.fd = cancel_fd, .events = POLLIN},
		};
		int timeout = hc_clock_left_ms(deadline_ms);

		if (timeout == 0) {
			hc_error_setk(err, -ETIMEDOUT, HC_EK_VM,
				      "the guest did not answer within the boot timeout (%.0f s)",
				      b->spec.boot_timeout_ms / 1000.0);
			hc_vm_error_add_console(b->vm, err);
			return err->code;
		}
		if (poll(p, 3, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return hc_error_errno(err, -errno, "poll");
		}
		if (p[2].revents)
			return hc_error_setk(err, -ECANCELED, "cancelled",
					     "interrupted while booting");
		if (p[1].revents) {
			struct hc_error e = {0};

			if (hc_vm_check(b->vm, &e) < 0)
				return hc_lib_boot_failure(b, -EIO, "the VM died while booting",
							   err);
		}
		if (p[0].revents) {
			*ret_revents = p[0].revents;
			return 0;
		}
	}
}

int hc_lib_boot_accept(struct hc_lib_boot *b, double deadline_ms, int cancel_fd, int *ret_agent,
		       struct hc_error *err)
{
	if (b->vm->agent_fd >= 0) {
		*ret_agent = b->vm->agent_fd;
		b->vm->agent_fd = -1; /* ours now */
		fcntl(*ret_agent, F_SETFL, fcntl(*ret_agent, F_GETFL) | O_NONBLOCK);
		return 0;
	}
	for (;;) {
		short re;
		int r, fd;

		r = hc_lib_boot_wait(b, deadline_ms, b->vm->agent_listen_fd, POLLIN, cancel_fd, &re,
				     err);
		if (r < 0)
			return r;
		fd = accept4(b->vm->agent_listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			*ret_agent = fd;
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			return hc_error_errno(err, -errno, "accept the agent channel");
	}
}

void hc_lib_boot_teardown(struct hc_lib_boot *b, int agent, bool hard)
{
	if (b->vm) {
		/* The host ends the VM; a shutdown frame first lets a healthy guest know. */
		if (agent >= 0 && !hard &&
		    hc_proto_frame_write(agent, HC_FRAME_SHUTDOWN, 0, NULL, 0) < 0)
			hc_debug("shutdown frame not sent: the channel is gone");
		hc_vm_free(b->vm);
		b->vm = NULL;
	}
	hc_lib_net_detach(&b->net);
	hc_lib_image_release(&b->image);
}
