"""Hostile and broken audio (issue 34): what a few hundred damaged files cost, and what becomes of them.

    python -m benchmarks.hostile [MODEL] [--data.root DIR] [--passes 10] [--every 1] [--bomb-seconds 660]
        [--threads 1] [--out DIR] [--name NAME]

MODEL: a checkpoint, export or run folder (default ``runs/fsdd_cnn_newvoices``: its newest finished
run's best checkpoint). Builds the fuzz corpus of the tests (:mod:`tests.reliability.hostile`: seeded
mutations of one FSDD recording in WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3 and AIFF; ``--every K`` keeps
every K-th file for a quick run) in a temporary folder, plus the "worst" files: silent FLAC bombs of
``--bomb-seconds`` at 8 and 48 kHz, with their length stated and left unknown. Then:

* ``damage``: each file classified on its own in this process (``load_model(MODEL)``, as ``classify``):
  per kind of damage, the count of each outcome (``classified``, ``rejected`` (an ``AudioError``),
  ``too long`` (the decode limit), ``crash: TYPE`` (anything else: a bug)); the time of each
  rejection (median, p99, max; target: every one within 1 s).
* ``cli``: ``spokenword classify MODEL`` in a child process, once on the good files and once on the
  same batch with the worst files mixed in: peak RSS of each (``ru_maxrss``; target: within 200 MB),
  exit codes, error lines, tracebacks (target 0), good files classified (target: all).
* ``server``: ``spokenword serve MODEL`` (its defaults: 10 s, 5 MB) as a child process on 127.0.0.1
  (a free port), the whole corpus POSTed to ``/predict`` ``--passes`` times, one request at a time:
  status counts (target: no 5xx), the server's RSS before the first pass and after each (target:
  growth <= 50 MB), tracebacks in its output (target 0). Bounded: each request times out after 30 s
  and the phase stops after ``--max-seconds``; the server is always stopped.

Writes ``OUT/hostile/<model>-<machine>.json`` (:mod:`benchmarks.common`) with the figures and the
``damage`` table, and prints them. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks import common

BASE_CLIP = "3_jackson_12.wav"
GOOD = ["0_jackson_10.wav", "1_nicolas_11.wav", "2_george_12.wav", "4_lucas_13.wav", "5_yweweler_14.wav",
        "6_theo_15.wav", "7_jackson_16.wav", "8_nicolas_17.wav", "9_george_18.wav"]
DEFAULT_MODEL = "runs/fsdd_cnn_newvoices"
TARGETS = {"tracebacks": 0, "crashes": 0, "server_5xx": 0, "good_unclassified": 0, "max_rejection_s": 1.0,
           "cli_rss_difference_mb": 200.0, "server_rss_growth_mb": 50.0}

#: ``spokenword classify`` in a child process that writes its own peak RSS (KiB) to argv[1]
_CLI = ("import json, resource, sys\n"
        "from spokenword.cli import main\n"
        "code = main(sys.argv[2:])\n"
        "open(sys.argv[1], 'w').write(json.dumps({'code': code, 'maxrss_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))\n"
        "raise SystemExit(code)\n")
_SERVER = ("import sys\n"
           "from spokenword.serve import serve\n"
           "serve(sys.argv[1], port=int(sys.argv[2]), log_level='warning')\n")


def worst_files(rate_pairs=((8000, "8k"), (48_000, "48k")), seconds: float = 660.0) -> list:
    """Silent FLAC bombs: ``seconds`` of silence at each rate (kB on disk), length stated and unknown."""
    from tests.reliability import hostile

    samples = []
    for rate, tag in rate_pairs:
        bomb = hostile.encode(np.zeros(int(seconds * rate), np.float32), rate, "FLAC", "PCM_16")
        samples.append(hostile.Sample(f"worst_{tag}_stated.flac", "flac", "bomb:stated-length", bomb, "too-long"))
        samples.append(hostile.Sample(f"worst_{tag}_unknown.flac", "flac", "bomb:unknown-length",
                                      hostile.flac_streaminfo(bomb, total=0), "too-long"))
    return samples


def damage(model: str, samples, paths) -> tuple[list[str], list[float], dict]:
    """Classify each file on its own: its outcome and seconds."""
    from spokenword.audio import AudioError, TooLongError
    from spokenword.inference.load import load_model

    classifier = load_model(model)
    outcomes, seconds = [], []
    for path in paths:
        start = time.perf_counter()
        try:
            classifier(str(path))
            outcome = "classified"
        except TooLongError:
            outcome = "too long"
        except AudioError:
            outcome = "rejected"
        except Exception as err:  # noqa: BLE001 - counted: a bug, the figure that must stay 0
            outcome = f"crash: {type(err).__name__}"
        seconds.append(time.perf_counter() - start)
        outcomes.append(outcome)
    return outcomes, seconds, {"runtime": classifier.runtime}


def run_cli(model: str, files: list[Path], work: Path, tag: str, threads: int | None) -> dict:
    """``spokenword classify MODEL FILES --json`` in a child process: exit code, peak RSS, output."""
    report, err = work / f"{tag}.json", work / f"{tag}.stderr"
    argv = ["classify", str(model), *map(str, files), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    started = time.perf_counter()
    with open(err, "wb") as stderr:
        done = subprocess.run([sys.executable, "-c", _CLI, str(report), *argv], stdout=subprocess.PIPE, stderr=stderr,
                              timeout=1800, env=env, cwd=common.REPO)
    elapsed = time.perf_counter() - started
    stats = json.loads(report.read_text()) if report.exists() else {"code": done.returncode, "maxrss_kib": 0}
    text = err.read_text(errors="replace")
    results = json.loads(done.stdout or b"{}") if stats["code"] in (0, 1) else {}
    return {"exit_code": done.returncode, "peak_rss_mb": stats["maxrss_kib"] / 1024, "seconds": elapsed,
            "classified": len(results), "error_lines": sum(line.startswith("error: ") for line in text.splitlines()),
            "tracebacks": text.count("Traceback"), "results": results}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, data: bytes, name: str) -> tuple[int, float]:
    """POST ``data`` as the multipart field ``file``; ``(status, seconds)``."""
    boundary = "hostile-benchmark-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        err.read()
        status = err.code
    except OSError:
        status = 0  # no answer: counted apart
    return status, time.perf_counter() - started


def run_server(model: str, samples, passes: int, work: Path, max_seconds: float) -> dict:
    """The corpus POSTed ``passes`` times to a ``spokenword serve`` child: statuses, RSS (of the server and its
    worker processes together), tracebacks."""
    port = free_port()
    log = work / "server.stderr"
    with open(log, "wb") as stderr:
        server = subprocess.Popen([sys.executable, "-c", _SERVER, str(model), str(port)], stdout=subprocess.DEVNULL,
                                  stderr=stderr, cwd=common.REPO)
    try:
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                raise SystemExit(f"server exited with {server.returncode}: {log.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("server did not answer /health within 300 s") from None
                time.sleep(0.2)
        processes = common.process_tree(server.pid)  # the server and its worker processes
        good = next(s for s in samples if s.kind == "valid")
        post(port, good.data, good.name)  # warm: the first request builds what later ones reuse
        rss = [common.tree_rss_mb(processes)]
        statuses: dict[int, int] = {}
        seconds: list[float] = []
        stop = time.monotonic() + max_seconds
        done_passes = 0
        for _ in range(passes):
            for sample in samples:
                if time.monotonic() > stop:
                    break
                status, took = post(port, sample.data, sample.name)
                statuses[status] = statuses.get(status, 0) + 1
                if status != 200:
                    seconds.append(took)
            else:
                done_passes += 1
                rss.append(common.tree_rss_mb(processes))
                continue
            break
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    text = log.read_text(errors="replace")
    return {"passes": done_passes, "requests": sum(statuses.values()), "statuses": dict(sorted(statuses.items())),
            "5xx": sum(n for s, n in statuses.items() if s >= 500 or s == 0),
            "rss_mb_after_each_pass": [round(x, 1) for x in rss], "rss_growth_mb": rss[-1] - rss[0],
            "rejection_max_s": max(seconds, default=0.0), "tracebacks": text.count("Traceback")}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hostile", description=__doc__.split("\n\n")[0],
                                     parents=[common.flags(threads=1)])
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                        help=f"checkpoint, export or run folder (default {DEFAULT_MODEL})")
    parser.add_argument("--passes", type=int, default=10, help="times the corpus is sent to the server (default 10)")
    parser.add_argument("--every", type=int, default=1, help="keep every K-th file of the corpus (default 1: all)")
    parser.add_argument("--bomb-seconds", type=float, default=660.0, help="length of the silent FLAC bombs (s)")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="time limit of the server phase (s)")
    parser.add_argument("--seed", type=int, default=34, help="the corpus's seed")
    args = parser.parse_args(argv)
    if args.passes < 1 or args.every < 1:
        parser.error("--passes and --every must be at least 1")
    from spokenword.data.splits import resolve_root
    from spokenword.inference.base import model_file

    sys.path.insert(0, str(common.REPO))  # the corpus is the tests' (tests/reliability/hostile.py)
    from tests.reliability import hostile

    common.set_threads(args.threads)
    recordings = resolve_root(args.data_root) / "fsdd" / "recordings"
    model = str(model_file(args.model))
    corpus = hostile.build(recordings / BASE_CLIP, args.seed, bomb_seconds=args.bomb_seconds,
                           extra_good=[recordings / name for name in GOOD])
    corpus = [s for i, s in enumerate(corpus) if s.kind == "valid" or i % args.every == 0]
    worst = worst_files(seconds=args.bomb_seconds)
    samples = corpus + worst
    with tempfile.TemporaryDirectory(prefix="spokenword-hostile-") as tmp:
        work = Path(tmp)
        paths = hostile.write(samples, work / "corpus")
        print(f"corpus: {len(corpus)} files + {len(worst)} worst; bases skipped: {hostile.skipped() or 'none'}", flush=True)

        outcomes, seconds, info = damage(model, samples, paths)
        table = hostile.damage_table(samples, outcomes)
        rejected = [t for t, o in zip(seconds, outcomes) if o != "classified"]
        slowest = sorted(((t, s.name, o) for t, s, o in zip(seconds, samples, outcomes) if o != "classified"), reverse=True)[:5]
        print(f"damage: {len(samples)} files classified one by one ({info['runtime']})", flush=True)

        good = [p for s, p in zip(samples, paths) if s.good]
        worst_paths = paths[len(corpus):]
        clean = run_cli(model, good, work, "good", args.threads)
        mixed = run_cli(model, good + worst_paths, work, "good+worst", args.threads)
        print(f"cli: peak RSS {clean['peak_rss_mb']:.0f} MB (good files) vs {mixed['peak_rss_mb']:.0f} MB (+ worst)", flush=True)

        server = run_server(model, samples, args.passes, work, args.max_seconds)

    crashes = sum(o.startswith("crash") for o in outcomes)
    good_unclassified = sum(str(p) not in mixed["results"] for p in good)
    figures = {
        "files": len(samples),
        "outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))},
        "crashes": crashes,
        "rejection_s": {"median": float(np.median(rejected)) if rejected else 0.0,
                        "p99": float(np.percentile(rejected, 99)) if rejected else 0.0,
                        "max": max(rejected, default=0.0), "over_1s": sum(t > 1.0 for t in rejected)},
        "slowest_rejections": [{"file": n, "outcome": o, "seconds": round(t, 3)} for t, n, o in slowest],
        "cli": {"good_only": {k: v for k, v in clean.items() if k != "results"},
                "good_plus_worst": {k: v for k, v in mixed.items() if k != "results"},
                "rss_difference_mb": mixed["peak_rss_mb"] - clean["peak_rss_mb"],
                "good_unclassified": good_unclassified},
        "server": server,
        "tracebacks": clean["tracebacks"] + mixed["tracebacks"] + server["tracebacks"],
        "targets": TARGETS,
    }
    figures["met"] = {
        "tracebacks": figures["tracebacks"] == 0, "crashes": crashes == 0, "server_5xx": server["5xx"] == 0,
        "good_unclassified": good_unclassified == 0, "max_rejection_s": figures["rejection_s"]["max"] <= 1.0,
        "cli_rss_difference_mb": figures["cli"]["rss_difference_mb"] <= TARGETS["cli_rss_difference_mb"],
        "server_rss_growth_mb": server["rss_growth_mb"] <= TARGETS["server_rss_growth_mb"],
    }
    m = common.machine()
    print(f"machine: {common.describe(m)}")
    print(f"{'kind of damage':<24}outcomes")
    for kind, counts in table.items():
        print(f"{kind:<24}{', '.join(f'{o} {n}' for o, n in sorted(counts.items()))}")
    print(f"rejections: median {figures['rejection_s']['median'] * 1000:.1f} ms, p99 {figures['rejection_s']['p99'] * 1000:.1f} ms, "
          f"max {figures['rejection_s']['max'] * 1000:.1f} ms ({slowest[0][1] if slowest else '-'})")
    print(f"cli peak RSS: {clean['peak_rss_mb']:.1f} MB good only, {mixed['peak_rss_mb']:.1f} MB with the worst files "
          f"(+{figures['cli']['rss_difference_mb']:.1f} MB); exit codes {clean['exit_code']}/{mixed['exit_code']}")
    print(f"server: {server['passes']} passes, {server['requests']} requests, statuses {server['statuses']}, "
          f"RSS {server['rss_mb_after_each_pass']} MB (growth {server['rss_growth_mb']:+.1f} MB)")
    for key, ok in figures["met"].items():
        print(f"target {key:<24}{'ok' if ok else 'MISSED'}")
    protocol = (f"fuzz corpus of tests/reliability/hostile.py (seed {args.seed}, every {args.every}. file) from FSDD "
                f"{BASE_CLIP} + {len(GOOD)} good takes, + {len(worst)} silent FLAC bombs of {args.bomb_seconds:g} s; "
                f"damage: one file per call in-process; cli: child process, ru_maxrss; server: spokenword serve defaults, "
                f"{args.passes} sequential passes of POST /predict over 127.0.0.1, psutil RSS of the server and its worker processes")
    name = args.name or f"{common.model_name(model)}-{common.machine_slug(m)}"
    common.write_result(args.out, "hostile", name, protocol=protocol, command=common.command("hostile", argv),
                        recipe={"model": common.relative(model), "passes": args.passes, "every": args.every,
                                "bomb_seconds": args.bomb_seconds, "seed": args.seed, "threads": args.threads},
                        figures=figures, damage=table, m=m)
    return 0 if all(figures["met"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
