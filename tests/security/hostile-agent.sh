#!/usr/bin/env bash
# Group 3 of docs/security.md: a hostile guest agent. The VMs boot a test initramfs whose PID 1
# is tests/security/hostile-init.c instead of hotcell-init (HOTCELL_INITRAMFS): it speaks the
# host<->guest protocol wrongly on purpose, chosen by the guest's hostname at boot (nohello,
# badversion, garbage-boot) or by the command's argv[0] (flood, forged-exit, ...). Each case
# checks the exit code, exactly one clear error line on stderr, hotcell's (or the supervisor's)
# peak memory (VmHWM, sampled from /proc while it runs, under HWM_MAX_KB) and that nothing is
# left: no process, runtime dir, lease, mount or VM record. Both `hotcell run` and the
# persistent path (`vm create` + `vm exec`), on the serial channel and on vsock.
#
# Checked by hand that it can fail: with run.c's "exit before started" check removed,
# run-exit-before-started and vsock-exit-before-started report 42 (the forged code) and FAIL;
# without the window check, run-flood-ignores-window runs until the 60 s guard kills it (FAIL);
# without the deadline on hotcell's own stdout, run-stdout-never-read hangs until the guard
# (FAIL); with agent.c's check removed, vm-exit-before-started reports 42 and FAILs.
source "$(dirname "$0")/../lib.sh"
HC=${HOTCELL_BIN:-$HOTCELL_TOP/$BUILD/bin/hotcell}
INITRD=$HOTCELL_TOP/$BUILD/tests/security/hostile-initramfs.cpio
if [ ! -x "$HC" ] || [ ! -f "$INITRD" ]; then
	skip hostile-agent "$HC or $INITRD is not built (make)"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	skip hostile-agent "the VMs run jailed, which needs root"
	exit 0
fi
SEC=$(mktemp -d /tmp/hchostile.XXXXXX)
export HOTCELL_HOME=$SEC/home HOTCELL_RUNTIME_DIR=$SEC/run HOTCELL_JAIL_LEASE_DIR=$SEC/leases
export HOTCELL_INITRAMFS=$INITRD
mkdir -p "$HOTCELL_HOME" "$HOTCELL_RUNTIME_DIR" "$SEC/root/bin"
chmod 700 "$HOTCELL_RUNTIME_DIR"
cleanup() {
	local pids
	pids=$(pgrep -f "$SEC" | grep -vx "$$" || true)
	[ -z "$pids" ] || kill -9 $pids 2>/dev/null
	rm -rf "$SEC"
}
trap cleanup EXIT
if ! "$HC" doctor 2>&1 | grep -q 'usable:      yes'; then
	skip hostile-agent "no usable backend (hotcell doctor)"
	exit 0
fi
# The guest never looks at its root; a directory is the cheapest one to give.
cp /bin/true "$SEC/root/bin/" 2>/dev/null || touch "$SEC/root/bin/true"
ROOT=(--rootfs "$SEC/root")
VSOCK=(--rootfs-mode block --channel vsock)
vdv=$(command -v vhost-device-vsock || ls /var/cache/hotcell-tools/usr/bin/vhost-device-vsock 2>/dev/null)
# hotcell's peak RSS bound: its own heap plus one frame buffer (~1 MiB) and the output in
# flight; measured ~14 MiB for every case here.
HWM_MAX_KB=${HWM_MAX_KB:-65536}

# hwm_watch PID: the largest VmHWM (kB) of PID until it exits, into $SEC/hwm.
hwm_watch() {
	local pid=$1 max=0 v
	while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do
		v=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$pid/status" 2>/dev/null)
		[ -n "$v" ] && [ "$v" -gt "$max" ] && max=$v
		sleep 0.1
	done
	echo "$max" >"$SEC/hwm"
}

# hrun ARGS...: hotcell ARGS, stdout to $SEC/out (or $OUT_TO), stderr to $SEC/err; sets rc,
# hwm (kB) and secs. A guard of 60 s turns a hang into rc 137.
hrun() {
	local t0=$SECONDS pid w
	timeout -s KILL 60 "$HC" "$@" >"${OUT_TO:-$SEC/out}" 2>"$SEC/err" &
	pid=$!
	local child=""
	for _ in $(seq 100); do
		child=$(pgrep -P "$pid" -x hotcell | head -1)
		[ -n "$child" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	hwm_watch "$child" &
	w=$!
	wait "$pid"
	rc=$?
	wait "$w"
	hwm=$(cat "$SEC/hwm")
	secs=$((SECONDS - t0))
}

# expect_true NAME TEST: PASS when the bash test holds.
expect_true() {
	if eval "$2"; then pass "$1"; else fail "$1" "not true: $2"; fi
}

# hcheck NAME RC REGEX: the last hrun ended with RC, one stderr line matching REGEX (none when
# REGEX is empty), its memory within the bound; then nothing is left.
hcheck() {
	local name=$1 want=$2 re=$3 lines why=""
	lines=$(wc -l <"$SEC/err")
	[ "$rc" == "$want" ] || why="exit $rc, want $want;"
	if [ -n "$re" ]; then
		[ "$lines" -eq 1 ] || why="$why $lines stderr lines;"
		grep -qE "$re" "$SEC/err" || why="$why stderr does not say /$re/;"
	else
		[ "$lines" -eq 0 ] || why="$why stderr not empty;"
	fi
	[ "${hwm:-0}" -le "$HWM_MAX_KB" ] || why="$why VmHWM ${hwm} kB > $HWM_MAX_KB kB;"
	why="$why$(leftovers)"
	echo "# $name: exit $rc, ${secs}s, VmHWM ${hwm} kB: $(head -c 200 "$SEC/err")"
	if [ -z "$why" ]; then pass "$name"; else fail "$name" "$why $(head -c 300 "$SEC/err")"; fi
}

# Nothing of ours: processes, runtime dirs, leases, mounts, VM records, TAPs named for them.
leftovers() {
	local procs
	procs=$(pgrep -af "$SEC" | grep -v "^$$ " | grep -E 'qemu|virtiofsd|vhost-device|hotcell' || true)
	[ -z "$procs" ] || echo -n " processes left: $(cut -c1-100 <<<"$procs" | tr '\n' ' ');"
	[ -z "$(ls -A "$HOTCELL_RUNTIME_DIR")" ] || echo -n " runtime dir: $(ls -A "$HOTCELL_RUNTIME_DIR" | tr '\n' ' ');"
	[ -z "$(ls -A "$HOTCELL_JAIL_LEASE_DIR" 2>/dev/null)" ] || echo -n " lease left;"
	! grep -q "$SEC" /proc/mounts || echo -n " mount left;"
	[ -z "$(ls -A "$HOTCELL_HOME/vms" 2>/dev/null | grep -v '^\.lock$')" ] || echo -n " VM record left;"
}

# --- hotcell run, serial channel ---
hrun run "${ROOT[@]}" honest
hcheck run-honest-control 0 ""
grep -qx honest "$SEC/out" || fail run-honest-output "stdout: $(head -c 100 "$SEC/out")"

OUT_TO=/dev/null hrun run "${ROOT[@]}" window 16
hcheck run-flood-within-window-bounded 0 ""
hrun run "${ROOT[@]}" flood
hcheck run-flood-ignores-window 125 'protocol error: more output than the window allows'
hrun run "${ROOT[@]}" oversize
hcheck run-oversized-frame 125 'protocol error: malformed frame'
hrun run "${ROOT[@]}" badtype
hcheck run-bad-frame-type 125 'protocol error: malformed frame'
hrun run "${ROOT[@]}" badpayload
hcheck run-bad-payload 125 'protocol error: bad exit frame'
hrun run "${ROOT[@]}" garbage
hcheck run-garbage-bytes 125 'protocol error: malformed frame'
hrun run "${ROOT[@]}" short
hcheck run-short-header-then-poweroff 125 'the VM ended before the command ended: the guest (halted|powered off)'
hrun run "${ROOT[@]}" exit-early
hcheck run-exit-before-started 125 'protocol error: exit before started'
hrun run "${ROOT[@]}" out-early
hcheck run-output-before-started 125 'protocol error: output before started'
hrun run "${ROOT[@]}" started2
hcheck run-second-started 125 'protocol error: bad or second started frame'
hrun run "${ROOT[@]}" bigresult
hcheck run-result-too-big 125 'protocol error: malformed frame'
# The guest owns the command's exit status: a forged EXIT ends the run there, with its code,
# and the VM (with whatever still ran in it) is ended; nothing after it is taken.
hrun run "${ROOT[@]}" forged-exit
hcheck run-forged-exit-ends-run 42 ""
grep -q after "$SEC/out" && fail run-forged-exit-nothing-after "output after the exit was taken"
hrun run --hostname badversion "${ROOT[@]}" honest
hcheck run-wrong-protocol-version 125 'the guest speaks protocol version 4, hotcell 3'
hrun run --hostname garbage-boot "${ROOT[@]}" honest
hcheck run-garbage-instead-of-hello 125 'protocol error: malformed frame'
hrun run --hostname nohello --boot-timeout 3 "${ROOT[@]}" honest
hcheck run-no-hello-boot-timeout 125 'the guest did not answer within the boot timeout \(3 s\)'
hrun run --timeout 2 "${ROOT[@]}" silence
hcheck run-silence-timeout-applies 124 'timed out after 2 s'
# virtio-serial does not tell the host that the guest closed its port: a hang-up there is
# silence, and the run's --timeout ends it (on vsock it is an EOF: vsock-hangup below).
hrun run --timeout 2 "${ROOT[@]}" hangup
hcheck run-hangup-serial-timeout-applies 124 'timed out after 2 s'
hrun run "${ROOT[@]}" poweroff
hcheck run-poweroff-mid-command 125 'the VM ended before the command ended: the guest (halted|powered off)'

# ~100 MB/s (as fast as the VM's UART takes) to the console for 2 s: hotcell's memory stays
# bounded and the console log's disk blocks stay near the cap (HOTCELL_CONSOLE_MAX).
(
	max=0
	for _ in $(seq 80); do
		for f in $(find "$HOTCELL_RUNTIME_DIR" -name 'console*' 2>/dev/null); do
			k=$(du -k "$f" 2>/dev/null | cut -f1)
			[ -n "$k" ] && [ "$k" -gt "$max" ] && max=$k
		done
		sleep 0.1
	done
	echo "$max" >"$SEC/console-kb"
) &
cw=$!
HOTCELL_CONSOLE_MAX=256K hrun run "${ROOT[@]}" console 2
hcheck run-console-flood-bounded 0 ""
wait "$cw"
ckb=$(cat "$SEC/console-kb")
echo "# console log on disk at most ${ckb} kB (cap 256 kB)"
expect_true run-console-log-capped '[ "$ckb" -gt 0 ] && [ "$ckb" -le 1024 ]'

# Our stdout is a pipe nobody reads: --timeout still ends the run (the write waits in poll()
# until the run's deadline), instead of hanging on it.
mkfifo "$SEC/fifo"
exec 7<>"$SEC/fifo"
OUT_TO=$SEC/fifo hrun run --timeout 3 "${ROOT[@]}" window 8
exec 7>&-
hcheck run-stdout-never-read 124 'timed out after 3 s'

# --- vsock channel (block rootfs + vhost-device-vsock) ---
if [ -n "$vdv" ]; then
	# vsock absorbs WINDOW frames the guest never reads (~2 GB worth of output, its credit
	# buffers) before the window check can see the overrun: the run's --timeout ends it if the
	# check has not; either way one line, bounded memory.
	OUT_TO=/dev/null hrun run --timeout 4 "${VSOCK[@]}" "${ROOT[@]}" flood
	[ "$rc" == 125 ] && hcheck vsock-flood-ignores-window 125 'more output than the window allows' ||
		hcheck vsock-flood-ignores-window 124 'timed out after 4 s'
	hrun run "${VSOCK[@]}" "${ROOT[@]}" forged-exit
	hcheck vsock-forged-exit-ends-run 42 ""
	hrun run "${VSOCK[@]}" "${ROOT[@]}" exit-early
	hcheck vsock-exit-before-started 125 'protocol error: exit before started'
	hrun run "${VSOCK[@]}" "${ROOT[@]}" hangup
	hcheck vsock-hangup-mid-command 125 'the agent channel closed before the command ended'
else
	skip vsock "vhost-device-vsock is not installed (scripts/install-deps.sh fetches it)"
fi

# --- the persistent path: vm create + vm exec ---
# vm_case NAME RC REGEX ATTACK [CREATE-ARGS]: a VM, one honest exec (the control), the attack
# (checked like a run: vm exec's rc and line, the supervisor's memory), then the VM must be
# dead (a violation ends it), a next exec must fail with one line, and `vm rm` leaves nothing.
vm_case() {
	local name=$1 want=$2 re=$3 attack=$4 id sup st
	shift 4
	id=$(timeout 60 "$HC" vm create "${ROOT[@]}" "$@" 2>"$SEC/err")
	if [ -z "$id" ]; then
		fail "$name" "vm create failed: $(head -c 300 "$SEC/err")"
		return
	fi
	sup=$("$HC" vm ls --json | jq -r --arg id "$id" '.[] | select(.id == $id) | .pid')
	hrun vm exec "$id" honest
	[ "$rc" == 0 ] && grep -qx honest "$SEC/out" || fail "$name-control" "exit $rc: $(cat "$SEC/err")"
	hwm_watch "$sup" &
	local sw=$!
	hrun vm exec "$id" $attack
	wait "$sw"
	local shwm
	shwm=$(cat "$SEC/hwm")
	for _ in $(seq 50); do
		st=$("$HC" vm ls --json | jq -r --arg id "$id" '.[] | select(.id == $id) | .status')
		[ "$st" != running ] && break
		sleep 0.1
	done
	# leftovers are checked after vm rm: the record stays until then.
	local why=""
	[ "$rc" == "$want" ] || why="exit $rc, want $want;"
	if [ -n "$re" ]; then
		[ "$(wc -l <"$SEC/err")" -eq 1 ] && grep -qE "$re" "$SEC/err" || why="$why stderr: $(head -c 300 "$SEC/err");"
	fi
	[ "${shwm:-0}" -le "$HWM_MAX_KB" ] || why="$why supervisor VmHWM $shwm kB;"
	echo "# $name: exit $rc, supervisor VmHWM ${shwm} kB, then $st: $(head -c 200 "$SEC/err")"
	if [ -z "$why" ]; then pass "$name"; else fail "$name" "$why"; fi
	expect_eq "$name-vm-ended" "$st" dead
	hrun vm exec "$id" honest
	expect_true "$name-next-exec-fails-cleanly" '[ "$rc" == 125 ] && [ "$(wc -l <"$SEC/err")" -eq 1 ]'
	"$HC" vm rm "$id" >/dev/null 2>&1
	local left
	left=$(leftovers)
	if [ -z "$left" ]; then pass "$name-clean"; else fail "$name-clean" "$left"; fi
}
vm_case vm-exit-before-started 125 'protocol error: exit before started' exit-early
# The forged EXIT is the exec's end (the guest owns the code); the frames after it are for a
# stream that no longer exists: a violation, the VM is ended.
vm_case vm-forged-exit-then-frames 42 "" forged-exit
vm_case vm-flood-ignores-window 125 'more data than the window allows' flood
if [ -n "$vdv" ]; then
	vm_case vm-vsock-flood 125 'more data than the window allows' flood "${VSOCK[@]}"
fi
# A guest that fails at HELLO fails the create with one line, and leaves no VM behind.
hrun vm create --hostname badversion "${ROOT[@]}"
hcheck vm-create-wrong-protocol-version 125 'the guest speaks protocol version 4, hotcell 3'
hrun vm create --hostname nohello --boot-timeout 3 "${ROOT[@]}"
hcheck vm-create-no-hello-boot-timeout 125 'did not answer within the boot timeout \(3 s\)'
expect_eq no-lease-left "$(ls -A "$HOTCELL_JAIL_LEASE_DIR" 2>/dev/null)" ""
finish
