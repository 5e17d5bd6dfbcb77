"""The LightningModule's scheduler gets the run's length when the config leaves it open."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from jsonargparse import ArgumentParser
from lightning.pytorch.cli import LRSchedulerCallable
from torch.utils.data import DataLoader, TensorDataset

from spokenword.models import SpectrogramCNN
from spokenword.training.task import SpokenWordTask


def _factory(init_args: dict):
    """The scheduler factory as LightningCLI builds it from a config's class_path/init_args."""
    parser = ArgumentParser()
    parser.add_argument("--scheduler", type=LRSchedulerCallable)
    config = parser.parse_args(["--scheduler", str({"class_path": "torch.optim.lr_scheduler.OneCycleLR",
                                                    "init_args": init_args}).replace("'", '"')])
    return parser.instantiate(config).scheduler


def _fit(factory, interval: str, epochs: int = 2):
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(20, 1, 64, 64, generator=generator), torch.randint(0, 3, (20,), generator=generator))
    task = SpokenWordTask(net=SpectrogramCNN(num_classes=3), labels=["a", "b", "c"], lr_scheduler=factory,
                          scheduler_interval=interval)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(task, DataLoader(data, batch_size=8))  # 3 batches per epoch
    return trainer.lr_scheduler_configs[0].scheduler


@pytest.mark.parametrize(("interval", "expected"), [("step", 6), ("epoch", 2)])
def test_an_unset_total_steps_is_the_runs_length(interval, expected):
    scheduler = _fit(_factory({"max_lr": 0.01}), interval)
    assert scheduler.total_steps == expected
    assert scheduler.last_epoch == expected  # the schedule ran to its end, no "stepped past" error


def test_a_total_steps_in_the_config_is_kept():
    assert _fit(_factory({"max_lr": 0.01, "total_steps": 50}), "step").total_steps == 50



class _Instantiated(Exception):
    """Raised in place of building the trainer, model and data: the config got past its checks."""


def _stop(self):
    raise _Instantiated


@pytest.mark.parametrize(
    ("options", "refused"),
    [
        (["--trainer.max_epochs=-1", "--model.lr_scheduler.init_args.total_steps=null"], True),
        (["--trainer.max_epochs=-1", "--trainer.max_steps=100", "--model.lr_scheduler.init_args.total_steps=null"], False),
        (["--model.lr_scheduler.init_args.total_steps=null"], False),  # 120 epochs: the run's length
        (["--trainer.max_epochs=-1"], False),  # the config's own total_steps
        # stepping per epoch, a step limit gives the schedule no length
        (["--trainer.max_epochs=-1", "--trainer.max_steps=100", "--model.scheduler_interval=epoch",
          "--model.lr_scheduler.init_args.total_steps=null"], True),
        (["--model.scheduler_interval=epoch", "--model.lr_scheduler.init_args.total_steps=null"], False),
    ],
)
def test_a_schedule_without_a_length_is_a_usage_error_before_any_data(options, refused, capsys, monkeypatch, tmp_path):
    from spokenword import cli
    from spokenword.training import cli as training

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(training.SpokenWordCLI, "instantiate_classes", _stop)
    config = Path(__file__).resolve().parents[2] / "configs" / "fsdd_cnn_newvoices.yaml"
    if refused:
        assert cli.main(["fit", "--config", str(config), *options]) == 2
        err = capsys.readouterr().err
        assert "total_steps is unset" in err and "max_epochs" in err and "Traceback" not in err
    else:
        with pytest.raises(_Instantiated):
            cli.main(["fit", "--config", str(config), *options])
