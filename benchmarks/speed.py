"""Speed benchmarks: inference, the training step, the augmented batch and whole training runs.

    python -m benchmarks.speed classify [MODEL ...] [--clips 300]
    python -m benchmarks.speed inference CHECKPOINT [--clips 300] [--exports DIR]
    python -m benchmarks.speed model [--batch 128] [--steps 6] [--variant KEY=VALUE[,KEY=VALUE]] ...
    python -m benchmarks.speed batch [CONFIG] [--epochs 3] [--batches N]
    python -m benchmarks.speed train [--epochs 30] [--repeats 1] [--arms ...] [--seed 0]
    python -m benchmarks.speed recipe [CONFIG ...] [--arms together apart] [--override KEY=VALUE]

Shared options: ``--data.root``, ``--threads``, ``--out``, ``--name`` (:mod:`benchmarks.common`). Each
arm prints its table and writes ``OUT/speed/<arm>-<name>-<machine>.json``.

``classify``: what ``spokenword classify`` costs with each MODEL as it ships (default: the bundled model; a
model folder such as an earlier copy of the bundle, an export or a checkpoint, each opened by
:func:`spokenword.load_model` as the command opens it), measured one model after the other in one run:
latency p50/p99 (ms) at batch 1 and throughput at batch 64 on 1-second clips from a decoded waveform
(host steps and graph; as ``inference`` below), on ``--threads`` threads (default 1); the model's files
(KiB: every member and its metadata); top-1 accuracy on the official test split (300 whole clips, each
model's own answer at its threshold). Target (the default): p50 <= 3 ms on 1 thread.

``inference``: speed, size and accuracy of a checkpoint and its exports. Runtimes: PyTorch eager
(``Classifier``), ONNX Runtime float32 and int8 (exports made here with :mod:`spokenword.inference.export`).
Every figure is end to end from a decoded waveform (features included): per-clip latency p50/p99 (ms)
at batch 1 and throughput (clips/s) at batch 64 on 1-second clips (FSDD official test recordings,
zero-padded or cut to 1 s), on ``--threads`` threads (default 1; ORT intra-op alike); file sizes
(KiB); top-1 accuracy on the official test split (takes 0-4, 300 whole clips). Target: ONNX int8
p50 <= 1 ms, file <= 120 KB.

``model``: the training-step cost of each shipped network. One step = forward, cross-entropy, backward
and an AdamW update on a batch of feature images (64x64; 32 bands x 128 frames for the speech
embedding; random values: the cost does not depend on them), for each model as the shipped configs
build it (``configs/fsdd_cnn_newvoices.yaml`` and ``fsdd_embedding_newvoices.yaml``: its backbone
frozen, random weights: the same cost as the pretrained ones), in float32 and under bf16 autocast, in
channels-last memory (as :class:`spokenword.training.callbacks.ChannelsLast`). Median ms per step after
two warm-up steps, and each network's faster precision as a multiple of the CNN's faster one.
``--variant`` adds a row for the default CNN with some of its constructor arguments changed, as a
config's ``model.net.init_args`` (or ``accuracy --override``) would change them; values are YAML
(``--variant 'channels=[16,32,96,96]' --variant dropout=0.1,batch_norm=false``).

``batch``: the cost of one augmented training batch, with and without the in-memory wave cache. Builds
the config's data module as ``spokenword fit`` does (default ``configs/fsdd_cnn_newvoices.yaml``) and
makes its training batches (:class:`spokenword.data.datamodule.AugmentedRecordings`: decode, waveform
augmentation, features) in this process, as a DataLoader worker does, for ``--epochs`` passes over the
same ``--batches`` batches of the training split (seeded: both arms make the same batches). Arms:
``wave_cache_mb=0`` (every recording read from disk every epoch) and the default budget (decoded
recordings kept after their first visit). Checks that both arms made the same batches bit for bit
(exit status 1 if not). ms per batch in the first pass (cold: both read the files) and the median over
the later passes, and the later passes' ratio to the uncached arm. A DataLoader worker runs one torch
thread, hence ``--threads 1``. The files' page cache is warmed before any timing, so "cold" is
decoding, not the disk.

``train``: spokenword's training against a minimal hand-written PyTorch loop, the reference experiment
(configs/fsdd_cnn.yaml: official split, seed ``--seed``, 30 epochs, Adam 1e-3, ExponentialLR 0.99,
batch 256, validation every epoch, best-validation weights tested). Arms: ``minimal`` (a plain loop over
in-memory tensors, features normalised once), ``spokenword`` (``spokenword fit`` as configured, progress
bar off; timed over fit + test), ``spokenword-fast`` (the same plus ``trainer.precision: bf16-mixed``, which
``spokenword fit`` runs in float32 on CPUs without bfloat16 hardware, and one evaluation batch for the whole
validation/test set), ``minimal-bf16`` (the minimal loop with the same
bf16 autocast + channels-last). The arms run one after another in this process (``--repeats``
alternates the order), so load from other users of a shared machine hits all of them; the table reports
the median wall seconds per arm and the ratio to the minimal fp32 loop, and the same for the CPU seconds
the process used (user + system, all threads): on a shared machine the CPU ratio is the steadier one,
most with ``--threads 1``. Run it niced (``nice -n 10``). Targets: spokenword <= 1.0x minimal;
spokenword-fast <= 0.6x minimal at the same test accuracy within 0.5 points.

``recipe``: what ``make train`` costs: the default's fits (the CONFIGs, default
``configs/fsdd_cnn_newvoices.yaml`` and ``configs/fsdd_embedding_newvoices.yaml``), each ``spokenword fit
--config CONFIG`` in its own process as ``make train`` starts it (its output to a log file, each arm with
a fresh feature cache, as on a new machine). Arms: ``together`` (every fit started at once with
``$SPOKENWORD_FITS_AT_ONCE``, as ``make train`` runs them, then ``spokenword evaluate`` of their ensemble
on the official split, as ``make train`` ends) and ``apart`` (one after the other, the first CONFIG
first). Figures per arm: wall seconds of each fit, of the evaluation and in all, and the CPU seconds of
all of them (user + system, with their DataLoader workers); each run's official test accuracy and torch
threads; whether each CONFIG's weights (last checkpoint) came out bit for bit the same in both arms, which
they must where its fit ran the same thread count in both (a config without DataLoader workers runs every
core alone and its share together: other float rounding, so other weights). ``--override
KEY=VALUE`` (repeatable) is passed to every fit (``--override trainer.max_epochs=2`` for a short check).
Target: ``make train`` <= 8 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from benchmarks import common

ARMS = ("classify", "inference", "model", "batch", "train", "recipe")


def _write(args, argv, arm: str, name: str, protocol: str, recipe: dict, figures: dict) -> Path:
    m = common.machine()
    name = args.name or f"{arm}-{name}-{common.machine_slug(m)}"
    return common.write_result(args.out, "speed", name, arm=arm, protocol=protocol, command=common.command("speed", argv),
                               recipe=recipe, figures=figures, m=m)


# -- inference ------------------------------------------------------------------------------------

TARGET_P50_MS, TARGET_KB = 1.0, 120.0


def _runners(checkpoint: Path, paths: dict[str, Path], threads: int) -> tuple[dict, object]:
    """name -> (file, function mapping a list of (T,) waveforms to (N, C) probabilities)."""
    from spokenword.inference.load import load_model

    classifier = load_model(checkpoint, runtime="torch")

    def eager(waves):
        return classifier.probabilities([classifier.featurize(w) for w in waves])

    def onnx_runner(path):
        model = load_model(path, threads=threads)
        return lambda waves: model.probabilities([model.featurize(w) for w in waves])

    return {
        "pytorch eager": (checkpoint, eager),
        "onnxruntime float32": (paths["onnx"], onnx_runner(paths["onnx"])),
        "onnxruntime int8": (paths["int8"], onnx_runner(paths["int8"])),
    }, classifier


def _clips(model, test, count: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """The test recordings decoded at the model's rate: whole, padded or cut to 1 s, and ``count`` of the
    1-s clips (repeated as needed) for the latency loop."""
    whole = [model.waveform(r.path) for r in test]
    second = model.sample_rate
    one_second = [np.pad(w[:second], (0, max(0, second - len(w)))) for w in whole]
    return whole, one_second, (one_second * (1 + count // len(one_second)))[:count]


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


def inference(args, argv) -> int:
    from spokenword.data.corpora import FSDD
    from spokenword.data.splits import make_split, resolve_root
    from spokenword.inference import export

    threads = args.threads or 1
    torch.set_num_threads(threads)
    root = resolve_root(args.data_root)
    out = args.exports or Path(tempfile.mkdtemp(prefix="spokenword-bench-"))
    paths = {"onnx": out / "model.onnx", "int8": out / "model.int8.onnx"}
    export.export(args.checkpoint, paths["onnx"], format="onnx")
    export.export(args.checkpoint, paths["int8"], format="onnx", int8=True, data_root=root)

    runners, classifier = _runners(args.checkpoint, paths, threads)
    test = make_split(FSDD().recordings(root), "official").test
    truth = np.array([classifier.labels.index(r.label) for r in test])
    whole, one_second, clips = _clips(classifier, test, args.clips)

    print(f"checkpoint {args.checkpoint}\nexports in {out}\n{threads} thread(s) (torch.set_num_threads, ORT intra_op)")
    header = f"{'runtime':<22}{'p50 ms':>9}{'p99 ms':>9}{'clips/s (b64)':>15}{'size KiB':>10}{'test acc %':>12}"
    print(header + "\n" + "-" * len(header))
    runtimes = {}
    for name, (path, run) in runners.items():
        p50, p99 = _latency_ms(run, clips)
        rate = _throughput(run, one_second)
        acc = float((np.concatenate([run(whole[i : i + 64]) for i in range(0, len(whole), 64)]).argmax(1) == truth).mean())
        size = Path(path).stat().st_size / 1024
        runtimes[name] = {"p50_ms": p50, "p99_ms": p99, "clips_per_s_batch64": rate, "size_kib": size, "test_acc": acc}
        print(f"{name:<22}{p50:>9.3f}{p99:>9.3f}{rate:>15.0f}{size:>10.1f}{100 * acc:>12.2f}")
    int8 = runtimes["onnxruntime int8"]
    p50, kb = int8["p50_ms"], int8["size_kib"] * 1.024
    print(f"\ntarget ONNX int8: p50 <= {TARGET_P50_MS} ms ({'met' if p50 <= TARGET_P50_MS else 'NOT met'}: {p50:.3f}), "
          f"file <= {TARGET_KB:.0f} KB ({'met' if kb <= TARGET_KB else 'NOT met'}: {kb:.1f} KB)")
    print("accuracy: official split, test = takes 0-4 (300 clips), whole clips; latency/throughput on 1-s clips")
    protocol = (f"end to end from a decoded waveform (features included), {threads} thread(s): latency p50/p99 at batch 1 "
                f"over {args.clips} 1-s clips (FSDD official test takes 0-4, padded or cut to 1 s), throughput at batch 64 "
                "for 3 s; file size; top-1 accuracy on the official test split (300 whole clips)")
    name = common.model_name(args.checkpoint)
    _write(args, argv, "inference", name, protocol, {"model": name, "checkpoint": str(args.checkpoint)},
           {"runtimes": runtimes, "targets": {"int8_p50_ms": TARGET_P50_MS, "int8_file_kb": TARGET_KB}})
    return 0


CLASSIFY_TARGET_P50_MS = 3.0


def _model_files(model) -> list[Path]:
    """The files a loaded model reads: each member's file and the metadata beside it."""
    members = getattr(model, "members", [model])
    files = []
    for member in members:
        path = Path(getattr(member, "path", "") or "")
        files += [f for f in (path, path.with_name(path.name + ".json")) if f.is_file()]
    return files


def classify(args, argv) -> int:
    from spokenword.data.corpora import FSDD
    from spokenword.data.splits import make_split, resolve_root
    from spokenword.inference.base import ModelError
    from spokenword.inference.load import load_model

    threads = args.threads or 1
    torch.set_num_threads(threads)
    root = resolve_root(args.data_root)
    test = make_split(FSDD().recordings(root), "official").test
    names = [str(m) for m in args.models] or ["bundled"]
    header = f"{'model':<48}{'p50 ms':>9}{'p99 ms':>9}{'clips/s (b64)':>15}{'size KiB':>10}{'test acc %':>12}"
    print(f"{threads} thread(s) (torch.set_num_threads, ORT intra_op)\n{header}\n" + "-" * len(header))
    rows = []
    for name in names:
        try:
            model = load_model(None if name == "bundled" else name, threads=threads)
        except ModelError as err:  # a path that is not a model: one line, nothing written
            args.usage_error(str(err))
        whole, one_second, clips = _clips(model, test, args.clips)

        def run(waves, model=model):
            return model.probabilities([model.featurize(w) for w in waves])

        p50, p99 = _latency_ms(run, clips)
        rate = _throughput(run, one_second)
        answers = [model.rank(p)[0]["label"] for i in range(0, len(whole), 64) for p in run(whole[i : i + 64])]
        acc = float(np.mean([a == r.label for a, r in zip(answers, test)]))
        size = sum(f.stat().st_size for f in _model_files(model)) / 1024
        rows.append({"model": name, "runtime": model.runtime, "p50_ms": p50, "p99_ms": p99,
                     "clips_per_s_batch64": rate, "size_kib": size, "test_acc": acc})
        print(f"{name[-48:]:<48}{p50:>9.3f}{p99:>9.3f}{rate:>15.0f}{size:>10.1f}{100 * acc:>12.2f}")
    first = rows[0]
    print(f"\ntarget ({first['model']}): p50 <= {CLASSIFY_TARGET_P50_MS} ms on 1 thread "
          f"({'met' if first['p50_ms'] <= CLASSIFY_TARGET_P50_MS and threads == 1 else 'NOT met'}: {first['p50_ms']:.3f})")
    protocol = (f"spokenword classify's work per clip, each model as it ships, one after the other in one process, {threads} "
                f"thread(s): latency p50/p99 at batch 1 over {args.clips} 1-s clips (FSDD official test takes 0-4, padded or "
                "cut to 1 s) from a decoded waveform (host steps and graph), throughput at batch 64 for 3 s; the files each "
                "model reads; top-1 accuracy (its answer at its threshold) on the official test split (300 whole clips)")
    _write(args, argv, "classify", common.model_name(names[-1]) if len(names) == 1 else "models", protocol,
           {"models": names}, {"rows": rows, "targets": {"p50_ms": CLASSIFY_TARGET_P50_MS, "threads": 1}})
    return 0


# -- model: the training step ----------------------------------------------------------------------

#: the default config's network (configs/fsdd_cnn_newvoices.yaml); --variant rows start from it
DEFAULT_CNN = {"dropout": 0.3, "batch_norm": True}
#: the feature image (bands, frames) of every network but the speech embedding's
IMAGE = (64, 64)


def models() -> dict[str, tuple[torch.nn.Module, tuple[int, int]]]:
    """name -> (network as its config builds it, its input (bands, frames))."""
    from spokenword.models import SpectrogramCNN, SpeechEmbeddingCNN

    embedding_input = (32, 128)  # configs/fsdd_embedding_newvoices.yaml: 32 bands, 128 frames
    embedding = SpeechEmbeddingCNN(10, input_size=embedding_input, hidden=128, dropout=0.3, pretrained="none")
    return {
        "SpectrogramCNN (default)": (SpectrogramCNN(**DEFAULT_CNN), IMAGE),
        "SpeechEmbeddingCNN (frozen backbone)": (embedding, embedding_input),
    }


def parse_variant(text: str) -> dict:
    """``"dropout=0.1,channels=[16,32,96,96]"`` -> ``{"dropout": 0.1, "channels": [16, 32, 96, 96]}``
    (commas inside brackets belong to the value)."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text + ","):
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(f"unbalanced brackets in {text!r}")
    args = {}
    for item in filter(None, (item.strip() for item in items)):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        try:
            args[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise ValueError(f"{key.strip()}: not a YAML value: {value!r}") from error
    if not args:
        raise ValueError(f"expected KEY=VALUE[,KEY=VALUE], got {text!r}")
    return args


def variant(text: str) -> tuple[str, torch.nn.Module]:
    """A ``--variant`` row: its label and the default CNN built with the changed arguments."""
    from spokenword.models import SpectrogramCNN

    args = parse_variant(text)
    try:
        net = SpectrogramCNN(**{**DEFAULT_CNN, **args})
    except (TypeError, ValueError) as error:
        raise ValueError(f"SpectrogramCNN({text}): {error}") from error
    return f"SpectrogramCNN (default, {', '.join(f'{k}={v}' for k, v in args.items())})", net


def step_ms(net: torch.nn.Module, batch: int, steps: int, bf16: bool, image: tuple[int, int] = IMAGE) -> float:
    """Median ms of ``steps`` training steps (after two warm-up steps) on a (batch, 1, *image) batch."""
    x = torch.randn(batch, 1, *image)
    y = torch.randint(0, 10, (batch,))
    net, x = net.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(net.parameters())
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times[2:])


#: images per timed pass of frozen_ms, and chunk sizes compared beside the task's own (FROZEN_CHUNK)
FROZEN_CLIPS, FROZEN_OTHER_CHUNKS = 512, (16, 128, 512)


def frozen_ms(passes: int) -> dict[int, float]:
    """Chunk size -> ms per clip of the embedding's frozen part (``forward_features``, no gradient) over
    ``FROZEN_CLIPS`` images: how ``frozen_views`` embeds a run's views (median of ``passes`` after one warm-up)."""
    from spokenword.models import SpeechEmbeddingCNN
    from spokenword.training.task import FROZEN_CHUNK

    net = SpeechEmbeddingCNN(10, input_size=(32, 128), pretrained="none").eval().to(memory_format=torch.channels_last)
    x = torch.randn(FROZEN_CLIPS, 1, 32, 128)
    out = {}
    with torch.no_grad():
        for chunk in sorted({FROZEN_CHUNK, *FROZEN_OTHER_CHUNKS}):
            times = []
            for _ in range(passes + 1):
                start = time.perf_counter()
                for part in x.split(chunk):
                    net.forward_features(part)
                times.append(1000 * (time.perf_counter() - start) / FROZEN_CLIPS)
            out[chunk] = statistics.median(times[1:])
    return out


def model(args, argv, error) -> int:
    nets = models()
    for text in args.variant:
        try:
            name, net = variant(text)
        except ValueError as err:
            error(f"--variant: {err}")
        nets[name] = (net, IMAGE)
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rows = []
    for name, (net, image) in nets.items():
        params = sum(p.numel() for p in net.parameters())
        fp32 = step_ms(net, args.batch, args.steps, bf16=False, image=image)
        bf16 = step_ms(net, args.batch, args.steps, bf16=True, image=image)
        rows.append((name, params, fp32, bf16))
    frozen = frozen_ms(args.steps)
    base = min(rows[0][2], rows[0][3])  # the CNN's faster precision
    print(f"Training step, batch {args.batch}, {threads} thread(s), median of {args.steps} steps")
    print("| model | params | fp32 ms/step | bf16 ms/step | best / CNN best |")
    print("|---|---|---|---|---|")
    for name, params, fp32, bf16 in rows:
        print(f"| {name} | {params:,} | {fp32:.0f} | {bf16:.0f} | {min(fp32, bf16) / base:.2f}x |")
    print("\nThe embedding's frozen part (frozen_views), forward only, fp32: ms per clip by clips per pass")
    print("| clips per pass | " + " | ".join(str(c) for c in frozen) + " |")
    print("|---|" + "---|" * len(frozen))
    print("| ms per clip | " + " | ".join(f"{ms:.2f}" for ms in frozen.values()) + " |")
    protocol = (f"one training step (forward, cross-entropy, backward, AdamW) on a batch of {args.batch} random feature "
                f"images, channels-last, fp32 and bf16 autocast, {threads} thread(s); median of {args.steps} steps after 2 warm-up")
    protocol += (f"; the embedding's frozen part (forward_features without gradient, channels-last, fp32, as frozen_views "
                 f"runs it): ms per clip over {FROZEN_CLIPS} random images passed in chunks of each size, median of "
                 f"{args.steps} passes after one warm-up")
    figures = {"rows": [{"model": n, "parameters": p, "fp32_ms": a, "bf16_ms": b, "best_over_cnn_best": min(a, b) / base}
                        for n, p, a, b in rows],
               "frozen_ms_per_clip": {str(c): ms for c, ms in frozen.items()}}
    _write(args, argv, "model", "networks", protocol,
           {"networks": list(nets), "batch": args.batch, "variants": list(args.variant)}, figures)
    return 0


# -- batch: the augmented training batch ------------------------------------------------------------

CONFIG = common.REPO / "configs" / "fsdd_cnn_newvoices.yaml"


def datamodule(config: Path, root: str | None):
    """The config's :class:`~spokenword.data.datamodule.AudioDataModule`, built by the CLI's own parser."""
    return common.build(config, *(["--data.root", root] if root else [])).datamodule


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


def batch(args, argv, error) -> int:
    from spokenword.data.datamodule import AugmentedRecordings

    default_mb = inspect.signature(AugmentedRecordings).parameters["wave_cache_mb"].default
    if args.epochs < 2:
        error("--epochs must be at least 2 (the first pass is the cold one)")
    threads = args.threads or 1
    torch.set_num_threads(threads)
    dm = datamodule(args.config, args.data_root)
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
    print(f"{Path(args.config).name}: {len(chunks)} batches of {dm.batch_size} per pass, {args.epochs} passes, "
          f"{threads} thread(s)")
    print("| arm | first pass ms/batch | later passes ms/batch | later / no cache |")
    print("|---|---|---|---|")
    figures = {"arms": [], "same_batches": same, "batches": len(chunks), "batch_size": dm.batch_size, "passes": args.epochs}
    for name, (passes, _) in rows.items():
        later = statistics.median(passes[1:])
        figures["arms"].append({"arm": name, "first_pass_ms": passes[0], "later_passes_ms": later, "later_over_no_cache": later / base})
        print(f"| {name} | {passes[0]:.0f} | {later:.0f} | {later / base:.2f}x |")
    print(f"same batches in both arms (last pass, bit for bit): {'yes' if same else 'NO'}")
    protocol = (f"{len(chunks)} augmented training batches of {dm.batch_size} (official split, seeded) made in-process as a "
                f"DataLoader worker does, {args.epochs} passes, {threads} thread(s), page cache warm; ms per batch of the first "
                "pass and median of the later passes, with and without the wave cache")
    _write(args, argv, "batch", Path(args.config).stem, protocol,
           {"config": common.relative(args.config), "batches": args.batches}, figures)
    return 0 if same else 1


# -- train: whole training runs against a minimal loop ----------------------------------------------

REFERENCE = common.REPO / "configs" / "fsdd_cnn.yaml"
TRAIN_ARMS = ("minimal", "spokenword", "spokenword-fast", "minimal-bf16")


def spokenword_args(epochs: int, workdir: Path, fast: bool, seed: int = 0, root: str | None = None) -> list[str]:
    args = ["--seed_everything", str(seed), "--trainer.max_epochs", str(epochs),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.logger.init_args.save_dir", str(workdir / "runs"),
            "--data.cache_dir", os.environ["SPOKENWORD_CACHE"]]  # one cache, filled before any timing
    if root:
        args += ["--data.root", str(root)]
    if fast:
        args += ["--trainer.precision", "bf16-mixed", "--data.eval_batch_size", "4096"]  # ChannelsLast: a default
    return args


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system, every thread)."""
    t = os.times()
    return t.user + t.system


def run_spokenword(epochs: int, workdir: Path, fast: bool, seed: int = 0, root: str | None = None) -> tuple[float, float]:
    """Seconds for fit + test, and test accuracy, through the CLI's own classes."""
    from spokenword.training.metrics import ACC

    cli = common.build(REFERENCE, *spokenword_args(epochs, workdir, fast, seed, root), seed=0)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best", verbose=False)
    seconds = time.perf_counter() - start
    return seconds, float(cli.model.test_results[ACC])


def tensors(workdir: Path, root: str | None = None) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], int]:
    """The same features, as in-memory tensors normalised by the training mean/std."""
    dm = common.build(REFERENCE, *spokenword_args(1, workdir, False, root=root)).datamodule
    dm.prepare_data()
    dm.setup("fit")
    out = {}
    for part in ("train", "val", "test"):
        data = dm.dataset(part)
        x = torch.from_numpy(data.rows[list(range(len(data)))])
        out[part] = ((x - dm.feature_mean) / dm.feature_std, data.targets)
    return out, dm.num_classes


def run_minimal(data, num_classes: int, epochs: int, fast: bool, seed: int = 0) -> tuple[float, float]:
    """Seconds and test accuracy of a plain loop doing the same experiment."""
    from spokenword.models import SpectrogramCNN

    torch.manual_seed(seed)
    start = time.perf_counter()
    net = SpectrogramCNN(num_classes=num_classes)
    if fast:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99)
    (x, y), (vx, vy), (tx, ty) = data["train"], data["val"], data["test"]

    def accuracy(images, targets):
        net.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            correct = (net(images).argmax(1) == targets).float().mean().item()
        net.train()
        return correct

    best, best_state = -1.0, None
    for _ in range(epochs):
        order = torch.randperm(len(y))
        for i in range(0, len(y), 256):
            idx = order[i : i + 256]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
                loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        acc = accuracy(vx, vy)
        if acc > best:
            best, best_state = acc, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    return time.perf_counter() - start, accuracy(tx, ty)


def train(args, argv) -> int:
    common.set_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    root = str(Path(args.data_root).resolve()) if args.data_root else None
    results: dict[str, list[tuple[float, float, float]]] = {arm: [] for arm in args.arms}
    here, cache = os.getcwd(), os.environ.get("SPOKENWORD_CACHE")
    with tempfile.TemporaryDirectory(prefix="spokenword-speed-") as tmp:
        workdir = Path(tmp)
        os.chdir(workdir)  # stray outputs of the runs land in the temporary folder
        os.environ["SPOKENWORD_CACHE"] = str(workdir / "cache")
        try:
            data, num_classes = tensors(workdir, root)  # also fills the feature cache, outside every timing
            for round_ in range(args.repeats):
                for arm in args.arms if round_ % 2 == 0 else list(reversed(args.arms)):
                    load = os.getloadavg()[0]
                    cpu = cpu_seconds()
                    if arm.startswith("minimal"):
                        seconds, acc = run_minimal(data, num_classes, args.epochs, fast=arm.endswith("bf16"), seed=args.seed)
                    else:
                        seconds, acc = run_spokenword(args.epochs, workdir / arm / str(round_), fast=arm.endswith("fast"),
                                                      seed=args.seed, root=root)
                    cpu = cpu_seconds() - cpu
                    results[arm].append((seconds, cpu, acc))
                    print(f"round {round_} {arm:<16} {seconds:7.1f} s  cpu {cpu:7.1f} s  test acc {acc:.4f}  "
                          f"(load before {load:.1f}, after {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
        finally:
            os.chdir(here)
            if cache is None:
                os.environ.pop("SPOKENWORD_CACHE", None)
            else:
                os.environ["SPOKENWORD_CACHE"] = cache
    have_base = "minimal" in results
    base = statistics.median(s for s, _, _ in results["minimal"]) if have_base else float("nan")
    base_cpu = statistics.median(c for _, c, _ in results["minimal"]) if have_base else float("nan")
    threads = torch.get_num_threads()
    print(f"\nreference experiment, official split, seed {args.seed}, {args.epochs} epochs, torch threads {threads}")
    print(f"{'arm':<16} {'seconds':>8} {'x minimal fp32':>15} {'cpu s':>8} {'cpu x minimal':>14} {'test acc':>9}")
    arms = []
    for arm, rows in results.items():
        seconds = statistics.median(s for s, _, _ in rows)
        cpu = statistics.median(c for _, c, _ in rows)
        accs = ", ".join(f"{a * 100:.2f}" for _, _, a in rows)
        arms.append({"arm": arm, "seconds": seconds, "over_minimal": seconds / base, "cpu_seconds": cpu,
                     "cpu_over_minimal": cpu / base_cpu, "test_acc": [a for _, _, a in rows]})
        print(f"{arm:<16} {seconds:>8.1f} {seconds / base:>15.2f} {cpu:>8.1f} {cpu / base_cpu:>14.2f} {accs:>9}")
    protocol = (f"the reference experiment (configs/fsdd_cnn.yaml, official split, seed {args.seed}, {args.epochs} epochs) "
                f"per arm, {args.repeats} round(s) alternating the order, {threads} torch thread(s); median wall and CPU "
                "seconds (fit + test) and their ratio to the minimal fp32 loop")
    _write(args, argv, "train", "fsdd_cnn", protocol,
           {"config": "configs/fsdd_cnn.yaml", "epochs": args.epochs, "seed": args.seed, "arms": list(args.arms)},
           {"arms": arms})
    return 0


# -- make train's fits ------------------------------------------------------------------------------

EMBEDDING = common.REPO / "configs" / "fsdd_embedding_newvoices.yaml"
RECIPE_ARMS = ("together", "apart")
TARGET_RECIPE_S = 8 * 60.0


def _children_cpu() -> float:
    """CPU seconds of this process's finished children and their own (user + system)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _spokenword(*argv: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from spokenword.cli import main; sys.exit(main(sys.argv[1:]))", *argv]


def _run_dir(save_dir: Path, config: Path) -> Path:
    """The run a fit of ``config`` made under ``save_dir`` (its logger's name is the config's)."""
    runs = sorted((save_dir / config.stem).glob("version_*"))
    if not runs:
        raise RuntimeError(f"{config.name}: no run under {save_dir / config.stem}")
    return runs[-1]


def _fit_arm(arm: str, configs: list[Path], workdir: Path, root: str | None, overrides: list[str]) -> dict:
    """Run the fits of one arm; seconds per fit (from the arm's start for ``together``), CPU, runs."""
    import subprocess

    from spokenword.training.callbacks import FITS_AT_ONCE_ENV
    from spokenword.training.metrics import ACC

    save_dir, logs = workdir / "runs", workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    common_args = ["--trainer.logger.init_args.save_dir", str(save_dir), "--data.cache_dir", str(workdir / "cache"),
                   *(["--data.root", root] if root else []), *(f"--{o}" for o in overrides)]
    env = {**os.environ, FITS_AT_ONCE_ENV: str(len(configs) if arm == "together" else 1)}  # as make train

    def start(config: Path):
        log = (logs / f"{config.stem}.log").open("w")
        return subprocess.Popen(_spokenword("fit", "--config", str(config), *common_args), stdout=log,
                                stderr=subprocess.STDOUT, cwd=workdir, env=env), log

    cpu, t0 = _children_cpu(), time.perf_counter()
    seconds: dict[str, float] = {}
    if arm == "together":
        procs = {config: start(config) for config in reversed(configs)}  # as make train: WITH first, CONFIG beside it
        waiting = dict(procs)
        while waiting:
            for config, (proc, log) in list(waiting.items()):
                if proc.poll() is not None:
                    seconds[config.name] = time.perf_counter() - t0
                    log.close()
                    del waiting[config]
            time.sleep(0.2)
        failed = [c.name for c, (proc, _) in procs.items() if proc.returncode != 0]
    else:
        failed = []
        for config in configs:
            begun = time.perf_counter()
            proc, log = start(config)
            proc.wait()
            log.close()
            seconds[config.name] = time.perf_counter() - begun
            failed += [config.name] if proc.returncode != 0 else []
    if failed:
        raise RuntimeError(f"{arm}: spokenword fit failed for {', '.join(failed)} (logs: {logs})")
    runs = {config.name: _run_dir(save_dir, config) for config in configs}
    record = {"arm": arm, "fit_seconds": {c.name: seconds[c.name] for c in configs}}
    if arm == "together" and len(configs) > 1:
        begun = time.perf_counter()
        done = subprocess.run(_spokenword("evaluate", str(runs[configs[0].name]),
                                          *(a for c in configs[1:] for a in ("--with", str(runs[c.name]))),
                                          "--split", "official", *(["--data.root", root] if root else [])),
                              cwd=workdir, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"spokenword evaluate failed: {done.stderr.strip()[-500:]}")
        record["evaluate_seconds"] = time.perf_counter() - begun
    record["seconds"] = time.perf_counter() - t0
    record["cpu_seconds"] = _children_cpu() - cpu
    record["test_acc"] = {name: json.loads((run / "report.json").read_text())["test"][ACC] for name, run in runs.items()}
    record["threads"] = {name: json.loads((run / "run_info.json").read_text())["cpu"]["threads"] for name, run in runs.items()}
    record["runs"] = {name: str(run) for name, run in runs.items()}
    return record


def _same_weights(a: Path, b: Path) -> bool:
    first, second = (torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
                     for run in (a, b))
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def recipe(args, argv, error) -> int:
    configs = [Path(c).resolve() for c in (args.configs or [CONFIG, EMBEDDING])]  # the fits run in a work folder
    missing = [str(c) for c in configs if not c.is_file()]
    if missing:
        error(f"no such config: {', '.join(missing)}")
    if len({c.stem for c in configs}) != len(configs):
        error("each config once: runs are found by the config's name")
    root = str(Path(args.data_root).resolve()) if args.data_root else None
    with tempfile.TemporaryDirectory(prefix="spokenword-recipe-") as tmp:
        arms = []
        for arm in args.arms:
            print(f"{arm}: {', '.join(c.name for c in configs)} ...", file=sys.stderr, flush=True)
            arms.append(_fit_arm(arm, configs, Path(tmp) / arm, root, args.override))
        same = None
        if len(arms) == 2:
            same = {c.name: _same_weights(Path(arms[0]["runs"][c.name]), Path(arms[1]["runs"][c.name])) for c in configs}
    for record in arms:
        del record["runs"]  # temporary folders
    print(f"\nmake train's fits ({', '.join(c.name for c in configs)}), each spokenword fit in its own process"
          + (f"; overrides: {' '.join(args.override)}" if args.override else ""))
    print("| arm | " + " | ".join(f"{c.stem} s (official %)" for c in configs) + " | evaluate s | all s | CPU s |")
    print("|---|" + "---|" * (len(configs) + 3))
    for r in arms:
        fits = " | ".join(f"{r['fit_seconds'][c.name]:.0f} ({100 * r['test_acc'][c.name]:.2f})" for c in configs)
        evaluate = f"{r['evaluate_seconds']:.0f}" if "evaluate_seconds" in r else "–"
        print(f"| {r['arm']} | {fits} | {evaluate} | {r['seconds']:.0f} | {r['cpu_seconds']:.0f} |")
    # a fit's float rounding depends on its thread count: only fits that ran the same count must match
    alike = {c.name: len({r["threads"][c.name] for r in arms}) == 1 for c in configs}
    if same is not None:
        print("same weights in both arms: " + ", ".join(
            f"{name} {'yes' if ok else 'NO' if alike[name] else 'no'}"
            + ("" if alike[name] else f" ({' and '.join(str(r['threads'][name]) for r in arms)} threads: other float rounding)")
            for name, ok in same.items()))
    together = next((r for r in arms if r["arm"] == "together"), None)
    if together is not None and not args.override:
        met = together["seconds"] <= TARGET_RECIPE_S
        print(f"target: make train's fits and evaluation <= {TARGET_RECIPE_S:.0f} s: {together['seconds']:.0f} s, "
              f"{'met' if met else 'NOT met'}")
    protocol = ("make train's fits: each spokenword fit --config CONFIG in its own process (output to a log, a fresh "
                "feature cache per arm); together: all started at once, as make train runs them, then spokenword "
                "evaluate of the ensemble on the official split; apart: one after the other. Wall seconds per fit, "
                "of the evaluation and in all; CPU seconds of the processes and their workers; official test accuracy "
                "of each run and the torch threads it trained on; bit-identical weights across the arms (required where a fit ran "
                "the same thread count in both)")
    _write(args, argv, "recipe", "default" if not args.configs else "-".join(c.stem for c in configs), protocol,
           {"configs": [c.relative_to(common.REPO).as_posix() if c.resolve().is_relative_to(common.REPO) else str(c)
                        for c in configs], "overrides": list(args.override), "arms": list(args.arms)},
           {"arms": arms, "same_weights": same, "target_seconds": TARGET_RECIPE_S})
    return 0 if same is None or all(ok for name, ok in same.items() if alike[name]) else 1


# -- command line ----------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="arm", required=True)
    p = sub.add_parser("classify", parents=[common.flags(threads=1)], help="ms per clip of models as they ship")
    p.add_argument("models", nargs="*", type=Path, help="model folders, exports or checkpoints (default: the bundled model)")
    p.add_argument("--clips", type=int, default=300, help="clips timed for latency (batch 1)")
    p = sub.add_parser("inference", parents=[common.flags(threads=1)], help="ms per clip: Classifier, ONNX, int8")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--clips", type=int, default=300, help="clips timed for latency (batch 1)")
    p.add_argument("--exports", type=Path, default=None, help="folder for the exports (default: a temporary one)")
    p = sub.add_parser("model", parents=[common.flags(threads=1, data=False)], help="the training step of each network")
    p.add_argument("--batch", type=int, default=128, help="batch size (the configs' 128)")
    p.add_argument("--steps", type=int, default=6, help="timed steps per model and precision")
    p.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                   help="also time the default CNN with these constructor arguments changed (repeatable)")
    p = sub.add_parser("batch", parents=[common.flags(threads=1)], help="an augmented batch, with and without the wave cache")
    p.add_argument("config", nargs="?", type=Path, default=CONFIG)
    p.add_argument("--epochs", type=int, default=3, help="passes over the batches (>= 2)")
    p.add_argument("--batches", type=int, default=None, help="batches per pass (default: a whole epoch)")
    p = sub.add_parser("train", parents=[common.flags(threads=None)], help="spokenword fit against a minimal loop")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--repeats", type=int, default=1, help="rounds; even rounds run the arms in reverse order")
    p.add_argument("--arms", nargs="+", choices=TRAIN_ARMS, default=list(TRAIN_ARMS))
    p.add_argument("--seed", type=int, default=0, help="seed of every arm (initial weights, batch order)")
    p = sub.add_parser("recipe", parents=[common.flags(data=True, measures_here=False)],
                       help="make train's fits: together (as make train) and one after the other")
    p.add_argument("configs", nargs="*", type=Path, help="the configs make train fits (default: the default's two)")
    p.add_argument("--arms", nargs="+", choices=RECIPE_ARMS, default=list(RECIPE_ARMS))
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE", help="passed to every fit (repeatable)")
    for arm in sub.choices.values():
        arm.set_defaults(usage_error=arm.error)  # a bad value found after parsing: the arm's usage and exit 2
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    top = parser()
    args = top.parse_args(argv)
    if args.arm == "classify":
        return classify(args, argv)
    if args.arm == "inference":
        return inference(args, argv)
    if args.arm == "model":
        return model(args, argv, args.usage_error)
    if args.arm == "batch":
        return batch(args, argv, args.usage_error)
    if args.arm == "recipe":
        return recipe(args, argv, args.usage_error)
    return train(args, argv)


if __name__ == "__main__":
    from spokenword.data.corpora import DatasetError

    try:
        raise SystemExit(main())
    except DatasetError as err:
        raise SystemExit(f"speed: {err}") from None
