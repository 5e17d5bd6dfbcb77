"""Test-time augmentation over frequency warps, scored on the LOSO checkpoints of an accuracy run.

    python benchmarks/tta.py benchmarks/results/fsdd_cnn_newvoices [--root DATA]

For each ``OUT/runs/loso-SPEAKER`` checkpoint (the seed-0 folds; ``loso-SPEAKER-seedN`` are skipped), the held-out speaker's 500 recordings go through the
checkpoint's own preprocessing (:class:`spokenword.predict.Classifier`), then the model scores each
feature image at several frequency-axis warps (:func:`spokenword.augment.warp_frequency`, the
training-time vocal-tract-length perturbation) and the mean of the probabilities decides. The warp
sets were fixed before the run (the training warp range is +-18 %), never chosen on these speakers.
Prints accuracy per speaker, the mean and the worst, for each set. Not adopted (README "Accuracy").
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

WARPS = {
    "none": (1.0,),
    "3 warps 0.9-1.1": (0.9, 1.0, 1.1),
    "5 warps 0.85-1.15": (0.85, 0.925, 1.0, 1.075, 1.15),
    "7 warps 0.82-1.18": (0.82, 0.88, 0.94, 1.0, 1.06, 1.12, 1.18),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="an accuracy benchmark results folder with LOSO runs")
    parser.add_argument("--root", default=None, help="data root (default $SPOKENWORD_DATA)")
    args = parser.parse_args(argv)
    from spokenword.data.feature_augment import warp_frequency
    from spokenword.data.splits import resolve_root
    from spokenword.data.corpora import FSDD
    from spokenword.inference.checkpoint import Classifier

    torch.set_num_threads(1)
    recordings = FSDD().recordings(resolve_root(args.root))
    scores: dict[str, dict[str, float]] = {name: {} for name in WARPS}
    for run in sorted(args.out.glob("runs/loso-*")):
        if "-seed" in run.name:  # other seeds of a fold (accuracy.py --loso-seeds)
            continue
        speaker = run.name.removeprefix("loso-")
        checkpoint = sorted(run.glob("version_0/checkpoints/best-*.ckpt"))[-1]
        classifier = Classifier.from_checkpoint(checkpoint)
        mine = [r for r in recordings if r.speaker == speaker]
        x = torch.stack([classifier.featurize(classifier.waveform(r.path)) for r in mine])
        y = torch.tensor([classifier.labels.index(r.label) for r in mine])
        for name, warps in WARPS.items():
            probs = sum(classifier.probabilities(warp_frequency(x, torch.full((len(x),), w))) for w in warps)
            scores[name][speaker] = 100.0 * float((probs.argmax(-1) == y).float().mean())
    if not any(scores.values()):
        parser.error(f"no LOSO runs under {args.out}/runs")
    speakers = sorted(next(iter(scores.values())))
    print("| warps | " + " | ".join(speakers) + " | mean | worst |")
    print("|---|" + "---|" * (len(speakers) + 2))
    for name, row in scores.items():
        cells = " | ".join(f"{row[s]:.1f}" for s in speakers)
        print(f"| {name} | {cells} | {statistics.mean(row.values()):.1f} | {min(row.values()):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
