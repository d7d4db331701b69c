/* SPDX-License-Identifier: MIT */
/*
 * The JSON-RPC methods of DESIGN.md §10 (docs/server.md), on the public library API. Run
 * params go through the one table of run options (lib/runopts.h), which the CLI parses too:
 * each key is a run option's long name with '_' for '-', except the renames that carry their
 * unit (timeout_secs, boot_timeout_secs, memory_mib, vcpus) and command, allow_hosts, ports.
 */
#include "core/log.h"
#include "core/path.h"
#include "lib/result.h"
#include <sys/stat.h>
#include "lib/runopts.h"
#include "server/exec.h"

/* ---- run params ---- */

static const struct {
	const char *param; /* the JSON name */
	const char *opt;   /* the run option's long name */
} renames[] = {
	{"timeout_secs", "timeout"},
	{"boot_timeout_secs", "boot-timeout"},
	{"memory_mib", "memory"},
	{"vcpus", "cpus"},
	{"allow_hosts", "allow-host"},
	{"ports", "publish"},
	{"command", "cmd"},
};

/* Params of the server's own, not run options. */
static const char *const run_own[] = {"stdin", "stdin_encoding", "stream", NULL};

static const char *renamed_from(const char *opt_json)
{
	for (size_t i = 0; i < HC_ARRAY_SIZE(renames); i++) {
		char alt[64];

		snprintf(alt, sizeof(alt), "%s", renames[i].opt);
		for (char *p = alt; *p; p++)
			if (*p == '-')
				*p = '_';
		if (hc_streq(opt_json, renames[i].opt) || hc_streq(opt_json, alt))
			return renames[i].param;
	}
	return NULL;
}

static int set_default(struct hc_runopts *ro, unsigned scope, const char *name, const char *v,
		       struct hc_rpc_err *err)
{
	struct hc_error e = {0};

	if (!v || hc_runopts_set(ro, scope, name, v, &e) >= 0)
		return 0;
	hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "server default --default-%s: %s", name, e.message);
	return -EINVAL;
}

int hc_server_run_params(const struct hc_server_config *cfg, const struct hc_rpc_call *c,
			 unsigned scope, const char *const *skip, struct hc_runopts *ro,
			 struct hc_rpc_err *err)
{
	static const struct hc_server_config none = {0};
	char num[32];
	const char *k;
	json_t *v;

	if (!cfg)
		cfg = &none;
	if (set_default(ro, scope, "backend", cfg->default_backend, err) < 0 ||
	    set_default(ro, scope, "network", cfg->default_network, err) < 0)
		return -EINVAL;
	if (cfg->default_memory_mib) {
		snprintf(num, sizeof(num), "%u", cfg->default_memory_mib);
		if (set_default(ro, scope, "memory", num, err) < 0)
			return -EINVAL;
	}
	if (cfg->default_vcpus) {
		snprintf(num, sizeof(num), "%u", cfg->default_vcpus);
		if (set_default(ro, scope, "cpus", num, err) < 0)
			return -EINVAL;
	}
	if (scope == HC_RUNOPT_RUN && cfg->default_timeout_secs > 0) {
		snprintf(num, sizeof(num), "%g", cfg->default_timeout_secs);
		if (set_default(ro, scope, "timeout", num, err) < 0)
			return -EINVAL;
	}
	json_object_foreach(c->params, k, v)
	{
		struct hc_error e = {0};
		const char *opt = k, *was;
		bool own = false;
		json_t *one;
		int r;

		for (size_t i = 0; skip && skip[i] && !own; i++)
			own = hc_streq(skip[i], k);
		for (size_t i = 0; run_own[i] && !own; i++)
			own = hc_streq(run_own[i], k);
		if (own)
			continue;
		was = renamed_from(k);
		if (was) {
			hc_rpc_fail_param(err, k, "unknown param '%s' (the server's name is '%s')",
					  k, was);
			return -EINVAL;
		}
		for (size_t i = 0; i < HC_ARRAY_SIZE(renames); i++)
			if (hc_streq(k, renames[i].param))
				opt = renames[i].opt;
		if (hc_streq(opt, "interactive") || hc_streq(opt, "json")) {
			hc_rpc_fail_param(err, k, "'%s' is not a server param (see 'stdin')", k);
			return -EINVAL;
		}
		one = json_object();
		if (!one || json_object_set(one, opt, v) < 0) {
			json_decref(one);
			hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
			return -ENOMEM;
		}
		r = hc_runopts_from_json(ro, scope, one, NULL, &e);
		json_decref(one);
		if (r == -ENOMEM) {
			hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
			return r;
		}
		if (r < 0) {
			if (r == -ENOENT)
				hc_rpc_fail_param(err, k, "unknown param '%.60s' for %s", k,
						  c->method);
			else
				hc_rpc_fail_param(err, k, "'%s': %s", k, e.message);
			return r;
		}
	}
	return 0;
}

/* ---- health ---- */

static json_t *m_health(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	struct hc_server *s = c->ctx;

	if (hc_rpc_params_only(c, NULL, err) < 0)
		return NULL;
	json_t *ret = json_pack("{s:s, s:s, s:O}", "status", "ok", "version", hc_version(),
				"backends", s->backends);

	if (ret && s->pool) {
		struct hc_warm_pool_stats st;

		hc_warm_pool_stats(s->pool, &st);
		if (json_object_set_new(
			    ret, "warm_pool",
			    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "per_key",
				      (json_int_t)st.per_key, "keys", (json_int_t)st.keys,
				      "waiting", (json_int_t)st.waiting, "restored",
				      (json_int_t)st.restored, "taken", (json_int_t)st.taken,
				      "discarded", (json_int_t)st.discarded)) < 0) {
			json_decref(ret);
			ret = NULL;
		}
	}
	if (!ret)
		hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
	return ret;
}

/* ---- sandbox.run ---- */

int hc_server_run_fn(struct hc_server_job *job, int in, int out, int errfd, int cancel_fd,
		     struct hc_run_result *res, struct hc_error *err)
{
	struct hc_server_run_job *rj = (struct hc_server_run_job *)job;
	struct hc_run_opts o = *rj->o;
	struct hc_store *store = NULL;
	int r;

	o.stdin_fd = in;
	o.interactive = in >= 0;
	o.stdout_fd = out;
	o.stderr_fd = errfd;
	o.cancel_fd = cancel_fd;
	o.tty_fd = job->tty_fd;
	o.winch_fd = job->winch_fd;
	o.term = "xterm"; /* not the server's own */
	/* A store handle per run: runs in parallel share the store as parallel CLIs do. */
	if (o.image) {
		r = hc_store_open(NULL, &store, err);
		if (r < 0)
			return r;
	}
	r = hc_run(store, &o, res, err);
	hc_store_close(store);
	return r;
}

static json_t *m_sandbox_run(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const skip[] = {NULL};
	struct hc_server *s = c->ctx;
	struct hc_runopts ro;
	struct hc_server_run_job rj = {.job = {.fn = hc_server_run_fn}};
	void *in = NULL;
	size_t in_len = 0;
	bool stream = false;
	json_t *ret = NULL;

	hc_runopts_init(&ro);
	if (hc_rpc_param_bool(c, "stream", &stream, err) < 0 ||
	    hc_server_run_params(s->cfg, c, HC_RUNOPT_RUN, skip, &ro, err) < 0 ||
	    hc_server_param_data(c, "stdin", "stdin_encoding", &in, &in_len, err) < 0)
		goto out;
	if (!ro.o.image && !ro.o.rootfs_dir) {
		hc_rpc_fail_param(err, "image", "'image' is required");
		goto out;
	}
	if (!stream)
		c->stream = NULL;
	ro.o.warm_pool = s->pool;
	rj.o = &ro.o;
	rj.job.tty_fd = c->stream ? c->stream->tty_fd : -1;
	rj.job.winch_fd = c->stream ? c->stream->winch_fd : -1;
	rj.job.output_limit = ro.o.output_limit;
	rj.job.stdin_data = in;
	rj.job.stdin_len = in_len;
	ret = hc_server_exec(s, c, &rj.job, err);
out:
	free(in);
	hc_runopts_free(&ro);
	return ret;
}

/* ---- images ---- */

static json_t *image_object(const struct hc_image_info *i)
{
	return json_pack("{s:o, s:s, s:I, s:o, s:I}", "name",
			 i->name ? json_string(i->name) : json_null(), "digest", i->digest, "size",
			 (json_int_t)i->size, "created",
			 i->created ? json_string(i->created) : json_null(), "template_size",
			 (json_int_t)i->template_size);
}

static json_t *m_image_list(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	struct hc_image_info *list = NULL;
	struct hc_store *store = NULL;
	struct hc_error e = {0};
	size_t n = 0;
	json_t *arr;

	if (hc_rpc_params_only(c, NULL, err) < 0)
		return NULL;
	if (hc_store_open(NULL, &store, &e) < 0 || hc_image_list(store, &list, &n, &e) < 0) {
		hc_store_close(store);
		return hc_rpc_fail_hc(err, &e);
	}
	hc_store_close(store);
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		if (json_array_append_new(arr, image_object(&list[i])) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	hc_image_list_free(list, n);
	return arr ? arr : hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
}

static json_t *m_image_pull(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"image", "platform", "insecure", NULL};
	struct hc_pull_opts po = {0};
	struct hc_image_info *list = NULL;
	struct hc_store *store = NULL;
	struct hc_error e = {0};
	const char *image = NULL;
	char digest[72];
	size_t n = 0;
	json_t *ret = NULL;

	if (hc_rpc_params_only(c, names, err) < 0 ||
	    hc_rpc_param_str(c, "image", &image, err) < 0 ||
	    hc_rpc_param_str(c, "platform", &po.platform, err) < 0 ||
	    hc_rpc_param_bool(c, "insecure", &po.insecure, err) < 0)
		return NULL;
	if (!image)
		return hc_rpc_fail_param(err, "image", "'image' is required");
	if (hc_store_open(NULL, &store, &e) < 0 ||
	    hc_image_pull(store, image, &po, digest, &e) < 0 ||
	    hc_image_list(store, &list, &n, &e) < 0) {
		hc_store_close(store);
		if (e.code == -EINVAL && hc_streq(e.kind, HC_EK_USAGE))
			return hc_rpc_fail_param(err, "image", "%s", e.message);
		return hc_rpc_fail_hc(err, &e);
	}
	hc_store_close(store);
	/* The entry `images --json` prints for what was pulled. */
	for (size_t i = 0; i < n && !ret; i++)
		if (hc_streq(list[i].digest, digest))
			ret = image_object(&list[i]);
	hc_image_list_free(list, n);
	if (!ret)
		ret = json_pack("{s:n, s:s, s:n, s:n}", "name", "digest", digest, "size",
				"created");
	return ret;
}

/* ---- persistent VMs (hc_pvm_*: a supervisor per VM holds it, so they outlive the server) */

static json_t *fail_pvm(struct hc_rpc_err *err, const struct hc_error *e)
{
	hc_rpc_fail_hc(err, e);
	/* HOTCELL_MAX_PERSISTENT_VMS, the library's own bound, is a limit like --max-vms. */
	if (e->code == -EUSERS)
		err->code = HC_RPC_LIMIT_ERROR;
	else if (e->code == -EEXIST || (e->code == -EINVAL && hc_streq(e->kind, HC_EK_USAGE)))
		err->code = HC_RPC_INVALID_PARAMS;
	return NULL;
}

static bool live(enum hc_pvm_status st)
{
	return st == HC_PVM_RUNNING || st == HC_PVM_PAUSED || st == HC_PVM_CREATING;
}

/* The `vm ls --json` entries, all of them (id NULL) or the one with that id. */
static json_t *vm_entries(const char *id, struct hc_rpc_err *err)
{
	struct hc_pvm_info *l = NULL;
	struct hc_error e = {0};
	size_t n = 0, k = 0;
	json_t *arr = NULL;
	char *text;

	if (hc_pvm_list(&l, &n, &e) < 0)
		return fail_pvm(err, &e);
	for (size_t i = 0; i < n; i++) {
		if (id && !hc_streq(l[i].id, id))
			continue;
		if (k != i) {
			struct hc_pvm_info t = l[k];

			l[k] = l[i];
			l[i] = t;
		}
		k++;
	}
	text = hc_pvm_list_to_json(l, k);
	hc_pvm_list_free(l, n);
	if (text)
		arr = json_loads(text, 0, NULL);
	free(text);
	if (!arr)
		return hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
	return arr;
}

static int vm_id(struct hc_rpc_call *c, const char *const *names, char *id, struct hc_rpc_err *err)
{
	struct hc_error e = {0};
	const char *ref = NULL;

	if (names && hc_rpc_params_only(c, names, err) < 0)
		return -EINVAL;
	if (hc_rpc_param_str(c, "id", &ref, err) < 0)
		return -EINVAL;
	if (!ref) {
		hc_rpc_fail_param(err, "id", "'id' is required (a VM id, id prefix or name)");
		return -EINVAL;
	}
	if (hc_pvm_resolve(ref, id, &e) < 0) {
		fail_pvm(err, &e);
		return -ENOENT;
	}
	return 0;
}

static json_t *m_vm_create(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const own[] = {"name", "idle_timeout_secs", "lifetime_secs", NULL};
	struct hc_server *s = c->ctx;
	struct hc_pvm_create_opts co = {0};
	struct hc_store *store = NULL;
	struct hc_runopts ro;
	struct hc_error e = {0};
	char id[HC_PVM_ID_LEN + 1];
	json_t *ret = NULL, *v;
	bool counted = false;
	int r;

	hc_runopts_init(&ro);
	if (json_object_get(c->params, "command") || json_object_get(c->params, "stdin")) {
		hc_rpc_fail_param(err, json_object_get(c->params, "command") ? "command" : "stdin",
				  "vm.create takes no command: run it with vm.exec");
		goto out;
	}
	if (hc_rpc_param_str(c, "name", &co.name, err) < 0 ||
	    hc_server_run_params(s->cfg, c, HC_RUNOPT_VM, own, &ro, err) < 0)
		goto out;
	for (int i = 0; i < 2; i++) {
		const char *k = i ? "lifetime_secs" : "idle_timeout_secs";

		v = json_object_get(c->params, k);
		if (v && (!json_is_number(v) || json_number_value(v) < 0)) {
			hc_rpc_fail_param(err, k, "'%s' must be a number of seconds >= 0", k);
			goto out;
		}
		*(i ? &co.lifetime_s : &co.idle_timeout_s) = v ? json_number_value(v) : 0;
	}
	if (!ro.o.image && !ro.o.rootfs_dir) {
		hc_rpc_fail_param(err, "image", "'image' is required");
		goto out;
	}
	if (s->cfg->max_vms) {
		struct hc_pvm_info *l = NULL;
		size_t n = 0, n_live = 0;

		if (hc_pvm_list(&l, &n, &e) < 0) {
			fail_pvm(err, &e);
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			n_live += live(l[i].status);
		hc_pvm_list_free(l, n);
		/* Creations in flight count too: two at once cannot both take the last slot. */
		pthread_mutex_lock(&s->lock);
		if (n_live + s->vms_creating >= s->cfg->max_vms) {
			pthread_mutex_unlock(&s->lock);
			snprintf(err->e.kind, sizeof(err->e.kind), "limit");
			hc_rpc_fail(err, HC_RPC_LIMIT_ERROR,
				    "too many persistent VMs (--max-vms %u): remove one with "
				    "vm.destroy",
				    s->cfg->max_vms);
			goto out;
		}
		s->vms_creating++;
		counted = true;
		pthread_mutex_unlock(&s->lock);
	}
	if (ro.o.image && hc_store_open(NULL, &store, &e) < 0) {
		fail_pvm(err, &e);
		goto out;
	}
	co.run = &ro.o;
	r = hc_pvm_create(store, &co, id, &e);
	if (r < 0) {
		fail_pvm(err, &e);
		goto out;
	}
	v = vm_entries(id, err);
	if (v && json_array_size(v) == 1)
		ret = json_incref(json_array_get(v, 0));
	else if (v)
		ret = json_pack("{s:s, s:s?}", "id", id, "name", co.name);
	json_decref(v);
out:
	if (counted) {
		pthread_mutex_lock(&s->lock);
		s->vms_creating--;
		pthread_mutex_unlock(&s->lock);
	}
	hc_store_close(store);
	hc_runopts_free(&ro);
	return ret;
}

static json_t *m_vm_list(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	if (hc_rpc_params_only(c, NULL, err) < 0)
		return NULL;
	return vm_entries(NULL, err);
}

static const char *const only_id[] = {"id", NULL};

static json_t *m_vm_get(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	char id[HC_PVM_ID_LEN + 1];
	json_t *arr, *ret;

	if (vm_id(c, only_id, id, err) < 0)
		return NULL;
	arr = vm_entries(id, err);
	if (!arr)
		return NULL;
	ret = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	if (!ret) {
		snprintf(err->e.kind, sizeof(err->e.kind), HC_EK_VM);
		return hc_rpc_fail(err, HC_RPC_HOTCELL_ERROR, "VM %.12s is gone", id);
	}
	return ret;
}

static json_t *vm_action(struct hc_rpc_call *c, struct hc_rpc_err *err,
			 int (*fn)(const char *ref, struct hc_error *err))
{
	char id[HC_PVM_ID_LEN + 1];
	struct hc_error e = {0};

	if (vm_id(c, only_id, id, err) < 0)
		return NULL;
	if (fn(id, &e) < 0)
		return fail_pvm(err, &e);
	return json_object();
}

static json_t *m_vm_pause(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	return vm_action(c, err, hc_pvm_pause);
}

static json_t *m_vm_resume(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	return vm_action(c, err, hc_pvm_resume);
}

static int destroy(const char *id, struct hc_error *err)
{
	/* The VM goes whatever its state, as `vm rm -f`. */
	return hc_pvm_remove(id, true, err);
}

static json_t *m_vm_destroy(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	return vm_action(c, err, destroy);
}

/* ---- vm.exec, vm.write_file, vm.read_file ---- */

struct vm_exec_job {
	struct hc_server_job job;
	char id[HC_PVM_ID_LEN + 1];
	struct hc_pvm_exec_opts o;
	const struct hc_pvm_info *vm;
};

/* Runs on the worker thread; the answer is the sandbox.run object, from the VM's record and
 * the command's result. */
static int vm_exec_fn(struct hc_server_job *job, int in, int out, int errfd, int cancel_fd,
		      struct hc_run_result *res, struct hc_error *err)
{
	struct vm_exec_job *j = (struct vm_exec_job *)job;
	struct hc_pvm_exec_opts o = j->o;
	struct hc_pvm_exec_result er = {0};
	int r;

	o.stdin_fd = in;
	o.stdout_fd = out;
	o.stderr_fd = errfd;
	o.cancel_fd = cancel_fd;
	o.tty_fd = job->tty_fd;
	o.winch_fd = job->winch_fd;
	o.term = "xterm"; /* not the server's own */
	r = hc_pvm_exec(j->id, &o, &er, err);
	snprintf(res->backend, sizeof(res->backend), "%s", j->vm->backend);
	res->image = j->vm->image ? strdup(j->vm->image) : NULL;
	snprintf(res->image_digest, sizeof(res->image_digest), "%s", j->vm->digest);
	res->exit_code = er.exit_code;
	res->signal = er.signal;
	res->timed_out = er.timed_out;
	res->t_exec_ms = er.t_exec_ms;
	res->t_total_ms = er.t_exec_ms;
	return r;
}

/* "env": {"K": "V"} or ["K=V", ...] into a NULL-terminated array of malloc'd strings. */
static int env_param(struct hc_rpc_call *c, char ***ret, size_t *ret_n, struct hc_rpc_err *err)
{
	json_t *env = json_object_get(c->params, "env"), *v;
	const char *k;
	char **list;
	size_t n = 0, i;

	*ret = NULL;
	*ret_n = 0;
	if (!env)
		return 0;
	if (!json_is_object(env) && !json_is_array(env)) {
		hc_rpc_fail_param(err, "env", "'env' must be an object or an array of KEY=VALUE");
		return -EINVAL;
	}
	list = calloc((json_is_object(env) ? json_object_size(env) : json_array_size(env)) + 1,
		      sizeof(*list));
	if (!list) {
		hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
		return -ENOMEM;
	}
	if (json_is_object(env)) {
		json_object_foreach(env, k, v)
		{
			if (!json_is_string(v) || !*k || strchr(k, '=') ||
			    asprintf(&list[n], "%s=%s", k, json_string_value(v)) < 0)
				goto bad;
			n++;
		}
	} else {
		json_array_foreach(env, i, v)
		{
			if (!json_is_string(v) || !*json_string_value(v) ||
			    !(list[n] = strdup(json_string_value(v))))
				goto bad;
			n++;
		}
	}
	*ret = list;
	*ret_n = n;
	return 0;
bad:
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	hc_rpc_fail_param(err, "env",
			  "'env': every entry is a string KEY=VALUE (or \"KEY\": \"VALUE\")");
	return -EINVAL;
}

static json_t *m_vm_exec(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {
		"id",	 "command",	   "env",    "workdir", "user",		"timeout_secs",
		"stdin", "stdin_encoding", "detach", "stream",	"output_limit", "tty",
		NULL};
	struct hc_server *s = c->ctx;
	struct vm_exec_job j = {.job = {.fn = vm_exec_fn}};
	struct hc_pvm_info *l = NULL;
	struct hc_error e = {0};
	json_t *cmd = json_object_get(c->params, "command"), *v, *ret = NULL;
	const char **argv = NULL;
	char **env = NULL;
	size_t n_l = 0, n_env = 0, i;
	bool stream = false, detach = false;
	long long limit = 0;
	void *in = NULL;
	size_t in_len = 0;

	if (vm_id(c, names, j.id, err) < 0)
		return NULL;
	if (!json_is_array(cmd) || json_array_size(cmd) == 0)
		return hc_rpc_fail_param(err, "command",
					 "'command' is required: an array of strings");
	argv = calloc(json_array_size(cmd) + 1, sizeof(*argv));
	if (!argv)
		return hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
	json_array_foreach(cmd, i, v)
	{
		if (!json_is_string(v)) {
			hc_rpc_fail_param(err, "command", "'command' is an array of strings");
			goto out;
		}
		argv[i] = json_string_value(v);
	}
	hc_pvm_exec_opts_init(&j.o);
	j.o.cmd = argv;
	j.o.n_cmd = json_array_size(cmd);
	j.o.timeout_s = s->cfg->default_timeout_secs;
	v = json_object_get(c->params, "timeout_secs");
	if (v && (!json_is_number(v) || json_number_value(v) < 0)) {
		hc_rpc_fail_param(err, "timeout_secs",
				  "'timeout_secs' must be seconds >= 0 (0: none)");
		goto out;
	}
	if (v)
		j.o.timeout_s = json_number_value(v);
	if (env_param(c, &env, &n_env, err) < 0 ||
	    hc_rpc_param_str(c, "workdir", &j.o.workdir, err) < 0 ||
	    hc_rpc_param_str(c, "user", &j.o.user, err) < 0 ||
	    hc_rpc_param_bool(c, "stream", &stream, err) < 0 ||
	    hc_rpc_param_bool(c, "detach", &detach, err) < 0 ||
	    hc_rpc_param_bool(c, "tty", &j.o.tty, err) < 0 ||
	    hc_rpc_param_int(c, "output_limit", 1, 1ll << 32, &limit, err) < 0 ||
	    hc_server_param_data(c, "stdin", "stdin_encoding", &in, &in_len, err) < 0)
		goto out;
	j.o.env = (const char *const *)env;
	j.o.n_env = n_env;
	if (detach) {
		struct hc_pvm_exec_result er = {0};

		j.o.detach = true;
		/* A detached command outlives the call: the server's default timeout is not for
		 * it. */
		if (!json_object_get(c->params, "timeout_secs"))
			j.o.timeout_s = 0;
		if (hc_pvm_exec(j.id, &j.o, &er, &e) < 0)
			fail_pvm(err, &e);
		else
			ret = json_pack("{s:i, s:b}", "pid", er.pid, "detached", 1);
		goto out;
	}
	if (hc_pvm_list(&l, &n_l, &e) < 0) {
		fail_pvm(err, &e);
		goto out;
	}
	for (i = 0; i < n_l && !j.vm; i++)
		if (hc_streq(l[i].id, j.id))
			j.vm = &l[i];
	if (!j.vm) {
		snprintf(err->e.kind, sizeof(err->e.kind), HC_EK_VM);
		hc_rpc_fail(err, HC_RPC_HOTCELL_ERROR, "VM %.12s is gone", j.id);
		goto out;
	}
	if (!stream)
		c->stream = NULL;
	j.job.tty_fd = c->stream ? c->stream->tty_fd : -1;
	j.job.winch_fd = c->stream ? c->stream->winch_fd : -1;
	j.job.output_limit = (size_t)limit;
	j.job.stdin_data = in;
	j.job.stdin_len = in_len;
	ret = hc_server_exec(s, c, &j.job, err);
out:
	hc_pvm_list_free(l, n_l);
	for (i = 0; i < n_env; i++)
		free(env[i]);
	free(env);
	free(argv);
	free(in);
	return ret;
}

/* A private scratch dir for a file on its way in or out (the supervisor reads and writes it). */
static int scratch_dir(char *buf, size_t n, struct hc_error *e)
{
	char rt[HC_PATH_MAX];
	int r = hc_path_runtime_dir(rt, sizeof(rt), e);

	if (r < 0 || (r = hc_path_fmt(buf, n, e, "%s/serve-XXXXXX", rt)) < 0)
		return r;
	if (!mkdtemp(buf))
		return hc_error_errno(e, -errno, "mkdtemp %s", buf);
	return 0;
}

#define VM_FILE_MAX (64u << 20)

static json_t *m_vm_write_file(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"id", "path", "content", "mode", NULL};
	char id[HC_PVM_ID_LEN + 1], dir[HC_PATH_MAX] = "", tmp[HC_PATH_MAX];
	const char *path = NULL, *content = NULL;
	struct hc_error e = {0};
	long long mode = 0644;
	void *data = NULL;
	size_t len = 0;
	json_t *ret = NULL;
	int r;

	if (vm_id(c, names, id, err) < 0 || hc_rpc_param_str(c, "path", &path, err) < 0 ||
	    hc_rpc_param_str(c, "content", &content, err) < 0 ||
	    hc_rpc_param_int(c, "mode", 0, 07777, &mode, err) < 0)
		return NULL;
	if (!path || path[0] != '/')
		return hc_rpc_fail_param(err, "path", "'path' is required: an absolute guest path");
	if (!content)
		return hc_rpc_fail_param(err, "content", "'content' is required (base64)");
	r = hc_server_base64_decode(content, strlen(content), &data, &len);
	if (r < 0)
		return r == -ENOMEM ? hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory")
				    : hc_rpc_fail_param(
					      err, "content",
					      "'content' is not valid base64 (RFC 4648, padded)");
	if (scratch_dir(dir, sizeof(dir), &e) < 0 ||
	    hc_path_fmt(tmp, sizeof(tmp), &e, "%s/file", dir) < 0 ||
	    hc_path_write_file_atomic(tmp, data, len, (mode_t)mode, &e) < 0) {
		fail_pvm(err, &e);
		goto out;
	}
	/* The mode as given, whatever the umask: the copy keeps it. */
	if (chmod(tmp, (mode_t)mode) < 0) {
		hc_error_errno(&e, -errno, "chmod %s", tmp);
		fail_pvm(err, &e);
		goto out;
	}
	if (hc_pvm_copy_in(id, tmp, path, &e) < 0) {
		fail_pvm(err, &e);
		goto out;
	}
	ret = json_object();
out:
	if (dir[0])
		hc_path_rm_rf(dir, NULL);
	free(data);
	return ret;
}

static json_t *m_vm_read_file(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"id", "path", NULL};
	char id[HC_PVM_ID_LEN + 1], dir[HC_PATH_MAX] = "", tmp[HC_PATH_MAX];
	const char *path = NULL;
	struct hc_error e = {0};
	struct stat st;
	char *data = NULL, *b64 = NULL;
	size_t len = 0;
	json_t *ret = NULL;

	if (vm_id(c, names, id, err) < 0 || hc_rpc_param_str(c, "path", &path, err) < 0)
		return NULL;
	if (!path || path[0] != '/')
		return hc_rpc_fail_param(err, "path", "'path' is required: an absolute guest path");
	if (scratch_dir(dir, sizeof(dir), &e) < 0 ||
	    hc_path_fmt(tmp, sizeof(tmp), &e, "%s/file", dir) < 0 ||
	    hc_pvm_copy_out(id, path, tmp, &e) < 0) {
		fail_pvm(err, &e);
		goto out;
	}
	if (lstat(tmp, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err->e.kind, sizeof(err->e.kind), HC_EK_USAGE);
		hc_rpc_fail(err, HC_RPC_HOTCELL_ERROR, "'%s' is not a regular file", path);
		goto out;
	}
	if (hc_path_read_file(tmp, VM_FILE_MAX, &data, &len, &e) < 0) {
		fail_pvm(err, &e);
		goto out;
	}
	b64 = hc_lib_base64(data, len);
	ret = b64 ? json_pack("{s:s, s:i, s:I}", "content", b64, "mode", (int)(st.st_mode & 07777),
			      "size", (json_int_t)len)
		  : hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
out:
	if (dir[0])
		hc_path_rm_rf(dir, NULL);
	free(data);
	free(b64);
	return ret;
}

/* ---- snapshot, restore, fork (docs/snapshots.md) ----
 * A client names a snapshot, never a host path: they live in <state dir>/server-snapshots/
 * under a name the server makes (or the client gives: [A-Za-z0-9][A-Za-z0-9_.-]*). */

static bool snapshot_name_ok(const char *n)
{
	size_t len = strlen(n);

	if (!len || len > 64 ||
	    !((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= 'A' && n[0] <= 'Z') ||
	      (n[0] >= '0' && n[0] <= '9')))
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
	       len;
}

static int snapshot_dir(const char *name, char *buf, size_t n, struct hc_error *e)
{
	char state[HC_PATH_MAX], dir[HC_PATH_MAX];
	int r = hc_path_state_dir(state, sizeof(state), e);

	if (r < 0 || (r = hc_path_fmt(dir, sizeof(dir), e, "%s/server-snapshots", state)) < 0 ||
	    (r = hc_path_mkdir_p(dir, 0700, e)) < 0)
		return r;
	return hc_path_fmt(buf, n, e, "%s/%s", dir, name);
}

static json_t *m_vm_snapshot(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"id", "snapshot", "leave_paused", NULL};
	char id[HC_PVM_ID_LEN + 1], gen[33], dir[HC_PATH_MAX];
	const char *name = NULL;
	struct hc_error e = {0};
	bool leave = false;
	unsigned char rnd[16];

	if (vm_id(c, names, id, err) < 0 || hc_rpc_param_str(c, "snapshot", &name, err) < 0 ||
	    hc_rpc_param_bool(c, "leave_paused", &leave, err) < 0)
		return NULL;
	if (name && !snapshot_name_ok(name))
		return hc_rpc_fail_param(err, "snapshot",
					 "'snapshot' must be a name: [A-Za-z0-9][A-Za-z0-9_.-]*, "
					 "at most 64");
	if (!name) {
		if (getentropy(rnd, sizeof(rnd)) < 0)
			return hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "getentropy: %s",
					   strerror(errno));
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(gen + 2 * i, 3, "%02x", rnd[i]);
		name = gen;
	}
	if (snapshot_dir(name, dir, sizeof(dir), &e) < 0 || hc_pvm_snapshot(id, dir, leave, &e) < 0)
		return fail_pvm(err, &e);
	return json_pack("{s:s}", "snapshot", name);
}

static json_t *m_vm_restore(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"snapshot", "name", NULL};
	struct hc_pvm_create_opts o = {0};
	char id[HC_PVM_ID_LEN + 1], dir[HC_PATH_MAX];
	const char *name = NULL;
	struct hc_error e = {0};

	if (hc_rpc_params_only(c, names, err) < 0 ||
	    hc_rpc_param_str(c, "snapshot", &name, err) < 0 ||
	    hc_rpc_param_str(c, "name", &o.name, err) < 0)
		return NULL;
	if (!name || !snapshot_name_ok(name))
		return hc_rpc_fail_param(err, "snapshot",
					 "'snapshot' is required: the name vm.snapshot answered");
	if (snapshot_dir(name, dir, sizeof(dir), &e) < 0)
		return fail_pvm(err, &e);
	if (!hc_path_exists(dir)) {
		snprintf(err->e.kind, sizeof(err->e.kind), HC_EK_USAGE);
		return hc_rpc_fail_param(err, "snapshot", "no snapshot named '%s'", name);
	}
	o.restore_dir = dir;
	if (hc_pvm_create(NULL, &o, id, &e) < 0)
		return fail_pvm(err, &e);
	return json_pack("{s:s}", "id", id);
}

static json_t *m_vm_fork(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"id", "count", NULL};
	char id[HC_PVM_ID_LEN + 1];
	char(*ids)[HC_PVM_ID_LEN + 1];
	struct hc_error e = {0};
	long long count = 1;
	json_t *arr;

	if (vm_id(c, names, id, err) < 0 || hc_rpc_param_int(c, "count", 1, 64, &count, err) < 0)
		return NULL;
	ids = calloc((size_t)count, sizeof(*ids));
	if (!ids)
		return hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
	if (hc_pvm_fork(id, (unsigned)count, ids, &e) < 0) {
		free(ids);
		return fail_pvm(err, &e);
	}
	arr = json_array();
	for (long long i = 0; arr && i < count; i++)
		json_array_append_new(arr, json_string(ids[i]));
	free(ids);
	return arr ? json_pack("{s:o}", "ids", arr)
		   : hc_rpc_fail(err, HC_RPC_INTERNAL_ERROR, "out of memory");
}

/* clang-format off */
const struct hc_rpc_method hc_server_methods[] = {
	{"health", m_health, 0},
	{"sandbox.run", m_sandbox_run, HC_RPC_STREAMING},
	{"image.list", m_image_list, 0},
	{"image.pull", m_image_pull, 0},
	{"vm.create", m_vm_create, 0},
	{"vm.list", m_vm_list, 0},
	{"vm.get", m_vm_get, 0},
	{"vm.pause", m_vm_pause, 0},
	{"vm.resume", m_vm_resume, 0},
	{"vm.destroy", m_vm_destroy, 0},
	{"vm.exec", m_vm_exec, HC_RPC_STREAMING},
	{"vm.write_file", m_vm_write_file, 0},
	{"vm.read_file", m_vm_read_file, 0},
	{"vm.snapshot", m_vm_snapshot, 0},
	{"vm.restore", m_vm_restore, 0},
	{"vm.fork", m_vm_fork, 0},
	{"vm.migrate", hc_server_m_vm_migrate, 0},
	{"migrate.query", hc_server_m_migrate_query, 0},
	{"migrate.commit", hc_server_m_migrate_commit, 0},
	{"migrate.abort", hc_server_m_migrate_abort, 0},
	{"executor.list", hc_server_executor_list, 0},
	{"executor.invoke", hc_server_executor_invoke, HC_RPC_STREAMING},
};
/* clang-format on */
const size_t hc_server_n_methods = HC_ARRAY_SIZE(hc_server_methods);
