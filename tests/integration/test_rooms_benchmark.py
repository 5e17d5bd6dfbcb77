"""``python -m benchmarks.rooms``: spoken numbers dressed as real rooms (own noise floor, room noise, reverberation,
bursts, distractor words), scored for both segmenters (a short run with the bundled model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import rooms

pytestmark = pytest.mark.integration


def test_edit_operations_are_counted_apart():
    assert rooms.edit_ops("123", "123") == (0, 0, 0)
    assert rooms.edit_ops("123", "1243") == (0, 1, 0)
    assert rooms.edit_ops("123", "13") == (0, 0, 1)
    assert rooms.edit_ops("123", "143") == (1, 0, 0)
    assert rooms.edit_ops("4096", "") == (0, 0, 4)
    assert rooms.edit_ops("", "77") == (0, 2, 0)


@pytest.fixture(scope="module")
def materials(fsdd_root):
    if not (fsdd_root / "speech_commands_words" / "_background_noise_").is_dir():
        pytest.skip("no room noise under the data root")
    return rooms.Materials(fsdd_root, "test", 8000)


def test_a_take_s_floor_is_noise_well_under_the_word(materials):
    take = materials.takes[("jackson", "3")][0]
    rng = np.random.default_rng(0)
    floor = rooms.floor_noise(take, 8000, rng)
    assert floor.shape == (8000,) and floor.dtype == np.float32
    frames = take[: len(take) // 256 * 256].reshape(-1, 256)
    loudest = float((frames**2).mean(axis=1).max())
    assert float(np.mean(floor**2)) < loudest * 10 ** (-38 / 10)  # at least ~40 dB under the word's loudest frame
    assert float(np.mean(floor**2)) > 0


@pytest.mark.parametrize("name", list(rooms.CONDITIONS))
def test_numbers_hold_their_digits_where_they_say(materials, name):
    rng = np.random.default_rng(1)
    for _ in range(3):
        number = materials.number("theo", rooms.CONDITIONS[name], rng)
        assert 4 <= len(number.digits) <= 7 and len(number.words) == len(number.digits)
        assert number.words == sorted(number.words) and number.words[-1][1] < len(number.wave)
        assert np.isfinite(number.wave).all()
        assert bool(number.distractors) == rooms.CONDITIONS[name].words
        for a, b in number.distractors:
            assert all(b <= c or a >= d for c, d in number.words)  # between the digits, never over one


def test_the_benchmark_writes_both_segmenters_figures(fsdd_root, materials, tmp_path):
    from spokenword import pretrained

    argv = [str(pretrained.folder()), "--count", "1", "--speakers", "jackson,theo", "--conditions", "quiet,room,words",
            "--oracle", "--data.root", str(fsdd_root), "--out", str(tmp_path)]
    assert rooms.main(argv) == 0
    record = json.loads((tmp_path / "rooms" / "test-fsdd-digits.json").read_text())
    assert record["command"].startswith("python -m benchmarks.rooms") and "own noise floor" in record["protocol"]
    conditions = record["figures"]["conditions"]
    assert set(conditions) == {"quiet", "room", "words"}
    for name, by in conditions.items():
        assert set(by) == {"oracle", "energy", "speech"}
        for segmenter in ("energy", "speech"):
            r = by[segmenter]
            assert r["numbers"] == 2 and r["digits"] >= 8
            assert 0 <= r["exact_numbers"] <= 1 and r["digit_error_rate"] >= 0
            total = r["substitutions_per_100"] + r["insertions_per_100"] + r["deletions_per_100"]
            assert total == pytest.approx(100 * r["digit_error_rate"])
            assert ("live_delay_ms" in r) == (name in rooms.LIVE)
            assert (r["distractors_emitted"] is not None) == (name == "words")
    assert conditions["words"]["speech"]["distractors"] >= 2


def test_without_leave_one_speaker_out_runs_it_says_how_to_make_them(fsdd_root, materials, tmp_path):
    with pytest.raises(SystemExit, match="python -m benchmarks.accuracy loso"):
        rooms.main(["--count", "1", "--speakers", "theo", "--runs", str(tmp_path), "--data.root", str(fsdd_root),
                    "--out", str(tmp_path)])


def test_leave_one_speaker_out_models_answer_at_the_threshold_given(fsdd_root, materials, tmp_path, monkeypatch):
    from spokenword import pretrained

    monkeypatch.setattr(rooms, "loso_models", lambda runs, speaker: [pretrained.folder()])  # stands in for a fold's runs
    deletions = {}
    for threshold in ("0", "0.999"):
        argv = ["--count", "2", "--speakers", "theo", "--conditions", "quiet", "--segmenters", "speech",
                "--reject-below", threshold, "--data.root", str(fsdd_root), "--out", str(tmp_path / threshold)]
        assert rooms.main(argv) == 0
        record = json.loads((tmp_path / threshold / "rooms" / "test-loso.json").read_text())
        assert record["recipe"]["reject_below"] == float(threshold)
        assert f"reject_below {float(threshold)}" in record["protocol"] and "bundled" not in record["protocol"]
        deletions[threshold] = record["figures"]["conditions"]["quiet"]["speech"]["deletions_per_100"]
    assert deletions["0.999"] > deletions["0"]  # a digit under the threshold is not given out
