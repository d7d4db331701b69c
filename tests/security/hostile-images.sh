#!/usr/bin/env bash
# Issue 12, group 4: hostile images and registries. tests/security/hostile-registry.py serves
# images built to attack the client and the unpacker (a manifest that names itself, one that
# never ends, a 1 GiB config, layers whose size lies, a stall, a decompression bomb, 100 000
# files, deep directories, long names, PAX paths, whiteouts and xattrs aimed at ".."). Each
# case: a clear one-line error and exit 125 (or, for what is only big, success within bounds),
# hotcell's memory bounded, and nothing left behind: no blob, tree or temp file of the image.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"

[ -x "$HC" ] || { skip hostile-images "$HC is not built"; exit 0; }
[ -x /usr/bin/python3 ] || { skip hostile-images "no /usr/bin/python3"; exit 0; }
# Not e2e_init: the registry half needs no VM.
E2E=$(mktemp -d /tmp/hchostile.XXXXXX)
export HOTCELL_HOME=$E2E/home HOTCELL_RUNTIME_DIR=$E2E/run
mkdir -p "$HOTCELL_HOME" "$E2E/work" && mkdir -m 700 "$HOTCELL_RUNTIME_DIR"
trap e2e_cleanup EXIT
REG_LOG=$E2E/registry.log
/usr/bin/python3 "$HOTCELL_TOP/tests/security/hostile-registry.py" >"$REG_LOG" 2>&1 &
reg_pid=$!
for _ in $(seq 600); do grep -q '^port ' "$REG_LOG" && break; sleep 0.1; done
port=$(sed -n 's/^port //p' "$REG_LOG")
if [ -z "$port" ]; then
	fail hostile-registry-up "the hostile registry did not start: $(head -c 300 "$REG_LOG")"
	exit 1
fi
trap 'kill $reg_pid 2>/dev/null; e2e_cleanup' EXIT
R=127.0.0.1:$port/evil

# maxrss KB of the last hotcell (GNU time), and its exit code in $rc.
hc_timed() {
	/usr/bin/time -f '%M' -o "$E2E/rss" "$HC" "$@" >"$E2E/out" 2>"$E2E/err"
	rc=$?
	rss=$(tail -n 1 "$E2E/rss" 2>/dev/null)
}
# nothing_left NAME: no temp file in the store or the caches, and no store entry for
# evil/NAME (its blobs may only be there when the image was whole).
nothing_left() {
	local left
	left=$(find "$HOTCELL_HOME" -name '.tmp*' 2>/dev/null | head -3)
	[ -z "$left" ] || { echo "temp files: $left"; return 1; }
	if [ -n "${UNPACKING:-}" ]; then
		# the image is whole in the store; what must not be there is a tree of it
		left=$(find "$HOTCELL_HOME/rootfs" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -3)
		[ -z "$left" ] || { echo "a tree is cached: $left"; return 1; }
	elif "$HC" images 2>/dev/null | grep -q "evil/$1"; then
		echo "evil/$1 is in the store"
		return 1
	fi
	return 0
}
# refused NAME WANT CMD...: exit 125, stderr names WANT (an extended regex), one line, memory
# under 64 MiB, nothing left.
refused() {
	local name=$1 want=$2 why
	shift 2
	hc_timed "$@"
	if [ "$rc" -ne 125 ]; then
		fail "$name" "exit $rc (want 125): $(head -c 300 "$E2E/err")"
	elif ! grep -qE -- "$want" "$E2E/err"; then
		fail "$name" "stderr lacks /$want/: $(head -c 300 "$E2E/err")"
	elif [ "$(grep -c . "$E2E/err")" -gt 1 ]; then
		fail "$name" "more than one line: $(head -c 300 "$E2E/err")"
	elif [ -n "$rss" ] && [ "$rss" -gt 65536 ]; then
		fail "$name" "hotcell grew to $rss KiB"
	elif ! why=$(nothing_left "${name%%-*}"); then
		fail "$name" "$why"
	else
		pass "$name"
	fi
}

# The control: the registry serves a good image, and hotcell takes it.
hc_timed pull "$R/ok:t"
expect_eq control-pull-ok "$rc" 0

# --- the registry attacks the client
refused selfref-index "digest mismatch for manifest sha256:(ab)+: the registry sent" pull "$R/selfref:t"
refused hugemanifest "tag 't' is larger than 4194304 bytes" pull "$R/hugemanifest:t"
refused bigconfig "its config sha256:[0-9a-f]+ declares 1073741824 bytes, more than the 16777216" pull "$R/bigconfig:t"
refused endlessconfig "the registry sent more than its declared size" pull "$R/endlessconfig:t"
refused layershort "size 95 does not match its declared size 1048576" pull "$R/layershort:t"
refused layerlong "the registry sent more than its declared size 100 bytes" pull "$R/layerlong:t"
# A registry that stops sending mid-blob: abandoned once the transfer falls under the minimum
# rate (HOTCELL_PULL_MIN_RATE over HOTCELL_PULL_RATE_WINDOW; 1 KiB/s over 30 s by default).
t0=$(date +%s)
HOTCELL_PULL_MIN_RATE=1024 HOTCELL_PULL_RATE_WINDOW=2 refused stall-abandoned "abandoned: too slow" pull "$R/stall:t"
expect_eq stall-abandoned-in-time "$([ $(($(date +%s) - t0)) -lt 30 ] && echo yes)" yes

# --- the image attacks the unpacker (the blobs are whole and verified: the layer's content is
# what is hostile). The run stops at the unpack, before any VM.
if ! "$HC" doctor 2>/dev/null | grep -q '^  usable:      yes'; then
	skip unpack-attacks "no usable backend here: a run stops before the unpack"
	finish
	exit
fi
UNPACKING=
unpack() {
	local name=$1 want=$2 UNPACKING=1
	hc_timed pull "$R/$name:t"
	[ "$rc" -eq 0 ] || { fail "$name-pulled" "$(head -c 300 "$E2E/err")"; return; }
	refused "$name-refused" "$want" run --rootfs-mode dir --memory 128 "$R/$name:t" true
	# The refusal is the layer's, never cached: a second run refuses it the same way.
	refused "$name-refused-again" "$want" run --rootfs-mode dir --memory 128 "$R/$name:t" true
	"$HC" rmi "$R/$name:t" >/dev/null 2>&1
}
unpack deepdirs "deep|depth|components|256"
unpack longname "too long|4095|name"
unpack longcomp "too long|name"
unpack dotdotpax '\.\./\.\./escape|escape|outside'
unpack whiteoutdotdot '\.wh\.|whiteout|escape|outside'
unpack xattrdotdot 'a/\.\./\.\./x|escape|outside'
for f in escape x; do
	expect_eq "nothing-escaped-$f" "$(find / -xdev -maxdepth 3 -name "$f" -newer "$REG_LOG" 2>/dev/null | head -1)" ""
done

# Big but legitimate: a 256 MiB file from a 260 KiB layer, and 100 000 files. Each unpacks with
# hotcell's memory bounded (streamed, never held), and the run goes on.
big_ok() {
	local name=$1
	hc_timed pull "$R/$name:t"
	[ "$rc" -eq 0 ] || { fail "$name-pulled" "$(head -c 300 "$E2E/err")"; return; }
	# The image has no /bin/true: the run gets past the unpack (and the tree is cached) and
	# then finds no such command, 127.
	hc_timed run --rootfs-mode dir --memory 128 "$R/$name:t" true
	if [ "$rc" -ne 127 ] || ! grep -q "executable file .true. not found" "$E2E/err"; then
		fail "$name-unpacks" "exit $rc: $(head -c 300 "$E2E/err")"
	elif [ -n "$rss" ] && [ "$rss" -gt 204800 ]; then
		# GNU time's maximum is over hotcell and its children: QEMU's ~110 MiB counts in it
		fail "$name-unpacks" "a process of the run grew to $rss KiB"
	else
		pass "$name-unpacks"
	fi
	"$HC" rmi "$R/$name:t" >/dev/null 2>&1
	"$HC" prune >/dev/null 2>&1
	expect_eq "$name-pruned" "$(find "$HOTCELL_HOME" -name '.tmp*' | wc -l)" 0
}
big_ok gzbomb
big_ok manyfiles
# xattrs the image may not set on the host: an overlay's opaque marker and a file capability.
hc_timed pull "$R/trustedxattr:t"
hc_timed run --rootfs-mode dir --memory 128 "$R/trustedxattr:t" true
tree=$(find "$HOTCELL_HOME/rootfs" -maxdepth 3 -name f -path '*/root/f' 2>/dev/null | head -1)
expect_eq trusted-xattr-dropped "$(getfattr -n trusted.overlay.opaque "$tree" 2>/dev/null | grep -c opaque)" 0
expect_eq file-capability-dropped "$(getcap "$tree" 2>/dev/null | grep -c cap_)" 0
finish
