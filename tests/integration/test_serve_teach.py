"""Teaching from the page (``/teach``, :mod:`spokenword.serve.teach`) in-process (TestClient) with the
bundled model: names that must never become paths, takes refused with their reason, limits, the token,
and real adaptation (:func:`spokenword.training.adapt.adapt`) whose model the app serves at once.

The new word is "backwards": FSDD recordings of one digit played backwards, padded with silence, a
word the digits model has never heard."""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import tone

pytestmark = pytest.mark.integration

WORD = "backwards"
TAKES = ("5_theo_10.wav", "5_theo_11.wav", "5_theo_12.wav")  # training split (takes 5-49)
HELD_OUT = "5_theo_13.wav"
STEPS = 60  # adapt's training steps: a few seconds; enough for one new word


def wav_bytes(samples: np.ndarray, rate: int = 8000, subtype: str | None = None) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format="WAV", subtype=subtype)
    return out.getvalue()


def backwards(path: Path, pad_s: float = 0.25) -> np.ndarray:
    wave, rate = sf.read(path, dtype="float32")
    pad = np.zeros(int(pad_s * rate), np.float32)
    return np.concatenate([pad, wave[::-1], pad])


def url_of(name: str) -> str:
    """The upload route of ``name`` with every character escaped, dots too, so the client sends it as it is."""
    return f"/teach/words/{quote(name, safe='').replace('.', '%2E')}/takes"


@pytest.fixture(scope="module")
def classifier():
    from spokenword.inference.load import load_model

    return load_model(max_seconds=10, threads=1)


@pytest.fixture(scope="module")
def take(fsdd_recordings) -> bytes:
    return wav_bytes(backwards(fsdd_recordings / TAKES[0]))


def teaching(classifier, folder: Path, *, live=False, **settings):
    from fastapi.testclient import TestClient

    from spokenword.serve import create_app
    from spokenword.serve.teach import TeachSettings

    return TestClient(create_app(classifier, live=live, teach=TeachSettings(folder, steps=STEPS, **settings)),
                      base_url="http://127.0.0.1:8000")  # without a token teaching answers loopback hosts only


def files_under(folder: Path) -> list[str]:
    """The files under ``folder``, but the server's own pid file (:data:`spokenword.serve.teach.OWNER`)."""
    from spokenword.serve.teach import OWNER

    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != OWNER)


def wait_for_training(client, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get("/teach/train").json()
        if status["state"] != "running":
            return status
        assert time.monotonic() < deadline, f"training still running after {timeout} s: {status}"
        time.sleep(0.25)


def test_teaching_is_off_by_default(classifier, take):
    from fastapi.testclient import TestClient

    from spokenword.serve import create_app

    with TestClient(create_app(classifier, live=False)) as client:
        state = client.get("/teach").json()
        assert state["enabled"] is False and "--teach DIR" in state["detail"]
        for method, path in (("post", "/teach/train"), ("get", "/teach/train"), ("post", url_of("hello")),
                             ("delete", "/teach/words/hello-1234abcd")):
            response = client.request(method.upper(), path, content=take if method == "post" else None)
            assert response.status_code == 404, (path, response.text)
            assert "--teach DIR" in response.json()["detail"]
        assert client.get("/labels").json()["labels"] == list(classifier.labels)


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".", "\\x", "..\\..\\x", "a\x00b", "a\nb", "tab\there", "\x1b[31mred",
                                  ".hidden", "o.k", "x" * 33, "_unknown_", "_SILENCE_", "_mine", "", "   ", "--", "C:",
                                  "a\u202eb"])
def test_a_name_never_becomes_a_path(classifier, take, tmp_path, name):
    folder = tmp_path / "teach"
    with teaching(classifier, folder) as client:
        response = client.post(url_of(name), content=take)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail and "\n" not in detail and "\x00" not in detail and len(detail) < 200
        assert client.get("/teach").json()["words"] == []
    assert files_under(folder) == [], "a refused name left a file behind"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teach"], "something was written beside the teach folder"


def test_a_take_is_stored_as_the_server_decoded_it(classifier, fsdd_recordings, tmp_path):
    """A 44.1 kHz stereo float upload is kept as 16-bit mono wav at the model's rate, under a safe folder
    name, with the word as typed in the manifest."""
    import soxr

    folder = tmp_path / "teach"
    wave = backwards(fsdd_recordings / TAKES[0])
    stereo = np.stack([soxr.resample(wave, 8000, 44100)] * 2, axis=1)
    upload = wav_bytes(stereo, 44100, subtype="FLOAT")
    with teaching(classifier, folder) as client:
        response = client.post(url_of("  Héllo   Wörld "), files={"file": ("take one.wav", upload, "audio/wav")})
        assert response.status_code == 201, response.text
        answer = response.json()
        assert answer["word"]["name"] == "Héllo Wörld" and answer["word"]["count"] == 1
        assert answer["take"]["seconds"] == pytest.approx(len(wave) / 8000, abs=0.01)
        # the same word whatever its case: one word, spelt as first typed
        again = client.post(url_of("héllo wörld"), content=wav_bytes(wave)).json()
        assert again["word"] == {**answer["word"], "count": 2}
        state = client.get("/teach").json()
        (word,) = state["words"]
        assert word["name"] == "Héllo Wörld" and len(word["takes"]) == 2 and word["known"] is False
        played = client.get(word["takes"][0]["url"])
        assert played.status_code == 200 and played.headers["content-type"] == "audio/wav"
    wid = word["id"]
    assert wid.startswith("hello-world-") and wid.isascii()
    stored = folder / "words" / wid / f"{word['takes'][0]['id']}.wav"
    info = sf.info(str(stored))
    assert (info.samplerate, info.channels, info.subtype) == (classifier.sample_rate, 1, "PCM_16")
    assert played.content == stored.read_bytes()
    kept, _ = sf.read(stored, dtype="float32")
    expected = classifier.waveform(upload)
    assert len(kept) == len(expected) and np.abs(kept - expected).max() < 2e-4  # the decoder's samples, 16-bit
    with open(folder / "words" / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == ["Héllo Wörld"] * 2
    assert all(r["path"].startswith(f"{wid}/") for r in rows)
    assert files_under(folder) == sorted(["words/labels.csv"] + [f"words/{r['path']}" for r in rows])


def test_bad_takes_are_refused_with_the_reason(classifier, take, tmp_path):
    folder = tmp_path / "teach"
    quiet = tone(1.0, amplitude=0.003)  # about -50 dBFS
    cases = [
        (b"this is not audio at all, just some text" * 4, 422, "not a readable audio file"),
        (b"", 400, "empty"),
        (wav_bytes(np.zeros(8000, np.float32)), 422, "silent"),
        (wav_bytes(quiet), 422, "silent"),
        (wav_bytes(tone(0.05)), 422, "too short"),
        (wav_bytes(tone(6.0)), 413, "the limit is 5 s"),
        (wav_bytes(tone(1.5, rate=48000)) * 2, 413, "the limit is"),  # over the upload limit below
    ]
    with teaching(classifier, folder, max_upload_bytes=200_000) as client:
        for data, status, reason in cases:
            response = client.post(url_of("hello"), content=data, headers={"content-type": "audio/wav"})
            assert response.status_code == status, (reason, response.text)
            assert reason in response.json()["detail"], response.text
            assert "\n" not in response.json()["detail"]
        assert client.get("/teach").json()["words"] == []
        assert client.post(url_of("hello"), content=take).status_code == 201  # a good take still goes in
    assert len(files_under(folder / "words")) == 2  # that take and the manifest


def test_limits_and_deleting(classifier, take, tmp_path):
    folder = tmp_path / "teach"
    with teaching(classifier, folder, max_words=2, max_takes=2) as client:
        for name in ("one", "one", "two"):
            assert client.post(url_of(name), content=take).status_code == 201
        third_take = client.post(url_of("one"), content=take)
        assert third_take.status_code == 409 and "has 2 takes, the limit" in third_take.json()["detail"]
        third_word = client.post(url_of("three"), content=take)
        assert third_word.status_code == 409 and "2 words already" in third_word.json()["detail"]
        limits = client.get("/teach").json()["limits"]
        assert limits["max_words"] == 2 and limits["max_takes"] == 2

        one, two = client.get("/teach").json()["words"]
        doomed = one["takes"][0]
        deleted = client.delete(doomed["url"])
        assert deleted.status_code == 200 and deleted.json()["deleted"] == [doomed["id"]]
        assert client.get(doomed["url"]).status_code == 404
        assert client.post(url_of("one"), content=take).status_code == 201  # room again
        assert client.delete(f"/teach/words/{two['id']}").status_code == 200
        assert [w["name"] for w in client.get("/teach").json()["words"]] == ["one"]
        assert client.post(url_of("three"), content=take).status_code == 201
        for bad in ("/teach/words/..%2F..%2Fetc/takes/abc", f"/teach/words/{one['id']}/takes/..%2Flabels.csv",
                    "/teach/words/nope-00000000"):
            assert client.delete(bad).status_code == 404, bad
            assert client.get(bad).status_code in (404, 405)
    assert not (folder / "words" / two["id"]).exists()
    assert (folder / "words" / "labels.csv").is_file()
    with open(folder / "words" / "labels.csv", newline="") as f:
        assert sorted(r["label"] for r in csv.DictReader(f)) == ["one", "one", "three"]


def test_a_token_is_needed_when_one_is_set(classifier, take, tmp_path):
    with teaching(classifier, tmp_path / "teach", token="s3cret-token") as client:
        anonymous = client.get("/teach").json()
        assert anonymous == {"enabled": True, "token_required": True, "authorized": False,
                             "detail": "send the teach token as Authorization: Bearer TOKEN"}
        missing = client.post(url_of("hello"), content=take)
        assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["detail"]
        for header in ("Bearer wrong", "Bearer s3cret-token-and-more", "Basic s3cret-token", "s3cret-token"):
            wrong = client.post(url_of("hello"), content=take, headers={"Authorization": header})
            assert wrong.status_code == 403, header
            assert client.post("/teach/train", headers={"Authorization": header}).status_code == 403
            assert client.get("/teach", headers={"Authorization": header}).json()["authorized"] is False
        good = {"Authorization": "Bearer s3cret-token"}
        assert client.post(url_of("hello"), content=take, headers=good).status_code == 201
        state = client.get("/teach", headers=good).json()
        assert state["authorized"] and [w["name"] for w in state["words"]] == ["hello"]
        take_url = state["words"][0]["takes"][0]["url"]
        assert client.get(take_url).status_code == 401 and client.get(take_url, headers=good).status_code == 200
        assert client.delete(take_url).status_code == 401
        # a page of another site cannot teach (its browser names its origin), even with the token
        foreign = client.post(url_of("hello"), content=take, headers={**good, "Origin": "http://evil.example"})
        assert foreign.status_code == 403 and "another site" in foreign.json()["detail"]


def test_beyond_loopback_the_server_refuses_to_start_without_a_token(tmp_path, monkeypatch, capsys):
    from spokenword import cli
    from spokenword.serve.teach import TeachError, check_host

    for host in ("127.0.0.1", "::1", "[::1]", "localhost"):
        check_host(host, None)
    for host in ("0.0.0.0", "192.168.1.10", "::"):
        with pytest.raises(TeachError, match="needs a token"):
            check_host(host, None)
        check_host(host, "a-token")
    monkeypatch.delenv("SPOKENWORD_TEACH_TOKEN", raising=False)
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: pytest.fail("the server started"))
    assert cli.main(["serve", "--teach", str(tmp_path / "teach"), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--teach-token" in err and "SPOKENWORD_TEACH_TOKEN" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "teach").exists()


def test_without_the_training_extra_teaching_says_so(classifier, take, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "spokenword.training.adapt", None)  # as if torch were not installed
    with teaching(classifier, tmp_path / "teach") as client:
        state = client.get("/teach").json()
        assert state["enabled"] and state["can_train"] is False
        expected = "teaching needs the training extra: pip install 'spokenword[train]'"
        assert state["detail"] == expected
        for response in (client.post("/teach/train"), client.post(url_of("hello"), content=take)):
            assert response.status_code == 503 and response.json() == {"detail": expected}


def test_training_needs_enough_takes(classifier, take, tmp_path):
    with teaching(classifier, tmp_path / "teach") as client:
        nothing = client.post("/teach/train")
        assert nothing.status_code == 422 and "record at least 3 takes" in nothing.json()["detail"]
        client.post(url_of("hello"), content=take)
        short = client.post("/teach/train")
        assert short.status_code == 422 and "'hello' has 1" in short.json()["detail"]
        assert client.get("/teach/train").json()["state"] == "idle"


def test_training_swaps_the_served_model(classifier, fsdd_recordings, tmp_path, monkeypatch, capsys):
    """Three takes of a new word, Train pressed twice at once (one training), then /labels, /predict, the
    live stream and /health use the new model; a restart with the same folder serves it again."""
    from starlette.websockets import WebSocketDisconnect  # noqa: F401 - the live endpoint's client side

    folder = tmp_path / "teach"
    with teaching(classifier, folder, live=True) as client:
        for name in TAKES:
            assert client.post(url_of(WORD), content=wav_bytes(backwards(fsdd_recordings / name))).status_code == 201
        assert WORD not in client.get("/labels").json()["labels"]
        with ThreadPoolExecutor(2) as pool:
            presses = list(pool.map(lambda _: client.post("/teach/train"), range(2)))
        assert sorted(r.status_code for r in presses) == [202, 409], [r.text for r in presses]
        busy = next(r for r in presses if r.status_code == 409)
        assert "running already" in busy.json()["detail"]
        started = next(r for r in presses if r.status_code == 202).json()
        assert started["state"] == "running" and started["words"] == {WORD: 3}
        status = wait_for_training(client)
        assert status["state"] == "done", status
        assert status["progress"] == 1.0 and WORD in status["labels"] and status["model"] == "1"

        labels = client.get("/labels").json()["labels"]
        assert WORD in labels and set(classifier.labels) <= set(labels)
        health = client.get("/health").json()
        assert health["labels"] == len(labels) and health["model"] == str(folder / "models" / "1")
        held_out = client.post("/predict", content=wav_bytes(backwards(fsdd_recordings / HELD_OUT))).json()
        assert held_out["label"] == WORD and held_out["word"] is True, held_out["top_k"][:3]
        digit = client.post("/predict", content=(fsdd_recordings / HELD_OUT).read_bytes()).json()
        assert digit["label"] == "5", digit["top_k"][:3]  # the words it knew are still known
        with client.websocket_connect("/ws/transcribe") as ws:  # a new live stream hears the new model
            ws.send_text(json.dumps({"sample_rate": 8000, "encoding": "float32"}))
            ready = ws.receive_json()
            assert ready["type"] == "ready" and ready["labels"] == labels
        state = client.get("/teach").json()
        assert state["model"]["labels"] == labels and state["words"][0]["known"] is True
    assert (folder / "models" / "1" / "manifest.json").is_file()
    assert not list(folder.glob(".train-*")), "the training's snapshot was left behind"

    # a restart with the same folder and no model named serves the taught model
    from spokenword.serve import app as serve_app

    served = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: served.append(app))
    package = logging.getLogger("spokenword")  # serve() gives it a handler: put it back for the other tests
    handlers, propagate, level = list(package.handlers), package.propagate, package.level
    try:
        serve_app.serve(None, teach=str(folder), live=False)
    finally:
        package.handlers[:] = handlers
        package.propagate = propagate
        package.setLevel(level)
    assert list(served[0].state.classifier.labels) == labels
    out = capsys.readouterr()
    assert f"spokenword serve: {folder / 'models' / '1'} ({len(labels)} labels" in out.out
    assert "serving the last model taught into" in out.err


def test_a_model_that_cannot_be_adapted_falls_back_to_the_bundled_one(classifier, fsdd_recordings, tmp_path):
    """The server's own model is not adaptable (here: a file that is no checkpoint): training adapts the
    bundled model instead; a second training replaces the first model folder."""
    folder = tmp_path / "teach"
    broken = tmp_path / "not-a-model.ckpt"
    broken.write_bytes(b"not a checkpoint")
    with teaching(classifier, folder, source=str(broken), min_takes=1) as client:
        assert client.get("/teach").json()["base"] == str(broken)
        assert client.post(url_of(WORD), content=wav_bytes(backwards(fsdd_recordings / TAKES[0]))).status_code == 201
        assert client.post("/teach/train").status_code == 202
        assert wait_for_training(client)["state"] == "done"
        assert client.get("/teach").json()["base"] == "the bundled model"
        assert sorted(p.name for p in (folder / "models").iterdir()) == ["1"]
        assert client.post(url_of(WORD), content=wav_bytes(backwards(fsdd_recordings / TAKES[1]))).status_code == 201
        assert client.post("/teach/train").status_code == 202
        second = wait_for_training(client)
        assert second["state"] == "done" and second["words"] == {WORD: 2} and second["model"] == "2"
        assert WORD in client.get("/labels").json()["labels"]
    assert sorted(p.name for p in (folder / "models").iterdir()) == ["2"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "192.168.1.5:8000"])
def test_without_a_token_only_loopback_hosts_are_answered(classifier, take, tmp_path, host):
    """DNS rebinding: a page of another site whose name resolves to 127.0.0.1 sends its own name as Host."""
    with teaching(classifier, tmp_path / "teach") as client:
        state = client.get("/teach", headers={"host": host}).json()
        assert state["authorized"] is False and "127.0.0.1" in state["detail"]
        answer = client.post(url_of(WORD), content=take, headers={"host": host})
        assert answer.status_code == 403 and "--teach-token" in answer.json()["detail"]
        assert not (tmp_path / "teach" / "words" / "labels.csv").exists()
        for ok in ("localhost:8000", "[::1]:8000", "127.0.0.1"):
            assert client.get("/teach", headers={"host": ok}).json()["authorized"] is True


def test_a_teach_folder_serves_one_server_at_a_time(classifier, tmp_path):
    """Another live process holding the folder: refused in one line; a pid file of a process that is gone, or of
    this process (a restart in the same process), is taken over."""
    import os
    import subprocess

    from spokenword.serve.teach import OWNER, TeachError

    folder = tmp_path / "teach"
    folder.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (folder / OWNER).write_text(f"{other.pid}\n")
        with pytest.raises(TeachError, match=f"another running spokenword server \\(process {other.pid}\\)"):
            teaching(classifier, folder)
    finally:
        other.kill()
        other.wait()
    with teaching(classifier, folder) as client:  # that process is gone: taken over
        assert client.get("/teach").json()["authorized"] is True
    assert (folder / OWNER).read_text().strip() == str(os.getpid())
    with teaching(classifier, folder) as client:  # this process again
        assert client.get("/teach").json()["authorized"] is True
