/* SPDX-License-Identifier: MIT */
/* The server's transport-free parts: JSON-RPC 2.0 handling (the spec's examples), the token
 * check, base64 params, the WebSocket accept key, output chunk encoding. */
#include "test.h"

#include "server/exec.h"
#include "server/rpc.h"
#include "server/server.h"

static int calls;

static json_t *m_sum(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"a", "b", NULL};
	long long a = 0, b = 0;

	calls++;
	if (hc_rpc_params_only(c, names, err) < 0 ||
	    hc_rpc_param_int(c, "a", -100, 100, &a, err) < 0 ||
	    hc_rpc_param_int(c, "b", -100, 100, &b, err) < 0)
		return NULL;
	return json_integer(a + b);
}

static json_t *m_fail(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	struct hc_error e = {0};

	calls++;
	hc_error_setk(&e, -EOPNOTSUPP, "backend", "backend 'x' does not support snapshots");
	return hc_rpc_fail_hc(err, &e);
}

static const struct hc_rpc_method methods[] = {
	{"sum", m_sum, 0},
	{"fail", m_fail, 0},
	{"stream", m_sum, HC_RPC_STREAMING},
};
static const struct hc_rpc rpc = {methods, HC_ARRAY_SIZE(methods)};

/* Answers body; the response as compact text ("" for none). */
static char *answer(const char *body)
{
	json_t *doc, *perr, *resp;
	char *s;

	if (hc_rpc_parse(body, strlen(body), &doc, &perr) < 0) {
		s = hc_rpc_dumps(perr);
		json_decref(perr);
		return s;
	}
	resp = hc_rpc_dispatch(&rpc, doc, NULL, -1);
	json_decref(doc);
	if (!resp)
		return strdup("");
	s = hc_rpc_dumps(resp);
	json_decref(resp);
	return s;
}

#define ASSERT_ANSWER(body, want)                                                                  \
	do {                                                                                       \
		char *_s = answer(body);                                                           \
		int _ok = _s && strcmp(_s, want) == 0;                                             \
		if (!_ok)                                                                          \
			printf("  got: %s\n", _s ? _s : "(null)");                                 \
		free(_s);                                                                          \
		ASSERT_TRUE(_ok);                                                                  \
	} while (0)

/* Does the answer contain this? (error messages carry detail after the standard text) */
#define ASSERT_ANSWER_HAS(body, want)                                                              \
	do {                                                                                       \
		char *_s = answer(body);                                                           \
		int _ok = _s && strstr(_s, want);                                                  \
		if (!_ok)                                                                          \
			printf("  got: %s\n  want: %s\n", _s ? _s : "(null)", want);               \
		free(_s);                                                                          \
		ASSERT_TRUE(_ok);                                                                  \
	} while (0)

TEST(rpc_call)
{
	ASSERT_ANSWER(
		"{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":{\"a\":1,\"b\":2},\"id\":1}",
		"{\"jsonrpc\":\"2.0\",\"result\":3,\"id\":1}");
	ASSERT_ANSWER("{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"id\":\"x\"}",
		      "{\"jsonrpc\":\"2.0\",\"result\":0,\"id\":\"x\"}");
	ASSERT_ANSWER("{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"id\":null}",
		      "{\"jsonrpc\":\"2.0\",\"result\":0,\"id\":null}");
}

TEST(rpc_notification)
{
	calls = 0;
	ASSERT_ANSWER("{\"jsonrpc\":\"2.0\",\"method\":\"sum\"}", "");
	/* run, but never answered, even when failing or unknown */
	ASSERT_ANSWER("{\"jsonrpc\":\"2.0\",\"method\":\"fail\"}", "");
	ASSERT_ANSWER("{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}", "");
	ASSERT_EQ_INT(calls, 2);
	ASSERT_ANSWER("[{\"jsonrpc\":\"2.0\",\"method\":\"sum\"},{\"jsonrpc\":\"2.0\",\"method\":"
		      "\"sum\"}]",
		      "");
}

TEST(rpc_errors)
{
	ASSERT_ANSWER_HAS(
		"{\"jsonrpc\": \"2.0\", \"method\": \"foobar, \"params\": \"bar\", \"baz]",
		"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32700,\"message\":\"Parse error");
	ASSERT_ANSWER_HAS("{\"jsonrpc\": \"2.0\", \"method\": 1, \"params\": \"bar\"}",
			  "{\"code\":-32600,\"message\":\"Invalid Request");
	ASSERT_ANSWER_HAS(
		"{\"jsonrpc\": \"2.0\", \"method\": \"foobar\", \"id\": \"1\"}",
		"{\"code\":-32601,\"message\":\"Method not found: 'foobar'\"},\"id\":\"1\"}");
	ASSERT_ANSWER_HAS(
		"{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":{\"a\":\"x\"},\"id\":1}",
		"\"code\":-32602");
	ASSERT_ANSWER_HAS(
		"{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":{\"a\":\"x\"},\"id\":1}",
		"\"data\":{\"param\":\"a\"}");
	ASSERT_ANSWER_HAS("{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":{\"c\":1},\"id\":1}",
			  "\"data\":{\"param\":\"c\"}");
	ASSERT_ANSWER_HAS("{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":[1,2],\"id\":1}",
			  "\"code\":-32602");
	ASSERT_ANSWER_HAS("{\"jsonrpc\":\"2.0\",\"method\":\"fail\",\"id\":1}",
			  "{\"code\":-32000,\"message\":\"backend 'x' does not support snapshots\","
			  "\"data\":{\"kind\":\"backend\"}}");
	ASSERT_ANSWER_HAS("{\"jsonrpc\":\"1.0\",\"method\":\"sum\",\"id\":1}", "-32600");
	ASSERT_ANSWER_HAS("{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"id\":[1]}", "\"code\":-32600");
	ASSERT_ANSWER_HAS("{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":3,\"id\":1}",
			  "\"code\":-32600");
	ASSERT_ANSWER_HAS("\"just a string\"", "\"code\":-32600");
}

TEST(rpc_batch)
{
	ASSERT_ANSWER_HAS("[]", "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600");
	ASSERT_ANSWER_HAS("[1]", "[{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600");
	{
		char *s = answer("[1,2,3]");
		json_t *j = json_loads(s, 0, NULL);

		ASSERT_TRUE(json_is_array(j) && json_array_size(j) == 3);
		json_decref(j);
		free(s);
	}
	ASSERT_ANSWER_HAS(
		"[{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":{\"a\":1},\"id\":\"1\"},"
		"{\"jsonrpc\":\"2.0\",\"method\":\"sum\"},{\"foo\":\"boo\"},"
		"{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":\"5\"}]",
		"[{\"jsonrpc\":\"2.0\",\"result\":1,\"id\":\"1\"},{\"jsonrpc\":\"2.0\",\"error\":"
		"{\"code\":-32600");
	{
		/* past HC_RPC_MAX_BATCH: one error, nothing run */
		char body[20000] = "[";

		for (int i = 0; i <= HC_RPC_MAX_BATCH; i++)
			strcat(body, i ? ",{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"id\":1}"
				       : "{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"id\":1}");
		strcat(body, "]");
		calls = 0;
		ASSERT_ANSWER_HAS(body,
				  "\"code\":-32600,\"message\":\"Invalid Request: a batch of");
		ASSERT_EQ_INT(calls, 0);
	}
}

TEST(rpc_depth)
{
	char deep[81];

	/* well-formed, but 40 deep */
	memset(deep, '[', 40);
	memset(deep + 40, ']', 40);
	deep[80] = 0;
	ASSERT_ANSWER_HAS(deep, "\"code\":-32700,\"message\":\"Parse error: nesting deeper");
	ASSERT_ANSWER_HAS(
		"{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":{\"a\":[[[1]]]},\"id\":1}",
		"\"code\":-32602");
}

TEST(rpc_streaming_method)
{
	json_t *a = json_loads("{\"jsonrpc\":\"2.0\",\"method\":\"stream\",\"id\":1}", 0, NULL);
	json_t *b = json_loads("{\"jsonrpc\":\"2.0\",\"method\":\"stream\"}", 0, NULL);
	json_t *c = json_loads("{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"id\":1}", 0, NULL);

	ASSERT_TRUE(hc_rpc_streaming_method(&rpc, a) == &methods[2]);
	ASSERT_TRUE(hc_rpc_streaming_method(&rpc, b) == NULL); /* a notification */
	ASSERT_TRUE(hc_rpc_streaming_method(&rpc, c) == NULL);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

TEST(auth)
{
	struct hc_server s = {0};

	ASSERT_ERR(hc_server_auth_init(&s, ""));
	ASSERT_EQ_INT(hc_server_auth_init(&s, "s3cret-token"), 0);
	ASSERT_TRUE(hc_server_auth_ok(&s, "Bearer s3cret-token"));
	ASSERT_TRUE(hc_server_auth_ok(&s, "bearer  s3cret-token"));
	ASSERT_TRUE(!hc_server_auth_ok(&s, "Bearer s3cret-toke"));
	ASSERT_TRUE(!hc_server_auth_ok(&s, "Bearer s3cret-tokenX"));
	ASSERT_TRUE(!hc_server_auth_ok(&s, "Basic s3cret-token"));
	ASSERT_TRUE(!hc_server_auth_ok(&s, "s3cret-token"));
	ASSERT_TRUE(!hc_server_auth_ok(&s, "Bearer "));
	ASSERT_TRUE(!hc_server_auth_ok(&s, NULL));
	ASSERT_TRUE(hc_server_token_ok(&s, "s3cret-token"));
	ASSERT_TRUE(!hc_server_token_ok(&s, NULL));
}

TEST(base64)
{
	void *p = NULL;
	size_t n = 0;

	ASSERT_EQ_INT(hc_server_base64_decode("aGk=", 4, &p, &n), 0);
	ASSERT_EQ_INT(n, 2);
	ASSERT_TRUE(memcmp(p, "hi", 2) == 0);
	free(p);
	ASSERT_EQ_INT(hc_server_base64_decode("AAEC/w==", 8, &p, &n), 0);
	ASSERT_EQ_INT(n, 4);
	ASSERT_TRUE(memcmp(p, "\x00\x01\x02\xff", 4) == 0);
	free(p);
	ASSERT_EQ_INT(hc_server_base64_decode("", 0, &p, &n), 0);
	ASSERT_EQ_INT(n, 0);
	free(p);
	ASSERT_ERR(hc_server_base64_decode("aGk", 3, &p, &n));	    /* no padding */
	ASSERT_ERR(hc_server_base64_decode("a=Gk", 4, &p, &n));	    /* padding inside */
	ASSERT_ERR(hc_server_base64_decode("aG!=", 4, &p, &n));	    /* not the alphabet */
	ASSERT_ERR(hc_server_base64_decode("a===", 4, &p, &n));	    /* too much padding */
	ASSERT_ERR(hc_server_base64_decode("aGk=aGk=", 8, &p, &n)); /* padding mid-stream */
}

TEST(ws_accept_key)
{
	char out[32];

	/* RFC 6455 §1.3 */
	ASSERT_EQ_INT(hc_server_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	ASSERT_EQ_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(output_params)
{
	json_t *o = hc_server_output_params("h\xc3\xa9llo", 6);

	ASSERT_EQ_STR(json_string_value(json_object_get(o, "encoding")), "utf-8");
	ASSERT_EQ_STR(json_string_value(json_object_get(o, "data")), "h\xc3\xa9llo");
	json_decref(o);
	o = hc_server_output_params("\xff\x00", 2);
	ASSERT_EQ_STR(json_string_value(json_object_get(o, "encoding")), "base64");
	ASSERT_EQ_STR(json_string_value(json_object_get(o, "data")), "/wA=");
	json_decref(o);
}

int main(void)
{
	RUN(rpc_call);
	RUN(rpc_notification);
	RUN(rpc_errors);
	RUN(rpc_batch);
	RUN(rpc_depth);
	RUN(rpc_streaming_method);
	RUN(auth);
	RUN(base64);
	RUN(ws_accept_key);
	RUN(output_params);
	return test_summary();
}
