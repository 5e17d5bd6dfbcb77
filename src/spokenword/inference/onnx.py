"""Classify recordings with an ONNX export (:class:`OnnxClassifier`), without torch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from spokenword.inference.base import (AUDIO_INPUT, FEATURES_OUTPUT, LENGTH_INPUT, METADATA_FORMAT, METADATA_KEY,
                                       METADATA_VERSION, PROBS_OUTPUT, BaseClassifier, ExportError, checked_size,
                                       pad_batch)

#: ``.onnx`` files larger than this (bytes) are refused before ONNX Runtime reads them: spokenword's
#: exports are a few MB (float32) or less (int8); a file of hundreds of MB is not one of them, and
#: would be read whole into memory.
MAX_ONNX_BYTES = 200 * 1000 * 1000


def read_metadata(path: str | os.PathLike) -> dict:
    """The export metadata of an ``.onnx`` model (from its ``metadata_props``), checked for format
    and version. Raises :class:`ExportError` with a one-line message otherwise."""
    import onnxruntime as ort

    session = _session(path, ort)
    return _metadata(path, session)


def _session(path, ort, threads: int | None = None):
    path = Path(path)
    checked_size(path, MAX_ONNX_BYTES, ExportError, "model")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - any failure means the file is not a usable ONNX model
        text = " ".join(str(err).split())[:200]
        raise ExportError(f"{path}: not a loadable ONNX model ({type(err).__name__}: {text})") from None


def _metadata(path, session) -> dict:
    try:
        raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    except Exception as err:  # noqa: BLE001 - a model ONNX Runtime loaded but cannot describe
        raise ExportError(f"{path}: its metadata cannot be read ({type(err).__name__})") from None
    if raw is None:
        raise ExportError(f"{path}: no spokenword metadata; export it with `spokenword export`")
    try:
        meta = json.loads(raw)
    except ValueError:
        raise ExportError(f"{path}: its spokenword metadata is not valid JSON; re-export it with `spokenword export`") from None
    if not isinstance(meta, dict):
        raise ExportError(f"{path}: its spokenword metadata is not a JSON object; re-export it with `spokenword export`")
    if meta.get("format") != METADATA_FORMAT or meta.get("version") != METADATA_VERSION:
        raise ExportError(f"{path}: metadata {str(meta.get('format'))[:40]!r} v{str(meta.get('version'))[:20]} is not "
                          f"{METADATA_FORMAT!r} v{METADATA_VERSION}; re-export it with this spokenword")
    missing = [key for key in ("labels", "sample_rate", "features") if key not in meta]
    if missing:
        raise ExportError(f"{path}: its metadata lacks {', '.join(missing)}; re-export it with `spokenword export`")
    if not isinstance(meta["features"], dict):
        raise ExportError(f"{path}: its metadata's feature settings are not a JSON object; re-export it")
    return meta


class OnnxClassifier(BaseClassifier):
    """Classify recordings with an ONNX export (the interface of
    :class:`~spokenword.inference.base.BaseClassifier`), without torch.

    The export computes the spectrogram in its graph: :meth:`probabilities` feeds it the padded batch
    of host-stepped clips, and :meth:`spectrogram` reads its ``features`` output (an export made
    before that output existed classifies, but has no spectrogram).

    Args:
        path: the ``.onnx`` file written by ``spokenword export`` (at most :data:`MAX_ONNX_BYTES`).
        max_seconds: reject longer files at decode time (s); ``None``:
            :data:`spokenword.audio.DEFAULT_MAX_SECONDS` (600 s).
        threads: ONNX Runtime intra-op threads (``None``: its default).
        name: what error messages call the model (default ``path``; the checkpoint for an export
            made at load time).

    Raises :class:`~spokenword.inference.base.ExportError` (one line) for a file that is missing,
    too large, not ONNX, without or with inconsistent metadata (labels, sample rate, features), or
    that does not run (:meth:`~spokenword.inference.base.BaseClassifier.check_model`).
    """

    runtime = "onnx"  # what runs the model (``/health``, ``Ensemble.runtime``)

    def __init__(self, path: str | os.PathLike, max_seconds: float | None = None, threads: int | None = None, *,
                 name: str | os.PathLike | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ExportError("onnxruntime is not installed: pip install onnxruntime") from None
        self.path = Path(path)
        self.session = _session(path, ort, threads)
        shown = Path(name) if name is not None else self.path  # what messages call the model
        self.metadata = _metadata(shown, self.session)
        self.labels: list[str] = self.metadata["labels"]
        self.sample_rate = self.metadata["sample_rate"]
        self.features: dict = dict(self.metadata["features"])
        self.max_seconds = max_seconds
        self._outputs = {output.name for output in self.session.get_outputs()}
        inputs = {i.name for i in self.session.get_inputs()}
        if not {AUDIO_INPUT, LENGTH_INPUT} <= inputs or PROBS_OUTPUT not in self._outputs:
            raise ExportError(f"{shown}: not a spokenword export (inputs {sorted(inputs)}, outputs "
                              f"{sorted(self._outputs)}; expected {AUDIO_INPUT!r}, {LENGTH_INPUT!r} -> {PROBS_OUTPUT!r})")
        self.check_model(shown)

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
