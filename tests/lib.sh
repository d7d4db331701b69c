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
# A private state dir, and a private runtime dir inside it: a run the test kills leaves its
# runtime dir there (swept by the next run, removed with the state dir), never in the host's
# /run/hotcell.
hc_tmp_home() {
	HOTCELL_HOME=$(mktemp -d /tmp/hctest.XXXXXX)
	HOTCELL_RUNTIME_DIR=$HOTCELL_HOME/run
	mkdir -m 700 "$HOTCELL_RUNTIME_DIR"
	export HOTCELL_HOME HOTCELL_RUNTIME_DIR
	trap 'rm -rf "$HOTCELL_HOME"' EXIT
}
finish() { [ "$_failures" -eq 0 ]; }

# ---- the tests that run hotcell against a VMM double (tests/integration/{firecracker,
# cloud-hypervisor,libkrun}.sh). They use $E2E (the script's private root), and $rc and
# $E2E/err of the last run.

# need_tools NAME TOOL...: SKIP NAME and exit 0 unless every TOOL is on PATH.
need_tools() {
	local name=$1 t
	shift
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || { skip "$name" "$t is not installed"; exit 0; }
	done
}
# expect_125 NAME WANT: the last run exited 125 with WANT on its stderr.
expect_125() {
	local name=$1 want=$2
	if [ "$rc" -ne 125 ]; then
		fail "$name" "exit $rc, expected 125: $(head -c 600 "$E2E/err")"
	elif ! grep -qF -- "$want" "$E2E/err"; then
		fail "$name" "stderr lacks '$want': $(head -c 600 "$E2E/err")"
	else
		pass "$name"
	fi
}
# expect_clean NAME PROCS DIR: PASS NAME-clean when no process of ours (its command line names
# $E2E) matches the extended regex PROCS and the runtime dir DIR is empty or absent.
expect_clean() {
	local name=$1 procs why=""
	procs=$(pgrep -af "$E2E" 2>/dev/null | grep -v "^$$ " | grep -E "$2" || true)
	[ -z "$procs" ] || why="processes left: $procs"
	if [ -d "$3" ] && [ -n "$(ls -A "$3")" ]; then
		why="$why runtime dir not empty: $(ls -A "$3" | tr '\n' ' ')"
	fi
	if [ -z "$why" ]; then pass "$name-clean"; else fail "$name-clean" "$why"; fi
}
# double_e2e_ready NAME: 0 when the end-to-end part of a double's test can run (the project's
# ELF vmlinux, vhost-device-vsock, umoci and skopeo); else SKIPs NAME with the reason, 1.
double_e2e_ready() {
	local vsockd=${HOTCELL_VHOST_DEVICE_VSOCK:-/var/cache/hotcell-tools/usr/bin/vhost-device-vsock}
	if [ ! -f "$HOTCELL_TOP/$BUILD/kernel/vmlinux" ]; then
		skip "$1" "the project's kernel is not built ($BUILD/kernel/vmlinux)"
	elif [ ! -x "$vsockd" ]; then
		skip "$1" "vhost-device-vsock is not installed (FACTS.md)"
	elif ! command -v umoci >/dev/null || ! command -v skopeo >/dev/null; then
		skip "$1" "umoci/skopeo are not installed"
	else
		return 0
	fi
	return 1
}
# double_jail_extra [+RWDIR...]: a jailed double runs its guest under QEMU with
# vhost-device-vsock: HOTCELL_JAIL_EXTRA (docs/security.md) gives the jail those programs and
# QEMU's data, and each +RWDIR read-write (the doubles' request logs). The real VMMs need none.
double_jail_extra() {
	local vsockd=${HOTCELL_VHOST_DEVICE_VSOCK:-/var/cache/hotcell-tools/usr/bin/vhost-device-vsock}
	local x="" p
	for p in "$(command -v qemu-system-x86_64)" /usr/share/qemu /usr/share/seabios \
		/usr/lib/x86_64-linux-gnu/qemu "$vsockd"; do
		[ -e "$p" ] && x="$x${x:+:}$p"
	done
	for p in "$@"; do x="$x${x:+:}$p"; done
	export HOTCELL_JAIL_EXTRA=$x
}
# double_jailed NAME LOG: the double's "JAIL ..." line in LOG (dbl_log_jail) shows it ran in
# hotcell's jail: its own uid, no capabilities, no_new_privs, a seccomp filter, its own mount
# and PID namespaces. As non-root there is no jail: SKIP.
double_jailed() {
	local line uid
	if [ "$(id -u)" -ne 0 ]; then
		skip "$1" "the jail needs root"
		return
	fi
	line=$(grep -m1 '^JAIL ' "$2" 2>/dev/null)
	uid=$(sed -n 's/.* uid=\([0-9]*\).*/\1/p' <<<"$line")
	if [ -n "$uid" ] && [ "$uid" -ge 65536 ] && grep -q ' capeff=0000000000000000 ' <<<"$line" &&
		grep -q ' nnp=1 seccomp=2 ' <<<"$line" &&
		! grep -qF "mntns=$(readlink /proc/self/ns/mnt) " <<<"$line" &&
		! grep -qF "pidns=$(readlink /proc/self/ns/pid) " <<<"$line"; then
		pass "$1"
	else
		fail "$1" "not jailed: ${line:-no JAIL line in $2}"
	fi
}
# expect_same_result NAME BACKEND A B: the --json objects in files A (BACKEND's) and B (QEMU's)
# are the same but for backend, accel, timings and stderr.
expect_same_result() {
	local f='del(.backend, .accel, .jailed, .start, .timings_ms, .stderr)' # jailed: per backend (docs/security.md); start: warm or cold (docs/warm-start.md)
	if [ "$(jq -c "$f" "$3")" == "$(jq -c "$f" "$4")" ]; then
		pass "$1"
	else
		fail "$1" "$2: $(jq -c 'del(.timings_ms)' "$3") qemu: $(jq -c 'del(.timings_ms)' "$4")"
	fi
}
