"""Answering "not a word": :meth:`BaseClassifier.rank` with ``reject_below``, the :class:`Ensemble` of
members with and without rejection outputs, the scores of :mod:`spokenword.inference.evaluate` (false
rejects, false accepts, DET, :func:`calibrate`) and ``load_model``'s ``reject_below``. Stand-in models
(``tests/rejecting_model.py``), no training."""

from __future__ import annotations

import numpy as np
import pytest

from spokenword.data.corpora import Recording
from spokenword.inference.base import BaseClassifier, ModelError
from spokenword.inference.ensemble import Ensemble
from spokenword.inference.evaluate import (
    THRESHOLDS,
    Evaluation,
    calibrate,
    merged,
    cost,
    evaluate,
)
from spokenword.inference.load import load_model
from spokenword.labels import REJECTIONS, SILENCE, UNKNOWN, is_rejection
from tests.conftest import write_wav
from tests.rejecting_model import (
    DIGITS,
    LABELS,
    NOISE,
    ONE,
    OTHER_WORD,
    RATE,
    THREE,
    WEAK_TWO,
    ToneWords,
    digits_only,
    tone,
)

#: the best word's score on a clip ToneWords calls not a word (0.1 spread over 11 other labels)
Q = 0.1 / 11


def labels_of(prediction) -> list[str]:
    return [p["label"] for p in prediction]


def row(model, **scores) -> np.ndarray:
    """A probability row of ``model`` with the given scores (keywords ``d2`` for "2", ``unknown``,
    ``silence``), the rest spread evenly."""
    names = {"unknown": UNKNOWN, "silence": SILENCE}
    chosen = {names.get(k, k.lstrip("d")): v for k, v in scores.items()}
    rest = (1 - sum(chosen.values())) / (len(model.labels) - len(chosen))
    return np.array([chosen.get(label, rest) for label in model.labels], np.float32)


# -- rank ------------------------------------------------------------------------------------------


def test_labels_module():
    assert REJECTIONS == (SILENCE, UNKNOWN) == ("_silence_", "_unknown_")
    assert is_rejection(UNKNOWN) and is_rejection(SILENCE) and not is_rejection("7") and not is_rejection("unknown")


def test_rank_without_threshold_is_the_sorted_row():
    model = ToneWords(reject_below=None)
    probs = row(model, d2=0.5, d7=0.3)
    ranked = model.rank(probs)
    assert labels_of(ranked)[:2] == ["2", "7"] and len(ranked) == len(LABELS)
    assert [p["score"] for p in ranked] == sorted((float(p) for p in probs), reverse=True)
    # None: the model's own best label, a rejection included
    assert model.rank(row(model, silence=0.4, d2=0.3))[0] == {"label": SILENCE, "score": pytest.approx(0.4)}
    assert BaseClassifier.reject_below is None


def test_rank_rejects_a_weak_word_with_the_models_own_unknown():
    model = ToneWords(reject_below=0.6)
    probs = row(model, d2=0.5, d7=0.3, unknown=0.05)
    ranked = model.rank(probs)
    assert ranked[0] == {"label": UNKNOWN, "score": pytest.approx(0.05)}
    assert labels_of(ranked)[1:3] == ["2", "7"]  # the words follow in score order
    assert sorted(labels_of(ranked)) == sorted(LABELS)  # moved, not added: every label once
    assert labels_of(model.rank(probs, top_k=2)) == [UNKNOWN, "2"]  # top_k after the rejection
    assert labels_of(model.rank(probs, top_k=1)) == [UNKNOWN]
    # at or above the threshold the word stands
    assert model.rank(row(model, d2=0.6))[0]["label"] == "2"
    assert model.rank(row(model, d2=0.61))[0]["label"] == "2"


def test_rank_adds_unknown_for_a_model_without_it():
    model = digits_only(reject_below=0.6)
    probs = row(model, d2=0.45, d7=0.35)
    ranked = model.rank(probs)
    assert ranked[0] == {"label": UNKNOWN, "score": pytest.approx(0.55)}  # 1 - best
    assert labels_of(ranked)[1:3] == ["2", "7"]
    assert len(ranked) == len(DIGITS)  # still at most one entry per output (the lowest word dropped)
    assert labels_of(model.rank(probs, top_k=3)) == [UNKNOWN, "2", "7"]
    assert model.rank(row(model, d2=0.7))[0] == {"label": "2", "score": pytest.approx(0.7)}
    assert digits_only(reject_below=None).rank(probs)[0] == {"label": "2", "score": pytest.approx(0.45)}


def test_rank_with_a_threshold_answers_the_best_rejection_under_it():
    model = ToneWords(reject_below=0.9)
    weak_silence = row(model, silence=0.3, d2=0.2, unknown=0.1)
    assert model.rank(weak_silence)[0] == {"label": SILENCE, "score": pytest.approx(0.3)}
    weak_unknown = row(model, unknown=0.3, d2=0.2)
    ranked = model.rank(weak_unknown)
    assert ranked[0] == {"label": UNKNOWN, "score": pytest.approx(0.3)}
    assert labels_of(ranked).count(UNKNOWN) == 1
    assert labels_of(model.rank(weak_silence, top_k=1)) == [SILENCE]
    # a weak word: the better of the two rejections, whichever it is
    assert model.rank(row(model, d2=0.5, silence=0.2, unknown=0.1))[0]["label"] == SILENCE
    assert model.rank(row(model, d2=0.5, silence=0.1, unknown=0.2))[0]["label"] == UNKNOWN


def test_rank_with_a_threshold_accepts_a_word_reaching_it_over_a_rejection():
    """The threshold decides "word or not": a word scoring at least it is the answer even where a
    rejection output scored higher (0 accepts every best word; ``None`` leaves it to the model)."""
    probs = row(ToneWords(), silence=0.3, d2=0.2, unknown=0.1)
    ranked = ToneWords(reject_below=0.15).rank(probs)
    assert labels_of(ranked)[:3] == ["2", SILENCE, UNKNOWN]
    assert ToneWords(reject_below=0.0).rank(probs)[0]["label"] == "2"
    assert ToneWords(reject_below=0.19).rank(probs)[0]["label"] == "2"
    assert ToneWords(reject_below=0.21).rank(probs)[0]["label"] == SILENCE
    assert ToneWords(reject_below=None).rank(probs)[0]["label"] == SILENCE


def test_rank_through_the_call_on_tones():
    assert ToneWords(reject_below=None)((tone(WEAK_TWO, 0.5), RATE))[0]["label"] == "2"
    assert ToneWords(reject_below=None)((tone(OTHER_WORD, 0.5), RATE))[0]["label"] == UNKNOWN
    assert is_rejection(ToneWords(reject_below=0.6)((tone(WEAK_TWO, 0.5), RATE))[0]["label"])  # (a tie: _silence_)
    assert ToneWords(reject_below=0.6)((tone(ONE, 0.5), RATE))[0]["label"] == "1"
    assert ToneWords(reject_below=0.99)((tone(NOISE, 0.5), RATE))[0]["label"] == SILENCE
    assert digits_only(reject_below=0.6)((tone(WEAK_TWO, 0.5), RATE), top_k=2)[0] == {"label": UNKNOWN,
                                                                                     "score": pytest.approx(0.5)}


# -- Ensemble --------------------------------------------------------------------------------------


class Rows(BaseClassifier):
    """A member answering fixed rows: the clip ``[i]`` gets ``rows[i]`` (columns in ``labels`` order)."""

    runtime = "rows"

    def __init__(self, labels, rows):
        self.labels, self.rows = list(labels), np.asarray(rows, np.float64)
        self.sample_rate, self.features = RATE, None

    def featurize(self, wave):
        return wave

    def probabilities(self, waves):
        return self.rows[[int(w[0]) for w in waves]].astype(np.float32)

    def spectrogram(self, wave):
        return np.zeros((1, 2, 2), np.float32)


def random_rows(labels, n=6, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(len(labels)), size=n)


def ensemble_rows(ensemble, n=6) -> np.ndarray:
    return ensemble.probabilities([ensemble.featurize(np.array([i], np.float32)) for i in range(n)])


def columns(probs: np.ndarray, have: list[str], want: list[str]) -> np.ndarray:
    return probs[:, [have.index(label) for label in want]]


def test_ensemble_of_a_digits_only_and_a_rejecting_member():
    digits = Rows(DIGITS, random_rows(DIGITS, seed=1))
    shuffled = DIGITS[::-1][:5] + [UNKNOWN] + DIGITS[::-1][5:] + [SILENCE]  # another order: matched by name
    rejecting = Rows(shuffled, random_rows(shuffled, seed=2))
    weights = [0.3, 0.7]
    ensemble = Ensemble([digits, rejecting], weights)
    assert ensemble.labels == DIGITS + [SILENCE, UNKNOWN]
    probs = ensemble_rows(ensemble)
    assert probs.dtype == np.float32 and probs.shape == (6, 12)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    # the rejection mass is the only judge's
    np.testing.assert_allclose(probs[:, 10:], columns(rejecting.rows, shuffled, [SILENCE, UNKNOWN]), atol=1e-6)
    # the words: 1 - P(rejection) times the weighted mean of the members' renormalised word probabilities
    own = columns(rejecting.rows, shuffled, DIGITS)
    mean = 0.3 * digits.rows + 0.7 * own / own.sum(axis=1, keepdims=True)
    expected = (1 - probs[:, 10:].sum(axis=1, keepdims=True)) * mean
    np.testing.assert_allclose(probs[:, :10], expected, atol=1e-6)
    # the order of the members decides the order of the words, not the result
    swapped = Ensemble([rejecting, digits], weights[::-1])
    assert swapped.labels == [label for label in shuffled if not is_rejection(label)] + [SILENCE, UNKNOWN]
    np.testing.assert_allclose(columns(ensemble_rows(swapped), swapped.labels, ensemble.labels), probs, atol=1e-6)


def test_ensemble_without_rejecting_members_is_the_plain_weighted_mean():
    members = [Rows(DIGITS, random_rows(DIGITS, seed=s)) for s in (3, 4, 5)]
    weights = [1.0, 2.0, 5.0]
    ensemble = Ensemble(members, weights)
    assert ensemble.labels == DIGITS
    expected = np.average(np.stack([m.rows for m in members]), axis=0, weights=weights)
    np.testing.assert_allclose(ensemble_rows(ensemble), expected, atol=1e-6)
    np.testing.assert_allclose(ensemble_rows(Ensemble(members[:2])), (members[0].rows + members[1].rows) / 2, atol=1e-6)


def test_ensemble_of_rejecting_members_averages_their_rejections():
    a = Rows(LABELS, random_rows(LABELS, seed=6))
    only_silence = DIGITS + [SILENCE]
    b = Rows(only_silence, random_rows(only_silence, seed=7))
    c = Rows(DIGITS, random_rows(DIGITS, seed=8))
    ensemble = Ensemble([a, b, c], [1.0, 3.0, 4.0])
    assert ensemble.labels == DIGITS + [SILENCE, UNKNOWN]
    probs = ensemble_rows(ensemble)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    # judges a (weight 1) and b (weight 3); b says nothing of _unknown_ (counts 0 for it)
    np.testing.assert_allclose(probs[:, 10], (1 * a.rows[:, 10] + 3 * b.rows[:, 10]) / 4, atol=1e-6)
    np.testing.assert_allclose(probs[:, 11], (1 * a.rows[:, 11]) / 4, atol=1e-6)
    words = [m.rows[:, :10] / m.rows[:, :10].sum(axis=1, keepdims=True) for m in (a, b, c)]
    mean = (1 * words[0] + 3 * words[1] + 4 * words[2]) / 8
    np.testing.assert_allclose(probs[:, :10], (1 - probs[:, 10:].sum(axis=1, keepdims=True)) * mean, atol=1e-6)


def test_ensemble_of_tone_models_answers_and_rejects():
    ensemble = Ensemble([digits_only(), ToneWords()])
    assert ensemble.reject_below is None  # the members' thresholds are not the ensemble's
    assert ensemble.labels == DIGITS + [SILENCE, UNKNOWN]
    assert ensemble((tone(OTHER_WORD, 0.5), RATE))[0] == {"label": UNKNOWN, "score": pytest.approx(0.9, abs=1e-6)}
    assert ensemble((tone(NOISE, 0.5), RATE))[0]["label"] == SILENCE
    assert ensemble((tone(ONE, 0.5), RATE))[0]["label"] == "1"
    ensemble.reject_below = 0.6
    assert is_rejection(ensemble((tone(WEAK_TWO, 0.5), RATE))[0]["label"])


def test_ensemble_members_must_share_their_words():
    with pytest.raises(ModelError, match="share their words"):
        Ensemble([digits_only(), ToneWords(DIGITS[:9] + [UNKNOWN])])
    with pytest.raises(ModelError, match="at least two"):
        Ensemble([ToneWords()])


# -- evaluate, Evaluation, calibrate -----------------------------------------------------------------

#: (true label, tone) -> what ToneWords answers: "1" 0.95, weak "2" 0.5, "3" 0.9, _unknown_ 0.9, _silence_ 0.9
CASES = [
    ("1", ONE),            # right
    ("2", WEAK_TWO),       # right at 0.5: rejected from reject_below 0.51
    ("3", THREE),          # right
    ("3", ONE),            # wrong word ("1")
    (UNKNOWN, OTHER_WORD),  # rejected, rightly
    (UNKNOWN, THREE),      # falsely accepted ("3", 0.9)
    (SILENCE, NOISE),      # rejected, rightly
    (SILENCE, WEAK_TWO),   # falsely accepted ("2", 0.5) until reject_below 0.51
]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> list[Recording]:
    folder = tmp_path_factory.mktemp("tones")
    return [Recording(write_wav(folder / f"{i}.wav", tone(freq, 0.5), RATE), label, speaker=f"s{i % 2}")
            for i, (label, freq) in enumerate(CASES)]


def test_evaluation_at_no_threshold(recordings):
    result = evaluate(ToneWords(reject_below=None), recordings)
    assert result.labels == LABELS and result.errors == []
    assert (result.count, result.word_count) == (8, 4)
    assert result.accuracy == pytest.approx(3 / 4)
    assert result.false_reject_rate == 0.0
    assert result.false_accept_rate(UNKNOWN) == pytest.approx(1 / 2)
    assert result.false_accept_rate(SILENCE) == pytest.approx(1 / 2)
    assert (result.negatives(UNKNOWN), result.negatives(SILENCE)) == (2, 2)
    assert result.truth == [label for label, _ in CASES]
    assert result.best_word[:6] == ["1", "2", "3", "1", result.best_word[4], "3"]
    # the best word's score, whatever the answer (on the model's own rejections: Q)
    np.testing.assert_allclose(result.accept_score, [0.95, 0.5, 0.9, 0.95, Q, 0.9, Q, 0.5], atol=1e-6)
    summary = result.to_dict()
    assert summary["count"] == 4 and summary["accuracy"] == pytest.approx(0.75)
    assert summary["false_reject_rate"] == 0.0 and summary["reject_below"] is None
    assert summary["false_accept_rate"] == {UNKNOWN: 0.5, SILENCE: 0.5}
    assert summary["negatives"] == {UNKNOWN: 2, SILENCE: 2}
    assert summary["per_class_accuracy"][UNKNOWN] == 0.5 and summary["per_class_accuracy"]["3"] == 0.5
    assert summary["per_speaker_accuracy"] == {"s0": 1.0, "s1": 0.5}  # words only


def test_evaluation_with_a_threshold(recordings):
    result = evaluate(ToneWords(reject_below=0.6), recordings)
    assert result.reject_below == 0.6
    assert result.accuracy == pytest.approx(2 / 4)  # the rejected "2" is wrong
    assert result.false_reject_rate == pytest.approx(1 / 4)
    assert result.false_accept_rate(UNKNOWN) == pytest.approx(1 / 2)
    assert result.false_accept_rate(SILENCE) == 0.0
    # the outcome at any threshold does not depend on the threshold the model ran with
    np.testing.assert_allclose(result.accept_score, evaluate(ToneWords(reject_below=None), recordings).accept_score)


@pytest.mark.parametrize("threshold", [0.0, 0.005, 0.01, 0.3, 0.5, 0.51, 0.6, 0.9, 0.91, 0.96, 0.99])
def test_evaluation_at_a_threshold_is_evaluating_at_it(recordings, threshold):
    recorded = evaluate(ToneWords(reject_below=None), recordings)
    rerun = evaluate(ToneWords(reject_below=threshold), recordings)
    assert recorded.at(threshold) == {"accuracy": pytest.approx(rerun.accuracy),
                                      "false_reject_rate": pytest.approx(rerun.false_reject_rate),
                                      "false_accept_rate": {UNKNOWN: pytest.approx(rerun.false_accept_rate(UNKNOWN)),
                                                            SILENCE: pytest.approx(rerun.false_accept_rate(SILENCE))}}
    if threshold in THRESHOLDS:
        i = THRESHOLDS.tolist().index(threshold)
        curve = recorded.det()
        assert (curve["false_reject"][i], curve[UNKNOWN][i], curve[SILENCE][i]) == pytest.approx(
            (rerun.false_reject_rate, rerun.false_accept_rate(UNKNOWN), rerun.false_accept_rate(SILENCE)))


@pytest.mark.parametrize("model", [ToneWords, digits_only], ids=["rejecting", "digits-only"])
def test_merged_parts_are_the_evaluation_of_all_of_them(recordings, model):
    words = [r for r in recordings if not is_rejection(r.label)]
    negatives = [r for r in recordings if is_rejection(r.label)]
    whole = evaluate(model(reject_below=None), words + negatives)
    parts = merged(evaluate(model(reject_below=None), words), evaluate(model(reject_below=None), negatives))
    assert parts.labels == whole.labels  # a digits-only model's words alone lack the rejection labels
    np.testing.assert_array_equal(parts.confusion, whole.confusion)
    assert (parts.truth, parts.best_word, parts.per_speaker) == (whole.truth, whole.best_word, whole.per_speaker)
    np.testing.assert_allclose(parts.accept_score, whole.accept_score)
    assert parts.to_dict() == whole.to_dict() and parts.det() == whole.det()


def test_evaluation_of_a_model_without_rejection_outputs(recordings):
    result = evaluate(digits_only(reject_below=None), recordings)
    assert result.labels == DIGITS + [SILENCE, UNKNOWN]  # the negatives are scored all the same
    assert result.count == 8 and result.word_count == 4 and result.unknown_labels == []
    assert result.false_reject_rate == 0.0
    assert result.false_accept_rate(UNKNOWN) == 1.0 and result.false_accept_rate(SILENCE) == 1.0
    rejecting = evaluate(digits_only(reject_below=0.6), recordings)
    assert rejecting.false_reject_rate == pytest.approx(1 / 4)
    assert rejecting.false_accept_rate(SILENCE) == pytest.approx(1 / 2)  # the weak "2" is rejected now
    assert rejecting.false_accept_rate(UNKNOWN) == 1.0  # 0.9 each
    # a digits-only model's DET, too, is the same whatever threshold it ran with
    np.testing.assert_allclose(rejecting.accept_score, result.accept_score)
    assert rejecting.det() == result.det()


def test_a_threshold_without_negatives_or_unknown_output(recordings):
    words = [r for r in recordings if not is_rejection(r.label)]
    result = evaluate(digits_only(reject_below=0.6), words)  # may answer _unknown_ with no _unknown_ files
    assert result.word_count == 4 and result.accuracy == pytest.approx(2 / 4)
    assert result.false_reject_rate == pytest.approx(1 / 4)
    assert result.to_dict()["negatives"] == {} and result.to_dict()["false_accept_rate"] == {}
    assert np.isnan(result.false_accept_rate(SILENCE))
    assert calibrate(result) == 0.0  # nothing to weigh false rejects against
    assert evaluate(digits_only(reject_below=None), words).labels == DIGITS  # no threshold: no _unknown_ column


def test_det_is_monotonic_and_matches_the_outcomes(recordings):
    result = evaluate(ToneWords(reject_below=None), recordings)
    curve = result.det()
    assert curve["threshold"] == THRESHOLDS.tolist() and curve["threshold"][0] == 0.0
    for key in ("false_reject", UNKNOWN, SILENCE):
        assert len(curve[key]) == len(THRESHOLDS)
    assert all(a <= b for a, b in zip(curve["false_reject"], curve["false_reject"][1:]))
    for label in (UNKNOWN, SILENCE):
        assert all(a >= b for a, b in zip(curve[label], curve[label][1:]))
    at = dict(zip(curve["threshold"], zip(curve["false_reject"], curve[UNKNOWN], curve[SILENCE])))
    assert at[0.0] == (0.0, 1.0, 1.0)  # every best word accepted, however low
    assert at[0.01] == (0.0, 0.5, 0.5)  # the model's own rejections (best word Q) rejected from here
    assert at[0.5] == (0.0, 0.5, 0.5)
    assert at[0.51] == (0.25, 0.5, 0.0)
    assert at[0.91] == (0.5, 0.0, 0.0)
    assert at[0.96] == (1.0, 0.0, 0.0)
    assert at[0.99] == (1.0, 0.0, 0.0)
    # the DET at the model's threshold is the evaluation at that threshold
    rerun = evaluate(ToneWords(reject_below=0.51), recordings)
    assert at[0.51] == (rerun.false_reject_rate, rerun.false_accept_rate(UNKNOWN), rerun.false_accept_rate(SILENCE))


def evaluation_of(words: list[float], unknown: list[float], silence: list[float]) -> Evaluation:
    """An Evaluation with these best-word scores (``Q``: a clip the model itself calls not a word)."""
    truth = ["1"] * len(words) + [UNKNOWN] * len(unknown) + [SILENCE] * len(silence)
    labels = DIGITS + [SILENCE, UNKNOWN]
    return Evaluation(labels, np.zeros((12, 12), np.int64), [], {}, [], truth, ["1"] * len(truth),
                      np.asarray(words + unknown + silence, np.float64))


def brute_force(words, negatives) -> float:
    """The lowest threshold minimising (false rejects / words) + (false accepts / negatives)."""
    words, negatives = np.asarray(words), np.asarray(negatives)
    costs = np.array([np.mean(words < t) + np.sum(negatives >= t) / len(negatives) for t in THRESHOLDS])
    return float(THRESHOLDS[int(np.flatnonzero(costs <= costs.min() + 1e-9)[0])])


def test_calibrate_picks_the_cost_minimising_threshold():
    # separable: any threshold in (0.4, 0.7] makes no error; the lowest is chosen
    assert calibrate(evaluation_of([0.95, 0.9, 0.8, 0.7], [0.4, 0.3, Q], [0.2, Q])) == 0.41
    # a trade-off: rejecting the 0.6 word costs 1/4, accepting the 0.65 other word costs 1/2
    assert calibrate(evaluation_of([0.95, 0.9, 0.6, 0.8], [0.65], [Q])) == 0.66
    # ... and the other way round when the word side weighs more
    assert calibrate(evaluation_of([0.95, 0.6], [0.65, Q, Q, Q], [Q] * 4)) == 0.01  # 0.0 would accept them all
    rng = np.random.default_rng(0)
    for _ in range(20):
        words = np.round(rng.uniform(0.2, 1.0, 30), 3).tolist()
        unknown = np.round(rng.uniform(0.0, 0.8, 12), 3).tolist() + [Q] * 3
        silence = np.round(rng.uniform(0.0, 0.5, 5), 3).tolist() + [Q] * 5
        assert calibrate(evaluation_of(words, unknown, silence)) == brute_force(words, unknown + silence)


def test_calibrate_over_several_evaluations_minimises_the_mean_cost():
    a = evaluation_of([0.9, 0.8, 0.7, 0.3], [0.5, Q], [Q])  # alone: 0.51 (one false reject in four)
    b = evaluation_of([0.9, 0.45], [0.2], [Q, Q, Q])  # alone: 0.21 (no error)
    assert (calibrate(a), calibrate(b)) == (0.51, 0.21)
    np.testing.assert_allclose(cost(a)[THRESHOLDS.tolist().index(0.51)], 1 / 4)
    np.testing.assert_allclose(cost(a)[THRESHOLDS.tolist().index(0.21)], 1 / 3)
    mean = (cost(a) + cost(b)) / 2
    assert calibrate([a, b]) == float(THRESHOLDS[np.flatnonzero(mean <= mean.min() + 1e-9)[0]]) == 0.21
    assert calibrate([a]) == calibrate(a) and calibrate((b,)) == calibrate(b)


def test_calibrate_with_only_one_kind_of_negative_and_without_negatives():
    assert calibrate(evaluation_of([0.9, 0.8], [0.5], [])) == 0.51
    assert calibrate(evaluation_of([0.9, 0.8], [], [0.3])) == 0.31
    assert calibrate(evaluation_of([0.9, 0.2, 0.5], [], [])) == 0.0


def test_calibrate_on_evaluated_tones(recordings):
    result = evaluate(ToneWords(reject_below=None), recordings)
    words = [s for s, t in zip(result.accept_score, result.truth) if not is_rejection(t)]
    negatives = [s for s, t in zip(result.accept_score, result.truth) if is_rejection(t)]
    assert calibrate(result) == brute_force(words, negatives)


# -- load_model's reject_below ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan")])
def test_load_model_refuses_a_threshold_out_of_range(value, tmp_path):
    with pytest.raises(ModelError, match="reject_below") as err:
        load_model(tmp_path / "missing.onnx", reject_below=value)
    assert "\n" not in str(err.value)


def test_load_model_uses_the_bundled_threshold_by_default(monkeypatch):
    from spokenword import pretrained
    from spokenword.inference import load

    monkeypatch.setattr(load, "_load_one", lambda model, *args: ToneWords() if "rejecting" in str(model) else digits_only())
    assert load_model("rejecting.onnx").reject_below is None  # the model's own answers
    assert load_model("rejecting.onnx", reject_below=0.4).reject_below == 0.4
    bundled = pretrained.manifest()["reject_below"]
    assert 0 < bundled < 1
    assert load_model().reject_below == bundled
    assert load_model(reject_below=0.0).reject_below == 0.0
    assert load_model(reject_below=0.7).reject_below == 0.7
    ensemble = load_model("digits.onnx", "rejecting.onnx", reject_below=0.2)
    assert isinstance(ensemble, Ensemble) and ensemble.reject_below == 0.2
    assert ensemble.labels == DIGITS + [SILENCE, UNKNOWN]
