"""FeatureCache: computed once, keyed by data + settings, written atomically."""

from __future__ import annotations

import os

import numpy as np
import pytest

from spokenword.data import cache as cache_module
from spokenword.data.cache import FeatureCache, extract_file
from spokenword.data.corpora import DatasetError
from spokenword.frontend.settings import FeatureSettings
from tests.conftest import tone, write_wav


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
    np.testing.assert_array_equal(first[1], extract_file(files[1], 8000, settings))
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
