/* SPDX-License-Identifier: MIT */
/*
 * hotcell-vmd [--ready-fd N] ID: the supervisor of persistent VM ID (vmd/vmd.h). Started by
 * hc_pvm_create with its stderr on $HOTCELL_HOME/vms/ID/vmd.log; it forks once so that it is
 * no child of its creator (the creator reaps the first process at once), and runs detached in
 * the session hc_child_spawn gave it. Not meant to be run by hand.
 */
#include <stdarg.h>
#include <time.h>

#include "core/log.h"
#include "lib/pvm.h"
#include "vmd/vmd.h"

static void log_line(int level, const char *msg, void *userdata)
{
	static const char *const names[] = {"debug", "info", "warning", "error"};
	char ts[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s hotcell-vmd[%d]: %s: %s\n", ts, (int)getpid(), names[level & 3], msg);
}

int main(int argc, char **argv)
{
	int ready_fd = -1, i = 1;
	pid_t pid;

	if (argc == 4 && hc_streq(argv[1], "--ready-fd")) {
		ready_fd = atoi(argv[2]);
		i = 3;
	}
	if (argc != i + 1 || !hc_pvm_id_valid(argv[i])) {
		fprintf(stderr,
			"usage: hotcell-vmd [--ready-fd N] ID (started by hotcell vm create)\n");
		return 2;
	}
	hc_set_log_handler(log_line, NULL);
	pid = fork();
	if (pid < 0) {
		perror("hotcell-vmd: fork");
		return 1;
	}
	if (pid > 0)
		_exit(0);
	return vmd_main(argv[i], ready_fd);
}
