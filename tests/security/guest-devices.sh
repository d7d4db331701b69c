#!/usr/bin/env bash
# Group 1 of the security suite (docs/security.md): a hostile guest attacks the host through its
# devices — the virtio-fs shares (the image, read-only volumes, read-write volumes) and the
# read-only root disk. Every attack runs as root inside a real guest (`hotcell run ... sh -c`),
# once with the dir rootfs (the image over virtio-fs) and once with the block rootfs; each
# outcome is checked from the host: nothing outside a volume's directory is read or changed, no
# device node and no setuid/setgid file appears on the host, the image's tree, disk and store
# are unchanged. GUEST_ATTACKS_RUN_ARGS adds run options (the hand checks that the cases fail
# without their wall, e.g. --no-jail).
# shellcheck disable=SC2016,SC2034 # the checks are strings that expect (tests/lib/e2e.sh) evaluates
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
if [ "$(id -u)" -ne 0 ]; then
	skip guest-devices "the attacks need the guest's root on a jailed virtiofsd (root)"
	exit 0
fi
e2e_init
e2e_image bb || exit 1

SECRET="HOSTSECRET-$$-$RANDOM"

# The attacker: prints KEY=VALUE lines (exit codes, what it read), checked by the host below.
# OUT is the host directory beside the volume, holding the secret: the guest must not reach it.
# shellcheck disable=SC2016 # expanded in the guest
GUEST='
r() { "$@" >/dev/null 2>&1; echo $?; }
# 1. ".." beyond the share root, and the secret anywhere in the guest
echo "dotdot=$(cat /v/../../..$OUT/hcsecret /v/../../../../../../hcsecret 2>/dev/null)"
echo "dotdot-root=$([ "$(stat -c %d:%i /v/..)" = "$(stat -c %d:%i /)" ] && echo same)"
echo "found=$(find / -path /proc -prune -o -path /sys -prune -o -name hcsecret -type f -exec grep -l HOSTSECRET {} + 2>/dev/null)"
# 2. symlinks made by the guest on the volume, then followed
ln -s "$OUT" /v/abs; echo "abs-read=$(cat /v/abs/hcsecret 2>/dev/null)"
echo "abs-write=$(r sh -c "echo pwned >/v/abs/pwned")"
ln -s ../outside /v/rel; echo "rel-read=$(cat /v/rel/hcsecret 2>/dev/null)"
echo "rel-write=$(r sh -c "echo pwned >/v/rel/pwned")"
ln -s / /v/root; echo "root-write=$(r sh -c "echo pwned >/v/root$OUT/pwned")"
# 3. the race: the host swaps /v/d between a directory and symlinks to $OUT while this reads
inside=0 leaked=0
for i in $(seq 400); do
	l=""; read -r l </v/d/hcsecret 2>/dev/null
	case $l in inside) inside=$((inside + 1)) ;; *HOSTSECRET*) leaked=$((leaked + 1)) ;; esac
	usleep 10000
done
echo "race-inside=$inside"; echo "race-leaked=$leaked"
# 4. hard links to files outside the volume, and one inside (the control)
echo "hl-etc=$(r ln /etc/passwd /v/hl-etc)"
echo "hl-root=$(r ln /v/../bin/busybox /v/hl-root)"
echo "hl-inside=$(r ln /v/inside /v/inside-link)"
# 5. out of the directory by rename and by name
echo "moved=$(r mv /v/moveme /v/../moved)"
echo "escape=$(r touch /v/../escape /v/./../escape2)"
# 6. odd names
n255=$(head -c 255 /dev/zero | tr "\0" a); n256=${n255}b
echo "n255=$(r touch "/v/$n255")"; echo "n256=$(r touch "/v/$n256")"
echo "nl=$(r touch "/v/new
line")"
echo "utf8=$(r touch "/v/$(printf "bad\377\376name")")"
echo "dots=$(r touch "/v/...")"
# 7. device nodes
echo "mknod-b=$(r mknod /v/sda b 8 0)"; echo "mknod-c=$(r mknod /v/mem c 1 1)"
echo "mknod-null=$(r mknod /v/null c 1 3)"; echo "mknod-p=$(r mknod /v/fifo p)"
# 8. setuid and setgid files
cp /bin/busybox /v/su; echo "setuid=$(r chmod 4755 /v/su)"
touch /v/sg; echo "setgid=$(r chmod 2755 /v/sg)"
touch /v/other; chown 1000:1000 /v/other; echo "setuid-other=$(r chmod 6755 /v/other)"
echo "setuid-plus=$(r chmod u+s /v/inside)"
echo "chmod-plain=$(r chmod 0640 /v/plain)"
# 9. the read-only volume, also after a remount read-write
echo "ro=$(r touch /ro/x)"
mount -o remount,rw /ro 2>/dev/null
echo "ro-remount=$(r touch /ro/y)"
echo "ro-rm=$(r rm -f /ro/keep)"
# 10. the image: its files written (the overlay takes them), its share or disk attacked
echo pwned >/bin/busybox 2>/dev/null; echo pwned >/etc/passwd 2>/dev/null
echo "image-share=$(r mount -t virtiofs hcroot /mnt)"
if [ -b /dev/vda ]; then
	echo "disk-dd=$(r dd if=/dev/zero of=/dev/vda bs=4096 count=1 conv=fsync)"
	blockdev --setrw /dev/vda 2>/dev/null
	echo "disk-dd-rw=$(r dd if=/dev/zero of=/dev/vda bs=4096 count=16 seek=1 conv=fsync)"
	echo "disk-mount-rw=$(r mount -t ext4 -o rw /dev/vda /mnt)"
fi
sync
echo done=1
'

# The image's tree (dir rootfs) or disk (block), the store, as a list of hashes.
state_hash() {
	(cd "$HOTCELL_HOME" && find rootfs disks store -type f ! -name '*.lock' -print0 2>/dev/null |
		sort -z | xargs -0 -r sha256sum)
}

# attack MODE: one guest run against fresh directories, then the checks, named "MODE-...".
attack() {
	local m=$1
	shift
	local V=$E2E/$m/vol O=$E2E/$m/outside R=$E2E/$m/rovol
	mkdir -p "$V/d" "$O" "$R"
	echo "$SECRET" >"$O/hcsecret"
	echo inside >"$V/d/hcsecret"
	echo inside >"$V/inside"
	echo plain >"$V/plain"
	echo moveme >"$V/moveme"
	echo keep >"$R/keep"
	local nlink_passwd
	nlink_passwd=$(stat -c %h /etc/passwd)
	# shellcheck disable=SC2086
	"$HC" run --cold --rootfs-mode "$m" ${GUEST_ATTACKS_RUN_ARGS:-} bb true >/dev/null 2>&1 # the rootfs cache
	local before outside_before top_before
	before=$(state_hash)
	outside_before=$(cd "$O" && find . -printf '%p %s %m %l\n' | sort)
	top_before=$(ls -A "$E2E/$m")
	# The host-side swapper of the race: d is a directory, then an absolute, then a relative
	# symlink to the directory that holds the secret, by rename (atomic) each time.
	ln -s "$O" "$V/d.abs"
	ln -s ../outside "$V/d.rel"
	local swaps=$E2E/$m/swaps
	(
		n=0
		while [ ! -e "$V/stop" ] && [ "$n" -lt 100000 ]; do
			mv -T "$V/d" "$V/d.dir" && mv -T "$V/d.abs" "$V/d" && mv -T "$V/d" "$V/d.abs" &&
				mv -T "$V/d.rel" "$V/d" && mv -T "$V/d" "$V/d.rel" && mv -T "$V/d.dir" "$V/d"
			n=$((n + 1))
			echo "$n" >"$swaps"
		done
	) 2>/dev/null &
	local sw=$!
	# shellcheck disable=SC2086
	"$HC" run --cold --rootfs-mode "$m" ${GUEST_ATTACKS_RUN_ARGS:-} -e "OUT=$O" \
		-v "$V:/v" -v "$R:/ro:ro" bb sh -c "$GUEST" >"$E2E/$m/out" 2>"$E2E/$m/err"
	rc=$?
	mkdir "$V/stop"
	wait "$sw"
	rmdir "$V/stop"
	[ -e "$V/d" ] || { [ -d "$V/d.dir" ] && mv -T "$V/d.dir" "$V/d"; }
	cp "$E2E/$m/err" "$E2E/err"
	g() { sed -n "s/^$1=//p" "$E2E/$m/out" | head -n 1; }
	expect "$m-guest-ran" '[ "$rc" -eq 0 ] && [ "$(g done)" == 1 ]'

	# 1. traversal
	expect "$m-dotdot-stays-in-guest" '[ -z "$(g dotdot)" ] && [ "$(g dotdot-root)" == same ]'
	expect "$m-host-file-not-in-guest" '[ -z "$(g found)" ]'
	# 2. symlinks: stored as symlinks on the host, resolved by the guest in its own tree
	expect "$m-abs-symlink-not-followed-on-host" '[ -z "$(g abs-read)" ] && [ "$(readlink "$V/abs")" == "$O" ]'
	expect "$m-abs-symlink-write-refused" '[ "$(g abs-write)" != 0 ] && [ ! -e "$O/pwned" ]'
	expect "$m-rel-symlink-not-followed-on-host" '[ -z "$(g rel-read)" ] && [ "$(g rel-write)" != 0 ] && [ ! -e "$O/pwned" ]'
	expect "$m-symlink-to-root-stays-in-guest" '[ ! -e "$O/pwned" ]'
	expect "$m-outside-unchanged" '[ "$(cd "$O" && find . -printf "%p %s %m %l\n" | sort)" == "$outside_before" ] && grep -qxF "$SECRET" "$O/hcsecret"'
	# 3. the race ran (the host swapped, the guest read the inside file) and never leaked
	# Timing decides whether the host's swaps and the guest's opens overlapped: a run where
	# they did not proves nothing either way, and says so.
	if [ "$(cat "$swaps" 2>/dev/null || echo 0)" -gt 0 ] && [ "$(g race-inside)" -gt 0 ]; then
		pass "$m-symlink-race-ran"
	else
		skip "$m-symlink-race-ran" "the swaps ($(cat "$swaps" 2>/dev/null || echo 0)) and the guest's reads ($(g race-inside)) did not overlap in this run"
	fi
	expect "$m-symlink-race-never-leaks" '[ "$(g race-leaked)" == 0 ]'
	# 4. hard links
	expect "$m-hardlink-outside-refused" '[ "$(g hl-etc)" != 0 ] && [ "$(g hl-root)" != 0 ] && [ ! -e "$V/hl-etc" ] && [ ! -e "$V/hl-root" ] && [ "$(stat -c %h /etc/passwd)" == "$nlink_passwd" ]'
	expect "$m-hardlink-inside-works" '[ "$(g hl-inside)" == 0 ] && [ "$(stat -c %h "$V/inside")" == 2 ]'
	# 5. nothing lands beside the volume
	expect "$m-rename-out-stays-in-guest" '[ ! -e "$E2E/$m/moved" ] && [ ! -e "$E2E/moved" ]'
	expect "$m-rw-volume-stays-in-its-dir" '[ "$(ls -A "$E2E/$m" | grep -vx -e swaps -e out -e err)" == "$(grep -vx -e swaps -e out -e err <<<"$top_before")" ] && [ ! -e "$E2E/$m/escape" ] && [ ! -e "$E2E/escape" ]'
	# 6. odd names: exactly those bytes, inside the volume
	local n255
	n255=$(head -c 255 /dev/zero | tr '\0' a)
	expect "$m-name-255-bytes-inside" '[ "$(g n255)" == 0 ] && [ -f "$V/$n255" ]'
	expect "$m-name-256-bytes-refused" '[ "$(g n256)" != 0 ] && [ -z "$(find "$V" -name "${n255}b")" ]'
	expect "$m-name-newline-inside" '[ "$(g nl)" == 0 ] && [ -f "$V/new
line" ]'
	expect "$m-name-invalid-utf8-inside" '[ "$(g utf8)" == 0 ] && [ -f "$V/$(printf "bad\377\376name")" ]'
	expect "$m-name-dots-inside" '[ "$(g dots)" == 0 ] && [ -f "$V/..." ]'
	# 7. device nodes: refused; a fifo is no device and is allowed
	expect "$m-mknod-block-refused" '[ "$(g mknod-b)" != 0 ] && [ ! -e "$V/sda" ]'
	expect "$m-mknod-char-refused" '[ "$(g mknod-c)" != 0 ] && [ "$(g mknod-null)" != 0 ] && [ ! -e "$V/mem" ] && [ ! -e "$V/null" ]'
	expect "$m-no-device-node-on-host" '[ -z "$(find "$V" \( -type b -o -type c \) -print)" ]'
	expect "$m-mknod-fifo-allowed" '[ "$(g mknod-p)" == 0 ] && [ -p "$V/fifo" ]'
	# 8. setuid/setgid: refused, and the host's files carry no such bit
	expect "$m-setuid-root-refused" '[ "$(g setuid)" != 0 ] && [ $((0$(stat -c %a "$V/su") & 06000)) -eq 0 ]'
	expect "$m-setgid-refused" '[ "$(g setgid)" != 0 ] && [ $((0$(stat -c %a "$V/sg") & 06000)) -eq 0 ]'
	expect "$m-setuid-other-uid-refused" '[ "$(g setuid-other)" != 0 ] && [ "$(stat -c %u "$V/other")" == 1000 ] && [ $((0$(stat -c %a "$V/other") & 06000)) -eq 0 ]'
	expect "$m-no-setuid-file-on-host" '[ "$(g setuid-plus)" != 0 ] && [ -z "$(find "$V" -perm /6000 -print)" ]'
	expect "$m-chmod-plain-works" '[ "$(g chmod-plain)" == 0 ] && [ "$(stat -c %a "$V/plain")" == 640 ]'
	# 9. the read-only volume
	expect "$m-ro-volume-write-refused" '[ "$(g ro)" != 0 ] && [ ! -e "$R/x" ]'
	expect "$m-ro-volume-remount-write-refused" '[ "$(g ro-remount)" != 0 ] && [ "$(g ro-rm)" != 0 ] && [ ! -e "$R/y" ] && [ "$(cat "$R/keep")" == keep ]'
	# 10. the image: its share is not mounted again, its disk not written, nothing changed
	expect "$m-image-share-not-remountable" '[ "$(g image-share)" != 0 ]'
	if [ "$m" == block ]; then
		expect block-disk-write-refused '[ -n "$(g disk-dd)" ] && [ "$(g disk-dd)" != 0 ] && [ "$(g disk-dd-rw)" != 0 ] && [ "$(g disk-mount-rw)" != 0 ]'
	fi
	expect "$m-image-unchanged" '[ "$(state_hash)" == "$before" ]'
	local crc=0
	"$HC" check >"$E2E/$m/check" 2>&1 || crc=$?
	expect "$m-image-store-checks" '[ "$crc" -eq 0 ]'
}

attack dir
attack block
e2e_clean guest-devices
finish
