"""The LightningModule's scheduler gets the run's length when the config leaves it open."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from jsonargparse import ArgumentParser
from lightning.pytorch.cli import LRSchedulerCallable
from torch.utils.data import DataLoader, TensorDataset

from spokenword.models import SpectrogramCNN
from spokenword.task import SpokenWordTask


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
