"""``python -m benchmarks.speed model`` runs and prints one row per shipped network, and writes its result
(a tiny batch: not a timing test)."""

from __future__ import annotations

import json

import pytest

from benchmarks import speed


def _rows(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]


def test_the_table_has_every_network_with_its_parameters(tmp_path, capsys):
    assert speed.main(["model", "--batch", "2", "--steps", "1", "--out", str(tmp_path)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [row.split(" | ")[1] for row in rows] == ["85,034", "354,530"]  # README's parameter counts
    assert rows[0].endswith("| 1.00x |")  # the CNN's faster step is the unit
    for row in rows:
        fp32, bf16 = (float(cell) for cell in row.split(" | ")[2:4])
        assert fp32 > 0 and bf16 > 0
    (path,) = (tmp_path / "speed").glob("model-networks-*.json")
    result = json.loads(path.read_text())
    assert result["benchmark"] == "speed" and result["arm"] == "model" and result["machine"]["threads"] == 1
    assert result["command"] == f"python -m benchmarks.speed model --batch 2 --steps 1 --out {tmp_path}"
    assert [r["parameters"] for r in result["figures"]["rows"]] == [85_034, 354_530] and "batch of 2" in result["protocol"]


def test_a_variant_adds_a_row_of_the_default_cnn_with_its_arguments_changed(tmp_path, capsys):
    argv = ["model", "--batch", "2", "--steps", "1", "--variant", "channels=[16,32,96,96],dropout=0.1", "--out", str(tmp_path)]
    assert speed.main(argv) == 0
    rows = _rows(capsys.readouterr().out)
    assert len(rows) == 3
    assert rows[2].startswith("| SpectrogramCNN (default, channels=[16, 32, 96, 96], dropout=0.1) | 148,522 |")


def test_a_bad_variant_is_a_usage_error_that_names_it(tmp_path, capsys):
    for text, message in [("dropout", "expected KEY=VALUE"), ("widths=[1,2]", "widths"),
                          ("channels=[1,2]", "four positive widths"), ("dropout={", "not a YAML value"), ("channels=[1,2", "unbalanced")]:
        with pytest.raises(SystemExit) as exit_info:
            speed.main(["model", "--variant", text, "--out", str(tmp_path)])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "speed").exists()
