"""AudioMNIST layout: 60 speakers x 10 digits x 50 takes, 48 kHz.

::

    <root>/<path>/data/01/0_01_0.wav       # {digit}_{speaker}_{index}.wav in the speaker's folder
    <root>/<path>/data/01/0_01_1.wav
    ...
    <root>/<path>/data/60/9_60_49.wav

The corpus assigns a speaker-disjoint partition (``split: corpus`` in the data module): speakers
listed in ``test_speakers`` / ``val_speakers``, or by default every speaker whose number modulo 5 is
0 is test and modulo 5 is 1 is validation (60 speakers: 12 test, 12 validation, 36 train).
Recordings are resampled to the data module's ``sample_rate`` when features are extracted.
"""

from __future__ import annotations

import re
from pathlib import Path

from spokenword.data.corpora.base import Corpus, DatasetError, Recording

SAMPLE_RATE = 48000
_NAME = re.compile(r"^(?P<label>\d+)_(?P<speaker>\d+)_(?P<take>\d+)\.wav$", re.IGNORECASE)


class AudioMNIST(Corpus):
    """An AudioMNIST folder (see module docstring).

    Args:
        path: folder holding ``data/``, absolute or relative to the data root.
        test_speakers: speaker folder names held out as test (default: number % 5 == 0).
        val_speakers: speaker folder names used for validation (default: number % 5 == 1).
    """

    def __init__(
        self,
        path: str = "audiomnist",
        test_speakers: list[str] | None = None,
        val_speakers: list[str] | None = None,
    ):
        self.path = path
        self.test_speakers = test_speakers
        self.val_speakers = val_speakers

    def location(self, root: Path) -> Path:
        location = Path(self.path).expanduser()
        location = location if location.is_absolute() else Path(root) / location
        return location / "data" if (location / "data").is_dir() else location

    def _subset(self, speaker: str) -> str:
        if self.test_speakers is not None or self.val_speakers is not None:
            return "test" if speaker in (self.test_speakers or []) else "val" if speaker in (self.val_speakers or []) else "train"
        number = int(speaker)
        return "test" if number % 5 == 0 else "val" if number % 5 == 1 else "train"

    def recordings(self, root: Path) -> list[Recording]:
        location = self.location(root)
        if not location.is_dir():
            raise DatasetError(f"{location}: no such folder (expected AudioMNIST's data/NN/{{digit}}_{{NN}}_{{index}}.wav)")
        speakers = sorted(p for p in location.iterdir() if p.is_dir() and p.name.isdigit())
        names = {p.name for p in speakers}
        unknown = sorted((set(self.test_speakers or []) | set(self.val_speakers or [])) - names)
        if unknown:
            raise DatasetError(f"{location}: unknown speakers {unknown}; found {sorted(names)}")
        overlap = set(self.test_speakers or []) & set(self.val_speakers or [])
        if overlap:
            raise DatasetError(f"speakers {sorted(overlap)} are in both test_speakers and val_speakers")
        out = []
        for folder in speakers:
            for f in sorted(folder.glob("*.wav")):
                match = _NAME.match(f.name)
                if not match or match["speaker"] != folder.name:
                    raise DatasetError(f"{f}: expected a name '{{digit}}_{folder.name}_{{index}}.wav'")
                out.append(
                    Recording(path=f, label=match["label"], speaker=folder.name, take=int(match["take"]), subset=self._subset(folder.name))
                )
        if not out:
            raise DatasetError(f"{location}: no AudioMNIST recordings found")
        return out
