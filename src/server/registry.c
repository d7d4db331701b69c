/* SPDX-License-Identifier: MIT */
#include "core/path.h"
#include "oci/ref.h"
#include "lib/runopts.h"
#include "server/exec.h"
#include "server/registry.h"

const char *hc_executor_runtime_name(enum hc_executor_runtime rt)
{
	switch (rt) {
	case HC_EXECUTOR_PYTHON:
		return "python";
	case HC_EXECUTOR_NODE:
		return "node";
	case HC_EXECUTOR_COMMAND:
		return "command";
	}
	return "?";
}

static void fn_free(struct hc_executor_fn *f)
{
	free(f->name);
	free((void *)f->argv);
	json_decref(f->run);
	json_decref(f->entry);
}

static void registry_free(struct hc_registry *r)
{
	for (size_t i = 0; i < r->n; i++)
		fn_free(&r->fns[i]);
	free(r->fns);
	free(r);
}

struct hc_registry *hc_registry_ref(struct hc_registry *r)
{
	if (r)
		atomic_fetch_add(&r->refs, 1);
	return r;
}

void hc_registry_unref(struct hc_registry *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1)
		registry_free(r);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct hc_executor_fn *)a)->name,
		      ((const struct hc_executor_fn *)b)->name);
}

const struct hc_executor_fn *hc_registry_find(const struct hc_registry *r, const char *name)
{
	struct hc_executor_fn key = {.name = (char *)name};

	if (!r || !name || !r->n)
		return NULL;
	return bsearch(&key, r->fns, r->n, sizeof(*r->fns), by_name);
}

static bool name_ok(const char *n)
{
	size_t len = strlen(n);

	if (!len || len > HC_REGISTRY_MAX_NAME ||
	    !((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= 'A' && n[0] <= 'Z') ||
	      (n[0] >= '0' && n[0] <= '9')))
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
	       len;
}

/* A Python identifier of ASCII letters, digits and '_', dotted when dots is set. */
static bool ident_ok(const char *s, size_t n, bool dots)
{
	bool start = true;

	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.' && dots && !start && i + 1 < n) {
			start = true;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		      (!start && c >= '0' && c <= '9')))
			return false;
		start = false;
	}
	return true;
}

/* A function's failure: "ORIGIN: function 'NAME': field 'FIELD': ..." */
static int bad(struct hc_error *err, const char *origin, const char *name, const char *field,
	       const char *fmt, ...) _printf_(5, 6);
static int bad(struct hc_error *err, const char *origin, const char *name, const char *field,
	       const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (field)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "%s: function '%.64s': '%s': %s",
				     origin, name, field, what);
	return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "%s: function '%.64s': %s", origin, name,
			     what);
}

static int parse_handler(struct hc_executor_fn *f, json_t *h, const char *origin,
			 struct hc_error *err)
{
	const char *s, *sep;
	size_t i;
	json_t *v;

	if (!h)
		return bad(err, origin, f->name, "handler", "is required");
	if (f->runtime == HC_EXECUTOR_COMMAND) {
		/* A program (string) or the argv (array of strings). */
		size_t n = json_is_array(h) ? json_array_size(h) : 1;

		if (!json_is_string(h) && !(json_is_array(h) && n > 0 && n <= 256))
			return bad(err, origin, f->name, "handler",
				   "must be the command: a string or an array of 1 to 256 strings");
		if (json_is_string(h) && strlen(json_string_value(h)) > HC_REGISTRY_MAX_HANDLER)
			return bad(err, origin, f->name, "handler", "longer than %u bytes",
				   HC_REGISTRY_MAX_HANDLER);
		const char **argv = calloc(n + 1, sizeof(*argv));

		if (!argv)
			return hc_error_set(err, -ENOMEM, "out of memory");
		f->argv = argv;
		f->argc = n;
		if (json_is_string(h)) {
			argv[0] = json_string_value(h);
		} else {
			json_array_foreach(h, i, v)
			{
				if (!json_is_string(v) ||
				    strlen(json_string_value(v)) > HC_REGISTRY_MAX_HANDLER)
					return bad(err, origin, f->name, "handler",
						   "element %zu is not a string (of at most %u "
						   "bytes)",
						   i, HC_REGISTRY_MAX_HANDLER);
				argv[i] = json_string_value(v);
			}
		}
		if (!*f->argv[0])
			return bad(err, origin, f->name, "handler", "the program is empty");
		return 0;
	}
	if (!json_is_string(h) || strlen(json_string_value(h)) > HC_REGISTRY_MAX_HANDLER ||
	    memchr(json_string_value(h), 0, json_string_length(h)))
		return bad(err, origin, f->name, "handler", "must be a string of at most %u bytes",
			   HC_REGISTRY_MAX_HANDLER);
	s = json_string_value(h);
	if (f->runtime == HC_EXECUTOR_PYTHON) {
		sep = strchr(s, ':');
		if (!sep || !ident_ok(s, (size_t)(sep - s), true) ||
		    !ident_ok(sep + 1, strlen(sep + 1), true))
			return bad(err, origin, f->name, "handler",
				   "'%.200s' is not MODULE:FUNCTION (e.g. \"app.main:handle\")", s);
	} else {
		sep = strrchr(s, '#');
		if (!sep || sep == s || !ident_ok(sep + 1, strlen(sep + 1), true))
			return bad(err, origin, f->name, "handler",
				   "'%.200s' is not FILE#FUNCTION (e.g. \"index.js#handler\")", s);
	}
	f->handler = s;
	return 0;
}

/* The run options of the entry, checked as a call's params would be (the one table). */
static int parse_run(struct hc_executor_fn *f, json_t *entry, const char *origin,
		     struct hc_error *err)
{
	static const char *const run_fields[] = {"image", "timeout_secs", "memory_mib", "env",
						 "network"};
	struct hc_rpc_call c = {.method = "the registry", .cancel_fd = -1};
	struct hc_rpc_err re = {0};
	struct hc_runopts ro;
	json_t *env, *v;
	const char *k;
	int r;

	struct hc_oci_ref ref;
	struct hc_error re_ref = {0};

	if (!json_is_string(json_object_get(entry, "image")))
		return bad(err, origin, f->name, "image", "is required: an image reference");
	if (hc_oci_ref_parse(json_string_value(json_object_get(entry, "image")), &ref, &re_ref) < 0)
		return bad(err, origin, f->name, "image", "%s", re_ref.message);
	v = json_object_get(entry, "timeout_secs");
	if (v &&
	    (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 86400 * 7))
		return bad(err, origin, f->name, "timeout_secs",
			   "must be a number of seconds > 0 (at most a week)");
	v = json_object_get(entry, "memory_mib");
	if (v && !json_is_integer(v))
		return bad(err, origin, f->name, "memory_mib", "must be a whole number of MiB");
	v = json_object_get(entry, "network");
	if (v && !json_is_string(v))
		return bad(err, origin, f->name, "network", "must be none, inet or full");
	/* env: only KEY: VALUE strings (a bare KEY would take the server's own value). */
	env = json_object_get(entry, "env");
	if (env && !json_is_object(env))
		return bad(err, origin, f->name, "env", "must be an object {\"KEY\": \"VALUE\"}");
	json_object_foreach(env, k, v)
	{
		if (!*k || strchr(k, '=') || !json_is_string(v))
			return bad(err, origin, f->name, "env",
				   "'%.64s' must be a name without '=' with a string value", k);
	}
	f->run = json_object();
	if (!f->run)
		return hc_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < HC_ARRAY_SIZE(run_fields); i++) {
		v = json_object_get(entry, run_fields[i]);
		if (v && json_object_set(f->run, run_fields[i], v) < 0)
			return hc_error_set(err, -ENOMEM, "out of memory");
	}
	c.params = f->run;
	hc_runopts_init(&ro);
	r = hc_server_run_params(NULL, &c, HC_RUNOPT_RUN, NULL, &ro, &re);
	hc_runopts_free(&ro);
	if (r == -ENOMEM)
		return hc_error_set(err, -ENOMEM, "out of memory");
	if (r < 0)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "%s: function '%.64s': %s", origin,
				     f->name, re.e.message);
	return 0;
}

static int parse_fn(struct hc_executor_fn *f, const char *name, json_t *entry, const char *origin,
		    struct hc_error *err)
{
	static const char *const fields[] = {"image",	   "handler", "runtime", "timeout_secs",
					     "memory_mib", "env",     "network", "max_concurrency"};
	const char *k, *rt;
	json_t *v;
	int r;

	f->name = strdup(name);
	if (!f->name)
		return hc_error_set(err, -ENOMEM, "out of memory");
	if (!name_ok(name))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "%s: function '%.64s': a name is [A-Za-z0-9][A-Za-z0-9_.-]*, "
				     "at most %d characters",
				     origin, name, HC_REGISTRY_MAX_NAME);
	if (!json_is_object(entry))
		return bad(err, origin, name, NULL, "must be an object of fields");
	f->entry = json_incref(entry);
	json_object_foreach(entry, k, v)
	{
		bool known = false;

		for (size_t i = 0; i < HC_ARRAY_SIZE(fields) && !known; i++)
			known = hc_streq(fields[i], k);
		if (!known)
			return bad(err, origin, name, NULL,
				   "unknown field '%.64s' (image, handler, runtime, timeout_secs, "
				   "memory_mib, env, network, max_concurrency)",
				   k);
	}
	v = json_object_get(entry, "runtime");
	rt = json_string_value(v);
	if (hc_streq(rt, "python"))
		f->runtime = HC_EXECUTOR_PYTHON;
	else if (hc_streq(rt, "node"))
		f->runtime = HC_EXECUTOR_NODE;
	else if (hc_streq(rt, "command"))
		f->runtime = HC_EXECUTOR_COMMAND;
	else
		return bad(err, origin, name, "runtime",
			   "must be \"python\", \"node\" or \"command\"");
	v = json_object_get(entry, "max_concurrency");
	if (v &&
	    (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000))
		return bad(err, origin, name, "max_concurrency",
			   "must be a whole number from 1 to 100000");
	f->max_concurrency = v ? (unsigned)json_integer_value(v) : 0;
	r = parse_handler(f, json_object_get(entry, "handler"), origin, err);
	if (r < 0)
		return r;
	return parse_run(f, entry, origin, err);
}

int hc_registry_parse(const char *text, size_t len, const char *origin, struct hc_registry **ret,
		      struct hc_error *err)
{
	struct hc_registry *reg = NULL;
	json_error_t jerr;
	json_t *doc, *v;
	const char *k;
	int r = 0;

	if (len > HC_REGISTRY_MAX_BYTES)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "%s: larger than %u bytes", origin,
				     HC_REGISTRY_MAX_BYTES);
	/* A function named twice is a mistake, not "the last one wins". */
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "%s: line %d, column %d: %s",
				     origin, jerr.line, jerr.column, jerr.text);
	if (!json_is_object(doc)) {
		r = hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				  "%s: must be an object {\"NAME\": {\"image\", \"runtime\", "
				  "\"handler\", ...}}",
				  origin);
		goto out;
	}
	if (json_object_size(doc) > HC_REGISTRY_MAX_FUNCTIONS) {
		r = hc_error_setk(err, -EINVAL, HC_EK_USAGE, "%s: more than %u functions", origin,
				  HC_REGISTRY_MAX_FUNCTIONS);
		goto out;
	}
	reg = calloc(1, sizeof(*reg));
	if (reg)
		reg->fns = calloc(json_object_size(doc) + 1, sizeof(*reg->fns));
	if (!reg || !reg->fns) {
		r = hc_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	atomic_init(&reg->refs, 1);
	json_object_foreach(doc, k, v)
	{
		r = parse_fn(&reg->fns[reg->n], k, v, origin, err);
		reg->n++;
		if (r < 0)
			goto out;
	}
	qsort(reg->fns, reg->n, sizeof(*reg->fns), by_name);
	*ret = reg;
	reg = NULL;
out:
	if (reg)
		registry_free(reg);
	json_decref(doc);
	/* One line, whatever the file's names and strings hold. */
	for (char *p = err->message; r < 0 && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return r;
}

int hc_registry_load(const char *path, struct hc_registry **ret, struct hc_error *err)
{
	char origin[HC_PATH_MAX + 16];
	char *text = NULL;
	size_t len = 0;
	int r;

	snprintf(origin, sizeof(origin), "registry %s", path);
	r = hc_path_read_file(path, HC_REGISTRY_MAX_BYTES, &text, &len, err);
	if (r < 0) {
		hc_error_kind(err, HC_EK_USAGE);
		return hc_error_prefix(err, "%s", origin);
	}
	r = hc_registry_parse(text, len, origin, ret, err);
	free(text);
	return r;
}
