"""Accuracy benchmark: train and score one config under honest protocols (issue 3).

    python benchmarks/accuracy.py CONFIG [--protocols official loso noise] [--seeds 0 1 2]
        [--folds SPEAKER ...] [--loso-seeds 0 1] [--epochs N] [--override KEY=VALUE ...]
        [--out benchmarks/results/NAME]
    python benchmarks/accuracy.py --compare benchmarks/results/NAME ...   # configs side by side

Protocols (FSDD, through the project's own training path, ``spokenword fit``):

* ``official``: test = takes 0-4, validation = takes 5-9 (model selection), train = takes 10-49;
  one run per seed; mean +- std of test accuracy.
* ``loso``: leave one speaker out: each speaker in turn is the test set, validation = the other
  speakers' takes 5-9 (``data.split: speakers``); mean, worst and per-speaker accuracy. One seed
  per fold (the first of ``--seeds``) unless ``--loso-seeds`` names more: a fold's result swings
  by several points between seeds, so a speaker's figure is then the mean over its seeds, and the
  spread of the LOSO mean between seeds is reported.
* ``noise``: each official-seed checkpoint scored on the official test split with white noise
  and babble (a sum of 5 training-split recordings of other speakers) mixed at 20, 10 and 5 dB SNR
  (deterministic noise, the same for every seed), through :class:`spokenword.inference.checkpoint.Classifier`'s
  preprocessing; mean (and std) over the seeds. Without ``official`` in ``--protocols``, only the
  first of ``--seeds`` is trained and scored.

Every unit (a seed, a fold, the noise scores) is saved as its own JSON under ``OUT/units`` and
skipped when present, so runs are resumable and several processes can share ``OUT`` (e.g. one
fold each). ``OUT/accuracy.json`` and ``OUT/accuracy.md`` are rebuilt from whatever units exist.
A unit records its recipe (a hash of the config file's values and the options that change
training); a unit made with another recipe (the config edited since, other ``--epochs`` or
``--override``) is never mixed in: the run stops and says so. Training uses one torch thread
unless ``--threads`` says otherwise: the thread count changes float rounding and so the result
of a seed, and a rerun must give the same figures (run folds in parallel processes for speed).
So does the CPU: another kind of processor (other torch kernels, e.g. AVX2 against AVX512) gives
a seed another result, so each unit records its CPU and the table lists them.
Also reported: parameters, training wall time (s) and inference time per clip (ms, 1 thread,
file to probabilities).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

SNRS_DB = (20, 10, 5)
NOISES = ("white", "babble")
BABBLE_TALKERS = 5


def recipe(config: str, options: list[str]) -> str:
    """Hash of what a unit's result depends on: the config file's values (not its comments, nor
    the logger, which only says where runs are written) and the training options (not where the
    data or the cache are)."""
    import hashlib

    import yaml

    values = yaml.safe_load(Path(config).read_text()) or {}
    if isinstance(values.get("trainer"), dict):
        values["trainer"].pop("logger", None)
    text = json.dumps(values, sort_keys=True, default=str) + "\0" + "\0".join(options)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RecipeChanged(Exception):
    """A results folder holds units made with another recipe."""


class RunMissing(Exception):
    """A unit's training run (its checkpoint) is no longer on disk, and another unit needs it."""


def _todo(path: Path, wanted: str) -> bool:
    """Whether unit ``path`` still has to be made; an existing one must have recipe ``wanted``
    (units from before recipes were recorded are taken as they are)."""
    if not path.exists():
        return True
    made = json.loads(path.read_text()).get("recipe")
    if made is not None and made != wanted:
        raise RecipeChanged(f"{path} was made with another recipe (the config file or --epochs/--override "
                            f"changed since): use another --out, or delete {path.parent} to start again")
    return False


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def train_unit(config: str, out: Path, name: str, seed: int, overrides: list[str]) -> dict:
    """One ``spokenword fit`` run (config + overrides); returns its report's key figures."""
    from spokenword.training.cli import run

    run_dir = out / "runs" / name / "version_0"
    argv = [
        "fit", "--config", config, f"--seed_everything={seed}",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={out / 'runs'}", f"--trainer.logger.init_args.name={name}",
        "--trainer.logger.init_args.version=0", *overrides,
    ]
    run(argv)
    report = json.loads((run_dir / "report.json").read_text())
    return {
        "name": name, "seed": seed, "split": report["split"], "protocol": report["protocol"],
        "test_acc": report["test"]["acc"], "test_count": report["test"]["count"],
        "val_best_acc": report["validation"]["best_acc"], "parameters": report["parameters"],
        "epochs": report["epochs"], "training_seconds": report["training_seconds"],
        "checkpoint": report["checkpoint"],
        "cpu": report.get("provenance", {}).get("cpu"),  # a seed's result differs between CPUs (float kernels)
    }


def noise_unit(checkpoint: str | list[str], root: str | None, clips: int | None = None) -> dict:
    """Official-split test accuracy, clean and with white/babble noise at ``SNRS_DB`` (the first
    ``clips`` test recordings when given: smoke runs). Several checkpoints are scored as one
    :class:`spokenword.inference.ensemble.Ensemble` (``benchmarks/ensemble.py --noise``)."""
    import torch

    from spokenword.data.splits import make_split, resolve_root
    from spokenword.data.corpora import FSDD
    from spokenword.inference.load import load_model
    from spokenword.data.wave_augment import babble, mix_at_snr

    checkpoints = [checkpoint] if isinstance(checkpoint, (str, os.PathLike)) else list(checkpoint)
    clf = load_model(*checkpoints)  # several: their Ensemble
    split = make_split(FSDD().recordings(resolve_root(root)), "official")
    test = split.test[:clips] if clips else split.test
    labels = {label: i for i, label in enumerate(clf.labels)}
    clean = [clf.waveform(r.path) for r in test]
    truth = np.array([labels[r.label] for r in test])
    scores = {}

    def accuracy(waves: list[np.ndarray]) -> float:
        probs = np.asarray(clf.probabilities([clf.featurize(w) for w in waves]))
        return float((probs.argmax(-1) == truth).mean())

    scores["clean"] = accuracy(clean)
    for kind in NOISES:
        for snr in SNRS_DB:
            rng = np.random.default_rng(1000 * snr + (0 if kind == "white" else 1))
            noisy = []
            for rec, wave in zip(test, clean):
                if kind == "white":
                    noise = rng.standard_normal(len(wave))
                else:  # other speakers' training recordings only: never the test clips
                    pool_ids = [i for i, r in enumerate(split.train) if r.speaker != rec.speaker]
                    picks = rng.choice(pool_ids, size=BABBLE_TALKERS, replace=False)
                    noise = babble([clf.waveform(split.train[i].path) for i in picks], len(wave))
                noisy.append(mix_at_snr(wave, noise, snr))
            scores[f"{kind}_{snr}dB"] = accuracy(noisy)
    torch.set_num_threads(1)
    start = time.perf_counter()
    timed = test[:100]
    for rec in timed:
        clf(rec.path)
    ms = 1000 * (time.perf_counter() - start) / len(timed)
    return {"checkpoint": checkpoint, "count": len(test), "accuracy": scores, "inference_ms_per_clip": ms}


def summarize(out: Path, config: str, overrides: list[str] | None = None) -> dict:
    """Aggregate ``OUT/units/*.json`` into ``accuracy.json`` and ``accuracy.md``; returns the summary."""
    units = {p.stem: json.loads(p.read_text()) for p in sorted((out / "units").glob("*.json"))}
    official = [u for k, u in units.items() if k.startswith("official-seed")]
    loso_runs = [u for k, u in units.items() if k.startswith("loso-")]
    noise_units = {int(u.get("seed", 0)): u for k, u in units.items() if k == "noise" or k.startswith("noise-seed")}
    summary: dict = {"config": config, "overrides": list(overrides or []), "units": units}
    rows = []
    if official:
        accs = [u["test_acc"] for u in official]
        summary["official"] = {
            "seeds": [u["seed"] for u in official], "test_acc": accs, "mean": statistics.mean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        }
        rows.append(("official split, test takes 0-4, seeds " + ",".join(str(u["seed"]) for u in official),
                     f"{100 * summary['official']['mean']:.2f} ± {100 * summary['official']['std']:.2f}%"))
    if loso_runs:
        summary["loso"] = loso = summarize_loso(loso_runs)
        accs, worst, seeds = loso["per_speaker"], loso["worst"][0], loso["seeds"]
        over = f", mean of seeds {','.join(map(str, seeds))}" if len(seeds) > 1 else f", seed {seeds[0]}"
        rows.append((f"LOSO mean ({len(accs)} folds{over})", f"{100 * loso['mean']:.2f}%"))
        if loso["mean_per_seed"] and len(seeds) > 1:
            rows.append(("LOSO mean of each seed with all its folds",
                         ", ".join(f"seed {s} {100 * m:.2f}%" for s, m in loso["mean_per_seed"].items())))
        rows.append(("LOSO worst speaker", f"{100 * accs[worst]:.2f}% ({worst})"))
        rows.append(("LOSO per speaker", ", ".join(
            f"{s} {100 * a:.1f}" + (" (" + " / ".join(f"{100 * v:.1f}" for v in loso["per_speaker_seeds"][s].values()) + ")"
                                    if len(loso["per_speaker_seeds"][s]) > 1 else "")
            for s, a in sorted(accs.items()))))
    if noise_units:
        summary["noise"] = noise = summarize_noise(noise_units)
        a, over = noise["accuracy"], ",".join(map(str, noise["seeds"]))
        for kind in NOISES:
            rows.append((f"noise: {kind} at " + "/".join(str(s) for s in SNRS_DB) + f" dB SNR (seeds {over})",
                         " / ".join(f"{100 * a[f'{kind}_{s}dB']:.1f}%" for s in SNRS_DB)))
        rows.append(("inference per clip (file -> probabilities, 1 thread)", f"{noise['inference_ms_per_clip']:.2f} ms"))
    trained = official + loso_runs
    if trained:
        summary["parameters"] = trained[0]["parameters"]
        summary["training_seconds_mean"] = statistics.mean(u["training_seconds"] for u in trained)
        rows.append(("parameters", f"{summary['parameters']:,}"))
        rows.append(("training wall time per run (mean, 2 cores shared)", f"{summary['training_seconds_mean']:.0f} s"))
        summary["cpus"] = cpus = cpus_of(trained)
        kinds = [c for c in cpus if c != NOT_RECORDED]
        rows.append(("trained on" + (f" {len(kinds)} kinds of CPU (a seed's result differs between them)" if len(kinds) > 1 else ""),
                     "; ".join(cpus)))
    title = config + "".join(f" `--{o}`" for o in overrides or [])
    lines = [f"### {title}", "", "| protocol | result |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], ""]
    _write_json(out / "accuracy.json", summary)
    (out / "accuracy.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return summary


NOT_RECORDED = "not recorded"


def cpus_of(units: list[dict]) -> list[str]:
    """The distinct CPUs the units were trained on (``"MODEL, KERNELS, N thread(s)"``), in first-seen order;
    units from before the CPU was recorded count as ``"not recorded"``."""
    seen: dict[str, None] = {}
    for unit in units:
        cpu = unit.get("cpu")
        seen[f"{cpu['model']}, {cpu['capability']}, {cpu['threads']} thread(s)" if cpu else NOT_RECORDED] = None
    return list(seen)


def loso_unit_name(speaker: str, seed: int) -> str:
    """``loso-SPEAKER`` for seed 0 (the one-seed protocol's name), ``loso-SPEAKER-seedN`` for others."""
    return f"loso-{speaker}" if seed == 0 else f"loso-{speaker}-seed{seed}"


def noise_unit_name(seed: int) -> str:
    """``noise`` for seed 0 (the one-seed protocol's name), ``noise-seedN`` for the other official seeds."""
    return "noise" if seed == 0 else f"noise-seed{seed}"


def summarize_noise(by_seed: dict[int, dict]) -> dict:
    """Noise figures from the noise units of several official seeds: per condition (``clean``,
    ``white_10dB``, ...) the mean (``accuracy``) and std over seeds, and each seed's own scores;
    the inference time per clip is the fastest seed's (ms)."""
    seeds = sorted(by_seed)
    conditions = list(by_seed[seeds[0]]["accuracy"])
    values = {c: [by_seed[seed]["accuracy"][c] for seed in seeds] for c in conditions}
    return {
        "seeds": seeds, "count": by_seed[seeds[0]]["count"],
        "accuracy": {c: statistics.mean(v) for c, v in values.items()},
        "std": {c: statistics.stdev(v) if len(v) > 1 else 0.0 for c, v in values.items()},
        "per_seed": {seed: by_seed[seed]["accuracy"] for seed in seeds},
        "checkpoints": [by_seed[seed]["checkpoint"] for seed in seeds],
        # the fastest seed's timing: the one least slowed by other work on the machine (as timeit takes the minimum)
        "inference_ms_per_clip": min(by_seed[seed]["inference_ms_per_clip"] for seed in seeds),
    }


def summarize_loso(runs: list[dict]) -> dict:
    """LOSO figures from fold units (each with ``name``, ``seed``, ``test_acc``): a speaker's
    accuracy is the mean over the seeds it was held out with; ``mean`` and ``worst`` are over
    speakers; ``mean_per_seed`` holds the LOSO mean of each seed that has every speaker's fold."""
    by_speaker: dict[str, dict[int, float]] = {}
    for unit in runs:
        speaker = unit["name"].removeprefix("loso-")
        seed = int(unit.get("seed", 0))
        speaker = speaker.removesuffix(f"-seed{seed}") if seed else speaker
        by_speaker.setdefault(speaker, {})[seed] = unit["test_acc"]
    accs = {s: statistics.mean(v.values()) for s, v in sorted(by_speaker.items())}
    worst = min(accs, key=accs.get)
    seeds = sorted({seed for v in by_speaker.values() for seed in v})
    complete = [seed for seed in seeds if all(seed in v for v in by_speaker.values())]
    return {
        "per_speaker": accs, "mean": statistics.mean(accs.values()), "worst": [worst, accs[worst]], "folds": len(accs),
        "seeds": seeds, "per_speaker_seeds": {s: dict(sorted(v.items())) for s, v in sorted(by_speaker.items())},
        "mean_per_seed": {seed: statistics.mean(v[seed] for v in by_speaker.values()) for seed in complete},
    }


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _seeds_note(loso: dict) -> str:
    """``, 2 seeds`` when a LOSO summary averages seeds (and the seeds' range of the LOSO mean)."""
    seeds = loso.get("seeds") or [0]
    if len(seeds) < 2:
        return ""
    means = list((loso.get("mean_per_seed") or {}).values())
    spread = f": {_percent(min(means))}-{_percent(max(means))}" if len(means) > 1 else ""
    return f", {len(seeds)} seeds{spread}"


def compare(outs: list[Path]) -> str:
    """One Markdown row per results folder (its ``accuracy.json``): the configs side by side, then
    a table of LOSO accuracy per held-out speaker. Partial protocols are marked with the number of
    seeds/folds they hold."""
    lines = [
        "| config | params | official test (seeds) | LOSO mean (folds) | LOSO worst | white 20/10/5 dB | babble 20/10/5 dB "
        "| train s/run | ms/clip |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    names: list[str] = []
    per_speaker: list[dict] = []
    for out in outs:
        s = json.loads((Path(out) / "accuracy.json").read_text())
        off, loso, noise = s.get("official"), s.get("loso"), s.get("noise")
        cells = [
            f"`{s['config']}`" + "".join(f" `--{o}`" for o in s.get("overrides", [])), f"{s.get('parameters', 0):,}",
            f"{_percent(off['mean'])} ± {_percent(off['std'])} ({len(off['seeds'])})" if off else "–",
            f"{_percent(loso['mean'])} ({loso['folds']}/6{_seeds_note(loso)})" if loso else "–",
            f"{_percent(loso['worst'][1])} ({loso['worst'][0]})" if loso else "–",
        ]
        for kind in NOISES:
            cells.append(" / ".join(_percent(noise["accuracy"][f"{kind}_{db}dB"]) for db in SNRS_DB)
                         + f" ({len(noise.get('seeds', [0]))})" if noise else "–")
        cells.append(f"{s['training_seconds_mean']:.0f}" if "training_seconds_mean" in s else "–")
        cells.append(f"{noise['inference_ms_per_clip']:.1f}" if noise else "–")
        lines.append("| " + " | ".join(cells) + " |")
        names.append(cells[0])
        per_speaker.append((loso or {}).get("per_speaker", {}))
    speakers = sorted({k for row in per_speaker for k in row})
    if speakers:  # LOSO accuracy of each held-out speaker
        lines += ["", "| config | " + " | ".join(speakers) + " | mean |", "|---" * (len(speakers) + 2) + "|"]
        for name, row in zip(names, per_speaker):
            if row:
                mean = _percent(statistics.mean(row.values())) + ("" if len(row) == len(speakers) else f" ({len(row)}/{len(speakers)} folds)")
                lines.append(f"| {name} | " + " | ".join(_percent(row.get(k)) for k in speakers) + f" | {mean} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", help="the experiment to train and score")
    parser.add_argument("--compare", nargs="+", metavar="OUT", default=None,
                        help="print one comparison table of these results folders (trains nothing)")
    parser.add_argument("--protocols", nargs="+", default=["official,loso,noise"],
                        help="official loso noise (space- or comma-separated)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", nargs="+", default=None, help="LOSO speakers (default: all)")
    parser.add_argument("--loso-seeds", type=int, nargs="+", default=None,
                        help="seeds of each LOSO fold (default: the first of --seeds); a speaker's figure is their mean")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results/CONFIG-NAME)")
    parser.add_argument("--root", default=None, help="data root (default $SPOKENWORD_DATA)")
    parser.add_argument("--epochs", type=int, default=None, help="override trainer.max_epochs (smoke runs)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for this process (default 1: the thread count changes the result of a seed)")
    parser.add_argument("--cache-dir", default=None, help="feature cache folder (data.cache_dir)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a `spokenword fit` option for every run, e.g. model.net.init_args.batch_norm=false "
                             "(ablations; recorded in the table); repeatable")
    parser.add_argument("--noise-clips", type=int, default=None, help="score only the first N test clips under noise (smoke runs)")
    args = parser.parse_args(argv)
    if args.compare:
        missing = [o for o in args.compare if not (Path(o) / "accuracy.json").is_file()]
        if missing:  # a typo, or a run stopped before its first summary
            parser.error(f"no accuracy.json in {', '.join(missing)}: run `accuracy.py CONFIG --out FOLDER` "
                         "(with the options it was made with) to make or rebuild it")
        print(compare([Path(o) for o in args.compare]))
        return 0
    if not args.config:
        parser.error("a CONFIG (or --compare OUT ...) is required")
    if not Path(args.config).is_file():
        parser.error(f"no config file {args.config}")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out or Path("benchmarks/results") / Path(args.config).stem)
    protocols = [p.strip() for item in args.protocols for p in item.split(",") if p.strip()]
    unknown = set(protocols) - {"official", "loso", "noise"}
    if unknown:
        parser.error(f"unknown protocols {sorted(unknown)}")
    common = [f"--trainer.max_epochs={args.epochs}"] if args.epochs else []
    common += [f"--{o.removeprefix('--')}" for o in args.override]
    wanted = recipe(args.config, common)
    if args.root:
        common.append(f"--data.root={args.root}")
    if args.cache_dir:
        common.append(f"--data.cache_dir={args.cache_dir}")
    if "official" in protocols or "noise" in protocols:
        seeds = args.seeds if "official" in protocols else args.seeds[:1]
        for seed in seeds:
            path = out / "units" / f"official-seed{seed}.json"
            if _todo(path, wanted):
                _write_json(path, {**train_unit(args.config, out, f"official-seed{seed}", seed,
                                                ["--data.split=official", *common]), "recipe": wanted})
    if "loso" in protocols:
        from spokenword.data.splits import resolve_root
        from spokenword.data.corpora import FSDD

        speakers = args.folds or sorted({r.speaker for r in FSDD().recordings(resolve_root(args.root))})
        for seed in args.loso_seeds or args.seeds[:1]:
            for speaker in speakers:
                name = loso_unit_name(speaker, seed)
                path = out / "units" / f"{name}.json"
                if _todo(path, wanted):
                    _write_json(path, {**train_unit(args.config, out, name, seed,
                                                    ["--data.split=speakers", f"--data.test_speakers=[{speaker}]", *common]),
                                       "recipe": wanted})
    if "noise" in protocols:
        for seed in seeds:
            path = out / "units" / f"{noise_unit_name(seed)}.json"
            if _todo(path, wanted):
                source_path = out / "units" / f"official-seed{seed}.json"
                source = json.loads(source_path.read_text())
                if not Path(source["checkpoint"]).is_file():
                    raise RunMissing(f"{source_path}'s checkpoint {source['checkpoint']} is gone, and the noise protocol "
                                     f"scores it: delete {source_path} to train that seed again")
                _write_json(path, {**noise_unit(source["checkpoint"], args.root, args.noise_clips), "seed": seed,
                                   "recipe": wanted})
    recorded = ([f"trainer.max_epochs={args.epochs}"] if args.epochs else []) + [o.removeprefix("--") for o in args.override]
    summarize(out, args.config, recorded)
    return 0


if __name__ == "__main__":
    from spokenword.data.corpora import DatasetError

    try:
        sys.exit(main())
    except (DatasetError, RecipeChanged, RunMissing) as err:  # missing data, stale results: one line, not a traceback
        sys.exit(f"accuracy.py: {err}")
