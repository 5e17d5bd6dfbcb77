"""What is not a digit (:mod:`spokenword.data.corpora.negatives`): other words by speaker, noise clips by
time, their union with a corpus of digits, and how :func:`~spokenword.data.splits.make_split` keeps
their own partition. Tiny synthetic folders; one test on the real Speech Commands subset."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spokenword.data.corpora import (
    FSDD,
    Combined,
    Corpus,
    DatasetError,
    NoiseClips,
    OtherWords,
    Recording,
    ReversedWords,
)
from spokenword.data.corpora.negatives import PARTITION, speaker_subset, with_negatives
from spokenword.data.splits import make_split
from spokenword.labels import SILENCE, UNKNOWN

RATE = 16000
DIGITS = [str(d) for d in range(10)]


def expected_subset(speaker: str) -> str:
    """The documented rule, written out independently: SHA-1 of the speaker id as a fraction in [0, 1)."""
    fraction = int(hashlib.sha1(speaker.encode()).hexdigest()[:8], 16) / 2**32
    return "train" if fraction < 0.70 else "val" if fraction < 0.85 else "test"


def speakers_of(subset: str, count: int) -> list[str]:
    found = [s for s in (f"{i:04x}beef" for i in range(200)) if expected_subset(s) == subset]
    return found[:count]


#: two speakers per subset, so that every subset has clips
SPEAKERS = speakers_of("train", 2) + speakers_of("val", 2) + speakers_of("test", 2)


def write(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, subtype="PCM_16")
    return path


@pytest.fixture
def words(tmp_path) -> Path:
    """``root/words/{yes,bird}/{speaker}_nohash_{n}.wav`` (two clips of ``yes`` per speaker), plus a
    ``_background_noise_`` folder, a hidden folder, a README and a clip named without a speaker."""
    root = tmp_path / "words"
    rng = np.random.default_rng(0)
    clip = lambda: (0.01 * rng.standard_normal(RATE // 10)).astype(np.float32)
    for speaker in SPEAKERS:
        for n in (0, 1):
            write(root / "yes" / f"{speaker}_nohash_{n}.wav", clip())
        write(root / "bird" / f"{speaker}_nohash_0.wav", clip())
    write(root / "_background_noise_" / "white_noise.wav", clip())
    write(root / ".hidden" / f"{SPEAKERS[0]}_nohash_0.wav", clip())
    (root / "yes" / "README.txt").write_text("not audio")
    write(root / "bird" / "odd.wav", clip())
    return root


# -- OtherWords ------------------------------------------------------------------------------------


def test_speaker_subset_is_the_sha1_rule_and_stable():
    assert speaker_subset("0a7c2a8d") == "train"  # pinned: the partition must not move between versions
    assert speaker_subset("ffd2ba2f") == "val"
    for speaker in SPEAKERS + ["0c540988", "", "word/stem"]:
        assert speaker_subset(speaker) == expected_subset(speaker)
    assert PARTITION == (0.70, 0.85)


def test_other_words_labels_speakers_and_subsets(words):
    recordings = OtherWords(str(words)).recordings(words.parent)
    assert len(recordings) == len(SPEAKERS) * 3 + 1  # 2 yes + 1 bird each, and odd.wav
    assert {r.label for r in recordings} == {UNKNOWN}
    assert {r.path.parent.name for r in recordings} == {"yes", "bird"}  # _background_noise_, .hidden skipped
    assert all(r.path.suffix == ".wav" for r in recordings)  # README.txt skipped
    assert all(r.take == -1 for r in recordings)  # no take: make_split keeps their subset
    named = [r for r in recordings if r.path.name != "odd.wav"]
    assert {r.speaker for r in named} == set(SPEAKERS)
    for r in named:
        assert r.speaker == r.path.stem.split("_nohash_")[0]
        assert r.subset == expected_subset(r.speaker)
    (odd,) = [r for r in recordings if r.path.name == "odd.wav"]
    assert odd.speaker == "bird/odd" and odd.subset == expected_subset("bird/odd")
    assert {r.subset for r in recordings} == {"train", "val", "test"}
    # one subset per speaker, whichever word
    by_speaker: dict[str, set[str]] = {}
    for r in recordings:
        by_speaker.setdefault(r.speaker, set()).add(r.subset)
    assert all(len(subsets) == 1 for subsets in by_speaker.values())


def test_other_words_is_deterministic_and_independent_of_other_speakers(words):
    first = OtherWords(str(words)).recordings(words.parent)
    assert OtherWords(str(words)).recordings(words.parent) == first
    # a new speaker and a removed word move nobody else
    write(words / "cat" / "1234abcd_nohash_0.wav", np.zeros(RATE // 10, np.float32))
    (words / "bird" / "odd.wav").unlink()
    again = {r.path: r.subset for r in OtherWords(str(words)).recordings(words.parent)}
    assert all(again[r.path] == r.subset for r in first if r.path.exists())


def test_other_words_path_relative_to_root_label_and_exclude(words):
    relative = OtherWords("words").recordings(words.parent)
    assert relative == OtherWords(str(words)).recordings(Path("/nonexistent"))
    only_yes = OtherWords("words", exclude=["bird"], label="filler").recordings(words.parent)
    assert {r.path.parent.name for r in only_yes} == {"yes"} and {r.label for r in only_yes} == {"filler"}


def test_other_words_missing_or_empty_folder_is_a_one_line_dataset_error(tmp_path):
    with pytest.raises(DatasetError) as missing:
        OtherWords("nowhere").recordings(tmp_path)
    message = str(missing.value)
    assert "\n" not in message and str(tmp_path / "nowhere") in message and "no such folder" in message
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    (tmp_path / "empty" / "_background_noise_").mkdir()
    write(tmp_path / "empty" / "_background_noise_" / "a.wav", np.zeros(100, np.float32))
    with pytest.raises(DatasetError, match="no audio files") as empty:
        OtherWords("empty").recordings(tmp_path)
    assert "\n" not in str(empty.value)


# -- NoiseClips ------------------------------------------------------------------------------------

SOURCE_SECONDS = 20


@pytest.fixture
def noise(tmp_path) -> dict[str, np.ndarray]:
    """Two 20-s noise recordings (int16, no two 8-sample windows alike, so a clip can be located)."""
    folder = tmp_path / "noise"
    sources = {}
    for i, name in enumerate(("hum", "tap")):
        samples = np.random.default_rng(i).integers(-20000, 20000, SOURCE_SECONDS * RATE).astype(np.int16)
        folder.mkdir(exist_ok=True)
        sf.write(folder / f"{name}.wav", samples, RATE, subtype="PCM_16")
        sources[name] = samples
    (folder / "notes.txt").write_text("not audio")
    return sources


def locate(source: np.ndarray) -> dict[bytes, int]:
    """Sample offset in ``source`` of each 8-sample window."""
    windows = np.lib.stride_tricks.sliding_window_view(source, 8)
    return {w.tobytes(): i for i, w in enumerate(windows)}


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_noise_clips_are_one_second_cut_by_time(tmp_path, noise):
    clip_dir = tmp_path / "clips"
    recordings = NoiseClips("noise", clip_dir=str(clip_dir)).recordings(tmp_path)
    assert {r.label for r in recordings} == {SILENCE}
    assert {r.speaker for r in recordings} == {"hum", "tap", "quiet"}
    size = RATE
    n = SOURCE_SECONDS * RATE
    bounds = {"train": (0, int(0.70 * n)), "val": (int(0.70 * n), int(0.85 * n)), "test": (int(0.85 * n), n)}
    for name, source in noise.items():
        where, covered = locate(source), {}
        for subset, (lo, hi) in bounds.items():
            clips = [r for r in recordings if r.speaker == name and r.subset == subset]
            starts = []
            for r in clips:
                info = sf.info(r.path)
                assert (info.frames, info.samplerate, info.channels) == (size, RATE, 1)
                samples, _ = sf.read(r.path, dtype="int16")
                start = where[samples[:8].tobytes()]
                assert np.array_equal(samples, source[start:start + size])  # the recording, unchanged
                assert lo <= start and start + size <= hi, f"{r.path.name} outside its part"
                starts.append(start)
            starts.sort()
            gaps = np.diff(starts)
            if subset == "train":  # every half second: overlapping clips covering the first 70 %
                assert len(clips) == (hi - lo - size) // (RATE // 2) + 1 == 27
                assert set(gaps) == {RATE // 2}
            else:  # back to back: no overlap
                assert len(clips) == (hi - lo) // size == 3
                assert set(gaps) == {size}
            assert starts[0] == lo
            covered[subset] = (starts[0], starts[-1] + size)
        # the parts are disjoint in time: train ends before validation starts, validation before test
        assert covered["train"][1] <= covered["val"][0] and covered["val"][1] <= covered["test"][0]


def test_noise_clips_quiet_clips_in_every_part(tmp_path, noise):
    recordings = NoiseClips("noise", quiet=4, clip_dir=str(tmp_path / "clips")).recordings(tmp_path)
    for subset in ("train", "val", "test"):
        quiet = [r for r in recordings if r.speaker == "quiet" and r.subset == subset]
        assert len(quiet) == 4
        waves = [sf.read(r.path, dtype="float32")[0] for r in quiet]
        assert all(len(w) == RATE for w in waves)
        assert any(not w.any() for w in waves), "no digitally silent clip"
        assert all(np.abs(w).max() < 0.01 for w in waves)
    names = [r.path.name for r in recordings]
    assert len(names) == len(set(names))


def test_noise_clips_are_written_once_under_clip_dir(tmp_path, noise):
    clip_dir = tmp_path / "clips"
    corpus = NoiseClips("noise", clip_dir=str(clip_dir))
    first = corpus.recordings(tmp_path)
    paths = {r.path for r in first}
    assert all(clip_dir in p.parents for p in paths)
    assert files_under(clip_dir) == paths  # nothing else: no temporary files left behind
    mtimes = {p: p.stat().st_mtime_ns for p in paths}
    again = NoiseClips("noise", clip_dir=str(clip_dir)).recordings(tmp_path)
    assert again == first
    assert {p: p.stat().st_mtime_ns for p in paths} == mtimes  # reused, not rewritten
    assert files_under(clip_dir) == paths
    # a clip that went missing is written again, whole
    lost = min(paths)
    lost.unlink()
    assert NoiseClips("noise", clip_dir=str(clip_dir)).recordings(tmp_path) == first
    assert sf.info(lost).frames == RATE and files_under(clip_dir) == paths


def test_noise_clips_default_clip_dir_is_in_the_cache(tmp_path, noise, monkeypatch):
    monkeypatch.setenv("SPOKENWORD_CACHE", str(tmp_path / "cache"))
    recordings = NoiseClips("noise", quiet=0).recordings(tmp_path)
    assert all((tmp_path / "cache" / "noise_clips") in r.path.parents for r in recordings)


def test_noise_clips_other_lengths_and_errors(tmp_path, noise):
    clips = NoiseClips("noise", seconds=2.0, hop=1.0, quiet=1, clip_dir=str(tmp_path / "c")).recordings(tmp_path)
    assert {sf.info(r.path).frames for r in clips} == {2 * RATE}
    assert len([r for r in clips if r.speaker == "hum" and r.subset == "train"]) == 13
    for bad in ({"seconds": 0}, {"hop": -1}):
        with pytest.raises(ValueError):
            NoiseClips("noise", **bad)
    with pytest.raises(DatasetError, match="no noise recordings") as missing:
        NoiseClips("nowhere", clip_dir=str(tmp_path / "c")).recordings(tmp_path)
    assert "\n" not in str(missing.value)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bad.wav").write_bytes(b"RIFF not a wav")
    with pytest.raises(DatasetError, match="cannot read noise recording"):
        NoiseClips("broken", clip_dir=str(tmp_path / "c")).recordings(tmp_path)


# -- ReversedWords ---------------------------------------------------------------------------------


def test_reversed_words_are_the_training_speakers_clips_backwards(tmp_path, words):
    clip_dir = tmp_path / "reversed"
    reversed_ = ReversedWords(str(words), clip_dir=str(clip_dir)).recordings(words.parent)
    train = [r for r in OtherWords(str(words)).recordings(words.parent) if r.subset == "train"]
    assert train and len(reversed_) == len(train)  # validation and test speakers' words are never reversed
    assert {r.subset for r in reversed_} == {"train"} and {r.label for r in reversed_} == {UNKNOWN}
    for source, clip in zip(train, reversed_):
        assert clip.speaker == source.speaker and clip.take == -1
        assert clip.path.parent.name == source.path.parent.name  # a folder per word
        original, rate = sf.read(source.path, dtype="int16")
        backwards, clip_rate = sf.read(clip.path, dtype="int16")
        assert clip_rate == rate and np.array_equal(backwards, original[::-1])
    assert files_under(clip_dir) == {r.path for r in reversed_}  # no temporary files left behind


def test_reversed_words_written_once_exclude_label_and_default_folder(tmp_path, words, monkeypatch):
    clip_dir = tmp_path / "reversed"
    first = ReversedWords(str(words), clip_dir=str(clip_dir)).recordings(words.parent)
    mtimes = {r.path: r.path.stat().st_mtime_ns for r in first}
    assert ReversedWords(str(words), clip_dir=str(clip_dir)).recordings(words.parent) == first
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes  # reused, not rewritten
    # a source clip that changes gets a new reversed clip (its name carries the content's hash)
    source = next(p for p in sorted((words / "yes").glob("*.wav")) if expected_subset(p.stem.split("_nohash_")[0]) == "train")
    write(source, np.linspace(-0.5, 0.5, RATE // 10).astype(np.float32))
    again = ReversedWords(str(words), clip_dir=str(clip_dir)).recordings(words.parent)
    assert len(again) == len(first) and len({r.path for r in again} - set(mtimes)) == 1
    only_bird = ReversedWords("words", exclude=["yes"], label="filler", clip_dir=str(clip_dir)).recordings(words.parent)
    assert {r.path.parent.name for r in only_bird} == {"bird"} and {r.label for r in only_bird} == {"filler"}
    monkeypatch.setenv("SPOKENWORD_CACHE", str(tmp_path / "cache"))
    assert all((tmp_path / "cache" / "reversed_words") in r.path.parents
               for r in ReversedWords(str(words)).recordings(words.parent))


def test_reversed_words_bad_clip_is_a_one_line_dataset_error(tmp_path, words):
    bad = words / "yes" / f"{speakers_of('train', 1)[0]}_nohash_7.wav"
    bad.write_bytes(b"RIFF junk, not a wave")
    with pytest.raises(DatasetError) as error:
        ReversedWords(str(words), clip_dir=str(tmp_path / "r")).recordings(words.parent)
    assert "\n" not in str(error.value) and str(bad) in str(error.value) and "remove or replace" in str(error.value)
    with pytest.raises(DatasetError, match="no such folder"):
        ReversedWords("nowhere").recordings(tmp_path)


# -- Combined and with_negatives ---------------------------------------------------------------------


@pytest.fixture
def root(tmp_path, words, noise) -> Path:
    """A data root with a few FSDD-named files, the word folders and the noise recordings."""
    for name in ("3_jackson_0.wav", "3_jackson_12.wav", "7_theo_7.wav"):
        write(tmp_path / "fsdd" / "recordings" / name, np.zeros(800, np.float32), 8000)
    return tmp_path


def test_combined_labels_and_recordings(root):
    fsdd, others, clips = FSDD(validate=False), OtherWords("words"), NoiseClips("noise", quiet=1, clip_dir=str(root / "c"))
    combined = Combined([fsdd, others, clips])
    recordings = combined.recordings(root)
    assert recordings == fsdd.recordings(root) + others.recordings(root) + clips.recordings(root)
    assert combined.labels(recordings) == DIGITS + [SILENCE, UNKNOWN]
    # labels present only, from corpora without a fixed list, still in natural order
    assert Combined([others, clips]).labels(others.recordings(root) + clips.recordings(root)) == [SILENCE, UNKNOWN]
    with pytest.raises(ValueError):
        Combined([])


def test_combined_prepares_every_corpus(tmp_path):
    prepared = []

    class Stub(Corpus):
        def __init__(self, name):
            self.name = name

        def recordings(self, root):
            return [Recording(Path(f"{self.name}.wav"), self.name)]

        def prepare(self, root):
            prepared.append((self.name, root))

    Combined([Stub("b"), Stub("a")]).prepare(tmp_path)
    assert prepared == [("b", tmp_path), ("a", tmp_path)]


def test_with_negatives(tmp_path):
    corpus = FSDD()
    assert with_negatives(corpus, tmp_path) is corpus
    (tmp_path / "speech_commands_words").mkdir()
    combined = with_negatives(corpus, tmp_path)
    assert isinstance(combined, Combined) and combined.corpora[0] is corpus
    assert [type(c) for c in combined.corpora[1:]] == [OtherWords, NoiseClips]


# -- make_split with negatives ---------------------------------------------------------------------

FSDD_PART = [Recording(Path(f"{d}_{s}_{t}.wav"), str(d), s, t)
             for d in range(3) for s in ("jackson", "theo", "lucas") for t in range(20)]
NEGATIVES = ([Recording(Path(f"w/{s}_nohash_0.wav"), UNKNOWN, s, subset=speaker_subset(s)) for s in SPEAKERS]
             + [Recording(Path(f"n/hum_{subset}_{i}.wav"), SILENCE, "hum", subset=subset)
                for subset in ("train", "val", "test") for i in range(3)])
MIXED = [r for pair in zip(FSDD_PART, NEGATIVES) for r in pair] + FSDD_PART[len(NEGATIVES):]  # interleaved


def negatives_in(records, subset=None):
    return [r for r in records if r.take < 0 and (subset is None or r.subset == subset)]


@pytest.mark.parametrize("split,kwargs", [("official", {}), ("speakers", {"test_speakers": ["theo"]}),
                                          ("speakers", {"test_speakers": ["theo"], "val_speakers": ["lucas"]})])
def test_make_split_keeps_the_negatives_subsets(split, kwargs):
    assert sorted(map(str, (r.path for r in MIXED))) == sorted(map(str, (r.path for r in FSDD_PART + NEGATIVES)))
    alone = make_split(FSDD_PART, split, **kwargs)
    mixed = make_split(MIXED, split, **kwargs)
    for part in ("train", "val", "test"):
        got = getattr(mixed, part)
        assert [r for r in got if r.take >= 0] == getattr(alone, part)  # the digits: as without negatives
        assert set(negatives_in(got)) == set(negatives_in(NEGATIVES, part))  # the negatives: their own subset
    assert len(mixed.train) + len(mixed.val) + len(mixed.test) == len(MIXED)
    assert mixed.name == split and mixed.protocol.startswith(alone.protocol)
    assert "other words and noise" in mixed.protocol


def test_make_split_reference_validates_on_the_test_content():
    mixed = make_split(MIXED, "reference")
    alone = make_split(FSDD_PART, "reference")
    assert mixed.val == mixed.test
    assert [r for r in mixed.test if r.take >= 0] == alone.test
    assert set(negatives_in(mixed.test)) == set(negatives_in(NEGATIVES, "test"))
    assert set(negatives_in(mixed.train)) == set(negatives_in(NEGATIVES, "train"))
    assert not {r.path for r in mixed.train} & {r.path for r in mixed.test}


def test_make_split_corpus_and_negatives_alone():
    corpus = make_split(NEGATIVES, "corpus")
    assert {r.subset for r in corpus.train} == {"train"} and {r.subset for r in corpus.test} == {"test"}
    with pytest.raises(DatasetError, match="take numbers"):
        make_split(NEGATIVES, "official")


# -- the real Speech Commands subset -----------------------------------------------------------------


@pytest.mark.integration
def test_real_negatives_partition(fsdd_root, tmp_path):
    words = fsdd_root / "speech_commands_words"
    if not words.is_dir():
        pytest.skip(f"no {words}")
    recordings = OtherWords().recordings(fsdd_root)
    assert len(recordings) == 817
    assert len({r.path.parent.name for r in recordings}) == 25
    with open(words / "labels.csv", newline="") as handle:
        listed = {row["path"]: row["speaker"] for row in csv.DictReader(handle)}
    assert {r.path.relative_to(words).as_posix(): r.speaker for r in recordings} == listed
    assert len(set(listed.values())) == 236
    speakers = {subset: {r.speaker for r in recordings if r.subset == subset} for subset in ("train", "val", "test")}
    assert all(speakers.values())
    assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"]
                or speakers["val"] & speakers["test"])
    assert 0.55 < len(speakers["train"]) / 236 < 0.85

    reversed_ = ReversedWords(clip_dir=str(tmp_path / "reversed")).recordings(fsdd_root)
    assert len(reversed_) == len([r for r in recordings if r.subset == "train"]) and {r.speaker for r in reversed_} == speakers["train"]

    clips = NoiseClips(clip_dir=str(tmp_path / "clips")).recordings(fsdd_root)
    sources = {p.stem for p in (words / "_background_noise_").glob("*.wav")}
    assert len(sources) == 6
    for subset in ("train", "val", "test"):
        assert {r.speaker for r in clips if r.subset == subset} == sources | {"quiet"}
    assert {sf.info(r.path).frames for r in clips} == {RATE}
    assert files_under(tmp_path / "clips") == {r.path for r in clips}
