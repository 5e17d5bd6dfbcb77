"""benchmarks/accuracy.py's LOSO summary with several seeds per fold (units written here, nothing trained)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmark_scripts import load_benchmark


def _unit(out: Path, bench, speaker: str, seed: int, acc: float) -> None:
    name = bench.loso_unit_name(speaker, seed)
    (out / "units").mkdir(parents=True, exist_ok=True)
    (out / "units" / f"{name}.json").write_text(json.dumps(
        {"name": name, "seed": seed, "test_acc": acc, "parameters": 1000, "training_seconds": 10.0}))


def test_unit_names_keep_the_one_seed_protocols_name_for_seed_0():
    bench = load_benchmark("accuracy")
    assert bench.loso_unit_name("george", 0) == "loso-george"
    assert bench.loso_unit_name("george", 2) == "loso-george-seed2"


def test_a_speakers_figure_is_the_mean_over_its_seeds(tmp_path, capsys):
    bench = load_benchmark("accuracy")
    for speaker, seed, acc in [("george", 0, 0.90), ("george", 1, 0.80), ("theo", 0, 0.96), ("theo", 1, 0.94),
                               ("lucas", 0, 0.70)]:  # lucas has seed 0 only: seed 1 is not complete
        _unit(tmp_path, bench, speaker, seed, acc)
    summary = bench.summarize(tmp_path, "configs/x.yaml")
    loso = summary["loso"]
    assert loso["per_speaker"] == pytest.approx({"george": 0.85, "lucas": 0.70, "theo": 0.95})
    assert abs(loso["mean"] - (0.85 + 0.70 + 0.95) / 3) < 1e-12 and loso["worst"] == ["lucas", 0.70]
    assert loso["seeds"] == [0, 1] and loso["per_speaker_seeds"]["george"] == {0: 0.90, 1: 0.80}
    assert list(loso["mean_per_seed"]) == [0] and abs(loso["mean_per_seed"][0] - (0.90 + 0.96 + 0.70) / 3) < 1e-12
    table = (tmp_path / "accuracy.md").read_text()
    assert "| LOSO mean (3 folds, mean of seeds 0,1) | 83.33% |" in table
    assert "george 85.0 (90.0 / 80.0)" in table and "lucas 70.0," in table

    _unit(tmp_path, bench, "lucas", 1, 0.76)  # now seed 1 has every fold
    bench.summarize(tmp_path, "configs/x.yaml")
    capsys.readouterr()
    row = bench.compare([tmp_path]).splitlines()[2]
    # per seed: seed 0 (90 + 96 + 70) / 3 = 85.3, seed 1 (80 + 94 + 76) / 3 = 83.3
    assert "| 84.3 (3/6, 2 seeds: 83.3-85.3) | 73.0 (lucas) |" in row


def test_one_seed_per_fold_reads_as_before(tmp_path):
    bench = load_benchmark("accuracy")
    _unit(tmp_path, bench, "george", 0, 0.9)
    _unit(tmp_path, bench, "theo", 0, 0.8)
    summary = bench.summarize(tmp_path, "configs/x.yaml")
    assert summary["loso"]["per_speaker"] == {"george": 0.9, "theo": 0.8} and summary["loso"]["folds"] == 2
    assert "| LOSO mean (2 folds, seed 0) | 85.00% |" in (tmp_path / "accuracy.md").read_text()
    assert "| 85.0 (2/6) | 80.0 (theo) |" in bench.compare([tmp_path]).splitlines()[2]


def _noise_unit(out: Path, bench, seed: int, white_10: float) -> None:
    accuracy = {"clean": 0.99, **{f"{k}_{s}dB": 0.9 for k in ("white", "babble") for s in (20, 10, 5)}}
    accuracy["white_10dB"] = white_10
    (out / "units").mkdir(parents=True, exist_ok=True)
    (out / "units" / f"{bench.noise_unit_name(seed)}.json").write_text(json.dumps(
        {"checkpoint": f"ckpt{seed}", "count": 300, "accuracy": accuracy, "inference_ms_per_clip": 2.0 + seed, "seed": seed}))


def test_noise_figures_are_the_mean_over_the_official_seeds(tmp_path):
    bench = load_benchmark("accuracy")
    assert bench.noise_unit_name(0) == "noise" and bench.noise_unit_name(2) == "noise-seed2"
    _noise_unit(tmp_path, bench, 0, 0.94)
    first = bench.summarize(tmp_path, "configs/x.yaml")["noise"]
    assert first["seeds"] == [0] and first["accuracy"]["white_10dB"] == 0.94 and first["std"]["white_10dB"] == 0.0
    assert "| 90.0 / 94.0 / 90.0 (1) | 90.0 / 90.0 / 90.0 (1) |" in bench.compare([tmp_path]).splitlines()[2]
    _noise_unit(tmp_path, bench, 1, 0.96)
    _noise_unit(tmp_path, bench, 2, 0.98)
    noise = bench.summarize(tmp_path, "configs/x.yaml")["noise"]
    assert noise["seeds"] == [0, 1, 2] and noise["count"] == 300
    assert noise["accuracy"]["white_10dB"] == pytest.approx(0.96) and noise["std"]["white_10dB"] == pytest.approx(0.02)
    assert noise["per_seed"][1]["white_10dB"] == 0.96 and noise["checkpoints"] == ["ckpt0", "ckpt1", "ckpt2"]
    assert noise["inference_ms_per_clip"] == 2.0  # the fastest seed's timing, the least disturbed by other load
    assert "| noise: white at 20/10/5 dB SNR (seeds 0,1,2) | 90.0% / 96.0% / 90.0% |" in (tmp_path / "accuracy.md").read_text()
    assert "| 90.0 / 96.0 / 90.0 (3) |" in bench.compare([tmp_path]).splitlines()[2]


def test_the_table_names_the_cpus_the_units_were_trained_on(tmp_path):
    """A seed's result differs between kinds of CPU: the summary lists them, and says so when they differ."""
    bench = load_benchmark("accuracy")

    def with_cpu(speaker: str, model: str | None) -> None:
        _unit(tmp_path, bench, speaker, 0, 0.9)
        if model:
            unit = tmp_path / "units" / f"loso-{speaker}.json"
            cpu = {"model": model, "capability": "AVX512", "threads": 1}
            unit.write_text(json.dumps({**json.loads(unit.read_text()), "cpu": cpu}))

    with_cpu("george", None)  # a unit from before the CPU was recorded
    with_cpu("theo", "CPU A")
    summary = bench.summarize(tmp_path, "configs/x.yaml")
    assert summary["cpus"] == ["not recorded", "CPU A, AVX512, 1 thread(s)"]
    assert "| trained on | not recorded; CPU A, AVX512, 1 thread(s) |" in (tmp_path / "accuracy.md").read_text()
    with_cpu("lucas", "CPU B")
    bench.summarize(tmp_path, "configs/x.yaml")
    table = (tmp_path / "accuracy.md").read_text()
    assert ("| trained on 2 kinds of CPU (a seed's result differs between them) | "
            "not recorded; CPU B, AVX512, 1 thread(s); CPU A, AVX512, 1 thread(s) |") in table  # units in name order
