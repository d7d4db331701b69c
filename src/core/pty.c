/* SPDX-License-Identifier: MIT */
/*
 * Pseudo-terminals (core/pty.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/pty.h"

int hc_pty_open(uint16_t rows, uint16_t cols, bool nonblock, int *ret_master, int *ret_slave)
{
	int m, s, unlock = 0;

	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
	if (m < 0)
		return -errno;
	/* TIOCGPTPEER opens the peer by the master, not by a path a chroot may not have. */
	if (ioctl(m, TIOCSPTLCK, &unlock) < 0)
		goto fail;
	s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		goto fail;
	if ((rows || cols) && hc_pty_set_size(m, rows, cols) < 0) {
		int e = errno;

		close(s);
		errno = e;
		goto fail;
	}
	*ret_master = m;
	*ret_slave = s;
	return 0;
fail : {
	int e = errno;

	close(m);
	return -e;
}
}

int hc_pty_child_setup(int slave)
{
	if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
		return -errno;
	for (int fd = 0; fd < 3; fd++)
		if (fd != slave && dup2(slave, fd) < 0)
			return -errno;
	if (slave > 2)
		close(slave);
	else if (fcntl(slave, F_SETFD, 0) < 0)
		return -errno;
	return 0;
}

int hc_pty_set_size(int fd, uint16_t rows, uint16_t cols)
{
	struct winsize ws = {.ws_row = rows, .ws_col = cols};

	return ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

int hc_pty_get_size(int fd, uint16_t *ret_rows, uint16_t *ret_cols)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
		return -errno;
	*ret_rows = ws.ws_row;
	*ret_cols = ws.ws_col;
	return 0;
}

int hc_tty_raw(int fd, struct termios *saved)
{
	struct termios t;

	if (tcgetattr(fd, saved) < 0)
		return -errno;
	t = *saved;
	cfmakeraw(&t);
	return tcsetattr(fd, TCSANOW, &t) < 0 ? -errno : 0;
}

int hc_tty_restore(int fd, const struct termios *saved)
{
	return tcsetattr(fd, TCSANOW, saved) < 0 ? -errno : 0;
}
