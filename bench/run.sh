#!/usr/bin/env bash
# The issue-3 benchmark. Prints, on one accelerator (what `--accel auto` picks here):
#   1. the floor: bare QEMU (-M microvm, the same kernel) with an initramfs whose init ends the
#      VM at once, vs `hotcell run IMAGE true` with a cached image; medians of N runs; ratio
#      (target: hotcell <= 1.2x the floor);
#   2. the project kernel vs Debian's generic kernel, both on q35 with qboot, same do-nothing
#      init (target: <= 0.10x); the generic kernel is unpacked from Debian's linux-image-amd64
#      (apt-get download, never installed into the system), or the section is skipped;
#   3. host memory: RSS of hotcell + QEMU + virtiofsd for a 256 MiB guest running a command;
#   4. (only when asked: BENCH_PARTS="... 4") guest instructions under -icount shift=0,sleep=off
#      (1 instruction = 1 ns of guest time, so the figures do not move with the host's load):
#      kernel start to /init for the project and the generic kernel, and hotcell's guest to HELLO.
#
# Part 1 also prints where a cold run's time goes, each piece a median of the same series
# (timings_ms of `run --json`, docs/performance.md): hotcell before the VM, VMM start (helpers,
# jail, QEMU up to its QMP greeting), the rest of the boot to HELLO, the guest's own clock at
# HELLO, exec -> exit of `true`, teardown, and the CLI process around hc_run.
#
#   BENCH_RUNS=N (default 10)   BUILD=dir (default build)   BENCH_PARTS="1 2 3" (default)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init run jq
N=${BENCH_RUNS:-10}
kernel=$top/$BUILD/kernel/bzImage
[ -e "$kernel" ] || { echo "bench: $kernel is missing: run make first" >&2; exit 1; }

bench_accel
echo "bench: accelerator $accel (hotcell doctor), $N runs each, $(nproc) CPUs, $(uname -r)"
bench_floor_init
part() { [[ " ${BENCH_PARTS:-1 2 3} " == *" $1 "* ]]; }

bench_image bench
"$hc" run bench true >/dev/null # warm the rootfs cache: the runs below are cache hits
# The cold path: where `run` restores templates (docs/warm-start.md), --cold boots from scratch.
cold=()
"$hc" run --help 2>&1 | grep -q -- '--cold' && cold=(--cold)

# ---- 1. floor vs hotcell ----
if part 1; then

floor_once >/dev/null # warm the page cache

hc_once() {
	local t0 t1
	t0=$(now_ms)
	"$hc" run --json "${cold[@]}" bench true >"$work/run.json"
	t1=$(now_ms)
	# wall, then the pieces: before the VM, VMM start, boot after VMM start, guest clock at
	# HELLO, exec, teardown, outside hc_run (process start and exit, option parsing)
	jq -r --argjson w "$((t1 - t0))" '.timings_ms as $t | [$w,
		($t.total - $t.boot - $t.exec - $t.teardown), $t.vm_start, ($t.boot - $t.vm_start),
		$t.guest_boot, $t.exec, $t.teardown, ($w - $t.total)] | map(. * 10 | round / 10 | tostring)
		| join(" ")' \
		"$work/run.json"
}
# Interleaved, so both series see the same load on a shared machine.
interleave "$N" "$work/floor.txt" floor_once "$work/hc.txt" hc_once
floor=$(median <"$work/floor.txt")
col() { cut -d' ' -f"$1" "$work/hc.txt" | median; }
hc_med=$(col 1)
echo
echo "1. floor vs hotcell (microvm, $accel, $(basename "$hc_kernel"), median of $N${cold:+, --cold})"
printf '   floor: bare QEMU + kernel + poweroff init      %6s ms\n' "$floor"
printf '   hotcell run bench true (cached image)          %6s ms\n' "$hc_med"
printf '     hotcell before the VM (image, backend)       %6s ms\n' "$(col 2)"
printf '     VMM start (helpers, jail, QEMU to QMP)       %6s ms\n' "$(col 3)"
printf '     rest of the boot to HELLO                    %6s ms  (guest clock at HELLO %s ms)\n' "$(col 4)" "$(col 5)"
printf '     exec -> exit of true                         %6s ms\n' "$(col 6)"
printf '     teardown                                     %6s ms\n' "$(col 7)"
printf '     CLI process outside hc_run                   %6s ms\n' "$(col 8)"
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
	# The project kernel as hotcell boots it (doctor's kernel: the PVH vmlinux), and its
	# bzImage (what a boot loader without PVH would take).
	qemu_boot q35 "$hc_kernel" "${bios[@]}" >/dev/null
	interleave "$N" "$work/proj.txt" "qemu_boot q35 $hc_kernel ${bios[*]}" \
		"$work/gen.txt" "qemu_boot q35 $generic ${bios[*]}" \
		"$work/projbz.txt" "qemu_boot q35 $kernel ${bios[*]}"
	proj=$(median <"$work/proj.txt")
	projbz=$(median <"$work/projbz.txt")
	gen=$(median <"$work/gen.txt")
	printf '   project kernel (%s, as hotcell boots it)  %6s ms\n' "$(basename "$hc_kernel")" "$proj"
	printf '   project kernel (bzImage)                       %6s ms\n' "$projbz"
	printf '   generic kernel (%s)  %6s ms\n' "$(basename "$generic")" "$gen"
	printf '   ratio project / generic                        %6s   (bzImage %s; target <= 0.10)\n' "$(ratio "$proj" "$gen")" "$(ratio "$projbz" "$gen")"
fi
fi

# ---- 3. host memory for a 256 MiB guest ----
if part 3; then
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
fi

# ---- 4. guest instructions under -icount (deterministic) ----
part 4 || exit 0
echo
echo "4. guest instructions (-icount shift=0,sleep=off: guest ms = million instructions)"
# The clock init prints CLOCK_BOOTTIME at /init and ends the VM.
cat >"$work/clock-init.c" <<'EOF'
#include <stdio.h>
#include <sys/reboot.h>
#include <time.h>
int main(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	printf("CLOCK %ld.%06ld\n", (long)ts.tv_sec, ts.tv_nsec / 1000);
	fflush(stdout);
	reboot(RB_AUTOBOOT);
	return 0;
}
EOF
cc -static -Os -o "$work/clock-init" "$work/clock-init.c"
"$top/$BUILD/tools/mkinitramfs" "$work/clock.cpio" "$work/clock-init"
icount_init() { # MACHINE KERNEL [qemu args] -> guest ms at /init
	local m=$1 k=$2
	shift 2
	timeout -k 5 600 "$qemu" -nodefaults -no-user-config -display none -no-reboot -M "$m" -accel tcg \
		-icount shift=0,sleep=off -smp 1 -m 256M -kernel "$k" -initrd "$work/clock.cpio" \
		-append "console=ttyS0 reboot=t panic=-1 quiet$boot_args" -serial "file:$work/clock.log" "$@" \
		</dev/null >/dev/null 2>&1 || true
	awk '/^CLOCK/ {printf "%.1f", $2 * 1000}' "$work/clock.log"
}
bios=()
[ -f /usr/share/qemu/qboot.rom ] && bios=(-bios /usr/share/qemu/qboot.rom)
printf '   project kernel to /init, microvm (%s)     %8s M\n' "$(basename "$hc_kernel")" "$(icount_init microvm,acpi=off "$hc_kernel")"
printf '   project kernel to /init, q35 + qboot           %8s M\n' "$(icount_init q35 "$hc_kernel" "${bios[@]}")"
if [ -n "${generic:-}" ]; then
	printf '   generic kernel to /init, q35 + qboot           %8s M\n' "$(icount_init q35 "$generic" "${bios[@]}")"
fi
HOTCELL_QEMU_ARGS="-icount shift=0,sleep=off" "$hc" run --json "${cold[@]}" bench true >"$work/icount.json"
printf '   hotcell guest: kernel + init to HELLO          %8s M\n' "$(jq -r .timings_ms.guest_boot "$work/icount.json")"
