#!/usr/bin/env bash
# The README's first command: from a fresh Debian 12 machine, installs what is missing, builds
# hotcell (guest kernel included: minutes the first time, cached afterwards), builds a small
# busybox OCI image offline, loads it, and runs a command in a micro-VM, printing the result.
#
#   ./scripts/demo.sh            the whole thing
#   HOTCELL_HOME=DIR ...         where the image store goes (default: a directory under build/)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "installing dependencies (scripts/install-deps.sh)"
./scripts/install-deps.sh

say "building (make -j2: hotcell, hotcell-init, the initramfs and the guest kernel)"
make -j2 all

export HOTCELL_HOME=${HOTCELL_HOME:-$top/build/demo-home}
hc=$top/build/bin/hotcell

say "building a busybox OCI image offline and loading it as 'sample'"
layout=$(mktemp -d /tmp/hcdemo.XXXXXX)
trap 'rm -rf "$layout"' EXIT
# shellcheck source=tests/lib/mkimage.sh
source tests/lib/mkimage.sh
mkimage "$layout/oci" latest --env GREETING=hello --cmd /bin/sh
"$hc" load --name sample "$layout/oci"
"$hc" images

say "hotcell doctor"
"$hc" doctor || true

say "hotcell run sample echo hello from a micro-VM"
"$hc" run sample echo hello from a micro-VM

say "hotcell run --json sample sh -c '...'"
"$hc" run --json sample sh -c 'echo "$GREETING from $(uname -sr) on $(cat /proc/cpuinfo | grep -c ^processor) vCPU"; echo "{\"ok\": true}" > /hotcell/result.json' |
	if command -v jq >/dev/null; then jq .; else cat; fi

say "done: the image store is in $HOTCELL_HOME; try $hc run --help"
