"""Any labelled recordings: a manifest CSV, a folder with ``labels.csv``, one sub-folder per label,
or FSDD-style file names (``{label}_{speaker}_{take}.wav``)."""

from __future__ import annotations

import csv
from pathlib import Path

from spokenword.data.corpora.base import Corpus, DatasetError, Recording
from spokenword.data.corpora.fsdd import parse_name

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3"}
MANIFEST_NAME = "labels.csv"
#: values of a manifest's optional ``subset`` column (the corpus's own partition; "" = none)
SUBSETS = ("", "train", "val", "test")


def read_manifest(csv_path: Path) -> list[Recording]:
    """Rows ``path,label[,speaker][,subset]`` (a header row naming them is required); paths are
    relative to the CSV's folder; ``subset`` (train/val/test) is the manifest's own partition, used by
    ``split: corpus``; other columns are ignored."""
    csv_path = Path(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            if "path" not in fields or "label" not in fields:
                raise DatasetError(f"{csv_path}: a manifest needs a header with 'path' and 'label' columns, found {fields}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"{csv_path}: cannot read manifest ({err})") from None
    base = csv_path.parent
    out = []
    for number, row in enumerate(rows, start=2):
        if not row.get("path") or row.get("label") in (None, ""):
            raise DatasetError(f"{csv_path}, line {number}: empty path or label")
        subset = (row.get("subset") or "").strip()
        if subset not in SUBSETS:
            raise DatasetError(f"{csv_path}, line {number}: subset {subset!r} is not one of train, val, test")
        out.append(
            Recording(path=base / row["path"], label=str(row["label"]).strip(), speaker=(row.get("speaker") or "").strip(), subset=subset)
        )
    return out


def scan(location: Path) -> list[Recording]:
    """Find labelled recordings at ``location`` (see module docstring), in a stable order."""
    location = Path(location)
    if not location.exists():
        raise DatasetError(f"{location}: no such file or folder")
    if location.is_file():
        if location.suffix.lower() != ".csv":
            raise DatasetError(f"{location}: expected a folder or a manifest .csv with path,label columns")
        return read_manifest(location)
    if (location / MANIFEST_NAME).is_file():
        return read_manifest(location / MANIFEST_NAME)
    subfolders = sorted(p for p in location.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subfolders and any(_audio_files(p) for p in subfolders):
        return [
            Recording(path=f, label=folder.name, speaker=_speaker_from_name(f.name))
            for folder in subfolders
            for f in _audio_files(folder)
        ]
    files = _audio_files(location)
    recordings = []
    for f in files:
        parsed = parse_name(f.name)
        if parsed is None:
            raise DatasetError(
                f"{f}: cannot tell its label; name files '{{label}}_{{speaker}}_{{take}}.wav', "
                f"use one sub-folder per label, or add a {MANIFEST_NAME} with path,label columns"
            )
        recordings.append(Recording(path=f, label=parsed[0], speaker=parsed[1], take=parsed[2]))
    if not recordings:
        raise DatasetError(f"{location}: no audio files found")
    return recordings


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("."))


def _speaker_from_name(name: str) -> str:
    """Speech Commands style ``{speaker}_nohash_{n}.wav`` gives the speaker; otherwise ``""``."""
    stem = Path(name).stem
    return stem.split("_nohash_")[0] if "_nohash_" in stem else ""


class LabelledFolder(Corpus):
    """Recordings found by :func:`scan` at ``path`` (absolute, or relative to the data root)."""

    def __init__(self, path: str):
        self.path = path

    def recordings(self, root: Path) -> list[Recording]:
        location = Path(self.path)
        if not location.is_absolute():
            location = Path(root) / location
        return scan(location)
