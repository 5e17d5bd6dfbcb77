"""Serving benchmarks of ``spokenword serve``: HTTP load and live (WebSocket) latency.

    python -m benchmarks.serve load MODEL [--requests 10000] [--concurrency 16] [--max-seconds 180]
        [--runtime auto|onnx|torch] [--batch-ms 2 | --no-batch] [--http httptools|h11] [--loop uvloop|asyncio]
    python -m benchmarks.serve live MODEL [--words 40] [--frame-ms 20] [--lookahead-ms 300] [--input-rate 48000]
        [--browser]

Shared options: ``--data.root``, ``--out``, ``--name`` (:mod:`benchmarks.common`; the server runs in its
own process, so ``--threads`` is not one of them). Each prints its table and writes
``OUT/serve/<load|live>-<model>-<machine>.json``. ``--also MODEL`` serves the ensemble of the models, as
``spokenword serve --also`` does (the default model: its two checkpoints). Both start the server on
127.0.0.1 (a free port) as a child process (``spokenword.serve.serve``, the code behind ``spokenword serve``: with no
options, exactly its defaults); traffic goes to 127.0.0.1 only, and the server is always stopped.

``load``: posts a 1-second clip (16-bit wav at the model's rate) to ``/predict`` ``--requests`` times
from ``--concurrency`` keep-alive clients (raw asyncio HTTP/1.1 connections in one process, so the load
generator itself costs little CPU next to the server), after ``--warmup`` unmeasured requests.
Figures: requests/s, p50/p99/max latency (ms), errors, server CPU seconds and RSS (MB) before/after.
Bounded in count (``--requests``) and time (``--max-seconds``). Targets (2 cores): 0 errors,
p99 <= 50 ms, >= 300 req/s, RSS growth <= 50 MB.

``live``: how soon after the end of a spoken word its digit arrives in continuous mode. Builds a
stream of official **test** recordings (FSDD takes 0-4, random digits and speakers, 0.4-0.8 s of
silence between words, deterministic) and plays it to ``/ws/transcribe`` in real time
(``--frame-ms`` frames, each sent when its last sample would have been spoken). Per word, in ms:

* ``audio after word``: audio the server had to receive after the end of the recording before the
  transcriber gave the word out (``decided_at`` minus the clip's end): the hangover of the settings
  (segmenter lookahead, gap and smoothing; the transcriber holding a word back in case a fragment of
  it follows), not of the machine.
* ``frame to event``: from sending the frame that let the server close the word to receiving the
  event (server decode, segmenter, classifier, JSON, loopback).
* ``word end to event``: from the moment the word's last sample was "spoken" (real-time clock of the
  stream) to receiving the event: the sum of the above plus the frame's own buffering.

``--browser`` also plays the same stream through Chromium's fake microphone into the page in continuous
mode (AudioContext at the model's rate, AudioWorklet, 20 ms frames) and reports the page's own figures:
``frame to event`` as the page measures it, and ``event to paint`` (receiving the message to the next
painted frame). The page shows a digit ``word end to event`` (as measured without the browser, minus the
client's frame buffering, plus the page's) + ``event to paint`` after the word ends, plus the sound
card's input latency (``AudioContext.baseLatency``). Bounded: the stream is ``--words`` words long
(about 1.3 s each). Target: digit shown within 300 ms of the end of the word.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks import common

# -- the server in a child process ------------------------------------------------------------------

#: the child's program: ``serve(model, port, **options)``; ``lookahead_ms`` (when given) sets the
#: segmenter lookahead of the live endpoint
_PROGRAM = (
    "import json, sys\n"
    "from dataclasses import replace\n"
    "from spokenword.serve import serve\n"
    "from spokenword.serve.live import LiveSettings, live_vad\n"
    "options = json.loads(sys.argv[3])\n"
    "lookahead = options.pop('lookahead_ms', None)\n"
    "if lookahead is not None:\n"
    "    options['live'] = LiveSettings(vad=replace(live_vad(), lookahead_ms=lookahead))\n"
    "serve(sys.argv[1], port=int(sys.argv[2]), log_level='warning', **options)\n"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, options: dict, timeout_s: float = 180.0) -> subprocess.Popen:
    """Start ``serve(model, port=port, **options)`` and return once ``/health`` answers 200.

    Exits with the server's own error output when it dies first, or after ``timeout_s`` seconds.
    """
    proc = subprocess.Popen([sys.executable, "-c", _PROGRAM, str(model), str(port), json.dumps(options)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not answer /health within {timeout_s:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
        return json.load(r)


@contextlib.contextmanager
def served(model: str, options: dict):
    """``spokenword serve`` of ``model`` on a free loopback port for the block: ``(server, port, health)``;
    the server is stopped when the block ends, whatever happens in it."""
    port = free_port()
    server = start_server(model, port, options)
    try:
        yield server, port, health(port)
    finally:
        stop_server(server)


def _write(args, argv, arm: str, protocol: str, recipe: dict, figures: dict, m: dict) -> Path:
    model = "+".join(common.model_name(path) for path in [args.model, *args.also])
    name = args.name or f"{arm}-{model}-{common.machine_slug(m)}"
    return common.write_result(args.out, "serve", name, arm=arm, protocol=protocol, command=common.command("serve", argv),
                               recipe=recipe, figures=figures, m=m)


# -- load --------------------------------------------------------------------------------------------

TARGETS = {"errors": 0, "p99_ms": 40.0, "requests_per_s": 600.0, "rss_growth_mb": 50.0}  # the default model's service targets (docs/serving.md)


def one_second_clip(rate: int, source: str | None) -> bytes:
    """A 1-second 16-bit mono wav at ``rate`` Hz: ``source`` padded/cut to 1 s, else a synthetic vowel-like tone."""
    import soundfile as sf

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


async def send_load(port: int, clip: bytes, requests: int, concurrency: int, max_seconds: float):
    request = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\n"
               f"Content-Length: {len(clip)}\r\n\r\n").encode() + clip
    jobs, latencies, errors = list(range(requests)), [], []
    start = time.perf_counter()
    deadline = time.monotonic() + max_seconds
    await asyncio.gather(*(client(port, request, jobs, latencies, errors, deadline) for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start


def load(args, argv) -> int:
    options = {"runtime": args.runtime, "http": args.http, "loop": args.loop, **({"also": args.also} if args.also else {})}
    if args.no_batch:
        options["batch_ms"] = None
    elif args.batch_ms is not None:
        options["batch_ms"] = args.batch_ms
    if args.max_batch is not None:
        options["max_batch"] = args.max_batch
    if args.workers is not None:
        options["workers"] = args.workers
    load_at_start = common.load_average()
    with served(args.model, options) as (server, port, info):
        clip = one_second_clip(int(info["sample_rate"]), args.clip)
        processes = common.process_tree(server.pid)  # the server and its worker processes
        # the processes that serve: the workers (not multiprocessing's resource tracker), or the server itself
        workers = sum("resource_tracker" not in " ".join(p.cmdline()) for p in processes[1:]) or 1
        rss_start = common.tree_rss_mb(processes)
        asyncio.run(send_load(port, clip, args.warmup, args.concurrency, 60))
        rss_before = common.tree_rss_mb(processes)
        cpu_before = common.tree_cpu_seconds(processes)
        load_before = common.load_average()
        latencies, errors, elapsed = asyncio.run(send_load(port, clip, args.requests, args.concurrency, args.max_seconds))
        load_after = common.load_average()
        cpu_after = common.tree_cpu_seconds(processes)
        rss_after = common.tree_rss_mb(processes)
    m = common.machine()
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
        "server_cpu_s": cpu_after - cpu_before,
        "rss_at_start_mb": rss_start,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "rss_growth_mb": rss_after - rss_before,
        "worker_processes": workers,
    }
    print(f"spokenword serve load: {args.requests} requests x {len(clip)} B 1-s clip, {args.concurrency} clients "
          f"on the same machine; runtime {info.get('runtime')}; server options {json.dumps(options)}")
    print(f"machine: {common.describe(m)}")
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
    protocol = (f"{args.requests} POST /predict of a {len(clip)} B 1-s wav from {args.concurrency} keep-alive clients on the "
                f"same machine (after {args.warmup} unmeasured), at most {args.max_seconds:g} s; latency per request")
    figures.update({"runtime": info.get("runtime"), "server_options": options, "targets": TARGETS,
                    "load": {"server_start": load_at_start, "before": load_before, "after": load_after},
                    "error_lines": sorted(set(errors))[:5]})
    _write(args, argv, "load", protocol, {"model": str(args.model), "options": options}, figures, m)
    return 0


# -- live --------------------------------------------------------------------------------------------

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def build_stream(recordings: Path, words: int, rate: int, seed: int = 0):
    """``(wave, digits, regions)``: ``words`` test-split clips (takes 0-4) with silence between them;
    ``regions`` are each clip's ``(start, end)`` in samples."""
    from spokenword import audio

    rng = np.random.default_rng(seed)
    parts = [np.zeros(int(0.5 * rate), np.float32)]
    position, digits, regions = len(parts[0]), "", []
    while len(digits) < words:
        digit, speaker, take = int(rng.integers(10)), SPEAKERS[int(rng.integers(len(SPEAKERS)))], int(rng.integers(5))
        path = recordings / f"{digit}_{speaker}_{take}.wav"
        if not path.exists():
            continue
        wave = audio.load(path, rate)
        gap = np.zeros(int(rng.uniform(0.4, 0.8) * rate), np.float32)
        parts += [wave, gap]
        regions.append((position, position + len(wave)))
        position += len(wave) + len(gap)
        digits += str(digit)
    parts.append(np.zeros(int(0.5 * rate), np.float32))
    return np.concatenate(parts), digits, regions


async def play(port: int, wave: np.ndarray, rate: int, frame_ms: float):
    """Stream ``wave`` in real time; returns (ready, events with receive times, frame send times, t0)."""
    from websockets.asyncio.client import connect

    frame = max(1, int(rate * frame_ms / 1000))
    events, sends = [], []
    async with connect(f"ws://127.0.0.1:{port}/ws/transcribe", max_size=2**20) as ws:
        await ws.send(json.dumps({"sample_rate": rate, "encoding": "float32"}))
        ready = json.loads(await ws.recv())

        async def receive():
            async for message in ws:
                event = json.loads(message)
                event["received"] = time.perf_counter()
                events.append(event)

        receiver = asyncio.create_task(receive())
        t0 = time.perf_counter()
        for start in range(0, len(wave), frame):
            end = min(start + frame, len(wave))
            due = t0 + end / rate  # the frame is complete when its last sample has been spoken
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await ws.send(wave[start:end].astype("<f4").tobytes())
            sends.append((end, time.perf_counter()))
        await ws.send(json.dumps({"type": "stop"}))
        await asyncio.wait_for(receiver, 30)
    return ready, events, sends, t0


def match(events: list[dict], regions: list[tuple[int, int]], rate: int) -> list[tuple[dict, int]]:
    """Each word event with the index of the clip it overlaps most (or -1)."""
    out = []
    for e in (e for e in events if e["type"] == "word"):
        a, b = e["start"] * rate, e["end"] * rate
        overlaps = [max(0.0, min(b, d) - max(a, c)) for c, d in regions]
        best = int(np.argmax(overlaps)) if overlaps and max(overlaps) > 0 else -1
        out.append((e, best))
    return out


def summary_of(values) -> dict:
    """``{"median", "p90", "max", "count"}`` of the values that are not ``None`` (ms)."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not len(v):
        return {"median": None, "p90": None, "max": None, "count": 0}
    return {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)), "max": float(v.max()), "count": int(len(v))}


def stats(values) -> str:
    s = summary_of(values)
    if not s["count"]:
        return f"{'-':>8}{'-':>8}{'-':>8}{'-':>8}"
    return f"{s['median']:8.1f}{s['p90']:8.1f}{s['max']:8.1f}{s['count']:8d}"


def browser_run(port: int, wave: np.ndarray, rate: int, seconds: float, work: Path) -> dict:
    """Play ``wave`` through Chromium's fake microphone into the page (continuous mode) for one pass."""
    import soundfile as sf
    import soxr
    from playwright.sync_api import sync_playwright

    mic = work / "mic.wav"
    sf.write(mic, soxr.resample(wave, rate, 48000), 48000, subtype="PCM_16")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}%noloop", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.click("#mode-continuous")
            page.click("#record")
            page.wait_for_timeout(int(seconds * 1000) + 1500)
            result = page.evaluate("({timings: window.spokenwordLive.timings, base: window.spokenwordLive.base_latency_ms, "
                                   "text: document.querySelector('#transcript').textContent})")
            page.click("#record")
        finally:
            browser.close()
    return result


def live(args, argv) -> int:
    from spokenword.data.splits import resolve_root

    recordings = resolve_root(args.data_root) / "fsdd" / "recordings"
    options = {"runtime": args.runtime, **({"also": args.also} if args.also else {})}
    if args.lookahead_ms is not None:
        options["lookahead_ms"] = args.lookahead_ms
    load_at_start = common.load_average()
    with served(args.model, options) as (server, port, info):
        rate = int(info["sample_rate"])
        wave, digits, regions = build_stream(recordings, args.words, rate)
        load_before = common.load_average()
        sent_rate = args.input_rate or rate
        if sent_rate == rate:
            played = wave
        else:
            import soxr

            played = soxr.resample(wave, rate, sent_rate).astype(np.float32)
        ready, events, sends, t0 = asyncio.run(play(port, played, sent_rate, args.frame_ms))
        sends = [(end * rate / sent_rate, at) for end, at in sends]  # frame ends in samples at the model's rate
        load_after = common.load_average()
        browser = None
        if args.browser:
            with tempfile.TemporaryDirectory() as work:
                browser = browser_run(port, wave, rate, len(wave) / rate, Path(work))
    m = common.machine()

    matched = match(events, regions, rate)
    hangover, server_ms, total = [], [], []
    send_ends = np.array([e for e, _ in sends])
    for event, index in matched:
        needed = event["decided_at"] * rate
        k = int(np.searchsorted(send_ends, needed - 1))
        if k < len(sends):
            server_ms.append((event["received"] - sends[k][1]) * 1000)
        if index >= 0:
            word_end = regions[index][1] / rate
            hangover.append((event["decided_at"] - word_end) * 1000)
            total.append((event["received"] - (t0 + word_end)) * 1000)
    heard = "".join(e["label"] for e, _ in matched)
    vad = ready.get("vad", {})
    print(f"spokenword live latency: {args.words} words ({len(wave) / rate:.1f} s of FSDD test takes 0-4) played in real "
          f"time in {args.frame_ms:g} ms frames at {sent_rate} Hz to ws://127.0.0.1/ws/transcribe "
          f"({'resampled by the server' if ready.get('resampling') else 'the model rate'}); runtime {info.get('runtime')}")
    print(f"segmenter: lookahead {vad.get('lookahead_ms')} ms, min gap {vad.get('min_gap_ms')} ms, "
          f"pad {vad.get('pad_ms')} ms, hop {vad.get('hop_ms')} ms; heard {len(matched)} words for {len(digits)}; "
          f"digits {'equal' if heard == digits else 'differ'} ({sum(a == b for a, b in zip(heard, digits))} in place)")
    print(f"machine: {common.describe(m)}; load average (1/5/15 min) before the server started "
          f"{load_at_start}; before the run {load_before}; after it {load_after}")
    print(f"{'ms':<34}{'median':>8}{'p90':>8}{'max':>8}{'words':>8}")
    print(f"{'audio after word (segmenter)':<34}{stats(hangover)}")
    print(f"{'frame to event (server+loopback)':<34}{stats(server_ms)}")
    print(f"{'word end to event':<34}{stats(total)}")
    figures = {
        "words": len(digits), "heard": len(matched), "digits_equal": heard == digits,
        "digits_in_place": sum(a == b for a, b in zip(heard, digits)), "vad": vad, "runtime": info.get("runtime"),
        "audio_after_word_ms": summary_of(hangover), "frame_to_event_ms": summary_of(server_ms),
        "word_end_to_event_ms": summary_of(total),
        "load": {"server_start": load_at_start, "before": load_before, "after": load_after},
    }
    if browser is not None:
        timings = browser["timings"]
        print(f"{'browser: frame to event':<34}{stats([t['latency_ms'] for t in timings])}")
        print(f"{'browser: event to paint':<34}{stats([t['paint_ms'] for t in timings])}")
        base = browser.get("base") or 0.0
        print(f"browser heard {browser['text']!r} for {digits!r}; AudioContext.baseLatency {base:.1f} ms")
        figures["browser"] = {"frame_to_event_ms": summary_of([t["latency_ms"] for t in timings]),
                              "event_to_paint_ms": summary_of([t["paint_ms"] for t in timings]),
                              "base_latency_ms": base, "heard": browser["text"]}
        if hangover and timings:
            shown = (np.median(hangover) + args.frame_ms / 2 + np.median([t["latency_ms"] for t in timings if t["latency_ms"] is not None])
                     + np.median([t["paint_ms"] for t in timings]) + base)
            figures["browser"]["digit_shown_after_word_ms"] = float(shown)
            print(f"digit shown after the end of the word, browser (median of each part: audio after word + half a frame "
                  f"+ frame to event + event to paint + baseLatency): {shown:.0f} ms (target 300)")
    protocol = (f"{args.words} FSDD test-take words (0.4-0.8 s silence between, seed 0) played in real time in "
                f"{args.frame_ms:g} ms frames at {sent_rate} Hz to /ws/transcribe on 127.0.0.1; per word: audio after the "
                "word end before the server decided, frame to event, word end to event (ms)")
    _write(args, argv, "live", protocol, {"model": str(args.model), "options": options, "input_rate": sent_rate}, figures, m)
    return 0


# -- command line --------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="arm", required=True)
    p = sub.add_parser("load", parents=[common.flags(data=False, measures_here=False)], help="HTTP /predict under load")
    p.add_argument("model", help="checkpoint (.ckpt) or exported model (.onnx)")
    p.add_argument("--also", action="append", default=[], metavar="MODEL",
                   help="serve the ensemble of MODEL and these (as spokenword serve --also); repeatable")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--max-seconds", type=float, default=180.0, help="stop sending after this long (s)")
    p.add_argument("--warmup", type=int, default=200, help="requests sent (and not measured) first")
    p.add_argument("--clip", default=None, help="audio file used as the 1-second clip (default: synthetic)")
    p.add_argument("--runtime", choices=("auto", "onnx", "torch"), default="auto", help="as spokenword serve --runtime")
    p.add_argument("--batch-ms", type=float, default=None, help="micro-batching window (ms; default: the server's)")
    p.add_argument("--no-batch", action="store_true", help="one thread-pool call per request, no micro-batching")
    p.add_argument("--max-batch", type=int, default=None, help="most requests per batch (default: the server's)")
    p.add_argument("--workers", type=int, default=None, help="server processes (default: the server's)")
    p.add_argument("--http", choices=("auto", "httptools", "h11"), default="auto", help="uvicorn HTTP parser")
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto", help="uvicorn event loop")
    p = sub.add_parser("live", parents=[common.flags(measures_here=False)], help="latency of the continuous mode (WebSocket)")
    p.add_argument("model", help="checkpoint (.ckpt) or exported model (.onnx)")
    p.add_argument("--also", action="append", default=[], metavar="MODEL",
                   help="serve the ensemble of MODEL and these (as spokenword serve --also); repeatable")
    p.add_argument("--words", type=int, default=40, help="words in the stream (about 1.3 s each)")
    p.add_argument("--frame-ms", type=float, default=20.0, help="audio per WebSocket frame (ms)")
    p.add_argument("--lookahead-ms", type=float, default=None,
                   help="segmenter lookahead of the live endpoint (default: the server's, 50; 300 is `transcribe`'s)")
    p.add_argument("--input-rate", type=int, default=None,
                   help="send audio at this rate (Hz) instead of the model's: the server resamples (adds its buffering)")
    p.add_argument("--runtime", choices=("auto", "onnx", "torch"), default="auto")
    p.add_argument("--browser", action="store_true", help="also measure in Chromium (needs /usr/bin/chromium)")
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    return load(args, argv) if args.arm == "load" else live(args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
