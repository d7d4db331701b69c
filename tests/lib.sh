# Sourced by shell tests. Prints PASS/FAIL/SKIP lines for tests/run-tests.sh.
#   pass NAME | fail NAME WHY | skip NAME REASON
# check NAME CMD...  runs CMD, pass when it exits 0, fail otherwise.
set -u
: "${HOTCELL_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${BUILD:=build}"
: "${HOTCELL_BIN:=$HOTCELL_TOP/$BUILD/bin/hotcell}"
HC=$HOTCELL_BIN
_failures=0

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: ${2:-}"; _failures=$((_failures + 1)); }
skip() { echo "SKIP: $1: ${2:-}"; }
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name" "command failed: $*"; fi
}
# expect_eq NAME ACTUAL EXPECTED
expect_eq() {
	if [ "$2" == "$3" ]; then pass "$1"; else fail "$1" "got '$2', expected '$3'"; fi
}
# A private state dir per test script, removed at exit.
hc_tmp_home() {
	HOTCELL_HOME=$(mktemp -d /tmp/hctest.XXXXXX)
	export HOTCELL_HOME
	trap 'rm -rf "$HOTCELL_HOME"' EXIT
}
finish() { [ "$_failures" -eq 0 ]; }
