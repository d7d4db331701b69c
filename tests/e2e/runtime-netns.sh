#!/usr/bin/env bash
# hotcell-runtime in the engine's network namespace (real VMs, docs/runtime.md): podman
# --network ns:PATH of a namespace this test makes ("host", routed over a veth to "internet",
# where a web server runs; tests/lib/net-e2e.sh). The VM's network (TAP, NAT, dnsmasq) is made
# inside that namespace, not the machine's; the guest reaches the server through it; nothing
# is left in it (TAP, rules, dnsmasq, lease) nor anywhere else after the containers.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
source "$(dirname "$0")/../lib/net-e2e.sh"
command -v podman >/dev/null || { skip runtime-netns "podman is not installed (scripts/install-deps.sh)"; exit 0; }
net_e2e_init runtime-netns hr
source "$HOTCELL_TOP/tests/lib/runtime.sh"
[ -x "$RT" ] || { skip runtime-netns "$RT is not built"; exit 0; }
source "$HOTCELL_TOP/tests/lib/mkimage.sh"
rt_wrapper
mkimage "$E2E/work/layout" latest >"$E2E/work/mkimage.log" 2>&1 || { fail image "$(tail -n 3 "$E2E/work/mkimage.log")"; exit 1; }
mkdir -p "$E2E/www"
echo "through the engine's namespace" >"$E2E/www/index.html"
ip netns exec "$I" busybox httpd -p 198.51.100.2:80 -h "$E2E/www"
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
"${PM[@]}" load -q -i "$E2E/work/img.tar" >"$E2E/out" 2>"$E2E/err"
IMG=$("${PM[@]}" images -q | head -n 1)
[ -n "$IMG" ] || { fail image-load "$(head -c 400 "$E2E/err")"; exit 1; }
NS=(--network "ns:/run/netns/$H")

"${PM[@]}" run --rm "${NS[@]}" "$IMG" sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 10 198.51.100.2 80 | tail -n 1' >"$E2E/out" 2>"$E2E/err"
rc=$?
expect netns-reaches-server '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out")" == "through the engine'"'"'s namespace" ]'

# While one runs: its TAP is in the engine's namespace, none in the machine's.
"${PM[@]}" run -d --name n1 "${NS[@]}" "$IMG" sleep 600 >"$E2E/out" 2>"$E2E/err"
rc=$?
expect netns-tap-inside '[ "$rc" -eq 0 ] && ip -n "$H" -o link show | grep -q " hc-" && ! ip -o link show | grep -q " hc-"'
"${PM[@]}" rm -f n1 >/dev/null 2>&1
net_clean runtime-netns
rt_clean runtime-netns
"${PM[@]}" rmi -a -f >/dev/null 2>&1
"${PM[@]}" system reset -f >/dev/null 2>&1 || true
finish
