/* SPDX-License-Identifier: MIT */
#include "core/path.h"
#include "oci/config.h"
#include "oci/store.h"

int hc_oci_config_load(const char *path, struct hc_oci_config *ret, struct hc_error *err)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = hc_path_read_file(path, HC_OCI_CONFIG_MAX, &data, &len, err);
	if (r < 0)
		return r;
	r = hc_oci_config_parse(data, len, ret, err);
	if (r < 0) {
		hc_oci_config_free(ret);
		return hc_error_prefix(err, "%s", path);
	}
	return 0;
}
