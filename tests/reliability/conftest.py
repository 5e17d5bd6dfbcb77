"""Fixtures of the reliability tests."""

from __future__ import annotations

import pytest

from tests.reliability.training_runs import only_run, run_fit


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, fsdd_root):
    """``(base folder, run folder)`` of an uninterrupted tiny fit; ``base / "cache"`` is its
    feature cache, which the other runs share."""
    base = tmp_path_factory.mktemp("reliability_runs")
    done = run_fit(base / "straight", fsdd_root, base / "cache")
    assert done.returncode == 0, done.stderr[-3000:]
    return base, only_run(base / "straight")
