"""benchmarks/embedding_input.py: the original front end's statistics on FSDD, which the defaults of
SpeechEmbeddingCNN's input scale come from."""

from __future__ import annotations

import pytest

from spokenword.models import SpeechEmbeddingCNN
from tests.benchmark_scripts import load_benchmark

pytestmark = pytest.mark.integration


def test_prints_the_front_ends_statistics_near_the_models_defaults(fsdd_root, capsys):
    bench = load_benchmark("embedding_input")
    assert bench.main(["--every", "50", "--root", str(fsdd_root)]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1]
    count, values, mean, std, low, high = (float(cell) for cell in row.strip("|").split("|"))
    assert count == 54 and values > 10_000  # 2,700 training and validation takes, every 50th
    model = SpeechEmbeddingCNN(pretrained="none")
    assert abs(mean - model.input_mean) < 0.3 and abs(std - model.input_std) < 0.2
    assert low < mean < high


def test_rejects_a_bad_stride(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_benchmark("embedding_input").main(["--every", "0"])
    assert exit_info.value.code == 2 and "--every must be >= 1" in capsys.readouterr().err
