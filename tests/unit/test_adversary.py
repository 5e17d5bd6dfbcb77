"""Speaker-adversarial training: gradient reversal, its schedule, speaker indices in training batches,
the link from the data module, and checkpoints that reload with the adversary."""

from __future__ import annotations

import pytest
import torch

from spokenword.data.datamodule import AudioDataModule
from spokenword.models import SpectrogramCNN
from spokenword.models.adversary import SpeakerAdversary, dann_ramp, reverse_gradient
from spokenword.training.task import SpokenWordTask
from tests.unit.test_corpora import speech_commands


def test_reverse_gradient_is_identity_forward_and_negates_backward():
    x = torch.randn(4, 3, requires_grad=True)
    weights = torch.randn(4, 3)
    y = reverse_gradient(x, 0.25)
    assert torch.equal(y, x)
    (y * weights).sum().backward()
    assert torch.allclose(x.grad, -0.25 * weights)


def test_dann_ramp_starts_at_zero_and_rises_to_one():
    values = [dann_ramp(p / 10) for p in range(11)]
    assert values[0] == 0.0 and values[-1] == pytest.approx(1.0, abs=1e-4)
    assert all(a < b for a, b in zip(values, values[1:]))
    assert dann_ramp(-1.0) == 0.0 and dann_ramp(2.0) == dann_ramp(1.0)  # clamped


def test_adversary_needs_two_speakers_and_no_mixup():
    with pytest.raises(ValueError, match="at least 2 training speakers"):
        SpeakerAdversary(16, 1)
    with pytest.raises(ValueError, match="at least 2 training speakers"):
        SpokenWordTask(speaker_adversary=0.5, speakers=["only"])
    with pytest.raises(ValueError, match="cannot be combined"):
        SpokenWordTask(speaker_adversary=0.5, speakers=["a", "b"], mixup_alpha=0.2)
    with pytest.raises(ValueError, match=">= 0"):
        SpokenWordTask(speaker_adversary=-1.0)
    assert SpokenWordTask().adversary is None  # off by default: no extra parameters in checkpoints


def test_adversary_sees_the_network_pooled_features():
    task = SpokenWordTask(net=SpectrogramCNN(batch_norm=True), speaker_adversary=0.5, speakers=["a", "b", "c"])
    first = task.adversary.classifier[0]
    assert first.in_features == 1600 and task.adversary.classifier[-1].out_features == 3
    assert task.net.training  # measuring the feature size leaves the network's mode alone


def test_speaker_indices_reach_training_batches_and_the_model(tmp_path, monkeypatch):
    from spokenword.inference.checkpoint import load_task
    from spokenword.training.cli import SpokenWordCLI, trainer_defaults

    speech_commands(tmp_path)  # speakers a-d: c is test, d validation, a and b train
    monkeypatch.chdir(tmp_path)
    args = [
        "--data.root", str(tmp_path), "--data.corpus", "spokenword.data.corpora.SpeechCommands",
        "--data.corpus.path", "sc", "--data.split", "corpus", "--data.sample_rate", "16000",
        "--data.cache_dir", str(tmp_path / "cache"), "--data.batch_size", "4",
        "--trainer.logger", "false", "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false",
        "--model.net", "spokenword.models.SpectrogramCNN", "--model.speaker_adversary", "0.5",
    ]
    cli = SpokenWordCLI(SpokenWordTask, AudioDataModule, run=False, args=args, auto_configure_optimizers=False,
                        trainer_defaults=trainer_defaults())
    assert cli.datamodule.train_speakers == ["a0f", "b0f"] and cli.model.speakers == ["a0f", "b0f"]
    cli.datamodule.prepare_data()
    cli.datamodule.setup("fit")
    x, y, speaker = next(iter(cli.datamodule.train_dataloader()))
    assert x.shape[0] == len(y) == len(speaker) and set(speaker.tolist()) <= {0, 1}
    assert len(next(iter(cli.datamodule.val_dataloader()))) == 2  # evaluation batches carry no speakers

    before = [p.detach().clone() for p in cli.model.adversary.parameters()]
    cli.trainer.fit(cli.model, cli.datamodule)
    assert "train/speaker_loss" in cli.trainer.callback_metrics
    assert any(not torch.equal(a, b) for a, b in zip(before, cli.model.adversary.parameters()))  # it learned

    path = tmp_path / "adv.ckpt"
    cli.trainer.save_checkpoint(path)
    task = load_task(path)  # the adversary's weights are in the checkpoint and load strictly
    assert task.adversary is not None and task.speakers == ["a0f", "b0f"]
    assert task(torch.zeros(1, 1, 64, 64)).shape == (1, 3)


def test_a_checkpoint_loads_whatever_adversary_it_carries():
    net = lambda: SpectrogramCNN(batch_norm=True)  # noqa: E731
    trained = SpokenWordTask(net=net(), speaker_adversary=0.5, speakers=["a", "b"])
    for other in (SpokenWordTask(net=net(), speaker_adversary=0.5, speakers=["a", "b", "c"]),  # another split's speakers
                  SpokenWordTask(net=net())):  # no adversary
        checkpoint = {"state_dict": {k: v.clone() for k, v in trained.state_dict().items()}}
        other.on_load_checkpoint(checkpoint)
        other.load_state_dict(checkpoint["state_dict"])  # strict
        assert all(torch.equal(a, b) for a, b in zip(other.net.state_dict().values(), trained.net.state_dict().values()))
    same = SpokenWordTask(net=net(), speaker_adversary=0.5, speakers=["x", "y"])  # resuming: the adversary is restored
    checkpoint = {"state_dict": {k: v.clone() for k, v in trained.state_dict().items()}}
    same.on_load_checkpoint(checkpoint)
    same.load_state_dict(checkpoint["state_dict"])
    assert all(torch.equal(a, b) for a, b in zip(same.adversary.state_dict().values(), trained.adversary.state_dict().values()))
