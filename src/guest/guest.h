/* SPDX-License-Identifier: MIT */
/*
 * hotcell-init: the guest side of docs/protocol.md. Static, normally PID 1 in the initramfs,
 * also a subreaper under libkrun's init, and a plain process in test mode (--serve-fd).
 *
 *   main.c   start-up, modes, ending the VM
 *   boot.c   the boot contract: command line, mounts, rootfs overlay, switch root, channel
 *   agent.c  the serve loop: frames in, command I/O out, reaping, timeouts
 *   exec.c   starting one command: user, workdir, $PATH lookup, fork/exec
 *   users.c  /etc/passwd and /etc/group of the image (no NSS in a static binary)
 *   executor.c  the executors' handler wrappers, written to GUEST_RUNTIME_DIR at boot
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "core/util.h"
#include "proto/boot.h"
#include "proto/proto.h"

#define GUEST_AGENT_VERSION "hotcell-init 0.1"
#define GUEST_MAX_VOLUMES 16
#define GUEST_MAX_GROUPS 256
/* Detached commands write their output to GUEST_LOG_DIR/exec-<pid>.log. */
#define GUEST_LOG_DIR "/var/log/hotcell"
/* The executors' handler wrappers (python.py, node.js; docs/executors.md). */
#define GUEST_RUNTIME_DIR "/hotcell/runtime"

extern bool guest_debug;

/* Console logging: "hotcell-init: ..." on stderr (the console in a VM). */
void guest_log(const char *fmt, ...) _printf_(1, 2);
/* Debug lines carry the guest's CLOCK_BOOTTIME, to see where boot time goes. */
void guest_log_debug(const char *fmt, ...) _printf_(1, 2);
/* mkdir -p: every missing component of path with mode; -errno on failure. */
int guest_mkdir_p(const char *path, mode_t mode);
#define guest_dbg(...)                                                                             \
	do {                                                                                       \
		if (guest_debug)                                                                   \
			guest_log_debug(__VA_ARGS__);                                              \
	} while (0)

/* ---- executor.c ---- */

/* Writes the handler wrappers into GUEST_RUNTIME_DIR (mode 0444). -errno on failure. */
int guest_executor_install(void);

/* ---- users.c ---- */

struct guest_user {
	uid_t uid;
	gid_t gid;
	gid_t groups[GUEST_MAX_GROUPS]; /* supplementary groups, the primary one included */
	size_t ngroups;
	char home[PATH_MAX];
};

/* Resolves "", "name", "uid", "name:group", "uid:gid" against ETC/passwd and ETC/group.
 * Returns 0, or -ENOENT (unknown name) / -EINVAL (bad spec) with a message in msg. */
int guest_user_resolve(const char *etc, const char *spec, struct guest_user *ret, char *msg,
		       size_t msglen) _must_check_;

/* ---- exec.c ---- */

struct guest_proc {
	pid_t pid;  /* also the process group and session id */
	int in_fd;  /* write end of the command's stdin, -1 when stdin is /dev/null */
	int out_fd; /* read ends, non-blocking */
	int err_fd; /* -1 with a tty: stderr is the pty too */
	bool tty;   /* out_fd is the pty's master (in_fd a dup of it with STDIN) */
};

struct guest_exec_opts {
	const char *etc;     /* where passwd and group are ("/etc") */
	const char *log_dir; /* where a detached command's exec-<pid>.log goes */
};

/* Starts the command of e (a DETACH one with stdin /dev/null and its output in
 * o->log_dir/exec-<pid>.log). On failure fills *err (reason and message), returns -errno. */
int guest_exec_start(const struct hc_proto_exec *e, const struct guest_exec_opts *o,
		     struct guest_proc *ret, struct hc_proto_error *err) _must_check_;

/* ---- agent.c ---- */

enum guest_chan_kind {
	GUEST_CHAN_FD,	   /* test mode: a socket or pipe given on the command line */
	GUEST_CHAN_SERIAL, /* virtio-serial port: HUP means the host went away */
	GUEST_CHAN_VSOCK,  /* AF_VSOCK: a reset (restore) waits for the host to reconnect */
};

struct guest_agent_opts {
	enum guest_chan_kind kind;
	int chan_fd;   /* connected channel, or -1 (vsock: wait for the listener) */
	int listen_fd; /* vsock listener (HC_BOOT_VSOCK_PORT_LISTEN) or -1 */
	const char *result_path;
	const char *etc;
	const char *log_dir; /* GUEST_LOG_DIR, or another in test mode */
	bool test_mode;	     /* RESEED leaves the clock alone and credits no entropy */
};

/* Serves requests until SHUTDOWN or the channel closes; kills and reaps what still runs.
 * Returns 0 on an orderly end, -errno when the channel failed. */
int guest_agent_serve(const struct guest_agent_opts *o);
/* Reaps every exited child; returns the wait status of pid through *ret_status when it was
 * among them (1), else 0. */
int guest_reap(pid_t pid, int *ret_status);

/* ---- boot.c ---- */

struct guest_volume {
	char tag[64];
	char path[PATH_MAX];
	bool ro;
};

struct guest_boot_cfg {
	char root[16];	  /* "virtiofs" | "block" */
	char channel[16]; /* "serial" | "vsock" */
	char hostname[65];
	struct guest_volume vols[GUEST_MAX_VOLUMES];
	size_t nvols;
	bool debug;
	bool root_rw; /* hotcell.root_rw=1: the virtio-fs root itself, read-write */
	bool root_ro; /* hotcell.root_ro=1 (--read-only) */
	/* Networking (hotcell.ip/gw/dns/mtu, network byte order; ip 0: no network). */
	uint32_t ip, gw, dns;
	unsigned prefix, mtu;
	/* hotcell.host=NAME:IP (--add-host), in order. */
	struct {
		char name[65];
		char ip[46];
	} hosts[HC_BOOT_MAX_HOSTS];
	size_t nhosts;
	/* hotcell.tmpfs=PATH[:OPTS] (--tmpfs), in order. */
	struct {
		char path[256];
		char opts[256];
	} tmpfs[HC_BOOT_MAX_TMPFS];
	size_t ntmpfs;
	/* hotcell.nameserver=IP (--dns), in order. */
	char nameservers[HC_BOOT_MAX_NAMESERVERS][46];
	size_t nnameservers;
};

/* Parses a kernel command line (space separated, "double quotes" group). */
int guest_boot_parse_cmdline(const char *cmdline, struct guest_boot_cfg *ret, char *msg,
			     size_t msglen) _must_check_;
/* Sets up everything up to the switched root; msg says what failed. */
int guest_boot_setup(bool pid1, struct guest_boot_cfg *cfg, char *msg, size_t msglen) _must_check_;
/* net.c: configures eth0 from cfg (address, default route, MTU) and writes /etc/resolv.conf
 * and /etc/hosts into the overlay; a no-op without hotcell.ip. Called in the switched root. */
int guest_net_setup(const struct guest_boot_cfg *cfg, char *msg, size_t msglen) _must_check_;
/* net.c: moves eth0 to the network of a restored or forked copy (NETCONF, docs/protocol.md):
 * its MAC, address, netmask, MTU and default route, and the old address's lines in
 * /etc/hosts and the old gateway's nameserver line in /etc/resolv.conf (others are kept). */
int guest_net_reconfigure(const struct hc_proto_netconf *n, char *msg, size_t msglen) _must_check_;
/* net.c: appends cfg's hotcell.host lines (--add-host) to /etc/hosts (the one networking
 * wrote, else the image's, else localhost alone), written into the overlay the same way; a
 * no-op without them. Called in the switched root, after guest_net_setup. */
int guest_hosts_setup(const struct guest_boot_cfg *cfg, char *msg, size_t msglen) _must_check_;
/* net.c: writes cfg's hotcell.nameserver lines (--dns) as /etc/resolv.conf into the
 * overlay, replacing what networking wrote; a no-op without them. */
int guest_dns_setup(const struct guest_boot_cfg *cfg, char *msg, size_t msglen) _must_check_;
/* Opens the agent channel of cfg (bounded wait for the device or the host). */
int guest_boot_channel(const struct guest_boot_cfg *cfg, struct guest_agent_opts *o, char *msg,
		       size_t msglen) _must_check_;
