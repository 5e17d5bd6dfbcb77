"""Training through LightningCLI: ``spokenword fit|validate|test``.

The typed ``__init__`` signatures of :class:`~spokenword.task.SpokenWordTask`,
:class:`~spokenword.data.AudioDataModule` and the networks are the config schema. The data module
owns the label names, sample rate and feature settings and links them to the model, so a config
names them once. After ``fit`` the best checkpoint is tested and the run folder receives
``report.json`` and the plots (see :mod:`spokenword.report`).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from spokenword.data import AudioDataModule
from spokenword.task import MONITOR, SpokenWordTask


class EpochHistory(Callback):
    """Keeps every epoch's logged metrics and the training wall time, whatever logger is used."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self.started: float | None = None
        self.seconds: float = 0.0

    def on_fit_start(self, trainer, pl_module) -> None:
        self.started = time.perf_counter()

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.started is not None:
            self.seconds += time.perf_counter() - self.started
            self.started = None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        row = {"epoch": float(trainer.current_epoch)}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1})
        self.epochs.append(row)

    def state_dict(self) -> dict:
        return {"epochs": self.epochs, "seconds": self.seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epochs = list(state_dict.get("epochs", []))
        self.seconds = float(state_dict.get("seconds", 0.0))


class ChannelsLast(Callback):
    """Keeps the network's weights in channels-last memory format during fit (a speed-up for CPU
    oneDNN convolutions, most with ``trainer.precision: bf16-mixed``; see benchmarks/train_speed.py).

    The weights' values are unchanged, so checkpoints and exports are the same either way.
    """

    def on_fit_start(self, trainer, pl_module) -> None:
        pl_module.to(memory_format=torch.channels_last)

    def on_fit_end(self, trainer, pl_module) -> None:
        pl_module.to(memory_format=torch.contiguous_format)


class SpokenWordCLI(LightningCLI):
    """LightningCLI with spokenword's links, defaults and reports."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.sample_rate", "model.sample_rate", apply_on="instantiate")
        parser.link_arguments("data.features", "model.features", apply_on="instantiate")
        parser.link_arguments("data.labels", "model.labels", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.net.init_args.num_classes", apply_on="instantiate")
        parser.add_argument("--report", type=bool, default=True, help="write report.json and plots after fit/test")

    def after_fit(self) -> None:
        if self.trainer.interrupted or not self.config[self.subcommand].get("report", True):
            return
        checkpoint = next((c for c in self.trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)), None)
        best = checkpoint.best_model_path if checkpoint and checkpoint.best_model_path else None
        history = next((c for c in self.trainer.callbacks if isinstance(c, EpochHistory)), None)
        kept = history.state_dict() if history else None
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best, verbose=False)
        if history and kept:  # testing restores the best checkpoint's (earlier) callback state
            history.load_state_dict(kept)
        self._write_report(best)

    def after_test(self) -> None:
        if self.config[self.subcommand].get("report", True):
            self._write_report(self.config[self.subcommand].get("ckpt_path"))

    def _write_report(self, checkpoint: str | None) -> None:
        from spokenword import report

        run_dir = Path(self.trainer.log_dir or ".")  # a collective under DDP: every process asks
        if not self.trainer.is_global_zero:  # under DDP every process tests (metrics sync); one writes
            return
        history = next((c for c in self.trainer.callbacks if isinstance(c, EpochHistory)), None)
        if self.subcommand == "test" and checkpoint:
            run_dir = Path(checkpoint).resolve().parent.parent
        result = report.build(self.trainer, self.model, self.datamodule, history, checkpoint)
        report.write(result, run_dir)
        print(report.summary(result, run_dir))


def trainer_defaults() -> dict:
    return {
        "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs", "name": "spokenword"}},
        "callbacks": [
            ModelCheckpoint(monitor=MONITOR, mode="max", save_last=True, filename="best-{epoch:02d}"),
            EpochHistory(),
        ],
        "deterministic": True,
        "accelerator": "auto",
        "devices": 1,
    }


def run(argv: list[str]) -> int:
    """Run a LightningCLI subcommand (``fit``, ``validate``, ``test``) with ``argv``."""
    SpokenWordCLI(
        SpokenWordTask,
        AudioDataModule,
        seed_everything_default=0,
        trainer_defaults=trainer_defaults(),
        save_config_kwargs={"overwrite": True},
        args=argv,
        auto_configure_optimizers=False,
    )
    return 0

