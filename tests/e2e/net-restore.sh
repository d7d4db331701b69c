#!/usr/bin/env bash
# Networked restore and fork end to end on QEMU (docs/network.md, "Restored and forked VMs"),
# inside network namespaces this test makes (tests/lib/net-e2e.sh): a persistent VM with
# --network inet reaches the "internet" server; it is snapshotted and restored twice while it
# still runs, and forked twice: each copy has its own TAP, /30, MAC, nftables chains and
# dnsmasq, the guest moved eth0 to it (NETCONF) before any command, each reaches the server by
# IP and by name through its own resolver, and inet's filter applies to each (the private host
# stays unreachable). After vm rm of all of them no TAP, rule, dnsmasq or lease is left.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
source "$(dirname "$0")/../lib/net-e2e.sh"

net_e2e_init net-restore hr
source "$HOTCELL_TOP/tests/lib/vm.sh"
for a in 203.0.113.10 203.0.113.53 192.168.77.10; do
	ip -n "$I" addr add $a/32 dev lo
done
for a in 203.0.113.10 192.168.77.10; do
	mkdir -p "$E2E/www/$a"
	echo "host $a" >"$E2E/www/$a/index.html"
	ip netns exec "$I" busybox httpd -p $a:80 -h "$E2E/www/$a"
done
ip netns exec "$I" dnsmasq --conf-file=/dev/null --no-hosts --no-resolv --bind-interfaces \
	--listen-address=203.0.113.53 --pid-file --local=/test/ --address=/allowed.test/203.0.113.10
mkdir -p "/etc/netns/$H"
echo "nameserver 203.0.113.53" >"/etc/netns/$H/resolv.conf"

e2e_image bb || exit 1
hvm() { ip netns exec "$H" "$HC" vm "$@"; }
GET='g() { r=$(printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 "$1" 80 2>/dev/null | tail -n 1); echo "${r:-blocked}"; }'
# One line per VM: address/prefix, MAC, nameserver, and what the three requests got.
PROBE="$GET"'; echo "$(ip -o -4 addr show eth0 | awk "{print \$4}") $(cat /sys/class/net/eth0/address) $(awk "/^nameserver/ {print \$2}" /etc/resolv.conf) $(g 203.0.113.10 | tr " " _) $(g allowed.test | tr " " _) $(g 192.168.77.10 | tr " " _)"'
probe() { hvm exec "$1" sh -c "$PROBE" 2>>"$E2E/err"; }
# expect_vm NAME LINE: the copy reaches the public server by IP and name, not the private one,
# and its resolver is its own gateway.
expect_vm() {
	local name=$1 addr mac ns ip_r name_r priv_r
	read -r addr mac ns ip_r name_r priv_r <<<"$2"
	expect "$name-reaches" '[ "$ip_r" == host_203.0.113.10 ] && [ "$name_r" == host_203.0.113.10 ]' ||
		echo "  $name: $2" >&2
	expect "$name-filtered" '[ "$priv_r" == blocked ]'
	# The /30's gateway is the guest's address minus one.
	local g=${addr%/30} gw
	gw=${g%.*}.$((${g##*.} - 1))
	expect "$name-own-resolver" '[ "$ns" == "$gw" ]'
}

src=$(hvm create --memory 128 --rootfs-mode block --channel serial --network inet --name nsrc bb 2>"$E2E/err")
expect create-networked '[[ "$src" =~ ^[0-9a-f]{64}$ ]]' || { cat "$E2E/err"; exit 1; }
l0=$(probe nsrc)
expect_vm source "$l0"

"$HC" vm snapshot nsrc "$E2E/work/nsnap" 2>"$E2E/err"
rc=$?
expect snapshot-networked '[ "$rc" -eq 0 ] && jq -e ".spec.network == \"inet\"" "$E2E/work/nsnap/snapshot.json" >/dev/null' || cat "$E2E/err"

# Two restores while the source still runs on its own TAP.
r1=$(hvm restore "$E2E/work/nsnap" 2>"$E2E/err") || cat "$E2E/err"
r2=$(hvm restore "$E2E/work/nsnap" 2>"$E2E/err") || cat "$E2E/err"
expect restored-two '[[ "$r1" =~ ^[0-9a-f]{64}$ ]] && [[ "$r2" =~ ^[0-9a-f]{64}$ ]]'
l1=$(probe "$r1")
l2=$(probe "$r2")
expect_vm restore1 "$l1"
expect_vm restore2 "$l2"

# fork --count 2 of the running source.
ids=$(hvm fork --count 2 nsrc 2>"$E2E/err") || cat "$E2E/err"
f1=$(sed -n 1p <<<"$ids") f2=$(sed -n 2p <<<"$ids")
expect forked-two '[[ "$f1" =~ ^[0-9a-f]{64}$ ]] && [[ "$f2" =~ ^[0-9a-f]{64}$ ]]'
l3=$(probe "$f1")
l4=$(probe "$f2")
expect_vm fork1 "$l3"
expect_vm fork2 "$l4"

# Five VMs: five addresses, five MACs, five TAPs, five sets of chains, five resolvers.
lines=$(printf '%s\n' "$l0" "$l1" "$l2" "$l3" "$l4")
expect distinct-addresses '[ "$(awk "{print \$1}" <<<"$lines" | sort -u | grep -c .)" -eq 5 ]' || echo "$lines" >&2
expect distinct-macs '[ "$(awk "{print \$2}" <<<"$lines" | sort -u | grep -c .)" -eq 5 ]'
expect five-taps '[ "$(ip -n "$H" -o link show | grep -c " hc-")" -eq 5 ]'
expect five-filters '[ "$(ip netns exec "$H" nft list table inet hotcell | grep -c "chain fwd_")" -eq 5 ]'
expect five-resolvers '[ "$(ip netns pids "$H" | paste -sd, - | xargs -r ps -o args= -p | grep -c "^dnsmasq ")" -eq 5 ]'
# The source's network is untouched by its copies.
expect source-unchanged '[ "$(probe nsrc)" == "$l0" ]'

for v in nsrc "$r1" "$r2" "$f1" "$f2"; do hvm rm -f "$v" >/dev/null 2>&1; done
vm_clean vms-gone

# Warm runs (docs/warm-start.md): the first networked `run` of the image builds the template,
# the next two restore it, each onto its own TAP, /30, MAC and resolver, filtered as a cold run.
hrun() { ip netns exec "$H" "$HC" run --json --network inet --memory 128 bb sh -c "$PROBE" 2>>"$E2E/err"; }
w0=$(hrun)
w1=$(hrun)
w2=$(hrun)
expect warm-first-cold '[ "$(jq -r .start <<<"$w0")" == cold ]' || echo "$w0" >&2
expect warm-restored '[ "$(jq -r .start <<<"$w1")" == warm ] && [ "$(jq -r .start <<<"$w2")" == warm ]' || echo "$w1 $w2" >&2
expect warm-jailed-as-a-cold-run '[ "$(jq -r .jailed <<<"$w1")" == "$(jq -r .jailed <<<"$w0")" ]'
wl1=$(jq -r .stdout <<<"$w1")
wl2=$(jq -r .stdout <<<"$w2")
expect_vm warm1 "$wl1"
expect_vm warm2 "$wl2"
expect warm-distinct '[ -n "$wl1" ] && [ "$(awk "{print \$1}" <<<"$wl1")" != "$(awk "{print \$1}" <<<"$wl2")" ] && [ "$(awk "{print \$2}" <<<"$wl1")" != "$(awk "{print \$2}" <<<"$wl2")" ]'
net_clean restore
