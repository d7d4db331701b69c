#!/usr/bin/env bash
# The issue-3 benchmark. Prints, on one accelerator (what `--accel auto` picks here):
#   1. the floor: bare QEMU (-M microvm, the same kernel) with an initramfs whose init ends the
#      VM at once, vs `hotcell run IMAGE true` with a cached image; medians of N runs; ratio
#      (target: hotcell <= 1.2x the floor);
#   2. the project kernel vs Debian's generic kernel, both on q35 with qboot, same do-nothing
#      init (target: <= 0.10x); the generic kernel is unpacked from Debian's linux-image-amd64
#      (apt-get download, never installed into the system), or the section is skipped;
#   3. host memory: RSS of hotcell + QEMU + virtiofsd for a 256 MiB guest running a command.
#
#   BENCH_RUNS=N (default 10)   BUILD=dir (default build)   BENCH_PARTS="1 2 3" (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
BUILD=${BUILD:-build}
N=${BENCH_RUNS:-10}
hc=$top/$BUILD/bin/hotcell
kernel=$top/$BUILD/kernel/bzImage
qemu=${HOTCELL_QEMU:-qemu-system-x86_64}

for f in "$hc" "$kernel" "$top/$BUILD/tools/mkinitramfs"; do
	[ -e "$f" ] || { echo "bench: $f is missing: run make first" >&2; exit 1; }
done

work=$(mktemp -d /tmp/hcbench.XXXXXX)
export HOTCELL_HOME=$work/home HOTCELL_RUNTIME_DIR=$work/run
mkdir -p "$HOTCELL_HOME" "$HOTCELL_RUNTIME_DIR" && chmod 700 "$HOTCELL_RUNTIME_DIR"
cleanup() {
	local pids
	pids=$(pgrep -f "$work" || true)
	[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# The accelerator: the one hotcell picks here, so the floor runs on the same.
accel=$("$hc" doctor | awk '/^qemu/ {q=1} q && /accelerator:/ {sub(":$", "", $2); print $2; exit}')
accel=${accel:-tcg}
# The kernel file hotcell boots on QEMU (doctor's line): the PVH vmlinux when it has the entry
# note, else the bzImage. The floor boots the same file.
hc_kernel=$("$hc" doctor | awk '/^qemu/ {q=1} q && /kernel:/ {print $2; exit}')
[ -n "$hc_kernel" ] && [ -e "$hc_kernel" ] || hc_kernel=$kernel
echo "bench: accelerator $accel (hotcell doctor), $N runs each, $(nproc) CPUs, $(uname -r)"

# The do-nothing initramfs, uncompressed like the one hotcell boots (same unpack cost).
cc -static -Os -o "$work/poweroff-init" bench/poweroff-init.c
"$top/$BUILD/tools/mkinitramfs" "$work/floor.cpio" "$work/poweroff-init"

cpu=()
[ "$accel" == kvm ] && cpu=(-cpu host)
# The kernel arguments hotcell adds under TCG (src/vmm/qemu.c, TCG_BOOT_ARGS): the floor boots
# the kernel the same way, so the ratio measures hotcell's own cost, not a kernel setting.
boot_args=""
[ "$accel" == tcg ] && boot_args=" noreplace-smp lpj=1548288 noapictimer no_timer_check"
# qemu_boot MACHINE KERNEL [extra args]: one boot to the init's reboot, wall ms. reboot=t: a
# triple fault, which -no-reboot turns into QEMU's exit on every machine (microvm has no i8042).
qemu_boot() {
	local machine=$1 k=$2 t0 t1
	shift 2
	t0=$(now_ms)
	timeout -k 5 120 "$qemu" -nodefaults -no-user-config -display none -no-reboot -M "$machine" -accel "$accel" \
		"${cpu[@]}" -smp 1 -m 256M -kernel "$k" -initrd "$work/floor.cpio" \
		-append "console=ttyS0 reboot=t panic=-1 quiet$boot_args" -serial "file:$work/console.log" "$@" \
		</dev/null >/dev/null 2>"$work/qemu.err" || { echo "bench: qemu failed: $(cat "$work/qemu.err")" >&2; return 1; }
	t1=$(now_ms)
	echo $((t1 - t0))
}
series() { # series N CMD... -> one figure per line
	local n=$1 i
	shift
	for i in $(seq "$n"); do "$@"; done
}

part() { [[ " ${BENCH_PARTS:-1 2 3} " == *" $1 "* ]]; }

source tests/lib/mkimage.sh
mkimage "$work/oci" latest >/dev/null
"$hc" load --name bench "$work/oci" >/dev/null
"$hc" run bench true >/dev/null # warm the rootfs cache: the runs below are cache hits

# ---- 1. floor vs hotcell ----
if part 1; then

qemu_boot microvm,acpi=off "$hc_kernel" >/dev/null # warm the page cache

hc_once() {
	local t0 t1
	t0=$(now_ms)
	"$hc" run --json bench true >"$work/run.json"
	t1=$(now_ms)
	echo "$((t1 - t0)) $(jq -r '.timings_ms.boot' "$work/run.json") $(jq -r '.timings_ms.teardown' "$work/run.json")"
}
# Interleaved, so both series see the same load on a shared machine.
: >"$work/floor.txt"
: >"$work/hc.txt"
for _ in $(seq "$N"); do
	qemu_boot microvm,acpi=off "$hc_kernel" >>"$work/floor.txt"
	hc_once >>"$work/hc.txt"
done
floor=$(median <"$work/floor.txt")
hc_med=$(cut -d' ' -f1 "$work/hc.txt" | median)
hc_boot=$(cut -d' ' -f2 "$work/hc.txt" | median)
hc_down=$(cut -d' ' -f3 "$work/hc.txt" | median)
echo
echo "1. floor vs hotcell (microvm, $accel, $(basename "$hc_kernel"), median of $N)"
printf '   floor: bare QEMU + kernel + poweroff init      %6s ms\n' "$floor"
printf '   hotcell run bench true (cached image)          %6s ms  (boot to hello %s ms, teardown %s ms)\n' "$hc_med" "$hc_boot" "$hc_down"
printf '   ratio hotcell / floor                          %6s   (target <= 1.20)\n' "$(ratio "$hc_med" "$floor")"
fi

# ---- 2. project kernel vs Debian's generic kernel on q35 ----
if part 2; then
echo
echo "2. project kernel vs Debian generic kernel (q35 + qboot, $accel, median of $N)"
generic=""
gdir=${HOTCELL_TOOLS_DIR:-/var/cache/hotcell-tools}/generic-kernel
if ls "$gdir"/boot/vmlinuz-* >/dev/null 2>&1; then
	generic=$(ls "$gdir"/boot/vmlinuz-* | head -n 1)
else
	# The package's file only, unpacked: installing a kernel into this system is not needed.
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	if [ -n "$pkg" ] && (cd "$work" && apt-get download "$pkg" >/dev/null 2>&1); then
		mkdir -p "$gdir" && dpkg-deb -x "$work"/linux-image-*.deb "$gdir" 2>/dev/null &&
			generic=$(ls "$gdir"/boot/vmlinuz-* 2>/dev/null | head -n 1) || true
	fi
fi
bios=()
[ -f /usr/share/qemu/qboot.rom ] && bios=(-bios /usr/share/qemu/qboot.rom)
if [ -z "$generic" ]; then
	echo "   SKIP: Debian's generic kernel is not available (apt-get download linux-image-amd64 failed)"
else
	qemu_boot q35 "$kernel" "${bios[@]}" >/dev/null
	: >"$work/proj.txt"
	: >"$work/gen.txt"
	for _ in $(seq "$N"); do
		qemu_boot q35 "$kernel" "${bios[@]}" >>"$work/proj.txt"
		qemu_boot q35 "$generic" "${bios[@]}" >>"$work/gen.txt"
	done
	proj=$(median <"$work/proj.txt")
	gen=$(median <"$work/gen.txt")
	printf '   project kernel (%s)  %6s ms\n' "$(basename "$(dirname "$kernel")")/bzImage" "$proj"
	printf '   generic kernel (%s)  %6s ms\n' "$(basename "$generic")" "$gen"
	printf '   ratio project / generic                        %6s   (target <= 0.10)\n' "$(ratio "$proj" "$gen")"
fi
fi

# ---- 3. host memory for a 256 MiB guest ----
part 3 || exit 0
echo
echo "3. host memory, 256 MiB guest running a command (RSS, MiB)"
# -i: the command waits for a line from us, so the VM is up while we measure.
coproc HCP { exec "$hc" run -i --memory 256 bench sh -c 'echo ready; read x; echo bye'; }
to_hc=${HCP[1]}
pid=$HCP_PID
read -r -t 300 line <&"${HCP[0]}" || true
tree() { echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
total=0
for p in $(tree "$pid"); do
	name=$(cat "/proc/$p/comm" 2>/dev/null || echo "?")
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
	shm=$(awk '/^RssShmem:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
	printf '   %-22s pid %-7s RSS %7.1f  (of which guest RAM/shmem %.1f)\n' "$name" "$p" "$(awk -v k="$rss" 'BEGIN {print k/1024}')" "$(awk -v k="$shm" 'BEGIN {print k/1024}')"
	total=$((total + rss))
done
printf '   total                                  RSS %7.1f\n' "$(awk -v k="$total" 'BEGIN {print k/1024}')"
echo >&"$to_hc"
wait "$pid" || true
