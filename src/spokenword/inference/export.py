"""Deployment exports of a checkpoint: ONNX (float or int8), front end included.

Every export is the checkpoint's :class:`~spokenword.inference.checkpoint.WaveformClassifier`, the
graph :class:`~spokenword.inference.checkpoint.Classifier` runs with PyTorch:

* inputs ``audio``: float32 ``(N, T)``, mono samples at the model's sample rate (Hz), and
  ``length``: int64 ``(N,)``, the true number of samples of each clip;
* padding rule: clips of a batch are zero-padded at the end to the longest (any ``T >= 1``); a
  fixed-shape runtime pads every clip to ``max_samples`` (metadata). Samples at or after
  ``length`` are ignored, so the result equals that of the unpadded clip;
* outputs ``probabilities``: float32 ``(N, num_classes)`` in label order, and ``features``: float32
  ``(N, 1, n_bins, n_frames)``, the front end's image before the training normalisation (what
  ``spectrogram`` shows).

The graph holds the whole front end of :class:`spokenword.frontend.graph.FrontEnd` (STFT, dB,
mel/DCT, resizing or cropping the time axis to the clip's own length, per-utterance scaling), the
training normalisation and the network. Silence trimming and the loudest window, whose output length
depends on the data, are the steps left outside: :func:`spokenword.frontend.host.host_steps` applies
them before the graph. Label names, sample rate, feature settings and normalisation statistics travel
with the model (ONNX ``metadata_props["spokenword"]``) and in a JSON file beside it (same content,
see :func:`export_metadata`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

import spokenword
from spokenword.frontend.host import host_steps
from spokenword.frontend.settings import FeatureSettings
from spokenword.inference import base as runtime
from spokenword.inference.checkpoint import WaveformClassifier, load_task
from spokenword.inference.onnx import read_metadata

ONNX_OPSET = 18
#: default clip length a fixed-shape runtime allocates (s); the graph itself accepts any length.
DEFAULT_MAX_SECONDS = 10.0
#: what ``spokenword export --format`` takes. TorchScript was dropped: ``torch.jit`` is deprecated
#: in PyTorch and the front end is written for ``torch.export`` (which the ONNX export uses), not
#: for the TorchScript compiler.
FORMATS = ("onnx",)


def waveform_classifier(checkpoint: str | os.PathLike) -> tuple[WaveformClassifier, object]:
    """The eval-mode :class:`WaveformClassifier` of a checkpoint, and its task."""
    task = load_task(checkpoint)
    return WaveformClassifier.from_task(task), task


def host_step_names(features: FeatureSettings) -> list[str]:
    """The steps :func:`spokenword.frontend.host.host_steps` applies before the graph, by name."""
    steps = ["trim_silence"] if features.trim_db is not None else []
    if features.crop_at == "loudest" and features.time_axis == "fixed":
        steps.append("loudest_window")
    return steps


def export_metadata(task, checkpoint, *, max_seconds: float, precision: str) -> dict:
    """The versioned description that travels with an export (all read from the checkpoint)."""
    return {
        "format": runtime.METADATA_FORMAT,
        "version": runtime.METADATA_VERSION,
        "spokenword_version": spokenword.__version__,
        "source_checkpoint": Path(checkpoint).name,
        "precision": precision,
        "network": f"{type(task.net).__module__}.{type(task.net).__qualname__}",
        "parameters": int(sum(p.numel() for p in task.net.parameters())),
        "labels": list(task.labels),
        "sample_rate": int(task.sample_rate),
        "features": task.features.to_dict(),
        "normalization": {"mean": float(task.feature_mean), "std": float(task.feature_std)},
        "inputs": {
            runtime.AUDIO_INPUT: "float32 (N, T): mono samples at sample_rate Hz, zero-padded at the end to a common T",
            runtime.LENGTH_INPUT: "int64 (N,): true samples per clip; samples at or after it are ignored",
        },
        "outputs": {
            runtime.PROBS_OUTPUT: "float32 (N, num_classes): class probabilities in label order",
            runtime.FEATURES_OUTPUT: "float32 (N, 1, n_bins, n_frames): the front end's image before normalization",
        },
        "max_samples": int(round(max_seconds * task.sample_rate)),
        "host_steps": host_step_names(task.features),
    }


def _example(sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    audio = torch.randn(2, sample_rate) * 0.1
    return audio, torch.tensor([sample_rate, sample_rate // 2], dtype=torch.int64)


def sidecar_path(model: Path) -> Path:
    """Where the JSON metadata of an export goes: ``model.onnx`` -> ``model.onnx.json``."""
    return Path(model).with_name(Path(model).name + ".json")


def _write_sidecar(out: Path, metadata: dict) -> Path:
    sidecar = sidecar_path(out)
    sidecar.write_text(json.dumps(metadata, indent=2) + "\n")
    return sidecar


def _set_onnx_metadata(path: Path, metadata: dict) -> None:
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:  # the exporter's per-node stack traces: a third of the file
        del node.metadata_props[:]
        node.doc_string = ""
    del model.graph.value_info[:]  # intermediate shapes: optional, ONNX Runtime infers them
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = runtime.METADATA_KEY, json.dumps(metadata)
    model.doc_string = f"spokenword {metadata['precision']} export of {metadata['source_checkpoint']}: audio -> probabilities, features"
    onnx.save(model, str(path))


@contextlib.contextmanager
def _quiet(logger_name: str = "torch.onnx"):
    """Silence the exporter's / quantizer's progress lines and warnings (not the user's concern)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(checkpoint, out, *, max_seconds: float = DEFAULT_MAX_SECONDS) -> Path:
    """Write the float32 ONNX export of ``checkpoint`` to ``out`` (and ``out`` with ``.json``)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model, task = waveform_classifier(checkpoint)
    batch, samples = torch.export.Dim("batch"), torch.export.Dim("samples", min=2)
    with torch.no_grad(), _quiet():
        program = torch.onnx.export(
            model, _example(task.sample_rate), dynamo=True, opset_version=ONNX_OPSET, verbose=False,
            input_names=[runtime.AUDIO_INPUT, runtime.LENGTH_INPUT],
            output_names=[runtime.PROBS_OUTPUT, runtime.FEATURES_OUTPUT],
            dynamic_shapes=({0: batch, 1: samples}, {0: batch}),
        )
    program.save(str(out))
    metadata = export_metadata(task, checkpoint, max_seconds=max_seconds, precision="float32")
    _set_onnx_metadata(out, metadata)
    _write_sidecar(out, metadata)
    return out


class _CalibrationReader:
    """Feeds ONNX Runtime's calibrator one clip at a time (``audio`` (1, T), ``length`` (1,))."""

    def __init__(self, waves: Sequence[np.ndarray]):
        self._items = iter([dict(zip((runtime.AUDIO_INPUT, runtime.LENGTH_INPUT), runtime.pad_batch([w]))) for w in waves])

    def get_next(self):
        return next(self._items, None)


def quantize_onnx(float_model, out, calibration_waves: Sequence[np.ndarray]) -> Path:
    """Post-training static int8 quantization (QDQ, per-channel weights, MinMax calibration) of the
    network's convolutions (but the first) and linear layer; the front end stays float.

    Args:
        float_model: an ``.onnx`` from :func:`export_onnx`.
        calibration_waves: ``(T,)`` float32 clips at the model's rate, after
            :func:`spokenword.frontend.host.host_steps` (training data, never the test split).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    out = Path(out)
    metadata = read_metadata(float_model)
    # the first convolution sees one input channel: int8 saves nothing there and its extra
    # quantize/dequantize steps cost time (measured ~0.1 ms of ~0.85 ms per clip)
    first_conv = next((n.name for n in onnx.load(str(float_model)).graph.node if n.op_type == "Conv"), None)
    with _quiet(""):  # the quantizer logs its advice on the root logger
        quantize_static(
            str(float_model), str(out), _CalibrationReader(calibration_waves),
            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv", "Gemm", "MaxPool", "Relu"], calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=[first_conv] if first_conv else [],
        )
    metadata["precision"] = "int8"
    metadata["calibration_clips"] = len(calibration_waves)
    _set_onnx_metadata(out, metadata)
    _write_sidecar(out, metadata)
    return out


def calibration_waves(root, sample_rate: int, settings: dict, *, clips: int = 200) -> list[np.ndarray]:
    """``clips`` training-split FSDD recordings (official split: takes 10-49), evenly spread over
    the sorted list, decoded and passed through the host-side steps."""
    from spokenword import audio
    from spokenword.data.splits import make_split
    from spokenword.data.corpora import FSDD

    train = make_split(FSDD().recordings(Path(root)), "official").train
    step = max(1, len(train) // clips)
    chosen = train[::step][:clips]
    return [host_steps(audio.load(r.path, sample_rate), settings) for r in chosen]


def export(checkpoint, out, *, format: str = "onnx", int8: bool = False, data_root=None,
           calibration_clips: int = 200, max_seconds: float = DEFAULT_MAX_SECONDS) -> list[Path]:
    """What ``spokenword export`` does; returns the files written (model, its JSON metadata, its model card
    ``MODEL.onnx.md``)."""
    out = Path(out)
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}")
    checkpoint = runtime.model_file(checkpoint)
    if not int8:
        path = export_onnx(checkpoint, out, max_seconds=max_seconds)
        return [path, sidecar_path(path), _card(path, checkpoint)]
    from spokenword.data.splits import resolve_root

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as work:
        float_path = export_onnx(checkpoint, Path(work) / "float32.onnx", max_seconds=max_seconds)
        meta = read_metadata(float_path)
        waves = calibration_waves(resolve_root(data_root), meta["sample_rate"], meta["features"], clips=calibration_clips)
        path = quantize_onnx(float_path, out, waves)
    return [path, sidecar_path(path), _card(path, checkpoint)]


def _card(path: Path, checkpoint) -> Path:
    """The model card beside an export (:mod:`spokenword.inference.card`), from its metadata and its run's report."""
    from spokenword.inference.card import write_export_card

    return write_export_card(path, json.loads(sidecar_path(path).read_text()), checkpoint)


def file_sizes(paths: Iterable[Path]) -> dict[str, int]:
    """Bytes per file."""
    return {str(p): Path(p).stat().st_size for p in paths}
