/* SPDX-License-Identifier: MIT */
/* The server's warm pool (pool.h, docs/warm-start.md). */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/log.h"
#include "lib/pool.h"
#include "oci/store.h"

/* A pooled guest answers HOSTNAME + RESEED in milliseconds; one that does not is broken. */
#define TAKE_RESEED_TIMEOUT_MS 3000
#define RESTORE_RESEED_TIMEOUT_MS 5000
/* How often the refill thread checks the waiting VMs and the templates when idle. */
#define CHECK_EVERY_MS 1000
/* After a failed restore of a key, the refill thread leaves it alone this long. */
#define RETRY_AFTER_MS 5000

struct pooled {
	struct hc_vm *vm;
	int agent;
	struct hc_lib_snapshot *snap;
};

struct pkey {
	bool used;
	char key[65];
	bool no_jail;
	char dir[HC_PATH_MAX];
	dev_t dev; /* the template directory's identity */
	ino_t ino;
	int image_lock; /* shared flock on the image while the key is kept */
	double last_used, retry_at;
	unsigned n;
	struct pooled *vms; /* per_key of them */
};

struct hc_warm_pool {
	unsigned per_key;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool thread_started, stop;
	int stop_pipe[2]; /* readable once stopping: cancels a restore in progress */
	struct pkey keys[HC_LIB_POOL_MAX_KEYS];
	atomic_uint taken, discarded, restored;
	/* Runs on a taken VM now (under lock): a refill waits for them while their key still
	 * has a VM waiting, so a restore does not take the CPU from a run (TCG, 2 CPUs). */
	unsigned busy;
};

static void pooled_free(struct pooled *v)
{
	if (v->agent >= 0)
		close(v->agent);
	hc_vm_free(v->vm);
	hc_lib_snapshot_close(v->snap);
	*v = (struct pooled){.agent = -1};
}

static bool same_template(const struct pkey *k)
{
	struct stat st;

	return stat(k->dir, &st) == 0 && st.st_dev == k->dev && st.st_ino == k->ino;
}

/* A waiting VM that may still be handed out: its VMM runs and its channel is quiet (a guest
 * that wrote, or a channel at EOF, is not waiting any more). */
static bool pooled_alive(struct pooled *v)
{
	struct pollfd p = {.fd = v->agent, .events = POLLIN};
	struct hc_error e = {0};

	if (hc_vm_check(v->vm, &e) < 0) {
		hc_debug("pool: a waiting VM died: %s", e.message);
		return false;
	}
	if (poll(&p, 1, 0) != 0) {
		hc_debug("pool: a waiting VM's channel is not quiet (revents %#x)",
			 (unsigned)p.revents);
		return false;
	}
	return true;
}

/* Under lock: moves the key's VMs to out (freed by the caller, out of the lock). */
static size_t key_drain(struct pkey *k, struct pooled *out, size_t room)
{
	size_t n = 0;

	while (k->n && n < room)
		out[n++] = k->vms[--k->n];
	return n;
}

static void key_drop(struct hc_warm_pool *p, struct pkey *k, struct pooled *out, size_t room,
		     size_t *n_out)
{
	*n_out += key_drain(k, out + *n_out, room - *n_out);
	if (k->image_lock >= 0)
		close(k->image_lock);
	free(k->vms);
	*k = (struct pkey){.image_lock = -1};
	(void)p;
}

static struct pkey *key_find(struct hc_warm_pool *p, const char *key, bool no_jail)
{
	for (size_t i = 0; i < HC_LIB_POOL_MAX_KEYS; i++)
		if (p->keys[i].used && p->keys[i].no_jail == no_jail &&
		    hc_streq(p->keys[i].key, key))
			return &p->keys[i];
	return NULL;
}

#define MAX_DRAIN (HC_LIB_POOL_MAX_KEYS * 8)

static void free_all(struct pooled *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pooled_free(&v[i]);
	if (n)
		hc_debug("pool: %zu VM(s) discarded", n);
}

/* Under lock: the stale keys (template gone or rebuilt) dropped, the dead VMs taken out. */
static size_t check_all(struct hc_warm_pool *p, struct pooled *out, size_t room)
{
	size_t n = 0;

	for (size_t i = 0; i < HC_LIB_POOL_MAX_KEYS && n < room; i++) {
		struct pkey *k = &p->keys[i];

		if (!k->used)
			continue;
		if (!same_template(k)) {
			hc_debug("pool: template %s is gone or rebuilt: its VMs go", k->dir);
			key_drop(p, k, out, room, &n);
			continue;
		}
		for (unsigned j = 0; j < k->n && n < room;) {
			if (pooled_alive(&k->vms[j])) {
				j++;
				continue;
			}
			out[n++] = k->vms[j];
			k->vms[j] = k->vms[--k->n];
		}
	}
	atomic_fetch_add(&p->discarded, (unsigned)n);
	return n;
}

/* Out of the lock: one VM restored from dir (the refill thread's own, so the VMM's
 * parent-death signal is tied to a thread that lives as long as the pool). */
static int restore_one(struct hc_warm_pool *p, const char *dir, bool no_jail, struct pooled *ret,
		       struct hc_error *err)
{
	struct hc_lib_restore_as as = {
		.hostname = NULL,
		.cancel_fd = p->stop_pipe[0],
		.reseed_timeout_ms = RESTORE_RESEED_TIMEOUT_MS,
		.no_jail = no_jail,
	};
	struct pooled v = {.agent = -1};
	int r;

	r = hc_lib_snapshot_open(dir, &v.snap, err);
	if (r < 0)
		return r;
	if (v.snap->spec.network != HC_NET_NONE) {
		hc_lib_snapshot_close(v.snap);
		return hc_error_set(err, -EINVAL, "a networked template is not pooled");
	}
	r = hc_lib_snapshot_restore_as(v.snap, &as, &v.vm, &v.agent, NULL, err);
	if (r < 0) {
		hc_lib_snapshot_close(v.snap);
		return r;
	}
	*ret = v;
	return 0;
}

static void *refill_main(void *arg)
{
	struct hc_warm_pool *p = arg;
	struct pooled drained[MAX_DRAIN];
	size_t n;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct pkey *want = NULL;
		char dir[HC_PATH_MAX], key[65];
		bool no_jail;
		struct pooled v;
		struct hc_error e = {0};
		double now = hc_clock_ms();

		n = check_all(p, drained, MAX_DRAIN);
		if (n) {
			pthread_mutex_unlock(&p->lock);
			free_all(drained, n);
			pthread_mutex_lock(&p->lock);
			continue;
		}
		for (size_t i = 0; i < HC_LIB_POOL_MAX_KEYS; i++) {
			struct pkey *k = &p->keys[i];

			if (k->used && k->n < p->per_key && k->retry_at <= now &&
			    (!p->busy || !k->n) && (!want || k->n < want->n))
				want = k;
		}
		if (!want) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += CHECK_EVERY_MS / 1000;
			pthread_cond_timedwait(&p->cond, &p->lock, &ts);
			continue;
		}
		snprintf(dir, sizeof(dir), "%s", want->dir);
		snprintf(key, sizeof(key), "%s", want->key);
		no_jail = want->no_jail;
		pthread_mutex_unlock(&p->lock);
		double t0 = hc_clock_ms();
		int r = restore_one(p, dir, no_jail, &v, &e);
		pthread_mutex_lock(&p->lock);
		struct pkey *k = key_find(p, key, no_jail);
		if (r < 0) {
			if (k)
				k->retry_at = hc_clock_ms() + RETRY_AFTER_MS;
			if (!p->stop)
				hc_debug("pool: restore of %s failed: %s", dir, e.message);
			continue;
		}
		if (!k || p->stop || k->n >= p->per_key || !hc_streq(k->dir, dir)) {
			pthread_mutex_unlock(&p->lock);
			pooled_free(&v);
			pthread_mutex_lock(&p->lock);
			continue;
		}
		k->vms[k->n++] = v;
		atomic_fetch_add(&p->restored, 1);
		hc_debug("pool: a VM of %.12s restored in %.1f ms (%u waiting)", key,
			 hc_clock_ms() - t0, k->n);
	}
	/* Stopping: every waiting VM goes, from this thread (their VMMs' parent). */
	n = 0;
	for (size_t i = 0; i < HC_LIB_POOL_MAX_KEYS; i++)
		if (p->keys[i].used)
			key_drop(p, &p->keys[i], drained, MAX_DRAIN, &n);
	pthread_mutex_unlock(&p->lock);
	free_all(drained, n);
	return NULL;
}

HC_EXPORT int hc_warm_pool_new(unsigned per_key, struct hc_warm_pool **ret, struct hc_error *err)
{
	struct hc_warm_pool *p;
	int r;

	*ret = NULL;
	if (!per_key || per_key > HC_WARM_POOL_MAX)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "warm pool: %u VMs per template (1-%u)", per_key,
				     HC_WARM_POOL_MAX);
	p = calloc(1, sizeof(*p));
	if (!p)
		return hc_error_setk(err, -ENOMEM, HC_EK_INTERNAL, "out of memory");
	p->per_key = per_key;
	for (size_t i = 0; i < HC_LIB_POOL_MAX_KEYS; i++)
		p->keys[i].image_lock = -1;
	if (pipe2(p->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = hc_error_errno(err, -errno, "warm pool: pipe");
		free(p);
		return r;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	r = pthread_create(&p->thread, NULL, refill_main, p);
	if (r) {
		hc_warm_pool_free(p);
		return hc_error_errno(err, -r, "warm pool: refill thread");
	}
	p->thread_started = true;
	*ret = p;
	return 0;
}

HC_EXPORT void hc_warm_pool_free(struct hc_warm_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (write(p->stop_pipe[1], "x", 1) < 0)
		hc_debug("pool: stop pipe: %s", strerror(errno));
	if (p->thread_started)
		pthread_join(p->thread, NULL);
	close(p->stop_pipe[0]);
	close(p->stop_pipe[1]);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

HC_EXPORT void hc_warm_pool_stats(struct hc_warm_pool *p, struct hc_warm_pool_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	ret->per_key = p->per_key;
	for (size_t i = 0; i < HC_LIB_POOL_MAX_KEYS; i++) {
		if (!p->keys[i].used)
			continue;
		ret->keys++;
		ret->waiting += p->keys[i].n;
	}
	pthread_mutex_unlock(&p->lock);
	ret->taken = atomic_load(&p->taken);
	ret->restored = atomic_load(&p->restored);
	ret->discarded = atomic_load(&p->discarded);
}

void hc_lib_pool_want(struct hc_warm_pool *p, struct hc_store *store,
		      const struct hc_lib_template *t, const char *digest,
		      const struct hc_run_opts *o)
{
	struct pooled drained[MAX_DRAIN];
	struct hc_error e = {0};
	struct pkey *k, *slot = NULL;
	struct stat st;
	size_t n = 0;
	int lock = -1;

	if (!p || !t->key[0] || !t->dir[0] || o->network != HC_NET_NONE)
		return;
	pthread_mutex_lock(&p->lock);
	k = key_find(p, t->key, o->no_jail);
	if (k) {
		k->last_used = hc_clock_ms();
		if (k->n < p->per_key)
			pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->lock);
		return;
	}
	pthread_mutex_unlock(&p->lock);
	/* New: the image's lock first (a run holds it, so this does not wait). */
	if (stat(t->dir, &st) < 0 || !store || !digest || !digest[0])
		return;
	if (hc_oci_store_lock_image(store, digest, true, true, &lock, &e) < 0) {
		hc_debug("pool: the image of %s is not locked (%s): not pooled", t->dir, e.message);
		return;
	}
	pthread_mutex_lock(&p->lock);
	if (key_find(p, t->key, o->no_jail) || p->stop) {
		pthread_mutex_unlock(&p->lock);
		close(lock);
		return;
	}
	for (size_t i = 0; i < HC_LIB_POOL_MAX_KEYS; i++) {
		if (!p->keys[i].used) {
			slot = &p->keys[i];
			break;
		}
		if (!slot || p->keys[i].last_used < slot->last_used)
			slot = &p->keys[i];
	}
	if (slot->used) {
		hc_debug("pool: %u keys already: %.12s gives way", HC_LIB_POOL_MAX_KEYS, slot->key);
		key_drop(p, slot, drained, MAX_DRAIN, &n);
	}
	slot->vms = calloc(p->per_key, sizeof(*slot->vms));
	if (!slot->vms) {
		pthread_mutex_unlock(&p->lock);
		close(lock);
		free_all(drained, n);
		return;
	}
	slot->used = true;
	snprintf(slot->key, sizeof(slot->key), "%s", t->key);
	snprintf(slot->dir, sizeof(slot->dir), "%s", t->dir);
	slot->no_jail = o->no_jail;
	slot->dev = st.st_dev;
	slot->ino = st.st_ino;
	slot->image_lock = lock;
	slot->last_used = hc_clock_ms();
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	free_all(drained, n);
	hc_debug("pool: keeping VMs of template %s%s", t->dir, o->no_jail ? " (--no-jail)" : "");
}

int hc_lib_pool_take(struct hc_warm_pool *p, const struct hc_lib_template *t,
		     const struct hc_run_opts *o, struct hc_vm **ret_vm, int *ret_agent_fd,
		     struct hc_lib_snapshot **ret_snap, double *ret_ms)
{
	double t0 = hc_clock_ms();

	if (!p || t->state != HC_TPL_WARM || o->network != HC_NET_NONE)
		return 0;
	for (;;) {
		struct pooled v;
		struct hc_error e = {0};
		struct pkey *k;
		int fl;

		pthread_mutex_lock(&p->lock);
		k = key_find(p, t->key, o->no_jail);
		if (!k || !k->n) {
			pthread_mutex_unlock(&p->lock);
			return 0;
		}
		if (!same_template(k) || !hc_streq(k->dir, t->dir)) {
			/* The refill thread drops the key; nothing of it is handed out. */
			pthread_cond_signal(&p->cond);
			pthread_mutex_unlock(&p->lock);
			return 0;
		}
		v = k->vms[--k->n];
		k->last_used = hc_clock_ms();
		p->busy++;
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->lock);

		/* Out of the pool: this run's alone, whatever happens next. */
		if (pooled_alive(&v)) {
			fl = fcntl(v.agent, F_GETFL);
			if (fl >= 0 && (fl & O_NONBLOCK))
				fcntl(v.agent, F_SETFL, fl & ~O_NONBLOCK);
			if (hc_lib_snapshot_reseed_as(v.agent, TAKE_RESEED_TIMEOUT_MS,
						      o->hostname ? o->hostname : "hotcell",
						      &e) == 0) {
				*ret_vm = v.vm;
				*ret_agent_fd = v.agent;
				*ret_snap = v.snap;
				*ret_ms = hc_clock_ms() - t0;
				atomic_fetch_add(&p->taken, 1);
				hc_debug("pool: took a VM of %.12s in %.1f ms", t->key, *ret_ms);
				return 1;
			}
			hc_debug("pool: a taken VM did not answer: %s", e.message);
		}
		atomic_fetch_add(&p->discarded, 1);
		pooled_free(&v);
		hc_lib_pool_done(p);
	}
}

void hc_lib_pool_done(struct hc_warm_pool *p)
{
	pthread_mutex_lock(&p->lock);
	if (p->busy)
		p->busy--;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}
