/* SPDX-License-Identifier: MIT */
/* Registry credentials (containers-auth.json(5), docker config.json) and the WWW-Authenticate
 * challenge (RFC 7235, distribution token.md). */
#include <stdlib.h>

#include "oci/auth.h"
#include "test.h"

TEST(challenge_bearer)
{
	struct hc_oci_challenge c;
	struct hc_error e = { 0 };

	ASSERT_OK(hc_oci_auth_challenge_parse(
			  "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
			  "scope=\"repository:library/alpine:pull\"",
			  &c, &e),
		  &e);
	ASSERT_EQ_INT(c.scheme, HC_OCI_AUTH_BEARER);
	ASSERT_EQ_STR(c.realm, "https://auth.docker.io/token");
	ASSERT_EQ_STR(c.service, "registry.docker.io");
	ASSERT_EQ_STR(c.scope, "repository:library/alpine:pull");
	ASSERT_EQ_STR(c.error, "");

	/* case-insensitive scheme, spaces, token values, escapes, error */
	ASSERT_OK(hc_oci_auth_challenge_parse("bearer  realm = \"https://x/t?a=1\" , "
					      "service=svc,error=\"insufficient_scope\", "
					      "scope=\"a\\\"b\"",
					      &c, &e),
		  &e);
	ASSERT_EQ_STR(c.realm, "https://x/t?a=1");
	ASSERT_EQ_STR(c.service, "svc");
	ASSERT_EQ_STR(c.scope, "a\"b");
	ASSERT_EQ_STR(c.error, "insufficient_scope");

	ASSERT_OK(hc_oci_auth_challenge_parse("Basic realm=\"basic-realm\"", &c, &e), &e);
	ASSERT_EQ_INT(c.scheme, HC_OCI_AUTH_BASIC);
}

TEST(challenge_bad)
{
	static const char *const bad[] = {
		"",
		"Negotiate abc",
		"Bearer",                         /* no realm */
		"Bearer realm=\"unterminated",
		"Bearer realm",
		"Bearer =x",
		"Bearer realm=\"a\" junk",
	};
	for (size_t i = 0; i < HC_ARRAY_SIZE(bad); i++) {
		struct hc_oci_challenge c;
		struct hc_error e = { 0 };
		if (hc_oci_auth_challenge_parse(bad[i], &c, &e) >= 0)
			FAILF("'%s' accepted", bad[i]);
	}
	/* a realm longer than the buffer is refused, not truncated */
	char big[3000];
	memset(big, 0, sizeof(big));
	strcpy(big, "Bearer realm=\"https://");
	memset(big + strlen(big), 'a', 2000);
	strcat(big, "\"");
	struct hc_oci_challenge c;
	struct hc_error e = { 0 };
	ASSERT_ERR(hc_oci_auth_challenge_parse(big, &c, &e));
}

TEST(basic_header)
{
	struct hc_oci_creds c = { .set = true, .user = "alice", .password = "s3cret" };
	char buf[128];

	ASSERT_EQ_INT(hc_oci_auth_basic_header(&c, buf, sizeof(buf)), 0);
	ASSERT_EQ_STR(buf, "Basic YWxpY2U6czNjcmV0");
	ASSERT_ERR(hc_oci_auth_basic_header(&c, buf, 10));
}

TEST(token_reply)
{
	struct hc_error e = { 0 };
	char *t = NULL;
	const char *a = "{\"token\":\"abc\",\"expires_in\":300}";
	const char *b = "{\"access_token\":\"xyz\"}";
	const char *c = "{\"token\":\"a\\nb\"}";
	const char *d = "{\"expires_in\":1}";

	ASSERT_OK(hc_oci_auth_token_parse(a, strlen(a), &t, &e), &e);
	ASSERT_EQ_STR(t, "abc");
	free(t);
	ASSERT_OK(hc_oci_auth_token_parse(b, strlen(b), &t, &e), &e);
	ASSERT_EQ_STR(t, "xyz");
	free(t);
	ASSERT_ERR(hc_oci_auth_token_parse(c, strlen(c), &t, &e)); /* header injection */
	ASSERT_ERR(hc_oci_auth_token_parse(d, strlen(d), &t, &e));
	ASSERT_ERR(hc_oci_auth_token_parse("[", 1, &t, &e));
}

static char tmpdir[64];

static const char *write_file(const char *name, const char *content)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "we");
	if (!f)
		return NULL;
	fputs(content, f);
	fclose(f);
	return path;
}

TEST(auth_file_lookup)
{
	struct hc_oci_ref r;
	struct hc_oci_creds c;
	struct hc_error e = { 0 };
	const char *p;

	/* alice:pw = YWxpY2U6cHc=, bob:pw2 = Ym9iOnB3Mg== */
	p = write_file("a.json", "{\"auths\":{\"quay.io\":{\"auth\":\"YWxpY2U6cHc=\"},"
				 "\"quay.io/team\":{\"auth\":\"Ym9iOnB3Mg==\"},"
				 "\"https://index.docker.io/v1/\":{\"auth\":\"Ym9iOnB3Mg==\"}}}");
	ASSERT_TRUE(p != NULL);
	ASSERT_OK(hc_oci_ref_parse("quay.io/other/tool", &r, &e), &e);
	ASSERT_OK(hc_oci_auth_find_in_file(p, &r, &c, &e), &e);
	ASSERT_TRUE(c.set);
	ASSERT_EQ_STR(c.user, "alice");
	ASSERT_EQ_STR(c.password, "pw");
	/* the namespace entry is more specific */
	ASSERT_OK(hc_oci_ref_parse("quay.io/team/tool", &r, &e), &e);
	ASSERT_OK(hc_oci_auth_find_in_file(p, &r, &c, &e), &e);
	ASSERT_EQ_STR(c.user, "bob");
	/* "quay.io/teamx" is not under "quay.io/team" */
	ASSERT_OK(hc_oci_ref_parse("quay.io/teamx/tool", &r, &e), &e);
	ASSERT_OK(hc_oci_auth_find_in_file(p, &r, &c, &e), &e);
	ASSERT_EQ_STR(c.user, "alice");
	/* docker's legacy key is Docker Hub */
	ASSERT_OK(hc_oci_ref_parse("alpine", &r, &e), &e);
	ASSERT_OK(hc_oci_auth_find_in_file(p, &r, &c, &e), &e);
	ASSERT_EQ_STR(c.user, "bob");
	/* nothing for another registry */
	ASSERT_OK(hc_oci_ref_parse("ghcr.io/x/y", &r, &e), &e);
	ASSERT_OK(hc_oci_auth_find_in_file(p, &r, &c, &e), &e);
	ASSERT_TRUE(!c.set);
	/* a missing file is no credentials */
	ASSERT_OK(hc_oci_auth_find_in_file("/nonexistent/auth.json", &r, &c, &e), &e);
	ASSERT_TRUE(!c.set);
}

TEST(auth_file_refusals)
{
	struct hc_oci_ref r;
	struct hc_oci_creds c;
	struct hc_error e = { 0 };
	const char *p;

	ASSERT_OK(hc_oci_ref_parse("quay.io/team/tool", &r, &e), &e);
	p = write_file("b.json", "{\"credsStore\":\"desktop\",\"auths\":{\"quay.io\":{}}}");
	ASSERT_EQ_INT(hc_oci_auth_find_in_file(p, &r, &c, &e), -ENOTSUP);
	ASSERT_TRUE(strstr(e.message, "not supported") != NULL);
	p = write_file("c.json", "{\"credHelpers\":{\"quay.io\":\"ecr-login\"}}");
	ASSERT_EQ_INT(hc_oci_auth_find_in_file(p, &r, &c, &e), -ENOTSUP);
	/* an inline entry wins over the store */
	p = write_file("d.json", "{\"credsStore\":\"desktop\",\"auths\":{\"quay.io\":"
				 "{\"auth\":\"YWxpY2U6cHc=\"}}}");
	ASSERT_OK(hc_oci_auth_find_in_file(p, &r, &c, &e), &e);
	ASSERT_EQ_STR(c.user, "alice");
	p = write_file("e.json", "{\"auths\":{\"quay.io\":{\"auth\":\"!!!\"}}}");
	ASSERT_ERR(hc_oci_auth_find_in_file(p, &r, &c, &e));
	p = write_file("f.json", "{\"auths\":{\"quay.io\":{\"auth\":\"bm9jb2xvbg==\"}}}");
	ASSERT_ERR(hc_oci_auth_find_in_file(p, &r, &c, &e)); /* "nocolon" */
	p = write_file("g.json", "not json");
	ASSERT_ERR(hc_oci_auth_find_in_file(p, &r, &c, &e));
}

TEST(auth_env)
{
	struct hc_oci_ref r;
	struct hc_oci_creds c;
	struct hc_error e = { 0 };
	char path[128];

	snprintf(path, sizeof(path), "%s/a.json", tmpdir);
	ASSERT_OK(hc_oci_ref_parse("quay.io/team/tool", &r, &e), &e);
	setenv("REGISTRY_AUTH_FILE", path, 1);
	setenv("HOTCELL_REGISTRY_USER", "envuser", 1);
	setenv("HOTCELL_REGISTRY_PASSWORD", "envpw", 1);
	ASSERT_OK(hc_oci_auth_find(&r, &c, &e), &e);
	ASSERT_EQ_STR(c.user, "envuser"); /* the environment comes first */
	unsetenv("HOTCELL_REGISTRY_USER");
	unsetenv("HOTCELL_REGISTRY_PASSWORD");
	ASSERT_OK(hc_oci_auth_find(&r, &c, &e), &e);
	ASSERT_EQ_STR(c.user, "bob");
	ASSERT_EQ_STR(c.source, path);
	unsetenv("REGISTRY_AUTH_FILE");
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/hcauth.XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	RUN(challenge_bearer);
	RUN(challenge_bad);
	RUN(basic_header);
	RUN(token_reply);
	RUN(auth_file_lookup);
	RUN(auth_file_refusals);
	RUN(auth_env);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return test_summary();
}
