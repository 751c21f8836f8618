#!/usr/bin/env bash
# The test suite under sanitizers; `make test` runs it after the plain suite.
#   asan  clang, ASan+UBSan: every unit and integration test. The same build (build-fuzz) holds
#         the libFuzzer targets, so the fuzz smoke run that follows costs no second build.
#   tsan  gcc, TSan: the concurrency-heavy tests (acceptor ring and slot races, waiter wake-ups,
#         RCU, the handoff, and the integration tests that hammer queues, reloads and upgrades).
#   scripts/sanitize.sh [asan|tsan|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"

# Unit suites and integration tests whose subject is concurrency (ctest names = gtest names,
# "Suite.Test"). Each name must be a whole gtest suite name: run_tsan fails when one of them
# matches no test, so a renamed suite cannot silently drop out of the TSan run.
tsan_suites=(SlotStackTest IdleStackTest BusyPollTest SlotTest HandoffTest HandoffChannelTest
  HandoffMessage UpgradeSocket UpgradeServerTest UpgradeLifecycleTest PoolLifecycleTest ControlPlaneTest
  ProxyQueueTest)
tsan_tests="^($(IFS='|'; echo "${tsan_suites[*]}"))\\."

run_asan() {
  local start=$(date +%s)
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DL7PX_FUZZ=ON \
    -DL7PX_SANITIZE=address,undefined -DL7PX_BENCHMARKS=OFF >/dev/null
  cmake --build build-fuzz
  echo "sanitize: ASan+UBSan build took $(($(date +%s) - start)) s"
  (cd build-fuzz &&
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    ctest --output-on-failure --timeout 300 -j2)
  echo "sanitize: ASan+UBSan suite clean ($(($(date +%s) - start)) s)"
}

run_tsan() {
  local start=$(date +%s)
  cmake -S . -B build-tsan-ci -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DL7PX_SANITIZE=thread -DL7PX_BENCHMARKS=OFF >/dev/null
  cmake --build build-tsan-ci --target l7px l7px_test_service slots_test handoff_test acceptor_test proxy_test \
    integration_test
  echo "sanitize: TSan build took $(($(date +%s) - start)) s"
  local suite count
  for suite in "${tsan_suites[@]}"; do
    count=$(cd build-tsan-ci && ctest -N -R "^${suite}\\." 2>/dev/null | grep -c "Test *#" || true)
    if [ "$count" -eq 0 ]; then
      echo "sanitize: TSan suite $suite matches no test (renamed?)" >&2
      exit 1
    fi
  done
  (cd build-tsan-ci &&
    TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}" \
    ctest --output-on-failure --timeout 300 -j2 -R "$tsan_tests")
  echo "sanitize: TSan suite clean ($(($(date +%s) - start)) s)"
}

case "$what" in
  asan) run_asan ;;
  tsan) run_tsan ;;
  all) run_asan; run_tsan ;;
  *) echo "usage: scripts/sanitize.sh [asan|tsan|all]" >&2; exit 2 ;;
esac
