/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the unit tests that drive a VMM double (test-vmm-firecracker.c,
 * test-vmm-cloud-hypervisor.c): the double's request log, our child processes, what a failed
 * start leaves behind, and the end-to-end cases' guest (the test init tests/e2e/vm-testinit.c
 * in a generated initramfs, spoken to one line at a time). Include after test.h.
 */
#pragma once

#include <glob.h>
#include <poll.h>

#include "core/child.h"
#include "core/owner.h"
#include "core/path.h"

static inline void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "we");

	if (f) {
		fwrite(data, 1, len, f);
		fclose(f);
	}
}

/* The whole file (1 MiB at most), "" when it cannot be read; caller frees. */
static inline char *read_log_file(const char *path)
{
	struct hc_error e = {0};
	char *s = NULL;
	size_t n;

	if (hc_path_read_file(path, 1 << 20, &s, &n, &e) < 0)
		return strdup("");
	return s;
}

/* The request lines of a double's log ("METHOD PATH STATUS"), without bodies, joined with
 * ';'. */
static inline void log_file_summary(const char *path, char *out, size_t n)
{
	char *s = read_log_file(path);
	size_t o = 0;

	out[0] = '\0';
	for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
		char m[16], p[128], st[16];

		if (sscanf(line, "%15s %127s %15s", m, p, st) != 3 || !strcmp(m, "START") ||
		    !strcmp(m, "JAIL"))
			continue;
		o += (size_t)snprintf(out + o, n - o, "%s%s %s %s", o ? ";" : "", m, p, st);
		if (o >= n)
			break;
	}
	free(s);
}

/* How many of our own children (the parent pid in /proc/<pid>/stat is ours) run an executable
 * whose path contains exe; *ret_pid (may be NULL) gets one of them. */
static inline int children_running_pid(const char *exe, pid_t *ret_pid)
{
	glob_t g;
	int count = 0;

	if (glob("/proc/[0-9]*/exe", GLOB_NOSORT, NULL, &g) != 0)
		return 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char target[HC_PATH_MAX], st[HC_PATH_MAX], buf[512];
		ssize_t k = readlink(g.gl_pathv[i], target, sizeof(target) - 1);
		int p, ppid = 0;

		if (k <= 0)
			continue;
		target[k] = '\0';
		if (!strstr(target, exe) || sscanf(g.gl_pathv[i], "/proc/%d/", &p) != 1)
			continue;
		snprintf(st, sizeof(st), "/proc/%d/stat", p);
		FILE *f = fopen(st, "re");
		if (f && fgets(buf, sizeof(buf), f)) {
			char *rp = strrchr(buf, ')');
			if (rp)
				sscanf(rp + 2, "%*c %d", &ppid);
		}
		if (f)
			fclose(f);
		if (ppid == getpid()) {
			count++;
			if (ret_pid)
				*ret_pid = p;
		}
	}
	globfree(&g);
	return count;
}

/* Nothing but the console log and the owner file (core/owner.h), which hc_vm_free removes with
 * the directory. */
static inline bool dir_empty_but_console(const char *dir)
{
	glob_t g;
	bool ok = true;
	char pat[HC_PATH_MAX];

	snprintf(pat, sizeof(pat), "%s/*", dir);
	if (glob(pat, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			if (!strstr(g.gl_pathv[i], "console.log") &&
			    !strstr(g.gl_pathv[i], "/" HC_OWNER_FILE))
				ok = false;
		globfree(&g);
	}
	return ok;
}

/* The double's binary, $HOTCELL_TOP/$BUILD/tests/doubles/<name>, as an absolute path in buf
 * (HC_PATH_MAX bytes). false when it is not built. */
static inline bool find_double(const char *name, char *buf)
{
	const char *top = getenv("HOTCELL_TOP"), *build = getenv("BUILD");
	char p[HC_PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s/tests/doubles/%s", top ? top : ".", build ? build : "build",
		 name);
	return access(p, X_OK) == 0 && realpath(p, buf);
}

/* The boot files of the API-level cases in dir, into kernel, initrd and disk (HC_PATH_MAX bytes
 * each): any ELF file passes for a vmlinux (the doubles check the magic), the others only need
 * to exist. NULL, or why not. */
static inline const char *make_fake_boot_files(const char *dir, char *kernel, char *initrd,
					       char *disk)
{
	struct hc_error e = {0};
	char *elf = NULL;
	size_t len;

	snprintf(kernel, HC_PATH_MAX, "%s/vmlinux", dir);
	if (hc_path_read_file("/bin/true", 1 << 20, &elf, &len, &e) < 0)
		return "cannot read /bin/true";
	write_file(kernel, elf, len);
	free(elf);
	snprintf(initrd, HC_PATH_MAX, "%s/initrd", dir);
	write_file(initrd, "initrd", 6);
	snprintf(disk, HC_PATH_MAX, "%s/rootfs.ext4", dir);
	write_file(disk, "ext4", 4);
	return NULL;
}

/* ---- the end-to-end guest ------------------------------------------------------------------ */

/* An ELF vmlinux: $env, else $HOTCELL_TOP/$BUILD/kernel/vmlinux, else the kernel cache. */
static inline bool find_vmlinux(const char *env_name, char *buf, size_t n)
{
	const char *env = getenv(env_name), *top = getenv("HOTCELL_TOP"), *build = getenv("BUILD");
	glob_t g;

	if (env && access(env, R_OK) == 0) {
		snprintf(buf, n, "%s", env);
		return true;
	}
	snprintf(buf, n, "%s/%s/kernel/vmlinux", top ? top : ".", build ? build : "build");
	if (access(buf, R_OK) == 0)
		return true;
	if (glob("/var/cache/hotcell/kernel/*/vmlinux", 0, NULL, &g) == 0 && g.gl_pathc) {
		snprintf(buf, n, "%s", g.gl_pathv[g.gl_pathc - 1]);
		globfree(&g);
		return true;
	}
	return false;
}

/* newc cpio (Documentation/driver-api/early-userspace/buffer-format.rst). */
static inline void cpio_entry(FILE *f, const char *name, unsigned mode, unsigned rmaj,
			      unsigned rmin, const void *data, size_t len)
{
	static unsigned ino = 1;
	size_t namesize = strlen(name) + 1;

	fprintf(f, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ino++, mode, 0,
		0, 1, 0, len, 0, 0, rmaj, rmin, namesize, 0);
	fwrite(name, 1, namesize, f);
	for (size_t pad = (110 + namesize) % 4; pad && pad < 4; pad++)
		fputc(0, f);
	if (len) {
		fwrite(data, 1, len, f);
		for (size_t pad = len % 4; pad && pad < 4; pad++)
			fputc(0, f);
	}
}

/* Builds the static test init (tests/e2e/vm-testinit.c) into dir/init and an initramfs
 * holding it at dir/initramfs.cpio (path in initrd). 1 when cc -static cannot build it (the
 * caller skips), -errno with e filled on other failures. */
static inline int make_test_initramfs(const char *dir, char *initrd, size_t n, struct hc_error *e)
{
	const char *top = getenv("HOTCELL_TOP");
	char src[HC_PATH_MAX], init[HC_PATH_MAX];
	char *data = NULL;
	size_t len;
	FILE *f;
	int r;

	snprintf(src, sizeof(src), "%s/tests/e2e/vm-testinit.c", top ? top : ".");
	snprintf(init, sizeof(init), "%s/init", dir);
	const char *cc[] = {"cc", "-static", "-O2", "-o", init, src, NULL};
	if (hc_child_run(cc, 120000, 65536, NULL, e) != 0)
		return 1;
	r = hc_path_read_file(init, 16 << 20, &data, &len, e);
	if (r < 0)
		return r;
	snprintf(initrd, n, "%s/initramfs.cpio", dir);
	f = fopen(initrd, "we");
	if (!f) {
		free(data);
		return hc_error_errno(e, -errno, "create %s", initrd);
	}
	cpio_entry(f, "dev", 040755, 0, 0, NULL, 0);
	cpio_entry(f, "dev/console", 020600, 5, 1, NULL, 0);
	cpio_entry(f, "init", 0100755, 0, 0, data, len);
	cpio_entry(f, "TRAILER!!!", 0, 0, 0, NULL, 0);
	free(data);
	if (fclose(f) != 0)
		return hc_error_errno(e, -errno, "write %s", initrd);
	return 0;
}

/* One line from the test init, without its "\n". */
static inline int read_line(int fd, char *buf, size_t n, int timeout_ms)
{
	size_t i = 0;

	while (i + 1 < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char c;

		if (poll(&p, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		if (read(fd, &c, 1) != 1)
			return -EPIPE;
		if (c == '\n')
			break;
		buf[i++] = c;
	}
	buf[i] = '\0';
	return 0;
}

/* Sends one command line to the test init and returns its reply ("" on failure). */
static inline const char *cmd(int fd, const char *line, int timeout_ms)
{
	static char reply[512];

	reply[0] = '\0';
	if (write(fd, line, strlen(line)) < 0 || write(fd, "\n", 1) < 0)
		return "";
	if (read_line(fd, reply, sizeof(reply), timeout_ms) < 0)
		return "";
	return reply;
}
