"""benchmarks/model_speed.py runs and prints one row per shipped network (a tiny batch: not a timing test)."""

from __future__ import annotations

from tests.benchmark_scripts import load_benchmark


def test_the_table_has_every_network_with_its_parameters(capsys):
    module = load_benchmark("model_speed")
    assert module.main(["--batch", "2", "--steps", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[1] for row in rows] == ["85,034", "84,170", "76,938"]  # README's parameter counts
    assert rows[0].endswith("| 1.00x |")  # the CNN's faster step is the unit
    for row in rows:
        fp32, bf16 = (float(cell) for cell in row.split(" | ")[2:4])
        assert fp32 > 0 and bf16 > 0
