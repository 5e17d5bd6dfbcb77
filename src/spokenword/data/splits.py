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
  numbers; ``corpus`` (when the corpus marks its parts) or ``random`` is the split for every other corpus.
* ``random``: any labelled recordings, e.g. a folder with one sub-folder per word. Stratified: the
  test and validation parts get ``test_fraction`` and ``val_fraction`` of each label's clips
  (rounded, at least one each; near that with whole speakers), drawn with ``seed`` (the same seed, the same split). When speakers
  are known (a recording's ``speaker``) whole speakers are held out, so held-out voices are new;
  when that cannot give every label a clip in every part (too few speakers of a label), clips are
  drawn one by one instead and the protocol says so. A label with too few clips for one in each part
  is a :class:`~spokenword.data.corpora.DatasetError` naming it. A fraction of 0 leaves that part to
  a stand-in the protocol names (Lightning needs a validation and a test set): without validation,
  validation is on the training clips (the checkpoint is chosen by training accuracy); without test,
  test is the validation part; without both, every figure is on the training clips.
"""

from __future__ import annotations

import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from spokenword.data.corpora import DatasetError, Recording
from spokenword.data.corpora.base import CACHE_ENV, DATA_ENV, resolve_cache_dir, resolve_root  # noqa: F401 - their public home for callers

SplitName = Literal["official", "reference", "speakers", "corpus", "random"]


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
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> Split:
    """Divide ``recordings`` into train / validation / test (see module docstring). Deterministic
    (``split: random`` for a given ``seed``; ``val_fraction``, ``test_fraction`` and ``seed`` are its
    alone).

    Recordings with no take number that carry their own ``subset`` (e.g. the non-digit words and
    noise clips of :mod:`spokenword.data.corpora.negatives`) keep it under every split, so that a
    split of digits by take or speaker tests on other words and noise never trained on too."""
    if split == "random":
        check_fractions(val_fraction, test_fraction)
    if split != "corpus":
        fixed = [r for r in recordings if r.take < 0 and r.subset]
        if fixed and len(fixed) < len(recordings):
            rest = [r for r in recordings if not (r.take < 0 and r.subset)]
            ruled = (_random(rest, val_fraction, test_fraction, seed) if split == "random"
                     else make_split(rest, split, test_speakers, val_speakers))
            part = {name: [r for r in fixed if r.subset == name] for name in ("train", "val", "test")}
            val = ruled.val + part["val"] if ruled.val is not ruled.test else ruled.val + part["test"]
            merged = Split(ruled.name, train=ruled.train + part["train"], val=val, test=ruled.test + part["test"],
                           protocol=ruled.protocol + "; other words and noise: their own speaker- and time-disjoint parts")
            return _stand_ins(merged, val_fraction, test_fraction) if split == "random" else merged
    if split == "random":
        return _stand_ins(_random(recordings, val_fraction, test_fraction, seed), val_fraction, test_fraction)
    if split in ("official", "reference") and recordings and all(r.take < 0 for r in recordings):
        raise DatasetError(f"split {split!r} needs FSDD-style take numbers; use split 'random', 'corpus' or 'speakers' for this corpus")
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
    raise ValueError(f"unknown split {split!r}; expected 'official', 'reference', 'speakers', 'corpus' or 'random'")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise ``ValueError`` unless both fractions of ``split: random`` lie in [0, 1) and leave clips to train."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:  # NaN fails too
            raise ValueError(f"{name} must be at least 0 and below 1, got {value}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be below 1 so that clips are left to train, "
                         f"got {val_fraction} + {test_fraction}")


#: the held-out parts of ``split: random``, in the order they are filled
HELD_OUT = ("test", "val")


def _random(recordings: list[Recording], val_fraction: float, test_fraction: float, seed: int) -> Split:
    """``split: random`` before :func:`_stand_ins`: a part whose fraction is 0 is empty."""
    fractions = {"test": test_fraction, "val": val_fraction}
    held = [p for p in HELD_OUT if fractions[p] > 0]
    by_label: dict[str, list[Recording]] = defaultdict(list)
    for r in recordings:
        by_label[r.label].append(r)
    needed = 1 + len(held)
    for label in sorted(by_label):
        if len(by_label[label]) < needed:
            raise DatasetError(_too_few(label, by_label[label], needed, held))
    quota = _quotas({label: len(recs) for label, recs in by_label.items()}, fractions, held)
    shares = ", ".join(f"{fractions[p]:.0%} {'validation' if p == 'val' else p}" for p in held)
    clips = [("clip", str(r.path)) for r in recordings]  # by path, so the corpus's listing order does not matter
    speakers = [("speaker", r.speaker) if r.speaker else key for r, key in zip(recordings, clips)]
    how = "speakers unknown, so the same voices may be in train and test"
    if any(r.speaker for r in recordings):
        part_of = _assign(recordings, speakers, quota, held, seed)
        if part_of is not None:
            keys = speakers
            how = "whole speakers held out, so held-out voices are never trained on"
        else:
            keys, part_of = clips, _assign(recordings, clips, quota, held, seed)
            how = f"drawn clip by clip, not by speaker ({_why_not_speakers(recordings, needed)}), so the same voices are in train and test"
    else:
        keys, part_of = clips, _assign(recordings, clips, quota, held, seed)
    parts = {name: [r for r, key in zip(recordings, keys) if part_of[key] == name] for name in ("train", "val", "test")}
    drawn = f"{shares} of each label held out, {how}" if held else "every clip trains"
    return Split("random", train=parts["train"], val=parts["val"], test=parts["test"],
                 protocol=f"random split, seed {seed}: {drawn}")


def _quotas(counts: dict[str, int], fractions: dict[str, float], held: list[str]) -> dict[str, dict[str, int]]:
    """Clips each held-out part should get of each label: its fraction, rounded, at least 1, and
    together at most all but one (a label always trains)."""
    quota: dict[str, dict[str, int]] = {p: {} for p in held}
    for label, n in counts.items():
        want = {p: max(1, int(fractions[p] * n + 0.5)) for p in held}
        while sum(want.values()) > n - 1:  # n >= 1 + len(held), so this stops with every part at 1 or more
            want[max(want, key=lambda p: want[p])] -= 1
        for p in held:
            quota[p][label] = want[p]
    return quota


def _assign(recordings: list[Recording], keys: list, quota: dict[str, dict[str, int]], held: list[str],
            seed: int) -> dict | None:
    """Each group (a speaker, or one clip) to ``train`` or a held-out part; ``None`` when some label
    would be missing from a held-out part.

    Groups are visited in an order shuffled by ``seed``; a group goes to the first held-out part it
    fills more than it overfills (or that lacks one of its labels), unless it is the last group
    left to train one of its labels."""
    groups: dict = defaultdict(Counter)
    for r, key in zip(recordings, keys):
        groups[key][r.label] += 1
    order = sorted(groups, key=str)  # a stable order before shuffling, whatever the corpus's order
    random.Random(seed).shuffle(order)
    free = Counter(label for key in order for label in groups[key])  # groups of each label not held out
    have = {p: Counter() for p in held}
    part_of = {}
    for key in order:
        counts = groups[key]
        part_of[key] = "train"
        if any(free[label] < 2 for label in counts):
            continue
        for p in held:
            wanted = {label: min(c, max(quota[p][label] - have[p][label], 0)) for label, c in counts.items()}
            useful = sum(wanted.values())
            lacking = any(have[p][label] == 0 for label in counts)
            if useful and (useful >= sum(counts.values()) - useful or lacking):
                part_of[key] = p
                have[p].update(counts)
                free.subtract(counts.keys())
                break
    labels = {r.label for r in recordings}
    if any(have[p][label] == 0 for p in held for label in labels):
        return None
    return part_of


def _why_not_speakers(recordings: list[Recording], needed: int) -> str:
    groups: dict[str, set] = defaultdict(set)
    for i, r in enumerate(recordings):
        groups[r.label].add(r.speaker or i)
    few = sorted((label for label in groups if len(groups[label]) < needed), key=lambda label: len(groups[label]))
    if few:
        return f"label {few[0]!r} has {len(groups[few[0]])} speaker(s), {needed} needed"
    return "no assignment of whole speakers found that puts every label in every part"


def _too_few(label: str, recordings: list[Recording], needed: int, held: list[str]) -> str:
    try:
        where = f"{os.path.commonpath([str(r.path.parent) for r in recordings])}: "
    except ValueError:  # absolute and relative paths mixed
        where = ""
    parts = ", ".join(["train"] + ["validation" for p in held if p == "val"] + ["test" for p in held if p == "test"])
    if len(recordings) == 1:
        fix = "set data.val_fraction 0 and data.test_fraction 0 (validation and test then reuse the training clips)"
    elif "val" in held:
        fix = "set data.val_fraction 0 (validation then reuses the training clips)"
    else:
        fix = "set data.test_fraction 0 (test then reuses the validation clips)"
    return (f"{where}label {label!r} has {len(recordings)} clip(s); split 'random' needs at least {needed} per label "
            f"(one each for {parts}): record more takes of {label!r}, or {fix}")


def _stand_ins(split: Split, val_fraction: float, test_fraction: float) -> Split:
    """Fill the parts a fraction of 0 left out, so that fit validates and tests, and say with what."""
    if val_fraction > 0 and test_fraction > 0:
        return replace(split, protocol=split.protocol + "; test never used for selection")
    if val_fraction > 0:
        return replace(split, test=split.val,
                       protocol=split.protocol + "; no test part (test_fraction 0): test = validation, which chose the checkpoint")
    if test_fraction > 0:
        return replace(split, val=split.train,
                       protocol=split.protocol + "; no validation part (val_fraction 0): validation = the training clips, "
                                                 "so the checkpoint is chosen by training accuracy; test never used for selection")
    return replace(split, val=split.train, test=split.train,
                   protocol=split.protocol + "; no held-out clips (val_fraction and test_fraction 0): validation = test = "
                                             "the training clips, so the figures measure fit, not new recordings")
