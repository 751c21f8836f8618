#!/usr/bin/env bash
# l7px against NGINX and HAProxy, side by side, plus the papers' experiments.
#
#   benchmarks/e2e/compare.sh [all|compare|experiments|qps|spike|slow|timewait|profile] [BUILD_DIR]
#                             [--quick] [--workers N] [--conns 1,4,...] [--duration S]
#                             [--repeat N] [--service PATH] [--unix] ...   (--help for all)
#   benchmarks/e2e/compare.sh tls [BUILD_DIR] [--quick] [--rounds N] ...  TLS termination (tls.py)
#   benchmarks/e2e/compare.sh upstreams [BUILD_DIR] [--quick] [--rounds N] ...  l7px dialing a
#                             listening service (pool `upstreams`) (upstreams.py)
#
# Installs Debian's nginx, haproxy, wrk, gnuplot and python3 when missing; builds nothing (run
# `make build` first; BUILD_DIR defaults to build/). Results (markdown tables, CSV, PNG plots,
# machine/commit/configs) go to benchmarks/results/ (benchmarks/results/quick/ with --quick).
# Loopback only; every run is bounded in time; every process started is stopped by PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

need=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || need+=(haproxy)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v gnuplot >/dev/null 2>&1 || need+=(gnuplot-nox)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
if [[ ${1:-} == profile ]]; then command -v perf >/dev/null 2>&1 || need+=(linux-perf); fi

if ((${#need[@]} > 0)); then
  echo "compare.sh: installing ${need[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  # Keep the packages' init scripts from starting system-wide daemons on ports 80 and 443.
  created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  if ((created_policy)); then $sudo rm -f /usr/sbin/policy-rc.d; fi
fi

if [[ ${1:-} == tls ]]; then
  shift
  exec python3 "$here/tls.py" "$@"
fi
if [[ ${1:-} == upstreams ]]; then
  shift
  exec python3 "$here/upstreams.py" "$@"
fi
exec python3 "$here/harness.py" "$@"
