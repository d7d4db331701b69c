#!/usr/bin/env bash
# Networking end to end on QEMU (docs/network.md), entirely inside network namespaces this test
# makes: hotcell runs in "host", routed over a veth to "internet", which holds web servers at
# 203.0.113.10 (allowed.test) and 203.0.113.11 (other.test), a "private" one at 192.168.77.10,
# a fake cloud metadata server at 169.254.169.254 and the test zone's DNS at 203.0.113.53.
# Never the machine's own interfaces. Checks: none has no NIC; inet reaches the public host by
# IP and by name but not the private one nor the metadata server; full reaches them; an
# --allow-host lets one name through, not another name nor an IP literal; -p serves a guest
# httpd on the host's 127.0.0.1 and -p /udp a guest UDP echo; two concurrent VMs get different
# /30s; after every run, a SIGINT and a SIGKILL of hotcell (reclaimed by the next start) no
# TAP, rule or dnsmasq is left. The namespaces and the clean check: tests/lib/net-e2e.sh.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
source "$(dirname "$0")/../lib/net-e2e.sh"

net_e2e_init net-inet hc
for a in 203.0.113.10 203.0.113.11 203.0.113.53 192.168.77.10 169.254.169.254; do
	ip -n "$I" addr add $a/32 dev lo
done
for a in 203.0.113.10 203.0.113.11 192.168.77.10 169.254.169.254; do
	mkdir -p "$E2E/www/$a"
	echo "host $a" >"$E2E/www/$a/index.html"
	ip netns exec "$I" busybox httpd -p $a:80 -h "$E2E/www/$a"
done
ip netns exec "$I" dnsmasq --conf-file=/dev/null --no-hosts --no-resolv --bind-interfaces \
	--listen-address=203.0.113.53 --pid-file --local=/test/ \
	--address=/allowed.test/203.0.113.10 --address=/other.test/203.0.113.11
# ip netns exec puts /etc/netns/NAME/resolv.conf over /etc/resolv.conf: the "host"'s resolver.
mkdir -p "/etc/netns/$H"
echo "nameserver 203.0.113.53" >"/etc/netns/$H/resolv.conf"

e2e_image bb || exit 1
MEM="--memory 128"
hrun() { ip netns exec "$H" "$HC" run $MEM "$@"; }
# get HOST: the first body line of http://HOST/ from the guest, or "blocked".
GET='g() { r=$(printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 "$1" 80 2>/dev/null | tail -n 1); echo "${r:-blocked}"; }'

# none: only lo.
rc=0
hrun bb sh -c 'ls /sys/class/net' >"$E2E/out" 2>"$E2E/err" || rc=$?
expect none-only-lo '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out")" == lo ]'

# inet: public by IP and name; not private, not metadata. resolv.conf/hosts from the overlay.
rc=0
hrun --network inet bb sh -c "$GET"'; g 203.0.113.10; g allowed.test; g 192.168.77.10; g 169.254.169.254; cat /etc/resolv.conf; grep -c hotcell /etc/hosts' >"$E2E/out" 2>"$E2E/err" || rc=$?
expect inet-ran '[ "$rc" -eq 0 ]'
expect inet-public-ip '[ "$(sed -n 1p "$E2E/out")" == "host 203.0.113.10" ]'
expect inet-public-name '[ "$(sed -n 2p "$E2E/out")" == "host 203.0.113.10" ]'
expect inet-private-dropped '[ "$(sed -n 3p "$E2E/out")" == blocked ]'
expect inet-metadata-dropped '[ "$(sed -n 4p "$E2E/out")" == blocked ]'
expect inet-resolver-is-gateway 'sed -n 5p "$E2E/out" | grep -Eq "^nameserver 10\."'
expect inet-hosts-has-hostname '[ "$(sed -n 6p "$E2E/out")" -ge 1 ]'
net_clean inet

# full: the private host and the metadata address too.
rc=0
hrun --network full bb sh -c "$GET"'; g 203.0.113.10; g 192.168.77.10; g 169.254.169.254' >"$E2E/out" 2>"$E2E/err" || rc=$?
expect full-reaches-all '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out" | tr "\n" ,)" == "host 203.0.113.10,host 192.168.77.10,host 169.254.169.254," ]'
net_clean full

# --allow-host: the literal before the name resolves, the other name, then the allowed name.
rc=0
hrun --network inet --allow-host allowed.test bb sh -c "$GET"'; g 203.0.113.10; g 203.0.113.11; g other.test; g allowed.test' >"$E2E/out" 2>"$E2E/err" || rc=$?
expect allow-literal-blocked '[ "$(sed -n 1p "$E2E/out")" == blocked ] && [ "$(sed -n 2p "$E2E/out")" == blocked ]'
expect allow-other-name-blocked '[ "$(sed -n 3p "$E2E/out")" == blocked ]'
expect allow-name-reached '[ "$rc" -eq 0 ] && [ "$(sed -n 4p "$E2E/out")" == "host 203.0.113.10" ]'
net_clean allow-host

# Bad input: one line, 125, nothing left.
for bad in "--network inet --allow-host 1.2.3.4" "--network inet --allow-host bad_name.test" \
	"--network inet -p 0:80" "--network inet -p 80" "-p 8080:80" "--network bogus"; do
	rc=0
	# shellcheck disable=SC2086
	hrun $bad bb true >"$E2E/out" 2>"$E2E/err" || rc=$?
	expect "bad-input ${bad// /_}" '[ "$rc" -eq 125 ] && [ "$(wc -l <"$E2E/err")" -eq 1 ]'
done
net_clean bad-input

# -p: a guest httpd on the host's 127.0.0.1:18080; its CGI ends the guest's wait.
ip netns exec "$H" /usr/bin/python3 -c 'import socket,time
s=socket.socket(); s.bind(("127.0.0.1", 18081)); s.listen(); time.sleep(60)' &
busy=$!
for _ in $(seq 1 50); do ip netns exec "$H" ss -ltn | grep -q 127.0.0.1:18081 && break; sleep 0.1; done
rc=0
hrun --network inet -p 18081:80 bb true >"$E2E/out" 2>"$E2E/err" || rc=$?
expect publish-port-taken '[ "$rc" -eq 125 ] && grep -q "already in use" "$E2E/err"'
kill "$busy" 2>/dev/null
wait "$busy" 2>/dev/null
hrun --network inet -p 18080:8080 bb sh -c 'mkdir -p /tmp/w/cgi-bin; echo guest-page >/tmp/w/index.html
printf "#!/bin/sh\necho Content-Type: text/plain\necho\necho bye\ntouch /tmp/stop\n" >/tmp/w/cgi-bin/stop
chmod +x /tmp/w/cgi-bin/stop; httpd -p 8080 -h /tmp/w; i=0
while [ ! -e /tmp/stop ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done' >"$E2E/out" 2>"$E2E/err" &
vm=$!
page=""
for _ in $(seq 1 300); do
	page=$(ip netns exec "$H" curl -s -m 2 http://127.0.0.1:18080/ 2>/dev/null) && [ -n "$page" ] && break
	sleep 0.2
done
ip netns exec "$H" curl -s -m 5 http://127.0.0.1:18080/cgi-bin/stop >/dev/null 2>&1
wait "$vm"
rc=$?
expect publish-serves '[ "$page" == guest-page ] && [ "$rc" -eq 0 ]'
net_clean publish

# -p /udp: a guest UDP echo (tests/e2e/udp-echo.c: Debian's busybox nc has no UDP) on the
# host's 127.0.0.1:15353; two host clients each get their own answers; "quit" ends the guest.
if cc -static -O2 -o "$E2E/udp-echo" "$HOTCELL_TOP/tests/e2e/udp-echo.c" 2>"$E2E/cc.err" &&
	e2e_image bbudp --file "$E2E/udp-echo:/bin/udp-echo"; then
	hrun --network inet -p 15353:5353/udp bbudp udp-echo 5353 >"$E2E/out" 2>"$E2E/err" &
	vm=$!
	got=$(ip netns exec "$H" /usr/bin/python3 -c 'import socket,time
a, b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def ask(s, msg, tries):
    for _ in range(tries):
        s.sendto(msg, ("127.0.0.1", 15353)); s.settimeout(2)
        try: return s.recv(512).decode()
        except OSError: time.sleep(0.5)
    return "none"
out = [ask(a, b"one", 200), ask(b, b"two", 5), ask(a, b"three", 5), ask(b, b"quit", 5)]
print(",".join(out))')
	wait "$vm"
	rc=$?
	expect publish-udp '[ "$got" == "guest:one,guest:two,guest:three,bye" ] && [ "$rc" -eq 0 ]'
	net_clean publish-udp
else
	fail publish-udp "building the guest UDP echo failed: $(tail -n 3 "$E2E/cc.err")"
fi

# Two concurrent VMs: each its own /30, both reach the server.
for k in 1 2; do
	hrun --network inet bb sh -c "$GET"'; ip -o -4 addr show eth0 | awk "{print \$4}"; g 203.0.113.10' >"$E2E/c$k" 2>"$E2E/c$k.err" &
done
wait
a1=$(sed -n 1p "$E2E/c1") a2=$(sed -n 1p "$E2E/c2")
rc=0
expect concurrent-own-subnets '[ -n "$a1" ] && [ -n "$a2" ] && [ "$a1" != "$a2" ]'
expect concurrent-both-reach '[ "$(sed -n 2p "$E2E/c1")" == "host 203.0.113.10" ] && [ "$(sed -n 2p "$E2E/c2")" == "host 203.0.113.10" ]'
net_clean concurrent

# Firecracker (also under its jailer) and Cloud Hypervisor through their doubles, which boot
# QEMU on the same TAP (opened by name as Firecracker does, as the jail's user under the jailer
# double; as the passed fd for Cloud Hypervisor): the driver's network request, the filter, DNS.
dbls=$HOTCELL_TOP/$BUILD/tests/doubles
# Cloud Hypervisor runs jailed: the doubles' request logs are in a directory the jail gets
# read-write, the double's guest QEMU and vhost-device-vsock come in (tests/lib.sh).
mkdir -m 1777 "$E2E/dbl"
double_jail_extra "+$E2E/dbl"
for b in firecracker firecracker-jailer cloud-hypervisor; do
	backend=${b%-jailer} jail=(env)
	dbl=$dbls/$backend-double
	if [ ! -x "$dbl" ] || [ ! -r "$HOTCELL_TOP/$BUILD/kernel/vmlinux" ] || [ ! -w /dev/kvm ]; then
		skip "$b-net" "the $backend double, build/kernel/vmlinux or a usable /dev/kvm is missing"
		continue
	fi
	if [ $b == firecracker-jailer ]; then
		[ -x "$dbls/jailer-double" ] || { skip "$b-net" "the jailer double is not built"; continue; }
		jail=(env HOTCELL_FIRECRACKER_JAILER="$dbls/jailer-double")
	fi
	rc=0
	# shellcheck disable=SC2068
	${jail[@]} HOTCELL_FIRECRACKER=$dbls/firecracker-double \
		HOTCELL_CLOUD_HYPERVISOR=$dbls/cloud-hypervisor-double \
		HOTCELL_FC_DOUBLE_LOG=$E2E/dbl/$b.log HOTCELL_CH_DOUBLE_LOG=$E2E/dbl/$b.log \
		ip netns exec "$H" "$HC" run $MEM --backend $backend --kernel "$HOTCELL_TOP/$BUILD/kernel/vmlinux" \
		--network inet bb sh -c "$GET"'; g allowed.test; g 192.168.77.10' >"$E2E/out" 2>"$E2E/err" || rc=$?
	expect "$b-net-reaches" '[ "$rc" -eq 0 ] && [ "$(cat "$E2E/out" | tr "\n" ,)" == "host 203.0.113.10,blocked," ]' ||
		tail -n 3 "$E2E/err" >&2
	if [ $b == firecracker-jailer ]; then
		# The jailed Firecracker (the VM's leased uid, no CAP_NET_ADMIN) attached the TAP through the
		# jail's /dev/net/tun: the double answers 400 when the kernel refuses it.
		expect "$b-net-request" 'grep -q "^JAILER " "$E2E/dbl/$b.log" && grep -qE "^START .* uid [1-9][0-9]*" "$E2E/dbl/$b.log" && grep -q "PUT /network-interfaces/eth0 204 .*\"host_dev_name\":\"hc-" "$E2E/dbl/$b.log"'
	elif [ $b == firecracker ]; then
		expect "$b-net-request" 'grep -q "PUT /network-interfaces/eth0 204 .*\"host_dev_name\":\"hc-" "$E2E/dbl/$b.log"'
	else
		expect "$b-net-request" 'grep -q "^EVENT add-net net0 on hc-" "$E2E/dbl/$b.log" && grep -q "vm.add-net 204 {\"id\":\"net0\"" "$E2E/dbl/$b.log"'
	fi
	net_clean "$b"
done

# SIGKILL of hotcell: its TAP and rules stay until the next start reclaims them.
ip netns exec "$H" "$HC" run $MEM --network inet bb sleep 600 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 300); do
	ip -n "$H" -o link show | grep -q ' hc-' && break
	sleep 0.1
done
sleep 1
kill -9 "$pid"
wait "$pid" 2>/dev/null
for _ in $(seq 1 50); do
	[ -z "$(ip netns pids "$H")" ] && break
	sleep 0.1
done
left=$(ip -n "$H" -o link show | grep -c ' hc-')
expect sigkill-left-a-tap '[ "$left" -eq 1 ]'
rc=0
hrun --network inet bb true >"$E2E/out" 2>"$E2E/err" || rc=$?
expect sigkill-next-run '[ "$rc" -eq 0 ]'
net_clean sigkill-reclaimed
