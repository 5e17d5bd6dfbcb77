"""``report.json``, the plots beside it and the terminal summary of a run.

Torch-free at import (torch is imported where a report is built), so :mod:`spokenword.training.plots`
and readers of ``report.json`` can use the metric names without loading Lightning.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from spokenword.training.metrics import ACC, LOSS

REPORT_NAME = "report.json"


def build(trainer, task, datamodule, history, checkpoint: str | None) -> dict:
    """Gather everything a run should report (see docs/training.md, "Reports")."""
    import torch

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    results = task.test_results or {}
    labels = list(task.labels)

    def per_class(name: str) -> dict[str, float]:
        values = results.get(name)
        return {label: float(v) for label, v in zip(labels, values.tolist())} if values is not None else {}

    confusion = results.get("confusion")
    split = datamodule.split
    epochs = history.epochs if history else []
    last = epochs[-1] if epochs else {}
    best_val = max((row.get(f"val/{ACC}", float("nan")) for row in epochs), default=None)
    return {
        "split": split.name,
        "protocol": split.protocol,
        "test": {
            ACC: float(results[ACC]) if ACC in results else metrics.get(f"test/{ACC}"),
            LOSS: metrics.get(f"test/{LOSS}"),
            "count": len(split.test),
        },
        "validation": {
            ACC: last.get(f"val/{ACC}"),
            LOSS: last.get(f"val/{LOSS}"),
            f"best_{ACC}": best_val,
            "count": len(split.val),
        },
        "train_count": len(split.train),
        "per_class": {"precision": per_class("precision"), "recall": per_class("recall"), "f1": per_class("f1")},
        "labels": labels,
        "confusion_matrix": confusion.tolist() if confusion is not None else None,
        "parameters": task.num_parameters,
        "epochs": len(epochs),
        "training_seconds": round(history.seconds, 2) if history else None,
        "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else None,
        "sample_rate": task.sample_rate,
        "features": task.features.to_dict(),
        "history": epochs,
        "torch_threads": torch.get_num_threads(),
    }


def write(result: dict, run_dir: Path) -> Path:
    """Write ``report.json`` atomically and the plots into ``run_dir``."""
    from spokenword.training import plots

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / REPORT_NAME
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".json", dir=run_dir)
    with os.fdopen(fd, "w") as handle:
        json.dump(result, handle, indent=2)
    os.replace(tmp, path)
    if result.get("history"):
        plots.training_curves(result["history"], run_dir)
    if result.get("confusion_matrix"):
        plots.confusion_matrix(result["confusion_matrix"], result["labels"], run_dir / "confusion_matrix.png",
                               title=f"Test split ({result['split']})")
    return path


def summary(result: dict, run_dir: Path) -> str:
    """A short table for the terminal."""
    def pct(value) -> str:
        return f"{100 * value:6.2f}%" if isinstance(value, (int, float)) else "     -"

    def num(value) -> str:
        return f"{value:7.4f}" if isinstance(value, (int, float)) else "      -"

    rows = [
        f"spokenword report: {run_dir}",
        f"  split       {result['split']}: {result['protocol']}",
        f"  {'part':<10}{'count':>7}{'accuracy':>10}{'loss':>9}",
        f"  {'test':<10}{result['test']['count']:>7}{pct(result['test'][ACC]):>10}{num(result['test'][LOSS]):>9}",
        f"  {'val':<10}{result['validation']['count']:>7}{pct(result['validation'][ACC]):>10}{num(result['validation'][LOSS]):>9}",
        f"  parameters  {result['parameters']:,}   epochs {result['epochs']}   "
        f"training {result['training_seconds'] if result['training_seconds'] is not None else '-'} s",
    ]
    if result.get("checkpoint"):
        rows.append(f"  checkpoint  {result['checkpoint']}")
    return "\n".join(rows)
