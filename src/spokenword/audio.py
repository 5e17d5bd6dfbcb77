"""Loading, validating and resampling audio.

Every waveform that enters spokenword passes through :func:`load` (files, file-like objects, bytes)
or :func:`prepare` (arrays already in memory), so training, ``classify``, ``evaluate`` and the web
service see exactly the same signal: float32, mono, at the model's sample rate (Hz), values in
[-1, 1] for integer formats. ``transcribe`` reads long recordings block by block with :func:`stream`.

Formats: what libsndfile reads (wav, flac, ogg/vorbis/opus, mp3 with libsndfile >= 1.1) is decoded by
soundfile; anything else (m4a/AAC, webm/opus, mp4, mkv, ...) falls back to PyAV (FFmpeg), the optional
``formats`` extra (``pip install 'spokenword[formats]'``), decoded frame by frame under the same limit and
block contract. Without it, such a file is refused with one line naming the extra.

Decoding is bounded whatever a file says about itself: it is read in blocks of at most
:data:`BLOCK_SAMPLES` samples and stops once it passes the limit (``max_seconds``, default
:data:`DEFAULT_MAX_SECONDS`); the frame count in a header is never used to size anything (it may be
0, negative, or 2**63 - 1 for "unknown", as a streamed FLAC leaves it). :func:`load` keeps only the
mono signal at the target rate, so its memory is about ``max_seconds * sample_rate * 4`` bytes
whatever the file's own rate or channel count.

Errors a user can cause (an empty, corrupt, truncated or unreadable file, bytes that are not audio,
a sample rate or channel count out of range, a non-finite sample, a clip longer than allowed) raise
:class:`AudioError`, whose message names the source and the problem in one line; every exception
libsndfile, soundfile or numpy raise while decoding a file becomes one.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
from pathlib import Path
from typing import BinaryIO, Iterator, Union

import numpy as np
import soundfile as sf
import soxr

AudioSource = Union[str, os.PathLike, BinaryIO, bytes]

#: Sample rates outside this range are rejected (Hz): below it there is no speech band to keep,
#: above it is not audio a microphone produces.
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384_000
#: Files with more channels are rejected (they are averaged to mono; no recording of speech needs more).
MAX_CHANNELS = 64
#: The decode limit (s) when none is given (``max_seconds=None``): ``classify``, ``evaluate`` and the
#: Python API (``load_model``, ``BaseClassifier.waveform``) use it; a caller may pass any other
#: positive, finite number, but never "unbounded".
DEFAULT_MAX_SECONDS = 600.0
#: Samples (frames x channels) decoded per read: 256 KiB of float32.
BLOCK_SAMPLES = 1 << 16
#: The most samples per read when a caller asks for blocks of a duration (:func:`stream`): 16 MiB.
MAX_BLOCK_SAMPLES = 1 << 22
#: libsndfile reports a stream of unknown length as 2**63 - 1 frames; a count this large is no length.
_UNKNOWN_FRAMES = 1 << 62
#: What libsndfile, soundfile and numpy raise on input they cannot decode (``OSError`` apart).
_DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, ValueError, TypeError, MemoryError, OverflowError,
                  struct.error, EOFError, AssertionError, IndexError, KeyError)


#: the extra that brings PyAV, named when a file needs it
FORMATS_HINT = "m4a, webm, mp4 and other FFmpeg formats need the formats extra: pip install 'spokenword[formats]'"


#: FFmpeg's names of containers libsndfile reads: when libsndfile refused one, it is damaged, not foreign
_SNDFILE_CONTAINERS = {"wav", "w64", "rf64", "flac", "ogg", "aiff", "caf", "au", "voc", "sndfile", "ircam", "nistsphere"}


def _container_magic(head: bytes) -> bool:
    """Whether the first bytes of a file are a container only FFmpeg reads here (MP4/M4A/3GP/MOV,
    Matroska/WebM, ADTS AAC, ASF/WMA, AMR)."""
    return (head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3" or head[:2] in (b"\xff\xf1", b"\xff\xf9")
            or head[:4] == b"\x30\x26\xb2\x75" or head[:5] == b"#!AMR")


class AudioError(ValueError):
    """A recording that cannot be used, with a one-line message naming it and the problem."""

    def __init__(self, source: object, problem: str):
        self.source = _describe(source)
        self.problem = " ".join(str(problem).split())  # one line, whatever a library put in it
        super().__init__(f"{self.source}: {self.problem}")


class TooLongError(AudioError):
    """A recording longer than the decode limit: ``limit`` (s), and ``seconds``, its length (s) when
    its header states it, else ``None`` (decoding stopped at the limit)."""

    def __init__(self, source: object, limit: float, seconds: float | None = None):
        self.limit, self.seconds = float(limit), seconds
        if seconds is None:
            problem = f"clip is longer than the {limit:g} s limit"
        else:
            problem = f"clip is {seconds:.1f} s long (as its header states), over the {limit:g} s limit"
        super().__init__(source, f"{problem}; pass --max-seconds (max_seconds= in Python) to raise it")


def _describe(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, str) else "<audio>"


#: libsndfile's prefix naming what it opened; an AudioError names the source already.
_OPENING = re.compile(r"^Error opening (<[^>]*>|'[^']*'|\"[^\"]*\"): ")


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return _OPENING.sub("", text[-1])[:200] if text else type(err).__name__


def decode_limit(max_seconds: float | None) -> float:
    """The limit (s) ``max_seconds`` stands for: itself, or :data:`DEFAULT_MAX_SECONDS` for ``None``.

    Raises ``ValueError`` for a limit that is not a positive, finite number (a caller's mistake;
    the command line checks its ``--max-seconds`` before)."""
    if max_seconds is None:
        return DEFAULT_MAX_SECONDS
    limit = float(max_seconds)
    if not (math.isfinite(limit) and limit > 0):
        raise ValueError(f"max_seconds must be a positive, finite number of seconds, got {max_seconds!r}")
    return limit


def check_duration(frames: int, sample_rate: int, max_seconds: float | None, source: object = "<audio>") -> None:
    """Raise :class:`TooLongError` when ``frames`` at ``sample_rate`` Hz last longer than the limit
    (``max_seconds``, see :func:`decode_limit`)."""
    limit = decode_limit(max_seconds)
    if sample_rate > 0 and frames > limit * sample_rate:
        raise TooLongError(source, limit, frames / sample_rate)


def _handle(source: AudioSource) -> object:
    """What soundfile opens for ``source``, after the checks a path needs."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            if not path.exists():
                raise AudioError(source, "no such file")
            if path.is_dir():
                raise AudioError(source, "is a directory, not an audio file")
            if not os.access(path, os.R_OK):
                raise AudioError(source, "permission denied")
            if path.stat().st_size == 0:
                raise AudioError(source, "empty file (0 bytes)")
        except OSError as err:  # a name too long, a broken mount, ...
            raise AudioError(source, f"could not be read ({err.strerror or _short(err)})") from None
        return path
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise AudioError(source, "empty input (0 bytes)")
        return _Bytes(source)
    return source


class _Bytes(io.BytesIO):
    """The bytes of a file for libsndfile's virtual I/O. A corrupt file can make libsndfile seek
    before the start; ``BytesIO`` raises there, inside soundfile's C callback, which prints a
    traceback and answers 0: this goes to 0 without one."""

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        try:
            return super().seek(offset, whence)
        except (ValueError, OverflowError):
            return super().seek(0)


def _read_into(f: sf.SoundFile, buffer: np.ndarray) -> int:
    """Decode up to ``len(buffer)`` frames into ``buffer`` ``(frames, channels)`` float32; the count read.

    Calls libsndfile directly: ``SoundFile.read`` sizes its output from the header's frame count
    (2**63 - 1 for a FLAC of unknown length: "array is too big") and seeks after each read, which
    fails on such a stream."""
    frames = sf._snd.sf_readf_float(f._file, sf._ffi.cast("float *", sf._ffi.from_buffer(buffer)), len(buffer))
    code = sf._snd.sf_error(f._file)
    if code:
        raise sf.LibsndfileError(code)
    return int(frames)


def stream(source: AudioSource, *, max_seconds: float | None = None,
           block_seconds: float | None = None) -> Iterator[tuple[np.ndarray, int]]:
    """Decode ``source`` block by block: yields ``(block, sample_rate)``, ``block`` a new float32 array
    ``(frames, channels)`` of the file's samples, unchanged, at ``sample_rate`` Hz.

    Args:
        source: a path, a binary file object or the file's bytes.
        max_seconds: the decode limit (s; ``None``: :data:`DEFAULT_MAX_SECONDS`). A file whose header
            states a longer length is refused before any sample is decoded; one that does not (or
            lies) is refused as soon as the decoded samples pass the limit.
        block_seconds: audio per block (s; at most :data:`MAX_BLOCK_SAMPLES` samples); default
            :data:`BLOCK_SAMPLES` samples.

    Raises:
        AudioError: (one line, naming ``source``) when it cannot be opened or decoded, has a sample
            rate or channel count out of range or no samples; :class:`TooLongError` past the limit.
    """
    limit = decode_limit(max_seconds)
    handle = _handle(source)
    start = _tell(handle)
    problem = None
    try:
        f = sf.SoundFile(handle)
    except AudioError:
        raise
    except _DECODE_ERRORS as err:  # not a format libsndfile reads: FFmpeg's turn (the formats extra)
        problem = f"not a readable audio file ({_short(err)})"
    except OSError as err:
        raise AudioError(source, f"could not be read ({_short(err)})") from None
    if problem is not None:
        yield from _stream_av(source, handle, start, limit, block_seconds, problem)
        return
    with f:
        rate, channels, declared = int(f.samplerate), int(f.channels), int(f.frames)
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise AudioError(source, f"sample rate {rate} Hz is outside the supported "
                                     f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
        if not 1 <= channels <= MAX_CHANNELS:
            raise AudioError(source, f"has {channels} channels; 1 to {MAX_CHANNELS} are supported")
        max_frames = int(limit * rate)
        if max_frames < declared < _UNKNOWN_FRAMES:  # refused at once; a length it does not state is decoded
            raise TooLongError(source, limit, declared / rate)
        if block_seconds is None:
            per_block = max(1, BLOCK_SAMPLES // channels)
        else:
            per_block = max(1, min(int(block_seconds * rate), MAX_BLOCK_SAMPLES // channels))
        total = 0
        while True:
            buffer = np.empty((min(per_block, max_frames - total + 1), channels), dtype=np.float32)
            try:
                count = _read_into(f, buffer)
            except _DECODE_ERRORS as err:
                raise AudioError(source, f"not a readable audio file ({_short(err)})") from None
            except OSError as err:
                raise AudioError(source, f"could not be read ({_short(err)})") from None
            if count <= 0:
                break
            total += count
            if total > max_frames:
                raise TooLongError(source, limit)
            yield buffer[:count], rate
        if total == 0:
            raise AudioError(source, "contains no samples")


def _tell(handle) -> int | None:
    if isinstance(handle, Path):
        return None
    try:
        return handle.tell()
    except (AttributeError, OSError, ValueError):
        return None


def _stream_av(source, handle, start: int | None, limit: float, block_seconds: float | None,
               problem: str) -> Iterator[tuple[np.ndarray, int]]:
    """:func:`stream` through PyAV for what libsndfile cannot read; ``problem``: libsndfile's answer,
    the error when FFmpeg cannot read the file either. Decodes frame by frame: at most one block plus one
    frame is held, and decoding stops once it passes ``limit`` (s), whatever the container states."""
    if not isinstance(handle, Path):
        try:
            handle.seek(start or 0)
        except (AttributeError, OSError, ValueError):
            raise AudioError(source, problem) from None
    try:
        import av
    except ImportError:
        try:
            if isinstance(handle, Path):
                with open(handle, "rb") as f:
                    head = f.read(16)
            else:
                head = handle.read(16)
        except (OSError, ValueError):
            head = b""
        raise AudioError(source, f"{problem}; {FORMATS_HINT}" if _container_magic(head) else problem) from None
    try:
        container = av.open(str(handle) if isinstance(handle, Path) else handle, mode="r")
    except Exception:  # noqa: BLE001 - FFmpeg cannot read it either: libsndfile's answer stands
        raise AudioError(source, problem) from None
    with container:
        if set(str(container.format.name).split(",")) & _SNDFILE_CONTAINERS:  # libsndfile's own format: its answer stands
            raise AudioError(source, problem)
        if not container.streams.audio:
            raise AudioError(source, "has no audio stream")
        audio_stream = container.streams.audio[0]
        rate = int(audio_stream.codec_context.sample_rate or audio_stream.rate or 0)
        channels = int(audio_stream.codec_context.channels or 0)
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise AudioError(source, f"sample rate {rate} Hz is outside the supported "
                                     f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
        if not 1 <= channels <= MAX_CHANNELS:
            raise AudioError(source, f"has {channels} channels; 1 to {MAX_CHANNELS} are supported")
        declared = container.duration / 1e6 if container.duration and container.duration > 0 else None
        if declared is not None and declared > limit + 0.5:  # containers round their duration
            raise TooLongError(source, limit, declared)
        max_frames = int(limit * rate)
        per_block = max(1, BLOCK_SAMPLES // channels) if block_seconds is None else \
            max(1, min(int(block_seconds * rate), MAX_BLOCK_SAMPLES // channels))
        resampler = av.AudioResampler(format="fltp", layout=audio_stream.codec_context.layout, rate=rate)
        pending: list[np.ndarray] = []
        held = total = 0
        try:
            for frame in container.decode(audio_stream):
                for out in resampler.resample(frame):
                    samples = np.ascontiguousarray(out.to_ndarray().T, dtype=np.float32)  # (frames, channels)
                    if samples.shape[1] != channels:
                        raise AudioError(source, f"changes its channel count mid-stream ({channels} to {samples.shape[1]})")
                    total += len(samples)
                    if total > max_frames:
                        raise TooLongError(source, limit)
                    pending.append(samples)
                    held += len(samples)
                    if held >= per_block:
                        joined = np.concatenate(pending)
                        cut = held - held % per_block
                        pending, held = [joined[cut:]], held - cut
                        for at in range(0, cut, per_block):
                            yield joined[at:at + per_block], rate
        except AudioError:
            raise
        except Exception as err:  # noqa: BLE001 - whatever FFmpeg raises on a damaged stream
            raise AudioError(source, f"not a readable audio file ({_short(err)})") from None
        if held:
            yield np.concatenate(pending), rate
        if total == 0:
            raise AudioError(source, "contains no samples")


def read(source: AudioSource, *, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Read a file soundfile understands (wav, flac, ogg, mp3, ...) without changing it.

    Args:
        source: a path, a binary file object or the file's bytes.
        max_seconds: the decode limit (s; ``None``: :data:`DEFAULT_MAX_SECONDS`), see :func:`stream`.

    Returns:
        ``(samples, sample_rate)``: float32 array of shape ``(frames, channels)`` and the rate (Hz).
    """
    blocks, rate = [], 0
    for block, rate in stream(source, max_seconds=max_seconds):
        blocks.append(block)
    return (blocks[0] if len(blocks) == 1 else np.concatenate(blocks)), rate


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
    """Read ``source`` and return float32 mono samples of shape ``(samples,)`` at ``sample_rate`` Hz:
    what :func:`prepare` makes of :func:`read`'s samples, decoded block by block (:func:`stream`;
    ``max_seconds``: the decode limit, ``None`` for :data:`DEFAULT_MAX_SECONDS`), each block averaged
    to mono and resampled as it comes (soxr's stream, the same samples as resampling at once), so
    no more than the result and one block are held."""
    target = int(sample_rate)
    if not MIN_SAMPLE_RATE <= target <= MAX_SAMPLE_RATE:
        raise ValueError(f"target sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    parts: list[np.ndarray] = []
    resampler = None
    for block, rate in stream(source, max_seconds=max_seconds):
        mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
        if not np.isfinite(mono).all():
            raise AudioError(source, "contains NaN or infinite samples")
        if rate != target:
            if resampler is None:
                resampler = soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ")
            mono = resampler.resample_chunk(mono)
        parts.append(mono)
    if resampler is not None:
        parts.append(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    wave = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if wave.size == 0:  # a handful of input samples can round down to none
        wave = np.zeros(1, dtype=np.float32)
    return np.ascontiguousarray(wave, dtype=np.float32)
