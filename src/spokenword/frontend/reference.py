"""Numpy mirror of the front end (to be removed)."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from spokenword.frontend.host import host_steps, to_db

def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``n_fft`` samples (as ``torch.hann_window``), float64."""
    n = np.arange(n_fft, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * n / n_fft)


def power_spectrogram(wave: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Power STFT, Hann window, no centre padding: ``(T,)`` to ``(K, F)`` with
    ``F = 1 + (max(T, n_fft) - n_fft) // hop_length``; clips shorter than ``n_fft`` are zero-padded."""
    wave = np.asarray(wave, dtype=np.float64)
    if wave.shape[-1] < n_fft:
        wave = np.pad(wave, (0, n_fft - wave.shape[-1]))
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::hop_length]  # (F, n_fft)
    spec = np.fft.rfft(frames * hann_window(n_fft), axis=-1)
    return (spec.real**2 + spec.imag**2).T


def mel_filterbank(n_fft: int, sample_rate: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None) -> np.ndarray:
    """Triangular HTK mel filters ``(n_mels, K)``, each peaking at 1."""
    f_max = sample_rate / 2 if f_max is None else f_max
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    to_mel = lambda hz: 2595.0 * np.log10(1.0 + hz / 700.0)  # noqa: E731
    mels = np.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2)
    edges = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None)


def dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """Orthonormal DCT-II matrix ``(n_mfcc, n_mels)``."""
    n = np.arange(n_mels, dtype=np.float64)
    k = np.arange(n_mfcc, dtype=np.float64)[:, None]
    basis = np.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis


def linear_weights(src: int, dst: int) -> np.ndarray:
    """Linear-interpolation matrix ``(dst, src)`` of a half-pixel resize (``align_corners=False``,
    as ``torch.nn.functional.interpolate``): ``resized = weights @ values``."""
    pos = np.maximum((np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5, 0.0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, src - 1)
    frac = pos - lo
    weights = np.zeros((dst, src))
    np.add.at(weights, (np.arange(dst), lo), 1.0 - frac)
    np.add.at(weights, (np.arange(dst), hi), frac)
    return weights


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of ``(H, W)`` to ``(height, width)`` (half-pixel centres)."""
    return linear_weights(image.shape[0], height) @ image @ linear_weights(image.shape[1], width).T


def fix_frames(spec: np.ndarray, n_frames: int) -> np.ndarray:
    """Centre-crop or centre-pad ``(B, F)`` to ``(B, n_frames)``; padding takes the minimum value."""
    frames = spec.shape[-1]
    if frames >= n_frames:
        start = (frames - n_frames) // 2
        return spec[:, start : start + n_frames]
    missing = n_frames - frames
    left = missing // 2
    return np.pad(spec, ((0, 0), (left, missing - left)), constant_values=spec.min())


def normalize_utterance(image: np.ndarray, mode: str) -> np.ndarray:
    """Per-clip scaling: ``minmax`` to [0, 1], ``standard`` to mean 0 / std 1, ``none``."""
    if mode == "none":
        return image
    if mode == "minmax":
        low, high = image.min(), image.max()
        return (image - low) / max(high - low, 1e-6)
    if mode == "standard":
        return (image - image.mean()) / max(image.std(), 1e-6)
    raise ValueError(f"unknown utterance_norm {mode!r}; expected 'minmax', 'standard' or 'none'")


def extract(wave: np.ndarray, sample_rate: int, settings: Mapping) -> np.ndarray:
    """Numpy reference of :func:`spokenword.features.extract`.

    Args:
        wave: ``(T,)`` samples at ``sample_rate`` Hz.
        settings: the feature settings as a dict (``FeatureSettings.to_dict()``, as stored in the
            export metadata).
    Returns:
        ``(1, n_bins, n_frames)`` float32.
    """
    s = settings
    wave = host_steps(wave, s).astype(np.float64)
    if s["peak_normalize"]:
        wave = wave / max(float(np.abs(wave).max()), 1e-6)
    power = power_spectrogram(wave, s["n_fft"], s["hop_length"])
    if s["kind"] == "stft":
        image = to_db(power)
    else:
        n_mels = s["n_bins"] if s["kind"] == "logmel" else max(s["n_bins"], 40)
        image = to_db(mel_filterbank(s["n_fft"], sample_rate, n_mels, s["f_min"], s["f_max"]) @ power)
    if s.get("top_db") is not None:  # dynamic range limit below the clip's loudest bin
        image = np.maximum(image, image.max() - s["top_db"])
    if s["kind"] == "mfcc":
        image = dct_matrix(s["n_bins"], n_mels) @ image
    if s.get("cepstral_lifter") is not None:  # low-quefrency liftering: keep the first coefficients only
        basis = dct_matrix(s["cepstral_lifter"], n_mels)
        image = basis.T @ (basis @ image)
    if s["time_axis"] == "stretch":
        image = resize(image, s["n_bins"], s["n_frames"])
    else:
        if image.shape[0] != s["n_bins"]:
            image = linear_weights(image.shape[0], s["n_bins"]) @ image
        image = fix_frames(image, s["n_frames"])
    if s.get("band_mean"):
        image = image - image.mean(axis=-1, keepdims=True)
    image = normalize_utterance(image, s["utterance_norm"])
    return image[None].astype(np.float32)


