"""Inference speed, size and accuracy of a checkpoint and its exports.

Runtimes: PyTorch eager (``Classifier``), ONNX Runtime float32 and int8 (exports made
here with :mod:`spokenword.inference.export`). Every figure is end to end from a decoded waveform (features
included): per-clip latency p50/p99 at batch 1 and throughput at batch 64 on 1-second clips (FSDD
official test recordings, zero-padded or cut to 1 s), both on one thread; file sizes; top-1 accuracy
on the official test split (takes 0-4, 300 whole clips). Target: ONNX int8 p50 <= 1 ms, file <= 120 KB.

    python benchmarks/inference.py CHECKPOINT [--data.root DIR] [--clips 300] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from spokenword.data.corpora import FSDD
from spokenword.data.splits import make_split, resolve_root
from spokenword.inference import export
from spokenword.inference.load import load_model

TARGET_P50_MS, TARGET_KB = 1.0, 120.0


def _runners(checkpoint: Path, paths: dict[str, Path]) -> dict:
    """name -> (file, function mapping a list of (T,) waveforms to (N, C) probabilities)."""
    classifier = load_model(checkpoint, runtime="torch")

    def eager(waves):
        return classifier.probabilities([classifier.featurize(w) for w in waves])

    def onnx_runner(path):
        model = load_model(path, threads=1)
        return lambda waves: model.probabilities([model.featurize(w) for w in waves])

    return {
        "pytorch eager": (checkpoint, eager),
        "onnxruntime float32": (paths["onnx"], onnx_runner(paths["onnx"])),
        "onnxruntime int8": (paths["int8"], onnx_runner(paths["int8"])),
    }, classifier


def _latency_ms(run, clips: list[np.ndarray]) -> tuple[float, float]:
    for wave in clips[:20]:
        run([wave])
    times = []
    for wave in clips:
        start = time.perf_counter()
        run([wave])
        times.append(time.perf_counter() - start)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def _throughput(run, clips: list[np.ndarray], batch: int = 64, seconds: float = 3.0) -> float:
    batches = [clips[i : i + batch] for i in range(0, len(clips) - batch + 1, batch)]
    run(batches[0])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for chunk in batches:
            run(chunk)
            done += len(chunk)
    return done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data.root", dest="data_root", default=None, help="data root holding fsdd/recordings")
    parser.add_argument("--clips", type=int, default=300, help="clips timed for latency (batch 1)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the exports (default: a temporary one)")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    root = resolve_root(args.data_root)
    out = args.out or Path(tempfile.mkdtemp(prefix="spokenword-bench-"))
    paths = {"onnx": out / "model.onnx", "int8": out / "model.int8.onnx"}
    export.export(args.checkpoint, paths["onnx"], format="onnx")
    export.export(args.checkpoint, paths["int8"], format="onnx", int8=True, data_root=root)

    runners, classifier = _runners(args.checkpoint, paths)
    test = make_split(FSDD().recordings(root), "official").test
    truth = np.array([classifier.labels.index(r.label) for r in test])
    whole = [classifier.waveform(r.path) for r in test]
    second = classifier.sample_rate
    one_second = [np.pad(w[:second], (0, max(0, second - len(w)))) for w in whole]
    clips = (one_second * (1 + args.clips // len(one_second)))[: args.clips]

    print(f"checkpoint {args.checkpoint}\nexports in {out}\n"
          f"1 thread (torch.set_num_threads(1), ORT intra_op 1); {os.cpu_count()} CPUs visible; python {sys.version.split()[0]}, "
          f"torch {torch.__version__}")
    header = f"{'runtime':<22}{'p50 ms':>9}{'p99 ms':>9}{'clips/s (b64)':>15}{'size KiB':>10}{'test acc %':>12}"
    print(header + "\n" + "-" * len(header))
    rows = {}
    for name, (path, run) in runners.items():
        p50, p99 = _latency_ms(run, clips)
        rate = _throughput(run, one_second)
        acc = float((np.concatenate([run(whole[i : i + 64]) for i in range(0, len(whole), 64)]).argmax(1) == truth).mean())
        size = Path(path).stat().st_size / 1024
        rows[name] = (p50, size)
        print(f"{name:<22}{p50:>9.3f}{p99:>9.3f}{rate:>15.0f}{size:>10.1f}{100 * acc:>12.2f}")
    p50, size = rows["onnxruntime int8"]
    print(f"\ntarget ONNX int8: p50 <= {TARGET_P50_MS} ms ({'met' if p50 <= TARGET_P50_MS else 'NOT met'}: {p50:.3f}), "
          f"file <= {TARGET_KB:.0f} KB ({'met' if size * 1.024 <= TARGET_KB else 'NOT met'}: {size * 1.024:.1f} KB)")
    print("accuracy: official split, test = takes 0-4 (300 clips), whole clips; latency/throughput on 1-s clips")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
