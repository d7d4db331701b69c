/* SPDX-License-Identifier: MIT */
/*
 * One virtiofsd per shared directory (the rootfs tree, each -v volume), shared by the QEMU and
 * Cloud Hypervisor drivers.
 *
 * hotcell creates the vhost-user listening socket itself and hands it over (`--fd=N`, both
 * bookworm's C virtiofsd in /usr/lib/qemu and the newer Rust one accept it), so the VMM can
 * connect at once: virtiofsd and the VMM start in parallel, neither waits for a path to
 * appear.
 *
 * Read-only shares are read-only from the host's side (DESIGN.md §4): virtiofsd runs in a
 * private mount namespace where the directory is a read-only bind mount of itself, so a guest
 * that remounts the share read-write still gets EROFS.
 */
#pragma once

#include "core/child.h"
#include "core/path.h"
#include "jail/jail.h"

struct hc_virtiofsd {
	struct hc_child child;
	char socket_path[HC_SOCK_PATH_MAX + 1]; /* the VMM connects here */
	char log_path[HC_PATH_MAX];		/* virtiofsd's stderr */
};

#define HC_VIRTIOFSD_INIT                                                                          \
	{                                                                                          \
		.child = HC_CHILD_INIT                                                             \
	}

/* Finds virtiofsd: $HOTCELL_VIRTIOFSD, else `virtiofsd` on PATH (the Rust one), else
 * bookworm's /usr/lib/qemu/virtiofsd. -ENOENT with a message when there is none. */
int hc_virtiofsd_find(char *path, size_t n, struct hc_error *err) _must_check_;

/* Creates a listening socket at socket_path, then starts virtiofsd serving dir on it, with its
 * stderr appended to log_path. Returns as soon as virtiofsd is spawned. */
int hc_virtiofsd_start(struct hc_virtiofsd *v, const char *dir, bool readonly,
		       const char *socket_path, const char *log_path,
		       struct hc_error *err) _must_check_;

/* Whether bin is the Rust virtiofsd (--shared-dir, --sandbox), not QEMU 7.2's C one. */
bool hc_virtiofsd_is_rust(const char *bin);

/* Same, jailed in jail's VM (src/jail; NULL or a jail that is off: as above). */
int hc_virtiofsd_start_jailed(struct hc_virtiofsd *v, struct hc_jail_vm *jail, const char *dir,
			      bool readonly, const char *socket_path, const char *log_path,
			      struct hc_error *err) _must_check_;

/* Ends virtiofsd (it normally exits by itself once the VMM disconnects) and removes the
 * socket. Safe on a never-started one. */
void hc_virtiofsd_stop(struct hc_virtiofsd *v, int grace_ms);
