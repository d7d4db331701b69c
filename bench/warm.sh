#!/usr/bin/env bash
# The issue-13 warm-start benchmark (docs/warm-start.md). Prints, on the accelerator hotcell
# picks here, medians of interleaved series:
#   1. warm `hotcell run IMAGE true` (restored from the template) vs the bare-boot floor (bare
#      QEMU, the same kernel file and TCG arguments, an init that ends the VM at once, as
#      bench/run.sh measures it) and vs a cold run; ratio warm / floor (target <= 0.4, aim 0.3);
#   2. 10 concurrent warm runs vs 10 concurrent cold runs: wall time, and the peak of the total
#      host RSS (and PSS, which counts shared pages once) of every process of the runs;
#   3. the template's build cost: the first run (which saves it) vs a cold run, the save's own
#      time (timings_ms.template), and its disk use;
#   4. a template taken at HELLO vs one taken after one command ran: `true` right after a
#      restore of each (through `vm restore` + `vm exec`, which share the restore code).
# The runs are --no-jail: a restored VMM is not jailed yet, so jailed runs stay cold.
#
#   BENCH_RUNS=N (default 10)   BUILD=dir (default build)   BENCH_PARTS="1 2 3 4"
#   BENCH_CONCURRENCY=N (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
BUILD=${BUILD:-build}
N=${BENCH_RUNS:-10}
C=${BENCH_CONCURRENCY:-10}
hc=$top/$BUILD/bin/hotcell
qemu=${HOTCELL_QEMU:-qemu-system-x86_64}
for f in "$hc" "$top/$BUILD/tools/mkinitramfs"; do
	[ -e "$f" ] || { echo "bench: $f is missing: run make first" >&2; exit 1; }
done

work=$(mktemp -d /tmp/hcbench-warm.XXXXXX)
export HOTCELL_HOME=$work/home HOTCELL_RUNTIME_DIR=$work/run
mkdir -p "$HOTCELL_HOME" "$HOTCELL_RUNTIME_DIR" && chmod 700 "$HOTCELL_RUNTIME_DIR"
cleanup() {
	local pids
	"$hc" vm rm -f $("$hc" vm ls --json 2>/dev/null | jq -r '.[].id' 2>/dev/null) >/dev/null 2>&1 || true
	pids=$(pgrep -f "$work" || true)
	[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
part() { [[ " ${BENCH_PARTS:-1 2 3 4} " == *" $1 "* ]]; }

accel=$("$hc" doctor | awk '/^qemu/ {q=1} q && /accelerator:/ {sub(":$", "", $2); print $2; exit}')
accel=${accel:-tcg}
hc_kernel=$("$hc" doctor | awk '/^qemu/ {q=1} q && /kernel:/ {print $2; exit}')
echo "bench: accelerator $accel, $N runs each, $(nproc) CPUs, kernel $(basename "$hc_kernel")"

source tests/lib/mkimage.sh
mkimage "$work/oci" latest >/dev/null
"$hc" load --name bench "$work/oci" >/dev/null
R=(--no-jail)
tdir() { find "$HOTCELL_HOME/templates" -mindepth 1 -maxdepth 1 -type d ! -name '.*' 2>/dev/null | head -n1; }
"$hc" run "${R[@]}" --cold --rootfs-mode block bench true >/dev/null # the tree and the disk: cache hits below

# The floor, as bench/run.sh boots it.
cc -static -Os -o "$work/poweroff-init" bench/poweroff-init.c
"$top/$BUILD/tools/mkinitramfs" "$work/floor.cpio" "$work/poweroff-init"
cpu=()
[ "$accel" == kvm ] && cpu=(-cpu host)
boot_args=""
[ "$accel" == tcg ] && boot_args=" noreplace-smp lpj=1548288 noapictimer no_timer_check"
floor_once() {
	local t0
	t0=$(now_ms)
	timeout -k 5 120 "$qemu" -nodefaults -no-user-config -display none -no-reboot -M microvm,acpi=off -accel "$accel" \
		"${cpu[@]}" -smp 1 -m 256M -kernel "$hc_kernel" -initrd "$work/floor.cpio" \
		-append "console=ttyS0 reboot=t panic=-1 quiet$boot_args" -serial "file:$work/console.log" \
		</dev/null >/dev/null 2>"$work/qemu.err" || { echo "bench: qemu failed: $(cat "$work/qemu.err")" >&2; return 1; }
	echo $(($(now_ms) - t0))
}
run_once() { # run_once [flags...]: wall ms, restore ms, exec ms, start
	local t0 t1
	t0=$(now_ms)
	"$hc" run --json "${R[@]}" "$@" bench true >"$work/run.json"
	t1=$(now_ms)
	echo "$((t1 - t0)) $(jq -r '.timings_ms.restore' "$work/run.json") $(jq -r '.timings_ms.exec' "$work/run.json") $(jq -r .start "$work/run.json")"
}

# ---- 3 first: the build cost (the first run of the key saves the template) ----
if part 3 || part 1 || part 2; then
	first=$(run_once)
	t_first=$(cut -d' ' -f1 <<<"$first")
	t_save=$(jq -r '.timings_ms.template' "$work/run.json")
	tpl=$(tdir)
fi
if part 3; then
	: >"$work/cold3.txt"
	for _ in 1 2 3; do run_once --cold | cut -d' ' -f1 >>"$work/cold3.txt"; done
	echo
	echo "3. template build cost (256 MiB guest)"
	printf '   first run (cold boot, warm-up, save)            %6s ms\n' "$t_first"
	printf '   cold run (--cold, median of 3)                  %6s ms\n' "$(median <"$work/cold3.txt")"
	printf '   warm-up command + save (timings_ms.template)    %6s ms\n' "$t_save"
	printf '   disk: %s allocated (memory file %s apparent), state %s\n' \
		"$(du -sh "$tpl" | cut -f1)" "$(du -h --apparent-size "$tpl/memory" | cut -f1)" \
		"$(du -h "$tpl/qemu-state" | cut -f1)"
fi

# ---- 1. warm vs floor vs cold, interleaved ----
if part 1; then
	floor_once >/dev/null
	: >"$work/floor.txt"; : >"$work/warm.txt"; : >"$work/cold.txt"
	for _ in $(seq "$N"); do
		floor_once >>"$work/floor.txt"
		run_once >>"$work/warm.txt"
		run_once --cold >>"$work/cold.txt"
	done
	grep -qv ' warm$' "$work/warm.txt" && echo "bench: some warm runs were cold: $(grep -cv ' warm$' "$work/warm.txt")" >&2
	floor=$(median <"$work/floor.txt")
	warm=$(cut -d' ' -f1 "$work/warm.txt" | median)
	cold=$(cut -d' ' -f1 "$work/cold.txt" | median)
	echo
	echo "1. warm vs floor (microvm, $accel, median of $N, interleaved)"
	printf '   floor: bare QEMU + kernel + poweroff init      %6s ms\n' "$floor"
	printf '   warm: hotcell run bench true                   %6s ms  (restore %s ms, exec %s ms)\n' "$warm" \
		"$(cut -d' ' -f2 "$work/warm.txt" | median)" "$(cut -d' ' -f3 "$work/warm.txt" | median)"
	printf '   cold: hotcell run --cold bench true            %6s ms  (exec %s ms)\n' "$cold" "$(cut -d' ' -f3 "$work/cold.txt" | median)"
	printf '   ratio warm / floor                             %6s   (target <= 0.40, aim 0.30)\n' "$(ratio "$warm" "$floor")"
	printf '   ratio cold / floor                             %6s\n' "$(ratio "$cold" "$floor")"
fi

# ---- 2. C concurrent warm vs C concurrent cold ----
# Peak of the summed RSS and PSS of every process whose command line names $work (hotcell,
# QEMU, its helpers), sampled every 20 ms while the batch runs.
mem_watch() {
	local peak_rss=0 peak_pss=0 rss pss p
	while [ ! -e "$work/batch.done" ]; do
		rss=0 pss=0
		for p in $(pgrep -f "$work" 2>/dev/null); do
			[ "$p" == "$$" ] && continue
			read -r r s < <(awk '/^Rss:/ {r=$2} /^Pss:/ {s=$2} END {print r+0, s+0}' "/proc/$p/smaps_rollup" 2>/dev/null || echo "0 0")
			rss=$((rss + r)) pss=$((pss + s))
		done
		[ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
		[ "$pss" -gt "$peak_pss" ] && peak_pss=$pss
		sleep 0.02
	done
	echo "$((peak_rss / 1024)) $((peak_pss / 1024))"
}
batch() { # batch [flags...]: wall ms, peak RSS MiB, peak PSS MiB, how many were warm
	local t0 t1 i pids=() fails=0
	rm -f "$work/batch.done"
	mem_watch >"$work/mem.txt" &
	local mw=$!
	t0=$(now_ms)
	for i in $(seq "$C"); do
		"$hc" run --json "${R[@]}" "$@" bench sleep 1 >"$work/batch.$i.json" 2>/dev/null &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
	t1=$(now_ms)
	touch "$work/batch.done"
	wait "$mw"
	echo "$((t1 - t0)) $(cat "$work/mem.txt") $(cat "$work"/batch.*.json | jq -r .start | grep -c warm || true) $fails"
}
if part 2; then
	: >"$work/bw.txt"; : >"$work/bc.txt"
	for _ in 1 2 3; do
		batch >>"$work/bw.txt"
		batch --cold >>"$work/bc.txt"
	done
	echo
	echo "2. $C concurrent runs of \`sleep 1\` (median of 3 batches, interleaved)"
	for k in w c; do
		f=$work/b$k.txt
		printf '   %-5s wall %6s ms   peak RSS %5s MiB   peak PSS %5s MiB   (warm %s/%s, failed %s)\n' \
			"$([ $k == w ] && echo warm || echo cold)" "$(cut -d' ' -f1 "$f" | median)" \
			"$(cut -d' ' -f2 "$f" | median)" "$(cut -d' ' -f3 "$f" | median)" \
			"$(cut -d' ' -f4 "$f" | median)" "$C" "$(cut -d' ' -f5 "$f" | median)"
	done
fi

# ---- 4. a template at HELLO vs after one command ----
if part 4; then
	V=(--no-jail --rootfs-mode block --channel serial)
	id=$("$hc" vm create "${V[@]}" bench)
	"$hc" vm snapshot "$id" "$work/at-hello" >/dev/null
	"$hc" vm exec "$id" true
	"$hc" vm snapshot "$id" "$work/after-one" >/dev/null
	"$hc" vm rm -f "$id" >/dev/null
	exec_after() { # exec_after DIR: ms of the first `true` in a VM restored from DIR
		local v t0 t1
		v=$("$hc" vm restore "$1")
		t0=$(now_ms)
		"$hc" vm exec "$v" true
		t1=$(now_ms)
		"$hc" vm rm -f "$v" >/dev/null
		echo $((t1 - t0))
	}
	: >"$work/h.txt"; : >"$work/a.txt"
	for _ in $(seq "$N"); do
		exec_after "$work/at-hello" >>"$work/h.txt"
		exec_after "$work/after-one" >>"$work/a.txt"
	done
	echo
	echo "4. first \`vm exec true\` after a restore (median of $N, interleaved; ~40 ms of it is the CLI)"
	printf '   template taken at HELLO                        %6s ms\n' "$(median <"$work/h.txt")"
	printf '   template taken after one command               %6s ms\n' "$(median <"$work/a.txt")"
fi
