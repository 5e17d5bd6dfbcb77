"""On-disk feature cache: features of a list of files, computed once and memory-mapped afterwards.

An entry is one ``.npy`` file named by a hash of the file list (path, size, modification time of
every file), the sample rate, the feature settings and the stored dtype, so any change to the data
or the settings makes a new entry. Features are extracted in worker processes and written chunk by
chunk straight into a memory-mapped temporary ``.npy`` (never the whole corpus in RAM), flushed,
fsync'ed and renamed into place only when complete, so a run killed mid-write never leaves an entry
that looks valid (temporary files are named ``.tmp-*`` and never read).

:class:`FeatureRows` reads rows of an entry with ``pread`` into fresh buffers, so a training process
holds one batch at a time and its resident memory does not grow with the corpus (the pages stay in
the kernel's page cache, shared and reclaimable, not in the process).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from spokenword import audio
from spokenword.datasets.base import DatasetError
from spokenword.features import FeatureSettings, extract

#: bump when feature code changes in a way that changes its output
FEATURE_CODE_VERSION = 2
#: dtypes an entry may be stored in (``float16`` halves the disk and page-cache footprint)
CACHE_DTYPES = ("float32", "float16")
#: clips per task sent to a worker process
CHUNK = 64


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


def _check_dtype(dtype: str | np.dtype | type) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.name not in CACHE_DTYPES:
        raise ValueError(f"cache dtype {dt.name!r} not supported; expected one of {CACHE_DTYPES}")
    return dt


class FeatureCache:
    """Features for lists of files, cached under ``directory``.

    Args:
        directory: where entries are kept (created on first write).
        workers: processes used to extract a new entry (default: all CPU cores, at most 8).
    """

    def __init__(self, directory: Path, workers: int | None = None):
        self.directory = Path(directory)
        self.workers = workers or min(8, os.cpu_count() or 1)

    def key(
        self, paths: Sequence[Path], sample_rate: int, settings: FeatureSettings, dtype: str = "float32"
    ) -> str:
        """Entry name: a hash of the file list, the rate (Hz), the settings and the stored dtype."""
        suffix = "" if _check_dtype(dtype).name == "float32" else f"|{np.dtype(dtype).name}"
        text = f"{files_digest(paths)}|{settings.digest(sample_rate)}|v{FEATURE_CODE_VERSION}{suffix}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def entry(self, paths: Sequence[Path], sample_rate: int, settings: FeatureSettings, dtype: str = "float32") -> Path:
        """Path of the ``.npy`` entry for these inputs (it may not exist yet)."""
        return self.directory / f"{self.key([Path(p) for p in paths], sample_rate, settings, dtype)}.npy"

    def features(
        self,
        paths: Sequence[Path],
        sample_rate: int,
        settings: FeatureSettings,
        *,
        desc: str = "features",
        dtype: str = "float32",
    ) -> np.memmap:
        """Features of ``paths`` in order: a read-only memory map ``(len(paths), *settings.shape)``.

        Computed (in parallel, with a progress bar) only when no complete entry exists.
        """
        paths = [Path(p) for p in paths]
        dt = _check_dtype(dtype)
        entry = self.entry(paths, sample_rate, settings, dt.name)
        shape = (len(paths), *settings.shape)
        cached = _open(entry, shape, dt)
        if cached is not None:
            return cached
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=self.directory)
        os.close(fd)
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dt, shape=shape)
            for start, block in self._blocks(paths, sample_rate, settings, desc):
                out[start : start + len(block)] = block
            out.flush()
            del out
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        result = _open(entry, shape, dt)
        assert result is not None
        return result

    def _blocks(
        self, paths: list[Path], sample_rate: int, settings: FeatureSettings, desc: str
    ) -> Iterator[tuple[int, np.ndarray]]:
        """``(first index, features of CHUNK clips)`` in order, extracted by worker processes."""
        chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
        tasks = [(c, sample_rate, settings) for c in chunks]
        with tqdm(total=len(paths), desc=f"extracting {desc} features", unit="clip", leave=False) as bar:
            if self.workers <= 1 or len(chunks) <= 1:
                results: Iterator[np.ndarray] = (_extract_chunk(t) for t in tasks)
                pool = None
            else:
                # forkserver: a clean process to fork from, so no OpenMP state of this one is inherited
                pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("forkserver"))
                # map() submits every task up front but results come back in order; each is written and
                # dropped as soon as it arrives, so memory holds at most the finished-but-unwritten blocks
                results = pool.map(_extract_chunk, tasks)
            try:
                for i, block in enumerate(results):
                    yield i * CHUNK, block
                    bar.update(len(block))
            finally:
                if pool is not None:
                    pool.shutdown(cancel_futures=True)


def _open(entry: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.memmap | None:
    """The entry memory-mapped read-only, or ``None`` if it is missing or not what is expected."""
    if not entry.exists():
        return None
    try:
        cached = np.load(entry, mmap_mode="r")
    except (ValueError, OSError):
        return None  # unreadable entry: rebuild it
    if cached.shape != shape or cached.dtype != dtype:
        return None
    return cached


class FeatureRows:
    """Rows of a cached ``.npy`` entry read on demand: ``rows[[3, 1, 2]]`` -> float32 ``(3, *shape[1:])``.

    Reads with ``os.pread`` (contiguous runs of rows in one call) into a new buffer, so nothing is
    kept between calls: the process's resident memory is one batch, whatever the corpus size.
    Picklable (it reopens the file), so DataLoader worker processes can use it.
    """

    def __init__(self, array: np.memmap):
        self.path = Path(array.filename)
        self.shape = tuple(array.shape)
        self.dtype = array.dtype
        self.offset = int(array.offset)
        self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self._fd: int | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None}

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        return self._fd

    def __getitem__(self, index: Sequence[int] | np.ndarray) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        out = np.empty((len(index), *self.shape[1:]), dtype=self.dtype)
        flat = out.reshape(len(index), -1).view(np.uint8)
        order = np.argsort(index, kind="stable")
        fd, i = self._file(), 0
        while i < len(order):  # one pread per run of consecutive rows
            j = i + 1
            while j < len(order) and index[order[j]] == index[order[j - 1]] + 1 and order[j] == order[j - 1] + 1:
                j += 1
            first = int(index[order[i]])
            data = os.pread(fd, self.row_bytes * (j - i), self.offset + first * self.row_bytes)
            flat[order[i] : order[i] + (j - i)] = np.frombuffer(data, dtype=np.uint8).reshape(j - i, -1)
            i = j
        return out if self.dtype == np.float32 else out.astype(np.float32)

    def blocks(self, size: int = 1024) -> Iterator[np.ndarray]:
        """All rows in order, ``size`` at a time (float32)."""
        for start in range(0, len(self), size):
            yield self[np.arange(start, min(start + size, len(self)))]

    def mean_std(self) -> tuple[float, float]:
        """Mean and standard deviation of every value, in float64, streaming over the rows."""
        total = total_sq = 0.0
        count = 0
        for block in self.blocks():
            b = block.astype(np.float64)
            total += float(b.sum())
            total_sq += float(np.square(b).sum())
            count += b.size
        mean = total / count
        return mean, float(np.sqrt(max(total_sq / count - mean * mean, 0.0) * count / max(count - 1, 1)))
