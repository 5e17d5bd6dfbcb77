"""Not a digit by distance: do unseen word types lie far from the digits in the embedding member's feature space?

    python -m benchmarks.experiments.embedding_distance FOLDER [--threads 1] [--out DIR]

FOLDER holds the leave-one-speaker-out runs of the embedding member trained without nine of the 25 Speech
Commands word types (``python -m benchmarks.accuracy loso benchmarks/experiments/unseen_words_reversed.yaml`` at
commit 3cc6d0f: the default's member with the reversed clips, those nine types never trained on). Per fold: the
pooled backbone features (192) and the head's hidden layer (128) of the training speakers' digits give a mean per
digit and one shared covariance (shrunk 10 % toward its mean variance); each clip's score is its smallest
Mahalanobis distance to a digit mean. Scored, pooled over the folds: the held-out speaker's digits, every clip of
the nine unseen types and the seen types' clips of validation and test speakers, as in the unseen-words
experiment. Rules compared at 1 / 2 / 5 % of the held-out digits rejected: the best digit probability alone (the
shipped rule), the distance alone, and both (half the rejects from each).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks import common

HELD_OUT = ("backward", "dog", "forward", "house", "marvin", "on", "stop", "visual", "yes")
FRACTIONS = (1, 2, 5)
SPACES = ("pooled", "hidden")


def _scores(classifier, recordings) -> dict[str, np.ndarray]:
    import torch

    from spokenword.inference.base import pad_batch

    model, out = classifier.model, {"probs": [], "pooled": [], "hidden": []}
    with torch.inference_mode():
        for i in range(0, len(recordings), 128):
            audio, length = pad_batch([classifier.featurize(classifier.waveform(r.path)) for r in recordings[i:i + 128]])
            x = (model.front_end(torch.from_numpy(audio), torch.from_numpy(length)) - model.mean) / model.std
            pooled = model.net.forward_features(x)
            hidden = model.net.head[:4](pooled)  # batch norm, dropout, linear, ReLU
            out["probs"].append(torch.softmax(model.net.head[4:](hidden), -1))
            out["pooled"].append(pooled)
            out["hidden"].append(hidden)
    return {k: torch.cat(v).float().numpy() for k, v in out.items()}


def fold(speaker: str, checkpoint: Path, root) -> dict:
    from spokenword.data.corpora import FSDD, OtherWords
    from spokenword.data.splits import make_split
    from spokenword.inference.checkpoint import Classifier
    from spokenword.labels import is_rejection

    classifier = Classifier.from_checkpoint(checkpoint)
    labels = classifier.labels
    digits = [i for i, label in enumerate(labels) if not is_rejection(label)]
    split = make_split(FSDD().recordings(root), "speakers", [speaker])
    words = OtherWords().recordings(root)
    sets = {"train": split.train, "digits": split.test,
            "unseen": [r for r in words if r.path.parent.name in HELD_OUT],
            "seen": [r for r in words if r.path.parent.name not in HELD_OUT and r.subset != "train"]}
    found = {name: _scores(classifier, recordings) for name, recordings in sets.items()}
    y = np.array([digits.index(labels.index(r.label)) for r in sets["train"]])
    out = {name: {"best": found[name]["probs"][:, digits].max(1)} for name in ("digits", "unseen", "seen")}
    out["digits"]["right"] = np.array([labels[digits[i]] == r.label for i, r in
                                       zip(found["digits"]["probs"][:, digits].argmax(1), sets["digits"])])
    for space in SPACES:
        x = found["train"][space]
        means = np.stack([x[y == c].mean(0) for c in range(len(digits))])
        residual = x - means[y]
        cov = residual.T @ residual / len(residual)
        cov = 0.9 * cov + 0.1 * np.trace(cov) / len(cov) * np.eye(len(cov))
        precision = np.linalg.inv(cov)
        for name in ("digits", "unseen", "seen"):
            z = found[name][space][:, None, :] - means[None]
            out[name][space] = np.einsum("nkd,de,nke->nk", z, precision, z).min(1)
    return out


def figures_of(folds: list[dict]) -> dict:
    pooled = {name: {key: np.concatenate([f[name][key] for f in folds]) for key in folds[0][name]}
              for name in ("digits", "unseen", "seen")}
    digits = pooled["digits"]
    rows = {}
    for fr in FRACTIONS:
        def row(accept):
            kept = accept("digits")
            return {"digits_right": 100 * float((kept & digits["right"]).mean()),
                    "digits_rejected": 100 * float(1 - kept.mean()),
                    "unseen_accepted": 100 * float(accept("unseen").mean()),
                    "seen_accepted": 100 * float(accept("seen").mean())}
        best_t = float(np.quantile(digits["best"], fr / 100))
        rows[f"best probability, {fr} %"] = row(lambda n: pooled[n]["best"] >= best_t)
        for space in SPACES:
            far = float(np.quantile(digits[space], 1 - fr / 100))
            rows[f"distance ({space}), {fr} %"] = row(lambda n: pooled[n][space] <= far)
            # half the rejects from the distance, the rest from the probability
            half = float(np.quantile(digits[space], 1 - fr / 200))
            near = digits[space] <= half
            ranked = np.sort(digits["best"][near])
            allowed = int(np.floor(len(digits["best"]) * (1 - fr / 100)))
            t = float(ranked[len(ranked) - allowed]) if 0 < allowed <= len(ranked) else float(ranked[0])
            rows[f"both ({space}), {fr} %"] = row(lambda n: (pooled[n][space] <= half) & (pooled[n]["best"] >= t))
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.experiments.embedding_distance",
                                     description=__doc__.split("\n\n")[0], parents=[common.flags()])
    parser.add_argument("folder", type=Path, help="results folder of the unseen-words LOSO runs")
    args = parser.parse_args(argv)
    common.set_threads(args.threads)
    from benchmarks.accuracy import fold_runs
    from spokenword.data.splits import resolve_root

    root = resolve_root(args.data_root)
    runs = fold_runs([args.folder])
    folds = [fold(speaker, checkpoints[0], root) for speaker, checkpoints in sorted(runs.items())]
    rows = figures_of(folds)
    lines = ["| rule, digits rejected | digits right % | digits rejected % | unseen types accepted % | seen types accepted % |",
             "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['digits_right']:.1f} | {v['digits_rejected']:.1f} | {v['unseen_accepted']:.1f} | "
              f"{v['seen_accepted']:.1f} |" for k, v in rows.items()]
    print("\n".join(lines))
    common.write_result(args.out, "experiments", args.name or "embedding_distance",
                        protocol=__doc__.split("\n\n")[2].replace("\n", " "),
                        command=common.command("experiments.embedding_distance", argv),
                        recipe={"held_out_types": list(HELD_OUT), "folder": common.relative(args.folder),
                                "folds": sorted(runs)},
                        figures={"rows": rows, "table": lines})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
