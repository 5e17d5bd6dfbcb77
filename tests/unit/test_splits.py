"""make_split on a synthetic FSDD-shaped list: sizes, disjointness, determinism, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from spokenword.data.splits import make_split
from spokenword.data.corpora import DatasetError, Recording

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
RECORDINGS = [
    Recording(Path(f"{d}_{s}_{t}.wav"), str(d), s, t) for d in range(10) for s in SPEAKERS for t in range(50)
]


def _paths(records):
    return {r.path for r in records}


def test_official_split_sizes_and_takes():
    split = make_split(RECORDINGS, "official")
    assert (len(split.train), len(split.val), len(split.test)) == (2400, 300, 300)
    assert {r.take for r in split.test} == set(range(5))
    assert {r.take for r in split.val} == set(range(5, 10))
    assert not (_paths(split.train) & _paths(split.val) or _paths(split.train) & _paths(split.test)
                or _paths(split.val) & _paths(split.test))
    assert "test never used" in split.protocol


def test_reference_split_uses_test_as_validation_and_says_so():
    split = make_split(RECORDINGS, "reference")
    assert (len(split.train), len(split.test)) == (2700, 300)
    assert split.val == split.test
    assert not _paths(split.train) & _paths(split.test)
    assert "reference protocol" in split.protocol


def test_speakers_split_holds_out_whole_speakers():
    split = make_split(RECORDINGS, "speakers", test_speakers=["theo"])
    assert {r.speaker for r in split.test} == {"theo"} and len(split.test) == 500
    assert "theo" not in {r.speaker for r in split.train + split.val}
    assert len(split.val) == 5 * 10 * 5 and len(split.train) == 5 * 10 * 45
    assert not _paths(split.train) & _paths(split.val)

    by_speaker = make_split(RECORDINGS, "speakers", test_speakers=["theo"], val_speakers=["lucas"])
    assert {r.speaker for r in by_speaker.val} == {"lucas"}
    assert {r.speaker for r in by_speaker.train} == set(SPEAKERS) - {"theo", "lucas"}


def test_splits_are_deterministic():
    for name in ("official", "reference"):
        assert make_split(RECORDINGS, name) == make_split(RECORDINGS, name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"test_speakers": ["nobody"]}, "unknown: \\['nobody'\\]"),
     ({"test_speakers": ["theo"], "val_speakers": ["ghost"]}, "ghost"),
     ({}, "needs test_speakers")],
)
def test_speakers_split_errors_name_the_problem(kwargs, message):
    with pytest.raises(DatasetError, match=message):
        make_split(RECORDINGS, "speakers", **kwargs)


def test_unknown_split_name():
    with pytest.raises(ValueError, match="unknown split 'shuffled'"):
        make_split(RECORDINGS, "shuffled")
