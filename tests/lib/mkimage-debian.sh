# Sourced by tests and benchmarks: real OCI images with a Debian package and its whole
# dependency closure (python3, nodejs), built offline from the .deb files
# scripts/install-deps.sh downloaded into $HOTCELL_DEBS_DIR/PKG (/var/cache/hotcell/debs).
#
#   mkimage_debian PKG
#     prints the OCI layout directory (tag "latest") of an image of PKG's packages, each
#     unpacked with dpkg-deb -x (plus /etc/passwd and /etc/group with root and hc (1000),
#     /tmp, WorkingDir /app, PATH, and Python's bytecode compiled ahead). Cached like the
#     kernel: $HOTCELL_IMAGE_CACHE (/var/cache/hotcell/images)/PKG-<sha256 of this script
#     and the .deb files>, built once under a lock; never modify it, copy it (below).
#   mkimage_debian_with LAYOUT DEST DIR
#     writes DEST, a copy of the layout LAYOUT (its blobs hard-linked) whose "latest" has one
#     more layer: the contents of DIR under /.
# Both return non-zero with a reason on stderr.

mkimage_debian() {
	local pkg=$1 debs=${HOTCELL_DEBS_DIR:-/var/cache/hotcell/debs}/$1
	local cache=${HOTCELL_IMAGE_CACHE:-/var/cache/hotcell/images} key out tmp rc=0
	[ -e "$debs/.complete" ] || { echo "no $pkg packages in $debs (scripts/install-deps.sh downloads them)" >&2; return 1; }
	command -v umoci >/dev/null || { echo "umoci not installed" >&2; return 1; }
	command -v dpkg-deb >/dev/null || { echo "dpkg-deb not installed" >&2; return 1; }
	key=$( (cat "${BASH_SOURCE[0]}"; cd "$debs" && sha256sum ./*.deb) | sha256sum | cut -c1-16)
	out=$cache/$pkg-$key
	mkdir -p "$cache" || return 1
	if [ ! -f "$out/index.json" ]; then
		exec {lockfd}>"$cache/.lock" || return 1
		flock "$lockfd"
		if [ ! -f "$out/index.json" ]; then
			tmp=$(mktemp -d "$cache/.tmp-$pkg.XXXXXX")
			(
				set -e
				umoci init --layout "$tmp/layout"
				umoci new --image "$tmp/layout:latest"
				umoci unpack --image "$tmp/layout:latest" "$tmp/b" >/dev/null
				r=$tmp/b/rootfs
				for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$r"; done
				rm -rf "$r/usr/share/doc" "$r/usr/share/man" "$r/usr/share/info" "$r/usr/share/locale" "$r/usr/share/lintian"
				mkdir -p "$r/etc" "$r/tmp" "$r/root" "$r/home/hc" "$r/app"
				chmod 1777 "$r/tmp"
				printf 'root:x:0:0:root:/root:/bin/sh\nhc:x:1000:1000:hc:/home/hc:/bin/sh\n' >"$r/etc/passwd"
				printf 'root:x:0:\nhc:x:1000:\n' >"$r/etc/group"
				chown 1000:1000 "$r/home/hc"
				echo 'include /etc/ld.so.conf.d/*.conf' >"$r/etc/ld.so.conf"
				if [ -x /sbin/ldconfig ]; then /sbin/ldconfig -r "$r" 2>/dev/null || true; fi
				# Bytecode ahead, as Debian's postinst would (py3compile), so that no call
				# compiles the standard library: with a host Python of the same X.Y (the
				# same bytecode magic); the .pyc files record the image's own sources.
				for py in "$r"/usr/lib/python3.[0-9]*; do
					[ -d "$py" ] || continue
					v=${py##*/python}
					if [ -x "/usr/bin/python$v" ]; then
						"/usr/bin/python$v" -m compileall -q -j 0 -s "$r" -p / \
							-x '/(test|tests|idlelib|lib2to3)/' "$py" >/dev/null || true
					fi
				done
				umoci repack --refresh-bundle --image "$tmp/layout:latest" "$tmp/b" >/dev/null
				umoci config --image "$tmp/layout:latest" --architecture amd64 --os linux \
					--created "2024-01-01T00:00:00Z" --config.workingdir /app \
					--config.env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
				umoci gc --layout "$tmp/layout"
			) >"$tmp/log" 2>&1 || rc=1
			if [ $rc -eq 0 ]; then
				mv "$tmp/layout" "$out" || rc=1
				# Older builds of PKG (other packages or another script) are stale.
				for old in "$cache/$pkg"-*; do
					[ "$old" = "$out" ] || rm -rf "$old"
				done
			else
				echo "mkimage_debian $pkg: $(tail -n 5 "$tmp/log")" >&2
			fi
			rm -rf "$tmp"
		fi
		exec {lockfd}>&-
		[ $rc -eq 0 ] || return 1
	fi
	echo "$out"
}

mkimage_debian_with() {
	local src=$1 dest=$2 dir=$3
	rm -rf "$dest"
	mkdir -p "$dest" || return 1
	# Blobs are never written in place: links are safe. index.json is rewritten: a copy.
	cp -al "$src/blobs" "$dest/blobs" && cp "$src/index.json" "$src/oci-layout" "$dest/" || return 1
	tar -C "$dir" --owner=0 --group=0 -cf "$dest/layer.tar" . || return 1
	umoci raw add-layer --image "$dest:latest" "$dest/layer.tar" >/dev/null || return 1
	rm -f "$dest/layer.tar"
}
