"""Experiment (issue 31): other ways to combine the default's two members into "a digit, and which".

The default answers with the mean of the members' digit probabilities times the embedding member's
P(a word) (``Ensemble``), at one threshold. This scores alternative rules on the same LOSO runs, each at
its own threshold chosen by nested leave-one-speaker-out cross-validation as ``benchmarks.accuracy
ensemble`` chooses it (fold k's threshold minimises false rejects + false accepts over the other folds'
held-out voices with validation negatives; fold k is scored with test negatives).

    python -m benchmarks.experiments.ensemble_rules [--cnn DIR] [--embedding DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks import common

DIGITS = [str(i) for i in range(10)]
THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.01), 2)
ACCURACY = common.REPO / "benchmarks" / "results" / "accuracy"


def member_probabilities(cnn_dir: Path, embedding_dir: Path, root: str | None) -> dict[str, dict]:
    """Per held-out speaker: each member's digit probabilities (renormalised over the digits), the
    embedding member's P(not a digit), and the true labels, for the voice's digits and the validation
    and test negatives."""
    import torch

    from benchmarks.accuracy import fold_runs
    from spokenword.data.corpora import FSDD
    from spokenword.data.corpora.negatives import with_negatives
    from spokenword.data.splits import make_split, resolve_root
    from spokenword.inference.load import load_model
    from spokenword.labels import is_rejection

    torch.set_num_threads(1)
    cnn, emb = fold_runs([cnn_dir], "best"), fold_runs([embedding_dir], "best")
    root = resolve_root(root)
    recordings = with_negatives(FSDD(), root).recordings(root)
    folds = {}
    for speaker in sorted(set(cnn) & set(emb)):
        split = make_split(recordings, "speakers", [speaker])
        parts = {"digits": [r for r in split.test if not is_rejection(r.label)],
                 "val_neg": [r for r in split.val if is_rejection(r.label)],
                 "test_neg": [r for r in split.test if is_rejection(r.label)]}
        fold = {part: {"truth": np.array([r.label for r in rs])} for part, rs in parts.items()}
        for name, path in (("cnn", cnn[speaker][0]), ("emb", emb[speaker][0])):
            model = load_model(path)
            labels = list(model.labels)
            for part, rs in parts.items():
                feats = [model.featurize(model.waveform(r.path)) for r in rs]
                probs = np.concatenate([model.probabilities(feats[i:i + 64]) for i in range(0, len(feats), 64)])
                probs = probs.astype(np.float64)
                words = probs[:, [labels.index(d) for d in DIGITS]]
                fold[part][name] = words / words.sum(axis=1, keepdims=True)
                if name == "emb":
                    fold[part]["rejected"] = probs[:, [labels.index(r) for r in labels if is_rejection(r)]].sum(axis=1)
        folds[speaker] = fold
        print(f"{speaker}: member probabilities done", file=sys.stderr, flush=True)
    return folds


def answers(part: dict, rule: str, a: float | None) -> tuple[np.ndarray, np.ndarray]:
    """``(best digit index, acceptance score)`` per clip under ``rule``."""
    we, wc, word = part["emb"], part["cnn"], 1.0 - part["rejected"]
    mean = (we + wc) / 2
    if rule == "mean":  # the default
        scores = mean * word[:, None]
    elif rule == "geometric":
        scores = np.sqrt(we * wc)
        scores = scores / scores.sum(axis=1, keepdims=True) * word[:, None]
    elif rule == "min":  # both members must back the digit
        scores = np.minimum(we, wc) * word[:, None]
    elif rule == "disagree":  # the mean, scaled by a when the members' best digits differ
        scores = mean * np.where(we.argmax(1) == wc.argmax(1), 1.0, a)[:, None] * word[:, None]
    elif rule == "cnn_confidence":  # the mean, times the CNN's best digit probability to the power a
        scores = mean * wc.max(axis=1, keepdims=True) ** a * word[:, None]
    elif rule == "weighted":  # the embedding member weighted a, the CNN 1 - a
        scores = (a * we + (1 - a) * wc) * word[:, None]
    elif rule == "embedding_accepts":  # accepted by the embedding member's score alone, answered by the mean
        return mean.argmax(1), (we * word[:, None]).max(axis=1)
    elif rule == "p_word":  # accepted by P(a word) alone, answered by the mean
        return mean.argmax(1), word
    else:
        raise ValueError(rule)
    return scores.argmax(1), scores.max(axis=1)


def rates(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], threshold: float) -> dict:
    truth = np.concatenate([p[0] for p in parts])
    best = np.concatenate([p[1] for p in parts])
    score = np.concatenate([p[2] for p in parts])
    accepted = score >= threshold
    digit = np.isin(truth, DIGITS)
    return {"accuracy": float((accepted & (np.array(DIGITS)[best] == truth))[digit].mean()),
            "false_reject": float((~accepted[digit]).mean()),
            "words_accepted": float(accepted[truth == "_unknown_"].mean()),
            "noise_accepted": float(accepted[truth == "_silence_"].mean()),
            "cost": float((~accepted[digit]).mean() + accepted[~digit].mean())}


def score_rule(folds: dict, rule: str, a: float | None = None) -> dict:
    def scored(fold, part):
        best, score = answers(fold[part], rule, a)
        return fold[part]["truth"], best, score

    choose = {s: [scored(f, "digits"), scored(f, "val_neg")] for s, f in folds.items()}
    test = {s: [scored(f, "digits"), scored(f, "test_neg")] for s, f in folds.items()}
    per_fold = {}
    for speaker in folds:
        costs = np.mean([[rates(choose[o], t)["cost"] for t in THRESHOLDS] for o in folds if o != speaker], axis=0)
        threshold = float(THRESHOLDS[int(np.argmin(costs))])
        per_fold[speaker] = {**rates(test[speaker], threshold), "threshold": threshold}
    pooled = [p for s in folds for p in test[s]]
    at_fr = {}
    for target in (0.01, 0.02, 0.03):  # words accepted at the lowest threshold keeping false rejects under target
        fitting = [rates(pooled, t) for t in THRESHOLDS]
        fitting = [r for r in fitting if r["false_reject"] <= target]
        at_fr[f"{target:.2f}"] = fitting[-1]["words_accepted"] if fitting else None
    mean = {k: float(np.mean([r[k] for r in per_fold.values()])) for k in ("accuracy", "false_reject", "words_accepted", "noise_accepted")}
    worst = min(per_fold, key=lambda s: per_fold[s]["accuracy"])
    return {"rule": rule, "a": a, "mean": mean, "worst": [worst, per_fold[worst]["accuracy"]],
            "per_fold": per_fold, "pooled_words_accepted_at_false_reject": at_fr}


ARMS = [("mean", None), ("geometric", None), ("min", None), ("disagree", 0.5), ("disagree", 0.3),
        ("cnn_confidence", 0.5), ("cnn_confidence", 1.0), ("weighted", 0.3), ("weighted", 0.7), ("weighted", 0.9),
        ("embedding_accepts", None), ("p_word", None)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.experiments.ensemble_rules", description=__doc__.split("\n\n")[0])
    p.add_argument("--cnn", type=Path, default=ACCURACY / "fsdd_cnn_newvoices", help="the CNN member's LOSO results folder")
    p.add_argument("--embedding", type=Path, default=ACCURACY / "fsdd_embedding_newvoices", help="the embedding member's")
    p.add_argument("--data.root", dest="root", default=None)
    p.add_argument("--out", type=Path, default=common.RESULTS, help="results root (OUT/experiments/ensemble_rules.json)")
    args = p.parse_args(argv)
    folds = member_probabilities(args.cnn, args.embedding, args.root)
    results = [score_rule(folds, rule, a) for rule, a in ARMS]
    print("| rule | LOSO digits right % (worst) | digits rejected % | other words accepted % | noise accepted % | "
          "pooled: words accepted % at 1 / 2 / 3 % rejected |")
    print("|---|---|---|---|---|---|")
    for r in results:
        m, at = r["mean"], r["pooled_words_accepted_at_false_reject"]
        name = r["rule"] + (f" {r['a']:g}" if r["a"] is not None else "")
        print(f"| {name} | {100 * m['accuracy']:.1f} ({100 * r['worst'][1]:.1f} {r['worst'][0]}) | {100 * m['false_reject']:.1f} | "
              f"{100 * m['words_accepted']:.1f} | {100 * m['noise_accepted']:.1f} | "
              + " / ".join(f"{100 * v:.1f}" if v is not None else "-" for v in at.values()) + " |")
    protocol = ("the default's LOSO runs (best checkpoints): per fold, the held-out voice's 500 digits with the validation "
                "(choosing) and test (scoring) other words and noise; each rule at the threshold minimising false rejects + "
                "false accepts over the other folds; mean over the folds, and words accepted pooled over them at 1/2/3 % "
                "digits rejected")
    common.write_result(args.out, "experiments", "ensemble_rules", protocol=protocol,
                        command="python -m benchmarks.experiments.ensemble_rules " + " ".join(argv if argv is not None else sys.argv[1:]),
                        recipe={"cnn": common.relative(args.cnn), "embedding": common.relative(args.embedding)},
                        figures={"results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
