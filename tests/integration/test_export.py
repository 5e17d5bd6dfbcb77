"""``spokenword export``: ONNX exports (float, int8) of a trained checkpoint, checked against the
PyTorch ``Classifier`` on the whole official test split (takes 0-4, 300 clips), their features
output, exports made before it existed, and the ONNX path classifying a wav with torch not importable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest

from spokenword.cli import main
from spokenword.data.corpora import FSDD
from spokenword.data.splits import make_split
from spokenword.inference import base as runtime
from spokenword.inference import export
from spokenword.inference.checkpoint import Classifier
from spokenword.inference.load import load_model
from spokenword.inference.onnx import OnnxClassifier

pytestmark = pytest.mark.integration

#: int8 accuracy cost allowed here, in points on the 300 test clips. The issue's 0.5-point bound
#: is for a fully trained model (measured: 0.0 points, docs/experiments.md "Runtimes"); the 3-epoch
#: fixture model is far less confident (many near-ties), so rounding flips a few more clips.
INT8_MAX_DROP_POINTS = 2.0


@pytest.fixture(scope="module")
def exports(trained_checkpoint: Path, fsdd_root: Path, tmp_path_factory) -> dict[str, Path]:
    """The two exports, written through the command line."""
    out = tmp_path_factory.mktemp("exports")
    paths = {"onnx": out / "model.onnx", "int8": out / "model.int8.onnx"}
    runs = {
        "onnx": ["--format", "onnx"],
        "int8": ["--format", "onnx", "--int8", "--calibration-clips", "100", "--data.root", str(fsdd_root)],
    }
    for name, args in runs.items():
        assert main(["export", str(trained_checkpoint), *args, "--out", str(paths[name])]) == 0
    return paths


@pytest.fixture(scope="module")
def test_split(fsdd_root: Path):
    recordings = make_split(FSDD().recordings(fsdd_root), "official").test
    assert len(recordings) == 300
    return recordings


@pytest.fixture(scope="module")
def reference(trained_checkpoint: Path, test_split):
    """PyTorch ``Classifier`` probabilities ``(300, 10)`` and the decoded waveforms."""
    classifier = Classifier.from_checkpoint(trained_checkpoint)
    waves = [classifier.waveform(r.path) for r in test_split]
    return classifier, waves, classifier.probabilities([classifier.featurize(w) for w in waves])


#: The issue's bound. The checkpoint's Classifier runs the graph the exports hold, STFT in float64
#: included, so they agree to ~1e-6 in probability.
PARITY_TOLERANCE = 1e-4


def _assert_parity(probs: np.ndarray, expected: np.ndarray, tolerance: float = PARITY_TOLERANCE) -> None:
    assert probs.shape == expected.shape
    np.testing.assert_array_equal(probs.argmax(axis=1), expected.argmax(axis=1))  # identical top-1, every clip
    assert np.abs(probs - expected).max() <= tolerance


def _onnx_probabilities(path: Path, waves) -> np.ndarray:
    classifier = OnnxClassifier(path)
    return classifier.probabilities([classifier.featurize(w) for w in waves])


def _accuracy(probs: np.ndarray, labels: list[str], recordings) -> float:
    truth = np.array([labels.index(r.label) for r in recordings])
    return float((probs.argmax(axis=1) == truth).mean())


def test_onnx_matches_pytorch_on_the_whole_test_split(exports, reference):
    classifier, waves, expected = reference
    onnx_classifier = load_model(exports["onnx"])
    assert isinstance(onnx_classifier, OnnxClassifier)
    assert onnx_classifier.labels == classifier.labels and onnx_classifier.sample_rate == classifier.sample_rate
    batched = onnx_classifier.probabilities([onnx_classifier.featurize(w) for w in waves])  # zero-padded batch
    _assert_parity(batched, expected)
    single = np.concatenate([onnx_classifier.probabilities([w]) for w in waves[:40]])  # batch 1, unpadded
    assert np.abs(single - batched[:40]).max() <= 1e-6  # padding changes nothing


def test_export_matches_pytorch_within_1e_4(exports, reference):
    _, waves, expected = reference
    _assert_parity(_onnx_probabilities(exports["onnx"], waves), expected)


def test_onnx_classifier_interface_matches_the_checkpoint_one(exports, reference, test_split):
    classifier, _, _ = reference
    onnx_classifier = OnnxClassifier(exports["onnx"])
    paths = [r.path for r in test_split[:5]] + [Path("missing.wav")]
    ours = list(onnx_classifier.predict_many(paths, top_k=3))
    theirs = list(classifier.predict_many(paths, top_k=3))
    for (source, got), (_, want) in zip(ours, theirs):
        if isinstance(want, Exception):
            assert isinstance(got, Exception) and str(got) == str(want)
            continue
        assert [p["label"] for p in got] == [p["label"] for p in want]
        assert [p["score"] for p in got] == pytest.approx([p["score"] for p in want], abs=1e-4)
    assert onnx_classifier(test_split[0].path)[0]["label"] == classifier(test_split[0].path)[0]["label"]
    wave = onnx_classifier.waveform(test_split[0].path)
    image = onnx_classifier.spectrogram(wave)
    assert image.shape == (1, 64, 64) and image.dtype == np.float32
    np.testing.assert_allclose(image, classifier.spectrogram(wave), atol=1e-5)  # the graph's features output


def test_int8_keeps_the_features_output_float(exports, reference):
    classifier, waves, _ = reference
    int8 = OnnxClassifier(exports["int8"])
    outputs = {o.name: o.type for o in int8.session.get_outputs()}
    assert outputs == {runtime.PROBS_OUTPUT: "tensor(float)", runtime.FEATURES_OUTPUT: "tensor(float)"}
    for wave in waves[:5]:
        np.testing.assert_allclose(int8.spectrogram(wave), classifier.spectrogram(wave), atol=1e-5)


def test_an_export_without_the_features_output_classifies_but_has_no_spectrogram(exports, reference, tmp_path):
    """An export made before exports carried their features (its graph ends at the probabilities)."""
    classifier, waves, expected = reference
    model = onnx.load(str(exports["onnx"]))
    kept = [o for o in model.graph.output if o.name == runtime.PROBS_OUTPUT]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    old = tmp_path / "old.onnx"
    onnx.save(model, str(old))
    older = OnnxClassifier(old)
    _assert_parity(older.probabilities([older.featurize(w) for w in waves[:20]]), expected[:20])
    with pytest.raises(runtime.ExportError, match="re-export it to get its features"):
        older.spectrogram(waves[0])

    from fastapi.testclient import TestClient

    from spokenword.serve import create_app

    with TestClient(create_app(older, live=False)) as client:
        body = {"content": _wav_bytes(waves[0], older.sample_rate)}
        assert client.post("/predict", **body).status_code == 200
        answer = client.post("/predict?spectrogram=true", **body)
        assert answer.status_code == 501 and "re-export it" in answer.json()["detail"]


def _wav_bytes(wave: np.ndarray, rate: int) -> bytes:
    import io

    import soundfile as sf

    out = io.BytesIO()
    sf.write(out, wave, rate, format="WAV")
    return out.getvalue()


def test_int8_accuracy_cost_and_size(exports, reference, test_split):
    classifier, waves, expected = reference
    int8 = OnnxClassifier(exports["int8"])
    probs = int8.probabilities([int8.featurize(w) for w in waves])
    float_acc = _accuracy(expected, classifier.labels, test_split)
    int8_acc = _accuracy(probs, classifier.labels, test_split)
    print(f"official test split: float {100 * float_acc:.2f}%, int8 {100 * int8_acc:.2f}%, "
          f"int8 file {exports['int8'].stat().st_size / 1024:.1f} KiB vs float {exports['onnx'].stat().st_size / 1024:.1f} KiB")
    assert int8_acc >= float_acc - INT8_MAX_DROP_POINTS / 100
    assert (probs.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.95
    assert exports["int8"].stat().st_size <= 120 * 1024
    assert exports["int8"].stat().st_size < exports["onnx"].stat().st_size / 3
    assert int8.metadata["precision"] == "int8" and int8.metadata["calibration_clips"] == 100


def test_metadata_travels_with_the_model_and_beside_it(exports, trained_checkpoint):
    task_labels = Classifier.from_checkpoint(trained_checkpoint).labels
    for name in ("onnx", "int8"):
        props = {p.key: p.value for p in onnx.load(str(exports[name])).metadata_props}
        inside = json.loads(props[runtime.METADATA_KEY])
        beside = json.loads(export.sidecar_path(exports[name]).read_text())
        assert inside == beside
        assert inside["labels"] == task_labels and inside["version"] == runtime.METADATA_VERSION
        assert list(inside["outputs"]) == [runtime.PROBS_OUTPUT, runtime.FEATURES_OUTPUT]
        assert inside["features"]["kind"] == "stft" and inside["sample_rate"] == 8000
        assert inside["normalization"]["std"] > 0


_NO_TORCH = textwrap.dedent("""
    import sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "lightning", "torchmetrics", "pytorch_lightning"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Blocker())
    from spokenword.cli import main
    code = main(["classify", "--json", "--top-k", "2", *sys.argv[1:]])
    assert not any(m.split(".")[0] == "torch" for m in sys.modules), "torch was imported"
    sys.exit(code)
""")


def test_onnx_classify_runs_without_torch(exports, reference, test_split):
    classifier, _, _ = reference
    wav = test_split[7].path
    result = subprocess.run([sys.executable, "-c", _NO_TORCH, str(exports["int8"]), str(wav)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (prediction,) = json.loads(result.stdout).values()
    assert len(prediction) == 2
    assert prediction[0]["label"] == classifier(wav)[0]["label"]
    # the blocker really blocks: the checkpoint path needs torch and fails
    blocked = subprocess.run([sys.executable, "-c", _NO_TORCH, str(exports["onnx"]).replace(".onnx", ".ckpt"), str(wav)],
                             capture_output=True, text=True, timeout=120)
    assert blocked.returncode != 0 and "blocked" in blocked.stderr


def test_export_usage_errors_are_one_line(trained_checkpoint, tmp_path, capsys):
    assert main(["export", str(trained_checkpoint), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--format torchscript was removed" in err and "--format onnx" in err
    assert not (tmp_path / "m.pt").exists()
    assert main(["export", str(trained_checkpoint), "--format", "tflite", "--out", str(tmp_path / "m.tflite")]) == 2
    assert "unknown --format 'tflite'; expected one of onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "none.ckpt"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "no such checkpoint file" in err and "Traceback" not in err
    assert main(["classify", str(tmp_path / "none.onnx"), "x.wav"]) == 2
    assert "no such model file" in capsys.readouterr().err
