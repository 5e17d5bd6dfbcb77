"""The one model loader: a file, a training run's folder or several of them to a classifier."""

from __future__ import annotations

import json
import os
from pathlib import Path

from spokenword.inference.base import ModelError


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


def load_model(path: str | os.PathLike, **kwargs):
    """Open a trained model for inference: an exported ``.onnx`` model (:class:`OnnxClassifier`,
    torch is never imported) or a ``.ckpt`` checkpoint (:class:`spokenword.predict.Classifier`);
    a training run's folder means its best checkpoint (:func:`model_file`)."""
    path = model_file(path)
    if Path(path).suffix.lower() == ".onnx":
        from spokenword.inference.onnx import OnnxClassifier

        return OnnxClassifier(path, **kwargs)
    from spokenword.inference.checkpoint import Classifier

    return Classifier.from_checkpoint(path, **kwargs)
