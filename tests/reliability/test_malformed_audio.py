"""Every input of the malformed corpus (:mod:`tests.reliability.malformed`) through the commands
that read user audio: each is classified or rejected with one line naming the file; no traceback;
the rest of the batch is still processed; exit 1 = some inputs failed, 2 = usage error."""

from __future__ import annotations

import csv
import json

import pytest

from spokenword.cli import EXIT_FAILED_INPUTS, EXIT_USAGE, main
from tests.reliability.malformed import build

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build(tmp_path_factory.mktemp("malformed"))


def _check_rejections(stderr: str, cases) -> None:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    for case in cases:
        if case.expect == "error":
            named = [line for line in lines if str(case.path) in line]
            assert len(named) == 1, f"{case.name}: expected one error line naming {case.path}, stderr:\n{stderr}"
            assert named[0].startswith("error: ")


def test_classify_handles_every_malformed_input(corpus, trained_checkpoint, capsys):
    code = main(["classify", str(trained_checkpoint), *[str(c.path) for c in corpus], "--json"])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED_INPUTS
    results = json.loads(out)
    for case in corpus:
        if case.expect == "ok":
            assert str(case.path) in results, f"{case.name} was not classified: {err}"
            assert results[str(case.path)][0]["label"]
        else:
            assert str(case.path) not in results, case.name
    _check_rejections(err, corpus)
    print(f"classify: {len(corpus)} inputs, "
          f"{sum(c.expect == 'ok' for c in corpus)} classified, {sum(c.expect == 'error' for c in corpus)} rejected")


def test_classify_exit_codes_separate_failed_inputs_from_usage(corpus, trained_checkpoint, capsys):
    good = next(c.path for c in corpus if c.name == "valid-16bit")
    assert main(["classify", str(trained_checkpoint), str(good)]) == 0
    missing = next(c.path for c in corpus if c.name == "missing-path")
    assert main(["classify", str(trained_checkpoint), str(missing)]) == EXIT_FAILED_INPUTS
    assert main(["classify", str(missing.with_suffix(".ckpt")), str(good)]) == EXIT_USAGE
    assert main(["classify", str(trained_checkpoint)]) == EXIT_USAGE  # no files: argparse usage
    assert "Traceback" not in capsys.readouterr().err


def test_evaluate_handles_every_malformed_input(corpus, trained_checkpoint, tmp_path, capsys):
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        for case in corpus:
            writer.writerow([str(case.path), "3"])
    code = main(["evaluate", str(trained_checkpoint), str(manifest), "--json"])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED_INPUTS, err
    result = json.loads(out)
    assert result["count"] == sum(c.expect == "ok" for c in corpus)
    assert result["failed"] == sum(c.expect == "error" for c in corpus)
    _check_rejections(err, corpus)


def test_transcribe_handles_every_malformed_input(corpus, trained_checkpoint, capsys):
    short = [c for c in corpus if c.name != "10-minutes"]  # segmentation of 10 min is slow and not the point
    code = main(["transcribe", str(trained_checkpoint), *[str(c.path) for c in short], "--json"])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED_INPUTS
    results = json.loads(out)
    for case in short:
        assert (str(case.path) in results) == (case.expect == "ok"), f"{case.name}: {err}"
    _check_rejections(err, short)


def test_serve_answers_every_malformed_upload(corpus, trained_checkpoint):
    """The web service: each file's bytes POSTed to /predict get 200 with labels or a 4xx whose
    detail is one line naming the upload; never a 500. Paths that are not files (directory,
    missing) cannot be uploaded and are left out."""
    from fastapi.testclient import TestClient

    from spokenword.inference.checkpoint import Classifier
    from spokenword.serve.app import create_app

    client = TestClient(create_app(Classifier.from_checkpoint(trained_checkpoint)), raise_server_exceptions=False)
    tried = 0
    for case in corpus:
        if not case.path.is_file():
            continue
        tried += 1
        files = {"file": (case.path.name, case.path.read_bytes(), "audio/wav")}
        response = client.post("/predict", files=files)
        if case.name == "10-minutes":  # over the service's 10 s / 5 MB limits
            assert response.status_code == 413, response.text
        elif case.expect == "ok":
            assert response.status_code == 200, f"{case.name}: {response.text}"
            assert response.json()["label"] == response.json()["top_k"][0]["label"]
        else:
            assert 400 <= response.status_code < 500, f"{case.name}: {response.status_code} {response.text}"
            detail = response.json()["detail"]
            assert isinstance(detail, str) and "\n" not in detail and case.path.name in detail, f"{case.name}: {detail}"
    assert tried == len(corpus) - 2


@pytest.fixture(scope="module")
def onnx_model(trained_checkpoint, tmp_path_factory):
    """The session checkpoint exported with ``spokenword export --format onnx``."""
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    assert main(["export", str(trained_checkpoint), "--format", "onnx", "--out", str(out)]) == 0
    return out


def test_onnx_classify_handles_every_malformed_input(corpus, onnx_model, trained_checkpoint, capsys):
    """The exported model (torch-free front end in :mod:`spokenword.runtime`) accepts and rejects
    exactly what the checkpoint does, with the same one-line messages."""
    code = main(["classify", str(onnx_model), *[str(c.path) for c in corpus], "--json"])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED_INPUTS
    results = json.loads(out)
    for case in corpus:
        assert (str(case.path) in results) == (case.expect == "ok"), f"{case.name}: {err}"
    _check_rejections(err, corpus)
    assert main(["classify", str(onnx_model.with_name("absent.onnx")), str(corpus[0].path)]) == EXIT_USAGE
    assert "Traceback" not in capsys.readouterr().err


def test_onnx_evaluate_handles_every_malformed_input(corpus, onnx_model, tmp_path, capsys):
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        for case in corpus:
            writer.writerow([str(case.path), "3"])
    code = main(["evaluate", str(onnx_model), str(manifest), "--json"])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED_INPUTS, err
    result = json.loads(out)
    assert result["count"] == sum(c.expect == "ok" for c in corpus)
    assert result["failed"] == sum(c.expect == "error" for c in corpus)
    _check_rejections(err, corpus)
