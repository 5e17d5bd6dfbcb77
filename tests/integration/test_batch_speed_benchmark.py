"""``python -m benchmarks.speed batch`` on real FSDD: one batch, two passes per arm (not a timing test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import speed

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_both_arms_make_the_same_batches_and_the_table_has_both(fsdd_root, tmp_path, capsys):
    argv = ["batch", "--batches", "1", "--epochs", "2", "--data.root", str(fsdd_root), "--out", str(tmp_path)]
    assert speed.main(argv) == 0
    out = capsys.readouterr().out
    assert "same batches in both arms (last pass, bit for bit): yes" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0] for row in rows] == ["| no wave cache (wave_cache_mb=0)", "| wave cache (default, 512 MB)"]
    assert rows[0].endswith("| 1.00x |")
    for row in rows:
        first, later = (float(cell) for cell in row.split(" | ")[1:3])
        assert first > 0 and later > 0
    (path,) = (tmp_path / "speed").glob("batch-fsdd_cnn_newvoices-*.json")
    result = json.loads(path.read_text())
    assert result["figures"]["same_batches"] is True and result["recipe"]["config"] == "configs/fsdd_cnn_newvoices.yaml"


def test_a_config_without_fresh_batches_is_refused(fsdd_root, tmp_path, capsys):
    argv = ["batch", str(REPO / "configs" / "fsdd_cnn.yaml"), "--data.root", str(fsdd_root), "--out", str(tmp_path)]
    assert speed.main(argv) == 2
    assert "nothing here applies" in capsys.readouterr().err
    assert not (tmp_path / "speed").exists()
