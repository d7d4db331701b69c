# Sourced by tests and benchmarks: builds small, real OCI images offline with umoci from
# Debian's busybox-static.
#
#   mkimage LAYOUT TAG [OPTIONS]
#     writes image TAG into the OCI layout directory LAYOUT (created when missing), with
#     layer 1: /bin/busybox and a symlink in /bin for every applet,
#     layer 2: /etc/passwd, /etc/group (root and user 1000 "hc"), /tmp, /home/hc,
#     one more layer per --layer DIR (its contents copied to /), and the image config:
#       --entrypoint ARG   (repeat: one per element)   --cmd ARG   (repeat)
#       --env KEY=VALUE    (repeat)                    --workdir DIR
#       --user USER[:GROUP]                            --arch ARCH (default amd64)
#       --layer DIR        an extra layer              --file SRC:DEST extra file in layer 2
#   Prints nothing; returns non-zero with a reason on stderr.
#   mkimage_digest LAYOUT TAG   prints the manifest digest of TAG in LAYOUT.

mkimage() {
	local layout=$1 tag=$2
	shift 2
	local -a ep=() cmd=() env=() layers=() files=()
	local workdir="" user="" arch=amd64 bundle rc=0 a
	while [ $# -gt 0 ]; do
		case $1 in
		--entrypoint) ep+=("$2"); shift 2 ;;
		--cmd) cmd+=("$2"); shift 2 ;;
		--env) env+=("$2"); shift 2 ;;
		--workdir) workdir=$2; shift 2 ;;
		--user) user=$2; shift 2 ;;
		--arch) arch=$2; shift 2 ;;
		--layer) layers+=("$2"); shift 2 ;;
		--file) files+=("$2"); shift 2 ;;
		*) echo "mkimage: unknown option $1" >&2; return 2 ;;
		esac
	done
	command -v umoci >/dev/null || { echo "umoci not installed" >&2; return 1; }
	[ -x /bin/busybox ] || { echo "busybox-static not installed" >&2; return 1; }
	if [ ! -f "$layout/oci-layout" ]; then
		umoci init --layout "$layout" || return 1
	fi
	umoci new --image "$layout:$tag" || return 1
	bundle=$(mktemp -d /tmp/hcmkimage.XXXXXX)
	(
		set -e
		umoci unpack --image "$layout:$tag" "$bundle/b" >/dev/null
		r=$bundle/b/rootfs
		mkdir -p "$r/bin"
		cp /bin/busybox "$r/bin/busybox"
		for a in $(/bin/busybox --list); do
			[ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
		done
		umoci repack --refresh-bundle --image "$layout:$tag" "$bundle/b" >/dev/null

		mkdir -p "$r/etc" "$r/tmp" "$r/home/hc" "$r/root"
		chmod 1777 "$r/tmp"
		printf 'root:x:0:0:root:/root:/bin/sh\nhc:x:1000:1000:hc:/home/hc:/bin/sh\n' >"$r/etc/passwd"
		printf 'root:x:0:\nhc:x:1000:\n' >"$r/etc/group"
		chown 1000:1000 "$r/home/hc"
		for f in "${files[@]}"; do
			mkdir -p "$r/$(dirname "${f#*:}")"
			cp -a "${f%%:*}" "$r/${f#*:}"
		done
		umoci repack --refresh-bundle --image "$layout:$tag" "$bundle/b" >/dev/null

		for l in "${layers[@]}"; do
			cp -a "$l/." "$r/"
			umoci repack --refresh-bundle --image "$layout:$tag" "$bundle/b" >/dev/null
		done
	) || rc=1
	rm -rf "$bundle"
	[ $rc -eq 0 ] || { echo "mkimage: building layers failed" >&2; return 1; }

	local -a cfg=(--architecture "$arch" --os linux --created "2024-01-01T00:00:00Z")
	# --clear first so the lists are exactly what was asked for
	[ ${#ep[@]} -gt 0 ] && cfg+=(--clear config.entrypoint)
	[ ${#cmd[@]} -gt 0 ] && cfg+=(--clear config.cmd)
	for a in "${ep[@]}"; do cfg+=(--config.entrypoint "$a"); done
	for a in "${cmd[@]}"; do cfg+=(--config.cmd "$a"); done
	for a in "${env[@]}"; do cfg+=(--config.env "$a"); done
	[ -n "$workdir" ] && cfg+=(--config.workingdir "$workdir")
	[ -n "$user" ] && cfg+=(--config.user "$user")
	umoci config --image "$layout:$tag" "${cfg[@]}" || return 1
	umoci gc --layout "$layout" || return 1
}

mkimage_digest() {
	python3 - "$1" "$2" <<'PY'
import json, sys
idx = json.load(open(sys.argv[1] + "/index.json"))
for m in idx["manifests"]:
    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]:
        print(m["digest"])
PY
}
