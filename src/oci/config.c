/* SPDX-License-Identifier: MIT */
/* Image config parsing (image-spec config.md, "Properties"). */
#include <jansson.h>

#include "core/path.h"
#include "oci/config.h"

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* A JSON string without embedded NULs, copied; -EINVAL otherwise. */
static int dup_string(json_t *j, const char *field, char **ret, struct hc_error *err)
{
	const char *s;

	if (!json_is_string(j))
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
				     "image config: %s is not a string", field);
	s = json_string_value(j);
	if (strlen(s) != json_string_length(j))
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
				     "image config: %s contains a NUL character", field);
	*ret = strdup(s);
	if (!*ret)
		return hc_error_set(err, -ENOMEM, "out of memory");
	return 0;
}

/* An optional string field: absent, null and "" all give NULL. */
static int opt_string(json_t *obj, const char *key, const char *field, char **ret,
		      struct hc_error *err)
{
	json_t *j = obj ? json_object_get(obj, key) : NULL;

	*ret = NULL;
	if (!j || json_is_null(j))
		return 0;
	if (json_is_string(j) && json_string_length(j) == 0)
		return 0;
	return dup_string(j, field, ret, err);
}

static int opt_strv(json_t *obj, const char *key, char ***ret, size_t *ret_n,
		    struct hc_error *err)
{
	json_t *j = obj ? json_object_get(obj, key) : NULL;
	char **v;
	size_t n, bytes;

	*ret = NULL;
	*ret_n = 0;
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_array(j))
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
				     "image config: %s is not an array of strings", key);
	n = json_array_size(j);
	if (n > HC_OCI_CONFIG_MAX_ITEMS)
		return hc_error_setk(err, -E2BIG, HC_EK_IMAGE,
				     "image config: %s has more than %d entries", key,
				     HC_OCI_CONFIG_MAX_ITEMS);
	if (hc_mul_overflows(n + 1, sizeof(char *), &bytes))
		return hc_error_set(err, -ENOMEM, "out of memory");
	v = calloc(1, bytes);
	if (!v)
		return hc_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char field[64];
		int r;

		snprintf(field, sizeof(field), "%s[%zu]", key, i);
		r = dup_string(json_array_get(j, i), field, &v[i], err);
		if (r < 0) {
			free_strv(v);
			return r;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int hc_oci_config_parse(const char *json, size_t len, struct hc_oci_config *ret,
			struct hc_error *err)
{
	struct hc_oci_config c = { 0 };
	json_error_t jerr;
	json_t *root, *cfg;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (len > HC_OCI_CONFIG_JSON_MAX)
		return hc_error_setk(err, -E2BIG, HC_EK_IMAGE,
				     "image config is larger than %u bytes", HC_OCI_CONFIG_JSON_MAX);
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE, "image config: invalid JSON: %s",
				     jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE, "image config is not an object");
	}
	/* "config" is optional (image-spec: "This field can be null"). */
	cfg = json_object_get(root, "config");
	if (cfg && json_is_null(cfg))
		cfg = NULL;
	if (cfg && !json_is_object(cfg)) {
		json_decref(root);
		return hc_error_setk(err, -EINVAL, HC_EK_IMAGE,
				     "image config: \"config\" is not an object");
	}
	if ((r = opt_strv(cfg, "Entrypoint", &c.entrypoint, &c.n_entrypoint, err)) < 0 ||
	    (r = opt_strv(cfg, "Cmd", &c.cmd, &c.n_cmd, err)) < 0 ||
	    (r = opt_strv(cfg, "Env", &c.env, &c.n_env, err)) < 0 ||
	    (r = opt_string(cfg, "WorkingDir", "WorkingDir", &c.workdir, err)) < 0 ||
	    (r = opt_string(cfg, "User", "User", &c.user, err)) < 0 ||
	    (r = opt_string(cfg, "StopSignal", "StopSignal", &c.stop_signal, err)) < 0 ||
	    (r = opt_string(root, "created", "created", &c.created, err)) < 0 ||
	    (r = opt_string(root, "os", "os", &c.os, err)) < 0 ||
	    (r = opt_string(root, "architecture", "architecture", &c.architecture, err)) < 0) {
		json_decref(root);
		hc_oci_config_free(&c);
		return r;
	}
	json_decref(root);
	*ret = c;
	return 0;
}

int hc_oci_config_load(const char *path, struct hc_oci_config *ret, struct hc_error *err)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = hc_path_read_file(path, HC_OCI_CONFIG_JSON_MAX, &data, &len, err);
	if (r < 0)
		return r;
	r = hc_oci_config_parse(data, len, ret, err);
	if (r < 0)
		return hc_error_prefix(err, "%s", path);
	return 0;
}

void hc_oci_config_free(struct hc_oci_config *c)
{
	if (!c)
		return;
	free_strv(c->entrypoint);
	free_strv(c->cmd);
	free_strv(c->env);
	free(c->workdir);
	free(c->user);
	free(c->stop_signal);
	free(c->created);
	free(c->os);
	free(c->architecture);
	memset(c, 0, sizeof(*c));
}
