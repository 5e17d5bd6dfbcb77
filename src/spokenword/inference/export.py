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
see :func:`export_metadata`). An int8 export is calibrated on the training part of the checkpoint's own
corpus and split (:func:`calibration_data`). Large, mostly-zero constants (the mel filterbank) are stored
as their nonzero values (:func:`compact_sparse_constants`).
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
#: the exporter folds constant expressions with results up to this many elements into stored constants
FOLD_LIMIT = 4096
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
    """Write ``metadata`` into the ONNX file at ``path``, dropping what it does not need (the exporter's
    per-node traces, intermediate shapes) and storing sparse constants compactly (:func:`compact_sparse_constants`)."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:  # the exporter's per-node stack traces: a third of the file
        del node.metadata_props[:]
        node.doc_string = ""
    del model.graph.value_info[:]  # intermediate shapes: optional, ONNX Runtime infers them
    compact_sparse_constants(model)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = runtime.METADATA_KEY, json.dumps(metadata)
    model.doc_string = f"spokenword {metadata['precision']} export of {metadata['source_checkpoint']}: audio -> probabilities, features"
    onnx.save(model, str(path))


#: float32 constants of at least this many elements, with at most this fraction of them nonzero, are
#: stored as their nonzero values (:func:`compact_sparse_constants`)
SPARSE_MIN_ELEMENTS, SPARSE_MAX_FILL = 1024, 0.25


def compact_sparse_constants(model) -> list[str]:
    """Store every large, mostly-zero float32 initializer of ``model`` (in place) as its nonzero values
    and their flat positions (int32), scattered into zeros in the graph (``ConstantOfShape``,
    ``ScatterElements``, ``Reshape``): the same tensor, bit for bit (signed zeros included), in a
    fraction of the bytes. ONNX Runtime folds it back to the dense constant when it loads the model.
    In a log-mel export this is the mel filterbank (64 x 129 float32, 249 nonzero: 33 KB -> 2 KB).
    Returns the names of the initializers rewritten."""
    from onnx import TensorProto, helper, numpy_helper

    graph, nodes, done = model.graph, [], []
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT or np.prod(init.dims) < SPARSE_MIN_ELEMENTS:
            continue
        dense = numpy_helper.to_array(init)
        flat = dense.ravel()
        where = np.flatnonzero(flat.view(np.uint32))  # by bit pattern: -0.0 is kept as a value
        if len(where) > SPARSE_MAX_FILL * flat.size:
            continue
        name = init.name
        graph.initializer.remove(init)
        graph.initializer.extend([
            numpy_helper.from_array(np.array([flat.size], np.int64), f"{name}.size"),
            numpy_helper.from_array(where.astype(np.int32), f"{name}.positions"),
            numpy_helper.from_array(flat[where], f"{name}.values"),
            numpy_helper.from_array(np.array(dense.shape, np.int64), f"{name}.shape"),
        ])
        nodes += [
            helper.make_node("ConstantOfShape", [f"{name}.size"], [f"{name}.zeros"],
                             value=numpy_helper.from_array(np.zeros(1, np.float32))),
            helper.make_node("ScatterElements", [f"{name}.zeros", f"{name}.positions", f"{name}.values"],
                             [f"{name}.flat"], axis=0),
            helper.make_node("Reshape", [f"{name}.flat", f"{name}.shape"], [name]),
        ]
        done.append(name)
    for node in reversed(nodes):  # before every use: the graph's nodes are in topological order
        graph.node.insert(0, node)
    return done


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
            dynamic_shapes=({0: batch, 1: samples}, {0: batch}), optimize=False,
        )
        # folding limited to small results: a constant the graph builds from small tables (the DFT basis,
        # 66K numbers from 768) stays as the steps that build it, which ONNX Runtime folds when it loads
        import onnxscript.optimizer

        program.model = onnxscript.optimizer.optimize(program.model, output_size_limit=FOLD_LIMIT)
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


def quantize_onnx(float_model, out, calibration_waves: Sequence[np.ndarray], calibration: dict | None = None) -> Path:
    """Post-training static int8 quantization (QDQ, per-channel weights, MinMax calibration) of the
    network's convolutions (but those of one input channel: its first), linear layer, pooling and activations;
    the front end stays float.

    Args:
        float_model: an ``.onnx`` from :func:`export_onnx`.
        calibration_waves: ``(T,)`` float32 clips at the model's rate, after
            :func:`spokenword.frontend.host.host_steps` (training data, never the test split).
        calibration: where the clips come from (:func:`calibration_data`), recorded in the metadata.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    out = Path(out)
    metadata = read_metadata(float_model)
    # float stay: the front end's DFT (a convolution whose kernel the graph builds: no stored weight) and a
    # convolution of one input channel (the network's first): int8 saves nothing there and its
    # quantize/dequantize steps cost time (measured ~0.1 ms of ~0.85 ms per clip)
    graph = onnx.load(str(float_model)).graph
    shapes = {tensor.name: list(tensor.dims) for tensor in graph.initializer}
    float_convs = [n.name for n in graph.node if n.op_type == "Conv"
                   and (n.input[1] not in shapes or shapes[n.input[1]][1] == 1)]
    with _quiet(""):  # the quantizer logs its advice on the root logger
        quantize_static(
            str(float_model), str(out), _CalibrationReader(calibration_waves),
            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            # LeakyRelu and Clip: the speech embedding's activation (leaky ReLU floored by a Clip) runs as int8, the
            # Clip folded into the quantized range, instead of float between a dequantize and a quantize step
            op_types_to_quantize=["Conv", "Gemm", "MaxPool", "Relu", "LeakyRelu", "Clip"], calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=float_convs,
        )
    metadata["precision"] = "int8"
    metadata["calibration_clips"] = len(calibration_waves)
    if calibration is not None:
        metadata["calibration"] = {**calibration, "clips": len(calibration_waves)}
    _set_onnx_metadata(out, metadata)
    _write_sidecar(out, metadata)
    return out


def _corpus_name(corpus) -> str:
    """``LabelledFolder(path='audio')``: the class and the arguments that differ from their defaults."""
    import inspect

    def shown(value) -> str:  # corpora inside (Combined) by name too: no object addresses in shipped files
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(shown(v) for v in value) + "]"
        return _corpus_name(value) if hasattr(value, "recordings") else repr(value)

    parameters = inspect.signature(type(corpus).__init__).parameters
    args = [f"{k}={shown(v)}" for k, v in vars(corpus).items()
            if not k.startswith("_") and (k not in parameters or parameters[k].default != v)]
    return f"{type(corpus).__name__}({', '.join(args)})"


def training_settings(checkpoint: Path) -> tuple[dict, str | None]:
    """The data module's settings the checkpoint was trained with, and what was not recorded (``None``:
    nothing). The checkpoint stores its data module's hyper-parameters but not the corpus
    (``save_hyperparameters(ignore=["corpus", ...])``); LightningCLI's ``config.yaml`` in the run folder
    (``RUN/config.yaml`` beside ``RUN/checkpoints/``) has the whole ``data`` section."""
    import yaml

    from spokenword.inference.checkpoint import _moved

    stored = torch.load(checkpoint, map_location="cpu", weights_only=True).get("datamodule_hyper_parameters")
    settings = dict(stored) if isinstance(stored, dict) else {}
    config = checkpoint.resolve().parent.parent / "config.yaml"
    if config.is_file():
        data = (yaml.safe_load(config.read_text()) or {}).get("data")
        if isinstance(data, dict):
            settings.update(data)
    missing = None if "corpus" in settings else f"no config.yaml in its run folder ({config.parent}) records its corpus"
    return _moved(settings), missing


def training_part(settings: dict, data_root) -> tuple[list, str, str]:
    """The training part of the split of the data module ``settings`` describe, built as ``spokenword fit``
    builds it (jsonargparse, :class:`~spokenword.data.datamodule.AudioDataModule`); ``data_root``
    overrides its data root. Returns the recordings, the corpus and the split name."""
    from jsonargparse import ArgumentParser

    from spokenword.data.datamodule import AudioDataModule

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(AudioDataModule, "data")
    wanted = {k: settings[k] for k in ("root", "corpus", "split", "test_speakers", "val_speakers", "val_fraction",
                                       "test_fraction", "split_seed") if k in settings}
    if data_root:
        wanted["root"] = str(data_root)
    config = parser.parse_object({"data": wanted})
    with warnings.catch_warnings():  # jsonargparse 4.49+ renamed instantiate_classes to instantiate
        warnings.simplefilter("ignore")
        module = parser.instantiate_classes(config).data
    train = module.split.train
    if not train:
        raise ValueError(f"the training part of split {module.split_name!r} is empty")
    return train, _corpus_name(module.corpus), module.split_name


def calibration_data(checkpoint, sample_rate: int, settings: dict, *, data_root=None,
                     clips: int = 200) -> tuple[list[np.ndarray], dict]:
    """``clips`` recordings of the training part of the corpus and split ``checkpoint`` was trained on
    (never its validation or test part), evenly spread over the sorted list, decoded at ``sample_rate``
    and passed through the host-side steps of ``settings``; and where they come from (the export's
    ``calibration`` metadata).

    The corpus, split and data root are those of the checkpoint's training run (:func:`training_settings`);
    ``data_root`` overrides the data root. A run without a recorded corpus is taken to be on the data
    module's default corpus, FSDD. When that data cannot be read, FSDD's official training split (takes
    10-49) under ``data_root`` (or ``$SPOKENWORD_DATA``) calibrates instead; either case logs one line."""
    from spokenword import audio
    from spokenword.data.splits import resolve_root

    checkpoint = Path(checkpoint)
    training, missing = training_settings(checkpoint)
    note = None
    try:
        recordings, corpus, split = training_part(training, data_root)
        if missing:
            note = f"{missing}; assumed FSDD, the data module's default"
    except Exception as err:  # noqa: BLE001 - any failure: a corpus gone, a config of another version
        reason = missing or f"its training data could not be read ({' '.join(str(err).split())[:200]})"
        recordings, corpus, split = training_part({"split": "official"}, resolve_root(data_root))
        note = f"{reason}; FSDD's official training split (takes 10-49) used instead"
    if note:
        logging.getLogger(__name__).warning("int8 calibration of %s: %s", checkpoint, note)
    step = max(1, len(recordings) // clips)
    chosen = recordings[::step][:clips]
    waves = [host_steps(audio.load(r.path, sample_rate), settings) for r in chosen]
    about = {"corpus": corpus, "split": split, "part": "train", "checkpoint_training_data": note is None}
    return waves, ({**about, "note": note} if note else about)


def export(checkpoint, out, *, format: str = "onnx", int8: bool = False, data_root=None,
           calibration_clips: int = 200, max_seconds: float = DEFAULT_MAX_SECONDS) -> list[Path]:
    """What ``spokenword export`` does; returns the files written (model, its JSON metadata, its model card
    ``MODEL.onnx.md``). ``data_root``: where the checkpoint's training corpus is for ``int8`` calibration
    (default: its training run's data root, else ``$SPOKENWORD_DATA``), see :func:`calibration_data`."""
    out = Path(out)
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}")
    checkpoint = runtime.model_file(checkpoint)
    if not int8:
        path = export_onnx(checkpoint, out, max_seconds=max_seconds)
        return [path, sidecar_path(path), _card(path, checkpoint)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as work:
        float_path = export_onnx(checkpoint, Path(work) / "float32.onnx", max_seconds=max_seconds)
        meta = read_metadata(float_path)
        waves, about = calibration_data(checkpoint, meta["sample_rate"], meta["features"], data_root=data_root,
                                        clips=calibration_clips)
        path = quantize_onnx(float_path, out, waves, about)
    return [path, sidecar_path(path), _card(path, checkpoint)]


def _card(path: Path, checkpoint) -> Path:
    """The model card beside an export (:mod:`spokenword.inference.card`), from its metadata and its run's report."""
    from spokenword.inference.card import write_export_card

    return write_export_card(path, json.loads(sidecar_path(path).read_text()), checkpoint)


def file_sizes(paths: Iterable[Path]) -> dict[str, int]:
    """Bytes per file."""
    return {str(p): Path(p).stat().st_size for p in paths}
