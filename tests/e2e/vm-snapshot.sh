#!/usr/bin/env bash
# Snapshot, restore, fork end to end on real VMs (docs/snapshots.md): a VM with a block rootfs
# and the serial channel writes a file to /tmp and starts a background counter (vm exec
# --detach); a snapshot; a restore has the file and the counter still counts; two restores of
# one snapshot read different bytes from /dev/urandom; a guest restored 5 s after its snapshot
# has the host's time, not the snapshot's; fork x2; the refusals (vsock channel, directory
# rootfs, a missing or corrupt snapshot); rm of everything leaves nothing.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
source "$HOTCELL_TOP/tests/lib/vm.sh"
e2e_image bb || exit 1
rc=0
args="--memory 128 --rootfs-mode block --channel serial"
create() { "$HC" vm create $args "$@" 2>"$E2E/err"; }
vexec() { "$HC" vm exec "$@" 2>>"$E2E/err"; }
snaps=$E2E/work/snaps
mkdir -p "$snaps"

src=$(create --name src bb)
expect create '[[ "$src" =~ ^[0-9a-f]{64}$ ]]' || { cat "$E2E/err"; exit 1; }
vexec src sh -c 'echo before > /tmp/mark'
vexec --detach src sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done' >/dev/null
sleep 1
c0=$(vexec src cat /tmp/count)
expect counter-runs '[ "${c0:-0}" -gt 0 ]'

# snapshot: the VM goes on running; the directory is a snapshot.
"$HC" vm snapshot src "$snaps/one" 2>"$E2E/err"; rc=$?
expect snapshot '[ "$rc" -eq 0 ] && [ -f "$snaps/one/snapshot.json" ]' || cat "$E2E/err"
expect snapshot-json 'jq -e ".format == 1 and .backend != null and (.image | test(\"bb\")) and (.digest | startswith(\"sha256:\")) and .spec.rootfs_mode == \"block\"" "$snaps/one/snapshot.json" >/dev/null'
expect snapshot-resumed '[ "$(vm_status "$src")" == running ]'
vexec src sh -c 'echo after > /tmp/mark'
sum_before=$(cd "$snaps/one" && sha256sum -- * | sha256sum)
t_snap=$(date +%s)

# --leave-paused
"$HC" vm snapshot --leave-paused src "$snaps/two" 2>"$E2E/err"; rc=$?
expect snapshot-leave-paused '[ "$rc" -eq 0 ] && [ "$(vm_status "$src")" == paused ]'
"$HC" vm resume src

# restore >= 5 s after the snapshot: the file is as it was, the counter counts on, the clock
# is the host's.
sleep $((5 - ($(date +%s) - t_snap) > 0 ? 5 - ($(date +%s) - t_snap) : 0))
r1=$("$HC" vm restore --name r1 "$snaps/one" 2>"$E2E/err"); rc=$?
expect restore '[ "$rc" -eq 0 ] && [[ "$r1" =~ ^[0-9a-f]{64}$ ]] && [ "$r1" != "$src" ]' || cat "$E2E/err"
expect restore-running '[ "$(vm_status "$r1")" == running ]'
expect restore-file '[ "$(vexec r1 cat /tmp/mark)" == before ]'
a=$(vexec r1 cat /tmp/count); sleep 1; b=$(vexec r1 cat /tmp/count)
expect restore-counter-counts '[ "${a:-0}" -ge "${c0:-1}" ] && [ "${b:-0}" -gt "${a:-0}" ]'
host_now=$(date +%s)
guest_now=$(vexec r1 date +%s)
expect restore-clock '[ -n "$guest_now" ] && [ "$guest_now" -ge $((host_now - 2)) ] && [ "$guest_now" -le $((host_now + 5)) ]'

# A second restore of the same snapshot reads other random bytes.
r2=$("$HC" vm restore "$snaps/one" 2>"$E2E/err")
u1=$(vexec r1 sh -c 'head -c16 /dev/urandom | od -An -tx1')
u2=$(vexec "$r2" sh -c 'head -c16 /dev/urandom | od -An -tx1')
expect restore-urandom-differs '[ -n "$u1" ] && [ -n "$u2" ] && [ "$u1" != "$u2" ]'
expect restore-never-writes '[ "$(cd "$snaps/one" && sha256sum -- * | sha256sum)" == "$sum_before" ]'

# A restored VM is jailed like a booted one (as root): its QEMU runs as its own uid.
if [ "$(id -u)" -eq 0 ]; then
	expect restore-jailed '[ "$(vm_jailed_uid "$r1")" -ge 65536 ] && [ "$(vm_jailed_uid "$r1")" != "$(vm_jailed_uid "$r2")" ]'
else
	skip restore-jailed "the jail needs root"
fi
# A restored VM's own snapshot restores, and that one's too: the file written in each shows.
vexec r1 sh -c 'echo r1 >> /tmp/mark'
"$HC" vm snapshot r1 "$snaps/r1" 2>"$E2E/err"
rr=$("$HC" vm restore --name rr "$snaps/r1" 2>>"$E2E/err"); rc=$?
expect restore-of-a-restore '[ "$rc" -eq 0 ] && [ "$(vexec rr cat /tmp/mark | tr "\n" " ")" == "before r1 " ]' || cat "$E2E/err"
vexec rr sh -c 'echo rr >> /tmp/mark'
"$HC" vm snapshot rr "$snaps/rr" 2>"$E2E/err"
rrr=$("$HC" vm restore --name rrr "$snaps/rr" 2>>"$E2E/err"); rc=$?
expect restore-of-a-restore-of-a-restore '[ "$rc" -eq 0 ] && [ "$(vexec rrr cat /tmp/mark | tr "\n" " ")" == "before r1 rr " ]' || cat "$E2E/err"
"$HC" vm rm -f rr rrr >/dev/null 2>&1

# fork x2: two new running VMs from src's state now; the temp snapshot is gone.
forktmp() { ls -d /dev/shm/hotcell-fork-* 2>/dev/null | sort; }
tmp_before=$(forktmp)
ids=$("$HC" vm fork --count 2 src 2>"$E2E/err"); rc=$?
expect fork '[ "$rc" -eq 0 ] && [ "$(wc -l <<<"$ids")" -eq 2 ]' || cat "$E2E/err"
f1=$(sed -n 1p <<<"$ids"); f2=$(sed -n 2p <<<"$ids")
expect fork-state '[ "$(vexec "$f1" cat /tmp/mark)" == after ] && [ "$(vexec "$f2" cat /tmp/mark)" == after ]'
vexec "$f1" sh -c 'echo f1 > /tmp/mark'
expect fork-private '[ "$(vexec "$f2" cat /tmp/mark)" == after ] && [ "$(vexec src cat /tmp/mark)" == after ]'
expect fork-temp-removed '[ -z "$(comm -13 <(echo "$tmp_before") <(forktmp))" ]'

# Refusals, each one line, nothing left behind.
"$HC" vm restore "$E2E/work/nosuch" 2>"$E2E/err" >/dev/null; rc=$?
expect restore-missing '[ "$rc" -ne 0 ] && [ "$(wc -l <"$E2E/err")" -eq 1 ] && grep -q "No such file" "$E2E/err"'
mkdir -p "$snaps/bad" && echo '{"format": 1,' >"$snaps/bad/snapshot.json"
"$HC" vm restore "$snaps/bad" 2>"$E2E/err" >/dev/null; rc=$?
expect restore-corrupt '[ "$rc" -ne 0 ] && grep -q "corrupt" "$E2E/err"'
"$HC" vm restore "$E2E/work" 2>"$E2E/err" >/dev/null; rc=$?
expect restore-not-a-snapshot '[ "$rc" -ne 0 ] && grep -q "not a hotcell snapshot" "$E2E/err"'
d=$("$HC" vm create --memory 128 --rootfs-mode dir bb 2>"$E2E/err")
"$HC" vm snapshot "$d" "$snaps/dir" 2>"$E2E/err"; rc=$?
expect snapshot-dir-rootfs-refused '[ "$rc" -ne 0 ] && grep -q "rootfs-mode block" "$E2E/err" && [ ! -e "$snaps/dir" ] && [ "$(vm_status "$d")" == running ]'
if [ -n "$(command -v vhost-device-vsock || ls /var/cache/hotcell-tools/usr/bin/vhost-device-vsock 2>/dev/null)" ]; then
	v=$("$HC" vm create --memory 128 --rootfs-mode block --channel vsock bb 2>"$E2E/err")
	"$HC" vm snapshot "$v" "$snaps/vsock" 2>"$E2E/err"; rc=$?
	expect snapshot-vsock-refused '[ "$rc" -ne 0 ] && grep -q "channel serial" "$E2E/err" && [ "$(vm_status "$v")" == running ]'
else
	skip snapshot-vsock-refused "vhost-device-vsock is not installed"
fi

"$HC" vm rm -f $("$HC" vm ls --json | jq -r '.[].id') >/dev/null 2>&1
vm_clean rm-leaves-nothing
