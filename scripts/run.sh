#!/usr/bin/env bash
# `make run`: starts l7px with conf/l7px.toml (or the config given as the second argument, `make
# run CONF=...`) and the bundled example service registered to it, prints a curl line that
# works, and stops both on Ctrl-C.
set -euo pipefail
build=${1:-build}
conf=${2:-conf/l7px.toml}
cd "$(dirname "$0")/.."
mkdir -p run
"$build/l7px" -t -c "$conf" >/dev/null

"$build/l7px" -c "$conf" >run/access.log 2>run/l7px.log &
proxy=$!
service=""
cleanup() {
  [ -n "$service" ] && kill "$service" 2>/dev/null || true
  kill "$proxy" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Wait for the register port, then start the example service (4 slots).
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/9999) 2>/dev/null; then break; fi
  kill -0 "$proxy" 2>/dev/null || { cat run/l7px.log; exit 1; }
  sleep 0.05
done
"$build/l7px-hello-service" --proxy 127.0.0.1:9999 --slots 4 >run/hello.log 2>&1 &
service=$!

for _ in $(seq 1 100); do
  if curl -fsS --max-time 1 http://127.0.0.1:8080/ >/dev/null 2>&1; then break; fi
  sleep 0.05
done

cat <<TXT
l7px is running (pid $proxy, $conf) with the example service (pid $service) registered.

  curl -i http://127.0.0.1:8080/

Logs: run/l7px.log (errors), run/access.log (access), run/hello.log (service).
Press Ctrl-C to stop both.
TXT
wait "$proxy"
