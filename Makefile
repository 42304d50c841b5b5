# Thin wrapper over CMake + ctest.  `make run` and `make test` each work on a
# fresh Debian 12 machine: they install missing packages first.
BUILD ?= build
JOBS ?= $(shell nproc)
LOCAL_PEERS ?= 2
LISTEN ?= 127.0.0.1:8765
HTTP ?= 127.0.0.1:9090
# make install: where to, and an optional staging root (packaging, tests).
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps build run test test-asan fuzz bench install clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/p2c2rd --listen $(LISTEN) --local-peers $(LOCAL_PEERS) --http $(HTTP) --http-root $(BUILD)/www --state $(BUILD)/state

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

# Programs, libp2c2r (.so and .a), headers, p2c2r.pc, the CMake package, man
# pages and systemd units under $(DESTDIR)$(PREFIX).
install: build
	@DESTDIR="$(DESTDIR)" cmake --install $(BUILD)

test-asan: deps
	@cmake -S . -B $(BUILD)-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DP2C2R_SANITIZE=ON -DCMAKE_C_COMPILER=clang >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	@cd $(BUILD)-asan && P2C2R_TEST_SCALE=$${P2C2R_TEST_SCALE:-0.2} ctest --output-on-failure -j $(JOBS) --timeout 900

fuzz: deps
	@cmake -S . -B $(BUILD)-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DP2C2R_FUZZ=ON -DCMAKE_C_COMPILER=clang >/dev/null
	@cmake --build $(BUILD)-fuzz -j $(JOBS)
	@bash scripts/fuzz.sh $(BUILD)-fuzz $${FUZZ_SECONDS:-30}

bench: build
	@bash scripts/deps.sh --bench
	@bash bench/compare.sh

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz $(BUILD)-gcc $(BUILD)-clang
