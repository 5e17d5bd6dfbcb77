"""benchmarks/batch_speed.py on real FSDD: one batch, two passes per arm (not a timing test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmark_scripts import load_benchmark

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_both_arms_make_the_same_batches_and_the_table_has_both(fsdd_root, capsys):
    bench = load_benchmark("batch_speed")
    assert bench.main(["--batches", "1", "--epochs", "2", "--root", str(fsdd_root)]) == 0
    out = capsys.readouterr().out
    assert "same batches in both arms (last pass, bit for bit): yes" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0] for row in rows] == ["| no wave cache (wave_cache_mb=0)", "| wave cache (default, 512 MB)"]
    assert rows[0].endswith("| 1.00x |")
    for row in rows:
        first, later = (float(cell) for cell in row.split(" | ")[1:3])
        assert first > 0 and later > 0


def test_a_config_without_fresh_batches_is_refused(fsdd_root, capsys):
    bench = load_benchmark("batch_speed")
    assert bench.main([str(REPO / "configs" / "fsdd_cnn.yaml"), "--root", str(fsdd_root)]) == 2
    assert "nothing here applies" in capsys.readouterr().err
