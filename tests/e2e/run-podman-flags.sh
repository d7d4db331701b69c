#!/usr/bin/env bash
# podman's run flags that reach the guest, in one boot of 128 MiB: -h (the guest's hostname),
# --add-host (lines of the guest's /etc/hosts), --env-file (podman's format: comments, blank
# lines, a bare KEY from the host) beside -e, --read-only (the root refuses writes; /tmp,
# /run, /var/tmp take them), --tmpfs and --mount type=tmpfs, --dns, --cpus 1.5, -q.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init

e2e_image bb || exit 1
# The one run builds the rootfs cache: e2e_clean checks processes and the runtime dir only.
SNAP=

envf=$E2E/work/env
printf '# a comment\n\nA=from file\n  # another\nHC_E2E_HOSTVAR\nHC_E2E_UNSET\nB=x=y\n' >"$envf"
unset HC_E2E_UNSET
HC_E2E_HOSTVAR="host value" e2e_run -m 128m -h podbox --add-host db.test:10.9.8.7 \
	--add-host v6.test:[fd00::5] --env-file "$envf" -e C=3 --read-only \
	--tmpfs /scratch:size=4m,mode=0700 --mount type=tmpfs,target=/t2,tmpfs-size=2m \
	--tmpfs /tmp:exec --dns 9.9.9.9 --dns fd00::53 --cpus 1.5 -q bb \
	sh -c 'echo "host=$(hostname)"; grep -E "test" /etc/hosts; grep -c localhost /etc/hosts;
		echo "A=$A|B=$B|C=$C|H=$HC_E2E_HOSTVAR|U=${HC_E2E_UNSET-unset}";
		touch /rootfile 2>/dev/null && echo root=writable || echo root=ro;
		for d in /tmp /run /var/tmp /scratch /t2; do touch $d/x && echo $d=ok; done;
		grep -E " /(scratch|t2|tmp) " /proc/mounts | sed "s/^/mount: /";
		stat -c "scratch-mode=%a" /scratch; sed "s/^/resolv: /" /etc/resolv.conf;
		echo "ncpu=$(grep -c ^processor /proc/cpuinfo)"'
expect podman-flags-ran '[ "$rc" -eq 0 ]'
expect hostname-short-h 'grep -qx "host=podbox" "$E2E/out"'
expect add-host-v4 'grep -qP "^10\.9\.8\.7\tdb\.test$" "$E2E/out"'
expect add-host-v6 'grep -qP "^fd00::5\tv6\.test$" "$E2E/out"'
expect add-host-keeps-localhost 'grep -qx "[1-9][0-9]*" "$E2E/out"'
expect env-file-values 'grep -qx "A=from file|B=x=y|C=3|H=host value|U=unset" "$E2E/out"'
expect read-only-root 'grep -qx "root=ro" "$E2E/out"'
expect read-only-scratch-writable '[ "$(grep -cE "^/(tmp|run|var/tmp)=ok$" "$E2E/out")" -eq 3 ]'
# --tmpfs and --mount type=tmpfs: their own tmpfs (size, mode; podman's noexec,nosuid,nodev
# unless OPTS say exec), writable under --read-only; a --tmpfs on /tmp replaces read-only's.
expect tmpfs-mounted '[ "$(grep -cE "^/(scratch|t2)=ok$" "$E2E/out")" -eq 2 ]'
expect tmpfs-size-and-flags 'grep -E "^mount: tmpfs /scratch tmpfs " "$E2E/out" | grep -q "nosuid,nodev,noexec" && grep -E "^mount: tmpfs /scratch " "$E2E/out" | grep -q "size=4096k" && grep -qx "scratch-mode=700" "$E2E/out"'
expect mount-type-tmpfs-size 'grep -E "^mount: tmpfs /t2 " "$E2E/out" | grep -q "size=2048k"'
expect tmpfs-exec-option '[ "$(grep -cE "^mount: tmpfs /tmp " "$E2E/out")" -eq 1 ] && ! grep -E "^mount: tmpfs /tmp " "$E2E/out" | grep -q noexec'
expect dns-resolv-conf '[ "$(grep "^resolv: " "$E2E/out" | tr "\n" "|")" == "resolv: nameserver 9.9.9.9|resolv: nameserver fd00::53|" ]'
expect cpus-fraction-rounded-up 'grep -qx "ncpu=2" "$E2E/out"'
e2e_clean podman-flags
