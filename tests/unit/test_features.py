"""The front end on synthetic signals: shapes, units (Hz, frames, dB), normalisation, the host steps
(trimming, loudest window, training's random window), :class:`FrontEnd` on padded batches and
exported to ONNX."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as tF
import yaml

from spokenword.frontend import graph as F
from spokenword.frontend import host
from spokenword.frontend.graph import FrontEnd, extract, extract_batch, featurize, shift_frames
from spokenword.frontend.settings import RETIRED_CODE, FeatureSettings, window_samples
from tests.conftest import REPO, batch_atol, tone

RATE = 8000


def _wave(seconds=0.6, freq=440.0) -> torch.Tensor:
    return torch.from_numpy(tone(seconds, RATE, freq))


@pytest.mark.parametrize("kind", ["stft", "logmel", "mfcc"])
@pytest.mark.parametrize("time_axis", ["stretch", "fixed"])
def test_extract_shape_for_each_kind_and_time_axis(kind, time_axis):
    settings = FeatureSettings(kind=kind, time_axis=time_axis, n_bins=32, n_frames=40)
    for seconds in (0.0, 0.05, 0.6, 2.0):  # empty, shorter than one FFT, typical, long
        image = extract(_wave(seconds), RATE, settings)
        assert image.shape == settings.shape == (1, 32, 40)
        assert image.dtype == torch.float32 and torch.isfinite(image).all()


def test_reference_image_is_64x64_minmax_scaled():
    image = extract(_wave(), RATE, FeatureSettings())
    assert image.shape == (1, 64, 64)
    assert image.min().item() == pytest.approx(0.0) and image.max().item() == pytest.approx(1.0)


def test_power_spectrogram_shape_and_tone_bin():
    wave = _wave(1.0, freq=1000.0)
    power = F.power_spectrogram(wave, n_fft=256, hop_length=240)
    assert power.shape == (129, 1 + (8000 - 256) // 240) and power.dtype == torch.float32
    peak_hz = power.mean(dim=-1).argmax().item() * RATE / 256
    assert peak_hz == pytest.approx(1000.0, abs=RATE / 256)
    batch = F.power_spectrogram(torch.stack([wave, wave]), 256, 240)
    assert batch.shape == (2, *power.shape)
    assert F.power_spectrogram(wave[:100], 256, 240).shape == (129, 1)  # zero-padded to one frame


def test_stft_image_puts_a_higher_tone_in_a_higher_row():
    settings = FeatureSettings(utterance_norm="none")
    low = extract(_wave(freq=500.0), RATE, settings)[0].mean(dim=-1).argmax().item()
    high = extract(_wave(freq=3000.0), RATE, settings)[0].mean(dim=-1).argmax().item()
    assert low == pytest.approx(500 / 4000 * 64, abs=2) and high == pytest.approx(3000 / 4000 * 64, abs=2)


def test_to_db_units_and_floor():
    assert F.to_db(torch.tensor([1.0, 10.0, 0.0])).tolist() == pytest.approx([0.0, 10.0, -100.0])
    assert host.to_db(np.array([1.0, 10.0, 0.0])).tolist() == pytest.approx([0.0, 10.0, -100.0])


def test_mel_filterbank_shape_and_ordered_peaks():
    bank = F.mel_filterbank(n_fft=256, sample_rate=RATE, n_mels=40)
    assert bank.shape == (40, 129)
    assert bank.min() >= 0 and bank.max() <= 1.0 + 1e-6
    peaks = bank.argmax(dim=-1)
    assert torch.all(peaks[1:] >= peaks[:-1]) and peaks[-1] > peaks[0]
    assert (bank.sum(dim=-1) > 0).all()  # no empty filter at this resolution
    assert F.mel_to_hz(F.hz_to_mel(torch.tensor(1234.0))).item() == pytest.approx(1234.0, rel=1e-5)
    limited = F.mel_filterbank(256, RATE, 20, f_min=300.0, f_max=3400.0)
    freqs = torch.linspace(0, 4000, 129)
    assert limited[:, freqs < 300.0].sum() == 0 and limited[:, freqs > 3400.0].sum() == 0


def test_dct_matrix_is_orthonormal():
    basis = F.dct_matrix(40, 40)
    torch.testing.assert_close(basis @ basis.T, torch.eye(40), atol=1e-5, rtol=0)
    assert F.dct_matrix(13, 40).shape == (13, 40)


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


# -- settings --------------------------------------------------------------------------------------


def test_settings_round_trip_digest_and_validation():
    settings = FeatureSettings(kind="mfcc", n_bins=13)
    assert FeatureSettings.from_dict(settings.to_dict()) == settings
    assert settings.digest(8000) != settings.digest(16000)
    assert settings.digest(8000) != FeatureSettings(kind="mfcc", n_bins=20).digest(8000)
    with pytest.raises(ValueError):
        FeatureSettings(n_fft=4)
    with pytest.raises(ValueError):
        FeatureSettings(kind="stft", n_bins=200, time_axis="fixed")


def test_retired_cepstral_lifter_is_read_when_unused_and_refused_when_used():
    stored = {**FeatureSettings(kind="logmel").to_dict(), "cepstral_lifter": None}  # an older checkpoint's record
    assert FeatureSettings.from_dict(stored) == FeatureSettings(kind="logmel")
    with pytest.raises(ValueError, match=rf"cepstral_lifter=20: cepstral_lifter was retired; .*{RETIRED_CODE}") as err:
        FeatureSettings.from_dict({**stored, "cepstral_lifter": 20})
    assert "\n" not in str(err.value)
    assert "cepstral_lifter" not in FeatureSettings().to_dict()


# -- the tensor pipeline ---------------------------------------------------------------------------


def test_trim_db_setting_trims_before_extracting():
    padded = torch.cat([torch.zeros(8000), _wave(0.5), torch.zeros(8000)])  # 1 s of silence each side

    def silent_columns(settings: FeatureSettings) -> int:
        image = extract(padded, RATE, settings)[0]  # minmax-scaled: digital silence is 0
        return int((image.mean(dim=0) < 0.05).sum())

    assert silent_columns(FeatureSettings()) > 32  # two thirds of the clip is silence
    assert silent_columns(FeatureSettings(trim_db=40.0)) == 0


def _db_mel(wave: torch.Tensor, n_mels: int = 32) -> torch.Tensor:
    """The whole clip's dB mel spectrogram ``(n_mels, F)`` at n_fft 256, hop 80."""
    return F.to_db(F.mel_filterbank(256, RATE, n_mels) @ F.power_spectrogram(wave, 256, 80))


def test_stretch_is_a_bilinear_resize_of_the_db_image():
    wave = _wave(0.9, 300.0) * torch.linspace(0.1, 1.0, 7200)
    settings = FeatureSettings(kind="logmel", hop_length=80, n_bins=32, n_frames=50, utterance_norm="none")
    expected = tF.interpolate(_db_mel(wave)[None, None], size=(32, 50), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(extract(wave, RATE, settings), expected, rtol=0, atol=1e-4)


def test_fixed_time_axis_crops_the_centre_and_pads_with_the_clip_minimum():
    settings = FeatureSettings(kind="logmel", hop_length=80, n_bins=32, n_frames=40, time_axis="fixed", utterance_norm="none")
    long = _wave(1.3, 300.0) * torch.linspace(0.1, 1.0, 10400)
    whole = _db_mel(long)  # (32, 127)
    start = (whole.shape[-1] - 40) // 2
    torch.testing.assert_close(extract(long, RATE, settings)[0], whole[:, start : start + 40], rtol=0, atol=1e-4)
    short = long[:2000]
    part = _db_mel(short)  # (32, 22)
    image = extract(short, RATE, settings)[0]
    left = (40 - part.shape[-1]) // 2
    torch.testing.assert_close(image[:, left : left + part.shape[-1]], part, rtol=0, atol=1e-4)
    pad = torch.cat([image[:, :left], image[:, left + part.shape[-1] :]], dim=-1)
    assert torch.all(pad == part.min())


def test_peak_normalize_makes_extraction_loudness_invariant():
    settings = FeatureSettings(peak_normalize=True, utterance_norm="none")
    quiet, loud = _wave() * 0.01, _wave()
    # equal wherever the power is above float32 rounding noise (-60 dB re full scale)
    torch.testing.assert_close(extract(quiet, RATE, settings).clamp_min(-60), extract(loud, RATE, settings).clamp_min(-60),
                               atol=1e-2, rtol=0)


def test_top_db_limits_the_dynamic_range_below_the_peak():
    wave = torch.cat([_wave(0.3), torch.zeros(2400)])  # -100 dB frames after the tone
    plain = FeatureSettings(utterance_norm="none", time_axis="fixed", hop_length=80, n_bins=129, n_frames=60)  # no resize
    limited = dataclasses.replace(plain, top_db=60.0)
    image, raw = extract(wave, RATE, limited), extract(wave, RATE, plain)
    assert raw.max() - raw.min() > 100.0
    assert image.max() - image.min() <= 60.0 + 1e-4
    torch.testing.assert_close(image, torch.maximum(raw, raw.max() - 60.0), rtol=0, atol=1e-4)


def test_top_db_makes_the_image_robust_to_an_emptied_band_edge():
    """A 44.1 kHz round trip removes the band just below 4 kHz; with a dynamic-range limit the
    near-silent rows no longer set the min-max scale of the whole image."""
    import soxr

    rng = np.random.default_rng(0)
    clip = tone(0.6, RATE, 440.0) + 0.003 * rng.standard_normal(4800).astype(np.float32)
    round_trip = soxr.resample(soxr.resample(clip, RATE, 44100), 44100, RATE)[: len(clip)].astype(np.float32)

    def change(settings: FeatureSettings) -> float:
        a, b = (extract(torch.from_numpy(w), RATE, settings) for w in (clip, round_trip))
        return float((a - b).abs().mean())

    assert change(FeatureSettings(top_db=60.0)) < change(FeatureSettings()) / 3


def test_band_mean_removes_a_fixed_colouring():
    wave = torch.from_numpy(np.random.default_rng(2).standard_normal(6000).astype(np.float32))
    settings = FeatureSettings(kind="logmel", hop_length=80, n_frames=64, time_axis="fixed", band_mean=True, utterance_norm="none")
    image = extract(wave, RATE, settings)[0]
    torch.testing.assert_close(image.mean(dim=-1), torch.zeros(64), atol=1e-4, rtol=0)
    # a gain on the whole clip (a constant in dB on every band) leaves the image unchanged
    torch.testing.assert_close(extract(3 * wave, RATE, settings)[0], image, atol=1e-3, rtol=0)


# -- host steps ------------------------------------------------------------------------------------


def _noisy_word() -> np.ndarray:
    """0.3 s of a windowed tone after 1 s and before 1 s of noise 25 dB below the peak frame."""
    rng = np.random.default_rng(0)
    t = np.arange(2400) / RATE
    word = (0.5 * np.sin(2 * np.pi * 400 * t) * np.hanning(2400)).astype(np.float32)
    wave = np.concatenate([np.zeros(8000, np.float32), word, np.zeros(8000, np.float32)])
    return wave + 0.02 * rng.standard_normal(wave.shape).astype(np.float32)


def test_trim_silence_cuts_silence_around_a_tone():
    silence = np.zeros(4000, np.float32)
    wave = np.concatenate([silence, tone(0.5), silence])  # 0.5 s silence, 0.5 s tone, 0.5 s silence
    trimmed = host.trim_silence(wave, top_db=40.0)
    assert 4000 - 256 <= len(trimmed) <= 4000 + 2 * 256 and trimmed.dtype == np.float32
    assert host.trim_silence(np.zeros(8000), 40.0).shape == (8000,)  # all silent: unchanged
    assert host.trim_silence(tone(0.02), 40.0).shape == (160,)  # shorter than a frame: unchanged
    with pytest.raises(ValueError):
        host.trim_silence(np.zeros((2, 100)), 40.0)


def test_trim_floor_rule_cuts_noise_that_the_peak_rule_keeps():
    wave = _noisy_word()
    peak_only = host.trim_silence(wave, 30.0, 256, 80)
    with_floor = host.trim_silence(wave, 30.0, 256, 80, floor_db=10.0)
    assert peak_only.shape[0] > 15000  # noise 30 dB below the peak frame is "speech" by the peak rule
    assert 1500 < with_floor.shape[0] < 3200  # the word, give or take a frame


def test_loudest_window_finds_an_off_centre_word():
    wave = np.zeros(16000, np.float32)
    wave[1000:3000] = np.sin(np.arange(2000) * 0.3)
    cut = host.loudest_window(wave, 3000, 256, 80)
    assert cut.shape == (3000,)
    assert float(np.abs(cut).sum()) == pytest.approx(float(np.abs(wave[1000:3000]).sum()), rel=0.05)
    assert host.loudest_window(wave[:2000], 3000, 256, 80).shape == (2000,)  # shorter clips are kept whole


def test_host_steps_trim_only_when_configured():
    wave = _noisy_word()
    assert host.host_steps(wave, FeatureSettings()).shape == wave.shape
    trimmed = host.host_steps(wave, FeatureSettings(trim_db=20.0))
    assert 0 < trimmed.shape[0] < wave.shape[0] and trimmed.dtype == np.float32
    # the loudest window needs a fixed time axis
    assert host.host_steps(wave, FeatureSettings(crop_at="loudest")).shape == wave.shape


def test_host_steps_floor_rule_then_loudest_window():
    wave = _noisy_word()
    settings = FeatureSettings(kind="logmel", hop_length=80, n_frames=20, time_axis="fixed", trim_db=40.0,
                               trim_floor_db=8.0, crop_at="loudest")
    got = host.host_steps(wave, settings)
    assert got.shape[0] == window_samples(settings) == 19 * 80 + 256  # the word is longer than the window
    np.testing.assert_array_equal(host.host_steps(wave, settings.to_dict()), got)  # the export's dict: the same
    # the peak rule alone at 40 dB keeps nearly all the noise ...
    assert host.host_steps(wave, dataclasses.replace(settings, trim_floor_db=None, crop_at="centre")).shape[0] > 15000
    # ... the floor rule cuts it, and the window sits on the word's loud middle (samples 8000-10400)
    start = int(np.flatnonzero(wave == got[0])[0])
    assert 8000 + 200 <= start and start + len(got) <= 10400 - 200


def test_random_window_crops_a_long_clip_to_frames_of_its_whole_spectrogram():
    settings = FeatureSettings(kind="logmel", hop_length=80, n_bins=32, n_frames=40, time_axis="fixed", utterance_norm="none")
    wave = tone(1.3, RATE, 300.0) * np.linspace(0.1, 1.0, 10400, dtype=np.float32)
    whole = _db_mel(torch.from_numpy(wave))  # (32, 127)
    room = whole.shape[-1] - 40
    for position in (0.0, 0.3, 1.0):
        samples, shift = host.random_window(wave, settings, position)
        assert shift == 0 and len(samples) == window_samples(settings)
        offset = round(position * room)
        torch.testing.assert_close(featurize([samples], RATE, settings)[0, 0], whole[:, offset : offset + 40], rtol=0, atol=1e-4)


def test_random_window_places_a_short_clip_in_the_window():
    settings = FeatureSettings(kind="logmel", hop_length=80, n_bins=32, n_frames=40, time_axis="fixed", band_mean=True,
                               utterance_norm="standard")
    wave = tone(0.2, RATE, 300.0) * np.hanning(1600).astype(np.float32)
    part = _db_mel(torch.from_numpy(wave))  # (32, 17)
    missing = 40 - part.shape[-1]
    for position in (0.0, 0.5, 1.0):
        samples, shift = host.random_window(wave, settings, position)
        np.testing.assert_array_equal(samples, wave)
        left = round(position * missing)
        expected = tF.pad(part, (left, missing - left), value=float(part.min()))
        expected = F.normalize_utterance(expected - expected.mean(dim=-1, keepdim=True), "standard")
        got = shift_frames(featurize([samples], RATE, settings), [shift])[0, 0]
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    assert host.random_window(wave, FeatureSettings(), 0.7) == (pytest.approx(wave), 0)  # stretched: unchanged


def test_shift_frames_rolls_each_image():
    images = torch.arange(12.0).reshape(2, 1, 1, 6)
    assert shift_frames(images, [1, -2]).flatten().tolist() == [5, 0, 1, 2, 3, 4, 8, 9, 10, 11, 6, 7]


# -- FrontEnd on padded batches, extract_batch, ONNX -----------------------------------------------

#: every kind x time axis, trimming (peak and floor rules), loudest window, peak scaling, dB range, each norm
VARIANTS = {
    "reference": FeatureSettings(),
    "logmel-stretch-top-db": FeatureSettings(kind="logmel", n_bins=40, top_db=60.0),
    "mfcc-stretch": FeatureSettings(kind="mfcc", n_bins=20, n_frames=32),
    "stft-fixed-none": FeatureSettings(time_axis="fixed", n_frames=48, utterance_norm="none"),
    "logmel-fixed-trim": FeatureSettings(kind="logmel", n_bins=40, hop_length=80, n_frames=101, time_axis="fixed",
                                         trim_db=30.0, peak_normalize=True, utterance_norm="standard", top_db=80.0),
    "logmel-fixed-floor-loudest": FeatureSettings(kind="logmel", hop_length=80, n_frames=40, time_axis="fixed",
                                                  trim_db=30.0, trim_floor_db=8.0, crop_at="loudest",
                                                  peak_normalize=True, band_mean=True, utterance_norm="standard"),
    "mfcc-fixed-short": FeatureSettings(kind="mfcc", n_bins=13, hop_length=128, n_frames=20, time_axis="fixed",
                                        f_min=50.0, f_max=3800.0),
    "logmel-512": FeatureSettings(kind="logmel", n_fft=512, hop_length=160, n_frames=64, time_axis="fixed"),
}


def _config_settings() -> dict[str, FeatureSettings]:
    """The feature settings of every config in configs/ (the ones models are trained with)."""
    found = {}
    for path in sorted((REPO / "configs").glob("*.yaml")):
        values = (yaml.safe_load(path.read_text()) or {}).get("data", {}).get("features")
        if isinstance(values, dict):
            found[f"config:{path.stem}"] = FeatureSettings.from_dict(values)
    return found


SETTINGS = {**VARIANTS, **_config_settings()}


def _clips() -> list[np.ndarray]:
    """Speech-like clips of several lengths (one shorter than an FFT window, one long, one silent):
    silence, a windowed tone, silence, plus faint noise."""
    rng = np.random.default_rng(0)
    clips = []
    for seconds, freq in [(0.02, 300.0), (0.31, 700.0), (0.8, 440.0), (1.0, 1200.0), (2.3, 250.0)]:
        wave = tone(seconds, RATE, freq) * np.hanning(int(seconds * RATE)).astype(np.float32)
        wave = np.concatenate([np.zeros(400, np.float32), wave, np.zeros(300, np.float32)])
        clips.append((wave + 1e-3 * rng.standard_normal(wave.shape)).astype(np.float32))
    clips.append(np.zeros(3000, np.float32))
    return clips


CLIPS = _clips()


def _padded(settings: FeatureSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """The clips after the host steps in one zero-padded batch, the first clip's padding not zero
    (samples at or after ``length`` must not matter)."""
    waves = [host.host_steps(w, settings) for w in CLIPS]
    length = torch.tensor([len(w) for w in waves], dtype=torch.int64)
    audio = torch.zeros(len(waves), int(length.max()))
    for row, wave in zip(audio, waves):
        row[: len(wave)] = torch.from_numpy(wave)
    audio[0, length[0]:] = 0.7
    return audio, length


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_front_end_on_a_padded_batch_is_the_front_end_of_each_clip(name):
    settings = SETTINGS[name]
    audio, length = _padded(settings)
    front_end = FrontEnd(settings, RATE)
    with torch.no_grad():
        batch = front_end(audio, length)
        assert batch.shape == (len(CLIPS), *settings.shape) and batch.dtype == torch.float32
        assert torch.isfinite(batch).all()
        for i, row in enumerate(batch):
            alone = front_end(audio[i : i + 1, : length[i]], length[i : i + 1])[0]
            torch.testing.assert_close(row, alone, rtol=0, atol=batch_atol(alone))
            torch.testing.assert_close(row, extract(CLIPS[i], RATE, settings), rtol=0, atol=batch_atol(alone))


def test_extract_batch_is_extract_of_each_clip(monkeypatch):
    settings = VARIANTS["logmel-fixed-floor-loudest"]
    # a noise floor: float32 holds bins within 80 dB of the loudest (graph.power_spectrogram), and a bare tone's are not
    rng = np.random.default_rng(0)
    clips = CLIPS + [tone(0.5, RATE, 300.0 + 40 * k) + 1e-3 * rng.standard_normal(RATE // 2).astype(np.float32)
                     for k in range(9)]
    expected = torch.stack([extract(w, RATE, settings) for w in clips])
    for group_samples in (1, 4000, 2**20):  # one clip per group ... all in one
        monkeypatch.setattr(F, "GROUP_SAMPLES", group_samples)
        got = extract_batch([torch.from_numpy(w) for w in clips], RATE, settings)
        torch.testing.assert_close(got, expected, rtol=0, atol=batch_atol(expected))
    assert extract_batch([], RATE, settings).shape == (0, *settings.shape)


@contextlib.contextmanager
def _quiet():
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("name", ["logmel-fixed-trim", "mfcc-stretch", "logmel-fixed-floor-loudest"])
def test_front_end_exported_to_onnx_is_the_eager_front_end(name, tmp_path: Path):
    import onnxruntime as ort

    settings = SETTINGS[name]
    audio, length = _padded(settings)
    front_end = FrontEnd(settings, RATE).eval()
    path = tmp_path / "front_end.onnx"
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(
            front_end, (audio, length), dynamo=True, opset_version=18, input_names=["audio", "length"],
            output_names=["features"],
            dynamic_shapes=({0: torch.export.Dim("batch"), 1: torch.export.Dim("samples", min=2)}, {0: torch.export.Dim("batch")}),
        )
        expected = front_end(audio, length).numpy()
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"audio": audio.numpy(), "length": length.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=batch_atol(expected))
    single = session.run(None, {"audio": audio[2:3, : length[2]].numpy(), "length": length[2:3].numpy()})[0]  # unpadded, batch 1
    np.testing.assert_allclose(single[0], got[2], rtol=0, atol=batch_atol(got[2]))
