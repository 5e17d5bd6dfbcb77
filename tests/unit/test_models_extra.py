"""The compact residual network and the recurrent network: size budget and output shapes."""

from __future__ import annotations

import pytest
import torch

from spokenword.models import FrameRNN, ResNetSmall


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("factory", [ResNetSmall, FrameRNN], ids=["resnet", "rnn"])
def test_default_models_fit_the_100k_budget_and_map_images_to_logits(factory):
    model = factory(num_classes=10)
    assert params(model) <= 100_000
    x = torch.randn(3, 1, 64, 64)
    assert model(x).shape == (3, 10)
    assert model.forward_features(x).shape[0] == 3


def test_num_classes_sets_the_head():
    assert ResNetSmall(num_classes=7)(torch.randn(2, 1, 64, 64)).shape == (2, 7)
    assert FrameRNN(num_classes=35, n_features=40, cell="lstm")(torch.randn(2, 1, 40, 30)).shape == (2, 35)


def test_resnet_accepts_any_frame_count():
    model = ResNetSmall().eval()
    assert model(torch.randn(1, 1, 64, 101)).shape == (1, 10)


def test_models_learn_a_toy_problem():
    torch.manual_seed(0)
    x = torch.randn(32, 1, 16, 12)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    for model in (ResNetSmall(num_classes=2, channels=(8, 16), blocks_per_stage=1, dropout=0.0),
                  FrameRNN(num_classes=2, n_features=16, hidden=16, layers=1, dropout=0.0)):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        first = None
        for _ in range(30):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            first = first if first is not None else loss.item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert float(loss) < first
