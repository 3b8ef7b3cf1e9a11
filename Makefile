# DataDist: `make demo` runs the main job, `make test` the test suite, `make bench` the benchmark. All install missing system packages first.
SWIFT ?= swift
APT_PACKAGES := libnuma-dev libhwloc-dev libssl-dev libucx-dev pkg-config iproute2 nftables python3-venv ucx-utils
BIN := .build/debug/datadist

.PHONY: deps build lint format test tsan asan fuzz demo demo-cross-host bench docs clean python pytest python-bench
PYTHON ?= python3
PY_VENV := .build/pytest-venv

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

# The format check (.swift-format; `make format` rewrites the tree to match) and the layering rule.
lint:
	$(SWIFT) format lint --strict --parallel -r Package.swift Sources Tests Benchmarks/Package.swift Benchmarks/Benchmarks Benchmarks/Sources Fuzz
	scripts/check-layers.sh

format:
	$(SWIFT) format format --in-place --parallel -r Package.swift Sources Tests Benchmarks/Package.swift Benchmarks/Benchmarks Benchmarks/Sources Fuzz

# The suite in two runs: the CLI's tests (datadistTests), which wait on child processes and hold one of the test
# run's few threads while they do, apart from the library's, so that the library's deadlines never wait behind them.
define in_two_runs
	$(1) --skip '^datadistTests\.'
	$(1) --filter '^datadistTests\.'
endef

test: deps lint
	$(SWIFT) build --build-tests
	$(call in_two_runs,$(SWIFT) test)
	$(MAKE) pytest
	$(MAKE) tsan
	$(MAKE) asan

# The Python package for development: the release C ABI library and its header inside python/llm_datadist/_lib,
# so `PYTHONPATH=python python3 -c "import llm_datadist"` works from the checkout.
python: deps
	$(SWIFT) build -c release --product datadist_c
	mkdir -p python/llm_datadist/_lib/include/datadist
	cp "$$($(SWIFT) build -c release --show-bin-path)/libdatadist_c.so" python/llm_datadist/_lib/
	cp Sources/CDataDist/include/datadist/datadist.h python/llm_datadist/_lib/include/datadist/

# The pytest suite (python/tests) the way a user gets it: a fresh virtual environment, `pip install ./python`
# (which builds the Swift library in release mode), then pytest from outside the checkout's package folder.
pytest: deps
	rm -rf $(PY_VENV)
	$(PYTHON) -m venv $(PY_VENV)
	$(PY_VENV)/bin/pip install --quiet ./python numpy pytest
	cd python/tests && DATADIST_BACKEND=emulator ../../$(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider .

# pull_cache through Python beside the same pulls through Swift (`datadist bench`), as ratios (a few minutes).
python-bench: python
	$(SWIFT) build -c release --product datadist
	PYTHONPATH=python $(PYTHON) python/bench/bench_pull.py --datadist .build/release/datadist $(BENCH_ARGS)

# The whole suite again under ThreadSanitizer. `Synchronization.Mutex` is invisible to TSan on Linux, so this build
# swaps it for a pthread lock of the same shape (DATADIST_TSAN; see Sources/ThreadSanitizerSupport/Mutex.swift).
tsan: deps
	$(call in_two_runs,$(SWIFT) test --sanitize=thread -Xswiftc -DDATADIST_TSAN --scratch-path .build-tsan)

# The whole suite under AddressSanitizer with LeakSanitizer; leaks inside the toolchain's libraries are suppressed
# (scripts/lsan-suppressions.txt says which). Spawned `datadist` processes inherit the options.
asan: deps
	$(call in_two_runs,LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan-suppressions.txt:print_suppressions=0 \
		$(SWIFT) test --sanitize=address --scratch-path .build-asan)

# The libFuzzer targets (Fuzz/: frames, every message decoder, the handshake) under ASan, each for FUZZ_SECONDS
# (default 60) from the seed corpus in Fuzz/corpus; see scripts/fuzz.sh.
fuzz: deps
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) SWIFT=$(SWIFT) scripts/fuzz.sh

demo: build
	@echo "== datadist probe (this machine: ACL if CANN is installed, else the emulator)"
	@$(BIN) probe
	@echo
	@echo "== datadist demo: a prompt and a decoder process transfer KV caches over loopback"
	@$(BIN) demo

# The demo across two network namespaces joined by a veth pair (two hosts on one machine; needs root).
demo-cross-host: build
	@$(BIN) demo --cross-host

# `datadist bench` on a release build: every row beside the copy ceilings of the same run (a few minutes).
# BENCH_ARGS passes options through, e.g. `make bench BENCH_ARGS="--json --sizes 1MiB,4MiB"`.
bench: deps
	$(SWIFT) build -c release --product datadist
	.build/release/datadist bench $(BENCH_ARGS)

# The DocC catalog of DataDist (Sources/DataDist/DataDist.docc) as an archive; an unresolved link is an error.
docs: deps
	$(SWIFT) package generate-documentation --target DataDist --warnings-as-errors

clean:
	rm -rf .build
