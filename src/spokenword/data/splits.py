"""The data module: a corpus, a deterministic split, cached features and normalisation statistics.

Splits (``split``):

* ``official``: test = takes 0-4, validation = takes 5-9, train = takes 10-49. Model selection
  never sees the test recordings.
* ``reference``: train = takes 5-49, validation = test = takes 0-4: the reference's own protocol
  (test recordings used for model selection); every report labels it as such.
* ``speakers``: ``test_speakers`` held out as test; validation = takes 5-9 of the other speakers
  (or ``val_speakers`` when given), train = the rest.
* ``corpus``: the corpus's own partition (each :class:`~spokenword.data.corpora.Recording`'s ``subset``):
  Speech Commands' ``validation_list.txt`` / ``testing_list.txt``, AudioMNIST's speaker-disjoint
  assignment, a manifest's ``subset`` column. ``official`` and ``reference`` need FSDD-style take
  numbers; ``corpus`` is the split for every other corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from spokenword.data.corpora import DatasetError, Recording
from spokenword.data.corpora.base import CACHE_ENV, DATA_ENV, resolve_cache_dir, resolve_root  # noqa: F401 - their public home for callers

SplitName = Literal["official", "reference", "speakers", "corpus"]


@dataclass(frozen=True)
class Split:
    """Recordings of one split. ``protocol`` says how test relates to model selection."""

    name: str
    train: list[Recording]
    val: list[Recording]
    test: list[Recording]
    protocol: str


def make_split(
    recordings: list[Recording],
    split: SplitName,
    test_speakers: list[str] | None = None,
    val_speakers: list[str] | None = None,
) -> Split:
    """Divide ``recordings`` into train / validation / test (see module docstring). Deterministic.

    Recordings with no take number that carry their own ``subset`` (e.g. the non-digit words and
    noise clips of :mod:`spokenword.data.corpora.negatives`) keep it under every split, so that a
    split of digits by take or speaker tests on other words and noise never trained on too."""
    if split != "corpus":
        fixed = [r for r in recordings if r.take < 0 and r.subset]
        if fixed and len(fixed) < len(recordings):
            ruled = make_split([r for r in recordings if not (r.take < 0 and r.subset)], split, test_speakers, val_speakers)
            part = {name: [r for r in fixed if r.subset == name] for name in ("train", "val", "test")}
            val = ruled.val + part["val"] if ruled.val is not ruled.test else ruled.val + part["test"]
            return Split(ruled.name, train=ruled.train + part["train"], val=val, test=ruled.test + part["test"],
                         protocol=ruled.protocol + "; other words and noise: their own speaker- and time-disjoint parts")
    if split in ("official", "reference") and recordings and all(r.take < 0 for r in recordings):
        raise DatasetError(f"split {split!r} needs FSDD-style take numbers; use split 'corpus' or 'speakers' for this corpus")
    if split == "corpus":
        parts = {name: [r for r in recordings if r.subset == name] for name in ("train", "val", "test")}
        if not parts["train"] or not parts["test"]:
            raise DatasetError("split 'corpus' needs a corpus that marks train and test recordings (Speech Commands lists, AudioMNIST, a manifest's subset column)")
        return Split(
            "corpus",
            train=parts["train"],
            val=parts["val"],
            test=parts["test"],
            protocol="the corpus's own partition (test never used for selection)",
        )
    if split == "official":
        return Split(
            "official",
            train=[r for r in recordings if r.take >= 10],
            val=[r for r in recordings if 5 <= r.take <= 9],
            test=[r for r in recordings if 0 <= r.take <= 4],
            protocol="test = takes 0-4, validation = takes 5-9 (test never used for selection)",
        )
    if split == "reference":
        test = [r for r in recordings if 0 <= r.take <= 4]
        return Split(
            "reference",
            train=[r for r in recordings if r.take >= 5],
            val=test,
            test=test,
            protocol="reference protocol: validation = test = takes 0-4 (test used for model selection)",
        )
    if split == "speakers":
        speakers = sorted({r.speaker for r in recordings})
        held = list(test_speakers or [])
        unknown = [s for s in held + list(val_speakers or []) if s not in speakers]
        if not held or unknown:
            raise DatasetError(
                f"split 'speakers' needs test_speakers from {speakers}"
                + (f"; unknown: {unknown}" if unknown else "")
            )
        test = [r for r in recordings if r.speaker in held]
        rest = [r for r in recordings if r.speaker not in held]
        if val_speakers:
            val = [r for r in rest if r.speaker in val_speakers]
            train = [r for r in rest if r.speaker not in val_speakers]
        else:
            val = [r for r in rest if 5 <= r.take <= 9]
            train = [r for r in rest if not 5 <= r.take <= 9]
        return Split(
            "speakers",
            train=train,
            val=val,
            test=test,
            protocol=f"held-out speakers {held} as test; validation from other speakers",
        )
    raise ValueError(f"unknown split {split!r}; expected 'official', 'reference', 'speakers' or 'corpus'")
