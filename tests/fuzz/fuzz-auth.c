/* SPDX-License-Identifier: MIT */
/* Fuzz target: what a registry or token server sends that the auth code parses: the
 * WWW-Authenticate challenge and the token reply. */
#include <stdint.h>
#include <stdlib.h>

#include "oci/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hc_oci_challenge c;
	struct hc_error err = { 0 };
	char in[4096], *token = NULL;

	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (hc_oci_auth_challenge_parse(in, &c, &err) == 0 &&
	    (strnlen(c.realm, sizeof(c.realm)) == sizeof(c.realm) ||
	     strnlen(c.scope, sizeof(c.scope)) == sizeof(c.scope)))
		abort();
	if (hc_oci_auth_token_parse(data, size, &token, &err) == 0) {
		for (const char *p = token; *p; p++)
			if ((unsigned char)*p < 0x20)
				abort();
		free(token);
	}
	return 0;
}
