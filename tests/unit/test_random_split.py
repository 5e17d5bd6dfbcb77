"""``split: random`` (:func:`spokenword.data.splits.make_split`): stratified by label, seeded, whole
speakers held out when known, stand-ins for a fraction of 0, and the message for too few clips."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from spokenword.data.corpora import DatasetError, LabelledFolder, Recording
from spokenword.data.datamodule import AudioDataModule
from spokenword.data.splits import make_split

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
#: a folder of 10 words x 10 takes with no speaker in the names (one sub-folder per word)
FOLDER = [Recording(Path(f"/w/{w}/take{i}.wav"), w) for w in WORDS for i in range(10)]
SPEAKERS = ("ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal")
#: every speaker says every word 5 times
SPOKEN = [Recording(Path(f"/s/{w}/{s}_nohash_{i}.wav"), w, s) for w in WORDS for s in SPEAKERS for i in range(5)]


def _paths(records) -> set[Path]:
    return {r.path for r in records}


def _labels(records) -> Counter:
    return Counter(r.label for r in records)


def test_stratified_by_label_and_disjoint():
    split = make_split(FOLDER, "random")
    assert split.name == "random"
    # 15 % of 10 clips, rounded: 2 per word in test and in validation, the other 6 train
    assert _labels(split.test) == _labels(split.val) == Counter({w: 2 for w in WORDS})
    assert _labels(split.train) == Counter({w: 6 for w in WORDS})
    assert _paths(split.train) | _paths(split.val) | _paths(split.test) == _paths(FOLDER)
    assert not (_paths(split.train) & _paths(split.val) or _paths(split.train) & _paths(split.test)
                or _paths(split.val) & _paths(split.test))
    assert "seed 0" in split.protocol and "test never used for selection" in split.protocol
    assert "speakers unknown" in split.protocol


def test_fractions_set_the_part_sizes():
    recordings = [Recording(Path(f"/w/{w}/{i}.wav"), w) for w in ("a", "b") for i in range(40)]
    split = make_split(recordings, "random", val_fraction=0.25, test_fraction=0.1)
    assert _labels(split.val) == Counter(a=10, b=10) and _labels(split.test) == Counter(a=4, b=4)
    assert len(split.train) == 2 * 26


def test_same_seed_same_split_other_seed_other_split():
    first, again = make_split(FOLDER, "random", seed=7), make_split(list(reversed(FOLDER)), "random", seed=7)
    assert _paths(first.test) == _paths(again.test) and _paths(first.val) == _paths(again.val)  # listing order aside
    others = [make_split(FOLDER, "random", seed=seed) for seed in (8, 9)]
    assert all(_paths(other.test) != _paths(first.test) for other in others)
    assert all(_labels(other.test) == _labels(first.test) for other in others)  # still stratified


def test_known_speakers_are_held_out_whole():
    split = make_split(SPOKEN, "random")
    speakers = {part: {r.speaker for r in getattr(split, part)} for part in ("train", "val", "test")}
    assert speakers["test"] and speakers["val"] and len(speakers["train"]) >= 5
    assert not (speakers["train"] & speakers["test"] or speakers["train"] & speakers["val"]
                or speakers["val"] & speakers["test"])
    for part in ("train", "val", "test"):
        assert set(_labels(getattr(split, part))) == set(WORDS)
    assert "whole speakers held out" in split.protocol
    # another seed holds out other speakers
    assert {r.speaker for r in make_split(SPOKEN, "random", seed=1).test} != speakers["test"]


def test_one_speaker_per_clip_is_still_stratified():
    """Speech Commands style: each clip by another speaker, so whole speakers are clips."""
    recordings = [Recording(Path(f"/c/{w}/{w}{i}_nohash_0.wav"), w, f"{w}{i}") for w in WORDS for i in range(10)]
    split = make_split(recordings, "random", seed=3)
    assert _labels(split.test) == _labels(split.val) == Counter({w: 2 for w in WORDS})
    assert "whole speakers held out" in split.protocol


def test_too_few_speakers_falls_back_to_clips_and_says_so():
    # one word said by only two speakers: no speaker left to train it once test and validation take one each
    recordings = SPOKEN + [Recording(Path(f"/s/cat/{s}_nohash_{i}.wav"), "cat", s) for s in ("ann", "bob") for i in range(5)]
    split = make_split(recordings, "random")
    assert "not by speaker" in split.protocol and "label 'cat' has 2 speaker(s), 3 needed" in split.protocol
    for part in ("train", "val", "test"):
        assert "cat" in _labels(getattr(split, part))
    assert _paths(split.train) | _paths(split.val) | _paths(split.test) == _paths(recordings)


def test_a_speaker_who_alone_says_a_word_stays_in_train():
    recordings = [Recording(Path(f"/s/{w}/{s}_nohash_0.wav"), w, s) for w in ("a", "b") for s in SPEAKERS]
    recordings += [Recording(Path(f"/s/c/{s}_nohash_{i}.wav"), "c", s) for s in ("ann", "bob", "cy") for i in range(3)]
    for seed in range(10):
        split = make_split(recordings, "random", seed=seed)
        assert "whole speakers held out" in split.protocol
        assert all(set(_labels(getattr(split, part))) == {"a", "b", "c"} for part in ("train", "val", "test"))


def test_too_few_clips_is_one_line_naming_the_label_and_the_fix():
    recordings = FOLDER + [Recording(Path("/w/cat/take0.wav"), "cat"), Recording(Path("/w/cat/take1.wav"), "cat")]
    with pytest.raises(DatasetError) as err:
        make_split(recordings, "random")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("/w/cat: label 'cat' has 2 clip(s)")
    assert "needs at least 3 per label" in message and "record more takes of 'cat'" in message
    assert "data.val_fraction 0" in message
    # with no validation part two clips are enough
    split = make_split(recordings, "random", val_fraction=0)
    assert _labels(split.test)["cat"] == 1 and _labels(split.train)["cat"] == 1
    with pytest.raises(DatasetError, match="label 'cat' has 1 clip.*data.val_fraction 0 and data.test_fraction 0"):
        make_split(FOLDER + [Recording(Path("/w/cat/take0.wav"), "cat")], "random", val_fraction=0)


def test_fraction_zero_parts_have_named_stand_ins():
    no_val = make_split(FOLDER, "random", val_fraction=0)
    assert no_val.val == no_val.train and len(no_val.train) == 80 and len(no_val.test) == 20
    assert "validation = the training clips" in no_val.protocol and "test never used for selection" in no_val.protocol

    no_test = make_split(FOLDER, "random", test_fraction=0)
    assert no_test.test == no_test.val and len(no_test.val) == 20 and len(no_test.train) == 80
    assert "test = validation, which chose the checkpoint" in no_test.protocol

    neither = make_split(FOLDER[:10] + FOLDER[10:11], "random", val_fraction=0, test_fraction=0)  # one clip of 'no'
    assert neither.train == neither.val == neither.test and len(neither.train) == 11
    assert "every clip trains" in neither.protocol and "measure fit, not new recordings" in neither.protocol


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.1), (0.1, 1.0), (0.5, 0.5), (float("nan"), 0.1)])
def test_bad_fractions_are_refused(val, test):
    with pytest.raises(ValueError, match="fraction"):
        make_split(FOLDER, "random", val_fraction=val, test_fraction=test)
    with pytest.raises(ValueError, match="fraction"):  # by the data module too, before any data is read
        AudioDataModule(split="random", val_fraction=val, test_fraction=test)


def test_recordings_with_their_own_subset_keep_it():
    """The non-digit words and noise of :mod:`spokenword.data.corpora.negatives`: no take, a subset."""
    negatives = [Recording(Path(f"/n/{part}{i}.wav"), "_unknown_", f"n{i}", subset=part)
                 for part in ("train", "val", "test") for i in range(3)]
    split = make_split(FOLDER + negatives, "random")
    for part in ("train", "val", "test"):
        assert {r.path for r in getattr(split, part) if r.label == "_unknown_"} == {
            r.path for r in negatives if r.subset == part}
    words = make_split(FOLDER, "random")
    assert [r for r in split.test if r.label != "_unknown_"] == words.test  # the words split as without them
    assert "other words and noise" in split.protocol and "test never used for selection" in split.protocol


def test_the_data_module_splits_a_folder_with_its_fractions_and_seed(tmp_path):
    for w in ("cat", "dog"):
        for i in range(10):
            (tmp_path / "words" / w).mkdir(parents=True, exist_ok=True)
            (tmp_path / "words" / w / f"{i}.wav").write_bytes(b"")  # scanning reads names only
    module = AudioDataModule(root=str(tmp_path), corpus=LabelledFolder("words"), split="random",
                             val_fraction=0.2, test_fraction=0.3, split_seed=5, cache_dir=str(tmp_path / "c"))
    assert module.labels == ["cat", "dog"]
    expected = make_split(module.recordings, "random", val_fraction=0.2, test_fraction=0.3, seed=5)
    assert module.split == expected and len(module.split.test) == 6 and len(module.split.val) == 4
