"""Speaker-adversarial training: a speaker classifier behind a gradient reversal layer.

Domain-adversarial training (Ganin & Lempitsky, ICML 2015, "Unsupervised Domain Adaptation by
Backpropagation"), with the training speakers as the domains, as in speaker-invariant training for
speech recognition (Meng et al., ICASSP 2018): a small classifier learns to tell the training
speakers apart from the network's pooled features, and the reversed gradient pushes those
features to carry as little about the speaker as the word allows. Used in training only; the
adversary is not part of the network that classifies, exports or serves.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; the gradient multiplied by ``-scale`` backward. Any shape."""
    return _ReverseGradient.apply(x, scale)


def dann_ramp(progress: float) -> float:
    """DANN's weight schedule ``2 / (1 + exp(-10 p)) - 1`` for training progress ``p`` in [0, 1]:
    0 at the start (the adversary's early, random gradients do not disturb the features), 0.99 at
    ``p = 0.5``, ~1 at the end."""
    p = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


class SpeakerAdversary(nn.Module):
    """``(N, in_features)`` pooled features to ``(N, num_speakers)`` speaker logits, through a
    gradient reversal of strength ``scale`` (given per call, so it can follow a schedule).

    Args:
        in_features: size of the network's pooled features (``forward_features``).
        num_speakers: training speakers (at least 2).
        hidden: width of the classifier's hidden layer.
    """

    def __init__(self, in_features: int, num_speakers: int, hidden: int = 64):
        super().__init__()
        if num_speakers < 2:
            raise ValueError(f"speaker-adversarial training needs at least 2 training speakers, got {num_speakers}")
        self.classifier = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_speakers))

    def forward(self, features: torch.Tensor, scale: float) -> torch.Tensor:
        return self.classifier(reverse_gradient(features, scale))
