"""The front end against an independent implementation (librosa): mel filterbank, power STFT, dB
with a dynamic range limit, MFCC."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spokenword.frontend import graph as F
from spokenword.frontend.graph import FrontEnd
from spokenword.frontend.settings import FeatureSettings
from tests.conftest import tone

librosa = pytest.importorskip("librosa")

RATE = 8000


def _clip(seconds: float = 0.7) -> np.ndarray:
    """A windowed two-tone burst in faint noise, float32."""
    n = int(seconds * RATE)
    rng = np.random.default_rng(0)
    wave = (tone(seconds, RATE, 300.0) + 0.3 * tone(seconds, RATE, 2100.0)) * np.hanning(n).astype(np.float32)
    return (wave + 1e-3 * rng.standard_normal(n)).astype(np.float32)


def _front_end(wave: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """:class:`FrontEnd` on one clip: ``(n_bins, n_frames)``."""
    with torch.no_grad():
        image = FrontEnd(settings, RATE)(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
    return image[0, 0].numpy()


def _frames(wave: np.ndarray, n_fft: int, hop: int) -> int:
    return 1 + (len(wave) - n_fft) // hop


def _power(wave: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    spec = librosa.stft(wave.astype(np.float64), n_fft=n_fft, hop_length=hop, window="hann", center=False)
    return np.abs(spec) ** 2


@pytest.mark.parametrize("n_fft, sample_rate, n_mels, f_min, f_max", [
    (256, 8000, 64, 20.0, 4000.0),
    (256, 8000, 32, 60.0, 3800.0),
    (256, 8000, 40, 0.0, None),
    (512, 16000, 80, 0.0, 7600.0),
])
def test_mel_filterbank_is_librosas_htk_filterbank_without_normalisation(n_fft, sample_rate, n_mels, f_min, f_max):
    expected = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max, htk=True, norm=None,
                                   dtype=np.float64)
    got = F.mel_filterbank(n_fft, sample_rate, n_mels, f_min, f_max).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n_fft, hop", [(256, 240), (256, 80), (512, 160)])
def test_power_spectrogram_is_librosas_stft_without_centre_padding(n_fft, hop):
    wave = _clip()
    expected = _power(wave, n_fft, hop)
    got = F.power_spectrogram(torch.from_numpy(wave), n_fft, hop).numpy()
    assert got.shape == expected.shape == (n_fft // 2 + 1, _frames(wave, n_fft, hop))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-9 * expected.max())


@pytest.mark.parametrize("top_db", [None, 80.0, 40.0])
def test_stft_image_is_librosas_power_to_db(top_db):
    wave = _clip()
    frames = _frames(wave, 256, 80)
    settings = FeatureSettings(kind="stft", n_fft=256, hop_length=80, n_bins=129, n_frames=frames, time_axis="fixed",
                               top_db=top_db, utterance_norm="none")  # no resize, no crop: the dB spectrogram itself
    expected = librosa.power_to_db(_power(wave, 256, 80), ref=1.0, amin=1e-10, top_db=top_db)
    got = _front_end(wave, settings)
    assert got.shape == expected.shape
    near = expected >= expected.max() - 80.0  # float32's promise: bins within 80 dB of the loudest, to 0.01 dB
    assert (~near).any() == (top_db is None)  # the clip has fainter bins, which only top_db=None keeps
    np.testing.assert_allclose(got[near], expected[near], rtol=0, atol=1e-2)


@pytest.mark.parametrize("top_db", [None, 60.0])
def test_logmel_image_is_librosas_mel_power_in_db(top_db):
    wave = _clip()
    frames = _frames(wave, 256, 80)
    settings = FeatureSettings(kind="logmel", n_fft=256, hop_length=80, n_bins=64, n_frames=frames, time_axis="fixed",
                               f_min=20.0, f_max=4000.0, top_db=top_db, utterance_norm="none")
    bank = librosa.filters.mel(sr=RATE, n_fft=256, n_mels=64, fmin=20.0, fmax=4000.0, htk=True, norm=None, dtype=np.float64)
    expected = librosa.power_to_db(bank @ _power(wave, 256, 80), ref=1.0, amin=1e-10, top_db=top_db)
    np.testing.assert_allclose(_front_end(wave, settings), expected, rtol=0, atol=1e-3)


def test_mfcc_image_is_librosas_orthonormal_dct_of_the_db_mel_spectrogram():
    wave = _clip()
    frames = _frames(wave, 256, 80)
    settings = FeatureSettings(kind="mfcc", n_fft=256, hop_length=80, n_bins=13, n_frames=frames, time_axis="fixed",
                               utterance_norm="none")
    bank = librosa.filters.mel(sr=RATE, n_fft=256, n_mels=40, fmin=0.0, fmax=RATE / 2, htk=True, norm=None, dtype=np.float64)
    db = librosa.power_to_db(bank @ _power(wave, 256, 80), ref=1.0, amin=1e-10, top_db=None)
    expected = librosa.feature.mfcc(S=db, n_mfcc=13, dct_type=2, norm="ortho")
    np.testing.assert_allclose(_front_end(wave, settings), expected, rtol=0, atol=1e-3)


@pytest.mark.parametrize("n_fft", [256, 512])
def test_the_stft_basis_is_the_windowed_dft(n_fft):
    basis = F.stft_basis(n_fft)
    assert basis.shape == (2 * (n_fft // 2 + 1), 1, n_fft) and basis.dtype == torch.float32
    n, k = np.arange(n_fft), np.arange(n_fft // 2 + 1)[:, None]
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    expected = np.concatenate([np.cos(2 * np.pi * k * n / n_fft), -np.sin(2 * np.pi * k * n / n_fft)]) * window
    np.testing.assert_allclose(basis[:, 0].numpy(), expected, rtol=0, atol=1e-7)
