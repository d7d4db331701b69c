/* SPDX-License-Identifier: MIT */
/* Fuzz target: the server's JSON-RPC request handling (parse, validate, batch, dispatch,
 * params) on untrusted request bodies, with a method table that reads params through the
 * same helpers the real methods use. Every answer must be a well-formed JSON-RPC response:
 * an object with "jsonrpc": "2.0", an "id" and exactly one of "result" / "error" (with an
 * integer code), or an array of those; nothing for notifications only. */
#include <stdint.h>

#include "server/exec.h"
#include "server/rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *m_params(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"s", "b", "i", "stdin", "stdin_encoding", NULL};
	const char *s = NULL;
	bool b = false;
	long long i = 0;
	void *in = NULL;
	size_t n = 0;
	json_t *r;

	if (hc_rpc_params_only(c, names, err) < 0 || hc_rpc_param_str(c, "s", &s, err) < 0 ||
	    hc_rpc_param_bool(c, "b", &b, err) < 0 ||
	    hc_rpc_param_int(c, "i", -1000, 1000, &i, err) < 0 ||
	    hc_server_param_data(c, "stdin", "stdin_encoding", &in, &n, err) < 0)
		return NULL;
	r = json_pack("{s:s?, s:b, s:I, s:o}", "s", s, "b", b, "i", (json_int_t)i, "stdin",
		      hc_server_output_params(in ? in : "", n));
	free(in);
	return r;
}

static json_t *m_fail(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	struct hc_error e = {0};

	hc_error_setk(&e, -EIO, "vm", "the VM is gone");
	return hc_rpc_fail_hc(err, &e);
}

static const struct hc_rpc_method methods[] = {
	{"params", m_params, 0},
	{"fail", m_fail, 0},
	{"sandbox.run", m_params, HC_RPC_STREAMING},
};

static void check_response(const json_t *r)
{
	const json_t *e = json_object_get(r, "error");

	if (!json_is_object(r) || !json_is_string(json_object_get(r, "jsonrpc")) ||
	    strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") != 0 ||
	    !json_object_get(r, "id") || !!json_object_get(r, "result") == !!e)
		abort();
	if (e && (!json_is_integer(json_object_get(e, "code")) ||
		  !json_is_string(json_object_get(e, "message"))))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct hc_rpc rpc = {methods, sizeof(methods) / sizeof(methods[0])};
	json_t *doc = NULL, *perr = NULL, *resp;
	char *text;

	if (hc_rpc_parse((const char *)data, size, &doc, &perr) < 0) {
		check_response(perr);
		json_decref(perr);
		return 0;
	}
	(void)hc_rpc_streaming_method(&rpc, doc);
	resp = hc_rpc_dispatch(&rpc, doc, NULL, -1);
	json_decref(doc);
	if (!resp)
		return 0;
	if (json_is_array(resp)) {
		size_t i;
		json_t *v;

		if (json_array_size(resp) == 0)
			abort();
		json_array_foreach(resp, i, v) check_response(v);
	} else {
		check_response(resp);
	}
	text = hc_rpc_dumps(resp);
	if (!text)
		abort();
	free(text);
	json_decref(resp);
	return 0;
}
