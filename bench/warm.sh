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
# The runs are --no-jail (a restored QEMU maps the template copy-on-write); as root, part 1 adds
# a jailed warm series (the template's RAM copied into a memfd of the jail's QEMU).
#
#   BENCH_RUNS=N (default 10)   BUILD=dir (default build)   BENCH_PARTS="1 2 3 4"
#   BENCH_CONCURRENCY=N (default 10)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init warm jq
N=${BENCH_RUNS:-10}
C=${BENCH_CONCURRENCY:-10}
part() { [[ " ${BENCH_PARTS:-1 2 3 4} " == *" $1 "* ]]; }

bench_accel
echo "bench: accelerator $accel, $N runs each, $(nproc) CPUs, kernel $(basename "$hc_kernel")"
bench_image bench
R=(--no-jail)
tdir() { find "$HOTCELL_HOME/templates" -mindepth 1 -maxdepth 1 -type d ! -name '.*' 2>/dev/null | head -n1; }
"$hc" run "${R[@]}" --cold --rootfs-mode block bench true >/dev/null # the tree and the disk: cache hits below

bench_floor_init
run_jailed() { local R=(); run_once; } # as root: a warm run in the jail (the default)
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
	jailed=false
	[ "$(id -u)" -eq 0 ] && jailed=true
	series=("$work/floor.txt" floor_once "$work/warm.txt" run_once)
	$jailed && series+=("$work/warmj.txt" run_jailed)
	series+=("$work/cold.txt" "run_once --cold")
	interleave "$N" "${series[@]}"
	grep -qv ' warm$' "$work/warm.txt" && echo "bench: some warm runs were cold: $(grep -cv ' warm$' "$work/warm.txt")" >&2
	floor=$(median <"$work/floor.txt")
	warm=$(cut -d' ' -f1 "$work/warm.txt" | median)
	cold=$(cut -d' ' -f1 "$work/cold.txt" | median)
	echo
	echo "1. warm vs floor (microvm, $accel, median of $N, interleaved)"
	printf '   floor: bare QEMU + kernel + poweroff init      %6s ms\n' "$floor"
	printf '   warm: hotcell run bench true                   %6s ms  (restore %s ms, exec %s ms)\n' "$warm" \
		"$(cut -d' ' -f2 "$work/warm.txt" | median)" "$(cut -d' ' -f3 "$work/warm.txt" | median)"
	if $jailed; then
		warmj=$(cut -d' ' -f1 "$work/warmj.txt" | median)
		printf '   warm, jailed (the default as root)             %6s ms  (restore %s ms, exec %s ms)\n' "$warmj" \
			"$(cut -d' ' -f2 "$work/warmj.txt" | median)" "$(cut -d' ' -f3 "$work/warmj.txt" | median)"
	fi
	printf '   cold: hotcell run --cold bench true            %6s ms  (exec %s ms)\n' "$cold" "$(cut -d' ' -f3 "$work/cold.txt" | median)"
	printf '   ratio warm / floor                             %6s   (target <= 0.40, aim 0.30)\n' "$(ratio "$warm" "$floor")"
	$jailed && printf '   ratio warm jailed / floor                      %6s\n' "$(ratio "$warmj" "$floor")"
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
	interleave 3 "$work/bw.txt" batch "$work/bc.txt" "batch --cold"
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
	interleave "$N" "$work/h.txt" "exec_after $work/at-hello" "$work/a.txt" "exec_after $work/after-one"
	echo
	echo "4. first \`vm exec true\` after a restore (median of $N, interleaved; ~40 ms of it is the CLI)"
	printf '   template taken at HELLO                        %6s ms\n' "$(median <"$work/h.txt")"
	printf '   template taken after one command               %6s ms\n' "$(median <"$work/a.txt")"
fi
