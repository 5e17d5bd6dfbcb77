"""The short reference training run (conftest ``trained_run``): report, plots, checkpoints, config."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from spokenword.training.metrics import ACC, LOSS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report(trained_run) -> dict:
    return json.loads((trained_run / "report.json").read_text())


def test_report_says_what_was_measured(report):
    assert report["split"] == "official" and "test never used" in report["protocol"]
    assert report["test"]["count"] == 300 and report["validation"]["count"] == 300 and report["train_count"] == 2400
    assert report["test"][ACC] > 0.5  # chance is 0.1; 3 epochs reach well above it
    assert report["test"][LOSS] > 0 and report["validation"][ACC] > 0.5
    assert report["parameters"] == 84_682
    assert report["epochs"] == 3 and len(report["history"]) == 3
    assert report["training_seconds"] > 0
    assert report["labels"] == [str(d) for d in range(10)]
    assert report["sample_rate"] == 8000 and report["features"]["kind"] == "stft"


def test_report_per_class_metrics_and_confusion(report):
    for name in ("precision", "recall", "f1"):
        values = report["per_class"][name]
        assert list(values) == report["labels"] and all(0.0 <= v <= 1.0 for v in values.values())
    matrix = report["confusion_matrix"]
    assert len(matrix) == 10 and all(len(row) == 10 for row in matrix)
    assert sum(map(sum, matrix)) == 300 and all(sum(row) == 30 for row in matrix)
    assert sum(matrix[i][i] for i in range(10)) / 300 == pytest.approx(report["test"][ACC], abs=1e-6)


def test_run_folder_holds_plots_checkpoints_and_resolved_config(trained_run, report):
    for name in ("loss.png", "accuracy.png", "confusion_matrix.png"):
        assert (trained_run / name).stat().st_size > 5_000
    checkpoints = {p.name for p in (trained_run / "checkpoints").iterdir()}
    assert "last.ckpt" in checkpoints and len([n for n in checkpoints if n.startswith("best-")]) == 1
    last = torch.load(trained_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 2  # written after the final epoch, whichever epoch validated best
    assert report["checkpoint"].endswith(".ckpt") and "best-" in report["checkpoint"]
    config = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert config["trainer"]["max_epochs"] == 3 and config["data"]["split"] == "official"
    assert config["model"]["net"]["class_path"] == "spokenword.models.SpectrogramCNN"
    history = report["history"]
    assert all(f"train/{ACC}" in row and f"val/{LOSS}" in row for row in history)
