"""``spokenword adapt`` / :func:`spokenword.adapt`: new words added to a model and its words tuned to one voice,
from the bundled model, a model folder, a checkpoint or a state file; the result is a model folder every command
opens; bad sources and takes are one-line errors.

Synthetic "words" (tones, chirps) need no data; the real-speech tests read FSDD and the non-digit words.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_wav

pytest.importorskip("torch")
pytest.importorskip("openwakeword")

RATE = 8000


def _sound(kind: str, rng: np.random.Generator) -> np.ndarray:
    """0.6 s of a synthetic word with take-to-take variation (pitch, level, noise, position)."""
    t = np.arange(int(0.6 * RATE)) / RATE
    jitter = 1 + rng.uniform(-0.05, 0.05)
    if kind == "low":
        wave = np.sin(2 * np.pi * 300 * jitter * t)
    elif kind == "high":
        wave = np.sin(2 * np.pi * 1500 * jitter * t)
    else:  # a rising chirp
        wave = np.sin(2 * np.pi * (300 + 1500 * t / t[-1] / 2) * jitter * t)
    wave = wave * np.hanning(len(t)) * rng.uniform(0.3, 0.8) + rng.normal(0, 0.003, len(t))
    pad = np.zeros(int(rng.uniform(0.1, 0.3) * RATE))
    return np.concatenate([pad, wave, pad]).astype(np.float32)


def _folder(path: Path, words: dict[str, int], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for word, takes in words.items():
        for i in range(takes):
            write_wav(path / word / f"take{i}.wav", _sound(word, rng))
    return path


@pytest.fixture(scope="module")
def bundled_state():
    from spokenword import pretrained

    facts = pretrained.manifest()
    if not facts.get("adaptable"):
        pytest.fail("the bundled model has no adaptable state: rebuild it with `make model`")
    return pretrained.folder() / next(iter(facts["adaptable"].values()))


@pytest.fixture(scope="module")
def tones_model(tmp_path_factory, bundled_state):
    """The bundled model adapted to three synthetic words, three takes each."""
    from spokenword.training.adapt import adapt

    work = tmp_path_factory.mktemp("adapt")
    folder = _folder(work / "takes", {"low": 3, "high": 3, "chirp": 3})
    lines = []
    out = adapt(None, folder, work / "model", steps=150, log=lines.append)
    return out, lines


def test_new_words_join_the_labels_and_are_recognised(tones_model, tmp_path):
    from spokenword import load_model, pretrained

    out, lines = tones_model
    manifest = json.loads((out / "manifest.json").read_text())
    old = pretrained.manifest()
    model = load_model(out)
    digits = [w for w in model.labels if w.isdigit()]
    assert digits == [str(d) for d in range(10)], model.labels  # the digits stay
    assert {"low", "high", "chirp", "_unknown_", "_silence_"} <= set(model.labels)
    assert manifest["adapted"]["new_words"] == ["chirp", "high", "low"]  # the folder's order (sorted)
    assert manifest["adapted"]["takes"] == {"low": 3, "high": 3, "chirp": 3}
    assert manifest["members"] == ["adapted.onnx"]  # the digit-only CNN cannot answer the new words: dropped
    assert manifest["reject_below"] == old["reject_below"]
    assert model.reject_below == old["reject_below"]
    # new takes, never adapted on
    rng = np.random.default_rng(99)
    right = sum(model((_sound(w, rng), RATE))[0]["label"] == w for w in ("low", "high", "chirp") for _ in range(4))
    assert right >= 11, f"{right}/12 new takes recognised"
    assert any("adapting" in line for line in lines)


def test_the_model_folder_is_verified_and_can_be_adapted_again(tones_model, tmp_path):
    from spokenword import pretrained
    from spokenword.training.adapt import adapt, read_state

    out, _ = tones_model
    manifest = json.loads((out / "manifest.json").read_text())
    for name, digest in manifest["files"].items():
        assert pretrained.sha256(out / name) == digest
    state = read_state(out / manifest["adaptable"]["adapted.onnx"])
    labels = state.labels
    for word in ("low", "high", "chirp"):  # the clean takes join the rehearsal set
        assert sum(labels[t] == word for t in state.targets) == 3
    again = adapt(out, _folder(tmp_path / "more", {"buzz": 2}, seed=5), tmp_path / "again", steps=50, log=lambda _: None)
    assert {"low", "high", "chirp", "buzz"} <= set(json.loads((again / "manifest.json").read_text())["labels"])


def test_cli_adapt_then_classify(tmp_path, bundled_state, capsys):
    from spokenword.cli import main

    folder = _folder(tmp_path / "takes", {"low": 2, "high": 2})
    out = tmp_path / "mine"
    assert main(["adapt", str(folder), "--out", str(out), "--steps", "100"]) == 0
    assert (out / "manifest.json").is_file() and not list(tmp_path.glob(".mine-*"))  # staged, then renamed
    probe = write_wav(tmp_path / "probe.wav", _sound("high", np.random.default_rng(7)))
    capsys.readouterr()
    assert main(["classify", str(out), str(probe)]) == 0
    assert capsys.readouterr().out.split("\t")[1] == "high"


def test_an_existing_model_folder_is_replaced_whole_and_kept_on_failure(tmp_path, bundled_state):
    from spokenword.training.adapt import AdaptError, adapt

    folder = _folder(tmp_path / "takes", {"low": 2})
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    adapt(None, folder, out, steps=20, log=lambda _: None)
    assert not (out / "stale.txt").exists()
    before = sorted(p.name for p in out.iterdir())
    bad = tmp_path / "bad"
    (bad / "word").mkdir(parents=True)
    (bad / "word" / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AdaptError, match="no usable take of word"):
        adapt(None, bad, out, steps=20, log=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_take_that_does_not_decode_is_skipped_with_a_line(tmp_path, bundled_state):
    from spokenword.training.adapt import adapt

    folder = _folder(tmp_path / "takes", {"low": 2})
    (folder / "low" / "broken.wav").write_bytes(b"RIFF....WAVEfmt ")
    lines = []
    out = adapt(None, folder, tmp_path / "model", steps=20, log=lines.append)
    assert any("skipped" in line and "broken.wav" in line for line in lines)
    assert json.loads((out / "manifest.json").read_text())["adapted"]["takes"] == {"low": 2}


@pytest.mark.parametrize("kind", ["onnx", "no_source", "missing", "empty", "no_adaptable"])
def test_unusable_sources_and_folders_are_one_line_errors(tmp_path, kind, bundled_state, capsys):
    from spokenword import pretrained
    from spokenword.cli import main

    folder = _folder(tmp_path / "takes", {"low": 1})
    if kind == "onnx":
        args = [str(pretrained.members()[0]), str(folder)]
    elif kind == "no_source":
        args = [str(tmp_path / "nowhere"), str(folder)]
    elif kind == "missing":
        args = [str(tmp_path / "no-such-takes")]
    elif kind == "empty":
        (tmp_path / "empty").mkdir()
        args = [str(tmp_path / "empty")]
    else:
        copy = tmp_path / "copy"
        shutil.copytree(pretrained.folder(), copy)
        facts = json.loads((copy / "manifest.json").read_text())
        facts.pop("adaptable")
        (copy / "manifest.json").write_text(json.dumps(facts))
        args = [str(copy), str(folder)]
    code = main(["adapt", *args, "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spokenword: error: ") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_unusable_source_messages(tmp_path, bundled_state, capsys):
    from spokenword import pretrained
    from spokenword.cli import main

    folder = _folder(tmp_path / "takes", {"low": 1})
    main(["adapt", str(pretrained.members()[0]), str(folder), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ONNX export cannot be adapted" in err


def test_a_checkpoint_without_its_run_adapts_without_rehearsal(tmp_path, bundled_state, monkeypatch):
    """A checkpoint source (here one written from the bundled state) whose training data cannot be found:
    adapted on the new takes alone, with a warning saying what that risks."""
    from spokenword.training.adapt import _checkpoint, _net, adapt, read_state

    monkeypatch.setenv("SPOKENWORD_DATA", str(tmp_path / "no-data"))
    state = read_state(bundled_state)
    net = _net(state.hparams, len(state.labels), state.backbone)
    net.head.load_state_dict(state.head)
    checkpoint = _checkpoint(net, state, tmp_path / "model.ckpt")
    lines = []
    out = adapt(checkpoint, _folder(tmp_path / "takes", {"low": 2, "high": 2}), tmp_path / "out", steps=50,
                log=lines.append)
    assert any("without a rehearsal set" in line for line in lines)
    assert json.loads((out / "manifest.json").read_text())["adapted"]["rehearsal_vectors"] == 0


def test_adapting_for_no_steps_gives_back_the_source_member(tmp_path, bundled_state):
    """With no training the adapted model is the source's member (same backbone statistics, head, normalisation):
    its probabilities match the bundled member's float weights up to int8 rounding."""
    from spokenword import load_model, pretrained
    from spokenword.training.adapt import adapt

    out = adapt(None, _folder(tmp_path / "takes", {"3": 1}), tmp_path / "same", steps=0, log=lambda _: None)
    adapted, member = load_model(out / "adapted.onnx"), load_model(pretrained.members()[1])
    assert adapted.labels == member.labels
    rng = np.random.default_rng(3)
    clips = [adapted.featurize(_sound(kind, rng)) for kind in ("low", "high", "chirp")]
    # int8 rounding alone moves these synthetic sounds by up to 0.12 (the float export of the member's checkpoint
    # matches the adapted model to 1e-6); a backbone with other batch-norm statistics moved them by 0.58
    assert np.abs(adapted.probabilities(clips) - member.probabilities(clips)).max() < 0.2


def test_model_folder_is_not_a_checkpoint(tmp_path):
    from spokenword import pretrained
    from spokenword.inference.base import ModelError, model_file

    with pytest.raises(ModelError, match="model folder"):
        model_file(pretrained.folder())


# -- real speech ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def words_root(fsdd_root):
    root = fsdd_root / "speech_commands_words"
    if not (root / "yes").is_dir():
        pytest.skip(f"the non-digit words are not under {root}")
    return root


def _speaker(path: Path) -> str:
    return path.name.split("_nohash_")[0]


def test_a_taught_word_leaves_the_other_words_and_keeps_the_digits(tmp_path, words_root, fsdd_recordings):
    """Teach "yes" and "house" from 3 takes each (other words of the bundled model's _unknown_): held-out
    speakers' takes of them are recognised, the rehearsal set no longer calls them _unknown_, and FSDD test
    digits are still right."""
    from spokenword import load_model
    from spokenword.training.adapt import adapt, read_state

    folder, held = tmp_path / "takes", []
    for word in ("yes", "house"):
        clips = sorted((words_root / word).glob("*.wav"))
        (folder / word).mkdir(parents=True)
        for clip in clips[:3]:
            shutil.copyfile(clip, folder / word / clip.name)
        taught = {_speaker(c) for c in clips[:3]}
        held += [(word, c) for c in clips[3:] if _speaker(c) not in taught][:8]
    out = adapt(None, folder, tmp_path / "model", steps=200, log=lambda _: None)
    state = read_state(out / "adapted.adapt.npz")
    unknown = state.labels.index("_unknown_")
    assert not any(o in ("yes", "house") for o, t in zip(state.origins, state.targets) if t == unknown)
    model = load_model(out)
    right = sum(model(c)[0]["label"] == w for w, c in held)
    assert right >= 0.75 * len(held), f"{right}/{len(held)} held-out takes of taught words recognised"
    digits = [fsdd_recordings / f"{d}_{s}_0.wav" for d in range(10) for s in ("george", "lucas")]
    correct = sum(model(p)[0]["label"] == p.name[0] for p in digits)
    assert correct >= 18, f"{correct}/20 FSDD test digits after adaptation"


def test_one_speakers_digits_keep_the_ensemble(tmp_path, fsdd_recordings):
    """Adapting the digits to one voice keeps the bundle's CNN member (it knows the same words)."""
    from spokenword import load_model
    from spokenword.training.adapt import adapt

    folder = tmp_path / "george"
    for d in range(10):
        (folder / str(d)).mkdir(parents=True)
        shutil.copyfile(fsdd_recordings / f"{d}_george_5.wav", folder / str(d) / f"{d}_george_5.wav")
    out = adapt(None, folder, tmp_path / "model", steps=100, log=lambda _: None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["members"]) == 2 and manifest["adapted"]["kept_members"]
    assert manifest["adapted"]["new_words"] == []
    model = load_model(out)
    assert model.labels == load_model().labels
    clips = [fsdd_recordings / f"{d}_george_{t}.wav" for d in range(10) for t in (10, 11)]
    assert sum(model(p)[0]["label"] == p.name[0] for p in clips) >= 18
