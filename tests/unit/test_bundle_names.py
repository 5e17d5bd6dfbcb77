"""A bundle's members are named after the experiment folders given, and two members of one name are refused
before anything is written (one member's files would overwrite the other's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spokenword.inference.base import ModelError
from spokenword.inference.bundle import _run_name, bundle


def run(folder: Path, epoch: int) -> Path:
    """A finished run's folder ``folder/version_0`` whose report names its checkpoint."""
    version = folder / "version_0"
    (version / "checkpoints").mkdir(parents=True)
    checkpoint = version / "checkpoints" / f"best-epoch={epoch}.ckpt"
    checkpoint.write_bytes(b"not read here")
    (version / "report.json").write_text(json.dumps({"checkpoint": str(checkpoint)}))
    return checkpoint


def test_members_are_named_after_the_folder_given(tmp_path):
    checkpoint = run(tmp_path / "results" / "units" / "official-seed0", 3)
    copy = tmp_path / "runs" / "fsdd_cnn_newvoices"
    copy.mkdir(parents=True)
    (copy / "version_0").symlink_to(checkpoint.parent.parent)  # the run seen under its experiment's name
    assert _run_name(copy, checkpoint) == "fsdd_cnn_newvoices"
    assert _run_name(copy / "version_0", checkpoint) == "fsdd_cnn_newvoices"
    assert _run_name(checkpoint, checkpoint) == "official-seed0"  # a checkpoint file: the run folder it lies in


def test_two_members_of_one_name_are_refused_before_anything_is_written(tmp_path):
    first = tmp_path / "a" / "official-seed0"
    second = tmp_path / "b" / "official-seed0"
    run(first, 1), run(second, 2)
    out = tmp_path / "bundle"
    with pytest.raises(ModelError, match="two members are named official-seed0") as err:
        bundle([first, second], out, data_root=tmp_path / "no-data")
    assert "\n" not in str(err.value) and not out.exists()
