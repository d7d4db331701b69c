/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "core/buf.h"
#include "core/child.h"
#include "core/clock.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

extern char **environ;

/* The child reports a failure before exec as a whole struct hc_error (one write, below
 * PIPE_BUF, so the parent reads it whole): errno alone, or the jail's message naming the step. */
static _Noreturn void child_fail_err(int pipefd, const struct hc_error *e)
{
	ssize_t _unused_ n = write(pipefd, e, sizeof(*e));
	_exit(127);
}

static _Noreturn void child_fail(int pipefd, int e)
{
	struct hc_error he = {.code = -e};

	child_fail_err(pipefd, &he);
}

/* fork(), or with new_pid_ns a fork whose child is PID 1 of a new PID namespace: this thread's
 * namespace for children is switched for the one fork and switched back (setns to its own
 * namespace), so no other thread or later spawn is affected. */
static pid_t fork_in(bool new_pid_ns, int *ret_errno)
{
	if (!new_pid_ns) {
		pid_t pid = fork();
		*ret_errno = pid < 0 ? errno : 0;
		return pid;
	}
	int self = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		*ret_errno = errno;
		return -1;
	}
	if (unshare(CLONE_NEWPID) < 0) {
		*ret_errno = errno;
		close(self);
		return -1;
	}
	pid_t pid = fork();
	*ret_errno = pid < 0 ? errno : 0;
	if (pid != 0) {
		/* Cannot fail for our own namespace with CAP_SYS_ADMIN (which unshare needed). */
		int _unused_ r = setns(self, CLONE_NEWPID);
		close(self);
	}
	return pid;
}

/* Closes fds lo..hi; the per-fd loop is only for kernels before 5.9 (no close_range). */
static int close_gap(unsigned lo, unsigned hi)
{
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (long fd = lo; fd <= (long)hi && fd < max; fd++)
		close((int)fd);
	return 0;
}

/* In the child: moves the wanted fds into place without clobbering each other, closes the
 * rest. */
static int setup_fds(const struct hc_child_opts *o)
{
	int stdio[3] = {o->stdin_fd, o->stdout_fd, o->stderr_fd};
	int highest = 3, devnull = -1;
	size_t i;

	for (i = 0; i < o->n_fds; i++)
		if (o->fds[i].dst + 1 > highest)
			highest = o->fds[i].dst + 1;
	for (i = 0; i < 3; i++)
		if (stdio[i] + 1 > highest)
			highest = stdio[i] + 1;
	for (i = 0; i < o->n_fds; i++)
		if (o->fds[i].src + 1 > highest)
			highest = o->fds[i].src + 1;

	/* First move every source above all destinations, then dup2 down. */
	int tmp[3 + HC_CHILD_MAX_FDS + 1];
	if (o->n_fds > HC_CHILD_MAX_FDS + 1)
		return -E2BIG;
	for (i = 0; i < 3; i++) {
		int src = stdio[i];

		if (src < 0) {
			if (devnull < 0) {
				devnull = open("/dev/null", O_RDWR);
				if (devnull < 0)
					return -errno;
				int d = fcntl(devnull, F_DUPFD, highest);
				if (d < 0)
					return -errno;
				close(devnull);
				devnull = d;
			}
			tmp[i] = devnull;
		} else {
			tmp[i] = fcntl(src, F_DUPFD, highest);
			if (tmp[i] < 0)
				return -errno;
		}
	}
	for (i = 0; i < o->n_fds; i++) {
		tmp[3 + i] = fcntl(o->fds[i].src, F_DUPFD, highest);
		if (tmp[3 + i] < 0)
			return -errno;
	}
	for (i = 0; i < 3; i++)
		if (dup2(tmp[i], (int)i) < 0)
			return -errno;
	for (i = 0; i < o->n_fds; i++)
		if (dup2(tmp[3 + i], o->fds[i].dst) < 0)
			return -errno;
	/* Close everything that is not a destination: close_range() over the gaps between the
	 * (sorted) destinations, one syscall each instead of one per possible fd. */
	int keep[HC_CHILD_MAX_FDS + 1];
	size_t nkeep = 0;
	for (i = 0; i < o->n_fds; i++) {
		int d = o->fds[i].dst, fl;
		size_t j = nkeep++;

		while (j > 0 && keep[j - 1] > d) {
			keep[j] = keep[j - 1];
			j--;
		}
		keep[j] = d;
		fl = fcntl(d, F_GETFD);
		if (fl >= 0)
			fcntl(d, F_SETFD, fl & ~FD_CLOEXEC);
	}
	unsigned lo = 3;
	for (i = 0; i <= nkeep; i++) {
		unsigned hi = i < nkeep ? (unsigned)keep[i] : ~0U;

		if (hi > lo && close_gap(lo, hi - 1) < 0)
			return -errno;
		if (i < nkeep && (unsigned)keep[i] + 1 > lo)
			lo = (unsigned)keep[i] + 1;
	}
	return 0;
}

int hc_child_spawn(struct hc_child *c, const struct hc_child_opts *o, struct hc_error *err)
{
	int pipefd[2], e = 0, r;
	struct hc_error ce = {0};
	bool pidns = o->jail && o->jail->new_pid_ns;
	sigset_t all, old;
	pid_t parent = getpid();
	const char *prog = o->argv[0];
	ssize_t n;

	*c = (struct hc_child)HC_CHILD_INIT;
	snprintf(c->name, sizeof(c->name), "%s",
		 strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog);

	if (o->n_fds > HC_CHILD_MAX_FDS)
		return hc_error_set(err, -E2BIG, "spawn %s: more than %d fds to hand over", prog,
				    HC_CHILD_MAX_FDS);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return hc_error_errno(err, -errno, "spawn %s: pipe", prog);

	/* Signals blocked across fork so the child cannot run a parent handler before exec. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork_in(pidns, &e);
	if (pid < 0) {
		e = -e;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		close(pipefd[0]);
		close(pipefd[1]);
		return hc_error_errno(err, e, "spawn %s: fork", prog);
	}
	if (pid == 0) {
		/* Default dispositions, then unblock. */
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		sigemptyset(&all);
		pthread_sigmask(SIG_SETMASK, &all, NULL);
		if (o->pdeathsig >= 0)
			prctl(PR_SET_PDEATHSIG, o->pdeathsig ? o->pdeathsig : SIGKILL);
		/* The parent died before PDEATHSIG was set. In a new PID namespace the parent is
		 * outside it and getppid() is 0. */
		if (o->pdeathsig >= 0 && getppid() != (pidns ? 0 : parent))
			_exit(127);
		if (o->new_session)
			setsid();
		/* Keep the error pipe above any destination fd. */
		int ep = fcntl(pipefd[1], F_DUPFD_CLOEXEC, 200);
		if (ep < 0)
			child_fail(pipefd[1], errno);
		struct hc_fd_map all_fds[HC_CHILD_MAX_FDS + 1];
		struct hc_child_opts o2 = *o;
		if (o->n_fds) /* fds may be NULL: memcpy's arguments must not be (UBSan) */
			memcpy(all_fds, o->fds, o->n_fds * sizeof(*all_fds));
		all_fds[o->n_fds] = (struct hc_fd_map){ep, ep};
		o2.fds = all_fds;
		o2.n_fds = o->n_fds + 1;
		r = setup_fds(&o2);
		if (r < 0)
			child_fail(ep, -r);
		fcntl(ep, F_SETFD, FD_CLOEXEC);
		if (o->cwd && !o->jail && chdir(o->cwd) < 0)
			child_fail(ep, errno);
		if (o->pre_exec) {
			r = o->pre_exec(o->pre_exec_arg);
			if (r < 0)
				child_fail(ep, -r);
		}
		if (o->jail) {
			r = o->jail->apply(o->jail->arg, &ce);
			if (r < 0) {
				if (!ce.code)
					ce.code = r;
				child_fail_err(ep, &ce);
			}
			if (o->cwd && chdir(o->cwd) < 0)
				child_fail(ep, errno);
		}
		if (o->envp)
			environ = (char **)o->envp;
		if (o->run) {
			/* EOF on the error pipe tells the parent the child is in place. */
			close(ep);
			o->run(o->run_arg);
			_exit(127);
		}
		execvp(prog, (char *const *)o->argv);
		child_fail(ep, errno);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(pipefd[1]);
	c->pid = pid;
	c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (c->pidfd >= 0)
		fcntl(c->pidfd, F_SETFD, FD_CLOEXEC);

	do
		n = read(pipefd[0], &ce, sizeof(ce));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n == sizeof(ce)) {
		hc_child_stop(c, 0);
		e = ce.code < 0 ? -ce.code : EIO;
		ce.message[sizeof(ce.message) - 1] = '\0';
		if (ce.message[0])
			return hc_error_set(err, -e, "cannot run %s: %s", prog, ce.message);
		if (e == ENOENT)
			return hc_error_set(err, -ENOENT, "%s: program not found", prog);
		return hc_error_errno(err, -e, "cannot run %s", prog);
	}
	return 0;
}

int hc_child_poll(struct hc_child *c)
{
	int st;
	pid_t r;

	if (!c->pid || c->reaped)
		return 1;
	do
		r = waitpid(c->pid, &st, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	c->reaped = true;
	c->status = r == c->pid ? st : 0;
	if (c->pidfd >= 0) {
		close(c->pidfd);
		c->pidfd = -1;
	}
	return 1;
}

int hc_child_wait(struct hc_child *c, int timeout_ms)
{
	double deadline = timeout_ms < 0 ? -1 : hc_clock_ms() + timeout_ms;

	for (;;) {
		if (hc_child_poll(c))
			return 0;
		int left = hc_clock_left_ms(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		if (c->pidfd >= 0) {
			struct pollfd p = {.fd = c->pidfd, .events = POLLIN};
			poll(&p, 1, left);
		} else {
			/* No pidfd (very old kernel): a short back-off is the only option. */
			usleep(left < 0 || left > 5 ? 5000 : (useconds_t)left * 1000);
		}
	}
}

int hc_child_kill(struct hc_child *c, int sig)
{
	if (!c->pid || c->reaped)
		return -ESRCH;
	if (kill(c->pid, sig) < 0)
		return -errno;
	return 0;
}

void hc_child_stop(struct hc_child *c, int grace_ms)
{
	if (!c->pid)
		return;
	if (!c->reaped) {
		if (grace_ms > 0) {
			hc_child_kill(c, SIGTERM);
			if (hc_child_wait(c, grace_ms) == 0)
				goto out;
		}
		hc_child_kill(c, SIGKILL);
		hc_child_wait(c, -1);
	}
out:
	if (c->pidfd >= 0)
		close(c->pidfd);
	c->pidfd = -1;
}

void hc_child_stopp(struct hc_child *c)
{
	hc_child_stop(c, 0);
}

void hc_child_status_str(int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "killed by signal %s", sigabbrev_np(WTERMSIG(status)) ?: "?");
	else
		snprintf(buf, n, "ended with wait status 0x%x", status);
}

int hc_child_run(const char *const *argv, int timeout_ms, size_t max_output, char **ret_output,
		 struct hc_error *err)
{
	return hc_child_run_cancel(argv, timeout_ms, -1, max_output, ret_output, err);
}

int hc_child_run_cancel(const char *const *argv, int timeout_ms, int cancel_fd, size_t max_output,
			char **ret_output, struct hc_error *err)
{
	_cleanup_child_ struct hc_child c = HC_CHILD_INIT;
	struct hc_buf out = HC_BUF_INIT(max_output ? max_output : 65536);
	double deadline = timeout_ms < 0 ? -1 : hc_clock_ms() + timeout_ms;
	bool overflow = false;
	int p[2], r;

	if (pipe2(p, O_CLOEXEC) < 0)
		return hc_error_errno(err, -errno, "%s: pipe", argv[0]);
	struct hc_child_opts o = {
		.argv = argv, .stdin_fd = -1, .stdout_fd = p[1], .stderr_fd = p[1]};
	r = hc_child_spawn(&c, &o, err);
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		return r;
	}
	for (;;) {
		char tmp[4096];
		struct pollfd pf[2] = {{.fd = p[0], .events = POLLIN},
				       {.fd = cancel_fd, .events = POLLIN}};
		int left = hc_clock_left_ms(deadline);

		if (left == 0) {
			close(p[0]);
			hc_buf_free(&out);
			return hc_error_set(err, -ETIMEDOUT, "%s: timed out after %d ms", argv[0],
					    timeout_ms);
		}
		if (poll(pf, cancel_fd >= 0 ? 2 : 1, left) < 0 && errno != EINTR)
			break;
		if (cancel_fd >= 0 && pf[1].revents) {
			/* the cleanup kills and reaps the child */
			close(p[0]);
			hc_buf_free(&out);
			return hc_error_setk(err, -ECANCELED, "cancelled", "interrupted");
		}
		if (!pf[0].revents)
			continue;
		ssize_t n = read(p[0], tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (!overflow && hc_buf_append(&out, tmp, (size_t)n) < 0)
			overflow = true; /* keep draining; the output is only for messages */
	}
	close(p[0]);
	hc_child_wait(&c, hc_clock_left_ms(deadline));
	if (!c.reaped) {
		hc_buf_free(&out);
		return hc_error_set(err, -ETIMEDOUT, "%s: timed out", argv[0]);
	}
	int st = c.status;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char desc[64];
		const char *tail = out.data ? out.data : "";
		size_t tl = strlen(tail);

		while (tl > 0 && (tail[tl - 1] == '\n' || tail[tl - 1] == ' '))
			tl--;
		size_t start = tl > 300 ? tl - 300 : 0;
		hc_child_status_str(st, desc, sizeof(desc));
		hc_error_set(err, -EIO, "%s %s%s%.*s", argv[0], desc, tl ? ": " : "",
			     (int)(tl - start), tail + start);
	}
	if (ret_output)
		*ret_output = hc_buf_steal(&out, NULL);
	else
		hc_buf_free(&out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -EIO;
}
