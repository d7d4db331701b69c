#!/usr/bin/env bash
# hotcell run end to end (real VMs), the other ways in: --rootfs DIR (no image), --rootfs-mode
# block (the cached ext4 disk, read-only to the guest), --channel vsock (vhost-device-vsock),
# and -v volumes read-write and read-only. After each: nothing left behind.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init

e2e_image bb || exit 1

# --rootfs DIR: a plain directory, no image config, so CMD is given.
root=$E2E/work/rootdir
mkdir -p "$root/bin" && cp /bin/busybox "$root/bin/busybox" && ln -s busybox "$root/bin/sh"
echo from-dir >"$root/marker"
SNAP=
e2e_json --rootfs "$root" /bin/sh -c 'cat /marker; echo "$PATH"'
expect rootfs-dir '[ "$rc" -eq 0 ] && [ "$(jqr .stdout)" == "$(printf "from-dir\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")" ] && [ "$(jqr .image)" == null ]'
expect rootfs-dir-untouched '[ "$(ls -A "$root" | tr "\n" " ")" == "bin marker " ]'
e2e_clean rootfs-dir
e2e_run --rootfs "$root"
expect rootfs-dir-needs-cmd '[ "$rc" -eq 125 ] && grep -q "CMD is required" "$E2E/err"'

# --rootfs-mode block: the image as a read-only ext4 disk (built once, cached).
e2e_json --rootfs-mode block bb sh -c 'cat /etc/passwd | head -n 1; mkdir /tmp/b && mount -t ext4 -o ro /dev/vda /tmp/b && echo mounted; mount -o remount,rw /tmp/b 2>/dev/null && echo REMOUNTED; touch /tmp/b/x 2>/dev/null && echo WROTE; true'
expect block-runs '[ "$rc" -eq 0 ] && jqr .stdout | grep -q "^root:x:0:0"'
expect block-readonly 'jqr .stdout | grep -q mounted && ! jqr .stdout | grep -qE "REMOUNTED|WROTE"'
disk=$(ls "$HOTCELL_HOME"/disks/*.ext4 2>/dev/null | head -n 1)
expect block-disk-cached '[ -n "$disk" ]'
e2e_clean block
e2e_snapshot
disk_sum=$(sha256sum <"$disk")
e2e_run --rootfs-mode block bb sh -c 'echo again'
expect block-cache-hit '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out")" == again ] && [ "$(sha256sum <"$disk")" == "$disk_sum" ]'
e2e_clean block-hit

# --channel vsock: the agent over AF_VSOCK through vhost-device-vsock.
e2e_json --channel vsock bb sh -c 'echo over-vsock; ls /sys/class/virtio-ports 2>/dev/null | wc -l'
if [ "$rc" -eq 125 ] && grep -q "vhost-device-vsock" "$E2E/err" && grep -qiE "not found|no such" "$E2E/err"; then
	skip channel-vsock "vhost-device-vsock is not installed ($(head -c 200 "$E2E/err"))"
else
	expect channel-vsock '[ "$rc" -eq 0 ] && [ "$(jqr .stdout | head -n 1)" == over-vsock ]'
fi
e2e_clean channel-vsock

# -v: a read-write and a read-only volume; remounting the read-only one does not help.
rw=$E2E/work/vol-rw ro=$E2E/work/vol-ro
mkdir -p "$rw" "$ro" && echo host-data >"$ro/in"
ro_before=$(find "$ro" -printf '%p %s %m %T@\n' | sort)
e2e_run -v "$rw:/data" -v "$ro:/ro:ro" bb sh -c 'cat /ro/in; echo from-guest >/data/out && echo wrote-rw; echo x >/ro/nope 2>/dev/null && echo WROTE-RO; mount -o remount,rw /ro 2>/dev/null; echo x >/ro/nope2 2>/dev/null && echo WROTE-RO2; true'
expect volume-rw '[ "$rc" -eq 0 ] && [ "$(cat "$rw/out" 2>/dev/null)" == from-guest ] && grep -q wrote-rw "$E2E/out"'
expect volume-ro-read 'grep -q host-data "$E2E/out"'
expect volume-ro-refused '! grep -q WROTE-RO "$E2E/out" && [ "$(find "$ro" -printf "%p %s %m %T@\n" | sort)" == "$ro_before" ]'
e2e_clean volumes

finish
