/* SPDX-License-Identifier: MIT */
/*
 * Starting one command (docs/protocol.md, "exec"): resolve the user, the workdir and the
 * executable before forking, so the common failures come back as typed errors with a clear
 * message (127 not found, 126 not executable or bad workdir, as a shell and podman say), then
 * fork, and report what still fails between fork and exec through a close-on-exec pipe.
 */
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/pty.h"
#include "guest/guest.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int set_err(struct hc_proto_error *err, uint32_t reason, int code, const char *fmt, ...)
	_printf_(4, 5);
static int set_err(struct hc_proto_error *err, uint32_t reason, int code, const char *fmt, ...)
{
	va_list ap;

	err->reason = reason;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}

static const char *env_get(char *const *env, size_t envc, const char *key)
{
	size_t n = strlen(key);

	/* The last definition wins, as with a shell's environment built left to right. */
	for (size_t i = envc; i-- > 0;)
		if (strncmp(env[i], key, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

/* mkdir -p, chowning the directories it creates to the command's user. */
static int mkdir_p(const char *path, uid_t uid, gid_t gid)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;

			*p = 0;
			if (mkdir(buf, 0755) == 0) {
				/* Test mode as a user: the directory is already ours. */
				if (geteuid() == 0 && chown(buf, uid, gid) < 0)
					return -errno;
			} else if (errno != EEXIST) {
				return -errno;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

static bool is_exec_file(const char *path, int *ret_errno)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		*ret_errno = errno;
		return false;
	}
	if (S_ISDIR(st.st_mode)) {
		*ret_errno = EISDIR;
		return false;
	}
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		*ret_errno = EACCES;
		return false;
	}
	return true;
}

/* The executable for argv0, as execvp() would pick it with the command's own PATH; relative
 * paths are taken from the workdir. */
static int find_exec(const char *argv0, const char *path_env, const char *cwd, char *ret,
		     size_t retlen, struct hc_proto_error *err)
{
	int e = 0;

	if (!argv0[0])
		return set_err(err, HC_EXEC_ERR_NOT_FOUND, -ENOENT,
			       "executable file `` not found in $PATH");
	if (strchr(argv0, '/')) {
		if (argv0[0] == '/')
			snprintf(ret, retlen, "%s", argv0);
		else if ((size_t)snprintf(ret, retlen, "%s/%s", cwd, argv0) >= retlen)
			return set_err(err, HC_EXEC_ERR_NOT_FOUND, -ENAMETOOLONG,
				       "executable file `%s`: path too long", argv0);
		if (is_exec_file(ret, &e))
			return 0;
		if (e == ENOENT || e == ENOTDIR)
			return set_err(err, HC_EXEC_ERR_NOT_FOUND, -ENOENT,
				       "executable file `%s` not found: no such file or directory",
				       argv0);
		return set_err(err, HC_EXEC_ERR_NOT_EXECUTABLE, -EACCES, "cannot execute `%s`: %s",
			       argv0, strerror(e));
	}
	bool seen_denied = false;
	const char *p = path_env ? path_env : DEFAULT_PATH;

	for (;;) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char dir[PATH_MAX];

		/* An empty PATH element is the current directory (POSIX). */
		if (n == 0)
			snprintf(dir, sizeof(dir), "%s", cwd);
		else if (p[0] != '/')
			snprintf(dir, sizeof(dir), "%s/%.*s", cwd, (int)n, p);
		else
			snprintf(dir, sizeof(dir), "%.*s", (int)n, p);
		if ((size_t)snprintf(ret, retlen, "%s/%s", dir, argv0) < retlen) {
			if (is_exec_file(ret, &e))
				return 0;
			if (e == EACCES)
				seen_denied = true;
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (seen_denied)
		return set_err(err, HC_EXEC_ERR_NOT_EXECUTABLE, -EACCES,
			       "cannot execute `%s`: permission denied", argv0);
	return set_err(err, HC_EXEC_ERR_NOT_FOUND, -ENOENT,
		       "executable file `%s` not found in $PATH", argv0);
}

/* What the child reports through the error pipe when it fails before exec. */
struct child_failure {
	int stage; /* 1 chdir, 2 credentials, 3 exec, 4 fds */
	int err;
};

_Noreturn static void child_fail(int fd, int stage, int e)
{
	struct child_failure f = {stage, e};
	ssize_t _unused_ w = write(fd, &f, sizeof(f));

	_exit(127);
}

static void move_fd(int errfd, int from, int to)
{
	if (from == to) {
		if (fcntl(to, F_SETFD, 0) < 0)
			child_fail(errfd, 4, errno);
		return;
	}
	if (dup2(from, to) < 0)
		child_fail(errfd, 4, errno);
}

int guest_exec_start(const struct hc_proto_exec *e, const struct guest_exec_opts *o,
		     struct guest_proc *ret, struct hc_proto_error *err)
{
	struct guest_user u;
	char cwd[PATH_MAX], exe[PATH_MAX], msg[256];
	int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, ep[2] = {-1, -1};
	bool tty = e->flags & HC_EXEC_F_TTY;
	_cleanup_free_ char **env = NULL;
	size_t envc = e->envc;
	struct stat st;
	pid_t pid;
	int r;

	memset(err, 0, sizeof(*err));
	r = guest_user_resolve(o->etc, e->user, &u, msg, sizeof(msg));
	if (r < 0)
		return set_err(err, HC_EXEC_ERR_BAD_USER, r, "%s", msg);

	/* The workdir: "" is "/", a relative one is taken from "/". */
	if ((size_t)snprintf(cwd, sizeof(cwd), "%s%s", e->cwd[0] == '/' ? "" : "/", e->cwd) >=
	    sizeof(cwd))
		return set_err(err, HC_EXEC_ERR_BAD_WORKDIR, -ENAMETOOLONG, "workdir too long");
	if (stat(cwd, &st) < 0) {
		if (errno != ENOENT || !(e->flags & HC_EXEC_F_CREATE_WORKDIR))
			return set_err(
				err, HC_EXEC_ERR_BAD_WORKDIR, -errno, "workdir `%s`: %s", cwd,
				errno == ENOENT ? "no such file or directory" : strerror(errno));
		r = mkdir_p(cwd, u.uid, u.gid);
		if (r < 0)
			return set_err(err, HC_EXEC_ERR_BAD_WORKDIR, r, "create workdir `%s`: %s",
				       cwd, strerror(-r));
	} else if (!S_ISDIR(st.st_mode)) {
		return set_err(err, HC_EXEC_ERR_BAD_WORKDIR, -ENOTDIR,
			       "workdir `%s`: not a directory", cwd);
	}

	/* The environment, plus HOME from passwd when the request has none (as docker does). */
	env = calloc(envc + 2, sizeof(char *));
	if (!env)
		return set_err(err, HC_EXEC_ERR_INTERNAL, -ENOMEM, "out of memory");
	/* A key given twice keeps its last value (image Env, then -e on top), so that getenv()
	 * in the command and our PATH lookup agree. */
	envc = 0;
	for (size_t i = 0; i < e->envc; i++) {
		size_t klen = strcspn(e->env[i], "=");
		bool later = false;

		for (size_t j = i + 1; j < e->envc && !later; j++)
			later = strncmp(e->env[j], e->env[i], klen + 1) == 0;
		if (!later)
			env[envc++] = e->env[i];
	}
	char home[PATH_MAX + 8];
	if (!env_get(e->env, e->envc, "HOME")) {
		snprintf(home, sizeof(home), "HOME=%s", u.home);
		env[envc++] = home;
	}

	r = find_exec(e->argv[0], env_get(env, envc, "PATH"), cwd, exe, sizeof(exe), err);
	if (r < 0)
		return r;

	if (tty) {
		/* out[0] the master, out[1] the slave; stdin (when asked) is a dup of the master.
		 */
		r = hc_pty_open(e->rows, e->cols, true, &out[0], &out[1]);
		if (r < 0) {
			set_err(err, HC_EXEC_ERR_INTERNAL, r, "allocate a pty: %s", strerror(-r));
			goto fail;
		}
		if ((e->flags & HC_EXEC_F_STDIN) &&
		    (in[1] = fcntl(out[0], F_DUPFD_CLOEXEC, 3)) < 0) {
			r = -errno;
			set_err(err, HC_EXEC_ERR_INTERNAL, r, "dup: %s", strerror(-r));
			goto fail;
		}
		if (pipe2(ep, O_CLOEXEC) < 0) {
			r = -errno;
			set_err(err, HC_EXEC_ERR_INTERNAL, r, "pipe: %s", strerror(-r));
			goto fail;
		}
	} else if (((e->flags & HC_EXEC_F_STDIN) && pipe2(in, O_CLOEXEC) < 0) ||
		   pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
		   pipe2(ep, O_CLOEXEC) < 0) {
		r = -errno;
		set_err(err, HC_EXEC_ERR_INTERNAL, r, "pipe: %s", strerror(-r));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		set_err(err, HC_EXEC_ERR_INTERNAL, r, "fork: %s", strerror(-r));
		goto fail;
	}
	if (pid == 0) {
		sigset_t all;
		int devnull;

		/* The agent blocks SIGCHLD (signalfd) and ignores SIGPIPE; ignored signals and
		 * the mask survive exec, so the command gets the defaults back. */
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		if (tty) {
			/* Its own session with the pty as controlling terminal: job control,
			 * Ctrl-C and Ctrl-Z reach its foreground job through the line discipline.
			 */
			int sl = fcntl(out[1], F_DUPFD_CLOEXEC, 3);

			if (sl < 0 || hc_pty_child_setup(sl) < 0)
				child_fail(ep[1], 4, errno);
			goto creds;
		}
		if (setsid() < 0)
			child_fail(ep[1], 4, errno);
		if (in[0] >= 0) {
			devnull = in[0];
		} else if (e->flags & HC_EXEC_F_DETACH) {
			char log[PATH_MAX];
			int lfd;

			/* A detached command's output goes to its own log, named by its pid. */
			devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
			snprintf(log, sizeof(log), "%s/exec-%d.log", o->log_dir, (int)getpid());
			lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
				   0640);
			if (devnull < 0 || lfd < 0 || dup3(lfd, out[1], O_CLOEXEC) < 0 ||
			    dup3(lfd, errp[1], O_CLOEXEC) < 0)
				child_fail(ep[1], 4, errno);
			close(lfd);
		} else {
			devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (devnull < 0)
				child_fail(ep[1], 4, errno);
		}
		/* fds 0-2 may be free in the agent (a VM's console): move everything above 2
		 * first so no dup2 clobbers a pipe it still needs. */
		int fin = fcntl(devnull, F_DUPFD_CLOEXEC, 3);
		int fout = fcntl(out[1], F_DUPFD_CLOEXEC, 3);
		int ferr = fcntl(errp[1], F_DUPFD_CLOEXEC, 3);
		if (fin < 0 || fout < 0 || ferr < 0)
			child_fail(ep[1], 4, errno);
		move_fd(ep[1], fin, 0);
		move_fd(ep[1], fout, 1);
		move_fd(ep[1], ferr, 2);
	creds:
		/* Not root (test mode as a user): no switch possible; only "" runs, as we are. */
		if (geteuid() != 0) {
			if (e->user[0])
				child_fail(ep[1], 2, EPERM);
		} else if (setgroups(u.ngroups, u.groups) < 0 || setgid(u.gid) < 0 ||
			   setuid(u.uid) < 0) {
			child_fail(ep[1], 2, errno);
		}
		if (chdir(cwd) < 0)
			child_fail(ep[1], 1, errno);
		umask(022);
		execve(exe, e->argv, env);
		child_fail(ep[1], 3, errno);
	}

	close(ep[1]);
	ep[1] = -1;
	struct child_failure f;
	ssize_t n;
	do
		n = read(ep[0], &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	close(ep[0]);
	ep[0] = -1;
	if (n == (ssize_t)sizeof(f)) {
		int st_unused;

		/* The child has exited (127) or is about to: reap it now, it never ran. */
		while (waitpid(pid, &st_unused, 0) < 0 && errno == EINTR)
			;
		r = -f.err;
		switch (f.stage) {
		case 1:
			set_err(err, HC_EXEC_ERR_BAD_WORKDIR, r, "cannot enter workdir `%s`: %s",
				cwd, strerror(f.err));
			break;
		case 2:
			set_err(err, HC_EXEC_ERR_BAD_USER, r, "cannot switch to user `%s`: %s",
				e->user, strerror(f.err));
			break;
		case 3:
			if (f.err == ENOENT)
				/* The file is there: its interpreter (#!) or loader is not. */
				set_err(err, HC_EXEC_ERR_NOT_FOUND, r,
					"cannot execute `%s`: interpreter or loader not found",
					e->argv[0]);
			else if (f.err == EACCES || f.err == ENOEXEC || f.err == EPERM ||
				 f.err == ETXTBSY || f.err == EISDIR)
				set_err(err, HC_EXEC_ERR_NOT_EXECUTABLE, r,
					"cannot execute `%s`: %s", e->argv[0], strerror(f.err));
			else
				set_err(err, HC_EXEC_ERR_INTERNAL, r, "exec `%s`: %s", e->argv[0],
					strerror(f.err));
			break;
		default:
			set_err(err, HC_EXEC_ERR_INTERNAL, r, "set up the command: %s",
				strerror(f.err));
			break;
		}
		goto fail;
	}

	close(out[1]);
	if (errp[1] >= 0)
		close(errp[1]);
	if (in[0] >= 0)
		close(in[0]);
	if (fcntl(out[0], F_SETFL, O_NONBLOCK) < 0 ||
	    (errp[0] >= 0 && fcntl(errp[0], F_SETFL, O_NONBLOCK) < 0) ||
	    (in[1] >= 0 && fcntl(in[1], F_SETFL, O_NONBLOCK) < 0)) {
		/* Cannot happen on a pipe; the descriptors are still usable blocking. */
	}
	*ret = (struct guest_proc){
		.pid = pid, .in_fd = in[1], .out_fd = out[0], .err_fd = errp[0], .tty = tty};
	return 0;

fail:
	for (int *p = &in[0]; p <= &in[1]; p++)
		if (*p >= 0)
			close(*p);
	int *all[] = {&out[0], &out[1], &errp[0], &errp[1], &ep[0], &ep[1]};
	for (size_t i = 0; i < HC_ARRAY_SIZE(all); i++)
		if (*all[i] >= 0)
			close(*all[i]);
	return r < 0 ? r : -EIO;
}
