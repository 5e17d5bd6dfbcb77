"""MixStyle: the identity in eval and when off, mixes instance statistics in training, and leaves the
CNN's parameters and checkpoint keys unchanged."""

from __future__ import annotations

import pytest
import torch

from spokenword.models import MixStyle, SpectrogramCNN


def maps(n: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    scale = torch.arange(1.0, n + 1).view(n, 1, 1, 1)  # each clip its own statistics
    return torch.randn(n, 3, 6, 7, generator=g) * scale + 10.0 * scale


def test_identity_in_eval_and_at_p_zero():
    x = maps()
    assert torch.equal(MixStyle(p=1.0).eval()(x), x)
    assert torch.equal(MixStyle(p=0.0).train()(x), x)
    assert torch.equal(MixStyle(p=1.0).train()(x[:1]), x[:1])  # nothing to mix with


def test_training_mixes_each_clips_statistics_with_another_clips():
    torch.manual_seed(3)
    x = maps()
    out = MixStyle(p=1.0, alpha=1.0).train()(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    mu_in, mu_out = x.mean(dim=(2, 3)), out.mean(dim=(2, 3))
    assert not torch.allclose(mu_in, mu_out)
    # the new means are convex mixes of the batch's means: within their range
    assert bool((mu_out >= mu_in.min() - 1e-3).all() and (mu_out <= mu_in.max() + 1e-3).all())
    # normalised content is kept: each channel of a clip is an affine map of its own channel
    for c in range(x.shape[1]):
        assert torch.corrcoef(torch.stack([x[0, c].flatten(), out[0, c].flatten()]))[0, 1] > 0.999


def test_seeded_and_bf16_safe():
    x = maps()
    torch.manual_seed(5)
    a = MixStyle(p=1.0).train()(x)
    torch.manual_seed(5)
    b = MixStyle(p=1.0).train()(x)
    assert torch.equal(a, b)
    assert MixStyle(p=1.0).train()(x.bfloat16()).dtype == torch.bfloat16


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="probability"):
        MixStyle(p=1.5)
    with pytest.raises(ValueError, match="alpha"):
        MixStyle(alpha=0.0)
    with pytest.raises(ValueError, match="mixstyle_blocks"):
        SpectrogramCNN(mixstyle_p=0.5, mixstyle_blocks=5)


def test_cnn_with_mixstyle_has_the_same_parameters_and_eval_outputs():
    plain = SpectrogramCNN(batch_norm=True).eval()
    mixed = SpectrogramCNN(batch_norm=True, mixstyle_p=0.5)
    assert mixed.state_dict().keys() == plain.state_dict().keys()  # checkpoints interchangeable
    mixed.load_state_dict(plain.state_dict())
    mixed.eval()
    x = torch.randn(4, 1, 64, 64)
    torch.testing.assert_close(mixed(x), plain(x))
    assert SpectrogramCNN().mixstyle is None  # the reference is untouched


def test_cnn_mixstyle_changes_training_outputs_after_the_chosen_blocks():
    torch.manual_seed(0)
    model = SpectrogramCNN(mixstyle_p=1.0, mixstyle_blocks=1).train()
    calls = []
    model.mixstyle.register_forward_hook(lambda module, args, out: calls.append(args[0].shape))
    model(torch.randn(4, 1, 64, 64))
    assert calls == [torch.Size([4, 16, 32, 32])]  # after block 1 only
