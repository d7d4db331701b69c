/* SPDX-License-Identifier: MIT */
/*
 * hotcell-runtime: the OCI runtime command line as runc spells it (runtime/runtime.h,
 * docs/runtime.md). Global options come first: --root DIR, --log FILE, --log-format
 * text|json, --systemd-cgroup, --debug; then the command and its options.
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/path.h"
#include "core/pty.h"
#include "core/util.h"
#include "hotcell.h"
#include "lib/pvm.h"
#include "runtime/runtime.h"
#include "core/owner.h"

#define DEFAULT_ROOT "/run/hotcell-runtime"

static const char *root_dir = DEFAULT_ROOT;
static FILE *log_file;
static bool log_json;
static bool debug;

/* ---- errors, as runc writes them ---- */

static void log_write(const char *level, const char *msg)
{
	char ts[64];
	struct timespec t;
	struct tm tm;

	if (!log_file)
		return;
	clock_gettime(CLOCK_REALTIME, &t);
	gmtime_r(&t.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_json) {
		json_t *o =
			json_pack("{s:s,s:s,s:s+}", "level", level, "msg", msg, "time", ts, "Z");
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

		if (s)
			fprintf(log_file, "%s\n", s);
		free(s);
		json_decref(o);
	} else {
		json_t *q = json_string(msg);
		char *s = q ? json_dumps(q, JSON_ENCODE_ANY) : NULL;

		fprintf(log_file, "time=\"%sZ\" level=%s msg=%s\n", ts, level, s ? s : "\"\"");
		free(s);
		json_decref(q);
	}
	fflush(log_file);
}

static int fail(const char *fmt, ...) _printf_(1, 2);
static int fail(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_write("error", msg);
	fprintf(stderr, "hotcell-runtime: %s\n", msg);
	return 1;
}

static int fail_err(const struct hc_error *err)
{
	return fail("%s", err->message[0] ? err->message : hc_strerror(err->code));
}

static void lib_log(int level, const char *msg, void *userdata)
{
	static const char *const names[] = {"debug", "info", "warning", "error"};

	if (level >= 2 || debug)
		log_write(names[level & 3], msg);
}

/* ---- helpers ---- */

static void rfc3339_now(char *buf, size_t n)
{
	struct timespec t;
	struct tm tm;
	char s[40];

	clock_gettime(CLOCK_REALTIME, &t);
	gmtime_r(&t.tv_sec, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%s.%09ldZ", s, t.tv_nsec);
}

static int write_pid_file(const char *path, pid_t pid, struct hc_error *err)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d", (int)pid);
	return hc_path_write_file_atomic(path, buf, strlen(buf), 0644, err);
}

static const char *vm_of(const struct rt_state *st)
{
	return json_string_value(json_object_get(st->rec, "vm"));
}

/* A pty: the master goes to the engine over console_socket (SCM_RIGHTS), the slave is
 * returned for the process's stdio. */
static int console_setup(const char *console_socket, int *ret_slave, struct hc_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int master = -1, sock = -1, slave = -1;
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	char name[] = "/dev/ptmx";
	struct iovec iov = {.iov_base = name, .iov_len = sizeof(name) - 1};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;
	int r;

	if (strlen(console_socket) >= sizeof(sa.sun_path))
		return hc_error_setk(err, -ENAMETOOLONG, HC_EK_USAGE,
				     "--console-socket: path too long");
	r = hc_pty_open(0, 0, false, &master, &slave);
	if (r < 0)
		return hc_error_errno(err, r, "open a pty");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", console_socket);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return hc_error_errno(err, -errno, "connect to the console socket %s",
				      console_socket);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &master, sizeof(int));
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		return hc_error_errno(err, -errno, "send the pty to %s", console_socket);
	*ret_slave = hc_steal_fd(&slave);
	return 0;
}

/* The process's stdio onto a pty slave, as its controlling terminal. */
static void stdio_to_slave(int slave)
{
	if (slave < 0)
		return;
	setsid();
	ioctl(slave, TIOCSCTTY, 0);
	dup2(slave, 0);
	dup2(slave, 1);
	dup2(slave, 2);
	if (slave > 2)
		close(slave);
}

/* Signals to the container process become bytes on this pipe (hc_pvm_exec's cancel_fd). */
static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t last_signal;

static void on_signal(int sig)
{
	int e = errno;

	last_signal = sig;
	if (write(sig_pipe[1], "x", 1) < 0) {
		/* full: the command is being ended already */
	}
	errno = e;
}

static int signals_forward(struct hc_error *err)
{
	static const int fwd[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM};
	static const int ign[] = {SIGPIPE, SIGWINCH, SIGCHLD, SIGURG,
				  SIGCONT, SIGTSTP,  SIGTTIN, SIGTTOU};
	struct sigaction sa = {.sa_handler = on_signal};
	sigset_t none;

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return hc_error_errno(err, -errno, "pipe");
	for (size_t i = 0; i < HC_ARRAY_SIZE(fwd); i++)
		sigaction(fwd[i], &sa, NULL);
	for (size_t i = 0; i < HC_ARRAY_SIZE(ign); i++)
		signal(ign[i], SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	return 0;
}

/* Runs cmd in the VM with this process's stdio; returns the shell-like status. */
static int exec_in_vm(const char *vm, const struct rt_process *p, bool use_process_defaults)
{
	struct hc_pvm_exec_opts o;
	struct hc_pvm_exec_result res = {0};
	struct hc_error err = {0};
	char user[32];
	int r;

	hc_pvm_exec_opts_init(&o);
	o.cmd = (const char *const *)p->args;
	o.n_cmd = p->n_args;
	if (use_process_defaults) {
		snprintf(user, sizeof(user), "%u:%u", p->uid, p->gid);
		o.env = (const char *const *)p->env;
		o.n_env = p->n_env;
		o.workdir = p->cwd;
		o.user = user;
	}
	o.stdin_fd = 0;
	o.stdout_fd = 1;
	o.stderr_fd = 2;
	o.cancel_fd = sig_pipe[0];
	r = hc_pvm_exec(vm, &o, &res, &err);
	if (r < 0 && r != -ECANCELED) {
		fail_err(&err);
		if (hc_streq(err.kind, "exec") && res.exit_code > 0)
			return res.exit_code;
		return 125;
	}
	if (r == -ECANCELED)
		return 128 + (last_signal ? last_signal : SIGTERM);
	return hc_pvm_exec_status(&res);
}

/* ---- create ---- */

/* Joins the engine's network namespace; when the engine gave it routes (a bridge, a CNI
 * plugin's interface: not podman's --net=none, which is loopback alone) the VM is networked
 * inside it (--network full: TAP, NAT and DNS there; the engine's policy applies). */
static int enter_netns(const char *path, struct hc_runopts *ro, struct hc_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *routes = NULL;
	size_t len = 0;
	int r;

	if (fd < 0)
		return hc_error_errno(err, -errno, "the network namespace %s", path);
	if (setns(fd, CLONE_NEWNET) < 0)
		return hc_error_errno(err, -errno, "join the network namespace %s", path);
	/* /proc/net/route: a header line, then one line per IPv4 route of the main table. */
	r = hc_path_read_file("/proc/net/route", 1u << 20, &routes, &len, err);
	if (r < 0)
		return r;
	if (!strchr(routes, '\n') || !strchr(routes, '\n')[1])
		return 0;
	return hc_runopts_set(ro, HC_RUNOPT_VM, "network", "full", err);
}

struct create_args {
	const char *id, *bundle, *pid_file, *console_socket;
};

static int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{"bundle", required_argument, NULL, 'b'},
		{"pid-file", required_argument, NULL, 'p'},
		{"console-socket", required_argument, NULL, 'c'},
		{"no-pivot", no_argument, NULL, 'N'},
		{"no-new-keyring", no_argument, NULL, 'K'},
		{"preserve-fds", required_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	struct create_args a = {.bundle = "."};
	char path[HC_PATH_MAX + 32], bundle[HC_PATH_MAX], created[64], vm[HC_PVM_ID_LEN + 1] = "";
	struct rt_config cfg = {0};
	struct hc_runopts ro;
	struct hc_error err = {0};
	struct rt_state st;
	struct hc_pvm_workload wl = {.stdin_fd = 0, .stdout_fd = 1, .stderr_fd = 2};
	struct hc_pvm_create_opts co = {.workload = &wl};
	_cleanup_free_ char *data = NULL;
	json_t *rec = NULL;
	int c, r, slave = -1;
	size_t len;
	pid_t pid = 0;

	while ((c = getopt_long(argc, argv, "+b:", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			a.bundle = optarg;
			break;
		case 'p':
			a.pid_file = optarg;
			break;
		case 'c':
			a.console_socket = optarg;
			break;
		case 'N':
		case 'K':
		case 'P':
			break;
		default:
			return fail("create: unknown option (see --help)");
		}
	}
	if (optind != argc - 1)
		return fail("create: exactly one container id is needed");
	a.id = argv[optind];
	if (!realpath(a.bundle, bundle))
		return fail("bundle %s: %s", a.bundle, strerror(errno));
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	r = hc_path_read_file(path, RT_CONFIG_MAX, &data, &len, &err);
	if (r < 0)
		return fail_err(&err);
	r = rt_config_parse(data, len, &cfg, &err);
	if (r >= 0 && !cfg.has_process)
		r = hc_error_setk(&err, -EINVAL, HC_EK_USAGE, "config.json: no process to run");
	if (r >= 0 && cfg.process.terminal && !a.console_socket)
		r = hc_error_setk(&err, -EINVAL, HC_EK_USAGE,
				  "process.terminal is set: --console-socket is needed");
	if (r < 0) {
		rt_config_free(&cfg);
		return fail_err(&err);
	}
	hc_runopts_init(&ro);
	r = rt_config_runopts(&cfg, bundle, &ro, &err);
	if (r >= 0)
		r = rt_state_open(root_dir, a.id, true, &st, &err);
	if (r < 0) {
		hc_runopts_free(&ro);
		rt_config_free(&cfg);
		return fail_err(&err);
	}
	rfc3339_now(created, sizeof(created));
	json_object_set_new(st.rec, "bundle", json_string(bundle));
	json_object_set_new(st.rec, "created", json_string(created));
	json_object_set(st.rec, "annotations", cfg.annotations);
	json_object_set_new(st.rec, "status", json_string("creating"));
	json_object_set_new(st.rec, "pid", json_integer(0));
	r = rt_state_save(&st, &err);
	if (r >= 0 && cfg.process.terminal)
		r = console_setup(a.console_socket, &slave, &err);
	if (r < 0)
		goto undo;
	/* The VM's supervisor is the container's process: it waits for `start`, runs
	 * process.args on the stdio the engine gave us (or the pty's slave), and exits with its
	 * status. */
	wl.cmd = (const char *const *)cfg.process.args;
	wl.n_cmd = cfg.process.n_args;
	wl.tty = slave >= 0;
	if (wl.tty)
		wl.stdin_fd = wl.stdout_fd = wl.stderr_fd = slave;
	co.run = &ro.o;
	/* The supervisor is made inside the engine's network namespace, and its VM's network
	 * with it. */
	if (cfg.netns)
		r = enter_netns(cfg.netns, &ro, &err);
	if (r >= 0)
		r = hc_pvm_create(NULL, &co, vm, &err);
	hc_closep(&slave);
	if (r < 0) {
		hc_error_prefix(&err, "create %s", a.id);
		vm[0] = 0;
		goto undo;
	}
	r = hc_pvm_record_read(vm, &rec, &err);
	if (r >= 0) {
		pid = (pid_t)json_integer_value(json_object_get(rec, "pid"));
		json_object_set_new(st.rec, "pid_start",
				    json_incref(json_object_get(rec, "pid_start")));
		json_decref(rec);
		if (pid <= 0)
			r = hc_error_setk(&err, -ESRCH, HC_EK_VM,
					  "create %s: the VM's supervisor has ended", a.id);
	}
	if (r < 0)
		goto undo;
	json_object_set_new(st.rec, "vm", json_string(vm));
	json_object_set_new(st.rec, "pid", json_integer(pid));
	json_object_set_new(st.rec, "status", json_string("created"));
	r = rt_state_save(&st, &err);
	if (r >= 0 && a.pid_file)
		r = write_pid_file(a.pid_file, pid, &err);
	if (r < 0)
		goto undo;
	rt_state_close(&st);
	hc_runopts_free(&ro);
	rt_config_free(&cfg);
	return 0;
undo:
	if (vm[0]) {
		struct hc_error e = {0};

		if (hc_pvm_remove(vm, true, &e) < 0)
			log_write("warning", e.message);
	}
	hc_closep(&slave);
	hc_path_rm_rf(st.dir, NULL);
	rt_state_close(&st);
	hc_runopts_free(&ro);
	rt_config_free(&cfg);
	return fail_err(&err);
}

/* ---- the other commands ---- */

static int one_id(int argc, char **argv, const char *cmd, const char *short_opts,
		  const struct option *opts, int (*on_opt)(int c, const char *arg))
{
	int c;

	while ((c = getopt_long(argc, argv, short_opts, opts, NULL)) != -1)
		if (!on_opt || on_opt(c, optarg) < 0)
			return fail("%s: unknown option", cmd);
	if (optind >= argc)
		return fail("%s: a container id is needed", cmd);
	return 0;
}

static int open_existing(const char *id, struct rt_state *st)
{
	struct hc_error err = {0};

	if (rt_state_open(root_dir, id, false, st, &err) < 0) {
		rt_state_close(st);
		return fail_err(&err);
	}
	return 0;
}

static int cmd_start(int argc, char **argv)
{
	struct hc_error err = {0};
	struct rt_state st;
	enum rt_status s;

	if (one_id(argc, argv, "start", "+", NULL, NULL) || open_existing(argv[optind], &st))
		return 1;
	s = rt_state_status(&st);
	if (s != RT_CREATED) {
		rt_state_close(&st);
		return fail(s == RT_STOPPED ? "cannot start a container that has stopped"
					    : "cannot start an already running container");
	}
	if (hc_pvm_start(vm_of(&st), &err) < 0) {
		rt_state_close(&st);
		return fail("start %s: %s", argv[optind], err.message);
	}
	json_object_set_new(st.rec, "status", json_string("running"));
	if (rt_state_save(&st, &err) < 0) {
		rt_state_close(&st);
		return fail_err(&err);
	}
	rt_state_close(&st);
	return 0;
}

static int cmd_state(int argc, char **argv)
{
	struct rt_state st;
	json_t *o;
	char *s;

	if (one_id(argc, argv, "state", "+", NULL, NULL) || open_existing(argv[optind], &st))
		return 1;
	o = rt_state_oci(&st);
	s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
	rt_state_close(&st);
	json_decref(o);
	if (!s)
		return fail("out of memory");
	printf("%s\n", s);
	free(s);
	return 0;
}

static bool kill_all;
static int kill_opt(int c, const char *arg)
{
	if (c != 'a')
		return -1;
	kill_all = true;
	return 0;
}

/* Ends the container process and the VM at once: the supervisor is asked to (it tears the VM
 * down, its network too, and exits 137, as a SIGKILL'ed init); one that does not answer or
 * end is SIGKILL'ed (its VMM and helpers die with it), and what is left of the VM removed. */
static void kill_hard(struct rt_state *st)
{
	struct hc_error err = {0};
	pid_t pid = rt_state_pid(st);

	if (pid > 0 && vm_of(st) && hc_pvm_kill(vm_of(st), SIGKILL, false, &err) == 0)
		for (int i = 0; i < 1000 && rt_state_pid(st); i++)
			usleep(10000);
	if ((pid = rt_state_pid(st)) > 0 && kill(pid, SIGKILL) == 0)
		for (int i = 0; i < 200 && rt_state_pid(st); i++)
			usleep(10000);
	hc_error_clear(&err);
	if (vm_of(st) && hc_pvm_remove(vm_of(st), true, &err) < 0 && err.code != -ENOENT)
		log_write("warning", err.message);
}

static int cmd_kill(int argc, char **argv)
{
	static const struct option opts[] = {{"all", no_argument, NULL, 'a'}, {NULL, 0, NULL, 0}};
	struct rt_state st;
	enum rt_status s;
	int sig = SIGTERM;

	if (one_id(argc, argv, "kill", "+a", opts, kill_opt))
		return 1;
	if (optind + 1 < argc && (sig = rt_signal_parse(argv[optind + 1])) < 0)
		return fail("unknown signal \"%s\"", argv[optind + 1]);
	if (open_existing(argv[optind], &st))
		return 1;
	s = rt_state_status(&st);
	if (s == RT_STOPPED) {
		rt_state_close(&st);
		return fail("container not running");
	}
	/* The pid is the VM's supervisor: it passes the signal on to the workload as that
	 * signal; KILL ends it (and with it the VMM) at once. --all: every command in the VM. */
	if (sig == SIGKILL) {
		kill_hard(&st);
	} else {
		struct hc_error err = {0};

		/* Through the supervisor's signal request, so that STOP, CHLD and PIPE (its own
		 * when sent to it) reach the workload too; a supervisor that does not answer gets
		 * the signal itself, which it passes on as well. */
		if (hc_pvm_kill(vm_of(&st), sig, kill_all, &err) < 0 &&
		    (kill_all || kill(rt_state_pid(&st), sig) < 0)) {
			rt_state_close(&st);
			return fail("kill: %s", err.message[0] ? err.message : strerror(errno));
		}
	}
	rt_state_close(&st);
	return 0;
}

static bool force;
static int delete_opt(int c, const char *arg)
{
	if (c != 'f')
		return -1;
	force = true;
	return 0;
}

static int cmd_delete(int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'}, {NULL, 0, NULL, 0}};
	struct hc_error err = {0};
	struct rt_state st;
	enum rt_status s;
	pid_t pid;

	if (one_id(argc, argv, "delete", "+f", opts, delete_opt))
		return 1;
	if (rt_state_open(root_dir, argv[optind], false, &st, &err) < 0) {
		rt_state_close(&st);
		if (err.code == -ENOENT && force) {
			/* a half-made one: its directory without a state */
			if (rt_id_valid(argv[optind]) && *st.dir)
				hc_path_rm_rf(st.dir, NULL);
			return 0;
		}
		return fail_err(&err);
	}
	s = rt_state_status(&st);
	if ((s == RT_RUNNING || s == RT_PAUSED) && !force) {
		rt_state_close(&st);
		return fail("cannot delete container %s that is not stopped: %s", argv[optind],
			    rt_status_name(s));
	}
	kill_hard(&st);
	pid = (pid_t)json_integer_value(json_object_get(st.rec, "pid"));
	for (int i = 0; pid > 0 && i < 200 && rt_state_pid(&st); i++)
		usleep(10000);
	if (rt_state_pid(&st))
		log_write("warning", "the container process did not end");
	hc_path_rm_rf(st.dir, NULL);
	rt_state_close(&st);
	return 0;
}

static int pause_resume(int argc, char **argv, bool pause)
{
	struct hc_error err = {0};
	struct rt_state st;
	enum rt_status s;
	int r;

	if (one_id(argc, argv, pause ? "pause" : "resume", "+", NULL, NULL) ||
	    open_existing(argv[optind], &st))
		return 1;
	s = rt_state_status(&st);
	if (pause ? s != RT_RUNNING && s != RT_CREATED : s != RT_PAUSED) {
		rt_state_close(&st);
		return fail(pause ? "container not running" : "container not paused");
	}
	r = pause ? hc_pvm_pause(vm_of(&st), &err) : hc_pvm_resume(vm_of(&st), &err);
	if (r >= 0) {
		json_object_set_new(st.rec, "status", json_string(pause ? "paused" : "running"));
		r = rt_state_save(&st, &err);
	}
	rt_state_close(&st);
	return r < 0 ? fail_err(&err) : 0;
}

static int cmd_pause(int argc, char **argv)
{
	return pause_resume(argc, argv, true);
}

static int cmd_resume(int argc, char **argv)
{
	return pause_resume(argc, argv, false);
}

static const char *ps_format = "table";
static int ps_opt(int c, const char *arg)
{
	if (c != 'f')
		return -1;
	ps_format = arg;
	return 0;
}

/* The host processes of a container: its supervisor and everything below it (the VMM, its
 * helpers), as containerd's `ps --format json` wants host pids. */
static size_t host_pids(pid_t top, pid_t *out, size_t max)
{
	size_t n = 0;

	if (top <= 0 || max == 0)
		return 0;
	out[n++] = top;
	for (size_t k = 0; k < n; k++) {
		DIR *d = opendir("/proc");
		struct dirent *e;

		if (!d)
			break;
		while ((e = readdir(d)) && n < max) {
			char path[64], buf[512], *p;
			pid_t pid = (pid_t)atoi(e->d_name);
			int ppid = 0;
			FILE *f;

			if (pid <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
			f = fopen(path, "re");
			if (!f)
				continue;
			p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
			fclose(f);
			if (p && sscanf(p, ") %*c %d", &ppid) == 1 && ppid == out[k])
				out[n++] = pid;
		}
		closedir(d);
	}
	return n;
}

static int cmd_ps(int argc, char **argv)
{
	static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
					     {NULL, 0, NULL, 0}};
	struct hc_pvm_exec_opts o;
	struct hc_pvm_exec_result res = {0};
	struct hc_error err = {0};
	struct rt_state st;
	char vm[HC_PVM_ID_LEN + 1];
	const char *cmd[64] = {"ps"};
	size_t n_cmd = 1;
	pid_t pid, pids[256];
	size_t n;
	int r;

	if (one_id(argc, argv, "ps", "+f:", opts, ps_opt) || open_existing(argv[optind], &st))
		return 1;
	pid = rt_state_status(&st) == RT_STOPPED ? 0 : rt_state_pid(&st);
	snprintf(vm, sizeof(vm), "%s", vm_of(&st) ? vm_of(&st) : "");
	rt_state_close(&st);
	if (hc_streq(ps_format, "json")) {
		n = host_pids(pid, pids, HC_ARRAY_SIZE(pids));
		printf("[");
		for (size_t i = 0; i < n; i++)
			printf("%s%d", i ? "," : "", (int)pids[i]);
		printf("]\n");
		return 0;
	}
	if (!hc_streq(ps_format, "table"))
		return fail("invalid format option");
	if (!pid)
		return fail("container %s is not running", argv[optind]);
	/* The table: the guest's processes, by the image's ps (runc's default -ef). */
	for (int i = optind + 1; i < argc && n_cmd < HC_ARRAY_SIZE(cmd) - 1; i++)
		cmd[n_cmd++] = argv[i];
	if (n_cmd == 1)
		cmd[n_cmd++] = "-ef";
	fflush(stdout);
	hc_pvm_exec_opts_init(&o);
	o.cmd = cmd;
	o.n_cmd = n_cmd;
	o.stdout_fd = 1;
	o.stderr_fd = 2;
	r = hc_pvm_exec(vm, &o, &res, &err);
	if (r < 0)
		return fail("ps: %s%s", err.message,
			    res.exit_code == 127 ? " (the image has no ps)" : "");
	return hc_pvm_exec_status(&res)
		       ? fail("ps: %s exited with status %d", cmd[0], hc_pvm_exec_status(&res))
		       : 0;
}

/* ---- exec ---- */

struct exec_args {
	const char *process, *pid_file, *console_socket, *cwd, *user;
	bool detach, tty;
	char **env;
	size_t n_env;
};

static int cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{"process", required_argument, NULL, 'p'},
		{"detach", no_argument, NULL, 'd'},
		{"pid-file", required_argument, NULL, 'P'},
		{"tty", no_argument, NULL, 't'},
		{"console-socket", required_argument, NULL, 'c'},
		{"cwd", required_argument, NULL, 'w'},
		{"env", required_argument, NULL, 'e'},
		{"user", required_argument, NULL, 'u'},
		{"no-new-privs", no_argument, NULL, 'n'},
		{"cap", required_argument, NULL, 'C'},
		{"preserve-fds", required_argument, NULL, 'F'},
		{"process-label", required_argument, NULL, 'L'},
		{"apparmor", required_argument, NULL, 'A'},
		{"cgroup", required_argument, NULL, 'G'},
		{NULL, 0, NULL, 0},
	};
	struct exec_args a = {0};
	struct rt_process p = {0};
	struct hc_error err = {0};
	struct rt_state st;
	char vm[HC_PVM_ID_LEN + 1];
	int c, r = 0, slave = -1, status;
	char *envs[256];
	size_t n_envs = 0;
	pid_t pid;

	while ((c = getopt_long(argc, argv, "+p:dte:u:", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			a.process = optarg;
			break;
		case 'd':
			a.detach = true;
			break;
		case 'P':
			a.pid_file = optarg;
			break;
		case 't':
			a.tty = true;
			break;
		case 'c':
			a.console_socket = optarg;
			break;
		case 'w':
			a.cwd = optarg;
			break;
		case 'u':
			a.user = optarg;
			break;
		case 'e':
			if (n_envs == HC_ARRAY_SIZE(envs))
				return fail("exec: too many --env");
			envs[n_envs++] = optarg;
			break;
		case 'n':
		case 'C':
		case 'F':
		case 'L':
		case 'A':
		case 'G':
			break;
		default:
			return fail("exec: unknown option");
		}
	}
	if (optind >= argc)
		return fail("exec: a container id is needed");
	if (a.process) {
		_cleanup_free_ char *data = NULL;
		size_t len;

		r = hc_path_read_file(a.process, RT_CONFIG_MAX, &data, &len, &err);
		if (r >= 0)
			r = rt_process_parse(data, len, &p, &err);
		if (r < 0)
			return fail_err(&err);
		a.tty = a.tty || p.terminal;
	} else {
		if (optind + 1 >= argc)
			return fail("exec: args must not be empty");
		p.n_args = (size_t)(argc - optind - 1);
		p.args = calloc(p.n_args + 1, sizeof(char *));
		p.env = calloc(n_envs + 1, sizeof(char *));
		if (!p.args || !p.env)
			return fail("out of memory");
		for (size_t i = 0; i < p.n_args; i++)
			p.args[i] = strdup(argv[optind + 1 + i]);
		for (size_t i = 0; i < n_envs; i++)
			p.env[p.n_env++] = strdup(envs[i]);
		if (a.cwd)
			p.cwd = strdup(a.cwd);
		if (a.user && sscanf(a.user, "%u:%u", &p.uid, &p.gid) < 1) {
			rt_process_free(&p);
			return fail("exec: --user must be UID[:GID]");
		}
	}
	if (open_existing(argv[optind], &st)) {
		rt_process_free(&p);
		return 1;
	}
	if (rt_state_status(&st) != RT_RUNNING) {
		rt_state_close(&st);
		rt_process_free(&p);
		return fail("cannot exec in a stopped container");
	}
	snprintf(vm, sizeof(vm), "%s", vm_of(&st) ? vm_of(&st) : "");
	rt_state_close(&st);
	if (a.tty) {
		if (!a.console_socket && a.detach) {
			rt_process_free(&p);
			return fail("exec: --tty with --detach needs --console-socket");
		}
		if (a.console_socket && console_setup(a.console_socket, &slave, &err) < 0) {
			rt_process_free(&p);
			return fail_err(&err);
		}
	}
	if (!a.detach) {
		if (slave >= 0)
			stdio_to_slave(slave);
		if (signals_forward(&err) < 0)
			return fail_err(&err);
		status = exec_in_vm(vm, &p, true);
		rt_process_free(&p);
		return status;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rt_process_free(&p);
		return fail("fork: %s", strerror(errno));
	}
	if (pid == 0) {
		if (slave >= 0)
			stdio_to_slave(slave);
		else
			setsid();
		if (signals_forward(&err) < 0)
			_exit(125);
		_exit(exec_in_vm(vm, &p, true));
	}
	hc_closep(&slave);
	rt_process_free(&p);
	if (a.pid_file && write_pid_file(a.pid_file, pid, &err) < 0) {
		kill(pid, SIGKILL);
		return fail_err(&err);
	}
	return 0;
}

/* ---- features, version ---- */

static int cmd_features(int argc, char **argv)
{
	static const char features[] =
		"{\n"
		"  \"ociVersionMin\": \"1.0.0\",\n"
		"  \"ociVersionMax\": \"" RT_OCI_VERSION "\",\n"
		"  \"hooks\": [],\n"
		"  \"mountOptions\": [\"bind\", \"rbind\", \"ro\", \"rw\"],\n"
		"  \"linux\": {\n"
		"    \"namespaces\": [\"pid\", \"network\", \"ipc\", \"uts\", \"mount\"],\n"
		"    \"capabilities\": [],\n"
		"    \"cgroup\": {\"v1\": false, \"v2\": false, \"systemd\": false, "
		"\"systemdUser\": false},\n"
		"    \"seccomp\": {\"enabled\": false},\n"
		"    \"apparmor\": {\"enabled\": false},\n"
		"    \"selinux\": {\"enabled\": false}\n"
		"  },\n"
		"  \"annotations\": {\n"
		"    \"org.hotcell.runtime\": \"micro-VM (hotcell " HC_VERSION ")\",\n"
		"    \"org.hotcell.backend\": \"qemu|firecracker|cloud-hypervisor|libkrun\",\n"
		"    \"org.hotcell.cpus\": \"virtual CPUs\",\n"
		"    \"org.hotcell.memory_mib\": \"guest memory in MiB\"\n"
		"  }\n"
		"}\n";

	fputs(features, stdout);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: hotcell-runtime [--root DIR] [--log FILE] [--log-format text|json] "
		   "[--systemd-cgroup] COMMAND ...\n"
		   "  create --bundle DIR [--pid-file F] [--console-socket S] ID\n"
		   "  start ID | state ID | kill [--all] ID [SIGNAL] | delete [--force] ID\n"
		   "  exec [--process F | --cwd D -e K=V -u UID:GID] [--detach] [--pid-file F] "
		   "[--tty] [--console-socket S] ID [ARGS...]\n"
		   "  pause ID | resume ID | ps [--format table|json] ID | features | --version\n");
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{"create", cmd_create},	    {"start", cmd_start},   {"state", cmd_state},
	{"kill", cmd_kill},	    {"delete", cmd_delete}, {"exec", cmd_exec},
	{"pause", cmd_pause},	    {"resume", cmd_resume}, {"ps", cmd_ps},
	{"features", cmd_features},
};

/* A global option's value: --opt VALUE or --opt=VALUE. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (hc_streq(argv[*i], name) && *i + 1 < argc)
		return argv[++*i];
	return NULL;
}

int main(int argc, char **argv)
{
	const char *log_path = NULL, *v;
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if ((v = opt_value(argc, argv, &i, "--root")))
			root_dir = v;
		else if ((v = opt_value(argc, argv, &i, "--log")))
			log_path = v;
		else if ((v = opt_value(argc, argv, &i, "--log-format"))) {
			if (!hc_streq(v, "text") && !hc_streq(v, "json"))
				return fail("invalid log format \"%s\"", v);
			log_json = hc_streq(v, "json");
		} else if ((v = opt_value(argc, argv, &i, "--criu")) ||
			   (v = opt_value(argc, argv, &i, "--rootless"))) {
			/* accepted, not used */
		} else if (hc_streq(argv[i], "--systemd-cgroup") || hc_streq(argv[i], "--debug")) {
			debug = debug || hc_streq(argv[i], "--debug");
		} else if (hc_streq(argv[i], "--version") || hc_streq(argv[i], "-v")) {
			printf("hotcell-runtime version %s\nspec: %s\n", HC_VERSION,
			       RT_OCI_VERSION);
			return 0;
		} else if (hc_streq(argv[i], "--help") || hc_streq(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			return fail("unknown global option %s", argv[i]);
		}
	}
	if (log_path) {
		log_file = fopen(log_path, "ae");
		if (!log_file)
			return fail("--log %s: %s", log_path, strerror(errno));
	}
	hc_set_log_handler(lib_log, NULL);
	if (i >= argc) {
		usage(stderr);
		return fail("no command given");
	}
	for (size_t k = 0; k < HC_ARRAY_SIZE(commands); k++) {
		if (!hc_streq(argv[i], commands[k].name))
			continue;
		optind = 1;
		return commands[k].fn(argc - i, argv + i);
	}
	return fail("unknown command \"%s\"", argv[i]);
}
