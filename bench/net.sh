#!/usr/bin/env bash
# Network figures (docs/network.md), inside network namespaces of its own (never the machine's
# interfaces): per-VM network set-up + teardown cost (a --network inet run against a
# --network none run of the same command), TCP throughput guest -> "internet" host (a bounded
# dd | nc transfer into a busybox nc sink), TCP connect latency to a busybox httpd, and a
# networked restore (`vm restore` of a --network inet snapshot: new TAP, /30, rules,
# dnsmasq, RESEED + NETCONF) against a cold networked boot (`vm create --network inet`),
# interleaved, medians. Prints figures; asserts nothing. Needs root, ip, nft, dnsmasq, busybox,
# a built tree.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export HOTCELL_TOP=$top BUILD=${BUILD:-build}
for t in ip dnsmasq busybox umoci; do command -v $t >/dev/null || { echo "net: skipped ($t missing)"; exit 0; }; done
N=${NET_BENCH_RUNS:-3}
MB=${NET_BENCH_MB:-20}
# The namespaces ("host" $H where hotcell runs, "internet" $I over a veth) and their cleanup are
# the networking tests' own (tests/lib/net-e2e.sh): one copy of that setup. It skips (exit 0)
# without root, /dev/net/tun, nft or namespaces, and gives a private $E2E state.
# shellcheck source=tests/lib.sh
source "$top/tests/lib.sh"
# shellcheck source=tests/lib/e2e.sh
source "$top/tests/lib/e2e.sh"
# shellcheck source=tests/lib/net-e2e.sh
source "$top/tests/lib/net-e2e.sh"
net_e2e_init net-bench hcb
W=$E2E/work
mkdir -p "$W/www"
ip -n "$I" addr add 203.0.113.10/32 dev lo
echo ok >"$W/www/index.html"
ip netns exec "$I" busybox httpd -p 203.0.113.10:80 -h "$W/www"
mkdir -p "/etc/netns/$H"; echo "nameserver 203.0.113.10" >"/etc/netns/$H/resolv.conf"
# shellcheck source=tests/lib/mkimage.sh
source "$top/tests/lib/mkimage.sh"
mkimage "$W/layout" latest >"$W/mk.log" 2>&1 && "$HC" load --name nb "$W/layout" >/dev/null ||
	{ echo "net: skipped (cannot build the test image)"; exit 0; }

ms() { date +%s%N; }
# The guest's clock in ms (busybox date has no %N; /proc/uptime has 10 ms steps).
T='t() { awk "{print int(\$1 * 1000)}" /proc/uptime; }'
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
run() { ip netns exec "$H" "$HC" run --memory 128 "$@"; }
run nb true >/dev/null 2>&1 # warm the rootfs cache

for mode in none inet; do
	for _ in $(seq 1 "$N"); do
		s=$(ms); run --network $mode nb true >/dev/null 2>&1; e=$(ms)
		echo $(((e - s) / 1000000))
	done | median >"$W/$mode"
done
echo "net: run true, --network none:  $(cat "$W/none") ms (median of $N)"
echo "net: run true, --network inet:  $(cat "$W/inet") ms (median of $N)"
echo "net: network set-up + teardown per VM: $(($(cat "$W/inet") - $(cat "$W/none"))) ms"

for _ in $(seq 1 "$N"); do
	# The sink counts what arrives (busybox nc -l closes early when its own stdin ends).
	ip netns exec "$I" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("203.0.113.10", 5001)); s.listen(); c, _ = s.accept(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    n += len(b)
open(sys.argv[1], "w").write(str(n))' "$W/bytes" &
	sink=$!
	sleep 0.5
	run --network inet nb sh -c "$T"'; s=$(t); dd if=/dev/zero bs=65536 count='$((MB * 16))' 2>/dev/null | nc 203.0.113.10 5001; e=$(t); echo $((e - s))' 2>/dev/null
	wait $sink 2>/dev/null
done | median >"$W/tput"
t=$(cat "$W/tput")
echo "net: bytes the sink received in the last transfer: $(cat "$W/bytes" 2>/dev/null) of $((MB * 1048576))"
[ "${t:-0}" -gt 0 ] && echo "net: TCP guest -> internet host: $MB MiB in $t ms = $(awk -v m="$MB" -v t="$t" 'BEGIN {printf "%.1f", m * 1000 / t}') MiB/s (median of $N, TCG)"

run --network inet nb sh -c "$T"'; s=$(t); i=0; while [ $i -lt 20 ]; do printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 203.0.113.10 80 >/dev/null; i=$((i+1)); done; e=$(t); echo $(((e - s) / 20))' >"$W/lat" 2>/dev/null
echo "net: HTTP request (connect + GET + close) guest -> internet host: $(cat "$W/lat") ms each (20 in a row, TCG)"

# Networked restore against a cold networked boot of the same VM (persistent VMs: block rootfs,
# serial channel, the configuration QEMU snapshots), interleaved; each VM is removed at once.
hvm() { ip netns exec "$H" "$HC" vm "$@"; }
vargs="--memory 128 --rootfs-mode block --channel serial --network inet"
src=$(hvm create $vargs nb 2>"$W/err") || { echo "net: restore figures skipped: $(tail -n1 "$W/err")"; exit 0; }
hvm snapshot "$src" "$W/snap" >/dev/null 2>"$W/err" || { echo "net: restore figures skipped: $(tail -n1 "$W/err")"; exit 0; }
hvm rm -f "$src" >/dev/null 2>&1
: >"$W/cold"; : >"$W/restore"
for _ in $(seq 1 "$N"); do
	s=$(ms); id=$(hvm create $vargs nb 2>/dev/null); e=$(ms)
	[ -n "$id" ] && echo $(((e - s) / 1000000)) >>"$W/cold" && hvm rm -f "$id" >/dev/null 2>&1
	s=$(ms); id=$(hvm restore "$W/snap" 2>/dev/null); e=$(ms)
	[ -n "$id" ] && echo $(((e - s) / 1000000)) >>"$W/restore" && hvm rm -f "$id" >/dev/null 2>&1
done
echo "net: vm create --network inet (cold boot to a ready guest): $(median <"$W/cold") ms (median of $(wc -l <"$W/cold"), TCG)"
echo "net: vm restore of a --network inet snapshot (own TAP, /30, rules, dnsmasq, RESEED + NETCONF): $(median <"$W/restore") ms (median of $(wc -l <"$W/restore"), TCG)"
