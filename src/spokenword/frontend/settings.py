"""The feature settings record: how a waveform becomes the model's input image.

Torch-free, so that exported-model inference (:mod:`spokenword.inference.onnx`) and the host-side steps
(:mod:`spokenword.frontend.host`) read the same record that training stores in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Literal

#: silence trimming's noise-floor rule never cuts closer than this many dB below the loudest frame
#: (a tightly cut clip has no silence, so its quietest frame is speech, not noise)
FLOOR_RULE_RANGE_DB = 20.0

#: settings that older checkpoints and exports store (always ``None`` unless an experiment used them)
#: the last commit of this repository that holds the retired experiments' code (docs/experiments.md)
RETIRED_CODE = "689fd3f69f"
_RETIRED = {"cepstral_lifter": f"retrain or use the code of commit {RETIRED_CODE} (git checkout {RETIRED_CODE})"}


@dataclass(frozen=True)
class FeatureSettings:
    """How a waveform becomes a ``(1, n_bins, n_frames)`` image.

    Attributes:
        kind: ``"stft"`` (log-power STFT, the reference), ``"logmel"`` or ``"mfcc"``.
        n_fft: FFT size (samples).
        hop_length: STFT hop (samples). The reference: 256-point FFT with 16 samples of
            overlap, so a hop of 240.
        n_bins: image height: STFT bins are resized to it, mel bands / MFCC count equal it.
        n_frames: image width (frames).
        time_axis: ``"stretch"`` resizes the whole clip to ``n_frames`` columns (the reference),
            ``"fixed"`` keeps one frame per hop and centre-crops or zero-pads to ``n_frames``.
        f_min: lowest mel frequency (Hz).
        f_max: highest mel frequency (Hz); ``None`` means the Nyquist frequency.
        trim_db: drop leading/trailing frames quieter than this many dB below the loudest
            frame before extracting (``None``: no trimming).
        trim_floor_db: with ``trim_db``, a frame must also be this many dB above the recording's
            noise floor (its quietest frame) to be kept, within limits (see
            :func:`~spokenword.frontend.host.trim_silence`); ``None``: the peak rule alone.
        crop_at: with ``time_axis="fixed"``, which ``n_frames`` of a longer clip are kept:
            ``"centre"`` or ``"loudest"`` (the window with the most energy: robust to a word
            that is not in the middle of a long recording).
        peak_normalize: scale each waveform to a peak of 1 before extracting.
        top_db: dynamic range of the dB image: values more than this many dB below the clip's
            loudest bin are raised to that level (as librosa's ``power_to_db(top_db=...)``), so
            near-silent bins (e.g. the band above a resampler's cut-off) do not set the image's
            scale. ``None`` (the reference): no limit.
        band_mean: subtract each row's (band's) mean over the ``n_frames`` columns before
            ``utterance_norm`` (spectral mean normalisation: removes a fixed colouring of the
            spectrum by a microphone, a room or a voice).
        utterance_norm: per-clip scaling: ``"minmax"`` to [0, 1] (a greyscale image, as the
            reference rendered it), ``"standard"`` to mean 0 / std 1, or ``"none"``.
    """

    kind: Literal["stft", "logmel", "mfcc"] = "stft"
    n_fft: int = 256
    hop_length: int = 240
    n_bins: int = 64
    n_frames: int = 64
    time_axis: Literal["stretch", "fixed"] = "stretch"
    f_min: float = 0.0
    f_max: float | None = None
    trim_db: float | None = None
    trim_floor_db: float | None = None
    crop_at: Literal["centre", "loudest"] = "centre"
    peak_normalize: bool = False
    top_db: float | None = None
    band_mean: bool = False
    utterance_norm: Literal["minmax", "standard", "none"] = "minmax"

    def __post_init__(self) -> None:
        if self.n_fft < 8 or self.hop_length < 1 or self.n_bins < 1 or self.n_frames < 1:
            raise ValueError(f"feature sizes must be positive (n_fft >= 8): {self}")
        if self.crop_at not in ("centre", "loudest"):
            raise ValueError(f"crop_at must be 'centre' or 'loudest', got {self.crop_at!r}")
        if self.kind == "stft" and self.n_bins > self.n_fft // 2 + 1 and self.time_axis == "fixed":
            raise ValueError("n_bins cannot exceed n_fft // 2 + 1 for kind='stft'")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one extracted feature: ``(channels, n_bins, n_frames)``."""
        return (1, self.n_bins, self.n_frames)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "FeatureSettings":
        """Settings from :meth:`to_dict`'s output, also as older checkpoints and exports stored it."""
        values = dict(values)
        for name, advice in _RETIRED.items():
            value = values.pop(name, None)
            if value is not None:  # stored as None by every model that did not use it
                raise ValueError(f"feature setting {name}={value!r}: {name} was retired; {advice}")
        return cls(**values)

    def digest(self, sample_rate: int) -> str:
        """A short hash of these settings at ``sample_rate`` (Hz), for cache keys."""
        text = json.dumps({"sample_rate": sample_rate, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def window_samples(settings: "FeatureSettings") -> int:
    """Samples spanned by ``n_frames`` STFT frames: ``(n_frames - 1) * hop_length + n_fft``."""
    return (settings.n_frames - 1) * settings.hop_length + settings.n_fft
