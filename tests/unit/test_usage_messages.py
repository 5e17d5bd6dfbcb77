"""lead_with_reason: jsonargparse's Union messages gain a first line with the key and the reason."""

from __future__ import annotations

from spokenword.training.cli import lead_with_reason

ONE = """Parser key "model.augment":
  Does not validate against any of the Union subtypes
  Subtypes: [<class 'spokenword.data.feature_augment.FeatureAugment'>, <class 'NoneType'>]
  Errors:
    - Problem with given class_path 'spokenword.data.feature_augment.FeatureAugment':
        Parser key "time_masks":
          Expected a <class 'int'>. Got value: two
    - Expected a <class 'NoneType'>
  Given value type: <class 'jsonargparse._util.NestedArg'>
  Given value: NestedArg(key='time_masks', val='two')"""

TWO = """Parser key "data.corpus":
  Does not validate against any of the Union subtypes
  Subtypes: [<class 'spokenword.data.corpora.base.Corpus'>, <class 'NoneType'>]
  Errors:
    - Expected an instantiatable class, but spokenword.data.corpora.Corpus is abstract
    - Problem with given class_path 'x.Y':
        No module named 'x'
  Given value type: <class 'str'>"""


def test_one_failed_subtype_puts_key_and_reason_first():
    lines = lead_with_reason(ONE).splitlines()
    assert lines[0] == "model.augment.time_masks: Expected a <class 'int'>. Got value: two"
    assert lines[1:] == ["  " + line for line in ONE.splitlines()]


def test_other_messages_are_left_as_they_are():
    assert lead_with_reason(TWO) == TWO  # two candidate reasons: not ours to choose
    plain = 'Key "data.bogus_key" is not expected'
    assert lead_with_reason(plain) == plain
