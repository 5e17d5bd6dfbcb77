"""audio.read / prepare / load on synthetic files: formats, channels, resampling and errors."""

from __future__ import annotations

import numpy as np
import pytest

from spokenword import audio
from spokenword.audio import AudioError
from tests.conftest import tone, write_wav


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize(("subtype", "tolerance"), [("PCM_16", 1 / 2**15), ("PCM_24", 1 / 2**23), ("PCM_32", 1 / 2**31), ("FLOAT", 0.0)])
def test_load_reads_each_sample_format_as_float32_in_unit_range(tmp_path, subtype, tolerance):
    samples = tone(0.25, 8000, 300.0, amplitude=0.9)
    path = write_wav(tmp_path / f"{subtype}.wav", samples, 8000, subtype=subtype)
    wave = audio.load(path, 8000)
    assert wave.dtype == np.float32 and wave.shape == samples.shape
    np.testing.assert_allclose(wave, samples, atol=tolerance + 1e-7)


def test_load_averages_stereo_channels(tmp_path):
    left, right = tone(0.2, 8000, 300.0, 0.6), tone(0.2, 8000, 500.0, 0.2)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    np.testing.assert_allclose(audio.load(path, 8000), (left + right) / 2, atol=1e-6)


def test_resampling_44k1_to_8k_keeps_a_tones_frequency(tmp_path):
    path = write_wav(tmp_path / "cd.wav", tone(1.0, 44100, 440.0), 44100)
    wave = audio.load(path, 8000)
    assert abs(len(wave) - 8000) <= 1
    assert abs(_peak_hz(wave, 8000) - 440.0) <= 2.0
    assert 0.4 < np.abs(wave[1000:-1000]).max() < 0.6  # amplitude preserved (0.5)


def test_prepare_scales_integer_arrays_and_averages_channels():
    ints = np.array([[-32768, 32767], [16384, -16384]], dtype=np.int16)
    out = audio.prepare(ints, 8000, 8000)
    np.testing.assert_allclose(out, [(-1.0 + 32767 / 32768) / 2, 0.0], atol=1e-6)
    assert out.dtype == np.float32 and out.ndim == 1


def test_prepare_upsamples_to_the_target_rate():
    out = audio.prepare(tone(0.5, 4000, 300.0), 4000, 8000)
    assert abs(len(out) - 4000) <= 1 and abs(_peak_hz(out, 8000) - 300.0) <= 2.0


@pytest.mark.parametrize(
    ("samples", "rate", "problem"),
    [
        (np.zeros(0, np.float32), 8000, "no samples"),
        (np.array([0.0, np.nan], np.float32), 8000, "NaN"),
        (np.zeros(100, np.float32), 100, "sample rate"),
        (np.zeros((2, 2, 2), np.float32), 8000, "1-D or 2-D"),
    ],
)
def test_prepare_rejects_unusable_arrays(samples, rate, problem):
    with pytest.raises(AudioError, match=problem) as info:
        audio.prepare(samples, rate, 8000, source="clip.wav")
    assert str(info.value).startswith("clip.wav: ")


def _empty(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    return path


def _corrupt(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x00not really a wave file" * 10)
    return path


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_empty, "empty"),
        (_corrupt, "not a readable audio file"),
        (lambda tmp: tmp / "missing.wav", "no such file"),
        (lambda tmp: tmp, "is a directory"),
    ],
    ids=["empty", "corrupt", "missing", "directory"],
)
def test_bad_files_raise_one_line_audio_error_naming_the_file(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(AudioError) as info:
        audio.load(path, 8000)
    message = str(info.value)
    assert str(path) in message and problem in message and "\n" not in message


def test_bytes_and_file_objects_load_like_paths(tmp_path):
    path = write_wav(tmp_path / "a.wav", tone(0.2), 8000)
    expected = audio.load(path, 8000)
    np.testing.assert_array_equal(audio.load(path.read_bytes(), 8000), expected)
    with open(path, "rb") as handle:
        np.testing.assert_array_equal(audio.load(handle, 8000), expected)
    with pytest.raises(AudioError, match="empty"):
        audio.load(b"", 8000)


def test_max_seconds_rejects_long_clips_from_the_header(tmp_path):
    path = write_wav(tmp_path / "long.wav", tone(2.0), 8000)
    with pytest.raises(AudioError, match="limit is 1 s"):
        audio.load(path, 8000, max_seconds=1.0)
