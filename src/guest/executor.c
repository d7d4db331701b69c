/* SPDX-License-Identifier: MIT */
/*
 * The handler wrappers of the executors (docs/executors.md): src/guest/executor/python.py and
 * node.js are part of hotcell-init itself (.incbin, so they are never out of step with the
 * host that names them) and are written to /hotcell/runtime/ at boot, read-only, in every
 * guest but a --rootfs-rw one (the user's own directory). They are not in the user's image:
 * an executor's command names /hotcell/runtime/<wrapper>. A few KiB on the overlay's tmpfs.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "guest/guest.h"

/* clang-format off */
__asm__(".section .rodata\n"
	".balign 16\n"
	"hc_guest_wrapper_python:\n"
	".incbin \"src/guest/executor/python.py\"\n"
	"hc_guest_wrapper_python_end:\n"
	".balign 16\n"
	"hc_guest_wrapper_node:\n"
	".incbin \"src/guest/executor/node.js\"\n"
	"hc_guest_wrapper_node_end:\n"
	".previous\n");
/* clang-format on */
extern const char hc_guest_wrapper_python[], hc_guest_wrapper_python_end[];
extern const char hc_guest_wrapper_node[], hc_guest_wrapper_node_end[];

static int write_file(const char *path, const char *p, const char *end)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0444);
	size_t n = (size_t)(end - p);
	int r = 0;

	if (fd < 0)
		return -errno;
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = -errno;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	if (close(fd) < 0 && !r)
		r = -errno;
	return r;
}

int guest_executor_install(void)
{
	int r = guest_mkdir_p(GUEST_RUNTIME_DIR, 0755);

	if (r < 0 ||
	    (r = write_file(GUEST_RUNTIME_DIR "/python.py", hc_guest_wrapper_python,
			    hc_guest_wrapper_python_end)) < 0 ||
	    (r = write_file(GUEST_RUNTIME_DIR "/node.js", hc_guest_wrapper_node,
			    hc_guest_wrapper_node_end)) < 0)
		return r;
	return 0;
}
