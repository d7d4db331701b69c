#!/usr/bin/env bash
# `hotcell serve` over real sockets without a VM: auth, every JSON-RPC error the spec defines,
# batches and notifications, id types, limits and the attacks (no token, wrong token, token in
# a query string, oversized bodies, malformed JSON, a batch of 10k, deep nesting, slow
# headers, malformed WebSocket frames) — each a clear error, and the server keeps serving.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/serve.sh"
need_tools serve-api curl jq
[ -x /usr/bin/python3 ] || { skip serve-api "/usr/bin/python3 is not installed"; exit 0; }
hc_tmp_home
trap 'serve_cleanup; rm -rf "$HOTCELL_HOME"' EXIT
WSRAW="/usr/bin/python3 $HOTCELL_TOP/tests/lib/ws-raw.py"

# ---- refuses to start without a token
out=$(env -u HOTCELL_AUTH_TOKEN "$HC" serve --listen 127.0.0.1:0 2>&1)
rc=$?
if [ "$rc" -eq 125 ] && grep -q 'no auth token' <<<"$out"; then pass no-token-refused; else fail no-token-refused "rc=$rc: $out"; fi
: >"$HOTCELL_HOME/empty"
out=$("$HC" serve --listen 127.0.0.1:0 --auth-token-file "$HOTCELL_HOME/empty" 2>&1)
rc=$?
if [ "$rc" -eq 125 ] && grep -q 'empty' <<<"$out"; then pass empty-token-refused; else fail empty-token-refused "rc=$rc: $out"; fi
out=$("$HC" serve --listen nonsense --auth-token-file /dev/null 2>&1)
[ $? -eq 125 ] && pass bad-args-refused || fail bad-args-refused "$out"
out=$(HOTCELL_AUTH_TOKEN=x "$HC" serve --listen 127.0.0.1:0 --default-backend nope 2>&1)
if [ $? -eq 125 ] && grep -q 'default-backend' <<<"$out"; then pass bad-default-refused; else fail bad-default-refused "$out"; fi

HOTCELL_LOG=debug serve_start --idle-timeout 2 || exit 1
H=(-H "Authorization: Bearer $TOKEN")
health='{"jsonrpc":"2.0","method":"health","id":1}'

# ---- auth: 401 with a JSON body, whatever is wrong
expect_eq auth-none "$(rpc_status "$health")" 401
expect_eq auth-wrong "$(rpc_status "$health" -H 'Authorization: Bearer wrong')" 401
expect_eq auth-prefix "$(rpc_status "$health" -H "Authorization: Bearer ${TOKEN:0:10}")" 401
expect_eq auth-longer "$(rpc_status "$health" -H "Authorization: Bearer ${TOKEN}x")" 401
expect_eq auth-basic "$(rpc_status "$health" -H "Authorization: Basic $TOKEN")" 401
expect_eq auth-query "$(curl -s -o /dev/null -w '%{http_code}' --data-binary "$health" "$SRV_URL?access_token=$TOKEN")" 401
body=$(curl -s --data-binary "$health" "$SRV_URL")
expect_json auth-json-body "$body" '.error.code == -32000 and .error.data.kind == "auth" and .id == null'
expect_eq auth-ok "$(rpc_status "$health" "${H[@]}")" 200
expect_eq auth-scheme-case "$(rpc_status "$health" -H "Authorization: bearer $TOKEN")" 200

# ---- methods and routes
r=$(rpc "$health")
expect_json health "$r" '.jsonrpc == "2.0" and .id == 1 and .result.status == "ok" and (.result.version | type) == "string" and (.result.backends | type) == "array"'
r=$(rpc '{"jsonrpc":"2.0","method":"image.list","id":2}')
expect_json image-list "$r" '.result == []'
expect_eq route-404 "$(curl -s -o /dev/null -w '%{http_code}' "${H[@]}" "http://127.0.0.1:$SRV_PORT/nope")" 404
expect_eq route-405 "$(curl -s -o /dev/null -w '%{http_code}' "${H[@]}" "$SRV_URL")" 405

# ---- JSON-RPC errors, as the spec's examples
r=$(rpc '{"jsonrpc":"2.0","method":"health","params":"bar","id":1')
expect_json parse-error "$r" '.error.code == -32700 and .id == null'
r=$(rpc '{"jsonrpc": "2.0", "method": 1, "params": "bar"}')
expect_json invalid-request "$r" '.error.code == -32600 and .id == null'
r=$(rpc '{"jsonrpc":"1.0","method":"health","id":1}')
expect_json invalid-version "$r" '.error.code == -32600'
r=$(rpc '{"method":"health","id":1}')
expect_json missing-version "$r" '.error.code == -32600'
r=$(rpc '1')
expect_json not-an-object "$r" '.error.code == -32600'
r=$(rpc '[]')
expect_json empty-batch "$r" '(type == "object") and .error.code == -32600'
r=$(rpc '[1,2,3]')
expect_json batch-of-garbage "$r" 'length == 3 and all(.[]; .error.code == -32600 and .id == null)'
r=$(rpc '{"jsonrpc":"2.0","method":"foobar","id":"1"}')
expect_json method-not-found "$r" '.error.code == -32601 and .id == "1"'
r=$(rpc '{"jsonrpc":"2.0","method":"health","params":{"x":1},"id":3}')
expect_json invalid-params "$r" '.error.code == -32602 and .error.data.param == "x"'
r=$(rpc '{"jsonrpc":"2.0","method":"health","params":[1],"id":3}')
expect_json positional-params "$r" '.error.code == -32602'
r=$(rpc '{"jsonrpc":"2.0","method":"sandbox.run","params":{"command":["true"]},"id":4}')
expect_json param-required "$r" '.error.code == -32602 and .error.data.param == "image"'
r=$(rpc '{"jsonrpc":"2.0","method":"sandbox.run","params":{"image":"x","vcpus":"many"},"id":5}')
expect_json param-bad-value "$r" '.error.code == -32602 and .error.data.param == "vcpus" and (.error.message | test("vcpus"))'
r=$(rpc '{"jsonrpc":"2.0","method":"sandbox.run","params":{"image":"x","cpus":2},"id":6}')
expect_json param-cli-spelling "$r" '.error.code == -32602 and .error.data.param == "cpus" and (.error.message | test("vcpus"))'
r=$(rpc '{"jsonrpc":"2.0","method":"sandbox.run","params":{"image":"x","stdin":"@@","stdin_encoding":"base64"},"id":7}')
expect_json param-bad-base64 "$r" '.error.code == -32602 and .error.data.param == "stdin"'
r=$(rpc '{"jsonrpc":"2.0","method":"sandbox.run","params":{"image":"nosuchimage:1","pull":"never","command":["true"]},"id":8}')
expect_json hotcell-error "$r" '.error.code == -32000 and (.error.data.kind | type) == "string" and (.error.message | length) > 0'

# ---- ids: string, number, null, fraction echoed as given; an object id is invalid
r=$(rpc '{"jsonrpc":"2.0","method":"health","id":"abc"}')
expect_json id-string "$r" '.id == "abc"'
r=$(rpc '{"jsonrpc":"2.0","method":"health","id":-7}')
expect_json id-number "$r" '.id == -7'
r=$(rpc '{"jsonrpc":"2.0","method":"health","id":1.5}')
expect_json id-fraction "$r" '.id == 1.5'
r=$(rpc '{"jsonrpc":"2.0","method":"health","id":null}')
expect_json id-null "$r" '.id == null and .result.status == "ok"'
r=$(rpc '{"jsonrpc":"2.0","method":"health","id":{"a":1}}')
expect_json id-object "$r" '.error.code == -32600 and .id == null'

# ---- notifications: no answer, also in batches, also when they fail
code=$(curl -s -o "$SRV_DIR/body" -w '%{http_code}' "${H[@]}" --data-binary '{"jsonrpc":"2.0","method":"health"}' "$SRV_URL")
if [ "$code" == 204 ] && [ ! -s "$SRV_DIR/body" ]; then pass notification; else fail notification "HTTP $code: $(cat "$SRV_DIR/body")"; fi
code=$(curl -s -o "$SRV_DIR/body" -w '%{http_code}' "${H[@]}" --data-binary '[{"jsonrpc":"2.0","method":"health"},{"jsonrpc":"2.0","method":"nope"}]' "$SRV_URL")
if [ "$code" == 204 ] && [ ! -s "$SRV_DIR/body" ]; then pass notification-batch; else fail notification-batch "HTTP $code: $(cat "$SRV_DIR/body")"; fi
r=$(rpc '[{"jsonrpc":"2.0","method":"health","id":"1"},{"jsonrpc":"2.0","method":"health"},{"foo":"boo"},{"jsonrpc":"2.0","method":"nope","id":"5"},{"jsonrpc":"2.0","method":"image.list","id":"9"}]')
expect_json batch-mixed "$r" 'length == 4 and .[0].id == "1" and .[1].error.code == -32600 and .[2].error.code == -32601 and .[2].id == "5" and .[3].id == "9"'

# ---- limits
python_big() { /usr/bin/python3 -c "import sys; sys.stdout.write($1)"; }
python_big '"[" + ",".join(["{\"jsonrpc\":\"2.0\",\"method\":\"health\",\"id\":%d}" % i for i in range(10000)]) + "]"' >"$SRV_DIR/batch10k"
r=$(curl -s "${H[@]}" --data-binary @"$SRV_DIR/batch10k" "$SRV_URL")
expect_json batch-10k "$r" '.error.code == -32600 and (.error.message | test("at most"))'
head -c $((9 << 20)) /dev/zero | tr '\0' ' ' >"$SRV_DIR/big"
code=$(curl -s -o "$SRV_DIR/body" -w '%{http_code}' "${H[@]}" --data-binary @"$SRV_DIR/big" "$SRV_URL")
if [ "$code" == 413 ] && jq -e '.error.message | test("larger than")' "$SRV_DIR/body" >/dev/null; then pass body-too-large; else fail body-too-large "HTTP $code: $(head -c 300 "$SRV_DIR/body")"; fi
code=$(curl -s -o "$SRV_DIR/body" -w '%{http_code}' "${H[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$SRV_DIR/big" "$SRV_URL")
# (curl may report the 100 Continue it got first: the body is what counts)
if [[ $code =~ ^(100|413)$ ]] && jq -e '.error.message | test("larger than")' "$SRV_DIR/body" >/dev/null; then pass body-too-large-chunked; else fail body-too-large-chunked "HTTP $code: $(head -c 300 "$SRV_DIR/body")"; fi
python_big '"[" * 100000 + "]" * 100000' >"$SRV_DIR/deep"
r=$(curl -s "${H[@]}" --data-binary @"$SRV_DIR/deep" "$SRV_URL")
expect_json deep-nesting "$r" '.error.code == -32700'
printf '{"jsonrpc":"2.0","method":"health","id":1,"params":{"x":"\xff"}}' >"$SRV_DIR/badutf8"
r=$(curl -s "${H[@]}" --data-binary @"$SRV_DIR/badutf8" "$SRV_URL")
expect_json bad-utf8 "$r" '.error.code == -32700'

# ---- slow headers: the connection is closed after --idle-timeout (2 s), others are served
exec 7<>"/dev/tcp/127.0.0.1/$SRV_PORT"
printf 'POST /api/v1/rpc HTTP/1.1\r\nHost: x\r\n' >&7
r=$(rpc "$health")
expect_json slow-headers-others-served "$r" '.result.status == "ok"'
t0=$SECONDS
if timeout 20 cat <&7 >/dev/null; then
	pass slow-headers-closed
else
	fail slow-headers-closed "the connection was still open after $((SECONDS - t0)) s"
fi
exec 7>&-
# a slow body too
exec 7<>"/dev/tcp/127.0.0.1/$SRV_PORT"
printf 'POST /api/v1/rpc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{' "$TOKEN" >&7
if timeout 20 cat <&7 >/dev/null; then pass slow-body-closed; else fail slow-body-closed "still open"; fi
exec 7>&-

# ---- WebSocket: auth, and malformed frames close that socket only
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Upgrade: websocket' -H 'Connection: Upgrade' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H 'Sec-WebSocket-Version: 13' "http://127.0.0.1:$SRV_PORT/api/v1/ws")
expect_eq ws-no-token "$code" 401
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H 'Upgrade: websocket' -H 'Connection: Upgrade' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H 'Sec-WebSocket-Version: 13' "http://127.0.0.1:$SRV_PORT/api/v1/ws?access_token=$TOKEN")
expect_eq ws-query-token "$code" 101
code=$(curl -s -o /dev/null -w '%{http_code}' "${H[@]}" "http://127.0.0.1:$SRV_PORT/api/v1/ws")
expect_eq ws-not-upgrade "$code" 400
out=$($WSRAW "$SRV_PORT" "$TOKEN" ok)
if grep -q '^status=101' <<<"$out" && grep -q '"status":"ok"' <<<"$out"; then pass ws-raw-ok; else fail ws-raw-ok "$out"; fi
out=$($WSRAW "$SRV_PORT" "$TOKEN" ping)
grep -q '^pong=hello' <<<"$out" && pass ws-ping || fail ws-ping "$out"
out=$($WSRAW "$SRV_PORT" "$TOKEN" badjson)
grep -q '"code":-32700' <<<"$out" && pass ws-bad-json || fail ws-bad-json "$out"
for c in unmasked badopcode rsv fragmented-control; do
	out=$($WSRAW "$SRV_PORT" "$TOKEN" $c)
	if grep -Eq '^close=1002|^closed' <<<"$out"; then pass "ws-$c"; else fail "ws-$c" "$out"; fi
done
out=$($WSRAW "$SRV_PORT" "$TOKEN" badutf8)
grep -Eq '^close=1007' <<<"$out" && pass ws-bad-utf8 || fail ws-bad-utf8 "$out"
out=$($WSRAW "$SRV_PORT" "$TOKEN" binary)
grep -Eq '^close=1003' <<<"$out" && pass ws-binary || fail ws-binary "$out"
out=$($WSRAW "$SRV_PORT" "$TOKEN" huge-length)
grep -Eq '^close=1009|^closed' <<<"$out" && pass ws-huge-length || fail ws-huge-length "$out"

# ---- after all that the server still serves, and never logged the token
r=$(rpc "$health")
expect_json still-serving "$r" '.result.status == "ok"'
serve_stop
expect_eq sigterm-exit-0 "$SRV_RC" 0
if grep -qF "$TOKEN" "$SRV_LOG"; then fail token-not-logged "the token is in the server's log"; else pass token-not-logged; fi
grep -q 'POST /api/v1/rpc' "$SRV_LOG" && pass debug-log-has-requests || fail debug-log-has-requests "$(head -c 300 "$SRV_LOG")"

# ---- unix socket, and the token from the environment
sock=$SRV_DIR/api.sock
HOTCELL_AUTH_TOKEN=envtoken "$HC" serve --listen "unix:$sock" 2>"$SRV_DIR/unix.log" &
SRV_PID=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
r=$(curl -s --unix-socket "$sock" -H 'Authorization: Bearer envtoken' --data-binary "$health" http://x/api/v1/rpc)
expect_json unix-socket "$r" '.result.status == "ok"'
mode=$(stat -c %a "$sock")
expect_eq unix-socket-mode "$mode" 600
out=$(HOTCELL_AUTH_TOKEN=x "$HC" serve --listen "unix:$sock" 2>&1)
if [ $? -eq 125 ] && grep -q 'listening there' <<<"$out"; then pass unix-socket-in-use; else fail unix-socket-in-use "$out"; fi
serve_stop
expect_eq unix-sigterm-exit-0 "$SRV_RC" 0
[ ! -e "$sock" ] && pass unix-socket-removed || fail unix-socket-removed "$sock is still there"
finish
