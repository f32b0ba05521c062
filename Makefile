# veil build. `make` builds build/veil; `make test` installs what is missing, builds and runs
# every test; `make demo` installs, builds and runs the bundled model. See DEVELOPERS.md.

CC       ?= cc
FUZZ_CC  ?= clang
OPT      ?= -O2
CFLAGS_COMMON = -std=gnu17 -ffp-contract=off -Wall -Wextra -Werror -g -Isrc -Itests -D_GNU_SOURCE -MMD -MP
# libevent (evhttp, with pthreads support) and jansson for the HTTP API layer; libsodium for
# the ledger's signatures and hashes
PKG_LIBS := $(shell pkg-config --libs jansson libevent libevent_pthreads libsodium 2>/dev/null || echo -ljansson -levent_pthreads -levent -lsodium)
LDLIBS   = -lpcre2-8 -lutf8proc $(PKG_LIBS) -lpthread -lm
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# OpenSSL 3: TLS 1.3 and RA-TLS certificates
LDLIBS  += -lssl -lcrypto

SRC      := $(shell find src -name '*.c' -not -path 'src/cuda/*' | sort)
LIB_SRC  := $(filter-out src/cli/%,$(SRC))
CLI_SRC  := $(filter src/cli/%,$(SRC))
TEST_SRC := $(shell find tests -name '*.c' -not -path 'tests/fuzz/*' | sort)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,build/$(1)/%.o,$(2))

# Files named *_avx2.c hold kernels for CPUs with AVX2, FMA and F16C, *_avx512.c for CPUs that
# also have AVX-512 F/BW/VL/DQ and VNNI, chosen at run time (they are only called after a CPU
# check); every other file stays baseline x86-64. Elsewhere the files compile to stubs.
ARCH_FLAGS =
ifneq ($(filter x86_64 i%86,$(shell uname -m)),)
%_avx2.o: ARCH_FLAGS = -mavx2 -mfma -mf16c
%_avx512.o: ARCH_FLAGS = -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni
endif

.PHONY: all test demo deps clean fuzz bench-kernels
# keep intermediate objects (the fuzz objects are made by a chain of pattern rules)
.SECONDARY:
all: build/veil

deps:
	@bash scripts/deps.sh

# `make V=1` shows full command lines.
Q = $(if $(V),,@)

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_COMMON) $(OPT) $(ARCH_FLAGS) $(CFLAGS) -c $< -o $@

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC asan $<")
	$(Q)$(CC) $(CFLAGS_COMMON) -O1 $(SAN) $(ARCH_FLAGS) $(CFLAGS) -c $< -o $@

build/veil: $(call obj,rel,$(CLI_SRC) $(LIB_SRC))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(OPT) -o $@ $^ $(LDLIBS)

build/veil-tests: $(call obj,rel,$(TEST_SRC) $(LIB_SRC))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(OPT) -o $@ $^ $(LDLIBS)

# the binary under ASan+UBSan, for running the e2e tests against it (VEIL_BIN=build/asan/veil)
build/asan/veil: $(call obj,asan,$(CLI_SRC) $(LIB_SRC))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(LDLIBS)

build/asan/veil-tests: $(call obj,asan,$(TEST_SRC) $(LIB_SRC))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(LDLIBS)

# libFuzzer targets: one binary per tests/fuzz/fuzz_NAME.c. The library is compiled once with
# clang's instrumentation (fuzzer-no-link) and shared by every target.
FUZZ_FLAGS = -std=gnu17 -ffp-contract=off -g -O1 -Isrc -D_GNU_SOURCE -fsanitize=address,undefined
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC fuzz $<")
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(ARCH_FLAGS) -MMD -MP -c $< -o $@

build/fuzz/%: tests/fuzz/%.c $(call obj,fuzz/obj,$(LIB_SRC))
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)

fuzz: $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))

# Kernel micro-benchmark (bench/README.md, "Kernels").
build/bench-kernels: $(call obj,rel,bench/kernels.c $(filter src/tensor/% src/base/%,$(LIB_SRC)))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(OPT) -o $@ $^ $(LDLIBS)

bench-kernels: build/bench-kernels

test: deps
	@$(MAKE) --no-print-directory build/veil build/veil-tests build/asan/veil-tests fuzz
	@bash scripts/test.sh

demo: deps
	@$(MAKE) --no-print-directory build/veil
	./build/veil run models/stories260K.gguf -p "Once upon a time" -n 120

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
