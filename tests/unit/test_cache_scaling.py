"""The scalable side of the feature cache: chunked writes into a memory map, float16 entries, crash
safety, on-demand batch reads (FeatureRows / CachedFeatures) and the unpadded evaluation sampler."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from spokenword.data import cache as cache_module
from spokenword.data.cache import FeatureCache, FeatureRows
from spokenword.data.datamodule import AudioDataModule, CachedFeatures, UnpaddedDistributedSampler
from spokenword.data.corpora import LabelledFolder
from spokenword.frontend.settings import FeatureSettings
from tests.conftest import tone, write_wav

SMALL = FeatureSettings(n_fft=64, hop_length=32, n_bins=16, n_frames=12)


@pytest.fixture
def files(tmp_path):
    return [write_wav(tmp_path / "audio" / ("ab"[i % 2]) / f"{i}.wav", tone(0.2, freq=150.0 * (i + 1))) for i in range(7)]


def test_entry_is_written_in_chunks_and_float16_is_its_own_entry(tmp_path, files, monkeypatch):
    monkeypatch.setattr(cache_module, "CHUNK", 2)  # 7 clips -> 4 chunks written one after another
    cache = FeatureCache(tmp_path / "cache", workers=1)
    full = cache.features(files, 8000, SMALL)
    half = cache.features(files, 8000, SMALL, dtype="float16")
    assert full.dtype == np.float32 and half.dtype == np.float16 and half.shape == full.shape == (7, 1, 16, 12)
    assert cache.key(files, 8000, SMALL) != cache.key(files, 8000, SMALL, "float16")
    np.testing.assert_allclose(half.astype(np.float32), full, atol=2e-3)  # min-max features are in [0, 1]
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    with pytest.raises(ValueError, match="int8"):
        cache.features(files, 8000, SMALL, dtype="int8")


def test_a_crash_mid_write_leaves_no_entry_and_no_temporary_file(tmp_path, files, monkeypatch):
    monkeypatch.setattr(cache_module, "CHUNK", 2)
    real, calls = cache_module._extract_chunk, []

    def crashing(args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is killed while writing
        return real(args)

    monkeypatch.setattr(cache_module, "_extract_chunk", crashing)
    cache = FeatureCache(tmp_path / "cache", workers=1)
    with pytest.raises(KeyboardInterrupt):
        cache.features(files, 8000, SMALL)
    assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.setattr(cache_module, "_extract_chunk", real)
    done = cache.features(files, 8000, SMALL)
    np.testing.assert_array_equal(done[6], cache_module.extract_file(files[6], 8000, SMALL))


def test_an_entry_of_the_wrong_shape_or_dtype_is_rebuilt(tmp_path, files):
    cache = FeatureCache(tmp_path / "cache", workers=1)
    entry = cache.entry(files, 8000, SMALL)
    entry.parent.mkdir(parents=True)
    np.save(entry, np.zeros((7, 1, 16, 12), dtype=np.float16))  # complete-looking, wrong dtype
    assert cache.features(files, 8000, SMALL).dtype == np.float32
    assert float(np.abs(np.asarray(cache.features(files, 8000, SMALL))).max()) > 0


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_feature_rows_read_any_order_as_float32(tmp_path, files, dtype):
    array = FeatureCache(tmp_path / "cache", workers=1).features(files, 8000, SMALL, dtype=dtype)
    rows = FeatureRows(array)
    for index in ([4, 1, 6], [0, 1, 2, 3], [5], [6, 5, 2, 3]):
        got = rows[index]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.asarray(array[index], dtype=np.float32))
    again = pickle.loads(pickle.dumps(rows))  # DataLoader workers get a copy that reopens the file
    np.testing.assert_array_equal(again[[3, 0]], rows[[3, 0]])
    values = np.asarray(array, dtype=np.float64)
    mean, std = rows.mean_std()
    assert mean == pytest.approx(values.mean(), rel=1e-6) and std == pytest.approx(values.std(ddof=1), rel=1e-5)


def test_data_module_reads_batches_from_the_cache(tmp_path, files):
    dm = AudioDataModule(root=str(tmp_path), corpus=LabelledFolder("audio"), split="corpus", sample_rate=8000,
                         features=SMALL, cache_dir=str(tmp_path / "cache"), batch_size=3, cache_dtype="float16")
    recs = [r.__class__(r.path, r.label, subset="test" if i == 0 else "val" if i == 1 else "train")
            for i, r in enumerate(dm.recordings)]
    dm.__dict__["recordings"] = recs  # a corpus with its own partition
    dm.prepare_data()
    dm.setup("fit")
    data = dm.dataset("train")
    assert isinstance(data, CachedFeatures) and isinstance(data.rows, FeatureRows)  # no in-memory copy
    batches = list(dm.train_dataloader())
    assert [len(y) for _, y in batches] == [3, 2] and batches[0][0].shape == (3, 1, 16, 12)
    assert batches[0][0].dtype == torch.float32
    x, y = data[2]
    assert x.shape == (1, 16, 12) and int(y) == dm.labels.index(recs[4].label)
    assert dm.feature_mean == pytest.approx(float(torch.cat([b[0] for b in batches]).mean()), abs=1e-5)
    with pytest.raises(ValueError, match="cache_dtype"):
        AudioDataModule(cache_dtype="bfloat16")


def test_unpadded_sampler_gives_every_index_exactly_once():
    data = list(range(7))
    parts = [list(UnpaddedDistributedSampler(data, num_replicas=3, rank=r)) for r in range(3)]
    assert sorted(sum(parts, [])) == data  # a DistributedSampler would pad 7 to 9 with duplicates
    assert [len(UnpaddedDistributedSampler(data, num_replicas=3, rank=r)) for r in range(3)] == [3, 2, 2]
