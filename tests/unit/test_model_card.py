"""``spokenword export`` writes a model card (``MODEL.onnx.md``) next to every export."""

from __future__ import annotations

import json

import torch

from spokenword.cli import main
from spokenword.inference.card import card_path
from tests.unit.test_checkpoint_migration import checkpoint_dict


def test_export_writes_a_card_beside_the_model(tmp_path, capsys):
    run = tmp_path / "runs" / "demo" / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    checkpoint = run / "checkpoints" / "best.ckpt"
    torch.save(checkpoint_dict(), checkpoint)
    report = {"split": "official", "protocol": "test = takes 0-4", "test": {"acc": 0.9, "count": 300},
              "validation": {"acc": 0.95, "count": 300}, "train_count": 2400, "epochs": 3,
              "checkpoint": str(checkpoint)}
    (run / "report.json").write_text(json.dumps(report))
    out = tmp_path / "model.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    card = card_path(out)
    assert card.name == "model.onnx.md" and str(card) in printed
    text = card.read_text()
    metadata = json.loads((tmp_path / "model.onnx.json").read_text())
    assert metadata["parameters"] > 0 and metadata["network"].startswith("spokenword.models")
    for needed in ("labels: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9", "sample rate: 8000 Hz", "n_fft=", "parameters",
                   "CC BY-SA 4.0", "90.00 % on 300 clips", "takes 0-4", "Intended use", "8 kHz",
                   "pretrained weights: none"):
        assert needed in text, needed
