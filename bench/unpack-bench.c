/* SPDX-License-Identifier: MIT */
/*
 * Benchmark driver for bench/unpack.sh. Subcommands:
 *   gen DIR STATE MB [zstd]  writes a 4-layer image of about MB MB (uncompressed; gzip layers,
 *                      the third zstd with "zstd"; many small files, big incompressible ones,
 *                      whiteouts, hard links) into the store under STATE, "localhost/bench/unpack:1"
 *   get STATE [disk]   hc_oci_rootfs_get of it; prints "hit=0|1 ms=… unpack_ms=… disk_ms=…"
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "core/child.h"
#include "core/clock.h"
#include "core/path.h"
#include "oci/digest.h"
#include "oci/rootfs.h"
#include "oci/store.h"

#define NAME "localhost/bench/unpack:1"

int main(int argc, char **argv);

static void die(const char *what, const struct hc_error *err)
{
	fprintf(stderr, "unpack-bench: %s: %s\n", what, err ? err->message : strerror(errno));
	exit(1);
}

static unsigned long long rng = 88172645463325252ULL;

static void fill_random(char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		buf[i] = (char)rng;
	}
}

static void fill_text(char *buf, size_t n, unsigned seed)
{
	static const char *words[] = { "lorem ", "ipsum ", "dolor ", "sit ", "amet ", "cell ",
				       "micro ", "vm\n", "oci ", "layer " };
	size_t i = 0;

	while (i < n) {
		const char *w = words[(seed = seed * 1103515245 + 12345) >> 16 & 7];
		for (; *w && i < n; w++)
			buf[i++] = *w;
	}
}

static void add(struct archive *a, const char *name, int type, const char *data, size_t len,
		const char *link)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, (unsigned)type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_mtime(e, 1700000000, 0);
	if (link && type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	else if (link)
		archive_entry_set_hardlink(e, link);
	archive_entry_set_size(e, (la_int64_t)(link ? 0 : len));
	if (archive_write_header(a, e) != ARCHIVE_OK)
		die(archive_error_string(a), NULL);
	if (len && !link && archive_write_data(a, data, len) != (la_ssize_t)len)
		die(archive_error_string(a), NULL);
	archive_entry_free(e);
}

/* Writes layer i (uncompressed) to path. */
static void write_layer(int i, const char *path, size_t mb)
{
	struct archive *a = archive_write_new();
	size_t total = mb << 20;
	char *buf = malloc(4 << 20), name[128];

	archive_write_set_format_pax_restricted(a);
	if (!buf || archive_write_open_filename(a, path) != ARCHIVE_OK)
		die("open layer", NULL);
	switch (i) {
	case 0: /* a base system: many small text files in a few hundred directories */
		for (size_t n = 0, done = 0; done < total * 2 / 10; n++) {
			size_t len = 512 + (n * 7919) % 8192;
			if (n % 20 == 0) {
				snprintf(name, sizeof(name), "usr/share/d%zu/", n / 20);
				add(a, name, AE_IFDIR, NULL, 0, NULL);
			}
			snprintf(name, sizeof(name), "usr/share/d%zu/f%zu.txt", n / 20, n);
			fill_text(buf, len, (unsigned)n);
			add(a, name, AE_IFREG, buf, len, NULL);
			done += len;
		}
		add(a, "usr/bin/tool", AE_IFREG, "#!/bin/sh\n", 10, NULL);
		add(a, "usr/bin/alias", AE_IFREG, NULL, 0, "usr/bin/tool");
		add(a, "bin", AE_IFLNK, NULL, 0, "usr/bin");
		break;
	case 1: /* big incompressible blobs (a runtime, models, ...) */
		for (int n = 0; n < 10; n++) {
			size_t len = total * 4 / 10 / 10, off = 0;
			struct archive_entry *e = archive_entry_new();
			snprintf(name, sizeof(name), "opt/blob%d.bin", n);
			archive_entry_set_pathname(e, name);
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_size(e, (la_int64_t)len);
			if (archive_write_header(a, e) != ARCHIVE_OK)
				die(archive_error_string(a), NULL);
			while (off < len) {
				size_t c = len - off < (4u << 20) ? len - off : (4u << 20);
				fill_random(buf, c);
				if (archive_write_data(a, buf, c) != (la_ssize_t)c)
					die(archive_error_string(a), NULL);
				off += c;
			}
			archive_entry_free(e);
		}
		break;
	case 2: /* an application: compressible files, whiteouts of the base */
		add(a, "usr/share/d0/.wh.f0.txt", AE_IFREG, NULL, 0, NULL);
		add(a, "usr/share/d1/", AE_IFDIR, NULL, 0, NULL);
		add(a, "usr/share/d1/.wh..wh..opq", AE_IFREG, NULL, 0, NULL);
		for (size_t n = 0, done = 0; done < total * 3 / 10; n++) {
			size_t len = 64 << 10;
			snprintf(name, sizeof(name), "srv/app/m%zu/file%zu.js", n / 50, n);
			fill_text(buf, len, (unsigned)n * 31);
			add(a, name, AE_IFREG, buf, len, NULL);
			done += len;
		}
		break;
	default: /* config on top */
		for (size_t n = 0, done = 0; done < total / 10; n++) {
			size_t len = 16 << 10;
			snprintf(name, sizeof(name), "etc/conf.d/c%zu", n);
			fill_text(buf, len / 2, (unsigned)n);
			fill_random(buf + len / 2, len / 2);
			add(a, name, AE_IFREG, buf, len, NULL);
			done += len;
		}
	}
	archive_write_close(a);
	archive_write_free(a);
	free(buf);
}

static void put_file(struct hc_store *s, const char *path, char *ret_digest, uint64_t *ret_size)
{
	struct hc_error err = { 0 };
	char *data = NULL;
	size_t len = 0;

	if (hc_path_read_file(path, 1u << 30, &data, &len, &err) < 0 ||
	    hc_oci_store_blob_put(s, NULL, data, len, ret_digest, &err) < 0)
		die(path, &err);
	*ret_size = len;
	free(data);
}

static int gen(const char *dir, const char *state, size_t mb, bool zstd)
{
	const char *mts[] = { HC_OCI_MT_LAYER_GZIP, HC_OCI_MT_LAYER_GZIP,
			      zstd ? HC_OCI_MT_LAYER_ZSTD : HC_OCI_MT_LAYER_GZIP,
			      HC_OCI_MT_LAYER_GZIP };
	struct hc_error err = { 0 };
	struct hc_store s;
	char diff[4][HC_DIGEST_SIZE], dig[4][HC_DIGEST_SIZE], cfgd[HC_DIGEST_SIZE];
	char mand[HC_DIGEST_SIZE], p[HC_PATH_MAX], cmd[HC_PATH_MAX * 2], json[8192];
	uint64_t size[4], cfgsize, n, raw = 0;
	struct stat st;
	int o;

	if (hc_oci_store_init(&s, state, &err) < 0)
		die("store", &err);
	for (int i = 0; i < 4; i++) {
		int fd;
		snprintf(p, sizeof(p), "%s/layer%d.tar", dir, i);
		write_layer(i, p, mb);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0)
			raw += (uint64_t)st.st_size;
		if (fd < 0 || hc_oci_digest_fd(fd, diff[i], NULL, &err) < 0)
			die("diff_id", &err);
		close(fd);
		{
			const char *argv[] = { "sh", "-c", cmd, NULL };
			snprintf(cmd, sizeof(cmd), "%s -q -f '%s'",
				 strcmp(mts[i], HC_OCI_MT_LAYER_ZSTD) == 0 ? "zstd --rm" : "gzip", p);
			if (hc_child_run(argv, 600000, 4096, NULL, &err) != 0)
				die("compress", &err);
		}
		snprintf(p, sizeof(p), "%s/layer%d.tar.%s", dir, i,
			 strcmp(mts[i], HC_OCI_MT_LAYER_ZSTD) == 0 ? "zst" : "gz");
		put_file(&s, p, dig[i], &size[i]);
		unlink(p);
	}
	snprintf(json, sizeof(json),
		 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-01T00:00:00Z\","
		 "\"config\":{\"Cmd\":[\"/usr/bin/tool\"]},\"rootfs\":{\"type\":\"layers\","
		 "\"diff_ids\":[\"%s\",\"%s\",\"%s\",\"%s\"]}}",
		 diff[0], diff[1], diff[2], diff[3]);
	cfgsize = strlen(json);
	if (hc_oci_store_blob_put(&s, NULL, json, cfgsize, cfgd, &err) < 0)
		die("config", &err);
	o = snprintf(json, sizeof(json),
		     "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
		     "\"digest\":\"%s\",\"size\":%llu},\"layers\":[",
		     HC_OCI_MT_MANIFEST, HC_OCI_MT_CONFIG, cfgd, (unsigned long long)cfgsize);
	for (int i = 0; i < 4; i++)
		o += snprintf(json + o, sizeof(json) - (size_t)o,
			      "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%llu}",
			      i ? "," : "", mts[i], dig[i], (unsigned long long)size[i]);
	o += snprintf(json + o, sizeof(json) - (size_t)o, "]}");
	if (hc_oci_store_blob_put(&s, NULL, json, (size_t)o, mand, &err) < 0 ||
	    hc_oci_store_add_name(&s, NAME, mand, HC_OCI_MT_MANIFEST, (uint64_t)o, &err) < 0)
		die("manifest", &err);
	n = 0;
	for (int i = 0; i < 4; i++)
		n += size[i];
	printf("image %s: 4 layers (%s), %.1f MB compressed, %.1f MB as tar, manifest %s\n",
	       NAME, zstd ? "gzip + one zstd" : "gzip", (double)n / 1048576.0,
	       (double)raw / 1048576.0, mand);
	return 0;
}

static int get(const char *state, bool disk)
{
	struct hc_error err = { 0 };
	struct hc_store s;
	struct hc_oci_image img;
	struct hc_oci_rootfs rf = HC_OCI_ROOTFS_INIT;
	double t0;

	double t1;

	t0 = hc_clock_ms();
	if (hc_oci_store_init(&s, state, &err) < 0 || hc_oci_store_resolve(&s, NAME, &img, &err) < 0)
		die("resolve", &err);
	t1 = hc_clock_ms();
	if (hc_oci_rootfs_get(&s, &img, disk, -1, &rf, &err) < 0)
		die("get", &err);
	printf("hit=%d ms=%.2f get_ms=%.3f unpack_ms=%.1f disk_ms=%.1f entries=%llu bytes=%llu\n",
	       rf.hit, hc_clock_ms() - t0, hc_clock_ms() - t1, rf.unpack_ms, rf.disk_ms,
	       (unsigned long long)rf.stats.entries, (unsigned long long)rf.stats.bytes);
	hc_oci_rootfs_release(&rf);
	hc_oci_image_free(&img);
	return 0;
}

int main(int argc, char **argv)
{
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "gen"))
		return gen(argv[2], argv[3], (size_t)atoi(argv[4]), argc == 6 && !strcmp(argv[5], "zstd"));
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "get"))
		return get(argv[2], argc == 4);
	fprintf(stderr, "usage: unpack-bench gen DIR STATE MB | get STATE [disk]\n");
	return 2;
}
