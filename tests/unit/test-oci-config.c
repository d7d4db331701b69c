/* SPDX-License-Identifier: MIT */
/* Image config parsing (image-spec config.md). */
#include "oci/config.h"
#include "oci/store.h"
#include "test.h"

static int parse(const char *json, struct hc_oci_config *c, struct hc_error *err)
{
	return hc_oci_config_parse(json, strlen(json), c, err);
}

TEST(full_config)
{
	struct hc_oci_config c;
	struct hc_error err = {0};
	const char *json =
		"{\"created\":\"2024-05-01T10:00:00Z\",\"architecture\":\"amd64\",\"os\":\"linux\","
		"\"config\":{\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],"
		"\"Env\":[\"PATH=/usr/bin:/bin\",\"A=b=c\"],\"WorkingDir\":\"/srv\","
		"\"User\":\"1000:1000\",\"StopSignal\":\"SIGTERM\",\"Labels\":{\"x\":\"y\"}},"
		"\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"history\":[]}";

	ASSERT_OK(parse(json, &c, &err), &err);
	ASSERT_EQ_INT(c.n_entrypoint, 2);
	ASSERT_EQ_STR(c.entrypoint[0], "/bin/sh");
	ASSERT_EQ_STR(c.entrypoint[1], "-c");
	ASSERT_TRUE(c.entrypoint[2] == NULL);
	ASSERT_EQ_INT(c.n_cmd, 1);
	ASSERT_EQ_STR(c.cmd[0], "echo hi");
	ASSERT_EQ_INT(c.n_env, 2);
	ASSERT_EQ_STR(c.env[1], "A=b=c");
	ASSERT_EQ_STR(c.workdir, "/srv");
	ASSERT_EQ_STR(c.user, "1000:1000");
	ASSERT_EQ_STR(c.created, "2024-05-01T10:00:00Z");
	ASSERT_EQ_STR(c.platform.os, "linux");
	ASSERT_EQ_STR(c.platform.arch, "amd64");
	hc_oci_config_free(&c);
	hc_oci_config_free(&c); /* idempotent */
}

TEST(absent_null_and_empty)
{
	struct hc_oci_config c;
	struct hc_error err = {0};

	ASSERT_OK(parse("{\"architecture\":\"amd64\",\"os\":\"linux\"}", &c, &err), &err);
	ASSERT_TRUE(!c.entrypoint && !c.cmd && !c.env && !c.workdir && !c.user && !c.created);
	hc_oci_config_free(&c);

	ASSERT_OK(parse("{\"config\":null}", &c, &err), &err);
	ASSERT_TRUE(!c.entrypoint && !c.cmd);
	hc_oci_config_free(&c);

	ASSERT_OK(parse("{\"config\":{\"Entrypoint\":null,\"Cmd\":[],\"WorkingDir\":\"\","
			"\"User\":\"\"}}",
			&c, &err),
		  &err);
	ASSERT_TRUE(c.entrypoint == NULL && c.n_entrypoint == 0);
	ASSERT_TRUE(c.cmd != NULL && c.cmd[0] == NULL && c.n_cmd == 0);
	ASSERT_TRUE(c.workdir == NULL && c.user == NULL);
	hc_oci_config_free(&c);
}

TEST(bad_input)
{
	static const char *bad[] = {
		"",
		"[]",
		"not json",
		"{\"config\":[]}",
		"{\"config\":{\"Cmd\":\"echo hi\"}}",
		"{\"config\":{\"Cmd\":[1,2]}}",
		"{\"config\":{\"Env\":[\"A=\\u0000b\"]}}",
		"{\"config\":{\"User\":5}}",
		"{\"created\":1}",
		"{\"os\":\"linux\",\"os\":\"windows\"}",
		"{\"config\":{\"Cmd\":[\"a\"]}",
	};
	struct hc_oci_config c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hc_error err = {0};
		int r = parse(bad[i], &c, &err);
		if (r >= 0)
			FAILF("accepted: %s", bad[i]);
		ASSERT_TRUE(err.message[0] != 0);
		hc_oci_config_free(&c);
	}
}

TEST(size_bound)
{
	struct hc_oci_config c;
	struct hc_error err = {0};
	size_t n = HC_OCI_CONFIG_MAX + 1;
	char *big = malloc(n);

	ASSERT_TRUE(big != NULL);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	ASSERT_ERR(hc_oci_config_parse(big, n, &c, &err));
	free(big);
}

TEST(load_missing_file)
{
	struct hc_oci_config c;
	struct hc_error err = {0};

	ASSERT_ERR(hc_oci_config_load("/nonexistent/config.json", &c, &err));
	ASSERT_TRUE(strstr(err.message, "/nonexistent/config.json") != NULL);
}

int main(void)
{
	RUN(full_config);
	RUN(absent_null_and_empty);
	RUN(bad_input);
	RUN(size_bound);
	RUN(load_missing_file);
	return test_summary();
}
