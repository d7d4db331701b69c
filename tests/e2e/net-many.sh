#!/usr/bin/env bash
# Ten concurrent networked VMs on QEMU (docs/network.md), inside network namespaces this test
# makes (never the machine's own interfaces): "host", where hotcell runs, routed over a veth to
# "internet", which holds a web server at 203.0.113.10. Ten `hotcell run --network inet` start
# at once; each must reach the server, each guest must have seen its own /30, and afterwards no
# TAP, nftables table, lease or dnsmasq is left. TCG on a shared machine is slow, so each run
# gets a generous --boot-timeout; nothing here asserts a time (the total is printed).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
source "$(dirname "$0")/../lib/net-e2e.sh"

net_e2e_init net-many hm
N=10
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

net_clean many
finish
