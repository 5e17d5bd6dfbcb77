"""EMAWeights: the averaged weights are the ones validated, saved, tested after fit and loaded."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from spokenword.training.callbacks import EMAWeights


class Recorder(pl.Callback):
    """Keeps a copy of the weights the model holds when a test starts."""

    def __init__(self) -> None:
        self.tested: dict[str, torch.Tensor] | None = None

    def on_test_start(self, trainer, pl_module) -> None:
        self.tested = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


def _trainer(tmp_path, *callbacks, epochs: int = 3) -> pl.Trainer:
    return pl.Trainer(
        default_root_dir=tmp_path, max_epochs=epochs, limit_train_batches=8, limit_val_batches=2, limit_test_batches=2,
        callbacks=list(callbacks), logger=False, enable_progress_bar=False, enable_model_summary=False,
        accelerator="cpu", devices=1,
    )


def test_test_after_fit_scores_the_averaged_weights(tmp_path):
    torch.manual_seed(0)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    recorder = Recorder()
    trainer = _trainer(tmp_path, EMAWeights(decay=0.9), checkpoint, recorder)
    model = BoringModel()
    trainer.fit(model)
    saved = torch.load(checkpoint.last_model_path, weights_only=False)
    averaged, raw = saved["state_dict"], saved["current_model_state"]
    assert any(not torch.equal(averaged[k], raw[k]) for k in averaged)  # the average differs from the raw weights

    trainer.test(model, ckpt_path=checkpoint.last_model_path, verbose=False)
    assert recorder.tested is not None
    for name, value in averaged.items():
        assert torch.equal(recorder.tested[name], value), name  # Lightning's own callback would test `raw`


def test_resuming_fit_restores_the_raw_weights_and_the_average(tmp_path):
    torch.manual_seed(0)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    _trainer(tmp_path, EMAWeights(decay=0.9), checkpoint, epochs=2).fit(BoringModel())
    saved = torch.load(checkpoint.last_model_path, weights_only=False)

    class Probe(pl.Callback):
        average: dict[str, torch.Tensor] | None = None

        def on_train_start(self, trainer, pl_module) -> None:
            self.weights = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            averaged = ema._average_model.module.state_dict()  # Lightning's AveragedModel of the callback
            self.average = {k: v.detach().clone() for k, v in averaged.items()}

    probe = Probe()
    ema = EMAWeights(decay=0.9)
    _trainer(tmp_path, ema, ModelCheckpoint(dirpath=tmp_path / "again"), probe, epochs=3).fit(
        BoringModel(), ckpt_path=checkpoint.last_model_path
    )
    for name, value in saved["current_model_state"].items():
        assert torch.equal(probe.weights[name], value), name  # training goes on from the raw weights
    assert probe.average is not None
    for name, value in saved["state_dict"].items():
        assert torch.equal(probe.average[name], value), name  # and the average goes on from the saved average
