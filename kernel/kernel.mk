# Guest kernel (make fragment; included by the top-level Makefile).
#
#   make kernel      -> $(BUILD)/kernel/{bzImage,vmlinux,config,KEY}   (BUILD defaults to build)
#
# kernel/build.sh decides freshness itself (its cache is keyed by the config fragment,
# build.sh and the installed linux-source-6.1 version, and lives outside the checkout in
# $(HOTCELL_KERNEL_CACHE), default /var/cache/hotcell/kernel), so the target is always run;
# it does nothing when build/kernel already holds the current key, and only copies files
# on a cache hit. A miss builds the kernel: minutes.
#
# Files that depend on the kernel should depend on $(KERNEL_STAMP): it only changes when
# the key does, so an up-to-date kernel never triggers downstream rebuilds.

KERNEL_DIR     ?= $(or $(BUILD),build)/kernel
KERNEL_BZIMAGE := $(KERNEL_DIR)/bzImage
KERNEL_VMLINUX := $(KERNEL_DIR)/vmlinux
KERNEL_STAMP   := $(KERNEL_DIR)/KEY

.PHONY: kernel kernel-clean
kernel:
	@kernel/build.sh $(KERNEL_DIR)

# The files are products of the (phony) kernel target.
$(KERNEL_BZIMAGE) $(KERNEL_VMLINUX) $(KERNEL_STAMP): kernel ;

# Removes only the copies under build/; the shared cache is left alone
# (rm -rf $${HOTCELL_KERNEL_CACHE:-/var/cache/hotcell/kernel} to drop it).
kernel-clean:
	rm -rf $(KERNEL_DIR)
