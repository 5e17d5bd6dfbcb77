"""A tiny ``spokenword fit`` on FSDD in a subprocess, shared by the resume and reproducibility tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 4


def fit_command(out: Path, data_root: Path, cache: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "spokenword.cli", "fit", "--config", str(REPO / "configs" / "fsdd_cnn.yaml"),
        "--trainer.max_epochs", str(EPOCHS),
        "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(out),
        "--data.root", str(data_root),
        "--data.cache_dir", str(cache),
        *extra,
    ]


def env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def run_fit(out: Path, data_root: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(fit_command(out, data_root, cache, *extra), env=env(), capture_output=True, text=True,
                          timeout=600, cwd=REPO)


def only_run(out: Path) -> Path:
    (run,) = list(out.glob("*/version_*"))
    return run


def metrics(run: Path) -> dict:
    """The report's numbers that must not depend on interruption or on which rerun it is."""
    report = json.loads((run / "report.json").read_text())
    history = [{k: v for k, v in row.items() if "time" not in k and "seconds" not in k} for row in report["history"]]
    return {"test": report["test"], "validation": report["validation"], "per_class": report["per_class"],
            "confusion_matrix": report["confusion_matrix"], "epochs": report["epochs"], "history": history}
