"""Feature extraction: pure tensor functions, plus one settings record that drives them.

Shapes use ``T`` for samples (at ``sample_rate`` Hz), ``F`` for STFT frames and ``B`` for
frequency rows. Every function works on a single clip (1-D tensor) or a batch (leading dims).

The settings record :class:`FeatureSettings` is stored in every checkpoint, so inference uses
the features the model was trained on (see :func:`extract`).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from spokenword.frontend.settings import FLOOR_RULE_RANGE_DB, FeatureSettings, window_samples

_EPS = 1e-10


def power_spectrogram(wave: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Power STFT with a Hann window, no centre padding.

    Args:
        wave: ``(..., T)`` samples; shorter clips are zero-padded to ``n_fft``.
    Returns:
        ``(..., n_fft // 2 + 1, F)`` power, ``F = 1 + (T - n_fft) // hop_length``.
    """
    if wave.shape[-1] < n_fft:
        wave = F.pad(wave, (0, n_fft - wave.shape[-1]))
    lead = wave.shape[:-1]
    flat = wave.reshape(-1, wave.shape[-1])
    # float64 STFT: float32 rounding moves near-silent bins by up to 0.2 dB, which is enough to
    # break parity with exported front ends; the result is cast back to the input dtype.
    window = torch.hann_window(n_fft, dtype=torch.float64, device=wave.device)
    spec = torch.stft(flat.double(), n_fft, hop_length, window=window, center=False, return_complex=True)
    power = (spec.real.square() + spec.imag.square()).to(wave.dtype)
    return power.reshape(*lead, *power.shape[-2:])


def to_db(power: torch.Tensor) -> torch.Tensor:
    """``10 * log10(power)`` with a floor of -100 dB. Shape unchanged."""
    return 10.0 * torch.log10(power.clamp_min(_EPS))


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """HTK mel scale: ``2595 * log10(1 + hz / 700)``."""
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel` (Hz)."""
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(
    n_fft: int, sample_rate: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular HTK mel filters, shape ``(n_mels, n_fft // 2 + 1)``, each peaking at 1."""
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
    """Orthonormal DCT-II matrix, shape ``(n_mfcc, n_mels)``."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


def lifter_matrix(n_keep: int, n_bands: int) -> torch.Tensor:
    """Low-quefrency liftering as one matrix, ``(n_bands, n_bands)``: ``D.T @ D`` with ``D`` the first
    ``n_keep`` rows of the orthonormal DCT-II over ``n_bands`` bands, so ``lifter @ spectrum`` keeps
    the first ``n_keep`` cepstral coefficients of a ``(n_bands, F)`` dB spectrum (the same band
    units) and drops the rest: detail across bands finer than about ``2 * n_bands / n_keep`` bands."""
    basis = dct_matrix(n_keep, n_bands)
    return basis.T @ basis


# the matrices of one feature setting, built once per process (extract and extract_batch use them
# read-only); building the mel filterbank cost ~15 % of making an augmented training batch
@functools.lru_cache(maxsize=32)
def _filterbank(n_fft: int, sample_rate: int, n_mels: int, f_min: float, f_max: float | None) -> torch.Tensor:
    return mel_filterbank(n_fft, sample_rate, n_mels, f_min, f_max)


@functools.lru_cache(maxsize=32)
def _dct(n_mfcc: int, n_mels: int) -> torch.Tensor:
    return dct_matrix(n_mfcc, n_mels)


@functools.lru_cache(maxsize=32)
def _lifter(n_keep: int, n_bands: int) -> torch.Tensor:
    return lifter_matrix(n_keep, n_bands)


def frame_energy_db(wave: torch.Tensor, frame_length: int, hop_length: int) -> torch.Tensor:
    """Mean power of each frame in dB (floor -100 dB): ``(T,)`` to ``(1 + (T - frame_length) // hop_length,)``."""
    return to_db(wave.unfold(0, frame_length, hop_length).square().mean(dim=-1))


def trim_silence(
    wave: torch.Tensor,
    top_db: float,
    frame_length: int = 256,
    hop_length: int = 80,
    floor_db: float | None = None,
) -> torch.Tensor:
    """Cut leading and trailing frames that are not speech.

    A frame is speech when its energy is within ``top_db`` dB of the loudest frame and, with
    ``floor_db``, also at least ``floor_db`` dB above the noise floor (the quietest frame's
    energy), unless that would cut closer than ``FLOOR_RULE_RANGE_DB`` (20 dB) below the loudest
    frame. The floor rule keeps background noise out of the trimmed clip when the recording is
    noisy, where a rule relative to the peak alone trims nothing; the 20 dB limit keeps it from
    eating into a tightly cut clip, whose quietest frame is speech.

    Args:
        wave: ``(T,)`` samples.
        frame_length, hop_length: analysis frames (samples).
    Returns:
        ``(T',)`` with ``T' <= T``; the clip is returned whole when it is shorter than a frame
        or entirely silent.
    """
    if wave.ndim != 1:
        raise ValueError(f"trim_silence expects a 1-D clip, got shape {tuple(wave.shape)}")
    if wave.shape[-1] <= frame_length:
        return wave
    energy = frame_energy_db(wave, frame_length, hop_length)
    peak = float(energy.max())
    if peak <= -100.0 + 1e-3:
        return wave
    threshold = peak - top_db
    if floor_db is not None:
        threshold = max(threshold, min(float(energy.min()) + floor_db, peak - FLOOR_RULE_RANGE_DB))
    loud = torch.nonzero(energy > threshold).flatten()
    if loud.numel() == 0:
        return wave
    start = int(loud[0]) * hop_length
    stop = min(wave.shape[-1], int(loud[-1]) * hop_length + frame_length)
    return wave[start:stop]


def loudest_window(wave: torch.Tensor, length: int, frame_length: int, hop_length: int) -> torch.Tensor:
    """The ``length`` samples of ``wave`` ``(T,)`` holding the most energy (frames of
    ``frame_length`` every ``hop_length``; ``length`` should span whole frames); the clip itself
    when it is not longer. ``(min(T, length),)``."""
    if wave.shape[-1] <= length:
        return wave
    power = wave.unfold(0, frame_length, hop_length).double().square().sum(dim=-1)  # (F,)
    span = 1 + (length - frame_length) // hop_length
    totals = torch.nn.functional.avg_pool1d(power.view(1, 1, -1), span, stride=1).flatten()
    start = int(torch.argmax(totals)) * hop_length
    return wave[start : start + length]


def locate_speech(wave: torch.Tensor, settings: "FeatureSettings") -> torch.Tensor:
    """The waveform steps of the front end that depend on the signal, before the spectrogram:
    silence trimming (``trim_db``, ``trim_floor_db``) and, with ``crop_at="loudest"``, the
    loudest ``n_frames`` window of a clip longer than that. ``(T,)`` to ``(T',)``."""
    if settings.trim_db is not None:
        wave = trim_silence(wave, settings.trim_db, settings.n_fft, settings.hop_length, settings.trim_floor_db)
    if settings.crop_at == "loudest" and settings.time_axis == "fixed":
        wave = loudest_window(wave, window_samples(settings), settings.n_fft, settings.hop_length)
    return wave


def fix_frames(spec: torch.Tensor, n_frames: int, offset: int | None = None) -> torch.Tensor:
    """Crop or zero-pad the last axis to ``n_frames``.

    Args:
        spec: ``(..., F)``.
        offset: first frame kept when cropping, or where the clip starts when padding;
            ``None`` centres it.
    Returns:
        ``(..., n_frames)``.
    """
    frames = spec.shape[-1]
    if frames == n_frames:
        return spec
    if frames > n_frames:
        start = (frames - n_frames) // 2 if offset is None else max(0, min(offset, frames - n_frames))
        return spec[..., start : start + n_frames]
    missing = n_frames - frames
    left = missing // 2 if offset is None else max(0, min(offset, missing))
    return F.pad(spec, (left, missing - left), value=float(spec.min()) if spec.numel() else 0.0)


def kept_samples(length: int, settings: "FeatureSettings", offset: int | None = None) -> slice | None:
    """The samples of a ``length``-sample clip that the ``n_frames`` frames kept by
    :func:`fix_frames` (``offset`` as there) are computed from, when a fixed time axis crops the
    clip and nothing before the crop looks at the frames dropped (``top_db`` unset); else ``None``.
    Frames do not overlap the clip's edges (no centre padding), so the spectrogram of these
    samples is exactly the kept frames: computing only them saves the STFT of the rest (a 1-s
    16 kHz clip cropped to 64 frames of 10 ms: a third of the work)."""
    if settings.time_axis != "fixed" or settings.top_db is not None or length < settings.n_fft:
        return None
    frames = 1 + (length - settings.n_fft) // settings.hop_length
    if frames <= settings.n_frames:
        return None
    room = frames - settings.n_frames
    start = room // 2 if offset is None else max(0, min(offset, room))
    first = start * settings.hop_length
    return slice(first, first + window_samples(settings))


def limit_range(db: torch.Tensor, top_db: float) -> torch.Tensor:
    """Raise values more than ``top_db`` below the maximum of the last two axes to that level.
    Shape unchanged."""
    peak = db.amax(dim=(-2, -1), keepdim=True)
    return torch.maximum(db, peak - top_db)


def resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of the last two axes to ``(height, width)``."""
    lead = image.shape[:-2]
    flat = image.reshape(-1, 1, *image.shape[-2:])
    out = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False)
    return out.reshape(*lead, height, width)


def normalize_utterance(image: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-clip scaling over the last two axes: ``minmax`` to [0, 1], ``standard`` to mean 0 /
    std 1, ``none`` unchanged."""
    if mode == "none":
        return image
    dims = (-2, -1)
    if mode == "minmax":
        low = image.amin(dim=dims, keepdim=True)
        high = image.amax(dim=dims, keepdim=True)
        return (image - low) / (high - low).clamp_min(1e-6)
    if mode == "standard":
        mean = image.mean(dim=dims, keepdim=True)
        std = image.std(dim=dims, keepdim=True, unbiased=False)
        return (image - mean) / std.clamp_min(1e-6)
    raise ValueError(f"unknown utterance_norm {mode!r}; expected 'minmax', 'standard' or 'none'")


def _trimmed(wave: torch.Tensor, settings: FeatureSettings) -> torch.Tensor:
    if settings.trim_db is None:
        return wave
    return trim_silence(wave, settings.trim_db, settings.n_fft, settings.hop_length, settings.trim_floor_db)


def extract(wave: torch.Tensor, sample_rate: int, settings: FeatureSettings, crop: float | None = None) -> torch.Tensor:
    """Turn one clip into the model's input image.

    Args:
        wave: ``(T,)`` float samples at ``sample_rate`` Hz.
        sample_rate: Hz; used for the mel scale.
        settings: see :class:`FeatureSettings`.
        crop: with ``time_axis="fixed"``, where the ``n_frames`` window sits when the clip is
            longer (0 = its first frames, 1 = its last), or where the clip sits inside the window
            when it is shorter (0 = at the start, 1 = at the end). ``None`` (inference) centres
            it (or takes the loudest window, see ``crop_at``); training draws it at random
            (a random crop / time shift).
    Returns:
        ``(1, settings.n_bins, settings.n_frames)`` float32, finite.
    """
    wave = torch.as_tensor(wave, dtype=torch.float32).flatten()
    wave = locate_speech(wave, settings) if crop is None else _trimmed(wave, settings)
    if settings.peak_normalize:
        wave = wave / wave.abs().max().clamp_min(1e-6)
    if crop is not None and settings.time_axis == "fixed" and wave.shape[-1] >= settings.n_fft:
        room = abs(1 + (wave.shape[-1] - settings.n_fft) // settings.hop_length - settings.n_frames)
        span = kept_samples(wave.shape[-1], settings, round(crop * room))
    else:
        span = kept_samples(wave.shape[-1], settings)
    if span is not None:  # only the frames fix_frames keeps
        wave = wave[span]
    power = power_spectrogram(wave, settings.n_fft, settings.hop_length)  # (n_fft//2+1, F)
    if settings.kind == "stft":
        image = to_db(power)
        if settings.top_db is not None:
            image = limit_range(image, settings.top_db)
        rows = image.shape[0]  # n_fft // 2 + 1, resized to n_bins below
    else:
        bank = _filterbank(settings.n_fft, sample_rate, settings.n_bins if settings.kind == "logmel" else max(settings.n_bins, 40), settings.f_min, settings.f_max)
        image = to_db(bank @ power)
        if settings.top_db is not None:
            image = limit_range(image, settings.top_db)
        if settings.kind == "mfcc":
            image = _dct(settings.n_bins, bank.shape[0]) @ image
        if settings.cepstral_lifter is not None:
            image = _lifter(settings.cepstral_lifter, bank.shape[0]) @ image
        rows = image.shape[0]
    if settings.time_axis == "stretch":
        image = resize(image, settings.n_bins, settings.n_frames)
    else:
        if rows != settings.n_bins:
            image = resize(image, settings.n_bins, image.shape[-1])
        room = abs(image.shape[-1] - settings.n_frames)
        image = fix_frames(image, settings.n_frames, None if crop is None else round(crop * room))
    if settings.band_mean:
        image = image - image.mean(dim=-1, keepdim=True)
    image = normalize_utterance(image, settings.utterance_norm)
    return image.unsqueeze(0).contiguous()


class FeatureExtractor(torch.nn.Module):
    """Thin module around :func:`extract` holding the settings and sample rate (Hz).

    ``forward(wave)`` maps ``(T,)`` to ``(1, n_bins, n_frames)``.
    """

    def __init__(self, settings: FeatureSettings | None = None, sample_rate: int = 8000):
        super().__init__()
        self.settings = settings or FeatureSettings()
        self.sample_rate = sample_rate

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return extract(wave, self.sample_rate, self.settings)


# -- many clips at once (the feature cache) ---------------------------------------------------------

#: clips of one length transformed together by :func:`extract_batch`: larger groups save little and
#: push the float64 spectrograms out of the CPU caches (measured slower at 16 x 1-s 16 kHz clips)
BATCH_GROUP = 8


def _images(waves: torch.Tensor, sample_rate: int, settings: FeatureSettings) -> torch.Tensor:
    """:func:`extract`'s steps after :func:`locate_speech` and peak scaling, on ``(N, T)`` clips of one
    length: ``(N, 1, n_bins, n_frames)``."""
    span = kept_samples(waves.shape[-1], settings)
    if span is not None:  # only the frames the centre crop below keeps
        waves = waves[..., span]
    power = power_spectrogram(waves, settings.n_fft, settings.hop_length)  # (N, n_fft//2+1, F)
    if settings.kind == "stft":
        image = to_db(power)
    else:
        n_mels = settings.n_bins if settings.kind == "logmel" else max(settings.n_bins, 40)
        bank = _filterbank(settings.n_fft, sample_rate, n_mels, settings.f_min, settings.f_max)
        image = to_db(bank @ power)
    if settings.top_db is not None:
        image = limit_range(image, settings.top_db)
    if settings.kind == "mfcc":
        image = _dct(settings.n_bins, image.shape[-2]) @ image
    if settings.cepstral_lifter is not None:
        image = _lifter(settings.cepstral_lifter, image.shape[-2]) @ image
    if settings.time_axis == "stretch":
        image = resize(image, settings.n_bins, settings.n_frames)
    else:
        if image.shape[-2] != settings.n_bins:
            image = resize(image, settings.n_bins, image.shape[-1])
        frames = image.shape[-1]
        if frames > settings.n_frames:
            start = (frames - settings.n_frames) // 2
            image = image[..., start : start + settings.n_frames]
        elif frames < settings.n_frames:  # centred, padded with each clip's own minimum (as fix_frames)
            left = (settings.n_frames - frames) // 2
            padded = image.amin(dim=(-2, -1), keepdim=True).expand(*image.shape[:-1], settings.n_frames).clone()
            padded[..., left : left + frames] = image
            image = padded
    if settings.band_mean:
        image = image - image.mean(dim=-1, keepdim=True)
    return normalize_utterance(image, settings.utterance_norm).unsqueeze(-3)


def extract_batch(waves, sample_rate: int, settings: FeatureSettings) -> torch.Tensor:
    """:func:`extract` (inference mode: no ``crop``) of many clips: ``(N, 1, n_bins, n_frames)`` float32.

    The signal-dependent steps (trimming, loudest window, peak scaling) run per clip; clips that
    then have the same length go through the spectrogram and the rest together, ``BATCH_GROUP``
    at a time, with the mel and DCT matrices built once. Same values as calling :func:`extract` on
    each clip (same float64 STFT, same operations; tests/unit/test_extract_batch.py, which fails
    when :class:`FeatureSettings` gains a field it does not exercise: a new step of :func:`extract`
    belongs here too).

    Args:
        waves: a sequence of ``(T,)`` clips (tensors or arrays, any lengths) at ``sample_rate`` Hz.
    """
    prepared = []
    for wave in waves:
        wave = locate_speech(torch.as_tensor(wave, dtype=torch.float32).flatten(), settings)
        if settings.peak_normalize:
            wave = wave / wave.abs().max().clamp_min(1e-6)
        prepared.append(wave)
    out = torch.empty((len(prepared), *settings.shape), dtype=torch.float32)
    groups: dict[int, list[int]] = {}
    for i, wave in enumerate(prepared):
        groups.setdefault(wave.shape[-1], []).append(i)
    for members in groups.values():
        for k in range(0, len(members), BATCH_GROUP):
            chosen = members[k : k + BATCH_GROUP]
            images = _images(torch.stack([prepared[i] for i in chosen]), sample_rate, settings)
            if len(chosen) == 1:
                out[chosen[0]] = images[0]
            else:
                out[torch.as_tensor(chosen)] = images
    return out


# -- padded batches, exportable (the export's front end) ------------------------------------------
#: precision of the in-graph STFT (see :class:`FrontEnd`).
STFT_DTYPE = torch.float64


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
    """:func:`spokenword.features.extract` on a padded batch, in export-friendly tensor ops.

    ``forward(audio (N, T) float32, length (N,) int64) -> (N, 1, n_bins, n_frames)``. Trimming is not
    included (see module docstring); every other setting is.
    """

    def __init__(self, settings: FeatureSettings, sample_rate: int):
        super().__init__()
        self.n_fft, self.hop, self.n_bins, self.n_frames = settings.n_fft, settings.hop_length, settings.n_bins, settings.n_frames
        self.kind, self.stretch, self.norm = settings.kind, settings.time_axis == "stretch", settings.utterance_norm
        self.peak = settings.peak_normalize
        self.band_mean = settings.band_mean
        top_db = getattr(settings, "top_db", None)  # dynamic range limit (dB), when the settings have one
        self.top_db: float | None = None if top_db is None else float(top_db)
        self.register_buffer("window", torch.hann_window(settings.n_fft, dtype=STFT_DTYPE), persistent=False)
        rows = settings.n_fft // 2 + 1
        bank, dct, lifter = torch.zeros(0, rows), torch.zeros(0, 0), torch.zeros(0, 0)
        if settings.kind != "stft":
            n_mels = settings.n_bins if settings.kind == "logmel" else max(settings.n_bins, 40)
            bank = mel_filterbank(settings.n_fft, sample_rate, n_mels, settings.f_min, settings.f_max)
            rows = n_mels
            if settings.kind == "mfcc":
                dct = dct_matrix(settings.n_bins, n_mels)
                rows = settings.n_bins
            if getattr(settings, "cepstral_lifter", None) is not None:
                lifter = lifter_matrix(settings.cepstral_lifter, n_mels)
        self.rows = rows  # feature rows before resizing to n_bins
        self.register_buffer("bank", bank, persistent=False)
        self.register_buffer("dct", dct, persistent=False)
        self.register_buffer("lifter", lifter, persistent=False)
        self.liftered = lifter.numel() > 0

    def forward(self, audio: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        n_samples = audio.shape[-1]
        valid = torch.arange(n_samples, device=audio.device)[None, :] < length[:, None]
        audio = torch.where(valid, audio, torch.zeros_like(audio))
        if self.peak:
            audio = audio / audio.abs().amax(dim=-1, keepdim=True).clamp_min(1e-6)
        audio = F.pad(audio, (0, self.n_fft))  # clips shorter than n_fft get one zero-padded frame
        spec = torch.stft(audio.to(self.window.dtype), self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        power = (spec.real.square() + spec.imag.square()).float()  # (N, K, F_all)
        if self.kind == "stft":
            image = 10.0 * torch.log10(power.clamp_min(1e-10))
        else:
            image = 10.0 * torch.log10(torch.matmul(self.bank, power).clamp_min(1e-10))
        frames = (length.clamp_min(self.n_fft) - self.n_fft) // self.hop + 1  # (N,) true frame counts
        total = image.shape[-1]
        frame_ok = (torch.arange(total, device=image.device)[None, :] < frames[:, None])[:, None, :]  # (N, 1, total)
        if self.top_db is not None:  # dynamic range limit below the loudest bin of the clip's own frames
            peak = torch.where(frame_ok, image, torch.full_like(image, -1e30)).amax(dim=(-2, -1), keepdim=True)
            image = torch.maximum(image, peak - self.top_db)
        if self.kind == "mfcc":
            image = torch.matmul(self.dct, image)
        if self.liftered:
            image = torch.matmul(self.lifter, image)
        if self.rows != self.n_bins:  # same-size width: only the rows are interpolated
            image = F.interpolate(image.unsqueeze(1), size=(self.n_bins, total), mode="bilinear", align_corners=False).squeeze(1)
        if self.stretch:
            image = torch.matmul(image, _interpolation(frames.float(), self.n_frames, total))
        else:
            image = self._fix_frames(image, frames, frame_ok)
        if self.band_mean:
            image = image - image.mean(dim=-1, keepdim=True)
        return self._normalize(image).unsqueeze(1)

    def _fix_frames(self, image: torch.Tensor, frames: torch.Tensor, frame_ok: torch.Tensor) -> torch.Tensor:
        """Centre crop / centre pad with the clip's minimum, as ``features.fix_frames``."""
        n = self.n_frames
        offset = (frames - n).clamp_min(0) // 2 - (n - frames).clamp_min(0) // 2  # (N,)
        source = torch.arange(n, device=image.device)[None, :] + offset[:, None]  # (N, n)
        inside = (source >= 0) & (source < frames[:, None])
        index = torch.arange(image.shape[-1], device=image.device)[None, :, None]
        select = ((index == source[:, None, :]) & inside[:, None, :]).float()  # (N, total, n)
        floor = torch.where(frame_ok, image, torch.full_like(image, float("inf"))).amin(dim=(-2, -1), keepdim=True)
        return torch.where(inside[:, None, :], torch.matmul(image, select), floor)

    def _normalize(self, image: torch.Tensor) -> torch.Tensor:
        if self.norm == "minmax":
            low = image.amin(dim=(-2, -1), keepdim=True)
            high = image.amax(dim=(-2, -1), keepdim=True)
            return (image - low) / (high - low).clamp_min(1e-6)
        if self.norm == "standard":
            mean = image.mean(dim=(-2, -1), keepdim=True)
            std = (image - mean).square().mean(dim=(-2, -1), keepdim=True).sqrt()
            return (image - mean) / std.clamp_min(1e-6)
        return image
