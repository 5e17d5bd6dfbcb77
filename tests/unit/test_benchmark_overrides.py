"""``--vad`` / ``--words`` of the transcription benchmarks: settings from ``KEY=VALUE`` text, typed like the defaults."""

from __future__ import annotations

import pytest

from benchmarks.transcribe import overrides
from spokenword.transcribe.decode import WordSettings
from spokenword.transcribe.segment import VadSettings


def test_values_take_the_type_of_the_default_and_an_optional_number_is_a_number():
    words = overrides(WordSettings, "release_ms=100, merge_gap_ms=80,denoise=false")
    assert words == {"release_ms": 100.0, "merge_gap_ms": 80.0, "denoise": False}
    assert WordSettings(**words).release_ms == 100.0  # a None default (release_ms: fragment_ms) can still be set
    assert overrides(VadSettings, "floor_every=5") == {"floor_every": 5} and isinstance(overrides(VadSettings, "floor_every=5")["floor_every"], int)


@pytest.mark.parametrize("text", ["no_such=1", "band_hz=100"])
def test_unknown_or_unsettable_keys_are_refused(text):
    with pytest.raises(SystemExit):
        overrides(VadSettings, text)
