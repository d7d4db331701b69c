# A real terminal for the -t tests (tests/e2e/run-tty.sh, vm-exec-tty.sh), driven by tmux on
# a private socket under $E2E. Sourced after tests/lib/e2e.sh.
#   tm ARGS...            tmux on the test's socket
#   pane                  the session "hc"'s screen
#   wait_for REGEX [S]    until the pane shows REGEX (S seconds, 120: TCG boots take a while)
sock=$E2E/tmux.sock
tm() { tmux -S "$sock" "$@"; }
pane() { tm capture-pane -p -t hc 2>/dev/null; }
wait_for() {
	local i
	for i in $(seq 1 $((${2:-120} * 5))); do
		pane | grep -qE "$1" && return 0
		sleep 0.2
	done
	return 1
}
