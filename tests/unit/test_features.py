"""Feature functions on synthetic signals: shapes, units (Hz, frames) and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spokenword.frontend import graph as F
from spokenword.frontend.settings import FeatureSettings
from spokenword.frontend.graph import extract
from tests.conftest import tone


def _wave(seconds=0.6, freq=440.0) -> torch.Tensor:
    return torch.from_numpy(tone(seconds, 8000, freq))


@pytest.mark.parametrize("kind", ["stft", "logmel", "mfcc"])
@pytest.mark.parametrize("time_axis", ["stretch", "fixed"])
def test_extract_shape_for_each_kind_and_time_axis(kind, time_axis):
    settings = FeatureSettings(kind=kind, time_axis=time_axis, n_bins=32, n_frames=40)
    for seconds in (0.05, 0.6, 2.0):  # shorter than one FFT, typical, long
        image = extract(_wave(seconds), 8000, settings)
        assert image.shape == settings.shape == (1, 32, 40)
        assert image.dtype == torch.float32 and torch.isfinite(image).all()


def test_reference_image_is_64x64_minmax_scaled():
    image = extract(_wave(), 8000, FeatureSettings())
    assert image.shape == (1, 64, 64)
    assert image.min().item() == pytest.approx(0.0) and image.max().item() == pytest.approx(1.0)


def test_power_spectrogram_shape_and_tone_bin():
    wave = _wave(1.0, freq=1000.0)
    power = F.power_spectrogram(wave, n_fft=256, hop_length=240)
    assert power.shape == (129, 1 + (8000 - 256) // 240)
    peak_hz = power.mean(dim=-1).argmax().item() * 8000 / 256
    assert peak_hz == pytest.approx(1000.0, abs=8000 / 256)
    batch = F.power_spectrogram(torch.stack([wave, wave]), 256, 240)
    assert batch.shape == (2, *power.shape)


def test_stft_image_puts_a_higher_tone_in_a_higher_row():
    settings = FeatureSettings(utterance_norm="none")
    low = extract(_wave(freq=500.0), 8000, settings)[0].mean(dim=-1).argmax().item()
    high = extract(_wave(freq=3000.0), 8000, settings)[0].mean(dim=-1).argmax().item()
    assert low == pytest.approx(500 / 4000 * 64, abs=2) and high == pytest.approx(3000 / 4000 * 64, abs=2)


def test_to_db_units_and_floor():
    assert F.to_db(torch.tensor([1.0, 10.0, 0.0])).tolist() == pytest.approx([0.0, 10.0, -100.0])


def test_mel_filterbank_shape_and_ordered_peaks():
    bank = F.mel_filterbank(n_fft=256, sample_rate=8000, n_mels=40)
    assert bank.shape == (40, 129)
    assert bank.min() >= 0 and bank.max() <= 1.0 + 1e-6
    peaks = bank.argmax(dim=-1)
    assert torch.all(peaks[1:] >= peaks[:-1]) and peaks[-1] > peaks[0]
    assert (bank.sum(dim=-1) > 0).all()  # no empty filter at this resolution
    assert F.mel_to_hz(F.hz_to_mel(torch.tensor(1234.0))).item() == pytest.approx(1234.0, rel=1e-5)
    limited = F.mel_filterbank(256, 8000, 20, f_min=300.0, f_max=3400.0)
    freqs = torch.linspace(0, 4000, 129)
    assert limited[:, freqs < 300.0].sum() == 0 and limited[:, freqs > 3400.0].sum() == 0


def test_dct_matrix_is_orthonormal():
    basis = F.dct_matrix(40, 40)
    torch.testing.assert_close(basis @ basis.T, torch.eye(40), atol=1e-5, rtol=0)
    assert F.dct_matrix(13, 40).shape == (13, 40)


def test_trim_silence_cuts_silence_around_a_tone():
    silence = torch.zeros(4000)
    wave = torch.cat([silence, _wave(0.5), silence])  # 0.5 s silence, 0.5 s tone, 0.5 s silence
    trimmed = F.trim_silence(wave, top_db=40.0)
    assert 4000 - 256 <= len(trimmed) <= 4000 + 2 * 256
    assert F.trim_silence(torch.zeros(8000), 40.0).shape == (8000,)  # all silent: unchanged
    with pytest.raises(ValueError):
        F.trim_silence(torch.zeros(2, 100), 40.0)


def test_trim_db_setting_trims_before_extracting():
    padded = torch.cat([torch.zeros(8000), _wave(0.5), torch.zeros(8000)])  # 1 s of silence each side

    def silent_columns(settings: FeatureSettings) -> int:
        image = extract(padded, 8000, settings)[0]  # minmax-scaled: digital silence is 0
        return int((image.mean(dim=0) < 0.05).sum())

    assert silent_columns(FeatureSettings()) > 32  # two thirds of the clip is silence
    assert silent_columns(FeatureSettings(trim_db=40.0)) == 0


def test_fix_frames_crops_centre_and_pads_with_the_minimum():
    spec = torch.arange(10.0).reshape(1, 10)
    assert F.fix_frames(spec, 4).tolist() == [[3.0, 4.0, 5.0, 6.0]]
    assert F.fix_frames(spec, 4, offset=0).tolist() == [[0.0, 1.0, 2.0, 3.0]]
    padded = F.fix_frames(spec + 1, 14)
    assert padded.shape == (1, 14) and padded[0, :2].tolist() == [1.0, 1.0] and padded[0, 2].item() == 1.0
    assert F.fix_frames(spec, 10) is spec


def test_resize_changes_the_last_two_axes():
    assert F.resize(torch.rand(3, 129, 20), 64, 64).shape == (3, 64, 64)


def test_utterance_normalisations():
    image = torch.randn(2, 1, 8, 8) * 5 + 3
    minmax = F.normalize_utterance(image, "minmax")
    assert minmax.amin(dim=(-2, -1)).allclose(torch.zeros(2, 1)) and minmax.amax(dim=(-2, -1)).allclose(torch.ones(2, 1))
    standard = F.normalize_utterance(image, "standard")
    assert standard.mean(dim=(-2, -1)).abs().max() < 1e-5
    assert standard.std(dim=(-2, -1), unbiased=False).allclose(torch.ones(2, 1), atol=1e-4)
    assert F.normalize_utterance(image, "none") is image
    assert torch.isfinite(F.normalize_utterance(torch.zeros(1, 4, 4), "minmax")).all()  # constant input
    with pytest.raises(ValueError, match="utterance_norm"):
        F.normalize_utterance(image, "bogus")


def test_settings_round_trip_digest_and_validation():
    settings = FeatureSettings(kind="mfcc", n_bins=13)
    assert FeatureSettings.from_dict(settings.to_dict()) == settings
    assert settings.digest(8000) != settings.digest(16000)
    assert settings.digest(8000) != FeatureSettings(kind="mfcc", n_bins=20).digest(8000)
    with pytest.raises(ValueError):
        FeatureSettings(n_fft=4)
    with pytest.raises(ValueError):
        FeatureSettings(kind="stft", n_bins=200, time_axis="fixed")


def test_peak_normalize_makes_extraction_loudness_invariant():
    settings = FeatureSettings(peak_normalize=True, utterance_norm="none")
    quiet, loud = _wave() * 0.01, _wave()
    # equal wherever the power is above float32 rounding noise (-60 dB re full scale)
    torch.testing.assert_close(extract(quiet, 8000, settings).clamp_min(-60), extract(loud, 8000, settings).clamp_min(-60),
                               atol=1e-2, rtol=0)
    extractor = F.FeatureExtractor(FeatureSettings(), 8000)
    assert extractor(loud).shape == (1, 64, 64)
    np.testing.assert_array_equal(extractor(loud).numpy(), extract(loud, 8000, FeatureSettings()).numpy())


def test_top_db_limits_the_dynamic_range_below_the_peak():
    db = torch.tensor([[[10.0, -20.0], [-95.0, 0.0]]])
    assert F.limit_range(db, 60.0).tolist() == [[[10.0, -20.0], [-50.0, 0.0]]]
    image = extract(_wave(), 8000, FeatureSettings(top_db=60.0, utterance_norm="none", time_axis="fixed"))
    assert image.max() - image.min() <= 60.0 + 1e-4


def test_top_db_makes_the_image_robust_to_an_emptied_band_edge():
    """A 44.1 kHz round trip removes the band just below 4 kHz; with a dynamic-range limit the
    near-silent rows no longer set the min-max scale of the whole image."""
    import soxr

    rng = np.random.default_rng(0)
    clip = tone(0.6, 8000, 440.0) + 0.003 * rng.standard_normal(4800).astype(np.float32)
    round_trip = soxr.resample(soxr.resample(clip, 8000, 44100), 44100, 8000)[: len(clip)].astype(np.float32)

    def change(settings: FeatureSettings) -> float:
        a, b = (extract(torch.from_numpy(w), 8000, settings) for w in (clip, round_trip))
        return float((a - b).abs().mean())

    assert change(FeatureSettings(top_db=60.0)) < change(FeatureSettings()) / 3


def test_trim_floor_rule_cuts_noise_that_the_peak_rule_keeps():
    from spokenword.frontend.graph import trim_silence

    rng = np.random.default_rng(0)
    t = np.arange(2400) / 8000
    word = (0.5 * np.sin(2 * np.pi * 400 * t) * np.hanning(2400)).astype(np.float32)
    wave = np.concatenate([np.zeros(8000, np.float32), word, np.zeros(8000, np.float32)])
    wave = torch.from_numpy(wave + 0.02 * rng.standard_normal(wave.shape).astype(np.float32))  # 25 dB below the peak frame
    peak_only = trim_silence(wave, 30.0, 256, 80)
    with_floor = trim_silence(wave, 30.0, 256, 80, floor_db=10.0)
    assert peak_only.shape[0] > 15000  # noise 30 dB below the peak frame is "speech" by the peak rule
    assert 1500 < with_floor.shape[0] < 3200  # the word, give or take a frame


def test_loudest_window_finds_an_off_centre_word():
    from spokenword.frontend.graph import loudest_window

    wave = torch.zeros(16000)
    wave[1000:3000] = torch.sin(torch.arange(2000) * 0.3)
    cut = loudest_window(wave, 3000, 256, 80)
    assert cut.shape == (3000,)
    assert float(cut.abs().sum()) == pytest.approx(float(wave[1000:3000].abs().sum()), rel=0.05)
    assert loudest_window(wave[:2000], 3000, 256, 80).shape == (2000,)  # shorter clips are kept whole


def test_crop_places_the_window():
    settings = FeatureSettings(kind="logmel", hop_length=80, n_frames=20, time_axis="fixed", utterance_norm="none")
    wave = torch.from_numpy(np.random.default_rng(1).standard_normal(8000).astype(np.float32))
    first, last = extract(wave, 8000, settings, crop=0.0), extract(wave, 8000, settings, crop=1.0)
    full = extract(wave, 8000, FeatureSettings(kind="logmel", hop_length=80, n_frames=97, time_axis="fixed", utterance_norm="none"))
    torch.testing.assert_close(first[..., :20], full[..., :20])
    torch.testing.assert_close(last[..., -20:], full[..., -20:])


def test_band_mean_removes_a_fixed_colouring():
    wave = torch.from_numpy(np.random.default_rng(2).standard_normal(6000).astype(np.float32))
    settings = FeatureSettings(kind="logmel", hop_length=80, n_frames=64, time_axis="fixed", band_mean=True, utterance_norm="none")
    image = extract(wave, 8000, settings)[0]
    torch.testing.assert_close(image.mean(dim=-1), torch.zeros(64), atol=1e-4, rtol=0)
    # a gain on the whole clip (a constant in dB on every band) leaves the image unchanged
    torch.testing.assert_close(extract(3 * wave, 8000, settings)[0], image, atol=1e-3, rtol=0)


@pytest.mark.parametrize("crop", [None, 0.0, 0.3, 1.0])
def test_a_cropped_clip_is_the_crop_of_its_whole_spectrogram(crop):
    # extract() computes only the frames a fixed time axis keeps (kept_samples): the same values
    # as the whole clip's log-mel spectrogram cropped afterwards
    settings = FeatureSettings(kind="logmel", n_fft=256, hop_length=80, n_bins=32, n_frames=40, time_axis="fixed",
                               utterance_norm="none")
    wave = torch.from_numpy(tone(1.3, 8000, 300.0)) * torch.linspace(0.1, 1.0, 10400)
    bank = F.mel_filterbank(256, 8000, 32, 0.0, None)
    whole = F.to_db(bank @ F.power_spectrogram(wave, 256, 80))  # (32, 127)
    room = whole.shape[-1] - 40
    expected = F.fix_frames(whole, 40, None if crop is None else round(crop * room))
    torch.testing.assert_close(extract(wave, 8000, settings, crop)[0], expected, rtol=0, atol=1e-4)
    span = F.kept_samples(len(wave), settings, None if crop is None else round(crop * room))
    assert span.stop - span.start == F.window_samples(settings) == 39 * 80 + 256
    # nothing to skip when the clip fits, the axis is stretched or top_db looks at every frame
    assert F.kept_samples(F.window_samples(settings), settings) is None
    assert F.kept_samples(len(wave), FeatureSettings(time_axis="stretch")) is None
    assert F.kept_samples(len(wave), FeatureSettings(time_axis="fixed", hop_length=80, top_db=80.0)) is None


def test_cepstral_lifter_keeps_the_envelope_and_drops_the_pitch_harmonics():
    bands = torch.arange(64, dtype=torch.float32)
    envelope = 20.0 * torch.exp(-((bands - 20.0) / 12.0) ** 2)  # a formant-like bump over ~24 bands
    harmonics = 6.0 * torch.cos(2 * torch.pi * bands / 3.0)  # ripple every 3 bands, as a voice's pitch
    lifter = F.lifter_matrix(20, 64)
    assert lifter.shape == (64, 64)
    torch.testing.assert_close(lifter @ lifter, lifter, atol=1e-5, rtol=0)  # a projection: twice = once
    assert (lifter @ envelope - envelope).abs().max() < 0.2  # the bump is kept
    assert (lifter @ harmonics).norm() < 0.15 * harmonics.norm()  # the ripple is (all but its edges) gone
    torch.testing.assert_close(F.lifter_matrix(64, 64), torch.eye(64), atol=1e-5, rtol=0)  # every coefficient: no change


def test_cepstral_lifter_in_extract_is_the_liftered_log_mel_image():
    wave = torch.from_numpy(tone(0.7, 8000, 180.0)) * torch.hann_window(5600)
    plain = FeatureSettings(kind="logmel", hop_length=80, n_frames=64, time_axis="fixed", utterance_norm="none")
    liftered = FeatureSettings(**{**plain.to_dict(), "cepstral_lifter": 20})
    torch.testing.assert_close(extract(wave, 8000, liftered)[0], F.lifter_matrix(20, 64) @ extract(wave, 8000, plain)[0],
                               atol=1e-3, rtol=0)
    assert liftered.digest(8000) != plain.digest(8000)  # another cache entry


@pytest.mark.parametrize("values, message", [
    ({"kind": "stft", "cepstral_lifter": 20}, "needs kind='logmel'"),
    ({"kind": "mfcc", "cepstral_lifter": 20}, "needs kind='logmel'"),
    ({"kind": "logmel", "cepstral_lifter": 0}, "1..n_bins"),
    ({"kind": "logmel", "n_bins": 40, "cepstral_lifter": 41}, "1..n_bins"),
])
def test_cepstral_lifter_settings_that_cannot_work_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        FeatureSettings(**values)
