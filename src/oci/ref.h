/* SPDX-License-Identifier: MIT */
/*
 * Image references, with the grammar and normalisation docker and podman apply
 * (github.com/distribution/reference: reference.go, normalize.go):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component [ "/" path-component ]*
 *
 * The first component is a domain when it contains '.' or ':', is "localhost", or has an
 * upper-case letter; otherwise the registry is docker.io, and a single-component name there
 * gets "library/". Without a tag or digest the tag is "latest". Only sha256 digests are
 * accepted (the store is blobs/sha256).
 */
#pragma once

#include "core/error.h"

#define HC_OCI_DOCKER_DOMAIN "docker.io"
#define HC_OCI_DOCKER_API_HOST "registry-1.docker.io"
/* distribution/reference: NameTotalLengthMax */
#define HC_OCI_NAME_MAX 255
#define HC_OCI_TAG_MAX 128
/* "sha256:" + 64 hex + NUL */
#define HC_OCI_DIGEST_LEN 71

struct hc_oci_ref {
	char domain[HC_OCI_NAME_MAX + 1];   /* "docker.io", "127.0.0.1:5000", "[::1]:5000" */
	char path[HC_OCI_NAME_MAX + 1];	    /* "library/alpine" */
	char tag[HC_OCI_TAG_MAX + 1];	    /* "" when only a digest was given */
	char digest[HC_OCI_DIGEST_LEN + 1]; /* "sha256:<hex>" or "" */
};

/* Parses and normalises s. -EINVAL with a message naming what is wrong. */
int hc_oci_ref_parse(const char *s, struct hc_oci_ref *ret, struct hc_error *err) _must_check_;
/* Whether s names its registry (docker's splitDockerDomain: a first component with '.' or ':',
 * "localhost", or upper case); "alpine" and "test/bb:1" do not. */
bool hc_oci_ref_has_domain(const char *s);
/* The full normalised reference: "docker.io/library/alpine:3.20", "host:5000/a/b@sha256:…"
 * (tag and digest both when both were given). Returns the length, or -ENAMETOOLONG. */
int hc_oci_ref_format(const struct hc_oci_ref *r, char *buf, size_t n) _must_check_;
/* The repository without tag or digest: "docker.io/library/alpine". */
int hc_oci_ref_format_name(const struct hc_oci_ref *r, char *buf, size_t n) _must_check_;
/* The host the Distribution API is served from: registry-1.docker.io for docker.io. */
const char *hc_oci_ref_api_host(const struct hc_oci_ref *r);
/* What a manifest is fetched by: the digest when there is one, else the tag. */
const char *hc_oci_ref_manifest_ref(const struct hc_oci_ref *r);
/* True when the registry host (without port) is localhost or a loopback address
 * (127.0.0.0/8, ::1), where docker and podman allow plain HTTP. */
bool hc_oci_domain_is_loopback(const char *domain);
