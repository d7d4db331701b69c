/* SPDX-License-Identifier: MIT */
/* Fuzz target: the executors' registry file (src/server/registry.c), which the server reads at
 * start and on every SIGHUP. Any input either loads, into functions that each have a valid name,
 * a runtime, a handler (or an argv for "command") and run params, or is refused with one line
 * of kind usage; nothing leaks (ASan) either way. */
#include <stdint.h>

#include "server/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hc_registry *r = NULL;
	struct hc_error e = {0};
	int rc = hc_registry_parse((const char *)data, size, "registry fuzz", &r, &e);

	if (rc < 0) {
		if (r || !e.message[0] || strchr(e.message, '\n') ||
		    (rc == -EINVAL && strcmp(e.kind, "usage") != 0))
			abort();
		return 0;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct hc_executor_fn *f = &r->fns[i];

		if (!f->name[0] || !f->run || !json_object_get(f->run, "image") ||
		    hc_registry_find(r, f->name) != f)
			abort();
		if (f->runtime == HC_EXECUTOR_COMMAND ? !f->argc || !f->argv[0] || f->argv[f->argc]
						      : !f->handler)
			abort();
		if (i && strcmp(r->fns[i - 1].name, f->name) >= 0)
			abort();
	}
	hc_registry_ref(r);
	hc_registry_unref(r);
	hc_registry_unref(r);
	return 0;
}
