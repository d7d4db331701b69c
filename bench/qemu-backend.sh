#!/usr/bin/env bash
# The QEMU backend alone (no image, no protocol): start (virtiofsd + QEMU in parallel) to the
# guest's first byte on the agent channel, host RSS of QEMU and virtiofsd for a 256 MiB guest,
# and teardown, as medians over N boots of the tiny test init (tests/e2e/vm-testinit.c).
#   bench/qemu-backend.sh [N=10]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
n=${1:-10}
bin=$top/$BUILD/tests/unit/test-vmm-qemu-boot
[ -x "$bin" ] || make -C "$top" -s "$BUILD/tests/unit/test-vmm-qemu-boot"
out=$(HOTCELL_TOP=$top BUILD=$BUILD HOTCELL_BENCH_BOOTS=$n "$bin")
echo "$out" | grep -E '^(# kernel|SKIP|FAIL)' || true
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
col() { echo "$out" | awk -v k="$1" '/^bench:/ {for (i=2;i<NF;i++) if ($i==k) print $(i+1)}'; }
echo "qemu backend, $n boots, load $(cut -d' ' -f1 /proc/loadavg):"
echo "  hc_vm_start (spawn, QMP greeting):  $(col start_ms | median) ms"
echo "  start -> first guest byte (median): $(col first_byte_ms | median) ms"
echo "  QEMU RSS (median):                  $(( $(col qemu_rss_kib | median | cut -d. -f1) / 1024 )) MiB"
echo "  virtiofsd RSS, both processes:      $(( $(col virtiofsd_rss_kib | median | cut -d. -f1) / 1024 )) MiB"
echo "  teardown (median):                  $(col teardown_ms | median) ms"
