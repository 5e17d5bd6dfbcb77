""""Not a digit" in the web service: ``/predict``'s answer and ``word`` field, ``/health``'s
``reject_below``, the live WebSocket's ``rejected`` events (a stand-in model, no training)."""

from __future__ import annotations

import json
from dataclasses import replace
import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient

from spokenword.serve import create_app
from spokenword.serve.live import LiveSettings, live_vad
from tests.rejecting_model import (NOISE, ONE, OTHER_WORD, RATE, THREE, WEAK_TWO, ToneWords, digits_only, sequence,
                                   tone, wav)

#: tone bursts stand in for words: the band-energy detector alone (the learned one hears no speech in them)
LIVE = LiveSettings(vad=replace(live_vad(), speech=False))


def client(model) -> TestClient:
    return TestClient(create_app(model, batch_ms=None, live=LIVE))


def predict(c: TestClient, freq: float) -> dict:
    response = c.post("/predict", content=wav(tone(freq, 0.5)), headers={"Content-Type": "audio/wav"})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("batch_ms", [None, 2.0])
def test_predict_returns_the_rejection_with_word_false(batch_ms):
    with TestClient(create_app(ToneWords(), batch_ms=batch_ms)) as c:
        other, noise, one = predict(c, OTHER_WORD), predict(c, NOISE), predict(c, ONE)
    assert (other["label"], other["word"], other["score"]) == ("_unknown_", False, pytest.approx(0.9))
    assert (noise["label"], noise["word"]) == ("_silence_", False)
    assert (one["label"], one["word"]) == ("1", True)
    assert other["top_k"][0]["label"] == "_unknown_" and not other["silent"]


def test_reject_below_turns_a_weak_digit_into_unknown():
    with client(ToneWords()) as c:
        assert predict(c, WEAK_TWO)["label"] == "2"
        assert c.get("/health").json()["reject_below"] is None
    with client(ToneWords(reject_below=0.6)) as c:
        answer = predict(c, WEAK_TWO)
        assert (answer["label"], answer["word"]) == ("_unknown_", False)
        assert [r["label"] for r in answer["top_k"][:2]] == ["_unknown_", "2"]
        assert predict(c, ONE)["word"] is True
        assert c.get("/health").json()["reject_below"] == 0.6
    with client(digits_only(reject_below=0.6)) as c:  # no _unknown_ output: rank adds it
        answer = predict(c, WEAK_TWO)
        assert (answer["label"], answer["score"], answer["word"]) == ("_unknown_", pytest.approx(0.5), False)


def test_a_digits_only_model_answers_words():
    with client(digits_only()) as c:
        answers = [predict(c, f) for f in (ONE, OTHER_WORD, NOISE)]
    assert [(a["label"], a["word"]) for a in answers] == [("1", True), ("7", True), ("5", True)]


def test_openapi_documents_the_word_field():
    with client(ToneWords()) as c:
        schema = c.get("/openapi.json").json()
    answer = schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "word" in answer["required"] and answer["properties"]["word"]["type"] == "boolean"


def live(model, samples: np.ndarray) -> tuple[dict, list[dict]]:
    """Stream ``samples`` in 20 ms frames, stop; the ready message and every event until done."""
    with client(model) as c, c.websocket_connect("/ws/transcribe") as ws:
        ws.send_text(json.dumps({"sample_rate": RATE, "encoding": "float32"}))
        ready = ws.receive_json()
        for i in range(0, len(samples), 160):
            ws.send_bytes(samples[i:i + 160].astype("<f4").tobytes())
        ws.send_text(json.dumps({"type": "stop"}))
        events = []
        while (event := ws.receive_json())["type"] != "done":
            events.append(event)
    return ready, events


def test_live_sends_only_digits_as_words_and_rejections_apart():
    ready, events = live(ToneWords(reject_below=0.6), sequence(ONE, OTHER_WORD, THREE, NOISE, WEAK_TWO))
    assert ready["reject_below"] == 0.6
    assert [(e["type"], e["label"]) for e in events] == [
        ("word", "1"), ("rejected", "_unknown_"), ("word", "3"), ("rejected", "_silence_"), ("rejected", "_unknown_")]
    rejected = [e for e in events if e["type"] == "rejected"]
    assert all(set(e) == {"type", "label", "score", "start", "end", "decided_at"} for e in rejected)
    assert all(e["end"] > e["start"] and e["decided_at"] >= e["end"] for e in rejected)


def test_live_with_a_digits_only_model_sends_words_as_before():
    _, events = live(digits_only(), sequence(ONE, OTHER_WORD, NOISE))
    assert [(e["type"], e["label"]) for e in events] == [("word", "1"), ("word", "7"), ("word", "5")]
    assert all(set(e) == {"type", "label", "score", "start", "end", "uncertain", "decided_at"} for e in events)


def test_serve_passes_reject_below_to_the_loader(monkeypatch):
    import uvicorn

    import spokenword.inference.load as load

    seen = {}

    def fake_load(*models, reject_below=None, **options):
        seen["reject_below"] = reject_below
        return ToneWords(reject_below=reject_below)

    monkeypatch.setattr(load, "load_model", fake_load)
    # a handler already there: serve leaves the package logger's setup (global state) alone
    monkeypatch.setattr(logging.getLogger("spokenword"), "handlers", [logging.NullHandler()])
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.setdefault("app", app))
    from spokenword.serve.app import serve

    serve("model.onnx", reject_below=0.4, workers=1)
    assert seen["reject_below"] == 0.4
    with TestClient(seen["app"]) as c:
        assert c.get("/health").json()["reject_below"] == 0.4
