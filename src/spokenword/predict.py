"""Inference from a checkpoint: :class:`Classifier` and labelled-set evaluation.

The checkpoint is the inference contract: it carries label names, sample rate, feature settings
and normalisation statistics, and :class:`Classifier` applies exactly that preprocessing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from spokenword import audio
from spokenword.features import FeatureSettings, extract
from spokenword.runtime import ModelError, predict_batched

Prediction = list[dict]  # [{"label": "7", "score": 0.97}, ...] sorted by score, highest first


class CheckpointError(ModelError):
    """A checkpoint that cannot be used, with a message naming it and why."""


def load_task(path: str | os.PathLike):
    """Load a :class:`~spokenword.task.SpokenWordTask` from a checkpoint (or a training run's folder:
    its best checkpoint, :func:`spokenword.runtime.model_file`), in eval mode on the CPU."""
    from spokenword.runtime import model_file
    from spokenword.task import SpokenWordTask

    path = model_file(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        task = SpokenWordTask.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure here means the file is not our checkpoint
        raise CheckpointError(f"{path}: not a spokenword checkpoint ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    return task.eval()


class Classifier:
    """Classify recordings with a trained model.

    Call it on a path, on file bytes or on ``(samples, sample_rate)``; it returns the top-k list
    ``[{"label": ..., "score": ...}, ...]`` sorted by score.

    Args:
        model: the network mapping un-normalised features to logits (a SpokenWordTask).
        labels: class names in output order.
        sample_rate: rate the model expects (Hz).
        features: feature settings used in training.
    """

    runtime = "torch"  # what runs the model (``/health``, ``Ensemble.runtime``)

    def __init__(self, model: torch.nn.Module, labels: Sequence[str], sample_rate: int, features: FeatureSettings,
                 max_seconds: float | None = None):
        self.model = model.eval()
        self.labels = list(labels)
        self.sample_rate = int(sample_rate)
        self.features = features
        self.max_seconds = max_seconds

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **kwargs) -> "Classifier":
        task = load_task(path)
        return cls(task, task.labels, task.sample_rate, task.features, **kwargs)

    # -- preprocessing, shared by every entry point (CLI, Python, web service) ----------------
    def waveform(self, source) -> np.ndarray:
        """Decode and resample ``source`` (path, bytes, file object or ``(samples, rate)``) to
        float32 mono ``(T,)`` at :attr:`sample_rate`."""
        if isinstance(source, tuple) and len(source) == 2:
            samples, rate = source
            return audio.prepare(np.asarray(samples), int(rate), self.sample_rate)
        return audio.load(source, self.sample_rate, max_seconds=self.max_seconds)

    def featurize(self, wave: np.ndarray) -> torch.Tensor:
        """``(T,)`` waveform to the model's input ``(1, n_bins, n_frames)``."""
        return extract(torch.from_numpy(np.asarray(wave, dtype=np.float32)), self.sample_rate, self.features)

    def spectrogram(self, wave: np.ndarray) -> np.ndarray:
        """``(T,)`` waveform to the ``(1, n_bins, n_frames)`` feature image the model sees (numpy),
        the same method :class:`spokenword.runtime.OnnxClassifier` has."""
        return self.featurize(wave).numpy()

    @torch.inference_mode()
    def probabilities(self, features: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """``(N, 1, H, W)`` features (or a list of N :meth:`featurize` outputs) to ``(N, num_classes)``
        probabilities."""
        if not isinstance(features, torch.Tensor):
            features = torch.stack(list(features))
        return torch.softmax(self.model(features), dim=-1)

    def rank(self, probs: torch.Tensor, top_k: int | None = None) -> Prediction:
        """One row of probabilities to the sorted ``[{"label", "score"}]`` list."""
        k = len(self.labels) if top_k is None else max(1, min(top_k, len(self.labels)))
        scores, indices = torch.topk(probs, k)
        return [{"label": self.labels[i], "score": float(s)} for s, i in zip(scores.tolist(), indices.tolist())]

    def __call__(self, source, top_k: int | None = None) -> Prediction:
        wave = self.waveform(source)
        return self.rank(self.probabilities(self.featurize(wave).unsqueeze(0))[0], top_k)

    def predict_many(self, sources: Iterable, top_k: int | None = None, batch_size: int = 64):
        """Yield ``(source, prediction or AudioError)`` for each source; failures do not stop the rest."""
        return predict_batched(self, sources, top_k, batch_size, collate=torch.stack)


def load_classifier(path: str | os.PathLike, **kwargs):
    """Open a trained model for inference: a ``.ckpt`` checkpoint (:class:`Classifier`) or an
    exported ``.onnx`` model (:class:`spokenword.runtime.OnnxClassifier`, no torch needed), both
    with the same call interface. The dispatch lives in :func:`spokenword.runtime.load_classifier`
    (torch-free, so the ONNX path never imports torch)."""
    from spokenword.runtime import load_classifier as load

    return load(path, **kwargs)


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


def evaluate(classifier: Classifier, recordings) -> Evaluation:
    """Score ``recordings`` (:class:`~spokenword.datasets.Recording` list) with ``classifier``."""
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
