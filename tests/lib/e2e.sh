# Helpers for the end-to-end tests (tests/e2e/*.sh): real VMs through the whole pipeline.
# Source after tests/lib.sh:
#   e2e_init            skip the whole script (exit 0) when something it needs is missing; make a
#                       private root $E2E (state dir, runtime dir, scratch) removed at exit
#   e2e_image NAME [mkimage options]   build a busybox OCI image offline and `hotcell load` it
#   e2e_run ARGS...     hotcell run ARGS with stdout/stderr to $E2E/out and $E2E/err; sets $rc
#   e2e_json ARGS...    hotcell run --json ARGS, the object in $E2E/json; sets $rc
#   jqr FILTER          jq -r FILTER on $E2E/json
#   e2e_clean NAME      PASS/FAIL: no VMM/virtiofsd/vsock process of ours, no runtime dir, no
#                       file added to or removed from the state dir since e2e_snapshot
# Every process hotcell starts has our private paths on its command line (sockets under
# $XDG_RUNTIME_DIR, the image under $HOTCELL_HOME), so pgrep -f "$E2E" finds exactly ours,
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
	export HOTCELL_HOME=$E2E/home XDG_RUNTIME_DIR=$E2E/run
	mkdir -p "$HOTCELL_HOME" "$XDG_RUNTIME_DIR" "$E2E/work"
	chmod 700 "$XDG_RUNTIME_DIR"
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

# e2e_image NAME [mkimage.sh options...]: builds a busybox image and loads it as NAME.
e2e_image() {
	local name=$1 dir
	shift
	dir=$E2E/work/layout-$name
	if [ -x "$HOTCELL_TOP/tests/lib/mkimage.sh" ]; then
		"$HOTCELL_TOP/tests/lib/mkimage.sh" "$dir" "$@" >"$E2E/work/mkimage.log" 2>&1
	else
		e2e_mkimage_fallback "$dir" >"$E2E/work/mkimage.log" 2>&1
	fi || { fail "image-$name" "building the image failed: $(tail -n 3 "$E2E/work/mkimage.log")"; return 1; }
	"$HC" load --name "$name" "$dir" >"$E2E/work/load.log" 2>&1 ||
		{ fail "image-$name" "hotcell load failed: $(tail -n 3 "$E2E/work/load.log")"; return 1; }
}

# Until tests/lib/mkimage.sh exists: busybox with its applet links, nothing else.
e2e_mkimage_fallback() {
	local dir=$1 b=$E2E/work/bundle
	umoci init --layout "$dir" && umoci new --image "$dir:latest" &&
		umoci unpack --rootless --image "$dir:latest" "$b" &&
		mkdir -p "$b/rootfs/bin" "$b/rootfs/etc" "$b/rootfs/tmp" &&
		cp /bin/busybox "$b/rootfs/bin/busybox" &&
		for a in $(/bin/busybox --list); do [ -e "$b/rootfs/bin/$a" ] || ln -s busybox "$b/rootfs/bin/$a"; done &&
		printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$b/rootfs/etc/passwd" &&
		printf 'root:x:0:\nnogroup:x:65534:\n' >"$b/rootfs/etc/group" &&
		umoci repack --image "$dir:latest" "$b" &&
		umoci config --image "$dir:latest" --config.env PATH=/bin --config.cmd /bin/sh &&
		rm -rf "$b"
}

e2e_run() {
	"$HC" run "$@" >"$E2E/out" 2>"$E2E/err"
	rc=$?
}

e2e_json() {
	"$HC" run --json "$@" >"$E2E/json" 2>"$E2E/err"
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
	if [ -d "$XDG_RUNTIME_DIR/hotcell" ] && [ -n "$(ls -A "$XDG_RUNTIME_DIR/hotcell")" ]; then
		why="$why runtime dirs left: $(ls -A "$XDG_RUNTIME_DIR/hotcell" | tr '\n' ' ')"
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
