/* SPDX-License-Identifier: MIT */
/*
 * The jail's Landlock step (docs/security.md): a jailed process may write only beneath the
 * paths the jail gave it read-write (its runtime dir, a read-write share or volume, /tmp, the
 * device nodes), whatever mount it reaches a file through: a proc it mounted itself, a
 * detached mount it keeps an fd of, /proc/self/fd of a file it was handed read-only. Reads and
 * exec are left to the mounts (read-only binds of exactly what the process needs).
 *
 * Raw system calls (Documentation/userspace-api/landlock.rst; bookworm has no maintained C
 * library for it). The handled rights follow the kernel's ABI version: 1 has no REFER, so
 * every cross-directory rename or link would be refused and the step is not used there; 3 adds
 * TRUNCATE.
 */
#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "jail/jail-internal.h"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif

/* Every right that changes the file system: write, truncate, make, remove, rename/link. */
#define WRITE_FILE_RIGHTS (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)
#define WRITE_DIR_RIGHTS                                                                           \
	(LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |                          \
	 LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |                              \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |                              \
	 LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |                            \
	 LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER)

int hc_jail_landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return v < 0 ? -errno : (int)v;
}

const char *hc_jail_landlock_why_not(int abi)
{
	if (abi == -ENOSYS)
		return "not available: the kernel is built without Landlock";
	if (abi == -EOPNOTSUPP)
		return "not available: Landlock is off at boot (not in lsm=)";
	if (abi < 0)
		return "not available: the kernel refuses to say its Landlock version";
	if (abi < HC_JAIL_LANDLOCK_MIN_ABI)
		return "not used: Landlock ABI 1 (Linux 5.13-5.18) refuses every rename or link "
		       "across directories";
	return NULL;
}

static __u64 handled(int abi)
{
	__u64 h = WRITE_FILE_RIGHTS | WRITE_DIR_RIGHTS;
	if (abi < 3)
		h &= ~LANDLOCK_ACCESS_FS_TRUNCATE;
	return h;
}

int hc_jail_landlock_open(int abi, struct hc_error *err)
{
	struct landlock_ruleset_attr attr = {.handled_access_fs = handled(abi)};
	long fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);

	if (fd < 0)
		return hc_error_errno(err, -errno, "jail step 'landlock': create the ruleset");
	return (int)fd;
}

int hc_jail_landlock_allow(int ruleset, int abi, const char *path, struct hc_error *err)
{
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return hc_error_errno(err, -e, "jail step 'landlock': %s", path);
	}
	/* A file takes only the rights that apply to a file (else EINVAL). */
	struct landlock_path_beneath_attr pb = {
		.allowed_access = handled(abi) & (S_ISDIR(st.st_mode) ? ~0ULL : WRITE_FILE_RIGHTS),
		.parent_fd = fd,
	};
	long r = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	int e = errno;
	close(fd);
	if (r < 0)
		return hc_error_errno(err, -e, "jail step 'landlock': allow writes beneath %s",
				      path);
	return 0;
}

int hc_jail_landlock_apply(int ruleset, struct hc_error *err)
{
	long r = syscall(SYS_landlock_restrict_self, ruleset, 0);
	int e = errno;

	close(ruleset);
	if (r < 0)
		return hc_error_errno(err, -e, "jail step 'landlock'");
	return 0;
}
