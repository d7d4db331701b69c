#!/usr/bin/env bash
# "No flakiness under load": STRESS_RUNS `hotcell run`s (50), STRESS_PARALLEL at a time (8), on
# one shared store, each of which must succeed and print what it was asked to. Prints the
# figures: runs, failures, wall time, runs per second. Nothing may be left behind.
#   STRESS_RUNS=200 STRESS_PARALLEL=16 bash tests/soak/stress.sh
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init

RUNS=${STRESS_RUNS:-50}
PAR=${STRESS_PARALLEL:-8}
e2e_image bb || exit 1
# The rootfs cache is made once, before the clock starts.
e2e_run --memory 128 bb true
R=$E2E/work/stress
mkdir -p "$R"

t0=$(date +%s.%N)
running=0
for i in $(seq "$RUNS"); do
	(
		"$HC" run --memory 128 --boot-timeout 300 bb sh -c "echo run-$i" >"$R/$i.out" 2>"$R/$i.err"
		echo $? >"$R/$i.rc"
	) &
	running=$((running + 1))
	if [ "$running" -ge "$PAR" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait
t1=$(date +%s.%N)

failed=0
for i in $(seq "$RUNS"); do
	if [ "$(cat "$R/$i.rc" 2>/dev/null)" != 0 ] || [ "$(cat "$R/$i.out")" != "run-$i" ]; then
		failed=$((failed + 1))
		echo "run $i: exit $(cat "$R/$i.rc" 2>/dev/null), stdout '$(head -c 80 "$R/$i.out")', stderr: $(tail -n 2 "$R/$i.err" | tr '\n' ' ')"
	fi
done
wall=$(echo "$t1 - $t0" | bc)
echo "stress figures: $RUNS runs, $PAR at a time: $((RUNS - failed)) succeeded, $failed failed, ${wall}s wall, $(echo "scale=2; $RUNS / $wall" | bc) runs/s"
expect_eq stress-all-succeed "$failed" 0
e2e_clean stress
finish
