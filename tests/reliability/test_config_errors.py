"""Config and argument mistakes: a one-line message naming the key or path and what was expected,
exit code 2, no traceback, and (for checkpoints) no data preparation before the check."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spokenword.cli import EXIT_USAGE, main

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "fsdd_cnn.yaml")


def _run(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err + captured.out
    # a logging handler created under an earlier test's capture writes to its closed stream: the
    # harness's "--- Logging error ---" report is not spokenword output
    ours = err.split("--- Logging error ---")[0]
    assert "Traceback" not in ours
    return code, err


def test_unknown_key_is_named(capsys, tmp_path):
    code, err = _run(["fit", "--config", CONFIG, "--data.bogus_key", "1"], capsys)
    assert code == EXIT_USAGE
    assert "--data.bogus_key" in err.splitlines()[-1]


def test_a_usage_error_is_short_and_comes_without_lightnings_argv_warning(capsys, monkeypatch):
    # as the console script runs it: sys.argv holds the same arguments that main() is given
    argv = ["fit", "--config", CONFIG, "--model.net.init_args.dropout", "abc"]
    monkeypatch.setattr("sys.argv", ["spokenword", *argv])
    code, err = _run(argv, capsys)
    assert code == EXIT_USAGE
    assert "args parameter is intended" not in err  # LightningCLI's warning for a mix-up that is not one
    lines = err.strip().splitlines()
    assert lines[0] == "usage: spokenword [options] fit [-c CONFIG] [--KEY VALUE ...]"  # not ~100 option lines
    assert len(lines) < 20 and "dropout" in err and "abc" in err and "float" in err


def test_help_still_lists_every_option(capsys):
    assert main(["fit", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--data.features.n_fft" in out and "--trainer.max_epochs" in out


def test_unknown_key_in_config_file_is_named(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(CONFIG).read_text() + "\nmodle:\n  foo: 1\n")
    code, err = _run(["fit", "--config", str(bad)], capsys)
    assert code == EXIT_USAGE
    assert "modle" in err


def test_wrong_type_names_key_and_expected_type(capsys):
    code, err = _run(["fit", "--config", CONFIG, "--data.batch_size", "many"], capsys)
    assert code == EXIT_USAGE
    assert "data.batch_size" in err and "int" in err and "many" in err


def test_missing_data_folder_is_named(capsys, tmp_path):
    missing = tmp_path / "no_data_here"
    code, err = _run(["fit", "--config", CONFIG, "--data.root", str(missing), "--trainer.max_epochs", "1",
                      "--trainer.logger.init_args.save_dir", str(tmp_path)], capsys)
    assert code == EXIT_USAGE
    (line,) = [l for l in err.splitlines() if l.startswith("spokenword: error:")]
    assert str(missing) in line


def _foreign_checkpoints(tmp_path: Path) -> list[Path]:
    plain = tmp_path / "plain_dict.ckpt"
    torch.save({"weights": torch.zeros(3)}, plain)
    lightning_like = tmp_path / "other_task.ckpt"  # a Lightning checkpoint of some other model
    torch.save({"pytorch-lightning_version": "2.6.0", "state_dict": {"layer.weight": torch.zeros(2, 2)},
                "hyper_parameters": {"hidden": 7}, "epoch": 0, "global_step": 0}, lightning_like)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    return [plain, lightning_like, garbage]


@pytest.mark.parametrize("command", ["test", "validate", "fit"])
def test_checkpoint_from_another_task_is_rejected_before_data(command, capsys, tmp_path):
    for ckpt in _foreign_checkpoints(tmp_path):
        code, err = _run([command, "--config", CONFIG, "--ckpt_path", str(ckpt),
                          "--data.root", str(tmp_path / "absent"),  # the checkpoint check comes first
                          "--trainer.logger.init_args.save_dir", str(tmp_path)], capsys)
        assert code == EXIT_USAGE
        (line,) = [l for l in err.splitlines() if l.startswith("spokenword: error:")]
        assert str(ckpt) in line and "not a spokenword checkpoint" in line


def test_classify_with_foreign_checkpoint(capsys, tmp_path):
    for ckpt in _foreign_checkpoints(tmp_path):
        code, err = _run(["classify", str(ckpt), str(tmp_path / "x.wav")], capsys)
        assert code == EXIT_USAGE
        assert str(ckpt) in err and "not a spokenword checkpoint" in err


def test_missing_checkpoint_is_named(capsys, tmp_path):
    missing = tmp_path / "nope.ckpt"
    code, err = _run(["test", "--config", CONFIG, "--ckpt_path", str(missing)], capsys)
    assert code == EXIT_USAGE
    assert f"{missing}: no such checkpoint file" in err


def test_test_finds_run_config_from_checkpoint(trained_checkpoint, capsys):
    """``spokenword test --ckpt_path RUN/checkpoints/x.ckpt`` without --config uses RUN/config.yaml."""
    run = trained_checkpoint.parent.parent
    before = (run / "report.json").stat().st_mtime_ns
    code, err = _run(["test", "--ckpt_path", str(trained_checkpoint), "--trainer.enable_progress_bar", "false",
                      "--trainer.logger.init_args.save_dir", str(run.parent.parent / "retest")], capsys)
    assert code == 0, err[-2000:]
    assert (run / "report.json").stat().st_mtime_ns > before  # re-tested with the run's own config
    assert "Parsing of ckpt_path hyperparameters failed" not in err


def test_a_bad_value_inside_a_class_path_block_leads_with_key_and_reason(capsys):
    """jsonargparse opens with "Does not validate against any of the Union subtypes"; the error line
    names the key (as the command line spells it) and the reason, the full message follows."""
    argv = ["fit", "--config", str(REPO / "configs" / "fsdd_cnn_newvoices.yaml"), "--model.augment.init_args.freq_warp", "abc"]
    code, err = _run(argv, capsys)
    assert code == EXIT_USAGE
    error = next(line for line in err.splitlines() if line.startswith("error:"))
    assert error == "error: model.augment.freq_warp: Expected a <class 'float'>. Got value: abc"
    assert "  Does not validate against any of the Union subtypes" in err  # the detail is kept
