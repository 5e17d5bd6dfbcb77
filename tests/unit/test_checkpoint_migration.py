"""Checkpoints of earlier versions: moved class paths load, retired experiments' settings are dropped
when they were off and refused with a one-line retrain message when they were on; and the torch
Classifier (one padded batch through the exported graph) agrees with the per-clip front end."""

from __future__ import annotations

import copy

import lightning
import numpy as np
import pytest
import torch

from spokenword.frontend.settings import RETIRED_CODE, FeatureSettings
from spokenword.inference.base import CheckpointError, ModelError
from spokenword.inference.checkpoint import Classifier, load_task
from spokenword.models import SpectrogramCNN
from spokenword.training.task import SpokenWordTask
from tests.conftest import tone

LABELS = [str(d) for d in range(10)]


def checkpoint_dict(seed: int = 0, features: FeatureSettings | None = None) -> dict:
    """A checkpoint as ``spokenword fit`` saves it (LightningCLI hyper-parameters: the network as its
    class path and arguments), of an untrained network with a sharpened head (confident outputs)."""
    features = features or FeatureSettings()
    torch.manual_seed(seed)
    net_args = {"num_classes": 10, "in_channels": 1, "input_size": list(features.shape[1:]), "dropout": 0.0,
                "batch_norm": False, "channels": [16, 32, 64, 64]}
    task = SpokenWordTask(net=SpectrogramCNN(**net_args), labels=LABELS, sample_rate=8000, features=features)
    with torch.no_grad():
        task.net.head.weight.mul_(30.0)
    task.set_normalization(0.4, 0.2)
    hparams = {
        "_instantiator": "lightning.pytorch.cli.instantiate_module",
        "net": {"class_path": "spokenword.models.SpectrogramCNN", "init_args": net_args},
        "labels": LABELS, "sample_rate": 8000, "features": features.to_dict(),
        "optimizer": "spokenword.training.task._adam", "lr_scheduler": None, "scheduler_interval": "epoch",
        "label_smoothing": 0.0,
        "augment": {"class_path": "spokenword.data.feature_augment.FeatureAugment", "init_args": {"time_masks": 2}},
    }
    return {"state_dict": task.state_dict(), "hyper_parameters": hparams, "epoch": 0, "global_step": 0,
            "pytorch-lightning_version": lightning.__version__}


def old_checkpoint(**retired) -> dict:
    """:func:`checkpoint_dict` as an earlier spokenword wrote it: class paths before the package moved
    into stages and every retired experiment's setting present, off (``retired`` overrides them,
    ``section.key=value``)."""
    ckpt = checkpoint_dict()
    hp = ckpt["hyper_parameters"]
    hp["optimizer"] = "spokenword.task._adam"
    hp["augment"]["class_path"] = "spokenword.augment.FeatureAugment"
    hp["augment"]["init_args"].update({"gain_db": 0.0, "noise_std": 0.0, "tilt": 0.0, "time_stretch": 0.0})
    hp.update({"mixup_alpha": 0.0, "speaker_adversary": 0.0, "speakers": ["george", "jackson"]})
    hp["net"]["init_args"].update({"mixstyle_p": 0.0, "mixstyle_alpha": 0.1, "mixstyle_blocks": 2,
                                   "freq_norm": 0.0, "freq_norm_blocks": 2})
    hp["features"]["cepstral_lifter"] = None
    ckpt["datamodule_hyper_parameters"] = {"corpus": {"class_path": "spokenword.datasets.FSDD"},
                                           "wave_augment": {"class_path": "spokenword.wave_augment.WaveAugment"}}
    for key, value in retired.items():
        section, _, name = key.rpartition("__")
        target = hp if not section else hp["features"] if section == "features" else hp[section]["init_args"]
        target[name] = value
    return ckpt


def save(tmp_path, ckpt: dict, name: str = "model.ckpt"):
    path = tmp_path / name
    torch.save(ckpt, path)
    return path


def test_an_old_checkpoint_with_its_experiments_off_loads_the_same_model(tmp_path):
    new = load_task(save(tmp_path, checkpoint_dict(), "new.ckpt"))
    old = load_task(save(tmp_path, old_checkpoint(), "old.ckpt"))
    assert type(old.augment).__module__ == "spokenword.data.feature_augment"
    assert old.labels == LABELS and old.features == new.features
    x = torch.randn(3, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(old(x), new(x))


@pytest.mark.parametrize("key, value, shown", [
    ("speaker_adversary", 0.5, "speaker_adversary=0.5"),
    ("mixup_alpha", 0.2, "mixup_alpha=0.2"),
    ("net__mixstyle_p", 0.3, "net.mixstyle_p=0.3"),
    ("net__freq_norm", 0.5, "net.freq_norm=0.5"),
    ("augment__gain_db", 6.0, "augment.gain_db=6.0"),
    ("augment__noise_std", 0.1, "augment.noise_std=0.1"),
    ("augment__tilt", 3.0, "augment.tilt=3.0"),
    ("features__cepstral_lifter", 20, "features.cepstral_lifter=20"),
])
def test_a_checkpoint_that_used_a_retired_experiment_says_how_to_retrain(tmp_path, key, value, shown):
    path = save(tmp_path, old_checkpoint(**{key: value}))
    with pytest.raises(CheckpointError) as caught:
        load_task(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: trained with {shown}, which spokenword no longer has")
    assert "spokenword fit --config configs/" in message and RETIRED_CODE in message


def test_a_network_class_that_is_gone_is_named(tmp_path):
    ckpt = old_checkpoint()
    ckpt["hyper_parameters"]["net"]["class_path"] = "spokenword.models.FrameRNN"
    with pytest.raises(CheckpointError, match=r"trained with net=spokenword.models.FrameRNN, which spokenword no longer has"):
        load_task(save(tmp_path, ckpt))


def test_files_that_are_not_checkpoints_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"junk")
    with pytest.raises(ModelError, match="not a spokenword checkpoint"):
        load_task(junk)
    with pytest.raises(ModelError, match="no such checkpoint file"):
        load_task(tmp_path / "absent.ckpt")
    with pytest.raises(ModelError, match="not a spokenword checkpoint"):
        load_task(save(tmp_path, {"weights": torch.zeros(2)}, "weights.ckpt"))


NEW_VOICES = FeatureSettings(kind="logmel", n_fft=256, hop_length=80, n_bins=64, n_frames=64, time_axis="fixed",
                             f_min=20.0, f_max=4000.0, trim_db=30.0, trim_floor_db=8.0, crop_at="loudest",
                             peak_normalize=True, band_mean=True, utterance_norm="standard")


@pytest.mark.parametrize("features", [FeatureSettings(), NEW_VOICES], ids=["reference", "new-voices"])
def test_a_padded_batch_gives_each_clip_its_own_probabilities(tmp_path, features):
    """The classifier pads a batch of clips of different lengths; every clip's probabilities are
    those it gets alone, and its spectrogram is the features the network sees."""
    path = save(tmp_path, checkpoint_dict(features=features))
    classifier = Classifier.from_checkpoint(path)
    rng = np.random.default_rng(0)
    clips = [tone(s, freq=f) * np.hanning(int(8000 * s)).astype(np.float32) + 1e-3 * rng.standard_normal(int(8000 * s)).astype(np.float32)
             for s, f in ((0.3, 300.0), (1.2, 800.0), (0.05, 500.0), (2.5, 1200.0))]
    waves = [classifier.featurize(c) for c in clips]
    batched = classifier.probabilities(waves)
    alone = np.concatenate([classifier.probabilities([w]) for w in waves])
    assert batched.shape == (4, 10) and batched.dtype == np.float32
    # float32 front end: the batch's padded length and the CPU's kernels move probabilities by a few 1e-6
    np.testing.assert_allclose(batched, alone, atol=2e-5)
    image = classifier.spectrogram(clips[1])
    assert image.shape == features.shape and np.isfinite(image).all()
    task = load_task(path)
    with torch.no_grad():
        direct = torch.softmax(task(torch.from_numpy(image)[None]), -1).numpy()
    np.testing.assert_allclose(direct[0], batched[1], atol=2e-5)
    ranked = classifier((clips[1], 8000), top_k=3)
    assert [r["label"] for r in ranked] == [LABELS[i] for i in np.argsort(-batched[1], kind="stable")[:3]]


def test_migrate_leaves_the_checkpoint_s_other_parts_alone(tmp_path):
    from spokenword.inference.checkpoint import migrate

    ckpt = old_checkpoint()
    before = copy.deepcopy(ckpt["state_dict"])
    migrate(ckpt, "old.ckpt")
    assert ckpt["datamodule_hyper_parameters"]["corpus"]["class_path"] == "spokenword.data.corpora.FSDD"
    assert ckpt["datamodule_hyper_parameters"]["wave_augment"]["class_path"] == "spokenword.data.wave_augment.WaveAugment"
    assert ckpt["hyper_parameters"]["optimizer"] == "spokenword.training.task._adam"
    assert "speakers" not in ckpt["hyper_parameters"] and "mixstyle_alpha" not in ckpt["hyper_parameters"]["net"]["init_args"]
    assert ckpt["hyper_parameters"]["augment"]["init_args"] == {"time_masks": 2}
    assert all(torch.equal(before[k], v) for k, v in ckpt["state_dict"].items())


def test_a_retired_setting_that_is_now_the_only_behaviour_is_dropped_and_another_value_refused(tmp_path):
    """``SpeechEmbeddingCNN(backbone_norm="pretrained")`` (runs made while the fix was measured) is what a frozen
    backbone now always does; ``"training"`` is not."""
    from spokenword.inference.checkpoint import migrate

    def embedding_checkpoint(norm: str) -> dict:
        net = {"class_path": "spokenword.models.SpeechEmbeddingCNN",
               "init_args": {"num_classes": 12, "pretrained": "none", "backbone_norm": norm}}
        return {"hyper_parameters": {"net": net, "labels": LABELS}}

    ckpt = embedding_checkpoint("pretrained")
    ckpt["hyper_parameters"]["teacher_weight"] = 0.5  # the loss of the distillation experiment: the same network
    migrated = migrate(ckpt, tmp_path / "a.ckpt")
    assert "backbone_norm" not in migrated["hyper_parameters"]["net"]["init_args"]
    assert "teacher_weight" not in migrated["hyper_parameters"]
    with pytest.raises(CheckpointError, match=r"b.ckpt: trained with net.backbone_norm='training', which spokenword no longer has"):
        migrate(embedding_checkpoint("training"), tmp_path / "b.ckpt")
