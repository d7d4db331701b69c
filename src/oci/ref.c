/* SPDX-License-Identifier: MIT */
/*
 * Image reference parsing and normalisation, following github.com/distribution/reference
 * (regexp.go for the grammar, normalize.go for ParseNormalizedNamed / splitDockerDomain), which
 * is what docker and podman (containers/image) accept.
 */
#include <ctype.h>

#include "oci/digest.h"
#include "oci/ref.h"

/* A bound on the input before any work: the grammar's own limits are far below it. */
#define REF_INPUT_MAX 1024

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_hex_lower(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )* */
static bool path_component_valid(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || !is_lower_alnum(s[0]))
		return false;
	while (i < n) {
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == n)
			return true;
		/* separator */
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i == n || !is_lower_alnum(s[i]))
			return false;
	}
	return true;
}

/* domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9] */
static bool domain_component_valid(const char *s, size_t n)
{
	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* domain := host [ ":" port-number ]; host := domain-name | "[" ipv6 "]" */
static bool domain_valid(const char *s)
{
	size_t n = strlen(s), hostlen;
	const char *colon;

	if (n == 0)
		return false;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close == s + 1)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':')
				return false;
		colon = close[1] ? close + 1 : NULL;
		if (colon && *colon != ':')
			return false;
		hostlen = 0; /* checked */
	} else {
		colon = strchr(s, ':');
		hostlen = colon ? (size_t)(colon - s) : n;
		for (size_t i = 0, start = 0; i <= hostlen; i++) {
			if (i == hostlen || s[i] == '.') {
				if (!domain_component_valid(s + start, i - start))
					return false;
				start = i + 1;
			}
		}
	}
	if (colon) {
		const char *p = colon + 1;
		if (!*p)
			return false;
		for (; *p; p++)
			if (*p < '0' || *p > '9')
				return false;
	}
	return true;
}

/* tag := [\w][\w.-]{0,127} */
static bool tag_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > HC_OCI_TAG_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool word = is_alnum(c) || c == '_';
		if (!word && (i == 0 || (c != '.' && c != '-')))
			return false;
	}
	return true;
}

static int bad(struct hc_error *err, const char *s, const char *why)
{
	return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "invalid reference '%.300s': %s", s, why);
}

bool hc_oci_ref_has_domain(const char *s)
{
	const char *slash = strchr(s, '/');
	size_t dl;

	if (!slash)
		return false;
	dl = (size_t)(slash - s);
	if (memchr(s, '.', dl) || memchr(s, ':', dl) || (dl == 9 && memcmp(s, "localhost", 9) == 0))
		return true;
	for (size_t i = 0; i < dl; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return true;
	return false;
}

int hc_oci_ref_parse(const char *s, struct hc_oci_ref *ret, struct hc_error *err)
{
	struct hc_oci_ref r = {0};
	char buf[REF_INPUT_MAX + 1];
	char *rem, *at, *colon, *slash;
	size_t n;

	if (!s || !*s)
		return bad(err, "", "empty");
	n = strnlen(s, REF_INPUT_MAX + 1);
	if (n > REF_INPUT_MAX)
		return bad(err, s, "too long");
	memcpy(buf, s, n + 1);

	/* normalize.go: a bare 64-hex string is an image ID, not a name. */
	if (n == 64) {
		bool hex = true;
		for (size_t i = 0; i < n && hex; i++)
			hex = is_hex_lower(buf[i]);
		if (hex)
			return bad(err, s, "cannot specify 64-byte hexadecimal strings");
	}

	/* splitDockerDomain: the first component is a domain if it has '.' or ':', is
	 * "localhost", or is not all lower case. */
	slash = strchr(buf, '/');
	if (slash) {
		size_t dl = (size_t)(slash - buf);
		bool is_domain = memchr(buf, '.', dl) || memchr(buf, ':', dl) ||
				 (dl == 9 && memcmp(buf, "localhost", 9) == 0);
		for (size_t i = 0; i < dl && !is_domain; i++)
			if (buf[i] >= 'A' && buf[i] <= 'Z')
				is_domain = true;
		if (is_domain) {
			*slash = '\0';
			if (dl > HC_OCI_NAME_MAX)
				return bad(err, s, "name too long");
			memcpy(r.domain, buf, dl + 1);
			rem = slash + 1;
		} else {
			rem = buf;
		}
	} else {
		rem = buf;
	}
	if (!r.domain[0])
		strcpy(r.domain, HC_OCI_DOCKER_DOMAIN);
	else if (strcmp(r.domain, "index.docker.io") == 0)
		strcpy(r.domain, HC_OCI_DOCKER_DOMAIN);
	if (!domain_valid(r.domain))
		return bad(err, s, "invalid registry host");

	at = strchr(rem, '@');
	if (at) {
		*at = '\0';
		const char *d = at + 1;
		if (strncmp(d, "sha256:", 7) != 0) {
			if (!strchr(d, ':'))
				return bad(err, s, "invalid digest");
			return bad(err, s, "unsupported digest algorithm (only sha256)");
		}
		if (!hc_oci_digest_valid(d))
			return bad(err, s, "invalid sha256 digest (64 lower-case hex digits)");
		memcpy(r.digest, d, HC_OCI_DIGEST_LEN + 1);
	}
	colon = strchr(rem, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_valid(colon + 1))
			return bad(err, s, "invalid tag");
		strcpy(r.tag, colon + 1);
	}

	if (!*rem)
		return bad(err, s, "empty repository name");
	for (const char *p = rem; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			return bad(err, s, "repository name must be lowercase");
	/* Each path component, including a trailing or doubled '/'. */
	for (const char *p = rem;;) {
		const char *e = strchr(p, '/');
		size_t cl = e ? (size_t)(e - p) : strlen(p);
		if (!path_component_valid(p, cl))
			return bad(err, s, "invalid repository name");
		if (!e)
			break;
		p = e + 1;
	}
	if (strcmp(r.domain, HC_OCI_DOCKER_DOMAIN) == 0 && !strchr(rem, '/')) {
		if (strlen(rem) + 8 > HC_OCI_NAME_MAX)
			return bad(err, s, "name too long");
		snprintf(r.path, sizeof(r.path), "library/%s", rem);
	} else {
		if (strlen(rem) > HC_OCI_NAME_MAX)
			return bad(err, s, "name too long");
		strcpy(r.path, rem);
	}
	/* reference.go: NameTotalLengthMax applies to domain + "/" + path. */
	if (strlen(r.domain) + 1 + strlen(r.path) > HC_OCI_NAME_MAX)
		return bad(err, s, "name too long (more than 255 characters)");
	if (!r.tag[0] && !r.digest[0])
		strcpy(r.tag, "latest");
	*ret = r;
	return 0;
}

int hc_oci_ref_format_name(const struct hc_oci_ref *r, char *buf, size_t n)
{
	int k = snprintf(buf, n, "%s/%s", r->domain, r->path);
	return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : k;
}

int hc_oci_ref_format(const struct hc_oci_ref *r, char *buf, size_t n)
{
	int k = snprintf(buf, n, "%s/%s%s%s%s%s", r->domain, r->path, r->tag[0] ? ":" : "", r->tag,
			 r->digest[0] ? "@" : "", r->digest);
	return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : k;
}

const char *hc_oci_ref_api_host(const struct hc_oci_ref *r)
{
	return strcmp(r->domain, HC_OCI_DOCKER_DOMAIN) == 0 ? HC_OCI_DOCKER_API_HOST : r->domain;
}

const char *hc_oci_ref_manifest_ref(const struct hc_oci_ref *r)
{
	return r->digest[0] ? r->digest : r->tag;
}

bool hc_oci_domain_is_loopback(const char *domain)
{
	char host[HC_OCI_NAME_MAX + 1];
	const char *end;
	size_t n;

	if (domain[0] == '[') {
		end = strchr(domain, ']');
		if (!end)
			return false;
		return (size_t)(end - domain - 1) == 3 && memcmp(domain + 1, "::1", 3) == 0;
	}
	end = strchr(domain, ':');
	n = end ? (size_t)(end - domain) : strlen(domain);
	if (n >= sizeof(host))
		return false;
	memcpy(host, domain, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return true;
	/* 127.0.0.0/8, dotted quad only */
	unsigned a, b, c, d;
	char tail;
	if (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
	    c < 256 && d < 256)
		return true;
	return false;
}
