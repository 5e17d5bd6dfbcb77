"""The input scale of the pretrained speech embedding: where ``SpeechEmbeddingCNN``'s
``input_mean`` / ``input_std`` come from.

    python -m benchmarks.experiments.embedding_input [--every 10] [--data.root DIR] [--out DIR] [--name NAME]

The backbone of :class:`spokenword.models.SpeechEmbeddingCNN` was trained on the output of its own
front end (``melspectrogram.onnx`` in the same ``openwakeword`` 0.4.0 wheel: 32 log-mel bands of
16 kHz audio at 16-bit scale, ``dB / 10 + 2``). This runs that front end (ONNX Runtime) on FSDD's
training and validation takes (5-49; the test takes 0-4 are left out), every ``--every``-th
recording, each read at 16 kHz and scaled to a peak of half of full scale, and prints the mean and
standard deviation of its values: the scale that a standardised feature image is mapped back to
before the backbone. It prints 8.10 and 1.69 (270 recordings). The defaults, 8.05 and 1.72, were
measured before this script, the same way but on every 10th recording of all takes (the test takes
included: unlabelled input statistics of a fixed front end, no labels) resampled with SciPy's
polyphase filter; the difference is a shift of 0.03 standard deviations, which the head's batch norm
absorbs, so the trained models keep them. The figures are also written to
``OUT/experiments/embedding_input.json``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks import common
from spokenword import audio
from spokenword.data.splits import resolve_root
from spokenword.data.corpora import FSDD
from spokenword.models.speech_embedding import openwakeword_embedding_path

#: the front end's input rate (Hz) and the peak the recordings are scaled to (16-bit full scale / 2)
RATE = 16000
PEAK = 0.5 * 32767


def front_end_values(paths, session) -> np.ndarray:
    """The original front end's ``dB / 10 + 2`` values of these recordings, flattened."""
    values = []
    for path in paths:
        wave = audio.load(path, RATE)
        wave = (wave / max(float(np.abs(wave).max()), 1e-6) * PEAK).astype(np.float32)
        mel = session.run(None, {"input": wave[None]})[0]  # (1, 1, frames, 32), dB
        values.append((mel / 10 + 2).ravel())
    return np.concatenate(values)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.experiments.embedding_input",
                                     description=__doc__.split("\n\n")[0], parents=[common.flags(threads=None)])
    parser.add_argument("--every", type=int, default=10, help="use every N-th recording (default 10)")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be >= 1")
    import onnxruntime as ort

    front_end = openwakeword_embedding_path().with_name("melspectrogram.onnx")
    session = ort.InferenceSession(str(front_end), providers=["CPUExecutionProvider"])
    common.set_threads(args.threads)
    recordings = [r for r in FSDD().recordings(resolve_root(args.data_root)) if r.take >= 5][:: args.every]
    values = front_end_values([r.path for r in recordings], session)
    print("| recordings | values | mean | std | min | max |\n|---|---|---|---|---|---|")
    print(f"| {len(recordings)} | {values.size} | {values.mean():.2f} | {values.std():.2f} | "
          f"{values.min():.2f} | {values.max():.2f} |")
    protocol = (f"the openwakeword front end (melspectrogram.onnx, ONNX Runtime) on every {args.every}th FSDD recording of "
                "takes 5-49, read at 16 kHz and scaled to a peak of half of full scale; statistics of dB / 10 + 2")
    figures = {"recordings": len(recordings), "values": int(values.size), "mean": float(values.mean()),
               "std": float(values.std()), "min": float(values.min()), "max": float(values.max())}
    common.write_result(args.out, "experiments", args.name or "embedding_input", arm="embedding_input", protocol=protocol,
                        command=common.command("experiments.embedding_input", argv), recipe={"every": args.every},
                        figures=figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
