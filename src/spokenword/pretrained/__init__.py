"""The bundled pretrained model (torch-free): ``fsdd-digits``, the default ensemble of ``make train``
exported to ONNX, shipped as package data.

``manifest.json`` lists the ensemble's member files (``members``), the sha256 of every shipped file
(``files``) and the official-split accuracy the bundle was measured at when it was made
(``official_test_accuracy``). ``make model`` regenerates the folder from the training runs
(:mod:`spokenword.inference.bundle`, which needs the ``train`` extra).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from spokenword.inference.base import ModelError

#: the bundled model's name and folder (inside the installed package)
DEFAULT_NAME = "fsdd-digits"
ROOT = Path(__file__).resolve().parent
MANIFEST = "manifest.json"


def folder(name: str = DEFAULT_NAME) -> Path:
    """The folder of the bundled model ``name``."""
    return ROOT / name


def manifest(name: str = DEFAULT_NAME) -> dict:
    """The bundled model's ``manifest.json``; :class:`ModelError` (one line) when it is missing."""
    path = folder(name) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise ModelError(f"no bundled model {name!r} in this installation ({path} missing or unreadable); "
                         "name a model file, or run `make model`") from None


def members(name: str = DEFAULT_NAME) -> list[Path]:
    """The ``.onnx`` files of the bundled model's ensemble, in order."""
    return [folder(name) / member for member in manifest(name)["members"]]


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(name: str = DEFAULT_NAME) -> list[str]:
    """The shipped files whose sha256 differs from the manifest's (or that are missing); ``[]``: all match."""
    bad = []
    for file, expected in manifest(name)["files"].items():
        path = folder(name) / file
        if not path.is_file() or sha256(path) != expected:
            bad.append(file)
    return bad
