"""Voice-activity segmentation: where the words are in a recording.

An energy detector with hysteresis. The signal is cut into frames of ``frame_ms`` (every
``hop_ms``); a frame's level is its RMS in dB. A word starts when the level rises ``start_db``
above the noise floor (and within ``range_db`` of the loudest frame seen so far) and ends after
``min_gap_ms`` of frames below ``stop_db`` above the floor. Words shorter than ``min_word_ms``
are dropped; each kept word is padded by ``pad_ms`` on both sides.

Levels are measured after a band-pass filter on ``band_hz`` (where most of the energy of speech
is and less of broadband noise's), with filter state carried across blocks.

The noise floor is a low percentile of the frame levels in a sliding window (``floor_s`` back
and ``lookahead_ms`` ahead, so the floor is known from the first frame on), so the detector
follows slowly changing background noise; decisions lag the input by ``lookahead_ms``. The gap
is measured from the end of the last loud frame, so with the defaults a pause of 50 ms or more
between words always splits them and one of 20 ms does not. :class:`StreamingSegmenter` consumes
blocks of any size with bounded memory; :func:`segments` runs it on a whole signal, so both give
identical results.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from scipy import signal


@dataclass(frozen=True)
class Segment:
    """A word region: samples ``[start, stop)`` of the stream and the samples themselves."""

    start: int
    stop: int
    samples: np.ndarray

    def seconds(self, sample_rate: int) -> tuple[float, float]:
        """``(start, end)`` in seconds."""
        return self.start / sample_rate, self.stop / sample_rate


@dataclass(frozen=True)
class VadSettings:
    """Detector settings (times in milliseconds, levels in dB).

    The defaults were chosen on spoken numbers built from FSDD training recordings (takes 10-49;
    ``benchmarks/transcribe.py`` with ``part="train"``), clean and in white noise at 20 and 10 dB,
    by how often the number of segments equals the number of words; never on test recordings.
    """

    frame_ms: float = 20.0
    hop_ms: float = 10.0
    start_db: float = 9.0
    stop_db: float = 3.0
    range_db: float = 40.0
    min_word_ms: float = 100.0
    min_gap_ms: float = 30.0
    pad_ms: float = 40.0
    floor_s: float = 5.0
    floor_percentile: float = 10.0
    max_word_s: float = 2.0
    absolute_floor_db: float = -70.0
    lookahead_ms: float = 300.0
    band_hz: tuple[float, float] | None = (150.0, 2500.0)


class StreamingSegmenter:
    """Feed blocks of mono float samples at ``sample_rate`` Hz; get finished :class:`Segment` s.

    Memory is bounded by the longest word (``max_word_s``; longer regions are cut) plus the noise
    floor window, whatever the length of the stream.
    """

    def __init__(self, sample_rate: int, settings: VadSettings | None = None):
        self.rate = int(sample_rate)
        self.s = settings or VadSettings()
        self.frame = max(1, int(self.rate * self.s.frame_ms / 1000))
        self.hop = max(1, int(self.rate * self.s.hop_ms / 1000))
        self.pad = int(self.rate * self.s.pad_ms / 1000)
        self._levels: deque[float] = deque(maxlen=max(10, int(self.s.floor_s * 1000 / self.s.hop_ms)))
        self._pending: deque[tuple[int, float]] = deque()  # analysed frames awaiting a decision
        self._lookahead = max(0, int(self.s.lookahead_ms / self.s.hop_ms))
        self._sos = None
        if self.s.band_hz is not None:
            low, high = self.s.band_hz
            high = min(high, 0.45 * self.rate)
            if 0 < low < high:
                self._sos = signal.butter(2, [low, high], btype="bandpass", fs=self.rate, output="sos")
                self._zi = np.zeros((self._sos.shape[0], 2))
        self._filtered = np.zeros(0, dtype=np.float32)  # band-passed copy of _buffer, for levels
        self._buffer = np.zeros(0, dtype=np.float32)  # samples from _buffer_start on
        self._buffer_start = 0
        self._next_frame = 0  # stream index of the next frame to analyse
        self._peak = -np.inf
        self._word_start: int | None = None
        self._last_loud: int | None = None  # end of the last frame above stop threshold

    def _floor(self) -> float:
        levels = list(self._levels) + [level for _, level in self._pending]
        if not levels:
            return self.s.absolute_floor_db
        return max(float(np.percentile(levels, self.s.floor_percentile)), self.s.absolute_floor_db)

    def feed(self, block: np.ndarray) -> Iterator[Segment]:
        """Add samples; yield the words that ended within them."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self._buffer = np.concatenate([self._buffer, block])
        if self._sos is not None:
            filtered, self._zi = signal.sosfilt(self._sos, block, zi=self._zi)
            self._filtered = np.concatenate([self._filtered, filtered.astype(np.float32)])
        else:
            self._filtered = self._buffer
        end = self._buffer_start + len(self._buffer)
        while self._next_frame + self.frame <= end:
            offset = self._next_frame - self._buffer_start
            frame = self._filtered[offset : offset + self.frame]
            level = 10.0 * np.log10(float(np.mean(frame.astype(np.float64) ** 2)) + 1e-12)
            self._pending.append((self._next_frame, level))
            self._next_frame += self.hop
            if len(self._pending) > self._lookahead:
                yield from self._step(*self._pending.popleft())
        self._trim()

    def flush(self) -> Iterator[Segment]:
        """End of stream: decide the remaining frames; yield the word in progress, if any."""
        while self._pending:
            yield from self._step(*self._pending.popleft())
        if self._word_start is not None and self._last_loud is not None:
            segment = self._emit(self._word_start, self._last_loud)
            if segment is not None:
                yield segment
        self._word_start = None

    def _step(self, position: int, level: float) -> Iterator[Segment]:
        floor = self._floor()
        self._peak = max(self._peak, level)
        loud_enough = level > self._peak - self.s.range_db
        if self._word_start is None:
            if level > floor + self.s.start_db and loud_enough and level > self.s.absolute_floor_db:
                self._word_start = position
                self._last_loud = position + self.frame
            self._levels.append(level)
            return
        self._levels.append(level)
        if level > floor + self.s.stop_db:
            self._last_loud = position + self.frame
        gap = position + self.frame - (self._last_loud or position)
        too_long = position - self._word_start > self.s.max_word_s * self.rate
        if gap >= self.s.min_gap_ms * self.rate / 1000 or too_long:
            segment = self._emit(self._word_start, self._last_loud or position)
            self._word_start = None
            if segment is not None:
                yield segment

    def _emit(self, start: int, stop: int) -> Segment | None:
        if stop - start < self.s.min_word_ms * self.rate / 1000:
            return None
        first = max(self._buffer_start, start - self.pad)
        last = min(self._buffer_start + len(self._buffer), stop + self.pad)
        samples = self._buffer[first - self._buffer_start : last - self._buffer_start].copy()
        return Segment(first, last, samples)

    def _trim(self) -> None:
        """Drop samples no future segment can need."""
        oldest = self._pending[0][0] if self._pending else self._next_frame
        keep_from = oldest - self.pad - self.frame
        if self._word_start is not None:
            keep_from = min(keep_from, self._word_start - self.pad)
        keep_from = max(keep_from, self._buffer_start)
        drop = keep_from - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._filtered = self._filtered[drop:]
            self._buffer_start = keep_from


def segments(samples: np.ndarray, sample_rate: int, settings: VadSettings | None = None) -> list[Segment]:
    """All word regions of a whole signal ``(T,)`` at ``sample_rate`` Hz."""
    segmenter = StreamingSegmenter(sample_rate, settings)
    found = list(segmenter.feed(samples))
    found.extend(segmenter.flush())
    return found
