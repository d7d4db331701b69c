/* SPDX-License-Identifier: MIT */
/* Manifests, indexes, configs and platform selection (OCI image-spec v1.1, Docker schema 2). */
#include "oci/manifest.h"
#include "test.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D4 "sha256:4444444444444444444444444444444444444444444444444444444444444444"

static int parse(const char *doc, const char *ct, struct hc_oci_manifest *m, struct hc_error *e)
{
	return hc_oci_manifest_parse(doc, strlen(doc), ct, m, e);
}

static const char oci_manifest[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1
	"\",\"size\":123},"
	"\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2
	"\",\"size\":1000},{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\","
	"\"digest\":\"" D3 "\",\"size\":2000}]}";

static const char docker_manifest[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
	"\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"" D1
	"\",\"size\":7},"
	"\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" D2
	"\",\"size\":5}]}";

static const char docker_list[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
	"\"manifests\":["
	"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D1
	"\",\"size\":1,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"}},"
	"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D2
	"\",\"size\":2,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
	"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D3
	"\",\"size\":3,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
	"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D4
	"\",\"size\":4,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}}]}";

TEST(parse_oci_manifest)
{
	struct hc_oci_manifest m;
	struct hc_error e = { 0 };

	ASSERT_OK(parse(oci_manifest, HC_OCI_MT_MANIFEST, &m, &e), &e);
	ASSERT_EQ_INT(m.kind, HC_OCI_KIND_MANIFEST);
	ASSERT_EQ_STR(m.media_type, HC_OCI_MT_MANIFEST);
	ASSERT_EQ_STR(m.config.digest, D1);
	ASSERT_EQ_INT(m.config.size, 123);
	ASSERT_EQ_INT(m.n_layers, 2);
	ASSERT_EQ_STR(m.layers[1].digest, D3);
	ASSERT_EQ_STR(m.layers[1].media_type, HC_OCI_MT_LAYER_ZSTD);
	ASSERT_TRUE(hc_oci_media_type_is_layer(m.layers[0].media_type));
	hc_oci_manifest_free(&m);
}

TEST(parse_docker_manifest)
{
	struct hc_oci_manifest m;
	struct hc_error e = { 0 };

	ASSERT_OK(parse(docker_manifest, "application/vnd.docker.distribution.manifest.v2+json; "
					 "charset=utf-8", &m, &e), &e);
	ASSERT_EQ_INT(m.kind, HC_OCI_KIND_MANIFEST);
	ASSERT_EQ_STR(m.config.media_type, HC_DOCKER_MT_CONFIG);
	ASSERT_EQ_INT(m.n_layers, 1);
	hc_oci_manifest_free(&m);
	/* no transport type: the body decides */
	ASSERT_OK(parse(docker_manifest, NULL, &m, &e), &e);
	ASSERT_EQ_STR(m.media_type, HC_DOCKER_MT_MANIFEST);
	hc_oci_manifest_free(&m);
}

TEST(parse_without_media_type)
{
	struct hc_oci_manifest m;
	struct hc_error e = { 0 };
	const char *idx = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
			  "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1
			  "\",\"size\":9,\"annotations\":{\"org.opencontainers.image.ref.name\":"
			  "\"v1\"}}]}";

	ASSERT_OK(parse(idx, NULL, &m, &e), &e);
	ASSERT_EQ_INT(m.kind, HC_OCI_KIND_INDEX);
	ASSERT_EQ_STR(m.media_type, HC_OCI_MT_INDEX);
	ASSERT_EQ_STR(m.manifests[0].ref_name, "v1");
	/* a single entry without platform is taken */
	const struct hc_oci_desc *d = NULL;
	struct hc_oci_platform p;
	hc_oci_platform_host(&p);
	ASSERT_OK(hc_oci_index_select(&m, &p, &d, &e), &e);
	ASSERT_EQ_STR(d->digest, D1);
	hc_oci_manifest_free(&m);
}

TEST(select_platform)
{
	struct hc_oci_manifest m;
	struct hc_error e = { 0 };
	struct hc_oci_platform p;
	const struct hc_oci_desc *d;

	ASSERT_OK(parse(docker_list, HC_DOCKER_MT_LIST, &m, &e), &e);
	ASSERT_EQ_INT(m.n_manifests, 4);
	ASSERT_OK(hc_oci_platform_parse("linux/amd64", &p, &e), &e);
	ASSERT_OK(hc_oci_index_select(&m, &p, &d, &e), &e);
	ASSERT_EQ_STR(d->digest, D3);
	ASSERT_OK(hc_oci_platform_parse("linux/x86_64", &p, &e), &e);
	ASSERT_OK(hc_oci_index_select(&m, &p, &d, &e), &e);
	ASSERT_EQ_STR(d->digest, D3);
	/* arm64 == arm64/v8 */
	ASSERT_OK(hc_oci_platform_parse("linux/arm64", &p, &e), &e);
	ASSERT_OK(hc_oci_index_select(&m, &p, &d, &e), &e);
	ASSERT_EQ_STR(d->digest, D2);
	ASSERT_OK(hc_oci_platform_parse("linux/aarch64", &p, &e), &e);
	ASSERT_OK(hc_oci_index_select(&m, &p, &d, &e), &e);
	ASSERT_EQ_STR(d->digest, D2);
	/* arm means arm/v7 */
	ASSERT_OK(hc_oci_platform_parse("linux/arm", &p, &e), &e);
	ASSERT_OK(hc_oci_index_select(&m, &p, &d, &e), &e);
	ASSERT_EQ_STR(d->digest, D4);
	ASSERT_OK(hc_oci_platform_parse("linux/arm/v6", &p, &e), &e);
	ASSERT_OK(hc_oci_index_select(&m, &p, &d, &e), &e);
	ASSERT_EQ_STR(d->digest, D1);
	ASSERT_OK(hc_oci_platform_parse("linux/s390x", &p, &e), &e);
	ASSERT_EQ_INT(hc_oci_index_select(&m, &p, &d, &e), -ENOENT);
	ASSERT_TRUE(strstr(e.message, "linux/s390x") != NULL);
	ASSERT_TRUE(strstr(e.message, "linux/amd64") != NULL);
	ASSERT_OK(hc_oci_platform_parse("windows/amd64", &p, &e), &e);
	ASSERT_EQ_INT(hc_oci_index_select(&m, &p, &d, &e), -ENOENT);
	hc_oci_manifest_free(&m);
}

TEST(platform_parse)
{
	struct hc_oci_platform p;
	struct hc_error e = { 0 };
	char s[100];

	hc_oci_platform_host(&p);
	hc_oci_platform_format(&p, s, sizeof(s));
	ASSERT_TRUE(strcmp(s, "linux/amd64") == 0 || strcmp(s, "linux/arm64") == 0 ||
		    hc_startswith(s, "linux/"));
	ASSERT_OK(hc_oci_platform_parse("linux/arm/v7", &p, &e), &e);
	ASSERT_EQ_STR(p.variant, "v7");
	ASSERT_ERR(hc_oci_platform_parse("linux", &p, &e));
	ASSERT_ERR(hc_oci_platform_parse("linux/", &p, &e));
	ASSERT_ERR(hc_oci_platform_parse("/amd64", &p, &e));
	ASSERT_ERR(hc_oci_platform_parse("linux/arm/v7/x", &p, &e));
	ASSERT_ERR(hc_oci_platform_parse("linux/am d64", &p, &e));
	ASSERT_ERR(hc_oci_platform_parse(NULL, &p, &e));
}

static const struct {
	const char *doc, *ct;
	int code;
} bad_docs[] = {
	{ "", NULL, -EBADMSG },
	{ "[]", NULL, -EBADMSG },
	{ "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}", NULL, -EPROTONOSUPPORT },
	{ "{\"schemaVersion\":2}", HC_DOCKER_MT_SCHEMA1_SIGNED, -EPROTONOSUPPORT },
	{ "{\"schemaVersion\":3,\"manifests\":[]}", NULL, -EBADMSG },
	{ "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example+json\",\"manifests\":[]}",
	  NULL, -EPROTONOSUPPORT },
	/* both shapes */
	{ "{\"schemaVersion\":2,\"manifests\":[],\"layers\":[]}", NULL, -EBADMSG },
	/* mediaType disagrees with the transport */
	{ "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
	  "\"manifests\":[]}", HC_OCI_MT_MANIFEST, -EBADMSG },
	/* duplicate keys */
	{ "{\"schemaVersion\":2,\"manifests\":[],\"manifests\":[]}", NULL, -EBADMSG },
	/* index without manifests */
	{ "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\"}", NULL,
	  -EBADMSG },
	/* manifest without config */
	{ "{\"schemaVersion\":2,\"layers\":[]}", NULL, -EBADMSG },
	/* bad descriptors */
	{ "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"sha256:12\",\"size\":1},"
	  "\"layers\":[]}", NULL, -EBADMSG },
	{ "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"sha512:12\",\"size\":1},"
	  "\"layers\":[]}", NULL, -EPROTONOSUPPORT },
	{ "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"" D1 "\",\"size\":-1},"
	  "\"layers\":[]}", NULL, -EBADMSG },
	{ "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"" D1 "\"},"
	  "\"layers\":[]}", NULL, -EBADMSG },
	{ "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":1},\"layers\":[]}", NULL,
	  -EBADMSG },
	{ "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"" D1 "\",\"size\":1},"
	  "\"layers\":{}}", NULL, -EBADMSG },
	{ "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"" D1 "\",\"size\":1},"
	  "\"layers\":[1]}", NULL, -EBADMSG },
	{ "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a\",\"digest\":\"" D1 "\","
	  "\"size\":1,\"platform\":{\"os\":\"linux\"}}]}", NULL, -EBADMSG },
};

TEST(parse_rejects)
{
	for (size_t i = 0; i < HC_ARRAY_SIZE(bad_docs); i++) {
		struct hc_oci_manifest m;
		struct hc_error e = { 0 };
		int k = parse(bad_docs[i].doc, bad_docs[i].ct, &m, &e);
		hc_oci_manifest_free(&m);
		if (k != bad_docs[i].code)
			FAILF("case %zu: got %d (%s), expected %d", i, k, e.message, bad_docs[i].code);
		ASSERT_TRUE(e.message[0] != '\0');
	}
}

TEST(parse_bounds)
{
	struct hc_oci_manifest m;
	struct hc_error e = { 0 };
	char *big = malloc(HC_OCI_MANIFEST_MAX + 2);

	ASSERT_TRUE(big != NULL);
	memset(big, ' ', HC_OCI_MANIFEST_MAX + 1);
	big[HC_OCI_MANIFEST_MAX + 1] = '\0';
	ASSERT_EQ_INT(hc_oci_manifest_parse(big, HC_OCI_MANIFEST_MAX + 1, NULL, &m, &e), -E2BIG);
	hc_oci_manifest_free(&m);
	free(big);

	/* too many layers */
	size_t n = HC_OCI_LAYERS_MAX + 1, cap = 200 + n * 200, used;
	char *doc = malloc(cap);
	ASSERT_TRUE(doc != NULL);
	used = (size_t)snprintf(doc, cap, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\","
				"\"digest\":\"" D1 "\",\"size\":1},\"layers\":[");
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(doc + used, cap - used,
					 "%s{\"mediaType\":\"a\",\"digest\":\"" D2 "\",\"size\":1}",
					 i ? "," : "");
	snprintf(doc + used, cap - used, "]}");
	ASSERT_EQ_INT(parse(doc, NULL, &m, &e), -EBADMSG);
	hc_oci_manifest_free(&m);
	free(doc);
}

TEST(parse_config)
{
	struct hc_oci_config c;
	struct hc_error e = { 0 };
	const char *doc =
		"{\"created\":\"2024-05-01T10:00:00Z\",\"architecture\":\"amd64\",\"os\":\"linux\","
		"\"config\":{\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],"
		"\"Env\":[\"PATH=/bin\",\"A=b\"],\"WorkingDir\":\"/srv\",\"User\":\"1000:1000\"},"
		"\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\"]},\"history\":[]}";

	ASSERT_OK(hc_oci_config_parse(doc, strlen(doc), &c, &e), &e);
	ASSERT_EQ_STR(c.created, "2024-05-01T10:00:00Z");
	ASSERT_EQ_STR(c.platform.arch, "amd64");
	ASSERT_EQ_INT(c.n_entrypoint, 2);
	ASSERT_EQ_STR(c.entrypoint[1], "-c");
	ASSERT_TRUE(c.entrypoint[2] == NULL);
	ASSERT_EQ_INT(c.n_cmd, 1);
	ASSERT_EQ_INT(c.n_env, 2);
	ASSERT_EQ_STR(c.env[1], "A=b");
	ASSERT_EQ_STR(c.workdir, "/srv");
	ASSERT_EQ_STR(c.user, "1000:1000");
	ASSERT_EQ_INT(c.n_diff_ids, 1);
	hc_oci_config_free(&c);

	/* nulls and empties are "absent" */
	doc = "{\"config\":{\"Entrypoint\":null,\"Cmd\":null,\"WorkingDir\":\"\",\"User\":\"\"}}";
	ASSERT_OK(hc_oci_config_parse(doc, strlen(doc), &c, &e), &e);
	ASSERT_TRUE(c.entrypoint == NULL && c.cmd == NULL && c.workdir == NULL && c.user == NULL);
	hc_oci_config_free(&c);

	doc = "{\"config\":{\"Cmd\":\"echo\"}}";
	ASSERT_ERR(hc_oci_config_parse(doc, strlen(doc), &c, &e));
	hc_oci_config_free(&c);
	doc = "{\"config\":{\"Env\":[1]}}";
	ASSERT_ERR(hc_oci_config_parse(doc, strlen(doc), &c, &e));
	hc_oci_config_free(&c);
	doc = "{\"config\":{\"User\":\"a\\u0000b\"}}";
	ASSERT_ERR(hc_oci_config_parse(doc, strlen(doc), &c, &e));
	hc_oci_config_free(&c);
}

/* Issue 16 item 12: an index entry for the platform that is itself an index is selected (the
 * caller follows it), and the list of what is on offer names only usable entries. */
TEST(defect_12_nested_index_selected)
{
	struct hc_oci_manifest m;
	struct hc_error e = { 0 };
	struct hc_oci_platform p;
	const struct hc_oci_desc *d = NULL;
	const char *idx = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
			  "\"application/vnd.oci.image.index.v1+json\",\"digest\":\"" D1
			  "\",\"size\":9,\"platform\":{\"os\":\"linux\",\"architecture\":"
			  "\"amd64\"}},{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
			  "\"digest\":\"" D2 "\",\"size\":9,\"platform\":{\"os\":\"linux\","
			  "\"architecture\":\"arm64\"}}]}";

	ASSERT_OK(parse(idx, NULL, &m, &e), &e);
	ASSERT_OK(hc_oci_platform_parse("linux/amd64", &p, &e), &e);
	ASSERT_OK(hc_oci_index_select(&m, &p, &d, &e), &e);
	ASSERT_EQ_STR(d->digest, D1);
	ASSERT_OK(hc_oci_platform_parse("linux/arm64", &p, &e), &e);
	ASSERT_EQ_INT(hc_oci_index_select(&m, &p, &d, &e), -ENOENT);
	ASSERT_TRUE(strstr(e.message, "no image for platform linux/arm64 (available: linux/amd64)") !=
		    NULL);
	hc_oci_manifest_free(&m);
}

int main(void)
{
	RUN(parse_oci_manifest);
	RUN(parse_docker_manifest);
	RUN(parse_without_media_type);
	RUN(select_platform);
	RUN(platform_parse);
	RUN(parse_rejects);
	RUN(parse_bounds);
	RUN(parse_config);
	RUN(defect_12_nested_index_selected);
	return test_summary();
}
