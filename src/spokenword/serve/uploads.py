"""Reading an uploaded audio file from a request: the multipart field ``file`` or the raw body, refused
(413) past a size limit before it is read whole; and the loudness check of a decoded clip. Shared by
``/predict`` (:mod:`spokenword.serve.app`) and the teaching routes (:mod:`spokenword.serve.teach`).
"""

from __future__ import annotations

import math
from typing import AsyncIterator

import numpy as np
from fastapi import HTTPException, Request
from starlette.formparsers import MultiPartException, MultiPartParser

UPLOAD_FIELD = "file"


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


