#!/usr/bin/env bash
# Migration (docs/migration.md) on the Firecracker and Cloud Hypervisor doubles: a VM booted on
# each (the doubles run the guest in QEMU behind the documented API) moves from this home to a
# `hotcell serve` on 127.0.0.2 with its own home. The snapshot goes through PUT
# /snapshot/create or vm.snapshot, the destination restores it paused (PUT /snapshot/load with
# resume_vm false; vm.restore without vm.resume) and resumes it only at the commit (PATCH /vm
# Resumed; vm.resume), as the doubles' request logs show; the source no longer lists it, the
# destination lists it running on the same backend. A double restores into a fake guest of its
# own (it cannot run the double's saved state in QEMU), which answers no command: what runs
# in the guest after the move is tested on QEMU (tests/e2e/vm-migrate.sh).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
source "$HOTCELL_TOP/tests/lib/vm.sh"
source "$HOTCELL_TOP/tests/lib/migrate.sh"
double_e2e_ready vm-migrate-doubles || exit 0
e2e_image bb || exit 1
export HOTCELL_FIRECRACKER=$HOTCELL_TOP/$BUILD/tests/doubles/firecracker-double
export HOTCELL_CLOUD_HYPERVISOR=$HOTCELL_TOP/$BUILD/tests/doubles/cloud-hypervisor-double
unset HOTCELL_FC_DOUBLE_FAULT HOTCELL_FC_DOUBLE_EXIT HOTCELL_FC_DOUBLE_EXPECT HOTCELL_FC_DOUBLE_GUEST
vmlinux=$HOTCELL_TOP/$BUILD/kernel/vmlinux
DST_HOME=$E2E/home2 DST_RUN=$E2E/run2
mkdir -p "$DST_HOME" "$DST_RUN"
chmod 700 "$DST_RUN"
trap mig_cleanup EXIT
# The destination offers a backend only if it can boot it by its own defaults: the doubles
# need the ELF kernel.
# Cloud Hypervisor runs jailed: its request log is in a directory the jail gets read-write, its
# guest's QEMU and vhost-device-vsock come in (tests/lib.sh).
mkdir -m 1777 "$E2E/dbl"
double_jail_extra "+$E2E/dbl"
mig_start dst 127.0.0.2 "$DST_HOME" "$DST_RUN" HOTCELL_KERNEL="$vmlinux" HOTCELL_FC_DOUBLE_LOG="$E2E/dbl/firecracker.log" \
	HOTCELL_CH_DOUBLE_LOG="$E2E/dbl/cloud-hypervisor.log"
dst() { HOTCELL_HOME=$DST_HOME HOTCELL_RUNTIME_DIR=$DST_RUN "$@"; }

for b in firecracker cloud-hypervisor; do
	id=$("$HC" vm create --backend "$b" --kernel "$vmlinux" --memory 128 --rootfs-mode block bb 2>"$E2E/err")
	rc=$?
	expect "$b-create" '[ "$rc" -eq 0 ] && [ "$(vm_status "$id")" == running ]'
	[ "$rc" -eq 0 ] || continue
	"$HC" vm exec "$id" sh -c 'echo moved > /tmp/mark' 2>>"$E2E/err"
	out=$(HOTCELL_MIGRATE_TOKEN=$TOK_dst "$HC" vm migrate "$id" --to "$URL_dst" --json 2>"$E2E/err")
	rc=$?
	nid=$(jq -r '.id // empty' <<<"$out" 2>/dev/null)
	expect "$b-migrate" '[ "$rc" -eq 0 ] && [[ "$nid" =~ ^[0-9a-f]{64}$ ]] && jq -e ".bytes_sent > 0" <<<"$out" >/dev/null'
	expect "$b-source-forgot" '[ "$("$HC" vm ls --json | jq length)" == 0 ] && [ -z "$(ls -A "$HOTCELL_HOME/migrate")" ]'
	expect "$b-dest-running" '[ "$(dst "$HC" vm inspect "$nid" | jq -r "[.status, .backend, .migration_committed] | join(\" \")")" == "running $b true" ]'
	log=$E2E/dbl/$b.log
	if [ "$b" == firecracker ]; then
		expect "$b-loaded-paused-then-resumed" 'grep -q "PUT /snapshot/load 204 .*\"resume_vm\":false" "$log" && grep -A5 "PUT /snapshot/load 204" "$log" | grep -q "PATCH /vm 204 .*Resumed"'
	else
		expect "$b-restored-paused-then-resumed" 'grep -A3 "vm.restore 204" "$log" | grep -q "vm.resume 204"'
	fi
	dst "$HC" vm rm -f "$nid" >/dev/null 2>&1
	HOTCELL_HOME=$DST_HOME HOTCELL_RUNTIME_DIR=$DST_RUN vm_clean "$b-dest-rm-leaves-nothing"
	vm_clean "$b-source-leaves-nothing"
done
finish
