"""Torch-free inference for exported models: a numpy reference front end and :class:`OnnxClassifier`.

Everything here needs only ``numpy``, ``soundfile``, ``soxr`` (through :mod:`spokenword.audio`) and,
for :class:`OnnxClassifier`, ``onnxruntime``. It never imports torch, so a deployment can run
``spokenword classify model.onnx clip.wav`` with the minimal install (see README, "Deployment").

The exported graph (see :mod:`spokenword.export`) takes raw audio and computes the features
itself. The only step kept outside the graph is silence trimming (``trim_db``), whose output length
depends on the data; :func:`host_steps` applies it. :func:`extract` is the full numpy reference of
:func:`spokenword.features.extract` (same settings dict, same result to float32 rounding), for
runtimes that cannot run the in-graph front end and for display.

Shapes: ``T`` samples at ``sample_rate`` Hz, ``K = n_fft // 2 + 1`` STFT bins, ``F`` frames.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from spokenword import audio

#: ``metadata_props`` key of the ONNX model holding the export metadata (JSON, see :func:`read_metadata`).
METADATA_KEY = "spokenword"
#: identifies the metadata layout; bump :data:`METADATA_VERSION` when fields change meaning.
METADATA_FORMAT = "spokenword-export"
METADATA_VERSION = 1
#: graph input / output names of every export.
AUDIO_INPUT, LENGTH_INPUT, PROBS_OUTPUT = "audio", "length", "probabilities"

_EPS = 1e-10
#: silence trimming's noise-floor rule never cuts closer than this many dB below the loudest frame
#: (a tightly cut clip has no silence, so its quietest frame is speech, not noise); shared with
#: :mod:`spokenword.features`, which imports it (this module must not import torch)
FLOOR_RULE_RANGE_DB = 20.0

Prediction = list[dict]


# -- numpy reference front end (mirrors spokenword.features) -----------------------------------
def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``n_fft`` samples (as ``torch.hann_window``), float64."""
    n = np.arange(n_fft, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * n / n_fft)


def power_spectrogram(wave: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Power STFT, Hann window, no centre padding: ``(T,)`` to ``(K, F)`` with
    ``F = 1 + (max(T, n_fft) - n_fft) // hop_length``; clips shorter than ``n_fft`` are zero-padded."""
    wave = np.asarray(wave, dtype=np.float64)
    if wave.shape[-1] < n_fft:
        wave = np.pad(wave, (0, n_fft - wave.shape[-1]))
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::hop_length]  # (F, n_fft)
    spec = np.fft.rfft(frames * hann_window(n_fft), axis=-1)
    return (spec.real**2 + spec.imag**2).T


def to_db(power: np.ndarray) -> np.ndarray:
    """``10 * log10(power)`` with a floor of -100 dB."""
    return 10.0 * np.log10(np.maximum(power, _EPS))


def mel_filterbank(n_fft: int, sample_rate: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None) -> np.ndarray:
    """Triangular HTK mel filters ``(n_mels, K)``, each peaking at 1."""
    f_max = sample_rate / 2 if f_max is None else f_max
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    to_mel = lambda hz: 2595.0 * np.log10(1.0 + hz / 700.0)  # noqa: E731
    mels = np.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2)
    edges = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None)


def dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """Orthonormal DCT-II matrix ``(n_mfcc, n_mels)``."""
    n = np.arange(n_mels, dtype=np.float64)
    k = np.arange(n_mfcc, dtype=np.float64)[:, None]
    basis = np.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis


def frame_energy_db(wave: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Mean power of each frame in dB (floor -100 dB), float32 ``(F,)``."""
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame_length)[::hop_length]
    return to_db(np.square(frames, dtype=np.float32).mean(axis=-1, dtype=np.float32))


def trim_silence(wave: np.ndarray, top_db: float, frame_length: int = 256, hop_length: int = 80,
                 floor_db: float | None = None) -> np.ndarray:
    """Numpy reference of :func:`spokenword.features.trim_silence`: ``(T,)`` to ``(T',)``."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.shape[-1] <= frame_length:
        return wave
    energy = frame_energy_db(wave, frame_length, hop_length)
    peak = float(energy.max())
    if peak <= -100.0 + 1e-3:
        return wave
    threshold = peak - top_db
    if floor_db is not None:
        threshold = max(threshold, min(float(energy.min()) + floor_db, peak - FLOOR_RULE_RANGE_DB))
    loud = np.flatnonzero(energy > threshold)
    if loud.size == 0:
        return wave
    start = int(loud[0]) * hop_length
    stop = min(wave.shape[-1], int(loud[-1]) * hop_length + frame_length)
    return wave[start:stop]


def loudest_window(wave: np.ndarray, length: int, frame_length: int, hop_length: int) -> np.ndarray:
    """Numpy reference of :func:`spokenword.features.loudest_window`."""
    if wave.shape[-1] <= length:
        return wave
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame_length)[::hop_length]
    power = np.square(frames.astype(np.float64)).sum(axis=-1)
    span = 1 + (length - frame_length) // hop_length
    totals = np.convolve(power, np.ones(span), mode="valid") / span
    start = int(np.argmax(totals)) * hop_length
    return wave[start : start + length]


def linear_weights(src: int, dst: int) -> np.ndarray:
    """Linear-interpolation matrix ``(dst, src)`` of a half-pixel resize (``align_corners=False``,
    as ``torch.nn.functional.interpolate``): ``resized = weights @ values``."""
    pos = np.maximum((np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5, 0.0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, src - 1)
    frac = pos - lo
    weights = np.zeros((dst, src))
    np.add.at(weights, (np.arange(dst), lo), 1.0 - frac)
    np.add.at(weights, (np.arange(dst), hi), frac)
    return weights


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of ``(H, W)`` to ``(height, width)`` (half-pixel centres)."""
    return linear_weights(image.shape[0], height) @ image @ linear_weights(image.shape[1], width).T


def fix_frames(spec: np.ndarray, n_frames: int) -> np.ndarray:
    """Centre-crop or centre-pad ``(B, F)`` to ``(B, n_frames)``; padding takes the minimum value."""
    frames = spec.shape[-1]
    if frames >= n_frames:
        start = (frames - n_frames) // 2
        return spec[:, start : start + n_frames]
    missing = n_frames - frames
    left = missing // 2
    return np.pad(spec, ((0, 0), (left, missing - left)), constant_values=spec.min())


def normalize_utterance(image: np.ndarray, mode: str) -> np.ndarray:
    """Per-clip scaling: ``minmax`` to [0, 1], ``standard`` to mean 0 / std 1, ``none``."""
    if mode == "none":
        return image
    if mode == "minmax":
        low, high = image.min(), image.max()
        return (image - low) / max(high - low, 1e-6)
    if mode == "standard":
        return (image - image.mean()) / max(image.std(), 1e-6)
    raise ValueError(f"unknown utterance_norm {mode!r}; expected 'minmax', 'standard' or 'none'")


def host_steps(wave: np.ndarray, settings: Mapping) -> np.ndarray:
    """The part of the front end that runs before an exported graph (numpy reference of
    :func:`spokenword.features.locate_speech`): silence trimming (``trim_db``, ``trim_floor_db``;
    frames of ``n_fft`` samples every ``hop_length``) and, with ``crop_at: loudest``, the loudest
    ``n_frames`` window. ``(T,)`` to ``(T',)``."""
    s = settings
    wave = np.asarray(wave, dtype=np.float32).ravel()
    if s.get("trim_db") is not None:
        wave = trim_silence(wave, s["trim_db"], frame_length=s["n_fft"], hop_length=s["hop_length"],
                            floor_db=s.get("trim_floor_db"))
    if s.get("crop_at", "centre") == "loudest" and s["time_axis"] == "fixed":
        length = (s["n_frames"] - 1) * s["hop_length"] + s["n_fft"]
        wave = loudest_window(wave, length, s["n_fft"], s["hop_length"])
    return wave


def extract(wave: np.ndarray, sample_rate: int, settings: Mapping) -> np.ndarray:
    """Numpy reference of :func:`spokenword.features.extract`.

    Args:
        wave: ``(T,)`` samples at ``sample_rate`` Hz.
        settings: the feature settings as a dict (``FeatureSettings.to_dict()``, as stored in the
            export metadata).
    Returns:
        ``(1, n_bins, n_frames)`` float32.
    """
    s = settings
    wave = host_steps(wave, s).astype(np.float64)
    if s["peak_normalize"]:
        wave = wave / max(float(np.abs(wave).max()), 1e-6)
    power = power_spectrogram(wave, s["n_fft"], s["hop_length"])
    if s["kind"] == "stft":
        image = to_db(power)
    else:
        n_mels = s["n_bins"] if s["kind"] == "logmel" else max(s["n_bins"], 40)
        image = to_db(mel_filterbank(s["n_fft"], sample_rate, n_mels, s["f_min"], s["f_max"]) @ power)
    if s.get("top_db") is not None:  # dynamic range limit below the clip's loudest bin
        image = np.maximum(image, image.max() - s["top_db"])
    if s["kind"] == "mfcc":
        image = dct_matrix(s["n_bins"], n_mels) @ image
    if s.get("cepstral_lifter") is not None:  # low-quefrency liftering: keep the first coefficients only
        basis = dct_matrix(s["cepstral_lifter"], n_mels)
        image = basis.T @ (basis @ image)
    if s["time_axis"] == "stretch":
        image = resize(image, s["n_bins"], s["n_frames"])
    else:
        if image.shape[0] != s["n_bins"]:
            image = linear_weights(image.shape[0], s["n_bins"]) @ image
        image = fix_frames(image, s["n_frames"])
    if s.get("band_mean"):
        image = image - image.mean(axis=-1, keepdims=True)
    image = normalize_utterance(image, s["utterance_norm"])
    return image[None].astype(np.float32)


# -- exported models -----------------------------------------------------------------------------
def read_metadata(path: str | os.PathLike) -> dict:
    """The export metadata of an ``.onnx`` model (from its ``metadata_props``), checked for format
    and version. Raises :class:`ExportError` with a one-line message otherwise."""
    import onnxruntime as ort

    session = _session(path, ort)
    return _metadata(path, session)


class ModelError(ValueError):
    """A model file (checkpoint or export) that cannot be used; the message names it and the problem.
    Defined here, torch-free, so the command line can catch it without importing torch."""


class ExportError(ModelError):
    """An exported model that cannot be used, naming the file and the problem."""


def _session(path, ort, threads: int | None = None):
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such model file")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - any failure means the file is not a usable ONNX model
        raise ExportError(f"{path}: not a loadable ONNX model ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None


def _metadata(path, session) -> dict:
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise ExportError(f"{path}: no spokenword metadata; export it with `spokenword export`")
    meta = json.loads(raw)
    if meta.get("format") != METADATA_FORMAT or meta.get("version") != METADATA_VERSION:
        raise ExportError(f"{path}: metadata {meta.get('format')!r} v{meta.get('version')} is not "
                          f"{METADATA_FORMAT!r} v{METADATA_VERSION}; re-export it with this spokenword")
    return meta


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


class OnnxClassifier(NumpyClassifier):
    """Classify recordings with an ONNX export; the same interface as
    :class:`spokenword.predict.Classifier`, without torch.

    For an export the model's input is the (trimmed) waveform, the spectrogram being computed in the
    graph: :meth:`featurize` returns that ``(T',)`` waveform and :meth:`probabilities` takes a batch of
    them. :meth:`spectrogram` gives the ``(1, n_bins, n_frames)`` image (numpy reference) for display.

    Args:
        path: the ``.onnx`` file written by ``spokenword export``.
        max_seconds: reject longer clips at decode time (``None``: no limit), as ``Classifier``.
        threads: ONNX Runtime intra-op threads (``None``: its default).
    """

    runtime = "onnx"  # what runs the model (``/health``, ``Ensemble.runtime``)

    def __init__(self, path: str | os.PathLike, max_seconds: float | None = None, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ExportError("onnxruntime is not installed: pip install onnxruntime") from None
        self.path = Path(path)
        self.session = _session(path, ort, threads)
        self.metadata = _metadata(path, self.session)
        self.labels: list[str] = list(self.metadata["labels"])
        self.sample_rate = int(self.metadata["sample_rate"])
        self.settings: dict = dict(self.metadata["features"])
        self.max_seconds = max_seconds

    def waveform(self, source) -> np.ndarray:
        """Decode and resample ``source`` (path, bytes, file object or ``(samples, rate)``) to float32
        mono ``(T,)`` at :attr:`sample_rate` Hz (the same code as ``Classifier.waveform``)."""
        if isinstance(source, tuple) and len(source) == 2:
            samples, rate = source
            return audio.prepare(np.asarray(samples), int(rate), self.sample_rate)
        return audio.load(source, self.sample_rate, max_seconds=self.max_seconds)

    def featurize(self, wave: np.ndarray) -> np.ndarray:
        """``(T,)`` waveform to the model's input, the ``(T',)`` waveform after the host-side steps."""
        return host_steps(wave, self.settings)

    def spectrogram(self, wave: np.ndarray) -> np.ndarray:
        """``(T,)`` waveform to the ``(1, n_bins, n_frames)`` feature image the graph computes."""
        return extract(wave, self.sample_rate, self.settings)

    def probabilities(self, features) -> np.ndarray:
        """A batch of :meth:`featurize` outputs (a list of ``(T_i,)`` arrays, or ``(N, T)``) to
        ``(N, num_classes)`` probabilities."""
        batch, lengths = pad_batch(list(features))
        return self.session.run([PROBS_OUTPUT], {AUDIO_INPUT: batch, LENGTH_INPUT: lengths})[0]



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


def model_file(path: str | os.PathLike) -> Path:
    """The model file ``path`` names: a file as it is; a training run's folder
    (``runs/NAME/version_N``, holding ``report.json``) its best checkpoint; an experiment's folder
    (``runs/NAME``) the best checkpoint of its newest finished run (highest ``version_N``).

    Raises :class:`ModelError` for a folder without a finished run."""
    path = Path(path)
    if not path.is_dir():
        return path
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


def load_classifier(path: str | os.PathLike, **kwargs):
    """Open a trained model for inference: an exported ``.onnx`` model (:class:`OnnxClassifier`,
    torch is never imported) or a ``.ckpt`` checkpoint (:class:`spokenword.predict.Classifier`);
    a training run's folder means its best checkpoint (:func:`model_file`)."""
    path = model_file(path)
    if Path(path).suffix.lower() == ".onnx":
        return OnnxClassifier(path, **kwargs)
    from spokenword.predict import Classifier

    return Classifier.from_checkpoint(path, **kwargs)
