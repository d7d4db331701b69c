/* SPDX-License-Identifier: MIT */
#include "core/error.h"
#include "core/log.h"
#include "lib/backend.h"
#include "lib/paths.h"
#include "vmm/accel.h"

/* DESIGN.md §3: the embedded VMM first, then the lightest separate ones, QEMU last. */
const char *const hc_lib_backend_auto_order[] = {"libkrun", "cloud-hypervisor", "firecracker",
						 "qemu"};
const size_t hc_lib_backend_auto_n = HC_ARRAY_SIZE(hc_lib_backend_auto_order);

static const char *cap_name(unsigned cap)
{
	switch (cap) {
	case HC_CAP_SHARED_DIRS:
		return "shared directories (-v)";
	case HC_CAP_ROOTFS_DIR:
		return "a directory rootfs (--rootfs-mode dir)";
	case HC_CAP_ROOTFS_BLOCK:
		return "a block rootfs (--rootfs-mode block)";
	case HC_CAP_CHANNEL_SERIAL:
		return "a serial agent channel (--channel serial)";
	case HC_CAP_CHANNEL_VSOCK:
		return "a vsock agent channel (--channel vsock)";
	case HC_CAP_NETWORK:
		return "networking (--network inet|full)";
	case HC_CAP_GPU:
		return "device passthrough (--device)";
	default:
		return "a requested feature";
	}
}

static unsigned wanted_caps(const struct hc_run_opts *o)
{
	unsigned caps = 0;

	if (o->n_volumes)
		caps |= HC_CAP_SHARED_DIRS;
	if (o->rootfs_mode == HC_ROOTFS_DIR || o->rootfs_rw)
		caps |= HC_CAP_ROOTFS_DIR;
	else if (o->rootfs_mode == HC_ROOTFS_BLOCK)
		caps |= HC_CAP_ROOTFS_BLOCK;
	if (o->channel == HC_CHANNEL_SERIAL)
		caps |= HC_CAP_CHANNEL_SERIAL;
	else if (o->channel == HC_CHANNEL_VSOCK)
		caps |= HC_CAP_CHANNEL_VSOCK;
	if (o->network != HC_NET_NONE || o->n_ports)
		caps |= HC_CAP_NETWORK;
	if (o->n_devices)
		caps |= HC_CAP_GPU;
	return caps;
}

/* libkrun boots libkrunfw's kernel unless the user names one: the project's is not needed. */
static bool libkrunfw_kernel(const struct hc_vmm_ops *ops, const struct hc_run_opts *o)
{
	const char *e = getenv("HOTCELL_KERNEL");

	return hc_streq(ops->name, "libkrun") && !o->kernel && !(e && *e);
}

/* Everything a spec needs that depends on the backend: kernel format, accelerator, rootfs
 * mode, channel. Then the backend's own probe. */
int hc_lib_backend_prepare(const struct hc_vmm_ops *ops, const struct hc_run_opts *o,
			   struct hc_vm_spec *spec, char *kernel, size_t kernel_n, char *accel_why,
			   size_t why_n, struct hc_error *err)
{
	unsigned want = wanted_caps(o);
	bool tcg_ok = ops->caps & HC_CAP_TCG;
	int r;

	for (unsigned bit = 1; bit && bit <= HC_CAP_TCG; bit <<= 1)
		if ((want & bit) && !(ops->caps & bit))
			return hc_error_setk(err, -EOPNOTSUPP, HC_EK_BACKEND,
					     "backend '%s' does not support %s", ops->name,
					     cap_name(bit));
	if (!tcg_ok && o->accel == HC_ACCEL_TCG)
		return hc_error_setk(err, -EOPNOTSUPP, HC_EK_BACKEND,
				     "backend '%s' runs only under KVM (--accel tcg is QEMU only)",
				     ops->name);
	/* Is the VMM there at all? Said first: "not installed" explains more than the kernel or
	 * accelerator rules that would refuse it next. No version asked: for QEMU it costs a
	 * process on every run (doctor shows it; the VM start logs it from QMP). */
	r = ops->probe(NULL, NULL, 0, err);
	if (r < 0) {
		hc_error_kind(err, HC_EK_BACKEND);
		return r;
	}
	if (libkrunfw_kernel(ops, o)) {
		kernel[0] = 0;
		spec->kernel = NULL;
		spec->kernel_is_user = false;
	} else {
		r = hc_lib_kernel_find(
			o->kernel, hc_streq(ops->name, "qemu") ? HC_KERNEL_BZIMAGE : HC_KERNEL_ELF,
			kernel, kernel_n, &spec->kernel_is_user, err);
		if (r < 0)
			return hc_error_kind(err, HC_EK_BACKEND), r;
		spec->kernel = kernel;
		if (o->n_devices && !spec->kernel_is_user)
			return hc_error_setk(
				err, -EINVAL, HC_EK_USAGE,
				"--device needs --kernel: a kernel with the device's driver (the "
				"project's kernel has none)");
	}
	r = hc_accel_resolve(tcg_ok ? o->accel : HC_ACCEL_KVM, spec->kernel_is_user, tcg_ok,
			     &spec->accel, accel_why, why_n, err);
	if (r < 0) {
		struct hc_error own = {0};

		/* The generic reason speaks of the project's kernel; libkrun's probe names
		 * libkrunfw's, when that is what fails. */
		if (libkrunfw_kernel(ops, o) && ops->probe(spec, NULL, 0, &own) < 0) {
			*err = own;
			return err->code;
		}
		hc_error_prefix(err, "backend '%s'", ops->name);
		hc_error_kind(err, HC_EK_BACKEND);
		return r;
	}
	spec->rootfs_mode = o->rootfs_mode != HC_ROOTFS_AUTO ? o->rootfs_mode
			    : ops->caps & HC_CAP_ROOTFS_DIR  ? HC_ROOTFS_DIR
							     : HC_ROOTFS_BLOCK;
	spec->channel = o->channel != HC_CHANNEL_AUTO	    ? o->channel
			: ops->caps & HC_CAP_CHANNEL_SERIAL ? HC_CHANNEL_SERIAL
							    : HC_CHANNEL_VSOCK;
	r = ops->probe(spec, NULL, 0, err);
	if (r < 0) {
		hc_error_kind(err, HC_EK_BACKEND);
		return r;
	}
	hc_debug("backend %s usable: accel %s (%s)", ops->name, hc_accel_name(spec->accel),
		 accel_why);
	return 0;
}

/* "no usable backend": the reasons of the backends that could have served the request lead;
 * those refused only because they lack a feature the user asked for (-EOPNOTSUPP: --accel tcg,
 * -v, --rootfs-mode ...) are named last, in one clause, since installing them would not help. */
int hc_lib_backend_choose(const struct hc_run_opts *o, struct hc_vm_spec *spec, char *kernel,
			  size_t kernel_n, const struct hc_vmm_ops **ret, struct hc_error *err)
{
	char why[160], reasons[sizeof(err->message)] = "", lacking[128] = "";
	char all_lacking[sizeof(err->message)] = "";
	size_t used = 0, lused = 0, aused = 0;
	int r;

	if (o->backend && *o->backend && !hc_streq(o->backend, "auto")) {
		const struct hc_vmm_ops *ops = hc_vmm_find(o->backend);

		if (!ops)
			return hc_error_setk(err, -EINVAL, HC_EK_USAGE,
					     "unknown backend '%s' (auto, libkrun, firecracker, "
					     "cloud-hypervisor, qemu)",
					     o->backend);
		r = hc_lib_backend_prepare(ops, o, spec, kernel, kernel_n, why, sizeof(why), err);
		if (r < 0)
			return r;
		*ret = ops;
		return 0;
	}
	for (size_t i = 0; i < hc_lib_backend_auto_n; i++) {
		const struct hc_vmm_ops *ops = hc_vmm_find(hc_lib_backend_auto_order[i]);
		struct hc_error e = {0};
		struct hc_vm_spec s = *spec;

		if (!ops)
			continue;
		r = hc_lib_backend_prepare(ops, o, &s, kernel, kernel_n, why, sizeof(why), &e);
		if (r == 0) {
			*spec = s;
			*ret = ops;
			return 0;
		}
		if (r == -EOPNOTSUPP) {
			if (aused < sizeof(all_lacking))
				aused += (size_t)snprintf(all_lacking + aused,
							  sizeof(all_lacking) - aused, "%s%s",
							  aused ? "; " : "", e.message);
			if (lused < sizeof(lacking))
				lused += (size_t)snprintf(lacking + lused, sizeof(lacking) - lused,
							  "%s%s", lused ? ", " : "", ops->name);
		} else if (used < sizeof(reasons)) {
			used += (size_t)snprintf(reasons + used, sizeof(reasons) - used, "%s%s: %s",
						 used ? "; " : "", ops->name, e.message);
		}
	}
	if (!reasons[0] && !lacking[0])
		return hc_error_setk(err, -ENODEV, HC_EK_BACKEND,
				     "no usable backend (none built in)");
	if (!reasons[0])
		return hc_error_setk(err, -ENODEV, HC_EK_BACKEND, "no usable backend: %s",
				     all_lacking);
	return hc_error_setk(err, -ENODEV, HC_EK_BACKEND, "no usable backend: %s%s%s%s", reasons,
			     lacking[0] ? " (" : "", lacking,
			     lacking[0] ? ": do not support what was asked)" : "");
}

void hc_lib_backend_report(const char *name, const struct hc_run_opts *o,
			   struct hc_lib_backend_report *ret)
{
	const struct hc_vmm_ops *ops = hc_vmm_find(name);
	struct hc_vm_spec spec = {.cpus = 1, .memory_mib = 256};
	struct hc_error e = {0};
	char initrd[HC_PATH_MAX];
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!ops) {
		snprintf(ret->why, sizeof(ret->why), "no driver for it in this build of hotcell");
		return;
	}
	ret->built_in = true;
	/* A probe without a spec only looks for the VMM itself. */
	r = ops->probe(NULL, ret->version, sizeof(ret->version), &e);
	if (r < 0) {
		snprintf(ret->why, sizeof(ret->why), "%s", e.message);
		return;
	}
	ret->found = true;
	r = 0;
	if (!libkrunfw_kernel(ops, o))
		r = hc_lib_kernel_find(
			o->kernel, hc_streq(ops->name, "qemu") ? HC_KERNEL_BZIMAGE : HC_KERNEL_ELF,
			ret->kernel, sizeof(ret->kernel), &ret->kernel_is_user, &e);
	if (r < 0) {
		ret->kernel[0] = 0;
		snprintf(ret->why, sizeof(ret->why), "%s", e.message);
		return;
	}
	r = hc_accel_resolve(ops->caps & HC_CAP_TCG ? o->accel : HC_ACCEL_KVM, ret->kernel_is_user,
			     ops->caps & HC_CAP_TCG, &ret->accel, ret->accel_why,
			     sizeof(ret->accel_why), &e);
	if (r < 0) {
		if (libkrunfw_kernel(ops, o))
			(void)ops->probe(&spec, NULL, 0, &e); /* libkrunfw's kernel, not ours */
		snprintf(ret->why, sizeof(ret->why), "%s", e.message);
		return;
	}
	ret->accel_ok = true;
	r = hc_lib_initramfs_find(initrd, sizeof(initrd), &e);
	if (r < 0) {
		snprintf(ret->why, sizeof(ret->why), "%s", e.message);
		return;
	}
	spec.initrd = initrd;
	{
		char kernel[HC_PATH_MAX], why[160];

		r = hc_lib_backend_prepare(ops, o, &spec, kernel, sizeof(kernel), why, sizeof(why),
					   &e);
	}
	if (r < 0) {
		snprintf(ret->why, sizeof(ret->why), "%s", e.message);
		return;
	}
	ret->usable = true;
}
