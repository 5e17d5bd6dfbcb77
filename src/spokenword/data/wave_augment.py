"""Random perturbations of training waveforms, applied before feature extraction (training split only).

Feature-image augmentation (:mod:`spokenword.data.feature_augment`) cannot add noise or reverberation properly:
those act on the signal, before silence trimming and the spectrogram. :class:`WaveAugment` does,
so a training clip passes through exactly the inference front end (trimming, features,
normalisation) after it has been perturbed. It is configured from YAML as the data module's
``wave_augment`` argument; validation, test and inference never see it.

Stateless functions first (waveforms are float32 ``(T,)`` arrays at ``sample_rate`` Hz), then the
class holding the defaults. Every random choice comes from the ``numpy.random.Generator`` passed in,
so a seeded run is reproducible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
import soxr
from scipy import signal

NoiseKind = Literal["white", "pink", "brown", "babble", "file"]


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float, speech: np.ndarray | None = None) -> np.ndarray:
    """``clean + g * noise`` with ``g`` chosen so that the power ratio is ``snr_db`` (dB): the power of
    ``speech`` (e.g. the clip without its leading and trailing silence) when given, else of the whole
    clip. ``noise`` is tiled or cut to ``clean``'s length ``(T,)``; float32 out."""
    noise = np.resize(np.asarray(noise, dtype=np.float64), clean.shape)
    p_clean = float(np.mean(np.square(clean if speech is None or not len(speech) else speech, dtype=np.float64))) + 1e-12
    p_noise = float(np.mean(noise**2)) + 1e-12
    gain = np.sqrt(p_clean / (p_noise * 10 ** (snr_db / 10)))
    return (clean + gain * noise).astype(np.float32)


def colored_noise(length: int, kind: Literal["white", "pink", "brown"], rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of ``length`` samples with a power spectrum falling as ``1/f**0`` (white),
    ``1/f`` (pink) or ``1/f**2`` (brown); float64 ``(length,)``, arbitrary scale."""
    white = rng.standard_normal(max(length, 2))
    if kind == "white":
        return white[:length]
    spectrum = np.fft.rfft(white)
    f = np.arange(1, len(spectrum) + 1, dtype=np.float64)
    spectrum /= np.sqrt(f) if kind == "pink" else f
    return np.fft.irfft(spectrum, len(white))[:length]


def babble(clips: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Sum of ``clips`` (other talkers), each tiled to ``length`` samples and scaled to unit power."""
    out = np.zeros(length)
    for clip in clips:
        clip = np.resize(np.asarray(clip, dtype=np.float64), length)
        out += clip / (np.sqrt(np.mean(clip**2)) + 1e-12)
    return out


def change_speed(wave: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play ``wave`` ``factor`` times faster (> 1: shorter and higher; pitch and formants move
    together, as in Kaldi's speed perturbation), resampled with soxr. ``(T,)`` to ``(~T / factor,)``."""
    if factor == 1.0:
        return wave
    out = soxr.resample(np.asarray(wave, dtype=np.float32), sample_rate * factor, sample_rate, quality="HQ")
    return out if out.size else np.zeros(1, dtype=np.float32)


def room_response(rt60: float, sample_rate: int, rng: np.random.Generator, direct: float = 1.0) -> np.ndarray:
    """A synthetic room impulse response: a direct path of amplitude ``direct`` followed by
    exponentially decaying Gaussian noise that falls by 60 dB in ``rt60`` seconds. ``(rt60 * sr,)``."""
    n = max(int(rt60 * sample_rate), 2)
    t = np.arange(n) / sample_rate
    response = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60) * 0.3
    response[0] = direct
    return response


def reverberate(wave: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Convolve ``wave`` ``(T,)`` with ``response``; the tail is kept up to half the response
    length; the result is rescaled to ``wave``'s peak. float32."""
    out = signal.fftconvolve(wave.astype(np.float64), response)[: len(wave) + len(response) // 2]
    peak_in, peak_out = float(np.abs(wave).max()), float(np.abs(out).max())
    return (out * (peak_in / peak_out if peak_out > 0 else 1.0)).astype(np.float32)


def butter2_sos(cutoff_hz: float, sample_rate: int, kind: Literal["lowpass", "highpass"]) -> np.ndarray:
    """The second-order Butterworth section ``scipy.signal.butter(2, cutoff_hz, kind, fs=sample_rate,
    output="sos")`` returns ``(1, 6)``, in closed form (bilinear transform with pre-warping).

    Written out because scipy's general design costs about 1 ms a call, a fifth of a clip's augmentation."""
    k = np.tan(np.pi * cutoff_hz / sample_rate)
    norm = 1.0 / (1.0 + np.sqrt(2.0) * k + k * k)
    b0 = k * k * norm if kind == "lowpass" else norm
    b1 = 2.0 * b0 if kind == "lowpass" else -2.0 * b0
    return np.array([[b0, b1, b0, 1.0, 2.0 * (k * k - 1.0) * norm, (1.0 - np.sqrt(2.0) * k + k * k) * norm]])


def band_limit(wave: np.ndarray, sample_rate: int, low_hz: float | None, high_hz: float | None) -> np.ndarray:
    """A second-order Butterworth high-pass at ``low_hz`` and/or low-pass at ``high_hz`` (Hz): a
    cheap stand-in for another microphone or a phone line. float32 ``(T,)``."""
    out = np.asarray(wave, dtype=np.float64)
    if low_hz:
        out = signal.sosfilt(butter2_sos(low_hz, sample_rate, "highpass"), out)
    if high_hz and high_hz < sample_rate / 2:
        out = signal.sosfilt(butter2_sos(high_hz, sample_rate, "lowpass"), out)
    return out.astype(np.float32)


# Speed factors are drawn on this grid: soxr resamples a ratio of small integers (here n / 200) about 3.5x
# faster than an arbitrary one, the largest cost of a clip's augmentation; Kaldi's recipe uses three factors.
SPEED_STEP = 0.005


class WaveAugment:
    """Random perturbations of one training waveform ``(T,)`` at ``sample_rate`` Hz.

    Applied in this order, each independently: speed change, extra silence around the clip,
    reverberation, band limiting, additive noise (the last, so the noise is not
    reverberated or filtered).

    Args:
        speed: maximum relative speed change (0.1 = factors in [0.9, 1.1], on a 0.5 % grid); 0 = off.
        pad_seconds: up to this much silence (s) added before and after the clip, so trimming
            sees recordings with room around the word (noise, when added, fills it).
        reverb_p: probability of reverberating a clip with a synthetic room response.
        rt60: range of the room's reverberation time (s).
        filter_p: probability of a random high-pass (80-500 Hz) or low-pass (1.5-3.8 kHz, capped
            below Nyquist) filter.
        noise_p: probability of adding noise to a clip.
        snr_db: range of the signal-to-noise ratio (dB, over the whole padded clip), drawn uniformly.
        noise_kinds: kinds drawn from: ``white``, ``pink``, ``brown``, ``babble`` (a sum of
            ``babble_talkers`` other training clips) and ``file`` (a random excerpt of a recording
            under ``noise_dir``: recorded room noise).
        noise_weights: relative probability of each of ``noise_kinds`` (default: equal).
        babble_talkers: clips summed for babble.
        noise_dir: folder of background recordings (any format soundfile reads, searched
            recursively), used by the ``file`` kind; resampled to the model's rate. A relative path
            is taken from the data root (``data.root``) when the data module binds it (:meth:`bind`).
        noise_names: only these recordings (file names without suffix); default all of them.
        noise_subset: only this part of each recording (``train``: its first 70 %, the part
            :func:`spokenword.data.corpora.negatives.stretch` gives training), so that benchmarks can
            test on the rest; default the whole recording.
    """

    def __init__(
        self,
        speed: float = 0.0,
        pad_seconds: float = 0.0,
        reverb_p: float = 0.0,
        rt60: tuple[float, float] = (0.1, 0.5),
        filter_p: float = 0.0,
        noise_p: float = 0.0,
        snr_db: tuple[float, float] = (0.0, 30.0),
        noise_kinds: list[NoiseKind] = ["white", "pink", "brown", "babble"],  # noqa: B006 - never mutated
        noise_weights: list[float] | None = None,
        babble_talkers: int = 3,
        noise_dir: str | None = None,
        noise_names: list[str] | None = None,
        noise_subset: Literal["train", "val", "test"] | None = None,
    ):
        if not 0.0 <= speed < 1.0:
            raise ValueError(f"speed must be in [0, 1), got {speed}")
        for name, value in (("reverb_p", reverb_p), ("filter_p", filter_p), ("noise_p", noise_p)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        if snr_db[0] > snr_db[1] or rt60[0] > rt60[1] or rt60[0] <= 0:
            raise ValueError(f"snr_db and rt60 must be (low, high) ranges with low <= high: {snr_db}, {rt60}")
        unknown = set(noise_kinds) - {"white", "pink", "brown", "babble", "file"}
        if unknown or not noise_kinds:
            raise ValueError(f"noise_kinds must be a non-empty list of white, pink, brown, babble, file; got {noise_kinds}")
        if "file" in noise_kinds and not noise_dir:
            raise ValueError("noise kind 'file' needs noise_dir, a folder of background recordings")
        if noise_weights is not None and (len(noise_weights) != len(noise_kinds) or min(noise_weights) < 0
                                          or sum(noise_weights) <= 0):
            raise ValueError(f"noise_weights must give one non-negative weight per noise kind, got {noise_weights}")
        self.speed = speed
        self.pad_seconds = pad_seconds
        self.reverb_p = reverb_p
        self.rt60 = tuple(rt60)
        self.filter_p = filter_p
        self.noise_p = noise_p
        self.snr_db = tuple(snr_db)
        self.noise_kinds = list(noise_kinds)
        self.noise_weights = None if noise_weights is None else list(noise_weights)
        self.babble_talkers = babble_talkers
        self.noise_dir = noise_dir
        self.noise_names = None if noise_names is None else list(noise_names)
        self.noise_subset = noise_subset
        self._root: Path | None = None
        self._noise_files: list[Path] | None = None
        self._noises: dict[tuple[Path, int], np.ndarray] = {}

    def bind(self, root: Path | str) -> WaveAugment:
        """Take a relative ``noise_dir`` from the data folder ``root``; returns ``self``."""
        self._root, self._noise_files = Path(root), None
        return self

    def noise_files(self) -> list[Path]:
        """Recordings under ``noise_dir`` (listed once, sorted; only ``noise_names`` when given)."""
        if self._noise_files is None:
            from spokenword.data.corpora.base import DatasetError
            from spokenword.data.corpora.folder import AUDIO_SUFFIXES

            given = Path(self.noise_dir or "").expanduser()
            # relative: from the data root; a folder relative to the working directory still works where it exists
            root = given if given.is_absolute() or self._root is None or given.is_dir() and not (self._root / given).is_dir() \
                else self._root / given
            files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES
                           and (self.noise_names is None or p.stem in self.noise_names)) if root.is_dir() else []
            missing = sorted(set(self.noise_names or []) - {p.stem for p in files})
            if not files or missing:
                raise DatasetError(f"noise_dir {root}: " + (f"no recordings named {', '.join(missing)}" if missing
                                                            else "no audio files found")
                                   + "; put the noise recordings there (docs/training.md) or leave 'file' out of noise_kinds")
            self._noise_files = files
        return self._noise_files

    def _recording(self, path: Path, sample_rate: int) -> np.ndarray:
        """A noise recording (its ``noise_subset`` part) at ``sample_rate``, decoded once per process."""
        key = (path, sample_rate)
        if key not in self._noises:
            from spokenword import audio
            from spokenword.data.corpora.negatives import stretch

            wave = audio.load(path, sample_rate, max_seconds=3600.0)  # recordings may be long; a random stretch is used
            self._noises[key] = stretch(wave, self.noise_subset) if self.noise_subset else wave
        return self._noises[key]

    def _file_noise(self, length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        files = self.noise_files()
        noise = self._recording(files[rng.integers(len(files))], sample_rate)
        if len(noise) > length:
            start = int(rng.integers(len(noise) - length + 1))
            noise = noise[start : start + length]
        return noise

    def __call__(
        self,
        wave: np.ndarray,
        sample_rate: int,
        rng: np.random.Generator,
        talkers: Callable[[int], list[np.ndarray]] | None = None,
    ) -> np.ndarray:
        """A perturbed copy of ``wave`` ``(T,)`` (float32; its length may change).

        Args:
            wave: the clip at ``sample_rate`` Hz.
            rng: the source of every random choice.
            talkers: ``talkers(n)`` returns ``n`` other training clips for babble noise; without
                it babble is skipped in favour of the other kinds.
        """
        wave = np.asarray(wave, dtype=np.float32)
        if self.speed > 0:
            factor = round(float(rng.uniform(1 - self.speed, 1 + self.speed)) / SPEED_STEP) * SPEED_STEP
            wave = change_speed(wave, factor, sample_rate)
        if self.pad_seconds > 0:
            before, after = (rng.uniform(0, self.pad_seconds, 2) * sample_rate).astype(int)
            wave = np.pad(wave, (before, after))
        if self.reverb_p > 0 and rng.random() < self.reverb_p:
            response = room_response(float(rng.uniform(*self.rt60)), sample_rate, rng, direct=float(rng.uniform(0.3, 1.0)))
            wave = reverberate(wave, response)
        if self.filter_p > 0 and rng.random() < self.filter_p:
            if rng.random() < 0.5:
                wave = band_limit(wave, sample_rate, float(rng.uniform(80, 500)), None)
            else:
                wave = band_limit(wave, sample_rate, None, float(rng.uniform(1500, min(3800, 0.95 * sample_rate / 2))))
        if self.noise_p > 0 and rng.random() < self.noise_p:
            weights = self.noise_weights or [1.0] * len(self.noise_kinds)
            usable = [(k, w) for k, w in zip(self.noise_kinds, weights) if (k != "babble" or talkers is not None) and w > 0]
            kinds, chances = zip(*usable) if usable else (("white",), (1.0,))
            if self.noise_weights is None:  # equal chances: the draw seeded runs made before weights existed
                kind = kinds[int(rng.integers(len(kinds)))]
            else:
                kind = kinds[int(rng.choice(len(kinds), p=np.asarray(chances) / sum(chances)))]
            if kind == "babble":
                noise = babble(talkers(self.babble_talkers), len(wave))
            elif kind == "file":
                noise = self._file_noise(len(wave), sample_rate, rng)
            else:
                noise = colored_noise(len(wave), kind, rng)
            wave = mix_at_snr(wave, noise, float(rng.uniform(*self.snr_db)))
        return wave
