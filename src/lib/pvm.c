/* SPDX-License-Identifier: MIT */
/* The hc_pvm_* API (hotcell.h): clients of the per-VM supervisors (src/vmd). */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/child.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/pty.h"
#include "lib/image.h"
#include "lib/migrate.h"
#include "lib/paths.h"
#include "lib/pvm.h"
#include "lib/snapshot.h"
#include "lib/runopts.h"
#include "proto/proto.h"

extern char **environ;

/* How long past the boot timeout the creator waits for the supervisor's word. */
#define CREATE_SLACK_MS 30000
/* How long rm/stop wait for a supervisor to end after asking it to. */
#define END_WAIT_MS 15000

/* ---- listing ---- */

struct entry {
	char id[HC_PVM_ID_LEN + 1];
	json_t *rec; /* NULL while the supervisor has not written it yet */
};

static int cmp_created(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	const char *cx = x->rec ? json_string_value(json_object_get(x->rec, "created")) : NULL;
	const char *cy = y->rec ? json_string_value(json_object_get(y->rec, "created")) : NULL;
	int c = strcmp(cx ? cx : "~", cy ? cy : "~");

	return c ? c : strcmp(x->id, y->id);
}

static void entries_free(struct entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(e[i].rec);
	free(e);
}

/* Every VM directory, with its record when it has one, oldest first. */
static int entries_read(struct entry **ret, size_t *ret_n, struct hc_error *err)
{
	char root[HC_PATH_MAX];
	struct entry *v = NULL;
	size_t n = 0;
	struct dirent *d;
	DIR *dir;
	int r;

	r = hc_pvm_state_root(root, sizeof(root), err);
	if (r < 0)
		return r;
	dir = opendir(root);
	if (!dir)
		return hc_error_errno(err, -errno, "open %s", root);
	while ((d = readdir(dir))) {
		struct hc_error ignore = {0};
		struct entry *nv;

		if (!hc_pvm_id_valid(d->d_name))
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			closedir(dir);
			entries_free(v, n);
			return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
		}
		v = nv;
		snprintf(v[n].id, sizeof(v[n].id), "%s", d->d_name);
		v[n].rec = NULL;
		if (hc_pvm_record_read(d->d_name, &v[n].rec, &ignore) < 0)
			v[n].rec = NULL;
		n++;
	}
	closedir(dir);
	if (n)
		qsort(v, n, sizeof(*v), cmp_created);
	*ret = v;
	*ret_n = n;
	return 0;
}

static enum hc_pvm_status entry_status(const struct entry *e)
{
	return e->rec ? hc_pvm_record_status(e->rec) : HC_PVM_CREATING;
}

HC_EXPORT int hc_pvm_resolve(const char *ref, char *ret_id, struct hc_error *err)
{
	struct entry *e = NULL;
	const char **ids = NULL, **names = NULL;
	size_t n = 0;
	int r;

	r = entries_read(&e, &n, err);
	if (r < 0)
		return r;
	ids = calloc(n + 1, sizeof(*ids));
	names = calloc(n + 1, sizeof(*names));
	if (!ids || !names) {
		r = hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		ids[i] = e[i].id;
		names[i] = e[i].rec ? json_string_value(json_object_get(e[i].rec, "name")) : NULL;
	}
	r = hc_pvm_resolve_in(ref, ids, names, n, err);
	if (r >= 0) {
		snprintf(ret_id, HC_PVM_ID_LEN + 1, "%s", e[r].id);
		r = 0;
	}
out:
	free(ids);
	free(names);
	entries_free(e, n);
	return r;
}

HC_EXPORT int hc_pvm_list(struct hc_pvm_info **ret, size_t *ret_n, struct hc_error *err)
{
	struct entry *e = NULL;
	struct hc_pvm_info *l;
	size_t n = 0;
	int r;

	r = entries_read(&e, &n, err);
	if (r < 0)
		return r;
	l = calloc(n + 1, sizeof(*l));
	if (!l) {
		entries_free(e, n);
		return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *rec = e[i].rec;
		const char *s;

		snprintf(l[i].id, sizeof(l[i].id), "%s", e[i].id);
		l[i].status = entry_status(&e[i]);
		if (!rec)
			continue;
		if ((s = json_string_value(json_object_get(rec, "name"))))
			l[i].name = strdup(s);
		if ((s = json_string_value(json_object_get(rec, "image"))))
			l[i].image = strdup(s);
		snprintf(l[i].digest, sizeof(l[i].digest), "%s",
			 (s = json_string_value(json_object_get(rec, "digest"))) ? s : "");
		snprintf(l[i].backend, sizeof(l[i].backend), "%s",
			 (s = json_string_value(json_object_get(rec, "backend"))) ? s : "");
		snprintf(l[i].created, sizeof(l[i].created), "%s",
			 (s = json_string_value(json_object_get(rec, "created"))) ? s : "");
		if (l[i].status == HC_PVM_RUNNING || l[i].status == HC_PVM_PAUSED ||
		    l[i].status == HC_PVM_CREATING)
			l[i].pid = (int)json_integer_value(json_object_get(rec, "pid"));
	}
	entries_free(e, n);
	*ret = l;
	*ret_n = n;
	return 0;
}

HC_EXPORT void hc_pvm_list_free(struct hc_pvm_info *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++) {
		free(list[i].name);
		free(list[i].image);
	}
	free(list);
}

HC_EXPORT char *hc_pvm_list_to_json(const struct hc_pvm_info *list, size_t n)
{
	json_t *a = json_array();
	char *s;

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_pack("{s:s,s:s?,s:s?,s:s,s:s,s:s,s:i}", "id",
						   list[i].id, "name", list[i].name, "image",
						   list[i].image, "backend", list[i].backend,
						   "status", hc_pvm_status_name(list[i].status),
						   "created", list[i].created, "pid", list[i].pid));
	s = a ? json_dumps(a, JSON_INDENT(2)) : NULL;
	json_decref(a);
	return s;
}

/* Reads the record of ref, resolved. */
static int open_record(const char *ref, char *id, json_t **rec, struct hc_error *err)
{
	int r = hc_pvm_resolve(ref, id, err);

	if (r < 0)
		return r;
	r = hc_pvm_record_read(id, rec, err);
	if (r == -ENOENT)
		return hc_error_setk(err, -EAGAIN, HC_EK_VM, "VM %.12s is being created", id);
	return r;
}

static int read_tail(const char *path, size_t max, char **ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t size;
	ssize_t n;
	char *buf;

	if (fd < 0 || (size = lseek(fd, 0, SEEK_END)) < 0)
		return -errno;
	buf = malloc(max + 1);
	if (!buf)
		return -ENOMEM;
	n = pread(fd, buf, max, size > (off_t)max ? size - (off_t)max : 0);
	if (n < 0) {
		free(buf);
		return -errno;
	}
	buf[n] = 0;
	for (ssize_t i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = ' ';
	*ret = buf;
	return 0;
}

HC_EXPORT int hc_pvm_inspect(const char *ref, char **ret_json, struct hc_error *err)
{
	char id[HC_PVM_ID_LEN + 1], dir[HC_PATH_MAX], path[HC_PATH_MAX + 16];
	enum hc_pvm_status st;
	json_t *rec = NULL;
	int r;

	r = open_record(ref, id, &rec, err);
	if (r < 0)
		return r;
	st = hc_pvm_record_status(rec);
	json_object_set_new(rec, "status", json_string(hc_pvm_status_name(st)));
	if (st == HC_PVM_DEAD && !json_object_get(rec, "console_tail")) {
		/* The supervisor itself died: the console it left tells what the guest saw. */
		_cleanup_free_ char *tail = NULL;
		const char *con = json_string_value(json_object_get(rec, "console"));

		if (con && read_tail(con, 2048, &tail) == 0)
			json_object_set_new(rec, "console_tail", json_string(tail));
		if (!json_object_get(rec, "error"))
			json_object_set_new(rec, "error",
					    json_string("the supervisor is gone (killed?)"));
	}
	if (st == HC_PVM_DEAD || st == HC_PVM_STOPPED)
		json_object_set_new(rec, "pid", json_integer(0));
	if (hc_pvm_state_dir(id, dir, sizeof(dir), err) >= 0) {
		snprintf(path, sizeof(path), "%s/vmd.log", dir);
		json_object_set_new(rec, "supervisor_log", json_string(path));
	}
	*ret_json = json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(rec);
	return *ret_json ? 0 : hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
}

/* ---- create ---- */

static int count_live(const struct entry *e, size_t n)
{
	int live = 0;

	for (size_t i = 0; i < n; i++) {
		enum hc_pvm_status st = entry_status(&e[i]);

		live += st == HC_PVM_RUNNING || st == HC_PVM_PAUSED || st == HC_PVM_CREATING;
	}
	return live;
}

static int max_vms(void)
{
	const char *s = getenv("HOTCELL_MAX_PERSISTENT_VMS");
	char *end;
	long v;

	if (!s || !*s)
		return HC_PVM_DEFAULT_MAX;
	v = strtol(s, &end, 10);
	return *end || v < 0 || v > 100000 ? HC_PVM_DEFAULT_MAX : (int)v;
}

/* Under the lock of vms/: checks the limit and the name, makes the VM's directory and writes
 * create.json. */
static int reserve(const struct hc_pvm_create_opts *o, char *id, char *dir, size_t dir_n,
		   struct hc_error *err)
{
	char root[HC_PATH_MAX], lock[HC_PATH_MAX + 8], path[HC_PATH_MAX + 16];
	_cleanup_close_ int lfd = -1;
	_cleanup_free_ char *data = NULL;
	struct entry *e = NULL;
	json_t *cj = NULL;
	size_t n = 0;
	int r, max = max_vms();

	r = hc_pvm_state_root(root, sizeof(root), err);
	if (r < 0)
		return r;
	snprintf(lock, sizeof(lock), "%s/.lock", root);
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX) < 0)
		return hc_error_errno(err, -errno, "lock %s", lock);
	r = entries_read(&e, &n, err);
	if (r < 0)
		return r;
	if (count_live(e, n) >= max) {
		r = hc_error_setk(
			err, -EUSERS, HC_EK_VM,
			"too many persistent VMs: %d are running (HOTCELL_MAX_PERSISTENT_VMS="
			"%d); remove some with `hotcell vm rm`",
			count_live(e, n), max);
		goto out;
	}
	for (size_t i = 0; o->name && i < n; i++) {
		const char *nm =
			e[i].rec ? json_string_value(json_object_get(e[i].rec, "name")) : NULL;

		if (hc_streq(nm, o->name)) {
			r = hc_error_setk(err, -EEXIST, HC_EK_USAGE,
					  "the name '%s' is already used by VM %.12s", o->name,
					  e[i].id);
			goto out;
		}
	}
	hc_path_random_id(id, HC_PVM_ID_LEN);
	id[HC_PVM_ID_LEN] = 0;
	r = hc_path_fmt(dir, dir_n, err, "%s/%s", root, id);
	if (r < 0)
		goto out;
	if (mkdir(dir, 0700) < 0) {
		r = hc_error_errno(err, -errno, "mkdir %s", dir);
		goto out;
	}
	cj = json_pack("{s:s?,s:f,s:f,s:s?}", "name", o->name, "idle_timeout", o->idle_timeout_s,
		       "lifetime", o->lifetime_s, "restore", o->restore_dir);
	if (cj && o->restore_dir && o->restore_paused) {
		json_object_set_new(cj, "restore_paused", json_true());
		json_object_set_new(cj, "commit_timeout", json_real(o->commit_timeout_s));
	}
	if (cj && o->owned_dir)
		json_object_set_new(cj, "owned_dir", json_string(o->owned_dir));
	/* A restore without run options takes the snapshot's. */
	if (cj && o->run)
		json_object_set_new(cj, "options", hc_runopts_to_json(o->run, HC_RUNOPT_VM));
	if (cj && o->workload) {
		json_t *cmd = json_array();

		for (size_t i = 0; i < o->workload->n_cmd; i++)
			json_array_append_new(cmd, json_string(o->workload->cmd[i]));
		json_object_set_new(cj, "workload",
				    json_pack("{s:o,s:b}", "cmd", cmd, "tty", o->workload->tty));
	}
	data = cj ? json_dumps(cj, JSON_INDENT(2)) : NULL;
	if (!data) {
		r = hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
		goto undo;
	}
	snprintf(path, sizeof(path), "%s/create.json", dir);
	r = hc_path_write_file_atomic(path, data, strlen(data), 0600, err);
	if (r >= 0)
		goto out;
undo:
	hc_path_rm_rf(dir, NULL);
out:
	json_decref(cj);
	entries_free(e, n);
	return r;
}

/* The environment of the supervisor: ours, with HOTCELL_HOME set to the state dir in use
 * (every process started for a VM keeps it: tools and tests find a VM's processes by it). */
static char **vmd_env(const char *home)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!hc_startswith(environ[i], "HOTCELL_HOME="))
			env[k++] = environ[i];
	if (asprintf(&env[k], "HOTCELL_HOME=%s", home) < 0) {
		free(env);
		return NULL;
	}
	return env;
}

/* Waits for the supervisor's first line on fd: "ok" or "error KIND MESSAGE". */
static int await_ready(int fd, int timeout_ms, const char *dir, struct hc_error *err)
{
	char line[1200];
	size_t len = 0;
	double deadline = hc_clock_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int t = hc_clock_left_ms(deadline);
		ssize_t n;

		if (t == 0)
			return hc_error_setk(err, -ETIMEDOUT, HC_EK_VM,
					     "the VM supervisor did not report within %d s (see "
					     "%s/vmd.log)",
					     timeout_ms / 1000, dir);
		if (poll(&p, 1, t) < 0) {
			if (errno == EINTR)
				continue;
			return hc_error_errno(err, -errno, "poll");
		}
		n = read(fd, line + len, sizeof(line) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		line[len] = 0;
		if (strchr(line, '\n') || len == sizeof(line) - 1)
			break;
	}
	line[len] = 0;
	line[strcspn(line, "\n")] = 0;
	if (hc_streq(line, "ok"))
		return 0;
	if (hc_startswith(line, "error ")) {
		char *kind = line + 6, *msg = strchr(kind, ' ');

		if (msg)
			*msg++ = 0;
		hc_error_setk(err, -EIO, HC_EK_VM, "%s", msg ? msg : "the VM could not start");
		snprintf(err->kind, sizeof(err->kind), "%s", kind);
		return err->code;
	}
	{
		char path[HC_PATH_MAX + 16];
		_cleanup_free_ char *tail = NULL;

		snprintf(path, sizeof(path), "%s/vmd.log", dir);
		if (read_tail(path, 600, &tail) == 0 && tail[0]) {
			tail[strcspn(tail, "\n")] = 0;
			return hc_error_setk(err, -EIO, HC_EK_VM,
					     "the VM supervisor ended during boot: %s", tail);
		}
	}
	return hc_error_setk(err, -EIO, HC_EK_VM, "the VM supervisor ended during boot");
}

/* Waits (bounded) until the VM's supervisor has ended; SIGKILL at the end of the wait when
 * kill_after. */
static void await_end(const char *id, int wait_ms, bool kill_after)
{
	double deadline = hc_clock_ms() + wait_ms;
	struct hc_error ignore = {0};
	json_t *rec = NULL;
	pid_t pid;
	unsigned long long start;

	if (hc_pvm_record_read(id, &rec, &ignore) < 0)
		return;
	pid = (pid_t)json_integer_value(json_object_get(rec, "pid"));
	start = (unsigned long long)json_integer_value(json_object_get(rec, "pid_start"));
	json_decref(rec);
	while (hc_pvm_proc_alive(pid, start)) {
		if (hc_clock_left_ms(deadline) == 0) {
			if (!kill_after)
				return;
			/* The start time matched a moment ago: it is still our supervisor. */
			kill(pid, SIGKILL);
			kill_after = false;
			deadline = hc_clock_ms() + 2000;
		}
		usleep(20 * 1000);
	}
}

HC_EXPORT int hc_pvm_create(struct hc_store *store, const struct hc_pvm_create_opts *o,
			    char *ret_id, struct hc_error *err)
{
	char id[HC_PVM_ID_LEN + 1], dir[HC_PATH_MAX], vmd[HC_PATH_MAX], home[HC_PATH_MAX];
	char log[HC_PATH_MAX + 16], fdstr[16];
	struct hc_child child = HC_CHILD_INIT;
	_cleanup_close_ int logfd = -1;
	int pipefd[2] = {-1, -1}, r, timeout_ms;
	char **env = NULL;

	if (!o || (!o->run && !o->restore_dir))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "no VM options");
	if (o->run && !o->restore_dir && !!o->run->image == !!o->run->rootfs_dir)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "give either an image or a rootfs directory");
	if (o->name && !hc_pvm_name_valid(o->name))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "invalid VM name '%.140s' ([A-Za-z0-9][A-Za-z0-9_.-]*, not an "
				     "id)",
				     o->name);
	if (o->idle_timeout_s < 0 || o->lifetime_s < 0)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "negative timeout");
	if (o->workload && (!o->workload->cmd || !o->workload->n_cmd || o->workload->stdin_fd < 0 ||
			    o->workload->stdout_fd < 0 || o->workload->stderr_fd < 0))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "a workload needs a command and its three stdio fds");
	/* A snapshot that cannot be restored is said here, before a supervisor starts; the
	 * supervisor gets its absolute path (it runs elsewhere). */
	struct hc_pvm_create_opts ro;
	char snapdir[HC_PATH_MAX];
	if (o->restore_dir) {
		struct hc_lib_snapshot *snap = NULL;

		r = hc_lib_snapshot_open(o->restore_dir, &snap, err);
		if (r < 0)
			return r;
		snprintf(snapdir, sizeof(snapdir), "%s", snap->dir);
		hc_lib_snapshot_close(snap);
		ro = *o;
		ro.restore_dir = snapdir;
		o = &ro;
	}
	r = hc_lib_vmd_find(vmd, sizeof(vmd), err);
	if (r < 0)
		return r;
	/* A wrong image name is the likeliest mistake: say so (and pull, by the policy) here,
	 * before a supervisor starts. */
	if (store && o->run && o->run->image && !o->restore_dir) {
		struct hc_lib_image img = HC_LIB_IMAGE_INIT;

		r = hc_lib_image_resolve(store, o->run, &img, err);
		hc_lib_image_release(&img);
		if (r < 0)
			return r;
	}
	r = hc_path_state_dir(home, sizeof(home), err);
	if (r < 0)
		return r;
	r = reserve(o, id, dir, sizeof(dir), err);
	if (r < 0)
		return r;

	snprintf(log, sizeof(log), "%s/vmd.log", dir);
	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	env = vmd_env(home);
	if (logfd < 0 || !env || pipe2(pipefd, O_CLOEXEC) < 0) {
		r = hc_error_errno(err, -(errno ? errno : ENOMEM), "start the VM supervisor");
		goto fail;
	}
	snprintf(fdstr, sizeof(fdstr), "%d", 3);
	{
		const char *argv[] = {vmd, "--ready-fd", fdstr, id, NULL};
		/* The workload's stdio at fixed numbers (vmd/vmd.h, VMD_WORK_FD). */
		struct hc_fd_map map[] = {
			{pipefd[1], 3},
			{o->workload ? o->workload->stdin_fd : -1, 4},
			{o->workload ? o->workload->stdout_fd : -1, 5},
			{o->workload ? o->workload->stderr_fd : -1, 6},
		};
		struct hc_child_opts co = {
			.argv = argv,
			.envp = (const char *const *)env,
			.stdin_fd = -1,
			.stdout_fd = logfd,
			.stderr_fd = logfd,
			.fds = map,
			.n_fds = o->workload ? 4 : 1,
			.cwd = "/",
			.new_session = true,
		};

		snprintf(child.name, sizeof(child.name), "hotcell-vmd");
		r = hc_child_spawn(&child, &co, err);
	}
	hc_closep(&pipefd[1]);
	if (r < 0)
		goto fail;
	/* The first process forks the supervisor and exits at once. */
	if (hc_child_wait(&child, 10000) < 0)
		hc_child_stop(&child, 0);
	timeout_ms = (int)((o->run && o->run->boot_timeout_s > 0 ? o->run->boot_timeout_s : 60.0) *
			   1000.0) +
		     CREATE_SLACK_MS;
	r = await_ready(pipefd[0], timeout_ms, dir, err);
	if (r < 0)
		goto fail;
	snprintf(ret_id, HC_PVM_ID_LEN + 1, "%s", id);
	r = 0;
	goto out;
fail:
	/* The supervisor ends the VM itself on a failed boot; make sure it is gone, then remove
	 * every trace. */
	await_end(id, END_WAIT_MS, true);
	{
		struct hc_error ignore = {0};
		json_t *rec = NULL;

		if (hc_pvm_record_read(id, &rec, &ignore) == 0) {
			const char *rd = json_string_value(json_object_get(rec, "runtime_dir"));

			if (rd)
				hc_path_rm_rf(rd, NULL);
			json_decref(rec);
		}
	}
	hc_path_rm_rf(dir, NULL);
out:
	hc_closep(&pipefd[0]);
	hc_closep(&pipefd[1]);
	if (env) {
		for (size_t i = 0; env[i]; i++)
			if (hc_startswith(env[i], "HOTCELL_HOME="))
				free(env[i]);
		free(env);
	}
	return r;
}

/* ---- pause, resume, stop, rm, prune ---- */

static int simple_call(const char *ref, const char *op, struct hc_error *err)
{
	char id[HC_PVM_ID_LEN + 1];
	int r = hc_pvm_resolve(ref, id, err);

	if (r < 0)
		return r;
	return hc_pvm_ctl_call(id, json_pack("{s:s}", "op", op), NULL, err);
}

HC_EXPORT int hc_pvm_start(const char *ref, struct hc_error *err)
{
	return simple_call(ref, "start", err);
}

HC_EXPORT int hc_pvm_kill(const char *ref, int sig, bool all, struct hc_error *err)
{
	char id[HC_PVM_ID_LEN + 1];
	int r = hc_pvm_resolve(ref, id, err);

	if (r < 0)
		return r;
	if (sig < 1 || sig > 64)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "signal %d: not 1..64", sig);
	return hc_pvm_ctl_call(
		id, json_pack("{s:s,s:i,s:b}", "op", "signal", "signal", sig, "all", all), NULL,
		err);
}

HC_EXPORT int hc_pvm_pause(const char *ref, struct hc_error *err)
{
	return simple_call(ref, "pause", err);
}

HC_EXPORT int hc_pvm_resume(const char *ref, struct hc_error *err)
{
	return simple_call(ref, "resume", err);
}

/* ---- snapshot, fork (lib/snapshot.h, docs/snapshots.md) ---- */

HC_EXPORT int hc_pvm_snapshot(const char *ref, const char *dir, bool leave_paused,
			      struct hc_error *err)
{
	char id[HC_PVM_ID_LEN + 1], abs[HC_PATH_MAX], cwd[HC_PATH_MAX];
	int r;

	if (!dir || !*dir)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "snapshot: no directory");
	r = hc_pvm_resolve(ref, id, err);
	if (r < 0)
		return r;
	/* The supervisor has its own working directory: it gets an absolute path. */
	if (dir[0] == '/')
		r = hc_path_fmt(abs, sizeof(abs), err, "%s", dir);
	else if (!getcwd(cwd, sizeof(cwd)))
		r = hc_error_errno(err, -errno, "getcwd");
	else
		r = hc_path_fmt(abs, sizeof(abs), err, "%s/%s", cwd, dir);
	if (r < 0)
		return r;
	return hc_pvm_ctl_call(id,
			       json_pack("{s:s,s:s,s:b}", "op", "snapshot", "dir", abs,
					 "leave_paused", leave_paused),
			       NULL, err);
}

HC_EXPORT int hc_pvm_fork(const char *ref, unsigned count, char (*ret_ids)[HC_PVM_ID_LEN + 1],
			  struct hc_error *err)
{
	char id[HC_PVM_ID_LEN + 1], dir[HC_PATH_MAX];
	json_t *reply = NULL;
	unsigned made = 0;
	int r;

	if (count < 1 || count > HC_PVM_DEFAULT_MAX)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "fork: --count must be 1..%d",
				     HC_PVM_DEFAULT_MAX);
	r = hc_pvm_resolve(ref, id, err);
	if (r < 0)
		return r;
	r = hc_pvm_ctl_call(id, json_pack("{s:s}", "op", "fork"), &reply, err);
	if (r < 0)
		return hc_error_prefix(err, "fork");
	r = hc_path_fmt(dir, sizeof(dir), err, "%s",
			json_string_value(json_object_get(reply, "dir"))
				? json_string_value(json_object_get(reply, "dir"))
				: "");
	json_decref(reply);
	if (r < 0 || !dir[0] || hc_path_exists(dir) == false) {
		if (r >= 0)
			r = hc_error_setk(err, -EPROTO, HC_EK_INTERNAL,
					  "fork: the supervisor named no snapshot");
		return r;
	}
	for (; made < count; made++) {
		struct hc_pvm_create_opts co = {.restore_dir = dir};

		r = hc_pvm_create(NULL, &co, ret_ids[made], err);
		if (r < 0)
			break;
	}
	/* The forks map the memory copy-on-write: its name can go now (docs/snapshots.md). */
	{
		struct hc_error e = {0};

		if (hc_path_rm_rf(dir, &e) < 0)
			hc_warn("fork: cannot remove %s: %s", dir, e.message);
	}
	if (r < 0) {
		/* All or nothing. */
		for (unsigned i = 0; i < made; i++) {
			struct hc_error e = {0};

			if (hc_pvm_remove(ret_ids[i], true, &e) < 0)
				hc_warn("fork: cannot remove %.12s: %s", ret_ids[i], e.message);
		}
		return hc_error_prefix(err, "fork (%u of %u made, removed again)", made, count);
	}
	return 0;
}

static int stop_id(const char *id, double grace_s, struct hc_error *err)
{
	json_t *rec = NULL;
	enum hc_pvm_status st;
	int r;

	r = hc_pvm_record_read(id, &rec, err);
	if (r < 0)
		return r;
	st = hc_pvm_record_status(rec);
	json_decref(rec);
	if (st == HC_PVM_STOPPED || st == HC_PVM_DEAD)
		return 0;
	r = hc_pvm_ctl_call(id, json_pack("{s:s,s:f}", "op", "stop", "grace", grace_s), NULL, err);
	/* The supervisor answers once the VM has ended, then exits; a supervisor that does not
	 * answer is ended from here. */
	await_end(id, END_WAIT_MS, true);
	return r == -EPIPE ? 0 : r;
}

HC_EXPORT int hc_pvm_stop(const char *ref, double grace_s, struct hc_error *err)
{
	char id[HC_PVM_ID_LEN + 1];
	int r = hc_pvm_resolve(ref, id, err);

	if (r < 0)
		return r;
	return stop_id(id, grace_s > 0 ? grace_s : 10.0, err);
}

/* The runtime dir of a record, if it is one of ours (under the runtime base). */
static void remove_runtime_dir(const json_t *rec)
{
	const char *rd = json_string_value(json_object_get(rec, "runtime_dir"));
	char base[HC_PATH_MAX];
	struct hc_error ignore = {0};

	if (!rd || hc_path_runtime_dir(base, sizeof(base), &ignore) < 0)
		return;
	if (strncmp(rd, base, strlen(base)) != 0 || rd[strlen(base)] != '/' || strstr(rd, "/.."))
		return;
	hc_path_rm_rf(rd, NULL);
}

/* What a migration brought (hc_pvm_create_opts.owned_dir): only ever under migrate/. */
static void remove_owned_dir(const json_t *rec)
{
	const char *od = json_string_value(json_object_get(rec, "owned_dir"));
	char base[HC_PATH_MAX];
	struct hc_error ignore = {0};

	if (!od || hc_lib_migrate_dir(base, sizeof(base), &ignore) < 0)
		return;
	if (strncmp(od, base, strlen(base)) != 0 || od[strlen(base)] != '/' || strstr(od, "/.."))
		return;
	hc_path_rm_rf(od, NULL);
}

static int remove_id(const char *id, bool force, struct hc_error *err)
{
	char dir[HC_PATH_MAX];
	json_t *rec = NULL;
	enum hc_pvm_status st = HC_PVM_CREATING;
	int r;

	r = hc_pvm_state_dir(id, dir, sizeof(dir), err);
	if (r < 0)
		return r;
	r = hc_pvm_record_read(id, &rec, err);
	if (r == 0)
		st = hc_pvm_record_status(rec);
	else if (r != -ENOENT)
		return r;
	if (st == HC_PVM_RUNNING || st == HC_PVM_PAUSED || st == HC_PVM_CREATING) {
		if (!force) {
			json_decref(rec);
			return hc_error_setk(err, -EBUSY, HC_EK_VM,
					     "VM %.12s is %s: stop it first, or use rm -f", id,
					     hc_pvm_status_name(st));
		}
		if (rec) {
			struct hc_error e = {0};

			if (stop_id(id, 0, &e) < 0)
				hc_debug("rm -f %.12s: %s", id, e.message);
			await_end(id, 2000, true);
		}
		json_decref(rec);
		rec = NULL;
		if (hc_pvm_record_read(id, &rec, err) < 0)
			rec = NULL;
	}
	/* After a SIGKILLed supervisor its runtime dir is all that is left of the VM: its VMM and
	 * helpers died with it (PR_SET_PDEATHSIG). */
	if (rec) {
		remove_runtime_dir(rec);
		remove_owned_dir(rec);
	}
	json_decref(rec);
	r = hc_path_rm_rf(dir, err);
	return r < 0 ? r : 0;
}

HC_EXPORT int hc_pvm_remove(const char *ref, bool force, struct hc_error *err)
{
	char id[HC_PVM_ID_LEN + 1];
	int r = hc_pvm_resolve(ref, id, err);

	if (r < 0)
		return r;
	return remove_id(id, force, err);
}

HC_EXPORT int hc_pvm_prune(struct hc_error *err)
{
	struct entry *e = NULL;
	size_t n = 0;
	int r, count = 0;

	r = entries_read(&e, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		enum hc_pvm_status st = entry_status(&e[i]);
		struct hc_error e2 = {0};

		if (st != HC_PVM_STOPPED && st != HC_PVM_DEAD)
			continue;
		if (remove_id(e[i].id, false, &e2) == 0)
			count++;
		else
			hc_warn("prune %.12s: %s", e[i].id, e2.message);
	}
	entries_free(e, n);
	return count;
}

HC_EXPORT int hc_pvm_logs(const char *ref, int fd, struct hc_error *err)
{
	char id[HC_PVM_ID_LEN + 1], dir[HC_PATH_MAX], saved[HC_PATH_MAX + 16];
	const char *path = NULL;
	_cleanup_close_ int in = -1;
	enum hc_pvm_status st;
	json_t *rec = NULL;
	int r;

	r = open_record(ref, id, &rec, err);
	if (r < 0)
		return r;
	st = hc_pvm_record_status(rec);
	r = hc_pvm_state_dir(id, dir, sizeof(dir), err);
	if (r < 0)
		goto out;
	snprintf(saved, sizeof(saved), "%s/console.log", dir);
	if (st == HC_PVM_RUNNING || st == HC_PVM_PAUSED || !hc_path_exists(saved))
		path = json_string_value(json_object_get(rec, "console"));
	if (!path || !hc_path_exists(path))
		path = saved;
	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		r = hc_error_errno(err, -errno, "VM %.12s has no console log (%s)", id, path);
		goto out;
	}
	/* The log is capped by punching a hole before its last HOTCELL_CONSOLE_MAX bytes
	 * (hc_vm_console_trim): start where the data does. ENXIO: nothing but the hole. */
	if (lseek(in, 0, SEEK_DATA) < 0 && errno == ENXIO) {
		r = 0;
		goto out;
	}
	for (;;) {
		char buf[65536];
		ssize_t n = read(in, buf, sizeof(buf)), off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = hc_error_errno(err, -errno, "read %s", path);
			goto out;
		}
		if (n == 0)
			break;
		while (off < n) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				r = hc_error_errno(err, -errno, "write the log");
				goto out;
			}
			off += w;
		}
	}
	r = 0;
out:
	json_decref(rec);
	return r;
}

/* ---- exec ---- */

HC_EXPORT void hc_pvm_exec_opts_init(struct hc_pvm_exec_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->stdin_fd = o->stdout_fd = o->stderr_fd = o->cancel_fd = -1;
	o->tty_fd = o->winch_fd = -1;
}

HC_EXPORT int hc_pvm_exec_status(const struct hc_pvm_exec_result *res)
{
	if (res->timed_out)
		return 124;
	if (res->signal > 0)
		return 128 + res->signal;
	if (res->exit_code >= 0 && res->exit_code <= 255)
		return res->exit_code;
	return 125;
}

static void write_fd(int fd, const uint8_t *p, size_t n, bool *broken)
{
	while (fd >= 0 && n > 0 && !*broken) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};

			poll(&pf, 1, -1);
			continue;
		}
		if (w < 0) {
			*broken = true; /* our reader is gone: keep draining the VM */
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static int send_all(int fd, struct hc_buf *out, struct hc_error *err)
{
	while (out->len > 0) {
		ssize_t n = send(fd, out->data, out->len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return hc_error_errno(err, -errno, "write to the supervisor");
		hc_buf_consume(out, (size_t)n);
	}
	return 0;
}

/* The exec request: env entries "KEY" alone take the caller's value here (the supervisor's
 * environment is not the caller's). */
static json_t *exec_request(const struct hc_pvm_exec_opts *o)
{
	json_t *cmd = json_array(), *env = json_array(), *req;

	for (size_t i = 0; i < o->n_cmd; i++)
		json_array_append_new(cmd, json_string(o->cmd[i]));
	for (size_t i = 0; i < o->n_env; i++) {
		const char *e = o->env[i], *val;

		if (strchr(e, '=')) {
			json_array_append_new(env, json_string(e));
		} else if ((val = getenv(e))) {
			char *kv = NULL;

			if (asprintf(&kv, "%s=%s", e, val) >= 0)
				json_array_append_new(env, json_string(kv));
			free(kv);
		}
	}
	req = json_pack("{s:s,s:o,s:o,s:s?,s:s?,s:f,s:b,s:b}", "op", "exec", "cmd", cmd, "env", env,
			"workdir", o->workdir, "user", o->user, "timeout", o->timeout_s, "detach",
			o->detach, "stdin", o->stdin_fd >= 0 && !o->detach);
	if (req && o->image_command && o->n_cmd == 0)
		json_object_set_new(req, "image_command", json_true());
	if (req && o->tty) {
		const char *term = o->term ? o->term : getenv("TERM");
		uint16_t rows = 0, cols = 0;

		if (o->tty_fd >= 0 && hc_pty_get_size(o->tty_fd, &rows, &cols) < 0)
			rows = cols = 0;
		json_object_set_new(req, "tty", json_true());
		json_object_set_new(req, "rows", json_integer(rows));
		json_object_set_new(req, "cols", json_integer(cols));
		if (term && *term && strlen(term) < 64 && !strchr(term, '\n'))
			json_object_set_new(req, "term", json_string(term));
	}
	return req;
}

HC_EXPORT int hc_pvm_exec(const char *ref, const struct hc_pvm_exec_opts *o,
			  struct hc_pvm_exec_result *res, struct hc_error *err)
{
	char id[HC_PVM_ID_LEN + 1];
	struct hc_buf out = HC_BUF_INIT(0),
		      in = HC_BUF_INIT(HC_CTL_HEADER + HC_CTL_MAX_JSON + 65536);
	_cleanup_close_ int fd = -1;
	bool stdin_open, out_broken = false, err_broken = false;
	int cancels = 0, r;
	double t0 = hc_clock_ms();

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	if (!o || ((!o->cmd || o->n_cmd == 0) && !o->image_command))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "exec: no command given");
	r = hc_pvm_resolve(ref, id, err);
	if (r < 0)
		return r;
	fd = hc_pvm_ctl_connect(id, err);
	if (fd < 0)
		return fd;
	{
		json_t *req = exec_request(o);

		r = req ? hc_pvm_ctl_append_json(&out, HC_CTL_REQUEST, req) : -ENOMEM;
		json_decref(req);
		if (r < 0) {
			r = hc_error_errno(err, r, "encode the request");
			goto out;
		}
	}
	stdin_open = o->stdin_fd >= 0 && !o->detach;
	for (;;) {
		struct pollfd p[4] = {
			{.fd = fd, .events = (short)(POLLIN | (out.len ? POLLOUT : 0))},
			{.fd = stdin_open && out.len < 256 * 1024 ? o->stdin_fd : -1,
			 .events = POLLIN},
			{.fd = o->cancel_fd, .events = POLLIN},
			{.fd = o->tty ? o->winch_fd : -1, .events = POLLIN},
		};
		struct hc_pvm_ctl_frame f;
		size_t used;

		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = hc_error_errno(err, -errno, "poll");
			goto out;
		}
		if (p[2].revents) {
			char b[16];
			ssize_t n = read(o->cancel_fd, b, sizeof(b));

			cancels += n > 0 ? (int)n : 2;
			if (cancels == 1) {
				uint8_t sig[4] = {0, 0, 0, SIGTERM};

				r = hc_pvm_ctl_append(&out, HC_CTL_SIGNAL, sig, 4);
			} else {
				r = hc_pvm_ctl_append(&out, HC_CTL_CANCEL, NULL, 0);
				if (r >= 0 && send_all(fd, &out, err) >= 0)
					r = hc_error_setk(err, -ECANCELED, "cancelled",
							  "interrupted");
				goto out;
			}
			if (r < 0) {
				r = hc_error_errno(err, r, "queue a signal");
				goto out;
			}
		}
		if (p[3].revents) {
			uint8_t b[16], sz[4];
			uint16_t rows, cols;

			while (read(o->winch_fd, b, sizeof(b)) > 0)
				;
			if (o->tty_fd >= 0 && hc_pty_get_size(o->tty_fd, &rows, &cols) == 0) {
				sz[0] = (uint8_t)(rows >> 8);
				sz[1] = (uint8_t)rows;
				sz[2] = (uint8_t)(cols >> 8);
				sz[3] = (uint8_t)cols;
				if (hc_pvm_ctl_append(&out, HC_CTL_RESIZE, sz, 4) < 0)
					hc_debug("cannot queue the resize");
			}
		}
		if (p[1].revents) {
			uint8_t buf[HC_CTL_MAX_DATA];
			ssize_t n = read(o->stdin_fd, buf, sizeof(buf));

			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				n = -2;
			if (n > 0)
				r = hc_pvm_ctl_append(&out, HC_CTL_STDIN, buf, (size_t)n);
			else if (n != -2) {
				stdin_open = false;
				r = hc_pvm_ctl_append(&out, HC_CTL_STDIN_CLOSE, NULL, 0);
			}
			if (r < 0) {
				r = hc_error_errno(err, r, "queue stdin");
				goto out;
			}
		}
		if (out.len && (r = send_all(fd, &out, err)) < 0) {
			if (r != -EPIPE && r != -ECONNRESET)
				goto out;
			/* The command ended and the supervisor answered and closed while our stdin
			 * (its EOF) was on the way: the reply is still to be read. */
			hc_error_clear(err);
			hc_buf_consume(&out, out.len);
			stdin_open = false;
			r = 0;
		}
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		{
			ssize_t n;

			if (hc_buf_reserve(&in, 65536) < 0) {
				r = hc_error_setk(err, -EPROTO, HC_EK_VM, "frame too large");
				goto out;
			}
			n = recv(fd, in.data + in.len, in.cap - in.len - 1, MSG_DONTWAIT);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				r = hc_error_setk(err, -EPIPE, HC_EK_VM,
						  "the supervisor of VM %.12s went away", id);
				goto out;
			}
			in.len += (size_t)n;
		}
		while ((r = hc_pvm_ctl_parse((const uint8_t *)in.data, in.len, &f, &used)) > 0) {
			if (f.type == HC_CTL_STDOUT || f.type == HC_CTL_STDERR) {
				bool is_err = f.type == HC_CTL_STDERR;

				write_fd(is_err ? o->stderr_fd : o->stdout_fd, f.payload, f.len,
					 is_err ? &err_broken : &out_broken);
			} else if (f.type == HC_CTL_EVENT) {
				json_t *ev = json_loadb((const char *)f.payload, f.len, 0, NULL);

				if (json_is_integer(json_object_get(ev, "started"))) {
					res->pid = (int)json_integer_value(
						json_object_get(ev, "started"));
					if (o->on_started)
						o->on_started(o->userdata, (unsigned)res->pid);
				}
				json_decref(ev);
			} else if (f.type == HC_CTL_REPLY) {
				json_t *reply = json_loadb((const char *)f.payload, f.len, 0, NULL);
				const json_t *e = json_object_get(reply, "error");

				res->t_exec_ms = hc_clock_ms() - t0;
				r = json_is_object(reply) ? hc_pvm_ctl_reply_error(reply, err)
							  : hc_error_setk(err, -EPROTO, HC_EK_VM,
									  "malformed reply");
				if (e && json_integer_value(json_object_get(e, "exit_code")) > 0)
					res->exit_code = (int)json_integer_value(
						json_object_get(e, "exit_code"));
				if (r == 0) {
					res->exit_code = (int)json_integer_value(
						json_object_get(reply, "exit_code"));
					res->signal = (int)json_integer_value(
						json_object_get(reply, "signal"));
					res->timed_out =
						json_is_true(json_object_get(reply, "timed_out"));
					if (json_is_integer(json_object_get(reply, "pid")))
						res->pid = (int)json_integer_value(
							json_object_get(reply, "pid"));
					if (o->detach)
						res->exit_code = 0;
					else if (!json_is_integer(
							 json_object_get(reply, "exit_code")))
						r = hc_error_setk(
							err, -EPROTO, HC_EK_VM,
							"the supervisor ended the command "
							"without its exit code");
				}
				json_decref(reply);
				if (r == 0 && cancels)
					r = hc_error_setk(err, -ECANCELED, "cancelled",
							  "interrupted");
				goto out;
			}
			hc_buf_consume(&in, used);
		}
		if (r < 0) {
			r = hc_error_setk(err, -EPROTO, HC_EK_VM,
					  "malformed frame from the supervisor");
			goto out;
		}
	}
out:
	hc_buf_free(&in);
	hc_buf_free(&out);
	return r;
}

/* ---- cp ---- */

static const char *base_name(const char *p)
{
	size_t n = strlen(p);
	const char *s;

	while (n > 1 && p[n - 1] == '/')
		n--;
	for (s = p + n; s > p && s[-1] != '/'; s--)
		;
	return s;
}

/* An absolute host path for the supervisor (it runs elsewhere: cwd "/"). */
static int host_abs(const char *path, bool must_exist, char *buf, size_t n, struct hc_error *err)
{
	char cwd[HC_PATH_MAX];

	if (path[0] == '/')
		return hc_path_fmt(buf, n, err, "%s", path);
	if (!getcwd(cwd, sizeof(cwd)))
		return hc_error_errno(err, -errno, "getcwd");
	if (must_exist && access(path, F_OK) < 0)
		return hc_error_errno(err, -errno, "%s", path);
	return hc_path_fmt(buf, n, err, "%s/%s", cwd, path);
}

static int transfer(const char *ref, const char *op, const char *host, const char *guest,
		    struct hc_error *err)
{
	char id[HC_PVM_ID_LEN + 1];
	int r = hc_pvm_resolve(ref, id, err);

	if (r < 0)
		return r;
	return hc_pvm_ctl_call(
		id, json_pack("{s:s,s:s,s:s}", "op", op, "host", host, "guest", guest), NULL, err);
}

HC_EXPORT int hc_pvm_copy_in(const char *ref, const char *host_path, const char *guest_path,
			     struct hc_error *err)
{
	char src[HC_PATH_MAX], dst[HC_PATH_MAX];
	struct stat st;
	int r;

	if (!guest_path || guest_path[0] != '/')
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "cp: the guest path '%s' is not absolute", guest_path);
	if (stat(host_path, &st) < 0)
		return hc_error_errno(err, -errno, "cp: %s", host_path);
	r = host_abs(host_path, true, src, sizeof(src), err);
	if (r < 0)
		return r;
	/* DEST/ (a trailing slash): into that directory, under the source's name. */
	if (guest_path[strlen(guest_path) - 1] == '/')
		r = hc_path_fmt(dst, sizeof(dst), err, "%s%s", guest_path, base_name(src));
	else
		r = hc_path_fmt(dst, sizeof(dst), err, "%s", guest_path);
	if (r < 0)
		return r;
	return transfer(ref, "put", src, dst, err);
}

HC_EXPORT int hc_pvm_copy_out(const char *ref, const char *guest_path, const char *host_path,
			      struct hc_error *err)
{
	char dst[HC_PATH_MAX], tmp[HC_PATH_MAX];
	struct stat st;
	int r;

	if (!guest_path || guest_path[0] != '/')
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "cp: the guest path '%s' is not absolute", guest_path);
	r = host_abs(host_path, false, tmp, sizeof(tmp), err);
	if (r < 0)
		return r;
	/* An existing directory: the source goes inside it, as cp does. */
	if (stat(tmp, &st) == 0 && S_ISDIR(st.st_mode))
		r = hc_path_fmt(dst, sizeof(dst), err, "%s/%s", tmp, base_name(guest_path));
	else
		r = hc_path_fmt(dst, sizeof(dst), err, "%s", tmp);
	if (r < 0)
		return r;
	return transfer(ref, "get", dst, guest_path, err);
}
