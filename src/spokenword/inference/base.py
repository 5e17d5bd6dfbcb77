"""The torch-free inference contract: errors, the prediction type, the metadata of exports and the
one base class every classifier shares (:class:`BaseClassifier`), and :func:`model_file`, which names the
model file a path stands for.

A classifier turns a recording into ``[{"label", "score"}, ...]`` in four steps, the same for every
runtime and every entry point (CLI, Python, web service, transcriber):

1. :meth:`~BaseClassifier.waveform`: decode and resample to float32 mono ``(T,)`` at ``sample_rate`` Hz;
2. :meth:`~BaseClassifier.featurize`: the host steps of the front end (silence trimming, loudest
   window; :func:`spokenword.frontend.host.host_steps`), ``(T,)`` to ``(T',)``;
3. :meth:`~BaseClassifier.probabilities`: a list of ``(T'_i,)`` clips to ``(N, num_classes)``, the
   graph (front end + normalisation + network + softmax) run by PyTorch or ONNX Runtime;
4. :meth:`~BaseClassifier.rank`: one row to the sorted label list.

Nothing here imports torch, so the command line and an ``.onnx`` deployment run without it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from spokenword import audio
from spokenword.frontend.host import host_steps
from spokenword.labels import UNKNOWN, is_rejection

#: ``metadata_props`` key of the ONNX model holding the export metadata (JSON, see
#: :func:`spokenword.inference.onnx.read_metadata`).
METADATA_KEY = "spokenword"
#: identifies the metadata layout; bump :data:`METADATA_VERSION` when fields change meaning.
METADATA_FORMAT = "spokenword-export"
METADATA_VERSION = 1
#: graph input / output names of every export.
AUDIO_INPUT, LENGTH_INPUT, PROBS_OUTPUT = "audio", "length", "probabilities"
#: the second output: the front end's ``(N, 1, n_bins, n_frames)`` image before normalisation.
FEATURES_OUTPUT = "features"
#: the file that makes a folder a *model folder* (the bundled model, an ``adapt`` output): its members and facts
MODEL_FOLDER_MANIFEST = "manifest.json"


Prediction = list[dict]  # [{"label": "7", "score": 0.97}, ...] sorted by score, highest first


class ModelError(ValueError):
    """A model file (checkpoint or export) that cannot be used; the message names it and the problem.
    Defined here, torch-free, so the command line can catch it without importing torch."""


class CheckpointError(ModelError):
    """A checkpoint that cannot be used, with a message naming it and why."""


class ExportError(ModelError):
    """An exported model that cannot be used, naming the file and the problem."""


def check_contract(name: object, labels, sample_rate) -> tuple[list[str], int]:
    """The ``(labels, sample_rate)`` a model file states, checked: ``labels`` a non-empty list of
    distinct, non-empty strings; ``sample_rate`` an integer (Hz) within the range
    :mod:`spokenword.audio` accepts. Raises :class:`ModelError` (one line naming ``name``) otherwise."""
    if isinstance(labels, (str, bytes)) or not isinstance(labels, (list, tuple)):
        raise ModelError(f"{name}: its labels are {type(labels).__name__}, not a list of class names")
    if not labels:
        raise ModelError(f"{name}: it names no labels (an empty label list)")
    if not all(isinstance(label, str) and label.strip() for label in labels):
        raise ModelError(f"{name}: its labels must be non-empty strings, got {_clip(labels)}")
    if len(set(labels)) != len(labels):
        twice = sorted({label for label in labels if labels.count(label) > 1})
        raise ModelError(f"{name}: its labels repeat {_clip(twice)}; each class must be named once")
    if isinstance(sample_rate, float) and sample_rate.is_integer():
        sample_rate = int(sample_rate)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):
        raise ModelError(f"{name}: its sample rate {_clip(sample_rate)} is not a whole number of Hz")
    if not audio.MIN_SAMPLE_RATE <= sample_rate <= audio.MAX_SAMPLE_RATE:
        raise ModelError(f"{name}: its sample rate {sample_rate} Hz is outside the supported "
                         f"{audio.MIN_SAMPLE_RATE}-{audio.MAX_SAMPLE_RATE} Hz")
    return list(labels), sample_rate


def _clip(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def model_file(path: str | os.PathLike) -> Path:
    """The model file ``path`` names: a file as it is; a training run's folder
    (``runs/NAME/version_N``, holding ``report.json``) its best checkpoint; an experiment's folder
    (``runs/NAME``) the best checkpoint of its newest finished run (highest ``version_N``).

    Raises :class:`ModelError` for a folder without a finished run."""
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / MODEL_FOLDER_MANIFEST).is_file():
        raise ModelError(f"{path}: a model folder of ONNX exports (its {MODEL_FOLDER_MANIFEST} lists them), not a "
                         "training run; open it with load_model or spokenword classify/evaluate/serve/transcribe")
    runs = [path] if (path / "report.json").is_file() else sorted(
        (v for v in path.glob("version_*") if (v / "report.json").is_file() and v.name[8:].isdigit()),
        key=lambda v: int(v.name[8:]))
    if not runs:
        raise ModelError(f"{path}: a folder without a finished training run (no report.json in it or in its version_* folders)")
    run = runs[-1]
    try:
        checkpoint = Path(json.loads((run / "report.json").read_text())["checkpoint"])
    except (ValueError, KeyError, TypeError):
        raise ModelError(f"{run / 'report.json'}: not a spokenword run report (no checkpoint)") from None
    if checkpoint.is_file():
        return checkpoint
    local = run / "checkpoints" / checkpoint.name  # a relative path from fit's directory, or a moved run folder
    if local.is_file():
        return local
    raise ModelError(f"{run}: its best checkpoint {checkpoint.name} is not in {run / 'checkpoints'}")


def checked_size(path: Path, limit: int, error: type[ModelError], kind: str) -> int:
    """Bytes of the model file ``path``, checked before anything is loaded: one-line ``error`` when it is
    missing, unreadable, empty or over ``limit`` bytes (``kind``: what it should be, for the message)."""
    try:
        if not path.is_file():
            raise error(f"{path}: no such {kind} file")
        size = path.stat().st_size
    except OSError as err:
        raise error(f"{path}: cannot be read ({err.strerror or type(err).__name__})") from None
    if size == 0:
        raise error(f"{path}: empty file (0 bytes), not a {kind}")
    if size > limit:
        raise error(f"{path}: {size / 1e6:.0f} MB, over the {limit / 1e6:.0f} MB limit of a spokenword {kind} "
                    "(they are a few MB); not loaded")
    return size


def pad_batch(waves: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The padding rule of an export's inputs: clips ``(T_i,)`` to ``audio (N, max T_i)`` float32,
    zero-padded at the end, and ``length (N,)`` int64 = ``T_i``."""
    lengths = np.array([len(w) for w in waves], dtype=np.int64)
    batch = np.zeros((len(waves), max(int(lengths.max()), 1)), dtype=np.float32)
    for row, wave in zip(batch, waves):
        row[: len(wave)] = wave
    return batch, lengths


class BaseClassifier:
    """Classify recordings: call it on a path, file bytes, a binary file or ``(samples, rate)``; it
    returns the top-k list ``[{"label": ..., "score": ...}, ...]`` sorted by score.

    A subclass sets ``labels`` (class names in output order), ``sample_rate`` (Hz), ``features``
    (:class:`~spokenword.frontend.settings.FeatureSettings` or its dict), ``max_seconds`` (decode
    limit, s; ``None``: :data:`spokenword.audio.DEFAULT_MAX_SECONDS`, 600 s: there is always a limit)
    and ``runtime`` (what runs the model: ``torch``, ``onnx``, ...), implements :meth:`probabilities`
    and :meth:`spectrogram`, and calls :meth:`check_model` once loaded.

    ``reject_below`` (0-1, or ``None``): the word threshold of :meth:`rank`. ``None`` (the default):
    the model's own best label is the answer, ``_unknown_``/``_silence_`` where it has those outputs and
    they score highest; a number ``t``: the best word is the answer when it scores at least ``t``,
    else the model's best "not a word" label (``_unknown_`` for a model without those outputs). The
    bundled model sets the value chosen by leave-one-speaker-out cross-validation.
    """

    runtime: str = "?"
    reject_below: float | None = None
    labels: list[str]
    sample_rate: int
    features: object
    max_seconds: float | None = None

    # -- what a subclass implements --------------------------------------------------------------
    def probabilities(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """A batch of :meth:`featurize` outputs (a list of ``(T_i,)`` float32 clips at
        :attr:`sample_rate`) to ``(N, num_classes)`` float32 probabilities in :attr:`labels` order."""
        raise NotImplementedError

    def spectrogram(self, wave: np.ndarray) -> np.ndarray:
        """A decoded ``(T,)`` waveform to the ``(1, n_bins, n_frames)`` float32 feature image the
        network sees (before the training normalisation), for display."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------------
    def check_model(self, name: object) -> None:
        """Check what the model file stated against what the model does, once, when loaded: its
        labels and sample rate (:func:`check_contract`), then one clip of a tone through
        :meth:`featurize` and :meth:`probabilities`, which must give one finite row per label.
        Raises :class:`ModelError` naming ``name`` (the model file) for a model whose metadata lies
        (a label count that is not its output width, feature settings it cannot use, ...)."""
        self.labels, self.sample_rate = check_contract(name, self.labels, self.sample_rate)
        t = np.arange(self.sample_rate // 2, dtype=np.float32) / self.sample_rate
        probe = (0.1 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
        try:
            probs = np.asarray(self.probabilities([self.featurize(probe)]))
        except ModelError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure here means the file does not hold a usable model
            text = " ".join(str(err).split())[:200]
            raise ModelError(f"{name}: the model does not run on a test clip ({type(err).__name__}: {text})") from None
        if probs.shape != (1, len(self.labels)):
            raise ModelError(f"{name}: the model gives {probs.shape[-1] if probs.ndim else 0} scores per clip "
                             f"but names {len(self.labels)} labels")
        if not np.isfinite(probs).all():
            raise ModelError(f"{name}: the model gives non-finite scores on a test clip")

    def waveform(self, source, max_seconds: float | None = None) -> np.ndarray:
        """Decode and resample ``source`` (path, bytes, file object or ``(samples, rate)``) to float32
        mono ``(T,)`` at :attr:`sample_rate` Hz.

        Sources longer than ``max_seconds`` (s; ``None``: :attr:`max_seconds`, and when that is
        ``None`` too, :data:`spokenword.audio.DEFAULT_MAX_SECONDS`) are refused with
        :class:`~spokenword.audio.TooLongError`; a file is never decoded past the limit, whatever its
        header says. Every problem of the input is an :class:`~spokenword.audio.AudioError` (one line)."""
        limit = max_seconds if max_seconds is not None else self.max_seconds
        if isinstance(source, tuple) and len(source) == 2:
            samples, rate = source
            samples = np.asarray(samples)
            if samples.ndim in (1, 2):
                audio.check_duration(samples.shape[0], int(rate), limit)
            return audio.prepare(samples, int(rate), self.sample_rate)
        return audio.load(source, self.sample_rate, max_seconds=limit)

    def featurize(self, wave: np.ndarray):
        """``(T,)`` waveform to the model's input, the ``(T',)`` clip after the host steps
        (silence trimming, loudest window)."""
        return host_steps(wave, self.features)

    def rank(self, probs, top_k: int | None = None) -> Prediction:
        """One row of probabilities ``(num_classes,)`` to the ``[{"label", "score"}]`` list (``top_k``
        entries, all by default), sorted by score except that the first entry is the answer (see
        :attr:`reject_below`): with a threshold, the best word when it reaches it, else the best of
        ``_unknown_``/``_silence_`` (or ``{"label": "_unknown_", "score": 1 - best word}`` for a model
        without them), the rest following in score order."""
        probs = np.asarray(probs)
        k = len(self.labels) if top_k is None else max(1, min(top_k, len(self.labels)))
        order = np.argsort(-probs, kind="stable")
        ranked = [{"label": self.labels[i], "score": float(probs[i])} for i in order]
        if self.reject_below is not None:
            words = [p for p in ranked if not is_rejection(p["label"])]
            if words and words[0]["score"] >= self.reject_below:
                answer = words[0]
            else:
                rejections = sorted((p for p in ranked if is_rejection(p["label"])),
                                    key=lambda p: (-p["score"], p["label"] != UNKNOWN))  # a tie: speech, not noise
                answer = rejections[0] if rejections else {"label": UNKNOWN, "score": 1.0 - (words[0]["score"] if words else 0.0)}
            ranked = [answer] + [p for p in ranked if p is not answer]
        return ranked[:k]

    def __call__(self, source, top_k: int | None = None) -> Prediction:
        return self.rank(self.probabilities([self.featurize(self.waveform(source))])[0], top_k)

    def predict_many(self, sources: Iterable, top_k: int | None = None, batch_size: int = 64) -> Iterator[tuple]:
        """Yield ``(source, prediction or AudioError)`` per source, in order, classifying up to
        ``batch_size`` decoded clips per model call; a source that fails to decode is yielded with
        its :class:`~spokenword.audio.AudioError` and does not stop the rest.

        Every way an input can be unusable is an ``AudioError`` (:mod:`spokenword.audio` turns what
        the decoders raise into one), so any other exception is a bug in spokenword or the model: it
        is raised, not yielded, so that it is seen and reported rather than counted as a bad file."""
        batch: list[tuple[object, object]] = []

        def flush():
            if not batch:
                return []
            probs = self.probabilities([f for _, f in batch])
            out = [(s, self.rank(p, top_k)) for (s, _), p in zip(batch, probs)]
            batch.clear()
            return out

        for source in sources:
            try:
                batch.append((source, self.featurize(self.waveform(source))))
            except audio.AudioError as err:
                yield from flush()
                yield source, err
                continue
            if len(batch) >= batch_size:
                yield from flush()
        yield from flush()
