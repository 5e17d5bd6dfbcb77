"""Accuracy benchmark: train and score one config under honest protocols, and ensembles of configs.

    python -m benchmarks.accuracy official CONFIG [--seeds 0 1 2]
    python -m benchmarks.accuracy loso CONFIG [--seeds 0] [--folds SPEAKER ...]
    python -m benchmarks.accuracy noise CONFIG [--seeds 0 1 2] [--noise-clips N]
    python -m benchmarks.accuracy noise CONFIG --loso      # the LOSO folds' runs in recorded noise
    python -m benchmarks.accuracy summary CONFIG            # rebuild the result from the units there; trains nothing
    python -m benchmarks.accuracy import RUN [--config CONFIG]   # a finished `spokenword fit` run as an official unit
    python -m benchmarks.accuracy compare NAME|FOLDER ...  # results side by side
    python -m benchmarks.accuracy ensemble NAME|FOLDER NAME|FOLDER ... [--checkpoint last] [--noise [--seed S | --loso]]

Config options of official/loso/noise/summary/import: ``--epochs N``, ``--override KEY=VALUE`` (repeatable;
a ``spokenword fit`` option for every run), ``--cache-dir DIR``; shared: ``--data.root``, ``--threads``,
``--out``, ``--name`` (:mod:`benchmarks.common`).

Layout: a config's results folder is ``OUT/accuracy/NAME`` (``NAME``: the config's stem, or ``--name``;
``--folder DIR`` names another folder): ``units/*.json`` (one per seed, fold or noise score; committed),
``runs/`` (the training runs and their checkpoints; git-ignored), and its result
``OUT/accuracy/NAME.json`` (``DIR.json``), rebuilt from the units present after every command.

Protocols (FSDD, through the project's own training path, ``spokenword fit``):

* ``official``: test = takes 0-4, validation = takes 5-9 (model selection), train = takes 10-49;
  one run per seed; mean +- std of test accuracy.
* ``loso``: leave one speaker out: each speaker in turn is the test set, validation = the other
  speakers' takes 5-9 (``data.split: speakers``); mean, worst and per-speaker accuracy. One seed
  per fold (``--seeds``, default 0): a fold's result swings by several points between seeds, so
  with several a speaker's figure is the mean over its seeds, and the spread of the LOSO mean
  between seeds is reported.
* ``noise``: each official-seed checkpoint (trained here first when its unit is missing) scored on
  the official test split with white noise, babble (a sum of 5 training-split recordings of other
  speakers), recorded household noise (``rooms``: the test stretch of the dishes, cat and exercise-bike
  recordings, whose first 70 % the default trains on) and a recorded noise no default config trains on
  (``tap``: the running tap's test stretch), mixed at 20, 10 and 5 dB SNR (white and babble over the
  whole clip; recorded noise over the speech) with deterministic noise, the same for every seed, through
  :class:`spokenword.inference.checkpoint.Classifier`'s preprocessing; mean (and std) over the seeds.
  Also the inference time per clip (ms, 1 thread, file to probabilities, the first 100 test clips).
  ``noise --loso``: each LOSO fold's run on its held-out speaker with the rooms and tap noise.
* ``ensemble``: every LOSO run of a fold in the given results folders is a member of that fold's
  ensemble (all seeds and, with several folders, each recipe's runs); each member scores the held-out
  speaker's 500 recordings through its own checkpoint's preprocessing, and the ensemble decides by the
  mean of the members' probabilities; nothing is chosen on the held-out speaker. Per speaker: the
  members' mean accuracy and the ensemble's, with the LOSO mean and worst of both. ``--checkpoint last``
  takes each run's last epoch instead of its best validation epoch. ``--noise`` scores the ensemble
  of the folders' official-split runs of seed ``--seed`` (:class:`spokenword.inference.ensemble.Ensemble`)
  under the noise protocol, beside each member's own noise unit; ``--noise --loso`` each fold's ensemble on
  its held-out speaker with the rooms and tap noise, at the fold's cross-validated threshold. The ensemble's result is
  ``OUT/accuracy/A+B.json``.

Every unit is saved as its own JSON under ``units/`` and skipped when present, so runs are resumable
and several processes can share a folder (e.g. one fold each). A unit records its recipe (a hash of the
config file's values and the options that change training); a unit made with another recipe (the config
edited since, other ``--epochs`` or ``--override``) is never mixed in: the command stops and says so.
Training uses one torch thread unless ``--threads`` says otherwise: the thread count changes float
rounding and so the result of a seed, and a rerun must give the same figures (run folds in parallel
processes for speed). So does the CPU: another kind of processor (other torch kernels, e.g. AVX2
against AVX512) gives a seed another result, so each unit records its CPU and the table lists them.

The form from before the suite, ``python benchmarks/accuracy.py CONFIG [--protocols official,loso,noise]
[--loso-seeds ...] [--root DIR] [--out FOLDER]`` and ``--compare FOLDER ...``, still runs (``--out`` is
then the results folder itself, as ``--folder``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

if __package__ in (None, ""):  # run by path (the form from before the suite): make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402
from spokenword.data.corpora.negatives import ROOM_NOISES  # noqa: E402  (torch-free)

SNRS_DB = (20, 10, 5)
#: ``rooms``: the test stretch of recorded household noise the default trains on (its first 70 %);
#: ``tap``: a recorded noise no default config trains on (tests/unit/test_room_noise.py)
NOISES = ("white", "babble", "rooms", "tap")
UNSEEN = "running_tap"
ROOMS = tuple(name for name in ROOM_NOISES if name != UNSEEN)
#: the noises of the LOSO protocol in noise (``noise CONFIG --loso``, ``ensemble ... --noise --loso``)
LOSO_NOISES = ("rooms", "tap")
BABBLE_TALKERS = 5
PROTOCOLS = ("official", "loso", "noise")
#: clips of FSDD's official test split (takes 0-4 of 6 speakers x 10 digits)
OFFICIAL_TEST_CLIPS = 300
NOT_RECORDED = "not recorded"

PROTOCOL_TEXT = {
    "official": ("FSDD official split: test = takes 0-4 (300 clips), validation = takes 5-9 (checkpoint selection), "
                 "train = takes 10-49; one `spokenword fit` run per seed; mean ± std of test accuracy over the seeds"),
    "loso": ("FSDD leave-one-speaker-out: each speaker's 500 recordings in turn are the test set, validation = the "
             "other speakers' takes 5-9 (data.split: speakers); a speaker's figure is the mean over its seeds; "
             "mean and worst over the speakers"),
    "noise": ("each official-seed checkpoint on the official test split (300 clips) with white noise, babble "
              "(5 training-split recordings of other speakers), recorded room noise (rooms: the test stretch, last "
              "15 %, of the dishes, cat and exercise-bike recordings) and a recorded noise no default config trains "
              "on (tap: the running tap's test stretch) mixed at 20/10/5 dB SNR (white and babble over the whole "
              "clip, recorded noise over the speech), the same deterministic noise for every seed, through "
              "Classifier's preprocessing; mean over the seeds; inference ms per clip: file to probabilities, 1 "
              "thread, first 100 test clips, the fastest seed's"),
    "loso_noise": ("each LOSO fold's run (seed 0) on its held-out speaker's 500 recordings, clean and with the "
                   "noise protocol's rooms and tap noise at 20/10/5 dB SNR over the speech; the model's own answers; "
                   "mean and worst speaker"),
    "ensemble_loso_noise": ("each LOSO fold's ensemble (every finished run of the fold in the member folders) on the "
                            "held-out speaker's 500 recordings, clean and with the noise protocol's rooms and tap "
                            "noise at 20/10/5 dB SNR over the speech, answering at the fold's cross-validated word "
                            "threshold (from the other folds; the ensemble's LOSO result) where measured; mean and "
                            "worst speaker"),
    "ensemble_loso": ("FSDD leave-one-speaker-out: every finished LOSO run of a fold in the member folders "
                      "({checkpoint} checkpoint) scores the held-out speaker's 500 recordings through its own "
                      "preprocessing; the ensemble decides by the mean of the members' probabilities (members with "
                      "_unknown_/_silence_ outputs decide whether it is a digit); with the non-digit data, also the "
                      "test speakers' other words and the test part of the noise recordings, at reject_below "
                      "calibrated on the fold's validation data (other speakers' takes 5-9, validation words and noise)"),
    "ensemble_noise": ("the ensemble (mean of probabilities) of the members' official-split runs of seed {seed} on the "
                       "official test split, clean and with the noise protocol's noises at 20/10/5 dB SNR, "
                       "answering at the word threshold its LOSO result chose (reject_below; none before it is measured); "
                       "inference ms per clip: file to probabilities, 1 thread, first 100 test clips"),
}


# -- recipes and units ---------------------------------------------------------------------------

def recipe(config: str, options: list[str]) -> str:
    """Hash of what a unit's result depends on: the config file's values (not its comments, nor
    the logger, which only says where runs are written) and the training options (not where the
    data or the cache are). It fingerprints the file: units made before the suite keep their hash."""
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
                            f"changed since): use another --name, or delete {path.parent} to start again")
    return False


def loso_unit_name(speaker: str, seed: int) -> str:
    """``loso-SPEAKER`` for seed 0 (the one-seed protocol's name), ``loso-SPEAKER-seedN`` for others."""
    return f"loso-{speaker}" if seed == 0 else f"loso-{speaker}-seed{seed}"


def noise_unit_name(seed: int) -> str:
    """``noise`` for seed 0 (the one-seed protocol's name), ``noise-seedN`` for the other official seeds."""
    return "noise" if seed == 0 else f"noise-seed{seed}"


def checkpoint_of(folder: Path, unit: dict) -> Path:
    """A unit's checkpoint: the path it recorded or, when the folder was moved or copied since, the
    same file under ``folder/runs/<unit name>/version_0/checkpoints``."""
    recorded = Path(unit["checkpoint"])
    if recorded.is_file():
        return recorded
    moved = Path(folder) / "runs" / unit.get("name", "") / "version_0" / "checkpoints" / recorded.name
    return moved if moved.is_file() else recorded


def train_unit(config: str, out: Path, name: str, seed: int, overrides: list[str]) -> dict:
    """One ``spokenword fit`` run (config + overrides) under ``out/runs/name``; returns its report's key figures."""
    from spokenword.training.cli import run

    run_dir = out / "runs" / name / "version_0"
    argv = [
        "fit", "--config", config, f"--seed_everything={seed}",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={out / 'runs'}", f"--trainer.logger.init_args.name={name}",
        "--trainer.logger.init_args.version=0", *overrides,
    ]
    run(argv)
    return unit_of_report(json.loads((run_dir / "report.json").read_text()), name, seed)


def rejection_figures(report: dict) -> dict:
    """For a run whose labels include ``_unknown_``/``_silence_`` (its test part then holds other words and
    noise too): ``test_acc`` over the digits alone (a digit answered "not a digit" is wrong), the rate of
    digits rejected and of each rejection label's clips accepted as a digit, from the report's confusion
    matrix (the model's own answer, no threshold). Empty for other runs."""
    from spokenword.labels import is_rejection

    labels = report.get("labels") or []
    rejections = [i for i, label in enumerate(labels) if is_rejection(label)]
    if not rejections or "confusion_matrix" not in report:
        return {}
    m = np.asarray(report["confusion_matrix"])
    words = [i for i in range(len(labels)) if i not in rejections]
    digits = int(m[words].sum())
    return {"test_acc": float(sum(m[i, i] for i in words) / digits), "test_count": digits,
            "test_acc_with_negatives": report["test"]["acc"],
            "false_reject": float(m[np.ix_(words, rejections)].sum() / digits),
            "false_accept": {labels[r]: float(m[r, words].sum() / m[r].sum()) for r in rejections if m[r].sum()}}


def unit_of_report(report: dict, name: str, seed: int) -> dict:
    """A training run's ``report.json`` as a unit's figures."""
    return {
        "name": name, "seed": seed, "split": report["split"], "protocol": report["protocol"],
        "test_acc": report["test"]["acc"], "test_count": report["test"]["count"], **rejection_figures(report),
        "val_best_acc": report["validation"]["best_acc"], "parameters": report["parameters"],
        "epochs": report["epochs"], "training_seconds": report["training_seconds"],
        "checkpoint": report["checkpoint"],
        "cpu": report.get("provenance", {}).get("cpu"),  # a seed's result differs between CPUs (float kernels)
        "precision": report.get("provenance", {}).get("precision"),  # float32 where bf16 would be emulated
    }


class Noises:
    """The benchmark's noise for clips at ``rate`` Hz: white, babble (a sum of ``BABBLE_TALKERS``
    recordings the caller picks, never the scored speaker's), ``rooms`` (a random stretch of one of
    :data:`ROOMS`' test parts) and ``tap`` (of :data:`UNSEEN`'s test part). White and babble are
    mixed at the SNR over the whole clip (as they always were); recorded noise over the speech (the
    clip without its leading and trailing frames 30 dB under its loudest), as a user's room is measured."""

    def __init__(self, root: Path, rate: int, subset: str = "test"):
        self.root, self.rate, self.subset = Path(root), rate, subset  # subset: "val" for choosing a recipe
        self._recorded: dict[str, np.ndarray] = {}

    def recorded(self, name: str) -> np.ndarray:
        if name not in self._recorded:
            from spokenword import audio
            from spokenword.data.corpora.negatives import NOISE_FOLDER, WORDS_FOLDER, stretch

            from spokenword.data.corpora import DatasetError

            path = self.root / WORDS_FOLDER / NOISE_FOLDER / f"{name}.wav"
            if not path.is_file():
                raise DatasetError(f"{path} is missing: the benchmark's recorded noise comes from {WORDS_FOLDER} "
                                   "(../shared/data, or --data.root)")
            self._recorded[name] = stretch(audio.load(path, self.rate, max_seconds=3600.0), self.subset)
        return self._recorded[name]

    def mix(self, kind: str, wave: np.ndarray, snr: float, rng: np.random.Generator,
            talkers: Callable[[], list[np.ndarray]] | None = None) -> np.ndarray:
        """``wave`` ``(T,)`` with noise of ``kind`` at ``snr`` dB; ``talkers()`` gives babble's recordings."""
        from spokenword.data.wave_augment import babble, mix_at_snr
        from spokenword.frontend.host import trim_silence

        if kind == "white":
            return mix_at_snr(wave, rng.standard_normal(len(wave)), snr)
        if kind == "babble":
            return mix_at_snr(wave, babble(talkers(), len(wave)), snr)
        names = ROOMS if kind == "rooms" else (UNSEEN,)
        noise = self.recorded(names[int(rng.integers(len(names)))])
        start = int(rng.integers(max(1, len(noise) - len(wave))))
        hop = self.rate // 100
        return mix_at_snr(wave, noise[start:start + len(wave)], snr, speech=trim_silence(wave, 30.0, hop, hop))


def noisy_accuracy(clf, test: list, noises: tuple[str, ...], root: Path, babble_pool: list | None = None) -> dict:
    """Accuracy of ``clf``'s answers on recordings ``test`` clean and with each of ``noises`` at ``SNRS_DB``
    (deterministic noise: the same for every model). ``babble_pool``: recordings babble is drawn from (those
    of the clip's own speaker are skipped)."""
    clean = [clf.waveform(r.path) for r in test]
    truth = [r.label for r in test]
    maker = Noises(root, clf.sample_rate)

    def accuracy(waves: list[np.ndarray]) -> float:
        probs = np.asarray(clf.probabilities([clf.featurize(w) for w in waves]))
        return float(np.mean([clf.rank(p, 1)[0]["label"] == t for p, t in zip(probs, truth)]))

    scores = {"clean": accuracy(clean)}
    for kind in noises:
        for snr in SNRS_DB:
            rng = np.random.default_rng(1000 * snr + NOISES.index(kind))
            noisy = []
            for rec, wave in zip(test, clean):
                def talkers(rec=rec):
                    pool = [r for r in babble_pool if r.speaker != rec.speaker]
                    return [clf.waveform(pool[i].path) for i in rng.choice(len(pool), size=BABBLE_TALKERS, replace=False)]
                noisy.append(maker.mix(kind, wave, snr, rng, talkers))
            scores[f"{kind}_{snr}dB"] = accuracy(noisy)
    return scores


def noise_unit(checkpoint: str | list[str], root: str | None, clips: int | None = None,
               reject_below: float | None = None) -> dict:
    """Official-split test accuracy, clean and with each of :data:`NOISES` at ``SNRS_DB`` (the first
    ``clips`` test recordings when given: smoke runs), of the model's answers at ``reject_below`` (``None``:
    its own best label; a digit answered "not a digit" is wrong). Several checkpoints are scored as one
    :class:`spokenword.inference.ensemble.Ensemble` (``ensemble --noise``)."""
    import torch

    from spokenword.data.corpora import FSDD
    from spokenword.data.splits import make_split, resolve_root
    from spokenword.inference.load import load_model

    checkpoints = [checkpoint] if isinstance(checkpoint, (str, os.PathLike)) else list(checkpoint)
    clf = load_model(*checkpoints, reject_below=reject_below)  # several: their Ensemble
    root = resolve_root(root)
    split = make_split(FSDD().recordings(root), "official")
    test = split.test[:clips] if clips else split.test
    scores = noisy_accuracy(clf, test, NOISES, root, split.train)  # babble: training recordings, never test clips
    torch.set_num_threads(1)
    start = time.perf_counter()
    timed = test[:100]
    for rec in timed:
        clf(rec.path)
    ms = 1000 * (time.perf_counter() - start) / len(timed)
    checkpoint = str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else [str(c) for c in checkpoint]
    return {"checkpoint": checkpoint, "count": len(test), "accuracy": scores, "inference_ms_per_clip": ms}


def loso_noise_unit(checkpoints: list, speaker: str, root: str | None, clips: int | None = None,
                    reject_below: float | None = None) -> dict:
    """A LOSO fold in noise: the held-out ``speaker``'s digits (the first ``clips``), clean and with each of
    :data:`LOSO_NOISES` at ``SNRS_DB``, scored by the fold's model (several checkpoints: their ensemble)."""
    from spokenword.data.corpora import FSDD
    from spokenword.data.splits import make_split, resolve_root
    from spokenword.inference.load import load_model

    clf = load_model(*checkpoints, reject_below=reject_below)
    root = resolve_root(root)
    split = make_split(FSDD().recordings(root), "speakers", [speaker])
    test = split.test[:clips] if clips else split.test
    return {"speaker": speaker, "checkpoints": [str(c) for c in checkpoints], "count": len(test),
            "reject_below": reject_below, "accuracy": noisy_accuracy(clf, test, LOSO_NOISES, root)}


# -- one config's protocols ----------------------------------------------------------------------

@dataclass
class Setup:
    """One config's results folder and the options every run of it gets."""

    config: str
    folder: Path
    epochs: int | None = None
    overrides: list[str] = field(default_factory=list)  # KEY=VALUE, as given (no leading --)
    root: str | None = None
    cache_dir: str | None = None

    @property
    def training(self) -> list[str]:
        """The ``spokenword fit`` options that change training (and so the recipe)."""
        return ([f"--trainer.max_epochs={self.epochs}"] if self.epochs else []) + [f"--{o}" for o in self.overrides]

    @property
    def wanted(self) -> str:
        return recipe(self.config, self.training)

    @property
    def fit_options(self) -> list[str]:
        return self.training + ([f"--data.root={self.root}"] if self.root else []) + (
            [f"--data.cache_dir={self.cache_dir}"] if self.cache_dir else [])

    @property
    def recorded(self) -> list[str]:
        """The options as the summary lists them (``trainer.max_epochs=N`` first)."""
        return ([f"trainer.max_epochs={self.epochs}"] if self.epochs else []) + list(self.overrides)


def run_official(s: Setup, seeds: list[int]) -> None:
    for seed in seeds:
        path = s.folder / "units" / f"official-seed{seed}.json"
        if _todo(path, s.wanted):
            unit = train_unit(s.config, s.folder, f"official-seed{seed}", seed, ["--data.split=official", *s.fit_options])
            common.write_json(path, {**unit, "recipe": s.wanted})


def speakers(root: str | None) -> list[str]:
    from spokenword.data.corpora import FSDD
    from spokenword.data.splits import resolve_root

    return sorted({r.speaker for r in FSDD().recordings(resolve_root(root))})


def run_loso(s: Setup, seeds: list[int], folds: list[str] | None) -> None:
    for seed in seeds:
        for speaker in folds or speakers(s.root):
            name = loso_unit_name(speaker, seed)
            path = s.folder / "units" / f"{name}.json"
            if _todo(path, s.wanted):
                unit = train_unit(s.config, s.folder, name, seed,
                                  ["--data.split=speakers", f"--data.test_speakers=[{speaker}]", *s.fit_options])
                common.write_json(path, {**unit, "recipe": s.wanted})


def run_noise(s: Setup, seeds: list[int], clips: int | None) -> None:
    """Score each seed's official checkpoint in noise, training the official seeds that are missing."""
    run_official(s, seeds)
    for seed in seeds:
        path = s.folder / "units" / f"{noise_unit_name(seed)}.json"
        if _todo(path, s.wanted):
            source_path = s.folder / "units" / f"official-seed{seed}.json"
            source = json.loads(source_path.read_text())
            checkpoint = checkpoint_of(s.folder, source)
            if not checkpoint.is_file():
                raise RunMissing(f"{source_path}'s checkpoint {source['checkpoint']} is gone, and the noise protocol "
                                 f"scores it: delete {source_path} to train that seed again")
            common.write_json(path, {**noise_unit(str(checkpoint), s.root, clips), "seed": seed, "recipe": s.wanted})


def run_loso_noise(s: Setup, clips: int | None) -> None:
    """Score each finished LOSO fold's checkpoint (seed 0) on its held-out speaker in noise (:data:`LOSO_NOISES`)."""
    units = _units(s.folder)
    folds = {k.removeprefix("loso-"): u for k, u in units.items()
             if k.startswith("loso-") and int(u.get("seed", 0)) == 0}
    if not folds:
        raise RunMissing(f"no LOSO units in {s.folder / 'units'}: run `python -m benchmarks.accuracy loso {s.config}` first")
    for speaker, unit in sorted(folds.items()):
        path = s.folder / "units" / f"noise-loso-{speaker}.json"
        if _todo(path, s.wanted):
            checkpoint = checkpoint_of(s.folder, unit)
            if not checkpoint.is_file():
                raise RunMissing(f"{speaker}'s LOSO checkpoint {checkpoint} is gone: delete its unit to train that fold again")
            common.write_json(path, {**loso_noise_unit([checkpoint], speaker, s.root, clips), "recipe": s.wanted})


def import_run(s: Setup, run_dir: Path) -> Path:
    """A finished ``spokenword fit`` run of ``s.config`` (with ``s``'s ``--epochs``/``--override``) on the official
    split (``RUN/report.json``, ``RUN/config.yaml``) as unit ``official-seedN`` (N: the run's
    ``seed_everything``), as if ``official`` had trained it. Refused when the run's saved config disagrees
    with the config file and options (the file edited since, other options), when it is not an
    official-split run, or when the unit exists."""
    import yaml

    report = json.loads((run_dir / "report.json").read_text())
    saved = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    if report.get("split") != "official":
        raise RecipeChanged(f"{run_dir} is a {report.get('split')!r} split run; only official-split runs can be imported")
    values = yaml.safe_load(Path(s.config).read_text()) or {}
    if isinstance(values.get("trainer"), dict):
        values["trainer"].pop("logger", None)
    for option in s.training:
        key, _, value = option.removeprefix("--").partition("=")
        *parents, leaf = key.split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    differences = _differences(values, saved)
    if differences:
        raise RecipeChanged(f"{run_dir} was not made with {s.config} as it is now"
                            + (" and these options" if s.training else "") + ": " + "; ".join(differences[:5]))
    seed = int(saved.get("seed_everything", 0))
    path = s.folder / "units" / f"official-seed{seed}.json"
    if path.exists():
        raise RecipeChanged(f"{path} exists: delete it first to replace it by {run_dir}")
    unit = unit_of_report(report, f"official-seed{seed}", seed)
    threads = (unit.get("cpu") or {}).get("threads")
    if threads not in (None, 1):
        print(f"note: {run_dir} trained with {threads} torch threads; the benchmark's own runs use 1", file=sys.stderr)
    return common.write_json(path, {**unit, "recipe": s.wanted, "imported_from": str(run_dir)})


def _differences(source, saved, key: str = "") -> list[str]:
    """Where the saved (expanded) config ``saved`` lacks or changes a value that ``source`` sets."""
    if isinstance(source, dict):
        if not isinstance(saved, dict):
            return [f"{key}: {saved!r} is not a mapping"]
        return [d for k, v in source.items()
                for d in (_differences(v, saved[k], f"{key}.{k}".lstrip(".")) if k in saved else [f"{key}.{k}: not in the run".lstrip(".")])]
    if isinstance(source, list):
        if not isinstance(saved, list) or len(saved) != len(source):
            return [f"{key}: {source!r} in the config, {saved!r} in the run"]
        return [d for i, (a, b) in enumerate(zip(source, saved)) for d in _differences(a, b, f"{key}[{i}]")]
    if source == saved:
        return []
    try:  # YAML reads 3e-3 as a string; the saved config holds the float
        if not isinstance(source, bool) and not isinstance(saved, bool) and float(source) == float(saved):
            return []
    except (TypeError, ValueError):
        pass
    return [f"{key}: {source!r} in the config, {saved!r} in the run"]


# -- summaries -----------------------------------------------------------------------------------

def _units(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((Path(folder) / "units").glob("*.json"))}


def summarize(out: Path, config: str, overrides: list[str] | None = None, *, epochs: int | None = None,
              root: str | None = None, wanted: str | None = None) -> dict:
    """Aggregate ``out/units/*.json`` into the figures (returned) and write the result file
    ``out.json`` (see the module docstring). ``overrides``: the options as listed (KEY=VALUE);
    ``epochs``: ``--epochs`` when given; ``wanted``: the recipe every unit must have (checked when given);
    ``root``: the data root (the LOSO command lists its folds unless they are all of FSDD's speakers)."""
    out = Path(out)
    units = _units(out)
    if wanted:
        for name, unit in units.items():
            if unit.get("recipe") not in (None, wanted):
                raise RecipeChanged(f"{out / 'units' / name}.json was made with another recipe than {config} "
                                    "with these options: give the options it was made with, or another --name")
    extra = [o for o in overrides or [] if not (epochs and o == f"trainer.max_epochs={epochs}")]
    recorded = ([f"trainer.max_epochs={epochs}"] if epochs else []) + extra
    official = [u for k, u in units.items() if k.startswith("official-seed")]
    loso_runs = [u for k, u in units.items() if k.startswith("loso-")]
    noise_units = {int(u.get("seed", 0)): u for k, u in units.items() if k == "noise" or k.startswith("noise-seed")}
    loso_noise = {u["speaker"]: u for k, u in units.items() if k.startswith("noise-loso-")}
    summary: dict = {"config": config, "overrides": recorded}
    commands, protocols = {}, {}
    options = _command_options(out, config, epochs, extra)
    if official:
        accs = [u["test_acc"] for u in official]
        seeds = [u["seed"] for u in official]
        summary["official"] = {
            "seeds": seeds, "test_acc": accs, "mean": statistics.mean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        }
        imported = {u["seed"]: u["imported_from"] for u in official if u.get("imported_from")}
        if imported:
            summary["official"]["imported_from"] = imported
        commands["official"] = _command("official", config, ["--seeds", *map(str, sorted(seeds))], options)
        protocols["official"] = PROTOCOL_TEXT["official"]
    if loso_runs:
        summary["loso"] = loso = summarize_loso(loso_runs)
        args = [] if loso["seeds"] == [0] else ["--seeds", *map(str, loso["seeds"])]
        folds = sorted(loso["per_speaker"])
        if folds != _all_speakers(root):
            args += ["--folds", *folds]
        commands["loso"] = _command("loso", config, args, options)
        protocols["loso"] = PROTOCOL_TEXT["loso"]
    if noise_units:
        summary["noise"] = noise = summarize_noise(noise_units)
        args = ["--seeds", *map(str, noise["seeds"])]
        if noise["count"] != OFFICIAL_TEST_CLIPS:
            args += ["--noise-clips", str(noise["count"])]
        commands["noise"] = _command("noise", config, args, options)
        protocols["noise"] = PROTOCOL_TEXT["noise"]
    if loso_noise:
        summary["loso_noise"] = summarize_loso_noise(loso_noise)
        args = ["--loso"] + (["--noise-clips", str(summary["loso_noise"]["count"])]
                             if summary["loso_noise"]["count"] != 500 else [])
        commands["loso_noise"] = _command("noise", config, args, options)
        protocols["loso_noise"] = PROTOCOL_TEXT["loso_noise"]
    trained = official + loso_runs
    if trained:
        summary["parameters"] = trained[0]["parameters"]
        summary["training_seconds_mean"] = statistics.mean(u["training_seconds"] for u in trained)
        summary["cpus"] = cpus_of(trained)
    hashes = sorted({u["recipe"] for u in units.values() if u.get("recipe")})
    rec = {"config": config, "epochs": epochs, "overrides": extra,
           "hash": wanted or (hashes[0] if len(hashes) == 1 else hashes or None)}
    _write_summary(out, summary, protocols, commands, rec, units)
    return summary


def _write_summary(out: Path, summary: dict, protocols: dict, commands: dict, rec: dict, units: dict) -> Path:
    """The result file of a results folder: ``out.json`` beside ``out``."""
    record = {"benchmark": "accuracy", "name": out.name, "protocol": protocols, "command": commands,
              "machine": common.machine(), "recipe": rec, "figures": summary, "units": units}
    return common.write_json(out.with_suffix(".json"), record)


def _all_speakers(root: str | None) -> list[str]:
    """FSDD's speakers (from the data; none when it is not there: the command then lists its folds)."""
    from spokenword.data.corpora import DatasetError

    try:
        return speakers(root)
    except (DatasetError, OSError):  # no data here: the command names its folds
        return []


def _command_options(out: Path, config: str, epochs: int | None, overrides: list[str]) -> list[str]:
    """The options that make a command write to ``out`` with this recipe."""
    args = [f"--epochs={epochs}"] if epochs else []
    for o in overrides:
        args += ["--override", o]
    out = Path(out)
    if out.parent.name == "accuracy":
        root = out.parent.parent
        if root.resolve() != common.RESULTS.resolve():
            args += ["--out", common.relative(root)]
        if out.name != Path(config).stem:
            args += ["--name", out.name]
    else:
        args += ["--folder", common.relative(out)]
    return args


def _command(protocol: str, config: str, args: list[str], options: list[str]) -> str:
    return shlex.join(["python", "-m", "benchmarks.accuracy", protocol, config, *args, *options])


def cpus_of(units: list[dict]) -> list[str]:
    """The distinct CPUs the units were trained on (``"MODEL, KERNELS, N thread(s)[, PRECISION]"``, the precision
    where the unit recorded it), in first-seen order; units from before the CPU was recorded count as ``"not recorded"``."""
    seen: dict[str, None] = {}
    for unit in units:
        cpu, precision = unit.get("cpu"), unit.get("precision")
        kind = f"{cpu['model']}, {cpu['capability']}, {cpu['threads']} thread(s)" if cpu else NOT_RECORDED
        seen[kind + (f", {precision}" if cpu and precision else "")] = None
    return list(seen)


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


def summarize_loso_noise(by_speaker: dict[str, dict]) -> dict:
    """LOSO figures in noise from the folds' noise units: per condition the mean and worst speaker, and
    each speaker's scores."""
    speakers_seen = sorted(by_speaker)
    conditions = list(by_speaker[speakers_seen[0]]["accuracy"])
    figures: dict = {"count": by_speaker[speakers_seen[0]]["count"], "per_speaker": {}, "mean": {}, "worst": {}}
    for c in conditions:
        values = {sp: by_speaker[sp]["accuracy"][c] for sp in speakers_seen}
        worst = min(values, key=values.get)
        figures["mean"][c], figures["worst"][c] = statistics.mean(values.values()), [worst, values[worst]]
    figures["per_speaker"] = {sp: by_speaker[sp]["accuracy"] for sp in speakers_seen}
    return figures


def loso_noise_rows(figures: dict) -> list[tuple[str, str]]:
    """Table rows of LOSO in noise: clean, then each noise's SNRs (mean, worst in brackets)."""
    mean, worst = figures["mean"], figures["worst"]
    kinds = [k for k in NOISES if f"{k}_{SNRS_DB[0]}dB" in mean]
    rows = [(f"LOSO clean ({len(figures['per_speaker'])} folds): mean (worst)",
             f"{100 * mean['clean']:.1f} ({100 * worst['clean'][1]:.1f} {worst['clean'][0]})")]
    for kind in kinds:
        rows.append((f"LOSO {kind} at " + "/".join(map(str, SNRS_DB)) + " dB: mean (worst)",
                     " / ".join(f"{100 * mean[f'{kind}_{d}dB']:.1f} ({100 * worst[f'{kind}_{d}dB'][1]:.1f})" for d in SNRS_DB)))
    return rows


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


def table(summary: dict) -> str:
    """One config's summary as a Markdown table (protocol | result)."""
    rows = []
    if "official" in summary:
        off = summary["official"]
        rows.append(("official split, test takes 0-4, seeds " + ",".join(str(s) for s in off["seeds"]),
                     f"{100 * off['mean']:.2f} ± {100 * off['std']:.2f}%"))
    if "loso" in summary:
        loso = summary["loso"]
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
    if "noise" in summary:
        noise = summary["noise"]
        a, over = noise["accuracy"], ",".join(map(str, noise["seeds"]))
        for kind in (k for k in NOISES if f"{k}_{SNRS_DB[0]}dB" in a):  # results from before rooms/tap lack them
            rows.append((f"noise: {kind} at " + "/".join(str(s) for s in SNRS_DB) + f" dB SNR (seeds {over})",
                         " / ".join(f"{100 * a[f'{kind}_{s}dB']:.1f}%" for s in SNRS_DB)))
        rows.append(("inference per clip (file -> probabilities, 1 thread)", f"{noise['inference_ms_per_clip']:.2f} ms"))
    if "loso_noise" in summary:
        rows += loso_noise_rows(summary["loso_noise"])
    if "parameters" in summary:
        rows.append(("parameters", f"{summary['parameters']:,}"))
        rows.append(("training wall time per run (mean)", f"{summary['training_seconds_mean']:.0f} s"))
        kinds = [c for c in summary["cpus"] if c != NOT_RECORDED]
        rows.append(("trained on" + (f" {len(kinds)} kinds of CPU (a seed's result differs between them)" if len(kinds) > 1 else ""),
                     "; ".join(summary["cpus"])))
    title = summary["config"] + "".join(f" `--{o}`" for o in summary.get("overrides") or [])
    return "\n".join([f"### {title}", "", "| protocol | result |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], ""])


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


def read_summary(where: Path | str, results: Path = common.RESULTS) -> dict:
    """The figures of a config's results: ``where`` is its result file, its folder, or its name under
    ``results/accuracy``; a folder from before the suite (``FOLDER/accuracy.json``) is read as it is."""
    where = Path(where)
    candidates = [where] if where.suffix == ".json" else [where.with_suffix(".json"), where / "accuracy.json",
                                                          Path(results) / "accuracy" / f"{where}.json"]
    for path in candidates:
        if path.is_file():
            data = json.loads(path.read_text())
            return data["figures"] if "figures" in data else data
    raise FileNotFoundError(f"no result for {where}: run `python -m benchmarks.accuracy summary CONFIG` "
                            "(with the options it was made with) to make it")


def compare(outs: list[Path], results: Path = common.RESULTS) -> str:
    """One Markdown row per config's results (see :func:`read_summary`): the configs side by side, then
    a table of LOSO accuracy per held-out speaker. Partial protocols are marked with the number of
    seeds/folds they hold."""
    lines = [
        "| config | params | official test (seeds) | LOSO mean (folds) | LOSO worst | "
        + " | ".join(f"{kind} 20/10/5 dB" for kind in NOISES) + " | train s/run | ms/clip |",
        "|---" * (7 + len(NOISES)) + "|",
    ]
    names: list[str] = []
    per_speaker: list[dict] = []
    for out in outs:
        s = read_summary(out, results)
        off, loso, noise = s.get("official"), s.get("loso"), s.get("noise")
        cells = [
            f"`{s['config']}`" + "".join(f" `--{o}`" for o in s.get("overrides", [])), f"{s.get('parameters', 0):,}",
            f"{_percent(off['mean'])} ± {_percent(off['std'])} ({len(off['seeds'])})" if off else "–",
            f"{_percent(loso['mean'])} ({loso['folds']}/6{_seeds_note(loso)})" if loso else "–",
            f"{_percent(loso['worst'][1])} ({loso['worst'][0]})" if loso else "–",
        ]
        for kind in NOISES:
            cells.append(" / ".join(_percent(noise["accuracy"].get(f"{kind}_{db}dB")) for db in SNRS_DB)
                         + f" ({len(noise.get('seeds', [0]))})" if noise else "–")  # results before rooms/tap: "–"
        cells.append(f"{s['training_seconds_mean']:.0f}" if "training_seconds_mean" in s else "–")
        cells.append(f"{noise['inference_ms_per_clip']:.1f}" if noise else "–")
        lines.append("| " + " | ".join(cells) + " |")
        names.append(cells[0])
        per_speaker.append((loso or {}).get("per_speaker", {}))
    speakers_seen = sorted({k for row in per_speaker for k in row})
    if speakers_seen:  # LOSO accuracy of each held-out speaker
        lines += ["", "| config | " + " | ".join(speakers_seen) + " | mean |", "|---" * (len(speakers_seen) + 2) + "|"]
        for name, row in zip(names, per_speaker):
            if row:
                mean = _percent(statistics.mean(row.values())) + (
                    "" if len(row) == len(speakers_seen) else f" ({len(row)}/{len(speakers_seen)} folds)")
                lines.append(f"| {name} | " + " | ".join(_percent(row.get(k)) for k in speakers_seen) + f" | {mean} |")
    return "\n".join(lines)


# -- ensembles -----------------------------------------------------------------------------------

CHECKPOINTS = {"best": "best-*.ckpt", "last": "last.ckpt"}


def fold_runs(outs: list[Path], checkpoint: str = "best") -> dict[str, list[Path]]:
    """One checkpoint (``best``: best validation; ``last``: the last epoch) of every finished LOSO
    run under ``OUT/runs``, grouped by held-out speaker."""
    folds: dict[str, list[Path]] = {}
    for out in outs:
        for run in sorted(Path(out).glob("runs/loso-*")):
            if not (run / "version_0" / "report.json").exists():  # a fold still training
                continue
            found = sorted(run.glob(f"version_0/checkpoints/{CHECKPOINTS[checkpoint]}"))
            if not found:  # a run without that checkpoint
                continue
            speaker = run.name.removeprefix("loso-").split("-seed")[0]
            folds.setdefault(speaker, []).append(found[-1])
    return folds


def ensemble_loso(outs: list[Path], checkpoint: str, root: str | None) -> dict:
    """Per held-out speaker: the members' mean digit accuracy and the ensemble's (fractions, each model's own
    answers), member counts. Where the non-digit data is present
    (:func:`spokenword.data.corpora.negatives.with_negatives`), also the word threshold ``reject_below`` by
    nested leave-one-speaker-out cross-validation: fold k's threshold minimises the mean of false rejects +
    false accepts over the other folds (their held-out voice's digits, validation words and noise), and fold
    k is scored at it (its held-out voice, test words and noise); ``reject_below`` over all folds is the
    value to ship (``spokenword bundle --reject-below``)."""
    from spokenword.data.corpora import FSDD
    from spokenword.data.corpora.negatives import with_negatives
    from spokenword.data.splits import make_split, resolve_root
    from spokenword.inference.ensemble import Ensemble
    from spokenword.inference.evaluate import calibrate, evaluate, merged
    from spokenword.inference.load import load_model
    from spokenword.labels import is_rejection

    folds = fold_runs(outs, checkpoint)
    if not folds:
        raise RunMissing("no finished LOSO runs under " + ", ".join(f"{o}/runs" for o in outs))
    root = resolve_root(root)
    recordings = with_negatives(FSDD(), root).recordings(root)
    rows: dict[str, dict] = {}
    choosing, testing = {}, {}
    for speaker, checkpoints in sorted(folds.items()):
        split = make_split(recordings, "speakers", [speaker])
        digits = [r for r in split.test if not is_rejection(r.label)]
        members = [load_model(path) for path in checkpoints]
        accs = [evaluate(m, digits).accuracy for m in members]
        whole = Ensemble(members) if len(members) > 1 else members[0]
        voice = evaluate(whole, digits)  # each part scored once: the digits serve choosing and testing
        testing[speaker] = merged(voice, evaluate(whole, [r for r in split.test if is_rejection(r.label)]))
        rows[speaker] = {"members": len(checkpoints), "members_mean": statistics.mean(accs),
                         "ensemble": testing[speaker].accuracy}
        if len(split.test) > len(digits):
            choosing[speaker] = merged(voice, evaluate(whole, [r for r in split.val if is_rejection(r.label)]))
            rows[speaker]["false_reject_rate"] = testing[speaker].false_reject_rate  # the model's own answers
            rows[speaker]["false_accept_rate"] = testing[speaker].to_dict()["false_accept_rate"]
    figures: dict = {"checkpoint": checkpoint, "speakers": rows}
    nested = len(choosing) >= 2  # a fold's threshold comes from the others
    if nested:
        for speaker in rows:
            threshold = calibrate([e for s, e in choosing.items() if s != speaker])
            rows[speaker]["reject_below"] = threshold
            rows[speaker].update({f"cv_{k}": v for k, v in testing[speaker].at(threshold).items()})
    if choosing:
        figures["reject_below"] = calibrate(list(choosing.values()))
    keys = ["members_mean", "ensemble"] + (["cv_accuracy", "cv_false_reject_rate"] if nested else [])
    for key in keys:
        values = {s: r[key] for s, r in rows.items()}
        worst = (max if "reject" in key else min)(values, key=values.get)
        figures[key] = {"mean": statistics.mean(values.values()), "worst": [worst, values[worst]]}
    if nested:
        for label in sorted({k for r in rows.values() for k in r["cv_false_accept_rate"]}):
            figures[f"cv_false_accept{label}"] = {"mean": statistics.mean(r["cv_false_accept_rate"][label] for r in rows.values())}
    return figures


def ensemble_loso_table(figures: dict) -> str:
    rows = figures["speakers"]
    speakers_seen = sorted(rows)
    lines = ["| | " + " | ".join(f"{s} ({rows[s]['members']})" for s in speakers_seen) + " | mean | worst |",
             "|---|" + "---|" * (len(speakers_seen) + 2)]
    shown = [("members (mean)", "members_mean"), ("ensemble, own answers", "ensemble")]
    if "cv_accuracy" in figures:
        shown += [("ensemble, cross-validated threshold", "cv_accuracy"), ("  digits rejected", "cv_false_reject_rate")]
    for label, key in shown:
        cells = " | ".join(f"{100 * rows[s][key]:.1f}" for s in speakers_seen)
        lines.append(f"| {label} | {cells} | {100 * figures[key]['mean']:.1f} | {100 * figures[key]['worst'][1]:.1f} |")
    for label in ("_unknown_", "_silence_"):
        if f"cv_false_accept{label}" in figures:
            cells = " | ".join(f"{100 * rows[s]['cv_false_accept_rate'][label]:.1f}" for s in speakers_seen)
            lines.append(f"|   {label} accepted | {cells} | {100 * figures[f'cv_false_accept{label}']['mean']:.1f} | |")
    if "cv_accuracy" in figures:
        lines.append("\nthreshold per fold (from the other folds): "
                     + ", ".join(f"{s} {rows[s]['reject_below']:g}" for s in speakers_seen))
    if "reject_below" in figures:
        lines.append(f"threshold over all folds (to ship): {figures['reject_below']:g}")
    return "\n".join(lines)


def ensemble_noise(outs: list[Path], seed: int, root: str | None, clips: int | None = None,
                   reject_below: float | None = None) -> dict:
    """The noise protocol for each member (its own noise unit, when present) and for the ensemble of
    the folders' ``official-seedN`` checkpoints at ``reject_below`` (the threshold its LOSO result chose)."""
    checkpoints, members = [], {}
    for out in outs:
        unit = out / "units" / f"official-seed{seed}.json"
        if not unit.is_file():
            raise RunMissing(f"{unit} is missing: run `python -m benchmarks.accuracy official CONFIG --seeds {seed}` for it")
        checkpoints.append(str(checkpoint_of(out, json.loads(unit.read_text()))))
        member = out / "units" / f"{noise_unit_name(seed)}.json"
        members[out.name] = json.loads(member.read_text()) if member.is_file() else None
    import torch

    torch.set_num_threads(1)
    return {"seed": seed, "members": members, "reject_below": reject_below,
            "ensemble": noise_unit(checkpoints, root, clips, reject_below)}


def ensemble_noise_table(figures: dict) -> str:
    columns = ["clean"] + [f"{kind}_{db}dB" for kind in NOISES for db in SNRS_DB]
    members = figures["members"]
    rows = [(name, unit) for name, unit in members.items() if unit] + [(f"ensemble ({len(members)})", figures["ensemble"])]
    lines = ["| official split, seed %d | " % figures["seed"] + " | ".join(c.replace("_", " ") for c in columns) + " | ms per clip |",
             "|---|" + "---|" * (len(columns) + 1)]
    for name, unit in rows:
        cells = " | ".join(_percent(unit["accuracy"].get(c)) for c in columns)
        lines.append(f"| {name} | {cells} | {unit['inference_ms_per_clip']:.1f} |")
    return "\n".join(lines)


def ensemble_loso_noise(outs: list[Path], root: str | None, loso: dict, clips: int | None = None) -> dict:
    """Each fold's ensemble of the folders' LOSO runs in noise (:func:`loso_noise_unit`), at the fold's
    cross-validated threshold from the ensemble's LOSO result ``loso`` (its own answers where there is none)."""
    import torch

    torch.set_num_threads(1)
    folds = fold_runs(outs)
    if not folds:
        raise RunMissing("no finished LOSO runs under " + ", ".join(f"{o}/runs" for o in outs))
    rows = loso.get("speakers", {})
    units = {speaker: loso_noise_unit(checkpoints, speaker, root, clips, rows.get(speaker, {}).get("reject_below"))
             for speaker, checkpoints in sorted(folds.items())}
    return {**summarize_loso_noise(units), "reject_below": {s: u["reject_below"] for s, u in units.items()}}


def loso_noise_table(figures: dict) -> str:
    return "\n".join(["| protocol | result |", "|---|---|", *[f"| {k} | {v} |" for k, v in loso_noise_rows(figures)]])


def member_folder(member: str, results: Path) -> Path:
    """A member given as a results folder, or as a name under ``results/accuracy``."""
    path = Path(member)
    return path if path.is_dir() else Path(results) / "accuracy" / member


def write_ensemble(results: Path, name: str, outs: list[Path], section: str, figures: dict, protocol: str,
                   command: str) -> Path:
    """Add (or replace) ``section`` of the ensemble's result ``results/accuracy/NAME.json``."""
    path = common.result_path(results, "accuracy", name)
    members = [o.name for o in outs]
    old = json.loads(path.read_text()) if path.is_file() else {}
    if old.get("recipe", {}).get("members") != members:
        old = {}
    member_recipes = {}
    for out in outs:
        units = _units(out)
        hashes = sorted({u["recipe"] for u in units.values() if u.get("recipe")})
        member_recipes[out.name] = hashes[0] if len(hashes) == 1 else hashes or None
    record = {"benchmark": "accuracy", "kind": "ensemble", "name": name,
              "protocol": {**old.get("protocol", {}), section: protocol},
              "command": {**old.get("command", {}), section: command},
              "machine": common.machine(),
              "recipe": {"members": members, "member_recipes": member_recipes},
              "figures": {**old.get("figures", {}), section: figures}}
    return common.write_json(path, record)


# -- command line --------------------------------------------------------------------------------

SUBCOMMANDS = ("official", "loso", "noise", "summary", "import", "compare", "ensemble")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    shared = common.flags(threads=1)
    recipe_options = argparse.ArgumentParser(add_help=False)
    group = recipe_options.add_argument_group("recipe")
    group.add_argument("--epochs", type=int, default=None, help="override trainer.max_epochs (smoke runs)")
    group.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                       help="a `spokenword fit` option for every run, e.g. model.net.init_args.batch_norm=false "
                            "(ablations; recorded in the result); repeatable")
    group.add_argument("--cache-dir", default=None, help="feature cache folder (data.cache_dir)")
    group.add_argument("--folder", type=Path, default=None,
                       help="the results folder itself (default OUT/accuracy/NAME); its result is FOLDER.json")
    p = sub.add_parser("official", parents=[recipe_options, shared], help="official split, one run per seed")
    p.add_argument("config", help="the experiment (a training config)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p = sub.add_parser("loso", parents=[recipe_options, shared], help="leave one speaker out")
    p.add_argument("config", help="the experiment (a training config)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of each fold (a speaker's figure is their mean)")
    p.add_argument("--folds", nargs="+", default=None, help="held-out speakers (default: all)")
    p = sub.add_parser("noise", parents=[recipe_options, shared], help="official-seed checkpoints in noise")
    p.add_argument("config", help="the experiment (a training config)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="official seeds to score (trained when missing)")
    p.add_argument("--noise-clips", type=int, default=None, help="score only the first N test clips (smoke runs)")
    p.add_argument("--loso", action="store_true", help="score the finished LOSO folds' runs in noise instead (held-out speakers)")
    p = sub.add_parser("summary", parents=[recipe_options, shared], help="rebuild the result from the units present (trains nothing)")
    p.add_argument("config", help="the experiment (a training config)")
    p = sub.add_parser("import", parents=[recipe_options, shared],
                       help="a finished `spokenword fit` run (official split) as the unit of its seed")
    p.add_argument("run", type=Path, help="the run folder (RUN/report.json, RUN/config.yaml), e.g. runs/fsdd_cnn_newvoices/version_0")
    p.add_argument("--config", default=None,
                   help="the config it was made with (default configs/NAME.yaml, NAME: the run's logger name, RUN/..)")
    p = sub.add_parser("compare", parents=[common.flags(threads=None, data=False)], help="results side by side (trains nothing)")
    p.add_argument("results", nargs="+", help="result names (under OUT/accuracy), folders or result files")
    p = sub.add_parser("ensemble", parents=[shared], help="ensembles of the runs of several results folders")
    p.add_argument("members", nargs="+", help="results folders or names under OUT/accuracy (their runs are the members)")
    p.add_argument("--checkpoint", choices=sorted(CHECKPOINTS), default="best",
                   help="each run's best-validation checkpoint (default) or its last epoch's")
    p.add_argument("--noise", action="store_true", help="score the ensemble of the official-split runs in noise instead of LOSO")
    p.add_argument("--seed", type=int, default=0, help="the official-split seed whose runs --noise combines")
    p.add_argument("--noise-clips", type=int, default=None, help="--noise on the first N test clips only (smoke runs)")
    p.add_argument("--loso", action="store_true", help="with --noise: each LOSO fold's ensemble in noise (held-out speakers)")
    return top


def _setup(args) -> Setup:
    config = args.config
    if config is None:  # import: the config named like the run (a config's runs go to runs/<its stem>)
        config = f"configs/{args.run.resolve().parent.name}.yaml"
    if not Path(config).is_file():
        raise SystemExit(f"no config file {config}")
    name = args.name or Path(config).stem
    folder = args.folder or Path(args.out) / "accuracy" / name
    return Setup(config, folder, args.epochs, [o.removeprefix("--") for o in args.override],
                 args.data_root, args.cache_dir)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help"):
        return legacy_main(argv)
    top = parser()
    args = top.parse_args(argv)
    if args.command == "compare":
        try:
            print(compare([Path(r) for r in args.results], args.out))
        except FileNotFoundError as err:
            top.error(str(err))
        return 0
    common.set_threads(args.threads)
    if args.command == "ensemble":
        outs = [member_folder(m, args.out) for m in args.members]
        missing = [str(o) for o in outs if not o.is_dir()]
        if missing:
            top.error(f"no results folder {', '.join(missing)}")
        name = args.name or "+".join(o.name for o in outs)
        cmd = common.command("accuracy", argv)
        made = common.result_path(args.out, "accuracy", name)  # the threshold its LOSO chose, if measured
        loso = (json.loads(made.read_text()).get("figures", {}).get("loso", {}) if made.is_file() else {})
        if args.noise and args.loso:
            figures = ensemble_loso_noise(outs, args.data_root, loso, args.noise_clips)
            print(loso_noise_table(figures))
            write_ensemble(args.out, name, outs, "loso-noise", figures, PROTOCOL_TEXT["ensemble_loso_noise"], cmd)
        elif args.noise:
            figures = ensemble_noise(outs, args.seed, args.data_root, args.noise_clips, loso.get("reject_below"))
            print(ensemble_noise_table(figures))
            write_ensemble(args.out, name, outs, f"noise-seed{args.seed}", figures,
                           PROTOCOL_TEXT["ensemble_noise"].format(seed=args.seed), cmd)
        else:
            figures = ensemble_loso(outs, args.checkpoint, args.data_root)
            print(ensemble_loso_table(figures))
            section = "loso" if args.checkpoint == "best" else f"loso-{args.checkpoint}"
            write_ensemble(args.out, name, outs, section, figures,
                           PROTOCOL_TEXT["ensemble_loso"].format(checkpoint=f"{args.checkpoint}-validation"
                                                                 if args.checkpoint == "best" else "last-epoch"), cmd)
        return 0
    try:
        s = _setup(args)
    except SystemExit as err:
        top.error(str(err))
    if args.command == "official":
        run_official(s, args.seeds)
    elif args.command == "loso":
        run_loso(s, args.seeds, args.folds)
    elif args.command == "noise" and args.loso:
        run_loso_noise(s, args.noise_clips)
    elif args.command == "noise":
        run_noise(s, args.seeds, args.noise_clips)
    elif args.command == "import":
        print(f"unit: {import_run(s, args.run)}", file=sys.stderr)
    summary = summarize(s.folder, s.config, s.recorded, epochs=s.epochs, root=s.root, wanted=s.wanted)
    print(table(summary))
    print(f"result: {s.folder.with_suffix('.json')}", file=sys.stderr)
    return 0


def legacy_main(argv: list[str]) -> int:
    """The command line from before the suite: ``CONFIG [--protocols ...] [--out FOLDER] [--root DIR]`` and
    ``--compare FOLDER ...`` (see the module docstring)."""
    p = argparse.ArgumentParser(prog="benchmarks/accuracy.py", description="the form from before the suite")
    p.add_argument("config", nargs="?")
    p.add_argument("--compare", nargs="+", metavar="OUT", default=None)
    p.add_argument("--protocols", nargs="+", default=["official,loso,noise"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--folds", nargs="+", default=None)
    p.add_argument("--loso-seeds", type=int, nargs="+", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--root", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--noise-clips", type=int, default=None)
    args = p.parse_args(argv)
    if args.compare:
        try:
            print(compare([Path(o) for o in args.compare]))
        except FileNotFoundError as err:
            p.error(str(err))
        return 0
    if not args.config:
        p.error("a CONFIG (or --compare OUT ...) is required")
    if not Path(args.config).is_file():
        p.error(f"no config file {args.config}")
    protocols = [x.strip() for item in args.protocols for x in item.split(",") if x.strip()]
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        p.error(f"unknown protocols {sorted(unknown)}")
    common.set_threads(args.threads)
    folder = Path(args.out) if args.out else common.RESULTS / "accuracy" / Path(args.config).stem
    s = Setup(args.config, folder, args.epochs, [o.removeprefix("--") for o in args.override],
              args.root, args.cache_dir)
    seeds = args.seeds if "official" in protocols else args.seeds[:1]
    if "official" in protocols:
        run_official(s, seeds)
    if "loso" in protocols:
        run_loso(s, args.loso_seeds or args.seeds[:1], args.folds)
    if "noise" in protocols:
        run_noise(s, seeds, args.noise_clips)
    summary = summarize(s.folder, s.config, s.recorded, epochs=s.epochs, root=s.root, wanted=s.wanted)
    print(table(summary))
    return 0


def cli() -> None:
    from spokenword.data.corpora import DatasetError

    try:
        sys.exit(main())
    except (DatasetError, RecipeChanged, RunMissing) as err:  # missing data, stale results: one line, not a traceback
        sys.exit(f"accuracy: {err}")


if __name__ == "__main__":
    cli()
