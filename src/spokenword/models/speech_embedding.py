"""A pretrained speech-embedding backbone with a small trainable head.

Five training voices are too few to generalise from (docs/experiments.md: every recipe on the
reference CNN stopped near 94 % leave-one-speaker-out). :class:`SpeechEmbeddingCNN` reads the same
kind of feature image (a log-mel spectrogram) through a convolutional network that was trained on
speech by many speakers, Google's ``speech_embedding`` model (Lin et al., "Training keyword spotters
with limited and synthesized speech data", ICASSP 2020; Apache-2.0), and trains only a small head on
its output: transfer learning, as an image classifier starts from an ImageNet backbone.

The backbone's weights come from the ``openwakeword`` 0.4.0 wheel on PyPI (Apache-2.0), which ships
them as ``openwakeword/resources/models/embedding_model.onnx``; they are read with ``onnx`` into the
plain PyTorch layers of :class:`SpeechEmbedding` (the package itself is never imported). The trained
model's checkpoint carries all weights, so inference, exports and serving need nothing else.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import torch
from torch import nn
import torch.nn.functional as F

#: the backbone's input: 32 log-mel bands, 60-3800 Hz, 10 ms frames; a window of this many frames
#: (0.76 s) gives one embedding, and the window moves by ``EMBEDDING_STRIDE`` frames (80 ms)
EMBEDDING_BANDS = 32
EMBEDDING_WINDOW = 76
EMBEDDING_STRIDE = 8
EMBEDDING_SIZE = 96

_WHEEL = "openwakeword==0.4.0"
_ONNX_FILE = ("resources", "models", "embedding_model.onnx")


class WeightsUnavailable(RuntimeError):
    """The pretrained weights cannot be found; the message says how to install them."""


def openwakeword_embedding_path() -> Path:
    """Where the installed ``openwakeword`` package keeps ``embedding_model.onnx`` (the package is
    located, not imported)."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(
            f"the pretrained speech embedding needs the {_WHEEL} package (it carries the weights): "
            f"pip install '{_WHEEL}' (or pip install -e '.[dev]')")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_ONNX_FILE)
    if not path.is_file():
        raise WeightsUnavailable(f"{path} is missing: the pretrained weights ship in {_WHEEL} "
                                 f"(later versions download them at run time); pip install '{_WHEEL}'")
    return path


# (out_channels, kernel (time, bands)) of the 19 convolutions after the first, and where the five
# max-pools sit (after these conv indices, with these (time, bands) sizes).
_CONVS = [(24, (1, 3)), (24, (3, 1)),
          (48, (1, 3)), (48, (3, 1)), (48, (1, 3)), (48, (3, 1)),
          (72, (1, 3)), (72, (3, 1)), (72, (1, 3)), (72, (3, 1)),
          (96, (1, 3)), (96, (3, 1)), (96, (1, 3)), (96, (3, 1)),
          (96, (1, 3)), (96, (3, 1)), (96, (1, 3)), (96, (3, 1))]
_POOLS = {1: (2, 2), 5: (1, 2), 9: (2, 2), 13: (1, 2), 17: (2, 2)}


class SpeechEmbedding(nn.Module):
    """Google's ``speech_embedding`` network in PyTorch, randomly initialised (see
    :meth:`from_openwakeword` for the pretrained weights). 328,217 parameters.

    Fully convolutional in time: a ``(N, 1, T, 32)`` log-mel input (``T >= 76`` frames of 10 ms,
    32 bands 60-3800 Hz, values ``dB / 10 + 2`` as the original's front end makes them) gives
    ``(N, 96, 1 + (T - 76) // 8)`` embeddings, one per 76-frame window every 8 frames: the same
    values as running it on each window. Every activation is a leaky ReLU (slope 0.2) floored at
    -0.4; the first convolution is followed by ReLU and batch normalisation.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(1, 24, 3, bias=False)
        self.bn0 = nn.BatchNorm2d(24, eps=1e-3)
        convs, cin = [], 24
        for cout, kernel in _CONVS:
            convs.append(nn.Conv2d(cin, cout, kernel, padding=(0, kernel[1] // 2)))
            cin = cout
        self.convs = nn.ModuleList(convs)
        self.last = nn.Conv2d(96, EMBEDDING_SIZE, (3, 1), bias=False)

    @staticmethod
    def _act(x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, 0.2).clamp_min(-0.4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, T, 32)`` to ``(N, 96, 1 + (T - 76) // 8)``."""
        x = F.pad(x, (1, 1))  # one zero band each side
        x = self._act(self.bn0(torch.relu(self.conv0(x))))
        for i, conv in enumerate(self.convs):
            x = self._act(conv(x))
            if i in _POOLS:
                x = F.max_pool2d(x, _POOLS[i])
        return self.last(x).squeeze(-1)

    @classmethod
    def from_openwakeword(cls, path: str | Path | None = None) -> "SpeechEmbedding":
        """The pretrained network, its weights read from ``embedding_model.onnx`` (default: the
        installed ``openwakeword`` 0.4.0 package's copy)."""
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(path or openwakeword_embedding_path()))
        values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        nodes = model.graph.node
        convs = [[values[i] for i in n.input[1:]] for n in nodes if n.op_type == "Conv"]
        norm = next(n for n in nodes if n.op_type == "BatchNormalization")
        scale, bias, mean, var = (values[i] for i in norm.input[1:])
        net = cls()
        layers = [net.conv0, *net.convs, net.last]
        if len(convs) != len(layers):
            raise ValueError(f"{path}: expected {len(layers)} convolutions, found {len(convs)}")
        with torch.no_grad():
            for layer, params in zip(layers, convs):
                layer.weight.copy_(torch.from_numpy(params[0].copy()))
                if layer.bias is not None:
                    layer.bias.copy_(torch.from_numpy(params[1].copy()))
            for name, value in (("weight", scale), ("bias", bias), ("running_mean", mean), ("running_var", var)):
                getattr(net.bn0, name).copy_(torch.from_numpy(value.copy()))
        return net


class SpeechEmbeddingCNN(nn.Module):
    """The pretrained :class:`SpeechEmbedding` backbone (frozen by default) and a small head.

    Input: the feature image ``(N, 1, 32, W)`` of 32 log-mel bands (60-3800 Hz, the backbone's) by
    ``W >= 76`` frames of 10 ms, as the task hands it over: normalised by the training set's scalar
    mean and std. ``input_mean`` and ``input_std`` put it back on the scale the backbone was trained
    on (its front end's ``dB / 10 + 2``); the defaults are that front end's statistics on FSDD's
    recordings (``python -m benchmarks.experiments.embedding_input``).

    The backbone's embeddings (one per 0.76 s window every 80 ms) are pooled over time by mean and
    max (``2 x 96`` features: position-independent, so a word anywhere in the clip reads the same),
    then ``BatchNorm1d(192)`` (the embeddings' scale is the backbone's, up to ~50) ``-> Dropout ->
    Linear(192, hidden) -> ReLU -> Dropout -> Linear(hidden, num_classes)``.

    Args:
        num_classes: number of output logits.
        input_size: ``(bands, frames)`` of the feature image; bands must be 32 and frames >= 76.
        hidden: width of the head's hidden layer.
        dropout: dropout before each of the head's two layers.
        pretrained: ``"openwakeword"`` loads the pretrained weights (from the ``openwakeword``
            0.4.0 package), ``"none"`` leaves the backbone random (for tests and ablations). A
            checkpoint's weights replace either.
        freeze: keep the backbone's weights fixed, its batch norm included (the pretrained
            statistics, in training too), while the head trains; ``False`` fine-tunes it too.
        input_mean: mean of the backbone's expected input (its front end's values on speech).
        input_std: std of the backbone's expected input.
    """

    def __init__(
        self,
        num_classes: int = 10,
        input_size: tuple[int, int] = (EMBEDDING_BANDS, 128),
        hidden: int = 128,
        dropout: float = 0.3,
        pretrained: Literal["openwakeword", "none"] = "openwakeword",
        freeze: bool = True,
        input_mean: float = 8.05,
        input_std: float = 1.72,
    ):
        super().__init__()
        bands, frames = input_size
        if bands != EMBEDDING_BANDS or frames < EMBEDDING_WINDOW:
            raise ValueError(f"the speech embedding reads {EMBEDDING_BANDS} mel bands by at least "
                             f"{EMBEDDING_WINDOW} frames; got input_size={tuple(input_size)}")
        if pretrained not in ("openwakeword", "none"):
            raise ValueError(f"pretrained must be 'openwakeword' or 'none', got {pretrained!r}")
        self.backbone = SpeechEmbedding.from_openwakeword() if pretrained == "openwakeword" else SpeechEmbedding()
        self.freeze = freeze
        if freeze:
            self.backbone.requires_grad_(False)
        self.input_mean = input_mean
        self.input_std = input_std
        self.head = nn.Sequential(nn.BatchNorm1d(2 * EMBEDDING_SIZE), nn.Dropout(dropout),
                                  nn.Linear(2 * EMBEDDING_SIZE, hidden), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        self.num_classes = num_classes

    def train(self, mode: bool = True) -> "SpeechEmbeddingCNN":
        super().train(mode)
        if self.freeze:
            self.backbone.eval()  # a frozen backbone keeps its batch-norm statistics
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 32, W)`` feature images to ``(N, 192)``: the mean and max over time of the
        backbone's embeddings."""
        if self.freeze:  # again here: Lightning sets each submodule's own mode back after validation
            self.backbone.eval()
        x = x * self.input_std + self.input_mean
        emb = self.backbone(x.transpose(-2, -1))  # (N, 96, windows)
        return torch.cat([emb.mean(dim=-1), emb.amax(dim=-1)], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 32, W)`` to logits ``(N, num_classes)``: the pooled features, then the head."""
        return self.head(self.forward_features(x))
