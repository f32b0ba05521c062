# veil build. `make` builds build/veil; `make test` installs what is missing, builds and runs
# every test; `make demo` installs, builds and runs the bundled model. See DEVELOPERS.md.

CC       ?= cc
FUZZ_CC  ?= clang
OPT      ?= -O2
CFLAGS_COMMON = -std=gnu17 -ffp-contract=off -Wall -Wextra -Werror -g -Isrc -Itests -D_GNU_SOURCE -MMD -MP
LDLIBS   = -lpcre2-8 -lutf8proc -lpthread -lm
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRC      := $(shell find src -name '*.c' -not -path 'src/cuda/*' | sort)
LIB_SRC  := $(filter-out src/cli/%,$(SRC))
CLI_SRC  := $(filter src/cli/%,$(SRC))
TEST_SRC := $(shell find tests -name '*.c' -not -path 'tests/fuzz/*' | sort)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,build/$(1)/%.o,$(2))

# Files named *_avx2.c hold kernels for CPUs with AVX2, FMA and F16C, chosen at run time (they
# are only called after a CPU check); every other file stays baseline x86-64. Elsewhere the
# files compile to stubs.
ARCH_FLAGS =
ifneq ($(filter x86_64 i%86,$(shell uname -m)),)
%_avx2.o: ARCH_FLAGS = -mavx2 -mfma -mf16c
endif

.PHONY: all test demo deps clean fuzz bench-kernels
all: build/veil

deps:
	@bash scripts/deps.sh

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(OPT) $(ARCH_FLAGS) $(CFLAGS) -c $< -o $@

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) $(ARCH_FLAGS) $(CFLAGS) -c $< -o $@

build/veil: $(call obj,rel,$(CLI_SRC) $(LIB_SRC))
	$(CC) $(OPT) -o $@ $^ $(LDLIBS)

build/veil-tests: $(call obj,rel,$(TEST_SRC) $(LIB_SRC))
	$(CC) $(OPT) -o $@ $^ $(LDLIBS)

build/asan/veil-tests: $(call obj,asan,$(TEST_SRC) $(LIB_SRC))
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

# libFuzzer targets: one binary per tests/fuzz/fuzz_NAME.c, linked with the library sources
# (compiled one by one, so that *_avx2.c gets its flags).
FUZZ_CFLAGS = -std=gnu17 -g -O1 -Isrc -D_GNU_SOURCE -MMD -MP -fsanitize=address,undefined

build/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(ARCH_FLAGS) -c $< -o $@

build/fuzz/%: build/fuzzobj/tests/fuzz/%.o $(call obj,fuzzobj,$(LIB_SRC))
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)

# objects of the pattern rule above are kept, not treated as intermediate files
.SECONDARY: $(call obj,fuzzobj,$(LIB_SRC) $(FUZZ_SRC))

fuzz: $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))

# Kernel micro-benchmark (bench/README.md, "Kernels").
build/bench-kernels: $(call obj,rel,bench/kernels.c $(filter src/tensor/% src/base/%,$(LIB_SRC)))
	$(CC) $(OPT) -o $@ $^ $(LDLIBS)

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
