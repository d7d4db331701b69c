/* SPDX-License-Identifier: MIT */
/*
 * Executors (docs/executors.md): functions named in the registry file, each call in a fresh VM
 * from the function's image through the same path as sandbox.run (hc_run, so a warm template
 * of the image applies as it does to a run). The input reaches the handler as JSON on its
 * stdin; the handler's wrapper (python.py / node.js, which hotcell-init writes into every
 * guest's /hotcell/runtime) writes its return value to /hotcell/result.json, which comes back
 * as the run object's `result`. A wrapper's {"handler_error": {...}} with a non-zero exit
 * becomes the object's `handler_error`. A "command" function gets the input on stdin and
 * reports through /hotcell/result.json or, without one, a stdout that is JSON.
 */
#include "core/log.h"
#include "lib/runopts.h"
#include "server/exec.h"
#include "server/registry.h"

#define WRAPPER_DIR "/hotcell/runtime"

/* ---- the registry: loaded at start, swapped on SIGHUP ---- */

int hc_server_registry_open(struct hc_server *s, struct hc_error *err)
{
	s->fn_running = json_object();
	if (!s->fn_running)
		return hc_error_set(err, -ENOMEM, "out of memory");
	if (!s->cfg->registry)
		return 0;
	return hc_registry_load(s->cfg->registry, &s->registry, err);
}

void hc_server_registry_reload(struct hc_server *s)
{
	struct hc_registry *reg = NULL, *old;
	struct hc_error e = {0};

	if (!s->cfg->registry)
		return;
	if (hc_registry_load(s->cfg->registry, &reg, &e) < 0) {
		hc_warn("server: the registry was not reloaded (the previous one stays): %s",
			e.message);
		return;
	}
	pthread_mutex_lock(&s->lock);
	old = s->registry;
	s->registry = reg;
	pthread_mutex_unlock(&s->lock);
	/* Calls in flight hold their own references to the old version. */
	hc_registry_unref(old);
	hc_info("server: registry %s reloaded: %zu functions", s->cfg->registry, reg->n);
}

void hc_server_registry_close(struct hc_server *s)
{
	hc_registry_unref(s->registry);
	s->registry = NULL;
	json_decref(s->fn_running);
	s->fn_running = NULL;
}

/* The current version, with a reference of the caller's; NULL without a registry. */
static struct hc_registry *registry_get(struct hc_server *s)
{
	struct hc_registry *r;

	pthread_mutex_lock(&s->lock);
	r = hc_registry_ref(s->registry);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static json_t *no_registry(struct hc_rpc_err *err)
{
	snprintf(err->e.kind, sizeof(err->e.kind), HC_EK_USAGE);
	return hc_rpc_fail(err, HC_RPC_HOTCELL_ERROR,
			   "this server has no executors: start it with --registry FILE");
}

static json_int_t running(struct hc_server *s, const char *name)
{
	return json_integer_value(json_object_get(s->fn_running, name));
}

/* ---- executor.list ---- */

static json_t *fn_object(struct hc_server *s, const struct hc_executor_fn *f)
{
	json_t *o = json_deep_copy(f->entry), *keys = json_array(), *v;
	const char *k;

	if (!o || !keys) {
		json_decref(o);
		json_decref(keys);
		return NULL;
	}
	/* env values may be secrets: only the names are listed. */
	json_object_foreach(json_object_get(f->entry, "env"), k, v)
	{
		json_array_append_new(keys, json_string(k));
	}
	json_object_set_new(o, "env", keys);
	json_object_set_new(o, "name", json_string(f->name));
	json_object_set_new(o, "running", json_integer(running(s, f->name)));
	return o;
}

json_t *hc_server_executor_list(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	struct hc_server *s = c->ctx;
	struct hc_registry *reg;
	json_t *arr;

	if (hc_rpc_params_only(c, NULL, err) < 0)
		return NULL;
	reg = registry_get(s);
	if (!reg)
		return no_registry(err);
	arr = json_array();
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; arr && i < reg->n; i++) {
		if (json_array_append_new(arr, fn_object(s, &reg->fns[i])) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	pthread_mutex_unlock(&s->lock);
	hc_registry_unref(reg);
	return arr ? arr : hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
}

/* ---- executor.invoke ---- */

/* Counts a call of f against its max_concurrency; false (with err) when it is reached. */
static bool fn_enter(struct hc_server *s, const struct hc_executor_fn *f, struct hc_rpc_err *err)
{
	json_int_t n;

	pthread_mutex_lock(&s->lock);
	n = running(s, f->name);
	if (f->max_concurrency && n >= f->max_concurrency) {
		pthread_mutex_unlock(&s->lock);
		snprintf(err->e.kind, sizeof(err->e.kind), "limit");
		hc_rpc_fail(err, HC_RPC_LIMIT_ERROR,
			    "function '%s' has %lld calls in progress (max_concurrency %u): try "
			    "again later",
			    f->name, (long long)n, f->max_concurrency);
		return false;
	}
	if (json_object_set_new(s->fn_running, f->name, json_integer(n + 1)) < 0) {
		pthread_mutex_unlock(&s->lock);
		hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
		return false;
	}
	pthread_mutex_unlock(&s->lock);
	return true;
}

static void fn_leave(struct hc_server *s, const struct hc_executor_fn *f)
{
	pthread_mutex_lock(&s->lock);
	json_object_set_new(s->fn_running, f->name, json_integer(running(s, f->name) - 1));
	pthread_mutex_unlock(&s->lock);
}

/* The command of a call of f: the wrapper and the handler, or the function's own argv; never
 * behind the image's ENTRYPOINT. */
static int fn_command(const struct hc_executor_fn *f, struct hc_runopts *ro, struct hc_error *e)
{
	const char *argv[3];
	int r = hc_runopts_set(ro, HC_RUNOPT_RUN, "entrypoint", "", e);

	if (r < 0)
		return r;
	switch (f->runtime) {
	case HC_EXECUTOR_PYTHON:
		argv[0] = "python3";
		argv[1] = WRAPPER_DIR "/python.py";
		break;
	case HC_EXECUTOR_NODE:
		argv[0] = "node";
		argv[1] = WRAPPER_DIR "/node.js";
		break;
	case HC_EXECUTOR_COMMAND:
		return hc_runopts_set_cmd(ro, f->argv, f->argc, e);
	}
	argv[2] = f->handler;
	return hc_runopts_set_cmd(ro, argv, 3, e);
}

/* A non-empty stdout that is JSON, when the command wrote no result.json. */
static void result_from_stdout(json_t *o)
{
	const char *out = json_string_value(json_object_get(o, "stdout"));
	json_t *v;

	if (!out || !hc_streq(json_string_value(json_object_get(o, "stdout_encoding")), "utf-8") ||
	    strspn(out, " \t\r\n") == strlen(out))
		return;
	v = json_loads(out, JSON_DECODE_ANY, NULL);
	if (v)
		json_object_set_new(o, "result", v);
	else
		json_object_set_new(o, "result_error",
				    json_string("the command wrote no /hotcell/result.json and "
						"its stdout is not JSON"));
}

/* The run object → the executor's: `result`, or `handler_error` when the wrapper reported one
 * and the handler's process failed. */
static void finish(const struct hc_executor_fn *f, json_t *o)
{
	json_t *res = json_object_get(o, "result"), *code = json_object_get(o, "exit_code"), *he;

	if (f->runtime == HC_EXECUTOR_COMMAND && json_is_null(res) &&
	    !json_object_get(o, "result_error"))
		result_from_stdout(o);
	res = json_object_get(o, "result");
	he = json_is_object(res) && json_object_size(res) == 1
		     ? json_object_get(res, "handler_error")
		     : NULL;
	if (json_is_object(he) && json_is_integer(code) && json_integer_value(code) != 0) {
		json_object_set(o, "handler_error", he);
		json_object_set_new(o, "result", json_null());
	} else {
		json_object_set_new(o, "handler_error", json_null());
	}
	json_object_set_new(o, "function", json_string(f->name));
}

json_t *hc_server_executor_invoke(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"name", "input", "stream", NULL};
	struct hc_server *s = c->ctx;
	struct hc_server_run_job rj = {.job = {.fn = hc_server_run_fn}};
	const struct hc_executor_fn *f;
	struct hc_registry *reg = NULL;
	struct hc_runopts ro;
	struct hc_rpc_call fc = {.method = c->method, .cancel_fd = -1};
	struct hc_error e = {0};
	const char *name = NULL;
	json_t *input, *ret = NULL;
	char *in_text = NULL;
	bool stream = false, entered = false;

	hc_runopts_init(&ro);
	if (hc_rpc_params_only(c, names, err) < 0 || hc_rpc_param_str(c, "name", &name, err) < 0 ||
	    hc_rpc_param_bool(c, "stream", &stream, err) < 0)
		goto out;
	if (!name) {
		hc_rpc_fail_param(err, "name", "'name' is required: a function of executor.list");
		goto out;
	}
	reg = registry_get(s);
	if (!reg) {
		no_registry(err);
		goto out;
	}
	f = hc_registry_find(reg, name);
	if (!f) {
		hc_rpc_fail_param(err, "name", "no function named '%.64s' (see executor.list)",
				  name);
		goto out;
	}
	/* The function's run options over the server's defaults, through the one table. */
	fc.params = f->run;
	if (hc_server_run_params(s->cfg, &fc, HC_RUNOPT_RUN, NULL, &ro, err) < 0) {
		/* The registry was checked at load: only a server default can fail here. */
		err->code = HC_RPC_INTERNAL_ERROR;
		goto out;
	}
	if (fn_command(f, &ro, &e) < 0) {
		hc_rpc_fail_hc(err, &e);
		goto out;
	}
	input = json_object_get(c->params, "input");
	in_text = json_dumps(input ? input : json_null(), JSON_ENCODE_ANY | JSON_COMPACT);
	if (!in_text) {
		hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
		goto out;
	}
	if (!fn_enter(s, f, err))
		goto out;
	entered = true;
	if (!stream)
		c->stream = NULL;
	ro.o.warm_pool = s->pool;
	rj.o = &ro.o;
	rj.job.output_limit = ro.o.output_limit;
	rj.job.stdin_data = in_text;
	rj.job.stdin_len = strlen(in_text);
	ret = hc_server_exec(s, c, &rj.job, err);
	if (ret)
		finish(f, ret);
out:
	if (entered)
		fn_leave(s, f);
	free(in_text);
	hc_runopts_free(&ro);
	hc_registry_unref(reg);
	return ret;
}

/* ---- `hotcell invoke` ---- */

int hc_server_invoke(const struct hc_server_config *cfg, const char *name, const json_t *input,
		     int cancel_fd, json_t **ret, struct hc_error *err)
{
	struct hc_server s = {.cfg = cfg, .shutdown_fd = cancel_fd, .stop_reason = "interrupted"};
	json_t *req;
	int r;

	s.rpc = (struct hc_rpc){.methods = hc_server_methods, .n_methods = hc_server_n_methods};
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.idle, NULL);
	r = hc_server_registry_open(&s, err);
	if (r < 0)
		goto out;
	if (!s.registry) {
		r = hc_error_setk(err, -EINVAL, HC_EK_USAGE, "invoke: --registry FILE is required");
		goto out;
	}
	/* The same request a client sends the server, answered by the same method. */
	req = json_pack("{s:s, s:i, s:s, s:{s:s, s:O}}", "jsonrpc", "2.0", "id", 1, "method",
			"executor.invoke", "params", "name", name, "input",
			input ? input : json_null());
	if (!req) {
		r = hc_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	*ret = hc_rpc_call_one(&s.rpc, req, &s, -1, NULL);
	json_decref(req);
	if (!*ret)
		r = hc_error_set(err, -ENOMEM, "out of memory");
out:
	hc_server_registry_close(&s);
	pthread_mutex_destroy(&s.lock);
	pthread_cond_destroy(&s.idle);
	return r;
}
