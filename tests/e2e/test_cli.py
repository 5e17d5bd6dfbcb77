"""The ``spokenword`` command end to end, in-process through ``main(argv)``."""

from __future__ import annotations

import pytest

from spokenword.cli import main

pytestmark = pytest.mark.e2e


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("fit", "test", "download", "classify", "evaluate", "figures"):
        assert command in out


def test_no_command_and_unknown_command_are_usage_errors(capsys):
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err
    assert main(["classify"]) == 2  # missing arguments


def test_fit_help_is_lightningcli(capsys):
    assert main(["fit", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--config" in out and "--data.split" in out and "--trainer.max_epochs" in out


def test_download_when_data_is_present_says_already(fsdd_root, capsys):
    assert main(["download", "--data.root", str(fsdd_root)]) == 0
    assert "already" in capsys.readouterr().out


def test_figures_command_writes_five_pngs(fsdd_root, tmp_path, capsys):
    out_dir = tmp_path / "figures"
    assert main(["figures", "--data.root", str(fsdd_root), "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(p.name for p in out_dir.glob("*.png")) == sorted(
        ["waveform.png", "spectrogram.png", "two_digits.png", "grid.png", "mfcc.png"])
    assert sorted(printed) == sorted(str(p) for p in out_dir.glob("*.png"))


def test_figures_for_an_unknown_speaker_is_a_one_line_error(fsdd_root, tmp_path, capsys):
    assert main(["figures", "--data.root", str(fsdd_root), "--out", str(tmp_path), "--speaker", "nobody"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spokenword: error:") and err.count("\n") == 1
