"""The web service: a FastAPI app around one loaded classifier.

:func:`create_app` takes an already loaded classifier (``spokenword.predict.load_classifier``:
a ``.ckpt`` :class:`~spokenword.predict.Classifier` or an exported ``.onnx`` model), so the model
is loaded once per process and every request uses the classifier's own preprocessing
(``waveform`` -> ``featurize`` -> ``probabilities`` -> ``rank``); nothing here re-implements it.
Other routers (e.g. a WebSocket endpoint) can be passed in ``routers``.

Routes: ``POST /predict`` (multipart field ``file`` or the raw file as the body), ``GET /health``,
``GET /labels``, the page at ``/`` (assets under ``/static``, all served locally) and the OpenAPI
docs at ``/docs``. Every user mistake is answered with a 4xx and ``{"detail": "..."}``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import AsyncIterator, Iterable

import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.formparsers import MultiPartException, MultiPartParser

from spokenword.audio import AudioError

STATIC = Path(__file__).with_name("static")

#: A clip whose loudest sample is below this level (dB relative to full scale) is reported as
#: ``"silent": true``: the model still answers, but the page says no speech was heard.
SILENCE_DBFS = -40.0

UPLOAD_FIELD = "file"
_OPENING = re.compile(r"Error opening <[^>]*>: ")

_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "description": "An audio file soundfile reads (wav, flac, ogg; any sample rate; mono or stereo), "
                       f"either as the raw request body or as the multipart form field '{UPLOAD_FIELD}'.",
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": [UPLOAD_FIELD],
                                               "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary"}}}},
            "audio/wav": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


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
               routers: Iterable[APIRouter] = ()) -> FastAPI:
    """Build the app around ``classifier`` (loaded once by the caller).

    Args:
        classifier: object with ``labels``, ``sample_rate`` (Hz), ``waveform``, ``featurize``,
            ``probabilities``, ``rank`` and ``spectrogram`` (both ``load_classifier`` kinds).
        max_upload_bytes: larger uploads are refused with 413 before being read whole.
        max_seconds: longer clips are refused with 413 (the classifier may also check it from the
            file header when loaded with ``max_seconds=``); None for no limit.
        routers: extra routers to include (e.g. a streaming WebSocket mode).
    """
    app = FastAPI(title="spokenword", version="1",
                  description="Spoken digit recognition: POST an audio clip to /predict.")
    app.state.classifier = classifier
    labels = list(classifier.labels)
    rate = int(classifier.sample_rate)

    def infer(data: bytes, name: str, top_k: int | None, spectrogram: bool) -> dict:
        """CPU work of one request (runs in the thread pool)."""
        try:
            wave = classifier.waveform(data)
        except AudioError as err:
            status = 413 if "the limit is" in err.problem else 422
            problem = _OPENING.sub("", err.problem)  # libsndfile names the in-memory buffer: not useful here
            raise HTTPException(status, f"{name}: {problem}; send a wav, flac or ogg file") from None
        duration = len(wave) / rate
        if max_seconds is not None and duration > max_seconds:
            raise HTTPException(413, f"{name}: clip is {duration:.1f} s long; the limit is {max_seconds:g} s")
        if len(wave) == 0:
            raise HTTPException(422, f"{name}: the clip holds no samples")
        features = classifier.featurize(wave)
        ranked = classifier.rank(classifier.probabilities(features[None])[0], top_k)
        level = peak_dbfs(wave)
        answer = {
            "label": ranked[0]["label"],
            "score": ranked[0]["score"],
            "top_k": ranked,
            "duration_s": round(duration, 4),
            "sample_rate": rate,
            "silent": level < SILENCE_DBFS,
            "peak_dbfs": round(level, 1) if math.isfinite(level) else None,
        }
        if spectrogram:
            image = np.asarray(features)[0]
            answer["spectrogram"] = np.round(image.astype(np.float64), 3).tolist()
        return answer

    @app.post("/predict", openapi_extra=_PREDICT_BODY, summary="Classify one audio clip")
    async def predict(request: Request, top_k: int | None = None, spectrogram: bool = False) -> dict:
        """Returns ``{label, score, top_k: [{label, score}], duration_s, sample_rate, silent}``;
        ``sample_rate`` is the rate the model heard (Hz), ``duration_s`` the clip length (s).
        ``?spectrogram=true`` adds the feature image the model saw (n_bins rows x n_frames)."""
        if top_k is not None and top_k < 1:
            raise HTTPException(422, "top_k must be at least 1")
        data, name = await _audio_bytes(request, max_upload_bytes)
        return await run_in_threadpool(infer, data, name, top_k, spectrogram)

    @app.get("/health", summary="Liveness and model summary")
    def health() -> dict:
        return {"status": "ok", "labels": len(labels), "sample_rate": rate,
                "max_seconds": max_seconds, "max_upload_bytes": max_upload_bytes}

    @app.get("/labels", summary="Class names in model output order")
    def get_labels() -> dict:
        return {"labels": labels}

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in routers:
        app.include_router(router)
    return app


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8000, max_seconds: float = 10.0,
          max_upload_mb: float = 5.0, log_level: str = "info") -> None:
    """Load ``model`` once and run the app with uvicorn until interrupted."""
    import uvicorn

    from spokenword.predict import load_classifier

    try:  # one intra-op thread per request: requests run in parallel threads instead
        import torch

        torch.set_num_threads(1)
    except ImportError:  # an .onnx model needs no torch
        pass
    classifier = load_classifier(model, max_seconds=max_seconds)
    app = create_app(classifier, max_upload_bytes=int(max_upload_mb * 1e6), max_seconds=max_seconds)
    print(f"spokenword serve: {model} ({len(classifier.labels)} labels) on http://{host}:{port}/  (API docs: /docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
