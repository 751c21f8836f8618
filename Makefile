# l7px: `make run` and `make test` do everything on a fresh Debian 12 machine (as root).
#   make run [CONF=FILE]         install missing packages, build, start l7px + the example service
#   make test                    install, build, run every test (ctest + go test), then the
#                                suite under ASan+UBSan, the concurrency tests under TSan, and
#                                a 5 s smoke run of every fuzz target (scripts/sanitize.sh)
#   make test SANITIZE=address   the same under ASan+UBSan (build-asan/)
#   make test SANITIZE=thread    the same under TSan (build-tsan/)
#   make fuzz [FUZZ_SECONDS=60]  run every fuzz target (make test runs each for 5 s)
#   make bench                   micro-benchmarks (Google Benchmark)
#   make bench-e2e               l7px vs NGINX and HAProxy (plain, TLS, listening services), the
#                                papers' experiments
#   make build | make format | make clean

SANITIZE ?=
ifeq ($(SANITIZE),address)
  BUILD ?= build-asan
  CMAKE_SANITIZE := -DL7PX_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug
else ifeq ($(SANITIZE),thread)
  BUILD ?= build-tsan
  CMAKE_SANITIZE := -DL7PX_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug
else
  BUILD ?= build
  CMAKE_SANITIZE :=
endif

DEB_PACKAGES := build-essential cmake ninja-build pkg-config ccache curl \
  liburing-dev libabsl-dev libfmt-dev libtomlplusplus-dev libgtest-dev libgmock-dev \
  googletest libbenchmark-dev node-llhttp nlohmann-json3-dev golang-go clang libclang-rt-14-dev \
  libssl-dev openssl python3

GO_ENV := GOPROXY=off GOFLAGS=-mod=mod GOSUMDB=off GOTOOLCHAIN=local \
  GOCACHE=$(CURDIR)/.gocache GOPATH=$(CURDIR)/.gopath

.PHONY: all deps build test run bench bench-e2e fuzz format clean

FUZZ_SECONDS ?= 60

all: build

deps:
	@scripts/install-deps.sh $(DEB_PACKAGES)

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_SANITIZE)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 300 -j2
	@if [ -f sdk/go/go.mod ]; then cd sdk/go && $(GO_ENV) CGO_ENABLED=1 L7PX_BINARY=$(CURDIR)/$(BUILD)/l7px go test -race -count=1 ./...; fi
ifeq ($(SANITIZE),)
	scripts/sanitize.sh all
	scripts/fuzz.sh 5
endif

# libFuzzer targets for every parser of untrusted bytes (clang, ASan+UBSan), FUZZ_SECONDS each.
fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

CONF ?= conf/l7px.toml
run: build
	@scripts/run.sh $(BUILD) $(CONF)

bench: build
	$(BUILD)/benchmarks/l7px_bench $(BENCH_ARGS)

# Side by side against NGINX/HAProxy + the papers' experiments (~13 min;
# BENCH_E2E_ARGS=--quick for a smoke run).
bench-e2e: build
	benchmarks/e2e/compare.sh all $(BUILD) $(BENCH_E2E_ARGS)
	python3 benchmarks/e2e/pool_health.py --l7px $(BUILD)/l7px \
	  --service $(BUILD)/tests/l7px_test_service | tee benchmarks/results/pool_health.txt
	benchmarks/e2e/compare.sh tls $(BUILD)
	benchmarks/e2e/compare.sh upstreams $(BUILD)

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf build build-asan build-tsan build-tsan-ci build-fuzz .gocache .gopath
