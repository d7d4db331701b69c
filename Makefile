# hotcell — one non-recursive Makefile. Everything goes into $(BUILD)/ (DESIGN.md §7).
#   make              build hotcell, hotcell-init, the initramfs, libhotcell and the guest kernel
#   make check        the whole test suite (unit, fuzz corpus replay, integration, e2e)
#   make check-asan   the suite built with ASan+UBSan
#   make lint         clang-format check, cppcheck
#   make bench        benchmarks (print figures)
#   make install PREFIX=/usr/local

BUILD   ?= build
CC      ?= cc
PREFIX  ?= /usr/local
SAN     ?=
V       ?=

Q := $(if $(V),,@)

WARN := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wwrite-strings -Wswitch-enum -Wno-unused-parameter -Wno-format-nonliteral
# Error messages live in fixed-size buffers and are truncated on purpose (gcc only).
ifeq ($(findstring clang,$(shell $(CC) --version 2>/dev/null)),)
WARN += -Wno-format-truncation
endif
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -fno-strict-aliasing -Iinclude -Isrc $(WARN)
ifneq ($(SAN),)
BASE_CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_LDFLAGS := -fsanitize=address,undefined
endif
CFLAGS_ALL := $(BASE_CFLAGS) $(CFLAGS)
LIB_CFLAGS := $(CFLAGS_ALL) -fPIC -fvisibility=hidden -DHC_BUILDING_LIBRARY
# The guest agent is static and never sanitized (check-asan must still link it).
GUEST_CFLAGS := $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS_ALL))
LIBS := -lcurl -larchive -ljansson -lcrypto -lz -lzstd -lnftables -lmnl -lseccomp -lcap -lpthread -ldl
LDFLAGS_ALL := $(SAN_LDFLAGS) $(LDFLAGS)

LIB_SRCS := $(wildcard src/core/*.c src/proto/*.c src/oci/*.c src/vmm/*.c src/net/*.c \
	src/jail/*.c src/lib/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
# The per-VM supervisor (DESIGN.md §9), its own program: build/bin/hotcell-vmd.
VMD_SRCS := $(wildcard src/vmd/*.c)
# `hotcell serve` (linked into the hotcell command, its unit tests and its fuzz targets).
SERVER_SRCS := $(wildcard src/server/*.c)
SERVER_LIBS := -lmicrohttpd -lwslay
# The OCI runtime (DESIGN.md §14): build/bin/hotcell-runtime; its parsers (all but main.c) are
# linked into its unit tests and fuzz target too.
RUNTIME_SRCS := $(wildcard src/runtime/*.c)
RUNTIME_LIB_SRCS := $(filter-out src/runtime/main.c,$(RUNTIME_SRCS))
# hotcell-init is static and small: it links only the core pieces that never touch libcurl,
# libarchive or jansson.
GUEST_SRCS := $(wildcard src/guest/*.c) src/core/error.c src/core/buf.c src/core/pty.c $(wildcard src/proto/*.c)
UNIT_SRCS := $(wildcard tests/unit/test-*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz-*.c)
TOOL_SRCS := $(wildcard tools/*.c)
# tests/doubles/lib*.c are shared libraries standing in for a VMM library (libkrun):
# $(BUILD)/tests/doubles/lib*.so; every other double is a program.
DOUBLE_SO_SRCS := $(wildcard tests/doubles/lib*.c)
# tests/security/: the jail driver (linked with the library) and the attacker it runs.
# hostile-init.c is not one of them: a static guest PID 1 (tests/security/hostile-agent.sh),
# packed into its own initramfs.
SEC_SRCS := $(filter-out tests/security/hostile-init.c,$(wildcard tests/security/*.c))
SEC_BINS := $(SEC_SRCS:tests/security/%.c=$(BUILD)/tests/security/%)
HOSTILE_INIT := $(BUILD)/tests/security/hostile-init
HOSTILE_INITRAMFS := $(BUILD)/tests/security/hostile-initramfs.cpio
HOSTILE_INIT_OBJS := $(BUILD)/obj-guest/src/proto/proto.o $(BUILD)/obj-guest/src/core/buf.o \
	$(BUILD)/obj-guest/src/core/error.o
DOUBLE_SRCS := $(filter-out $(DOUBLE_SO_SRCS),$(wildcard tests/doubles/*.c))

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
VMD_OBJS := $(VMD_SRCS:%.c=$(BUILD)/obj/%.o)
SERVER_OBJS := $(SERVER_SRCS:%.c=$(BUILD)/obj/%.o)
RUNTIME_OBJS := $(RUNTIME_SRCS:%.c=$(BUILD)/obj/%.o)
RUNTIME_LIB_OBJS := $(RUNTIME_LIB_SRCS:%.c=$(BUILD)/obj/%.o)
GUEST_OBJS := $(GUEST_SRCS:%.c=$(BUILD)/obj-guest/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/tests/fuzz/%)
TOOL_BINS := $(TOOL_SRCS:tools/%.c=$(BUILD)/tools/%)
DOUBLE_BINS := $(DOUBLE_SRCS:tests/doubles/%.c=$(BUILD)/tests/doubles/%)
DOUBLE_SOS := $(DOUBLE_SO_SRCS:tests/doubles/%.c=$(BUILD)/tests/doubles/%.so)

HOTCELL := $(BUILD)/bin/hotcell
VMD := $(BUILD)/bin/hotcell-vmd
RUNTIME := $(BUILD)/bin/hotcell-runtime
INIT := $(BUILD)/bin/hotcell-init
INITRAMFS := $(BUILD)/initramfs.cpio
LIBA := $(BUILD)/lib/libhotcell.a
# The shared library: the versioned file (HC_VERSION of include/hotcell.h), its SONAME
# libhotcell.so.<major> and the libhotcell.so that -lhotcell links against, as symlinks.
VERSION := $(shell sed -n 's/^\#define HC_VERSION "\(.*\)"/\1/p' include/hotcell.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
LIBSO_REAL := $(BUILD)/lib/libhotcell.so.$(VERSION)
LIBSO_SONAME := libhotcell.so.$(SOMAJOR)
LIBSO := $(BUILD)/lib/libhotcell.so
PCFILE := $(BUILD)/lib/pkgconfig/hotcell.pc
# examples/run.c, an embedder of the shared library (public API only); built here against the
# build tree's library (rpath $ORIGIN/../lib), and against an installed one by
# tests/integration/install-embed.sh.
EXAMPLE := $(BUILD)/examples/run

.PHONY: all programs check check-asan lint bench install clean tests kernel fuzz
all: programs kernel
programs: $(HOTCELL) $(VMD) $(RUNTIME) $(INIT) $(INITRAMFS) $(LIBA) $(LIBSO) $(PCFILE) $(EXAMPLE) tests

-include kernel/kernel.mk

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(LIB_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj-guest/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $< (guest)")
	$(Q)$(CC) $(GUEST_CFLAGS) -Os -DHC_GUEST -MMD -MP -c $< -o $@

$(LIBA): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBSO_REAL): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,$(LIBSO_SONAME) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

$(LIBSO): $(LIBSO_REAL)
	$(Q)ln -sfn $(notdir $<) $(dir $@)$(LIBSO_SONAME) && ln -sfn $(LIBSO_SONAME) $@

$(EXAMPLE): examples/run.c include/hotcell.h $(LIBSO)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< -L$(BUILD)/lib -lhotcell -Wl,-rpath,'$$ORIGIN/../lib'

# pkg-config file for the installed library (PREFIX as given to make install); the static
# library's dependencies are Libs.private (pkg-config --static).
$(PCFILE): Makefile include/hotcell.h
	@mkdir -p $(dir $@)
	$(Q)printf '%s\n' 'prefix=$(PREFIX)' 'exec_prefix=$${prefix}' 'libdir=$${exec_prefix}/lib' \
		'includedir=$${prefix}/include' '' 'Name: hotcell' \
		'Description: run a command from an OCI image in a micro-VM' 'Version: $(VERSION)' \
		'Libs: -L$${libdir} -lhotcell' 'Libs.private: $(LIBS)' 'Cflags: -I$${includedir}' >$@

$(HOTCELL): $(CLI_OBJS) $(SERVER_OBJS) $(LIBA)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(CLI_OBJS) $(SERVER_OBJS) $(LIBA) $(LIBS) $(SERVER_LIBS)

$(VMD): $(VMD_OBJS) $(LIBA)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(VMD_OBJS) $(LIBA) $(LIBS)

$(RUNTIME): $(RUNTIME_OBJS) $(LIBA)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(RUNTIME_OBJS) $(LIBA) $(LIBS)

# The guest agent is never sanitized: it runs as PID 1 in the guest, statically linked.
# The executors' handler wrappers are .incbin'ed into hotcell-init (src/guest/executor.c).
$(BUILD)/obj-guest/src/guest/executor.o: $(wildcard src/guest/executor/*)

$(INIT): $(GUEST_OBJS)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  LD      $@ (static)")
	$(Q)$(CC) -static -o $@ $^

$(BUILD)/tools/%: tools/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $< -lz

$(INITRAMFS): $(INIT) $(BUILD)/tools/mkinitramfs
	$(Q)$(BUILD)/tools/mkinitramfs $@ $(INIT)

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIBA) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/unit $(LDFLAGS_ALL) -o $@ $< $(LIBA) $(LIBS)

$(BUILD)/tests/unit/test-server-%: tests/unit/test-server-%.c $(SERVER_OBJS) $(LIBA) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/unit $(LDFLAGS_ALL) -o $@ $< $(SERVER_OBJS) $(LIBA) $(LIBS) $(SERVER_LIBS)

# Fuzz targets: with a plain main (tests/fuzz/replay.c) that replays the corpus, so `make
# check` runs them without libFuzzer. `make fuzz` builds real libFuzzer binaries with clang.
$(BUILD)/tests/fuzz/%: tests/fuzz/%.c tests/fuzz/replay.c $(LIBA)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< tests/fuzz/replay.c $(LIBA) $(LIBS)

$(BUILD)/tests/unit/test-runtime-%: tests/unit/test-runtime-%.c $(RUNTIME_LIB_OBJS) $(LIBA) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/unit $(LDFLAGS_ALL) -o $@ $< $(RUNTIME_LIB_OBJS) $(LIBA) $(LIBS)

$(BUILD)/tests/fuzz/fuzz-runtime-%: tests/fuzz/fuzz-runtime-%.c tests/fuzz/replay.c $(RUNTIME_LIB_OBJS) $(LIBA)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< tests/fuzz/replay.c $(RUNTIME_LIB_OBJS) $(LIBA) $(LIBS)

$(BUILD)/tests/fuzz/fuzz-server-%: tests/fuzz/fuzz-server-%.c tests/fuzz/replay.c $(SERVER_OBJS) $(LIBA)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< tests/fuzz/replay.c $(SERVER_OBJS) $(LIBA) $(LIBS) $(SERVER_LIBS)

# Code the VMM doubles share (tests/doubles/src/: HTTP framing, QEMU and vsock helpers), linked
# into the doubles that use it.
DOUBLE_COMMON := $(wildcard tests/doubles/src/*.c)
VMM_DOUBLES := $(BUILD)/tests/doubles/firecracker-double $(BUILD)/tests/doubles/cloud-hypervisor-double
$(VMM_DOUBLES): DOUBLE_EXTRA = $(DOUBLE_COMMON)
$(VMM_DOUBLES): $(DOUBLE_COMMON) $(wildcard tests/doubles/src/*.h)

$(BUILD)/tests/doubles/%: tests/doubles/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/doubles/src $(LDFLAGS_ALL) -o $@ $< $(DOUBLE_EXTRA) $(LIBA) $(LIBS)

$(BUILD)/tests/doubles/lib%.so: tests/doubles/lib%.c $(LIBA) $(DOUBLE_COMMON) $(wildcard tests/doubles/src/*.h)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) -fPIC -shared -Itests/doubles/src $(LDFLAGS_ALL) -o $@ $< $(DOUBLE_COMMON) $(LIBA) $(LIBS)

$(BUILD)/tests/security/%: tests/security/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(LIBA) $(LIBS)

$(HOSTILE_INIT): tests/security/hostile-init.c $(HOSTILE_INIT_OBJS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(GUEST_CFLAGS) -Os -DHC_GUEST -static -o $@ $^

$(HOSTILE_INITRAMFS): $(HOSTILE_INIT) $(BUILD)/tools/mkinitramfs
	$(Q)$(BUILD)/tools/mkinitramfs $@ $(HOSTILE_INIT)

tests: $(UNIT_BINS) $(FUZZ_BINS) $(DOUBLE_BINS) $(DOUBLE_SOS) $(SEC_BINS) $(HOSTILE_INITRAMFS)

fuzz:
	$(MAKE) BUILD=$(BUILD)/fuzz CC=clang CFLAGS="-fsanitize=fuzzer-no-link,address,undefined" $(BUILD)/fuzz/lib/libhotcell.a \
		$(SERVER_SRCS:%.c=$(BUILD)/fuzz/obj/%.o) $(RUNTIME_LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)
	@for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); extra=; \
		case $$n in fuzz-server-*) extra="$(SERVER_SRCS:%.c=$(BUILD)/fuzz/obj/%.o) $(SERVER_LIBS)";; \
		fuzz-runtime-*) extra="$(RUNTIME_LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)";; esac; \
		clang $(filter-out -Wno-format-truncation,$(BASE_CFLAGS)) -fsanitize=fuzzer,address,undefined -o $(BUILD)/fuzz/$$n $$f \
		$$extra $(BUILD)/fuzz/lib/libhotcell.a $(LIBS) || exit 1; echo "  FUZZ    $(BUILD)/fuzz/$$n"; done

check: programs kernel
	BUILD=$(BUILD) tests/run-tests.sh

# The sanitized tree shares the guest kernel and initramfs of the plain one (neither is
# sanitized): the kernel is found beside the binary, so link it in.
check-asan: kernel
	$(MAKE) BUILD=$(BUILD)/asan SAN=1 programs
	ln -sfn $(abspath $(BUILD)/kernel) $(BUILD)/asan/kernel
	BUILD=$(BUILD)/asan HOTCELL_INITRAMFS=$(abspath $(INITRAMFS)) tests/run-tests.sh

lint:
	clang-format --dry-run --Werror $(LIB_SRCS) $(CLI_SRCS) $(VMD_SRCS) $(SERVER_SRCS) $(RUNTIME_SRCS) \
		$(wildcard src/server/*.h) $(wildcard src/guest/*.c) include/hotcell.h examples/run.c
	cppcheck --quiet --error-exitcode=1 --enable=warning --inline-suppr -Iinclude -Isrc src

bench: programs kernel
	BUILD=$(BUILD) bench/run-all.sh

# The .pc is written for this PREFIX each time (it is the only product that names it).
install: programs kernel
	$(Q)rm -f $(PCFILE) && $(MAKE) --no-print-directory PREFIX=$(PREFIX) $(PCFILE)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
		$(DESTDIR)$(PREFIX)/lib/hotcell $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(HOTCELL) $(RUNTIME) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBSO_REAL) $(DESTDIR)$(PREFIX)/lib/
	ln -sfn $(notdir $(LIBSO_REAL)) $(DESTDIR)$(PREFIX)/lib/$(LIBSO_SONAME)
	ln -sfn $(LIBSO_SONAME) $(DESTDIR)$(PREFIX)/lib/libhotcell.so
	install -m 644 $(PCFILE) $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 644 include/hotcell.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(INIT) $(VMD) $(DESTDIR)$(PREFIX)/lib/hotcell/
	install -m 644 $(INITRAMFS) $(BUILD)/kernel/bzImage $(BUILD)/kernel/vmlinux \
		$(DESTDIR)$(PREFIX)/lib/hotcell/

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/obj-guest -name '*.d' 2>/dev/null)
