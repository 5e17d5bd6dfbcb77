"""Speech probability over time: the Silero voice-activity model (v4, MIT; ``spokenword/pretrained/silero-vad``).

A small recurrent network that says, for each chunk of 32 ms, how likely it holds speech. Unlike a level
threshold it is not fooled by breaths, clicks, hum or a noise swell, and it does not depend on the
noise floor being steady. :class:`~spokenword.transcribe.segment.StreamingSegmenter` combines it with
its band-energy detector (``VadSettings.speech``): the energy gives sharp word edges, the model says
which loud stretches are speech.

The model runs on ONNX Runtime (no torch) at 8 or 16 kHz; other rates are resampled to 16 kHz here.
Its state carries from chunk to chunk, so one :class:`SpeechProbability` follows one stream.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

MODEL = Path(__file__).resolve().parent.parent / "pretrained" / "silero-vad" / "silero_vad.onnx"
#: the rates the model was made for; each gets chunks of 32 ms
NATIVE_RATES = (8000, 16000)
CHUNK_S = 0.032

_session = None
_lock = threading.Lock()


def session():
    """The shared ONNX Runtime session (created on first use: one thread, as one stream's chunks are
    sequential and many streams run side by side; ``run`` is thread-safe)."""
    global _session
    with _lock:
        if _session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            _session = ort.InferenceSession(str(MODEL), sess_options=options, providers=["CPUExecutionProvider"])
    return _session


class SpeechProbability:
    """Feed mono float samples at ``sample_rate`` Hz; get ``(end, probability)`` per 32-ms chunk.

    ``end`` is the stream index (at ``sample_rate``) just after the chunk: the probability describes
    ``[end - chunk, end)``, where :attr:`chunk` is the chunk length in the stream's samples.
    """

    def __init__(self, sample_rate: int):
        self.rate = int(sample_rate)
        self.model_rate = self.rate if self.rate in NATIVE_RATES else 16000
        self._resampler = None
        if self.model_rate != self.rate:
            import soxr

            self._resampler = soxr.ResampleStream(self.rate, self.model_rate, 1, dtype="float32", quality="MQ")
        self._size = round(CHUNK_S * self.model_rate)
        self.chunk = round(CHUNK_S * self.rate)
        self._pending = np.zeros(0, dtype=np.float32)
        self._done = 0  # model-rate samples already scored
        self._h = np.zeros((2, 1, 64), dtype=np.float32)
        self._c = np.zeros((2, 1, 64), dtype=np.float32)
        self._sr = np.array(self.model_rate, dtype=np.int64)

    def feed(self, block: np.ndarray) -> list[tuple[int, float]]:
        """Add samples; the chunks they complete."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
        self._pending = np.concatenate([self._pending, block])
        count = len(self._pending) // self._size
        out = []
        run = session().run
        for i in range(count):
            chunk = self._pending[i * self._size : (i + 1) * self._size]
            prob, self._h, self._c = run(None, {"input": chunk[None], "sr": self._sr, "h": self._h, "c": self._c})
            self._done += self._size
            out.append((round(self._done * self.rate / self.model_rate), float(prob[0, 0])))
        self._pending = self._pending[count * self._size :]
        return out


def probabilities(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The speech probability of each whole 32-ms chunk of ``samples (T,)``: ``(T // chunk,)``."""
    return np.array([p for _, p in SpeechProbability(sample_rate).feed(samples)], dtype=np.float32)
