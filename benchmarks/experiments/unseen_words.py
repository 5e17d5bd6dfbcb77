""""Not a digit" on word types never trained on, and whether synthetic words of many types help.

    python -m benchmarks.experiments.unseen_words speak FOLDER [--words 800] [--seed 0] [--digits N]
    python -m benchmarks.experiments.unseen_words mangle reversed|spliced FOLDER [--data.root DIR]
    python -m benchmarks.experiments.unseen_words score ARM=RESULTS_FOLDER ... [--processes 2] [--out DIR]

The reject benchmark scores other words of new *speakers*, but of the 25 word *types* the default trained on as
``_unknown_``; a user says other words. Protocol: nine of the 25 Speech Commands types (every third in
alphabetical order, :data:`HELD_OUT`) are left out of training (``OtherWords.exclude``); the embedding member's
leave-one-speaker-out runs (``python -m benchmarks.accuracy loso benchmarks/experiments/unseen_words_*.yaml``)
are scored, per fold, on the held-out speaker's 500 digits, on every clip of the nine unseen types (no clip of
them was trained on) and on the seen types' clips of validation and test speakers. For each arm: the threshold
at which the pooled held-out digits are falsely rejected 1 / 2 / 5 % of the time, and the words accepted as a
digit there.

``speak`` writes eSpeak NG renderings of the commonest English words (``wordfreq``; not the 25 types, not a
digit or a digit's homophone) in random accents, voice variants, rates and pitches, one sub-folder per word,
Speech Commands names ``{voice}_nohash_0.wav`` with voice ids whose hash falls in the training part.
Needs ``espeak-ng`` (Debian package) and ``wordfreq`` (PyPI); neither is a dependency of spokenword. ``mangle``
writes synthetic words with no synthesiser: the seen types' training clips reversed, or spliced (a clip's first
half and another word's second half).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks import common

#: every third of the 25 Speech Commands types in alphabetical order: never trained on in any arm
HELD_OUT = ("backward", "dog", "forward", "house", "marvin", "on", "stop", "visual", "yes")
SC_WORDS = ("backward", "bed", "bird", "cat", "dog", "down", "follow", "forward", "go", "happy", "house", "learn",
            "left", "marvin", "no", "off", "on", "right", "sheila", "stop", "tree", "up", "visual", "wow", "yes")
#: digits and words spoken like one (a digit's homophones are digits to a listener)
DIGIT_SOUNDS = {"zero", "oh", "o", "one", "won", "two", "to", "too", "three", "four", "for", "fore", "five", "six",
                "seven", "eight", "ate", "nine", "ten", "nought", "naught", "hundred", "thousand"}
ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029")
VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 6)) + (
    "klatt", "klatt2", "klatt3", "croak", "whisper")
FRACTIONS = (1, 2, 5)  # false rejects of digits (%) at which words accepted are reported


def _word_list(count: int) -> list[str]:
    import wordfreq

    out = []
    for word in wordfreq.top_n_list("en", 20 * count):
        if word.isalpha() and word.isascii() and len(word) >= 2 and word not in DIGIT_SOUNDS and word not in SC_WORDS:
            out.append(word)
        if len(out) == count:
            break
    return out


DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def speak(folder: Path, count: int, seed: int, digits: int = 0) -> int:
    import soundfile as sf
    import soxr

    from spokenword.data.corpora.negatives import speaker_subset

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    # digits: DIGITS[i] rendered `digits` times, in FOLDER/<digit>/<digit>/ (an OtherWords corpus per digit label)
    words = [(w, folder / w) for w in _word_list(count)] if not digits else \
        [(d, folder / d / d) for d in DIGITS for _ in range(digits)]
    with tempfile.TemporaryDirectory() as scratch:
        for n, (word, where) in enumerate(words):
            accent, variant = ACCENTS[rng.integers(len(ACCENTS))], VARIANTS[rng.integers(len(VARIANTS))]
            rate, pitch = int(rng.integers(110, 200)), int(rng.integers(20, 80))
            voice = f"espeak{n}"
            while speaker_subset(voice) != "train":  # every synthetic clip trains; none is scored
                voice += "x"
            raw = Path(scratch) / "raw.wav"
            subprocess.run(["espeak-ng", "-v", f"{accent}+{variant}", "-s", str(rate), "-p", str(pitch), "-w", str(raw), word],
                           check=True, capture_output=True)
            wave, rate_in = sf.read(raw, dtype="float32")
            out = where / f"{voice}_nohash_0.wav"
            out.parent.mkdir(parents=True, exist_ok=True)
            sf.write(out, soxr.resample(wave, rate_in, 16000), 16000, subtype="PCM_16")
    print(f"{len(words)} clips written to {folder}")
    return 0


def mangle(kind: str, folder: Path, root: Path) -> int:
    """Synthetic other words without a synthesiser, from the seen types' training clips: each ``reversed``, or
    ``spliced`` (its first half and the second half of another word's clip), one folder per word and kind."""
    import soundfile as sf

    from spokenword.data.corpora.negatives import OtherWords

    recordings = [r for r in OtherWords(exclude=list(HELD_OUT)).recordings(root) if r.subset == "train"]
    rng = np.random.default_rng(0)
    for n, r in enumerate(recordings):
        wave, rate = sf.read(r.path, dtype="float32")
        if kind == "reversed":
            out = wave[::-1]
        else:
            other = recordings[rng.integers(len(recordings))]
            while other.path.parent.name == r.path.parent.name:
                other = recordings[rng.integers(len(recordings))]
            second, _ = sf.read(other.path, dtype="float32")
            out = np.concatenate([wave[: len(wave) // 2], second[len(second) // 2 :]])
        target = folder / f"{r.path.parent.name}_{kind}" / f"{r.speaker}_nohash_{n}.wav"  # the clip's speaker: train
        target.parent.mkdir(parents=True, exist_ok=True)
        sf.write(target, out, rate, subtype="PCM_16")
    print(f"{len(recordings)} {kind} clips written to {folder}")
    return 0


def fold(task: tuple) -> dict:
    """Per-clip best-digit probability and rightness of one fold's model: digits, unseen and seen word types."""
    speaker, checkpoint, root, threads = task
    from spokenword.data.corpora import FSDD
    from spokenword.data.corpora.negatives import OtherWords
    from spokenword.data.splits import make_split
    from spokenword.inference.load import load_model
    from spokenword.labels import is_rejection

    common.set_threads(threads)
    clf = load_model(checkpoint)
    labels = list(clf.labels)
    digit_columns = [i for i, label in enumerate(labels) if not is_rejection(label)]
    test = make_split(FSDD().recordings(root), "speakers", [speaker]).test
    words = OtherWords().recordings(root)
    sets = {"digits": test,
            "unseen": [r for r in words if r.path.parent.name in HELD_OUT],
            "seen": [r for r in words if r.path.parent.name not in HELD_OUT and r.subset != "train"]}
    out = {}
    for name, recordings in sets.items():
        probs = np.asarray(clf.probabilities([clf.featurize(clf.waveform(r.path)) for r in recordings]))[:, digit_columns]
        out[name] = {"best": probs.max(1).tolist(),
                     "word": [r.path.parent.name for r in recordings],
                     "right": [int(labels[digit_columns[i]] == r.label) for i, r in zip(probs.argmax(1), recordings)]}
    return {"speaker": speaker, "checkpoint": common.relative(checkpoint), "clips": out}


def figures_of(folds: list[dict]) -> dict:
    pooled = {name: {key: np.concatenate([np.asarray(f["clips"][name][key]) for f in folds])
                     for key in ("best", "right")} for name in ("digits", "unseen", "seen")}
    words = {name: np.concatenate([np.asarray(f["clips"][name]["word"]) for f in folds]) for name in ("unseen", "seen")}
    rows = {}
    for fr in FRACTIONS:
        # the threshold below which fr % of the held-out digits fall (pooled over the folds)
        t = float(np.quantile(pooled["digits"]["best"], fr / 100))
        per_type = {w: 100 * float((pooled["unseen"]["best"][words["unseen"] == w] >= t).mean())
                    for w in HELD_OUT}
        rows[str(fr)] = {"threshold": t,
                         "digits_right": 100 * float(((pooled["digits"]["best"] >= t) * pooled["digits"]["right"]).mean()),
                         "unseen_accepted": 100 * float((pooled["unseen"]["best"] >= t).mean()),
                         "seen_accepted": 100 * float((pooled["seen"]["best"] >= t).mean()),
                         "unseen_by_type": per_type}
    closed = 100 * float(pooled["digits"]["right"].mean())
    return {"folds": [f["speaker"] for f in folds], "closed_set_digits": closed, "at_false_reject": rows,
            "unseen_clips_per_fold": len(folds[0]["clips"]["unseen"]["best"]),
            "seen_clips_per_fold": len(folds[0]["clips"]["seen"]["best"])}


def score(arms: dict[str, Path], root, processes: int, threads: int) -> dict:
    from benchmarks.accuracy import fold_runs

    out = {}
    for arm, folder in arms.items():
        runs = fold_runs([folder])
        tasks = [(speaker, checkpoints[0], root, threads) for speaker, checkpoints in sorted(runs.items())]
        with ProcessPoolExecutor(processes) as pool:
            folds = list(pool.map(fold, tasks))
        out[arm] = {"folder": common.relative(folder), "figures": figures_of(folds)}
        print(json.dumps({arm: out[arm]["figures"]}, indent=1)[:3000])
    return out


def tables(result: dict) -> list[str]:
    lines = ["| arm | closed-set digits % | " + " | ".join(
        f"FR {fr} %: unseen types / seen types accepted" for fr in FRACTIONS) + " |", "|---" * (2 + len(FRACTIONS)) + "|"]
    for arm, r in result.items():
        f = r["figures"]
        lines.append(f"| {arm} | {f['closed_set_digits']:.1f} | " + " | ".join(
            f"{f['at_false_reject'][str(fr)]['unseen_accepted']:.1f} / {f['at_false_reject'][str(fr)]['seen_accepted']:.1f}"
            for fr in FRACTIONS) + " |")
    lines += ["", "Unseen types accepted at 2 % false rejects, by type:", "",
              "| arm | " + " | ".join(HELD_OUT) + " |", "|---" * (1 + len(HELD_OUT)) + "|"]
    for arm, r in result.items():
        by = r["figures"]["at_false_reject"]["2"]["unseen_by_type"]
        lines.append(f"| {arm} | " + " | ".join(f"{by[w]:.1f}" for w in HELD_OUT) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.experiments.unseen_words", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("speak", help="eSpeak NG renderings of common English words")
    s.add_argument("folder", type=Path)
    s.add_argument("--words", type=int, default=800)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--digits", type=int, default=0, help="instead of words: each digit this many times")
    m = sub.add_parser("mangle", help="reversed or spliced copies of the seen types' training clips", parents=[common.flags()])
    m.add_argument("kind", choices=("reversed", "spliced"))
    m.add_argument("folder", type=Path)
    c = sub.add_parser("score", help="score arms' LOSO runs", parents=[common.flags()])
    c.add_argument("arms", nargs="+", metavar="ARM=FOLDER")
    c.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "speak":
        return speak(args.folder, args.words, args.seed, args.digits)
    from spokenword.data.splits import resolve_root

    if args.command == "mangle":
        return mangle(args.kind, args.folder, resolve_root(args.data_root))
    arms = {k: Path(v) for k, v in (a.split("=", 1) for a in args.arms)}
    result = score(arms, resolve_root(args.data_root), max(1, args.processes), args.threads)
    lines = tables(result)
    print("\n".join(lines))
    common.write_result(args.out, "experiments", args.name or "unseen_words", arm="unseen_words",
                        protocol=__doc__.split("\n\n")[2].replace("\n", " "),
                        command=common.command("experiments.unseen_words", argv),
                        recipe={"held_out_types": list(HELD_OUT), "arms": {k: common.relative(v) for k, v in arms.items()}},
                        figures={**result, "table": lines})
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
