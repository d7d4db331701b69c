/* SPDX-License-Identifier: MIT */
/* The control-socket protocol between the hc_pvm_* clients and a VM's supervisor (lib/pvm.h,
 * docs/vm.md). The supervisor treats every byte from a client as untrusted. */
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/error.h"
#include "lib/pvm.h"

static uint32_t max_len(uint8_t type)
{
	switch ((enum hc_pvm_ctl_type)type) {
	case HC_CTL_REQUEST:
	case HC_CTL_REPLY:
	case HC_CTL_EVENT:
		return HC_CTL_MAX_JSON;
	case HC_CTL_STDIN:
	case HC_CTL_STDOUT:
	case HC_CTL_STDERR:
		return HC_CTL_MAX_DATA;
	case HC_CTL_SIGNAL:
	case HC_CTL_RESIZE:
		return 4;
	case HC_CTL_STDIN_CLOSE:
	case HC_CTL_CANCEL:
		return 0;
	}
	return 0;
}

int hc_pvm_ctl_parse(const uint8_t *buf, size_t len, struct hc_pvm_ctl_frame *ret, size_t *used)
{
	uint32_t n;
	uint8_t type;

	if (len < HC_CTL_HEADER)
		return 0;
	n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
	type = buf[4];
	if (type < HC_CTL_REQUEST || type > HC_CTL_TYPE_MAX || n > max_len(type))
		return -EBADMSG;
	if ((type == HC_CTL_SIGNAL || type == HC_CTL_RESIZE) && n != 4)
		return -EBADMSG;
	if (len - HC_CTL_HEADER < n)
		return 0;
	if (type == HC_CTL_SIGNAL) {
		const uint8_t *p = buf + HC_CTL_HEADER;
		uint32_t sig =
			(uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];

		if (sig < 1 || sig > 64)
			return -EBADMSG;
	}
	ret->type = type;
	ret->len = n;
	ret->payload = buf + HC_CTL_HEADER;
	*used = HC_CTL_HEADER + n;
	return 1;
}

int hc_pvm_ctl_append(struct hc_buf *out, uint8_t type, const void *p, size_t n)
{
	uint8_t h[HC_CTL_HEADER];
	int r;

	if (n > max_len(type))
		return -E2BIG;
	h[0] = (uint8_t)(n >> 24);
	h[1] = (uint8_t)(n >> 16);
	h[2] = (uint8_t)(n >> 8);
	h[3] = (uint8_t)n;
	h[4] = type;
	r = hc_buf_append(out, h, sizeof(h));
	if (r < 0)
		return r;
	return n ? hc_buf_append(out, p, n) : 0;
}

int hc_pvm_ctl_append_json(struct hc_buf *out, uint8_t type, json_t *obj)
{
	_cleanup_free_ char *s = json_dumps(obj, JSON_COMPACT);

	if (!s)
		return -ENOMEM;
	return hc_pvm_ctl_append(out, type, s, strlen(s));
}

int hc_pvm_ctl_request(const struct hc_pvm_ctl_frame *f, const char *const *ops, json_t **ret,
		       const char **ret_op, struct hc_error *err)
{
	json_error_t je;
	const char *op;
	json_t *req;

	if (f->type != HC_CTL_REQUEST)
		return hc_error_setk(err, -EBADMSG, HC_EK_USAGE, "expected a request frame");
	/* Rejects NUL bytes inside strings too: every string is a C string from here on. */
	req = json_loadb((const char *)f->payload, f->len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(req)) {
		json_decref(req);
		return hc_error_setk(err, -EBADMSG, HC_EK_USAGE, "request: not a JSON object");
	}
	op = json_string_value(json_object_get(req, "op"));
	for (size_t i = 0; op && ops[i]; i++) {
		if (hc_streq(op, ops[i])) {
			*ret = req;
			*ret_op = ops[i];
			return 0;
		}
	}
	json_decref(req);
	if (!op)
		return hc_error_setk(err, -EBADMSG, HC_EK_USAGE, "request: no \"op\"");
	return hc_error_setk(err, -EOPNOTSUPP, HC_EK_USAGE, "request: unknown op");
}

json_t *hc_pvm_ctl_error_json(const struct hc_error *err)
{
	return json_pack("{s:{s:s,s:s,s:i}}", "error", "kind",
			 err->kind[0] ? err->kind : HC_EK_INTERNAL, "message",
			 err->message[0] ? err->message : hc_strerror(err->code), "code",
			 err->code < 0 ? err->code : -EIO);
}

int hc_pvm_ctl_reply_error(const json_t *reply, struct hc_error *err)
{
	const json_t *e = json_object_get(reply, "error");
	json_int_t code;

	if (!e)
		return json_is_true(json_object_get(reply, "ok"))
			       ? 0
			       : hc_error_setk(err, -EPROTO, HC_EK_VM,
					       "the supervisor sent a malformed reply");
	code = json_integer_value(json_object_get(e, "code"));
	if (code >= 0 || code < -4095)
		code = -EIO;
	hc_error_setk(err, (int)code, "vm", "%s",
		      json_string_value(json_object_get(e, "message"))
			      ? json_string_value(json_object_get(e, "message"))
			      : "the supervisor failed");
	if (json_string_value(json_object_get(e, "kind")))
		snprintf(err->kind, sizeof(err->kind), "%s",
			 json_string_value(json_object_get(e, "kind")));
	return (int)code;
}

int hc_pvm_ctl_read(int fd, struct hc_buf *in, struct hc_pvm_ctl_frame *ret, size_t *used,
		    struct hc_error *err)
{
	for (;;) {
		int r = hc_pvm_ctl_parse((const uint8_t *)in->data, in->len, ret, used);
		ssize_t n;

		if (r > 0)
			return 0;
		if (r < 0)
			return hc_error_setk(err, -EPROTO, HC_EK_VM,
					     "malformed frame from the supervisor");
		if (hc_buf_reserve(in, 65536) < 0)
			return hc_error_setk(err, -EPROTO, HC_EK_VM, "frame too large");
		n = read(fd, in->data + in->len, in->cap - in->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return hc_error_errno(err, -errno, "read from the supervisor");
		if (n == 0)
			return hc_error_setk(err, -EPIPE, HC_EK_VM,
					     "the supervisor closed the connection");
		in->len += (size_t)n;
		in->data[in->len] = 0;
	}
}

int hc_pvm_ctl_connect(const char *id, struct hc_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	json_t *rec = NULL;
	const char *path;
	enum hc_pvm_status st;
	int fd, r;

	r = hc_pvm_record_read(id, &rec, err);
	if (r < 0)
		return r;
	st = hc_pvm_record_status(rec);
	path = json_string_value(json_object_get(rec, "control"));
	if (st != HC_PVM_RUNNING && st != HC_PVM_PAUSED) {
		r = hc_error_setk(err, -ESRCH, HC_EK_VM, "VM %.12s is %s", id,
				  hc_pvm_status_name(st));
		goto out;
	}
	if (!path || strlen(path) >= sizeof(sa.sun_path)) {
		r = hc_error_setk(err, -EBADMSG, HC_EK_VM, "VM %.12s has no control socket", id);
		goto out;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = hc_error_errno(err, -errno, "socket");
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = hc_error_errno(err, -errno, "connect to the supervisor of VM %.12s", id);
		close(fd);
		goto out;
	}
	r = fd;
out:
	json_decref(rec);
	return r;
}

static int write_all(int fd, const char *p, size_t n, struct hc_error *err)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return hc_error_errno(err, -errno, "write to the supervisor");
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int hc_pvm_ctl_call(const char *id, json_t *request, json_t **ret_reply, struct hc_error *err)
{
	struct hc_buf out = HC_BUF_INIT(0),
		      in = HC_BUF_INIT(HC_CTL_HEADER + HC_CTL_MAX_JSON + 65536);
	struct hc_pvm_ctl_frame f;
	_cleanup_close_ int fd = -1;
	json_t *reply = NULL;
	size_t used;
	int r;

	fd = hc_pvm_ctl_connect(id, err);
	if (fd < 0) {
		json_decref(request);
		return fd;
	}
	r = hc_pvm_ctl_append_json(&out, HC_CTL_REQUEST, request);
	json_decref(request);
	if (r < 0) {
		r = hc_error_errno(err, r, "encode the request");
		goto out;
	}
	r = write_all(fd, out.data, out.len, err);
	if (r < 0)
		goto out;
	for (;;) {
		r = hc_pvm_ctl_read(fd, &in, &f, &used, err);
		if (r < 0)
			goto out;
		if (f.type == HC_CTL_REPLY)
			break;
		hc_buf_consume(&in, used); /* events of no interest to a plain call */
	}
	reply = json_loadb((const char *)f.payload, f.len, 0, NULL);
	if (!json_is_object(reply)) {
		r = hc_error_setk(err, -EPROTO, HC_EK_VM, "the supervisor sent a malformed reply");
		goto out;
	}
	r = hc_pvm_ctl_reply_error(reply, err);
	if (r == 0 && ret_reply)
		*ret_reply = json_incref(reply);
out:
	json_decref(reply);
	hc_buf_free(&out);
	hc_buf_free(&in);
	return r;
}
