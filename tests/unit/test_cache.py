"""FeatureCache: computed once, keyed by data + settings, written atomically."""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np
import pytest
import torch

from spokenword.data import cache as cache_module
from spokenword.data.cache import FeatureCache, extract_file
from spokenword.data.corpora import DatasetError
from spokenword.frontend.settings import FeatureSettings
from tests.conftest import batch_atol, tone, write_wav


@pytest.fixture
def files(tmp_path):
    return [write_wav(tmp_path / "audio" / f"{i}.wav", tone(0.3, freq=200.0 * (i + 1))) for i in range(3)]


@pytest.fixture
def counted(monkeypatch):
    """Counts clips actually extracted (the cache runs in-process with one worker)."""
    calls = []
    real = cache_module._extract_chunk

    def counting(args):
        calls.append(len(args[0]))
        return real(args)

    monkeypatch.setattr(cache_module, "_extract_chunk", counting)
    return calls


def test_second_call_hits_the_cache(tmp_path, files, counted):
    cache = FeatureCache(tmp_path / "cache", workers=1)
    settings = FeatureSettings()
    first = cache.features(files, 8000, settings)
    assert first.shape == (3, 1, 64, 64) and sum(counted) == 3
    reference = extract_file(files[1], 8000, settings)
    np.testing.assert_allclose(first[1], reference, rtol=0, atol=batch_atol(reference))  # extracted in a batch
    second = cache.features(files, 8000, settings)
    assert sum(counted) == 3  # nothing recomputed
    assert isinstance(second, np.memmap) and not second.flags.writeable
    np.testing.assert_array_equal(first, second)


def test_settings_rate_or_data_change_makes_a_new_entry(tmp_path, files, counted):
    cache = FeatureCache(tmp_path / "cache", workers=1)
    keys = {cache.key(files, 8000, FeatureSettings())}
    keys.add(cache.key(files, 8000, FeatureSettings(kind="mfcc")))
    keys.add(cache.key(files, 16000, FeatureSettings()))
    keys.add(cache.key(files[:2], 8000, FeatureSettings()))
    cache.features(files, 8000, FeatureSettings())
    write_wav(files[0], tone(0.4))  # the data changed
    os.utime(files[0], ns=(1, 1))
    keys.add(cache.key(files, 8000, FeatureSettings()))
    assert len(keys) == 5
    cache.features(files, 8000, FeatureSettings(kind="logmel"))
    assert sum(counted) == 6
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_no_temporary_files_are_left_and_a_bad_entry_is_rebuilt(tmp_path, files, counted):
    cache = FeatureCache(tmp_path / "cache", workers=1)
    settings = FeatureSettings()
    cache.features(files, 8000, settings)
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".tmp")] == []
    entry = tmp_path / "cache" / f"{cache.key(files, 8000, settings)}.npy"
    entry.write_bytes(b"garbage")
    assert cache.features(files, 8000, settings).shape == (3, 1, 64, 64)
    assert sum(counted) == 6


def test_unreadable_file_is_a_dataset_error_naming_it(tmp_path, files):
    bad = tmp_path / "audio" / "bad.wav"
    bad.write_bytes(b"not audio at all")
    cache = FeatureCache(tmp_path / "cache", workers=1)
    with pytest.raises(DatasetError, match="bad.wav"):
        cache.features([*files, bad], 8000, FeatureSettings())
    with pytest.raises(DatasetError, match="missing.wav"):
        cache.features([tmp_path / "missing.wav"], 8000, FeatureSettings())
    assert not list((tmp_path / "cache").glob("*.npy"))  # nothing cached for a failed list


# -- worker processes beside this one ----------------------------------------------------------------

#: the settings of the new-voices configs: trimming with the floor rule, loudest window, standard norm
LOUDEST = FeatureSettings(kind="logmel", hop_length=80, n_frames=40, time_axis="fixed", trim_db=30.0, trim_floor_db=8.0,
                          crop_at="loudest", peak_normalize=True, utterance_norm="standard")


def _clips() -> list[np.ndarray]:
    """Clips of several lengths (one shorter than a frame, one silent)."""
    rng = np.random.default_rng(0)
    clips = [np.zeros(3000, np.float32)]
    for i, seconds in enumerate([0.02, 0.31, 0.8, 1.0, 2.3, 0.5, 0.5]):
        wave = tone(seconds, 8000, 200.0 + 150 * i) * np.hanning(int(seconds * 8000)).astype(np.float32)
        wave = np.concatenate([np.zeros(400, np.float32), wave, np.zeros(300, np.float32)])
        clips.append((wave + 1e-3 * rng.standard_normal(wave.shape)).astype(np.float32))
    return clips


def _per_file(paths, settings) -> np.ndarray:
    return np.stack([extract_file(p, 8000, settings) for p in paths])


def test_worker_processes_and_this_process_fill_one_entry(tmp_path, monkeypatch):
    clips = _clips()
    files = [write_wav(tmp_path / "audio" / f"{i}.wav", clips[i % len(clips)], subtype="PCM_16") for i in range(23)]
    monkeypatch.setattr(cache_module, "CHUNK", 3)  # 8 chunks
    monkeypatch.setattr(cache_module, "PARALLEL_MIN", 1)
    starters, here = [], []

    class Recorded(cache_module._PoolStarter):
        def __init__(self, workers):
            super().__init__(workers)
            starters.append(self)

    real = cache_module._one_thread  # wraps each chunk this process extracts

    @contextlib.contextmanager
    def in_this_process():  # the first chunk waits until the workers are up, so they get some
        deadline = time.monotonic() + 120
        while starters[0].pool() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        here.append(1)
        with real():
            yield

    monkeypatch.setattr(cache_module, "_PoolStarter", Recorded)
    monkeypatch.setattr(cache_module, "_one_thread", in_this_process)
    threads = torch.get_num_threads()
    entry = FeatureCache(tmp_path / "cache", workers=3).features(files, 8000, LOUDEST, dtype="float32")
    assert torch.get_num_threads() == threads  # this process's setting is restored
    assert 0 < len(here) < 8  # both this process and the workers extracted chunks
    reference = _per_file(files, LOUDEST)
    np.testing.assert_allclose(np.asarray(entry), reference, rtol=0, atol=batch_atol(reference))


def test_shared_workers_serve_a_short_list_after_a_long_one_and_stop_at_the_end(tmp_path, monkeypatch):
    clips = _clips()
    files = [write_wav(tmp_path / "audio" / f"{i}.wav", clips[i % len(clips)], subtype="PCM_16") for i in range(30)]
    monkeypatch.setattr(cache_module, "CHUNK", 3)
    monkeypatch.setattr(cache_module, "PARALLEL_MIN", 20)  # the first list is long, the second short
    starters, submitted = [], []

    class Recorded(cache_module._PoolStarter):
        def __init__(self, workers):
            super().__init__(workers)
            starters.append(self)

        def pool(self):
            deadline = time.monotonic() + 120  # wait for the workers, so they take chunks of both lists
            while self._pool is None and self._error is None and time.monotonic() < deadline:
                time.sleep(0.05)
            pool = super().pool()
            return None if pool is None else Counting(pool)

    class Counting:
        def __init__(self, pool):
            self.pool = pool

        def submit(self, fn, args):
            submitted.append(len(args[0]))
            return self.pool.submit(fn, args)

    monkeypatch.setattr(cache_module, "_PoolStarter", Recorded)
    cache = FeatureCache(tmp_path / "cache", workers=2)
    with cache.shared_workers():
        long = cache.features(files[:24], 8000, LOUDEST)
        after_long = len(submitted)
        short = cache.features(files[24:], 8000, LOUDEST)  # 6 clips < PARALLEL_MIN
        assert len(starters) == 1 and starters[0].pool() is not None  # one pool for both lists
    assert 0 < after_long < len(submitted)  # the workers took chunks of the short list too
    assert starters[0]._pool is None  # shut down at the end of the block
    alone = FeatureCache(tmp_path / "cache2", workers=2).features(files[24:], 8000, LOUDEST)  # no block:
    assert len(starters) == 1  # a short list alone starts no workers
    for entry, part in ((long, files[:24]), (short, files[24:]), (alone, files[24:])):
        reference = _per_file(part, LOUDEST)
        np.testing.assert_allclose(np.asarray(entry), reference, rtol=0, atol=batch_atol(reference))


def test_read_ahead_is_a_hint_never_an_error(tmp_path, files):
    cache_module._read_ahead([tmp_path / "missing.wav", files[0], tmp_path])
