/* SPDX-License-Identifier: MIT */
/*
 * Manifest, index and config parsing (OCI image-spec v1.1; Docker manifest v2 schema 2). The
 * input is untrusted: sizes, counts and string lengths are bounded, duplicate keys are refused,
 * and a document has to be unambiguously one kind (image-spec manifest.md, "Guidelines for
 * Artifact Usage", and the CVE-2021-41190 clarification that mediaType must agree with the
 * transport).
 */
#include <jansson.h>
#include <sys/utsname.h>

#include "oci/manifest.h"

static const char *const manifest_types[] = {HC_OCI_MT_MANIFEST, HC_DOCKER_MT_MANIFEST};
static const char *const index_types[] = {HC_OCI_MT_INDEX, HC_DOCKER_MT_LIST};
static const char *const layer_types[] = {
	HC_OCI_MT_LAYER,	 HC_OCI_MT_LAYER_GZIP,	       HC_OCI_MT_LAYER_ZSTD,
	HC_OCI_MT_LAYER_NONDIST, HC_OCI_MT_LAYER_NONDIST_GZIP, HC_OCI_MT_LAYER_NONDIST_ZSTD,
	HC_DOCKER_MT_LAYER_GZIP, HC_DOCKER_MT_LAYER_FOREIGN,
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

bool hc_oci_media_type_is_manifest(const char *mt)
{
	return in_list(mt, manifest_types, HC_ARRAY_SIZE(manifest_types));
}

bool hc_oci_media_type_is_index(const char *mt)
{
	return in_list(mt, index_types, HC_ARRAY_SIZE(index_types));
}

bool hc_oci_media_type_is_layer(const char *mt)
{
	return in_list(mt, layer_types, HC_ARRAY_SIZE(layer_types));
}

static int bad(struct hc_error *err, const char *fmt, const char *arg)
{
	char msg[256];

	snprintf(msg, sizeof(msg), fmt, arg);
	return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "invalid manifest: %s", msg);
}

/* Copies a JSON string member into a fixed buffer; absent is "" when optional. */
static int get_str(json_t *obj, const char *key, char *buf, size_t n, bool required,
		   struct hc_error *err)
{
	json_t *v = json_object_get(obj, key);

	buf[0] = '\0';
	if (!v) {
		if (required)
			return bad(err, "missing \"%s\"", key);
		return 0;
	}
	if (!json_is_string(v))
		return bad(err, "\"%s\" is not a string", key);
	if (json_string_length(v) >= n || strlen(json_string_value(v)) != json_string_length(v))
		return bad(err, "\"%s\" is too long or holds a NUL", key);
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int parse_platform(json_t *obj, struct hc_oci_platform *p, struct hc_error *err)
{
	int r;

	if (!json_is_object(obj))
		return bad(err, "%s is not an object", "platform");
	if ((r = get_str(obj, "os", p->os, sizeof(p->os), true, err)) < 0 ||
	    (r = get_str(obj, "architecture", p->arch, sizeof(p->arch), true, err)) < 0 ||
	    (r = get_str(obj, "variant", p->variant, sizeof(p->variant), false, err)) < 0)
		return r;
	return 0;
}

/* descriptor.md: mediaType, digest, size required; platform only in indexes. */
static int parse_desc(json_t *obj, struct hc_oci_desc *d, bool want_platform, struct hc_error *err)
{
	json_t *size, *ann, *plat;
	int r;

	if (!json_is_object(obj))
		return bad(err, "%s is not an object", "descriptor");
	if ((r = get_str(obj, "mediaType", d->media_type, sizeof(d->media_type), true, err)) < 0)
		return r;
	if ((r = get_str(obj, "digest", d->digest, sizeof(d->digest), true, err)) < 0) {
		if (json_is_string(json_object_get(obj, "digest")))
			return hc_error_setk(err, -EPROTONOSUPPORT, HC_EK_IMAGE,
					     "unsupported digest (only sha256)");
		return r;
	}
	if (!hc_oci_digest_valid(d->digest)) {
		char shown[80];
		snprintf(shown, sizeof(shown), "%.70s", d->digest);
		if (!hc_startswith(d->digest, "sha256:") && strchr(d->digest, ':'))
			return hc_error_setk(err, -EPROTONOSUPPORT, HC_EK_IMAGE,
					     "unsupported digest '%s' (only sha256)", shown);
		return bad(err, "invalid digest '%s'", shown);
	}
	size = json_object_get(obj, "size");
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return bad(err, "descriptor %s has no valid size", d->digest);
	d->size = (uint64_t)json_integer_value(size);
	plat = json_object_get(obj, "platform");
	if (want_platform && plat) {
		if ((r = parse_platform(plat, &d->platform, err)) < 0)
			return r;
		d->has_platform = true;
	}
	ann = json_object_get(obj, "annotations");
	if (ann) {
		json_t *name;
		if (!json_is_object(ann))
			return bad(err, "%s is not an object", "annotations");
		name = json_object_get(ann, HC_OCI_REF_NAME);
		if (name) {
			if (!json_is_string(name) || json_string_length(name) > 1024 ||
			    strlen(json_string_value(name)) != json_string_length(name))
				return bad(err, "invalid %s annotation", HC_OCI_REF_NAME);
			d->ref_name = strdup(json_string_value(name));
			if (!d->ref_name)
				return hc_error_set(err, -ENOMEM, "out of memory");
		}
	}
	return 0;
}

static int parse_desc_array(json_t *arr, const char *what, size_t max, bool want_platform,
			    struct hc_oci_desc **ret, size_t *ret_n, struct hc_error *err)
{
	size_t n, bytes;
	int r;

	if (!json_is_array(arr))
		return bad(err, "\"%s\" is not an array", what);
	n = json_array_size(arr);
	if (n > max)
		return bad(err, "too many entries in \"%s\"", what);
	if (hc_mul_overflows(n ? n : 1, sizeof(**ret), &bytes))
		return -ENOMEM;
	*ret = calloc(1, bytes);
	if (!*ret)
		return hc_error_set(err, -ENOMEM, "out of memory");
	*ret_n = n;
	for (size_t i = 0; i < n; i++)
		if ((r = parse_desc(json_array_get(arr, i), &(*ret)[i], want_platform, err)) < 0)
			return r;
	return 0;
}

void hc_oci_manifest_free(struct hc_oci_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->manifests && i < m->n_manifests; i++)
		free(m->manifests[i].ref_name);
	for (size_t i = 0; m->layers && i < m->n_layers; i++)
		free(m->layers[i].ref_name);
	free(m->manifests);
	free(m->layers);
	free(m->config.ref_name);
	memset(m, 0, sizeof(*m));
}

static int load_json(const void *data, size_t len, size_t max, const char *what, json_t **ret,
		     struct hc_error *err)
{
	json_error_t je;
	json_t *root;

	if (len > max)
		return hc_error_setk(err, -E2BIG, HC_EK_IMAGE,
				     "%s is too large (%zu bytes, at most %zu)", what, len, max);
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "invalid %s: %s at offset %d",
				     what, je.text, je.position);
	if (!json_is_object(root)) {
		json_decref(root);
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE, "invalid %s: not a JSON object",
				     what);
	}
	*ret = root;
	return 0;
}

int hc_oci_manifest_parse(const void *data, size_t len, const char *content_type,
			  struct hc_oci_manifest *ret, struct hc_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	char body_mt[128], ct[128] = "";
	json_t *sv, *manifests, *layers, *config;
	const char *mt;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = load_json(data, len, HC_OCI_MANIFEST_MAX, "manifest", &root, err)) < 0)
		return r;

	/* The transport's type without parameters ("; charset=utf-8"). */
	if (content_type) {
		size_t n = strcspn(content_type, "; \t");
		if (n < sizeof(ct)) {
			memcpy(ct, content_type, n);
			ct[n] = '\0';
		}
	}
	sv = json_object_get(root, "schemaVersion");
	if (!json_is_integer(sv))
		return bad(err, "missing %s", "schemaVersion");
	if (json_integer_value(sv) == 1 || hc_streq(ct, HC_DOCKER_MT_SCHEMA1) ||
	    hc_streq(ct, HC_DOCKER_MT_SCHEMA1_SIGNED))
		return hc_error_setk(err, -EPROTONOSUPPORT, HC_EK_IMAGE,
				     "unsupported manifest: Docker schema 1 (deprecated; push the "
				     "image again with a current client)");
	if (json_integer_value(sv) != 2)
		return bad(err, "schemaVersion %s is not 2", "");
	if ((r = get_str(root, "mediaType", body_mt, sizeof(body_mt), false, err)) < 0)
		return r;

	manifests = json_object_get(root, "manifests");
	layers = json_object_get(root, "layers");
	config = json_object_get(root, "config");
	if (manifests && (layers || config))
		return bad(err, "%sboth \"manifests\" and \"layers\"/\"config\" (ambiguous)", "");

	/* Which type: the body's mediaType, else the transport's, else the shape (OCI allows an
	 * absent mediaType). When both are known and are manifest types, they must agree. */
	if (body_mt[0]) {
		mt = body_mt;
		if ((hc_oci_media_type_is_manifest(ct) || hc_oci_media_type_is_index(ct)) &&
		    strcmp(ct, body_mt) != 0)
			return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
					     "invalid manifest: served as %s but declares %s", ct,
					     body_mt);
	} else if (hc_oci_media_type_is_manifest(ct) || hc_oci_media_type_is_index(ct)) {
		mt = ct;
	} else {
		mt = manifests ? HC_OCI_MT_INDEX : HC_OCI_MT_MANIFEST;
	}
	if (!hc_oci_media_type_is_manifest(mt) && !hc_oci_media_type_is_index(mt))
		return hc_error_setk(err, -EPROTONOSUPPORT, HC_EK_IMAGE,
				     "unsupported manifest media type '%.100s'", mt);
	snprintf(ret->media_type, sizeof(ret->media_type), "%s", mt);

	if (hc_oci_media_type_is_index(mt)) {
		ret->kind = HC_OCI_KIND_INDEX;
		if (!manifests)
			return bad(err, "index without %s", "\"manifests\"");
		if (layers || config)
			return bad(err, "index with %s", "\"layers\"");
		return parse_desc_array(manifests, "manifests", HC_OCI_INDEX_ENTRIES_MAX, true,
					&ret->manifests, &ret->n_manifests, err);
	}
	ret->kind = HC_OCI_KIND_MANIFEST;
	if (manifests)
		return bad(err, "manifest with %s", "\"manifests\"");
	if (!config)
		return bad(err, "manifest without %s", "\"config\"");
	if ((r = parse_desc(config, &ret->config, false, err)) < 0)
		return r;
	if (!layers)
		return bad(err, "manifest without %s", "\"layers\"");
	return parse_desc_array(layers, "layers", HC_OCI_LAYERS_MAX, false, &ret->layers,
				&ret->n_layers, err);
}

/* ---- platforms ---------------------------------------------------------------------------- */

/* containerd platforms.Normalize: the names uname and Debian use, mapped to OCI's (image-spec
 * image-index.md lists GOOS/GOARCH values). */
static void normalise(struct hc_oci_platform *p)
{
	static const struct {
		const char *from, *arch, *variant;
	} map[] = {
		{"x86_64", "amd64", NULL},    {"x86-64", "amd64", NULL}, {"aarch64", "arm64", NULL},
		{"armhf", "arm", "v7"},	      {"armel", "arm", "v6"},	 {"i386", "386", NULL},
		{"i686", "386", NULL},	      {"armv7l", "arm", "v7"},	 {"armv6l", "arm", "v6"},
		{"ppc64el", "ppc64le", NULL},
	};

	for (char *c = p->os; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
	for (char *c = p->arch; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
	for (size_t i = 0; i < HC_ARRAY_SIZE(map); i++) {
		if (strcmp(p->arch, map[i].from) == 0) {
			snprintf(p->arch, sizeof(p->arch), "%s", map[i].arch);
			if (map[i].variant && !p->variant[0])
				snprintf(p->variant, sizeof(p->variant), "%s", map[i].variant);
			break;
		}
	}
	/* arm64's only variant is v8, and arm's default is v7: compare them as such. */
	if (strcmp(p->arch, "arm64") == 0 && strcmp(p->variant, "v8") == 0)
		p->variant[0] = '\0';
	if (strcmp(p->arch, "arm") == 0 && !p->variant[0])
		snprintf(p->variant, sizeof(p->variant), "v7");
	if (strcmp(p->arch, "amd64") == 0 && strcmp(p->variant, "v1") == 0)
		p->variant[0] = '\0';
}

int hc_oci_platform_parse(const char *s, struct hc_oci_platform *ret, struct hc_error *err)
{
	struct hc_oci_platform p = {0};
	const char *a, *v;
	size_t n;

	if (!s || !(a = strchr(s, '/')))
		goto bad;
	v = strchr(a + 1, '/');
	n = (size_t)(a - s);
	if (n == 0 || n >= sizeof(p.os))
		goto bad;
	memcpy(p.os, s, n);
	n = v ? (size_t)(v - a - 1) : strlen(a + 1);
	if (n == 0 || n >= sizeof(p.arch))
		goto bad;
	memcpy(p.arch, a + 1, n);
	if (v) {
		n = strlen(v + 1);
		if (n == 0 || n >= sizeof(p.variant) || strchr(v + 1, '/'))
			goto bad;
		memcpy(p.variant, v + 1, n);
	}
	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '/' || *c == '_' || *c == '-' || *c == '.'))
			goto bad;
	normalise(&p);
	*ret = p;
	return 0;
bad:
	return hc_error_setk(
		err, -EINVAL, HC_EK_USAGE,
		"invalid platform '%.64s' (expected OS/ARCH[/VARIANT], e.g. linux/amd64)",
		s ? s : "");
}

void hc_oci_platform_host(struct hc_oci_platform *ret)
{
	struct utsname u;

	memset(ret, 0, sizeof(*ret));
	snprintf(ret->os, sizeof(ret->os), "linux");
	if (uname(&u) == 0)
		snprintf(ret->arch, sizeof(ret->arch), "%.31s", u.machine);
	else
		snprintf(ret->arch, sizeof(ret->arch), "amd64");
	normalise(ret);
}

void hc_oci_platform_format(const struct hc_oci_platform *p, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
}

int hc_oci_index_select(const struct hc_oci_manifest *index, const struct hc_oci_platform *p,
			const struct hc_oci_desc **ret, struct hc_error *err)
{
	const struct hc_oci_desc *any_variant = NULL;
	char want[128], avail[384] = "";
	size_t used = 0;

	if (index->kind != HC_OCI_KIND_INDEX)
		return hc_error_setk(err, -EINVAL, HC_EK_INTERNAL, "not an index");
		/* A nested index is followed like a manifest (the caller fetches it and selects
		 * again). */
#define USABLE(mt) (hc_oci_media_type_is_manifest(mt) || hc_oci_media_type_is_index(mt))
	if (index->n_manifests == 1 && !index->manifests[0].has_platform &&
	    USABLE(index->manifests[0].media_type)) {
		*ret = &index->manifests[0];
		return 0;
	}
	for (size_t i = 0; i < index->n_manifests; i++) {
		const struct hc_oci_desc *d = &index->manifests[i];
		struct hc_oci_platform c;
		if (!d->has_platform || !USABLE(d->media_type))
			continue;
		c = d->platform;
		normalise(&c);
		if (strcmp(c.os, p->os) != 0 || strcmp(c.arch, p->arch) != 0)
			continue;
		if (strcmp(c.variant, p->variant) == 0) {
			*ret = d;
			return 0;
		}
		/* No variant asked for: take a variant only when no exact entry exists. */
		if (!p->variant[0] && !any_variant)
			any_variant = d;
	}
	if (any_variant) {
		*ret = any_variant;
		return 0;
	}
	hc_oci_platform_format(p, want, sizeof(want));
	for (size_t i = 0; i < index->n_manifests && used < sizeof(avail) - 1; i++) {
		const struct hc_oci_desc *d = &index->manifests[i];
		char one[100];
		int k;
		if (!d->has_platform || strcmp(d->platform.os, "unknown") == 0 ||
		    !USABLE(d->media_type))
			continue;
		hc_oci_platform_format(&d->platform, one, sizeof(one));
		k = snprintf(avail + used, sizeof(avail) - used, "%s%s", used ? ", " : "", one);
		if (k < 0)
			break;
		used += (size_t)k;
	}
#undef USABLE
	return hc_error_setk(err, -ENOENT, HC_EK_IMAGE, "no image for platform %s (available: %s)",
			     want, avail[0] ? avail : "none");
}

/* ---- config ------------------------------------------------------------------------------- */

static int dup_str(json_t *v, const char *what, char **ret, struct hc_error *err)
{
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
				     "invalid image config: \"%s\" is not a string", what);
	if (json_string_length(v) == 0)
		return 0;
	*ret = strdup(json_string_value(v));
	return *ret ? 0 : hc_error_set(err, -ENOMEM, "out of memory");
}

static int dup_strv(json_t *v, const char *what, char ***ret, size_t *ret_n, struct hc_error *err)
{
	size_t n, bytes;
	char **vec;

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > 65536)
		return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
				     "invalid image config: \"%s\" is not an array of strings",
				     what);
	n = json_array_size(v);
	if (hc_mul_overflows(n + 1, sizeof(char *), &bytes) || !(vec = calloc(1, bytes)))
		return hc_error_set(err, -ENOMEM, "out of memory");
	*ret = vec;
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(v, i);
		if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s))
			return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
					     "invalid image config: \"%s\" holds a non-string",
					     what);
		if (!(vec[i] = strdup(json_string_value(s))))
			return hc_error_set(err, -ENOMEM, "out of memory");
		*ret_n = i + 1;
	}
	return 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void hc_oci_config_free(struct hc_oci_config *c)
{
	if (!c)
		return;
	free(c->created);
	strv_free(c->entrypoint, c->n_entrypoint);
	strv_free(c->cmd, c->n_cmd);
	strv_free(c->env, c->n_env);
	strv_free(c->diff_ids, c->n_diff_ids);
	free(c->workdir);
	free(c->user);
	memset(c, 0, sizeof(*c));
}

static int config_parse(const void *data, size_t len, struct hc_oci_config *ret,
			struct hc_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	json_t *cfg, *rootfs;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = load_json(data, len, HC_OCI_CONFIG_MAX, "image config", &root, err)) < 0)
		return r;
	if ((r = dup_str(json_object_get(root, "created"), "created", &ret->created, err)) < 0)
		return r;
	/* os and architecture are required by config.md, but old Docker images omit them. */
	if (json_is_string(json_object_get(root, "os")))
		snprintf(ret->platform.os, sizeof(ret->platform.os), "%s",
			 json_string_value(json_object_get(root, "os")));
	if (json_is_string(json_object_get(root, "architecture")))
		snprintf(ret->platform.arch, sizeof(ret->platform.arch), "%s",
			 json_string_value(json_object_get(root, "architecture")));
	if (json_is_string(json_object_get(root, "variant")))
		snprintf(ret->platform.variant, sizeof(ret->platform.variant), "%s",
			 json_string_value(json_object_get(root, "variant")));
	cfg = json_object_get(root, "config");
	if (cfg && !json_is_null(cfg)) {
		if (!json_is_object(cfg))
			return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
					     "invalid image config: \"config\" is not an object");
		if ((r = dup_strv(json_object_get(cfg, "Entrypoint"), "Entrypoint",
				  &ret->entrypoint, &ret->n_entrypoint, err)) < 0 ||
		    (r = dup_strv(json_object_get(cfg, "Cmd"), "Cmd", &ret->cmd, &ret->n_cmd,
				  err)) < 0 ||
		    (r = dup_strv(json_object_get(cfg, "Env"), "Env", &ret->env, &ret->n_env,
				  err)) < 0 ||
		    (r = dup_str(json_object_get(cfg, "WorkingDir"), "WorkingDir", &ret->workdir,
				 err)) < 0 ||
		    (r = dup_str(json_object_get(cfg, "User"), "User", &ret->user, err)) < 0)
			return r;
	}
	rootfs = json_object_get(root, "rootfs");
	if (rootfs) {
		if (!json_is_object(rootfs))
			return hc_error_setk(err, -EBADMSG, HC_EK_IMAGE,
					     "invalid image config: \"rootfs\" is not an object");
		if ((r = dup_strv(json_object_get(rootfs, "diff_ids"), "diff_ids", &ret->diff_ids,
				  &ret->n_diff_ids, err)) < 0)
			return r;
	}
	return 0;
}

int hc_oci_config_parse(const void *data, size_t len, struct hc_oci_config *ret,
			struct hc_error *err)
{
	int r = config_parse(data, len, ret, err);

	if (r < 0)
		hc_oci_config_free(ret);
	return r;
}
