/* SPDX-License-Identifier: MIT */
/*
 * `hotcell serve` (DESIGN.md §10, docs/server.md): JSON-RPC 2.0 at POST /api/v1/rpc, SSE for
 * streaming calls, WebSocket at GET /api/v1/ws, every request with a bearer token.
 *
 *   http.c     libmicrohttpd: listening, auth, bodies, SSE, the WebSocket upgrade
 *   ws.c       one WebSocket connection (wslay framing), several calls in flight
 *   rpc.c      JSON-RPC 2.0, transport-free
 *   methods.c  the methods, on the public library API
 *   exec.c     one run (sandbox.run): its worker thread, output pump, stream and cancel
 *   registry.c the executors' registry file (--registry)
 *   executor.c executor.list / executor.invoke, the registry's reload, `hotcell invoke`
 *
 * Threads: libmicrohttpd runs a thread per connection, so a method may block (hc_run does);
 * each run has one more thread that calls hc_run while the connection's thread pumps its
 * output. A WebSocket gets a thread of its own, and each call on it one more.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>

#include "hotcell.h"
#include "server/rpc.h"

struct hc_server_config {
	const char *listen; /* "HOST:PORT", "[V6]:PORT" or "unix:PATH"; NULL: 127.0.0.1:8080 */
	const char *token;  /* the bearer token (never logged) */
	unsigned max_vms;   /* 0: unlimited */
	unsigned max_runs;  /* concurrent runs (sandbox.run, vm.exec); 0: unlimited */
	const char *default_backend;
	unsigned default_memory_mib;
	unsigned default_vcpus;
	double default_timeout_secs; /* the server's default: 30 */
	const char *default_network;
	size_t max_body;      /* request body bytes; 0: HC_SERVER_MAX_BODY */
	const char *registry; /* --registry FILE (docs/executors.md), or NULL */
	/* > 0: readable (a byte per request) when the registry must be read again (SIGHUP).
	 * 0 or less: never (fd 0 is never such a pipe: the CLI keeps fds 0-2 open). */
	int reload_fd;
	unsigned idle_timeout_s; /* an idle or slow connection is closed after this; 0: 30 */
	/* --warm-pool N: up to N VMs per template key kept restored and waiting for runs
	 * (hc_warm_pool_new; docs/warm-start.md); 0: none. */
	unsigned warm_pool;
	/* Written once the server listens: the address it listens on (port 0 resolved). */
	void (*on_listen)(const char *address, void *userdata);
	void *userdata;
};

#define HC_SERVER_MAX_BODY (8u << 20)
/* Output buffered for one streaming client; past it the client is too slow and its run is
 * cancelled. */
#define HC_SERVER_STREAM_BUFFER (4u << 20)

struct hc_registry;

struct hc_server {
	const struct hc_server_config *cfg;
	struct hc_store *store;
	struct hc_rpc rpc;
	unsigned char token_hash[32];
	json_t *backends;  /* the usable backends' names, probed once at start (health) */
	atomic_uint runs;  /* runs in progress */
	atomic_uint calls; /* calls in progress (any method, any transport) */
	atomic_bool stopping;
	/* Readable once SIGTERM arrived: every run in progress is cancelled. */
	int shutdown_fd;
	pthread_mutex_t lock;
	/* signalled when calls drops to 0 */
	pthread_cond_t idle;
	/* vm.create calls in flight (under lock), for --max-vms */
	unsigned vms_creating;
	/* The executors' registry (under lock; NULL without --registry). SIGHUP swaps in a new
	 * version; each call holds a reference to the one it started with. */
	struct hc_registry *registry;
	/* executor.invoke calls in progress per function name (under lock): {"NAME": N}. By
	 * name, so a reload keeps counting the calls of the version before. */
	json_t *fn_running;
	/* The warm pool (cfg->warm_pool > 0), handed to every run; NULL: none. */
	struct hc_warm_pool *pool;
	/* Why runs end when shutdown_fd becomes readable (NULL: "the server is shutting down"). */
	const char *stop_reason;
};

/* Runs the server until stop_fd becomes readable (SIGTERM). Returns 0 after an orderly stop,
 * a negative errno with err set when it could not start. */
int hc_server_run(const struct hc_server_config *cfg, int stop_fd, struct hc_error *err);

/* Migration (migrate.c, docs/migration.md). The destination's PUT /api/v1/migrate: new
 * (takes a --max-vms slot and a private directory under $HOTCELL_HOME/migrate), feed the
 * body as it comes (the parser of lib/migrate.h into files and blobs, each part's digest
 * checked), finish once it ended (the VM restored paused; *ret = {"id"}), free (removes
 * whatever a VM did not take: a cut connection or a bad stream leaves nothing). */
struct hc_server_mig_in;
int hc_server_mig_in_new(struct hc_server *s, struct hc_server_mig_in **ret, struct hc_error *err);
int hc_server_mig_in_feed(struct hc_server_mig_in *m, const void *p, size_t n,
			  struct hc_error *err);
int hc_server_mig_in_finish(struct hc_server_mig_in *m, json_t **ret, struct hc_error *err);
void hc_server_mig_in_free(struct hc_server_mig_in *m);
/* vm.migrate (the source) and the destination's migrate.query/commit/abort. */
json_t *hc_server_m_vm_migrate(struct hc_rpc_call *c, struct hc_rpc_err *err);
json_t *hc_server_m_migrate_query(struct hc_rpc_call *c, struct hc_rpc_err *err);
json_t *hc_server_m_migrate_commit(struct hc_rpc_call *c, struct hc_rpc_err *err);
json_t *hc_server_m_migrate_abort(struct hc_rpc_call *c, struct hc_rpc_err *err);

/* Executors (executor.c). hc_server_registry_open loads cfg->registry (nothing without one),
 * hc_server_registry_reload reads it again and swaps it in, keeping the old version when the
 * new one is refused (logged), hc_server_registry_close drops it. */
int hc_server_registry_open(struct hc_server *s, struct hc_error *err);
void hc_server_registry_reload(struct hc_server *s);
void hc_server_registry_close(struct hc_server *s);
json_t *hc_server_executor_list(struct hc_rpc_call *c, struct hc_rpc_err *err);
json_t *hc_server_executor_invoke(struct hc_rpc_call *c, struct hc_rpc_err *err);
/* `hotcell invoke`: one executor.invoke through the server's own method, without a server
 * (cfg's defaults and limits apply; cfg->registry is required). cancel_fd: readable when the
 * call must be cancelled (a signal came). Returns 0 with the JSON-RPC response in *ret
 * (a result or an error), or -errno with err set when the registry cannot be loaded. */
int hc_server_invoke(const struct hc_server_config *cfg, const char *name, const json_t *input,
		     int cancel_fd, json_t **ret, struct hc_error *err);

/* The method table (methods.c). */
extern const struct hc_rpc_method hc_server_methods[];
extern const size_t hc_server_n_methods;

/* True when the Authorization value is "Bearer <the token>", compared in constant time. */
bool hc_server_auth_ok(const struct hc_server *s, const char *authorization);
/* The same for a bare token (the WebSocket's access_token query parameter). */
bool hc_server_token_ok(const struct hc_server *s, const char *token);
/* Computes s->token_hash from the token. */
int hc_server_auth_init(struct hc_server *s, const char *token);

/* A call in progress: counted, so SIGTERM can wait for the last one. */
void hc_server_call_enter(struct hc_server *s);
void hc_server_call_leave(struct hc_server *s);

/* WebSocket (ws.c): serves one upgraded socket on a thread of its own, then closes it and
 * calls done(done_arg) (libmicrohttpd's upgrade handle). Returns -errno when the thread
 * cannot start (the caller closes). */
int hc_server_ws_start(struct hc_server *s, int fd, void (*done)(void *), void *done_arg);
/* The message layer of one WebSocket without its socket: what hc_server_ws_start's thread
 * drives once wslay has framed a text message, and what the fuzz target drives directly.
 * hc_server_ws_text takes one text message (UTF-8, checked by the caller): a request or batch
 * starts a call on a thread of its own, `stdin` / `signal` go to the streaming call they name.
 * hc_server_ws_next pops the next message for the client (malloc'd, NUL-terminated), NULL
 * when none is queued. hc_server_ws_cancel_wait cancels every call in flight and waits for
 * them to answer; hc_server_ws_free does that and frees (NULL is fine). */
struct hc_server_ws;
int hc_server_ws_new(struct hc_server *s, struct hc_server_ws **ret);
void hc_server_ws_text(struct hc_server_ws *ws, const char *text, size_t n);
char *hc_server_ws_next(struct hc_server_ws *ws, size_t *ret_len);
void hc_server_ws_cancel_wait(struct hc_server_ws *ws);
void hc_server_ws_free(struct hc_server_ws *ws);
/* The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 §4.2.2), 29 bytes + NUL. */
int hc_server_ws_accept_key(const char *key, char ret[32]);
