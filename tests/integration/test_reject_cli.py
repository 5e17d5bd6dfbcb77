""""Not a digit" on the command line: ``classify`` and ``evaluate`` with a stand-in rejecting model
(``tests/rejecting_model.py``, put in place of the model files the CLI would load), ``--reject-below``,
the false rejects / accepts of ``evaluate``, ``--det``; and ``evaluate --split official`` of the bundled
model on the real FSDD with the held-out other words and noise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spokenword.cli import main
from spokenword.inference import load
from spokenword.labels import REJECTIONS, SILENCE, UNKNOWN
from tests.conftest import write_wav
from tests.rejecting_model import (
    NOISE,
    ONE,
    OTHER_WORD,
    RATE,
    THREE,
    WEAK_TWO,
    ToneWords,
    digits_only,
    tone,
)

pytestmark = pytest.mark.integration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def fake_models(monkeypatch) -> list[str]:
    """Every model file the CLI opens is a stand-in: ``*digits*`` a digits-only one, else one that can
    reject; the real ``load_model`` still checks and sets ``reject_below``."""
    opened: list[str] = []

    def load_one(model, runtime, max_seconds, threads):
        opened.append(str(model))
        return digits_only() if "digits" in str(model) else ToneWords()

    monkeypatch.setattr(load, "_load_one", load_one)
    return opened


@pytest.fixture
def tones(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "tones"
    names = {"one": ONE, "weak_two": WEAK_TWO, "three": THREE, "other_word": OTHER_WORD, "noise": NOISE}
    return {name: write_wav(folder / f"{name}.wav", tone(freq, 0.5), RATE) for name, freq in names.items()}


def answers(out: str) -> dict[str, tuple[str, float]]:
    """``classify``'s lines ``path<TAB>label<TAB>score`` by file stem."""
    rows = [line.split("\t") for line in out.strip().splitlines()]
    return {Path(path).stem: (label, float(score)) for path, label, score in rows}


def test_classify_prints_the_rejections(fake_models, tones, capsys):
    files = [str(p) for p in tones.values()]
    assert main(["classify", "-m", "fake.onnx", *files]) == 0
    got = answers(capsys.readouterr().out)
    assert fake_models == ["fake.onnx"]
    assert got == {"one": ("1", 0.95), "weak_two": ("2", 0.5), "three": ("3", 0.9),
                   "other_word": (UNKNOWN, 0.9), "noise": (SILENCE, 0.9)}


def test_classify_reject_below_turns_the_weak_digit_into_not_a_word(fake_models, tones, capsys):
    files = [str(p) for p in tones.values()]
    assert main(["classify", "fake.onnx", *files, "--reject-below", "0.9"]) == 0  # model as first argument
    got = answers(capsys.readouterr().out)
    # the model's best "not a word" label: its _silence_ and _unknown_ tie (0.5 / 11) on this tone
    assert got["weak_two"][0] in REJECTIONS
    assert got["one"] == ("1", 0.95)  # (the "3" scores float32 0.9, just under 0.9: not asserted)
    assert got["other_word"][0] == UNKNOWN and got["noise"][0] == SILENCE
    # --json keeps the order of rank: the rejection first, the words after
    assert main(["classify", "-m", "fake.onnx", str(tones["weak_two"]), "--reject-below", "0.9", "--json",
                 "--top-k", "2"]) == 0
    (top,) = json.loads(capsys.readouterr().out).values()
    assert [p["label"] for p in top][1] == "2" and top[0]["label"] in REJECTIONS
    # a model without "not a word" outputs answers _unknown_, scored 1 - best word
    assert main(["classify", "-m", "digits.onnx", str(tones["weak_two"]), "--reject-below", "0.9"]) == 0
    assert answers(capsys.readouterr().out)["weak_two"] == (UNKNOWN, 0.5)


def test_classify_reject_below_zero_answers_every_clip_with_a_word(fake_models, tones, capsys):
    """A threshold decides "word or not" alone: at 0 the model's own rejections are overruled."""
    assert main(["classify", "-m", "fake.onnx", str(tones["other_word"]), str(tones["noise"]), "--reject-below", "0"]) == 0
    got = answers(capsys.readouterr().out)
    assert got["other_word"][0] not in REJECTIONS and got["noise"][0] not in REJECTIONS


def test_classify_an_ensemble_with_a_digits_only_member(fake_models, tones, capsys):
    assert main(["classify", "-m", "digits.onnx", "--with", "fake.onnx", str(tones["other_word"]),
                 str(tones["noise"]), str(tones["one"])]) == 0
    got = answers(capsys.readouterr().out)
    assert fake_models == ["digits.onnx", "fake.onnx"]
    assert (got["other_word"][0], got["noise"][0], got["one"][0]) == (UNKNOWN, SILENCE, "1")
    assert main(["classify", "-m", "digits.onnx", str(tones["weak_two"]), "--reject-below", "0.6"]) == 0
    assert answers(capsys.readouterr().out)["weak_two"] == (UNKNOWN, 0.5)  # 1 - best, added by rank


@pytest.mark.parametrize("value", ["1.5", "-0.2"])
def test_reject_below_out_of_range_is_a_usage_error(fake_models, tones, capsys, value):
    assert main(["classify", "-m", "fake.onnx", str(tones["one"]), "--reject-below", value]) == 2
    err = capsys.readouterr().err
    assert "reject_below" in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def labelled(tmp_path) -> Path:
    """Sub-folders per label: four words (one wrong, one weak), two other words, two noises."""
    folder = tmp_path / "labelled"
    files = {"1": [ONE], "2": [WEAK_TWO], "3": [THREE, ONE], UNKNOWN: [OTHER_WORD, THREE], SILENCE: [NOISE, WEAK_TWO]}
    for label, freqs in files.items():
        for i, freq in enumerate(freqs):
            write_wav(folder / label / f"spk{i}_nohash_{i}.wav", tone(freq, 0.5), RATE)
    return folder


def test_evaluate_prints_false_rejects_and_accepts(fake_models, labelled, capsys):
    assert main(["evaluate", "-m", "fake.onnx", str(labelled)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("accuracy 75.00% on 4 recordings of words")
    assert lines[1] == ("false rejects 0.00% of the words; false accepts (answered with a word): "
                        "50.00% of 2 other words (_unknown_), 50.00% of 2 noise clips (_silence_); the model's own answers")
    assert main(["evaluate", "-m", "fake.onnx", str(labelled), "--reject-below", "0.6"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("accuracy 50.00% on 4 recordings of words")
    assert lines[1].startswith("false rejects 25.00% of the words;")
    assert lines[1].endswith("words accepted from a score of 0.6")
    assert "0.00% of 2 noise clips (_silence_)" in lines[1]


def test_evaluate_json_and_det(fake_models, labelled, tmp_path, capsys):
    plot = tmp_path / "det" / "curve.png"
    assert main(["evaluate", "-m", "fake.onnx", str(labelled), "--json", "--reject-below", "0.6",
                 "--det", str(plot)]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["count"] == 4 and summary["accuracy"] == pytest.approx(0.5)
    assert summary["false_reject_rate"] == pytest.approx(0.25)
    assert summary["false_accept_rate"] == {UNKNOWN: pytest.approx(0.5), SILENCE: 0.0}
    assert summary["negatives"] == {UNKNOWN: 2, SILENCE: 2}
    assert summary["reject_below"] == 0.6 and summary["failed"] == 0
    assert plot.read_bytes()[:8] == PNG_SIGNATURE
    assert f"DET curve: {plot}" in captured.err


def test_evaluate_words_only_with_a_digits_only_model(fake_models, labelled, capsys):
    """No negatives: no false-accept line; a threshold on a model without ``_unknown_`` still scores."""
    words = labelled.parent / "words_only"
    words.mkdir()
    for label in ("1", "2", "3"):
        (labelled / label).rename(words / label)
    assert main(["evaluate", "-m", "digits.onnx", str(words), "--reject-below", "0.6", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["count"] == 4 and summary["false_reject_rate"] == pytest.approx(0.25)
    assert summary["negatives"] == {} and summary["false_accept_rate"] == {}
    assert main(["evaluate", "-m", "digits.onnx", str(words)]) == 0
    assert "false rejects" not in capsys.readouterr().out


def test_evaluate_official_split_scores_the_held_out_negatives(fsdd_root, tmp_path, monkeypatch, capsys):
    """The bundled model (no -m) on the 300 test digits and the test part of the other words and noise."""
    if not (fsdd_root / "speech_commands_words").is_dir():
        pytest.skip(f"no {fsdd_root / 'speech_commands_words'}")
    from spokenword import pretrained

    monkeypatch.setenv("SPOKENWORD_CACHE", str(tmp_path / "cache"))  # the noise clips are written there
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--split", "official", "--data.root", str(fsdd_root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    manifest = pretrained.manifest()
    assert summary["count"] == 300 and summary["failed"] == 0
    assert summary["negatives"][UNKNOWN] >= 100 and summary["negatives"][SILENCE] >= 50
    assert summary["negatives"] == manifest["negatives"]  # what the bundled model's figures were measured on
    assert summary["reject_below"] == manifest["reject_below"]
    assert summary["accuracy"] >= 0.98
    assert set(summary["false_accept_rate"]) == {UNKNOWN, SILENCE}
    assert 0 <= summary["false_reject_rate"] <= 0.05
    assert (tmp_path / "cache" / "noise_clips").is_dir() and not (tmp_path / ".cache").exists()
