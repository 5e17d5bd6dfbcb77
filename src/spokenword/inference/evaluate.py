"""Scoring a classifier on labelled recordings: word accuracy, and, where the recordings include what
is not a word (labels ``_unknown_`` / ``_silence_``, :mod:`spokenword.labels`), false accepts and
false rejects, at the classifier's threshold and over all thresholds (a DET curve)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spokenword.labels import SILENCE, UNKNOWN, is_rejection

#: thresholds of the DET curve and of :func:`calibrate` (``reject_below`` values)
THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.01), 2)


@dataclass
class Evaluation:
    """Scores of a classifier on labelled recordings.

    ``confusion`` counts (true, answered) over the classifier's labels for recordings whose label it
    knows; a rejection-labelled recording is scored even when the classifier lacks that output (it
    then can only be falsely accepted or rejected by threshold). ``accept_score`` holds, per scored
    recording, the best word's score; with ``truth`` (the true label) and ``best_word`` (that word) it
    gives the outcome at any ``reject_below`` threshold (a word is accepted when it scores at least it)."""

    labels: list[str]
    confusion: np.ndarray  # (true, answered) counts; rows/columns: labels, then rejection labels the model lacks
    errors: list[str]  # one line per file that could not be scored
    per_speaker: dict[str, tuple[int, int]]  # speaker -> (correct, total), words only
    unknown_labels: list[str]
    truth: list[str] = field(default_factory=list)
    best_word: list[str] = field(default_factory=list)
    accept_score: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reject_below: float | None = None

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    def _words(self) -> list[int]:
        return [i for i, label in enumerate(self.labels) if not is_rejection(label)]

    @property
    def word_count(self) -> int:
        return int(self.confusion[self._words()].sum())

    @property
    def accuracy(self) -> float:
        """Share of the recordings of words answered with the right word (a rejected word is wrong)."""
        rows = self._words()
        total = self.confusion[rows].sum()
        return float(sum(self.confusion[i, i] for i in rows) / total) if total else float("nan")

    @property
    def false_reject_rate(self) -> float:
        """Share of the recordings of words answered ``_unknown_`` or ``_silence_``."""
        rows, cols = self._words(), [j for j, label in enumerate(self.labels) if is_rejection(label)]
        total = self.confusion[rows].sum()
        return float(self.confusion[np.ix_(rows, cols)].sum() / total) if total and cols else (0.0 if total else float("nan"))

    def false_accept_rate(self, label: str) -> float:
        """Share of the recordings labelled ``label`` (``_unknown_`` or ``_silence_``) answered with a word."""
        if label not in self.labels:
            return float("nan")
        row = self.confusion[self.labels.index(label)]
        return float(row[self._words()].sum() / row.sum()) if row.sum() else float("nan")

    def negatives(self, label: str) -> int:
        return int(self.confusion[self.labels.index(label)].sum()) if label in self.labels else 0

    def at(self, threshold: float) -> dict:
        """Digit accuracy, false reject rate and false accept rates (per rejection label) with ``reject_below``
        = ``threshold`` (from the recorded scores; the same as evaluating at that threshold)."""
        truth = np.array(self.truth, dtype=object)
        word = np.array([not is_rejection(t) for t in self.truth], dtype=bool)
        accepted = self.accept_score >= threshold
        right = accepted & (np.array(self.best_word, dtype=object) == truth)
        return {"accuracy": float(right[word].mean()) if word.any() else float("nan"),
                "false_reject_rate": float((~accepted[word]).mean()) if word.any() else float("nan"),
                "false_accept_rate": {label: float(accepted[truth == label].mean())
                                      for label in (UNKNOWN, SILENCE) if (truth == label).any()}}

    def det(self) -> dict:
        """False reject and false accept rates (words; other words; noise) at each of :data:`THRESHOLDS`."""
        points = [self.at(t) for t in THRESHOLDS]
        return {"threshold": THRESHOLDS.tolist(), "false_reject": [p["false_reject_rate"] for p in points],
                **{label: [p["false_accept_rate"].get(label, float("nan")) for p in points] for label in (UNKNOWN, SILENCE)}}

    def to_dict(self) -> dict:
        rows = self.confusion.sum(axis=1)
        return {
            "accuracy": self.accuracy,
            "count": self.word_count,
            "failed": len(self.errors),
            "reject_below": self.reject_below,
            "false_reject_rate": self.false_reject_rate,
            "false_accept_rate": {label: self.false_accept_rate(label) for label in (UNKNOWN, SILENCE)
                                  if self.negatives(label)},
            "negatives": {label: self.negatives(label) for label in (UNKNOWN, SILENCE) if self.negatives(label)},
            "per_class_accuracy": {
                label: (float(self.confusion[i, i] / rows[i]) if rows[i] else None) for i, label in enumerate(self.labels)
            },
            "per_speaker_accuracy": {s: c / t for s, (c, t) in sorted(self.per_speaker.items()) if t},
            "labels": self.labels,
            "confusion_matrix": self.confusion.tolist(),
            "errors": self.errors,
        }


def evaluate(classifier, recordings) -> Evaluation:
    """Score ``recordings`` (:class:`~spokenword.data.corpora.Recording` list) with ``classifier``,
    answering as it does (its ``reject_below`` included)."""
    own = list(classifier.labels)
    # a rejection the model lacks: scored when recordings have it, and _unknown_ whenever rank may answer it
    labels = own + [r for r in (SILENCE, UNKNOWN) if r not in own and (any(rec.label == r for rec in recordings)
                                                                       or (r == UNKNOWN and classifier.reject_below is not None))]
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(index), len(index)), dtype=np.int64)
    errors: list[str] = []
    unknown = sorted({r.label for r in recordings if r.label not in index})
    per_speaker: dict[str, list[int]] = {}
    truth, best_word, accept = [], [], []
    by_path = {r.path: r for r in recordings if r.label in index}
    for path, result in classifier.predict_many(list(by_path)):
        if isinstance(result, Exception):
            errors.append(str(result))
            continue
        rec = by_path[path]
        answered = index[result[0]["label"]]
        confusion[index[rec.label], answered] += 1
        word = max((p for p in result if p["label"] in own and not is_rejection(p["label"])), key=lambda p: p["score"])
        truth.append(rec.label)
        best_word.append(word["label"])
        accept.append(word["score"])
        if rec.speaker and not is_rejection(rec.label):
            tally = per_speaker.setdefault(rec.speaker, [0, 0])
            tally[0] += int(answered == index[rec.label])
            tally[1] += 1
    for label in unknown:
        errors.append(f"label {label!r} is not one the model knows ({', '.join(classifier.labels)}); its files were skipped")
    return Evaluation(labels, confusion, errors, {k: (v[0], v[1]) for k, v in per_speaker.items()}, unknown,
                      truth, best_word, np.asarray(accept, dtype=np.float64), classifier.reject_below)


def merged(*evaluations: Evaluation) -> Evaluation:
    """One evaluation of the recordings of several (of one classifier, same labels), e.g. a voice's digits
    with validation negatives and with test negatives, each part scored once."""
    first = evaluations[0]
    labels = list(first.labels)  # a part with negatives may add the rejection labels a model lacks
    labels += [label for e in evaluations for label in e.labels if label not in labels]
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for e in evaluations:
        at = [labels.index(label) for label in e.labels]
        confusion[np.ix_(at, at)] += e.confusion
    per_speaker: dict[str, tuple[int, int]] = {}
    for e in evaluations:
        for speaker, (right, total) in e.per_speaker.items():
            old = per_speaker.get(speaker, (0, 0))
            per_speaker[speaker] = (old[0] + right, old[1] + total)
    return Evaluation(labels, confusion, [x for e in evaluations for x in e.errors],
                      per_speaker, sorted({x for e in evaluations for x in e.unknown_labels}),
                      [t for e in evaluations for t in e.truth], [w for e in evaluations for w in e.best_word],
                      np.concatenate([e.accept_score for e in evaluations]), first.reject_below)


def cost(evaluation: Evaluation) -> np.ndarray:
    """False rejects + false accepts (other words and noise counted together) at each of :data:`THRESHOLDS`."""
    curve, truth = evaluation.det(), evaluation.truth
    n_unknown, n_silence = truth.count(UNKNOWN), truth.count(SILENCE)
    accepted = (np.nan_to_num(curve[UNKNOWN]) * n_unknown + np.nan_to_num(curve[SILENCE]) * n_silence)
    return np.nan_to_num(curve["false_reject"]) + accepted / max(n_unknown + n_silence, 1)


def calibrate(evaluations: Evaluation | list[Evaluation]) -> float:
    """The ``reject_below`` that minimises the mean :func:`cost` over ``evaluations`` (the lowest such
    threshold on ties). They must not be of a test split: e.g. each leave-one-speaker-out fold's held-out
    voice with validation negatives, so that the threshold is chosen on voices the models never heard
    (``python -m benchmarks.accuracy ensemble``)."""
    evaluations = [evaluations] if isinstance(evaluations, Evaluation) else list(evaluations)
    return float(THRESHOLDS[int(np.argmin(np.mean([cost(e) for e in evaluations], axis=0)))])
