#!/usr/bin/env bash
# Runs the whole suite and prints "N passed, N failed, N skipped" last.
# Every test program (C binary or shell script) prints one line per case:
#   PASS: name | FAIL: name: why | SKIP: name: reason
# A program that exits non-zero without printing a FAIL line counts as one failure.
#   TESTS=regex   only programs whose path matches
#   HOTCELL_TEST_TIMEOUT=seconds per program (default 900)
#   HOTCELL_TEST_TOTALS=file   append "pass fail skip" to file
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
export BUILD HOTCELL_TOP=$top
export HOTCELL_BIN=${HOTCELL_BIN:-$top/$BUILD/bin/hotcell}
logdir=$top/$BUILD/tests/logs
mkdir -p "$logdir"
per_timeout=${HOTCELL_TEST_TIMEOUT:-900}

pass=0 fail=0 skip=0
failed_names=()

run_one() {
	local prog=$1 name log rc
	shift
	name=${prog#"$top"/}
	if [ -n "${TESTS:-}" ] && ! [[ $name =~ $TESTS ]]; then
		return
	fi
	log=$logdir/$(echo "$name" | tr '/' '_').log
	local t0=$SECONDS
	timeout --kill-after=10 "$per_timeout" "$@" >"$log" 2>&1 </dev/null
	rc=$?
	local p f s
	p=$(grep -c '^PASS: ' "$log")
	f=$(grep -c '^FAIL: ' "$log")
	s=$(grep -c '^SKIP: ' "$log")
	grep -E '^(PASS|FAIL|SKIP): ' "$log" | sed "s|^|  [$name] |"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "  [$name] FAIL: exited with status $rc (see $log)"
		tail -n 15 "$log" | sed 's/^/      | /'
	elif [ "$f" -gt 0 ]; then
		tail -n 15 "$log" | sed 's/^/      | /'
	fi
	if [ $((p + f + s)) -eq 0 ]; then
		f=1
		echo "  [$name] FAIL: printed no result"
	fi
	[ "$f" -gt 0 ] && failed_names+=("$name")
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	echo "  ($name: $((SECONDS - t0))s)"
}

echo "== unit"
for t in "$BUILD"/tests/unit/test-*; do
	[ -x "$t" ] && run_one "$top/$t" "$top/$t"
done

echo "== fuzz corpus replay"
for t in "$BUILD"/tests/fuzz/fuzz-*; do
	[ -x "$t" ] || continue
	n=$(basename "$t")
	run_one "$top/$t" "$top/$t" "$top/tests/fuzz/corpus/${n#fuzz-}"
done

for kind in integration e2e security soak; do
	echo "== $kind"
	for t in tests/$kind/*.sh; do
		[ -f "$t" ] && run_one "$top/$t" bash "$top/$t"
	done
done

if [ ${#failed_names[@]} -gt 0 ]; then
	echo "failed programs: ${failed_names[*]}"
fi
# scripts/test.sh adds up several runs (plain and sanitizer) into one closing line.
[ -n "${HOTCELL_TEST_TOTALS:-}" ] && echo "$pass $fail $skip" >>"$HOTCELL_TEST_TOTALS"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
