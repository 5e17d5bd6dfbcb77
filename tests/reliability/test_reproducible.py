"""Same config + same seed twice -> identical report.json metrics on CPU; the run folder records
package versions, git commit and the data/feature hash (run_info.json, also in report.json)."""

from __future__ import annotations

import json

import pytest

from spokenword.training.provenance import RUN_INFO_NAME, data_hash
from tests.reliability.training_runs import metrics, only_run, run_fit

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_same_seed_gives_identical_report(reference_run, fsdd_root):
    base, first = reference_run
    again = run_fit(base / "again", fsdd_root, base / "cache")
    assert again.returncode == 0, again.stderr[-3000:]
    second = only_run(base / "again")
    assert metrics(second) == metrics(first)
    info = [json.loads((run / RUN_INFO_NAME).read_text()) for run in (first, second)]
    assert info[0]["data_hash"] == info[1]["data_hash"]
    assert json.loads((second / "report.json").read_text())["provenance"] == info[1]


def test_run_info_records_versions_commit_and_data_hash(reference_run):
    _, run = reference_run
    info = json.loads((run / RUN_INFO_NAME).read_text())
    assert info["packages"]["torch"] and info["packages"]["lightning"] and info["packages"]["spokenword"]
    assert info["git"] is None or len(info["git"]["commit"]) == 40  # None outside a git checkout
    assert len(info["data_hash"]) == 64
    assert sum(info["data"].values()) == 3000  # FSDD: every recording in exactly one part


def test_data_hash_changes_with_content_and_settings(tmp_path):
    from spokenword.data.corpora import Recording

    wav = tmp_path / "0_a_0.wav"
    wav.write_bytes(b"abc")
    parts = {"train": [Recording(wav, "0", "a", 0)]}
    base = data_hash(parts, 8000, {"kind": "stft"})
    assert data_hash(parts, 8000, {"kind": "stft"}) == base
    assert data_hash(parts, 16000, {"kind": "stft"}) != base
    assert data_hash(parts, 8000, {"kind": "mfcc"}) != base
    wav.write_bytes(b"abd")
    assert data_hash(parts, 8000, {"kind": "stft"}) != base
