/* SPDX-License-Identifier: MIT */
#include <openssl/evp.h>

#include "oci/digest.h"

bool hc_oci_digest_valid(const char *d)
{
	if (!d || strncmp(d, HC_DIGEST_PREFIX, strlen(HC_DIGEST_PREFIX)) != 0)
		return false;
	d += strlen(HC_DIGEST_PREFIX);
	for (size_t i = 0; i < HC_DIGEST_HEX_LEN; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			return false;
	return d[HC_DIGEST_HEX_LEN] == 0;
}

const char *hc_oci_digest_hex(const char *d)
{
	return hc_oci_digest_valid(d) ? d + strlen(HC_DIGEST_PREFIX) : NULL;
}

int hc_oci_hasher_init(struct hc_oci_hasher *h, struct hc_error *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	h->ctx = NULL;
	h->n = 0;
	if (!ctx)
		return hc_error_set(err, -ENOMEM, "sha256: out of memory");
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return hc_error_set(err, -EIO, "sha256: EVP_DigestInit_ex failed");
	}
	h->ctx = ctx;
	return 0;
}

int hc_oci_hasher_update(struct hc_oci_hasher *h, const void *data, size_t n, struct hc_error *err)
{
	if (!h->ctx)
		return hc_error_set(err, -EINVAL, "sha256: hasher not initialised");
	if (n == 0)
		return 0;
	if (EVP_DigestUpdate(h->ctx, data, n) != 1)
		return hc_error_set(err, -EIO, "sha256: EVP_DigestUpdate failed");
	h->n += n;
	return 0;
}

int hc_oci_hasher_final(struct hc_oci_hasher *h, char ret[HC_DIGEST_SIZE], struct hc_error *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!h->ctx)
		return hc_error_set(err, -EINVAL, "sha256: hasher not initialised");
	if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len != 32)
		return hc_error_set(err, -EIO, "sha256: EVP_DigestFinal_ex failed");
	memcpy(ret, HC_DIGEST_PREFIX, strlen(HC_DIGEST_PREFIX));
	char *p = ret + strlen(HC_DIGEST_PREFIX);
	for (unsigned i = 0; i < len; i++) {
		*p++ = hex[md[i] >> 4];
		*p++ = hex[md[i] & 15];
	}
	*p = 0;
	return 0;
}

void hc_oci_hasher_free(struct hc_oci_hasher *h)
{
	if (h && h->ctx) {
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
	}
}

int hc_oci_digest_buf(const void *data, size_t n, char ret[HC_DIGEST_SIZE], struct hc_error *err)
{
	struct hc_oci_hasher h;
	int r;

	r = hc_oci_hasher_init(&h, err);
	if (r < 0)
		return r;
	r = hc_oci_hasher_update(&h, data, n, err);
	if (r >= 0)
		r = hc_oci_hasher_final(&h, ret, err);
	hc_oci_hasher_free(&h);
	return r;
}

int hc_oci_digest_fd(int fd, char ret[HC_DIGEST_SIZE], uint64_t *ret_size, struct hc_error *err)
{
	struct hc_oci_hasher h;
	char buf[65536];
	int r;

	r = hc_oci_hasher_init(&h, err);
	if (r < 0)
		return r;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = hc_error_errno(err, -errno, "read");
			break;
		}
		if (n == 0) {
			r = hc_oci_hasher_final(&h, ret, err);
			if (r >= 0 && ret_size)
				*ret_size = h.n;
			break;
		}
		r = hc_oci_hasher_update(&h, buf, (size_t)n, err);
		if (r < 0)
			break;
	}
	hc_oci_hasher_free(&h);
	return r;
}
