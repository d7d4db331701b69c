/* SPDX-License-Identifier: MIT */
/* Listening unix sockets that hotcell creates and hands over to a VMM or a helper (the API
 * socket of Cloud Hypervisor, virtiofsd's vhost-user socket): bound and listening before the
 * other side starts, so it can connect at once and nobody waits for a path to appear. */
#pragma once

#include "core/error.h"

/* Binds and listens on path (SOCK_CLOEXEC). A stale socket there is replaced, any other file is
 * an error; the path is checked against the sun_path limit. Returns the fd. */
int hc_unixsock_listen(const char *path, int backlog, struct hc_error *err) _must_check_;
