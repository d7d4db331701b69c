#!/usr/bin/env bash
# Executors (docs/executors.md) through `hotcell serve --registry` on loopback. Prints, per
# runtime (command in busybox, python3 and node images built from Debian's packages by
# tests/lib/mkimage-debian.sh), the latency of executor.invoke of a handler that returns its
# input: medians of BENCH_RUNS (default 5) rounds, interleaved with a baseline sandbox.run of
# `true` in the busybox image (same memory), and the median of the run's own timings_ms
# (boot = VM start to the guest's hello, exec = the handler process). "cold" is a fresh VM
# from a cached rootfs, "warm" a restore of the image's warm-start template
# (docs/warm-start.md): each call is counted as the run's `start` says; a kind no call had is
# said so.
#   BUILD=dir (default build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init executor curl jq umoci dpkg-deb
N=${BENCH_RUNS:-5}

bench_image bb
source "$top/tests/lib/mkimage-debian.sh"
runtimes=(command)
mkdir -p "$B/app-py/app" "$B/app-node/app"
echo 'def echo(x): return x' >"$B/app-py/app/bench.py"
echo 'exports.echo = (x) => x;' >"$B/app-node/app/bench.js"
if base=$(mkimage_debian python3) && mkimage_debian_with "$base" "$B/layout-py" "$B/app-py" &&
	"$HC" load --name py "$B/layout-py" >/dev/null; then
	runtimes+=(python)
else
	echo "bench: no python3 image (scripts/install-deps.sh downloads its packages)" >&2
fi
if base=$(mkimage_debian nodejs) && mkimage_debian_with "$base" "$B/layout-node" "$B/app-node" &&
	"$HC" load --name node "$B/layout-node" >/dev/null; then
	runtimes+=(node)
else
	echo "bench: no node image (scripts/install-deps.sh downloads its packages)" >&2
fi
cat >"$B/registry.json" <<'JSON'
{"command": {"image": "bb", "runtime": "command", "handler": ["cat"], "timeout_secs": 300},
 "python": {"image": "py", "runtime": "python", "handler": "bench:echo", "timeout_secs": 300},
 "node": {"image": "node", "runtime": "node", "handler": "bench.js#echo", "timeout_secs": 300}}
JSON

bench_serve --default-memory-mib 256 --registry "$B/registry.json"

now() { date +%s.%N; }
call() { # NAME BODY: one request; appends the wall ms to $B/NAME.wall and timings to NAME.boot/.exec
	local t0 t1
	t0=$(now)
	curl -s -H "Authorization: Bearer $TOKEN" --data-binary "$2" "$URL" >"$B/out.json"
	t1=$(now)
	jq -e '.result.exit_code == 0' "$B/out.json" >/dev/null ||
		{ echo "bench: $1 failed: $(head -c 600 "$B/out.json")" >&2; exit 1; }
	if [ "$1" != baseline ]; then
		jq -e '.result.result == {"n": 1}' "$B/out.json" >/dev/null ||
			{ echo "bench: $1 answered $(jq -c .result.result "$B/out.json")" >&2; exit 1; }
	fi
	# cold and warm (docs/warm-start.md) calls apart: .result.start says which it was
	st=$(jq -r '.result.start // "cold"' "$B/out.json")
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f\n", (b - a) * 1000}' >>"$B/$1.$st.wall"
	jq -r '.result.timings_ms.boot' "$B/out.json" >>"$B/$1.$st.boot"
	jq -r '.result.timings_ms.restore // 0' "$B/out.json" >>"$B/$1.$st.restore"
	jq -r '.result.timings_ms.exec' "$B/out.json" >>"$B/$1.$st.exec"
}
baseline='{"jsonrpc":"2.0","method":"sandbox.run","id":1,"params":{"image":"bb","command":["true"]}}'
inv() { printf '{"jsonrpc":"2.0","method":"executor.invoke","id":1,"params":{"name":"%s","input":{"n":1}}}' "$1"; }
# one of each first: the rootfs caches
call baseline "$baseline"
for rt in "${runtimes[@]}"; do call "$rt" "$(inv "$rt")"; done
rm -f "$B"/*.wall "$B"/*.boot "$B"/*.restore "$B"/*.exec
for _ in $(seq "$N"); do
	call baseline "$baseline"
	for rt in "${runtimes[@]}"; do call "$rt" "$(inv "$rt")"; done
done
load=$(cut -d' ' -f1-3 /proc/loadavg)
for st in cold warm; do
	[ -f "$B/baseline.$st.wall" ] || continue
	b=$(median <"$B/baseline.$st.wall")
	echo "baseline sandbox.run true (busybox, 256 MiB) $st: ${b} ms (boot $(median <"$B/baseline.$st.boot"), restore $(median <"$B/baseline.$st.restore"), exec $(median <"$B/baseline.$st.exec"); $(wc -l <"$B/baseline.$st.wall") calls)"
	for rt in "${runtimes[@]}"; do
		[ -f "$B/$rt.$st.wall" ] || { echo "executor.invoke $rt $st: no call was $st"; continue; }
		w=$(median <"$B/$rt.$st.wall")
		echo "executor.invoke $rt $st: ${w} ms = $(awk -v a="$w" -v b="$b" 'BEGIN {printf "%+.0f", a - b}') ms over the baseline (boot $(median <"$B/$rt.$st.boot"), restore $(median <"$B/$rt.$st.restore"), handler exec $(median <"$B/$rt.$st.exec"); $(wc -l <"$B/$rt.$st.wall") calls)"
	done
done
if ! ls "$B"/*.warm.wall >/dev/null 2>&1; then
	echo "warm: no call was warm: templates (docs/warm-start.md) keep a jailed QEMU cold (the default as root), so executors' calls are all cold here"
fi
echo "(medians of $N interleaved rounds, backend $(jq -r '.result.backend + " " + .result.accel' "$B/out.json"), load $load)"
