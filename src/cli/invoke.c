/* SPDX-License-Identifier: MIT */
/*
 * `hotcell invoke --registry FILE NAME [INPUT-JSON | -]` (docs/executors.md): one call of an
 * executor, answered by the server's own executor.invoke method (src/server/executor.c), not a
 * copy of it. Prints the object executor.invoke answers (the `run --json` object with
 * `result`, `handler_error`, `function`) and exits with the handler's status (128+N for a
 * signal, 124 for a timeout, 125 for hotcell's own errors, whose JSON error object is printed
 * as `run --json` prints it).
 */
#include <getopt.h>
#include <signal.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "server/server.h"

static const char invoke_usage[] =
	"usage: hotcell invoke --registry FILE [OPTIONS] NAME [INPUT-JSON | -]\n"
	"\n"
	"Calls the function NAME of the registry FILE in a fresh micro-VM with INPUT-JSON (from\n"
	"stdin with '-'; null when absent) and prints the call's JSON object; its `result` is\n"
	"the handler's return value.\n"
	"\n"
	"  --registry FILE           the executors' registry (required)\n"
	"  --default-timeout-secs S  a function's timeout when the registry gives none (30)\n"
	"  -h, --help                this text\n";

enum { OPT_REGISTRY = 0x100, OPT_TIMEOUT };

static int read_stdin(char **ret)
{
	struct hc_buf b = HC_BUF_INIT(8u << 20);
	char chunk[65536];
	ssize_t n;

	while ((n = read(STDIN_FILENO, chunk, sizeof(chunk))) > 0)
		if (hc_buf_append(&b, chunk, (size_t)n) < 0) {
			hc_buf_free(&b);
			return hc_cli_failf("invoke: the input on stdin is larger than 8 MiB");
		}
	if (n < 0) {
		hc_buf_free(&b);
		return hc_cli_failf("invoke: read stdin: %s", strerror(errno));
	}
	*ret = b.data ? b.data : strdup("");
	return *ret ? 0 : hc_cli_failf("out of memory");
}

static void print_doc(const json_t *doc)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);

	puts(s ? s : "{\"error\":{\"kind\":\"internal\",\"message\":\"out of memory\"}}");
	free(s);
	fflush(stdout);
}

/* The shell-like status of an executor.invoke result: as `run`'s. */
static int result_status(const json_t *res)
{
	json_t *code = json_object_get(res, "exit_code");
	json_int_t sig = json_integer_value(json_object_get(res, "signal"));

	if (json_is_true(json_object_get(res, "timed_out")))
		return 124;
	if (json_is_integer(code) && json_integer_value(code) >= 0)
		return (int)json_integer_value(code);
	return sig > 0 ? 128 + (int)sig : HC_EXIT_INTERNAL;
}

int hc_cli_invoke(int argc, char **argv)
{
	static const struct option opts[] = {
		{"registry", required_argument, NULL, OPT_REGISTRY},
		{"default-timeout-secs", required_argument, NULL, OPT_TIMEOUT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct hc_server_config cfg = {.default_timeout_secs = 30};
	struct hc_error err = {0};
	json_t *input = NULL, *resp = NULL, *res, *e;
	const char *name;
	char *text = NULL, *end;
	int c, cancel_fd, status = HC_EXIT_INTERNAL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_REGISTRY:
			cfg.registry = optarg;
			break;
		case OPT_TIMEOUT:
			cfg.default_timeout_secs = strtod(optarg, &end);
			if (end == optarg || *end || cfg.default_timeout_secs < 0)
				return hc_cli_failf("--default-timeout-secs: invalid value '%s' "
						    "(seconds, 0: none)",
						    optarg);
			break;
		case 'h':
			fputs(invoke_usage, stdout);
			return 0;
		default:
			fputs(invoke_usage, stderr);
			return HC_EXIT_INTERNAL;
		}
	}
	if (!cfg.registry)
		return hc_cli_failf("invoke: --registry FILE is required (see hotcell invoke "
				    "--help)");
	if (optind >= argc || argc - optind > 2)
		return hc_cli_failf("invoke: expected NAME [INPUT-JSON | -] (see hotcell invoke "
				    "--help)");
	name = argv[optind];
	if (optind + 1 < argc) {
		json_error_t jerr;

		if (hc_streq(argv[optind + 1], "-")) {
			if (read_stdin(&text))
				return HC_EXIT_INTERNAL;
		}
		input = json_loads(text ? text : argv[optind + 1], JSON_DECODE_ANY, &jerr);
		free(text);
		if (!input)
			return hc_cli_failf("invoke: the input is not JSON: %s", jerr.text);
	}
	/* A signal cancels the call as a client going away does. */
	cancel_fd = hc_cli_cancel_pipe();
	if (cancel_fd < 0) {
		json_decref(input);
		return hc_cli_failf("cannot install signal handlers: %s", strerror(-cancel_fd));
	}
	signal(SIGPIPE, SIG_IGN);
	if (hc_server_invoke(&cfg, name, input, cancel_fd, &resp, &err) < 0) {
		json_decref(input);
		e = json_pack("{s:{s:s, s:s}}", "error", "kind",
			      err.kind[0] ? err.kind : "internal", "message", err.message);
		if (e)
			print_doc(e);
		json_decref(e);
		return hc_cli_fail(&err);
	}
	json_decref(input);
	res = json_object_get(resp, "result");
	if (res) {
		print_doc(res);
		status = result_status(res);
	} else {
		json_t *je = json_object_get(resp, "error");
		const char *kind =
			json_string_value(json_object_get(json_object_get(je, "data"), "kind"));
		const char *msg = json_string_value(json_object_get(je, "message"));

		e = json_pack("{s:{s:s, s:s}}", "error", "kind",
			      kind ? kind
			      : json_integer_value(json_object_get(je, "code")) == -32602
				      ? "usage"
				      : "internal",
			      "message", msg ? msg : "?");
		if (e)
			print_doc(e);
		json_decref(e);
		hc_cli_failf("%s", msg ? msg : "invoke failed");
		status = hc_streq(kind, "cancelled") ? hc_cli_cancel_status() : HC_EXIT_INTERNAL;
	}
	json_decref(resp);
	return status;
}
