/* SPDX-License-Identifier: MIT */
/* Persistent VMs: the state directory, vm.json, liveness and name resolution (lib/pvm.h). */
#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "core/error.h"
#include "lib/pvm.h"
#include "core/owner.h"

int hc_pvm_state_root(char *buf, size_t n, struct hc_error *err)
{
	char home[HC_PATH_MAX];
	int r = hc_path_state_dir(home, sizeof(home), err);

	if (r < 0)
		return r;
	r = hc_path_fmt(buf, n, err, "%s/vms", home);
	if (r < 0)
		return r;
	return hc_path_mkdir_p(buf, 0700, err);
}

int hc_pvm_state_dir(const char *id, char *buf, size_t n, struct hc_error *err)
{
	char root[HC_PATH_MAX];
	int r;

	if (!hc_pvm_id_valid(id))
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "invalid VM id '%.80s'", id);
	r = hc_pvm_state_root(root, sizeof(root), err);
	if (r < 0)
		return r;
	return hc_path_fmt(buf, n, err, "%s/%s", root, id);
}

bool hc_pvm_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id && id[i]; i++)
		if (!isxdigit((unsigned char)id[i]) || isupper((unsigned char)id[i]))
			return false;
	return i == HC_PVM_ID_LEN;
}

bool hc_pvm_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > HC_PVM_NAME_MAX || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return !hc_pvm_id_valid(name);
}

bool hc_pvm_proc_alive(pid_t pid, unsigned long long start)
{
	return pid > 0 && start > 0 && hc_owner_start_time(pid) == start;
}

int hc_pvm_record_read(const char *id, json_t **ret, struct hc_error *err)
{
	char dir[HC_PATH_MAX], path[HC_PATH_MAX];
	_cleanup_free_ char *data = NULL;
	json_error_t je;
	size_t len;
	json_t *rec;
	int r;

	r = hc_pvm_state_dir(id, dir, sizeof(dir), err);
	if (r < 0)
		return r;
	r = hc_path_fmt(path, sizeof(path), err, "%s/vm.json", dir);
	if (r < 0)
		return r;
	r = hc_path_read_file(path, 1u << 20, &data, &len, err);
	if (r < 0)
		return r;
	rec = json_loadb(data, len, 0, &je);
	if (!json_is_object(rec) || !hc_streq(json_string_value(json_object_get(rec, "id")), id)) {
		json_decref(rec);
		return hc_error_setk(err, -EBADMSG, HC_EK_VM, "%s: not a VM record", path);
	}
	*ret = rec;
	return 0;
}

int hc_pvm_record_write(const char *id, json_t *rec, struct hc_error *err)
{
	char dir[HC_PATH_MAX], path[HC_PATH_MAX];
	_cleanup_free_ char *data = NULL;
	int r;

	r = hc_pvm_state_dir(id, dir, sizeof(dir), err);
	if (r < 0)
		return r;
	r = hc_path_fmt(path, sizeof(path), err, "%s/vm.json", dir);
	if (r < 0)
		return r;
	data = json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!data)
		return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	return hc_path_write_file_atomic(path, data, strlen(data), 0600, err);
}

static const char *const status_names[] = {
	[HC_PVM_RUNNING] = "running", [HC_PVM_PAUSED] = "paused",     [HC_PVM_STOPPED] = "stopped",
	[HC_PVM_DEAD] = "dead",	      [HC_PVM_CREATING] = "creating",
};

HC_EXPORT const char *hc_pvm_status_name(enum hc_pvm_status s)
{
	if ((size_t)s < HC_ARRAY_SIZE(status_names))
		return status_names[s];
	return "unknown";
}

int hc_pvm_status_parse(const char *s, enum hc_pvm_status *ret)
{
	for (size_t i = 0; i < HC_ARRAY_SIZE(status_names); i++) {
		if (hc_streq(s, status_names[i])) {
			*ret = (enum hc_pvm_status)i;
			return 0;
		}
	}
	return -EINVAL;
}

enum hc_pvm_status hc_pvm_record_status(const json_t *rec)
{
	enum hc_pvm_status st;
	pid_t pid = (pid_t)json_integer_value(json_object_get(rec, "pid"));
	unsigned long long start =
		(unsigned long long)json_integer_value(json_object_get(rec, "pid_start"));

	if (hc_pvm_status_parse(json_string_value(json_object_get(rec, "status")), &st) < 0)
		return HC_PVM_DEAD;
	if (st == HC_PVM_STOPPED || st == HC_PVM_DEAD)
		return st;
	return hc_pvm_proc_alive(pid, start) ? st : HC_PVM_DEAD;
}

int hc_pvm_resolve_in(const char *ref, const char *const *ids, const char *const *names, size_t n,
		      struct hc_error *err)
{
	size_t len = ref ? strlen(ref) : 0;
	int hit = -1, n_hits = 0;
	char cands[300] = "";

	if (!len)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "no VM named");
	for (size_t i = 0; i < n; i++)
		if (hc_streq(ids[i], ref))
			return (int)i;
	for (size_t i = 0; i < n; i++)
		if (names[i] && hc_streq(names[i], ref))
			return (int)i;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(ids[i], ref, len) != 0)
			continue;
		hit = (int)i;
		n_hits++;
		size_t u = strlen(cands);
		if (u < sizeof(cands) - 16)
			snprintf(cands + u, sizeof(cands) - u, "%s%.12s", u ? ", " : "", ids[i]);
	}
	if (n_hits == 1)
		return hit;
	if (n_hits > 1)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "VM '%s' is ambiguous: it prefixes %d ids (%s)", ref, n_hits,
				     cands);
	return hc_error_setk(err, -ENOENT, HC_EK_USAGE, "no such VM: '%s'", ref);
}
