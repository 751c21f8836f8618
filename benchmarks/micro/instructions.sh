#!/usr/bin/env bash
# Instructions per message of request parsing, counted by callgrind: unlike the nanoseconds of
# `make bench`, they do not move with the machine's load or a VM's speed.
#
#   benchmarks/micro/instructions.sh [BUILD_DIR]      (build first: make build)
#
# For the small, typical and 40-header requests of benchmarks/micro/http_bench.cc, prints the
# instructions per message of llhttp alone (no callbacks), of l7px's parse, and of parse +
# service head rewrite: the benchmark body's inclusive count divided by the messages it parsed
# (llhttp's on_headers_complete calls). Installs valgrind when it is missing.
set -euo pipefail

build="${1:-build}"
bench="$build/benchmarks/l7px_bench"
[[ -x $bench ]] || { echo "instructions: $bench not found (make build first)" >&2; exit 1; }
if ! command -v valgrind >/dev/null 2>&1; then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends valgrind >&2
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

count() {  # count BENCHMARK_FUNCTION CORPUS -> instructions per message
  local fn=$1 corpus=$2
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bench" \
    --benchmark_filter="^$fn/$corpus\$" --benchmark_min_time=0.05 >/dev/null 2>&1
  callgrind_annotate --inclusive=yes --tree=caller "$out/cg" 2>/dev/null >"$out/report"
  python3 - "$fn" "$out/report" <<'PY'
import re, sys
fn, report = sys.argv[1], open(sys.argv[2]).read().splitlines()
messages = body = 0
for line in report:
    m = re.search(r"llhttp__on_headers_complete \(([\d,]+)x\)", line)
    if m:
        messages = max(messages, int(m.group(1).replace(",", "")))
    m = re.match(r"^\s*([\d,]+) \(.*%\)\s+\S.*::" + fn + r"\(benchmark::State&\)", line)
    if m and not body:
        body = int(m.group(1).replace(",", ""))
print(f"{body / messages:,.0f}" if messages and body else "?")
PY
}

printf '%-12s %14s %14s %18s\n' corpus "llhttp alone" "l7px parse" "parse + rewrite"
for corpus in 0:small 1:typical 2:40-header; do
  printf '%-12s %14s %14s %18s\n' "${corpus#*:}" "$(count BM_LlhttpAlone "${corpus%%:*}")" \
    "$(count BM_ParseRequest "${corpus%%:*}")" "$(count BM_ParseRewriteRequest "${corpus%%:*}")"
done
