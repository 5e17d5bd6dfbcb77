"""Where a run came from: package versions, git commit and a hash of the data and features.

:func:`collect` gathers it; the run folder gets it as ``run_info.json`` and ``report.json`` embeds
it under ``"provenance"``, so two runs' numbers can be traced to the same code and data.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Iterable

RUN_INFO_NAME = "run_info.json"
#: distributions whose versions change results
PACKAGES = ("spokenword", "torch", "lightning", "torchmetrics", "numpy", "soundfile", "soxr", "jsonargparse")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def cpu() -> dict:
    """The processor this process computes on: its model, the instruction set torch's CPU kernels use
    (``"AVX2"``, ``"AVX512"``, ...) and torch's thread count. Float rounding, and so the accuracy a
    seed reaches, differs between thread counts and between CPUs whose kernels differ: a run
    reproduces exactly only on the same kind of CPU with the same threads."""
    import torch

    return {"model": cpu_model(), "capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(folder: Path | None = None) -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the repository holding ``folder`` (default: this
    package's source); ``None`` when it is not a git checkout or git is missing."""
    folder = Path(folder or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}


def data_hash(parts: dict[str, list], sample_rate: int, features: dict) -> str:
    """SHA-256 over each split part's recordings (part, file name, label, content) and the feature
    settings: equal hashes mean the model saw the same data, prepared the same way."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"sample_rate": int(sample_rate), "features": features}, sort_keys=True).encode())
    for part in sorted(parts):
        for rec in sorted(parts[part], key=lambda r: str(r.path)):
            digest.update(f"{part}\0{Path(rec.path).name}\0{rec.label}\0".encode())
            digest.update(hashlib.sha256(Path(rec.path).read_bytes()).digest())
    return digest.hexdigest()


def collect(datamodule=None, task=None) -> dict:
    """Provenance of the current process; with the data module and task, the data/feature hash too."""
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu(),
        "packages": package_versions(),
        "git": git_commit(),
    }
    split = getattr(datamodule, "split", None)
    if split is not None and task is not None:
        parts = {name: list(getattr(split, name)) for name in ("train", "val", "test")}
        info["data"] = {name: len(recs) for name, recs in parts.items()}
        info["data_hash"] = data_hash(parts, task.sample_rate, task.features.to_dict())
    return info


def write(info: dict, run_dir: Path) -> Path:
    """Write ``run_info.json`` atomically into ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".run_info-", suffix=".json", dir=run_dir)
    with os.fdopen(fd, "w") as handle:
        json.dump(info, handle, indent=2)
    path = run_dir / RUN_INFO_NAME
    os.replace(tmp, path)
    return path
