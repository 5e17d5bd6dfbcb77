"""The web service: a FastAPI app around one loaded classifier.

:func:`create_app` takes an already loaded classifier (:func:`spokenword.inference.load.load_model`:
an exported ``.onnx`` model, or a ``.ckpt`` checkpoint exported to ONNX at startup, or the
checkpoint's PyTorch :class:`~spokenword.inference.checkpoint.Classifier`), so the model is loaded
once per process and every request uses the classifier's own preprocessing (``waveform`` ->
``featurize`` -> ``probabilities`` -> ``rank``); nothing here re-implements it.

Routes: ``POST /predict`` (multipart field ``file`` or the raw file as the body), ``GET /health``,
``GET /labels``, the live transcription WebSocket ``/ws/transcribe`` (:mod:`spokenword.serve.live`),
the page at ``/`` (assets under ``/static``, all served locally) and the OpenAPI docs at ``/docs``.
Every user mistake is answered with a 4xx and ``{"detail": "..."}``.

A model trained with the rejection labels (:mod:`spokenword.labels`) may answer ``_unknown_`` (other
speech) or ``_silence_`` (noise), as may any model whose best word scores under its ``reject_below``:
``/predict`` returns that answer as it is, with ``"word": false``.

Concurrent ``/predict`` requests are micro-batched (:class:`~spokenword.serve.batching.MicroBatcher`):
those arriving within ``batch_ms`` share one decode-and-infer call in a worker thread, so the
event loop only parses HTTP.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
from pathlib import Path
from typing import AsyncIterator, Iterable, Sequence

import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.formparsers import MultiPartException, MultiPartParser

from spokenword.audio import AudioError, TooLongError
from spokenword.inference.base import ModelError
from spokenword.labels import is_rejection
from spokenword.serve.batching import MicroBatcher

STATIC = Path(__file__).with_name("static")
logger = logging.getLogger("spokenword.serve")

#: A clip whose loudest sample is below this level (dB relative to full scale) is reported as
#: ``"silent": true``: the model still answers, but the page says no speech was heard.
SILENCE_DBFS = -40.0

UPLOAD_FIELD = "file"
_OPENING = re.compile(r"Error opening <[^>]*>: ")

_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "description": "An audio file (wav, flac, ogg, mp3; m4a, webm, mp4 with the formats extra; any sample rate; mono or stereo), "
                       f"either as the raw request body or as the multipart form field '{UPLOAD_FIELD}'.",
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": [UPLOAD_FIELD],
                                               "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary"}}}},
            "audio/wav": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
_RANKED = {"type": "array", "items": {"type": "object", "properties": {"label": {"type": "string"}, "score": {"type": "number"}}}}
_PREDICT_ANSWER = {200: {"description": "The prediction", "content": {"application/json": {"schema": {
    "type": "object",
    "required": ["label", "score", "word", "top_k", "duration_s", "sample_rate", "silent", "peak_dbfs"],
    "properties": {
        "label": {"type": "string", "description": "the answer: a word of the model, or _unknown_ (other speech) "
                                                   "or _silence_ (noise, no speech): not a word"},
        "score": {"type": "number"},
        "word": {"type": "boolean", "description": "false when label is _unknown_ or _silence_ (not a word)"},
        "top_k": _RANKED,
        "duration_s": {"type": "number"}, "sample_rate": {"type": "integer"}, "silent": {"type": "boolean"},
        "peak_dbfs": {"type": ["number", "null"]},
        "spectrogram": {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                        "description": "only with ?spectrogram=true: n_bins rows x n_frames"},
    }}}}}}


def peak_dbfs(wave: np.ndarray) -> float:
    """Loudest sample of a float waveform in dB relative to full scale (``-inf`` for all zeros)."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) once it exceeds ``limit`` bytes: decided from
    ``Content-Length`` when sent, else while streaming, never after reading it whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, _too_large(int(declared), limit))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, _too_large(size, limit, at_least=True))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return (f"upload is {more}{size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB: "
            "send a shorter clip (a few seconds of 16 kHz mono wav is well under it)")


async def _replay(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _audio_bytes(request: Request, max_upload_bytes: int) -> tuple[bytes, str]:
    """The uploaded file's bytes and a name for messages: the multipart field ``file`` or the raw body."""
    body = await _read_limited(request, max_upload_bytes)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        try:
            form = await MultiPartParser(request.headers, _replay(body), max_files=1, max_fields=10).parse()
        except MultiPartException as err:
            raise HTTPException(400, f"malformed multipart form ({err.message}); send the audio as field '{UPLOAD_FIELD}'")
        upload = form.get(UPLOAD_FIELD)
        if upload is None or isinstance(upload, str):
            fields = ", ".join(repr(k) for k in form.keys()) or "none"
            raise HTTPException(422, f"multipart form has no file field '{UPLOAD_FIELD}' (fields sent: {fields}); "
                                     f"send the audio as -F {UPLOAD_FIELD}=@clip.wav")
        data = await upload.read()
        name = upload.filename or "uploaded file"
        if not data:
            raise HTTPException(400, f"{name}: the uploaded file is empty (0 bytes)")
        return data, name
    # any other content type (curl --data-binary sends x-www-form-urlencoded) is the file itself
    if not body:
        raise HTTPException(400, f"empty request: send an audio file (wav, flac, ogg) as the request body "
                                 f"or as the multipart form field '{UPLOAD_FIELD}'")
    return body, "request body"


def create_app(classifier, *, max_upload_bytes: int = 5_000_000, max_seconds: float | None = 10.0,
               routers: Iterable[APIRouter] = (), batch_ms: float | None = 2.0, max_batch: int = 16,
               live=True) -> FastAPI:
    """Build the app around ``classifier`` (loaded once by the caller).

    Args:
        classifier: a :class:`~spokenword.inference.base.BaseClassifier` (``labels``, ``sample_rate`` (Hz),
            ``runtime``, ``waveform``, ``featurize``, ``probabilities``, ``rank``, ``spectrogram``).
        max_upload_bytes: larger uploads are refused with 413 before being read whole.
        max_seconds: longer clips are refused with 413, never decoded past this limit (s); None: the
            classifier's own limit (``max_seconds`` it was loaded with, else 600 s).
        routers: extra routers to include.
        batch_ms: micro-batching window (ms): ``/predict`` requests arriving within it share one
            model call; ``None`` runs each request on its own (one thread-pool call per request).
        max_batch: most requests per batch.
        live: the ``/ws/transcribe`` endpoint: True (default limits), a
            :class:`~spokenword.serve.live.LiveSettings`, or False for none.
    """
    app = FastAPI(title="spokenword", version="1",
                  description="Spoken digit recognition: POST an audio clip to /predict, "
                              "or stream microphone audio to the WebSocket /ws/transcribe.")
    app.state.classifier = classifier
    labels = list(classifier.labels)
    rate = int(classifier.sample_rate)
    runtime = classifier.runtime  # "torch", "onnx", or an ensemble's e.g. "onnx+onnx"

    def decode(data: bytes, name: str) -> np.ndarray:
        """The upload decoded (never past ``max_seconds``: the service's limit, or the classifier's
        when the service has none), or the 413 / 422 that says why not."""
        try:
            wave = classifier.waveform(data, max_seconds=max_seconds)
        except TooLongError as err:
            length = f"{err.seconds:.1f} s long" if err.seconds is not None else "longer than that"
            raise HTTPException(413, f"{name}: clip is {length}; the limit is {err.limit:g} s") from None
        except AudioError as err:
            problem = _OPENING.sub("", err.problem)  # libsndfile names the in-memory buffer: not useful here
            raise HTTPException(422, f"{name}: {problem}; send a wav, flac or ogg file") from None
        duration = len(wave) / rate
        if max_seconds is not None and len(wave) > max_seconds * rate + 1:  # resampling may add a sample
            raise HTTPException(413, f"{name}: clip is {duration:.1f} s long; the limit is {max_seconds:g} s")
        if len(wave) == 0:
            raise HTTPException(422, f"{name}: the clip holds no samples")
        return wave

    def describe(wave: np.ndarray, probs, top_k: int | None) -> dict:
        ranked = classifier.rank(probs, top_k)
        level = peak_dbfs(wave)
        return {
            "label": ranked[0]["label"],
            "score": ranked[0]["score"],
            "word": not is_rejection(ranked[0]["label"]),
            "top_k": ranked,
            "duration_s": round(len(wave) / rate, 4),
            "sample_rate": rate,
            "silent": level < SILENCE_DBFS,
            "peak_dbfs": round(level, 1) if math.isfinite(level) else None,
        }

    def infer(data: bytes, name: str, top_k: int | None, spectrogram: bool) -> dict:
        """One request on its own (runs in the thread pool)."""
        wave = decode(data, name)
        answer = describe(wave, classifier.probabilities([classifier.featurize(wave)])[0], top_k)
        if spectrogram:  # only when asked: one more run of the front end
            try:
                image = np.asarray(classifier.spectrogram(wave))[0]
            except ModelError as err:  # an export made before exports carried their features
                logger.warning("%s", err)
                raise HTTPException(501, "this model cannot show its spectrogram: it was exported by an earlier "
                                         "spokenword; re-export it to get its features") from None
            answer["spectrogram"] = np.round(image.astype(np.float64), 3).tolist()
        return answer

    def infer_batch(items: Sequence[tuple[bytes, str, int | None]]) -> list:
        """Several requests in one model call (runs in the thread pool); a failing item's
        HTTPException is its result and does not affect the others."""
        results: list = [None] * len(items)
        waves, features, rows = [], [], []
        for i, (data, name, _) in enumerate(items):
            try:
                wave = decode(data, name)
                feature = classifier.featurize(wave)
            except HTTPException as err:
                results[i] = err
                continue
            except Exception as err:  # noqa: BLE001 - a bug on one upload must not fail the others of its batch
                logger.exception("decoding %s failed", name)
                results[i] = HTTPException(500, f"server error ({type(err).__name__}) on {name}")
                continue
            waves.append(wave)
            features.append(feature)
            rows.append(i)
        if rows:
            probs = classifier.probabilities(features)
            for row, wave, p in zip(rows, waves, probs):
                results[row] = describe(wave, p, items[row][2])
        return results

    batcher = MicroBatcher(infer_batch, batch_ms / 1000.0, max_batch) if batch_ms is not None else None
    app.state.batcher = batcher

    @app.post("/predict", openapi_extra=_PREDICT_BODY, summary="Classify one audio clip", responses=_PREDICT_ANSWER)
    async def predict(request: Request, top_k: int | None = None, spectrogram: bool = False) -> JSONResponse:
        """Returns ``{label, score, word, top_k: [{label, score}], duration_s, sample_rate, silent, peak_dbfs}``;
        ``label`` is ``_unknown_`` (other speech) or ``_silence_`` (noise) when the clip is not a word,
        and then ``word`` is false; ``sample_rate`` is the rate the model heard (Hz), ``duration_s`` the clip length (s).
        ``?spectrogram=true`` adds the feature image the model saw (n_bins rows x n_frames)."""
        if top_k is not None and top_k < 1:
            raise HTTPException(422, "top_k must be at least 1")
        data, name = await _audio_bytes(request, max_upload_bytes)
        if batcher is None or spectrogram:
            answer = await run_in_threadpool(infer, data, name, top_k, spectrogram)
        else:
            answer = await batcher.submit((data, name, top_k))
        return JSONResponse(answer)

    @app.get("/health", summary="Liveness and model summary")
    def health() -> dict:
        """``reject_below``: the word threshold (a word is the answer when it scores at least it; ``null``: the
        model's own best label decides)."""
        return {"status": "ok", "labels": len(labels), "sample_rate": rate,
                "max_seconds": max_seconds, "max_upload_bytes": max_upload_bytes, "runtime": runtime,
                "reject_below": getattr(classifier, "reject_below", None)}

    @app.get("/labels", summary="Class names in model output order")
    def get_labels() -> dict:
        return {"labels": labels}

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if live:
        from spokenword.serve.live import LiveSettings, live_router

        app.include_router(live_router(classifier, live if isinstance(live, LiveSettings) else LiveSettings()))
    for router in routers:
        app.include_router(router)
    return app


def serve(model: str | None = None, *, also: Sequence[str] = (), host: str = "127.0.0.1", port: int = 8000, max_seconds: float = 10.0,
          max_upload_mb: float = 5.0, log_level: str = "info", runtime: str = "auto",
          batch_ms: float | None = 2.0, max_batch: int = 16, live=True,
          http: str = "auto", loop: str = "auto", reject_below: float | None = None) -> None:
    """Load ``model`` once (:func:`spokenword.inference.load.load_model` with ``runtime``, one intra-op
    thread per inference: requests run in parallel threads instead) and run the app with uvicorn until
    interrupted. With ``also`` (more checkpoints or exports), the app serves the
    :class:`~spokenword.inference.ensemble.Ensemble` of ``model`` and those, each loaded the same way.

    ``batch_ms``/``max_batch``: micro-batching of ``/predict`` (see :func:`create_app`); ``live``: the
    ``/ws/transcribe`` settings (a :class:`~spokenword.serve.live.LiveSettings`, True for the defaults,
    False for none). ``http``/``loop``: uvicorn's choices; ``auto`` takes httptools and uvloop (the
    ``serve`` extra, which also brings the WebSocket library). ``reject_below``: the word threshold
    (``load_model``'s; None: the bundled model's value, else the model's own best label).
    """
    import uvicorn

    from spokenword.inference.load import load_model
    from spokenword.serve.live import LiveSettings

    package = logging.getLogger("spokenword")  # this module's and the loader's lines
    if not package.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("spokenword serve: %(message)s"))
        package.addHandler(handler)
        package.setLevel(logging.INFO)
        package.propagate = False
    if live and not any(importlib.util.find_spec(m) for m in ("websockets", "wsproto")):
        logger.warning("no WebSocket library (websockets or wsproto): the continuous mode will not connect; "
                       "pip install 'spokenword[serve]'")
    classifier = load_model(model, *also, runtime=runtime, max_seconds=max_seconds, threads=1, reject_below=reject_below)
    settings = live if isinstance(live, LiveSettings) else LiveSettings()
    app = create_app(classifier, max_upload_bytes=int(max_upload_mb * 1e6), max_seconds=max_seconds,
                     batch_ms=batch_ms, max_batch=max_batch, live=settings if live else False)
    print(f"spokenword serve: {model or 'the bundled model (fsdd-digits)'} ({len(classifier.labels)} labels, {classifier.runtime} runtime, reject below {getattr(classifier, 'reject_below', None)}) on http://{host}:{port}/  "
          "(API docs: /docs)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, http=http, loop=loop,
                ws_max_size=2 * settings.max_frame_bytes)
