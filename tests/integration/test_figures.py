"""The dataset illustrations written from the real FSDD copy."""

from __future__ import annotations

import matplotlib.image
import pytest

from spokenword.training import figures
from spokenword.data.corpora import DatasetError

pytestmark = pytest.mark.integration

NAMES = ["waveform.png", "spectrogram.png", "two_digits.png", "grid.png", "mfcc.png"]


def test_write_all_writes_the_five_figures(fsdd_root, tmp_path):
    paths = figures.write_all(fsdd_root, tmp_path / "figs", speaker="theo")
    assert [p.name for p in paths] == NAMES and all(p.parent == tmp_path / "figs" for p in paths)
    sizes = {p.name: matplotlib.image.imread(p).shape for p in paths}  # (height, width, RGBA)
    assert all(len(shape) == 3 and shape[0] > 200 and shape[1] > 400 for shape in sizes.values())
    assert sizes["two_digits.png"][1] > sizes["waveform.png"][1]  # two panels side by side
    grid_height, grid_width, _ = sizes["grid.png"]
    assert grid_width > grid_height  # 10 digit columns x 5 take rows


def test_unknown_speaker_is_a_clear_error(fsdd_root, tmp_path):
    with pytest.raises(DatasetError, match="no FSDD recordings of speaker 'nobody'.*jackson"):
        figures.write_all(fsdd_root, tmp_path, speaker="nobody")
