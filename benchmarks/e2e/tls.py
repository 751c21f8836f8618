#!/usr/bin/env python3
"""TLS termination: l7px against NGINX and HAProxy, the same service behind each.

  benchmarks/e2e/compare.sh tls [BUILD_DIR] [--quick] [--rounds 3] [--duration 5]
                                [--conns 16] [--hs-conns 16] [--pin] [--out DIR]

(or python3 benchmarks/e2e/tls.py with the same arguments, once nginx, haproxy and wrk are
installed; compare.sh installs them.)

One ECDSA P-256 self-signed certificate (SAN localhost, 127.0.0.1) is made with the openssl CLI in
the run's temporary directory and served by l7px (1 worker, [tls] listener), NGINX (1
worker_process, keep-alive upstream) and HAProxy (nbthread 1, http-reuse always), each with its
own instance of the service. All three offer TLS 1.2 and 1.3 with the same suites: TLS 1.3 as
OpenSSL's defaults (what l7px uses), TLS 1.2 as l7px's Mozilla "intermediate" list; the groups
are OpenSSL's defaults for all. Session tickets on everywhere (see SESSION_NOTE). What each
actually negotiated is printed with the results.

For each configuration, interleaved, --rounds times, every run bounded in time:
  (a) keep-alive HTTPS: wrk, --conns connections, 1 thread, --duration s: RPS, p50, p99;
  (b) full handshakes: l7px-tls-load, --hs-conns connections, each a new connection with a full
      handshake (no session offered), one GET with Connection: close, read to the close;
  (b') resumed handshakes: the same, each connection offering its newest ticket (--resume);
  (c) the proxy's CPU (utime + stime of all its processes, /proc) over each run divided by the
      requests of the run.
The table gives medians (min-max), the ratios of l7px to the better peer and the targets of
issue #19 item 9. Like the side-by-side harness, nothing is pinned by default: proxy, service
and client share the machine's CPUs as the scheduler decides; --pin puts the proxy on CPU 0 and
the client (wrk, l7px-tls-load) and the service on the others (taskset; not used for the
results in benchmarks/results/tls.md).

Loopback only; every process started is stopped by PID; the temporary directory (key included)
is removed at the end unless --keep-tmp.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402  (its atexit and signal handlers stop our children too)
from harness import (LOOPBACK, REPO, CLK_TCK, Stack, fmt_range, med, sample, start,  # noqa: E402
                     wait_log, wait_port, write_csv, version, shown, mtime, git_commit)

CONFIGS = ["l7px", "nginx-ka", "haproxy"]
LABELS = {"l7px": "l7px", "nginx-ka": "NGINX (keep-alive upstream)",
          "haproxy": "HAProxy (http-reuse always)"}

# TLS 1.3: OpenSSL's default suites, in its order, which l7px uses (src/proxy/transport/
# tls_context.cc sets only the TLS 1.2 list). TLS 1.2: l7px's default list.
TLS13_SUITES = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                 "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305")
# OpenSSL 3's default groups, spelled out for HAProxy, whose default list may differ.
GROUPS = "X25519:P-256:X448:P-521:P-384"

SESSION_NOTE = (
    "Session resumption, as close to l7px's defaults as each allows: l7px `session_tickets = "
    "true` (OpenSSL's stateless tickets with its own keys, OpenSSL's internal session cache, "
    "session timeout 2 h); NGINX `ssl_session_tickets on; ssl_session_cache builtin:20480; "
    "ssl_session_timeout 2h` (the same OpenSSL mechanisms and sizes); HAProxy its defaults "
    "(tickets on, its own shared session cache of 20,000 entries). In TLS 1.3 all three resume "
    "from stateless tickets; the tickets sent per full handshake are measured below.")

TARGETS = [  # (key, label, direction, bound)
    ("rps", "keep-alive HTTPS RPS", "higher", 1.15),
    ("full_rate", "full handshakes/s (1 request each)", "higher", 0.95),
    ("cpu_ka", "proxy CPU-µs/request, keep-alive", "lower", 0.8),
    ("cpu_full", "proxy CPU-µs/request, full handshakes", "lower", 0.8),
    ("resumed_rate", "resumed handshakes/s (1 request each)", "higher", None),
    ("cpu_resumed", "proxy CPU-µs/request, resumed handshakes", "lower", None),
]


def make_certificate(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    combined = os.path.join(d, "cert+key.pem")  # HAProxy's crt: chain and key in one file
    with open(combined, "w") as out:
        for p in (cert, key):
            with open(p) as f:
                out.write(f.read())
    return cert, key, combined


def pinned(h, argv, role):
    if not h.pin:
        return argv
    ncpu = os.cpu_count() or 1
    cpus = "0" if role == "proxy" or ncpu < 2 else f"1-{ncpu - 1}"
    return ["taskset", "-c", cpus] + argv


class TlsStack(Stack):
    """A proxy terminating TLS on tls_port, with its own service instance (harness.Stack)."""

    scheme = "https"

    def __init__(self, kind, h):
        super().__init__(kind, h, ["--size", str(h.size), "--delay-ms", "0"], h.slots)
        self.tls_port = self.front + 2

    @property
    def url_port(self):
        return self.tls_port

    def start(self):
        h, d, k = self.h, self.h.tmp, self.kind
        for p in (self.front, self.upstream_port, self.tls_port):
            if not harness.port_free(p):
                raise RuntimeError(f"port {p} is in use; pick another --port-base")
        svc_log = f"{d}/{k}-service.log"
        if k == "l7px":
            cfg = harness.l7px_config(d, self.front, self.upstream_port, 1) + f"""
[tls]
listen = ["{LOOPBACK}:{self.tls_port}"]
{h.l7px_tls.replace(";", chr(10))}
[[tls.certificate]]
cert = "{h.cert}"
key = "{h.key}"
"""
            path = self._write("tls-l7px.toml", cfg)
            self.proxy = start(pinned(h, [h.l7px, "-c", path], "proxy"), f"{d}/{k}.log")
            if not wait_port(self.tls_port, self.proxy):
                raise RuntimeError(f"l7px did not start; see {d}/{k}.log")
            self.service = start(pinned(h, [h.service, "--proxy", f"{LOOPBACK}:"
                                            f"{self.upstream_port}", "--slots", str(self.slots)] +
                                        self.service_args, "client"), svc_log)
            if not wait_log(svc_log, "ready", self.service, timeout=20):
                raise RuntimeError(f"service did not register with l7px; see {svc_log}")
            return
        self.service = start(pinned(h, [h.service, "--listen", f"{LOOPBACK}:{self.upstream_port}"]
                                    + self.service_args, "client"), svc_log)
        if not wait_port(self.upstream_port, self.service):
            raise RuntimeError(f"service did not listen; see {svc_log}")
        upstream = f"{LOOPBACK}:{self.upstream_port}"
        if k == "nginx-ka":
            os.makedirs(f"{d}/{k}-tmp", exist_ok=True)
            plain = f"    listen {LOOPBACK}:{self.front} backlog=4096;\n"
            cfg = harness.nginx_config(d, k, self.front, upstream, 1, True)
            assert plain in cfg
            cfg = cfg.replace(plain, f"""    listen {LOOPBACK}:{self.tls_port} ssl backlog=4096;
    ssl_certificate {h.cert};
    ssl_certificate_key {h.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers {TLS12_CIPHERS};
    ssl_conf_command Ciphersuites {TLS13_SUITES};
    ssl_session_tickets on;
    ssl_session_cache builtin:20480;
    ssl_session_timeout 2h;
""")
            path = self._write("tls-nginx.conf", cfg)
            self.proxy = start(pinned(h, [h.nginx, "-p", d, "-e", f"{d}/{k}.error.log", "-c",
                                          path], "proxy"), f"{d}/{k}.log")
        else:
            cfg = harness.haproxy_config(self.front, upstream, 1)
            plain = f"  bind {LOOPBACK}:{self.front}\n"
            assert plain in cfg and "X-Forwarded-Proto http " in cfg
            cfg = cfg.replace(plain, f"  bind {LOOPBACK}:{self.tls_port} ssl crt {h.combined} "
                              "alpn http/1.1\n")
            cfg = cfg.replace("X-Forwarded-Proto http ", "X-Forwarded-Proto https ")
            cfg = cfg.replace("  maxconn 8192\n", f"""  maxconn 8192
  ssl-default-bind-ciphersuites {TLS13_SUITES}
  ssl-default-bind-ciphers {TLS12_CIPHERS}
  ssl-default-bind-curves {GROUPS}
  ssl-default-bind-options ssl-min-ver TLSv1.2
""")
            path = self._write("tls-haproxy.cfg", cfg)
            self.proxy = start(pinned(h, [h.haproxy, "-db", "-f", path], "proxy"),
                               f"{d}/{k}.log")
        if not wait_port(self.tls_port, self.proxy):
            raise RuntimeError(f"{k} did not start; see {d}/{k}.log")


def busy_ticks():
    """Non-idle ticks of the whole machine (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # less idle and iowait


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Machine:
    """What else ran during a run: the machine's busy time less the proxy's, the service's and
    the client's (this is a shared machine; a run with much of it measured the neighbours)."""

    def __init__(self, stack):
        self.stack = stack
        self.pids = stack.proxy_pids() + stack.service_pids()
        self.t0, self.b0 = time.monotonic(), busy_ticks()
        self.o0, self.c0 = sample(self.pids)["ticks"], children_cpu()

    def end(self):
        """(others' share of all CPUs in %, the client's CPU in % of one CPU), since __init__."""
        elapsed = time.monotonic() - self.t0
        busy = busy_ticks() - self.b0
        client = (children_cpu() - self.c0) * CLK_TCK  # the client exited and was reaped
        ours = sample(self.pids)["ticks"] - self.o0 + client
        return (max(0.0, (busy - ours) * 100.0 / (CLK_TCK * elapsed * (os.cpu_count() or 1))),
                client * 100.0 / (CLK_TCK * elapsed))


def run_keepalive(h, stack):
    m = Machine(stack)
    mask = os.sched_getaffinity(0)
    if h.pin and (os.cpu_count() or 1) > 1:  # wrk (harness.run_wrk) inherits the client CPUs
        os.sched_setaffinity(0, set(range(1, os.cpu_count())))
    try:
        r = harness.run_wrk(h, stack, h.conns, h.duration)
    finally:
        os.sched_setaffinity(0, mask)
    foreign, client = m.end()
    return {"rps": r["rps"], "p50_us": r["p50_us"], "p99_us": r["p99_us"],
            "cpu_ka": r["proxy_cpu_us"], "ka_errors": r["errors"] + r["err_status"],
            "ka_requests": r["requests"], "ka_foreign_pct": foreign, "ka_client_pct": client,
            "ka_proxy_pct": r["proxy_cpu_us"] * r["rps"] / 1e4,
            "ka_svc_pct": r["svc_cpu_us"] * r["rps"] / 1e4,
            "steal_pct": r["steal_pct"]}


def run_handshakes(h, stack, resume):
    argv = pinned(h, [h.loadgen, "--port", str(stack.url_port), "--conns", str(h.hs_conns),
                      "--threads", str(h.hs_threads), "--duration", str(h.duration)] + (["--resume"] if resume else []),
                  "client")
    pids = stack.proxy_pids()
    m = Machine(stack)
    p0 = sample(pids)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    harness._children.append(proc)
    try:
        out, _ = proc.communicate(timeout=h.duration + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    harness._children.remove(proc)
    p1 = sample(pids)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"l7px-tls-load failed against {stack.kind}:\n{out}")
    r = json.loads(lines[-1])
    r["cpu"] = (p1["ticks"] - p0["ticks"]) * 1e6 / CLK_TCK / max(r["done"], 1)
    r["foreign_pct"], r["client_pct"] = m.end()
    r["errors"] = sum(r[k] for k in ("err_connect", "err_handshake", "err_io", "err_status",
                                     "err_timeout"))
    return r


def wait_quiet(h):
    """Waits (at most --quiet-wait s) for half a second in which the machine, where our own
    processes are idle between runs, was busy less than --max-others % of its CPUs."""
    if h.max_others <= 0:
        return
    deadline = time.monotonic() + h.quiet_wait
    while True:
        b0, t0 = busy_ticks(), time.monotonic()
        time.sleep(0.5)
        pct = (busy_ticks() - b0) * 100.0 / (CLK_TCK * (time.monotonic() - t0) *
                                             (os.cpu_count() or 1))
        if pct <= h.max_others or time.monotonic() >= deadline:
            return
        h.log(f"waiting for the machine to quieten: {pct:.0f}% busy")


def quiet_run(h, k, what, fn, foreign_key):
    """fn(), run again (at most --retries times) while others used more than --max-others % of
    the machine during it: such a run measured the neighbours as much as the proxy."""
    wait_quiet(h)
    r = fn()
    reruns = 0
    while h.max_others > 0 and r[foreign_key] > h.max_others and reruns < h.retries:
        h.log(f"{k} {what}: others used {r[foreign_key]:.0f}% of the CPUs (> {h.max_others:g}"
              "%): running it again")
        wait_quiet(h)
        r = fn()
        reruns += 1
    time.sleep(h.pause)
    r["reruns"] = reruns
    return r


def measure(h, stacks):
    rows = []
    total = h.rounds * len(h.configs)
    for rnd in range(h.rounds):
        for i, k in enumerate(h.configs):
            s = stacks[k]
            row = {"config": k, "round": rnd}
            ka = quiet_run(h, k, "keep-alive", lambda: run_keepalive(h, s), "ka_foreign_pct")
            row.update(ka)
            full = quiet_run(h, k, "full", lambda: run_handshakes(h, s, False), "foreign_pct")
            res = quiet_run(h, k, "resumed", lambda: run_handshakes(h, s, True), "foreign_pct")
            row["reruns"] = ka["reruns"] + full["reruns"] + res["reruns"]
            row.update({"full_rate": full["rate"], "cpu_full": full["cpu"],
                        "full_p50_us": full["p50_us"], "full_p99_us": full["p99_us"],
                        "full_errors": full["errors"], "full_foreign_pct": full["foreign_pct"],
                        "full_client_pct": full["client_pct"],
                        "tickets": full["tickets_per_handshake"],
                        "full_resumed": full["resumed"],
                        "resumed_rate": res["resumed_rate"], "res_rate": res["rate"],
                        "res_full": res["full"], "cpu_resumed": res["cpu"],
                        "res_errors": res["errors"], "res_foreign_pct": res["foreign_pct"],
                        "version": full["version"], "cipher": full["cipher"],
                        "group": full["group"], "res_cipher": res["cipher"]})
            dead = s.dead()
            if dead:
                row["died"] = "+".join(dead)
                h.log(f"WARNING: {k}: {' and '.join(dead)} exited (logs in {h.tmp}); restarting")
                h.keep_tmp = True
                s.stop()
                s.start()
            rows.append(row)
            h.log(f"[{rnd * len(h.configs) + i + 1}/{total}] {k:8s} ka rps={row['rps']:>8,.0f} "
                  f"p99={row['p99_us'] / 1e3:.2f}ms cpu/req={row['cpu_ka']:.1f} | full "
                  f"{row['full_rate']:>6,.0f}/s cpu/req={row['cpu_full']:.0f} err="
                  f"{row['full_errors']} | resumed {row['resumed_rate']:>6,.0f}/s cpu/req="
                  f"{row['cpu_resumed']:.0f} | {row['cipher']} {row['group']} "
                  f"tickets={row['tickets']:.1f} | ka CPU% proxy/service/client "
                  f"{row['ka_proxy_pct']:.0f}/{row['ka_svc_pct']:.0f}/{row['ka_client_pct']:.0f}"
                  f" | full hs client CPU {row['full_client_pct']:.0f}% | others' CPU {row['ka_foreign_pct']:.0f}/"
                  f"{row['full_foreign_pct']:.0f}/{row['res_foreign_pct']:.0f}%")
    return rows


def ratio_cells(rows, key, direction, bound):
    """l7px over the better peer (by median), per round and of the medians; met or not."""
    meds = {k: med([r[key] for r in rows if r["config"] == k]) for k in CONFIGS}
    peers = [k for k in CONFIGS if k != "l7px" and meds[k] is not None]
    if meds["l7px"] is None or not peers:
        return None
    pick = max if direction == "higher" else min
    best = pick(peers, key=lambda k: meds[k])
    ratio = meds["l7px"] / meds[best] if meds[best] else None
    per_round = [a[key] / b[key] for a in rows if a["config"] == "l7px"
                 for b in rows if b["config"] == best and b["round"] == a["round"] and b[key]]
    if bound is None or ratio is None:
        verdict = "(no target)"
    else:
        ok = ratio >= bound if direction == "higher" else ratio <= bound
        verdict = "**met**" if ok else "**not met**"
    target = "—" if bound is None else ("≥ " if direction == "higher" else "≤ ") + f"{bound:g}×"
    return meds["l7px"], LABELS[best], meds[best], ratio, fmt_range(per_round, 2), target, verdict


def markdown(h, rows, stamp):
    ms = lambda key, r_: fmt_range([r[key] for r in r_], 2, 1e-3)  # noqa: E731
    lines = [stamp, "",
             f"Medians of {h.rounds} interleaved round(s), (min–max) when repeated; each run "
             f"{h.duration} s. Service `{os.path.basename(h.service)}` --size {h.size} behind "
             f"each proxy ({h.slots} slots for l7px); 1 worker / worker_process / thread per "
             f"proxy. Keep-alive: `wrk -t1 -c{h.conns}` over HTTPS. Handshakes: "
             f"`l7px-tls-load --conns {h.hs_conns}` (a new connection, one GET with "
             "Connection: close, read to the close); full = no session offered, resumed = "
             "each connection offers its newest ticket. Proxy CPU: utime + stime of all the "
             "proxy's processes over the run, per completed request. "
             + ("Pinned: proxy on CPU 0, client and service on the others (`--pin`)." if h.pin
                else "Not pinned (as the side-by-side harness): proxy, service and client share "
                "the CPUs as the scheduler decides."), "",
             "What was negotiated (the load generator's first handshake; wrk uses the same "
             "OpenSSL defaults):", "",
             "| configuration | protocol | cipher suite | group | tickets per full handshake "
             "| cipher, resumed |", "|---|---|---|---|---:|---|"]
    for k in CONFIGS:
        rs = [r for r in rows if r["config"] == k]
        if rs:
            lines.append(f"| {LABELS[k]} | {rs[0]['version']} | {rs[0]['cipher']} | "
                         f"{rs[0]['group']} | {fmt_range([r['tickets'] for r in rs], 1)} | "
                         f"{rs[0]['res_cipher']} |")
    lines += ["", SESSION_NOTE, "",
              "| configuration | keep-alive RPS | p50 ms | p99 ms | CPU-µs/req | full "
              "handshakes/s | CPU-µs/req | conn p50 ms | conn p99 ms | resumed/s | CPU-µs/req | "
              "errors | keep-alive CPU %: proxy / service / wrk | full handshakes: client CPU % | "
              "others' CPU % |", "|---|" + "---:|" * 14]
    for k in CONFIGS:
        rs = [r for r in rows if r["config"] == k]
        if not rs:
            continue
        errors = sum(r["ka_errors"] + r["full_errors"] + r["res_errors"] for r in rs)
        foreign = [max(r["ka_foreign_pct"], r["full_foreign_pct"], r["res_foreign_pct"])
                   for r in rs]
        lines.append(
            f"| {LABELS[k]} | {fmt_range([r['rps'] for r in rs])} | {ms('p50_us', rs)} | "
            f"{ms('p99_us', rs)} | {fmt_range([r['cpu_ka'] for r in rs], 1)} | "
            f"{fmt_range([r['full_rate'] for r in rs])} | "
            f"{fmt_range([r['cpu_full'] for r in rs])} | {ms('full_p50_us', rs)} | "
            f"{ms('full_p99_us', rs)} | {fmt_range([r['resumed_rate'] for r in rs])} | "
            f"{fmt_range([r['cpu_resumed'] for r in rs])} | {errors}"
            f"{' (a process died)' if any(r.get('died') for r in rs) else ''} | "
            f"{med([r['ka_proxy_pct'] for r in rs]):.0f} / {med([r['ka_svc_pct'] for r in rs]):.0f}"
            f" / {med([r['ka_client_pct'] for r in rs]):.0f} | "
            f"{fmt_range([r['full_client_pct'] for r in rs], 0)} | {fmt_range(foreign, 0)} |")
    reruns = sum(r["reruns"] for r in rows)
    noisy = sum(1 for r in rows for key in ("ka_foreign_pct", "full_foreign_pct",
                                             "res_foreign_pct") if r[key] > h.max_others)
    lines += ["", f"A run during which others used more than {h.max_others:g} % of the CPUs was "
              f"run again (up to {h.retries} times): {reruns} rerun(s); {noisy} run(s) still "
              "above it in the end (their numbers stand, marked by the last column)."
              if h.max_others > 0 else "Runs were not repeated for others' load."]
    lines += ["", "CPU %: CPU time over the run in % of one CPU (medians): in the keep-alive "
              "runs the proxy's, the service's and wrk's, whose sum near the machine's 200 % "
              "says the machine, not one process, set the rate (then a proxy's saving shows in "
              "RPS only net of what the service behind it costs); in the handshake runs "
              "l7px-tls-load's, near 100 %: the client, not the proxy, set the rate, and the "
              "proxy's CPU per request is the measure that tells the proxies apart. Others' CPU: "
              "the machine's busy time during the run less the proxy's, the service's and the "
              "client's, as a share of all CPUs (the worst of the three runs of a round); high "
              "values mean a neighbour shared the machine.", "",
              "Targets (issue #19 item 9): l7px over the better of NGINX and HAProxy (the better "
              "by median); ratio of the medians, (min–max) of the per-round ratios.", "",
              "| metric | l7px | better peer | peer | ratio | per round | target | |",
              "|---|---:|---|---:|---:|---:|---:|---|"]
    for key, label, direction, bound in TARGETS:
        cells = ratio_cells(rows, key, direction, bound)
        if cells is None:
            continue  # --configs without l7px or without a peer
        mine, peer, theirs, ratio, per_round, target, verdict = cells
        digits = 1 if key.startswith("cpu") else 0
        lines.append(f"| {label} | {mine:,.{digits}f} | {peer} | {theirs:,.{digits}f} | "
                     f"{'—' if ratio is None else f'{ratio:.2f}'} | {per_round} | {target} | "
                     f"{verdict} |")
    return "\n".join(lines) + "\n"


def machine_report(h, tools, built, configs):
    """The "Machine and tools" lines of a result file: CPU, kernel and load; the `tools` version
    commands; the `built` binaries with their build times; the `configs` line."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return ["", "Machine and tools:", "",
            f"- {os.cpu_count()} CPUs, {cpu}; kernel {platform.release()}; load average at the "
            f"start {h.load_start:.2f}, at the end {os.getloadavg()[0]:.2f}",
            "- " + "; ".join(version(cmd) for cmd in tools),
            "- " + "; ".join(f"`{shown(b)}` built {mtime(b)}" for b in built),
            f"- configurations: {configs} (`$TMP` is the run's temporary directory)", ""]


def machine_lines(h):
    return machine_report(
        h, [["openssl", "version"], [h.nginx, "-v"], [h.haproxy, "-v"], [h.wrk, "--version"]],
        [h.l7px, h.loadgen],
        "`configs/tls-l7px.toml`, `configs/tls-nginx.conf`, `configs/tls-haproxy.cfg`")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="compare.sh tls", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("build", nargs="?", default=os.path.join(REPO, "build"))
    p.add_argument("--service", help="service binary (default: <build>/l7px-bench-service)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=5, help="seconds per run")
    p.add_argument("--conns", type=int, default=16, help="wrk keep-alive connections")
    p.add_argument("--hs-conns", type=int, default=16,
                   help="l7px-tls-load connections in parallel")
    p.add_argument("--hs-threads", type=int, default=1,
                   help="l7px-tls-load threads (each its own share of --hs-conns)")
    p.add_argument("--l7px-tls", default="",
                   help="extra lines for l7px's [tls] section, e.g. 'session_tickets = false'")
    p.add_argument("--size", type=int, default=128, help="response body bytes")
    p.add_argument("--slots", type=int, default=64, help="slots the service registers with l7px")
    p.add_argument("--warmup", type=int, default=1, help="seconds of wrk per stack first")
    p.add_argument("--pause", type=float, default=0.3)
    p.add_argument("--max-others", type=float, default=10.0,
                   help="run a run again when other processes used more than this percentage "
                   "of all CPUs during it (default 10; 0 = never)")
    p.add_argument("--retries", type=int, default=3, help="how many times at most (default 3)")
    p.add_argument("--quiet-wait", type=float, default=30,
                   help="seconds to wait at most, before each run, for the machine to be idle "
                   "(below --max-others) (default 30)")
    p.add_argument("--configs", default=",".join(CONFIGS),
                   help=f"subset/order of {','.join(CONFIGS)}")
    p.add_argument("--pin", action="store_true",
                   help="taskset: proxy on CPU 0, client and service on the others")
    p.add_argument("--quick", action="store_true",
                   help="1 round of 1 s runs, no reruns (under a minute)")
    p.add_argument("--port-base", type=int, default=26000)
    p.add_argument("--out", help="results directory (default benchmarks/results, "
                   "benchmarks/results/quick with --quick)")
    p.add_argument("--keep-tmp", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        for key, value in {"rounds": 1, "duration": 1, "warmup": 0, "pause": 0.1, "retries": 0,
                           "quiet_wait": 2}.items():
            if "--" + key.replace("_", "-") not in argv:
                setattr(a, key, value)
    a.configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    for c in a.configs:
        if c not in CONFIGS:
            p.error(f"unknown configuration {c}")
    a.out = os.path.abspath(a.out or os.path.join(REPO, "benchmarks", "results",
                                                  "quick" if a.quick else ""))
    return a


def main():
    argv = sys.argv[1:]
    a = parse_args(argv)
    # What harness.Harness and its helpers read (run_wrk, Stack, the config writers).
    a.workers, a.wrk_threads, a.peer_headers, a.busy_poll = 1, 1, "same", "0"
    h = harness.Harness(a)
    h.loadgen = os.path.join(os.path.abspath(a.build), "benchmarks", "l7px-tls-load")
    h.load_start = os.getloadavg()[0]
    h.check()
    for tool in [h.loadgen] + (["taskset"] if h.pin else []):
        if not shutil.which(tool):
            sys.exit(f"missing: {tool} (make build)")
    h.cert, h.key, h.combined = make_certificate(h.tmp)
    stamp = (f"_{datetime.datetime.now().astimezone().isoformat(timespec='seconds')} · commit "
             f"{git_commit()} · `benchmarks/e2e/compare.sh tls "
             f"{' '.join(shown(x) if os.path.isabs(x) else x for x in argv)}`_")
    t0 = time.monotonic()
    stacks = {k: TlsStack(k, h) for k in h.configs}
    try:
        for s in stacks.values():
            s.start()
            h.remember_config(s)
            if h.warmup > 0:
                harness.run_wrk(h, s, h.conns, h.warmup)
        rows = measure(h, stacks)
    finally:
        for s in stacks.values():
            s.stop()
        harness._kill_all()
    md = markdown(h, rows, stamp) + "\n".join(machine_lines(h))
    with open(os.path.join(h.out, "tls.md"), "w") as f:
        f.write(md)
    write_csv(os.path.join(h.out, "tls.csv"), rows,
              ["config", "round", "rps", "p50_us", "p99_us", "cpu_ka", "ka_errors",
               "ka_proxy_pct", "ka_svc_pct", "ka_client_pct", "ka_foreign_pct", "steal_pct", "full_rate", "cpu_full", "full_p50_us",
               "full_p99_us", "full_errors", "full_client_pct", "full_foreign_pct", "tickets", "resumed_rate",
               "cpu_resumed", "res_errors", "res_foreign_pct", "reruns", "version", "cipher",
               "group"])
    cdir = os.path.join(h.out, "configs")
    os.makedirs(cdir, exist_ok=True)
    for name, text in h.configs_used.items():
        with open(os.path.join(cdir, name), "w") as f:
            f.write(text)
    print(md)
    if not h.keep_tmp:
        shutil.rmtree(h.tmp, ignore_errors=True)
    h.log(f"tls: done in {time.monotonic() - t0:.0f}s; results in {h.out}")


if __name__ == "__main__":
    main()
