#!/usr/bin/env python3
"""Small HTTP/1.1 load generator for the experiments wrk cannot express.

  spike: closed-loop keep-alive connections whose number follows a schedule of phases
         ("start:end:conns,..." in seconds); reports completions, 503s and latency per time bin.
  slow:  N clients that each send their request a few bytes at a time (a slow head, or a slow
         request body), for a fixed duration; reports how many requests they completed.

Loopback only; every run ends by itself (each phase and each request is bounded in time).
Prints one JSON object on stdout.
"""

import argparse
import asyncio
import json
import sys
import time


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


async def read_response(reader):
    """Reads one response; returns (status, keep_alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
    if length:
        await reader.readexactly(length)
    return status, keep_alive


class Recorder:
    def __init__(self, t0):
        self.t0 = t0
        self.samples = []  # (t_done relative, latency s, status)
        self.errors = 0

    def add(self, start, status):
        now = time.monotonic()
        self.samples.append((now - self.t0, now - start, status))


async def closed_loop_client(host, port, request, end, rec, timeout):
    reader = writer = None
    while time.monotonic() < end:
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), timeout)
            start = time.monotonic()
            writer.write(request)
            status, keep_alive = await asyncio.wait_for(read_response(reader), timeout)
            rec.add(start, status)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            rec.errors += 1
            keep_alive = False
            await asyncio.sleep(0.01)
        if not keep_alive and writer is not None:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def run_spike(args):
    phases = []
    for part in args.phases.split(","):
        start, end, conns = part.split(":")
        phases.append((float(start), float(end), int(conns)))
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}\r\n\r\n").encode()
    t0 = time.monotonic()
    rec = Recorder(t0)
    tasks = []
    for start, end, conns in phases:
        delay = t0 + start - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        for _ in range(conns):
            tasks.append(asyncio.create_task(
                closed_loop_client(args.host, args.port, request, t0 + end, rec, args.timeout)))
    total = max(end for _, end, _ in phases)
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, t0 + total + 1 - time.monotonic()))
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    bins = []
    nbins = int(total / args.bin + 0.5)
    for i in range(nbins):
        lo, hi = i * args.bin, (i + 1) * args.bin
        inside = [s for s in rec.samples if lo <= s[0] < hi]
        ok = [s[1] for s in inside if 200 <= s[2] < 300]
        shed = sum(1 for s in inside if s[2] == 503)
        conns = sum(c for s, e, c in phases if s <= lo < e)
        bins.append({
            "t": round(hi, 3), "conns": conns, "ok_rps": len(ok) / args.bin,
            "shed_rps": shed / args.bin,
            "other": len(inside) - len(ok) - shed,
            "p50_ms": round(percentile(ok, 50) * 1e3, 3),
            "p99_ms": round(percentile(ok, 99) * 1e3, 3),
        })
    ok_all = [s[1] for s in rec.samples if 200 <= s[2] < 300]
    print(json.dumps({
        "mode": "spike", "phases": phases, "bins": bins, "errors": rec.errors,
        "requests": len(rec.samples), "ok": len(ok_all),
        "shed": sum(1 for s in rec.samples if s[2] == 503),
        "p99_ms": round(percentile(ok_all, 99) * 1e3, 3),
    }))


async def slow_client(host, port, args, end, rec):
    if args.kind == "head":
        request = (f"GET {args.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: slow-client\r\n"
                   "Accept: */*\r\n\r\n").encode()
        fast_prefix = 0
    else:
        body = b"x" * args.body
        request = (f"POST {args.path} HTTP/1.1\r\nHost: {host}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        fast_prefix = len(request) - len(body)  # head at once, body trickled
    reader = writer = None
    while time.monotonic() < end:
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), args.timeout)
            start = time.monotonic()
            writer.write(request[:fast_prefix])
            pos = fast_prefix
            while pos < len(request):
                writer.write(request[pos:pos + args.chunk])
                await writer.drain()
                pos += args.chunk
                await asyncio.sleep(args.step_ms / 1000.0)
            status, keep_alive = await asyncio.wait_for(read_response(reader), args.timeout)
            rec.add(start, status)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            rec.errors += 1
            keep_alive = False
            await asyncio.sleep(0.01)
        if not keep_alive and writer is not None:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def run_slow(args):
    t0 = time.monotonic()
    rec = Recorder(t0)
    end = t0 + args.duration
    tasks = [asyncio.create_task(slow_client(args.host, args.port, args, end, rec))
             for _ in range(args.conns)]
    # Requests still trickling at the end are abandoned, not waited for.
    _, pending = await asyncio.wait(tasks, timeout=args.duration + 0.5)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    ok = [s[1] for s in rec.samples if 200 <= s[2] < 300]
    print(json.dumps({
        "mode": "slow", "kind": args.kind, "conns": args.conns, "requests": len(rec.samples),
        "ok": len(ok), "errors": rec.errors,
        "p50_ms": round(percentile(ok, 50) * 1e3, 3),
    }))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("mode", choices=["spike", "slow"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--phases", default="0:3:1,3:6:40,6:9:1")
    p.add_argument("--bin", type=float, default=0.25)
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--kind", choices=["head", "body"], default="head")
    p.add_argument("--chunk", type=int, default=4)
    p.add_argument("--step-ms", type=float, default=20.0)
    p.add_argument("--body", type=int, default=256)
    args = p.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("loadgen: loopback targets only")
    asyncio.run(run_spike(args) if args.mode == "spike" else run_slow(args))


if __name__ == "__main__":
    main()
