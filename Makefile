# veil build. `make` builds build/veil; `make test` installs what is missing, builds and runs
# every test; `make demo` installs, builds and runs the bundled model. See DEVELOPERS.md.

CC       ?= cc
FUZZ_CC  ?= clang
OPT      ?= -O2
CFLAGS_COMMON = -std=gnu17 -ffp-contract=off -Wall -Wextra -Werror -g -Isrc -Itests -D_GNU_SOURCE -MMD -MP
# libevent (evhttp, with pthreads support) and jansson for the HTTP API layer; libsodium for
# the ledger's signatures and hashes and end-to-end sealing; libevent_openssl for RA-TLS
# connections between nodes; SQLite for the ledger's store
PKG_LIBS := $(shell pkg-config --libs jansson libevent libevent_pthreads libevent_openssl libsodium sqlite3 2>/dev/null || echo -ljansson -levent_openssl -levent_pthreads -levent -lsodium -lsqlite3)
LDLIBS   = -lpcre2-8 -lutf8proc $(PKG_LIBS) -lpthread -lm
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# OpenSSL 3: TLS 1.3 and RA-TLS certificates
LDLIBS  += -lssl -lcrypto

SRC      := $(shell find src -name '*.c' -not -name 'cuda_stub.c' | sort)
LIB_SRC  := $(filter-out src/cli/%,$(SRC))
CLI_SRC  := $(filter src/cli/%,$(SRC))
TEST_SRC := $(shell find tests -name '*.c' -not -path 'tests/fuzz/*' | sort)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,build/$(1)/%.o,$(2))

# The CUDA backend (src/cuda, README "GPU"): its .cu files are compiled when nvcc is found, for
# Hopper (sm_90) plus PTX that newer GPUs JIT-compile; `make CUDA=0` leaves it out. Only the
# release binaries link it (nvcc is slow: its objects are built once, in build/cuda); the
# sanitizer and fuzz builds, and builds without nvcc, link src/cuda/cuda_stub.c, which
# answers --device cuda with "veil was built without CUDA".
NVCC      ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
CUDA      ?= $(if $(NVCC),1,0)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCH ?= -gencode arch=compute_90,code=[sm_90,compute_90]
NVCC_FLAGS = -std=c++17 -O3 $(CUDA_ARCH) -Isrc -D_GNU_SOURCE -Xcompiler -Wall,-Wextra,-Werror \
             -Werror all-warnings -MMD -MP
CU_SRC   := $(wildcard src/cuda/*.cu)
STUB_SRC := src/cuda/cuda_stub.c
ifeq ($(CUDA),1)
REL_GPU   = $(patsubst %.cu,build/cuda/%.o,$(CU_SRC))
# the runtime statically (loads nothing until called); cuBLAS is dlopened on first use
# (src/cuda/cuda_blas.cu), found through this run path or the system's
REL_LIBS  = -Wl,-rpath,$(CUDA_HOME)/lib64 $(CUDA_HOME)/lib64/libcudart_static.a -ldl -lrt -lstdc++
else
REL_GPU   = $(call obj,rel,$(STUB_SRC))
REL_LIBS  =
endif

# Files named *_avx2.c hold kernels for CPUs with AVX2, FMA and F16C, *_avx512.c for CPUs that
# also have AVX-512 F/BW/VL/DQ and VNNI, chosen at run time (they are only called after a CPU
# check); every other file stays baseline x86-64. Elsewhere the files compile to stubs.
ARCH_FLAGS =
ifneq ($(filter x86_64 i%86,$(shell uname -m)),)
%_avx2.o: ARCH_FLAGS = -mavx2 -mfma -mf16c
%_avx512.o: ARCH_FLAGS = -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni
endif

.PHONY: all test demo deps clean fuzz bench-kernels bench-attention bench-peak bench-sampler FORCE
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

# GCC warns that passing or returning sampler.c's 64-byte vectors has another ABI without
# AVX-512 (and notes a change of GCC 4.6); its helpers that do are always inlined, so no call
# ever passes one. (#pragma cannot silence the note.)
build/rel/src/model/sampler.o: CFLAGS += -Wno-psabi

# The sanitizer builds set VEIL_NO_CLONES: the sampler's vocabulary passes are then compiled
# once, 4 floats wide, instead of as target_clones 16 wide, so the unit tests run both forms
# (build/rel and build/asan) and no sanitizer meets an ifunc resolver.
build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC asan $<")
	$(Q)$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -DVEIL_NO_CLONES $(ARCH_FLAGS) $(CFLAGS) -c $< -o $@

build/cuda/%.o: %.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $<")
	$(Q)$(NVCC) $(NVCC_FLAGS) -c $< -o $@

# the CUDA setting the release binaries were linked with: they relink when it changes
build/cuda.cfg: FORCE
	@mkdir -p build
	@echo "$(CUDA) $(NVCC)" | cmp -s - $@ || echo "$(CUDA) $(NVCC)" > $@

build/veil: $(call obj,rel,$(CLI_SRC) $(LIB_SRC)) $(REL_GPU) build/cuda.cfg
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(OPT) -o $@ $(filter-out build/cuda.cfg,$^) $(LDLIBS) $(REL_LIBS)

build/veil-tests: $(call obj,rel,$(TEST_SRC) $(LIB_SRC)) $(REL_GPU) build/cuda.cfg
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(OPT) -o $@ $(filter-out build/cuda.cfg,$^) $(LDLIBS) $(REL_LIBS)

# the binary under ASan+UBSan, for running the e2e tests against it (VEIL_BIN=build/asan/veil)
build/asan/veil: $(call obj,asan,$(CLI_SRC) $(LIB_SRC) $(STUB_SRC))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(LDLIBS)

build/asan/veil-tests: $(call obj,asan,$(TEST_SRC) $(LIB_SRC) $(STUB_SRC))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(LDLIBS)

# libFuzzer targets: one binary per tests/fuzz/fuzz_NAME.c. The library is compiled once with
# clang's instrumentation (fuzzer-no-link) and shared by every target.
FUZZ_FLAGS = -std=gnu17 -ffp-contract=off -g -O1 -Isrc -D_GNU_SOURCE -DVEIL_NO_CLONES -fsanitize=address,undefined
FUZZ_OBJ_FLAGS = $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link
# The SIMD kernels are reached by no fuzz target (they fuzz parsers) and take clang minutes under
# ASan+UBSan (attention_avx512.c 113 s, attention_avx2.c 80 s, against 4 s without: half of
# CI's fuzz build): their fuzz objects are plain. The unit tests run them under ASan+UBSan
# (build/asan).
build/fuzz/obj/%_avx2.o build/fuzz/obj/%_avx512.o: FUZZ_OBJ_FLAGS = -std=gnu17 -ffp-contract=off -g -O1 -Isrc -D_GNU_SOURCE
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC fuzz $<")
	$(Q)$(FUZZ_CC) $(FUZZ_OBJ_FLAGS) $(ARCH_FLAGS) -MMD -MP -c $< -o $@

build/fuzz/%: tests/fuzz/%.c $(call obj,fuzz/obj,$(LIB_SRC) $(STUB_SRC))
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)

fuzz: $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))

# Kernel micro-benchmark (bench/README.md, "Kernels").
build/bench-kernels: $(call obj,rel,bench/kernels.c $(filter src/tensor/% src/base/%,$(LIB_SRC)))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(OPT) -o $@ $^ $(LDLIBS)

bench-kernels: build/bench-kernels

# Attention micro-benchmark (bench/README.md, "Decode attention").
build/bench-attention: $(call obj,rel,bench/attention.c src/model/attention.c src/model/attention_avx2.c src/model/attention_avx512.c $(filter src/tensor/% src/base/%,$(LIB_SRC)))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(OPT) -o $@ $^ $(LDLIBS)

bench-attention: build/bench-attention

# One core's arithmetic ceiling (bench/README.md, "Activations in L1 ...").
build/bench-peak: $(call obj,rel,bench/peak.c bench/peak_avx512.c src/tensor/cpu.c src/base/clock.c)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(OPT) -o $@ $^ $(LDLIBS)

bench-peak: build/bench-peak

# What sampling a token costs (bench/README.md, "Sampling").
build/bench-sampler: $(call obj,rel,bench/sampler.c src/model/sampler.c src/base/err.c src/base/rng.c src/base/clock.c)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(OPT) -o $@ $^ $(LDLIBS)

bench-sampler: build/bench-sampler

test: deps
	@$(MAKE) --no-print-directory build/veil build/veil-tests build/asan/veil-tests fuzz build/bench-kernels build/bench-attention build/bench-peak build/bench-sampler
	@bash scripts/test.sh

demo: deps
	@$(MAKE) --no-print-directory build/veil
	./build/veil run models/stories260K.gguf -p "Once upon a time" -n 120

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
