#!/usr/bin/env bash
# The server's warm pool (docs/warm-start.md, "The server's warm pool"): medians of interleaved
# series, on the accelerator hotcell picks here, of
#   floor   bare QEMU + the kernel hotcell boots + an init that ends the VM at once (bench/run.sh)
#   warm    the CLI's `hotcell run bench true`, restored from the template
#   pool    `sandbox.run {"image":"bench","command":["true"]}` on `hotcell serve --warm-pool 2`,
#           wall time seen by the client (curl), the VM taken from the pool
# and the ratios to the floor. Jailed as root (the default there); BENCH_NO_JAIL=1: both
# --no-jail. Before each pooled run the script waits (untimed) until the pool has a VM
# waiting, so what is measured is a take, not a restore.
#
#   BENCH_RUNS=N (default 10)   BUILD=dir (default build)   BENCH_NO_JAIL=1
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init pool jq curl
N=${BENCH_RUNS:-10}

bench_accel
echo "bench: accelerator $accel, $N runs each, $(nproc) CPUs, kernel $(basename "$hc_kernel")"
bench_image bench
R=()
P='"image":"bench","command":["true"]'
if [ "${BENCH_NO_JAIL:-0}" == 1 ] || [ "$(id -u)" -ne 0 ]; then
	R=(--no-jail)
	P="$P,\"no_jail\":true"
fi
bench_floor_init
bench_serve --warm-pool 2

rpc() {
	curl -sS --max-time 120 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
		--data-binary "$1" "$URL"
}
waiting() { rpc '{"jsonrpc":"2.0","method":"health","params":{},"id":1}' | jq -r '.result.warm_pool.waiting'; }
cli_once() { # wall ms, start
	local t0 t1
	t0=$(now_ms)
	"$hc" run --json "${R[@]}" bench true >"$work/cli.json"
	t1=$(now_ms)
	echo "$((t1 - t0)) $(jq -r .start "$work/cli.json")"
}
pool_once() { # wall ms, take ms, exec ms, start
	local t0 t1 i
	for i in $(seq 100); do [ "$(waiting)" -ge 1 ] && break; sleep 0.1; done
	t0=$(now_ms)
	rpc "{\"jsonrpc\":\"2.0\",\"method\":\"sandbox.run\",\"params\":{$P},\"id\":1}" >"$work/pool.json"
	t1=$(now_ms)
	echo "$((t1 - t0)) $(jq -r '.result.timings_ms.take' "$work/pool.json") $(jq -r '.result.timings_ms.exec' "$work/pool.json") $(jq -r .result.start "$work/pool.json")"
}

# The template (first run), the pool's key (a server run of it), a floor boot: then measure.
cli_once >/dev/null
cli_once >/dev/null
pool_once >/dev/null
floor_once >/dev/null
interleave "$N" "$work/floor.txt" floor_once "$work/warm.txt" cli_once "$work/pool.txt" pool_once
grep -qv ' warm$' "$work/warm.txt" && echo "bench: some CLI runs were not warm: $(grep -cv ' warm$' "$work/warm.txt")" >&2
grep -qv ' pool$' "$work/pool.txt" && echo "bench: some server runs were not pooled: $(grep -cv ' pool$' "$work/pool.txt")" >&2
floor=$(median <"$work/floor.txt")
warm=$(cut -d' ' -f1 "$work/warm.txt" | median)
pool=$(cut -d' ' -f1 "$work/pool.txt" | median)
echo
echo "warm pool vs CLI warm vs floor (microvm, $accel, ${R[*]:-jailed}, median of $N, interleaved)"
printf '   floor: bare QEMU + kernel + poweroff init      %6s ms\n' "$floor"
printf '   warm: hotcell run bench true                   %6s ms  ratio %s\n' "$warm" "$(ratio "$warm" "$floor")"
printf '   pool: sandbox.run on --warm-pool 2             %6s ms  ratio %s  (take %s ms, exec %s ms)\n' "$pool" \
	"$(ratio "$pool" "$floor")" "$(cut -d' ' -f2 "$work/pool.txt" | median)" "$(cut -d' ' -f3 "$work/pool.txt" | median)"
