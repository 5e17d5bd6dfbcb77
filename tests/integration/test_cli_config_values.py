"""A config value that a constructor refuses is a usage message (exit 2) through `spokenword fit`, not a
traceback, and nothing is trained."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "fsdd_cnn_newvoices.yaml"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--data.features.kind=stft --data.features.n_bins=200", "invalid configuration: n_bins cannot exceed n_fft // 2 + 1"),
        ("--data.features.n_fft=4", "invalid configuration: feature sizes must be positive"),
        ("--data.wave_augment.init_args.noise_p=1.5", "noise_p must be a probability in [0, 1], got 1.5"),
        ("--model.augment.init_args.freq_warp=1.2", "freq_warp must be in [0, 1), got 1.2"),
        ("--data.split=everything", "Got value: everything"),  # a Literal: refused by the parser itself
    ],
)
def test_a_refused_value_is_a_usage_error(option, message, fsdd_root, capsys, monkeypatch, tmp_path):
    from spokenword import cli

    # log handlers made during an earlier test keep that test's (closed) stderr: give them this one's
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "closed", False):
                monkeypatch.setattr(handler, "stream", sys.stderr)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPOKENWORD_DATA", str(fsdd_root))
    # fast_dev_run: were the value accepted after all, one batch is trained, not the config's 120 epochs
    assert cli.main(["fit", "--config", str(CONFIG), "--trainer.fast_dev_run=true", "--report=false", *option.split()]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err and "Traceback" not in err
    assert not list(tmp_path.glob("runs/**/*.ckpt"))
