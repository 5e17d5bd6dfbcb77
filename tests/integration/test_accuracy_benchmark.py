"""Smoke run of ``python -m benchmarks.accuracy``: one seed, one LOSO fold, one epoch, a few noisy clips; the
ensemble of a run with itself; the form from before the suite; importing a ``spokenword fit`` run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks import accuracy as bench

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_protocols_write_units_and_one_result_and_resume(fsdd_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    config = str(REPO / "configs" / "fsdd_cnn.yaml")
    options = ["--epochs", "1", "--data.root", str(fsdd_root), "--cache-dir", str(tmp_path / "cache"),
               "--out", str(results), "--override", "data.eval_batch_size=100"]
    out = results / "accuracy" / "fsdd_cnn"
    assert bench.main(["official", config, "--seeds", "0", *options]) == 0
    assert bench.main(["loso", config, "--folds", "theo", *options]) == 0
    assert bench.main(["noise", config, "--seeds", "0", "--noise-clips", "20", *options]) == 0
    assert bench.main(["noise", config, "--loso", "--noise-clips", "20", *options]) == 0
    units = sorted(p.name for p in (out / "units").glob("*.json"))
    assert units == ["loso-theo.json", "noise-loso-theo.json", "noise.json", "official-seed0.json"]
    result = json.loads((results / "accuracy" / "fsdd_cnn.json").read_text())
    summary = result["figures"]
    assert 0.0 <= summary["official"]["mean"] <= 1.0 and summary["official"]["seeds"] == [0]
    assert set(summary["loso"]["per_speaker"]) == {"theo"} and summary["loso"]["worst"][0] == "theo"
    noise = summary["noise"]["accuracy"]
    assert set(noise) == {"clean"} | {f"{k}_{s}dB" for k in ("white", "babble", "rooms", "tap") for s in (20, 10, 5)}
    assert summary["noise"]["count"] == 20 and summary["noise"]["inference_ms_per_clip"] > 0
    assert all(0.0 <= v <= 1.0 for v in noise.values()) and noise["clean"] >= noise["rooms_5dB"] - 0.2
    # LOSO in recorded noise: the fold's run on its held-out speaker's first 20 clips, clean equal to what it scores there
    loso_noise = summary["loso_noise"]
    assert loso_noise["count"] == 20 and loso_noise["worst"]["tap_10dB"][0] == "theo"
    assert set(loso_noise["mean"]) == {"clean"} | {f"{k}_{s}dB" for k in ("rooms", "tap") for s in (20, 10, 5)}
    assert summary["parameters"] == 84_682
    assert summary["overrides"] == ["trainer.max_epochs=1", "data.eval_batch_size=100"]  # passed to every run, and said in the table
    assert "eval_batch_size: 100" in (out / "runs" / "official-seed0" / "version_0" / "config.yaml").read_text()
    assert set(result["command"]) == set(result["protocol"]) == {"official", "loso", "noise", "loso_noise"}
    assert result["command"]["loso_noise"].startswith(f"python -m benchmarks.accuracy noise {config} --loso --noise-clips 20")
    assert result["command"]["noise"] == (f"python -m benchmarks.accuracy noise {config} --seeds 0 --noise-clips 20 --epochs=1 "
                                          f"--override data.eval_batch_size=100 --out {results}")
    assert result["recipe"]["hash"] == bench.recipe(config, ["--trainer.max_epochs=1", "--data.eval_batch_size=100"])
    table = capsys.readouterr().out
    assert "| official split" in table and "| LOSO worst speaker | " in table and "babble" in table
    assert "| noise: tap at 20/10/5 dB SNR" in table and "| LOSO rooms at 20/10/5 dB: mean (worst) |" in table

    # resumable: a second call finds every unit and trains nothing; `summary` trains nothing either
    stamp = {p.name: p.stat().st_mtime for p in (out / "units").glob("*.json")}
    assert bench.main(["noise", config, "--seeds", "0", "--noise-clips", "20", *options]) == 0
    assert bench.main(["summary", config, *options]) == 0
    assert {p.name: p.stat().st_mtime for p in (out / "units").glob("*.json")} == stamp

    # another recipe (here other epochs; an edited config file alike) is never mixed with these units
    other = list(options)
    other[other.index("--epochs") + 1] = "2"
    with pytest.raises(bench.RecipeChanged, match="official-seed0.json was made with another recipe"):
        bench.main(["official", config, "--seeds", "0", *other])
    with pytest.raises(bench.RecipeChanged):
        bench.main(["summary", config, *other])
    edited = tmp_path / "fsdd_cnn.yaml"
    text = Path(config).read_text()
    edited.write_text(text.replace("max_epochs: 30", "max_epochs: 30  # a comment changes no recipe"))
    assert bench.recipe(str(edited), ["--x"]) == bench.recipe(config, ["--x"])
    edited.write_text(text.replace("dropout: 0.0", "dropout: 0.1"))
    with pytest.raises(bench.RecipeChanged):
        bench.main(["official", str(edited), "--seeds", "0", *options])
    assert {p.name: p.stat().st_mtime for p in (out / "units").glob("*.json")} == stamp  # nothing trained or lost

    # a noise unit to make whose official run was deleted since: one message naming what to delete, not a traceback
    checkpoint = Path(result["units"]["official-seed0"]["checkpoint"])
    checkpoint.rename(checkpoint.with_suffix(".moved"))
    (out / "units" / "noise.json").unlink()
    with pytest.raises(bench.RunMissing, match="official-seed0.json's checkpoint .* is gone.*delete .*official-seed0.json"):
        bench.main(["noise", config, "--seeds", "0", "--noise-clips", "20", *options])
    checkpoint.with_suffix(".moved").rename(checkpoint)
    assert bench.main(["noise", config, "--seeds", "0", "--noise-clips", "20", *options]) == 0

    # the comparison table marks a partial LOSO with its fold count, then gives the per-speaker table
    capsys.readouterr()
    assert bench.main(["compare", "fsdd_cnn", "--out", str(results)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    row = lines[2]
    assert "fsdd_cnn.yaml" in row and "data.eval_batch_size=100" in row and "(1/6)" in row and "(theo)" in row
    assert lines[-3] == "| config | theo | mean |"
    theo = 100 * summary["loso"]["per_speaker"]["theo"]
    assert lines[-1].endswith(f"| {theo:.1f} | {theo:.1f} |")

    # an ensemble of a run with itself is that run: the members' mean and the ensemble both equal its score
    copy = results / "accuracy" / "copy"
    shutil.copytree(out, copy)
    ensemble = ["ensemble", "fsdd_cnn", "copy", "--data.root", str(fsdd_root), "--out", str(results)]
    assert bench.main(ensemble) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "| | theo (2) | mean | worst |"
    plain = float(rows[2].split("|")[2])
    assert abs(plain - theo) <= 2.0  # the same model through Classifier's preprocessing (fp32 here)
    assert rows[2] == f"| members (mean) | {plain:.1f} | {plain:.1f} | {plain:.1f} |"
    assert rows[3] == f"| ensemble, own answers | {plain:.1f} | {plain:.1f} | {plain:.1f} |"

    # in noise: the ensemble of the official run with itself scores what the run's own noise unit says, where
    # both answer with their best label (a name with no LOSO result: no word threshold to answer at)
    assert bench.main([*ensemble, "--noise", "--noise-clips", "20", "--name", "self-pair"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("| official split, seed 0 | clean | white 20dB |") and len(rows) == 2 + 3
    assert rows[0].split("|")[-3].strip() == "tap 5dB"
    assert rows[2].split("|")[2:15] == rows[4].split("|")[2:15]  # member's unit == ensemble(run, run), every condition
    assert rows[4].startswith("| ensemble (2) |")
    # under the LOSO result's name it answers at the threshold that result chose
    assert bench.main([*ensemble, "--noise", "--noise-clips", "20"]) == 0
    capsys.readouterr()
    # each LOSO fold's ensemble in noise: the run with itself scores what its own LOSO noise unit says
    assert bench.main([*ensemble, "--noise", "--loso", "--noise-clips", "20"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[2:] == [f"| {k} | {v} |" for k, v in bench.loso_noise_rows(loso_noise)]
    made = json.loads((results / "accuracy" / "fsdd_cnn+copy.json").read_text())
    assert made["kind"] == "ensemble" and set(made["figures"]) == {"loso", "noise-seed0", "loso-noise"}
    assert made["command"]["loso-noise"].endswith("--noise --loso --noise-clips 20")
    assert made["command"]["noise-seed0"].endswith("--noise --noise-clips 20")
    assert made["recipe"]["member_recipes"]["fsdd_cnn"] == result["recipe"]["hash"]
    assert made["figures"]["noise-seed0"]["reject_below"] == made["figures"]["loso"].get("reject_below")

    # the last epoch's checkpoint instead of the best validation's: after one epoch they are the same model
    assert bench.main(["ensemble", "fsdd_cnn", "--checkpoint", "last", "--data.root", str(fsdd_root), "--out", str(results)]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "| | theo (1) | mean | worst |" and rows[2] == f"| members (mean) | {plain:.1f} | {plain:.1f} | {plain:.1f} |"

    # the form from before the suite finds the same units in a folder given by --out, and trains nothing
    assert bench.main([config, "--protocols", "loso", "--folds", "theo", "--epochs", "1", "--root", str(fsdd_root),
                       "--out", str(copy), "--override", "data.eval_batch_size=100"]) == 0
    assert json.loads(copy.with_suffix(".json").read_text())["command"]["loso"].endswith(f"--out {results} --name copy")

    # a finished `spokenword fit` run becomes the official unit of its seed, as if `official` had trained it
    run = out / "runs" / "official-seed0" / "version_0"
    imported = results / "accuracy" / "imported"
    recipe = ["--epochs", "1", "--override", "data.eval_batch_size=100"]
    with pytest.raises(bench.RecipeChanged, match=r"trainer.max_epochs: 30 in the config, 1 in the run"):
        bench.main(["import", str(run), "--config", config, "--folder", str(imported)])  # made with other options
    assert bench.main(["import", str(run), "--config", config, *recipe, "--folder", str(imported)]) == 0
    unit = json.loads((imported / "units" / "official-seed0.json").read_text())
    own = json.loads((out / "units" / "official-seed0.json").read_text())
    assert unit == {**own, "imported_from": str(run)}
    with pytest.raises(bench.RecipeChanged, match="exists"):  # never over a unit already there
        bench.main(["import", str(run), "--config", config, *recipe, "--folder", str(imported)])
    with pytest.raises(bench.RecipeChanged, match="not made with .* as it is now"):  # the run's config is not this one
        bench.main(["import", str(run), "--config", str(REPO / "configs" / "fsdd_cnn_newvoices.yaml"),
                    "--folder", str(tmp_path / "other")])


def test_bad_arguments_are_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main([str(REPO / "configs" / "fsdd_cnn_newvoices.yaml"), "--protocols", "official", "loso,bogus"])
    assert exit_info.value.code == 2
    assert "unknown protocols ['bogus']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["compare", "no_such_run", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no result for no_such_run" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["official", "configs/no_such.yaml", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "no config file configs/no_such.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["ensemble", "no_such_run", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "no results folder" in capsys.readouterr().err
