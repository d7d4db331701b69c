/* SPDX-License-Identifier: MIT */
/*
 * Migration, the server's side (docs/migration.md): the destination's PUT /api/v1/migrate
 * (hc_server_mig_in: the stream of lib/migrate.h into a private directory, every part's
 * digest checked, then the VM restored paused), its JSON-RPC methods migrate.query,
 * migrate.commit and migrate.abort, and the source's vm.migrate (hc_pvm_migrate).
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/log.h"
#include "lib/migrate.h"
#include "lib/pvm.h"
#include "lib/snapshot.h"
#include "oci/digest.h"
#include "oci/store.h"
#include "server/server.h"

/* An incoming VM that is not committed within this long ends by itself. */
#define COMMIT_TIMEOUT_S 120.0
/* Room kept free on the destination's file system beyond what a migration brings. */
#define ROOM_SLACK (256ull << 20)

/* ---- the incoming stream ---- */

struct hc_server_mig_in {
	struct hc_server *s;
	char dir[HC_PATH_MAX];
	struct hc_mig_parser p;
	json_t *meta;
	struct hc_store *store;
	int fd;				 /* the current file part */
	struct hc_oci_blob_writer *blob; /* or the current blob part */
	uint64_t blob_pos;
	/* Verified blobs, linked into the store only once the whole stream arrived: a failed
	 * migration adds nothing to it. */
	struct hc_oci_blob_writer *blobs[HC_MIG_MAX_PARTS];
	size_t n_blobs;
	size_t committed;  /* blobs this migration put into the store */
	const char *named; /* the image name it added (in meta), or NULL */
	bool vm_made;	   /* the directory now belongs to a VM */
	bool slot;	   /* counted in s->vms_creating */
};

static bool backend_usable(struct hc_server *s, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(s->backends, i, v) if (hc_streq(json_string_value(v), name)) return true;
	return false;
}

static int sink_meta(void *ctx, json_t *meta, struct hc_error *err)
{
	struct hc_server_mig_in *m = ctx;
	json_t *snap = json_object_get(meta, "snapshot"), *blobs = json_object_get(meta, "blobs");
	const char *backend = json_string_value(json_object_get(snap, "backend"));
	size_t i;
	json_t *b;

	if (!backend || !backend_usable(m->s, backend))
		return hc_error_setk(err, -EOPNOTSUPP, HC_EK_BACKEND,
				     "this server has no usable backend '%s'",
				     backend ? backend : "(none)");
	if (blobs && (!json_is_array(blobs) || json_array_size(blobs) > 1024))
		return hc_error_setk(err, -EBADMSG, HC_EK_USAGE,
				     "migration stream: the meta record's blobs are invalid");
	json_array_foreach(blobs, i, b)
	{
		const char *d = json_string_value(json_object_get(b, "digest"));

		if (!d || !hc_oci_digest_hex(d) || !json_is_integer(json_object_get(b, "size")) ||
		    !json_is_string(json_object_get(b, "media_type")))
			return hc_error_setk(err, -EBADMSG, HC_EK_USAGE,
					     "migration stream: a blob in the meta record is "
					     "invalid");
	}
	m->meta = json_incref(meta);
	return 0;
}

static int sink_part_begin(void *ctx, const char *name, uint64_t size, struct hc_error *err)
{
	struct hc_server_mig_in *m = ctx;
	char path[HC_PATH_MAX];
	int r;

	if (hc_startswith(name, "blob:")) {
		const char *digest = name + 5;
		json_t *b, *blobs = json_object_get(m->meta, "blobs");
		bool listed = false;
		size_t i;

		json_array_foreach(blobs, i, b) listed |=
			hc_streq(json_string_value(json_object_get(b, "digest")), digest) &&
			(uint64_t)json_integer_value(json_object_get(b, "size")) == size;
		if (!listed || !hc_oci_digest_hex(digest))
			return hc_error_setk(err, -EBADMSG, HC_EK_USAGE,
					     "migration stream: blob part '%s' is not one of the "
					     "image's",
					     name);
		if (!m->store && (r = hc_store_open(NULL, &m->store, err)) < 0)
			return r;
		m->blob_pos = 0;
		return hc_oci_store_blob_begin(m->store, digest, size, &m->blob, err);
	}
	r = hc_path_fmt(path, sizeof(path), err, "%s/%s", m->dir, name);
	if (r < 0)
		return r;
	/* The boot files (hc-kernel, hc-initrd, hc-disk) are read by a jailed VMM's own uid, as
	 * the build's and the disk cache's are; the VM's state and RAM stay root's. */
	m->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     strncmp(name, "hc-", 3) == 0 ? 0444 : 0600);
	if (m->fd < 0)
		return hc_error_errno(err, -errno, "migrate: create %s", path);
	/* Sparse: only the extents that come take space. */
	if (ftruncate(m->fd, (off_t)size) < 0)
		return hc_error_errno(err, -errno, "migrate: size %s", path);
	return 0;
}

static int sink_data(void *ctx, uint64_t off, const void *p, size_t n, struct hc_error *err)
{
	struct hc_server_mig_in *m = ctx;
	static const uint8_t zeros[4096];

	if (m->blob) {
		/* A blob is contiguous: a gap the sender skipped is zeros. */
		while (m->blob_pos < off) {
			size_t k = off - m->blob_pos < sizeof(zeros) ? off - m->blob_pos
								     : sizeof(zeros);
			int r = hc_oci_blob_writer_write(m->blob, zeros, k, err);

			if (r < 0)
				return r;
			m->blob_pos += k;
		}
		m->blob_pos += n;
		return hc_oci_blob_writer_write(m->blob, p, n, err);
	}
	for (size_t done = 0; done < n;) {
		ssize_t k = pwrite(m->fd, (const uint8_t *)p + done, n - done, (off_t)(off + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return hc_error_errno(err, k < 0 ? -errno : -EIO, "migrate: write into %s",
					      m->dir);
		done += (size_t)k;
	}
	return 0;
}

static int sink_part_end(void *ctx, struct hc_error *err)
{
	struct hc_server_mig_in *m = ctx;

	if (m->blob) {
		struct hc_oci_blob_writer *w = m->blob;

		m->blob = NULL;
		if (m->n_blobs == HC_ARRAY_SIZE(m->blobs)) {
			hc_oci_blob_writer_abort(w);
			return hc_error_setk(err, -E2BIG, HC_EK_USAGE, "migrate: too many blobs");
		}
		m->blobs[m->n_blobs++] = w;
		return hc_oci_blob_writer_finish(w, NULL, err);
	}
	if (close(m->fd) < 0) {
		m->fd = -1;
		return hc_error_errno(err, -errno, "migrate: close a part");
	}
	m->fd = -1;
	return 0;
}

static const struct hc_mig_sink sink = {
	.meta = sink_meta,
	.part_begin = sink_part_begin,
	.data = sink_data,
	.part_end = sink_part_end,
};

static unsigned live_vms(void)
{
	struct hc_pvm_info *l = NULL;
	struct hc_error e = {0};
	size_t n = 0;
	unsigned k = 0;

	if (hc_pvm_list(&l, &n, &e) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		k += l[i].status == HC_PVM_RUNNING || l[i].status == HC_PVM_PAUSED ||
		     l[i].status == HC_PVM_CREATING;
	hc_pvm_list_free(l, n);
	return k;
}

/* --max-vms, counting the creations in flight (as vm.create does). */
static int take_slot(struct hc_server *s, bool *taken, struct hc_error *err)
{
	unsigned n_live;

	*taken = false;
	if (!s->cfg->max_vms)
		return 0;
	n_live = live_vms();
	pthread_mutex_lock(&s->lock);
	if (n_live + s->vms_creating >= s->cfg->max_vms) {
		pthread_mutex_unlock(&s->lock);
		return hc_error_setk(err, -EUSERS, "limit",
				     "this server has no room for another VM (--max-vms %u)",
				     s->cfg->max_vms);
	}
	s->vms_creating++;
	*taken = true;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void give_slot(struct hc_server *s, bool *taken)
{
	if (!*taken)
		return;
	pthread_mutex_lock(&s->lock);
	s->vms_creating--;
	pthread_mutex_unlock(&s->lock);
	*taken = false;
}

int hc_server_mig_in_new(struct hc_server *s, struct hc_server_mig_in **ret, struct hc_error *err)
{
	struct hc_server_mig_in *m = calloc(1, sizeof(*m));
	char base[HC_PATH_MAX];
	int r;

	if (!m)
		return hc_error_set(err, -ENOMEM, "out of memory");
	m->s = s;
	m->fd = -1;
	hc_mig_parser_init(&m->p, &sink, m);
	r = take_slot(s, &m->slot, err);
	if (r >= 0)
		r = hc_lib_migrate_dir(base, sizeof(base), err);
	if (r >= 0)
		r = hc_path_fmt(m->dir, sizeof(m->dir), err, "%s/in-XXXXXX", base);
	if (r >= 0 && !mkdtemp(m->dir)) {
		r = hc_error_errno(err, -errno, "migrate: mkdtemp %s", m->dir);
		m->dir[0] = 0;
	}
	if (r < 0) {
		hc_server_mig_in_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

void hc_server_mig_in_free(struct hc_server_mig_in *m)
{
	if (!m)
		return;
	hc_closep(&m->fd);
	hc_oci_blob_writer_abort(m->blob);
	for (size_t i = 0; i < m->n_blobs; i++)
		hc_oci_blob_writer_abort(m->blobs[i]);
	if (m->dir[0] && !m->vm_made) {
		struct hc_error e = {0};

		if (hc_path_rm_rf(m->dir, &e) < 0)
			hc_warn("migrate: cannot remove %s: %s", m->dir, e.message);
	}
	give_slot(m->s, &m->slot);
	hc_mig_parser_free(&m->p);
	json_decref(m->meta);
	hc_store_close(m->store);
	free(m);
}

int hc_server_mig_in_feed(struct hc_server_mig_in *m, const void *p, size_t n, struct hc_error *err)
{
	return hc_mig_parser_feed(&m->p, p, n, err);
}

static bool name_exists(struct hc_store *store, const char *name)
{
	struct hc_oci_index_entry *l = NULL;
	struct hc_error e = {0};
	size_t n = 0;
	bool found = false;

	if (hc_oci_store_index_list(store, &l, &n, &e) < 0)
		return true; /* unknown: leave it alone */
	for (size_t i = 0; i < n && !found; i++)
		found = hc_streq(l[i].name, name);
	hc_oci_index_list_free(l, n);
	return found;
}

/* The image's name in this store, once all its blobs are here (a migration may bring only
 * the ones this server lacked): `images` lists it, as after a pull. A name the store has
 * already is left alone (it may name another digest here). */
static void add_image_name(struct hc_server_mig_in *m, json_t *snap)
{
	json_t *blobs = json_object_get(m->meta, "blobs"), *man = json_array_get(blobs, 0), *b;
	const char *image = json_string_value(json_object_get(snap, "image"));
	struct hc_error e = {0};
	size_t i;

	if (!image || !*image || !man)
		return;
	if (!m->store && hc_store_open(NULL, &m->store, &e) < 0)
		return;
	json_array_foreach(blobs, i, b)
	{
		if (!hc_oci_store_has_blob(m->store,
					   json_string_value(json_object_get(b, "digest"))))
			return;
	}
	if (name_exists(m->store, image))
		return;
	if (hc_oci_store_add_name(
		    m->store, image, json_string_value(json_object_get(man, "digest")),
		    json_string_value(json_object_get(man, "media_type")),
		    (uint64_t)json_integer_value(json_object_get(man, "size")), &e) < 0)
		hc_warn("migrate: image %s not named here: %s", image, e.message);
	else
		m->named = image;
}

/* A failed restore takes back what finish put into the store: the blob parts (each was
 * missing here, or it would not have been sent) and the image's name when it was new. */
static void remove_blobs(struct hc_server_mig_in *m)
{
	json_t *p, *parts = json_object_get(m->meta, "parts");
	char path[HC_PATH_MAX];
	size_t i;

	if (!m->store)
		return;
	if (m->named) {
		struct hc_error e = {0};

		if (hc_oci_store_remove_name(m->store, m->named, &e) < 0)
			hc_warn("migrate: %s", e.message);
		m->named = NULL;
	}
	json_array_foreach(parts, i, p)
	{
		const char *name = json_string_value(json_object_get(p, "name"));

		if (m->committed > 0 && hc_startswith(name, "blob:") &&
		    hc_oci_store_blob_path(m->store, name + 5, path, sizeof(path), NULL) >= 0 &&
		    unlink(path) == 0)
			m->committed--;
	}
}

int hc_server_mig_in_finish(struct hc_server_mig_in *m, json_t **ret, struct hc_error *err)
{
	char kernel[HC_PATH_MAX], initrd[HC_PATH_MAX], disk[HC_PATH_MAX];
	char id[HC_PVM_ID_LEN + 1];
	json_t *snap, *spec;
	int r;

	r = hc_mig_parser_finish(&m->p, err);
	if (r < 0)
		return r;
	snap = json_object_get(m->meta, "snapshot");
	spec = json_object_get(snap, "spec");
	if ((r = hc_path_fmt(kernel, sizeof(kernel), err, "%s/hc-kernel", m->dir)) < 0 ||
	    (r = hc_path_fmt(initrd, sizeof(initrd), err, "%s/hc-initrd", m->dir)) < 0 ||
	    (r = hc_path_fmt(disk, sizeof(disk), err, "%s/hc-disk", m->dir)) < 0)
		return r;
	/* The kernel, initramfs and disk the guest booted came along: this host's copies. */
	r = hc_lib_snapshot_relocate(
		m->dir, snap, access(kernel, F_OK) == 0 ? kernel : NULL,
		json_is_string(json_object_get(spec, "initrd")) ? initrd : NULL,
		json_is_string(json_object_get(spec, "rootfs_disk")) ? disk : NULL, err);
	if (r < 0)
		return r;
	/* Every digest matched: the blobs go into the store now (commit frees the writer), and
	 * out again if the restore fails (they were all missing here). */
	for (; m->n_blobs > 0; m->n_blobs--) {
		r = hc_oci_blob_writer_commit(m->blobs[m->n_blobs - 1], NULL, err);
		m->blobs[m->n_blobs - 1] = NULL;
		if (r < 0) {
			hc_error_prefix(err, "migrate: store a blob");
			goto undo;
		}
		m->committed++;
	}
	add_image_name(m, snap);
	{
		struct hc_pvm_create_opts co = {
			.restore_dir = m->dir,
			.restore_paused = true,
			.commit_timeout_s = COMMIT_TIMEOUT_S,
			.owned_dir = m->dir,
		};

		r = hc_pvm_create(NULL, &co, id, err);
	}
	if (r < 0) {
		hc_error_prefix(err, "the restore here failed");
		goto undo;
	}
	m->vm_made = true;
	hc_info("migrate: VM %.12s arrived (paused until its source commits)", id);
	*ret = json_pack("{s:s}", "id", id);
	return *ret ? 0 : hc_error_set(err, -ENOMEM, "out of memory");
undo:
	remove_blobs(m);
	return r;
}

/* ---- the JSON-RPC methods ---- */

static json_t *fail(struct hc_rpc_err *err, const struct hc_error *e)
{
	hc_rpc_fail_hc(err, e);
	if (e->code == -EUSERS)
		err->code = HC_RPC_LIMIT_ERROR;
	return NULL;
}

/* {backend, blobs: [{digest, size, media_type}], spec} -> {missing: [digests], free_bytes}:
 * whether this server can take the VM (a backend, room for one more VM and its bytes). */
json_t *hc_server_m_migrate_query(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"backend", "blobs", "spec", NULL};
	struct hc_server *s = c->ctx;
	json_t *blobs = json_object_get(c->params, "blobs"), *b, *missing;
	json_t *mem = json_object_get(json_object_get(c->params, "spec"), "memory_mib");
	const char *backend = NULL;
	struct hc_store *store = NULL;
	struct hc_error e = {0};
	char home[HC_PATH_MAX];
	uint64_t need = ROOM_SLACK, avail;
	struct statvfs vfs;
	size_t i;

	if (hc_rpc_params_only(c, names, err) < 0 ||
	    hc_rpc_param_str(c, "backend", &backend, err) < 0)
		return NULL;
	if (!backend || !backend_usable(s, backend)) {
		hc_error_setk(&e, -EOPNOTSUPP, HC_EK_BACKEND,
			      "this server has no usable backend '%s'",
			      backend ? backend : "(none)");
		return fail(err, &e);
	}
	if (!json_is_array(blobs) || json_array_size(blobs) > 1024)
		return hc_rpc_fail_param(err, "blobs", "'blobs' must be an array of descriptors");
	if (s->cfg->max_vms && live_vms() + s->vms_creating >= s->cfg->max_vms) {
		hc_error_setk(&e, -EUSERS, "limit",
			      "this server has no room for another VM (--max-vms %u)",
			      s->cfg->max_vms);
		return fail(err, &e);
	}
	if (hc_store_open(NULL, &store, &e) < 0)
		return fail(err, &e);
	missing = json_array();
	json_array_foreach(blobs, i, b)
	{
		const char *d = json_string_value(json_object_get(b, "digest"));
		json_t *sz = json_object_get(b, "size");

		if (!d || !hc_oci_digest_hex(d) || !json_is_integer(sz) ||
		    json_integer_value(sz) < 0) {
			json_decref(missing);
			hc_store_close(store);
			return hc_rpc_fail_param(err, "blobs", "a blob descriptor is invalid");
		}
		if (!hc_oci_store_has_blob(store, d)) {
			json_array_append_new(missing, json_string(d));
			need += (uint64_t)json_integer_value(sz);
		}
	}
	hc_store_close(store);
	/* The guest's memory (at most: the sparse file holds only what it used) and disk. */
	if (json_is_integer(mem) && json_integer_value(mem) > 0)
		need += (uint64_t)json_integer_value(mem) << 20;
	if (hc_path_state_dir(home, sizeof(home), &e) < 0 || statvfs(home, &vfs) < 0) {
		json_decref(missing);
		if (!e.message[0])
			hc_error_errno(&e, -errno, "statvfs %s", home);
		return fail(err, &e);
	}
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail < need) {
		json_decref(missing);
		hc_error_setk(&e, -ENOSPC, "limit",
			      "this server lacks room: %llu MiB free in %s, the VM needs up to "
			      "%llu MiB",
			      (unsigned long long)(avail >> 20), home,
			      (unsigned long long)(need >> 20));
		return fail(err, &e);
	}
	return json_pack("{s:o,s:I}", "missing", missing, "free_bytes", (json_int_t)avail);
}

/* The VM id an incoming migration made, checked to be one still waiting for its commit.
 * committed (NULL: a committed one is refused too) is set when it was committed already, so
 * that a commit repeated after a lost answer succeeds again. */
static int incoming_id(struct hc_rpc_call *c, char *id, bool *committed, struct hc_rpc_err *err)
{
	const char *ref = NULL;
	struct hc_error e = {0};
	json_t *rec = NULL;
	enum hc_pvm_status st;

	if (hc_rpc_param_str(c, "id", &ref, err) < 0)
		return -EINVAL;
	if (!ref || !hc_pvm_id_valid(ref)) {
		hc_rpc_fail_param(err, "id", "'id' must be the VM id the migration answered");
		return -EINVAL;
	}
	snprintf(id, HC_PVM_ID_LEN + 1, "%s", ref);
	if (hc_pvm_record_read(id, &rec, &e) == 0) {
		st = hc_pvm_record_status(rec);
		if (json_is_true(json_object_get(rec, "incoming")) && st == HC_PVM_PAUSED) {
			json_decref(rec);
			return 0;
		}
		if (committed && json_is_true(json_object_get(rec, "migration_committed")) &&
		    st == HC_PVM_RUNNING) {
			json_decref(rec);
			*committed = true;
			return 0;
		}
	}
	json_decref(rec);
	/* The source restores its own copy on this kind: this one never runs. */
	hc_error_setk(&e, -ESRCH, "migrate-aborted",
		      "VM %.12s is not an incoming migration waiting for its commit", id);
	fail(err, &e);
	return -ESRCH;
}

/* {id, reseed} -> {}: the source stopped its copy for good: resume this one. */
json_t *hc_server_m_migrate_commit(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"id", "reseed", NULL};
	char id[HC_PVM_ID_LEN + 1];
	struct hc_error e = {0};
	bool reseed = false, committed = false;

	if (hc_rpc_params_only(c, names, err) < 0 ||
	    hc_rpc_param_bool(c, "reseed", &reseed, err) < 0 ||
	    incoming_id(c, id, &committed, err) < 0)
		return NULL;
	if (committed)
		return json_object();
	if (hc_lib_migrate_commit_local(id, reseed, &e) < 0)
		return fail(err, &e);
	return json_object();
}

/* {id} -> {}: the source could not stop its copy: this one goes, with its files. */
json_t *hc_server_m_migrate_abort(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"id", NULL};
	char id[HC_PVM_ID_LEN + 1];
	struct hc_error e = {0};

	if (hc_rpc_params_only(c, names, err) < 0 || incoming_id(c, id, NULL, err) < 0)
		return NULL;
	if (hc_pvm_remove(id, true, &e) < 0)
		return fail(err, &e);
	return json_object();
}

/* {id, to, token, reseed} -> {id (on the destination), downtime_ms, ...}. */
json_t *hc_server_m_vm_migrate(struct hc_rpc_call *c, struct hc_rpc_err *err)
{
	static const char *const names[] = {"id", "to", "token", "reseed", NULL};
	struct hc_pvm_migrate_opts o = {0};
	struct hc_pvm_migrate_result res = {0};
	const char *ref = NULL;
	struct hc_error e = {0};

	if (hc_rpc_params_only(c, names, err) < 0 || hc_rpc_param_str(c, "id", &ref, err) < 0 ||
	    hc_rpc_param_str(c, "to", &o.to, err) < 0 ||
	    hc_rpc_param_str(c, "token", &o.token, err) < 0 ||
	    hc_rpc_param_bool(c, "reseed", &o.reseed, err) < 0)
		return NULL;
	if (!ref)
		return hc_rpc_fail_param(err, "id", "'id' is required");
	if (!o.to)
		return hc_rpc_fail_param(err, "to", "'to' is required (the destination's URL)");
	if (!o.token)
		return hc_rpc_fail_param(err, "token", "'token' is required (the destination's)");
	if (hc_pvm_migrate(ref, &o, &res, &e) < 0) {
		hc_rpc_fail_hc(err, &e);
		if (e.code == -EINVAL && hc_streq(e.kind, HC_EK_USAGE))
			err->code = HC_RPC_INVALID_PARAMS;
		return NULL;
	}
	return json_pack("{s:s,s:f,s:f,s:I,s:I}", "id", res.id, "downtime_ms", res.downtime_ms,
			 "total_ms", res.total_ms, "bytes_sent", (json_int_t)res.bytes_sent,
			 "blob_bytes_skipped", (json_int_t)res.blob_bytes_skipped);
}
