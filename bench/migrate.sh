#!/usr/bin/env bash
# Migration between two `hotcell serve`s on loopback (docs/migration.md): a source server on
# 127.0.0.1 and a destination on 127.0.0.2, each with its own HOTCELL_HOME, the move started
# by the source server's vm.migrate. For a 256 MiB and a 1 GiB QEMU guest (block rootfs,
# serial channel), each with little dirty memory (an idle guest) and with much (a file of
# non-zero bytes in its tmpfs: 40 % of its memory, 102 and 409 MiB), prints the medians of N moves of:
#   downtime_ms (pause at the source to resume at the destination), total_ms, bytes_sent;
#   the blob skip: the move back to the source, which has the image, and what it saved;
#   the peak RSS (VmHWM) of each server over its moves (the streaming sides; the VMs' own
#   processes are the supervisors' and QEMU's, not counted).
# Each move goes there and back, so the VM is the same one throughout. The first move is of
# the booted VM, whose RAM QEMU keeps in a memfd and the snapshot copies sparse (only touched
# pages); every later one is of a restored VM, whose RAM is a private mapping that QEMU's
# migration stream carries whole (docs/snapshots.md): "first" and "again" are shown apart.
#   BENCH_RUNS=N (default 3)   BENCH_SIZES="256 1024"   BUILD=dir (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
BUILD=${BUILD:-build}
N=${BENCH_RUNS:-3}
SIZES=${BENCH_SIZES:-256 1024}
hc=$top/$BUILD/bin/hotcell
[ -x "$hc" ] || { echo "bench: $hc is missing: run make first" >&2; exit 1; }

work=$(mktemp -d /tmp/hcbenchmig.XXXXXX)
pids=()
cleanup() {
	for h in a b; do
		HOTCELL_HOME=$work/$h HOTCELL_RUNTIME_DIR=$work/run-$h "$hc" vm ls --json 2>/dev/null |
			jq -r '.[].id' | while read -r id; do
			HOTCELL_HOME=$work/$h HOTCELL_RUNTIME_DIR=$work/run-$h "$hc" vm rm -f "$id" >/dev/null 2>&1 || true
		done
	done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
for h in a b; do mkdir -p "$work/$h" "$work/run-$h" && chmod 700 "$work/run-$h"; done

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
declare -A URL TOK PID
start() { # start a|b ADDR
	local h=$1 log=$work/srv-$1.log port
	TOK[$h]=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
	printf '%s\n' "${TOK[$h]}" >"$work/tok-$h"
	HOTCELL_HOME=$work/$h HOTCELL_RUNTIME_DIR=$work/run-$h "$hc" serve --listen "$2:0" \
		--auth-token-file "$work/tok-$h" 2>"$log" &
	PID[$h]=$!
	pids+=("${PID[$h]}")
	for _ in $(seq 1 100); do
		port=$(sed -n "s/^hotcell: listening on ${2//./\\.}:\\([0-9]*\\)\$/\\1/p" "$log")
		[ -n "$port" ] && break
		sleep 0.1
	done
	URL[$h]=http://$2:$port
}
stop() { kill "${PID[$1]}" 2>/dev/null || true; wait "${PID[$1]}" 2>/dev/null || true; }
hwm() { awk '/^VmHWM:/ {print int($2 / 1024)}' "/proc/${PID[$1]}/status"; }
# move FROM TO ID: vm.migrate at FROM's server; prints the result object.
move() {
	curl -sS --max-time 1200 -H "Authorization: Bearer ${TOK[$1]}" -H 'Content-Type: application/json' \
		--data-binary "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"vm.migrate\",\"params\":{\"id\":\"$3\",\"to\":\"${URL[$2]}\",\"token\":\"${TOK[$2]}\"}}" \
		"${URL[$1]}/api/v1/rpc" | jq -c '.result // .error'
}

# shellcheck source=tests/lib/mkimage.sh
source "$top/tests/lib/mkimage.sh"
mkimage "$work/layout" latest >"$work/mkimage.log" 2>&1
HOTCELL_HOME=$work/a "$hc" load --name bench "$work/layout" >/dev/null

echo "migration over loopback (QEMU, block rootfs, serial channel, 1 vCPU), median of $N moves each way"
printf '%-6s %-6s %22s %22s %10s %12s %8s %8s\n' guest dirty "first: down_ms bytes" "again: down_ms bytes" total_ms back_skipped rss_src rss_dst
for size in $SIZES; do
	for dirty in little much; do
		start a 127.0.0.1
		start b 127.0.0.2
		id=$(HOTCELL_HOME=$work/a HOTCELL_RUNTIME_DIR=$work/run-a "$hc" vm create --memory "$size" \
			--rootfs-mode block --channel serial bench)
		if [ "$dirty" == much ]; then
			# The guest's /tmp is a tmpfs of half its memory: fill most of that with
			# non-zero bytes (1 MiB of urandom, repeated: TCG makes urandom itself slow).
			mib=$((size * 2 / 5))
			HOTCELL_HOME=$work/a HOTCELL_RUNTIME_DIR=$work/run-a "$hc" vm exec --timeout 900 "$id" \
				sh -c "head -c 1048576 /dev/urandom > /tmp/r && i=0 && while [ \$i -lt $mib ]; do cat /tmp/r; i=\$((i+1)); done > /tmp/fill"
		fi
		down=() total=() sent=() skipped=()
		for k in $(seq 1 "$N"); do
			r=$(move a b "$id")
			id=$(jq -r '.id // empty' <<<"$r")
			[ -n "$id" ] || { echo "bench: the move failed: $r" >&2; exit 1; }
			if [ "$k" == 1 ]; then
				first="$(jq -r '"\(.downtime_ms | floor) \(.bytes_sent)"' <<<"$r")"
			else
				down+=("$(jq .downtime_ms <<<"$r")") sent+=("$(jq .bytes_sent <<<"$r")")
			fi
			total+=("$(jq .total_ms <<<"$r")")
			r=$(move b a "$id")
			id=$(jq -r '.id // empty' <<<"$r")
			[ -n "$id" ] || { echo "bench: the move back failed: $r" >&2; exit 1; }
			skipped+=("$(jq .blob_bytes_skipped <<<"$r")")
		done
		again="-"
		[ "${#down[@]}" -gt 0 ] && again="$(printf '%s\n' "${down[@]}" | median | cut -d. -f1) $(printf '%s\n' "${sent[@]}" | median | cut -d. -f1)"
		printf '%-6s %-6s %22s %22s %10s %12s %8s %8s\n' "${size}M" "$dirty" "$first" "$again" \
			"$(printf '%s\n' "${total[@]}" | median | cut -d. -f1)" \
			"$(printf '%s\n' "${skipped[@]}" | median)" "$(hwm a)M" "$(hwm b)M"
		HOTCELL_HOME=$work/a HOTCELL_RUNTIME_DIR=$work/run-a "$hc" vm rm -f "$id" >/dev/null
		stop a
		stop b
	done
done
