#!/usr/bin/env bash
# Persistent VMs end to end (real VMs): create -> exec x3 with state kept -> two concurrent
# execs whose outputs interleave in time -> cp of a 64 MiB binary file both ways (sha256 equal),
# a directory with modes and a symlink both ways, the errors of cp -> pause/resume -> rm.
# exec's stdin, exit statuses (code, 127, timeout 124), --json, -e/-w/-u.
# HOTCELL_E2E_VM_ARGS adds create flags (tests/e2e/vm-block-vsock.sh).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
source "$HOTCELL_TOP/tests/lib/vm.sh"
e2e_image bb || exit 1
sum() { sha256sum | cut -d' ' -f1; }
t=${E2E_PREFIX:-}

# 256 MiB: the guest's /tmp (its overlay, in RAM) must hold the 64 MiB file.
id=$("$HC" vm create --memory 256 ${HOTCELL_E2E_VM_ARGS:-} --name box bb 2>"$E2E/err")
rc=$?
expect "${t}create" '[ "$rc" -eq 0 ] && [ -n "$id" ]'

# exec x3, the state kept between them.
"$HC" vm exec box sh -c 'echo one > /tmp/state' && "$HC" vm exec box sh -c 'echo two >> /tmp/state'
out=$("$HC" vm exec box cat /tmp/state 2>"$E2E/err"); rc=$?
expect "${t}exec-state-kept" '[ "$rc" -eq 0 ] && [ "$out" == "$(printf "one\ntwo")" ]'
"$HC" vm exec box sh -c 'exit 7'; rc=$?
expect "${t}exec-exit-code" '[ "$rc" -eq 7 ]'
"$HC" vm exec box no-such-command 2>"$E2E/err"; rc=$?
expect "${t}exec-not-found" '[ "$rc" -eq 127 ] && grep -q "not found" "$E2E/err"'
"$HC" vm exec --timeout 1 box sleep 20; rc=$?
expect "${t}exec-timeout" '[ "$rc" -eq 124 ]'
out=$(head -c 300000 /bin/busybox | "$HC" vm exec -i box sha256sum | cut -d" " -f1)
expect "${t}exec-stdin" '[ "$out" == "$(head -c 300000 /bin/busybox | sum)" ]'
out=$("$HC" vm exec -e HCX=42 -w /tmp -u 1000 box sh -c 'echo $HCX $(pwd) $(id -u)')
expect "${t}exec-env-workdir-user" '[ "$out" == "42 /tmp 1000" ]'
"$HC" vm exec --json box sh -c 'echo out; echo err >&2; exit 3' >"$E2E/json"; rc=$?
expect "${t}exec-json" '[ "$rc" -eq 3 ] && [ "$(jqr .stdout)" == out ] && [ "$(jqr .stderr)" == err ] && [ "$(jqr .exit_code)" == 3 ] && [ -n "$(jqr .backend)" ]'
# The exec's output streams while it runs (binary-safe), here 2 MB.
out=$("$HC" vm exec box sh -c 'head -c 2000000 /bin/busybox' | sum)
expect "${t}exec-binary-output" '[ "$out" == "$(head -c 2000000 /bin/busybox | sum)" ]'

# Two execs at once: each appends to one file with pauses; the lines interleave.
"$HC" vm exec box sh -c 'for i in 1 2 3 4; do echo A >> /tmp/log; sleep 0.4; done' &
a=$!
"$HC" vm exec box sh -c 'for i in 1 2 3 4; do echo B >> /tmp/log; sleep 0.4; done'
wait "$a"
log=$("$HC" vm exec box cat /tmp/log | tr -d '\n')
expect "${t}exec-concurrent-interleave" '[ "${#log}" -eq 8 ] && [[ "$log" != AAAABBBB ]] && [[ "$log" != BBBBAAAA ]]'

# --detach: returns at once with the guest pid; the command runs on, its output in a guest log.
# (The image has no /var/log; the guest makes only /var/log/hotcell itself.)
"$HC" vm exec box mkdir -p /var/log
pid=$("$HC" vm exec --detach box sh -c 'sleep 1; echo done > /tmp/det; echo logged' 2>"$E2E/err"); rc=$?
expect "${t}exec-detach-returns" '[ "$rc" -eq 0 ] && [[ "$pid" =~ ^[0-9]+$ ]] && [ -z "$("$HC" vm exec box sh -c "cat /tmp/det 2>/dev/null")" ]'
for _ in $(seq 1 40); do [ "$("$HC" vm exec box sh -c "cat /tmp/det 2>/dev/null")" == done ] && break; sleep 0.25; done
expect "${t}exec-detach-runs-on" '[ "$("$HC" vm exec box cat /tmp/det)" == done ] && [ "$("$HC" vm exec box cat /var/log/hotcell/exec-$pid.log)" == logged ]'

# cp: 64 MiB of random bytes in and out, byte for byte.
head -c 64M /dev/urandom >"$E2E/work/big"
"$HC" vm cp "$E2E/work/big" box:/tmp/big 2>"$E2E/err"; rc=$?
expect "${t}cp-in-64m" '[ "$rc" -eq 0 ] && [ "$("$HC" vm exec box sha256sum /tmp/big | cut -d" " -f1)" == "$(sum <"$E2E/work/big")" ]'
"$HC" vm cp box:/tmp/big "$E2E/work/back" 2>"$E2E/err"; rc=$?
expect "${t}cp-out-64m" '[ "$rc" -eq 0 ] && [ "$(sum <"$E2E/work/back")" == "$(sum <"$E2E/work/big")" ]'
rm -f "$E2E/work/back"
# A directory: modes and a symlink kept, both ways; into an existing directory as cp does.
mkdir -p "$E2E/work/tree/sub" && echo hi >"$E2E/work/tree/sub/f" && chmod 640 "$E2E/work/tree/sub/f"
ln -s f "$E2E/work/tree/sub/l" && chmod 750 "$E2E/work/tree/sub"
"$HC" vm cp "$E2E/work/tree" box:/tmp/tree
out=$("$HC" vm exec box sh -c 'stat -c "%a %F" /tmp/tree/sub /tmp/tree/sub/f; readlink /tmp/tree/sub/l; cat /tmp/tree/sub/f')
expect "${t}cp-in-dir" '[ "$out" == "$(printf "750 directory\n640 regular file\nf\nhi")" ]'
mkdir "$E2E/work/out"
"$HC" vm cp box:/tmp/tree "$E2E/work/out"
expect "${t}cp-out-dir" '[ "$(stat -c %a "$E2E/work/out/tree/sub")" == 750 ] && [ "$(stat -c %a "$E2E/work/out/tree/sub/f")" == 640 ] && [ "$(readlink "$E2E/work/out/tree/sub/l")" == f ] && [ "$(cat "$E2E/work/out/tree/sub/f")" == hi ]'
# Errors: a missing path either way, a full disk; nothing partial left behind.
"$HC" vm cp box:/no/such "$E2E/work/x" 2>"$E2E/err"; rc=$?
expect "${t}cp-out-missing" '[ "$rc" -eq 125 ] && grep -q "no such file" "$E2E/err" && [ ! -e "$E2E/work/x" ]'
"$HC" vm cp "$E2E/work/nonexistent" box:/tmp/x 2>"$E2E/err"; rc=$?
expect "${t}cp-in-missing" '[ "$rc" -eq 125 ] && grep -qi "no such file" "$E2E/err"'
"$HC" vm cp "$E2E/work/big" box:/tmp/big2 2>/dev/null
"$HC" vm cp "$E2E/work/big" box:/tmp/big3 2>"$E2E/err"; rc=$?
expect "${t}cp-in-full" '[ "$rc" -eq 125 ] && grep -q "no space left" "$E2E/err" && [ -z "$("$HC" vm exec box sh -c "ls -a /tmp | grep big3")" ]'
"$HC" vm exec box rm -f /tmp/big /tmp/big2

# pause / resume keep the state; exec is refused while paused.
"$HC" vm pause box
"$HC" vm exec box true 2>"$E2E/err"; rc=$?
expect "${t}exec-paused-refused" '[ "$rc" -eq 125 ] && grep -q paused "$E2E/err"'
"$HC" vm resume box
out=$("$HC" vm exec box cat /tmp/state | head -1)
expect "${t}pause-resume-state" '[ "$out" == one ]'

"$HC" vm rm -f box
vm_clean "${t}rm-leaves-nothing"
finish
