"""A stand-in classifier that can answer "not a word", for the tests of every path that must drop
``_unknown_`` and ``_silence_`` (transcriber, ``/predict``, live WebSocket, page): no training.

It answers by the loudest frequency of the clip: each tone of :data:`ANSWERS` has a chosen
``(label, score)`` (the rest of the probability spread evenly over the other labels).
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from spokenword.inference.base import BaseClassifier
from spokenword.labels import SILENCE, UNKNOWN

RATE = 8000
DIGITS = [str(d) for d in range(10)]
LABELS = DIGITS + [SILENCE, UNKNOWN]
#: tone (Hz) -> (answer, score): a sure "1" and "3", a weak "2", another word, a noise burst
ANSWERS = {440.0: ("1", 0.95), 1100.0: ("2", 0.5), 1900.0: ("3", 0.9), 700.0: (UNKNOWN, 0.9), 1500.0: (SILENCE, 0.9)}
ONE, WEAK_TWO, THREE, OTHER_WORD, NOISE = ANSWERS


class ToneWords(BaseClassifier):
    """A :class:`BaseClassifier` (so ``rank`` and ``reject_below`` are the real ones) with chosen rows."""

    runtime = "fake"

    def __init__(self, labels=LABELS, answers=ANSWERS, reject_below: float | None = None):
        self.labels, self.answers, self.reject_below = list(labels), dict(answers), reject_below
        self.sample_rate, self.features, self.max_seconds = RATE, None, None

    def featurize(self, wave):
        return np.asarray(wave, np.float32)

    def row(self, wave: np.ndarray) -> np.ndarray:
        spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave)))) if len(wave) > 1 else np.zeros(1)
        freq = float(np.fft.rfftfreq(len(wave), 1 / RATE)[int(np.argmax(spectrum))]) if spectrum.any() else 0.0
        tone = min(self.answers, key=lambda f: abs(f - freq))
        label, score = self.answers[tone] if abs(tone - freq) < 60 else (self.labels[0], 1 / len(self.labels))
        probs = np.full(len(self.labels), (1 - score) / (len(self.labels) - 1), np.float32)
        probs[self.labels.index(label)] = score
        return probs

    def probabilities(self, waves):
        return np.stack([self.row(np.asarray(w, np.float64)) for w in waves])

    def spectrogram(self, wave):
        return np.zeros((1, 4, 4), np.float32)


def digits_only(reject_below: float | None = None) -> ToneWords:
    """The same tones on a model without rejection labels: "other word" and "noise" are digits to it."""
    answers = {440.0: ("1", 0.95), 1100.0: ("2", 0.5), 1900.0: ("3", 0.9), 700.0: ("7", 0.9), 1500.0: ("5", 0.9)}
    return ToneWords(DIGITS, answers, reject_below)


def tone(freq: float, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def sequence(*freqs: float, word_s: float = 0.3, gap_s: float = 0.35, seed: int = 0) -> np.ndarray:
    """Tones of ``word_s`` with ``gap_s`` of silence between and around them, in faint noise."""
    pieces = [silence(gap_s)]
    for freq in freqs:
        pieces += [tone(freq, word_s), silence(gap_s)]
    x = np.concatenate(pieces)
    return (x + np.random.default_rng(seed).normal(0, 1e-3, len(x))).astype(np.float32)


def wav(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, RATE, format="WAV", subtype="PCM_16")
    return out.getvalue()
