/* SPDX-License-Identifier: MIT */
/*
 * hc_image_pull: reference -> registry -> verified blobs in the store -> a name in index.json.
 *
 * Order matters for "nothing unverified is kept, and a failed pull leaves the store as it was":
 * every missing blob is streamed into a private temp file of the store and verified there
 * (digest and size from its descriptor); only when the whole set is verified are they linked
 * into place, then the manifest, then the name. The store's writer lock is held shared
 * throughout, so a concurrent prune cannot remove a linked but not yet named blob.
 */
#include <inttypes.h>

#include "core/log.h"
#include "oci/manifest.h"
#include "oci/ref.h"
#include "oci/registry.h"
#include "oci/store.h"

#define PULL_PARALLEL 4
#define PROGRESS_STEP (512u << 10)
#define SYNC_STEP (8u << 20)

struct sink {
	struct hc_store *store;
	const struct hc_pull_opts *opts;
	const char *digest;
	uint64_t size;
	uint64_t done, reported, synced;
	struct hc_oci_blob_writer *w; /* open, then finished (verified, unlinked) */
	bool is_config;
};

static void report(struct sink *s, bool force)
{
	if (!s->opts || !s->opts->progress)
		return;
	if (!force && s->done - s->reported < PROGRESS_STEP)
		return;
	s->reported = s->done;
	s->opts->progress(s->digest, s->done, s->size, s->opts->userdata);
}

static int sink_begin(void *ud, struct hc_error *err)
{
	struct sink *s = ud;

	s->done = s->reported = s->synced = 0;
	return hc_oci_store_blob_begin(s->store, s->digest, s->size, &s->w, err);
}

static int sink_write(void *ud, const void *data, size_t n, struct hc_error *err)
{
	struct sink *s = ud;
	int r = hc_oci_blob_writer_write(s->w, data, n, err);

	if (r < 0) {
		if (r == -EFBIG)
			return hc_error_setk(
				err, -EBADMSG, HC_EK_IMAGE,
				"blob %s: the registry sent more than its declared size "
				"%" PRIu64 " bytes",
				s->digest, s->size);
		return r;
	}
	s->done += n;
	/* Overlap the disk with the network: start writeback every few MiB, so the fsyncs of
	 * the final commits do not wait for the whole image at once. */
	if (s->done - s->synced >= SYNC_STEP) {
		hc_oci_blob_writer_start_sync(s->w);
		s->synced = s->done;
	}
	report(s, false);
	return 0;
}

static int sink_done(void *ud, struct hc_error *err)
{
	struct sink *s = ud;
	int r = hc_oci_blob_writer_finish(s->w, NULL, err);

	if (r < 0) {
		hc_oci_blob_writer_abort(s->w);
		s->w = NULL;
		return r;
	}
	hc_oci_blob_writer_start_sync(s->w);
	report(s, true);
	return 0;
}

static void sink_abort(void *ud)
{
	struct sink *s = ud;

	hc_oci_blob_writer_abort(s->w);
	s->w = NULL;
}

static int fetch_manifest(struct hc_oci_registry *reg, const char *reference,
			  struct hc_oci_manifest *m, char **ret_body, size_t *ret_len,
			  char *ret_digest, struct hc_error *err)
{
	char type[128];
	int r;

	r = hc_oci_registry_get_manifest(reg, reference, ret_body, ret_len, type, ret_digest, err);
	if (r < 0)
		return r;
	r = hc_oci_manifest_parse(*ret_body, *ret_len, type[0] ? type : NULL, m, err);
	if (r < 0)
		hc_error_prefix(err, "manifest %s", ret_digest);
	return r;
}

/* A manifest we can run: an image config and layers the unpacker reads. */
static int check_image_manifest(const struct hc_oci_manifest *m, const char *digest,
				struct hc_error *err)
{
	if (!hc_streq(m->config.media_type, HC_OCI_MT_CONFIG) &&
	    !hc_streq(m->config.media_type, HC_DOCKER_MT_CONFIG))
		return hc_error_setk(err, -EPROTONOSUPPORT, HC_EK_IMAGE,
				     "manifest %s is not a container image (config media type "
				     "'%.100s')",
				     digest, m->config.media_type);
	/* Read whole into memory later: refused before a byte of it is fetched. */
	if (m->config.size > HC_OCI_CONFIG_MAX)
		return hc_error_setk(
			err, -E2BIG, HC_EK_IMAGE,
			"manifest %s: its config %s declares %lld bytes, more than the "
			"%u a config may have",
			digest, m->config.digest, (long long)m->config.size, HC_OCI_CONFIG_MAX);
	for (size_t i = 0; i < m->n_layers; i++)
		if (!hc_oci_media_type_is_layer(m->layers[i].media_type))
			return hc_error_setk(err, -EPROTONOSUPPORT, HC_EK_IMAGE,
					     "layer %s has an unsupported media type '%.100s'",
					     m->layers[i].digest, m->layers[i].media_type);
	return 0;
}

static int check_config(struct sink *cfg, struct hc_store *store, const struct hc_oci_desc *d,
			const struct hc_oci_platform *want, bool platform_chosen,
			struct hc_error *err)
{
	_cleanup_free_ char *data = NULL;
	struct hc_oci_config c;
	size_t len;
	int r;

	if (cfg && cfg->w)
		r = hc_oci_blob_writer_read(cfg->w, HC_OCI_CONFIG_MAX, &data, &len, err);
	else
		r = hc_oci_store_blob_read(store, d->digest, HC_OCI_CONFIG_MAX, &data, &len, err);
	if (r < 0)
		return r;
	r = hc_oci_config_parse(data, len, &c, err);
	if (r < 0)
		return hc_error_prefix(err, "config %s", d->digest);
	/* podman warns the same way: a single-platform image for another architecture will not
	 * run here, but pulling it is not wrong. */
	if (!platform_chosen && c.platform.arch[0] &&
	    (strcmp(c.platform.os, want->os) != 0 || strcmp(c.platform.arch, want->arch) != 0))
		hc_warn("image platform (%s/%s) does not match the expected platform (%s/%s)",
			c.platform.os, c.platform.arch, want->os, want->arch);
	hc_oci_config_free(&c);
	return 0;
}

static bool name_is(struct hc_store *store, const char *name, const char *digest)
{
	struct hc_oci_index_entry *list = NULL;
	struct hc_error e = {0};
	size_t n = 0;
	bool same = false;

	if (hc_oci_store_index_list(store, &list, &n, &e) < 0)
		return false;
	for (size_t i = 0; i < n && !same; i++)
		same = hc_streq(list[i].name, name) && strcmp(list[i].digest, digest) == 0;
	hc_oci_index_list_free(list, n);
	return same;
}

static int pull(struct hc_store *store, const char *refstr, const struct hc_pull_opts *opts,
		char *ret_digest, struct hc_error *err)
{
	struct hc_oci_ref ref;
	struct hc_oci_platform plat;
	struct hc_oci_registry *reg = NULL;
	struct hc_oci_manifest top = {0}, m = {0};
	_cleanup_free_ char *top_body = NULL, *body = NULL;
	_cleanup_free_ struct sink *sinks = NULL;
	_cleanup_free_ struct hc_oci_blob_fetch *jobs = NULL;
	_cleanup_close_ int lock_fd = -1;
	char name[HC_OCI_NAME_MAX * 2 + HC_OCI_TAG_MAX + 80];
	char top_digest[HC_DIGEST_SIZE], digest[HC_DIGEST_SIZE];
	size_t top_len = 0, len = 0, n_jobs = 0, n_blobs;
	struct sink *cfg_sink = NULL;
	bool from_index = false;
	int r;

	r = hc_oci_ref_parse(refstr, &ref, err);
	if (r < 0)
		return r;
	if (hc_oci_ref_format(&ref, name, sizeof(name)) < 0)
		return hc_error_setk(err, -ENAMETOOLONG, HC_EK_USAGE, "reference too long");
	if (opts && opts->platform)
		r = hc_oci_platform_parse(opts->platform, &plat, err);
	else
		hc_oci_platform_host(&plat);
	if (r < 0)
		return r;

	r = hc_oci_registry_open(&ref, opts && opts->insecure,
				 opts && opts->cancel_fd_set ? opts->cancel_fd : -1, &reg, err);
	if (r < 0)
		return r;

	r = fetch_manifest(reg, hc_oci_ref_manifest_ref(&ref), &top, &top_body, &top_len,
			   top_digest, err);
	if (r < 0)
		goto out;
	/* An index may point at another index for the platform (nested indexes): follow it, as
	 * far as the store's reader would (prune marks 4 levels). */
	for (int depth = 0; top.kind == HC_OCI_KIND_INDEX; depth++) {
		const struct hc_oci_desc *d;
		if (depth == 4) {
			r = hc_error_setk(err, -ELOOP, HC_EK_IMAGE, "indexes nested too deeply");
			goto out;
		}
		r = hc_oci_index_select(&top, &plat, &d, err);
		if (r < 0)
			goto out;
		from_index = true;
		r = fetch_manifest(reg, d->digest, &m, &body, &len, digest, err);
		if (r < 0)
			goto out;
		if (!hc_streq(m.media_type, d->media_type) || (d->size && d->size != len)) {
			r = hc_error_setk(
				err, -EBADMSG, HC_EK_IMAGE,
				"manifest %s does not match its index entry (type %s, %zu "
				"bytes)",
				digest, m.media_type, len);
			goto out;
		}
		if (m.kind == HC_OCI_KIND_MANIFEST)
			break;
		/* another index: select in it next */
		hc_oci_manifest_free(&top);
		top = m;
		memset(&m, 0, sizeof(m));
		free(top_body);
		top_body = steal_ptr(&body);
	}
	if (!from_index) {
		m = top;
		memset(&top, 0, sizeof(top));
		body = steal_ptr(&top_body);
		len = top_len;
		memcpy(digest, top_digest, sizeof(digest));
	}
	r = check_image_manifest(&m, digest, err);
	if (r < 0)
		goto out;

	r = hc_oci_store_lock_writers(store, true, false, &lock_fd, err);
	if (r < 0)
		goto out;

	/* config + layers, each once, minus what the store has */
	n_blobs = m.n_layers + 1;
	sinks = calloc(n_blobs, sizeof(*sinks));
	jobs = calloc(n_blobs, sizeof(*jobs));
	if (!sinks || !jobs) {
		r = hc_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n_blobs; i++) {
		const struct hc_oci_desc *d = i == 0 ? &m.config : &m.layers[i - 1];
		bool dup = false;
		for (size_t j = 0; j < n_jobs && !dup; j++)
			dup = strcmp(jobs[j].digest, d->digest) == 0;
		if (dup)
			continue;
		/* What is reused is checked: its size always, its content with --verify (and
		 * always for the config, which is small). A damaged blob is fetched again, and
		 * its commit replaces it. */
		struct hc_error ce = {0};
		int c = hc_oci_store_check_blob(store, d->digest, d->size,
						i == 0 || (opts && opts->verify), &ce);
		if (c == 0) {
			hc_debug("blob %s: already in the store", d->digest);
			if (opts && opts->progress)
				opts->progress(d->digest, d->size, d->size, opts->userdata);
			continue;
		}
		if (c != -ENOENT)
			hc_info("%s: fetching it again", ce.message);
		sinks[n_jobs] = (struct sink){.store = store,
					      .opts = opts,
					      .digest = d->digest,
					      .size = d->size,
					      .is_config = i == 0};
		if (i == 0)
			cfg_sink = &sinks[n_jobs];
		jobs[n_jobs] = (struct hc_oci_blob_fetch){
			.digest = d->digest,
			.size = d->size,
			.begin = sink_begin,
			.write = sink_write,
			.done = sink_done,
			.abort = sink_abort,
			.userdata = &sinks[n_jobs],
		};
		n_jobs++;
	}
	r = hc_oci_registry_fetch_blobs(reg, jobs, n_jobs, PULL_PARALLEL, err);
	if (r < 0) {
		/* the message names the blob; say where it came from */
		if (r != -ECANCELED && !strstr(err->message, reg ? ref.domain : ""))
			hc_error_prefix(err, "%s", ref.domain);
		goto out;
	}
	r = check_config(cfg_sink, store, &m.config, &plat, from_index || (opts && opts->platform),
			 err);
	if (r < 0)
		goto out;

	/* Everything verified: link it into place, then the manifest, then the name. */
	for (size_t i = 0; i < n_jobs; i++) {
		struct hc_oci_blob_writer *w = steal_ptr(&sinks[i].w);
		r = hc_oci_blob_writer_commit(w, NULL, err);
		if (r < 0)
			goto out;
	}
	struct hc_error me = {0};
	if (hc_oci_store_check_blob(store, digest, len, true, &me) < 0) {
		r = hc_oci_store_blob_put(store, digest, body, len, NULL, err);
		if (r < 0)
			goto out;
	}
	/* A cached pull that finds the name already pointing here rewrites nothing. */
	if (!name_is(store, name, digest)) {
		r = hc_oci_store_add_name(store, name, digest, m.media_type, len, err);
		if (r < 0)
			goto out;
	}
	hc_info("pulled %s (%s)", name, digest);
	if (ret_digest)
		memcpy(ret_digest, digest, HC_DIGEST_SIZE);
	r = 0;
out:
	for (size_t i = 0; sinks && i < n_jobs; i++)
		hc_oci_blob_writer_abort(sinks[i].w);
	hc_oci_manifest_free(&top);
	hc_oci_manifest_free(&m);
	hc_oci_registry_close(reg);
	return r;
}

int hc_image_pull(struct hc_store *store, const char *ref, const struct hc_pull_opts *opts,
		  char *ret_digest, struct hc_error *err)
{
	struct hc_error e = {0};
	int r;

	if (!store || !ref)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "pull: no store or reference");
	r = pull(store, ref, opts, ret_digest, &e);
	if (r < 0) {
		hc_error_kind(&e, HC_EK_REGISTRY);
		hc_error_prefix(&e, "pull '%.200s'", ref);
		if (err)
			*err = e;
	}
	return r;
}
