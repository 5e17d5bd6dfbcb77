"""Adaptation benchmark: a model tuned to one voice, and taught new words, from a few takes (:mod:`spokenword.training.adapt`).

    python -m benchmarks.adapt personal [--speakers S ...] [--k 1 3 5] [--draws 3]
    python -m benchmarks.adapt vocab [--source MODEL] [--words W ...] [--k 1 3 5 10] [--draws 3]

Options of both: ``--steps``, ``--views`` (``adapt``'s; default its own), ``--draws N`` (random draws of
the adaptation takes per k), ``--clips N`` (score only N clips of each scored set, spread evenly: smoke
runs), ``--cache DIR`` (the adaptable states of training runs, written once: default
``OUT/adapt/runs/states``, git-ignored), ``--runs DIR`` (the results root holding the LOSO runs of
``benchmarks.accuracy``; default ``benchmarks/results``); shared: ``--data.root``, ``--threads``,
``--out``, ``--name`` (:mod:`benchmarks.common`). The result is ``OUT/adapt/personal.json`` or
``OUT/adapt/vocab.json`` (``--name``).

Protocols: :data:`PROTOCOL` (written into every result). ``personal``: each FSDD speaker's leave-one-speaker-out
embedding run adapted to k of its takes 0-9 per digit, scored on its takes 10-49 and on the other speakers' takes
5-9; ``vocab``: the bundled model taught the ten Speech Commands command words from k clips of the words'
training-part speakers, scored on other speakers. Nothing is chosen on the scored clips: ``adapt`` runs with its
defaults.

Adaptation time: the wall time of one ``adapt()`` call from the cached state (features of the takes,
training, ONNX export, the model folder), ``--threads`` torch threads.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks import common

#: the leave-one-speaker-out results of ``benchmarks.accuracy`` whose runs are adapted (embedding) and
#: joined (CNN), and the configs that make them
EMBEDDING = "fsdd_embedding_newvoices"
CNN = "fsdd_cnn_newvoices"
#: the takes per digit a speaker may give (the draws' pool), and those scored
ADAPT_TAKES = range(10)
SCORED_TAKES = range(10, 50)
#: the other speakers' takes scored for "no loss": the LOSO runs' validation takes
OTHER_TAKES = range(5, 10)
COMMAND_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
#: takes per word adapted with, by default
DEFAULT_K = {"personal": [1, 3, 5], "vocab": [1, 3, 5, 10]}
#: the source of ``vocab`` when the bundled model has no adaptable state yet
FALLBACK_SOURCE = "runs/fsdd_embedding_newvoices"
#: the goals of the issue: the worst speaker at k = 3, and new words at k = 10
GOALS = {"personal": {"k": 3, "worst": 0.99}, "vocab": {"k": 10, "accuracy": 0.90}}

PROTOCOL = {
    "personal": (
        "FSDD, each speaker in turn with its leave-one-speaker-out runs (configs/fsdd_embedding_newvoices.yaml and "
        "configs/fsdd_cnn_newvoices.yaml, seed 0, best-validation checkpoints; trained on the other five speakers): the "
        "embedding run adapted (spokenword.training.adapt, default settings, with rehearsal) to k takes per digit of the "
        "speaker drawn from its takes 0-9 (draw d: each digit's takes permuted with seed d, the first k; adapt seed d), "
        "scored on the speaker's takes 10-49 (400 clips, the same for every k and draw); after adaptation: the mean over "
        "the draws. Before: the embedding run alone and the ensemble load_model(cnn, embedding); after: the adapted model "
        "alone and load_model(adapted, cnn). Other speakers: the other five speakers' takes 5-9 (250 clips, the LOSO runs' "
        "validation takes, never trained on), adapted against unadapted. Each model's own best label (no threshold; a "
        "digit answered _unknown_/_silence_ is wrong). Adaptation time: one adapt() call from the cached state "
        "(features, training, ONNX export)."),
    "vocab": (
        "the ten Speech Commands command words (speech_commands_words: at most one clip per speaker and word): clips of "
        "speakers in the training part of spokenword.data.corpora.negatives.speaker_subset are the adaptation pool, clips "
        "of the other speakers (its validation and test parts; never trained on) are scored, so no scored speaker gave a "
        "training clip; draw d: each word's pool permuted with seed d, the first k clips; adapt seed d, default settings, "
        "with rehearsal; figures: the mean over the draws. Accuracy: the answer (at the adapted model folder's threshold, "
        "the source's) is the word; answers counted as another new word, a digit, _unknown_, _silence_. Other words: "
        "the words not taught, same speakers, answered as a new word. Digits: FSDD official test takes 0-4 (300 clips), "
        "before: the source (an ensemble: also its adaptable member alone, at the same threshold), after: the adapted "
        "model folder (the other members drop out: they do not know the new words). Adaptation time: one adapt() call "
        "from the cached state."),
}


class RunMissing(Exception):
    """A leave-one-speaker-out run this benchmark adapts is not on disk."""


# -- shared -------------------------------------------------------------------------------------------

def _log(line: str) -> None:
    print(f"  adapt: {line}", file=sys.stderr)


def thin(items: list, count: int | None) -> list:
    """``count`` of ``items`` spread evenly (all of them when ``count`` is ``None`` or not smaller)."""
    if not count or count >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def answers(classifier, recordings) -> list[str]:
    """The classifier's answer for each recording, in order (``predict_many``: its own threshold);
    a file that does not decode is answered ``"(failed)"``, which is never right."""
    return [result[0]["label"] if not isinstance(result, Exception) else "(failed)"
            for _, result in classifier.predict_many([r.path for r in recordings])]


def accuracy(said: list[str], recordings) -> float:
    return float(np.mean([a == r.label for a, r in zip(said, recordings)])) if recordings else float("nan")


def takes_folder(folder: Path, chosen: dict[str, list[Path]]) -> Path:
    """A labelled folder for ``adapt``: one sub-folder per word, the chosen files linked into it."""
    shutil.rmtree(folder, ignore_errors=True)
    for word, paths in chosen.items():
        (folder / word).mkdir(parents=True)
        for path in paths:
            os.symlink(Path(path).resolve(), folder / word / Path(path).name)
    return folder


def cached_state(source, cache: Path, data_root) -> Path:
    """The adaptable state of a training run or checkpoint, written once under ``cache`` (rewritten when
    the checkpoint is newer); a model folder or an ``.adapt.npz`` is returned as it is."""
    from spokenword.inference.base import MODEL_FOLDER_MANIFEST, model_file
    from spokenword.training.adapt import STATE_SUFFIX, write_checkpoint_state

    source = Path(source)
    if source.name.endswith(STATE_SUFFIX) or (source / MODEL_FOLDER_MANIFEST).is_file():
        return source
    checkpoint = model_file(source)
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "-", common.relative(checkpoint).removesuffix(".ckpt")).strip("-")
    state = Path(cache) / f"{name}{STATE_SUFFIX}"
    if not state.is_file() or state.stat().st_mtime < checkpoint.stat().st_mtime:
        state.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        write_checkpoint_state(checkpoint, state, data_root=data_root, log=_log)
        _log(f"state of {common.relative(checkpoint)} written in {time.perf_counter() - started:.1f} s: {state}")
    return state


def timed_adapt(state: Path, folder: Path, out: Path, args, seed: int) -> float:
    """``adapt(state, folder, out)`` with the benchmark's settings; its wall time (s)."""
    import torch

    from spokenword.training.adapt import adapt

    options = {k: v for k, v in (("steps", args.steps), ("views", args.views)) if v is not None}
    started = time.perf_counter()
    with torch.random.fork_rng():
        # adapt draws new words' first weights from torch's global generator, not from its seed: fixed here,
        # so that a unit's figures do not depend on what ran before it in the process
        torch.manual_seed(seed)
        adapt(state, folder, out, seed=seed, data_root=args.data_root, log=_log, **options)
    return time.perf_counter() - started


def by_takes(said: list[str], recordings) -> dict[str, float]:
    """Accuracy per ten takes (``"10-19"``, ...): where a voice's recordings drift from one session to the next."""
    groups: dict[str, list[bool]] = {}
    for answer, r in zip(said, recordings):
        groups.setdefault(f"{r.take // 10 * 10}-{r.take // 10 * 10 + 9}", []).append(answer == r.label)
    return {group: float(np.mean(right)) for group, right in sorted(groups.items(), key=lambda g: int(g[0].split("-")[0]))}


def worst_of(values: dict[str, float]) -> list:
    worst = min(values, key=values.get)
    return [worst, values[worst]]


def spread(values: list[float]) -> dict:
    """Mean, min and max of a figure over the draws."""
    return {"mean": statistics.mean(values), "min": min(values), "max": max(values), "draws": values}


# -- personal: one voice --------------------------------------------------------------------------------

def loso_run(runs: Path, name: str, speaker: str) -> Path:
    """The finished seed-0 leave-one-speaker-out run of results ``name`` holding out ``speaker``."""
    run = Path(runs) / "accuracy" / name / "runs" / f"loso-{speaker}" / "version_0"
    if not (run / "report.json").is_file():
        raise RunMissing(f"{run} is missing: run `python -m benchmarks.accuracy loso configs/{name}.yaml --folds {speaker}`")
    return run


def personal(args) -> tuple[dict, dict]:
    """Figures (per speaker, and per k over the speakers) and the recipe of the ``personal`` arm."""
    from spokenword.data.corpora import FSDD
    from spokenword.data.splits import resolve_root
    from spokenword.inference.load import load_model

    recordings = sorted(FSDD().recordings(resolve_root(args.data_root)), key=lambda r: (r.speaker, r.label, r.take))
    speakers = args.speakers or sorted({r.speaker for r in recordings})
    ks = sorted(args.k)
    threads = args.threads
    rows, sources = {}, {}
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=_made(args.cache)))
    try:
        for speaker in speakers:
            embedding, cnn = loso_run(args.runs, EMBEDDING, speaker), loso_run(args.runs, CNN, speaker)
            sources[speaker] = {"embedding": common.relative(embedding), "cnn": common.relative(cnn)}
            state = cached_state(embedding, args.cache, args.data_root)
            own = [r for r in recordings if r.speaker == speaker]
            scored = thin([r for r in own if r.take in SCORED_TAKES], args.clips)
            others = thin([r for r in recordings if r.speaker != speaker and r.take in OTHER_TAKES], args.clips)
            pool = {d: sorted((r for r in own if r.take in ADAPT_TAKES and r.label == d), key=lambda r: r.take)
                    for d in sorted({r.label for r in own})}
            before = {"embedding": load_model(embedding, threads=threads), "ensemble": load_model(cnn, embedding, threads=threads)}
            said = {k: answers(m, scored) for k, m in before.items()}
            row = {"scored": len(scored), "others": len(others),
                   "before": {k: accuracy(a, scored) for k, a in said.items()},
                   "before_by_takes": by_takes(said["embedding"], scored),
                   "others_before": {k: accuracy(answers(m, others), others) for k, m in before.items()},
                   "after": {}}
            draws = {k: {"adapted": [], "ensemble": [], "others": [], "others_ensemble": [], "seconds": [], "by_takes": []}
                     for k in ks}
            row["takes"] = []  # per draw, each digit's takes in order: k takes are the first k
            for draw in range(args.draws):
                rng = np.random.default_rng(draw)
                order = {d: [clips[i] for i in rng.permutation(len(clips))] for d, clips in pool.items()}
                row["takes"].append({d: [r.take for r in clips[:max(ks)]] for d, clips in order.items()})
                for k in ks:
                    chosen = {d: [r.path for r in clips[:k]] for d, clips in order.items()}
                    out = work / "model"
                    seconds = timed_adapt(state, takes_folder(work / "takes", chosen), out, args, seed=draw)
                    adapted, joined = load_model(out, threads=threads), load_model(out, cnn, threads=threads)
                    d = draws[k]
                    d["seconds"].append(seconds)
                    said = answers(adapted, scored)
                    d["adapted"].append(accuracy(said, scored))
                    d["by_takes"].append(by_takes(said, scored))
                    d["ensemble"].append(accuracy(answers(joined, scored), scored))
                    d["others"].append(accuracy(answers(adapted, others), others))
                    d["others_ensemble"].append(accuracy(answers(joined, others), others))
                    print(f"{speaker} k={k} draw {draw}: adapted {100 * d['adapted'][-1]:.1f}, + CNN "
                          f"{100 * d['ensemble'][-1]:.1f}, other speakers {100 * d['others'][-1]:.1f} "
                          f"(before {100 * row['others_before']['embedding']:.1f}); {seconds:.1f} s", file=sys.stderr)
            for k in ks:
                d = draws[k]
                row["after"][str(k)] = {
                    "adapted": spread(d["adapted"]), "ensemble": spread(d["ensemble"]),
                    "others": spread(d["others"]), "others_ensemble": spread(d["others_ensemble"]),
                    "others_change": statistics.mean(d["others"]) - row["others_before"]["embedding"],
                    "others_ensemble_change": statistics.mean(d["others_ensemble"]) - row["others_before"]["ensemble"],
                    "by_takes": {g: statistics.mean(b[g] for b in d["by_takes"]) for g in d["by_takes"][0]},
                    "seconds": d["seconds"]}
            rows[speaker] = row
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {"speakers": rows, "k": ks, "draws": args.draws, "before": {}, "after": {}}
    for key in ("embedding", "ensemble"):
        per = {s: r["before"][key] for s, r in rows.items()}
        figures["before"][key] = {"mean": statistics.mean(per.values()), "worst": worst_of(per)}
    for k in map(str, ks):
        summary = {}
        for key in ("adapted", "ensemble", "others_change", "others_ensemble_change"):
            per = {s: (r["after"][k][key]["mean"] if isinstance(r["after"][k][key], dict) else r["after"][k][key])
                   for s, r in rows.items()}
            summary[key] = {"mean": statistics.mean(per.values()), "worst": worst_of(per)}
        seconds = [x for r in rows.values() for x in r["after"][k]["seconds"]]
        summary["seconds"] = {"mean": statistics.mean(seconds), "max": max(seconds)}
        figures["after"][k] = summary
    goal = GOALS["personal"]
    if str(goal["k"]) in figures["after"]:
        at = figures["after"][str(goal["k"])]
        figures["goal"] = {
            "k": goal["k"], "worst_at_least": goal["worst"],
            **{key: {"worst": at[key]["worst"], "others_change_worst": at[change]["worst"],
                     "met": at[key]["worst"][1] >= goal["worst"] and at[change]["worst"][1] >= 0}
               for key, change in (("adapted", "others_change"), ("ensemble", "others_ensemble_change"))}}
    recipe = {"sources": sources, "adapt_takes": f"{ADAPT_TAKES.start}-{ADAPT_TAKES.stop - 1}",
              "scored_takes": f"{SCORED_TAKES.start}-{SCORED_TAKES.stop - 1}",
              "other_speakers_takes": f"{OTHER_TAKES.start}-{OTHER_TAKES.stop - 1}", **_settings(args)}
    return figures, recipe


# -- vocab: new words ------------------------------------------------------------------------------------

def vocab_source(source: str | None) -> tuple[str | None, str | None]:
    """The source to adapt: ``source``; by default the bundled model, or :data:`FALLBACK_SOURCE` while the
    bundle has no adaptable state (the note says so)."""
    if source is not None:
        return source, None
    from spokenword import pretrained

    if pretrained.manifest().get("adaptable"):
        return None, None
    return FALLBACK_SOURCE, (f"the bundled model has no adaptable state yet: its embedding member's training run "
                             f"{FALLBACK_SOURCE} (newest version, best checkpoint) was adapted instead")


def adaptable_member(source) -> Path | None:
    """The member ``adapt`` trains of a model folder with several members (``None``: the bundled model), or ``None``
    for a single model."""
    from spokenword import pretrained
    from spokenword.inference.base import MODEL_FOLDER_MANIFEST

    folder = pretrained.folder() if source is None else Path(source)
    if not (folder / MODEL_FOLDER_MANIFEST).is_file():
        return None
    members, manifest = pretrained.read_folder(folder)
    adaptable = list(manifest.get("adaptable") or {})
    return folder / adaptable[0] if adaptable and len(members) > 1 else None


def vocab(args) -> tuple[dict, dict]:
    """Figures (per k, over the draws) and the recipe of the ``vocab`` arm."""
    from spokenword.data.corpora import FSDD
    from spokenword.data.corpora.negatives import WORDS_FOLDER, OtherWords
    from spokenword.data.splits import make_split, resolve_root
    from spokenword.inference.load import load_model
    from spokenword.labels import SILENCE, UNKNOWN

    root = resolve_root(args.data_root)
    if not (root / WORDS_FOLDER).is_dir():
        raise RunMissing(f"no {root / WORDS_FOLDER}: the Speech Commands words are needed for `vocab`")
    words = list(args.words or COMMAND_WORDS)
    # each clip labelled with its own word (the folder it sits in), not _unknown_
    clips = sorted((replace(r, label=r.path.parent.name) for r in OtherWords().recordings(root)),
                   key=lambda r: (r.label, r.path.name))
    missing = [w for w in words if not any(r.label == w for r in clips)]
    if missing:
        raise RunMissing(f"no clips of {', '.join(missing)} under {root / WORDS_FOLDER}")
    pool = {w: [r for r in clips if r.label == w and r.subset == "train"] for w in words}
    scored = thin([r for r in clips if r.label in words and r.subset != "train"], args.clips)
    others = thin([r for r in clips if r.label not in words and r.subset != "train"], args.clips)
    trained_speakers = {r.speaker for w in words for r in pool[w]}
    assert not trained_speakers & {r.speaker for r in scored}, "a scored speaker is in the adaptation pool"
    digits = thin(make_split(FSDD().recordings(root), "official").test, args.clips)
    ks = sorted(args.k)
    short = [w for w in words if len(pool[w]) < max(ks)]
    if short:
        raise RunMissing(f"fewer than {max(ks)} adaptation clips of {', '.join(short)}")

    source, note = vocab_source(args.source)
    before = load_model(source, threads=args.threads)
    said = answers(before, scored)
    figures: dict = {
        "words": words, "k": ks, "draws": args.draws, "scored": len(scored), "other_words": len(others),
        "digits": len(digits), "pool": {w: len(p) for w, p in pool.items()},
        "scored_per_word": {w: sum(r.label == w for r in scored) for w in words},
        "before": {"digits_accuracy": accuracy(answers(before, digits), digits),
                   "answered": _tally(said, scored, words, UNKNOWN, SILENCE), "reject_below": before.reject_below},
        "after": {}}
    member = adaptable_member(source)
    if member is not None:  # an ensemble's adaptable member alone: what adaptation changes, without the other members
        alone = load_model(member, threads=args.threads, reject_below=before.reject_below)
        figures["before"]["member"] = common.relative(member)
        figures["before"]["member_digits_accuracy"] = accuracy(answers(alone, digits), digits)
    state = cached_state(source, args.cache, args.data_root) if source is not None else None
    draws = {k: [] for k in ks}
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=_made(args.cache)))
    try:
        for draw in range(args.draws):
            rng = np.random.default_rng(draw)
            order = {w: [p[i] for i in rng.permutation(len(p))] for w, p in pool.items()}
            for k in ks:
                chosen = {w: [r.path for r in order[w][:k]] for w in words}
                out = work / "model"
                seconds = timed_adapt(state, takes_folder(work / "takes", chosen), out, args, seed=draw)
                adapted = load_model(out, threads=args.threads)
                said = answers(adapted, scored)
                taught = answers(adapted, others)
                unit = {"seconds": seconds, "accuracy": accuracy(said, scored),
                        "answered": _tally(said, scored, words, UNKNOWN, SILENCE),
                        "per_word": {w: accuracy([a for a, r in zip(said, scored) if r.label == w],
                                                 [r for r in scored if r.label == w]) for w in words},
                        "other_words_as_new_word": float(np.mean([a in words for a in taught])) if others else None,
                        "digits_accuracy": accuracy(answers(adapted, digits), digits),
                        "reject_below": adapted.reject_below,
                        "speakers": sorted({r.speaker for w in words for r in order[w][:k]})}
                draws[k].append(unit)
                print(f"vocab k={k} draw {draw}: {100 * unit['accuracy']:.1f} % of {len(scored)}, answered "
                      f"{unit['answered']}; digits {100 * unit['digits_accuracy']:.1f}; {seconds:.1f} s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for k, units in draws.items():
        figures["after"][str(k)] = {
            "accuracy": spread([u["accuracy"] for u in units]),
            "answered": {key: statistics.mean(u["answered"][key] for u in units) for key in units[0]["answered"]},
            "per_word": {w: statistics.mean(u["per_word"][w] for u in units) for w in words},
            "other_words_as_new_word": (statistics.mean(u["other_words_as_new_word"] for u in units) if others else None),
            "digits_accuracy": spread([u["digits_accuracy"] for u in units]),
            "seconds": {"mean": statistics.mean(u["seconds"] for u in units), "max": max(u["seconds"] for u in units)},
            "reject_below": units[0]["reject_below"], "units": units}
    goal = GOALS["vocab"]
    if str(goal["k"]) in figures["after"]:
        got = figures["after"][str(goal["k"])]["accuracy"]["mean"]
        figures["goal"] = {"k": goal["k"], "accuracy_at_least": goal["accuracy"], "accuracy": got, "met": got >= goal["accuracy"]}
    recipe = {"source": "bundled" if source is None else common.relative(source), "source_note": note,
              "source_state": None if state is None else common.relative(state), **_settings(args)}
    return figures, recipe


def _tally(said: list[str], scored, words: list[str], unknown: str, silence: str) -> dict:
    """How the scored clips were answered: their word, another new word, a digit (anything else), ``_unknown_``,
    ``_silence_``."""
    out = {"right": 0, "other_new_word": 0, "digit": 0, unknown: 0, silence: 0, "failed": 0}
    for answer, r in zip(said, scored):
        key = ("right" if answer == r.label else "other_new_word" if answer in words else unknown if answer == unknown
               else silence if answer == silence else "failed" if answer == "(failed)" else "digit")
        out[key] += 1
    return out


# -- command line -----------------------------------------------------------------------------------------

def _settings(args) -> dict:
    from spokenword.training import adapt as adapting

    defaults = {p: adapting.adapt.__kwdefaults__[p] for p in ("steps", "views", "lr", "rehearsal")}
    return {"adapt": {**defaults, **{k: v for k, v in (("steps", args.steps), ("views", args.views)) if v is not None}},
            "k": sorted(args.k), "draws": args.draws, "clips": args.clips}


def _made(folder: Path) -> Path:
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m benchmarks.adapt", description=__doc__.split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="arm", required=True, metavar="{personal,vocab}")
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("adaptation")
    group.add_argument("--k", type=int, nargs="+", default=None,
                       help="takes per word to adapt with (default: personal 1 3 5, vocab 1 3 5 10)")
    group.add_argument("--draws", type=int, default=3, help="random draws of the takes per k (default %(default)s)")
    group.add_argument("--steps", type=int, default=None, help="adapt's training steps (default: its own)")
    group.add_argument("--views", type=int, default=None, help="adapt's views per take (default: its own)")
    group.add_argument("--clips", type=int, default=None, help="score only N clips of each scored set, spread evenly (smoke runs)")
    group.add_argument("--cache", type=Path, default=None, metavar="DIR",
                       help="the adaptable states of training runs (default OUT/adapt/runs/states)")
    group.add_argument("--runs", type=Path, default=common.RESULTS, metavar="DIR",
                       help="results root holding accuracy/NAME/runs/loso-SPEAKER (default benchmarks/results)")
    shared = common.flags(threads=1)
    p = sub.add_parser("personal", parents=[options, shared], help="one voice: the held-out speaker's own takes")
    p.add_argument("--speakers", nargs="+", default=None, help="held-out speakers (default: all of FSDD's)")
    p = sub.add_parser("vocab", parents=[options, shared], help="new words: the ten command words")
    p.add_argument("--source", default=None, help="the model to adapt (default: the bundled model)")
    p.add_argument("--words", nargs="+", default=None, help="the words to teach (default: the ten command words)")
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    common.set_threads(args.threads)
    args.cache = args.cache or Path(args.out) / "adapt" / "runs" / "states"
    args.k = args.k or DEFAULT_K[args.arm]
    started = time.perf_counter()
    figures, recipe = (personal if args.arm == "personal" else vocab)(args)
    figures["wall_seconds"] = time.perf_counter() - started
    name = args.name or args.arm
    common.write_result(args.out, "adapt", name, arm=args.arm, protocol=PROTOCOL[args.arm],
                        command=common.command("adapt", argv), recipe=recipe, figures=figures)
    return 0


def cli() -> None:
    from spokenword.data.corpora import DatasetError
    from spokenword.inference.base import ModelError

    try:
        sys.exit(main())
    except (DatasetError, ModelError, RunMissing) as err:  # missing data or runs: one line, not a traceback
        sys.exit(f"adapt: {err}")


if __name__ == "__main__":
    cli()
