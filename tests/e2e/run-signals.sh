#!/usr/bin/env bash
# podman's --sig-proxy for the stop signals (real VMs): once the command runs, SIGINT, SIGTERM
# and SIGHUP sent to hotcell are the command's, and hotcell exits with its status (issue 15,
# bug 8: a command that traps SIGINT and exits 0 made hotcell exit 130, podman 0); a command
# that does not end within --stop-timeout, or a second stop signal within 2 s, ends the VM
# (exit 137). Nothing is left behind in any case.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init

e2e_image bb || exit 1

# start_cmd SCRIPT [RUN OPTIONS...]: hotcell run in the background, until SCRIPT said ready.
start_cmd() {
	local script=$1
	shift
	: >"$E2E/out"
	"$HC" run "$@" -m 128m bb sh -c "$script" </dev/null >"$E2E/out" 2>"$E2E/err" &
	hc_pid=$!
	for _ in $(seq 1 1500); do grep -q ready "$E2E/out" 2>/dev/null && break; sleep 0.2; done
}

start_cmd 'trap "echo got-int; exit 0" INT; echo ready; while :; do sleep 0.1; done'
kill -INT "$hc_pid"
wait "$hc_pid"
rc=$?
expect bug-8-sigint-trapped-exit-0 '[ "$rc" -eq 0 ] && grep -q got-int "$E2E/out"'
e2e_clean sigint-trapped
e2e_snapshot # the first run filled the rootfs cache

start_cmd 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done'
kill -TERM "$hc_pid"
wait "$hc_pid"
rc=$?
expect sigterm-forwarded-status '[ "$rc" -eq 3 ] && grep -q got-term "$E2E/out"'
e2e_clean sigterm-forwarded

# A command that ignores SIGTERM: --stop-timeout 2 later the VM is ended.
start_cmd 'trap "" TERM; echo ready; while :; do sleep 0.1; done' --stop-timeout 2
t0=$(date +%s)
kill -TERM "$hc_pid"
wait "$hc_pid"
rc=$?
t1=$(date +%s)
expect stop-timeout-kills-137 '[ "$rc" -eq 137 ]'
echo "INFO: --stop-timeout 2: hotcell ended $((t1 - t0)) s after SIGTERM"
e2e_clean stop-timeout

# A double Ctrl-C: the second SIGINT within 2 s ends the VM at once (the default
# --stop-timeout of 10 s is not waited for).
start_cmd 'trap "echo int-ignored" INT; echo ready; while :; do sleep 0.1; done'
kill -INT "$hc_pid"
sleep 0.5
kill -INT "$hc_pid"
wait "$hc_pid"
rc=$?
expect double-sigint-kills-137 '[ "$rc" -eq 137 ] && grep -q int-ignored "$E2E/out"'
e2e_clean double-sigint

finish
