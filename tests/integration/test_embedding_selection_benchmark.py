"""benchmarks/embedding_selection.py: nested leave-one-speaker-out selection of the pretrained
embedding's augmentation, on a subsample of FSDD (the full run is the README's)."""

from __future__ import annotations

import pytest

from tests.benchmark_scripts import load_benchmark

pytestmark = pytest.mark.integration


def test_scores_every_candidate_on_validation_speakers_only(fsdd_root, capsys):
    bench = load_benchmark("embedding_selection")
    assert bench.main(["--outer", "george", "--copies", "1", "--epochs", "2", "--every", "20",
                       "--root", str(fsdd_root)]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith("| george |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    scores = [float(c) for c in cells[1:-1]]
    assert len(scores) == len(bench.CANDIDATES) and all(0.0 <= s <= 100.0 for s in scores)
    assert scores[bench.CANDIDATES.index(cells[-1])] == max(scores)  # the best (a tie at 0.1 % may go either way)
    assert "chosen: george " in out


def test_train_head_fits_separable_embeddings():
    import torch

    bench = load_benchmark("embedding_selection")
    torch.manual_seed(0)
    y = torch.arange(200) % 2
    x = torch.randn(2, 200, 192) + 3.0 * y.view(1, -1, 1)  # two copies of every clip
    head = bench.train_head(x, y, {"hidden": 16, "dropout": 0.0}, epochs=5, seed=0)
    with torch.no_grad():
        assert (head(x[0]).argmax(1) == y).float().mean() > 0.95


def test_a_config_without_both_augmentations_is_a_usage_error(capsys):
    bench = load_benchmark("embedding_selection")
    with pytest.raises(SystemExit) as exit_info:
        bench.main([str(bench.DEFAULT_CONFIG.with_name("fsdd_embedding_newvoices.yaml"))])
    assert exit_info.value.code == 2 and "must set both data.wave_augment and model.augment" in capsys.readouterr().err


def test_rejects_bad_counts(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_benchmark("embedding_selection").main(["--copies", "0"])
    assert exit_info.value.code == 2 and "must be >= 1" in capsys.readouterr().err
