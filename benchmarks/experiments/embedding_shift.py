"""Experiment (issues 35, 36): a per-group mean shift of the embedding member's pooled features, the group being
clips of one speaker in one room (as the words of one spoken number are).

Each LOSO fold's embedding run (best checkpoint) pools its held-out speaker's 500 digits, clean and in the accuracy
benchmark's room noise at 10 dB; the clips are cut into random groups of n, and each clip's features lose
``alpha`` times (the group's mean - the mean of 600 of the fold's training clips) before the head. Answers: the
model's own best label, and the best digit alone (closed set). Measured once and retired in the next commit
(docs/experiments.md).

    python -m benchmarks.experiments.embedding_shift
"""

from __future__ import annotations

import sys

import numpy as np

from benchmarks import common

DIGITS = [str(i) for i in range(10)]


def main(argv: list[str] | None = None) -> int:
    import torch

    from benchmarks.accuracy import Noises, fold_runs
    from spokenword.data.corpora import FSDD
    from spokenword.data.splits import make_split, resolve_root
    from spokenword.inference.base import pad_batch
    from spokenword.inference.load import load_model

    torch.set_num_threads(1)
    root = resolve_root(None)
    recordings = FSDD().recordings(root)
    runs = fold_runs([common.RESULTS / "accuracy" / "fsdd_embedding_newvoices"], "best")
    results: dict[tuple, list] = {}
    for speaker in sorted(runs):
        clf = load_model(runs[speaker][0])
        model, net = clf.model, clf.model.net

        def pooled(waves):
            out = []
            with torch.no_grad():
                for i in range(0, len(waves), 64):
                    audio, length = pad_batch([clf.featurize(w) for w in waves[i:i + 64]])
                    images = model.front_end(torch.from_numpy(audio), torch.from_numpy(length))
                    out.append(net.forward_features((images - model.mean) / model.std))
            return torch.cat(out)

        split = make_split(recordings, "speakers", [speaker])
        pick = np.random.default_rng(0).choice(len(split.train), 600, replace=False)
        reference = pooled([clf.waveform(split.train[i].path) for i in pick]).mean(0)
        truth = np.array([r.label for r in split.test])
        clean = [clf.waveform(r.path) for r in split.test]
        noise_rng = np.random.default_rng(10)
        noisy = [Noises(root, clf.sample_rate).mix("rooms", w, 10, noise_rng) for w in clean]
        labels = list(clf.labels)
        digit_columns = [labels.index(d) for d in DIGITS]
        for condition, waves in (("clean", clean), ("rooms 10 dB", noisy)):
            features = pooled(waves)
            for n, alpha in ((5, 0.0), (5, 0.5), (5, 1.0), (10, 0.5), (10, 1.0), (500, 0.5), (500, 1.0)):
                scores = []
                for draw in range(3 if n < 500 else 1):
                    order = np.random.default_rng(draw).permutation(len(features))
                    shifted = features.clone()
                    for g in range(0, len(features), n):
                        idx = torch.from_numpy(order[g:g + n])
                        shifted[idx] = features[idx] - alpha * (features[idx].mean(0) - reference)
                    with torch.no_grad():
                        p = torch.softmax(net.head(shifted), -1).numpy()
                    scores.append(((np.array(labels)[p.argmax(1)] == truth).mean(),
                                   (np.array(DIGITS)[p[:, digit_columns].argmax(1)] == truth).mean()))
                results.setdefault((condition, n, alpha), []).append(np.mean(scores, axis=0))
        print(f"{speaker}: done", file=sys.stderr, flush=True)
    print("| condition | group of | alpha | own answers % (worst fold) | best digit % |")
    print("|---|---|---|---|---|")
    for (condition, n, alpha), values in results.items():
        v = np.array(values)
        print(f"| {condition} | {n} | {alpha:g} | {100 * v[:, 0].mean():.1f} ({100 * v[:, 0].min():.1f}) | {100 * v[:, 1].mean():.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
