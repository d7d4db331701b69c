#!/usr/bin/env bash
# The OCI runtime benchmark (issue 14): median wall time (interleaved series) of `podman run --rm IMG true` with
# hotcell-runtime against the same with runc and crun (when installed: the price of a VM over
# a container), and hotcell-runtime against `hotcell run IMG true` (the engine's overhead). A
# busybox image built offline (tests/lib/mkimage.sh); podman with its own storage in a temp
# dir, no network, capped ulimits.
#   BENCH_RUNS=N (default 5)   BUILD=dir (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
BUILD=${BUILD:-build}
N=${BENCH_RUNS:-5}
rt=$top/$BUILD/bin/hotcell-runtime
hc=$top/$BUILD/bin/hotcell
for f in "$rt" "$hc"; do
	[ -x "$f" ] || { echo "bench: $f is missing: run make first" >&2; exit 1; }
done
for t in podman umoci skopeo; do
	command -v $t >/dev/null || { echo "bench: $t not installed" >&2; exit 1; }
done
source "$top/tests/lib/mkimage.sh"
work=$(mktemp -d /tmp/hcbench-rt.XXXXXX)
PM=(podman --root "$work/storage" --runroot "$work/prun" --tmpdir "$work/ptmp" --cgroup-manager cgroupfs)
cleanup() {
	"${PM[@]}" rm -a -f >/dev/null 2>&1 || true
	"${PM[@]}" system reset -f >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
export HOTCELL_HOME=$work/home HOTCELL_RUNTIME_DIR=$work/run
mkdir -p "$HOTCELL_HOME" "$HOTCELL_RUNTIME_DIR"
cat >"$work/containers.conf" <<EOC
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
events_logger = "file"
EOC
export CONTAINERS_CONF=$work/containers.conf
mkimage "$work/layout" latest
tar -C "$work/layout" -cf "$work/img.tar" .
"${PM[@]}" load -q -i "$work/img.tar" >/dev/null
img=$("${PM[@]}" images -q | head -n 1)
"$hc" load --name bb "$work/layout" >/dev/null

# The series, interleaved (one run of each per round, after one warm-up each), so that the
# machine's load at a moment weighs on all of them alike; the median of each, in ms.
names=("hotcell-runtime") cmds=("${PM[*]@Q} --runtime ${rt@Q} run --rm --net=none $img true")
for r in runc crun; do
	if p=$(command -v $r); then
		names+=("$r") cmds+=("${PM[*]@Q} --runtime ${p@Q} run --rm --net=none $img true")
	else
		echo "podman run --rm true, $r: not installed"
	fi
done
names+=("hotcell run") cmds+=("${hc@Q} run --pull never bb true")
declare -A ts
for k in "${!cmds[@]}"; do
	eval "${cmds[$k]}" >/dev/null 2>&1 || { echo "bench: ${names[$k]} failed" >&2; exit 1; }
done
for i in $(seq 1 "$N"); do
	for k in "${!cmds[@]}"; do
		t0=$(date +%s%N)
		eval "${cmds[$k]}" >/dev/null 2>&1
		t1=$(date +%s%N)
		ts[$k]+="$(((t1 - t0) / 1000000)) "
	done
done
median() { printf '%s\n' $1 | sort -n | sed -n "$(((N + 1) / 2))p"; }
echo "runs per figure: $N, interleaved (median, ms)"
for k in "${!cmds[@]}"; do
	case ${names[$k]} in
	"hotcell run") echo "hotcell run bb true: $(median "${ts[$k]}")" ;;
	*) echo "podman run --rm true, ${names[$k]}: $(median "${ts[$k]}")" ;;
	esac
done
