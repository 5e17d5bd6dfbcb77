"""The torch-free numpy front end (spokenword.runtime) and the in-graph export front end
(spokenword.export.FrontEnd, eager and through ONNX Runtime) against spokenword.features.extract."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from spokenword.inference import export
from spokenword.inference import base as runtime
from spokenword.frontend.settings import FeatureSettings
from spokenword.frontend.graph import extract
from tests.conftest import REPO, tone

RATE = 8000
#: settings beyond the configs: every kind x time axis, trimming, peak scaling, dB range limit, each norm
VARIANTS = {
    "reference": FeatureSettings(),
    "logmel-stretch": FeatureSettings(kind="logmel", n_bins=40),
    "mfcc-stretch": FeatureSettings(kind="mfcc", n_bins=20, n_frames=32),
    "stft-fixed-none": FeatureSettings(time_axis="fixed", n_frames=48, utterance_norm="none"),
    "logmel-fixed-trim": FeatureSettings(kind="logmel", n_bins=40, hop_length=80, n_frames=101, time_axis="fixed",
                                         trim_db=30.0, peak_normalize=True, utterance_norm="standard",
                                         **({"top_db": 80.0} if "top_db" in {f.name for f in dataclasses.fields(FeatureSettings)} else {})),
    "logmel-fixed-floor-loudest": FeatureSettings(kind="logmel", hop_length=80, n_frames=40, time_axis="fixed",
                                                  trim_db=30.0, trim_floor_db=8.0, crop_at="loudest",
                                                  peak_normalize=True, band_mean=True, utterance_norm="standard"),
    "stft-stretch-band-mean": FeatureSettings(band_mean=True),
    "logmel-fixed-liftered": FeatureSettings(kind="logmel", hop_length=80, n_frames=40, time_axis="fixed", trim_db=30.0,
                                             cepstral_lifter=20, band_mean=True, utterance_norm="standard"),
    "mfcc-fixed-short": FeatureSettings(kind="mfcc", n_bins=13, hop_length=128, n_frames=20, time_axis="fixed",
                                        f_min=50.0, f_max=3800.0),
}


def _config_settings() -> dict[str, FeatureSettings]:
    """The feature settings of every config in configs/ (the ones models are trained with)."""
    found = {}
    for path in sorted((REPO / "configs").glob("*.yaml")):
        values = (yaml.safe_load(path.read_text()) or {}).get("data", {}).get("features")
        if isinstance(values, dict):
            found[f"config:{path.stem}"] = FeatureSettings(**values)
    return found


SETTINGS = {**VARIANTS, **_config_settings()}


def _clips() -> list[np.ndarray]:
    """Speech-like test clips: silence + a chirp-ish burst + noise, of several lengths (samples),
    including one shorter than an FFT window and one very long."""
    rng = np.random.default_rng(0)
    clips = []
    for seconds, freq in [(0.02, 300.0), (0.31, 700.0), (0.8, 440.0), (1.0, 1200.0), (2.3, 250.0)]:
        wave = tone(seconds, RATE, freq) * np.hanning(int(seconds * RATE)).astype(np.float32)
        wave = np.concatenate([np.zeros(400, np.float32), wave, np.zeros(300, np.float32)])
        clips.append((wave + 1e-3 * rng.standard_normal(wave.shape)).astype(np.float32))
    return clips


CLIPS = _clips()


def _tolerance(reference: np.ndarray) -> float:
    """The PyTorch reference runs its STFT in float32, the numpy and export front ends in float64:
    they differ by ~1e-4 of the image's range (up to ~0.2 dB in near-silent bins)."""
    return 1e-3 * max(1.0, float(np.abs(reference).max()))


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_numpy_front_end_matches_torch(name):
    settings = SETTINGS[name]
    for wave in CLIPS:
        expected = extract(torch.from_numpy(wave), RATE, settings).numpy()
        got = runtime.extract(wave, RATE, settings.to_dict())
        assert got.shape == expected.shape == settings.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=0, atol=_tolerance(expected))


def _graph_input(settings: FeatureSettings):
    """The clips after the host-side steps, zero-padded into one batch (the export's padding rule)."""
    waves = [runtime.host_steps(w, settings.to_dict()) for w in CLIPS]
    audio, length = runtime.pad_batch(waves)
    audio[0, length[0]:] = 0.7  # padding content must not matter: samples past `length` are masked
    return audio, length


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_export_front_end_on_a_padded_batch_matches_per_clip_extract(name):
    settings = SETTINGS[name]
    audio, length = _graph_input(settings)
    with torch.no_grad():
        batch = export.FrontEnd(settings, RATE)(torch.from_numpy(audio), torch.from_numpy(length)).numpy()
    for row, wave in zip(batch, CLIPS):
        expected = extract(torch.from_numpy(wave), RATE, settings).numpy()
        np.testing.assert_allclose(row, expected, rtol=0, atol=_tolerance(expected))
        # both float64 STFTs: the numpy reference and the graph agree to float32 rounding
        exact = runtime.extract(wave, RATE, settings.to_dict())
        np.testing.assert_allclose(row, exact, rtol=0, atol=2e-4 * max(1.0, float(np.abs(exact).max())))  # float32 mel matmul rounding


class _FeaturesOnly(torch.nn.Module):
    def __init__(self, settings):
        super().__init__()
        self.front_end = export.FrontEnd(settings, RATE)

    def forward(self, audio, length):
        return self.front_end(audio, length)


@pytest.mark.parametrize("name", ["logmel-fixed-trim", "mfcc-stretch", "stft-fixed-none", "logmel-fixed-floor-loudest"])
def test_front_end_in_onnx_runtime_matches_torch(name, tmp_path):
    """The reference settings are covered end to end by tests/integration/test_export.py."""
    import onnxruntime as ort

    settings = SETTINGS[name]
    audio, length = _graph_input(settings)
    path = tmp_path / "front_end.onnx"
    with export._quiet(), torch.no_grad():
        program = torch.onnx.export(
            _FeaturesOnly(settings), (torch.from_numpy(audio), torch.from_numpy(length)), dynamo=True,
            opset_version=export.ONNX_OPSET, input_names=["audio", "length"], output_names=["features"],
            dynamic_shapes=({0: torch.export.Dim("batch"), 1: torch.export.Dim("samples", min=2)}, {0: torch.export.Dim("batch")}),
        )
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"audio": audio, "length": length})[0]
    single = session.run(None, {"audio": audio[2:3, : length[2]], "length": length[2:3]})[0]  # unpadded, batch 1
    for row, wave in zip(got, CLIPS):
        expected = extract(torch.from_numpy(wave), RATE, settings).numpy()
        np.testing.assert_allclose(row, expected, rtol=0, atol=_tolerance(expected))
    np.testing.assert_allclose(single[0], got[2], rtol=0, atol=1e-5 * max(1.0, float(np.abs(got[2]).max())))


def test_pad_batch_is_the_documented_padding_rule():
    audio, length = runtime.pad_batch([np.ones(3, np.float32), np.full(5, 2.0, np.float32)])
    assert audio.dtype == np.float32 and length.dtype == np.int64
    np.testing.assert_array_equal(length, [3, 5])
    np.testing.assert_array_equal(audio, [[1, 1, 1, 0, 0], [2, 2, 2, 2, 2]])


def test_host_steps_trim_only_when_configured():
    wave = CLIPS[3]
    assert runtime.host_steps(wave, FeatureSettings().to_dict()).shape == wave.shape
    trimmed = runtime.host_steps(wave, FeatureSettings(trim_db=30.0).to_dict())
    assert 0 < trimmed.shape[0] < wave.shape[0]


def test_host_steps_floor_rule_and_loudest_window_match_torch():
    from spokenword.frontend import graph as features

    rng = np.random.default_rng(3)
    word = tone(0.3, RATE, 500.0) * np.hanning(int(0.3 * RATE)).astype(np.float32)
    noisy = np.concatenate([np.zeros(6000, np.float32), word, np.zeros(2000, np.float32)])
    noisy += 0.02 * rng.standard_normal(noisy.shape).astype(np.float32)  # ~25 dB below the word's peak frame
    settings = FeatureSettings(kind="logmel", hop_length=80, n_frames=40, time_axis="fixed", trim_db=40.0,
                               trim_floor_db=8.0, crop_at="loudest")
    got = runtime.host_steps(noisy, settings.to_dict())
    expected = features.locate_speech(torch.from_numpy(noisy), settings).numpy()
    np.testing.assert_array_equal(got, expected)
    # the noise is cut away (the peak rule alone at 40 dB keeps nearly all of it) ...
    assert runtime.host_steps(noisy, dataclasses.replace(settings, trim_floor_db=None, crop_at="centre").to_dict()).shape[0] > 9000
    assert got.shape[0] <= features.window_samples(settings)
    # ... and what is left is the word: it starts within a frame of 6000 samples
    start = int(np.flatnonzero(np.isin(noisy, got[:8]))[0])
    assert 6000 - 2 * settings.n_fft <= start <= 6000 + settings.n_fft


def test_onnx_classifier_rejects_files_that_are_not_exports(tmp_path: Path):
    missing = tmp_path / "missing.onnx"
    with pytest.raises(runtime.ExportError, match="no such model file"):
        runtime.OnnxClassifier(missing)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(runtime.ExportError, match="not a loadable ONNX model"):
        runtime.OnnxClassifier(junk)
