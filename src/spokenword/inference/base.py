"""The torch-free inference contract: errors, the prediction type, the metadata of exports and the
base class every classifier shares (:class:`BaseClassifier`: ``rank``, ``__call__``, ``predict_many``).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from spokenword import audio

#: ``metadata_props`` key of the ONNX model holding the export metadata (JSON, see :func:`read_metadata`).
METADATA_KEY = "spokenword"
#: identifies the metadata layout; bump :data:`METADATA_VERSION` when fields change meaning.
METADATA_FORMAT = "spokenword-export"
METADATA_VERSION = 1
#: graph input / output names of every export.
AUDIO_INPUT, LENGTH_INPUT, PROBS_OUTPUT = "audio", "length", "probabilities"


Prediction = list[dict]  # [{"label": "7", "score": 0.97}, ...] sorted by score, highest first


class ModelError(ValueError):
    """A model file (checkpoint or export) that cannot be used; the message names it and the problem.
    Defined here, torch-free, so the command line can catch it without importing torch."""


class ExportError(ModelError):
    """An exported model that cannot be used, naming the file and the problem."""


def pad_batch(waves: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The padding rule of an export's inputs: clips ``(T_i,)`` to ``audio (N, max T_i)`` float32,
    zero-padded at the end, and ``length (N,)`` int64 = ``T_i``."""
    lengths = np.array([len(w) for w in waves], dtype=np.int64)
    batch = np.zeros((len(waves), max(int(lengths.max()), 1)), dtype=np.float32)
    for row, wave in zip(batch, waves):
        row[: len(wave)] = wave
    return batch, lengths


class NumpyClassifier:
    """The calls shared by the classifiers whose probabilities are numpy arrays
    (:class:`OnnxClassifier`, :class:`spokenword.ensemble.Ensemble`): :meth:`rank`, ``__call__`` and
    :meth:`predict_many`. A subclass gives ``labels``, ``runtime``, ``waveform``, ``featurize`` and
    ``probabilities`` (a list of ``featurize`` outputs to ``(N, num_classes)``)."""

    labels: list[str]

    def rank(self, probs: np.ndarray, top_k: int | None = None) -> Prediction:
        """One row of probabilities to the sorted ``[{"label", "score"}]`` list."""
        k = len(self.labels) if top_k is None else max(1, min(top_k, len(self.labels)))
        order = np.argsort(-np.asarray(probs), kind="stable")[:k]
        return [{"label": self.labels[i], "score": float(probs[i])} for i in order]

    def __call__(self, source, top_k: int | None = None) -> Prediction:
        return self.rank(self.probabilities([self.featurize(self.waveform(source))])[0], top_k)

    def predict_many(self, sources: Iterable, top_k: int | None = None, batch_size: int = 64):
        """Yield ``(source, prediction or AudioError)`` for each source; failures do not stop the rest."""
        return predict_batched(self, sources, top_k, batch_size)


def predict_batched(classifier, sources: Iterable, top_k: int | None = None, batch_size: int = 64, collate=list):
    """``predict_many`` of every classifier (:class:`OnnxClassifier`, ``predict.Classifier``):
    yield ``(source, prediction or AudioError)`` per source, in order, classifying up to
    ``batch_size`` decoded clips per model call; a source that fails to decode is yielded with its
    error and does not stop the rest. ``collate`` turns a list of ``featurize`` results into what
    ``classifier.probabilities`` takes."""
    batch: list[tuple[object, object]] = []

    def flush():
        if not batch:
            return []
        probs = classifier.probabilities(collate([f for _, f in batch]))
        out = [(s, classifier.rank(p, top_k)) for (s, _), p in zip(batch, probs)]
        batch.clear()
        return out

    for source in sources:
        try:
            batch.append((source, classifier.featurize(classifier.waveform(source))))
        except audio.AudioError as err:
            yield from flush()
            yield source, err
            continue
        if len(batch) >= batch_size:
            yield from flush()
    yield from flush()


