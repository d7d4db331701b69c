#!/usr/bin/env bash
# Migration between two hotcell servers on real VMs (docs/migration.md): a source and a
# destination server on two loopback addresses (127.0.0.1, 127.0.0.2) with two HOTCELL_HOMEs.
# A VM writes a file to /tmp and runs a counter; every failure leaves it running once at the
# source (it still answers `vm exec`, its counter counts on) and nothing at the destination:
# an unreachable destination, a wrong token, a destination without room or without the
# backend, the connection cut at 10 %, 50 % and 99 % (tests/doubles/cut-proxy), a corrupt
# part, a restore that fails at the destination. Then the move through the source server's
# vm.migrate: the file and the counter survive, the source no longer lists the VM, the
# guest's clock is the host's, the destination lists the image; and back with `hotcell vm
# migrate`, which skips the blobs the source still has. Nothing is left behind.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
source "$HOTCELL_TOP/tests/lib/vm.sh"
source "$HOTCELL_TOP/tests/lib/migrate.sh"
PROXY=$HOTCELL_TOP/$BUILD/tests/doubles/cut-proxy
[ -x "$PROXY" ] || { skip vm-migrate "$PROXY is not built"; exit 0; }
e2e_image bb || exit 1
rc=0

SRC_HOME=$HOTCELL_HOME SRC_RUN=$HOTCELL_RUNTIME_DIR
DST_HOME=$E2E/home2 DST_RUN=$E2E/run2
mkdir -p "$DST_HOME" "$DST_RUN"
chmod 700 "$DST_RUN"
trap mig_cleanup EXIT

mig_start src 127.0.0.1 "$SRC_HOME" "$SRC_RUN"
mig_start dst 127.0.0.2 "$DST_HOME" "$DST_RUN"
# The same destination home without room (--max-vms 1, and the source's home holds one VM),
# without the backend (no QEMU), and with a QEMU that refuses every incoming migration.
SERVE_ARGS="--max-vms 1" mig_start full 127.0.0.2 "$SRC_HOME" "$SRC_RUN"
mig_start nobackend 127.0.0.2 "$DST_HOME" "$DST_RUN" HOTCELL_QEMU=/nonexistent/qemu
cat >"$E2E/work/qemu-no-incoming" <<EOF
#!/bin/sh
case " \$* " in *" -incoming "*) echo "qemu-no-incoming: refusing the incoming migration" >&2; exit 1;; esac
exec $(command -v qemu-system-x86_64) "\$@"
EOF
chmod 755 "$E2E/work/qemu-no-incoming"
mig_start badrestore 127.0.0.2 "$DST_HOME" "$DST_RUN" HOTCELL_QEMU=$E2E/work/qemu-no-incoming

vexec() { "$HC" vm exec "$@" 2>>"$E2E/err"; }
dst() { HOTCELL_HOME=$DST_HOME HOTCELL_RUNTIME_DIR=$DST_RUN "$@"; }
migrate() { # migrate TO TOKEN: the CLI, from the source's home
	"$HC" vm migrate vm1 --to "$1" --token-file "$2" --json >"$E2E/work/mig.json" 2>"$E2E/work/mig.err"
}

id=$("$HC" vm create --name vm1 --memory 128 --rootfs-mode block --channel serial bb 2>"$E2E/err")
expect create '[[ "$id" =~ ^[0-9a-f]{64}$ ]]' || { cat "$E2E/err"; exit 1; }
vexec vm1 sh -c 'echo moved > /tmp/mark'
vexec --detach vm1 sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done' >/dev/null
sleep 1

# still_here NAME: the VM runs once, at the source, and answers; the destination has nothing.
still_here() {
	local why="" a b
	[ "$(vm_status "$id")" == running ] || why="source status $(vm_status "$id")"
	a=$(vexec vm1 cat /tmp/count); sleep 0.5; b=$(vexec vm1 cat /tmp/count)
	[ "${b:-0}" -gt "${a:-0}" ] || why="$why counter stopped ($a, $b)"
	[ "$(vexec vm1 cat /tmp/mark)" == moved ] || why="$why /tmp/mark lost"
	[ -z "$(ls -A "$DST_HOME/vms" 2>/dev/null | grep -v '^\.lock$')" ] || why="$why destination lists a VM"
	[ -z "$(ls -A "$DST_HOME/migrate" 2>/dev/null)" ] || why="$why destination kept $(ls -A "$DST_HOME/migrate")"
	[ -z "$(ls -A "$SRC_HOME/migrate" 2>/dev/null)" ] || why="$why source kept $(ls -A "$SRC_HOME/migrate")"
	[ -z "$(HOTCELL_HOME=$DST_HOME vm_procs)" ] || why="$why destination processes left"
	[ -z "$(ls -A "$DST_HOME/store/blobs/sha256" 2>/dev/null)" ] || why="$why destination stored blobs"
	if [ -z "$why" ]; then pass "$1"; else fail "$1" "$why"; fi
}
# refused NAME REGEX: the migration failed with a message matching REGEX, then still_here.
refused() {
	local rc=$? msg pat=$2
	msg=$(cat "$E2E/work/mig.err")
	if [ "$rc" -ne 0 ] && grep -Eq "$pat" <<<"$msg"; then
		pass "$1-refused"
	else
		fail "$1-refused" "rc=$rc, the error does not match /$pat/: $msg"
	fi
	still_here "$1-source-runs"
}

migrate http://127.0.0.2:1 "$E2E/work/tok-dst"
refused unreachable 'destination.*(refused|connect|Couldn)'
migrate "$URL_dst" "$E2E/work/tok-src"
refused wrong-token 'refused the token'
migrate "$URL_full" "$E2E/work/tok-full"
refused no-room 'no room'
migrate "$URL_nobackend" "$E2E/work/tok-nobackend"
refused no-backend "no usable backend 'qemu'"
# proxy ARGS...: a cut-proxy in front of the destination; sets PROXY_URL.
proxy() {
	local i
	: >"$E2E/work/proxy.port"
	"$PROXY" --upstream "${URL_dst#http://}" --listen 127.0.0.2 "$@" >"$E2E/work/proxy.port" 2>>"$E2E/work/proxy.log" &
	PROXY_PID=$!
	MIG_PIDS+=("$PROXY_PID")
	for i in $(seq 1 50); do [ -s "$E2E/work/proxy.port" ] && break; sleep 0.1; done
	PROXY_URL=http://127.0.0.2:$(cat "$E2E/work/proxy.port")
}
for pct in 10 50 99; do
	proxy --cut-at "$pct"
	migrate "$PROXY_URL" "$E2E/work/tok-dst"
	refused "cut-$pct" 'destination'
	kill "$PROXY_PID" 2>/dev/null
done
proxy --corrupt-at 50
migrate "$PROXY_URL" "$E2E/work/tok-dst"
refused corrupt-part 'corrupt|migration stream'
migrate "$URL_badrestore" "$E2E/work/tok-badrestore"
refused restore-fails 'restore here failed'

# The move, through the source server's vm.migrate.
c0=$(vexec vm1 cat /tmp/count)
res=$(mig_rpc src vm.migrate "{\"id\":\"vm1\",\"to\":\"$URL_dst\",\"token\":\"$TOK_dst\"}")
nid=$(jq -r '.result.id // empty' <<<"$res")
expect migrate-ok '[[ "$nid" =~ ^[0-9a-f]{64}$ ]]' || echo "  $res"
expect migrate-figures 'jq -e ".result.downtime_ms > 0 and .result.bytes_sent > 1000000 and .result.blob_bytes_skipped == 0" <<<"$res" >/dev/null'; echo "  result: $res"
expect source-forgot '[ "$("$HC" vm ls --json | jq length)" == 0 ] && [ -z "$(ls -A "$SRC_HOME/migrate")" ]'
dexec() { dst "$HC" vm exec "$nid" "$@" 2>>"$E2E/err"; }
expect dest-running '[ "$(HOTCELL_HOME=$DST_HOME vm_status "$nid")" == running ]'
expect dest-file '[ "$(dexec cat /tmp/mark)" == moved ]'
a=$(dexec cat /tmp/count); sleep 1; b=$(dexec cat /tmp/count)
expect dest-counter-counts '[ "${a:-0}" -ge "${c0:-1}" ] && [ "${b:-0}" -gt "${a:-0}" ]'; echo "  counter: $c0 then $a, $b"
host_now=$(date +%s); guest_now=$(dexec date +%s)
expect dest-clock '[ -n "$guest_now" ] && [ "$guest_now" -ge $((host_now - 2)) ] && [ "$guest_now" -le $((host_now + 5)) ]'
expect dest-image 'dst "$HC" images --json | jq -e "any(.[]; .name | test(\"bb\"))" >/dev/null'
expect dest-resume-refused-before '! grep -q "incoming" "$DST_HOME/vms/$nid/vm.json"'

# And back with the CLI (HOTCELL_MIGRATE_TOKEN): the source still has every blob.
back=$(dst env HOTCELL_MIGRATE_TOKEN="$TOK_src" "$HC" vm migrate "$nid" --to "$URL_src" --json 2>"$E2E/err")
bid=$(jq -r '.id // empty' <<<"$back")
expect migrate-back '[[ "$bid" =~ ^[0-9a-f]{64}$ ]] && jq -e ".blob_bytes_skipped > 0" <<<"$back" >/dev/null' || { echo "  $back"; cat "$E2E/err"; }
expect back-file '[ "$("$HC" vm exec "$bid" cat /tmp/mark 2>/dev/null)" == moved ]'
expect dest-forgot '[ "$(dst "$HC" vm ls --json | jq length)" == 0 ] && [ -z "$(ls -A "$DST_HOME/migrate")" ]'

"$HC" vm rm -f "$bid" >/dev/null 2>&1
for p in "${MIG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
wait 2>/dev/null
MIG_PIDS=()
vm_clean clean-source
HOTCELL_HOME=$DST_HOME HOTCELL_RUNTIME_DIR=$DST_RUN vm_clean clean-destination
expect clean-migrate-dirs '[ -z "$(ls -A "$SRC_HOME/migrate" "$DST_HOME/migrate" 2>/dev/null | grep -v :)" ]'
finish
