/* SPDX-License-Identifier: MIT */
/* JSON-RPC 2.0 request handling, as the specification (jsonrpc.org/specification) says. */
#include <stdarg.h>

#include "server/rpc.h"

static const char *const std_messages[] = {
	[0] = "Parse error",	  /* -32700 */
	[1] = "Invalid Request",  /* -32600 */
	[2] = "Method not found", /* -32601 */
	[3] = "Invalid params",	  /* -32602 */
	[4] = "Internal error",	  /* -32603 */
};

json_t *hc_rpc_error_response(json_t *id, int code, const char *message, json_t *data)
{
	json_t *e = json_pack("{s:i, s:s}", "code", code, "message", message ? message : "");
	json_t *r;

	if (!e) {
		json_decref(data);
		return NULL;
	}
	if (data && json_object_set_new(e, "data", data) < 0) {
		json_decref(e);
		return NULL;
	}
	r = json_pack("{s:s, s:o, s:O}", "jsonrpc", "2.0", "error", e, "id", id ? id : json_null());
	return r;
}

char *hc_rpc_dumps(const json_t *doc)
{
	return json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY |
				       JSON_REAL_PRECISION(12));
}

static json_t *std_error(json_t *id, int code, const char *detail)
{
	const char *base =
		code == HC_RPC_PARSE_ERROR ? std_messages[0] : std_messages[-code - 32599];
	char msg[900];

	if (detail && *detail) {
		snprintf(msg, sizeof(msg), "%s: %s", base, detail);
		return hc_rpc_error_response(id, code, msg, NULL);
	}
	return hc_rpc_error_response(id, code, base, NULL);
}

/* Depth of nesting, stopping as soon as it passes max (so a deep document costs little). */
static int depth(const json_t *j, int max)
{
	int d = 0, c;

	if (max < 0)
		return 1;
	if (json_is_array(j)) {
		size_t i;
		json_t *v;

		json_array_foreach(j, i, v)
		{
			c = depth(v, max - 1);
			if (c > d)
				d = c;
			if (d > max)
				break;
		}
		return d + 1;
	}
	if (json_is_object(j)) {
		const char *k;
		json_t *v;

		json_object_foreach((json_t *)j, k, v)
		{
			c = depth(v, max - 1);
			if (c > d)
				d = c;
			if (d > max)
				break;
		}
		return d + 1;
	}
	return 0;
}

int hc_rpc_parse(const char *body, size_t len, json_t **ret_doc, json_t **ret_error)
{
	json_error_t jerr;
	json_t *doc;
	char detail[256];

	*ret_doc = NULL;
	*ret_error = NULL;
	doc = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
	if (!doc) {
		snprintf(detail, sizeof(detail), "%s at line %d column %d", jerr.text, jerr.line,
			 jerr.column);
		*ret_error = std_error(NULL, HC_RPC_PARSE_ERROR, detail);
		return -EINVAL;
	}
	if (depth(doc, HC_RPC_MAX_DEPTH) > HC_RPC_MAX_DEPTH) {
		json_decref(doc);
		snprintf(detail, sizeof(detail), "nesting deeper than %d levels", HC_RPC_MAX_DEPTH);
		*ret_error = std_error(NULL, HC_RPC_PARSE_ERROR, detail);
		return -EINVAL;
	}
	*ret_doc = doc;
	return 0;
}

/* Spec §4: a Request has "jsonrpc": "2.0", a string "method", optional structured "params"
 * and optional "id" (string, number or null; absent for a notification). */
static bool valid_id(const json_t *id)
{
	return json_is_string(id) || json_is_number(id) || json_is_null(id);
}

static const struct hc_rpc_method *find(const struct hc_rpc *rpc, const char *name)
{
	for (size_t i = 0; i < rpc->n_methods; i++)
		if (strcmp(rpc->methods[i].name, name) == 0)
			return &rpc->methods[i];
	return NULL;
}

static const char *invalid_reason(json_t *req)
{
	json_t *v, *m, *p, *id;

	if (!json_is_object(req))
		return "a request is a JSON object";
	v = json_object_get(req, "jsonrpc");
	if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0)
		return "\"jsonrpc\" must be exactly \"2.0\"";
	m = json_object_get(req, "method");
	if (!json_is_string(m))
		return "\"method\" must be a string";
	p = json_object_get(req, "params");
	if (p && !json_is_object(p) && !json_is_array(p))
		return "\"params\" must be an object or an array";
	id = json_object_get(req, "id");
	if (id && !valid_id(id))
		return "\"id\" must be a string, a number or null";
	return NULL;
}

const struct hc_rpc_method *hc_rpc_streaming_method(const struct hc_rpc *rpc, json_t *req)
{
	const struct hc_rpc_method *m;

	if (invalid_reason(req) || !json_object_get(req, "id"))
		return NULL;
	m = find(rpc, json_string_value(json_object_get(req, "method")));
	return m && (m->flags & HC_RPC_STREAMING) ? m : NULL;
}

static json_t *err_response(json_t *id, struct hc_rpc_err *err)
{
	json_t *data = NULL;
	const char *msg = err->e.message[0] ? err->e.message : hc_strerror(err->e.code);

	if (err->code == HC_RPC_INVALID_PARAMS && err->param[0])
		data = json_pack("{s:s}", "param", err->param);
	else if (err->code <= -32000 && err->code >= -32099)
		data = json_pack("{s:s}", "kind", err->e.kind[0] ? err->e.kind : HC_EK_INTERNAL);
	if (data && err->result) {
		json_object_set_new(data, "result", err->result);
		err->result = NULL;
	}
	json_decref(err->result);
	err->result = NULL;
	return hc_rpc_error_response(id, err->code, msg, data);
}

json_t *hc_rpc_call_one(const struct hc_rpc *rpc, json_t *req, void *ctx, int cancel_fd,
			struct hc_rpc_stream *stream)
{
	const struct hc_rpc_method *m;
	struct hc_rpc_err err = {.code = HC_RPC_INTERNAL_ERROR};
	struct hc_rpc_call call = {.ctx = ctx, .cancel_fd = cancel_fd};
	const char *why = invalid_reason(req);
	json_t *params, *result, *resp;

	if (why)
		return std_error(NULL, HC_RPC_INVALID_REQUEST, why);
	call.id = json_object_get(req, "id");
	call.method = json_string_value(json_object_get(req, "method"));
	m = find(rpc, call.method);
	if (!m) {
		char detail[160];

		if (!call.id)
			return NULL;
		snprintf(detail, sizeof(detail), "'%.100s'", call.method);
		return std_error(call.id, HC_RPC_METHOD_NOT_FOUND, detail);
	}
	params = json_object_get(req, "params");
	if (params && json_is_array(params)) {
		/* Every method takes its params by name. */
		if (!call.id)
			return NULL;
		return std_error(call.id, HC_RPC_INVALID_PARAMS,
				 "params are passed by name (an object), not by position");
	}
	call.params = params ? json_incref(params) : json_object();
	if (!call.params)
		return std_error(call.id, HC_RPC_INTERNAL_ERROR, "out of memory");
	call.stream = (m->flags & HC_RPC_STREAMING) && call.id ? stream : NULL;
	result = m->fn(&call, &err);
	json_decref(call.params);
	if (!call.id) {
		json_decref(result);
		json_decref(err.result);
		return NULL;
	}
	if (!result)
		return err_response(call.id, &err);
	resp = json_pack("{s:s, s:o, s:O}", "jsonrpc", "2.0", "result", result, "id", call.id);
	return resp ? resp : std_error(call.id, HC_RPC_INTERNAL_ERROR, "out of memory");
}

json_t *hc_rpc_dispatch(const struct hc_rpc *rpc, json_t *doc, void *ctx, int cancel_fd)
{
	json_t *out, *r, *v;
	size_t i;

	if (!json_is_array(doc))
		return hc_rpc_call_one(rpc, doc, ctx, cancel_fd, NULL);
	if (json_array_size(doc) == 0)
		return std_error(NULL, HC_RPC_INVALID_REQUEST, "an empty batch");
	if (json_array_size(doc) > HC_RPC_MAX_BATCH) {
		char detail[96];

		snprintf(detail, sizeof(detail), "a batch of %zu requests (at most %d)",
			 json_array_size(doc), HC_RPC_MAX_BATCH);
		return std_error(NULL, HC_RPC_INVALID_REQUEST, detail);
	}
	out = json_array();
	if (!out)
		return std_error(NULL, HC_RPC_INTERNAL_ERROR, "out of memory");
	json_array_foreach(doc, i, v)
	{
		r = hc_rpc_call_one(rpc, v, ctx, cancel_fd, NULL);
		if (r && json_array_append_new(out, r) < 0) {
			json_decref(out);
			return std_error(NULL, HC_RPC_INTERNAL_ERROR, "out of memory");
		}
	}
	if (json_array_size(out) == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* ---- helpers for methods ---- */

json_t *hc_rpc_fail(struct hc_rpc_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->e.message, sizeof(err->e.message), fmt, ap);
	va_end(ap);
	if (!err->e.kind[0] && code <= -32000 && code >= -32099)
		snprintf(err->e.kind, sizeof(err->e.kind), "%s", HC_EK_INTERNAL);
	return NULL;
}

json_t *hc_rpc_fail_param(struct hc_rpc_err *err, const char *param, const char *fmt, ...)
{
	va_list ap;

	err->code = HC_RPC_INVALID_PARAMS;
	snprintf(err->param, sizeof(err->param), "%s", param);
	va_start(ap, fmt);
	vsnprintf(err->e.message, sizeof(err->e.message), fmt, ap);
	va_end(ap);
	return NULL;
}

json_t *hc_rpc_fail_hc(struct hc_rpc_err *err, const struct hc_error *e)
{
	err->e = *e;
	if (!err->e.message[0])
		snprintf(err->e.message, sizeof(err->e.message), "%s", hc_strerror(e->code));
	if (!err->e.kind[0])
		snprintf(err->e.kind, sizeof(err->e.kind), "%s", HC_EK_INTERNAL);
	err->code = HC_RPC_HOTCELL_ERROR;
	return NULL;
}

int hc_rpc_param_str(const struct hc_rpc_call *c, const char *name, const char **ret,
		     struct hc_rpc_err *err)
{
	json_t *v = json_object_get(c->params, name);

	if (!v)
		return 0;
	if (!json_is_string(v)) {
		hc_rpc_fail_param(err, name, "'%s' must be a string", name);
		return -EINVAL;
	}
	*ret = json_string_value(v);
	return 1;
}

int hc_rpc_param_bool(const struct hc_rpc_call *c, const char *name, bool *ret,
		      struct hc_rpc_err *err)
{
	json_t *v = json_object_get(c->params, name);

	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		hc_rpc_fail_param(err, name, "'%s' must be true or false", name);
		return -EINVAL;
	}
	*ret = json_is_true(v);
	return 1;
}

int hc_rpc_param_int(const struct hc_rpc_call *c, const char *name, long long min, long long max,
		     long long *ret, struct hc_rpc_err *err)
{
	json_t *v = json_object_get(c->params, name);
	json_int_t i;

	if (!v)
		return 0;
	if (!json_is_integer(v) || (i = json_integer_value(v)) < min || i > max) {
		hc_rpc_fail_param(err, name, "'%s' must be a whole number from %lld to %lld", name,
				  min, max);
		return -EINVAL;
	}
	*ret = i;
	return 1;
}

int hc_rpc_params_only(const struct hc_rpc_call *c, const char *const *names,
		       struct hc_rpc_err *err)
{
	const char *k;
	json_t *v;

	json_object_foreach(c->params, k, v)
	{
		bool ok = false;

		for (size_t i = 0; names && names[i] && !ok; i++)
			ok = strcmp(names[i], k) == 0;
		if (!ok) {
			hc_rpc_fail_param(err, k, "unknown param '%.60s' for %s", k, c->method);
			return -EINVAL;
		}
	}
	return 0;
}
