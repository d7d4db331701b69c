#!/usr/bin/env bash
# Group 5 of the security suite (docs/security.md): isolation seen from inside real guests.
# Two `--network none` VMs (A: dir rootfs + serial, B: block rootfs + vsock) and, in network
# namespaces this test makes (tests/lib/net-e2e.sh), two `--network inet` VMs (C, D), each made
# once and probed with several `vm exec`s. The guests dump what they see (KEY=VALUE lines); the
# host checks it against facts it gathered itself: no host process (this shell, the VM's
# supervisor and QEMU, a marker process with a unique argv), mount, file, hostname, kernel
# command line or boot id in a guest; `none` has only `lo`, no route, no DNS and no vsock peer
# but the agent's; C and D cannot ping, TCP, UDP or resolve through each other, nor see each
# other's MAC, while each reaches what its filter allows; A and B share no file, boot id or
# process. Every "cannot" has a control in the same run that succeeds, so it can fail.
# GUEST_ISOLATION_BREAK=vm-to-vm flushes C's and D's forward chains before the reach cases
# (the hand check that they fail without their wall, docs/security.md).
# shellcheck disable=SC2016,SC2034 # the checks are strings that expect (tests/lib/e2e.sh) evaluates
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
source "$(dirname "$0")/../lib/net-e2e.sh"
T=guest-isolation
if [ "$(id -u)" -ne 0 ]; then
	skip $T "the network half needs root (namespaces, TAPs), the vsock case the jail's helpers"
	exit 0
fi
NET=1
for t in ip nft dnsmasq cc; do command -v $t >/dev/null 2>&1 || NET=0; done
[ -c /dev/net/tun ] || NET=0
if [ $NET == 1 ]; then
	net_e2e_init $T hi
else
	e2e_init
	skip $T-net "ip, nft, dnsmasq, cc or /dev/net/tun is missing: the inet pair does not run"
fi
source "$HOTCELL_TOP/tests/lib/vm.sh"
if ! cc -static -O2 -o "$E2E/net-probe" "$HOTCELL_TOP/tests/security/guest/net-probe.c" 2>"$E2E/cc.err" ||
	! cc -static -O2 -o "$E2E/udp-echo" "$HOTCELL_TOP/tests/e2e/udp-echo.c" 2>>"$E2E/cc.err"; then
	fail $T-probes "building the guest probes failed: $(tail -n 3 "$E2E/cc.err")"
	exit 1
fi
e2e_image bbiso --file "$E2E/net-probe:/bin/net-probe" --file "$E2E/udp-echo:/bin/udp-echo" || exit 1
rc=0
# g KEY FILE: the first value of KEY in a guest's dump; ga KEY FILE: every value.
g() { sed -n "s/^$1=//p" "$2" | head -n 1; }
ga() { sed -n "s/^$1=//p" "$2"; }

# ---- host facts
MARK="hciso-marker-$$-$RANDOM"
SECRET="HCISO-SECRET-$$-$RANDOM"
(exec -a "$MARK" sleep 600) &
marker=$!
echo "$SECRET" >"/tmp/$MARK"
echo "$SECRET" >"$HOTCELL_HOME/$MARK"
export HCISO_HOST_ENV=$SECRET # in vm exec's own environment: must not reach the guest
# A listener on the host's 127.0.0.1 (loopback only), which answers "host".
LPORT=$((20000 + $$ % 10000))
/usr/bin/python3 -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); s.settimeout(300)
while True:
    c, _ = s.accept(); c.sendall(b"host\n"); c.close()' "$LPORT" 2>/dev/null &
lsn=$!
for _ in $(seq 1 50); do ss -ltn | grep -q "127.0.0.1:$LPORT " && break; sleep 0.1; done
host_lo_ok=$(timeout 3 bash -c 'cat </dev/tcp/127.0.0.1/$0' "$LPORT" 2>/dev/null)
HOST_ADDRS=$(ip -o -4 addr show | awk '{sub("/.*", "", $4); print $4}' | sort -u | tr '\n' ' ')
HOST_HOSTNAME=$(hostname)
HOST_BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)
HOST_CMDLINE=$(cat /proc/cmdline)
HOST_ROOT=$(awk '$2 == "/" {print $1, $2, $3}' /proc/self/mounts | tail -n 1)
expect host-facts '[ "$host_lo_ok" == host ] && [ -n "$HOST_ADDRS" ] && [ -n "$HOST_ROOT" ] && kill -0 "$marker"'

# The checks that loop (expect evaluates in this shell: no exit in them).
host_pids_absent() { # DUMP: no host PID shows in the guest with the host process's name
	local p c
	while read -r p c; do
		ga proc "$1" | grep -q "^$p $c " && return 1
	done <<<"$HOST_PIDS"
	return 0
}
PSEUDO='(proc /proc proc|sysfs /sys sysfs|devtmpfs /dev devtmpfs|devpts /dev/pts devpts|shm /dev/shm tmpfs|tmpfs /dev/shm tmpfs)'
shared_mounts() { # DUMP: the guest's mounts (source target type) that the host has too
	ga mount "$1" | cut -d" " -f1-3 | sort -u | grep -xFf <(cut -d" " -f1-3 /proc/self/mounts)
}
no_host_cmdline_word() { # CMDLINE: none of the host's key=value words but the generic ones
	local w
	for w in $HOST_CMDLINE; do
		case $w in *=*) ;; *) continue ;; esac
		case $w in console=* | panic=* | reboot=*) continue ;; esac
		[[ " $1 " == *" $w "* ]] && return 1
	done
	return 0
}
host_addrs_unreachable() { # DUMP: each host address (but loopback, the guest's own) unreachable
	local a
	for a in $HOST_ADDRS; do
		[ "$a" == 127.0.0.1 ] && continue
		[[ "$(g "conn-$a-$LPORT" "$1")" == *unreachable* ]] && [[ "$(g "conn-$a-22" "$1")" == *unreachable* ]] || return 1
	done
	return 0
}
only_gateway_neigh() { # NEIGH GWMAC PEERMAC: the gateway is there, the peer's MAC is not, nothing else is
	local n
	[[ " $1 " == *"@$2 "* ]] && [[ "$1" != *"$3"* ]] || return 1
	for n in $1; do
		[ "${n#*@}" == "$2" ] || [ "${n#*@}" == 00:00:00:00:00:00 ] || return 1
	done
	return 0
}

# ---- the `--network none` pair
VM_A=$("$HC" vm create --memory 128 --name isoa --hostname isoa-vm bbiso 2>"$E2E/err")
rc=$?
expect none-a-created '[ "$rc" -eq 0 ] && [ -n "$VM_A" ]'
VSOCK=1
[ -x "${HOTCELL_VHOST_DEVICE_VSOCK:-/var/cache/hotcell-tools/usr/bin/vhost-device-vsock}" ] ||
	command -v vhost-device-vsock >/dev/null || VSOCK=0
if [ $VSOCK == 1 ]; then
	VM_B=$("$HC" vm create --memory 128 --name isob --rootfs-mode block --channel vsock bbiso 2>"$E2E/err")
else
	skip none-vsock "vhost-device-vsock is not installed: B boots with a block rootfs over serial"
	VM_B=$("$HC" vm create --memory 128 --name isob --rootfs-mode block bbiso 2>"$E2E/err")
fi
rc=$?
expect none-b-created '[ "$rc" -eq 0 ] && [ -n "$VM_B" ]'

# The host's processes of each VM: its supervisor and every descendant (QEMU, virtiofsd, ...).
descendants() {
	local p=$1 c
	echo "$p"
	for c in $(pgrep -P "$p"); do descendants "$c"; done
}
host_pids() { # PID COMM lines: this shell, the marker, both VMs' host processes
	local p
	for p in $$ "$marker" $(descendants "$(vm_pid "$VM_A")") $(descendants "$(vm_pid "$VM_B")"); do
		[ -r "/proc/$p/comm" ] && echo "$p $(cat "/proc/$p/comm")"
	done
}
HOST_PIDS=$(host_pids)
qemus=$(grep -c ' qemu' <<<"$HOST_PIDS")

# Each guest leaves a marker process of its own (the control of the process cases), and a file.
"$HC" vm exec isoa mkdir -p /var/log
"$HC" vm exec isob mkdir -p /var/log
"$HC" vm exec -d isoa sh -c 'sleep 600; true' hciso-guest-a >/dev/null
"$HC" vm exec -d isob sh -c 'sleep 600; true' hciso-guest-b >/dev/null
"$HC" vm exec isoa sh -c 'echo a-was-here >/tmp/hciso-a-file'
# The dump: what a guest sees of processes, mounts, names, files, network, DNS.
# shellcheck disable=SC2016 # expanded in the guest
DUMP='
echo "hostname=$(hostname)"; echo "proc-hostname=$(cat /proc/sys/kernel/hostname)"; echo "uname-n=$(uname -n)"
echo "boot-id=$(cat /proc/sys/kernel/random/boot_id)"; echo "cmdline=$(cat /proc/cmdline)"
for p in /proc/[0-9]*; do echo "proc=${p#/proc/} $(cat "$p/comm" 2>/dev/null) $(tr "\0\n" "  " <"$p/cmdline" 2>/dev/null)"; done
ps -o pid,comm,args | sed "1d; s/^ */ps=/"
sed "s/^/mount=/" /proc/mounts
echo "partitions=$(awk "NR > 2 {print \$4 \":\" \$3}" /proc/partitions | tr "\n" " ")"
echo "env=$(env | tr "\n" " ") $(tr "\0" " " </proc/1/environ)"
echo "tmp-marker=$(cat "/tmp/$MARK" 2>&1)"; echo "home-marker=$(cat "$HOMEMARK" 2>&1)"
echo "own-file=$(cat /tmp/hciso-a-file 2>/dev/null)"
echo "HCISO-SECRET-guest" >"/tmp/$MARK-guest"
echo "found=$(find / -path /proc -prune -o -path /sys -prune -o -name "$MARK*" -print 2>/dev/null | tr "\n" " ")"
echo "grep-secret=$(timeout 20 find / -path /proc -prune -o -path /sys -prune -o -path /dev -prune -o -type f -exec grep -l HCISO-SECRET {} + 2>/dev/null | tr "\n" " ")"
echo "net=$(ls /sys/class/net | tr "\n" " ")"; echo "links=$(ip -o link | wc -l)"
echo "route=$(ip route | tr "\n" ";")"
echo guest-lo | nc -l -p 7001 >/dev/null 2>&1 &
for _ in 1 2 3 4 5 6 7 8 9 10; do netstat -ltn | grep -q ":7001 " && break; usleep 100000; done
echo "conn-own-lo=$(nc -w 2 127.0.0.1 7001 </dev/null 2>&1)"
c() { echo "conn-$1-$2=$(nc -w 2 "$1" "$2" </dev/null 2>&1 | tr "\n" " ")"; }
c 127.0.0.1 "$LPORT"; c 10.0.2.2 80; c 10.0.2.3 53
for a in $HOST_ADDRS; do c "$a" "$LPORT"; c "$a" 22; done
echo "ping-lo=$(ping -c 1 -W 2 127.0.0.1 >/dev/null 2>&1; echo $?)"
echo "ping-gw=$(ping -c 1 -W 2 10.0.2.2 2>&1 | tail -n 1)"
echo "resolv=$(cat /etc/resolv.conf 2>/dev/null)"
echo "dns=$(timeout 8 nslookup example.com 2>&1 | grep -c "^Address.*[0-9]\.[0-9]*$")"
echo "dns-direct=$(timeout 8 nslookup example.com 8.8.8.8 2>&1 | grep -c "^Address.*[0-9]\.[0-9]*$")"
echo done=1
'
dump() {
	"$HC" vm exec -e "MARK=$MARK" -e "HOMEMARK=$HOTCELL_HOME/$MARK" -e "LPORT=$LPORT" \
		-e "HOST_ADDRS=$HOST_ADDRS" -e HCISO_PASSED=yes "$1" sh -c "$DUMP" >"$E2E/$1.dump" 2>"$E2E/err"
}
dump isoa
rc=$?
dump isob
rcb=$?
expect none-dumps '[ "$rc" -eq 0 ] && [ "$rcb" -eq 0 ] && [ "$(g done "$E2E/isoa.dump")" == 1 ] && [ "$(g done "$E2E/isob.dump")" == 1 ]'

for v in isoa isob; do
	d=$E2E/$v.dump
	o=isob
	[ $v == isob ] && o=isoa
	# processes: the guest's own marker is listed (the control), nothing of the host is.
	expect "$v-own-marker-listed" 'ga proc "$d" | grep -q "sleep 600; true hciso-guest-${v#iso}" && ga ps "$d" | grep -q "hciso-guest-${v#iso}"'
	expect "$v-host-marker-invisible" '! grep -q -- "$MARK" <(ga proc "$d"; ga ps "$d") && [ "$(grep -c "^proc=" "$d")" -ge 3 ]'
	expect "$v-host-vmm-invisible" '[ "$qemus" -ge 2 ] && ! ga proc "$d" | grep -qiE "qemu|virtiofsd|vhost-device|hotcell-vmd|hotcell |/tmp/hce2e"'
	expect "$v-host-pids-invisible" 'host_pids_absent "$d"'
	expect "$v-pid-1-is-hotcell-init" '[ "$(ga proc "$d" | sed -n "s/^1 //p" | cut -d" " -f1)" == init ]'
	expect "$v-other-guest-invisible" '! grep -q "hciso-guest-${o#iso}" <(ga proc "$d"; ga ps "$d")'
	# mounts: none of the host's, none of hotcell's paths, not the host's root
	expect "$v-no-hotcell-path-mounted" '! ga mount "$d" | grep -qE "$E2E|$HOTCELL_HOME|/run/hotcell|/var/lib/hotcell"'
	expect "$v-host-root-not-mounted" '! ga mount "$d" | cut -d" " -f1-3 | grep -qxF "$HOST_ROOT"'
	expect "$v-no-host-mount" 'shared=$(shared_mounts "$d"); grep -qx "proc /proc proc" <<<"$shared" && [ -z "$(grep -vxE "$PSEUDO" <<<"$shared")" ]'
	# files: the host's markers are nowhere; the guest's own file is found by the same search
	expect "$v-host-tmp-file-unreachable" '[[ "$(g tmp-marker "$d")" == *"No such file"* ]]'
	expect "$v-host-state-file-unreachable" '[[ "$(g home-marker "$d")" == *"No such file"* ]]'
	expect "$v-host-file-nowhere" '[ "$(g found "$d")" == "/tmp/$MARK-guest " ] && [ "$(g grep-secret "$d")" == "/tmp/$MARK-guest " ]'
	expect "$v-host-env-not-passed" '[[ "$(g env "$d")" == *HCISO_PASSED=yes* ]] && [[ "$(g env "$d")" != *HCISO_HOST_ENV* ]] && [[ "$(g env "$d")" != *"$SECRET"* ]]'
	# names: the VM's hostname everywhere, not the host's; its own kernel command line and boot id
	want=hotcell
	[ $v == isoa ] && want=isoa-vm
	expect "$v-hostname-is-the-vms" '[ "$(g hostname "$d")" == $want ] && [ "$(g proc-hostname "$d")" == $want ] && [ "$(g uname-n "$d")" == $want ] && [ "$want" != "$HOST_HOSTNAME" ]'
	expect "$v-cmdline-not-the-hosts" '[[ "$(g cmdline "$d")" == *hotcell.root=* ]] && [ "$(g cmdline "$d")" != "$HOST_CMDLINE" ] && no_host_cmdline_word "$(g cmdline "$d")"'
	expect "$v-boot-id-not-the-hosts" '[ -n "$(g boot-id "$d")" ] && [ "$(g boot-id "$d")" != "$HOST_BOOT_ID" ]'
	# network none: lo only, no route; the guest's own listener answers (the control), nothing else
	expect "$v-only-lo" '[ "$(g net "$d")" == "lo " ] && [ "$(g links "$d")" == 1 ]'
	expect "$v-no-route" '[ -z "$(g route "$d")" ]'
	expect "$v-own-loopback-works" '[ "$(g conn-own-lo "$d")" == guest-lo ] && [ "$(g ping-lo "$d")" == 0 ]'
	expect "$v-host-loopback-listener-unreachable" '[ "$(g "conn-127.0.0.1-$LPORT" "$d")" != host ] && [[ "$(g "conn-127.0.0.1-$LPORT" "$d")" == *refused* ]]'
	expect "$v-slirp-gateway-unreachable" '[[ "$(g conn-10.0.2.2-80 "$d")" == *unreachable* ]] && [[ "$(g conn-10.0.2.3-53 "$d")" == *unreachable* ]] && [[ "$(g ping-gw "$d")" == *unreachable* ]]'
	expect "$v-host-addresses-unreachable" 'host_addrs_unreachable "$d"'
	expect "$v-no-dns" '[ -z "$(g resolv "$d")" ] && [ "$(g dns "$d")" == 0 ] && [ "$(g dns-direct "$d")" == 0 ]'
done
# A and B share nothing
expect none-boot-ids-differ '[ "$(g boot-id "$E2E/isoa.dump")" != "$(g boot-id "$E2E/isob.dump")" ]'
expect none-file-stays-in-a '[ "$(g own-file "$E2E/isoa.dump")" == a-was-here ] && [ -z "$(g own-file "$E2E/isob.dump")" ]'
expect none-guest-files-separate '[ "$(g found "$E2E/isob.dump")" == "/tmp/$MARK-guest " ] && [ -z "$("$HC" vm exec isob sh -c "ls /tmp/hciso-a-file 2>/dev/null")" ]'
expect none-block-disk-is-the-images '[ -z "$(g partitions "$E2E/isoa.dump")" ] && [[ "$(g partitions "$E2E/isob.dump")" == vda:* ]] && [ "$(g partitions "$E2E/isob.dump")" != "$(awk "\$4 == \"vda\" {print \$4 \":\" \$3}" /proc/partitions) " ]'

# vsock (B): the agent's connection is the only peer. The control: a listener the host puts
# beside the VM's hybrid-vsock socket is reached through the same device, then removed.
if [ $VSOCK == 1 ]; then
	hv=$(find "$HOTCELL_RUNTIME_DIR" -name hv.sock -type s 2>/dev/null | head -n 1)
	if [ -n "$hv" ]; then
		/usr/bin/python3 -c 'import os,socket,sys
s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777); s.listen(1); s.settimeout(60)
c, _ = s.accept(); c.close()' "${hv}_5555" &
		vl=$!
		for _ in $(seq 1 50); do [ -S "${hv}_5555" ] && break; sleep 0.1; done
		"$HC" vm exec isob sh -c 'echo "ctl=$(net-probe vsock 2 5555)"
for p in 1 22 1023 1026 2024 5001 5002 $((0xffffffff)); do echo "host-$p=$(net-probe vsock 2 $p)"; done
for c in 0 1 3 4 5 $((0xffffffff)); do echo "cid-$c=$(net-probe vsock $c 1024)"; done' >"$E2E/vsock" 2>"$E2E/err"
		kill "$vl" 2>/dev/null
		wait "$vl" 2>/dev/null
		rm -f "${hv}_5555"
		expect none-vsock-control-reached '[ "$(g ctl "$E2E/vsock")" == connected ]'
		expect none-vsock-other-host-ports-refused '[ "$(grep -c "^host-" "$E2E/vsock")" -eq 8 ] && ! grep "^host-" "$E2E/vsock" | grep -q "=connected"'
		expect none-vsock-other-cids-refused '[ "$(grep -c "^cid-" "$E2E/vsock")" -eq 6 ] && ! grep "^cid-" "$E2E/vsock" | grep -q "=connected"'
	else
		fail none-vsock-control-reached "no hv.sock under $HOTCELL_RUNTIME_DIR"
	fi
	# A (serial) has no vsock transport at all.
	"$HC" vm exec isoa sh -c 'echo "a=$(net-probe vsock 2 1024)"' >"$E2E/vsock-a" 2>"$E2E/err"
	expect none-serial-vm-no-vsock '[ -n "$(g a "$E2E/vsock-a")" ] && [ "$(g a "$E2E/vsock-a")" != connected ]'
fi
"$HC" vm rm -f isoa isob >/dev/null 2>&1
vm_clean none-vms-removed

# ---- the `--network inet` pair, in the test's namespaces: H (hotcell) routed to I ("internet")
if [ $NET == 1 ]; then
	ip -n "$I" addr add 203.0.113.10/32 dev lo
	ip -n "$I" addr add 203.0.113.53/32 dev lo
	mkdir -p "$E2E/www"
	echo "public" >"$E2E/www/index.html"
	ip netns exec "$I" busybox httpd -f -p 203.0.113.10:80 -h "$E2E/www" &
	helpers="$!"
	ip netns exec "$I" "$E2E/udp-echo" 5353 &
	helpers="$helpers $!"
	ip netns exec "$I" dnsmasq --conf-file=/dev/null --no-hosts --no-resolv --bind-interfaces \
		--listen-address=203.0.113.53 --pid-file --address=/allowed.test/203.0.113.10
	mkdir -p "/etc/netns/$H"
	echo "nameserver 203.0.113.53" >"/etc/netns/$H/resolv.conf"
	# A listener on the host's own address in H: I reaches it (the control), a guest must not.
	mkdir -p "$E2E/hostwww"
	echo "hostpage" >"$E2E/hostwww/index.html"
	ip netns exec "$H" busybox httpd -f -p "$LPORT" -h "$E2E/hostwww" &
	helpers="$helpers $!"
	hvm() { ip netns exec "$H" "$HC" vm "$@"; }
	hvm create --memory 128 --network inet --name isoc bbiso >/dev/null 2>"$E2E/err" &&
		hvm create --memory 128 --network inet --name isod bbiso >/dev/null 2>>"$E2E/err"
	rc=$?
	expect inet-created '[ "$rc" -eq 0 ]'
	for v in isoc isod; do
		"$HC" vm exec "$v" sh -c 'echo "addr=$(ip -o -4 addr show eth0 | awk "{print \$4}" | cut -d/ -f1)"
echo "mac=$(cat /sys/class/net/eth0/address)"; echo "gw=$(ip route | awk "/default/ {print \$3}")"
mkdir -p /tmp/w /var/log; echo "page-$(hostname)" >/tmp/w/index.html' >"$E2E/$v.id" 2>"$E2E/err"
		"$HC" vm exec -d "$v" httpd -f -p 8080 -h /tmp/w >/dev/null 2>>"$E2E/err"
		"$HC" vm exec -d "$v" udp-echo 5353 >/dev/null 2>>"$E2E/err"
	done
	C_IP=$(g addr "$E2E/isoc.id") D_IP=$(g addr "$E2E/isod.id")
	C_GW=$(g gw "$E2E/isoc.id") D_GW=$(g gw "$E2E/isod.id")
	C_MAC=$(g mac "$E2E/isoc.id") D_MAC=$(g mac "$E2E/isod.id")
	gwmac() { ip netns exec "$H" sh -c "cat /sys/class/net/\$(ip -o -4 addr show | awk -v a=$1 '\$4 ~ \"^\"a\"/\" {print \$2}')/address"; }
	C_GWMAC=$(gwmac "$C_GW") D_GWMAC=$(gwmac "$D_GW")
	expect inet-own-addresses '[ -n "$C_IP" ] && [ -n "$D_IP" ] && [ "$C_IP" != "$D_IP" ] && [ "$C_MAC" != "$D_MAC" ] && [ -n "$C_GWMAC" ] && [ -n "$D_GWMAC" ]'
	# The controls from the host side: each guest's TCP and UDP listeners answer from H, the
	# host's listener answers from I.
	hget() { # NS IP PORT: the page, a few tries (the guest's httpd may still be starting)
		local i p
		for i in 1 2 3 4 5; do
			p=$(ip netns exec "$1" curl -s -m 3 "http://$2:$3/" 2>/dev/null) && [ -n "$p" ] && break
			sleep 0.5
		done
		echo "$p"
	}
	for v in isoc isod; do
		[ "$("$HC" vm inspect "$v" 2>/dev/null | jq -r .status)" == running ] || "$HC" vm inspect "$v" 2>&1 | jq -r '.status, .error, .console_tail' 2>&1 | tail -n 20 >&2
	done
	expect inet-guest-tcp-listeners-up '[ "$(hget "$H" "$C_IP" 8080)" == page-hotcell ] && [ "$(hget "$H" "$D_IP" 8080)" == page-hotcell ]'
	expect inet-guest-udp-listeners-up '[ "$(ip netns exec "$H" "$E2E/net-probe" udp "$C_IP" 5353 h)" == guest:h ] && [ "$(ip netns exec "$H" "$E2E/net-probe" udp "$D_IP" 5353 h)" == guest:h ]'
	expect inet-host-listener-up '[ "$(hget "$I" 198.51.100.1 "$LPORT")" == hostpage ]'
	if [ "${GUEST_ISOLATION_BREAK:-}" == vm-to-vm ]; then
		for ch in $(ip netns exec "$H" nft list table inet hotcell | sed -n 's/^\tchain \(fwd_[0-9a-f]*\) .*/\1/p'); do
			ip netns exec "$H" nft flush chain inet hotcell "$ch"
		done
		echo "GUEST_ISOLATION_BREAK: flushed the forward chains; the reach cases must FAIL" >&2
	fi
	# shellcheck disable=SC2016 # expanded in the guest
	REACH='get() { r=$(printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 "$1" "$2" 2>/dev/null | tail -n 1); echo "${r:-blocked}"; }
echo "tcp-public=$(get 203.0.113.10 80)"; echo "tcp-peer=$(get "$PEER" 8080)"; echo "tcp-peer-gw=$(get "$PEER_GW" 8080)"
echo "tcp-host=$(get 198.51.100.1 "$LPORT")"; echo "tcp-own-gw=$(get "$OWN_GW" "$LPORT")"
echo "udp-public=$(net-probe udp 198.51.100.2 5353 x)"; echo "udp-peer=$(net-probe udp "$PEER" 5353 x)"
echo "ping-public=$(ping -c 1 -W 3 203.0.113.10 >/dev/null 2>&1; echo $?)"
echo "ping-peer=$(ping -c 2 -W 2 "$PEER" >/dev/null 2>&1; echo $?)"
echo "ping-peer-gw=$(ping -c 1 -W 2 "$PEER_GW" >/dev/null 2>&1; echo $?)"
echo "dns-own=$(timeout 8 nslookup allowed.test 2>&1 | grep -c "203\.0\.113\.10")"
echo "dns-peer-gw=$(timeout 8 nslookup allowed.test "$PEER_GW" 2>&1 | grep -c "203\.0\.113\.10")"
echo "arp-gw=$(arping -c 1 -w 2 -I eth0 "$OWN_GW" >/dev/null 2>&1; echo $?)"
echo "arp-peer=$(arping -c 1 -w 2 -I eth0 "$PEER" >/dev/null 2>&1; echo $?)"
echo "neigh=$(awk "NR > 1 {print \$1 \"@\" \$4}" /proc/net/arp | tr "\n" " ")"
echo done=1'
	reach() {
		"$HC" vm exec -e "PEER=$2" -e "PEER_GW=$3" -e "OWN_GW=$4" -e "LPORT=$LPORT" "$1" sh -c "$REACH" >"$E2E/$1.reach" 2>"$E2E/err"
	}
	reach isoc "$D_IP" "$D_GW" "$C_GW" &
	rch=$!
	reach isod "$C_IP" "$C_GW" "$D_GW"
	wait "$rch"
	for v in isoc isod; do
		d=$E2E/$v.reach
		if [ $v == isoc ]; then pmac=$D_MAC gwm=$C_GWMAC; else pmac=$C_MAC gwm=$D_GWMAC; fi
		expect "$v-ran" '[ "$(g done "$d")" == 1 ]' ||
			"$HC" vm inspect "$v" 2>&1 | jq -r '.status, .error, .console_tail' 2>&1 | tail -n 20 >&2
		expect "$v-reaches-public-tcp" '[ "$(g tcp-public "$d")" == public ]'
		expect "$v-reaches-public-udp" '[ "$(g udp-public "$d")" == guest:x ]'
		expect "$v-reaches-public-ping" '[ "$(g ping-public "$d")" == 0 ]'
		expect "$v-resolves-through-own-gateway" '[ "$(g dns-own "$d")" -ge 1 ]'
		expect "$v-peer-tcp-refused" '[ "$(g tcp-peer "$d")" == blocked ]'
		expect "$v-peer-udp-refused" '[ "$(g udp-peer "$d")" == none ]'
		expect "$v-peer-ping-refused" '[ "$(g ping-peer "$d")" != 0 ]'
		expect "$v-peer-gateway-refused" '[ "$(g tcp-peer-gw "$d")" == blocked ] && [ "$(g ping-peer-gw "$d")" != 0 ]'
		expect "$v-peer-resolver-refused" '[ "$(g dns-peer-gw "$d")" == 0 ]'
		expect "$v-host-address-refused" '[ "$(g tcp-host "$d")" == blocked ] && [ "$(g tcp-own-gw "$d")" == blocked ]'
		expect "$v-gateway-arp-answers" '[ "$(g arp-gw "$d")" == 0 ]'
		expect "$v-peer-arp-unanswered" '[ "$(g arp-peer "$d")" != 0 ]'
		expect "$v-neighbours-only-gateway" 'only_gateway_neigh "$(g neigh "$d")" "$gwm" "$pmac"'
	done
	hvm rm -f isoc isod >/dev/null 2>&1
	vm_clean inet-vms-removed
	# shellcheck disable=SC2086
	kill $helpers 2>/dev/null
	# shellcheck disable=SC2086
	wait $helpers 2>/dev/null
	net_clean inet
fi

# ---- nothing left: the markers, the listener, VMs, runtime and state dirs
kill "$marker" "$lsn" 2>/dev/null
wait "$marker" "$lsn" 2>/dev/null
rm -f "/tmp/$MARK" "$HOTCELL_HOME/$MARK"
expect host-helpers-gone '! pgrep -f -- "$MARK" >/dev/null && ! ss -ltn | grep -q "127.0.0.1:$LPORT "'
e2e_clean $T
finish
