#!/usr/bin/env bash
# Persistent VMs on the Firecracker and Cloud Hypervisor doubles (tests/doubles/*-double.c,
# given as HOTCELL_FIRECRACKER / HOTCELL_CLOUD_HYPERVISOR): the doubles run the guest in QEMU
# behind the VMM's documented REST API and hybrid vsock, so create, exec (concurrent), cp,
# pause/resume and rm -f go through each driver end to end.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
source "$HOTCELL_TOP/tests/lib/vm.sh"
double_e2e_ready vm-doubles || exit 0
e2e_image bb || exit 1
export HOTCELL_FIRECRACKER=$HOTCELL_TOP/$BUILD/tests/doubles/firecracker-double
export HOTCELL_CLOUD_HYPERVISOR=$HOTCELL_TOP/$BUILD/tests/doubles/cloud-hypervisor-double
# Cloud Hypervisor runs jailed: its double's guest QEMU and vhost-device-vsock come in (tests/lib.sh).
double_jail_extra
unset HOTCELL_FC_DOUBLE_FAULT HOTCELL_FC_DOUBLE_EXIT HOTCELL_FC_DOUBLE_EXPECT HOTCELL_FC_DOUBLE_GUEST
vmlinux=$HOTCELL_TOP/$BUILD/kernel/vmlinux
echo hello-file >"$E2E/work/f"

for b in firecracker cloud-hypervisor; do
	# Cloud Hypervisor shares the rootfs over virtio-fs by default; Firecracker needs a disk.
	id=$("$HC" vm create --backend "$b" --kernel "$vmlinux" --memory 128 bb 2>"$E2E/err")
	rc=$?
	expect "$b-create" '[ "$rc" -eq 0 ] && [ "$(vm_status "$id")" == running ] && [ "$("$HC" vm inspect "$id" | jq -r .backend)" == "$b" ]'
	[ "$rc" -eq 0 ] || continue
	out=$("$HC" vm exec "$id" sh -c 'echo one > /tmp/s; cat /tmp/s' 2>"$E2E/err")
	expect "$b-exec" '[ "$out" == one ]'
	"$HC" vm exec "$id" sh -c 'sleep 0.5; echo a >> /tmp/l' &
	p=$!
	"$HC" vm exec "$id" sh -c 'echo b >> /tmp/l'
	wait "$p"
	expect "$b-exec-concurrent" '[ "$("$HC" vm exec "$id" cat /tmp/l | tr -d "\n")" == ba ]'
	"$HC" vm cp "$E2E/work/f" "$id:/tmp/f" && "$HC" vm cp "$id:/tmp/f" "$E2E/work/f2"
	expect "$b-cp" '[ "$(cat "$E2E/work/f2" 2>/dev/null)" == hello-file ]'
	rm -f "$E2E/work/f2"
	"$HC" vm pause "$id" && st=$(vm_status "$id") && "$HC" vm resume "$id"
	expect "$b-pause-resume" '[ "$st" == paused ] && [ "$("$HC" vm exec "$id" cat /tmp/s)" == one ]'
	"$HC" vm rm -f "$id"
	vm_clean "$b-rm-leaves-nothing"
done
finish
