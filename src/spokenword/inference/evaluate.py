"""Scoring a classifier on labelled recordings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Evaluation:
    """Scores of a classifier on labelled recordings."""

    labels: list[str]
    confusion: np.ndarray  # (true, predicted) counts over the known labels
    errors: list[str]  # one line per file that could not be scored
    per_speaker: dict[str, tuple[int, int]]  # speaker -> (correct, total)
    unknown_labels: list[str]

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / self.count) if self.count else float("nan")

    def to_dict(self) -> dict:
        rows = self.confusion.sum(axis=1)
        return {
            "accuracy": self.accuracy,
            "count": self.count,
            "failed": len(self.errors),
            "per_class_accuracy": {
                label: (float(self.confusion[i, i] / rows[i]) if rows[i] else None) for i, label in enumerate(self.labels)
            },
            "per_speaker_accuracy": {s: c / t for s, (c, t) in sorted(self.per_speaker.items()) if t},
            "labels": self.labels,
            "confusion_matrix": self.confusion.tolist(),
            "errors": self.errors,
        }


def evaluate(classifier, recordings) -> Evaluation:
    """Score ``recordings`` (:class:`~spokenword.data.corpora.Recording` list) with ``classifier``."""
    index = {label: i for i, label in enumerate(classifier.labels)}
    confusion = np.zeros((len(index), len(index)), dtype=np.int64)
    errors: list[str] = []
    unknown = sorted({r.label for r in recordings if r.label not in index})
    per_speaker: dict[str, list[int]] = {}
    by_path = {r.path: r for r in recordings if r.label in index}
    for path, result in classifier.predict_many(list(by_path)):
        if isinstance(result, Exception):
            errors.append(str(result))
            continue
        rec = by_path[path]
        predicted = index[result[0]["label"]]
        confusion[index[rec.label], predicted] += 1
        if rec.speaker:
            tally = per_speaker.setdefault(rec.speaker, [0, 0])
            tally[0] += int(predicted == index[rec.label])
            tally[1] += 1
    for label in unknown:
        errors.append(f"label {label!r} is not one the model knows ({', '.join(classifier.labels)}); its files were skipped")
    return Evaluation(classifier.labels, confusion, errors, {k: (v[0], v[1]) for k, v in per_speaker.items()}, unknown)
