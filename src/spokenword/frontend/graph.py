"""The tensor pipeline of the front end: waveforms to the model's input images.

:class:`FrontEnd` is the one implementation, on padded batches and exportable to ONNX. Callers with
plain clips use :func:`extract` (one clip) or :func:`extract_batch` (many): the host steps
(:func:`spokenword.frontend.host.host_steps`: trimming, loudest window) per clip, then
:class:`FrontEnd`. The settings record :class:`~spokenword.frontend.settings.FeatureSettings` is
stored in every checkpoint, so inference uses the features the model was trained on.

Shapes: ``N`` clips, ``T`` samples (at ``sample_rate`` Hz), ``K = n_fft // 2 + 1`` STFT bins,
``F`` STFT frames.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spokenword.frontend.host import host_steps
from spokenword.frontend.settings import FeatureSettings

_EPS = 1e-10


def dft_tables(n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What :func:`stft_basis` is built from: ``(2 * n_fft,)`` float32, ``cos`` then ``-sin`` of
    ``2 pi m / n_fft`` for ``m < n_fft``, and the ``(n_fft,)`` periodic Hann window (float32; both
    computed in float64, then rounded)."""
    angle = torch.arange(n_fft, dtype=torch.float64) * (2.0 * math.pi / n_fft)
    table = torch.cat([torch.cos(angle), -torch.sin(angle)]).float()
    return table, torch.hann_window(n_fft, dtype=torch.float64).float()


def stft_basis(n_fft: int, table: torch.Tensor | None = None, window: torch.Tensor | None = None) -> torch.Tensor:
    """The windowed real DFT as a convolution kernel: ``(2K, 1, n_fft)`` float32, the ``K = n_fft // 2 + 1``
    rows ``window * cos`` then the ``K`` rows ``window * -sin``, gathered from :func:`dft_tables` (default:
    built here). Built by tensor ops from the small tables, so an export stores 3 x n_fft numbers, not the
    basis: ONNX Runtime builds it once when it loads the model."""
    if table is None or window is None:
        table, window = dft_tables(n_fft)
    n = torch.arange(n_fft, device=table.device)
    index = (torch.arange(n_fft // 2 + 1, device=table.device)[:, None] * n[None, :]) % n_fft  # (K, n_fft)
    return (torch.cat([table[index], table[index + n_fft]]) * window).unsqueeze(1)


def power_spectrogram(wave: torch.Tensor, n_fft: int, hop_length: int, basis: torch.Tensor | None = None) -> torch.Tensor:
    """Power STFT with a periodic Hann window, no centre padding, in float32.

    The DFT is a strided convolution (:func:`stft_basis`), not ``torch.stft``: exported, ONNX Runtime runs it
    about three times faster than its (float64) STFT operator, and both runtimes compute the same thing.
    Float32 keeps every bin within 80 dB of a clip's loudest within 0.01 dB of a float64 STFT
    (tests/unit/test_frontend_reference.py); the rounding error grows as a bin gets fainter next to its
    frame (about 0.1 dB at 100 dB below) and differs between runtimes, which a feature without a dynamic
    range limit (``top_db``) shows only where a clip has bins that faint: synthetic tones, not recordings,
    whose noise floor sits far above. Digital silence stays exactly zero.

    Args:
        wave: ``(..., T)`` samples; a clip shorter than ``n_fft`` is zero-padded to it.
        n_fft, hop_length: frame size and hop (samples).
        basis: :func:`stft_basis` of ``n_fft`` (default: built here).
    Returns:
        ``(..., K, F)`` power in ``wave``'s dtype, ``F = 1 + (max(T, n_fft) - n_fft) // hop_length``.
    """
    if wave.shape[-1] < n_fft:
        wave = F.pad(wave, (0, n_fft - wave.shape[-1]))
    if basis is None:
        basis = stft_basis(n_fft).to(wave.device)
    lead, bins = wave.shape[:-1], n_fft // 2 + 1
    spec = F.conv1d(wave.reshape(-1, 1, wave.shape[-1]).to(basis.dtype), basis, stride=hop_length)  # (N, 2K, F)
    power = (spec[:, :bins].square() + spec[:, bins:].square()).to(wave.dtype)
    return power.reshape(*lead, *power.shape[-2:])


def to_db(power: torch.Tensor) -> torch.Tensor:
    """``10 * log10(power)`` (dB) with a floor of -100 dB. Shape unchanged."""
    return 10.0 * torch.log10(power.clamp_min(_EPS))


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """HTK mel scale: ``2595 * log10(1 + hz / 700)`` (Hz to mel)."""
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel` (mel to Hz)."""
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(
    n_fft: int, sample_rate: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular HTK mel filters without area normalisation, each peaking at 1.

    Args:
        sample_rate: Hz.
        f_min, f_max: band edges (Hz); ``f_max=None`` is the Nyquist frequency.
    Returns:
        ``(n_mels, K)`` float32: ``mel_power = bank @ power``.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(
        hz_to_mel(torch.tensor(f_min, dtype=torch.float64)).item(),
        hz_to_mel(torch.tensor(f_max, dtype=torch.float64)).item(),
        n_mels + 2,
        dtype=torch.float64,
    )
    edges = mel_to_hz(mels)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def dct_matrix(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II, ``(n_mfcc, n_mels)`` float32: ``mfcc = dct @ db_mel``."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


def normalize_utterance(image: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-clip scaling over the last two axes: ``minmax`` to [0, 1], ``standard`` to mean 0 /
    std 1, ``none`` unchanged. Shape unchanged."""
    dims = (-2, -1)
    if mode == "none":
        return image
    if mode == "minmax":
        low = image.amin(dim=dims, keepdim=True)
        high = image.amax(dim=dims, keepdim=True)
        return (image - low) / (high - low).clamp_min(1e-6)
    if mode == "standard":
        mean = image.mean(dim=dims, keepdim=True)
        std = (image - mean).square().mean(dim=dims, keepdim=True).sqrt()  # population std, in ops ONNX exports
        return (image - mean) / std.clamp_min(1e-6)
    raise ValueError(f"unknown utterance_norm {mode!r}; expected 'minmax', 'standard' or 'none'")


def _interpolation(src: torch.Tensor, dst: int, size: int) -> torch.Tensor:
    """Half-pixel linear interpolation weights (``align_corners=False``, as ``F.interpolate``).

    Args:
        src: ``(N,)`` float source lengths (``>= 1``), one per clip.
        dst: output length.
        size: rows of the returned matrix (``>= max(src)``); rows past a clip's length get 0.
    Returns:
        ``(N, size, dst)``: ``resized = values @ weights`` for values ``(N, ..., size)``.
    """
    scale = (src / dst)[:, None]  # (N, 1)
    pos = ((torch.arange(dst, dtype=torch.float32) + 0.5)[None] * scale - 0.5).clamp_min(0.0)  # (N, dst)
    lo = torch.floor(pos)
    hi = torch.minimum(lo + 1.0, src[:, None] - 1.0)
    frac = pos - lo
    index = torch.arange(size, dtype=torch.float32)[None, :, None]  # (1, size, 1)
    return (index == lo[:, None, :]).float() * (1.0 - frac)[:, None, :] + (index == hi[:, None, :]).float() * frac[:, None, :]


class FrontEnd(nn.Module):
    """Padded clips to the model's input images: every step of the front end after the host steps.

    Peak scaling, power STFT (:func:`power_spectrogram`), mel filterbank (``logmel``, ``mfcc``), dB, dynamic
    range limit (``top_db``), DCT (``mfcc``), resize to ``n_bins`` rows, time axis (``stretch``:
    resized to ``n_frames`` columns; ``fixed``: centre crop, or centre padding with the clip's
    minimum), band mean, per-clip normalisation. Each clip's values depend only on its own first
    ``length`` samples, whatever the padding; tensor ops only, so it exports to ONNX.

    Args:
        settings: the feature settings (``trim_db``, ``trim_floor_db`` and ``crop_at`` are host steps,
            :func:`~spokenword.frontend.host.host_steps`, not done here).
        sample_rate: of the audio (Hz), for the mel scale.

    ``forward(audio, length)``:
        audio: ``(N, T)`` float32 samples, zero-padded at the end.
        length: ``(N,)`` int64 samples of each clip; samples at or after it are ignored.
        Returns ``(N, 1, n_bins, n_frames)`` float32.
    """

    def __init__(self, settings: FeatureSettings, sample_rate: int):
        super().__init__()
        self.n_fft, self.hop, self.n_bins, self.n_frames = settings.n_fft, settings.hop_length, settings.n_bins, settings.n_frames
        self.kind, self.stretch, self.norm = settings.kind, settings.time_axis == "stretch", settings.utterance_norm
        self.peak = settings.peak_normalize
        self.band_mean = settings.band_mean
        self.top_db: float | None = None if settings.top_db is None else float(settings.top_db)
        table, window = dft_tables(settings.n_fft)
        self.register_buffer("dft_table", table, persistent=False)
        self.register_buffer("dft_window", window, persistent=False)
        self.register_buffer("basis", stft_basis(settings.n_fft, table, window), persistent=False)
        rows = settings.n_fft // 2 + 1
        bank, dct = torch.zeros(0, rows), torch.zeros(0, 0)
        if settings.kind != "stft":
            n_mels = settings.n_bins if settings.kind == "logmel" else max(settings.n_bins, 40)  # MFCCs of >= 40 bands
            bank = mel_filterbank(settings.n_fft, sample_rate, n_mels, settings.f_min, settings.f_max)
            rows = n_mels
            if settings.kind == "mfcc":
                dct = dct_matrix(settings.n_bins, n_mels)
                rows = settings.n_bins
        self.rows = rows  # feature rows before resizing to n_bins
        self.register_buffer("bank", bank, persistent=False)
        self.register_buffer("dct", dct, persistent=False)

    def forward(self, audio: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        n_samples = audio.shape[-1]
        valid = torch.arange(n_samples, device=audio.device)[None, :] < length[:, None]
        audio = torch.where(valid, audio, torch.zeros_like(audio))
        if self.peak:
            audio = audio / audio.abs().amax(dim=-1, keepdim=True).clamp_min(1e-6)
        audio = F.pad(audio, (0, self.n_fft))  # a clip shorter than n_fft gets one zero-padded frame
        # exported, the graph builds the basis from the small tables (ONNX Runtime does it once, at load) instead
        # of storing its 66K numbers; run here, it was built once with the module
        basis = stft_basis(self.n_fft, self.dft_table, self.dft_window) if torch.compiler.is_exporting() else self.basis
        power = power_spectrogram(audio, self.n_fft, self.hop, basis)  # (N, K, F_all)
        image = to_db(power if self.kind == "stft" else torch.matmul(self.bank, power))
        frames = (length.clamp_min(self.n_fft) - self.n_fft) // self.hop + 1  # (N,) each clip's own frames
        total = image.shape[-1]
        frame_ok = (torch.arange(total, device=image.device)[None, :] < frames[:, None])[:, None, :]  # (N, 1, total)
        if self.top_db is not None:  # dynamic range limit below the loudest bin of the clip's own frames
            peak = torch.where(frame_ok, image, torch.full_like(image, -1e30)).amax(dim=(-2, -1), keepdim=True)
            image = torch.maximum(image, peak - self.top_db)
        if self.kind == "mfcc":
            image = torch.matmul(self.dct, image)
        if self.rows != self.n_bins:  # same width: only the rows are interpolated
            image = F.interpolate(image.unsqueeze(1), size=(self.n_bins, total), mode="bilinear", align_corners=False).squeeze(1)
        if self.stretch:
            image = torch.matmul(image, _interpolation(frames.float(), self.n_frames, total))
        else:
            image = self._fix_frames(image, frames, frame_ok)
        if self.band_mean:
            image = image - image.mean(dim=-1, keepdim=True)
        return normalize_utterance(image, self.norm).unsqueeze(1)

    def _fix_frames(self, image: torch.Tensor, frames: torch.Tensor, frame_ok: torch.Tensor) -> torch.Tensor:
        """``(N, n_bins, total)`` to ``(N, n_bins, n_frames)``: each clip's ``frames`` columns centre-cropped,
        or centred and padded with the clip's minimum."""
        n = self.n_frames
        offset = (frames - n).clamp_min(0) // 2 - (n - frames).clamp_min(0) // 2  # (N,)
        source = torch.arange(n, device=image.device)[None, :] + offset[:, None]  # (N, n)
        inside = (source >= 0) & (source < frames[:, None])
        index = torch.arange(image.shape[-1], device=image.device)[None, :, None]
        select = ((index == source[:, None, :]) & inside[:, None, :]).float()  # (N, total, n)
        floor = torch.where(frame_ok, image, torch.full_like(image, float("inf"))).amin(dim=(-2, -1), keepdim=True)
        return torch.where(inside[:, None, :], torch.matmul(image, select), floor)


def shift_frames(images: torch.Tensor, shifts: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Roll each image's columns right by its shift (training's time shift of a centre-padded clip,
    see :func:`~spokenword.frontend.host.random_window`): ``(N, ..., W)`` and ``(N,)`` to ``(N, ..., W)``."""
    shifts = torch.as_tensor(shifts, dtype=torch.long).reshape(-1, *([1] * (images.ndim - 1)))
    width = images.shape[-1]
    index = (torch.arange(width) - shifts) % width  # column c takes column c - shift
    return images.gather(-1, index.expand_as(images))


@functools.lru_cache(maxsize=16)
def front_end(settings: FeatureSettings, sample_rate: int) -> FrontEnd:
    """The :class:`FrontEnd` of these settings at ``sample_rate`` (Hz), built once per process
    (building the mel filterbank costs as much as featurising a few clips). Shared: do not modify."""
    return FrontEnd(settings, sample_rate).eval()


#: padded samples per :class:`FrontEnd` call in :func:`featurize`: larger groups save little and push
#: the float64 spectrograms out of the CPU caches
GROUP_SAMPLES = 2**16
#: a clip joins a group while the group's shortest clip is at least this fraction of it (padding waste)
GROUP_FILL = 0.8


def _groups(lengths: np.ndarray, n_fft: int) -> list[np.ndarray]:
    """Indices of clips of similar length, in groups of at most ``GROUP_SAMPLES`` padded samples."""
    groups, current, shortest = [], [], 0
    for i in np.argsort(lengths, kind="stable"):
        size = max(int(lengths[i]), n_fft)  # shorter clips are computed as n_fft samples anyway
        if current and (size * (len(current) + 1) > GROUP_SAMPLES or shortest < GROUP_FILL * size):
            groups.append(np.array(current))
            current = []
        if not current:
            shortest = size
        current.append(i)
    if current:
        groups.append(np.array(current))
    return groups


def featurize(waves: Sequence[np.ndarray], sample_rate: int, settings: FeatureSettings) -> torch.Tensor:
    """:class:`FrontEnd` on clips already through the host steps, zero-padded in groups of similar length.

    Args:
        waves: ``N`` clips ``(T_i,)`` float32 at ``sample_rate`` Hz, any lengths.
    Returns:
        ``(N, 1, n_bins, n_frames)`` float32.
    """
    out = torch.empty((len(waves), *settings.shape), dtype=torch.float32)
    if not len(waves):
        return out
    module = front_end(settings, sample_rate)
    lengths = np.array([len(w) for w in waves], dtype=np.int64)
    with torch.no_grad():
        for group in _groups(lengths, settings.n_fft):
            audio = np.zeros((len(group), max(int(lengths[group].max()), 1)), dtype=np.float32)
            for row, i in zip(audio, group):
                row[: lengths[i]] = waves[i]
            out[torch.from_numpy(group)] = module(torch.from_numpy(audio), torch.from_numpy(lengths[group]))
    return out


def _samples(wave) -> np.ndarray:
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().cpu()
    return np.asarray(wave, dtype=np.float32).ravel()


def extract(wave, sample_rate: int, settings: FeatureSettings) -> torch.Tensor:
    """One clip to the model's input image (inference): host steps, then :class:`FrontEnd`.

    Args:
        wave: ``(T,)`` float samples at ``sample_rate`` Hz (tensor or array).
        sample_rate: Hz.
        settings: see :class:`~spokenword.frontend.settings.FeatureSettings`.
    Returns:
        ``(1, n_bins, n_frames)`` float32, finite.
    """
    return featurize([host_steps(_samples(wave), settings)], sample_rate, settings)[0]


def extract_batch(waves, sample_rate: int, settings: FeatureSettings) -> torch.Tensor:
    """:func:`extract` of many clips, the :class:`FrontEnd` run on groups of clips of similar length.

    Args:
        waves: ``N`` clips ``(T_i,)`` (tensors or arrays, any lengths) at ``sample_rate`` Hz.
    Returns:
        ``(N, 1, n_bins, n_frames)`` float32.
    """
    return featurize([host_steps(_samples(w), settings) for w in waves], sample_rate, settings)
