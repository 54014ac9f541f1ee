# sdiff - build, test and demo.
#
#   make setup     install the build dependencies (Debian/Ubuntu, apt-get)
#   make           build/sdiff (the CLI), build/minimal, build/run_tests
#   make demo      generate out/demo.png with the tiny test model
#   make test      compile checks (clang, C++), then the tests under ASan/UBSan
#   make gpu-test  build/gpu_tests: every CUDA op against the CPU (run it on a
#                  machine with an NVIDIA GPU: ./build/gpu_tests)
#   make bench     build the C programs in tools/ and run the benchmarks
#   make clean
#
# CC, CXX, CLANG, CFLAGS, CPPFLAGS, LDFLAGS can be overridden on the command
# line. Release builds are -O2 without -march=native: sdiff picks its SIMD
# kernels at run time, so one binary runs on every x86-64 machine.
#
# stb: sdiff.h compiles a private, all-static copy of stb_image and
# stb_image_write from the system headers (<stb/stb_image.h>, Debian's
# libstb-dev), so nothing beyond -lm -lpthread is linked. See >>image in
# sdiff.h to share the program's own stb (or Debian's -lstb) instead.

# make's built-in CC is "cc"; the tests and docs assume gcc, so pick it
# unless the user chose a compiler.
ifeq ($(origin CC),default)
CC := gcc
endif
ifeq ($(origin CXX),default)
CXX := g++
endif
CLANG ?= clang
CFLAGS ?= -O2
LDLIBS := -lm -lpthread -ldl

STD := -std=c11
WARN := -Wall -Wextra
TEST_CC ?= gcc
TEST_CFLAGS := -std=c11 -Wall -Wextra -Werror -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer
# UBSan only prints by default and the run would still pass: make the
# first report fail the test run.
TEST_ENV := UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1

# Every header the programs are built from.
HEADERS := sdiff.h $(wildcard sdiff_*.h)
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
GPU_TEST_SRCS := $(sort $(wildcard tests/gpu/test_*.c))
TOOL_SRCS := $(sort $(wildcard tools/*.c))
TOOL_BINS := $(patsubst tools/%.c,build/%,$(TOOL_SRCS))

DEMO_MODEL := tests/fixtures/tiny-sd
DEMO_OUT := out/demo.png
DEMO_PROMPT := a lighthouse on a cliff at dusk, oil painting
DEMO_SEED := 42

SETUP_PACKAGES := gcc clang g++ make libstb-dev

.PHONY: all test gpu-test setup demo bench clean FORCE

all: build/sdiff build/minimal build/run_tests

build:
	@mkdir -p build build/asan

build/sdiff: examples/sdiff.c $(HEADERS) | build
	$(CC) $(STD) $(WARN) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LDLIBS)

build/minimal: examples/minimal.c $(HEADERS) | build
	$(CC) $(STD) $(WARN) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LDLIBS)

# The list of test files, rewritten only when it changes so that an
# unchanged list does not force a rebuild.
build/test_all.inc: FORCE | build
	@printf '#include "../tests/%s"\n' $(notdir $(TEST_SRCS)) > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

build/run_tests: tests/run_tests.c tests/tests.h $(TEST_SRCS) build/test_all.inc $(HEADERS) | build
	$(CC) $(STD) $(WARN) $(CPPFLAGS) $(CFLAGS) -Ibuild $< -o $@ $(LDFLAGS) $(LDLIBS)

# The test build lives apart from the release one, so "make all" and
# "make test" never reuse each other's objects.
build/asan/run_tests: tests/run_tests.c tests/tests.h $(TEST_SRCS) build/test_all.inc $(HEADERS) | build
	$(TEST_CC) $(TEST_CFLAGS) -Ibuild $< -o $@ $(LDLIBS)

# sdiff.h as a user compiles it: clang, with and without stb, warnings as
# errors; then with the CUDA backend (sdiff.h's implementation first).
build/check_clang.o: sdiff.h $(HEADERS) | build
	$(CLANG) -std=c11 -Wall -Wextra -Werror -O1 -x c -DSDIFF_IMPLEMENTATION -c sdiff.h -o $@
	$(CLANG) -std=c11 -Wall -Wextra -Werror -O1 -x c -DSDIFF_IMPLEMENTATION -DSDIFF_NO_STB -c sdiff.h -o build/check_clang_nostb.o
	printf '#define SDIFF_IMPLEMENTATION\n#include "sdiff.h"\n#include "sdiff_cuda.h"\n' | \
	    $(CLANG) -std=c11 -Wall -Wextra -Werror -O1 -x c -I. -c - -o build/check_clang_cuda.o

# ... and as C++, the whole implementation.
build/check_cpp.o: tests/compile_cpp.cpp $(HEADERS) | build
	$(CXX) -Wall -Wextra -Werror -O1 -c $< -o $@

# The GPU tests: no sanitizers (they and the CUDA driver do not mix), -O2,
# no stb (not needed, and GPU machines may lack its headers).
build/gpu_test_all.inc: FORCE | build
	@printf '#include "../tests/gpu/%s"\n' $(notdir $(GPU_TEST_SRCS)) > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

build/gpu_tests: tests/gpu/run_gpu_tests.c tests/tests.h $(GPU_TEST_SRCS) build/gpu_test_all.inc $(HEADERS) | build
	$(CC) $(STD) $(WARN) -Werror -O2 -g -DSDIFF_NO_STB -Ibuild $< -o $@ $(LDLIBS)

gpu-test: build/gpu_tests
	@echo "gpu-test: built build/gpu_tests; run ./build/gpu_tests on a machine with an NVIDIA GPU"

# The compile checks run first, so the test runner's "N passed, M failed"
# is the last line of the output.
test: build/check_clang.o build/check_cpp.o build/asan/run_tests
	$(TEST_ENV) ./build/asan/run_tests

# Installs only what is missing, so a second run needs no network and no
# root. sudo only when not already root.
setup:
	@if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "setup: no apt-get here; install a C compiler, clang, g++, make and the stb headers (stb_image.h, stb_image_write.h under <stb/>) yourself"; \
	    exit 1; \
	fi; \
	missing=""; \
	for p in $(SETUP_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "setup: all build dependencies are installed ($(SETUP_PACKAGES))"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	echo "setup: installing$$missing"; \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing

demo: build/sdiff
	@mkdir -p $(dir $(DEMO_OUT))
	./build/sdiff -m $(DEMO_MODEL) -p "$(DEMO_PROMPT)" --seed $(DEMO_SEED) -o $(DEMO_OUT)
	@echo "demo: wrote $(DEMO_OUT)"
	@echo "demo: $(DEMO_MODEL) is a tiny RANDOM-WEIGHT model for tests, so the image is noise-like texture;"
	@echo "      run a real checkpoint with: ./build/sdiff -m path/to/model -p \"your prompt\" -o out.png"

# The benchmark programs use POSIX clocks, which strict -std=c11 hides.
build/%: tools/%.c $(HEADERS) | build
	$(CC) $(STD) -D_POSIX_C_SOURCE=200809L $(WARN) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LDLIBS)

bench: $(TOOL_BINS)
	@if [ -z "$(TOOL_BINS)" ]; then echo "bench: tools/ has no C programs"; fi
	@for b in $(filter build/bench_%,$(TOOL_BINS)); do echo "== $$b"; ./$$b || exit 1; done

clean:
	rm -rf build out
