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
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from spokenword.inference.base import MODEL_FOLDER_MANIFEST as MANIFEST, ModelError

#: the bundled model's name and folder (inside the installed package)
DEFAULT_NAME = "fsdd-digits"
ROOT = Path(__file__).resolve().parent


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


def read_folder(path: str | Path) -> tuple[list[Path], dict]:
    """A model folder (the bundled model, or ``spokenword adapt``'s output): its member files, in order, and
    its manifest. :class:`ModelError` (one line) for a manifest that is unreadable or names missing files."""
    path = Path(path)
    try:
        data = json.loads((path / MANIFEST).read_text())
        names = data["members"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ValueError("members")
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelError(f"{path / MANIFEST}: not a spokenword model folder manifest (no list of members)") from None
    files = [path / n for n in names]
    missing = [n for n, f in zip(names, files) if Path(n).name != n or not f.is_file()]
    if missing:
        raise ModelError(f"{path}: its manifest names {', '.join(missing)}, which is not in the folder; copy the whole folder")
    return files, data


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


def digests(folder: str | Path) -> dict[str, str]:
    """``{file name: sha256}`` of the files in ``folder`` (a model folder manifest's ``files``)."""
    return {p.name: sha256(p) for p in sorted(Path(folder).iterdir()) if p.is_file()}


@contextmanager
def staged_folder(out: str | Path) -> Iterator[Path]:
    """A new folder beside ``out`` for the block to fill, renamed into place (replacing ``out`` whole) when the
    block ends, removed when it raises: a model folder is never half-written, and a failed build leaves the
    old one as it was."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        yield staging
        staging.chmod(0o755)
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-old-"))
            os.replace(out, old / out.name)
        os.replace(staging, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
