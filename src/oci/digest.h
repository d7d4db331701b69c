/* SPDX-License-Identifier: MIT */
/*
 * Content digests as the OCI image spec defines them (image-spec descriptor.md, "Digests"):
 * "sha256:" followed by 64 lowercase hex characters. Only sha256 is accepted: it is what every
 * registry and every image we read uses, and a single algorithm keeps blob paths unambiguous.
 */
#pragma once

#include "core/error.h"

/* "sha256:" + 64 hex + NUL */
#define HC_DIGEST_SIZE 72
#define HC_DIGEST_PREFIX "sha256:"
#define HC_DIGEST_HEX_LEN 64

/* True when d is exactly "sha256:<64 lowercase hex>". */
bool hc_oci_digest_valid(const char *d);
/* The 64-hex part of a valid digest, or NULL. */
const char *hc_oci_digest_hex(const char *d);

/* An incremental sha256 (OpenSSL EVP). */
struct hc_oci_hasher {
	void *ctx; /* EVP_MD_CTX */
	uint64_t n;
};

int hc_oci_hasher_init(struct hc_oci_hasher *h, struct hc_error *err) _must_check_;
int hc_oci_hasher_update(struct hc_oci_hasher *h, const void *data, size_t n,
			 struct hc_error *err) _must_check_;
/* Writes "sha256:<hex>" into ret (HC_DIGEST_SIZE bytes). The hasher can then only be freed. */
int hc_oci_hasher_final(struct hc_oci_hasher *h, char ret[HC_DIGEST_SIZE],
			struct hc_error *err) _must_check_;
void hc_oci_hasher_free(struct hc_oci_hasher *h);

/* The digest of a buffer. */
int hc_oci_digest_buf(const void *data, size_t n, char ret[HC_DIGEST_SIZE],
		      struct hc_error *err) _must_check_;
/* The digest of everything readable from fd (from its current offset); ret_size may be NULL. */
int hc_oci_digest_fd(int fd, char ret[HC_DIGEST_SIZE], uint64_t *ret_size,
		     struct hc_error *err) _must_check_;
