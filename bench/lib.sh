# bench/lib.sh: the set-up every benchmark shares, sourced by bench/*.sh (bash, set -euo
# pipefail). One home for: the work dir with its own HOTCELL_HOME and cleanup, the busybox test
# image built and loaded, the accelerator and kernel hotcell picks here, the bare-boot floor,
# interleaved series, medians and ratios, and a `hotcell serve` on loopback.
#
#   bench_init NAME [TOOL...]   top, BUILD, hc (HC), work (B); TOOLs must be on PATH
#   bench_at_exit 'CMD'         run CMD (before the common cleanup) when the script ends
#   bench_image NAME [TAG]      build tests/lib/mkimage.sh's image and load it as NAME
#   bench_accel                 accel, hc_kernel, cpu=(), boot_args, as `hotcell doctor` says
#   bench_floor_init; floor_once; qemu_boot MACHINE KERNEL [ARGS]   the bare-boot floor
#   interleave N FILE 'CMD' [FILE 'CMD'...]   N rounds, one run of each CMD a round, its
#                               output appended to its FILE (emptied first)
#   median, ratio A B, now_ms, ms_since T0_MS
#   bench_serve [SERVE ARGS]    start `hotcell serve` on 127.0.0.1; SRV_PID, TOKEN, PORT, URL

bench_init()
{
	local name=$1 t f
	shift
	top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	cd "$top"
	BUILD=${BUILD:-build}
	hc=$top/$BUILD/bin/hotcell
	HC=$hc
	qemu=${HOTCELL_QEMU:-qemu-system-x86_64}
	for f in "$hc" "$top/$BUILD/tools/mkinitramfs"; do
		[ -e "$f" ] || { echo "bench: $f is missing: run make first" >&2; exit 1; }
	done
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "bench: $t is not installed" >&2; exit 1; }
	done
	work=$(mktemp -d "/tmp/hcbench-$name.XXXXXX")
	B=$work
	export HOTCELL_HOME=$work/home HOTCELL_RUNTIME_DIR=$work/run
	mkdir -p "$HOTCELL_HOME" "$HOTCELL_RUNTIME_DIR" && chmod 700 "$HOTCELL_RUNTIME_DIR"
	SRV_PID=
	BENCH_AT_EXIT=()
	trap bench_cleanup EXIT
}

bench_at_exit() { BENCH_AT_EXIT+=("$1"); }

# Everything the run left: the script's own steps, the server, persistent VMs, any process
# whose command line names the work dir (QEMU, helpers), the dir itself.
bench_cleanup()
{
	local c pids
	for c in "${BENCH_AT_EXIT[@]}"; do eval "$c" || true; done
	if [ -n "$SRV_PID" ]; then
		kill -TERM "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
	fi
	"$hc" vm ls --json 2>/dev/null | jq -r '.[].id' 2>/dev/null |
		while read -r c; do "$hc" vm rm -f "$c" >/dev/null 2>&1 || true; done
	pids=$(pgrep -f "$work" || true)
	[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
	rm -rf "$work"
}

bench_image()
{
	# shellcheck source=tests/lib/mkimage.sh
	source "$top/tests/lib/mkimage.sh"
	mkimage "$work/layout-$1" "${2:-latest}" >"$work/mkimage-$1.log" 2>&1 ||
		{ echo "bench: mkimage failed: $(tail -n 5 "$work/mkimage-$1.log")" >&2; exit 1; }
	"$hc" load --name "$1" "$work/layout-$1" >/dev/null
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
ms_since() { echo $(($(now_ms) - $1)); }
# The middle value; of an even count, the mean of the two middle ones.
median() { sort -n | awk '{a[NR]=$1} END {if (!NR) exit; if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

interleave()
{
	local n=$1 i j
	shift
	local -a spec=("$@")
	for ((j = 0; j < ${#spec[@]}; j += 2)); do : >"${spec[j]}"; done
	for i in $(seq "$n"); do
		for ((j = 0; j < ${#spec[@]}; j += 2)); do
			# shellcheck disable=SC2086 # CMD is a command and its words
			${spec[j + 1]} >>"${spec[j]}"
		done
	done
}

# The accelerator and the kernel file hotcell boots on QEMU (doctor's lines: the PVH vmlinux
# when it has the entry note, else the bzImage), so the floor runs on the same.
bench_accel()
{
	local doc
	doc=$("$hc" doctor)
	accel=$(awk '/^qemu/ {q=1} q && /accelerator:/ {sub(":$", "", $2); print $2; exit}' <<<"$doc")
	accel=${accel:-tcg}
	hc_kernel=$(awk '/^qemu/ {q=1} q && /kernel:/ {print $2; exit}' <<<"$doc")
	[ -n "$hc_kernel" ] && [ -e "$hc_kernel" ] || hc_kernel=$top/$BUILD/kernel/bzImage
	cpu=()
	[ "$accel" == kvm ] && cpu=(-cpu host)
	# The kernel arguments hotcell adds under TCG (src/vmm/qemu.c, TCG_BOOT_ARGS): the floor
	# boots the kernel the same way, so a ratio measures hotcell's own cost.
	boot_args=""
	[ "$accel" == tcg ] && boot_args=" noreplace-smp lpj=1548288 noapictimer no_timer_check"
	return 0
}

# The do-nothing initramfs, uncompressed like the one hotcell boots (same unpack cost).
bench_floor_init()
{
	cc -static -Os -o "$work/poweroff-init" "$top/bench/poweroff-init.c"
	"$top/$BUILD/tools/mkinitramfs" "$work/floor.cpio" "$work/poweroff-init"
}

# qemu_boot MACHINE KERNEL [extra args]: one boot to the init's reboot, wall ms. reboot=t: a
# triple fault, which -no-reboot turns into QEMU's exit on every machine (microvm has no i8042).
qemu_boot()
{
	local machine=$1 k=$2 t0
	shift 2
	t0=$(now_ms)
	timeout -k 5 120 "$qemu" -nodefaults -no-user-config -display none -no-reboot -M "$machine" \
		-accel "$accel" "${cpu[@]}" -smp 1 -m 256M -kernel "$k" -initrd "$work/floor.cpio" \
		-append "console=ttyS0 reboot=t panic=-1 quiet$boot_args" -serial "file:$work/console.log" "$@" \
		</dev/null >/dev/null 2>"$work/qemu.err" ||
		{ echo "bench: qemu failed: $(cat "$work/qemu.err")" >&2; return 1; }
	ms_since "$t0"
}
# The floor: bare QEMU, microvm, the kernel hotcell boots, the do-nothing init.
floor_once() { qemu_boot microvm,acpi=off "$hc_kernel"; }

bench_serve()
{
	local _
	TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
	echo "$TOKEN" >"$work/token"
	"$hc" serve --listen 127.0.0.1:0 --auth-token-file "$work/token" "$@" 2>"$work/server.log" &
	SRV_PID=$!
	PORT=
	for _ in $(seq 100); do
		PORT=$(sed -n 's/^hotcell: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/server.log")
		[ -n "$PORT" ] && break
		sleep 0.1
	done
	[ -n "$PORT" ] || { echo "bench: the server did not start: $(cat "$work/server.log")" >&2; exit 1; }
	URL=http://127.0.0.1:$PORT/api/v1/rpc
}
