"""Classify recordings with an ONNX export (:class:`OnnxClassifier`), without torch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from spokenword import audio
from spokenword.frontend.host import host_steps
from spokenword.frontend.reference import extract
from spokenword.inference.base import (AUDIO_INPUT, LENGTH_INPUT, METADATA_FORMAT, METADATA_KEY, METADATA_VERSION,
                                       PROBS_OUTPUT, ExportError, NumpyClassifier, pad_batch)


def read_metadata(path: str | os.PathLike) -> dict:
    """The export metadata of an ``.onnx`` model (from its ``metadata_props``), checked for format
    and version. Raises :class:`ExportError` with a one-line message otherwise."""
    import onnxruntime as ort

    session = _session(path, ort)
    return _metadata(path, session)


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



