#!/usr/bin/env bash
# Installs what hotcell needs to build and test on Debian 12 (bookworm). Idempotent: packages
# already present are not reinstalled, and nothing is fetched when all are there.
set -euo pipefail

pkgs=(
	build-essential make gcc clang pkg-config
	libcurl4-openssl-dev libarchive-dev libjansson-dev libzstd-dev zlib1g-dev
	qemu-system-x86 qemu-utils
	linux-source-6.1 bc bison flex libelf-dev libssl-dev cpio lz4 xz-utils kmod
	e2fsprogs busybox-static
	docker-registry skopeo umoci apache2-utils
	iproute2 jq curl ca-certificates util-linux procps psmisc
	libclang-rt-14-dev
	libseccomp-dev libcap-dev libmnl-dev libnftables-dev nftables dnsmasq-base
	libmicrohttpd-dev libwslay-dev tmux python3-websockets node-ws wrk hyperfine
	podman containerd runc conmon
)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# vhost-device-vsock is only in Debian's unstable suite (see docs/backends.md): fetch that one
# package with a private apt configuration and unpack it; never upgrade the system from sid.
vdv_dir=${HOTCELL_TOOLS_DIR:-/var/cache/hotcell-tools}
if ! command -v vhost-device-vsock >/dev/null 2>&1 && [ ! -x "$vdv_dir/usr/bin/vhost-device-vsock" ]; then
	uri=$(grep -hoE '^(URIs:|deb) *[^ ]+' /etc/apt/sources.list.d/* /etc/apt/sources.list 2>/dev/null |
		awk '{print $2}' | grep -v security | head -n 1 || true)
	if [ -n "$uri" ]; then
		tmp=$(mktemp -d)
		mkdir -p "$tmp/etc/sources.list.d" "$tmp/lists/partial" "$tmp/cache/archives/partial"
		echo "deb $uri sid main" > "$tmp/etc/sources.list"
		aptopts=(-o Dir::Etc::sourcelist="$tmp/etc/sources.list" -o Dir::Etc::sourceparts="$tmp/etc/sources.list.d"
			-o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/cache" -o Debug::NoLocking=1)
		if apt-get "${aptopts[@]}" update -q >/dev/null 2>&1 &&
			(cd "$tmp" && apt-get "${aptopts[@]}" download vhost-device-vsock >/dev/null 2>&1); then
			$SUDO mkdir -p "$vdv_dir"
			$SUDO dpkg-deb -x "$tmp"/vhost-device-vsock_*.deb "$vdv_dir"
			echo "install-deps: vhost-device-vsock unpacked into $vdv_dir"
		else
			echo "install-deps: vhost-device-vsock not available (vsock tests will be skipped)"
		fi
		rm -rf "$tmp"
	fi
fi

# The executors' e2e tests and bench/executor.sh run real python3 and node images built offline
# from Debian's packages (tests/lib/mkimage-debian.sh): fetch each package's whole dependency
# closure (as on an empty system, so the host's own packages do not shorten it) into
# /var/cache/hotcell/debs/<package>/ once; the images are then built from these files alone.
debs_dir=${HOTCELL_DEBS_DIR:-/var/cache/hotcell/debs}
for p in python3 nodejs; do
	[ -e "$debs_dir/$p/.complete" ] && continue
	tmp=$(mktemp -d)
	mkdir -p "$tmp/archives/partial"
	touch "$tmp/status"
	if $SUDO apt-get -q -o Dir::State::status="$tmp/status" -o Dir::Cache::archives="$tmp/archives" \
		-o Debug::NoLocking=1 install --download-only -y --no-install-recommends "$p" >/dev/null 2>&1; then
		$SUDO mkdir -p "$debs_dir/$p"
		$SUDO rm -f "$debs_dir/$p"/*.deb
		$SUDO mv "$tmp"/archives/*.deb "$debs_dir/$p/"
		$SUDO touch "$debs_dir/$p/.complete"
		echo "install-deps: $p and its dependencies downloaded into $debs_dir/$p"
	else
		echo "install-deps: cannot download $p's packages (the executor tests will be skipped)"
	fi
	rm -rf "$tmp"
done
