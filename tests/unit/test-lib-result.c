/* SPDX-License-Identifier: MIT */
/* The run result JSON of DESIGN.md §6: keys, encodings, nulls, the error objects. */
#include <jansson.h>
#include <signal.h>

#include "lib/result.h"
#include "test.h"

static json_t *parse(char *s)
{
	json_t *j = s ? json_loads(s, 0, NULL) : NULL;

	free(s);
	return j;
}

TEST(utf8_rules)
{
	ASSERT_TRUE(hc_lib_utf8_valid("", 0));
	ASSERT_TRUE(hc_lib_utf8_valid("hello\n", 6));
	ASSERT_TRUE(hc_lib_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
	ASSERT_TRUE(hc_lib_utf8_valid("a\0b", 3)); /* NUL is valid UTF-8 */
	ASSERT_TRUE(!hc_lib_utf8_valid("\xff", 1));
	ASSERT_TRUE(!hc_lib_utf8_valid("\xc3", 1));              /* truncated */
	ASSERT_TRUE(!hc_lib_utf8_valid("\xc0\xaf", 2));          /* overlong '/' */
	ASSERT_TRUE(!hc_lib_utf8_valid("\xe0\x80\xaf", 3));      /* overlong */
	ASSERT_TRUE(!hc_lib_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
	ASSERT_TRUE(!hc_lib_utf8_valid("\xf4\x90\x80\x80", 4));  /* > U+10FFFF */
	ASSERT_TRUE(!hc_lib_utf8_valid("\x80", 1));              /* lone continuation */
}

TEST(base64_vectors)
{
	/* RFC 4648 §10 test vectors. */
	static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					   "Zm9vYmFy" };

	for (size_t i = 0; i < 7; i++) {
		char *b = hc_lib_base64(in[i], strlen(in[i]));

		if (!b || strcmp(b, out[i]) != 0) {
			free(b);
			FAILF("base64(%s)", in[i]);
		}
		free(b);
	}
}

TEST(signal_names)
{
	char buf[32];

	ASSERT_EQ_STR(hc_lib_signal_name(SIGKILL, buf, sizeof(buf)), "SIGKILL");
	ASSERT_EQ_STR(hc_lib_signal_name(SIGTERM, buf, sizeof(buf)), "SIGTERM");
	ASSERT_EQ_STR(hc_lib_signal_name(SIGSEGV, buf, sizeof(buf)), "SIGSEGV");
}

TEST(object_exit_code)
{
	struct hc_run_result r = { .backend = "qemu", .accel = "tcg", .exit_code = 7 };
	const char *keys[] = { "backend", "accel", "image", "image_digest", "exit_code", "signal",
			       "timed_out", "stdout", "stdout_encoding", "stdout_truncated",
			       "stderr", "stderr_encoding", "stderr_truncated", "result",
			       "timings_ms", "jailed", "start" };
	char out[] = "hi\n";
	json_t *j;
	size_t i = 0;
	const char *k;
	json_t *v;

	r.stdout_data = out;
	r.stdout_len = 3;
	r.image = (char *)"docker.io/library/busybox:latest";
	snprintf(r.image_digest, sizeof(r.image_digest), "sha256:%064d", 0);
	r.t_total_ms = 1234.56789;
	j = parse(hc_run_result_to_json(&r));
	ASSERT_TRUE(j);
	/* Key order is the documented one. */
	json_object_foreach(j, k, v) {
		if (i >= HC_ARRAY_SIZE(keys) || strcmp(k, keys[i]) != 0) {
			json_decref(j);
			FAILF("key %zu is %s", i, k);
		}
		i++;
	}
	ASSERT_EQ_INT(i, HC_ARRAY_SIZE(keys));
	ASSERT_EQ_INT(json_integer_value(json_object_get(j, "exit_code")), 7);
	ASSERT_TRUE(json_is_null(json_object_get(j, "signal")));
	ASSERT_TRUE(json_is_false(json_object_get(j, "timed_out")));
	ASSERT_EQ_STR(json_string_value(json_object_get(j, "stdout")), "hi\n");
	ASSERT_EQ_STR(json_string_value(json_object_get(j, "stdout_encoding")), "utf-8");
	ASSERT_EQ_STR(json_string_value(json_object_get(j, "stderr")), "");
	ASSERT_TRUE(json_is_null(json_object_get(j, "result")));
	ASSERT_TRUE(json_object_get(j, "result_error") == NULL);
	ASSERT_TRUE(json_real_value(json_object_get(json_object_get(j, "timings_ms"), "total")) >
		    1234.5);
	ASSERT_TRUE(json_real_value(json_object_get(json_object_get(j, "timings_ms"), "total")) <
		    1234.7);
	json_decref(j);
}

TEST(object_signal_timeout_binary)
{
	struct hc_run_result r = { .backend = "qemu", .accel = "kvm", .exit_code = -1,
				   .signal = SIGKILL, .timed_out = true, .stderr_truncated = true };
	char bin[] = { 'a', (char)0xff, 0, 'b' };
	json_t *j;

	r.stdout_data = bin;
	r.stdout_len = sizeof(bin);
	j = parse(hc_run_result_to_json(&r));
	ASSERT_TRUE(j);
	ASSERT_TRUE(json_is_null(json_object_get(j, "exit_code")));
	ASSERT_TRUE(json_is_null(json_object_get(j, "image")));
	ASSERT_TRUE(json_is_null(json_object_get(j, "image_digest")));
	ASSERT_EQ_STR(json_string_value(json_object_get(j, "signal")), "SIGKILL");
	ASSERT_TRUE(json_is_true(json_object_get(j, "timed_out")));
	ASSERT_EQ_STR(json_string_value(json_object_get(j, "stdout")), "Yf8AYg==");
	ASSERT_EQ_STR(json_string_value(json_object_get(j, "stdout_encoding")), "base64");
	ASSERT_TRUE(json_is_true(json_object_get(j, "stderr_truncated")));
	json_decref(j);
}

TEST(object_result_embedded)
{
	struct hc_run_result r = { .backend = "qemu", .accel = "tcg", .exit_code = 0 };
	json_t *j;

	r.result_json = (char *)"{\"answer\": 42, \"list\": [1, \"x\"]}";
	j = parse(hc_run_result_to_json(&r));
	ASSERT_TRUE(j);
	ASSERT_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "result"), "answer")),
		      42);
	json_decref(j);

	r.result_json = NULL;
	r.result_error = (char *)"/hotcell/result.json is not valid JSON";
	j = parse(hc_run_result_to_json(&r));
	ASSERT_TRUE(j);
	ASSERT_TRUE(json_is_null(json_object_get(j, "result")));
	ASSERT_EQ_STR(json_string_value(json_object_get(j, "result_error")),
		      "/hotcell/result.json is not valid JSON");
	json_decref(j);
}

TEST(error_objects)
{
	struct hc_error e = { .code = -ENOENT, .kind = "image" };
	struct hc_run_result r = { .backend = "qemu", .accel = "tcg", .exit_code = 127 };
	json_t *j, *err;

	snprintf(e.message, sizeof(e.message), "image 'nope' not found \xff");
	j = parse(hc_error_to_json(&e));
	ASSERT_TRUE(j);
	ASSERT_EQ_INT(json_object_size(j), 1);
	err = json_object_get(j, "error");
	ASSERT_EQ_STR(json_string_value(json_object_get(err, "kind")), "image");
	/* Invalid UTF-8 in a message is replaced, never drops the object. */
	ASSERT_EQ_STR(json_string_value(json_object_get(err, "message")),
		      "image 'nope' not found \xef\xbf\xbd");
	json_decref(j);

	e.kind[0] = 0;
	j = parse(hc_error_to_json(&e));
	ASSERT_EQ_STR(json_string_value(json_object_get(json_object_get(j, "error"), "kind")),
		      "internal");
	json_decref(j);

	snprintf(e.kind, sizeof(e.kind), "exec");
	snprintf(e.message, sizeof(e.message), "executable file `nope` not found in $PATH");
	j = parse(hc_run_result_to_json_error(&r, &e));
	ASSERT_TRUE(j);
	ASSERT_EQ_INT(json_integer_value(json_object_get(j, "exit_code")), 127);
	ASSERT_EQ_STR(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
		      "executable file `nope` not found in $PATH");
	json_decref(j);
}

TEST(status)
{
	struct hc_run_result r = { .exit_code = 3 };

	ASSERT_EQ_INT(hc_run_result_status(&r), 3);
	r.exit_code = -1;
	r.signal = SIGKILL;
	ASSERT_EQ_INT(hc_run_result_status(&r), 137);
	r.timed_out = true;
	ASSERT_EQ_INT(hc_run_result_status(&r), 124);
}

int main(void)
{
	RUN(utf8_rules);
	RUN(base64_vectors);
	RUN(signal_names);
	RUN(object_exit_code);
	RUN(object_signal_timeout_binary);
	RUN(object_result_embedded);
	RUN(error_objects);
	RUN(status);
	return test_summary();
}
