/* SPDX-License-Identifier: MIT */
/* The state of a container under --root (runtime/runtime.h): <root>/<id>/state.json, written
 * atomically, and <root>/<id>/lock, flock'ed by every command that reads or changes it. */
#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/path.h"
#include "core/util.h"
#include "lib/pvm.h"
#include "runtime/runtime.h"

static const char *const status_names[] = {"creating", "created", "running", "paused", "stopped"};

const char *rt_status_name(enum rt_status s)
{
	return (unsigned)s < HC_ARRAY_SIZE(status_names) ? status_names[s] : "stopped";
}

bool rt_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > RT_ID_MAX || !(isalnum((unsigned char)id[0])))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && !strchr("_.+-", id[i]))
			return false;
	return true;
}

int rt_state_open(const char *root, const char *id, bool create, struct rt_state *st,
		  struct hc_error *err)
{
	char path[HC_PATH_MAX + 16];
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r;

	*st = (struct rt_state){.lock_fd = -1};
	if (!rt_id_valid(id))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "invalid container id '%.64s'",
				     id ? id : "");
	snprintf(st->id, sizeof(st->id), "%s", id);
	r = hc_path_fmt(st->dir, sizeof(st->dir), err, "%s/%s", root, id);
	if (r < 0)
		return r;
	if (create) {
		r = hc_path_mkdir_p(root, 0711, err);
		if (r < 0)
			return r;
		if (mkdir(st->dir, 0700) < 0)
			return errno == EEXIST ? hc_error_setk(err, -EEXIST, HC_EK_USAGE,
							       "container with id exists: %s", id)
					       : hc_error_errno(err, -errno, "mkdir %s", st->dir);
	}
	snprintf(path, sizeof(path), "%s/lock", st->dir);
	st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (create ? 0 : 0), 0600);
	if (st->lock_fd < 0)
		return errno == ENOENT ? hc_error_setk(err, -ENOENT, HC_EK_USAGE,
						       "container \"%s\" does not exist", id)
				       : hc_error_errno(err, -errno, "open %s", path);
	if (flock(st->lock_fd, LOCK_EX) < 0)
		return hc_error_errno(err, -errno, "lock %s", path);
	if (create) {
		st->rec = json_object();
		return st->rec ? 0 : hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	}
	snprintf(path, sizeof(path), "%s/state.json", st->dir);
	r = hc_path_read_file(path, 1u << 20, &data, &len, err);
	if (r == -ENOENT)
		return hc_error_setk(err, -ENOENT, HC_EK_USAGE, "container \"%s\" does not exist",
				     id);
	if (r < 0)
		return r;
	st->rec = json_loadb(data, len, 0, NULL);
	if (!json_is_object(st->rec))
		return hc_error_setk(err, -EBADMSG, HC_EK_INTERNAL, "%s: not a JSON object", path);
	return 0;
}

void rt_state_close(struct rt_state *st)
{
	json_decref(st->rec);
	st->rec = NULL;
	hc_closep(&st->lock_fd);
}

int rt_state_save(struct rt_state *st, struct hc_error *err)
{
	char path[HC_PATH_MAX + 16];
	_cleanup_free_ char *data = json_dumps(st->rec, JSON_COMPACT);

	if (!data)
		return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	snprintf(path, sizeof(path), "%s/state.json", st->dir);
	return hc_path_write_file_atomic(path, data, strlen(data), 0600, err);
}

pid_t rt_state_pid(const struct rt_state *st)
{
	pid_t pid = (pid_t)json_integer_value(json_object_get(st->rec, "pid"));
	unsigned long long start =
		(unsigned long long)json_integer_value(json_object_get(st->rec, "pid_start"));

	return pid > 0 && hc_pvm_proc_alive(pid, start) ? pid : 0;
}

enum rt_status rt_state_status(const struct rt_state *st)
{
	const char *s = json_string_value(json_object_get(st->rec, "status"));
	size_t i;

	for (i = 0; s && i < HC_ARRAY_SIZE(status_names); i++)
		if (hc_streq(s, status_names[i]))
			break;
	if (!s || i == HC_ARRAY_SIZE(status_names))
		return RT_STOPPED;
	/* creating: create itself holds the lock, so a reader sees it only if create died. */
	if (i == RT_CREATING || (i != RT_STOPPED && !rt_state_pid(st)))
		return RT_STOPPED;
	return (enum rt_status)i;
}

json_t *rt_state_oci(const struct rt_state *st)
{
	enum rt_status s = rt_state_status(st);
	json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:O?,s:O?}", "ociVersion", RT_OCI_VERSION, "id",
			      st->id, "status", rt_status_name(s), "pid",
			      (json_int_t)(s == RT_STOPPED ? 0 : rt_state_pid(st)), "bundle",
			      json_object_get(st->rec, "bundle"), "created",
			      json_object_get(st->rec, "created"));
	json_t *ann = json_object_get(st->rec, "annotations");

	if (o)
		json_object_set_new(o, "annotations", ann ? json_incref(ann) : json_object());
	return o;
}
