/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for an incoming migration (PUT /api/v1/migrate: untrusted bytes from the
 * network): the body goes through the server's receiver (server/migrate.c: the parser of
 * lib/migrate.h writing parts and blobs into a private directory) in chunks of a size the
 * input chooses, and through the bare parser in one piece. The two must agree on success, and
 * once the receiver is freed without a restore nothing may be left under
 * $HOTCELL_HOME/migrate. The restore itself (finish) is not reached: it would start VMs.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/path.h"
#include "lib/migrate.h"
#include "server/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct hc_server srv;
static struct hc_server_config cfg;
static char migdir[HC_PATH_MAX];

static char home[] = "/tmp/hc-fuzz-migrate.XXXXXX";

static void cleanup(void)
{
	hc_path_rm_rf(home, NULL);
}

static void setup(void)
{
	struct hc_error err = {0};

	if (srv.cfg)
		return;
	if (!mkdtemp(home))
		abort();
	atexit(cleanup);
	setenv("HOTCELL_HOME", home, 1);
	srv.cfg = &cfg;
	srv.backends = json_pack("[s]", "qemu");
	pthread_mutex_init(&srv.lock, NULL);
	if (hc_lib_migrate_dir(migdir, sizeof(migdir), &err) < 0)
		abort();
}

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool empty = true;

	if (!d)
		return false;
	while (empty && (de = readdir(d)))
		empty = de->d_name[0] == '.' &&
			(!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2]));
	closedir(d);
	return empty;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct hc_mig_sink none = {0};
	struct hc_server_mig_in *m = NULL;
	struct hc_mig_parser p;
	struct hc_error err = {0};
	size_t step;
	int r1 = 0, r2;

	setup();
	if (size < 1)
		return 0;
	step = (size_t)data[0] * 37 + 1;
	data++;
	size--;
	if (hc_server_mig_in_new(&srv, &m, &err) < 0)
		abort();
	for (size_t off = 0; r1 >= 0 && off < size; off += step) {
		size_t k = step < size - off ? step : size - off;

		memset(&err, 0, sizeof(err));
		r1 = hc_server_mig_in_feed(m, data + off, k, &err);
	}
	hc_server_mig_in_free(m);
	if (!dir_empty(migdir))
		__builtin_trap(); /* an aborted migration left something behind */

	hc_mig_parser_init(&p, &none, NULL);
	memset(&err, 0, sizeof(err));
	r2 = hc_mig_parser_feed(&p, data, size, &err);
	hc_mig_parser_free(&p);
	/* The receiver may refuse more (a backend it lacks, a blob not the image's); a stream
	 * it takes the parser takes too. */
	if (r1 >= 0 && r2 < 0)
		__builtin_trap();
	return 0;
}
