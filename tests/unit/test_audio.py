"""audio.read / prepare / load on synthetic files: formats, channels, resampling and errors."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

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
    with pytest.raises(audio.TooLongError, match="2.0 s long .as its header states., over the 1 s limit") as info:
        audio.load(path, 8000, max_seconds=1.0)
    assert info.value.seconds == pytest.approx(2.0) and info.value.limit == 1.0
    assert "--max-seconds" in str(info.value) and "\n" not in str(info.value)


# -- bounded decoding (issue 34) -------------------------------------------------------------------
def _flac(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def _unknown_length(flac: bytes) -> bytes:
    """The FLAC with STREAMINFO's 36-bit total-samples field zeroed ("unknown", as streaming
    encoders leave it): libsndfile then reports 2**63 - 1 frames."""
    data = bytearray(flac)
    data[21] &= 0xF0
    data[22:26] = bytes(4)
    return bytes(data)


def test_a_flac_of_unknown_length_decodes_like_the_same_flac_with_its_length(tmp_path):
    flac = _flac(tone(0.6, 8000, 300.0), 8000)
    unknown = _unknown_length(flac)
    assert sf.info(io.BytesIO(unknown)).frames == 2**63 - 1
    path = tmp_path / "streamed.flac"
    path.write_bytes(unknown)
    expected = audio.load(flac, 8000)
    np.testing.assert_array_equal(audio.load(path, 8000), expected)
    np.testing.assert_array_equal(audio.load(unknown, 16000), audio.load(flac, 16000))
    samples, rate = audio.read(unknown)
    assert rate == 8000 and samples.shape == (len(expected), 1)


def test_a_file_of_unknown_length_stops_at_the_limit_with_bounded_memory():
    """A "decompression bomb": 11 minutes of silence at 48 kHz in 98 kB, its length unknown. Decoding
    stops just past the 600 s default; the memory it takes is about the 600 s kept at 8 kHz (19 MB),
    not the 11 minutes at 48 kHz (127 MB) nor their 2**63 - 1 declared frames."""
    bomb = _unknown_length(_flac(np.zeros(660 * 48_000, np.float32), 48_000))
    tracemalloc.start()
    try:
        with pytest.raises(audio.TooLongError, match="longer than the 600 s limit") as info:
            audio.load(bomb, 8000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.seconds is None and info.value.limit == audio.DEFAULT_MAX_SECONDS
    assert peak < 30e6, f"{peak / 1e6:.1f} MB traced"


def test_the_default_limit_is_600_s_and_a_larger_one_can_be_asked_for():
    over = _flac(np.zeros(601 * 1000, np.float32), 1000)  # 601 s at 1 kHz: 2 kB
    with pytest.raises(audio.TooLongError, match="601.0 s long"):
        audio.load(over, 1000)
    assert len(audio.load(over, 1000, max_seconds=602)) == 601 * 1000
    with pytest.raises(audio.TooLongError, match="longer than the 600 s limit"):
        audio.load(_unknown_length(over), 1000)
    assert len(audio.load(_unknown_length(over), 1000, max_seconds=700)) == 601 * 1000
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="max_seconds must be a positive"):
            audio.load(over, 1000, max_seconds=bad)


def test_stream_reads_bounded_blocks_and_read_is_their_concatenation(tmp_path):
    samples = np.stack([tone(3.0, 44_100, 300.0), tone(3.0, 44_100, 500.0)], axis=1)
    path = write_wav(tmp_path / "stereo.wav", samples, 44_100, subtype="FLOAT")
    blocks = list(audio.stream(path))
    assert all(block.dtype == np.float32 and block.size <= audio.BLOCK_SAMPLES for block, _ in blocks)
    assert {rate for _, rate in blocks} == {44_100} and len(blocks) > 1
    whole, rate = audio.read(path)
    np.testing.assert_array_equal(whole, np.concatenate([block for block, _ in blocks]))
    np.testing.assert_allclose(whole, samples, atol=1e-7)
    assert [len(b) for b, _ in audio.stream(path, block_seconds=1.0)][:2] == [44_100, 44_100]


def test_load_resamples_block_by_block_exactly_as_prepare_does_at_once(tmp_path):
    samples = np.stack([tone(4.0, 44_100, 300.0), tone(4.0, 44_100, 700.0, 0.2)], axis=1)
    path = write_wav(tmp_path / "cd.wav", samples, 44_100, subtype="PCM_24")
    decoded, rate = sf.read(path, dtype="float32", always_2d=True)
    np.testing.assert_array_equal(audio.load(path, 8000), audio.prepare(decoded, rate, 8000))


@pytest.mark.parametrize(("channels", "problem"), [(65, "65 channels; 1 to 64")])
def test_too_many_channels_are_refused(tmp_path, channels, problem):
    path = write_wav(tmp_path / "many.wav", np.zeros((100, channels), np.float32), 8000, subtype="PCM_16")
    with pytest.raises(AudioError, match=problem):
        audio.load(path, 8000)


@pytest.mark.parametrize(("field", "offset", "value", "problem"), [
    ("rate", 24, 0, "not a readable audio file"),
    ("rate", 24, 999, "sample rate 999 Hz is outside"),
    ("rate", 24, 2**32 - 1, "not a readable audio file"),
    ("channels", 22, 0, "not a readable audio file"),
    ("data size", 40, 0, "contains no samples"),
])
def test_absurd_header_fields_are_one_line_errors(field, offset, value, problem):
    data = bytearray(io.BytesIO(_wav(tone(0.2))).getvalue())
    data[offset:offset + (4 if field != "channels" else 2)] = value.to_bytes(4 if field != "channels" else 2, "little")
    with pytest.raises(AudioError, match=problem) as info:
        audio.load(bytes(data), 8000)
    assert "\n" not in str(info.value) and "Error opening" not in str(info.value)


def _wav(samples: np.ndarray, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.mark.parametrize("data", [b"\0", b"fLaC", b"OggS" + bytes(40), b"RIFF\xff\xff\xff\xffWAVEfmt ", bytes(range(256)) * 4],
                         ids=["one-byte", "flac-magic", "ogg-page", "riff-header", "byte-ramp"])
def test_bytes_that_are_not_audio_are_one_line_errors(data):
    with pytest.raises(AudioError) as info:
        audio.load(data, 8000)
    assert str(info.value).startswith(f"<{len(data)} bytes>: ") and "\n" not in str(info.value)


def test_corrupt_bytes_never_print_a_callback_traceback(capfd):
    """A truncated AIFF makes libsndfile seek before the start of an in-memory file; soundfile's C
    callback would print "Exception ignored ... Traceback" for it."""
    buffer = io.BytesIO()
    sf.write(buffer, tone(0.2), 8000, format="AIFF", subtype="PCM_16")
    for cut in (27, 44):
        with pytest.raises(AudioError):
            audio.load(buffer.getvalue()[:cut], 8000)
    assert "Traceback" not in capfd.readouterr().err
