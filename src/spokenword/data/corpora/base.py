"""The record every corpus produces, and the interface a corpus implements."""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "SPOKENWORD_DATA"
CACHE_ENV = "SPOKENWORD_CACHE"


def resolve_root(root: str | os.PathLike | None) -> Path:
    """The data root: ``root`` if given, else ``$SPOKENWORD_DATA``, else ``./data``."""
    if root:
        return Path(root).expanduser()
    return Path(os.environ.get(DATA_ENV) or "data").expanduser()


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    """Feature cache folder: ``cache_dir``, else ``$SPOKENWORD_CACHE``, else ``./.cache/spokenword``."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get(CACHE_ENV) or ".cache/spokenword").expanduser()


class DatasetError(RuntimeError):
    """A dataset folder that is missing, incomplete or unreadable; the message says what to do."""


@dataclass(frozen=True)
class Recording:
    """One labelled recording.

    Attributes:
        path: the audio file.
        label: class name (e.g. ``"7"``).
        speaker: speaker id, or ``""`` when unknown.
        take: index of the take for this speaker and label (FSDD: 0-49), or -1 when unknown.
        subset: the corpus's own partition, ``"train"``, ``"val"`` or ``"test"`` (e.g. Speech
            Commands' validation/testing lists), or ``""`` when the corpus defines none; used by the
            data module's ``split: corpus``.
    """

    path: Path
    label: str
    speaker: str = ""
    take: int = -1
    subset: str = ""


class Corpus(abc.ABC):
    """A labelled speech corpus on disk.

    Subclasses find their files under a data root (see :func:`spokenword.data.resolve_root`),
    never download in ``__init__`` and name every problem they find in :class:`DatasetError`.
    """

    @abc.abstractmethod
    def recordings(self, root: Path) -> list[Recording]:
        """All recordings of the corpus under ``root``, sorted by path, validated."""

    def labels(self, recordings: list[Recording]) -> list[str]:
        """Class names in model output order. Default: the labels present, sorted naturally."""
        return sorted({r.label for r in recordings}, key=_natural_key)

    def prepare(self, root: Path) -> None:
        """Make the corpus available under ``root`` (download it if this corpus can). Default: nothing."""


def _natural_key(text: str) -> tuple:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)
