"""The one model loader: a file, a training run's folder or several of them to a classifier.

Only dispatches: the classifiers' modules are imported when a model needs them, so loading an
``.onnx`` export never imports torch.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Iterable, Sequence

from spokenword.inference.base import MODEL_FOLDER_MANIFEST, BaseClassifier, ModelError, model_file

__all__ = ["EXPORT_MODULES", "RUNTIMES", "load_model", "model_file"]

logger = logging.getLogger(__name__)

#: ``runtime`` choices for a checkpoint: ``auto`` = exported to ONNX at load time and run by ONNX
#: Runtime when the export extras are installed, else PyTorch; ``onnx`` = the same, extras required;
#: ``torch`` = PyTorch. ``None`` (the default): every file on its own runtime.
RUNTIMES = ("auto", "onnx", "torch")
#: what the load-time export needs (the ``train`` extra).
EXPORT_MODULES = ("onnx", "onnxscript", "onnxruntime")


def _missing(modules: Iterable[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _torch_threads(threads: int | None) -> None:
    """Set torch's intra-op threads (when torch is installed; an ``.onnx`` model needs none)."""
    if not threads:
        return
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def load_model(model: str | os.PathLike | None = None, *also: str | os.PathLike, runtime: str | None = None,
               max_seconds: float | None = None, threads: int | None = None,
               weights: Sequence[float] | None = None, reject_below: float | None = None) -> BaseClassifier:
    """Open trained models for inference: ``model`` alone, or with ``also`` the
    :class:`~spokenword.inference.ensemble.Ensemble` of all of them (``weights``: one per model).

    ``model=None`` (``load_model()``): the bundled pretrained model (:mod:`spokenword.pretrained`, the
    ensemble of ``make train`` as int8/float ONNX exports; torch-free), with ``also`` added to its ensemble.
    A model folder (one with ``manifest.json``: a copy of the bundle, ``spokenword adapt``'s output) opens the
    same way: its members, and its ``reject_below``.

    Each is a ``.onnx`` export, a ``.ckpt`` checkpoint or a training run's folder (its best
    checkpoint, :func:`model_file`), run by ``runtime``:

    * ``None`` (the default; ``classify``, ``evaluate``, ``transcribe``): an ``.onnx`` export on ONNX
      Runtime (:class:`~spokenword.inference.onnx.OnnxClassifier`, torch is never imported), a
      checkpoint on PyTorch (:class:`~spokenword.inference.checkpoint.Classifier`);
    * ``auto`` (``serve``): an ``.onnx`` export on ONNX Runtime; a checkpoint exported to ONNX at load
      time (into a temporary folder, deleted once the session has loaded it) and run by ONNX Runtime:
      the same graph and host steps as ``spokenword export``. Missing export extras or a failed export
      fall back to PyTorch with a logged warning;
    * ``onnx``: as ``auto``, but missing extras or a failed export are an error;
    * ``torch``: a checkpoint on PyTorch; an ``.onnx`` export is an error.

    Args:
        max_seconds: files longer than this are refused at decode time (s), never decoded past it;
            ``None``: :data:`spokenword.audio.DEFAULT_MAX_SECONDS` (600 s). There is always a limit.
        threads: intra-op threads per inference (ONNX Runtime session; torch's global setting);
            ``None``: the runtimes' defaults.
        reject_below: a word is the answer only when it scores at least this (0-1), else "not a word"
            (:meth:`~spokenword.inference.base.BaseClassifier.rank`); ``None``: the bundled model's value
            (its manifest's ``reject_below``) for the bundled model or a model folder, else the model's own best label.

    Raises :class:`~spokenword.inference.base.ModelError` with a one-line message for an unusable
    model or choice.
    """
    if runtime is not None and runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    if reject_below is not None and not 0.0 <= reject_below <= 1.0:
        raise ModelError(f"reject_below must be a score from 0 to 1, not {reject_below}")
    if model is None or _is_model_folder(model):
        from spokenword import pretrained

        if model is None:
            files, facts = pretrained.members(), pretrained.manifest()
        else:
            files, facts = pretrained.read_folder(model)
        model, *rest = [*files, *also]
        also = tuple(rest)
        if reject_below is None:
            reject_below = facts.get("reject_below")
    if also:
        from spokenword.inference.ensemble import Ensemble

        classifier = Ensemble([_load_one(m, runtime, max_seconds, threads) for m in (model, *also)], weights)
    else:
        classifier = _load_one(model, runtime, max_seconds, threads)
    classifier.reject_below = None if reject_below is None else float(reject_below)
    return classifier


def _is_model_folder(model) -> bool:
    path = Path(model)
    return path.is_dir() and (path / MODEL_FOLDER_MANIFEST).is_file()


def _load_one(model, runtime: str | None, max_seconds: float | None, threads: int | None) -> BaseClassifier:
    path = model_file(model)
    if path.suffix.lower() == ".onnx":
        if runtime == "torch":
            raise ModelError(f"{path}: an ONNX export runs on ONNX Runtime; --runtime torch needs the .ckpt checkpoint")
        from spokenword.inference.onnx import OnnxClassifier

        return OnnxClassifier(path, max_seconds=max_seconds, threads=threads)
    if runtime in ("auto", "onnx"):
        classifier = _exported(path, runtime, max_seconds, threads)
        if classifier is not None:
            return classifier
    _torch_threads(threads)
    from spokenword.inference.checkpoint import Classifier

    return Classifier.from_checkpoint(path, max_seconds=max_seconds)


def _exported(path: Path, runtime: str, max_seconds: float | None, threads: int | None) -> BaseClassifier | None:
    """The checkpoint at ``path`` exported to ONNX and opened by ONNX Runtime; ``None`` (with a logged
    warning) where ``auto`` falls back to PyTorch."""
    missing = _missing(EXPORT_MODULES)
    if missing:
        if runtime == "onnx":
            raise ModelError(f"--runtime onnx needs {', '.join(missing)}: pip install 'spokenword[train]' "
                             "(or serve with --runtime torch)")
        logger.warning("ONNX export extras missing (%s): running %s with PyTorch, which is slower; "
                       "pip install 'spokenword[train]' to run it with ONNX Runtime", ", ".join(missing), path.name)
        return None
    _torch_threads(threads)  # the export runs torch too
    from spokenword.inference.export import DEFAULT_MAX_SECONDS, export_onnx
    from spokenword.inference.onnx import OnnxClassifier

    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="spokenword-load-") as work:
            exported = export_onnx(path, Path(work) / f"{path.stem}.onnx", max_seconds=max_seconds or DEFAULT_MAX_SECONDS)
            classifier = OnnxClassifier(exported, max_seconds=max_seconds, threads=threads, name=path)
    except ModelError:  # not a usable checkpoint at all: the same answer as with torch
        raise
    except Exception as err:  # noqa: BLE001 - the export of an unusual network may fail
        reason = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        if runtime == "onnx":
            raise ModelError(f"{path}: ONNX export failed ({reason}); serve it with --runtime torch") from None
        logger.warning("ONNX export of %s failed (%s): running it with PyTorch", path.name, reason)
        return None
    logger.info("exported %s to ONNX in %.1f s; running it with ONNX Runtime", path.name, time.perf_counter() - started)
    return classifier
