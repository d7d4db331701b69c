# Helpers for the persistent-VM tests (tests/e2e/vm-*.sh), sourced after tests/lib/e2e.sh.
#   vm_procs         the processes whose environment holds our HOTCELL_HOME (every process
#                    hotcell starts for a VM keeps it: supervisor, VMM, helpers)
#   vm_clean NAME    PASS/FAIL: no such process, runtime dir empty, vms/ empty
#   vm_status VM     the status `vm ls --json` shows for VM (by id)

vm_procs() {
	local f p
	for f in /proc/[0-9]*/environ; do
		p=${f#/proc/}
		p=${p%/environ}
		[ "$p" == "$$" ] && continue
		# The test's own shell and tools have HOTCELL_HOME too: only a VM's kinds of process.
		grep -qE 'hotcell-vmd|qemu|virtiofsd|vhost-device|firecracker|cloud-hypervisor|hotcell-init' \
			"/proc/$p/cmdline" 2>/dev/null || continue
		{ tr '\0' '\n' <"$f" | grep -qx "HOTCELL_HOME=$HOTCELL_HOME"; } 2>/dev/null && echo "$p"
	done
	return 0
}

vm_clean() {
	local name=$1 why="" procs
	procs=$(vm_procs)
	[ -z "$procs" ] || why="processes left: $(for p in $procs; do tr '\0' ' ' </proc/$p/cmdline 2>/dev/null | cut -c1-80; echo; done)"
	[ -z "$(ls -A "$HOTCELL_RUNTIME_DIR")" ] || why="$why runtime dir not empty: $(ls -A "$HOTCELL_RUNTIME_DIR" | tr '\n' ' ')"
	[ -z "$(ls -A "$HOTCELL_HOME/vms" 2>/dev/null | grep -v '^\.lock$')" ] || why="$why vms/ not empty: $(ls -A "$HOTCELL_HOME/vms" | tr '\n' ' ')"
	if [ -z "$why" ]; then pass "$name"; else fail "$name" "$why"; fi
}

vm_status() {
	"$HC" vm ls --json | jq -r --arg id "$1" '.[] | select(.id == $id) | .status'
}

vm_pid() {
	"$HC" vm ls --json | jq -r --arg id "$1" '.[] | select(.id == $id) | .pid'
}

# vm_jailed_uid ID: the uid the VM's QEMU runs as (a descendant of its supervisor), or nothing.
vm_jailed_uid() {
	local sup q p
	sup=$(vm_pid "$1")
	for q in $(pgrep -f '^[^ ]*qemu-system'); do
		p=$q
		while [ -n "$p" ] && [ "$p" -gt 1 ]; do
			if [ "$p" == "$sup" ]; then
				awk '$1 == "Uid:" {print $2}' "/proc/$q/status"
				return
			fi
			p=$(awk '$1 == "PPid:" {print $2}' "/proc/$p/status" 2>/dev/null)
		done
	done
}
