"""Figures: training curves and confusion matrices of a run, and the dataset illustrations of
``spokenword figures``. Every function writes a PNG and returns its path."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from spokenword.labels import NAMES  # noqa: E402
from spokenword.training.metrics import ACC, LOSS  # noqa: E402


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` (PNG, 120 dpi; folders made as needed), close it and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path




def training_curves(history: Sequence[dict], run_dir: Path) -> list[Path]:
    """``loss.png`` and ``accuracy.png``: train and validation value per epoch."""
    epochs = [int(row["epoch"]) + 1 for row in history]
    out = []
    for metric, name, ylabel in ((LOSS, "loss.png", "cross-entropy loss"), (ACC, "accuracy.png", "accuracy (%)")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for stage, style in (("train", "-o"), ("val", "-s")):
            values = [row.get(f"{stage}/{metric}") for row in history]
            if all(v is None for v in values):
                continue
            values = [np.nan if v is None else (100 * v if metric == ACC else v) for v in values]
            ax.plot(epochs, values, style, markersize=3, label="validation" if stage == "val" else "train")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{'Loss' if metric == LOSS else 'Accuracy'} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
        out.append(save_figure(fig, Path(run_dir) / name))
    return out


def confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str = "") -> Path:
    """Counts (left) and row-normalised recall per true class (right)."""
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, data, fmt, name in ((axes[0], counts, "{:.0f}", "counts"), (axes[1], normalised, "{:.2f}", "row-normalised")):
        image = ax.imshow(data, cmap="Blues")
        fig.colorbar(image, ax=ax, fraction=0.046)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted label")
        ax.set_ylabel("true label")
        ax.set_title(f"{title} {name}".strip())
        if len(labels) <= 20:
            threshold = data.max() / 2 if data.size else 0
            for i in range(data.shape[0]):
                for j in range(data.shape[1]):
                    if data[i, j]:
                        ax.text(j, i, fmt.format(data[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if data[i, j] > threshold else "black")
    return save_figure(fig, path)


def det_plot(curve: dict, path: Path, threshold: float | None = None) -> Path:
    """A DET curve (:meth:`spokenword.inference.evaluate.Evaluation.det`): false accepts of other words
    and of noise (x) against false rejects of words (y), in %, one point per threshold; ``threshold``
    is marked. Both axes logarithmic (zero shown at the bottom/left edge), as DET plots are."""
    floor = 0.05  # % shown for a rate of 0: a log axis has no zero
    fig, ax = plt.subplots(figsize=(5.5, 5))
    thresholds = np.asarray(curve["threshold"])
    rejects = np.maximum(100 * np.asarray(curve["false_reject"], dtype=float), floor)
    for label, name in NAMES.items():
        accepts = np.asarray(curve.get(label, []), dtype=float)
        if not accepts.size or np.isnan(accepts).all():
            continue
        accepts = np.maximum(100 * accepts, floor)
        (line,) = ax.plot(accepts, rejects, "-", label=name)
        if threshold is not None:
            i = int(np.argmin(np.abs(thresholds - threshold)))
            ax.plot(accepts[i], rejects[i], "o", color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("false accepts (%): not a word, answered with a word")
    ax.set_ylabel("false rejects (%): a word, answered not a word")
    ax.set_title("DET" + (f" (dot: reject below {threshold:g})" if threshold is not None else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save_figure(fig, path)
