"""The feature cache's fast path gives exactly the inference front end's features: batched
extraction (features.extract_batch), the numpy reader for plain 16-bit mono WAV files, and the
extraction split between this process and worker processes."""

from __future__ import annotations

import contextlib
import dataclasses
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from spokenword import audio
from spokenword.data import cache as cache_module
from spokenword.frontend import graph as features
from spokenword.data.cache import FeatureCache, extract_file
from spokenword.data.corpora import DatasetError
from spokenword.frontend.settings import FeatureSettings
from spokenword.frontend.graph import extract, extract_batch
from tests.conftest import tone, write_wav

RATE = 8000
#: every kind x time axis, trimming (peak and floor rules), loudest window, peak scaling, dB range, each norm
SETTINGS = [
    FeatureSettings(),
    FeatureSettings(top_db=60.0),
    FeatureSettings(kind="logmel", n_bins=40),
    FeatureSettings(kind="mfcc", n_bins=20, n_frames=32),
    FeatureSettings(time_axis="fixed", n_frames=48, utterance_norm="none"),
    FeatureSettings(kind="logmel", n_bins=40, hop_length=80, n_frames=101, time_axis="fixed", trim_db=30.0,
                    peak_normalize=True, utterance_norm="standard", top_db=80.0),
    FeatureSettings(kind="logmel", hop_length=80, n_frames=40, time_axis="fixed", trim_db=30.0, trim_floor_db=8.0,
                    crop_at="loudest", peak_normalize=True, utterance_norm="standard"),
    FeatureSettings(kind="mfcc", n_bins=13, hop_length=128, n_frames=20, time_axis="fixed", f_min=50.0, f_max=3800.0),
    FeatureSettings(kind="logmel", n_fft=512, hop_length=160, n_frames=64, time_axis="fixed"),
    FeatureSettings(band_mean=True, top_db=60.0),
    FeatureSettings(kind="mfcc", n_bins=13, hop_length=80, n_frames=40, time_axis="fixed", band_mean=True,
                    utterance_norm="standard"),
    FeatureSettings(kind="logmel", hop_length=80, n_frames=40, time_axis="fixed", cepstral_lifter=20, band_mean=True,
                    utterance_norm="standard", top_db=80.0),
]


def test_every_setting_is_exercised():
    """A new field of FeatureSettings is a new step of extract(): extract_batch must do it too, and
    SETTINGS above must hold a value other than its default, so the comparison below covers it."""
    default = FeatureSettings()
    for field in dataclasses.fields(FeatureSettings):
        assert any(getattr(s, field.name) != getattr(default, field.name) for s in SETTINGS), (
            f"FeatureSettings.{field.name} is not exercised: add a setting with it to SETTINGS and its "
            f"step to features.extract_batch"
        )


def _clips() -> list[np.ndarray]:
    """Clips of many lengths (one shorter than a frame, one silent), and a run of 19 clips of one
    length (more than one group of ``BATCH_GROUP``), interleaved with the others."""
    rng = np.random.default_rng(0)
    clips = []
    for i, seconds in enumerate([0.02, 0.31, 0.8, 1.0, 2.3]):
        wave = tone(seconds, RATE, 200.0 + 150 * i) * np.hanning(int(seconds * RATE)).astype(np.float32)
        wave = np.concatenate([np.zeros(400, np.float32), wave, np.zeros(300, np.float32)])
        clips.append((wave + 1e-3 * rng.standard_normal(wave.shape)).astype(np.float32))
    clips.append(np.zeros(3000, np.float32))
    same = [(tone(0.5, RATE, 300.0 + 40 * k) * rng.uniform(0.1, 1.0) + 1e-3 * rng.standard_normal(4000)).astype(np.float32)
            for k in range(19)]
    return [c for pair in zip(same, clips + [None] * (len(same) - len(clips))) for c in pair if c is not None]


CLIPS = _clips()


@pytest.fixture
def one_thread():
    """Many small tensor ops: with several intra-op threads on a busy machine they wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s.kind}-{s.time_axis}-{s.n_frames}-{s.trim_db}-{s.utterance_norm}")
def test_extract_batch_is_extract_per_clip(settings, one_thread):
    got = extract_batch(CLIPS, RATE, settings)
    assert got.shape == (len(CLIPS), *settings.shape) and got.dtype == torch.float32
    for row, wave in zip(got, CLIPS):
        assert torch.equal(row, extract(torch.from_numpy(wave), RATE, settings))  # the same operations: bit-identical


def test_extract_batch_takes_tensors_and_any_group_size(monkeypatch, one_thread):
    settings = SETTINGS[0]
    expected = torch.stack([extract(torch.from_numpy(w), RATE, settings) for w in CLIPS])
    for group in (1, 3, 64):
        monkeypatch.setattr(features, "BATCH_GROUP", group)
        assert torch.equal(extract_batch([torch.from_numpy(w) for w in CLIPS], RATE, settings), expected)
    assert extract_batch([], RATE, settings).shape == (0, *settings.shape)


def _write(path, samples, rate, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, **kwargs)
    return path


def test_wav_reader_gives_soundfiles_samples(tmp_path):
    rng = np.random.default_rng(1)
    mono = (0.6 * rng.standard_normal(5001)).clip(-1, 1).astype(np.float32)
    mono[:4] = [-1.0, 1.0, 0.0, -0.5]
    plain = [
        _write(tmp_path / "pcm16.wav", mono, 8000, subtype="PCM_16"),
        _write(tmp_path / "pcm16_16k.wav", mono, 16000, subtype="PCM_16"),  # resampled on the way
        _write(tmp_path / "wavex.wav", mono, 8000, subtype="PCM_16", format="WAVEX"),
    ]
    other = [
        _write(tmp_path / "stereo.wav", np.stack([mono, mono[::-1]], 1), 8000, subtype="PCM_16"),
        _write(tmp_path / "pcm24.wav", mono, 8000, subtype="PCM_24"),
        _write(tmp_path / "float.wav", mono, 8000, subtype="FLOAT"),
        _write(tmp_path / "u8.wav", mono, 8000, subtype="PCM_U8"),
        _write(tmp_path / "flac.flac", mono, 8000),
    ]
    # a chunk before the data, of odd size (padded to even)
    raw = (tmp_path / "pcm16.wav").read_bytes()
    extra = b"LIST" + (5).to_bytes(4, "little") + b"abcde\0"
    odd = tmp_path / "odd_chunk.wav"
    odd.write_bytes(raw[:4] + (int.from_bytes(raw[4:8], "little") + len(extra)).to_bytes(4, "little") + raw[8:36] + extra + raw[36:])
    plain.append(odd)
    for path in plain:
        assert cache_module._pcm16_mono(path) is not None, path.name
    for path in other:
        assert cache_module._pcm16_mono(path) is None, path.name
    for path in plain + other:
        for rate in (8000, 16000):
            expected = audio.load(path, rate)
            got = cache_module._load(path, rate)
            assert got.dtype == np.float32 and got.shape == expected.shape, path.name
            np.testing.assert_array_equal(got, expected, err_msg=path.name)


def test_wav_reader_leaves_broken_files_to_soundfile(tmp_path):
    good = _write(tmp_path / "good.wav", tone(0.2), 8000, subtype="PCM_16").read_bytes()
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good[:-100])  # data chunk claims more bytes than there are
    empty = tmp_path / "empty.wav"
    empty.write_bytes(good[:40] + (0).to_bytes(4, "little"))
    header = tmp_path / "header_only.wav"
    header.write_bytes(good[:20])
    for path in (truncated, empty, header):
        assert cache_module._pcm16_mono(path) is None
    np.testing.assert_array_equal(cache_module._load(truncated, 8000), audio.load(truncated, 8000))
    cache_module._read_ahead([tmp_path / "missing.wav", truncated, tmp_path])  # a hint: never an error
    for path in (empty, header, tmp_path / "missing.wav"):
        with pytest.raises(DatasetError, match=path.name):
            cache_module._load(path, 8000)


def test_worker_processes_and_this_process_fill_one_entry(tmp_path, monkeypatch):
    files = [write_wav(tmp_path / "audio" / f"{i}.wav", CLIPS[i % len(CLIPS)], subtype="PCM_16") for i in range(23)]
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
    settings = SETTINGS[6]
    threads = torch.get_num_threads()
    entry = FeatureCache(tmp_path / "cache", workers=3).features(files, RATE, settings, dtype="float32")
    assert torch.get_num_threads() == threads  # this process's setting is restored
    assert 0 < len(here) < 8  # both this process and the workers extracted chunks
    expected = np.stack([extract_file(p, RATE, settings) for p in files])
    np.testing.assert_array_equal(np.asarray(entry), expected)


def test_cache_falls_back_to_extract_if_the_batched_path_ever_disagrees(tmp_path, monkeypatch):
    files = [write_wav(tmp_path / "audio" / f"{i}.wav", CLIPS[i], subtype="PCM_16") for i in range(5)]
    settings = SETTINGS[0]
    monkeypatch.setattr(cache_module, "extract_batch", lambda waves, rate, s: extract_batch(waves, rate, s) + 1)
    with pytest.warns(UserWarning, match="extract_batch differs"):
        entry = FeatureCache(tmp_path / "cache", workers=1).features(files, RATE, settings)
    np.testing.assert_array_equal(np.asarray(entry), np.stack([extract_file(p, RATE, settings) for p in files]))


def test_shared_workers_serve_a_short_list_after_a_long_one_and_stop_at_the_end(tmp_path, monkeypatch):
    files = [write_wav(tmp_path / "audio" / f"{i}.wav", CLIPS[i % len(CLIPS)], subtype="PCM_16") for i in range(30)]
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
    settings = SETTINGS[6]
    cache = FeatureCache(tmp_path / "cache", workers=2)
    with cache.shared_workers():
        long = cache.features(files[:24], RATE, settings)
        after_long = len(submitted)
        short = cache.features(files[24:], RATE, settings)  # 6 clips < PARALLEL_MIN
        assert len(starters) == 1 and starters[0].pool() is not None  # one pool for both lists
    assert 0 < after_long < len(submitted)  # the workers took chunks of the short list too
    assert starters[0]._pool is None  # shut down at the end of the block
    alone = FeatureCache(tmp_path / "cache2", workers=2).features(files[24:], RATE, settings)  # no block:
    assert len(starters) == 1  # a short list alone starts no workers
    for entry, part in ((long, files[:24]), (short, files[24:]), (alone, files[24:])):
        np.testing.assert_array_equal(np.asarray(entry), np.stack([extract_file(p, RATE, settings) for p in part]))
