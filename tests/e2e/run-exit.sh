#!/usr/bin/env bash
# hotcell run end to end (real VMs): exit codes 0/1/7/127/126, a signal, stdout and stderr kept
# apart (streamed and captured), the JSON object, env/cwd/user from the image config and from
# flags. After each run: no process, runtime dir or state change left behind.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init

e2e_image bb || exit 1
e2e_image cfg --env FOO=from-image --env PATH=/bin --workdir /srv/app --user hc || exit 1

# 0, with the whole JSON object checked (the first run also builds the rootfs cache).
SNAP=
e2e_json bb sh -c 'echo out; echo err >&2; exit 0'
expect exit0-status '[ "$rc" -eq 0 ]'
expect exit0-json-exit_code '[ "$(jqr .exit_code)" == 0 ] && [ "$(jqr .signal)" == null ] && [ "$(jqr .timed_out)" == false ]'
expect exit0-json-streams '[ "$(jqr .stdout)" == out ] && [ "$(jqr .stderr)" == err ] && [ "$(jqr .stdout_encoding)" == utf-8 ]'
expect exit0-json-image '[ "$(jqr .image)" == localhost/bb:latest ] && [[ "$(jqr .image_digest)" =~ ^sha256:[0-9a-f]{64}$ ]]'
expect exit0-json-backend '[ "$(jqr .backend)" == qemu ] && [[ "$(jqr .accel)" =~ ^(kvm|tcg)$ ]]'
expect exit0-json-timings '[ "$(jqr "[.timings_ms.rootfs, .timings_ms.boot, .timings_ms.exec, .timings_ms.teardown, .timings_ms.total] | map(type) | unique | .[0]")" == number ] && [ "$(jqr ".timings_ms.boot > 0 and .timings_ms.total >= .timings_ms.boot")" == true ]'
expect exit0-json-result-null '[ "$(jqr .result)" == null ] && [ "$(jqr "has(\"result_error\")")" == false ]'
e2e_clean exit0
e2e_snapshot

# 1, streamed: stdout and stderr land on hotcell's own, apart.
e2e_run bb sh -c 'echo out; echo err >&2; exit 1'
expect exit1-status '[ "$rc" -eq 1 ]'
expect exit1-streams-apart '[ "$(cat "$E2E/out")" == out ] && [ "$(cat "$E2E/err")" == err ]'
e2e_clean exit1

# 7, captured.
e2e_json bb sh -c 'echo out; echo err >&2; exit 7'
expect exit7-status '[ "$rc" -eq 7 ]'
expect exit7-json '[ "$(jqr .exit_code)" == 7 ] && [ "$(jqr .stdout)" == out ] && [ "$(jqr .stderr)" == err ]'
e2e_clean exit7

# 127: a command that does not exist says so, like podman.
e2e_run bb doesnotexist arg
expect exit127-status '[ "$rc" -eq 127 ]'
expect exit127-message 'grep -qF "executable file \`doesnotexist\` not found in \$PATH" "$E2E/err"'
e2e_clean exit127

# 126: a file that is not executable; then a missing -w.
e2e_json bb /etc/passwd
expect exit126-status '[ "$rc" -eq 126 ]'
expect exit126-json '[ "$(jqr .exit_code)" == 126 ] && [ "$(jqr .error.kind)" == exec ] && [ -n "$(jqr .error.message)" ]'
# Issue 15, bug 6: the guest's reason was prefixed twice ("cannot execute `/etc/passwd`: cannot
# execute `/etc/passwd`: ..."); the same for "workdir: workdir `...`" below.
expect bug-6-no-doubled-exec-prefix '[ "$(jqr .error.message | grep -o "cannot execute" | wc -l)" -eq 1 ]'
e2e_clean exit126

e2e_run -w /does/not/exist bb true
expect workdir-missing-126 '[ "$rc" -eq 126 ] && grep -q "/does/not/exist" "$E2E/err"'
expect bug-6-no-doubled-workdir-prefix '! grep -q "workdir: workdir" "$E2E/err" && [ "$(grep -o workdir "$E2E/err" | wc -l)" -eq 1 ]'
e2e_clean workdir-missing

# A signal: 128+N, and the name in the JSON.
e2e_json bb sh -c 'echo before; kill -TERM $$; echo after'
expect signal-status '[ "$rc" -eq 143 ]'
expect signal-json '[ "$(jqr .signal)" == SIGTERM ] && [ "$(jqr .exit_code)" == null ] && [ "$(jqr .timed_out)" == false ] && [ "$(jqr .stdout)" == before ]'
e2e_clean signal

# Env, workdir (created when the image's does not exist) and user from the image config.
SNAP=
e2e_json cfg sh -c 'echo "$FOO"; pwd; id -u; echo "$HOME"'
expect config-defaults '[ "$rc" -eq 0 ] && [ "$(jqr .stdout)" == "$(printf "from-image\n/srv/app\n1000\n/home/hc")" ]'
e2e_clean config-defaults
e2e_snapshot

# The same from flags: -e KEY=VALUE, -e KEY (the host's value), -w, -u.
export HOTCELL_E2E_HOSTVAR="from host"
e2e_json -e FOO=from-flag -e HOTCELL_E2E_HOSTVAR -w /tmp -u 0:0 cfg \
	sh -c 'echo "$FOO"; echo "$HOTCELL_E2E_HOSTVAR"; pwd; id -u; id -g'
expect config-flags '[ "$rc" -eq 0 ] && [ "$(jqr .stdout)" == "$(printf "from-flag\nfrom host\n/tmp\n0\n0")" ]'
e2e_clean config-flags

finish
