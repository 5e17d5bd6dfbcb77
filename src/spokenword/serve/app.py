"""The web service: a FastAPI app around one loaded classifier.

:func:`create_app` takes an already loaded classifier (:func:`spokenword.inference.load.load_model`:
an exported ``.onnx`` model, or a ``.ckpt`` checkpoint exported to ONNX at startup, or the
checkpoint's PyTorch :class:`~spokenword.inference.checkpoint.Classifier`), so the model is loaded
once per process and every request uses the classifier's own preprocessing (``waveform`` ->
``featurize`` -> ``probabilities`` -> ``rank``); nothing here re-implements it.

Routes: ``POST /predict`` (multipart field ``file`` or the raw file as the body), ``GET /health``,
``GET /labels``, the live transcription WebSocket ``/ws/transcribe`` (:mod:`spokenword.serve.live`),
the page at ``/`` (assets under ``/static``, all served locally), the OpenAPI docs at ``/docs``, and
``/teach`` (teaching new words from the page, off unless turned on: :mod:`spokenword.serve.teach`).
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
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from spokenword.audio import AudioError, TooLongError
from spokenword.inference.base import ModelError
from spokenword.labels import is_rejection
from spokenword.serve.batching import MicroBatcher
from spokenword.serve.uploads import UPLOAD_FIELD, _audio_bytes, peak_dbfs  # noqa: F401 - peak_dbfs: its public home was here

STATIC = Path(__file__).with_name("static")
logger = logging.getLogger("spokenword.serve")

#: A clip whose loudest sample is below this level (dB relative to full scale) is reported as
#: ``"silent": true``: the model still answers, but the page says no speech was heard.
SILENCE_DBFS = -40.0

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


def swap_model(app: FastAPI, classifier, name: str | None) -> None:
    """Serve ``classifier`` from now on (``name``: what ``/health`` calls it). Requests and live streams
    that started before keep the classifier they began with; new ones get this one."""
    app.state.model_name = name
    app.state.classifier = classifier  # one assignment: every reader sees the old model or the new, never a mix


def create_app(classifier, *, max_upload_bytes: int = 5_000_000, max_seconds: float | None = 10.0,
               routers: Iterable[APIRouter] = (), batch_ms: float | None = 2.0, max_batch: int = 16,
               live=True, teach=None, model_name: str | None = None) -> FastAPI:
    """Build the app around ``classifier`` (loaded once by the caller).

    Args:
        classifier: a :class:`~spokenword.inference.base.BaseClassifier` (``labels``, ``sample_rate`` (Hz),
            ``runtime``, ``waveform``, ``featurize``, ``probabilities``, ``rank``, ``spectrogram``).
            It is ``app.state.classifier``, read once per request and per live connection, so
            :func:`swap_model` (teaching does) replaces it for what comes next.
        max_upload_bytes: larger uploads are refused with 413 before being read whole.
        max_seconds: longer clips are refused with 413, never decoded past this limit (s); None: the
            classifier's own limit (``max_seconds`` it was loaded with, else 600 s).
        routers: extra routers to include.
        batch_ms: micro-batching window (ms): ``/predict`` requests arriving within it share one
            model call; ``None`` runs each request on its own (one thread-pool call per request).
        max_batch: most requests per batch.
        live: the ``/ws/transcribe`` endpoint: True (default limits), a
            :class:`~spokenword.serve.live.LiveSettings`, or False for none.
        teach: a :class:`~spokenword.serve.teach.TeachSettings` turns on the ``/teach`` routes (new words
            taught from the page; :mod:`spokenword.serve.teach`); None (default): off.
        model_name: what ``/health`` calls the model (e.g. its path).
    """
    app = FastAPI(title="spokenword", version="1",
                  description="Spoken digit recognition: POST an audio clip to /predict, "
                              "or stream microphone audio to the WebSocket /ws/transcribe.")
    swap_model(app, classifier, model_name)

    def decode(classifier, data: bytes, name: str) -> np.ndarray:
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
        rate = int(classifier.sample_rate)
        duration = len(wave) / rate
        if max_seconds is not None and len(wave) > max_seconds * rate + 1:  # resampling may add a sample
            raise HTTPException(413, f"{name}: clip is {duration:.1f} s long; the limit is {max_seconds:g} s")
        if len(wave) == 0:
            raise HTTPException(422, f"{name}: the clip holds no samples")
        return wave

    def describe(classifier, wave: np.ndarray, probs, top_k: int | None) -> dict:
        ranked = classifier.rank(probs, top_k)
        level = peak_dbfs(wave)
        rate = int(classifier.sample_rate)
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
        classifier = app.state.classifier  # once: the whole request on one model, even across a swap
        wave = decode(classifier, data, name)
        answer = describe(classifier, wave, classifier.probabilities([classifier.featurize(wave)])[0], top_k)
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
        classifier = app.state.classifier  # once per batch: one model call needs one model
        results: list = [None] * len(items)
        waves, features, rows = [], [], []
        for i, (data, name, _) in enumerate(items):
            try:
                wave = decode(classifier, data, name)
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
                results[row] = describe(classifier, wave, p, items[row][2])
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
        model's own best label decides); ``model``: what is served (it changes when teaching swaps it)."""
        classifier = app.state.classifier
        return {"status": "ok", "labels": len(classifier.labels), "sample_rate": int(classifier.sample_rate),
                "max_seconds": max_seconds, "max_upload_bytes": max_upload_bytes, "runtime": classifier.runtime,
                "reject_below": getattr(classifier, "reject_below", None), "model": app.state.model_name}

    @app.get("/labels", summary="Class names in model output order")
    def get_labels() -> dict:
        return {"labels": list(app.state.classifier.labels)}

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if live:
        from spokenword.serve.live import LiveSettings, live_router

        app.include_router(live_router(classifier, live if isinstance(live, LiveSettings) else LiveSettings(),
                                       current=lambda: app.state.classifier))
    from spokenword.serve.teach import teach_router

    app.include_router(teach_router(app, teach, max_seconds=max_seconds, swap=swap_model))
    for router in routers:
        app.include_router(router)
    return app


def served_app(model: str | None = None, *, also: Sequence[str] = (), runtime: str = "auto", max_seconds: float = 10.0,
               reject_below: float | None = None, max_upload_mb: float = 5.0, batch_ms: float | None = 2.0,
               max_batch: int = 16, live=True, teach: str | None = None, teach_token: str | None = None) -> tuple[FastAPI, str]:
    """Load the served model (as :func:`serve` describes) and build its app: ``(app, summary)``, the summary being
    the line the server prints (the model, its labels, runtime and threshold). Each worker process calls it."""
    from spokenword.inference.load import load_model
    from spokenword.serve import teach as teach_module
    from spokenword.serve.live import LiveSettings

    teaching, served = None, model
    if teach is not None:
        # what training adapts: the model named here when it can be (an ensemble or an .onnx file cannot), else the bundled one
        source = str(model) if model is not None and not also and not str(model).lower().endswith(".onnx") else None
        teaching = teach_module.TeachSettings(Path(teach), token=teach_token, source=source, reject_below=reject_below,
                                              silence_dbfs=SILENCE_DBFS)
        last = teach_module.latest_model(teach) if model is None and not also else None
        if last is not None:
            served = str(last)
            logger.info("serving the last model taught into %s: %s (name a model to serve another)", teach, last)
    classifier = None
    if served is not None and served != model:
        try:
            classifier = load_model(served, runtime=runtime, max_seconds=max_seconds, threads=1, reject_below=reject_below)
        except ModelError as err:
            logger.warning("the last taught model cannot be loaded (%s); serving the bundled model", err)
            served = model
    if classifier is None:
        classifier = load_model(model, *also, runtime=runtime, max_seconds=max_seconds, threads=1, reject_below=reject_below)
    settings = live if isinstance(live, LiveSettings) else LiveSettings()
    app = create_app(classifier, max_upload_bytes=int(max_upload_mb * 1e6), max_seconds=max_seconds,
                     batch_ms=batch_ms, max_batch=max_batch, live=settings if live else False, teach=teaching,
                     model_name=str(served) if served is not None else "the bundled model (fsdd-digits)")
    if teaching is not None:
        logger.info("teaching is on: takes and taught models go to %s%s", teach,
                    " (requests need the teach token)" if teaching.token else "")
    summary = (f"{served or 'the bundled model (fsdd-digits)'} ({len(classifier.labels)} labels, {classifier.runtime} runtime, "
               f"reject below {getattr(classifier, 'reject_below', None)})")
    return app, summary


def serve(model: str | None = None, *, also: Sequence[str] = (), host: str = "127.0.0.1", port: int = 8000, max_seconds: float = 10.0,
          max_upload_mb: float = 5.0, log_level: str = "info", runtime: str = "auto",
          batch_ms: float | None = 2.0, max_batch: int = 16, live=True,
          http: str = "auto", loop: str = "auto", reject_below: float | None = None,
          teach: str | None = None, teach_token: str | None = None, workers: int | None = None) -> None:
    """Load ``model`` once per process (:func:`spokenword.inference.load.load_model` with ``runtime``, one intra-op
    thread per inference: requests run in parallel threads instead) and run the app with uvicorn until
    interrupted. With ``also`` (more checkpoints or exports), the app serves the
    :class:`~spokenword.inference.ensemble.Ensemble` of ``model`` and those, each loaded the same way.

    ``batch_ms``/``max_batch``: micro-batching of ``/predict`` (see :func:`create_app`); ``live``: the
    ``/ws/transcribe`` settings (a :class:`~spokenword.serve.live.LiveSettings`, True for the defaults,
    False for none). ``http``/``loop``: uvicorn's choices; ``auto`` takes httptools and uvloop (the
    ``serve`` extra, which also brings the WebSocket library). ``reject_below``: the word threshold
    (``load_model``'s; None: the bundled model's value, else the model's own best label).

    ``workers``: server processes on the port, each with its own model (:mod:`spokenword.serve.workers`); None: one
    per usable CPU up to :data:`~spokenword.serve.workers.MAX_AUTO_WORKERS` on Linux, else one. Limits such as the
    live endpoint's concurrent streams are per process.

    ``teach``: a teach folder turns on teaching from the page (:mod:`spokenword.serve.teach`); with no
    ``model`` named, the last model taught into it is served. It serves one process. Beyond loopback it needs
    ``teach_token`` (else ``$SPOKENWORD_TEACH_TOKEN``); without one :class:`~spokenword.serve.teach.TeachError` is raised.
    """
    import uvicorn

    from spokenword.serve import teach as teach_module
    from spokenword.serve import workers as workers_module
    from spokenword.serve.live import LiveSettings

    token = (teach_token or os.environ.get(teach_module.TOKEN_ENV) or None) if teach is not None else None
    if teach is not None:
        teach_module.check_host(host, token)  # before anything is loaded: a refusal is immediate
    count = workers_module.worker_count(workers, teaching=teach is not None)
    workers_module.setup_logging()
    if live and not any(importlib.util.find_spec(m) for m in ("websockets", "wsproto")):
        logger.warning("no WebSocket library (websockets or wsproto): the continuous mode will not connect; "
                       "pip install 'spokenword[serve]'")
    settings = live if isinstance(live, LiveSettings) else LiveSettings()
    server = {"log_level": log_level, "http": http, "loop": loop, "ws_max_size": 2 * settings.max_frame_bytes}
    options = {"model": model, "also": tuple(also), "runtime": runtime, "max_seconds": max_seconds,
               "reject_below": reject_below, "max_upload_mb": max_upload_mb, "batch_ms": batch_ms,
               "max_batch": max_batch, "live": settings if live else False}
    if count > 1:
        workers_module.run(count, host, port, served_app, options, server)
        return
    app, summary = served_app(**options, teach=teach, teach_token=token)
    print(f"spokenword serve: {summary} on http://{host}:{port}/  (API docs: /docs)", flush=True)
    uvicorn.run(app, host=host, port=port, access_log=False, **server)
