#!/usr/bin/env bash
# Warm start on the Firecracker and Cloud Hypervisor doubles (docs/warm-start.md): the first
# `hotcell run` of the image boots cold (the double runs the guest in QEMU) and saves the
# template through the VMM's documented snapshot API (Firecracker: PATCH /vm Paused, PUT
# /snapshot/create, Resumed; Cloud Hypervisor: vm.pause, vm.snapshot, vm.resume); the next run
# restores it (PUT /snapshot/load with the memory file as mem_backend File; vm.restore), and
# the double's restored guest (HOTCELL_DOUBLE_AGENT=1: an agent that answers HOSTNAME, RESEED
# and EXEC, vmm-double.h) runs the command: "start": "warm", with the run's hostname; --cold
# boots; nothing is left behind.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
source "$HOTCELL_TOP/tests/lib/vm.sh"
double_e2e_ready run-warm-doubles || exit 0
e2e_image bb || exit 1
export HOTCELL_FIRECRACKER=$HOTCELL_TOP/$BUILD/tests/doubles/firecracker-double
export HOTCELL_CLOUD_HYPERVISOR=$HOTCELL_TOP/$BUILD/tests/doubles/cloud-hypervisor-double
# Cloud Hypervisor runs jailed: its request log is in a directory the jail gets read-write, its
# guest's QEMU and vhost-device-vsock come in (tests/lib.sh).
mkdir -m 1777 "$E2E/dbl"
export HOTCELL_DOUBLE_AGENT=1 HOTCELL_FC_DOUBLE_LOG=$E2E/dbl/fc.log HOTCELL_CH_DOUBLE_LOG=$E2E/dbl/ch.log
double_jail_extra "+$E2E/dbl"
unset HOTCELL_FC_DOUBLE_FAULT HOTCELL_FC_DOUBLE_EXIT HOTCELL_FC_DOUBLE_EXPECT HOTCELL_FC_DOUBLE_GUEST
unset HOTCELL_CH_DOUBLE_FAULT HOTCELL_CH_DOUBLE_EXIT HOTCELL_CH_DOUBLE_GUEST
vmlinux=$HOTCELL_TOP/$BUILD/kernel/vmlinux
calls() { awk '{print $1, $2, $3}' "$1" 2>/dev/null | tr '\n' ';'; }

for b in firecracker cloud-hypervisor; do
	log=$E2E/dbl/fc.log
	[ "$b" == cloud-hypervisor ] && log=$E2E/dbl/ch.log
	R=(--backend "$b" --kernel "$vmlinux" --memory 128)
	rm -f "$log"
	e2e_json "${R[@]}" bb echo first
	expect "$b-first-cold" '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == cold ] && [ "$(jqr .stdout)" == first ]' || cat "$E2E/err"
	tpl=$(grep -l "\"backend\": \"$b\"" "$HOTCELL_HOME"/templates/*/snapshot.json 2>/dev/null | head -n1)
	if [ "$b" == firecracker ]; then
		expect "$b-saved" '[ -n "$tpl" ] && calls "$log" | grep -q "PATCH /vm 204;PUT /snapshot/create 204;PATCH /vm 204"'
	else
		expect "$b-saved" '[ -n "$tpl" ] && calls "$log" | grep -q "PUT /api/v1/vm.pause 204;PUT /api/v1/vm.snapshot 204;PUT /api/v1/vm.resume 204"'
	fi
	rm -f "$log"
	e2e_json "${R[@]}" -h "dbl-$b" bb echo second
	expect "$b-warm" '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == warm ] && [ "$(jqr .stdout)" == "HOTCELL-DOUBLE-GUEST restored dbl-$b" ]' || { cat "$E2E/err"; cat "$log"; }
	if [ "$b" == firecracker ]; then
		expect "$b-loaded" 'grep -q "PUT /snapshot/load 204 .*\"backend_type\": *\"File\"" "$log"'
	else
		expect "$b-loaded" 'calls "$log" | grep -q "PUT /api/v1/vm.restore 204"'
	fi
	e2e_json "${R[@]}" --cold bb echo third
	expect "$b-cold-flag" '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == cold ] && [ "$(jqr .stdout)" == third ]'
	e2e_clean "$b-warm"
done
finish
