"""Interrupted training: SIGKILL after the first checkpoint, resume with ``--ckpt_path last``, and
end with exactly the metrics of the uninterrupted run (CPU, deterministic, RNG state restored);
checkpoints are written atomically; Ctrl-C stops with the command that resumes."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from spokenword.training.checkpointing import AtomicCheckpointIO
from tests.reliability.training_runs import EPOCHS, REPO, env, fit_command, metrics, only_run, run_fit

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert proc.poll() is None, f"fit ended before writing {path}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.05)


@pytest.fixture
def reference(reference_run):
    return reference_run


def test_sigkill_then_resume_last_matches_uninterrupted(reference, fsdd_root):
    base, straight = reference
    out = base / "killed"
    # 40 epochs, not EPOCHS: the run must still be training when the signal comes (a short run on an idle
    # machine can finish between the first last.ckpt and the signal, and then rightly exits 0)
    command = fit_command(out, fsdd_root, base / "cache", "--trainer.max_epochs", "40")
    proc = subprocess.Popen(command, env=env(), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(next(iter(_poll_glob(out, proc))), proc)
        time.sleep(random.uniform(0.0, 1.0))  # a random point after the first checkpoint
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = only_run(out)
    last = run / "checkpoints" / "last.ckpt"
    saved_epoch = torch.load(last, map_location="cpu", weights_only=False)["epoch"]  # loads: not truncated
    assert saved_epoch < EPOCHS - 1, "killed after the last epoch: nothing left to resume"
    assert not (run / "report.json").exists()

    resumed = run_fit(out, fsdd_root, base / "cache", "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert only_run(out) == run, "the resumed run must continue in the same run folder"
    result, expected = metrics(run), metrics(straight)
    assert [row["epoch"] for row in result["history"]] == [float(e) for e in range(EPOCHS)]
    assert result == expected  # exact: same seed, deterministic CPU kernels, RNG state restored


def _poll_glob(out: Path, proc: subprocess.Popen):
    """Yields the path of the first ``last.ckpt`` once the run folder exists."""
    deadline = time.monotonic() + 300
    while True:
        runs = list(out.glob("*/version_*"))
        if runs:
            yield runs[0] / "checkpoints" / "last.ckpt"
            return
        assert proc.poll() is None, f"fit ended early: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_ctrl_c_stops_cleanly_with_resume_command(reference, fsdd_root):
    base, _ = reference
    out = base / "ctrl_c"
    # 40 epochs, not EPOCHS: the run must still be training when the signal comes (a short run on an idle
    # machine can finish between the first last.ckpt and the signal, and then rightly exits 0)
    command = fit_command(out, fsdd_root, base / "cache", "--trainer.max_epochs", "40")
    # An ignored SIGINT is inherited through fork and exec, and Python then leaves it ignored: the child
    # starts with the default disposition whatever an earlier in-process test left in this process.
    parent_sigint = signal.getsignal(signal.SIGINT)
    proc = subprocess.Popen(command, env=env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for(next(iter(_poll_glob(out, proc))), proc)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired as timeout:
            raise AssertionError(f"fit still running 120 s after SIGINT (this process's SIGINT handler: "
                                 f"{parent_sigint!r}); stderr: {(timeout.stderr or b'')[-2000:]!r}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
    run = only_run(out)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    expected = (f"resume with: spokenword fit --config {run.resolve() / 'config.yaml'} "
                f"--ckpt_path {run.resolve() / 'checkpoints' / 'last.ckpt'}")
    assert expected in err


def test_resume_last_without_checkpoint_is_a_usage_error(tmp_path, capsys):
    from spokenword.cli import main

    code = main(["fit", "--config", str(REPO / "configs" / "fsdd_cnn.yaml"), "--ckpt_path", "last",
                 "--trainer.logger.init_args.save_dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "no last.ckpt under" in err and str(tmp_path) in err and "Traceback" not in err


def test_atomic_checkpoint_io_keeps_old_file_when_write_fails(tmp_path):
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1}, target)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="mid-write"):
        io.save_checkpoint({"epoch": 2, "bad": Unpicklable()}, target)
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind
