"""What is not a digit: other words (``_unknown_``), noise (``_silence_``), and :class:`Combined`, which
adds them to a corpus of words.

Both read the Speech Commands subset under ``<root>/speech_commands_words`` (its README: 817
one-second clips of 25 non-digit words by 236 speakers, six background-noise recordings; CC BY 4.0)
and partition it themselves, so that every split of the combined corpus tests on voices and noise
the model never trained on:

* :class:`OtherWords`: by speaker, from a hash of the speaker id (the Speech Commands way: a
  speaker's clips stay on one side whatever else is added);
* :class:`NoiseClips`: by time, each recording's first 70 % for training, the next 15 % for
  validation, the last 15 % for test, cut into clips written once to the feature cache folder.

:class:`ReversedWords` adds synthetic other words for training: the training speakers' clips played
backwards (the sounds of speech in an order no word has).

A :class:`~spokenword.data.corpora.Recording` with a ``subset`` and no take number keeps that subset
under every split (:func:`spokenword.data.splits.make_split`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from spokenword import audio
from spokenword.data.corpora.base import Corpus, DatasetError, Recording, _natural_key, resolve_cache_dir
from spokenword.data.corpora.folder import AUDIO_SUFFIXES
from spokenword.data.corpora.speech_commands import parse_clip_name
from spokenword.labels import SILENCE, UNKNOWN

WORDS_FOLDER = "speech_commands_words"
NOISE_FOLDER = "_background_noise_"
#: cumulative fractions: a speaker hash (or a point in a noise recording) below the first is train,
#: below the second validation, the rest test
PARTITION = (0.70, 0.85)
#: the folder's recordings of real rooms (its white and pink noise are synthetic)
ROOM_NOISES = ("doing_the_dishes", "dude_miaowing", "exercise_bike", "running_tap")


def _subset(fraction: float) -> str:
    return "train" if fraction < PARTITION[0] else "val" if fraction < PARTITION[1] else "test"


def stretch(wave: np.ndarray, subset: str) -> np.ndarray:
    """The ``train`` / ``val`` / ``test`` part of a long noise recording ``(T,)``, by time (:data:`PARTITION`):
    the one place recordings are cut, for the noise clips, training noise and the benchmarks."""
    bounds = {"train": (0.0, PARTITION[0]), "val": PARTITION, "test": (PARTITION[1], 1.0)}
    if subset not in bounds:
        raise ValueError(f"subset must be one of {sorted(bounds)}, got {subset!r}")
    low, high = bounds[subset]
    return wave[int(low * len(wave)) : int(high * len(wave))]


def write_clip(path: Path, wave: np.ndarray, rate: int) -> Path:
    """Write ``wave`` ``(T,)`` as 16-bit PCM at ``path`` unless a file is there already (a derived clip's
    name carries its source's hash); atomically: a clip is whole or absent."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(suffix=".wav", dir=path.parent)
        os.close(handle)
        try:
            sf.write(tmp, wave, rate, subtype="PCM_16")
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return path


def read_mono(path: Path, what: str) -> tuple[np.ndarray, int, str]:
    """A source recording ``(T,)`` as mono float32, its rate and a short hash of its samples (clips derived
    from it carry the hash in their names, so a changed source gets new clips). A file that cannot be read
    is a one-line :class:`DatasetError` naming it as ``what``."""
    try:
        wave, rate = audio.read(path)
    except audio.AudioError as err:
        raise DatasetError(f"{path}: cannot read {what} ({err.problem}); remove or replace the file") from None
    wave = wave.mean(axis=1)
    return wave, rate, hashlib.sha1(wave.tobytes() + str(rate).encode()).hexdigest()[:10]


def speaker_subset(speaker: str) -> str:
    """``train`` / ``val`` / ``test`` for a speaker id, from its SHA-1 (stable across machines and
    versions, independent of which other speakers exist)."""
    return _subset(int(hashlib.sha1(speaker.encode()).hexdigest()[:8], 16) / 2**32)


def _location(path: str, root: Path) -> Path:
    location = Path(path).expanduser()
    return location if location.is_absolute() else Path(root) / location


class OtherWords(Corpus):
    """Spoken words that are none of the vocabulary, all labelled ``label`` (``_unknown_``).

    Args:
        path: folder with one sub-folder per word (Speech Commands names
            ``{speaker}_nohash_{n}.wav``), absolute or relative to the data root; sub-folders starting
            with ``_`` or ``.`` are skipped.
        exclude: words not to use (e.g. the vocabulary's own words, were they present).
        label: the label every clip gets.
    """

    def __init__(self, path: str = WORDS_FOLDER, exclude: list[str] | None = None, label: str = UNKNOWN):
        self.path = path
        self.exclude = exclude
        self.label = label

    def recordings(self, root: Path) -> list[Recording]:
        location = _location(self.path, root)
        if not location.is_dir():
            raise DatasetError(f"{location}: no such folder; the non-digit words (Speech Commands subset, "
                               f"one folder per word) are expected there: set --data.root or the corpus's path")
        out = []
        for folder in sorted(p for p in location.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            if folder.name in (self.exclude or ()):
                continue
            for f in sorted(folder.iterdir()):
                if f.suffix.lower() not in AUDIO_SUFFIXES or f.name.startswith("."):
                    continue
                speaker, _ = parse_clip_name(f.name)
                speaker = speaker or f"{folder.name}/{f.stem}"  # no speaker in the name: the clip stands alone
                out.append(Recording(path=f, label=self.label, speaker=speaker, subset=speaker_subset(speaker)))
        if not out:
            raise DatasetError(f"{location}: no audio files in word folders")
        return out


class NoiseClips(Corpus):
    """Clips of noise with no speech in them, labelled ``label`` (``_silence_``), cut from long recordings.

    Each recording is divided by time (:data:`PARTITION`) and each part cut into ``seconds``-long
    clips every ``hop`` seconds (training) or back to back (validation, test). The clips are written
    once, atomically, under ``clip_dir`` (a folder per recording and its content's hash) and reused; ``quiet`` clips of digital silence and of very
    low white noise are added to each part, so that an empty recording is ``_silence_`` too.

    Args:
        path: folder of long noise recordings, absolute or relative to the data root.
        seconds: clip length (s).
        hop: distance between training clips (s); shorter than ``seconds`` gives overlapping clips.
        quiet: near-silent clips added per part.
        clip_dir: where the clips are written; default ``<feature cache folder>/noise_clips``.
        label: the label every clip gets.
        exclude: recordings (file names without suffix) left out entirely, e.g. a noise kept for testing
            what the model never heard.
    """

    def __init__(self, path: str = f"{WORDS_FOLDER}/{NOISE_FOLDER}", seconds: float = 1.0, hop: float = 0.5,
                 quiet: int = 8, clip_dir: str | None = None, label: str = SILENCE, exclude: list[str] | None = None):
        if seconds <= 0 or hop <= 0:
            raise ValueError(f"seconds and hop must be positive, got {seconds} and {hop}")
        self.path = path
        self.seconds = seconds
        self.hop = hop
        self.quiet = quiet
        self.clip_dir = clip_dir
        self.label = label
        self.exclude = list(exclude or [])

    def _clip_dir(self) -> Path:
        return Path(self.clip_dir).expanduser() if self.clip_dir else resolve_cache_dir(None) / "noise_clips"

    def recordings(self, root: Path) -> list[Recording]:
        location = _location(self.path, root)
        sources = sorted(p for p in location.glob("*") if p.suffix.lower() in AUDIO_SUFFIXES
                         and p.stem not in self.exclude) if location.is_dir() else []
        if not sources:
            raise DatasetError(f"{location}: no noise recordings there (expected long .wav files of background noise)")
        out: list[Recording] = []
        for source in sources:
            wave, rate, digest = read_mono(source, "noise recording")
            for subset in ("train", "val", "test"):
                out += self._cut(source, digest, stretch(wave, subset), rate, subset)
        rate = 16000
        for subset in ("train", "val", "test"):
            rng = np.random.default_rng(len(subset))
            for i in range(self.quiet):
                level = 0.0 if i % 2 == 0 else 10 ** rng.uniform(-5, -3)  # digital silence, or -100..-60 dBFS noise
                wave = (level * rng.standard_normal(int(self.seconds * rate))).astype(np.float32)
                out.append(self._write(f"quiet/quiet_{subset}_{i}", wave, rate, subset, "quiet"))
        return out

    def _cut(self, source: Path, digest: str, part: np.ndarray, rate: int, subset: str) -> list[Recording]:
        size = int(self.seconds * rate)
        step = int((self.hop if subset == "train" else self.seconds) * rate)
        return [self._write(f"{source.stem}-{digest}/{source.stem}_{subset}_{start // step}", part[start:start + size], rate, subset,
                            source.stem)
                for start in range(0, len(part) - size + 1, step)]

    def _write(self, name: str, wave: np.ndarray, rate: int, subset: str, speaker: str) -> Recording:
        path = write_clip(self._clip_dir() / f"{self.seconds:g}s_hop{self.hop:g}" / f"{name}.wav", wave, rate)
        return Recording(path=path, label=self.label, speaker=speaker, subset=subset)


class ReversedWords(Corpus):
    """The training speakers' other words played backwards, labelled ``label`` (``_unknown_``): synthetic
    non-digits for training only.

    A word reversed keeps its voice, level and spectrum but not the order of its sounds, so a model
    that rejects it must judge the word, not the voice or the recording; this halves how often word
    *types* never trained on pass as a digit (docs/experiments.md, "word types never trained on").
    Only :class:`OtherWords`' ``train`` speakers are used, so validation and test stay real words of
    other voices. The clips are written once, atomically, under ``clip_dir`` (a name per source clip
    and its content's hash) and reused.

    Args:
        path: :class:`OtherWords`' folder, absolute or relative to the data root.
        exclude: words not to use.
        label: the label every clip gets.
        clip_dir: where the clips are written; default ``<feature cache folder>/reversed_words``.
    """

    def __init__(self, path: str = WORDS_FOLDER, exclude: list[str] | None = None, label: str = UNKNOWN,
                 clip_dir: str | None = None):
        self.path = path
        self.exclude = exclude
        self.label = label
        self.clip_dir = clip_dir

    def recordings(self, root: Path) -> list[Recording]:
        folder = Path(self.clip_dir).expanduser() if self.clip_dir else resolve_cache_dir(None) / "reversed_words"
        out = []
        for r in OtherWords(self.path, self.exclude, self.label).recordings(root):
            if r.subset != "train":
                continue
            wave, rate, digest = read_mono(r.path, "the word clip")
            path = write_clip(folder / r.path.parent.name / f"{r.path.stem}-{digest}.wav", wave[::-1].copy(), rate)
            out.append(Recording(path=path, label=self.label, speaker=r.speaker, subset="train"))
        return out


class Combined(Corpus):
    """Several corpora as one: their recordings together, their labels merged, e.g. FSDD with :class:`OtherWords`,
    :class:`ReversedWords` and :class:`NoiseClips`.

    Args:
        corpora: the corpora, e.g. ``[FSDD(), OtherWords(), NoiseClips()]``.
    """

    def __init__(self, corpora: list[Corpus]):
        if not corpora:
            raise ValueError("Combined needs at least one corpus")
        self.corpora = list(corpora)

    def recordings(self, root: Path) -> list[Recording]:
        return [r for corpus in self.corpora for r in corpus.recordings(root)]

    def labels(self, recordings: list[Recording]) -> list[str]:
        """Every corpus's labels, in natural order (digits first, then names: ``_silence_``, ``_unknown_``)."""
        return sorted(set().union(*(corpus.labels(recordings) for corpus in self.corpora)), key=_natural_key)

    def prepare(self, root: Path) -> None:
        for corpus in self.corpora:
            corpus.prepare(root)


def with_negatives(corpus: Corpus, root: Path) -> Corpus:
    """``corpus`` combined with :class:`OtherWords` and :class:`NoiseClips` when their folder is under
    ``root`` (``<root>/speech_commands_words``), else ``corpus`` alone: what ``evaluate --split`` and
    the benchmarks score, so that false accepts are measured wherever the data is."""
    if not (Path(root) / WORDS_FOLDER).is_dir():
        return corpus
    return Combined([corpus, OtherWords(), NoiseClips()])
