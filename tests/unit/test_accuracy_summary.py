"""benchmarks.accuracy's summaries: LOSO with several seeds per fold, noise over seeds, the CPUs, and the
result file with its commands (units written here, nothing trained)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import accuracy as bench


@pytest.fixture
def out(tmp_path) -> Path:
    """A config's results folder, ``RESULTS/accuracy/x`` (its result: ``RESULTS/accuracy/x.json``)."""
    return tmp_path / "results" / "accuracy" / "x"


def _unit(out: Path, speaker: str, seed: int, acc: float, **extra) -> None:
    name = bench.loso_unit_name(speaker, seed)
    (out / "units").mkdir(parents=True, exist_ok=True)
    (out / "units" / f"{name}.json").write_text(json.dumps(
        {"name": name, "seed": seed, "test_acc": acc, "parameters": 1000, "training_seconds": 10.0, **extra}))


def test_unit_names_keep_the_one_seed_protocols_name_for_seed_0():
    assert bench.loso_unit_name("george", 0) == "loso-george"
    assert bench.loso_unit_name("george", 2) == "loso-george-seed2"


def test_a_speakers_figure_is_the_mean_over_its_seeds(out):
    for speaker, seed, acc in [("george", 0, 0.90), ("george", 1, 0.80), ("theo", 0, 0.96), ("theo", 1, 0.94),
                               ("lucas", 0, 0.70)]:  # lucas has seed 0 only: seed 1 is not complete
        _unit(out, speaker, seed, acc)
    summary = bench.summarize(out, "configs/x.yaml")
    loso = summary["loso"]
    assert loso["per_speaker"] == pytest.approx({"george": 0.85, "lucas": 0.70, "theo": 0.95})
    assert abs(loso["mean"] - (0.85 + 0.70 + 0.95) / 3) < 1e-12 and loso["worst"] == ["lucas", 0.70]
    assert loso["seeds"] == [0, 1] and loso["per_speaker_seeds"]["george"] == {0: 0.90, 1: 0.80}
    assert list(loso["mean_per_seed"]) == [0] and abs(loso["mean_per_seed"][0] - (0.90 + 0.96 + 0.70) / 3) < 1e-12
    table = bench.table(summary)
    assert "| LOSO mean (3 folds, mean of seeds 0,1) | 83.33% |" in table
    assert "george 85.0 (90.0 / 80.0)" in table and "lucas 70.0," in table

    _unit(out, "lucas", 1, 0.76)  # now seed 1 has every fold
    bench.summarize(out, "configs/x.yaml")
    row = bench.compare([out]).splitlines()[2]
    # per seed: seed 0 (90 + 96 + 70) / 3 = 85.3, seed 1 (80 + 94 + 76) / 3 = 83.3
    assert "| 84.3 (3/6, 2 seeds: 83.3-85.3) | 73.0 (lucas) |" in row


def test_one_seed_per_fold_reads_as_before(out):
    _unit(out, "george", 0, 0.9)
    _unit(out, "theo", 0, 0.8)
    summary = bench.summarize(out, "configs/x.yaml")
    assert summary["loso"]["per_speaker"] == {"george": 0.9, "theo": 0.8} and summary["loso"]["folds"] == 2
    assert "| LOSO mean (2 folds, seed 0) | 85.00% |" in bench.table(summary)
    for where in (out, out.with_suffix(".json"), out.parent / "x.json"):  # the folder, or its result file
        assert "| 85.0 (2/6) | 80.0 (theo) |" in bench.compare([where]).splitlines()[2]


def _noise_unit(out: Path, seed: int, white_10: float) -> None:
    accuracy = {"clean": 0.99, **{f"{k}_{s}dB": 0.9 for k in ("white", "babble") for s in (20, 10, 5)}}
    accuracy["white_10dB"] = white_10
    (out / "units").mkdir(parents=True, exist_ok=True)
    (out / "units" / f"{bench.noise_unit_name(seed)}.json").write_text(json.dumps(
        {"checkpoint": f"ckpt{seed}", "count": 300, "accuracy": accuracy, "inference_ms_per_clip": 2.0 + seed, "seed": seed}))


def test_noise_figures_are_the_mean_over_the_official_seeds(out):
    assert bench.noise_unit_name(0) == "noise" and bench.noise_unit_name(2) == "noise-seed2"
    _noise_unit(out, 0, 0.94)
    first = bench.summarize(out, "configs/x.yaml")["noise"]
    assert first["seeds"] == [0] and first["accuracy"]["white_10dB"] == 0.94 and first["std"]["white_10dB"] == 0.0
    assert "| 90.0 / 94.0 / 90.0 (1) | 90.0 / 90.0 / 90.0 (1) |" in bench.compare([out]).splitlines()[2]
    _noise_unit(out, 1, 0.96)
    _noise_unit(out, 2, 0.98)
    summary = bench.summarize(out, "configs/x.yaml")
    noise = summary["noise"]
    assert noise["seeds"] == [0, 1, 2] and noise["count"] == 300
    assert noise["accuracy"]["white_10dB"] == pytest.approx(0.96) and noise["std"]["white_10dB"] == pytest.approx(0.02)
    assert noise["per_seed"][1]["white_10dB"] == 0.96 and noise["checkpoints"] == ["ckpt0", "ckpt1", "ckpt2"]
    assert noise["inference_ms_per_clip"] == 2.0  # the fastest seed's timing, the least disturbed by other load
    assert "| noise: white at 20/10/5 dB SNR (seeds 0,1,2) | 90.0% / 96.0% / 90.0% |" in bench.table(summary)
    assert "| 90.0 / 96.0 / 90.0 (3) |" in bench.compare([out]).splitlines()[2]


def test_the_table_names_the_cpus_the_units_were_trained_on(out):
    """A seed's result differs between kinds of CPU: the summary lists them, and says so when they differ."""

    def with_cpu(speaker: str, model: str | None) -> None:
        _unit(out, speaker, 0, 0.9, **({"cpu": {"model": model, "capability": "AVX512", "threads": 1}} if model else {}))

    with_cpu("george", None)  # a unit from before the CPU was recorded
    with_cpu("theo", "CPU A")
    summary = bench.summarize(out, "configs/x.yaml")
    assert summary["cpus"] == ["not recorded", "CPU A, AVX512, 1 thread(s)"]
    assert "| trained on | not recorded; CPU A, AVX512, 1 thread(s) |" in bench.table(summary)
    with_cpu("lucas", "CPU B")
    table = bench.table(bench.summarize(out, "configs/x.yaml"))
    assert ("| trained on 2 kinds of CPU (a seed's result differs between them) | "
            "not recorded; CPU B, AVX512, 1 thread(s); CPU A, AVX512, 1 thread(s) |") in table  # units in name order
    # a unit that recorded its precision (float32 where bf16 would be emulated) names it
    _unit(out, "nicolas", 0, 0.9, cpu={"model": "CPU C", "capability": "AVX2", "threads": 1}, precision="32-true")
    assert "CPU C, AVX2, 1 thread(s), 32-true" in bench.summarize(out, "configs/x.yaml")["cpus"]


def test_the_result_file_holds_what_reproduces_it(out):
    """``OUT/accuracy/NAME.json``: benchmark, protocol and command per protocol, machine, recipe, figures, units."""
    for speaker in ("george", "theo"):
        _unit(out, speaker, 0, 0.9, recipe="abc")
    _unit(out, "george", 1, 0.8, recipe="abc")
    _noise_unit(out, 0, 0.9)
    bench.summarize(out, "configs/x.yaml", ["trainer.max_epochs=3", "model.mixup_alpha=0.2"], epochs=3)
    result = json.loads(out.with_suffix(".json").read_text())
    assert {"benchmark", "name", "protocol", "command", "machine", "recipe", "figures", "units"} <= set(result)
    assert result["benchmark"] == "accuracy" and result["name"] == "x" and set(result["protocol"]) == {"loso", "noise"}
    assert result["recipe"] == {"config": "configs/x.yaml", "epochs": 3, "overrides": ["model.mixup_alpha=0.2"], "hash": "abc"}
    root = str(out.parent.parent)
    assert result["command"]["loso"] == (
        "python -m benchmarks.accuracy loso configs/x.yaml --seeds 0 1 --folds george theo "
        f"--epochs=3 --override model.mixup_alpha=0.2 --out {root}")
    assert result["command"]["noise"].startswith("python -m benchmarks.accuracy noise configs/x.yaml --seeds 0 --epochs=3")
    assert {"cpu", "cpus", "threads", "load", "spokenword", "git"} <= set(result["machine"])
    assert set(result["units"]) == {"loso-george", "loso-george-seed1", "loso-theo", "noise"}

    # a unit of another recipe is never summarised with these
    _unit(out, "lucas", 0, 0.9, recipe="other")
    with pytest.raises(bench.RecipeChanged, match="loso-lucas.json was made with another recipe"):
        bench.summarize(out, "configs/x.yaml", wanted="abc")


def test_a_unit_made_before_the_suite_is_read_as_it_is(out, tmp_path):
    """The unit JSON of the accuracy script from before the suite (e.g. a LOSO fold) needs no conversion, and a
    checkpoint whose folder was moved is found under the new folder's runs/."""
    old = {"name": "loso-nicolas", "seed": 0, "split": "speakers", "protocol": "held-out speakers ['nicolas'] as test",
           "test_acc": 0.876, "test_count": 500, "val_best_acc": 1.0, "parameters": 85034, "epochs": 120,
           "training_seconds": 651.9, "checkpoint": "/gone/loso/cnn/runs/loso-nicolas/version_0/checkpoints/best-epoch=119.ckpt",
           "cpu": {"model": "CPU A", "capability": "AVX512", "threads": 1}, "recipe": "da1ecb874bad72e5"}
    (out / "units").mkdir(parents=True)
    (out / "units" / "loso-nicolas.json").write_text(json.dumps(old))
    summary = bench.summarize(out, "configs/fsdd_cnn_newvoices.yaml")
    assert summary["loso"]["per_speaker"] == {"nicolas": 0.876} and summary["cpus"] == ["CPU A, AVX512, 1 thread(s)"]
    moved = out / "runs" / "loso-nicolas" / "version_0" / "checkpoints" / "best-epoch=119.ckpt"
    assert bench.checkpoint_of(out, old) == Path(old["checkpoint"])  # not there either: the recorded path
    moved.parent.mkdir(parents=True)
    moved.write_bytes(b"")
    assert bench.checkpoint_of(out, old) == moved
