"""Waveform augmentation: each perturbation does what it says, on synthetic signals."""

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from spokenword.data import wave_augment
from spokenword.data.datamodule import AugmentedRecordings
from spokenword.data.wave_augment import (SPEED_STEP, WaveAugment, band_limit, babble, butter2_sos, change_speed, colored_noise,
                                          mix_at_snr, reverberate, room_response)
from spokenword.frontend.settings import FeatureSettings

SR = 8000


def tone(freq=440.0, seconds=0.5, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def power_db(x):
    return 10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2))


def test_mixing_at_a_given_snr():
    rng = np.random.default_rng(0)
    clean = np.sin(np.linspace(0, 200, 4000)).astype(np.float32)
    noisy = mix_at_snr(clean, rng.standard_normal(4000), 10.0)
    assert power_db(clean) - power_db(noisy - clean) == pytest.approx(10.0, abs=0.01)
    # a short noise is tiled to the clip's length
    assert mix_at_snr(clean, rng.standard_normal(100), 0.0).shape == clean.shape


@pytest.mark.parametrize("kind, slope", [("white", 0.0), ("pink", -10.0), ("brown", -20.0)])
def test_colored_noise_falls_by_10_db_per_decade_per_power_of_f(kind, slope):
    noise = colored_noise(2**16, kind, np.random.default_rng(1))
    power = np.abs(np.fft.rfft(noise)) ** 2
    f = np.arange(len(power))
    low, high = power[(f > 100) & (f < 200)].mean(), power[(f > 1000) & (f < 2000)].mean()
    assert 10 * np.log10(high / low) == pytest.approx(slope, abs=1.5)


def test_babble_sums_unit_power_talkers():
    clips = [tone(300), 3 * tone(700, seconds=0.1)]
    out = babble(clips, 4000)
    assert out.shape == (4000,)
    expected = np.resize(tone(300), 4000) / np.sqrt(np.mean(tone(300) ** 2).astype(np.float64))
    expected += np.resize(tone(700, 0.1), 4000) / np.sqrt(np.mean(tone(700, 0.1) ** 2).astype(np.float64))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_speed_change_scales_length_and_frequency():
    fast = change_speed(tone(500, seconds=1.0), 1.25, SR)
    assert len(fast) == pytest.approx(SR / 1.25, abs=2)
    peak_hz = np.argmax(np.abs(np.fft.rfft(fast))) * SR / len(fast)
    assert peak_hz == pytest.approx(625, abs=3)
    assert change_speed(tone(), 1.0, SR) is not None


def test_reverberation_adds_a_decaying_tail_and_keeps_the_peak():
    rng = np.random.default_rng(2)
    click = np.zeros(SR // 2, np.float32)
    click[100] = 0.8
    response = room_response(0.3, SR, rng)
    assert len(response) == int(0.3 * SR)
    out = reverberate(click, response)
    assert len(out) == len(click) + len(response) // 2
    assert np.abs(out).max() == pytest.approx(0.8, rel=1e-4)
    early, late = out[150:650], out[1800:2300]
    assert power_db(early) - power_db(late) > 20  # ~40 dB expected over 0.16 s of a 0.3 s RT60


def test_band_limit_removes_what_is_outside_the_band():
    mixture = tone(100) + tone(3000)
    low_cut = band_limit(mixture, SR, 1000, None)
    spectrum = np.abs(np.fft.rfft(low_cut))
    f = np.fft.rfftfreq(len(low_cut), 1 / SR)
    assert spectrum[np.argmin(np.abs(f - 100))] < 0.05 * spectrum[np.argmin(np.abs(f - 3000))]
    high_cut = band_limit(mixture, SR, None, 1000)
    spectrum = np.abs(np.fft.rfft(high_cut))
    assert spectrum[np.argmin(np.abs(f - 3000))] < 0.05 * spectrum[np.argmin(np.abs(f - 100))]


@pytest.mark.parametrize("kind", ["lowpass", "highpass"])
@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_closed_form_filter_is_scipy_s_butterworth_section(kind, rate):
    for cutoff in (80.0, 137.5, 500.0, 1500.0, 2999.0, 3800.0):
        np.testing.assert_allclose(butter2_sos(cutoff, rate, kind), signal.butter(2, cutoff, kind, fs=rate, output="sos"),
                                   rtol=0, atol=1e-12)


def test_speed_factors_are_drawn_on_the_grid_across_the_whole_range(monkeypatch):
    drawn = []
    monkeypatch.setattr(wave_augment, "change_speed", lambda wave, factor, rate: drawn.append(factor) or wave)
    aug = WaveAugment(speed=0.1)
    rng = np.random.default_rng(0)
    for _ in range(400):
        aug(tone(), SR, rng)
    steps = np.asarray(drawn) / SPEED_STEP
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)
    assert min(drawn) == pytest.approx(0.9) and max(drawn) == pytest.approx(1.1)  # both ends reached
    assert len(set(np.round(steps).astype(int))) == 41  # every factor of the grid, none outside


def test_wave_augment_is_reproducible_and_applies_its_noise_at_the_drawn_snr():
    clean = tone()
    aug = WaveAugment(noise_p=1.0, snr_db=(10.0, 10.0), noise_kinds=["white"])
    a = aug(clean, SR, np.random.default_rng(5))
    b = aug(clean, SR, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert power_db(clean) - power_db(a - clean) == pytest.approx(10.0, abs=0.05)
    assert a.dtype == np.float32


def test_wave_augment_padding_and_speed_change_the_length():
    clean = tone(seconds=0.5)
    padded = WaveAugment(pad_seconds=0.25)(clean, SR, np.random.default_rng(0))
    assert len(clean) <= len(padded) <= len(clean) + 2 * 0.25 * SR
    lengths = {len(WaveAugment(speed=0.2)(clean, SR, np.random.default_rng(s))) for s in range(5)}
    assert len(lengths) > 1 and all(0.8 * len(clean) - 2 <= n <= len(clean) / 0.8 + 2 for n in lengths)


def test_babble_uses_the_talkers_given_and_falls_back_without_them():
    calls = []

    def talkers(n):
        calls.append(n)
        return [tone(300), tone(600), tone(900)][:n]

    aug = WaveAugment(noise_p=1.0, noise_kinds=["babble"], babble_talkers=2, snr_db=(0, 0))
    out = aug(tone(), SR, np.random.default_rng(0), talkers=talkers)
    assert calls == [2] and not np.allclose(out, tone())
    # without a source of talkers, babble gives way to white noise rather than failing
    assert not np.allclose(aug(tone(), SR, np.random.default_rng(0)), tone())


def test_file_noise_reads_the_noise_folder(tmp_path):
    sf.write(tmp_path / "hum.wav", tone(50, seconds=2.0, sr=16000), 16000)
    aug = WaveAugment(noise_p=1.0, noise_kinds=["file"], noise_dir=str(tmp_path), snr_db=(0, 0))
    out = aug(tone(1000), SR, np.random.default_rng(0))
    spectrum = np.abs(np.fft.rfft(out - tone(1000)))
    f = np.fft.rfftfreq(len(out), 1 / SR)
    assert f[np.argmax(spectrum)] == pytest.approx(50, abs=3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"speed": 1.5}, "speed"),
        ({"noise_p": 2.0}, "noise_p"),
        ({"snr_db": (20, 10)}, "ranges"),
        ({"noise_kinds": ["rain"]}, "noise_kinds"),
        ({"noise_kinds": ["file"]}, "noise_dir"),
    ],
)
def test_wave_augment_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WaveAugment(**kwargs)


def test_augmented_recordings_make_fresh_reproducible_batches(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        wave = np.concatenate([np.zeros(800), tone(300 + 200 * i, 0.3), np.zeros(800)]).astype(np.float32)
        sf.write(tmp_path / f"{i}.wav", wave + 0.001 * rng.standard_normal(len(wave)).astype(np.float32), SR)
        paths.append(tmp_path / f"{i}.wav")
    settings = FeatureSettings(kind="logmel", hop_length=80, time_axis="fixed", trim_db=30.0, utterance_norm="standard")
    data = AugmentedRecordings(paths, torch.arange(4), SR, settings, WaveAugment(noise_p=1.0, snr_db=(5, 20)), random_crop=True)
    torch.manual_seed(0)
    x1, y1 = data.__getitems__([0, 1, 2, 3])
    x2, _ = data.__getitems__([0, 1, 2, 3])
    torch.manual_seed(0)
    x3, _ = data.__getitems__([0, 1, 2, 3])
    assert x1.shape == (4, *settings.shape) and y1.tolist() == [0, 1, 2, 3]
    assert torch.isfinite(x1).all()
    assert not torch.equal(x1, x2)  # fresh perturbations on every visit
    assert torch.equal(x1, x3)  # ... drawn from torch's seeded generator
    clean = AugmentedRecordings(paths, torch.arange(4), SR, settings, None, random_crop=False)
    from spokenword.frontend.graph import extract
    import spokenword.audio as audio

    expected = extract(torch.from_numpy(audio.load(paths[2], SR)), SR, settings)
    assert torch.equal(clean[2][0], expected)  # without augmentation: exactly the inference features


def test_augmented_recordings_cache_decoded_waves_within_budget(tmp_path, monkeypatch):
    import spokenword.audio as audio

    paths = []
    for i in range(3):
        sf.write(tmp_path / f"{i}.wav", tone(300 + 200 * i, 0.3).astype(np.float32), SR)
        paths.append(tmp_path / f"{i}.wav")
    settings = FeatureSettings(kind="logmel", hop_length=80, time_axis="fixed", trim_db=30.0, utterance_norm="standard")
    augment = WaveAugment(speed=0.1, noise_p=1.0, snr_db=(5, 20))
    reads = []
    real_load = audio.load
    monkeypatch.setattr(audio, "load", lambda path, rate: reads.append(path) or real_load(path, rate))
    cached = AugmentedRecordings(paths, torch.arange(3), SR, settings, augment, random_crop=True)
    uncached = AugmentedRecordings(paths, torch.arange(3), SR, settings, augment, random_crop=True, wave_cache_mb=0)
    batches = {}
    for name, data in (("cached", cached), ("uncached", uncached)):
        torch.manual_seed(0)
        reads.clear()
        batches[name] = [data.__getitems__([0, 1, 2])[0] for _ in range(3)]
        batches[name + " reads"] = len([p for p in reads if p == paths[0]])
    assert batches["cached reads"] == 1  # decoded once, then served from memory
    assert batches["uncached reads"] >= 3  # budget 0: every visit reads the file
    for a, b in zip(batches["cached"], batches["uncached"]):
        assert torch.equal(a, b)  # the cache changes nothing in the batches
    wave = cached._wave(0)
    wave[:] = 0.0  # a caller changing its copy ...
    assert np.abs(cached._wave(0)).max() > 0.1  # ... leaves the cached recording intact
    small = AugmentedRecordings(paths, torch.arange(3), SR, settings, None, False, wave_cache_mb=1.5 * 2400 * 4 / 2**20)
    for i in range(3):
        small._wave(i)
    assert len(small._waves) == 1  # past the budget, recordings are not kept
