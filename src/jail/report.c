/* SPDX-License-Identifier: MIT */
/*
 * What the jail can do on this host, for `hotcell doctor` (jail.h, hc_jail_host_report): root
 * or not, the uid range and how many of its uids are leased, seccomp's kill action, the cgroup
 * hierarchy and its controllers, /dev/kvm's group. Nothing here changes the host.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "jail/jail-internal.h"

static bool file_has(const char *path, const char *word)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;

	if (hc_path_read_file(path, 65536, &data, &len, NULL) < 0 || !data)
		return false;
	for (char *p = strtok(data, " \t\n"); p; p = strtok(NULL, " \t\n"))
		if (hc_streq(p, word))
			return true;
	return false;
}

static void add_word(char *buf, size_t n, const char *w)
{
	size_t len = strlen(buf);
	snprintf(buf + len, n - len, "%s%s", len ? " " : "", w);
}

void hc_jail_host_report(struct hc_jail_host *h)
{
	const char *root = getenv("HOTCELL_CGROUP_ROOT");
	const char *range = getenv("HOTCELL_JAIL_UIDS");
	const char *dir = getenv("HOTCELL_JAIL_LEASE_DIR");
	char p[HC_PATH_MAX];
	struct stat st;

	*h = (struct hc_jail_host){.uid_first = HC_JAIL_UID_FIRST, .uid_last = HC_JAIL_UID_LAST};
	h->root = hc_jail_default_on(&h->why_not);
	if (range && *range && hc_jail_uid_range_parse(range, &h->uid_first, &h->uid_last) < 0)
		snprintf(h->uid_error, sizeof(h->uid_error),
			 "HOTCELL_JAIL_UIDS=%s: want FIRST-LAST, from 65536 up", range);
	snprintf(h->lease_dir, sizeof(h->lease_dir), "%s", dir && *dir ? dir : HC_JAIL_LEASE_DIR);
	DIR *d = opendir(h->lease_dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)))
			h->leased += de->d_name[0] != '.';
		closedir(d);
	}
	/* SECCOMP_RET_KILL_PROCESS is what the allow-lists end in (Linux 4.14). */
	h->seccomp = file_has("/proc/sys/kernel/seccomp/actions_avail", "kill_process");
	h->seccomp_log = file_has("/proc/sys/kernel/seccomp/actions_avail", "log");

	h->landlock_abi = hc_jail_landlock_abi();
	h->landlock_why_not = hc_jail_landlock_why_not(h->landlock_abi);

	if (!root || !*root)
		root = "/sys/fs/cgroup";
	snprintf(p, sizeof(p), "%s/cgroup.controllers", root);
	if (stat(p, &st) == 0) {
		h->cgroup_version = 2;
		static const char *const want[] = {"memory", "pids", "cpu"};
		for (size_t i = 0; i < HC_ARRAY_SIZE(want); i++)
			if (file_has(p, want[i]))
				add_word(h->cgroup_controllers, sizeof(h->cgroup_controllers),
					 want[i]);
	} else {
		static const char *const v1[] = {"memory", "pids", "cpu"};
		for (size_t i = 0; i < HC_ARRAY_SIZE(v1); i++) {
			snprintf(p, sizeof(p), "%s/%s", root, v1[i]);
			if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
				h->cgroup_version = 1;
				add_word(h->cgroup_controllers, sizeof(h->cgroup_controllers),
					 v1[i]);
			}
		}
	}
	if (stat("/dev/kvm", &st) == 0) {
		h->kvm = true;
		h->kvm_gid = st.st_gid;
		h->kvm_mode = st.st_mode;
	}
}
