"""The per-clip, data-dependent steps of the front end, run on the host before the tensor pipeline:
silence trimming and the loudest window. Their output length depends on the signal, so they stay
outside the exported graph; numpy only, so torch-free inference runs them too.

Shapes: ``(T,)`` samples in, ``(T',)`` out, ``T' <= T``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from spokenword.frontend.settings import FLOOR_RULE_RANGE_DB

_EPS = 1e-10


def to_db(power: np.ndarray) -> np.ndarray:
    """``10 * log10(power)`` with a floor of -100 dB."""
    return 10.0 * np.log10(np.maximum(power, _EPS))


def frame_energy_db(wave: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Mean power of each frame in dB (floor -100 dB), float32 ``(F,)``."""
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame_length)[::hop_length]
    return to_db(np.square(frames, dtype=np.float32).mean(axis=-1, dtype=np.float32))


def trim_silence(wave: np.ndarray, top_db: float, frame_length: int = 256, hop_length: int = 80,
                 floor_db: float | None = None) -> np.ndarray:
    """Numpy reference of :func:`spokenword.features.trim_silence`: ``(T,)`` to ``(T',)``."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.shape[-1] <= frame_length:
        return wave
    energy = frame_energy_db(wave, frame_length, hop_length)
    peak = float(energy.max())
    if peak <= -100.0 + 1e-3:
        return wave
    threshold = peak - top_db
    if floor_db is not None:
        threshold = max(threshold, min(float(energy.min()) + floor_db, peak - FLOOR_RULE_RANGE_DB))
    loud = np.flatnonzero(energy > threshold)
    if loud.size == 0:
        return wave
    start = int(loud[0]) * hop_length
    stop = min(wave.shape[-1], int(loud[-1]) * hop_length + frame_length)
    return wave[start:stop]


def loudest_window(wave: np.ndarray, length: int, frame_length: int, hop_length: int) -> np.ndarray:
    """Numpy reference of :func:`spokenword.features.loudest_window`."""
    if wave.shape[-1] <= length:
        return wave
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame_length)[::hop_length]
    power = np.square(frames.astype(np.float64)).sum(axis=-1)
    span = 1 + (length - frame_length) // hop_length
    totals = np.convolve(power, np.ones(span), mode="valid") / span
    start = int(np.argmax(totals)) * hop_length
    return wave[start : start + length]


def host_steps(wave: np.ndarray, settings: Mapping) -> np.ndarray:
    """The part of the front end that runs before an exported graph (numpy reference of
    :func:`spokenword.features.locate_speech`): silence trimming (``trim_db``, ``trim_floor_db``;
    frames of ``n_fft`` samples every ``hop_length``) and, with ``crop_at: loudest``, the loudest
    ``n_frames`` window. ``(T,)`` to ``(T',)``."""
    s = settings
    wave = np.asarray(wave, dtype=np.float32).ravel()
    if s.get("trim_db") is not None:
        wave = trim_silence(wave, s["trim_db"], frame_length=s["n_fft"], hop_length=s["hop_length"],
                            floor_db=s.get("trim_floor_db"))
    if s.get("crop_at", "centre") == "loudest" and s["time_axis"] == "fixed":
        length = (s["n_frames"] - 1) * s["hop_length"] + s["n_fft"]
        wave = loudest_window(wave, length, s["n_fft"], s["hop_length"])
    return wave


