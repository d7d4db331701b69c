/* SPDX-License-Identifier: MIT */
/*
 * The guest's half of the boot contract (docs/protocol.md, src/proto/boot.h): read the keys,
 * mount the image read-only with a tmpfs overlay on top (so the cached image is never
 * written), switch root, mount the volumes, open the agent channel.
 *
 * From an initramfs, pivot_root() is impossible (the rootfs cannot be unmounted); the new
 * root is moved over "/" and entered with chroot, as busybox's switch_root does.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <linux/vm_sockets.h>

#include "guest/guest.h"
#include "proto/boot.h"

#define STAGE "/run/hc"
#define LOWER STAGE "/lower"
#define RW STAGE "/rw"
#define NEWROOT "/mnt/root"

/* A bad boot key: the message says it all, no errno text. */
static int bad(char *msg, size_t msglen, const char *fmt, ...) _printf_(3, 4);
static int bad(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int fail(char *msg, size_t msglen, int code, const char *fmt, ...) _printf_(4, 5);
static int fail(char *msg, size_t msglen, int code, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	n = strlen(msg);
	if (code < 0 && n < msglen)
		snprintf(msg + n, msglen - n, ": %s", strerror(-code));
	return code < 0 ? code : -EIO;
}

/* ---- the keys ---- */

/* TAG:PATH[:ro|:rw], the path percent-encoded (hc_boot_volume_parse). */
static int parse_volume(const char *v, struct guest_boot_cfg *cfg, char *msg, size_t msglen)
{
	struct guest_volume *vol;

	if (cfg->nvols >= GUEST_MAX_VOLUMES)
		return bad(msg, msglen, "more than %d volumes", GUEST_MAX_VOLUMES);
	vol = &cfg->vols[cfg->nvols];
	memset(vol, 0, sizeof(*vol));
	if (hc_boot_volume_parse(v, vol->tag, sizeof(vol->tag), vol->path, sizeof(vol->path),
				 &vol->ro) < 0)
		return bad(msg, msglen, "bad volume `%s`: want TAG:/PATH[:ro]", v);
	cfg->nvols++;
	return 0;
}

static int set_key(struct guest_boot_cfg *cfg, const char *key, const char *val, char *msg,
		   size_t msglen)
{
	if (hc_streq(key, HC_BOOT_KEY_ROOT)) {
		if (!hc_streq(val, "virtiofs") && !hc_streq(val, "block"))
			return bad(msg, msglen, "%s=%s: want virtiofs or block", key, val);
		snprintf(cfg->root, sizeof(cfg->root), "%s", val);
	} else if (hc_streq(key, HC_BOOT_KEY_CHANNEL)) {
		if (!hc_streq(val, "serial") && !hc_streq(val, "vsock"))
			return bad(msg, msglen, "%s=%s: want serial or vsock", key, val);
		snprintf(cfg->channel, sizeof(cfg->channel), "%s", val);
	} else if (hc_streq(key, HC_BOOT_KEY_VOLUME)) {
		return parse_volume(val, cfg, msg, msglen);
	} else if (hc_streq(key, HC_BOOT_KEY_ROOT_RW)) {
		cfg->root_rw = hc_streq(val, "1");
	} else if (hc_streq(key, HC_BOOT_KEY_ROOT_RO)) {
		cfg->root_ro = hc_streq(val, "1");
	} else if (hc_streq(key, HC_BOOT_KEY_DEBUG)) {
		cfg->debug = hc_streq(val, "1");
	} else if (hc_streq(key, HC_BOOT_KEY_IP)) {
		char a[INET_ADDRSTRLEN];
		const char *slash = strchr(val, '/');
		char *end;
		unsigned long pfx;

		if (!slash || (size_t)(slash - val) >= sizeof(a))
			return bad(msg, msglen, "%s=%s: want A.B.C.D/N", key, val);
		memcpy(a, val, (size_t)(slash - val));
		a[slash - val] = 0;
		errno = 0;
		pfx = strtoul(slash + 1, &end, 10);
		if (inet_pton(AF_INET, a, &cfg->ip) != 1 || errno || end == slash + 1 || *end ||
		    pfx < 1 || pfx > 32)
			return bad(msg, msglen, "%s=%s: want A.B.C.D/N", key, val);
		cfg->prefix = (unsigned)pfx;
	} else if (hc_streq(key, HC_BOOT_KEY_GATEWAY) || hc_streq(key, HC_BOOT_KEY_DNS)) {
		uint32_t *dst = hc_streq(key, HC_BOOT_KEY_GATEWAY) ? &cfg->gw : &cfg->dns;

		if (inet_pton(AF_INET, val, dst) != 1)
			return bad(msg, msglen, "%s=%s: want an IPv4 address", key, val);
	} else if (hc_streq(key, HC_BOOT_KEY_MTU)) {
		char *end;
		unsigned long m;

		errno = 0;
		m = strtoul(val, &end, 10);
		if (errno || end == val || *end || m < 68 || m > 65535)
			return bad(msg, msglen, "%s=%s: want 68..65535", key, val);
		cfg->mtu = (unsigned)m;
	} else if (hc_streq(key, HC_BOOT_KEY_HOSTNAME)) {
		size_t n = strlen(val);
		if (n == 0 || n >= sizeof(cfg->hostname) ||
		    strspn(val,
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != n)
			return bad(msg, msglen, "bad hostname `%s`", val);
		snprintf(cfg->hostname, sizeof(cfg->hostname), "%s", val);
	} else if (hc_streq(key, HC_BOOT_KEY_HOST)) {
		const char *colon = strchr(val, ':');
		size_t n = colon ? (size_t)(colon - val) : 0;
		unsigned char bin[16];

		if (cfg->nhosts >= HC_BOOT_MAX_HOSTS)
			return bad(msg, msglen, "more than %d %s", HC_BOOT_MAX_HOSTS, key);
		if (n == 0 || n >= sizeof(cfg->hosts[0].name) ||
		    strspn(val,
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
			    n ||
		    strlen(colon + 1) >= sizeof(cfg->hosts[0].ip) ||
		    (inet_pton(AF_INET, colon + 1, bin) != 1 &&
		     inet_pton(AF_INET6, colon + 1, bin) != 1))
			return bad(msg, msglen, "%s=%s: want NAME:IP", key, val);
		snprintf(cfg->hosts[cfg->nhosts].name, sizeof(cfg->hosts[0].name), "%.*s", (int)n,
			 val);
		snprintf(cfg->hosts[cfg->nhosts].ip, sizeof(cfg->hosts[0].ip), "%s", colon + 1);
		cfg->nhosts++;
	} else if (hc_streq(key, HC_BOOT_KEY_TMPFS)) {
		size_t n = strcspn(val, ":");
		const char *opts = val[n] ? val + n + 1 : "";

		if (cfg->ntmpfs >= HC_BOOT_MAX_TMPFS)
			return bad(msg, msglen, "more than %d %s", HC_BOOT_MAX_TMPFS, key);
		if (val[0] != '/' || n >= sizeof(cfg->tmpfs[0].path) ||
		    strspn(val,
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+"
			   "@") != n ||
		    strlen(opts) >= sizeof(cfg->tmpfs[0].opts))
			return bad(msg, msglen, "%s=%s: want /PATH[:OPTS]", key, val);
		snprintf(cfg->tmpfs[cfg->ntmpfs].path, sizeof(cfg->tmpfs[0].path), "%.*s", (int)n,
			 val);
		snprintf(cfg->tmpfs[cfg->ntmpfs].opts, sizeof(cfg->tmpfs[0].opts), "%s", opts);
		cfg->ntmpfs++;
	} else if (hc_streq(key, HC_BOOT_KEY_NAMESERVER)) {
		unsigned char bin[16];

		if (cfg->nnameservers >= HC_BOOT_MAX_NAMESERVERS)
			return bad(msg, msglen, "more than %d %s", HC_BOOT_MAX_NAMESERVERS, key);
		if (strlen(val) >= sizeof(cfg->nameservers[0]) ||
		    (inet_pton(AF_INET, val, bin) != 1 && inet_pton(AF_INET6, val, bin) != 1))
			return bad(msg, msglen, "%s=%s: want an IP address", key, val);
		snprintf(cfg->nameservers[cfg->nnameservers++], sizeof(cfg->nameservers[0]), "%s",
			 val);
	}
	return 0;
}

static void cfg_init(struct guest_boot_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->hostname, sizeof(cfg->hostname), "hotcell");
}

/* The keys of a command line, on top of what cfg holds. */
static int parse_words(const char *cmdline, struct guest_boot_cfg *cfg, char *msg, size_t msglen)
{
	const char *p = cmdline;

	while (*p) {
		char word[PATH_MAX * 3 + 64];
		size_t n = 0;
		bool quoted = false;
		int r;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		/* The kernel's rule (lib/cmdline.c next_arg): double quotes group, and are
		 * dropped. */
		for (; *p && (quoted || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
			if (*p == '"') {
				quoted = !quoted;
				continue;
			}
			if (n + 1 < sizeof(word))
				word[n++] = *p;
		}
		word[n] = 0;
		/* Everything after "--" belongs to init's argv, not to us. */
		if (hc_streq(word, "--"))
			break;
		char *eq = strchr(word, '=');
		if (!eq || !hc_startswith(word, "hotcell."))
			continue;
		*eq = 0;
		r = set_key(cfg, word, eq + 1, msg, msglen);
		if (r < 0)
			return r;
	}
	return 0;
}

int guest_boot_parse_cmdline(const char *cmdline, struct guest_boot_cfg *cfg, char *msg,
			     size_t msglen)
{
	cfg_init(cfg);
	return parse_words(cmdline, cfg, msg, msglen);
}

/* libkrun passes no command line to its workload: the same keys come as variables. */
static int parse_env(struct guest_boot_cfg *cfg, char *msg, size_t msglen)
{
	const char *v;
	int r;

	cfg_init(cfg);
	if ((v = getenv(HC_BOOT_ENV_ROOT)) &&
	    (r = set_key(cfg, HC_BOOT_KEY_ROOT, v, msg, msglen)) < 0)
		return r;
	if ((v = getenv(HC_BOOT_ENV_CHANNEL)) &&
	    (r = set_key(cfg, HC_BOOT_KEY_CHANNEL, v, msg, msglen)) < 0)
		return r;
	if ((v = getenv(HC_BOOT_ENV_DEBUG)))
		cfg->debug = hc_streq(v, "1");
	if ((v = getenv(HC_BOOT_ENV_HOSTNAME)) &&
	    (r = set_key(cfg, HC_BOOT_KEY_HOSTNAME, v, msg, msglen)) < 0)
		return r;
	for (int i = 0; i < GUEST_MAX_VOLUMES; i++) {
		char name[32];

		snprintf(name, sizeof(name), "%s%d", HC_BOOT_ENV_VOLUME_PREFIX, i);
		if (!(v = getenv(name)))
			break;
		r = parse_volume(v, cfg, msg, msglen);
		if (r < 0)
			return r;
	}
	/* Everything else the host would put on a command line (--hostname, --add-host,
	 * --read-only, --tmpfs, --dns, ...): one variable, parsed as one. */
	if ((v = getenv(HC_BOOT_ENV_CMDLINE)))
		return parse_words(v, cfg, msg, msglen);
	return 0;
}

/* ---- mounts ---- */

int guest_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;

			*p = 0;
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

/* A mount point has another device than its parent. */
static bool is_mountpoint(const char *path)
{
	char parent[PATH_MAX];
	struct stat a, b;

	snprintf(parent, sizeof(parent), "%s/..", path);
	return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

static int do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
		    const char *data, char *msg, size_t msglen)
{
	int r = guest_mkdir_p(dst, 0755);

	if (r < 0)
		return fail(msg, msglen, r, "mkdir %s", dst);
	if (mount(src, dst, type, flags, data) < 0)
		return fail(msg, msglen, -errno, "mount %s (%s) on %s", src,
			    type ? type : "bind/move", dst);
	guest_dbg("mounted %s on %s", src, dst);
	return 0;
}

static int mount_if_missing(const char *src, const char *dst, const char *type, unsigned long flags,
			    const char *data, char *msg, size_t msglen)
{
	if (is_mountpoint(dst))
		return 0;
	return do_mount(src, dst, type, flags, data, msg, msglen);
}

static int mount_basics(char *msg, size_t msglen)
{
	int r;

	if ((r = mount_if_missing("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
				  msg, msglen)) < 0 ||
	    (r = mount_if_missing("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
				  msg, msglen)) < 0 ||
	    (r = mount_if_missing("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", msg,
				  msglen)) < 0 ||
	    (r = mount_if_missing("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
				  "mode=0620,ptmxmode=0666,gid=5", msg, msglen)) < 0 ||
	    (r = mount_if_missing("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777",
				  msg, msglen)) < 0)
		return r;
	/* What udev would make and programs expect (bash's <(...), /dev/stdin). */
	static const char *const links[][2] = {{"/proc/self/fd", "/dev/fd"},
					       {"/proc/self/fd/0", "/dev/stdin"},
					       {"/proc/self/fd/1", "/dev/stdout"},
					       {"/proc/self/fd/2", "/dev/stderr"},
					       {"pts/ptmx", "/dev/ptmx"}};
	for (size_t i = 0; i < HC_ARRAY_SIZE(links); i++)
		if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
			guest_dbg("symlink %s: %m", links[i][1]);
	return 0;
}

/* podman's --tmpfs: rw,noexec,nosuid,nodev, then the user's options: the flags in the mount
 * flags, the rest (size=, mode=, ...) as tmpfs's data. */
static int mount_tmpfs(const char *path, const char *opts, char *msg, size_t msglen)
{
	static const struct {
		const char *name;
		unsigned long set, clear;
	} flags[] = {
		{"ro", MS_RDONLY, 0},	  {"rw", 0, MS_RDONLY},	  {"exec", 0, MS_NOEXEC},
		{"noexec", MS_NOEXEC, 0}, {"suid", 0, MS_NOSUID}, {"nosuid", MS_NOSUID, 0},
		{"dev", 0, MS_NODEV},	  {"nodev", MS_NODEV, 0},
	};
	unsigned long mf = MS_NOEXEC | MS_NOSUID | MS_NODEV;
	char copy[256], data[256] = "", *save = NULL;
	size_t n = 0;

	snprintf(copy, sizeof(copy), "%s", opts);
	for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		bool flag = false;

		for (size_t i = 0; i < HC_ARRAY_SIZE(flags) && !flag; i++) {
			if (hc_streq(o, flags[i].name)) {
				mf = (mf | flags[i].set) & ~flags[i].clear;
				flag = true;
			}
		}
		if (!flag && n < sizeof(data))
			n += (size_t)snprintf(data + n, sizeof(data) - n, "%s%s", n ? "," : "", o);
	}
	return do_mount("tmpfs", path, "tmpfs", mf, data[0] ? data : NULL, msg, msglen);
}

static int read_cmdline(char *buf, size_t len)
{
	_cleanup_close_ int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* devtmpfs creates the node when the driver registers the disk; the probe may still be
 * running when init starts, so wait for it, boundedly. */
static int wait_for_path(const char *path)
{
	for (int t = 0; t < HC_BOOT_DEVICE_WAIT_MS; t += 10) {
		if (access(path, F_OK) == 0)
			return 0;
		sleep_ms(10);
	}
	return -ETIMEDOUT;
}

static int mount_image(const struct guest_boot_cfg *cfg, char *msg, size_t msglen)
{
	int r;

	if (hc_streq(cfg->root, "virtiofs"))
		return do_mount(HC_BOOT_TAG_ROOTFS, LOWER, "virtiofs", MS_RDONLY, NULL, msg,
				msglen);
	r = wait_for_path(HC_BOOT_BLOCK_DEVICE);
	if (r < 0)
		return fail(msg, msglen, r, "block device %s did not appear", HC_BOOT_BLOCK_DEVICE);
	r = do_mount(HC_BOOT_BLOCK_DEVICE, LOWER, "ext4", MS_RDONLY, NULL, msg, msglen);
	/* A journal that wants replay cannot be replayed on a read-only disk: skip it. */
	if (r == -EROFS || r == -EINVAL)
		r = do_mount(HC_BOOT_BLOCK_DEVICE, LOWER, "ext4", MS_RDONLY, "noload", msg, msglen);
	return r;
}

/* Moves (as PID 1) or binds (under another init, which keeps its own) a mount into the new
 * root. */
static int carry_mount(bool pid1, const char *path, char *msg, size_t msglen)
{
	char dst[PATH_MAX];

	snprintf(dst, sizeof(dst), NEWROOT "%s", path);
	return do_mount(path, dst, NULL, pid1 ? MS_MOVE : MS_BIND | MS_REC, NULL, msg, msglen);
}

static void loopback_up(void)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};

	if (fd < 0)
		return;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		guest_dbg("lo up: %m");
}

int guest_boot_setup(bool pid1, struct guest_boot_cfg *cfg, char *msg, size_t msglen)
{
	char cmdline[8192];
	int r;

	/* /proc first: the command line says whether to log each step. */
	r = mount_if_missing("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, msg,
			     msglen);
	if (r < 0)
		return r;
	if (!pid1 && getenv(HC_BOOT_ENV_ROOT)) {
		r = parse_env(cfg, msg, msglen);
	} else {
		r = read_cmdline(cmdline, sizeof(cmdline));
		if (r < 0)
			return fail(msg, msglen, r, "read /proc/cmdline");
		r = guest_boot_parse_cmdline(cmdline, cfg, msg, msglen);
	}
	if (r < 0)
		return r;
	guest_debug = guest_debug || cfg->debug;
	guest_dbg("boot: root=%s channel=%s volumes=%zu", cfg->root, cfg->channel, cfg->nvols);
	r = mount_basics(msg, msglen);
	if (r < 0)
		return r;
	if (!cfg->root[0])
		return bad(msg, msglen, "%s= missing from the kernel command line",
			   HC_BOOT_KEY_ROOT);
	if (!cfg->channel[0])
		return bad(msg, msglen, "%s= missing from the kernel command line",
			   HC_BOOT_KEY_CHANNEL);

	/* Our moves must not propagate anywhere (and MS_MOVE refuses shared parents). */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		guest_dbg("make / private: %m");

	if (cfg->root_rw && hc_streq(cfg->root, "virtiofs")) {
		/* --rootfs-rw: the shared directory is the root, writes land in it. */
		r = do_mount(HC_BOOT_TAG_ROOTFS, NEWROOT, "virtiofs", 0, NULL, msg, msglen);
		if (r < 0)
			return r;
		goto api_fs;
	}
	/* The image, read-only; a tmpfs for everything the guest writes; the overlay. */
	r = mount_image(cfg, msg, msglen);
	if (r < 0)
		return r;
	r = do_mount("hotcell-rw", RW, "tmpfs", 0, "mode=0755,size=50%", msg, msglen);
	if (r < 0)
		return r;
	if ((r = guest_mkdir_p(RW "/upper", 0755)) < 0 || (r = guest_mkdir_p(RW "/work", 0755)) < 0)
		return fail(msg, msglen, r, "mkdir in %s", RW);
	r = do_mount("overlay", NEWROOT, "overlay", 0,
		     "lowerdir=" LOWER ",upperdir=" RW "/upper,workdir=" RW "/work", msg, msglen);
	if (r < 0)
		return r;
api_fs:

	/* The API filesystems go along into the new root. */
	if ((r = carry_mount(pid1, "/dev", msg, msglen)) < 0 ||
	    (r = carry_mount(pid1, "/proc", msg, msglen)) < 0 ||
	    (r = carry_mount(pid1, "/sys", msg, msglen)) < 0)
		return r;

	/* switch_root: move the new root over "/" and enter it. */
	if (chdir(NEWROOT) < 0)
		return fail(msg, msglen, -errno, "chdir %s", NEWROOT);
	if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
		return fail(msg, msglen, -errno, "move %s to /", NEWROOT);
	if (chroot(".") < 0)
		return fail(msg, msglen, -errno, "chroot");
	if (chdir("/") < 0)
		return fail(msg, msglen, -errno, "chdir /");

	/* Inside the new root, so an image's symlinks resolve within it. */
	for (size_t i = 0; i < cfg->nvols; i++) {
		const struct guest_volume *v = &cfg->vols[i];

		r = do_mount(v->tag, v->path, "virtiofs", v->ro ? MS_RDONLY : 0, NULL, msg, msglen);
		if (r < 0)
			return fail(msg, msglen, r, "volume %s on %s", v->tag, v->path);
	}
	for (size_t i = 0; i < cfg->ntmpfs; i++) {
		r = mount_tmpfs(cfg->tmpfs[i].path, cfg->tmpfs[i].opts, msg, msglen);
		if (r < 0)
			return r;
	}
	/* /hotcell holds result.json, written by whatever user the command runs as; a
	 * read-write root is the user's directory: nothing is added to it. */
	if (!cfg->root_rw &&
	    ((r = guest_mkdir_p("/hotcell", 0755)) < 0 || chmod("/hotcell", 01777) < 0))
		return fail(msg, msglen, r < 0 ? r : -errno, "create /hotcell");
	/* An image without /tmp gets one; an odd one (a dangling symlink) is the image's. */
	if (!cfg->root_rw && access("/tmp", F_OK) < 0 &&
	    (mkdir("/tmp", 0755) < 0 || chmod("/tmp", 01777) < 0))
		guest_log("cannot create /tmp: %m");
	if (sethostname(cfg->hostname, strlen(cfg->hostname)) < 0)
		guest_dbg("sethostname: %m");
	loopback_up();
	guest_dbg("root switched");
	r = guest_net_setup(cfg, msg, msglen);
	if (r < 0)
		return r;
	r = guest_hosts_setup(cfg, msg, msglen);
	if (r >= 0)
		r = guest_dns_setup(cfg, msg, msglen);
	if (r < 0 || !cfg->root_ro)
		return r;
	/* --read-only, as podman: the scratch directories stay writable (fresh tmpfs), then the
	 * root's own mount turns read-only (/dev and volumes are mounts of their own). */
	static const char *const scratch[] = {"/tmp", "/run", "/var/tmp", "/hotcell"};
	for (size_t i = 0; i < HC_ARRAY_SIZE(scratch); i++) {
		bool users = false; /* the user's --tmpfs there stays */

		for (size_t k = 0; k < cfg->ntmpfs && !users; k++)
			users = hc_streq(cfg->tmpfs[k].path, scratch[i]);
		if (users)
			continue;
		r = do_mount("tmpfs", scratch[i], "tmpfs", MS_NOSUID | MS_NODEV,
			     i == 1 ? "mode=0755" : "mode=1777", msg, msglen);
		if (r < 0)
			return r;
	}
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
		return fail(msg, msglen, -errno, "remount / read-only");
	return 0;
}

/* ---- the channel ---- */

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* The /dev node of the virtio-serial port named HC_BOOT_SERIAL_PORT, if it is there yet. */
static bool find_serial_port(char *ret, size_t retlen)
{
	_cleanup_(closedirp) DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[PATH_MAX], name[128];
		_cleanup_close_ int fd = -1;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, name, sizeof(name) - 1);
		if (n <= 0)
			continue;
		name[n] = 0;
		name[strcspn(name, "\n")] = 0;
		if (hc_streq(name, HC_BOOT_SERIAL_PORT)) {
			snprintf(ret, retlen, "/dev/%s", de->d_name);
			return true;
		}
	}
	return false;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int open_serial(struct guest_agent_opts *o, char *msg, size_t msglen)
{
	char dev[PATH_MAX];
	struct hc_buf b = HC_BUF_INIT(0);
	struct hc_proto_hello h = {.version = HC_PROTO_VERSION};
	struct timespec ts;
	int fd, r, t;

	for (t = 0; t < HC_BOOT_DEVICE_WAIT_MS && !find_serial_port(dev, sizeof(dev)); t += 10)
		sleep_ms(10);
	if (t >= HC_BOOT_DEVICE_WAIT_MS)
		return fail(msg, msglen, -ENODEV, "no virtio-serial port named %s",
			    HC_BOOT_SERIAL_PORT);
	if (wait_for_path(dev) < 0)
		return fail(msg, msglen, -ENODEV, "%s did not appear", dev);
	fd = open(dev, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail(msg, msglen, -errno, "open %s", dev);
	/* Blocking: a port's write waits until the host end is connected, and a hangup before
	 * that means nothing; after the hello, a hangup means the host went away. */
	clock_gettime(CLOCK_BOOTTIME, &ts);
	h.boot_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	snprintf(h.agent, sizeof(h.agent), "%s", GUEST_AGENT_VERSION);
	r = hc_proto_hello_encode(&b, &h);
	if (r >= 0)
		r = write_all(fd, b.data, b.len);
	hc_buf_free(&b);
	if (r < 0) {
		close(fd);
		return fail(msg, msglen, r, "send hello on %s", dev);
	}
	guest_dbg("channel: %s", dev);
	o->kind = GUEST_CHAN_SERIAL;
	o->chan_fd = fd;
	o->listen_fd = -1;
	return 0;
}

static int open_vsock(struct guest_agent_opts *o, char *msg, size_t msglen)
{
	struct sockaddr_vm lsa = {.svm_family = AF_VSOCK,
				  .svm_cid = VMADDR_CID_ANY,
				  .svm_port = HC_BOOT_VSOCK_PORT_LISTEN};
	struct sockaddr_vm csa = {.svm_family = AF_VSOCK,
				  .svm_cid = VMADDR_CID_HOST,
				  .svm_port = HC_BOOT_VSOCK_PORT_CONNECT};
	int lfd, fd = -1, e = 0;
	struct timespec t0, now;

	lfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return fail(msg, msglen, -errno, "vsock socket");
	if (bind(lfd, (struct sockaddr *)&lsa, sizeof(lsa)) < 0 || listen(lfd, 4) < 0) {
		e = -errno;
		close(lfd);
		return fail(msg, msglen, e, "vsock listen on port %d", HC_BOOT_VSOCK_PORT_LISTEN);
	}
	/* Connect out; the host may instead (or also) connect in on the listening port. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};

		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&csa, sizeof(csa)) == 0)
			break;
		e = -errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
		if (poll(&p, 1, 50) == 1) {
			fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >
		    HC_BOOT_DEVICE_WAIT_MS) {
			close(lfd);
			return fail(msg, msglen, e, "vsock connect to CID %d port %d",
				    VMADDR_CID_HOST, HC_BOOT_VSOCK_PORT_CONNECT);
		}
	}
	guest_dbg("channel: vsock");
	o->kind = GUEST_CHAN_VSOCK;
	o->chan_fd = fd;
	o->listen_fd = lfd;
	return 0;
}

int guest_boot_channel(const struct guest_boot_cfg *cfg, struct guest_agent_opts *o, char *msg,
		       size_t msglen)
{
	if (hc_streq(cfg->channel, "serial"))
		return open_serial(o, msg, msglen);
	return open_vsock(o, msg, msglen);
}
