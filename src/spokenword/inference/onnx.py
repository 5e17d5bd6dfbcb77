"""Classify recordings with an ONNX export (:class:`OnnxClassifier`), without torch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from spokenword.inference.base import (AUDIO_INPUT, FEATURES_OUTPUT, LENGTH_INPUT, METADATA_FORMAT, METADATA_KEY,
                                       METADATA_VERSION, PROBS_OUTPUT, BaseClassifier, ExportError, pad_batch)


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


class OnnxClassifier(BaseClassifier):
    """Classify recordings with an ONNX export (the interface of
    :class:`~spokenword.inference.base.BaseClassifier`), without torch.

    The export computes the spectrogram in its graph: :meth:`probabilities` feeds it the padded batch
    of host-stepped clips, and :meth:`spectrogram` reads its ``features`` output (an export made
    before that output existed classifies, but has no spectrogram).

    Args:
        path: the ``.onnx`` file written by ``spokenword export``.
        max_seconds: reject longer files at decode time (s); ``None``: no limit.
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
        self.features: dict = dict(self.metadata["features"])
        self.max_seconds = max_seconds
        self._outputs = {output.name for output in self.session.get_outputs()}

    def _run(self, output: str, waves: Sequence[np.ndarray]) -> np.ndarray:
        batch, lengths = pad_batch(list(waves))
        return self.session.run([output], {AUDIO_INPUT: batch, LENGTH_INPUT: lengths})[0]

    def probabilities(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        return self._run(PROBS_OUTPUT, waves)

    def spectrogram(self, wave: np.ndarray) -> np.ndarray:
        if FEATURES_OUTPUT not in self._outputs:
            raise ExportError(f"{self.path}: this export has no {FEATURES_OUTPUT!r} output (an earlier spokenword "
                              f"made it); re-export it to get its features")
        return self._run(FEATURES_OUTPUT, [self.featurize(wave)])[0]
