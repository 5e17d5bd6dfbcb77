"""Connected digits: a recording of several words becomes a string of labels.

:class:`Transcriber` cuts the recording into word regions with
:class:`~spokenword.transcribe.segment.StreamingSegmenter` and classifies each region with a trained model
through its own preprocessing (:func:`spokenword.inference.load.load_model`). Regions whose best
score is below ``threshold`` are marked uncertain (``?`` in the text) rather than guessed. Regions the
model answers "not a word" (``_unknown_``, ``_silence_``: :mod:`spokenword.labels`, including a word
scored under the classifier's ``reject_below``) are dropped from the text and listed apart
(:attr:`Transcript.rejected`).
Files are read block by block, so memory stays bounded however long the recording is.

Between the detector and the words (:class:`WordSettings`):

- a detected region longer than nearly any single digit is cut in two at a level minimum when
  the model is more confident in the two halves than in the whole (words run together);
- a region longer than any one digit (``long_ms``) is cut at its best level minimum whatever the
  whole scores, as long as both halves are words (two digits run together in a room);
- a region the speech detector did not hear (:attr:`Segment.speech_score` under ``speech_on``) is
  answered ``_silence_`` unless the model scores a word at least ``unheard_score`` (a breath, a
  click or a noise burst gives no digit; a quiet digit in loud steady noise still does when the
  model is sure);
- a short region close to the previous one (the release of a final stop, as in "eight", or a
  word broken up by noise) is joined to it unless the model is clearly more confident in two
  words; so a word is given out only once nothing can be joined to it any more (at most
  ``merge_gap_ms`` after its end, plus the detector's look-ahead);
- before classifying, a region is cut to the detected speech plus ``context_ms`` on each side
  (the model was trained on clips trimmed of silence; more context brings in noise or the
  neighbouring word), and background noise is suppressed by spectral subtraction with the
  detector's noise estimate (the default model was trained on clean recordings); where there is
  no noise (digital silence) this changes nothing.

All of it was tuned on spoken numbers built from FSDD training takes (``python -m benchmarks.transcribe
--set dev``), never on the test takes.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator

import numpy as np
from scipy import signal

from spokenword import audio
from spokenword.labels import SILENCE, is_rejection
from spokenword.transcribe.segment import Segment, StreamingSegmenter, VadSettings, split_points

UNCERTAIN = "?"

#: Default score below which a word is printed as ``?``: the highest threshold at which a ``?``
#: hides a wrong guess at least as often as a right one, on the dev set (0.4 there: 51%) and on
#: numbers from the validation takes, which the model was not fitted on and scores less
#: confidently (0.3 there: 50%; 0.4: 39%). With the default model it costs nothing on clean dev
#: numbers and 0.1-0.3 points of digit error rate in noise (a ``?`` counts as an error).
DEFAULT_THRESHOLD = 0.3

#: Default decode limit of :class:`Transcriber` and ``spokenword transcribe`` (s): a recording of
#: connected digits may be long (a call, a dictation), so an hour rather than the 10 minutes of a
#: single clip (:data:`spokenword.audio.DEFAULT_MAX_SECONDS`). Memory does not grow with it (files
#: are read in blocks); time does, about linearly.
TRANSCRIBE_MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class Word:
    """One recognised word: times in seconds from the start of the recording. ``label`` may be
    ``_unknown_`` or ``_silence_`` (:attr:`rejected`): a region that is not a word of the model."""

    label: str
    score: float
    start: float
    end: float
    uncertain: bool

    @property
    def rejected(self) -> bool:
        """Whether the model answered "not a word" (other speech or noise) for this region."""
        return is_rejection(self.label)


@dataclass(frozen=True)
class Transcript:
    """The words of a recording, and the regions dropped as not a word (``rejected``), both in time order."""

    words: list[Word]
    rejected: list[Word] = field(default_factory=list)

    @classmethod
    def of(cls, words: Iterable[Word]) -> "Transcript":
        """A transcript from everything a :class:`TranscriptionStream` gave out, rejections set apart."""
        words = list(words)
        return cls([w for w in words if not w.rejected], [w for w in words if w.rejected])

    @property
    def text(self) -> str:
        """Labels joined (single characters, such as digits, without spaces); ``?`` for unsure words."""
        labels = [UNCERTAIN if w.uncertain else w.label for w in self.words]
        return ("" if all(len(x) == 1 for x in labels) else " ").join(labels)

    def to_dict(self) -> dict:
        # a rejected region has no "uncertain": it is not in the text either way
        rejected = [{"label": w.label, "score": w.score, "start": w.start, "end": w.end} for w in self.rejected]
        return {"text": self.text, "words": [asdict(w) for w in self.words], "rejected": rejected}


@dataclass(frozen=True)
class WordSettings:
    """How detected regions become words (times in milliseconds).

    Chosen on the dev sets (FSDD training takes, ``python -m benchmarks.transcribe --set dev``; ``long_ms``
    and ``unheard_score`` also on ``python -m benchmarks.rooms --set dev``), never on test recordings; the measurements behind each default are in docs/experiments.md. The noise
    suppression suits models with trimmed, per-utterance-normalised features; check ``denoise=False``
    for a model with other features.

    Attributes:
        context_ms: samples kept on each side of the detected speech for the classifier.
        denoise: suppress background noise before classifying (spectral subtraction).
        denoise_frame_ms: STFT frame of the noise suppression (rounded to a power of two samples).
        over_subtraction: each STFT bin loses this many times its estimated noise power.
        gain_floor: the lowest power gain of a bin (keeps a trace of the noise, fewer artefacts).
        merge_gap_ms: two detected words this close (speech to speech) ...
        fragment_ms: ... of which one has at most this much speech are candidates for being one
            word (the release of a final stop, as in "eight", or a word broken by noise)...
        merge_bias: ... and are joined when ``log p(joined) + merge_bias >= log p(first) +
            log p(second)`` (``p``: the model's top score), i.e. unless the model is clearly
            more confident in two words.
        split_ms: a detected word with more speech than this (longer than about 99% of single
            digits on the dev set) may be two words run together: it is cut at the level
            minimum (see :func:`spokenword.transcribe.segment.split_points`, ``split_depth_db`` deep) that
            makes the model most confident in both halves, when ``log p(left) + log p(right) >=
            log p(whole) + split_bias`` and both halves are words (not ``_unknown_``/``_silence_``,
            so a long non-digit word is not cut into digits); the halves are tried again.
        long_ms: a word with more speech than this (longer than any one digit) is cut at the best such
            minimum whatever the whole scores (both halves must still be words).
        unheard_score: a region the speech detector did not hear is a word only when the model scores
            it at least this, else ``_silence_`` (see ``VadSettings.speech``).
        release_ms: a word (more than ``fragment_ms`` of speech) held while the next region might still be
            its fragment is given out once that region, heard by the speech detector, has more than this
            much speech; one not heard still needs ``fragment_ms``. ``None``: ``fragment_ms`` (so here); the
            live endpoint, where a digit shown sooner matters, uses less
            (:data:`spokenword.serve.live.LIVE_RELEASE_MS`): a shorter wait leaves a few more fragments
            unjoined (docs/experiments.md).
    """

    context_ms: float = 35.0
    denoise: bool = True
    denoise_frame_ms: float = 32.0
    over_subtraction: float = 1.0
    gain_floor: float = 0.01
    merge_gap_ms: float = 100.0
    fragment_ms: float = 180.0
    merge_bias: float = 1.0
    split_ms: float = 700.0
    split_depth_db: float = 3.0
    split_bias: float = -0.5
    long_ms: float = 900.0
    unheard_score: float = 0.6
    release_ms: float | None = None


def noise_spectrum(noise: np.ndarray, n_fft_from: int, n_fft: int) -> np.ndarray:
    """A noise power spectrum measured with Hann frames of ``n_fft_from`` samples (``(n_fft_from //
    2 + 1,)``, mean ``|rfft(window * frame)| ** 2``) as it would be with frames of ``n_fft``:
    interpolated over frequency and scaled by the windows' energies."""
    noise = np.asarray(noise, dtype=np.float64)
    if n_fft_from == n_fft:
        return noise
    source = np.fft.rfftfreq(n_fft_from)
    target = np.fft.rfftfreq(n_fft)
    energy = lambda n: float(np.sum(signal.get_window("hann", n) ** 2))  # noqa: E731
    return np.interp(target, source, noise) * energy(n_fft) / energy(n_fft_from)


def suppress_noise(samples: np.ndarray, noise: np.ndarray, n_fft: int, over_subtraction: float, gain_floor: float,
                   noise_n_fft: int | None = None) -> np.ndarray:
    """Spectral subtraction: ``samples (T,)`` with each STFT bin's power (Hann frames of ``n_fft``,
    hop ``n_fft // 4``) reduced by ``over_subtraction`` times ``noise``, the power gain never below
    ``gain_floor``. ``noise``: mean ``|rfft(hann * frame)| ** 2`` of the noise for frames of
    ``noise_n_fft`` samples (default ``n_fft``). Returns ``(T,)`` float32."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) == 0 or noise is None or not np.any(np.asarray(noise) > 0):
        return np.asarray(samples, dtype=np.float32)
    noise = noise_spectrum(noise, noise_n_fft or n_fft, n_fft)
    window = signal.get_window("hann", n_fft)
    hop = max(1, n_fft // 4)
    _, _, spec = signal.stft(x, window=window, nperseg=n_fft, noverlap=n_fft - hop)
    noise_scaled = noise[:, None] / float(np.sum(window)) ** 2  # stft's "spectrum" scaling
    power = np.abs(spec) ** 2
    gain = np.maximum(1.0 - over_subtraction * noise_scaled / np.maximum(power, 1e-20), gain_floor)
    _, y = signal.istft(spec * np.sqrt(gain), window=window, nperseg=n_fft, noverlap=n_fft - hop)
    out = np.zeros(len(x), dtype=np.float32)
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


def _log_top(probs: np.ndarray) -> float:
    return float(np.log(max(float(np.max(probs)), 1e-9)))


class Transcriber:
    """Transcribe recordings of several words.

    Args:
        model: a checkpoint or export path, or a loaded classifier (``load_model``).
        threshold: words with a lower top score are marked uncertain.
        vad: segmentation settings.
        block_seconds: how much of a file is read at a time (s).
        words: how regions become words (see :class:`WordSettings`).
        max_seconds: files longer than this (s) are refused (:class:`~spokenword.audio.TooLongError`)
            once decoding reaches it (or at once when the header says so); ``None``:
            :data:`TRANSCRIBE_MAX_SECONDS`.
    """

    def __init__(self, model, threshold: float = DEFAULT_THRESHOLD, vad: VadSettings | None = None,
                 block_seconds: float = 1.0, words: WordSettings | None = None, max_seconds: float | None = None):
        if isinstance(model, (str, os.PathLike)):
            from spokenword.inference.load import load_model

            model = load_model(model)
        self.classifier = model
        self.threshold = threshold
        self.vad = vad or VadSettings()
        self.block_seconds = block_seconds
        self.words = words or WordSettings()
        self.max_seconds = audio.decode_limit(TRANSCRIBE_MAX_SECONDS if max_seconds is None else max_seconds)

    def stream(self) -> "TranscriptionStream":
        """A live stream: feed samples at the model's sample rate, get words (and rejected regions,
        :attr:`Word.rejected`) as they end."""
        return TranscriptionStream(self)

    # -- classification of one region ----------------------------------------------------------
    def prepare(self, segment: Segment) -> np.ndarray:
        """The samples the classifier gets for ``segment``: its speech plus context, noise suppressed."""
        rate = self.classifier.sample_rate
        samples = segment.samples
        if self.words.denoise and segment.noise is not None:
            n_fft = int(2 ** round(np.log2(rate * self.words.denoise_frame_ms / 1000)))
            samples = suppress_noise(samples, segment.noise, n_fft, self.words.over_subtraction, self.words.gain_floor,
                                     segment.n_fft)
        first, last = segment.speech
        context = int(rate * self.words.context_ms / 1000)
        lo = max(0, first - context - segment.start)
        hi = min(len(samples), last + context - segment.start)
        return samples[lo:hi] if hi > lo else samples

    def probabilities(self, segment: Segment) -> np.ndarray:
        """Class probabilities ``(len(labels),)`` of ``segment``, in the classifier's label order."""
        ranked = self.classifier((self.prepare(segment), self.classifier.sample_rate), top_k=None)
        index = {label: i for i, label in enumerate(self.classifier.labels)}
        probs = np.zeros(len(index))
        for item in ranked:
            if item["label"] in index:  # not the _unknown_ that reject_below adds to a model without that output
                probs[index[item["label"]]] = item["score"]
        return probs

    def answer(self, probs: np.ndarray) -> tuple[str, float]:
        """``(label, score)`` the classifier answers for ``probs``: the first entry of its ``rank``, so
        its ``reject_below`` applies (``_unknown_`` for a weak word); the best label for a classifier
        without ``rank``."""
        rank = getattr(self.classifier, "rank", None)
        if rank is None:
            best = int(np.argmax(probs))
            return self.classifier.labels[best], float(probs[best])
        top = rank(probs, 1)[0]
        return top["label"], float(top["score"])

    def word(self, segment: Segment, probs: np.ndarray | None = None) -> Word:
        """The :class:`Word` for ``segment`` (``probs``: its probabilities, if already known); its
        label may be a rejection (:attr:`Word.rejected`)."""
        rate = self.classifier.sample_rate
        probs = self.probabilities(segment) if probs is None else probs
        label, score = self.answer(probs)
        if (segment.speech_score is not None and segment.speech_score < self.vad.speech_on
                and score < self.words.unheard_score and not is_rejection(label)):
            label = SILENCE  # no speech heard and no confident word: a breath, a click, a noise
        start, end = segment.seconds(rate)
        return Word(label, round(score, 4), round(start, 3), round(end, 3), score < self.threshold)

    def split(self, segment: Segment, probs: np.ndarray | None = None, depth: int = 0) -> list[tuple[Segment, np.ndarray]]:
        """``segment`` as one or more ``(segment, probabilities)`` words (see ``split_ms``)."""
        probs = self.probabilities(segment) if probs is None else probs
        rate = self.classifier.sample_rate
        first, last = segment.speech
        if depth >= 3 or last - first <= rate * self.words.split_ms / 1000:
            return [(segment, probs)]
        pad = int(rate * self.vad.pad_ms / 1000)
        min_part = int(rate * self.vad.min_word_ms / 1000)
        best = None
        for cut in split_points(segment, min_part, self.words.split_depth_db):
            left, right = segment.region(first, cut, pad), segment.region(cut, last, pad)
            p_left, p_right = self.probabilities(left), self.probabilities(right)
            if is_rejection(self.answer(p_left)[0]) or is_rejection(self.answer(p_right)[0]):
                continue  # a cut is two words or none: a word plus "not a word" would make a digit of half a word
            score = _log_top(p_left) + _log_top(p_right)
            if best is None or score > best[0]:
                best = (score, left, p_left, right, p_right)
        longer = last - first > rate * self.words.long_ms / 1000  # longer than any one word: cut it whatever the whole scores
        if best is None or (not longer and best[0] < _log_top(probs) + self.words.split_bias):
            return [(segment, probs)]
        _, left, p_left, right, p_right = best
        return self.split(left, p_left, depth + 1) + self.split(right, p_right, depth + 1)

    def classify_region(self, wave: np.ndarray, start: int, stop: int, noise: np.ndarray | None = None) -> Word:
        """Classify speech ``[start, stop)`` of ``wave`` (at the model's rate) as one word, with the
        context and noise suppression a detected segment gets. ``noise``: the noise power per bin
        (as :attr:`Segment.noise`); by default the estimate a segmenter has at ``stop``."""
        rate = self.classifier.sample_rate
        pad = int(rate * self.vad.pad_ms / 1000)
        segmenter = StreamingSegmenter(rate, self.vad)
        if noise is None:
            lookahead = int(rate * self.vad.lookahead_ms / 1000)
            history = int(rate * self.vad.floor_s)
            begin = max(0, stop - history)
            list(segmenter.feed(wave[begin : min(len(wave), stop + lookahead)]))
            noise = segmenter.noise
        first, last = max(0, start - pad), min(len(wave), stop + pad)
        segment = Segment(first, last, np.asarray(wave[first:last], np.float32), start, stop, noise, segmenter.frame)
        return self.word(segment)

    # -- whole recordings -------------------------------------------------------------------------
    def transcribe_samples(self, samples: np.ndarray, sample_rate: int) -> Transcript:
        """Transcribe an in-memory signal (any rate, mono or ``(T, channels)``)."""
        wave = audio.prepare(np.asarray(samples), int(sample_rate), self.classifier.sample_rate)
        stream = self.stream()
        return Transcript.of(list(stream.feed(wave)) + list(stream.flush()))

    def transcribe(self, source) -> Transcript:
        """Transcribe a file (path or file object), reading it in blocks."""
        return Transcript.of(self._words_from_file(source))

    def _words_from_file(self, source) -> Iterator[Word]:
        stream = self.stream()
        # block by block, never past max_seconds, every decoding problem an AudioError (one line)
        for data, rate in audio.stream(source, max_seconds=self.max_seconds, block_seconds=self.block_seconds):
            yield from stream.feed(audio.prepare(data, rate, self.classifier.sample_rate, source=source))
        yield from stream.flush()

    def transcribe_many(self, sources: Iterable) -> Iterator[tuple[object, Transcript | audio.AudioError]]:
        """``(source, transcript or AudioError)`` per source; a failure does not stop the rest."""
        for source in sources:
            try:
                yield source, self.transcribe(source)
            except audio.AudioError as err:
                yield source, err


class TranscriptionStream:
    """Incremental transcription of samples at the model's sample rate (see :meth:`Transcriber.stream`).

    It gives out every decided region as a :class:`Word`, rejections included: skip those whose
    :attr:`Word.rejected` is true to keep only words (:meth:`Transcript.of` sets them apart).

    A word is given out once the segmenter has closed it and no fragment that could belong to it
    (:class:`WordSettings`: ``merge_gap_ms``) can follow any more. Memory is bounded: the samples
    kept are those of the word held back (joined words never exceed ``max_word_s``) and the
    segmenter's.
    """

    def __init__(self, transcriber: Transcriber):
        self.transcriber = transcriber
        self.rate = transcriber.classifier.sample_rate
        self.segmenter = StreamingSegmenter(self.rate, transcriber.vad)
        settings = transcriber.words
        self._merge_gap = int(self.rate * settings.merge_gap_ms / 1000)
        self._fragment = int(self.rate * settings.fragment_ms / 1000)
        release = settings.fragment_ms if settings.release_ms is None else settings.release_ms
        self._release_heard = int(self.rate * release / 1000)
        self._longest = int(self.rate * transcriber.vad.max_word_s)  # joined words stay shorter than this
        self._held: tuple[Segment, np.ndarray] | None = None  # the last word, not yet given out
        self._audio = np.zeros(0, dtype=np.float32)  # recent samples, from _audio_start on
        self._audio_start = 0

    def feed(self, samples: np.ndarray) -> Iterator[Word]:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._audio = np.concatenate([self._audio, samples])
        for segment in self.segmenter.feed(samples):
            yield from self._arrive(segment)
        if self._held is not None and self._complete(self._held[0]):
            yield self._release()
        self._trim()

    def flush(self) -> Iterator[Word]:
        for segment in self.segmenter.flush():
            yield from self._arrive(segment)
        if self._held is not None:
            yield self._release()
        self._trim()

    # -- joining fragments --------------------------------------------------------------------
    def _complete(self, segment: Segment) -> bool:
        """Whether no word that could be joined to ``segment`` can still come: none began within
        ``merge_gap_ms`` of its end, or ``segment`` is no fragment and the word that began there already
        has more speech than one (``fragment_ms``; ``release_ms`` once the speech detector heard it), so a
        word spoken right after another is given out while the next is still being spoken, not after it."""
        horizon = segment.speech[1] + self._merge_gap
        seg = self.segmenter
        if seg.word_start is None:
            return seg.position > horizon
        if seg.word_start > horizon:
            return True
        (a0, a1) = segment.speech
        return a1 - a0 > self._fragment and seg.word_speech > (self._release_heard if seg.word_heard else self._fragment)

    def _candidates(self, first: Segment, second: Segment) -> bool:
        (a0, a1), (b0, b1) = first.speech, second.speech
        return (b0 - a1 <= self._merge_gap and min(a1 - a0, b1 - b0) <= self._fragment
                and b1 - a0 <= self._longest)

    def _joined(self, first: Segment, second: Segment) -> Segment | None:
        lo, hi = first.start, second.stop
        if lo < self._audio_start or hi > self._audio_start + len(self._audio):
            return None
        samples = self._audio[lo - self._audio_start : hi - self._audio_start].copy()
        levels = None
        if first.levels is not None and second.levels is not None:
            levels = np.concatenate([first.levels, second.levels])
        scores = [x.speech_score for x in (first, second) if x.speech_score is not None]
        return Segment(lo, hi, samples, first.speech[0], second.speech[1], second.noise, second.n_fft, levels,
                       second.hop, max(scores) if scores else None)

    def _arrive(self, segment: Segment) -> Iterator[Word]:
        for part, probs in self.transcriber.split(segment):
            yield from self._accept(part, probs)

    def _accept(self, segment: Segment, probs: np.ndarray) -> Iterator[Word]:
        t = self.transcriber
        if self._held is not None:
            held, held_probs = self._held
            joined = self._joined(held, segment) if self._candidates(held, segment) else None
            if joined is not None:
                joined_probs = t.probabilities(joined)
                if _log_top(joined_probs) + t.words.merge_bias >= _log_top(held_probs) + _log_top(probs):
                    self._held = (joined, joined_probs)
                    return
            yield self._release()
        self._held = (segment, probs)

    def _release(self) -> Word:
        segment, probs = self._held
        self._held = None
        return self.transcriber.word(segment, probs)

    def _trim(self) -> None:
        keep_from = self.segmenter.position - self.segmenter.pad - self.segmenter.frame - self.rate // 10
        if self.segmenter.word_start is not None:
            keep_from = min(keep_from, self.segmenter.word_start - self.segmenter.pad)
        if self._held is not None:
            keep_from = min(keep_from, self._held[0].start)
        drop = keep_from - self._audio_start
        if drop > 0:
            self._audio = self._audio[drop:]
            self._audio_start = keep_from
