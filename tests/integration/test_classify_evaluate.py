"""``classify`` / ``evaluate`` through ``main(argv)`` and the Python Classifier, on real FSDD files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from spokenword.cli import main
from spokenword.inference.checkpoint import Classifier

pytestmark = pytest.mark.integration

#: test-split recordings (takes 0-4), never seen in training
FILES = [f"{d}_{s}_{t}.wav" for d in range(10) for s in ("jackson", "theo") for t in (0, 1)]


@pytest.fixture(scope="module")
def samples(fsdd_recordings, tmp_path_factory) -> dict[str, Path]:
    """Copies of 40 test recordings, a 44.1 kHz stereo version of one, and a corrupt file."""
    folder = tmp_path_factory.mktemp("samples")
    clips = folder / "clips"
    clips.mkdir()
    for name in FILES:
        shutil.copy(fsdd_recordings / name, clips / name)
    original = clips / "7_jackson_0.wav"
    wave, rate = sf.read(original, dtype="float32")
    cd = soxr.resample(wave, rate, 44100)
    stereo = folder / "seven_44k1_stereo.wav"
    sf.write(stereo, np.stack([cd, cd], axis=1), 44100, subtype="PCM_16")
    corrupt = folder / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt this is not audio")
    return {"clips": clips, "original": original, "stereo": stereo, "corrupt": corrupt}


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_prints_label_and_probability_per_file(trained_checkpoint, samples, capsys):
    files = sorted(samples["clips"].iterdir())[:6]
    code, out, err = _run(capsys, "classify", trained_checkpoint, *files)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert len(lines) == 6
    for line, path in zip(lines, files):
        name, label, score = line.split("\t")
        assert name == str(path) and label in {str(d) for d in range(10)} and 0.1 <= float(score) <= 1.0


def test_classify_json_is_sorted_label_score_lists(trained_checkpoint, samples, capsys):
    original, stereo = samples["original"], samples["stereo"]
    code, out, _ = _run(capsys, "classify", trained_checkpoint, original, stereo, "--json")
    assert code == 0
    result = json.loads(out)
    assert list(result) == [str(original), str(stereo)]
    for ranking in result.values():
        assert [set(entry) for entry in ranking] == [{"label", "score"}] * 10
        scores = [entry["score"] for entry in ranking]
        assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-4)

    code, out, _ = _run(capsys, "classify", trained_checkpoint, stereo, "--json", "--top-k", "3")
    assert code == 0 and len(json.loads(out)[str(stereo)]) == 3


def test_a_corrupt_file_is_named_and_the_others_are_still_classified(trained_checkpoint, samples, capsys):
    good = samples["original"]
    code, out, err = _run(capsys, "classify", trained_checkpoint, good, samples["corrupt"], samples["stereo"])
    assert code == 1
    assert err.count("\n") == 1 and str(samples["corrupt"]) in err and "Traceback" not in err
    assert [line.split("\t")[0] for line in out.strip().splitlines()] == [str(good), str(samples["stereo"])]


def test_missing_checkpoint_or_file_is_a_one_line_error(trained_checkpoint, samples, tmp_path, capsys):
    code, out, err = _run(capsys, "classify", tmp_path / "absent.ckpt", samples["original"])
    assert code == 2 and "absent.ckpt" in err and err.count("\n") == 1
    not_a_checkpoint = tmp_path / "model.ckpt"
    not_a_checkpoint.write_bytes(b"nope")
    code, out, err = _run(capsys, "classify", not_a_checkpoint, samples["original"])
    assert code == 2 and "not a spokenword checkpoint" in err and err.count("\n") == 1
    code, out, err = _run(capsys, "classify", trained_checkpoint, tmp_path / "absent.wav")
    assert code == 1 and "absent.wav: no such file" in err


def test_evaluate_a_folder_of_fsdd_names(trained_checkpoint, samples, capsys):
    code, out, err = _run(capsys, "evaluate", trained_checkpoint, samples["clips"], "--json")
    assert code == 0 and err == ""
    result = json.loads(out)
    assert result["count"] == 40 and result["failed"] == 0 and result["errors"] == []
    assert result["labels"] == [str(d) for d in range(10)]
    matrix = np.array(result["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 40 and (matrix.sum(axis=1) == 4).all()
    assert result["accuracy"] == pytest.approx(np.trace(matrix) / 40)
    assert result["accuracy"] > 0.5
    assert set(result["per_class_accuracy"]) == set(result["labels"])
    assert set(result["per_speaker_accuracy"]) == {"jackson", "theo"}

    code, out, _ = _run(capsys, "evaluate", trained_checkpoint, samples["clips"])
    assert code == 0 and out.startswith(f"accuracy {100 * result['accuracy']:.2f}% on 40 recordings")
    assert "speaker jackson" in out


def test_evaluate_a_manifest_with_speakers_and_a_bad_file(trained_checkpoint, samples, capsys):
    folder = samples["clips"].parent
    manifest = folder / "manifest.csv"
    rows = [f"clips/{name},{name[0]},{name.split('_')[1]}" for name in FILES[:10]]
    rows += ["seven_44k1_stereo.wav,7,jackson", "corrupt.wav,3,theo"]
    manifest.write_text("path,label,speaker\n" + "\n".join(rows) + "\n")
    code, out, err = _run(capsys, "evaluate", trained_checkpoint, manifest, "--json")
    assert code == 1
    assert err.count("\n") == 1 and "corrupt.wav" in err
    result = json.loads(out)
    assert result["count"] == 11 and result["failed"] == 1
    assert set(result["per_speaker_accuracy"]) == {"jackson", "theo"}
    assert all(0.0 <= v <= 1.0 for v in result["per_speaker_accuracy"].values())


def test_python_classifier_on_a_path_and_on_an_array(trained_checkpoint, samples):
    classifier = Classifier.from_checkpoint(trained_checkpoint)
    assert classifier.labels == [str(d) for d in range(10)] and classifier.sample_rate == 8000
    from_path = classifier(samples["original"])
    wave, rate = sf.read(samples["stereo"], dtype="float32")  # (frames, 2) at 44.1 kHz
    from_array = classifier((wave, rate))
    assert len(from_path) == len(from_array) == 10
    assert sorted(e["label"] for e in from_array) == classifier.labels
    # the 44.1 kHz stereo copy becomes the 8 kHz mono signal again (up to the resampler's band edge)
    original, restored = classifier.waveform(samples["original"]), classifier.waveform((wave, rate))
    assert abs(len(restored) - len(original)) <= 1
    assert np.abs(restored[: len(original)] - original[: len(restored)]).max() < 0.02
    assert classifier(samples["original"], top_k=2) == from_path[:2]
    mono, mono_rate = sf.read(samples["original"], dtype="int16")
    from_ints = classifier((mono, mono_rate))  # int16 samples are scaled like the file's
    assert [e["label"] for e in from_ints] == [e["label"] for e in from_path]
    assert [e["score"] for e in from_ints] == pytest.approx([e["score"] for e in from_path], abs=1e-5)


@pytest.mark.parametrize("rate", [16000, 44100])
def test_a_recording_at_another_rate_with_silence_around_the_word_gets_the_training_features(fsdd_recordings, rate):
    """The new-voices config's preprocessing (trimming, log-mel, band mean, scaling) makes a clip
    recorded at another rate with a second of room noise around the word look like the training clip."""
    import torch
    import yaml

    from spokenword.frontend.settings import FeatureSettings
    from tests.conftest import REPO

    values = yaml.safe_load((REPO / "configs" / "fsdd_cnn_newvoices.yaml").read_text())["data"]["features"]
    clf = Classifier(torch.nn.Identity(), [str(d) for d in range(10)], 8000, FeatureSettings(**values))
    original = fsdd_recordings / "7_jackson_0.wav"
    wave, source_rate = sf.read(original, dtype="float32")
    resampled = soxr.resample(wave, source_rate, rate)
    rng = np.random.default_rng(0)
    room = lambda seconds: 1e-3 * rng.standard_normal(int(seconds * rate)).astype(np.float32)  # noqa: E731
    recording = np.concatenate([room(1.0), resampled + room(len(resampled) / rate), room(0.7)])
    expected = clf.spectrogram(clf.waveform(original)).ravel()
    got = clf.spectrogram(clf.waveform((recording, rate))).ravel()
    assert np.corrcoef(expected, got)[0, 1] > 0.95


def test_evaluate_a_run_folder_on_the_official_test_split(trained_run, fsdd_root, capsys):
    """``evaluate RUN --split official``: the run's best checkpoint on FSDD's 300 test recordings (takes 0-4),
    what the run's own report scored."""
    import json as json_

    code, out, err = _run(capsys, "evaluate", trained_run, "--split", "official", "--data.root", fsdd_root, "--json")
    assert code == 0 and err == ""
    result = json.loads(out)
    assert result["count"] == 300 and result["failed"] == 0
    report = json_.loads((trained_run / "report.json").read_text())
    assert result["accuracy"] == pytest.approx(report["test"]["acc"], abs=0.01)  # fit's test (batched, its precision)
    code, out, err = _run(capsys, "evaluate", trained_run)
    assert code == 2 and "needs DATA" in err
