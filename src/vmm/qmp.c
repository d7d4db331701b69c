/* SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <poll.h>
#include <sys/socket.h>

#include "core/clock.h"
#include "core/log.h"
#include "vmm/qmp.h"

/* Latches the events hotcell acts on (QEMU's qapi/run-state.json). */
static void latch_event(struct hc_qmp *q, const char *name, json_t *data)
{
	if (hc_streq(name, "STOP")) {
		q->n_stop++;
	} else if (hc_streq(name, "RESUME")) {
		q->n_resume++;
	} else if (hc_streq(name, "SHUTDOWN")) {
		const char *reason = json_string_value(json_object_get(data, "reason"));

		q->shutdown = true;
		snprintf(q->shutdown_reason, sizeof(q->shutdown_reason), "%s",
			 reason ? reason : "");
	} else if (hc_streq(name, "RESET")) {
		q->reset = true;
	} else if (hc_streq(name, "GUEST_PANICKED")) {
		q->panicked = true;
	} else if (hc_streq(name, "MIGRATION")) {
		const char *st = json_string_value(json_object_get(data, "status"));

		snprintf(q->migration, sizeof(q->migration), "%s", st ? st : "");
	}
}

/* Classifies one parsed message: 1 reply, 0 event/greeting, -EBADMSG otherwise. */
static int classify(struct hc_qmp *q, json_t *msg)
{
	json_t *ev;

	if (!json_is_object(msg))
		return -EBADMSG;
	if (json_object_get(msg, "return") || json_is_object(json_object_get(msg, "error")))
		return 1;
	ev = json_object_get(msg, "event");
	if (json_is_string(ev)) {
		hc_debug("qmp: event %s", json_string_value(ev));
		latch_event(q, json_string_value(ev), json_object_get(msg, "data"));
		return 0;
	}
	if (json_object_get(msg, "QMP"))
		return 0;
	return -EBADMSG;
}

int hc_qmp_handle_line(struct hc_qmp *q, const char *line, size_t len)
{
	json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	int r = msg ? classify(q, msg) : -EBADMSG;

	json_decref(msg);
	return r;
}

/* Reads once (after waiting up to left ms); 0 on timeout, > 0 bytes, -EPIPE on EOF. */
static int fill(struct hc_qmp *q, int left, struct hc_error *err)
{
	struct pollfd p[2] = {{.fd = q->fd, .events = POLLIN},
			      {.fd = q->cancel_fd, .events = POLLIN}};
	char tmp[4096];
	ssize_t n;
	int r;

	if (q->eof)
		return hc_error_set(err, -EPIPE, "QMP connection closed by QEMU");
	r = poll(p, 2, left);
	if (r < 0)
		return errno == EINTR ? 0 : hc_error_errno(err, -errno, "QMP: poll");
	if (p[1].revents)
		return hc_error_setk(err, -ECANCELED, "cancelled", "interrupted");
	if (r == 0 || !p[0].revents)
		return 0;
	n = recv(q->fd, tmp, sizeof(tmp), MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		return hc_error_errno(err, -errno, "QMP: read");
	}
	if (n == 0) {
		q->eof = true;
		return hc_error_set(err, -EPIPE, "QMP connection closed by QEMU");
	}
	r = hc_buf_append(&q->in, tmp, (size_t)n);
	if (r < 0)
		return hc_error_set(err, -E2BIG, "QMP: message longer than %d bytes",
				    HC_QMP_MAX_MESSAGE);
	return (int)n;
}

/* Takes one complete message out of the buffer, if there is one: 1 with *ret set, 0 none. */
static int take(struct hc_qmp *q, json_t **ret, struct hc_error *err)
{
	char *nl = q->in.len ? memchr(q->in.data, '\n', q->in.len) : NULL;
	json_error_t je;

	if (!nl)
		return 0;
	size_t len = (size_t)(nl - q->in.data);
	json_t *msg = json_loadb(q->in.data, len, JSON_REJECT_DUPLICATES, &je);
	hc_buf_consume(&q->in, len + 1);
	if (!msg || !json_is_object(msg)) {
		json_decref(msg);
		return hc_error_set(err, -EBADMSG, "QMP: malformed message: %s",
				    msg ? "not an object" : je.text);
	}
	*ret = msg;
	return 1;
}

/* Waits for the next message until deadline. -ETIMEDOUT when none came. */
static int next_message(struct hc_qmp *q, double deadline, json_t **ret, struct hc_error *err)
{
	for (;;) {
		int r = take(q, ret, err);

		if (r != 0)
			return r < 0 ? r : 0;
		int left = hc_clock_left_ms(deadline);
		if (left == 0)
			return hc_error_set(err, -ETIMEDOUT, "QMP: no answer from QEMU");
		r = fill(q, left, err);
		if (r < 0)
			return r;
	}
}

static int send_all(struct hc_qmp *q, const char *s, size_t len, struct hc_error *err)
{
	while (len > 0) {
		ssize_t n = send(q->fd, s, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return hc_error_errno(err, -errno, "QMP: write");
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Waits for the reply to the command tagged id, latching events on the way. */
static int wait_reply(struct hc_qmp *q, const char *command, json_int_t id, double deadline,
		      char **ret_return, struct hc_error *err)
{
	for (;;) {
		json_t *msg = NULL;
		int r = next_message(q, deadline, &msg, err);

		if (r < 0)
			return hc_error_prefix(err, "%s", command);
		r = classify(q, msg);
		json_t *jid = json_object_get(msg, "id");
		if (r != 1 || !json_is_integer(jid) || json_integer_value(jid) != id) {
			/* An event, or the late reply to a command sent with hc_qmp_send. */
			json_decref(msg);
			continue;
		}
		json_t *e = json_object_get(msg, "error");
		if (e) {
			const char *cls = json_string_value(json_object_get(e, "class"));
			const char *desc = json_string_value(json_object_get(e, "desc"));

			hc_error_set(err, -EIO, "QMP %s: %s: %s", command, cls ? cls : "error",
				     desc ? desc : "");
			json_decref(msg);
			return -EIO;
		}
		if (ret_return) {
			*ret_return = json_dumps(json_object_get(msg, "return"),
						 JSON_COMPACT | JSON_ENCODE_ANY);
			if (!*ret_return) {
				json_decref(msg);
				return hc_error_set(err, -ENOMEM, "QMP %s: out of memory", command);
			}
		}
		json_decref(msg);
		return 0;
	}
}

static json_int_t next_id(void)
{
	static json_int_t id;

	return __atomic_add_fetch(&id, 1, __ATOMIC_RELAXED);
}

static int send_command(struct hc_qmp *q, const char *command, const char *args_json, json_int_t id,
			struct hc_error *err)
{
	json_t *args = NULL, *msg;
	char *text;
	int r;

	if (args_json) {
		json_error_t je;

		args = json_loads(args_json, 0, &je);
		if (!json_is_object(args)) {
			json_decref(args);
			return hc_error_set(err, -EINVAL, "QMP %s: bad arguments", command);
		}
	}
	msg = json_pack("{s:s, s:I}", "execute", command, "id", id);
	if (!msg) {
		json_decref(args);
		return hc_error_set(err, -ENOMEM, "QMP %s: out of memory", command);
	}
	if (args)
		json_object_set_new(msg, "arguments", args);
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!text)
		return hc_error_set(err, -ENOMEM, "QMP %s: out of memory", command);
	r = send_all(q, text, strlen(text), err);
	if (r == 0)
		r = send_all(q, "\n", 1, err);
	free(text);
	return r < 0 ? hc_error_prefix(err, "%s", command) : 0;
}

int hc_qmp_execute(struct hc_qmp *q, const char *command, const char *args_json, int timeout_ms,
		   char **ret_return, struct hc_error *err)
{
	double deadline = timeout_ms < 0 ? -1 : hc_clock_ms() + timeout_ms;
	json_int_t id = next_id();
	int r;

	if (q->fd < 0)
		return hc_error_set(err, -EBADF, "QMP %s: not connected", command);
	r = send_command(q, command, args_json, id, err);
	if (r < 0)
		return r;
	return wait_reply(q, command, id, deadline, ret_return, err);
}

int hc_qmp_send(struct hc_qmp *q, const char *command, struct hc_error *err)
{
	if (q->fd < 0)
		return hc_error_set(err, -EBADF, "QMP %s: not connected", command);
	return send_command(q, command, NULL, next_id(), err);
}

int hc_qmp_open(struct hc_qmp *q, int fd, int timeout_ms, struct hc_error *err)
{
	double deadline = timeout_ms < 0 ? -1 : hc_clock_ms() + timeout_ms;
	json_t *greeting = NULL;
	int r;

	q->fd = fd;
	r = next_message(q, deadline, &greeting, err);
	if (r < 0)
		return hc_error_prefix(err, "QMP greeting");
	json_t *v = json_object_get(json_object_get(greeting, "QMP"), "version");
	if (!json_is_object(v)) {
		json_decref(greeting);
		return hc_error_set(err, -EPROTO, "QMP: the first message is not a greeting");
	}
	json_t *qv = json_object_get(v, "qemu");
	snprintf(q->version, sizeof(q->version), "%lld.%lld.%lld",
		 (long long)json_integer_value(json_object_get(qv, "major")),
		 (long long)json_integer_value(json_object_get(qv, "minor")),
		 (long long)json_integer_value(json_object_get(qv, "micro")));
	json_decref(greeting);
	/* Capabilities negotiation mode accepts only qmp_capabilities (qmp-spec.txt 4). */
	json_int_t id = next_id();
	r = send_command(q, "qmp_capabilities", NULL, id, err);
	if (r < 0)
		return r;
	return wait_reply(q, "qmp_capabilities", id, deadline, NULL, err);
}

int hc_qmp_drain(struct hc_qmp *q, struct hc_error *err)
{
	int handled = 0;

	if (q->fd < 0)
		return hc_error_set(err, -EBADF, "QMP: not connected");
	for (;;) {
		json_t *msg = NULL;
		int r = take(q, &msg, err);

		if (r < 0)
			return r;
		if (r == 1) {
			classify(q, msg); /* a stray reply (to a sent-only command) is dropped */
			json_decref(msg);
			handled++;
			continue;
		}
		r = fill(q, 0, err);
		if (r < 0)
			return r;
		if (r == 0)
			return handled;
	}
}

int hc_qmp_query_status(struct hc_qmp *q, int timeout_ms, char *status, size_t n,
			struct hc_error *err)
{
	_cleanup_free_ char *ret = NULL;
	int r = hc_qmp_execute(q, "query-status", NULL, timeout_ms, &ret, err);

	if (r < 0)
		return r;
	json_t *o = json_loads(ret, 0, NULL);
	const char *s = json_string_value(json_object_get(o, "status"));
	if (!s) {
		json_decref(o);
		return hc_error_set(err, -EPROTO, "QMP query-status: no status in the reply");
	}
	snprintf(status, n, "%s", s);
	json_decref(o);
	return 0;
}

int hc_qmp_wait(struct hc_qmp *q, int timeout_ms, bool (*done)(const struct hc_qmp *q, void *arg),
		void *arg, struct hc_error *err)
{
	double deadline = timeout_ms < 0 ? -1 : hc_clock_ms() + timeout_ms;

	while (!done(q, arg)) {
		json_t *msg = NULL;
		int r = next_message(q, deadline, &msg, err);

		if (r < 0)
			return r;
		classify(q, msg);
		json_decref(msg);
	}
	return 0;
}

void hc_qmp_close(struct hc_qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	hc_buf_free(&q->in);
}
