/* SPDX-License-Identifier: MIT */
/* config.json and process.json (runtime/runtime.h): untrusted input, bounded and validated. */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/util.h"
#include "runtime/runtime.h"

#define MAX_ARGS 4096
#define MAX_MOUNTS 256

static int bad(struct hc_error *err, const char *what, const char *field, const char *should)
{
	return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "%s: %s must be %s", what, field, should);
}

static bool str_ok(const char *s)
{
	return s && strlen(s) < 65536;
}

static int strv(const json_t *a, const char *what, const char *field, bool need, char ***ret,
		size_t *ret_n, struct hc_error *err)
{
	size_t i, n;
	char **v;

	*ret = NULL;
	*ret_n = 0;
	if (!a)
		return need ? bad(err, what, field, "present") : 0;
	if (!json_is_array(a) || json_array_size(a) > MAX_ARGS || (need && !json_array_size(a)))
		return bad(err, what, field, "a non-empty array of strings");
	n = json_array_size(a);
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	for (i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(a, i));

		if (!str_ok(s) || !(v[i] = strdup(s))) {
			for (size_t k = 0; k < i; k++)
				free(v[k]);
			free(v);
			return bad(err, what, field, "an array of strings");
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void rt_process_free(struct rt_process *p)
{
	strv_free(p->args, p->n_args);
	strv_free(p->env, p->n_env);
	free(p->cwd);
	*p = (struct rt_process){0};
}

static int uint_field(const json_t *o, const char *key, unsigned *ret)
{
	const json_t *v = json_object_get(o, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > 0xfffffffeLL)
		return -EINVAL;
	*ret = (unsigned)json_integer_value(v);
	return 0;
}

int rt_process_from_json(const json_t *p, const char *what, struct rt_process *ret,
			 struct hc_error *err)
{
	const json_t *user, *cwd, *term;
	int r;

	*ret = (struct rt_process){0};
	if (!json_is_object(p))
		return bad(err, what, "process", "an object");
	r = strv(json_object_get(p, "args"), what, "process.args", true, &ret->args, &ret->n_args,
		 err);
	if (r >= 0)
		r = strv(json_object_get(p, "env"), what, "process.env", false, &ret->env,
			 &ret->n_env, err);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < ret->n_env; i++)
		if (!strchr(ret->env[i], '=') || ret->env[i][0] == '=') {
			r = bad(err, what, "process.env entries", "KEY=VALUE");
			goto fail;
		}
	cwd = json_object_get(p, "cwd");
	if (cwd && (!str_ok(json_string_value(cwd)) || json_string_value(cwd)[0] != '/')) {
		r = bad(err, what, "process.cwd", "an absolute path");
		goto fail;
	}
	if (cwd && !(ret->cwd = strdup(json_string_value(cwd)))) {
		r = hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
		goto fail;
	}
	user = json_object_get(p, "user");
	if (user && (!json_is_object(user) || uint_field(user, "uid", &ret->uid) < 0 ||
		     uint_field(user, "gid", &ret->gid) < 0)) {
		r = bad(err, what, "process.user", "an object with numeric uid and gid");
		goto fail;
	}
	term = json_object_get(p, "terminal");
	if (term && !json_is_boolean(term)) {
		r = bad(err, what, "process.terminal", "a boolean");
		goto fail;
	}
	ret->terminal = json_is_true(term);
	return 0;
fail:
	rt_process_free(ret);
	return r;
}

int rt_process_parse(const char *data, size_t len, struct rt_process *ret, struct hc_error *err)
{
	json_error_t je;
	json_t *p;
	int r;

	*ret = (struct rt_process){0};
	if (len > RT_CONFIG_MAX)
		return hc_error_setk(err, -E2BIG, HC_EK_USAGE, "process.json: over %u bytes",
				     RT_CONFIG_MAX);
	p = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!p)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "process.json: line %d: %s",
				     je.line, je.text);
	r = rt_process_from_json(p, "process.json", ret, err);
	json_decref(p);
	return r;
}

void rt_config_free(struct rt_config *c)
{
	free(c->oci_version);
	rt_process_free(&c->process);
	free(c->root_path);
	free(c->hostname);
	free(c->netns);
	for (size_t i = 0; i < c->n_volumes; i++) {
		free(c->volumes[i].host);
		free(c->volumes[i].guest);
	}
	free(c->volumes);
	json_decref(c->annotations);
	*c = (struct rt_config){0};
}

/* A bind mount: "type": "bind", or "bind"/"rbind" among the options. */
static bool is_bind(const json_t *m, bool *readonly)
{
	const char *type = json_string_value(json_object_get(m, "type"));
	const json_t *opts = json_object_get(m, "options"), *o;
	bool bind = type && hc_streq(type, "bind");
	size_t i;

	*readonly = false;
	json_array_foreach(opts, i, o)
	{
		const char *s = json_string_value(o);

		if (s && (hc_streq(s, "bind") || hc_streq(s, "rbind")))
			bind = true;
		if (s && hc_streq(s, "ro"))
			*readonly = true;
	}
	return bind;
}

static int mounts(const json_t *a, struct rt_config *c, struct hc_error *err)
{
	const json_t *m;
	size_t i;

	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > MAX_MOUNTS)
		return bad(err, "config.json", "mounts", "an array of at most 256 objects");
	c->volumes = calloc(json_array_size(a) + 1, sizeof(*c->volumes));
	if (!c->volumes)
		return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	json_array_foreach(a, i, m)
	{
		const char *dst = json_string_value(json_object_get(m, "destination"));
		const char *src = json_string_value(json_object_get(m, "source"));
		const json_t *opts = json_object_get(m, "options");
		struct rt_volume *v;
		bool ro;

		if (!json_is_object(m) || !str_ok(dst) || dst[0] != '/' ||
		    (json_object_get(m, "source") && !str_ok(src)) ||
		    (opts && !json_is_array(opts)))
			return bad(err, "config.json", "mounts entries",
				   "objects with an absolute destination");
		if (!is_bind(m, &ro) || !src || src[0] != '/')
			continue; /* proc, sysfs, tmpfs, devpts, mqueue, cgroup: the guest's own */
		v = &c->volumes[c->n_volumes];
		v->host = strdup(src);
		v->guest = strdup(dst);
		v->readonly = ro;
		c->n_volumes++;
		if (!v->host || !v->guest)
			return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	}
	return 0;
}

/* linux.namespaces: the engine's network namespace (a "network" entry with a path); the rest
 * are the VM's business (ignored). */
static int network_ns(const json_t *ns, struct rt_config *c, struct hc_error *err)
{
	size_t i;
	const json_t *e;

	if (!ns)
		return 0;
	if (!json_is_array(ns))
		return bad(err, "config.json", "linux.namespaces", "an array");
	json_array_foreach(ns, i, e)
	{
		const json_t *path = json_object_get(e, "path");
		const char *p = json_string_value(path);

		if (!json_is_object(e) || !json_is_string(json_object_get(e, "type")))
			return bad(err, "config.json", "linux.namespaces[]",
				   "objects with a \"type\"");
		if (!hc_streq(json_string_value(json_object_get(e, "type")), "network") || !path)
			continue;
		if (!p || p[0] != '/' || strlen(p) >= 4096)
			return bad(err, "config.json", "the network namespace's path",
				   "an absolute path");
		free(c->netns);
		c->netns = strdup(p);
		if (!c->netns)
			return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	}
	return 0;
}

static void resources(const json_t *res, struct rt_config *c)
{
	const json_t *mem = json_object_get(json_object_get(res, "memory"), "limit");
	const json_t *cpu = json_object_get(res, "cpu");
	json_int_t quota = json_integer_value(json_object_get(cpu, "quota"));
	json_int_t period = json_integer_value(json_object_get(cpu, "period"));

	if (json_is_integer(mem) && json_integer_value(mem) > 0) {
		json_int_t mib = json_integer_value(mem) >> 20;

		c->memory_mib = mib < 64 ? 64 : mib > 65536 ? 65536 : (unsigned)mib;
	}
	if (quota > 0 && period > 0) {
		json_int_t n = (quota + period - 1) / period;

		c->cpus = n > 64 ? 64 : (unsigned)n;
	}
}

int rt_config_parse(const char *data, size_t len, struct rt_config *c, struct hc_error *err)
{
	const json_t *root, *v, *ann;
	json_error_t je;
	json_t *j;
	int r = 0;

	*c = (struct rt_config){0};
	if (len > RT_CONFIG_MAX)
		return hc_error_setk(err, -E2BIG, HC_EK_USAGE, "config.json: over %u bytes",
				     RT_CONFIG_MAX);
	j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "config.json: line %d: %s", je.line,
				     je.text);
	if (!json_is_object(j)) {
		r = bad(err, "config.json", "the document", "an object");
		goto out;
	}
	v = json_object_get(j, "ociVersion");
	if (!str_ok(json_string_value(v))) {
		r = bad(err, "config.json", "ociVersion", "a string");
		goto out;
	}
	c->oci_version = strdup(json_string_value(v));
	root = json_object_get(j, "root");
	v = json_object_get(root, "path");
	if (!json_is_object(root) || !str_ok(json_string_value(v)) || !json_string_value(v)[0]) {
		r = bad(err, "config.json", "root.path", "a non-empty string");
		goto out;
	}
	c->root_path = strdup(json_string_value(v));
	c->root_readonly = json_is_true(json_object_get(root, "readonly"));
	v = json_object_get(j, "process");
	if (v) {
		r = rt_process_from_json(v, "config.json", &c->process, err);
		if (r < 0)
			goto out;
		c->has_process = true;
	}
	v = json_object_get(j, "hostname");
	if (v && (!str_ok(json_string_value(v)) || strlen(json_string_value(v)) > 64)) {
		r = bad(err, "config.json", "hostname", "a string of at most 64 bytes");
		goto out;
	}
	if (v)
		c->hostname = strdup(json_string_value(v));
	r = mounts(json_object_get(j, "mounts"), c, err);
	if (r < 0)
		goto out;
	resources(json_object_get(json_object_get(j, "linux"), "resources"), c);
	r = network_ns(json_object_get(json_object_get(j, "linux"), "namespaces"), c, err);
	if (r < 0)
		goto out;
	ann = json_object_get(j, "annotations");
	if (ann && !json_is_object(ann)) {
		r = bad(err, "config.json", "annotations", "an object");
		goto out;
	}
	c->annotations = ann ? json_deep_copy(ann) : json_object();
	if (!c->oci_version || !c->root_path || !c->annotations ||
	    (json_object_get(j, "hostname") && !c->hostname))
		r = hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
out:
	json_decref(j);
	if (r < 0)
		rt_config_free(c);
	return r;
}

static int set(struct hc_runopts *ro, const char *name, const char *value, struct hc_error *err)
{
	int r = hc_runopts_set(ro, HC_RUNOPT_VM, name, value, err);

	return r < 0 ? hc_error_prefix(err, "config.json") : r;
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == 0 || path[n] == '/');
}

int rt_config_runopts(const struct rt_config *c, const char *bundle, struct hc_runopts *ro,
		      struct hc_error *err)
{
	static const struct {
		const char *annotation, *option;
	} overrides[] = {
		{"org.hotcell.backend", "backend"},
		{"org.hotcell.cpus", "cpus"},
		{"org.hotcell.memory_mib", "memory"},
	};
	char buf[4200];
	int r;

	if (c->root_path[0] == '/')
		snprintf(buf, sizeof(buf), "%s", c->root_path);
	else
		snprintf(buf, sizeof(buf), "%s/%s", bundle, c->root_path);
	r = set(ro, "rootfs", buf, err);
	/* The engine's rootfs: what the container writes lands in it (root.readonly: an
	 * overlay in the guest's memory instead). */
	if (r >= 0 && !c->root_readonly)
		r = set(ro, "rootfs-rw", NULL, err);
	if (r >= 0 && c->hostname && c->hostname[0])
		r = set(ro, "hostname", c->hostname, err);
	for (size_t i = 0; r >= 0 && c->has_process && i < c->process.n_env; i++)
		r = set(ro, "env", c->process.env[i], err);
	if (r >= 0 && c->has_process && c->process.cwd)
		r = set(ro, "workdir", c->process.cwd, err);
	if (r >= 0 && c->has_process) {
		snprintf(buf, sizeof(buf), "%u:%u", c->process.uid, c->process.gid);
		r = set(ro, "user", buf, err);
	}
	for (size_t i = 0; r >= 0 && i < c->n_volumes; i++) {
		const struct rt_volume *v = &c->volumes[i];
		struct stat sb;

		/* The guest's own /dev, /proc and /sys stay; a file bind (the engine's
		 * /etc/hosts, resolv.conf, hostname) cannot be a virtio-fs volume. */
		if (under(v->guest, "/dev") || under(v->guest, "/proc") ||
		    under(v->guest, "/sys") || stat(v->host, &sb) < 0 || !S_ISDIR(sb.st_mode))
			continue;

		snprintf(buf, sizeof(buf), "%s:%s%s", v->host, v->guest, v->readonly ? ":ro" : "");
		r = set(ro, "volume", buf, err);
	}
	if (r >= 0 && c->memory_mib) {
		snprintf(buf, sizeof(buf), "%u", c->memory_mib);
		r = set(ro, "memory", buf, err);
	}
	if (r >= 0 && c->cpus) {
		snprintf(buf, sizeof(buf), "%u", c->cpus);
		r = set(ro, "cpus", buf, err);
	}
	for (size_t i = 0; r >= 0 && i < HC_ARRAY_SIZE(overrides); i++) {
		const char *v =
			json_string_value(json_object_get(c->annotations, overrides[i].annotation));

		if (v) {
			r = hc_runopts_set(ro, HC_RUNOPT_VM, overrides[i].option, v, err);
			if (r < 0)
				hc_error_prefix(err, "annotation %s", overrides[i].annotation);
		}
	}
	return r;
}

int rt_signal_parse(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} names[] = {
		{"HUP", SIGHUP},   {"INT", SIGINT},	  {"QUIT", SIGQUIT}, {"ILL", SIGILL},
		{"TRAP", SIGTRAP}, {"ABRT", SIGABRT},	  {"IOT", SIGIOT},   {"BUS", SIGBUS},
		{"FPE", SIGFPE},   {"KILL", SIGKILL},	  {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
		{"USR2", SIGUSR2}, {"PIPE", SIGPIPE},	  {"ALRM", SIGALRM}, {"TERM", SIGTERM},
		{"CHLD", SIGCHLD}, {"CONT", SIGCONT},	  {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
		{"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},	  {"URG", SIGURG},   {"XCPU", SIGXCPU},
		{"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
		{"IO", SIGIO},	   {"PWR", SIGPWR},	  {"SYS", SIGSYS},
	};
	char *end;
	long n;

	if (!s || !*s)
		return -EINVAL;
	if (isdigit((unsigned char)s[0])) {
		n = strtol(s, &end, 10);
		return *end || n < 1 || n > 64 ? -EINVAL : (int)n;
	}
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < HC_ARRAY_SIZE(names); i++)
		if (!strcasecmp(s, names[i].name))
			return names[i].sig;
	return -EINVAL;
}
