#!/usr/bin/env bash
# Real VMs, jailed by default: while a command runs in the guest, every VMM-side process of the
# VM (found, as tools find them, by HOTCELL_HOME in its environment) is checked from the host:
# the VM's own non-root uid, no capabilities (virtiofsd: none of the dangerous ones), no new
# privileges, a seccomp filter, its own mount namespace, no /etc/shadow in its root — a warm
# (restored) one too. Two VMs
# at once have two uids. --no-jail turns it all off and says so.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
if [ "$(id -u)" -ne 0 ]; then
	skip vm-jailed "the jail needs root"
	exit 0
fi
e2e_init
e2e_image bb || exit 1

# pids_of_vm: the processes whose environment holds our HOTCELL_HOME (not hotcell itself).
pids_of_vm() {
	local p
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" == "$1" ] && continue
		{ tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qxF "HOTCELL_HOME=$HOTCELL_HOME" &&
			echo "$p"
	done
}
field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; }
comm() { cat "/proc/$1/comm" 2>/dev/null; }
# Capability bits no VMM-side process may hold: SETPCAP 8, NET_ADMIN 12, SYS_MODULE 16,
# SYS_RAWIO 17, SYS_PTRACE 19, SYS_ADMIN 21, SYS_BOOT 22.
FORBIDDEN=$(((1 << 8) | (1 << 12) | (1 << 16) | (1 << 17) | (1 << 19) | (1 << 21) | (1 << 22)))

# check_vm NAME WANT RUN-ARGS...: starts a VM running `sleep 6`, inspects its processes; WANT
# names the processes (comm prefixes) that must be among them.
check_vm() {
	local name=$1 want=$2 hp pids=""
	shift 2
	"$HC" run "$@" bb true >/dev/null 2>&1 # the rootfs cache (a block image takes a while)
	"$HC" run "$@" bb sleep 6 >"$E2E/out.$name" 2>"$E2E/err.$name" &
	hp=$!
	for _ in $(seq 120); do
		pids=$(pids_of_vm "$hp")
		grep -q qemu <<<"$(for p in $pids; do comm "$p"; done)" && break
		sleep 0.1
	done
	sleep 1 # helpers and QEMU all up
	pids=$(pids_of_vm "$hp")
	local seen="" p c why=""
	for p in $pids; do
		c=$(comm "$p")
		[ -n "$c" ] || continue
		seen="$seen $c"
		local uid eff nnp sec
		uid=$(field "$p" Uid)
		eff=$(field "$p" CapEff)
		nnp=$(field "$p" NoNewPrivs)
		sec=$(field "$p" Seccomp)
		case $c in
		virtiofsd*)
			# uid 0 in its own sandbox, with only the file capabilities it serves with.
			[ $((0x$eff & FORBIDDEN)) -eq 0 ] || why="$why $c($p) CapEff=$eff;"
			[ $((0x$(field "$p" CapBnd) & FORBIDDEN)) -eq 0 ] || why="$why $c($p) CapBnd;"
			;;
		*)
			[ "$uid" -ge 65536 ] || why="$why $c($p) uid=$uid;"
			[ "$eff" == 0000000000000000 ] || why="$why $c($p) CapEff=$eff;"
			;;
		esac
		[ "$nnp" == 1 ] || why="$why $c($p) NoNewPrivs=$nnp;"
		[ "$sec" == 2 ] || why="$why $c($p) Seccomp=$sec;"
		[ "$(readlink /proc/"$p"/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] ||
			why="$why $c($p) host mount namespace;"
		[ "$(readlink /proc/"$p"/ns/pid)" != "$(readlink /proc/self/ns/pid)" ] ||
			why="$why $c($p) host pid namespace;"
		[ ! -e "/proc/$p/root/etc/shadow" ] || why="$why $c($p) sees /etc/shadow;"
		[ -e "/proc/$p/root/etc" ] && [ "$c" != virtiofsd ] && why="$why $c($p) has an /etc;"
	done
	echo "$seen" >"$E2E/seen.$name"
	if [ -z "$seen" ]; then
		fail "$name-walls" "no process of the VM found"
	elif [ -n "$why" ]; then
		fail "$name-walls" "$why (seen:$seen)"
	else
		pass "$name-walls"
	fi
	local w
	for w in $want; do
		grep -q "$w" "$E2E/seen.$name" && pass "$name-$w-found" ||
			fail "$name-$w-found" "not among:$seen"
	done
	wait "$hp"
	expect_eq "$name-runs" "$?" 0
	e2e_clean "$name"
}

check_vm dir-mode "qemu-system virtiofsd" --rootfs-mode dir --channel serial
check_vm block-vsock "qemu-system vhost-device" --rootfs-mode block --channel vsock
# A warm run (restored from the template the first run of check_vm built) is jailed the same.
check_vm warm "qemu-system" --rootfs-mode block --channel serial
e2e_json --rootfs-mode block --channel serial bb true
expect warm-json-jailed '[ "$(jqr .start)" == warm ] && [ "$(jqr .jailed)" == true ]'

# Two VMs at once: two uids.
"$HC" run bb sleep 5 >/dev/null 2>&1 &
a=$!
"$HC" run bb sleep 5 >/dev/null 2>&1 &
b=$!
sleep 3
uids=$(for p in $(pids_of_vm $$); do [ "$(comm "$p")" == qemu-system-x86 ] && field "$p" Uid; done | sort -u | wc -l)
expect_eq two-vms-two-uids "$uids" 2
wait "$a" "$b"
e2e_clean two-vms

# The JSON result says it; --no-jail says the opposite, and warns.
e2e_json bb true
expect json-jailed '[ "$(jqr .jailed)" == true ]'
e2e_json --no-jail bb true
expect json-no-jail '[ "$rc" -eq 0 ] && [ "$(jqr .jailed)" == false ] && grep -q "warning: --no-jail" "$E2E/err"'
e2e_clean no-jail
finish
