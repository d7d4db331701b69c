/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "vmm/accel.h"

void hc_accel_host_probe(struct hc_accel_host *host)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	*host = (struct hc_accel_host){0};
	host->pvm = stat("/sys/module/kvm_pvm", &st) == 0;
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(host->kvm_why, sizeof(host->kvm_why), "/dev/kvm: %s", strerror(errno));
		return;
	}
	/* The KVM API is stable at version 12 (Documentation/virt/kvm/api.rst). */
	int v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		snprintf(host->kvm_why, sizeof(host->kvm_why), "/dev/kvm: API version %d, want %d",
			 v, KVM_API_VERSION);
		return;
	}
	host->kvm_usable = true;
}

static void say(char *why, size_t n, const char *s)
{
	if (why && n)
		snprintf(why, n, "%s", s);
}

int hc_accel_decide(enum hc_accel want, const struct hc_accel_host *host, bool kernel_is_user,
		    bool tcg_ok, enum hc_accel *ret, char *why, size_t why_len,
		    struct hc_error *err)
{
	/* The project's kernel is not built for PVM: under a PVM /dev/kvm it hangs in early
	 * boot. A user's kernel may be a PVM guest kernel: trust it. */
	bool kvm_ok = host->kvm_usable && (!host->pvm || kernel_is_user);
	const char *no_kvm =
		!host->kvm_usable
			? host->kvm_why
			: "/dev/kvm is PVM (/sys/module/kvm_pvm), where the project's kernel "
			  "hangs (not built for PVM); use --kernel with a PVM guest kernel";

	switch (want) {
	case HC_ACCEL_KVM:
		if (!kvm_ok)
			return hc_error_setk(err, -ENODEV, HC_EK_BACKEND, "KVM not usable: %s",
					     no_kvm[0] ? no_kvm : "/dev/kvm unusable");
		*ret = HC_ACCEL_KVM;
		say(why, why_len, "kvm: asked for");
		return 0;
	case HC_ACCEL_TCG:
		if (!tcg_ok)
			return hc_error_setk(err, -EOPNOTSUPP, HC_EK_BACKEND,
					     "TCG (emulation) is not available with this backend");
		*ret = HC_ACCEL_TCG;
		say(why, why_len, "tcg: asked for");
		return 0;
	case HC_ACCEL_AUTO:
		break;
	}
	if (kvm_ok) {
		*ret = HC_ACCEL_KVM;
		say(why, why_len,
		    host->pvm ? "kvm: PVM host, trusting the user's kernel"
			      : "kvm: /dev/kvm usable");
		return 0;
	}
	if (!tcg_ok)
		return hc_error_setk(err, -ENODEV, HC_EK_BACKEND, "needs KVM: %s",
				     no_kvm[0] ? no_kvm : "/dev/kvm unusable");
	*ret = HC_ACCEL_TCG;
	if (why && why_len)
		snprintf(why, why_len, "tcg: %s", no_kvm[0] ? no_kvm : "/dev/kvm unusable");
	return 0;
}

int hc_accel_resolve(enum hc_accel want, bool kernel_is_user, bool tcg_ok, enum hc_accel *ret,
		     char *why, size_t why_len, struct hc_error *err)
{
	struct hc_accel_host host;

	hc_accel_host_probe(&host);
	return hc_accel_decide(want, &host, kernel_is_user, tcg_ok, ret, why, why_len, err);
}

const char *hc_accel_name(enum hc_accel accel)
{
	switch (accel) {
	case HC_ACCEL_KVM:
		return "kvm";
	case HC_ACCEL_TCG:
		return "tcg";
	case HC_ACCEL_AUTO:
		break;
	}
	return "auto";
}
