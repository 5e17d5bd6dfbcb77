"""Load benchmark of ``spokenword serve``: N requests from C concurrent keep-alive clients.

Starts the server on 127.0.0.1 (free port) as a subprocess (``spokenword.serve.serve``, the code
behind ``spokenword serve``: with no options, exactly its defaults), posts a 1-second clip (16-bit wav
at the model's rate) to ``/predict`` and prints a table: requests/s, p50/p99 latency (ms), errors and
server RSS (MB) before/after, with the machine (CPU model, count) and the load average before and
after. Bounded in count (``--requests``) and time (``--max-seconds``); traffic goes to 127.0.0.1
only; the server is always stopped. The clients are raw asyncio HTTP/1.1 connections in one
process, so the load generator itself costs little CPU next to the server.

    python benchmarks/serve_load.py MODEL.ckpt [--requests 10000] [--concurrency 16] [--max-seconds 180]
        [--runtime auto|onnx|torch] [--batch-ms 2 | --no-batch] [--http httptools|h11] [--loop uvloop|asyncio]

Targets (issue 4, 2 cores): 0 errors, p99 <= 50 ms, >= 300 req/s, RSS growth <= 50 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import time
import urllib.request

import numpy as np
import psutil
import soundfile as sf

from local_server import free_port, start_server  # benchmarks/local_server.py (beside this script)
from machine import cpu_model, load_average

TARGETS = {"errors": 0, "p99_ms": 50.0, "requests_per_s": 300.0, "rss_growth_mb": 50.0}


def one_second_clip(rate: int, source: str | None) -> bytes:
    """A 1-second 16-bit mono wav at ``rate`` Hz: ``source`` padded/cut to 1 s, else a synthetic vowel-like tone."""
    if source:
        from spokenword.audio import load

        wave = load(source, rate)
    else:
        t = np.arange(rate // 2) / rate
        wave = (0.4 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 900 * t) * np.hanning(len(t))).astype(np.float32)
    wave = np.pad(wave, (0, max(0, rate - len(wave))))[:rate]
    out = io.BytesIO()
    sf.write(out, wave, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


async def client(port: int, request: bytes, jobs: list[int], latencies: list[float], errors: list[str],
                 deadline: float) -> None:
    """One keep-alive connection posting ``request`` until ``jobs`` is empty or the deadline passes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while jobs and time.monotonic() < deadline:
            jobs.pop()
            start = time.perf_counter()
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                              if line.startswith(b"content-length:"))
                body = await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, StopIteration, ValueError) as err:
                errors.append(f"{type(err).__name__}: {err}")
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append(time.perf_counter() - start)
            if status != 200 or b'"label"' not in body:
                errors.append(f"HTTP {status}: {body[:200]!r}")
    finally:
        writer.close()


async def load(port: int, clip: bytes, requests: int, concurrency: int, max_seconds: float):
    request = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\n"
               f"Content-Length: {len(clip)}\r\n\r\n").encode() + clip
    jobs, latencies, errors = list(range(requests)), [], []
    start = time.perf_counter()
    deadline = time.monotonic() + max_seconds
    await asyncio.gather(*(client(port, request, jobs, latencies, errors, deadline) for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="checkpoint (.ckpt) or exported model (.onnx)")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=180.0, help="stop sending after this long (s)")
    parser.add_argument("--warmup", type=int, default=200, help="requests sent (and not measured) first")
    parser.add_argument("--clip", default=None, help="audio file used as the 1-second clip (default: synthetic)")
    parser.add_argument("--runtime", choices=("auto", "onnx", "torch"), default="auto", help="as spokenword serve --runtime")
    parser.add_argument("--batch-ms", type=float, default=None, help="micro-batching window (ms; default: the server's)")
    parser.add_argument("--no-batch", action="store_true", help="one thread-pool call per request, no micro-batching")
    parser.add_argument("--max-batch", type=int, default=None, help="most requests per batch (default: the server's)")
    parser.add_argument("--http", choices=("auto", "httptools", "h11"), default="auto", help="uvicorn HTTP parser")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto", help="uvicorn event loop")
    args = parser.parse_args(argv)

    options = {"runtime": args.runtime, "http": args.http, "loop": args.loop}
    if args.no_batch:
        options["batch_ms"] = None
    elif args.batch_ms is not None:
        options["batch_ms"] = args.batch_ms
    if args.max_batch is not None:
        options["max_batch"] = args.max_batch
    load_at_start = load_average()
    port = free_port()
    server = start_server(args.model, port, options)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            health = json.load(r)
        clip = one_second_clip(int(health["sample_rate"]), args.clip)
        proc = psutil.Process(server.pid)
        rss_start = proc.memory_info().rss
        asyncio.run(load(port, clip, args.warmup, args.concurrency, 60))
        rss_before = proc.memory_info().rss
        cpu_before = proc.cpu_times()
        load_before = load_average()
        latencies, errors, elapsed = asyncio.run(load(port, clip, args.requests, args.concurrency, args.max_seconds))
        load_after = load_average()
        cpu_after = proc.cpu_times()
        rss_after = proc.memory_info().rss
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    done = len(latencies)
    ms = np.array(latencies) * 1000 if done else np.array([float("nan")])
    figures = {
        "answered": done,
        "errors": len(errors),
        "seconds": elapsed,
        "requests_per_s": done / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "server_cpu_s": (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system),
        "rss_at_start_mb": rss_start / 2**20,
        "rss_before_mb": rss_before / 2**20,
        "rss_after_mb": rss_after / 2**20,
        "rss_growth_mb": (rss_after - rss_before) / 2**20,
    }
    print(f"spokenword serve load: {args.requests} requests x {len(clip)} B 1-s clip, {args.concurrency} clients "
          f"on the same machine; runtime {health.get('runtime')}; server options {json.dumps(options)}")
    print(f"device: CPU {cpu_model()}, {os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} usable by this process")
    print(f"load average (1/5/15 min): before the server started {load_at_start}; "
          f"before the run {load_before}; after it {load_after}")
    print(f"{'metric':<18}{'value':>12}  target")
    for key, value in figures.items():
        target = TARGETS.get(key)
        verdict = ""
        if target is not None:
            ok = value >= target if key == "requests_per_s" else value <= target
            verdict = f"{'>=' if key == 'requests_per_s' else '<='} {target:g}  {'ok' if ok else 'MISSED'}"
        print(f"{key:<18}{value:>12.1f}  {verdict}" if isinstance(value, float) else f"{key:<18}{value:>12}  {verdict}")
    for line in sorted(set(errors))[:5]:
        print("error:", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
