/* SPDX-License-Identifier: MIT */
/*
 * One way to spawn and reap a child process. Every helper process hotcell starts (QEMU,
 * virtiofsd, firecracker, mke2fs, ...) goes through hc_child_spawn(), and is ended by
 * hc_child_stop(), which always kills and reaps. A struct hc_child declared with
 * _cleanup_child_ is stopped when it goes out of scope.
 *
 * Exit is observed through a pidfd (poll()able), so callers wait on events, never sleep.
 */
#pragma once

#include <sys/types.h>

#include "core/error.h"

/* At most this many extra fds are handed to one child. */
#define HC_CHILD_MAX_FDS 64

struct hc_fd_map {
	int src; /* fd in the parent */
	int dst; /* number it gets in the child */
};

/* A sandbox applied in the child between fork and exec (or before the run hook). core only
 * runs it; what it does is src/jail's business (core knows nothing of jails). */
struct hc_child_jail {
	/* The child is PID 1 of a new PID namespace: the namespace is made at fork time, since a
	 * process cannot move itself into one. */
	bool new_pid_ns;
	/* Runs in the child last before exec, after the fds are in place and pre_exec ran.
	 * Returns -errno and fills err, whose message comes back to the parent: hc_child_spawn
	 * then fails with it. */
	int (*apply)(void *arg, struct hc_error *err);
	void *arg;
};

struct hc_child_opts {
	const char *const *argv; /* argv[0] is the program; looked up in PATH when it has no '/' */
	const char *const *envp; /* NULL: inherit the environment */
	int stdin_fd;		 /* -1: /dev/null */
	int stdout_fd;		 /* -1: /dev/null */
	int stderr_fd;		 /* -1: /dev/null */
	const struct hc_fd_map *fds; /* extra fds handed over (everything else is closed) */
	size_t n_fds;
	const char *cwd;
	bool new_session; /* setsid(): keeps terminal Ctrl-C away from the child; we end it */
	int pdeathsig;	  /* signal the child gets when hotcell dies (0: SIGKILL; -1: none, for
			   * a process meant to outlive hotcell: the server's reaper) */
	/* Runs in the child after the fds are set up, before exec; returns -errno on failure. */
	int (*pre_exec)(void *arg);
	void *pre_exec_arg;
	/* NULL: none. With a jail, cwd is changed to after the jail was applied (so it is a path
	 * inside the jail's root). */
	const struct hc_child_jail *jail;
	/* NULL: exec argv. Otherwise the child never execs: it runs this last, in place of the
	 * exec (after the fds, pre_exec and the jail, with envp as its environment), for a
	 * process that must stay this program (the libkrun worker, src/vmm/libkrun.c). It must
	 * not return (it _exit()s; a return is exit 127). argv[0] then only names the child.
	 * hc_child_spawn returns once the jail is applied. */
	void (*run)(void *arg);
	void *run_arg;
};

struct hc_child {
	pid_t pid;  /* 0: none */
	int pidfd;  /* -1 when not available */
	int status; /* wait status once reaped */
	bool reaped;
	char name[32]; /* for messages */
};

#define HC_CHILD_INIT                                                                              \
	{                                                                                          \
		.pid = 0, .pidfd = -1, .status = 0, .reaped = false, .name = ""                    \
	}

int hc_child_spawn(struct hc_child *c, const struct hc_child_opts *o,
		   struct hc_error *err) _must_check_;
/* Non-blocking: 1 when the child has exited (and is now reaped), 0 when still running. */
int hc_child_poll(struct hc_child *c);
/* Waits for the child to exit, at most timeout_ms (-1: forever). 0 when reaped, -ETIMEDOUT. */
int hc_child_wait(struct hc_child *c, int timeout_ms);
int hc_child_kill(struct hc_child *c, int sig);
/* SIGTERM, up to grace_ms to exit, then SIGKILL; always reaps. Safe on a never-started or
 * already-reaped child. */
void hc_child_stop(struct hc_child *c, int grace_ms);
void hc_child_stopp(struct hc_child *c);
#define _cleanup_child_ _cleanup_(hc_child_stopp)
/* Describes a wait status: "exited with status 3", "killed by SIGKILL". */
void hc_child_status_str(int status, char *buf, size_t n);

/* Runs argv to completion, capturing stdout+stderr (bounded by max_output) into *ret_output
 * (may be NULL). Returns the exit status (>= 0) or -errno; sets err when the program cannot
 * run or does not exit 0 within timeout_ms, with its last output in the message. */
int hc_child_run(const char *const *argv, int timeout_ms, size_t max_output, char **ret_output,
		 struct hc_error *err) _must_check_;
/* Same, and when cancel_fd (>= 0) becomes readable first: the child is killed and reaped and the
 * result is -ECANCELED (core/cancel.h). */
int hc_child_run_cancel(const char *const *argv, int timeout_ms, int cancel_fd, size_t max_output,
			char **ret_output, struct hc_error *err) _must_check_;
