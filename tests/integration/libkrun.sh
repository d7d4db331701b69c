#!/usr/bin/env bash
# hotcell run --backend libkrun against the libkrun double (tests/doubles/libkrun-double.c, a
# shared library given as HOTCELL_LIBKRUN): doctor's report and version, a missing library, a
# missing mandatory symbol, a missing optional one, the PVM refusal, the API calls the worker
# makes (TSI off by default, the port map always set, -p with --network full), a configuration
# error and a worker that dies without an exit frame (125 with libkrun's last words, never the
# command's code); the worker's jail as root (the double reports it from krun_start_enter: uid 0
# with a file server's capabilities only, no_new_privs, seccomp, its own mount and PID
# namespaces, no /etc/shadow); then end to end: the double runs the guest under QEMU TCG, and
# the command's exit code and output come back. The double's guest needs QEMU's C virtiofsd,
# which cannot start in the worker's jail (no CAP_SYS_ADMIN, ever): those runs are --no-jail,
# and a jailed one must be refused by the double, loudly. Each case leaves no process and no
# runtime dir.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"

DBL=$HOTCELL_TOP/$BUILD/tests/doubles
need_tools libkrun jq pgrep
[ -x "$HC" ] || { skip libkrun "$HC is not built"; exit 0; }
[ -f "$DBL/libkrun-double.so" ] || { skip libkrun "the libkrun double is not built (make tests)"; exit 0; }
[ -x /bin/busybox ] || { skip libkrun "busybox-static is not installed"; exit 0; }

E2E=$(mktemp -d /tmp/hclk.XXXXXX)
export HOTCELL_HOME=$E2E/home HOTCELL_RUNTIME_DIR=$E2E/run
mkdir -p "$HOTCELL_HOME" "$HOTCELL_RUNTIME_DIR" "$E2E/work"
chmod 700 "$HOTCELL_RUNTIME_DIR"
trap e2e_cleanup EXIT
unset HOTCELL_LIBKRUN_DOUBLE_FAIL HOTCELL_LIBKRUN_DOUBLE_GUEST HOTCELL_LIBKRUNFW
# The soname chain carries the version, as libkrun.so.1 -> libkrun.so.1.X.Y does.
ln -s "$DBL/libkrun-double.so" "$E2E/work/libkrun.so.1.18.0"
# The call log is in a directory the worker's jail gets read-write (docs/security.md).
mkdir -m 1777 "$E2E/dbl"
export HOTCELL_LIBKRUN=$E2E/work/libkrun.so.1.18.0 HOTCELL_LIBKRUN_DOUBLE_LOG=$E2E/dbl/calls.log
export HOTCELL_JAIL_EXTRA=+$E2E/dbl

root=$E2E/work/rootdir
mkdir -p "$root/bin"
cp /bin/busybox "$root/bin/busybox"
for a in sh echo cat sleep reboot; do ln -s busybox "$root/bin/$a"; done
vmlinux=$HOTCELL_TOP/$BUILD/kernel/vmlinux
[ -f "$vmlinux" ] || vmlinux=$HOTCELL_TOP/build/kernel/vmlinux

lk_run() {
	rm -f "$HOTCELL_LIBKRUN_DOUBLE_LOG"
	"$HC" run --backend libkrun "$@" >"$E2E/out" 2>"$E2E/err"
	rc=$?
}
lk_clean() { expect_clean "$1" 'qemu|virtiofsd|vhost-device|hotcell' "$HOTCELL_RUNTIME_DIR"; }
calls() { grep -v '^EXIT\|^NOTE\|^JAIL' "$HOTCELL_LIBKRUN_DOUBLE_LOG" 2>/dev/null | awk '{print $1}' | tr '\n' ' '; }
# lk_jailed NAME: the double's JAIL line (where libkrun's VMM runs) shows the worker's jail: uid 0
# (libkrun serves virtio-fs itself), CapEff exactly CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER
# FSETID SETGID SETUID SYS_CHROOT SETFCAP (0x800400df) and so none of SYS_ADMIN, SYS_MODULE,
# SYS_PTRACE, NET_ADMIN, SYS_RAWIO, SYS_BOOT; no_new_privs; seccomp filter mode; a mount and a
# PID namespace not ours; no /etc/shadow in its root. As non-root there is no jail: SKIP.
lk_jailed() {
	local line eff forbidden=$(((1 << 21) | (1 << 16) | (1 << 19) | (1 << 12) | (1 << 17) | (1 << 22)))
	if [ "$(id -u)" -ne 0 ]; then
		skip "$1" "the jail needs root"
		return
	fi
	line=$(grep -m1 '^JAIL ' "$HOTCELL_LIBKRUN_DOUBLE_LOG" 2>/dev/null)
	eff=$(sed -n 's/.* capeff=\([0-9a-f]*\) .*/\1/p' <<<"$line")
	if [ -n "$eff" ] && grep -q '^JAIL uid=0 ' <<<"$line" && [ $((0x$eff & forbidden)) -eq 0 ] &&
		[ "$eff" == 00000000800400df ] && grep -q ' nnp=1 seccomp=2 ' <<<"$line" &&
		grep -q ' shadow=no$' <<<"$line" &&
		! grep -qF "mntns=$(readlink /proc/self/ns/mnt) " <<<"$line" &&
		! grep -qF "pidns=$(readlink /proc/self/ns/pid) " <<<"$line"; then
		pass "$1"
	else
		fail "$1" "not jailed as it should be: ${line:-no JAIL line in $HOTCELL_LIBKRUN_DOUBLE_LOG}"
	fi
}

# --- doctor: found, with the version from the file name
doctor=$("$HC" doctor 2>&1)
if grep -A2 '^libkrun' <<<"$doctor" | grep -q "found:       yes, 1.18.0"; then
	pass doctor-version
else
	fail doctor-version "$(grep -A5 '^libkrun' <<<"$doctor" | tr '\n' ' ')"
fi

# --- a missing library, a missing mandatory symbol, a missing optional one
HOTCELL_LIBKRUN=$E2E/nonexistent/libkrun.so.1 lk_run --kernel "$vmlinux" --rootfs "$root" /bin/true
expect_125 missing-library "libkrun not usable: cannot load $E2E/nonexistent/libkrun.so.1"
HOTCELL_LIBKRUN=$DBL/libkrun-old.so lk_run --kernel "$vmlinux" --rootfs "$root" /bin/true
expect_125 missing-symbol "libkrun not usable: missing symbol krun_disable_implicit_vsock"
if HOTCELL_LIBKRUN=$DBL/libkrun-old.so "$HC" doctor 2>&1 | grep -A3 '^libkrun' | grep -q 'missing symbol'; then
	pass doctor-missing-symbol
else
	fail doctor-missing-symbol "doctor does not say which symbol is missing"
fi
HOTCELL_LIBKRUN=$DBL/libkrun-nokernel.so lk_run --kernel "$vmlinux" --rootfs "$root" /bin/true
expect_125 missing-optional-symbol "does not support --kernel (krun_set_kernel)"
lk_clean loading

# --- PVM: libkrunfw's kernel cannot boot; refused before anything starts
if [ ! -e /sys/module/kvm_pvm ]; then
	skip pvm-refusal "not a PVM host"
else
	lk_run --rootfs "$root" /bin/true
	expect_125 pvm-refusal "PVM"
	if grep -q -- "--kernel" "$E2E/err" && [ ! -s "$HOTCELL_LIBKRUN_DOUBLE_LOG" ]; then
		pass pvm-refusal-nothing-started
	else
		fail pvm-refusal-nothing-started "$(cat "$E2E/err") calls: $(calls)"
	fi
fi

if [ ! -f "$vmlinux" ]; then
	skip libkrun-vm "the project's kernel is not built ($BUILD/kernel/vmlinux)"
	finish
	exit
fi

# --- the calls, stopped at krun_start_enter (the double fails it on request)
export HOTCELL_LIBKRUN_DOUBLE_FAIL=krun_start_enter
lk_run --kernel "$vmlinux" --rootfs "$root" /bin/true
expect_125 start-enter-error "libkrun: krun_start_enter: Invalid argument"
lk_jailed worker-jailed
expect_eq call-order "$(calls)" "krun_set_log_level krun_create_ctx krun_set_vm_config krun_add_virtiofs3 krun_add_virtiofs3 krun_disable_implicit_vsock krun_add_vsock krun_add_vsock_port2 krun_set_port_map krun_set_console_output krun_set_kernel krun_set_workdir krun_set_exec FAIL "
if grep -q '^krun_add_vsock 0 tsi_features=0$' "$HOTCELL_LIBKRUN_DOUBLE_LOG" &&
	grep -q '^krun_set_port_map 0 \[\]$' "$HOTCELL_LIBKRUN_DOUBLE_LOG"; then
	pass tsi-off-and-empty-port-map
else
	fail tsi-off-and-empty-port-map "$(cat "$HOTCELL_LIBKRUN_DOUBLE_LOG")"
fi
if grep -q 'tag=/dev/root .* ro=1$' "$HOTCELL_LIBKRUN_DOUBLE_LOG" && grep -q "tag=hcroot path=$root ro=1$" "$HOTCELL_LIBKRUN_DOUBLE_LOG" &&
	grep -q '^krun_set_exec 0 /hotcell-init argc=0 env: HOTCELL_ROOT=virtiofs HOTCELL_CHANNEL=vsock' "$HOTCELL_LIBKRUN_DOUBLE_LOG" &&
	! grep -q VIOLATION "$HOTCELL_LIBKRUN_DOUBLE_LOG"; then
	pass read-only-root-image-and-boot-keys
else
	fail read-only-root-image-and-boot-keys "$(cat "$HOTCELL_LIBKRUN_DOUBLE_LOG")"
fi
lk_run --kernel "$vmlinux" --network full -p 8080:80 -p 8443:443 -v "$E2E/work:/data:ro" --rootfs "$root" /bin/true
if grep -q '^krun_add_vsock 0 tsi_features=1$' "$HOTCELL_LIBKRUN_DOUBLE_LOG" &&
	grep -q '^krun_set_port_map 0 \[8080:80,8443:443\]$' "$HOTCELL_LIBKRUN_DOUBLE_LOG" &&
	grep -q "tag=hcvol0 path=$E2E/work ro=1" "$HOTCELL_LIBKRUN_DOUBLE_LOG" &&
	grep -q 'HOTCELL_VOL0=hcvol0:/data:ro' "$HOTCELL_LIBKRUN_DOUBLE_LOG"; then
	pass tsi-ports-volumes
else
	fail tsi-ports-volumes "$(cat "$HOTCELL_LIBKRUN_DOUBLE_LOG")"
fi
lk_run --kernel "$vmlinux" -p 8080:80 --rootfs "$root" /bin/true
expect_125 ports-need-network "-p needs a network"
# inet promises an egress filter TSI cannot give: refused before anything starts.
lk_run --kernel "$vmlinux" --network inet --rootfs "$root" /bin/true
expect_125 inet-refused "cannot enforce --network inet"
expect_eq inet-refused-nothing-started "$(cat "$HOTCELL_LIBKRUN_DOUBLE_LOG" 2>/dev/null | grep -c krun_start_enter)" 0
export HOTCELL_LIBKRUN_DOUBLE_FAIL=krun_add_virtiofs3
lk_run --kernel "$vmlinux" --rootfs "$root" /bin/true
expect_125 configuration-error "libkrun: krun_add_virtiofs3 /dev/root: Invalid argument"
unset HOTCELL_LIBKRUN_DOUBLE_FAIL
lk_clean configuration

# --- --no-jail: the worker keeps hotcell's namespaces and capabilities
HOTCELL_LIBKRUN_DOUBLE_FAIL=krun_start_enter lk_run --no-jail --kernel "$vmlinux" --rootfs "$root" /bin/true
if [ "$(id -u)" -ne 0 ]; then
	skip no-jail "the jail needs root"
elif grep -qF "mntns=$(readlink /proc/self/ns/mnt) " "$HOTCELL_LIBKRUN_DOUBLE_LOG" &&
	grep -q ' seccomp=0 ' "$HOTCELL_LIBKRUN_DOUBLE_LOG"; then
	pass no-jail
else
	fail no-jail "$(grep '^JAIL' "$HOTCELL_LIBKRUN_DOUBLE_LOG")"
fi
lk_clean no-jail

# --- a worker that dies without an exit frame: 125 and libkrun's last words
HOTCELL_LIBKRUN_DOUBLE_GUEST=crash lk_run --kernel "$vmlinux" --rootfs "$root" sh -c 'exit 3'
expect_125 worker-dies "KVM_EXIT_INTERNAL_ERROR"
expect_eq worker-dies-status "$(grep -c 'exited with status 1' "$E2E/err")" 1
lk_clean worker-dies

vsockd=${HOTCELL_VHOST_DEVICE_VSOCK:-/var/cache/hotcell-tools/usr/bin/vhost-device-vsock}
if [ ! -x "$vsockd" ]; then
	skip end-to-end "vhost-device-vsock is not installed (FACTS.md)"
	finish
	exit
fi

# --- jailed, the double cannot run its guest (its C virtiofsd needs CAP_SYS_ADMIN): it says so
lk_run --kernel "$vmlinux" --rootfs "$root" /bin/true
if [ "$(id -u)" -ne 0 ]; then
	skip double-refuses-jailed-guest "the jail needs root"
else
	expect_125 double-refuses-jailed-guest "the double cannot run its guest's C virtiofsd here"
fi
lk_clean double-refuses-jailed-guest

# --- end to end (--no-jail, above): the guest under QEMU through the double; exit code, output
lk_run --no-jail --json --kernel "$vmlinux" --rootfs "$root" sh -c 'echo hi; echo oops >&2; exit 3'
if [ "$rc" -eq 3 ] && [ "$(jq -r .backend "$E2E/out")" == libkrun ] && [ "$(jq -r .stdout "$E2E/out")" == hi ] &&
	[ "$(jq -r .stderr "$E2E/out")" == oops ] && [ "$(jq -r .exit_code "$E2E/out")" == 3 ] &&
	[ "$(jq -r .jailed "$E2E/out")" == false ]; then
	pass end-to-end
else
	fail end-to-end "rc=$rc out=$(head -c 600 "$E2E/out") err=$(head -c 600 "$E2E/err")"
fi
# The worker's own status is hotcell-init's: 0 after the host's shutdown frame.
expect_eq worker-status-is-init-exit "$(grep '^EXIT' "$HOTCELL_LIBKRUN_DOUBLE_LOG")" "EXIT 0"
lk_clean end-to-end

lk_run --no-jail --kernel "$vmlinux" --rootfs "$root" sh -c 'echo streamed; exit 0'
expect_eq plain-mode "$rc:$(cat "$E2E/out")" "0:streamed"

# --backend auto: libkrun comes first wherever it is usable.
"$HC" run --no-jail --json --kernel "$vmlinux" --rootfs "$root" sh -c 'exit 0' >"$E2E/out" 2>"$E2E/err"
expect_eq auto-picks-libkrun "$(jq -r .backend "$E2E/out" 2>/dev/null)" libkrun
lk_clean auto

# The guest dies while the command runs: a VM failure, never the command's code.
lk_run --no-jail --kernel "$vmlinux" --rootfs "$root" sh -c 'echo started; reboot -f; sleep 10; exit 7'
if [ "$rc" -eq 125 ] && grep -q "before the command ended" "$E2E/err"; then
	pass guest-dies-mid-command
else
	fail guest-dies-mid-command "rc=$rc err=$(head -c 600 "$E2E/err")"
fi
lk_clean guest-dies-mid-command

finish
