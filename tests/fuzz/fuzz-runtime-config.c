/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for hotcell-runtime's parsers of untrusted input (runtime/runtime.h): the
 * engine's config.json and exec's process.json. A first byte 'p' picks process.json, any other
 * config.json; a config
 * that parses must have a root path and a process with at least one argument when it has one.
 */
#include <stdint.h>

#include "runtime/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hc_error err = {0};

	if (size < 1)
		return 0;
	if (data[0] == 'p') {
		struct rt_process p;

		if (rt_process_parse((const char *)data + 1, size - 1, &p, &err) == 0) {
			if (p.n_args == 0 || !p.args[0])
				__builtin_trap();
			rt_process_free(&p);
		} else if (!err.message[0]) {
			__builtin_trap();
		}
	} else {
		struct rt_config c;

		if (rt_config_parse((const char *)data + 1, size - 1, &c, &err) == 0) {
			if (!c.root_path || !c.annotations || (c.has_process && !c.process.n_args))
				__builtin_trap();
			for (size_t i = 0; i < c.n_volumes; i++)
				if (c.volumes[i].host[0] != '/' || c.volumes[i].guest[0] != '/')
					__builtin_trap();
			rt_config_free(&c);
		} else if (!err.message[0]) {
			__builtin_trap();
		}
	}
	return 0;
}
