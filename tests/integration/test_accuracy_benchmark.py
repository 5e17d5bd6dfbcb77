"""Smoke run of benchmarks/accuracy.py: one seed, one LOSO fold, one epoch, a few noisy clips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmark_scripts import load_benchmark

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_writes_units_json_and_markdown_and_resumes(fsdd_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bench = load_benchmark("accuracy")
    out = tmp_path / "bench"
    argv = [
        str(REPO / "configs" / "fsdd_cnn.yaml"), "--protocols", "official,loso,noise", "--seeds", "0",
        "--folds", "theo", "--epochs", "1", "--root", str(fsdd_root), "--cache-dir", str(tmp_path / "cache"),
        "--noise-clips", "20", "--out", str(out), "--override", "data.eval_batch_size=100",
    ]
    assert bench.main(argv) == 0
    units = sorted(p.name for p in (out / "units").glob("*.json"))
    assert units == ["loso-theo.json", "noise.json", "official-seed0.json"]
    summary = json.loads((out / "accuracy.json").read_text())
    assert 0.0 <= summary["official"]["mean"] <= 1.0 and summary["official"]["seeds"] == [0]
    assert set(summary["loso"]["per_speaker"]) == {"theo"} and summary["loso"]["worst"][0] == "theo"
    noise = summary["noise"]["accuracy"]
    assert set(noise) == {"clean"} | {f"{k}_{s}dB" for k in ("white", "babble") for s in (20, 10, 5)}
    assert summary["noise"]["count"] == 20 and summary["noise"]["inference_ms_per_clip"] > 0
    assert summary["parameters"] == 84_682
    assert summary["overrides"] == ["trainer.max_epochs=1", "data.eval_batch_size=100"]  # passed to every run, and said in the table
    assert "eval_batch_size: 100" in (out / "runs" / "official-seed0" / "version_0" / "config.yaml").read_text()
    table = (out / "accuracy.md").read_text()
    assert "| official split" in table and "| LOSO worst speaker | " in table and "babble" in table

    # resumable: a second call finds every unit and trains nothing
    stamp = {p.name: p.stat().st_mtime for p in (out / "units").glob("*.json")}
    assert bench.main(argv) == 0
    assert {p.name: p.stat().st_mtime for p in (out / "units").glob("*.json")} == stamp

    # another recipe (here other epochs; an edited config file alike) is never mixed with these units
    other = list(argv)
    other[other.index("--epochs") + 1] = "2"
    with pytest.raises(bench.RecipeChanged, match="official-seed0.json was made with another recipe"):
        bench.main(other)
    edited = tmp_path / "edited.yaml"
    text = (REPO / "configs" / "fsdd_cnn.yaml").read_text()
    edited.write_text(text.replace("max_epochs: 30", "max_epochs: 30  # a comment changes no recipe"))
    assert bench.recipe(str(edited), ["--x"]) == bench.recipe(str(REPO / "configs" / "fsdd_cnn.yaml"), ["--x"])
    edited.write_text(text.replace("dropout: 0.0", "dropout: 0.1"))
    with pytest.raises(bench.RecipeChanged):
        bench.main([str(edited), *argv[1:]])
    assert {p.name: p.stat().st_mtime for p in (out / "units").glob("*.json")} == stamp  # nothing trained or lost

    # a noise unit to make whose official run was deleted since: one message naming what to delete, not a traceback
    checkpoint = Path(summary["units"]["official-seed0"]["checkpoint"])
    checkpoint.rename(checkpoint.with_suffix(".moved"))
    (out / "units" / "noise.json").unlink()
    with pytest.raises(bench.RunMissing, match="official-seed0.json's checkpoint .* is gone.*delete .*official-seed0.json"):
        bench.main(argv)
    checkpoint.with_suffix(".moved").rename(checkpoint)

    # the comparison table marks a partial LOSO with its fold count, then gives the per-speaker table
    lines = bench.compare([out]).splitlines()
    row = lines[2]
    assert "fsdd_cnn.yaml" in row and "data.eval_batch_size=100" in row and "(1/6)" in row and "(theo)" in row
    assert lines[-3] == "| config | theo | mean |"
    theo = 100 * summary["loso"]["per_speaker"]["theo"]
    assert lines[-1].endswith(f"| {theo:.1f} | {theo:.1f} |")

    # an ensemble of a run with itself is that run: the members' mean and the ensemble both equal its score
    capsys.readouterr()
    assert load_benchmark("ensemble").main([str(out), str(out), "--root", str(fsdd_root)]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "| | theo (2) | mean | worst |"
    plain = float(rows[2].split("|")[2])
    assert abs(plain - theo) <= 2.0  # the same model through Classifier's preprocessing (fp32 here)
    assert rows[2] == f"| members (mean) | {plain:.1f} | {plain:.1f} | {plain:.1f} |"
    assert rows[3] == f"| ensemble | {plain:.1f} | {plain:.1f} | {plain:.1f} |"

    # in noise: the ensemble of the official run with itself scores what the run's own noise unit says
    assert bench.main(argv) == 0  # remakes the noise unit deleted above
    capsys.readouterr()
    assert load_benchmark("ensemble").main([str(out), str(out), "--noise", "--noise-clips", "20", "--root", str(fsdd_root)]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("| official split, seed 0 | clean | white 20dB |") and len(rows) == 2 + 3
    assert rows[2].split("|")[2:9] == rows[4].split("|")[2:9]  # member's unit == ensemble(run, run), every condition
    assert rows[4].startswith("| ensemble (2) |")

    # the last epoch's checkpoint instead of the best validation's: after one epoch they are the same model
    assert load_benchmark("ensemble").main([str(out), "--checkpoint", "last", "--root", str(fsdd_root)]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "| | theo (1) | mean | worst |" and rows[2] == f"| members (mean) | {plain:.1f} | {plain:.1f} | {plain:.1f} |"


def test_protocols_are_space_or_comma_separated_and_bad_arguments_are_a_usage_error(capsys):
    bench = load_benchmark("accuracy")
    with pytest.raises(SystemExit) as exit_info:
        bench.main([str(REPO / "configs" / "fsdd_cnn_newvoices.yaml"), "--protocols", "official", "loso,bogus"])
    assert exit_info.value.code == 2
    assert "unknown protocols ['bogus']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--compare", "benchmarks/results/no_such_run"])
    assert exit_info.value.code == 2
    assert "no accuracy.json in benchmarks/results/no_such_run" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["configs/no_such.yaml"])
    assert exit_info.value.code == 2 and "no config file configs/no_such.yaml" in capsys.readouterr().err
