"""Speech Commands, AudioMNIST and manifest corpora: layouts, speakers, their own splits, labels from
the data, and selection from a config (class_path / init_args)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spokenword.data.datamodule import AudioDataModule
from spokenword.data.splits import make_split
from spokenword.data.corpora import AudioMNIST, DatasetError, LabelledFolder, Recording, SpeechCommands
from spokenword.frontend.settings import FeatureSettings
from tests.conftest import tone, write_wav

WORDS = ("go", "no", "yes")
SMALL = FeatureSettings(n_fft=64, hop_length=32, n_bins=16, n_frames=16)


def speech_commands(root: Path) -> Path:
    """3 words x 4 speakers x 2 takes; speaker d is validation, speaker c test."""
    folder = root / "sc"
    for w, word in enumerate(WORDS):
        for speaker in "abcd":
            for take in range(2):
                write_wav(folder / word / f"{speaker}0f_nohash_{take}.wav", tone(0.3, 16000, 300.0 + 200 * w), 16000)
    write_wav(folder / "_background_noise_" / "noise.wav", tone(0.3, 16000), 16000)
    (folder / "validation_list.txt").write_text("".join(f"{w}/d0f_nohash_{t}.wav\n" for w in WORDS for t in range(2)))
    (folder / "testing_list.txt").write_text("".join(f"{w}/c0f_nohash_{t}.wav\n" for w in WORDS for t in range(2)))
    return folder


def audiomnist(root: Path, speakers=("01", "02", "05", "06", "07")) -> Path:
    """2 digits x 2 takes per speaker at 48 kHz."""
    for speaker in speakers:
        for digit in (3, 7):
            for take in range(2):
                write_wav(root / "am" / "data" / speaker / f"{digit}_{speaker}_{take}.wav", tone(0.3, 48000, 200.0 * (digit + 1)), 48000)
    return root / "am"


def test_speech_commands_words_speakers_and_its_lists(tmp_path):
    speech_commands(tmp_path)
    corpus = SpeechCommands("sc")
    recs = corpus.recordings(tmp_path)
    assert len(recs) == 24 and corpus.labels(recs) == list(WORDS)  # no "_background_noise_", not 10 digits
    rec = next(r for r in recs if r.path.name == "a0f_nohash_1.wav")
    assert (rec.speaker, rec.take, rec.subset) == ("a0f", 1, "train")
    assert {r.speaker for r in recs if r.subset == "val"} == {"d0f"}
    assert {r.speaker for r in recs if r.subset == "test"} == {"c0f"}
    split = make_split(recs, "corpus")
    assert (len(split.train), len(split.val), len(split.test)) == (12, 6, 6)
    assert "own partition" in split.protocol
    assert {r.label for r in SpeechCommands(str(tmp_path / "sc"), words=["yes"]).recordings(tmp_path)} == {"yes"}


def test_speech_commands_problems_are_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        SpeechCommands("missing").recordings(tmp_path)
    speech_commands(tmp_path)
    with pytest.raises(DatasetError, match="maybe"):
        SpeechCommands("sc", words=["maybe"]).recordings(tmp_path)
    with pytest.raises(DatasetError, match="take numbers"):  # FSDD's take-based split needs takes
        make_split([Recording(tmp_path / "x.wav", "yes")], "official")


def test_audiomnist_is_speaker_disjoint(tmp_path):
    audiomnist(tmp_path)
    recs = AudioMNIST("am").recordings(tmp_path)
    assert len(recs) == 20 and AudioMNIST().labels(recs) == ["3", "7"]
    by_subset = {s: {r.speaker for r in recs if r.subset == s} for s in ("train", "val", "test")}
    assert by_subset == {"train": {"02", "07"}, "val": {"01", "06"}, "test": {"05"}}  # number % 5: 0 test, 1 val
    custom = AudioMNIST("am", test_speakers=["02"], val_speakers=["07"]).recordings(tmp_path)
    assert {r.speaker for r in custom if r.subset == "test"} == {"02"}
    with pytest.raises(DatasetError, match="unknown speakers"):
        AudioMNIST("am", test_speakers=["99"]).recordings(tmp_path)
    write_wav(tmp_path / "am" / "data" / "01" / "oops.wav", tone(0.1))
    with pytest.raises(DatasetError, match="oops.wav"):
        AudioMNIST("am").recordings(tmp_path)


def test_audiomnist_through_the_data_module_is_resampled(tmp_path):
    audiomnist(tmp_path)
    dm = AudioDataModule(root=str(tmp_path), corpus=AudioMNIST("am"), split="corpus", sample_rate=8000,
                         features=SMALL, cache_dir=str(tmp_path / "cache"), batch_size=4)
    dm.prepare_data()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 1, 16, 16) and x.dtype.is_floating_point and dm.num_classes == 2
    assert set(y.tolist()) <= {0, 1}


def test_manifest_subset_column_gives_a_corpus_split(tmp_path):
    for i, label in enumerate(["cat", "dog", "cat", "dog", "cat", "dog"]):
        write_wav(tmp_path / "m" / f"{i}.wav", tone(0.2))
    rows = "".join(f"{i}.wav,{lab},{sub}\n" for i, (lab, sub) in enumerate(zip(["cat", "dog"] * 3, ["train"] * 2 + ["val"] * 2 + ["test"] * 2)))
    (tmp_path / "m" / "labels.csv").write_text("path,label,subset\n" + rows)
    split = make_split(LabelledFolder("m").recordings(tmp_path), "corpus")
    assert [len(p) for p in (split.train, split.val, split.test)] == [2, 2, 2]
    (tmp_path / "m" / "labels.csv").write_text("path,label,subset\n0.wav,cat,holdout\n")
    with pytest.raises(DatasetError, match="holdout"):
        LabelledFolder("m").recordings(tmp_path)
    with pytest.raises(DatasetError, match="split 'corpus'"):  # no subset marked
        make_split([Recording(tmp_path / "m" / "0.wav", "cat")], "corpus")


def test_corpus_is_chosen_in_a_config_and_its_labels_reach_the_model(tmp_path, monkeypatch, capsys):
    import yaml

    from spokenword.cli import main
    from spokenword.training.task import SpokenWordTask
    from spokenword.training.cli import SpokenWordCLI, trainer_defaults

    speech_commands(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = [
        "--data.root", str(tmp_path),
        "--data.corpus", "spokenword.data.corpora.SpeechCommands",
        "--data.corpus.path", "sc",
        "--data.split", "corpus",
        "--data.sample_rate", "16000",
        "--data.cache_dir", str(tmp_path / "cache"),
        "--trainer.logger", "false",
        "--model.net", "spokenword.models.SpectrogramCNN",
    ]
    assert main(["fit", *args, "--print_config"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["data"]["corpus"] == {"class_path": "spokenword.data.corpora.SpeechCommands", "init_args": {"path": "sc", "words": None}}
    cli = SpokenWordCLI(SpokenWordTask, AudioDataModule, run=False, args=args, auto_configure_optimizers=False,
                        trainer_defaults=trainer_defaults())
    assert isinstance(cli.datamodule.corpus, SpeechCommands) and cli.datamodule.corpus.path == "sc"
    assert cli.model.labels == list(WORDS)
    assert cli.model.net(__import__("torch").zeros(1, 1, 64, 64)).shape == (1, 3)
