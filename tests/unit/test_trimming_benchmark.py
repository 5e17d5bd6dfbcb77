"""``python -m benchmarks.experiments.trimming``: the ms the noise-floor rule cuts beyond the peak rule, per
speaker and word."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.experiments import trimming as module
from spokenword.data.corpora import Recording
from spokenword.frontend.settings import FeatureSettings
from tests.conftest import REPO, tone, write_wav

SR = 8000
SETTINGS = FeatureSettings(trim_db=30.0, trim_floor_db=8.0)


def tight_clip() -> np.ndarray:
    """A quiet 'consonant' (25 dB below the vowel) then the vowel, no silence: the quietest frame is speech."""
    rng = np.random.default_rng(0)
    consonant = (0.5 * 10 ** (-25 / 20) * rng.standard_normal(SR // 10)).astype(np.float32)
    return np.concatenate([consonant, tone(0.3, SR, 300.0)])


def padded_clip() -> np.ndarray:
    """The same vowel with digital silence around it: the floor rule has nothing to add."""
    silence = np.zeros(SR // 10, dtype=np.float32)
    return np.concatenate([silence, tone(0.3, SR, 300.0), silence])


def test_the_floor_rule_cuts_a_tight_clips_quiet_edge_and_leaves_a_padded_one(tmp_path):
    peak_cut, floor_cut = module.cut_ms(tight_clip(), SR, SETTINGS)
    assert peak_cut <= 10.0 and floor_cut >= 60.0  # most of the 100 ms consonant, which the peak rule keeps (less than a hop lost at the end)
    peak_cut, floor_cut = module.cut_ms(padded_clip(), SR, SETTINGS)
    assert peak_cut >= 150.0 and floor_cut == 0.0

    recordings = [
        Recording(write_wav(tmp_path / "1_a_0.wav", tight_clip(), SR), "1", "a", 0),
        Recording(write_wav(tmp_path / "2_b_0.wav", padded_clip(), SR), "2", "b", 0),
    ]
    lines = module.table(recordings, SR, SETTINGS)
    assert lines[0] == '| speaker | "1" | "2" | all | clips shortened | peak rule alone |'
    a, b = (line.split(" | ") for line in lines[2:])
    assert a[0] == "| a" and float(a[1]) >= 60 and a[2] == "–" and a[4] == "100 %"
    assert b[0] == "| b" and b[1] == "–" and float(b[2]) == 0 and b[4] == "0 %" and float(b[5].rstrip(" |")) >= 150


@pytest.mark.integration
def test_a_config_without_the_floor_rule_is_a_usage_error(fsdd_root, tmp_path, capsys):
    """The config is read as ``spokenword fit`` reads it (its data module is built, so FSDD is needed)."""
    config = tmp_path / "c.yaml"
    config.write_text((REPO / "configs" / "fsdd_cnn_newvoices.yaml").read_text().replace("trim_floor_db: 8.0", "trim_floor_db: null"))
    with pytest.raises(SystemExit) as exit_info:
        module.main([str(config), "--data.root", str(fsdd_root), "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "trim_floor_db" in capsys.readouterr().err


def test_a_missing_config_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        module.main([str(tmp_path / "missing.yaml"), "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "no such config" in capsys.readouterr().err
