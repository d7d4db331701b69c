/* SPDX-License-Identifier: MIT */
/*
 * OCI Distribution API v2 client over libcurl (distribution-spec v1.1, "Pull" and "Error
 * Codes"; token auth per distribution docs/spec/auth/token.md). See registry.h for the
 * transport rules.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <strings.h>

#include "core/buf.h"
#include "core/cancel.h"
#include "core/clock.h"
#include "core/curl.h"
#include "core/log.h"
#include "oci/digest.h"
#include "oci/manifest.h"
#include "oci/registry.h"

#define ERRBODY_MAX (64u << 10)
#define TOKEN_REPLY_MAX (1u << 20)
#define RETRY_429_MAX 3
#define RETRY_AFTER_CAP_S 60
#define USER_AGENT "hotcell/" HC_VERSION
/* A transfer that averages less than this over a window is abandoned (HOTCELL_PULL_MIN_RATE,
 * bytes/s; HOTCELL_PULL_RATE_WINDOW, seconds). */
#define MIN_RATE_DEFAULT 1024
#define RATE_WINDOW_DEFAULT 30

struct hc_oci_registry {
	struct hc_oci_ref ref;
	char repo[HC_OCI_NAME_MAX * 2 + 2]; /* "127.0.0.1:5000/team/tool", for messages */
	char base[HC_OCI_NAME_MAX + 16];    /* "https://host" */
	bool plain_ok;			    /* loopback or insecure: HTTP allowed */
	bool insecure;			    /* TLS not verified */
	bool loopback;
	struct hc_oci_creds creds;
	enum hc_oci_auth_scheme scheme;
	struct hc_oci_challenge chal;
	char *authz;	    /* "Authorization: ..." header, or NULL */
	unsigned authz_gen; /* bumped at every new token */
	CURLSH *share;
	CURLM *multi;
	int cancel_fd;	      /* core/cancel.h; -1: none */
	uint64_t min_rate;    /* bytes/s; 0: no rate check */
	unsigned rate_window; /* seconds */
};

/* One HTTP exchange. */
struct xfer {
	struct hc_oci_registry *reg;
	CURL *h;
	struct curl_slist *hdrs;
	char url[2048];
	const char *what; /* "manifest 'latest'", "blob sha256:…", for messages */
	/* where a 2xx body goes: a bounded buffer, or a blob sink */
	struct hc_buf body;
	struct hc_oci_blob_fetch *job;
	bool sink_open;
	int sink_rc;
	struct hc_error sink_err;
	struct hc_buf errbody;
	/* the response */
	long status;
	char content_type[128];
	char docker_digest[HC_DIGEST_SIZE + 8];
	char www_auth[2048];
	char retry_after[64];
	char curl_err[CURL_ERROR_SIZE];
	/* retries */
	int tries_429;
	bool reauthed;
	unsigned authz_gen; /* the reg->authz_gen the request went out with */
	double not_before;
	/* the rate check: bytes received when the current window began */
	double win_start;
	curl_off_t win_bytes;
	uint64_t slow_bytes; /* what the window that failed received */
	bool too_slow, cancelled;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

bool hc_oci_registry_insecure_env(const char *domain)
{
	const char *list = getenv("HOTCELL_INSECURE_REGISTRIES");
	size_t dl = strlen(domain);

	while (list && *list) {
		size_t n = strcspn(list, ", \t");
		if (n == dl && strncasecmp(list, domain, n) == 0)
			return true;
		list += n;
		list += strspn(list, ", \t");
	}
	return false;
}

const char *hc_oci_registry_base_url(const struct hc_oci_registry *reg)
{
	return reg->base;
}

/* ---- one transfer ------------------------------------------------------------------------- */

static void trim_copy(char *dst, size_t n, const char *v, size_t len)
{
	while (len && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		len--;
	}
	while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
		len--;
	if (len >= n)
		len = n - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * nmemb;
	static const struct {
		const char *name;
		size_t off, n;
	} want[] = {
		{"content-type:", offsetof(struct xfer, content_type),
		 sizeof(((struct xfer *)0)->content_type)},
		{"docker-content-digest:", offsetof(struct xfer, docker_digest),
		 sizeof(((struct xfer *)0)->docker_digest)},
		{"retry-after:", offsetof(struct xfer, retry_after),
		 sizeof(((struct xfer *)0)->retry_after)},
	};

	/* A new response (after a redirect, a 100 Continue): forget the previous headers. */
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		x->content_type[0] = x->docker_digest[0] = x->www_auth[0] = x->retry_after[0] =
			'\0';
		return len;
	}
	for (size_t i = 0; i < HC_ARRAY_SIZE(want); i++) {
		size_t k = strlen(want[i].name);
		if (len > k && strncasecmp(data, want[i].name, k) == 0) {
			trim_copy((char *)x + want[i].off, want[i].n, data + k, len - k);
			return len;
		}
	}
	/* Keep the first challenge, preferring Bearer when a registry offers several. */
	if (len > 17 && strncasecmp(data, "www-authenticate:", 17) == 0) {
		char v[sizeof(x->www_auth)];
		trim_copy(v, sizeof(v), data + 17, len - 17);
		if (!x->www_auth[0] || strncasecmp(v, "bearer", 6) == 0)
			memcpy(x->www_auth, v, sizeof(v));
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * nmemb;
	long status = 0;

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status >= 300) {
		/* An error document: keep what fits, it only feeds the message. */
		size_t room = ERRBODY_MAX - x->errbody.len;
		if (room && hc_buf_append(&x->errbody, data, len < room ? len : room) < 0)
			return 0;
		return len;
	}
	if (x->job) {
		if (!x->sink_open) {
			x->sink_rc = x->job->begin(x->job->userdata, &x->sink_err);
			if (x->sink_rc < 0)
				return 0;
			x->sink_open = true;
		}
		x->sink_rc = x->job->write(x->job->userdata, data, len, &x->sink_err);
		return x->sink_rc < 0 ? 0 : len;
	}
	x->sink_rc = hc_buf_append(&x->body, data, len);
	if (x->sink_rc < 0) {
		hc_error_setk(&x->sink_err, -E2BIG, HC_EK_REGISTRY,
			      "%s: %s is larger than %zu bytes", x->reg->repo, x->what,
			      x->body.max);
		return 0;
	}
	return len;
}

/* libcurl calls this often while data flows and about once a second when nothing does: the
 * cancel check and the rate check (a trickle that curl's own low-speed limit, which only
 * catches a standstill, would let live for days). Non-zero aborts the transfer. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct xfer *x = ud;
	const struct hc_oci_registry *reg = x->reg;
	double now = hc_clock_ms();

	(void)dltotal;
	(void)ultotal;
	(void)ulnow;
	if (hc_fd_readable(reg->cancel_fd)) {
		x->cancelled = true;
		return 1;
	}
	if (!reg->min_rate)
		return 0;
	if (x->win_start <= 0) {
		x->win_start = now;
		x->win_bytes = dlnow;
		return 0;
	}
	if (now - x->win_start < (double)reg->rate_window * 1000.0)
		return 0;
	if ((uint64_t)(dlnow - x->win_bytes) < reg->min_rate * reg->rate_window) {
		x->slow_bytes = (uint64_t)(dlnow - x->win_bytes);
		x->too_slow = true;
		return 1;
	}
	x->win_start = now;
	x->win_bytes = dlnow;
	return 0;
}

static void xfer_reset(struct xfer *x)
{
	if (x->h) {
		curl_easy_cleanup(x->h);
		x->h = NULL;
	}
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	if (x->job && x->sink_open)
		x->job->abort(x->job->userdata);
	x->sink_open = false;
	x->sink_rc = 0;
	hc_buf_reset(&x->body);
	hc_buf_reset(&x->errbody);
	x->status = 0;
	x->content_type[0] = x->docker_digest[0] = x->www_auth[0] = x->retry_after[0] = '\0';
	x->curl_err[0] = '\0';
	x->win_start = 0;
	x->win_bytes = 0;
	x->too_slow = x->cancelled = false;
}

static void xfer_free(struct xfer *x)
{
	xfer_reset(x);
	hc_buf_free(&x->body);
	hc_buf_free(&x->errbody);
}

static int set_common(struct hc_oci_registry *reg, CURL *h, struct hc_error *err)
{
	const char *protos = reg->plain_ok ? "http,https" : "https";
	CURLcode c = CURLE_OK;

#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (c == CURLE_OK)                                                                 \
			c = curl_easy_setopt(h, opt, val);                                         \
	} while (0)
	SET(CURLOPT_SHARE, reg->share);
	SET(CURLOPT_SOCKOPTFUNCTION, hc_curl_sockopt_cloexec);
	SET(CURLOPT_USERAGENT, USER_AGENT);
	SET(CURLOPT_PROTOCOLS_STR, protos);
	SET(CURLOPT_REDIR_PROTOCOLS_STR, protos);
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, 5L);
	/* Never send credentials to a host a redirect leads to (blob storage). */
	SET(CURLOPT_UNRESTRICTED_AUTH, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, reg->insecure ? 0L : 1L);
	SET(CURLOPT_SSL_VERIFYHOST, reg->insecure ? 0L : 2L);
	SET(CURLOPT_CONNECTTIMEOUT, 30L);
	/* A connection that moves nothing for 60 s is dead. */
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, 60L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_BUFFERSIZE, 256L * 1024);
	if (reg->loopback)
		SET(CURLOPT_NOPROXY, "*");
#undef SET
	if (c != CURLE_OK)
		return hc_error_setk(err, -EIO, HC_EK_INTERNAL, "libcurl: %s",
				     curl_easy_strerror(c));
	return 0;
}

/* Builds the easy handle for x->url. with_auth: send reg->authz. */
static int xfer_prepare(struct xfer *x, const char *accept, bool with_auth, struct hc_error *err)
{
	struct hc_oci_registry *reg = x->reg;
	struct curl_slist *l;
	char hdr[512];
	int r;

	xfer_reset(x);
	x->h = curl_easy_init();
	if (!x->h)
		return hc_error_set(err, -ENOMEM, "libcurl: cannot create a handle");
	r = set_common(reg, x->h, err);
	if (r < 0)
		return r;
	if (accept) {
		snprintf(hdr, sizeof(hdr), "Accept: %s", accept);
		if (!(l = curl_slist_append(x->hdrs, hdr)))
			return hc_error_set(err, -ENOMEM, "out of memory");
		x->hdrs = l;
	}
	x->authz_gen = reg->authz_gen;
	if (with_auth && reg->authz) {
		if (!(l = curl_slist_append(x->hdrs, reg->authz)))
			return hc_error_set(err, -ENOMEM, "out of memory");
		x->hdrs = l;
	}
	if (curl_easy_setopt(x->h, CURLOPT_URL, x->url) != CURLE_OK ||
	    curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdrs) != CURLE_OK ||
	    curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
	    curl_easy_setopt(x->h, CURLOPT_HEADERDATA, x) != CURLE_OK ||
	    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
	    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x) != CURLE_OK ||
	    curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, x->curl_err) != CURLE_OK ||
	    curl_easy_setopt(x->h, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
	    curl_easy_setopt(x->h, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK ||
	    curl_easy_setopt(x->h, CURLOPT_XFERINFODATA, x) != CURLE_OK ||
	    curl_easy_setopt(x->h, CURLOPT_PRIVATE, x) != CURLE_OK)
		return hc_error_setk(err, -EIO, HC_EK_INTERNAL, "libcurl: cannot set options");
	return 0;
}

/* The registry's own error document (distribution-spec "Error Codes"): first code and
 * message. */
static void registry_error(const struct xfer *x, char *code, size_t cn, char *msg, size_t mn)
{
	json_t *root, *errs, *e;

	code[0] = msg[0] = '\0';
	if (!x->errbody.len)
		return;
	root = json_loadb(x->errbody.data, x->errbody.len, 0, NULL);
	errs = json_object_get(root, "errors");
	e = json_array_get(errs, 0);
	if (json_is_string(json_object_get(e, "code")))
		snprintf(code, cn, "%s", json_string_value(json_object_get(e, "code")));
	if (json_is_string(json_object_get(e, "message")))
		snprintf(msg, mn, "%.200s", json_string_value(json_object_get(e, "message")));
	json_decref(root);
	/* never put control characters from the network on the user's terminal */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	for (char *p = code; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
}

/* Seconds to wait for a 429 (RFC 9110 §10.2.3: delay-seconds or an HTTP-date). */
static long retry_after_s(const struct xfer *x)
{
	char *end;
	long v;

	if (!x->retry_after[0])
		return 1;
	v = strtol(x->retry_after, &end, 10);
	if (end != x->retry_after && *end == '\0')
		return v < 0 ? 0 : v;
	time_t t = curl_getdate(x->retry_after, NULL);
	if (t < 0)
		return 1;
	v = (long)(t - time(NULL));
	return v < 0 ? 0 : v;
}

static int transport_error(const struct xfer *x, CURLcode c, struct hc_error *err)
{
	const struct hc_oci_registry *reg = x->reg;
	const char *detail = x->curl_err[0] ? x->curl_err : curl_easy_strerror(c);

	if (x->cancelled)
		return hc_error_setk(err, -ECANCELED, "cancelled", "interrupted");
	if (x->too_slow)
		/* Not retried: a registry that trickles once trickles again. */
		return hc_error_setk(err, -ETIMEDOUT, HC_EK_REGISTRY,
				     "%s: %s abandoned: too slow (%llu bytes in %u s, under the "
				     "minimum of %llu bytes/s; HOTCELL_PULL_MIN_RATE and "
				     "HOTCELL_PULL_RATE_WINDOW set the limit)",
				     reg->repo, x->what, (unsigned long long)x->slow_bytes,
				     reg->rate_window, (unsigned long long)reg->min_rate);
	/* an int: -Wswitch-enum would want every one of libcurl's codes listed */
	switch ((int)c) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		return hc_error_setk(err, -EHOSTUNREACH, HC_EK_REGISTRY, "cannot connect to %s: %s",
				     reg->ref.domain, detail);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return hc_error_setk(
			err, -EPERM, HC_EK_REGISTRY,
			"%s: TLS certificate not trusted (%s); --insecure skips the check "
			"if you trust the network",
			reg->ref.domain, detail);
	case CURLE_SSL_CONNECT_ERROR:
		return hc_error_setk(err, -EPROTO, HC_EK_REGISTRY, "%s: TLS handshake failed: %s%s",
				     reg->ref.domain, detail,
				     reg->plain_ok
					     ? ""
					     : " (plain HTTP is used only for loopback registries "
					       "and with --insecure)");
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return hc_error_setk(err, -ECONNRESET, HC_EK_REGISTRY,
				     "%s: connection dropped while fetching %s (%s)", reg->repo,
				     x->what, detail);
	case CURLE_OPERATION_TIMEDOUT:
		return hc_error_setk(err, -ETIMEDOUT, HC_EK_REGISTRY,
				     "%s: timed out fetching %s (%s)", reg->repo, x->what, detail);
	case CURLE_TOO_MANY_REDIRECTS:
		return hc_error_setk(err, -ELOOP, HC_EK_REGISTRY,
				     "%s: too many redirects fetching %s", reg->repo, x->what);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return hc_error_setk(
			err, -EPERM, HC_EK_REGISTRY,
			"%s: refusing a redirect to a disallowed protocol fetching %s (%s)",
			reg->repo, x->what, detail);
	default:
		return hc_error_setk(err, -EIO, HC_EK_REGISTRY, "%s: fetching %s: %s", reg->repo,
				     x->what, detail);
	}
}

/* A final non-2xx status, as one line. */
static int status_error(const struct xfer *x, struct hc_error *err)
{
	const struct hc_oci_registry *reg = x->reg;
	char code[64], msg[256];

	registry_error(x, code, sizeof(code), msg, sizeof(msg));
	switch (x->status) {
	case 401:
		if (reg->creds.set)
			return hc_error_setk(
				err, -EACCES, HC_EK_REGISTRY,
				"%s: authentication failed (401 Unauthorized) with the "
				"credentials from %s: wrong user or password?",
				reg->repo, reg->creds.source);
		return hc_error_setk(
			err, -EACCES, HC_EK_REGISTRY,
			"%s: 401 Unauthorized: the repository does not exist or needs "
			"credentials (HOTCELL_REGISTRY_USER/HOTCELL_REGISTRY_PASSWORD or an "
			"auth file)%s%s",
			reg->repo, msg[0] ? ": " : "", msg);
	case 403:
		return hc_error_setk(err, -EACCES, HC_EK_REGISTRY,
				     "%s: access to %s denied (403 Forbidden)%s%s", reg->repo,
				     x->what, msg[0] ? ": " : "", msg);
	case 404:
		if (strcmp(code, "NAME_UNKNOWN") == 0)
			return hc_error_setk(err, -ENOENT, HC_EK_REGISTRY,
					     "%s: unknown image: repository not found", reg->repo);
		if (strcmp(code, "MANIFEST_UNKNOWN") == 0 &&
		    !hc_startswith(x->what, "manifest sha256:"))
			return hc_error_setk(err, -ENOENT, HC_EK_REGISTRY,
					     "%s: unknown tag: %s not found", reg->repo, x->what);
		return hc_error_setk(err, -ENOENT, HC_EK_REGISTRY, "%s: %s not found (404%s%s)",
				     reg->repo, x->what, code[0] ? " " : "", code);
	case 429:
		return hc_error_setk(
			err, -EAGAIN, HC_EK_REGISTRY,
			"%s: too many requests (429); the registry asks to retry after "
			"%ld s",
			reg->repo, retry_after_s(x));
	default:
		return hc_error_setk(err, -EIO, HC_EK_REGISTRY, "%s: fetching %s: HTTP %ld%s%s%s%s",
				     reg->repo, x->what, x->status, code[0] ? " " : "", code,
				     msg[0] ? ": " : "", msg);
	}
}

static int fetch_token(struct hc_oci_registry *reg, struct hc_error *err);

enum outcome { DONE, RETRY, FAILED };

/* Decides what a finished exchange means: done, retry (429, an expired token), or failed. */
static enum outcome judge(struct xfer *x, CURLcode c, struct hc_error *err)
{
	struct hc_oci_registry *reg = x->reg;
	int r;

	if (c != CURLE_OK) {
		if (x->sink_rc < 0) {
			*err = x->sink_err;
			return FAILED;
		}
		transport_error(x, c, err);
		return FAILED;
	}
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->status >= 200 && x->status < 300) {
		if (x->job) {
			if (!x->sink_open) {
				/* an empty blob: no write callback ran */
				r = x->job->begin(x->job->userdata, err);
				if (r < 0)
					return FAILED;
				x->sink_open = true;
			}
			x->sink_open = false; /* done() consumes the sink, even on failure */
			r = x->job->done(x->job->userdata, err);
			if (r < 0)
				return FAILED;
		}
		return DONE;
	}
	if (x->status == 429 && x->tries_429 < RETRY_429_MAX) {
		long s = retry_after_s(x);
		if (s <= RETRY_AFTER_CAP_S) {
			x->tries_429++;
			x->not_before = hc_clock_ms() + (double)s * 1000.0;
			hc_info("%s: 429 Too Many Requests, retrying %s in %ld s", reg->repo,
				x->what, s);
			return RETRY;
		}
	}
	/* A token may expire during a long pull: get a new one, once per exchange. */
	if (x->status == 401 && reg->scheme == HC_OCI_AUTH_BEARER &&
	    !strstr(x->www_auth, "insufficient_scope")) {
		/* another transfer got a new token since this one went out: just use it */
		if (x->authz_gen != reg->authz_gen)
			return RETRY;
	}
	if (x->status == 401 && reg->scheme == HC_OCI_AUTH_BEARER && !x->reauthed &&
	    !strstr(x->www_auth, "insufficient_scope")) {
		x->reauthed = true;
		r = fetch_token(reg, err);
		if (r < 0)
			return FAILED;
		return RETRY;
	}
	status_error(x, err);
	return FAILED;
}

/* Waits ms, or less when the caller cancels (-ECANCELED). */
static int wait_cancel(const struct hc_oci_registry *reg, int ms, struct hc_error *err)
{
	struct pollfd p = {.fd = reg->cancel_fd, .events = POLLIN};
	double end = hc_clock_ms() + ms;
	int left;

	while ((left = hc_clock_left_ms(end)) > 0) {
		if (poll(&p, reg->cancel_fd >= 0 ? 1 : 0, left) > 0)
			break;
	}
	return hc_cancel_check(reg->cancel_fd, err);
}

/* Runs one exchange to completion on its own, with the 429 / re-auth retries. */
static int perform(struct xfer *x, const char *accept, bool with_auth, struct hc_error *err)
{
	for (;;) {
		CURLcode c;
		enum outcome o;
		int r;
		double wait;

		r = xfer_prepare(x, accept, with_auth, err);
		if (r < 0)
			return r;
		wait = x->not_before - hc_clock_ms();
		if (wait > 0) {
			/* Retry-After is a time, not an event: only a cancel ends the wait. */
			r = wait_cancel(x->reg, (int)wait, err);
			if (r < 0)
				return r;
		}
		c = curl_easy_perform(x->h);
		o = judge(x, c, err);
		if (o == DONE)
			return 0;
		if (o == FAILED)
			return err->code < 0 ? err->code : -EIO;
	}
}

/* ---- authentication ----------------------------------------------------------------------- */

static int set_authz(struct hc_oci_registry *reg, const char *scheme_value)
{
	char *h;

	if (asprintf(&h, "Authorization: %s", scheme_value) < 0)
		return -ENOMEM;
	if (reg->authz)
		explicit_bzero(reg->authz, strlen(reg->authz));
	free(reg->authz);
	reg->authz = h;
	reg->authz_gen++;
	return 0;
}

/* token.md "Requesting a Token": GET realm?service=…&scope=…, with basic credentials when
 * we have them. */
static int fetch_token(struct hc_oci_registry *reg, struct hc_error *err)
{
	struct xfer x = {.reg = reg,
			 .what = "a token",
			 .body = HC_BUF_INIT(TOKEN_REPLY_MAX),
			 .errbody = HC_BUF_INIT(ERRBODY_MAX)};
	_cleanup_free_ char *token = NULL, *hdr = NULL;
	char scope[HC_OCI_NAME_MAX + 32], *es = NULL, *ev = NULL;
	const char *realm = reg->chal.realm;
	int r, k;

	if (!hc_startswith(realm, "https://") &&
	    !(hc_startswith(realm, "http://") && reg->plain_ok))
		return hc_error_setk(err, -EPERM, HC_EK_REGISTRY,
				     "%s: refusing token realm '%.200s' (not https)",
				     reg->ref.domain, realm);
	snprintf(scope, sizeof(scope), "repository:%s:pull", reg->ref.path);
	x.h = curl_easy_init();
	if (!x.h)
		return hc_error_set(err, -ENOMEM, "libcurl: cannot create a handle");
	es = curl_easy_escape(x.h, scope, 0);
	ev = curl_easy_escape(x.h, reg->chal.service, 0);
	if (!es || !ev) {
		curl_free(es);
		curl_free(ev);
		xfer_free(&x);
		return hc_error_set(err, -ENOMEM, "out of memory");
	}
	k = snprintf(x.url, sizeof(x.url), "%s%cscope=%s%s%s", realm,
		     strchr(realm, '?') ? '&' : '?', es, reg->chal.service[0] ? "&service=" : "",
		     ev);
	curl_free(es);
	curl_free(ev);
	if (k < 0 || (size_t)k >= sizeof(x.url)) {
		xfer_free(&x);
		return hc_error_setk(err, -ENAMETOOLONG, HC_EK_REGISTRY, "token URL too long");
	}
	for (int attempt = 0;; attempt++) {
		CURLcode c;
		r = xfer_prepare(&x, "application/json", false, err);
		if (r < 0)
			break;
		if (reg->creds.set &&
		    (curl_easy_setopt(x.h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK ||
		     curl_easy_setopt(x.h, CURLOPT_USERNAME, reg->creds.user) != CURLE_OK ||
		     curl_easy_setopt(x.h, CURLOPT_PASSWORD, reg->creds.password) != CURLE_OK)) {
			r = hc_error_set(err, -EIO, "libcurl: cannot set credentials");
			break;
		}
		c = curl_easy_perform(x.h);
		if (c != CURLE_OK) {
			r = transport_error(&x, c, err);
			hc_error_prefix(err, "token server");
			break;
		}
		curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &x.status);
		if (x.status == 429 && attempt < RETRY_429_MAX &&
		    retry_after_s(&x) <= RETRY_AFTER_CAP_S) {
			r = wait_cancel(reg, (int)(retry_after_s(&x) * 1000), err);
			if (r < 0)
				break;
			continue;
		}
		if (x.status == 401 || x.status == 403) {
			if (reg->creds.set)
				r = hc_error_setk(
					err, -EACCES, HC_EK_REGISTRY,
					"%s: authentication failed (%ld from the token "
					"server) with the credentials from %s: wrong user or "
					"password?",
					reg->ref.domain, x.status, reg->creds.source);
			else
				r = hc_error_setk(
					err, -EACCES, HC_EK_REGISTRY,
					"%s: the token server refused anonymous access (%ld)",
					reg->ref.domain, x.status);
			break;
		}
		if (x.status != 200) {
			r = hc_error_setk(err, -EIO, HC_EK_REGISTRY, "%s: token server: HTTP %ld",
					  reg->ref.domain, x.status);
			break;
		}
		r = hc_oci_auth_token_parse(x.body.data, x.body.len, &token, err);
		if (r < 0)
			break;
		if (asprintf(&hdr, "Bearer %s", token) < 0) {
			r = hc_error_set(err, -ENOMEM, "out of memory");
			break;
		}
		r = set_authz(reg, hdr);
		if (r < 0)
			hc_error_set(err, r, "out of memory");
		break;
	}
	if (token)
		explicit_bzero(token, strlen(token));
	xfer_free(&x);
	return r;
}

/* distribution-spec "Determining Support": GET /v2/, which also says how to authenticate. */
static int ping(struct hc_oci_registry *reg, struct hc_error *err)
{
	struct xfer x = {.reg = reg,
			 .what = "/v2/",
			 .body = HC_BUF_INIT(ERRBODY_MAX),
			 .errbody = HC_BUF_INIT(ERRBODY_MAX)};
	char basic[2048];
	CURLcode c;
	int r;

	snprintf(x.url, sizeof(x.url), "%s/v2/", reg->base);
	r = xfer_prepare(&x, NULL, false, err);
	if (r < 0)
		goto out;
	c = curl_easy_perform(x.h);
	if (c == CURLE_OK)
		curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &x.status);
	/* The other scheme: an insecure registry may speak plain HTTP (docker, podman), and a
	 * loopback one, tried with HTTP first, may speak HTTPS: then it answers HTTP with a
	 * transport error or 400 ("client sent an HTTP request to an HTTPS server"). */
	if (reg->plain_ok && c != CURLE_COULDNT_RESOLVE_HOST && c != CURLE_COULDNT_CONNECT &&
	    (c != CURLE_OK || (x.status == 400 && hc_startswith(reg->base, "http://")))) {
		hc_debug("%s: %s failed (%s), trying the other scheme", reg->ref.domain, reg->base,
			 c != CURLE_OK ? curl_easy_strerror(c) : "HTTP 400");
		if (hc_startswith(reg->base, "https://"))
			snprintf(reg->base, sizeof(reg->base), "http://%s",
				 hc_oci_ref_api_host(&reg->ref));
		else
			snprintf(reg->base, sizeof(reg->base), "https://%s",
				 hc_oci_ref_api_host(&reg->ref));
		snprintf(x.url, sizeof(x.url), "%s/v2/", reg->base);
		r = xfer_prepare(&x, NULL, false, err);
		if (r < 0)
			goto out;
		c = curl_easy_perform(x.h);
	}
	if (c != CURLE_OK) {
		r = transport_error(&x, c, err);
		goto out;
	}
	curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &x.status);
	if (x.status == 200) {
		reg->scheme = HC_OCI_AUTH_NONE;
		r = 0;
		goto out;
	}
	if (x.status != 401) {
		if (x.status == 404)
			r = hc_error_setk(err, -EPROTONOSUPPORT, HC_EK_REGISTRY,
					  "%s: not an OCI registry (GET /v2/ gave 404)",
					  reg->ref.domain);
		else
			r = status_error(&x, err);
		goto out;
	}
	r = hc_oci_auth_challenge_parse(x.www_auth, &reg->chal, err);
	if (r < 0) {
		hc_error_prefix(err, "%s", reg->ref.domain);
		goto out;
	}
	reg->scheme = reg->chal.scheme;
	if (reg->scheme == HC_OCI_AUTH_BEARER) {
		r = fetch_token(reg, err);
		goto out;
	}
	/* Basic */
	if (!reg->creds.set) {
		r = hc_error_setk(
			err, -EACCES, HC_EK_REGISTRY,
			"%s: authentication required (401): set HOTCELL_REGISTRY_USER and "
			"HOTCELL_REGISTRY_PASSWORD, or log in with podman/docker",
			reg->ref.domain);
		goto out;
	}
	if (hc_oci_auth_basic_header(&reg->creds, basic, sizeof(basic)) < 0) {
		r = hc_error_setk(err, -ENAMETOOLONG, HC_EK_REGISTRY, "credentials too long");
		goto out;
	}
	r = set_authz(reg, basic);
	explicit_bzero(basic, sizeof(basic));
	if (r < 0)
		hc_error_set(err, r, "out of memory");
out:
	xfer_free(&x);
	return r;
}

/* ---- the client --------------------------------------------------------------------------- */

void hc_oci_registry_close(struct hc_oci_registry *reg)
{
	if (!reg)
		return;
	if (reg->multi)
		curl_multi_cleanup(reg->multi);
	if (reg->share)
		curl_share_cleanup(reg->share);
	if (reg->authz)
		explicit_bzero(reg->authz, strlen(reg->authz));
	free(reg->authz);
	explicit_bzero(&reg->creds, sizeof(reg->creds));
	free(reg);
}

/* A non-negative integer from the environment, or def when unset. */
static int env_uint(const char *name, unsigned long def, unsigned long min, unsigned long *ret,
		    struct hc_error *err)
{
	const char *v = getenv(name);
	char *end;

	*ret = def;
	if (!v || !*v)
		return 0;
	errno = 0;
	*ret = strtoul(v, &end, 10);
	if (errno || *end || v[0] == '-' || *ret < min || *ret > 1ul << 40)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "%s='%.40s': not a whole number%s",
				     name, v, min ? " of at least 1" : "");
	return 0;
}

int hc_oci_registry_open(const struct hc_oci_ref *ref, bool insecure, int cancel_fd,
			 struct hc_oci_registry **ret, struct hc_error *err)
{
	struct hc_oci_registry *reg;
	unsigned long rate, window;
	int r;

	if ((r = env_uint("HOTCELL_PULL_MIN_RATE", MIN_RATE_DEFAULT, 0, &rate, err)) < 0 ||
	    (r = env_uint("HOTCELL_PULL_RATE_WINDOW", RATE_WINDOW_DEFAULT, 1, &window, err)) < 0)
		return r;

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return hc_error_setk(err, -EIO, HC_EK_INTERNAL, "libcurl: %s",
				     curl_easy_strerror(curl_init_rc));
	reg = calloc(1, sizeof(*reg));
	if (!reg)
		return hc_error_set(err, -ENOMEM, "out of memory");
	reg->ref = *ref;
	reg->cancel_fd = cancel_fd;
	reg->min_rate = rate;
	reg->rate_window = (unsigned)(window > 86400 ? 86400 : window);
	if (hc_oci_ref_format_name(ref, reg->repo, sizeof(reg->repo)) < 0) {
		hc_oci_registry_close(reg);
		return hc_error_setk(err, -ENAMETOOLONG, HC_EK_USAGE, "reference too long");
	}
	reg->loopback = hc_oci_domain_is_loopback(ref->domain);
	reg->insecure = insecure || hc_oci_registry_insecure_env(ref->domain);
	reg->plain_ok = reg->loopback || reg->insecure;
	/* TLS to a loopback address protects nothing and costs the CA bundle's parse (~60 ms):
	 * plain HTTP first there, HTTPS first everywhere else (ping() falls back). */
	snprintf(reg->base, sizeof(reg->base), "%s://%s", reg->loopback ? "http" : "https",
		 hc_oci_ref_api_host(ref));
	reg->share = curl_share_init();
	reg->multi = curl_multi_init();
	if (!reg->share || !reg->multi) {
		hc_oci_registry_close(reg);
		return hc_error_set(err, -ENOMEM, "libcurl: out of memory");
	}
	/* One connection cache and DNS cache for every request to this registry. */
	curl_share_setopt(reg->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(reg->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(reg->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

	r = hc_oci_auth_find(ref, &reg->creds, err);
	if (r >= 0)
		r = ping(reg, err);
	if (r < 0) {
		hc_oci_registry_close(reg);
		return r;
	}
	hc_debug("%s: API at %s, auth %s%s", reg->repo, reg->base,
		 reg->scheme == HC_OCI_AUTH_BEARER  ? "bearer"
		 : reg->scheme == HC_OCI_AUTH_BASIC ? "basic"
						    : "none",
		 reg->creds.set ? " with credentials" : "");
	*ret = reg;
	return 0;
}

/* distribution 2.8 answers MANIFEST_UNKNOWN for a tag of a repository that does not exist;
 * its tag list says NAME_UNKNOWN then, which tells "unknown image" from "unknown tag". */
static bool repository_unknown(struct hc_oci_registry *reg)
{
	struct xfer x = {.reg = reg,
			 .what = "tags",
			 .body = HC_BUF_INIT(ERRBODY_MAX),
			 .errbody = HC_BUF_INIT(ERRBODY_MAX)};
	struct hc_error e = {0};
	char code[64], msg[64];
	bool unknown = false;

	snprintf(x.url, sizeof(x.url), "%s/v2/%s/tags/list?n=1", reg->base, reg->ref.path);
	if (perform(&x, "application/json", true, &e) == -ENOENT) {
		registry_error(&x, code, sizeof(code), msg, sizeof(msg));
		unknown = strcmp(code, "NAME_UNKNOWN") == 0;
	}
	xfer_free(&x);
	return unknown;
}

int hc_oci_registry_get_manifest(struct hc_oci_registry *reg, const char *reference,
				 char **ret_body, size_t *ret_len, char *ret_type, char *ret_digest,
				 struct hc_error *err)
{
	struct xfer x = {.reg = reg,
			 .body = HC_BUF_INIT(HC_OCI_MANIFEST_MAX),
			 .errbody = HC_BUF_INIT(ERRBODY_MAX)};
	char what[HC_OCI_TAG_MAX + 80], digest[HC_DIGEST_SIZE];
	bool by_digest = hc_startswith(reference, "sha256:");
	int r;

	snprintf(what, sizeof(what), by_digest ? "manifest %s" : "tag '%s'", reference);
	x.what = what;
	snprintf(x.url, sizeof(x.url), "%s/v2/%s/manifests/%s", reg->base, reg->ref.path,
		 reference);
	r = perform(&x, HC_OCI_MANIFEST_ACCEPT, true, err);
	if (r == -ENOENT && !by_digest && repository_unknown(reg))
		r = hc_error_setk(err, -ENOENT, HC_EK_REGISTRY,
				  "%s: unknown image: repository not found", reg->repo);
	if (r < 0)
		goto out;
	r = hc_oci_digest_buf(x.body.data ? x.body.data : "", x.body.len, digest, err);
	if (r < 0)
		goto out;
	if (by_digest && strcmp(digest, reference) != 0) {
		r = hc_error_setk(err, -EBADMSG, HC_EK_REGISTRY,
				  "%s: digest mismatch for manifest %s: the registry sent %s",
				  reg->repo, reference, digest);
		goto out;
	}
	if (!by_digest && x.docker_digest[0] && strcmp(x.docker_digest, digest) != 0) {
		r = hc_error_setk(err, -EBADMSG, HC_EK_REGISTRY,
				  "%s: digest mismatch for the manifest of tag '%s': "
				  "Docker-Content-Digest says %.80s, content is %s",
				  reg->repo, reference, x.docker_digest, digest);
		goto out;
	}
	trim_copy(ret_type, 128, x.content_type, strcspn(x.content_type, ";"));
	memcpy(ret_digest, digest, HC_DIGEST_SIZE);
	if (!x.body.data && (r = hc_buf_reserve(&x.body, 1)) < 0)
		goto out;
	*ret_body = hc_buf_steal(&x.body, ret_len);
	r = 0;
out:
	xfer_free(&x);
	return r;
}

int hc_oci_registry_fetch_blobs(struct hc_oci_registry *reg, struct hc_oci_blob_fetch *jobs,
				size_t n, unsigned parallel, struct hc_error *err)
{
	_cleanup_free_ struct xfer *xs = NULL;
	_cleanup_free_ char *whats = NULL;
	size_t active = 0, done = 0;
	/* indexes waiting to (re)start, in order: a ring, each transfer is in it at most once */
	size_t *queue = NULL;
	size_t qhead = 0, qtail = 0;
	int r = 0;

	if (n == 0)
		return 0;
	if (parallel == 0)
		parallel = 1;
	xs = calloc(n, sizeof(*xs));
	whats = calloc(n, 96);
	queue = calloc(n, sizeof(*queue));
	if (!xs || !whats || !queue) {
		free(queue);
		return hc_error_set(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		xs[i].reg = reg;
		xs[i].job = &jobs[i];
		xs[i].body = (struct hc_buf)HC_BUF_INIT(1);
		xs[i].errbody = (struct hc_buf)HC_BUF_INIT(ERRBODY_MAX);
		snprintf(whats + i * 96, 96, "blob %s", jobs[i].digest);
		xs[i].what = whats + i * 96;
		snprintf(xs[i].url, sizeof(xs[i].url), "%s/v2/%s/blobs/%s", reg->base,
			 reg->ref.path, jobs[i].digest);
		queue[qtail++ % n] = i;
	}

	while (done < n) {
		int running, msgs, timeout = 1000;
		CURLMsg *m;
		double now = hc_clock_ms();

		/* Start what may start: the queue is in order, a delayed entry waits its turn. */
		while (active < parallel && qhead < qtail) {
			struct xfer *x = &xs[queue[qhead % n]];
			if (x->not_before > now) {
				int w = (int)(x->not_before - now) + 1;
				timeout = w < timeout ? w : timeout;
				break;
			}
			qhead++;
			r = xfer_prepare(x, NULL, true, err);
			if (r < 0)
				goto fail;
			if (curl_multi_add_handle(reg->multi, x->h) != CURLM_OK) {
				r = hc_error_set(err, -EIO, "libcurl: cannot add a transfer");
				goto fail;
			}
			active++;
		}
		if (curl_multi_perform(reg->multi, &running) != CURLM_OK) {
			r = hc_error_set(err, -EIO, "libcurl: transfer loop failed");
			goto fail;
		}
		while ((m = curl_multi_info_read(reg->multi, &msgs))) {
			struct xfer *x = NULL;
			enum outcome o;
			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			CURLcode c = m->data.result;
			curl_multi_remove_handle(reg->multi, x->h);
			active--;
			o = judge(x, c, err);
			if (o == FAILED) {
				r = err->code < 0 ? err->code : -EIO;
				goto fail;
			}
			if (o == RETRY) {
				xfer_reset(x);
				queue[qtail++ % n] = (size_t)(x - xs);
				continue;
			}
			xfer_reset(x);
			done++;
		}
		if (done < n && (active > 0 || qhead < qtail)) {
			/* The cancel fd wakes the loop at once; the transfers' progress callbacks
			 * see it too. */
			struct curl_waitfd wf = {.fd = reg->cancel_fd, .events = CURL_WAIT_POLLIN};
			if (curl_multi_poll(reg->multi, &wf, reg->cancel_fd >= 0 ? 1 : 0, timeout,
					    NULL) != CURLM_OK) {
				r = hc_error_set(err, -EIO, "libcurl: poll failed");
				goto fail;
			}
			r = hc_cancel_check(reg->cancel_fd, err);
			if (r < 0)
				goto fail;
		}
	}
	r = 0;
fail:
	for (size_t i = 0; i < n; i++) {
		if (xs[i].h)
			curl_multi_remove_handle(reg->multi, xs[i].h);
		xfer_free(&xs[i]);
	}
	free(queue);
	return r;
}
