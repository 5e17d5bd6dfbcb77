"""Why the default loses new voices in room noise: wrong digits, or digits answered "not a digit"?

    python -m benchmarks.experiments.noise_rejection CNN_FOLDER EMBEDDING_FOLDER [--reject-below 0.32]
        [--speakers S ...] [--processes 2] [--data.root DIR] [--out DIR] [--name NAME]

The folders hold the two members' leave-one-speaker-out runs (``python -m benchmarks.accuracy loso``). Each
fold's ensemble scores its held-out speaker's 500 digits clean and in the rooms noise of the accuracy benchmark
at 10 and 5 dB (the same deterministic mixtures as ``ensemble --noise --loso``), and the other words of the
Speech Commands validation speakers (never a test speaker's) clean and mixed with the rooms recordings'
validation stretch. Per clip it keeps the best digit's probability, the probability of "not a digit" and whether
the best digit is right. Printed and written (``OUT/experiments/NAME.json``):

1. at ``--reject-below``: digits right, answered "not a digit" (and how many of those the best digit had
   right), answered with a wrong digit, and the best digit alone (no threshold: closed set);
2. the threshold swept: digits right per condition, validation words accepted as a digit per condition
   (a threshold per noise level that keeps the words accepted where the clean threshold has them);
3. a two-part rule in place of the threshold on the product: a digit when P(a word) >= a and the best digit
   among the digits >= b.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks import common

CONDITIONS = (("clean", None), ("rooms_10dB", 10), ("rooms_5dB", 5))
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.32, 0.4)
RULE_A = (0.3, 0.4, 0.5, 0.6, 0.7)
RULE_B = (0.3, 0.4, 0.5)


def fold(task: tuple) -> dict:
    """Per-clip scores of one fold's ensemble: ``{condition: {"digits"|"words": {...}}}``."""
    speaker, checkpoints, root, reject_below, threads = task
    from benchmarks.accuracy import NOISES, Noises
    from spokenword.data.corpora import FSDD
    from spokenword.data.corpora.negatives import OtherWords
    from spokenword.data.splits import make_split
    from spokenword.inference.load import load_model
    from spokenword.labels import SILENCE, is_rejection

    common.set_threads(threads)
    clf = load_model(*checkpoints, reject_below=reject_below)
    labels = list(clf.labels)
    digit_columns = [i for i, label in enumerate(labels) if not is_rejection(label)]
    test = make_split(FSDD().recordings(root), "speakers", [speaker]).test
    words = [r for r in OtherWords().recordings(root) if r.subset == "val"]
    sets = {"digits": ([clf.waveform(r.path) for r in test], [labels.index(r.label) for r in test], "test"),
            "words": ([clf.waveform(r.path) for r in words], None, "val")}
    out: dict = {}
    for condition, snr in CONDITIONS:
        out[condition] = {}
        for name, (waves, truth, stretch) in sets.items():
            if snr is not None:
                # digits: the accuracy benchmark's own mixtures (its seed for rooms at this SNR); words: the
                # validation stretch of the same recordings
                rng = np.random.default_rng(1000 * snr + NOISES.index("rooms") + (0 if name == "digits" else 7))
                maker = Noises(root, clf.sample_rate, subset=stretch)
                waves = [maker.mix("rooms", w, snr, rng) for w in waves]
            probs = np.asarray(clf.probabilities([clf.featurize(w) for w in waves]))
            words_p = probs[:, digit_columns]
            answers = [clf.rank(p, 1)[0]["label"] for p in probs]
            out[condition][name] = {
                "best": words_p.max(1).tolist(),
                "not_a_word": (1.0 - words_p.sum(1)).tolist(),
                "best_right": None if truth is None else
                [int(digit_columns[i] == t) for i, t in zip(words_p.argmax(1), truth)],
                "answer_right": None if truth is None else [int(a == labels[t]) for a, t in zip(answers, truth)],
                "answered_silence": [int(a == SILENCE) for a in answers],
                "rejected": [int(is_rejection(a)) for a in answers]}
    return {"speaker": speaker, "checkpoints": [common.relative(c) for c in checkpoints], "clips": out}


def _mean_over(folds: list[dict], condition: str, name: str, rate) -> float:
    """``rate(clips) -> fraction`` per fold, mean over the folds, in %."""
    return 100 * float(np.mean([rate(f["clips"][condition][name]) for f in folds]))


def figures_of(folds: list[dict]) -> dict:
    def arr(d, key):
        return np.asarray(d[key], dtype=float)

    at = {}
    for condition, _ in CONDITIONS:
        at[condition] = {
            "digits_right": _mean_over(folds, condition, "digits", lambda d: arr(d, "answer_right").mean()),
            "not_a_digit": _mean_over(folds, condition, "digits", lambda d: arr(d, "rejected").mean()),
            "not_a_digit_best_right": _mean_over(folds, condition, "digits",
                                                 lambda d: (arr(d, "rejected") * arr(d, "best_right")).mean()),
            "as_silence": _mean_over(folds, condition, "digits", lambda d: arr(d, "answered_silence").mean()),
            "wrong_digit": _mean_over(folds, condition, "digits",
                                      lambda d: ((1 - arr(d, "rejected")) * (1 - arr(d, "answer_right"))).mean()),
            "closed_set": _mean_over(folds, condition, "digits", lambda d: arr(d, "best_right").mean()),
            "words_accepted": _mean_over(folds, condition, "words", lambda d: (1 - arr(d, "rejected")).mean())}
    sweep = {str(t): {condition: {
        "digits_right": _mean_over(folds, condition, "digits", lambda d: ((arr(d, "best") >= t) * arr(d, "best_right")).mean()),
        "words_accepted": _mean_over(folds, condition, "words", lambda d: (arr(d, "best") >= t).mean())}
        for condition, _ in CONDITIONS} for t in THRESHOLDS}

    def two_part(d, a, b):
        word = 1 - arr(d, "not_a_word")
        return (word >= a) & (arr(d, "best") / np.maximum(word, 1e-9) >= b)

    rule = {f"{a}/{b}": {
        "clean_words_accepted": _mean_over(folds, "clean", "words", lambda d: two_part(d, a, b).mean()),
        **{f"{condition}_digits_right": _mean_over(folds, condition, "digits",
                                                   lambda d: (two_part(d, a, b) * arr(d, "best_right")).mean())
           for condition, _ in CONDITIONS}} for a in RULE_A for b in RULE_B}
    return {"at_threshold": at, "threshold_sweep": sweep, "two_part_rule": rule,
            "folds": [f["speaker"] for f in folds], "digits_per_fold": len(folds[0]["clips"]["clean"]["digits"]["best"]),
            "words": len(folds[0]["clips"]["clean"]["words"]["best"])}


def tables(figures: dict, reject_below: float) -> list[str]:
    lines = [f"At reject_below {reject_below} (% of the held-out digits; mean of {len(figures['folds'])} folds):", "",
             "| condition | digits right | not a digit (best digit right) | as _silence_ | wrong digit | best digit alone | validation words accepted |",
             "|---|---|---|---|---|---|---|"]
    for condition, row in figures["at_threshold"].items():
        lines.append(f"| {condition} | {row['digits_right']:.1f} | {row['not_a_digit']:.1f} ({row['not_a_digit_best_right']:.1f}) | "
                     f"{row['as_silence']:.1f} | {row['wrong_digit']:.1f} | {row['closed_set']:.1f} | {row['words_accepted']:.1f} |")
    conditions = [c for c, _ in CONDITIONS]
    lines += ["", "Threshold swept: digits right / validation words accepted (%):", "",
              "| threshold | " + " | ".join(conditions) + " |", "|---" * (len(conditions) + 1) + "|"]
    for t, row in figures["threshold_sweep"].items():
        lines.append(f"| {t} | " + " | ".join(f"{row[c]['digits_right']:.1f} / {row[c]['words_accepted']:.1f}" for c in conditions) + " |")
    lines += ["", "Two-part rule (P(a word) >= a and best digit among digits >= b): clean words accepted, digits right (%):", "",
              "| a / b | clean words accepted | " + " | ".join(conditions) + " |", "|---" * (len(conditions) + 2) + "|"]
    for key, row in sorted(figures["two_part_rule"].items(), key=lambda kv: kv[1]["clean_words_accepted"]):
        lines.append(f"| {key} | {row['clean_words_accepted']:.1f} | " +
                     " | ".join(f"{row[f'{c}_digits_right']:.1f}" for c in conditions) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.experiments.noise_rejection",
                                     description=__doc__.split("\n\n")[0], parents=[common.flags()])
    parser.add_argument("members", nargs=2, type=Path, metavar="FOLDER", help="the two members' results folders (LOSO runs)")
    parser.add_argument("--reject-below", type=float, default=0.32,
                        help="the ensemble's threshold (default %(default)s: the frozen_views ensemble's, over all folds)")
    parser.add_argument("--speakers", nargs="+", default=None, help="held-out speakers (default: every fold found)")
    parser.add_argument("--processes", type=int, default=2, help="folds scored at once (default %(default)s)")
    args = parser.parse_args(argv)
    from benchmarks.accuracy import fold_runs
    from spokenword.data.splits import resolve_root

    runs = fold_runs(args.members)
    speakers = args.speakers or sorted(runs)
    missing = [s for s in speakers if len(runs.get(s, [])) != 2]
    if missing or not speakers:
        parser.error(f"no fold with one run in each folder for {', '.join(missing) or 'any speaker'}")
    root = resolve_root(args.data_root)
    tasks = [(s, runs[s], root, args.reject_below, args.threads) for s in speakers]
    with ProcessPoolExecutor(max(1, args.processes)) as pool:
        folds = list(pool.map(fold, tasks))
    figures = figures_of(folds)
    lines = tables(figures, args.reject_below)
    print("\n".join(lines))
    protocol = ("each LOSO fold's ensemble (the two folders' runs) on its held-out speaker's 500 digits, clean and with "
                "the accuracy benchmark's rooms noise (test stretch, its mixtures) at 10 and 5 dB over the speech; the "
                "Speech Commands validation speakers' other words clean and with the rooms recordings' validation "
                "stretch; mean over the folds")
    common.write_result(args.out, "experiments", args.name or "noise_rejection", arm="noise_rejection",
                        protocol=protocol, command=common.command("experiments.noise_rejection", argv),
                        recipe={"members": [common.relative(m) for m in args.members], "reject_below": args.reject_below},
                        figures={**figures, "table": lines, "per_fold": [{k: f[k] for k in ("speaker", "checkpoints")}
                                                                          for f in folds]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
