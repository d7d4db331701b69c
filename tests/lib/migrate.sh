# Helpers for the migration tests (tests/e2e/vm-migrate.sh, tests/integration/vm-migrate-doubles.sh),
# sourced after tests/lib/e2e.sh:
#   mig_start NAME ADDR HOME RUNDIR [VAR=VALUE...]   a `hotcell serve` on ADDR (a free port) with
#                      its own HOTCELL_HOME, runtime dir and token ($SERVE_ARGS are its options);
#                      sets URL_<NAME> and TOK_<NAME>, the token also in $E2E/work/tok-<NAME>
#   mig_rpc NAME METHOD PARAMS   a JSON-RPC call to server NAME; the response on stdout
#   mig_cleanup        kills every server started and the VMs of $DST_HOME (call from the EXIT trap)
MIG_PIDS=()

mig_start() {
	local name=$1 addr=$2 home=$3 run=$4 log=$E2E/work/srv-$1.log tok port i
	shift 4
	tok=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
	printf '%s\n' "$tok" >"$E2E/work/tok-$name"
	chmod 600 "$E2E/work/tok-$name"
	# shellcheck disable=SC2086 # SERVE_ARGS is a list of options
	env HOTCELL_HOME="$home" HOTCELL_RUNTIME_DIR="$run" "$@" "$HC" serve --listen "$addr:0" \
		--auth-token-file "$E2E/work/tok-$name" ${SERVE_ARGS:-} 2>"$log" &
	MIG_PIDS+=($!)
	for i in $(seq 1 100); do
		port=$(sed -n "s/^hotcell: listening on ${addr//./\\.}:\\([0-9]*\\)\$/\\1/p" "$log")
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || { fail "start-$name" "no server: $(head -c 300 "$log")"; exit 1; }
	printf -v "URL_$name" 'http://%s:%s' "$addr" "$port"
	printf -v "TOK_$name" '%s' "$tok"
}

mig_rpc() {
	local url tok
	url=URL_$1 tok=TOK_$1
	curl -sS --max-time 600 -H "Authorization: Bearer ${!tok}" -H 'Content-Type: application/json' \
		--data-binary "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":$3}" "${!url}/api/v1/rpc"
}

mig_cleanup() {
	local p
	for p in "${MIG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	for p in $(vm_procs) $(HOTCELL_HOME=${DST_HOME:-/nonexistent} vm_procs); do kill -9 "$p" 2>/dev/null; done
	sleep 0.5
	e2e_cleanup
}
