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
    """The Makefile's default: the embedding started in the background (its output to a log), the CNN beside
    it, both waited for and checked, then their ensemble on the official test split."""
    import re
    import subprocess

    repo = CONFIGS[0].parents[1]
    env = {"PATH": "/usr/bin:/bin", "VENV": ".venv-never-made"}
    script = subprocess.run(["make", "-n", "train"], cwd=repo, capture_output=True, text=True, check=True, env=env).stdout
    commands = [line for line in script.splitlines() if not line.startswith("echo")]
    calls = re.findall(r"spokenword (download|fit --config [^\s;]+|evaluate [^;\n]+)", "\n".join(commands))
    assert calls == [
        "download",
        "fit --config configs/fsdd_embedding_newvoices.yaml",
        "fit --config configs/fsdd_cnn_newvoices.yaml",
        "evaluate runs/fsdd_cnn_newvoices --with runs/fsdd_embedding_newvoices --split official",
    ]
    assert "fit --config configs/fsdd_embedding_newvoices.yaml > runs/fsdd_embedding_newvoices.log 2>&1 &" in script
    # each fit takes its share of the cores (spokenword.training.callbacks.ThreadsBesideWorkers)
    assert script.count("SPOKENWORD_FITS_AT_ONCE=2 .venv-never-made/bin/spokenword fit --config") == 2
    assert "wait $member" in script and "[ $cnn -eq 0 ] && [ $with -eq 0 ]" in script  # a failed fit fails make
    alone = subprocess.run(["make", "-n", "train", "WITH="], cwd=repo, capture_output=True, text=True, check=True,
                           env=env).stdout
    assert "fsdd_embedding" not in alone and "--with" not in alone and "wait" not in alone


def stand_in_make(work: Path, venv: Path, fit: str) -> None:
    """``work``: the Makefile and configs; ``venv``: an installed-looking venv whose ``spokenword`` runs the shell
    text ``fit`` for ``fit`` (``$3`` is the config) and does nothing else, so ``make train VENV=venv`` runs only the
    recipe's own shell around stand-in fits."""
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    repo = CONFIGS[0].parents[1]
    shutil.copytree(repo / "configs", work / "configs")
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(repo / name, work / name)
    if not (venv / ".installed").exists():
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").write_text("#!/bin/sh\n")
        (venv / "bin" / "spokenword").write_text(f'#!/bin/sh\nif [ "$1" = fit ]; then {fit}; fi\nexit 0\n')
        for name in ("python", "spokenword"):
            (venv / "bin" / name).chmod(0o755)
    (venv / ".installed").touch()  # newer than the copies: nothing to install


def test_make_train_fails_when_either_member_fails(tmp_path):
    """The recipe's shell, run with stand-ins for the two fits: make train stops with an error and names the
    member's log when the member fails, and when the CNN fails."""
    import subprocess

    venv, results = tmp_path / "venv", {}
    for fail in ("nothing", "embedding", "cnn_newvoices"):  # fit fails for the config named in $FAIL
        stand_in_make(tmp_path / fail, venv, 'case "$3" in *"$FAIL"*) echo "boom in $3"; exit 3;; esac; '
                                             'echo "spokenword report: $3"')
        results[fail] = subprocess.run(["make", "train", f"VENV={venv}", "SPOKENWORD_DATA=/nonexistent"],
                                       cwd=tmp_path / fail, capture_output=True, text=True,
                                       env={"PATH": "/usr/bin:/bin", "FAIL": fail})
    assert results["nothing"].returncode == 0, results["nothing"].stderr
    assert "spokenword report: configs/fsdd_embedding_newvoices.yaml" in results["nothing"].stdout
    assert results["embedding"].returncode != 0
    assert "training configs/fsdd_embedding_newvoices.yaml failed: its output is in runs/fsdd_embedding_newvoices.log" \
        in results["embedding"].stdout
    assert "boom in configs/fsdd_embedding_newvoices.yaml" in results["embedding"].stdout
    assert results["cnn_newvoices"].returncode != 0
    assert "evaluate" not in results["cnn_newvoices"].stdout.split("boom in", 1)[1]


def test_interrupting_make_train_stops_both_fits(tmp_path):
    """Ctrl-C (SIGINT to make's process group) stops the background fit too: a shell ignores SIGINT in a
    background job, so without the recipe's trap it would go on training unseen."""
    import os
    import signal
    import subprocess
    import time

    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to tell a finished process from a running one")
    work, venv = tmp_path / "work", tmp_path / "venv"
    # each fit: its pid to a file, then a long wait as that same process
    stand_in_make(work, venv, f'echo $$ > "{tmp_path}/$(basename $3).pid"; exec sleep 60')

    def default_sigint():  # as from a terminal (a parent that ignores SIGINT would hand that on)
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    make = subprocess.Popen(["make", "train", f"VENV={venv}", "SPOKENWORD_DATA=/nonexistent"], cwd=work,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=default_sigint, env={"PATH": "/usr/bin:/bin"})
    files = [tmp_path / "fsdd_cnn_newvoices.yaml.pid", tmp_path / "fsdd_embedding_newvoices.yaml.pid"]
    deadline = time.monotonic() + 20
    while not all(f.exists() and f.read_text().strip() for f in files) and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [int(f.read_text()) for f in files]
    os.killpg(make.pid, signal.SIGINT)
    make.wait(20)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting to be reaped is gone for our purpose
            return stat.read().split(") ", 1)[1][0] != "Z"

    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [p for p in pids if alive(p)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert make.returncode != 0 and not survivors, f"fits left running after Ctrl-C: {survivors}"


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
