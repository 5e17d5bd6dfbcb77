"""Connected-digit benchmark: synthetic spoken numbers built from FSDD TEST recordings.

    python benchmarks/transcribe.py MODEL.ckpt [--count 200] [--seed 0] [--data.root DIR] [--json OUT]

Each string has 3-10 digits spoken by one speaker (as when a person reads out a number): each
digit is a random test recording (takes 0-4, never training recordings) of that speaker, separated by 50-600 ms of silence, with 100-500 ms of silence
before and after. Conditions: clean, and white noise at 20 and 10 dB SNR (relative to the mean
power of the speech recordings). Everything is drawn from ``--seed``, so the set is deterministic.
Reports digit error rate (substitutions + insertions + deletions over reference digits) and
whole-string accuracy per condition.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from spokenword import audio
from spokenword.data import resolve_root
from spokenword.datasets import FSDD
from spokenword.transcribe import Transcriber

CONDITIONS = (("clean", None), ("20 dB", 20.0), ("10 dB", 10.0))


def edit_distance(reference: str, hypothesis: str) -> int:
    """Levenshtein distance between two label strings (one character per label)."""
    row = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1]


def build_set(root: Path, count: int, seed: int, rate: int, part: str = "test") -> list[tuple[str, np.ndarray]]:
    """``count`` (digits, waveform) pairs from the official test split (takes 0-4), or with
    ``part="train"`` from training takes 10-49 (for tuning the segmenter, never the test set)."""
    test = [r for r in FSDD().recordings(root) if (r.take <= 4 if part == "test" else r.take >= 10)]
    by_voice: dict[tuple[str, str], list] = {}
    for rec in test:
        by_voice.setdefault((rec.speaker, rec.label), []).append(rec)
    speakers = sorted({r.speaker for r in test})
    rng = np.random.default_rng(seed)
    cache: dict[Path, np.ndarray] = {}
    out = []
    for _ in range(count):
        digits = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(3, 11))))
        speaker = speakers[int(rng.integers(len(speakers)))]
        parts = [np.zeros(int(rng.uniform(0.1, 0.5) * rate), np.float32)]
        for i, d in enumerate(digits):
            choices = by_voice[(speaker, d)]
            rec = choices[int(rng.integers(len(choices)))]
            if rec.path not in cache:
                cache[rec.path] = audio.load(rec.path, rate)
            parts.append(cache[rec.path])
            gap = rng.uniform(0.05, 0.6) if i < len(digits) - 1 else rng.uniform(0.1, 0.5)
            parts.append(np.zeros(int(gap * rate), np.float32))
        out.append((digits, np.concatenate(parts)))
    return out


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator, speech_power: float) -> np.ndarray:
    noise = rng.standard_normal(len(wave)).astype(np.float32)
    noise *= np.sqrt(speech_power / 10 ** (snr_db / 10))
    return wave + noise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--data.root", dest="root", default=None)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    transcriber = Transcriber(args.model, threshold=args.threshold)
    rate = transcriber.classifier.sample_rate
    strings = build_set(resolve_root(args.root), args.count, args.seed, rate)
    results = {}
    for name, snr in CONDITIONS:
        rng = np.random.default_rng(args.seed + 1000)
        errors = digits = exact = uncertain = 0
        started = time.perf_counter()
        audio_seconds = 0.0
        for reference, wave in strings:
            if snr is not None:
                voiced = np.abs(wave) > 1e-4
                power = float(np.mean(wave[voiced] ** 2)) if voiced.any() else 1e-6
                wave = add_noise(wave, snr, rng, power)
            audio_seconds += len(wave) / rate
            text = transcriber.transcribe_samples(wave, rate).text
            errors += edit_distance(reference, text)
            digits += len(reference)
            exact += text == reference
            uncertain += text.count("?")
        elapsed = time.perf_counter() - started
        results[name] = {
            "digit_error_rate": errors / digits,
            "string_accuracy": exact / len(strings),
            "strings": len(strings),
            "digits": digits,
            "uncertain_marks": uncertain,
            "real_time_factor": elapsed / audio_seconds,
        }
    print(f"Connected digits: {args.count} strings from FSDD test takes 0-4, seed {args.seed}, model {args.model}")
    print("| condition | digit error rate | string accuracy | '?' marks | real-time factor |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {100 * r['digit_error_rate']:.2f}% | {100 * r['string_accuracy']:.1f}% | "
              f"{r['uncertain_marks']} | {r['real_time_factor']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
