"""spokenword.inference.ensemble.Ensemble: the mean of several classifiers' probabilities (synthetic audio)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spokenword.audio import AudioError
from spokenword.inference.ensemble import Ensemble
from spokenword.frontend.settings import FeatureSettings
from spokenword.inference.checkpoint import Classifier
from spokenword.inference.evaluate import evaluate
from spokenword.inference.base import BaseClassifier, ModelError
from tests.conftest import tone, write_wav

LABELS = ["a", "b", "c"]


class FixedLogits(torch.nn.Module):
    """Ignores its input ``(N, 1, H, W)``; returns the same logits for every clip."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits, dtype=torch.float32))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


def classifier(logits, labels=LABELS, rate: int = 8000) -> Classifier:
    return Classifier(FixedLogits(logits), labels, rate, FeatureSettings())


class RateProbe(BaseClassifier):
    """A numpy member (like an ONNX export) that records the length of each waveform it featurizes."""

    runtime = "onnx"

    def __init__(self, rate: int, probs, labels=LABELS):
        self.sample_rate, self.labels, self.probs, self.max_seconds = rate, list(labels), np.asarray(probs), None
        self.features = FeatureSettings()
        self.lengths: list[int] = []

    def featurize(self, wave):
        self.lengths.append(len(wave))
        return np.asarray(wave)

    def probabilities(self, features):
        return np.tile(self.probs, (len(list(features)), 1))


def test_probabilities_are_the_mean_of_the_members():
    one, two = classifier([2.0, 0.0, 0.0]), classifier([0.0, 3.0, 0.0])
    ens = Ensemble([one, two])
    wave = tone(0.5)
    expected = (one.probabilities([one.featurize(wave)]) + two.probabilities([two.featurize(wave)])) / 2
    got = ens.probabilities([ens.featurize(wave)])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # the member sure of "b" wins on the mean; the ranking is sorted and sums to one
    ranked = ens((wave, 8000))
    assert [r["label"] for r in ranked][0] == "b"
    assert ranked == sorted(ranked, key=lambda r: -r["score"])
    assert sum(r["score"] for r in ranked) == pytest.approx(1.0, abs=1e-5)


def test_members_label_orders_are_aligned_to_the_first():
    first = classifier([0.0, 0.0, 4.0])  # sure of "c"
    reordered = classifier([4.0, 0.0, 0.0], labels=["c", "a", "b"])  # also sure of "c", first column
    ens = Ensemble([first, reordered])
    probs = ens.probabilities([ens.featurize(tone(0.3))])[0]
    assert ens.labels == LABELS
    assert probs.argmax() == LABELS.index("c") and probs[2] > 0.9


def test_weights_make_a_weighted_mean():
    a, b = classifier([5.0, 0.0, 0.0]), classifier([0.0, 5.0, 0.0])
    wave = tone(0.3)
    heavy_b = Ensemble([a, b], weights=[1, 3]).probabilities([Ensemble([a, b]).featurize(wave)])[0]
    pa = a.probabilities([a.featurize(wave)])[0]
    pb = b.probabilities([b.featurize(wave)])[0]
    np.testing.assert_allclose(heavy_b, 0.25 * pa + 0.75 * pb, rtol=1e-5)


@pytest.mark.parametrize("members, weights, message", [
    ([classifier([1.0, 0.0, 0.0])], None, "at least two"),
    ([classifier([1.0, 0.0, 0.0]), classifier([1.0, 0.0], labels=["a", "b"])], None, "share their words"),
    ([classifier([1.0, 0.0, 0.0]), classifier([1.0, 0.0, 0.0])], [1.0], "weights"),
    ([classifier([1.0, 0.0, 0.0]), classifier([1.0, 0.0, 0.0])], [-1.0, 2.0], "weights"),
    ([classifier([1.0, 0.0, 0.0]), classifier([1.0, 0.0, 0.0])], [0.0, 0.0], "weights"),
])
def test_bad_ensembles_are_refused_with_a_reason(members, weights, message):
    with pytest.raises(ModelError, match=message):
        Ensemble(members, weights)


def test_a_member_at_another_rate_gets_the_clip_at_its_rate():
    first, other = classifier([1.0, 0.0, 0.0], rate=8000), RateProbe(16000, [0.1, 0.1, 0.8])
    ens = Ensemble([first, other])
    assert ens.sample_rate == 8000 and ens.runtime == "torch+onnx"
    ens((tone(0.5, rate=44100), 44100))  # decoded once at 8 kHz, resampled to 16 kHz for the second member
    assert other.lengths == [8000]
    # numpy and torch members mix: the second member's columns count as much as the first's
    probs = ens.probabilities([ens.featurize(tone(0.5))])[0]
    first_probs = first.probabilities([first.featurize(tone(0.5))])[0]
    np.testing.assert_allclose(probs, (first_probs + [0.1, 0.1, 0.8]) / 2, rtol=1e-5)


def test_predict_many_and_evaluate_go_on_past_a_bad_file(tmp_path):
    from spokenword.data.corpora import Recording

    good = [write_wav(tmp_path / f"{i}.wav", tone(0.4, freq=300 + 100 * i)) for i in range(3)]
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF not audio")
    ens = Ensemble([classifier([0.0, 2.0, 0.0]), classifier([0.0, 1.0, 0.0])])
    results = list(ens.predict_many([good[0], bad, good[1], good[2]], top_k=1, batch_size=2))
    assert [path for path, _ in results] == [good[0], bad, good[1], good[2]]
    assert isinstance(results[1][1], AudioError)
    assert all(r[0]["label"] == "b" for _, r in results if not isinstance(r, Exception))
    recordings = [Recording(path=p, label=label, speaker="s") for p, label in zip(good, ["b", "b", "a"])]
    result = evaluate(ens, recordings)
    assert result.count == 3 and result.accuracy == pytest.approx(2 / 3)
