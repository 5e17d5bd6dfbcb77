"""The voice-activity segmenter on synthetic signals with known word boundaries."""

import numpy as np
import pytest

from spokenword.segment import StreamingSegmenter, VadSettings, segments

RATE = 8000


def burst(seconds: float, freq: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def with_noise(x: np.ndarray, rms: float = 1e-3, seed: int = 0) -> np.ndarray:
    return x + np.random.default_rng(seed).normal(0, rms, len(x)).astype(np.float32)


def bounds(found):
    return [(s.start / RATE, s.stop / RATE) for s in found]


def test_tone_bursts_found_at_their_boundaries():
    x = with_noise(np.concatenate([silence(0.4), burst(0.3), silence(0.3), burst(0.25, 700), silence(0.4)]))
    found = segments(x, RATE)
    assert len(found) == 2
    pad = VadSettings().pad_ms / 1000
    for (start, stop), (true_start, true_stop) in zip(bounds(found), [(0.4, 0.7), (1.0, 1.25)]):
        assert start == pytest.approx(true_start - pad, abs=0.03)
        assert stop == pytest.approx(true_stop + pad, abs=0.03)
    # each segment carries its own samples
    assert all(len(s.samples) == s.stop - s.start for s in found)


def test_silence_and_stationary_noise_give_no_segment():
    assert segments(silence(2.0), RATE) == []
    assert segments(np.random.default_rng(1).normal(0, 0.05, 3 * RATE).astype(np.float32), RATE) == []


def test_gap_of_50ms_splits_and_20ms_does_not():
    split = with_noise(np.concatenate([silence(0.3), burst(0.25), silence(0.05), burst(0.25), silence(0.3)]))
    joined = with_noise(np.concatenate([silence(0.3), burst(0.25), silence(0.02), burst(0.25), silence(0.3)]))
    assert len(segments(split, RATE)) == 2
    assert len(segments(joined, RATE)) == 1


def test_clicks_shorter_than_a_word_are_dropped():
    x = with_noise(np.concatenate([silence(0.5), burst(0.03), silence(0.5)]))
    assert segments(x, RATE) == []


def test_word_at_the_very_start_and_end_of_the_stream():
    x = with_noise(np.concatenate([burst(0.3), silence(0.4), burst(0.3)]))
    found = segments(x, RATE)
    assert len(found) == 2
    assert found[0].start == 0 and found[-1].stop == len(x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_in_random_blocks_equals_whole_signal(seed):
    rng = np.random.default_rng(seed)
    pieces = [silence(0.2)]
    for _ in range(5):
        pieces += [burst(rng.uniform(0.15, 0.4), rng.uniform(200, 900)), silence(rng.uniform(0.06, 0.5))]
    x = with_noise(np.concatenate(pieces), seed=seed)
    whole = segments(x, RATE)
    stream = StreamingSegmenter(RATE)
    found, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 2000))
        found += list(stream.feed(x[i : i + n]))
        i += n
    found += list(stream.flush())
    assert [(s.start, s.stop) for s in found] == [(s.start, s.stop) for s in whole]
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(found, whole))
    assert len(whole) == 5


def test_memory_stays_bounded_on_a_long_stream():
    stream = StreamingSegmenter(RATE)
    block = with_noise(np.concatenate([silence(0.5), burst(0.3), silence(0.2)]))
    count = 0
    for _ in range(200):  # 200 s of audio
        count += len(list(stream.feed(block)))
    assert count >= 199
    assert len(stream._buffer) < 2 * RATE
