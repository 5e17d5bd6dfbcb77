"""Several trained models as one classifier: :class:`Ensemble` averages their probabilities.

Members that can say "not a word" (``_unknown_``, ``_silence_`` outputs, :mod:`spokenword.labels`) decide
whether it is a word, all members which word: the ensemble's probability of each rejection label is
the weighted mean over the members that have such outputs, and each word's is ``1 - P(rejection)``
times the weighted mean of the members' word probabilities renormalised over the words. Without
rejection outputs this is the plain weighted mean; a member trained without them (a digits-only
model) still joins an ensemble with one trained with them.

Each member keeps its own inference contract (its checkpoint's or export's sample rate, feature
settings and normalisation): a recording is decoded once, at the first member's rate, and every
member featurizes it its own way. Members may be checkpoints
(:class:`spokenword.inference.checkpoint.Classifier`) or ONNX exports
(:class:`spokenword.inference.onnx.OnnxClassifier`), mixed; they must know the same words (in any
order: the ensemble's order is the first member's, then the rejection labels). ``spokenword.inference.load.load_model(a, b, ...)``
loads one.

Why: models that fail on different recordings make fewer errors together. docs/results.md
measures it on voices the models never heard (``python -m benchmarks.accuracy ensemble``). The cost is one forward
pass (and one training run) per member.

Torch-free: members made from ``.onnx`` files need onnxruntime, not torch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from spokenword.inference.base import BaseClassifier, ModelError
from spokenword.labels import REJECTIONS, is_rejection


class Ensemble(BaseClassifier):
    """Classify recordings with several models: the mean of the members' probabilities (with members
    that can reject, the rule in the module docstring).

    The interface of :class:`~spokenword.inference.base.BaseClassifier`, so ``evaluate``,
    ``Transcriber``, the web service and the CLI take it unchanged. Its :meth:`featurize` gives one
    input per member, which :meth:`probabilities` hands to each.

    Args:
        members: two or more classifiers with the same words (rejection labels may differ).
        weights: one non-negative weight per member (default: equal); the ensemble's
            probabilities are the weighted mean of the members'.

    Raises:
        ModelError: fewer than two members, label sets that differ, or bad weights.
    """

    def __init__(self, members: Sequence, weights: Sequence[float] | None = None):
        members = list(members)
        if len(members) < 2:
            raise ModelError(f"an ensemble needs at least two models, got {len(members)}")
        self.members = members
        self.words: list[str] = [label for label in members[0].labels if not is_rejection(label)]
        for i, member in enumerate(members[1:], start=2):
            words = [label for label in member.labels if not is_rejection(label)]
            if sorted(words) != sorted(self.words):
                raise ModelError(f"model {i} of the ensemble knows the labels {list(member.labels)}, "
                                 f"model 1 knows {list(members[0].labels)}: an ensemble's models must share their words")
        rejections = [label for label in REJECTIONS if any(label in m.labels for m in members)]
        self.labels: list[str] = self.words + rejections
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ModelError(f"ensemble weights must be {len(members)} non-negative numbers, not all zero: {weights}")
        self.weights = np.asarray(weights, dtype=np.float64) / sum(weights)
        # per member: its columns of the ensemble's words, and of the rejection labels (-1: it has none)
        self._words = [[list(m.labels).index(label) for label in self.words] for m in members]
        self._rejections = [[list(m.labels).index(r) if r in m.labels else -1 for r in rejections] for m in members]
        judges = [any(c >= 0 for c in cols) for cols in self._rejections]
        judged = self.weights * judges
        self._judge_weights = judged / judged.sum() if judged.sum() > 0 else judged
        self.sample_rate = int(members[0].sample_rate)

    @property
    def runtime(self) -> str:
        """The members' runtimes, e.g. ``onnx+torch``."""
        return "+".join(m.runtime for m in self.members)

    @property
    def max_seconds(self) -> float | None:
        return self.members[0].max_seconds

    def featurize(self, wave: np.ndarray) -> tuple:
        """``(T,)`` waveform at :attr:`sample_rate` to one input per member (each member's own
        features; a member at another rate resamples first)."""
        return tuple(member.featurize(wave if int(member.sample_rate) == self.sample_rate
                                      else member.waveform((wave, self.sample_rate)))
                     for member in self.members)

    def spectrogram(self, wave: np.ndarray) -> np.ndarray:
        """The first member's ``(1, n_bins, n_frames)`` feature image (for display)."""
        return self.members[0].spectrogram(wave)

    def probabilities(self, features: Sequence[tuple]) -> np.ndarray:
        """A batch of :meth:`featurize` outputs (a list of per-member tuples) to ``(N, num_classes)``
        probabilities (float32, the weighted mean of the members', columns in :attr:`labels` order)."""
        features = list(features)
        words = np.zeros((len(features), len(self.words)), dtype=np.float64)
        rejected = np.zeros((len(features), len(self.labels) - len(self.words)), dtype=np.float64)
        for m, member in enumerate(self.members):
            probs = np.asarray(member.probabilities([f[m] for f in features]), dtype=np.float64)
            part = probs[:, self._words[m]]
            words += self.weights[m] * part / np.maximum(part.sum(axis=1, keepdims=True), 1e-12)
            for j, column in enumerate(self._rejections[m]):
                if column >= 0:
                    rejected[:, j] += self._judge_weights[m] * probs[:, column]
        total = np.concatenate([words * (1.0 - rejected.sum(axis=1, keepdims=True)), rejected], axis=1)
        return total.astype(np.float32)
