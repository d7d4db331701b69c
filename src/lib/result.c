/* SPDX-License-Identifier: MIT */
/*
 * The run result as JSON: exactly the object of DESIGN.md §6, the same for every backend.
 * stdout/stderr are strings when the bytes are valid UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), else base64 (RFC 4648 §4) with *_encoding "base64".
 * `result` is the guest's /hotcell/result.json embedded as parsed JSON.
 */
#include <jansson.h>
#include <math.h>
#include <signal.h>

#include "core/error.h"
#include "lib/result.h"

bool hc_lib_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		unsigned c = *p;
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			p++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			len = 2, cp = c & 0x1f, min = 0x80;
		else if ((c & 0xf0) == 0xe0)
			len = 3, cp = c & 0x0f, min = 0x800;
		else if ((c & 0xf8) == 0xf0)
			len = 4, cp = c & 0x07, min = 0x10000;
		else
			return false;
		if ((size_t)(end - p) < len)
			return false;
		for (size_t i = 1; i < len; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += len;
	}
	return true;
}

char *hc_lib_base64(const void *data, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	size_t out_len = (n + 2) / 3 * 4, o = 0;
	char *out;

	if (n > (SIZE_MAX - 3) / 4 * 3 - 3)
		return NULL;
	out = malloc(out_len + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = left > 1 ? tab[(v >> 6) & 63] : '=';
		out[o++] = left > 2 ? tab[v & 63] : '=';
	}
	out[o] = 0;
	return out;
}

/* A JSON string from bytes we do not control (messages may quote paths or guest text):
 * invalid UTF-8 bytes become U+FFFD rather than failing the whole object. */
static json_t *lossy_string(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	json_t *j;
	char *fixed, *o;

	if (hc_lib_utf8_valid(s ? s : "", n))
		return json_stringn(s ? s : "", n);
	fixed = malloc(n * 3 + 1);
	if (!fixed)
		return NULL;
	o = fixed;
	for (size_t i = 0; i < n;) {
		size_t len = 1;

		while (len <= 4 && i + len <= n && !hc_lib_utf8_valid(s + i, len))
			len++;
		if (len <= 4 && i + len <= n) {
			memcpy(o, s + i, len);
			o += len;
			i += len;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	j = json_stringn(fixed, (size_t)(o - fixed));
	free(fixed);
	return j;
}

const char *hc_lib_signal_name(int sig, char *buf, size_t n)
{
	const char *abbrev = sig > 0 ? sigabbrev_np(sig) : NULL;

	if (abbrev)
		snprintf(buf, n, "SIG%s", abbrev);
	else if (sig >= SIGRTMIN && sig <= SIGRTMAX)
		snprintf(buf, n, "SIGRTMIN+%d", sig - SIGRTMIN);
	else
		snprintf(buf, n, "SIG%d", sig);
	return buf;
}

static int set_new(json_t *obj, const char *key, json_t *value)
{
	if (!value)
		return -ENOMEM;
	return json_object_set_new(obj, key, value) < 0 ? -ENOMEM : 0;
}

static int add_output(json_t *o, const char *name, const char *data, size_t len, bool truncated)
{
	char key[32];
	json_t *v;
	bool utf8 = hc_lib_utf8_valid(data ? data : "", data ? len : 0);
	int r;

	if (!data)
		len = 0;
	if (utf8) {
		v = json_stringn(data ? data : "", len);
	} else {
		char *b64 = hc_lib_base64(data, len);

		v = b64 ? json_string(b64) : NULL;
		free(b64);
	}
	r = set_new(o, name, v);
	snprintf(key, sizeof(key), "%s_encoding", name);
	if (r >= 0)
		r = set_new(o, key, json_string(utf8 ? "utf-8" : "base64"));
	snprintf(key, sizeof(key), "%s_truncated", name);
	if (r >= 0)
		r = set_new(o, key, json_boolean(truncated));
	return r;
}

/* Timings to 0.1 ms: more digits are noise and make the object hard to read. */
static json_t *ms(double v)
{
	if (!isfinite(v) || v < 0 || v > 1e12)
		v = 0;
	/* No libm: v is non-negative and bounded, so truncation after +0.5 rounds. */
	return json_real((double)(long long)(v * 10.0 + 0.5) / 10.0);
}

static json_t *error_object(const struct hc_error *err)
{
	json_t *e = json_object();

	if (!e)
		return NULL;
	if (set_new(e, "kind", json_string(err && err->kind[0] ? err->kind : HC_EK_INTERNAL)) < 0 ||
	    set_new(e, "message",
		    lossy_string(err && err->message[0] ? err->message
							: hc_strerror(err ? err->code : -EIO))) <
		    0) {
		json_decref(e);
		return NULL;
	}
	return e;
}

static char *dump(json_t *o)
{
	char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));

	json_decref(o);
	return s;
}

static json_t *result_object(const struct hc_run_result *r)
{
	char sig[32];
	json_t *o = json_object(), *t = NULL, *res = NULL;
	int e = 0;

	if (!o)
		return NULL;
	e |= set_new(o, "backend", json_string(r->backend));
	e |= set_new(o, "accel", json_string(r->accel));
	e |= set_new(o, "image", r->image ? lossy_string(r->image) : json_null());
	e |= set_new(o, "image_digest",
		     r->image_digest[0] ? json_string(r->image_digest) : json_null());
	e |= set_new(o, "exit_code",
		     r->signal || r->timed_out || r->exit_code < 0 ? json_null()
								   : json_integer(r->exit_code));
	e |= set_new(o, "signal",
		     r->signal ? json_string(hc_lib_signal_name(r->signal, sig, sizeof(sig)))
			       : json_null());
	e |= set_new(o, "timed_out", json_boolean(r->timed_out));
	e |= add_output(o, "stdout", r->stdout_data, r->stdout_len, r->stdout_truncated);
	e |= add_output(o, "stderr", r->stderr_data, r->stderr_len, r->stderr_truncated);
	if (r->result_json) {
		json_error_t jerr;

		/* Validated by hc_run already; a document that no longer parses is reported, not
		 * dropped silently. */
		res = json_loads(r->result_json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		e |= set_new(o, "result", res ? res : json_null());
		if (!res)
			e |= set_new(o, "result_error", lossy_string(jerr.text));
	} else {
		e |= set_new(o, "result", json_null());
	}
	if (r->result_error && !json_object_get(o, "result_error"))
		e |= set_new(o, "result_error", lossy_string(r->result_error));
	t = json_object();
	if (t) {
		e |= set_new(t, "rootfs", ms(r->t_rootfs_ms));
		e |= set_new(t, "boot", ms(r->t_boot_ms));
		e |= set_new(t, "vm_start", ms(r->t_vm_start_ms));
		e |= set_new(t, "guest_boot", ms(r->t_guest_boot_ms));
		e |= set_new(t, "restore", ms(r->t_restore_ms));
		e |= set_new(t, "template", ms(r->t_template_ms));
		if (r->pooled)
			e |= set_new(t, "take", ms(r->t_take_ms));
		e |= set_new(t, "exec", ms(r->t_exec_ms));
		e |= set_new(t, "teardown", ms(r->t_teardown_ms));
		e |= set_new(t, "total", ms(r->t_total_ms));
	}
	e |= set_new(o, "timings_ms", t);
	e |= set_new(o, "jailed", json_boolean(r->jailed));
	e |= set_new(o, "start", json_string(r->pooled ? "pool" : r->warm ? "warm" : "cold"));
	if (e) {
		json_decref(o);
		return NULL;
	}
	return o;
}

HC_EXPORT char *hc_run_result_to_json(const struct hc_run_result *result)
{
	json_t *o;

	if (!result)
		return NULL;
	o = result_object(result);
	return o ? dump(o) : NULL;
}

HC_EXPORT char *hc_run_result_to_json_error(const struct hc_run_result *result,
					    const struct hc_error *err)
{
	json_t *o, *e;

	if (!result)
		return NULL;
	o = result_object(result);
	if (!o)
		return NULL;
	if (err) {
		e = error_object(err);
		if (set_new(o, "error", e) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	return dump(o);
}

HC_EXPORT char *hc_error_to_json(const struct hc_error *err)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (set_new(o, "error", error_object(err)) < 0) {
		json_decref(o);
		return NULL;
	}
	return dump(o);
}
