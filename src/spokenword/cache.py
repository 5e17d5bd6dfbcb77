"""On-disk feature cache: features of a list of files, computed once and memory-mapped afterwards.

An entry is one ``.npy`` file named by a hash of the file list (path, size, modification time of
every file), the sample rate and the feature settings, so any change to the data or the settings
makes a new entry. Entries are written to a temporary file and renamed into place only when
complete, so a run killed mid-write never leaves an entry that looks valid.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from spokenword import audio
from spokenword.datasets.base import DatasetError
from spokenword.features import FeatureSettings, extract

#: bump when feature code changes in a way that changes its output
FEATURE_CODE_VERSION = 2


def files_digest(paths: Sequence[Path]) -> str:
    """SHA-256 over each file's path, size and modification time (ns)."""
    h = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
        except OSError as err:
            raise DatasetError(f"{p}: cannot be read ({err.strerror})") from None
        h.update(f"{os.fspath(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def extract_file(path: Path, sample_rate: int, settings: FeatureSettings) -> np.ndarray:
    """Load one file and return its features, shape ``settings.shape``, float32."""
    try:
        wave = audio.load(path, sample_rate)
    except audio.AudioError as err:
        raise DatasetError(str(err)) from None
    return extract(torch.from_numpy(wave), sample_rate, settings).numpy()


def _extract_chunk(args: tuple[list[Path], int, FeatureSettings]) -> np.ndarray:
    paths, sample_rate, settings = args
    torch.set_num_threads(1)
    return np.stack([extract_file(p, sample_rate, settings) for p in paths])


class FeatureCache:
    """Features for lists of files, cached under ``directory``.

    Args:
        directory: where entries are kept (created on first write).
        workers: processes used to extract a new entry (default: all CPU cores, at most 8).
    """

    def __init__(self, directory: Path, workers: int | None = None):
        self.directory = Path(directory)
        self.workers = workers or min(8, os.cpu_count() or 1)

    def key(self, paths: Sequence[Path], sample_rate: int, settings: FeatureSettings) -> str:
        text = f"{files_digest(paths)}|{settings.digest(sample_rate)}|v{FEATURE_CODE_VERSION}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def features(
        self, paths: Sequence[Path], sample_rate: int, settings: FeatureSettings, *, desc: str = "features"
    ) -> np.ndarray:
        """Features of ``paths`` in order: a read-only array ``(len(paths), *settings.shape)``."""
        paths = [Path(p) for p in paths]
        entry = self.directory / f"{self.key(paths, sample_rate, settings)}.npy"
        if entry.exists():
            try:
                cached = np.load(entry, mmap_mode="r")
                if cached.shape == (len(paths), *settings.shape):
                    return cached
            except (ValueError, OSError):
                pass  # unreadable entry: rebuild it
        array = self._compute(paths, sample_rate, settings, desc)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, array)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return np.load(entry, mmap_mode="r")

    def _compute(self, paths: list[Path], sample_rate: int, settings: FeatureSettings, desc: str) -> np.ndarray:
        chunk = 64
        chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
        out = np.empty((len(paths), *settings.shape), dtype=np.float32)
        with tqdm(total=len(paths), desc=f"extracting {desc} features", unit="clip", leave=False) as bar:
            if self.workers <= 1 or len(chunks) <= 1:
                results = (_extract_chunk((c, sample_rate, settings)) for c in chunks)
                for i, block in enumerate(results):
                    out[i * chunk : i * chunk + len(block)] = block
                    bar.update(len(block))
            else:
                # forkserver: a clean process to fork from, so no OpenMP state of this one is inherited
                with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
                    for i, block in enumerate(pool.map(_extract_chunk, [(c, sample_rate, settings) for c in chunks])):
                        out[i * chunk : i * chunk + len(block)] = block
                        bar.update(len(block))
        return out
