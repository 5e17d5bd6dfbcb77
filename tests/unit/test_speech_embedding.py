"""The pretrained speech-embedding backbone and its head (spokenword.models.speech_embedding)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from spokenword.models import SpeechEmbedding, SpeechEmbeddingCNN
from spokenword.models import speech_embedding as se


def test_backbone_is_fully_convolutional_in_time():
    """One embedding per 76-frame window every 8 frames, equal to running each window alone."""
    torch.manual_seed(0)
    net = SpeechEmbedding().eval()
    x = torch.randn(2, 1, 132, 32)
    with torch.no_grad():
        whole = net(x)
        assert whole.shape == (2, 96, 1 + (132 - 76) // 8)
        for k in range(whole.shape[-1]):
            alone = net(x[:, :, 8 * k : 8 * k + 76])
            assert alone.shape == (2, 96, 1)
            torch.testing.assert_close(whole[..., k], alone[..., 0], atol=1e-4, rtol=1e-4)


def test_backbone_has_the_original_size():
    assert sum(p.numel() for p in SpeechEmbedding().parameters()) == 328_152


def test_pretrained_weights_reproduce_the_original_onnx_model():
    """The PyTorch layers with the wheel's weights give the ONNX model's embeddings (run by ONNX
    Runtime on each 76-frame window, its only input shape) to float rounding."""
    import onnxruntime as ort

    path = se.openwakeword_embedding_path()
    net = SpeechEmbedding.from_openwakeword(path).eval()
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 100, 32)) * 2 + 6).astype(np.float32)  # the front end's dB / 10 + 2 range
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    windows = np.stack([x[:, s : s + 76] for s in (0, 8, 16, 24)], axis=1).reshape(-1, 76, 32, 1)
    expected = session.run(None, {"input_1": windows})[0].reshape(3, 4, 96)
    with torch.no_grad():
        got = net(torch.from_numpy(x)[:, None]).transpose(1, 2).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3 * np.abs(expected).max()


def test_missing_weights_package_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(se.importlib.util, "find_spec", lambda name, *a: None if name == "openwakeword" else real(name, *a))
    with pytest.raises(se.WeightsUnavailable, match=r"pip install 'openwakeword==0\.4\.0'"):
        SpeechEmbeddingCNN(pretrained="openwakeword")


def test_head_maps_feature_images_to_logits_and_checks_the_input_size():
    model = SpeechEmbeddingCNN(num_classes=7, input_size=(32, 100), pretrained="none").eval()
    x = torch.randn(4, 1, 32, 100)
    assert model(x).shape == (4, 7)
    assert model.forward_features(x).shape == (4, 192)
    for bad in ((64, 128), (32, 60)):
        with pytest.raises(ValueError, match="32 mel bands by at least 76 frames"):
            SpeechEmbeddingCNN(input_size=bad, pretrained="none")
    with pytest.raises(ValueError, match="pretrained must be"):
        SpeechEmbeddingCNN(pretrained="imagenet", input_size=(32, 76))


def test_frozen_backbone_neither_learns_nor_updates_its_statistics():
    torch.manual_seed(0)
    model = SpeechEmbeddingCNN(pretrained="none", input_size=(32, 80)).train()
    assert model.backbone.training is False and model.head.training is True
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    loss = torch.nn.functional.cross_entropy(model(torch.randn(8, 1, 32, 80)), torch.arange(8) % 10)
    loss.backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.head.parameters() if p.requires_grad)
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, before[key]), key  # batch-norm running statistics included


def test_frozen_backbone_keeps_its_statistics_through_a_lightning_fit():
    """Lightning sets each submodule's mode back after validation, so the eval mode that ``train()`` gives the
    backbone did not hold in the training steps after the first validation: its batch norm normalised by each
    batch and moved its running statistics (every default run before this fix; docs/experiments.md)."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from spokenword.training.task import SpokenWordTask

    torch.manual_seed(0)
    net = SpeechEmbeddingCNN(num_classes=3, pretrained="none", input_size=(32, 80))
    before = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    modes = []
    net.backbone.bn0.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    data = TensorDataset(torch.randn(16, 1, 32, 80), torch.randint(0, 3, (16,)))
    L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False).fit(SpokenWordTask(net=net, labels=["a", "b", "c"]),
                                              DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    assert modes and not any(modes)
    assert all(torch.equal(v, before[k]) for k, v in net.backbone.state_dict().items())


def test_unfrozen_backbone_fine_tunes():
    torch.manual_seed(0)
    model = SpeechEmbeddingCNN(pretrained="none", input_size=(32, 80), freeze=False).train()
    assert model.backbone.training
    model(torch.randn(4, 1, 32, 80)).sum().backward()
    assert model.backbone.conv0.weight.grad is not None


def test_input_scale_maps_normalised_features_to_the_backbones_range():
    """``input_mean``/``input_std`` are applied before the backbone: a standardised image becomes
    the backbone's input scale."""
    model = SpeechEmbeddingCNN(pretrained="none", input_size=(32, 76), input_mean=8.0, input_std=2.0).eval()
    seen = {}
    model.backbone.register_forward_pre_hook(lambda module, args: seen.setdefault("x", args[0]))
    x = torch.randn(2, 1, 32, 76)
    model(x)
    torch.testing.assert_close(seen["x"], (x * 2.0 + 8.0).transpose(-2, -1))


def test_head_learns_a_toy_problem_on_frozen_pretrained_embeddings():
    torch.manual_seed(0)
    y = torch.arange(32) % 2
    x = torch.randn(32, 1, 32, 76)
    x[y == 1, :, :16] += 1.5  # class 1: more energy in the low bands
    model = SpeechEmbeddingCNN(num_classes=2, input_size=(32, 76), dropout=0.0)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    first = None
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first
