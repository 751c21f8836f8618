#!/usr/bin/env python3
"""The three promises of pools that stay healthy, measured against one l7px binary.

  benchmarks/e2e/pool_health.py [--l7px build/l7px] [--service build/tests/l7px_test_service]
                                [--seconds 3]

1. A failing instance must not win: one healthy instance (8 slots, 2 ms of work) and one that
   answers 500 at once (8 slots) in one pool; C keep-alive clients for --seconds each, C = 4 and
   12; answers counted by status and instance (X-Service).
2. No instance starves: two healthy instances (8 slots each), one client, 400 requests one at a
   time; each instance's share.
3. Slow readers hold no slots: an 8-slot service, 8 clients that ask for 8 MiB (more than the
   kernel's socket buffers absorb) and read nothing, with response_buffer = 0 (streaming, as
   before the option) and "16MiB"; then 20 requests from others (queue_timeout 500 ms): how
   many got 200.
4. Determinism with one instance failing: a healthy instance of K = 4 slots taking S = 10 ms
   per request (capacity K/S = 400 requests/s) beside one of 4 slots that answers 500 at once;
   16 keep-alive clients (4x overload) for --seconds; the 200s served per second against K/S.

Loopback only; every process started here is stopped (by PID) before the script ends; every
phase is bounded in time.
"""
import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rig:
    def __init__(self, l7px, service, pool_extra=""):
        self.dir = tempfile.mkdtemp(prefix="l7px-health-")
        self.front, self.reg = free_port(), free_port()
        conf = os.path.join(self.dir, "l7px.toml")
        with open(conf, "w") as f:
            f.write(f"""[server]
workers = 1
listen = ["127.0.0.1:{self.front}"]
[register]
listen = ["127.0.0.1:{self.reg}"]
[admin]
listen = ""
[upgrade]
socket = "{self.dir}/upgrade.sock"
[log]
access = "off"
level = "error"
[[pool]]
name = "default"
queue_timeout = "500ms"
{pool_extra}
""")
        self.service = service
        self.procs = [subprocess.Popen([l7px, "-c", conf], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)]
        self.wait_port(self.front)

    def wait_port(self, port):
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("l7px did not start")

    def instance(self, sid, slots, *extra):
        self.procs.append(subprocess.Popen(
            [self.service, "--proxy", f"127.0.0.1:{self.reg}", "--slots", str(slots),
             "--service-id", sid, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def close(self):
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    r.read()
    return r.status, r.getheader("X-Service", "-")


def load(port, clients, seconds):
    counts, mu = {}, threading.Lock()
    stop = time.time() + seconds

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        i = 0
        while time.time() < stop:
            try:
                key = "%d %s" % get(conn, f"/c{n}/{i}")
            except Exception:  # noqa: BLE001 - a failed request is counted, then a new connection
                key = "error"
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            with mu:
                counts[key] = counts.get(key, 0) + 1
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def settle(seconds=1.0):
    time.sleep(seconds)  # registrations complete (the services dial in at start)


def failing_instance(args):
    for clients in (4, 12):
        rig = Rig(args.l7px, args.service)
        try:
            rig.instance("good", 8, "--delay-ms", "2")
            rig.instance("bad", 8, "--status", "500")
            settle()
            counts = load(rig.front, clients, args.seconds)
            total = sum(counts.values())
            ok = counts.get("200 good", 0)
            print(f"failing instance, {clients} clients: {ok} of {total} answers 200 "
                  f"({100.0 * ok / max(total, 1):.1f} %); all: {counts}")
        finally:
            rig.close()


def starvation(args):
    rig = Rig(args.l7px, args.service)
    try:
        rig.instance("one", 8)
        rig.instance("two", 8)
        settle()
        conn = http.client.HTTPConnection("127.0.0.1", rig.front, timeout=5)
        counts = {}
        for i in range(400):
            _, sid = get(conn, f"/turn/{i}")
            counts[sid] = counts.get(sid, 0) + 1
        print(f"low load, 400 requests one at a time: {counts}")
    finally:
        rig.close()


def slow_readers(args, size, pool_extra=""):
    rig = Rig(args.l7px, args.service, pool_extra)
    readers = []
    try:
        rig.instance("svc", 8)
        settle()
        for _ in range(8):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            s.connect(("127.0.0.1", rig.front))
            s.sendall(b"GET /size/%d HTTP/1.1\r\nHost: t\r\n\r\n" % size)
            readers.append(s)
        time.sleep(0.5)
        ok = 0
        for i in range(20):
            conn = http.client.HTTPConnection("127.0.0.1", rig.front, timeout=5)
            status, _ = get(conn, f"/other/{i}")
            ok += status == 200
            conn.close()
        print(f"8 slow readers of {size} bytes on 8 slots{' (' + pool_extra + ')' if pool_extra else ''}: "
              f"{ok} of 20 other requests got 200")
    finally:
        for s in readers:
            s.close()
        rig.close()


def determinism(args):
    served = {}
    for with_bad in (False, True):
        rig = Rig(args.l7px, args.service)
        try:
            rig.instance("good", 4, "--delay-ms", "10")
            if with_bad:
                rig.instance("bad", 4, "--status", "500")
            settle()
            start = time.time()
            counts = load(rig.front, 16, args.seconds)
            served[with_bad] = counts.get("200 good", 0) / (time.time() - start)
            label = "with a failing instance" if with_bad else "healthy instance alone"
            print(f"determinism, 16 clients on K/S = 400/s, {label}: {served[with_bad]:.0f} "
                  f"200s/s ({100.0 * served[with_bad] / 400:.1f} % of K/S); all: {counts}")
        finally:
            rig.close()
    print(f"determinism: with a failing instance the healthy capacity is served at "
          f"{100.0 * served[True] / max(served[False], 1):.1f} % of its rate alone")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--l7px", default="build/l7px")
    p.add_argument("--service", default="build/tests/l7px_test_service")
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    failing_instance(args)
    starvation(args)
    determinism(args)
    for extra in ('response_buffer = 0', 'response_buffer = "16MiB"'):
        try:
            slow_readers(args, 8 << 20, extra)
        except RuntimeError:
            print(f"slow readers ({extra}): this l7px does not take the key")


if __name__ == "__main__":
    sys.exit(main())
