"""Relaxed instance frequency-wise normalisation (RFN; Kim et al., "Domain Generalization with Relaxed
Instance Frequency-wise Normalization for Multi-device Acoustic Scene Classification", Interspeech 2022).

A layer for feature maps ``(N, C, F, T)`` (channels x frequency bins x frames after a convolution
block). Instance frequency-wise normalisation (IFN) gives each clip's every frequency bin mean 0 and
variance 1 over channels and frames: what a recording device, a room or a voice adds as a fixed
colouring of the spectrum is a per-bin offset and scale of the maps, and IFN removes it. IFN alone also
removes useful information (how loud one band is against another), so RFN mixes it with layer
normalisation (the whole map of a clip to mean 0, variance 1), which keeps the bins' relative levels::

    RFN(x) = lam * IFN(x) + (1 - lam) * LN(x)

It has no parameters and behaves the same in training and in ``eval()``: exports and inference
apply it as part of the network.
"""

from __future__ import annotations

import torch
from torch import nn


class RelaxedFreqNorm(nn.Module):
    """``lam * IFN(x) + (1 - lam) * LN(x)`` over maps ``(N, C, F, T)``, without learned parameters.

    Args:
        lam: weight of the instance frequency-wise part in ``[0, 1]`` (the paper's 0.5; 1 = IFN alone,
            0 = layer normalisation alone).
        eps: added to each variance before the square root.

    Shape: ``(N, C, F, T)`` in and out, frequency on dimension 2 and frames on dimension 3 (the
    layout of :class:`spokenword.models.SpectrogramCNN`'s maps). Statistics are computed in float32,
    also under bf16 autocast, and the result is cast back to the input's dtype.
    """

    def __init__(self, lam: float = 0.5, eps: float = 1e-5):
        super().__init__()
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"RelaxedFreqNorm lam must be in [0, 1], got {lam}")
        self.lam = lam
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        ifn, ln = self._standardise(xf, (1, 3)), self._standardise(xf, (1, 2, 3))
        return (self.lam * ifn + (1.0 - self.lam) * ln).to(x.dtype)

    def _standardise(self, x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        """``x`` to mean 0 and (biased) variance 1 over ``dims``: ``(1, 3)`` is IFN (per clip and
        frequency bin), ``(1, 2, 3)`` layer normalisation (per clip)."""
        mean = x.mean(dim=dims, keepdim=True)
        return (x - mean) / (x.var(dim=dims, keepdim=True, unbiased=False) + self.eps).sqrt()

    def extra_repr(self) -> str:
        return f"lam={self.lam}"
