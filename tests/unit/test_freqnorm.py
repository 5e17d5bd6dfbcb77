"""RelaxedFreqNorm: its two parts normalise what they should, a fixed per-bin colouring is removed, it
behaves the same in training and eval, and SpectrogramCNN applies it after the chosen blocks only."""

from __future__ import annotations

import pytest
import torch

from spokenword.models import RelaxedFreqNorm, SpectrogramCNN


def _maps(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, 4, 8, 10, generator=g) * 3.0 + 2.0  # (N, C, F, T)


def test_instance_frequency_part_gives_each_bin_mean_zero_and_unit_variance():
    out = RelaxedFreqNorm(lam=1.0)(_maps())
    torch.testing.assert_close(out.mean(dim=(1, 3)), torch.zeros(3, 8), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(dim=(1, 3), unbiased=False), torch.ones(3, 8), atol=1e-3, rtol=0)


def test_layer_part_normalises_each_clip_as_a_whole_and_keeps_bin_levels():
    x = _maps()
    x[:, :, 0] += 5.0  # one loud band
    out = RelaxedFreqNorm(lam=0.0)(x)
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(dim=(1, 2, 3), unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    assert bool((out[:, :, 0].mean(dim=(1, 2)) > out[:, :, 1:].mean(dim=(1, 2, 3))).all())  # still the loud band


def test_a_fixed_colouring_of_each_bin_is_removed_by_ifn_and_halved_in_rfn():
    x = _maps()
    scale = torch.linspace(0.5, 4.0, 8).view(1, 1, 8, 1)
    offset = torch.linspace(-3.0, 6.0, 8).view(1, 1, 8, 1)
    coloured = x * scale + offset
    ifn = RelaxedFreqNorm(lam=1.0)
    torch.testing.assert_close(ifn(coloured), ifn(x), atol=1e-4, rtol=1e-4)
    rfn = RelaxedFreqNorm(lam=0.5)
    expected = 0.5 * ifn(x) + 0.5 * RelaxedFreqNorm(lam=0.0)(coloured)
    torch.testing.assert_close(rfn(coloured), expected, atol=1e-4, rtol=1e-4)


def test_same_in_training_and_eval_and_keeps_the_dtype():
    x = _maps()
    layer = RelaxedFreqNorm()
    torch.testing.assert_close(layer.train()(x), layer.eval()(x))
    assert layer(x.bfloat16()).dtype == torch.bfloat16
    assert not list(layer.parameters())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="lam"):
        RelaxedFreqNorm(lam=1.5)
    with pytest.raises(ValueError, match="freq_norm_blocks"):
        SpectrogramCNN(freq_norm=0.5, freq_norm_blocks=0)


def test_cnn_applies_it_after_the_chosen_blocks_and_keeps_the_reference_parameters():
    plain = SpectrogramCNN(batch_norm=True)
    normed = SpectrogramCNN(batch_norm=True, freq_norm=0.5, freq_norm_blocks=2)
    assert normed.state_dict().keys() == plain.state_dict().keys()
    assert SpectrogramCNN().freq_norm is None  # the reference is untouched
    calls = []
    normed.freq_norm.register_forward_hook(lambda module, args, out: calls.append(args[0].shape))
    normed.eval()(torch.randn(2, 1, 64, 64))
    assert calls == [torch.Size([2, 16, 32, 32]), torch.Size([2, 32, 16, 16])]


def test_cnn_output_changes_with_it_and_traces_for_export():
    torch.manual_seed(0)
    plain = SpectrogramCNN(batch_norm=True).eval()
    normed = SpectrogramCNN(batch_norm=True, freq_norm=0.5).eval()
    normed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 1, 64, 64)
    assert not torch.allclose(normed(x), plain(x))
    traced = torch.jit.trace(normed, x)  # what the TorchScript export does with the network
    torch.testing.assert_close(traced(x), normed(x))
