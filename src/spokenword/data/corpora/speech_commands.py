"""Speech Commands layout: one folder per word, ``{speaker}_nohash_{n}.wav`` files, and the corpus's
own validation and test lists.

::

    <root>/<path>/
        yes/0a7c2a8d_nohash_0.wav          # speaker 0a7c2a8d, take 0
        no/...
        _background_noise_/...             # folders starting with "_" are not words: skipped
        validation_list.txt                # "yes/0a7c2a8d_nohash_0.wav" per line -> subset "val"
        testing_list.txt                   # -> subset "test"; every other file -> "train"

The lists make the corpus's speaker-disjoint partition; use it with the data module's
``split: corpus``. Label names are the folder names found (35 words in v0.02), never a fixed list.
"""

from __future__ import annotations

from pathlib import Path

from spokenword.data.corpora.base import Corpus, DatasetError, Recording
from spokenword.data.corpora.folder import AUDIO_SUFFIXES

VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
_SEPARATOR = "_nohash_"


def parse_clip_name(name: str) -> tuple[str, int]:
    """``"0a7c2a8d_nohash_3.wav"`` to ``("0a7c2a8d", 3)``; ``("", -1)`` for other names."""
    stem = Path(name).stem
    if _SEPARATOR not in stem:
        return "", -1
    speaker, _, take = stem.partition(_SEPARATOR)
    return speaker, int(take) if take.isdigit() else -1


def read_list(path: Path) -> set[str]:
    """Relative clip paths (``word/file.wav``) listed one per line; empty if the file is absent."""
    if not path.is_file():
        return set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: cannot read list ({err})") from None
    return {line.strip().replace("\\", "/") for line in lines if line.strip()}


class SpeechCommands(Corpus):
    """A Speech Commands style folder (see module docstring).

    Args:
        path: the folder, absolute or relative to the data root.
        words: keep only these words (default: every word folder found).
    """

    def __init__(self, path: str = "speech_commands", words: list[str] | None = None):
        self.path = path
        self.words = words

    def location(self, root: Path) -> Path:
        location = Path(self.path).expanduser()
        return location if location.is_absolute() else Path(root) / location

    def recordings(self, root: Path) -> list[Recording]:
        location = self.location(root)
        if not location.is_dir():
            raise DatasetError(f"{location}: no such folder (expected one sub-folder per word, Speech Commands layout)")
        folders = sorted(p for p in location.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
        if self.words is not None:
            missing = sorted(set(self.words) - {p.name for p in folders})
            if missing:
                raise DatasetError(f"{location}: no folder for words {missing}")
            folders = [p for p in folders if p.name in set(self.words)]
        val, test = read_list(location / VALIDATION_LIST), read_list(location / TESTING_LIST)
        both = val & test
        if both:
            raise DatasetError(f"{location}: {len(both)} clips are in both lists, e.g. {sorted(both)[0]}")
        out = []
        for folder in folders:
            for f in sorted(folder.iterdir()):
                if f.suffix.lower() not in AUDIO_SUFFIXES or f.name.startswith("."):
                    continue
                relative = f"{folder.name}/{f.name}"
                speaker, take = parse_clip_name(f.name)
                subset = "val" if relative in val else "test" if relative in test else "train"
                out.append(Recording(path=f, label=folder.name, speaker=speaker, take=take, subset=subset))
        if not out:
            raise DatasetError(f"{location}: no audio files in word folders")
        return out
