"""Connected digits: a recording of several words becomes a string of labels.

:class:`Transcriber` cuts the recording into word regions with
:class:`~spokenword.segment.StreamingSegmenter` and classifies each region with a trained model
through its own preprocessing (:func:`spokenword.predict.load_classifier`). Regions whose best
score is below ``threshold`` are marked uncertain (``?`` in the text) rather than guessed.
Files are read block by block, so memory stays bounded however long the recording is.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

import numpy as np
import soundfile as sf

from spokenword import audio
from spokenword.segment import Segment, StreamingSegmenter, VadSettings

UNCERTAIN = "?"


@dataclass(frozen=True)
class Word:
    """One recognised word: times in seconds from the start of the recording."""

    label: str
    score: float
    start: float
    end: float
    uncertain: bool


@dataclass(frozen=True)
class Transcript:
    words: list[Word]

    @property
    def text(self) -> str:
        """Labels joined (single characters, such as digits, without spaces); ``?`` for unsure words."""
        labels = [UNCERTAIN if w.uncertain else w.label for w in self.words]
        return ("" if all(len(x) == 1 for x in labels) else " ").join(labels)

    def to_dict(self) -> dict:
        return {"text": self.text, "words": [asdict(w) for w in self.words]}


class Transcriber:
    """Transcribe recordings of several words.

    Args:
        model: a checkpoint or export path, or a loaded classifier (``load_classifier``).
        threshold: words with a lower top score are marked uncertain.
        vad: segmentation settings.
        block_seconds: how much of a file is read at a time (s).
    """

    def __init__(self, model, threshold: float = 0.5, vad: VadSettings | None = None, block_seconds: float = 1.0):
        if isinstance(model, (str, os.PathLike)):
            from spokenword.predict import load_classifier

            model = load_classifier(model)
        self.classifier = model
        self.threshold = threshold
        self.vad = vad or VadSettings()
        self.block_seconds = block_seconds

    def stream(self) -> "TranscriptionStream":
        """A live stream: feed samples at the model's sample rate, get words as they end."""
        return TranscriptionStream(self)

    def _word(self, segment: Segment, rate: int) -> Word:
        top = self.classifier((segment.samples, rate), top_k=1)[0]
        start, end = segment.seconds(rate)
        return Word(top["label"], round(float(top["score"]), 4), round(start, 3), round(end, 3), top["score"] < self.threshold)

    def transcribe_samples(self, samples: np.ndarray, sample_rate: int) -> Transcript:
        """Transcribe an in-memory signal (any rate, mono or ``(T, channels)``)."""
        wave = audio.prepare(np.asarray(samples), int(sample_rate), self.classifier.sample_rate)
        stream = self.stream()
        words = list(stream.feed(wave)) + list(stream.flush())
        return Transcript(words)

    def transcribe(self, source) -> Transcript:
        """Transcribe a file (path or file object), reading it in blocks."""
        return Transcript(list(self._words_from_file(source)))

    def _words_from_file(self, source) -> Iterator[Word]:
        if isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if not os.path.exists(path):
                raise audio.AudioError(source, "no such file")
            if os.path.isdir(path):
                raise audio.AudioError(source, "is a directory, not an audio file")
            if os.path.getsize(path) == 0:
                raise audio.AudioError(source, "empty file (0 bytes)")
        stream = self.stream()
        try:
            with sf.SoundFile(source) as f:
                rate = f.samplerate
                block = max(1, int(self.block_seconds * rate))
                read_any = False
                while True:
                    data = f.read(block, dtype="float32", always_2d=True)
                    if len(data) == 0:
                        break
                    read_any = True
                    yield from stream.feed(audio.prepare(data, rate, self.classifier.sample_rate, source=source))
                if not read_any:
                    raise audio.AudioError(source, "contains no samples")
        except audio.AudioError:
            raise
        except (sf.LibsndfileError, RuntimeError, TypeError, OSError, EOFError) as err:
            raise audio.AudioError(source, f"not a readable audio file ({str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__})") from None
        yield from stream.flush()

    def transcribe_many(self, sources: Iterable) -> Iterator[tuple[object, Transcript | audio.AudioError]]:
        """``(source, transcript or AudioError)`` per source; a failure does not stop the rest."""
        for source in sources:
            try:
                yield source, self.transcribe(source)
            except audio.AudioError as err:
                yield source, err


class TranscriptionStream:
    """Incremental transcription of samples at the model's sample rate (see :meth:`Transcriber.stream`)."""

    def __init__(self, transcriber: Transcriber):
        self.transcriber = transcriber
        self.rate = transcriber.classifier.sample_rate
        self.segmenter = StreamingSegmenter(self.rate, transcriber.vad)

    def feed(self, samples: np.ndarray) -> Iterator[Word]:
        for segment in self.segmenter.feed(samples):
            yield self.transcriber._word(segment, self.rate)

    def flush(self) -> Iterator[Word]:
        for segment in self.segmenter.flush():
            yield self.transcriber._word(segment, self.rate)
