# Sourced by tests and benchmarks: a private Debian docker-registry (distribution 2.8) on
# loopback. The packaged /etc/docker/registry/config.yml listens on all interfaces, so each
# registry gets its own config, storage and port here.
#
#   registry_start VAR [USER PASS]   starts one (htpasswd basic auth when USER is given) and
#                                    sets VAR_ADDR=127.0.0.1:PORT, VAR_DIR (config, storage),
#                                    VAR_PID; returns non-zero with a reason on stderr
#                                    With REGISTRY_TLS=1 in the environment it serves HTTPS
#                                    with a fresh self-signed certificate for 127.0.0.1
#                                    (VAR_DIR/cert.pem).
#   registry_stop VAR                stops it and removes its directory
#   registry_stop_all                stops every registry started by this shell
#   registry_blob_path VAR DIGEST    the file a blob is stored in (to corrupt it on purpose)
#
# The registries are background jobs of the calling shell: do not use a bare `wait` while one
# runs. Readiness is an event: the registry's log goes through a FIFO and the start waits (bounded)
# for its "listening on ADDR" line, which also gives the port it bound (addr 127.0.0.1:0).

_registry_names=()

registry_start() {
	local var=$1 user=${2:-} pass=${3:-} dir fifo pid line addr="" fd
	command -v docker-registry >/dev/null || { echo "docker-registry not installed" >&2; return 1; }
	dir=$(mktemp -d /tmp/hcreg.XXXXXX)
	mkdir -p "$dir/data"
	{
		echo "version: 0.1"
		echo "log:"
		echo "  level: info"
		echo "  accesslog:"
		echo "    disabled: true"
		echo "storage:"
		echo "  filesystem:"
		echo "    rootdirectory: $dir/data"
		echo "  delete:"
		echo "    enabled: true"
		echo "http:"
		echo "  addr: 127.0.0.1:0"
		echo "  secret: hotcell-test-$RANDOM$RANDOM"
	} >"$dir/config.yml"
	if [ "${REGISTRY_TLS:-}" = 1 ]; then
		openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
			-addext subjectAltName=IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" \
			>/dev/null 2>&1 || { echo "openssl cannot make a certificate" >&2; rm -rf "$dir"; return 1; }
		{
			echo "  tls:"
			echo "    certificate: $dir/cert.pem"
			echo "    key: $dir/key.pem"
		} >>"$dir/config.yml"
	fi
	if [ -n "$user" ]; then
		command -v htpasswd >/dev/null || { echo "htpasswd (apache2-utils) not installed" >&2; return 1; }
		htpasswd -Bbn "$user" "$pass" >"$dir/htpasswd" 2>/dev/null || return 1
		{
			echo "auth:"
			echo "  htpasswd:"
			echo "    realm: hotcell-test"
			echo "    path: $dir/htpasswd"
		} >>"$dir/config.yml"
	fi
	fifo=$dir/log.fifo
	mkfifo "$fifo"
	docker-registry serve "$dir/config.yml" >"$fifo" 2>&1 &
	pid=$!
	exec {fd}<"$fifo"
	while IFS= read -r -t 20 -u "$fd" line; do
		echo "$line" >>"$dir/log"
		if [[ $line =~ listening\ on\ (127\.0\.0\.1:[0-9]+) ]]; then
			addr=${BASH_REMATCH[1]}
			break
		fi
	done
	# keep draining the log so the registry never blocks on a full pipe; it ends with the
	# registry, and runs in a subshell so it is not one of the caller's jobs (a bare `wait`)
	(cat <&"$fd" >>"$dir/log" &)
	exec {fd}<&-
	if [ -z "$addr" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		echo "registry did not start: $(tail -n 3 "$dir/log" 2>/dev/null)" >&2
		rm -rf "$dir"
		return 1
	fi
	printf -v "${var}_ADDR" '%s' "$addr"
	printf -v "${var}_DIR" '%s' "$dir"
	printf -v "${var}_PID" '%s' "$pid"
	_registry_names+=("$var")
	# one check that the API answers (200, or 401 with auth)
	local code
	if [ "${REGISTRY_TLS:-}" = 1 ]; then
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$dir/cert.pem" "https://$addr/v2/")
	else
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$addr/v2/")
	fi
	case $code in
	200 | 401) return 0 ;;
	*)
		echo "registry at $addr answers $code on /v2/" >&2
		registry_stop "$var"
		return 1
		;;
	esac
}

registry_stop() {
	local var=$1 pidv dirv
	pidv=${var}_PID dirv=${var}_DIR
	# every step may fail (already gone): never let `set -e` in the caller skip the rest
	if [ -n "${!pidv:-}" ]; then
		kill "${!pidv}" 2>/dev/null || true
		wait "${!pidv}" 2>/dev/null || true
	fi
	if [ -n "${!dirv:-}" ]; then rm -rf "${!dirv}" || true; fi
	printf -v "${var}_PID" '%s' ""
	printf -v "${var}_DIR" '%s' ""
}

registry_stop_all() {
	local v
	for v in "${_registry_names[@]}"; do
		registry_stop "$v" || true
	done
	_registry_names=()
}

registry_blob_path() {
	local dirv=${1}_DIR hex=${2#sha256:}
	echo "${!dirv}/data/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}
