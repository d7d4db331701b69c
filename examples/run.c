/* SPDX-License-Identifier: MIT */
/*
 * examples/run.c: embedding libhotcell. Opens the image store, runs one command from an image
 * in a fresh micro-VM and prints the result object (docs/design.md) as JSON on stdout.
 *
 *   cc -o run run.c $(pkg-config --cflags --libs hotcell)
 *   ./run [-s STATE_DIR] [-m MEMORY_MIB] IMAGE CMD [ARG...]
 *
 * Exits with the command's status (like `hotcell run`), or 125 when hotcell itself failed,
 * printing { "error": { "kind", "message" } } instead. Only include/hotcell.h is used: the
 * library finds its guest kernel and initramfs where it is installed.
 */
#define _POSIX_C_SOURCE 200809L /* getopt */
#include <hotcell.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void log_to_stderr(int level, const char *message, void *userdata)
{
	(void)userdata;
	fprintf(stderr, "run: %s: %s\n",
		level >= 3   ? "error"
		: level == 2 ? "warning"
			     : "info",
		message);
}

int main(int argc, char **argv)
{
	const char *state_dir = NULL;
	struct hc_store *store = NULL;
	struct hc_run_result result;
	struct hc_run_opts opts;
	struct hc_error err;
	char *json;
	int opt, r, status;

	memset(&result, 0, sizeof(result));
	memset(&err, 0, sizeof(err));
	hc_run_opts_init(&opts);
	while ((opt = getopt(argc, argv, "+s:m:")) != -1) {
		switch (opt) {
		case 's':
			state_dir = optarg;
			break;
		case 'm':
			opts.memory_mib = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-s STATE_DIR] [-m MEMORY_MIB] IMAGE CMD [ARG...]\n",
				argv[0]);
			return 2;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr, "usage: %s [-s STATE_DIR] [-m MEMORY_MIB] IMAGE CMD [ARG...]\n",
			argv[0]);
		return 2;
	}
	hc_set_log_handler(log_to_stderr, NULL);
	opts.image = argv[optind];
	opts.cmd = (const char *const *)argv + optind + 1;
	opts.n_cmd = (size_t)(argc - optind - 1);

	r = hc_store_open(state_dir, &store, &err);
	if (r == 0)
		r = hc_run(store, &opts, &result, &err);
	if (r == 0)
		json = hc_run_result_to_json(&result);
	else if (err.kind[0] && strcmp(err.kind, "exec") == 0)
		json = hc_run_result_to_json_error(&result,
						   &err); /* the guest refused the command */
	else
		json = hc_error_to_json(&err);
	status = r == 0 || strcmp(err.kind, "exec") == 0 ? hc_run_result_status(&result) : 125;
	if (json)
		printf("%s\n", json);
	else
		status = 125;
	free(json);
	hc_run_result_free(&result);
	hc_store_close(store);
	return status;
}
