# trove's front door. `make` builds everything into build/ (executable: build/trove),
# `make demo` runs the demo, `make test` runs the whole test suite. Each target installs missing
# Debian/Ubuntu packages first (scripts/install-deps.sh) and configures CMake when needed.

BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps configure build test demo bench load fuzz format clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)

configure: $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)
	@echo "--- GPU tests (label gpu) are skipped when no CUDA device is usable; this machine:"
	@$(BUILD)/trove devices | sed 's/^/    /'

demo: build
	@scripts/demo.sh $(BUILD)/trove

bench: build
	$(BUILD)/bench/bench_kernels --benchmark_counters_tabular=true

# Load harness: the pipeline under open-loop synthetic load, a rate sweep to the max sustainable
# rate (p99 <= 250 ms), the absl baseline, results.json/.md and plots (README, "Load harness").
LOAD_OUT ?= bench/results
LOAD_ARGS ?= --sweep --duration 10s
load: build
	$(BUILD)/trove bench $(LOAD_ARGS) --out $(LOAD_OUT)

# libFuzzer targets (tests/fuzz, README "Fuzzing"): a separate clang build in build-fuzz/, each
# target run for FUZZ_TIME seconds; prints executions, coverage and crashes per target.
FUZZ_TIME ?= 60
fuzz:
	FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run.sh

format:
	clang-format -i $$(git ls-files '*.hpp' '*.cpp' '*.cu' '*.cuh')

clean:
	rm -rf $(BUILD)
