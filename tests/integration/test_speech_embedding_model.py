"""configs/fsdd_embedding_newvoices.yaml end to end on real FSDD: a short fit through the CLI, the
checkpoint as inference contract (Classifier, ``spokenword classify``) and its ONNX export, which
carries the pretrained backbone, matching PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spokenword.cli import main
from spokenword.data.corpora import FSDD
from spokenword.data.splits import make_split
from spokenword.inference.checkpoint import Classifier
from spokenword.inference.onnx import OnnxClassifier
from spokenword.models import SpeechEmbeddingCNN
from spokenword.labels import is_rejection

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkpoint(fsdd_root: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("embedding")
    code = main([
        "fit", "--config", str(REPO / "configs" / "fsdd_embedding_newvoices.yaml"),
        "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "6",
        "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(out),
        "--data.root", str(fsdd_root), "--data.cache_dir", str(out / "cache"),
    ])
    assert code == 0
    (best,) = list(out.glob("*/version_*/checkpoints/best-*.ckpt"))
    return best


@pytest.fixture(scope="module")
def test_clips(fsdd_root: Path):
    return make_split(FSDD().recordings(fsdd_root), "official").test[::10]  # 30 clips, every speaker and digit


def test_short_fit_learns_and_the_checkpoint_rebuilds_the_model(checkpoint: Path):
    assert (checkpoint.parents[1] / "report.json").is_file()
    classifier = Classifier.from_checkpoint(checkpoint)
    assert isinstance(classifier.model.net, SpeechEmbeddingCNN)
    assert classifier.features.n_bins == 32 and classifier.features.n_frames == 128
    assert not any(p.requires_grad for p in classifier.model.net.backbone.parameters())


def test_classifier_beats_chance_after_twelve_steps(checkpoint: Path, test_clips):
    """Only the head trains, from the pretrained embeddings: 12 steps already read most digits."""
    classifier = Classifier.from_checkpoint(checkpoint)
    right = sum(classifier(r.path)[0]["label"] == r.label for r in test_clips)
    assert right / len(test_clips) >= 0.5


def test_classify_command_reads_the_checkpoint(checkpoint: Path, test_clips, capsys):
    assert main(["classify", str(checkpoint), str(test_clips[0].path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (scores,) = result.values()
    assert sum(s["score"] for s in scores) == pytest.approx(1.0, abs=1e-4)


def test_onnx_export_carries_the_backbone_and_matches_pytorch(checkpoint: Path, test_clips, tmp_path):
    path = tmp_path / "model.onnx"
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(path)]) == 0
    reference = Classifier.from_checkpoint(checkpoint)
    waves = [reference.waveform(r.path) for r in test_clips]
    expected = reference.probabilities([reference.featurize(w) for w in waves])
    onnx_model = OnnxClassifier(path)
    got = onnx_model.probabilities([onnx_model.featurize(w) for w in waves])
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    assert np.abs(got - expected).max() <= 1e-4


def test_an_ensemble_of_two_front_ends_averages_them(checkpoint: Path, trained_checkpoint: Path, test_clips, tmp_path,
                                                     capsys):
    """The reference CNN (64x64 stretched log-power image) with the embedding model (32-band log-mel,
    128 frames), each through its own checkpoint's preprocessing; a member may be an ONNX export."""
    from spokenword.inference.ensemble import Ensemble
    from spokenword.inference.load import load_model

    cnn, emb = Classifier.from_checkpoint(trained_checkpoint), Classifier.from_checkpoint(checkpoint)
    assert cnn.features != emb.features
    ensemble = load_model(trained_checkpoint, checkpoint)
    assert isinstance(ensemble, Ensemble) and ensemble.runtime == "torch+torch"
    waves = [ensemble.waveform(r.path) for r in test_clips]
    # the ensemble rule: the embedding (trained with _unknown_/_silence_ where that data is) decides whether it
    # is a digit, both members which digit (their digit probabilities renormalised, averaged)
    p_cnn = cnn.probabilities([cnn.featurize(w) for w in waves])
    p_emb = emb.probabilities([emb.featurize(w) for w in waves])
    digits = [label for label in ensemble.labels if not is_rejection(label)]
    rejected = p_emb[:, [emb.labels.index(label) for label in ensemble.labels if is_rejection(label)]]
    own = [p[:, [m.labels.index(label) for label in digits]] for p, m in ((p_cnn, cnn), (p_emb, emb))]
    mean = sum(o / o.sum(axis=1, keepdims=True) for o in own) / 2
    expected = np.concatenate([mean * (1 - rejected.sum(axis=1, keepdims=True)), rejected], axis=1)
    got = ensemble.probabilities([ensemble.featurize(w) for w in waves])
    np.testing.assert_allclose(got, expected, atol=1e-6)

    clip = str(test_clips[0].path)
    assert main(["classify", str(trained_checkpoint), clip, "--with", str(checkpoint), "--json"]) == 0
    (scores,) = json.loads(capsys.readouterr().out).values()
    by_label = {s["label"]: s["score"] for s in scores}
    assert [by_label[label] for label in ensemble.labels] == pytest.approx(got[0].tolist(), abs=1e-5)

    exported = tmp_path / "embedding.onnx"
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(exported)]) == 0
    capsys.readouterr()
    mixed = load_model(trained_checkpoint, exported)
    assert mixed.runtime == "torch+onnx"
    np.testing.assert_allclose(mixed.probabilities([mixed.featurize(w) for w in waves]), got, atol=1e-4)

    folder = tmp_path / "clips"
    folder.mkdir()
    for r in test_clips:
        (folder / r.path.name).symlink_to(r.path)
    assert main(["evaluate", str(trained_checkpoint), str(folder), "--with", str(checkpoint), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == len(test_clips)
    assert result["accuracy"] == pytest.approx(float((got.argmax(1) == [ensemble.labels.index(r.label) for r in test_clips]).mean()))
    assert result["labels"] == ensemble.labels

    assert main(["transcribe", str(trained_checkpoint), clip, "--with", str(checkpoint), "--json"]) == 0
    (transcript,) = json.loads(capsys.readouterr().out).values()
    assert 1 <= len(transcript["words"]) <= 2 and transcript["text"]  # one FSDD clip: a word (two if split), read by the ensemble

    code = main(["classify", str(trained_checkpoint), clip, "--with", str(tmp_path / "absent.ckpt")])
    err = capsys.readouterr().err
    assert code == 2 and "absent.ckpt" in err and err.count("\n") == 1
