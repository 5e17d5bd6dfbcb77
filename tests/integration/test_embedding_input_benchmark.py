"""``python -m benchmarks.experiments.embedding_input``: the original front end's statistics on FSDD, which the
defaults of SpeechEmbeddingCNN's input scale come from."""

from __future__ import annotations

import json

import pytest

from benchmarks.experiments import embedding_input
from spokenword.models import SpeechEmbeddingCNN

pytestmark = pytest.mark.integration


def test_prints_the_front_ends_statistics_near_the_models_defaults(fsdd_root, tmp_path, capsys):
    assert embedding_input.main(["--every", "50", "--data.root", str(fsdd_root), "--out", str(tmp_path)]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1]
    count, values, mean, std, low, high = (float(cell) for cell in row.strip("|").split("|"))
    assert count == 54 and values > 10_000  # 2,700 training and validation takes, every 50th
    model = SpeechEmbeddingCNN(pretrained="none")
    assert abs(mean - model.input_mean) < 0.3 and abs(std - model.input_std) < 0.2
    assert low < mean < high
    figures = json.loads((tmp_path / "experiments" / "embedding_input.json").read_text())["figures"]
    assert figures["recordings"] == 54 and round(figures["mean"], 2) == mean


def test_rejects_a_bad_stride(capsys):
    with pytest.raises(SystemExit) as exit_info:
        embedding_input.main(["--every", "0"])
    assert exit_info.value.code == 2 and "--every must be >= 1" in capsys.readouterr().err
