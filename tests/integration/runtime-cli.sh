#!/usr/bin/env bash
# hotcell-runtime's command line without a VM (DESIGN.md §14): --version, features, errors as
# runc writes them into --log (text and json), refused config.json/process.json, unknown
# signals and commands, delete --force of a missing container, a create that cannot boot
# leaving nothing behind.
source "$(dirname "$0")/../lib.sh"
RT=$HOTCELL_TOP/$BUILD/bin/hotcell-runtime
[ -x "$RT" ] || { skip runtime-cli "$RT is not built"; exit 0; }
command -v jq >/dev/null || { skip runtime-cli "jq is not installed"; exit 0; }
T=$(mktemp -d /tmp/hcrtcli.XXXXXX)
trap 'rm -rf "$T"' EXIT
export HOTCELL_HOME=$T/home HOTCELL_RUNTIME_DIR=$T/run
mkdir -p "$HOTCELL_HOME" "$HOTCELL_RUNTIME_DIR"
rt() { "$RT" --root "$T/root" "$@" >"$T/out" 2>"$T/err"; rc=$?; }

rt --version
check version grep -q "^hotcell-runtime version .*" "$T/out"
check version-spec grep -q "^spec: 1\." "$T/out"
rt features
if jq -e '.ociVersionMax and (.annotations | has("org.hotcell.backend"))' "$T/out" >/dev/null; then
	pass features
else
	fail features "$(head -c 300 "$T/out")"
fi

"$RT" --root "$T/root" --log "$T/log.json" --log-format json state nosuch >/dev/null 2>"$T/err"; rc=$?
check state-missing-rc [ "$rc" -ne 0 ]
check state-missing-json jq -e 'select(.level == "error") | (.msg | test("does not exist")) and (.time | test("Z$"))' "$T/log.json"
check state-missing-stderr grep -q 'container "nosuch" does not exist' "$T/err"
"$RT" --root "$T/root" --log "$T/log.txt" --log-format text kill nosuch 9 >/dev/null 2>&1
check log-text grep -Eq '^time="[^"]+Z" level=error msg="container \\"nosuch\\" does not exist"$' "$T/log.txt"
rt --log-format yaml state x
check log-format-refused [ "$rc" -ne 0 ]
rt --systemd-cgroup delete --force nosuch
check delete-force-missing [ "$rc" -eq 0 ]
rt delete nosuch
check delete-missing [ "$rc" -ne 0 ]
rt frobnicate x
check unknown-command grep -q 'unknown command "frobnicate"' "$T/err"
rt kill x NOSIG
check unknown-signal grep -q 'unknown signal "NOSIG"' "$T/err"
rt state ../etc
check bad-id grep -q "invalid container id" "$T/err"

# Bundles: a refused config.json is one line and leaves no state.
B=$T/bundle
mkdir -p "$B/rootfs"
echo '{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":[]}}' >"$B/config.json"
rt create --bundle "$B" c1
check config-refused-line [ "$rc" -ne 0 -a "$(wc -l <"$T/err")" -eq 1 ]
check config-refused-why grep -q "process.args" "$T/err"
check config-refused-nothing-left [ -z "$(ls -A "$T/root" 2>/dev/null)" ]
echo '{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"terminal":true}}' >"$B/config.json"
rt create --bundle "$B" c1
check terminal-needs-console-socket grep -q "console-socket" "$T/err"
rt create --bundle "$T/nosuch" c1
check bundle-missing grep -q "bundle" "$T/err"
# The engine's network namespace must exist: one line, nothing left.
echo '{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"]},"linux":{"namespaces":[{"type":"network","path":"/nonexistent/netns"}]}}' >"$B/config.json"
rt create --bundle "$B" c3
check netns-missing [ "$rc" -ne 0 ]
check netns-missing-says grep -q "network namespace /nonexistent/netns" "$T/err"
check netns-missing-nothing-left [ -z "$(ls -A "$T/root" 2>/dev/null)" -a -z "$(ls "$HOTCELL_HOME/vms" 2>/dev/null)" ]
# A VM that cannot boot (no such backend here): the error, and nothing left.
echo '{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"]},"annotations":{"org.hotcell.backend":"cloud-hypervisor"}}' >"$B/config.json"
PATH=/usr/bin:/bin HOTCELL_CLOUD_HYPERVISOR=$T/nosuch-ch rt create --bundle "$B" --pid-file "$T/pid" c2
check boot-failure-rc [ "$rc" -ne 0 ]
check boot-failure-says grep -q "create c2" "$T/err"
check boot-failure-no-state [ -z "$(ls -A "$T/root" 2>/dev/null)" -a ! -e "$T/pid" ]
check boot-failure-no-vm [ -z "$(ls "$HOTCELL_HOME/vms" 2>/dev/null)" ]
check boot-failure-no-process [ -z "$(pgrep -f "$T/" | grep -vx $$)" ]
finish
