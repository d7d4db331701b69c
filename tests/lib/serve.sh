# Helpers for the `hotcell serve` tests (tests/integration/serve-*.sh, tests/e2e/serve-*.sh).
# Source after tests/lib.sh (and tests/lib/e2e.sh for the e2e ones).
#   serve_start [serve options...]   starts a server on 127.0.0.1 port 0 with a fresh token;
#                                    sets SRV_PID, SRV_PORT, SRV_URL (the rpc URL), TOKEN,
#                                    SRV_LOG (its stderr)
#   rpc JSON [curl options...]       POSTs JSON with the token; body to stdout
#   rpc_status JSON [curl options...]  the HTTP status only
#   serve_stop                       SIGTERM, waits; sets SRV_RC
#   serve_leftovers NAME             (e2e) PASS when no VMM or helper of the test is running and
#                                    its runtime dir $E2E/run has no VM's directory left (waits
#                                    a little: a cancelled run tears down asynchronously)
: "${SRV_DIR:=$(mktemp -d /tmp/hcsrv.XXXXXX)}"

serve_start() {
	TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
	printf '%s\n' "$TOKEN" >"$SRV_DIR/token"
	chmod 600 "$SRV_DIR/token"
	SRV_LOG=$SRV_DIR/server.log
	"$HC" serve --listen 127.0.0.1:0 --auth-token-file "$SRV_DIR/token" "$@" 2>"$SRV_LOG" &
	SRV_PID=$!
	local i
	for i in $(seq 1 100); do
		SRV_PORT=$(sed -n 's/^hotcell: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$SRV_LOG")
		[ -n "$SRV_PORT" ] && break
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$SRV_PORT" ]; then
		fail serve-start "the server did not start: $(head -c 500 "$SRV_LOG")"
		return 1
	fi
	SRV_URL=http://127.0.0.1:$SRV_PORT/api/v1/rpc
}

rpc() {
	local body=$1
	shift
	curl -sS --max-time 300 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
		--data-binary "$body" "$@" "$SRV_URL"
}

rpc_status() {
	local body=$1
	shift
	curl -sS -o /dev/null -w '%{http_code}' --max-time 60 --data-binary "$body" "$@" "$SRV_URL"
}

serve_stop() {
	SRV_RC=
	[ -n "${SRV_PID:-}" ] || return 0
	kill -TERM "$SRV_PID" 2>/dev/null
	wait "$SRV_PID"
	SRV_RC=$?
	SRV_PID=
}

serve_leftovers() {
	local procs i
	for i in $(seq 1 60); do
		procs=$(pgrep -af "$E2E/run" 2>/dev/null | grep -v "^$$ " || true)
		[ -z "$procs" ] && [ -z "$(ls -A "$E2E/run" 2>/dev/null)" ] && break
		sleep 0.5
	done
	if [ -n "$procs" ]; then
		fail "$1" "processes left: $procs"
	elif [ -n "$(ls -A "$E2E/run")" ]; then
		fail "$1" "runtime dir not empty: $(ls "$E2E/run")"
	else
		pass "$1"
	fi
}

serve_cleanup() {
	if [ -n "${SRV_PID:-}" ]; then kill -9 "$SRV_PID" 2>/dev/null; fi
	rm -rf "$SRV_DIR"
}

# expect_json NAME JSON JQ-EXPR: PASS when jq -e EXPR holds for JSON.
expect_json() {
	if jq -e "$3" >/dev/null 2>&1 <<<"$2"; then
		pass "$1"
	else
		fail "$1" "jq '$3' does not hold for: $(head -c 600 <<<"$2")"
	fi
}
