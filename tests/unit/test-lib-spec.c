/* SPDX-License-Identifier: MIT */
/* podman's rules for what runs (DESIGN.md §6): argv, env, workdir, user. */
#include "lib/spec.h"
#include "test.h"

static const char *const img_ep[] = { "/bin/sh", "-c" };
static const char *const img_cmd[] = { "echo image" };
static const char *const img_env[] = { "PATH=/img/bin", "A=1", "B=2", "BROKEN" };

static struct hc_lib_image_defaults img(void)
{
	return (struct hc_lib_image_defaults){
		.entrypoint = img_ep, .n_entrypoint = 2, .cmd = img_cmd, .n_cmd = 1,
		.env = img_env, .n_env = 4, .workdir = "/srv", .user = "nobody",
	};
}

static const char *env_get(const struct hc_proto_exec *e, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < e->envc; i++)
		if (strncmp(e->env[i], key, kl) == 0 && e->env[i][kl] == '=')
			return e->env[i] + kl + 1;
	return NULL;
}

TEST(image_defaults)
{
	struct hc_run_opts o;
	struct hc_lib_image_defaults d = img();
	struct hc_proto_exec e;
	struct hc_error err = { 0 };

	hc_run_opts_init(&o);
	ASSERT_OK(hc_lib_exec_build(&o, &d, &e, &err), &err);
	ASSERT_EQ_INT(e.argc, 3);
	ASSERT_EQ_STR(e.argv[0], "/bin/sh");
	ASSERT_EQ_STR(e.argv[2], "echo image");
	ASSERT_TRUE(e.argv[3] == NULL);
	ASSERT_EQ_STR(e.cwd, "/srv");
	ASSERT_TRUE(e.flags & HC_EXEC_F_CREATE_WORKDIR);
	ASSERT_TRUE(!(e.flags & HC_EXEC_F_STDIN));
	ASSERT_EQ_STR(e.user, "nobody");
	ASSERT_EQ_STR(env_get(&e, "PATH"), "/img/bin");
	ASSERT_EQ_INT(e.envc, 3); /* BROKEN (no '=') is dropped */
	ASSERT_EQ_INT(e.timeout_ms, 30000);
	hc_lib_exec_clear(&e);
}

TEST(user_overrides)
{
	struct hc_run_opts o;
	struct hc_lib_image_defaults d = img();
	struct hc_proto_exec e;
	struct hc_error err = { 0 };
	const char *cmd[] = { "ls", "-l" };
	const char *env[] = { "A=override", "C=3", "HOTCELL_TEST_HOSTVAR", "HOTCELL_TEST_UNSET" };

	setenv("HOTCELL_TEST_HOSTVAR", "from host", 1);
	unsetenv("HOTCELL_TEST_UNSET");
	hc_run_opts_init(&o);
	o.cmd = cmd;
	o.n_cmd = 2;
	o.env = env;
	o.n_env = 4;
	o.workdir = "/tmp";
	o.user = "1000:1000";
	o.timeout_s = 2.5;
	o.interactive = true;
	o.stdin_fd = 0;
	ASSERT_OK(hc_lib_exec_build(&o, &d, &e, &err), &err);
	/* The image's entrypoint stays, the user's CMD replaces the image's. */
	ASSERT_EQ_INT(e.argc, 4);
	ASSERT_EQ_STR(e.argv[0], "/bin/sh");
	ASSERT_EQ_STR(e.argv[2], "ls");
	ASSERT_EQ_STR(env_get(&e, "A"), "override");
	ASSERT_EQ_STR(e.env[1], "A=override"); /* replaced in place */
	ASSERT_EQ_STR(env_get(&e, "C"), "3");
	ASSERT_EQ_STR(env_get(&e, "HOTCELL_TEST_HOSTVAR"), "from host");
	ASSERT_TRUE(env_get(&e, "HOTCELL_TEST_UNSET") == NULL);
	ASSERT_EQ_STR(e.cwd, "/tmp");
	ASSERT_TRUE(!(e.flags & HC_EXEC_F_CREATE_WORKDIR));
	ASSERT_TRUE(e.flags & HC_EXEC_F_STDIN);
	ASSERT_EQ_STR(e.user, "1000:1000");
	ASSERT_EQ_INT(e.timeout_ms, 2500);
	hc_lib_exec_clear(&e);
}

TEST(entrypoint_flag)
{
	struct hc_run_opts o;
	struct hc_lib_image_defaults d = img();
	struct hc_proto_exec e;
	struct hc_error err = { 0 };
	const char *cmd[] = { "x" };

	hc_run_opts_init(&o);
	o.entrypoint = "/bin/true";
	ASSERT_OK(hc_lib_exec_build(&o, &d, &e, &err), &err);
	/* podman: --entrypoint drops the image's Cmd. */
	ASSERT_EQ_INT(e.argc, 1);
	ASSERT_EQ_STR(e.argv[0], "/bin/true");
	hc_lib_exec_clear(&e);

	o.entrypoint = "[\"/bin/echo\", \"a b\"]";
	o.cmd = cmd;
	o.n_cmd = 1;
	ASSERT_OK(hc_lib_exec_build(&o, &d, &e, &err), &err);
	ASSERT_EQ_INT(e.argc, 3);
	ASSERT_EQ_STR(e.argv[1], "a b");
	ASSERT_EQ_STR(e.argv[2], "x");
	hc_lib_exec_clear(&e);

	o.entrypoint = "";
	ASSERT_OK(hc_lib_exec_build(&o, &d, &e, &err), &err);
	ASSERT_EQ_INT(e.argc, 1);
	ASSERT_EQ_STR(e.argv[0], "x");
	hc_lib_exec_clear(&e);

	o.n_cmd = 0;
	ASSERT_ERR(hc_lib_exec_build(&o, &d, &e, &err));
	ASSERT_EQ_STR(err.kind, "usage");
}

TEST(rootfs_without_config)
{
	struct hc_run_opts o;
	struct hc_proto_exec e;
	struct hc_error err = { 0 };
	const char *cmd[] = { "/bin/busybox", "true" };

	hc_run_opts_init(&o);
	ASSERT_ERR(hc_lib_exec_build(&o, NULL, &e, &err));
	ASSERT_TRUE(strstr(err.message, "CMD is required") != NULL);
	o.cmd = cmd;
	o.n_cmd = 2;
	ASSERT_OK(hc_lib_exec_build(&o, NULL, &e, &err), &err);
	ASSERT_EQ_STR(e.cwd, "/");
	ASSERT_EQ_STR(e.user, "");
	ASSERT_EQ_STR(env_get(&e, "PATH"), HC_LIB_DEFAULT_PATH);
	hc_lib_exec_clear(&e);
}

TEST(bad_values)
{
	struct hc_run_opts o;
	struct hc_proto_exec e;
	struct hc_error err = { 0 };
	const char *cmd[] = { "true" };
	const char *env[] = { "=x" };

	hc_run_opts_init(&o);
	o.cmd = cmd;
	o.n_cmd = 1;
	o.env = env;
	o.n_env = 1;
	ASSERT_ERR(hc_lib_exec_build(&o, NULL, &e, &err));
	o.n_env = 0;
	o.workdir = "relative";
	ASSERT_ERR(hc_lib_exec_build(&o, NULL, &e, &err));
}

/* Issue 16 item 12: a 10 MB Env value in the image config says it comes from there. */
TEST(defect_12_image_env_too_long)
{
	struct hc_run_opts o;
	struct hc_lib_image_defaults d = img();
	struct hc_proto_exec e;
	struct hc_error err = { 0 };
	size_t n = 10u << 20;
	char *big = malloc(n + 1);
	const char *env[] = { "PATH=/bin", big };

	ASSERT_TRUE(big != NULL);
	memset(big, 'x', n);
	memcpy(big, "HUGE=", 5);
	big[n] = 0;
	d.env = env;
	d.n_env = 2;
	hc_run_opts_init(&o);
	ASSERT_EQ_INT(hc_lib_exec_build(&o, &d, &e, &err), -E2BIG);
	printf("# %s\n", err.message);
	ASSERT_TRUE(strstr(err.message, "the image config's Env entry HUGE is 10485760 bytes") != NULL);
	ASSERT_TRUE(strstr(err.message, "limit of 131071 bytes") != NULL);
	free(big);
}

/* Issue 16 item 12: a total environment over the limit states the limit. */
TEST(defect_12_total_env_limit)
{
	struct hc_run_opts o;
	struct hc_lib_image_defaults d = img();
	struct hc_proto_exec e;
	struct hc_error err = { 0 };
	static char vals[12][100001];
	const char *env[12];
	char want[64];

	for (int i = 0; i < 12; i++) {
		memset(vals[i], 'v', 100000);
		snprintf(vals[i], 8, "V%02d=", i);
		vals[i][4] = 'v';
		env[i] = vals[i];
	}
	d.env = env;
	d.n_env = 12;
	hc_run_opts_init(&o);
	ASSERT_EQ_INT(hc_lib_exec_build(&o, &d, &e, &err), -E2BIG);
	printf("# %s\n", err.message);
	snprintf(want, sizeof(want), "over the limit of %u bytes", HC_PROTO_MAX_PAYLOAD);
	ASSERT_TRUE(strstr(err.message, want) != NULL);
	ASSERT_TRUE(strstr(err.message, "image config's Env") != NULL);
}

int main(void)
{
	RUN(image_defaults);
	RUN(user_overrides);
	RUN(entrypoint_flag);
	RUN(rootfs_without_config);
	RUN(bad_values);
	RUN(defect_12_image_env_too_long);
	RUN(defect_12_total_env_limit);
	return test_summary();
}
