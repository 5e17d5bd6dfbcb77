"""How cost grows with corpus size: feature extraction, cache size, epoch time and peak memory.

For each size, a synthetic corpus of 1-s 16 kHz speech-like clips (harmonic tones with a pitch
glide, formant-like band emphasis, an amplitude envelope and noise; one word = one pitch/formant
pattern) is generated deterministically in the folder-per-label layout under a temporary folder,
then, in a fresh child process per size (so peak RSS is that size's alone):

* features are extracted into the cache (clips/s, all worker processes),
* one training epoch of the reference CNN reads batches from the cache (seconds per epoch),
* the child's peak RSS (``ru_maxrss``) over both is reported, with the cache size on disk,
* then (not counted in the peak) one process, one thread, the first ``--reference`` training clips
  are extracted clip by clip as the inference front end does (``audio.load`` + ``features.extract``)
  and as the cache does (a chunk at a time, ``features.extract_batch``), alternately, best of three:
  a speed-up measured at the same moment, so steadier than clips/s on a machine shared with other work.

Usage::

    nice -n 10 .venv/bin/python -m benchmarks.scale --sizes 3000 30000 100000 --workers 2

Shared options: ``--threads`` (torch threads of the child; default ``--workers``), ``--out``, ``--name``
(:mod:`benchmarks.common`; no ``--data.root``: the corpora are synthetic). The figures are written to
``OUT/scale/<machine>.json``.

Targets (issue 6): >= 2,000 clips/s extraction on 2 cores; peak RSS at 100k <= 1.5x that at 3k.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks import common

RATE = 16000
WORDS = 10
VARIANTS = 8
#: 16 kHz log-mel images, as for Speech Commands
FEATURES = {"kind": "logmel", "n_fft": 512, "hop_length": 160, "n_bins": 64, "n_frames": 64, "time_axis": "fixed"}


@functools.lru_cache(maxsize=WORDS * VARIANTS)
def _voiced(word: int, variant: int) -> np.ndarray:
    """A voiced 'word': harmonics of a gliding pitch shaped by three formants, float64 (RATE,)."""
    rng = np.random.default_rng(word * 1_000_003 + variant)
    t = np.arange(RATE) / RATE
    f0 = 100 + 15 * word + rng.uniform(-10, 10)
    pitch = f0 * (1 + 0.2 * np.sin(2 * np.pi * (0.5 + 0.1 * word) * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    formants = (300 + 70 * word, 1200 + 110 * word, 2500 + 40 * word)
    wave = np.zeros(RATE)
    for h in range(1, 30):
        gain = sum(np.exp(-(((h * pitch - f) / 150.0) ** 2)) for f in formants) / h**0.5
        wave += gain * np.sin(h * phase)
    return wave / np.abs(wave).max()


def clip(word: int, index: int) -> np.ndarray:
    """One second of speech-like audio for ``word``, varied by ``index`` (one of a few voicings, a
    random onset and length, level and background noise): int16 (RATE,)."""
    rng = np.random.default_rng(word * 1_000_003 + index + 7)
    t = np.arange(RATE) / RATE
    start, length = rng.uniform(0.05, 0.3), rng.uniform(0.4, 0.6)
    envelope = np.clip(np.minimum((t - start) / 0.05, (start + length - t) / 0.08), 0, 1)
    wave = _voiced(word, index % VARIANTS) * envelope * rng.uniform(0.3, 0.9) + 0.01 * rng.standard_normal(RATE)
    return (np.clip(wave, -1, 1) * 32767).astype(np.int16)


def generate(folder: Path, size: int) -> None:
    """``size`` clips in ``folder/word{k}/speaker{s}_nohash_{i}.wav``; reused if already complete."""
    done = folder / ".complete"
    if done.exists():
        return
    per_word = -(-size // WORDS)
    written = 0
    lists: dict[str, list[str]] = {"validation_list.txt": [], "testing_list.txt": []}
    for word in range(WORDS):
        (folder / f"word{word}").mkdir(parents=True, exist_ok=True)
        for i in range(per_word):
            if written == size:
                break
            name = f"word{word}/s{i % 50:02d}_nohash_{i}.wav"  # 50 speakers; 8x: validation, 9x: test
            sf.write(folder / name, clip(word, i), RATE, subtype="PCM_16")
            if i % 10 == 8:
                lists["validation_list.txt"].append(name)
            elif i % 10 == 9:
                lists["testing_list.txt"].append(name)
            written += 1
    for list_name, names in lists.items():
        (folder / list_name).write_text("".join(f"{n}\n" for n in names))
    done.touch()


def measure(folder: Path, cache_dir: Path, workers: int, dtype: str, epoch: bool, reference: int,
            threads: int | None = None) -> dict:
    """Runs in a child process: extraction, one epoch, peak RSS; then the one-process comparison."""
    import torch

    from spokenword.data import cache as cache_module
    from spokenword.data.cache import FeatureCache
    from spokenword.data.datamodule import AudioDataModule
    from spokenword.data.corpora import SpeechCommands
    from spokenword.frontend.settings import FeatureSettings
    from spokenword.models import SpectrogramCNN

    torch.set_num_threads(threads or workers)
    settings = FeatureSettings(**FEATURES)
    dm = AudioDataModule(root=str(folder.parent), corpus=SpeechCommands(folder.name), split="corpus", sample_rate=RATE,
                         features=settings, cache_dir=str(cache_dir), cache_dtype=dtype, batch_size=256)
    dm.cache = FeatureCache(cache_dir, workers=workers)
    paths = [r.path for r in dm.split.train]
    start = time.perf_counter()
    dm.prepare_data()  # extracts every part into the cache
    extract_s = time.perf_counter() - start
    n = len(dm.recordings)
    dm.setup("fit")
    result = {"clips": n, "extract_s": extract_s, "clips_per_s": n / extract_s,
              "cache_mb": sum(p.stat().st_size for p in cache_dir.glob("*.npy")) / 2**20}
    if epoch:
        net = SpectrogramCNN(num_classes=dm.num_classes)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        mean, std = dm.feature_mean, dm.feature_std
        start = time.perf_counter()
        for x, y in dm.train_dataloader():
            loss = torch.nn.functional.cross_entropy(net((x - mean) / std), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        result["epoch_s"] = time.perf_counter() - start
        result["train_clips"] = len(paths)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if reference:
        sample = paths[:reference]
        chunks = [(sample[i : i + cache_module.CHUNK], RATE, settings) for i in range(0, len(sample), cache_module.CHUNK)]
        torch.set_num_threads(1)
        times: dict[str, list[float]] = {"per_clip": [], "cache": []}
        for _ in range(3):
            start = time.perf_counter()
            for p in sample:
                cache_module.extract_file(p, RATE, settings)
            times["per_clip"].append(time.perf_counter() - start)
            start = time.perf_counter()
            for chunk in chunks:
                cache_module._extract_chunk(chunk)
            times["cache"].append(time.perf_counter() - start)
        result["one_process_per_clip_clips_per_s"] = len(sample) / min(times["per_clip"])
        result["one_process_cache_clips_per_s"] = len(sample) / min(times["cache"])
    result["load"] = os.getloadavg()[0]
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0],
                                     parents=[common.flags(threads=None, data=False)])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 30000, 100000])
    parser.add_argument("--workers", type=int, default=2, help="extraction processes and torch threads")
    parser.add_argument("--dtype", default="float16", choices=["float32", "float16"])
    parser.add_argument("--no-epoch", action="store_true", help="skip the training epoch")
    parser.add_argument("--dir", type=Path, default=None, help="where corpora are generated (default: a temp dir, removed)")
    parser.add_argument("--reference", type=int, default=1000, help="clips for the one-process comparison (0: skip it)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        out = measure(Path(args.child[0]), Path(args.child[1]), args.workers, args.dtype, not args.no_epoch, args.reference,
                      args.threads)
        print(json.dumps(out))
        return 0
    base = args.dir.resolve() if args.dir else Path(tempfile.mkdtemp(prefix="spokenword-scale-"))  # the child runs in the repository
    rows = []
    try:
        for size in args.sizes:
            folder = base / f"corpus{size}"
            start = time.perf_counter()
            generate(folder, size)
            generated = time.perf_counter() - start
            cache = base / f"cache{size}"
            shutil.rmtree(cache, ignore_errors=True)
            cmd = [sys.executable, "-m", "benchmarks.scale", "--child", str(folder), str(cache), "--workers", str(args.workers),
                   "--dtype", args.dtype, "--reference", str(args.reference)]
            if args.no_epoch:
                cmd.append("--no-epoch")
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=common.REPO)
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["generate_s"] = generated
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            shutil.rmtree(cache, ignore_errors=True)
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\nworkers={args.workers} cache_dtype={args.dtype} features={FEATURES} load={os.getloadavg()[0]:.1f}")
    print(f"{'clips':>8} {'extract clips/s':>16} {'cache MB':>9} {'train clips':>12} {'s/epoch':>8} {'peak RSS MB':>12} "
          f"{'RSS / first':>11} {'1-proc per-clip/cache clips/s':>30} {'load':>5}")
    for row in rows:
        one = (f"{row['one_process_per_clip_clips_per_s']:.0f} / {row['one_process_cache_clips_per_s']:.0f} "
               f"({row['one_process_cache_clips_per_s'] / row['one_process_per_clip_clips_per_s']:.2f}x)"
               if "one_process_cache_clips_per_s" in row else "-")
        print(f"{row['clips']:>8} {row['clips_per_s']:>16.0f} {row['cache_mb']:>9.1f} {row.get('train_clips', 0):>12} "
              f"{row.get('epoch_s', float('nan')):>8.1f} {row['peak_rss_mb']:>12.0f} {row['peak_rss_mb'] / rows[0]['peak_rss_mb']:>11.2f} "
              f"{one:>30} {row['load']:>5.1f}")
    protocol = (f"synthetic 1-s 16 kHz speech-like corpora of {', '.join(map(str, args.sizes))} clips, one child process per "
                f"size: feature extraction into the cache ({args.workers} workers, {args.dtype})"
                + ("" if args.no_epoch else ", one training epoch of the reference CNN from the cache")
                + ", the child's peak RSS"
                + (f"; then one process, one thread, the first {args.reference} clips extracted clip by clip and as the "
                   "cache does, best of three" if args.reference else ""))
    recipe = {"sizes": args.sizes, "workers": args.workers, "dtype": args.dtype, "epoch": not args.no_epoch,
              "reference": args.reference, "features": FEATURES}
    m = common.machine()
    common.write_result(args.out, "scale", args.name or common.machine_slug(m), protocol=protocol,
                        command=common.command("scale", argv), recipe=recipe, figures={"rows": rows}, m=m)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
