/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the frame parser and every payload decoder (docs/protocol.md): the input is
 * a byte stream as either end would receive it. Whatever decodes must re-encode to the same
 * bytes (the encoding is canonical), so a decoder that accepts more than the encoder would
 * write is caught too.
 */
#include <stdint.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(const struct hc_buf *b, const struct hc_proto_frame *f)
{
	if (b->len != HC_PROTO_HEADER_SIZE + f->len ||
	    memcmp(b->data + HC_PROTO_HEADER_SIZE, f->payload, f->len) != 0 ||
	    memcmp(b->data, f->payload - HC_PROTO_HEADER_SIZE, HC_PROTO_HEADER_SIZE) != 0)
		__builtin_trap();
}

static void one(const struct hc_proto_frame *f)
{
	struct hc_buf b = HC_BUF_INIT(0);

	switch ((enum hc_proto_type)f->type) {
	case HC_FRAME_HELLO: {
		struct hc_proto_hello h;
		if (hc_proto_hello_decode(f, &h) == 0) {
			if (hc_proto_hello_encode(&b, &h) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_EXEC: {
		struct hc_proto_exec e;
		if (hc_proto_exec_decode(f, &e) == 0) {
			if (hc_proto_exec_encode(&b, f->stream, &e) < 0)
				__builtin_trap();
			check_same(&b, f);
			hc_proto_exec_free(&e);
		}
		break;
	}
	case HC_FRAME_EXIT: {
		struct hc_proto_exit x;
		if (hc_proto_exit_decode(f, &x) == 0) {
			if (hc_proto_exit_encode(&b, f->stream, &x) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_ERROR: {
		struct hc_proto_error e;
		if (hc_proto_error_decode(f, &e) == 0) {
			if (hc_proto_error_encode(&b, f->stream, &e) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_SIGNAL: {
		int32_t sig;
		if (hc_proto_signal_decode(f, &sig) == 0) {
			if (hc_proto_signal_encode(&b, f->stream, sig) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_RESULT: {
		struct hc_proto_result r;
		if (hc_proto_result_decode(f, &r) == 0) {
			if (hc_proto_result_encode(&b, f->stream, &r) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_STARTED: {
		uint32_t pid;
		if (hc_proto_started_decode(f, &pid) == 0) {
			if (hc_proto_started_encode(&b, f->stream, pid) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_WINDOW: {
		uint32_t n;
		if (hc_proto_window_decode(f, &n) == 0) {
			if (hc_proto_window_encode(&b, f->stream, n) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_RESIZE: {
		uint16_t rows, cols;
		if (hc_proto_resize_decode(f, &rows, &cols) == 0) {
			if (hc_proto_resize_encode(&b, f->stream, rows, cols) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_FILE_PUT: {
		static struct hc_proto_file_req q;
		if (hc_proto_put_decode(f, &q) == 0) {
			if (hc_proto_put_encode(&b, f->stream, &q) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_FILE_GET: {
		static struct hc_proto_file_req q;
		if (hc_proto_get_decode(f, &q) == 0) {
			if (hc_proto_get_encode(&b, f->stream, q.path) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_ENTRY: {
		static struct hc_proto_entry e;
		if (hc_proto_entry_decode(f, &e) == 0) {
			if (hc_proto_entry_encode(&b, f->stream, &e) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_RESEED: {
		struct hc_proto_reseed q;
		if (hc_proto_reseed_decode(f, &q) == 0) {
			if (hc_proto_reseed_encode(&b, &q) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_HOSTNAME: {
		char name[HC_PROTO_HOSTNAME_MAX + 1];
		if (hc_proto_hostname_decode(f, name) == 0) {
			if (hc_proto_hostname_encode(&b, name) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_NETCONF: {
		struct hc_proto_netconf n;
		if (hc_proto_netconf_decode(f, &n) == 0) {
			if (hc_proto_netconf_encode(&b, &n) < 0)
				__builtin_trap();
			check_same(&b, f);
		}
		break;
	}
	case HC_FRAME_STDIN:
	case HC_FRAME_STDOUT:
	case HC_FRAME_STDERR:
	case HC_FRAME_STDIN_CLOSE:
	case HC_FRAME_SHUTDOWN:
	case HC_FRAME_CANCEL:
	case HC_FRAME_FILE_DATA:
	case HC_FRAME_END:
	case HC_FRAME_DONE:
		if (hc_proto_frame_append(&b, f->type, f->stream, f->payload, f->len) < 0)
			__builtin_trap();
		check_same(&b, f);
		break;
	}
	hc_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hc_proto_frame f;
	size_t used;

	/* A stream of frames, parsed as the guest and the host do, until it is short or bad. */
	while (hc_proto_frame_parse(data, size, &f, &used) == 1) {
		if (used > size)
			__builtin_trap();
		one(&f);
		data += used;
		size -= used;
	}
	return 0;
}
