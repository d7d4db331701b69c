#!/usr/bin/env bash
# podman 4.3 drives hotcell-runtime (real VMs, DESIGN.md §14): run --rm with exit codes, -e,
# -w, -u, -v, -i with stdin, -it on a pty (script), uname -r showing the guest kernel, podman
# exec, stop, kill, pause/unpause, rm -f, --hostname, the bundle's rootfs written through and
# a stopped container started again; nothing left behind after each. podman runs with its
# own storage, run root and tmp dir under $E2E, capped ulimits (FACTS.md) and no network.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
source "$HOTCELL_TOP/tests/lib/runtime.sh"
command -v podman >/dev/null || { skip runtime-podman "podman is not installed (scripts/install-deps.sh)"; exit 0; }
[ -x "$RT" ] || { skip runtime-podman "$RT is not built"; exit 0; }
source "$HOTCELL_TOP/tests/lib/mkimage.sh"
rt_wrapper
mkimage "$E2E/work/layout" latest >"$E2E/work/mkimage.log" 2>&1 || { fail image "$(tail -n 3 "$E2E/work/mkimage.log")"; exit 1; }
cat >"$E2E/containers.conf" <<EOC
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
events_logger = "file"
EOC
export CONTAINERS_CONF=$E2E/containers.conf
PM=(podman --root "$E2E/storage" --runroot "$E2E/prun" --tmpdir "$E2E/ptmp" --cgroup-manager cgroupfs
	--runtime "$E2E/hcrt")
tar -C "$E2E/work/layout" -cf "$E2E/work/img.tar" .
"${PM[@]}" load -q -i "$E2E/work/img.tar" >"$E2E/out" 2>"$E2E/err" ||
	skopeo copy -q "oci:$E2E/work/layout:latest" "containers-storage:[overlay@$E2E/storage+$E2E/prun]localhost/hcbb:latest" >"$E2E/out" 2>"$E2E/err"
IMG=$("${PM[@]}" images -q | head -n 1)
[ -n "$IMG" ] || { fail image-load "$(head -c 400 "$E2E/err")"; exit 1; }
pm() { "${PM[@]}" "$@" >"$E2E/out" 2>"$E2E/err"; rc=$?; }
run() { pm run --rm --net=none "$@"; }

run "$IMG" echo hi
expect run-echo '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out")" == hi ]'
run "$IMG" uname -r
expect guest-kernel '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out")" != "$(uname -r)" ] && [ -s "$E2E/out" ]'
run "$IMG" sh -c 'echo out; echo err >&2; exit 7'
expect exit-code '[ "$rc" -eq 7 ] && grep -qx out "$E2E/out" && grep -qx err "$E2E/err"'
run "$IMG" sh -c 'kill -9 $$'
expect exit-signal '[ "$rc" -eq 137 ]'
mkdir -p "$E2E/vol" && echo fromhost >"$E2E/vol/f"
run -e FOO=bar -w /tmp -u 1000:1000 "$IMG" sh -c 'echo $FOO $(pwd) $(id -u):$(id -g)'
expect env-workdir-user '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out")" == "bar /tmp 1000:1000" ]'
run -v "$E2E/vol:/data" "$IMG" sh -c 'cat /data/f; echo fromguest >/data/g'
expect volume '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out")" == fromhost ] && [ "$(cat "$E2E/vol/g")" == fromguest ]'
"${PM[@]}" run --rm -i --net=none "$IMG" sh -c 'tr a-z A-Z' <<<"stdin data" >"$E2E/out" 2>"$E2E/err"; rc=$?
expect stdin '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out")" == "STDIN DATA" ]'
if command -v script >/dev/null; then
	script -qec "$(printf '%q ' "${PM[@]}") run --rm -it --net=none $IMG sh -c 'echo on-a-tty; exit 5'" /dev/null >"$E2E/out" 2>"$E2E/err" </dev/null; rc=$?
	expect tty '[ "$rc" -eq 5 ] && grep -q on-a-tty "$E2E/out"'
else
	skip tty "script (util-linux) is not installed"
fi
# The bundle's rootfs is the guest's root, read-write: what the container wrote is in it.
pm run --name w --hostname box1 --net=none "$IMG" sh -c 'echo persisted >/written; hostname'
expect hostname '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out")" == box1 ]'
pm cp w:/written "$E2E/written"
expect rootfs-rw '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/written")" == persisted ]'
pm start -a w
expect restart '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out")" == box1 ]'
pm rm w
rt_clean run

# A long-running container: its pid is the VM's supervisor; exec, ps, pause/unpause, stop.
pm run -d --name long --net=none "$IMG" sleep 600
expect run-detached '[ "$rc" -eq 0 ]'
pid=$("${PM[@]}" inspect -f '{{.State.Pid}}' long)
expect pid-is-supervisor '[ -n "$pid" ] && [ "$pid" -gt 0 ] && tr "\0" " " </proc/$pid/cmdline | grep -q hotcell-vmd'
cid=$("${PM[@]}" inspect -f '{{.Id}}' long)
"$E2E/hcrt" ps "$cid" >"$E2E/out" 2>"$E2E/err"; rc=$?
expect ps-guest '[ "$rc" -eq 0 ] && grep -q "sleep 600" "$E2E/out" && grep -q "^ *1 " "$E2E/out"'
"$E2E/hcrt" ps --format json "$cid" >"$E2E/out" 2>"$E2E/err"; rc=$?
expect ps-json-host-pids '[ "$rc" -eq 0 ] && jq -e --argjson p "$pid" "index(\$p) == 0 and length > 1" "$E2E/out" >/dev/null'
pm exec long sh -c 'echo in-exec; exit 4'
expect exec '[ "$rc" -eq 4 ] && [ "$(cat "$E2E/out")" == in-exec ]'
"${PM[@]}" exec -i long cat <<<"exec stdin" >"$E2E/out" 2>"$E2E/err"; rc=$?
expect exec-stdin '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out")" == "exec stdin" ]'
pm pause long && st=$("${PM[@]}" inspect -f '{{.State.Status}}' long)
expect pause '[ "$rc" -eq 0 ] && [ "$st" == paused ]'
pm unpause long && st=$("${PM[@]}" inspect -f '{{.State.Status}}' long)
expect unpause '[ "$rc" -eq 0 ] && [ "$st" == running ]'
pm stop -t 5 long && st=$("${PM[@]}" inspect -f '{{.State.ExitCode}}' long)
expect stop '[ "$rc" -eq 0 ] && [ "$st" -eq 143 ]'
pm rm long
rt_clean stop

pm run -d --name k --net=none "$IMG" sleep 600
pm kill k && st=$("${PM[@]}" wait k)
expect kill '[ "$rc" -eq 0 ] && [ "$st" -eq 137 ]'
pm rm k
# Signals reach the workload as themselves: its USR1 trap runs (exit 3), STOP/CONT too.
pm run -d --name sig --net=none "$IMG" sh -c 'trap "echo got-usr1; exit 3" USR1; echo ready; while :; do sleep 0.1; done'
for _ in $(seq 1 300); do "${PM[@]}" logs sig 2>/dev/null | grep -q ready && break; sleep 0.2; done
pm kill -s USR1 sig && st=$("${PM[@]}" wait sig)
expect kill-usr1 '[ "$rc" -eq 0 ] && [ "$st" -eq 3 ] && "${PM[@]}" logs sig 2>/dev/null | grep -q got-usr1'
pm rm sig
pm run -d --name f --net=none "$IMG" sleep 600
pm rm -f f
expect rm-force '[ "$rc" -eq 0 ] && ! "${PM[@]}" inspect f >/dev/null 2>&1'
rt_clean kill-rm

# -it on a real terminal (tmux): a pty in the guest, its size, a resize passed on, ^C to the
# guest's foreground job, the exit code.
if command -v tmux >/dev/null; then
	sock=$E2E/tmux.sock
	tm() { tmux -S "$sock" "$@"; }
	pane() { tm capture-pane -p -t hc 2>/dev/null; }
	wait_for() { for _ in $(seq 1 $((${2:-120} * 5))); do pane | grep -qE "$1" && return 0; sleep 0.2; done; return 1; }
	printf '%q ' "${PM[@]}" >"$E2E/pm.cmd"
	echo "run --rm -it --net=none $IMG sh; echo rc=\$? >$E2E/tty.rc; sleep 600" >>"$E2E/pm.cmd"
	tm -f /dev/null new-session -d -s hc -x 100 -y 30 "bash $E2E/pm.cmd"
	if wait_for '^/ #' 400; then
		tm send-keys -t hc 'tty; echo "size=$(stty size)"' Enter
		wait_for 'size=[0-9]' 60
		expect_eq it-guest-pty "$(pane | grep -m1 '^/dev/pts')" /dev/pts/0
		expect_eq it-size "$(pane | grep -o 'size=[0-9]* [0-9]*' | tail -n 1)" "size=30 100"
		tm resize-window -t hc -x 120 -y 40 2>/dev/null || tm resize-pane -t hc -x 120 -y 40
		sleep 2
		tm send-keys -t hc 'echo "size2=$(stty size)"' Enter
		wait_for 'size2=[0-9]' 60
		expect_eq it-resize "$(pane | grep -o 'size2=[0-9]* [0-9]*' | tail -n 1)" "size2=40 120"
		# The job runs (its marker printed, not just echoed) before ^C is typed; ^C ends the
		# guest's foreground job (the shell drops the rest of that line), the shell lives on.
		tm send-keys -t hc 'echo job-""running; sleep 300' Enter
		wait_for '^job-running' 60
		sleep 1
		tm send-keys -t hc C-c
		sleep 1
		tm send-keys -t hc 'echo "after-sleep=$?"' Enter
		wait_for 'after-sleep=[0-9]' 60
		expect_eq it-ctrl-c "$(pane | grep -o 'after-sleep=[0-9][0-9]*' | tail -n 1)" after-sleep=130
		tm send-keys -t hc 'exit 6' Enter
		for _ in $(seq 1 300); do [ -s "$E2E/tty.rc" ] && break; sleep 0.2; done
		expect_eq it-exit "$(cat "$E2E/tty.rc" 2>/dev/null)" rc=6
	else
		fail it-prompt "no prompt: $(pane | tail -n 5 | tr '\n' '|')"
	fi
	tm kill-server 2>/dev/null
	rt_clean it
else
	skip it "tmux is not installed"
fi
"${PM[@]}" rmi -a -f >/dev/null 2>&1
"${PM[@]}" system reset -f >/dev/null 2>&1 || true
finish
