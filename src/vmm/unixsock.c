/* SPDX-License-Identifier: MIT */
/* Listening unix sockets (see unixsock.h). */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/path.h"
#include "vmm/unixsock.h"

int hc_unixsock_listen(const char *path, int backlog, struct hc_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path))
		return hc_error_set(err, -ENAMETOOLONG, "socket path '%s' is longer than %d bytes",
				    path, HC_SOCK_PATH_MAX);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* Only ever replace a stale socket, never some other file. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return hc_error_set(err, -EEXIST, "'%s' exists and is not a socket", path);
		if (unlink(path) < 0)
			return hc_error_errno(err, -errno, "remove stale socket '%s'", path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return hc_error_errno(err, -errno, "socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return hc_error_errno(err, -errno, "bind '%s'", path);
	if (listen(fd, backlog) < 0) {
		int r = -errno;

		unlink(path);
		return hc_error_errno(err, r, "listen on '%s'", path);
	}
	return hc_steal_fd(&fd);
}
