"""Inference from a checkpoint: :class:`Classifier` and labelled-set evaluation.

The checkpoint is the inference contract: it carries label names, sample rate, feature settings
and normalisation statistics, and :class:`Classifier` applies exactly that preprocessing.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np
import torch

from spokenword import audio
from spokenword.frontend.settings import FeatureSettings
from spokenword.frontend.graph import extract
from spokenword.inference.base import ModelError, predict_batched

Prediction = list[dict]  # [{"label": "7", "score": 0.97}, ...] sorted by score, highest first


class CheckpointError(ModelError):
    """A checkpoint that cannot be used, with a message naming it and why."""


def load_task(path: str | os.PathLike):
    """Load a :class:`~spokenword.task.SpokenWordTask` from a checkpoint (or a training run's folder:
    its best checkpoint, :func:`spokenword.runtime.model_file`), in eval mode on the CPU."""
    from spokenword.inference.load import model_file
    from spokenword.training.task import SpokenWordTask

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
