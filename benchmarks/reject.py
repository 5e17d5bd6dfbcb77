"""Not a digit: how often the default takes other words and noise for digits, and digits for noise.

    python -m benchmarks.reject [MODEL ...] [--reject-below T] [--minutes 10]

MODEL: one model or several (an ensemble); default: the bundled model. Shared options: ``--data.root``,
``--threads``, ``--out``, ``--name`` (:mod:`benchmarks.common`); the result goes to
``OUT/reject/<name>.json``.

Protocol (held-out voices and noise only; :mod:`spokenword.data.corpora.negatives` partitions the
non-digit words by speaker and the noise recordings by time):

- threshold: ``--reject-below``, else the bundled model's (chosen by leave-one-speaker-out
  cross-validation, ``python -m benchmarks.accuracy ensemble``), else none (the model's own best label);
- clips: FSDD's official test split (takes 0-4) with the test speakers' other words and the test part
  of the noise recordings: digit accuracy (a rejected digit is wrong), digits falsely rejected, other
  words and noise clips accepted as a digit;
- long negative audio, through ``transcribe`` (:class:`~spokenword.transcribe.decode.Transcriber`)
  and the live path (:class:`~spokenword.serve.live.LiveStream`, 20 ms float32 frames): ``--minutes``
  of the test speakers' other words with 0.3-1.5 s pauses (each pass over the clips in a new order),
  and ``--minutes`` of noise: the noise recordings' test parts, then white, pink and brown noise made
  here, each piece at a random level (-50 to -10 dBFS). Reported: digits emitted per hour of audio.

LOSO (digits of new voices, each fold at the threshold chosen on the other folds) is in
``python -m benchmarks.accuracy ensemble MEMBER ...``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks import common
from spokenword import audio
from spokenword.data.corpora import FSDD
from spokenword.data.corpora.negatives import with_negatives
from spokenword.data.splits import make_split, resolve_root
from spokenword.inference.evaluate import evaluate
from spokenword.inference.load import load_model
from spokenword.labels import SILENCE, UNKNOWN, is_rejection

FRAME_S = 0.02
PROTOCOL = ("official split: FSDD test takes 0-4 (300 digits) with the test speakers' other words and the test part of "
            "the noise recordings, at reject_below (--reject-below, else the bundled model's; none for other models: "
            "their own best label); long audio: --minutes of the test speakers' other words with 0.3-1.5 s pauses and "
            "--minutes of noise (the recordings' test parts, then generated white/pink/brown noise at -50 to -10 dBFS), "
            "through transcribe (a file) and the live path (20 ms frames): digits emitted per hour")


def clip_figures(result) -> dict:
    d = result.to_dict()
    return {"digit_accuracy": d["accuracy"], "digits": d["count"], "false_reject": d["false_reject_rate"],
            "false_accept": d["false_accept_rate"], "negatives": d["negatives"], "failed": d["failed"]}


def word_strings(clips: list[np.ndarray], rate: int, minutes: float, rng: np.random.Generator) -> np.ndarray:
    """Other words one after another with 0.3-1.5 s pauses, until ``minutes`` long."""
    parts, total = [np.zeros(int(0.5 * rate), np.float32)], 0
    while total < minutes * 60 * rate:
        for i in rng.permutation(len(clips)):
            parts += [clips[i], np.zeros(int(rng.uniform(0.3, 1.5) * rate), np.float32)]
            total += len(parts[-2]) + len(parts[-1])
    return np.concatenate(parts)


def colored(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise, ``n`` samples, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    spectrum *= {"white": 1.0, "pink": f ** -0.5, "brown": 1.0 / f}[kind]
    wave = np.fft.irfft(spectrum, n)
    return (wave / np.sqrt(np.mean(wave ** 2))).astype(np.float32)


def noise_audio(recorded: list[np.ndarray], rate: int, minutes: float, rng: np.random.Generator) -> np.ndarray:
    """Each recorded noise, then generated noise in 5-20 s pieces, each at a random level, ``minutes`` long."""
    pieces, total, kinds = [], 0, ("white", "pink", "brown")
    sources = list(recorded)
    while total < minutes * 60 * rate:
        base = sources.pop(0) if sources else colored(kinds[len(pieces) % 3], int(rng.uniform(5, 20) * rate), rng)
        level = 10 ** (rng.uniform(-50, -10) / 20) / max(float(np.sqrt(np.mean(base ** 2))), 1e-9)
        pieces.append((base * level).astype(np.float32))
        total += len(base)
    return np.clip(np.concatenate(pieces), -1, 1)


def events_per_hour(transcriber, wave: np.ndarray, rate: int) -> dict:
    """Digits emitted for ``wave`` by ``transcribe`` and by the live path, per hour of audio."""
    from spokenword.serve.live import LiveStream

    hours = len(wave) / rate / 3600
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:  # through a file, as `spokenword transcribe` reads it
        path = Path(work) / "negative.wav"
        sf.write(path, wave, rate, subtype="FLOAT")
        words = [w for w in transcriber.transcribe(path).words if not is_rejection(w.label)]
    stream, live = LiveStream(transcriber, rate), []
    step = int(FRAME_S * rate)
    for i in range(0, len(wave), step):
        live += stream.feed(wave[i:i + step].tobytes())
    live += stream.finish()
    live = [e for e in live if e.get("type") == "word" and not is_rejection(e["label"])]
    return {"minutes": round(60 * hours, 2), "transcribe_digits": len(words), "live_digits": len(live),
            "transcribe_per_hour": len(words) / hours, "live_per_hour": len(live) / hours,
            "digits_emitted": "".join(w.label for w in words)[:200], "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reject", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common.flags(threads=1)])
    parser.add_argument("models", nargs="*", help="model files or run folders (several: an ensemble); default: the bundled model")
    parser.add_argument("--reject-below", type=float, default=None, help="use this threshold instead of calibrating one")
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of each kind of long negative audio")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    common.set_threads(args.threads)
    from spokenword.transcribe.decode import Transcriber

    root = resolve_root(args.data_root)
    corpus = with_negatives(FSDD(), root)
    if corpus.__class__ is FSDD:
        parser.error(f"no non-digit data at {root}/speech_commands_words")
    classifier = load_model(*(args.models or [None]), reject_below=args.reject_below)  # None: the bundle's own
    split = make_split(corpus.recordings(root), "official")
    test = evaluate(classifier, split.test)
    figures = {"reject_below": classifier.reject_below, "official": clip_figures(test)}
    print(f"reject below {classifier.reject_below}: {figures['official']}", file=sys.stderr)

    rng = np.random.default_rng(args.seed)
    rate = classifier.sample_rate
    words = [audio.load(r.path, rate) for r in split.test if r.label == UNKNOWN]
    noise_clips = sorted((r for r in split.test if r.label == SILENCE and r.speaker != "quiet"),
                         key=lambda r: (r.speaker, int(r.path.stem.rsplit("_", 1)[-1])))  # {stem}_{part}_{index}.wav
    recorded = [np.concatenate([audio.load(r.path, rate) for r in noise_clips if r.speaker == source])
                for source in sorted({r.speaker for r in noise_clips})]  # each recording's test part, whole
    transcriber = Transcriber(classifier)
    figures["other_words"] = events_per_hour(transcriber, word_strings(words, rate, args.minutes, rng), rate)
    figures["noise"] = events_per_hour(transcriber, noise_audio(recorded, rate, args.minutes, rng), rate)
    for key in ("other_words", "noise"):
        print(f"{key}: {figures[key]}", file=sys.stderr)
    name = args.name or "+".join(common.model_name(m) for m in args.models) or "bundled"
    common.write_result(args.out, "reject", name, protocol=PROTOCOL, command=common.command("reject", argv),
                        recipe={"models": [common.relative(m) for m in args.models] or ["bundled"]}, figures=figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
