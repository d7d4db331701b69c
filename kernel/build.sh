#!/bin/bash
# Build hotcell's guest kernel from Debian's linux-source-6.1 package, cached outside the
# checkout.
#
#   kernel/build.sh OUTDIR      -> OUTDIR/{bzImage,vmlinux,config,KEY}
#
# Cache: ${HOTCELL_KERNEL_CACHE:-/var/cache/hotcell/kernel}/<key>/{bzImage,vmlinux,config,build.log}
# where <key> = sha256(build.sh + hotcell.config + installed linux-source-6.1 version).
# An entry is built in a temp dir beside it and rename()d into place, so it is either
# complete or absent. An flock on the cache root serialises builds. A cache hit only
# copies files (well under a second); if OUTDIR already holds the same KEY it does nothing.
#
# Environment:
#   HOTCELL_KERNEL_CACHE   cache root (default /var/cache/hotcell/kernel; when that is not
#                          writable, e.g. not root, ${XDG_CACHE_HOME:-~/.cache}/hotcell/kernel)
#   HOTCELL_KERNEL_SOURCE  source tarball (default /usr/src/linux-source-6.1.tar.xz)
#   HOTCELL_KERNEL_JOBS    make -j (default: nproc)
set -euo pipefail

say() { printf 'kernel: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUTDIR=$1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/build.sh"
FRAG="$HERE/hotcell.config"
PKG=linux-source-6.1
TARBALL=${HOTCELL_KERNEL_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
ROOT=${HOTCELL_KERNEL_CACHE:-/var/cache/hotcell/kernel}
JOBS=${HOTCELL_KERNEL_JOBS:-$(nproc 2>/dev/null || echo 2)}
FILES="bzImage vmlinux config"

[ -r "$FRAG" ] || die "missing config fragment $FRAG"

# ---- cache key -------------------------------------------------------------------------
# The installed package version identifies the source; without dpkg (or with a tarball
# given explicitly) fall back to hashing the tarball itself.
srcid=""
if [ -z "${HOTCELL_KERNEL_SOURCE:-}" ] && command -v dpkg-query >/dev/null 2>&1; then
    v=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$PKG" 2>/dev/null || true)
    case "$v" in installed\ *) srcid="$PKG ${v#installed }" ;; esac
fi
if [ -z "$srcid" ]; then
    [ -r "$TARBALL" ] || die "kernel source $TARBALL not found (apt-get install $PKG)"
    srcid="tarball $(sha256sum < "$TARBALL" | cut -d' ' -f1)"
fi
KEY=$({ printf 'hotcell-kernel-key-v1\0build.sh\0'; cat "$SELF"
        printf '\0hotcell.config\0'; cat "$FRAG"
        printf '\0source\0%s\0' "$srcid"; } | sha256sum | cut -d' ' -f1)
ENTRY="$ROOT/$KEY"

# ---- output ----------------------------------------------------------------------------
outdir_current() {
    [ -f "$OUTDIR/KEY" ] && [ "$(cat "$OUTDIR/KEY")" = "$KEY" ] || return 1
    for f in $FILES; do [ -s "$OUTDIR/$f" ] || return 1; done
}

install_outputs() {
    mkdir -p "$OUTDIR"
    rm -f "$OUTDIR/KEY"            # KEY is written last: it marks a complete OUTDIR
    for f in $FILES; do
        # copy (not hard link) so nothing done to OUTDIR can corrupt the cache entry
        cp --reflink=auto -f "$ENTRY/$f" "$OUTDIR/.$f.tmp.$$"
        mv -f "$OUTDIR/.$f.tmp.$$" "$OUTDIR/$f"
    done
    printf '%s\n' "$KEY" > "$OUTDIR/.KEY.tmp.$$"
    mv -f "$OUTDIR/.KEY.tmp.$$" "$OUTDIR/KEY"
    say "$OUTDIR/{bzImage,vmlinux,config} from cache $ENTRY"
}

entry_complete() { for f in $FILES; do [ -s "$ENTRY/$f" ] || return 1; done; }

if outdir_current; then
    say "up to date ($OUTDIR, key ${KEY:0:16})"
    exit 0
fi
if entry_complete; then
    install_outputs
    exit 0
fi

# ---- cache miss: build under an exclusive lock -----------------------------------------
# Not root and the system cache not writable: fall back to the user's own cache.
if [ -z "${HOTCELL_KERNEL_CACHE:-}" ] && ! { mkdir -p "$ROOT" 2>/dev/null && [ -w "$ROOT" ]; }; then
    ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/hotcell/kernel"
    ENTRY="$ROOT/$KEY"
    say "/var/cache/hotcell/kernel not writable; using $ROOT"
    if entry_complete; then install_outputs; exit 0; fi
fi
mkdir -p "$ROOT" || die "cannot create cache root $ROOT (set HOTCELL_KERNEL_CACHE)"
exec 9>>"$ROOT/.lock"
if ! flock -n 9; then
    say "waiting for another kernel build (lock $ROOT/.lock)"
    flock 9
fi
if entry_complete; then        # someone else built it while we waited
    install_outputs
    exit 0
fi

# Holding the lock, nobody else is building: leftovers are from interrupted builds.
rm -rf "$ROOT"/.tmp-* "$ROOT"/src/.tmp-*

for t in make gcc flex bison bc perl xz tar strip; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' not found; needed to build the kernel"
done
# objtool (always built on x86_64) needs libelf's headers
[ -e /usr/include/gelf.h ] || [ -e /usr/include/libelf/gelf.h ] \
    || die "libelf headers not found; needed to build the kernel (apt-get install libelf-dev)"

TMP=$(mktemp -d "$ROOT/.tmp-${KEY:0:16}-XXXXXX")
MAKEPID=""
cleanup() {
    if [ -n "$MAKEPID" ]; then kill -TERM -- "-$MAKEPID" 2>/dev/null || true; wait "$MAKEPID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
LOG="$TMP/build.log"
: > "$LOG"

# Unpacked source, shared by every key built from the same package version (read-only).
SRC="$ROOT/src/$(printf '%s' "$srcid" | sha256sum | cut -c1-16)"
if [ ! -f "$SRC/Makefile" ]; then
    say "unpacking $TARBALL ($srcid)"
    mkdir -p "$ROOT/src"
    u=$(mktemp -d "$ROOT/src/.tmp-XXXXXX")
    tar -xf "$TARBALL" -C "$u" || die "cannot unpack $TARBALL"
    top=$(find "$u" -mindepth 1 -maxdepth 1 -type d | head -n1)
    [ -f "$top/Makefile" ] || die "$TARBALL does not look like a kernel source tree"
    rm -rf "$SRC"
    mv -T "$top" "$SRC"
    rm -rf "$u"
fi

OBJ="$TMP/obj"
mkdir -p "$OBJ"
export KBUILD_BUILD_USER=hotcell KBUILD_BUILD_HOST=hotcell
MK=(make -C "$SRC" O="$OBJ" ARCH=x86_64)

# Run a make step in its own process group (so an interrupt stops all of it), output to LOG.
run() {
    printf '\n$ %s\n' "$*" >> "$LOG"
    setsid "$@" >> "$LOG" 2>&1 < /dev/null &
    MAKEPID=$!
    local rc=0
    wait "$MAKEPID" || rc=$?
    MAKEPID=""
    return $rc
}
fail() {
    say "error: $*"
    mkdir -p "$ROOT"
    cp -f "$LOG" "$ROOT/failed-${KEY:0:16}.log" 2>/dev/null || true
    say "---- last 30 lines of the build log ($ROOT/failed-${KEY:0:16}.log) ----"
    tail -n 30 "$LOG" | sed 's/^/kernel: | /' >&2
    exit 1
}

say "configuring (tinyconfig + hotcell.config, key ${KEY:0:16})"
run "${MK[@]}" tinyconfig || fail "make tinyconfig failed"
( cd "$OBJ" && run "$SRC/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" "$FRAG" ) \
    || fail "merge_config.sh failed"
run "${MK[@]}" olddefconfig || fail "make olddefconfig failed"

# Every value the fragment asks for must be in the final .config; an option that did not
# stick almost always has an unmet dependency.
missing=()
while IFS= read -r line; do
    case "$line" in
        CONFIG_*=n) want="# ${line%=n} is not set" ;;
        CONFIG_*=*) want=$line ;;
        "# CONFIG_"*" is not set") want=$line ;;
        *) continue ;;
    esac
    sym=${want#\# }; sym=${sym%%[= ]*}
    got=$(grep -E "^(# )?$sym[= ]" "$OBJ/.config" || true)
    case "$want" in
        "# "*) # off: absent from .config (unmet dependency) counts as off too
            case "$got" in "$sym="[ym]) missing+=("$sym: is ${got#*=}, wanted off (selected by another option?)") ;; esac ;;
        *)  [ "$got" = "$want" ] || missing+=("$sym: is ${got:-absent}, wanted ${want#*=}") ;;
    esac
done < <(sed 's/[[:space:]]*$//' "$FRAG")
if [ ${#missing[@]} -gt 0 ]; then
    say "error: these hotcell.config values did not stick after olddefconfig"
    say "(usually an unmet dependency; the Kconfig dependencies are shown below each):"
    for m in "${missing[@]}"; do
        say "  $m"
        sym=${m%%:*}; sym=${sym#CONFIG_}
        # the symbol's Kconfig entry: its depends on / select lines
        find "$SRC" -name 'Kconfig*' -not -path '*/Documentation/*' -print0 \
            | xargs -0 awk -v s="$sym" '
                $0 ~ "^[[:space:]]*(menu)?config[[:space:]]+" s "$" { on = 1; next }
                on && /^[[:space:]]*((menu)?config|menu|endmenu|choice|endchoice|if|endif|source)[[:space:]]*/ { on = 0 }
                on && /^[[:space:]]*(depends on|select)[[:space:]]/ { sub(/^[[:space:]]*/, ""); print }' \
            | sort -u | sed 's/^/kernel:       /' >&2 || true
    done
    cp -f "$OBJ/.config" "$ROOT/failed-${KEY:0:16}.config" 2>/dev/null || true
    say "resulting .config kept at $ROOT/failed-${KEY:0:16}.config"
    exit 1
fi

say "building bzImage and vmlinux with -j$JOBS (log: $LOG; takes minutes)"
start=$(date +%s)
run "${MK[@]}" -j"$JOBS" bzImage vmlinux || fail "kernel build failed"
say "built in $(( $(date +%s) - start )) s"

STAGE="$TMP/entry"
mkdir -p "$STAGE"
cp "$OBJ/arch/x86/boot/bzImage" "$STAGE/bzImage"
# vmlinux stays an ELF with its PVH note (.note.Xen, an allocated section): strip only
# symbols and debug info, which nothing that boots it reads.
strip -o "$STAGE/vmlinux" "$OBJ/vmlinux" || fail "strip vmlinux failed"
if command -v readelf >/dev/null 2>&1 && ! readelf -n "$STAGE/vmlinux" | grep -q 'Xen.*0x00000012\|PHYS32_ENTRY'; then
    fail "vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): is CONFIG_PVH set?"
fi
cp "$OBJ/.config" "$STAGE/config"
cp "$LOG" "$STAGE/build.log"
printf '%s\n' "$srcid" > "$STAGE/SOURCE"
rm -rf "$ENTRY"                # an incomplete entry (files deleted by hand); we hold the lock
mv -T "$STAGE" "$ENTRY" || fail "cannot move the new cache entry into place"
sync -f "$ENTRY" 2>/dev/null || true
say "cached as $ENTRY"
install_outputs
