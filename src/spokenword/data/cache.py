"""On-disk feature cache: features of a list of files, computed once and memory-mapped afterwards.

An entry is one ``.npy`` file named by a hash of the file list (path, size, modification time of
every file), the sample rate, the feature settings and the stored dtype, so any change to the data
or the settings makes a new entry. Features are extracted a chunk of files at a time, through the
inference front end (:func:`~spokenword.frontend.graph.extract_batch`), by the calling process and, for a
long list, worker processes beside it, and written chunk by chunk (``pwrite``) into a temporary
``.npy`` (never the whole corpus in the process's memory), fsync'ed and renamed into place only
when complete, so a run killed mid-write never leaves an entry that looks valid (temporary files are
named ``.tmp-*`` and never read).

:class:`FeatureRows` reads rows of an entry with ``pread`` into fresh buffers, so a training process
holds one batch at a time and its resident memory does not grow with the corpus (the pages stay in
the kernel's page cache, shared and reclaimable, not in the process).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import multiprocessing
import os
import tempfile
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from spokenword import audio
from spokenword.data.corpora.base import DatasetError
from spokenword.frontend.settings import FeatureSettings
from spokenword.frontend.graph import extract, extract_batch

#: bump when feature code changes in a way that changes its output
FEATURE_CODE_VERSION = 6
#: dtypes an entry may be stored in (``float16`` halves the disk and page-cache footprint)
CACHE_DTYPES = ("float32", "float16")
#: clips per task sent to a worker process
CHUNK = 64
#: shortest list extracted with worker processes: starting them costs about a second of CPU (the
#: fork server imports torch), which this process alone spends on ~3,000 clips of 1 s
PARALLEL_MIN = 4096


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


def _decoded(path: Path, sample_rate: int) -> np.ndarray:
    """:func:`spokenword.audio.load`, its errors as :class:`DatasetError`."""
    try:
        return audio.load(path, sample_rate)
    except audio.AudioError as err:
        raise DatasetError(str(err)) from None


def extract_file(path: Path, sample_rate: int, settings: FeatureSettings) -> np.ndarray:
    """Load one file and return its features, shape ``settings.shape``, float32."""
    return extract(_decoded(path, sample_rate), sample_rate, settings).numpy()


def _extract_chunk(args: tuple[list[Path], int, FeatureSettings]) -> np.ndarray:
    """Features of a few files, ``(len(paths), *settings.shape)`` float32, extracted together
    (:func:`~spokenword.frontend.graph.extract_batch`)."""
    paths, sample_rate, settings = args
    return extract_batch([_decoded(p, sample_rate) for p in paths], sample_rate, settings).numpy()


def _read_ahead(paths: Sequence[Path]) -> None:
    """Ask the kernel to read these files into its page cache in the background (``posix_fadvise``
    ``WILLNEED``): files not read recently then come from memory, not one disk read after another."""
    if not hasattr(os, "posix_fadvise"):
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # reported when the file is read
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


def _worker_init() -> None:
    torch.set_num_threads(1)  # one process per core: no intra-op threads on top


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """The calling process extracts with one torch thread, as the workers do; its own setting is
    restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver: a clean process to fork from, so no OpenMP state of this one is inherited. The
    server imports torch and this module once, so each worker starts in milliseconds rather than
    re-importing them (about 1 s each); a server already running is used as it is."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _check_dtype(dtype: str | np.dtype | type) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.name not in CACHE_DTYPES:
        raise ValueError(f"cache dtype {dt.name!r} not supported; expected one of {CACHE_DTYPES}")
    return dt


class FeatureCache:
    """Features for lists of files, cached under ``directory``.

    Args:
        directory: where entries are kept (created on first write).
        workers: processes extracting a new entry, the calling one included (default: all CPU cores,
            at most 8); lists shorter than ``PARALLEL_MIN`` clips are extracted by the calling one alone,
            unless workers are already up (:meth:`shared_workers`).
    """

    def __init__(self, directory: Path, workers: int | None = None):
        self.directory = Path(directory)
        self.workers = workers or min(8, os.cpu_count() or 1)
        self._sharing = False
        self._shared: _PoolStarter | None = None

    @contextlib.contextmanager
    def shared_workers(self) -> Iterator["FeatureCache"]:
        """Within this block, worker processes started for one list of files serve the lists after
        it too (the parts of a split), and are shut down at its end. Once they are up, a list
        shorter than ``PARALLEL_MIN`` is extracted in parallel as well: the validation and test
        parts of a large corpus (a tenth each of Speech Commands) no longer run in one process."""
        if self._sharing:
            yield self
            return
        self._sharing = True
        try:
            yield self
        finally:
            self._sharing = False
            starter, self._shared = self._shared, None
            if starter is not None:
                starter.close()

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
            sized = np.lib.format.open_memmap(tmp, mode="w+", dtype=dt, shape=shape)  # header, full size
            offset, row_bytes = int(sized.offset), int(np.prod(shape[1:])) * dt.itemsize
            del sized  # blocks are written with pwrite: pages of a mapping would count as this process's memory
            with open(tmp, "rb+") as handle:
                for start, block in self._blocks(paths, sample_rate, settings, desc):
                    _pwrite(handle.fileno(), np.ascontiguousarray(block, dtype=dt), offset + start * row_bytes)
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
        """``(first index, features of up to CHUNK clips)`` as they are finished (not in order).

        The calling process extracts too, alongside ``workers - 1`` worker processes (none for a
        list shorter than ``PARALLEL_MIN``, unless those of :meth:`shared_workers` are up), which
        start in the background: until they are up, this process works alone, so it never waits for
        them. Each worker has at most two chunks queued, so memory holds a handful of blocks
        whatever the corpus size.
        """
        todo = deque((i, paths[i : i + CHUNK]) for i in range(0, len(paths), CHUNK))
        helpers = max(0, min(self.workers - 1, len(todo) - 1))
        starter, own = self._shared, False  # workers of an earlier list in shared_workers()
        if starter is None and helpers and len(paths) >= PARALLEL_MIN:
            if self._sharing:
                starter = self._shared = _PoolStarter(self.workers - 1)
            else:
                starter, own = _PoolStarter(helpers), True
        if starter is None:
            helpers = 0
        with tqdm(total=len(paths), desc=f"extracting {desc} features", unit="clip", leave=False) as bar:
            pending: dict[Future, int] = {}
            ahead = 0  # chunks at the front of todo whose files the kernel has been asked to read
            try:
                while todo or pending:
                    # the files of the next chunks are read from disk while this and the workers compute
                    for _, chunk in itertools.islice(todo, ahead, 2 * helpers + 2):
                        _read_ahead(chunk)
                    ahead = min(len(todo), 2 * helpers + 2)
                    pool = starter.pool() if starter is not None else None
                    while pool is not None and todo and len(pending) < 2 * helpers:
                        start, chunk = todo.popleft()
                        pending[pool.submit(_extract_chunk, (chunk, sample_rate, settings))] = start
                        ahead -= 1
                    if todo:  # this process takes the next chunk itself
                        start, chunk = todo.popleft()
                        ahead -= 1
                        with _one_thread():
                            block = _extract_chunk((chunk, sample_rate, settings))
                        yield start, block
                        bar.update(len(block))
                    finished = [f for f in pending if f.done()] if todo else wait(pending, return_when=FIRST_COMPLETED).done
                    for future in finished:
                        block = future.result()
                        yield pending.pop(future), block
                        bar.update(len(block))
            finally:
                if own:
                    starter.close()
                elif pending:  # a shared pool outlives this list: drop what is still queued for it
                    for future in pending:
                        future.cancel()


class _PoolStarter:
    """Starts ``workers`` extraction processes in a thread (starting them blocks for about a second
    the first time, while the fork server imports torch); :meth:`pool` is ``None`` until they are up.
    :meth:`close` does not wait for a pool still starting: the thread shuts it down once it is up."""

    def __init__(self, workers: int):
        self._pool: ProcessPoolExecutor | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._start, args=(workers,), daemon=True)
        self._thread.start()

    def _start(self, workers: int) -> None:
        pool = None
        try:
            pool = ProcessPoolExecutor(workers, mp_context=_pool_context(), initializer=_worker_init)
            for started in [pool.submit(int) for _ in range(workers)]:  # one task each: every process is up
                started.result()
        except BaseException as err:  # raised by pool(), in the extracting thread
            self._error = err
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            return
        with self._lock:
            if not self._closed:
                self._pool = pool
                return
        pool.shutdown(cancel_futures=True)

    def pool(self) -> ProcessPoolExecutor | None:
        if self._error is not None:
            raise self._error
        return self._pool

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _pwrite(fd: int, array: np.ndarray, offset: int) -> None:
    """Write all of ``array``'s bytes at ``offset`` of ``fd``."""
    view = memoryview(array).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


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
