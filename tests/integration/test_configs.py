"""Every YAML in configs/ parses and instantiates (model, data module, trainer) without training."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import torch
import yaml

from spokenword.training import cli as training
from spokenword.cli import main
from spokenword.data.datamodule import AudioDataModule
from spokenword.data.corpora import DatasetError
from spokenword.training.task import SpokenWordTask

pytestmark = pytest.mark.integration

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
#: what a config leaves to the command line: custom_words.yaml's folder (FSDD's, as a stand-in)
GIVEN = {"custom_words.yaml": ["--data.corpus.path", "fsdd/recordings"]}


def test_the_shipped_configs_are_the_ones_in_configs():
    assert {p.name for p in CONFIGS} == {
        "AudioClassification_cnn.yaml", "custom_words.yaml", "fsdd_cnn.yaml", "fsdd_cnn_ddp.yaml",
        "fsdd_cnn_newvoices.yaml", "fsdd_cnn_noisy.yaml", "fsdd_embedding_newvoices.yaml",
    }


@pytest.mark.parametrize("config", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_parses(config, capsys):
    assert main(["fit", "--config", str(config), "--print_config"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["model"]["net"]["class_path"]
    assert resolved["data"]["split"] in {"official", "reference", "speakers", "random"}
    # runs go to runs/<the file's name>: `make train` finds the ensemble's members there (Makefile)
    assert resolved["trainer"]["logger"]["init_args"]["name"] == config.stem


def test_make_train_trains_and_scores_the_default_ensemble():
    """The Makefile's default: the CNN, then the embedding, then their ensemble on the official test split."""
    import subprocess

    repo = CONFIGS[0].parents[1]
    lines = subprocess.run(["make", "-n", "train"], cwd=repo, capture_output=True, text=True, check=True,
                           env={"PATH": "/usr/bin:/bin", "VENV": ".venv-never-made"}).stdout.splitlines()
    commands = [line for line in lines if "spokenword " in line and not line.startswith("echo")]
    assert [c.split("spokenword ", 1)[1] for c in commands[-4:]] == [
        "download",
        "fit --config configs/fsdd_cnn_newvoices.yaml",
        "fit --config configs/fsdd_embedding_newvoices.yaml",
        "evaluate runs/fsdd_cnn_newvoices --with runs/fsdd_embedding_newvoices --split official",
    ]
    alone = subprocess.run(["make", "-n", "train", "WITH="], cwd=repo, capture_output=True, text=True, check=True,
                           env={"PATH": "/usr/bin:/bin", "VENV": ".venv-never-made"}).stdout
    assert "fsdd_embedding" not in alone and "--with" not in alone


@pytest.mark.parametrize("config", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_instantiates(config, fsdd_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # loggers and caches with relative paths land here
    try:
        cli = training.SpokenWordCLI(
            SpokenWordTask, AudioDataModule, run=False, auto_configure_optimizers=False,
            trainer_defaults=training.trainer_defaults(),
            args=["--config", str(config), "--data.root", str(fsdd_root), "--data.cache_dir", str(tmp_path / "cache"),
                  *GIVEN.get(config.name, [])],
        )
    except DatasetError as err:  # a config for a corpus that is not on this machine
        pytest.skip(f"{config.name}: its data is not available here ({err})")
    model, data = cli.model, cli.datamodule
    assert isinstance(model.net, torch.nn.Module)
    assert model.labels == data.labels and model.sample_rate == data.sample_rate and model.features == data.features
    logits = model.net(torch.zeros(2, *data.features.shape))
    assert logits.shape == (2, data.num_classes)
    assert cli.trainer.max_epochs >= 1
    model.trainer = cli.trainer  # a scheduler without total_steps takes the run's length from it
    with mock.patch.object(type(cli.trainer), "estimated_stepping_batches", new_callable=mock.PropertyMock,
                           return_value=123):
        optimizers = model.configure_optimizers()
    assert optimizers  # an optimiser (and scheduler) can be built from the config
    scheduler = optimizers["lr_scheduler"]["scheduler"] if isinstance(optimizers, dict) else None
    settings = yaml.safe_load(config.read_text())["model"].get("lr_scheduler") or {}
    if isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR):
        written = settings["init_args"].get("total_steps")
        assert scheduler.total_steps == (written or 123)  # the config's, else the run's length


def test_reference_protocol_config_differs_from_fsdd_cnn_only_in_the_split(capsys):
    def resolved(name: str) -> dict:
        assert main(["fit", "--config", str(CONFIGS[0].parent / name), "--print_config"]) == 0
        return yaml.safe_load(capsys.readouterr().out)

    reference, base = (resolved(n) for n in ("AudioClassification_cnn.yaml", "fsdd_cnn.yaml"))
    assert reference["data"]["split"] == "reference" and base["data"]["split"] == "official"
    assert reference["trainer"]["max_epochs"] == base["trainer"]["max_epochs"] == 30
    assert reference["data"]["features"] == base["data"]["features"]
    assert reference["model"] == base["model"]
    assert reference["data"]["batch_size"] == base["data"]["batch_size"] == 256
