/* SPDX-License-Identifier: MIT */
/* The run options table and its two entry points: getopt (CLI) and a JSON object (server). */
#include <arpa/inet.h>
#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "lib/runopts.h"
#include "oci/manifest.h"

enum arg_kind { ARG_NONE, ARG_REQUIRED };

struct runopt {
	const char *name; /* long name */
	int short_name;	  /* 0: none */
	enum arg_kind arg;
	unsigned scope; /* HC_RUNOPT_* it applies to */
	bool repeatable;
	int (*set)(struct hc_runopts *ro, const char *v, struct hc_error *err);
	const char *help_arg; /* "N", "MIB", ...; NULL for a flag */
	const char *help;
};

static int bad(struct hc_error *err, const char *fmt, ...) _printf_(2, 3);
static int bad(struct hc_error *err, const char *fmt, ...)
{
	va_list ap;

	hc_error_clear(err);
	err->code = -EINVAL;
	snprintf(err->kind, sizeof(err->kind), "%s", HC_EK_USAGE);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int oom(struct hc_error *err)
{
	return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
}

/* Keeps a copy of s alive as long as ro. */
static const char *keep(struct hc_runopts *ro, const char *s, struct hc_error *err)
{
	char **nv, *c;

	nv = realloc(ro->strs, (ro->n_strs + 1) * sizeof(*nv));
	if (!nv)
		return oom(err), NULL;
	ro->strs = nv;
	c = strdup(s);
	if (!c)
		return oom(err), NULL;
	ro->strs[ro->n_strs++] = c;
	return c;
}

static void *grow(void **v, size_t *n, size_t elem)
{
	size_t bytes;
	char *nv;

	if (hc_mul_overflows(*n + 1, elem, &bytes))
		return NULL;
	nv = realloc(*v, bytes);
	if (!nv)
		return NULL;
	*v = nv;
	memset(nv + *n * elem, 0, elem);
	return nv + (*n)++ * elem;
}

/* Points the hc_run_opts arrays at the (possibly moved) storage. */
static void relink(struct hc_runopts *ro)
{
	ro->o.env = ro->env;
	ro->o.n_env = ro->n_env;
	ro->o.volumes = ro->vols;
	ro->o.n_volumes = ro->n_vols;
	ro->o.ports = ro->ports;
	ro->o.n_ports = ro->n_ports;
	ro->o.devices = ro->devs;
	ro->o.n_devices = ro->n_devs;
	ro->o.cmd = ro->cmd;
	ro->o.n_cmd = ro->n_cmd;
	ro->o.allow_hosts = ro->allow;
	ro->o.n_allow_hosts = ro->n_allow;
	ro->o.add_hosts = ro->hosts;
	ro->o.n_add_hosts = ro->n_hosts;
	ro->o.tmpfs = ro->tmpfs;
	ro->o.n_tmpfs = ro->n_tmpfs;
	ro->o.dns = ro->dns;
	ro->o.n_dns = ro->n_dns;
}

/* Appends a kept copy of v to a string list. */
static int push_str(struct hc_runopts *ro, const char ***v, size_t *n, const char *s,
		    struct hc_error *err)
{
	const char *c = keep(ro, s, err), **slot;

	if (!c)
		return -ENOMEM;
	slot = grow((void **)v, n, sizeof(*slot));
	if (!slot)
		return oom(err);
	*slot = c;
	relink(ro);
	return 0;
}

/* ---- value parsers ---- */

static int parse_seconds(const char *flag, const char *s, double *ret, struct hc_error *err)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 1e7)
		return bad(err, "%s: invalid duration '%s' (seconds, > 0)", flag, s);
	*ret = v;
	return 0;
}

int hc_runopts_parse_seconds(const char *flag, const char *s, double *ret, struct hc_error *err)
{
	return parse_seconds(flag, s, ret, err);
}

static int parse_size(const char *flag, const char *s, size_t *ret, struct hc_error *err)
{
	char *end;
	unsigned long long v, mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		goto fail;
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
			goto fail;
		}
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			goto fail;
	}
	if (v == 0 || v > (unsigned long long)SIZE_MAX / mul || v * mul > (1ull << 32))
		goto fail;
	*ret = (size_t)(v * mul);
	return 0;
fail:
	return bad(err, "%s: invalid size '%s' (bytes, 1..4G, K/M/G suffixes)", flag, s);
}

static int pick(const char *flag, const char *s, const char *const *names, size_t n, int *ret,
		struct hc_error *err)
{
	for (size_t i = 0; i < n; i++) {
		if (hc_streq(s, names[i])) {
			*ret = (int)i;
			return 0;
		}
	}
	return bad(err, "%s: invalid value '%s'", flag, s);
}

/* ---- setters, one per option ---- */

static int set_backend(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	return (ro->o.backend = keep(ro, v, err)) ? 0 : -ENOMEM;
}

/* Whole vCPUs; podman's fractional --cpus 1.5 is a CFS quota, which a VM has no use for: it is
 * rounded up to whole vCPUs (said in the debug log). */
static int set_cpus(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !isdigit((unsigned char)v[0]) || !isfinite(d) || d > 64)
		return bad(err, "--cpus: invalid value '%s' (a number of CPUs up to 64)", v);
	if (d <= 0)
		return bad(err, "--cpus: must be more than 0");
	ro->o.cpus = (unsigned)d + ((double)(unsigned)d < d); /* up (no libm's ceil) */
	if ((double)ro->o.cpus != d)
		hc_debug("--cpus %s: rounded up to %u whole vCPUs", v, ro->o.cpus);
	return 0;
}

/* podman's units (b, k, m, g, t: powers of 1024, case-insensitive, an optional trailing "b":
 * 512m, 1g, 1024kb); a bare number below 1048576 is hotcell's MiB, from 1048576 on it is bytes
 * as podman means it (no VM has a TiB). Rounded up to whole MiB. */
static int set_memory(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	static const char units[] = "bkmgt";
	unsigned long long n, mib, shift = 0;
	const char *u = NULL;
	char *end;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v || !isdigit((unsigned char)v[0]))
		goto fail;
	if (*end) {
		u = strchr(units, tolower((unsigned char)*end));
		if (!u)
			goto fail;
		shift = 10 * (unsigned long long)(u - units);
		end++;
		if (u != units && (*end == 'b' || *end == 'B'))
			end++;
		if (*end)
			goto fail;
		if (shift >= 64 || n > (ULLONG_MAX >> shift))
			goto fail;
		n <<= shift;
	} else if (n < (1ull << 20)) {
		n <<= 20; /* hotcell's plain MiB */
	}
	mib = n / (1ull << 20) + (n % (1ull << 20) != 0);
	if (mib < 32)
		return bad(err,
			   "--memory: at least 32 MiB ('%s' is %llu bytes; a bare number below "
			   "1048576 is MiB, e.g. 512 or 512m)",
			   v, n);
	if (mib > (1u << 20))
		return bad(err, "--memory: '%s' is more than 1 TiB", v);
	ro->o.memory_mib = (unsigned)mib;
	return 0;
fail:
	return bad(err,
		   "--memory: invalid size '%s' (512m, 1g, 1024k; a bare number is MiB below "
		   "1048576, bytes from there on)",
		   v);
}

static int set_timeout(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	char *end;

	/* podman: --timeout 0 is no timeout. */
	if (strtod(v, &end) == 0 && *v && !*end) {
		ro->o.timeout_s = HC_TIMEOUT_NONE;
		return 0;
	}
	return parse_seconds("--timeout", v, &ro->o.timeout_s, err);
}

static int set_boot_timeout(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	return parse_seconds("--boot-timeout", v, &ro->o.boot_timeout_s, err);
}

static int set_entrypoint(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	return (ro->o.entrypoint = keep(ro, v, err)) ? 0 : -ENOMEM;
}

static int set_env(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	const char *c = keep(ro, v, err), **slot;

	if (!c)
		return -ENOMEM;
	slot = grow((void **)&ro->env, &ro->n_env, sizeof(*slot));
	if (!slot)
		return oom(err);
	*slot = c;
	relink(ro);
	return 0;
}

static int set_workdir(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	if (v[0] != '/')
		return bad(err, "-w: '%s' is not an absolute path", v);
	return (ro->o.workdir = keep(ro, v, err)) ? 0 : -ENOMEM;
}

static int set_user(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	return (ro->o.user = keep(ro, v, err)) ? 0 : -ENOMEM;
}

/* podman's volume options after the second ':', comma separated: ro, rw, and the SELinux
 * relabelling z and Z (accepted: hosts without SELinux have nothing to relabel). */
static int volume_options(const char *spec, char *opts, bool *ro, struct hc_error *err)
{
	bool seen_ro = false, seen_rw = false;
	char *save = NULL;

	for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (hc_streq(o, "ro"))
			seen_ro = true;
		else if (hc_streq(o, "rw"))
			seen_rw = true;
		else if (!hc_streq(o, "z") && !hc_streq(o, "Z"))
			return bad(err, "-v %s: unknown volume option '%.40s' (ro, rw, z, Z)", spec,
				   o);
	}
	if (seen_ro && seen_rw)
		return bad(err, "-v %s: ro and rw together", spec);
	*ro = seen_ro;
	return 0;
}

/* Adds the volume host -> guest; the host side is made absolute here so the library sees no
 * relative paths. */
static int add_volume(struct hc_runopts *ro, const char *spec, const char *host, const char *guest,
		      bool readonly, struct hc_error *err)
{
	_cleanup_free_ char *host_abs = realpath(host, NULL);
	struct hc_volume vol = {0}, *slot;

	if (!host_abs) {
		int e = errno;

		bad(err, "%s: host path '%s': %s", spec, host, strerror(e));
		err->code = -e;
		return -e;
	}
	struct stat st;
	if (stat(host_abs, &st) == 0 && !S_ISDIR(st.st_mode))
		return bad(err,
			   "%s: '%s' is not a directory: a volume is a virtio-fs share of a "
			   "directory (share the one it is in, e.g. -v DIR:/mnt)",
			   spec, host);
	vol.host = keep(ro, host_abs, err);
	vol.guest = vol.host ? keep(ro, guest, err) : NULL;
	if (!vol.guest)
		return -ENOMEM;
	vol.readonly = readonly;
	slot = grow((void **)&ro->vols, &ro->n_vols, sizeof(*slot));
	if (!slot)
		return oom(err);
	*slot = vol;
	relink(ro);
	return 0;
}

/* HOST:GUEST[:OPTS]; the guest side must be absolute. */
static int set_volume(struct hc_runopts *ro, const char *s, struct hc_error *err)
{
	_cleanup_free_ char *spec = NULL;
	char copy[2 * PATH_MAX + 16], *guest, *mode;
	bool readonly = false;
	int r;

	if (strlen(s) >= sizeof(copy))
		return bad(err, "-v: the volume '%.80s...' is too long", s);
	snprintf(copy, sizeof(copy), "%s", s);
	guest = strchr(copy, ':');
	if (!guest || guest == copy)
		return bad(err, "-v %s: expected HOST:GUEST[:OPTIONS]", s);
	*guest++ = 0;
	mode = strchr(guest, ':');
	if (mode)
		*mode++ = 0;
	if (guest[0] != '/')
		return bad(err, "-v %s: the guest path '%s' is not absolute", s, guest);
	if (mode && (r = volume_options(s, mode, &readonly, err)) < 0)
		return r;
	if (asprintf(&spec, "-v %s", s) < 0)
		return oom(err);
	return add_volume(ro, spec, copy, guest, readonly, err);
}

static int set_network(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	static const char *const nets[] = {"none", "inet", "full"};
	int i = 0, r = pick("--network", v, nets, HC_ARRAY_SIZE(nets), &i, err);

	if (!r)
		ro->o.network = (enum hc_network)i;
	return r;
}

/* [IP:]HOSTPORT:GUESTPORT[/tcp|/udp] (docs/network.md), one parser: hc_port_parse. */
static int set_publish(struct hc_runopts *ro, const char *s, struct hc_error *err)
{
	struct hc_port port, *p;
	int r = hc_port_parse(s, &port, err);

	if (r < 0)
		return r;
	p = grow((void **)&ro->ports, &ro->n_ports, sizeof(*p));
	if (!p)
		return oom(err);
	*p = port;
	relink(ro);
	return 0;
}

static int set_interactive(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	ro->o.interactive = true;
	return 0;
}

static int set_rm(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	return 0; /* the only mode of run: nothing of it survives */
}

static int set_tty(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	ro->o.tty = true;
	return 0;
}

static int set_output_limit(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	return parse_size("--output-limit", v, &ro->o.output_limit, err);
}

static int set_kernel(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	return (ro->o.kernel = keep(ro, v, err)) ? 0 : -ENOMEM;
}

static int set_accel(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	static const char *const accels[] = {"auto", "kvm", "tcg"};
	int i = 0, r = pick("--accel", v, accels, HC_ARRAY_SIZE(accels), &i, err);

	if (!r)
		ro->o.accel = (enum hc_accel)i;
	return r;
}

static int set_rootfs(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	return (ro->o.rootfs_dir = keep(ro, v, err)) ? 0 : -ENOMEM;
}

static int set_rootfs_mode(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	static const char *const modes[] = {"auto", "dir", "block"};
	int i = 0, r = pick("--rootfs-mode", v, modes, HC_ARRAY_SIZE(modes), &i, err);

	if (!r)
		ro->o.rootfs_mode = (enum hc_rootfs_mode)i;
	return r;
}

static int set_channel(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	static const char *const channels[] = {"auto", "serial", "vsock"};
	int i = 0, r = pick("--channel", v, channels, HC_ARRAY_SIZE(channels), &i, err);

	if (!r)
		ro->o.channel = (enum hc_channel)i;
	return r;
}

static int set_pull(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	static const char *const pulls[] = {"missing", "always", "never", "newer"};
	int i = 0, r = pick("--pull", v, pulls, HC_ARRAY_SIZE(pulls), &i, err);

	if (!r)
		ro->o.pull = (enum hc_pull_policy)i;
	return r;
}

static int set_rootfs_rw(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	ro->o.rootfs_rw = true;
	return 0;
}

static int set_hostname(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	size_t n = strlen(v);

	if (n == 0 || n > 64 ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != n)
		return hc_error_setk(
			err, -EINVAL, HC_EK_USAGE,
			"--hostname: invalid value '%.80s' (letters, digits, '.', '-'; "
			"at most 64)",
			v);
	return (ro->o.hostname = keep(ro, v, err)) ? 0 : -ENOMEM;
}

/* podman's --env-file: KEY=VALUE lines; blank lines and lines starting with '#' (after
 * leading blanks) are skipped; a bare KEY takes the host's value now, and is dropped when the
 * host has none (podman's rule). Each line is one -e; an error names the file and the line. */
static int set_env_file(struct hc_runopts *ro, const char *path, struct hc_error *err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int r;

	if (!f) {
		int e = errno;

		bad(err, "--env-file %s: %s", path, strerror(e));
		err->code = -e;
		return -e;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *s = line, *eq;
		size_t klen;

		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (strlen(line) != (size_t)n)
			return bad(err, "--env-file %s:%zu: a NUL byte in the line", path, lineno);
		s += strspn(s, " \t");
		if (!*s || *s == '#')
			continue;
		eq = strchr(s, '=');
		klen = eq ? (size_t)(eq - s) : strlen(s);
		if (!eq)
			while (klen && (s[klen - 1] == ' ' || s[klen - 1] == '\t'))
				s[--klen] = 0;
		if (klen == 0)
			return bad(err, "--env-file %s:%zu: no variable name before '='", path,
				   lineno);
		if (strcspn(s, " \t") < klen)
			return bad(err, "--env-file %s:%zu: variable name '%.*s' contains blanks",
				   path, lineno, (int)(klen > 60 ? 60 : klen), s);
		if (!eq) {
			const char *hv = getenv(s);
			_cleanup_free_ char *kv = NULL;

			if (!hv)
				continue;
			if (asprintf(&kv, "%s=%s", s, hv) < 0)
				return oom(err);
			r = set_env(ro, kv, err);
		} else {
			r = set_env(ro, s, err);
		}
		if (r < 0)
			return r;
	}
	if (ferror(f)) {
		int e = errno ? errno : EIO;

		bad(err, "--env-file %s: %s", path, strerror(e));
		err->code = -e;
		return -e;
	}
	return 0;
}

/* podman's --add-host NAME:IP (IPv4, or IPv6 as is or in brackets): a line of the guest's
 * /etc/hosts. Kept as "NAME:IP" with the brackets dropped. */
static int set_add_host(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	const char *colon = strchr(v, ':'), *ip, *c, **slot;
	_cleanup_free_ char *kv = NULL;
	char addr[INET6_ADDRSTRLEN + 2];
	unsigned char bin[16];
	size_t n, an;

	if (ro->n_hosts >= HC_MAX_ADD_HOSTS)
		return bad(err, "--add-host: at most %d", HC_MAX_ADD_HOSTS);
	n = colon ? (size_t)(colon - v) : 0;
	if (n == 0 || n > 64 ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != n)
		goto fail;
	ip = colon + 1;
	an = strlen(ip);
	if (an >= 2 && ip[0] == '[' && ip[an - 1] == ']') {
		ip++;
		an -= 2;
	}
	if (an == 0 || an >= sizeof(addr))
		goto fail;
	memcpy(addr, ip, an);
	addr[an] = 0;
	if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1)
		goto fail;
	if (asprintf(&kv, "%.*s:%s", (int)n, v, addr) < 0)
		return oom(err);
	c = keep(ro, kv, err);
	if (!c)
		return -ENOMEM;
	slot = grow((void **)&ro->hosts, &ro->n_hosts, sizeof(*slot));
	if (!slot)
		return oom(err);
	*slot = c;
	relink(ro);
	return 0;
fail:
	return bad(err,
		   "--add-host: invalid value '%.80s' (NAME:IP, NAME of letters, digits, '.', "
		   "'-'; an IPv4 or IPv6 address)",
		   v);
}

/* podman's --name: a run's name is the VM's when -d makes it one that stays (vm create's
 * rule); without -d it is checked and otherwise unused, since a run keeps nothing. */
static int set_name(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	size_t n = strlen(v);

	if (n == 0 || n > 64 || !isalnum((unsigned char)v[0]) ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n)
		return bad(err,
			   "--name: invalid value '%.80s' ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most "
			   "64)",
			   v);
	return (ro->name = keep(ro, v, err)) ? 0 : -ENOMEM;
}

static int set_detach(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	ro->detach = true;
	return 0;
}

static int set_quiet(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	return 0; /* run prints no pull progress to silence */
}

static int set_platform(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	struct hc_oci_platform want, host;
	char w[128], h[128];
	int r = hc_oci_platform_parse(v, &want, err);

	if (r < 0)
		return hc_error_prefix(err, "--platform");
	hc_oci_platform_host(&host);
	hc_oci_platform_format(&want, w, sizeof(w));
	hc_oci_platform_format(&host, h, sizeof(h));
	if (!hc_streq(want.os, host.os) || !hc_streq(want.arch, host.arch))
		return bad(err,
			   "--platform %s: a VM runs guests of the host's architecture (%s) "
			   "only",
			   v, h);
	return (ro->o.platform = keep(ro, w, err)) ? 0 : -ENOMEM;
}

static int set_stop_timeout(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	return parse_seconds("--stop-timeout", v, &ro->o.stop_timeout_s, err);
}

static int set_read_only(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	ro->o.read_only = true;
	return 0;
}

/* A guest path hotcell mounts something on (--tmpfs, --mount type=tmpfs): absolute, of the
 * characters a kernel command line carries as they are, at most 255 bytes. Reserved paths
 * (/, /proc, ...) are refused with the volumes' rule, in hc_vm_volumes_check. */
static int guest_mount_path(const char *flag, const char *p, struct hc_error *err)
{
	size_t n = strlen(p);

	if (p[0] != '/' || n > 255 ||
	    strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+@") != n)
		return bad(err,
			   "%s: the guest path '%.80s' must be absolute, of letters, digits and "
			   "/._-+@, at most 255 bytes",
			   flag, p);
	return 0;
}

/* podman's tmpfs options (mount(8)'s tmpfs ones): size=N[kmg%], mode=OCTAL, uid=, gid=,
 * nr_inodes=N[kmg], and the flags ro/rw, [no]exec, [no]suid, [no]dev. */
static int tmpfs_options(const char *flag, const char *opts, struct hc_error *err)
{
	static const char *const flags[] = {"ro",   "rw",     "exec", "noexec",
					    "suid", "nosuid", "dev",  "nodev"};
	static const char *const keys[] = {"size=", "mode=", "uid=", "gid=", "nr_inodes="};
	char copy[256], *save = NULL;

	if (strlen(opts) >= sizeof(copy))
		return bad(err, "%s: tmpfs options too long", flag);
	snprintf(copy, sizeof(copy), "%s", opts);
	if (strspn(opts, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=,%_.-") !=
	    strlen(opts))
		return bad(err, "%s: invalid tmpfs options '%.80s'", flag, opts);
	for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		bool ok = false;

		for (size_t i = 0; i < HC_ARRAY_SIZE(flags) && !ok; i++)
			ok = hc_streq(o, flags[i]);
		for (size_t i = 0; i < HC_ARRAY_SIZE(keys) && !ok; i++)
			ok = hc_startswith(o, keys[i]) && o[strlen(keys[i])];
		if (!ok)
			return bad(err,
				   "%s: unknown tmpfs option '%.40s' (size=, mode=, uid=, gid=, "
				   "nr_inodes=, ro, rw, [no]exec, [no]suid, [no]dev)",
				   flag, o);
	}
	return 0;
}

static int add_tmpfs(struct hc_runopts *ro, const char *flag, const char *path, const char *opts,
		     struct hc_error *err)
{
	_cleanup_free_ char *kv = NULL;
	int r;

	if (ro->n_tmpfs >= HC_MAX_TMPFS)
		return bad(err, "%s: at most %d tmpfs mounts", flag, HC_MAX_TMPFS);
	if ((r = guest_mount_path(flag, path, err)) < 0 ||
	    (opts && *opts && (r = tmpfs_options(flag, opts, err)) < 0))
		return r;
	if (asprintf(&kv, "%s%s%s", path, opts && *opts ? ":" : "", opts ? opts : "") < 0)
		return oom(err);
	return push_str(ro, &ro->tmpfs, &ro->n_tmpfs, kv, err);
}

/* podman's --tmpfs PATH[:OPTS]: a fresh tmpfs on PATH in the guest (the root overlay is one
 * already; this one has its own size, mode and flags, and stays writable under --read-only). */
static int set_tmpfs(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	_cleanup_free_ char *copy = strdup(v), *flag = NULL;
	char *opts;

	if (!copy || asprintf(&flag, "--tmpfs %s", v) < 0)
		return oom(err);
	opts = strchr(copy, ':');
	if (opts)
		*opts++ = 0;
	return add_tmpfs(ro, flag, copy, opts, err);
}

/* podman's --mount type=bind|tmpfs,KEY=VALUE,... : bind is a -v volume (source, target, ro,
 * z/Z/relabel), tmpfs is a --tmpfs (target, tmpfs-size, tmpfs-mode, ro). */
static int set_mount(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	_cleanup_free_ char *copy = strdup(v), *flag = NULL;
	const char *type = NULL, *src = NULL, *dst = NULL;
	char opts[128] = "", *save = NULL;
	bool readonly = false;
	size_t n = 0;

	if (!copy || asprintf(&flag, "--mount %s", v) < 0)
		return oom(err);
	for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *val = strchr(kv, '=');

		if (val)
			*val++ = 0;
		if (hc_streq(kv, "type") && val)
			type = val;
		else if ((hc_streq(kv, "source") || hc_streq(kv, "src")) && val)
			src = val;
		else if ((hc_streq(kv, "target") || hc_streq(kv, "destination") ||
			  hc_streq(kv, "dst")) &&
			 val)
			dst = val;
		else if ((hc_streq(kv, "ro") || hc_streq(kv, "readonly")) &&
			 (!val || hc_streq(val, "true") || hc_streq(val, "false")))
			readonly = !val || hc_streq(val, "true");
		else if (hc_streq(kv, "rw") && !val)
			readonly = false;
		else if ((hc_streq(kv, "z") || hc_streq(kv, "Z")) && !val)
			; /* SELinux relabelling: nothing to relabel without SELinux */
		else if (hc_streq(kv, "relabel") && val &&
			 (hc_streq(val, "shared") || hc_streq(val, "private")))
			;
		else if ((hc_streq(kv, "tmpfs-size") || hc_streq(kv, "tmpfs-mode")) && val &&
			 n < sizeof(opts))
			n += (size_t)snprintf(opts + n, sizeof(opts) - n, "%s%s=%s", n ? "," : "",
					      kv + strlen("tmpfs-"), val);
		else
			return bad(err, "%s: unknown or incomplete option '%.40s'", flag, kv);
	}
	if (!type || !dst)
		return bad(err, "%s: type= and target= are required", flag);
	if (hc_streq(type, "bind")) {
		if (!src)
			return bad(err, "%s: type=bind needs source=", flag);
		if (n)
			return bad(err, "%s: tmpfs-size/tmpfs-mode go with type=tmpfs", flag);
		if (dst[0] != '/')
			return bad(err, "%s: the target '%s' is not absolute", flag, dst);
		return add_volume(ro, flag, src, dst, readonly, err);
	}
	if (hc_streq(type, "tmpfs")) {
		if (src)
			return bad(err, "%s: type=tmpfs takes no source=", flag);
		if (readonly && n < sizeof(opts))
			n += (size_t)snprintf(opts + n, sizeof(opts) - n, "%sro", n ? "," : "");
		if (n >= sizeof(opts))
			return bad(err, "%s: options too long", flag);
		return add_tmpfs(ro, flag, dst, opts, err);
	}
	return bad(err, "%s: type=%s is not supported (bind, tmpfs)", flag, type);
}

/* podman's --dns: the guest's nameservers (IPv4 or IPv6), its /etc/resolv.conf. */
static int set_dns(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	unsigned char bin[16];

	if (ro->n_dns >= HC_MAX_DNS)
		return bad(err, "--dns: at most %d servers", HC_MAX_DNS);
	if (inet_pton(AF_INET, v, bin) != 1 && inet_pton(AF_INET6, v, bin) != 1)
		return bad(err, "--dns: invalid address '%.80s' (an IPv4 or IPv6 address)", v);
	return push_str(ro, &ro->dns, &ro->n_dns, v, err);
}

static int set_jailer(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	ro->o.jailer = true;
	return 0;
}

static int set_no_jail(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	ro->o.no_jail = true;
	return 0;
}

static int set_cold(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	ro->o.cold = true;
	return 0;
}

static int set_device(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	const char *c = keep(ro, v, err), **slot;

	if (!c)
		return -ENOMEM;
	slot = grow((void **)&ro->devs, &ro->n_devs, sizeof(*slot));
	if (!slot)
		return oom(err);
	*slot = c;
	relink(ro);
	return 0;
}

static int set_allow_host(struct hc_runopts *ro, const char *v, struct hc_error *err)
{
	const char *c = keep(ro, v, err), **slot;

	if (!c)
		return -ENOMEM;
	slot = grow((void **)&ro->allow, &ro->n_allow, sizeof(*slot));
	if (!slot)
		return oom(err);
	*slot = c;
	relink(ro);
	return 0;
}

#define BOTH (HC_RUNOPT_RUN | HC_RUNOPT_VM)
#define ALL (HC_RUNOPT_RUN | HC_RUNOPT_VM | HC_RUNOPT_EXEC)

/* The table. Order is the order of the help text. */
static const struct runopt table[] = {
	{"backend", 0, ARG_REQUIRED, BOTH, false, set_backend, "NAME",
	 "auto|libkrun|firecracker|cloud-hypervisor|qemu (auto)"},
	{"cpus", 0, ARG_REQUIRED, BOTH, false, set_cpus, "N",
	 "virtual CPUs (1; a fraction is rounded up: 1.5 is 2)"},
	{"memory", 'm', ARG_REQUIRED, BOTH, false, set_memory, "SIZE",
	 "guest memory: 512m, 1g (podman's units) or MiB (256)"},
	{"timeout", 0, ARG_REQUIRED, HC_RUNOPT_RUN | HC_RUNOPT_EXEC, false, set_timeout, "SECONDS",
	 "command timeout, from the command's start (none; 0: none)"},
	{"boot-timeout", 0, ARG_REQUIRED, BOTH, false, set_boot_timeout, "SECONDS",
	 "time allowed for the guest to boot (60)"},
	{"entrypoint", 0, ARG_REQUIRED, HC_RUNOPT_RUN, false, set_entrypoint, "CMD",
	 "override the image's entrypoint (\"\" clears it; a JSON array is accepted)"},
	{"env", 'e', ARG_REQUIRED, ALL, true, set_env, "KEY[=VALUE]",
	 "set a variable (KEY alone takes the host's value)"},
	{"workdir", 'w', ARG_REQUIRED, ALL, false, set_workdir, "DIR",
	 "working directory (must exist in the image)"},
	{"user", 'u', ARG_REQUIRED, ALL, false, set_user, "USER[:GROUP]",
	 "user to run as (names or numbers, resolved in the image)"},
	{"volume", 'v', ARG_REQUIRED, BOTH, true, set_volume, "HOST:GUEST[:OPTS]",
	 "share a host directory (OPTS: ro, rw, z, Z; z/Z accepted, no SELinux to relabel)"},
	{"mount", 0, ARG_REQUIRED, BOTH, true, set_mount, "type=bind|tmpfs,...",
	 "podman's --mount: bind (source=, target=, ro) or tmpfs (target=, tmpfs-size=, "
	 "tmpfs-mode=)"},
	{"tmpfs", 0, ARG_REQUIRED, BOTH, true, set_tmpfs, "PATH[:OPTS]",
	 "a fresh tmpfs on PATH (rw,noexec,nosuid,nodev; OPTS: size=, mode=, uid=, gid=, "
	 "nr_inodes=, ro, exec, suid, dev)"},
	{"network", 0, ARG_REQUIRED, BOTH, false, set_network, "MODE", "none|inet|full (none)"},
	{"publish", 'p', ARG_REQUIRED, BOTH, true, set_publish, "[IP:]HOST:GUEST[/tcp|/udp]",
	 "publish a guest port on the host (127.0.0.1 unless IP)"},
	{"allow-host", 0, ARG_REQUIRED, BOTH, true, set_allow_host, "NAME",
	 "with --network: only NAME and its subdomains (*.NAME: only those) resolve and are "
	 "reachable"},
	{"interactive", 'i', ARG_NONE, HC_RUNOPT_RUN | HC_RUNOPT_EXEC, false, set_interactive, NULL,
	 "forward stdin to the command"},
	{"rm", 0, ARG_NONE, HC_RUNOPT_RUN, false, set_rm, NULL,
	 "accepted (podman's --rm is the only mode of run: nothing of a run is kept)"},
	{"tty", 't', ARG_NONE, HC_RUNOPT_RUN | HC_RUNOPT_EXEC, false, set_tty, NULL,
	 "a pseudo-terminal for the command (stderr merged into it; with -i: an interactive "
	 "shell)"},
	{"output-limit", 0, ARG_REQUIRED, HC_RUNOPT_RUN, false, set_output_limit, "BYTES",
	 "captured bytes per stream with --json (1M); K/M/G suffixes"},
	{"kernel", 0, ARG_REQUIRED, BOTH, false, set_kernel, "PATH",
	 "guest kernel (default: $HOTCELL_KERNEL, else the project's)"},
	{"accel", 0, ARG_REQUIRED, BOTH, false, set_accel, "MODE",
	 "auto|kvm|tcg (QEMU only; auto)"},
	{"rootfs", 0, ARG_REQUIRED, BOTH, false, set_rootfs, "DIR",
	 "run from a plain directory tree instead of an image"},
	{"rootfs-mode", 0, ARG_REQUIRED, BOTH, false, set_rootfs_mode, "MODE",
	 "dir|block: virtio-fs share or read-only ext4 disk"},
	{"channel", 0, ARG_REQUIRED, BOTH, false, set_channel, "MODE",
	 "auto|serial|vsock: the agent channel"},
	{"pull", 0, ARG_REQUIRED, BOTH, false, set_pull, "POLICY",
	 "missing|always|never|newer (missing)"},
	{"platform", 0, ARG_REQUIRED, BOTH, false, set_platform, "OS/ARCH",
	 "the image's platform to pull; only the host's (a VM runs its own architecture)"},
	{"quiet", 'q', ARG_NONE, HC_RUNOPT_RUN, false, set_quiet, NULL,
	 "accepted (run prints no pull progress)"},
	{"rootfs-rw", 0, ARG_NONE, BOTH, false, set_rootfs_rw, NULL,
	 "with --rootfs: the guest writes into DIR itself (QEMU)"},
	{"hostname", 'h', ARG_REQUIRED, BOTH, false, set_hostname, "NAME",
	 "the guest's hostname (hotcell)"},
	{"add-host", 0, ARG_REQUIRED, BOTH, true, set_add_host, "NAME:IP",
	 "a line of the guest's /etc/hosts (repeatable)"},
	{"dns", 0, ARG_REQUIRED, BOTH, true, set_dns, "IP",
	 "a nameserver of the guest's /etc/resolv.conf (repeatable, at most 3)"},
	{"env-file", 0, ARG_REQUIRED, ALL, true, set_env_file, "FILE",
	 "read KEY=VALUE lines as -e (podman's format: # comments, bare KEY: the host's)"},
	{"name", 0, ARG_REQUIRED, HC_RUNOPT_RUN, false, set_name, "NAME",
	 "with -d: the VM's name; without: checked, unused (a run keeps nothing)"},
	{"detach", 'd', ARG_NONE, HC_RUNOPT_RUN | HC_RUNOPT_EXEC, false, set_detach, NULL,
	 "run: sugar over vm create + vm exec --detach (prints the VM's id); the VM stays"},
	{"stop-timeout", 0, ARG_REQUIRED, HC_RUNOPT_RUN, false, set_stop_timeout, "SECONDS",
	 "after a forwarded SIGINT/SIGTERM/SIGHUP, the command's time to end before the VM "
	 "is ended (10)"},
	{"read-only", 0, ARG_NONE, BOTH, false, set_read_only, NULL,
	 "the guest's root read-only (/tmp, /run, /var/tmp, /hotcell: tmpfs; /dev)"},
	{"jailer", 0, ARG_NONE, BOTH, false, set_jailer, NULL, "run Firecracker under its jailer"},
	{"no-jail", 0, ARG_NONE, BOTH, false, set_no_jail, NULL,
	 "run the VMM-side processes without hotcell's jail (docs/security.md)"},
	{"cold", 0, ARG_NONE, HC_RUNOPT_RUN, false, set_cold, NULL,
	 "boot from scratch, not from the image's template (docs/warm-start.md)"},
	{"device", 0, ARG_REQUIRED, BOTH, true, set_device, "PCI_ADDRESS",
	 "pass a PCI device through (VFIO; cloud-hypervisor only)"},
};

static const struct runopt *lookup(const char *name)
{
	for (size_t i = 0; i < HC_ARRAY_SIZE(table); i++)
		if (hc_streq(table[i].name, name))
			return &table[i];
	return NULL;
}

void hc_runopts_init(struct hc_runopts *ro)
{
	memset(ro, 0, sizeof(*ro));
	hc_run_opts_init(&ro->o);
}

void hc_runopts_free(struct hc_runopts *ro)
{
	if (!ro)
		return;
	for (size_t i = 0; i < ro->n_strs; i++)
		free(ro->strs[i]);
	free(ro->strs);
	free(ro->env);
	free(ro->vols);
	free(ro->ports);
	free(ro->devs);
	free(ro->cmd);
	free(ro->allow);
	free(ro->hosts);
	free(ro->tmpfs);
	free(ro->dns);
	hc_runopts_init(ro);
}

static int apply(struct hc_runopts *ro, unsigned scope, const struct runopt *opt, const char *value,
		 struct hc_error *err)
{
	if (!(opt->scope & scope))
		return bad(err, "--%s does not apply here", opt->name);
	if (opt->arg == ARG_REQUIRED && !value)
		return bad(err, "--%s needs a value", opt->name);
	return opt->set(ro, value ? value : "", err);
}

int hc_runopts_set(struct hc_runopts *ro, unsigned scope, const char *name, const char *value,
		   struct hc_error *err)
{
	const struct runopt *opt = lookup(name);

	if (!opt) {
		bad(err, "unknown option '%s'", name);
		err->code = -ENOENT;
		return -ENOENT;
	}
	return apply(ro, scope, opt, value, err);
}

int hc_runopts_set_image(struct hc_runopts *ro, const char *image, struct hc_error *err)
{
	return (ro->o.image = keep(ro, image, err)) ? 0 : -ENOMEM;
}

int hc_runopts_set_cmd(struct hc_runopts *ro, const char *const *cmd, size_t n,
		       struct hc_error *err)
{
	free(ro->cmd);
	ro->cmd = NULL;
	ro->n_cmd = 0;
	if (n) {
		ro->cmd = calloc(n, sizeof(*ro->cmd));
		if (!ro->cmd)
			return oom(err);
		for (size_t i = 0; i < n; i++) {
			ro->cmd[i] = keep(ro, cmd[i], err);
			if (!ro->cmd[i])
				return -ENOMEM;
			ro->n_cmd = i + 1;
		}
	}
	relink(ro);
	return 0;
}

/* ---- getopt ---- */

/* Ids of table entries in the getopt loop: 0x1000 + index; extras keep theirs (< 0x1000). */
#define TABLE_ID 0x1000

int hc_runopts_getopt(struct hc_runopts *ro, unsigned scope, int argc, char **argv,
		      const struct hc_runopt_extra *extra, size_t n_extra,
		      int (*on_extra)(int id, const char *arg, void *userdata,
				      struct hc_error *err),
		      void *userdata, struct hc_error *err)
{
	size_t n = HC_ARRAY_SIZE(table) + n_extra + 1, k = 0;
	_cleanup_free_ struct option *lo = calloc(n, sizeof(*lo));
	/* "+" stops at the first operand; ":" lets us word the errors ourselves. */
	char shorts[2 + 3 * (HC_ARRAY_SIZE(table) + 16)] = "+:";
	size_t sl = 2;
	int c, r;

	if (!lo || n_extra > 16)
		return oom(err);
	for (size_t i = 0; i < HC_ARRAY_SIZE(table); i++) {
		if (!(table[i].scope & scope))
			continue;
		lo[k++] = (struct option){
			table[i].name, table[i].arg == ARG_NONE ? no_argument : required_argument,
			NULL, TABLE_ID + (int)i};
		if (table[i].short_name) {
			shorts[sl++] = (char)table[i].short_name;
			if (table[i].arg != ARG_NONE)
				shorts[sl++] = ':';
		}
	}
	for (size_t i = 0; i < n_extra; i++) {
		lo[k++] = (struct option){extra[i].name, extra[i].has_arg, NULL, extra[i].id};
		if (extra[i].short_name) {
			shorts[sl++] = (char)extra[i].short_name;
			if (extra[i].has_arg != no_argument)
				shorts[sl++] = ':';
		}
	}
	shorts[sl] = 0;

	optind = 0; /* reinitialise getopt: main() already looked at argv */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		if (c == '?' || c == ':') {
			const char *what = argv[optind - 1];

			if (c == ':' && optopt > 0 && optopt < 0x100)
				return bad(err, "%s: option -%c needs a value", argv[0], optopt);
			if (c == ':')
				return bad(err, "%s: option '%s' needs a value", argv[0], what);
			if (optopt > 0 && optopt < 0x100)
				return bad(err, "%s: unrecognized option '-%c'", argv[0], optopt);
			return bad(err, "%s: unrecognized option '%s'", argv[0], what);
		}
		/* A short option comes back as its letter: find its entry. */
		if (c < TABLE_ID) {
			bool found = false;

			for (size_t i = 0; i < HC_ARRAY_SIZE(table) && !found; i++) {
				if (table[i].short_name == c && (table[i].scope & scope)) {
					c = TABLE_ID + (int)i;
					found = true;
				}
			}
			if (!found) {
				for (size_t i = 0; i < n_extra && !found; i++)
					if (extra[i].short_name == c) {
						c = extra[i].id;
						found = true;
					}
				r = on_extra ? on_extra(c, optarg, userdata, err)
					     : bad(err, "%s: unexpected option", argv[0]);
				if (r < 0)
					return r;
				continue;
			}
		}
		if (c >= TABLE_ID && c < TABLE_ID + (int)HC_ARRAY_SIZE(table)) {
			r = apply(ro, scope, &table[c - TABLE_ID], optarg, err);
		} else {
			r = on_extra ? on_extra(c, optarg, userdata, err)
				     : bad(err, "%s: unexpected option", argv[0]);
		}
		if (r < 0)
			return r;
	}
	return optind;
}

/* ---- JSON ---- */

static int json_text(const char *key, const json_t *v, char *buf, size_t len, const char **ret,
		     struct hc_error *err)
{
	if (json_is_string(v)) {
		*ret = json_string_value(v);
		return 0;
	}
	if (json_is_integer(v)) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		*ret = buf;
		return 0;
	}
	if (json_is_real(v)) {
		snprintf(buf, len, "%.17g", json_real_value(v));
		*ret = buf;
		return 0;
	}
	return bad(err, "%s: expected a string or a number", key);
}

int hc_runopts_from_json(struct hc_runopts *ro, unsigned scope, const json_t *params,
			 const char *const *skip, struct hc_error *err)
{
	const char *key;
	json_t *v;
	int r;

	if (!json_is_object(params))
		return bad(err, "params: expected an object");
	json_object_foreach((json_t *)params, key, v)
	{
		char name[64], num[64];
		const struct runopt *opt;
		const char *text;
		bool skipped = false;

		for (size_t i = 0; skip && skip[i] && !skipped; i++)
			skipped = hc_streq(skip[i], key);
		if (skipped)
			continue;
		if (hc_streq(key, "image")) {
			if (!json_is_string(v))
				return bad(err, "image: expected a string");
			r = hc_runopts_set_image(ro, json_string_value(v), err);
			if (r < 0)
				return r;
			continue;
		}
		if (hc_streq(key, "cmd")) {
			size_t n = json_array_size(v);
			_cleanup_free_ const char **argv = NULL;

			if (!json_is_array(v))
				return bad(err, "cmd: expected an array of strings");
			argv = calloc(n + 1, sizeof(*argv));
			if (!argv)
				return oom(err);
			for (size_t i = 0; i < n; i++) {
				argv[i] = json_string_value(json_array_get(v, i));
				if (!argv[i])
					return bad(err, "cmd: expected an array of strings");
			}
			r = hc_runopts_set_cmd(ro, argv, n, err);
			if (r < 0)
				return r;
			continue;
		}
		if (strlen(key) >= sizeof(name))
			return bad(err, "unknown parameter '%.60s...'", key);
		for (size_t i = 0; (name[i] = key[i] == '_' ? '-' : key[i]); i++)
			;
		opt = lookup(name);
		if (!opt || !(opt->scope & scope))
			return bad(err, "unknown parameter '%s'", key);
		if (opt->arg == ARG_NONE) {
			if (!json_is_boolean(v))
				return bad(err, "%s: expected true or false", key);
			if (json_is_true(v) && (r = apply(ro, scope, opt, NULL, err)) < 0)
				return r;
			continue;
		}
		if (opt->repeatable && json_is_array(v)) {
			size_t i;
			json_t *e;

			json_array_foreach(v, i, e)
			{
				if ((r = json_text(key, e, num, sizeof(num), &text, err)) < 0 ||
				    (r = apply(ro, scope, opt, text, err)) < 0)
					return r;
			}
			continue;
		}
		if (opt->set == set_env && json_is_object(v)) {
			const char *k;
			json_t *e;

			json_object_foreach(v, k, e)
			{
				_cleanup_free_ char *kv = NULL;

				if (!json_is_string(e))
					return bad(err, "env.%s: expected a string", k);
				if (!*k || strchr(k, '='))
					return bad(err, "env: invalid variable name '%s'", k);
				if (asprintf(&kv, "%s=%s", k, json_string_value(e)) < 0)
					return oom(err);
				if ((r = apply(ro, scope, opt, kv, err)) < 0)
					return r;
			}
			continue;
		}
		if ((r = json_text(key, v, num, sizeof(num), &text, err)) < 0 ||
		    (r = apply(ro, scope, opt, text, err)) < 0)
			return r;
	}
	/* The CLI's run -d is sugar over two calls; the server has both (vm.create, vm.exec). */
	if (ro->detach)
		return bad(err, "detach: a run keeps nothing once its command ends: use vm.create "
				"and vm.exec with detach");
	return 0;
}

json_t *hc_runopts_to_json(const struct hc_run_opts *o, unsigned scope)
{
	static const char *const accels[] = {"auto", "kvm", "tcg"};
	static const char *const modes[] = {"auto", "dir", "block"};
	static const char *const channels[] = {"auto", "serial", "vsock"};
	static const char *const nets[] = {"none", "inet", "full"};
	static const char *const pulls[] = {"missing", "always", "never", "newer"};
	json_t *j = json_object(), *a;
	char num[64];

	if (!j)
		return NULL;
#define PUT_STR(k, v)                                                                              \
	do {                                                                                       \
		if (v)                                                                             \
			json_object_set_new(j, k, json_string(v));                                 \
	} while (0)
	PUT_STR("image", o->image);
	PUT_STR("rootfs", o->rootfs_dir);
	PUT_STR("backend", o->backend);
	if (o->cpus)
		json_object_set_new(j, "cpus", json_integer(o->cpus));
	if (o->memory_mib)
		json_object_set_new(j, "memory", json_integer(o->memory_mib));
	if (o->boot_timeout_s > 0)
		json_object_set_new(j, "boot-timeout", json_real(o->boot_timeout_s));
	if ((scope & HC_RUNOPT_RUN) && o->timeout_s > 0)
		json_object_set_new(j, "timeout", json_real(o->timeout_s));
	else if ((scope & HC_RUNOPT_RUN) && o->timeout_s < 0)
		json_object_set_new(j, "timeout", json_integer(0));
	if ((scope & HC_RUNOPT_RUN) && o->entrypoint)
		PUT_STR("entrypoint", o->entrypoint);
	if (o->n_env) {
		json_object_set_new(j, "env", a = json_array());
		for (size_t i = 0; i < o->n_env; i++)
			json_array_append_new(a, json_string(o->env[i]));
	}
	PUT_STR("workdir", o->workdir);
	PUT_STR("user", o->user);
	if (o->n_volumes) {
		json_object_set_new(j, "volume", a = json_array());
		for (size_t i = 0; i < o->n_volumes; i++) {
			char *v = NULL;

			if (asprintf(&v, "%s:%s%s", o->volumes[i].host, o->volumes[i].guest,
				     o->volumes[i].readonly ? ":ro" : "") >= 0)
				json_array_append_new(a, json_string(v));
			free(v);
		}
	}
	if (o->network)
		PUT_STR("network", nets[o->network]);
	if (o->n_ports) {
		json_object_set_new(j, "publish", a = json_array());
		for (size_t i = 0; i < o->n_ports; i++) {
			snprintf(num, sizeof(num), "%u:%u", o->ports[i].host, o->ports[i].guest);
			json_array_append_new(a, json_string(num));
		}
	}
	PUT_STR("kernel", o->kernel);
	if (o->accel)
		PUT_STR("accel", accels[o->accel]);
	if (o->rootfs_mode)
		PUT_STR("rootfs-mode", modes[o->rootfs_mode]);
	if (o->channel)
		PUT_STR("channel", channels[o->channel]);
	if (o->pull)
		PUT_STR("pull", pulls[o->pull]);
	if (o->jailer)
		json_object_set_new(j, "jailer", json_true());
	if (o->rootfs_rw)
		json_object_set_new(j, "rootfs-rw", json_true());
	PUT_STR("hostname", o->hostname);
	if (o->read_only)
		json_object_set_new(j, "read-only", json_true());
	if (o->n_add_hosts) {
		json_object_set_new(j, "add-host", a = json_array());
		for (size_t i = 0; i < o->n_add_hosts; i++)
			json_array_append_new(a, json_string(o->add_hosts[i]));
	}
	if ((scope & HC_RUNOPT_RUN) && o->cold)
		json_object_set_new(j, "cold", json_true());
	if (o->n_tmpfs) {
		json_object_set_new(j, "tmpfs", a = json_array());
		for (size_t i = 0; i < o->n_tmpfs; i++)
			json_array_append_new(a, json_string(o->tmpfs[i]));
	}
	if (o->n_dns) {
		json_object_set_new(j, "dns", a = json_array());
		for (size_t i = 0; i < o->n_dns; i++)
			json_array_append_new(a, json_string(o->dns[i]));
	}
	PUT_STR("platform", o->platform);
	if (o->n_devices) {
		json_object_set_new(j, "device", a = json_array());
		for (size_t i = 0; i < o->n_devices; i++)
			json_array_append_new(a, json_string(o->devices[i]));
	}
#undef PUT_STR
	return j;
}

char *hc_runopts_help(unsigned scope)
{
	struct hc_buf b = {0};

	for (size_t i = 0; i < HC_ARRAY_SIZE(table); i++) {
		char head[64];

		if (!(table[i].scope & scope))
			continue;
		if (table[i].short_name)
			snprintf(head, sizeof(head), "-%c, --%s%s%s", table[i].short_name,
				 table[i].name, table[i].help_arg ? " " : "",
				 table[i].help_arg ? table[i].help_arg : "");
		else
			snprintf(head, sizeof(head), "--%s%s%s", table[i].name,
				 table[i].help_arg ? " " : "",
				 table[i].help_arg ? table[i].help_arg : "");
		if (hc_buf_printf(&b, "  %-24s %s\n", head, table[i].help) < 0) {
			hc_buf_free(&b);
			return NULL;
		}
	}
	return hc_buf_steal(&b, NULL);
}
