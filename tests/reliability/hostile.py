"""The hostile-audio fuzz corpus: valid recordings of one real FSDD clip in every container spokenword
reads, and seeded mutations of them (issue 34).

:func:`build` makes it in memory (nothing is committed; tests write it under ``tmp_path``) as a
list of :class:`Sample`: ``kind`` names the damage (``valid``, ``truncate``, ``wav-header:rate``,
``flac-streaminfo:total-samples=0``, ...), ``expect`` what spokenword must do with it where that is
known (``ok``: classified; ``error``: rejected with one line; ``too-long``: rejected by the decode
limit; ``any``: either, but never a crash).

Bases (each skipped, with the reason in :func:`skipped`, where the installed libsndfile cannot write
it): WAV 16-bit, 24-bit, float and stereo, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF. Damage:

* header fields set to absurd values: RIFF/fmt/data sizes, format tag, channels, sample rate, byte
  rate, block align and bit depth of WAV; STREAMINFO of FLAC (block and frame sizes, rate, channels,
  bit depth, total samples: 0 = "unknown", as the issue's streamed FLAC, 1, hours, 2**36 - 1);
  OGG identification headers and granule positions (CRC recomputed, so the decoder sees the field,
  not a bad checksum); MP3 frame headers and ID3 sizes; AIFF's COMM chunk;
* truncation at many points, from the first bytes to the last one;
* random bytes written over the payload, zeroed and noisy regions;
* concatenations (a file twice, two formats, a file and noise);
* files that are not audio at all: empty, one byte, noise, text, other formats' magic numbers;
* samples that are not usable: NaN, infinity, huge float values;
* decompression bombs: FLAC of silence longer than the limit, with its length stated and with it
  left "unknown".
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

#: (name, format, subtype, channels, suffix) of each base recording.
BASES = [
    ("wav16", "WAV", "PCM_16", 1, ".wav"),
    ("wav24", "WAV", "PCM_24", 1, ".wav"),
    ("wavfloat", "WAV", "FLOAT", 1, ".wav"),
    ("wavstereo", "WAV", "PCM_16", 2, ".wav"),
    ("flac", "FLAC", "PCM_16", 1, ".flac"),
    ("vorbis", "OGG", "VORBIS", 1, ".ogg"),
    ("opus", "OGG", "OPUS", 1, ".ogg"),
    ("mp3", "MP3", "MPEG_LAYER_III", 1, ".mp3"),
    ("aiff", "AIFF", "PCM_16", 1, ".aiff"),
]
EXPECTS = ("ok", "error", "too-long", "any")


@dataclass(frozen=True)
class Sample:
    name: str  # file name (unique; its suffix is the base's)
    base: str  # the base recording it was made from ("" for files made from nothing)
    kind: str  # the damage, e.g. "truncate" or "wav-header:channels"
    data: bytes
    expect: str = "any"  # one of EXPECTS
    label: str = ""  # the digit spoken in the base recording

    @property
    def good(self) -> bool:
        """A valid, undamaged recording: it must be classified."""
        return self.kind == "valid"


_SKIPPED: dict[str, str] = {}


def skipped() -> dict[str, str]:
    """Bases left out of the last :func:`build`, with the reason."""
    return dict(_SKIPPED)


def encode(samples: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def bases(clip: np.ndarray, rate: int) -> dict[str, tuple[bytes, str]]:
    """``name -> (file bytes, suffix)`` of each base the installed libsndfile can write."""
    _SKIPPED.clear()
    formats = sf.available_formats()
    out = {}
    for name, fmt, subtype, channels, suffix in BASES:
        if fmt not in formats or subtype not in sf.available_subtypes(fmt):
            _SKIPPED[name] = f"libsndfile {sf.__libsndfile_version__} has no {fmt}/{subtype}"
            continue
        samples = np.stack([clip, clip[::-1]], axis=1) if channels == 2 else clip
        try:
            out[name] = (encode(samples, rate, fmt, subtype), suffix)
        except (sf.LibsndfileError, RuntimeError, ValueError) as err:
            _SKIPPED[name] = f"libsndfile {sf.__libsndfile_version__} cannot write {fmt}/{subtype}: {err}"
    return out


# -- byte surgery -----------------------------------------------------------------------------------
def _put(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    size = struct.calcsize(fmt)
    if offset + size <= len(out):
        out[offset:offset + size] = struct.pack(fmt, value & ((1 << (8 * size)) - 1))
    return bytes(out)


def _chunk(data: bytes, tag: bytes, start: int = 12) -> int:
    """Offset of the RIFF/AIFF chunk ``tag`` (its 4-byte id), or -1."""
    return data.find(tag, start)


WAV_FIELDS = {  # field: (offset from the fmt chunk (or absolute for riff/data), struct format, values)
    "riff-size": (None, "<I", [0, 1, 0xFFFFFFFF]),
    "fmt-size": (4, "<I", [0, 2, 0xFFFFFFF0]),
    "format-tag": (8, "<H", [0, 2, 3, 0x55, 0xFFFE, 0x1234]),
    "channels": (10, "<H", [0, 2, 7, 255, 65535]),
    "rate": (12, "<I", [0, 1, 999, 384_001, 0x7FFFFFFF, 0xFFFFFFFF]),
    "byte-rate": (16, "<I", [0, 0xFFFFFFFF]),
    "block-align": (20, "<H", [0, 1, 3, 65535]),
    "bits": (22, "<H", [0, 1, 7, 12, 33, 64, 65535]),
    "data-size": ("data", "<I", [0, 1, 3, 0x7FFFFFFF, 0xFFFFFFFF]),
}


def wav_header(data: bytes, field: str, value: int) -> bytes:
    where, fmt, _ = WAV_FIELDS[field]
    if where is None:
        return _put(data, 4, fmt, value)
    if where == "data":
        return _put(data, _chunk(data, b"data") + 4, fmt, value)
    return _put(data, _chunk(data, b"fmt ") + where, fmt, value)


def flac_streaminfo(data: bytes, **fields: int) -> bytes:
    """``data`` (a FLAC file whose first block is STREAMINFO, at byte 8) with fields replaced:
    ``min_block``, ``max_block``, ``min_frame``, ``max_frame``, ``rate`` (20 bits), ``channels``
    (3 bits, channels - 1), ``bits`` (5 bits, bits per sample - 1), ``total`` (36 bits)."""
    out = bytearray(data)
    for name, (offset, size) in {"min_block": (8, 2), "max_block": (10, 2), "min_frame": (12, 3),
                                 "max_frame": (15, 3)}.items():
        if name in fields:
            out[offset:offset + size] = (fields[name] & ((1 << (8 * size)) - 1)).to_bytes(size, "big")
    packed = int.from_bytes(out[18:26], "big")
    for name, (shift, bits) in {"rate": (44, 20), "channels": (41, 3), "bits": (36, 5), "total": (0, 36)}.items():
        if name in fields:
            mask = ((1 << bits) - 1) << shift
            packed = (packed & ~mask) | ((fields[name] << shift) & mask)
    out[18:26] = packed.to_bytes(8, "big")
    return bytes(out)


def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def _ogg_pages(data: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` of each well-formed Ogg page."""
    pages, at = [], 0
    while at + 27 <= len(data) and data[at:at + 4] == b"OggS":
        segments = data[at + 26]
        body = sum(data[at + 27:at + 27 + segments])
        end = at + 27 + segments + body
        if end > len(data):
            break
        pages.append((at, end))
        at = end
    return pages


def _ogg_fix_crc(data: bytearray, start: int, end: int) -> None:
    data[start + 22:start + 26] = b"\0\0\0\0"
    crc = 0
    for byte in data[start:end]:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) & 0xFF) ^ byte]
    data[start + 22:start + 26] = struct.pack("<I", crc)


def ogg_field(data: bytes, page: int, offset: int, fmt: str, value: int) -> bytes:
    """Set a field ``offset`` bytes into page ``page`` (-1: the last) and recompute its CRC."""
    pages = _ogg_pages(data)
    if not pages:
        return data
    start, end = pages[page]
    out = bytearray(data)
    size = struct.calcsize(fmt)
    if start + offset + size <= end:
        out[start + offset:start + offset + size] = struct.pack(fmt, value & ((1 << (8 * size)) - 1))
    _ogg_fix_crc(out, start, end)
    return bytes(out)


def _first_packet(data: bytes) -> int:
    """Offset, within the first page, of its first packet."""
    return 27 + data[26] if len(data) > 27 else 27


# -- the corpus -------------------------------------------------------------------------------------
def _float_wav(samples: np.ndarray, rate: int) -> bytes:
    return encode(samples.astype(np.float32), rate, "WAV", "FLOAT")


def build(clip_path: Path, seed: int = 34, *, bomb_seconds: float = 660.0, extra_good: list[Path] = ()) -> list[Sample]:
    """The corpus made from the FSDD recording at ``clip_path`` (named ``{digit}_{speaker}_{take}.wav``)
    and the generator ``seed``. ``bomb_seconds``: length of the silent FLAC bombs (over the default
    600 s limit). ``extra_good``: more valid recordings to mix in (as they are)."""
    rng = np.random.default_rng(seed)
    clip, rate = sf.read(clip_path, dtype="float32")
    label = Path(clip_path).name.split("_")[0]
    made = bases(clip, rate)
    samples: list[Sample] = []

    def add(base: str, kind: str, data: bytes, expect: str = "any", suffix: str | None = None,
            spoken: str | None = None) -> None:
        if suffix is None:
            suffix = made[base][1] if base in made else ".wav"
        slug = kind.replace(":", "-").replace("=", "").replace("/", "-")
        samples.append(Sample(f"{len(samples):03d}_{base or 'none'}_{slug}{suffix}", base, kind, bytes(data),
                              expect, spoken if spoken is not None else (label if base else "")))

    for base, (data, _) in made.items():
        add(base, "valid", data, "ok")
    for path in extra_good:
        add("wav16", "valid", Path(path).read_bytes(), "ok", ".wav", Path(path).name.split("_")[0])

    # header fields
    if "wav16" in made:
        for field, (_, _, values) in WAV_FIELDS.items():
            for value in values:
                add("wav16", f"wav-header:{field}", wav_header(made["wav16"][0], field, value))
    for base in ("wav24", "wavfloat", "wavstereo"):
        if base in made:
            fields = list(WAV_FIELDS)
            for field in rng.choice(fields, size=6, replace=False):
                values = WAV_FIELDS[str(field)][2]
                add(base, f"wav-header:{field}", wav_header(made[base][0], str(field), int(rng.choice(values))))
    if "flac" in made:
        flac = made["flac"][0]
        real = len(clip)
        add("flac", "flac-streaminfo:total-samples=0", flac_streaminfo(flac, total=0), "ok")
        add("flac", "flac-streaminfo:total-samples=1", flac_streaminfo(flac, total=1))
        add("flac", "flac-streaminfo:total-samples=half", flac_streaminfo(flac, total=real // 2))
        add("flac", "flac-streaminfo:total-samples=5h", flac_streaminfo(flac, total=rate * 5 * 3600), "too-long")
        add("flac", "flac-streaminfo:total-samples=max", flac_streaminfo(flac, total=(1 << 36) - 1), "too-long")
        for name, values in {"rate": [0, 1, 999, 655_350, (1 << 20) - 1], "channels": [1, 7], "bits": [0, 3, 31],
                             "min_block": [0, 65535], "max_block": [0, 15, 65535], "max_frame": [1, (1 << 24) - 1]}.items():
            for value in values:
                add("flac", f"flac-streaminfo:{name}", flac_streaminfo(flac, **{name: value}))
        add("flac", "flac-streaminfo:rate+total=0", flac_streaminfo(flac, rate=(1 << 20) - 1, total=0))
        for offset, value in [(4, 0x7F), (5, 0), (5, 0xFF), (0, 0)]:  # block type / length / magic
            add("flac", "flac-metadata-block", _put(flac, offset, "B", value))
        add("flac", "flac-md5", flac[:26] + rng.bytes(16) + flac[42:])
    for base in ("vorbis", "opus"):
        if base in made:
            ogg = made[base][0]
            packet = _first_packet(ogg)
            fields = ([(packet + 11, "B", [0, 2, 255]), (packet + 12, "<I", [0, 1, 999, 0xFFFFFFFF]),
                       (packet + 28, "B", [0, 0xFF])] if base == "vorbis" else
                      [(packet + 9, "B", [0, 2, 255]), (packet + 12, "<I", [0, 1, 0xFFFFFFFF]),
                       (packet + 10, "<H", [0xFFFF])])
            for offset, fmt, values in fields:
                for value in values:
                    add(base, "ogg-id-header", ogg_field(ogg, 0, offset, fmt, value))
            for value in [0, (1 << 62), (1 << 64) - 1, rate * 5 * 3600]:  # the last granule: the length libsndfile reports
                add(base, "ogg-granule", ogg_field(ogg, -1, 6, "<Q", value))
            add(base, "ogg-version", ogg_field(ogg, 0, 4, "B", 1))
            add(base, "ogg-bad-crc", _put(ogg, 22, "<I", 0xDEADBEEF))
    if "mp3" in made:
        mp3 = made["mp3"][0]
        for offset, value in [(1, 0xE0), (2, 0xF0), (2, 0x0C), (1, 0xE7), (3, 0xFF)]:
            add("mp3", "mp3-frame-header", _put(mp3, offset, "B", value))
        id3 = b"ID3\x04\x00\x00" + bytes([0x7F, 0x7F, 0x7F, 0x7F])
        add("mp3", "mp3-id3-huge", id3 + mp3)
        add("mp3", "mp3-id3-only", id3 + b"\0" * 64)
        xing = mp3.find(b"Xing")
        if xing >= 0:
            add("mp3", "mp3-xing-frames", _put(mp3, xing + 8, ">I", 0xFFFFFFFF))
            add("mp3", "mp3-xing-bytes", _put(mp3, xing + 12, ">I", 0))
    if "aiff" in made:
        aiff = made["aiff"][0]
        comm = _chunk(aiff, b"COMM") + 8
        for offset, fmt, value in [(0, ">H", 0), (0, ">H", 65535), (2, ">I", 0), (2, ">I", 0xFFFFFFFF), (6, ">H", 0),
                                   (6, ">H", 99), (8, ">H", 0x7FFF), (8, ">H", 0), (8, ">H", 0x401E)]:
            add("aiff", "aiff-comm", _put(aiff, comm + offset, fmt, value))
        add("aiff", "aiff-form-size", _put(aiff, 4, ">I", 0xFFFFFFFF))

    # truncation, overwritten bytes, concatenation: every base
    names = list(made)
    for base, (data, _) in made.items():
        n = len(data)
        cuts = sorted({1, 4, 12, 27, 44, 60, n // 4, n // 2, n - 1} | {int(c) for c in rng.integers(2, n, size=3)})
        for cut in cuts:
            if 0 < cut < n:
                add(base, "truncate", data[:cut])
        for count in (1, 16, 256):
            out = bytearray(data)
            for at in rng.integers(min(64, n - 1), n, size=count):
                out[at] = int(rng.integers(256))
            add(base, "random-bytes", out)
        lo = int(rng.integers(min(64, n - 1), max(65, n // 2)))
        hi = min(n, lo + max(1, n // 8))
        add(base, "noise-region", data[:lo] + rng.bytes(hi - lo) + data[hi:])
        add(base, "zero-region", data[:lo] + bytes(hi - lo) + data[hi:])
        add(base, "concat-self", data + data)
        other = names[(names.index(base) + 1) % len(names)]
        add(base, "concat-other-format", data + made[other][0])
        add(base, "concat-noise", data + rng.bytes(2048))
        add(base, "noise-then-file", rng.bytes(64) + data)

    # not audio, or not usable samples
    for kind, data in [("empty", b""), ("one-byte", b"\0"), ("one-byte", b"R"), ("noise-4k", rng.bytes(4096)),
                       ("noise-64k", rng.bytes(65536)), ("text", b"hello, this is not audio\n" * 40),
                       ("png", b"\x89PNG\r\n\x1a\n" + rng.bytes(512)), ("zip", b"PK\x03\x04" + rng.bytes(512)),
                       ("riff-only", b"RIFF\x24\x00\x00\x00WAVE"), ("flac-magic-only", b"fLaC"),
                       ("ogg-magic-only", b"OggS" + bytes(23)), ("id3-only", b"ID3\x03\x00\x00\x00\x00\x00\x00"),
                       ("mp3-sync-noise", b"\xff\xfb" * 2048)]:
        add("", kind, data, "error" if kind in ("empty", "one-byte", "riff-only", "flac-magic-only", "text") else "any")
    wave = clip.astype(np.float32)
    for kind, values, expect in [("nan-sample", [np.nan], "error"), ("inf-sample", [np.inf, -np.inf], "error"),
                                 ("huge-float", [3e38, -3e38], "any"), ("denormal", [1e-45], "ok")]:
        bad = wave.copy()
        bad[rng.integers(len(bad), size=len(values))] = values
        add("wavfloat", f"samples:{kind}", _float_wav(bad, rate), expect, ".wav")
    add("wavfloat", "samples:all-huge", _float_wav(np.full(4000, 1e30, np.float32), rate), "any", ".wav")
    add("wavfloat", "samples:rate-1hz", _float_wav(wave[:16], 1), "error", ".wav")
    add("wavfloat", "samples:rate-384001", wav_header(_float_wav(wave, rate), "rate", 384_001), "error", ".wav")
    if "flac" in made:
        silence = np.zeros(int(bomb_seconds * rate), np.float32)
        bomb = encode(silence, rate, "FLAC", "PCM_16")
        add("flac", "bomb:stated-length", bomb, "too-long")
        add("flac", "bomb:unknown-length", flac_streaminfo(bomb, total=0), "too-long")
    return samples


def write(samples: list[Sample], folder: Path) -> list[Path]:
    """Write each sample under ``folder`` (created); the paths, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for sample in samples:
        path = folder / sample.name
        path.write_bytes(sample.data)
        paths.append(path)
    return paths


def damage_table(samples: list[Sample], outcomes: list[str]) -> dict[str, dict[str, int]]:
    """``{kind family: {outcome: count}}`` (the family: the kind before ``:``)."""
    table: dict[str, dict[str, int]] = {}
    for sample, outcome in zip(samples, outcomes):
        row = table.setdefault(sample.kind.split(":")[0], {})
        row[outcome] = row.get(outcome, 0) + 1
    return dict(sorted(table.items()))
