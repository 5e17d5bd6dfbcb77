"""Digit strings in real rooms by new voices: what segmentation does when the pauses are not digital silence.

    python -m benchmarks.rooms [MODEL ...] [--set test|dev] [--count 40] [--segmenters energy,speech]
        [--conditions quiet,30,20,10,room,words] [--runs DIR] [--failures N]

MODEL: one model or several (an ensemble) for every speaker; none (the default): each speaker is transcribed
by the leave-one-speaker-out models that never heard that speaker (the default recipe's two members,
``OUT/accuracy/<name>/runs/loso-<speaker>/version_0``, made by ``python -m benchmarks.accuracy loso``), at the
bundled model's ``reject_below``. Shared options: ``--data.root``, ``--threads``, ``--out``, ``--name``
(:mod:`benchmarks.common`); the result goes to ``OUT/rooms/<set>-<model>.json``.

Each number has 4-7 digits, all takes of one FSDD speaker (``--count`` numbers per speaker), joined as a
person reading a number out in a room would produce them:

- *quiet*: the pauses (50-600 ms between digits, 100-500 ms before and after) are filled with each take's own
  noise floor (noise with the smoothed spectrum of the take's quietest frames, at most 40 dB under its
  loudest: :func:`floor_noise`), not digital silence;
- *30 / 20 / 10 dB*: plus recorded room noise (``speech_commands_words/_background_noise_``: dishes, a cat, an
  exercise bike, a running tap; a random stretch of one of them), the SNR measured over the digits' samples;
- *room*: 20 dB room noise, reverberation (an exponentially decaying random impulse response, RT60
  0.2-0.6 s, direct-to-reverberant ratio 0-10 dB) and, in pauses of 250 ms or more, breath-like (150-350 ms
  of shaped noise 10-25 dB below the speech) and click-like (3-15 ms, as loud as the speech's peaks)
  bursts, each such pause holding one with probability 0.6;
- *words*: the room condition with 1-2 non-digit words (``speech_commands_words``, trimmed, at the
  speaker's level +-6 dB) placed in the pauses: a digit emitted over one of them is a false digit.

Sets (nothing is tuned on ``test``): ``test`` (seed 0): takes 0-24, the noise recordings' test stretch and
the test speakers' other words (:mod:`spokenword.data.corpora.negatives`); ``dev`` (seed 1): takes 25-49 and
the validation stretch and speakers, for tuning.

Reported per condition and segmenter (``energy``: the band-energy detector alone, as before the speech
detector, with today's noise suppression; ``speech``: the same with the learned speech detector,
:class:`~spokenword.transcribe.segment.VadSettings` ``speech``): digit error rate (substitutions +
insertions + deletions over reference digits, a ``?`` counting as a substitution), exact numbers,
substitutions / insertions / deletions per 100 digits, distractor words emitted as a digit, and the live
path's delay and words (the ``quiet`` and ``room`` numbers through the live endpoint's settings,
``serve.live``'s look-ahead and ``release_ms``, in 20 ms frames: audio received after a spoken digit's end
before it is given out, p50 / p95, and the live words' DER and insertions per 100 digits). ``--oracle`` adds
each digit classified from its true boundaries.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import signal

from benchmarks import common
from benchmarks.adapt import CNN, EMBEDDING, RunMissing, loso_run
from benchmarks.transcribe import edit_ops, overrides
from spokenword import audio
from spokenword.data.corpora import FSDD
from spokenword.data.corpora.negatives import NOISE_FOLDER, ROOM_NOISES, WORDS_FOLDER, OtherWords, stretch
from spokenword.data.splits import resolve_root
from spokenword.frontend.host import trim_silence
from spokenword.transcribe.decode import UNCERTAIN, Transcriber, WordSettings
from spokenword.transcribe.segment import VadSettings

SETS = {  # name: (takes, seed, noise/word subset, description)
    "test": (range(0, 25), 0, "test", "FSDD takes 0-24, the test stretch of the noise recordings, the test speakers' other words"),
    "dev": (range(25, 50), 1, "val", "FSDD takes 25-49, the validation stretch of the noise recordings and speakers (tuning)"),
}

@dataclass(frozen=True)
class Condition:
    """How a number is dressed: room noise SNR (dB, ``None``: none), reverberation, bursts, distractor words."""

    snr: float | None = None
    reverb: bool = False
    bursts: bool = False
    words: bool = False


CONDITIONS = {
    "quiet": Condition(),
    "30": Condition(30.0),
    "20": Condition(20.0),
    "10": Condition(10.0),
    "room": Condition(20.0, reverb=True, bursts=True),
    "words": Condition(20.0, reverb=True, bursts=True, words=True),
}
#: name: (segmenter settings, word settings); ``energy`` is the segmentation before the speech detector (band
#: energy alone, no cut of over-long words; today's noise suppression), ``speech`` today's default
SEGMENTERS = {"energy": (VadSettings(speech=False), WordSettings(long_ms=float("inf"))),
              "speech": (VadSettings(), WordSettings())}
FRAME_S = 0.02  # live frames
LIVE = ("quiet", "room")  # conditions also run through the live settings (the delay)


@dataclass
class Number:
    """A spoken number: its digits, waveform, each digit's ``[start, stop)`` and the distractors' regions."""

    digits: str
    wave: np.ndarray
    words: list[tuple[int, int]]
    distractors: list[tuple[int, int]]
    speaker: str


# -- the room ------------------------------------------------------------------------------------
def floor_noise(take: np.ndarray, n: int, rng: np.random.Generator, frame: int = 256, below_db: float = 40.0) -> np.ndarray:
    """``n`` samples of stationary noise like ``take``'s own noise floor: the mean spectrum of its quietest
    tenth of frames, smoothed over frequency (about 500 Hz) and never louder than ``below_db`` under its
    loudest frame (FSDD takes are trimmed tight, so their quietest frames are often still the word's
    edges: unsmoothed and uncapped, the "floor" would be a murmur of the word). Random phases."""
    if n <= 0:
        return np.zeros(0, np.float32)
    hop = frame // 2
    _, _, spec = signal.stft(np.pad(take, (0, max(0, frame - len(take)))), nperseg=frame, noverlap=frame - hop)
    power = np.abs(spec) ** 2
    totals = power.sum(axis=0)
    quiet = np.argsort(totals)[: max(1, power.shape[1] // 10)]
    floor = np.convolve(np.pad(power[:, quiet].mean(axis=1), 8, mode="edge"), np.ones(17) / 17, mode="valid")
    cap = totals.max() * 10 ** (-below_db / 10)
    floor *= min(1.0, cap / max(float(floor.sum()), 1e-30))
    _, _, white = signal.stft(rng.standard_normal(n + frame), nperseg=frame, noverlap=frame - hop)
    unit = np.mean(np.abs(white) ** 2, axis=1)
    _, shaped = signal.istft(white * np.sqrt(floor / np.maximum(unit, 1e-20))[:, None], nperseg=frame, noverlap=frame - hop)
    return shaped[:n].astype(np.float32)


def impulse_response(rate: int, rng: np.random.Generator) -> np.ndarray:
    """A room: the direct sound, then a tail of decaying noise (RT60 0.2-0.6 s, DRR 0-10 dB)."""
    rt60, drr = rng.uniform(0.2, 0.6), rng.uniform(0.0, 10.0)
    t = np.arange(int(rt60 * rate)) / rate
    tail = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    tail[: int(0.002 * rate)] = 0.0  # the first reflections arrive after the direct sound
    tail *= 10 ** (-drr / 20) / np.sqrt(np.sum(tail**2))
    tail[0] = 1.0
    return tail


def burst(rate: int, rng: np.random.Generator, speech_rms: float, speech_peak: float) -> np.ndarray:
    """A breath (150-350 ms of low-passed noise under a smooth envelope, 10-25 dB below the speech) or a
    click (3-15 ms of decaying noise as loud as the speech's peaks)."""
    if rng.uniform() < 0.6:
        n = int(rng.uniform(0.15, 0.35) * rate)
        b, a = signal.butter(2, [200, min(3000, 0.45 * rate)], btype="band", fs=rate)
        x = signal.lfilter(b, a, rng.standard_normal(n)) * signal.get_window("hann", n)
        return (x * speech_rms * 10 ** (-rng.uniform(10, 25) / 20) / np.sqrt(np.mean(x**2) + 1e-20)).astype(np.float32)
    n = int(rng.uniform(0.003, 0.015) * rate)
    x = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.25 * n))
    return (x * speech_peak * rng.uniform(0.5, 1.0) / np.max(np.abs(x))).astype(np.float32)


class Materials:
    """Everything a set's numbers are made of: the takes per speaker and digit, room noise, other words."""

    def __init__(self, root: Path, part: str, rate: int):
        takes, _, subset, _ = SETS[part]
        self.rate = rate
        self.takes: dict[tuple[str, str], list[np.ndarray]] = {}
        for rec in FSDD().recordings(root):
            if rec.take in takes:
                self.takes.setdefault((rec.speaker, rec.label), []).append(audio.load(rec.path, rate))
        self.speakers = sorted({s for s, _ in self.takes})
        self.noises = [stretch(audio.load(root / WORDS_FOLDER / NOISE_FOLDER / f"{name}.wav", rate), subset)
                       for name in ROOM_NOISES]
        hop = rate // 100  # the words without their leading and trailing 10-ms frames 30 dB under their loudest
        self.others = [trim_silence(audio.load(r.path, rate), 30.0, hop, hop) for r in OtherWords().recordings(root)
                       if r.subset == subset]

    def number(self, speaker: str, condition: Condition, rng: np.random.Generator) -> Number:
        rate = self.rate
        digits = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(4, 8))))
        chosen = [self.takes[(speaker, d)][int(rng.integers(len(self.takes[(speaker, d)])))] for d in digits]
        speech = np.concatenate(chosen)
        rms, peak = float(np.sqrt(np.mean(speech**2))), float(np.max(np.abs(speech)))
        gaps = [rng.uniform(0.1, 0.5)] + [rng.uniform(0.05, 0.6) for _ in digits[1:]] + [rng.uniform(0.1, 0.5)]
        distractors = set()
        if condition.words:
            distractors = set(rng.choice(len(gaps), size=int(rng.integers(1, 3)), replace=False).tolist())
        parts, words, others, position = [], [], [], 0
        for i, gap in enumerate(gaps):
            near = chosen[min(i, len(chosen) - 1)]  # the floor of the take beside the pause
            pause = floor_noise(near, int(gap * rate), rng)
            if condition.bursts and gap >= 0.25 and rng.uniform() < 0.6:
                b = burst(rate, rng, rms, peak)
                room = len(pause) - len(b) - int(0.1 * rate)
                if room > 0:
                    at = int(0.05 * rate) + int(rng.integers(room))
                    pause[at : at + len(b)] += b
            if i in distractors:
                other = self.others[int(rng.integers(len(self.others)))]
                other = other * rms * 10 ** (rng.uniform(-6, 6) / 20) / np.sqrt(np.mean(other**2) + 1e-20)
                half = len(pause) // 2
                lead, tail = pause[:half], floor_noise(near, max(int(0.05 * rate), len(pause) - half), rng)
                others.append((position + len(lead), position + len(lead) + len(other)))
                pause = np.concatenate([lead, other.astype(np.float32), tail])
            parts.append(pause)
            position += len(pause)
            if i < len(chosen):
                parts.append(chosen[i])
                words.append((position, position + len(chosen[i])))
                position += len(chosen[i])
        wave = np.concatenate(parts).astype(np.float64)
        if condition.reverb:
            wave = signal.fftconvolve(wave, impulse_response(rate, rng))[: len(wave)]
        if condition.snr is not None:
            noise = self.noises[int(rng.integers(len(self.noises)))]
            start = int(rng.integers(max(1, len(noise) - len(wave))))
            noise = np.resize(noise[start:], len(wave)).astype(np.float64)  # a short stretch repeats
            power = np.mean(np.concatenate([wave[a:b] for a, b in words]) ** 2)
            wave += noise * np.sqrt(power / 10 ** (condition.snr / 10) / (np.mean(noise**2) + 1e-20))
        return Number(digits, wave.astype(np.float32), words, others, speaker)


# -- scoring ---------------------------------------------------------------------------------------
def emitted_over(words, rate: int, regions: list[tuple[int, int]]) -> int:
    """How many of ``regions`` (samples) have a word of the text mostly inside them."""
    hits = 0
    for a, b in regions:
        for w in words:
            start, end = int(w.start * rate), int(w.end * rate)
            if min(b, end) - max(a, start) > 0.5 * min(end - start, b - a):
                hits += 1
                break
    return hits


def transcribe(transcriber: Transcriber, number: Number) -> tuple[list, list[float]]:
    """The words given out for ``number`` fed in 20 ms frames, and each digit's delay: the audio (s) received
    after the end of the spoken digit before the word that covers most of it was given out."""
    rate, wave = transcriber.classifier.sample_rate, number.wave
    stream, step, words, given = transcriber.stream(), int(FRAME_S * rate), [], []
    for at in range(0, len(wave), step):
        for w in stream.feed(wave[at : at + step]):
            words.append(w)
            given.append(min(len(wave), at + step))
    words += list(stream.flush())
    given += [len(wave)] * (len(words) - len(given))
    delays = []
    for w, at in zip(words, given):
        overlap = [min(b, w.end * rate) - max(a, w.start * rate) for a, b in number.words]
        j = int(np.argmax(overlap)) if overlap else -1
        if not w.rejected and j >= 0 and overlap[j] > 0:
            delays.append((at - number.words[j][1]) / rate)
    return [w for w in words if not w.rejected], delays


def score(transcriber: Transcriber, numbers: list[Number], live: Transcriber | None = None) -> dict:
    rate = transcriber.classifier.sample_rate
    tally = {"sub": 0, "ins": 0, "dele": 0, "digits": 0, "exact": 0, "distractors": 0, "emitted": 0}
    per_speaker: dict[str, list[int]] = {}
    failures, delays, audio_s, elapsed = [], [], 0.0, 0.0
    live_tally = {"errors": 0, "ins": 0}  # the live path's own words (its settings differ: serve.live)
    for number in numbers:
        started = time.perf_counter()
        words, _ = transcribe(transcriber, number)
        elapsed += time.perf_counter() - started
        audio_s += len(number.wave) / rate
        text = "".join(UNCERTAIN if w.uncertain else w.label for w in words)
        s, i, d = edit_ops(number.digits, text)
        tally["sub"] += s
        tally["ins"] += i
        tally["dele"] += d
        tally["digits"] += len(number.digits)
        tally["exact"] += text == number.digits
        tally["distractors"] += len(number.distractors)
        tally["emitted"] += emitted_over(words, rate, number.distractors)
        errors = per_speaker.setdefault(number.speaker, [0, 0])
        errors[0] += s + i + d
        errors[1] += len(number.digits)
        if text != number.digits:
            failures.append({"reference": number.digits, "text": text, "speaker": number.speaker})
        if live is not None:
            given, found = transcribe(live, number)
            delays += found
            s, i, d = edit_ops(number.digits, "".join(UNCERTAIN if w.uncertain else w.label for w in given))
            live_tally["errors"] += s + i + d
            live_tally["ins"] += i
    digits = tally["digits"]
    out = {
        "digit_error_rate": (tally["sub"] + tally["ins"] + tally["dele"]) / digits,
        "exact_numbers": tally["exact"] / len(numbers),
        "substitutions_per_100": 100 * tally["sub"] / digits,
        "insertions_per_100": 100 * tally["ins"] / digits,
        "deletions_per_100": 100 * tally["dele"] / digits,
        "numbers": len(numbers),
        "digits": digits,
        "distractors": tally["distractors"],
        "distractors_emitted": tally["emitted"] / tally["distractors"] if tally["distractors"] else None,
        "per_speaker_der": {k: v[0] / v[1] for k, v in sorted(per_speaker.items())},
        "real_time_factor": elapsed / audio_s,
        "failed": len(failures),
        "failures": failures[:20],
    }
    if live is not None:
        out["delays"] = delays
        out["live_digit_error_rate"] = live_tally["errors"] / digits
        out["live_insertions_per_100"] = 100 * live_tally["ins"] / digits
    return out


def oracle(transcriber: Transcriber, numbers: list[Number]) -> dict:
    """Each digit classified from its true region (with the context and noise suppression a detected word
    gets): what is left here is the classifier's, not the segmentation's."""
    wrong = rejected = uncertain = digits = 0
    for number in numbers:
        for (start, stop), digit in zip(number.words, number.digits):
            word = transcriber.classify_region(number.wave, start, stop)
            digits += 1
            rejected += word.rejected
            uncertain += word.uncertain and not word.rejected
            wrong += word.label != digit and not word.rejected
    return {"digit_error_rate": (wrong + rejected + uncertain) / digits, "rejected_per_100": 100 * rejected / digits,
            "wrong_per_100": 100 * wrong / digits, "uncertain_per_100": 100 * uncertain / digits, "digits": digits}


def loso_models(runs: Path, speaker: str) -> list[Path]:
    """The default recipe's leave-one-speaker-out runs holding out ``speaker`` (CNN, embedding)."""
    try:
        return [loso_run(runs, name, speaker) for name in (CNN, EMBEDDING)]
    except RunMissing as err:
        raise SystemExit(f"{err} (or name a MODEL to transcribe every speaker with it)") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.rooms", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common.flags(threads=None)])
    p.add_argument("models", nargs="*", metavar="MODEL", help="one model or several (an ensemble) for every speaker; "
                   "none: each speaker's leave-one-speaker-out models")
    p.add_argument("--set", dest="part", choices=sorted(SETS), default="test")
    p.add_argument("--count", type=int, default=40, help="numbers per speaker and condition")
    p.add_argument("--seed", type=int, default=None, help="default: 0 for test, 1 for dev")
    p.add_argument("--conditions", default=",".join(CONDITIONS))
    p.add_argument("--segmenters", default=",".join(SEGMENTERS))
    p.add_argument("--speakers", default="", help="comma-separated subset of the speakers (default: all)")
    p.add_argument("--runs", type=Path, default=common.RESULTS,
                   help="results root holding accuracy/NAME/runs/loso-SPEAKER (default benchmarks/results)")
    p.add_argument("--reject-below", type=float, default=None,
                   help="the word threshold of the leave-one-speaker-out models (default: the bundled model's; a "
                   "candidate recipe is scored at its own, from python -m benchmarks.accuracy ensemble)")
    p.add_argument("--vad", default="", help="segmenter settings to override for every segmenter, e.g. speech_gate=0.4 (dev set only)")
    p.add_argument("--words", default="", help="WordSettings to override, e.g. split_ms=500 (dev set only)")
    p.add_argument("--oracle", action="store_true", help="also classify each digit from its true region (the classifier's share)")
    p.add_argument("--failures", type=int, default=0, help="print this many failed numbers per condition")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    common.set_threads(args.threads)
    from spokenword.inference.load import load_model
    from spokenword.serve.live import LIVE_LOOKAHEAD_MS, LIVE_RELEASE_MS

    seed = SETS[args.part][1] if args.seed is None else args.seed
    conditions = [c.strip().replace("dB", "").strip() for c in args.conditions.split(",") if c.strip()]
    segmenters = [s.strip() for s in args.segmenters.split(",") if s.strip()]
    for name in conditions:
        if name not in CONDITIONS:
            raise SystemExit(f"unknown condition {name!r}: choose from {', '.join(CONDITIONS)}")
    for name in segmenters:
        if name not in SEGMENTERS:
            raise SystemExit(f"unknown segmenter {name!r}: choose from {', '.join(SEGMENTERS)}")
    extra = overrides(VadSettings, args.vad)
    word_extra = overrides(WordSettings, args.words)
    bundled = load_model()
    reject_below = bundled.reject_below if args.reject_below is None else args.reject_below
    materials = Materials(resolve_root(args.data_root), args.part, bundled.sample_rate)
    speakers = [s for s in materials.speakers if not args.speakers or s in args.speakers.split(",")]
    model_name = "+".join(common.model_name(m) for m in args.models) or "loso"
    shared = load_model(*args.models, threads=args.threads) if args.models else None
    classifiers = {s: shared or load_model(*loso_models(args.runs, s), threads=args.threads, reject_below=reject_below)
                   for s in speakers}
    results: dict[str, dict] = {}
    for condition in conditions:
        numbers = []
        for k, speaker in enumerate(speakers):
            rng = np.random.default_rng([seed, k, list(CONDITIONS).index(condition)])
            numbers += [(speaker, materials.number(speaker, CONDITIONS[condition], rng)) for _ in range(args.count)]
        label = condition if not condition[0].isdigit() else f"{condition} dB"
        if args.oracle:
            parts = [oracle(Transcriber(classifiers[s], vad=VadSettings(speech=False)), [n for k, n in numbers if k == s])
                     for s in speakers]
            digits = sum(p["digits"] for p in parts)
            found = {key: sum(p[key] * p["digits"] for p in parts) / digits for key in parts[0] if key != "digits"}
            results.setdefault(label, {})["oracle"] = {**found, "digits": digits}
            print(f"{label:>8}  oracle: DER {100 * found['digit_error_rate']:.2f}%  rejected/wrong/? per 100 "
                  f"{found['rejected_per_100']:.2f}/{found['wrong_per_100']:.2f}/{found['uncertain_per_100']:.2f}", file=sys.stderr)
        for segmenter in segmenters:
            vad, words = replace(SEGMENTERS[segmenter][0], **extra), replace(SEGMENTERS[segmenter][1], **word_extra)
            merged: dict | None = None
            parts = []
            for speaker in speakers:
                mine = [n for s, n in numbers if s == speaker]
                transcriber = Transcriber(classifiers[speaker], vad=vad, words=words)
                live_words = replace(words, release_ms=word_extra.get("release_ms", LIVE_RELEASE_MS))  # as serve.live
                live = (Transcriber(classifiers[speaker], vad=replace(vad, lookahead_ms=LIVE_LOOKAHEAD_MS), words=live_words)
                        if condition in LIVE else None)
                parts.append((mine, score(transcriber, mine, live)))
            merged = combine(parts)
            results.setdefault(label, {})[segmenter] = merged
            print(f"{label:>8} {segmenter:>7}: DER {100 * merged['digit_error_rate']:.2f}%  exact {100 * merged['exact_numbers']:.1f}%  "
                  f"sub/ins/del per 100 {merged['substitutions_per_100']:.2f}/{merged['insertions_per_100']:.2f}/"
                  f"{merged['deletions_per_100']:.2f}" + (f"  distractors emitted {100 * merged['distractors_emitted']:.1f}%"
                                                           if merged["distractors_emitted"] is not None else "")
                  + (f"  live delay p50/p95 {merged['live_delay_ms']['p50']:.0f}/{merged['live_delay_ms']['p95']:.0f} ms"
                     f"  live DER {100 * merged['live_digit_error_rate']:.2f}% ins/100 {merged['live_insertions_per_100']:.2f}"
                     if "live_delay_ms" in merged else ""), file=sys.stderr)
            for f in merged["failures"][: args.failures]:
                print(f"    {f['reference']:>8} -> {f['text']:<10} {f['speaker']}", file=sys.stderr)
    print_table(results)
    protocol = (f"{args.count} numbers (4-7 digits) per FSDD speaker and condition from {SETS[args.part][3]}, seed {seed}; "
                + ("each speaker transcribed by its leave-one-speaker-out models (the default recipe's two members) at the "
                   + (f"bundled reject_below {reject_below}" if args.reject_below is None else f"reject_below {reject_below}")
                   if not args.models else f"every speaker transcribed by {model_name}")
                + "; pauses filled with each take's own noise floor; conditions: " + ", ".join(results)
                + "; DER = (substitutions + insertions + deletions) / digits, '?' a substitution")
    recipe = {"model": model_name, "models": [common.relative(m) for m in args.models], "set": args.part, "seed": seed,
              "count": args.count, "speakers": speakers, "vad": args.vad, "words": args.words,
              "reject_below": None if args.models else reject_below}
    name = args.name or f"{args.part}-{model_name}"
    common.write_result(args.out, "rooms", name, protocol=protocol, command=common.command("rooms", argv), recipe=recipe,
                        figures={"conditions": results})
    return 0


def combine(parts: list[tuple[list[Number], dict]]) -> dict:
    """One speaker's figures after another's, pooled over digits (rates) and numbers (exact numbers)."""
    digits = sum(r["digits"] for _, r in parts)
    numbers = sum(r["numbers"] for _, r in parts)
    distractors = sum(r["distractors"] for _, r in parts)
    pooled = lambda key, weight: sum(r[key] * r[weight] for _, r in parts) / max(1, sum(r[weight] for _, r in parts))  # noqa: E731
    out = {
        "digit_error_rate": pooled("digit_error_rate", "digits"),
        "exact_numbers": pooled("exact_numbers", "numbers"),
        "substitutions_per_100": pooled("substitutions_per_100", "digits"),
        "insertions_per_100": pooled("insertions_per_100", "digits"),
        "deletions_per_100": pooled("deletions_per_100", "digits"),
        "numbers": numbers, "digits": digits, "distractors": distractors,
        "distractors_emitted": (sum((r["distractors_emitted"] or 0) * r["distractors"] for _, r in parts) / distractors
                                if distractors else None),
        "per_speaker_der": {k: v for _, r in parts for k, v in r["per_speaker_der"].items()},
        "real_time_factor": pooled("real_time_factor", "numbers"),
        "failed": sum(r["failed"] for _, r in parts),
        "failures": [f for _, r in parts for f in r["failures"][:4]],
    }
    delays = [d for _, r in parts for d in r.get("delays", [])]
    if delays:
        out["live_delay_ms"] = {"p50": 1000 * float(np.percentile(delays, 50)), "p95": 1000 * float(np.percentile(delays, 95)),
                                "max": 1000 * float(np.max(delays)), "words": len(delays)}
        out["live_digit_error_rate"] = pooled("live_digit_error_rate", "digits")
        out["live_insertions_per_100"] = pooled("live_insertions_per_100", "digits")
    return out


def print_table(results: dict) -> None:
    print("| condition | segmenter | DER | exact numbers | sub / ins / del per 100 digits | distractors emitted | live delay p50 / p95 "
          "| live DER, ins per 100 |")
    print("|---|---|---|---|---|---|---|---|")
    for label, by in results.items():
        for segmenter, r in by.items():
            if segmenter == "oracle":
                continue
            emitted = "-" if r["distractors_emitted"] is None else f"{100 * r['distractors_emitted']:.1f}%"
            delay = (f"{r['live_delay_ms']['p50']:.0f} / {r['live_delay_ms']['p95']:.0f} ms" if "live_delay_ms" in r else "-")
            live = (f"{100 * r['live_digit_error_rate']:.2f}%, {r['live_insertions_per_100']:.2f}"
                    if "live_digit_error_rate" in r else "-")
            print(f"| {label} | {segmenter} | {100 * r['digit_error_rate']:.2f}% | {100 * r['exact_numbers']:.1f}% | "
                  f"{r['substitutions_per_100']:.2f} / {r['insertions_per_100']:.2f} / {r['deletions_per_100']:.2f} | {emitted} | {delay} "
                  f"| {live} |")


if __name__ == "__main__":
    sys.exit(main())
