"""Voice-activity segmentation: where the words are in a recording.

A band-energy detector with a noise-adaptive threshold and hysteresis. The signal is cut into
frames of ``frame_ms`` (Hann window, every ``hop_ms``) and each frame's power spectrum is taken.

*Noise estimate.* The noise power of every frequency bin is a low percentile
(``floor_percentile``) of that bin's power over a sliding window (``floor_s`` back and
``lookahead_ms`` ahead, so it is known from the first frame on), divided by the same percentile of
an exponential distribution (a bin of stationary noise has exponentially distributed power), so it
estimates the mean noise power. It follows background noise of any colour; after a step up in
noise level it needs about ``(1 - floor_percentile / 100) * floor_s`` to catch up (the louder
noise can pass for a word meanwhile). It is refreshed every frame during the first second and
every ``floor_every`` frames after that. Decisions lag the input by ``lookahead_ms``.

*Level.* A frame's level is its power in ``band_hz`` (where most of the energy of speech is and
less of broadband noise's). The noise floor is the noise estimate's power in the same band (never
below ``absolute_floor_db``), so thresholds are relative to the noise whatever its level. Levels are
in dB relative to a full-scale signal's mean power.

*Words.* A word starts when the level rises ``start_db`` above the floor (and within ``range_db``
of the loudest frame seen so far) and ends after ``min_gap_ms`` of frames below ``stop_db`` above
the floor. Its speech runs from the first to the last loud frame (their centres, widened by half a
hop; a sharp burst comes out about ``frame_ms - hop_ms`` longer than it is). Words with less
speech than ``min_word_ms`` are dropped; words are cut at ``max_word_s``; each kept word is padded
by ``pad_ms`` on both sides. With the defaults a pause of 50 ms or more between words always
splits them and one of 20 ms does not.

*Speech.* With ``speech`` on (the default), the learned speech detector
(:mod:`spokenword.transcribe.speech`) scores every 32 ms as well. A word it hears (``speech_on``
somewhere in it) starts at most ``onset_ms`` before it first heard it (what was loud before that, a
breath or a click, is given out as a region of its own) and ends where it hears no speech
(``speech_off``) for ``speech_gap_ms``, even if the level stays up: in a room the level between two
words often does not fall back to the floor. Each region carries the highest probability it reached
(:attr:`Segment.speech_score`), so the transcriber can drop what was loud but not speech.

Each :class:`Segment` carries, besides its samples, the detected speech region without padding,
the noise estimate at the time (for the classifier's noise suppression, see
:mod:`spokenword.transcribe`) and the level of each frame of the word (for splitting words run
together at level minima, :func:`split_points`).

:class:`StreamingSegmenter` consumes blocks of any size with bounded memory; :func:`segments`
runs it on a whole signal, so both give identical results.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from scipy import signal


@dataclass(frozen=True)
class Segment:
    """A word region: samples ``[start, stop)`` of the stream and the samples themselves.

    Attributes:
        start, stop: the region with its padding (stream sample indices).
        samples: ``samples[start:stop]`` of the stream.
        speech_start, speech_stop: the detected speech without padding (``None`` when unknown:
            then the whole region is speech).
        noise: the noise power per frequency bin when the word was found, as the mean of
            ``|rfft(window * frame)| ** 2`` over noise frames (``window``: Hann of ``n_fft``
            samples), or ``None``.
        n_fft: the frame length of ``noise`` (samples).
        levels: level (dB) of each frame of the word: frame ``i`` is centred on ``speech_start +
            i * hop + hop // 2``.
        hop: samples between the frames of ``levels``.
        speech_score: the learned speech detector's highest probability in the word (0-1), or ``None``
            when it was not asked (``VadSettings.speech`` off).
    """

    start: int
    stop: int
    samples: np.ndarray
    speech_start: int | None = None
    speech_stop: int | None = None
    noise: np.ndarray | None = field(default=None, repr=False)
    n_fft: int = 0
    levels: np.ndarray | None = field(default=None, repr=False)
    hop: int = 0
    speech_score: float | None = None

    def seconds(self, sample_rate: int) -> tuple[float, float]:
        """``(start, end)`` in seconds."""
        return self.start / sample_rate, self.stop / sample_rate

    @property
    def speech(self) -> tuple[int, int]:
        """``(speech_start, speech_stop)``; the whole region when the segmenter did not say."""
        return (self.start if self.speech_start is None else self.speech_start,
                self.stop if self.speech_stop is None else self.speech_stop)

    def region(self, first: int, last: int, pad: int) -> "Segment":
        """The sub-segment with speech ``[first, last)`` (stream indices inside this segment) and up
        to ``pad`` samples of context on each side (as far as this segment's samples reach)."""
        lo, hi = max(self.start, first - pad), min(self.stop, last + pad)
        levels = None
        if self.levels is not None and self.hop and self.speech_start is not None:
            i = max(0, (first - self.speech_start) // self.hop)
            j = max(i, (last - self.speech_start) // self.hop)
            levels = self.levels[i:j]
        return Segment(lo, hi, self.samples[lo - self.start : hi - self.start], first, last, self.noise, self.n_fft,
                       levels, self.hop, self.speech_score)


@dataclass(frozen=True)
class VadSettings:
    """Detector settings (times in milliseconds, levels in dB).

    The defaults were chosen on spoken numbers built from FSDD training recordings (takes 10-49:
    ``python -m benchmarks.transcribe --set dev``), clean and in white noise at 20 and 10 dB, by the words
    missed, merged and split and by the digit error rate; the speech detector's on the dev numbers of
    ``python -m benchmarks.rooms --set dev`` as well; never on test recordings.
    """

    frame_ms: float = 32.0
    hop_ms: float = 10.0
    """analysis frames of the band level"""
    start_db: float = 3.0
    stop_db: float = 1.0
    """a word starts this far above the noise floor and lasts while the level stays ``stop_db`` above it"""
    range_db: float = 40.0
    """levels this far below the loudest so far never start a word (a quiet echo of a loud one)"""
    min_word_ms: float = 70.0
    min_gap_ms: float = 20.0
    """shorter detections are dropped (clicks); shorter pauses do not end a word"""
    pad_ms: float = 40.0
    """context kept on each side of a word"""
    floor_s: float = 2.0
    floor_percentile: float = 10.0
    floor_every: int = 10
    """the noise floor: this percentile of the last ``floor_s`` seconds of frames, refreshed every
    ``floor_every`` frames"""
    max_word_s: float = 2.0
    """a word is cut at this length (a long noise never holds the stream)"""
    absolute_floor_db: float = -70.0
    """levels below this (dB full scale) are never speech"""
    lookahead_ms: float = 300.0
    """frames seen before the one being decided, so the floor includes the noise just after it"""
    band_hz: tuple[float, float] | None = (150.0, 2500.0)
    """the band whose level is measured (Hz): most of the energy of speech, little of hum and hiss"""
    speech: bool = True
    """also ask the learned speech detector (:mod:`spokenword.transcribe.speech`): each word carries the
    highest speech probability it reached (:attr:`Segment.speech_score`), and a word it heard ends where
    the detector stays under ``speech_off`` for ``speech_gap_ms`` (a level that stays up, such as a
    louder floor or a reverberation tail, does not hold it open)"""
    speech_on: float = 0.5
    """a word is *heard* when the detector reaches this somewhere in it"""
    speech_off: float = 0.5
    speech_gap_ms: float = 100.0
    """a heard word ends where the detector stays under ``speech_off`` this long (shorter dips are part of it)"""
    onset_ms: float = 100.0
    """a heard word starts at most this long before the detector first reaches ``speech_on`` in it: a loud
    stretch before that (a breath, a click, noise) is given out as a word of its own, not heard"""


class StreamingSegmenter:
    """Feed blocks of mono float samples at ``sample_rate`` Hz; get finished :class:`Segment` s.

    Memory is bounded by the longest word (``max_word_s``; longer regions are cut) plus the noise
    window (``floor_s`` of power spectra), whatever the length of the stream.
    """

    def __init__(self, sample_rate: int, settings: VadSettings | None = None):
        self.rate = int(sample_rate)
        self.s = settings or VadSettings()
        self.frame = max(8, int(self.rate * self.s.frame_ms / 1000))
        self.hop = max(1, int(self.rate * self.s.hop_ms / 1000))
        self.pad = int(self.rate * self.s.pad_ms / 1000)
        self.window = signal.get_window("hann", self.frame).astype(np.float64)
        freqs = np.fft.rfftfreq(self.frame, 1.0 / self.rate)
        if self.s.band_hz is not None:
            low, high = self.s.band_hz
            self._band = (freqs >= low) & (freqs <= min(high, 0.5 * self.rate))
        else:
            self._band = freqs > 0
        if not self._band.any():
            self._band = freqs > 0
        # band power of |rfft|^2 -> mean power of the band-limited signal (Parseval, one-sided)
        self._scale = 2.0 / (self.frame * float(np.sum(self.window**2)))
        q = min(max(self.s.floor_percentile, 1.0), 99.0) / 100.0
        self._exp_quantile = -np.log1p(-q)  # that percentile of an exponential of mean 1
        self._history: deque[np.ndarray] = deque(maxlen=max(10, int(self.s.floor_s * 1000 / self.s.hop_ms)))
        self._pending: deque[tuple[int, np.ndarray]] = deque()  # analysed frames awaiting a decision
        self._lookahead = max(0, int(self.s.lookahead_ms / self.s.hop_ms))
        self._buffer = np.zeros(0, dtype=np.float32)  # samples from _buffer_start on
        self._buffer_start = 0
        self._next_frame = 0  # stream index of the next frame to analyse
        self._steps = 0  # frames decided so far
        self._noise: np.ndarray | None = None
        self._floor_db = self.s.absolute_floor_db
        self._peak = -np.inf
        self._word_start: int | None = None
        self._last_loud: int | None = None  # end of the last frame above stop threshold
        self._word_levels: list[float] = []
        self._speech = None
        self._probs: deque[tuple[int, float]] = deque()  # (chunk end, speech probability), not yet passed
        self._speech_max = 0.0  # the highest speech probability of the word in progress
        self._onset = int(self.rate * self.s.onset_ms / 1000)
        self._silent_from: int | None = None  # first frame of the detector's current run under speech_off
        self._speech_gap = int(self.rate * self.s.speech_gap_ms / 1000)
        if self.s.speech:
            from spokenword.transcribe.speech import SpeechProbability

            self._speech = SpeechProbability(self.rate)

    # -- state that callers may look at ---------------------------------------------------------
    @property
    def position(self) -> int:
        """Stream index up to which frames have been decided: no word that is not yet emitted can
        end before it, and no new word can start before it."""
        return self._pending[0][0] if self._pending else self._next_frame

    @property
    def in_word(self) -> bool:
        """Whether a word is in progress (started, not yet ended)."""
        return self._word_start is not None

    @property
    def word_start(self) -> int | None:
        """Where the word in progress started (stream index), or ``None``."""
        return self._word_start

    @property
    def word_speech(self) -> int:
        """Samples of speech the word in progress will have at least, whatever comes next (0 when none):
        as :meth:`_emit` measures it, to its last loud frame or to where the detector fell silent, and, for a
        word the detector has not heard yet, to where a cut at its first heard frame would fall."""
        if self._word_start is None or self._last_loud is None:
            return 0
        heard = self._speech is None or self._speech_max >= self.s.speech_on
        stop = self._last_loud
        if heard and self._speech is not None and self._silent_from is not None:
            stop = min(stop, self._silent_from + self.frame)
        speech = stop - self._word_start - self.frame + self.hop
        if not heard:
            speech = min(speech, self.position - self._onset - self._word_start)
        return max(0, speech)

    @property
    def word_heard(self) -> bool:
        """Whether the speech detector has heard the word in progress (reached ``speech_on`` in it); false
        between words and without a detector."""
        return self._speech is not None and self._word_start is not None and self._speech_max >= self.s.speech_on

    @property
    def noise(self) -> np.ndarray | None:
        """The current noise power per frequency bin (see :class:`Segment`), or ``None`` before the
        first frame."""
        return None if self._noise is None else self._noise.copy()

    def level_db(self, power: np.ndarray) -> float:
        """Band level (dB) of a power spectrum ``(frame // 2 + 1,)``."""
        return float(10.0 * np.log10(self._scale * float(np.sum(power[self._band])) + 1e-12))

    # -- feeding ----------------------------------------------------------------------------------
    def feed(self, block: np.ndarray) -> Iterator[Segment]:
        """Add samples; yield the words that ended within them."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if self._speech is not None:
            self._probs.extend(self._speech.feed(block))
        self._buffer = np.concatenate([self._buffer, block])
        end = self._buffer_start + len(self._buffer)
        count = 0 if self._next_frame + self.frame > end else (end - self.frame - self._next_frame) // self.hop + 1
        if count > 0:
            offset = self._next_frame - self._buffer_start
            span = self._buffer[offset : offset + (count - 1) * self.hop + self.frame].astype(np.float64)
            frames = np.lib.stride_tricks.sliding_window_view(span, self.frame)[:: self.hop][:count]
            powers = np.abs(np.fft.rfft(frames * self.window, axis=-1)) ** 2
            for power in powers:
                self._pending.append((self._next_frame, power))
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
        self._word_levels = []

    # -- decisions --------------------------------------------------------------------------------
    def _update_noise(self, current: np.ndarray) -> None:
        # the frames around this one; at a stream's very start (no lookahead) this frame alone
        powers = np.stack(list(self._history) + [p for _, p in self._pending] or [current])
        self._noise = np.percentile(powers, self.s.floor_percentile, axis=0) / self._exp_quantile
        self._floor_db = max(self.level_db(self._noise), self.s.absolute_floor_db)

    def _speech_at(self, position: int) -> float:
        """The detector's probability for the chunk holding the centre of the frame at ``position``
        (the latest chunk when that one is not complete yet: the end of a stream, no lookahead)."""
        centre = position + self.frame // 2
        while len(self._probs) > 1 and self._probs[0][0] <= centre:
            self._probs.popleft()
        return self._probs[0][1] if self._probs else 0.0

    def _step(self, position: int, power: np.ndarray) -> Iterator[Segment]:
        # every frame while the window is short (the start of a stream, which may begin with a
        # word), then every floor_every frames
        if len(self._history) < 100 or self._steps % max(1, self.s.floor_every) == 0:
            self._update_noise(power)
        self._steps += 1
        self._history.append(power)
        level = self.level_db(power)
        floor = self._floor_db
        self._peak = max(self._peak, level)
        loud_enough = level > self._peak - self.s.range_db
        speech = self._speech_at(position) if self._speech is not None else 1.0
        if self._word_start is None:
            if level > floor + self.s.start_db and loud_enough and level > self.s.absolute_floor_db:
                self._word_start = position
                self._last_loud = position + self.frame
                self._word_levels = [level]
                self._speech_max = speech
                self._silent_from = None
            return
        self._word_levels.append(level)
        if self._speech is not None and self._speech_max < self.s.speech_on <= speech:
            cut = position - self._onset  # first heard here: what came well before is not this word
            frames = (cut - self._word_start) // self.hop
            if frames > 0:
                before = self._emit(self._word_start, self._word_start + (frames - 1) * self.hop + self.frame,
                                    self._word_levels[:frames])
                self._word_start += frames * self.hop
                self._word_levels = self._word_levels[frames:]
                if before is not None:
                    yield before
        self._speech_max = max(self._speech_max, speech)
        if speech >= self.s.speech_off:
            self._silent_from = None
        elif self._silent_from is None:
            self._silent_from = position
        heard = self._speech_max >= self.s.speech_on
        if level > floor + self.s.stop_db:
            if not heard or self._silent_from is None or position - self._silent_from < self._speech_gap:
                self._last_loud = position + self.frame
            else:  # the detector heard no speech for speech_gap_ms: the word ended where that began
                self._last_loud = min(self._last_loud or position, self._silent_from + self.frame)
        gap = position + self.frame - (self._last_loud or position)
        too_long = position - self._word_start > self.s.max_word_s * self.rate
        if gap >= self.s.min_gap_ms * self.rate / 1000 or too_long:
            segment = self._emit(self._word_start, self._last_loud or position)
            self._word_start = None
            self._word_levels = []
            if segment is not None:
                yield segment

    def _emit(self, start: int, stop: int, levels: list[float] | None = None) -> Segment | None:
        """The word from the frame at ``start`` to the loud frame ending at ``stop``. Its speech is
        reported between the first and last loud frames' centres, widened by half a hop: where a
        sharp onset or ending lies when a frame is loud and its neighbour is not."""
        frames = max(1, (stop - self.frame - start) // self.hop + 1)
        first_speech = start + (self.frame - self.hop) // 2
        last_speech = stop - self.frame + (self.frame + self.hop) // 2
        if last_speech - first_speech < self.s.min_word_ms * self.rate / 1000:
            return None
        first = max(self._buffer_start, first_speech - self.pad)
        last = min(self._buffer_start + len(self._buffer), last_speech + self.pad)
        samples = self._buffer[first - self._buffer_start : last - self._buffer_start].copy()
        levels = np.asarray((self._word_levels if levels is None else levels)[:frames], dtype=np.float32)
        return Segment(first, last, samples, first_speech, last_speech, self.noise, self.frame, levels, self.hop,
                       self._speech_max if self._speech is not None else None)

    def _trim(self) -> None:
        """Drop samples no future segment can need."""
        keep_from = self.position - self.pad - self.frame
        if self._word_start is not None:
            keep_from = min(keep_from, self._word_start - self.pad)
        keep_from = max(keep_from, self._buffer_start)
        drop = keep_from - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start = keep_from


def split_points(segment: Segment, min_part: int, min_depth_db: float = 3.0, limit: int = 5) -> list[int]:
    """Where ``segment`` could be cut in two words: minima of its frame levels (smoothed over three
    frames) at least ``min_depth_db`` below the maxima on both sides (their prominence, as
    :func:`scipy.signal.find_peaks` measures it) and at least ``min_part`` samples from both ends
    of the speech. Returns up to ``limit`` stream indices (frame centres), deepest first."""
    if segment.levels is None or not segment.hop or segment.speech_start is None:
        return []
    levels = np.asarray(segment.levels, dtype=np.float64)
    if len(levels) < 3:
        return []
    smooth = np.convolve(np.pad(levels, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    minima, props = signal.find_peaks(-smooth, prominence=min_depth_db)
    first, last = segment.speech
    centres = first + minima * segment.hop + segment.hop // 2
    keep = (centres - first >= min_part) & (last - centres >= min_part)
    order = np.argsort(-props["prominences"][keep], kind="stable")[:limit]
    return [int(c) for c in centres[keep][order]]


def segments(samples: np.ndarray, sample_rate: int, settings: VadSettings | None = None) -> list[Segment]:
    """All word regions of a whole signal ``(T,)`` at ``sample_rate`` Hz."""
    segmenter = StreamingSegmenter(sample_rate, settings)
    found = list(segmenter.feed(samples))
    found.extend(segmenter.flush())
    return found
