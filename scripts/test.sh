#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: installs what is missing, builds
# everything (guest kernel included, cached outside the checkout), runs `make check` and the
# sanitizer (ASan+UBSan) build of the suite. The last line adds both runs up:
# "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
make -j"$(nproc)" all

totals=$(mktemp)
trap 'rm -f "$totals"' EXIT
export HOTCELL_TEST_TOTALS=$totals
status=0
make check || status=$?
if [ "${HOTCELL_SKIP_ASAN:-0}" != 1 ]; then
	echo "== sanitizer build (ASan+UBSan): unit, fuzz replay and the driver integration tests"
	make -j"$(nproc)" check-asan TESTS="${ASAN_TESTS:-/unit/|/fuzz/|/integration/}" || status=$?
fi
echo "== clang build (warning-free under gcc and clang, -Werror)"
if make -j"$(nproc)" CC=clang BUILD=build/clang programs >build/clang-build.log 2>&1; then
	echo "PASS: clang-build"
	echo "1 0 0" >>"$totals"
else
	echo "FAIL: clang-build: see build/clang-build.log"
	tail -n 20 build/clang-build.log
	echo "0 1 0" >>"$totals"
	status=1
fi
echo "== make lint (clang-format, cppcheck)"
if make lint >build/lint.log 2>&1; then
	echo "PASS: lint"
	echo "1 0 0" >>"$totals"
else
	echo "FAIL: lint: see build/lint.log"
	tail -n 20 build/lint.log
	echo "0 1 0" >>"$totals"
	status=1
fi
awk '{ p += $1; f += $2; s += $3 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$totals"
exit $status
