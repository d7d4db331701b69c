#!/usr/bin/env bash
# The e2e suite's exit-code and I/O scripts again, with the guest path Firecracker and Cloud
# Hypervisor snapshots use: the image as a read-only ext4 block device (/dev/vda) and the agent
# over a real AF_VSOCK (vhost-device-vsock, hybrid convention). Case names get a "block-vsock-"
# prefix. Without vhost-device-vsock the channel stays serial and the names say so.
set -o pipefail
source "$(dirname "$0")/../lib.sh"
dir=$(dirname "$0")
vdv=$(command -v vhost-device-vsock || ls /var/cache/hotcell-tools/usr/bin/vhost-device-vsock 2>/dev/null)
if [ -n "$vdv" ]; then
	export HOTCELL_E2E_RUN_ARGS="--rootfs-mode block --channel vsock" prefix=block-vsock-
else
	skip block-vsock "vhost-device-vsock is not installed (scripts/install-deps.sh fetches it); running block + serial"
	export HOTCELL_E2E_RUN_ARGS="--rootfs-mode block" prefix=block-serial-
fi
status=0
for t in run-exit run-io; do
	bash "$dir/$t.sh" | sed -E "s/^(PASS|FAIL|SKIP): /\1: $prefix/" || status=1
done
exit $status
