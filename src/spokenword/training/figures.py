"""The dataset illustrations of ``spokenword figures``: what FSDD recordings and their features look like.

:func:`write_all` writes five PNGs from the FSDD copy under a data root:

* ``waveform.png``: one recording, amplitude against time (s).
* ``spectrogram.png``: its log-power STFT (the reference's 256-point FFT, hop 240 samples), time (s)
  against frequency (Hz), power in dB.
* ``two_digits.png``: two digits by the same speaker side by side (waveform above, spectrogram below).
* ``grid.png``: one speaker's 64x64 model inputs, takes as rows and the 10 digits as columns.
* ``mfcc.png``: the MFCC alternative, coefficient index against time (s).

Signals pass through :func:`spokenword.audio.load` and :mod:`spokenword.frontend`, the code path
training uses, so the pictures show what the model sees.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spokenword import audio
from spokenword.data.corpora import FSDD, DatasetError, Recording
from spokenword.data.corpora.fsdd import DIGITS, SAMPLE_RATE
from spokenword.frontend.settings import FeatureSettings
from spokenword.frontend.graph import extract, power_spectrogram, to_db
from spokenword.training.plots import plt, save_figure

#: the digits compared in ``two_digits.png``: a pair the reference's model often confuses
PAIR = ("6", "8")
#: takes shown as rows of ``grid.png``
GRID_TAKES = 5
#: MFCCs shown in ``mfcc.png`` (over 40 mel bands)
N_MFCC = 13


def _recordings(root: Path, speaker: str) -> dict[tuple[str, int], Recording]:
    """``(digit, take) -> Recording`` of ``speaker`` in the FSDD copy under ``root``."""
    found = FSDD(validate=False).recordings(root)
    mine = {(r.label, r.take): r for r in found if r.speaker == speaker}
    if not mine:
        speakers = sorted({r.speaker for r in found})
        raise DatasetError(f"no FSDD recordings of speaker {speaker!r} under {FSDD.folder(root)}; speakers: {', '.join(speakers)}")
    return mine


def _pick(recordings: dict[tuple[str, int], Recording], digit: str, take: int = 0) -> Recording:
    if (digit, take) in recordings:
        return recordings[(digit, take)]
    takes = sorted(t for d, t in recordings if d == digit)
    if not takes:
        raise DatasetError(f"no FSDD recording of digit {digit} for this speaker")
    return recordings[(digit, takes[0])]


def _log_power(wave: np.ndarray, settings: FeatureSettings) -> tuple[np.ndarray, list[float]]:
    """The reference's log-power STFT ``(n_fft // 2 + 1, F)`` in dB and its ``imshow`` extent
    ``[0, seconds, 0, Nyquist Hz]``."""
    spec = to_db(power_spectrogram(torch.from_numpy(wave), settings.n_fft, settings.hop_length)).numpy()
    seconds = len(wave) / SAMPLE_RATE
    return spec, [0.0, seconds, 0.0, SAMPLE_RATE / 2]


def _plot_waveform(ax, wave: np.ndarray, title: str) -> None:
    ax.plot(np.arange(len(wave)) / SAMPLE_RATE, wave, linewidth=0.6)
    ax.set_xlim(0, len(wave) / SAMPLE_RATE)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude (full scale = 1)")
    ax.set_title(title)
    ax.grid(alpha=0.3)


def _plot_spectrogram(fig, ax, wave: np.ndarray, settings: FeatureSettings, title: str) -> None:
    spec, extent = _log_power(wave, settings)
    image = ax.imshow(spec, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=spec.max() - 80)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="power (dB)")


def waveform(rec: Recording, path: Path) -> Path:
    """``waveform.png``: amplitude of ``rec`` against time (s)."""
    wave = audio.load(rec.path, SAMPLE_RATE)
    fig, ax = plt.subplots(figsize=(7, 3))
    _plot_waveform(ax, wave, f"Waveform: digit {rec.label}, {rec.path.name} ({SAMPLE_RATE} Hz)")
    return save_figure(fig, path)


def spectrogram(rec: Recording, path: Path, settings: FeatureSettings = FeatureSettings()) -> Path:
    """``spectrogram.png``: log-power STFT of ``rec`` (before the resize to the model's image)."""
    wave = audio.load(rec.path, SAMPLE_RATE)
    fig, ax = plt.subplots(figsize=(7, 4))
    _plot_spectrogram(fig, ax, wave, settings,
                      f"Log-power spectrogram: {rec.path.name} ({settings.n_fft}-point FFT, hop {settings.hop_length})")
    return save_figure(fig, path)


def two_digits(first: Recording, second: Recording, path: Path, settings: FeatureSettings = FeatureSettings()) -> Path:
    """``two_digits.png``: two recordings side by side, waveform above and spectrogram below."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 6))
    for column, rec in enumerate((first, second)):
        wave = audio.load(rec.path, SAMPLE_RATE)
        _plot_waveform(axes[0, column], wave, f"digit {rec.label} ({rec.path.name})")
        _plot_spectrogram(fig, axes[1, column], wave, settings, f"digit {rec.label}: log-power spectrogram")
    fig.suptitle(f"Two digits spoken by {first.speaker}")
    return save_figure(fig, path)


def grid(recordings: dict[tuple[str, int], Recording], speaker: str, path: Path,
         settings: FeatureSettings = FeatureSettings(), takes: int = GRID_TAKES) -> Path:
    """``grid.png``: the model's input images (``settings``, 64x64 by default), takes as rows and
    digits as columns; low frequencies at the bottom of each image."""
    rows = sorted({t for _, t in recordings})[:takes]
    fig, axes = plt.subplots(len(rows), len(DIGITS), figsize=(1.3 * len(DIGITS) + 1, 1.3 * len(rows) + 1.2), squeeze=False)
    for i, take in enumerate(rows):
        for j, digit in enumerate(DIGITS):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            rec = recordings.get((digit, take))
            if rec is not None:
                image = extract(torch.from_numpy(audio.load(rec.path, SAMPLE_RATE)), SAMPLE_RATE, settings)[0]
                ax.imshow(image.numpy(), origin="lower", cmap="gray", aspect="auto")
            if i == 0:
                ax.set_title(f"digit {digit}")
            if j == 0:
                ax.set_ylabel(f"take {take}")
    fig.suptitle(
        f"{speaker}: {settings.n_bins}x{settings.n_frames} {settings.kind} images "
        f"(x: time, whole clip in {settings.n_frames} columns; y: frequency 0-{SAMPLE_RATE // 2} Hz in {settings.n_bins} rows)"
    )
    return save_figure(fig, path)


def mfcc(rec: Recording, path: Path, n_mfcc: int = N_MFCC) -> Path:
    """``mfcc.png``: MFCCs 1 to ``n_mfcc - 1`` of ``rec`` (40 mel bands, the reference's STFT),
    coefficient index against time (s)."""
    wave = audio.load(rec.path, SAMPLE_RATE)
    base = FeatureSettings()
    frames = 1 + max(0, len(wave) - base.n_fft) // base.hop_length
    settings = FeatureSettings(kind="mfcc", n_fft=base.n_fft, hop_length=base.hop_length, n_bins=n_mfcc,
                               n_frames=frames, time_axis="fixed", utterance_norm="none")
    # coefficient 0 (the log energy) is an order of magnitude larger than the rest; left out so
    # the colour scale shows the spectral shape
    coefficients = extract(torch.from_numpy(wave), SAMPLE_RATE, settings)[0, 1:].numpy()
    limit = float(np.abs(coefficients).max())
    fig, ax = plt.subplots(figsize=(7, 3.5))
    seconds = len(wave) / SAMPLE_RATE
    image = ax.imshow(coefficients, origin="lower", aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit,
                      extent=[0.0, seconds, 0.5, n_mfcc - 0.5])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MFCC coefficient index")
    ax.set_title(f"MFCC: {rec.path.name} (coefficients 1-{n_mfcc - 1} of 40 mel bands; 0 = energy not shown)", fontsize=10)
    fig.colorbar(image, ax=ax, label="coefficient value (dB scale)")
    return save_figure(fig, path)


def write_all(root: Path, out: Path, speaker: str = "jackson") -> list[Path]:
    """Write the five illustrations for ``speaker`` from FSDD under ``root`` into ``out``.

    Returns:
        The PNG paths, in the order listed in the module docstring.
    """
    out = Path(out)
    recordings = _recordings(Path(root), speaker)
    first = _pick(recordings, "0")
    return [
        waveform(first, out / "waveform.png"),
        spectrogram(first, out / "spectrogram.png"),
        two_digits(_pick(recordings, PAIR[0]), _pick(recordings, PAIR[1]), out / "two_digits.png"),
        grid(recordings, speaker, out / "grid.png"),
        mfcc(first, out / "mfcc.png"),
    ]
