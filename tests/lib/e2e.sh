# Helpers for the end-to-end tests (tests/e2e/*.sh): real VMs through the whole pipeline.
# Source after tests/lib.sh:
#   e2e_init            skip the whole script (exit 0) when something it needs is missing; make a
#                       private root $E2E (state dir, runtime dir, scratch) removed at exit
#   e2e_image NAME [mkimage options]   build a busybox OCI image offline and `hotcell load` it
#   e2e_run ARGS...     hotcell run $HOTCELL_E2E_RUN_ARGS ARGS with stdout/stderr to $E2E/out and $E2E/err; sets $rc
#   e2e_json ARGS...    hotcell run --json ARGS, the object in $E2E/json; sets $rc
#   jqr FILTER          jq -r FILTER on $E2E/json
#   e2e_clean NAME      PASS/FAIL: no VMM/virtiofsd/vsock process of ours, no runtime dir, no
#                       file added to or removed from the state dir since e2e_snapshot
# Every process hotcell starts has our private paths on its command line (sockets under
# $HOTCELL_RUNTIME_DIR, the image under $HOTCELL_HOME), so pgrep -f "$E2E" finds exactly ours,
# even when other test suites run VMs on the same machine.

e2e_init() {
	local t
	for t in umoci skopeo jq sha256sum base64 pgrep; do
		if ! command -v "$t" >/dev/null 2>&1; then
			skip "$(basename "$0" .sh)" "$t is not installed"
			exit 0
		fi
	done
	if [ ! -x /bin/busybox ]; then
		skip "$(basename "$0" .sh)" "busybox-static is not installed"
		exit 0
	fi
	if [ ! -x "$HC" ]; then
		skip "$(basename "$0" .sh)" "$HC is not built"
		exit 0
	fi
	E2E=$(mktemp -d /tmp/hce2e.XXXXXX)
	export HOTCELL_HOME=$E2E/home HOTCELL_RUNTIME_DIR=$E2E/run
	mkdir -p "$HOTCELL_HOME" "$HOTCELL_RUNTIME_DIR" "$E2E/work"
	chmod 700 "$HOTCELL_RUNTIME_DIR"
	trap e2e_cleanup EXIT
	# A VM that cannot start at all (no kernel, no initramfs, no QEMU) skips the script: the
	# reason is what doctor says.
	local doctor
	doctor=$("$HC" doctor 2>&1)
	if ! grep -q 'usable:      yes' <<<"$doctor"; then
		skip "$(basename "$0" .sh)" "no usable backend: $(grep -m1 'why:' <<<"$doctor" | sed 's/^ *why: *//')"
		exit 0
	fi
}

e2e_cleanup() {
	local pids
	pids=$(pgrep -f "$E2E" 2>/dev/null | grep -vx "$$" || true)
	if [ -n "$pids" ]; then
		# A failed test must not leave VMs running for the next one.
		kill -9 $pids 2>/dev/null || true
	fi
	rm -rf "$E2E"
}

# e2e_image NAME [mkimage options...]: builds a busybox image (tests/lib/mkimage.sh: busybox
# applets in /bin, users root and hc (1000), --env/--workdir/--user/--entrypoint/--cmd/--file)
# and loads it as NAME.
e2e_image() {
	local name=$1 dir
	shift
	dir=$E2E/work/layout-$name
	# shellcheck source=tests/lib/mkimage.sh
	source "$HOTCELL_TOP/tests/lib/mkimage.sh"
	mkimage "$dir" latest "$@" >"$E2E/work/mkimage.log" 2>&1 ||
		{ fail "image-$name" "building the image failed: $(tail -n 3 "$E2E/work/mkimage.log")"; return 1; }
	"$HC" load --name "$name" "$dir" >"$E2E/work/load.log" 2>&1 ||
		{ fail "image-$name" "hotcell load failed: $(tail -n 3 "$E2E/work/load.log")"; return 1; }
}

e2e_run() {
	# shellcheck disable=SC2086 # HOTCELL_E2E_RUN_ARGS is a list of flags (tests/e2e/modes-*.sh)
	"$HC" run ${HOTCELL_E2E_RUN_ARGS:-} "$@" >"$E2E/out" 2>"$E2E/err"
	rc=$?
}

e2e_json() {
	# shellcheck disable=SC2086
	"$HC" run --json ${HOTCELL_E2E_RUN_ARGS:-} "$@" >"$E2E/json" 2>"$E2E/err"
	rc=$?
}

jqr() { jq -r "$1" "$E2E/json" 2>/dev/null; }

# The state dir's listing (names, sizes, modes), to see that a run adds or removes nothing.
e2e_snapshot() {
	SNAP=$(cd "$HOTCELL_HOME" && find . -printf '%p %s %m\n' 2>/dev/null | sort)
}

e2e_clean() {
	local name=$1 why=""
	local procs
	procs=$(pgrep -af "$E2E" 2>/dev/null | grep -v "^$$ " | grep -E 'qemu|virtiofsd|vhost-device|hotcell' || true)
	[ -z "$procs" ] || why="processes left: $procs"
	if [ -n "$(ls -A "$HOTCELL_RUNTIME_DIR")" ]; then
		why="$why runtime dir not empty: $(ls -A "$HOTCELL_RUNTIME_DIR" | tr '\n' ' ')"
	fi
	if [ -n "${SNAP:-}" ]; then
		local now
		now=$(cd "$HOTCELL_HOME" && find . -printf '%p %s %m\n' 2>/dev/null | sort)
		[ "$now" == "$SNAP" ] || why="$why state dir changed: $(diff <(echo "$SNAP") <(echo "$now") | grep '^[<>]' | head -n 5 | tr '\n' ' ')"
	fi
	if [ -z "$why" ]; then pass "$name-clean"; else fail "$name-clean" "$why"; fi
}

# expect NAME CONDITION-DESCRIPTION: evaluates a bash test on the last run's results.
expect() {
	local name=$1
	shift
	if eval "$@"; then
		pass "$name"
	else
		fail "$name" "not true: $* (rc=$rc; stderr: $(head -c 600 "$E2E/err" | tr '\n' ' '))"
	fi
}
