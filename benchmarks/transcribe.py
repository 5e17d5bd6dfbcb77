"""Connected-digit benchmark: synthetic spoken numbers built from FSDD recordings.

    python -m benchmarks.transcribe MODEL [--set test|dev|validation] [--count 200] [--seed S]
        [--threshold T] [--conditions clean,20,10] [--sweep] [--failures N] [--no-oracle]
        [--gaps 0.05,0.6] [--vad key=value,...] [--words key=value,...]

Shared options: ``--data.root``, ``--threads``, ``--out``, ``--name`` (:mod:`benchmarks.common`). The
figures are written to ``OUT/transcribe/<set>-<model>.json`` (``--name`` for another name: a tuning
run with ``--vad``/``--words`` should have its own), with the first ``STORED_FAILURES`` failed strings
per condition (or ``--failures``, if more).

Each string has 3-10 digits spoken by one speaker (as when a person reads out a number): each
digit is a random recording of that speaker, separated by 50-600 ms of silence, with 100-500 ms of
silence before and after. Conditions: clean, and white noise at 20 and 10 dB SNR (relative to the
mean power of the speech recordings). Everything is drawn from ``--seed``, so a set is
deterministic.

Sets (which FSDD takes the recordings come from):

- ``test`` (default, seed 0): takes 0-4, the official test split. For the final report only:
  nothing may be tuned on it.
- ``dev`` (seed 1): takes 10-49, the training split. All tuning of the segmenter and the
  transcriber (thresholds, rules) is done on this set. The model has seen these recordings, so
  its scores here are more confident than on unseen voices' takes; segmentation is unaffected.
- ``validation`` (seed 2): takes 5-9 (used by training only to pick the checkpoint): a check of
  how the ``?`` threshold behaves on recordings the model was not fitted on.

Reported per condition:

- digit error rate (DER = (substitutions + insertions + deletions) / reference digits, a ``?``
  counting as a substitution) and whole-string accuracy, at ``--threshold``;
- ``DER@0``: the same with every word guessed (threshold 0);
- segmentation, from the transcript's word times: how often the number of words equals the
  number of digits, and per reference digit the digits missed, merged with another into one word,
  split over several words, and the words that cover no digit (spurious);
- the split of the errors: *classification* errors (a word found as exactly one segment, wrongly
  labelled or marked ``?``) and *segmentation* errors (the rest of the edit distance);
- oracle DER: each digit classified from its true boundaries (the known word regions of the
  synthetic string, with the same context the transcriber gives a detected segment), so
  everything left there is the model's.

``--sweep`` adds DER / string accuracy / ``?`` marks / precision of the ``?`` marks (the share of
them that hide a wrong guess) for a range of thresholds, from the same run. ``--vad`` and
``--words`` override :class:`~spokenword.segment.VadSettings` and
:class:`~spokenword.transcribe.WordSettings` (for tuning on the dev set); ``--gaps 0,0.06`` is a
stress test with pauses shorter than the issue's 50 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import common
from spokenword import audio
from spokenword.data.splits import resolve_root
from spokenword.data.corpora import FSDD
from spokenword.transcribe.segment import StreamingSegmenter, VadSettings
from spokenword.transcribe.decode import UNCERTAIN, Transcriber, WordSettings

CONDITIONS = {"clean": None, "20": 20.0, "10": 10.0}
SETS = {  # name: (takes, default seed, description)
    "test": (range(0, 5), 0, "FSDD test takes 0-4"),
    "dev": (range(10, 50), 1, "FSDD training takes 10-49 (dev set: tuning)"),
    "validation": (range(5, 10), 2, "FSDD validation takes 5-9"),
}
SWEEP = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
#: failed strings kept per condition in the result file (all are counted)
STORED_FAILURES = 20


@dataclass
class Number:
    """One synthetic spoken number: its digits, waveform and each digit's ``[start, stop)``."""

    digits: str
    wave: np.ndarray
    words: list[tuple[int, int]]
    speaker: str


def edit_ops(reference: str, hypothesis: str) -> tuple[int, int, int]:
    """``(substitutions, insertions, deletions)`` of a minimal edit from ``reference`` to ``hypothesis``."""
    n, m = len(reference), len(hypothesis)
    cost = np.zeros((n + 1, m + 1), dtype=int)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1, cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]))
    i, j, ops = n, m, [0, 0, 0]
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            ops[0] += reference[i - 1] != hypothesis[j - 1]
            i, j = i - 1, j - 1
        elif j and cost[i, j] == cost[i, j - 1] + 1:
            ops[1] += 1
            j -= 1
        else:
            ops[2] += 1
            i -= 1
    return ops[0], ops[1], ops[2]


def edit_distance(reference: str, hypothesis: str) -> int:
    """Levenshtein distance between two label strings (one character per label)."""
    return sum(edit_ops(reference, hypothesis))


def build_set(root: Path, count: int, seed: int, rate: int, part: str = "test",
              gaps: tuple[float, float] = (0.05, 0.6)) -> list[Number]:
    """``count`` spoken numbers from the takes of ``part`` (see :data:`SETS`), with pauses between
    digits drawn uniformly from ``gaps`` (s)."""
    if part == "train":  # the old name of the dev set
        part = "dev"
    takes = SETS[part][0]
    chosen = [r for r in FSDD().recordings(root) if r.take in takes]
    by_voice: dict[tuple[str, str], list] = {}
    for rec in chosen:
        by_voice.setdefault((rec.speaker, rec.label), []).append(rec)
    speakers = sorted({r.speaker for r in chosen})
    rng = np.random.default_rng(seed)
    cache: dict[Path, np.ndarray] = {}
    out = []
    for _ in range(count):
        digits = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(3, 11))))
        speaker = speakers[int(rng.integers(len(speakers)))]
        parts = [np.zeros(int(rng.uniform(0.1, 0.5) * rate), np.float32)]
        position = len(parts[0])
        words = []
        for i, d in enumerate(digits):
            choices = by_voice[(speaker, d)]
            rec = choices[int(rng.integers(len(choices)))]
            if rec.path not in cache:
                cache[rec.path] = audio.load(rec.path, rate)
            parts.append(cache[rec.path])
            words.append((position, position + len(cache[rec.path])))
            position += len(cache[rec.path])
            gap = rng.uniform(*gaps) if i < len(digits) - 1 else rng.uniform(0.1, 0.5)
            parts.append(np.zeros(int(gap * rate), np.float32))
            position += len(parts[-1])
        out.append(Number(digits, np.concatenate(parts), words, speaker))
    return out


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator, speech_power: float) -> np.ndarray:
    noise = rng.standard_normal(len(wave)).astype(np.float32)
    noise *= np.sqrt(speech_power / 10 ** (snr_db / 10))
    return wave + noise


def noisy(wave: np.ndarray, snr: float | None, rng: np.random.Generator) -> np.ndarray:
    if snr is None:
        return wave
    voiced = np.abs(wave) > 1e-4
    power = float(np.mean(wave[voiced] ** 2)) if voiced.any() else 1e-6
    return add_noise(wave, snr, rng, power)


def text_at(words, threshold: float) -> str:
    return "".join(UNCERTAIN if w.score < threshold else w.label for w in words)


def match_segments(number: Number, found: list[tuple[int, int]]) -> dict:
    """Compare detected regions with the true word regions (samples)."""
    refs = number.words
    overlap = np.zeros((len(found), len(refs)))
    for i, (a, b) in enumerate(found):
        for j, (c, d) in enumerate(refs):
            overlap[i, j] = max(0, min(b, d) - max(a, c))
    lengths = np.array([d - c for c, d in refs], dtype=float)
    covers = overlap >= 0.25 * lengths[None, :]  # segment i holds a real part of word j
    spurious = int(sum(1 for i in range(len(found)) if overlap[i].max(initial=0) == 0))
    merged_segments = covers.sum(axis=1) >= 2
    primary = [int(np.argmax(overlap[i])) if overlap[i].max(initial=0) > 0 else -1 for i in range(len(found))]
    one_to_one = {}  # word -> segment
    missed = merged = split = 0
    for j in range(len(refs)):
        mine = [i for i in range(len(found)) if primary[i] == j]
        if not covers[:, j].any():
            missed += 1
        elif any(merged_segments[i] for i in range(len(found)) if covers[i, j]):
            merged += 1
        elif len(mine) > 1:
            split += 1
        elif len(mine) == 1:
            one_to_one[j] = mine[0]
        else:
            missed += 1
    offsets = [(found[i][0] - refs[j][0], found[i][1] - refs[j][1]) for j, i in one_to_one.items()]
    return {"one_to_one": one_to_one, "missed": missed, "merged": merged, "split": split, "spurious": spurious,
            "offsets": offsets}


def noise_at_words(transcriber: Transcriber, wave: np.ndarray, words: list[tuple[int, int]]) -> list:
    """The segmenter's noise estimate when each word has ended (what a detected segment would carry)."""
    segmenter = StreamingSegmenter(transcriber.classifier.sample_rate, transcriber.vad)
    lookahead = int(transcriber.classifier.sample_rate * transcriber.vad.lookahead_ms / 1000)
    fed, out = 0, []
    for _, stop in words:
        target = min(len(wave), stop + lookahead)
        for _ in segmenter.feed(wave[fed:target]):
            pass
        fed = max(fed, target)
        out.append(segmenter.noise)
    return out


def run_condition(transcriber: Transcriber, numbers: list[Number], snr: float | None, seed: int, threshold: float,
                  oracle: bool = True) -> dict:
    rate = transcriber.classifier.sample_rate
    rng = np.random.default_rng(seed + 1000)
    totals = dict(errors=0, errors0=0, digits=0, exact=0, exact0=0, uncertain=0, count_ok=0, missed=0, merged=0,
                  split=0, spurious=0, quiet=0, class_errors=0, class_errors0=0, oracle_errors=0, oracle_errors0=0, oracle_uncertain=0)
    offsets: list[tuple[int, int]] = []
    sweep = {t: [0, 0, 0, 0] for t in SWEEP}  # errors, exact strings, '?' marks, '?' over wrong guesses
    audio_seconds = elapsed = 0.0
    failures = []
    for number in numbers:
        wave = noisy(number.wave, snr, rng)
        if snr is not None:  # how many digits are quieter than the noise (the SNR is per string)
            noise_power = float(np.mean((wave - number.wave) ** 2))
            totals["quiet"] += sum(float(np.mean(number.wave[a:b] ** 2)) < noise_power for a, b in number.words)
        audio_seconds += len(wave) / rate
        started = time.perf_counter()
        words = transcriber.transcribe_samples(wave, rate).words
        elapsed += time.perf_counter() - started
        reference = number.digits
        text = text_at(words, threshold)
        guesses = "".join(w.label for w in words)
        errors = edit_distance(reference, text)
        totals["errors"] += errors
        totals["errors0"] += edit_distance(reference, guesses)
        totals["digits"] += len(reference)
        totals["exact"] += text == reference
        totals["exact0"] += guesses == reference
        totals["uncertain"] += text.count(UNCERTAIN)
        for t, tally in sweep.items():
            hyp = text_at(words, t)
            tally[0] += edit_distance(reference, hyp)
            tally[1] += hyp == reference
            tally[2] += hyp.count(UNCERTAIN)
        found = [(int(round(w.start * rate)), int(round(w.end * rate))) for w in words]
        m = match_segments(number, found)
        totals["count_ok"] += len(found) == len(reference)
        for key in ("missed", "merged", "split", "spurious"):
            totals[key] += m[key]
        offsets += m["offsets"]
        class_errors = 0
        for j, i in m["one_to_one"].items():
            wrong = words[i].label != reference[j]
            class_errors += wrong or words[i].score < threshold
            totals["class_errors0"] += wrong
            for t, tally in sweep.items():
                tally[3] += wrong and words[i].score < t
        totals["class_errors"] += class_errors
        if oracle:
            for (start, stop), digit, noise in zip(number.words, reference, noise_at_words(transcriber, wave, number.words)):
                word = transcriber.classify_region(wave, start, stop, noise)
                totals["oracle_errors"] += word.label != digit or word.score < threshold
                totals["oracle_errors0"] += word.label != digit
                totals["oracle_uncertain"] += word.score < threshold
        if text != reference and len(failures) < 1000:
            failures.append({"reference": reference, "text": text, "speaker": number.speaker,
                             "segmentation_ok": len(m["one_to_one"]) == len(reference) and m["spurious"] == 0})
    n, digits = len(numbers), totals["digits"]
    off = np.abs(np.array(offsets, dtype=float)) / rate * 1000 if offsets else np.zeros((0, 2))
    return {
        "digit_error_rate": totals["errors"] / digits,
        "string_accuracy": totals["exact"] / n,
        "uncertain_marks": totals["uncertain"],
        "digit_error_rate_guessing": totals["errors0"] / digits,
        "string_accuracy_guessing": totals["exact0"] / n,
        "segment_count_accuracy": totals["count_ok"] / n,
        "missed_per_digit": totals["missed"] / digits,
        "merged_per_digit": totals["merged"] / digits,
        "split_per_digit": totals["split"] / digits,
        "spurious_per_digit": totals["spurious"] / digits,
        "classification_error_rate": totals["class_errors"] / digits,
        "segmentation_error_rate": max(0, totals["errors"] - totals["class_errors"]) / digits,
        "classification_error_rate_guessing": totals["class_errors0"] / digits,
        "oracle_digit_error_rate": totals["oracle_errors"] / digits if oracle else None,
        "oracle_digit_error_rate_guessing": totals["oracle_errors0"] / digits if oracle else None,
        "oracle_uncertain_marks": totals["oracle_uncertain"] if oracle else None,
        "mean_start_offset_ms": float(off[:, 0].mean()) if len(off) else None,
        "mean_end_offset_ms": float(off[:, 1].mean()) if len(off) else None,
        "strings": n,
        "digits": digits,
        "digits_below_0db_snr": totals["quiet"],
        "real_time_factor": elapsed / audio_seconds,
        "sweep": {str(t): {"digit_error_rate": e / digits, "string_accuracy": x / n, "uncertain_marks": q,
                           "marks_hiding_errors": (w / q if q else None)} for t, (e, x, q, w) in sweep.items()},
        "failures": failures,
    }


def overrides(cls, text: str) -> dict:
    """``"a=1,b=true"`` to keyword arguments of dataclass ``cls``, typed like its defaults (a ``None`` default:
    a number, where the field's type allows one)."""
    defaults, out = cls(), {}
    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, _, value = item.partition("=")
        if not hasattr(defaults, key):
            raise SystemExit(f"{cls.__name__} has no setting {key!r}")
        current = getattr(defaults, key)
        if isinstance(current, bool):
            out[key] = value.lower() in ("1", "true", "yes")
        elif isinstance(current, (int, float)) and not isinstance(current, bool):
            out[key] = type(current)(float(value)) if isinstance(current, int) else float(value)
        elif current is None and "float" in types[key]:
            out[key] = float(value)
        else:
            raise SystemExit(f"{key} cannot be set from the command line")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.transcribe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common.flags(threads=None)])
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="checkpoint, export or run folder; several: their ensemble; none: the bundled model")
    parser.add_argument("--set", dest="part", choices=sorted(SETS), default="test",
                        help="which takes the numbers are built from (default: test; tune on dev only)")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None, help="default: 0 for test, 1 for dev, 2 for validation")
    parser.add_argument("--threshold", type=float, default=None,
                        help="'?' threshold (default: the Transcriber's default)")
    parser.add_argument("--conditions", default="clean,20,10", help="comma-separated: clean, 20, 10 (dB SNR)")
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle-segmentation pass")
    parser.add_argument("--sweep", action="store_true", help="also print the '?' threshold sweep")
    parser.add_argument("--failures", type=int, default=0, help="print this many failed strings per condition")
    parser.add_argument("--gaps", default="0.05,0.6",
                        help="range of the pauses between digits (s); the issue's set is 0.05,0.6 (shorter: a stress test)")
    parser.add_argument("--vad", default="", help="segmenter settings to override, e.g. start_db=3,stop_db=1 (dev set only)")
    parser.add_argument("--words", default="", help="WordSettings to override, e.g. denoise=false,context_ms=40")
    args = parser.parse_args(argv)
    common.set_threads(args.threads)

    seed = SETS[args.part][1] if args.seed is None else args.seed
    options = {"vad": VadSettings(**overrides(VadSettings, args.vad)), "words": WordSettings(**overrides(WordSettings, args.words))}
    if args.threshold is not None:
        options["threshold"] = args.threshold
    from spokenword.inference.load import load_model

    args.model = "+".join(common.model_name(m) for m in args.models) or "bundled"
    transcriber = Transcriber(load_model(*(args.models or [None])), **options)
    threshold = transcriber.threshold
    rate = transcriber.classifier.sample_rate
    gaps = tuple(float(x) for x in args.gaps.split(","))
    numbers = build_set(resolve_root(args.data_root), args.count, seed, rate, args.part, gaps)
    names = [c.strip().replace(" dB", "").replace("dB", "") for c in args.conditions.split(",") if c.strip()]
    results = {}
    for name in names:
        label = "clean" if CONDITIONS[name] is None else f"{name} dB"
        results[label] = run_condition(transcriber, numbers, CONDITIONS[name], seed, threshold, not args.no_oracle)
    print(f"Connected digits, set {args.part!r}: {args.count} strings from {SETS[args.part][2]}, seed {seed}, "
          f"model {args.model}, '?' threshold {threshold}, pauses {args.gaps} s" + (f", vad {args.vad}" if args.vad else "")
          + (f", words {args.words}" if args.words else ""))
    print("| condition | DER | strings | '?' | DER@0 | strings@0 | segment count ok | missed | merged | split "
          "| spurious | seg. errors | class. errors | oracle DER | oracle DER@0 | RTF |")
    print("|---|" + "---|" * 15)
    pct = lambda x: f"{100 * x:.2f}%" if x is not None else "-"  # noqa: E731
    for name, r in results.items():
        print(f"| {name} | {pct(r['digit_error_rate'])} | {100 * r['string_accuracy']:.1f}% | {r['uncertain_marks']} "
              f"| {pct(r['digit_error_rate_guessing'])} | {100 * r['string_accuracy_guessing']:.1f}% "
              f"| {100 * r['segment_count_accuracy']:.1f}% | {pct(r['missed_per_digit'])} | {pct(r['merged_per_digit'])} "
              f"| {pct(r['split_per_digit'])} | {pct(r['spurious_per_digit'])} | {pct(r['segmentation_error_rate'])} "
              f"| {pct(r['classification_error_rate'])} | {pct(r['oracle_digit_error_rate'])} "
              f"| {pct(r['oracle_digit_error_rate_guessing'])} | {r['real_time_factor']:.3f} |")
    quiet = {name: r["digits_below_0db_snr"] for name, r in results.items() if r["digits_below_0db_snr"]}
    if quiet:
        print("digits quieter than the noise (SNR below 0 dB; the SNR is set per string, takes differ in level): "
              + ", ".join(f"{name} {count}/{results[name]['digits']}" for name, count in quiet.items()))
    if args.sweep:
        print("\n'?' threshold sweep (DER / strings / '?' marks / share of marks hiding a wrong guess):")
        print("| threshold | " + " | ".join(results) + " |")
        print("|---|" + "---|" * len(results))
        for t in SWEEP:
            cells = []
            for r in results.values():
                s = r["sweep"][str(t)]
                hiding = "-" if s["marks_hiding_errors"] is None else f"{100 * s['marks_hiding_errors']:.0f}%"
                cells.append(f"{pct(s['digit_error_rate'])} / {100 * s['string_accuracy']:.1f}% / {s['uncertain_marks']} / {hiding}")
            print(f"| {t} | " + " | ".join(cells) + " |")
    if args.failures:
        for name, r in results.items():
            print(f"\nfailed strings, {name}:")
            for f in r["failures"][: args.failures]:
                print(f"  {f['reference']:>10} -> {f['text']:<12} {f['speaker']:<8} segmentation {'ok' if f['segmentation_ok'] else 'WRONG'}")
    kept = max(STORED_FAILURES, args.failures)
    stored = {name: {**r, "failed_strings": len(r["failures"]), "failures": r["failures"][:kept]} for name, r in results.items()}
    protocol = (f"{args.count} synthetic spoken numbers (3-10 digits of one speaker, pauses {args.gaps} s) from "
                f"{SETS[args.part][2]}, seed {seed}; conditions {', '.join(results)} (white noise, SNR per string); "
                "digit error rate (edit distance / digits) at the '?' threshold and guessing (DER@0), whole-string "
                "accuracy, segmentation counts and the oracle-segmentation DER")
    recipe = {"model": args.model, "models": [common.relative(m) for m in args.models], "set": args.part, "seed": seed, "count": args.count, "threshold": threshold,
              "gaps": args.gaps, "vad": args.vad, "words": args.words}
    name = args.name or f"{args.part}-{args.model}"
    common.write_result(args.out, "transcribe", name, protocol=protocol, command=common.command("transcribe", argv),
                        recipe=recipe, figures={"conditions": stored})
    return 0


if __name__ == "__main__":
    sys.exit(main())
