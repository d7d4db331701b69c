#!/usr/bin/env bash
# Executors end to end (docs/executors.md), real VMs: python3 and node images built offline from
# Debian's packages (tests/lib/mkimage-debian.sh) with the handlers of tests/e2e/executor/ in
# /app. Through `hotcell serve --registry`: handlers that return values, print, are async,
# raise, return what JSON cannot hold, time out; an ES module; a dotted module from the
# WorkingDir; "command" functions (stdout as the result, /hotcell/result.json, stdout that is
# not JSON); max_concurrency and --max-runs; `hotcell invoke` (the same method); registry
# files with mistakes refused at start; SIGHUP reload under load (the calls in flight finish
# with the version they started with, new calls get the new one, a bad file keeps the old).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
need_tools executor curl jq tar dpkg-deb
SRV_DIR=$E2E/srv
mkdir -p "$SRV_DIR"
source "$(dirname "$0")/../lib/serve.sh"
source "$(dirname "$0")/../lib/mkimage-debian.sh"
trap 'serve_cleanup; e2e_cleanup' EXIT
HANDLERS=$HOTCELL_TOP/tests/e2e/executor

e2e_image bb || exit 1
e2e_image bbep --entrypoint /bin/false || exit 1
# debian_image NAME PKG FILE...: the cached image of PKG with FILEs (of tests/e2e/executor/)
# in /app, loaded as NAME; SKIP (1) when PKG's packages are not there.
debian_image() {
	local name=$1 pkg=$2 base
	shift 2
	if ! base=$(mkimage_debian "$pkg" 2>"$E2E/mk-$name.log"); then
		skip "executor-$name" "$(tail -n 1 "$E2E/mk-$name.log")"
		return 1
	fi
	mkdir -p "$E2E/app-$name/app" && (cd "$HANDLERS" && cp -r "$@" "$E2E/app-$name/app/")
	if ! mkimage_debian_with "$base" "$E2E/layout-$name" "$E2E/app-$name" ||
		! "$HC" load --name "$name" "$E2E/layout-$name" >/dev/null 2>"$E2E/load.log"; then
		fail "image-$name" "$(tail -n 3 "$E2E/load.log")"
		return 1
	fi
}
have_py=0 have_node=0
debian_image py python3 handlers.py pkg && have_py=1
debian_image node nodejs index.js lib && have_node=1

req() { printf '{"jsonrpc":"2.0","method":"%s","params":%s,"id":%s}' "$1" "$2" "${3:-1}"; }
invoke() { rpc "$(req executor.invoke "$(jq -cn --arg n "$1" --argjson i "$2" '{name: $n, input: $i}')")"; }

REG=$E2E/registry.json
cat >"$REG" <<'JSON'
{
  "py-echo":     {"image": "py", "runtime": "python", "handler": "handlers:echo", "env": {"SECRET": "s3"}, "timeout_secs": 180},
  "py-add":      {"image": "py", "runtime": "python", "handler": "handlers:add", "timeout_secs": 180},
  "py-boom":     {"image": "py", "runtime": "python", "handler": "handlers:boom", "timeout_secs": 180},
  "py-nonjson":  {"image": "py", "runtime": "python", "handler": "handlers:nonjson", "timeout_secs": 180},
  "py-pkg":      {"image": "py", "runtime": "python", "handler": "pkg.mod:twice", "timeout_secs": 180},
  "py-missing":  {"image": "py", "runtime": "python", "handler": "handlers:nope", "timeout_secs": 180},
  "py-sleepy":   {"image": "py", "runtime": "python", "handler": "handlers:sleepy", "timeout_secs": 3},
  "node-echo":   {"image": "node", "runtime": "node", "handler": "index.js#echo", "timeout_secs": 180},
  "node-add":    {"image": "node", "runtime": "node", "handler": "index.js#add", "timeout_secs": 180},
  "node-boom":   {"image": "node", "runtime": "node", "handler": "index.js#boom", "timeout_secs": 180},
  "node-nonjson":{"image": "node", "runtime": "node", "handler": "index.js#nonjson", "timeout_secs": 180},
  "node-esm":    {"image": "node", "runtime": "node", "handler": "lib/esm.mjs#hi", "timeout_secs": 180},
  "node-lingers":{"image": "node", "runtime": "node", "handler": "index.js#lingers", "timeout_secs": 180},
  "wc":          {"image": "bb", "runtime": "command", "handler": ["wc", "-c"], "memory_mib": 128},
  "tee-result":  {"image": "bb", "runtime": "command", "handler": ["sh", "-c", "cat >/hotcell/result.json"], "memory_mib": 128},
  "not-json":    {"image": "bb", "runtime": "command", "handler": ["echo", "plain words"], "memory_mib": 128},
  "entrypoint":  {"image": "bbep", "runtime": "command", "handler": ["echo", "1"], "memory_mib": 128},
  "env":         {"image": "bb", "runtime": "command", "handler": ["sh", "-c", "printf '\"%s\"' \"$GREETING\""], "env": {"GREETING": "hej"}, "memory_mib": 128},
  "one-at-a-time": {"image": "bb", "runtime": "command", "handler": ["sh", "-c", "sleep 6; echo 1"], "max_concurrency": 1, "memory_mib": 128}
}
JSON

# ---- registry files with mistakes: refused at start, one line naming the function and field
bad_registry() { # NAME CONTENT WANT...
	local name=$1 content=$2 out
	shift 2
	printf '%s' "$content" >"$E2E/bad.json"
	printf 'tok\n' >"$E2E/tok"
	timeout 30 "$HC" serve --listen 127.0.0.1:0 --registry "$E2E/bad.json" --auth-token-file "$E2E/tok" >/dev/null 2>"$E2E/bad.err"
	rc=$?
	out=$(cat "$E2E/bad.err")
	local w ok=1
	for w in "$@"; do grep -qF -- "$w" <<<"$out" || ok=0; done
	if [ $rc -eq 125 ] && [ $ok -eq 1 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && ! grep -q listening <<<"$out"; then
		pass "registry-$name"
	else
		fail "registry-$name" "rc=$rc: $out"
	fi
}
bad_registry not-json '{"f": {' "$E2E/bad.json" "line"
bad_registry no-image '{"f": {"runtime": "python", "handler": "m:f"}}' "function 'f'" "'image'"
bad_registry bad-runtime '{"f": {"image": "py", "runtime": "ruby", "handler": "m:f"}}' "function 'f'" "'runtime'"
bad_registry unknown-field '{"g": {"image": "py", "runtime": "python", "handler": "m:f", "cpus": 2}}' "function 'g'" "unknown field 'cpus'"
bad_registry bad-handler '{"h": {"image": "n", "runtime": "node", "handler": "index.js"}}' "function 'h'" "'handler'" "FILE#FUNCTION"
bad_registry bad-memory '{"m": {"image": "py", "runtime": "python", "handler": "m:f", "memory_mib": 3}}' "function 'm'" "memory_mib"
bad_registry missing-file '' "$E2E/bad.json"
rm -f "$E2E/bad.json"
bad_registry no-such-file '' "$E2E/bad.json"
"$HC" invoke --registry "$E2E/nope.json" wc '"x"' >"$E2E/inv.json" 2>"$E2E/inv.err"
rc=$?
if [ $rc -eq 125 ] && grep -qF "$E2E/nope.json" "$E2E/inv.err" && jq -e '.error.kind == "usage"' "$E2E/inv.json" >/dev/null; then pass invoke-bad-registry; else fail invoke-bad-registry "rc=$rc $(cat "$E2E/inv.err")"; fi

serve_start --registry "$REG" || exit 1

r=$(rpc "$(req executor.list '{}')")
expect_json list "$r" '[.result[].name] | length == 19 and index("py-echo") != null and index("wc") != null'
expect_json list-env-names-only "$r" '[.result[] | select(.name == "py-echo")][0].env == ["SECRET"] and ([.. | strings | select(. == "s3")] | length == 0)'
r=$(invoke nope null)
expect_json invoke-unknown "$r" '.error.code == -32602 and .error.data.param == "name" and (.error.message | test("nope"))'

# ---- command functions
r=$(invoke wc '"hello"')
expect_json command-stdout-result "$r" '.result.exit_code == 0 and .result.result == 7 and .result.handler_error == null and .result.function == "wc" and (.result.timings_ms | type) == "object"'
r=$(invoke tee-result '{"k":[1,2,{"x":null}]}')
expect_json command-result-file "$r" '.result.result == {"k":[1,2,{"x":null}]}'
r=$(invoke not-json null)
expect_json command-stdout-not-json "$r" '.result.result == null and .result.stdout == "plain words\n" and (.result.result_error | test("not JSON"))'
r=$(invoke env null)
expect_json command-env "$r" '.result.result == "hej"'
r=$(invoke entrypoint null)
expect_json command-not-behind-entrypoint "$r" '.result.exit_code == 0 and .result.result == 1'

# ---- Python
if [ $have_py -eq 1 ]; then
	r=$(invoke py-echo '{"a":[1,"two"]}')
	expect_json py-returns "$r" '.result.exit_code == 0 and .result.result == {"got":{"a":[1,"two"]},"lang":"python"} and .result.handler_error == null'
	expect_json py-prints "$r" '.result.stdout == "hello from python\n" and .result.stderr == "to stderr\n"'
	r=$(invoke py-add '{"a":2,"b":3}')
	expect_json py-async "$r" '.result.result == 5'
	r=$(invoke py-pkg '21')
	expect_json py-workdir-package "$r" '.result.result == 42'
	r=$(invoke py-boom '"x"')
	expect_json py-raises "$r" '.result.exit_code != 0 and .result.result == null and .result.handler_error.type == "ValueError" and (.result.handler_error.message | test("bad input")) and (.result.handler_error.traceback | test("in boom"))'
	r=$(invoke py-nonjson null)
	expect_json py-non-json "$r" '.result.exit_code != 0 and (.result.handler_error.message | test("not JSON-serialisable")) and (.result.handler_error.message | test("set"))'
	r=$(invoke py-missing null)
	expect_json py-missing-handler "$r" '.result.handler_error.type == "AttributeError" and (.result.handler_error.message | test("nope"))'
	r=$(invoke py-sleepy '{"secs":60}')
	expect_json py-timeout "$r" '.result.timed_out == true and .result.exit_code == null and .result.result == null'
	# the same method from the command line
	"$HC" invoke --registry "$REG" --default-timeout-secs 180 py-add '{"a":40,"b":2}' >"$E2E/inv.json" 2>"$E2E/inv.err"
	rc=$?
	if [ $rc -eq 0 ] && jq -e '.result == 42 and .function == "py-add"' "$E2E/inv.json" >/dev/null; then pass invoke-cli; else fail invoke-cli "rc=$rc $(head -c 400 "$E2E/inv.json") $(cat "$E2E/inv.err")"; fi
	echo '"via stdin"' | "$HC" invoke --registry "$REG" --default-timeout-secs 180 py-boom - >"$E2E/inv.json" 2>"$E2E/inv.err"
	rc=$?
	if [ $rc -eq 1 ] && jq -e '.handler_error.type == "ValueError" and (.handler_error.message | test("via stdin"))' "$E2E/inv.json" >/dev/null; then pass invoke-cli-handler-error; else fail invoke-cli-handler-error "rc=$rc $(head -c 400 "$E2E/inv.json")"; fi
fi

# ---- Node.js
if [ $have_node -eq 1 ]; then
	r=$(invoke node-echo '{"a":1}')
	expect_json node-returns "$r" '.result.exit_code == 0 and .result.result == {"got":{"a":1},"lang":"node"}'
	expect_json node-prints "$r" '.result.stdout == "hello from node\n" and .result.stderr == "to stderr\n"'
	r=$(invoke node-add '{"a":2,"b":3}')
	expect_json node-async "$r" '.result.result == 5'
	r=$(invoke node-esm '"there"')
	expect_json node-esm "$r" '.result.result == "hi there"'
	r=$(invoke node-boom null)
	expect_json node-raises "$r" '.result.exit_code != 0 and .result.result == null and .result.handler_error.type == "RangeError" and .result.handler_error.message == "out of range" and (.result.handler_error.traceback | test("boom"))'
	r=$(invoke node-nonjson null)
	expect_json node-non-json "$r" '.result.exit_code != 0 and (.result.handler_error.message | test("not JSON-serialisable")) and (.result.handler_error.message | test("BigInt"))'
	r=$(invoke node-lingers null)
	expect_json node-open-timer-returns "$r" '.result.exit_code == 0 and .result.result == "done" and .result.timed_out == false'
fi

# ---- max_concurrency: past it an immediate error, not a queue
invoke one-at-a-time null >"$E2E/first.json" &
cpid=$!
for _ in $(seq 1 300); do pgrep -f "$E2E/run" >/dev/null && break; sleep 0.1; done
r=$(invoke one-at-a-time null)
expect_json max-concurrency "$r" '.error.code == -32001 and .error.data.kind == "limit" and (.error.message | test("max_concurrency 1"))'
r=$(invoke wc '"other functions still run"')
expect_json max-concurrency-per-function "$r" '.result.exit_code == 0'
wait $cpid
expect_json max-concurrency-first-ran "$(cat "$E2E/first.json")" '.result.result == 1'
serve_stop
expect_eq serve-exit-0 "$SRV_RC" 0
serve_leftovers executor-clean

# ---- --max-runs applies to executors too
serve_start --registry "$REG" --max-runs 1 || exit 1
invoke one-at-a-time null >"$E2E/first.json" &
cpid=$!
for _ in $(seq 1 300); do pgrep -f "$E2E/run" >/dev/null && break; sleep 0.1; done
r=$(invoke wc '"x"')
expect_json max-runs "$r" '.error.code == -32001 and (.error.message | test("max-runs"))'
wait $cpid
serve_stop

# ---- SIGHUP under load: calls in flight finish with their version; new ones get the new one
cat >"$E2E/reg-v1.json" <<'JSON'
{"slow": {"image": "bb", "runtime": "command", "handler": ["sh", "-c", "sleep 5; echo '{\"v\": 1}'"], "memory_mib": 128}}
JSON
cat >"$E2E/reg-v2.json" <<'JSON'
{"slow": {"image": "bb", "runtime": "command", "handler": ["sh", "-c", "echo '{\"v\": 2}'"], "memory_mib": 128},
 "added": {"image": "bb", "runtime": "command", "handler": ["echo", "true"], "memory_mib": 128}}
JSON
cp "$E2E/reg-v1.json" "$E2E/reg.json"
# (info: the reload's own line)
HOTCELL_LOG=info serve_start --registry "$E2E/reg.json" || exit 1
pids=()
for i in 1 2 3; do
	invoke slow null >"$E2E/load-$i.json" &
	pids+=($!)
done
for _ in $(seq 1 300); do [ "$(pgrep -fc "$E2E/run" 2>/dev/null)" -ge 3 ] && break; sleep 0.1; done
cp "$E2E/reg-v2.json" "$E2E/reg.json"
kill -HUP "$SRV_PID"
for _ in $(seq 1 50); do grep -q 'reloaded' "$SRV_LOG" && break; sleep 0.1; done
r=$(invoke slow null)
expect_json reload-new-calls-new-version "$r" '.result.result == {"v": 2}'
r=$(invoke added null)
expect_json reload-new-function "$r" '.result.result == true'
wait "${pids[@]}"
ok=0
for i in 1 2 3; do jq -e '.result.exit_code == 0 and .result.result == {"v": 1}' "$E2E/load-$i.json" >/dev/null && ok=$((ok + 1)); done
if [ $ok -eq 3 ]; then pass reload-calls-in-flight-complete; else fail reload-calls-in-flight-complete "$ok of 3: $(cat "$E2E"/load-*.json | head -c 600)"; fi
echo '{"slow": {"image": "bb"}}' >"$E2E/reg.json"
kill -HUP "$SRV_PID"
for _ in $(seq 1 50); do grep -q 'not reloaded' "$SRV_LOG" && break; sleep 0.1; done
if grep -q "not reloaded.*function 'slow'.*runtime" "$SRV_LOG"; then pass reload-bad-file-logged; else fail reload-bad-file-logged "$(tail -n 3 "$SRV_LOG")"; fi
r=$(invoke added null)
expect_json reload-bad-file-keeps-old "$r" '.result.result == true'
serve_stop
expect_eq reload-serve-exit-0 "$SRV_RC" 0
serve_leftovers reload-clean
finish
