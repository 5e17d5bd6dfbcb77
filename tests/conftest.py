"""Shared fixtures: synthetic audio, the real FSDD copy and a small trained checkpoint.

Integration tests need FSDD at ``$SPOKENWORD_DATA/fsdd/recordings`` (``make test`` points it at
``../shared/data`` when that exists); without it they are skipped with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


def batch_atol(reference) -> float:
    """Tolerance between a clip's features (or what follows from them) computed in a padded batch and alone:
    float32 convolution rounds by the batch's padded length and the CPU's kernels (seen up to ~4e-4 of the
    scale, in the quietest bands after the log); leaked padding or another clip's frames differ by the scale."""
    return 1e-3 * max(1.0, float(np.abs(np.asarray(reference)).max()))


def tone(seconds: float = 0.5, rate: int = 8000, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine of ``seconds`` at ``rate`` Hz."""
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int = 8000, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, subtype=subtype)
    return path


@pytest.fixture(scope="session")
def fsdd_root() -> Path:
    """The data root holding ``fsdd/recordings`` (skips when FSDD is not available)."""
    root = Path(os.environ.get("SPOKENWORD_DATA") or REPO.parent / "shared" / "data").resolve()
    if not (root / "fsdd" / "recordings").is_dir():
        pytest.skip(f"FSDD not found under {root}; set SPOKENWORD_DATA")
    return root


@pytest.fixture(scope="session")
def fsdd_recordings(fsdd_root: Path) -> Path:
    return fsdd_root / "fsdd" / "recordings"


@pytest.fixture(scope="session")
def trained_run(fsdd_root: Path, tmp_path_factory) -> Path:
    """Run folder of a short reference training (3 epochs, official split) through the CLI."""
    from spokenword.cli import main

    out = tmp_path_factory.mktemp("trained")
    code = main([
        "fit", "--config", str(REPO / "configs" / "fsdd_cnn.yaml"),
        "--trainer.max_epochs", "3",
        "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(out),
        "--data.root", str(fsdd_root),
        "--data.cache_dir", str(out / "cache"),
    ])
    assert code == 0
    (run,) = list(out.glob("*/version_*"))
    return run


@pytest.fixture(scope="session")
def trained_checkpoint(trained_run: Path) -> Path:
    """The best checkpoint of :func:`trained_run` (official-split accuracy well above chance)."""
    (best,) = list((trained_run / "checkpoints").glob("best-*.ckpt"))
    return best
