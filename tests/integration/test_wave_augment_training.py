"""Training with waveform augmentation: fresh perturbed batches every epoch, clean evaluation."""

from __future__ import annotations

import json
import os

import pytest
import torch

from spokenword.cli import main
from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_wave_augmented_training_learns_and_is_reproducible(fsdd_root, tmp_path):
    def fit(name: str) -> dict:
        code = main([
            "fit", "--config", str(REPO / "configs" / "fsdd_cnn_newvoices.yaml"),  # waveform augmentation, 1 worker
            "--model.lr_scheduler", "null", "--model.optimizer.lr", "0.002",  # constant rate: 2 short epochs
            "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "12",
            "--trainer.enable_progress_bar", "false",
            "--trainer.logger.init_args.save_dir", str(tmp_path), "--trainer.logger.init_args.name", name,
            "--data.root", str(fsdd_root), "--data.cache_dir", str(tmp_path / "cache"),
        ])
        assert code == 0
        return json.loads((tmp_path / name / "version_0" / "report.json").read_text())

    threads = torch.get_num_threads()
    first, second = fit("a"), fit("b")
    assert torch.get_num_threads() == threads  # restored after fit
    if "OMP_NUM_THREADS" not in os.environ:  # one core left to the DataLoader worker, and recorded
        run_info = json.loads((tmp_path / "a" / "version_0" / "run_info.json").read_text())
        assert first["torch_threads"] == run_info["cpu"]["threads"] == max(1, threads - 1)
    # the precision it trained in: the config's bf16, or float32 where this CPU would emulate bf16
    from spokenword.training.cli import cpu_has_native_bf16

    assert first["provenance"]["precision"] == ("bf16-mixed" if cpu_has_native_bf16() else "32-true")
    assert first["test"]["acc"] > 0.2  # chance is 0.1; 24 heavily perturbed batches get well above it
    assert first["test"]["count"] == 300 and first["validation"]["count"] == 300
    # the same seed gives the same perturbations, in the worker process too
    assert first["test"]["acc"] == second["test"]["acc"]
    assert first["history"][-1]["train/loss"] == second["history"][-1]["train/loss"]
