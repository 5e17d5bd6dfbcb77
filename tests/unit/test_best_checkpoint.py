"""BestCheckpoint keeps the latest of equally good epochs; last_checkpoint writes every epoch;
best_model_path picks the checkpoint a finished fit is tested with."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from spokenword.training.checkpointing import BestCheckpoint, best_model_path, last_checkpoint


class Scripted(BoringModel):
    """Logs a given validation score per epoch, as a saturating accuracy would."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores = scores

    def on_validation_epoch_end(self) -> None:
        self.log("val/acc", self.scores[self.current_epoch])


def _fit(tmp_path, scores: list[float], *callbacks) -> None:
    torch.manual_seed(0)
    trainer = pl.Trainer(
        default_root_dir=tmp_path, max_epochs=len(scores), limit_train_batches=2, limit_val_batches=1,
        callbacks=list(callbacks), logger=False, enable_progress_bar=False, enable_model_summary=False,
        accelerator="cpu", devices=1, num_sanity_val_steps=0,
    )
    trainer.fit(Scripted(scores))


def _epoch(path) -> int:
    return int(torch.load(path, weights_only=False)["epoch"])


def test_a_tie_with_the_best_score_keeps_the_later_epoch(tmp_path):
    best = BestCheckpoint(monitor="val/acc", dirpath=tmp_path / "ckpt")
    _fit(tmp_path, [0.5, 1.0, 1.0, 0.9, 1.0, 0.8], best)
    assert best.best_model_path.endswith("best-epoch=04.ckpt")  # Lightning's own keeps epoch 01
    assert float(best.best_model_score) == 1.0
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["best-epoch=04.ckpt"]  # one file, no last


def test_a_lower_score_never_replaces_the_best(tmp_path):
    best = BestCheckpoint(monitor="val/acc", dirpath=tmp_path / "ckpt")
    _fit(tmp_path, [0.7, 0.9, 0.6, 0.89], best)
    assert best.best_model_path.endswith("best-epoch=01.ckpt")


def test_mode_min_keeps_the_later_of_equal_losses(tmp_path):
    best = BestCheckpoint(monitor="val/acc", mode="min", dirpath=tmp_path / "ckpt")
    _fit(tmp_path, [0.5, 0.2, 0.3, 0.2], best)
    assert best.best_model_path.endswith("best-epoch=03.ckpt")


def test_last_checkpoint_is_the_final_epoch_even_when_the_score_stopped_improving(tmp_path):
    best = BestCheckpoint(monitor="val/acc", dirpath=tmp_path / "ckpt")
    last = last_checkpoint()
    last.dirpath = str(tmp_path / "ckpt")
    _fit(tmp_path, [1.0, 0.5, 0.5, 0.5], best, last)
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["best-epoch=00.ckpt", "last.ckpt"]
    assert _epoch(tmp_path / "ckpt" / "best-epoch=00.ckpt") == 0
    assert _epoch(tmp_path / "ckpt" / "last.ckpt") == 3  # the resume point is where training stopped


def test_more_than_one_best_checkpoint_is_refused():
    with pytest.raises(ValueError, match="save_top_k=1"):
        BestCheckpoint(monitor="val/acc", save_top_k=3)


def test_the_tested_checkpoint_is_a_configs_own_monitored_one_else_the_default_best(tmp_path):
    """``fit``'s test and report use the first monitored checkpoint callback: LightningCLI lists a
    config's own callbacks before the defaults (``BestCheckpoint``, ``last_checkpoint``)."""
    own = ModelCheckpoint(monitor="val/acc", mode="min", dirpath=tmp_path / "own", filename="own-{epoch}")
    best = BestCheckpoint(monitor="val/acc", dirpath=tmp_path / "best")
    last = last_checkpoint()
    last.dirpath = str(tmp_path / "last")
    _fit(tmp_path, [0.5, 1.0, 0.7], own, best, last)
    assert own.best_model_path.endswith("own-epoch=0.ckpt")  # its own rule: the lowest score
    assert best.best_model_path.endswith("best-epoch=01.ckpt")
    assert best_model_path([own, best, last]) == own.best_model_path
    assert best_model_path([best, last]) == best.best_model_path
    assert best_model_path([last]) is None  # nothing selected: test the final weights


def test_a_configs_own_checkpoint_comes_before_the_default_best_in_the_cli(tmp_path, monkeypatch):
    """The order ``best_model_path`` relies on, as ``spokenword fit`` builds the trainer."""
    from pathlib import Path

    from spokenword.data.datamodule import AudioDataModule
    from spokenword.training.task import SpokenWordTask
    from spokenword.training.cli import SpokenWordCLI, trainer_defaults
    from tests.conftest import tone, write_wav

    for digit in range(10):  # the labels are read from the file names when the datamodule is linked
        write_wav(tmp_path / "fsdd" / "recordings" / f"{digit}_synth_0.wav", tone(0.2, freq=300.0 + 50 * digit))
    monkeypatch.chdir(tmp_path)
    config = Path(__file__).resolve().parents[2] / "configs" / "fsdd_cnn.yaml"
    args = ["--config", str(config), "--data.root", str(tmp_path), "--trainer.logger=false",
            "--data.corpus=spokenword.data.corpora.FSDD", "--data.corpus.validate=false",  # 10 clips, not FSDD's 3000
            "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint", "--trainer.callbacks.monitor=val/loss"]
    cli = SpokenWordCLI(SpokenWordTask, AudioDataModule, run=False, args=args, auto_configure_optimizers=False,
                        trainer_defaults=trainer_defaults())
    monitored = [c for c in cli.trainer.checkpoint_callbacks if c.monitor is not None]
    assert [c.monitor for c in monitored] == ["val/loss", "val/acc"]
    assert isinstance(monitored[1], BestCheckpoint)
