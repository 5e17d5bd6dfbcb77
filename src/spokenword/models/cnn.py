"""The reference network: four ``Conv2d -> ReLU -> MaxPool2d(2)`` blocks and one linear layer."""

from __future__ import annotations

import torch
from torch import nn

from spokenword.models.freqnorm import RelaxedFreqNorm
from spokenword.models.mixstyle import MixStyle


class SpectrogramCNN(nn.Module):
    """The reference 4-block CNN (84,682 parameters for a 64x64 input and 10 classes).

    Blocks: Conv(1->16, k5, p2), Conv(16->32, k5, p2), Conv(32->64, k3, p2), Conv(64->64, k3, p2),
    each followed by ReLU and 2x2 max pooling; then optional dropout and ``Linear(1600 -> classes)``.
    The padding of 2 on the 3x3 convolutions grows the map by 2, so a 64x64 image ends as 64x5x5.

    Args:
        num_classes: number of output logits.
        in_channels: channels of the input image.
        input_size: ``(height, width)`` of the input image (feature rows, frames).
        dropout: dropout probability before the classifier (the reference's regulariser; 0 = off).
        batch_norm: batch normalisation after each convolution (+352 parameters; not in the
            reference). It makes the network much easier to train under heavy augmentation.
        mixstyle_p: probability that a training batch gets :class:`MixStyle` after each of the
            first ``mixstyle_blocks`` blocks (0 = off; no parameters, identity in ``eval()``).
        mixstyle_alpha: MixStyle's ``Beta(alpha, alpha)`` mixing weight.
        mixstyle_blocks: after how many of the first blocks MixStyle is applied (1-4).
        channels: output channels of the four convolutions (the reference's ``(16, 32, 64, 64)``);
            wider late blocks add capacity where the map is small (9x9 and 11x11 for 64x64 input), so
            they cost parameters more than compute. The head's input is ``channels[3] x 5 x 5``.
        freq_norm: weight ``lam`` of :class:`RelaxedFreqNorm` (relaxed instance frequency-wise
            normalisation) after each of the first ``freq_norm_blocks`` blocks (0 = off, the
            reference; the paper's value is 0.5). No parameters, active in training and inference.
        freq_norm_blocks: after how many of the first blocks it is applied (1-4).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: tuple[int, int] = (64, 64),
        dropout: float = 0.0,
        batch_norm: bool = False,
        mixstyle_p: float = 0.0,
        mixstyle_alpha: float = 0.1,
        mixstyle_blocks: int = 2,
        channels: tuple[int, int, int, int] = (16, 32, 64, 64),
        freq_norm: float = 0.0,
        freq_norm_blocks: int = 2,
    ):
        super().__init__()
        if len(channels) != 4 or min(channels) < 1:
            raise ValueError(f"channels must be four positive widths, got {channels}")
        c1, c2, c3, c4 = channels
        specs = [(in_channels, c1, 5, 2), (c1, c2, 5, 2), (c2, c3, 3, 2), (c3, c4, 3, 2)]
        layers: list[nn.Module] = []
        for cin, cout, kernel, pad in specs:
            layers += [nn.Conv2d(cin, cout, kernel, padding=pad)]
            layers += [nn.BatchNorm2d(cout)] if batch_norm else []
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        if not 1 <= mixstyle_blocks <= len(specs):
            raise ValueError(f"mixstyle_blocks must be in 1..{len(specs)}, got {mixstyle_blocks}")
        # Kept outside `features` so the layer indices, and so checkpoints, stay the reference's.
        self.mixstyle = MixStyle(mixstyle_p, mixstyle_alpha) if mixstyle_p > 0 else None
        self.mixstyle_blocks = mixstyle_blocks
        if not 1 <= freq_norm_blocks <= len(specs):
            raise ValueError(f"freq_norm_blocks must be in 1..{len(specs)}, got {freq_norm_blocks}")
        self.freq_norm = RelaxedFreqNorm(freq_norm) if freq_norm > 0 else None
        self.freq_norm_blocks = freq_norm_blocks
        with torch.no_grad():
            flat = self.features(torch.zeros(1, in_channels, *input_size)).numel()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(flat, num_classes)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images to ``(N, channels[3] * 25)`` flattened features (1600 for the
        reference widths and 64x64 input)."""
        if self.mixstyle is None and self.freq_norm is None:
            return self.features(x).flatten(1)
        blocks = 0
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):
                blocks += 1
                if self.freq_norm is not None and blocks <= self.freq_norm_blocks:
                    x = self.freq_norm(x)
                if self.mixstyle is not None and blocks <= self.mixstyle_blocks:
                    x = self.mixstyle(x)
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images to ``(N, num_classes)`` logits."""
        return self.forward_head(self.forward_features(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled features (:meth:`forward_features`) to logits ``(N, num_classes)``: dropout, then the head."""
        return self.head(self.dropout(features))
