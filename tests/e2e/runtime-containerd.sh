#!/usr/bin/env bash
# containerd 1.6 + `ctr run --runc-binary hotcell-runtime` (real VMs, DESIGN.md §14): a
# containerd of the test's own (config, root, state and socket in $E2E, the CRI plugin
# disabled), started here and stopped at the end. Run with exit codes, exec, kill, delete;
# nothing left behind.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
source "$HOTCELL_TOP/tests/lib/runtime.sh"
for t in containerd ctr containerd-shim-runc-v2; do
	command -v $t >/dev/null || { skip runtime-containerd "$t is not installed (scripts/install-deps.sh)"; exit 0; }
done
[ -x "$RT" ] || { skip runtime-containerd "$RT is not built"; exit 0; }
source "$HOTCELL_TOP/tests/lib/mkimage.sh"
rt_wrapper
mkimage "$E2E/work/layout" latest >"$E2E/work/mkimage.log" 2>&1 || { fail image "$(tail -n 3 "$E2E/work/mkimage.log")"; exit 1; }
C=$E2E/ctrd
mkdir -p "$C"
cat >"$C/config.toml" <<EOC
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$C/c.sock"
[ttrpc]
  address = "$C/c.sock.ttrpc"
EOC
containerd --config "$C/config.toml" >"$C/log" 2>&1 &
CPID=$!
stop_containerd() {
	kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
	# the shims end with their tasks; mounts of the snapshotter go with its root
	grep -o "$C/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
	e2e_cleanup
}
trap stop_containerd EXIT
for _ in $(seq 1 50); do [ -S "$C/c.sock" ] && break; sleep 0.1; done
[ -S "$C/c.sock" ] || { fail containerd-start "$(tail -n 3 "$C/log")"; exit 1; }
CTR=(ctr -a "$C/c.sock" -n hotcell-test)
tar -C "$E2E/work/layout" -cf "$E2E/work/img.tar" .
"${CTR[@]}" images import --index-name localhost/hcbb:latest "$E2E/work/img.tar" >"$E2E/out" 2>"$E2E/err"
expect import '[ $? -eq 0 ]'
ctr_() { "${CTR[@]}" "$@" >"$E2E/out" 2>"$E2E/err"; rc=$?; }

ctr_ run --rm --runc-binary "$E2E/hcrt" localhost/hcbb:latest c1 sh -c 'echo hi; uname -r; exit 6'
expect run-exit-code '[ "$rc" -eq 6 ] && [ "$(head -n 1 "$E2E/out")" == hi ] && [ "$(sed -n 2p "$E2E/out")" != "$(uname -r)" ]'
rt_clean run

ctr_ run -d --runc-binary "$E2E/hcrt" localhost/hcbb:latest c2 sleep 600
expect run-detached '[ "$rc" -eq 0 ]'
ctr_ task exec --exec-id e1 c2 sh -c 'echo in-exec; exit 2'
expect exec '[ "$rc" -eq 2 ] && [ "$(cat "$E2E/out")" == in-exec ]'
st=$("${CTR[@]}" task ls | awk '$1 == "c2" {print $3}')
expect task-running '[ "$st" == RUNNING ]'
# The task's pid is the VM's supervisor; `task ps` lists it (runtime ps --format json).
pid=$("${CTR[@]}" task ls | awk '$1 == "c2" {print $2}')
expect task-pid-supervisor '[ -n "$pid" ] && tr "\0" " " </proc/$pid/cmdline | grep -q hotcell-vmd'
ctr_ task ps c2
expect task-ps '[ "$rc" -eq 0 ] && grep -qw "^$pid" "$E2E/out"'
ctr_ task kill -s SIGKILL c2
for _ in $(seq 1 50); do
	st=$("${CTR[@]}" task ls | awk '$1 == "c2" {print $3}')
	[ "$st" == STOPPED ] && break
	sleep 0.2
done
expect kill '[ "$rc" -eq 0 ] && [ "$st" == STOPPED ]'
ctr_ task delete c2
expect task-delete '[ "$rc" -eq 0 ]'
ctr_ container delete c2
expect container-delete '[ "$rc" -eq 0 ]'
rt_clean kill-delete

# A signal reaches the workload as itself: its USR1 trap ends it with 3 (ctr run's status).
"${CTR[@]}" run --rm --runc-binary "$E2E/hcrt" localhost/hcbb:latest c3 sh -c 'trap "exit 3" USR1; touch /ready; while :; do sleep 0.1; done' >"$E2E/out3" 2>&1 &
runpid=$!
for _ in $(seq 1 300); do "${CTR[@]}" task exec --exec-id r c3 test -e /ready >/dev/null 2>&1 && break; sleep 0.2; done
ctr_ task kill -s SIGUSR1 c3
wait "$runpid"
rc3=$?
expect kill-usr1 '[ "$rc" -eq 0 ] && [ "$rc3" -eq 3 ]'
rt_clean signal
"${CTR[@]}" images rm localhost/hcbb:latest >/dev/null 2>&1
finish
