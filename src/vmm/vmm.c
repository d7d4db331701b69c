/* SPDX-License-Identifier: MIT */
/*
 * The backend table and the wrappers that guard it (DESIGN.md §3, STYLE.md "Interfaces"):
 * callers never call vm->ops->x directly, so a missing feature is always an -EOPNOTSUPP naming
 * the backend and the feature, never a crash or a silent no-op.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <poll.h>
#include <sys/stat.h>

#include "core/log.h"
#include "vmm/cloud-hypervisor.h"
#include "vmm/firecracker.h"
#include "vmm/libkrun.h"
#include "vmm/qemu.h"
#include "vmm/vmm.h"

/* The order is --backend auto's preference (DESIGN.md §3: libkrun, cloud-hypervisor,
 * firecracker, qemu); each driver adds its table here once its file exists. */
const struct hc_vmm_ops *const hc_vmm_backends[] = {
	&hc_vmm_libkrun_ops,
	&hc_vmm_cloud_hypervisor_ops,
	&hc_vmm_firecracker_ops,
	&hc_vmm_qemu_ops,
};
const size_t hc_vmm_n_backends = HC_ARRAY_SIZE(hc_vmm_backends);

const struct hc_vmm_ops *hc_vmm_find(const char *name)
{
	for (size_t i = 0; i < hc_vmm_n_backends; i++)
		if (hc_streq(hc_vmm_backends[i]->name, name))
			return hc_vmm_backends[i];
	return NULL;
}

/* "/a//b/" -> "/a/b"; false when a component is "." or "..". */
static bool guest_normalize(const char *p, char *out, size_t n)
{
	size_t o = 0;

	while (*p) {
		size_t len;

		p += strspn(p, "/");
		len = strcspn(p, "/");
		if (!len)
			break;
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (o + 1 + len + 1 > n)
			return false;
		out[o++] = '/';
		memcpy(out + o, p, len);
		o += len;
		p += len;
	}
	out[o] = 0;
	return true;
}

/* Why the guest path g cannot take a mount of the user's (NULL: it can); norm gets it
 * normalised. */
static const char *guest_path_why(const char *g, char *norm, size_t n)
{
	/* hotcell-init's own: the kernel's file systems, and /hotcell (result.json). */
	static const char *const reserved[] = {"/dev", "/proc", "/sys", "/hotcell"};

	if (g[0] != '/')
		return "is not an absolute path";
	if (strlen(g) > 1024)
		return "is longer than 1024 bytes";
	if (!guest_normalize(g, norm, n))
		return "has a '.' or '..' component (write the path it means)";
	if (!norm[0])
		return "is the guest's root: it would hide the image (share it below, e.g. /mnt)";
	for (size_t k = 0; k < HC_ARRAY_SIZE(reserved); k++) {
		size_t len = strlen(reserved[k]);

		if (strncmp(norm, reserved[k], len) == 0 && (norm[len] == 0 || norm[len] == '/'))
			return "is under /dev, /proc, /sys or /hotcell, which the guest's kernel "
			       "file systems and hotcell-init own";
	}
	return NULL;
}

int hc_vm_guest_path_check(const char *what, const char *g, struct hc_error *err)
{
	char norm[1100] = "";
	const char *why = guest_path_why(g ? g : "", norm, sizeof(norm));

	if (why)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE, "%s %s: the guest path %s", what,
				     g ? g : "", why);
	return 0;
}

int hc_vm_volumes_check(const struct hc_volume *vols, size_t n, struct hc_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const char *g = vols[i].guest ? vols[i].guest : "";
		char norm[1100] = "", other[1100];
		const char *why = guest_path_why(g, norm, sizeof(norm));

		for (size_t k = 0; !why && k < i; k++)
			if (vols[k].guest && guest_normalize(vols[k].guest, other, sizeof(other)) &&
			    hc_streq(other, norm))
				why = "is given twice";
		if (why)
			return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
					     "volume %s:%s: the guest path %s",
					     vols[i].host ? vols[i].host : "", g, why);
	}
	return 0;
}

bool hc_vm_cancelled(const struct hc_vm_spec *spec)
{
	struct pollfd p = {.fd = hc_vm_cancel_fd(spec), .events = POLLIN};

	return p.fd >= 0 && poll(&p, 1, 0) > 0;
}

int hc_vm_cancel_error(struct hc_error *err)
{
	return hc_error_setk(err, -ECANCELED, "cancelled", "interrupted");
}

static int unsupported(const struct hc_vmm_ops *ops, const char *what, struct hc_error *err)
{
	return hc_error_setk(err, -EOPNOTSUPP, HC_EK_BACKEND, "backend '%s' does not support %s",
			     ops->name, what);
}

/* Every feature the spec asks for must be in the backend's caps: the one place, so drivers
 * only check what caps cannot say. */
static int check_spec(const struct hc_vmm_ops *ops, const struct hc_vm_spec *spec,
		      struct hc_error *err)
{
	if (spec->rootfs_mode == HC_ROOTFS_DIR && !(ops->caps & HC_CAP_ROOTFS_DIR))
		return unsupported(ops, "a directory rootfs (virtio-fs)", err);
	if (spec->rootfs_mode == HC_ROOTFS_BLOCK && !(ops->caps & HC_CAP_ROOTFS_BLOCK))
		return unsupported(ops, "a block-device rootfs", err);
	if (spec->channel == HC_CHANNEL_SERIAL && !(ops->caps & HC_CAP_CHANNEL_SERIAL))
		return unsupported(ops, "the serial agent channel", err);
	if (spec->channel == HC_CHANNEL_VSOCK && !(ops->caps & HC_CAP_CHANNEL_VSOCK))
		return unsupported(ops, "the vsock agent channel", err);
	if (spec->n_volumes && !(ops->caps & HC_CAP_SHARED_DIRS))
		return unsupported(ops, "shared directories (-v)", err);
	if (hc_vm_volumes_check(spec->volumes, spec->n_volumes, err) < 0)
		return err->code;
	if (spec->n_devices && !(ops->caps & HC_CAP_GPU))
		return unsupported(ops, "device passthrough (--device)", err);
	if (spec->accel == HC_ACCEL_TCG && !(ops->caps & HC_CAP_TCG))
		return unsupported(ops, "TCG (running without KVM)", err);
	return 0;
}

int hc_vm_new(struct hc_vm **ret, const struct hc_vmm_ops *ops, const struct hc_vm_spec *spec,
	      struct hc_error *err)
{
	struct hc_vm *vm;
	int r;

	if (!ops)
		return hc_error_setk(err, -EINVAL, HC_EK_BACKEND, "no backend");
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return hc_error_set(err, -ENOMEM, "out of memory");
	vm->ops = ops;
	vm->spec = *spec;
	vm->agent_fd = vm->agent_listen_fd = vm->death_fd = -1;
	r = hc_vm_console_max(&vm->console_max, err);
	if (r < 0) {
		free(vm);
		return r;
	}
	r = hc_path_make_run_dir(vm->run_dir, sizeof(vm->run_dir), err);
	if (r < 0) {
		free(vm);
		return r;
	}
	r = hc_path_fmt(vm->console_log, sizeof(vm->console_log), err, "%s/console.log",
			vm->run_dir);
	if (r < 0) {
		hc_path_rm_rf(vm->run_dir, NULL);
		free(vm);
		return r;
	}
	*ret = vm;
	return 0;
}

int hc_vm_start(struct hc_vm *vm, struct hc_error *err)
{
	int r = check_spec(vm->ops, &vm->spec, err);

	if (r < 0)
		return r;
	if (!vm->ops->start)
		return unsupported(vm->ops, "starting a VM", err);
	r = vm->ops->start(vm, err);
	if (r < 0)
		hc_error_kind(err, HC_EK_VM);
	return r;
}

int hc_vm_check(struct hc_vm *vm, struct hc_error *err)
{
	if (!vm->ops->check)
		return 0;
	return vm->ops->check(vm, err);
}

int hc_vm_pause(struct hc_vm *vm, struct hc_error *err)
{
	if (!(vm->ops->caps & HC_CAP_PAUSE) || !vm->ops->pause)
		return unsupported(vm->ops, "pause", err);
	return vm->ops->pause(vm, err);
}

int hc_vm_resume(struct hc_vm *vm, struct hc_error *err)
{
	if (!(vm->ops->caps & HC_CAP_PAUSE) || !vm->ops->resume)
		return unsupported(vm->ops, "resume", err);
	return vm->ops->resume(vm, err);
}

/* A snapshot cannot hold virtiofsd's state (backends with HC_CAP_SNAPSHOT_NEEDS_BLOCK), nor,
 * on QEMU 7.2, vhost-user-vsock's (HC_CAP_SNAPSHOT_NEEDS_SERIAL): refused with the reason before
 * anything is paused or started. */
static int snapshot_supported(const struct hc_vm *vm, const char *what, struct hc_error *err)
{
	unsigned caps = vm->ops->caps;

	if (!(caps & HC_CAP_SNAPSHOT_NEEDS_BLOCK))
		return 0;
	if (vm->spec.rootfs_mode != HC_ROOTFS_BLOCK)
		return hc_error_setk(
			err, -EOPNOTSUPP, HC_EK_USAGE,
			"backend '%s' %s only with --rootfs-mode block: this VM's "
			"rootfs is a directory over virtio-fs, whose state (virtiofsd's) "
			"is not part of a snapshot",
			vm->ops->name, what);
	if (vm->spec.n_volumes)
		return hc_error_setk(err, -EOPNOTSUPP, HC_EK_USAGE,
				     "backend '%s' %s only without -v: this VM's volumes are "
				     "virtio-fs shares, whose state (virtiofsd's) is not part of a "
				     "snapshot",
				     vm->ops->name, what);
	if ((caps & HC_CAP_SNAPSHOT_NEEDS_SERIAL) && vm->spec.channel != HC_CHANNEL_SERIAL)
		return hc_error_setk(err, -EOPNOTSUPP, HC_EK_USAGE,
				     "backend '%s' %s only with --channel serial: this VM's agent "
				     "channel is vsock, and vhost-user-vsock cannot migrate",
				     vm->ops->name, what);
	return 0;
}

int hc_vm_snapshot_check(const struct hc_vm *vm, struct hc_error *err)
{
	if (!(vm->ops->caps & HC_CAP_SNAPSHOT) || !vm->ops->snapshot)
		return unsupported(vm->ops, "snapshots", err);
	return snapshot_supported(vm, "takes snapshots", err);
}

int hc_vm_snapshot(struct hc_vm *vm, const char *dir, struct hc_error *err)
{
	int r = hc_vm_snapshot_check(vm, err);

	return r < 0 ? r : vm->ops->snapshot(vm, dir, err);
}

int hc_vm_restore(struct hc_vm *vm, const char *dir, struct hc_error *err)
{
	if (!(vm->ops->caps & HC_CAP_RESTORE) || !vm->ops->restore)
		return unsupported(vm->ops, "restore", err);
	if (snapshot_supported(vm, "restores snapshots", err) < 0)
		return err->code;
	/* A restore starts a fresh VMM from the spec: the same feature checks as a start. */
	if (check_spec(vm->ops, &vm->spec, err) < 0)
		return err->code;
	if (vm->restore_paused && !(vm->ops->caps & HC_CAP_RESTORE_PAUSED))
		return unsupported(vm->ops, "a restore left paused (a migration's destination)",
				   err);
	return vm->ops->restore(vm, dir, err);
}

int hc_vm_identity(const struct hc_vmm_ops *ops, char *buf, size_t n, struct hc_error *err)
{
	if (!ops->identity)
		return unsupported(ops, "templates", err);
	return ops->identity(buf, n, err);
}

void hc_vm_free(struct hc_vm *vm)
{
	struct hc_error e = {0};

	if (!vm)
		return;
	if (vm->ops && vm->ops->destroy)
		vm->ops->destroy(vm);
	if (vm->run_dir[0] && hc_path_rm_rf(vm->run_dir, &e) < 0)
		hc_warn("cannot remove %s: %s", vm->run_dir, e.message);
	free(vm);
}

#define CONSOLE_MAX_DEFAULT (4 << 20)
#define CONSOLE_MAX_MIN (64 << 10)
/* Holes are punched in steps of this much, so a busy console costs one fallocate per step. */
#define CONSOLE_TRIM_STEP (256 << 10)

int hc_vm_console_max(off_t *ret, struct hc_error *err)
{
	const char *e = getenv("HOTCELL_CONSOLE_MAX");
	unsigned long long v, mul = 1;
	char *end;

	*ret = CONSOLE_MAX_DEFAULT;
	if (!e || !*e)
		return 0;
	errno = 0;
	v = strtoull(e, &end, 10);
	switch (*end) {
	case 'k':
	case 'K':
		mul = 1ull << 10, end++;
		break;
	case 'm':
	case 'M':
		mul = 1ull << 20, end++;
		break;
	case 'g':
	case 'G':
		mul = 1ull << 30, end++;
		break;
	default:
		break;
	}
	if (errno || end == e || *end || e[0] == '-' || v > (1ull << 40) / mul ||
	    v * mul < CONSOLE_MAX_MIN)
		return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
				     "HOTCELL_CONSOLE_MAX=%s: expected a size of at least 64K "
				     "(bytes, K/M/G suffixes)",
				     e);
	*ret = (off_t)(v * mul);
	return 0;
}

void hc_vm_console_trim(struct hc_vm *vm)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	off_t end;

	if (!vm || !vm->console_log[0] || vm->console_max <= 0)
		return;
	fd = open(vm->console_log, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0)
		return;
	end = st.st_size - vm->console_max;
	end -= end % CONSOLE_TRIM_STEP;
	if (end <= vm->console_trimmed)
		return;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, vm->console_trimmed,
		      end - vm->console_trimmed) < 0) {
		/* A file system without holes: start over instead (the VMM's writes go on at
		 * its own offset, leaving a sparse file or, with O_APPEND, a fresh one). */
		if (errno == EOPNOTSUPP && ftruncate(fd, 0) == 0)
			vm->console_trimmed = 0;
		return;
	}
	vm->console_trimmed = end;
}

/* The console log's last lines (about ten, bounded by the room left in the message), joined
 * with " | ", control characters replaced: the message stays one line. */
void hc_vm_error_add_console(struct hc_vm *vm, struct hc_error *err)
{
	_cleanup_close_ int fd = -1;
	char tmp[2048];
	off_t size;
	ssize_t n;

	if (!vm || !err || !vm->console_log[0])
		return;
	fd = open(vm->console_log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0)
		return;
	off_t from = size > (off_t)sizeof(tmp) - 1 ? size - (off_t)sizeof(tmp) + 1 : 0;
	n = pread(fd, tmp, sizeof(tmp) - 1, from);
	if (n <= 0)
		return;
	tmp[n] = '\0';

	/* Walk back over at most 10 non-empty lines. */
	char *end = tmp + n, *start = tmp;
	int lines = 0;
	for (char *p = end; p > tmp; p--) {
		if (p[-1] == '\n' && p < end && *p != '\n' && *p != '\r') {
			if (++lines == 10) {
				start = p;
				break;
			}
		}
	}
	/* A kernel panic's own line says more than the stack trace after it: start there. */
	char *panic = memmem(tmp, (size_t)n, "Kernel panic - not syncing", 26);
	if (panic) {
		while (panic > tmp && panic[-1] != '\n')
			panic--;
		start = panic;
		/* ...and the ten lines from there, not the whole trace. */
		lines = 0;
		for (char *p = start; p < end; p++) {
			if (*p == '\n' && ++lines == 10) {
				end = p;
				break;
			}
		}
	}
	char out[sizeof(tmp) * 2];
	size_t o = 0;
	bool sep = false;
	for (char *p = start; p < end && o + 4 < sizeof(out); p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\n' || c == '\r') {
			sep = o > 0;
			continue;
		}
		if (sep) {
			memcpy(out + o, " | ", 3);
			o += 3;
			sep = false;
		}
		out[o++] = c < ' ' || c == 0x7f ? ' ' : (char)c;
	}
	out[o] = '\0';
	if (!o)
		return;

	size_t used = strlen(err->message);
	size_t room = sizeof(err->message) - used;
	const char *label = "; console: ";
	if (room <= strlen(label) + 16)
		return;
	room -= strlen(label) + 1;
	if (panic) {
		/* The panic line first. */
		snprintf(err->message + used, sizeof(err->message) - used, "%s%s", label, out);
		return;
	}
	/* Otherwise keep the end of the console: the last line is the one that matters. */
	const char *tail = o > room ? out + o - room + 3 : out;
	snprintf(err->message + used, sizeof(err->message) - used, "%s%s%s", label,
		 o > room ? "..." : "", tail);
}
