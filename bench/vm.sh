#!/usr/bin/env bash
# Persistent VMs (docs/vm.md). Prints, on the accelerator `--accel auto` picks here:
#   1. `vm create` time (to the guest's HELLO), median of N;
#   2. `vm exec VM true` round trip, median of N, against the guest's own fork+exec of `true`
#      (measured inside the guest with a loop of M and the guest's clock);
#   3. `vm cp` throughput of a 64 MiB file, host->guest and guest->host (MB/s, median of 3);
#   4. host RSS per idle VM: supervisor + QEMU + helpers of one idle 256 MiB VM.
# Snapshot, restore and fork figures come from the snapshot benchmark.
#   BENCH_RUNS=N (default 10)   BUILD=dir (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
BUILD=${BUILD:-build}
N=${BENCH_RUNS:-10}
hc=$top/$BUILD/bin/hotcell
[ -x "$hc" ] || { echo "bench: $hc is missing: run make first" >&2; exit 1; }

work=$(mktemp -d /tmp/hcbenchvm.XXXXXX)
export HOTCELL_HOME=$work/home HOTCELL_RUNTIME_DIR=$work/run
mkdir -p "$HOTCELL_HOME" "$HOTCELL_RUNTIME_DIR" && chmod 700 "$HOTCELL_RUNTIME_DIR"
cleanup() {
	"$hc" vm ls --json 2>/dev/null | jq -r '.[].id' | while read -r id; do "$hc" vm rm -f "$id" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# shellcheck source=tests/lib/mkimage.sh
source "$top/tests/lib/mkimage.sh"
mkimage "$work/layout" latest >"$work/mkimage.log" 2>&1
"$hc" load --name bench "$work/layout" >/dev/null

accel=$("$hc" run --json bench true | jq -r .accel)
echo "persistent VMs (backend qemu, accel $accel, 256 MiB, 1 vCPU, cached image), median of $N"

# 1. create
times=()
for _ in $(seq 1 "$N"); do
	t0=$(now_ms)
	id=$("$hc" vm create --memory 256 bench)
	times+=($(($(now_ms) - t0)))
	"$hc" vm rm -f "$id"
done
printf '  vm create (to HELLO):          %s ms\n' "$(printf '%s\n' "${times[@]}" | median)"

# 2. exec round trip vs the guest's own fork+exec
id=$("$hc" vm create --memory 256 --name bench-vm bench)
"$hc" vm exec bench-vm true
times=()
for _ in $(seq 1 "$N"); do
	t0=$(date +%s%N)
	"$hc" vm exec bench-vm true
	times+=($((($(date +%s%N) - t0) / 10000)))
done
rt=$(printf '%s\n' "${times[@]}" | median)
M=200
# The guest's own loop, timed by its /proc/uptime (10 ms ticks: hence many iterations).
guest_us=$("$hc" vm exec bench-vm sh -c "read s _ </proc/uptime; i=0; while [ \$i -lt $M ]; do /bin/true; i=\$((i+1)); done; read e _ </proc/uptime; echo \$s \$e" |
	awk -v m="$M" '{printf "%d", ($2 - $1) * 1000000 / m}')
printf '  vm exec true round trip:       %s ms\n' "$(awk -v t="$rt" 'BEGIN {printf "%.1f", t / 100}')"
printf '  guest fork+exec of true:       %s ms (in the guest, mean of %d)\n' "$(awk -v u="$guest_us" 'BEGIN {printf "%.1f", u / 1000}')" "$M"
printf '  exec overhead above the guest: %s ms\n' "$(awk -v t="$rt" -v u="$guest_us" 'BEGIN {printf "%.1f", t / 100 - u / 1000}')"

# 3. cp throughput, 64 MiB each way
head -c 64M /dev/urandom >"$work/big"
tin=() tout=()
for _ in 1 2 3; do
	t0=$(date +%s%N)
	"$hc" vm cp "$work/big" bench-vm:/tmp/big
	tin+=($((($(date +%s%N) - t0) / 1000000)))
	t0=$(date +%s%N)
	"$hc" vm cp bench-vm:/tmp/big "$work/back"
	tout+=($((($(date +%s%N) - t0) / 1000000)))
	cmp -s "$work/big" "$work/back" || { echo "bench: cp round trip differs" >&2; exit 1; }
	rm -f "$work/back"
	"$hc" vm exec bench-vm rm -f /tmp/big
done
mbps() { awk -v ms="$1" 'BEGIN {printf "%.1f", 64 * 1.048576 / (ms / 1000)}'; }
printf '  vm cp host->guest (64 MiB):    %s MB/s\n' "$(mbps "$(printf '%s\n' "${tin[@]}" | median)")"
printf '  vm cp guest->host (64 MiB):    %s MB/s\n' "$(mbps "$(printf '%s\n' "${tout[@]}" | median)")"

# 4. RSS of one idle VM: every process that keeps our HOTCELL_HOME (supervisor, QEMU, helpers).
sleep 2
rss=0
for f in /proc/[0-9]*/environ; do
	p=${f#/proc/}; p=${p%/environ}
	grep -qE 'hotcell-vmd|qemu|virtiofsd|vhost-device' "/proc/$p/cmdline" 2>/dev/null || continue
	{ tr '\0' '\n' <"$f" | grep -qx "HOTCELL_HOME=$HOTCELL_HOME"; } 2>/dev/null || continue
	kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
	rss=$((rss + ${kb:-0}))
done
printf '  host RSS per idle VM:          %s MiB (supervisor + QEMU + virtiofsd, 256 MiB guest)\n' "$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')"
"$hc" vm rm -f bench-vm
