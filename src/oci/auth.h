/* SPDX-License-Identifier: MIT */
/*
 * Registry credentials and the token challenge.
 *
 * Credentials, first found wins:
 *  1. HOTCELL_REGISTRY_USER + HOTCELL_REGISTRY_PASSWORD (for whatever registry is pulled from);
 *  2. the "auths" of an auth file, looked up as containers-auth.json(5) describes: the file in
 *     $REGISTRY_AUTH_FILE when set; else $XDG_RUNTIME_DIR/containers/auth.json,
 *     ~/.config/containers/auth.json, ~/.docker/config.json in that order. Keys may be a
 *     registry ("quay.io"), a namespace or repository ("quay.io/team"), or a legacy URL
 *     ("https://index.docker.io/v1/"); the most specific match wins.
 * A "credHelpers" entry for the registry, or a "credsStore" with no inline entry, is -ENOTSUP
 * ("not supported") rather than a silent anonymous attempt.
 *
 * The challenge is RFC 7235 WWW-Authenticate with the parameters the Docker token
 * specification (distribution docs/spec/auth/token.md) uses: realm, service, scope, error.
 */
#pragma once

#include "core/error.h"
#include "oci/ref.h"

struct hc_oci_creds {
	bool set;
	char user[256];
	char password[1024];
	char source[256]; /* where they came from, for messages */
};

/* Finds credentials for ref. 0 with ret->set false when there are none. */
int hc_oci_auth_find(const struct hc_oci_ref *ref, struct hc_oci_creds *ret,
		     struct hc_error *err) _must_check_;
/* The same, reading only the given auth file (tests, REGISTRY_AUTH_FILE). Missing file: 0. */
int hc_oci_auth_find_in_file(const char *path, const struct hc_oci_ref *ref,
			     struct hc_oci_creds *ret, struct hc_error *err) _must_check_;

enum hc_oci_auth_scheme { HC_OCI_AUTH_NONE, HC_OCI_AUTH_BASIC, HC_OCI_AUTH_BEARER };

struct hc_oci_challenge {
	enum hc_oci_auth_scheme scheme;
	char realm[1024];
	char service[256];
	char scope[512];
	char error[64]; /* "insufficient_scope", "invalid_token", or "" */
};

/* Parses one WWW-Authenticate value. An unknown scheme is -EPROTONOSUPPORT. */
int hc_oci_auth_challenge_parse(const char *value, struct hc_oci_challenge *ret,
				struct hc_error *err) _must_check_;
/* "Basic <base64(user:password)>" into buf. */
int hc_oci_auth_basic_header(const struct hc_oci_creds *c, char *buf, size_t n) _must_check_;
/* Extracts the token from a token-server reply ({"token": ...} or {"access_token": ...}). */
int hc_oci_auth_token_parse(const void *data, size_t len, char **ret,
			    struct hc_error *err) _must_check_;
