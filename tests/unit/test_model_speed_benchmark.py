"""benchmarks/model_speed.py runs and prints one row per shipped network (a tiny batch: not a timing test)."""

from __future__ import annotations

import pytest

from tests.benchmark_scripts import load_benchmark


def test_the_table_has_every_network_with_its_parameters(capsys):
    module = load_benchmark("model_speed")
    assert module.main(["--batch", "2", "--steps", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[1] for row in rows] == ["85,034", "354,530"]  # README's parameter counts
    assert rows[0].endswith("| 1.00x |")  # the CNN's faster step is the unit
    for row in rows:
        fp32, bf16 = (float(cell) for cell in row.split(" | ")[2:4])
        assert fp32 > 0 and bf16 > 0


def test_a_variant_adds_a_row_of_the_default_cnn_with_its_arguments_changed(capsys):
    module = load_benchmark("model_speed")
    assert module.main(["--batch", "2", "--steps", "1", "--variant", "channels=[16,32,96,96],dropout=0.1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 3
    assert rows[2].startswith("| SpectrogramCNN (default, channels=[16, 32, 96, 96], dropout=0.1) | 148,522 |")


def test_a_bad_variant_is_a_usage_error_that_names_it(capsys):
    module = load_benchmark("model_speed")
    for text, message in [("dropout", "expected KEY=VALUE"), ("widths=[1,2]", "widths"),
                          ("channels=[1,2]", "four positive widths"), ("dropout={", "not a YAML value"), ("channels=[1,2", "unbalanced")]:
        with pytest.raises(SystemExit) as exit_info:
            module.main(["--variant", text])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
