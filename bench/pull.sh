#!/usr/bin/env bash
# The issue-2 pull benchmark. On a loopback docker-registry, with a multi-layer image of at
# least 100 MB (random, incompressible layers built offline with umoci), prints:
#   1. hotcell cold: pull + rootfs unpack in one process (bench/pull-unpack.c drives the library
#      path `hotcell run` takes): wall time and peak RSS (/usr/bin/time -v);
#   2. skopeo copy docker://… oci:… followed by umoci raw unpack of the same image: wall time
#      and peak RSS of each, and the sum; the ratio hotcell / (skopeo + umoci) (target <= 0.5);
#   3. a cached second `hotcell pull` (the CLI): median of N runs (target <= 50 ms).
#
#   BENCH_RUNS=N cached pulls (default 10)   BENCH_ROUNDS=R cold rounds (default 3; medians)
#   BENCH_LAYER_MB=M per layer (default 36)   BENCH_LAYERS=L (3)
#   BUILD=dir (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
BUILD=${BUILD:-build}
N=${BENCH_RUNS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
MB=${BENCH_LAYER_MB:-36}
L=${BENCH_LAYERS:-3}
hc=$top/$BUILD/bin/hotcell
lib=$top/$BUILD/lib/libhotcell.a
for f in "$hc" "$lib"; do
	[ -e "$f" ] || { echo "bench: $f is missing: run make first" >&2; exit 1; }
done
for t in docker-registry skopeo umoci /usr/bin/time; do
	command -v $t >/dev/null || { echo "bench: $t not installed" >&2; exit 1; }
done
source "$top/tests/lib/registry.sh"
source "$top/tests/lib/mkimage.sh"

work=$(mktemp -d /tmp/hcbench-pull.XXXXXX)
cleanup() {
	registry_stop_all
	rm -rf "$work"
}
trap cleanup EXIT

# the driver, linked like the unit tests are
driver=$work/pull-unpack
cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc -o "$driver" bench/pull-unpack.c "$lib" \
	-lcurl -larchive -ljansson -lcrypto -lz -lzstd -lpthread -ldl

echo "building a ${L}-layer image with ${MB} MB of random data per layer..."
args=()
for i in $(seq 1 "$L"); do
	mkdir -p "$work/layer$i/data"
	# a few files per layer, as real layers have
	for j in 1 2 3 4; do
		head -c $((MB * 1024 * 1024 / 4)) /dev/urandom >"$work/layer$i/data/blob-$i-$j"
	done
	args+=(--layer "$work/layer$i")
done
mkimage "$work/layout" big "${args[@]}" --cmd /bin/true
rm -rf "$work"/layer*
registry_start REG
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:big" "docker://$REG_ADDR/bench/big:1" >/dev/null
ref=$REG_ADDR/bench/big:1
size=$(du -sm "$work/layout/blobs" | cut -f1)
echo "image: $ref, $((L + 2)) layers, ${size} MB compressed"

# timed CMD...: prints "wall_s peak_kb" of CMD (its output to $work/out)
timed() {
	/usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" ||
		{ echo "bench: $* failed: $(tail -n 3 "$work/err")" >&2; exit 1; }
	cat "$work/time"
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

# 1 and 2, alternated over ROUNDS rounds (the machine is shared: medians, same conditions)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
export HOTCELL_HOME=$work/home
hc_s_l=() hc_kb_l=() sk_s_l=() sk_kb_l=() um_s_l=() um_kb_l=() pair_l=() pull_ms_l=() unpack_ms_l=()
for round in $(seq 1 "$ROUNDS"); do
	rm -rf "$HOTCELL_HOME" "$work/sk" "$work/sk-rootfs"
	drop_caches
	read -r s kb < <(timed "$driver" "$ref" --unpack)
	hc_s_l+=("$s") hc_kb_l+=("$kb")
	read -r p u < <(sed 's/pull_ms=\([0-9.]*\) unpack_ms=\([0-9.]*\)/\1 \2/' "$work/out")
	pull_ms_l+=("$p") unpack_ms_l+=("$u")
	drop_caches
	read -r s1 kb < <(timed skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$work/sk:1")
	sk_s_l+=("$s1") sk_kb_l+=("$kb")
	read -r s2 kb < <(timed umoci raw unpack --image "$work/sk:1" "$work/sk-rootfs")
	um_s_l+=("$s2") um_kb_l+=("$kb")
	pair_l+=("$(echo "$s1 + $s2" | bc -l)")
	echo "round $round: hotcell ${hc_s_l[-1]} s (pull $p ms, unpack $u ms); skopeo $s1 s + umoci $s2 s"
done
hc_s=$(printf '%s\n' "${hc_s_l[@]}" | median)
hc_kb=$(printf '%s\n' "${hc_kb_l[@]}" | median)
sk_s=$(printf '%s\n' "${sk_s_l[@]}" | median)
sk_kb=$(printf '%s\n' "${sk_kb_l[@]}" | median)
um_s=$(printf '%s\n' "${um_s_l[@]}" | median)
um_kb=$(printf '%s\n' "${um_kb_l[@]}" | median)
pair_s=$(printf '%s\n' "${pair_l[@]}" | median)
hc_detail="pull $(printf '%s\n' "${pull_ms_l[@]}" | median) ms + unpack $(printf '%s\n' "${unpack_ms_l[@]}" | median) ms"

# 3. cached second pull through the CLI
times=()
for i in $(seq 1 "$N"); do
	t0=$(date +%s%N)
	"$hc" pull "$ref" >/dev/null
	t1=$(date +%s%N)
	times+=($(((t1 - t0) / 1000)))
done
median_us=$(printf '%s\n' "${times[@]}" | median)

echo
printf '%-42s %10s %12s   (medians of %d rounds)\n' "" "wall (s)" "peak RSS (MB)" "$ROUNDS"
printf '%-42s %10.2f %12.1f   (%s)\n' "hotcell pull + unpack (cold)" "$hc_s" "$(echo "$hc_kb/1024" | bc -l)" "$hc_detail"
printf '%-42s %10.2f %12.1f\n' "skopeo copy docker:// oci:" "$sk_s" "$(echo "$sk_kb/1024" | bc -l)"
printf '%-42s %10.2f %12.1f\n' "umoci raw unpack" "$um_s" "$(echo "$um_kb/1024" | bc -l)"
printf '%-42s %10.2f\n' "skopeo + umoci" "$pair_s"
printf '%-42s %10.2f   (target <= 0.5)\n' "ratio hotcell / (skopeo + umoci)" "$(echo "$hc_s / $pair_s" | bc -l)"
printf '%-42s %10.1f ms (median of %d; target <= 50 ms)\n' "hotcell pull, cached" "$(echo "$median_us/1000" | bc -l)" "$N"
