#!/usr/bin/env bash
# `make bench`: every benchmark in bench/ (they print figures; nothing is asserted).
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
for b in bench/*.sh; do
	[ "$b" == bench/run-all.sh ] && continue
	echo "== $b"
	bash "$b" || status=1
done
exit $status
