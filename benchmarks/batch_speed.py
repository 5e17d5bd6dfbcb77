"""Cost of one augmented training batch on this CPU, with and without the in-memory wave cache.

    python benchmarks/batch_speed.py [CONFIG] [--epochs 3] [--batches N] [--threads 1] [--root DIR]

Builds the config's data module as ``spokenword fit`` does (``--data.*`` values of CONFIG, default
``configs/fsdd_cnn_newvoices.yaml``) and makes its training batches
(:class:`spokenword.data.AugmentedRecordings`: decode, waveform augmentation, features) in this process,
as a DataLoader worker does, for ``--epochs`` passes over the same ``--batches`` batches of the training
split (seeded: both arms make the same batches). Arms: ``wave_cache_mb=0`` (every recording read from
disk every epoch, as before 2026-12-03) and the default budget (decoded recordings kept after their first
visit). Checks that both arms made the same batches bit for bit (exit status 1 if not). Prints ms per batch in the first pass (cold: both read the files) and the median over the later
passes, and the later passes' ratio to the uncached arm. A DataLoader worker runs one torch thread, hence
``--threads 1``. The files' page cache is warmed before any timing, so "cold" is decoding, not the disk.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "fsdd_cnn_newvoices.yaml"


def datamodule(config: Path, root: str | None):
    """The config's :class:`~spokenword.data.AudioDataModule`, built by the CLI's own parser."""
    from spokenword.data.datamodule import AudioDataModule
    from spokenword.training.task import SpokenWordTask
    from spokenword.training.cli import SpokenWordCLI, trainer_defaults

    args = ["--config", str(config)] + (["--data.root", root] if root else [])
    cli = SpokenWordCLI(SpokenWordTask, AudioDataModule, run=False, trainer_defaults=trainer_defaults(),
                        args=args, auto_configure_optimizers=False)
    return cli.datamodule


def batches(dm, n_batches: int | None) -> list[list[int]]:
    """Index lists of the first ``n_batches`` shuffled training batches (all of an epoch if ``None``)."""
    n = len(dm.split.train)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).tolist()
    chunks = [order[i : i + dm.batch_size] for i in range(0, n, dm.batch_size)]
    return chunks[:n_batches] if n_batches else chunks


def time_arm(dm, chunks: list[list[int]], epochs: int, wave_cache_mb: float) -> tuple[list[float], list[torch.Tensor]]:
    """Mean ms per batch of each pass over ``chunks``, and the last pass's feature batches."""
    from spokenword.data.datamodule import AugmentedRecordings

    index = {label: i for i, label in enumerate(dm.labels)}
    targets = torch.tensor([index[r.label] for r in dm.split.train], dtype=torch.long)
    data = AugmentedRecordings([r.path for r in dm.split.train], targets, dm.sample_rate, dm.features,
                               dm.wave_augment, dm.random_crop, wave_cache_mb=wave_cache_mb)
    torch.manual_seed(0)
    passes = []
    for _ in range(epochs):
        made = []
        start = time.perf_counter()
        for chunk in chunks:
            made.append(data.__getitems__(chunk)[0])
        passes.append(1000 * (time.perf_counter() - start) / len(chunks))
    return passes, made


def main(argv: list[str] | None = None) -> int:
    from spokenword.data.datamodule import AugmentedRecordings

    default_mb = inspect.signature(AugmentedRecordings).parameters["wave_cache_mb"].default
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", type=Path, default=CONFIG)
    parser.add_argument("--epochs", type=int, default=3, help="passes over the batches (>= 2)")
    parser.add_argument("--batches", type=int, default=None, help="batches per pass (default: a whole epoch)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: as a DataLoader worker)")
    parser.add_argument("--root", default=None, help="data root (default $SPOKENWORD_DATA)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first pass is the cold one)")
    torch.set_num_threads(args.threads)
    dm = datamodule(args.config, args.root)
    if not dm.fresh_training_batches:
        print(f"{args.config}: no wave_augment or random_crop, so training batches come from the feature "
              "cache and nothing here applies", file=sys.stderr)
        return 2
    chunks = batches(dm, args.batches)
    for record in dm.split.train:  # page cache warm for both arms
        record.path.read_bytes()
    arms = {"no wave cache (wave_cache_mb=0)": 0.0, f"wave cache (default, {default_mb:g} MB)": default_mb}
    rows = {name: time_arm(dm, chunks, args.epochs, mb) for name, mb in arms.items()}
    (uncached, first), (_, second) = rows.values()
    same = all(torch.equal(a, b) for a, b in zip(first, second))
    base = statistics.median(uncached[1:])
    print(f"{args.config.name}: {len(chunks)} batches of {dm.batch_size} per pass, {args.epochs} passes, "
          f"{args.threads} thread(s), {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print("| arm | first pass ms/batch | later passes ms/batch | later / no cache |")
    print("|---|---|---|---|")
    for name, (passes, _) in rows.items():
        later = statistics.median(passes[1:])
        print(f"| {name} | {passes[0]:.0f} | {later:.0f} | {later / base:.2f}x |")
    print(f"same batches in both arms (last pass, bit for bit): {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    from spokenword.data.corpora import DatasetError

    try:
        raise SystemExit(main())
    except DatasetError as err:
        raise SystemExit(f"batch_speed: {err}") from None
