/* SPDX-License-Identifier: MIT */
/* The executors' registry (src/server/registry.c): a good file loads with every field; each
 * kind of mistake is refused with one line naming the function and the field; references keep
 * a version alive; executor.list / executor.invoke without a registry or function answer
 * clearly (no VM is started for those). */
#include "test.h"

#include <fcntl.h>
#include <stdarg.h>

#include "server/registry.h"
#include "server/rpc.h"
#include "server/server.h"

static const char good[] =
	"{\"resize\": {\"image\": \"localhost/py:latest\", \"runtime\": \"python\","
	" \"handler\": \"app.img:resize\", \"timeout_secs\": 12.5, \"memory_mib\": 192,"
	" \"env\": {\"MODE\": \"fast\"}, \"network\": \"none\", \"max_concurrency\": 2},"
	" \"greet\": {\"image\": \"node\", \"runtime\": \"node\", \"handler\": "
	"\"lib/index.js#greet\"},"
	" \"wc\": {\"image\": \"busybox\", \"runtime\": \"command\", \"handler\": [\"wc\", "
	"\"-c\"]},"
	" \"true\": {\"image\": \"busybox\", \"runtime\": \"command\", \"handler\": \"true\"}}";

TEST(registry_good)
{
	struct hc_registry *r = NULL;
	struct hc_error e = {0};
	const struct hc_executor_fn *f;

	ASSERT_EQ_INT(hc_registry_parse(good, strlen(good), "registry t.json", &r, &e), 0);
	ASSERT_EQ_INT(r->n, 4);
	/* sorted by name */
	ASSERT_EQ_STR(r->fns[0].name, "greet");
	ASSERT_EQ_STR(r->fns[3].name, "wc");
	f = hc_registry_find(r, "resize");
	ASSERT_TRUE(f != NULL);
	ASSERT_EQ_INT(f->runtime, HC_EXECUTOR_PYTHON);
	ASSERT_EQ_STR(f->handler, "app.img:resize");
	ASSERT_EQ_INT(f->max_concurrency, 2);
	ASSERT_TRUE(json_number_value(json_object_get(f->run, "timeout_secs")) == 12.5);
	ASSERT_EQ_INT(json_integer_value(json_object_get(f->run, "memory_mib")), 192);
	ASSERT_TRUE(json_object_get(f->run, "runtime") == NULL);
	f = hc_registry_find(r, "greet");
	ASSERT_EQ_INT(f->runtime, HC_EXECUTOR_NODE);
	ASSERT_EQ_INT(f->max_concurrency, 0);
	f = hc_registry_find(r, "wc");
	ASSERT_EQ_INT(f->runtime, HC_EXECUTOR_COMMAND);
	ASSERT_EQ_INT(f->argc, 2);
	ASSERT_EQ_STR(f->argv[1], "-c");
	ASSERT_TRUE(f->argv[2] == NULL);
	f = hc_registry_find(r, "true");
	ASSERT_EQ_INT(f->argc, 1);
	ASSERT_EQ_STR(f->argv[0], "true");
	ASSERT_TRUE(hc_registry_find(r, "nope") == NULL);
	/* a reference outlives the loader's */
	ASSERT_TRUE(hc_registry_ref(r) == r);
	hc_registry_unref(r);
	ASSERT_EQ_STR(hc_registry_find(r, "wc")->name, "wc");
	hc_registry_unref(r);
	hc_registry_unref(NULL);
}

/* The document fails with a message containing every one of the fragments. */
static int refused(const char *doc, ...)
{
	struct hc_registry *r = NULL;
	struct hc_error e = {0};
	const char *want;
	va_list ap;
	int ok = 1;

	if (hc_registry_parse(doc, strlen(doc), "registry t.json", &r, &e) != -EINVAL) {
		hc_registry_unref(r);
		printf("  accepted: %s\n", doc);
		return 0;
	}
	if (strcmp(e.kind, "usage") != 0 || strchr(e.message, '\n'))
		ok = 0;
	va_start(ap, doc);
	while ((want = va_arg(ap, const char *)))
		if (!strstr(e.message, want))
			ok = 0;
	va_end(ap);
	if (!ok)
		printf("  message: %s (for %s)\n", e.message, doc);
	return ok;
}

#define FN(body) "{\"f\": {" body "}}"
#define PY "\"image\": \"py\", \"runtime\": \"python\", \"handler\": \"m:f\""

TEST(registry_errors)
{
	ASSERT_TRUE(refused("{\"f\": ", "registry t.json", "line 1", NULL));
	ASSERT_TRUE(refused("[]", "must be an object", NULL));
	ASSERT_TRUE(refused("{\"f\": {" PY "}, \"f\": {" PY "}}", "duplicate", NULL));
	ASSERT_TRUE(refused("{\"-x\": {" PY "}}", "'-x'", "name", NULL));
	ASSERT_TRUE(refused("{\"f\": 3}", "'f'", "object", NULL));
	ASSERT_TRUE(refused(FN(PY ", \"memory\": 128"), "'f'", "unknown field 'memory'", NULL));
	ASSERT_TRUE(refused(FN("\"runtime\": \"python\", \"handler\": \"m:f\""), "'f'", "'image'",
			    "required", NULL));
	ASSERT_TRUE(refused(FN("\"image\": \"py\", \"handler\": \"m:f\""), "'runtime'", NULL));
	ASSERT_TRUE(refused(FN("\"image\": \"py\", \"runtime\": \"ruby\", \"handler\": \"m:f\""),
			    "'runtime'", "python", NULL));
	ASSERT_TRUE(refused(FN("\"image\": \"py\", \"runtime\": \"python\""), "'handler'",
			    "required", NULL));
	ASSERT_TRUE(refused(FN("\"image\": \"py\", \"runtime\": \"python\", \"handler\": \"m.f\""),
			    "'handler'", "MODULE:FUNCTION", NULL));
	ASSERT_TRUE(refused(FN("\"image\": \"py\", \"runtime\": \"python\", \"handler\": \"m:1f\""),
			    "'handler'", NULL));
	ASSERT_TRUE(
		refused(FN("\"image\": \"n\", \"runtime\": \"node\", \"handler\": \"index.js\""),
			"'handler'", "FILE#FUNCTION", NULL));
	ASSERT_TRUE(refused(FN("\"image\": \"n\", \"runtime\": \"node\", \"handler\": \"#f\""),
			    "'handler'", NULL));
	ASSERT_TRUE(refused(FN("\"image\": \"b\", \"runtime\": \"command\", \"handler\": []"),
			    "'handler'", NULL));
	ASSERT_TRUE(refused(FN("\"image\": \"b\", \"runtime\": \"command\", \"handler\": [1]"),
			    "'handler'", "element 0", NULL));
	ASSERT_TRUE(refused(FN(PY ", \"timeout_secs\": 0"), "'timeout_secs'", NULL));
	ASSERT_TRUE(refused(FN(PY ", \"timeout_secs\": \"5\""), "'timeout_secs'", NULL));
	ASSERT_TRUE(refused(FN(PY ", \"memory_mib\": 1.5"), "'memory_mib'", NULL));
	/* the run options' own rules, through the one table */
	ASSERT_TRUE(refused(FN(PY ", \"memory_mib\": 1"), "'f'", "memory_mib", NULL));
	ASSERT_TRUE(refused(FN(PY ", \"network\": \"wifi\""), "'f'", "network", NULL));
	ASSERT_TRUE(refused(FN("\"image\": \"UPPER::bad\", \"runtime\": \"python\", \"handler\": "
			       "\"m:f\""),
			    "'f'", "image", NULL));
	ASSERT_TRUE(refused(FN(PY ", \"env\": [\"A=1\"]"), "'env'", NULL));
	ASSERT_TRUE(refused(FN(PY ", \"env\": {\"A\": 1}"), "'env'", "'A'", NULL));
	ASSERT_TRUE(refused(FN(PY ", \"env\": {\"A=B\": \"1\"}"), "'env'", NULL));
	ASSERT_TRUE(refused(FN(PY ", \"max_concurrency\": 0"), "'max_concurrency'", NULL));
	ASSERT_TRUE(refused(FN(PY ", \"max_concurrency\": true"), "'max_concurrency'", NULL));
}

TEST(registry_load_file)
{
	char path[] = "/tmp/hc-registry-XXXXXX";
	struct hc_registry *r = NULL;
	struct hc_error e = {0};
	int fd = mkstemp(path);

	ASSERT_TRUE(fd >= 0);
	ASSERT_TRUE(write(fd, good, strlen(good)) == (ssize_t)strlen(good));
	close(fd);
	ASSERT_EQ_INT(hc_registry_load(path, &r, &e), 0);
	ASSERT_EQ_INT(r->n, 4);
	hc_registry_unref(r);
	unlink(path);
	ASSERT_ERR(hc_registry_load(path, &r, &e));
	ASSERT_TRUE(strstr(e.message, path) != NULL);
	ASSERT_EQ_STR(e.kind, "usage");
}

/* executor.* through the method table, with no VM involved. */
static json_t *call(struct hc_server *s, const char *req_text)
{
	json_t *req = json_loads(req_text, 0, NULL), *resp;

	resp = hc_rpc_call_one(&s->rpc, req, s, -1, NULL);
	json_decref(req);
	return resp;
}

TEST(executor_methods)
{
	char path[] = "/tmp/hc-registry-XXXXXX";
	struct hc_server_config cfg = {.default_timeout_secs = 30};
	struct hc_server s = {.cfg = &cfg, .shutdown_fd = -1};
	struct hc_error e = {0};
	json_t *resp, *l;
	int fd = mkstemp(path);

	ASSERT_TRUE(fd >= 0);
	ASSERT_TRUE(write(fd, good, strlen(good)) == (ssize_t)strlen(good));
	close(fd);
	s.rpc = (struct hc_rpc){.methods = hc_server_methods, .n_methods = hc_server_n_methods};
	pthread_mutex_init(&s.lock, NULL);
	/* no registry: a clear error */
	ASSERT_EQ_INT(hc_server_registry_open(&s, &e), 0);
	resp = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"executor.list\"}");
	ASSERT_TRUE(strstr(json_string_value(
				   json_object_get(json_object_get(resp, "error"), "message")),
			   "--registry") != NULL);
	json_decref(resp);
	hc_server_registry_close(&s);

	cfg.registry = path;
	ASSERT_EQ_INT(hc_server_registry_open(&s, &e), 0);
	resp = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"executor.list\"}");
	l = json_object_get(resp, "result");
	ASSERT_EQ_INT(json_array_size(l), 4);
	ASSERT_EQ_STR(json_string_value(json_object_get(json_array_get(l, 1), "name")), "resize");
	/* env: the names only, never the values */
	ASSERT_EQ_STR(
		json_string_value(json_array_get(json_object_get(json_array_get(l, 1), "env"), 0)),
		"MODE");
	ASSERT_EQ_INT(json_integer_value(json_object_get(json_array_get(l, 1), "running")), 0);
	json_decref(resp);
	resp = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"executor.invoke\","
			"\"params\":{\"name\":\"nope\"}}");
	ASSERT_EQ_INT(json_integer_value(json_object_get(json_object_get(resp, "error"), "code")),
		      -32602);
	json_decref(resp);
	resp = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"executor.invoke\","
			"\"params\":{\"name\":\"wc\",\"extra\":1}}");
	ASSERT_EQ_STR(json_string_value(json_object_get(
			      json_object_get(json_object_get(resp, "error"), "data"), "param")),
		      "extra");
	json_decref(resp);

	/* a reload that fails keeps the version in use; a good one replaces it */
	fd = open(path, O_WRONLY | O_TRUNC);
	ASSERT_TRUE(write(fd, "{\"x\": 1}", 8) == 8);
	close(fd);
	hc_server_registry_reload(&s);
	ASSERT_EQ_INT(s.registry->n, 4);
	fd = open(path, O_WRONLY | O_TRUNC);
	ASSERT_TRUE(write(fd, "{}", 2) == 2);
	close(fd);
	hc_server_registry_reload(&s);
	ASSERT_EQ_INT(s.registry->n, 0);
	hc_server_registry_close(&s);
	pthread_mutex_destroy(&s.lock);
	unlink(path);
}

int main(void)
{
	RUN(registry_good);
	RUN(registry_errors);
	RUN(registry_load_file);
	RUN(executor_methods);
	return test_summary();
}
