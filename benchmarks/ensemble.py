"""Ensembles of LOSO checkpoints: does averaging several trained models help new voices?

    python benchmarks/ensemble.py benchmarks/results/fsdd_cnn_newvoices [OUT ...] [--root DATA] [--checkpoint last]
    python benchmarks/ensemble.py OUT OUT [...] --noise [--seed 0]   # the ensemble in noise, official split

Every ``runs/loso-SPEAKER*`` checkpoint (best validation; with ``--checkpoint last``, the last epoch's) in the given accuracy-benchmark results
folders is a member of SPEAKER's ensemble: all seeds of the fold (``--loso-seeds``) and, with more
folders, other recipes' runs of the same fold. Each member scores the held-out speaker's 500
recordings through its own checkpoint's preprocessing (:class:`spokenword.inference.checkpoint.Classifier`); the
ensemble decides by the mean of the members' probabilities. Nothing is chosen on the held-out
speaker: the members are all the runs there are. Prints, per speaker, the members' mean accuracy
and the ensemble's, with the LOSO mean and worst of both. The cost of an ensemble is one training
run and one forward pass per member (README "Accuracy"). ``--checkpoint last`` also answers another
question with one folder: the members' row is then each fold's score at the end of the schedule, to
set beside the best-validation checkpoint's (the rule of the runs' own test).

``--noise`` scores the ensemble of the folders' official-split runs of one seed (``--seed``, default 0)
under the accuracy benchmark's noise protocol (official test split, white and babble noise at 20,
10 and 5 dB SNR, the same deterministic noise), through :class:`spokenword.ensemble.Ensemble`, and
prints it beside each member's own noise unit when the folder has one.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch


CHECKPOINTS = {"best": "best-*.ckpt", "last": "last.ckpt"}


def fold_runs(outs: list[Path], checkpoint: str = "best") -> dict[str, list[Path]]:
    """One checkpoint (``best``: best validation; ``last``: the last epoch) of every finished LOSO
    run under ``OUT/runs``, grouped by held-out speaker."""
    folds: dict[str, list[Path]] = {}
    for out in outs:
        for run in sorted(out.glob("runs/loso-*")):
            if not (run / "version_0" / "report.json").exists():  # a fold still training
                continue
            found = sorted(run.glob(f"version_0/checkpoints/{CHECKPOINTS[checkpoint]}"))
            if not found:  # a run without that checkpoint
                continue
            speaker = run.name.removeprefix("loso-").split("-seed")[0]
            folds.setdefault(speaker, []).append(found[-1])
    return folds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outs", type=Path, nargs="+", help="accuracy benchmark results folders with LOSO runs")
    parser.add_argument("--root", default=None, help="data root (default $SPOKENWORD_DATA)")
    parser.add_argument("--checkpoint", choices=sorted(CHECKPOINTS), default="best",
                        help="each run's best-validation checkpoint (default) or its last epoch's")
    parser.add_argument("--noise", action="store_true",
                        help="score the ensemble of the folders' official-split runs in noise instead of LOSO")
    parser.add_argument("--seed", type=int, default=0, help="the official-split seed whose runs --noise combines")
    parser.add_argument("--noise-clips", type=int, default=None, help="--noise on the first N test clips only (smoke runs)")
    args = parser.parse_args(argv)
    if args.noise:
        return noise_table(args.outs, args.seed, args.root, args.noise_clips)
    from spokenword.data.corpora import FSDD
    from spokenword.data.splits import resolve_root
    from spokenword.inference.load import load_model

    torch.set_num_threads(1)
    folds = fold_runs(args.outs, args.checkpoint)
    if not folds:
        parser.error("no finished LOSO runs under " + ", ".join(f"{o}/runs" for o in args.outs))
    recordings = FSDD().recordings(resolve_root(args.root))
    members_acc: dict[str, float] = {}
    ensemble_acc: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for speaker, checkpoints in sorted(folds.items()):
        mine = [r for r in recordings if r.speaker == speaker]
        total, accs, labels = None, [], None
        clips: dict[str, list] = {}  # the fold's clips after the host steps per front end: members sharing one decode once
        for checkpoint in checkpoints:
            classifier = load_model(checkpoint)
            labels = labels or list(classifier.labels)  # the first member's order; the others' columns follow it
            key = classifier.features.digest(classifier.sample_rate)
            if key not in clips:
                clips[key] = [classifier.featurize(classifier.waveform(r.path)) for r in mine]
            y = np.array([labels.index(r.label) for r in mine])
            probs = np.concatenate([classifier.probabilities(clips[key][i : i + 64]) for i in range(0, len(mine), 64)])
            probs = probs[:, [list(classifier.labels).index(label) for label in labels]]
            accs.append(100.0 * float((probs.argmax(-1) == y).mean()))
            total = probs if total is None else total + probs
        members_acc[speaker] = statistics.mean(accs)
        ensemble_acc[speaker] = 100.0 * float((total.argmax(-1) == y).mean())
        sizes[speaker] = len(checkpoints)
    speakers = sorted(folds)
    print("| | " + " | ".join(f"{s} ({sizes[s]})" for s in speakers) + " | mean | worst |")
    print("|---|" + "---|" * (len(speakers) + 2))
    for name, row in (("members (mean)", members_acc), ("ensemble", ensemble_acc)):
        cells = " | ".join(f"{row[s]:.1f}" for s in speakers)
        print(f"| {name} | {cells} | {statistics.mean(row.values()):.1f} | {min(row.values()):.1f} |")
    return 0


def noise_table(outs: list[Path], seed: int, root: str | None, clips: int | None = None) -> int:
    """Print the noise protocol's row for each member (its own noise unit, when present) and for
    the ensemble of the folders' ``official-seedN`` checkpoints."""
    import importlib.util
    import json

    # the sibling script (benchmarks/ is not a package): one noise protocol, defined once
    spec = importlib.util.spec_from_file_location("accuracy_benchmark", Path(__file__).with_name("accuracy.py"))
    accuracy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(accuracy)
    NOISES, SNRS_DB, noise_unit, noise_unit_name = accuracy.NOISES, accuracy.SNRS_DB, accuracy.noise_unit, accuracy.noise_unit_name

    checkpoints, rows = [], []
    for out in outs:
        unit = out / "units" / f"official-seed{seed}.json"
        if not unit.is_file():
            raise SystemExit(f"ensemble.py: error: {unit} is missing: run accuracy.py with --protocols official (seed {seed})")
        checkpoints.append(json.loads(unit.read_text())["checkpoint"])
        member = out / "units" / f"{noise_unit_name(seed)}.json"
        if member.is_file():
            rows.append((out.name, json.loads(member.read_text())))
    torch.set_num_threads(1)
    rows.append((f"ensemble ({len(checkpoints)})", noise_unit(checkpoints, root, clips)))
    columns = ["clean"] + [f"{kind}_{db}dB" for kind in NOISES for db in SNRS_DB]
    print("| official split, seed %d | " % seed + " | ".join(c.replace("_", " ") for c in columns) + " | ms per clip |")
    print("|---|" + "---|" * (len(columns) + 1))
    for name, unit in rows:
        cells = " | ".join(f"{100 * unit['accuracy'][c]:.1f}" for c in columns)
        print(f"| {name} | {cells} | {unit['inference_ms_per_clip']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
