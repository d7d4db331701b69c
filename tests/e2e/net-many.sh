#!/usr/bin/env bash
# Ten concurrent networked VMs on QEMU (docs/network.md), inside network namespaces this test
# makes (never the machine's own interfaces): "host", where hotcell runs, routed over a veth to
# "internet", which holds a web server at 203.0.113.10. Ten `hotcell run --network inet` start
# at once; each must reach the server, each guest must have seen its own /30, and afterwards no
# TAP, nftables table, lease or dnsmasq is left. TCG on a shared machine is slow, so each run
# gets a generous --boot-timeout; nothing here asserts a time (the total is printed).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"

for t in ip nft dnsmasq; do
	command -v $t >/dev/null 2>&1 || { skip net-many "$t is not installed"; exit 0; }
done
[ "$(id -u)" -eq 0 ] || { skip net-many "needs root (network namespaces, TAPs)"; exit 0; }
[ -c /dev/net/tun ] || { skip net-many "no /dev/net/tun"; exit 0; }
NS=hm$$
H=$NS-host I=$NS-inet
N=10
ip netns add "$H" 2>/dev/null || { skip net-many "cannot make a network namespace"; exit 0; }
ip netns add "$I"
e2e_init
many_cleanup() {
	ip netns pids "$I" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns pids "$H" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$H" 2>/dev/null
	ip netns del "$I" 2>/dev/null
	rm -rf "/etc/netns/$H"
	e2e_cleanup
}
trap many_cleanup EXIT

ip link add hv0 netns "$H" type veth peer name iv0 netns "$I"
ip -n "$H" addr add 198.51.100.1/24 dev hv0
ip -n "$I" addr add 198.51.100.2/24 dev iv0
for n in "$H" "$I"; do ip -n "$n" link set lo up; done
ip -n "$H" link set hv0 up
ip -n "$I" link set iv0 up
ip -n "$H" route add default via 198.51.100.2
ip -n "$I" addr add 203.0.113.10/32 dev lo
mkdir -p "$E2E/www"
echo "host 203.0.113.10" >"$E2E/www/index.html"
ip netns exec "$I" busybox httpd -p 203.0.113.10:80 -h "$E2E/www"
# The "host"'s resolver (dnsmasq on each gateway forwards there; nothing here resolves names).
mkdir -p "/etc/netns/$H"
echo "nameserver 198.51.100.2" >"/etc/netns/$H/resolv.conf"

e2e_image bb || exit 1
t0=$SECONDS
for k in $(seq 1 $N); do
	ip netns exec "$H" "$HC" run --memory 128 --boot-timeout 600 --timeout 900 --network inet bb \
		sh -c 'ip -o -4 addr show eth0 | awk "{print \$4}"
printf "GET / HTTP/1.0\r\n\r\n" | nc -w 10 203.0.113.10 80 | tail -n 1' \
		>"$E2E/m$k" 2>"$E2E/m$k.err" &
	eval "pid$k=$!"
done
failed=""
for k in $(seq 1 $N); do
	eval "wait \$pid$k" || failed="$failed $k(rc $?: $(tail -n 1 "$E2E/m$k.err"))"
done
echo "# $N concurrent networked VMs took $((SECONDS - t0)) s"
rc=0
cat "$E2E"/m*.err >"$E2E/err"
if [ -z "$failed" ]; then pass many-all-ran; else fail many-all-ran "failed runs:$failed"; fi
reached=0
for k in $(seq 1 $N); do
	[ "$(sed -n 2p "$E2E/m$k")" == "host 203.0.113.10" ] && reached=$((reached + 1))
done
expect many-all-reach '[ "$reached" -eq $N ]'
subnets=$(for k in $(seq 1 $N); do sed -n 1p "$E2E/m$k"; done | grep -E '^10\.[0-9.]+/30$' | sort -u | wc -l)
expect many-own-subnets '[ "$subnets" -eq $N ]'

# Nothing of hotcell's left in "host": no TAP, no table, no process (dnsmasq), no lease.
why=""
ip -n "$H" -o link show | grep -q ' hc-' && why="TAP left: $(ip -n "$H" -o link show | grep -o 'hc-[0-9a-f]*' | tr '\n' ' ')"
[ -n "$(ip netns exec "$H" nft list ruleset 2>&1)" ] && why="$why rules left: $(ip netns exec "$H" nft list tables | tr '\n' ' ')"
for _ in $(seq 1 30); do
	pids=$(ip netns pids "$H" 2>/dev/null | paste -sd, -)
	[ -z "$pids" ] && break
	sleep 0.1
done
[ -n "$pids" ] && why="$why processes left in the namespace: $(ps -o pid=,args= -p "$pids" | tr '\n' ' ')"
ino=$(ip netns exec "$H" stat -L -c %i /proc/self/ns/net)
ls /run/hotcell/net/"$ino"/*.lease >/dev/null 2>&1 && why="$why leases left"
if [ -z "$why" ]; then pass many-net-clean; else fail many-net-clean "$why"; fi
finish
