"""``python -m benchmarks.speed classify`` on real FSDD: the bundled model and its CNN member as they ship, a few
clips each (not a timing test)."""

from __future__ import annotations

import json

import pytest

from benchmarks import speed
from spokenword.pretrained import folder

BUNDLED = folder()

pytestmark = pytest.mark.integration


def test_each_model_gets_a_row_with_its_files_and_its_own_answers(fsdd_root, tmp_path, capsys):
    member = BUNDLED / "fsdd_cnn_newvoices.int8.onnx"
    argv = ["classify", str(BUNDLED), str(member), "--clips", "5", "--data.root", str(fsdd_root), "--out", str(tmp_path)]
    assert speed.main(argv) == 0
    out = capsys.readouterr().out
    assert "target (" in out and "p50 <= 3.0 ms on 1 thread" in out
    (path,) = (tmp_path / "speed").glob("classify-models-*.json")
    result = json.loads(path.read_text())
    rows = result["figures"]["rows"]
    assert [r["model"] for r in rows] == [str(BUNDLED), str(member)]
    assert [r["runtime"] for r in rows] == ["onnx+onnx", "onnx"]
    manifest = json.loads((BUNDLED / "manifest.json").read_text())
    assert rows[0]["test_acc"] == pytest.approx(manifest["official_test_accuracy"])  # its answers, at its threshold
    def kib(files):
        return sum(f.stat().st_size + f.with_name(f.name + ".json").stat().st_size for f in files) / 1024

    assert rows[0]["size_kib"] == pytest.approx(kib([BUNDLED / name for name in manifest["members"]]))
    assert rows[1]["size_kib"] == pytest.approx(kib([member]))
    for row in rows:
        assert 0 < row["p50_ms"] <= row["p99_ms"] and row["clips_per_s_batch64"] > 0
    assert result["recipe"]["models"] == [str(BUNDLED), str(member)] and result["machine"]["threads"] == 1


def test_a_path_that_is_not_a_model_is_a_usage_error_that_names_it(fsdd_root, tmp_path, capsys):
    missing = tmp_path / "nothing.onnx"
    with pytest.raises(SystemExit) as exit_info:
        speed.main(["classify", str(missing), "--data.root", str(fsdd_root), "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "nothing.onnx" in err and "Traceback" not in err
    assert not (tmp_path / "speed").exists()
