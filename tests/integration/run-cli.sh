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
	--detach --read-only --tmpfs; do
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
bad run-bad-volume "HOSTDIR:GUESTDIR" -v nocolon img true
bad run-bad-volume-host "host directory" -v /does/not/exist:/data img true
bad run-bad-publish "HOSTPORT:GUESTPORT" -p 80 img true
bad run-bad-limit "--output-limit" --output-limit lots img true
bad run-relative-workdir "absolute" -w relative img true
bad run-bad-hostname "--hostname" --hostname "a b" img true
bad run-unknown-option "unrecognized" --no-such-flag img true
bad run-detach-refused "vm exec --detach" -d img true
bad run-tmpfs-refused "--tmpfs /x: not supported" --tmpfs /x img true
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
else
	skip doctor-qemu-details "QEMU is not installed"
fi
expect_eq run-left-no-runtime-dir "$(ls -A "$HOTCELL_RUNTIME_DIR" 2>/dev/null)" ""
finish
