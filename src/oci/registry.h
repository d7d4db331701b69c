/* SPDX-License-Identifier: MIT */
/*
 * A client for one repository of an OCI Distribution API v2 registry (OCI distribution-spec
 * v1.1 "Pull"; Docker's token auth, distribution docs/spec/auth/token.md), over libcurl.
 *
 * Transport rules: TLS is always verified, except with --insecure. Plain HTTP only for a
 * loopback registry (localhost, 127.0.0.0/8, ::1) or one named by --insecure /
 * HOTCELL_INSECURE_REGISTRIES (comma-separated host[:port]); for those HTTPS is tried first,
 * as docker and podman do, except on loopback, where HTTP goes first (TLS there protects
 * nothing and its setup costs more than the rest of a cached pull). Redirects (blob storage) are
 * followed; libcurl drops the Authorization header when a redirect leaves the registry's host. 429
 * Too Many Requests is retried after its Retry-After, at most 3 times and never more than 60 s at
 * once. Every failure is one line naming the registry, the repository and what was asked for.
 */
#pragma once

#include "core/error.h"
#include "oci/auth.h"
#include "oci/ref.h"

struct hc_oci_registry;

/* Resolves credentials and checks the API endpoint (GET /v2/), authenticating as the
 * challenge asks. insecure: plain HTTP allowed and TLS unverified for this registry.
 * cancel_fd (>= 0, core/cancel.h): readable -> every exchange of this handle (and any wait for
 * a Retry-After) stops within a second with -ECANCELED.
 *
 * Every transfer must average HOTCELL_PULL_MIN_RATE bytes/s (default 1024; 0: no check) over
 * each HOTCELL_PULL_RATE_WINDOW seconds (default 30) from its start, or it is abandoned with
 * -ETIMEDOUT naming what it fetched, and not retried. */
int hc_oci_registry_open(const struct hc_oci_ref *ref, bool insecure, int cancel_fd,
			 struct hc_oci_registry **ret, struct hc_error *err) _must_check_;
void hc_oci_registry_close(struct hc_oci_registry *reg);

/* "https://host" or "http://host", once open. */
const char *hc_oci_registry_base_url(const struct hc_oci_registry *reg);
/* True when HOTCELL_INSECURE_REGISTRIES names domain. */
bool hc_oci_registry_insecure_env(const char *domain);

/*
 * GET /v2/<name>/manifests/<reference> with every manifest type in Accept. The body (at most
 * HC_OCI_MANIFEST_MAX, NUL-terminated) is verified before it is returned: against reference when
 * that is a digest, else against the Docker-Content-Digest header when the registry sends one.
 * ret_digest (HC_DIGEST_SIZE) receives the body's digest, ret_type (128 bytes) the
 * Content-Type without parameters.
 */
int hc_oci_registry_get_manifest(struct hc_oci_registry *reg, const char *reference,
				 char **ret_body, size_t *ret_len, char *ret_type, char *ret_digest,
				 struct hc_error *err) _must_check_;

/* One blob to fetch, streamed into a sink the caller provides. begin is called before the
 * first byte (and again after a retry restarted the transfer: abort was called in between);
 * done after the last byte, where the sink verifies and keeps it. */
struct hc_oci_blob_fetch {
	const char *digest;
	uint64_t size; /* from the descriptor */
	int (*begin)(void *userdata, struct hc_error *err);
	int (*write)(void *userdata, const void *data, size_t n, struct hc_error *err);
	int (*done)(void *userdata, struct hc_error *err);
	void (*abort)(void *userdata);
	void *userdata;
};

/* GET /v2/<name>/blobs/<digest> for each job, up to `parallel` at once (curl multi). Stops at
 * the first failure: every other transfer is aborted (its sink's abort called). */
int hc_oci_registry_fetch_blobs(struct hc_oci_registry *reg, struct hc_oci_blob_fetch *jobs,
				size_t n, unsigned parallel, struct hc_error *err) _must_check_;
