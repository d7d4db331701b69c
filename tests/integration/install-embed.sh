#!/usr/bin/env bash
# The library as a product: `make install DESTDIR=` into a temp dir, examples/run.c built with
# `pkg-config --cflags --libs hotcell` against that install, run on a real image (QEMU, a
# 128 MiB VM) with no HOTCELL_KERNEL/HOTCELL_INITRAMFS/HOTCELL_VMD: the installed library finds
# its kernel and initramfs under its own prefix (dladdr). The result JSON is checked; the temp
# dir is removed at exit.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
need_tools install-embed pkg-config make cc readelf
e2e_init

dest=$E2E/dest
prefix=$(make -s -C "$HOTCELL_TOP" --no-print-directory -f - print-prefix <<'MK' 2>/dev/null
include Makefile
print-prefix: ; @echo $(PREFIX)
MK
)
[ -n "$prefix" ] || prefix=/usr/local
if ! make -s -C "$HOTCELL_TOP" BUILD="$BUILD" DESTDIR="$dest" install >"$E2E/work/install.log" 2>&1; then
	fail install "make install failed: $(tail -n 5 "$E2E/work/install.log" | tr '\n' ' ')"
	exit 1
fi
lib=$dest$prefix/lib
real=$(cd "$lib" && ls libhotcell.so.*.*.* 2>/dev/null | head -n 1)
soname=$(readelf -d "$lib/$real" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
expect install-versioned '[ -n "$real" ] && [ -f "$lib/$real" ] && [ ! -L "$lib/$real" ]'
expect install-soname-link '[ -n "$soname" ] && [ "$(readlink "$lib/$soname")" == "$real" ]'
expect install-dev-link '[ "$(readlink "$lib/libhotcell.so")" == "$soname" ]'
expect install-guest-files '[ -f "$lib/hotcell/initramfs.cpio" ] && [ -f "$lib/hotcell/bzImage" ] && [ -x "$lib/hotcell/hotcell-vmd" ]'

# pkg-config: the .pc names the real prefix; PKG_CONFIG_SYSROOT_DIR maps it into DESTDIR.
export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
expect pc-prefix '[ "$(PKG_CONFIG_SYSROOT_DIR= pkg-config --variable=prefix hotcell)" == "$prefix" ]'
expect pc-version '[ "$(pkg-config --modversion hotcell)" == "$(sed -n "s/^#define HC_VERSION \"\(.*\)\"/\1/p" "$HOTCELL_TOP/include/hotcell.h")" ]'
expect pc-static 'pkg-config --static --libs hotcell | grep -q -- -ljansson'
flags=$(pkg-config --cflags --libs hotcell)
# A sanitized tree (make check-asan) installs a sanitized library: its embedder links the runtime.
san=
nm -D "$lib/$real" 2>/dev/null | grep -q __asan_init && san="-fsanitize=address,undefined"
# shellcheck disable=SC2086 # pkg-config prints a list of flags
if cc -std=c11 -Wall -Wextra -Werror $san -o "$E2E/work/run" "$HOTCELL_TOP/examples/run.c" $flags \
	>"$E2E/work/cc.log" 2>&1; then
	pass embed-build
else
	fail embed-build "cc $flags: $(head -c 600 "$E2E/work/cc.log")"
	exit 1
fi
expect embed-links-installed 'LD_LIBRARY_PATH=$lib ldd "$E2E/work/run" | grep -q "$lib/$soname"'

e2e_image bb || exit 1
SNAP= # the first run builds the rootfs cache; after it, nothing may change
# No HOTCELL_* path override; the state and runtime dirs stay the test's own.
env -u HOTCELL_KERNEL -u HOTCELL_INITRAMFS -u HOTCELL_VMD LD_LIBRARY_PATH="$lib" \
	"$E2E/work/run" -m 128 bb sh -c 'echo embedded; echo err >&2; exit 3' >"$E2E/json" 2>"$E2E/err"
rc=$?
expect embed-run-status '[ "$rc" -eq 3 ]'
expect embed-run-json '[ "$(jqr .exit_code)" == 3 ] && [ "$(jqr .stdout)" == embedded ] && [ "$(jqr .stderr)" == err ] && [ "$(jqr .image)" == localhost/bb:latest ]'
expect embed-run-backend '[ "$(jqr .backend)" == qemu ] && [[ "$(jqr .accel)" =~ ^(kvm|tcg)$ ]]'
e2e_clean embed-run
e2e_snapshot

# Moved elsewhere, the library looks beside itself again: a copy without lib/hotcell/ says
# where it searched (one clear line, exit 125).
mkdir -p "$E2E/bare/lib"
cp -P "$lib"/libhotcell.so* "$E2E/bare/lib/"
env -u HOTCELL_KERNEL -u HOTCELL_INITRAMFS -u HOTCELL_VMD LD_LIBRARY_PATH="$E2E/bare/lib" \
	"$E2E/work/run" -m 128 bb true >"$E2E/json" 2>"$E2E/err"
rc=$?
expect embed-missing-125 '[ "$rc" -eq 125 ] && [ "$(jqr .error.kind)" != null ]'
expect embed-missing-names-lib 'jqr .error.message | grep -qF "$E2E/bare/lib/hotcell/"'
e2e_clean embed-missing
finish
