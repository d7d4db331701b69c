/* SPDX-License-Identifier: MIT */
/* Fuzz target: manifest / index / image config parsing and platform selection. The first byte
 * picks the transport's content type, the rest is the document. */
#include <stdint.h>

#include "oci/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = { NULL, HC_OCI_MT_MANIFEST, HC_OCI_MT_INDEX,
					     HC_DOCKER_MT_MANIFEST, HC_DOCKER_MT_LIST };
	struct hc_oci_manifest m;
	struct hc_oci_config c;
	struct hc_oci_platform p;
	const struct hc_oci_desc *d;
	struct hc_error err = { 0 };
	const char *ct;

	if (size < 1)
		return 0;
	ct = types[data[0] % HC_ARRAY_SIZE(types)];
	if (hc_oci_manifest_parse(data + 1, size - 1, ct, &m, &err) == 0 &&
	    m.kind == HC_OCI_KIND_INDEX) {
		hc_oci_platform_host(&p);
		if (hc_oci_index_select(&m, &p, &d, &err) == 0 && !hc_oci_digest_valid(d->digest))
			abort();
		if (hc_oci_platform_parse("linux/arm/v7", &p, &err) == 0)
			if (hc_oci_index_select(&m, &p, &d, &err) == 0 && !d)
				abort();
	}
	hc_oci_manifest_free(&m);
	if (hc_oci_config_parse(data + 1, size - 1, &c, &err) == 0)
		hc_oci_config_free(&c);
	return 0;
}
