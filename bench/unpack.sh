#!/usr/bin/env bash
# Rootfs benchmark (issue 2, "Rootfs"): a generated multi-layer image of about BENCH_MB MB
# (default 100; gzip layers, BENCH_ZSTD=1 makes one zstd, which umoci 0.4 cannot read; many
# small files, big incompressible ones, whiteouts),
# written straight into a store, then:
#   1. hotcell cold: hc_oci_rootfs_get on a miss (unpack of every layer, digest re-check): wall
#      time and peak RSS; side by side `umoci raw unpack` of the same layout;
#   2. hotcell cached: hc_oci_rootfs_get on a hit (median of BENCH_RUNS, default 10);
#   3. the ext4 disk for block backends (mke2fs -d), first build and cached.
# Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
BUILD=${BUILD:-build}
MB=${BENCH_MB:-100}
N=${BENCH_RUNS:-10}
lib=$top/$BUILD/lib/libhotcell.a
[ -e "$lib" ] || { echo "bench: $lib is missing: run make first" >&2; exit 1; }

work=$(mktemp -d /tmp/hcbench-unpack.XXXXXX)
trap 'rm -rf "$work"' EXIT
driver=$work/unpack-bench
cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc -o "$driver" bench/unpack-bench.c "$lib" \
	-lcurl -larchive -ljansson -lcrypto -lz -lzstd -lpthread -ldl

state=$work/state
echo "generating a ~${MB} MB 4-layer image..."
"$driver" gen "$work" "$state" "$MB" ${BENCH_ZSTD:+zstd}

timed() { # CMD...: prints "wall_s peak_kb", CMD's stdout into $work/out
	/usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" ||
		{ echo "bench: $* failed: $(tail -n 3 "$work/err")" >&2; exit 1; }
	cat "$work/time"
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

# 1. cold
drop_caches
read -r cold_s cold_kb < <(timed "$driver" get "$state")
cold=$(cat "$work/out")
tree_mb=$(du -sm "$state/rootfs" | cut -f1)

um_s=-1 um_kb=0
if command -v umoci >/dev/null && [ -z "${BENCH_ZSTD:-}" ]; then
	# The store is an OCI layout; umoci wants a plain tag, so give it a layout of its own
	# (blobs hard-linked, not copied).
	mkdir -p "$work/oci/blobs/sha256"
	ln "$state"/store/blobs/sha256/* "$work/oci/blobs/sha256/"
	cp "$state/store/oci-layout" "$work/oci/"
	python3 - "$state/store/index.json" "$work/oci/index.json" <<'PY'
import json, sys
idx = json.load(open(sys.argv[1]))
for m in idx["manifests"]:
    m["annotations"] = {"org.opencontainers.image.ref.name": "bench"}
json.dump(idx, open(sys.argv[2], "w"))
PY
	drop_caches
	read -r um_s um_kb < <(timed umoci raw unpack --image "$work/oci:bench" "$work/umoci-rootfs")
fi

# 2. cached
times=() gets=()
for _ in $(seq 1 "$N"); do
	"$driver" get "$state" >"$work/out"
	times+=("$(sed -n 's/.* ms=\([0-9.]*\) .*/\1/p' "$work/out")")
	gets+=("$(sed -n 's/.* get_ms=\([0-9.]*\) .*/\1/p' "$work/out")")
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
median=$(med "${times[@]}")
median_get=$(med "${gets[@]}")

# 3. ext4
read -r d1_s _ < <(timed "$driver" get "$state" disk)
disk1=$(cat "$work/out")
read -r d2_s _ < <(timed "$driver" get "$state" disk)
disk_mb=$(du -m "$state"/disks/*.ext4 | cut -f1)
disk_app=$(du -m --apparent-size "$state"/disks/*.ext4 | cut -f1)

echo
printf '%-40s %10s %12s\n' "" "wall (s)" "peak RSS (MB)"
printf '%-40s %10.2f %12.1f   (%s)\n' "hotcell rootfs, cold (miss)" "$cold_s" "$(echo "$cold_kb/1024" | bc -l)" "$cold"
if [ "$um_s" != -1 ]; then
	printf '%-40s %10.2f %12.1f\n' "umoci raw unpack (same layout)" "$um_s" "$(echo "$um_kb/1024" | bc -l)"
	printf '%-40s %10.2f\n' "ratio hotcell / umoci" "$(echo "$cold_s / $um_s" | bc -l)"
fi
printf '%-40s %10.2f ms in-process (median of %d, incl. store open + resolve)\n' "hotcell rootfs, cached (hit)" "$median" "$N"
printf '%-40s %10.3f ms (hc_oci_rootfs_get alone: lock + stat)\n' "" "$median_get"
printf '%-40s %10.2f   (%s)\n' "ext4 disk, first build (tree cached)" "$d1_s" "$disk1"
printf '%-40s %10.2f\n' "ext4 disk, cached" "$d2_s"
echo "tree: ${tree_mb} MB on disk; ext4 image: ${disk_app} MB apparent, ${disk_mb} MB allocated"
