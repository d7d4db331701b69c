/* SPDX-License-Identifier: MIT */
/*
 * cgroup limits per jailed process: memory, pids, cpu. On cgroup v1 (one hierarchy per
 * controller, as on this project's hosts) under /sys/fs/cgroup/<controller>/hotcell/, on v2
 * under /sys/fs/cgroup/hotcell/. A controller the host does not mount is skipped and said so
 * (hotcell doctor); one that is there but refuses a limit stops the start.
 * The process joins its cgroups itself, in the child, before any other jail step.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "jail/jail-internal.h"

#define CG_ROOT "/sys/fs/cgroup"

static const char *cg_root(void)
{
	const char *r = getenv("HOTCELL_CGROUP_ROOT"); /* tests point it elsewhere */
	return r && *r ? r : CG_ROOT;
}

/* Guest RAM is mapped by QEMU and charged to it; on top, what QEMU itself uses: under TCG
 * the translation cache and its own heap (a 256 MiB guest peaks at ~120 MiB RSS in all,
 * FACTS.md; the margin covers bigger guests' page tables and TCG's code buffer growth). */
unsigned long long hc_jail_memory_limit(enum hc_jail_kind kind, unsigned guest_mib)
{
	unsigned long long mib;

	switch (kind) {
	case HC_JAIL_QEMU:
	case HC_JAIL_CLOUD_HYPERVISOR:
	case HC_JAIL_LIBKRUN:
		mib = (unsigned long long)guest_mib + 384;
		break;
	case HC_JAIL_VIRTIOFSD:
		mib = 256; /* page cache of what it reads is charged here and reclaimed, not OOM */
		break;
	case HC_JAIL_VSOCKD:
	case HC_JAIL_N_KINDS:
	default:
		mib = 128;
		break;
	}
	return mib << 20;
}

static unsigned pids_limit(enum hc_jail_kind kind)
{
	/* Threads count: QEMU's vCPUs, RCU, I/O and worker pools; virtiofsd's pool of 64. */
	return kind == HC_JAIL_VSOCKD ? 64 : 512;
}

static int write_file(const char *dir, const char *name, const char *val, struct hc_error *err)
{
	char path[HC_PATH_MAX];
	int r = hc_path_fmt(path, sizeof(path), err, "%s/%s", dir, name);
	if (r < 0)
		return r;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return hc_error_errno(err, -errno, "jail: cgroup %s", path);
	ssize_t n = write(fd, val, strlen(val));
	int e = errno;
	close(fd);
	if (n != (ssize_t)strlen(val))
		return hc_error_errno(err, n < 0 ? -e : -EIO, "jail: cgroup %s=%s", path, val);
	return 0;
}

static int make_dir(struct hc_jail_vm *jv, const char *base, const char *name, char *out,
		    struct hc_error *err)
{
	char parent[HC_PATH_MAX];
	int r = hc_path_fmt(parent, sizeof(parent), err, "%s/hotcell", base);
	if (r < 0)
		return r;
	if (mkdir(parent, 0755) < 0 && errno != EEXIST)
		return hc_error_errno(err, -errno, "jail: cgroup %s", parent);
	if (jv->n_cgroups == HC_JAIL_MAX_CGROUPS)
		return hc_error_set(err, -E2BIG, "jail: too many cgroups for one VM");
	r = hc_path_fmt(out, HC_PATH_MAX, err, "%s/%s", parent, name);
	if (r < 0)
		return r;
	if (mkdir(out, 0755) < 0 && errno != EEXIST)
		return hc_error_errno(err, -errno, "jail: cgroup %s", out);
	snprintf(jv->cgroups[jv->n_cgroups++], HC_PATH_MAX, "%s", out);
	return 0;
}

static unsigned cpus_of(const struct hc_jail_vm *jv, enum hc_jail_kind kind)
{
	/* A VMM: its vCPUs plus one for its main loop; a helper: one. */
	bool vmm =
		kind == HC_JAIL_QEMU || kind == HC_JAIL_CLOUD_HYPERVISOR || kind == HC_JAIL_LIBKRUN;
	return vmm ? (jv->cpus ? jv->cpus : 1) + 1 : 1;
}

int hc_jail_cgroup_make(struct hc_jail_vm *jv, enum hc_jail_kind kind, unsigned n,
			char procs[HC_JAIL_CG_PROCS][HC_PATH_MAX], const char **why,
			struct hc_error *err)
{
	const char *root = cg_root();
	char name[64], dir[HC_PATH_MAX], base[HC_PATH_MAX], val[64];
	unsigned long long mem = hc_jail_memory_limit(kind, jv->memory_mib);
	unsigned quota = cpus_of(jv, kind) * 100000;
	int k = 0, r;
	struct stat st;

	*why = NULL;
	snprintf(name, sizeof(name), "%u-%s-%u", (unsigned)jv->uid, hc_jail_kind_name(kind), n);

	/* v2: one unified hierarchy at the root. */
	r = hc_path_fmt(base, sizeof(base), err, "%s/cgroup.controllers", root);
	if (r < 0)
		return r;
	if (stat(base, &st) == 0) {
		char parent[HC_PATH_MAX];
		r = hc_path_fmt(parent, sizeof(parent), err, "%s/hotcell", root);
		if (r < 0)
			return r;
		if (mkdir(parent, 0755) < 0 && errno != EEXIST)
			return hc_error_errno(err, -errno, "jail: cgroup %s", parent);
		/* Controllers must be enabled on the way down. */
		if ((r = write_file(root, "cgroup.subtree_control", "+memory +pids +cpu", err)) <
			    0 ||
		    (r = write_file(parent, "cgroup.subtree_control", "+memory +pids +cpu", err)) <
			    0)
			return r;
		if ((r = make_dir(jv, root, name, dir, err)) < 0)
			return r;
		snprintf(val, sizeof(val), "%llu", mem);
		if ((r = write_file(dir, "memory.max", val, err)) < 0 ||
		    (r = write_file(dir, "memory.swap.max", "0", err)) < 0)
			return r;
		snprintf(val, sizeof(val), "%u", pids_limit(kind));
		if ((r = write_file(dir, "pids.max", val, err)) < 0)
			return r;
		snprintf(val, sizeof(val), "%u 100000", quota);
		if ((r = write_file(dir, "cpu.max", val, err)) < 0)
			return r;
		snprintf(procs[k++], HC_PATH_MAX, "%s/cgroup.procs", dir);
		return k;
	}

	/* v1: each controller its own hierarchy. */
	static const char *const ctrls[] = {"memory", "pids", "cpu"};
	for (size_t i = 0; i < HC_ARRAY_SIZE(ctrls); i++) {
		r = hc_path_fmt(base, sizeof(base), err, "%s/%s", root, ctrls[i]);
		if (r < 0)
			return r;
		if (stat(base, &st) < 0 || !S_ISDIR(st.st_mode)) {
			*why = "some cgroup controllers are not mounted";
			continue;
		}
		if ((r = make_dir(jv, base, name, dir, err)) < 0)
			return r;
		if (i == 0) {
			/* No swap either, where the kernel accounts it (swapaccount=1). memsw may
			 * never be below the limit: a reused cgroup (a dead VM's, same uid) is
			 * first opened up, then set. */
			char sw[HC_PATH_MAX];
			bool memsw = hc_path_fmt(sw, sizeof(sw), NULL,
						 "%s/memory.memsw.limit_in_bytes", dir) == 0 &&
				     access(sw, W_OK) == 0;
			snprintf(val, sizeof(val), "%llu", mem);
			r = memsw ? write_file(dir, "memory.memsw.limit_in_bytes", "-1", err) : 0;
			if (r >= 0)
				r = write_file(dir, "memory.limit_in_bytes", val, err);
			if (r >= 0 && memsw)
				r = write_file(dir, "memory.memsw.limit_in_bytes", val, err);
		} else if (i == 1) {
			snprintf(val, sizeof(val), "%u", pids_limit(kind));
			r = write_file(dir, "pids.max", val, err);
		} else {
			r = write_file(dir, "cpu.cfs_period_us", "100000", err);
			snprintf(val, sizeof(val), "%u", quota);
			if (r >= 0)
				r = write_file(dir, "cpu.cfs_quota_us", val, err);
		}
		if (r < 0)
			return r;
		snprintf(procs[k++], HC_PATH_MAX, "%s/cgroup.procs", dir);
	}
	if (!k)
		*why = "no cgroup hierarchy is mounted";
	return k;
}

void hc_jail_cgroup_remove(struct hc_jail_vm *jv)
{
	/* Removed after the processes are reaped; a cgroup still busy (a process not yet gone)
	 * gets a short second chance, then is left with a warning by the caller's log. */
	for (size_t i = 0; i < jv->n_cgroups; i++) {
		for (int tries = 0; tries < 50; tries++) {
			if (rmdir(jv->cgroups[i]) == 0 || errno == ENOENT)
				break;
			if (errno != EBUSY)
				break;
			usleep(2000);
		}
	}
	jv->n_cgroups = 0;
}

/* Every cgroup of uid under base/hotcell ("<uid>-<kind>-<n>"), removed once empty (a process
 * of it still dying gets until deadline). */
static void remove_uid_in(const char *base, uid_t uid, double deadline)
{
	char parent[HC_PATH_MAX], prefix[32], path[HC_PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (hc_path_fmt(parent, sizeof(parent), NULL, "%s/hotcell", base) < 0 ||
	    !(d = opendir(parent)))
		return;
	snprintf(prefix, sizeof(prefix), "%u-", (unsigned)uid);
	while ((de = readdir(d))) {
		if (!hc_startswith(de->d_name, prefix) ||
		    hc_path_fmt(path, sizeof(path), NULL, "%s/%s", parent, de->d_name) < 0)
			continue;
		while (rmdir(path) < 0 && errno == EBUSY && hc_clock_ms() < deadline)
			usleep(5000);
	}
	closedir(d);
}

void hc_jail_cgroup_remove_uid(uid_t uid, double deadline)
{
	static const char *const ctrls[] = {"memory", "pids", "cpu"};
	const char *root = cg_root();
	char base[HC_PATH_MAX];

	remove_uid_in(root, uid, deadline);
	for (size_t i = 0; i < HC_ARRAY_SIZE(ctrls); i++)
		if (hc_path_fmt(base, sizeof(base), NULL, "%s/%s", root, ctrls[i]) == 0)
			remove_uid_in(base, uid, deadline);
}
