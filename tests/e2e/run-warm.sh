#!/usr/bin/env bash
# Warm start end to end on real VMs (docs/warm-start.md): the first run of a cached image boots
# cold and saves the template at HELLO; later runs restore it ("start": "warm") with their own
# RNG (two restores read different bytes from /dev/urandom), the host's clock and their own
# hostname; --cold, -v and a directory rootfs stay cold; the fallbacks (a truncated template,
# a kernel file whose identity changed, a full disk while saving) boot cold and succeed;
# concurrent first runs build one template; prune removes them; nothing is left behind.
# The runs are --no-jail: a restored VMM cannot be jailed yet, so jailed runs (root's default)
# stay cold (checked too).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
e2e_image bb || exit 1
rc=0
W=(--no-jail --memory 128)
templates() { find "$HOTCELL_HOME/templates" -mindepth 1 -maxdepth 1 -type d ! -name '.*' 2>/dev/null | sort; }
temps() { find "$HOTCELL_HOME/templates" -mindepth 1 -maxdepth 1 -name '.*' 2>/dev/null; }
probe='head -c16 /dev/urandom | od -An -tx1 | tr -d " \n"; echo; date +%s; hostname'

# The first run: cold, and it leaves the template.
e2e_json "${W[@]}" bb true
expect first-cold '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == cold ] && [ "$(jqr .exit_code)" == 0 ]' || cat "$E2E/err"
expect first-saves-template '[ "$(templates | wc -l)" -eq 1 ] && [ -z "$(temps)" ] && jq -e ".timings_ms.template > 0" "$E2E/json" >/dev/null'
tpl=$(templates)
expect template-files '[ -f "$tpl/snapshot.json" ] && [ -f "$tpl/template.json" ] && [ -f "$tpl/qemu-state" ] && [ -f "$tpl/memory" ]'
"$HC" images --json >"$E2E/images" 2>"$E2E/err"
expect images-template-size 'jq -e ".[] | select(.name | test(\"bb\")) | .template_size > 0" "$E2E/images" >/dev/null'

# Two restores of the one template: each its own RNG, the host's clock, its own hostname.
e2e_json "${W[@]}" -h warm-one bb sh -c "$probe"
cp "$E2E/json" "$E2E/json1"
host_now=$(date +%s)
expect warm '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == warm ] && jq -e ".timings_ms.restore > 0 and .timings_ms.boot == 0" "$E2E/json" >/dev/null' || cat "$E2E/err"
e2e_json "${W[@]}" -h warm-two bb sh -c "$probe"
host_now2=$(date +%s)
expect warm-again '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == warm ]'
u1=$(jq -r .stdout "$E2E/json1" | sed -n 1p); u2=$(jqr .stdout | sed -n 1p)
d1=$(jq -r .stdout "$E2E/json1" | sed -n 2p); d2=$(jqr .stdout | sed -n 2p)
h1=$(jq -r .stdout "$E2E/json1" | sed -n 3p); h2=$(jqr .stdout | sed -n 3p)
expect warm-urandom-differs '[ ${#u1} -eq 32 ] && [ ${#u2} -eq 32 ] && [ "$u1" != "$u2" ]'
expect warm-clock-is-the-hosts '[ -n "$d1" ] && [ "$d1" -ge $((host_now - 3)) ] && [ "$d1" -le "$host_now" ] && [ "$d2" -ge $((host_now2 - 3)) ] && [ "$d2" -le "$host_now2" ]'
expect warm-own-hostname '[ "$h1" == warm-one ] && [ "$h2" == warm-two ]'
e2e_json "${W[@]}" bb hostname
expect warm-default-hostname '[ "$(jqr .start)" == warm ] && [ "$(jqr .stdout)" == hotcell ]'
# The same result object as a cold run: output, exit code, stdin.
echo piped | "$HC" run "${W[@]}" -i bb sh -c 'cat; exit 3' >"$E2E/out" 2>"$E2E/err"; rc=$?
expect warm-stdin-exit '[ "$rc" -eq 3 ] && [ "$(cat "$E2E/out")" == piped ]'

# Runs that stay cold.
e2e_json "${W[@]}" --cold bb true
expect cold-flag '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == cold ] && jq -e ".timings_ms.template == 0" "$E2E/json" >/dev/null'
mkdir -p "$E2E/work/vol"
e2e_json "${W[@]}" -v "$E2E/work/vol:/vol" bb true
expect volume-cold '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == cold ]'
e2e_json "${W[@]}" --rootfs-mode dir bb true
expect dir-rootfs-cold '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == cold ]'
if [ "$(id -u)" -eq 0 ]; then
	e2e_json --memory 128 bb true
	e2e_json --memory 128 bb true
	expect jailed-warm '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == warm ] && [ "$(jqr .jailed)" == true ]'
fi
expect still-one-template '[ "$(templates | wc -l)" -eq 1 ]'

# A truncated template: cold, succeeds, and the run rebuilds it; the next is warm.
truncate -s 4096 "$tpl/memory"
e2e_json "${W[@]}" bb echo ok
expect truncated-cold '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == cold ] && [ "$(jqr .stdout)" == ok ]' || cat "$E2E/err"
e2e_json "${W[@]}" bb true
expect truncated-rebuilt '[ "$(jqr .start)" == warm ] && [ "$(stat -c %s "$tpl/memory")" -eq $((128 << 20)) ]'
: >"$tpl/qemu-state"
e2e_json "${W[@]}" bb echo ok
expect empty-state-cold '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == cold ] && [ "$(jqr .stdout)" == ok ]' || cat "$E2E/err"

# The kernel file's identity changes (rebuilt): cold, succeeds, a new template.
kernel=$("$HC" doctor | awk '/^qemu/ {q=1} q && /kernel:/ {print $2; exit}')
if [ -n "$kernel" ] && [ -f "$kernel" ]; then
	cp "$kernel" "$E2E/work/kernel"
	HOTCELL_KERNEL=$E2E/work/kernel e2e_json "${W[@]}" --accel tcg bb true
	HOTCELL_KERNEL=$E2E/work/kernel e2e_json "${W[@]}" --accel tcg bb true
	expect own-kernel-warm '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == warm ]'
	n=$(templates | wc -l)
	touch "$E2E/work/kernel"
	HOTCELL_KERNEL=$E2E/work/kernel e2e_json "${W[@]}" --accel tcg bb echo ok
	expect kernel-changed-cold '[ "$rc" -eq 0 ] && [ "$(jqr .start)" == cold ] && [ "$(jqr .stdout)" == ok ] && [ "$(templates | wc -l)" -eq $((n + 1)) ]'
else
	skip kernel-changed-cold "doctor names no kernel for qemu"
fi

# Concurrent first runs of a new key build one template.
n=$(templates | wc -l)
pids=()
for i in 1 2 3; do
	"$HC" run --no-jail --memory 96 bb true >"$E2E/out.$i" 2>"$E2E/err.$i" &
	pids+=($!)
done
ok=0
for p in "${pids[@]}"; do wait "$p" && ok=$((ok + 1)); done
expect concurrent-first-runs '[ "$ok" -eq 3 ] && [ "$(templates | wc -l)" -eq $((n + 1)) ] && [ -z "$(temps)" ]'

# A full disk while saving: a state dir on a small tmpfs.
if [ "$(id -u)" -eq 0 ]; then
	small=$E2E/small
	mkdir -p "$small"
	if mount -t tmpfs -o size=48m tmpfs "$small" 2>/dev/null; then
		HOTCELL_HOME=$small "$HC" load --name bb "$E2E/work/layout-bb" >/dev/null 2>&1
		HOTCELL_HOME=$small "$HC" run --no-jail --memory 128 --cold --rootfs-mode block bb true >/dev/null 2>&1
		# Leave 2 MiB: the image runs, its template (tens of MiB of RAM) does not fit.
		avail=$(df -B1 --output=avail "$small" | tail -n1)
		fallocate -l $((avail - (2 << 20))) "$small/filler" 2>/dev/null || dd if=/dev/zero of="$small/filler" bs=1M count=$((avail / 1048576 - 2)) 2>/dev/null
		HOTCELL_HOME=$small "$HC" run --json --no-jail --memory 128 bb echo ok >"$E2E/json" 2>"$E2E/err"; rc=$?
		expect full-disk-cold '[ "$rc" -eq 0 ] && [ "$(jqr .stdout)" == ok ] && [ "$(jqr .start)" == cold ] && [ -z "$(find "$small/templates" -mindepth 1 -maxdepth 1 -type d)" ]' || cat "$E2E/err"
		rm -f "$small/filler"
		HOTCELL_HOME=$small "$HC" run --no-jail --memory 128 bb true >/dev/null 2>&1
		HOTCELL_HOME=$small "$HC" run --json --no-jail --memory 128 bb true >"$E2E/json" 2>"$E2E/err"
		expect full-disk-then-warm '[ "$(jqr .start)" == warm ]'
		# A full disk for the ext4 image a warm-start run would need: cold on the tree.
		rm -rf "$small/templates" "$small/disks"
		avail=$(df -B1 --output=avail "$small" | tail -n1)
		fallocate -l $((avail - (1 << 20))) "$small/filler" 2>/dev/null || dd if=/dev/zero of="$small/filler" bs=1M count=$((avail / 1048576 - 1)) 2>/dev/null
		HOTCELL_HOME=$small "$HC" run --json --no-jail --memory 128 bb echo ok >"$E2E/json" 2>"$E2E/err"; rc=$?
		expect full-disk-no-ext4-cold '[ "$rc" -eq 0 ] && [ "$(jqr .stdout)" == ok ] && [ "$(jqr .start)" == cold ]' || cat "$E2E/err"
		rm -f "$small/filler"
		umount "$small"
	else
		skip full-disk-cold "cannot mount a tmpfs"
	fi
else
	skip full-disk-cold "mounting a small tmpfs needs root"
fi

# prune removes every template.
"$HC" prune >"$E2E/out" 2>"$E2E/err"; rc=$?
expect prune-templates '[ "$rc" -eq 0 ] && [ -z "$(templates)" ] && [ -z "$(temps)" ]'
"$HC" images --json >"$E2E/images" 2>"$E2E/err"
expect images-no-template 'jq -e ".[] | select(.name | test(\"bb\")) | .template_size == 0" "$E2E/images" >/dev/null'
e2e_clean warm
finish
