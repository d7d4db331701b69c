/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the control-socket parser of the VM supervisor (lib/pvm.h): a client is
 * untrusted, so its byte stream goes through hc_pvm_ctl_parse frame by frame and every
 * REQUEST through hc_pvm_ctl_request. A frame that parses must re-encode to the same bytes.
 */
#include <stdint.h>

#include "lib/pvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ops[] = {"ping", "exec", "stop", "pause", "resume", NULL};
	size_t off = 0;

	for (;;) {
		struct hc_pvm_ctl_frame f;
		struct hc_buf b = HC_BUF_INIT(0);
		size_t used;
		int r = hc_pvm_ctl_parse(data + off, size - off, &f, &used);

		if (r <= 0)
			break;
		if (used != HC_CTL_HEADER + f.len || used > size - off)
			__builtin_trap();
		if (hc_pvm_ctl_append(&b, f.type, f.payload, f.len) < 0 || b.len != used ||
		    memcmp(b.data, data + off, used) != 0)
			__builtin_trap();
		hc_buf_free(&b);
		if (f.type == HC_CTL_REQUEST) {
			struct hc_error err = {0};
			const char *op = NULL;
			json_t *req = NULL;

			if (hc_pvm_ctl_request(&f, ops, &req, &op, &err) == 0) {
				if (!json_is_object(req) || !op)
					__builtin_trap();
				json_decref(req);
			} else if (!err.message[0]) {
				__builtin_trap();
			}
		}
		off += used;
	}
	return 0;
}
