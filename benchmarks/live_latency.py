"""Latency of the continuous mode: how soon after the end of a spoken word its digit arrives.

Starts ``spokenword serve`` on 127.0.0.1 (free port, a subprocess), builds a stream of official
**test** recordings (FSDD takes 0-4, random digits and speakers, 0.4-0.8 s of silence between
words, deterministic), and plays it to ``/ws/transcribe`` in real time (``--frame-ms`` frames, each
sent when its last sample would have been spoken). For every word it prints, in ms:

* ``audio after word``: audio the server had to receive after the end of the recording before
  the transcriber gave the word out (``decided_at`` minus the clip's end): the hangover of the
  settings (segmenter lookahead, gap and smoothing; the transcriber holding a word back in case a
  fragment of it follows), not of the machine.
* ``frame to event``: from sending the frame that let the server close the word to receiving the
  event (server decode, segmenter, classifier, JSON, loopback).
* ``word end to event``: from the moment the word's last sample was "spoken" (real-time clock of the
  stream) to receiving the event: the sum of the above plus the frame's own buffering.

``--browser`` also plays the same stream through Chromium's fake microphone into the page in
continuous mode (AudioContext at the model's rate, AudioWorklet, 20 ms frames) and prints the
page's own figures: ``frame to event`` as the page measures it, and ``event to paint`` (receiving
the message to the next painted frame). The page shows a digit ``word end to event`` (as measured
without the browser, minus the client's frame buffering, plus the page's) + ``event to paint``
after the word ends, plus the sound card's input latency (``AudioContext.baseLatency``, printed).

    python benchmarks/live_latency.py MODEL.ckpt [--words 40] [--frame-ms 20] [--lookahead-ms 300] [--input-rate 48000]
        [--browser]

Bounded: the stream is ``--words`` words long (about 1.3 s each), traffic goes to 127.0.0.1 only,
and the server is always stopped. Target (issue 7): digit shown within 300 ms of the end of the word.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np

from local_server import free_port, start_server  # benchmarks/local_server.py (beside this script)
from machine import cpu_model, load_average

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


def stats(values) -> str:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not len(v):
        return f"{'-':>8}{'-':>8}{'-':>8}{'-':>8}"
    return f"{np.median(v):8.1f}{np.percentile(v, 90):8.1f}{v.max():8.1f}{len(v):8d}"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="checkpoint (.ckpt) or exported model (.onnx)")
    parser.add_argument("--words", type=int, default=40, help="words in the stream (about 1.3 s each)")
    parser.add_argument("--frame-ms", type=float, default=20.0, help="audio per WebSocket frame (ms)")
    parser.add_argument("--lookahead-ms", type=float, default=None,
                        help="segmenter lookahead of the live endpoint (default: the server's, 50; 300 is `transcribe`'s)")
    parser.add_argument("--input-rate", type=int, default=None,
                        help="send audio at this rate (Hz) instead of the model's: the server resamples (adds its buffering)")
    parser.add_argument("--runtime", choices=("auto", "onnx", "torch"), default="auto")
    parser.add_argument("--browser", action="store_true", help="also measure in Chromium (needs /usr/bin/chromium)")
    parser.add_argument("--data.root", dest="root", default=None)
    args = parser.parse_args(argv)

    from spokenword.data.splits import resolve_root

    recordings = resolve_root(args.root) / "fsdd" / "recordings"
    options = {"runtime": args.runtime}
    if args.lookahead_ms is not None:
        options["lookahead_ms"] = args.lookahead_ms
    load_at_start = load_average()
    port = free_port()
    server = start_server(args.model, port, options)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            health = json.load(r)
        rate = int(health["sample_rate"])
        wave, digits, regions = build_stream(recordings, args.words, rate)
        load_before = load_average()
        sent_rate = args.input_rate or rate
        played = wave if sent_rate == rate else __import__("soxr").resample(wave, rate, sent_rate).astype(np.float32)
        ready, events, sends, t0 = asyncio.run(play(port, played, sent_rate, args.frame_ms))
        sends = [(end * rate / sent_rate, at) for end, at in sends]  # frame ends in samples at the model's rate
        load_after = load_average()
        browser = None
        if args.browser:
            import tempfile

            with tempfile.TemporaryDirectory() as work:
                browser = browser_run(port, wave, rate, len(wave) / rate, Path(work))
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()

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
          f"({'resampled by the server' if ready.get('resampling') else 'the model rate'}); runtime {health.get('runtime')}")
    print(f"segmenter: lookahead {vad.get('lookahead_ms')} ms, min gap {vad.get('min_gap_ms')} ms, "
          f"pad {vad.get('pad_ms')} ms, hop {vad.get('hop_ms')} ms; heard {len(matched)} words for {len(digits)}; "
          f"digits {'equal' if heard == digits else 'differ'} ({sum(a == b for a, b in zip(heard, digits))} in place)")
    print(f"device: CPU {cpu_model()}, {os.cpu_count()} CPUs; load average (1/5/15 min) before the server started "
          f"{load_at_start}; before the run {load_before}; after it {load_after}")
    print(f"{'ms':<34}{'median':>8}{'p90':>8}{'max':>8}{'words':>8}")
    print(f"{'audio after word (segmenter)':<34}{stats(hangover)}")
    print(f"{'frame to event (server+loopback)':<34}{stats(server_ms)}")
    print(f"{'word end to event':<34}{stats(total)}")
    if browser is not None:
        timings = browser["timings"]
        print(f"{'browser: frame to event':<34}{stats([t['latency_ms'] for t in timings])}")
        print(f"{'browser: event to paint':<34}{stats([t['paint_ms'] for t in timings])}")
        base = browser.get("base") or 0.0
        print(f"browser heard {browser['text']!r} for {digits!r}; AudioContext.baseLatency {base:.1f} ms")
        if hangover and timings:
            shown = (np.median(hangover) + args.frame_ms / 2 + np.median([t["latency_ms"] for t in timings if t["latency_ms"] is not None])
                     + np.median([t["paint_ms"] for t in timings]) + base)
            print(f"digit shown after the end of the word, browser (median of each part: audio after word + half a frame "
                  f"+ frame to event + event to paint + baseLatency): {shown:.0f} ms (target 300)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
