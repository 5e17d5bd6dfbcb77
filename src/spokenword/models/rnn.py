"""A recurrent network over feature frames (the reference's named alternative)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class FrameRNN(nn.Module):
    """Bidirectional GRU or LSTM over the frames of a feature image, mean- and max-pooled over
    time, then a linear head (76,938 parameters with the defaults: 64 features, 10 classes).

    The image ``(N, 1, H, W)`` is read as ``W`` frames of ``H`` features (log-mel bands or MFCCs).

    Args:
        num_classes: number of output logits.
        n_features: features per frame (the image height, ``n_bins``).
        hidden: hidden units per direction.
        layers: stacked recurrent layers.
        cell: ``gru`` or ``lstm``.
        dropout: dropout between layers and before the head.
    """

    def __init__(
        self,
        num_classes: int = 10,
        n_features: int = 64,
        hidden: int = 48,
        layers: int = 2,
        cell: Literal["gru", "lstm"] = "gru",
        dropout: float = 0.2,
    ):
        super().__init__()
        kind = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.norm = nn.LayerNorm(n_features)
        self.rnn = kind(n_features, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                        dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * hidden, num_classes)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` to pooled features ``(N, 4 * hidden)`` (mean and max over frames)."""
        frames = self.norm(x.flatten(1, 2).transpose(1, 2))  # (N, W, H)
        out, _ = self.rnn(frames)  # (N, W, 2 * hidden)
        return torch.cat([out.mean(dim=1), out.amax(dim=1)], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` to logits ``(N, num_classes)``."""
        return self.forward_head(self.forward_features(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled features (:meth:`forward_features`) to logits ``(N, num_classes)``: dropout, then the head."""
        return self.head(self.dropout(features))
