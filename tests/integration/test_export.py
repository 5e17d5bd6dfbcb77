"""``spokenword export``: ONNX (float, int8) and TorchScript exports of a trained checkpoint, checked
against the PyTorch ``Classifier`` on the whole official test split (takes 0-4, 300 clips), and the
ONNX path classifying a wav with torch not importable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from spokenword.inference import export
from spokenword.inference import base as runtime
from spokenword.inference.onnx import OnnxClassifier
from spokenword.cli import main
from spokenword.data.splits import make_split
from spokenword.data.corpora import FSDD
from spokenword.inference.checkpoint import Classifier
from spokenword.inference.load import load_model as load_classifier

pytestmark = pytest.mark.integration

#: int8 accuracy cost allowed here, in points on the 300 test clips. The issue's 0.5-point bound
#: is for a fully trained model (measured: 0.0 points, see README "Deployment"); the 3-epoch
#: fixture model is far less confident (many near-ties), so rounding flips a few more clips.
INT8_MAX_DROP_POINTS = 2.0


@pytest.fixture(scope="module")
def exports(trained_checkpoint: Path, fsdd_root: Path, tmp_path_factory) -> dict[str, Path]:
    """The three exports, written through the command line."""
    out = tmp_path_factory.mktemp("exports")
    paths = {"onnx": out / "model.onnx", "int8": out / "model.int8.onnx", "torchscript": out / "model.pt"}
    runs = {
        "onnx": ["--format", "onnx"],
        "int8": ["--format", "onnx", "--int8", "--calibration-clips", "100", "--data.root", str(fsdd_root)],
        "torchscript": ["--format", "torchscript"],
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
    with torch.no_grad():
        probs = classifier.probabilities(torch.stack([classifier.featurize(w) for w in waves])).numpy()
    return classifier, waves, probs


#: The issue's bound. Exports and features.power_spectrogram both compute the STFT in float64,
#: so they agree to ~1e-6 in probability (the float32 STFT used to cost up to 1.3e-4).
PARITY_TOLERANCE = 1e-4


def _assert_parity(probs: np.ndarray, expected: np.ndarray, tolerance: float = PARITY_TOLERANCE) -> None:
    assert probs.shape == expected.shape
    np.testing.assert_array_equal(probs.argmax(axis=1), expected.argmax(axis=1))  # identical top-1, every clip
    assert np.abs(probs - expected).max() <= tolerance


def _onnx_probabilities(path: Path, waves) -> np.ndarray:
    classifier = OnnxClassifier(path)
    return classifier.probabilities([classifier.featurize(w) for w in waves])


def _torchscript_probabilities(path: Path, waves) -> np.ndarray:
    model = torch.jit.load(str(path))
    audio, length = runtime.pad_batch(waves)
    with torch.no_grad():
        return model(torch.from_numpy(audio), torch.from_numpy(length)).numpy()


def _accuracy(probs: np.ndarray, labels: list[str], recordings) -> float:
    truth = np.array([labels.index(r.label) for r in recordings])
    return float((probs.argmax(axis=1) == truth).mean())


def test_onnx_matches_pytorch_on_the_whole_test_split(exports, reference):
    classifier, waves, expected = reference
    onnx_classifier = load_classifier(exports["onnx"])
    assert isinstance(onnx_classifier, OnnxClassifier)
    assert onnx_classifier.labels == classifier.labels and onnx_classifier.sample_rate == classifier.sample_rate
    batched = onnx_classifier.probabilities([onnx_classifier.featurize(w) for w in waves])  # zero-padded batch
    _assert_parity(batched, expected)
    single = np.concatenate([onnx_classifier.probabilities([w]) for w in waves[:40]])  # batch 1, unpadded
    assert np.abs(single - batched[:40]).max() <= 1e-6  # padding changes nothing


@pytest.mark.parametrize("kind", ["onnx", "torchscript"])
def test_exports_match_pytorch_within_1e_4(kind, exports, reference):
    _, waves, expected = reference
    run = _onnx_probabilities if kind == "onnx" else _torchscript_probabilities
    _assert_parity(run(exports[kind], waves), expected)


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
    image = onnx_classifier.spectrogram(onnx_classifier.waveform(test_split[0].path))
    assert image.shape == (1, 64, 64)


def test_torchscript_matches_pytorch_on_the_whole_test_split(exports, reference):
    _, waves, expected = reference
    extra = {export.TORCHSCRIPT_METADATA: ""}
    torch.jit.load(str(exports["torchscript"]), _extra_files=extra)
    assert json.loads(extra[export.TORCHSCRIPT_METADATA])["labels"] == reference[0].labels
    _assert_parity(_torchscript_probabilities(exports["torchscript"], waves), expected)


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
    assert main(["export", str(trained_checkpoint), "--format", "torchscript", "--int8", "--out", str(tmp_path / "m.pt")]) == 2
    assert main(["export", str(tmp_path / "none.ckpt"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "--int8 needs --format onnx" in err and "no such checkpoint file" in err and "Traceback" not in err
    assert main(["classify", str(tmp_path / "none.onnx"), "x.wav"]) == 2
    assert "no such model file" in capsys.readouterr().err
