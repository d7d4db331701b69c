/* SPDX-License-Identifier: MIT */
/*
 * Both ends of a file transfer (docs/protocol.md, "Files"): a reader that walks a local path
 * and yields the ENTRY / FILE_DATA sequence, and a writer that applies such a sequence to a
 * local destination. The guest uses the writer for FILE_PUT and the reader for FILE_GET, the
 * host (src/lib/agent.c) the other way round, so the rules are the same on both sides.
 *
 * The writer never trusts the sequence: entries below the top are resolved with openat2()
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS from the top directory (a symlink the sequence created
 * is never traversed), files are written under a temporary name in their directory and
 * renamed into place when complete, and a writer freed before a successful end removes
 * everything it created. Errors fill a struct hc_proto_error, ready to be sent: reason
 * HC_ERR_* (HC_EXEC_ERR_INVALID for a malformed sequence), message "<path>: <what>".
 */
#pragma once

#include <sys/types.h>

#include "proto/proto.h"

/* Directories nest at most this deep below the top of a transfer. */
#define HC_TREE_MAX_DEPTH 128

/* The ERROR reason for an errno (ENOENT -> HC_ERR_NOENT, ENOSPC/EDQUOT -> HC_ERR_NOSPC, ...). */
uint32_t hc_tree_reason(int errnum);
/* Fills err with reason hc_tree_reason(errnum) and "<path>: <errno text, lower case>".
 * Returns -errnum. */
int hc_tree_fail(struct hc_proto_error *err, int errnum, const char *path);

struct hc_tree_writer;
/* dest: the exact destination of the top entry (absolute in the guest; any path on the
 * host). Its parent directory must exist. */
int hc_tree_writer_new(const char *dest, struct hc_tree_writer **ret,
		       struct hc_proto_error *err) _must_check_;
/* The next entry: the first is the top (relpath ""), the others lie below a directory top. */
int hc_tree_writer_entry(struct hc_tree_writer *w, const struct hc_proto_entry *e,
			 struct hc_proto_error *err) _must_check_;
/* Content of the current file (never more than its size). */
int hc_tree_writer_data(struct hc_tree_writer *w, const uint8_t *p, size_t n,
			struct hc_proto_error *err) _must_check_;
/* END: checks nothing is missing, applies directory modes. After success, free keeps it. */
int hc_tree_writer_end(struct hc_tree_writer *w, struct hc_proto_error *err) _must_check_;
/* Bytes of file content still expected before the next entry. */
uint64_t hc_tree_writer_pending(const struct hc_tree_writer *w);
/* Removes what was created unless hc_tree_writer_end() succeeded. NULL is fine. */
void hc_tree_writer_free(struct hc_tree_writer *w);

struct hc_tree_reader;
/* src: a regular file, a directory, or a symlink to one of them (the top is followed). */
int hc_tree_reader_new(const char *src, struct hc_tree_reader **ret,
		       struct hc_proto_error *err) _must_check_;
/* 1: the next entry is in *ret (a file's content comes from hc_tree_reader_read() before the
 * next call); 0: no more entries (send END); <0 error. Below the top, symlinks are entries,
 * never followed; sockets, FIFOs and devices are skipped. */
int hc_tree_reader_next(struct hc_tree_reader *r, struct hc_proto_entry *ret,
			struct hc_proto_error *err) _must_check_;
/* Up to n bytes of the current file: > 0 bytes, 0 when the file is complete, < 0 error
 * (a file that shrank while being read is an error). */
ssize_t hc_tree_reader_read(struct hc_tree_reader *r, uint8_t *buf, size_t n,
			    struct hc_proto_error *err) _must_check_;
/* Bytes of the current file still to read. */
uint64_t hc_tree_reader_pending(const struct hc_tree_reader *r);
void hc_tree_reader_free(struct hc_tree_reader *r);
