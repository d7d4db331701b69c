/* SPDX-License-Identifier: MIT */
/*
 * What a VMM sends back, treated as untrusted: the hybrid-vsock acknowledgement line
 * ("OK <port>\n", src/vmm/hvsock.c) and the error text extracted from a REST response body
 * (Firecracker's fault_message, Cloud Hypervisor's plain text; src/vmm/rest.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/hvsock.h"
#include "vmm/rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), text[128];
	unsigned port;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (size <= HC_HVSOCK_ACK_MAX + 1 && hc_hvsock_parse_ack(s, size, &port) == 0 &&
	    (size < 4 || memcmp(s, "OK ", 3) != 0))
		abort(); /* only "OK <digits>" may parse */
	hc_rest_error_text(s, text, sizeof(text));
	if (strlen(text) >= sizeof(text))
		abort();
	for (const char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20)
			abort(); /* the message stays one line */
	free(s);
	return 0;
}
