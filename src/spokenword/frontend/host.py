"""The per-clip steps of the front end that depend on the signal, run on the host before the tensor
pipeline (:class:`spokenword.frontend.graph.FrontEnd`): silence trimming, the loudest window and
training's random crop. Their output length depends on the signal, so they stay outside the
exported graph; numpy only, so torch-free inference runs the same code as training.

Shapes: ``(T,)`` float32 samples in, ``(T',)`` out, ``T' <= T``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from spokenword.frontend.settings import FLOOR_RULE_RANGE_DB, FeatureSettings, window_samples

_EPS = 1e-10


def _settings(settings: FeatureSettings | Mapping) -> FeatureSettings:
    return settings if isinstance(settings, FeatureSettings) else FeatureSettings.from_dict(settings)


def to_db(power: np.ndarray) -> np.ndarray:
    """``10 * log10(power)`` with a floor of -100 dB. Shape unchanged."""
    return 10.0 * np.log10(np.maximum(power, _EPS))


def frame_energy_db(wave: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Mean power of each frame in dB (floor -100 dB): ``(T,)`` to float32
    ``(1 + (T - frame_length) // hop_length,)``."""
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame_length)[::hop_length]
    with np.errstate(over="ignore"):  # finite but huge samples: an infinite energy, trimmed as any loud frame
        return to_db(np.square(frames, dtype=np.float32).mean(axis=-1, dtype=np.float32))


def trim_silence(wave: np.ndarray, top_db: float, frame_length: int = 256, hop_length: int = 80,
                 floor_db: float | None = None) -> np.ndarray:
    """Cut leading and trailing frames that are not speech.

    A frame is speech when its energy is within ``top_db`` dB of the loudest frame and, with
    ``floor_db``, also at least ``floor_db`` dB above the noise floor (the quietest frame's
    energy), unless that would cut closer than ``FLOOR_RULE_RANGE_DB`` (20 dB) below the loudest
    frame. The floor rule keeps background noise out of the trimmed clip when the recording is
    noisy, where a rule relative to the peak alone trims nothing; the 20 dB limit keeps it from
    eating into a tightly cut clip, whose quietest frame is speech.

    Args:
        wave: ``(T,)`` samples.
        top_db, floor_db: dB.
        frame_length, hop_length: analysis frames (samples).
    Returns:
        ``(T',)`` float32, a view of ``wave`` with ``T' <= T``; the clip whole when it is not longer
        than a frame or entirely silent.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"trim_silence expects a 1-D clip, got shape {wave.shape}")
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
    """The ``length`` samples of ``wave`` ``(T,)`` holding the most energy, from frames of
    ``frame_length`` every ``hop_length`` samples (``length`` should span whole frames); the clip
    itself when it is not longer. ``(min(T, length),)``."""
    if wave.shape[-1] <= length:
        return wave
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame_length)[::hop_length]
    power = np.square(frames.astype(np.float64)).sum(axis=-1)  # (F,)
    span = 1 + (length - frame_length) // hop_length
    totals = np.convolve(power, np.ones(span), mode="valid") / span
    start = int(np.argmax(totals)) * hop_length
    return wave[start : start + length]


def trim(wave: np.ndarray, settings: FeatureSettings | Mapping) -> np.ndarray:
    """Silence trimming when ``trim_db`` is set (frames of ``n_fft`` samples every ``hop_length``,
    floor rule with ``trim_floor_db``), else the clip unchanged: ``(T,)`` to float32 ``(T',)``."""
    s = _settings(settings)
    wave = np.asarray(wave, dtype=np.float32).ravel()
    if s.trim_db is None:
        return wave
    return trim_silence(wave, s.trim_db, s.n_fft, s.hop_length, s.trim_floor_db)


def host_steps(wave: np.ndarray, settings: FeatureSettings | Mapping) -> np.ndarray:
    """Everything the front end does before :class:`~spokenword.frontend.graph.FrontEnd` at
    inference: :func:`trim`, then, with ``crop_at="loudest"`` and ``time_axis="fixed"``, the loudest
    ``n_frames`` window of a longer clip.

    Args:
        wave: ``(T,)`` samples.
        settings: a :class:`FeatureSettings` or its dict (as stored in an export's metadata).
    Returns:
        ``(T',)`` float32, ``T' <= T``.
    """
    s = _settings(settings)
    wave = trim(wave, s)
    if s.crop_at == "loudest" and s.time_axis == "fixed":
        wave = loudest_window(wave, window_samples(s), s.n_fft, s.hop_length)
    return wave


def random_window(wave: np.ndarray, settings: FeatureSettings | Mapping, position: float) -> tuple[np.ndarray, int]:
    """Training's random crop / time shift, for ``time_axis="fixed"`` (used instead of the loudest
    window, after :func:`trim`).

    A clip longer than ``n_frames`` frames: the samples of the ``n_frames`` frames starting at
    frame ``round(position * spare frames)``, so the pipeline's centre crop keeps them all. A
    shorter clip: the clip, and the columns to roll the pipeline's centre-padded image by
    (:func:`~spokenword.frontend.graph.shift_frames`) so that it starts at column
    ``round(position * missing frames)``; rolling is exact because every padding column of a
    row holds the same value.

    Args:
        wave: ``(T,)`` samples.
        position: in [0, 1]: 0 the first frames (or the clip at the window's start), 1 the last.
    Returns:
        ``((T',) float32 samples, shift in columns)``; ``(wave, 0)`` with a stretched time axis.
    """
    s = _settings(settings)
    wave = np.asarray(wave, dtype=np.float32).ravel()
    if s.time_axis != "fixed":
        return wave, 0
    position = min(max(float(position), 0.0), 1.0)
    frames = 1 + (max(wave.shape[-1], s.n_fft) - s.n_fft) // s.hop_length
    if frames > s.n_frames:
        first = round(position * (frames - s.n_frames)) * s.hop_length
        return wave[first : first + window_samples(s)], 0
    missing = s.n_frames - frames
    return wave, round(position * missing) - missing // 2
