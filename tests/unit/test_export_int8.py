"""int8 exports: calibrated on the checkpoint's own training corpus and split (its run's config.yaml), with
a one-line fallback to FSDD's official training split; the default CNN's int8 export stays <= 120 KiB with
its mel filterbank stored sparsely, computing the same features as the PyTorch classifier."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch
import yaml

import spokenword.audio
from spokenword.cli import main
from spokenword.frontend.host import host_steps
from spokenword.frontend.settings import FeatureSettings
from spokenword.inference import export
from spokenword.inference.card import card_path
from spokenword.inference.checkpoint import Classifier
from spokenword.inference.onnx import OnnxClassifier
from spokenword.models import SpectrogramCNN
from spokenword.training.task import SpokenWordTask
from tests.conftest import REPO, tone, write_wav

SUBSETS = {"train": 24, "val": 6, "test": 6}


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> tuple[Path, dict[str, list[Path]]]:
    """A one-epoch ``spokenword fit`` on a LabelledFolder corpus of tones (manifest with train/val/test
    subsets, ``split: corpus``): its run folder and the corpus files by subset."""
    base = tmp_path_factory.mktemp("folder_run")
    folder = base / "data" / "mine"
    files: dict[str, list[Path]] = {name: [] for name in SUBSETS}
    rows = ["path,label,speaker,subset"]
    i = 0
    for subset, count in SUBSETS.items():
        for _ in range(count):
            label = str(i % 2)
            path = write_wav(folder / f"{subset}_{i:02d}.wav", tone(0.3 + 0.02 * (i % 5), freq=300.0 if label == "0" else 900.0))
            files[subset].append(path)
            rows.append(f"{path.name},{label},s{i % 3},{subset}")
            i += 1
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    code = main([
        "fit", "--config", str(REPO / "configs" / "fsdd_cnn.yaml"),
        "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(base / "runs"),
        "--data.root", str(base / "data"), "--data.corpus", "LabelledFolder", "--data.corpus.path", "mine",
        "--data.split", "corpus", "--data.cache_dir", str(base / "cache"), "--data.batch_size", "16",
    ])
    assert code == 0
    (run,) = list((base / "runs").glob("*/version_*"))
    return run, files


@pytest.fixture()
def loaded(monkeypatch) -> list[Path]:
    """The files :func:`spokenword.audio.load` opens during the test."""
    opened: list[Path] = []
    real = spokenword.audio.load

    def spy(path, *args, **kwargs):
        opened.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(spokenword.audio, "load", spy)
    return opened


def test_int8_calibration_reads_the_checkpoints_own_training_files(folder_run, loaded, tmp_path, monkeypatch):
    run, files = folder_run
    monkeypatch.setenv("SPOKENWORD_DATA", str(tmp_path / "no-data-here"))  # FSDD is nowhere: it must not be needed
    out = tmp_path / "m.int8.onnx"
    assert main(["export", str(run), "--format", "onnx", "--int8", "--calibration-clips", "12", "--out", str(out)]) == 0
    assert loaded and set(loaded) <= set(files["train"])  # the training part only: never val or test
    assert len(loaded) == 12
    calibration = json.loads(export.sidecar_path(out).read_text())["calibration"]
    assert calibration == {"corpus": "LabelledFolder(path='mine')", "split": "corpus", "part": "train",
                           "checkpoint_training_data": True, "clips": 12}
    assert ("int8 calibration: 12 clips of the training part of `LabelledFolder(path='mine')`, split `corpus`"
            in card_path(out).read_text())


@pytest.mark.integration
@pytest.mark.parametrize("case", ["checkpoint alone", "corpus gone"])
def test_without_its_corpus_calibration_falls_back_to_fsdd_training_takes(case, folder_run, fsdd_root, loaded,
                                                                          tmp_path, monkeypatch, caplog):
    run, _ = folder_run
    if case == "checkpoint alone":  # copied out of its run folder: no config.yaml names the corpus
        checkpoint = tmp_path / "model.ckpt"
        shutil.copy(next((run / "checkpoints").glob("best-*.ckpt")), checkpoint)
    else:  # the run's corpus folder is not on this machine
        copy = shutil.copytree(run, tmp_path / "run")
        config = yaml.safe_load((copy / "config.yaml").read_text())
        config["data"]["corpus"]["init_args"]["path"] = "gone"
        (copy / "config.yaml").write_text(yaml.safe_dump(config))
        checkpoint = next((copy / "checkpoints").glob("best-*.ckpt"))
    monkeypatch.setenv("SPOKENWORD_DATA", str(fsdd_root))
    with caplog.at_level(logging.WARNING, logger=export.__name__):
        waves, about = export.calibration_data(checkpoint, 8000, FeatureSettings().to_dict(), clips=5)
    assert len(waves) == 5 and about["corpus"] == "FSDD()" and about["split"] == "official"
    assert about["checkpoint_training_data"] is False and "FSDD's official training split" in about["note"]
    assert all(int(p.stem.split("_")[2]) >= 10 for p in loaded)  # takes 10-49: the official training part
    (message,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in message and ("config.yaml" in message if case == "checkpoint alone" else "gone" in message)


def _default_cnn_checkpoint(path: Path) -> Path:
    """An untrained checkpoint of the default CNN (configs/fsdd_cnn_newvoices.yaml: network and features),
    as ``spokenword fit`` saves it: its export has the default's graph and bytes."""
    config = yaml.safe_load((REPO / "configs" / "fsdd_cnn_newvoices.yaml").read_text())
    features = FeatureSettings(**config["data"]["features"])
    labels = [str(d) for d in range(10)]
    net_args = {"num_classes": 10, "in_channels": 1, "input_size": list(features.shape[1:]),
                **config["model"]["net"]["init_args"]}
    torch.manual_seed(0)
    task = SpokenWordTask(net=SpectrogramCNN(**net_args), labels=labels, sample_rate=8000, features=features)
    task.set_normalization(0.0, 1.0)
    hparams = {"_instantiator": "lightning.pytorch.cli.instantiate_module",
               "net": {"class_path": "spokenword.models.SpectrogramCNN", "init_args": net_args},
               "labels": labels, "sample_rate": 8000, "features": features.to_dict()}
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": hparams, "epoch": 0, "global_step": 0,
                "pytorch-lightning_version": lightning.__version__}, path)
    return path


def test_the_default_cnns_int8_export_is_at_most_120_kib_and_computes_the_same(tmp_path):
    checkpoint = _default_cnn_checkpoint(tmp_path / "default.ckpt")
    float_path = export.export_onnx(checkpoint, tmp_path / "default.onnx")
    settings = json.loads(export.sidecar_path(float_path).read_text())["features"]
    waves = [host_steps(tone(s, freq=f), settings) for s, f in ((0.4, 300.0), (0.7, 900.0), (1.1, 1500.0))]
    int8 = export.quantize_onnx(float_path, tmp_path / "default.int8.onnx", waves)
    assert int8.stat().st_size <= 120 * 1024, f"{int8.stat().st_size} bytes"
    import onnx

    graph = onnx.load(str(int8)).graph
    names = {i.name for i in graph.initializer}
    assert "front_end.bank" not in names and "front_end.bank.values" in names  # the mel filterbank, sparse
    assert max(np.prod(i.dims) for i in graph.initializer if i.name.startswith("front_end.")) <= 512  # no DFT basis
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    float_convs = [n.input[1] for n in convs if n.input[1] not in dequantized]  # the front end's DFT, the network's first
    assert len(convs) == 5 and len(float_convs) == 2 and float_convs[1] == "net.features.0.weight"
    assert float_convs[0] not in names  # the DFT's kernel: built in the graph, not stored
    classifier, exported = Classifier.from_checkpoint(checkpoint), OnnxClassifier(float_path)
    # in faint noise, as in any recording: a bin with no power at all holds float32 rounding noise, which
    # differs between runtimes (spokenword.frontend.graph.power_spectrogram)
    rng = np.random.default_rng(0)
    clips = [(w + 1e-4 * rng.standard_normal(len(w))).astype(np.float32)
             for w in (tone(0.5, freq=440.0), tone(1.3, freq=2000.0, amplitude=0.1), tone(0.05, freq=700.0))]
    for wave in clips:  # the same features (the filterbank rebuilt exactly; the float32 DFT's rounding in each
        # runtime moves faint bins by < 1e-3 of the image's standard deviation) and probabilities
        np.testing.assert_allclose(exported.spectrogram(wave), classifier.spectrogram(wave), rtol=0, atol=2e-3)
    np.testing.assert_allclose(exported.probabilities([exported.featurize(w) for w in clips]),
                               classifier.probabilities([classifier.featurize(w) for w in clips]), rtol=0, atol=1e-4)
