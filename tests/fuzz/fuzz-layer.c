/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for layer application (src/oci/unpack.c): the input is a whole layer (tar, gzip
 * or zstd), unpacked into <tmp>/root. Accepted or refused, nothing may appear beside root in
 * <tmp>, and the sentinel <tmp>/outside/keep must survive. Inputs over 1 MiB are skipped to
 * keep it fast.
 */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/path.h"
#include "oci/unpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char tmp[64], root[96], outside[96], keep[128];

static void setup(void)
{
	FILE *f;

	snprintf(tmp, sizeof(tmp), "/tmp/hc-fuzz-layer-XXXXXX");
	if (!mkdtemp(tmp))
		__builtin_trap();
	snprintf(root, sizeof(root), "%s/root", tmp);
	snprintf(outside, sizeof(outside), "%s/outside", tmp);
	snprintf(keep, sizeof(keep), "%s/keep", outside);
	if (mkdir(outside, 0755) < 0)
		__builtin_trap();
	f = fopen(keep, "we");
	if (!f)
		__builtin_trap();
	fputs("sentinel\n", f);
	fclose(f);
}

static void cleanup(void)
{
	if (tmp[0])
		hc_path_rm_rf(tmp, NULL);
}

static void check_outside(void)
{
	DIR *d = opendir(tmp);
	struct dirent *de;
	struct stat st;
	int n = 0;

	if (!d)
		__builtin_trap();
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	if (n != 2 || stat(keep, &st) < 0 || st.st_size != 9)
		__builtin_trap();
	d = opendir(outside);
	if (!d)
		__builtin_trap();
	n = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	if (n != 1)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hc_oci_unpack *u = NULL;
	struct hc_error err = { 0 };

	if (!tmp[0]) {
		setup();
		atexit(cleanup);
	}
	if (size > (1u << 20))
		return 0;
	if (mkdir(root, 0755) < 0 || hc_oci_unpack_new(root, &u, &err) < 0)
		__builtin_trap();
	if (hc_oci_unpack_layer_mem(u, data, size, "fuzz", &err) == 0 &&
	    hc_oci_unpack_finish(u, &err) < 0)
		err.code = 0; /* refusing is fine; only escapes are bugs */
	hc_oci_unpack_free(u);
	check_outside();
	if (hc_path_rm_rf(root, NULL) < 0)
		__builtin_trap();
	return 0;
}
