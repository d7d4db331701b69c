#!/usr/bin/env bash
# The persistent-VM exec/cp test on a read-only ext4 rootfs (/dev/vda) and the agent over a
# real AF_VSOCK (QEMU + vhost-device-vsock), instead of virtio-fs and virtio-serial. Case names
# get a "block-vsock-" prefix; without vhost-device-vsock, block + serial, named so.
source "$(dirname "$0")/../lib.sh"
vdv=$(command -v vhost-device-vsock || ls /var/cache/hotcell-tools/usr/bin/vhost-device-vsock 2>/dev/null)
if [ -n "$vdv" ]; then
	export HOTCELL_E2E_VM_ARGS="--rootfs-mode block --channel vsock" E2E_PREFIX=block-vsock-
else
	skip block-vsock "vhost-device-vsock is not installed (scripts/install-deps.sh fetches it); running block + serial"
	export HOTCELL_E2E_VM_ARGS="--rootfs-mode block" E2E_PREFIX=block-serial-
fi
exec bash "$(dirname "$0")/vm-exec-cp.sh"
