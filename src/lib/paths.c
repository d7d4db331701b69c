/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>

#include "core/path.h"
#include "lib/paths.h"

/* <dir>/.. of path resolved, so messages show build/kernel/bzImage, not build/bin/../kernel. */
static int parent_dir(const char *path, char *buf, size_t n)
{
	char copy[HC_PATH_MAX], parent[HC_PATH_MAX + 4], real[PATH_MAX];

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		return -ENAMETOOLONG;
	snprintf(parent, sizeof(parent), "%s/..", dirname(copy));
	if (!realpath(parent, real))
		return -errno;
	if (snprintf(buf, n, "%s", real) >= (int)n)
		return -ENAMETOOLONG;
	return 0;
}

/* The directory above the running executable: a build tree (build/bin/hotcell) or an
 * installed prefix ($(PREFIX)/bin/hotcell). */
static int exe_dir(char *buf, size_t n)
{
	char exe[HC_PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (len <= 0)
		return -errno;
	exe[len] = 0;
	return parent_dir(exe, buf, n);
}

/* The directory above the object this code was linked into: for libhotcell.so that is where
 * the library is installed ($(PREFIX)/lib/libhotcell.so.0 -> $(PREFIX)) or built
 * (build/lib/libhotcell.so -> build), whatever program embeds it. -ENOENT when the library is
 * linked statically into the executable (glibc's dladdr names the main program by argv[0]
 * only, so exe_dir() covers that case). */
static int lib_dir(char *buf, size_t n)
{
	struct link_map *map = NULL;
	Dl_info info;

	if (dladdr1((void *)lib_dir, &info, (void **)&map, RTLD_DL_LINKMAP) == 0 || !map ||
	    !map->l_name || !map->l_name[0])
		return -ENOENT;
	return parent_dir(map->l_name, buf, n);
}

static bool readable_file(const char *path)
{
	return access(path, R_OK) == 0;
}

/* The roots searched, in order: where the library is (when it is a shared object), then the
 * executable's (the build tree or prefix of hotcell, hotcell-vmd, hotcell-runtime). */
static size_t search_roots(char roots[2][HC_PATH_MAX])
{
	size_t k = 0;

	if (lib_dir(roots[k], HC_PATH_MAX) == 0)
		k++;
	if (exe_dir(roots[k], HC_PATH_MAX) == 0 && (k == 0 || strcmp(roots[0], roots[k]) != 0))
		k++;
	return k;
}

/* Tries <root>/<rel> for each root and candidate; fills buf with the first that exists and
 * appends what was searched to tried. */
static int search(const char *const *rels, size_t n_rels, char *buf, size_t n, char *tried,
		  size_t tried_n)
{
	char roots[2][HC_PATH_MAX], cand[HC_PATH_MAX], real[PATH_MAX];
	size_t used = strlen(tried), n_roots = search_roots(roots);

	if (n_roots == 0)
		return -ENOENT;
	for (size_t d = 0; d < n_roots; d++)
		for (size_t i = 0; i < n_rels; i++) {
			if (snprintf(cand, sizeof(cand), "%s/%s", roots[d], rels[i]) >=
			    (int)sizeof(cand))
				continue;
			if (readable_file(cand)) {
				const char *p = realpath(cand, real) ? real : cand;

				if (snprintf(buf, n, "%s", p) >= (int)n)
					return -ENAMETOOLONG;
				return 0;
			}
			if (used < tried_n)
				used += (size_t)snprintf(tried + used, tried_n - used, "%s%s",
							 used ? ", " : "", cand);
		}
	return -ENOENT;
}

/* A nested build dir (make BUILD=build/asan) shares the one kernel under build/kernel/; only
 * when that is a hotcell kernel build (its KEY stamp, kernel/kernel.mk). */
static bool nested_kernel_build(void)
{
	char roots[2][HC_PATH_MAX], key[HC_PATH_MAX + 32];
	size_t n_roots = search_roots(roots);

	for (size_t d = 0; d < n_roots; d++) {
		snprintf(key, sizeof(key), "%s/../kernel/KEY", roots[d]);
		if (readable_file(key))
			return true;
	}
	return false;
}

bool hc_lib_kernel_is_elf(const char *path)
{
	unsigned char magic[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool elf;

	if (fd < 0)
		return false;
	elf = read(fd, magic, 4) == 4 && memcmp(magic,
						"\x7f"
						"ELF",
						4) == 0;
	close(fd);
	return elf;
}

/* True when path is an x86-64 ELF kernel with a PVH entry point: the Xen ELF note
 * XEN_ELFNOTE_PHYS32_ENTRY (18) that CONFIG_PVH puts in arch/x86/platform/pvh/head.S
 * (include/xen/interface/elfnote.h). QEMU boots such a vmlinux directly (x86 only), without
 * the bzImage's decompressor, which costs ~0.3 s of emulated CPU under TCG. */
static bool is_pvh_vmlinux(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;

	if (fd < 0 || pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
		return false;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 64)
		return false;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		_cleanup_free_ unsigned char *notes = NULL;
		Elf64_Phdr ph;
		size_t off = 0;

		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) !=
		    (ssize_t)sizeof(ph))
			return false;
		if (ph.p_type != PT_NOTE || ph.p_filesz == 0 || ph.p_filesz > 65536)
			continue;
		notes = malloc(ph.p_filesz);
		if (!notes ||
		    pread(fd, notes, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz)
			return false;
		while (off + sizeof(Elf64_Nhdr) <= ph.p_filesz) {
			Elf64_Nhdr nh;
			size_t name = off + sizeof(nh), namesz, descsz;

			memcpy(&nh, notes + off, sizeof(nh));
			namesz = (nh.n_namesz + 3u) & ~3u;
			descsz = (nh.n_descsz + 3u) & ~3u;
			if (namesz > ph.p_filesz - name || descsz > ph.p_filesz - name - namesz)
				break;
			if (nh.n_type == 18 && nh.n_namesz == 4 &&
			    memcmp(notes + name, "Xen", 4) == 0)
				return true;
			off = name + namesz + descsz;
		}
	}
	return false;
}

int hc_lib_kernel_find(const char *user, enum hc_kernel_format fmt, char *buf, size_t n,
		       bool *ret_is_user, struct hc_error *err)
{
	const char *e = getenv("HOTCELL_KERNEL");
	const char *name = fmt == HC_KERNEL_ELF ? "vmlinux" : "bzImage";
	char rel_build[64], rel_nested[64], rel_inst[64], tried[1024] = "";
	const char *rels[3] = {rel_build, rel_inst, rel_nested};
	size_t n_rels;
	int r;

	if (!user && e && *e)
		user = e;
	if (user) {
		if (!readable_file(user))
			return hc_error_errno(err, -errno, "kernel '%s'", user);
		if (ret_is_user)
			*ret_is_user = true;
		return hc_path_fmt(buf, n, err, "%s", user);
	}
	snprintf(rel_build, sizeof(rel_build), "kernel/%s", name);
	snprintf(rel_nested, sizeof(rel_nested), "../kernel/%s", name);
	n_rels = nested_kernel_build() ? 3 : 2;
	snprintf(rel_inst, sizeof(rel_inst), "lib/hotcell/%s", name);
#if defined(__x86_64__)
	/* QEMU: the project's vmlinux when it has a PVH entry, else the bzImage. */
	if (fmt == HC_KERNEL_BZIMAGE) {
		char vml[3][64], pvh[HC_PATH_MAX], ignored[1024] = "";
		const char *vrels[3] = {vml[0], vml[1], vml[2]};

		snprintf(vml[0], sizeof(vml[0]), "kernel/vmlinux");
		snprintf(vml[1], sizeof(vml[1]), "lib/hotcell/vmlinux");
		snprintf(vml[2], sizeof(vml[2]), "../kernel/vmlinux");
		if (search(vrels, n_rels, pvh, sizeof(pvh), ignored, sizeof(ignored)) == 0 &&
		    is_pvh_vmlinux(pvh)) {
			if (ret_is_user)
				*ret_is_user = false;
			return hc_path_fmt(buf, n, err, "%s", pvh);
		}
	}
#endif
	r = search(rels, n_rels, buf, n, tried, sizeof(tried));
	if (r == -ENAMETOOLONG)
		return hc_error_set(err, r, "kernel path too long");
	if (r < 0)
		return hc_error_set(
			err, -ENOENT,
			"no guest kernel (%s) found: build it with `make kernel`, or use "
			"--kernel PATH or HOTCELL_KERNEL (searched %s)",
			name, tried[0] ? tried : "nothing");
	if (ret_is_user)
		*ret_is_user = false;
	return 0;
}

int hc_lib_initramfs_find(char *buf, size_t n, struct hc_error *err)
{
	static const char *const rels[] = {"initramfs.cpio", "lib/hotcell/initramfs.cpio"};
	const char *e = getenv("HOTCELL_INITRAMFS");
	char tried[1024] = "";
	int r;

	if (e && *e) {
		if (!readable_file(e))
			return hc_error_errno(err, -errno, "HOTCELL_INITRAMFS '%s'", e);
		return hc_path_fmt(buf, n, err, "%s", e);
	}
	r = search(rels, HC_ARRAY_SIZE(rels), buf, n, tried, sizeof(tried));
	if (r == -ENAMETOOLONG)
		return hc_error_set(err, r, "initramfs path too long");
	if (r < 0)
		return hc_error_set(
			err, -ENOENT,
			"no initramfs with hotcell-init found: build it with `make`, or set "
			"HOTCELL_INITRAMFS (searched %s)",
			tried[0] ? tried : "nothing");
	return 0;
}

int hc_lib_vmd_find(char *buf, size_t n, struct hc_error *err)
{
	static const char *const rels[] = {"bin/hotcell-vmd", "lib/hotcell/hotcell-vmd"};
	const char *e = getenv("HOTCELL_VMD");
	char tried[1024] = "";
	int r;

	if (e && *e) {
		if (access(e, X_OK) < 0)
			return hc_error_errno(err, -errno, "HOTCELL_VMD '%s'", e);
		return hc_path_fmt(buf, n, err, "%s", e);
	}
	r = search(rels, HC_ARRAY_SIZE(rels), buf, n, tried, sizeof(tried));
	if (r == -ENAMETOOLONG)
		return hc_error_set(err, r, "hotcell-vmd path too long");
	if (r < 0)
		return hc_error_set(err, -ENOENT,
				    "the VM supervisor hotcell-vmd was not found: build it with "
				    "`make`, or set HOTCELL_VMD (searched %s)",
				    tried[0] ? tried : "nothing");
	return 0;
}
