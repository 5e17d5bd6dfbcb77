"""A compact residual network for feature images (MatchboxNet / BC-ResNet style, < 100K parameters)."""

from __future__ import annotations

import torch
from torch import nn


class SeparableBlock(nn.Module):
    """Residual block: two depthwise-separable 3x3 convolutions with batch norm and ReLU.

    ``(N, c_in, H, W) -> (N, c_out, H / stride, W / stride)``; a 1x1 projection matches the
    shortcut when the channels or the stride change.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dropout: float = 0.0):
        super().__init__()

        def separable(a: int, b: int, s: int) -> list[nn.Module]:
            return [nn.Conv2d(a, a, 3, stride=s, padding=1, groups=a, bias=False), nn.Conv2d(a, b, 1, bias=False), nn.BatchNorm2d(b)]

        self.body = nn.Sequential(*separable(c_in, c_out, stride), nn.ReLU(inplace=True), nn.Dropout2d(dropout), *separable(c_out, c_out, 1))
        self.shortcut = (
            nn.Identity() if c_in == c_out and stride == 1
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNetSmall(nn.Module):
    """Stem conv, residual stages of separable blocks (stride 2 between stages), global average
    pooling and a linear head. With the defaults 84,170 parameters for 10 classes, whatever
    the input size (the pooling is global).

    Args:
        num_classes: number of output logits.
        in_channels: channels of the input image.
        channels: width of each stage.
        blocks_per_stage: residual blocks in each stage.
        dropout: dropout before the head (and spatial dropout inside blocks at half the rate).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        channels: tuple[int, ...] = (32, 48, 64, 96),
        blocks_per_stage: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels[0], 3, padding=1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        stages: list[nn.Module] = []
        c_prev = channels[0]
        for i, c in enumerate(channels):
            for j in range(blocks_per_stage):
                stages.append(SeparableBlock(c_prev, c, stride=2 if (i > 0 and j == 0) else 1, dropout=dropout / 2))
                c_prev = c
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(c_prev, num_classes)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` to pooled features ``(N, channels[-1])``."""
        return self.pool(self.stages(self.stem(x))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` to logits ``(N, num_classes)``."""
        return self.forward_head(self.forward_features(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled features (:meth:`forward_features`) to logits ``(N, num_classes)``: dropout, then the head."""
        return self.head(self.dropout(features))
