"""Property-based fuzzing of the audio + feature path (``audio.prepare`` then ``frontend.graph.extract``):
any waveform of >= 1 sample, any amplitude (silence, clipping, huge values), any supported sample
rate and every feature kind / time axis / trim / normalisation never crashes and always gives finite
features of shape ``(1, n_bins, n_frames)``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spokenword import audio
from spokenword.frontend.settings import FeatureSettings
from spokenword.frontend.graph import extract

TARGET_RATE = 8000

waves = st.builds(
    lambda length, kind, amplitude, seed: _wave(length, kind, amplitude, seed),
    length=st.integers(min_value=1, max_value=24_000),
    kind=st.sampled_from(["zeros", "noise", "clipped", "dc", "impulse", "int16"]),
    amplitude=st.sampled_from([0.0, 1e-9, 1e-4, 0.5, 1.0, 10.0, 1e6]),
    seed=st.integers(0, 2**16),
)

feature_settings = st.builds(
    FeatureSettings,
    kind=st.sampled_from(["stft", "logmel", "mfcc"]),
    time_axis=st.sampled_from(["stretch", "fixed"]),
    n_bins=st.sampled_from([13, 40, 64]),
    n_frames=st.sampled_from([1, 32, 64]),
    trim_db=st.sampled_from([None, 20.0, 60.0]),
    peak_normalize=st.booleans(),
    top_db=st.sampled_from([None, 60.0]),
    utterance_norm=st.sampled_from(["minmax", "standard", "none"]),
)


def _wave(length: int, kind: str, amplitude: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "zeros":
        return np.zeros(length, np.float32)
    if kind == "int16":
        return rng.integers(-32768, 32768, size=length, dtype=np.int16)
    if kind == "dc":
        return np.full(length, amplitude, np.float32)
    if kind == "impulse":
        wave = np.zeros(length, np.float32)
        wave[rng.integers(length)] = amplitude
        return wave
    wave = rng.standard_normal(length).astype(np.float32) * amplitude
    return np.clip(wave, -1, 1) if kind == "clipped" else wave


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wave=waves, rate=st.sampled_from([1000, 8000, 11025, 16000, 44100, 96000]), stereo=st.booleans(),
       feats=feature_settings)
def test_prepare_and_extract_never_crash_and_stay_finite(wave, rate, stereo, feats):
    samples = np.stack([wave, wave], axis=1) if stereo else wave
    prepared = audio.prepare(samples, rate, TARGET_RATE)
    assert prepared.dtype == np.float32 and prepared.ndim == 1 and prepared.size >= 1
    assert np.isfinite(prepared).all()
    image = extract(torch.from_numpy(prepared), TARGET_RATE, feats)
    assert image.shape == (1, feats.n_bins, feats.n_frames)
    assert image.dtype == torch.float32
    assert torch.isfinite(image).all()


@pytest.mark.parametrize("bad", [np.array([np.nan], np.float32), np.array([0.0, np.inf], np.float64)])
def test_prepare_rejects_non_finite(bad):
    with pytest.raises(audio.AudioError, match="NaN or infinite"):
        audio.prepare(bad, TARGET_RATE, TARGET_RATE)
