"""The transcriber drops what the model answers "not a word" (``_unknown_``, ``_silence_``, a word under
``reject_below``) and lists it apart; a digits-only model transcribes as before (stand-in model)."""

from __future__ import annotations

import numpy as np

from spokenword.transcribe.decode import Transcriber
from spokenword.transcribe.segment import VadSettings
from tests.rejecting_model import (NOISE, ONE, OTHER_WORD, RATE, THREE, WEAK_TWO, ToneWords, digits_only, sequence,
                                   silence, tone)

#: tone bursts stand in for words: the band-energy detector alone (the learned one hears no speech in them)
ENERGY = VadSettings(speech=False)


def transcribe(model, x, **options):
    options.setdefault("vad", ENERGY)
    return Transcriber(model, **options).transcribe_samples(x, RATE)


def test_other_words_and_noise_are_dropped_and_listed():
    result = transcribe(ToneWords(), sequence(ONE, OTHER_WORD, THREE, NOISE, ONE))
    assert result.text == "131"
    assert [w.label for w in result.words] == ["1", "3", "1"]
    assert [w.label for w in result.rejected] == ["_unknown_", "_silence_"]
    # in time order, between the words they were heard between
    assert result.words[0].end < result.rejected[0].start < result.words[1].start
    assert result.words[1].end < result.rejected[1].start < result.words[2].start
    summary = result.to_dict()
    assert summary["text"] == "131" and len(summary["words"]) == 3
    assert summary["rejected"] == [{"label": w.label, "score": w.score, "start": w.start, "end": w.end}
                                   for w in result.rejected]
    assert summary["rejected"][0]["label"] == "_unknown_" and summary["rejected"][0]["score"] == 0.9


def test_nothing_but_other_words_gives_an_empty_text():
    result = transcribe(ToneWords(), sequence(OTHER_WORD, NOISE, OTHER_WORD))
    assert result.text == "" and result.words == [] and len(result.rejected) == 3


def test_reject_below_turns_a_weak_digit_into_unknown():
    x = sequence(ONE, WEAK_TWO, THREE)
    assert transcribe(ToneWords(), x).text == "123"  # 0.5 is above the default '?' threshold
    result = transcribe(ToneWords(reject_below=0.6), x)
    assert result.text == "13" and [w.label for w in result.rejected] == ["_unknown_"]
    # a model without an _unknown_ output: rank's _unknown_ (score 1 - best) is still a rejection
    result = transcribe(digits_only(reject_below=0.6), x)
    assert result.text == "13" and [(w.label, w.score) for w in result.rejected] == [("_unknown_", 0.5)]


def test_a_long_other_word_is_not_split_into_a_digit():
    # one region (a 15 ms dip): a "1" then a longer other word (the whole is _unknown_); the cut at
    # the dip gives "1" + _unknown_, more confident than the whole, but half a word is not a digit
    x = np.concatenate([silence(0.3), tone(ONE, 0.4), silence(0.015), tone(OTHER_WORD, 0.6), silence(0.4)])
    x = (x + np.random.default_rng(0).normal(0, 1e-3, len(x))).astype(np.float32)
    result = transcribe(ToneWords(), x)
    assert result.text == "" and [w.label for w in result.rejected] == ["_unknown_"]
    # two words run together are still split
    x = np.concatenate([silence(0.3), tone(ONE, 0.5), silence(0.015), tone(THREE, 0.5), silence(0.4)])
    x = (x + np.random.default_rng(0).normal(0, 1e-3, len(x))).astype(np.float32)
    assert transcribe(ToneWords(), x).text == "13"


class CallOnly:
    """The same model seen only through ``__call__`` (no ``rank``): the transcriber's plain argmax."""

    def __init__(self, model):
        self.model, self.labels, self.sample_rate = model, model.labels, model.sample_rate

    def __call__(self, source, top_k=None):
        return self.model(source, top_k)


def test_a_digits_only_model_transcribes_as_before():
    x = sequence(ONE, OTHER_WORD, WEAK_TWO, THREE, NOISE)
    model = digits_only()
    result = transcribe(model, x, threshold=0.6)
    assert result.text == "17?35" and result.rejected == []
    assert result.words == transcribe(CallOnly(model), x, threshold=0.6).words
    assert "rejected" in result.to_dict() and result.to_dict()["rejected"] == []


def test_the_stream_gives_out_rejections_flagged():
    transcriber = Transcriber(ToneWords(), vad=ENERGY)
    stream = transcriber.stream()
    x = sequence(ONE, NOISE, THREE)
    words = list(stream.feed(x)) + list(stream.flush())
    assert [(w.label, w.rejected) for w in words] == [("1", False), ("_silence_", True), ("3", False)]
