"""``python -m benchmarks.reject``: the bundled model's false rejects and accepts and the false digits in
long negative audio, written as a result file (a short run)."""

from __future__ import annotations

import json

import pytest

from benchmarks import reject

pytestmark = pytest.mark.integration


def test_the_benchmark_writes_the_figures_of_the_bundled_model(fsdd_root, tmp_path, monkeypatch):
    if not (fsdd_root / "speech_commands_words").is_dir():
        pytest.skip("no non-digit data under the data root")
    monkeypatch.setenv("SPOKENWORD_CACHE", str(tmp_path / "cache"))
    assert reject.main(["--minutes", "0.2", "--data.root", str(fsdd_root), "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "reject" / "bundled.json").read_text())
    figures = record["figures"]
    from spokenword import pretrained

    manifest = pretrained.manifest()
    assert figures["reject_below"] == manifest["reject_below"]  # the bundle's own threshold
    official = figures["official"]
    assert official["digits"] == 300 and official["failed"] == 0
    assert official["digit_accuracy"] == pytest.approx(manifest["official_test_accuracy"])
    assert official["false_accept"] == pytest.approx(manifest["false_accept_rate"])
    for key in ("other_words", "noise"):
        long = figures[key]
        assert long["minutes"] >= 0.2 and long["transcribe_per_hour"] >= 0 and long["live_per_hour"] >= 0
        assert long["transcribe_per_hour"] == pytest.approx(long["transcribe_digits"] / (long["minutes"] / 60), rel=1e-3)
    assert "digits emitted per hour" in record["protocol"] and record["command"].startswith("python -m benchmarks.reject")
