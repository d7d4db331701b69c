#!/usr/bin/env bash
# hotcell vm exec -t / -it end to end (a persistent VM) through a real terminal, as run-tty.sh
# does for run: tmux drives the user's side. A shell in the VM: the prompt, `tty`, the window
# size at the start and after a resize (the supervisor carries it to the guest), TERM, Ctrl-C
# reaching the guest's job, `exit N`, the terminal's modes restored. Then run -d (sugar over
# vm create + vm exec --detach): the id printed, the command running in that VM.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
source "$HOTCELL_TOP/tests/lib/vm.sh"
if ! command -v tmux >/dev/null 2>&1; then
	skip vm-exec-tty "tmux is not installed"
	exit 0
fi
e2e_image bb || exit 1

id=$("$HC" vm create --memory 128 --name ttybox bb 2>"$E2E/err")
rc=$?
expect vm-tty-create '[ "$rc" -eq 0 ] && [ -n "$id" ]'

source "$HOTCELL_TOP/tests/lib/tmux.sh"
trap 'tm kill-server 2>/dev/null; "$HC" vm rm -f ttybox >/dev/null 2>&1; e2e_cleanup' EXIT

cat >"$E2E/drive.sh" <<EOS
stty -g >"$E2E/stty.before"
TERM=xterm-256color "$HC" vm exec -it ttybox sh
echo "rc=\$?" >"$E2E/rc"
stty -g >"$E2E/stty.after"
echo HOST-DONE
sleep 600
EOS
tm -f /dev/null new-session -d -s hc -x 100 -y 30 "bash $E2E/drive.sh"

if wait_for '^/ #' 120; then pass vm-tty-prompt; else fail vm-tty-prompt "no prompt: $(pane | tail -n 5 | tr '\n' '|')"; fi
tm send-keys -t hc 'tty; echo "size=$(stty size) term=$TERM"' Enter
if wait_for 'size=[0-9]'; then
	expect_eq vm-tty-dev-pts "$(pane | grep -m1 '^/dev/pts')" /dev/pts/0
	expect_eq vm-tty-size-at-start "$(pane | grep -o 'size=[0-9]* [0-9]*' | tail -n 1)" "size=30 100"
	expect_eq vm-tty-term-from-host "$(pane | grep -o 'term=[^ ]*' | tail -n 1)" term=xterm-256color
else
	fail vm-tty-commands "no answer: $(pane | tail -n 5 | tr '\n' '|')"
fi
tm resize-window -t hc -x 120 -y 40 2>/dev/null || tm resize-pane -t hc -x 120 -y 40
sleep 1
tm send-keys -t hc 'echo "size2=$(stty size)"' Enter
if wait_for 'size2=[0-9]'; then
	expect_eq vm-tty-resize "$(pane | grep -o 'size2=[0-9]* [0-9]*' | tail -n 1)" "size2=40 120"
else
	fail vm-tty-resize "no answer"
fi
tm send-keys -t hc 'sleep 100' Enter
sleep 2
tm send-keys -t hc C-c
sleep 1
tm send-keys -t hc 'echo "after-sleep=$?"' Enter
if wait_for 'after-sleep=130' 30; then pass vm-tty-ctrl-c-guest-job; else fail vm-tty-ctrl-c-guest-job "$(pane | tail -n 3 | tr '\n' '|')"; fi
tm send-keys -t hc 'exit 6' Enter
if wait_for HOST-DONE 60; then
	expect_eq vm-tty-exit-code "$(cat "$E2E/rc")" rc=6
	expect_eq vm-tty-terminal-restored "$(cat "$E2E/stty.after")" "$(cat "$E2E/stty.before")"
else
	fail vm-tty-exit "the exec did not end: $(pane | tail -n 3 | tr '\n' '|')"
fi
tm kill-server 2>/dev/null
# The VM lived on through it all.
out=$("$HC" vm exec ttybox echo still-up 2>&1)
expect_eq vm-tty-vm-lives "$out" still-up
"$HC" vm rm -f ttybox
vm_clean vm-tty-clean

# run -d: a VM that stays, its id printed, the command running in it.
id=$("$HC" run -d --name detached -m 128m bb sh -c 'echo hello >/tmp/d; sleep 300' 2>"$E2E/err")
rc=$?
expect run-detach-prints-id '[ "$rc" -eq 0 ] && [ "$(vm_status "$id")" == running ] && [ "$("$HC" vm ls --json | jq -r --arg id "$id" ".[] | select(.id == \$id) | .name")" == detached ]'
sleep 1
out=$("$HC" vm exec detached sh -c 'cat /tmp/d; ps -o args | grep -q "^sleep 300" && echo running' 2>&1)
expect_eq run-detach-command-runs "$out" "$(printf 'hello\nrunning')"
"$HC" vm rm -f detached
vm_clean run-detach-clean
finish
