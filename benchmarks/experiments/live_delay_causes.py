"""Why the live path's slow digits are slow: each digit's delay on the rooms benchmark's numbers and the rule that
gave it out then (an experiment: measured once, retired in the next commit; docs/experiments.md).

    python -m benchmarks.experiments.live_delay_causes [--set dev] [--count 20] [--words release_ms=180]

The numbers, models and live settings are ``python -m benchmarks.rooms``'s (the ``speech`` segmenter, the live
look-ahead, 20 ms frames, the ``quiet`` and ``room`` conditions). Causes, as ``TranscriptionStream`` decides:

- ``quiet after``: no region began within ``merge_gap_ms`` of the word's end (the segmenter closed it late);
- ``next heard``: a region began within ``merge_gap_ms`` and the word was given out once that region had more
  speech than a fragment (``release_ms`` when heard, ``fragment_ms`` when not);
- ``next ended``: it was given out when the next region was complete (the two were one region the
  transcriber split, or the next was short);
- ``end``: the end of the stream.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import replace

import numpy as np

from benchmarks import rooms
from benchmarks.transcribe import overrides
from spokenword.data.splits import resolve_root
from spokenword.inference.load import load_model
from spokenword.serve.live import LIVE_LOOKAHEAD_MS
from spokenword.transcribe.decode import Transcriber, TranscriptionStream, WordSettings


class _Traced(TranscriptionStream):
    """The stream, noting why each word was given out."""

    cause = "end"

    def _complete(self, segment) -> bool:
        done = super()._complete(segment)
        if done:
            start = self.segmenter.word_start
            self.cause = "quiet after" if start is None or start > segment.speech[1] + self._merge_gap else "next heard"
        return done

    def _accept(self, segment, probs):
        for word in super()._accept(segment, probs):
            self.cause = "next ended"
            yield word


def causes(transcriber: Transcriber, number: rooms.Number) -> list[tuple[float, str]]:
    """``(delay s, cause)`` of each digit given out for ``number``, fed in ``rooms.FRAME_S`` frames."""
    rate, wave = transcriber.classifier.sample_rate, number.wave
    stream, step, given = _Traced(transcriber), int(rooms.FRAME_S * rate), []
    for at in range(0, len(wave), step):
        given += [(w, min(len(wave), at + step), stream.cause) for w in stream.feed(wave[at : at + step])]
    stream.cause = "end"
    given += [(w, len(wave), "end") for w in stream.flush()]
    out = []
    for word, at, cause in given:
        overlap = [min(b, word.end * rate) - max(a, word.start * rate) for a, b in number.words]
        j = int(np.argmax(overlap)) if overlap else -1
        if not word.rejected and j >= 0 and overlap[j] > 0:
            out.append(((at - number.words[j][1]) / rate, cause))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.experiments.live_delay_causes", description=__doc__.split("\n\n")[0])
    p.add_argument("--set", dest="part", choices=sorted(rooms.SETS), default="dev")
    p.add_argument("--count", type=int, default=20, help="numbers per speaker and condition")
    p.add_argument("--words", default="", help="WordSettings overrides, KEY=VALUE[,KEY=VALUE]")
    p.add_argument("--runs", default=None, help="the LOSO runs (default: the rooms benchmark's)")
    args = p.parse_args(argv)
    defaults = rooms.parser().parse_args([])
    runs = args.runs or defaults.runs
    vad, words = rooms.SEGMENTERS["speech"]
    words = replace(words, **overrides(WordSettings, args.words))
    bundled = load_model()
    materials = rooms.Materials(resolve_root(None), args.part, bundled.sample_rate)
    seed = rooms.SETS[args.part][1]
    print("| condition | digits | p50 / p95 ms | over 300 ms | over 300 ms by cause |")
    print("|---|---|---|---|---|")
    for condition in rooms.LIVE:
        found = []
        for k, speaker in enumerate(materials.speakers):
            classifier = load_model(*rooms.loso_models(runs, speaker), threads=1, reject_below=bundled.reject_below)
            rng = np.random.default_rng([seed, k, list(rooms.CONDITIONS).index(condition)])
            live = Transcriber(classifier, vad=replace(vad, lookahead_ms=LIVE_LOOKAHEAD_MS), words=words)
            for _ in range(args.count):
                found += causes(live, materials.number(speaker, rooms.CONDITIONS[condition], rng))
        delays = np.array([d for d, _ in found])
        slow = Counter(c for d, c in found if d > 0.3)
        print(f"| {condition} | {len(found)} | {1000 * np.percentile(delays, 50):.0f} / {1000 * np.percentile(delays, 95):.0f} "
              f"| {sum(slow.values())} | " + ", ".join(f"{c} {n}" for c, n in slow.most_common()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
