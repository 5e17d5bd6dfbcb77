"""``python -m benchmarks.speed model`` runs and prints one row per shipped network, and writes its result
(a tiny batch: not a timing test)."""

from __future__ import annotations

import json

import pytest

from benchmarks import speed


def _rows(out: str, table: int = 0) -> list[str]:
    """The body rows of the output's ``table``-th table."""
    tables = [block.splitlines() for block in out.split("\n\n")]
    tables = [[line for line in lines if line.startswith("| ") and "---" not in line] for lines in tables]
    return [rows for rows in tables if rows][table][1:]


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


def test_the_frozen_part_is_timed_per_clip_at_each_chunk_size(tmp_path, capsys):
    """frozen_views' pass through the embedding's frozen part, at the chunk size the task uses and others."""
    from spokenword.training.task import FROZEN_CHUNK

    assert speed.main(["model", "--batch", "2", "--steps", "1", "--out", str(tmp_path)]) == 0
    (row,) = _rows(capsys.readouterr().out, table=1)
    assert row.startswith("| ms per clip |") and all(float(cell) > 0 for cell in row.strip(" |").split(" | ")[1:])
    (path,) = (tmp_path / "speed").glob("model-networks-*.json")
    frozen = json.loads(path.read_text())["figures"]["frozen_ms_per_clip"]
    assert str(FROZEN_CHUNK) in frozen and "512" in frozen and all(ms > 0 for ms in frozen.values())


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
