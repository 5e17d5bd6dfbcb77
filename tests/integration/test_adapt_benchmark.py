"""Smoke run of ``python -m benchmarks.adapt``: each arm on a tiny configuration (one held-out speaker, or two new
words; k = 1, one draw, a few training steps, a few clips) written as a result file whose figures come from real
predictions."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import ANY

import pytest

from benchmarks import adapt as bench
from benchmarks import common

pytestmark = pytest.mark.integration

SPEAKER = "theo"
CLIPS = 30


def _runs_or_skip(speaker: str = SPEAKER) -> Path:
    """The LOSO embedding run holding out ``speaker`` (and check its CNN twin), or skip."""
    try:
        bench.loso_run(common.RESULTS, bench.CNN, speaker)
        return bench.loso_run(common.RESULTS, bench.EMBEDDING, speaker)
    except bench.RunMissing as err:
        pytest.skip(f"no leave-one-speaker-out runs here: {err}")


@pytest.fixture(scope="module")
def states(tmp_path_factory) -> Path:
    """The adaptable states' cache, shared by both arms: the state of a run is written once."""
    return tmp_path_factory.mktemp("states")


def _tiny(fsdd_root: Path, tmp_path: Path, states: Path) -> list[str]:
    return ["--k", "1", "--draws", "1", "--steps", "10", "--views", "2", "--clips", str(CLIPS),
            "--data.root", str(fsdd_root), "--out", str(tmp_path), "--cache", str(states)]


def test_personal_arm_scores_the_held_out_voice_before_and_after(fsdd_root, tmp_path, states, monkeypatch):
    _runs_or_skip()
    if not (fsdd_root / "speech_commands_words").is_dir():  # the LOSO runs' rehearsal set includes other words
        pytest.skip("no non-digit data under the data root")
    monkeypatch.setenv("SPOKENWORD_CACHE", str(tmp_path / "cache"))
    argv = ["personal", "--speakers", SPEAKER, *_tiny(fsdd_root, tmp_path, states)]
    assert bench.main(argv) == 0
    record = json.loads((tmp_path / "adapt" / "personal.json").read_text())
    assert record["arm"] == "personal" and "takes 10-49" in record["protocol"]
    assert record["command"] == common.command("adapt", argv)
    assert record["recipe"]["adapt"]["steps"] == 10 and record["recipe"]["scored_takes"] == "10-49"
    figures = record["figures"]
    row = figures["speakers"][SPEAKER]
    assert row["scored"] == CLIPS and row["others"] == CLIPS
    for value in [*row["before"].values(), *row["others_before"].values()]:
        assert 0.0 <= value <= 1.0 and (value * CLIPS) == pytest.approx(round(value * CLIPS))  # whole clips right
    after = row["after"]["1"]
    assert after["adapted"]["draws"] and 0.0 <= after["adapted"]["mean"] <= 1.0
    assert after["others_change"] == pytest.approx(after["others"]["mean"] - row["others_before"]["embedding"])
    assert len(after["seconds"]) == 1 and after["seconds"][0] > 0
    assert set(row["before_by_takes"]) == set(after["by_takes"]) == {"10-19", "20-29", "30-39", "40-49"}  # scored takes only
    if row["before"]["embedding"] == 1.0:
        assert set(row["before_by_takes"].values()) == {1.0}
    assert [len(t) for t in row["takes"][0].values()] == [1] * 10  # one take of each digit, from takes 0-9
    assert all(0 <= t[0] <= 9 for t in row["takes"][0].values())
    assert figures["before"]["embedding"]["worst"] == [SPEAKER, row["before"]["embedding"]]
    assert figures["after"]["1"]["adapted"]["mean"] == after["adapted"]["mean"]
    assert "goal" not in figures  # the goal is stated at k = 3
    # the state is cached: a second call adapts from it without embedding the rehearsal set again
    (state,) = states.glob("*.adapt.npz")
    stamp = state.stat().st_mtime
    assert bench.main(argv) == 0
    assert state.stat().st_mtime == stamp
    again = json.loads((tmp_path / "adapt" / "personal.json").read_text())["figures"]["speakers"][SPEAKER]
    assert again == {**row, "after": {"1": {**after, "seconds": ANY}}}  # the same figures: the draws and seeds are fixed


def test_vocab_arm_teaches_new_words_to_speakers_never_heard(fsdd_root, tmp_path, states, monkeypatch):
    source = _runs_or_skip()
    if not (fsdd_root / "speech_commands_words").is_dir():
        pytest.skip("no non-digit data under the data root")
    monkeypatch.setenv("SPOKENWORD_CACHE", str(tmp_path / "cache"))
    argv = ["vocab", "--source", str(source), "--words", "yes", "no", *_tiny(fsdd_root, tmp_path, states)]
    assert bench.main(argv) == 0
    record = json.loads((tmp_path / "adapt" / "vocab.json").read_text())
    assert record["arm"] == "vocab" and "speaker" in record["protocol"]
    assert record["recipe"]["source"] == common.relative(source) and record["recipe"]["source_note"] is None
    figures = record["figures"]
    assert figures["words"] == ["yes", "no"] and figures["digits"] == CLIPS
    scored = figures["scored"]
    assert scored == sum(figures["scored_per_word"].values()) and 0 < scored <= CLIPS
    assert sum(figures["before"]["answered"].values()) == scored and figures["before"]["answered"]["right"] == 0
    (unit,) = figures["after"]["1"]["units"]
    assert sum(unit["answered"].values()) == scored
    assert unit["accuracy"] == pytest.approx(unit["answered"]["right"] / scored)
    assert 0.0 <= unit["digits_accuracy"] <= 1.0 and 0.0 <= unit["other_words_as_new_word"] <= 1.0
    assert 1 <= len(unit["speakers"]) <= 2 and unit["seconds"] > 0  # one clip per word, each of a training speaker
    from spokenword.data.corpora.negatives import speaker_subset

    assert all(speaker_subset(s) == "train" for s in unit["speakers"])
