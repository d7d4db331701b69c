/* SPDX-License-Identifier: MIT */
/* VMM binaries and kernel formats (see binary.h). */
#include <fcntl.h>
#include <sys/stat.h>

#include "core/path.h"
#include "vmm/accel.h"
#include "vmm/binary.h"
#include "vmm/vmm.h"

static bool is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int hc_binary_which(const char *name, char *buf, size_t n)
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

int hc_binary_identity(const char *path, char *buf, size_t n, struct hc_error *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return hc_error_errno(err, -errno, "%s", path);
	if ((size_t)snprintf(buf, n, "%s %lld %lld %llu", path, (long long)st.st_size,
			     (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
			     (unsigned long long)st.st_ino) >= n)
		return hc_error_set(err, -ENAMETOOLONG, "path too long: %s", path);
	return 0;
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
	if (hc_binary_which(name, buf, n) < 0)
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

int hc_binary_version(const char *bin, char **ret, struct hc_error *err)
{
	const char *argv[] = {bin, "--version", NULL};
	_cleanup_free_ char *out = NULL;
	int r;

	r = hc_child_run(argv, 5000, 4096, &out, err);
	if (r < 0)
		return hc_error_prefix(err, "%s --version", bin);
	if (r != 0)
		return hc_error_setk(err, -EIO, HC_EK_BACKEND, "%s --version: exit status %d", bin,
				     r);
	out[strcspn(out, "\n")] = '\0';
	*ret = steal_ptr(&out);
	return 0;
}

int hc_binary_check_host(const struct hc_vm_spec *spec, const char *backend, const char *vmm,
			 struct hc_error *err)
{
	enum hc_accel accel;
	int r;

	r = hc_accel_resolve(HC_ACCEL_KVM, spec->kernel_is_user, false, &accel, NULL, 0, err);
	if (r < 0) {
		size_t n = strlen(err->message);

		snprintf(err->message + n, sizeof(err->message) - n,
			 "; or use --backend qemu, which runs the project's kernel under TCG");
		return hc_error_prefix(err, "backend '%s' cannot run here", backend);
	}
	if (spec->kernel)
		return hc_binary_check_elf_kernel(spec->kernel, vmm, err);
	return 0;
}

bool hc_binary_note_exit(struct hc_child *child, const char *name, struct hc_error *err)
{
	char how[64];
	size_t n;

	if (!strstr(err->message, ": HTTP "))
		(void)hc_child_wait(child, 1000);
	if (!hc_child_poll(child))
		return false;
	hc_child_status_str(child->status, how, sizeof(how));
	n = strlen(err->message);
	snprintf(err->message + n, sizeof(err->message) - n, " (%s %s)", name, how);
	return true;
}
