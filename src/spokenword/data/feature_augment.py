"""On-the-fly augmentation of cached feature batches (training split only).

Features are cached once per run, so every augmentation here works on feature images
``(N, 1, H, W)`` (H = frequency bins, W = frames), never on waveforms: it costs a few
milliseconds per batch. :class:`FeatureAugment` is configured from YAML through the
task's ``augment`` argument and applied in ``training_step`` only; inference never sees it.

* frequency warp: each clip's frequency axis is stretched by a random factor in
  ``[1 - freq_warp, 1 + freq_warp]`` (a cheap vocal-tract-length perturbation: it simulates
  other speakers' formant positions);
* time shift: each clip moves by up to ``time_shift`` frames (edges repeat the border frame);
* SpecAugment masks: ``freq_masks`` bands of up to ``freq_mask_bins`` bins and ``time_masks``
  spans of up to ``time_mask_frames`` frames set to the clip's mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def _resample(x: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Bilinear resampling of ``x`` ``(N, C, H, W)`` at normalised source positions in [-1, 1]:
    ``xs`` (frames) and ``ys`` (bins) broadcast to ``(N, H, W)``; border values repeat past the edges."""
    grid = torch.stack(torch.broadcast_tensors(xs, ys), dim=-1)  # (N, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def warp_frequency(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Stretch each clip's frequency axis (H, axis -2) by ``factors`` (N,).

    Output bin ``i`` reads input bin ``i / factor`` (linear interpolation, top bin repeated past
    the edge), so a factor > 1 moves formants up. Shape unchanged ``(N, C, H, W)``.
    """
    n, _, h, w = x.shape
    rows = torch.arange(h, dtype=x.dtype, device=x.device)
    source = rows.unsqueeze(0) / factors.to(x.dtype).unsqueeze(1)  # (N, H) source bin per output bin
    ys = 2.0 * source / max(h - 1, 1) - 1.0
    xs = torch.linspace(-1.0, 1.0, w, dtype=x.dtype, device=x.device)
    return _resample(x, xs.view(1, 1, w), ys.view(n, h, 1))


def shift_time(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Move each clip by ``shifts`` (N,) frames along the last axis (positive = later); the
    border frames fill the gap. Shape unchanged."""
    w = x.shape[-1]
    frames = torch.arange(w, device=x.device).unsqueeze(0) - shifts.long().unsqueeze(1)  # (N, W)
    index = frames.clamp(0, w - 1)
    index = index.view(x.shape[0], 1, 1, w).expand_as(x)
    return torch.gather(x, -1, index)


def mask_axis(x: torch.Tensor, axis: int, max_width: int, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """SpecAugment: ``count`` random spans of width ``0..max_width`` along ``axis`` (-2 frequency,
    -1 time) set to each clip's mean. Shape unchanged; returns a new tensor."""
    if count <= 0 or max_width <= 0:
        return x
    n, size = x.shape[0], x.shape[axis]
    fill = x.mean(dim=(-2, -1), keepdim=True)
    positions = torch.arange(size, device=x.device).unsqueeze(0)
    keep = torch.ones(n, size, dtype=torch.bool, device=x.device)
    for _ in range(count):
        width = torch.randint(0, max_width + 1, (n, 1), generator=generator, device=x.device)
        start = (torch.rand(n, 1, generator=generator, device=x.device) * (size - width + 1)).long()
        keep &= ~((positions >= start) & (positions < start + width))
    shape = (n, 1, size, 1) if axis in (-2, 2) else (n, 1, 1, size)
    return torch.where(keep.view(shape), x, fill)


class FeatureAugment(nn.Module):
    """Random perturbations of a training batch of feature images ``(N, C, H, W)``.

    Args:
        freq_warp: maximum relative frequency-axis stretch (0.18 = factors in [0.82, 1.18]).
        time_shift: maximum shift in frames, either direction.
        freq_masks: number of frequency masks per clip.
        freq_mask_bins: maximum width of a frequency mask (bins).
        time_masks: number of time masks per clip.
        time_mask_frames: maximum width of a time mask (frames).
        p: probability that a clip is augmented at all (per clip).
    """

    def __init__(
        self,
        freq_warp: float = 0.0,
        time_shift: int = 0,
        freq_masks: int = 0,
        freq_mask_bins: int = 10,
        time_masks: int = 0,
        time_mask_frames: int = 10,
        p: float = 1.0,
    ):
        super().__init__()
        if not 0.0 <= freq_warp < 1.0:
            raise ValueError(f"freq_warp must be in [0, 1), got {freq_warp}")
        self.freq_warp = freq_warp
        self.time_shift = time_shift
        self.freq_masks = freq_masks
        self.freq_mask_bins = freq_mask_bins
        self.time_masks = time_masks
        self.time_mask_frames = time_mask_frames
        self.p = p

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augmented copy of ``x`` ``(N, C, H, W)`` (same shape and dtype). ``generator`` makes
        it reproducible; without it the global RNG (seeded by ``seed_everything``) is used."""
        if x.ndim != 4:
            raise ValueError(f"FeatureAugment expects (N, C, H, W), got shape {tuple(x.shape)}")
        original = x
        n, device = x.shape[0], x.device
        if self.freq_warp > 0:
            x = warp_frequency(x, _uniform(n, 1.0 - self.freq_warp, 1.0 + self.freq_warp, generator, device))
        if self.time_shift > 0:
            x = shift_time(x, torch.randint(-self.time_shift, self.time_shift + 1, (n,), generator=generator, device=device))
        x = mask_axis(x, -2, self.freq_mask_bins, self.freq_masks, generator)
        x = mask_axis(x, -1, self.time_mask_frames, self.time_masks, generator)
        if self.p < 1.0:
            chosen = (torch.rand(n, generator=generator, device=device) < self.p).view(n, 1, 1, 1)
            x = torch.where(chosen, x, original)
        return x

