/* SPDX-License-Identifier: MIT */
/* The benchmark floor's init: PID 1 that ends the VM at once. A reboot, because a kernel
 * without ACPI cannot power off on q35; QEMU runs with -no-reboot, so a reboot ends it. */
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
	sync();
	reboot(RB_AUTOBOOT);
	return 0;
}
