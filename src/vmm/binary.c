/* SPDX-License-Identifier: MIT */
/* VMM binaries and kernel formats (see binary.h). */
#include <fcntl.h>
#include <sys/stat.h>

#include "core/path.h"
#include "vmm/binary.h"

static bool is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int search_path(const char *name, char *buf, size_t n)
{
	const char *path = getenv("PATH");

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");

		if (len && (size_t)snprintf(buf, n, "%.*s/%s", (int)len, path, name) < n &&
		    is_executable(buf))
			return 0;
		path += len;
		if (*path == ':')
			path++;
	}
	return -ENOENT;
}

int hc_binary_find(const char *env, const char *name, char *buf, size_t n, struct hc_error *err)
{
	const char *v = getenv(env);

	if (v && *v && strchr(v, '/')) {
		if (!is_executable(v))
			return hc_error_setk(err, -ENOENT, HC_EK_BACKEND,
					     "%s=%s is not an executable file", env, v);
		return hc_path_fmt(buf, n, err, "%s", v);
	}
	if (search_path(name, buf, n) < 0)
		return hc_error_setk(err, -ENOENT, HC_EK_BACKEND,
				     "'%s' not found on PATH (install it, or set %s to its path)",
				     name, env);
	return 0;
}

int hc_binary_check_elf_kernel(const char *kernel, const char *vmm, struct hc_error *err)
{
	_cleanup_close_ int fd = open(kernel, O_RDONLY | O_CLOEXEC);
	unsigned char magic[4];

	if (fd < 0)
		return hc_error_errno(err, -errno, "kernel '%s'", kernel);
	if (read(fd, magic, sizeof(magic)) != (ssize_t)sizeof(magic) ||
	    memcmp(magic, "\177ELF", 4) != 0)
		return hc_error_setk(
			err, -ENOEXEC, HC_EK_BACKEND,
			"kernel '%s' is not an ELF vmlinux: %s boots only an "
			"uncompressed ELF vmlinux (such as build/kernel/vmlinux), not a "
			"bzImage",
			kernel, vmm);
	return 0;
}
