#!/usr/bin/env bash
# Regression tests for the run/VMM half of issue 16, each named after its defect: cancel in
# every phase before the command (1), a guest halt reported as the VM's end (4), no runtime dir
# left for good after SIGKILL (5), a capped console log (7), the boot-timeout message (10), bad
# -v guest paths and helper failures (11), the "no usable backend" message (12). After each:
# nothing left behind.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init

e2e_image bb || exit 1
# --cold: these defects are of the cold path (boot, helpers, teardown); a warm-eligible --no-jail
# run would build a block disk and a template in the state dir (tests/e2e/run-warm.sh has those).
VM=(--memory 128 --cold)
# The rootfs cache is made by the first run: the state dir is compared from then on.
e2e_run "${VM[@]}" bb true
e2e_snapshot

# waitpid_bounded PID SECONDS: waits for a background job, SIGKILLs it after SECONDS (a hang
# is then a failure, not a stuck suite); sets rc.
waitpid_bounded() {
	local pid=$1 i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
}

# ---- 1: a signal in a phase before the command ends the run (130/143), nothing left.
# Boot: the guest has not said hello yet.
"$HC" run "${VM[@]}" bb sleep 30 >"$E2E/out" 2>"$E2E/err" &
pid=$!
sleep 0.3
kill -INT "$pid"
waitpid_bounded "$pid" 20
expect defect-1-cancel-boot '[ "$rc" -eq 130 ] && grep -q "interrupted by SIGINT" "$E2E/err"'
e2e_clean defect-1-cancel-boot

# VM start: a QEMU that takes its time to greet (a wrapper that waits before exec'ing it). The
# QMP greeting wait watches the cancel fd: SIGTERM ends it long before the 30 s.
qemu_bin=$(command -v qemu-system-x86_64 || command -v qemu-system-aarch64 || true)
if [ -n "$qemu_bin" ]; then
	printf '#!/bin/sh\n# %s\nsleep 30\nexec %s "$@"\n' "$E2E" "$qemu_bin" >"$E2E/work/slow-qemu"
	chmod +x "$E2E/work/slow-qemu"
	# --no-jail: a jailed process sees only its own binary and libraries, not the shell
	# tools a wrapper script needs; what is tested here is the cancel, not the jail.
	HOTCELL_QEMU=$E2E/work/slow-qemu "$HC" run --no-jail --backend qemu "${VM[@]}" bb true >"$E2E/out" 2>"$E2E/err" &
	pid=$!
	# The wrapper's sleep runs once hotcell waits for the greeting.
	for _ in $(seq 100); do pgrep -f "$E2E/work/slow-qemu" >/dev/null && break; sleep 0.1; done
	t0=$SECONDS
	kill -TERM "$pid"
	waitpid_bounded "$pid" 20
	expect defect-1-cancel-vm-start '[ "$rc" -eq 143 ] && [ $((SECONDS - t0)) -lt 15 ] && grep -q "interrupted by SIGTERM" "$E2E/err"'
	e2e_clean defect-1-cancel-vm-start
else
	skip defect-1-cancel-vm-start "no qemu-system binary"
fi

# ---- 4: poweroff -f / halt -f: "the VM ended", 125, at once (not after --timeout 300).
for how in "poweroff -f" "halt -f"; do
	name=defect-4-${how%% *}-reported-as-vm-end
	e2e_json "${VM[@]}" --timeout 300 bb sh -c "echo before; $how"
	expect "$name" '[ "$rc" -eq 125 ] && [ "$(jqr .error.kind)" == vm ] && jqr .error.message | grep -q "the VM ended" && jqr .error.message | grep -qE "halted|powered off"'
	e2e_clean "$name"
done

# ---- 5: SIGKILL of hotcell leaves its runtime dir; the next start removes it.
"$HC" run "${VM[@]}" bb sleep 30 >"$E2E/out" 2>"$E2E/err" &
pid=$!
for _ in $(seq 100); do [ -n "$(ls -A "$HOTCELL_RUNTIME_DIR")" ] && break; sleep 0.1; done
sleep 0.5
kill -KILL "$pid"
wait "$pid" 2>/dev/null
# Its helpers die with it (PR_SET_PDEATHSIG); the directory stays until someone sweeps.
for _ in $(seq 50); do pgrep -f "$E2E/run" >/dev/null || break; sleep 0.1; done
left=$(ls -A "$HOTCELL_RUNTIME_DIR")
owner_ok=false
[ -n "$left" ] && grep -qE '^[0-9]+ [0-9]+$' "$HOTCELL_RUNTIME_DIR/$left/owner" && owner_ok=true
e2e_run "${VM[@]}" bb true
expect defect-5-sigkill-leaves-no-runtime-dir '[ -n "$left" ] && $owner_ok && [ "$rc" -eq 0 ] && [ -z "$(ls -A "$HOTCELL_RUNTIME_DIR")" ]'
e2e_clean defect-5-sigkill-leaves-no-runtime-dir

# ---- 7: a console flood uses at most HOTCELL_CONSOLE_MAX (plus one trim step) of the host;
# the panic after it is still detected from the console.
HOTCELL_CONSOLE_MAX=256K "$HC" run --json "${VM[@]}" --timeout 60 bb sh -c \
	'yes flood-flood-flood | head -c 1500000 >/dev/console; echo c >/proc/sysrq-trigger' >"$E2E/json" 2>"$E2E/err" &
pid=$!
maxkb=0
while kill -0 "$pid" 2>/dev/null; do
	for f in "$HOTCELL_RUNTIME_DIR"/*/console.log; do
		[ -f "$f" ] || continue
		kb=$(du -k "$f" 2>/dev/null | cut -f1)
		[ -n "$kb" ] && [ "$kb" -gt "$maxkb" ] && maxkb=$kb
	done
	sleep 0.2
done
waitpid_bounded "$pid" 5
expect defect-7-console-capped '[ "$maxkb" -gt 0 ] && [ "$maxkb" -le 600 ]'
expect defect-7-console-panic-still-found '[ "$rc" -eq 125 ] && jqr .error.message | grep -q "Kernel panic"'
e2e_clean defect-7-console-capped

# ---- 10: a boot timeout too short for QEMU: one prefix, the whole reason.
e2e_run --backend qemu "${VM[@]}" --boot-timeout 0.01 bb true
expect defect-10-boot-timeout-message '[ "$rc" -eq 125 ] && [ "$(grep -o "qemu did not start" "$E2E/err" | wc -l)" -eq 1 ] && grep -q "no answer from QEMU" "$E2E/err"'
e2e_clean defect-10-boot-timeout-message

# ---- 11: bad guest paths are refused before anything starts; a helper's own reason.
mkdir -p "$E2E/work/vol"
bad=0
for g in /host/../../etc / /dev /dev/pts /proc/x /sys //sys/ /a/./b; do
	e2e_run "${VM[@]}" -v "$E2E/work/vol:$g" bb true
	if [ "$rc" -ne 125 ] || ! grep -q "the guest path" "$E2E/err"; then
		bad=1
		echo "-v ...:$g: rc=$rc $(cat "$E2E/err")"
	fi
done
e2e_run "${VM[@]}" -v "$E2E/work/vol:/a" -v "$E2E/work/vol:/a/" bb true
grep -q "given twice" "$E2E/err" || bad=1
expect defect-11-bad-guest-paths '[ "$bad" -eq 0 ]'
e2e_clean defect-11-bad-guest-paths
# A host directory virtiofsd cannot serve: its own last line, not QEMU's vhost error.
e2e_run --backend qemu "${VM[@]}" -v /:/host bb ls /host
expect defect-11-helper-reason '[ "$rc" -eq 125 ] && grep -q "virtiofsd for /host" "$E2E/err" && ! grep -q vhost_backend_init "$E2E/err"'
e2e_clean defect-11-helper-reason

# ---- 12: --accel tcg is QEMU's alone: its reason leads, the others are one clause.
HOTCELL_QEMU=$E2E/work/no-such-qemu e2e_run --accel tcg "${VM[@]}" bb true
expect defect-12-backend-message '[ "$rc" -eq 125 ] && grep -q "no usable backend: qemu: HOTCELL_QEMU=" "$E2E/err" && grep -q "do not support what was asked" "$E2E/err"'
e2e_clean defect-12-backend-message

finish
