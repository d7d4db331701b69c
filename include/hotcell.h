/* SPDX-License-Identifier: MIT */
/*
 * hotcell — run a command from an OCI image in a hardware-isolated micro-VM.
 *
 * This is the only header users include. Conventions:
 *  - functions return 0 (or a count) on success and a negative errno on failure;
 *  - details of a failure go into a caller-owned struct hc_error, filled only on failure;
 *  - handles are opaque; every *_free / *_close accepts NULL;
 *  - nothing here prints or exits.
 */
#ifndef HOTCELL_H
#define HOTCELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(HC_BUILDING_LIBRARY)
#define HC_EXPORT __attribute__((visibility("default")))
#else
#define HC_EXPORT
#endif

#define HC_VERSION "0.1.0"

/* ---- errors ---------------------------------------------------------------------------- */

struct hc_error {
	int code;	   /* negative errno */
	char kind[32];	   /* "usage", "image", "registry", "rootfs", "backend", "vm", "io", ... */
	char message[768]; /* one line, with context prefixed by each layer */
};

/* Describes a negative errno (or 0) as a string; never NULL. */
HC_EXPORT const char *hc_strerror(int code);
/* The library version, HC_VERSION. */
HC_EXPORT const char *hc_version(void);

/* ---- logging --------------------------------------------------------------------------- */

/* The library never prints. Install a sink to see its diagnostics; level 0 debug .. 3 error.
 * HOTCELL_LOG=debug|info|warn|error in the environment sets the threshold (default warn). */
typedef void (*hc_log_fn)(int level, const char *message, void *userdata);
HC_EXPORT void hc_set_log_handler(hc_log_fn fn, void *userdata);

/* ---- images ---------------------------------------------------------------------------- */

struct hc_store; /* an OCI image layout plus the rootfs/disk caches, under the state dir */

/* Opens (creating) the store under state_dir, or the default state directory when NULL
 * ($HOTCELL_HOME, /var/lib/hotcell for root, $XDG_DATA_HOME/hotcell otherwise). */
HC_EXPORT int hc_store_open(const char *state_dir, struct hc_store **ret, struct hc_error *err);
HC_EXPORT void hc_store_close(struct hc_store *store);

/* Called during a pull with bytes done/total per blob (total 0 when unknown). */
typedef void (*hc_progress_fn)(const char *digest, uint64_t done, uint64_t total, void *userdata);

/* A zero-initialised struct is the default everywhere. */
struct hc_pull_opts {
	const char *platform; /* "os/arch[/variant]"; NULL: the host's */
	bool insecure;	      /* allow plain HTTP for this registry */
	hc_progress_fn progress;
	void *userdata;
	/* Blobs the store has already are reused after a size check (a damaged one is fetched
	 * again); verify also checks their sha256, reading each one in full. */
	bool verify;
	/* Cancellation, off unless cancel_fd_set: when cancel_fd becomes readable (a signal
	 * handler writes to a pipe) the pull stops within a second and returns -ECANCELED,
	 * leaving the store as it was. The fd is only polled, never read. */
	bool cancel_fd_set;
	int cancel_fd;
};

/* Pulls ref into the store. On success writes the platform manifest digest
 * ("sha256:<64 hex>", NUL-terminated) into ret_digest (at least 72 bytes) when non-NULL.
 * A transfer that averages under HOTCELL_PULL_MIN_RATE bytes/s (default 1024; 0: no limit)
 * over HOTCELL_PULL_RATE_WINDOW seconds (default 30) is abandoned, not retried: the pull fails
 * naming the blob (-ETIMEDOUT). */
HC_EXPORT int hc_image_pull(struct hc_store *store, const char *ref,
			    const struct hc_pull_opts *opts, char *ret_digest,
			    struct hc_error *err);
/* Imports an OCI layout directory, an oci-archive or a docker-archive tar. name overrides (or
 * supplies) the reference; a layout entry whose ref.name is only a tag ("latest", as umoci
 * writes) is named "localhost/<tag>". Blobs the store has are reused after a size check (a
 * damaged one is imported again). Writes the digest like hc_image_pull. */
HC_EXPORT int hc_image_load(struct hc_store *store, const char *path, const char *name,
			    char *ret_digest, struct hc_error *err);

struct hc_image_info {
	char *name;		/* full normalised reference, "docker.io/library/alpine:3.20" */
	char digest[72];	/* platform manifest digest */
	uint64_t size;		/* config + layers, compressed */
	char *created;		/* RFC 3339 from the image config, or NULL */
	uint64_t template_size; /* disk used by its warm-start templates (docs/warm-start.md) */
};
HC_EXPORT int hc_image_list(struct hc_store *store, struct hc_image_info **ret, size_t *ret_n,
			    struct hc_error *err);
HC_EXPORT void hc_image_list_free(struct hc_image_info *list, size_t n);
/* Removes a name; blobs stay until hc_store_prune. -EBUSY when the image is in use by a run.
 * By digest (or an unambiguous prefix), every name of that image. */
HC_EXPORT int hc_image_remove(struct hc_store *store, const char *ref, struct hc_error *err);
/* The same, as podman rmi: by digest, an image of several names is refused (-ENOTUNIQ)
 * unless force; untagged(name) is called for each name removed (may be NULL). A short name
 * ("test/bb:1") is docker.io's, else a local one's (localhost/test/bb:1). */
HC_EXPORT int hc_image_untag(struct hc_store *store, const char *ref, bool force,
			     void (*untagged)(const char *name, void *userdata), void *userdata,
			     struct hc_error *err);
/* Removes blobs, rootfs trees and disks that no image references and no run uses, and every
 * temp entry (half-unpacked tree, half-built disk, half-written blob) whose writer is gone.
 * Returns the number of items removed. */
HC_EXPORT int hc_store_prune(struct hc_store *store, struct hc_error *err);

/* One thing wrong in the store. */
struct hc_store_problem {
	char *object;  /* the image name (or digest) it concerns, or the blob's digest */
	char *problem; /* one line */
};
/* Verifies the whole store: every index entry's manifest (and nested indexes), config and
 * layers are present with their descriptor's size and digest, and every other blob's content
 * matches its name. Reads every blob once. Returns the number of problems (0: healthy) and the
 * list in *ret (free with hc_store_problems_free), or -errno when the check itself failed.
 * `hotcell pull` (or `load`) of an image repairs its blobs. */
HC_EXPORT int hc_store_check(struct hc_store *store, struct hc_store_problem **ret, size_t *ret_n,
			     struct hc_error *err);
HC_EXPORT void hc_store_problems_free(struct hc_store_problem *list, size_t n);

/* ---- running --------------------------------------------------------------------------- */

enum hc_accel { HC_ACCEL_AUTO, HC_ACCEL_KVM, HC_ACCEL_TCG };
enum hc_rootfs_mode { HC_ROOTFS_AUTO, HC_ROOTFS_DIR, HC_ROOTFS_BLOCK };
enum hc_channel { HC_CHANNEL_AUTO, HC_CHANNEL_SERIAL, HC_CHANNEL_VSOCK };
enum hc_network { HC_NET_NONE, HC_NET_INET, HC_NET_FULL };
/* NEWER (podman's --pull newer): pull when the registry's digest differs from the local one;
 * a failed pull falls back to the local image when there is one. */
enum hc_pull_policy { HC_PULL_MISSING, HC_PULL_ALWAYS, HC_PULL_NEVER, HC_PULL_NEWER };

struct hc_volume {
	const char *host;
	const char *guest;
	bool readonly;
};

struct hc_port {
	uint16_t host;
	uint16_t guest;
	uint32_t host_ip; /* network byte order; 0: 127.0.0.1 */
	bool udp;	  /* /udp: datagrams relayed per client address (docs/network.md) */
};

/* Parses a -p value "[IP:]HOSTPORT:GUESTPORT[/tcp|/udp]" into *ret. 0, or -EINVAL with err
 * saying what is wrong. */
HC_EXPORT int hc_port_parse(const char *s, struct hc_port *ret, struct hc_error *err);

/* hc_run_opts.timeout_s: no command timeout at all (the CLI's default, as podman). */
#define HC_TIMEOUT_NONE (-1.0)

#define HC_MAX_ADD_HOSTS 8 /* --add-host entries a run takes */
#define HC_MAX_TMPFS 8	   /* --tmpfs (and --mount type=tmpfs) entries */
#define HC_MAX_DNS 3	   /* --dns servers (resolv.conf's MAXNS) */

struct hc_run_opts {
	const char *image;	/* reference; NULL when rootfs_dir is set */
	const char *rootfs_dir; /* --rootfs: a plain directory tree (no image config) */
	const char
		*backend; /* "auto" (NULL), "qemu", "firecracker", "cloud-hypervisor", "libkrun" */
	unsigned cpus;	  /* 0: 1 */
	unsigned memory_mib;   /* 0: 256 */
	double timeout_s;      /* command timeout, from the command's start; 0: 30;
				* HC_TIMEOUT_NONE (any negative value): none */
	double boot_timeout_s; /* 0: 60 */

	const char *const *cmd; /* user's CMD (may be empty) */
	size_t n_cmd;
	const char *entrypoint; /* --entrypoint; NULL: the image's */
	const char *const *env; /* KEY=VALUE (or KEY: the host's value) */
	size_t n_env;
	const char *workdir; /* NULL: the image's */
	const char *user;    /* NULL: the image's */

	const struct hc_volume *volumes;
	size_t n_volumes;
	enum hc_network network;
	const struct hc_port *ports;
	size_t n_ports;

	/* Streaming: when stdout_fd/stderr_fd >= 0, output is written there as it arrives;
	 * otherwise it is captured into the result up to output_limit bytes each. */
	int stdin_fd; /* >= 0 with interactive: forwarded to the command */
	int stdout_fd;
	int stderr_fd;
	bool interactive;
	size_t output_limit; /* 0: 1 MiB */
	/* -t: the command runs on a pty in the guest (its own session, the pty as controlling
	 * terminal); stdout and stderr are then one stream, written to stdout_fd. TERM is the
	 * host's (xterm when unset) unless the image or env sets it. tty_fd >= 0: the user's
	 * terminal, whose size the pty gets at the start and each time winch_fd (>= 0) becomes
	 * readable (a SIGWINCH handler writes to a pipe; hc_run drains it). The library never
	 * changes tty_fd's modes: raw mode is the caller's. */
	bool tty;
	int tty_fd;
	int winch_fd;
	const char *term; /* -t: the TERM default; NULL: this process's $TERM (else xterm) */
	/* Called once the command runs (the guest's STARTED), with its guest pid: where the CLI
	 * puts the user's terminal in raw mode, so that Ctrl-C before it (pull, boot) still
	 * cancels. May be NULL. */
	void (*on_started)(void *userdata, unsigned pid);
	void *userdata;
	/* When >= 0 (with cancel_fd): each byte read is a signal number (1..64) for the command
	 * (podman's --sig-proxy: SIGUSR1, SIGQUIT, ... sent to hotcell); before the command runs
	 * such a byte cancels the run as a cancel_fd byte does. */
	int signal_fd;

	const char *kernel; /* NULL: HOTCELL_KERNEL, else the project's kernel */
	enum hc_accel accel;
	enum hc_rootfs_mode rootfs_mode;
	enum hc_channel channel;
	enum hc_pull_policy pull;
	bool jailer;
	const char *const *devices; /* PCI addresses for VFIO */
	size_t n_devices;
	/* With rootfs_dir (--rootfs-rw, QEMU, DIR mode): the guest's root is the directory itself,
	 * shared read-write over virtio-fs, no overlay: what the guest writes lands in it (the
	 * OCI runtime's bundle rootfs). Off: the directory is read-only under a tmpfs overlay. */
	bool rootfs_rw;
	const char *hostname; /* --hostname: the guest's; NULL: "hotcell"; [A-Za-z0-9.-]{1,64} */
	/* --add-host: "NAME:IP" lines of the guest's /etc/hosts (in its overlay; the image's
	 * file is never changed), at most HC_MAX_ADD_HOSTS. */
	const char *const *add_hosts;
	size_t n_add_hosts;
	/* --read-only: the guest's root is mounted read-only after setup; /tmp, /run, /var/tmp
	 * and /hotcell are fresh tmpfs mounts, /dev and volumes keep their own modes. */
	bool read_only;

	/* When >= 0: becomes readable when the run must be cancelled (a signal handler writes
	 * to a pipe). One byte: orderly teardown (the command gets SIGTERM and 2 s to end, then
	 * the VM is ended); a second byte (or EOF): the VM is ended at once. Either way the run
	 * returns -ECANCELED and leaves nothing behind. */
	int cancel_fd;

	/* --allow-host (with --network inet|full on QEMU, Firecracker, Cloud Hypervisor): only
	 * these names resolve in the guest, and only their addresses are reachable. "NAME" is
	 * NAME and its subdomains, "*.NAME" only its subdomains. */
	const char *const *allow_hosts;
	size_t n_allow_hosts;
	/* --no-jail: the VMM-side processes (QEMU, virtiofsd, vhost-device-vsock) run without
	 * hotcell's jail (docs/security.md). The jail is on by default when running as root. */
	bool no_jail;
	/* --cold: boot from scratch, never from (nor into) a template. Off: a run of a cached
	 * image restores the image's template, building it on the first run (docs/warm-start.md);
	 * runs that cannot be restored (volumes, a directory rootfs, a network, a jailed VMM)
	 * boot cold anyway. */
	bool cold;

	/* --platform OS/ARCH[/VARIANT] for a pull; NULL: the host's. A VM runs guests of the
	 * host's architecture only: another one is refused. */
	const char *platform;
	/* --tmpfs: "PATH[:OPTS]" (OPTS podman's: size=, mode=, uid=, gid=, nr_inodes=, ro, rw,
	 * [no]exec, [no]suid, [no]dev; default rw,noexec,nosuid,nodev), a fresh tmpfs mounted on
	 * PATH in the guest, at most HC_MAX_TMPFS. */
	const char *const *tmpfs;
	size_t n_tmpfs;
	/* --dns: nameserver addresses (IPv4/IPv6) of the guest's /etc/resolv.conf (in its
	 * overlay), replacing what networking would write; at most HC_MAX_DNS. */
	const char *const *dns;
	size_t n_dns;
	/* With signal_fd: once SIGINT, SIGTERM or SIGHUP has been forwarded to the command, it
	 * has this long to end before the VM is ended (exit 137, podman's --stop-timeout); a
	 * second one within 2 s ends it at once. 0: 10 s. */
	double stop_timeout_s;
	/* The server's warm pool (hc_warm_pool_new; NULL: none): a run whose template key (and
	 * --no-jail) has a VM waiting there takes it instead of restoring ("start": "pool"), and
	 * a run that used or built a template makes the pool keep VMs of its key. */
	struct hc_warm_pool *warm_pool;
};

/* Fills defaults: stdio fds -1, cancel_fd -1, everything else zero. */
HC_EXPORT void hc_run_opts_init(struct hc_run_opts *opts);

struct hc_run_result {
	char backend[32];
	char accel[8]; /* "kvm" / "tcg" */
	char *image;   /* normalised reference, or NULL with rootfs_dir */
	char image_digest[72];
	int exit_code; /* -1 when killed by a signal or the timeout */
	int signal;    /* 0 when none */
	bool timed_out;
	char *stdout_data; /* captured output (when not streamed) */
	size_t stdout_len;
	bool stdout_truncated;
	char *stderr_data;
	size_t stderr_len;
	bool stderr_truncated;
	char *result_json;  /* /hotcell/result.json, validated JSON, or NULL */
	char *result_error; /* why result_json is NULL although the command wrote one */
	double t_rootfs_ms, t_boot_ms, t_exec_ms, t_teardown_ms, t_total_ms;
	/* Parts of t_boot_ms: starting the VMM and its helpers until the VMM runs the guest
	 * (t_vm_start_ms), and the guest's own clock when it said hello (t_guest_boot_ms: kernel
	 * and hotcell-init, as the guest counts it; 0 when the guest did not say). */
	double t_vm_start_ms, t_guest_boot_ms;
	bool jailed; /* the VMM-side processes ran jailed ("jailed" in the JSON object) */
	/* Restored from the image's template ("start": "warm"; else "cold"): t_restore_ms is the
	 * restore (VMM start to the guest's acknowledged reseed), and t_boot_ms is 0. A cold run
	 * that saved the template has the save's time in t_template_ms. */
	bool warm;
	double t_restore_ms, t_template_ms;
	/* Taken from the warm pool ("start": "pool", with warm also set): t_take_ms is the take
	 * (liveness check, HOSTNAME and RESEED acknowledged); t_restore_ms is then 0. */
	bool pooled;
	double t_take_ms;
};

/* Runs one command in a fresh micro-VM and tears it down. Returns 0 when the command ran
 * (whatever its exit code), a negative errno with err set when hotcell itself failed. When the
 * guest refused to exec the command (not found, bad workdir, ...), returns -ENOENT / -EACCES /
 * -ENOTDIR ... with err->kind "exec" and result->exit_code 127 / 126. */
HC_EXPORT int hc_run(struct hc_store *store, const struct hc_run_opts *opts,
		     struct hc_run_result *result, struct hc_error *err);
HC_EXPORT void hc_run_result_free(struct hc_run_result *result);
/* The shell-like exit status of a result: code, 128+signal, or 124 for a timeout. */
HC_EXPORT int hc_run_result_status(const struct hc_run_result *result);
/* The result JSON object (docs/design.md) (malloc'd, NUL-terminated). */
HC_EXPORT char *hc_run_result_to_json(const struct hc_run_result *result);
/* The same object with an "error": { "kind", "message" } member added when err is non-NULL:
 * used when the guest refused to start the command (exit 126/127), so the caller sees both
 * the result and why. */
HC_EXPORT char *hc_run_result_to_json_error(const struct hc_run_result *result,
					    const struct hc_error *err);
/* The result-contract object for hotcell's own failures (exit 125):
 * { "error": { "kind": "...", "message": "..." } } (malloc'd, NUL-terminated). */
HC_EXPORT char *hc_error_to_json(const struct hc_error *err);

/* ---- the warm pool (`hotcell serve --warm-pool N`, docs/warm-start.md) ------ */

/* Up to per_key VMs per template key restored ahead of time by a refill thread of the
 * pool's own; hand it to runs in hc_run_opts.warm_pool. hc_warm_pool_free ends every VM
 * still waiting (and must come after the last run that was given the pool has returned:
 * the VMMs die with the refill thread). */
#define HC_WARM_POOL_MAX 16
struct hc_warm_pool;
HC_EXPORT int hc_warm_pool_new(unsigned per_key, struct hc_warm_pool **ret, struct hc_error *err);
HC_EXPORT void hc_warm_pool_free(struct hc_warm_pool *pool);
struct hc_warm_pool_stats {
	unsigned per_key, keys, waiting;     /* now */
	unsigned restored, taken, discarded; /* since the start */
};
HC_EXPORT void hc_warm_pool_stats(struct hc_warm_pool *pool, struct hc_warm_pool_stats *ret);

/* ---- persistent VMs (`hotcell vm ...`, docs/vm.md) ------------------------ */

/* A persistent VM outlives the call that made it. One supervisor process per VM (started
 * detached by hc_pvm_create) owns the VMM and its helpers, the agent channel and the console
 * log; every hc_pvm_* call below is a short-lived client of it, talking over the control
 * socket in the VM's runtime dir (mode 0600; the supervisor accepts the same uid or root).
 * State: $HOTCELL_HOME/vms/<id>/vm.json. A VM is named by its id (64 hex digits), an
 * unambiguous prefix of the id, or its name. The hc_vm_* names belong to the backend layer,
 * hence hc_pvm_ ("persistent VM"). */

enum hc_pvm_status {
	HC_PVM_RUNNING, /* the guest runs */
	HC_PVM_PAUSED,	/* hc_pvm_pause: vCPUs stopped, memory kept */
	HC_PVM_STOPPED, /* ended on purpose: hc_pvm_stop, idle timeout, lifetime */
	HC_PVM_DEAD,	/* ended unexpectedly: the VMM or the supervisor died */
	HC_PVM_CREATING /* booting, not yet answering */
};
/* "running", "paused", "stopped", "dead", "creating". */
HC_EXPORT const char *hc_pvm_status_name(enum hc_pvm_status s);

#define HC_PVM_ID_LEN 64 /* hex digits; buffers are HC_PVM_ID_LEN + 1 */

/* An OCI container's process (hotcell-runtime, docs/runtime.md): a VM created with a
 * workload has a supervisor that is the container's process. It waits for hc_pvm_start, then
 * runs cmd (with the VM's env, workdir and user) on the stdio given here, passes every signal
 * it gets on to the command as that signal (hc_pvm_kill too), and when the command ends it
 * ends the VM and exits with the command's status (code, 128+signal; 137 when the VM ended
 * first). Its pid is vm.json's "pid" (hc_pvm_inspect). */
struct hc_pvm_workload {
	const char *const *cmd; /* required */
	size_t n_cmd;
	/* Handed to the supervisor (the caller keeps its copies). With tty, all three are the
	 * slave of a host pty: the supervisor takes it as its controlling terminal in raw mode,
	 * the command runs on a pty in the guest of the same size, and the host pty's size
	 * changes (SIGWINCH) are passed on. */
	int stdin_fd, stdout_fd, stderr_fd;
	bool tty;
};

struct hc_pvm_create_opts {
	/* The run options that apply to a VM: image or rootfs_dir, backend, cpus, memory_mib,
	 * boot_timeout_s, env / workdir / user (the defaults of every exec), volumes, network,
	 * ports, kernel, accel, rootfs_mode, channel, pull, jailer, devices. cmd, entrypoint,
	 * the stdio fds, interactive, timeout_s and output_limit are not used. */
	const struct hc_run_opts *run;
	const char *name; /* NULL: none; else unique among the VMs, [A-Za-z0-9][A-Za-z0-9_.-]* */
	double idle_timeout_s; /* > 0: stop after this long with no command running and no client */
	double lifetime_s;     /* > 0: stop this long after the VM was created */
	/* Set instead of booting: the supervisor restores this snapshot directory (written by
	 * `vm snapshot`) and the VM's spec comes from there. */
	const char *restore_dir;
	/* A migration's destination (docs/migration.md; the server sets these): the restored VM
	 * stays paused (and refuses hc_pvm_resume) until its migration is committed, and ends
	 * by itself when no commit came within commit_timeout_s (<= 0: 300 s). owned_dir (NULL:
	 * none) is a directory under $HOTCELL_HOME/migrate that the VM owns: removed with it. */
	bool restore_paused;
	double commit_timeout_s;
	const char *owned_dir;
	const struct hc_pvm_workload *workload; /* NULL: a plain VM */
};

/* Creates a VM and returns once its guest has answered (HELLO), writing its id into ret_id
 * (HC_PVM_ID_LEN + 1 bytes). A failure of the boot comes back as err (one line: the same
 * reasons as hc_run's, with the console's last lines) and leaves nothing behind. -EUSERS past
 * HOTCELL_MAX_PERSISTENT_VMS (default 64) live VMs; -EEXIST for a name in use. store is the
 * image store (NULL with rootfs_dir). */
HC_EXPORT int hc_pvm_create(struct hc_store *store, const struct hc_pvm_create_opts *o,
			    char *ret_id, struct hc_error *err);

/* Resolves a VM reference (id, unambiguous id prefix, or name) to its id. -ENOENT when none
 * matches, -EINVAL (with the candidates) when a prefix is ambiguous. */
HC_EXPORT int hc_pvm_resolve(const char *ref, char *ret_id, struct hc_error *err);

struct hc_pvm_info {
	char id[HC_PVM_ID_LEN + 1];
	char *name;  /* NULL when none */
	char *image; /* normalised reference, or NULL with a rootfs dir */
	char digest[72];
	char backend[32];
	enum hc_pvm_status status; /* live: a dead supervisor (pid + start time) reads as dead */
	char created[40];	   /* RFC 3339, UTC */
	int pid;		   /* the supervisor's; 0 once it has ended */
};
/* Every VM, oldest first. */
HC_EXPORT int hc_pvm_list(struct hc_pvm_info **ret, size_t *ret_n, struct hc_error *err);
HC_EXPORT void hc_pvm_list_free(struct hc_pvm_info *list, size_t n);
/* The `vm ls --json` array: [{id, name, image, backend, status, created, pid}] (malloc'd). */
HC_EXPORT char *hc_pvm_list_to_json(const struct hc_pvm_info *list, size_t n);
/* The `vm inspect` object (malloc'd JSON): vm.json (id, name, image, digest, backend, spec,
 * created, status, pid, pid_start, runtime_dir, ...) with the live status, and for a dead VM
 * "console_tail" (its console's last lines) and "error" when known. */
HC_EXPORT int hc_pvm_inspect(const char *ref, char **ret_json, struct hc_error *err);

struct hc_pvm_exec_opts {
	const char *const *cmd; /* argv; required */
	size_t n_cmd;
	const char *const *env; /* KEY=VALUE (KEY alone: the caller's value), on top of the VM's */
	size_t n_env;
	const char *workdir; /* NULL: the VM's (-w at create, else the image's) */
	const char *user;    /* NULL: the VM's */
	double timeout_s;    /* 0: none */
	bool detach;	     /* keep running after the call returns; output to a guest log */
	int stdin_fd;	     /* >= 0: forwarded to the command, EOF closes its stdin; -1: none */
	int stdout_fd;	     /* the command's output is written here as it arrives (-1: dropped) */
	int stderr_fd;
	/* >= 0: readable when the call must end: one byte sends SIGTERM to the command, a
	 * second (or EOF) abandons it (SIGKILL); hc_pvm_exec then returns -ECANCELED. */
	int cancel_fd;
	/* With n_cmd 0: the image's entrypoint and command, as a run would start them (`run
	 * -d` without CMD); otherwise, as podman exec, the command as given, no entrypoint. */
	bool image_command;
	/* -t, as hc_run_opts's tty, tty_fd, winch_fd, term and on_started/userdata (the window
	 * size travels through the supervisor). */
	bool tty;
	int tty_fd, winch_fd;
	const char *term;
	void (*on_started)(void *userdata, unsigned pid);
	void *userdata;
};
/* Fills defaults: fds -1, everything else zero. */
HC_EXPORT void hc_pvm_exec_opts_init(struct hc_pvm_exec_opts *o);

struct hc_pvm_exec_result {
	int exit_code; /* -1 when killed by a signal or the timeout */
	int signal;    /* 0 when none */
	bool timed_out;
	int pid; /* the command's pid in the guest */
	double t_exec_ms;
};
/* Runs a command in a running VM (any number at once), streaming its stdio. Returns 0 when it
 * ran (whatever its exit code; with detach, once it started), or a negative errno: the guest
 * could not start it (err->kind "exec", res->exit_code 126/127 as in hc_run), the VM is not
 * running, ... */
HC_EXPORT int hc_pvm_exec(const char *ref, const struct hc_pvm_exec_opts *o,
			  struct hc_pvm_exec_result *res, struct hc_error *err);
/* The shell-like status: code, 128+signal, 124 for a timeout. */
HC_EXPORT int hc_pvm_exec_status(const struct hc_pvm_exec_result *res);

/* Copies host_path (a file, a symlink or a directory, recursively; modes kept) to guest_path,
 * or guest_path to host_path; streamed in bounded chunks, nothing partial left on failure.
 * guest_path is absolute. As cp: a host destination that is an existing directory gets the
 * source inside it; a guest destination ending in "/" does (else it is the exact path).
 * Host paths are read and written by the supervisor, with the rights of the VM's owner. */
HC_EXPORT int hc_pvm_copy_in(const char *ref, const char *host_path, const char *guest_path,
			     struct hc_error *err);
HC_EXPORT int hc_pvm_copy_out(const char *ref, const char *guest_path, const char *host_path,
			      struct hc_error *err);

/* Runs the workload of a VM created with one (once). */
HC_EXPORT int hc_pvm_start(const char *ref, struct hc_error *err);
/* sig (1..64) to the workload of a VM created with one, as its supervisor getting sig does;
 * with all, to every command running in the VM through hc_pvm_exec too. */
HC_EXPORT int hc_pvm_kill(const char *ref, int sig, bool all, struct hc_error *err);
HC_EXPORT int hc_pvm_pause(const char *ref, struct hc_error *err);
HC_EXPORT int hc_pvm_resume(const char *ref, struct hc_error *err);

/* Snapshots the VM into dir (docs/snapshots.md): created when missing (an older snapshot there
 * is replaced; anything else is refused), the VM paused for the save and resumed after unless
 * leave_paused (a paused VM stays paused). Restore it with hc_pvm_create's restore_dir. A VM
 * that cannot be snapshotted (libkrun; a directory rootfs or -v; QEMU with the vsock channel)
 * is refused with the reason before it is paused. */
HC_EXPORT int hc_pvm_snapshot(const char *ref, const char *dir, bool leave_paused,
			      struct hc_error *err);
/* count new VMs (1..64) from one snapshot of the VM, each running with its own id (written to
 * ret_ids[0..count-1]), the guest's memory shared copy-on-write where the VMM allows (QEMU,
 * Firecracker). All or nothing: on failure the ones already made are removed. */
HC_EXPORT int hc_pvm_fork(const char *ref, unsigned count, char (*ret_ids)[HC_PVM_ID_LEN + 1],
			  struct hc_error *err);
/* SHUTDOWN to the guest, then the VM is ended after grace_s (<= 0: 10 s). The VM stays
 * listed as stopped until removed. Stopping a stopped or dead VM is a no-op. */
HC_EXPORT int hc_pvm_stop(const char *ref, double grace_s, struct hc_error *err);
/* Removes a stopped or dead VM; force also a running or paused one (stopped first, without
 * grace). Nothing survives: no process, mount, socket, temp file, runtime dir. */
HC_EXPORT int hc_pvm_remove(const char *ref, bool force, struct hc_error *err);
/* Removes every stopped and dead VM; returns how many. */
HC_EXPORT int hc_pvm_prune(struct hc_error *err);
/* Writes the VM's console log to fd. */
HC_EXPORT int hc_pvm_logs(const char *ref, int fd, struct hc_error *err);

/* Moves a running (or paused) VM to another hotcell server (docs/migration.md): the VM is
 * paused, snapshotted and streamed to the destination's PUT /api/v1/migrate (its spec, the
 * image's blobs the destination lacks, the kernel, initramfs and disk it booted, the
 * snapshot), restored there paused; only then is this copy removed, and the destination
 * resumes it. Every failure before the hand-over resumes this copy (a VM that was paused
 * stays paused) and the destination keeps nothing. QEMU (block rootfs, serial channel). */
struct hc_pvm_migrate_opts {
	const char *to;	   /* the destination server's base URL, http://HOST:PORT */
	const char *token; /* the destination's bearer token */
	bool reseed;	   /* a fresh RNG seed for the guest (by default it keeps its own) */
};
struct hc_pvm_migrate_result {
	char id[HC_PVM_ID_LEN + 1]; /* the VM's id on the destination */
	double downtime_ms;	    /* from the pause here to the resume there */
	double total_ms;
	uint64_t bytes_sent;	     /* the stream's body */
	uint64_t blob_bytes_skipped; /* image blobs the destination had already */
};
HC_EXPORT int hc_pvm_migrate(const char *ref, const struct hc_pvm_migrate_opts *o,
			     struct hc_pvm_migrate_result *res, struct hc_error *err);

#ifdef __cplusplus
}
#endif

#endif /* HOTCELL_H */
