#!/usr/bin/env bash
# `hotcell serve --warm-pool N` (docs/warm-start.md, "The server's warm pool"), with real VMs:
# a pooled run's result, output and exit code; a fresh identity per take (RNG, clock,
# hostname); refill (N+2 sequential runs); a pooled VM killed while waiting is not handed out;
# other options fall back to a restore; concurrent takes never share a VM; `prune` drops the
# pooled VMs of the templates it removes; the image is locked against `rmi` while pooled;
# SIGTERM and SIGKILL of the server leave no QEMU, runtime dir, uid lease or cgroup. Each
# "cannot" check has a control that shows what it looks at exists.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
need_tools serve-pool curl jq
SRV_DIR=$E2E/srv
mkdir -p "$SRV_DIR"
source "$(dirname "$0")/../lib/serve.sh"
trap 'serve_cleanup; e2e_cleanup' EXIT
e2e_image bb || exit 1
N=2
LEASES=${HOTCELL_JAIL_LEASE_DIR:-/run/hotcell-uids}
CG=${HOTCELL_CGROUP_ROOT:-/sys/fs/cgroup}

req() { # METHOD PARAMS-JSON [ID]
	printf '{"jsonrpc":"2.0","method":"%s","params":%s,"id":%s}' "$1" "$2" "${3:-1}"
}
run() { rpc "$(req sandbox.run "$1")"; }
pool_field() { rpc "$(req health '{}')" | jq -r ".result.warm_pool.$1"; }
# wait_waiting COUNT: until the pool has COUNT VMs waiting (at most 60 s).
wait_waiting() {
	local i
	for i in $(seq 1 120); do
		[ "$(pool_field waiting)" == "$1" ] && return 0
		sleep 0.5
	done
	return 1
}
# The uid leases held by process $1 (file names), and the cgroups of those uids.
leases_of() { grep -lx "$1 $(awk '{print $22}' "/proc/$1/stat" 2>/dev/null || echo x)" "$LEASES"/* 2>/dev/null | xargs -rn1 basename; }
leases_named() { grep -l "^$1 " "$LEASES"/* 2>/dev/null | xargs -rn1 basename; }
cgroups_of() { local u; for u in "$@"; do find "$CG" -maxdepth 3 -path '*/hotcell/*' -name "$u-*" 2>/dev/null; done; }
qemus() { pgrep -f "qemu.*$E2E/run" || true; }

serve_start --default-memory-mib 128 --warm-pool $N || exit 1
srv=$SRV_PID

# ---- the first run builds the template, the next restores it (the pool learns the key), and
# then the pool fills up
r=$(run '{"image":"bb","command":["true"]}')
expect_json pool-first-run-cold "$r" '.result.start == "cold" and .result.exit_code == 0'
r=$(run '{"image":"bb","command":["true"]}')
expect_json pool-second-run-fills "$r" '.result.exit_code == 0 and (.result.start == "warm" or .result.start == "pool")'
if wait_waiting $N; then pass pool-filled; else fail pool-filled "waiting: $(pool_field waiting)"; fi

# ---- a pooled run: same result object, output and exit code, its take in timings_ms
r=$(run '{"image":"bb","command":["sh","-c","echo out; echo err >&2; exit 3"]}')
expect_json pool-run-result "$r" '.result.start == "pool" and .result.exit_code == 3 and .result.stdout == "out\n" and .result.stderr == "err\n" and (.result.timings_ms.take | type) == "number" and .result.timings_ms.restore == 0'
if [ "$(id -u)" == 0 ]; then
	expect_json pool-run-jailed "$r" '.result.jailed == true'
fi

# ---- identity per take: two pooled runs read different random bytes, have the host's clock
# and the hostname each asked for
probe='head -c16 /dev/urandom | od -An -tx1 | tr -d \" \\n\"; echo; date +%s; hostname'
wait_waiting $N
a=$(run '{"image":"bb","hostname":"pool-a","command":["sh","-c","'"$probe"'"]}')
host_now=$(date +%s)
b=$(run '{"image":"bb","hostname":"pool-b","command":["sh","-c","'"$probe"'"]}')
host_now2=$(date +%s)
expect_json pool-identity-a-pooled "$a" '.result.start == "pool"'
expect_json pool-identity-b-pooled "$b" '.result.start == "pool"'
ua=$(jq -r '.result.stdout' <<<"$a" | sed -n 1p)
ub=$(jq -r '.result.stdout' <<<"$b" | sed -n 1p)
da=$(jq -r '.result.stdout' <<<"$a" | sed -n 2p)
db=$(jq -r '.result.stdout' <<<"$b" | sed -n 2p)
expect pool-urandom-differs '[ ${#ua} -eq 32 ] && [ ${#ub} -eq 32 ] && [ "$ua" != "$ub" ]'
expect pool-clock-is-hosts '[ $((host_now - da)) -le 5 ] && [ $((da - host_now)) -le 5 ] && [ $((host_now2 - db)) -le 5 ] && [ $((db - host_now2)) -le 5 ]'
expect_json pool-hostname-a "$a" '(.result.stdout | split("\n")[2]) == "pool-a"'
expect_json pool-hostname-b "$b" '(.result.stdout | split("\n")[2]) == "pool-b"'

# ---- refill: N+2 sequential runs all succeed, the later ones pooled again
wait_waiting $N
ok=0 pooled=""
for i in $(seq 1 $((N + 2))); do
	r=$(run '{"image":"bb","command":["echo","'"$i"'"]}')
	[ "$(jq -r '.result.stdout' <<<"$r")" == "$i" ] && ok=$((ok + 1))
	pooled="$pooled$(jq -r '.result.start' <<<"$r") "
	sleep 1.5 # a refill waits for the run to end (the CPU is the run's)
done
expect pool-refill-all-succeed '[ $ok -eq $((N + 2)) ]'
expect pool-refill-pooled-again '[ "$(awk "{print \$NF}" <<<"$pooled")" == pool ] && [ "$(grep -o pool <<<"$pooled" | wc -l)" -ge $((N + 1)) ]'

# ---- a pooled VM killed while waiting is not handed out. Control: N VMs were waiting (the
# QEMUs killed are theirs: no run is in progress).
wait_waiting $N
waiting_qemus=$(qemus)
disc0=$(pool_field discarded)
expect pool-kill-control '[ "$(wc -w <<<"$waiting_qemus")" -eq $N ]'
kill -9 $waiting_qemus 2>/dev/null
r=$(run '{"image":"bb","command":["echo","after-kill"]}')
expect_json pool-killed-not-used "$r" '.result.exit_code == 0 and .result.stdout == "after-kill\n"'
expect pool-killed-discarded '[ $(( $(pool_field discarded) - disc0 )) -ge $N ]'

# ---- other options: another key, restored (or booted) as usual. Control: the pool's own
# options are pooled.
wait_waiting $N
r=$(run '{"image":"bb","memory_mib":160,"command":["true"]}')
expect_json pool-mismatch-falls-back "$r" '.result.exit_code == 0 and .result.start != "pool"'
r=$(run '{"image":"bb","command":["true"]}')
expect_json pool-mismatch-control "$r" '.result.start == "pool"'
# (the 160 MiB key is now pooled too: keys 2)

# ---- concurrent takes never share a VM: each run leaves a marker in its guest's /tmp and
# lists the markers it sees; a shared VM would show another's. Control: a run sees its own.
wait_waiting $N
cpids=()
for i in 1 2 3 4; do
	run '{"image":"bb","command":["sh","-c","touch /tmp/m-'"$i"'; sleep 1; ls /tmp | grep ^m- | tr \"\\n\" \" \""]}' >"$E2E/conc-$i.json" &
	cpids+=($!)
done
wait "${cpids[@]}" # not a bare wait: the server is a job of this shell too
shared=0 own=0 pooled=0
for i in 1 2 3 4; do
	seen=$(jq -r '.result.stdout' "$E2E/conc-$i.json")
	[ "$seen" == "m-$i " ] && own=$((own + 1))
	[ "$seen" != "m-$i " ] && shared=$((shared + 1))
	[ "$(jq -r '.result.start' "$E2E/conc-$i.json")" == pool ] && pooled=$((pooled + 1))
done
expect pool-concurrent-own-marker '[ $own -eq 4 ] && [ $shared -eq 0 ]'
expect pool-concurrent-some-pooled '[ $pooled -ge 1 ]'

# ---- the image is locked while VMs of it wait (rmi refuses); prune drops those VMs with the
# templates it removes, and the next run is cold
wait_waiting $((N * 2)) || true
"$HC" rmi bb >"$E2E/rmi.out" 2>&1
rmi_rc=$?
expect pool-image-locked-against-rmi '[ $rmi_rc -ne 0 ] && "$HC" images | grep -q bb'
"$HC" prune >"$E2E/prune.out" 2>&1
for _ in $(seq 1 20); do [ "$(pool_field waiting)" == 0 ] && break; sleep 0.5; done
expect pool-prune-drops-vms '[ "$(pool_field waiting)" == 0 ] && [ "$(pool_field keys)" == 0 ]'
r=$(run '{"image":"bb","command":["true"]}')
expect_json pool-after-prune-cold "$r" '.result.start == "cold" and .result.exit_code == 0'

# ---- SIGTERM: the server ends its pooled VMs; nothing left. Control: VMs were waiting.
r=$(run '{"image":"bb","command":["true"]}')
wait_waiting $N
before=$(qemus | wc -l)
srv_leases=$(leases_of "$srv")
serve_stop
expect pool-sigterm-exit-0 '[ "$SRV_RC" -eq 0 ]'
expect pool-sigterm-control '[ "$before" -ge $N ]'
serve_leftovers pool-sigterm-clean
expect pool-sigterm-no-lease '[ -z "$(leases_named "$srv")" ] && [ -z "$(cgroups_of $srv_leases)" ]'
# Control for the lock: with the server gone, rmi works (done last, below).

# ---- SIGKILL: the VMMs die with the server, its reaper removes their runtime dirs, uid
# leases and cgroups. Control: before the kill they were there.
serve_start --default-memory-mib 128 --warm-pool $N || exit 1
srv=$SRV_PID
run '{"image":"bb","command":["true"]}' >/dev/null
wait_waiting $N
n_q=$(qemus | wc -l)
n_dirs=$(ls -A "$E2E/run" | wc -l)
srv_leases=$(leases_of "$srv")
n_cg=$(cgroups_of $srv_leases | wc -l)
if [ "$(id -u)" == 0 ]; then
	expect pool-sigkill-control '[ "$n_q" -ge $N ] && [ "$n_dirs" -ge $N ] && [ -n "$srv_leases" ] && [ "$n_cg" -ge 1 ]'
else
	expect pool-sigkill-control '[ "$n_q" -ge $N ] && [ "$n_dirs" -ge $N ]'
fi
kill -9 "$srv"
wait "$srv" 2>/dev/null
SRV_PID=
serve_leftovers pool-sigkill-clean
for _ in $(seq 1 40); do [ -z "$(leases_named "$srv")" ] && break; sleep 0.25; done
expect pool-sigkill-no-lease '[ -z "$(leases_named "$srv")" ]'
expect pool-sigkill-no-cgroup '[ -z "$(cgroups_of $srv_leases)" ]'
expect pool-sigkill-no-reaper '! pgrep -f "internal-reaper $srv " >/dev/null'

"$HC" rmi bb >"$E2E/rmi.out" 2>&1
expect pool-rmi-control-after-stop '[ $? -eq 0 ]'
