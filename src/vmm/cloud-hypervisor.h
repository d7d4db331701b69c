/* SPDX-License-Identifier: MIT */
/* The Cloud Hypervisor backend (cloud-hypervisor.c). */
#pragma once

#include "vmm/vmm.h"

extern const struct hc_vmm_ops hc_vmm_cloud_hypervisor_ops;

/* The VFIO pre-flight check of one --device PCI_ADDRESS (DDDD:BB:DD.F, or BB:DD.F for domain
 * 0): the device exists under <sysfs>/bus/pci/devices, has an IOMMU group, it is bound to
 * vfio-pci and so is every other member of its group (bridges on pcieport and unbound devices
 * are viable too, as the kernel's VFIO rule says). Never rebinds anything. On success, path gets
 * the device's sysfs path, as Cloud Hypervisor's DeviceConfig.path wants it. The sysfs root is
 * /sys, or $HOTCELL_SYSFS_ROOT (for tests only). */
int hc_cloud_hypervisor_vfio_check(const char *addr, char *path, size_t path_len,
				   struct hc_error *err) _must_check_;
