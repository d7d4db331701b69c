/* SPDX-License-Identifier: MIT */
/* Image references: the cases docker/podman normalise, and what they reject
 * (github.com/distribution/reference normalize_test.go and reference_test.go). */
#include "oci/digest.h"
#include "oci/ref.h"
#include "test.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct {
	const char *in, *out;
} valid[] = {
	{ "alpine", "docker.io/library/alpine:latest" },
	{ "alpine:3.20", "docker.io/library/alpine:3.20" },
	{ "library/alpine", "docker.io/library/alpine:latest" },
	{ "docker.io/alpine", "docker.io/library/alpine:latest" },
	{ "docker.io/library/alpine:3.20", "docker.io/library/alpine:3.20" },
	{ "index.docker.io/alpine", "docker.io/library/alpine:latest" },
	{ "user/repo", "docker.io/user/repo:latest" },
	{ "user/repo/sub:tag", "docker.io/user/repo/sub:tag" },
	{ "quay.io/podman/stable", "quay.io/podman/stable:latest" },
	{ "localhost/foo", "localhost/foo:latest" },
	{ "localhost:5000/foo:1", "localhost:5000/foo:1" },
	{ "127.0.0.1:5000/team/tool", "127.0.0.1:5000/team/tool:latest" },
	{ "127.0.0.1:5000/team/tool@sha256:" D64, "127.0.0.1:5000/team/tool@sha256:" D64 },
	{ "alpine@sha256:" D64, "docker.io/library/alpine@sha256:" D64 },
	{ "alpine:3.20@sha256:" D64, "docker.io/library/alpine:3.20@sha256:" D64 },
	{ "Example.COM/foo", "Example.COM/foo:latest" },
	{ "Foo/bar", "Foo/bar:latest" }, /* upper case first component: a domain */
	{ "a-b.c/d__e/f.g/h--i:T_a-g.1", "a-b.c/d__e/f.g/h--i:T_a-g.1" },
	{ "[::1]:5000/foo", "[::1]:5000/foo:latest" },
	{ "registry-1.docker.io/library/busybox", "registry-1.docker.io/library/busybox:latest" },
	{ "foo:5000/bar:baz", "foo:5000/bar:baz" },
	/* no '/': a name on docker.io with tag 5000, exactly as docker reads it */
	{ "localhost:5000", "docker.io/library/localhost:5000" },
	{ "_x/y", NULL },
};

static const char *const invalid[] = {
	"",
	"Alpine",
	"alpine:",
	":tag",
	"alpine:-bad",
	"alpine:a/b",
	"alpine@sha256:abc",
	"alpine@sha256:" D64 "0",
	"alpine@sha512:" D64 D64,
	"alpine@md5:0123",
	"alpine@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	D64,
	"foo//bar",
	"foo/",
	"/foo",
	"foo/bar/",
	"a..b/c",
	"-foo.com/bar",
	"foo-.com/bar",
	"foo.com:/bar",
	"foo.com:50a/bar",
	"foo.com/Bar",
	"foo.com/ba r",
	"foo.com/bar_-baz",
	"foo.com/bar___baz",
	"foo.com/.bar",
	"foo.com/bar.",
	"[zz]:5000/foo",
	"[]/foo",
	"alpine:3.20:4",
	("alpine@@sha256:" D64), /* parenthesised: one element, on purpose */
};

TEST(ref_valid)
{
	for (size_t i = 0; i < HC_ARRAY_SIZE(valid); i++) {
		struct hc_oci_ref r;
		struct hc_error e = { 0 };
		char out[600];
		if (!valid[i].out) {
			/* "_x/y": '_' cannot start a path component */
			ASSERT_ERR(hc_oci_ref_parse(valid[i].in, &r, &e));
			continue;
		}
		ASSERT_OK(hc_oci_ref_parse(valid[i].in, &r, &e), &e);
		ASSERT_TRUE(hc_oci_ref_format(&r, out, sizeof(out)) > 0);
		ASSERT_EQ_STR(out, valid[i].out);
		/* normalisation is idempotent */
		struct hc_oci_ref r2;
		char out2[600];
		ASSERT_OK(hc_oci_ref_parse(out, &r2, &e), &e);
		ASSERT_TRUE(hc_oci_ref_format(&r2, out2, sizeof(out2)) > 0);
		ASSERT_EQ_STR(out2, out);
	}
}

TEST(ref_invalid)
{
	for (size_t i = 0; i < HC_ARRAY_SIZE(invalid); i++) {
		struct hc_oci_ref r;
		struct hc_error e = { 0 };
		int k = hc_oci_ref_parse(invalid[i], &r, &e);
		if (k >= 0)
			FAILF("'%s' was accepted", invalid[i]);
		ASSERT_EQ_INT(k, -EINVAL);
		ASSERT_TRUE(strstr(e.message, "invalid reference") != NULL);
	}
}

TEST(ref_parts)
{
	struct hc_oci_ref r;
	struct hc_error e = { 0 };
	char name[300];

	ASSERT_OK(hc_oci_ref_parse("alpine", &r, &e), &e);
	ASSERT_EQ_STR(r.domain, "docker.io");
	ASSERT_EQ_STR(r.path, "library/alpine");
	ASSERT_EQ_STR(r.tag, "latest");
	ASSERT_EQ_STR(r.digest, "");
	ASSERT_EQ_STR(hc_oci_ref_api_host(&r), "registry-1.docker.io");
	ASSERT_EQ_STR(hc_oci_ref_manifest_ref(&r), "latest");
	ASSERT_TRUE(hc_oci_ref_format_name(&r, name, sizeof(name)) > 0);
	ASSERT_EQ_STR(name, "docker.io/library/alpine");

	ASSERT_OK(hc_oci_ref_parse("127.0.0.1:5000/team/tool:v1@sha256:" D64, &r, &e), &e);
	ASSERT_EQ_STR(r.domain, "127.0.0.1:5000");
	ASSERT_EQ_STR(r.path, "team/tool");
	ASSERT_EQ_STR(r.tag, "v1");
	ASSERT_EQ_STR(r.digest, "sha256:" D64);
	ASSERT_EQ_STR(hc_oci_ref_api_host(&r), "127.0.0.1:5000");
	ASSERT_EQ_STR(hc_oci_ref_manifest_ref(&r), "sha256:" D64);
}

TEST(ref_lengths)
{
	struct hc_oci_ref r;
	struct hc_error e = { 0 };
	char s[2048];

	/* a 128-character tag is the maximum */
	memset(s, 0, sizeof(s));
	strcpy(s, "alpine:");
	memset(s + 7, 'a', 128);
	ASSERT_OK(hc_oci_ref_parse(s, &r, &e), &e);
	s[7 + 128] = 'a';
	ASSERT_ERR(hc_oci_ref_parse(s, &r, &e));

	/* the whole name (domain/path) is at most 255 characters */
	memset(s, 0, sizeof(s));
	strcpy(s, "example.com/");
	memset(s + 12, 'a', 255 - 12);
	ASSERT_OK(hc_oci_ref_parse(s, &r, &e), &e);
	s[255] = 'a';
	ASSERT_ERR(hc_oci_ref_parse(s, &r, &e));
	/* docker.io's library/ prefix counts */
	memset(s, 0, sizeof(s));
	memset(s, 'a', 255 - 18);
	ASSERT_OK(hc_oci_ref_parse(s, &r, &e), &e);
	s[255 - 18] = 'a';
	ASSERT_ERR(hc_oci_ref_parse(s, &r, &e));

	memset(s, 'a', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	ASSERT_ERR(hc_oci_ref_parse(s, &r, &e));
}

TEST(ref_loopback)
{
	ASSERT_TRUE(hc_oci_domain_is_loopback("localhost"));
	ASSERT_TRUE(hc_oci_domain_is_loopback("localhost:5000"));
	ASSERT_TRUE(hc_oci_domain_is_loopback("127.0.0.1:5000"));
	ASSERT_TRUE(hc_oci_domain_is_loopback("127.1.2.3"));
	ASSERT_TRUE(hc_oci_domain_is_loopback("[::1]:5000"));
	ASSERT_TRUE(!hc_oci_domain_is_loopback("docker.io"));
	ASSERT_TRUE(!hc_oci_domain_is_loopback("127.0.0.1.example.com"));
	ASSERT_TRUE(!hc_oci_domain_is_loopback("128.0.0.1:5000"));
	ASSERT_TRUE(!hc_oci_domain_is_loopback("localhost.evil.com"));
	ASSERT_TRUE(!hc_oci_domain_is_loopback("[::2]:5000"));
}

TEST(digest_valid)
{
	ASSERT_TRUE(hc_oci_digest_valid("sha256:" D64));
	ASSERT_TRUE(!hc_oci_digest_valid("sha256:" D64 "0"));
	ASSERT_TRUE(!hc_oci_digest_valid("sha256:"));
	ASSERT_TRUE(!hc_oci_digest_valid("sha512:" D64));
	ASSERT_TRUE(!hc_oci_digest_valid(NULL));
}

int main(void)
{
	RUN(ref_valid);
	RUN(ref_invalid);
	RUN(ref_parts);
	RUN(ref_lengths);
	RUN(ref_loopback);
	RUN(digest_valid);
	return test_summary();
}
