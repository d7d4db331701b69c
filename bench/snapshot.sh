#!/usr/bin/env bash
# Snapshot, restore, fork of persistent VMs (docs/snapshots.md). Prints, on the accelerator
# `--accel auto` picks here, for a 256 MiB QEMU VM (block rootfs, serial channel) that has run a
# few commands:
#   1. `vm snapshot` (pause, save, resume), median of N, and the snapshot's size on disk;
#   2. `vm restore` to a running VM whose guest has applied RESEED, median of N;
#   3. `vm fork --count K`: the whole call and per child;
#   4. host memory (RSS and PSS, supervisor + QEMU) of the booted VM against a restored one and
#      against the K forks together (their QEMUs share the snapshot's pages copy-on-write).
#   BENCH_RUNS=N (default 5)   BENCH_FORKS=K (default 4)   BUILD=dir (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
BUILD=${BUILD:-build}
N=${BENCH_RUNS:-5}
K=${BENCH_FORKS:-4}
hc=$top/$BUILD/bin/hotcell
[ -x "$hc" ] || { echo "bench: $hc is missing: run make first" >&2; exit 1; }

work=$(mktemp -d /tmp/hcbenchsnap.XXXXXX)
export HOTCELL_HOME=$work/home HOTCELL_RUNTIME_DIR=$work/run
mkdir -p "$HOTCELL_HOME" "$HOTCELL_RUNTIME_DIR" && chmod 700 "$HOTCELL_RUNTIME_DIR"
cleanup() {
	"$hc" vm ls --json 2>/dev/null | jq -r '.[].id' | while read -r id; do "$hc" vm rm -f "$id" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
# RSS and PSS in MiB of a VM's supervisor and every process under it.
mem_of() {
	local pid=$1 rss=0 pss=0 p kids
	local all=("$pid")
	for ((i = 0; i < ${#all[@]}; i++)); do
		kids=$(cat /proc/"${all[$i]}"/task/*/children 2>/dev/null || true)
		for p in $kids; do all+=("$p"); done
	done
	for p in "${all[@]}"; do
		rss=$((rss + $(awk '/^VmRSS:/ {print $2}' /proc/"$p"/status 2>/dev/null || echo 0)))
		pss=$((pss + $(awk '/^Pss:/ {print $2}' /proc/"$p"/smaps_rollup 2>/dev/null || echo 0)))
	done
	echo "$((rss / 1024)) $((pss / 1024))"
}
vm_pid() { "$hc" vm ls --json | jq -r --arg id "$1" '.[] | select(.id == $id) | .pid'; }

# shellcheck source=tests/lib/mkimage.sh
source "$top/tests/lib/mkimage.sh"
mkimage "$work/layout" latest >"$work/mkimage.log" 2>&1
"$hc" load --name bench "$work/layout" >/dev/null

args="--memory 256 --rootfs-mode block --channel serial"
# shellcheck disable=SC2086
src=$("$hc" vm create $args --name bench-src bench)
accel=$("$hc" vm inspect "$src" | jq -r .spec.accel)
echo "snapshot / restore / fork (backend qemu, accel $accel, 256 MiB, 1 vCPU, block rootfs, serial channel), median of $N"
for _ in 1 2 3; do "$hc" vm exec bench-src true >/dev/null 2>&1 || true; done

# 1. snapshot
times=()
for i in $(seq 1 "$N"); do
	t0=$(now_ms)
	"$hc" vm snapshot bench-src "$work/snap"
	times+=($(($(now_ms) - t0)))
done
printf '  vm snapshot (pause, save, resume): %s ms; on disk %s MiB (RAM file sparse)\n' \
	"$(printf '%s\n' "${times[@]}" | median)" "$(du -sm "$work/snap" | cut -f1)"

# 2. restore
times=()
for _ in $(seq 1 "$N"); do
	t0=$(now_ms)
	id=$("$hc" vm restore "$work/snap")
	times+=($(($(now_ms) - t0)))
	last=$id
	[ "${#times[@]}" -lt "$N" ] && "$hc" vm rm -f "$id"
done
printf '  vm restore (to RESEED applied):    %s ms\n' "$(printf '%s\n' "${times[@]}" | median)"
"$hc" vm exec "$last" true >/dev/null 2>&1 || true
read -r cold_rss cold_pss <<<"$(mem_of "$(vm_pid "$src")")"
read -r rest_rss rest_pss <<<"$(mem_of "$(vm_pid "$last")")"
"$hc" vm rm -f "$last" >/dev/null

# 3. fork
t0=$(now_ms)
ids=$("$hc" vm fork --count "$K" bench-src)
t=$(($(now_ms) - t0))
printf '  vm fork --count %s:                %s ms, %s ms per child\n' "$K" "$t" \
	"$(awk -v t="$t" -v k="$K" 'BEGIN {printf "%.0f", t / k}')"
fork_rss=0 fork_pss=0
for id in $ids; do
	read -r r p <<<"$(mem_of "$(vm_pid "$id")")"
	fork_rss=$((fork_rss + r)) fork_pss=$((fork_pss + p))
done

# 4. memory
printf '  host memory, booted VM:            RSS %s MiB, PSS %s MiB\n' "$cold_rss" "$cold_pss"
printf '  host memory, restored VM:          RSS %s MiB, PSS %s MiB\n' "$rest_rss" "$rest_pss"
printf '  host memory, %s forks together:    RSS %s MiB, PSS %s MiB\n' "$K" "$fork_rss" "$fork_pss"
