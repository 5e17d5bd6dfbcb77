"""MixStyle (Zhou et al., "Domain Generalization with MixStyle", ICLR 2021).

A training-only layer for feature maps ``(N, C, H, W)``: each clip's per-channel mean and standard
deviation over ``(H, W)`` (frequency bins x frames after a convolution block) carry its "style",
for speech largely the voice and the microphone. MixStyle normalises each clip's maps and gives
them a convex mix of its own statistics and those of another clip of the batch, so the network
sees voices in between the training voices. It has no parameters and is the identity in
``eval()``: inference, exports and checkpoints are the same as without it.
"""

from __future__ import annotations

import torch
from torch import nn


class MixStyle(nn.Module):
    """Mix instance-level feature statistics between the clips of a training batch.

    Args:
        p: probability that a training batch is mixed at all (0 = never).
        alpha: the mixing weight is ``Beta(alpha, alpha)`` per clip (0.1: most weights near 0 or 1).
        eps: added to the variance before the square root.

    Shape: ``(N, C, H, W)`` in and out. Randomness comes from torch's global generator (seeded by
    ``seed_everything``); the statistics are computed in float32 (also under bf16 autocast) and
    detached, as in the paper.
    """

    def __init__(self, p: float = 0.5, alpha: float = 0.1, eps: float = 1e-6):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"MixStyle p must be a probability in [0, 1], got {p}")
        if alpha <= 0:
            raise ValueError(f"MixStyle alpha must be > 0, got {alpha}")
        self.p = p
        self.alpha = alpha
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.shape[0] < 2:
            return x
        if float(torch.rand(())) >= self.p:
            return x
        n = x.shape[0]
        xf = x.float()
        mu = xf.mean(dim=(2, 3), keepdim=True).detach()
        sigma = (xf.var(dim=(2, 3), keepdim=True) + self.eps).sqrt().detach()
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((n, 1, 1, 1)).to(x.device)
        order = torch.randperm(n, device=x.device)
        mu_mix = lam * mu + (1.0 - lam) * mu[order]
        sigma_mix = lam * sigma + (1.0 - lam) * sigma[order]
        return (((xf - mu) / sigma) * sigma_mix + mu_mix).to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}, alpha={self.alpha}"
