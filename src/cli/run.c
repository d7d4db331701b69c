/* SPDX-License-Identifier: MIT */
/*
 * `hotcell run [OPTIONS] IMAGE [--] [CMD [ARG...]]` (DESIGN.md §6): like `podman run --rm`.
 * Options end at IMAGE: everything after it is the command, even words that look like options.
 *
 * Signals: SIGINT/SIGTERM write a byte to a self-pipe that hc_run watches (cancel_fd). The
 * first asks for an orderly teardown; a second one means "now": hc_run then ends the VM
 * without grace. Either way nothing is left behind, and hotcell exits 128+signal.
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <fcntl.h>

#include "cli/cli.h"
#include "core/error.h"
#include "hotcell.h"

static const char run_usage[] =
	"usage: hotcell run [OPTIONS] IMAGE [--] [CMD [ARG...]]\n"
	"       hotcell run [OPTIONS] --rootfs DIR [--] CMD [ARG...]\n"
	"\n"
	"Runs CMD from IMAGE in a fresh micro-VM, like `podman run --rm`, and exits with its "
	"status\n"
	"(128+N for a signal, 124 for a timeout, 125 for hotcell's own errors, 126/127 when the\n"
	"command cannot be started).\n"
	"\n"
	"  --backend NAME          auto|libkrun|firecracker|cloud-hypervisor|qemu (auto)\n"
	"  --cpus N                virtual CPUs (1)\n"
	"  --memory MIB            guest memory (256)\n"
	"  --timeout SECONDS       command timeout, from the command's start (30)\n"
	"  --boot-timeout SECONDS  time allowed for the guest to boot (60)\n"
	"  --entrypoint CMD        override the image's entrypoint (\"\" clears it; a JSON array "
	"is\n"
	"                          accepted)\n"
	"  -e, --env KEY[=VALUE]   set a variable (KEY alone takes the host's value)\n"
	"  -w, --workdir DIR       working directory (must exist in the image)\n"
	"  -u, --user USER[:GROUP] user to run as (names or numbers, resolved in the image)\n"
	"  -v, --volume HOST:GUEST[:ro]  share a host directory\n"
	"  --network MODE          none|inet|full (none)\n"
	"  -p, --publish HOST:GUEST      publish a guest port\n"
	"  -i, --interactive       forward stdin to the command\n"
	"  --json                  print one JSON result object; capture stdout/stderr into it\n"
	"  --output-limit BYTES    captured bytes per stream with --json (1M); K/M/G suffixes\n"
	"  --kernel PATH           guest kernel (default: $HOTCELL_KERNEL, else the project's)\n"
	"  --accel MODE            auto|kvm|tcg (QEMU only; auto)\n"
	"  --rootfs DIR            run from a plain directory tree instead of an image\n"
	"  --rootfs-mode MODE      dir|block: virtio-fs share or read-only ext4 disk\n"
	"  --channel MODE          auto|serial|vsock: the agent channel\n"
	"  --pull POLICY           missing|always|never (missing)\n"
	"  --jailer                run Firecracker under its jailer\n"
	"  --device PCI_ADDRESS    pass a PCI device through (cloud-hypervisor, qemu; needs "
	"--kernel)\n"
	"  -h, --help              this text\n";

enum {
	OPT_BACKEND = 0x100,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_TIMEOUT,
	OPT_BOOT_TIMEOUT,
	OPT_ENTRYPOINT,
	OPT_NETWORK,
	OPT_JSON,
	OPT_OUTPUT_LIMIT,
	OPT_KERNEL,
	OPT_ACCEL,
	OPT_ROOTFS,
	OPT_ROOTFS_MODE,
	OPT_CHANNEL,
	OPT_PULL,
	OPT_JAILER,
	OPT_DEVICE,
};

static const struct option long_opts[] = {
	{"backend", required_argument, NULL, OPT_BACKEND},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"boot-timeout", required_argument, NULL, OPT_BOOT_TIMEOUT},
	{"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
	{"env", required_argument, NULL, 'e'},
	{"workdir", required_argument, NULL, 'w'},
	{"user", required_argument, NULL, 'u'},
	{"volume", required_argument, NULL, 'v'},
	{"network", required_argument, NULL, OPT_NETWORK},
	{"publish", required_argument, NULL, 'p'},
	{"interactive", no_argument, NULL, 'i'},
	{"json", no_argument, NULL, OPT_JSON},
	{"output-limit", required_argument, NULL, OPT_OUTPUT_LIMIT},
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"accel", required_argument, NULL, OPT_ACCEL},
	{"rootfs", required_argument, NULL, OPT_ROOTFS},
	{"rootfs-mode", required_argument, NULL, OPT_ROOTFS_MODE},
	{"channel", required_argument, NULL, OPT_CHANNEL},
	{"pull", required_argument, NULL, OPT_PULL},
	{"jailer", no_argument, NULL, OPT_JAILER},
	{"device", required_argument, NULL, OPT_DEVICE},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* ---- signals: a self-pipe (async-signal-safe), read by hc_run through cancel_fd ---- */

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t sig_first;

static void on_signal(int sig)
{
	int saved = errno;
	char b = 1;

	if (!sig_first)
		sig_first = sig;
	/* Each signal is one byte: hc_run reads the first as "orderly", the second as "now". */
	if (write(sig_pipe[1], &b, 1) < 0) {
		/* the pipe is full: the run is being cancelled already */
	}
	errno = saved;
}

static int signals_install(void)
{
	struct sigaction sa = {.sa_handler = on_signal};

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0)
		return -errno;
	/* A reader that goes away must not kill hotcell before it has torn the VM down: writes
	 * then fail with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* ---- option values ---- */

static int parse_uint(const char *flag, const char *s, unsigned long long max,
		      unsigned long long *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return hc_cli_failf("%s: invalid value '%s' (a whole number up to %llu)", flag, s,
				    max);
	*ret = v;
	return 0;
}

static int parse_seconds(const char *flag, const char *s, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 1e7)
		return hc_cli_failf("%s: invalid duration '%s' (seconds, > 0)", flag, s);
	*ret = v;
	return 0;
}

static int parse_size(const char *flag, const char *s, size_t *ret)
{
	char *end;
	unsigned long long v, mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		goto bad;
	if (*end) {
		switch (*end) {
		case 'k':
		case 'K':
			mul = 1ull << 10;
			break;
		case 'm':
		case 'M':
			mul = 1ull << 20;
			break;
		case 'g':
		case 'G':
			mul = 1ull << 30;
			break;
		default:
			goto bad;
		}
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			goto bad;
	}
	if (v == 0 || v > (unsigned long long)SIZE_MAX / mul || v * mul > (1ull << 32))
		goto bad;
	*ret = (size_t)(v * mul);
	return 0;
bad:
	return hc_cli_failf("%s: invalid size '%s' (bytes, 1..4G, K/M/G suffixes)", flag, s);
}

static int pick(const char *flag, const char *s, const char *const *names, size_t n, int *ret)
{
	for (size_t i = 0; i < n; i++) {
		if (hc_streq(s, names[i])) {
			*ret = (int)i;
			return 0;
		}
	}
	return hc_cli_failf("%s: invalid value '%s'", flag, s);
}

/* Growable arrays of option values; freed at exit of hc_cli_run. */
struct list {
	void *v;
	size_t n;
};

static void *list_add(struct list *l, size_t elem)
{
	size_t bytes;
	char *nv;

	if (hc_mul_overflows(l->n + 1, elem, &bytes))
		return NULL;
	nv = realloc(l->v, bytes);
	if (!nv)
		return NULL;
	l->v = nv;
	memset(nv + l->n * elem, 0, elem);
	return nv + l->n++ * elem;
}

/* HOST:GUEST[:ro|:rw]. The host side is made absolute here so the library sees no relative
 * paths; the guest side must be absolute. */
static int parse_volume(const char *s, struct hc_volume *ret, char **ret_host)
{
	char *copy = strdup(s), *guest, *mode, *host_abs;

	if (!copy)
		return hc_cli_failf("out of memory");
	guest = strchr(copy, ':');
	if (!guest || guest == copy)
		goto bad;
	*guest++ = 0;
	mode = strchr(guest, ':');
	if (mode)
		*mode++ = 0;
	if (guest[0] != '/' || (mode && !hc_streq(mode, "ro") && !hc_streq(mode, "rw")))
		goto bad;
	host_abs = realpath(copy, NULL);
	if (!host_abs) {
		int e = errno;

		hc_cli_failf("-v %s: host directory '%s': %s", s, copy, strerror(e));
		free(copy);
		return HC_EXIT_INTERNAL;
	}
	ret->host = host_abs;
	ret->guest = strdup(guest);
	ret->readonly = mode && hc_streq(mode, "ro");
	*ret_host = host_abs;
	free(copy);
	if (!ret->guest)
		return hc_cli_failf("out of memory");
	return 0;
bad:
	free(copy);
	return hc_cli_failf("-v %s: expected HOSTDIR:GUESTDIR[:ro] with an absolute GUESTDIR", s);
}

static int parse_port(const char *s, struct hc_port *ret)
{
	unsigned long h, g;
	char *end;

	errno = 0;
	h = strtoul(s, &end, 10);
	if (errno || end == s || *end != ':' || h == 0 || h > 65535)
		goto bad;
	s = end + 1;
	g = strtoul(s, &end, 10);
	if (errno || end == s || *end || g == 0 || g > 65535)
		goto bad;
	ret->host = (uint16_t)h;
	ret->guest = (uint16_t)g;
	return 0;
bad:
	return hc_cli_failf("-p: expected HOSTPORT:GUESTPORT (1..65535), got '%s'", s);
}

static void print_json(char *s)
{
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	} else {
		fputs("{\"error\":{\"kind\":\"internal\",\"message\":\"out of memory\"}}\n",
		      stdout);
	}
	fflush(stdout);
}

static int fail_run(bool json, const struct hc_error *err)
{
	if (json)
		print_json(hc_error_to_json(err));
	return hc_cli_fail(err);
}

int hc_cli_run(int argc, char **argv)
{
	static const char *const accels[] = {"auto", "kvm", "tcg"};
	static const char *const modes[] = {"auto", "dir", "block"};
	static const char *const channels[] = {"auto", "serial", "vsock"};
	static const char *const nets[] = {"none", "inet", "full"};
	static const char *const pulls[] = {"missing", "always", "never"};
	struct hc_run_opts o;
	struct hc_run_result res = {0};
	struct hc_error err = {0};
	struct list envs = {0}, vols = {0}, ports = {0}, devs = {0}, hosts = {0};
	struct hc_store *store = NULL;
	unsigned long long u;
	bool json = false;
	int c, r, v, status = HC_EXIT_INTERNAL;

	hc_run_opts_init(&o);
	optind = 0; /* reinitialise getopt: main() already looked at argv */
	while ((c = getopt_long(argc, argv, "+e:w:u:v:p:ih", long_opts, NULL)) != -1) {
		r = 0;
		switch (c) {
		case OPT_BACKEND:
			o.backend = optarg;
			break;
		case OPT_CPUS:
			r = parse_uint("--cpus", optarg, 64, &u);
			o.cpus = (unsigned)u;
			if (!r && u == 0)
				r = hc_cli_failf("--cpus: must be at least 1");
			break;
		case OPT_MEMORY:
			r = parse_uint("--memory", optarg, 1u << 20, &u);
			o.memory_mib = (unsigned)u;
			if (!r && u < 32)
				r = hc_cli_failf("--memory: at least 32 MiB");
			break;
		case OPT_TIMEOUT:
			r = parse_seconds("--timeout", optarg, &o.timeout_s);
			break;
		case OPT_BOOT_TIMEOUT:
			r = parse_seconds("--boot-timeout", optarg, &o.boot_timeout_s);
			break;
		case OPT_ENTRYPOINT:
			o.entrypoint = optarg;
			break;
		case 'e': {
			const char **slot = list_add(&envs, sizeof(char *));

			if (!slot)
				r = hc_cli_failf("out of memory");
			else
				*slot = optarg;
			break;
		}
		case 'w':
			o.workdir = optarg;
			if (optarg[0] != '/')
				r = hc_cli_failf("-w: '%s' is not an absolute path", optarg);
			break;
		case 'u':
			o.user = optarg;
			break;
		case 'v': {
			struct hc_volume *vol = list_add(&vols, sizeof(*vol));
			char **host = list_add(&hosts, sizeof(char *));

			if (!vol || !host)
				r = hc_cli_failf("out of memory");
			else
				r = parse_volume(optarg, vol, host);
			break;
		}
		case OPT_NETWORK:
			r = pick("--network", optarg, nets, HC_ARRAY_SIZE(nets), &v);
			o.network = (enum hc_network)v;
			break;
		case 'p': {
			struct hc_port *p = list_add(&ports, sizeof(*p));

			r = p ? parse_port(optarg, p) : hc_cli_failf("out of memory");
			break;
		}
		case 'i':
			o.interactive = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_OUTPUT_LIMIT:
			r = parse_size("--output-limit", optarg, &o.output_limit);
			break;
		case OPT_KERNEL:
			o.kernel = optarg;
			break;
		case OPT_ACCEL:
			r = pick("--accel", optarg, accels, HC_ARRAY_SIZE(accels), &v);
			o.accel = (enum hc_accel)v;
			break;
		case OPT_ROOTFS:
			o.rootfs_dir = optarg;
			break;
		case OPT_ROOTFS_MODE:
			r = pick("--rootfs-mode", optarg, modes, HC_ARRAY_SIZE(modes), &v);
			o.rootfs_mode = (enum hc_rootfs_mode)v;
			break;
		case OPT_CHANNEL:
			r = pick("--channel", optarg, channels, HC_ARRAY_SIZE(channels), &v);
			o.channel = (enum hc_channel)v;
			break;
		case OPT_PULL:
			r = pick("--pull", optarg, pulls, HC_ARRAY_SIZE(pulls), &v);
			o.pull = (enum hc_pull_policy)v;
			break;
		case OPT_JAILER:
			o.jailer = true;
			break;
		case OPT_DEVICE: {
			const char **slot = list_add(&devs, sizeof(char *));

			if (!slot)
				r = hc_cli_failf("out of memory");
			else
				*slot = optarg;
			break;
		}
		case 'h':
			fputs(run_usage, stdout);
			status = 0;
			goto out;
		default:
			fputs(run_usage, stderr);
			goto out;
		}
		if (r)
			goto out;
	}

	if (!o.rootfs_dir) {
		if (optind >= argc) {
			hc_cli_failf("run: no IMAGE given (see hotcell run --help)");
			goto out;
		}
		o.image = argv[optind++];
	}
	if (optind < argc && hc_streq(argv[optind], "--"))
		optind++;
	o.cmd = (const char *const *)(argv + optind);
	o.n_cmd = (size_t)(argc - optind);
	o.env = envs.v;
	o.n_env = envs.n;
	o.volumes = vols.v;
	o.n_volumes = vols.n;
	o.ports = ports.v;
	o.n_ports = ports.n;
	o.devices = devs.v;
	o.n_devices = devs.n;
	if (o.interactive)
		o.stdin_fd = STDIN_FILENO;
	if (!json) {
		/* Like podman run: the command's output goes straight to ours, as it comes. */
		o.stdout_fd = STDOUT_FILENO;
		o.stderr_fd = STDERR_FILENO;
	}

	if (signals_install() < 0) {
		hc_cli_failf("cannot install signal handlers: %s", strerror(errno));
		goto out;
	}
	o.cancel_fd = sig_pipe[0];

	if (o.image) {
		r = hc_store_open(NULL, &store, &err);
		if (r < 0) {
			status = fail_run(json, &err);
			goto out;
		}
	}

	r = hc_run(store, &o, &res, &err);
	if (r == -ECANCELED) {
		int sig = sig_first ? sig_first : SIGINT;

		if (!err.message[0])
			hc_error_setk(&err, r, "cancelled", "interrupted by %s", strsignal(sig));
		fail_run(json, &err);
		status = 128 + sig;
	} else if (r < 0 && hc_streq(err.kind, "exec") && res.exit_code > 0) {
		/* The guest could not start the command: a shell's 126/127, with the reason. */
		if (json)
			print_json(hc_run_result_to_json_error(&res, &err));
		hc_cli_fail(&err);
		status = res.exit_code;
	} else if (r < 0) {
		status = fail_run(json, &err);
	} else {
		if (json)
			print_json(hc_run_result_to_json(&res));
		status = hc_run_result_status(&res);
	}

out:
	hc_run_result_free(&res);
	hc_store_close(store);
	for (size_t i = 0; i < vols.n; i++)
		free((char *)((struct hc_volume *)vols.v)[i].guest);
	for (size_t i = 0; i < hosts.n; i++)
		free(((char **)hosts.v)[i]);
	free(envs.v);
	free(vols.v);
	free(ports.v);
	free(devs.v);
	free(hosts.v);
	return status;
}
