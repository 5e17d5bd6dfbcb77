"""Inference from a checkpoint with PyTorch: :func:`load_task`, the :class:`WaveformClassifier` graph
and the :class:`Classifier` that runs it.

The checkpoint is the inference contract: it carries label names, sample rate, feature settings and
normalisation statistics. :class:`WaveformClassifier` (front end + normalisation + network + softmax)
is the one graph every runtime runs: :class:`Classifier` runs it eagerly and
:mod:`spokenword.inference.export` exports it, so PyTorch and ONNX inference are one computation.

Checkpoints of earlier versions load too: :func:`load_task` rewrites class paths that moved
(:data:`MOVED`) and drops hyper-parameters of retired experiments when they were off; a checkpoint
that used one cannot be rebuilt, and says how to retrain it.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from spokenword.frontend.graph import FrontEnd
from spokenword.frontend.settings import RETIRED_CODE, FeatureSettings
from spokenword.inference.base import BaseClassifier, CheckpointError, check_contract, checked_size, model_file, pad_batch

__all__ = ["CheckpointError", "Classifier", "WaveformClassifier", "load_task", "migrate"]

#: class-path prefixes of modules that moved: old -> new (checkpoints store class paths as text).
MOVED = {
    "spokenword.augment.": "spokenword.data.feature_augment.",
    "spokenword.wave_augment.": "spokenword.data.wave_augment.",
    "spokenword.datasets.": "spokenword.data.corpora.",
    "spokenword.task.": "spokenword.training.task.",
}
#: retired settings that only mean something when their switch (same object) is on: dropped with it.
DEPENDENT = {
    "mixstyle_alpha": "mixstyle_p",
    "mixstyle_blocks": "mixstyle_p",
    "freq_norm_blocks": "freq_norm",
    "speakers": "speaker_adversary",
}
#: retired settings dropped when they hold this value, the model being the same as now (other values refused)
SAME_AS_NOW = {
    "backbone_norm": "pretrained",  # SpeechEmbeddingCNN: a frozen backbone keeps its pretrained batch-norm statistics
    "teacher_weight": 0.5,  # distillation's loss share (docs/experiments.md): the network is a plain one
}
#: checkpoints larger than this (bytes) are refused before torch reads them (spokenword's are a few MB).
MAX_CHECKPOINT_BYTES = 1000 * 1000 * 1000
RETRAIN = f"retrain it (spokenword fit --config configs/...) or load it with the code of commit {RETIRED_CODE} (git checkout {RETIRED_CODE})"


def _moved(value):
    """``value`` with every class path under a moved module rewritten (dicts and lists recursively)."""
    if isinstance(value, str):
        for old, new in MOVED.items():
            if value.startswith(old):
                return new + value[len(old):]
        return value
    if isinstance(value, dict):
        return {k: _moved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(v) for v in value]
    return value


def _off(value) -> bool:
    """Whether a setting's value is the one that turns it off."""
    return value is None or value is False or (isinstance(value, (int, float)) and value == 0) or (
        isinstance(value, (list, tuple, dict, str)) and len(value) == 0)


def _accepted(target) -> set[str] | None:
    """Keyword names ``target`` (a class or function) accepts; ``None`` when it takes any (``**kwargs``)."""
    parameters = inspect.signature(target).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL}


def _prune(path: Path, where: str, values: dict, accepted: set[str] | None) -> dict:
    """``values`` without the keys ``accepted`` lacks, each dropped when off; one that was on raises."""
    if accepted is None:
        return values
    kept = {}
    for key, value in values.items():
        if key in accepted or key.startswith("_"):  # "_instantiator", "_class_path": Lightning's own
            kept[key] = value
        elif key in DEPENDENT and _off(values.get(DEPENDENT[key])):
            continue
        elif key in SAME_AS_NOW and value == SAME_AS_NOW[key]:
            continue
        elif not _off(value):
            raise CheckpointError(f"{path}: trained with {where}{key}={value!r}, which spokenword no longer has; {RETRAIN}")
    return kept


def _resolve(path: Path, where: str, class_path: str):
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise CheckpointError(f"{path}: trained with {where}{class_path}, which spokenword no longer has; {RETRAIN}") from None


def _migrate_config(path: Path, where: str, value):
    """A ``{"class_path", "init_args"}`` config of a spokenword class with its retired arguments
    pruned (nested configs too); other values unchanged."""
    if not (isinstance(value, dict) and isinstance(value.get("class_path"), str)):
        return value
    if not value["class_path"].startswith("spokenword."):
        return value
    target = _resolve(path, where.rstrip(".") + "=" if where else "", value["class_path"])
    args = {k: _migrate_config(path, f"{where}{k}.", v) for k, v in (value.get("init_args") or {}).items()}
    return {**value, "init_args": _prune(path, where, args, _accepted(target))}


def migrate(checkpoint: dict, path: str | os.PathLike = "checkpoint") -> dict:
    """The hyper-parameters of an older checkpoint rewritten for this version, in place: moved class
    paths (:data:`MOVED`), and the arguments that the task, its networks, its augmentation and the
    feature settings no longer take dropped when they were off (``None``, 0, ``False``, empty).

    Raises:
        CheckpointError: the checkpoint used a setting or class that is gone (one line, how to retrain).
    """
    from spokenword.training.task import SpokenWordTask

    path = Path(path)
    for key in ("hyper_parameters", "datamodule_hyper_parameters"):
        if isinstance(checkpoint.get(key), dict):
            checkpoint[key] = _moved(checkpoint[key])
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, dict):
        return checkpoint
    hparams = {k: _migrate_config(path, f"{k}.", v) for k, v in hparams.items()}
    if isinstance(hparams.get("features"), dict):
        fields = {f.name for f in dataclasses.fields(FeatureSettings)}
        hparams["features"] = _prune(path, "features.", hparams["features"], fields)
    checkpoint["hyper_parameters"] = _prune(path, "", hparams, _accepted(SpokenWordTask.__init__))
    return checkpoint


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:200] if text else ''}"


def load_task(path: str | os.PathLike):
    """Load a :class:`~spokenword.training.task.SpokenWordTask` from a checkpoint (or a training run's
    folder: its best checkpoint, :func:`~spokenword.inference.base.model_file`), in eval mode on the
    CPU; an older checkpoint's hyper-parameters are migrated first (:func:`migrate`).

    Raises :class:`CheckpointError` (one line) for a missing, too large (:data:`MAX_CHECKPOINT_BYTES`),
    corrupt, foreign or retired checkpoint, or one whose labels or sample rate are unusable."""
    from spokenword.training.task import SpokenWordTask

    path = model_file(path)
    checked_size(path, MAX_CHECKPOINT_BYTES, CheckpointError, "checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure here means the file is not our checkpoint
        raise CheckpointError(f"{path}: not a spokenword checkpoint ({_first_line(err)})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not a spokenword checkpoint (no state_dict)")
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, dict) or not {"labels", "features"} <= hparams.keys():
        # every spokenword checkpoint carries its inference contract; without it, migrating is moot
        raise CheckpointError(f"{path}: not a spokenword checkpoint (no labels and feature settings in it)")
    if hparams["labels"] is not None:  # None: the task's default labels
        check_contract(path, hparams["labels"], hparams.get("sample_rate", 8000))
    migrate(checkpoint, path)
    # the training state (optimiser, loops, callbacks) is not needed to rebuild the model
    model_only = {k: v for k, v in checkpoint.items() if k not in ("optimizer_states", "lr_schedulers", "loops", "callbacks")}
    buffer = io.BytesIO()  # a file-like checkpoint: Lightning's documented way in, as saved
    torch.save(model_only, buffer)
    buffer.seek(0)
    try:
        task = SpokenWordTask.load_from_checkpoint(buffer, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure here means the file is not our checkpoint
        raise CheckpointError(f"{path}: not a spokenword checkpoint ({_first_line(err)})") from None
    task.eval()
    _check_output_width(path, task)
    return task


def _check_output_width(path: Path, task) -> None:
    """Raise :class:`CheckpointError` when the network gives another number of scores than the
    checkpoint names labels (a checkpoint whose labels were edited, or a network config that states
    its own ``num_classes``), so that no command (``export`` included) writes or runs such a model."""
    shape = getattr(task.features, "shape", None)
    if not shape:
        return
    try:
        with torch.inference_mode():
            logits = task.net(torch.zeros(1, *shape))
    except Exception:  # noqa: BLE001 - a network that wants other input: BaseClassifier.check_model sees it run
        return
    width = int(logits.shape[-1]) if logits.ndim else 0
    if width != len(task.labels):
        raise CheckpointError(f"{path}: its network gives {width} scores per clip but it names {len(task.labels)} "
                              "labels; not a usable checkpoint")


class WaveformClassifier(nn.Module):
    """Front end + training normalisation + network + softmax, the graph every runtime runs.

    ``forward(audio (N, T) float32, length (N,) int64) -> (probabilities (N, num_classes),
    features (N, 1, n_bins, n_frames))``: ``audio`` holds mono samples at the model's rate (Hz),
    zero-padded at the end (:func:`~spokenword.inference.base.pad_batch`); samples at or after
    ``length`` are ignored. ``features`` is the front end's image before the normalisation.

    Args:
        net: ``(N, 1, n_bins, n_frames)`` normalised images to ``(N, num_classes)`` logits.
        front_end: :class:`~spokenword.frontend.graph.FrontEnd` of the model's settings and rate.
        mean, std: the training features' statistics: the network sees ``(features - mean) / std``.
    """

    def __init__(self, net: nn.Module, front_end: FrontEnd, mean=0.0, std=1.0):
        super().__init__()
        self.front_end = front_end
        self.net = net
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).detach().clone())
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).detach().clone())

    @classmethod
    def from_task(cls, task) -> "WaveformClassifier":
        """The eval-mode graph of a loaded task (:func:`load_task`)."""
        front_end = FrontEnd(task.features, task.sample_rate)
        return cls(task.net, front_end, task.feature_mean, task.feature_std).eval()

    def forward(self, audio: torch.Tensor, length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.front_end(audio, length)
        probabilities = torch.softmax(self.net((features - self.mean) / self.std), dim=-1)
        return probabilities, features


class Classifier(BaseClassifier):
    """Classify recordings with a network run by PyTorch (the interface of
    :class:`~spokenword.inference.base.BaseClassifier`).

    Args:
        net: ``(N, 1, n_bins, n_frames)`` feature images, after ``(x - mean) / std``, to
            ``(N, num_classes)`` logits (a checkpoint's network, see :meth:`from_checkpoint`).
        labels: class names in output order.
        sample_rate: rate the model expects (Hz).
        features: feature settings used in training.
        max_seconds: reject longer files at decode time (s); ``None``:
            :data:`spokenword.audio.DEFAULT_MAX_SECONDS` (600 s).
        mean, std: the training features' normalisation statistics.
    """

    runtime = "torch"  # what runs the model (``/health``, ``Ensemble.runtime``)

    def __init__(self, net: nn.Module, labels: Sequence[str], sample_rate: int, features: FeatureSettings,
                 max_seconds: float | None = None, *, mean=0.0, std=1.0):
        self.labels = list(labels)
        self.sample_rate = int(sample_rate)
        self.features = features
        self.max_seconds = max_seconds
        self.model = WaveformClassifier(net, FrontEnd(features, self.sample_rate), mean, std).eval()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **kwargs) -> "Classifier":
        """The classifier of a checkpoint (or a training run's folder): its network, labels, rate,
        feature settings and normalisation, run as the graph its export holds; ``kwargs`` as the
        constructor's (``max_seconds``).

        Raises :class:`CheckpointError` / :class:`~spokenword.inference.base.ModelError` (one line)
        for a file that is not a usable checkpoint: unreadable, truncated, foreign, or one whose
        labels or sample rate are absurd or do not match its network
        (:meth:`~spokenword.inference.base.BaseClassifier.check_model`)."""
        task = load_task(path)
        name = model_file(path)
        labels, rate = check_contract(name, task.labels, task.sample_rate)
        try:
            classifier = cls(task.net, labels, rate, task.features, mean=task.feature_mean, std=task.feature_std, **kwargs)
        except (ValueError, RuntimeError) as err:  # settings the front end cannot be built from
            raise CheckpointError(f"{name}: not a usable spokenword checkpoint ({_first_line(err)})") from None
        classifier.check_model(name)  # the network's output width against its labels, finite scores
        return classifier

    @torch.inference_mode()
    def probabilities(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        audio, length = pad_batch(list(waves))
        probs, _ = self.model(torch.from_numpy(audio), torch.from_numpy(length))
        return probs.float().numpy()

    @torch.inference_mode()
    def spectrogram(self, wave: np.ndarray) -> np.ndarray:
        audio, length = pad_batch([self.featurize(wave)])
        return self.model.front_end(torch.from_numpy(audio), torch.from_numpy(length))[0].float().numpy()
