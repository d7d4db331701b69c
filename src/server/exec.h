/* SPDX-License-Identifier: MIT */
/*
 * One command run for a call (sandbox.run, vm.exec): the blocking library call runs on a
 * worker thread with its stdout and stderr on pipes; the calling thread pumps them — into the
 * captured stdout, stderr and console_output (stdout and stderr interleaved as they came,
 * each bounded by the output limit), and to the client's stream when it streams — and turns
 * the client going away, a `signal` from it, a stream that cannot keep up, or SIGTERM into a
 * cancellation (the library's cancel_fd). Output is always drained, so a slow client never
 * stalls a run past its timeout: it loses its run instead, with an error that says so.
 */
#pragma once

#include "server/server.h"

struct hc_server_job {
	/* Runs the command (on the worker thread). fds: stdin (-1: none), stdout, stderr, and
	 * cancel_fd as hc_run_opts documents it. Returns like hc_run. */
	int (*fn)(struct hc_server_job *job, int stdin_fd, int stdout_fd, int stderr_fd,
		  int cancel_fd, struct hc_run_result *res, struct hc_error *err);
	void *arg;
	size_t output_limit; /* 0: 1 MiB per stream */
	/* The call's terminal size (struct hc_rpc_stream's tty_fd, winch_fd), or -1. */
	int tty_fd, winch_fd;
	/* stdin given in the params (already decoded), or NULL. */
	const void *stdin_data;
	size_t stdin_len;
};

/* A job that runs hc_run with o (sandbox.run, executor.invoke): the job's fn is
 * hc_server_run_fn, which opens a store of its own for each run. */
struct hc_server_run_job {
	struct hc_server_job job;
	const struct hc_run_opts *o;
};
int hc_server_run_fn(struct hc_server_job *job, int stdin_fd, int stdout_fd, int stderr_fd,
		     int cancel_fd, struct hc_run_result *res, struct hc_error *err);

/* Fills ro from the server's defaults (cfg; NULL: none), then from the call's params, key by
 * key, so a bad value names the param that carried it: each key a run option's long name with
 * '_' for '-', or one of the renames that carry their unit (timeout_secs, memory_mib, ...).
 * skip: the method's own params (NULL-terminated). 0, or -errno with err set (-32602). */
struct hc_runopts;
int hc_server_run_params(const struct hc_server_config *cfg, const struct hc_rpc_call *c,
			 unsigned scope, const char *const *skip, struct hc_runopts *ro,
			 struct hc_rpc_err *err);

/* Runs job for call: counts it against --max-runs, streams when call->stream is set, and
 * answers the run --json object plus console_output (or NULL with err set). */
json_t *hc_server_exec(struct hc_server *s, struct hc_rpc_call *call, struct hc_server_job *job,
		       struct hc_rpc_err *err);

/* Decodes the "stdin" param (+ "stdin_encoding": "utf-8" default, or "base64"). 0 when absent,
 * 1 with a malloc'd buffer, -EINVAL with err set. */
int hc_server_param_data(const struct hc_rpc_call *c, const char *name, const char *enc_name,
			 void **ret, size_t *ret_len, struct hc_rpc_err *err);
/* RFC 4648 base64 (padding required); -EINVAL when not valid. */
int hc_server_base64_decode(const char *s, size_t n, void **ret, size_t *ret_len);

/* {"data": ..., "encoding": "utf-8"|"base64"} for a chunk of output: UTF-8 text when it is,
 * else base64. The pump holds back a UTF-8 sequence split across reads, so text arrives as
 * text. */
json_t *hc_server_output_params(const void *data, size_t n);
