"""Loading, validating and resampling audio.

Every waveform that enters spokenword passes through :func:`load` (files, file-like objects, bytes)
or :func:`prepare` (arrays already in memory), so training, ``classify``, ``evaluate`` and the web
service see exactly the same signal: float32, mono, at the model's sample rate (Hz), values in
[-1, 1] for integer formats.

Errors a user can cause (an empty, corrupt or unreadable file, a non-finite sample, a clip longer
than allowed) raise :class:`AudioError`, whose message names the source and the problem in one line.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

AudioSource = Union[str, os.PathLike, BinaryIO, bytes]

#: Sample rates outside this range are rejected (Hz): below it there is no speech band to keep,
#: above it is not audio a microphone produces.
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384_000


class AudioError(ValueError):
    """A recording that cannot be used, with a one-line message naming it and the problem."""

    def __init__(self, source: object, problem: str):
        self.source = _describe(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


def _describe(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, str) else "<audio>"


def read(source: AudioSource, *, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Read a file soundfile understands (wav, flac, ogg, ...) without changing it.

    Args:
        source: a path, a binary file object or the file's bytes.
        max_seconds: reject files longer than this (seconds), checked from the header before
            the samples are read.

    Returns:
        ``(samples, sample_rate)``: float32 array of shape ``(frames, channels)`` and the rate (Hz).
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise AudioError(source, "no such file")
        if path.is_dir():
            raise AudioError(source, "is a directory, not an audio file")
        if not os.access(path, os.R_OK):
            raise AudioError(source, "permission denied")
        if path.stat().st_size == 0:
            raise AudioError(source, "empty file (0 bytes)")
        handle: object = path
    elif isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise AudioError(source, "empty input (0 bytes)")
        handle = io.BytesIO(source)
    else:
        handle = source
    try:
        with sf.SoundFile(handle) as f:
            rate, frames = f.samplerate, f.frames
            if max_seconds is not None and rate > 0 and frames / rate > max_seconds:
                raise AudioError(
                    source, f"clip is {frames / rate:.1f} s long; the limit is {max_seconds:g} s"
                )
            data = f.read(dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(source, f"not a readable audio file ({_short(err)})") from None
    except (OSError, EOFError) as err:
        raise AudioError(source, f"could not be read ({_short(err)})") from None
    return data, int(rate)


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__


def prepare(
    samples: np.ndarray,
    sample_rate: int,
    target_rate: int,
    *,
    source: object = "<audio>",
) -> np.ndarray:
    """Turn any decoded audio into what the models expect.

    Args:
        samples: shape ``(frames,)`` or ``(frames, channels)``; any real dtype. Integer arrays are
            scaled to [-1, 1] by their type's range.
        sample_rate: rate of ``samples`` (Hz).
        target_rate: rate to return (Hz); resampled with soxr (high quality polyphase) if different.
        source: names the recording in error messages.

    Returns:
        float32 array of shape ``(samples,)`` at ``target_rate``; channels are averaged.
    """
    array = np.asarray(samples)
    if array.dtype.kind not in "fiu" or array.ndim not in (1, 2):
        raise AudioError(source, f"expected a 1-D or 2-D numeric array, got {array.dtype} {array.shape}")
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        scale = max(abs(int(info.min)), int(info.max) + 1)
        offset = (int(info.max) + 1) / 2 if array.dtype.kind == "u" else 0.0
        array = (array.astype(np.float64) - offset) / (scale / (2 if array.dtype.kind == "u" else 1))
    array = array.astype(np.float32, copy=False)
    if array.ndim == 2:
        if array.shape[1] == 0:
            raise AudioError(source, "has no channels")
        array = array.mean(axis=1, dtype=np.float32)
    if array.size == 0:
        raise AudioError(source, "contains no samples")
    if not np.isfinite(array).all():
        raise AudioError(source, "contains NaN or infinite samples")
    if not MIN_SAMPLE_RATE <= int(sample_rate) <= MAX_SAMPLE_RATE:
        raise AudioError(
            source,
            f"sample rate {sample_rate} Hz is outside the supported {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz",
        )
    if int(sample_rate) != int(target_rate):
        array = soxr.resample(array, int(sample_rate), int(target_rate), quality="HQ").astype(np.float32)
        if array.size == 0:  # a handful of input samples can round down to none
            array = np.zeros(1, dtype=np.float32)
    return np.ascontiguousarray(array)


def load(source: AudioSource, sample_rate: int, *, max_seconds: float | None = None) -> np.ndarray:
    """Read ``source`` and return float32 mono samples of shape ``(samples,)`` at ``sample_rate`` Hz."""
    data, rate = read(source, max_seconds=max_seconds)
    return prepare(data, rate, sample_rate, source=source)
