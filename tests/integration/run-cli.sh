#!/usr/bin/env bash
# `hotcell run` and `hotcell doctor` without booting anything: every DESIGN.md §6 flag is
# known, bad values are hotcell's own errors (125) with a message, the --json error object,
# options stop at IMAGE, and doctor's report.
source "$(dirname "$0")/../lib.sh"
if [ ! -x "$HC" ] || ! command -v jq >/dev/null; then
	skip run-cli "$HC or jq missing"
	exit 0
fi
hc_tmp_home
export HOTCELL_RUNTIME_DIR=$HOTCELL_HOME/run

help=$("$HC" run --help)
missing=""
for f in --backend --cpus --memory --timeout --boot-timeout --entrypoint --env --workdir --user \
	--volume --network --publish --interactive --json --output-limit --kernel --accel --rootfs \
	--rootfs-mode --rootfs-rw --hostname --channel --pull --jailer --device --env-file --name \
	--detach --read-only --tmpfs --mount --dns --platform --quiet --stop-timeout --add-host; do
	grep -q -- "$f" <<<"$help" || missing="$missing $f"
done
expect_eq run-help-lists-every-flag "$missing" ""

bad() { # bad NAME WANT-IN-STDERR ARGS...
	local name=$1 want=$2 out rc
	shift 2
	out=$("$HC" run "$@" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" -eq 125 ] && grep -q -- "$want" <<<"$out"; then pass "$name"; else fail "$name" "rc=$rc: $out"; fi
}
bad run-no-image "no IMAGE" --json
bad run-bad-cpus "--cpus" --cpus zero img true
bad run-bad-memory "--memory" --memory 1 img true
bad run-bad-timeout "--timeout" --timeout -3 img true
bad run-bad-accel "--accel" --accel fast img true
bad run-bad-mode "--rootfs-mode" --rootfs-mode tar img true
bad run-bad-channel "--channel" --channel pipe img true
bad run-bad-pull "--pull" --pull sometimes img true
bad run-bad-network "--network" --network wifi img true
bad run-bad-volume "HOST:GUEST" -v nocolon img true
bad run-bad-volume-host "host path" -v /does/not/exist:/data img true
bad run-bad-publish "HOSTPORT:GUESTPORT" -p 80 img true
bad run-bad-limit "--output-limit" --output-limit lots img true
bad run-relative-workdir "absolute" -w relative img true
bad run-bad-hostname "--hostname" --hostname "a b" img true
bad run-unknown-option "unrecognized" --no-such-flag img true
bad run-bad-tmpfs-option "unknown tmpfs option 'bogus'" --tmpfs /x:bogus img true
bad run-tmpfs-reserved "under /dev, /proc" --tmpfs /proc/x --pull never img true
bad run-bad-mount-type "type=volume is not supported" --mount type=volume,target=/v img true
bad run-bad-dns "--dns: invalid address" --dns nine img true
bad run-platform-foreign "host's architecture" --platform linux/s390x img true
bad run-bad-stop-timeout "--stop-timeout" --stop-timeout -1 img true
bad run-detach-with-tty "-d takes none of" -d -t --pull never img true
bad run-env-file-missing "--env-file /does/not/exist: " --env-file /does/not/exist img true
bad run-bad-short-hostname "--hostname" -h "a b" img true

# A podman flag hotcell lacks: one line, naming it (no usage text after it).
out=$("$HC" run --privileged=true img true 2>&1 >/dev/null)
rc=$?
if [ "$rc" -eq 125 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q -- "'--privileged=true'" <<<"$out"; then
	pass run-unknown-podman-flag-one-line
else
	fail run-unknown-podman-flag-one-line "rc=$rc: $out"
fi
# -h is podman's --hostname: it takes a value; --help stays the help.
expect_eq run-dash-h-is-hostname "$("$HC" run -h 2>&1 | grep -c needs)" 1
# Issue 15, bug 1: `run -h myhost IMG echo hi` printed the help and exited 0; -h takes the
# hostname and the run goes on (to the missing image here).
out=$("$HC" run -h myhost --pull never no-such-image echo hi 2>&1)
rc=$?
if [ "$rc" -eq 125 ] && grep -q no-such-image <<<"$out" && ! grep -q usage <<<"$out"; then
	pass bug-1-dash-h-value-is-hostname
else
	fail bug-1-dash-h-value-is-hostname "rc=$rc: $out"
fi
# Issue 15, bug 3: a volume on / (or a path hotcell-init owns) is refused, not silently
# hidden.
for g in / /proc /sys/x /dev /hotcell; do
	bad "bug-3-volume-on-${g//\//_}-refused" "the guest path" -v /tmp:"$g" --pull never img true
done
# Issue 15, bug 4: --help said --device works on qemu; only cloud-hypervisor does VFIO.
if grep -- "--device" <<<"$help" | grep -q "cloud-hypervisor only" &&
	! grep -- "--device" <<<"$help" | grep -qi qemu; then
	pass bug-4-device-help-true
else
	fail bug-4-device-help-true "$(grep -- --device <<<"$help")"
fi
# Issue 15, bug 7: podman's volume options are accepted (the run goes on to the image), a bad
# one is named.
out=$("$HC" run -v /tmp:/mnt:rw,z --pull never no-such-image true 2>&1)
if grep -q no-such-image <<<"$out" && ! grep -q GUESTDIR <<<"$out"; then
	pass bug-7-volume-options-accepted
else
	fail bug-7-volume-options-accepted "$out"
fi
bad run-volume-single-file-refused "is not a directory" -v /etc/hostname:/etc/hostname img true
bad bug-7-bad-volume-option-named "unknown volume option 'nocopy'" -v /tmp:/mnt:rw,nocopy img true
# run -d is vm create + vm exec --detach: a missing image fails it like vm create, leaving no VM.
out=$("$HC" run -d --name parity1 --pull never no-such-image true 2>&1)
rc=$?
if [ "$rc" -eq 125 ] && grep -q no-such-image <<<"$out" && [ -z "$("$HC" vm ls --json | jq -r '.[].id')" ]; then
	pass run-detach-missing-image-leaves-no-vm
else
	fail run-detach-missing-image-leaves-no-vm "rc=$rc: $out"
fi
# vm exec: -h is its help (podman exec has no --hostname), its options the run table's.
out=$("$HC" vm exec -h)
if grep -q "usage: hotcell vm exec" <<<"$out" && grep -q -- "--env-file" <<<"$out" &&
	grep -q -- "-t, --tty" <<<"$out" && ! grep -q -- "--hostname" <<<"$out"; then
	pass vm-exec-help-from-table
else
	fail vm-exec-help-from-table "$out"
fi
out=$("$HC" vm exec --cpus 2 vm1 true 2>&1)
rc=$?
if [ "$rc" -eq 125 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q "'--cpus'" <<<"$out"; then
	pass vm-exec-unknown-option-one-line
else
	fail vm-exec-unknown-option-one-line "rc=$rc: $out"
fi

# The --json error object for hotcell's own failure, on stdout, with kind and message.
out=$("$HC" run --json --pull never no-such-image true 2>/dev/null)
rc=$?
if [ "$rc" -eq 125 ] && [ "$(jq -r .error.kind <<<"$out")" == image ] &&
	jq -r .error.message <<<"$out" | grep -q no-such-image && [ "$(jq -r 'keys | length' <<<"$out")" == 1 ]; then
	pass run-json-error-object
else
	fail run-json-error-object "rc=$rc: $out"
fi

# Options end at IMAGE: what follows is the command, even when it looks like an option (the
# image is missing, so the run stops there, but the parse must have accepted it).
out=$("$HC" run --pull never no-such-image --cpus zero -w x 2>&1)
if grep -q "no-such-image" <<<"$out" && ! grep -q -- "--cpus" <<<"$out"; then
	pass run-options-stop-at-image
else
	fail run-options-stop-at-image "$out"
fi

# doctor: each backend of the auto order, then the order and the choice.
out=$("$HC" doctor 2>&1)
ok=1
for b in libkrun cloud-hypervisor firecracker qemu; do grep -q "^$b\$" <<<"$out" || ok=0; done
grep -q "tries, in order: libkrun, cloud-hypervisor, firecracker, qemu" <<<"$out" || ok=0
grep -q "and picks:" <<<"$out" || ok=0
if [ $ok -eq 1 ]; then pass doctor-report; else fail doctor-report "$out"; fi
if grep -A4 '^qemu$' <<<"$out" | grep -q 'found:       yes'; then
	grep -A6 '^qemu$' <<<"$out" | grep -qE 'kernel:' && pass doctor-qemu-details || fail doctor-qemu-details "$out"
	# Networking: everything with root, /dev/net/tun, nftables and dnsmasq; else why not.
	if [ "$(id -u)" -eq 0 ] && [ -c /dev/net/tun ] && command -v dnsmasq >/dev/null && nft list tables >/dev/null 2>&1; then
		grep -A8 '^qemu$' <<<"$out" | grep -q '^  network:     inet, full, --allow-host, -p (a TAP, nftables, ' &&
			pass doctor-qemu-network || fail doctor-qemu-network "$out"
	else
		grep -A8 '^qemu$' <<<"$out" | grep -q '^  network:     none only here (' &&
			pass doctor-qemu-network || fail doctor-qemu-network "$out"
	fi
else
	skip doctor-qemu-details "QEMU is not installed"
fi
# podman's names for the VM commands: ps is vm ls, exec vm exec, ...; listed in --help.
expect_eq ps-is-vm-ls "$("$HC" ps --json)" "$("$HC" vm ls --json)"
expect_eq exec-alias-help "$("$HC" exec --help | head -n 1)" "usage: hotcell vm exec [OPTIONS] VM [--] CMD [ARG...]"
if "$HC" --help | grep -q "ps (vm ls)" && "$HC" --help | grep -q "hotcell version"; then
	pass help-lists-podman-names
else
	fail help-lists-podman-names "$("$HC" --help)"
fi
expect_eq run-left-no-runtime-dir "$(ls -A "$HOTCELL_RUNTIME_DIR" 2>/dev/null)" ""
finish
