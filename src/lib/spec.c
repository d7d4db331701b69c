/* SPDX-License-Identifier: MIT */
/*
 * The exec request of a run, by podman's rules (DESIGN.md §6; podman's
 * pkg/specgen/generate/oci.go makeCommand and pkg/env for -e).
 */
#include <jansson.h>

#include "core/error.h"
#include "core/pty.h"
#include "lib/spec.h"

/* What the guest's execve takes: one string of at most MAX_ARG_STRLEN (32 pages, with its NUL),
 * and the whole command line and environment within one EXEC frame. */
#define EXEC_STRING_MAX (32u * 4096 - 1)

/* A growable NULL-terminated array of malloc'd strings. */
struct strv {
	char **v;
	size_t n;
};

static int strv_push(struct strv *s, const char *str, struct hc_error *err)
{
	char **nv, *copy;

	if (s->n >= HC_PROTO_MAX_ARGS)
		return hc_error_setk(err, -E2BIG, HC_EK_USAGE,
				     "too many arguments or variables (max %u)", HC_PROTO_MAX_ARGS);
	if (strlen(str) > EXEC_STRING_MAX || strlen(str) > HC_PROTO_MAX_STRING)
		return hc_error_setk(
			err, -E2BIG, HC_EK_USAGE,
			"argument '%.32s...' too long: %zu bytes, over the limit of %u "
			"bytes for one argument or variable",
			str, strlen(str), EXEC_STRING_MAX);
	copy = strdup(str);
	nv = copy ? realloc(s->v, (s->n + 2) * sizeof(*nv)) : NULL;
	if (!nv) {
		free(copy);
		return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	}
	s->v = nv;
	s->v[s->n++] = copy;
	s->v[s->n] = NULL;
	return 0;
}

static void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* --entrypoint takes a plain command, or a JSON array of strings as podman accepts
 * ('["/bin/sh","-c"]'); "" clears the image's entrypoint. */
static int entrypoint_from_flag(struct strv *argv, const char *flag, struct hc_error *err)
{
	json_t *arr, *it;
	size_t i;
	int r = 0;

	if (!*flag)
		return 0;
	if (flag[0] != '[')
		return strv_push(argv, flag, err);
	arr = json_loads(flag, 0, NULL);
	if (!json_is_array(arr)) {
		json_decref(arr);
		return strv_push(argv, flag, err);
	}
	json_array_foreach(arr, i, it)
	{
		if (!json_is_string(it)) {
			r = hc_error_setk(err, -EINVAL, HC_EK_USAGE,
					  "--entrypoint: a JSON array must hold strings only");
			break;
		}
		r = strv_push(argv, json_string_value(it), err);
		if (r < 0)
			break;
	}
	json_decref(arr);
	return r;
}

static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');

	return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* Sets KEY=VALUE, replacing an earlier KEY in place so the image's order is kept. */
static int env_set(struct strv *env, const char *kv, struct hc_error *err)
{
	size_t kl = key_len(kv);

	for (size_t i = 0; i < env->n; i++) {
		if (key_len(env->v[i]) == kl && strncmp(env->v[i], kv, kl) == 0) {
			char *copy = strdup(kv);

			if (!copy)
				return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
			free(env->v[i]);
			env->v[i] = copy;
			return 0;
		}
	}
	return strv_push(env, kv, err);
}

static bool env_has(const struct strv *env, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < env->n; i++)
		if (key_len(env->v[i]) == kl && strncmp(env->v[i], key, kl) == 0)
			return true;
	return false;
}

static int build_env(struct strv *env, const struct hc_run_opts *opts,
		     const struct hc_lib_image_defaults *img, struct hc_error *err)
{
	int r;

	/* -t: the host's TERM, as the default the image and -e may override (podman sets
	 * TERM=xterm the same way). */
	if (opts->tty) {
		const char *term = opts->term ? opts->term : getenv("TERM");
		char *kv;

		if (asprintf(&kv, "TERM=%s",
			     term && *term && !strchr(term, '\n') ? term : "xterm") < 0)
			return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
		r = env_set(env, kv, err);
		free(kv);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; img && i < img->n_env; i++) {
		const char *e = img->env[i];
		/* An image entry without '=' is meaningless to execve; skip it as runc does. */
		if (!strchr(e, '=') || e[0] == '=')
			continue;
		if (strlen(e) > EXEC_STRING_MAX)
			return hc_error_setk(err, -E2BIG, HC_EK_IMAGE,
					     "the image config's Env entry %.*s is %zu bytes, over "
					     "the limit of %u bytes for one variable (-e %.*s= "
					     "replaces it)",
					     (int)(key_len(e) > 64 ? 64 : key_len(e)), e, strlen(e),
					     EXEC_STRING_MAX,
					     (int)(key_len(e) > 64 ? 64 : key_len(e)), e);
		r = env_set(env, e, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < opts->n_env; i++) {
		const char *e = opts->env[i];
		size_t kl = key_len(e);

		if (kl == 0)
			return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
					     "-e '%s': empty variable name", e);
		if (e[kl] == '=') {
			r = env_set(env, e, err);
		} else {
			/* -e KEY: the host's value, nothing when the host has none (podman). */
			const char *v = getenv(e);
			char *kv;

			if (!v)
				continue;
			if (asprintf(&kv, "%s=%s", e, v) < 0)
				return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
			r = env_set(env, kv, err);
			free(kv);
		}
		if (r < 0)
			return r;
	}
	if (!env_has(env, "PATH"))
		return strv_push(env, "PATH=" HC_LIB_DEFAULT_PATH, err);
	return 0;
}

void hc_lib_exec_clear(struct hc_proto_exec *e)
{
	struct strv a, v;

	if (!e)
		return;
	a = (struct strv){e->argv, e->argc};
	v = (struct strv){e->env, e->envc};
	strv_free(&a);
	strv_free(&v);
	free(e->user);
	free(e->cwd);
	memset(e, 0, sizeof(*e));
}

int hc_lib_exec_build(const struct hc_run_opts *opts, const struct hc_lib_image_defaults *img,
		      struct hc_proto_exec *ret, struct hc_error *err)
{
	struct strv argv = {0}, env = {0};
	const char *workdir, *user;
	double timeout_s;
	uint32_t flags = 0;
	char *cwd_copy = NULL, *user_copy = NULL;
	int r;

	if (opts->entrypoint) {
		r = entrypoint_from_flag(&argv, opts->entrypoint, err);
	} else {
		r = 0;
		for (size_t i = 0; img && i < img->n_entrypoint && r >= 0; i++)
			r = strv_push(&argv, img->entrypoint[i], err);
	}
	if (r < 0)
		goto fail;
	if (opts->n_cmd > 0) {
		for (size_t i = 0; i < opts->n_cmd && r >= 0; i++)
			r = strv_push(&argv, opts->cmd[i], err);
	} else if (img && !opts->entrypoint) {
		/* podman: the image's Cmd only when the user did not set an entrypoint. */
		for (size_t i = 0; i < img->n_cmd && r >= 0; i++)
			r = strv_push(&argv, img->cmd[i], err);
	}
	if (r < 0)
		goto fail;
	if (argv.n == 0) {
		r = hc_error_setk(
			err, -EINVAL, HC_EK_USAGE,
			img ? "no command or entrypoint provided, and no CMD or ENTRYPOINT "
			      "from image"
			    : "no command given (with --rootfs there is no image config: "
			      "CMD is required)");
		goto fail;
	}
	if (argv.v[0][0] == 0) {
		r = hc_error_setk(err, -EINVAL, HC_EK_USAGE, "the command is an empty string");
		goto fail;
	}

	r = build_env(&env, opts, img, err);
	if (r < 0)
		goto fail;
	/* The whole of it travels in one EXEC frame: say the limit, and how much is the image's. */
	{
		size_t total = 4 + 4 + 4 + 4 + 4, img_env = 0;
		for (size_t i = 0; i < argv.n; i++)
			total += 4 + strlen(argv.v[i]);
		for (size_t i = 0; i < env.n; i++)
			total += 4 + strlen(env.v[i]);
		for (size_t i = 0; img && i < img->n_env; i++)
			img_env += strlen(img->env[i]);
		total += (opts->workdir ? strlen(opts->workdir) : 0) +
			 (img && img->workdir ? strlen(img->workdir) : 0) +
			 (opts->user ? strlen(opts->user) : 0) +
			 (img && img->user ? strlen(img->user) : 0);
		if (total > HC_PROTO_MAX_PAYLOAD) {
			r = hc_error_setk(err, -E2BIG, HC_EK_USAGE,
					  "the command line and environment take %zu bytes, over "
					  "the limit of %u bytes (%zu bytes of it are the image "
					  "config's Env)",
					  total, HC_PROTO_MAX_PAYLOAD, img_env);
			goto fail;
		}
	}

	if (opts->workdir && *opts->workdir) {
		workdir = opts->workdir;
	} else if (img && img->workdir && *img->workdir) {
		workdir = img->workdir;
		flags |= HC_EXEC_F_CREATE_WORKDIR;
	} else {
		workdir = "/";
	}
	if (workdir[0] != '/') {
		r = hc_error_setk(err, -EINVAL, HC_EK_USAGE, "workdir '%s' is not an absolute path",
				  workdir);
		goto fail;
	}
	user = opts->user ? opts->user : img && img->user ? img->user : "";
	if (opts->interactive && opts->stdin_fd >= 0)
		flags |= HC_EXEC_F_STDIN;
	uint16_t rows = 0, cols = 0;
	if (opts->tty) {
		flags |= HC_EXEC_F_TTY;
		if (opts->tty_fd >= 0 && hc_pty_get_size(opts->tty_fd, &rows, &cols) < 0)
			rows = cols = 0;
	}

	timeout_s = opts->timeout_s > 0	  ? opts->timeout_s
		    : opts->timeout_s < 0 ? 0
					  : HC_LIB_DEFAULT_TIMEOUT_S;
	if (timeout_s * 1000.0 > (double)UINT32_MAX - 1) {
		r = hc_error_setk(err, -ERANGE, HC_EK_USAGE, "--timeout %g is too large",
				  timeout_s);
		goto fail;
	}

	cwd_copy = strdup(workdir);
	user_copy = strdup(user);
	if (!cwd_copy || !user_copy) {
		r = hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
		goto fail;
	}
	*ret = (struct hc_proto_exec){
		.flags = flags,
		.timeout_ms = (uint32_t)(timeout_s * 1000.0 + 0.5),
		.user = user_copy,
		.cwd = cwd_copy,
		.argv = argv.v,
		.argc = argv.n,
		.env = env.v,
		.envc = env.n,
		.rows = rows,
		.cols = cols,
	};
	return 0;
fail:
	free(cwd_copy);
	free(user_copy);
	strv_free(&argv);
	strv_free(&env);
	return r;
}
