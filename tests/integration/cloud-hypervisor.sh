#!/usr/bin/env bash
# hotcell run --backend cloud-hypervisor against the strict Cloud Hypervisor double
# (tests/doubles/cloud-hypervisor-double.c, given as HOTCELL_CLOUD_HYPERVISOR), with the real
# virtiofsd: doctor's report, the requests and the vm.create body (dir and block rootfs,
# volumes), API errors surfaced with the endpoint, an early exit of the binary, the PVM refusal,
# the serial channel refused, --device checks on a fake sysfs; each failure leaves no process
# and no runtime dir. Then the whole pipeline end to end: the double boots the guest in QEMU
# (TCG) with the same configuration (ELF vmlinux, initramfs with hotcell-init, the image tree
# through the driver's virtiofsd, a volume, vsock through vhost-device-vsock), and the result
# object is the one QEMU gives.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"

DOUBLE=$HOTCELL_TOP/$BUILD/tests/doubles/cloud-hypervisor-double
need_tools cloud-hypervisor jq pgrep
[ -x "$HC" ] || { skip cloud-hypervisor "$HC is not built"; exit 0; }
[ -x "$DOUBLE" ] || { skip cloud-hypervisor "the Cloud Hypervisor double is not built (make tests)"; exit 0; }
if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	skip cloud-hypervisor "no usable /dev/kvm: the driver refuses before starting anything"
	exit 0
fi

E2E=$(mktemp -d /tmp/hcch.XXXXXX)
export HOTCELL_HOME=$E2E/home HOTCELL_RUNTIME_DIR=$E2E/run
mkdir -p "$HOTCELL_HOME" "$HOTCELL_RUNTIME_DIR" "$E2E/work"
chmod 700 "$HOTCELL_RUNTIME_DIR"
trap e2e_cleanup EXIT
# The double runs jailed, as cloud-hypervisor does: its request log is in a directory the jail
# gets read-write, its guest's QEMU and vhost-device-vsock come in through HOTCELL_JAIL_EXTRA.
mkdir -m 1777 "$E2E/dbl"
export HOTCELL_CLOUD_HYPERVISOR=$DOUBLE HOTCELL_CH_DOUBLE_LOG=$E2E/dbl/requests.log
double_jail_extra "+$E2E/dbl"
unset HOTCELL_CH_DOUBLE_FAULT HOTCELL_CH_DOUBLE_EXIT HOTCELL_CH_DOUBLE_ERRORS HOTCELL_SYSFS_ROOT

# A directory rootfs and, for the API-level cases, any ELF file as the "vmlinux": the double
# checks the magic, and with GUEST=none boots nothing (its fake guest speaks no protocol, so
# those runs fail after the boot: what is checked is what hotcell asked for).
root=$E2E/work/rootdir
mkdir -p "$root/bin" && cp /bin/busybox "$root/bin/busybox" 2>/dev/null
fake_kernel=$E2E/work/vmlinux
cp /bin/true "$fake_kernel"

# requests: the log's "METHOD PATH STATUS" lines, ';'-joined
requests() { awk '$1 != "START" && $1 != "EVENT" && $1 != "JAIL" { printf "%s%s %s %s", sep, $1, $2, $3; sep=";" }' "$HOTCELL_CH_DOUBLE_LOG" 2>/dev/null; }
ch_run() {
	rm -f "$HOTCELL_CH_DOUBLE_LOG"
	"$HC" run --backend cloud-hypervisor "$@" >"$E2E/out" 2>"$E2E/err"
	rc=$?
}
ch_clean() { expect_clean "$1" 'cloud-hypervisor|virtiofsd|qemu|vhost-device|hotcell' "$HOTCELL_RUNTIME_DIR"; }
logged() { grep -qF -- "$1" "$HOTCELL_CH_DOUBLE_LOG"; }

# --- doctor: found, version
doctor=$("$HC" doctor 2>&1)
if grep -A2 '^cloud-hypervisor' <<<"$doctor" | grep -q "found:       yes, 41.0"; then
	pass doctor-version
else
	fail doctor-version "doctor does not show cloud-hypervisor 41.0: $(grep -A4 '^cloud-hypervisor' <<<"$doctor" | tr '\n' ' ')"
fi
HOTCELL_CH_DOUBLE_VERSION=34.1 "$HC" doctor >"$E2E/out" 2>&1
if grep -A3 '^cloud-hypervisor' "$E2E/out" | grep -q "older than v35"; then
	pass doctor-old-version
else
	fail doctor-old-version "$(grep -A4 '^cloud-hypervisor' "$E2E/out" | tr '\n' ' ')"
fi

export HOTCELL_CH_DOUBLE_GUEST=none
# --- the requests and the vm.create body: dir rootfs through virtiofsd, a read-only volume
ch_run --kernel "$fake_kernel" --boot-timeout 5 --rootfs "$root" -v "$E2E/work:/data:ro" /bin/true
expect_eq requests "$(requests)" "PUT /api/v1/vm.create 204;PUT /api/v1/vm.boot 204;PUT /api/v1/vmm.shutdown 204"
double_jailed double-runs-jailed "$HOTCELL_CH_DOUBLE_LOG"
if logged '"memory":{"size":268435456,"shared":true}' && logged '{"tag":"hcroot","socket":"' &&
	logged '{"tag":"hcvol0","socket":"' && logged '"vsock":{"cid":3,"socket":"v.sock"}' &&
	logged 'hotcell.root=virtiofs hotcell.channel=vsock hotcell.vol=hcvol0:/data:ro' &&
	logged '"serial":{"mode":"File","file":"console.log"}' && logged '"console":{"mode":"Off"}'; then
	pass vm-create-body
else
	fail vm-create-body "$(head -c 1200 "$HOTCELL_CH_DOUBLE_LOG")"
fi
ch_clean requests

# --- block rootfs: the ext4 image, read-only, and no virtiofsd
if command -v mke2fs >/dev/null; then
	ch_run --kernel "$fake_kernel" --boot-timeout 5 --rootfs "$root" --rootfs-mode block /bin/true
	if logged '"disks":[{"path":"' && logged '","readonly":true}]' && logged 'hotcell.root=block' && ! logged '"fs":'; then
		pass block-rootfs-body
	else
		fail block-rootfs-body "$(head -c 1200 "$HOTCELL_CH_DOUBLE_LOG")"
	fi
	ch_clean block-rootfs
else
	skip block-rootfs-body "mke2fs is not installed"
fi

# --- API errors reach the user with the endpoint (JSON error chains, and plain text before v40)
export HOTCELL_CH_DOUBLE_FAULT='PUT /api/v1/vm.boot=500:The VM could not boot: Failed to load the kernel'
ch_run --kernel "$fake_kernel" --rootfs "$root" /bin/true
expect_125 api-error "PUT /api/v1/vm.boot: HTTP 500: Error from API: The VM could not boot: Failed to load the kernel"
ch_clean api-error
HOTCELL_CH_DOUBLE_ERRORS=text HOTCELL_CH_DOUBLE_FAULT='PUT /api/v1/vm.create=400:Failed to deserialize JSON' \
	ch_run --kernel "$fake_kernel" --rootfs "$root" /bin/true
expect_125 api-error-text "PUT /api/v1/vm.create: HTTP 400: Error from API: Failed to deserialize JSON"
ch_clean api-error-text
unset HOTCELL_CH_DOUBLE_FAULT

# --- the binary exits early, or during vm.create
export HOTCELL_CH_DOUBLE_EXIT=startup
ch_run --kernel "$fake_kernel" --rootfs "$root" /bin/true
expect_125 early-exit "cloud-hypervisor exited with status 1"
ch_clean early-exit
export HOTCELL_CH_DOUBLE_EXIT='PUT /api/v1/vm.create'
ch_run --kernel "$fake_kernel" --rootfs "$root" /bin/true
expect_125 exit-during-create "PUT /api/v1/vm.create: "
ch_clean exit-during-create
unset HOTCELL_CH_DOUBLE_EXIT

# --- the serial channel is QEMU's
ch_run --kernel "$fake_kernel" --channel serial --rootfs "$root" /bin/true
expect_125 serial-refused "does not support a serial agent channel"

# --- --device: needs --kernel; checked against sysfs before anything starts
sys=$E2E/work/sys
mkdir -p "$sys/bus/pci/devices/0000:02:00.0" "$sys/bus/pci/drivers/nvidia" "$sys/kernel/iommu_groups/2/devices"
ln -s "$sys/bus/pci/drivers/nvidia" "$sys/bus/pci/devices/0000:02:00.0/driver"
ln -s "$sys/kernel/iommu_groups/2" "$sys/bus/pci/devices/0000:02:00.0/iommu_group"
ln -s "$sys/bus/pci/devices/0000:02:00.0" "$sys/kernel/iommu_groups/2/devices/0000:02:00.0"
HOTCELL_SYSFS_ROOT=$sys ch_run --kernel "$fake_kernel" --device 0000:02:00.0 --rootfs "$root" /bin/true
expect_125 device-not-vfio "--device 0000:02:00.0 is bound to 'nvidia', not to vfio-pci"
[ ! -s "$HOTCELL_CH_DOUBLE_LOG" ] && pass device-checked-before-start || fail device-checked-before-start "$(cat "$HOTCELL_CH_DOUBLE_LOG")"
HOTCELL_SYSFS_ROOT=$sys ch_run --kernel "$fake_kernel" --device 0000:07:00.0 --rootfs "$root" /bin/true
expect_125 device-missing "--device 0000:07:00.0: no such PCI device"
ch_clean device

# --- PVM: the project's kernel is refused at once, with the reason and the way out
if [ ! -e /sys/module/kvm_pvm ]; then
	skip pvm-refusal "not a PVM host"
	ch_run --device 0000:02:00.0 --rootfs "$root" /bin/true
	expect_125 device-needs-kernel "--device needs --kernel"
elif [ ! -f "$HOTCELL_TOP/$BUILD/kernel/vmlinux" ]; then
	skip pvm-refusal "the project's kernel is not built ($BUILD/kernel/vmlinux)"
else
	ch_run --rootfs "$root" /bin/true
	expect_125 pvm-refusal "PVM"
	if grep -q -- "--kernel" "$E2E/err" && [ ! -s "$HOTCELL_CH_DOUBLE_LOG" ]; then
		pass pvm-refusal-says-what-to-do
	else
		fail pvm-refusal-says-what-to-do "$(cat "$E2E/err")"
	fi
	ch_clean pvm-refusal
fi
unset HOTCELL_CH_DOUBLE_GUEST

# --- end to end: the double runs the guest in QEMU; same result object as QEMU
vmlinux=$HOTCELL_TOP/$BUILD/kernel/vmlinux
if ! double_e2e_ready end-to-end || ! e2e_image bb; then
	:
else
	mkdir -p "$E2E/work/vol"
	cmd='echo hi; cat /proc/cmdline >&2; echo written >/vol/out.txt; exit 3'
	rm -f "$HOTCELL_CH_DOUBLE_LOG"
	"$HC" run --json --backend cloud-hypervisor --kernel "$vmlinux" -v "$E2E/work/vol:/vol" bb sh -c "$cmd" >"$E2E/json" 2>"$E2E/err"
	rc=$?
	if [ "$rc" -eq 3 ] && [ "$(jqr .backend)" == cloud-hypervisor ] && [ "$(jqr .stdout)" == hi ] &&
		[ "$(jqr .exit_code)" == 3 ] && jqr .stderr | grep -q 'hotcell.root=virtiofs' &&
		[ "$(cat "$E2E/work/vol/out.txt" 2>/dev/null)" == written ]; then
		pass end-to-end
	else
		fail end-to-end "rc=$rc json=$(head -c 600 "$E2E/json") err=$(head -c 600 "$E2E/err") log: $(tail -n 5 "$HOTCELL_CH_DOUBLE_LOG" 2>/dev/null | cut -c1-200 | tr '\n' ' ')"
	fi
	expect_eq end-to-end-requests "$(requests)" "PUT /api/v1/vm.create 204;PUT /api/v1/vm.boot 204;PUT /api/v1/vmm.shutdown 204"
	double_jailed end-to-end-jailed "$HOTCELL_CH_DOUBLE_LOG"
	expect end-to-end-json-jailed '[ "$(jqr .jailed)" == "$([ "$(id -u)" -eq 0 ] && echo true || echo false)" ]'
	ch_clean end-to-end
	# The image is read-only from the host's side: a guest that remounts it and writes fails.
	"$HC" run --backend cloud-hypervisor --rootfs-mode dir --kernel "$vmlinux" bb sh -c \
		'mkdir -p /tmp/m && mount -t virtiofs hcroot /tmp/m && mount -o remount,rw /tmp/m; ls /tmp/m/bin/busybox >/dev/null && echo mounted; echo x >/tmp/m/evil 2>/dev/null && echo WROTE; true' >"$E2E/out" 2>"$E2E/err"
	if grep -q mounted "$E2E/out" && ! grep -q WROTE "$E2E/out" && [ -z "$(find "$HOTCELL_HOME/rootfs" -name evil 2>/dev/null)" ]; then
		pass image-read-only
	else
		fail image-read-only "$(cat "$E2E/out" "$E2E/err" | head -c 400)"
	fi
	ch_clean image-read-only
	# A guest that fails its setup reboots; Cloud Hypervisor would boot it again. The event
	# monitor ends the run at once with hotcell-init's fatal line (not the boot timeout).
	rm -f "$HOTCELL_CH_DOUBLE_LOG"
	HOTCELL_CH_DOUBLE_DROP_FS=hcvol0 "$HC" run --backend cloud-hypervisor --kernel "$vmlinux" --boot-timeout 600 \
		-v "$E2E/work/vol:/vol" bb true >"$E2E/out" 2>"$E2E/err"
	rc=$?
	expect_125 guest-reboot-ends-run "the guest failed while booting: fatal: volume hcvol0 on /vol"
	expect_eq guest-reboot-requests "$(requests)" "PUT /api/v1/vm.create 204;PUT /api/v1/vm.boot 204;PUT /api/v1/vmm.shutdown 204"
	ch_clean guest-reboot
	# The same object as QEMU gives (keys and types), for the same command.
	cp "$E2E/json" "$E2E/ch.json"
	rm -f "$E2E/work/vol/out.txt"
	"$HC" run --json --backend qemu --channel vsock -v "$E2E/work/vol:/vol" bb sh -c "$cmd" >"$E2E/qemu.json" 2>"$E2E/err"
	expect_same_result same-result-as-qemu cloud-hypervisor "$E2E/ch.json" "$E2E/qemu.json"
	ch_clean same-result-as-qemu
fi

finish
