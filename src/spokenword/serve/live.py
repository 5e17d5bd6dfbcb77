"""Live transcription over a WebSocket: ``/ws/transcribe``.

The client streams microphone audio; the server feeds it to the project's streaming transcriber
(:meth:`spokenword.transcribe.decode.Transcriber.stream`: the segmenter and classifier of
``spokenword transcribe``, with a shorter segmenter lookahead, :data:`LIVE_LOOKAHEAD_MS`) and sends
each word as soon as the transcriber gives it out.

Protocol (all JSON messages are text frames, audio is binary frames):

1. client -> ``{"sample_rate": 8000, "encoding": "float32"}`` (first message; ``encoding``
   ``float32`` (default) or ``int16``, little-endian mono PCM; any rate 1000-384000 Hz: other
   rates than the model's are resampled here, which adds ~35-65 ms of buffering, so a browser
   should capture at the model's rate, given in ``ready``).
2. server -> ``{"type": "ready", "sample_rate", "input_rate", "encoding", "labels", "max_stream_seconds",
   "max_connection_seconds", "max_frame_seconds", "max_frame_bytes", "resampling", "threshold", "reject_below",
   "vad": {...}}``.
3. client -> binary frames of samples (at most ``max_frame_seconds`` and ``max_frame_bytes`` each).
4. server -> ``{"type": "word", "label", "score", "start", "end", "uncertain", "decided_at"}`` per
   word: ``start``/``end`` (s of stream audio) bound the word, ``decided_at`` (s) is how much audio
   had arrived when the transcriber gave it out; ``uncertain`` when ``score`` is below the threshold.
   A region the model answers "not a word" (``_unknown_``: other speech, ``_silence_``: noise; also a
   word scored under ``reject_below``) is never a ``word``: it is sent as
   ``{"type": "rejected", "label", "score", "start", "end", "decided_at"}``, for display only.
5. client -> ``{"type": "stop"}``: the server closes the word in progress, sends its last words,
   ``{"type": "done", "seconds"}`` and closes with 1000.

Problems are ``{"type": "error", "detail": "..."}`` followed by a close code: 1003 a binary frame
before the start message or text that is not a known message, 1007 a frame that is not whole
samples or holds NaN/Inf, 1008 a bad start message, no audio for ``idle_timeout_s``, or more than
``max_stream_seconds`` of audio, 1009 a frame over the size limits, 1011 a server error, 1013 too many
streams at once; 1008 also when a connection stays open longer than ``max_connection_seconds``
(wall clock). Memory per connection is bounded (the segmenter keeps at most its longest word and
noise window; frames are processed one at a time, so a fast sender is slowed by TCP, not buffered).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np
import soxr
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from spokenword import audio
from spokenword.transcribe.segment import VadSettings
from spokenword.transcribe.decode import DEFAULT_THRESHOLD, Transcriber, WordSettings

logger = logging.getLogger("spokenword.serve")

PATH = "/ws/transcribe"
ENCODINGS = {"float32": np.dtype("<f4"), "int16": np.dtype("<i2")}
#: soxr quality of the server-side streaming resampler: "MQ" holds back far less audio than the "HQ"
#: of :func:`spokenword.audio.prepare` (whole clips), which would delay live captions (docs/experiments.md)
RESAMPLE_QUALITY = "MQ"

#: how far the live segmenter looks ahead (ms) before deciding a frame (``VadSettings.lookahead_ms``,
#: 300 in ``spokenword transcribe``): a word reaches the client about this + 175 ms after its end, and
#: 50 ms leaves the digit error rate of the dev numbers unchanged (docs/experiments.md)
LIVE_LOOKAHEAD_MS = 50.0


#: the speech a heard word after a held one needs before the held one is given out (``WordSettings.release_ms``,
#: ``fragment_ms`` = 180 in ``spokenword transcribe``): digits followed closely by the next are shown about 60 ms
#: sooner, for a few more fragments left unjoined (docs/experiments.md)
LIVE_RELEASE_MS = 100.0


def live_vad() -> VadSettings:
    """The segmenter settings of the live endpoint: the transcriber's, with :data:`LIVE_LOOKAHEAD_MS`."""
    return replace(VadSettings(), lookahead_ms=LIVE_LOOKAHEAD_MS)


def live_words() -> WordSettings:
    """How the live endpoint makes words of regions: the transcriber's, with :data:`LIVE_RELEASE_MS`."""
    return replace(WordSettings(), release_ms=LIVE_RELEASE_MS)


CLOSE_NORMAL, CLOSE_UNSUPPORTED, CLOSE_INVALID, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_ERROR, CLOSE_BUSY = (
    1000, 1003, 1007, 1008, 1009, 1011, 1013)


@dataclass(frozen=True)
class LiveSettings:
    """Limits and settings of the live endpoint.

    Args:
        max_stream_seconds: audio per connection (s); then the last words are sent and it is closed.
        max_connection_seconds: wall-clock time a connection may stay open (s), whatever it sends.
        max_frame_seconds: audio per binary frame (s).
        max_frame_bytes: bytes per binary frame (uvicorn refuses twice this before reading it).
        idle_timeout_s: close a stream that sends nothing for this long (s).
        hello_timeout_s: time allowed for the start message (s).
        max_streams: concurrent streams; more are refused with 1013.
        threshold: words scored lower are ``uncertain``.
        vad: segmenter settings (default :func:`live_vad`); None for the transcriber's defaults
            (those of ``spokenword transcribe``, which decide words 250 ms later).
        words: how regions become words (default :func:`live_words`); None for the transcriber's defaults.
    """

    max_stream_seconds: float = 600.0
    max_connection_seconds: float = 900.0
    max_frame_seconds: float = 1.0
    max_frame_bytes: int = 512 * 1024
    idle_timeout_s: float = 20.0
    hello_timeout_s: float = 10.0
    max_streams: int = 8
    threshold: float = DEFAULT_THRESHOLD
    vad: VadSettings | None = field(default_factory=live_vad)
    words: WordSettings | None = field(default_factory=live_words)


class StreamError(Exception):
    """A client mistake on the stream: sent as an error message, then the connection is closed with ``code``."""

    def __init__(self, code: int, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


class LiveStream:
    """One connection's state: PCM frames in, word events out (call from one thread at a time).

    Args:
        transcriber: the shared :class:`~spokenword.transcribe.decode.Transcriber`.
        input_rate: rate of the client's samples (Hz).
        encoding: ``float32`` or ``int16``.
    """

    def __init__(self, transcriber: Transcriber, input_rate: int, encoding: str = "float32"):
        self.rate = int(transcriber.classifier.sample_rate)
        self.input_rate = int(input_rate)
        self.encoding = encoding
        self.dtype = ENCODINGS[encoding]
        self._words = transcriber.stream()
        self._resampler = (None if self.input_rate == self.rate else
                           soxr.ResampleStream(self.input_rate, self.rate, 1, dtype="float32", quality=RESAMPLE_QUALITY))
        self.received = 0  # input samples
        self.fed = 0  # samples at the model's rate handed to the transcriber

    @property
    def seconds(self) -> float:
        """Audio received so far (s)."""
        return self.received / self.input_rate

    def samples(self, data: bytes) -> np.ndarray:
        """Decode one binary frame to float32 mono at the input rate (checked like any audio)."""
        if len(data) % self.dtype.itemsize:
            raise audio.AudioError("audio frame", f"{len(data)} bytes is not a whole number of {self.encoding} samples "
                                                  f"({self.dtype.itemsize} bytes each)")
        return audio.prepare(np.frombuffer(data, dtype=self.dtype), self.input_rate, self.input_rate, source="audio frame")

    def feed(self, data: bytes) -> list[dict]:
        """One binary frame; returns the words it closed."""
        if not data:
            return []
        wave = self.samples(data)
        self.received += len(wave)
        return self._feed(wave)

    def finish(self) -> list[dict]:
        """End of stream: the rest of the resampler, then the word in progress."""
        events = self._feed(np.zeros(0, dtype=np.float32), last=True) if self._resampler is not None else []
        return events + [self._event(w) for w in self._words.flush()]

    def _feed(self, wave: np.ndarray, last: bool = False) -> list[dict]:
        if self._resampler is not None:
            wave = self._resampler.resample_chunk(wave, last=last)
        if not len(wave):
            return []
        self.fed += len(wave)
        return [self._event(w) for w in self._words.feed(wave)]

    def _event(self, word) -> dict:
        event = {"type": "rejected" if word.rejected else "word", "label": word.label, "score": float(word.score),
                 "start": float(word.start), "end": float(word.end), "decided_at": round(self.fed / self.rate, 3)}
        if not word.rejected:  # "uncertain" only means something for a word that goes into the text
            event["uncertain"] = bool(word.uncertain)
        return event


def _start_message(message: dict) -> tuple[int, str]:
    """``(sample_rate, encoding)`` from the client's first message, or :class:`StreamError`."""
    example = '{"sample_rate": 48000, "encoding": "float32"}'
    text = message.get("text")
    if text is None:
        raise StreamError(CLOSE_UNSUPPORTED, f"the first message must be JSON text such as {example}, not audio")
    try:
        hello = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        raise StreamError(CLOSE_POLICY, f"the first message is not JSON; send {example}") from None
    if not isinstance(hello, dict):
        raise StreamError(CLOSE_POLICY, f"the first message must be a JSON object such as {example}")
    rate = hello.get("sample_rate")
    if isinstance(rate, float) and rate.is_integer():
        rate = int(rate)
    if not isinstance(rate, int) or isinstance(rate, bool):
        raise StreamError(CLOSE_POLICY, f"sample_rate must be an integer (Hz), got {repr(rate)[:60]}; send {example}")
    if not audio.MIN_SAMPLE_RATE <= rate <= audio.MAX_SAMPLE_RATE:
        raise StreamError(CLOSE_POLICY, f"sample rate {rate} Hz is outside the supported "
                                        f"{audio.MIN_SAMPLE_RATE}-{audio.MAX_SAMPLE_RATE} Hz")
    encoding = hello.get("encoding", "float32")
    if not isinstance(encoding, str) or encoding not in ENCODINGS:
        raise StreamError(CLOSE_POLICY, f"encoding must be one of {', '.join(ENCODINGS)}, got {repr(encoding)[:60]}")
    return rate, encoding


def live_router(classifier, settings: LiveSettings | None = None, current: Callable[[], object] | None = None) -> APIRouter:
    """The ``/ws/transcribe`` route around ``classifier`` (loaded once, shared by all streams); with
    ``current`` (returns the classifier to serve now), each new connection uses what it returns, so a
    model swapped in by teaching is heard from the next stream on, and a running stream keeps its own."""
    settings = settings or LiveSettings()
    current = current or (lambda: classifier)
    transcribers = {"for": None, "transcriber": None}  # the last model's, built again only when it changes
    router = APIRouter()
    active = {"streams": 0}

    def transcriber_now() -> Transcriber:
        model = current()
        cached = transcribers["transcriber"]
        if transcribers["for"] is not model or cached is None:
            cached = Transcriber(model, threshold=settings.threshold, vad=settings.vad, words=settings.words)
            transcribers.update({"for": model, "transcriber": cached})
        return cached

    async def receive(ws: WebSocket, timeout: float, waiting_for: str, deadline: float) -> dict | None:
        """The next message, None when the client has gone; a StreamError after ``timeout`` s of
        silence or at ``deadline`` (``time.monotonic()``)."""
        left = deadline - time.monotonic()
        try:
            message = await asyncio.wait_for(ws.receive(), max(0.0, min(timeout, left)))
        except asyncio.TimeoutError:
            if left <= timeout:
                raise StreamError(CLOSE_POLICY, f"the connection was open for {settings.max_connection_seconds:g} s, "
                                                "the limit; start a new stream to go on") from None
            raise StreamError(CLOSE_POLICY, f"no {waiting_for} for {timeout:g} s: closing the stream") from None
        return None if message["type"] == "websocket.disconnect" else message

    async def send_words(ws: WebSocket, events: list[dict]) -> None:
        for event in events:
            await ws.send_json(event)

    async def session(ws: WebSocket) -> None:
        deadline = time.monotonic() + settings.max_connection_seconds
        first = await receive(ws, settings.hello_timeout_s, "start message", deadline)
        if first is None:
            return
        rate, encoding = _start_message(first)
        transcriber = transcriber_now()
        classifier, vad = transcriber.classifier, transcriber.vad
        stream = LiveStream(transcriber, rate, encoding)
        max_frame_samples = int(settings.max_frame_seconds * rate)
        await ws.send_json({
            "type": "ready", "sample_rate": stream.rate, "input_rate": rate, "encoding": encoding,
            "labels": list(classifier.labels), "max_stream_seconds": settings.max_stream_seconds,
            "max_connection_seconds": settings.max_connection_seconds, "max_frame_seconds": settings.max_frame_seconds, "max_frame_bytes": settings.max_frame_bytes,
            "resampling": rate != stream.rate, "threshold": settings.threshold,
            "reject_below": getattr(classifier, "reject_below", None),
            "vad": {k: v for k, v in asdict(vad).items() if k in ("lookahead_ms", "min_gap_ms", "pad_ms", "hop_ms")},
        })
        while True:
            message = await receive(ws, settings.idle_timeout_s, "audio", deadline)
            if message is None:
                return
            data = message.get("bytes")
            if data is not None:
                if len(data) > settings.max_frame_bytes:
                    raise StreamError(CLOSE_TOO_BIG, f"audio frame of {len(data)} bytes; the limit is "
                                                     f"{settings.max_frame_bytes} bytes: send smaller frames (e.g. 20 ms)")
                if len(data) // stream.dtype.itemsize > max_frame_samples:
                    raise StreamError(CLOSE_TOO_BIG, f"audio frame of {len(data) // stream.dtype.itemsize / rate:.2f} s; "
                                                     f"the limit is {settings.max_frame_seconds:g} s per frame")
                try:
                    events = await run_in_threadpool(stream.feed, data)
                except audio.AudioError as err:
                    raise StreamError(CLOSE_INVALID, str(err)) from None
                await send_words(ws, events)
                if stream.seconds >= settings.max_stream_seconds:
                    await send_words(ws, await run_in_threadpool(stream.finish))
                    raise StreamError(CLOSE_POLICY, f"stream limit of {settings.max_stream_seconds:g} s of audio "
                                                    "reached; start a new stream to go on")
                continue
            try:
                control = json.loads(message.get("text") or "")
            except (ValueError, RecursionError):
                control = None
            if not isinstance(control, dict) or control.get("type") != "stop":
                raise StreamError(CLOSE_UNSUPPORTED, 'text messages after the start message must be {"type": "stop"}; '
                                                     "send audio as binary frames")
            await send_words(ws, await run_in_threadpool(stream.finish))
            await ws.send_json({"type": "done", "seconds": round(stream.seconds, 3)})
            await ws.close(CLOSE_NORMAL)
            return

    async def close_with(ws: WebSocket, code: int, detail: str) -> None:
        try:
            await ws.send_json({"type": "error", "detail": detail})
            await ws.close(code, reason=detail.encode()[:120].decode(errors="ignore"))
        except (WebSocketDisconnect, RuntimeError, OSError):  # the client is gone already
            pass

    @router.websocket(PATH)
    async def transcribe(ws: WebSocket) -> None:
        await ws.accept()
        if active["streams"] >= settings.max_streams:
            await close_with(ws, CLOSE_BUSY, f"the server is serving {settings.max_streams} streams already; try again later")
            return
        active["streams"] += 1
        try:
            await session(ws)
        except StreamError as err:
            await close_with(ws, err.code, err.detail)
        except WebSocketDisconnect:
            pass
        except Exception as err:  # noqa: BLE001 - a server fault must not take the server down
            logger.exception("live stream failed")
            await close_with(ws, CLOSE_ERROR, f"server error ({type(err).__name__}); the stream was closed")
        finally:
            active["streams"] -= 1

    return router
