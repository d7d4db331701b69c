#!/usr/bin/env bash
# The jail's cost (docs/security.md): `hotcell run IMAGE true`, cold VM each time, jailed vs
# --no-jail, interleaved (one of each per round, so a busy machine weighs on both alike).
# Prints the median wall time and hotcell's own boot figure (VM start to agent HELLO) of each,
# and the difference; then the seccomp filter's size per process kind and the memory limit a
# 256 MiB VM's processes get.
#   BENCH_ROUNDS=N (default 10)   BENCH_ARGS="--rootfs-mode block" (extra run flags)
#   BUILD=dir (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
BUILD=${BUILD:-build}
N=${BENCH_ROUNDS:-10}
hc=$top/$BUILD/bin/hotcell
runner=$top/$BUILD/tests/security/jail-run
for f in "$hc" "$runner"; do
	[ -x "$f" ] || { echo "bench: $f is missing: run make first" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "bench: the jail needs root" >&2; exit 1; }
W=$(mktemp -d /tmp/hcbench-jail.XXXXXX)
trap 'rm -rf "$W"' EXIT
export HOTCELL_HOME=$W/home HOTCELL_RUNTIME_DIR=$W/run
mkdir -p "$HOTCELL_HOME" "$HOTCELL_RUNTIME_DIR"
source "$top/tests/lib/mkimage.sh"
mkimage "$W/layout" latest >/dev/null 2>&1
"$hc" load --name bb "$W/layout" >/dev/null
# shellcheck disable=SC2086
"$hc" run ${BENCH_ARGS:-} bb true >/dev/null 2>&1 # rootfs cache and page cache warm

one() { # one LABEL FLAGS...: appends "wall_ms boot_ms" to $W/LABEL
	local label=$1 t0 t1 json
	shift
	t0=$(date +%s%N)
	# shellcheck disable=SC2086
	json=$("$hc" run --json ${BENCH_ARGS:-} "$@" bb true 2>/dev/null)
	t1=$(date +%s%N)
	echo "$(((t1 - t0) / 1000000)) $(jq -r '.timings_ms.boot | floor' <<<"$json") $(jq -r .jailed <<<"$json")" >>"$W/$label"
}
for _ in $(seq "$N"); do
	one jailed
	one nojail --no-jail
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
jw=$(awk '{print $1}' "$W/jailed" | median)
jb=$(awk '{print $2}' "$W/jailed" | median)
nw=$(awk '{print $1}' "$W/nojail" | median)
nb=$(awk '{print $2}' "$W/nojail" | median)
grep -qv ' true$' "$W/jailed" && echo "bench: a jailed run said jailed=false" >&2
grep -qv ' false$' "$W/nojail" && echo "bench: a --no-jail run said jailed=true" >&2
echo "hotcell run ${BENCH_ARGS:-}bb true, $N interleaved rounds (medians):"
printf "  jailed:    wall %5d ms   boot %5d ms\n" "$jw" "$jb"
printf "  --no-jail: wall %5d ms   boot %5d ms\n" "$nw" "$nb"
printf "  the jail costs %d ms of wall time per VM start (%d ms of boot)\n" $((jw - nw)) $((jb - nb))
echo "per process kind:"
"$runner" -- --figures | sed 's/^/  /'
