#!/usr/bin/env bash
# hotcell run --backend firecracker against the strict Firecracker double
# (tests/doubles/firecracker-double.c, given as HOTCELL_FIRECRACKER): doctor's report, the
# request order, fault_message surfaced with the endpoint, an early exit of the binary, the
# PVM refusal, -v refused; each failure leaves no process and no runtime dir. Then the whole
# pipeline end to end: the double boots the guest in QEMU (TCG) with the same configuration
# (ELF vmlinux, initramfs with hotcell-init, the ext4 image read-only, vsock through
# vhost-device-vsock), and the result object is the one QEMU gives.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"

DOUBLE=$HOTCELL_TOP/$BUILD/tests/doubles/firecracker-double
need_tools firecracker jq pgrep mke2fs
[ -x "$HC" ] || { skip firecracker "$HC is not built"; exit 0; }
[ -x "$DOUBLE" ] || { skip firecracker "the Firecracker double is not built (make tests)"; exit 0; }
if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	skip firecracker "no usable /dev/kvm: the driver refuses before starting anything"
	exit 0
fi

E2E=$(mktemp -d /tmp/hcfc.XXXXXX)
export HOTCELL_HOME=$E2E/home XDG_RUNTIME_DIR=$E2E/run
mkdir -p "$HOTCELL_HOME" "$XDG_RUNTIME_DIR" "$E2E/work"
chmod 700 "$XDG_RUNTIME_DIR"
trap e2e_cleanup EXIT
export HOTCELL_FIRECRACKER=$DOUBLE HOTCELL_FC_DOUBLE_LOG=$E2E/requests.log
unset HOTCELL_FIRECRACKER_JAILER HOTCELL_FC_DOUBLE_FAULT HOTCELL_FC_DOUBLE_EXIT HOTCELL_FC_DOUBLE_EXPECT

# A directory rootfs (made into an ext4 image by hotcell) and, for the API-level cases, any
# ELF file as the "vmlinux": the double checks the magic, and with GUEST=none boots nothing.
root=$E2E/work/rootdir
mkdir -p "$root/bin" && cp /bin/busybox "$root/bin/busybox" 2>/dev/null
fake_kernel=$E2E/work/vmlinux
cp /bin/true "$fake_kernel"

# requests: the log's "METHOD PATH STATUS" lines, ';'-joined
requests() { awk '$1 != "START" && $1 != "JAILER" { printf "%s%s %s %s", sep, $1, $2, $3; sep=";" }' "$HOTCELL_FC_DOUBLE_LOG" 2>/dev/null; }
fc_run() {
	rm -f "$HOTCELL_FC_DOUBLE_LOG"
	"$HC" run --backend firecracker "$@" >"$E2E/out" 2>"$E2E/err"
	rc=$?
}
fc_clean() { expect_clean "$1" 'firecracker|qemu|vhost-device|hotcell' "$XDG_RUNTIME_DIR/hotcell"; }

# --- doctor: found, version
doctor=$("$HC" doctor 2>&1)
if grep -A3 -i firecracker <<<"$doctor" | grep -q "1.10.1"; then
	pass doctor-version
else
	fail doctor-version "doctor does not show firecracker 1.10.1: $(grep -A4 -i firecracker <<<"$doctor" | tr '\n' ' ')"
fi

# --- the request order (the fake guest then speaks no protocol: the run fails after it)
export HOTCELL_FC_DOUBLE_GUEST=none
fc_run --kernel "$fake_kernel" --boot-timeout 5 --rootfs "$root" /bin/true
order=$(requests)
expect_eq request-order "$order" "PUT /machine-config 204;PUT /boot-source 204;PUT /drives/rootfs 204;PUT /vsock 204;PUT /actions 204"
if grep -q '"is_read_only":true' "$HOTCELL_FC_DOUBLE_LOG" && grep -q '"is_root_device":false' "$HOTCELL_FC_DOUBLE_LOG" &&
	grep -q 'hotcell.root=block' "$HOTCELL_FC_DOUBLE_LOG" && grep -q 'hotcell.channel=vsock' "$HOTCELL_FC_DOUBLE_LOG"; then
	pass request-bodies
else
	fail request-bodies "$(cat "$HOTCELL_FC_DOUBLE_LOG" | head -c 800)"
fi
fc_clean request-order

# --- fault_message reaches the user, with the endpoint
export HOTCELL_FC_DOUBLE_FAULT='PUT /drives/rootfs=400:Invalid block device path'
fc_run --kernel "$fake_kernel" --rootfs "$root" /bin/true
expect_125 fault-message "PUT /drives/rootfs: HTTP 400: Invalid block device path"
fc_clean fault-message
unset HOTCELL_FC_DOUBLE_FAULT

export HOTCELL_FC_DOUBLE_FAULT='PUT /actions=400:Cannot start microvm'
fc_run --kernel "$fake_kernel" --rootfs "$root" /bin/true
expect_125 instance-start-refused "PUT /actions: HTTP 400: Cannot start microvm"
fc_clean instance-start-refused
unset HOTCELL_FC_DOUBLE_FAULT

# --- the binary exits early
export HOTCELL_FC_DOUBLE_EXIT=startup
fc_run --kernel "$fake_kernel" --rootfs "$root" /bin/true
expect_125 early-exit "firecracker exited with status 1 before its API socket appeared"
fc_clean early-exit
export HOTCELL_FC_DOUBLE_EXIT='PUT /vsock'
fc_run --kernel "$fake_kernel" --rootfs "$root" /bin/true
expect_125 exit-mid-configuration "PUT /vsock: "
fc_clean exit-mid-configuration
unset HOTCELL_FC_DOUBLE_EXIT

# --- --jailer: Firecracker under (the double of) its jailer, chroot under the state dir
JAILER=$HOTCELL_TOP/$BUILD/tests/doubles/jailer-double
if [ "$(id -u)" -ne 0 ]; then
	skip jailer "the jailer needs root"
elif [ ! -x "$JAILER" ]; then
	skip jailer "the jailer double is not built (make tests)"
else
	HOTCELL_FIRECRACKER_JAILER=$JAILER fc_run --jailer --kernel "$fake_kernel" --boot-timeout 5 --rootfs "$root" /bin/true
	expect_eq jailer-request-order "$(requests)" "PUT /machine-config 204;PUT /boot-source 204;PUT /drives/rootfs 204;PUT /vsock 204;PUT /actions 204"
	if grep -q "^JAILER --id hc-[0-9a-f]* --exec-file $DOUBLE --uid [0-9]* --gid [0-9]* --chroot-base-dir $HOTCELL_HOME/jailer --cgroup-version [12] -- --api-sock /fc.sock$" "$HOTCELL_FC_DOUBLE_LOG" &&
		grep -q '"kernel_image_path":"/vmlinux"' "$HOTCELL_FC_DOUBLE_LOG"; then
		pass jailer-command-line
	else
		fail jailer-command-line "$(head -c 600 "$HOTCELL_FC_DOUBLE_LOG")"
	fi
	if ! grep -q "$HOTCELL_HOME/jailer" /proc/self/mountinfo && [ -z "$(ls -A "$HOTCELL_HOME/jailer/firecracker-double" 2>/dev/null)" ]; then
		pass jailer-chroot-removed
	else
		fail jailer-chroot-removed "$(ls -R "$HOTCELL_HOME/jailer" | head -n 20 | tr '\n' ' ')"
	fi
	fc_clean jailer
fi

# --- -v: Firecracker has no shared directories
fc_run --kernel "$fake_kernel" -v "$E2E/work:/mnt" --rootfs "$root" /bin/true
expect_125 shared-dirs-refused "does not support shared dir"

# --- PVM: the project's kernel is refused at once, with the reason and the way out
if [ ! -e /sys/module/kvm_pvm ]; then
	skip pvm-refusal "not a PVM host"
elif [ ! -f "$HOTCELL_TOP/$BUILD/kernel/vmlinux" ]; then
	skip pvm-refusal "the project's kernel is not built ($BUILD/kernel/vmlinux)"
else
	fc_run --rootfs "$root" /bin/true
	expect_125 pvm-refusal "PVM"
	if grep -q -- "--kernel" "$E2E/err" && [ ! -s "$HOTCELL_FC_DOUBLE_LOG" ]; then
		pass pvm-refusal-says-what-to-do
	else
		fail pvm-refusal-says-what-to-do "$(cat "$E2E/err")"
	fi
	fc_clean pvm-refusal
fi
unset HOTCELL_FC_DOUBLE_GUEST

# --- end to end: the double runs the guest in QEMU; same result object as QEMU
vmlinux=$HOTCELL_TOP/$BUILD/kernel/vmlinux
if ! double_e2e_ready end-to-end || ! e2e_image bb; then
	:
else
	rm -f "$HOTCELL_FC_DOUBLE_LOG"
	"$HC" run --json --backend firecracker --kernel "$vmlinux" bb sh -c 'echo hi; cat /proc/cmdline >&2; exit 3' >"$E2E/json" 2>"$E2E/err"
	rc=$?
	if [ "$rc" -eq 3 ] && [ "$(jqr .backend)" == firecracker ] && [ "$(jqr .stdout)" == hi ] &&
		[ "$(jqr .exit_code)" == 3 ] && jqr .stderr | grep -q 'hotcell.root=block'; then
		pass end-to-end
	else
		fail end-to-end "rc=$rc json=$(head -c 600 "$E2E/json") err=$(head -c 600 "$E2E/err") console? $(tail -n 5 "$HOTCELL_FC_DOUBLE_LOG" 2>/dev/null | tr '\n' ' ')"
	fi
	fc_clean end-to-end
	# The same object as QEMU gives (keys and types), for the same command.
	cp "$E2E/json" "$E2E/fc.json"
	"$HC" run --json --backend qemu --rootfs-mode block --channel vsock bb sh -c 'echo hi; cat /proc/cmdline >&2; exit 3' >"$E2E/qemu.json" 2>"$E2E/err"
	expect_same_result same-result-as-qemu firecracker "$E2E/fc.json" "$E2E/qemu.json"
	fc_clean same-result-as-qemu
fi

finish
