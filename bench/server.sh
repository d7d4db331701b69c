#!/usr/bin/env bash
# `hotcell serve` on loopback. Prints:
#   1. `health` requests/s and latency percentiles with wrk (BENCH_WRK_SECS, default 10 s;
#      BENCH_WRK_CONNS connections, default 50; 2 threads), keep-alive;
#   2. run latency of `echo hi` (128 MiB, QEMU): through the server (sandbox.run over curl)
#      against the CLI's `hotcell run --json`, medians of BENCH_RUNS (default 7) sequential
#      runs, and the server's overhead in percent (target <= 5 %);
#   3. BENCH_CONC (default 50) concurrent sandbox.run: wall time, failures, and the peak RSS of
#      the server plus every process of the runs (sampled every 0.2 s).
#   BUILD=dir (default build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init server wrk curl jq umoci skopeo
SECS=${BENCH_WRK_SECS:-10}
CONNS=${BENCH_WRK_CONNS:-50}
N=${BENCH_RUNS:-7}
CONC=${BENCH_CONC:-50}

bench_image bb
bench_serve --default-memory-mib 128

# ---- 1. health with wrk
cat >"$B/health.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","method":"health","id":1}'
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
EOF
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$B/health.lua" "$URL" >"$B/wrk.txt"
rps=$(awk '/^Requests\/sec:/ {print $2}' "$B/wrk.txt")
p50=$(awk '$1 == "50%" {print $2}' "$B/wrk.txt")
p99=$(awk '$1 == "99%" {print $2}' "$B/wrk.txt")
errs=$(awk '/Non-2xx|Socket errors/' "$B/wrk.txt" | tr '\n' ' ')
echo "health: $rps requests/s, p50 $p50, p99 $p99 ($CONNS connections, ${SECS} s)${errs:+; $errs}"

# ---- 2. run latency, server vs CLI
now() { date +%s.%N; }
body='{"jsonrpc":"2.0","method":"sandbox.run","id":1,"params":{"image":"bb","command":["echo","hi"]}}'
"$HC" run --json --memory 128 bb echo hi >/dev/null # warm the rootfs cache
: >"$B/cli" && : >"$B/srv"
for _ in $(seq "$N"); do
	t0=$(now)
	"$HC" run --json --memory 128 bb echo hi >/dev/null
	t1=$(now)
	curl -s -H "Authorization: Bearer $TOKEN" --data-binary "$body" "$URL" >"$B/out.json"
	t2=$(now)
	jq -e '.result.stdout == "hi\n"' "$B/out.json" >/dev/null || { echo "bench: a server run failed: $(cat "$B/out.json")" >&2; exit 1; }
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f\n", (b - a) * 1000}' >>"$B/cli"
	awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.1f\n", (b - a) * 1000}' >>"$B/srv"
done
cli=$(median <"$B/cli")
srv=$(median <"$B/srv")
echo "run latency (echo hi, median of $N): CLI $cli ms, server $srv ms, overhead $(awk -v a="$cli" -v b="$srv" 'BEGIN {printf "%+.1f", (b - a) / a * 100}') %"

# ---- 3. concurrent runs: wall time and peak RSS
sample_rss() {
	local peak=0 kb
	while [ -e "$B/sampling" ]; do
		kb=$( (echo "$SRV_PID"; pgrep -f "$B/run" || true) | sort -u |
			while read -r p; do awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null; done |
			awk '{s += $1} END {print s + 0}')
		[ "$kb" -gt "$peak" ] && peak=$kb && echo "$peak" >"$B/peak"
		sleep 0.2
	done
}
touch "$B/sampling"
echo 0 >"$B/peak"
sample_rss &
spid=$!
t0=$(now)
seq 1 "$CONC" | xargs -P "$CONC" -I{} curl -s --max-time 900 -H "Authorization: Bearer $TOKEN" \
	--data-binary "$body" "$URL" -o "$B/conc-{}.json"
t1=$(now)
rm -f "$B/sampling"
wait $spid
ok=$(cat "$B"/conc-*.json | jq -s '[.[] | select(.result.stdout == "hi\n")] | length')
echo "$CONC concurrent sandbox.run: $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s wall, $((CONC - ok)) failed, peak RSS $(awk '{printf "%.0f", $1 / 1024}' "$B/peak") MiB (server + VMs)"
cat "$B"/conc-*.json | jq -r 'select(.result.stdout != "hi\n") | .error.message // .result.stderr // .' 2>/dev/null |
	sort | uniq -c | sed 's/^/  failed: /' || true
echo "server RSS after: $(awk '/^VmRSS:/ {printf "%.1f MiB", $2 / 1024}' "/proc/$SRV_PID/status")"
