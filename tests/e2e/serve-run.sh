#!/usr/bin/env bash
# `hotcell serve` end to end with real VMs: sandbox.run's result is run --json's plus
# console_output; stdin params; SSE streams output as it is written; WebSocket with
# python3-websockets and Node's ws; a client that goes away cancels its run; --max-runs
# answers an error instead of queueing; 50 concurrent runs without a failure or a leftover;
# SIGTERM mid-run; a backend that cannot do a thing answers the CLI's error; persistent VMs
# outlive the server.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
need_tools serve-run curl jq
SRV_DIR=$E2E/srv
mkdir -p "$SRV_DIR"
source "$(dirname "$0")/../lib/serve.sh"
trap 'serve_cleanup; e2e_cleanup' EXIT
e2e_image bb || exit 1
N_CONC=${HOTCELL_SERVE_CONCURRENCY:-50}

req() { # METHOD PARAMS-JSON [ID]
	printf '{"jsonrpc":"2.0","method":"%s","params":%s,"id":%s}' "$1" "$2" "${3:-1}"
}

serve_start --default-memory-mib 128 || exit 1

# ---- the result object: run --json's fields plus console_output
# (the order across the two streams is the order chunks reached the host: the pauses make it
# unambiguous)
r=$(rpc "$(req sandbox.run '{"image":"bb","command":["sh","-c","echo out; sleep 0.5; echo err >&2; sleep 0.5; echo more; exit 3"]}')")
expect_json run-result "$r" '.result.exit_code == 3 and .result.stdout == "out\nmore\n" and .result.stderr == "err\n" and .result.backend != null and (.result.image_digest | startswith("sha256:")) and .result.timed_out == false'
expect_json run-console-output "$r" '.result.console_output == "out\nerr\nmore\n" and .result.console_output_encoding == "utf-8"'
"$HC" run --json --memory 128 bb true >"$E2E/cli.json" 2>/dev/null
keys_cli=$(jq -c 'keys' "$E2E/cli.json")
keys_srv=$(jq -c '.result | del(.console_output, .console_output_encoding, .console_output_truncated) | keys' <<<"$r")
expect_eq run-same-fields-as-cli "$keys_srv" "$keys_cli"
r=$(rpc "$(req sandbox.run '{"image":"bb","command":["cat"],"stdin":"hello stdin"}')")
expect_json run-stdin-utf8 "$r" '.result.stdout == "hello stdin"'
r=$(rpc "$(req sandbox.run '{"image":"bb","command":["cat"],"stdin":"AAH/","stdin_encoding":"base64"}')")
expect_json run-stdin-base64 "$r" '.result.stdout == "AAH/" and .result.stdout_encoding == "base64"'
r=$(rpc "$(req sandbox.run '{"image":"bb","command":["sh","-c","echo $FOO $(pwd)"],"env":{"FOO":"bar"},"workdir":"/tmp","vcpus":1,"timeout_secs":60}')")
expect_json run-env-workdir "$r" '.result.stdout == "bar /tmp\n"'
r=$(rpc "$(req sandbox.run '{"image":"bb","command":["sleep","30"],"timeout_secs":1}')")
expect_json run-timeout "$r" '.result.timed_out == true and .result.exit_code == null'
r=$(rpc "$(req sandbox.run '{"image":"bb","command":["/nonexistent"]}')")
expect_json run-exec-failure "$r" '.result.exit_code == 127 and (.result.error.message | length) > 0'

# ---- a backend that cannot do it: the CLI's error, word for word
"$HC" run --json --backend firecracker bb true >"$E2E/cli-fc.json" 2>/dev/null
want=$(jq -r '.error.message' "$E2E/cli-fc.json")
r=$(rpc "$(req sandbox.run '{"image":"bb","command":["true"],"backend":"firecracker"}')")
got=$(jq -r '.error.message' <<<"$r")
if [ -n "$want" ] && [ "$want" != null ] && [ "$got" == "$want" ]; then pass backend-error-as-cli; else fail backend-error-as-cli "server '$got', CLI '$want'"; fi
expect_json backend-error-kind "$r" '.error.code == -32000 and .error.data.kind == "'"$(jq -r .error.kind "$E2E/cli-fc.json")"'"'

# ---- SSE: each line arrives when written, 3 s before the end; the result event last
stamp() { while IFS= read -r l; do printf '%s %s\n' "$(date +%s.%N)" "$l"; done; }
rpc "$(req sandbox.run '{"image":"bb","stream":true,"command":["sh","-c","echo early; sleep 3; echo late >&2"]}')" -N | stamp >"$E2E/sse"
t_early=$(awk '/data: \{"data":"early/ {print $1; exit}' "$E2E/sse")
t_result=$(awk '/^[0-9.]+ event: result/ {print $1; exit}' "$E2E/sse")
events=$(awk '/ event: / {print $3}' "$E2E/sse" | tr '\n' ' ')
expect_eq sse-events "$events" "stdout stderr result "
if [ -n "$t_early" ] && [ -n "$t_result" ] && awk -v a="$t_early" -v b="$t_result" 'BEGIN { exit !(b - a > 2.0) }'; then
	pass sse-streams-as-written
else
	fail sse-streams-as-written "early at $t_early, result at $t_result: $(head -c 400 "$E2E/sse")"
fi
res=$(sed -n 's/^[0-9.]* data: //p' "$E2E/sse" | tail -n 1)
expect_json sse-result-is-response "$res" '.jsonrpc == "2.0" and .id == 1 and .result.stdout == "early\n" and .result.stderr == "late\n"'
rpc "$(req sandbox.run '{"image":"bb","command":["echo","acc"]}')" -N -H 'Accept: text/event-stream' >"$E2E/sse2"
grep -q '^event: stdout' "$E2E/sse2" && grep -q '^event: result' "$E2E/sse2" && pass sse-by-accept || fail sse-by-accept "$(head -c 300 "$E2E/sse2")"

# ---- a client that goes away cancels its run, and nothing is left
rpc "$(req sandbox.run '{"image":"bb","command":["sleep","120"]}')" --max-time 6 >/dev/null 2>&1
serve_leftovers disconnect-cancels
rpc "$(req sandbox.run '{"image":"bb","stream":true,"command":["sh","-c","echo x; sleep 120"]}')" -N --max-time 6 >/dev/null 2>&1
serve_leftovers disconnect-sse-cancels

# ---- WebSocket, two clients
if /usr/bin/python3 -c 'import websockets' 2>/dev/null; then
	/usr/bin/python3 "$HOTCELL_TOP/tests/lib/ws-client.py" "$SRV_PORT" "$TOKEN" bb
	serve_leftovers ws-disconnect-cancels
else
	skip ws-python "python3-websockets is not installed"
fi
if command -v node >/dev/null && [ -d /usr/share/nodejs/ws ]; then
	NODE_PATH=/usr/share/nodejs node "$HOTCELL_TOP/tests/lib/ws-client.js" "$SRV_PORT" "$TOKEN" bb
else
	skip ws-node "node or node-ws is not installed"
fi

# ---- many at once: not serialised, no failure, nothing left
t0=$(date +%s.%N)
seq 1 "$N_CONC" | xargs -P "$N_CONC" -I{} curl -sS --max-time 600 -H "Authorization: Bearer $TOKEN" \
	--data-binary "$(req sandbox.run '{"image":"bb","command":["echo","n"]}' '{}')" "$SRV_URL" -o "$E2E/conc-{}.json"
t1=$(date +%s.%N)
ok=$(cat "$E2E"/conc-*.json | jq -s '[.[] | select(.result.exit_code == 0 and .result.stdout == "n\n")] | length')
# Every one must run: no_timer_check on the TCG kernel command line (src/vmm/qemu.c) keeps a
# starved guest from failing its boot-time timer check.
if [ "$ok" -eq "$N_CONC" ]; then
	pass "concurrent-$N_CONC"
else
	fail "concurrent-$N_CONC" "$ok of $N_CONC ran: $(cat "$E2E"/conc-*.json | jq -rs '[.[] | select(.result.stdout != "n\n") | (.error.message // .result.stderr // "?")[:200]] | unique | join(" | ")')"
fi
echo "INFO: $N_CONC concurrent sandbox.run: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s wall"
serve_leftovers concurrent-clean
serve_stop
expect_eq sigterm-exit-0 "$SRV_RC" 0

# ---- --max-runs: past it a clear error at once, not a queue
serve_start --max-runs 1 --default-memory-mib 128 || exit 1
rpc "$(req sandbox.run '{"image":"bb","command":["sleep","8"]}')" >"$E2E/long.json" &
cpid=$!
for _ in $(seq 1 100); do pgrep -f "$E2E/run" >/dev/null && break; sleep 0.1; done
r=$(rpc "$(req sandbox.run '{"image":"bb","command":["true"]}' 2)" --max-time 20)
expect_json max-runs "$r" '.error.code == -32001 and .error.data.kind == "limit" and (.error.message | test("max-runs"))'
wait $cpid
expect_json max-runs-first-ran "$(cat "$E2E/long.json")" '.result.exit_code == 0'

# ---- SIGTERM mid-run: the run is cancelled and answered, the server exits 0, nothing left
rpc "$(req sandbox.run '{"image":"bb","command":["sh","-c","echo up; sleep 120"]}')" >"$E2E/term.json" &
cpid=$!
for _ in $(seq 1 300); do pgrep -f "$E2E/run" >/dev/null && break; sleep 0.1; done
sleep 2
serve_stop
wait $cpid
expect_eq sigterm-mid-run-exit-0 "$SRV_RC" 0
expect_json sigterm-run-cancelled "$(cat "$E2E/term.json")" '.error.data.kind == "cancelled"'
serve_leftovers sigterm-clean

# ---- persistent VMs outlive the server and are listed by the next one
serve_start --default-memory-mib 128 --max-vms 1 || exit 1
r=$(rpc "$(req vm.create '{"image":"bb","name":"keep"}')")
expect_json vm-create "$r" '.result.name == "keep" and .result.status == "running" and (.result.id | length) == 64'
id=$(jq -r .result.id <<<"$r")
r=$(rpc "$(req vm.create '{"image":"bb","name":"second"}')")
expect_json max-vms "$r" '.error.code == -32001 and (.error.message | test("max-vms"))'
serve_stop
serve_start --default-memory-mib 128 || exit 1
r=$(rpc "$(req vm.list '{}')")
expect_json vm-survives-restart "$r" '[.result[] | select(.id == "'"$id"'" and .status == "running")] | length == 1'
r=$(rpc "$(req vm.pause '{"id":"keep"}')")
expect_json vm-pause "$r" '.result == {}'
r=$(rpc "$(req vm.get '{"id":"keep"}')")
expect_json vm-get-paused "$r" '.result.status == "paused"'
r=$(rpc "$(req vm.resume '{"id":"keep"}')")
expect_json vm-resume "$r" '.result == {}'
r=$(rpc "$(req vm.exec '{"id":"keep","command":["sh","-c","echo hi $A; cat; echo e >&2; exit 4"],"env":{"A":"b"},"stdin":"in\n"}')")
expect_json vm-exec "$r" '.result.exit_code == 4 and .result.stdout == "hi b\nin\n" and .result.stderr == "e\n" and .result.console_output == "hi b\nin\ne\n" and .result.backend != null'
rpc "$(req vm.exec '{"id":"keep","stream":true,"command":["sh","-c","echo one; sleep 1; echo two >&2"]}')" -N >"$E2E/vsse"
events=$(awk '/^event: / {print $2}' "$E2E/vsse" | tr '\n' ' ')
expect_eq vm-exec-sse "$events" "stdout stderr result "
rpc "$(req vm.exec '{"id":"keep","command":["sleep","120"]}')" --max-time 5 >/dev/null 2>&1
sleep 2
r=$(rpc "$(req vm.exec '{"id":"keep","command":["sh","-c","ps | grep -v grep | grep -c \"sleep 120\" || true"]}')")
expect_json vm-exec-disconnect-cancels "$r" '.result.stdout == "0\n"'
r=$(rpc "$(req vm.write_file '{"id":"keep","path":"/tmp/f.bin","content":"AAH/aGk=","mode":384}')")
expect_json vm-write-file "$r" '.result == {}'
r=$(rpc "$(req vm.read_file '{"id":"keep","path":"/tmp/f.bin"}')")
expect_json vm-read-file "$r" '.result.content == "AAH/aGk=" and .result.mode == 384 and .result.size == 5'
r=$(rpc "$(req vm.read_file '{"id":"keep","path":"/nonexistent"}')")
expect_json vm-read-file-missing "$r" '.error.code == -32000'
r=$(rpc "$(req vm.exec '{"id":"keep"}')")
expect_json vm-exec-no-command "$r" '.error.code == -32602 and .error.data.param == "command"'
r=$(rpc "$(req vm.get '{"id":"nope"}')")
expect_json vm-get-unknown "$r" '.error.code == -32000'
r=$(rpc "$(req vm.destroy '{"id":"keep"}')")
expect_json vm-destroy "$r" '.result == {}'
r=$(rpc "$(req vm.list '{}')")
expect_json vm-gone "$r" '.result == []'
serve_stop
serve_leftovers vm-clean
finish
