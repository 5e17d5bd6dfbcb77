"""How the transcriber turns detected regions into words, with a stand-in classifier that knows
three tones: joining fragments, splitting run-together words, noise suppression, streaming."""

import numpy as np
import pytest

from spokenword.transcribe.decode import Transcriber, WordSettings, noise_spectrum, suppress_noise
from spokenword.transcribe.segment import VadSettings

#: tone bursts stand in for words: the band-energy detector alone (the learned one hears no speech in them)
ENERGY = VadSettings(speech=False)

RATE = 8000
TONES = {"a": 440.0, "b": 700.0, "c": 1100.0}


class ToneClassifier:
    """Scores each label by its tone's share of the clip's energy (the interface of
    :class:`spokenword.inference.checkpoint.Classifier` that the transcriber uses)."""

    sample_rate = RATE
    labels = list(TONES)

    def __init__(self):
        self.calls = 0

    def __call__(self, source, top_k=None):
        samples, rate = source
        assert rate == RATE
        self.calls += 1
        samples = np.asarray(samples, dtype=np.float64)
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
        freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
        energy = np.array([spectrum[np.abs(freqs - f) < 40].sum() for f in TONES.values()]) + 1e-12
        probs = energy / energy.sum()
        ranked = sorted(({"label": k, "score": float(p)} for k, p in zip(TONES, probs)), key=lambda r: -r["score"])
        return ranked if top_k is None else ranked[:top_k]


def tone(label: str, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * TONES[label] * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def noisy(x: np.ndarray, rms: float = 1e-3, seed: int = 0) -> np.ndarray:
    return (x + np.random.default_rng(seed).normal(0, rms, len(x))).astype(np.float32)


def transcribe(x, **settings):
    return Transcriber(ToneClassifier(), vad=ENERGY, threshold=0.0, words=WordSettings(**settings)).transcribe_samples(x, RATE)


def test_each_burst_is_a_word_at_its_place():
    x = noisy(np.concatenate([silence(0.3), tone("a", 0.3), silence(0.2), tone("c", 0.25), silence(0.3),
                              tone("b", 0.35), silence(0.3)]))
    result = transcribe(x)
    assert result.text == "acb"
    for word, (start, end) in zip(result.words, [(0.3, 0.6), (0.8, 1.05), (1.35, 1.7)]):
        assert start - 0.08 <= word.start <= start and end <= word.end <= end + 0.12
        assert word.score > 0.9 and not word.uncertain


def test_weak_fragment_after_a_word_is_joined_to_it():
    # "a" with a weak tail 60 ms after it (as the release of a final stop): two detected regions
    x = noisy(np.concatenate([silence(0.3), tone("a", 0.25), silence(0.06), tone("a", 0.12, 0.05), silence(0.5),
                              tone("b", 0.3), silence(0.3)]))
    assert transcribe(x, merge_gap_ms=0).text == "aab"  # without joining: three words
    result = transcribe(x)
    assert result.text == "ab"
    assert result.words[0].end >= 0.3 + 0.25 + 0.06 + 0.12  # the joined word covers the fragment


def test_the_model_keeps_two_short_words_apart():
    # a short "b" 60 ms after "a": a candidate for joining, but the model is less sure of the joined
    # clip (a mixture: about 0.8 "a") than of both parts (each about 1.0), so they stay two words
    x = noisy(np.concatenate([silence(0.3), tone("a", 0.25), silence(0.06), tone("b", 0.15), silence(0.4)]))
    assert transcribe(x, merge_bias=0.0).text == "ab"
    # a bias so large that the model is ignored joins them
    assert len(transcribe(x, merge_bias=5.0).words) == 1


def test_words_run_together_are_split_at_the_dip():
    # a 15 ms dip is too short for the detector (one region of 1 s); the model is sure of each half
    x = noisy(np.concatenate([silence(0.3), tone("a", 0.5), silence(0.015), tone("c", 0.5), silence(0.4)]))
    assert transcribe(x, split_ms=100000).text in ("a", "c")
    result = transcribe(x)
    assert result.text == "ac"
    assert result.words[0].start < result.words[1].start


def test_a_long_single_word_is_not_split():
    x = noisy(np.concatenate([silence(0.3), tone("b", 0.6), tone("b", 0.5, 0.15), silence(0.4)]))
    assert transcribe(x).text == "b"


def test_low_scores_are_marked():
    x = noisy(np.concatenate([silence(0.3), tone("a", 0.3) + tone("b", 0.3), silence(0.3)]))
    result = Transcriber(ToneClassifier(), vad=ENERGY, threshold=0.7).transcribe_samples(x, RATE)
    assert result.text == "?" and result.words[0].uncertain and result.words[0].label in ("a", "b")


def test_noise_suppression_removes_noise_and_keeps_the_tone():
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 0.05, 2 * RATE)
    x = noise.copy()
    x[RATE:] += tone("b", 1.0, 0.3)
    n_fft = 256
    window = np.hanning(n_fft + 1)[:-1]
    out = suppress_noise(x, np.full(n_fft // 2 + 1, 0.05**2 * np.sum(window**2)), n_fft, 4.0, 0.01)
    assert out.shape == x.shape
    noise_drop = 10 * np.log10(np.mean(out[1000:7000] ** 2) / np.mean(x[1000:7000] ** 2))
    assert noise_drop < -15
    clean = tone("b", 1.0, 0.3)[1000:7000]
    error = out[RATE + 1000 : RATE + 7000] - clean
    assert 10 * np.log10(np.mean(error**2) / np.mean(clean**2)) < -15  # the tone comes through
    # nothing to subtract: unchanged
    assert np.array_equal(suppress_noise(x, np.zeros(n_fft // 2 + 1), n_fft, 4.0, 0.01), x.astype(np.float32))


def test_noise_spectrum_between_frame_sizes():
    white = np.full(81, 3.0)  # 160-sample frames
    converted = noise_spectrum(white, 160, 256)
    energy = lambda n: np.sum((np.hanning(n + 1)[:-1]) ** 2)  # noqa: E731
    assert converted.shape == (129,)
    assert converted == pytest.approx(3.0 * energy(256) / energy(160), rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_stream_in_random_blocks_gives_the_same_words(seed):
    rng = np.random.default_rng(seed)
    pieces = [silence(0.2)]
    for _ in range(6):
        label = "abc"[int(rng.integers(3))]
        pieces += [tone(label, rng.uniform(0.15, 0.4)), silence(rng.uniform(0.05, 0.4))]
        if rng.random() < 0.5:  # a weak tail now and then
            pieces += [tone(label, 0.1, 0.04), silence(rng.uniform(0.2, 0.4))]
    x = noisy(np.concatenate(pieces), seed=seed)
    transcriber = Transcriber(ToneClassifier(), vad=ENERGY, threshold=0.0)
    whole = transcriber.transcribe_samples(x, RATE).words
    stream = transcriber.stream()
    words, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 3000))
        words += list(stream.feed(x[i : i + n]))
        i += n
    words += list(stream.flush())
    assert words == whole
    assert len(whole) >= 6


def test_stream_memory_stays_bounded():
    stream = Transcriber(ToneClassifier(), vad=ENERGY, threshold=0.0).stream()
    block = noisy(np.concatenate([silence(0.5), tone("a", 0.3), silence(0.06), tone("a", 0.1, 0.05), silence(0.3)]))
    count = 0
    for _ in range(150):  # 190 s
        count += len(list(stream.feed(block)))
        assert len(stream._audio) < 3 * RATE and len(stream.segmenter._buffer) < 3 * RATE
    assert count >= 149


def test_a_train_of_short_bursts_is_not_joined_without_end():
    """Short bursts 100 ms apart (a ticking noise) are all candidates for joining: joined words
    stop growing at ``max_word_s``, so memory stays bounded and words keep coming out."""
    transcriber = Transcriber(ToneClassifier(), vad=ENERGY, threshold=0.0)
    stream = transcriber.stream()
    tick = noisy(np.concatenate([tone("c", 0.12), silence(0.1)]))
    words = []
    for _ in range(300):  # 66 s
        words += list(stream.feed(tick))
        assert len(stream._audio) < 4 * RATE
    words += list(stream.flush())
    assert len(words) >= 20
    assert all(w.end - w.start <= transcriber.vad.max_word_s + 0.2 for w in words)


def test_a_word_followed_closely_by_another_is_given_out_while_the_next_is_spoken():
    """"a", 60 ms of pause, then a 0.5 s "c": the pause is within merge_gap_ms, but neither word is a
    fragment, so "a" is given out once "c" has more speech than a fragment, long before "c" ends; the words
    are those of the whole recording. With the live path's short look-ahead (50 ms)."""
    x = noisy(np.concatenate([silence(0.3), tone("a", 0.3), silence(0.06), tone("c", 0.5), silence(0.4)]))
    transcriber = Transcriber(ToneClassifier(), vad=VadSettings(speech=False, lookahead_ms=50.0), threshold=0.0)
    stream = transcriber.stream()
    step, given = int(0.02 * RATE), []
    for at in range(0, len(x), step):
        given += [(w.label, (at + step) / RATE) for w in stream.feed(x[at : at + step])]
    given += [(w.label, len(x) / RATE) for w in stream.flush()]
    assert [label for label, _ in given] == ["a", "c"]
    assert [w.label for w in transcriber.transcribe_samples(x, RATE).words] == ["a", "c"]
    c_starts, c_ends = 0.3 + 0.3 + 0.06, 0.3 + 0.3 + 0.06 + 0.5
    fragment = transcriber.words.fragment_ms / 1000
    assert c_starts + fragment < given[0][1] < c_ends - 0.1


def test_a_word_followed_closely_by_a_fragment_still_waits_for_it():
    """A weak 120 ms tail 60 ms after "a" may belong to it: "a" is held until the tail has ended."""
    x = noisy(np.concatenate([silence(0.3), tone("a", 0.25), silence(0.06), tone("a", 0.12, 0.05), silence(0.5)]))
    stream = Transcriber(ToneClassifier(), vad=ENERGY, threshold=0.0).stream()
    step, given = int(0.02 * RATE), []
    for at in range(0, len(x), step):
        given += [(w, (at + step) / RATE) for w in stream.feed(x[at : at + step])]
    assert len(given) == 1 and given[0][1] >= 0.3 + 0.25 + 0.06 + 0.12
    assert given[0][0].end >= 0.3 + 0.25 + 0.06 + 0.12
