"""Two-process DDP on CPU (gloo) through the CLI and the worked example config: it learns, every
validation/test recording is counted once, and one process writes the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spokenword.training.metrics import ACC

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_two_process_ddp_on_cpu_learns_and_counts_each_recording_once(fsdd_root, tmp_path):
    env = {**os.environ, "SPOKENWORD_DATA": str(fsdd_root), "SPOKENWORD_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    command = [
        str(Path(sys.executable).parent / "spokenword"), "fit",
        "--config", str(REPO / "configs/fsdd_cnn_ddp.yaml"),
        "--trainer.max_epochs", "4",
        "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"),
    ]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = list((tmp_path / "runs").rglob("report.json"))
    assert len(reports) == 1  # written once, by rank 0
    report = json.loads(reports[0].read_text())
    assert report["epochs"] == 4 and report["split"] == "official"
    assert report["test"][ACC] > 0.6 and report["validation"][ACC] > 0.6  # chance is 0.1
    matrix = report["confusion_matrix"]
    assert sum(map(sum, matrix)) == 300 and all(sum(row) == 30 for row in matrix)  # synced, no duplicates
    assert sum(matrix[i][i] for i in range(10)) / 300 == pytest.approx(report["test"][ACC], abs=1e-6)
