#!/usr/bin/env bash
# hotcell run -t / -it end to end (real VMs) through a real terminal: tmux drives the user's
# side (send-keys, capture-pane). One interactive shell covers the prompt, `tty`, the window
# size at start and after a resize, TERM, Ctrl-C reaching the guest's foreground job (not
# hotcell), Ctrl-Z suspending it, `exit N` ending the run with N, and the terminal's modes
# restored afterwards. Then -t without a terminal (pty in the guest, stderr merged, podman's
# warning with -it).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
e2e_init
if ! command -v tmux >/dev/null 2>&1; then
	skip run-tty "tmux is not installed"
	exit 0
fi

e2e_image bb || exit 1

source "$HOTCELL_TOP/tests/lib/tmux.sh"
trap 'tm kill-server 2>/dev/null; e2e_cleanup' EXIT

# The session's shell records the terminal's modes around the run and hotcell's status.
cat >"$E2E/drive.sh" <<EOS
stty -g >"$E2E/stty.before"
TERM=xterm-256color "$HC" run -it bb sh
echo "rc=\$?" >"$E2E/rc"
stty -g >"$E2E/stty.after"
echo HOST-DONE
sleep 600
EOS
tm -f /dev/null new-session -d -s hc -x 100 -y 30 "bash $E2E/drive.sh"

if wait_for '^/ #' 400; then pass tty-prompt; else fail tty-prompt "no prompt: $(pane | tail -n 5 | tr '\n' '|')"; fi
tm send-keys -t hc 'tty; echo "size=$(stty size) term=$TERM"' Enter
if wait_for 'size=[0-9]'; then
	expect_eq tty-dev-pts "$(pane | grep -m1 '^/dev/pts')" /dev/pts/0
	expect_eq tty-size-at-start "$(pane | grep -o 'size=[0-9]* [0-9]*' | tail -n 1)" "size=30 100"
	expect_eq tty-term-from-host "$(pane | grep -o 'term=[^ ]*' | tail -n 1)" term=xterm-256color
else
	fail tty-commands "no answer: $(pane | tail -n 5 | tr '\n' '|')"
fi

# SIGWINCH: the guest's pty follows the window.
tm resize-window -t hc -x 120 -y 40 2>/dev/null || tm resize-pane -t hc -x 120 -y 40
sleep 1
tm send-keys -t hc 'echo "size2=$(stty size)"' Enter
if wait_for 'size2=[0-9]'; then
	expect_eq tty-resize "$(pane | grep -o 'size2=[0-9]* [0-9]*' | tail -n 1)" "size2=40 120"
else
	fail tty-resize "no answer"
fi

# Ctrl-C interrupts the guest's foreground job; the shell (and hotcell) live on.
tm send-keys -t hc 'sleep 100' Enter
sleep 2
tm send-keys -t hc C-c
sleep 1
tm send-keys -t hc 'echo "after-sleep=$?"' Enter
if wait_for 'after-sleep=130' 30; then pass tty-ctrl-c-guest-job; else fail tty-ctrl-c-guest-job "$(pane | tail -n 3 | tr '\n' '|')"; fi

# Ctrl-Z suspends it (job control: the shell owns the terminal, the job its own group).
tm send-keys -t hc 'sleep 101' Enter
sleep 2
tm send-keys -t hc C-z
if wait_for '[Ss]topped' 30; then pass tty-ctrl-z-suspends; else fail tty-ctrl-z-suspends "$(pane | tail -n 3 | tr '\n' '|')"; fi
tm send-keys -t hc 'kill -9 %1' Enter
sleep 1

tm send-keys -t hc 'exit 7' Enter
# ash may not have noticed the kill yet ("You have stopped jobs."): a second exit is final.
if wait_for 'stopped jobs' 5; then tm send-keys -t hc 'exit 7' Enter; fi
if wait_for HOST-DONE 240; then
	expect_eq tty-exit-code "$(cat "$E2E/rc")" rc=7
	expect_eq tty-terminal-restored "$(cat "$E2E/stty.after")" "$(cat "$E2E/stty.before")"
else
	fail tty-exit "the run did not end: $(pane | tail -n 3 | tr '\n' '|')"
fi
tm kill-server 2>/dev/null
e2e_clean tty-session
e2e_snapshot # the first run filled the rootfs cache

# -t without a terminal (podman: the command still gets a pty; stderr comes merged on stdout).
# The same run checks podman's --sig-proxy (issue 15, bug 2): SIGUSR1 to hotcell reaches the
# command, which exits 4 from its trap; hotcell exits 4 and leaves nothing behind.
"$HC" run -t bb sh -c 'tty; echo to-stderr >&2; trap "echo got-usr1; exit 4" USR1; echo ready; while :; do sleep 0.1; done' \
	</dev/null >"$E2E/out" 2>"$E2E/err" &
hc_pid=$!
for i in $(seq 1 1500); do grep -q ready "$E2E/out" 2>/dev/null && break; sleep 0.2; done
kill -USR1 "$hc_pid"
wait "$hc_pid"
rc=$?
expect tty-no-terminal 'grep -q "^/dev/pts/0" "$E2E/out" && grep -q to-stderr "$E2E/out" && ! grep -q to-stderr "$E2E/err"'
expect tty-no-terminal-no-warning '! grep -q "not a TTY" "$E2E/err"'
expect sigusr1-forwarded '[ "$rc" -eq 4 ] && grep -q got-usr1 "$E2E/out"'
e2e_clean tty-no-terminal

finish
