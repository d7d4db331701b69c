#!/usr/bin/env bash
# Persistent VMs end to end (real VMs, DESIGN.md §9): create by name, ls/inspect, name and
# prefix resolution, pause/resume, stop, the idle timeout, `vm rm -f` in every state, a
# SIGKILLed supervisor (its VMM and helpers die with it, `vm ls` says dead, rm leaves nothing),
# a boot failure as one line, HOTCELL_MAX_PERSISTENT_VMS.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
source "$HOTCELL_TOP/tests/lib/vm.sh"
e2e_image bb || exit 1
export HOTCELL_E2E_VM_ARGS=${HOTCELL_E2E_VM_ARGS:---memory 128}
create() { "$HC" vm create $HOTCELL_E2E_VM_ARGS "$@" 2>"$E2E/err"; }

# create prints the id once the guest is up; ls shows it running, by name.
id=$(create --name first bb)
rc=$?
expect create '[ "$rc" -eq 0 ] && [[ "$id" =~ ^[0-9a-f]{64}$ ]]'
expect ls-running '[ "$(vm_status "$id")" == running ]'
expect ls-fields '"$HC" vm ls --json | jq -e --arg id "$id" ".[] | select(.id == \$id) | .name == \"first\" and .backend != null and (.image | test(\"bb\")) and .pid > 0 and (.created | test(\"Z$\"))" >/dev/null'
expect inspect-by-name '[ "$("$HC" vm inspect first | jq -r .id)" == "$id" ]'
expect inspect-by-prefix '[ "$("$HC" vm inspect "${id:0:8}" | jq -r .status)" == running ]'
expect inspect-spec '[ "$("$HC" vm inspect first | jq -r .spec.memory_mib)" == 128 ]'
"$HC" vm inspect nosuchvm >/dev/null 2>"$E2E/err"; rc=$?
expect inspect-missing '[ "$rc" -eq 125 ] && grep -q "no such VM" "$E2E/err"'
create --name first bb >/dev/null; rc=$?
expect create-name-taken '[ "$rc" -eq 125 ] && grep -q "already used" "$E2E/err"'
expect every-process-has-home '[ "$(vm_procs | wc -l)" -ge 2 ]'

# pause / resume
"$HC" vm pause first && st=$(vm_status "$id")
expect pause '[ "$st" == paused ]'
"$HC" vm pause first 2>"$E2E/err"; rc=$?
expect pause-twice '[ "$rc" -eq 125 ] && grep -q "already paused" "$E2E/err"'
"$HC" vm resume first && st=$(vm_status "$id")
expect resume '[ "$st" == running ]'
expect logs '"$HC" vm logs first | grep -q .'

# stop: the VM stays listed as stopped; rm without -f refuses a running VM
id2=$(create bb)
"$HC" vm rm "$id2" 2>"$E2E/err"; rc=$?
expect rm-running-refused '[ "$rc" -eq 125 ] && grep -q "rm -f" "$E2E/err"'
# an exec still running when the VM is stopped: a clear error and 125, not a silent 0
"$HC" vm exec "$id2" sh -c 'echo up; exec sleep 300' >"$E2E/exec-out" 2>"$E2E/exec-err" &
ep=$!
for _ in $(seq 1 100); do grep -q up "$E2E/exec-out" 2>/dev/null && break; sleep 0.1; done
"$HC" vm stop --time 1 "$id2"; rc=$?
wait "$ep"; erc=$?
expect stop '[ "$rc" -eq 0 ] && [ "$(vm_status "$id2")" == stopped ]'
expect stop-under-exec '[ "$erc" -eq 125 ] && grep -q "stopped before the exec ended" "$E2E/exec-err"'
expect stop-logs-kept '"$HC" vm logs "$id2" | grep -q .'
"$HC" vm rm "$id2"
expect rm-stopped '[ -z "$(vm_status "$id2")" ]'

# SIGKILL of the supervisor: the VMM and its helpers die within a second; ls says dead.
pid=$(vm_pid "$id")
kill -9 "$pid"
for _ in $(seq 1 20); do [ -z "$(vm_procs)" ] && break; sleep 0.1; done
expect sigkill-children-gone '[ -z "$(vm_procs)" ]'
expect sigkill-dead '[ "$(vm_status "$id")" == dead ]'
expect sigkill-inspect '"$HC" vm inspect "$id" | jq -e ".status == \"dead\" and .pid == 0 and (.error | length > 0)" >/dev/null'
"$HC" vm rm first
vm_clean sigkill-rm-leaves-nothing

# rm -f in every state: running, paused, stopped, dead.
r=$(create bb); p=$(create bb); s=$(create bb); d=$(create bb)
"$HC" vm pause "$p"; "$HC" vm stop "$s"; kill -9 "$(vm_pid "$d")"
sleep 1
expect states '[ "$(vm_status "$r")/$(vm_status "$p")/$(vm_status "$s")/$(vm_status "$d")" == running/paused/stopped/dead ]'
"$HC" vm rm -f "$r" "$p" "$s" "$d"; rc=$?
expect rm-f-every-state '[ "$rc" -eq 0 ] && [ "$("$HC" vm ls --json | jq length)" -eq 0 ]'
vm_clean rm-f-leaves-nothing

# --idle-timeout: no client and no command for that long, and the VM stops by itself.
i=$(create --idle-timeout 1 bb)
for _ in $(seq 1 50); do [ "$(vm_status "$i")" == stopped ] && break; sleep 0.2; done
expect idle-timeout '[ "$(vm_status "$i")" == stopped ]'
l=$(create --lifetime 2 bb)
for _ in $(seq 1 50); do [ "$(vm_status "$l")" == stopped ] && break; sleep 0.2; done
expect lifetime '[ "$(vm_status "$l")" == stopped ]'
"$HC" vm prune >/dev/null
vm_clean prune-leaves-nothing

# A boot that fails: one line, nothing left.
create --kernel /etc/hostname bb >/dev/null; rc=$?
expect boot-failure-one-line '[ "$rc" -eq 125 ] && [ "$(wc -l <"$E2E/err")" -eq 1 ]'
vm_clean boot-failure-leaves-nothing

# The console log of a persistent VM is capped too (HOTCELL_CONSOLE_MAX), and `vm logs`
# starts where the kept data does, not with the punched-out hole.
c=$(HOTCELL_CONSOLE_MAX=256K create bb)
"$HC" vm exec "$c" sh -c 'yes flood-flood-flood | head -c 1500000 >/dev/console'
sleep 2
con=$("$HC" vm inspect "$c" | jq -r .console)
kb=$(du -k "$con" 2>/dev/null | cut -f1)
expect console-capped '[ -n "$kb" ] && [ "$kb" -gt 0 ] && [ "$kb" -le 600 ]'
expect logs-skip-the-hole '[ "$("$HC" vm logs "$c" | head -c 64 | tr -d "\\0" | wc -c)" -eq 64 ]'
"$HC" vm rm -f "$c"

# The limit.
a=$(create bb)
HOTCELL_MAX_PERSISTENT_VMS=1 create bb >/dev/null; rc=$?
expect max-vms '[ "$rc" -eq 125 ] && grep -q HOTCELL_MAX_PERSISTENT_VMS "$E2E/err"'
"$HC" vm rm -f "$a"
vm_clean end-leaves-nothing
finish
