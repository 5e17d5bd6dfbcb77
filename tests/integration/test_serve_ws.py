"""The live transcription WebSocket (/ws/transcribe) in-process (Starlette TestClient), with the
session's 3-epoch checkpoint and a stream of official-test-split FSDD recordings (takes 0-4)."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import soxr
from starlette.websockets import WebSocketDisconnect

from tests.conftest import tone

pytestmark = pytest.mark.integration

RATE = 8000
GAP_S = 0.6  # silence between words: more than the segmenter needs to close a word
SPEAKERS = ("jackson", "theo", "nicolas", "george", "lucas", "yweweler")


@pytest.fixture(scope="module")
def classifier(trained_checkpoint):
    from spokenword.inference.load import load_model

    return load_model(trained_checkpoint, max_seconds=10)


def make_client(classifier, **live):
    from fastapi.testclient import TestClient

    from spokenword.serve import create_app
    from spokenword.serve.live import LiveSettings

    return TestClient(create_app(classifier, live=LiveSettings(**live)))


@pytest.fixture(scope="module")
def client(classifier):
    with make_client(classifier) as c:
        yield c


def offline_words(classifier, wave: np.ndarray):
    """What the transcriber makes of the whole signal at once, with the live endpoint's settings."""
    from spokenword.serve.live import live_vad, live_words
    from spokenword.transcribe.decode import Transcriber

    return Transcriber(classifier, vad=live_vad(), words=live_words()).transcribe_samples(wave, RATE).words


@pytest.fixture(scope="module")
def spoken(classifier, fsdd_recordings):
    """``(wave, digits, word_ends)``: 5 test-split recordings (takes 0-4) of different digits, each
    by another speaker than the one before, that the model gets right with a score of 0.9 or more,
    with 0.6 s of silence between them (0.5 s before, 0.8 s after); the offline transcription of
    the whole signal is exactly their digits."""

    def pick(digit: int, avoid: str | None):
        for take in range(5):
            for speaker in SPEAKERS:
                path = fsdd_recordings / f"{digit}_{speaker}_{take}.wav"
                if speaker == avoid or not path.exists():
                    continue
                top = classifier(path)[0]
                if top["label"] != str(digit) or top["score"] < 0.9:
                    continue
                wave, rate = sf.read(path, dtype="float32")
                assert rate == RATE
                alone = np.concatenate([np.zeros(int(0.5 * RATE), np.float32), wave, np.zeros(int(0.8 * RATE), np.float32)])
                if "".join(w.label for w in offline_words(classifier, alone)) == str(digit):
                    return speaker, wave
        return None

    digits, parts, ends = "", [np.zeros(int(0.5 * RATE), np.float32)], []
    position, speaker = int(0.5 * RATE), None
    for digit in (3, 7, 1, 9, 4, 0, 2, 5, 6, 8):
        found = pick(digit, speaker)
        if found is None:
            continue
        speaker, wave = found
        digits += str(digit)
        parts += [wave, np.zeros(int(GAP_S * RATE), np.float32)]
        ends.append((position + len(wave)) / RATE)
        position += len(wave) + int(GAP_S * RATE)
        if len(digits) == 5:
            break
    assert len(digits) == 5, f"only {len(digits)} usable clips"
    parts.append(np.zeros(int(0.2 * RATE), np.float32))  # 0.6 + 0.2 s after the last word
    wave = np.concatenate(parts)
    assert "".join(w.label for w in offline_words(classifier, wave)) == digits
    return wave, digits, ends


def stream(client, samples: np.ndarray, rate: int, encoding: str = "float32", frames=None, start: dict | None = None):
    """Send ``samples`` in ``frames`` (sizes; default 20 ms), stop, and return (ready, words, done)."""
    dtype = {"float32": "<f4", "int16": "<i2"}[encoding]
    data = (np.clip(samples, -1, 1) * 32767).astype(dtype) if encoding == "int16" else samples.astype(dtype)
    sizes = frames or [int(0.02 * rate)] * (len(data) // int(0.02 * rate) + 1)
    with client.websocket_connect("/ws/transcribe") as ws:
        ws.send_text(json.dumps(start or {"sample_rate": rate, "encoding": encoding}))
        ready = ws.receive_json()
        position = 0
        for size in sizes:
            if position >= len(data):
                break
            ws.send_bytes(data[position:position + size].tobytes())
            position += size
        assert position >= len(data)
        ws.send_text(json.dumps({"type": "stop"}))
        words = []
        while (event := ws.receive_json())["type"] == "word":
            words.append(event)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1000
    return ready, words, event


def text(words) -> str:
    return "".join("?" if w["uncertain"] else w["label"] for w in words)


def test_stream_gives_the_digits_as_each_word_ends(client, classifier, spoken):
    wave, digits, ends = spoken
    ready, words, done = stream(client, wave, RATE)
    assert ready["type"] == "ready" and ready["sample_rate"] == RATE and ready["resampling"] is False
    assert ready["labels"] == list(classifier.labels)
    assert "".join(w["label"] for w in words) == digits
    assert done == {"type": "done", "seconds": pytest.approx(len(wave) / RATE, abs=1e-3)}
    # the same words as transcribing the whole signal at once
    offline = offline_words(classifier, wave)
    assert [(w["label"], w["start"], w["end"], w["uncertain"]) for w in words] == [
        (w.label, w.start, w.end, w.uncertain) for w in offline]
    for event, word in zip(words, offline):
        assert event["score"] == pytest.approx(word.score, abs=1e-6)
        assert set(event) == {"type", "label", "score", "start", "end", "uncertain", "decided_at"}
    # each word was sent when the segmenter closed it: before the next word began, not at the end
    for event, end in zip(words, ends):
        # a take's end may hold up to ~0.1 s that the speech detector does not count as the word (a breath, noise)
        assert event["start"] < end <= event["end"] + 0.15
        assert 0 < event["decided_at"] - end < GAP_S, (event, end)


@pytest.mark.timeout(120)
def test_a_word_arrives_before_the_next_audio_is_sent(client, spoken):
    """Word by word: after each word and 0.4 s of its following silence, its event is waiting."""
    wave, digits, ends = spoken
    with client.websocket_connect("/ws/transcribe") as ws:
        ws.send_text(json.dumps({"sample_rate": RATE}))
        assert ws.receive_json()["type"] == "ready"
        sent = 0
        for digit, end in zip(digits, ends):
            until = int((end + 0.4) * RATE)
            for i in range(sent, until, 160):
                ws.send_bytes(wave[i:min(i + 160, until)].tobytes())
            sent = until
            event = ws.receive_json()  # would block (and time out) if words were held back
            assert event["type"] == "word" and event["label"] == digit
            assert event["decided_at"] <= sent / RATE
        ws.send_text(json.dumps({"type": "stop"}))
        assert ws.receive_json()["type"] == "done"


def test_frame_sizes_and_int16_give_the_same_words(client, spoken):
    wave, digits, _ = spoken
    _, reference, _ = stream(client, wave, RATE)
    rng = np.random.default_rng(0)
    sizes = [int(s) for s in rng.integers(1, 4000, size=len(wave))]
    _, words, _ = stream(client, wave, RATE, frames=sizes)
    without_time_of_decision = lambda events: [{k: v for k, v in e.items() if k != "decided_at"} for e in events]  # noqa: E731
    assert without_time_of_decision(words) == without_time_of_decision(reference)
    _, words16, _ = stream(client, wave, RATE, encoding="int16")
    assert "".join(w["label"] for w in words16) == digits
    assert [w["end"] for w in words16] == pytest.approx([w["end"] for w in reference], abs=0.011)


@pytest.mark.parametrize("rate, encoding", [(48000, "float32"), (44100, "int16")])
def test_other_sample_rates_are_resampled(client, spoken, rate, encoding):
    wave, digits, ends = spoken
    ready, words, done = stream(client, soxr.resample(wave, RATE, rate), rate, encoding)
    assert ready["resampling"] is True and ready["input_rate"] == rate
    assert "".join(w["label"] for w in words) == digits
    assert done["seconds"] == pytest.approx(len(wave) / RATE, abs=1e-3)
    for event, end in zip(words, ends):  # times stay in seconds of the stream
        assert event["start"] < end <= event["end"] + 0.16


def expect_error(ws, code: int, words: str) -> str:
    event = ws.receive_json()
    assert event["type"] == "error", event
    assert words in event["detail"], event["detail"]
    assert "Traceback" not in event["detail"]
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == code
    return event["detail"]


HELLO = json.dumps({"sample_rate": RATE})
HELLO16 = json.dumps({"sample_rate": RATE, "encoding": "int16"})


@pytest.mark.parametrize("messages, code, words", [
    ([b"\x00\x00\x80\x3f"], 1003, "first message must be JSON text"),
    (["hello"], 1008, "not JSON"),
    (["[8000]"], 1008, "JSON object"),
    (["{}"], 1008, "sample_rate must be an integer"),
    (['{"sample_rate": "fast"}'], 1008, "sample_rate must be an integer"),
    (['{"sample_rate": true}'], 1008, "sample_rate must be an integer"),
    (['{"sample_rate": 10}'], 1008, "outside the supported"),
    (['{"sample_rate": 8000, "encoding": "mp3"}'], 1008, "encoding must be one of"),
    ([HELLO, b"\x00\x01\x02"], 1007, "not a whole number of float32 samples"),
    ([HELLO16, b"\x00\x01\x02"], 1007, "not a whole number of int16 samples"),
    ([HELLO, np.array([0.1, np.nan], "<f4").tobytes()], 1007, "NaN or infinite"),
    ([HELLO, np.array([np.inf] * 4, "<f4").tobytes()], 1007, "NaN or infinite"),
    ([HELLO, np.zeros(9000, "<f4").tobytes()], 1009, "the limit is 1 s per frame"),
    ([HELLO, np.zeros(200_000, "<f4").tobytes()], 1009, "the limit is 524288 bytes"),
    ([HELLO, "what now?"], 1003, "must be {\"type\": \"stop\"}"),
    ([HELLO, '{"type": "pause"}'], 1003, "must be {\"type\": \"stop\"}"),
])
def test_bad_input_gets_an_error_and_a_close_code(client, spoken, messages, code, words):
    with client.websocket_connect("/ws/transcribe") as ws:
        for message in messages:
            (ws.send_bytes if isinstance(message, bytes) else ws.send_text)(message)
            if message in (HELLO, HELLO16):
                assert ws.receive_json()["type"] == "ready"
        expect_error(ws, code, words)
    # the server goes on: HTTP and a new stream still work
    assert client.get("/health").json()["status"] == "ok"
    _, words_after, _ = stream(client, spoken[0][: int(2.2 * RATE)], RATE)
    assert words_after and words_after[0]["label"] == spoken[1][0]


def test_empty_frames_are_ignored(client):
    with client.websocket_connect("/ws/transcribe") as ws:
        ws.send_text(HELLO)
        ws.receive_json()
        ws.send_bytes(b"")
        ws.send_bytes(np.zeros(800, "<f4").tobytes())
        ws.send_bytes(b"")
        ws.send_text('{"type": "stop"}')
        assert ws.receive_json() == {"type": "done", "seconds": 0.1}


def test_stream_length_limit_sends_the_words_then_closes(classifier, spoken):
    wave, digits, ends = spoken
    with make_client(classifier, max_stream_seconds=2.5) as c, c.websocket_connect("/ws/transcribe") as ws:
        ws.send_text(HELLO)
        ws.receive_json()
        events = []
        for i in range(0, len(wave), 800):
            ws.send_bytes(wave[i:i + 800].tobytes())
            if (i + 800) / RATE >= 2.5:
                break
        while (event := ws.receive_json())["type"] == "word":
            events.append(event)
        assert event["type"] == "error" and "stream limit of 2.5 s" in event["detail"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1008
    complete = sum(end < 2.5 - 0.2 for end in ends)  # words that ended well before the limit
    assert "".join(e["label"] for e in events[:complete]) == digits[:complete]
    assert len(events) <= complete + 1  # plus the word cut by the limit, when one was in progress
    assert all(e["end"] <= 2.5 for e in events)


def test_idle_and_start_timeouts(classifier):
    with make_client(classifier, idle_timeout_s=0.3, hello_timeout_s=0.3) as c:
        with c.websocket_connect("/ws/transcribe") as ws:
            expect_error(ws, 1008, "no start message for 0.3 s")
        with c.websocket_connect("/ws/transcribe") as ws:
            ws.send_text(HELLO)
            assert ws.receive_json()["type"] == "ready"
            ws.send_bytes(np.zeros(160, "<f4").tobytes())
            expect_error(ws, 1008, "no audio for 0.3 s")


def test_connection_time_limit(classifier):
    with make_client(classifier, max_connection_seconds=0.5, idle_timeout_s=5) as c:
        with c.websocket_connect("/ws/transcribe") as ws:
            ws.send_text(HELLO)
            assert ws.receive_json()["max_connection_seconds"] == 0.5
            ws.send_bytes(np.zeros(160, "<f4").tobytes())
            expect_error(ws, 1008, "open for 0.5 s, the limit")


def test_too_many_streams_are_refused_with_1013(classifier):
    with make_client(classifier, max_streams=1) as c:
        with c.websocket_connect("/ws/transcribe") as first:
            first.send_text(HELLO)
            assert first.receive_json()["type"] == "ready"
            with c.websocket_connect("/ws/transcribe") as second:
                expect_error(second, 1013, "try again later")
            first.send_text('{"type": "stop"}')
            assert first.receive_json()["type"] == "done"
        with c.websocket_connect("/ws/transcribe") as again:  # the slot was given back
            again.send_text(HELLO)
            assert again.receive_json()["type"] == "ready"


class BrokenClassifier:
    """Has the classifier interface the live endpoint uses, and fails on every word."""

    labels = [str(d) for d in range(10)]
    sample_rate = RATE
    runtime = "torch"

    def __call__(self, source, top_k=None):
        raise RuntimeError("model exploded")


def test_a_server_fault_closes_with_1011_and_the_server_goes_on(spoken):
    from fastapi.testclient import TestClient

    from spokenword.serve import create_app

    with TestClient(create_app(BrokenClassifier())) as c:
        with c.websocket_connect("/ws/transcribe") as ws:
            ws.send_text(HELLO)
            ws.receive_json()
            detail = None
            for i in range(0, len(spoken[0]), 1600):
                ws.send_bytes(spoken[0][i:i + 1600].tobytes())
                event = ws.receive_json() if i >= 1600 * 10 else None  # past the first word by now
                if event is not None:
                    assert event["type"] == "error"
                    detail = event["detail"]
                    break
            assert detail == "server error (RuntimeError); the stream was closed"
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 1011
        assert c.get("/health").status_code == 200


def test_memory_per_stream_stays_bounded(classifier):
    """Two minutes of word-like bursts through one stream: memory after 2 min ~ after 30 s."""
    from spokenword.serve.live import LiveStream, live_vad
    from spokenword.transcribe.decode import Transcriber

    live = LiveStream(Transcriber(classifier, vad=live_vad()), RATE, "int16")
    second = np.concatenate([tone(0.35, freq=300.0, amplitude=0.3), np.zeros(int(0.65 * RATE), np.float32)])
    frame = (second * 32767).astype("<i2").tobytes()
    words = 0
    tracemalloc.start()
    try:
        for s in range(120):
            for i in range(0, len(frame), 640):
                words += len(live.feed(frame[i:i + 640]))
            if s == 29:
                at_30s = tracemalloc.get_traced_memory()[0]
        at_120s = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert words >= 100  # the bursts were heard as words
    assert at_120s - at_30s < 256 * 1024, f"grew {(at_120s - at_30s) / 1024:.0f} KiB over 90 s of audio"


def test_live_endpoint_can_be_left_out(classifier):
    from fastapi.testclient import TestClient

    from spokenword.serve import create_app

    with TestClient(create_app(classifier, live=False)) as c:
        assert all(getattr(r, "path", "") != "/ws/transcribe" for r in c.app.routes)
