#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for a while on a copy of its
# seed corpus. Fails on any crash, leak, timeout or broken invariant; the reproducer is kept.
#   scripts/fuzz.sh [SECONDS_PER_TARGET=60] [BUILD_DIR=build-fuzz]
# Reproduce a crash: BUILD_DIR/fuzz/<target> <crash-file>
set -euo pipefail

seconds="${1:-60}"
cd "$(dirname "$0")/.."
build="${2:-build-fuzz}"

for tool in clang clang++; do
  command -v "$tool" >/dev/null || { echo "fuzz: $tool not found (apt-get install clang)" >&2; exit 1; }
done

# target:corpus:max_len
targets=(
  request_parser_fuzz:request_parser:4096
  response_parser_fuzz:response_parser:4096
  handshake_fuzz:handshake:1024
  handoff_fuzz:handoff:4096
  config_fuzz:config:4096
  json_fuzz:json:2048
  address_fuzz:address:128
  tls_transport_fuzz:tls_transport:8192
)

start=$(date +%s)
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DL7PX_FUZZ=ON \
  -DL7PX_SANITIZE=address,undefined -DL7PX_BENCHMARKS=OFF >/dev/null  # as scripts/sanitize.sh
cmake --build "$build" --target fuzzers
echo "fuzz: build took $(($(date +%s) - start)) s"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
for entry in "${targets[@]}"; do
  IFS=: read -r target corpus max_len <<<"$entry"
  work="$build/fuzz-work/$target"
  rm -rf "$work"
  mkdir -p "$work/corpus"
  cp fuzz/corpus/"$corpus"/* "$work/corpus/"
  log="$work/log.txt"
  if "$build/fuzz/$target" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" \
      >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz: $target ok: ${execs:-?} runs in ${seconds}s, ${cov:-cov: ?}, corpus $(ls "$work/corpus" | wc -l)"
  else
    echo "fuzz: $target FAILED (log $log)" >&2
    grep -E 'ERROR|runtime error|invariant failed|SUMMARY' "$log" | head -5 >&2 || true
    grep -E 'Test unit written to|^artifact_prefix' "$log" >&2 || true
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets clean (${seconds}s each)"
