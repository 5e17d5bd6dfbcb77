"""spokenword.runtime.model_file: a training run's folder names its best checkpoint."""

from __future__ import annotations

import json

import pytest

from spokenword.inference.base import ModelError
from spokenword.inference.load import model_file


def _run(folder, best: str, relative: bool = False):
    (folder / "checkpoints").mkdir(parents=True)
    checkpoint = folder / "checkpoints" / best
    checkpoint.write_bytes(b"weights")
    recorded = f"runs/x/{folder.name}/checkpoints/{best}" if relative else str(checkpoint)
    (folder / "report.json").write_text(json.dumps({"checkpoint": recorded}))
    return checkpoint


def test_files_are_themselves_and_run_folders_their_best_checkpoint(tmp_path):
    assert model_file(tmp_path / "model.onnx") == tmp_path / "model.onnx"
    experiment = tmp_path / "fsdd_cnn"
    two = _run(experiment / "version_2", "best-epoch=7.ckpt")
    ten = _run(experiment / "version_10", "best-epoch=3.ckpt", relative=True)  # fit ran elsewhere: found in its folder
    (experiment / "version_11").mkdir()  # still training: no report yet
    assert model_file(experiment / "version_2") == two
    assert model_file(experiment) == ten  # the newest finished run, by number (10 after 2)


def test_a_folder_without_a_finished_run_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="without a finished training run"):
        model_file(tmp_path)
    run = tmp_path / "version_0"
    run.mkdir()
    (run / "report.json").write_text("{}")
    with pytest.raises(ModelError, match="no checkpoint"):
        model_file(run)
    (run / "report.json").write_text(json.dumps({"checkpoint": "/gone/best-epoch=1.ckpt"}))
    with pytest.raises(ModelError, match="best-epoch=1.ckpt is not in"):
        model_file(run)
