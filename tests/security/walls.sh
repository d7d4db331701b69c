#!/usr/bin/env bash
# The jail's walls, attacked from inside: tests/security/jail-probe runs through exactly the
# jail a QEMU gets (tests/security/jail-run: same namespaces, root, uid, capabilities, seccomp
# filter, rlimits, cgroups) and tries one thing per run. docs/security.md lists every case and
# the wall it proves. "killed" is a seccomp kill (SIGSYS): the attack never reached the kernel.
source "$(dirname "$0")/../lib.sh"

if [ "$(id -u)" -ne 0 ]; then
	skip walls "the jail needs root"
	exit 0
fi
RUNNER=$HOTCELL_TOP/$BUILD/tests/security/jail-run
PROBE=$HOTCELL_TOP/$BUILD/tests/security/jail-probe
for b in "$RUNNER" "$PROBE"; do
	[ -x "$b" ] || { skip walls "$b is not built"; exit 0; }
done
SEC=$(mktemp -d /tmp/hcsec.XXXXXX)
# A uid range of its own, so what is left behind is told from other hotcells' live VMs.
export HOTCELL_RUNTIME_DIR=$SEC/run HOTCELL_JAIL_LEASE_DIR=$SEC/leases HOTCELL_HOME=$SEC/home
export HOTCELL_JAIL_UIDS=4300000-4300099
mkdir -p "$HOTCELL_RUNTIME_DIR" "$HOTCELL_HOME"
cleanup() {
	pkill -9 -f "$SEC" 2>/dev/null
	rm -rf "$SEC"
}
trap cleanup EXIT

# jail ARGS... : runs the probe in a fresh VM jail; $out holds its output, $status the line
# jail-run printed for its end ("exited with status 0", "killed by signal SYS").
# JAIL_OPTS: jail-run's options for the jail (default: a QEMU's).
JAIL_OPTS=()
jail() {
	out=$("$RUNNER" "${JAIL_OPTS[@]}" -- "$PROBE" "$@" 2>&1)
	status=$(sed -n 's/^status: //p' <<<"$out")
}
# attack NAME WANT ARGS...: WANT is "killed" (SIGSYS), "refused ERRNO" or a line of output.
attack() {
	local name=$1 want=$2
	shift 2
	jail "$@"
	case $want in
	killed)
		[ "$status" == "killed by signal SYS" ] && pass "$name" ||
			fail "$name" "not killed by seccomp: $status; $(grep -v '^uid\|^run-dir\|^pid' <<<"$out" | head -3 | tr '\n' ' ')"
		;;
	*)
		grep -qxF -- "$want" <<<"$out" && pass "$name" ||
			fail "$name" "wanted '$want', got: $(grep -v '^run-dir' <<<"$out" | tr '\n' ' ' | head -c 300)"
		;;
	esac
}

# --- the view: nothing of the host but what the process needs
attack read-etc-shadow "refused ENOENT" read /etc/shadow
attack read-etc-passwd "refused ENOENT" read /etc/passwd
attack see-host-etc "refused ENOENT" exists /etc
attack see-host-home "refused ENOENT" exists /root
attack see-host-var-lib "refused ENOENT" exists /var/lib
attack see-hotcell-state "refused ENOENT" exists "$HOTCELL_HOME"
mkdir -p "$SEC/other-vm-run" && echo secret >"$SEC/other-vm-run/agent.sock"
attack read-other-vm-runtime-dir "refused ENOENT" read "$SEC/other-vm-run/agent.sock"
attack see-host-sbin "refused ENOENT" exists /usr/sbin
attack see-host-dev-sda "refused ENOENT" exists /dev/vda
attack no-dev-kvm-under-tcg "refused ENOENT" exists /dev/kvm
attack no-dev-net-tun-without-network "refused ENOENT" exists /dev/net/tun
attack see-host-sys "refused ENOENT" exists /sys/kernel
attack host-processes-hidden "pids 1" pids
attack signal-host-process "refused ESRCH" signal $$
attack sigkill-host-init "refused ESRCH" sigkill 1000000
attack own-hostname "hostname hotcell" status

# --- writing: the root is read-only, the binaries too; only the VM's runtime dir is its own
attack write-root "refused EROFS" write /evil
attack write-own-binary "refused EROFS" write "$PROBE"
attack write-libc "refused EROFS" write /lib/x86_64-linux-gnu/libc.so.6
attack write-dev-tmpfs "refused EROFS" write /dev/evil
attack mknod-killed killed mknod /tmp/null

# --- proc: read-only in every jail, whichever proc the process reaches (uid 0 writes a sysctl or
# /proc/sysrq-trigger by its mode alone, no capability asked); Landlock: writes only beneath the
# process's read-write paths. Only opened for writing, never written.
VOL=$SEC/vol
mkdir -p "$VOL" && chmod 777 "$VOL"
echo host >"$SEC/hostfile" && chmod 666 "$SEC/hostfile"
landlock=$("$HC" doctor 2>&1 | grep -c '^  landlock:    ABI')
# proc_walls PREFIX: the cases for the jail of JAIL_OPTS.
proc_walls() {
	local k=$1
	attack "$k-proc-read-only" "mount /proc ro" mount_opts /proc
	attack "$k-core-pattern-refused" "refused EROFS" open_write /proc/sys/kernel/core_pattern
	attack "$k-drop-caches-refused" "refused EROFS" open_write /proc/sys/vm/drop_caches
	if [ -e /proc/sysrq-trigger ]; then
		attack "$k-sysrq-trigger-refused" "refused EROFS" open_write /proc/sysrq-trigger
	else
		skip "$k-sysrq-trigger-refused" "this host's kernel has no /proc/sysrq-trigger"
	fi
	attack "$k-volume-writable" "ok write" write "$VOL/$k"
}
# A file handed in read-only (stdin), reopened for writing through /proc/self/fd: the mounts
# allow it (the file is 0666 on a read-write host mount), Landlock does not.
landlock_wall() {
	if [ "$landlock" -eq 1 ]; then
		attack "$1-landlock-reopen-refused" "refused EACCES" open_write /proc/self/fd/0 <"$SEC/hostfile"
	else
		skip "$1-landlock-reopen-refused" "Landlock is not available on this host (hotcell doctor)"
	fi
}
JAIL_OPTS=(--bind-rw "$VOL")
proc_walls qemu
landlock_wall qemu
# QEMU 7.2's C virtiofsd: uid 0, CAP_SYS_ADMIN until its own sandbox is built; no Landlock
# (it mounts and pivots itself). own_proc does what its setup does, then attacks through the
# proc fds it keeps.
JAIL_OPTS=(--kind virtiofsd --start-caps --bind-rw "$VOL")
proc_walls virtiofsd
attack virtiofsd-own-proc-core-pattern-refused "refused EROFS" own_proc "$VOL" task ../../sys/kernel/core_pattern
attack virtiofsd-own-proc-drop-caches-refused "refused EROFS" own_proc "$VOL" task ../../sys/vm/drop_caches
if [ -e /proc/sysrq-trigger ]; then
	attack virtiofsd-own-proc-sysrq-trigger-refused "refused EROFS" own_proc "$VOL" task ../../sysrq-trigger
else
	skip virtiofsd-own-proc-sysrq-trigger-refused "this host's kernel has no /proc/sysrq-trigger"
fi
attack virtiofsd-own-proc-fd-contained "refused ENOENT" own_proc "$VOL" fd ../../sys/kernel/core_pattern
attack virtiofsd-own-proc-reopen-works "ok reopened for writing" own_proc "$VOL" reopen /reopened
expect_eq virtiofsd-own-proc-reopen-on-host "$(cat "$VOL/reopened" 2>/dev/null)" x
# The Rust virtiofsd's jail (--sandbox=chroot, no CAP_SYS_ADMIN): Landlock too.
JAIL_OPTS=(--kind virtiofsd --bind-rw "$VOL")
proc_walls virtiofsd-chroot
landlock_wall virtiofsd-chroot
JAIL_OPTS=()

# --- identity and privileges
jail status
uid=$(sed -n 's/^uid //p' <<<"$out")
expect_eq runs-as-the-vms-uid "$(awk '/^Uid:/ {print $2 $3 $4 $5}' <<<"$out")" "$uid$uid$uid$uid"
expect_eq uid-is-unprivileged "$([ "${uid:-0}" -ge 65536 ] && echo yes)" yes
expect_eq gid-is-the-vms "$(awk '/^Gid:/ {print $2}' <<<"$out")" "$uid"
expect_eq no-supplementary-groups "$(awk '/^Groups:/ {print $2}' <<<"$out")" ""
expect_eq no-effective-caps "$(awk '/^CapEff:/ {print $2}' <<<"$out")" 0000000000000000
expect_eq no-permitted-caps "$(awk '/^CapPrm:/ {print $2}' <<<"$out")" 0000000000000000
expect_eq bounding-set-cleared "$(awk '/^CapBnd:/ {print $2}' <<<"$out")" 0000000000000000
expect_eq ambient-set-cleared "$(awk '/^CapAmb:/ {print $2}' <<<"$out")" 0000000000000000
expect_eq no-new-privs "$(awk '/^NoNewPrivs:/ {print $2}' <<<"$out")" 1
expect_eq seccomp-filter-on "$(awk '/^Seccomp:/ {print $2}' <<<"$out")" 2
expect_eq pid-1-of-its-namespace "$(sed -n 's/^nspid //p' <<<"$out")" 1
attack setuid-root-killed killed setuid0
# A setuid-root program in the VM's own (writable) dir: nosuid + no_new_privs keep it the VM's.
jail_suid() {
	local d
	d=$(mktemp -d "$HOTCELL_RUNTIME_DIR/suid.XXXXXX")
	chmod 755 "$d"
	cp "$PROBE" "$d/suid-probe" && chmod 4755 "$d/suid-probe"
	out=$("$RUNNER" --run-dir "$d" -- "$PROBE" exec "$d/suid-probe" status 2>&1)
	local u
	u=$(sed -n 's/^uid //p' <<<"$out")
	expect_eq setuid-binary-gains-nothing "$(awk '/^Uid:/ {print $3}' <<<"$out")" "$u"
	rm -rf "$d"
}
jail_suid
attack exec-su-absent "refused ENOENT" exec /bin/su

# --- the kernel's dangerous doors: closed by the seccomp allow-list (and by the missing caps)
attack mount-killed killed mount
attack umount-killed killed umount
attack chroot-killed killed chroot
attack ptrace-killed killed ptrace 1
attack init-module-killed killed init_module
attack finit-module-killed killed finit_module
attack raw-socket-killed killed raw_socket
attack packet-socket-killed killed packet_socket
attack netlink-socket-killed killed netlink_socket
attack inet-socket-without-network-killed killed inet_socket
attack unix-socket-allowed "ok unix socket" unix_socket
attack user-namespace-killed killed unshare_user
attack clone-newuser-killed killed clone_newuser
attack setns-killed killed setns
attack bpf-killed killed bpf
attack perf-event-killed killed perf
attack keyctl-killed killed keyctl
attack reboot-killed killed reboot
attack kexec-killed killed kexec
attack iopl-killed killed iopl
attack sethostname-killed killed hostname

# --- resources: rlimits (lowered to what the kind needs, hard limits too) and cgroups
attack raise-nofile-refused "refused EPERM" raise_nofile
attack raise-nproc-refused "refused EPERM" raise_nproc
attack no-core-dumps "core 0" core_limit
jail open_fds 100000
expect_eq nofile-capped "$(sed -n 's/^opened //p' <<<"$out")" 4093
jail fork_bomb
forked=$(sed -n 's/^forked //p' <<<"$out")
expect_eq fork-bomb-stops "$([ -n "$forked" ] && [ "$forked" -lt 600 ] && echo yes)" yes
jail limit "Max file size"
expect_eq file-size-capped "$(awk '/^Max file size/ {print $4}' <<<"$out")" $(((128 << 20) + (1 << 30)))
if [ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	# 128 MiB guest: the cgroup allows 128 + 384 MiB; touching 700 MiB is the OOM killer's.
	jail alloc 700
	expect_eq memory-limit-kills "$status" "killed by signal KILL"
	jail alloc 64
	expect_eq memory-within-limit-ok "$(grep -c '^ok allocated' <<<"$out")" 1
else
	skip memory-limit-kills "no memory cgroup on this host"
fi

# --- environment: cleared but for PATH and HOTCELL_*; HOTCELL_HOME always there
export SECRET_TOKEN=hunter2
attack env-secret-cleared "SECRET_TOKEN=(unset)" env SECRET_TOKEN
attack env-hotcell-home-kept "HOTCELL_HOME=$HOTCELL_HOME" env HOTCELL_HOME
unset SECRET_TOKEN

# --- two VMs: different uids, and neither can see, signal or trace the other
"$RUNNER" -- "$PROBE" sleep 4 >"$SEC/a.out" 2>&1 &
apid=$!
for _ in $(seq 100); do grep -q '^pid ' "$SEC/a.out" && break; sleep 0.05; done
a_uid=$(sed -n 's/^uid //p' "$SEC/a.out")
a_pid=$(sed -n 's/^pid //p' "$SEC/a.out")
jail status
b_uid=$(sed -n 's/^uid //p' <<<"$out")
expect_eq two-vms-two-uids "$([ -n "$a_uid" ] && [ "$a_uid" != "$b_uid" ] && echo yes)" yes
expect_eq other-vm-runs-as-its-uid "$(awk '/^Uid:/ {print $2}' /proc/"$a_pid"/status 2>/dev/null)" "$a_uid"
attack signal-other-vm "refused ESRCH" signal "$a_pid"
attack sigkill-other-vm "refused ESRCH" sigkill "$a_pid"
attack ptrace-other-vm-killed killed ptrace "$a_pid"
attack see-other-vm-proc "refused ENOENT" exists "/proc/$a_pid"
expect_eq other-vm-survives "$(kill -0 "$a_pid" 2>/dev/null && echo alive)" alive
wait "$apid"

# --- fail closed: a step that cannot be done stops the start, naming it
out=$(HOTCELL_JAIL_UIDS=12-13 "$RUNNER" -- "$PROBE" status 2>&1)
expect_eq bad-uid-range-refused "$(grep -c 'HOTCELL_JAIL_UIDS=12-13' <<<"$out")" 1
mkdir -p "$SEC/fakecg/memory"
out=$(HOTCELL_CGROUP_ROOT=$SEC/fakecg "$RUNNER" -- "$PROBE" status 2>&1)
expect_eq cgroup-limit-failure-refused "$(grep -c 'status: not started: .*memory.limit_in_bytes' <<<"$out")" 1
out=$(HOTCELL_JAIL_UIDS=4200000-4200000 "$RUNNER" -- "$PROBE" sleep 5 2>&1 &
	sleep 0.5
	HOTCELL_JAIL_UIDS=4200000-4200000 "$RUNNER" -- "$PROBE" status 2>&1)
expect_eq uid-range-exhausted-refused "$(grep -c 'every uid of 4200000-4200000 is leased' <<<"$out")" 1
wait

# --- hotcell doctor says what the jail does here: the range it leases from, seccomp, cgroups
doctor=$("$HC" doctor 2>&1)
expect_eq doctor-jail-on "$(grep -c '^  on:          yes, by default as root' <<<"$doctor")" 1
expect_eq doctor-jail-uids "$(grep -c '^  uids:        4300000-4300099, one per VM' <<<"$doctor")" 1
expect_eq doctor-jail-landlock "$(grep -c '^  landlock:    \(ABI [0-9]*: writes only beneath\|not \)' <<<"$doctor")" 1
expect_eq doctor-jail-seccomp "$(grep -c '^  seccomp:     allow-lists, kill-process' <<<"$doctor")" 1
expect_eq doctor-jail-bad-range "$(HOTCELL_JAIL_UIDS=5-6 "$HC" doctor 2>&1 | grep -c 'uids:        refused: HOTCELL_JAIL_UIDS=5-6')" 1

# --- nothing left behind
expect_eq no-lease-left "$(ls -A "$HOTCELL_JAIL_LEASE_DIR" 2>/dev/null)" ""
expect_eq no-runtime-dir-left "$(ls -A "$HOTCELL_RUNTIME_DIR" 2>/dev/null)" ""
expect_eq no-mount-left "$(grep -c "$SEC" /proc/mounts)" 0
expect_eq no-cgroup-left "$(ls -d /sys/fs/cgroup/*/hotcell/43000[0-9][0-9]-* 2>/dev/null | wc -l)" 0
finish
