"""``python -m benchmarks.speed recipe``: make train's two fits together and one after the other, shortened to a
few batches (not a timing test): a fit that runs the same thread count in both arms makes the same weights,
and the result names each fit's time and threads."""

from __future__ import annotations

import json
import os

import pytest

from benchmarks import speed

pytestmark = pytest.mark.integration

SHORT = ["--override", "trainer.max_epochs=1", "--override", "trainer.limit_train_batches=2",
         "--override", "trainer.limit_val_batches=1", "--override", "trainer.limit_test_batches=1"]


def test_fits_together_make_the_models_they_make_apart_at_the_same_thread_count(fsdd_root, tmp_path, capsys):
    if not (fsdd_root / "speech_commands_words").is_dir():  # the embedding member trains on other words too
        pytest.skip("speech_commands_words not found beside FSDD")
    argv = ["recipe", *SHORT, "--data.root", str(fsdd_root), "--out", str(tmp_path)]
    assert speed.main(argv) == 0
    out = capsys.readouterr().out
    assert "same weights in both arms: " in out
    assert "| together |" in out and "| apart |" in out
    (path,) = (tmp_path / "speed").glob("recipe-default-*.json")  # named after the machine too
    result = json.loads(path.read_text())
    assert result["recipe"]["configs"] == ["configs/fsdd_cnn_newvoices.yaml", "configs/fsdd_embedding_newvoices.yaml"]
    together, apart = result["figures"]["arms"]
    assert (together["arm"], apart["arm"]) == ("together", "apart")
    for arm in (together, apart):
        assert set(arm["fit_seconds"]) == {"fsdd_cnn_newvoices.yaml", "fsdd_embedding_newvoices.yaml"}
        assert all(s > 0 for s in arm["fit_seconds"].values()) and arm["cpu_seconds"] > 0
        assert all(0 <= acc <= 1 for acc in arm["test_acc"].values())
    assert together["seconds"] >= max(together["fit_seconds"].values()) + together["evaluate_seconds"]
    assert apart["seconds"] >= sum(apart["fit_seconds"].values()) and "evaluate_seconds" not in apart
    # a fit that ran the same thread count in both arms makes the same model (on 2 cores: the CNN, 1 thread beside
    # its worker either way); the embedding has no worker, so it runs 2 threads alone and 1 beside the CNN
    same = result["figures"]["same_weights"]
    assert set(same) == {"fsdd_cnn_newvoices.yaml", "fsdd_embedding_newvoices.yaml"}
    for name in same:
        assert together["threads"][name] >= 1 and apart["threads"][name] >= 1
        if together["threads"][name] == apart["threads"][name]:
            assert same[name] and together["test_acc"][name] == apart["test_acc"][name], name
        else:
            assert f"{name} {'yes' if same[name] else 'no'} ({together['threads'][name]} and {apart['threads'][name]} threads" in out
    if os.cpu_count() == 2:
        assert together["threads"]["fsdd_cnn_newvoices.yaml"] == apart["threads"]["fsdd_cnn_newvoices.yaml"] == 1


def test_a_config_that_is_not_there_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        speed.main(["recipe", str(tmp_path / "nothing.yaml"), "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no such config: " in capsys.readouterr().err and not (tmp_path / "speed").exists()
