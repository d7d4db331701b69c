/* SPDX-License-Identifier: MIT */
/*
 * Benchmark driver for bench/pull.sh: one process that pulls REF into $HOTCELL_HOME and, with
 * --unpack, builds its rootfs (the library path `hotcell run` takes), so /usr/bin/time measures
 * both together. Prints "pull_ms=… unpack_ms=…".
 */
#include <stdio.h>

#include "core/clock.h"
#include "hotcell.h"
#include "oci/rootfs.h"
#include "oci/store.h"

int main(int argc, char **argv);

int main(int argc, char **argv)
{
	struct hc_error err = { 0 };
	struct hc_store *s = NULL;
	struct hc_oci_image img = { 0 };
	struct hc_oci_rootfs rf = HC_OCI_ROOTFS_INIT;
	char digest[72];
	bool unpack = argc > 2 && strcmp(argv[2], "--unpack") == 0;
	double t0, t1, t2;

	if (argc < 2) {
		fprintf(stderr, "usage: pull-unpack REF [--unpack]\n");
		return 2;
	}
	if (hc_store_open(NULL, &s, &err) < 0)
		goto fail;
	t0 = hc_clock_ms();
	if (hc_image_pull(s, argv[1], NULL, digest, &err) < 0)
		goto fail;
	t1 = hc_clock_ms();
	if (unpack) {
		if (hc_oci_store_resolve(s, argv[1], &img, &err) < 0 ||
		    hc_oci_rootfs_get(s, &img, false, -1, &rf, &err) < 0)
			goto fail;
		hc_oci_rootfs_release(&rf);
		hc_oci_image_free(&img);
	}
	t2 = hc_clock_ms();
	printf("pull_ms=%.1f unpack_ms=%.1f\n", t1 - t0, t2 - t1);
	hc_store_close(s);
	return 0;
fail:
	fprintf(stderr, "pull-unpack: %s\n", err.message);
	hc_store_close(s);
	return 1;
}
