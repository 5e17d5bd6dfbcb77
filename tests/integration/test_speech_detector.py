"""The learned speech detector (Silero VAD) and how the segmenter and transcriber use it: real FSDD words
between breaths, clicks and a room's noise floor."""

from __future__ import annotations

import numpy as np
import pytest

from spokenword import audio
from spokenword.transcribe import speech
from spokenword.transcribe.decode import Transcriber, WordSettings
from spokenword.transcribe.segment import StreamingSegmenter, VadSettings, segments

pytestmark = pytest.mark.integration

RATE = 8000


@pytest.fixture(scope="module")
def words(fsdd_recordings) -> dict[str, np.ndarray]:
    """One take of each of a few digits by one speaker (takes 0-4: the official test takes)."""
    return {d: audio.load(fsdd_recordings / f"{d}_jackson_0.wav", RATE) for d in "0379"}


def floor(seconds: float, seed: int = 0, rms: float = 3e-4) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, rms, int(seconds * RATE)).astype(np.float32)


def breath(seconds: float = 0.3, rms: float = 0.02, seed: int = 1) -> np.ndarray:
    from scipy import signal

    n = int(seconds * RATE)
    b, a = signal.butter(2, [200, 3000], btype="band", fs=RATE)
    x = signal.lfilter(b, a, np.random.default_rng(seed).standard_normal(n)) * np.hanning(n)
    return (x * rms / np.sqrt(np.mean(x**2))).astype(np.float32)


def click(peak: float = 0.5, seed: int = 2) -> np.ndarray:
    n = int(0.008 * RATE)
    x = np.random.default_rng(seed).standard_normal(n) * np.exp(-np.arange(n) / (0.25 * n))
    return (x * peak / np.abs(x).max()).astype(np.float32)


def test_probabilities_tell_a_word_from_silence_and_noise(words):
    word = np.concatenate([floor(0.3), words["3"], floor(0.3)])
    probs = speech.probabilities(word, RATE)
    chunk = int(speech.CHUNK_S * RATE)
    assert len(probs) == len(word) // chunk
    spoken = slice(int(0.3 * RATE) // chunk, (int(0.3 * RATE) + len(words["3"])) // chunk)
    assert probs[spoken].max() > 0.9
    assert probs[:5].max() < 0.2  # the floor before it
    assert speech.probabilities(floor(1.0, rms=0.05), RATE).max() < 0.5  # loud white noise is not speech
    assert speech.probabilities(np.zeros(RATE, np.float32), RATE).max() < 0.1


def test_probabilities_at_other_rates_and_in_blocks(words):
    word = np.concatenate([floor(0.2), words["9"], floor(0.2)])
    whole = speech.probabilities(word, RATE)
    stream = speech.SpeechProbability(RATE)
    rng = np.random.default_rng(0)
    parts, at = [], 0
    while at < len(word):  # blocks of any size give the same chunks
        size = int(rng.integers(1, 900))
        parts += stream.feed(word[at : at + size])
        at += size
    assert np.allclose([p for _, p in parts], whole, atol=1e-6)
    assert [end for end, _ in parts] == [(i + 1) * stream.chunk for i in range(len(parts))]
    for rate in (16000, 11025):  # native, and resampled to 16 kHz
        probs = speech.probabilities(audio.prepare(word, RATE, rate), rate)
        assert probs.max() > 0.8 and probs[:3].max() < 0.2


def test_segmenter_drops_nothing_but_marks_what_is_not_speech(words):
    x = np.concatenate([floor(0.4), click(), floor(0.4), words["0"], floor(0.4), breath(), floor(0.4), words["7"],
                        floor(0.4)])
    found = segments(x, RATE)
    assert all(s.speech_score is not None for s in found)
    heard = [s for s in found if s.speech_score >= VadSettings().speech_on]
    assert len(heard) == 2  # the two words; the click and the breath are not heard as speech
    starts = [int(0.4 * RATE) + len(click()) + int(0.4 * RATE)]
    starts.append(starts[0] + len(words["0"]) + int(0.8 * RATE) + len(breath()))
    for segment, start, word in zip(heard, starts, (words["0"], words["7"])):
        first, last = segment.speech
        assert abs(first - start) < 0.1 * RATE and abs(last - (start + len(word))) < 0.15 * RATE
    assert all(s.speech_score is None for s in segments(x, RATE, VadSettings(speech=False)))


def test_a_breath_just_before_a_word_is_cut_off_it(words):
    lead = breath(0.4, rms=0.05)
    x = np.concatenate([floor(0.4), lead, words["3"], floor(0.5)])
    found = segments(x, RATE)
    word_start = int(0.4 * RATE) + len(lead)
    (heard,) = [s for s in found if s.speech_score >= VadSettings().speech_on]
    assert heard.speech[0] > word_start - 0.15 * RATE  # the word does not start at the breath
    energy = segments(x, RATE, VadSettings(speech=False))
    assert min(s.speech[0] for s in energy) < word_start - 0.25 * RATE  # the level alone would start it there


def test_transcriber_drops_bursts_and_keeps_the_words(bundled_words):
    transcriber, x, digits = bundled_words
    result = transcriber.transcribe_samples(x, RATE)
    assert result.text == digits
    before = Transcriber(transcriber.classifier, vad=VadSettings(speech=False),
                         words=WordSettings(long_ms=float("inf"))).transcribe_samples(x, RATE)
    assert len(before.words) + len(before.rejected) > len(result.words)  # the level alone finds the bursts too


@pytest.fixture(scope="module")
def bundled_words(words):
    from spokenword.inference.load import load_model

    parts, digits = [floor(0.3)], ""
    for i, d in enumerate("0379"):
        parts += [words[d], floor(0.25, seed=i), click(seed=i), floor(0.15, seed=10 + i), breath(seed=i), floor(0.3, seed=20 + i)]
        digits += d
    return Transcriber(load_model()), np.concatenate(parts), digits


def test_an_unheard_region_is_a_word_only_when_the_model_is_sure(bundled_words):
    transcriber = bundled_words[0]
    rate = transcriber.classifier.sample_rate
    from spokenword.transcribe.segment import Segment

    wave = bundled_words[1][: int(1.0 * rate)]
    unheard = Segment(0, len(wave), wave, 0, len(wave), speech_score=0.1)
    sure = np.zeros(len(transcriber.classifier.labels))
    sure[3] = 0.95
    unsure = np.zeros_like(sure)
    unsure[3] = 0.5
    assert transcriber.word(unheard, sure).label == transcriber.classifier.labels[3]
    assert transcriber.word(unheard, unsure).rejected
    assert transcriber.word(Segment(0, len(wave), wave, 0, len(wave), speech_score=0.9), unsure).label == \
        transcriber.classifier.labels[3]


def test_stream_in_blocks_gives_the_words_of_the_whole(bundled_words):
    transcriber, x, _ = bundled_words
    whole = transcriber.transcribe_samples(x, RATE)
    stream = transcriber.stream()
    got, at, rng = [], 0, np.random.default_rng(3)
    while at < len(x):
        size = int(rng.integers(50, 3000))
        got += list(stream.feed(x[at : at + size]))
        at += size
    got += list(stream.flush())
    assert [w for w in got if not w.rejected] == whole.words


def test_memory_of_the_segmenter_stays_bounded_with_the_detector():
    segmenter = StreamingSegmenter(RATE)
    rng = np.random.default_rng(0)
    for _ in range(120):  # two minutes of noise with bursts
        block = rng.normal(0, 0.01, RATE).astype(np.float32)
        block[2000:2300] += breath(0.0375, rms=0.1)
        list(segmenter.feed(block))
        assert len(segmenter._buffer) < 3 * RATE and len(segmenter._probs) < 40


def test_cli_segmenter_choice(bundled_words, tmp_path, capsys):
    import json

    import soundfile as sf

    from spokenword.cli import main

    _, x, digits = bundled_words
    path = tmp_path / "number with breaths.wav"
    sf.write(path, x, RATE)
    assert main(["transcribe", str(path), "--json"]) == 0
    speech_words = json.loads(capsys.readouterr().out)[str(path)]
    assert speech_words["text"] == digits
    assert main(["transcribe", str(path), "--json", "--segmenter", "level"]) == 0
    level = json.loads(capsys.readouterr().out)[str(path)]
    assert len(level["words"]) + len(level["rejected"]) > len(speech_words["words"])  # the bursts are regions too


def test_the_segmenter_says_whether_the_word_in_progress_was_heard(words):
    x = np.concatenate([floor(0.4), breath(), floor(0.4), words["3"], floor(0.5)])
    segmenter = StreamingSegmenter(RATE, VadSettings(lookahead_ms=50.0))
    step, heard_at = int(0.02 * RATE), []
    for at in range(0, len(x), step):
        list(segmenter.feed(x[at : at + step]))
        heard_at.append((segmenter.word_start, segmenter.word_heard))
    assert not any(heard for start, heard in heard_at if start is None)  # between words: never
    word_start = int(0.8 * RATE) + len(breath())
    breath_frames = [heard for start, heard in heard_at if start is not None and start < word_start - 0.1 * RATE]
    assert breath_frames and not any(breath_frames)  # the breath is a region, not heard
    assert any(heard for start, heard in heard_at if start is not None and start >= word_start - 0.1 * RATE)
    assert not StreamingSegmenter(RATE, VadSettings(speech=False)).word_heard


def test_live_a_word_before_a_heard_word_is_given_out_once_that_has_release_ms_of_speech(bundled_words, words):
    """"3", 60 ms of floor, then "7": "3" is held in case "7" is its fragment, and given out once the detector
    has heard "7" and it has more than release_ms of speech: with the live endpoint's release_ms sooner than with
    spokenword transcribe's (fragment_ms), the same words."""
    from spokenword.serve.live import live_vad, live_words

    classifier = bundled_words[0].classifier
    x = np.concatenate([floor(0.4), words["3"], floor(0.06, seed=5), words["7"], floor(0.6, seed=6)])
    rate = classifier.sample_rate
    assert WordSettings().release_ms is None and live_words().release_ms < WordSettings().fragment_ms  # None: fragment_ms
    given_at = {}
    for name, settings in (("live", live_words()), ("transcribe", WordSettings())):
        transcriber = Transcriber(classifier, vad=live_vad(), words=settings)
        stream, step, given = transcriber.stream(), int(0.02 * rate), []
        for at in range(0, len(x), step):
            given += [(w.label, (at + step) / rate) for w in stream.feed(x[at : at + step]) if not w.rejected]
        given += [(w.label, len(x) / rate) for w in stream.flush() if not w.rejected]
        assert [label for label, _ in given] == ["3", "7"]
        given_at[name] = given[0][1]
    seven_starts = 0.4 + len(words["3"]) / RATE + 0.06
    assert seven_starts + 0.1 < given_at["live"] <= given_at["transcribe"] - 0.06
