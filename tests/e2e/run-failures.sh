#!/usr/bin/env bash
# hotcell run end to end (real VMs), when things go wrong: a timeout that kills the command
# (124), a guest that fills its tmpfs, a guest kernel panic (125, said so), a guest that
# remounts the image share read-write and writes (refused; the cache unchanged), SIGINT to
# hotcell mid-run, once and twice. After each: nothing left behind.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init

e2e_image bb || exit 1
# The cached tree with contents and times: a write through the share would show here.
tree_state() { find "$HOTCELL_HOME/rootfs" -path '*.lock' -prune -o -printf '%p %s %m %T@\n' | sort | sha256sum; }

# Timeout: the guest kills the command at the deadline; the output so far is kept.
SNAP=
e2e_json --timeout 2 bb sh -c 'echo start; sleep 60; echo end'
expect timeout-status '[ "$rc" -eq 124 ]'
expect timeout-json '[ "$(jqr .timed_out)" == true ] && [ "$(jqr .exit_code)" == null ] && [ "$(jqr .stdout)" == start ]'
expect timeout-killed-early '[ "$(jqr ".timings_ms.exec < 60000")" == true ]'
e2e_clean timeout
e2e_snapshot

# A command that fills the guest's tmpfs overlay: it fails, the run does not.
e2e_run bb sh -c 'dd if=/dev/zero of=/fill bs=1M 2>/dev/null; echo survived; rm /fill; echo after'
expect tmpfs-full '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out")" == "$(printf "survived\nafter")" ]'
e2e_clean tmpfs-full

# The image share (the directory rootfs's virtio-fs) remounted read-write from inside: the
# host's read-only bind refuses.
before=$(tree_state)
e2e_run --rootfs-mode dir bb sh -c 'mkdir -p /tmp/m && mount -t virtiofs hcroot /tmp/m && mount -o remount,rw /tmp/m; ls /tmp/m/bin/busybox >/dev/null && echo mounted; echo pwned >/tmp/m/pwned && echo WROTE; touch /tmp/m/bin/busybox && echo TOUCHED; rm -f /tmp/m/bin/sh && echo REMOVED; true'
expect ro-image-mounted 'grep -q mounted "$E2E/out"'
expect ro-image-refused '! grep -qE "WROTE|TOUCHED|REMOVED" "$E2E/out"'
expect ro-image-cache-unchanged '[ "$(tree_state)" == "$before" ]'
e2e_clean ro-image

# A guest kernel panic: hotcell's own failure (125), and the message says panic.
e2e_json bb sh -c 'echo c >/proc/sysrq-trigger; sleep 30'
expect panic-status '[ "$rc" -eq 125 ]'
expect panic-json '[ "$(jqr .error.kind)" == vm ] && jqr .error.message | grep -qi "panic"'
expect panic-stderr 'grep -qi panic "$E2E/err"'
e2e_clean panic

# SIGINT to hotcell while the command runs: forwarded, the command dies of it (130), nothing
# left.
interrupt() {
	local n=$1 line="" pid
	coproc HCP { exec "$HC" run bb sh -c 'echo started; sleep 60; echo end' 2>"$E2E/err"; }
	pid=$HCP_PID
	# The guest says "started" once the command runs: no guessing with sleeps.
	read -r -t 300 line <&"${HCP[0]}"
	for _ in $(seq "$n"); do kill -INT "$pid"; done
	wait "$pid"
	rc=$?
	started=$line
}
interrupt 1
expect sigint-status '[ "$started" == started ] && [ "$rc" -eq 130 ]'
e2e_clean sigint
# Twice at once: the second ends the VM (137, podman's double Ctrl-C), unless the command
# already died of the first (130).
interrupt 2
expect sigint-twice-status '[ "$started" == started ] && { [ "$rc" -eq 137 ] || [ "$rc" -eq 130 ]; }'
e2e_clean sigint-twice

finish
