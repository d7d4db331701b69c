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

# A long-running container: exec, pause/unpause, stop.
pm run -d --name long --net=none "$IMG" sleep 600
expect run-detached '[ "$rc" -eq 0 ]'
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
pm run -d --name f --net=none "$IMG" sleep 600
pm rm -f f
expect rm-force '[ "$rc" -eq 0 ] && ! "${PM[@]}" inspect f >/dev/null 2>&1'
rt_clean kill-rm
"${PM[@]}" rmi -a -f >/dev/null 2>&1
"${PM[@]}" system reset -f >/dev/null 2>&1 || true
finish
