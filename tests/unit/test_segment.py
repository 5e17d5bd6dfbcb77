"""The voice-activity segmenter on synthetic signals with known word boundaries."""

import numpy as np
import pytest

from scipy import signal

from spokenword.transcribe.segment import StreamingSegmenter, VadSettings, segments, split_points

#: these tests are about the band-energy detector (tone bursts are not speech to the learned one)
ENERGY = VadSettings(speech=False)

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
    found = segments(x, RATE, ENERGY)
    assert len(found) == 2
    pad = VadSettings().pad_ms / 1000
    for segment, (start, stop), (true_start, true_stop) in zip(found, bounds(found), [(0.4, 0.7), (1.0, 1.25)]):
        assert start == pytest.approx(true_start - pad, abs=0.03)
        # the end may run a few frames late: the word goes on while the level is 1 dB above the
        # mean noise level (chosen on the dev set), which noise alone reaches now and then
        assert true_stop + pad - 0.01 <= stop <= true_stop + pad + 0.1
        speech_start, speech_stop = segment.speech
        assert speech_start / RATE == pytest.approx(true_start, abs=0.03)
        assert true_stop <= speech_stop / RATE <= true_stop + 0.1
        assert (segment.start, segment.stop) == (speech_start - VadSettings().pad_ms / 1000 * RATE, speech_stop + pad * RATE)
    # each segment carries its own samples
    assert all(len(s.samples) == s.stop - s.start for s in found)


def test_silence_and_stationary_noise_give_no_segment():
    assert segments(silence(2.0), RATE, ENERGY) == []
    assert segments(np.random.default_rng(1).normal(0, 0.05, 3 * RATE).astype(np.float32), RATE) == []


def test_gap_of_50ms_splits_and_20ms_does_not():
    split = with_noise(np.concatenate([silence(0.3), burst(0.25), silence(0.05), burst(0.25), silence(0.3)]))
    joined = with_noise(np.concatenate([silence(0.3), burst(0.25), silence(0.02), burst(0.25), silence(0.3)]))
    assert len(segments(split, RATE, ENERGY)) == 2
    assert len(segments(joined, RATE, ENERGY)) == 1


def test_clicks_shorter_than_a_word_are_dropped():
    x = with_noise(np.concatenate([silence(0.5), burst(0.03), silence(0.5)]))
    assert segments(x, RATE, ENERGY) == []


def test_word_at_the_very_start_and_end_of_the_stream():
    x = with_noise(np.concatenate([burst(0.3), silence(0.4), burst(0.3)]))
    found = segments(x, RATE, ENERGY)
    assert len(found) == 2
    # the noise floor is known from the first frames on (look-ahead), so the first word starts at once
    assert found[0].start <= 0.01 * RATE and found[-1].stop == len(x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_in_random_blocks_equals_whole_signal(seed):
    rng = np.random.default_rng(seed)
    pieces = [silence(0.2)]
    for _ in range(5):
        pieces += [burst(rng.uniform(0.15, 0.4), rng.uniform(200, 900)), silence(rng.uniform(0.06, 0.5))]
    x = with_noise(np.concatenate(pieces), seed=seed)
    whole = segments(x, RATE, ENERGY)
    stream = StreamingSegmenter(RATE, ENERGY)
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
    stream = StreamingSegmenter(RATE, ENERGY)
    block = with_noise(np.concatenate([silence(0.5), burst(0.3), silence(0.2)]))
    count = 0
    for _ in range(200):  # 200 s of audio
        count += len(list(stream.feed(block)))
    assert count >= 199
    assert len(stream._buffer) < 2 * RATE


def covers(segment, start: float, stop: float) -> bool:
    """The segment's speech region overlaps ``[start, stop)`` (s) by at least 80% of it."""
    a, b = segment.speech
    return min(b / RATE, stop) - max(a / RATE, start) >= 0.8 * (stop - start)


def test_noise_estimate_is_the_mean_noise_power_per_bin():
    sigma = 0.01
    x = np.concatenate([silence(2.0), burst(0.3), silence(1.0)])
    x = x + np.random.default_rng(4).normal(0, sigma, len(x)).astype(np.float32)
    (found,) = segments(x, RATE, ENERGY)
    stream = StreamingSegmenter(RATE, ENERGY)
    expected = sigma**2 * np.sum(stream.window**2)  # E|rfft(w * white)|^2
    assert found.noise.shape == (stream.frame // 2 + 1,) and found.n_fft == stream.frame
    assert np.median(found.noise[1:-1]) == pytest.approx(expected, rel=0.15)


@pytest.mark.parametrize("snr_db", [20.0, 10.0])
def test_bursts_in_white_noise(snr_db):
    """Three bursts in white noise whose power is ``snr_db`` below theirs: three segments, each on
    its burst, none on the noise alone (noise-adaptive threshold: the same settings as in silence)."""
    amplitude = 0.1
    rms = np.sqrt(amplitude**2 / 2 / 10 ** (snr_db / 10))
    places = [(0.5, 0.8), (1.2, 1.45), (1.55, 1.9)]  # the last gap is 100 ms
    x = np.concatenate([silence(0.5), burst(0.3, 300, amplitude), silence(0.4), burst(0.25, 900, amplitude),
                        silence(0.1), burst(0.35, 500, amplitude), silence(1.0)])
    found = segments(with_noise(x, rms, seed=int(snr_db)), RATE, ENERGY)
    assert len(found) == 3
    assert all(covers(segment, *place) for segment, place in zip(found, places))


def test_bursts_in_low_frequency_noise_after_a_level_change():
    """Brown-ish noise (most power at low frequencies) that gets 10 dB louder: the floor follows, so
    the noise alone gives no word, and the bursts after the change are still found."""
    rng = np.random.default_rng(5)
    noise = signal.lfilter([1.0], [1.0, -0.95], rng.normal(0, 1, 12 * RATE)).astype(np.float32)
    noise *= 0.003 / noise.std()
    noise[4 * RATE :] *= np.sqrt(10.0)
    x = noise.copy()
    places = [(2.0, 2.3), (9.0, 9.3), (10.0, 10.25)]
    for (start, stop), freq in zip(places, (600, 800, 1000)):
        x[int(start * RATE) : int(start * RATE) + int((stop - start) * RATE)] += burst(stop - start, freq, 0.05)
    found = segments(x, RATE, ENERGY)
    assert all(any(covers(segment, *place) for segment in found) for place in places)
    # at the step itself the louder noise can pass for speech until the floor has caught up (~1 s)
    assert all(segment.speech_start / RATE < 5.5 or any(covers(segment, *p) for p in places) for segment in found)
    assert len(found) <= len(places) + 1


def test_split_points_at_the_dip_between_two_words():
    # a 15 ms pause is too short to end a word: one region, whose level dips between the bursts
    x = with_noise(np.concatenate([silence(0.3), burst(0.4, 500), silence(0.015), burst(0.4, 800), silence(0.3)]))
    (found,) = segments(x, RATE, ENERGY)
    points = split_points(found, min_part=int(0.1 * RATE))
    assert points and abs(points[0] / RATE - 0.7075) < 0.015
    # a steady burst has no dip; parts shorter than min_part are not proposed
    (steady,) = segments(with_noise(np.concatenate([silence(0.3), burst(0.8), silence(0.3)])), RATE, ENERGY)
    assert split_points(steady, min_part=int(0.1 * RATE)) == []
    assert split_points(found, min_part=int(0.45 * RATE)) == []


def test_region_of_a_segment():
    x = with_noise(np.concatenate([silence(0.3), burst(0.4, 500), silence(0.015), burst(0.4, 800), silence(0.3)]))
    (found,) = segments(x, RATE, ENERGY)
    cut = int(0.7075 * RATE)
    left = found.region(found.speech[0], cut, pad=320)
    assert left.speech == (found.speech[0], cut) and left.start == found.start and left.stop == cut + 320
    assert np.array_equal(left.samples, x[left.start : left.stop])
    assert left.noise is found.noise and len(left.levels) < len(found.levels)


@pytest.mark.parametrize("lookahead_ms", [0.0, 300.0])
@pytest.mark.parametrize("samples", [256, 300, 4000])
def test_a_stream_of_a_frame_or_without_lookahead_has_a_noise_floor(lookahead_ms, samples):
    """The noise floor of a stream's first frame comes from that frame when no other is known yet."""
    rng = np.random.default_rng(0)
    segmenter = StreamingSegmenter(8000, VadSettings(speech=False, lookahead_ms=lookahead_ms))
    found = list(segmenter.feed((0.01 * rng.standard_normal(samples)).astype(np.float32))) + list(segmenter.flush())
    assert found == []  # steady faint noise: no word, and no error


def test_the_word_in_progress_reports_the_speech_it_has_so_far():
    """``word_speech`` is 0 between words, grows with a word being spoken (never beyond what has been
    decided) and is at most the speech of the word as it is finally given out."""
    x = with_noise(np.concatenate([silence(0.4), burst(0.5), silence(0.4)]))
    segmenter = StreamingSegmenter(RATE, VadSettings(speech=False, lookahead_ms=50.0))
    step, seen, found = int(0.02 * RATE), [], []
    for at in range(0, len(x), step):
        found += list(segmenter.feed(x[at : at + step]))
        seen.append((segmenter.word_speech, segmenter.position))
    (word,) = found
    assert seen[5][0] == 0  # 0.12 s: before the word
    during = [speech for speech, position in seen if 0.6 * RATE < position < 0.85 * RATE]
    assert during and all(b >= a for a, b in zip(during, during[1:])) and during[-1] > 0.35 * RATE
    assert max(speech for speech, _ in seen) <= word.speech[1] - word.speech[0]
    assert seen[-1][0] == 0  # after it
