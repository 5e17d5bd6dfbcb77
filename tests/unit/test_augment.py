"""Feature-batch augmentations: shapes, determinism, that masks mask and warps warp."""

from __future__ import annotations

import pytest
import torch

from spokenword.data.feature_augment import FeatureAugment, mask_axis, shift_time, warp_frequency


def batch(n: int = 4, h: int = 16, w: int = 20) -> torch.Tensor:
    return torch.randn(n, 1, h, w, generator=torch.Generator().manual_seed(1))


def test_full_augment_keeps_shape_and_is_deterministic_with_a_seed():
    aug = FeatureAugment(freq_warp=0.2, time_shift=3, freq_masks=2, time_masks=2)
    x = batch()
    a = aug(x, generator=torch.Generator().manual_seed(7))
    b = aug(x, generator=torch.Generator().manual_seed(7))
    c = aug(x, generator=torch.Generator().manual_seed(8))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_defaults_are_the_identity():
    x = batch()
    assert torch.equal(FeatureAugment()(x), x)


def test_warp_by_one_is_identity_and_other_factors_move_energy():
    x = torch.zeros(2, 1, 32, 5)
    x[:, :, 10] = 1.0  # one bright band at bin 10
    same = warp_frequency(x, torch.ones(2))
    assert torch.allclose(same, x, atol=1e-5)
    up = warp_frequency(x, torch.tensor([1.5, 0.5]))
    assert up.shape == x.shape
    assert int(up[0, 0, :, 0].argmax()) == 15  # output bin i reads input bin i / 1.5
    assert int(up[1, 0, :, 0].argmax()) == 5


def test_time_shift_moves_frames_and_repeats_the_border():
    x = torch.arange(6.0).view(1, 1, 1, 6).repeat(2, 1, 2, 1)
    out = shift_time(x, torch.tensor([2, -1]))
    assert out[0, 0, 0].tolist() == [0, 0, 0, 1, 2, 3]
    assert out[1, 0, 0].tolist() == [1, 2, 3, 4, 5, 5]


@pytest.mark.parametrize("axis", [-2, -1])
def test_masks_set_whole_bands_or_frames_to_the_clip_mean(axis):
    x = torch.randn(8, 1, 12, 14, generator=torch.Generator().manual_seed(0)) + 5.0
    out = mask_axis(x, axis, max_width=6, count=1, generator=torch.Generator().manual_seed(3))
    mean = x.mean(dim=(-2, -1), keepdim=True).expand_as(x)
    changed = out != x
    assert changed.any()
    assert torch.allclose(out[changed], mean[changed])
    # a mask covers whole rows (frequency) or whole columns (time)
    reduce = -1 if axis == -2 else -2
    lines = changed.any(dim=reduce)
    assert torch.equal(lines, changed.all(dim=reduce))
    assert int(lines.sum(dim=-1).max()) <= 6


def test_p_zero_leaves_the_batch_alone():
    x = batch()
    assert torch.equal(FeatureAugment(freq_warp=0.3, freq_masks=2, p=0.0)(x), x)


def test_invalid_warp_is_rejected():
    with pytest.raises(ValueError, match="freq_warp"):
        FeatureAugment(freq_warp=1.5)
