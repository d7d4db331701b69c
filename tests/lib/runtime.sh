# Sourced by the hotcell-runtime tests (tests/{integration,e2e}/runtime-*.sh) after e2e.sh or
# with $E2E set:
#   RT                  build/bin/hotcell-runtime
#   rt_wrapper          writes $E2E/hcrt: hotcell-runtime with this test's HOTCELL_HOME,
#                       HOTCELL_RUNTIME_DIR and --root $E2E/rtroot, the runtime engines call
#   rt_clean NAME       PASS/FAIL NAME-clean: no supervisor, VMM, container process of ours, no
#                       runtime dir, no container state, no VM left in HOTCELL_HOME
RT=$HOTCELL_TOP/$BUILD/bin/hotcell-runtime

rt_wrapper() {
	cat >"$E2E/hcrt" <<EOS
#!/bin/sh
# The engine's environment may be cleaned; this test's private paths are set here.
export HOTCELL_HOME=$HOTCELL_HOME HOTCELL_RUNTIME_DIR=$HOTCELL_RUNTIME_DIR
export HOTCELL_KERNEL=\${HOTCELL_KERNEL:-${HOTCELL_KERNEL:-}} HOTCELL_INITRAMFS=${HOTCELL_INITRAMFS:-}
[ -n "\$HOTCELL_KERNEL" ] || unset HOTCELL_KERNEL
[ -n "\$HOTCELL_INITRAMFS" ] || unset HOTCELL_INITRAMFS
case " \$* " in *" --root "*) exec "$RT" "\$@" ;; esac
exec "$RT" --root "$E2E/rtroot" "\$@"
EOS
	chmod 755 "$E2E/hcrt"
}

rt_clean() {
	local name=$1 why="" procs
	for _ in $(seq 1 30); do
		procs=$(pgrep -af "$E2E" 2>/dev/null | grep -v "^$$ " |
			grep -E 'qemu|virtiofsd|vhost-device|hotcell-(vmd|runtime)' || true)
		[ -z "$procs" ] && break
		sleep 0.2
	done
	[ -z "$procs" ] || why="processes left: $procs"
	if [ -n "$(ls -A "$HOTCELL_RUNTIME_DIR" 2>/dev/null)" ]; then
		why="$why runtime dir not empty: $(ls -A "$HOTCELL_RUNTIME_DIR" | tr '\n' ' ')"
	fi
	if [ -n "$(ls -A "$E2E/rtroot" 2>/dev/null)" ]; then
		why="$why container state left: $(ls -A "$E2E/rtroot" | tr '\n' ' ')"
	fi
	if [ -n "$(ls "$HOTCELL_HOME/vms" 2>/dev/null)" ]; then
		why="$why VMs left: $(ls "$HOTCELL_HOME/vms" | tr '\n' ' ')"
	fi
	if [ -z "$why" ]; then pass "$name-clean"; else fail "$name-clean" "$why"; fi
}
