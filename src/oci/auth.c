/* SPDX-License-Identifier: MIT */
/*
 * Credentials (containers-auth.json(5), docker config.json) and the WWW-Authenticate challenge
 * (RFC 7235 §4.1, distribution docs/spec/auth/token.md). The token request itself goes through
 * the registry client (registry.c), which owns the HTTP connection.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <pwd.h>

#include "core/path.h"
#include "oci/auth.h"

/* Auth files hold a few entries; anything this large is not one. */
#define AUTH_FILE_MAX (1u << 20)
#define TOKEN_MAX (64u << 10)

static int creds_from_env(struct hc_oci_creds *ret, struct hc_error *err)
{
	const char *u = getenv("HOTCELL_REGISTRY_USER");
	const char *p = getenv("HOTCELL_REGISTRY_PASSWORD");

	if (!u && !p)
		return 0;
	if (!u || !p || !*u)
		return hc_error_setk(
			err, -EINVAL, HC_EK_USAGE,
			"set both HOTCELL_REGISTRY_USER and HOTCELL_REGISTRY_PASSWORD");
	if (strlen(u) >= sizeof(ret->user) || strlen(p) >= sizeof(ret->password))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "registry credentials too long");
	strcpy(ret->user, u);
	strcpy(ret->password, p);
	snprintf(ret->source, sizeof(ret->source), "HOTCELL_REGISTRY_USER");
	ret->set = true;
	return 0;
}

/* containers/image pkg/docker/config normalizeAuthFileKey: a key with a scheme is a legacy
 * docker URL, reduced to its host; Docker Hub's aliases become docker.io. */
static void normalise_key(const char *key, char *buf, size_t n)
{
	bool had_scheme = false;

	if (hc_startswith(key, "https://")) {
		key += 8;
		had_scheme = true;
	} else if (hc_startswith(key, "http://")) {
		key += 7;
		had_scheme = true;
	}
	snprintf(buf, n, "%s", key);
	if (had_scheme) {
		char *slash = strchr(buf, '/');
		if (slash)
			*slash = '\0';
	}
	if (strcmp(buf, "index.docker.io") == 0 || strcmp(buf, "registry-1.docker.io") == 0)
		snprintf(buf, n, "docker.io");
}

/* How specific a key is for this repository: the length of what it matches, 0 if none. Keys
 * match the registry, or the repository path at a '/' boundary ("quay.io/team" matches
 * "quay.io/team/tool"). */
static size_t key_match(const char *nkey, const char *repo)
{
	size_t k = strlen(nkey);

	if (strncmp(nkey, repo, k) != 0)
		return 0;
	if (repo[k] != '\0' && repo[k] != '/')
		return 0;
	return k;
}

static int decode_auth(const char *b64, const char *path, struct hc_oci_creds *ret,
		       struct hc_error *err)
{
	size_t n = strlen(b64), pad = 0;
	_cleanup_free_ unsigned char *out = NULL;
	int k;
	char *colon;

	if (n == 0 || n % 4 != 0 || n > 8192)
		goto bad;
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return hc_error_set(err, -ENOMEM, "out of memory");
	k = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
	if (k < 0)
		goto bad;
	if (b64[n - 1] == '=')
		pad++;
	if (b64[n - 2] == '=')
		pad++;
	k -= (int)pad;
	out[k] = '\0';
	if (memchr(out, '\0', (size_t)k))
		goto bad;
	colon = strchr((char *)out, ':');
	if (!colon || colon == (char *)out)
		goto bad;
	*colon = '\0';
	if (strlen((char *)out) >= sizeof(ret->user) || strlen(colon + 1) >= sizeof(ret->password))
		goto bad;
	strcpy(ret->user, (char *)out);
	strcpy(ret->password, colon + 1);
	snprintf(ret->source, sizeof(ret->source), "%s", path);
	ret->set = true;
	explicit_bzero(out, (size_t)k);
	return 0;
bad:
	return hc_error_setk(err, -EBADMSG, HC_EK_REGISTRY,
			     "%s: invalid \"auth\" entry (expected base64 of user:password)", path);
}

/* 0: nothing here for ref (ret untouched); 1: found (ret set). */
static int lookup_file(const char *path, const struct hc_oci_ref *ref, struct hc_oci_creds *ret,
		       struct hc_error *err)
{
	_cleanup_free_ char *data = NULL;
	json_t *root, *auths, *helpers, *store, *v, *best = NULL;
	char repo[HC_OCI_NAME_MAX * 2 + 2], nkey[512];
	const char *key;
	size_t len, best_len = 0;
	int r;

	r = hc_path_read_file(path, AUTH_FILE_MAX, &data, &len, err);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return hc_error_prefix(err, "reading auth file");
	root = json_loadb(data, len, 0, NULL);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		return hc_error_setk(err, -EBADMSG, HC_EK_REGISTRY, "%s: not a valid auth file",
				     path);
	}
	if (hc_oci_ref_format_name(ref, repo, sizeof(repo)) < 0) {
		json_decref(root);
		return hc_error_set(err, -ENAMETOOLONG, "name too long");
	}

	helpers = json_object_get(root, "credHelpers");
	if (json_is_object(helpers)) {
		json_object_foreach(helpers, key, v)
		{
			normalise_key(key, nkey, sizeof(nkey));
			if (key_match(nkey, repo)) {
				r = hc_error_setk(
					err, -ENOTSUP, HC_EK_REGISTRY,
					"%s: credential helpers (\"credHelpers\" for %s) are "
					"not supported; set HOTCELL_REGISTRY_USER and "
					"HOTCELL_REGISTRY_PASSWORD instead",
					path, ref->domain);
				json_decref(root);
				return r;
			}
		}
	}
	auths = json_object_get(root, "auths");
	if (json_is_object(auths)) {
		json_object_foreach(auths, key, v)
		{
			size_t m;
			normalise_key(key, nkey, sizeof(nkey));
			m = key_match(nkey, repo);
			if (m > best_len && json_is_object(v)) {
				best = v;
				best_len = m;
			}
		}
	}
	if (best) {
		json_t *a = json_object_get(best, "auth");
		if (json_is_string(a) && json_string_length(a) > 0) {
			r = decode_auth(json_string_value(a), path, ret, err);
			json_decref(root);
			return r < 0 ? r : 1;
		}
		if (json_object_get(best, "identitytoken")) {
			r = hc_error_setk(
				err, -ENOTSUP, HC_EK_REGISTRY,
				"%s: identity tokens (OAuth refresh tokens) for %s are not "
				"supported; use a password or access token",
				path, ref->domain);
			json_decref(root);
			return r;
		}
	}
	/* docker: with a credsStore, auths entries are empty and the secret lives in the store. */
	store = json_object_get(root, "credsStore");
	if (json_is_string(store) && json_string_length(store) > 0) {
		r = hc_error_setk(
			err, -ENOTSUP, HC_EK_REGISTRY,
			"%s: credential stores (\"credsStore\": \"%.64s\") are not supported; "
			"set HOTCELL_REGISTRY_USER and HOTCELL_REGISTRY_PASSWORD instead",
			path, json_string_value(store));
		json_decref(root);
		return r;
	}
	json_decref(root);
	return 0;
}

int hc_oci_auth_find_in_file(const char *path, const struct hc_oci_ref *ref,
			     struct hc_oci_creds *ret, struct hc_error *err)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	r = lookup_file(path, ref, ret, err);
	return r < 0 ? r : 0;
}

int hc_oci_auth_find(const struct hc_oci_ref *ref, struct hc_oci_creds *ret, struct hc_error *err)
{
	char paths[3][HC_PATH_MAX];
	size_t n = 0;
	const char *e, *home;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = creds_from_env(ret, err);
	if (r < 0 || ret->set)
		return r;

	e = getenv("REGISTRY_AUTH_FILE");
	if (e && *e) {
		snprintf(paths[n++], HC_PATH_MAX, "%s", e);
	} else {
		home = getenv("HOME");
		if (!home || !*home) {
			struct passwd *pw = getpwuid(getuid());
			home = pw ? pw->pw_dir : NULL;
		}
		e = getenv("XDG_RUNTIME_DIR");
		if (e && *e)
			snprintf(paths[n++], HC_PATH_MAX, "%s/containers/auth.json", e);
		if (home) {
			e = getenv("XDG_CONFIG_HOME");
			if (e && *e)
				snprintf(paths[n++], HC_PATH_MAX, "%s/containers/auth.json", e);
			else
				snprintf(paths[n++], HC_PATH_MAX, "%s/.config/containers/auth.json",
					 home);
			snprintf(paths[n++], HC_PATH_MAX, "%s/.docker/config.json", home);
		}
	}
	for (size_t i = 0; i < n; i++) {
		r = lookup_file(paths[i], ref, ret, err);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	return 0;
}

/* ---- challenge ---------------------------------------------------------------------------- */

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!#$%&'*+-.^_`|~", c);
}

int hc_oci_auth_challenge_parse(const char *value, struct hc_oci_challenge *ret,
				struct hc_error *err)
{
	const char *p = value;
	size_t n;

	memset(ret, 0, sizeof(*ret));
	while (*p == ' ' || *p == '\t')
		p++;
	n = 0;
	while (p[n] && is_tchar(p[n]))
		n++;
	if (n == 6 && strncasecmp(p, "bearer", 6) == 0)
		ret->scheme = HC_OCI_AUTH_BEARER;
	else if (n == 5 && strncasecmp(p, "basic", 5) == 0)
		ret->scheme = HC_OCI_AUTH_BASIC;
	else
		return hc_error_setk(err, -EPROTONOSUPPORT, HC_EK_REGISTRY,
				     "unsupported authentication scheme '%.*s'",
				     (int)(n > 32 ? 32 : n), p);
	p += n;
	/* auth-param = token BWS "=" BWS ( token / quoted-string ), comma separated */
	for (;;) {
		char key[32], val[1024];
		size_t kl = 0, vl = 0;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		while (*p && is_tchar(*p)) {
			if (kl + 1 >= sizeof(key))
				goto bad;
			key[kl++] = *p++;
		}
		key[kl] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (kl == 0 || *p != '=')
			goto bad;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				if (vl + 1 >= sizeof(val))
					goto bad;
				val[vl++] = *p++;
			}
			if (*p != '"')
				goto bad;
			p++;
		} else {
			while (*p && is_tchar(*p) && *p != ',') {
				if (vl + 1 >= sizeof(val))
					goto bad;
				val[vl++] = *p++;
			}
		}
		val[vl] = '\0';
		if (strcasecmp(key, "realm") == 0)
			snprintf(ret->realm, sizeof(ret->realm), "%s", val);
		else if (strcasecmp(key, "service") == 0 && vl < sizeof(ret->service))
			snprintf(ret->service, sizeof(ret->service), "%s", val);
		else if (strcasecmp(key, "scope") == 0 && vl < sizeof(ret->scope))
			snprintf(ret->scope, sizeof(ret->scope), "%s", val);
		else if (strcasecmp(key, "error") == 0)
			snprintf(ret->error, sizeof(ret->error), "%.63s", val);
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p && *p != ',')
			goto bad;
	}
	if (ret->scheme == HC_OCI_AUTH_BEARER && !ret->realm[0])
		return hc_error_setk(err, -EBADMSG, HC_EK_REGISTRY,
				     "bearer challenge without a realm");
	return 0;
bad:
	return hc_error_setk(err, -EBADMSG, HC_EK_REGISTRY,
			     "malformed WWW-Authenticate header: '%.100s'", value);
}

int hc_oci_auth_basic_header(const struct hc_oci_creds *c, char *buf, size_t n)
{
	char plain[sizeof(c->user) + sizeof(c->password) + 2];
	int k = snprintf(plain, sizeof(plain), "%s:%s", c->user, c->password);
	size_t need = 6 + 4 * (((size_t)k + 2) / 3) + 1;

	if (k < 0 || need > n)
		return -ENAMETOOLONG;
	memcpy(buf, "Basic ", 6);
	EVP_EncodeBlock((unsigned char *)buf + 6, (const unsigned char *)plain, k);
	explicit_bzero(plain, sizeof(plain));
	return 0;
}

int hc_oci_auth_token_parse(const void *data, size_t len, char **ret, struct hc_error *err)
{
	json_t *root = json_loadb(data, len, 0, NULL), *t;
	int r = 0;

	if (!root || !json_is_object(root)) {
		json_decref(root);
		return hc_error_setk(err, -EBADMSG, HC_EK_REGISTRY, "token server: invalid reply");
	}
	/* token.md: "token"; OAuth2 servers say "access_token"; either is accepted. */
	t = json_object_get(root, "token");
	if (!json_is_string(t) || json_string_length(t) == 0)
		t = json_object_get(root, "access_token");
	if (!json_is_string(t) || json_string_length(t) == 0)
		r = hc_error_setk(err, -EBADMSG, HC_EK_REGISTRY, "token server: no token in reply");
	else if (json_string_length(t) > TOKEN_MAX)
		r = hc_error_setk(err, -E2BIG, HC_EK_REGISTRY, "token server: token too large");
	else {
		/* The token goes into an HTTP header: no control characters. */
		for (const char *c = json_string_value(t); *c && r == 0; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				r = hc_error_setk(err, -EBADMSG, HC_EK_REGISTRY,
						  "token server: token holds control characters");
		if (r == 0 && !(*ret = strdup(json_string_value(t))))
			r = hc_error_set(err, -ENOMEM, "out of memory");
	}
	json_decref(root);
	return r;
}
