/* SPDX-License-Identifier: MIT */
/*
 * A test double of Firecracker's `jailer` (docs/jailer.md, v1.10), so the driver's --jailer
 * path runs here: it parses the jailer's command line strictly, then takes the jailer's steps
 * in order: chroot <chroot-base-dir>/<exec-file name>/<id>/root, a copy of the exec file in
 * it, a private mount namespace, /dev/kvm (and friends) as nodes owned by --uid/--gid,
 * chroot, drop to --uid/--gid (after joining --netns when given), exec the copy with --id, the
 * start-time arguments and the arguments after "--". Not daemonized unless --daemonize (which the
 * driver must not pass).
 *
 * One liberty, because the Firecracker double is dynamically linked: the host's /usr is bound
 * read-only into the chroot inside the private mount namespace (gone when the process ends),
 * with lib, lib64 and bin as symlinks (and /var/cache/hotcell-tools, where the test machine keeps
 * vhost-device-vsock, which the double runs the guest with). HOTCELL_FC_DOUBLE_LOG gets a "JAILER <args>" line, and
 * is handed to the Firecracker double as an inherited fd, since the path is outside the chroot.
 */
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "core/util.h"

static void die(int code, const char *fmt, ...) _printf_(2, 3);
static void die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void mkdirs(const char *path, mode_t mode)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, mode) < 0 && errno != EEXIST)
				die(1, "jailer: mkdir %s: %s", tmp, strerror(errno));
			*p = '/';
		}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		die(1, "jailer: mkdir %s: %s", tmp, strerror(errno));
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	char buf[65536];
	ssize_t n;

	if (in < 0)
		die(1, "jailer: open %s: %s", from, strerror(errno));
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (out < 0)
		die(1, "jailer: create %s: %s", to, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			die(1, "jailer: write %s", to);
	close(in);
	close(out);
}

static unsigned parse_id(const char *name, const char *v)
{
	char *end;
	unsigned long x = strtoul(v, &end, 10);

	if (!*v || *end || x > 0xfffffffful)
		die(1, "Invalid %s: %s", name, v);
	return (unsigned)x;
}

int main(int argc, char **argv)
{
	const char *id = NULL, *exec_file = NULL, *uid_s = NULL, *gid_s = NULL;
	const char *base = "/srv/jailer", *cgv = "1", *netns = NULL;
	char root[4096], path[4096], exec_name[256];
	const char *extra[64];
	size_t n_extra = 0;
	unsigned uid, gid;
	int i, logfd = -1;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			for (i++; i < argc && n_extra < 60; i++)
				extra[n_extra++] = argv[i];
			break;
		}
		if (!strcmp(a, "--version")) {
			printf("Jailer v1.10.1\n");
			return 0;
		}
		if (!strcmp(a, "--daemonize"))
			die(1, "jailer double: --daemonize is not supported (hotcell must keep the "
			       "child)");
		if (!strcmp(a, "--new-pid-ns"))
			continue;
		if (i + 1 >= argc)
			die(1, "Arguments parsing error: '%s' needs a value", a);
		if (!strcmp(a, "--id"))
			id = argv[++i];
		else if (!strcmp(a, "--exec-file"))
			exec_file = argv[++i];
		else if (!strcmp(a, "--uid"))
			uid_s = argv[++i];
		else if (!strcmp(a, "--gid"))
			gid_s = argv[++i];
		else if (!strcmp(a, "--chroot-base-dir"))
			base = argv[++i];
		else if (!strcmp(a, "--cgroup-version"))
			cgv = argv[++i];
		else if (!strcmp(a, "--netns"))
			netns = argv[++i];
		else if (!strcmp(a, "--cgroup") || !strcmp(a, "--parent-cgroup") ||
			 !strcmp(a, "--resource-limit"))
			i++;
		else
			die(1,
			    "Arguments parsing error: Found argument '%s' which wasn't expected, "
			    "or isn't valid in this context.",
			    a);
	}
	if (!id || !exec_file || !uid_s || !gid_s)
		die(1, "Arguments parsing error: --id, --exec-file, --uid and --gid are required");
	if (strlen(id) > 64 || strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					  "0123456789-") != strlen(id))
		die(1, "Invalid instance ID: %s", id);
	if (strcmp(cgv, "1") && strcmp(cgv, "2"))
		die(1, "Invalid cgroup version: %s", cgv);
	uid = parse_id("uid", uid_s);
	gid = parse_id("gid", gid_s);
	snprintf(exec_name, sizeof(exec_name), "%s",
		 strrchr(exec_file, '/') ? strrchr(exec_file, '/') + 1 : exec_file);
	if (!strstr(exec_name, "firecracker"))
		die(1, "Invalid filename. The file name needs to include `firecracker`");
	if (access(exec_file, X_OK) < 0)
		die(1, "Failed to canonicalize path %s: %s", exec_file, strerror(errno));

	if (getenv("HOTCELL_FC_DOUBLE_LOG")) {
		FILE *f = fopen(getenv("HOTCELL_FC_DOUBLE_LOG"), "ae");

		if (f) {
			fprintf(f, "JAILER");
			for (int k = 1; k < argc; k++)
				fprintf(f, " %s", argv[k]);
			fprintf(f, "\n");
			fclose(f);
		}
		logfd = open(getenv("HOTCELL_FC_DOUBLE_LOG"), O_WRONLY | O_APPEND);
		if (logfd >= 0) {
			char v[16];
			snprintf(v, sizeof(v), "%d", logfd);
			setenv("HOTCELL_FC_DOUBLE_LOG_FD", v, 1);
		}
	}

	snprintf(root, sizeof(root), "%s/%s/%s/root", base, exec_name, id);
	mkdirs(root, 0755);
	snprintf(path, sizeof(path), "%s/%s", root, exec_name);
	copy_file(exec_file, path);
	if (chown(path, uid, gid) < 0)
		die(1, "jailer: chown %s: %s", path, strerror(errno));

	/* --netns: joined before the jail is built (docs/jailer.md, "Jailer Operation"). */
	if (netns) {
		int nfd = open(netns, O_RDONLY | O_CLOEXEC);

		if (nfd < 0 || setns(nfd, CLONE_NEWNET) < 0)
			die(1, "Failed to join the network namespace %s: %s", netns,
			    strerror(errno));
		close(nfd);
	}
	if (unshare(CLONE_NEWNS) < 0)
		die(1, "jailer: unshare(CLONE_NEWNS): %s", strerror(errno));
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		die(1, "jailer: make / a slave: %s", strerror(errno));
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		die(1, "jailer: bind %s: %s", root, strerror(errno));
	/* The double's liberty: its shared libraries (see the top comment). */
	snprintf(path, sizeof(path), "%s/usr", root);
	mkdirs(path, 0755);
	if (mount("/usr", path, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
		die(1, "jailer: bind /usr: %s", strerror(errno));
	/* The same liberty for the programs the Firecracker double runs the guest with when they
	 * are not under /usr (the test machine's vhost-device-vsock). */
	static const char tools[] = "/var/cache/hotcell-tools";
	if (access(tools, F_OK) == 0) {
		snprintf(path, sizeof(path), "%s%s", root, tools);
		mkdirs(path, 0755);
		if (mount(tools, path, NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
			die(1, "jailer: bind %s: %s", tools, strerror(errno));
	}
	static const char *const links[][2] = {
		{"usr/lib", "lib"}, {"usr/lib64", "lib64"}, {"usr/bin", "bin"}};
	for (size_t k = 0; k < HC_ARRAY_SIZE(links); k++) {
		snprintf(path, sizeof(path), "%s/%s", root, links[k][1]);
		if (symlink(links[k][0], path) < 0 && errno != EEXIST)
			die(1, "jailer: symlink %s: %s", path, strerror(errno));
	}
	/* The device nodes Firecracker uses, owned by the jailed user (docs/jailer.md). */
	snprintf(path, sizeof(path), "%s/dev/net", root);
	mkdirs(path, 0755);
	static const struct {
		const char *name;
		unsigned maj, min;
	} devs[] = {{"dev/kvm", 10, 232}, {"dev/net/tun", 10, 200}, {"dev/urandom", 1, 9}};
	for (size_t k = 0; k < HC_ARRAY_SIZE(devs); k++) {
		snprintf(path, sizeof(path), "%s/%s", root, devs[k].name);
		if (mknod(path, S_IFCHR | 0600, makedev(devs[k].maj, devs[k].min)) < 0 &&
		    errno != EEXIST)
			die(1, "jailer: mknod %s: %s", path, strerror(errno));
		if (chown(path, uid, gid) < 0)
			die(1, "jailer: chown %s: %s", path, strerror(errno));
	}
	if (chroot(root) < 0 || chdir("/") < 0)
		die(1, "jailer: chroot %s: %s", root, strerror(errno));
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		die(1, "jailer: drop privileges: %s", strerror(errno));

	char exec_path[300], t_us[32], t_cpu[32];
	struct timespec ts;
	const char *nargv[80];
	size_t n = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(t_us, sizeof(t_us), "%lld", (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	snprintf(t_cpu, sizeof(t_cpu), "%lld", (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	snprintf(exec_path, sizeof(exec_path), "/%s", exec_name);
	nargv[n++] = exec_path;
	nargv[n++] = "--id";
	nargv[n++] = id;
	nargv[n++] = "--start-time-us";
	nargv[n++] = t_us;
	nargv[n++] = "--start-time-cpu-us";
	nargv[n++] = t_cpu;
	for (size_t k = 0; k < n_extra; k++)
		nargv[n++] = extra[k];
	nargv[n] = NULL;
	execv(exec_path, (char *const *)nargv);
	die(1, "jailer: exec %s: %s", exec_path, strerror(errno));
}
