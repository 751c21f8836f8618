#!/usr/bin/env python3
"""Services that only listen: l7px dialing them (`upstreams`) against NGINX and HAProxy.

  benchmarks/e2e/compare.sh upstreams [BUILD_DIR] [--quick] [--rounds 3] [--duration 5]
                                      [--conns 1,16,64] [--slots 16] [--slot-sweep 4,64]
                                      [--service go|cpp|PATH] [--configs ...] [--out DIR]

(or python3 benchmarks/e2e/upstreams.py with the same arguments, once nginx, haproxy and wrk are
installed; compare.sh installs them.)

One unmodified listening service (`l7px-bench-service --listen`, --size bytes, no delay) behind
each of:
  l7px-up      l7px, 1 worker, the pool's `upstreams = [service]`, `upstream_slots = --slots`:
               l7px's acceptor dials the keep-alive connections itself;
  l7px-up@N    the same with upstream_slots = N, for each N of --slot-sweep (the effect of N),
               at the connection counts of --sweep-conns only;
  nginx-ka     NGINX, 1 worker_process, `upstream { keepalive 256; }`, proxy_http_version 1.1,
               Connection "" (harness.nginx_config);
  haproxy      HAProxy, nbthread 1, http-reuse always (harness.haproxy_config);
  l7px-sdk     for reference, the SDK path: the same service binary registering --slots slots
               itself (--proxy), as in the side-by-side comparison;
  l7px-agent   client -> l7px -> `l7px connect` agent -> service: the agent registers --slots
               slots with l7px and forwards each request to the listening service over its own
               keep-alive connections. Only when `l7px connect --help` works with the binary
               under test; skipped with a message otherwise.
NGINX and HAProxy add the forwarding headers l7px adds (as `compare.sh compare --peer-headers
same`), so every proxy and the service do the same work. Each configuration has its own instance
of the service.

For each round, each connection count and each configuration, interleaved in that order, one
`wrk -t1 -cC` run of --duration s: RPS, p50, p99 (wrk), the proxy's CPU-µs per request (utime +
stime of all its processes from /proc/PID/stat, over the run, per completed request) and its
context switches per request (/proc/PID/task/*/status), the service's CPU-µs per request, the
agent's (l7px-agent), and the connections the service had open at the end of the run. A run
during which other processes used more than --max-others % of all CPUs is run again (at most
--retries times). Results: upstreams.md and upstreams.csv in benchmarks/results/ (quick/ with
--quick), and the configurations in configs/.

Loopback only (ports --port-base.. +10 per configuration); every run is bounded in time; every
process started is stopped by PID.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402  (its atexit and signal handlers stop our children too)
from harness import (LOOPBACK, REPO, Stack, fmt_range, med, start, wait_port, write_csv,  # noqa: E402
                     shown, git_commit)
from tls import Machine, machine_report, quiet_run  # noqa: E402

BASE_CONFIGS = ["l7px-up", "nginx-ka", "haproxy", "l7px-sdk", "l7px-agent"]
PEERS = ["nginx-ka", "haproxy"]
LABELS = {"l7px-up": "l7px, upstreams", "nginx-ka": "NGINX (keep-alive upstream)",
          "haproxy": "HAProxy (http-reuse always)", "l7px-sdk": "l7px, SDK slots (reference)",
          "l7px-agent": "l7px + connect agent"}
TARGET_CONNS = 16
TARGETS = [("rps", "RPS", "higher", 1.1), ("proxy_cpu_us", "proxy CPU-µs/req", "lower", 0.8)]

GO_ENV = {"GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOSUMDB": "off", "GOTOOLCHAIN": "local",
          "GOCACHE": os.path.join(REPO, ".gocache"), "GOPATH": os.path.join(REPO, ".gopath")}


def label(kind):
    if kind.startswith("l7px-up@"):
        return f"l7px, upstreams, upstream_slots = {kind.split('@')[1]}"
    return LABELS[kind]


def pools(port, timeout=2.0):
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/pools", timeout=timeout) as r:
        return json.loads(r.read())["pools"]


def wait_registered(stack, want, watch, timeout=20.0):
    """Until l7px's pool has `want` slots (GET /pools), or a watched process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p is not None and p.poll() is not None for p in watch):
            return False
        try:
            if pools(stack.admin)[0]["registered"] >= want:
                return True
        except (OSError, ValueError, KeyError, IndexError):
            pass
        time.sleep(0.05)
    return False


def established(port):
    """TCP connections established to `port` (counted once each, on the listening side)."""
    return sum(1 for lp, _, _ in harness.sockets({port}, "established") if lp == port)


class UpstreamStack(Stack):
    """A proxy in front of its own instance of a listening service (harness.Stack's interface:
    proxy_pids, service_pids, url_port, stop, dead)."""

    def __init__(self, kind, h, index):
        super().__init__("direct", h, ["--size", str(h.size), "--delay-ms", "0"], h.slots)
        self.kind = kind
        self.slots = int(kind.split("@")[1]) if "@" in kind else h.slots
        base = h.port_base + 10 * index
        self.front, self.upstream_port = base, base + 1  # the service listens on base + 1
        self.register, self.admin = base + 2, base + 3
        self.agent = None

    def relevant_ports(self):
        return {self.upstream_port}

    def agent_pids(self):
        return [self.agent.pid] if self.agent is not None else []

    def l7px_config(self, pool_lines):
        h, d = self.h, self.h.tmp
        cfg = harness.l7px_config(d, self.front, self.register, 1, busy_poll="0")
        cfg = cfg.replace('[admin]\nlisten = ""', f'[admin]\nlisten = "{LOOPBACK}:{self.admin}"')
        cfg = cfg.replace(f"upgrade-tcp.sock", f"upgrade-{self.front}.sock")
        cfg = cfg.replace('name = "default"\n', 'name = "default"\n' + pool_lines)
        assert pool_lines == "" or pool_lines in cfg
        return self._write(f"upstreams-{self.kind.replace('@', '-')}.toml", cfg)

    def start(self):
        h, d, k = self.h, self.h.tmp, self.kind
        for p in (self.front, self.upstream_port, self.register, self.admin):
            if not harness.port_free(p):
                raise RuntimeError(f"port {p} is in use; pick another --port-base")
        log = f"{d}/{k}.log"
        svc_log = f"{d}/{k}-service.log"
        service = f"{LOOPBACK}:{self.upstream_port}"
        if k == "l7px-sdk":
            path = self.l7px_config("")
            self.proxy = start([h.l7px, "-c", path], log)
            if not wait_port(self.front, self.proxy):
                raise RuntimeError(f"{k} did not start; see {log}")
            self.service = start([h.service, "--proxy", f"{LOOPBACK}:{self.register}", "--slots",
                                  str(self.slots)] + self.service_args, svc_log)
            if not wait_registered(self, self.slots, [self.proxy, self.service]):
                raise RuntimeError(f"service did not register with {k}; see {svc_log}")
            return
        self.service = start([h.service, "--listen", service] + self.service_args, svc_log)
        if not wait_port(self.upstream_port, self.service):
            raise RuntimeError(f"service did not listen; see {svc_log}")
        if k.startswith("l7px-up"):
            path = self.l7px_config(f'upstreams = ["{service}"]\nupstream_slots = {self.slots}\n')
            self.proxy = start([h.l7px, "-c", path], log)
            if not wait_registered(self, self.slots, [self.proxy, self.service]):
                raise RuntimeError(f"{k} did not dial its {self.slots} slots; see {log}")
        elif k == "l7px-agent":
            path = self.l7px_config("")
            self.proxy = start([h.l7px, "-c", path], log)
            if not wait_port(self.front, self.proxy):
                raise RuntimeError(f"{k} did not start; see {log}")
            self.agent = start([h.l7px, "connect", "--proxy", f"{LOOPBACK}:{self.register}",
                                "--pool", "default", "--slots", str(self.slots), "--to",
                                service], f"{d}/{k}-agent.log")
            if not wait_registered(self, self.slots, [self.proxy, self.service, self.agent]):
                raise RuntimeError(f"the connect agent did not register; see {d}/{k}-agent.log")
        elif k == "nginx-ka":
            os.makedirs(f"{d}/{k}-tmp", exist_ok=True)
            path = self._write("upstreams-nginx.conf",
                               harness.nginx_config(d, k, self.front, service, 1, True))
            self.proxy = start([h.nginx, "-p", d, "-e", f"{d}/{k}.error.log", "-c", path], log)
        elif k == "haproxy":
            path = self._write("upstreams-haproxy.cfg",
                               harness.haproxy_config(self.front, service, 1))
            self.proxy = start([h.haproxy, "-db", "-f", path], log)
        if not wait_port(self.front, self.proxy):
            raise RuntimeError(f"{k} did not start; see {log}")

    def dead(self):
        out = super().dead()
        if self.agent is not None and self.agent.poll() is not None:
            out.append("agent")
        return out

    def stop(self):
        harness.stop(self.agent)
        self.agent = None
        super().stop()


def run_one(h, stack, conns):
    m = Machine(stack)
    if stack.agent is not None:  # the agent is ours too, not a neighbour's
        m.pids += stack.agent_pids()
        m.o0 = harness.sample(m.pids)["ticks"]
    a0 = harness.sample(stack.agent_pids())
    r = harness.run_wrk(h, stack, conns, h.duration)
    a1 = harness.sample(stack.agent_pids())
    foreign, client = m.end()
    n = max(r["requests"], 1)
    row = {"rps": r["rps"], "p50_us": r["p50_us"], "p99_us": r["p99_us"],
           "proxy_cpu_us": r["proxy_cpu_us"], "proxy_csw": r["proxy_csw"],
           "proxy_csw_invol": r["proxy_csw_invol"], "svc_cpu_us": r["svc_cpu_us"],
           "errors": r["errors"] + r["err_status"], "requests": r["requests"],
           "steal_pct": r["steal_pct"], "foreign_pct": foreign, "client_pct": client,
           "time_wait": r["time_wait"],
           # the SDK's slots are the service's connections to l7px's registration port
           "svc_conns": established(stack.register if stack.kind == "l7px-sdk"
                                    else stack.upstream_port)}
    if stack.agent is not None:
        row["agent_cpu_us"] = (a1["ticks"] - a0["ticks"]) * 1e6 / harness.CLK_TCK / n
        row["agent_csw"] = (a1["csw"] - a0["csw"]) / n
    return row


def measure(h, stacks):
    rows = []
    plan = [(conns, k) for conns in h.conns for k in h.configs
            if "@" not in k or conns in h.sweep_conns]
    total = h.rounds * len(plan)
    i = 0
    for rnd in range(h.rounds):
        for conns, k in plan:
            s = stacks[k]
            r = quiet_run(h, f"{k} c={conns}", "run", lambda: run_one(h, s, conns),
                          "foreign_pct")
            r.update({"config": k, "conns": conns, "round": rnd, "slots": s.slots})
            dead = s.dead()
            if dead:
                r["died"] = "+".join(dead)
                h.log(f"WARNING: {k}: {' and '.join(dead)} exited (logs in {h.tmp}); "
                      "restarting")
                h.keep_tmp = True
                s.stop()
                s.start()
            rows.append(r)
            i += 1
            agent = (f" agent cpu/req={r['agent_cpu_us']:.1f}" if "agent_cpu_us" in r
                     else "")
            h.log(f"[{i}/{total}] {k:12s} c={conns:<3d} rps={r['rps']:>8,.0f} "
                  f"p99={r['p99_us'] / 1e3:.2f}ms cpu/req={r['proxy_cpu_us']:.1f} "
                  f"csw/req={r['proxy_csw']:.3f} svc cpu/req={r['svc_cpu_us']:.1f}{agent} "
                  f"svc conns={r['svc_conns']} others {r['foreign_pct']:.0f}% "
                  f"errors={r['errors']}")
    return rows


def ratio_rows(rows, mine, peer, conns):
    """Per round: mine's run over the peer's run of the same round and connection count."""
    out = {}
    for key in ("rps", "p99_us", "proxy_cpu_us"):
        pairs = [a[key] / b[key] for a in rows if a["config"] == mine and a["conns"] == conns
                 for b in rows if b["config"] == peer and b["conns"] == conns and
                 b["round"] == a["round"] and b[key]]
        out[key] = pairs
    return out


def markdown(h, rows, stamp, agent_note):
    lines = [stamp, "",
             f"Medians of {h.rounds} interleaved round(s), (min–max) when repeated; each run "
             f"`wrk -t1 -cC -d{h.duration}s`. One instance per configuration of the service "
             f"`{shown(h.service)}` --listen --size {h.size} (no delay), unmodified; 1 worker / "
             "worker_process / thread per proxy; NGINX and HAProxy add the forwarding headers "
             "l7px adds. l7px dials the service itself (`upstreams`, `upstream_slots = "
             f"{h.slots}` unless the row says otherwise); the SDK row is the same service "
             f"registering {h.slots} slots (`--proxy`). Proxy CPU: utime + stime of all the "
             "proxy's processes over the run, per completed request (for the agent row l7px's "
             "only; the agent's is its own column). Service conns: the service's TCP connections "
             "to its proxy at the end of the run (for the SDK row the slots it registered).", "",
             "| conns | configuration | RPS | p50 ms | p99 ms | proxy CPU-µs/req | proxy "
             "ctx-sw/req | service CPU-µs/req | agent CPU-µs/req | service conns | errors | "
             "others' CPU % |", "|---:|---|" + "---:|" * 10]
    for conns in h.conns:
        for k in h.configs:
            rs = [r for r in rows if r["config"] == k and r["conns"] == conns]
            if not rs:
                continue
            ms = lambda key: fmt_range([r[key] for r in rs], 2, 1e-3)  # noqa: E731
            agent = fmt_range([r.get("agent_cpu_us") for r in rs], 1)
            lines.append(
                f"| {conns} | {label(k)} | {fmt_range([r['rps'] for r in rs])} | {ms('p50_us')} | "
                f"{ms('p99_us')} | {fmt_range([r['proxy_cpu_us'] for r in rs], 1)} | "
                f"{fmt_range([r['proxy_csw'] for r in rs], 3)} | "
                f"{fmt_range([r['svc_cpu_us'] for r in rs], 1)} | {agent} | "
                f"{fmt_range([r['svc_conns'] for r in rs])} | {sum(r['errors'] for r in rs)}"
                f"{' (a process died)' if any(r.get('died') for r in rs) else ''} | "
                f"{fmt_range([r['foreign_pct'] for r in rs])} |")
    if agent_note:
        lines += ["", agent_note]
    mine = [k for k in h.configs if k.startswith("l7px")]
    peers = [k for k in h.configs if k in PEERS]
    if mine and peers:
        lines += ["", "Ratios: per round, the l7px configuration's run over the peer's run of the "
                  "same round and connection count; median (min–max) of those. RPS > 1 and p99, "
                  "CPU < 1 favour l7px.", "",
                  "| conns | l7px configuration | peer | RPS ratio | p99 ratio | CPU-µs/req ratio |",
                  "|---:|---|---|---:|---:|---:|"]
        for conns in h.conns:
            for k in mine:
                for p in peers:
                    rr = ratio_rows(rows, k, p, conns)
                    if not rr["rps"]:
                        continue
                    lines.append(f"| {conns} | {label(k)} | {LABELS[p]} | "
                                 f"{fmt_range(rr['rps'], 2)} | {fmt_range(rr['p99_us'], 2)} | "
                                 f"{fmt_range(rr['proxy_cpu_us'], 2)} |")
    if "l7px-up" in h.configs and peers and TARGET_CONNS in h.conns:
        lines += ["", f"Targets (issue #20 item 5), at {TARGET_CONNS} connections: l7px with "
                  "`upstreams` against each peer, the ratio of the medians and (min–max) of the "
                  "per-round ratios.", "",
                  "| metric | l7px | peer | peer's | ratio | per round | target | |",
                  "|---|---:|---|---:|---:|---:|---:|---|"]
        for key, name, direction, bound in TARGETS:
            m0 = med([r[key] for r in rows if r["config"] == "l7px-up" and
                      r["conns"] == TARGET_CONNS])
            for p in peers:
                m1 = med([r[key] for r in rows if r["config"] == p and r["conns"] == TARGET_CONNS])
                if m0 is None or not m1:
                    continue
                ratio = m0 / m1
                ok = ratio >= bound if direction == "higher" else ratio <= bound
                digits = 1 if "cpu" in key else 0
                lines.append(f"| {name} | {m0:,.{digits}f} | {LABELS[p]} | {m1:,.{digits}f} | "
                             f"{ratio:.2f} | "
                             f"{fmt_range(ratio_rows(rows, 'l7px-up', p, TARGET_CONNS)[key], 2)} | "
                             f"{'≥' if direction == 'higher' else '≤'} {bound:g}× | "
                             f"{'**met**' if ok else '**not met**'} |")
    if "l7px-agent" in h.configs and TARGET_CONNS in h.conns:
        lines += ["", "The agent's hop (client → l7px → agent → service against client → l7px → "
                  "service), per connection count: medians.", "",
                  "| conns | l7px, upstreams RPS | l7px + agent RPS | p99 ms, upstreams / agent | "
                  "CPU-µs/req: l7px + agent (agent) against l7px with upstreams |",
                  "|---:|---:|---:|---:|---:|"]
        for conns in h.conns:
            up = [r for r in rows if r["config"] == "l7px-up" and r["conns"] == conns]
            ag = [r for r in rows if r["config"] == "l7px-agent" and r["conns"] == conns]
            if not up or not ag:
                continue
            agent_cpu = med([r.get("agent_cpu_us") for r in ag])
            lines.append(
                f"| {conns} | {med([r['rps'] for r in up]):,.0f} | "
                f"{med([r['rps'] for r in ag]):,.0f} | "
                f"{med([r['p99_us'] for r in up]) / 1e3:.2f} / "
                f"{med([r['p99_us'] for r in ag]) / 1e3:.2f} | "
                f"{med([r['proxy_cpu_us'] for r in ag]) + (agent_cpu or 0):.1f} "
                f"({'—' if agent_cpu is None else f'{agent_cpu:.1f}'}) against "
                f"{med([r['proxy_cpu_us'] for r in up]):.1f} |")
    reruns = sum(r["reruns"] for r in rows)
    noisy = sum(1 for r in rows if r["foreign_pct"] > h.max_others)
    lines += ["", f"A run during which others used more than {h.max_others:g} % of the CPUs was "
              f"run again (up to {h.retries} times): {reruns} rerun(s); {noisy} run(s) still "
              "above it in the end (their numbers stand; see the last column)."
              if h.max_others > 0 else "Runs were not repeated for others' load."]
    return "\n".join(lines) + "\n"


# The kernel work that l7px's lease-time look causes (exchange.cc ProbeSlot): the TCP_QUICKACK
# (a pure acknowledgement sent now, through the whole loopback path) and the non-blocking
# receive that finds nothing. Counted before harness.KERNEL_CLASSES.
LOOK_FUNCS = {"__tcp_sock_set_quickack", "tcp_sock_set_quickack", "do_tcp_setsockopt",
              "io_uring_cmd_sock", "io_uring_cmd", "io_uring_cmd_getsockopt"}


def profile(h, stacks):
    """perf record -g on each proxy's processes during one run per configuration and round at
    the first --conns; the CPU per request split by where it went (harness's classes, and the
    lease-time look's setsockopt apart)."""
    if not shutil.which("perf"):
        sys.exit("upstreams: perf is missing (Debian package linux-perf)")
    conns = h.conns[0]
    columns = ["own code", "libraries", "TCP_QUICKACK (setsockopt)"] + \
        [c for c, _ in harness.KERNEL_CLASSES] + ["other kernel"]
    counts = {k: dict.fromkeys(columns, 0) for k in h.configs}
    symbols = {k: {} for k in h.configs}
    runs = {k: [] for k in h.configs}
    for rnd in range(h.rounds):
        for k in h.configs:
            s = stacks[k]
            own = os.path.basename(s.proxy.args[0])
            data = os.path.join(h.tmp, f"perf-{k}-{rnd}.data")
            perf = start(["perf", "record", "-F", "1999", "-g", "-o", data, "-p",
                          ",".join(str(p) for p in s.proxy_pids())], f"{data}.log")
            time.sleep(0.5)  # perf attaches to every thread before the load starts
            r = run_one(h, s, conns)
            perf.send_signal(harness.signal.SIGINT)
            try:
                perf.wait(timeout=60)
            except subprocess.TimeoutExpired:
                harness.stop(perf)
            runs[k].append(r)
            n = 0
            for leaf, dso, frames in harness.perf_samples(data):
                if "kernel.kallsyms" in dso and set(frames) & LOOK_FUNCS:
                    cls = "TCP_QUICKACK (setsockopt)"
                else:
                    cls = harness.classify_sample(dso, frames, own)
                counts[k][cls] += 1
                key = f"{leaf} ({os.path.basename(dso).strip('[]')})"
                symbols[k][key] = symbols[k].get(key, 0) + 1
                n += 1
            os.unlink(data)
            if n == 0:
                sys.exit(f"upstreams: perf recorded nothing for {k}; see {data}.log")
            h.log(f"[{rnd + 1}/{h.rounds}] {k:12s} c={conns} rps={r['rps']:>8,.0f} "
                  f"cpu/req={r['proxy_cpu_us']:.1f} samples={n} others {r['foreign_pct']:.0f}%")
    lines = [f"Where each proxy's CPU goes at {conns} connections: `perf record -g -F 1999` on "
             f"the proxy's processes during {h.rounds} interleaved run(s) of {h.duration} s "
             "each (the classes of `compare.sh profile`, with the stacks under l7px's "
             "TCP_QUICKACK setsockopt apart). Per request: the class's share of the proxy's "
             "CPU-µs per request (median of the runs).", "",
             "| configuration | RPS | proxy CPU-µs/req | " + " | ".join(columns) + " |",
             "|---|---:|---:|" + "---:|" * len(columns)]
    for k in h.configs:
        total = sum(counts[k].values()) or 1
        cpu = med([r["proxy_cpu_us"] for r in runs[k]])
        lines.append(f"| {label(k)} | {med([r['rps'] for r in runs[k]]):,.0f} | {cpu:.2f} | " +
                     " | ".join(f"{counts[k][c] / total * cpu:.2f} ({counts[k][c] / total:.0%})"
                                for c in columns) + " |")
    lines += ["", "Hottest functions (share of each proxy's samples, where the sample landed):",
              ""]
    for k in h.configs:
        total = sum(counts[k].values()) or 1
        top = sorted(symbols[k].items(), key=lambda kv: -kv[1])[:12]
        lines.append(f"- {label(k)}: " + "; ".join(f"`{name}` {c / total:.1%}" for name, c in top))
    return "\n".join(lines) + "\n"


def machine_lines(h):
    return machine_report(
        h, [[h.nginx, "-v"], [h.haproxy, "-v"], [h.wrk, "--version"], ["go", "version"]],
        [h.l7px, h.service], "`configs/upstreams-*`")


def go_service(build):
    """The Go benchmark service (sdk/go/cmd/l7px-bench-service), built into BUILD/go/ when
    missing or older than its sources (offline, as `make test` runs go)."""
    out = os.path.join(os.path.abspath(build), "go", "l7px-bench-service")
    src = os.path.join(REPO, "sdk", "go")
    newest = max(os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(src) for f in fs
                 if f.endswith((".go", ".mod")))
    if os.access(out, os.X_OK) and os.path.getmtime(out) >= newest:
        return out
    if not shutil.which("go"):
        sys.exit("upstreams: go is missing (make build installs golang-go), or give --service")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run(["go", "build", "-o", out, "./cmd/l7px-bench-service"], cwd=src, check=True,
                   env=dict(os.environ, **GO_ENV), timeout=600)
    return out


def agent_available(l7px):
    """(True, "") when `l7px connect --help` works with this binary, else (False, why)."""
    try:
        r = subprocess.run([l7px, "connect", "--help"], capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    text = r.stdout + r.stderr
    if r.returncode == 0 and "--to" in text:
        return True, ""
    first = text.strip().splitlines()[0] if text.strip() else f"exit status {r.returncode}"
    return False, f"`l7px connect --help` did not work with this binary ({first})"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="compare.sh upstreams", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("build", nargs="?", default=os.path.join(REPO, "build"))
    p.add_argument("--service", default="go",
                   help="go (default: sdk/go/cmd/l7px-bench-service, built into BUILD/go/), "
                   "cpp (BUILD/l7px-bench-service) or a path; flags --listen/--proxy/--slots/"
                   "--size/--delay-ms")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=5, help="seconds per run")
    p.add_argument("--conns", default="1,16,64", help="wrk connections (16: the targets)")
    p.add_argument("--slots", type=int, default=16,
                   help="upstream_slots for l7px (and the slots of the SDK and agent rows)")
    p.add_argument("--slot-sweep", default="4,64",
                   help="more upstream_slots values, each a configuration of its own "
                   "(l7px-up@N); '' for none")
    p.add_argument("--sweep-conns", default="16",
                   help="the connection counts at which the --slot-sweep rows run (default 16)")
    p.add_argument("--size", type=int, default=128, help="response body bytes")
    p.add_argument("--configs", default=",".join(BASE_CONFIGS),
                   help=f"subset/order of {','.join(BASE_CONFIGS)} (l7px-up@N as well)")
    p.add_argument("--warmup", type=int, default=1, help="seconds of wrk per stack first")
    p.add_argument("--pause", type=float, default=0.3)
    p.add_argument("--max-others", type=float, default=25.0,
                   help="run a run again when other processes used more than this percentage "
                   "of all CPUs during it (default 25; 0 = never)")
    p.add_argument("--retries", type=int, default=1, help="how many times at most (default 1)")
    p.add_argument("--quiet-wait", type=float, default=5,
                   help="seconds to wait at most, before each run, for the machine to be idle "
                   "(below --max-others) (default 5)")
    p.add_argument("--profile", action="store_true",
                   help="instead of the comparison: perf record -g on each proxy during one run "
                   "per configuration and round at the first --conns (default 16), into "
                   "upstreams-profile.md")
    p.add_argument("--quick", action="store_true",
                   help="1 round of 1 s runs, 16 connections, no sweep, no reruns (~1 min)")
    p.add_argument("--port-base", type=int, default=26200)
    p.add_argument("--out", help="results directory (default benchmarks/results, "
                   "benchmarks/results/quick with --quick)")
    p.add_argument("--keep-tmp", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        for key, value in {"rounds": 1, "duration": 1, "warmup": 0, "pause": 0.1, "retries": 0,
                           "quiet_wait": 2, "conns": "16", "slot_sweep": ""}.items():
            if "--" + key.replace("_", "-") not in argv:
                setattr(a, key, value)
    if a.profile and "--conns" not in argv:
        a.conns = str(TARGET_CONNS)
    a.conns = [int(c) for c in str(a.conns).split(",") if c.strip()]
    a.sweep_conns = [int(c) for c in str(a.sweep_conns).split(",") if c.strip()]
    a.configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    if "l7px-up" in a.configs:
        at = a.configs.index("l7px-up") + 1
        for n in [s.strip() for s in a.slot_sweep.split(",") if s.strip()]:
            if int(n) != a.slots and f"l7px-up@{n}" not in a.configs:
                a.configs.insert(at, f"l7px-up@{int(n)}")
                at += 1
    for c in a.configs:
        if c not in BASE_CONFIGS and not (c.startswith("l7px-up@") and c[8:].isdigit()):
            p.error(f"unknown configuration {c}")
    a.out = os.path.abspath(a.out or os.path.join(REPO, "benchmarks", "results",
                                                  "quick" if a.quick else ""))
    return a


def main():
    argv = sys.argv[1:]
    a = parse_args(argv)
    if a.service == "go":
        a.service = go_service(a.build)
    elif a.service == "cpp":
        a.service = os.path.join(os.path.abspath(a.build), "l7px-bench-service")
    # What harness.Harness and its helpers read (run_wrk, Stack, the config writers).
    a.workers, a.wrk_threads, a.peer_headers, a.busy_poll = 1, 1, "same", "0"
    h = harness.Harness(a)
    h.load_start = os.getloadavg()[0]
    h.check()
    agent_note = ""
    if "l7px-agent" in h.configs:
        ok, why = agent_available(h.l7px)
        if not ok:
            h.configs.remove("l7px-agent")
            agent_note = (f"The l7px + connect agent configuration was skipped: {why}. It runs "
                          "once the binary under test has the `connect` subcommand.")
            h.log(f"upstreams: skipping l7px-agent: {why}")
    stamp = (f"_{datetime.datetime.now().astimezone().isoformat(timespec='seconds')} · commit "
             f"{git_commit()} · `benchmarks/e2e/compare.sh upstreams "
             f"{' '.join(shown(x) if os.path.isabs(x) else x for x in argv)}`_")
    t0 = time.monotonic()
    stacks = {k: UpstreamStack(k, h, i) for i, k in enumerate(h.configs)}
    try:
        for s in stacks.values():
            s.start()
            h.remember_config(s)
            if h.warmup > 0:
                harness.run_wrk(h, s, max(h.conns), h.warmup)
        if h.profile:
            md = stamp + "\n\n" + profile(h, stacks)
        else:
            rows = measure(h, stacks)
    finally:
        for s in stacks.values():
            s.stop()
        harness._kill_all()
    if h.profile:
        with open(os.path.join(h.out, "upstreams-profile.md"), "w") as f:
            f.write(md + "\n".join(machine_lines(h)))
        print(md)
        if not h.keep_tmp:
            shutil.rmtree(h.tmp, ignore_errors=True)
        return
    md = markdown(h, rows, stamp, agent_note) + "\n".join(machine_lines(h))
    with open(os.path.join(h.out, "upstreams.md"), "w") as f:
        f.write(md)
    write_csv(os.path.join(h.out, "upstreams.csv"), rows,
              ["config", "slots", "conns", "round", "rps", "p50_us", "p99_us", "proxy_cpu_us",
               "proxy_csw", "proxy_csw_invol", "svc_cpu_us", "agent_cpu_us", "agent_csw",
               "svc_conns", "errors", "requests", "time_wait", "steal_pct", "foreign_pct",
               "client_pct", "reruns"])
    cdir = os.path.join(h.out, "configs")
    os.makedirs(cdir, exist_ok=True)
    for name, text in h.configs_used.items():
        with open(os.path.join(cdir, name), "w") as f:
            f.write(text)
    print(md)
    if not h.keep_tmp:
        shutil.rmtree(h.tmp, ignore_errors=True)
    h.log(f"upstreams: done in {time.monotonic() - t0:.0f}s; results in {h.out}")


if __name__ == "__main__":
    main()
