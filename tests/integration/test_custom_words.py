"""configs/custom_words.yaml end to end: a folder with one sub-folder per word (real FSDD clips, at
16 kHz as a phone would record them) trains through ``spokenword fit`` with the documented command,
and the run folder is a model whose labels are the folder names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from spokenword import audio
from spokenword.cli import main
from spokenword.data.corpora import LabelledFolder
from spokenword.data.splits import make_split
from spokenword.inference.load import load_model

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
#: folder name -> FSDD digit; the names are what the model must answer
WORDS = {"zero": 0, "one": 1, "two": 2}
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
TAKES = (0, 1)


@pytest.fixture(scope="module")
def words(fsdd_recordings: Path, tmp_path_factory) -> Path:
    """``my words/<word>/<speaker>_nohash_<take>.wav`` (Speech Commands names, so speakers are known)."""
    folder = tmp_path_factory.mktemp("custom") / "my words"
    for word, digit in WORDS.items():
        (folder / word).mkdir(parents=True)
        for speaker in SPEAKERS:
            for take in TAKES:
                wave = audio.load(fsdd_recordings / f"{digit}_{speaker}_{take}.wav", 16000)
                sf.write(folder / word / f"{speaker}_nohash_{take}.wav", wave, 16000)
    return folder


@pytest.fixture(scope="module")
def run(words: Path) -> Path:
    out = words.parent
    code = main([
        "fit", "--config", str(REPO / "configs" / "custom_words.yaml"), "--data.corpus.path", str(words),
        "--trainer.max_epochs", "4", "--data.batch_size", "8",
        "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(out / "runs"), "--data.cache_dir", str(out / "cache"),
    ])
    assert code == 0
    (folder,) = list((out / "runs" / "custom_words").glob("version_*"))
    return folder


def test_the_run_reports_a_speaker_disjoint_random_split(run: Path, words: Path):
    report = json.loads((run / "report.json").read_text())
    assert report["labels"] == sorted(WORDS)  # the sub-folders' names, in the model's output order
    assert report["split"] == "random" and "whole speakers held out" in report["protocol"]
    split = make_split(LabelledFolder(str(words)).recordings(Path(".")), "random")
    assert (report["train_count"], report["validation"]["count"], report["test"]["count"]) == (
        len(split.train), len(split.val), len(split.test))
    assert report["test"]["count"] == len(WORDS) * len(TAKES)  # one speaker of six, every word
    assert report["sample_rate"] == 8000  # the 16 kHz clips were resampled to the config's rate
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["corpus"]["init_args"]["path"] == str(words)


def test_the_run_folder_classifies_its_words(run: Path, words: Path):
    classifier = load_model(run)
    assert classifier.labels == sorted(WORDS)
    split = make_split(LabelledFolder(str(words)).recordings(Path(".")), "random")
    answers = [result[0]["label"] for _, result in classifier.predict_many([r.path for r in split.train])]
    assert set(answers) <= set(WORDS)
    right = sum(answer == r.label for answer, r in zip(answers, split.train))
    assert right / len(split.train) >= 0.8, answers  # a few steps of the head on the pretrained embedding


def test_a_missing_folder_path_is_a_usage_error(capsys):
    assert main(["fit", "--config", str(REPO / "configs" / "custom_words.yaml")]) == 2
    assert "data.corpus: the following arguments are required: path" in capsys.readouterr().err


def test_no_held_out_clips_still_fits_and_says_so(run: Path, words: Path):
    """``val_fraction 0`` and ``test_fraction 0``: the checkpoint's monitor (val/acc) still has a score."""
    out = words.parent / "all"
    code = main([
        "fit", "--config", str(REPO / "configs" / "custom_words.yaml"), "--data.corpus.path", str(words),
        "--data.val_fraction", "0", "--data.test_fraction", "0", "--trainer.max_epochs", "1",
        "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(out), "--data.cache_dir", str(words.parent / "cache"),
    ])
    assert code == 0
    (report_path,) = list(out.glob("custom_words/version_*/report.json"))
    report = json.loads(report_path.read_text())
    clips = len(WORDS) * len(SPEAKERS) * len(TAKES)
    assert report["train_count"] == report["validation"]["count"] == report["test"]["count"] == clips
    assert "validation = test = the training clips" in report["protocol"]
    assert list(report_path.parent.glob("checkpoints/best-*.ckpt"))
