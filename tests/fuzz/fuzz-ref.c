/* SPDX-License-Identifier: MIT */
/* Fuzz target: image reference parsing. A parsed reference must format back to a string that
 * parses to the same thing (normalisation is a fixed point). */
#include <stdint.h>

#include "oci/ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[2048], out[1024], out2[1024];
	struct hc_oci_ref r, r2;
	struct hc_error err = { 0 };

	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (hc_oci_ref_parse(in, &r, &err) < 0)
		return 0;
	if (hc_oci_ref_format(&r, out, sizeof(out)) < 0)
		abort();
	if (hc_oci_ref_parse(out, &r2, &err) < 0)
		abort();
	if (hc_oci_ref_format(&r2, out2, sizeof(out2)) < 0 || strcmp(out, out2) != 0)
		abort();
	(void)hc_oci_domain_is_loopback(r.domain);
	return 0;
}
