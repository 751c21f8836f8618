#!/usr/bin/env python3
"""Side-by-side benchmark of l7px against NGINX and HAProxy, and the papers' experiments.

Run through compare.sh, which installs the tools first. Subcommands:
  compare      the same service behind l7px, NGINX (no upstream keep-alive), NGINX (keep-alive
               upstreams), HAProxy (http-reuse always), and hit directly; wrk sweep over
               connection counts, configurations interleaved, repeated
  qps          deterministic QPS: K slots x S ms service time under 1x, 4x, 16x overload
  spike        0 -> 10x capacity burst and back
  slow         slow clients mixed with fast ones: the fast clients' p99
  timewait     TIME_WAIT sockets and ephemeral ports after 100k requests
  experiments  qps + spike + slow + timewait
  all          compare + experiments (the default)
  profile      where each proxy's CPU goes (perf): its own code, libraries, and the kernel's
               send, receive, wake-up and scheduling paths, per request (not part of all)

Every process started here is killed by PID when the run ends, fails or is interrupted. Only
loopback addresses are used, and every load run is bounded in time.
"""

import argparse
import atexit
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOOPBACK = "127.0.0.1"

LABELS = {
    "l7px": "l7px",
    "l7px-unix": "l7px (UNIX slots)",
    "nginx": "NGINX (no upstream keep-alive)",
    "nginx-ka": "NGINX (keep-alive upstreams)",
    "nginx-unix": "NGINX (keep-alive, UNIX-socket upstream)",
    "haproxy": "HAProxy (http-reuse always)",
    "direct": "service direct",
}
PEERS = ["nginx", "nginx-ka", "nginx-unix", "haproxy"]

# ----------------------------------------------------------------------------- processes

_children = []  # every Popen we started, killed by PID at exit


def _kill_all():
    for proc in reversed(_children):
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    for proc in reversed(_children):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
    _children.clear()


def _on_signal(signum, _frame):
    _kill_all()
    sys.exit(128 + signum)


atexit.register(_kill_all)
for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


def start(argv, log_path):
    log = open(log_path, "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    _children.append(proc)
    return proc


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    if proc in _children:
        _children.remove(proc)


def wait_port(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_log(path, text, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if text.encode() in f.read():
                    return True
        except OSError:
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
            return True
        except OSError:
            return False


# ----------------------------------------------------------------------------- /proc sampling

def child_pids(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def ctx_switches(pid):
    """(voluntary, involuntary) context switches summed over every thread of the process.

    Voluntary: a thread blocked (a worker waiting for completions). Involuntary: the scheduler
    took the CPU away from a runnable thread, e.g. for wrk or the service on a small machine.
    """
    vol = invol = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol += int(line.split()[1])
        except OSError:
            pass
    return vol, invol


def sample(pids):
    switches = [ctx_switches(p) for p in pids]
    return {"ticks": sum(cpu_ticks(p) for p in pids), "csw": sum(v + i for v, i in switches),
            "csw_invol": sum(i for _, i in switches)}


def steal_ticks():
    """Ticks the hypervisor ran something else while this VM's CPUs wanted to run (all CPUs)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()  # cpu user nice system idle iowait irq softirq steal ...
    return int(fields[8]) if len(fields) > 8 else 0


_TW_RE = re.compile(r"(\S+):(\d+)\s+(\S+):(\d+).*timer:\(timewait,(\d+)(min|sec|ms)")


def sockets(ports, state=None):
    """(local_port, peer_port, seconds left in TIME_WAIT or None) of TCP sockets on `ports`."""
    argv = ["ss", "-tanH", "-o"]
    if state:
        argv += ["state", state]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    rows = []
    for line in out.splitlines():
        m = re.search(r"(\S+):(\d+)\s+(\S+):(\d+)", line)
        if not m:
            continue
        lp, pp = int(m.group(2)), int(m.group(4))
        if lp not in ports and pp not in ports:
            continue
        left = None
        t = re.search(r"timer:\(timewait,(\d+)(min|sec|ms)", line)
        if t:
            left = int(t.group(1)) * {"min": 60, "sec": 1, "ms": 0.001}[t.group(2)]
        rows.append((lp, pp, left))
    return rows


def time_wait_since(ports, seconds_ago):
    """TIME_WAIT sockets on `ports` that entered TIME_WAIT in the last `seconds_ago` seconds
    (Linux keeps them 60 s), so leftovers of earlier runs are not counted."""
    threshold = 60 - seconds_ago - 1
    return sum(1 for _, _, left in sockets(ports, "time-wait")
               if left is not None and left >= threshold)


# ----------------------------------------------------------------------------- configs

def l7px_config(d, front, register, workers, queue=1024, queue_timeout="1s", unix=False,
                busy_poll="0"):
    reg = f"unix:{d}/register.sock" if unix else f"{LOOPBACK}:{register}"
    return f"""[server]
workers = {workers}
listen = ["{LOOPBACK}:{front}"]
keepalive_timeout = "75s"
busy_poll = "{busy_poll}"

[register]
listen = ["{reg}"]

[admin]
listen = ""

[upgrade]
socket = "{d}/upgrade-{'unix' if unix else 'tcp'}.sock"

[log]
level = "warn"
access = "off"

[[pool]]
name = "default"
max_slots = 4096
queue = {queue}
queue_timeout = "{queue_timeout}"
response_timeout = "60s"

[[route]]
host = "*"
path = "/"
pool = "default"
"""


# With --peer-headers same (the default), NGINX and HAProxy tell the service what l7px tells it
# on every request: the client's Host, X-Forwarded-For (appended to), X-Forwarded-Proto,
# X-Forwarded-Host and X-Request-Id (each kept when the client sent one), and Via. Without
# them a peer does less work per request than l7px does, and so does the service behind it,
# which parses fewer header fields. --peer-headers none: the peers' bare defaults.
NGINX_SAME_HEADERS_HTTP = """  map $http_x_forwarded_proto $fwd_proto {
    default $http_x_forwarded_proto;
    "" $scheme;
  }
  map $http_x_forwarded_host $fwd_host {
    default $http_x_forwarded_host;
    "" $http_host;
  }
  map $http_x_request_id $fwd_request_id {
    default $http_x_request_id;
    "" $request_id;
  }
  map $http_via $fwd_via {
    default "$http_via, 1.1 nginx";
    "" "1.1 nginx";
  }
"""
NGINX_SAME_HEADERS_LOCATION = """      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $fwd_proto;
      proxy_set_header X-Forwarded-Host $fwd_host;
      proxy_set_header X-Request-Id $fwd_request_id;
      proxy_set_header Via $fwd_via;
"""
HAPROXY_SAME_HEADERS = """  option forwardfor
  unique-id-format %{+X}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid
  http-request set-header X-Forwarded-Proto http unless { req.hdr(x-forwarded-proto) -m found }
  http-request set-header X-Forwarded-Host %[req.hdr(host)] unless { req.hdr(x-forwarded-host) -m found }
  http-request set-header X-Request-Id %[unique-id] unless { req.hdr(x-request-id) -m found }
  http-request add-header Via "1.1 haproxy"
"""


def nginx_config(d, name, front, upstream, workers, keepalive, same_headers=True):
    tmp = f"{d}/{name}-tmp"
    ka_upstream = "    keepalive 256;\n    keepalive_requests 1000000;\n" if keepalive else ""
    ka_location = ("      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n"
                   if keepalive else "")
    if same_headers:
        ka_location += NGINX_SAME_HEADERS_LOCATION
    return f"""daemon off;
master_process on;
worker_processes {workers};
pid {d}/{name}.pid;
error_log {d}/{name}.error.log warn;
worker_rlimit_nofile 16384;
events {{
  worker_connections 8192;
}}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
{NGINX_SAME_HEADERS_HTTP if same_headers else ""}  upstream service {{
    server {upstream};
{ka_upstream}  }}
  server {{
    listen {LOOPBACK}:{front} backlog=4096;
    location / {{
      proxy_pass http://service;
{ka_location}    }}
  }}
}}
"""


def haproxy_config(front, upstream, workers, same_headers=True):
    return f"""global
  nbthread {workers}
  maxconn 8192

defaults
  mode http
  timeout connect 5s
  timeout client 75s
  timeout server 60s
  timeout http-keep-alive 75s
  http-reuse always

frontend fe
  bind {LOOPBACK}:{front}
{HAPROXY_SAME_HEADERS if same_headers else ""}  default_backend be

backend be
  server s1 {upstream}
"""


# ----------------------------------------------------------------------------- stacks

class Stack:
    """One configuration: a proxy (or none) and its own instance of the service."""

    def __init__(self, kind, h, service_args, slots, l7px_queue=1024, l7px_queue_timeout="1s"):
        self.kind, self.h = kind, h
        self.service_args, self.slots = service_args, slots
        self.l7px_queue, self.l7px_queue_timeout = l7px_queue, l7px_queue_timeout
        base = h.port_base + 10 * list(LABELS).index(kind)
        self.front, self.upstream_port = base, base + 1
        self.proxy = self.service = None
        self.proxy_config = None

    @property
    def url_port(self):
        return self.front  # the service itself listens there for "direct"

    def relevant_ports(self):
        """Ports whose sockets the proxy creates toward the service."""
        return {self.upstream_port} if self.kind != "direct" else {self.front}

    def proxy_pids(self):
        if self.proxy is None:
            return []
        return [self.proxy.pid] + child_pids(self.proxy.pid)

    def service_pids(self):
        return [self.service.pid] if self.service is not None else []

    def start(self):
        h, d, k = self.h, self.h.tmp, self.kind
        for p in (self.front, self.upstream_port):
            if not port_free(p):
                raise RuntimeError(f"port {p} is in use; pick another --port-base")
        svc_log = f"{d}/{k}-service.log"
        if k.startswith("l7px"):
            unix = k == "l7px-unix"
            cfg = l7px_config(d, self.front, self.upstream_port, h.workers, self.l7px_queue,
                              self.l7px_queue_timeout, unix, h.busy_poll)
            path = self._write(f"{k}.toml", cfg)
            self.proxy = start([h.l7px, "-c", path], f"{d}/{k}.log")
            if not wait_port(self.front, self.proxy):
                raise RuntimeError(f"{k} did not start; see {d}/{k}.log")
            reg = f"unix:{d}/register.sock" if unix else f"{LOOPBACK}:{self.upstream_port}"
            self.service = start([h.service, "--proxy", reg, "--slots", str(self.slots)] +
                                 self.service_args, svc_log)
            if not wait_log(svc_log, "ready", self.service, timeout=20):
                raise RuntimeError(f"service did not register with {k}; see {svc_log}")
            return
        listen_port = self.front if k == "direct" else self.upstream_port
        if k == "nginx-unix":
            # NGINX's workers run as an unprivileged user: the socket must be reachable for them
            # (the run's temporary directory is private).
            sock_dir = f"{d}/unix-upstream"
            os.makedirs(sock_dir, mode=0o755, exist_ok=True)
            os.chmod(d, 0o755)
            sock = f"{sock_dir}/service.sock"
            self.service = start([h.service, "--listen", f"unix:{sock}"] + self.service_args,
                                 svc_log)
            if not wait_log(svc_log, "ready", self.service, timeout=20):
                raise RuntimeError(f"service did not listen; see {svc_log}")
            os.chmod(sock, 0o666)
            upstream = f"unix:{sock}"
        else:
            self.service = start([h.service, "--listen", f"{LOOPBACK}:{listen_port}"] +
                                 self.service_args, svc_log)
            if not wait_port(listen_port, self.service):
                raise RuntimeError(f"service did not listen; see {svc_log}")
            upstream = f"{LOOPBACK}:{self.upstream_port}"
        if k in ("nginx", "nginx-ka", "nginx-unix"):
            os.makedirs(f"{d}/{k}-tmp", exist_ok=True)
            path = self._write(f"{k}.conf",
                               nginx_config(d, k, self.front, upstream, h.workers, k != "nginx",
                                            h.peer_headers == "same"))
            self.proxy = start([h.nginx, "-p", d, "-e", f"{d}/{k}.error.log", "-c", path],
                               f"{d}/{k}.log")
        elif k == "haproxy":
            path = self._write("haproxy.cfg", haproxy_config(self.front, upstream, h.workers,
                                                         h.peer_headers == "same"))
            self.proxy = start([h.haproxy, "-db", "-f", path], f"{d}/{k}.log")
        if self.proxy is not None and not wait_port(self.front, self.proxy):
            raise RuntimeError(f"{k} did not start; see {d}/{k}.log")

    def _write(self, name, text):
        path = os.path.join(self.h.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        self.proxy_config = (name, text)
        return path

    def dead(self):
        """Names of this stack's processes that exited on their own."""
        return [name for name, p in (("proxy", self.proxy), ("service", self.service))
                if p is not None and p.poll() is not None]

    def stop(self):
        stop(self.service)
        stop(self.proxy)
        self.service = self.proxy = None


# ----------------------------------------------------------------------------- wrk

WRK_LUA = r"""
local limit = tonumber(os.getenv("WRK_LIMIT") or "0")
local count = 0
local think_ms = tonumber(os.getenv("WRK_THINK_MS") or "0")
if think_ms > 0 then
  delay = function() return think_ms end
end
if limit > 0 then
  response = function(status, headers, body)
    count = count + 1
    if count >= limit then wrk.thread:stop() end
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
    '"err_status":%d,"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,' ..
    '"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


def run_wrk(h, stack, conns, duration, path="/", limit=0, timeout_s=5, think_ms=0):
    threads = max(1, min(h.wrk_threads, conns))
    argv = [h.wrk, "-t", str(threads), "-c", str(conns), "-d", f"{max(1, round(duration))}s", "--latency",
            "--timeout", f"{timeout_s}s", "-s", h.lua,
            f"{getattr(stack, 'scheme', 'http')}://{LOOPBACK}:{stack.url_port}{path}"]
    env = dict(os.environ, WRK_LIMIT=str(limit // threads if limit else 0),
               WRK_THINK_MS=str(think_ms))
    proxy_pids, svc_pids = stack.proxy_pids(), stack.service_pids()
    p0, s0, steal0 = sample(proxy_pids), sample(svc_pids), steal_ticks()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    _children.append(proc)
    try:
        out, _ = proc.communicate(timeout=duration + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    _children.remove(proc)
    elapsed = time.monotonic() - t0
    p1, s1, steal1 = sample(proxy_pids), sample(svc_pids), steal_ticks()
    m = re.search(r"WRKJSON (\{.*\})", out)
    if not m:
        raise RuntimeError(f"wrk failed for {stack.kind} at {conns} conns:\n{out}")
    r = json.loads(m.group(1))
    n = max(r["requests"], 1)
    secs = r["duration_us"] / 1e6
    r["rps"] = r["requests"] / secs if secs > 0 else 0.0
    r["ok_rps"] = (r["requests"] - r["err_status"]) / secs if secs > 0 else 0.0
    r["errors"] = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
    if proxy_pids:
        r["proxy_cpu_us"] = (p1["ticks"] - p0["ticks"]) * 1e6 / CLK_TCK / n
        r["proxy_csw"] = (p1["csw"] - p0["csw"]) / n
        r["proxy_csw_invol"] = (p1["csw_invol"] - p0["csw_invol"]) / n
    else:
        r["proxy_cpu_us"] = r["proxy_csw"] = r["proxy_csw_invol"] = None
    r["svc_cpu_us"] = (s1["ticks"] - s0["ticks"]) * 1e6 / CLK_TCK / n
    # Share of the machine's CPU time the hypervisor gave to something else: runs with much of
    # it are slowed at random and say little about the proxies.
    r["steal_pct"] = (steal1 - steal0) * 100.0 / (CLK_TCK * elapsed * (os.cpu_count() or 1))
    r["time_wait"] = time_wait_since(stack.relevant_ports(), elapsed + 1)
    r["config"], r["conns"] = stack.kind, conns
    return r


@contextlib.contextmanager
def side_by_side_stacks(h, configs, warm_conns):
    """The benchmark service behind each configuration, started, its config remembered and
    warmed up (connections, pools, page cache); every stack stopped when the block ends."""
    service_args = ["--size", str(h.size), "--delay-ms", "0"]
    stacks = {k: Stack(k, h, service_args, h.slots) for k in configs}
    try:
        for s in stacks.values():
            s.start()
            h.remember_config(s)
        for s in stacks.values():
            if h.warmup > 0:
                run_wrk(h, s, warm_conns, h.warmup)
        yield stacks
    finally:
        for s in stacks.values():
            s.stop()


# ----------------------------------------------------------------------------- profile

# Kernel stacks are put in the first class whose functions appear anywhere in them. Waking the
# reader comes first: on loopback the writer's own softirq delivers the segment and wakes the
# process that reads it (wrk or the service), on the writer's CPU time.
KERNEL_CLASSES = [
    ("waking the reader", {"sock_def_readable", "__wake_up_sync_key", "__wake_up_common_lock",
                           "__wake_up_common", "try_to_wake_up", "ep_poll_callback"}),
    ("send path", {"tcp_sendmsg", "unix_stream_sendmsg", "sock_sendmsg", "io_send", "io_sendmsg",
                   "__sys_sendto", "__sys_sendmsg", "sock_write_iter", "do_writev", "ksys_write"}),
    ("receive path", {"tcp_recvmsg", "unix_stream_recvmsg", "sock_recvmsg", "io_recv",
                      "io_recvmsg", "__sys_recvfrom", "__sys_recvmsg", "sock_read_iter",
                      "ksys_read", "do_readv"}),
    ("waiting and scheduling", {"schedule", "__schedule", "finish_task_switch.isra.0",
                                "finish_task_switch", "io_cqring_wait", "do_epoll_wait"}),
]
PROFILE_COLUMNS = ["own code", "libraries"] + [c for c, _ in KERNEL_CLASSES] + ["other kernel"]


def perf_samples(path):
    """Yields (leaf symbol, leaf dso, [frame symbols]) for each sample of a perf.data file."""
    out = subprocess.run(["perf", "script", "-i", path, "-F", "comm,ip,sym,dso"],
                         capture_output=True, text=True, timeout=300).stdout
    frames = []
    for line in out.splitlines() + [""]:
        if line.startswith(("\t", " ")):
            m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", line)
            if m:
                frames.append((re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)), m.group(2)))
        elif frames:
            yield frames[0][0], frames[0][1], [f[0] for f in frames]
            frames = []


def classify_sample(leaf_dso, stack, own_binary):
    if "kernel.kallsyms" not in leaf_dso:
        return "own code" if os.path.basename(leaf_dso) == own_binary else "libraries"
    names = set(stack)
    for cls, funcs in KERNEL_CLASSES:
        if names & funcs:
            return cls
    return "other kernel"


def cmd_profile(h):
    if not shutil.which("perf"):
        sys.exit("profile: perf is missing (Debian package linux-perf; compare.sh installs it)")
    configs = [c for c in h.configs if c != "direct"]
    conns = h.conns[0]
    runs = {k: [] for k in configs}
    counts = {k: {c: 0 for c in PROFILE_COLUMNS} for k in configs}
    symbols = {k: {} for k in configs}
    with side_by_side_stacks(h, configs, conns) as stacks:
        for rep in range(h.repeat):
            for k in configs:
                s = stacks[k]
                own = os.path.basename(s.proxy.args[0])
                data = os.path.join(h.tmp, f"perf-{k}-{rep}.data")
                perf = start(["perf", "record", "-F", "1999", "-g", "-o", data, "-p",
                              ",".join(str(p) for p in s.proxy_pids())], f"{data}.log")
                time.sleep(0.5)  # perf attaches to every thread before the load starts
                r = run_wrk(h, s, conns, h.duration)
                perf.send_signal(signal.SIGINT)
                try:
                    perf.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    stop(perf)
                runs[k].append(r)
                n = 0
                for leaf, dso, stack in perf_samples(data):
                    counts[k][classify_sample(dso, stack, own)] += 1
                    key = f"{leaf} ({os.path.basename(dso).strip('[]')})"
                    symbols[k][key] = symbols[k].get(key, 0) + 1
                    n += 1
                if n == 0:
                    with open(f"{data}.log", errors="replace") as f:
                        reason = f.read().strip()[-500:]
                    sys.exit(f"profile: perf recorded nothing for {k} (perf_event_paranoid, or "
                             f"not root?): {reason}")
                os.unlink(data)
                h.log(f"[{rep + 1}/{h.repeat}] {k:9s} c={conns:<3d} rps={r['rps']:>9,.0f} "
                      f"cpu/req={opt(r['proxy_cpu_us'], 1)} samples={n}")
                time.sleep(h.pause)
    md = profile_markdown(h, configs, conns, runs, counts, symbols)
    with open(os.path.join(h.out, "profile.md"), "w") as f:
        f.write(h.stamp + "\n\n" + md)
    print(md)
    return md


def profile_markdown(h, configs, conns, runs, counts, symbols):
    lines = [f"Where each proxy's CPU goes at {conns} connections: `perf record -g` on the proxy's "
             f"processes during {h.repeat} interleaved wrk run(s) of {h.duration}s each, 1999 "
             "samples per second of CPU time; service `" + os.path.basename(h.service) +
             f"` --size {h.size}. Each sample is put in one class: the proxy's own code, the "
             "libraries it calls (libc, liburing, ...), or by the kernel functions on its stack "
             "the kernel's wake-up of the process reading what the proxy wrote (on loopback the "
             "writer's softirq delivers the segment and wakes the reader), the rest of the send "
             "and receive paths, waiting and scheduling, and the rest. Per-request figures are "
             "the class's share of the proxy's CPU-µs per request (median of the runs). Without "
             "a hardware PMU (virtual machines) the samples come from a timer interrupt, so time "
             "spent with interrupts off is counted where they are turned back on: the wake-up "
             "class is where that matters.", "",
             "| configuration | RPS | proxy CPU-µs/req | " +
             " | ".join(PROFILE_COLUMNS) + " | kernel, total |",
             "|---|---:|---:|" + "---:|" * (len(PROFILE_COLUMNS) + 1)]
    for k in configs:
        total = sum(counts[k].values())
        if total == 0:
            continue
        cpu = med([r["proxy_cpu_us"] for r in runs[k]])
        rps = med([r["rps"] for r in runs[k]])
        cells = []
        for c in PROFILE_COLUMNS:
            share = counts[k][c] / total
            cells.append(f"{share * cpu:.2f} ({share:.0%})")
        kernel = 1 - (counts[k]["own code"] + counts[k]["libraries"]) / total
        lines.append(f"| {LABELS[k]} | {rps:,.0f} | {cpu:.2f} | " + " | ".join(cells) +
                     f" | {kernel * cpu:.2f} ({kernel:.0%}) |")
    lines += ["", "Hottest functions (share of each proxy's samples, where the sample landed):", ""]
    for k in configs:
        total = sum(counts[k].values())
        if total == 0:
            continue
        top = sorted(symbols[k].items(), key=lambda kv: -kv[1])[:12]
        lines.append(f"- {LABELS[k]}: " + "; ".join(f"`{name}` {n / total:.1%}" for name, n in top))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- reporting

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_range(values, digits=0, scale=1.0):
    values = [v * scale for v in values if v is not None]
    if not values:
        return "—"
    m = statistics.median(values)
    f = f"{{:,.{digits}f}}"
    if len(values) == 1:
        return f.format(m)
    return f"{f.format(m)} ({f.format(min(values))}–{f.format(max(values))})"


def opt(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def write_csv(path, rows, keys):
    with open(path, "w") as f:
        f.write(",".join(keys) + "\n")
        for r in rows:
            f.write(",".join("" if r.get(k) is None else str(r.get(k)) for k in keys) + "\n")


def gnuplot(h, script):
    if not h.gnuplot:
        return
    path = os.path.join(h.tmp, "plot.gp")
    with open(path, "w") as f:
        f.write(script)
    res = subprocess.run([h.gnuplot, path], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        print(f"gnuplot failed:\n{res.stderr}", file=sys.stderr)


def png_header(out, title, xlabel, ylabel, logx=False, logy=False):
    title, xlabel, ylabel = (t.replace("'", "") for t in (title, xlabel, ylabel))
    s = (f"set terminal pngcairo size 900,560 noenhanced font 'sans,10'\n"
         f"set output '{out}'\nset title '{title}'\nset xlabel '{xlabel}'\n"
         f"set ylabel '{ylabel}'\nset grid\nset key outside right top\n"
         "set datafile separator ','\nset datafile missing ''\n")
    if logx:
        s += "set logscale x 2\n"
    if logy:
        s += "set logscale y\n"
    return s


# ----------------------------------------------------------------------------- compare

def cmd_compare(h):
    configs = h.configs
    rows = []
    with side_by_side_stacks(h, configs, min(16, max(h.conns))) as stacks:
        total = len(h.conns) * h.repeat * len(configs)
        i = 0
        for conns in h.conns:
            for rep in range(h.repeat):
                for k in configs:
                    i += 1
                    r = run_wrk(h, stacks[k], conns, h.duration, think_ms=h.think_ms)
                    # A run the hypervisor slowed (CPU steal) measures the VM, not the proxy:
                    # run it again, a bounded number of times.
                    reruns = 0
                    while (h.max_steal > 0 and r["steal_pct"] > h.max_steal
                           and reruns < h.steal_retries):
                        h.log(f"[{i}/{total}] {k:9s} c={conns:<3d} CPU steal "
                              f"{r['steal_pct']:.1f}% > {h.max_steal:g}%: running it again")
                        time.sleep(1)
                        r = run_wrk(h, stacks[k], conns, h.duration, think_ms=h.think_ms)
                        reruns += 1
                    r["rerun"] = reruns
                    r["repeat"] = rep
                    rows.append(r)
                    dead = stacks[k].dead()
                    if dead:
                        r["died"] = "+".join(dead)
                        h.log(f"WARNING: {k}: {' and '.join(dead)} exited during the run "
                              f"(logs in {h.tmp}); restarting it for the next runs")
                        h.keep_tmp = True
                        stacks[k].stop()
                        stacks[k].start()
                    h.log(f"[{i}/{total}] {k:9s} c={conns:<3d} rps={r['rps']:>9,.0f} "
                          f"p99={r['p99_us'] / 1e3:7.2f}ms cpu/req={opt(r['proxy_cpu_us'], 1)} "
                          f"csw/req={opt(r['proxy_csw'], 3)} tw={r['time_wait']} "
                          f"err={r['errors']} non2xx={r['err_status']} "
                          f"steal={r['steal_pct']:.1f}%")
                    time.sleep(h.pause)
    keys = ["config", "conns", "repeat", "requests", "rps", "ok_rps", "p50_us", "p90_us", "p99_us",
            "p999_us", "max_us", "proxy_cpu_us", "proxy_csw", "proxy_csw_invol", "svc_cpu_us",
            "time_wait", "steal_pct", "rerun",
            "errors", "err_status", "died"]
    write_csv(os.path.join(h.out, "compare.csv"), rows, keys)
    md = compare_markdown(h, rows)
    md = h.stamp + "\n\n" + md
    with open(os.path.join(h.out, "compare.md"), "w") as f:
        f.write(md)
    compare_plots(h, rows)
    print(md)
    return md


def by(rows, config, conns):
    return [r for r in rows if r["config"] == config and r["conns"] == conns]


def compare_markdown(h, rows):
    configs, conns_list = h.configs, h.conns
    lines = [f"Medians of {h.repeat} interleaved run(s) of {h.duration}s each, "
             f"(min–max) when repeated; {h.workers} worker(s) per proxy; "
             f"service `{os.path.basename(h.service)}` --size {h.size}, "
             f"{h.slots} slots for l7px"
             f"{'' if h.busy_poll in ('0', '0us') else f', l7px server.busy_poll = {h.busy_poll}'}; "
             + ("NGINX and HAProxy add the forwarding headers l7px adds (`--peer-headers same`)."
                if h.peer_headers == "same" else
                "NGINX and HAProxy with their default headers (`--peer-headers none`): they add "
                "none of l7px's forwarding headers.")
             + (f" Paced: each wrk connection waits {h.think_ms} ms (wrk's timer, in practice "
                "a little more) after every response, so every proxy is offered about the same "
                "load and p99 compares at equal work." if h.think_ms else ""),
             "",
             "| conns | configuration | RPS | p50 ms | p99 ms | proxy CPU-µs/req | "
             "proxy ctx-sw/req | of which involuntary | TIME_WAIT | errors |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in conns_list:
        for k in configs:
            rs = by(rows, k, c)
            if not rs:
                continue
            lines.append(
                f"| {c} | {LABELS[k]} | {fmt_range([r['rps'] for r in rs])} | "
                f"{fmt_range([r['p50_us'] for r in rs], 2, 1e-3)} | "
                f"{fmt_range([r['p99_us'] for r in rs], 2, 1e-3)} | "
                f"{fmt_range([r['proxy_cpu_us'] for r in rs], 1)} | "
                f"{fmt_range([r['proxy_csw'] for r in rs], 3)} | "
                f"{fmt_range([r.get('proxy_csw_invol') for r in rs], 3)} | "
                f"{fmt_range([r['time_wait'] for r in rs])} | "
                f"{sum(r['errors'] + r['err_status'] for r in rs)}"
                f"{' (a process died)' if any(r.get('died') for r in rs) else ''} |")
    steal = sorted((r["steal_pct"], r["config"], r["conns"]) for r in rows
                   if r.get("steal_pct") is not None)
    if steal:
        top, k, c = steal[-1]
        lines += ["", f"CPU steal (time the hypervisor gave the VM's CPUs to others) during the "
                  f"runs: median {statistics.median(s[0] for s in steal):.1f} %, highest "
                  f"{top:.1f} % ({LABELS[k]}, {c} connections); runs with much of it were "
                  "slowed at random"
                  + (f". A run with more than {h.max_steal:g} % was run again (up to "
                     f"{h.steal_retries} times): {sum(1 for r in rows if r.get('rerun'))} "
                     f"run(s) were, {sum(1 for r in rows if r['steal_pct'] > h.max_steal)} "
                     "still above it in the end." if h.max_steal > 0 and h.steal_retries > 0
                     else ".")]
    peers = [p for p in PEERS if p in configs]
    for main in [k for k in ("l7px", "l7px-unix") if k in configs]:
        if not peers:
            break
        lines += ["", f"Ratios of {LABELS[main]} to each peer: per repeat, l7px's run over the "
                  "peer's adjacent run, then the median (min–max) of those ratios. RPS > 1 and "
                  "p99 / CPU < 1 favour l7px.", "",
                  "| conns | peer | RPS ratio | p99 ratio | CPU-µs/req ratio |",
                  "|---:|---|---:|---:|---:|"]
        for c in conns_list:
            for p in peers:
                a, b = by(rows, main, c), by(rows, p, c)
                pairs = [(x, y) for x in a for y in b if x["repeat"] == y["repeat"]]
                if not pairs:
                    continue

                def ratios(key):
                    return [x[key] / y[key] for x, y in pairs
                            if x[key] is not None and y[key]]

                lines.append(f"| {c} | {LABELS[p]} | {fmt_range(ratios('rps'), 2)} | "
                             f"{fmt_range(ratios('p99_us'), 2)} | "
                             f"{fmt_range(ratios('proxy_cpu_us'), 2)} |")
    return "\n".join(lines) + "\n"


def compare_plots(h, rows):
    for k in h.configs:
        with open(os.path.join(h.tmp, f"cmp-{k}.csv"), "w") as f:
            for c in h.conns:
                rs = by(rows, k, c)
                if not rs:
                    continue
                csw = med([r["proxy_csw"] for r in rs])
                f.write(f"{c},{med([r['rps'] for r in rs])},"
                        f"{min(r['rps'] for r in rs)},{max(r['rps'] for r in rs)},"
                        f"{med([r['p99_us'] for r in rs]) / 1e3},"
                        f"{'' if csw is None else csw}\n")
    def plot_lines(col, extra=""):
        return ", ".join(f"'{h.tmp}/cmp-{k}.csv' using 1:{col} with linespoints lw 2 "
                         f"title '{LABELS[k]}'{extra}" for k in h.configs)
    xt = ("set xtics (" + ", ".join(f"'{c}' {c}" for c in h.conns) + ")\n" +
          f"set xrange [{min(h.conns) * 0.8}:{max(h.conns) * 1.25}]\n")
    gnuplot(h, png_header(f"{h.out}/rps.png", "Throughput vs concurrency", "wrk connections",
                          "requests/s", logx=True) + xt + "set yrange [0:*]\n" +
            "plot " + ", ".join(
                f"'{h.tmp}/cmp-{k}.csv' using 1:2:3:4 with yerrorlines lw 2 title '{LABELS[k]}'"
                for k in h.configs) + "\n")
    gnuplot(h, png_header(f"{h.out}/p99.png", "p99 latency vs concurrency", "wrk connections",
                          "p99 latency (ms)", logx=True, logy=True) + xt +
            "plot " + plot_lines(5) + "\n")
    proxies = [k for k in h.configs if k != "direct"]
    gnuplot(h, png_header(f"{h.out}/ctxsw.png", "Proxy context switches per request vs throughput",
                          "requests/s", "context switches / request") +
            "set yrange [0:*]\nplot " + ", ".join(
                f"'{h.tmp}/cmp-{k}.csv' using 2:6 with linespoints lw 2 title '{LABELS[k]}'"
                for k in proxies) + "\n")


# ----------------------------------------------------------------------------- experiments

def concurrency_probe(stack):
    """The test service's max in-flight requests since it started (through the front port)."""
    try:
        with socket.create_connection((LOOPBACK, stack.url_port), timeout=10) as s:
            s.sendall(b"GET /concurrency HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            data = b""
            s.settimeout(10)
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        m = re.search(rb"max=(\d+)", data)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def cmd_qps(h):
    k_slots, s_ms = h.qps_slots, h.qps_delay_ms
    capacity = k_slots * 1000.0 / s_ms
    configs = [c for c in ("l7px", "nginx", "nginx-ka", "haproxy") if c in h.configs]
    rows = []
    for factor in h.overload:
        conns = k_slots * factor
        for k in configs:
            stack = Stack(k, h, ["--delay-ms", str(s_ms)], k_slots,
                          l7px_queue=k_slots, l7px_queue_timeout=f"{s_ms * 4}ms")
            try:
                stack.start()
                h.remember_config(stack, suffix="-qps")
                r = run_wrk(h, stack, conns, h.exp_duration)
                r["svc_max_concurrency"] = concurrency_probe(stack)
            finally:
                stack.stop()
            r["overload"] = factor
            r["shed_rps"] = r["err_status"] / (r["duration_us"] / 1e6)
            rows.append(r)
            h.log(f"qps {k:9s} {factor:>2d}x c={conns:<3d} ok_rps={r['ok_rps']:8.0f} "
                  f"503/s={r['shed_rps']:8.0f} p99={r['p99_us'] / 1e3:7.1f}ms "
                  f"service max concurrency={r['svc_max_concurrency']}")
    keys = ["config", "overload", "conns", "requests", "ok_rps", "shed_rps", "p50_us", "p99_us",
            "svc_max_concurrency", "errors"]
    write_csv(os.path.join(h.out, "qps.csv"), rows, keys)
    lines = [f"Deterministic QPS: K = {k_slots} slots, S = {s_ms} ms per request, so K/S = "
             f"{capacity:.0f} requests/s; closed-loop wrk with K × overload connections, "
             f"{h.exp_duration}s per run. l7px queue = K, queue_timeout = 4·S. Latencies cover "
             "every response, 503s included.", "",
             "| overload | conns | configuration | 2xx/s | 503/s | p50 ms | p99 ms | "
             "service max concurrency |", "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['overload']}× | {r['conns']} | {LABELS[r['config']]} | "
                     f"{r['ok_rps']:,.0f} | {r['shed_rps']:,.0f} | {r['p50_us'] / 1e3:.1f} | "
                     f"{r['p99_us'] / 1e3:.1f} | {r['svc_max_concurrency']} |")
    md = "\n".join(lines) + "\n"
    md = h.stamp + "\n\n" + md
    with open(os.path.join(h.out, "qps.md"), "w") as f:
        f.write(md)
    for k in configs:
        with open(os.path.join(h.tmp, f"qps-{k}.csv"), "w") as f:
            for r in rows:
                if r["config"] == k:
                    f.write(f"{r['overload']},{r['ok_rps']},{r['shed_rps']},"
                            f"{r['p99_us'] / 1e3},{r['svc_max_concurrency'] or ''}\n")
    xt = ("set xtics (" + ", ".join(f"'{f}x' {f}" for f in h.overload) + ")\n" +
          f"set xrange [{min(h.overload) * 0.8}:{max(h.overload) * 1.25}]\n")
    script = (png_header(f"{h.out}/qps.png", f"Deterministic QPS: K={k_slots} slots, "
                         f"S={s_ms} ms (K/S = {capacity:.0f}/s)", "overload", "", logx=True) +
              xt + "set multiplot layout 1,3\nunset key\nset key bottom right\n")
    for col, title, logy in ((2, "2xx responses/s", False), (4, "p99 latency (ms)", True),
                             (5, "service max concurrency", True)):
        script += (f"set title '{title}'\nset ylabel '{title}'\n" +
                   ("set logscale y\n" if logy else "unset logscale y\nset yrange [0:*]\n") +
                   "plot " + ", ".join(f"'{h.tmp}/qps-{k}.csv' using 1:{col} with linespoints "
                                       f"lw 2 title '{k}'" for k in configs) + "\n")
    script += "unset multiplot\n"
    gnuplot(h, script.replace("size 900,560", "size 1500,500"))
    print(md)
    return md


def cmd_spike(h):
    k_slots, s_ms = h.qps_slots, h.qps_delay_ms
    capacity = k_slots * 1000.0 / s_ms
    base, burst = h.spike_phase, h.spike_phase
    peak = 10 * k_slots
    phases = f"0:{base}:1,{base}:{base + burst}:{peak},{base + burst}:{2 * base + burst}:1"
    configs = [c for c in ("l7px", "nginx") if c in h.configs]
    results = {}
    for k in configs:
        # Room for the whole burst in the queue: the point is absorbing it, not shedding.
        stack = Stack(k, h, ["--delay-ms", str(s_ms)], k_slots, l7px_queue=4 * peak,
                      l7px_queue_timeout="5s")
        try:
            stack.start()
            h.remember_config(stack, suffix="-spike")
            out = subprocess.run(
                [sys.executable, h.loadgen, "spike", "--port", str(stack.url_port),
                 "--phases", phases, "--bin", str(h.spike_bin)],
                capture_output=True, text=True, timeout=2 * base + burst + 60)
            res = json.loads(out.stdout)
            res["svc_max_concurrency"] = concurrency_probe(stack)
        finally:
            stack.stop()
        results[k] = res
        h.log(f"spike {k:9s} ok={res['ok']} 503={res['shed']} errors={res['errors']} "
              f"p99={res['p99_ms']}ms service max concurrency={res['svc_max_concurrency']}")
        with open(os.path.join(h.tmp, f"spike-{k}.csv"), "w") as f:
            for b in res["bins"]:
                f.write(f"{b['t']},{b['ok_rps']},{b['shed_rps']},{b['p99_ms']},{b['conns']}\n")
    lines = [f"Spike: K = {k_slots} slots × S = {s_ms} ms (K/S = {capacity:.0f}/s); 1 client "
             f"for {base}s, then {peak} closed-loop clients (10× K) for {burst}s, then 1 again.",
             "", "| configuration | 2xx | 503 | errors | p99 ms (2xx) | service max concurrency |",
             "|---|---:|---:|---:|---:|---:|"]
    for k, r in results.items():
        lines.append(f"| {LABELS[k]} | {r['ok']} | {r['shed']} | {r['errors']} | {r['p99_ms']} | "
                     f"{r['svc_max_concurrency']} |")
    md = "\n".join(lines) + "\n"
    md = h.stamp + "\n\n" + md
    with open(os.path.join(h.out, "spike.md"), "w") as f:
        f.write(md)
    with open(os.path.join(h.out, "spike.json"), "w") as f:
        json.dump(results, f)
    script = (png_header(f"{h.out}/spike.png", "Spike", "time (s)", "").replace(
        "size 900,560", "size 1200,500") + "set multiplot layout 1,2\n")
    script += ("set title '2xx responses/s (dashed: clients)'\nset ylabel 'responses/s'\n"
               "set y2label 'clients'\nset y2tics\nset yrange [0:*]\n" +
               f"set y2range [0:{peak * 1.2}]\nplot " +
               ", ".join(f"'{h.tmp}/spike-{k}.csv' using 1:2 with lines lw 2 title '{k}'"
                         for k in configs) +
               f", '{h.tmp}/spike-{configs[0]}.csv' using 1:5 axes x1y2 with lines dt 2 "
               "title 'clients'\n")
    script += ("unset y2tics\nunset y2label\nset title 'p99 latency per bin (2xx)'\n"
               "set ylabel 'ms'\nset logscale y\nset yrange [*:*]\nplot " +
               ", ".join(f"'{h.tmp}/spike-{k}.csv' using 1:($4>0?$4:1/0) with lines lw 2 "
                         f"title '{k}'" for k in configs) + "\nunset multiplot\n")
    gnuplot(h, script)
    print(md)
    return md


def cmd_slow(h):
    configs = [c for c in ("l7px", "nginx", "nginx-ka", "haproxy") if c in h.configs]
    kinds = ["none", "head", "body"]
    rows = []
    for k in configs:
        stack = Stack(k, h, ["--size", str(h.size), "--delay-ms", "0"], h.slow_slots)
        try:
            stack.start()
            h.remember_config(stack, suffix="-slow")
            if h.warmup > 0:
                run_wrk(h, stack, h.slow_fast_conns, h.warmup)
            for kind in kinds:
                slow = None
                if kind != "none":
                    slow = subprocess.Popen(
                        [sys.executable, h.loadgen, "slow", "--port", str(stack.url_port),
                         "--conns", str(h.slow_conns), "--kind", kind,
                         "--duration", str(h.exp_duration + 1)],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                    _children.append(slow)
                    time.sleep(0.5)  # let the slow clients occupy their connections first
                r = run_wrk(h, stack, h.slow_fast_conns, h.exp_duration)
                r["slow_kind"], r["slow_ok"] = kind, None
                if slow is not None:
                    out, _ = slow.communicate(timeout=h.exp_duration + 60)
                    _children.remove(slow)
                    try:
                        r["slow_ok"] = json.loads(out.strip().splitlines()[-1])["ok"]
                    except (ValueError, IndexError, KeyError):
                        r["slow_ok"] = None
                rows.append(r)
                h.log(f"slow {k:9s} slow={kind:4s} fast rps={r['rps']:9,.0f} "
                      f"fast p99={r['p99_us'] / 1e3:7.2f}ms slow requests done={r['slow_ok']}")
        finally:
            stack.stop()
    lines = [f"Slow clients: {h.slow_conns} clients sending their request a few bytes every "
             f"20 ms (head: a GET head trickled; body: the head at once, a 256-byte body "
             f"trickled) while {h.slow_fast_conns} fast wrk connections run for "
             f"{h.exp_duration}s. l7px: {h.slow_slots} slots.", "",
             "| configuration | slow clients | fast RPS | fast non-2xx | fast p50 ms | fast p99 ms | "
             "slow requests done |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lat = (f"{r['p50_us'] / 1e3:.2f} | {r['p99_us'] / 1e3:.2f}" if r["requests"] else
               f"none completed | > {h.exp_duration * 1e3:.0f}")
        lines.append(f"| {LABELS[r['config']]} | {r['slow_kind']} | {r['rps']:,.0f} | "
                     f"{r['err_status'] + r['errors']:,} | {lat} | "
                     f"{'—' if r['slow_ok'] is None else r['slow_ok']} |")
    md = "\n".join(lines) + "\n"
    md = h.stamp + "\n\n" + md
    with open(os.path.join(h.out, "slow.md"), "w") as f:
        f.write(md)
    write_csv(os.path.join(h.out, "slow.csv"), rows,
              ["config", "slow_kind", "rps", "err_status", "p50_us", "p99_us", "slow_ok", "errors"])
    with open(os.path.join(h.tmp, "slow.dat"), "w") as f:
        for k in configs:
            # No fast request completed at all: plot the run's length, a lower bound.
            vals = [next(((r["p99_us"] / 1e3 if r["requests"] else h.exp_duration * 1e3)
                          for r in rows if r["config"] == k and r["slow_kind"] == kind), 0)
                    for kind in kinds]
            f.write(f"{k} " + " ".join(str(v) for v in vals) + "\n")
    gnuplot(h, png_header(f"{h.out}/slow.png", "p99 of fast clients with slow clients alongside",
                          "", "fast clients' p99 (ms)").replace("set datafile separator ','\n",
                                                                "") +
            "set style data histogram\nset style histogram cluster gap 1\n"
            "set style fill solid 0.8 border -1\nset logscale y\nset yrange [0.1:*]\n" +
            f"set xrange [-0.6:{len(configs) - 0.4}]\n" +
            f"plot '{h.tmp}/slow.dat' using 2:xtic(1) title 'no slow clients', "
            "'' using 3 title 'slow heads', '' using 4 title 'slow bodies'\n")
    print(md)
    return md


def owned_sockets(pids):
    """(local_port, peer_port) of TCP sockets (not listening) held open by `pids`."""
    out = subprocess.run(["ss", "-tanpH"], capture_output=True, text=True, timeout=30).stdout
    rows = []
    for line in out.splitlines():
        if line.startswith("LISTEN"):
            continue
        m = re.search(r"(\S+):(\d+)\s+(\S+):(\d+)", line)
        if m and any(int(p) in pids for p in re.findall(r"pid=(\d+)", line)):
            rows.append((int(m.group(2)), int(m.group(4))))
    return rows


def cmd_timewait(h):
    configs = [c for c in ("l7px", "nginx", "nginx-ka", "haproxy", "direct") if c in h.configs]
    rows = []
    for k in configs:
        stack = Stack(k, h, ["--size", str(h.size), "--delay-ms", "0"], h.slots)
        try:
            stack.start()
            h.remember_config(stack, suffix="-timewait")
            # wrk always runs its full -d: size the runs from the rate of a first 1 s run and stop
            # each at the requests still missing.
            total, errors, elapsed, rate, t0 = 0, 0, 0.0, None, time.monotonic()
            while total < h.tw_requests and elapsed < h.tw_max_seconds:
                missing = h.tw_requests - total
                d = 1 if rate is None else max(1, min(h.tw_max_seconds - int(elapsed),
                                                      int(missing / rate) + 1))
                r = run_wrk(h, stack, 16, d, limit=missing)
                total += r["requests"]
                errors += r["errors"] + r["err_status"]
                elapsed = time.monotonic() - t0
                rate = max(r["rps"], 1.0)
            svc = stack.relevant_ports()
            r["requests"], r["errors"] = total, errors
            r["rps"] = total / elapsed
            r["time_wait"] = time_wait_since(svc, elapsed + 1)
            if k == "direct":
                r["proxy_ephemeral_ports"] = None
            else:
                # Ports the proxy holds on its own side: open sockets of its processes that are
                # not on a port it listens on, plus TIME_WAIT sockets its side keeps toward the
                # service (peer = the service's port).
                own = {lp for lp, _ in owned_sockets(set(stack.proxy_pids()))
                       if lp not in (stack.front, stack.upstream_port)}
                own |= {lp for lp, pp, left in sockets(svc, "time-wait")
                        if pp in svc and left is not None and left >= 60 - elapsed - 2}
                r["proxy_ephemeral_ports"] = len(own)
            r["conns_to_service"] = len([s for s in sockets(svc, "established")
                                         if s[1] in svc])
        finally:
            stack.stop()
        rows.append(r)
        h.log(f"timewait {k:9s} requests={r['requests']} TIME_WAIT={r['time_wait']} "
              f"proxy ephemeral ports={r['proxy_ephemeral_ports']} errors={errors}")
    lines = [f"TIME_WAIT and ports after {h.tw_requests:,} requests (wrk, 16 keep-alive "
             "connections). TIME_WAIT: sockets on the service's port (either side) that entered "
             "TIME_WAIT during the run. Proxy ephemeral ports: local ports the proxy holds right "
             "after the run (its open sockets not on a port it listens on, and TIME_WAIT sockets "
             "on its side toward the service). Connections: established proxy-service "
             "connections (for l7px, the slots the service dialled in).", "",
             "| configuration | requests | RPS | errors | TIME_WAIT | proxy ephemeral ports | "
             "connections to the service |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {LABELS[r['config']]} | {r['requests']:,} | {r['rps']:,.0f} | "
                     f"{r['errors']:,} | {r['time_wait']} | "
                     f"{'—' if r['proxy_ephemeral_ports'] is None else r['proxy_ephemeral_ports']}"
                     f" | {r['conns_to_service']} |")
    md = "\n".join(lines) + "\n"
    md = h.stamp + "\n\n" + md
    with open(os.path.join(h.out, "timewait.md"), "w") as f:
        f.write(md)
    with open(os.path.join(h.tmp, "tw.dat"), "w") as f:
        for r in rows:
            f.write(f"{r['config']} {r['time_wait']} {r['proxy_ephemeral_ports'] or 0}\n")
    gnuplot(h, png_header(f"{h.out}/timewait.png",
                          f"After {h.tw_requests:,} requests", "", "sockets").replace(
                              "set datafile separator ','\n", "") +
            "set style data histogram\nset style histogram cluster gap 1\n"
            "set style fill solid 0.8 border -1\nset yrange [0:*]\n" +
            f"set xrange [-0.6:{len(rows) - 0.4}]\n"
            f"plot '{h.tmp}/tw.dat' using 2:xtic(1) title 'TIME_WAIT', "
            "'' using 3 title 'proxy ephemeral ports held'\n")
    print(md)
    return md


# ----------------------------------------------------------------------------- main

class Harness:
    def __init__(self, a):
        self.__dict__.update(vars(a))
        build = os.path.abspath(a.build)
        self.l7px = os.path.join(build, "l7px")
        self.service = a.service or self._default_service(build)
        self.test_service = os.path.join(build, "tests", "l7px_test_service")
        self.nginx, self.haproxy = shutil.which("nginx") or "/usr/sbin/nginx", \
            shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.wrk, self.gnuplot = shutil.which("wrk"), shutil.which("gnuplot")
        self.loadgen = os.path.join(HERE, "loadgen.py")
        self.out = os.path.abspath(a.out)
        os.makedirs(self.out, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="l7px-bench-")
        os.chmod(self.tmp, 0o755)  # NGINX workers may run as another user
        self.lua = os.path.join(self.tmp, "report.lua")
        with open(self.lua, "w") as f:
            f.write(WRK_LUA)
        self.configs_used = {}

    @staticmethod
    def _default_service(build):
        for p in ("l7px-bench-service", "tests/l7px_test_service"):
            if os.access(os.path.join(build, p), os.X_OK):
                return os.path.join(build, p)
        return os.path.join(build, "l7px-bench-service")

    def log(self, msg):
        print(msg, file=sys.stderr, flush=True)

    def remember_config(self, stack, suffix=""):
        if stack.proxy_config:
            name, text = stack.proxy_config
            base, ext = os.path.splitext(name)
            self.configs_used[f"{base}{suffix}{ext}"] = text.replace(self.tmp, "$TMP")

    def check(self, need_test_service=False):
        missing = [p for p in (self.l7px, self.service) if not os.access(p, os.X_OK)]
        if need_test_service and not os.access(self.test_service, os.X_OK):
            missing.append(self.test_service)
        for tool, path in (("wrk", self.wrk), ("nginx", self.nginx), ("haproxy", self.haproxy)):
            if not path or not os.access(path, os.X_OK):
                missing.append(tool)
        if missing:
            sys.exit("missing: " + ", ".join(missing) + " (build first: make build; "
                     "compare.sh installs the tools)")


def version(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def shown(path):
    rel = os.path.relpath(path, REPO)
    return rel if not rel.startswith("..") else os.path.basename(path)


def mtime(path):
    try:
        return datetime.datetime.fromtimestamp(os.path.getmtime(path)).astimezone().isoformat(
            timespec="seconds")
    except OSError:
        return "?"


SECTIONS = [("Side by side", "compare.md"), ("Where the CPU goes", "profile.md"),
            ("Deterministic QPS", "qps.md"), ("Spike", "spike.md"), ("Slow clients", "slow.md"),
            ("TIME_WAIT and ports", "timewait.md")]


def git_commit():
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return commit + (" (with uncommitted changes)" if dirty else "")


def write_machine(h, argv):
    """report.md: the machine, tools and binaries of the latest run, then every section found
    in the results directory (each stamped with the run that wrote it)."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = ["# Benchmark results", "",
             "Latest run:", "",
             f"- {h.stamp.strip('_')}",
             f"- machine: {os.cpu_count()} CPUs, {cpu}; kernel {platform.release()}",
             f"- load average at the end: {os.getloadavg()[0]:.2f}",
             f"- tools: {version([h.nginx, '-v'])}; {version([h.haproxy, '-v'])}; "
             f"{version([h.wrk, '--version'])}",
             f"- binaries: `{shown(h.l7px)}` built {mtime(h.l7px)}; `{shown(h.service)}` built "
             f"{mtime(h.service)}",
             f"- proxies: {h.workers} worker(s) each; wrk threads: {h.wrk_threads}; the "
             "side-by-side runs use the service named in its section behind every proxy, the "
             "QPS and spike experiments `l7px_test_service` for its /concurrency counter", "",
             "Configurations used (`$TMP` is the run's temporary directory) are in "
             "`configs/`.", ""]
    for title, name in SECTIONS:
        path = os.path.join(h.out, name)
        if os.path.exists(path):
            with open(path) as f:
                lines += [f"## {title}", "", f.read()]
    with open(os.path.join(h.out, "report.md"), "w") as f:
        f.write("\n".join(lines))
    cdir = os.path.join(h.out, "configs")
    os.makedirs(cdir, exist_ok=True)
    for name, text in h.configs_used.items():
        with open(os.path.join(cdir, name), "w") as f:
            f.write(text)


COMMANDS = ["all", "compare", "experiments", "qps", "spike", "slow", "timewait", "profile"]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="compare.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("positional", nargs="*", metavar="[COMMAND] [BUILD_DIR]",
                   help=f"COMMAND: one of {', '.join(COMMANDS)} (default: all); BUILD_DIR: the "
                   "build directory with l7px and the services (default: build/)")
    p.add_argument("--service", help="service binary (default: <build>/l7px-bench-service, "
                   "else <build>/tests/l7px_test_service); flags --proxy/--listen/--slots/"
                   "--size/--delay-ms")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--conns", default="1,4,8,16,32,64")
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke run, well under 2 minutes")
    p.add_argument("--configs", default="l7px,nginx,nginx-ka,haproxy,direct",
                   help="subset/order of l7px,l7px-unix,nginx,nginx-ka,nginx-unix,haproxy,direct")
    p.add_argument("--unix", action="store_true",
                   help="add l7px with slots on a UNIX socket and NGINX with a UNIX upstream")
    p.add_argument("--slots", type=int, default=64, help="slots the service registers with l7px")
    p.add_argument("--size", type=int, default=128, help="response body bytes")
    p.add_argument("--busy-poll", default="0",
                   help="l7px's server.busy_poll (e.g. 20us; default 0 = off, as shipped)")
    p.add_argument("--peer-headers", choices=("same", "none"), default="same",
                   help="same: NGINX and HAProxy add the forwarding headers l7px adds (Host, "
                   "X-Forwarded-For/-Proto/-Host, X-Request-Id, Via), so every proxy and the "
                   "service do the same work; none: the peers' bare defaults")
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--max-steal", type=float, default=5.0,
                   help="run a compare run again when the hypervisor took more than this "
                        "percentage of the CPU during it (default 5; 0 = never)")
    p.add_argument("--steal-retries", type=int, default=2,
                   help="how many times at most (default 2)")
    p.add_argument("--think-ms", type=int, default=0,
                   help="compare: each wrk connection waits this long after a response before "
                        "its next request, the same offered load for every proxy (default 0 = "
                        "closed loop)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--pause", type=float, default=0.3, help="seconds between runs")
    p.add_argument("--keep-tmp", action="store_true", help="keep the logs and configs")
    p.add_argument("--port-base", type=int, default=18100)
    p.add_argument("--out", help="results directory (default: benchmarks/results, "
                   "or benchmarks/results/quick with --quick)")
    p.add_argument("--exp-duration", type=int, default=5, help="seconds per experiment run")
    p.add_argument("--qps-slots", type=int, default=4, help="K")
    p.add_argument("--qps-delay-ms", type=int, default=10, help="S")
    p.add_argument("--overload", default="1,4,16")
    p.add_argument("--spike-phase", type=float, default=3)
    p.add_argument("--spike-bin", type=float, default=0.25)
    p.add_argument("--slow-conns", type=int, default=64)
    p.add_argument("--slow-fast-conns", type=int, default=8)
    p.add_argument("--slow-slots", type=int, default=16)
    p.add_argument("--tw-requests", type=int, default=100000)
    p.add_argument("--tw-max-seconds", type=int, default=60)
    a = p.parse_args(argv)
    a.command, a.build = "all", os.path.join(REPO, "build")
    rest = list(a.positional)
    if rest and rest[0] in COMMANDS:
        a.command = rest.pop(0)
    if rest:
        a.build = rest.pop(0)
    if rest:
        p.error(f"unexpected arguments: {' '.join(rest)}")
    if a.quick:  # every knob the user did not set explicitly shrinks
        quick = {"conns": "1,16,64", "duration": 1, "repeat": 1, "exp_duration": 1,
                 "overload": "1,16", "spike_phase": 1.0, "tw_requests": 10000, "pause": 0.1,
                 "warmup": 0}
        for key, value in quick.items():
            if "--" + key.replace("_", "-") not in argv:
                setattr(a, key, value)
    if a.command == "profile":  # one concurrency, the proxies of the performance targets
        if "--conns" not in argv:
            a.conns = "16"
        if "--configs" not in argv:
            a.configs = "l7px,nginx-ka,haproxy"
    a.out = a.out or os.path.join(REPO, "benchmarks", "results", "quick" if a.quick else "")
    a.conns = [int(c) for c in a.conns.split(",")]
    a.overload = [int(c) for c in a.overload.split(",")]
    a.configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    if a.unix and "l7px-unix" not in a.configs:
        a.configs.insert(1 if "l7px" in a.configs else 0, "l7px-unix")
    if a.unix and "nginx-unix" not in a.configs:
        a.configs.append("nginx-unix")
    for c in a.configs:
        if c not in LABELS:
            p.error(f"unknown configuration {c}")
    return a


def timed(h, fn):
    t0 = time.monotonic()
    md = fn(h)
    h.log(f"{fn.__name__[4:]}: {time.monotonic() - t0:.0f}s")
    return md


def main():
    argv = sys.argv[1:]
    a = parse_args(argv)
    h = Harness(a)
    h.stamp = (f"_{datetime.datetime.now().astimezone().isoformat(timespec='seconds')} · "
               f"commit {git_commit()} · `benchmarks/e2e/compare.sh "
               f"{' '.join(shown(x) if os.path.isabs(x) else x for x in argv)}`_")
    experiments = a.command in ("all", "experiments", "qps", "spike", "slow", "timewait")
    h.check(need_test_service=experiments)
    sections = []
    t0 = time.monotonic()
    try:
        if a.command in ("all", "compare"):
            sections.append(("Side by side", timed(h, cmd_compare)))
        if a.command == "profile":
            sections.append(("Where the CPU goes", timed(h, cmd_profile)))
        exp_service = h.service
        if experiments:
            # The experiments need the test service's /concurrency counter.
            h.service = h.test_service
        if a.command in ("all", "experiments", "qps"):
            sections.append(("Deterministic QPS", timed(h, cmd_qps)))
        if a.command in ("all", "experiments", "spike"):
            sections.append(("Spike", timed(h, cmd_spike)))
        h.service = exp_service
        if a.command in ("all", "experiments", "slow"):
            sections.append(("Slow clients", timed(h, cmd_slow)))
        if a.command in ("all", "experiments", "timewait"):
            sections.append(("TIME_WAIT and ports", timed(h, cmd_timewait)))
        if not h.keep_tmp:
            shutil.rmtree(h.tmp, ignore_errors=True)  # kept on failure: it holds the logs
    finally:
        _kill_all()
        if sections:
            write_machine(h, argv)
        h.log(f"done in {time.monotonic() - t0:.0f}s; results in {h.out}")


if __name__ == "__main__":
    main()
