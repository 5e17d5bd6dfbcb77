"""Several trained models as one classifier: :class:`Ensemble` averages their probabilities.

Each member keeps its own inference contract (its checkpoint's or export's sample rate, feature
settings and normalisation): a recording is decoded once, at the first member's rate, and every
member featurizes it its own way. Members may be checkpoints
(:class:`spokenword.inference.checkpoint.Classifier`) or ONNX exports
(:class:`spokenword.inference.onnx.OnnxClassifier`), mixed; they must know the same labels (in any
order: the ensemble's order is the first member's). ``spokenword.inference.load.load_model(a, b, ...)``
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


class Ensemble(BaseClassifier):
    """Classify recordings with several models: the mean of the members' probabilities.

    The interface of :class:`~spokenword.inference.base.BaseClassifier`, so ``evaluate``,
    ``Transcriber``, the web service and the CLI take it unchanged. Its :meth:`featurize` gives one
    input per member, which :meth:`probabilities` hands to each.

    Args:
        members: two or more classifiers with the same label set.
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
        self.labels: list[str] = list(members[0].labels)
        for i, member in enumerate(members[1:], start=2):
            if sorted(member.labels) != sorted(self.labels):
                raise ModelError(f"model {i} of the ensemble knows the labels {list(member.labels)}, "
                                 f"model 1 knows {self.labels}: an ensemble's models must share their labels")
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ModelError(f"ensemble weights must be {len(members)} non-negative numbers, not all zero: {weights}")
        self.weights = np.asarray(weights, dtype=np.float64) / sum(weights)
        # column j of member m's output is the ensemble's label order[m][j]
        self._columns = [[list(m.labels).index(label) for label in self.labels] for m in members]
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
        total = np.zeros((len(features), len(self.labels)), dtype=np.float64)
        for m, (member, weight, columns) in enumerate(zip(self.members, self.weights, self._columns)):
            probs = np.asarray(member.probabilities([f[m] for f in features]), dtype=np.float64)
            total += weight * probs[:, columns]
        return total.astype(np.float32)

