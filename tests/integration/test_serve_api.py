"""The web service API in-process (TestClient) with the session's 3-epoch checkpoint and real FSDD clips,
served by PyTorch and by ONNX Runtime (the checkpoint exported at load time, as ``spokenword serve`` does)."""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import tone

pytestmark = pytest.mark.integration

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def wav_bytes(samples: np.ndarray, rate: int = 8000, fmt: str = "WAV") -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format=fmt)
    return out.getvalue()


@pytest.fixture(scope="module", params=["torch", "onnx"])
def classifier(request, trained_checkpoint: Path):
    from spokenword.inference.load import load_model

    loaded = load_model(trained_checkpoint, runtime=request.param, max_seconds=10, threads=1)
    assert loaded.runtime == request.param
    return loaded


@pytest.fixture(scope="module")
def client(classifier):
    from fastapi.testclient import TestClient

    from spokenword.serve import create_app

    with TestClient(create_app(classifier, max_upload_bytes=1_000_000, max_seconds=10)) as c:
        yield c


@pytest.fixture(scope="module")
def test_files(fsdd_recordings: Path) -> list[Path]:
    """20 official-test-split clips (takes 0-4): every digit, two speakers each, varied takes."""
    files = []
    for digit in range(10):
        for i, speaker in enumerate(SPEAKERS[digit % 3::3][:2]):
            path = fsdd_recordings / f"{digit}_{speaker}_{(digit + i) % 5}.wav"
            if path.exists():
                files.append(path)
    assert len(files) >= 18
    return files


def test_health_labels_docs_and_page(client, classifier):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["runtime"] == ("onnx" if hasattr(classifier, "session") else "torch")
    assert client.get("/labels").json() == {"labels": list(classifier.labels)}
    assert "/predict" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text and "cdn" not in page.text.lower()
    for asset in ("app.js", "style.css", "pcm-worklet.js"):
        assert client.get(f"/static/{asset}").status_code == 200


def test_labels_agree_with_classifier_and_beat_chance(client, classifier, test_files):
    correct = 0
    for i, path in enumerate(test_files):
        data = path.read_bytes()
        # alternate the two ways of sending a file
        response = (client.post("/predict", content=data, headers={"content-type": "audio/wav"}) if i % 2
                    else client.post("/predict", files={"file": (path.name, data, "audio/wav")}))
        assert response.status_code == 200, response.text
        answer = response.json()
        expected = classifier(path)
        assert answer["label"] == expected[0]["label"]
        assert answer["score"] == pytest.approx(expected[0]["score"], abs=1e-5)
        assert [r["label"] for r in answer["top_k"]] == [r["label"] for r in expected]
        assert answer["sample_rate"] == classifier.sample_rate
        assert answer["duration_s"] == pytest.approx(sf.info(path).duration, abs=0.01)
        assert answer["silent"] is False
        correct += answer["label"] == path.name.split("_")[0]
    assert correct / len(test_files) >= 0.5, f"{correct}/{len(test_files)} correct (chance is 0.1)"


def test_any_format_rate_and_channels(client, classifier, fsdd_recordings):
    import soxr

    wave, rate = sf.read(fsdd_recordings / "3_theo_0.wav", dtype="float32")
    expected = classifier((wave, rate))[0]["label"]
    stereo44 = np.stack([soxr.resample(wave, rate, 44100)] * 2, axis=1)
    for body in (wav_bytes(stereo44, 44100), wav_bytes(wave, rate, "FLAC"), wav_bytes(wave, rate, "OGG")):
        answer = client.post("/predict", content=body).json()
        assert answer["label"] == expected
        assert answer["sample_rate"] == classifier.sample_rate


def test_top_k_and_spectrogram(client, classifier, fsdd_recordings):
    answer = client.post("/predict?top_k=3&spectrogram=true", content=(fsdd_recordings / "5_lucas_1.wav").read_bytes()).json()
    assert len(answer["top_k"]) == 3
    image = np.array(answer["spectrogram"])
    wave = classifier.waveform(fsdd_recordings / "5_lucas_1.wav")
    np.testing.assert_allclose(image, classifier.spectrogram(wave)[0], atol=1e-3)


def test_silent_clip_is_answered_and_flagged(client):
    answer = client.post("/predict", content=wav_bytes(np.zeros(8000, dtype=np.float32))).json()
    assert answer["silent"] is True and answer["label"]
    quiet = client.post("/predict", content=wav_bytes(tone(1.0, amplitude=0.001))).json()
    assert quiet["silent"] is True
    loud = client.post("/predict", content=wav_bytes(tone(1.0, amplitude=0.5))).json()
    assert loud["silent"] is False


def long_body(seconds: float) -> bytes:
    return wav_bytes(np.zeros(int(seconds * 8000), dtype=np.float32))


@pytest.mark.parametrize("send, status, words", [
    (dict(content=b""), 400, "empty request"),
    (dict(content=b"definitely not audio " * 10), 422, "not a readable audio file"),
    (dict(content=wav_bytes(tone(1.0))[:30]), 422, "not a readable audio file"),
    (dict(content=long_body(12.0)), 413, "limit is 10 s"),
    (dict(files={"upload": ("a.wav", wav_bytes(tone(0.5)), "audio/wav")}), 422, "no file field 'file'"),
    (dict(data={"file": "just text"}, files={"other": ("a.txt", b"x")}), 422, "no file field 'file'"),
    (dict(files={"file": ("empty.wav", b"", "audio/wav")}), 400, "empty"),
    (dict(files={"file": ("notes.txt", b"hello there", "text/plain")}), 422, "notes.txt"),
    (dict(content=b"x" * 1_000_001), 413, "limit is 1.0 MB"),
    (dict(content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}), 422, "file"),
])
def test_bad_input_is_a_4xx_with_a_message(client, send, status, words):
    response = client.post("/predict", **send)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and words in detail
    assert "BytesIO" not in detail and "Traceback" not in detail


def test_oversized_stream_without_length_is_refused_before_reading_it_whole(client):
    """Chunked body, no Content-Length: the app must stop reading once past the limit (raw ASGI)."""
    import asyncio
    import json

    app, chunk, total = client.app, b"\0" * 100_000, 100  # 10 MB offered, limit 1 MB
    received, sent = [], []

    async def receive():
        received.append(1)
        return {"type": "http.request", "body": chunk, "more_body": len(received) < total}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/predict", "raw_path": b"/predict", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), (b"transfer-encoding", b"chunked")], "client": ("t", 1), "server": ("t", 80)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 413 and "limit is 1.0 MB" in json.loads(body)["detail"]
    assert len(received) <= 12, f"read {len(received)} of {total} chunks before refusing"


def test_bad_query_is_a_4xx(client, fsdd_recordings):
    data = (fsdd_recordings / "1_nicolas_2.wav").read_bytes()
    assert client.post("/predict?top_k=0", content=data).status_code == 422
    assert client.post("/predict?top_k=abc", content=data).status_code == 422


def test_concurrent_requests_from_threads(client, classifier, test_files):
    expected = {p: classifier(p)[0]["label"] for p in test_files[:8]}
    jobs = [p for p in test_files[:8] for _ in range(4)]

    def post(path: Path):
        r = client.post("/predict", content=path.read_bytes())
        return path, r.status_code, r.json()["label"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(post, jobs))
    assert len(results) == len(jobs)
    for path, status, label in results:
        assert status == 200 and label == expected[path]


# -- micro-batching ------------------------------------------------------------------------------
def post_all(client, bodies: list[bytes], workers: int = 12) -> list:
    def post(body: bytes):
        return client.post("/predict", content=body)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(post, bodies))


def test_batched_answers_equal_unbatched_ones(classifier, test_files):
    from fastapi.testclient import TestClient

    from spokenword.serve import create_app

    bodies = [p.read_bytes() for p in test_files[:12]] * 2
    with TestClient(create_app(classifier, batch_ms=None)) as single:
        alone = [r.json() for r in post_all(single, bodies)]
        assert single.app.state.batcher is None
    app = create_app(classifier, batch_ms=50, max_batch=8)  # a wide window: concurrent requests share batches
    with TestClient(app) as batched:
        together = [r.json() for r in post_all(batched, bodies)]
    assert max(app.state.batcher.sizes) > 1, f"no batch formed: {app.state.batcher.sizes}"
    assert max(app.state.batcher.sizes) <= 8
    assert sum(app.state.batcher.sizes) == len(bodies)
    for a, b in zip(alone, together):
        assert a["label"] == b["label"] and [r["label"] for r in a["top_k"]] == [r["label"] for r in b["top_k"]]
        assert a["score"] == pytest.approx(b["score"], abs=1e-5)
        assert {k: v for k, v in a.items() if k not in ("score", "top_k")} == {k: v for k, v in b.items() if k not in ("score", "top_k")}


def test_a_bad_upload_does_not_spoil_its_batch(classifier, test_files):
    from fastapi.testclient import TestClient

    from spokenword.serve import create_app

    good = [p.read_bytes() for p in test_files[:6]]
    bad = [b"not audio at all" * 4, wav_bytes(tone(1.0))[:30], long_body(12.0)]
    app = create_app(classifier, batch_ms=50)
    with TestClient(app) as c:
        responses = post_all(c, good[:3] + bad + good[3:])
    assert max(app.state.batcher.sizes) > 1
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 3 + [422, 422, 413] + [200] * 3
    for response, body in zip(responses[:3] + responses[6:], good):
        assert response.json()["label"] == classifier(body)[0]["label"]
    assert "not a readable audio file" in responses[3].json()["detail"]


def test_micro_batcher_groups_and_fails_per_batch():
    import asyncio

    from spokenword.serve.batching import MicroBatcher

    calls = []

    def run(items):
        calls.append(list(items))
        if "boom" in items:
            raise RuntimeError("model failed")
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]

    async def scenario():
        batcher = MicroBatcher(run, window_s=0.05, max_batch=3)
        results = await asyncio.gather(*(batcher.submit(i) for i in (1, 2, -3, 4, 5)), return_exceptions=True)
        failed = await asyncio.gather(batcher.submit("boom"), batcher.submit(7), return_exceptions=True)
        return batcher, results, failed

    batcher, results, failed = asyncio.run(scenario())
    assert calls[:2] == [[1, 2, -3], [4, 5]]  # full at 3, the rest when the window ends
    assert results[:2] == [10, 20] and results[3:] == [40, 50]
    assert isinstance(results[2], ValueError) and str(results[2]) == "bad -3"
    assert all(isinstance(r, RuntimeError) for r in failed)
    assert batcher.sizes == [3, 2, 2]
    with pytest.raises(ValueError):
        MicroBatcher(run, window_s=-1)


# -- runtime choice ------------------------------------------------------------------------------
def test_runtimes_agree(trained_checkpoint, test_files):
    from spokenword.inference.checkpoint import Classifier
    from spokenword.inference.onnx import OnnxClassifier
    from spokenword.inference.load import load_model

    torch_clf = load_model(trained_checkpoint, runtime="torch")
    assert isinstance(torch_clf, Classifier) and torch_clf.runtime == "torch"
    assert isinstance(load_model(trained_checkpoint), Classifier)  # the command line's default: PyTorch
    onnx_clf = load_model(trained_checkpoint, runtime="auto", threads=1)  # serve's default: exported at load time
    assert isinstance(onnx_clf, OnnxClassifier) and onnx_clf.runtime == "onnx"
    assert onnx_clf.session.get_session_options().intra_op_num_threads == 1
    assert onnx_clf.labels == torch_clf.labels and onnx_clf.sample_rate == torch_clf.sample_rate
    for path in test_files:
        a, b = torch_clf(path)[0], onnx_clf(path)[0]
        assert a["label"] == b["label"] and a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_runtime_choice_errors_and_fallback(trained_checkpoint, tmp_path, monkeypatch, caplog):
    import spokenword.inference.export
    from spokenword.inference import load
    from spokenword.inference.base import ModelError
    from spokenword.inference.checkpoint import Classifier

    with pytest.raises(ModelError, match="--runtime torch needs the .ckpt"):
        load.load_model(tmp_path / "model.onnx", runtime="torch")
    with pytest.raises(ModelError, match="unknown runtime 'tpu'"):
        load.load_model(trained_checkpoint, runtime="tpu")
    not_a_checkpoint = tmp_path / "junk.ckpt"
    not_a_checkpoint.write_bytes(b"junk")
    with pytest.raises(ModelError, match="not a spokenword checkpoint"):  # not hidden by a fallback
        load.load_model(not_a_checkpoint, runtime="auto")

    # export extras missing: auto falls back to torch with a logged line, onnx refuses
    monkeypatch.setattr(load, "_missing", lambda modules: ["onnxscript"])
    with pytest.raises(ModelError, match=r"pip install 'spokenword\[train\]'"):
        load.load_model(trained_checkpoint, runtime="onnx")
    with caplog.at_level("WARNING", logger=load.logger.name):
        clf = load.load_model(trained_checkpoint, runtime="auto")
    assert isinstance(clf, Classifier) and clf.runtime == "torch"
    assert "ONNX export extras missing (onnxscript)" in caplog.text and "PyTorch" in caplog.text
    monkeypatch.undo()

    # the export itself fails (e.g. a network the exporter cannot handle)
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(spokenword.inference.export, "export_onnx", broken)
    caplog.clear()
    with caplog.at_level("WARNING", logger=load.logger.name):
        clf = load.load_model(trained_checkpoint, runtime="auto")
    assert clf.runtime == "torch" and "ONNX export of" in caplog.text and "unsupported operator" in caplog.text
    with pytest.raises(ModelError, match="ONNX export failed"):
        load.load_model(trained_checkpoint, runtime="onnx")


def test_serve_loads_through_the_one_loader(trained_checkpoint, monkeypatch, capsys):
    """``serve`` hands its model, ``--with`` models and runtime to ``inference.load.load_model``, one
    intra-op thread each, and serves what comes back."""
    from spokenword.inference import load
    from spokenword.serve import app as serve_app

    calls, served = [], []
    monkeypatch.setattr(load, "load_model", lambda *models, **kwargs: calls.append((models, kwargs)) or _Stub())
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: served.append(app))
    package = logging.getLogger("spokenword")  # serve() gives it a handler: put it back for the other tests
    handlers, propagate, level = list(package.handlers), package.propagate, package.level
    try:
        serve_app.serve(str(trained_checkpoint), also=["b.onnx"], runtime="onnx", live=False, workers=1)
    finally:
        package.handlers[:] = handlers
        package.propagate = propagate
        package.setLevel(level)
    assert calls == [((str(trained_checkpoint), "b.onnx"), {"runtime": "onnx", "max_seconds": 10.0, "threads": 1,
                                                                  "reject_below": None})]
    assert served[0].state.classifier.runtime == "stub" and "stub runtime" in capsys.readouterr().out


class _Stub:
    labels, sample_rate, runtime = ["a", "b"], 8000, "stub"


def test_cli_passes_the_runtime_flag(trained_checkpoint, monkeypatch, capsys):
    from spokenword import cli
    from spokenword.serve import app as serve_app

    seen = []
    monkeypatch.setattr(serve_app, "serve", lambda model, **kwargs: seen.append(kwargs))
    assert cli.main(["serve", str(trained_checkpoint)]) == 0
    assert cli.main(["serve", str(trained_checkpoint), "--runtime", "torch"]) == 0
    assert [k["runtime"] for k in seen] == ["auto", "torch"]
    assert cli.main(["serve", str(trained_checkpoint), "--with", "b.ckpt", "--with", "c.onnx"]) == 0
    assert [k["also"] for k in seen] == [[], [], ["b.ckpt", "c.onnx"]]
    assert [k["reject_below"] for k in seen] == [None] * 3  # the loader's default: the bundled model's value, else 0
    assert cli.main(["serve", str(trained_checkpoint), "--reject-below", "0.6"]) == 0
    assert seen[-1]["reject_below"] == 0.6
    assert cli.main(["serve", str(trained_checkpoint), "--runtime", "gpu"]) == 2
    assert "invalid choice: 'gpu'" in capsys.readouterr().err
    assert not {"max_batch", "batch_ms"} & set(seen[0])  # not given: serve()'s own defaults
    assert cli.main(["serve", str(trained_checkpoint), "--max-batch", "8", "--batch-ms", "1"]) == 0
    assert (seen[-1]["max_batch"], seen[-1]["batch_ms"]) == (8, 1.0)
    assert cli.main(["serve", str(trained_checkpoint), "--max-batch", "1"]) == 0
    assert (seen[-1]["max_batch"], seen[-1]["batch_ms"]) == (1, None)  # no batching
    for bad in (["--max-batch", "0"], ["--batch-ms", "-1"], ["--batch-ms", "nan"]):
        assert cli.main(["serve", str(trained_checkpoint), *bad]) == 2
        assert "--max-batch must be at least 1" in capsys.readouterr().err


def test_an_ensemble_is_served_like_one_model(trained_checkpoint: Path, test_files):
    """``spokenword serve MODEL --with MODEL``: the app around an Ensemble (here of the checkpoint run by
    PyTorch and by ONNX Runtime) answers with the ensemble's probabilities, batched or not."""
    from fastapi.testclient import TestClient

    from spokenword.inference.ensemble import Ensemble
    from spokenword.serve import create_app
    from spokenword.inference.load import load_model

    ensemble = Ensemble([load_model(trained_checkpoint, runtime="torch"), load_model(trained_checkpoint, runtime="onnx")])
    with TestClient(create_app(ensemble, max_upload_bytes=1_000_000, max_seconds=10)) as client:
        assert client.get("/health").json()["runtime"] == "torch+onnx"
        for path in test_files[:4]:
            answer = client.post("/predict", content=path.read_bytes(), headers={"content-type": "audio/wav"}).json()
            expected = ensemble(path)
            assert answer["label"] == expected[0]["label"]
            assert answer["score"] == pytest.approx(expected[0]["score"], abs=1e-5)
        bad = client.post("/predict", content=b"definitely not audio " * 10)
        assert bad.status_code == 422 and "not a readable audio file" in bad.text
