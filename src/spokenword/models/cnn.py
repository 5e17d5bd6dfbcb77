"""The reference network: four ``Conv2d -> MaxPool2d(2) -> ReLU`` blocks and one linear layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GrowingConv2d(nn.Conv2d):
    """A ``Conv2d`` whose zero padding may exceed half its kernel (the map grows): the same parameters,
    output and state dict as ``nn.Conv2d``.

    In training, padding beyond half the kernel is added as explicit zeros before a convolution padded
    by half the kernel: oneDNN's bf16 weight gradient is several times slower for the wider padding (the
    default CNN's 3x3 convolutions padded by 2 train about 12 ms faster a batch of 128; docs/training.md,
    "Speed on CPU"). In eval mode, and so in every export, it is the one convolution.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W)`` to ``(N, C_out, H', W')``, as ``nn.Conv2d``."""
        half = [k // 2 for k in self.kernel_size]
        extra = [max(p - h, 0) for p, h in zip(self.padding, half)] if not isinstance(self.padding, str) else [0]
        if not self.training or self.padding_mode != "zeros" or not any(extra):
            return super().forward(x)
        padded = F.pad(x, (extra[1], extra[1], extra[0], extra[0]))  # F.pad lists the last axis (width) first
        inner = tuple(p - e for p, e in zip(self.padding, extra))
        return F.conv2d(padded, self.weight, self.bias, self.stride, inner, self.dilation, self.groups)


class SpectrogramCNN(nn.Module):
    """The reference 4-block CNN (84,682 parameters for a 64x64 input and 10 classes).

    Blocks: Conv(1->16, k5, p2), Conv(16->32, k5, p2), Conv(32->64, k3, p2), Conv(64->64, k3, p2),
    each followed by 2x2 max pooling and ReLU; then optional dropout and ``Linear(1600 -> classes)``. Pooling
    before ReLU computes exactly what the reference's ReLU-then-pooling does (the two commute) on a quarter
    of the values, and an int8 export keeps the first pooling in float, which ONNX Runtime runs far faster
    than its uint8 pooling (python -m benchmarks.speed classify).
    The padding of 2 on the 3x3 convolutions grows the map by 2, so a 64x64 image ends as 64x5x5.

    Args:
        num_classes: number of output logits.
        in_channels: channels of the input image.
        input_size: ``(height, width)`` of the input image (feature rows, frames).
        dropout: dropout probability before the classifier (the reference's regulariser; 0 = off).
        batch_norm: batch normalisation after each convolution (+352 parameters; not in the
            reference). It makes the network much easier to train under heavy augmentation.
        channels: output channels of the four convolutions (the reference's ``(16, 32, 64, 64)``);
            wider late blocks add capacity where the map is small (9x9 and 11x11 for 64x64 input), so
            they cost parameters more than compute. The head's input is ``channels[3] x 5 x 5``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: tuple[int, int] = (64, 64),
        dropout: float = 0.0,
        batch_norm: bool = False,
        channels: tuple[int, int, int, int] = (16, 32, 64, 64),
    ):
        super().__init__()
        if len(channels) != 4 or min(channels) < 1:
            raise ValueError(f"channels must be four positive widths, got {channels}")
        c1, c2, c3, c4 = channels
        specs = [(in_channels, c1, 5, 2), (c1, c2, 5, 2), (c2, c3, 3, 2), (c3, c4, 3, 2)]
        layers: list[nn.Module] = []
        for cin, cout, kernel, pad in specs:
            layers += [GrowingConv2d(cin, cout, kernel, padding=pad)]
            layers += [nn.BatchNorm2d(cout)] if batch_norm else []
            layers += [nn.MaxPool2d(2), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, in_channels, *input_size)).numel()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(flat, num_classes)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images to ``(N, channels[3] * 25)`` flattened features (1600 for the
        reference widths and 64x64 input)."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images to ``(N, num_classes)`` logits: the features, dropout, then the head."""
        return self.head(self.dropout(self.forward_features(x)))
