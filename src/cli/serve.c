/* SPDX-License-Identifier: MIT */
/*
 * `hotcell serve [--listen HOST:PORT|unix:PATH] [--auth-token-file F] ...` (DESIGN.md §10,
 * docs/server.md). The token comes from the file or HOTCELL_AUTH_TOKEN; without one the
 * server does not start. SIGTERM/SIGINT: stop accepting, cancel the runs, exit 0.
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/child.h"
#include "core/log.h"
#include "core/owner.h"
#include "jail/jail.h"
#include "lib/backend.h"
#include "lib/runopts.h"
#include "server/server.h"

static const char serve_usage[] =
	"usage: hotcell serve [OPTIONS]\n"
	"\n"
	"Serves JSON-RPC 2.0 at POST /api/v1/rpc and a WebSocket at GET /api/v1/ws; every\n"
	"request needs 'Authorization: Bearer TOKEN'.\n"
	"\n"
	"  --listen ADDR               HOST:PORT, [IPV6]:PORT or unix:PATH (127.0.0.1:8080)\n"
	"  --auth-token-file F         the bearer token (else $HOTCELL_AUTH_TOKEN; required)\n"
	"  --max-vms N                 persistent VMs at most (unlimited)\n"
	"  --max-runs N                concurrent runs at most; past it a JSON-RPC error "
	"(unlimited)\n"
	"  --default-backend NAME      backend when a call names none (auto)\n"
	"  --default-memory-mib MIB    guest memory when a call names none (256)\n"
	"  --default-vcpus N           vCPUs when a call names none (1)\n"
	"  --default-timeout-secs S    command timeout when a call names none (30)\n"
	"  --default-network MODE      none|inet|full when a call names none (none)\n"
	"  --idle-timeout S            close idle or slow connections after S seconds (30)\n"
	"  --max-body BYTES            request body size limit (8M); K/M suffixes\n"
	"  --registry FILE             the executors (docs/executors.md); SIGHUP reloads it\n"
	"  --warm-pool N               keep up to N VMs per template restored and waiting for\n"
	"                              runs (docs/warm-start.md; 0, the default: none)\n"
	"  -h, --help                  this text\n";

enum {
	OPT_LISTEN = 0x100,
	OPT_TOKEN_FILE,
	OPT_MAX_VMS,
	OPT_MAX_RUNS,
	OPT_BACKEND,
	OPT_MEMORY,
	OPT_VCPUS,
	OPT_TIMEOUT,
	OPT_NETWORK,
	OPT_IDLE,
	OPT_MAX_BODY,
	OPT_REGISTRY,
	OPT_WARM_POOL,
};

static int stop_pipe[2] = {-1, -1};
static int reload_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;

	/* A full pipe: already stopping, or a reload already pending. */
	if (write(sig == SIGHUP ? reload_pipe[1] : stop_pipe[1], "x", 1) < 0) {
	}
	errno = saved;
}

static void on_listen(const char *address, void *userdata)
{
	fprintf(stderr, "hotcell: listening on %s\n", address);
	fflush(stderr);
}

int hc_cli_read_token(const char *flag, const char *path, char **ret)
{
	struct hc_buf b = HC_BUF_INIT(4096);
	char chunk[512];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *s, *e;

	if (fd < 0)
		return hc_cli_failf("%s %s: %s", flag, path, strerror(errno));
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (hc_buf_append(&b, chunk, (size_t)n) < 0) {
			close(fd);
			hc_buf_free(&b);
			return hc_cli_failf("%s %s: larger than 4 KiB", flag, path);
		}
	}
	close(fd);
	if (!b.data) {
		hc_buf_free(&b);
		return hc_cli_failf("%s %s: empty", flag, path);
	}
	s = b.data;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = 0;
	if (!*s || strpbrk(s, " \t\r\n")) {
		hc_buf_free(&b);
		return hc_cli_failf("%s %s: expected one token on one line", flag, path);
	}
	*ret = strdup(s);
	hc_buf_free(&b);
	return *ret ? 0 : hc_cli_failf("out of memory");
}

static int parse_count(const char *flag, const char *s, unsigned max, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return hc_cli_failf("%s: invalid value '%s' (a whole number up to %u)", flag, s,
				    max);
	*ret = (unsigned)v;
	return 0;
}

/* The --default-* values go through the run options' own table, so a bad one is refused
 * here with the run option's message instead of failing every call. */
static int check_default(const char *flag, const char *opt, const char *v)
{
	struct hc_runopts ro;
	struct hc_error err = {0};
	int r;

	hc_runopts_init(&ro);
	r = hc_runopts_set(&ro, HC_RUNOPT_RUN, opt, v, &err);
	hc_runopts_free(&ro);
	if (r < 0)
		return hc_cli_failf("%s: %s", flag, err.message);
	return 0;
}

/* ---- the reaper ----
 * With --warm-pool the server keeps VMs that no client is waiting for. Their VMMs die with
 * the server (PR_SET_PDEATHSIG), but a SIGKILLed server cannot remove what it held for them:
 * their runtime dirs, uid leases and cgroups. A reaper process of its own, started first and
 * outliving it, does: it waits on a pipe whose write end only the server holds; an orderly
 * stop writes "q" first, an EOF without it means the server died. */
#define REAPER_TIMEOUT_MS 10000

static int reaper_main(int argc, char **argv)
{
	unsigned long long start;
	char runtime[HC_PATH_MAX], b[16];
	struct hc_error err = {0};
	bool orderly = false;
	ssize_t n;
	pid_t pid;

	/* serve --internal-reaper PID STARTTIME */
	if (argc != 4)
		return HC_EXIT_INTERNAL;
	pid = (pid_t)strtol(argv[2], NULL, 10);
	start = strtoull(argv[3], NULL, 10);
	while ((n = read(0, b, sizeof(b))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		orderly = orderly || memchr(b, 'q', (size_t)n);
	}
	if (orderly)
		return 0;
	/* The jails' leases and cgroups once their processes are gone (the cgroups say when),
	 * then the runtime dirs whose owner is dead. */
	n = hc_jail_reap_dead(pid, start, REAPER_TIMEOUT_MS);
	if (hc_path_runtime_dir(runtime, sizeof(runtime), &err) == 0)
		hc_owner_sweep(runtime);
	hc_info("serve: reaper: the server (pid %d) died; %zd jail lease(s) released", (int)pid, n);
	return 0;
}

static int reaper_start(struct hc_child *c, int *ret_fd)
{
	char pid[24], start[24];
	const char *argv[] = {"/proc/self/exe", "serve", "--internal-reaper", pid, start, NULL};
	struct hc_child_opts o = {
		.argv = argv,
		.stdout_fd = -1,
		.stderr_fd = 2,
		.new_session = true, /* the terminal's Ctrl-C is the server's to handle */
		.pdeathsig = -1,
	};
	struct hc_error err = {0};
	int p[2];

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(start, sizeof(start), "%llu", hc_owner_start_time(getpid()));
	if (pipe2(p, O_CLOEXEC) < 0)
		return hc_cli_failf("serve: pipe: %s", strerror(errno));
	o.stdin_fd = p[0];
	if (hc_child_spawn(c, &o, &err) < 0) {
		close(p[0]);
		close(p[1]);
		return hc_cli_fail(&err);
	}
	close(p[0]);
	*ret_fd = p[1];
	return 0;
}

static void reaper_stop(struct hc_child *c, int fd)
{
	if (fd < 0)
		return;
	if (write(fd, "q", 1) < 0)
		hc_debug("serve: reaper: %s", strerror(errno));
	close(fd);
	if (hc_child_wait(c, 5000) < 0)
		hc_child_stop(c, 0);
}

int hc_cli_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"auth-token-file", required_argument, NULL, OPT_TOKEN_FILE},
		{"max-vms", required_argument, NULL, OPT_MAX_VMS},
		{"max-runs", required_argument, NULL, OPT_MAX_RUNS},
		{"default-backend", required_argument, NULL, OPT_BACKEND},
		{"default-memory-mib", required_argument, NULL, OPT_MEMORY},
		{"default-vcpus", required_argument, NULL, OPT_VCPUS},
		{"default-timeout-secs", required_argument, NULL, OPT_TIMEOUT},
		{"default-network", required_argument, NULL, OPT_NETWORK},
		{"idle-timeout", required_argument, NULL, OPT_IDLE},
		{"max-body", required_argument, NULL, OPT_MAX_BODY},
		{"registry", required_argument, NULL, OPT_REGISTRY},
		{"warm-pool", required_argument, NULL, OPT_WARM_POOL},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct hc_server_config cfg = {.default_timeout_secs = 30, .on_listen = on_listen};
	const char *token_file = NULL;
	struct hc_error err = {0};
	char *token = NULL;
	struct sigaction sa = {.sa_handler = on_signal};
	struct hc_child reaper = HC_CHILD_INIT;
	int reaper_fd = -1;
	unsigned u;
	int c, r;

	if (argc >= 2 && hc_streq(argv[1], "--internal-reaper"))
		return reaper_main(argc, argv);
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		r = 0;
		switch (c) {
		case OPT_LISTEN:
			cfg.listen = optarg;
			break;
		case OPT_TOKEN_FILE:
			token_file = optarg;
			break;
		case OPT_MAX_VMS:
			r = parse_count("--max-vms", optarg, 100000, &cfg.max_vms);
			break;
		case OPT_MAX_RUNS:
			r = parse_count("--max-runs", optarg, 100000, &cfg.max_runs);
			break;
		case OPT_BACKEND: {
			bool known = hc_streq(optarg, "auto");

			for (size_t i = 0; i < hc_lib_backend_auto_n && !known; i++)
				known = hc_streq(optarg, hc_lib_backend_auto_order[i]);
			cfg.default_backend = optarg;
			r = known ? check_default("--default-backend", "backend", optarg)
				  : hc_cli_failf("--default-backend: unknown backend '%s' (auto, "
						 "libkrun, firecracker, cloud-hypervisor, qemu)",
						 optarg);
			break;
		}
		case OPT_MEMORY:
			r = check_default("--default-memory-mib", "memory", optarg) ||
			    parse_count("--default-memory-mib", optarg, 1u << 20,
					&cfg.default_memory_mib);
			break;
		case OPT_VCPUS:
			r = check_default("--default-vcpus", "cpus", optarg) ||
			    parse_count("--default-vcpus", optarg, 64, &cfg.default_vcpus);
			break;
		case OPT_TIMEOUT:
			/* 0: no timeout unless the call sets one */
			if (hc_streq(optarg, "0"))
				cfg.default_timeout_secs = 0;
			else if (!(r = check_default("--default-timeout-secs", "timeout", optarg)))
				cfg.default_timeout_secs = strtod(optarg, NULL);
			break;
		case OPT_NETWORK:
			cfg.default_network = optarg;
			r = check_default("--default-network", "network", optarg);
			break;
		case OPT_IDLE:
			r = parse_count("--idle-timeout", optarg, 86400, &u);
			if (!r && u == 0)
				r = hc_cli_failf("--idle-timeout: at least 1 second");
			cfg.idle_timeout_s = u;
			break;
		case OPT_MAX_BODY: {
			struct hc_runopts ro;
			struct hc_error e = {0};

			/* the same size syntax as --output-limit */
			hc_runopts_init(&ro);
			r = hc_runopts_set(&ro, HC_RUNOPT_RUN, "output-limit", optarg, &e);
			cfg.max_body = ro.o.output_limit;
			hc_runopts_free(&ro);
			if (r < 0)
				r = hc_cli_failf("--max-body: %s", e.message);
			break;
		}
		case OPT_REGISTRY:
			cfg.registry = optarg;
			break;
		case OPT_WARM_POOL:
			r = parse_count("--warm-pool", optarg, HC_WARM_POOL_MAX, &cfg.warm_pool);
			break;
		case 'h':
			fputs(serve_usage, stdout);
			return 0;
		default:
			fputs(serve_usage, stderr);
			return HC_EXIT_INTERNAL;
		}
		if (r)
			return HC_EXIT_INTERNAL;
	}
	if (optind != argc)
		return hc_cli_failf("serve: unexpected argument '%s' (see hotcell serve --help)",
				    argv[optind]);
	if (token_file) {
		if (hc_cli_read_token("--auth-token-file", token_file, &token))
			return HC_EXIT_INTERNAL;
	} else if (getenv("HOTCELL_AUTH_TOKEN") && *getenv("HOTCELL_AUTH_TOKEN")) {
		token = strdup(getenv("HOTCELL_AUTH_TOKEN"));
		if (!token)
			return hc_cli_failf("out of memory");
	} else {
		return hc_cli_failf("serve: no auth token: give --auth-token-file F or set "
				    "HOTCELL_AUTH_TOKEN (the server does not run without one)");
	}
	/* Children (VMMs, supervisors) do not inherit the token. */
	unsetenv("HOTCELL_AUTH_TOKEN");
	cfg.token = token;

	if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    pipe2(reload_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(token);
		return hc_cli_failf("pipe: %s", strerror(errno));
	}
	cfg.reload_fd = reload_pipe[0];
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* SIGHUP reads the registry again (without one it is ignored, not fatal). */
	sigaction(SIGHUP, &sa, NULL);
	if (cfg.warm_pool && reaper_start(&reaper, &reaper_fd) < 0)
		return HC_EXIT_INTERNAL;
	r = hc_server_run(&cfg, stop_pipe[0], &err);
	reaper_stop(&reaper, reaper_fd);
	explicit_bzero(token, strlen(token));
	free(token);
	close(stop_pipe[0]);
	close(stop_pipe[1]);
	close(reload_pipe[0]);
	close(reload_pipe[1]);
	if (r < 0)
		return hc_cli_fail(&err);
	return 0;
}
