"""The malformed-audio corpus: every kind of bad (or merely unusual) input a user can hand us.

:func:`build` writes the corpus into a folder and returns one :class:`Case` per input, with the
outcome spokenword must give: ``"ok"`` (decoded and classified) or ``"error"`` (rejected with a
one-line message naming the file). :mod:`tests.reliability.test_hostile_audio` runs them, with the
seeded fuzz corpus of :mod:`tests.reliability.hostile`, through ``classify``, ``evaluate``,
``transcribe`` and the web service.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 8000


@dataclass(frozen=True)
class Case:
    name: str  # the class of input, e.g. "nan-samples"
    path: Path
    expect: str  # "ok" | "error"


def _tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(max(1, int(seconds * rate))) / rate
    wave = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float64)
    return np.repeat(wave[:, None], channels, axis=1) if channels > 1 else wave


def _write(path: Path, samples: np.ndarray, rate: int = RATE, subtype: str | None = None) -> Path:
    sf.write(path, samples, rate, subtype=subtype, format="WAV")
    return path


def _header(rate: int, n_bytes: int, bits: int = 16, channels: int = 1) -> bytes:
    """A canonical 44-byte PCM RIFF/WAVE header announcing ``n_bytes`` of sample data."""
    block = channels * bits // 8
    return (b"RIFF" + struct.pack("<I", 36 + n_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
            + b"data" + struct.pack("<I", n_bytes))


def build(folder: Path) -> list[Case]:
    """Write the corpus under ``folder`` (created) and return its cases."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(name: str, path: Path, expect: str) -> None:
        cases.append(Case(name, path, expect))

    good = _write(folder / "reference.wav", _tone(0.5, RATE), subtype="PCM_16")
    add("valid-16bit", good, "ok")
    full = good.read_bytes()
    (folder / "truncated_header.wav").write_bytes(full[:20])
    add("truncated-header", folder / "truncated_header.wav", "error")
    (folder / "zero_data.wav").write_bytes(_header(RATE, 0))
    add("zero-length-data-chunk", folder / "zero_data.wav", "error")
    add("single-sample", _write(folder / "single.wav", np.array([0.25]), subtype="PCM_16"), "ok")
    nan = _tone(0.5, RATE); nan[100] = np.nan
    add("nan-samples", _write(folder / "nan.wav", nan, subtype="FLOAT"), "error")
    inf = _tone(0.5, RATE); inf[100] = np.inf
    add("inf-samples", _write(folder / "inf.wav", inf, subtype="FLOAT"), "error")
    add("8bit-unsigned", _write(folder / "u8.wav", _tone(0.5, RATE), subtype="PCM_U8"), "ok")
    add("24bit", _write(folder / "s24.wav", _tone(0.5, RATE), subtype="PCM_24"), "ok")
    add("32bit-float", _write(folder / "f32.wav", _tone(0.5, RATE), subtype="FLOAT"), "ok")
    add("64bit-float", _write(folder / "f64.wav", _tone(0.5, RATE), subtype="DOUBLE"), "ok")
    add("6-channels", _write(folder / "six.wav", _tone(0.5, RATE, channels=6), subtype="PCM_16"), "ok")
    add("96kHz", _write(folder / "hi.wav", _tone(0.5, 96_000), rate=96_000, subtype="PCM_16"), "ok")
    add("1Hz-rate", _write(folder / "one_hz.wav", np.zeros(4), rate=1, subtype="PCM_16"), "error")
    add("10-minutes", _write(folder / "long.wav", _tone(600, RATE), subtype="PCM_16"), "ok")
    mp3 = io.BytesIO()
    sf.write(mp3, _tone(0.5, RATE), RATE, format="MP3")
    (folder / "mp3_inside.wav").write_bytes(mp3.getvalue())
    # libsndfile sniffs the content, not the name: MPEG bytes named .wav decode like an .mp3
    add("mp3-named-wav", folder / "mp3_inside.wav", "ok")
    (folder / "random.wav").write_bytes(np.random.default_rng(0).bytes(4096))
    add("random-bytes", folder / "random.wav", "error")
    (folder / "empty.wav").write_bytes(b"")
    add("empty-file", folder / "empty.wav", "error")
    (folder / "a_directory.wav").mkdir(exist_ok=True)
    add("directory", folder / "a_directory.wav", "error")
    add("missing-path", folder / "does_not_exist.wav", "error")
    locked = _write(folder / "locked.wav", _tone(0.5, RATE), subtype="PCM_16")
    os.chmod(locked, 0)
    # root reads through mode 000; then the file is simply valid
    add("no-read-permission", locked, "ok" if os.access(locked, os.R_OK) else "error")
    odd = folder / "dir with spaces ü" / "ünïcödé name 七.wav"
    odd.parent.mkdir(exist_ok=True)
    add("spaces-non-ascii-path", _write(odd, _tone(0.5, RATE), subtype="PCM_16"), "ok")
    return cases
