/* SPDX-License-Identifier: MIT */
#include <poll.h>

#include "core/cancel.h"

bool hc_fd_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;

	if (fd < 0)
		return false;
	do
		r = poll(&p, 1, 0);
	while (r < 0 && errno == EINTR);
	return r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL));
}

int hc_cancel_check(int cancel_fd, struct hc_error *err)
{
	if (!hc_fd_readable(cancel_fd))
		return 0;
	return hc_error_setk(err, -ECANCELED, "cancelled", "interrupted");
}
