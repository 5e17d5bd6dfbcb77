"""What silence trimming cuts, speaker by speaker and word by word: the noise-floor rule against the peak rule alone.

    python -m benchmarks.experiments.trimming [CONFIG] [--data.root DIR] [--out DIR] [--name NAME]

For every FSDD recording, the config's trimming (``data.features`` as ``spokenword fit`` builds it:
``trim_db`` below the loudest frame,
and ``trim_floor_db`` above the recording's quietest frame within 20 dB of the loudest; default
``configs/fsdd_cnn_newvoices.yaml``) is compared with the peak rule alone (``trim_floor_db`` unset).
Prints, per speaker, the milliseconds the floor rule cuts beyond the peak rule (mean over each word's
clips, and over all), the share of clips it shortens, and what the peak rule alone cuts. Quiet
consonants at a word's edges (/s/ of "six", /t/ of "eight", /f/ of "four") are where the floor rule
eats into speech when a clip is cut tightly around the word. The table is also written to
``OUT/experiments/trimming-<config>.json``.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks import common
from spokenword import audio
from spokenword.data.splits import resolve_root
from spokenword.data.corpora import FSDD
from spokenword.frontend.settings import FeatureSettings
from spokenword.frontend.host import trim_silence

DEFAULT_CONFIG = common.REPO / "configs" / "fsdd_cnn_newvoices.yaml"


def settings_of(config: Path, root: str | None = None) -> FeatureSettings:
    """The feature settings of a training config (its data module's ``features``, as ``spokenword fit`` builds it)."""
    return common.build(config, *([f"--data.root={root}"] if root else [])).datamodule.features


def cut_ms(wave: np.ndarray, sample_rate: int, s: FeatureSettings) -> tuple[float, float]:
    """(ms cut by the peak rule alone, ms the floor rule cuts beyond it) for one clip ``(T,)``."""
    peak_only = trim_silence(wave, s.trim_db, s.n_fft, s.hop_length, None).shape[-1]
    with_floor = trim_silence(wave, s.trim_db, s.n_fft, s.hop_length, s.trim_floor_db).shape[-1]
    return 1000 * (wave.shape[-1] - peak_only) / sample_rate, 1000 * (peak_only - with_floor) / sample_rate


def table(recordings, sample_rate: int, s: FeatureSettings) -> list[str]:
    cuts: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for r in recordings:
        cuts[(r.speaker, r.label)].append(cut_ms(audio.load(r.path, sample_rate), sample_rate, s))
    speakers = sorted({k[0] for k in cuts})
    present = {k[1] for k in cuts}
    labels = [label for label in FSDD().labels(recordings) if label in present]  # the corpus's label order
    head = ["speaker", *(f'"{label}"' for label in labels), "all", "clips shortened", "peak rule alone"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for speaker in speakers:
        every = [c for label in labels for c in cuts.get((speaker, label), [])]
        floor = np.array([c[1] for c in every])
        cells = [f"{np.mean([c[1] for c in cuts[(speaker, label)]]):.0f}" if cuts.get((speaker, label)) else "–" for label in labels]
        lines.append("| " + " | ".join([speaker, *cells, f"{floor.mean():.1f}", f"{100 * (floor > 0).mean():.0f} %",
                                        f"{np.mean([c[0] for c in every]):.1f}"]) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.experiments.trimming", description=__doc__.split("\n\n")[0],
                                     parents=[common.flags(threads=None)])
    parser.add_argument("config", nargs="?", type=Path, default=DEFAULT_CONFIG, help="training config (its data.features)")
    parser.add_argument("--sample-rate", type=int, default=8000, help="rate the recordings are read at (Hz)")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        parser.error(f"{args.config}: no such config")
    common.set_threads(args.threads)
    s = settings_of(args.config, args.data_root)
    if s.trim_db is None or s.trim_floor_db is None:
        parser.error(f"{args.config}: data.features needs trim_db and trim_floor_db to compare the two rules")
    recordings = FSDD().recordings(resolve_root(args.data_root))
    print(f"ms cut by the floor rule (trim_floor_db {s.trim_floor_db:g}) beyond the peak rule (trim_db {s.trim_db:g}), "
          f"mean per clip; {len(recordings)} recordings\n")
    lines = table(recordings, args.sample_rate, s)
    print("\n".join(lines))
    protocol = (f"every FSDD recording read at {args.sample_rate} Hz; ms cut by the floor rule beyond the peak rule, mean "
                "per clip per speaker and word; share of clips it shortens; ms the peak rule alone cuts")
    common.write_result(args.out, "experiments", args.name or f"trimming-{args.config.stem}", arm="trimming",
                        protocol=protocol, command=common.command("experiments.trimming", argv),
                        recipe={"config": common.relative(args.config), "trim_db": s.trim_db, "trim_floor_db": s.trim_floor_db},
                        figures={"table": lines, "recordings": len(recordings)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
