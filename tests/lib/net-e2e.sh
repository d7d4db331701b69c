# Sourced by the networking e2e tests (tests/e2e/net-*.sh) after tests/lib/e2e.sh: their
# network namespaces, never the machine's own interfaces.
#
#   net_e2e_init TEST PREFIX   skips TEST (exit 0) without ip/nft/dnsmasq, root, /dev/net/tun or
#                              namespaces; else makes "host" $H (where hotcell runs, 198.51.100.1)
#                              and "internet" $I (198.51.100.2, its default route) over a veth,
#                              runs e2e_init, and removes both (and their processes) on EXIT.
#   net_clean NAME             PASS/FAIL NAME-net-clean: no TAP, nftables table, process
#                              (dnsmasq, QEMU) or lease of hotcell's left in $H.

net_e2e_init() {
	local test=$1 t n
	for t in ip nft dnsmasq; do
		command -v $t >/dev/null 2>&1 || { skip "$test" "$t is not installed"; exit 0; }
	done
	[ "$(id -u)" -eq 0 ] || { skip "$test" "needs root (network namespaces, TAPs)"; exit 0; }
	[ -c /dev/net/tun ] || { skip "$test" "no /dev/net/tun"; exit 0; }
	H=$2$$-host I=$2$$-inet
	ip netns add "$H" 2>/dev/null || { skip "$test" "cannot make a network namespace"; exit 0; }
	ip netns add "$I"
	e2e_init
	trap net_e2e_cleanup EXIT
	ip link add hv0 netns "$H" type veth peer name iv0 netns "$I"
	ip -n "$H" addr add 198.51.100.1/24 dev hv0
	ip -n "$I" addr add 198.51.100.2/24 dev iv0
	for n in "$H" "$I"; do ip -n "$n" link set lo up; done
	ip -n "$H" link set hv0 up
	ip -n "$I" link set iv0 up
	ip -n "$H" route add default via 198.51.100.2
}

net_e2e_cleanup() {
	ip netns pids "$I" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns pids "$H" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$H" 2>/dev/null
	ip netns del "$I" 2>/dev/null
	rm -rf "/etc/netns/$H"
	e2e_cleanup
}

net_clean() {
	local name=$1 why="" pids ino
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
	if [ -z "$why" ]; then pass "$name-net-clean"; else fail "$name-net-clean" "$why"; fi
}
