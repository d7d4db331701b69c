/* SPDX-License-Identifier: MIT */
/*
 * The boot contract between the host and hotcell-init (docs/protocol.md): one definition,
 * used by all four backends and by the guest.
 *
 * Kernel command-line keys read by hotcell-init (all optional unless said):
 *   hotcell.root=virtiofs|block     where the image is (required)
 *   hotcell.channel=serial|vsock    how to reach the host (required)
 *   hotcell.vol=TAG:GUESTPATH[:ro]  one per -v volume, in order (TAG is hcvolN)
 *   hotcell.debug=1                 verbose guest logging on the console
 * Under libkrun the same keys arrive as environment variables HOTCELL_ROOT, HOTCELL_CHANNEL,
 * HOTCELL_VOL0.., HOTCELL_DEBUG (libkrun passes no kernel command line to its workload).
 */
#pragma once

#define HC_BOOT_KEY_ROOT "hotcell.root"
#define HC_BOOT_KEY_CHANNEL "hotcell.channel"
#define HC_BOOT_KEY_VOLUME "hotcell.vol"
#define HC_BOOT_KEY_DEBUG "hotcell.debug"
/* Optional, with hotcell.root=virtiofs: "1" mounts the shared root read-write as the guest's
 * root itself, without the tmpfs overlay (--rootfs-rw). */
#define HC_BOOT_KEY_ROOT_RW "hotcell.root_rw"

/* virtio-fs tag of the image tree (read-only). */
#define HC_BOOT_TAG_ROOTFS "hcroot"
/* virtio-fs tag prefix of volumes: hcvol0, hcvol1, ... */
#define HC_BOOT_TAG_VOLUME_PREFIX "hcvol"
/* The block device holding the ext4 image (read-only): the first virtio-blk disk. */
#define HC_BOOT_BLOCK_DEVICE "/dev/vda"
/* virtio-serial port name of the agent channel (/sys/class/virtio-ports/vportNpM/name). */
#define HC_BOOT_SERIAL_PORT "org.hotcell.agent"
/* vsock: the guest connects out to CID 2 on this port (host side: <uds>_1024)... */
#define HC_BOOT_VSOCK_PORT_CONNECT 1024
/* ...and listens on this one, so the host can reconnect after a restore (CONNECT 1025). */
#define HC_BOOT_VSOCK_PORT_LISTEN 1025
/* The guest CID given to every VM (hybrid vsock: CIDs are per-VMM, never shared). */
#define HC_BOOT_VSOCK_GUEST_CID 3
/* Where the command may leave its structured result. */
#define HC_BOOT_RESULT_PATH "/hotcell/result.json"
/* hotcell-init's own exit codes (libkrun's exit-code path reports them as the worker's). */
#define HC_BOOT_EXIT_OK 0	/* orderly shutdown after the host said so */
#define HC_BOOT_EXIT_FAILURE 70 /* could not set up the guest (mounts, channel) */

/* Optional, networking (--network inet|full): the guest's eth0 is configured from these, never
 * by DHCP: hotcell.ip=A.B.C.D/N (address and prefix), hotcell.gw=A.B.C.D (default route),
 * hotcell.dns=A.B.C.D (/etc/resolv.conf in the overlay), hotcell.mtu=N (68..65535). */
#define HC_BOOT_KEY_IP "hotcell.ip"
#define HC_BOOT_KEY_GATEWAY "hotcell.gw"
#define HC_BOOT_KEY_DNS "hotcell.dns"
#define HC_BOOT_KEY_MTU "hotcell.mtu"
/* The guest's network interface. */
#define HC_BOOT_NET_IFACE "eth0"

/* Optional: the guest's hostname (default "hotcell"), [A-Za-z0-9.-], at most 64 bytes. */
#define HC_BOOT_KEY_HOSTNAME "hotcell.hostname"
/* Optional, repeatable (at most HC_BOOT_MAX_HOSTS): hotcell.host=NAME:IP (--add-host), a line
 * "IP<TAB>NAME" appended to the guest's /etc/hosts in the overlay. */
#define HC_BOOT_KEY_HOST "hotcell.host"
/* Optional: hotcell.root_ro=1 (--read-only): once set up, the root is remounted read-only;
 * /tmp, /run, /var/tmp and /hotcell are fresh tmpfs mounts first. */
#define HC_BOOT_KEY_ROOT_RO "hotcell.root_ro"
#define HC_BOOT_MAX_HOSTS 8
/* Optional, repeatable (at most HC_BOOT_MAX_TMPFS): hotcell.tmpfs=PATH[:OPTS] (--tmpfs), a
 * fresh tmpfs on PATH (absolute, [A-Za-z0-9/._+@-]), mounted rw,noexec,nosuid,nodev (podman's
 * default) and then OPTS: the flags ro, rw, [no]exec, [no]suid, [no]dev and the tmpfs data
 * size=, mode=, uid=, gid=, nr_inodes=, comma separated. */
#define HC_BOOT_KEY_TMPFS "hotcell.tmpfs"
#define HC_BOOT_MAX_TMPFS 8
/* Optional, repeatable (at most HC_BOOT_MAX_NAMESERVERS): hotcell.nameserver=IP (--dns), the
 * guest's /etc/resolv.conf in the overlay, instead of hotcell.dns's. */
#define HC_BOOT_KEY_NAMESERVER "hotcell.nameserver"
#define HC_BOOT_MAX_NAMESERVERS 3
/* The libkrun spelling of the keys (environment of the workload). */
#define HC_BOOT_ENV_ROOT "HOTCELL_ROOT"
#define HC_BOOT_ENV_CHANNEL "HOTCELL_CHANNEL"
#define HC_BOOT_ENV_VOLUME_PREFIX "HOTCELL_VOL" /* HOTCELL_VOL0, HOTCELL_VOL1, ... */
#define HC_BOOT_ENV_DEBUG "HOTCELL_DEBUG"
#define HC_BOOT_ENV_HOSTNAME "HOTCELL_HOSTNAME"
/* libkrun: the host's extra keys (hostname, hosts, read-only, tmpfs, nameservers, ...), as
 * they would be on a kernel command line, in one variable. */
#define HC_BOOT_ENV_CMDLINE "HOTCELL_CMDLINE"
/* Every console line of hotcell-init starts with this; a setup failure is one line starting
 * with HC_BOOT_CONSOLE_FATAL, printed just before the guest ends the VM (reboot as PID 1,
 * HC_BOOT_EXIT_FAILURE under libkrun). Hosts put it into their "VM failed" error. */
#define HC_BOOT_CONSOLE_PREFIX "hotcell-init: "
#define HC_BOOT_CONSOLE_FATAL "hotcell-init: fatal: "
/* How long hotcell-init waits for the block device, the serial port or the vsock host before
 * it gives up with a fatal line (bounded: a missing device must not hang the boot). */
#define HC_BOOT_DEVICE_WAIT_MS 10000

/* ---- volume keys (src/proto/boot.c), one encoder for the hosts and one decoder for the
 * guest ---- */
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* Appends " hotcell.vol=hcvolIDX:PATH[:ro]" to a kernel command line, PATH percent-encoded
 * (every byte outside [A-Za-z0-9/._+,=@~-] as %XX), so blanks, quotes and ':' survive.
 * -EINVAL when path is not absolute, has a ".." component or is over PATH_MAX. */
int hc_boot_volume_append(struct hc_buf *cmdline, unsigned idx, const char *guest_path, bool ro)
	__attribute__((warn_unused_result));
/* Parses the value of a hotcell.vol key (TAG:PATH[:ro|:rw]): tag [A-Za-z0-9_.-]{1,36}, PATH
 * percent-decoded, absolute, no ".." component, no NUL. 0 or -EINVAL. */
int hc_boot_volume_parse(const char *value, char *tag, size_t taglen, char *path, size_t pathlen,
			 bool *ro) __attribute__((warn_unused_result));
