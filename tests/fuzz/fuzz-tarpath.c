/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the tar entry name sanitizer (src/oci/unpack.c). Whatever it accepts must be
 * a plain relative path: no "..", "." or empty component, no leading or trailing "/", within
 * the bounds; and sanitizing the result again must give the same result.
 */
#include <stdint.h>

#include "oci/unpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[8192], out[HC_OCI_UNPACK_MAX_NAME + 1], again[HC_OCI_UNPACK_MAX_NAME + 1];
	size_t len, depth = 0;
	const char *c;

	if (size >= sizeof(in))
		size = sizeof(in) - 1;
	memcpy(in, data, size);
	in[size] = 0; /* tar names are C strings to us: the NUL ends them */
	if (hc_oci_unpack_sanitize_path(in, out, sizeof(out)) < 0)
		return 0;
	len = strlen(out);
	if (len > HC_OCI_UNPACK_MAX_NAME)
		__builtin_trap();
	if (len == 0)
		return 0;
	if (out[0] == '/' || out[len - 1] == '/')
		__builtin_trap();
	for (c = out;;) {
		const char *e = strchr(c, '/');
		size_t cl = e ? (size_t)(e - c) : strlen(c);
		if (cl == 0 || cl > 255 || (cl == 1 && c[0] == '.') ||
		    (cl == 2 && c[0] == '.' && c[1] == '.'))
			__builtin_trap();
		depth++;
		if (!e)
			break;
		c = e + 1;
	}
	if (depth > HC_OCI_UNPACK_MAX_DEPTH)
		__builtin_trap();
	if (hc_oci_unpack_sanitize_path(out, again, sizeof(again)) != 0 || strcmp(out, again) != 0)
		__builtin_trap();
	return 0;
}
