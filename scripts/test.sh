#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: installs what is missing, builds
# everything (guest kernel included, cached outside the checkout), runs `make check` and the
# sanitizer build of the suite. The last line is "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
make -j"$(nproc)" all
status=0
make check || status=$?
if [ "${HOTCELL_SKIP_ASAN:-0}" != 1 ]; then
	echo "== sanitizer build (ASan+UBSan)"
	make -j"$(nproc)" check-asan TESTS="${ASAN_TESTS:-/unit/|/fuzz/}" || status=$?
fi
exit $status
