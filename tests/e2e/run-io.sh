#!/usr/bin/env bash
# hotcell run end to end (real VMs), the data path: binary output byte for byte (streamed and
# base64 in the JSON), stdin round trip with -i, 5 MB of output, --output-limit truncation,
# /hotcell/result.json into `result` (and an invalid one into `result_error`).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init

e2e_image bb || exit 1
sum() { sha256sum | cut -d' ' -f1; }

# Binary, streamed: the image's busybox comes back identical (the first run builds the cache).
SNAP=
e2e_run bb cat /bin/busybox
expect binary-stream '[ "$rc" -eq 0 ] && [ "$(sum <"$E2E/out")" == "$(sum </bin/busybox)" ]'
e2e_clean binary-stream
e2e_snapshot

# Binary, captured: not UTF-8, so base64 in the JSON; every byte value, NUL included.
e2e_json bb sh -c 'i=0; while [ $i -lt 256 ]; do printf "\\$(printf %o $i)"; i=$((i+1)); done'
expect binary-json-encoding '[ "$rc" -eq 0 ] && [ "$(jqr .stdout_encoding)" == base64 ]'
expect binary-json-bytes '[ "$(jqr .stdout | base64 -d | sum)" == "$(for i in $(seq 0 255); do printf "\\$(printf %o $i)"; done | sum)" ]'
e2e_clean binary-json

# stdin round trip: a binary file in, its checksum and a copy out (one boot: tee to stderr).
e2e_run -i bb sh -c 'tee /tmp/in | sha256sum | cut -d" " -f1 >&2; cat /tmp/in' </bin/busybox
expect stdin-roundtrip '[ "$rc" -eq 0 ] && [ "$(sum <"$E2E/out")" == "$(sum </bin/busybox)" ] && [ "$(cat "$E2E/err")" == "$(sum </bin/busybox)" ]'
e2e_clean stdin

# 5 MB streamed, all of it.
e2e_run bb sh -c 'head -c 5000000 /dev/zero | tr "\\0" x; echo done >&2'
expect output-5mb '[ "$rc" -eq 0 ] && [ "$(wc -c <"$E2E/out")" -eq 5000000 ] && [ "$(tr -d x <"$E2E/out" | wc -c)" -eq 0 ] && [ "$(cat "$E2E/err")" == done ]'
e2e_clean output-5mb

# 5 MB captured with --output-limit: truncated to the limit, flagged, and the run still ends
# with the command's status (the rest was drained, not left to block the guest).
e2e_json --output-limit 1000 bb sh -c 'head -c 5000000 /dev/zero | tr "\\0" y; echo short >&2; exit 3'
expect output-limit '[ "$rc" -eq 3 ] && [ "$(jqr ".stdout | length")" -eq 1000 ] && [ "$(jqr .stdout_truncated)" == true ]'
expect output-limit-other-stream '[ "$(jqr .stderr)" == short ] && [ "$(jqr .stderr_truncated)" == false ]'
e2e_clean output-limit

# A reader that goes away: the command gets SIGPIPE, as in a local pipeline, and the run ends
# with 128+13 instead of writing into the void until its timeout.
"$HC" run ${HOTCELL_E2E_RUN_ARGS:-} bb yes 2>"$E2E/err" | head -n 2 >"$E2E/out"
rc=${PIPESTATUS[0]}
expect stdout-reader-gone '[ "$(cat "$E2E/out")" == "$(printf "y\ny")" ] && [ "$rc" -eq 141 ]'
e2e_clean stdout-reader-gone

# result.json, as parsed JSON.
e2e_json bb sh -c 'echo "{\"answer\": 42, \"list\": [1, \"two\"]}" >/hotcell/result.json'
expect result-json '[ "$rc" -eq 0 ] && [ "$(jqr .result.answer)" == 42 ] && [ "$(jqr .result.list[1])" == two ]'
e2e_clean result-json

# An invalid one: null plus result_error, the run itself fine.
e2e_json bb sh -c 'echo "{not json" >/hotcell/result.json'
expect result-invalid '[ "$rc" -eq 0 ] && [ "$(jqr .result)" == null ] && [ -n "$(jqr .result_error)" ] && [ "$(jqr .result_error)" != null ]'
e2e_clean result-invalid

finish
